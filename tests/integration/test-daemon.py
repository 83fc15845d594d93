#!/usr/bin/env python3
"""The daemon under a notify socket, as systemd runs it: readiness, STATUS, reload (good and
bad), SIGUSR1, retries with backoff, the watchdog, SIGTERM."""
import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lib import (CHIMERA, Daemon, NotifySocket, Scratch, check, done, fake_store, no_secrets_in, require_daemon)

require_daemon()
s = Scratch()
out = s.p("out")


def config(data=None, extra=""):
    return f"""
daemon = {{ min_backoff = "200ms"; max_backoff = "1s"; }};
stores = {{ {fake_store(data=data)} }};
secrets = (
  {{ name = "postgres-credentials"; store = "demo";
     data = ( {{ secret_key = "password"; remote_ref = {{ key = "chimera/postgres-password"; property = "password"; }}; }} );
     files = ( {{ path = "{out}/postgres.env"; format = "env"; }} ); }},
  {{ name = "jwt-secret"; store = "demo"; refresh_interval = "2s";
     data = ( {{ secret_key = "secret"; remote_ref = {{ key = "chimera/jwt-secret"; property = "secret"; }}; }} );
     files = ( {{ path = "{out}/jwt.key"; format = "raw"; key = "secret"; }} ); }}
  {extra}
);
"""


notify = NotifySocket(s)
conf = s.write_config(config())
d = Daemon(conf, s, notify=notify, env={"WATCHDOG_USEC": "400000"})
try:
    ready = notify.wait_for(lambda m: m.get("READY") == "1")
    check(ready is not None, "READY=1 sent")
    check(os.path.exists(f"{out}/postgres.env") and os.path.exists(f"{out}/jwt.key"),
          "targets are in place when READY=1 arrives")
    st = ready.get("STATUS", "") if ready else ""
    if "synced" not in st:
        m = notify.wait_for(lambda m: "STATUS" in m, timeout=2)
        st = m["STATUS"] if m else ""
    check("2 synced" in st and "0 failing" in st, f"STATUS reports counts ({st!r})")

    # watchdog: WATCHDOG=1 at half of WATCHDOG_USEC (0.4 s)
    t0 = time.monotonic()
    n = 0
    while time.monotonic() - t0 < 1.2:
        if notify.wait_for(lambda m: m.get("WATCHDOG") == "1", timeout=0.5):
            n += 1
    check(n >= 3, f"WATCHDOG=1 about every 0.2 s (saw {n} in 1.2 s)")

    # periodic refresh (2 s +-10%) re-fetches jwt-secret
    check(d.wait_log("fetched 'chimera/jwt-secret'", count=2, timeout=5), "refresh timer re-fetches after its interval")

    # SIGUSR1: refresh everything now; a deleted target comes back
    os.unlink(f"{out}/postgres.env")
    before = d.output().count("fetched 'chimera/postgres-password'")
    d.signal(signal.SIGUSR1)
    check(d.wait_log("fetched 'chimera/postgres-password'", count=before + 1, timeout=5), "SIGUSR1 re-fetches")
    deadline = time.monotonic() + 5
    while not os.path.exists(f"{out}/postgres.env") and time.monotonic() < deadline:
        time.sleep(0.05)
    check(os.path.exists(f"{out}/postgres.env"), "SIGUSR1 rewrites a deleted target")

    # SIGHUP with a new, valid configuration: rotation + a new secret
    notify.drain()
    data = dict(CHIMERA)
    data["chimera/postgres-password"] = '{"password":"rotated-Pw"}'
    extra = f""", {{ name = "grafana-credentials"; store = "demo";
      data = ( {{ secret_key = "admin-password"; remote_ref = {{ key = "chimera/grafana-admin"; property = "password"; }}; }} );
      files = ( {{ path = "{out}/grafana"; format = "raw"; key = "admin-password"; }} ); }}"""
    s.write_config(config(data, extra))
    d.signal(signal.SIGHUP)
    m = notify.wait_for(lambda m: m.get("RELOADING") == "1")
    check(m is not None and m.get("MONOTONIC_USEC", "").isdigit(), "RELOADING=1 with MONOTONIC_USEC")
    check(notify.wait_for(lambda m: m.get("READY") == "1") is not None, "READY=1 after the reload")
    check(d.wait_log("reloaded"), "reloaded event logged")
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and not os.path.exists(f"{out}/grafana"):
        time.sleep(0.05)
    check(os.path.exists(f"{out}/grafana"), "a secret added by reload is written")
    time.sleep(0.3)
    with open(f"{out}/postgres.env") as f:
        check('password="rotated-Pw"' in f.read(), "a changed store value is written after reload")
    # The fake store's data changed, so both old secrets count as changed.
    check("3 secrets (1 added, 2 changed, 0 removed, 0 unchanged)" in d.output(),
          "reload summary counts: 1 added, 2 changed (their store changed), 0 removed")

    # SIGHUP with a broken file: rejected, READY=1 again, nothing changes
    with open(f"{out}/postgres.env") as f:
        good = f.read()
    s.write_config(config(data) + "\nbogus_setting = 1;\n")
    notify.drain()
    d.signal(signal.SIGHUP)
    check(notify.wait_for(lambda m: m.get("RELOADING") == "1") is not None, "RELOADING=1 on a bad reload too")
    check(notify.wait_for(lambda m: m.get("READY") == "1") is not None, "READY=1 after a rejected reload")
    check(d.wait_log("reload rejected"), "reload-rejected logged")
    check("bogus_setting" in d.output() and conf + ":" in d.output(), "rejection names file, line and setting")
    check(d.proc.poll() is None, "daemon still running after a bad reload")
    with open(f"{out}/postgres.env") as f:
        check(f.read() == good, "targets untouched by a bad reload")
    d.signal(signal.SIGUSR1)
    check(d.wait_log("fetched 'chimera/grafana-admin'", count=2), "old configuration still active after rejection")

    # a failing secret is retried with backoff, and the rest keeps working
    s.write_config(config(data, """, { name = "missing"; store = "demo";
      data = ( { secret_key = "x"; remote_ref = { key = "chimera/nope"; }; } );
      files = ( { path = "%s/missing"; format = "raw"; key = "x"; } ); }""" % out))
    d.signal(signal.SIGHUP)
    check(d.wait_log("cannot fetch 'chimera/nope'", count=3, timeout=6), "a failing secret is retried (backoff)")
    check("3 secrets (1 added, 0 changed, 1 removed, 2 unchanged)" in d.output(),
          "reload summary counts: grafana removed, the two others unchanged, 'missing' added")
    m = notify.wait_for(lambda m: "1 failing" in m.get("STATUS", ""), timeout=3)
    check(m is not None, "STATUS counts the failing secret")
    check("retrying in" in d.output(), "retry delay logged")

    out_text = d.output()
    check("rotated-Pw" not in out_text, "rotated value not logged")
    check(not no_secrets_in(out_text), "no secret value in the daemon's output")

    # SIGTERM: STOPPING=1, exit 0
    notify.drain()
    d.signal(signal.SIGTERM)
    rc = d.proc.wait(timeout=10)
    check(rc == 0, f"SIGTERM: exit 0 (got {rc})")
    check(any(m.get("STOPPING") == "1" for m in notify.drain(0.2)), "STOPPING=1 sent")
