#!/usr/bin/env python3
"""Crash consistency: SIGKILL the daemon at random moments while it rewrites 2,000 targets of
every format (env, json, raw, template, dir; various owners, groups and modes), while it
reloads (SIGHUP), and while an on_change command runs. After each kill every target holds
its complete old or complete new content with the right owner, group and mode, and every
dir target's ..data points at a complete set. A restart removes what the kills left behind
(temporary ".#<name>.XXXXXX" files, hidden "..<timestamp>" directories no ..data points at,
"..data_tmp"/"..link_tmp" links) and nothing else: foreign files stay.

Reproducible: the seed is printed; SECRETSYNCD_CRASH_SEED=N replays a run and
SECRETSYNCD_CRASH_KILLS=N changes the number of kills (default 200; the benchmark runs
more). Runs as root (targets are chowned), on tmpfs (/dev/shm): a SIGKILL loses nothing
the kernel already has, so fsync costs nothing here and a round of 2,000 writes is quick."""
import grp
import json
import os
import pwd
import random
import re
import signal
import stat
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lib import DAEMON, NotifySocket, Scratch, check, done, lc_string, require_daemon, run, skip

require_daemon()
if os.geteuid() != 0:
    skip("needs root: targets are chowned to other users")
try:
    NOBODY = pwd.getpwnam("nobody").pw_uid
    NOGROUP = grp.getgrnam("nogroup").gr_gid
except KeyError:
    skip("needs the user nobody and the group nogroup")

SEED = int(os.environ.get("SECRETSYNCD_CRASH_SEED") or random.SystemRandom().randrange(1 << 32))
KILLS = int(os.environ.get("SECRETSYNCD_CRASH_KILLS") or 200)
print(f"seed {SEED} (replay with SECRETSYNCD_CRASH_SEED={SEED}), {KILLS} kills")
rng = random.Random(SEED)

SECRETS, FILE_DIRS = 400, 20  # 5 targets each: 2,000 targets
OWNERS = [("root", "root", 0, 0), ("nobody", "nogroup", NOBODY, NOGROUP), ("root", "nogroup", 0, NOGROUP)]
MODES = [0o400, 0o440, 0o600, 0o640, 0o644]
FORMATS = ["env", "json", "raw", "template", "dir"]

base = os.path.isdir("/dev/shm") and "/dev/shm" or None
s = Scratch()
if base:
    s.cleanup()
    s.path = tempfile.mkdtemp(prefix="secretsyncd-crash-", dir=base)
    os.chmod(s.path, 0o755)
out = s.p("out")
hook_marker = s.p("hook.pid")


def target_path(i, fmt):
    if fmt == "dir":
        return os.path.join(out, "dirs", f"s{i}")
    ext = {"env": "env", "json": "json", "raw": "raw", "template": "conf"}[fmt]
    return os.path.join(out, f"f{i % FILE_DIRS}", f"s{i}.{ext}")


def target_meta(i, k):
    owner = OWNERS[(i + k) % len(OWNERS)]
    return owner, MODES[(i * 5 + k) % len(MODES)]


def values(gen, i):
    return {"A": f"g{gen}-s{i}-A-{rng.getrandbits(64):016x}", "B": f"g{gen}-s{i}-B-{rng.getrandbits(64):016x}"}


def expected(fmt, v):
    if fmt == "env":
        return f'A="{v["A"]}"\nB="{v["B"]}"\n'.encode()
    if fmt == "json":
        return (json.dumps(v, separators=(",", ":"), sort_keys=True) + "\n").encode()
    if fmt == "raw":
        return v["A"].encode()
    if fmt == "template":
        return f'a={v["A"]} b={v["B"]}\n'.encode()
    return {k: x.encode() for k, x in v.items()}


