#!/usr/bin/env python3
"""secretsyncctl convert-eso: the seed's manifests verbatim, a corpus written from ESO's API
(every supported field converts to exactly the golden configuration, which the daemon
accepts; every unsupported field gives its error on its line), --partial, standard input,
List objects, and hostile YAML."""
import glob
import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lib import DAEMON, Scratch, check, done, require_daemon, run

require_daemon()
CTL = os.environ.get("SECRETSYNCCTL") or os.path.join(os.path.dirname(DAEMON), "secretsyncctl")
HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(HERE, "..", "fixtures", "eso")
SEED = sorted(glob.glob(os.path.join(FIXTURES, "seed", "*.yaml")))
SA = os.path.join(FIXTURES, "seed-extra", "service-account.yaml")
UPDATE = os.environ.get("SECRETSYNCD_UPDATE_GOLDEN") == "1"


def convert(*args, stdin=None, cwd=None):
    return subprocess.run([CTL, "convert-eso", *args], capture_output=True, text=True, input=stdin, timeout=60,
                          cwd=cwd)


def check_config(s, text, name):
    path = s.write_config(text, name=name, private_dirs=False)
    r = run(["-c", path, "--check-config"])
    return r


def dump(s, text, name):
    path = s.write_config(text, name=name, private_dirs=False)
    return run(["-c", path, "--dump-config"])


