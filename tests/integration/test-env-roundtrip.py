#!/usr/bin/env python3
"""env targets read back exactly (SPEC: "any value ... reads back exactly through both sh
(. file) and systemd EnvironmentFile="): random values built from every character that
means something to a shell or to systemd's parser (quotes, $, ${}, $(), backquotes,
backslashes before anything, newlines, CR, tabs, control characters, '#', '=', UTF-8) go
through the daemon into env files, and are read back through dash, bash, and systemd's own
parser (load_env_file() and env_assignment_is_valid() of the libsystemd-shared installed
here, as the service manager applies them). The seed is printed; SEED=n repeats a run."""
import ctypes
import glob
import json
import os
import random
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lib
from lib import Scratch, check, done, lc_string, require_daemon, run, skip

require_daemon()
seed = int(os.environ.get("SEED") or random.SystemRandom().randrange(1 << 32))
print(f"# SEED={seed}")
rnd = random.Random(seed)
s = Scratch()
out = s.p("out")
KEYS = [f"K{i:02d}" for i in range(40)]
PIECES = ['"', "'", "$", "${HOME}", "$(id)", "$HOME", "`id`", "\\", "\\\\", "\\n", "\\\n", "\\$", '\\"', "\\`",
          "\n", "\r", "\r\n", "\t", " ", "  ", "#", "=", ";", "&", "|", "*", "?", "~", "!", "%", "{", "}",
          "ü", "✓", "€", "😀", "\u00a0", "\x01", "\x1b[0m", "\x7f", "export ", "x=y", "'\"'\"'"]


def random_value():
    parts = []
    for _ in range(rnd.randrange(0, 12)):
        if rnd.random() < 0.6:
            parts.append(rnd.choice(PIECES))
        else:
            parts.append("".join(chr(rnd.randrange(0x20, 0x7f)) for _ in range(rnd.randrange(1, 5))))
    return "".join(parts)


def systemd_loader():
    for pattern in ("/usr/lib/systemd/libsystemd-shared-*.so", "/usr/lib/*/systemd/libsystemd-shared-*.so",
                    "/usr/lib64/systemd/libsystemd-shared-*.so"):
        for path in sorted(glob.glob(pattern)):
            lib = ctypes.CDLL(path)
            try:
                load, valid = lib.load_env_file, lib.env_assignment_is_valid
            except AttributeError:
                continue
            load.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.POINTER(ctypes.POINTER(ctypes.c_char_p))]
            load.restype = ctypes.c_int
            valid.argtypes = [ctypes.c_char_p]
            valid.restype = ctypes.c_bool
            print(f"# systemd's parser: {path}")

            def read(file):
                lst = ctypes.POINTER(ctypes.c_char_p)()
                r = load(None, file.encode(), ctypes.byref(lst))
                if r < 0:
                    return None, [f"load_env_file() failed: {os.strerror(-r)}"]
                got, dropped, i = {}, [], 0
                while lst[i] is not None:
                    if not valid(lst[i]):
                        dropped.append(lst[i][:40])
                    k, _, v = lst[i].decode("utf-8").partition("=")
                    got[k] = v
                    i += 1
                return got, dropped
            return read
    return None


def read_sh(shell, file):
    script = '. "$1"; printf "%s\\0" ' + " ".join(f'"${k}"' for k in KEYS)
    # In the scratch directory: a broken file could make the shell run a redirection.
    r = subprocess.run([shell, "-c", script, shell, file], capture_output=True, cwd=s.path, timeout=10)
    if r.returncode != 0:
        return None
    return dict(zip(KEYS, r.stdout.decode("utf-8").split("\0")))


def first_difference(want, got):
    for k in KEYS:
        if got is None or got.get(k) != want[k]:
            return f"{k}: wrote {want[k]!r:.120}, read {got.get(k) if got else None!r:.120}"
    return None


systemd_read = systemd_loader()
try:
    for rnd_round in range(3):
        values = {k: random_value() for k in KEYS}
        values[KEYS[0]] = "".join(PIECES)  # every piece at least once
        path = f"{out}/round{rnd_round}.env"
        conf = s.write_config(f"""
stores = {{ demo = {{ type = "fake"; data = ( {{ key = "app/env"; value = {lc_string(json.dumps(values))}; }} ); }}; }};
secrets = ( {{ name = "env-values"; store = "demo"; data_from = ( {{ extract = {{ key = "app/env"; }}; }} );
               files = ( {{ path = "{path}"; format = "env"; }} ); }} );
""")
        r = run(["-c", conf, "--once"])
        if not check(r.returncode == 0, f"round {rnd_round}: --once writes 40 random values{'' if r.returncode == 0 else ' (' + r.stderr[-300:] + ')'}"):
            continue
        for shell in ("sh", "bash"):
            diff = first_difference(values, read_sh(shell, path))
            check(diff is None, f"round {rnd_round}: {shell} (. file) reads every value back exactly"
                                f"{' - ' + diff if diff else ''}")
        if systemd_read:
            got, dropped = systemd_read(path)
            diff = first_difference(values, got)
            check(diff is None and not dropped, f"round {rnd_round}: systemd's EnvironmentFile= parser reads every "
                                                f"value back exactly{' - ' + (diff or str(dropped)) if diff or dropped else ''}")
finally:
    s.cleanup()
if systemd_read is None and not lib.failures:
    skip("libsystemd-shared (systemd's EnvironmentFile= parser) not found; sh and bash read everything back")
done()
