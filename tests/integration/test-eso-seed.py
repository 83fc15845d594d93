#!/usr/bin/env python3
"""The Project Chimera guide end to end: its External Secrets Operator manifests, verbatim,
through `secretsyncctl convert-eso`, then the daemon with that configuration against the
stand-ins: the AWS store with IRSA (moto's STS checks the web identity token the daemon
requested from the Kubernetes stand-in with TokenRequest), and, as the guide's "# or
vault-backend" invites, the Vault store with kubernetes auth (the Vault stand-in verifies the
token with the cluster's key). kubectl then finds the five Secrets with the keys the
guide's Deployments read. Nothing but the environment (KUBECONFIG, AWS_ENDPOINT_URL) and the
Vault server's address and CA, which a team edits into its manifest, is added by hand."""
import base64
import glob
import json
import os
import re
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lib import CHIMERA, CHIMERA_VALUES, DAEMON, Scratch, check, done, no_secrets_in, require_daemon, run, skip

require_daemon()
import tls
from kube_server import KubeServer
from moto_server import Moto, have_moto, rerun_with_moto
from vault_server import VaultServer

CTL = os.environ.get("SECRETSYNCCTL") or os.path.join(os.path.dirname(DAEMON), "secretsyncctl")
KUBECTL = os.environ.get("KUBECTL") or shutil.which("kubectl") or "/usr/bin/kubectl"
HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(HERE, "..", "fixtures", "eso")
if not tls.have_openssl():
    skip("openssl command missing (needed to make test certificates and sign tokens)")
if not have_moto():
    rerun_with_moto(__file__)
    skip("python3 modules moto and boto3 missing (pip install 'moto[server]' boto3)")
if not os.access(KUBECTL, os.X_OK):
    skip("kubectl missing")

for k in list(os.environ):
    if k.startswith("AWS_") or k in ("KUBECONFIG", "KUBERNETES_SERVICE_HOST"):
        del os.environ[k]
s = Scratch()
os.environ["HOME"] = s.path
m = tls.make_all(s.p("tls"))
DAEMON_USER = "system:serviceaccount:kube-system:secretsyncd"
DAEMON_TOKEN = "seed-daemon-token-4Kq2"
ADMIN_TOKEN = "seed-admin-token-77Zx"
NS, SA = "chimera", "external-secrets-sa"
# What the guide's Deployments read: Secret -> keys.
DEPLOYMENTS = {"postgres-secret": {"password": ("chimera/postgres-password", "password")},
               "redis-secret": {"password": ("chimera/redis-password", "password")},
               "minio-secret": {"username": ("chimera/minio-credentials", "username"),
                                "password": ("chimera/minio-credentials", "password")},
               "jwt-secret": {"secret": ("chimera/jwt-secret", "secret")},
               "grafana-secret": {"admin-password": ("chimera/grafana-admin", "password")}}
outputs = []


def kubeconfig():
    path = s.p("kubeconfig")
    with open(path, "w") as f:
        f.write(f"""apiVersion: v1
kind: Config
clusters:
- name: edge
  cluster: {{ server: "{kube.url}", certificate-authority: "{m.ca_cert}" }}
users:
- name: daemon
  user: {{ token: {DAEMON_TOKEN} }}
- name: admin
  user: {{ token: {ADMIN_TOKEN} }}
contexts:
- name: daemon
  context: {{ cluster: edge, user: daemon }}
- name: admin
  context: {{ cluster: edge, user: admin }}
current-context: daemon
""")
    os.chmod(path, 0o600)
    return path


def kubectl(*args):
    return subprocess.run([KUBECTL, "--context", "admin", *args], capture_output=True, text=True, timeout=30,
                          env=dict(os.environ, KUBECONFIG=s.p("kubeconfig"), KUBECACHEDIR=s.p("kube-cache")))


def secret_data(name):
    r = kubectl("get", "secret", "-n", NS, name, "-o", "json")
    if r.returncode != 0:
        return None
    return {k: base64.b64decode(v).decode() for k, v in json.loads(r.stdout).get("data", {}).items()}


def convert(files, name):
    r = subprocess.run([CTL, "convert-eso", *files], capture_output=True, text=True, timeout=60)
    check(r.returncode == 0 and r.stderr == "", f"{name}: convert-eso converts the manifests ({r.stderr.strip()[:300]})")
    conf = s.write_config(r.stdout, name=name + ".conf")
    c = run(["-c", conf, "--check-config"])
    check(c.returncode == 0, f"{name}: the converted configuration passes --check-config ({c.stderr.strip()[:300]})")
    return conf


def expected(values):
    return {secret: {k: json.loads(values[key])[prop] for k, (key, prop) in keys.items()}
            for secret, keys in DEPLOYMENTS.items()}


def sync(conf, name, values):
    r = run(["-c", conf, "--once"], env={"KUBECONFIG": s.p("kubeconfig"), "AWS_ENDPOINT_URL": moto.url},
            timeout=90)
    outputs.append(r.stdout + r.stderr)
    check(r.returncode == 0, f"{name}: secretsyncd --once syncs all five ({r.stderr.strip()[-600:]})")
    want = expected(values)
    for secret, data in want.items():
        got = secret_data(secret)
        check(got == data, f"{name}: kubectl finds Secret {NS}/{secret} with {sorted(data)} "
                           f"({'right values' if got == data else got})")
    return r


