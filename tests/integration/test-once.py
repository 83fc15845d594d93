#!/usr/bin/env python3
"""--once: the Project Chimera secrets into every file format; exit codes; partial failure."""
import json
import os
import signal
import stat
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lib import (CHIMERA, CHIMERA_VALUES, Daemon, NotifySocket, Scratch, check, done, fake_store, lc_string,
                 no_secrets_in, require_daemon, run)
from vault_server import VaultServer

require_daemon()
s = Scratch()
out = s.p("chimera")


def chimera_config(extra_secret="", store=None):
    return f"""
stores = {{ {store or fake_store()} }};
secrets = (
  {{ name = "postgres-credentials"; store = "demo";
     data = ( {{ secret_key = "POSTGRES_PASSWORD";
                remote_ref = {{ key = "chimera/postgres-password"; property = "password"; }}; }} );
     files = ( {{ path = "{out}/postgres.env"; format = "env"; mode = "0400";
                 on_change = [ "/bin/sh", "-c", "env > {s.p('onchange.env')}; cat {out}/postgres.env > {s.p('onchange.seen')}" ]; }} ); }},
  {{ name = "redis-credentials"; store = "demo";
     data = ( {{ secret_key = "password"; remote_ref = {{ key = "chimera/redis-password"; property = "password"; }}; }} );
     files = ( {{ path = "{out}/redis.conf"; format = "template"; mode = "0440";
                 template = "requirepass {{{{ password }}}}\\nmasterauth {{{{ password | json }}}}\\n"; }} ); }},
  {{ name = "minio-credentials"; store = "demo";
     data_from = ( {{ extract = {{ key = "chimera/minio-credentials"; }}; }} );
     files = ( {{ path = "{out}/minio.json"; format = "json"; }},
               {{ path = "{out}/minio"; format = "dir"; mode = "0400"; }} ); }},
  {{ name = "jwt-secret"; store = "demo";
     data = ( {{ secret_key = "secret"; remote_ref = {{ key = "chimera/jwt-secret"; property = "secret"; }}; }} );
     files = ( {{ path = "{out}/jwt.key"; format = "raw"; key = "secret"; }} ); }},
  {{ name = "grafana-credentials"; store = "demo";
     data = ( {{ secret_key = "admin-password"; remote_ref = {{ key = "chimera/grafana-admin"; property = "password"; }}; }} );
     files = ( {{ path = "{out}/grafana.tmpl"; format = "template";
                 template = "{{{{ admin-password | base64 }}}}"; }} ); }}
  {extra_secret}
);
"""


def mode(p):
    return stat.S_IMODE(os.lstat(p).st_mode)


