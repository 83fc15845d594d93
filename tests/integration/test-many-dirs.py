#!/usr/bin/env python3
"""1,500 targets in 1,500 directories under the usual limit of 1,024 open files: every one
is written (a write batch must not hold a descriptor per directory until the end), and the
daemon raises its soft limit of open files to the hard one at start, as systemd's own
daemons do."""
import os
import resource
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lib import DAEMON, Scratch, check, done, fake_store, require_daemon

require_daemon()

SECRETS, FILES_EACH = 300, 5
s = Scratch()
out = s.p("out")


def target(i, k):
    return os.path.join(out, f"s{i:03d}-f{k}", "secret.env")


data = {f"many/s{i}": f"many-value-{i}" for i in range(SECRETS)}
secrets = []
for i in range(SECRETS):
    files = ", ".join(f'{{ path = "{target(i, k)}"; format = "env"; }}' for k in range(FILES_EACH))
    secrets.append(f"""{{ name = "s{i}"; store = "demo";
      data = ( {{ secret_key = "VALUE"; remote_ref = {{ key = "many/s{i}"; }}; }} );
      files = ( {files} ); }}""")
conf = s.write_config(f"""
stores = {{ {fake_store(data=data)} }};
secrets = ( {", ".join(secrets)} );
""")


def limit(soft, hard):
    return lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


env = {k: v for k, v in os.environ.items() if k not in ("NOTIFY_SOCKET", "JOURNAL_STREAM")}
try:
    # Soft and hard at 1,024: raising the soft limit cannot help, the batch bound must.
    r = subprocess.run([DAEMON, "-c", conf, "--once"], capture_output=True, text=True, timeout=300, env=env,
                       preexec_fn=limit(1024, 1024))
    written = sum(1 for i in range(SECRETS) for k in range(FILES_EACH) if os.path.exists(target(i, k)))
    check(r.returncode == 0, "--once under 1,024 open files exits 0" + ("" if r.returncode == 0 else f" ({r.returncode}: {r.stderr[-300:]})"))
    check(written == SECRETS * FILES_EACH, f"all {SECRETS * FILES_EACH} targets written ({written})")
    check("Too many open files" not in r.stderr, "no 'Too many open files'")
    with open(target(42, 3)) as f:
        check(f.read() == 'VALUE="many-value-42"\n', "a target holds its value")

    # The soft limit is raised to the hard one.
    p = subprocess.Popen([DAEMON, "-c", conf], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
                         preexec_fn=limit(1024, 8192))
    try:
        soft = None
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and soft != 8192:
            try:
                with open(f"/proc/{p.pid}/limits") as f:
                    for line in f:
                        if line.startswith("Max open files"):
                            soft = int(line.split()[3])
            except (FileNotFoundError, ValueError):
                pass
            time.sleep(0.05)
        check(soft == 8192, f"the soft limit of open files is raised to the hard one ({soft})")
    finally:
        p.terminate()
        p.wait(timeout=30)
finally:
    s.cleanup()
done()
