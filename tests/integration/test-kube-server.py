#!/usr/bin/env python3
"""The stand-in Kubernetes API server (kube_server.py) speaks the Kubernetes API: the real
kubectl works against it over HTTPS with the test CA, as a token user and a client-certificate
user, and prints what it prints against a real cluster: get, create, apply --server-side
with a field-manager conflict and --force-conflicts, patches, validation errors, rollout
restart, delete, get --watch, Forbidden and Unauthorized, create token. Then, when npm can
install it, the JavaScript client @kubernetes/client-node does CRUD, a watch and a Lease.

Exits 77 when kubectl or openssl is missing.
"""
import http.client
import json
import os
import re
import shutil
import ssl
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from lib import Scratch, check, done, skip  # noqa: E402

KUBECTL = os.environ.get("KUBECTL") or shutil.which("kubectl") or "/usr/bin/kubectl"
if not os.access(KUBECTL, os.X_OK):
    skip("kubectl is not installed (it proves the stand-in Kubernetes API speaks the real protocol)")

import rsa_jwt  # noqa: E402
import tls  # noqa: E402
from kube_server import WRITE_VERBS, KubeServer  # noqa: E402

if not tls.have_openssl():
    skip("the openssl command is not installed (needed to make test certificates)")

SA = "system:serviceaccount:kube-system:secretsyncd"
NODE_CACHE = os.environ.get("SECRETSYNCD_NODE_CACHE", "/var/cache/secretsyncd-tests/node")
CLIENT_NODE = "@kubernetes/client-node@1.4.0"     # 2.x needs an undici that needs Node.js 22

s = Scratch()
m = tls.make_all(s.p("tls"))
kube = KubeServer(tls_cert=m.server_cert, tls_key=m.server_key, client_ca=m.ca_cert)


def write_kubeconfig():
    users = {"admin": "token: admin-token", "sa": "token: sa-token-1", "bad": "token: not-a-token",
             "cert": "client-certificate: %s\n    client-key: %s" % (m.client_cert, m.client_key)}
    text = ["apiVersion: v1", "kind: Config", "clusters:", "- name: standin", "  cluster:",
            "    server: %s" % kube.url, "    certificate-authority: %s" % m.ca_cert, "users:"]
    for name, cred in users.items():
        text += ["- name: %s" % name, "  user:", "    " + cred]
    text.append("contexts:")
    for name in users:
        text += ["- name: %s" % name, "  context: {cluster: standin, user: %s, namespace: chimera}" % name]
    text.append("current-context: admin")
    path = s.p("kubeconfig")
    with open(path, "w") as f:
        f.write("\n".join(text) + "\n")
    os.chmod(path, 0o600)
    return path


ENV = dict(os.environ, HOME=s.path, KUBECONFIG=s.p("kubeconfig"), KUBECACHEDIR=s.p("kube-cache"))


def kubectl(*args, context="admin", stdin=None, timeout=20):
    r = subprocess.run([KUBECTL, "--context", context] + list(args), input=stdin, capture_output=True, text=True,
                       timeout=timeout, env=ENV)
    if r.returncode != 0:
        print("#   kubectl %s -> %d: %s" % (" ".join(args)[:80], r.returncode,
                                         r.stderr.strip()[:300].replace("\n", " | ")))
    return r


def manifest(obj):
    return json.dumps(obj)


def secret(name, string_data=None, data=None, type=None, labels=None):
    obj = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}}
    if labels:
        obj["metadata"]["labels"] = labels
    if string_data is not None:
        obj["stringData"] = string_data
    if data is not None:
        obj["data"] = data
    if type:
        obj["type"] = type
    return manifest(obj)


def managers(name, ns="chimera"):
    obj = kube.get_secret(ns, name) or {}
    return {(e["manager"], e["operation"]): e["fieldsV1"] for e in obj.get("metadata", {}).get("managedFields", [])}


def watch_lines(proc, want, timeout=8):
    """Lines of a background kubectl until one contains want (or the deadline)."""
    lines = []

    def reader():
        for line in proc.stdout:
            lines.append(line.rstrip("\n"))
    threading.Thread(target=reader, daemon=True).start()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not any(want in x for x in lines):
        time.sleep(0.05)
    return list(lines)


def test_discovery_and_namespaces():
    r = kubectl("version", "-o", "json")
    check(r.returncode == 0 and json.loads(r.stdout)["serverVersion"]["gitVersion"] == "v1.32.4",
          "kubectl version reads /version")
    r = kubectl("api-resources", "--no-headers")
    names = {line.split()[0] for line in r.stdout.splitlines() if line.strip()}
    check({"secrets", "namespaces", "leases", "deployments", "statefulsets", "daemonsets",
           "serviceaccounts"} <= names, "kubectl api-resources lists what /api and /apis describe")
    r = kubectl("create", "namespace", "chimera")
    check(r.returncode == 0 and kube.get_object("namespaces", "chimera") is not None,
          "kubectl create namespace (a protobuf body) creates it")
    check(kube.get_object("serviceaccounts", "default", "chimera") is not None,
          "a new namespace gets its default service account")
    r = kubectl("get", "ns")
    check(r.returncode == 0 and "chimera" in r.stdout and "Active" in r.stdout and "kube-system" in r.stdout,
          "kubectl get ns prints the Table the server sends")


