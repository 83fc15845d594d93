#!/usr/bin/env python3
"""secretsyncctl with 10,000 secrets: how long `status` and `status --json` take (target:
under 100 ms), and how much the daemon's RSS grows for the status records, the control
socket's replies and the metrics file (target: under 2 MiB). Prints figures."""
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
from lib import Daemon, Scratch, fake_store, require_daemon, skip, DAEMON

N = int(os.environ.get("BENCH_CTL_SECRETS", "10000"))
RUNS = 7
CTL = os.environ.get("SECRETSYNCCTL") or os.path.join(os.path.dirname(DAEMON), "secretsyncctl")
require_daemon()
if not os.access(CTL, os.X_OK):
    skip(f"{CTL} not built")


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def run(metrics):
    s = Scratch()
    sock = s.p("run", "io.secretsyncd")
    secrets = ",\n".join(
        f'{{ name = "secret-{i}"; store = "demo"; data = ( {{ secret_key = "password"; remote_ref = {{ key = "chimera/redis-password"; property = "password"; }}; }} ); '
        f'files = ( {{ path = "{s.p("out", str(i % 100), f"s{i}.env")}"; format = "env"; }} ); }}'
        for i in range(N))
    metrics_line = f'metrics_file = "{s.p("metrics", "secretsyncd.prom")}";' if metrics else ""
    conf = s.write_config(f"""
daemon = {{ runtime_dir = "{s.p('run')}"; state_dir = "{s.p('state')}"; {metrics_line} }};
stores = {{ {fake_store()} }};
secrets = ( {secrets} );
""")
    d = Daemon(conf, s)
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and not d.wait_log("first round done", timeout=1):
            pass
        time.sleep(6)  # the status file is saved and the metrics written
        base = rss_kib(d.proc.pid)
        figures = {}
        for args in (["status"], ["--json", "status"]):
            times = []
            for _ in range(RUNS):
                t0 = time.monotonic()
                r = subprocess.run([CTL, "--socket", sock] + args, capture_output=True, text=True)
                times.append(time.monotonic() - t0)
                assert r.returncode == 0, r.stderr
            if args[0] == "--json":
                assert len(json.loads(r.stdout)["secrets"]) == N
            else:
                assert len(r.stdout.splitlines()) == N + 1
            times.sort()
            figures[" ".join(args)] = (times[len(times) // 2], times[-1], len(r.stdout))
        subprocess.run([CTL, "--socket", sock, "status", "secret-42"], capture_output=True, check=True)
        time.sleep(11)  # one more metrics write (at most every 10 s)
        after = rss_kib(d.proc.pid)
        return base, after, figures
    finally:
        d.stop()
        s.cleanup()


base, after, figures = run(metrics=True)
print(f"bench-ctl: {N} secrets")
for k, (median, worst, size) in figures.items():
    print(f"  secretsyncctl {k:14s} median {median * 1000:6.1f} ms, worst {worst * 1000:6.1f} ms, output {size / 1024:.0f} KiB")
print(f"  daemon RSS after the first round (status records, status.json and metrics written): {base / 1024:.1f} MiB")
print(f"  daemon RSS after {2 * RUNS} status calls and another metrics write: {after / 1024:.1f} MiB "
      f"(+{(after - base) / 1024:.2f} MiB)")
