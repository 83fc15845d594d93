#!/usr/bin/env python3
"""Hundreds of secrets against a slow stand-in Vault with few requests allowed in flight, so
that most secrets wait in the sync queue, and signals arriving while it is full:

* SIGHUP and SIGUSR1 during the first round: every secret is still attempted, and READY=1
  comes only once all of them have been (every good file is in place then);
* max_concurrent_requests bounds the connections the daemon opens;
* a refresh asked for while a secret's read is in flight is not dropped: it reads again;
* a reload that changes nothing fetches nothing;
* a rotation of all of them with SIGUSR1 reaches every file;
* on_change commands get fds 0-2 only, not the daemon's live connections to the store;
* no value in any output."""
import json
import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lib import Daemon, NotifySocket, Scratch, check, done, require_daemon

require_daemon()
from vault_server import VaultServer

N = 200
MISSING = {17, 123}
s = Scratch()
out = s.p("out")
fds_file = s.p("hook-fds.json")
hook = s.p("hook.py")
with open(hook, "w") as f:
    f.write(f"""#!/usr/bin/env python3
import json, os
fds = {{}}
for n in os.listdir("/proc/self/fd"):
    try:
        fds[n] = os.readlink("/proc/self/fd/" + n)
    except OSError:
        pass
with open({fds_file!r}, "w") as f:
    json.dump(fds, f)
""")
os.chmod(hook, 0o755)


def value(i, gen):
    return f"val-{i}-gen{gen}"


def path(i):
    return os.path.join(out, f"d{i:03d}", "value")


def read(i):
    try:
        with open(path(i)) as f:
            return f.read()
    except FileNotFoundError:
        return None


def files_with(gen):
    return sum(1 for i in range(N) if read(i) == value(i, gen))


def kv_reads(st, i=None):
    prefix = "/v1/secret/data/load/"
    if i is not None:
        return st["requests"].get(f"{prefix}s{i}", 0)
    return sum(n for p, n in st["requests"].items() if p.startswith(prefix))