finally:
    d.stop()
    notify.close()

# A reload that finds only a template_file's content changed re-renders the target.
try:
    tmpl = s.p("redis.tmpl")
    with open(tmpl, "w") as f:
        f.write("requirepass {{ password }}\n")
    os.chmod(tmpl, 0o600)
    conf = s.write_config(f"""
stores = {{ {fake_store()} }};
secrets = ( {{ name = "redis-credentials"; store = "demo";
  data = ( {{ secret_key = "password"; remote_ref = {{ key = "chimera/redis-password"; property = "password"; }}; }} );
  files = ( {{ path = "{out}/redis.conf"; format = "template"; template_file = "{tmpl}"; }} ); }} );
""", name="tmpl.conf")
    d = Daemon(conf, s)
    check(d.wait_log("wrote " + f"{out}/redis.conf"), "template_file target written")
    with open(tmpl, "w") as f:
        f.write("requirepass {{ password }}\nmasterauth {{ password }}\n")
    d.signal(signal.SIGHUP)
    check(d.wait_log("reloaded") and d.wait_log("wrote " + f"{out}/redis.conf", count=2),
          "a reload re-renders a target whose template_file changed")
    with open(f"{out}/redis.conf") as f:
        check(f.read() == "requirepass redis-s3cret\nmasterauth redis-s3cret\n", "new template content in place")
    check("1 changed" in d.output(), "the reload counts the secret as changed")
finally:
    d.stop()
    s.cleanup()
done()
