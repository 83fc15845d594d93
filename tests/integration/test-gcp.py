#!/usr/bin/env python3
"""The Google Secret Manager store against the stand-ins of gcp_server.py (proven with Google's
own clients by test-gcp-sdk.py): every credential method (a service account key's JWT bearer
grant, workload identity federation with impersonation and with a URL-sourced token, the
metadata server, and `default`), versions and SECRETSYNC_VERSION, binary payloads byte-exact,
properties, data_from, projects/P/secrets/S keys, a regional secret, a denied, a missing, a
disabled and a destroyed secret beside readable ones, a payload that fails its dataCrc32c,
throttling and 503 retried, a key Google refuses, tokens expiring and revoked (one new token
each, not one per read), rotation with SIGUSR1; and no secret, key or token in any output."""
import json
import os
import signal
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from lib import CHIMERA, CHIMERA_VALUES, Daemon, Scratch, check, done, lc_string, require_daemon, run, skip  # noqa

require_daemon()
import rsa_jwt  # noqa: E402
import tls  # noqa: E402
from gcp_server import PROJECT, GcpServer  # noqa: E402

if not tls.have_openssl():
    skip("the openssl command is not installed (needed to make test certificates)")
for k in ("GOOGLE_APPLICATION_CREDENTIALS", "GCE_METADATA_HOST", "GCE_METADATA_IP"):
    os.environ.pop(k, None)

s = Scratch()
out = s.p("out")
os.makedirs(out)
m = tls.make_all(s.p("tls"))
gcp = GcpServer(m.server_cert, m.server_key, s.path)
NEVER = list(CHIMERA_VALUES)
SM = {k.replace("/", "-"): v for k, v in CHIMERA.items()}
BINARY = bytes(range(256)) + b"\x00\xff\n"


def read(name, mode="r"):
    try:
        with open(os.path.join(out, name), mode) as f:
            return f.read()
    except FileNotFoundError:
        return None


def clean_out():
    for n in os.listdir(out):
        os.unlink(os.path.join(out, n))


def entry(name, key, prop=None, version=None, store="sm"):
    ref = "key = %s;" % lc_string(key) + (" property = %s;" % lc_string(prop) if prop else "") + (
        " version = %s;" % lc_string(version) if version else "")
    return """{ name = "%s"; store = "%s"; data = ( { secret_key = "v"; remote_ref = { %s }; } );
     files = ( { path = "%s/%s"; format = "raw"; key = "v"; } ); }""" % (name, store, ref, out, name)


def chimera_entries():
    return [entry(k, k, list(json.loads(v))[-1]) for k, v in SM.items()]


def config(auth, entries, extra="", daemon="", name="secretsyncd.conf"):
    return s.write_config(name=name, text="""
daemon = { min_backoff = "200ms"; max_backoff = "1s"; %s };
stores = { sm = { type = "gcp"; project = "%s"; endpoint = "%s"; ca_file = "%s"; %s
                  auth = { %s }; }; };
secrets = ( %s );
""" % (daemon, PROJECT, gcp.url, m.ca_cert, extra, auth, ",\n".join(entries)))


CURRENT = dict(SM)


def chimera_ok(what):
    for k, v in CURRENT.items():
        if read(k) != json.loads(v)[list(json.loads(v))[-1]]:
            return check(False, "%s: %s written (%r)" % (what, k, read(k)))
    return check(True, "%s: the five chimera secrets written" % what)


outputs = []


def check_run(cond, what, r):
    if not check(cond, what):
        print("#   " + (r.stdout + r.stderr)[-600:].replace("\n", "\n#   "))


def once(conf, env=None):
    clean_out()
    del gcp.token_requests[:]
    del gcp.reads[:]
    r = run(["-c", conf, "--once"], env=env, timeout=60)
    outputs.append(r.stdout + r.stderr)
    return r


# --- the secrets
for k, v in SM.items():
    gcp.put_secret(k, v.encode())