kube = KubeServer(tls_cert=m.server_cert, tls_key=m.server_key)
kube.start()
vault = VaultServer(tls_cert=m.server_cert, tls_key=m.server_key)
vault.start()
moto = Moto(s.p("moto.log"))
try:
    kubeconfig()
    issuer = kube.service_account_issuer()
    kube.add_user(DAEMON_USER, token=DAEMON_TOKEN)
    kube.add_user("seed-admin", token=ADMIN_TOKEN, admin=True)
    kube.create_namespace(NS)
    kube.create_namespace("kube-system")
    kube.create_service_account(NS, SA)
    # etc/examples/rbac.yaml's grants: Secrets in chimera, the token of this account, the Lease
    kube.grant(DAEMON_USER, ["get", "list", "watch", "create", "patch", "update", "delete"], ["secrets"],
               namespaces=[NS])
    kube.grant(DAEMON_USER, ["create"], ["serviceaccounts/token"], namespaces=[NS], names=[SA])
    kube.grant(DAEMON_USER, ["get", "create", "update"], ["leases"], namespaces=["kube-system"],
               api_groups=["coordination.k8s.io"])

    seed = sorted(glob.glob(os.path.join(FIXTURES, "seed", "*.yaml")))
    sa_manifest = os.path.join(FIXTURES, "seed-extra", "service-account.yaml")
    role_arn = re.search(r"role-arn: (\S+)", open(sa_manifest).read()).group(1)

    # ---- AWS Secrets Manager with IRSA, as the guide sets it up (steps 1.1-1.3) -------------
    moto.oidc_provider(issuer["issuer"], ["sts.amazonaws.com"])
    moto.oidc_key(issuer["issuer"], issuer["public_key_pem"])
    arn = moto.role(role_arn.rsplit("/", 1)[1], [{"Effect": "Allow", "Resource": "arn:aws:secretsmanager:us-east-1:*:secret:chimera/*",
                                                  "Action": ["secretsmanager:GetSecretValue",
                                                             "secretsmanager:DescribeSecret"]}])
    check(arn == role_arn, f"moto's role is the one the ServiceAccount names ({arn})")
    sm = moto.client("secretsmanager")
    for key, value in CHIMERA.items():
        sm.create_secret(Name=key, SecretString=value)
    conf = convert(seed + [sa_manifest], "aws")
    sync(conf, "aws", CHIMERA)
    t = kube.issued_tokens(NS, SA)
    check(len(t) == 1 and t[0]["audiences"] == ["sts.amazonaws.com"] and t[0]["requested_by"] == DAEMON_USER,
          "one TokenRequest for external-secrets-sa, audience sts.amazonaws.com, by the daemon's own identity")
    check(moto.counts().get("AssumeRoleWithWebIdentity") == 1, "STS exchanged that token for the role")

    # ---- the same ExternalSecrets on Vault ("name: aws-secretsmanager  # or vault-backend") ----
    vault.configure_auth("kubernetes", pem_keys=[issuer["public_key_pem"]], issuer=issuer["issuer"])
    vault.set_policy("chimera-read-policy", {"secret/data/chimera/*": ["read"]})
    vault.add_kubernetes_role("chimera-role", bound_service_account_names=[SA], bound_service_account_namespaces=[NS],
                              policies=["chimera-read-policy"])
    rotated = {k: v.replace('"password":"', '"password":"vault-') for k, v in CHIMERA.items()}
    for key, value in rotated.items():
        vault.put_secret(key, json.loads(value))
    edited = s.p("k8s-vault")
    os.makedirs(edited)
    for f in seed:
        text = open(f).read()
        if "external-secret-" in f:
            text = text.replace("name: aws-secretsmanager", "name: vault-backend")
        if "secret-store-vault" in f:
            ca = base64.b64encode(open(m.ca_cert, "rb").read()).decode()
            text = text.replace('server: "https://vault.your-domain.com"', f'server: "{vault.url}"\n      caBundle: "{ca}"')
        with open(os.path.join(edited, os.path.basename(f)), "w") as out:
            out.write(text)
    conf = convert(sorted(glob.glob(os.path.join(edited, "*.yaml"))) + [sa_manifest], "vault")
    check('ca_pem = "-----BEGIN CERTIFICATE-----' in open(conf).read(), "vault: caBundle became ca_pem")
    sync(conf, "vault", rotated)
    t = kube.issued_tokens(NS, SA)
    check(len(t) == 2 and t[-1]["audiences"] != ["sts.amazonaws.com"], "vault: a token of its own, not the AWS one")

    # ---- no secret value, token or key in anything the daemon or the converter printed ----
    never = CHIMERA_VALUES + [DAEMON_TOKEN] + [json.loads(v)["password"] for v in rotated.values()
                                               if "password" in json.loads(v)]
    leaked = no_secrets_in("\n".join(outputs), never)
    check(len(outputs) == 2 and not leaked, f"no secret value or token in the daemon's output ({leaked})")
finally:
    kube.stop()
    vault.stop()
    moto.stop()
    s.cleanup()
done()
