#!/usr/bin/env python3
"""The Azure Key Vault store against the stand-ins of azure_server.py (proven with Microsoft's
own clients by test-azure-sdk.py): every credential method (client secret, a client
certificate's RS256 assertion with x5t#S256, workload identity, system and user-assigned
managed identity, and `default` from the environment), the 401 challenge, versions and
SECRETSYNC_VERSION, properties at dotted paths, whole and non-ASCII values byte-exact,
data_from, secret/NAME, a denied, a missing and a disabled secret beside readable ones,
throttling and 503 retried, a wrong client secret, tokens expiring and revoked (one new
token each, not one per read), rotation with SIGUSR1, refs the store cannot read; and no
secret, client secret or token in any output."""
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
from azure_server import FEDERATED_AUDIENCE, AzureServer  # noqa: E402

if not tls.have_openssl():
    skip("the openssl command is not installed (needed to make test certificates)")
for k in list(os.environ):
    if k.startswith("AZURE_"):
        del os.environ[k]

s = Scratch()
out = s.p("out")
os.makedirs(out)
m = tls.make_all(s.p("tls"))
az = AzureServer(m.server_cert, m.server_key)
NEVER = list(CHIMERA_VALUES)
# Key Vault names are letters, digits and dashes: chimera/postgres-password -> chimera-postgres-password.
KV = {k.replace("/", "-"): v for k, v in CHIMERA.items()}
UNICODE = "\u00e9\u00e8 \u2603 \U0001F511 \x01\x7f tab\tnl\n" + "".join(chr(c) for c in range(0x20, 0x7f))


def cred(name, text):
    path = s.p(name)
    with open(path, "w") as f:
        f.write(text + "\n")
    os.chmod(path, 0o600)
    NEVER.append(text)
    return path


def read(name):
    try:
        with open(os.path.join(out, name), "rb") as f:
            return f.read().decode()
    except FileNotFoundError:
        return None


def clean_out():
    for n in os.listdir(out):
        os.unlink(os.path.join(out, n))


def entry(name, key, prop=None, version=None, store="kv"):
    ref = "key = %s;" % lc_string(key) + (" property = %s;" % lc_string(prop) if prop else "") + (
        " version = %s;" % lc_string(version) if version else "")
    return """{ name = "%s"; store = "%s"; data = ( { secret_key = "v"; remote_ref = { %s }; } );
     files = ( { path = "%s/%s"; format = "raw"; key = "v"; } ); }""" % (name, store, ref, out, name)


def chimera_entries():
    return [entry(k, k, list(json.loads(v))[-1]) for k, v in KV.items()]


def config(auth, entries, extra="", daemon="", name="secretsyncd.conf"):
    return s.write_config(name=name, text="""
daemon = { min_backoff = "200ms"; max_backoff = "1s"; %s };
stores = { kv = { type = "azure"; vault_url = "%s"; authority = "%s"; ca_file = "%s"; %s
                  auth = { %s }; }; };
secrets = ( %s );
""" % (daemon, az.url, az.url, m.ca_cert, extra, auth, ",\n".join(entries)))


CURRENT = dict(KV)


def chimera_ok(what):
    for k, v in CURRENT.items():
        if read(k) != json.loads(v)[list(json.loads(v))[-1]]:
            return check(False, "%s: %s written (%r)" % (what, k, read(k)))
    return check(True, "%s: the five chimera secrets written" % what)


outputs = []


def check_run(cond, what, r):
    """check(), with the daemon's last words when it fails."""
    if not check(cond, what):
        print("#   " + (r.stdout + r.stderr)[-600:].replace("\n", "\n#   "))


def once(conf, env=None):
    clean_out()
    del az.token_requests[:]
    del az.reads[:]
    r = run(["-c", conf, "--once"], env=env, timeout=60)
    outputs.append(r.stdout + r.stderr)
    return r


# --- the vault
for k, v in KV.items():
    az.put_secret(k, v)
