#!/usr/bin/env python3
"""auth.service_account: the daemon requests service-account tokens itself (TokenRequest) from
the stand-in Kubernetes API, with its kubeconfig's identity, and logs in with them: AWS web
identity against moto (whose STS here checks the token's issuer, audience and signature, as
AWS does), Vault kubernetes and jwt auth against the stand-in Vault (which verifies the JWT
with the issuer's key). The token's audience and lifetime as the API server saw the request,
the renewal at 80% of the lifetime granted, a reload that changes the audiences, a request
that RBAC denies (the error names serviceaccounts/token create), a missing service account,
no Kubernetes connection; and no token in any output."""
import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lib import Daemon, Scratch, check, done, require_daemon, run, skip

require_daemon()
import tls
from kube_server import DEFAULT_AUDIENCE, KubeServer
from moto_server import Moto, have_moto, rerun_with_moto
from vault_server import VaultServer

if not tls.have_openssl():
    skip("openssl command missing (needed to make test certificates and sign tokens)")
if not have_moto():
    rerun_with_moto(__file__)
    skip("python3 modules moto and boto3 missing (pip install 'moto[server]' boto3)")

for k in list(os.environ):
    if k.startswith("AWS_") or k in ("KUBECONFIG", "KUBERNETES_SERVICE_HOST"):
        del os.environ[k]
s = Scratch()
os.environ["HOME"] = s.path
m = tls.make_all(s.p("tls"))
out = s.p("out")
os.makedirs(out, mode=0o700)
DAEMON_USER = "system:serviceaccount:kube-system:secretsyncd"
DAEMON_TOKEN = "daemon-kube-token-Zq81"
NS, SA = "chimera", "external-secrets-sa"
NEVER = ["aws-sa-Pw1", "vault-sa-Pw2", "jwt-sa-Pw3", DAEMON_TOKEN]
outputs = []


def kubeconfig():
    path = s.p("kubeconfig")
    with open(path, "w") as f:
        f.write(f"""apiVersion: v1
kind: Config
clusters:
- name: edge
  cluster: {{ server: "{kube.url}", certificate-authority: "{m.ca_cert}" }}
contexts:
- name: edge
  context: {{ cluster: edge, user: u }}
current-context: edge
users:
- name: u
  user: {{ token: {DAEMON_TOKEN} }}
""")
    os.chmod(path, 0o600)
    return path


def config(stores, secrets, kube_block=True, name="secretsyncd.conf"):
    kb = f'kubernetes = {{ kubeconfig = "{kubeconfig()}"; leader_election = {{ enabled = false; }}; }};' \
        if kube_block else ""
    return s.write_config(name=name, text=f"""
daemon = {{ min_backoff = "200ms"; max_backoff = "1s"; }};
stores = {{ {stores} }};
{kb}
secrets = ( {", ".join(secrets)} );
""")


def sa_group(audiences=None, name=SA):
    aud = "" if audiences is None else "audiences = [ %s ];" % ", ".join('"%s"' % a for a in audiences)
    return f'service_account = {{ namespace = "{NS}"; name = "{name}"; {aud} }};'


def aws_store(sa):
    return f'''aws = {{ type = "aws"; region = "{Moto.region}"; endpoint = "{moto.url}"; sts_endpoint = "{moto.url}";
               auth = {{ method = "web-identity"; role_arn = "{role_arn}"; {sa} }}; }};'''


def vault_store(name, method, sa):
    return f'''{name} = {{ type = "vault"; server = "{vault.url}"; ca_file = "{m.ca_cert}";
               auth = {{ method = "{method}"; role = "chimera-role"; {sa} }}; }};'''


def secret(name, store, key, prop="password"):
    return f"""{{ name = "{name}"; store = "{store}";
     data = ( {{ secret_key = "v"; remote_ref = {{ key = "{key}"; property = "{prop}"; }}; }} );
     files = ( {{ path = "{out}/{name}"; format = "raw"; key = "v"; }} ); }}"""


def read(name):
    try:
        with open(os.path.join(out, name)) as f:
            return f.read()
    except FileNotFoundError:
        return None


def clean_out():
    for n in os.listdir(out):
        os.unlink(os.path.join(out, n))


def once(conf, env=None):
    clean_out()
    r = run(["-c", conf, "--once"], env=env, timeout=60)
    outputs.append(r.stdout + r.stderr)
    return r


def tokens():
    return kube.issued_tokens(NS, SA)