def test_create_get_list():
    r = kubectl("create", "secret", "generic", "db", "--from-literal=password=pg-Pw1", "--from-literal=user=app")
    check(r.returncode == 0 and r.stdout.strip() == "secret/db created", "kubectl create secret generic")
    check(kube.secret_data("chimera", "db") == {"password": "pg-Pw1", "user": "app"},
          "the stand-in holds the created data")
    check(("kubectl-create", "Update") in managers("db"), "the create is recorded as an Update by kubectl-create")
    r = kubectl("create", "secret", "generic", "db", "--from-literal=password=x")
    check(r.returncode != 0 and 'failed to create secret secrets "db" already exists' in r.stderr,
          "a second create: AlreadyExists, as kubectl prints it")
    r = kubectl("create", "secret", "generic", "x", "-n", "nowhere", "--from-literal=a=b")
    check(r.returncode != 0 and 'namespaces "nowhere" not found' in r.stderr,
          "a create in a missing namespace: namespaces \"nowhere\" not found")
    r = kubectl("get", "secrets")
    rows = [line.split() for line in r.stdout.splitlines()]
    check(rows and rows[0][:3] == ["NAME", "TYPE", "DATA"] and ["db", "Opaque", "2"] == rows[1][:3],
          "kubectl get secrets prints NAME TYPE DATA AGE")
    r = kubectl("get", "secret", "db", "-o", "json")
    obj = json.loads(r.stdout) if r.returncode == 0 else {}
    meta = obj.get("metadata", {})
    check(obj.get("kind") == "Secret" and obj.get("data", {}).get("password") == "cGctUHcx"
          and meta.get("uid") and meta.get("resourceVersion") and meta.get("creationTimestamp"),
          "kubectl get -o json: kind, base64 data, uid, resourceVersion, creationTimestamp")
    kube.put_secret("chimera", "cache", {"password": "c"}, labels={"tier": "cache"})
    kube.put_secret("chimera", "front", {"password": "f"}, labels={"tier": "web", "public": "yes"})

    def names(*args):
        r = kubectl("get", "secrets", "-o", "name", *args)
        return sorted(x.split("/", 1)[1] for x in r.stdout.split())
    check(names("-l", "tier in (cache,db)") == ["cache"], "label selector: in")
    check(names("-l", "tier notin (cache),tier") == ["front"], "label selector: notin and exists")
    check(names("-l", "!public") == ["cache", "db"], "label selector: does not exist")
    check(names("-l", "tier!=web") == ["cache", "db"], "label selector: !=")
    check(names("-l", "tier==web,public=yes") == ["front"], "label selector: == and =")
    check(names("--field-selector", "metadata.name=cache") == ["cache"], "field selector metadata.name")
    r = kubectl("get", "secrets", "--chunk-size=1", "-o", "name")
    check(r.returncode == 0 and len(r.stdout.split()) == 3, "a list in chunks of one (limit and continue)")


