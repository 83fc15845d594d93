#!/usr/bin/env python3
"""How the daemon reaches the Kubernetes API, against the stand-in API server: a kubeconfig
with a tokenFile (read again at each request, so a rotated token is picked up), with an
inline client certificate and key (k3s's own kubeconfig), a refused token (401), an exec
plugin (refused with the kubeconfig's file and line), and the in-cluster service account
(KUBERNETES_SERVICE_HOST and the mounted token, in a mount namespace of its own)."""
import base64
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lib import DAEMON, Scratch, check, done, fake_store, require_daemon, run, skip

require_daemon()
import tls
from kube_server import KubeServer

if not tls.have_openssl():
    skip("openssl command missing (needed to make test certificates)")

s = Scratch()
m = tls.make_all(s.p("tls"))
client_cert, client_key = tls.make_client_cert(s.p("tls"), m.ca, name="node", common_name="system:node:edge-1")
SA = "system:serviceaccount:kube-system:secretsyncd"
TOKENS = ["tok-first-8c1e", "tok-rotated-2b7d", "tok-incluster-55aa"]


def config(kubeconfig_line):
    return s.write_config(f"""
daemon = {{ min_backoff = "200ms"; max_backoff = "500ms"; }};
stores = {{ {fake_store()} }};
kubernetes = {{ {kubeconfig_line} leader_election = {{ enabled = false; }}; }};
secrets = ( {{ name = "redis-credentials"; store = "demo";
               data = ( {{ secret_key = "password"; remote_ref = {{ key = "chimera/redis-password"; property = "password"; }}; }} );
               kubernetes = {{ namespace = "chimera"; name = "redis-secret"; }}; }} );
""")


def kubeconfig(name, user):
    path = s.p(name)
    with open(path, "w") as f:
        f.write(f"""apiVersion: v1
kind: Config
clusters:
- name: edge
  cluster:
    server: {kube.url}
    certificate-authority-data: {base64.b64encode(open(m.ca_cert, "rb").read()).decode()}
contexts:
- name: edge
  context: {{ cluster: edge, user: u }}
current-context: edge
users:
- name: u
  user:
{user}""")
    os.chmod(path, 0o600)
    return path


def write_token(path, token):
    with open(path, "w") as f:
        f.write(token + "\n")
    os.chmod(path, 0o600)


def written_by(user):
    return kube.count(verb=["create", "patch"], resource="secrets", user=user)


kube = KubeServer(tls_cert=m.server_cert, tls_key=m.server_key, client_ca=m.ca_cert)
kube.start()
outputs = ""
try:
    kube.create_namespace("chimera")
    kube.add_user(SA, token=TOKENS[0])
    for user in (SA, "system:node:edge-1"):
        kube.grant(user, ["get", "list", "watch", "create", "patch"], ["secrets"], namespaces=["chimera"])

    # --- tokenFile, read at each use
    token_file = s.p("token")
    write_token(token_file, TOKENS[0])
    conf = config(f'kubeconfig = "{kubeconfig("kc-tokenfile", f"    tokenFile: {token_file}")}";')
    r = run(["-c", conf, "--once"])
    outputs += r.stderr
    check(r.returncode == 0 and written_by(SA) == 1, "a tokenFile authenticates" + ("" if r.returncode == 0 else f" ({r.stderr[-300:]})"))
    kube.set_token(SA, TOKENS[1])
    write_token(token_file, TOKENS[1])
    kube.delete_object("secrets", "redis-secret", "chimera")
    r = run(["-c", conf, "--once"])
    outputs += r.stderr
    check(r.returncode == 0 and written_by(SA) == 2, "a rotated token in the tokenFile is used")

    # --- a refused token: 401, named
    write_token(token_file, "tok-revoked")
    kube.delete_object("secrets", "redis-secret", "chimera")
    r = run(["-c", conf, "--once"])
    outputs += r.stderr
    check(r.returncode == 1 and "cannot write Kubernetes Secret chimera/redis-secret" in r.stderr
          and "Unauthorized" in r.stderr, f"a refused token fails the sync with the API's answer ({r.stderr[-200:]!r})")

    # --- k3s's kubeconfig: client certificate and key inline
    cert = base64.b64encode(open(client_cert, "rb").read()).decode()
    key = base64.b64encode(open(client_key, "rb").read()).decode()
    user = f"    client-certificate-data: {cert}\n    client-key-data: {key}\n"
    conf = config(f'kubeconfig = "{kubeconfig("kc-cert", user)}";')
    r = run(["-c", conf, "--once"])
    outputs += r.stderr
    check(r.returncode == 0 and written_by("system:node:edge-1") == 1,
          "an inline client certificate authenticates (user = its CN)" + ("" if r.returncode == 0 else f" ({r.stderr[-300:]})"))

    # --- an exec plugin: refused, with the kubeconfig's line
    path = kubeconfig("kc-exec", "    exec:\n      apiVersion: client.authentication.k8s.io/v1\n      command: aws\n")
    r = run(["-c", config(f'kubeconfig = "{path}";'), "--once"])
    outputs += r.stderr
    check(r.returncode == 1 and f"{path}:15: user \"u\": exec credential plugins are not supported" in r.stderr,
          "an exec plugin is refused, naming the kubeconfig and line")

    # --- the in-cluster service account, mounted where Kubernetes mounts it
    if os.geteuid() != 0 or subprocess.run(["unshare", "--mount", "true"], capture_output=True).returncode != 0:
        skip("the in-cluster case needs root and unshare --mount")
    sa_dir = s.p("serviceaccount")
    os.makedirs(sa_dir)
    write_token(os.path.join(sa_dir, "token"), TOKENS[2])
    with open(os.path.join(sa_dir, "ca.crt"), "w") as f:
        f.write(open(m.ca_cert).read())
    with open(os.path.join(sa_dir, "namespace"), "w") as f:
        f.write("kube-system")
    kube.add_token(SA, TOKENS[2])
    kube.delete_object("secrets", "redis-secret", "chimera")
    conf = config("")
    env = {k: v for k, v in os.environ.items() if k not in ("KUBECONFIG", "NOTIFY_SOCKET", "JOURNAL_STREAM")}
    env.update(KUBERNETES_SERVICE_HOST="127.0.0.1", KUBERNETES_SERVICE_PORT=str(kube.port))
    mount = "/var/run/secrets/kubernetes.io/serviceaccount"
    r = subprocess.run(["unshare", "--mount", "sh", "-c",
                        f'mkdir -p {mount} 2>/dev/null || mount -t tmpfs tmpfs /var/run; mkdir -p {mount} && '
                        f'mount --bind "$0" {mount} && exec "$@"', sa_dir, DAEMON, "-c", conf, "--once"],
                       capture_output=True, text=True, env=env, timeout=60)
    outputs += r.stderr
    check(r.returncode == 0 and kube.secret_data("chimera", "redis-secret") == {"password": "redis-s3cret"},
          "the in-cluster service account (KUBERNETES_SERVICE_HOST, mounted token and CA)"
          + ("" if r.returncode == 0 else f" ({r.stderr[-300:]})"))
    check(not os.path.exists(mount) or not os.listdir(mount) or open(os.path.join(mount, "token")).read().strip() != TOKENS[2],
          "the host's /var/run is untouched")
    check(not [t for t in TOKENS if t in outputs] and "redis-s3cret" not in outputs, "no token or value in any output")
finally:
    kube.stop()
    s.cleanup()
done()