gcp.put_secret("versioned", b"previous-Pw-0")
gcp.put_secret("versioned", b"rotated-Pw-7")
gcp.put_secret("binary", BINARY)
gcp.put_secret("regional", b"regional-Pw-5", location="europe-west1")
gcp.put_secret("disabled", b"disabled-Pw-3", state="DISABLED")
gcp.put_secret("destroyed", b"", state="DESTROYED")
gcp.put_secret("corrupt", b"corrupt-Pw-6")
gcp.corrupt.add("corrupt")
gcp.put_secret("other-forbidden", b'{"password":"forbidden-Pw-9"}')
NEVER += ["previous-Pw-0", "rotated-Pw-7", "regional-Pw-5", "disabled-Pw-3", "corrupt-Pw-6", "forbidden-Pw-9"]

# --- the identities
SA = "secretsyncd@chimera-prod.iam.gserviceaccount.com"
key_file = gcp.add_service_account(SA)
with open(key_file) as f:
    NEVER.append(json.load(f)["private_key"].splitlines()[1])
WI_SA = "wi-reader@chimera-prod.iam.gserviceaccount.com"
gcp.add_service_account(WI_SA)
issuer_key = rsa_jwt.make_rsa_key(s.p("issuer.key"))
ISSUER = "https://oidc.chimera.example"
AUDIENCE = "//iam.googleapis.com/projects/123456789012/locations/global/workloadIdentityPools/chimera/providers/k8s"
PRINCIPAL = "principal://iam.googleapis.com/projects/123456789012/locations/global/workloadIdentityPools/chimera/" \
            "subject/system:serviceaccount:chimera:secretsyncd"
gcp.add_pool_provider(AUDIENCE, ISSUER, issuer_key)
gcp.allow_impersonation(PRINCIPAL, WI_SA)
now = int(time.time())
subject = rsa_jwt.sign(issuer_key, {"alg": "RS256", "typ": "JWT"}, {
    "iss": ISSUER, "sub": "system:serviceaccount:chimera:secretsyncd", "aud": "https:" + AUDIENCE, "iat": now,
    "exp": now + 3600})
NEVER.append(subject)
gcp.subject_token = subject
subject_file = s.p("subject-token")
with open(subject_file, "w") as f:
    f.write(subject)
os.chmod(subject_file, 0o600)


def json_file(name, obj):
    path = s.p(name)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(obj, f)
    return path


wif = json_file("wif.json", {
    "type": "external_account", "audience": AUDIENCE, "subject_token_type": "urn:ietf:params:oauth:token-type:jwt",
    "token_url": gcp.url + "/v1/token", "credential_source": {"file": subject_file},
    "service_account_impersonation_url": gcp.url + "/v1/projects/-/serviceAccounts/%s:generateAccessToken" % WI_SA})
wif_url = json_file("wif-url.json", {
    "type": "external_account", "audience": AUDIENCE, "subject_token_type": "urn:ietf:params:oauth:token-type:jwt",
    "token_url": gcp.url + "/v1/token", "credential_source": {
        "url": gcp.url + "/subject-token", "headers": {"Metadata": "True"},
        "format": {"type": "json", "subject_token_field_name": "access_token"}}})
gcp.metadata_account = "node@chimera-prod.iam.gserviceaccount.com"
for p in (SA, WI_SA, PRINCIPAL, gcp.metadata_account):
    for k in list(SM) + ["versioned", "binary", "regional", "disabled", "destroyed", "corrupt", "missing"]:
        gcp.grant(p, k)
gcp.start()

