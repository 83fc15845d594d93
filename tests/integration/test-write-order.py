#!/usr/bin/env python3
"""The order of the system calls that replace a target, seen by strace: what SPEC promises
("replaced atomically ... also after a crash or power loss"; "ownership and mode are right
before the new content becomes visible"; on_change "after the new content is in place")
cannot be seen in the files afterwards, only in the order of the calls.

For every file the daemon puts in place by rename:
  * the temporary file is created with no permission for group or others (0600, 0400,
    0000...), so nobody can open it while it is being filled;
  * it gets its final owner, group and mode (fchown/fchmod on the open file) before the
    rename, and nothing changes them on the final name afterwards;
  * its data is fsynced before the rename, and its directory is fsynced after the rename
    (before the daemon exits, and before the target's on_change command starts).
For a dir target, the same for each key file of the hidden data directory, that directory
fsynced before ..data is switched to it, and the target directory fsynced after.

strace rather than an LD_PRELOAD shim: it sees the real system calls of the real binary
(also the sanitizer build, whose interceptors would stand between a shim and libc), needs
nothing compiled, and -y names the file behind every descriptor."""
import os
import pwd
import re
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lib import DAEMON, Scratch, check, done, fake_store, require_daemon, skip

require_daemon()
if os.geteuid() != 0:
    skip("needs root to give targets another owner")
if not shutil.which("strace"):
    skip("strace is not installed (apt-get install strace)")
s = Scratch()
out = s.p("out")
NOBODY = pwd.getpwnam("nobody").pw_uid
HOOK_MARK = s.p("hook-ran")

TARGETS = {  # path -> (uid, gid, mode)
    f"{out}/owned.key": (NOBODY, 1234, 0o440),
    f"{out}/sub/app.env": (0, 0, 0o600),
    f"{out}/app.json": (0, 0, 0o644),
}
DIR_TARGET = f"{out}/keys"


def config(version):
    data = {"app/one": f'{{"password":"pw-{version}","user":"u-{version}"}}'}
    return s.write_config(f"""
stores = {{ {fake_store(data=data)} }};
secrets = (
  {{ name = "one"; store = "demo";
     data = ( {{ secret_key = "password"; remote_ref = {{ key = "app/one"; property = "password"; }}; }} );
     files = ( {{ path = "{out}/owned.key"; format = "raw"; key = "password"; owner = "nobody"; group = "1234";
                 mode = "0440"; on_change = [ "/bin/touch", "{HOOK_MARK}" ]; }},
               {{ path = "{out}/sub/app.env"; format = "env"; }} ); }},
  {{ name = "two"; store = "demo";
     data_from = ( {{ extract = {{ key = "app/one"; }}; }} );
     files = ( {{ path = "{out}/app.json"; format = "json"; mode = "0644"; }},
               {{ path = "{DIR_TARGET}"; format = "dir"; mode = "0400"; owner = "nobody"; }} ); }}
);
""")


CALL = re.compile(r"^(\d+) +([a-z0-9_]+)\((.*)\) += (-?\d+)(?:<([^>]*)>)?")
FD = re.compile(r"^(-?\d+|AT_FDCWD)(?:<([^>]*)>)?$")


def split_args(text):
    """The top-level arguments of one strace call, strings unquoted."""
    args, cur, depth, quoted, esc = [], "", 0, False, False
    for ch in text:
        if quoted:
            cur += ch
            if esc:
                esc = False
            elif ch == "\\":
                esc = True
            elif ch == '"':
                quoted = False
            continue
        if ch == '"':
            quoted = True
        elif ch in "[{(":
            depth += 1
        elif ch in "]})":
            depth -= 1
        elif ch == "," and depth == 0:
            args.append(cur.strip())
            cur = ""
            continue
        cur += ch
    if cur.strip():
        args.append(cur.strip())
    return [a[1:-1] if a.startswith('"') and a.endswith('"') else a for a in args]


def fd_path(arg):
    m = FD.match(arg)
    return m.group(2) if m else None