old = az.put_secret("versioned", "previous-Pw-0")
cur = az.put_secret("versioned", "rotated-Pw-7")
az.put_secret("unicode", UNICODE)
az.put_secret("disabled", "disabled-Pw-3", enabled=False)
az.put_secret("other-forbidden", '{"password":"forbidden-Pw-9"}')
NEVER += ["previous-Pw-0", "rotated-Pw-7", "disabled-Pw-3", "forbidden-Pw-9"]

# --- the identities
secret_file = cred("client-secret", "app-Secr3t~Value-42")
az.add_app("app-secret", secret="app-Secr3t~Value-42")
cert, key = tls.make_client_cert(s.p("tls"), m.ca, "app-cert", "app-cert", key_type="rsa")
cert_pem = tls.bundle(s.p("app-cert.pem"), cert, key)
os.chmod(cert_pem, 0o600)
az.add_app("app-cert", cert=cert)
issuer_key = rsa_jwt.make_rsa_key(s.p("issuer.key"))
ISSUER, SUBJECT = "https://oidc.chimera.example/", "system:serviceaccount:chimera:secretsyncd"
az.add_app("app-wi", federated=(ISSUER, SUBJECT, issuer_key))


def federated_token(subject=SUBJECT, exp_in=3600):
    now = int(time.time())
    t = rsa_jwt.sign(issuer_key, {"alg": "RS256", "typ": "JWT", "kid": "k1"},
                     {"iss": ISSUER, "sub": subject, "aud": [FEDERATED_AUDIENCE], "iat": now, "exp": now + exp_in})
    NEVER.append(t)
    return t


wi_token = cred("azure-identity-token", federated_token())
cid_file = cred("client-id", "app-wi")
NEVER.remove("app-wi")
az.add_identity("mi-system", default=True)
az.add_identity("mi-user")
for p in ("app-secret", "app-cert", "app-wi", "mi-system", "mi-user"):
    for k in list(KV) + ["versioned", "unicode", "disabled", "missing"]:
        az.grant(p, k)
az.start()

