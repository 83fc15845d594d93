#!/usr/bin/env python3
"""Failing Vault logins at scale: 200 secrets with token auth while the token file is rewritten
with a refused token and truncated (as `echo tok > file` leaves it for a moment) and SIGUSR1s
arrive. A failed login then completes reads whose callbacks start new fetches at once, whose
login fails at once too (the file is empty): the store must survive that re-entry (no
sanitizer report under `tests/run.sh --sanitizers`, no crash) and sync every secret once the
token file is good again."""
import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lib import Daemon, Scratch, check, done, require_daemon, skip

require_daemon()
import tls
from vault_server import VaultServer

if not tls.have_openssl():
    skip("openssl command missing (needed to make test certificates)")

N = 200
CYCLES = 25
s = Scratch()
m = tls.make_all(s.p("tls"))
out = s.p("out")
os.mkdir(out)
token_file = s.p("vault-token")


def write_token(text):
    # what `echo tok > file` does: truncate, then write
    with open(token_file, "w") as f:
        f.write(text + "\n" if text else "")
    os.chmod(token_file, 0o600)


def synced(value_of):
    n = 0
    for i in range(N):
        try:
            with open(os.path.join(out, f"s{i:03d}")) as f:
                n += f.read() == value_of(i)
        except FileNotFoundError:
            pass
    return n


def sanitizer_report(text):
    return "AddressSanitizer" in text or "runtime error:" in text or "LeakSanitizer" in text


vault = VaultServer(tls_cert=m.server_cert, tls_key=m.server_key, client_ca=m.ca_cert)
vault.start()
d = None
try:
    for i in range(N):
        vault.put_secret(f"app/s{i:03d}", {"v": f"value-{i}"})
    vault.set_policy("app-read", {"secret/data/app/*": ["read"]})
    token = vault.create_token(policies=["app-read"], ttl=3600)["id"]
    secrets = ",\n".join(
        f'{{ name = "s{i:03d}"; store = "v"; data = ( {{ secret_key = "v"; remote_ref = {{ key = "app/s{i:03d}"; '
        f'property = "v"; }}; }} ); files = ( {{ path = "{out}/s{i:03d}"; format = "raw"; key = "v"; }} ); }}'
        for i in range(N))
    conf = s.write_config(f"""
daemon = {{ refresh_interval = "1h"; min_backoff = "100ms"; max_backoff = "300ms"; }};
stores = {{ v = {{ type = "vault"; server = "{vault.url}"; ca_file = "{m.ca_cert}";
                  auth = {{ method = "token"; token_file = "{token_file}"; }}; }}; }};
secrets = ( {secrets} );
""")
    # Every login's lookup-self takes a while, so that reads queue up waiting for it.
    vault.set_latency(150, scope="all")
    write_token("refused-token-0")
    d = Daemon(conf, s)
    check(d.wait_log("auth-failed", timeout=20), "a refused token is reported (auth-failed)")
    for c in range(CYCLES):
        if d.proc.poll() is not None:
            break
        write_token(f"refused-token-{c}")  # the next login reads it and waits for its lookup
        d.signal(signal.SIGUSR1)            # every secret fetches: all wait for that login
        time.sleep(0.05)
        d.signal(signal.SIGUSR1)            # ... and has a refresh pending when it fails
        write_token("")                     # the re-fetches' logins fail at once
        time.sleep(0.3)                     # the lookup is refused meanwhile
    alive = d.proc.poll() is None
    log = d.output()
    refused, empty = log.count("lookup-self) refused"), log.count("vault-token is empty")
    check(refused >= CYCLES // 2 and empty >= CYCLES // 2,
          f"the scenario happened: lookups refused x{refused}, logins from the empty file x{empty}")
    check(alive, f"the daemon survived {CYCLES} rounds of refused and failing logins with refreshes "
          f"pending (exit status {d.proc.returncode})")
    check(not sanitizer_report(d.output()), "no sanitizer report" +
          ("" if not sanitizer_report(d.output()) else ":\n" + d.output()[-3000:]))

    if alive:
        vault.set_latency(0)
        write_token(token)
        d.signal(signal.SIGUSR1)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and synced(lambda i: f"value-{i}") < N:
            time.sleep(0.2)
        n = synced(lambda i: f"value-{i}")
        check(n == N, f"with the token file good again, every secret synced ({n} of {N})")
        check(d.proc.poll() is None and not sanitizer_report(d.output()), "still running, no sanitizer report")
    rc = d.stop()
    check(rc == 0, f"SIGTERM: exit 0 ({rc})")
    check(not sanitizer_report(d.output()), "no sanitizer report at exit")
    check(token not in d.output(), "the token is not in the output")
finally:
    if d and d.proc.poll() is None:
        d.stop()
    vault.stop()
    s.cleanup()
done()