s = Scratch()
try:
    # ---- the seed: the guide's manifests verbatim -------------------------------------
    check(len(SEED) == 7, "the seed's 7 manifests are fixtures")
    r = convert(*SEED)
    check(r.returncode == 2 and r.stdout == "", "seed without its ServiceAccount: exit 2, no configuration")
    check("eks.amazonaws.com/role-arn" in r.stderr and "ServiceAccount chimera/external-secrets-sa" in r.stderr
          and "pass its manifest" in r.stderr, "the error says which ServiceAccount to pass, and why")
    check(re.search(r"secret-store-aws\.yaml:13: spec\.provider\.aws\.auth\.jwt\.serviceAccountRef: ", r.stderr),
          "the error is FILE:LINE: field: why, on the serviceAccountRef line")

    r = convert(*SEED, SA)
    check(r.returncode == 0 and r.stderr == "", "seed with the ServiceAccount converts, exit 0, silent")
    seed_conf = r.stdout
    r2 = convert(*SEED, SA)
    check(r2.stdout == seed_conf, "same input, same bytes")
    c = check_config(s, seed_conf, "seed.conf")
    check(c.returncode == 0, f"the converted seed passes --check-config {c.stderr.strip()}")
    d = dump(s, seed_conf, "seed.conf")
    text = d.stdout
    expect = {"postgres-secret": ["password"], "redis-secret": ["password"], "minio-secret": ["username", "password"],
              "jwt-secret": ["secret"], "grafana-secret": ["admin-password"]}
    for secret, keys in expect.items():
        block = re.search(r'name = "%s";' % secret, text)
        check(block is not None, f"Secret {secret} is a kubernetes target")
        for k in keys:
            check(f'secret_key = "{k}"' in text, f"{secret} gets key {k}, which the seed's Deployments read")
    check(text.count('creation_policy = "owner"') == 5 and text.count('deletion_policy = "delete"') == 5,
          "creationPolicy Owner: owner, and deleted with its entry, as an owner reference would")
    check('role_arn = "arn:aws:iam::123456789012:role/chimera-external-secrets"' in text,
          "the role ARN comes from the ServiceAccount's annotation")
    check(re.search(r'service_account = \{\s*namespace = "chimera";\s*name = "external-secrets-sa";', text),
          "IRSA becomes a service_account token request")
    check('method = "kubernetes"' in text and 'role = "chimera-role"' in text, "the Vault store: kubernetes auth")
    check("# SecretStore chimera/aws-secretsmanager (" in seed_conf and "secret-store-aws.yaml:1)" in seed_conf,
          "each block says where it came from")

    # the same manifests through standard input, as one multi-document stream
    stream = "\n---\n".join(open(f).read() for f in SEED + [SA])
    r = convert("-", stdin=stream)
    body = lambda t: t[t.index("kubernetes = {"):]
    strip_origin = lambda t: re.sub(r" \([^()]*:\d+\)", "", body(t))
    check(r.returncode == 0 and strip_origin(r.stdout) == strip_origin(seed_conf),
          "'-' reads standard input: the same configuration")
    check("(<stdin>:" in r.stdout, "blocks read from standard input say <stdin>")

    # ---- the corpus: every supported field --------------------------------------------
    for y in sorted(glob.glob(os.path.join(FIXTURES, "corpus", "*.yaml"))):
        name = os.path.basename(y)
        first = open(y).readline()
        args = first[len("# args:"):].split() if first.startswith("# args:") else []
        r = convert(*args, name, cwd=os.path.dirname(y))
        if name.startswith("unsupported-"):
            expected = set()
            for i, line in enumerate(open(y), 1):
                m = re.search(r"# error: (.*)$", line)
                if m:
                    expected.add((i, m.group(1).strip()))
            got = set()
            for line in r.stderr.splitlines():
                m = re.match(re.escape(name) + r":(\d+): (.*)$", line)
                if m:
                    rest = m.group(2)
                    fm = re.match(r"([^ :]+(?: key)?): ", rest)
                    got.add((int(m.group(1)), fm.group(1) if fm else "-"))
            check(r.returncode == 2 and r.stdout == "", f"{name}: exit 2, no configuration")
            check(got == expected, f"{name}: every unsupported field gives its error on its line "
                                   f"(missing {sorted(expected - got)}, unexpected {sorted(got - expected)})")
            check(re.search(r"convert-eso: \d+ fields? could not be converted", r.stderr), f"{name}: a summary")
            continue
        golden = y[:-len(".yaml")] + ".conf"
        check(r.returncode == 0 and r.stderr == "", f"{name}: converts, silent {r.stderr.strip()}")
        if UPDATE:
            with open(golden, "w") as f:
                f.write(r.stdout)
        check(os.path.exists(golden) and open(golden).read() == r.stdout, f"{name}: exactly {os.path.basename(golden)}")
        c = check_config(s, r.stdout, name + ".conf")
        check(c.returncode == 0, f"{name}: the daemon accepts the result {c.stderr.strip()}")

    # ---- --partial ----------------------------------------------------------------------
    es = os.path.join(FIXTURES, "corpus", "unsupported-externalsecret.yaml")
    full = convert(es)
    r = convert("--partial", es)
    n_errors = len([l for l in full.stderr.splitlines() if l.startswith(es + ":")])
    notes = [l for l in r.stdout.splitlines() if l.strip().startswith("# not converted:")]
    check(r.returncode == 0, "--partial: exit 0")
    check(n_errors > 20 and len(notes) == n_errors, f"--partial: each of the {n_errors} fields is a comment")
    check(all(l.endswith("(not converted)") for l in r.stderr.splitlines() if l.startswith(es)),
          "--partial: stderr still lists them")
    check('name = "everything";' in r.stdout and 'key = "apps/db"' in r.stdout, "--partial: the rest is converted")

    # ---- usage and hostile input ----------------------------------------------------------
    r = convert()
    check(r.returncode == 2 and "convert-eso needs" in r.stderr, "no files: usage error, exit 2")
    r = convert(s.p("missing.yaml"))
    check(r.returncode == 2 and "missing.yaml" in r.stderr, "a missing file: exit 2, named")
    r = subprocess.run([CTL, "--partial", "status"], capture_output=True, text=True)
    check(r.returncode == 2 and "convert-eso" in r.stderr, "--partial is only for convert-eso")

    def bad(text, what, pattern):
        p = s.p("bad.yaml")
        with open(p, "w") as f:
            f.write(text)
        t0 = time.monotonic()
        r = convert(p)
        check(r.returncode == 2 and r.stdout == "" and re.search(pattern, r.stderr) and time.monotonic() - t0 < 10,
              f"{what}: refused with its line ({r.stderr.splitlines()[0][:160] if r.stderr else ''})")

    bad("apiVersion: v1\nkind: List\nitems:\n  - a: [\n", "unterminated YAML", r"bad\.yaml:\d+: not valid YAML")
    bad("apiVersion: external-secrets.io/v1\nkind: ExternalSecret\nmetadata:\n  name: a\n  name: b\n",
        "a duplicate key", r"bad\.yaml:5: not valid YAML: .*twice")
    laughs = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, "
        f"*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}]\n"
        for i in range(9))
    bad(laughs, "a billion laughs", r"not valid YAML: too many nodes")
    bad("a: " + "[" * 500 + "]" * 500 + "\n", "deep nesting", r"not valid YAML: nested too deeply")
    bad("apiVersion: external-secrets.io/v1\nkind: ExternalSecret\nmetadata: { name: x, namespace: y }\n"
        "spec: { secretStoreRef: { name: s }, data: [ { secretKey: k, remoteRef: { key: \"\\0\" } } ] }\n",
        "a NUL in a value", r"bad\.yaml:4: not valid YAML: a NUL")
    bad("just a string\n", "a document that is not an object", r"bad\.yaml:1: a document that is not")
    bad("kind: Deployment\napiVersion: apps/v1\n", "nothing to convert", r"no SecretStore")

    # control characters never reach the configuration or a comment unescaped
    p = s.p("ctl.yaml")
    with open(p, "w") as f:
        f.write("apiVersion: external-secrets.io/v1\nkind: ClusterSecretStore\nmetadata: { name: demo }\n"
                "spec: { provider: { fake: { data: [ { key: \"a\\nb\", value: \"x\\ty\\u0001\" } ] } } }\n"
                "---\napiVersion: v1\nkind: Pod\nmetadata: { name: \"evil\\n  injected = 1;\" }\n")
    r = convert(p)
    check(r.returncode == 0 and "injected = 1;" not in r.stdout.replace("evil?  injected = 1;", ""),
          "a name with a newline cannot inject configuration through a comment")
    c = check_config(s, r.stdout, "ctl.conf")
    check(c.returncode == 0 and '"a\\nb"' in r.stdout, "control characters in values are escaped")
finally:
    s.cleanup()
done()