vault = VaultServer()
vault.start()
d = None
try:
    for i in range(N):
        if i not in MISSING:
            vault.put_secret(f"load/s{i}", {"v": value(i, 1)})
    token_file = s.p("token")
    with open(token_file, "w") as f:
        f.write("root")
    os.chmod(token_file, 0o600)

    secrets = []
    for i in range(N):
        hook_line = f'on_change = [ "{hook}" ];' if i == 0 else ""
        secrets.append(f"""{{ name = "s{i}"; store = "vault";
      data = ( {{ secret_key = "v"; remote_ref = {{ key = "load/s{i}"; property = "v"; }}; }} );
      files = ( {{ path = "{path(i)}"; format = "raw"; key = "v"; {hook_line} }} ); }}""")
    conf = s.write_config(f"""
daemon = {{ max_concurrent_requests = 2; min_backoff = "1m"; max_backoff = "1m"; refresh_interval = "1h"; }};
stores = {{ vault = {{ type = "vault"; server = "{vault.url}"; mount = "secret"; kv_version = 2;
                      auth = {{ method = "token"; token_file = "{token_file}"; }}; }}; }};
secrets = ( {", ".join(secrets)} );
""")

    # --- the first round, with the queue full and a SIGHUP and a SIGUSR1 arriving in it
    vault.set_latency(40, "kv")
    notify = NotifySocket(s)
    d = Daemon(conf, s, notify=notify)
    check(d.wait_log("fetched 'load/s", count=4, timeout=20), "the first fetches arrive")
    d.signal(signal.SIGHUP)
    early = notify.wait_for(lambda m: m.get("READY") == "1", timeout=0.5)
    d.signal(signal.SIGUSR1)
    if early is None:
        early = notify.wait_for(lambda m: m.get("READY") == "1", timeout=0.5)
    check(early is None, "no READY=1 right after a SIGHUP during the first round")
    ready = early or notify.wait_for(lambda m: m.get("READY") == "1", timeout=90)
    good_at_ready = files_with(1)
    check(ready is not None, "READY=1 after the first round, with a SIGHUP and a SIGUSR1 in it")
    check(good_at_ready == N - len(MISSING),
          f"every good secret's file is in place when READY=1 comes ({good_at_ready} of {N - len(MISSING)})")
    st = notify.wait_for(lambda m: "STATUS" in m and "first round" not in m["STATUS"]
                         and f"{N - len(MISSING)} synced" in m["STATUS"], timeout=5)
    check(st is not None and f"{len(MISSING)} failing" in st["STATUS"],
          f"STATUS counts {N - len(MISSING)} synced and {len(MISSING)} failing ({st})")
    out_text = d.output()
    for i in MISSING:
        check(f"secret 's{i}': cannot fetch 'load/s{i}'" in out_text, f"the missing key of s{i} is reported")
    stats = vault.stats()
    check(stats["connections"] <= 4,
          f"max_concurrent_requests = 2 bounds the connections ({stats['connections']} for {kv_reads(stats)} reads)")

    # --- on_change got fds 0-2 only (the daemon held connections to Vault meanwhile)
    check(os.path.exists(fds_file), "the on_change hook ran")
    if os.path.exists(fds_file):
        with open(fds_file) as f:
            fds = json.load(f)
        extra = {n: t for n, t in fds.items() if int(n) > 2 and not t.startswith("/proc/")}
        check(not extra, f"on_change inherits no descriptor beyond 0-2 ({extra})")

    # --- a refresh asked for while a read is in flight reads again
    vault.set_latency(0)
    vault.add_fault("secret/data/load/s5", delay_ms=1500, count=1)
    before = vault.stats()
    d.signal(signal.SIGUSR1)
    deadline = time.monotonic() + 10
    while kv_reads(vault.stats(), 4) == kv_reads(before, 4) and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.2)  # s5's slow read is in flight now
    vault.put_secret("load/s5", {"v": value(5, 2)})
    d.signal(signal.SIGUSR1)
    deadline = time.monotonic() + 20
    while read(5) != value(5, 2) and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)
    after = vault.stats()
    check(read(5) == value(5, 2), "the value rotated during an in-flight read is written")
    check(kv_reads(after, 5) - kv_reads(before, 5) == 2,
          f"a refresh asked for during a read reads again ({kv_reads(after, 5) - kv_reads(before, 5)} reads of s5)")

    # --- a reload that changes nothing fetches nothing
    time.sleep(0.5)
    before = vault.stats()
    reloads = d.output().count("reloaded ")
    os.utime(conf)
    d.signal(signal.SIGHUP)
    check(d.wait_log("reloaded ", count=reloads + 1, timeout=10), "the reload is done")
    time.sleep(1.0)
    check(kv_reads(vault.stats()) == kv_reads(before), "an unchanged reload reads no secret again")
    check(f"0 added, 0 changed, 0 removed, {N} unchanged" in d.output(), "the reload reports every secret unchanged")

    # --- every secret rotated, one SIGUSR1
    for i in range(N):
        if i not in MISSING:
            vault.put_secret(f"load/s{i}", {"v": value(i, 3)})
    d.signal(signal.SIGUSR1)
    deadline = time.monotonic() + 60
    while files_with(3) < N - len(MISSING) and time.monotonic() < deadline:
        time.sleep(0.1)
    check(files_with(3) == N - len(MISSING), f"SIGUSR1 brings all {N - len(MISSING)} rotations ({files_with(3)})")

    rc = d.stop()
    check(rc == 0, f"SIGTERM: exit 0 ({rc})")
    text = d.output()
    leaked = [v for v in (value(i, g) for i in range(N) for g in (1, 2, 3)) if v in text]
    check(not leaked, f"no value in the output ({leaked[:3]})")
finally:
    if d and d.proc.poll() is None:
        d.stop()
    vault.stop()
    s.cleanup()
done()
