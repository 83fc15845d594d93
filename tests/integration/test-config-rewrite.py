#!/usr/bin/env python3
"""The configuration file rewritten in place (truncated, then written slowly, as `cp`, `cat >`
or an editor do) again and again while the daemon is sent SIGHUP in a loop and
--check-config reads it: nothing crashes (the file was once mapped: SIGBUS), and a file
caught empty or cut short is never applied (that would remove every secret)."""
import os
import random
import signal
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lib import Daemon, Scratch, check, done, require_daemon, run

N = 150
SECONDS = 8

require_daemon()
s = Scratch()
d = None
try:
    os.mkdir(s.p("out"))
    data = {f"app/s{i}": '{"password":"value-%d"}' % i for i in range(N)}
    stores = ",\n".join('{ key = "%s"; value = "{\\"password\\":\\"value-%d\\"}"; }' % (k, i)
                        for i, k in enumerate(data))
    secrets = ",\n".join(
        f'{{ name = "s{i}"; store = "demo"; data = ( {{ secret_key = "PASSWORD"; remote_ref = {{ key = "app/s{i}"; '
        f'property = "password"; }}; }} ); files = ( {{ path = "{s.p("out", f"s{i}.env")}"; format = "env"; }} ); }}'
        for i in range(N))
    text = (f'daemon = {{ refresh_interval = "1h"; }};\nstores = {{ demo = {{ type = "fake"; data = (\n{stores}\n); }}; }};\n'
            f'secrets = (\n{secrets}\n);\n').encode()
    path = s.write_config(text.decode())
    files = [s.p("out", f"s{i}.env") for i in range(N)]

    d = Daemon(path, s)
    check(d.wait_log("first round done"), "daemon synced the first round")
    check(all(os.path.exists(f) for f in files), f"all {N} files written")

    stop = threading.Event()
    rewrites = [0]
    checks = []

    gaps = [0.0]

    def writer():
        chunk = len(text) // 16 + 1
        while not stop.is_set():
            with open(path, "r+b") as f:
                f.truncate(0)
                last = time.monotonic()
                for i in range(0, len(text), chunk):
                    f.write(text[i:i + chunk])
                    f.flush()
                    gaps[0] = max(gaps[0], time.monotonic() - last)
                    last = time.monotonic()
                    time.sleep(0.003)
            rewrites[0] += 1
            time.sleep(random.uniform(0, 0.15))

    def checker():
        while not stop.is_set():
            r = run(["-c", path, "--check-config"])
            checks.append((r.returncode, r.stderr))

    threads = [threading.Thread(target=writer), threading.Thread(target=checker)]
    for t in threads:
        t.start()
    hups = 0
    end = time.monotonic() + SECONDS
    while time.monotonic() < end and d.proc.poll() is None:
        d.signal(signal.SIGHUP)
        hups += 1
        time.sleep(0.03)
    stop.set()
    for t in threads:
        t.join()

    # Settled again: one last reload must apply the file as it is.
    time.sleep(0.3)
    n_before = d.output().count("reloaded ")
    if d.proc.poll() is None:
        d.signal(signal.SIGHUP)
        d.wait_log("reloaded ", count=n_before + 1)
    print(f"longest pause inside a rewrite: {gaps[0] * 1000:.0f} ms")
    alive = d.proc.poll() is None
    check(alive, f"daemon survived {hups} SIGHUPs during {rewrites[0]} rewrites (exit: {d.proc.returncode})")

    out = d.output()
    reloads = [l for l in out.split("\n") if "reloaded " in l]
    check(len(reloads) > 1, f"{len(reloads)} reloads applied")
    bad = [l for l in reloads if f": {N} secrets (0 added, 0 changed, 0 removed, {N} unchanged)" not in l]
    check(not bad, "every applied reload had the whole file: no secret removed" + (f" ({bad[0]})" if bad else ""))
    rejected = [l for l in out.split("\n") if "reload rejected" in l]
    wrong = [l for l in rejected if "changed" not in l]
    check(not wrong, f"{len(rejected)} rejected reloads, each because the file was being changed"
          + (f" (not: {wrong[0]})" if wrong else ""))
    check(all(os.path.exists(f) for f in files), f"all {N} files still there")

    crashed = [rc for rc, _ in checks if rc < 0]
    check(checks and not crashed, f"--check-config ran {len(checks)} times without a crash "
          f"(signals: {sorted(set(-rc for rc in crashed))})")
    odd = [err for rc, err in checks if rc != 0 and not (rc == 2 and path in err and "changed" in err)]
    check(not odd, "each --check-config passed or said the file was being changed"
          + (f" (not: {odd[0].strip()[:200]})" if odd else ""))
    check(any(rc == 0 for rc, _ in checks), "some --check-config runs passed")
finally:
    if d:
        d.stop()
    s.cleanup()
done()