try:
    # --- client secret: properties, versions, unicode, data_from, secret/NAME, one token
    entries = chimera_entries() + [
        entry("previous", "versioned", version=old), entry("current", "secret/versioned"),
        entry("unicode", "unicode"), entry("whole", "chimera-minio-credentials"),
        """{ name = "minio-all"; store = "kv"; data_from = ( { extract = { key = "chimera-minio-credentials"; }; } );
             files = ( { path = "%s/minio.json"; format = "json"; } ); }""" % out]
    auth_secret = 'method = "client-secret"; tenant_id = "%s"; client_id = "app-secret"; client_secret_file = "%s";' % (
        az.tenant, secret_file)
    conf = config(auth_secret, entries)
    r = once(conf)
    check_run(r.returncode == 0, "client-secret: --once exits 0", r)
    chimera_ok("client-secret")
    check(read("previous") == "previous-Pw-0" and read("current") == "rotated-Pw-7",
          "a pinned version, and the current one (written secret/NAME)")
    check("version %s" % old in r.stderr and "version %s" % cur in r.stderr, "SECRETSYNC_VERSION is the version id")
    check(read("unicode") == UNICODE, "a non-ASCII value with control characters written byte-exact")
    check(read("whole") == KV["chimera-minio-credentials"], "no property: the whole string")
    check(json.loads(read("minio.json") or "{}") == json.loads(KV["chimera-minio-credentials"]), "data_from extract")
    check(az.token_requests == [("client_secret", "app-secret")],
          "one token for %d reads (%s)" % (len(az.reads), az.token_requests))
    check("auth-ok" in r.stderr and "client-secret" in r.stderr, "auth-ok reported with the method")

    # --- denied, missing and disabled beside readable secrets
    conf = config(auth_secret, chimera_entries() + [entry("forbidden", "other-forbidden"), entry("missing", "missing"),
                                                    entry("disabled", "disabled")])
    r = once(conf)
    check(r.returncode != 0, "failures make --once exit non-zero")
    chimera_ok("beside failures")
    check("permission denied reading secret other-forbidden" in r.stderr and
          "Microsoft.KeyVault/vaults/secrets/getSecret/action" in r.stderr and "ForbiddenByRbac" in r.stderr,
          "a denied secret: permission denied, with Key Vault's missing action")
    check("secret missing not found in Key Vault" in r.stderr and "SecretNotFound" in r.stderr, "a missing secret")
    check("secret disabled is disabled in Key Vault" in r.stderr, "a disabled secret")
    check("'forbidden'" in r.stderr and "store 'kv'" in r.stderr, "failures name the secret and the store")

    # --- throttling and 503 are retried
    az.throttle["chimera-redis-password"] = 2
    az.fail["chimera-jwt-secret"] = 1
    r = once(config(auth_secret, chimera_entries()))
    check_run(r.returncode == 0, "throttled (429 + Retry-After) and 503 reads are retried", r)
    check([st for n, _, st in az.reads if n == "chimera-redis-password"] == [429, 429, 200],
          "429 twice, then read (%s)" % az.reads)
    chimera_ok("after retries")

    # --- client certificate: an RS256 assertion with x5t#S256
    r = once(config('method = "client-certificate"; tenant_id = "%s"; client_id = "app-cert"; certificate_file = "%s";'
                    % (az.tenant, cert_pem), chimera_entries()))
    check_run(r.returncode == 0 and az.token_requests == [("certificate", "app-cert")],
          "client-certificate: the stand-in verified the assertion", r)
    chimera_ok("client-certificate")

    # --- workload identity, client_id from a file, tenant from the challenge
    r = once(config('method = "workload-identity"; client_id_file = "%s"; token_file = "%s";' % (cid_file, wi_token),
                    chimera_entries()))
    check_run(r.returncode == 0 and az.token_requests == [("federated", "app-wi")],
          "workload-identity: the federated token exchanged", r)
    chimera_ok("workload-identity")
    with open(wi_token, "w") as f:
        f.write(federated_token(subject="system:serviceaccount:other:intruder"))
    r = once(config('method = "workload-identity"; client_id_file = "%s"; token_file = "%s";' % (cid_file, wi_token),
                    chimera_entries()))
    check(r.returncode != 0 and "AADSTS70021" in r.stderr and "auth-failed" in r.stderr,
          "workload-identity: the token file is re-read; a wrong subject is refused (AADSTS70021)")

    # --- managed identity: system-assigned, then user-assigned
    r = once(config('method = "managed-identity"; imds_endpoint = "%s";' % az.imds_url, chimera_entries()))
    check_run(r.returncode == 0 and az.token_requests == [("managed_identity", "mi-system")],
          "managed-identity: system-assigned from IMDS", r)
    chimera_ok("managed-identity")
    r = once(config('method = "managed-identity"; client_id = "mi-user"; imds_endpoint = "%s";' % az.imds_url,
                    chimera_entries()))
    check(r.returncode == 0 and az.token_requests == [("managed_identity", "mi-user")], "managed-identity: user-assigned")
    mi_file = cred("mi-client-id", "mi-user")
    NEVER.remove("mi-user")
    r = once(config('method = "managed-identity"; client_id_file = "%s"; imds_endpoint = "%s";' % (mi_file, az.imds_url),
                    chimera_entries()))
    check(r.returncode == 0 and az.token_requests == [("managed_identity", "mi-user")],
          "managed-identity: the user-assigned identity's client_id from client_id_file")
    r = run(["-c", config('method = "managed-identity"; client_id = "mi-user"; client_id_file = "%s";' % mi_file, [],
                          name="both.conf"), "--check-config"])
    check(r.returncode == 2 and "both.conf:" in r.stderr and "set 'client_id' or 'client_id_file', not both" in r.stderr,
          "client_id and client_id_file together: a FILE:LINE error (%s)" % r.stderr.strip()[-200:])
    r = once(config('method = "managed-identity"; client_id = "mi-nobody"; imds_endpoint = "%s";' % az.imds_url,
                    chimera_entries()))
    check(r.returncode != 0 and "Identity not found" in r.stderr, "managed-identity: an unknown identity is reported")

    # --- default: the environment, in DefaultAzureCredential's order
    dflt = config('method = "default"; imds_endpoint = "%s";' % az.imds_url, chimera_entries())
    r = once(dflt, env={"AZURE_TENANT_ID": az.tenant, "AZURE_CLIENT_ID": "app-secret",
                        "AZURE_CLIENT_SECRET": "app-Secr3t~Value-42"})
    check(r.returncode == 0 and az.token_requests == [("client_secret", "app-secret")], "default: AZURE_CLIENT_SECRET")
    r = once(dflt, env={"AZURE_TENANT_ID": az.tenant, "AZURE_CLIENT_ID": "app-wi",
                        "AZURE_FEDERATED_TOKEN_FILE": cred("wi2", federated_token())})
    check(r.returncode == 0 and az.token_requests == [("federated", "app-wi")], "default: AZURE_FEDERATED_TOKEN_FILE")
    r = once(dflt)
    check(r.returncode == 0 and az.token_requests == [("managed_identity", "mi-system")], "default: then managed identity")

    # --- a wrong client secret
    bad = cred("bad-secret", "not-the-Secret-1")
    r = once(config('method = "client-secret"; tenant_id = "%s"; client_id = "app-secret"; client_secret_file = "%s";'
                    % (az.tenant, bad), chimera_entries()))
    check(r.returncode != 0 and "AADSTS7000215" in r.stderr and "auth-failed" in r.stderr and "store 'kv'" in r.stderr,
          "a wrong client secret: auth-failed with Entra's AADSTS7000215")

    # --- refs the store cannot read are configuration errors
    r = run(["-c", config(auth_secret, [entry("c", "cert/chimera-tls")], name="bad.conf"), "--check"])
    check(r.returncode != 0 and "not certificates or keys" in r.stdout + r.stderr,
          "cert/NAME is refused at load time (%s)" % (r.stdout + r.stderr)[-200:])
    r = run(["-c", config(auth_secret, [entry("c", "chimera_bad.name")], name="bad2.conf"), "--check"])
    check(r.returncode != 0 and "letters, digits and dashes" in r.stdout + r.stderr, "a name Key Vault cannot hold")
    r = run(["-c", config('method = "client-secret"; client_id = "x";', [], name="bad3.conf"), "--check"])
    check(r.returncode != 0 and "client_secret_file" in r.stdout + r.stderr, "client-secret needs client_secret_file")

    # --- a daemon: tokens expire (one new token per lifetime), are revoked, rotation + SIGUSR1
    az.token_lifetime = 4
    conf = config(auth_secret, chimera_entries(), daemon='refresh_interval = "500ms";', name="daemon.conf")
    clean_out()
    del az.token_requests[:]
    del az.reads[:]
    d = Daemon(conf, s)
    check(d.wait_log("fetched 'chimera-grafana-admin'", timeout=20), "daemon: first sync")
    time.sleep(5)
    n_tokens, n_reads = len(az.token_requests), len(az.reads)
    check(2 <= n_tokens <= 4 and n_reads >= 15,
          "tokens living 4s are replaced before they expire: %d tokens for %d reads" % (n_tokens, n_reads))
    check(all(st == 200 for _, _, st in az.reads), "no read was refused for an expired token")
    az.token_lifetime = 3600
    az.revoke_tokens()
    time.sleep(1.5)
    check(len(az.token_requests) == n_tokens + 1 and "failed" not in d.output().split("first round done")[-1],
          "a revoked token: one new token, the reads retried (%d)" % len(az.token_requests))
    az.put_secret("chimera-redis-password", '{"password":"redis-rotated-Pw-10"}')
    NEVER.append("redis-rotated-Pw-10")
    d.signal(signal.SIGUSR1)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and read("chimera-redis-password") != "redis-rotated-Pw-10":
        time.sleep(0.1)
    check(read("chimera-redis-password") == "redis-rotated-Pw-10", "rotation: SIGUSR1 picks up a new version")
    d.stop()
    outputs.append(d.output())

    # --- nothing secret in any output
    text = "\n".join(outputs)
    leaked = [v for v in NEVER + az.issued_tokens() if v and v in text]
    check(not leaked, "no secret value, client secret, federated token or access token in any output (%s)" %
          [x[:12] for x in leaked])
finally:
    az.stop()
    s.cleanup()
done()