def parse(path):
    """[(index, pid, name, args, result, result_path)] of the calls that completed."""
    calls = []
    pending = {}  # pid -> the start of a call strace split around another process's output
    with open(path, errors="replace") as f:
        for line in f:
            line = line.strip()
            um = re.match(r"^(\d+)\s+(.*) <unfinished \.\.\.>$", line)
            if um:
                pending[um.group(1)] = um.group(2)
                continue
            rm = re.match(r"^(\d+)\s+<\.\.\. \w+ resumed>(.*)$", line)
            if rm and rm.group(1) in pending:
                line = f"{rm.group(1)} {pending.pop(rm.group(1))}{rm.group(2)}"
            m = CALL.match(line)
            if m:
                calls.append((len(calls), int(m.group(1)), m.group(2), split_args(m.group(3)), int(m.group(4)),
                              m.group(5)))
    return calls


def resolve(dirpath, name):
    return name if name.startswith("/") else os.path.join(dirpath or "", name)


def renames(calls):
    """(index, from, to) of every successful rename, as absolute paths."""
    r = []
    for i, pid, name, a, res, _ in calls:
        if res != 0:
            continue
        if name in ("renameat", "renameat2"):
            r.append((i, resolve(fd_path(a[0]), a[1]), resolve(fd_path(a[2]), a[3])))
        elif name == "rename":
            r.append((i, a[0], a[1]))
    return r


def synced_at(calls, path, after=-1, before=None):
    """Index of the first fsync/fdatasync of path in (after, before), or None."""
    for i, pid, name, a, res, _ in calls:
        if i > after and (before is None or i < before) and name in ("fsync", "fdatasync") and res == 0 \
                and fd_path(a[0]) == path:
            return i
    return None


def created(calls, path, before):
    """(index, mode) of the last creation of path before index `before`."""
    found = None
    for i, pid, name, a, res, rpath in calls:
        if i >= before or res < 0:
            continue
        if name == "openat" and "O_CREAT" in a[2] and resolve(fd_path(a[0]), a[1]) == path:
            found = (i, int(a[3], 8))
        elif name == "open" and "O_CREAT" in a[1] and a[0] == path:
            found = (i, int(a[2], 8))
    return found


def attrs_set(calls, path, start, end):
    """Owner and mode given to the open file `path` by fchown/fchmod between start and end."""
    uid = gid = mode = None
    for i, pid, name, a, res, _ in calls:
        if start < i < end and res == 0 and fd_path(a[0]) == path:
            if name == "fchown":
                uid, gid = int(a[1]), int(a[2])
            elif name == "fchmod":
                mode = int(a[1], 8)
    return uid, gid, mode


def changed_after(calls, path, start):
    """Calls that change owner or mode of the final name after it became visible."""
    bad = []
    for i, pid, name, a, res, _ in calls:
        if i <= start or res != 0:
            continue
        if name in ("fchown", "fchmod") and fd_path(a[0]) == path:
            bad.append(name)
        elif name in ("fchmodat", "fchownat") and resolve(fd_path(a[0]), a[1]) == path:
            bad.append(name)
        elif name in ("chmod", "chown", "lchown") and a[0] == path:
            bad.append(name)
    return bad


def check_file(calls, rn, path, uid, gid, mode, what):
    """Checks one file that became `path` by the rename rn = (index, tmp, path)."""
    i, tmp, _ = rn
    c = created(calls, tmp, i)
    if not check(c is not None, f"{what}: {os.path.basename(path)} created as a temporary file before the rename"):
        return
    ci, cmode = c
    check(cmode & 0o077 == 0, f"{what}: temporary file created {cmode:04o}, no access for group or others")
    fuid, fgid, fmode = attrs_set(calls, tmp, ci, i)
    if fuid is None and (uid, gid) == (0, 0):
        fuid, fgid = 0, 0  # created by root: already root:root
    if fmode is None:
        fmode = cmode
    check((fuid, fgid, fmode) == (uid, gid, mode),
          f"{what}: {os.path.basename(path)} is {uid}:{gid} {mode:04o} before the rename "
          f"(got {fuid}:{fgid} {fmode:04o})")
    check(synced_at(calls, tmp, ci, i) is not None, f"{what}: {os.path.basename(path)}'s data fsynced before the rename")
    bad = changed_after(calls, path, i)
    check(not bad, f"{what}: owner and mode of {os.path.basename(path)} not changed after the rename {bad}")