def test_server_side_apply():
    r = kubectl("apply", "--server-side", "-f", "-", stdin=secret("app", {"password": "one", "user": "bob"},
                                                                    labels={"app": "x"}))
    check(r.returncode == 0 and "secret/app serverside-applied" in r.stdout, "kubectl apply --server-side creates")
    fields = managers("app").get(("kubectl", "Apply"), {})
    check(set(fields.get("f:data", {})) == {"f:password", "f:user"} and "f:app" in fields["f:metadata"]["f:labels"],
          "managedFields: kubectl (Apply) owns data.password, data.user, labels.app")
    r = kubectl("apply", "--server-side", "--field-manager=secretsyncd", "-f", "-",
                stdin=secret("app", {"password": "two"}))
    check(r.returncode != 0 and 'Apply failed with 1 conflict: conflict with "kubectl": .data.password' in r.stderr,
          "another manager changing an owned key: the API server's conflict message")
    check(kube.secret_data("app", "app") is None and kube.secret_data("chimera", "app")["password"] == "one",
          "nothing changed by the conflicting apply")
    r = kubectl("apply", "--server-side", "--field-manager=secretsyncd", "--force-conflicts", "-f", "-",
                stdin=secret("app", {"password": "two"}))
    check(r.returncode == 0 and kube.secret_data("chimera", "app")["password"] == "two",
          "--force-conflicts takes the key over")
    mf = managers("app")
    check(set(mf[("secretsyncd", "Apply")]["f:data"]) == {"f:password"}
          and set(mf[("kubectl", "Apply")]["f:data"]) == {"f:user"}, "ownership moved to secretsyncd")
    r = kubectl("apply", "--server-side", "-f", "-", stdin=secret("app", labels={"app": "x"}))
    check(r.returncode == 0 and kube.secret_data("chimera", "app") == {"password": "two"},
          "kubectl applying without data.user removes it (and leaves secretsyncd's key)")
    rv = kube.get_secret("chimera", "app")["metadata"]["resourceVersion"]
    r = kubectl("apply", "--server-side", "--field-manager=secretsyncd", "-f", "-",
                stdin=secret("app", {"password": "two"}))
    check(r.returncode == 0 and kube.get_secret("chimera", "app")["metadata"]["resourceVersion"] == rv,
          "an apply that changes nothing writes nothing (same resourceVersion)")
    kubectl("create", "secret", "generic", "upd", "--from-literal=password=a")
    r = kubectl("apply", "--server-side", "--field-manager=secretsyncd", "-f", "-",
                stdin=secret("upd", {"password": "b"}))
    check(r.returncode != 0 and 'conflict with "kubectl-create" using v1: .data.password' in r.stderr,
          "a conflict with an Update manager names its API version")
    r = kubectl("apply", "--server-side", "--field-manager=secretsyncd", "-f", "-",
                stdin=secret("upd", {"password": "a", "extra": "e"}))
    check(r.returncode == 0, "applying the same value is shared ownership, not a conflict")
    r = kubectl("apply", "--server-side", "--dry-run=server", "-f", "-", stdin=secret("dry", {"a": "b"}))
    check(r.returncode == 0 and kube.get_secret("chimera", "dry") is None, "--dry-run=server stores nothing")


def test_patch_update_validation():
    r = kubectl("patch", "secret", "db", "--type=merge", "-p", '{"stringData":{"password":"pg-Pw2"}}')
    check(r.returncode == 0 and kube.secret_data("chimera", "db")["password"] == "pg-Pw2", "a merge patch")
    r = kubectl("patch", "secret", "db", "--type=json", "-p", '[{"op":"remove","path":"/data/user"}]')
    check(r.returncode == 0 and "user" not in kube.secret_data("chimera", "db"), "a JSON patch")
    r = kubectl("patch", "secret", "db", "-p", '{"metadata":{"labels":{"tier":"db"}}}')
    check(r.returncode == 0 and kube.get_secret("chimera", "db")["metadata"]["labels"] == {"tier": "db"},
          "a strategic merge patch")
    stale = kube.get_secret("chimera", "db")
    kube.put_secret("chimera", "db", {"password": "pg-Pw3"}, labels={"tier": "db"})
    r = kubectl("replace", "-f", "-", stdin=manifest(stale))
    check(r.returncode != 0 and 'Operation cannot be fulfilled on secrets "db": the object has been modified; '
          'please apply your changes to the latest version and try again' in r.stderr,
          "an update with a stale resourceVersion: Conflict")
    r = kubectl("patch", "secret", "db", "-p", '{"type":"kubernetes.io/basic-auth"}')
    check(r.returncode != 0 and 'Secret "db" is invalid: type: Invalid value: "kubernetes.io/basic-auth": '
          'field is immutable' in r.stderr, "type is immutable (422)")
    big = "x" * (1024 * 1024)
    r = kubectl("apply", "--server-side", "-f", "-", stdin=secret("big", {"a": big}))
    check(r.returncode != 0 and 'Secret "big" is invalid: data: Too long: must have at most 1048576 bytes'
          in r.stderr and kube.get_secret("chimera", "big") is None, "over 1 MiB of data: 422, nothing stored")
    r = kubectl("apply", "--server-side", "-f", "-", stdin=secret("keys", {"bad key": "x"}))
    check(r.returncode != 0 and 'Secret "keys" is invalid: data[bad key]: Invalid value: "bad key": a valid '
          "config key must consist of alphanumeric characters, '-', '_' or '.'" in r.stderr, "an invalid key")
    r = kubectl("apply", "--server-side", "-f", "-", stdin=secret("Bad_Name", {"a": "b"}))
    check(r.returncode != 0 and 'Secret "Bad_Name" is invalid: metadata.name: Invalid value: "Bad_Name": a '
          "lowercase RFC 1123 subdomain" in r.stderr, "an invalid name")
    r = kubectl("apply", "--server-side", "-f", "-", stdin=secret("cert", {"ca.crt": "x"}, type="kubernetes.io/tls"))
    check(r.returncode != 0 and 'The Secret "cert" is invalid: \n* data[tls.crt]: Required value\n'
          '* data[tls.key]: Required value' in r.stderr, "kubernetes.io/tls needs tls.crt and tls.key (causes)")
    r = kubectl("apply", "--server-side", "-f", "-",
                stdin=secret("pull", {".dockerconfigjson": "{nope"}, type="kubernetes.io/dockerconfigjson"))
    check(r.returncode != 0 and 'data[.dockerconfigjson]: Invalid value: "<secret contents redacted>"' in r.stderr,
          ".dockerconfigjson must be JSON")
    r = kubectl("apply", "--server-side", "-f", "-", stdin=secret("b64", data={"a": "not base64!"}))
    check(r.returncode != 0 and "illegal base64 data at input byte" in r.stderr, "data must be base64 (400)")
    r = kubectl("create", "secret", "tls", "web-tls", "--cert", m.server_cert, "--key", m.server_key)
    check(r.returncode == 0 and kube.get_secret("chimera", "web-tls")["type"] == "kubernetes.io/tls",
          "kubectl create secret tls")


