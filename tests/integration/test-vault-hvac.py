#!/usr/bin/env python3
"""The stand-in Vault (vault_server.py) speaks Vault's protocol: hvac, the Python Vault client,
works against it over HTTPS with the test CA, for every request secretsyncd makes.

hvac is Debian's python3-hvac, installed for /usr/bin/python3; when the interpreter running
this file cannot import it, the file runs itself again with /usr/bin/python3, and skips
(exit 77) when that cannot either.
"""
import base64
import http.client
import json
import os
import select
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from lib import check, done, skip  # noqa: E402

SYSTEM_PYTHON = "/usr/bin/python3"

try:
    import hvac
    import hvac.exceptions
    import requests
except ImportError:
    if os.environ.get("SECRETSYNCD_HVAC_REEXEC") != "1" and os.access(SYSTEM_PYTHON, os.X_OK) and \
            os.path.realpath(sys.executable) != os.path.realpath(SYSTEM_PYTHON):
        os.environ["SECRETSYNCD_HVAC_REEXEC"] = "1"
        sys.stdout.flush()
        os.execv(SYSTEM_PYTHON, [SYSTEM_PYTHON, os.path.abspath(__file__)] + sys.argv[1:])
    tried = sorted({sys.executable, SYSTEM_PYTHON})
    skip("hvac is not importable by %s (apt-get install python3-hvac)" % " or ".join(tried))

import tls  # noqa: E402
from vault_server import VaultServer  # noqa: E402

if not tls.have_openssl():
    skip("the openssl command is not installed")

E = hvac.exceptions


def raises(fn, exc):
    """The exception fn() raises if it is an exc, else None."""
    try:
        fn()
    except exc as e:
        return e
    except Exception as e:  # the wrong kind
        print("#   got %s: %s" % (type(e).__name__, e))
        return None
    print("#   no exception")
    return None


def make_jwt(claims):
    def b64(obj):
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()
    return "%s.%s.%s" % (b64({"alg": "RS256", "kid": "test"}), b64(claims), "c2lnbmF0dXJl")