kube = KubeServer(tls_cert=m.server_cert, tls_key=m.server_key)
kube.start()
vault = VaultServer(tls_cert=m.server_cert, tls_key=m.server_key)
vault.start()
moto = Moto(s.p("moto.log"))
try:
    issuer = kube.service_account_issuer()
    kube.add_user(DAEMON_USER, token=DAEMON_TOKEN)
    kube.create_namespace(NS)
    kube.create_service_account(NS, SA)
    kube.create_service_account(NS, "other-sa")
    # What etc/examples/rbac.yaml grants: create on serviceaccounts/token, for this account only.
    kube.grant(DAEMON_USER, ["create"], ["serviceaccounts/token"], namespaces=[NS], names=[SA])

    # AWS: an IAM OIDC provider for the cluster's issuer (as EKS makes for IRSA), a role for it.
    moto.oidc_provider(issuer["issuer"], ["sts.amazonaws.com"])
    moto.oidc_key(issuer["issuer"], issuer["public_key_pem"])
    role_arn = moto.role("chimera-irsa", [{"Effect": "Allow", "Action": "secretsmanager:GetSecretValue",
                                           "Resource": "*"}])
    moto.client("secretsmanager").create_secret(Name="chimera/postgres", SecretString='{"password":"aws-sa-Pw1"}')

    # Vault: kubernetes auth verifying with the issuer's key, a role bound to the account
    # and audience; jwt auth likewise.
    vault.configure_auth("kubernetes", pem_keys=[issuer["public_key_pem"]], issuer=issuer["issuer"])
    vault.configure_auth("jwt", jwt_validation_pubkeys=[issuer["public_key_pem"]], bound_issuer=issuer["issuer"])
    vault.set_policy("chimera-read", {"secret/data/chimera/*": ["read"]})
    vault.add_kubernetes_role("chimera-role", bound_service_account_names=[SA], bound_service_account_namespaces=[NS],
                              policies=["chimera-read"])
    vault.add_jwt_role("chimera-role", bound_audiences=["vault"], bound_subject="system:serviceaccount:%s:%s" % (NS, SA),
                       policies=["chimera-read"])
    vault.put_secret("chimera/redis", {"password": "vault-sa-Pw2"})
    vault.put_secret("chimera/jwt", {"password": "jwt-sa-Pw3"})

    # --- the configuration: checked without a cluster, dumped with the defaults
    conf = config(aws_store(sa_group()) + vault_store("vault-k8s", "kubernetes", sa_group()),
                  [secret("postgres", "aws", "chimera/postgres"), secret("redis", "vault-k8s", "chimera/redis")])
    r = run(["-c", conf, "--dump-config"])
    check(r.returncode == 0 and 'audiences = [ "sts.amazonaws.com" ];' in r.stdout and "audiences = [ ];" in r.stdout
          and 'name = "external-secrets-sa";' in r.stdout, "--dump-config shows service_account, default audiences")

    # --- AWS web identity and Vault kubernetes auth with requested tokens
    r = once(conf)
    check(r.returncode == 0 and read("postgres") == "aws-sa-Pw1" and read("redis") == "vault-sa-Pw2",
          f"AWS web identity and Vault kubernetes login with service-account tokens: files written ({r.stderr[-600:]})")
    t = tokens()
    auds = sorted(tuple(x["audiences"]) for x in t)
    check(len(t) == 2 and auds == sorted([("sts.amazonaws.com",), (DEFAULT_AUDIENCE,)]),
          f"one TokenRequest per store: audience sts.amazonaws.com for AWS, none asked (the API server's) for Vault ({auds})")
    check(t and all(x["requested_seconds"] == 3600 and x["expiration_seconds"] == 3600
                    and x["requested_by"] == DAEMON_USER for x in t), "each asked for an hour, with the kubeconfig's identity")
    check(moto.counts().get("AssumeRoleWithWebIdentity") == 1 and "of service account chimera/external-secrets-sa"
          in r.stderr, "STS accepted the token (issuer, audience, signature checked)")

    # STS checks the audience: a token for "vault" is refused, and the error says so.
    r = once(config(aws_store(sa_group(["vault"])), [secret("postgres", "aws", "chimera/postgres")]))
    check(r.returncode == 1 and read("postgres") is None and "Incorrect token audience" in r.stderr
          and tokens()[-1]["audiences"] == ["vault"], "a token for another audience: STS refuses it")

    # --- Vault jwt auth, audiences given
    r = once(config(vault_store("vault-jwt", "jwt", sa_group(["vault"])), [secret("jwt", "vault-jwt", "chimera/jwt")]))
    check(r.returncode == 0 and read("jwt") == "jwt-sa-Pw3" and tokens()[-1]["audiences"] == ["vault"],
          f"Vault jwt login with a token for audience vault ({r.stderr[-400:]})")

    # --- renewal at 80% of the lifetime the server grants, and a reload that changes the audiences
    kube.set_token_lifetime(10)
    n0 = len(tokens())
    conf = config(vault_store("vault-jwt", "jwt", sa_group(["vault"])), [secret("jwt", "vault-jwt", "chimera/jwt")])
    d = Daemon(conf, s)
    seen = []
    deadline = time.monotonic() + 25
    while time.monotonic() < deadline and len(seen) < 3:
        n = len(tokens())
        if n > n0 + len(seen):
            seen.append(time.monotonic())
        time.sleep(0.05)
    gaps = [round(b - a, 2) for a, b in zip(seen, seen[1:])]
    check(len(gaps) == 2 and all(7.0 <= g <= 9.0 for g in gaps),
          f"a 10 s token is requested anew at 80% of its lifetime, about every 8 s ({gaps})")
    check(tokens()[n0:] and all(x["requested_seconds"] == 3600 and x["expiration_seconds"] == 10
                                for x in tokens()[n0:]),
          "asked for an hour each time, granted 10 s")
    check(read("jwt") == "jwt-sa-Pw3", "the daemon synced meanwhile")
    conf = config(vault_store("vault-jwt", "jwt", sa_group(["vault", "vault-b"])),
                  [secret("jwt", "vault-jwt", "chimera/jwt")])
    n1 = len(tokens())
    d.signal(signal.SIGHUP)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not any(x["audiences"] == ["vault", "vault-b"] for x in tokens()[n1:]):
        time.sleep(0.05)
    check(any(x["audiences"] == ["vault", "vault-b"] for x in tokens()[n1:]),
          "a reload that changes the audiences requests a token for them")
    # A renewal that RBAC now refuses, while the token in hand still works: a warning then,
    # not silence until the token runs out.
    kube.revoke(DAEMON_USER)
    warned = d.wait_log("renewing its token failed", timeout=12)
    check(warned and "service account chimera/external-secrets-sa" in d.output() and "auth-failed" in d.output()
          and "good for" in d.output(), "a background renewal that fails is a warning naming the service account")
    kube.grant(DAEMON_USER, ["create"], ["serviceaccounts/token"], namespaces=[NS], names=[SA])
    d.stop()
    outputs.append(d.output())
    kube.set_token_lifetime(None)

    # --- RBAC denies the request: the error names the permission; the secret fails
    conf = config(vault_store("vault-k8s", "kubernetes", sa_group(name="other-sa")),
                  [secret("redis", "vault-k8s", "chimera/redis")])
    r = once(conf)
    err = r.stderr
    check(r.returncode == 1 and read("redis") is None, "a denied TokenRequest: the sync fails, nothing written")
    check("create serviceaccounts/token in namespace \"chimera\"" in err and 'verb "create"' in err
          and 'resourceNames ["other-sa"]' in err and "TokenRequest for service account chimera/other-sa refused" in err,
          f"the error names the RBAC permission missing ({err[-700:]})")
    check(f'User "{DAEMON_USER}" cannot create resource "serviceaccounts/token" in API group "" in the namespace '
          f'"chimera"' in err and "store 'vault-k8s'" in err and "secret 'redis'" in err,
          "with the API server's own message, the store and the secret")
    kube.grant(DAEMON_USER, ["create"], ["serviceaccounts/token"], namespaces=[NS], names=["other-sa", "gone-sa"])
    r = once(config(vault_store("vault-k8s", "kubernetes", sa_group(name="gone-sa")),
                    [secret("redis", "vault-k8s", "chimera/redis")]))
    check(r.returncode == 1 and "chimera/gone-sa: no such service account" in r.stderr
          and 'serviceaccounts "gone-sa" not found' in r.stderr, "a missing service account: 404, said so")

    # --- no Kubernetes connection to ask
    conf = config(vault_store("vault-k8s", "kubernetes", sa_group()), [secret("redis", "vault-k8s", "chimera/redis")],
                  kube_block=False, name="nokube.conf")
    r = run(["-c", conf, "--check-config"])
    check(r.returncode == 0, "--check-config passes: where the API is, is known only where the daemon runs")
    r = once(conf)
    check(r.returncode == 1 and "no Kubernetes API to request its token from" in r.stderr
          and "kubernetes.kubeconfig" in r.stderr, f"without one, the sync fails and says how to give one ({r.stderr[-400:]})")

    # --- no token, password or secret in any output
    text = "\n".join(outputs)
    leaked = [v for v in NEVER + [x["token"] for x in kube.issued_tokens()] if v in text]
    check(not leaked and "eyJ" not in text, "no token or secret value in any output")
finally:
    moto.stop()
    vault.stop()
    kube.stop()
done()
