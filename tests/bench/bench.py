#!/usr/bin/env python3
"""secretsyncd benchmarks (figures, not pass/fail):

  1. time of `--once` syncing N secrets from the fake store, each to its own file, in 100
     directories and in as many directories as files
  2. peak RSS of `--once` with 10,000 secrets
  3. wakeups per minute of the idle daemon (voluntary context switches), without and with
     a watchdog

Targets (2-core machine): 1,000 files in under 1 s; 10,000 secrets in under 16 MiB peak
RSS; idle wakeups only for due refresh timers and the watchdog.
"""
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time

DAEMON = os.environ.get("SECRETSYNCD") or os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                                       "build", "secretsyncd")


def make_config(d, n, refresh="1h", fmt="env", dirs=100):
    out = os.path.join(d, "out")
    lines = ['daemon = { log_level = "warning"; refresh_interval = "%s"; };' % refresh,
             'stores = { demo = { type = "fake"; data = ( ']
    lines.append(",\n".join('{ key = "bench/s%d"; value = "{\\"password\\":\\"value-%d\\"}"; }' % (i, i)
                            for i in range(n)))
    lines.append("); }; };\nsecrets = (")
    lines.append(",\n".join(
        '{ name = "s%d"; store = "demo"; data = ( { secret_key = "PASSWORD"; remote_ref = { key = "bench/s%d"; '
        'property = "password"; }; } ); files = ( { path = "%s/d%d/s%d.env"; format = "%s"; } ); }'
        % (i, i, out, i % dirs, i, fmt) for i in range(n)))
    lines.append(");")
    path = os.path.join(d, "bench.conf")
    with open(path, "w") as f:
        f.write("\n".join(lines))
    os.chmod(path, 0o600)
    return path, out


def once(conf, nofile=None):
    """Run --once; returns (seconds, peak RSS in KiB). The peak comes from /usr/bin/time: a
    child forked from this (large) Python process would report Python's RSS as its own,
    since the kernel keeps ru_maxrss across exec."""
    t0 = time.monotonic()
    limit = (lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))) if nofile else None
    p = subprocess.run(["/usr/bin/time", "-f", "%M", DAEMON, "-c", conf, "--once"], stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE, text=True, preexec_fn=limit)
    dt = time.monotonic() - t0
    if p.returncode != 0:
        sys.exit(f"--once failed: {p.stderr[-500:]}")
    return dt, int(p.stderr.strip().split("\n")[-1])


def idle_wakeups(conf, seconds, env=None):
    e = {k: v for k, v in os.environ.items() if k not in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID")}
    e.update(env or {})
    p = subprocess.Popen([DAEMON, "-c", conf], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=e)
    time.sleep(8)  # first round done, and the status saved 5 s after it

    def switches():
        with open(f"/proc/{p.pid}/status") as f:
            return sum(int(l.split()[1]) for l in f if "ctxt_switches" in l)

    a = switches()
    time.sleep(seconds)
    b = switches()
    p.terminate()
    p.wait()
    return (b - a) * 60.0 / seconds


def main():
    if not os.access(DAEMON, os.X_OK):
        print(f"SKIP: {DAEMON} not built")
        return 77
    if not os.access("/usr/bin/time", os.X_OK):
        print("SKIP: /usr/bin/time missing (apt-get install time)")
        return 77
    quick = "--quick" in sys.argv
    d = tempfile.mkdtemp(prefix="secretsyncd-bench-", dir="/var/tmp")
    os.chmod(d, 0o755)
    try:
        conf, out = make_config(d, 1000)
        t_first, rss1k = once(conf)
        t_again, _ = once(conf)
        print(f"--once, 1,000 secrets -> 1,000 env files: first run {t_first:.3f} s "
              f"(target < 1 s), unchanged re-run {t_again:.3f} s, peak RSS {rss1k / 1024:.1f} MiB")
        shutil.rmtree(out)

        # Every file in a directory of its own: one directory fsync per file, and a write
        # batch that must not run out of descriptors (run under the usual 1,024 soft limit).
        conf, out = make_config(d, 1500, dirs=1500)
        t_first, rss = once(conf, nofile=1024)
        print(f"--once, 1,500 secrets -> 1,500 env files in 1,500 directories, 1,024 open files at most: "
              f"{t_first:.3f} s, peak RSS {rss / 1024:.1f} MiB")
        shutil.rmtree(out)

        n = 2000 if quick else 10000
        conf, out = make_config(d, n)
        t, rss = once(conf)
        print(f"--once, {n:,} secrets -> {n:,} files: {t:.3f} s, peak RSS {rss / 1024:.1f} MiB (target < 16 MiB)")
        shutil.rmtree(out)

        secs = 5 if quick else 20
        conf, out = make_config(d, 100)
        w = idle_wakeups(conf, secs)
        print(f"idle daemon, 100 secrets refreshing hourly, no watchdog: {w:.1f} wakeups/min over {secs} s")
        w = idle_wakeups(conf, secs, {"WATCHDOG_USEC": "10000000"})
        print(f"idle daemon, same, WatchdogSec=10s (WATCHDOG=1 every 5 s = 12/min): {w:.1f} wakeups/min")
    finally:
        shutil.rmtree(d, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
