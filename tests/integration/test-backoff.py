#!/usr/bin/env python3
"""Retries after a failed sync: the first retries of secrets that failed together are
spread over [min_backoff, 2 x min_backoff], not all at exactly min_backoff; and a reload
that shortens min_backoff/max_backoff applies to retries already waiting."""
import os
import re
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lib import Daemon, Scratch, check, done, fake_store, require_daemon

require_daemon()

s = Scratch()
N = 20


def config(min_backoff, max_backoff):
    secrets = ", ".join(f"""{{ name = "missing-{i}"; store = "demo";
      data = ( {{ secret_key = "v"; remote_ref = {{ key = "chimera/not-there-{i}"; }}; }} );
      files = ( {{ path = "{s.p('out', f'm{i}')}"; format = "raw"; key = "v"; }} ); }}""" for i in range(N))
    return s.write_config(f"""
daemon = {{ min_backoff = "{min_backoff}"; max_backoff = "{max_backoff}"; }};
stores = {{ {fake_store()} }};
secrets = ( {secrets} );
""")


def seconds(text):
    total = 0.0
    for n, unit in re.findall(r"(\d+)(ms|h|m|s)", text):
        total += int(n) * {"h": 3600, "m": 60, "s": 1, "ms": 0.001}[unit]
    return total


d = Daemon(config("10s", "1h"), s)
try:
    check(d.wait_log("attempt 1 failed", count=N, timeout=20), f"all {N} secrets fail their first attempt")
    delays = [seconds(x) for x in re.findall(r"attempt 1 failed; retrying in (\S+)", d.output())]
    check(len(delays) == N and all(10 <= x <= 20 for x in delays),
          f"every first retry lies in [min_backoff, 2 x min_backoff] ({sorted(delays)})")
    check(len(set(delays)) >= N // 2, f"the first retries are spread, not all the same ({len(set(delays))} distinct)")

    # A reload that shortens the backoff: the retries waiting (10-20 s away) come sooner.
    config("200ms", "400ms")
    d.signal(signal.SIGHUP)
    check(d.wait_log("reloaded ", timeout=10), "the reload is applied")
    start = time.monotonic()
    check(d.wait_log("attempt 2 failed", count=N, timeout=5),
          f"the new backoff applies to retries already waiting (after {time.monotonic() - start:.1f} s)")
finally:
    rc = d.stop()
    s.cleanup()
check(rc == 0, "SIGTERM: exit 0")
done()
