#!/usr/bin/env python3
"""Templates in Kubernetes targets, against the stand-in API server (kube_server.py): keys
computed from the fetched data (a DATABASE_URL built from a password), merge_policy replace
(only the template keys) and merge (the data's keys too, a template key winning, as ESO's
mergePolicy), template_file, the data-hash annotation of the rendered data, nothing written
when nothing changed, an edited template key put back, an unknown key refused by the
configuration check (keys known) or failing the sync (keys from data_from), the 1 MiB limit
on the rendered data, and no value in any output."""
import base64
import hashlib
import json
import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lib import CHIMERA, Daemon, NotifySocket, Scratch, check, done, fake_store, require_daemon, run, skip

require_daemon()
import tls
from kube_server import KubeServer

if not tls.have_openssl():
    skip("openssl command missing (needed to make test certificates)")

USER = "system:serviceaccount:kube-system:secretsyncd"
TOKEN = "sa-token-Tmpl-51c2e0"
WRITES = ["create", "update", "patch", "delete"]
PG = 'pg-Pa$$w0rd"quoted"'
MINIO_USER, MINIO_PW = "chimera-admin", "minio-S3cret"
VALUES = [PG, MINIO_PW, "redis-s3cret", "jwt-0123456789abcdef"]
s = Scratch()
m = tls.make_all(s.p("tls"))
STORE_DATA = dict(CHIMERA)


def lc(text):
    """A libconfig string literal."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


URL_TMPL = "postgres://chimera:{{ password }}@postgres:5432/chimera"
PGPASS_TMPL = "postgres:5432:chimera:chimera:{{ password }}\n"
tmpl_file = s.p("minio-config.tmpl")
with open(tmpl_file, "w") as f:
    f.write('{"user": {{ username | json }}, "auth": "{{ password | base64 }}"}\n')
os.chmod(tmpl_file, 0o600)


def secrets(extra=""):
    base = f"""
  {{ name = "postgres-credentials"; store = "demo";
     data = ( {{ secret_key = "password"; remote_ref = {{ key = "chimera/postgres-password"; property = "password"; }}; }} );
     kubernetes = {{ namespace = "chimera"; name = "postgres-secret";
                    templates = ( {{ key = "DATABASE_URL"; template = {lc(URL_TMPL)}; }},
                                  {{ key = ".pgpass"; template = {lc(PGPASS_TMPL)}; }} ); }}; }},
  {{ name = "minio-credentials"; store = "demo";
     data_from = ( {{ extract = {{ key = "chimera/minio-credentials"; }}; }} );
     kubernetes = {{ namespace = "chimera"; name = "minio-secret"; merge_policy = "merge";
                    templates = ( {{ key = "config.json"; template_file = "{tmpl_file}"; }},
                                  {{ key = "username"; template = "{{{{ username }}}}@minio"; }} ); }}; }}"""
    return base + (",\n" + extra if extra else "")


def config(secrets_text, data=None):
    return s.write_config(f"""
daemon = {{ min_backoff = "300ms"; max_backoff = "1s"; refresh_interval = "1h"; }};
stores = {{ {fake_store(data=data or STORE_DATA)} }};
kubernetes = {{ kubeconfig = "{kubeconfig}"; leader_election = {{ enabled = false; }}; }};
secrets = ( {secrets_text} );
""")


def data_hash(secret):
    """sha256 of `kubectl get secret -o json | jq -cjS .data`."""
    return hashlib.sha256(json.dumps(secret.get("data") or {}, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def wait(pred, timeout=10.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(0.05)
    return pred()


def secret_writes(**kw):
    return kube.count(verb=WRITES, resource="secrets", **kw)


PG_EXPECTED = {"DATABASE_URL": f"postgres://chimera:{PG}@postgres:5432/chimera",
               ".pgpass": f"postgres:5432:chimera:chimera:{PG}\n"}
MINIO_EXPECTED = {"password": MINIO_PW, "username": f"{MINIO_USER}@minio",
                  "config.json": f'{{"user": "{MINIO_USER}", "auth": "{base64.b64encode(MINIO_PW.encode()).decode()}"}}\n'}

kube = KubeServer(tls_cert=m.server_cert, tls_key=m.server_key)
kube.start()
d = None
all_output = ""
try:
    kube.add_user(USER, token=TOKEN)
    kube.grant(USER, ["get", "list", "watch", "create", "patch", "delete"], ["secrets"], namespaces=["chimera"])
    kube.create_namespace("chimera")
    kubeconfig = s.p("kubeconfig")
    with open(kubeconfig, "w") as f:
        f.write(f"""apiVersion: v1
kind: Config
clusters:
- name: edge
  cluster:
    server: {kube.url}
    certificate-authority: {m.ca_cert}
users:
- name: secretsyncd
  user:
    token: {TOKEN}
contexts:
- name: edge
  context: {{ cluster: edge, user: secretsyncd }}
