#!/usr/bin/env python3
"""check-message-ids.py JOURNAL_JSON CATALOG KIND...: every secretsyncd entry of the journal
(journalctl -o json) carries the MESSAGE_ID of its kind, and each KIND occurs at least once.

The IDs are a fixed contract (operators and alerting filter on them; a changed ID silently
breaks their filters), so the table is spelled out here rather than read from the code, and
each must be in the shipped catalog with a subject that names its kind. Exits 1 with the
reason on the first mismatch."""
import json
import re
import sys

EXPECTED = {  # SECRETSYNC_ACTION (or, for the two without one, the event) -> (MESSAGE_ID, word of the Subject)
    "started": ("c33e65ac5430432ba4a1d783f0cf2f9c", "started"),
    "stopping": ("068063212be04885a82423c228923247", "stopping"),
    "fetched": ("4b90018454b14388a4dd4b0dc8812145", "fetched"),
    "written": ("1e9255c1cbb04d11b82373a6dcfa8afb", "written"),
    "unchanged": ("b0387a9a09794c2d8a3e2ad74ad04830", "up to date"),
    "failed": ("b45ff796851a4868922389c08678129e", "failed"),
    "deleted": ("243744da00864f48a1b40d800e0d7157", "deleted"),
    "auth-ok": ("03e6371d8b274aad805055e76873ec96", "authenticated"),
    "auth-failed": ("7cb77181315c46e597d9ba5efd6f8901", "authentication failed"),
    "reloaded": ("e75064b4f6834088b92ccef9e28b54fc", "reloaded"),
    "reload-rejected": ("cf19323e375d41019370069c55c576e3", "rejected"),
    "command-run": ("7c23c4e472ba4b1b953305e8a9584564", "succeeded"),
    "command-failed": ("54ab0baccf68402bade9847308c2c407", "failed"),
    "leader-acquired": ("5cf345603c19411c8eda22f61afbcafc", "leader"),
    "leader-lost": ("d6306b5fc2434856974d222379e8fc73", "leadership"),
}


def fail(why):
    print(f"  {why}", file=sys.stderr)
    sys.exit(1)


def main(journal, catalog_path, *provoked):
    with open(catalog_path, encoding="utf-8") as f:
        catalog = dict(re.findall(r"^-- ([0-9a-f]{32})\nSubject: (.*)$", f.read(), re.M))
    for kind, (mid, word) in EXPECTED.items():
        if mid not in catalog:
            fail(f"{kind}: MESSAGE_ID {mid} is not in {catalog_path}")
        if word not in catalog[mid]:
            fail(f"{kind}: the catalog's subject for {mid} is {catalog[mid]!r}")
    by_id = {mid: kind for kind, (mid, _) in EXPECTED.items()}
    seen = {}
    with open(journal, encoding="utf-8") as f:
        entries = [json.loads(line) for line in f if line.strip()]
    for e in entries:
        if e.get("SYSLOG_IDENTIFIER") != "secretsyncd":
            continue
        kind = e.get("SECRETSYNC_ACTION")
        if kind is None and by_id.get(e.get("MESSAGE_ID")) in ("started", "stopping"):
            kind = by_id[e["MESSAGE_ID"]]
        if kind is None:
            continue
        if kind not in EXPECTED:
            fail(f"unknown SECRETSYNC_ACTION={kind} ({e.get('MESSAGE')!r})")
        if e.get("MESSAGE_ID") != EXPECTED[kind][0]:
            fail(f"{kind} event {e.get('MESSAGE')!r} has MESSAGE_ID={e.get('MESSAGE_ID')}, "
                 f"the catalog's is {EXPECTED[kind][0]}")
        seen[kind] = seen.get(kind, 0) + 1
    missing = sorted(set(provoked) - set(seen))
    if missing:
        fail(f"no event of kind {', '.join(missing)} in the journal (seen: {seen})")
    print(f"  MESSAGE_ID right for {sum(seen.values())} events: {seen}")


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    main(*sys.argv[1:])
