#!/usr/bin/env python3
"""File targets through the daemon: owner/group/mode, symlinks never followed, untrusted
parents refused, keys escaping a dir target refused, on_change timeout and failure."""
import os
import stat
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lib import (Scratch, check, done, fake_store, no_secrets_in, require_daemon, run)

require_daemon()
if os.geteuid() != 0:
    from lib import skip
    skip("needs root to chown targets")
s = Scratch()
out = s.p("out")
os.makedirs(out, mode=0o755)


def one(path, fmt="raw", extra="", key="chimera/jwt-secret", prop="secret", name="jwt-secret", data=None):
    keyline = 'key = "v";' if fmt == "raw" else ""
    return s.write_config(f"""
stores = {{ {fake_store(data=data)} }};
secrets = ( {{ name = "{name}"; store = "demo";
  data = ( {{ secret_key = "v"; remote_ref = {{ key = "{key}"; property = "{prop}"; }}; }} );
  files = ( {{ path = "{path}"; format = "{fmt}"; {keyline} {extra} }} ); }} );
""")


try:
    # owner, group and mode, by name and by number
    conf = one(f"{out}/owned", extra='owner = "nobody"; group = "1234"; mode = "0440";')
    r = run(["-c", conf, "--once"])
    st = os.lstat(f"{out}/owned")
    import pwd
    check(r.returncode == 0 and st.st_uid == pwd.getpwnam("nobody").pw_uid and st.st_gid == 1234
          and stat.S_IMODE(st.st_mode) == 0o440, "owner by name, group by number, mode 0440")

    # mode change alone is applied
    conf = one(f"{out}/owned", extra='owner = "nobody"; group = "1234"; mode = "0400";')
    r = run(["-c", conf, "--once"])
    check(stat.S_IMODE(os.lstat(f"{out}/owned").st_mode) == 0o400, "a mode change alone is applied")

    # a user that does not exist (yet): the configuration is valid (the service's package
    # may create the user later), the write fails naming user and file, and succeeds once
    # the user exists
    conf = one(f"{out}/later", extra='owner = "sstest-later"; group = "sstest-later";')
    r = run(["-c", conf, "--check-config"])
    check(r.returncode == 0, "an owner unknown to this machine is not a configuration error")
    r = run(["-c", conf, "--once"])
    check(r.returncode == 1 and "sstest-later" in r.stderr and f"{out}/later" in r.stderr
          and not os.path.exists(f"{out}/later"), "writing for an unknown owner fails, naming user and file")
    conf = one(f"{out}/x", extra='owner = "bad user!";')
    r = run(["-c", conf, "--check-config"])
    check(r.returncode == 2 and "bad user!" in r.stderr, "an impossible user name is a configuration error")
    import subprocess
    if subprocess.run(["useradd", "--system", "--no-create-home", "--user-group", "sstest-later"],
                      capture_output=True).returncode == 0:
        try:
            conf = one(f"{out}/later", extra='owner = "sstest-later"; group = "sstest-later";')
            r = run(["-c", conf, "--once"])
            check(r.returncode == 0 and os.stat(f"{out}/later").st_uid == pwd.getpwnam("sstest-later").pw_uid,
                  "once the user exists, the file is written with it as owner")
        finally:
            subprocess.run(["userdel", "sstest-later"], capture_output=True)
            subprocess.run(["groupdel", "sstest-later"], capture_output=True)
    else:
        print("# useradd unavailable: the user-created-later case is not checked")

    # a symlink at the target is never written through
    victim = s.p("victim")
    with open(victim, "w") as f:
        f.write("precious")
    os.symlink(victim, f"{out}/link")
    conf = one(f"{out}/link")
    r = run(["-c", conf, "--once"])
    check(r.returncode == 1 and f"{out}/link" in r.stderr, "symlink target refused, path named")
    with open(victim) as f:
        check(f.read() == "precious", "symlink's target untouched")
    check(os.path.islink(f"{out}/link"), "symlink itself left in place")

    # a symlink in a parent component is not followed
    realdir = s.p("realdir")
    os.makedirs(realdir, mode=0o755)
    os.symlink(realdir, f"{out}/linkdir")
    conf = one(f"{out}/linkdir/file")
    r = run(["-c", conf, "--once"])
    check(r.returncode == 1 and not os.path.exists(f"{realdir}/file"), "symlinked parent directory refused")

    # a parent writable by group/others, or owned by someone else, is refused
    loose = s.p("loose")
    os.makedirs(loose)
    os.chmod(loose, 0o777)
    conf = one(f"{loose}/file")
    r = run(["-c", conf, "--once"])
    check(r.returncode == 1 and loose in r.stderr and not os.path.exists(f"{loose}/file"),
          "world-writable parent refused and named")
    os.chmod(loose, 0o755)
    os.chown(loose, 1234, 1234)
    r = run(["-c", conf, "--once"])
    check(r.returncode == 1 and not os.path.exists(f"{loose}/file"), "parent owned by another user refused")

    # '..' in a configured path is a configuration error
    conf = one(f"{out}/../escape")
    r = run(["-c", conf, "--check-config"])
    check(r.returncode == 2 and ".." in r.stderr, "'..' in a target path is a configuration error")

    # keys from data_from that would escape a dir target are refused
    data = {"chimera/evil": '{"../escape":"x","ok":"y"}'}
    conf = s.write_config(f"""
stores = {{ {fake_store(data=data)} }};
secrets = ( {{ name = "evil"; store = "demo";
  data_from = ( {{ extract = {{ key = "chimera/evil"; }}; }} );
  files = ( {{ path = "{out}/evil"; format = "dir"; }} ); }} );
""")
    r = run(["-c", conf, "--once"])
    check(r.returncode == 1 and "../escape" in r.stderr and not os.path.exists(f"{out}/escape"),
          "a key naming a path outside a dir target is refused")

    # env format: a remote key that is not a variable name fails that target clearly
    data = {"chimera/app": '{"good_key":"1","bad-key":"2"}'}
    conf = s.write_config(f"""
stores = {{ {fake_store(data=data)} }};
secrets = ( {{ name = "app"; store = "demo";
  data_from = ( {{ extract = {{ key = "chimera/app"; }}; }} );
  files = ( {{ path = "{out}/app.env"; format = "env"; }} ); }} );
""")
    r = run(["-c", conf, "--once"])
    check(r.returncode == 1 and "bad-key" in r.stderr and not os.path.exists(f"{out}/app.env"),
          "env target with a non-variable key fails, key named")

    # on_change: a failing command and a hanging command (timeout) are reported
    conf = one(f"{out}/cmd1", extra='on_change = [ "/bin/false" ];')
    r = run(["-c", conf, "--once"])
    check("command-failed" in r.stderr and "status 1" in r.stderr, "failing on_change reported with its status")
    conf = one(f"{out}/cmd2", extra='on_change = [ "/bin/sleep", "30" ]; on_change_timeout = "500ms";')
    t0 = time.monotonic()
    r = run(["-c", conf, "--once"])
    check("timed out" in r.stderr and time.monotonic() - t0 < 10, "hanging on_change killed at its timeout")
    conf = one(f"{out}/cmd3", extra='on_change = [ "/no/such/program" ];')
    r = run(["-c", conf, "--once"])
    check("command-failed" in r.stderr or "cannot start" in r.stderr, "missing on_change program reported")
    check(os.path.exists(f"{out}/cmd3"), "the file is written even if on_change fails")

    # no temporary files left behind anywhere
    leftovers = [n for n in os.listdir(out) if n.startswith(".") and not n.startswith("..")]
    check(not leftovers, f"no temporary files left in the target directory ({leftovers})")
    check(not no_secrets_in(r.stdout + r.stderr), "no secret in output")
finally:
    s.cleanup()
done()