current-context: edge
""")
    os.chmod(kubeconfig, 0o600)

    # --- the configuration: checked, dumped, and read back to the same dump
    conf = config(secrets())
    r = run(["-c", conf, "--check-config"])
    check(r.returncode == 0 and r.stderr == "", f"templates pass --check-config ({r.stderr.strip()[:300]})")
    r = run(["-c", conf, "--dump-config"])
    dump = r.stdout
    check(r.returncode == 0 and 'templates = (' in dump and 'merge_policy = "replace";' in dump
          and 'merge_policy = "merge";' in dump and f'template_file = "{tmpl_file}";' in dump
          and "DATABASE_URL" in dump, "--dump-config shows templates, template_file and merge_policy")
    again = s.write_config(dump, name="dumped.conf")
    r2 = run(["-c", again, "--dump-config"])
    check(r2.returncode == 0 and r2.stdout == dump, "dump -> parse -> dump is a fixed point")

    # --- --once: replace holds only the template keys; merge the data's keys too
    r = run(["-c", conf, "--once"])
    all_output += r.stdout + r.stderr
    check(r.returncode == 0, "--once writes Secrets with templates" + ("" if r.returncode == 0 else f" ({r.stderr[-400:]})"))
    got = kube.secret_data("chimera", "postgres-secret")
    check(got == PG_EXPECTED, f"merge_policy replace (the default): only the rendered template keys ({got})")
    got = kube.secret_data("chimera", "minio-secret")
    check(got == MINIO_EXPECTED, f"merge_policy merge: the data's keys and the template keys, the template's "
                                 f"'username' winning over the data's ({got})")
    for name in ("postgres-secret", "minio-secret"):
        obj = kube.get_secret("chimera", name) or {"metadata": {"annotations": {}}}
        check(obj["metadata"]["annotations"].get("secretsyncd.io/data-hash") == data_hash(obj),
              f"{name}: the data-hash annotation is of the rendered data")

    kube.reset_stats()
    r = run(["-c", conf, "--once"])
    all_output += r.stdout + r.stderr
    check(r.returncode == 0 and "Kubernetes Secret chimera/postgres-secret is up to date" in r.stderr
          and "Kubernetes Secret chimera/minio-secret is up to date" in r.stderr and secret_writes() == 0,
          f"a second --once finds both up to date and writes nothing ({secret_writes()} writes)")

    # --- the daemon: unchanged refreshes send nothing; an edited template key is put back
    notify = NotifySocket(s)
    d = Daemon(conf, s, notify=notify)
    check(notify.wait_for(lambda msg: msg.get("READY") == "1", timeout=20) is not None, "daemon READY=1")
    check(d.wait_log("is up to date", count=2, timeout=10), "the daemon finds both Secrets up to date")
    time.sleep(0.3)
    kube.reset_stats()
    d.signal(signal.SIGUSR1)
    d.wait_log("chimera/minio-secret is up to date", count=d.output().count("chimera/minio-secret is up to date") + 1)
    time.sleep(0.3)
    check(secret_writes() == 0, f"a refresh of unchanged data writes nothing ({secret_writes()} writes)")

    # Edited with our label and annotations kept: only the data tells it apart.
    obj = kube.get_secret("chimera", "postgres-secret")
    fetches = d.output().count("fetched 'chimera/postgres-password'")
    tampered = dict(PG_EXPECTED, DATABASE_URL="postgres://attacker@evil/x")
    kube.put_secret("chimera", "postgres-secret", data=tampered, labels=obj["metadata"]["labels"],
                    annotations=obj["metadata"]["annotations"], manager="kubectl-edit")
    check(wait(lambda: kube.secret_data("chimera", "postgres-secret") == PG_EXPECTED, 5),
          "an edited template key is put back to its rendered value")
    check(d.output().count("fetched 'chimera/postgres-password'") == fetches, "the repair did not ask the store again")
    check(d.wait_log("chimera/postgres-secret was edited or deleted; put it back"), "the repair is logged")
    # A template key deleted from the Secret by a merge-policy edit: put back too.
    obj = kube.get_secret("chimera", "minio-secret")
    kube.put_secret("chimera", "minio-secret", data={k: v for k, v in MINIO_EXPECTED.items() if k != "config.json"},
                    labels=obj["metadata"]["labels"], annotations=obj["metadata"]["annotations"], manager="kubectl-edit")
    check(wait(lambda: kube.secret_data("chimera", "minio-secret") == MINIO_EXPECTED, 5),
          "a removed template key is put back")

    # --- rotation: the template's output follows the data
    STORE_DATA["chimera/postgres-password"] = '{"password":"pg-rotated-Pw9"}'
    VALUES.append("pg-rotated-Pw9")
    config(secrets())
    d.signal(signal.SIGHUP)
    check(wait(lambda: (kube.secret_data("chimera", "postgres-secret") or {}).get("DATABASE_URL") ==
               "postgres://chimera:pg-rotated-Pw9@postgres:5432/chimera", 10), "a rotated value reaches DATABASE_URL")
    obj = kube.get_secret("chimera", "postgres-secret")
    check(obj["metadata"]["annotations"].get("secretsyncd.io/data-hash") == data_hash(obj),
          "the data-hash annotation follows the rendered data")

    # --- a changed template alone (same data) is a change: written
    config(secrets().replace("@postgres:5432/", "@db.internal:5432/"))
    d.signal(signal.SIGHUP)
    check(wait(lambda: (kube.secret_data("chimera", "postgres-secret") or {}).get("DATABASE_URL") ==
               "postgres://chimera:pg-rotated-Pw9@db.internal:5432/chimera", 10),
          "a reload with a changed template rewrites the key")

    # --- an unknown key where the keys come from data_from: a sync failure naming it
    extra = """{ name = "from-extract"; store = "demo";
     data_from = ( { extract = { key = "chimera/minio-credentials"; }; } );
     kubernetes = { namespace = "chimera"; name = "extract-secret";
                    templates = ( { key = "URL"; template = "s3://{{ usrname }}@minio"; } ); }; }"""
    conf2 = config(secrets(extra))
    r = run(["-c", conf2, "--check-config"])
    check(r.returncode == 0, "with data_from the keys are not known: --check-config passes")
    d.signal(signal.SIGHUP)
    check(d.wait_log("secret 'from-extract': cannot write Kubernetes Secret chimera/extract-secret: "
                     "template key \"URL\": template line 1: unknown key 'usrname'", timeout=10),
          "an unknown key fails the sync, naming secret, target, template key and the unknown key")
    time.sleep(0.3)
    check(kube.get_secret("chimera", "extract-secret") is None, "nothing is written for it")

    # --- the 1 MiB limit applies to the rendered data: a small value, a large template output
    filler = "x" * (700 * 1024)
    extra = f"""{{ name = "rendered-too-big"; store = "demo";
     data = ( {{ secret_key = "secret"; remote_ref = {{ key = "chimera/jwt-secret"; property = "secret"; }}; }} );
     kubernetes = {{ namespace = "chimera"; name = "too-big";
                    templates = ( {{ key = "a"; template = "{filler}{{{{ secret }}}}"; }}, {{ key = "b"; template = "{filler}"; }} ); }}; }}"""
    config(secrets(extra))
    d.signal(signal.SIGHUP)
    check(d.wait_log("secret 'rendered-too-big': cannot write Kubernetes Secret chimera/too-big: the data is", timeout=10),
          "rendered data over 1 MiB is a sync failure")
    check(kube.get_secret("chimera", "too-big") is None and kube.count(resource="secrets", name="too-big") == 0,
          "refused before any request")

    rc = d.stop()
    check(rc == 0, f"SIGTERM: exit 0 ({rc})")
    all_output += d.output()

    # --- unknown keys, bad keys and doubled keys where the keys are known: configuration errors
    bad = """{ name = "bad-templates"; store = "demo";
     data = ( { secret_key = "password"; remote_ref = { key = "chimera/redis-password"; property = "password"; }; } );
     kubernetes = { namespace = "chimera"; name = "bad";
                    templates = ( { key = "REDIS_URL"; template = "redis://:{{ pasword }}@redis"; },
                                  { key = "not a key"; template = "x"; },
                                  { key = "REDIS_URL"; template = "y"; },
                                  { key = "none"; } );
                    merge_policy = "union"; }; }"""
    conf3 = config(secrets(bad))
    r = run(["-c", conf3, "--check-config"])
    err = r.stderr
    lines = open(conf3).read().split("\n")
    def line_of(needle):
        return next(i + 1 for i, text in enumerate(lines) if needle in text)
    check(r.returncode == 2, f"bad templates: exit 2 ({r.returncode})")
    check(f"{conf3}:{line_of('pasword')}: secret 'bad-templates', Kubernetes Secret chimera/bad, template key "
          f"\"REDIS_URL\": template line 1: unknown key 'pasword'" in err,
          "an unknown key is a configuration error at its line, naming secret, target and template key" + (
              "" if "pasword" in err else f" ({err[-400:]})"))
    check(f"{conf3}:{line_of('not a key')}: secret 'bad-templates': template key \"not a key\" cannot be a Kubernetes "
          f"Secret key" in err, "a template key that cannot be a Secret key")
    twice_line, none_line = line_of('template = "y"'), line_of('key = "none"')
    check(f"{conf3}:{twice_line}: secret 'bad-templates': template key \"REDIS_URL\" appears twice" in err,
          "a template key given twice")
    check(f"{conf3}:{none_line}: secret 'bad-templates': a Kubernetes template needs exactly one of" in err,
          "a template without text")
    check(f"{conf3}:{line_of('union')}: 'merge_policy' = \"union\" is not one of replace, merge" in err,
          "merge_policy names its choices")

    leaked = [v for v in VALUES + [TOKEN] if v in all_output + err]
    check(not leaked, f"no value or token in any output ({leaked})")
finally:
    if d and d.proc.poll() is None:
        d.stop()
    kube.stop()
    s.cleanup()
done()
