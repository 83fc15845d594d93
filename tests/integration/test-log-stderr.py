#!/usr/bin/env python3
"""The daemon's stderr is the journal stream (JOURNAL_STREAM matches it) but journald's
socket is missing, as in a unit with RootDirectory= or a container: every event must still
be written, to stderr, instead of vanishing."""
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lib import DAEMON, Scratch, check, done, fake_store, require_daemon, skip

require_daemon()

SOCKET = "/run/systemd/journal/socket"
s = Scratch()
conf = s.write_config(f"""
stores = {{ {fake_store()} }};
secrets = ( {{ name = "redis-credentials"; store = "demo";
               data = ( {{ secret_key = "password"; remote_ref = {{ key = "chimera/redis-password"; property = "password"; }}; }} );
               files = ( {{ path = "{s.p('out', 'redis.env')}"; format = "env"; }} ); }} );
""")
err_path = s.p("stderr")
cmd = [DAEMON, "-c", conf, "--once"]
if os.path.exists(SOCKET):
    # Hide journald from the daemon in a mount namespace of its own.
    if os.geteuid() != 0 or subprocess.run(["unshare", "--mount", "true"], capture_output=True).returncode != 0:
        skip(f"{SOCKET} exists and no mount namespace can hide it (needs root and unshare)")
    cmd = ["unshare", "--mount", "sh", "-c",
           'mount -t tmpfs tmpfs /run/systemd/journal && exec "$@"', "sh"] + cmd
try:
    with open(err_path, "w+") as err:
        st = os.fstat(err.fileno())
        env = {k: v for k, v in os.environ.items() if k != "NOTIFY_SOCKET"}
        env["JOURNAL_STREAM"] = f"{st.st_dev}:{st.st_ino}"
        r = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=err, env=env, timeout=60)
    with open(err_path) as f:
        text = f.read()
    check(r.returncode == 0, f"--once exits 0 ({r.returncode})")
    check("wrote " in text and "redis-credentials" in text, f"the events reach stderr ({text[:200]!r})")
    check("redis-s3cret" not in text, "no value in them")
finally:
    s.cleanup()
done()