try:
    # --- service account key: versions, binary, property, data_from, projects/P/secrets/S
    auth_key = 'method = "service-account-key"; key_file = "%s";' % key_file
    entries = chimera_entries() + [
        entry("previous", "versioned", version="1"), entry("current", "projects/%s/secrets/versioned" % PROJECT),
        entry("binary", "binary"), entry("whole", "chimera-minio-credentials"),
        """{ name = "minio-all"; store = "sm"; data_from = ( { extract = { key = "chimera-minio-credentials"; }; } );
             files = ( { path = "%s/minio.json"; format = "json"; } ); }""" % out]
    r = once(config(auth_key, entries))
    check_run(r.returncode == 0, "service-account-key: --once exits 0", r)
    chimera_ok("service-account-key")
    check(read("previous") == "previous-Pw-0" and read("current") == "rotated-Pw-7",
          "version 1, and latest (written projects/P/secrets/S)")
    check("version 1" in r.stderr and "version 2" in r.stderr, "SECRETSYNC_VERSION is the version number")
    check(read("binary", "rb") == BINARY, "a binary payload written byte-exact")
    check(read("whole") == SM["chimera-minio-credentials"], "no property: the whole payload")
    check(json.loads(read("minio.json") or "{}") == json.loads(SM["chimera-minio-credentials"]), "data_from extract")
    check(gcp.token_requests == [("jwt_bearer", SA)],
          "one JWT bearer grant, verified with the key, for %d reads (%s)" % (len(gcp.reads), gcp.token_requests))
    check("auth-ok" in r.stderr and "service-account-key" in r.stderr, "auth-ok reported with the method")

    # --- failures beside readable secrets
    r = once(config(auth_key, chimera_entries() + [
        entry("forbidden", "other-forbidden"), entry("missing", "missing"), entry("disabled", "disabled"),
        entry("destroyed", "destroyed", version="1"), entry("corrupt", "corrupt")]))
    check(r.returncode != 0, "failures make --once exit non-zero")
    chimera_ok("beside failures")
    check("permission denied reading secret other-forbidden" in r.stderr and
          "Permission 'secretmanager.versions.access' denied" in r.stderr, "a denied secret: PERMISSION_DENIED")
    check("secret missing not found in Secret Manager" in r.stderr and "NOT_FOUND" in r.stderr, "a missing secret")
    check_run("secret disabled cannot be read" in r.stderr and "DISABLED state" in r.stderr and
          "DESTROYED state" in r.stderr, "disabled and destroyed versions: FAILED_PRECONDITION", r)
    check("does not match its dataCrc32c" in r.stderr and read("corrupt") is None,
          "a payload failing its dataCrc32c is not written")
    check("'forbidden'" in r.stderr and "store 'sm'" in r.stderr, "failures name the secret and the store")

    # --- retries; a regional secret
    gcp.throttle["chimera-redis-password"] = 2
    gcp.fail["chimera-jwt-secret"] = 1
    r = once(config(auth_key, chimera_entries()))
    check_run(r.returncode == 0 and [st for n, _, st in gcp.reads if n == "chimera-redis-password"] == [429, 429, 200],
              "RESOURCE_EXHAUSTED twice and UNAVAILABLE once are retried", r)
    r = once(config(auth_key, [entry("regional", "regional")], extra='location = "europe-west1";'))
    check_run(r.returncode == 0 and read("regional") == "regional-Pw-5", "location: the regional secret", r)

    # --- workload identity federation, the metadata server, default
    r = once(config('method = "external-account"; credentials_file = "%s";' % wif, chimera_entries()))
    check_run(r.returncode == 0 and [g for g, _ in gcp.token_requests] == ["sts", "impersonate"],
              "external-account: STS, then impersonation (%s)" % gcp.token_requests, r)
    chimera_ok("external-account")
    r = once(config('method = "external-account"; credentials_file = "%s";' % wif_url, chimera_entries()))
    check_run(r.returncode == 0 and [g for g, _ in gcp.token_requests] == ["sts"],
              "external-account: a URL-sourced subject token, no impersonation", r)
    r = once(config('method = "metadata"; metadata_endpoint = "%s";' % gcp.metadata_url, chimera_entries()))
    check_run(r.returncode == 0 and gcp.token_requests == [("metadata", gcp.metadata_account)], "metadata server", r)
    chimera_ok("metadata")
    r = once(config('method = "default";', chimera_entries()), env={"GOOGLE_APPLICATION_CREDENTIALS": key_file})
    check_run(r.returncode == 0 and gcp.token_requests == [("jwt_bearer", SA)], "default: GOOGLE_APPLICATION_CREDENTIALS", r)
    r = once(config('method = "default";', chimera_entries()), env={"GOOGLE_APPLICATION_CREDENTIALS": wif})
    check_run(r.returncode == 0 and [g for g, _ in gcp.token_requests] == ["sts", "impersonate"],
              "default: an external_account file", r)
    r = once(config('method = "default";', chimera_entries()), env={"GCE_METADATA_HOST": gcp.metadata_host})
    check_run(r.returncode == 0 and gcp.token_requests == [("metadata", gcp.metadata_account)],
              "default: then the metadata server (GCE_METADATA_HOST)", r)

    # --- a key Google does not know
    other = GcpServer(m.server_cert, m.server_key, s.path).add_service_account("intruder@chimera-prod.iam.gserviceaccount.com")
    with open(other) as f:
        k = json.load(f)
    k["token_uri"] = gcp.url + "/token"
    with open(other, "w") as f:
        json.dump(k, f)
    r = once(config('method = "service-account-key"; key_file = "%s";' % other, chimera_entries()))
    check(r.returncode != 0 and "invalid_grant" in r.stderr and "auth-failed" in r.stderr and "store 'sm'" in r.stderr,
          "an unknown service account: auth-failed with Google's invalid_grant")
    r = run(["-c", config(auth_key, [entry("x", "chimera.bad/name")], name="bad.conf"), "--check"])
    check(r.returncode != 0 and "letters, digits" in r.stdout + r.stderr, "a secret id Secret Manager cannot hold")

    # --- a daemon: tokens expire, are revoked; rotation + SIGUSR1
    gcp.token_lifetime = 4
    conf = config(auth_key, chimera_entries(), daemon='refresh_interval = "500ms";', name="daemon.conf")
    clean_out()
    del gcp.token_requests[:]
    del gcp.reads[:]
    d = Daemon(conf, s)
    check(d.wait_log("fetched 'chimera-grafana-admin'", timeout=20), "daemon: first sync")
    time.sleep(5)
    n_tokens, n_reads = len(gcp.token_requests), len(gcp.reads)
    check(2 <= n_tokens <= 4 and n_reads >= 15,
          "tokens living 4s are replaced before they expire: %d tokens for %d reads" % (n_tokens, n_reads))
    check(all(st == 200 for _, _, st in gcp.reads), "no read was refused for an expired token")
    gcp.token_lifetime = 3600
    gcp.revoke_tokens()
    time.sleep(1.5)
    check(len(gcp.token_requests) == n_tokens + 1 and "failed" not in d.output().split("first round done")[-1],
          "a revoked token (401): one new token, the reads retried (%d)" % len(gcp.token_requests))
    gcp.put_secret("chimera-redis-password", b'{"password":"redis-rotated-Pw-10"}')
    NEVER.append("redis-rotated-Pw-10")
    d.signal(signal.SIGUSR1)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and read("chimera-redis-password") != "redis-rotated-Pw-10":
        time.sleep(0.1)
    check(read("chimera-redis-password") == "redis-rotated-Pw-10", "rotation: SIGUSR1 picks up a new version")
    d.stop()
    outputs.append(d.output())

    text = "\n".join(outputs)
    leaked = [v for v in NEVER + gcp.issued_tokens() if v and v in text]
    check(not leaked, "no secret value, private key, subject token or access token in any output (%s)" %
          [x[:12] for x in leaked])
finally:
    gcp.stop()
    s.cleanup()
done()