def check_trace(trace, what, expect_hook):
    calls = parse(trace)
    check(len(calls) > 20, f"{what}: strace saw the daemon's calls ({len(calls)})")
    rns = renames(calls)
    main_pid = calls[0][1] if calls else None
    for path, (uid, gid, mode) in TARGETS.items():
        rn = [r for r in rns if r[2] == path]
        if not check(len(rn) == 1, f"{what}: {os.path.basename(path)} put in place by one rename"):
            continue
        check_file(calls, rn[0], path, uid, gid, mode, what)
        d = os.path.dirname(path)
        check(synced_at(calls, d, rn[0][0]) is not None, f"{what}: {d} fsynced after the rename of "
                                                         f"{os.path.basename(path)}")

    # dir target: key files in the hidden directory, ..data switched to it, then the directory
    data = [r for r in rns if r[2] == f"{DIR_TARGET}/..data"]
    if check(len(data) == 1, f"{what}: {DIR_TARGET}/..data switched by one rename"):
        i = data[0][0]
        link = [a for _, _, name, a, res, _ in calls
                if name == "symlinkat" and res == 0 and resolve(fd_path(a[1]), a[2]) == data[0][1]]
        hidden = os.path.join(DIR_TARGET, link[-1][0]) if link else None
        check(hidden is not None and os.path.basename(hidden).startswith(".."),
              f"{what}: ..data points to a hidden directory ({hidden})")
        for key in ("password", "user"):
            kp = f"{hidden}/{key}"
            c = created(calls, kp, i)
            if check(c is not None, f"{what}: dir key {key} created before ..data is switched"):
                fuid, fgid, fmode = attrs_set(calls, kp, c[0], i)
                check(c[1] & 0o077 == 0 and (fuid, fmode if fmode is not None else c[1]) == (NOBODY, 0o400),
                      f"{what}: dir key {key} created without access for others, then nobody 0400, before the switch")
                check(synced_at(calls, kp, c[0], i) is not None, f"{what}: dir key {key} fsynced before the switch")
        check(synced_at(calls, hidden, -1, i) is not None, f"{what}: the hidden directory fsynced before the switch")
        check(synced_at(calls, DIR_TARGET, i) is not None, f"{what}: {DIR_TARGET} fsynced after the switch")

    # on_change starts after the directory of its target is durable
    execs = [i for i, pid, name, a, res, _ in calls if name == "execve" and a[0] == "/bin/touch" and res == 0]
    if expect_hook:
        rn = [r for r in rns if r[2] == f"{out}/owned.key"]
        if check(len(execs) == 1 and rn, f"{what}: on_change ran once"):
            check(synced_at(calls, out, rn[0][0], execs[0]) is not None,
                  f"{what}: on_change started after {out} was fsynced")
            check(calls[execs[0]][1] != main_pid, f"{what}: on_change runs in a child process")
    return calls


def traced_once(name):
    trace = s.p(f"{name}.strace")
    # LeakSanitizer stops the threads with ptrace(), which a traced process cannot do.
    env = dict(os.environ, ASAN_OPTIONS=os.environ.get("ASAN_OPTIONS", "") + ":detect_leaks=0")
    r = subprocess.run(["strace", "-f", "-y", "-qq", "-s", "512", "-o", trace, "-e",
                        "trace=openat,open,fchown,fchmod,fchownat,fchmodat,chmod,chown,lchown,fsync,fdatasync,"
                        "rename,renameat,renameat2,symlinkat,execve",
                        DAEMON, "-c", config(name), "--once"], capture_output=True, text=True, timeout=60, env=env)
    check(r.returncode == 0, f"{name}: --once under strace exits 0 ({r.stderr[-300:] if r.returncode else ''})")
    return trace


try:
    # First run: every target new, two of its directories too.
    check_trace(traced_once("create"), "create", expect_hook=True)
    # Second run: new values, every existing target replaced.
    os.unlink(HOOK_MARK)
    check_trace(traced_once("replace"), "replace", expect_hook=True)
    with open(f"{out}/owned.key") as f:
        check(f.read() == "pw-replace", "the replaced content is in place")
finally:
    s.cleanup()
done()