def write_config(gen_values, hook=False):
    entries = ",\n".join(f"{{ key = \"s{i}\"; value = {lc_string(json.dumps(v))}; }}"
                         for i, v in enumerate(gen_values))
    secrets = []
    for i in range(SECRETS):
        files = []
        for k, fmt in enumerate(FORMATS):
            (owner, group, _, _), mode = target_meta(i, k)
            extra = {"raw": 'key = "A";', "template": 'template = "a={{ A }} b={{ B }}\\n";'}.get(fmt, "")
            if hook and i == 0 and fmt == "env":
                extra += (f' on_change = [ "/bin/sh", "-c", "echo $$ > {hook_marker}.tmp && '
                          f'mv {hook_marker}.tmp {hook_marker} && exec sleep 30" ];')
            files.append(f'{{ path = "{target_path(i, fmt)}"; format = "{fmt}"; owner = "{owner}"; '
                         f'group = "{group}"; mode = "{mode:04o}"; {extra} }}')
        secrets.append(f'{{ name = "s{i}"; store = "demo"; data_from = ( {{ extract = {{ key = "s{i}"; }}; }} );\n'
                       f'  files = ( {", ".join(files)} ); }}')
    return s.write_config(f"""
daemon = {{ refresh_interval = "1h"; log_level = "notice"; }};
stores = {{ demo = {{ type = "fake"; data = ( {entries} ); }}; }};
secrets = ( {",".join(secrets)} );
""")


def read_dir_target(path):
    """The key set ..data points at, or a string saying what is wrong."""
    try:
        data = os.readlink(os.path.join(path, "..data"))
    except OSError as e:
        return f"..data: {e.strerror}"
    hidden = os.path.join(path, data)
    keys = {}
    for name in os.listdir(hidden):
        st = os.lstat(os.path.join(hidden, name))
        with open(os.path.join(hidden, name), "rb") as f:
            keys[name] = (f.read(), st)
    for name in keys:
        if os.readlink(os.path.join(path, name)) != f"..data/{name}":
            return f"key link {name} does not point at ..data/{name}"
    return keys


def check_targets(held, new):
    """Every target holds, complete, what held[(i, fmt)] says it held before or one of new[i]
    (lists of values), with its owner, group and mode. Updates held to what is there now;
    returns the problems."""
    problems = []
    for i in range(SECRETS):
        for k, fmt in enumerate(FORMATS):
            path = target_path(i, fmt)
            (_, _, uid, gid), mode = target_meta(i, k)
            choices = [held.get((i, fmt))] + new[i]
            if fmt == "dir":
                got = read_dir_target(path)
                if isinstance(got, str):
                    problems.append(f"{path}: {got}")
                    continue
                content = {n: c for n, (c, _) in got.items()}
                metas = {n: st for n, (_, st) in got.items()}
            else:
                try:
                    st = os.lstat(path)
                    with open(path, "rb") as f:
                        content = f.read()
                except OSError as e:
                    problems.append(f"{path}: {e.strerror}")
                    continue
                metas = {path: st}
            match = [v for v in choices if v is not None and content == expected(fmt, v)]
            bad_meta = [n for n, st in metas.items()
                        if (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) != (uid, gid, mode)]
            if not match:
                problems.append(f"{path}: neither the old nor the new content, complete")
                continue
            if bad_meta:
                problems.append(f"{path}: wrong owner, group or mode ({bad_meta})")
            held[(i, fmt)] = match[0]
    return problems


TEMP_RE = re.compile(r"\.#s[0-9]+\.(env|json|raw|conf)\.[A-Za-z0-9]{6}$")


def leftovers():
    """What the daemon's own interrupted writes left behind."""
    found = []
    for d in range(FILE_DIRS):
        path = os.path.join(out, f"f{d}")
        found += [os.path.join(path, n) for n in os.listdir(path)
                  if TEMP_RE.match(n) and not os.path.islink(os.path.join(path, n))]
    for i in range(SECRETS):
        path = target_path(i, "dir")
        try:
            data = os.readlink(os.path.join(path, "..data"))
        except OSError:
            data = None
        for n in os.listdir(path):
            if n in ("..data_tmp", "..link_tmp") or (n.startswith("..2") and n != data):
                found.append(os.path.join(path, n))
    for n in os.listdir(s.p("state")):
        if re.match(r"\.#.*\.[A-Za-z0-9]{6}$", n):
            found.append(s.p("state", n))
    return found


