#!/usr/bin/env python3
"""Command line: --help, --version, usage errors, --check-config, --dump-config, strict modes."""
import os
import shutil
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lib import (CHIMERA_VALUES, Daemon, Scratch, check, done, fake_store, no_secrets_in, require_daemon, run)

require_daemon()
s = Scratch()
s.private_dirs = False  # the line numbers in messages are checked; the daemon runs with them below
try:
    r = run(["--help"])
    check(r.returncode == 0 and "--check-config" in r.stdout, "--help prints usage, exit 0")
    r = run(["--version"])
    check(r.returncode == 0 and r.stdout.startswith("secretsyncd "), "--version")
    r = run(["--no-such-flag"])
    check(r.returncode == 2, "unknown option exits 2")
    r = run(["--log-level", "loud", "--check-config"])
    check(r.returncode == 2 and "loud" in r.stderr, "bad --log-level exits 2 and names the value")
    r = run(["--once", "--check-config"])
    check(r.returncode == 2, "conflicting modes exit 2")

    good = s.write_config(f"""
stores = {{ {fake_store()} }};
secrets = (
  {{ name = "postgres-credentials"; store = "demo";
     data = ( {{ secret_key = "password";
                remote_ref = {{ key = "chimera/postgres-password"; property = "password"; }}; }} );
     files = ( {{ path = "{s.p('out', 'postgres.env')}"; format = "env"; mode = "0400"; }} ); }}
);
""")
    r = run(["-c", good, "--check-config"])
    check(r.returncode == 0 and r.stdout == "" and r.stderr == "", "--check-config: valid file, silent, exit 0")

    r = run(["-c", s.p("missing.conf"), "--check-config"])
    check(r.returncode == 2 and s.p("missing.conf") in r.stderr, "missing config file: exit 2, file named")

    bad = s.write_config("""daemon = { refresh_interval = "5 minutes"; bogus = 1; };
stores = { demo = { type = "fake"; }; };
secrets = (
  { name = "x"; store = "nope";
    data = ( { secret_key = "k"; remote_ref = { key = "a"; }; } );
    files = ( { path = "relative/path"; format = "env"; mode = 0400; } ); }
);
""", name="bad.conf")
    r = run(["-c", bad, "--check-config"])
    lines = r.stderr.strip().split("\n")
    check(r.returncode == 2, "--check-config: invalid file exits 2")
    check(all(l.startswith(bad + ":") for l in lines), "every error line is FILE:LINE: message")
    check(any(l.startswith(bad + ":1:") and "5 minutes" in l for l in lines), "bad duration reported on line 1")
    check(any(l.startswith(bad + ":1:") and "bogus" in l for l in lines), "unknown setting reported on line 1")
    check(any(l.startswith(bad + ":4:") and "'nope'" in l for l in lines), "missing store reported on line 4")
    check(any(l.startswith(bad + ":6:") and "mode" in l for l in lines), "integer mode reported on line 6")
    check(any(":6:" in l and "absolute" in l for l in lines), "relative path reported")

    kt = s.write_config("kubernetes = {\n  timeout = \"10ms\";\n};\n", name="kube-timeout.conf")
    r = run(["-c", kt, "--check-config"])
    check(r.returncode == 2 and kt + ":2:" in r.stderr and "'timeout' must be at least 100ms" in r.stderr,
          "kubernetes.timeout under 100ms: exit 2, file and line named")

    syn = s.write_config("daemon = {\n  log_level = \"info\";\n  refresh_interval = ;\n};\n", name="syntax.conf")
    r = run(["-c", syn, "--check-config"])
    check(r.returncode == 2 and r.stderr.startswith(syn + ":3:") and "syntax error" in r.stderr,
          "syntax error names file and line")

    # Strict modes: the configuration must not be writable by others.
    os.chmod(good, 0o666)
    r = run(["-c", good, "--check-config"])
    check(r.returncode == 2 and "chmod go-w" in r.stderr and good in r.stderr,
          "group/other-writable config refused with the fix named")
    r = run(["-c", good, "--once"])
    check(r.returncode == 2, "daemon refuses an untrusted config too (exit 2)")
    os.chmod(good, 0o600)
    os.chown(good, 1234, 1234)
    r = run(["-c", good, "--check-config"])
    check(r.returncode == 2 and "chown root" in r.stderr, "config owned by another user refused")
    os.chown(good, 0, 0)

    tok = s.p("vault-token")
    with open(tok, "w") as f:
        f.write("s.vault-token-value\n")
    os.chmod(tok, 0o620)
    cred = s.write_config(f"""stores = {{ v = {{ type = "vault"; server = "https://vault.example.com:8200";
  auth = {{ method = "token"; token_file = "{tok}"; }}; }}; }};
secrets = ( );
""", name="cred.conf")
    r = run(["-c", cred, "--check-config"])
    check(r.returncode == 2 and tok in r.stderr and "cred.conf:2:" in r.stderr,
          "group-writable credential file refused, file and line named")
    os.chmod(tok, 0o600)
    r = run(["-c", cred, "--check-config"])
    check(r.returncode == 0, "credential file 0600 accepted")

    # inputs the fuzzer found: a name running into the end of the file (read past it before)
    for i, text in enumerate([" Z", "secrets", "secrets = (", "x = \"", "secrets = ( { name = \"a"]):
        f = s.write_config(text, name=f"trunc{i}.conf")
        r = run(["-c", f, "--check-config"])
        check(r.returncode == 2 and r.stderr.startswith(f + ":"), f"truncated file {text!r}: exit 2, FILE:LINE")

    # files pulled in with @include are held to the same strict modes
    inc = s.p("included.conf")
    with open(inc, "w") as f:
        f.write("stores = { };\n")
    os.chmod(inc, 0o666)
    main = s.write_config('secrets = ( );\n@include "included.conf"\n', name="main.conf")
    r = run(["-c", main, "--check-config"])
    check(r.returncode == 2 and r.stderr.startswith(inc + ":") and "chmod go-w" in r.stderr,
          "a group/other-writable @include file is refused, named")
    os.chmod(inc, 0o644)
    r = run(["-c", main, "--check-config"])
    check(r.returncode == 0, "a trusted @include file is accepted")

    # --dump-config: redacted, and dump -> parse -> dump is a fixed point.
    full = s.write_config(f"""
daemon = {{ refresh_interval = "90m"; log_level = "notice"; }};
stores = {{
  {fake_store()}
  aws-secretsmanager = {{ type = "aws"; region = "us-east-1";
    auth = {{ method = "static"; access_key_id = "AKIAEXAMPLEKEYID"; secret_access_key_file = "{tok}";
             assume_role = {{ role_arn = "arn:aws:iam::111122223333:role/chimera"; }}; }}; }};
  vault-backend = {{ type = "vault"; server = "https://vault.example.com:8200";
    auth = {{ method = "approle"; role_id = "role-id-value"; secret_id_file = "{tok}"; }}; }};
}};
kubernetes = {{ leader_election = {{ enabled = true; identity = "node-1"; }}; }};
secrets = (
  {{ name = "minio-credentials"; store = "demo"; refresh_interval = 3600;
     data = ( {{ secret_key = "username"; remote_ref = {{ key = "chimera/minio-credentials"; property = "username"; }}; }},
              {{ secret_key = "password"; remote_ref = {{ key = "chimera/minio-credentials"; property = "password"; }}; }} );
     kubernetes = {{ namespace = "chimera"; name = "minio-secret"; labels = [ "app.kubernetes.io/part-of=chimera" ];
                    rollout_restart = [ "deployment/agent" ]; }};
     files = ( {{ path = "{s.p('out', 'minio.env')}"; format = "env"; owner = "root"; group = "0"; mode = "0440";
                 on_change = [ "true", "with \\"quotes\\"" ]; }},
               {{ path = "{s.p('out', 'minio.tmpl')}"; format = "template";
                 template = "user={{{{ username }}}}\\npass={{{{ password | base64 }}}}\\n"; }} ); }}
);
""", name="full.conf")
    r = run(["-c", full, "--dump-config"])
    check(r.returncode == 0, "--dump-config exit 0")
    dump1 = r.stdout
    check(not no_secrets_in(dump1, CHIMERA_VALUES + ["AKIAEXAMPLEKEYID", "role-id-value"]),
          "dump shows no secret value, key id or role id")
    # five fake values, the access key id and the role id
    check(dump1.count('"<redacted>"') == 7, "secrets shown as \"<redacted>\"")
    check('refresh_interval = "1h30m"' in dump1 and 'refresh_interval = "1h"' in dump1, "durations canonical")
    check('mode = "0600"' in dump1 and 'type = "Opaque"' in dump1 and 'max_backoff = "5m"' in dump1,
          "defaults filled in")
    d1 = s.write_config(dump1, name="dump1.conf")
    r2 = run(["-c", d1, "--dump-config"])
    dump2 = r2.stdout
    check(r2.returncode == 0 and dump2 == dump1, "dump -> parse -> dump is a fixed point")
    r3 = run(["-c", d1, "--check-config"])
    check(r3.returncode == 0, "the dump is itself a valid configuration")

    # A long secrets list is handed to libconfig one element at a time; a file with an
    # @include is parsed whole. Both must give the same model and the same errors.
    empty = s.p("empty.conf")
    with open(empty, "w") as f:
        f.write("# nothing\n")
    os.chmod(empty, 0o600)
    with open(full) as f:
        full_text = f.read()
    whole = s.write_config('@include "empty.conf"\n' + full_text, name="whole.conf")
    streamed = s.write_config("\n" + full_text, name="streamed.conf")
    a = run(["-c", whole, "--dump-config"]).stdout.split("\n", 1)[1]
    b = run(["-c", streamed, "--dump-config"]).stdout.split("\n", 1)[1]
    check(a == b and len(a) > 500, "streamed and whole-file parsing give the same configuration")
    with open(bad) as f:
        bad_text = f.read()
    whole = s.write_config('@include "empty.conf"\n' + bad_text, name="whole-bad.conf")
    streamed = s.write_config("\n" + bad_text, name="streamed-bad.conf")
    a = run(["-c", whole, "--check-config"]).stderr.replace(whole, "F")
    b = run(["-c", streamed, "--check-config"]).stderr.replace(streamed, "F")
    check(a == b and a.count("\n") >= 5, "streamed and whole-file parsing report the same errors and lines")
    tricky = s.write_config(f"""secrets = ( /* a ( comment ) with , commas */
  {{ name = "a"; store = "demo"; # ) , ( in a comment
     data = ( {{ secret_key = "k"; remote_ref = {{ key = "x,)("; }}; }} );
     files = ( {{ path = "{s.p('o', 'a')}"; format = "template"; template = "({{{{ k }}}}, \\"),"; }} ); }},
  {{ name = "b"; store = "demo"; data = ( {{ secret_key = "k"; remote_ref = {{ key = "y"; }}; }} );
     files = ( {{ path = "{s.p('o', 'b')}"; format = "raw"; key = "k"; bogus = 1; }} ); }}
);
stores = {{ {fake_store()} }};
""", name="tricky.conf")
    r = run(["-c", tricky, "--check-config"])
    check(r.returncode == 2 and r.stderr.strip() == f"{tricky}:6: unknown setting 'bogus'",
          f"strings, comments and brackets inside secrets do not confuse the split ({r.stderr.strip()!r})")
    # Plain http:// only to a loopback host, judged on the parsed URL, not a text prefix.
    for url, ok in (("http://127.example.com:8200", False), ("http://localhost:x@vault.example.com", False),
                    ("http://localhost.evil:8200", False), ("http://127.0.0.1:8200", True),
                    ("http://[::1]:8200", True), ("http://localhost:8200", True)):
        conf = s.write_config(f"""stores = {{ v = {{ type = "vault"; server = "{url}";
  auth = {{ method = "token"; token_file = "{s.p('no-token')}"; }}; }}; }};
secrets = ( );
""", name="url.conf")
        r = run(["-c", conf, "--check-config"])
        if ok:
            check(r.returncode == 0, f"--check-config accepts {url} ({r.stderr.strip()})")
        else:
            check(r.returncode == 2 and f'{conf}:1: store \'v\': server "{url}" must be an https:// URL' in r.stderr,
                  f"--check-config refuses {url}, naming file and line")

    # --log-level and daemon.log_level: info lines ("wrote ...") shown or hidden; errors always.
    def levels_config(level):
        return s.write_config(f"""daemon = {{ log_level = "{level}"; }};
stores = {{ {fake_store()} }};
secrets = (
  {{ name = "good"; store = "demo";
     data = ( {{ secret_key = "p"; remote_ref = {{ key = "chimera/redis-password"; property = "password"; }}; }} );
     files = ( {{ path = "{s.p('lv', 'good.env')}"; format = "env"; }} ); }},
  {{ name = "bad"; store = "demo";
     data = ( {{ secret_key = "p"; remote_ref = {{ key = "chimera/no-such-key"; }}; }} );
     files = ( {{ path = "{s.p('lv', 'bad.env')}"; format = "env"; }} ); }}
);
""", name="levels.conf", private_dirs=True)

    def once(level, args=()):
        shutil.rmtree(s.p("lv"), ignore_errors=True)
        return run(["-c", levels_config(level), "--once"] + list(args)).stderr

    out = once("info")
    check("[info]" in out and "wrote" in out and "[error]" in out, "log_level info: info and error lines shown")
    out = once("warning")
    check("[info]" not in out and "wrote" not in out and "[error]" in out and "no-such-key" in out,
          "daemon.log_level = \"warning\" hides info lines, keeps errors")
    out = once("warning", ["--log-level", "info"])
    check("[info]" in out and "wrote" in out, "--log-level info overrides daemon.log_level = \"warning\"")
    out = once("warning", ["--log-level", "debug"])
    check("[info]" in out and "wrote" in out, "--log-level debug shows info lines too")
    out = once("info", ["--log-level", "err"])
    check("[info]" not in out and "[error]" in out, "--log-level err overrides daemon.log_level = \"info\"")

    # On reload, a changed daemon.log_level applies, unless --log-level was given.
    for args, shown in (((), True), (("--log-level", "warning"), False)):
        shutil.rmtree(s.p("lv"), ignore_errors=True)
        d = Daemon(levels_config("warning"), s, args=args)
        try:
            d.wait_log("[error]")
            time.sleep(0.3)
            check("[info]" not in d.output(), f"daemon {' '.join(args)} with log_level warning: no info lines")
            levels_config("info")
            d.signal(signal.SIGHUP)
            time.sleep(0.5)
            d.signal(signal.SIGUSR1)
            got = d.wait_log("up to date", timeout=5)
            check(got == shown, f"after a reload to log_level info, info lines {'shown' if shown else 'still hidden: --log-level wins'}")
        finally:
            d.stop()
finally:
    s.cleanup()
done()