def main():
    scratch = tempfile.mkdtemp(prefix="secretsyncd-vault-")
    try:
        run(scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    done()


def run(scratch):
    m = tls.make_all(os.path.join(scratch, "tls"))
    check(all(os.stat(k).st_mode & 0o777 == 0o600 for k in (m.ca_key, m.server_key, m.client_key,
                                                               m.other_ca_key, m.other_client_key)),
          "tls.py: private keys are 0600")
    # The listener asks for client certificates and accepts both CAs' (Vault checks client
    # certificates in the cert auth method, not in the TLS handshake).
    vault = VaultServer(tls_cert=m.server_cert, tls_key=m.server_key, client_ca=[m.ca_cert, m.other_ca_cert],
                        log=os.path.join(scratch, "vault.log")).start()
    try:
        scenarios(vault, m, scratch)
    finally:
        vault.stop()
    plain_http(scratch)
    command_line(m, scratch)


def client(vault, m, token="", **kw):
    return hvac.Client(url=vault.url, token=token, verify=m.ca_cert, **kw)


def scenarios(vault, m, scratch):
    root = client(vault, m, "root")
    check(root.is_authenticated(), "root token: is_authenticated (lookup-self)")

    # ---- KV v2
    vault.put_secret("chimera/db", {"password": "pw-1"})
    w = root.secrets.kv.v2.create_or_update_secret("chimera/db", secret={"password": "pw-2"}, mount_point="secret")
    check(w["data"]["version"] == 2 and w["data"]["destroyed"] is False and w["data"]["deletion_time"] == "",
          "kv v2 write (rotate) over the API answers the new version's metadata")
    r = root.secrets.kv.v2.read_secret_version("chimera/db")
    check(r["data"]["data"] == {"password": "pw-2"} and r["data"]["metadata"]["version"] == 2,
          "kv v2 read_secret_version: latest")
    check(set(r) >= {"request_id", "lease_id", "renewable", "lease_duration", "data", "wrap_info", "warnings",
                     "auth"} and r["lease_duration"] == 0 and r["auth"] is None and r["wrap_info"] is None,
          "kv v2 read: Vault's response envelope")
    check(set(r["data"]["metadata"]) == {"created_time", "custom_metadata", "deletion_time", "destroyed",
                                         "version"}, "kv v2 read: metadata fields")
    r1 = root.secrets.kv.v2.read_secret_version("chimera/db", version=1)
    check(r1["data"]["data"] == {"password": "pw-1"} and r1["data"]["metadata"]["version"] == 1,
          "kv v2 read_secret_version: version=1")
    e = raises(lambda: root.secrets.kv.v2.read_secret_version("chimera/missing"), E.InvalidPath)
    check(e is not None and e.errors == [], "kv v2 missing secret: 404 InvalidPath, errors == []")
    e = raises(lambda: root.secrets.kv.v2.read_secret_version("chimera/db", version=9), E.InvalidPath)
    check(e is not None, "kv v2 missing version: InvalidPath")
    vault.delete_secret("chimera/db", versions=[1])
    e = raises(lambda: root.secrets.kv.v2.read_secret_version("chimera/db", version=1), E.InvalidPath)
    check(e is not None, "kv v2 deleted version: InvalidPath")
    raw = requests.get(vault.url + "/v1/secret/data/chimera/db?version=1", headers={"X-Vault-Token": "root"},
                       verify=m.ca_cert)
    body = raw.json()
    check(raw.status_code == 404 and "errors" not in body and body["data"]["data"] is None
          and body["data"]["metadata"]["deletion_time"] != "" and body["data"]["metadata"]["version"] == 1,
          "kv v2 deleted version: 404 with the version's metadata, as Vault answers")
    vault.destroy_secret("chimera/db", versions=[1])
    raw = requests.get(vault.url + "/v1/secret/data/chimera/db?version=1", headers={"X-Vault-Token": "root"},
                       verify=m.ca_cert)
    check(raw.status_code == 404 and raw.json()["data"]["metadata"]["destroyed"] is True,
          "kv v2 destroyed version: 404 with destroyed metadata")
    meta = root.secrets.kv.v2.read_secret_metadata("chimera/db")
    check(meta["data"]["current_version"] == 2 and set(meta["data"]["versions"]) == {"1", "2"},
          "kv v2 read_secret_metadata")
    lst = root.secrets.kv.v2.list_secrets("chimera")
    check("db" in lst["data"]["keys"], "kv v2 list_secrets (LIST metadata/)")
    raw = requests.get(vault.url + "/v1/secret/chimera/db", headers={"X-Vault-Token": "root"}, verify=m.ca_cert)
    check(raw.status_code == 404 and "Invalid path for a versioned K/V" in raw.json()["warnings"][0],
          "kv v2 read without data/: 404 with Vault's warning")

    # ---- KV v1
    vault.put_secret("legacy/app", {"user": "u", "password": "p"}, mount="kv1")
    r = root.secrets.kv.v1.read_secret("legacy/app", mount_point="kv1")
    check(r["data"] == {"user": "u", "password": "p"} and r["lease_duration"] == 2764800,
          "kv v1 read_secret (lease_duration 2764800)")
    root.secrets.kv.v1.create_or_update_secret("legacy/other", {"k": "v"}, mount_point="kv1")
    check(vault.get_secret("legacy/other", mount="kv1")["data"] == {"k": "v"}, "kv v1 write over the API")
    e = raises(lambda: root.secrets.kv.v1.read_secret("legacy/none", mount_point="kv1"), E.InvalidPath)
    check(e is not None and e.errors == [], "kv v1 missing secret: InvalidPath, errors == []")

    # ---- policies, approle
    vault.set_policy("chimera-read", {"secret/data/chimera/*": ["read"], "kv1/legacy/*": ["read"]})
    vault.put_secret("other/x", {"a": "b"})
    vault.add_approle("app", role_id="role-1", secret_id="secret-1", policies=["chimera-read"], ttl=600,
                      max_ttl=1200)
    ac = client(vault, m)
    a = ac.auth.approle.login(role_id="role-1", secret_id="secret-1")
    auth = a["auth"]
    check(auth["client_token"] and ac.token == auth["client_token"] and auth["lease_duration"] == 600
          and auth["renewable"] is True and auth["policies"] == ["chimera-read", "default"]
          and auth["token_policies"] == auth["policies"] and auth["metadata"] == {"role_name": "app"}
          and a["lease_duration"] == 0 and a["data"] is None,
          "approle login: auth block (token, ttl, policies + default, metadata)")
    r = ac.secrets.kv.v2.read_secret_version("chimera/db")
    check(r["data"]["data"] == {"password": "pw-2"}, "approle token reads within its policy")
    e = raises(lambda: ac.secrets.kv.v2.read_secret_version("other/x"), E.Forbidden)
    check(e is not None and e.errors == ["permission denied"], "read outside the policy: Forbidden (403)")
    e = raises(lambda: client(vault, m).auth.approle.login(role_id="role-1", secret_id="wrong"), E.InvalidRequest)
    check(e is not None and e.errors == ["invalid role or secret ID"], "approle wrong secret_id: 400 "
          "invalid role or secret ID")
    e = raises(lambda: client(vault, m).auth.approle.login(role_id="nope", secret_id="secret-1"), E.InvalidRequest)
    check(e is not None and e.errors == ["invalid role or secret ID"], "approle unknown role_id: 400")
    e = raises(lambda: client(vault, m).adapter.post("/v1/auth/approle/login", json={"role_id": "role-1"}),
               E.InvalidRequest)
    check(e is not None and e.errors == ["missing secret_id"], "approle without secret_id: 400 missing secret_id")
    vault.add_approle("app2", role_id="role-2", secret_id="s2", policies=["chimera-read"], mount="ops-approle")
    check(client(vault, m).auth.approle.login("role-2", "s2", mount_point="ops-approle")["auth"]["client_token"],
          "approle at a custom mount path")

    # ---- kubernetes
    sa_jwt = make_jwt({"iss": "kubernetes/serviceaccount", "kubernetes.io/serviceaccount/namespace": "chimera",
                       "kubernetes.io/serviceaccount/service-account.name": "secretsyncd",
                       "kubernetes.io/serviceaccount/service-account.uid": "uid-1",
                       "sub": "system:serviceaccount:chimera:secretsyncd"})
    other_sa = make_jwt({"kubernetes.io": {"namespace": "chimera", "serviceaccount": {"name": "intruder",
                                                                                       "uid": "uid-2"}}})
    vault.add_kubernetes_role("chimera-role", jwts=[sa_jwt, other_sa], bound_service_account_names=["secretsyncd"],
                              bound_service_account_namespaces=["chimera"], policies=["chimera-read"], ttl=300)
    kc = client(vault, m)
    k = hvac.api.auth_methods.Kubernetes(kc.adapter).login(role="chimera-role", jwt=sa_jwt)
    check(k["auth"]["client_token"] and k["auth"]["metadata"]["service_account_name"] == "secretsyncd"
          and k["auth"]["metadata"]["service_account_namespace"] == "chimera" and k["auth"]["lease_duration"] == 300,
          "kubernetes login (hvac.api.auth_methods.Kubernetes.login)")
    check(kc.secrets.kv.v2.read_secret_version("chimera/db")["data"]["data"]["password"] == "pw-2",
          "kubernetes token reads the secret")
    kube = hvac.api.auth_methods.Kubernetes(client(vault, m).adapter)
    unknown_jwt = make_jwt({"kubernetes.io/serviceaccount/namespace": "chimera",
                            "kubernetes.io/serviceaccount/service-account.name": "secretsyncd", "jti": "other"})
    e = raises(lambda: kube.login(role="chimera-role", jwt=unknown_jwt), E.Forbidden)
    check(e is not None and e.errors == ["permission denied"], "kubernetes unknown JWT: 403 permission denied")
    e = raises(lambda: kube.login(role="chimera-role", jwt=other_sa), E.Forbidden)
    check(e is not None and e.errors == ["service account name not authorized"],
          "kubernetes JWT of another service account: 403 service account name not authorized")
    e = raises(lambda: kube.login(role="no-role", jwt=sa_jwt), E.InvalidRequest)
    check(e is not None and e.errors == ['invalid role name "no-role"'], "kubernetes unknown role: 400")

    # ---- jwt
    good_jwt = make_jwt({"sub": "ci-runner", "iat": int(time.time()), "exp": int(time.time()) + 600})
    old_jwt = make_jwt({"sub": "ci-runner", "iat": int(time.time()) - 7200, "exp": int(time.time()) - 3600})
    vault.add_jwt_role("ci", jwts=[good_jwt, old_jwt], policies=["chimera-read"], ttl=120)
    jc = client(vault, m)
    j = jc.auth.jwt.jwt_login(role="ci", jwt=good_jwt)
    check(j["auth"]["client_token"] and jc.token == j["auth"]["client_token"]
          and j["auth"]["metadata"] == {"role": "ci"}, "jwt login (auth.jwt.jwt_login)")
    e = raises(lambda: client(vault, m).auth.jwt.jwt_login(role="ci", jwt=make_jwt({"sub": "forged"})),
               E.InvalidRequest)
    check(e is not None and "no known key" in e.errors[0], "jwt with an unknown signature: 400")
    e = raises(lambda: client(vault, m).auth.jwt.jwt_login(role="ci", jwt=old_jwt), E.InvalidRequest)
    check(e is not None and "token is expired" in e.errors[0], "expired jwt: 400 ... token is expired (exp)")
    e = raises(lambda: client(vault, m).auth.jwt.jwt_login(role="nope", jwt=good_jwt), E.InvalidRequest)
    check(e is not None and e.errors == ['role "nope" could not be found'], "jwt unknown role: 400")

    # ---- cert
    vault.add_cert_role("app-cert", fingerprint=tls.fingerprint_sha256(m.client_cert), policies=["chimera-read"],
                        ttl=900)
    vault.add_cert_role("by-ca", certificate=m.ca_cert, common_name="secretsyncd-*", policies=["chimera-read"])
    cc = client(vault, m, cert=(m.client_cert, m.client_key))
    c = cc.auth.cert.login(name="app-cert")
    check(c["auth"]["client_token"] and c["auth"]["metadata"]["cert_name"] == "app-cert"
          and c["auth"]["metadata"]["common_name"] == m.client_cn and c["auth"]["lease_duration"] == 900,
          "cert login with the client certificate (hvac cert=(cert, key)), role by fingerprint")
    check(cc.secrets.kv.v2.read_secret_version("chimera/db")["data"]["data"]["password"] == "pw-2",
          "cert token reads the secret")
    c = client(vault, m, cert=(m.client_cert, m.client_key)).auth.cert.login(name="by-ca")
    check(c["auth"]["metadata"]["cert_name"] == "by-ca", "cert login, role by issuing CA and CN glob")
    e = raises(lambda: client(vault, m, cert=(m.other_client_cert, m.other_client_key)).auth.cert.login(),
               E.InvalidRequest)
    check(e is not None and e.errors == ["invalid certificate or no client certificate supplied"],
          "cert login with another CA's certificate: 400")
    nocert = raises(lambda: client(vault, m).adapter.post("/v1/auth/cert/login", json={}), E.InvalidRequest)
    check(nocert is not None and nocert.errors == ["client certificate must be supplied"],
          "cert login without a client certificate: 400")

    # ---- lookup-self, renew-self
    vault.add_approle("short", role_id="role-s", secret_id="sec-s", policies=["chimera-read"], ttl=20, max_ttl=60)
    sc = client(vault, m)
    sc.auth.approle.login("role-s", "sec-s")
    look = sc.auth.token.lookup_self()["data"]
    expected = {"accessor", "creation_time", "creation_ttl", "display_name", "entity_id", "expire_time",
                "explicit_max_ttl", "id", "issue_time", "meta", "num_uses", "orphan", "path", "policies",
                "renewable", "ttl", "type"}
    check(set(look) == expected and look["id"] == sc.token and 18 <= look["ttl"] <= 20
          and look["creation_ttl"] == 20 and look["type"] == "service" and look["renewable"] is True
          and look["expire_time"].endswith("Z") and look["path"] == "auth/approle/login",
          "lookup_self: Vault's fields, ttl counts down")
    rn = sc.auth.token.renew_self(increment="30s")
    check(29 <= rn["auth"]["lease_duration"] <= 30 and rn["auth"]["client_token"] == sc.token
          and set(rn["auth"]) >= {"client_token", "accessor", "policies", "token_policies", "metadata",
                                  "lease_duration", "renewable", "entity_id", "token_type", "orphan"},
          "renew_self(increment=30s): auth block, lease_duration 30")
    rn = sc.auth.token.renew_self(increment="1h")
    first = rn["auth"]["lease_duration"]
    check(55 <= first <= 60 and rn["warnings"] and "capped" in rn["warnings"][0],
          "renew_self beyond max_ttl: capped at the max (with Vault's warning)")
    time.sleep(1.1)
    rn = sc.auth.token.renew_self(increment="1h")
    check(rn["auth"]["lease_duration"] < first, "renew_self at the cap: ttl stops growing")
    check(sc.auth.token.lookup_self()["data"]["ttl"] <= first, "lookup_self after renewals: ttl within the cap")
    nr = vault.create_token(policies=["chimera-read"], ttl=60, renewable=False)["id"]
    e = raises(lambda: client(vault, m, nr).auth.token.renew_self(), E.InvalidRequest)
    check(e is not None and e.errors == ["lease is not renewable"], "renew_self of a non-renewable token: 400")
    e = raises(lambda: client(vault, m, "root").auth.token.renew_self(), E.InvalidRequest)
    check(e is not None and e.errors == ["lease is not renewable"], "renew_self of the root token: 400")
    vault.expire_token(sc.token)
    e = raises(lambda: sc.auth.token.lookup_self(), E.Forbidden)
    check(e is not None and e.errors == ["permission denied"], "expired token: lookup_self 403 permission denied")
    e = raises(lambda: sc.secrets.kv.v2.read_secret_version("chimera/db"), E.Forbidden)
    check(e is not None, "expired token: read 403")
    e = raises(lambda: client(vault, m, "no-such-token").auth.token.lookup_self(), E.Forbidden)
    check(e is not None and e.errors == ["permission denied"], "unknown token: 403 permission denied")
    vault.revoke_token(ac.token)
    check(raises(lambda: ac.secrets.kv.v2.read_secret_version("chimera/db"), E.Forbidden) is not None,
          "revoked token: 403")
    check(not client(vault, m, "no-such-token").is_authenticated(), "is_authenticated() false for a bad token")
    capped = vault.create_token(policies=["chimera-read"], ttl=10, explicit_max_ttl=15)["id"]
    rn = client(vault, m, capped).auth.token.renew_self(increment=3600)
    check(rn["auth"]["lease_duration"] <= 15, "explicit_max_ttl caps renewal too")
    st = vault.stats()
    check(st["renewals"] >= 6 and st["lookups"] >= 4 and st["logins"].get("approle", 0) >= 4
          and st["login_failures"].get("approle", 0) >= 3, "stats: renewals, lookups, logins, login_failures")

    # ---- sealed, health
    vault.seal()
    e = raises(lambda: root.secrets.kv.v2.read_secret_version("chimera/db"), E.VaultDown)
    check(e is not None and e.errors == ["Vault is sealed"], "sealed: read raises VaultDown (503 Vault is sealed)")
    e = raises(lambda: client(vault, m).auth.approle.login("role-1", "secret-1"), E.VaultDown)
    check(e is not None, "sealed: login 503")
    check(root.sys.is_sealed() is True, "sealed: sys/seal-status says sealed")
    h = root.sys.read_health_status(method="GET")
    check(getattr(h, "status_code", None) == 503 and h.json()["sealed"] is True, "sealed: sys/health 503")
    vault.unseal()
    h = root.sys.read_health_status(method="GET")
    check(isinstance(h, dict) and h["sealed"] is False and h["initialized"] is True, "unsealed: sys/health 200")
    vault.set_standby(True)
    h = root.sys.read_health_status(method="GET")
    check(getattr(h, "status_code", None) == 429, "standby: sys/health 429")
    h = root.sys.read_health_status(method="GET", standby_ok=True)
    check(isinstance(h, dict), "standby with standbyok=true: 200")
    vault.set_standby(False)
    check(root.sys.read_health_status(method="HEAD").status_code == 200, "HEAD sys/health")

    # ---- namespaces
    vault.put_secret("chimera/ns-secret", {"v": "in-team-a"}, namespace="team-a")
    nsc = client(vault, m, "root", namespace="team-a")
    check(nsc.secrets.kv.v2.read_secret_version("chimera/ns-secret")["data"]["data"] == {"v": "in-team-a"},
          "namespace: hvac.Client(namespace=...) reads the namespaced secret")
    check(raises(lambda: root.secrets.kv.v2.read_secret_version("chimera/ns-secret"), E.InvalidPath) is not None,
          "namespace: without X-Vault-Namespace the secret is not there (404)")
    check(raises(lambda: nsc.secrets.kv.v2.read_secret_version("chimera/db"), E.InvalidPath) is not None,
          "namespace: a root-namespace secret is not in team-a (404)")
    vault.set_policy("team-read", {"secret/data/chimera/*": ["read"]})
    nstok = vault.create_token(policies=["team-read"], ttl=300, namespace="team-a")["id"]
    check(client(vault, m, nstok, namespace="team-a").secrets.kv.v2.read_secret_version("chimera/ns-secret")
          ["data"]["data"]["v"] == "in-team-a", "namespace token reads in its namespace")
    check(raises(lambda: client(vault, m, nstok).secrets.kv.v2.read_secret_version("chimera/db"), E.Forbidden)
          is not None, "namespace token outside its namespace: 403")
    vault.add_approle("ns-app", role_id="ns-role", secret_id="ns-sec", policies=["team-read"], namespace="team-a")
    nl = client(vault, m, namespace="team-a")
    nl.auth.approle.login("ns-role", "ns-sec")
    check(nl.secrets.kv.v2.read_secret_version("chimera/ns-secret")["data"]["data"]["v"] == "in-team-a",
          "namespace: approle login in the namespace")
    check("team-a" in vault.stats()["namespaces_seen"], "stats: namespaces_seen")

    # ---- faults
    vault.add_fault("secret/data/chimera/*", status=500, count=1)
    e = raises(lambda: root.secrets.kv.v2.read_secret_version("chimera/db"), E.InternalServerError)
    check(e is not None and e.errors == ["internal error"], "fault 500 once: InternalServerError")
    check(root.secrets.kv.v2.read_secret_version("chimera/db")["data"]["metadata"]["version"] == 2,
          "after a count=1 fault the next read succeeds")
    vault.add_fault("secret/data/chimera/db", status=429, count=2, headers={"Retry-After": "1"})
    e1 = raises(lambda: root.secrets.kv.v2.read_secret_version("chimera/db"), E.RateLimitExceeded)
    e2 = raises(lambda: root.secrets.kv.v2.read_secret_version("chimera/db"), E.RateLimitExceeded)
    check(e1 is not None and e2 is not None and root.secrets.kv.v2.read_secret_version("chimera/db"),
          "fault 429 count=2: RateLimitExceeded twice, then success")
    vault.add_fault("/v1/secret/data/chimera/db", status=503, count=1, method="GET")
    check(raises(lambda: root.secrets.kv.v2.read_secret_version("chimera/db"), E.VaultDown) is not None,
          "fault with a full-path glob and method: 503")
    vault.add_fault("secret/data/chimera/db", status=403, count=1, body={"errors": ["custom"]})
    e = raises(lambda: root.secrets.kv.v2.read_secret_version("chimera/db"), E.Forbidden)
    check(e is not None and e.errors == ["custom"], "fault with a custom body")
    vault.add_fault("secret/data/chimera/db", delay_ms=300, count=1)
    t0 = time.monotonic()
    root.secrets.kv.v2.read_secret_version("chimera/db")
    check(time.monotonic() - t0 >= 0.3, "fault delay_ms delays the answer")
    ctx = ssl.create_default_context(cafile=m.ca_cert)
    vault.add_fault("secret/data/chimera/db", truncate=True, count=1)
    conn = http.client.HTTPSConnection("127.0.0.1", vault.port, context=ctx, timeout=10)
    conn.request("GET", "/v1/secret/data/chimera/db", headers={"X-Vault-Token": "root"})
    resp = conn.getresponse()
    clen = int(resp.getheader("Content-Length"))
    try:
        resp.read()
        truncated = False
    except http.client.IncompleteRead as ir:
        truncated = 0 < len(ir.partial) < clen
    conn.close()
    check(truncated, "fault truncate: fewer bytes than Content-Length, then close")
    vault.add_fault("secret/data/chimera/db", oversize=8 << 20, count=1)
    conn = http.client.HTTPSConnection("127.0.0.1", vault.port, context=ctx, timeout=30)
    conn.request("GET", "/v1/secret/data/chimera/db", headers={"X-Vault-Token": "root"})
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    check(resp.status == 200 and len(data) == int(resp.getheader("Content-Length")) == 8 << 20
          and json.loads(data)["data"]["metadata"]["version"] == 1, "fault oversize: an 8 MiB JSON body")
    vault.add_fault("secret/data/chimera/db", drop=True, count=1)
    check(raises(lambda: client(vault, m, "root").secrets.kv.v2.read_secret_version("chimera/db"),
                 requests.exceptions.ConnectionError) is not None, "fault drop: connection closed, no answer")
    check(vault.list_faults() == [], "spent faults are gone")

    # ---- keep-alive, what the client sent
    vault.reset_stats()
    ka = client(vault, m, "root")
    for _ in range(20):
        ka.secrets.kv.v2.read_secret_version("chimera/db")
    st = vault.stats()
    check(st["connections"] == 1 and st["requests"]["/v1/secret/data/chimera/db"] == 20,
          "keep-alive: 20 reads over 1 TCP connection (stats.connections)")
    check(st["tokens_seen"] == ["root"] and st["token_uses"]["root"] == 20, "stats: tokens_seen")
    r = requests.get(vault.url + "/v1/secret/data/chimera/db", headers={"Authorization": "Bearer root"},
                     verify=m.ca_cert)
    check(r.status_code == 200, "Authorization: Bearer is accepted as the token")
    n = vault.drop_connections()["dropped"]
    check(n >= 1, "drop_connections closes keep-alive connections")
    check(ka.secrets.kv.v2.read_secret_version("chimera/db")["data"]["metadata"]["version"] == 2,
          "the client reconnects after drop_connections")

    # ---- load: 1000 requests, 20 ms latency, 16 keep-alive connections
    vault.reset_stats()
    vault.set_latency(20)
    statuses, errors = [], []
    lock = threading.Lock()

    def worker(n):
        try:
            conn = http.client.HTTPSConnection("127.0.0.1", vault.port, context=ctx, timeout=30)
            got = []
            for _ in range(n):
                conn.request("GET", "/v1/secret/data/chimera/db", headers={"X-Vault-Token": "root"})
                resp = conn.getresponse()
                resp.read()
                got.append(resp.status)
            conn.close()
            with lock:
                statuses.extend(got)
        except Exception as ex:  # reported below
            with lock:
                errors.append(repr(ex))

    t0 = time.monotonic()
    threads = [threading.Thread(target=worker, args=(1000 // 16 + (1 if i < 1000 % 16 else 0),)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    elapsed = time.monotonic() - t0
    vault.set_latency(0)
    st = vault.stats()
    check(not errors and len(statuses) == 1000 and set(statuses) == {200} and st["connections"] == 16,
          "1000 requests with 20 ms latency over 16 keep-alive connections (%.1fs, %d connections)%s"
          % (elapsed, st["connections"], (" errors: %s" % errors[:3]) if errors else ""))

    # ---- the control API over HTTP
    def control(op, **kw):
        req = urllib.request.Request(vault.url + "/_test/" + op, data=json.dumps(kw).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, context=ctx) as resp:
            return json.loads(resp.read())
    res = control("put_secret", path="chimera/http", data={"x": "1"})
    check(res["version"] == 1 and root.secrets.kv.v2.read_secret_version("chimera/http")["data"]["data"] ==
          {"x": "1"}, "control API: POST /_test/put_secret")
    tok = control("create_token", policies=["chimera-read"], ttl="90s")
    check(tok["id"].startswith("hvs.") and 85 <= tok["ttl"] <= 90, "control API: create_token")
    with urllib.request.urlopen(vault.url + "/_test/stats", context=ctx) as resp:
        st = json.loads(resp.read())
    check({"connections", "requests", "logins", "renewals", "lookups", "tokens_seen"} <= set(st),
          "control API: GET /_test/stats")


def plain_http(scratch):
    with VaultServer() as vault:
        vault.put_secret("chimera/db", {"password": "plain"})
        c = hvac.Client(url=vault.url, token="root")
        check(vault.url.startswith("http://") and
              c.secrets.kv.v2.read_secret_version("chimera/db")["data"]["data"]["password"] == "plain",
              "plain HTTP when no certificate is given")
        e = raises(lambda: hvac.Client(url=vault.url, token="").adapter.post("/v1/auth/cert/login", json={}),
                   E.InvalidRequest)
        check(e is not None and e.errors == ["tls connection required"], "cert login over HTTP: 400")


def command_line(m, scratch):
    """vault_server.py as a process, under each interpreter at hand."""
    state = os.path.join(scratch, "state.json")
    with open(state, "w") as f:
        json.dump({"put_secret": [{"path": "chimera/cli", "data": {"k": "v"}}],
                   "set_policy": [{"name": "p", "rules": [{"path": "secret/data/*", "capabilities": ["read"]}]}],
                   "create_token": [{"id": "cli-token", "policies": ["p"], "ttl": "1h"}]}, f)
    pythons = []
    for p in (shutil.which("python3"), SYSTEM_PYTHON):
        if not p:
            continue
        try:  # the interpreter itself, not a wrapper (a pyenv shim) that signals would not reach
            p = subprocess.run([p, "-c", "import sys; print(sys.executable)"], stdout=subprocess.PIPE,
                               text=True, timeout=30).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            continue
        if p and os.access(p, os.X_OK) and p not in pythons:
            pythons.append(p)
    ctx = ssl.create_default_context(cafile=m.ca_cert)
    for py in pythons:
        ready = os.path.join(scratch, "ready-%d.json" % len(py))
        proc = subprocess.Popen([py, os.path.join(HERE, "vault_server.py"), "--port", "0", "--tls-cert",
                                 m.server_cert, "--tls-key", m.server_key, "--state-file", state, "--ready-file",
                                 ready], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            port = None
            if select.select([proc.stdout], [], [], 20)[0]:
                line = proc.stdout.readline().strip()
                port = int(line) if line.isdigit() else None
            ok = port is not None and os.path.exists(ready) and json.load(open(ready))["port"] == port
            if ok:
                conn = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=10)
                conn.request("GET", "/v1/secret/data/chimera/cli", headers={"X-Vault-Token": "cli-token"})
                resp = conn.getresponse()
                ok = resp.status == 200 and json.loads(resp.read())["data"]["data"] == {"k": "v"}
                conn.close()
            proc.send_signal(signal.SIGTERM)
            rc = proc.wait(10)
            check(ok and rc == 0, "%s vault_server.py --port 0 --tls-cert --state-file --ready-file: port on "
                  "stdout, ready file, state loaded, clean exit on SIGTERM (rc %s)" % (py, rc))
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            err = proc.stderr.read()
            if err.strip():
                print("# stderr of %s: %s" % (py, err.strip()[:2000]))


if __name__ == "__main__":
    main()