# Files that look like ours but are not: a clean-up must leave every one of them.
def plant_foreign():
    victim = s.p("victim")
    with open(victim, "w") as f:
        f.write("not yours\n")
    planted = {
        os.path.join(out, "f0", ".#other.env.abcdef"): "file",       # not a target's name
        os.path.join(out, "f0", ".#s0.env.abc"): "file",             # not our suffix
        os.path.join(out, "f0", ".#s0.env.abcdef.bak"): "file",
        os.path.join(out, "f0", "..2020_01_01_00_00_00.000000001"): "dir",  # not a dir target
        os.path.join(target_path(1, "dir"), "README"): "file",       # an operator's file
        os.path.join(target_path(1, "dir"), "..data.orig"): "file",
        os.path.join(out, "f1", ".#s1.env.Xy12Z9"): "symlink",       # a link, not our file
    }
    for path, kind in planted.items():
        if kind == "file":
            with open(path, "w") as f:
                f.write("foreign\n")
        elif kind == "dir":
            os.mkdir(path)
        else:
            os.symlink(victim, path)
    return planted, victim


def kill_at(proc, delay):
    time.sleep(delay)
    proc.kill()
    proc.wait()


def daemon(conf, notify):
    env = {k: v for k, v in os.environ.items() if k not in ("JOURNAL_STREAM",)}
    env["NOTIFY_SOCKET"] = notify.path
    return subprocess.Popen([DAEMON, "-c", conf], stdout=log, stderr=subprocess.STDOUT, env=env)


def wait_ready(notify, timeout=60):
    return notify.wait_for(lambda m: m.get("READY") == "1", timeout) is not None


def plant_leftovers():
    """What a kill leaves, made by hand so that every clean start has some to remove: a
    temporary file of a target, a hidden directory ..data does not point at (with a key in
    it), the temporary ..data link, and a key link made for a ..data that never came."""
    tmp = os.path.join(out, "f5", ".#s5.env.AbC123")
    with open(tmp, "w") as f:
        f.write('A="half-writ')
    d = target_path(6, "dir")
    hidden = os.path.join(d, "..2021_01_01_00_00_00.000000007")
    os.mkdir(hidden, 0o700)
    with open(os.path.join(hidden, "A"), "w") as f:
        f.write("stale")
    os.symlink("..2021_01_01_00_00_00.000000007", os.path.join(d, "..data_tmp"))
    os.symlink("..data/NEWKEY", os.path.join(d, "NEWKEY"))
    return [tmp, hidden, os.path.join(d, "..data_tmp"), os.path.join(d, "NEWKEY")]


def clean_start(gen_values, what):
    """A start that runs to the end (--once): it must remove every leftover, and say so,
    touch no foreign file and bring every target to the new values."""
    planted_left = plant_leftovers()
    before = leftovers()
    r = run(["-c", write_config(gen_values), "--once"], timeout=120)
    check(r.returncode == 0, f"{what}: a clean start (--once) exits 0" + (f" ({r.stderr[-400:]})" if r.returncode else ""))
    left = leftovers() + [p for p in planted_left if os.path.lexists(p)]
    check(not left, f"{what}: after it, no leftover remains ({len(before)} before, {len(left)} after: {left[:4]})")
    unlogged = [p for p in before + planted_left if f"removed {os.path.basename(p)} beside" not in r.stderr]
    check(not unlogged, f"{what}: each removal is logged ({unlogged[:3]})")
    held.clear()
    problems = check_targets(held, [[v] for v in gen_values])
    check(not problems, f"{what}: every target holds the new content, owner and mode ({problems[:3]})")
    missing = [p for p, kind in planted.items() if not os.path.lexists(p)]
    check(not missing, f"{what}: no foreign file removed ({missing})")
    with open(victim) as f:
        check(f.read() == "not yours\n", f"{what}: nothing written through a symlink")
    return r.stderr


