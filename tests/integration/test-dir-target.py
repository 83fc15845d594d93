#!/usr/bin/env python3
"""A `dir` target whose key link cannot be made (a directory stands where the link goes):
each failed attempt leaves the target as it was (..data still names the complete old set,
no hidden copy of the secret left behind), and once the obstacle is gone the new set is
published and on_change runs."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lib import Scratch, check, done, fake_store, lc_string, require_daemon, run

require_daemon()

s = Scratch()
target = s.p("out", "minio")
marker = s.p("on-change-runs")
data = {"chimera/minio": '{"username":"chimera-admin","password":"minio-S3cret","region":"edge-1"}'}


def config(keys):
    entries = ", ".join(f'{{ secret_key = "{k}"; remote_ref = {{ key = "chimera/minio"; property = "{k}"; }}; }}'
                        for k in keys)
    hook = lc_string(f"echo run >> {marker}")
    return s.write_config(f"""
stores = {{ {fake_store(data=data)} }};
secrets = ( {{ name = "minio-credentials"; store = "demo"; data = ( {entries} );
               files = ( {{ path = "{target}"; format = "dir";
                           on_change = [ "/bin/sh", "-c", {hook} ]; }} ); }} );
""")


def hidden_dirs():
    return sorted(n for n in os.listdir(target) if n.startswith("..") and n[2:3].isdigit())


def data_keys():
    return sorted(os.listdir(os.path.join(target, "..data")))


def runs():
    try:
        with open(marker) as f:
            return f.read().count("run")
    except FileNotFoundError:
        return 0


try:
    r = run(["-c", config(["username", "password"]), "--once"])
    check(r.returncode == 0 and data_keys() == ["password", "username"], "the first set is published")
    check(runs() == 1, "on_change ran once")
    first_hidden = hidden_dirs()

    # A directory (not empty) where the new key's link must go.
    os.makedirs(os.path.join(target, "region", "keep"))
    conf = config(["username", "password", "region"])
    for attempt in range(5):
        r = run(["-c", conf, "--once"])
        check(r.returncode == 1 and "region" in r.stderr, f"attempt {attempt + 1}: the blocked link fails the sync")
    check(hidden_dirs() == first_hidden, f"no hidden copy left behind by the failed attempts ({hidden_dirs()})")
    check(data_keys() == ["password", "username"], "..data still names the complete old set")
    with open(os.path.join(target, "password")) as f:
        check(f.read() == "minio-S3cret", "the old keys still read through their links")
    check(runs() == 1, "on_change did not run for a publish that did not happen")
    check(not [n for n in os.listdir(target) if n.startswith("..") and "tmp" in n], "no temporary link left")

    os.rmdir(os.path.join(target, "region", "keep"))
    os.rmdir(os.path.join(target, "region"))
    r = run(["-c", conf, "--once"])
    check(r.returncode == 0, "with the obstacle gone the sync succeeds")
    check(data_keys() == ["password", "region", "username"], "the new set is published")
    with open(os.path.join(target, "region")) as f:
        check(f.read() == "edge-1", "the new key reads through its link")
    check(len(hidden_dirs()) == 1 and hidden_dirs() != first_hidden, "one hidden directory: the new one")
    check(runs() == 2, "on_change ran for the new set")

    # A key dropped: its link goes, nothing else is left behind.
    r = run(["-c", config(["username", "password"]), "--once"])
    check(r.returncode == 0 and not os.path.lexists(os.path.join(target, "region")), "a dropped key's link is removed")
    check(len(hidden_dirs()) == 1, "still one hidden directory")
finally:
    s.cleanup()
done()
