#!/usr/bin/env python3
"""on_change as SPEC promises it: run without a shell (arguments with shell metacharacters
arrive literally, the daemon itself is the command's parent), with no secret value in its
environment, and waited for by SIGTERM (the daemon exits 0 once the command is done)."""
import json
import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lib import Daemon, Scratch, check, done, fake_store, lc_string, require_daemon, run

require_daemon()
s = Scratch()
out = s.p("out")
VALUES = {"app/db": '{"password":"hookTOK-7f3a9c"}', "app/api": '{"token":"hookTOK-b81e20"}'}
NEVER = ["hookTOK-7f3a9c", "hookTOK-b81e20"]

# The hook records what it was given, then (if asked to) takes its time.
hook = s.p("hook.py")
with open(hook, "w") as f:
    f.write(f"""#!{sys.executable}
import json, os, sys, time
report = {{"argv": sys.argv, "ppid": os.getppid(), "env": dict(os.environ), "pid": os.getpid()}}
name = os.path.join({s.path!r}, "hook-" + os.environ.get("SECRETSYNC_SECRET", "unknown"))
with open(name + ".started", "w") as f:
    json.dump(report, f)
if len(sys.argv) > 1 and sys.argv[1] == "--slow":
    time.sleep(2)
with open(name + ".done", "w") as f:
    f.write(str(time.time()))
""")
os.chmod(hook, 0o755)

# Shell metacharacters of every kind: each must reach the hook as one argument, unchanged.
ARGS = ["$HOME", "${PATH}", "a;b", "x && touch pwned", "it's", '"dq"', "two words", "*", "`id`", "$(id)",
        "|cat", ">redirected", "back\\slash", "tab\there", "#comment"]


def config(hook_args, name="secretsyncd.conf"):
    argv = ", ".join(lc_string(a) for a in [hook] + hook_args)
    return s.write_config(name=name, text=f"""
stores = {{ {fake_store(data=VALUES)} }};
secrets = (
  {{ name = "db"; store = "demo";
     data = ( {{ secret_key = "PASSWORD"; remote_ref = {{ key = "app/db"; property = "password"; }}; }} );
     files = ( {{ path = "{out}/db.env"; format = "env"; on_change = [ {argv} ]; }} ); }},
  {{ name = "api"; store = "demo";
     data = ( {{ secret_key = "token"; remote_ref = {{ key = "app/api"; property = "token"; }}; }} );
     files = ( {{ path = "{out}/api.token"; format = "raw"; key = "token"; }} ); }}
);
""")


def report(secret):
    try:
        with open(s.p(f"hook-{secret}.started")) as f:
            return json.load(f)
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def wait_file(path, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if os.path.exists(path):
            return True
        time.sleep(0.02)
    return False


try:
    # --once: argv, parent and environment of the hook
    conf = config(ARGS)
    r = run(["-c", conf, "--once"], cwd=s.path)
    check(r.returncode == 0, f"--once with an on_change hook exits 0 ({r.stderr[-300:] if r.returncode else ''})")
    rep = report("db")
    if check(rep is not None, "the hook ran"):
        check(rep["argv"] == [hook] + ARGS, f"every argument arrives literally, none split, expanded or "
                                            f"interpreted (got {rep['argv'][1:]})")
        env = rep["env"]
        check(not [v for v in NEVER if v in json.dumps(env)], "no secret value in the hook's environment")
        check(set(env) <= {"PATH", "LANG", "SECRETSYNC_SECRET", "SECRETSYNC_TARGET"},
              f"the hook's environment is PATH, LANG and SECRETSYNC_* only (got {sorted(env)})")
        check(env.get("SECRETSYNC_SECRET") == "db" and env.get("SECRETSYNC_TARGET") == f"{out}/db.env",
              "SECRETSYNC_SECRET and SECRETSYNC_TARGET name the secret and target")
        check(not [v for v in NEVER if v in json.dumps(rep["argv"])], "no secret value in the hook's argv")
    check(not os.path.exists(s.p("pwned")) and not os.path.exists(s.p("redirected")),
          "no shell ran the arguments (no file made by '&& touch' or '>')")
    check(not [v for v in NEVER if v in r.stdout + r.stderr], "no secret value in the daemon's output")

    # The daemon, not a shell, is the hook's parent.
    notify_conf = config(["--fast"], name="daemon.conf")
    for n in os.listdir(s.path):
        if n.startswith("hook-"):
            os.unlink(s.p(n))
    os.unlink(f"{out}/db.env")
    d = Daemon(notify_conf, s)
    try:
        check(wait_file(s.p("hook-db.done")), "daemon: the hook ran")
        rep = report("db")
        check(rep is not None and rep["ppid"] == d.proc.pid,
              f"the hook's parent is the daemon (pid {d.proc.pid}), not a shell (got {rep and rep['ppid']})")
    finally:
        d.stop()

    # SIGTERM while a slow hook runs: the daemon waits for it, then exits 0.
    slow_conf = config(["--slow"], name="slow.conf")
    for n in os.listdir(s.path):
        if n.startswith("hook-"):
            os.unlink(s.p(n))
    os.unlink(f"{out}/db.env")
    d = Daemon(slow_conf, s)
    try:
        started = wait_file(s.p("hook-db.started"))
        check(started, "daemon: the slow hook started")
        d.signal(signal.SIGTERM)
        t0 = time.monotonic()
        try:
            rc = d.proc.wait(timeout=15)
        except Exception:
            rc = None
        exited = time.time()
        waited = time.monotonic() - t0
        check(os.path.exists(s.p("hook-db.done")), "SIGTERM: the hook was not killed; it finished its work")
        check(rc == 0, f"SIGTERM: exit 0 after the hook finished (got {rc})")
        check(waited >= 1.5, f"SIGTERM: the daemon waited for the hook ({waited:.1f} s of its 2 s)")
        if os.path.exists(s.p("hook-db.done")):
            with open(s.p("hook-db.done")) as f:
                check(float(f.read()) <= exited, "the hook ended before the daemon exited")
        check("command-run" in d.output(), "the hook's success is logged (command-run) before the exit")
    finally:
        d.stop()
finally:
    s.cleanup()
done()