try:
    conf = s.write_config(chimera_config())
    r = run(["-c", conf, "--once"])
    check(r.returncode == 0, f"--once with every secret good exits 0 (got {r.returncode})")
    check(not no_secrets_in(r.stdout + r.stderr), "no secret value in the output")

    env_val = subprocess.run(["/bin/sh", "-c", f'set -a; . {out}/postgres.env; printf %s "$POSTGRES_PASSWORD"'],
                             capture_output=True, text=True).stdout
    check(env_val == 'pg-Pa$$w0rd"quoted"', "env target reads back through sh byte-exactly")
    check(mode(f"{out}/postgres.env") == 0o400, "env target mode 0400")
    with open(f"{out}/redis.conf") as f:
        check(f.read() == 'requirepass redis-s3cret\nmasterauth "redis-s3cret"\n', "template with json filter")
    check(mode(f"{out}/redis.conf") == 0o440, "template mode 0440")
    with open(f"{out}/minio.json") as f:
        check(json.load(f) == {"password": "minio-S3cret", "username": "chimera-admin"}, "json target from extract")
    check(mode(f"{out}/minio.json") == 0o600, "default mode 0600")
    check(os.path.islink(f"{out}/minio/..data") and os.path.islink(f"{out}/minio/username"),
          "dir target: ..data and key symlinks")
    with open(f"{out}/minio/password") as f:
        check(f.read() == "minio-S3cret", "dir target key content")
    with open(f"{out}/jwt.key", "rb") as f:
        check(f.read() == b"jwt-0123456789abcdef", "raw target: exact bytes, no newline")
    with open(f"{out}/grafana.tmpl") as f:
        check(f.read() == "Z3JhZmFuYS1hZG0xbg==", "template base64 filter")
    check(mode(out) == 0o755 and os.stat(out).st_uid == 0, "missing parent created root 0755")

    # on_change ran after the content was in place, with no secret in its environment
    with open(s.p("onchange.seen")) as f:
        check("POSTGRES_PASSWORD=" in f.read(), "on_change ran after the new content was in place")
    with open(s.p("onchange.env")) as f:
        envtext = f.read()
    check("SECRETSYNC_SECRET=postgres-credentials" in envtext and f"SECRETSYNC_TARGET={out}/postgres.env" in envtext,
          "on_change gets SECRETSYNC_SECRET and SECRETSYNC_TARGET")
    check(not no_secrets_in(envtext), "on_change environment holds no secret")
    check("HOME=" not in envtext and "NOTIFY_SOCKET" not in envtext, "on_change gets a minimal environment")
    check("command-run" in r.stderr, "command-run event logged")

    # second run: nothing changes, no rewrite, no on_change
    ino = os.stat(f"{out}/postgres.env").st_ino
    data_target = os.readlink(f"{out}/minio/..data")
    os.unlink(s.p("onchange.seen"))
    r = run(["-c", conf, "--once"])
    check(r.returncode == 0 and r.stderr.count("is up to date") == 6 and "written" not in r.stderr,
          "second run: every target up to date")
    check(os.stat(f"{out}/postgres.env").st_ino == ino, "unchanged file not replaced (same inode)")
    check(os.readlink(f"{out}/minio/..data") == data_target, "unchanged dir target not republished")
    check(not os.path.exists(s.p("onchange.seen")), "on_change not run when nothing changed")

    # a secret whose remote key does not exist: exit 1, the others still written
    missing = """, { name = "missing-one"; store = "demo";
      data = ( { secret_key = "x"; remote_ref = { key = "chimera/does-not-exist"; }; } );
      files = ( { path = "%s/missing.txt"; format = "raw"; key = "x"; } ); }""" % out
    conf = s.write_config(chimera_config(missing))
    os.unlink(f"{out}/jwt.key")
    r = run(["-c", conf, "--once"])
    check(r.returncode == 1, f"--once with a missing remote key exits 1 (got {r.returncode})")
    check(os.path.exists(f"{out}/jwt.key"), "the other secrets are still written")
    check("missing-one" in r.stderr and "chimera/does-not-exist" in r.stderr and "'demo'" in r.stderr,
          "failure names secret, remote key and store")
    check(not os.path.exists(f"{out}/missing.txt"), "nothing written for the failed secret")

    # a property that does not exist; a value that is not JSON
    data = dict(CHIMERA)
    data["chimera/plain"] = "not json"
    bad = """, { name = "bad-property"; store = "demo";
      data = ( { secret_key = "x"; remote_ref = { key = "chimera/jwt-secret"; property = "nope"; }; } );
      files = ( { path = "%s/bad1"; format = "raw"; key = "x"; } ); },
    { name = "not-json"; store = "demo";
      data = ( { secret_key = "x"; remote_ref = { key = "chimera/plain"; property = "db.password"; }; } );
      files = ( { path = "%s/bad2"; format = "raw"; key = "x"; } ); }""" % (out, out)
    conf = s.write_config(chimera_config(bad, store=fake_store(data=data)))
    r = run(["-c", conf, "--once"])
    check(r.returncode == 1 and "bad-property" in r.stderr and "'nope'" in r.stderr,
          "missing property: exit 1, property named")
    check("not-json" in r.stderr and "not a JSON object" in r.stderr, "non-JSON value with property: clear error")

    # property paths as ESO's gjson reads them: array indexes, an escaped dot, non-string leaves
    data = dict(CHIMERA)
    data["chimera/cluster"] = json.dumps({"hosts": [{"name": "db-0", "port": 5432}, {"name": "db-1", "tls": True}],
                                          "fav.movie": "top", "fav": {"movie": "nested"},
                                          "cfg": {"a.b": "escaped", "a": {"b": "deep"}, "none": None}})
    paths = [("h0", "hosts.0.name", "db-0"), ("h1", "hosts.1.name", "db-1"), ("port", "hosts.0.port", "5432"),
             ("tls", "hosts.1.tls", "true"), ("h1obj", "hosts.1", '{"name":"db-1","tls":true}'),
             ("lit", "fav.movie", "top"), ("esc", "cfg.a\\\\.b", "escaped"), ("deep", "cfg.a.b", "deep"),
             ("none", "cfg.none", "")]
    entries = ", ".join('{ secret_key = "%s"; remote_ref = { key = "chimera/cluster"; property = "%s"; }; }' % (k, pth)
                        for k, pth, _ in paths)
    paths_secret = """, { name = "paths"; store = "demo"; data = ( %s );
      files = ( { path = "%s/paths.json"; format = "json"; } ); }""" % (entries, out)
    conf = s.write_config(chimera_config(paths_secret, store=fake_store(data=data)))
    r = run(["-c", conf, "--once"])
    check(r.returncode == 0, f"property paths with array indexes sync (exit {r.returncode}: {r.stderr[-300:]})")
    if os.path.exists(f"{out}/paths.json"):
        with open(f"{out}/paths.json") as f:
            got = json.load(f)
        for k, pth, want in paths:
            check(got.get(k) == want, f"property '{pth}' gives {want!r} (got {got.get(k)!r})")
    past_end = paths_secret.replace("hosts.0.name", "hosts.2.name")
    r = run(["-c", s.write_config(chimera_config(past_end, store=fake_store(data=data))), "--once"])
    check(r.returncode == 1 and "'hosts.2.name'" in r.stderr, "an index past the array's end: sync failure naming it")
    wildcard = paths_secret.replace("hosts.0.name", "hosts.#.name")
    r = run(["-c", s.write_config(chimera_config(wildcard, store=fake_store(data=data))), "--check-config"])
    check(r.returncode == 2 and "hosts.#.name" in r.stderr and "gjson query" in r.stderr and ":" in r.stderr.split()[0],
          f"a gjson query in property: FILE:LINE configuration error ({r.stderr.strip()[:200]})")

    # a store that cannot be reached fails the sync, not the configuration
    tok = s.p("token")
    with open(tok, "w") as f:
        f.write("t\n")
    os.chmod(tok, 0o600)
    aws = """, { name = "from-aws"; store = "a";
      data = ( { secret_key = "x"; remote_ref = { key = "chimera/postgres"; }; } );
      files = ( { path = "%s/aws.txt"; format = "raw"; key = "x"; } ); }""" % out
    store = fake_store() + f' a = {{ type = "aws"; region = "us-east-1"; endpoint = "http://127.0.0.1:9"; auth = {{ method = "static"; access_key_id = "AKIDEXAMPLE"; secret_access_key_file = {lc_string(tok)}; }}; }};'
    conf = s.write_config(chimera_config(aws, store=store))
    r = run(["-c", conf, "--once"])
    check(r.returncode == 1 and "from-aws" in r.stderr and "http://127.0.0.1:9" in r.stderr,
          "an unreachable store fails that secret with a clear message")
    check(not no_secrets_in(r.stdout + r.stderr), "no secret value in failure output")

    # The most verbose log level, from the command line and from the file: still no value.
    # (Nothing is logged at debug level yet; this is the guard for when something is.)
    for o in os.listdir(out):
        p = os.path.join(out, o)
        if os.path.isfile(p):
            os.unlink(p)
    conf = s.write_config(chimera_config())
    r = run(["-c", conf, "--once", "--log-level", "debug"])
    check(r.returncode == 0 and "wrote" in r.stderr, "--log-level debug: every secret written")
    check(not no_secrets_in(r.stdout + r.stderr), "--log-level debug: no secret value in the output")
    conf = s.write_config(chimera_config().replace("stores =", 'daemon = { log_level = "debug"; };\nstores =', 1))
    r = run(["-c", conf, "--once"])
    check(r.returncode == 0 and not no_secrets_in(r.stdout + r.stderr),
          "daemon.log_level = debug: no secret value in the output")
    # ... and the levels are applied: above info, the info events are gone.
    conf = s.write_config(chimera_config().replace("stores =", 'daemon = { log_level = "err"; };\nstores =', 1))
    r = run(["-c", conf, "--once"])
    check(r.returncode == 0 and "fetched" not in r.stderr and "is up to date" not in r.stderr,
          f"daemon.log_level = err hides info events ({r.stderr[:200]!r})")
    r = run(["-c", conf, "--once", "--log-level", "info"])
    check(r.returncode == 0 and "is up to date" in r.stderr, "--log-level info overrides daemon.log_level")
    conf = s.write_config(chimera_config())
    r = run(["-c", conf, "--once", "--log-level", "warning"])
    check(r.returncode == 0 and "fetched" not in r.stderr and "is up to date" not in r.stderr,
          "--log-level warning hides info events")

    # Under a notify socket (--once as a Type=oneshot/notify unit's ExecStart): READY=1 once
    # the round is over, with the final counts.
    notify = NotifySocket(s)
    try:
        conf = s.write_config(chimera_config(missing))
        r = run(["-c", conf, "--once"], env={"NOTIFY_SOCKET": notify.path})
        check(r.returncode == 1, "--once under a notify socket with one failing secret exits 1")
        msgs = notify.drain(0.3)
        ready = [m for m in msgs if m.get("READY") == "1"]
        check(len(ready) == 1, f"--once: READY=1 sent once ({len(msgs)} messages: {msgs})")
        status = ready[0].get("STATUS", "") if ready else ""
        check("6 secrets" in status and "5 synced" in status and "1 failing" in status
              and "in progress" not in status, f"--once: READY=1 carries the final counts ({status!r})")
        check(not [m for m in msgs if no_secrets_in(json.dumps(m))], "no secret value in the notify messages")
    finally:
        notify.close()

    # SIGTERM while a fetch is in flight: --once did not sync everything, so it exits 1.
    vault = VaultServer()
    vault.start()
    try:
        vault.put_secret("chimera/slow", {"password": "slowTOK-5d1e"})
        vault.set_latency(delay_ms=3000)
        vault.set_policy("read", {"secret/data/chimera/*": ["read"]})
        token = vault.create_token(policies=["read"], ttl=3600)["id"]
        tokfile = s.p("vault-token")
        with open(tokfile, "w") as f:
            f.write(token + "\n")
        os.chmod(tokfile, 0o600)
        conf = s.write_config(f"""
stores = {{ v = {{ type = "vault"; server = "{vault.url}"; auth = {{ method = "token"; token_file = "{tokfile}"; }}; }}; }};
secrets = ( {{ name = "slow"; store = "v";
  data = ( {{ secret_key = "p"; remote_ref = {{ key = "chimera/slow"; property = "password"; }}; }} );
  files = ( {{ path = "{out}/slow"; format = "raw"; key = "p"; }} ); }} );
""", name="slow.conf")
        d = Daemon(conf, s, args=["--once", "--log-level", "debug"])
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and vault.stats()["requests_total"] < 1:
            time.sleep(0.05)
        time.sleep(0.3)
        d.signal(signal.SIGTERM)
        t0 = time.monotonic()
        try:
            rc = d.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            rc = None
        check(rc == 1, f"--once stopped by SIGTERM mid-round exits 1 (got {rc})")
        check(time.monotonic() - t0 < 2.5, "--once stops without waiting for the slow answer")
        check(not os.path.exists(f"{out}/slow"), "nothing written for the interrupted secret")
        d.stop()
        vault.set_latency(delay_ms=0)
        r = run(["-c", conf, "--once", "--log-level", "debug"])
        check(r.returncode == 0 and os.path.exists(f"{out}/slow"), "the same secret from Vault, not interrupted")
        check("slowTOK-5d1e" not in d.output() + r.stderr and token not in d.output() + r.stderr,
              "--log-level debug against Vault: no value or token in the output")
    finally:
        vault.stop()

    # no secrets at all: nothing to do, success
    conf = s.write_config('stores = { }; secrets = ( );')
    r = run(["-c", conf, "--once"])
    check(r.returncode == 0, "--once with no secrets exits 0")
finally:
    s.cleanup()
done()