log = open(s.p("daemon.log"), "w")
notify = NotifySocket(s)
held = {}
try:
    gen = 0
    current = [values(gen, i) for i in range(SECRETS)]
    r = run(["-c", write_config(current), "--once"], timeout=120)
    if not check(r.returncode == 0, f"the first round writes 2,000 targets ({r.stderr[-400:]})"):
        done()
    check_targets(held, [[v] for v in current])
    planted, victim = plant_foreign()
    # How long a full round of 2,000 rewrites takes: kills land anywhere in it.
    gen += 1
    current = [values(gen, i) for i in range(SECRETS)]
    t0 = time.monotonic()
    p = daemon(write_config(current), notify)
    wait_ready(notify)
    round_secs = time.monotonic() - t0
    p.kill()
    p.wait()
    check_targets(held, [[v] for v in current])
    print(f"a start and a round of 2,000 rewrites take {round_secs:.2f} s")

    kinds = {"rewrite": 0, "reload": 0, "on_change": 0}
    problems_total, leftovers_seen, max_left = [], set(), 0
    t_start = time.monotonic()
    for n in range(KILLS):
        gen += 1
        nxt = [values(gen, i) for i in range(SECRETS)]
        kind = "on_change" if n % 50 == 25 else "reload" if n % 4 == 3 else "rewrite"
        kinds[kind] += 1
        allowed = [[v] for v in nxt]
        if kind == "rewrite":
            p = daemon(write_config(nxt), notify)
            kill_at(p, rng.uniform(0, round_secs * 1.2))
        elif kind == "reload":
            # Running with the current values (written at start), then a reload brings new ones.
            allowed = [[c, v] for c, v in zip(current, nxt)]
            p = daemon(write_config(current), notify)
            if not wait_ready(notify):
                check(False, f"kill {n}: the daemon became ready before the reload")
            write_config(nxt)
            p.send_signal(signal.SIGHUP)
            kill_at(p, rng.uniform(0, round_secs * 1.2))
        else:
            # s0's env target runs a command that takes its time: kill while it runs.
            if os.path.exists(hook_marker):
                os.unlink(hook_marker)
            p = daemon(write_config(nxt, hook=True), notify)
            deadline = time.monotonic() + 30
            while not os.path.exists(hook_marker) and time.monotonic() < deadline:
                time.sleep(0.01)
            time.sleep(rng.uniform(0, 0.05))
            p.kill()
            p.wait()
            ran = os.path.exists(hook_marker)
            check(ran, f"kill {n}: killed while on_change ran")
            if ran:
                with open(hook_marker) as f:
                    pid = int(f.read())
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        current = nxt
        notify.drain(0)
        problems = check_targets(held, allowed)
        if problems:
            problems_total.append((n, kind, problems[:3]))
        left = leftovers()
        leftovers_seen.update(left)
        max_left = max(max_left, len(left))
        if n % 50 == 49 and n + 1 < KILLS:
            gen += 1
            current = [values(gen, i) for i in range(SECRETS)]
            clean_start(current, f"after {n + 1} kills")
    elapsed = time.monotonic() - t_start
    check(not problems_total, f"after each of {KILLS} kills ({kinds}) every target holds its complete old or new "
          f"content with its owner and mode, and every ..data a complete set ({problems_total[:3]})")
    print(f"figures: {KILLS} kills in {elapsed:.0f} s; {len(leftovers_seen)} leftovers seen right after kills, "
          f"at most {max_left} at once")
    gen += 1
    current = [values(gen, i) for i in range(SECRETS)]
    stderr = clean_start(current, f"after all {KILLS} kills")
    log.flush()
    with open(s.p("daemon.log")) as f:
        text = f.read() + stderr
    secrets_logged = [v for c in current for v in c.values() if v in text]
    check(not secrets_logged, "no secret value in the log")
finally:
    log.close()
    notify.close()
    s.cleanup()
done()