def test_rollout_restart():
    for kind in ("deployment", "statefulset", "daemonset"):
        kube.put_workload(kind, "chimera", "agent-" + kind[:3])
    r = kubectl("rollout", "restart", "deployment/agent-dep", "statefulset/agent-sta", "daemonset/agent-dae")
    check(r.returncode == 0 and "deployment.apps/agent-dep restarted" in r.stdout, "kubectl rollout restart")
    for kind in ("deployment", "statefulset", "daemonset"):
        got = kube.restarted_at(kind, "chimera", "agent-" + kind[:3])
        check(got and got["value"] and got["generation"] == 2,
              "%s: restartedAt annotation landed, generation 2" % kind)
    r = kubectl("rollout", "status", "deployment/agent-dep", "--timeout=5s")
    check(r.returncode == 0 and "successfully rolled out" in r.stdout, "kubectl rollout status")
    r = kubectl("get", "deployments")
    check("agent-dep" in r.stdout and "1/1" in r.stdout, "kubectl get deployments")


def test_watch_and_delete():
    started = kube.stats()["watches_started"]
    proc = subprocess.Popen([KUBECTL, "--context", "admin", "get", "secrets", "--watch", "--output-watch-events",
                             "-l", "app=w"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
    try:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and kube.stats()["watches_started"] == started:
            time.sleep(0.05)
        kube.put_secret("chimera", "watched", {"k": "1"}, labels={"app": "w"})
        kube.put_secret("chimera", "watched", {"k": "2"}, labels={"app": "w"})
        kube.put_secret("chimera", "unwatched", {"k": "1"})
        r = kubectl("delete", "secret", "watched")
        check(r.returncode == 0 and r.stdout.strip() == 'secret "watched" deleted', "kubectl delete")
        lines = watch_lines(proc, "DELETED")
    finally:
        proc.kill()
        proc.wait()
    events = [line.split()[:2] for line in lines if line.strip() and not line.startswith("EVENT")]
    check(events == [["ADDED", "watched"], ["MODIFIED", "watched"], ["DELETED", "watched"]],
          "kubectl get --watch saw ADDED, MODIFIED, DELETED of the labelled Secret only (%s)" % events)
    check(kube.get_secret("chimera", "watched") is None, "the Secret is gone")
    r = kubectl("delete", "secret", "watched")
    check(r.returncode != 0 and 'Error from server (NotFound): secrets "watched" not found' in r.stderr,
          "deleting it again: NotFound")
    old = int(kube.resource_version()["resourceVersion"])
    kube.put_secret("chimera", "later", {"k": "1"})
    kube.compact()
    r = kubectl("get", "--raw", "/api/v1/namespaces/chimera/secrets?watch=1&resourceVersion=%d&timeoutSeconds=2" % old)
    ev = json.loads(r.stdout.splitlines()[0]) if r.stdout.strip() else {}
    check(ev.get("type") == "ERROR" and ev["object"].get("code") == 410 and ev["object"].get("reason") == "Expired"
          and ev["object"]["message"].startswith("too old resource version: %d (" % old),
          "a watch from before the compacted history: ERROR event, 410 Expired")
    kube.set_bookmark_interval(0.2)
    rv = kube.resource_version()["resourceVersion"]
    r = kubectl("get", "--raw", "/api/v1/namespaces/chimera/secrets?watch=true&resourceVersion=%s"
                "&allowWatchBookmarks=true&timeoutSeconds=1" % rv)
    types = [json.loads(x)["type"] for x in r.stdout.splitlines() if x.strip()]
    check(r.returncode == 0 and "BOOKMARK" in types, "allowWatchBookmarks: BOOKMARK events; timeoutSeconds ends it")
    kube.set_bookmark_interval(60)


def test_auth():
    kube.add_user(SA, token="sa-token-1")
    kube.grant(SA, ["get", "list", "watch"], ["secrets"], namespaces=["chimera"])
    r = kubectl("get", "secrets", context="sa")
    check(r.returncode == 0 and "db" in r.stdout, "a token user with list on secrets in chimera")
    r = kubectl("patch", "secret", "db", "-p", '{"metadata":{"labels":{"x":"y"}}}', context="sa")
    check(r.returncode != 0 and 'Error from server (Forbidden): secrets "db" is forbidden: User "%s" cannot patch '
          'resource "secrets" in API group "" in the namespace "chimera"' % SA in r.stderr,
          "a denied patch: kubectl prints the API server's Forbidden message")
    r = kubectl("get", "secrets", "-n", "kube-system", context="sa")
    check(r.returncode != 0 and 'secrets is forbidden: User "%s" cannot list resource "secrets" in API group "" in '
          'the namespace "kube-system"' % SA in r.stderr, "a denied list in another namespace")
    r = kubectl("get", "leases", "-A", context="sa")
    check(r.returncode != 0 and 'cannot list resource "leases" in API group "coordination.k8s.io" at the cluster '
          'scope' in r.stderr, "a denied cluster-wide list")
    r = kubectl("auth", "can-i", "patch", "secrets", context="sa")
    check(r.stdout.strip() == "no", "kubectl auth can-i patch secrets: no")
    kube.grant(SA, ["patch"], ["secrets"], namespaces=["chimera"])
    r = kubectl("auth", "can-i", "patch", "secrets", context="sa")
    check(r.stdout.strip() == "yes", "after a grant: yes")
    r = kubectl("get", "secrets", context="bad")
    check(r.returncode != 0 and "error: You must be logged in to the server (Unauthorized)" in r.stderr,
          "an unknown token: 401 Unauthorized")
    kube.set_token(SA, "sa-token-2")
    r = kubectl("get", "secrets", context="sa")
    check(r.returncode != 0 and "(Unauthorized)" in r.stderr, "a rotated-away token no longer works")
    kube.set_token(SA, "sa-token-1")
    r = kubectl("get", "secrets", context="cert")
    check(r.returncode != 0 and 'User "%s" cannot list resource "secrets"' % m.client_cn in r.stderr,
          "a client certificate authenticates as its CN")
    kube.grant(m.client_cn, ["list"], ["secrets"], namespaces=["chimera"])
    r = kubectl("get", "secrets", context="cert")
    check(r.returncode == 0 and "db" in r.stdout, "the certificate user, once granted")
    r = kubectl("auth", "whoami", "-o", "json", context="sa")
    check(r.returncode == 0 and json.loads(r.stdout)["status"]["userInfo"]["username"] == SA, "kubectl auth whoami")


def test_token_request():
    kube.create_service_account("chimera", "external-secrets-sa")
    r = kubectl("create", "token", "external-secrets-sa", "--audience", "vault", "--duration", "20m")
    token = r.stdout.strip()
    rec = kube.token_info(token, audience="vault")
    check(r.returncode == 0 and rec and rec["valid"] and rec["audiences"] == ["vault"]
          and rec["expiration_seconds"] == 1200, "kubectl create token: a TokenRequest, recorded with its audience")
    check([t["token"] for t in kube.issued_tokens("chimera", "external-secrets-sa")] == [token],
          "issued_tokens lists it")
    r = kubectl("create", "token", "nosuch")
    check(r.returncode != 0 and 'serviceaccounts "nosuch" not found' in r.stderr, "a missing service account: 404")
    r = kubectl("create", "token", "external-secrets-sa", context="sa")
    check(r.returncode != 0 and 'serviceaccounts "external-secrets-sa" is forbidden: User "%s" cannot create '
          'resource "serviceaccounts/token" in API group "" in the namespace "chimera"' % SA in r.stderr,
          "TokenRequest without create on serviceaccounts/token: 403")
    r = kubectl("create", "token", "external-secrets-sa")
    r = kubectl("auth", "whoami", "--token", r.stdout.strip(), "-o", "json", context="bad")
    check(r.returncode == 0 and json.loads(r.stdout)["status"]["userInfo"]["username"]
          == "system:serviceaccount:chimera:external-secrets-sa", "a token for the API server's audience logs in")
    test_token_jwt()


def test_token_jwt():
    """The token is an RS256 JWT with the API server's claims, verifiable with the issuer's JWKS."""
    r = kubectl("create", "token", "external-secrets-sa", "-n", "chimera", "--audience", "sts.amazonaws.com",
                "--duration", "10m")
    token = r.stdout.strip()
    header, claims, signed, sig = rsa_jwt.decode(token)
    jwks = json.loads(kubectl("get", "--raw", "/openid/v1/jwks").stdout)
    disco = json.loads(kubectl("get", "--raw", "/.well-known/openid-configuration").stdout)
    key = jwks["keys"][0]
    pem = s.p("sa-pub.pem")
    with open(pem, "w") as f:
        f.write(kube.service_account_issuer()["public_key_pem"])
    pub = rsa_jwt.RsaPublicKey(pem)
    check(r.returncode == 0 and header == {"alg": "RS256", "kid": key["kid"]} and key["alg"] == "RS256"
          and rsa_jwt.b64url_decode(key["n"]) == pub.n.to_bytes(pub.size, "big")
          and disco["issuer"] == claims["iss"] and disco["jwks_uri"].endswith("/openid/v1/jwks"),
          "the token is RS256, signed with the key /openid/v1/jwks publishes")
    check(pub.verify(signed, sig) and not pub.verify(signed + b"x", sig), "its signature verifies")
    now = time.time()
    check(claims["aud"] == ["sts.amazonaws.com"] and claims["sub"] == "system:serviceaccount:chimera:external-secrets-sa"
          and claims["exp"] - claims["iat"] == 600 and claims["nbf"] == claims["iat"] and abs(claims["iat"] - now) < 30
          and claims["kubernetes.io"]["namespace"] == "chimera"
          and claims["kubernetes.io"]["serviceaccount"]["name"] == "external-secrets-sa"
          and claims["kubernetes.io"]["serviceaccount"]["uid"] and claims["jti"],
          "claims: iss, sub, aud, exp 10m after iat, nbf, jti, kubernetes.io namespace and service account")
    code, reply = api("POST", "/api/v1/namespaces/chimera/serviceaccounts/external-secrets-sa/token",
                      {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                       "spec": {"audiences": ["vault"], "expirationSeconds": 3600}})
    check(code == 201 and reply["kind"] == "TokenRequest" and reply["apiVersion"] == "authentication.k8s.io/v1"
          and reply["spec"]["audiences"] == ["vault"] and reply["spec"]["expirationSeconds"] == 3600
          and reply["status"]["token"].count(".") == 2 and reply["status"]["expirationTimestamp"].endswith("Z"),
          "a TokenRequest answer: kind, spec, status.token and status.expirationTimestamp")
    kube.set_token_lifetime(20)
    r = kubectl("create", "token", "external-secrets-sa", "--duration", "10m")
    c = rsa_jwt.decode(r.stdout.strip())[1]
    kube.set_token_lifetime(None)
    check(c["exp"] - c["iat"] == 20 and kube.issued_tokens("chimera", "external-secrets-sa")[-1]["requested_seconds"]
          == 600, "set_token_lifetime grants a shorter lifetime than asked for (recorded as asked)")


def test_faults_and_stats():
    kube.reset_stats()
    kube.add_fault(verb="list", resource="secrets", status=429, retry_after=1, count=1)
    t0 = time.monotonic()
    r = kubectl("get", "secrets", "-o", "name")
    statuses = [e["status"] for e in kube.requests(verb="list", resource="secrets")]
    check(r.returncode == 0 and statuses == [429, 200] and time.monotonic() - t0 >= 0.9,
          "429 with Retry-After: kubectl waits and retries (%s)" % statuses)
    kube.add_fault(path_glob="/api/v1/namespaces/chimera/secrets/db", method="GET", status=500)
    r = kubectl("get", "secret", "db")
    check(r.returncode != 0 and "Error from server (InternalError): Internal error occurred: injected fault"
          in r.stderr, "an injected 500")
    kube.down()
    r = kubectl("get", "secrets", timeout=30)
    check(r.returncode != 0 and "refused" in r.stderr, "down(): connections refused")
    kube.up()
    r = kubectl("get", "secret", "db", "-o", "name")
    check(r.returncode == 0 and r.stdout.strip() == "secret/db", "up(): back on the same port")
    kube.put_lease("kube-system", "secretsyncd", holder="node-1")
    r = kubectl("get", "leases", "-n", "kube-system")
    check(r.returncode == 0 and "node-1" in r.stdout, "kubectl get leases shows the holder")
    st = kube.stats()
    check(st["counts"].get("get secrets", 0) >= 2 and kube.count(verb=WRITE_VERBS, resource="secrets") == 0
          and all(e["user"] == "kubernetes-admin" for e in st["log"]), "stats: counts per verb and resource, users")


def api(method, path, body=None, ctype="application/json", token="admin-token"):
    """One raw HTTPS request: (status, parsed JSON or text)."""
    conn = http.client.HTTPSConnection("127.0.0.1", kube.port, timeout=10,
                                       context=ssl.create_default_context(cafile=m.ca_cert))
    data = body if isinstance(body, (bytes, str)) or body is None else json.dumps(body)
    conn.request(method, path, body=data, headers={"Authorization": "Bearer " + token, "Content-Type": ctype})
    resp = conn.getresponse()
    text = resp.read().decode()
    conn.close()
    try:
        return resp.status, json.loads(text)
    except ValueError:
        return resp.status, text


def test_raw_protocol():
    """What secretsyncd relies on beyond what kubectl shows."""
    base = "/api/v1/namespaces/chimera/secrets"
    rv = kube.resource_version()["resourceVersion"]
    conn = http.client.HTTPSConnection("127.0.0.1", kube.port, timeout=10,
                                       context=ssl.create_default_context(cafile=m.ca_cert))
    conn.request("GET", base + "?watch=1&labelSelector=app%%3Dt&resourceVersion=%s" % rv,
                 headers={"Authorization": "Bearer admin-token"})
    resp = conn.getresponse()
    check(resp.status == 200 and resp.getheader("Transfer-Encoding") == "chunked", "a watch is a chunked stream")
    kube.put_secret("chimera", "moving", {"k": "1"}, labels={"app": "t"})
    kube.put_secret("chimera", "moving", {"k": "1"}, labels={"app": "u"})
    kube.put_secret("chimera", "moving", {"k": "2"}, labels={"app": "t"})
    def readline():
        try:
            return resp.readline()
        except OSError as e:
            print("#   the watch stream: %s" % e)
            return None
    events = [json.loads(line) for line in (readline() for _ in range(3)) if line]
    check([e["type"] for e in events] == ["ADDED", "DELETED", "ADDED"] and events[2]["object"]["kind"] == "Secret"
          and int(events[2]["object"]["metadata"]["resourceVersion"]) > int(rv),
          "a watch with a label selector: leaving it is DELETED, coming back ADDED")
    check(kube.drop_watches()["dropped"] >= 1 and readline() == b"", "drop_watches() ends the stream")
    conn.close()
    status, st = api("PATCH", base + "/moving", {"data": {}}, "application/apply-patch+yaml")
    check(status == 400 and st["reason"] == "BadRequest" and "fieldManager" in st["message"],
          "an apply without fieldManager: 400")
    status, st = api("PATCH", base + "/moving?fieldManager=t", "data:\n  k: Mg==\n", "application/apply-patch+yaml")
    check(status == 400 and "JSON form" in st["message"], "an apply body in YAML (not JSON): 400 that says why")
    status, st = api("PATCH", base + "/moving", "{}", "text/plain")
    check(status == 415 and st["reason"] == "UnsupportedMediaType", "an unknown patch type: 415")
    kube.put_secret("chimera", "shared", {"a": "1", "b": "2"}, manager="kubectl", apply=True)
    status, st = api("PATCH", base + "/shared?fieldManager=secretsyncd",
                     secret("shared", data={"a": "Mw==", "b": "NA=="}), "application/apply-patch+yaml")
    check(status == 409 and st["message"] == 'Apply failed with 2 conflicts: conflicts with "kubectl":\n- .data.a\n'
          '- .data.b' and [c["field"] for c in st["details"]["causes"]] == [".data.a", ".data.b"],
          "two conflicts: the API server's message and causes")
    obj = kube.get_secret("chimera", "shared")
    writes = kube.stats()["writes"]
    status, same = api("PUT", base + "/shared", obj)
    check(status == 200 and same["metadata"]["resourceVersion"] == obj["metadata"]["resourceVersion"]
          and kube.stats()["writes"] == writes, "an update that changes nothing is not a write")
    lease = kube.put_lease("kube-system", "le", holder="a")
    path = "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/le"
    lease["spec"]["holderIdentity"] = "b"
    status, _ = api("PUT", path, lease)
    status2, st = api("PUT", path, lease)
    check(status == 200 and status2 == 409 and st["message"] == 'Operation cannot be fulfilled on '
          'leases.coordination.k8s.io "le": the object has been modified; please apply your changes to the '
          'latest version and try again' and st["details"] == {"name": "le", "group": "coordination.k8s.io",
                                                              "kind": "leases"},
          "a Lease update from a stale resourceVersion: 409 Conflict")


NODE_SCRIPT = r"""
const k8s = await import(process.argv[2]);
const kc = new k8s.KubeConfig();
kc.loadFromFile(process.env.KUBECONFIG);
kc.setCurrentContext('admin');
const core = kc.makeApiClient(k8s.CoreV1Api);
const coord = kc.makeApiClient(k8s.CoordinationV1Api);
const ns = 'chimera', name = 'node-secret', out = {};
const reason = (e) => { try { return [e.code, JSON.parse(e.body).reason]; } catch (x) { return [e.code, String(e)]; } };
await core.createNamespacedSecret({namespace: ns, body: {metadata: {name, labels: {app: 'node'}}, stringData: {k: 'v1'}}});
try { await core.createNamespacedSecret({namespace: ns, body: {metadata: {name}}}); } catch (e) { out.exists = reason(e); }
const s = await core.readNamespacedSecret({name, namespace: ns});
out.read = Buffer.from(s.data.k, 'base64').toString();
const list = await core.listNamespacedSecret({namespace: ns, labelSelector: 'app in (node,other)'});
out.list = list.items.map((i) => i.metadata.name);
const stale = structuredClone(s); stale.metadata.resourceVersion = '1';
try { await core.replaceNamespacedSecret({name, namespace: ns, body: stale}); } catch (e) { out.stale = reason(e); }
await core.patchNamespacedSecret({name, namespace: ns, body: {stringData: {k: 'v2'}}},
    k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch));
out.patched = Buffer.from((await core.readNamespacedSecret({name, namespace: ns})).data.k, 'base64').toString();
const events = [];
const req = await new k8s.Watch(kc).watch(`/api/v1/namespaces/${ns}/secrets`,
    {labelSelector: 'app=node', resourceVersion: list.metadata.resourceVersion},
    (type, obj) => events.push(type + ' ' + obj.metadata.name), () => {});
await core.deleteNamespacedSecret({name, namespace: ns});
for (let i = 0; i < 50 && events.length < 2; i++) await new Promise((r) => setTimeout(r, 50));
req.abort();
out.watch = events;
const now = new Date();
const lease = await coord.createNamespacedLease({namespace: 'kube-system', body: {metadata: {name: 'node-lease'},
    spec: {holderIdentity: 'a', leaseDurationSeconds: 15, acquireTime: now, renewTime: now, leaseTransitions: 0}}});
lease.spec.holderIdentity = 'b';
await coord.replaceNamespacedLease({name: 'node-lease', namespace: 'kube-system', body: lease});
try { await coord.replaceNamespacedLease({name: 'node-lease', namespace: 'kube-system', body: lease}); }
catch (e) { out.lease = reason(e); }
try { await core.createNamespacedSecret({namespace: 'nowhere', body: {metadata: {name: 'x'}}}); }
catch (e) { out.nons = reason(e); }
console.log(JSON.stringify(out));
"""


def node_client():
    """The path of @kubernetes/client-node's entry point, installing it into NODE_CACHE; or why not."""
    if not shutil.which("node") or not shutil.which("npm"):
        return None, "node or npm is not installed"
    entry = os.path.join(NODE_CACHE, "node_modules", "@kubernetes", "client-node", "dist", "index.js")
    if not os.path.exists(entry):
        try:
            os.makedirs(NODE_CACHE, exist_ok=True)
            r = subprocess.run(["npm", "install", "--prefix", NODE_CACHE, "--no-audit", "--no-fund",
                                "--loglevel=error", CLIENT_NODE], capture_output=True, text=True, timeout=120)
        except (OSError, subprocess.TimeoutExpired) as e:
            return None, "npm install %s into %s failed: %s" % (CLIENT_NODE, NODE_CACHE, e)
        if r.returncode != 0 or not os.path.exists(entry):
            return None, "npm install %s into %s failed: %s" % (CLIENT_NODE, NODE_CACHE, r.stderr.strip()[-200:])
    return entry, None


def test_client_node():
    entry, why = node_client()
    if entry is None:
        print("# SKIP the @kubernetes/client-node part: %s" % why)
        return
    script = s.p("client.mjs")
    with open(script, "w") as f:
        f.write(NODE_SCRIPT)
    r = subprocess.run(["node", script, "file://" + entry], capture_output=True, text=True, timeout=60, env=ENV)
    out = json.loads(r.stdout) if r.returncode == 0 and r.stdout.strip() else {}
    if r.returncode != 0:
        print("#   node: %s" % r.stderr.strip()[-500:])
    check(out.get("exists") == [409, "AlreadyExists"] and out.get("read") == "v1" and out.get("list") == [
          "node-secret"], "client-node: create, AlreadyExists, read, list with a set-based selector")
    check(out.get("stale") == [409, "Conflict"] and out.get("patched") == "v2",
          "client-node: stale replace conflicts, merge patch applies")
    check(out.get("watch") == ["MODIFIED node-secret", "DELETED node-secret"],
          "client-node: a watch from the list's resourceVersion (%s)" % out.get("watch"))
    lease = kube.get_lease("kube-system", "node-lease") or {}
    renew = (lease.get("spec") or {}).get("renewTime", "")
    check(out.get("lease") == [409, "Conflict"] and lease["spec"]["holderIdentity"] == "b"
          and re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", renew),
          "client-node: Lease create and replace, MicroTime renewTime %s, stale replace conflicts" % renew)
    check(out.get("nons") == [404, "NotFound"], "client-node: a missing namespace is 404")


kube.start()
try:
    write_kubeconfig()
    test_discovery_and_namespaces()
    test_create_get_list()
    test_server_side_apply()
    test_patch_update_validation()
    test_rollout_restart()
    test_watch_and_delete()
    test_auth()
    test_token_request()
    test_faults_and_stats()
    test_raw_protocol()
    test_client_node()
finally:
    kube.stop()
    s.cleanup()
done()
