#!/usr/bin/env python3
"""Kubernetes Secret targets against the stand-in API server (kube_server.py, HTTPS, a
ServiceAccount token with RBAC): the Project Chimera Secrets with the keys its Deployments
read; nothing written by a refresh that changes nothing; edits and deletions repaired from
the data the daemon holds; the creation and deletion policies; a foreign Secret left alone;
RBAC denial and a missing namespace named in the error; rollout restart once per change;
oversize data; and no value or token in any output."""
import base64
import hashlib
import json
import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lib import CHIMERA, Daemon, NotifySocket, Scratch, check, done, fake_store, lc_string, require_daemon, run, skip

require_daemon()
import tls
from kube_server import KubeServer

if not tls.have_openssl():
    skip("openssl command missing (needed to make test certificates)")

USER = "system:serviceaccount:kube-system:secretsyncd"
TOKEN = "sa-token-Kube-7f3a9c"
s = Scratch()
m = tls.make_all(s.p("tls"))
out = s.p("out")
WRITES = ["create", "update", "patch", "delete"]

# The seed's five Secrets and the keys its Deployments read (secretKeyRef).
SEED = {
    "postgres-secret": ("postgres-credentials", {"password": ("chimera/postgres-password", "password")}),
    "redis-secret": ("redis-credentials", {"password": ("chimera/redis-password", "password")}),
    "minio-secret": ("minio-credentials", {"username": ("chimera/minio-credentials", "username"),
                                           "password": ("chimera/minio-credentials", "password")}),
    "jwt-secret": ("jwt-secret", {"secret": ("chimera/jwt-secret", "secret")}),
    "grafana-secret": ("grafana-credentials", {"admin-password": ("chimera/grafana-admin", "password")}),
}
STORE_DATA = dict(CHIMERA)
VALUES = [json.loads(v)[p] for v in CHIMERA.values() for p in json.loads(v)]


def expected(secret):
    return {k: json.loads(STORE_DATA[key])[prop] for k, (key, prop) in SEED[secret][1].items()}


def seed_secrets(extra="", rollout='rollout_restart = [ "deployment/agent" ];'):
    out_list = []
    for name, (sname, keys) in SEED.items():
        data = ", ".join(f'{{ secret_key = "{k}"; remote_ref = {{ key = "{key}"; property = "{prop}"; }}; }}'
                         for k, (key, prop) in keys.items())
        roll = rollout if name == "postgres-secret" else ""
        out_list.append(f"""{{ name = "{sname}"; store = "demo"; data = ( {data} );
      kubernetes = {{ namespace = "chimera"; name = "{name}";
                     labels = [ "app.kubernetes.io/part-of=chimera" ]; {roll} }};
      files = ( {{ path = "{out}/{name}.json"; format = "json"; }} ); }}""")
    return ",\n".join(out_list + ([extra] if extra else []))


def config(secrets_text, daemon="", data=None):
    return s.write_config(f"""
daemon = {{ min_backoff = "300ms"; max_backoff = "1s"; refresh_interval = "1h"; {daemon} }};
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


kube = KubeServer(tls_cert=m.server_cert, tls_key=m.server_key)
kube.start()
d = None
try:
    kube.add_user(USER, token=TOKEN)
    kube.grant(USER, ["get", "list", "watch", "create", "patch", "delete"], ["secrets"], namespaces=["chimera"])
    kube.grant(USER, ["patch"], ["deployments"], namespaces=["chimera"], api_groups=["apps"])
    kube.create_namespace("chimera")
    kube.create_namespace("restricted")
    kube.put_workload("deployment", "chimera", "agent")
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

    # --- --once: the five Secrets
    conf = config(seed_secrets())
    r = run(["-c", conf, "--once"])
    all_output = r.stdout + r.stderr
    check(r.returncode == 0, "--once writes the five seed Secrets" + ("" if r.returncode == 0 else f" ({r.stderr[-400:]})"))
    for name in SEED:
        obj = kube.get_secret("chimera", name)
        ok = obj is not None and kube.secret_data("chimera", name) == expected(name)
        check(ok, f"{name} holds the keys the Deployments read ({kube.secret_data('chimera', name) if obj else None})")
        if obj:
            md = obj["metadata"]
            check(md["labels"].get("app.kubernetes.io/managed-by") == "secretsyncd"
                  and md["labels"].get("app.kubernetes.io/part-of") == "chimera"
                  and md["annotations"].get("secretsyncd.io/secret") == SEED[name][0]
                  and md["annotations"].get("secretsyncd.io/data-hash") == data_hash(obj) and obj["type"] == "Opaque",
                  f"{name}: managed-by label, secretsyncd.io/secret and a data-hash that is sha256 of jq -cjS .data")
            managers = {f["manager"] for f in md.get("managedFields", [])}
            check(managers == {"secretsyncd"}, f"{name}: field manager secretsyncd ({managers})")
    check("wrote Kubernetes Secret chimera/postgres-secret" in r.stderr, "the write is in the journal output")

    # --- a second --once: nothing to write
    kube.reset_stats()
    r = run(["-c", conf, "--once"])
    all_output += r.stdout + r.stderr
    check(r.returncode == 0 and "Kubernetes Secret chimera/jwt-secret is up to date" in r.stderr,
          "an unchanged --once says up to date")
    check(secret_writes() == 0, f"an unchanged --once writes nothing ({secret_writes()} writes)")
    check(kube.count(verb="list", resource="secrets") <= 1, "one list per namespace at most")
    check(kube.restarted_at("deployment", "chimera", "agent")["value"] is None, "no rollout restart on creation")

    # --- the daemon: unchanged refreshes send nothing; drift is repaired
    notify = NotifySocket(s)
    d = Daemon(conf, s, notify=notify)
    check(notify.wait_for(lambda msg: msg.get("READY") == "1", timeout=20) is not None, "daemon READY=1")
    check(d.wait_log("is up to date", count=5, timeout=10), "the daemon finds the five Secrets up to date")
    time.sleep(0.5)
    kube.reset_stats()
    for _ in range(3):
        n = d.output().count("is up to date")
        d.signal(signal.SIGUSR1)
        d.wait_log("chimera/grafana-secret is up to date", count=d.output().count("chimera/grafana-secret is up to date") + 1)
    time.sleep(0.3)
    check(secret_writes() == 0 and kube.count(verb="list", resource="secrets") == 0 and kube.count(verb="get", resource="secrets") == 0,
          f"three refreshes of unchanged data send no request for Secrets ({kube.stats()['counts']})")

    # someone edits a managed Secret: put back within seconds, without asking the store
    fetches = d.output().count("fetched 'chimera/postgres-password'")
    kube.put_secret("chimera", "postgres-secret", data={"password": "tampered"},
                    labels={"app.kubernetes.io/managed-by": "secretsyncd"}, manager="kubectl-edit")
    t0 = time.monotonic()
    repaired = wait(lambda: kube.secret_data("chimera", "postgres-secret") == expected("postgres-secret"), 5)
    check(repaired, f"an edited Secret is put back ({time.monotonic() - t0:.2f} s)")
    check(time.monotonic() - t0 < 2.0, "within 2 s")
    check(d.output().count("fetched 'chimera/postgres-password'") == fetches, "the repair did not ask the store again")
    check(d.wait_log("chimera/postgres-secret was edited or deleted; put it back"), "the repair is logged")

    # someone deletes one
    kube.delete_object("secrets", "jwt-secret", "chimera")
    t0 = time.monotonic()
    check(wait(lambda: kube.secret_data("chimera", "jwt-secret") == expected("jwt-secret"), 5),
          f"a deleted Secret is created again ({time.monotonic() - t0:.2f} s)")
    check(time.monotonic() - t0 < 2.0, "within 2 s")

    # the watch breaks (410 Gone after compaction, then dropped connections): still repaired
    kube.compact()
    kube.drop_watches()
    time.sleep(0.5)
    kube.put_secret("chimera", "redis-secret", data={"password": "tampered-2"},
                    labels={"app.kubernetes.io/managed-by": "secretsyncd"}, manager="kubectl-edit")
    check(wait(lambda: kube.secret_data("chimera", "redis-secret") == expected("redis-secret"), 10),
          "after the watch was dropped and history compacted, an edit is still repaired")

    # --- rotation: the data changes; rollout restart once
    STORE_DATA["chimera/postgres-password"] = '{"password":"pg-rotated-Pw9"}'
    VALUES.append("pg-rotated-Pw9")
    config(seed_secrets())
    kube.reset_stats()
    d.signal(signal.SIGHUP)
    check(wait(lambda: kube.secret_data("chimera", "postgres-secret") == {"password": "pg-rotated-Pw9"}, 10),
          "a rotated value reaches the Secret")
    check(wait(lambda: (kube.restarted_at("deployment", "chimera", "agent") or {}).get("value") is not None, 5),
          "deployment/agent is restarted (kubectl.kubernetes.io/restartedAt)")
    first = kube.restarted_at("deployment", "chimera", "agent")
    check(secret_writes() == 1, f"one write: only the changed Secret ({secret_writes()})")
    d.signal(signal.SIGUSR1)
    time.sleep(1.5)
    check(kube.count(verb="patch", resource="deployments") == 1 and
          kube.restarted_at("deployment", "chimera", "agent") == first,
          f"no second restart without a change ({kube.count(verb='patch', resource='deployments')} patches, "
          f"{first} then {kube.restarted_at('deployment', 'chimera', 'agent')})")
    check(d.wait_log("restarted chimera/deployment/agent"), "the restart is logged")

    # --- policies: merge, orphan, none, a foreign Secret, denial, a missing namespace, oversize
    kube.put_secret("chimera", "app-config", data={"LOG_LEVEL": "debug"}, manager="kubectl")
    kube.put_secret("chimera", "foreign-secret", data={"password": "theirs"}, manager="helm")
    big = "x" * (600 * 1024)
    STORE_DATA["big/a"] = big
    STORE_DATA["big/b"] = big
    extra = f"""
  {{ name = "merged"; store = "demo"; data = ( {{ secret_key = "REDIS_PASSWORD"; remote_ref = {{ key = "chimera/redis-password"; property = "password"; }}; }} );
     kubernetes = {{ namespace = "chimera"; name = "app-config"; creation_policy = "merge"; }}; }},
  {{ name = "merge-missing"; store = "demo"; data = ( {{ secret_key = "x"; remote_ref = {{ key = "chimera/jwt-secret"; property = "secret"; }}; }} );
     kubernetes = {{ namespace = "chimera"; name = "not-there"; creation_policy = "merge"; }}; }},
  {{ name = "orphaned"; store = "demo"; data = ( {{ secret_key = "s"; remote_ref = {{ key = "chimera/jwt-secret"; property = "secret"; }}; }} );
     kubernetes = {{ namespace = "chimera"; name = "orphan-secret"; creation_policy = "orphan"; }}; }},
  {{ name = "files-only"; store = "demo"; data = ( {{ secret_key = "s"; remote_ref = {{ key = "chimera/jwt-secret"; property = "secret"; }}; }} );
     kubernetes = {{ namespace = "chimera"; name = "never-made"; creation_policy = "none"; }};
     files = ( {{ path = "{out}/files-only"; format = "raw"; key = "s"; }} ); }},
  {{ name = "theirs"; store = "demo"; data = ( {{ secret_key = "password"; remote_ref = {{ key = "chimera/redis-password"; property = "password"; }}; }} );
     kubernetes = {{ namespace = "chimera"; name = "foreign-secret"; }}; }},
  {{ name = "denied"; store = "demo"; data = ( {{ secret_key = "p"; remote_ref = {{ key = "chimera/redis-password"; property = "password"; }}; }} );
     kubernetes = {{ namespace = "restricted"; name = "r"; }}; }},
  {{ name = "no-namespace"; store = "demo"; data = ( {{ secret_key = "p"; remote_ref = {{ key = "chimera/redis-password"; property = "password"; }}; }} );
     kubernetes = {{ namespace = "chimera-typo"; name = "x"; }}; }},
  {{ name = "too-big"; store = "demo"; data = ( {{ secret_key = "a"; remote_ref = {{ key = "big/a"; }}; }}, {{ secret_key = "b"; remote_ref = {{ key = "big/b"; }}; }} );
     kubernetes = {{ namespace = "chimera"; name = "too-big"; }}; }},
  {{ name = "deleted-with-entry"; store = "demo"; data = ( {{ secret_key = "s"; remote_ref = {{ key = "chimera/jwt-secret"; property = "secret"; }}; }} );
     kubernetes = {{ namespace = "chimera"; name = "delete-me"; deletion_policy = "delete"; }}; }},
  {{ name = "kept-with-entry"; store = "demo"; data = ( {{ secret_key = "s"; remote_ref = {{ key = "chimera/jwt-secret"; property = "secret"; }}; }} );
     kubernetes = {{ namespace = "chimera"; name = "keep-me"; }}; }}"""
    kube.grant(USER, ["get", "list", "watch", "create", "patch", "delete"], ["secrets"], namespaces=["chimera-typo"])
    # The first creates meet an API server in trouble: retried with the daemon's backoff.
    kube.add_fault(path_glob="/api/v1/namespaces/chimera/secrets", method="POST", status=503, count=2)
    kube.add_fault(path_glob="/api/v1/namespaces/chimera/secrets", method="POST", status=429, count=1, retry_after=1)
    config(seed_secrets(extra))
    d.signal(signal.SIGHUP)
    check(d.wait_log("secret 'too-big': the secret's data is", timeout=15), "the new entries are synced")
    check(wait(lambda: all(kube.get_secret("chimera", n) for n in ("orphan-secret", "delete-me", "keep-me")), 15),
          "creates refused with 503 and 429 are retried until they succeed")
    check(kube.count(verb="create", resource="secrets", status=503) == 2 and
          kube.count(verb="create", resource="secrets", status=429) == 1, "the 503s and the 429 were met")
    time.sleep(1.0)
    text = d.output()
    merged = kube.secret_data("chimera", "app-config")
    check(merged == {"LOG_LEVEL": "debug", "REDIS_PASSWORD": "redis-s3cret"}, f"merge adds our key, keeps theirs ({merged})")
    check("app.kubernetes.io/managed-by" not in (kube.get_secret("chimera", "app-config")["metadata"].get("labels") or {}),
          "merge does not claim the Secret")
    check(kube.get_secret("chimera", "not-there") is None and
          "Secret chimera/not-there does not exist; creation_policy = \"merge\" only adds keys" in text,
          "merge never creates a Secret, and says so")
    check(kube.get_secret("chimera", "orphan-secret") is not None, "orphan creates its Secret")
    check(kube.get_secret("chimera", "never-made") is None and os.path.exists(f"{out}/files-only"),
          "creation_policy none: files only")
    check(kube.secret_data("chimera", "foreign-secret") == {"password": "theirs"} and
          "Secret chimera/foreign-secret exists and is not managed by secretsyncd" in text,
          "a foreign Secret of the same name is left alone, with a clear error")
    check('cannot list resource "secrets" in API group "" in the namespace "restricted"' in text,
          "RBAC denial names the verb, resource and namespace")
    check('namespaces "chimera-typo" not found' in text, "a missing namespace is named")
    check(kube.get_secret("chimera", "too-big") is None and "1228800 bytes, over the limit of 1048576" in text
          and kube.count(resource="secrets", name="too-big") == 0, "data over 1 MiB is refused before any request")
    check(kube.get_secret("chimera", "delete-me") is not None and kube.get_secret("chimera", "keep-me") is not None,
          "both deletion-policy Secrets exist")

    # entries leave the configuration: delete removes its Secret, retain and orphan keep theirs
    config(seed_secrets())
    d.signal(signal.SIGHUP)
    check(wait(lambda: kube.get_secret("chimera", "delete-me") is None, 10), "deletion_policy = delete removes the Secret")
    check(d.wait_log("deleted Kubernetes Secret chimera/delete-me"), "the deletion is logged")
    time.sleep(0.5)
    check(kube.get_secret("chimera", "keep-me") is not None and kube.get_secret("chimera", "orphan-secret") is not None,
          "retain and orphan keep theirs")
    check(kube.secret_data("chimera", "foreign-secret") == {"password": "theirs"}, "the foreign Secret is untouched")

    rc = d.stop()
    check(rc == 0, f"SIGTERM: exit 0 ({rc})")
    all_output += d.output()
    leaked = [v for v in VALUES + [TOKEN] if v in all_output]
    check(not leaked, f"no value or token in any output ({leaked})")
finally:
    if d and d.proc.poll() is None:
        d.stop()
    kube.stop()
    s.cleanup()
done()
