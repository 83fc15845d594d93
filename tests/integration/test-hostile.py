#!/usr/bin/env python3
"""Hostile input: configuration values and store answers made to break out of where they
land. Control characters in a remote key, a property or a Vault namespace are refused by
--check, naming the setting; a token with a line break never becomes a second header; a
store's error message with line breaks and terminal escapes is escaped in the log (no
forged line, no escape byte); keys of an extracted secret that would be file names
outside a dir target are refused; a Vault answer of 100,000 nested arrays is refused, not
a crash; bytes that are not UTF-8 reach a file byte-exact and a Kubernetes Secret as
base64. Against a hostile Vault (a small stand-in here: http:// on loopback) that answers
what each case needs and records the headers it gets."""
import base64
import json
import os
import sys
import threading
from http.server import BaseHTTPRequestHandler

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lib import Scratch, check, done, require_daemon, run, skip  # noqa: E402

require_daemon()
import tls  # noqa: E402
from kube_server import KubeServer  # noqa: E402
from standin_http import StandinServer  # noqa: E402

if not tls.have_openssl():
    skip("the openssl command is not installed (needed to make test certificates)")

s = Scratch()
out = s.p("out")
os.makedirs(out)
ESC = "\x1b[2J\x1b[31m"
FORGED = "\nsecretsyncd[info]: written: secret 'forged': all fine\r"
ANSWERS = {}  # path -> (status, body bytes)
HEADERS = []  # the headers of each request: [(name, value)]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def answer(self, status, body):
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_PATCH(self):  # a Kubernetes server-side apply: the object back
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.answer(200, json.dumps(body).encode())

    def do_GET(self):
        HEADERS.append(list(self.headers.items()))
        if self.path.startswith("/api/v1/namespaces/app/secrets"):  # a Secret whose data holds a null
            self.answer(200, json.dumps({"kind": "SecretList", "apiVersion": "v1", "metadata": {"resourceVersion": "7"},
                                         "items": [{"metadata": {"name": "bin", "namespace": "app", "labels": {
                                             "app.kubernetes.io/managed-by": "secretsyncd"}}, "data": {"v": None}}]}).encode())
            return
        if self.path.endswith("/auth/token/lookup-self"):
            status, body = 200, json.dumps({"data": {"ttl": 3600, "renewable": False, "policies": ["x"]}}).encode()
        else:
            status, body = ANSWERS.get(self.path.split("?")[0], (404, b'{"errors":[]}'))
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


vault = StandinServer(Handler)
threading.Thread(target=vault.serve_forever, daemon=True).start()


def cred(name, text):
    path = s.p(name)
    with open(path, "w") as f:
        f.write(text + "\n")
    os.chmod(path, 0o600)
    return path


token = cred("token", "hvs.hostile-test-token")


def vault_conf(secrets, namespace="", token_file=token, name="secretsyncd.conf"):
    ns = f'namespace = "{namespace}";' if namespace else ""
    return s.write_config(name=name, text=f"""
daemon = {{ min_backoff = "100ms"; max_backoff = "200ms"; }};
stores = {{ v = {{ type = "vault"; server = "{vault.url}"; timeout = "5s"; {ns}
                  auth = {{ method = "token"; token_file = "{token_file}"; }}; }}; }};
secrets = ( {secrets} );
""")


def one(key, prop='property = "p";', target=None, name="s"):
    target = target or f'files = ( {{ path = "{out}/{name}"; format = "raw"; key = "v"; }} );'
    return f"""{{ name = "{name}"; store = "v";
  data = ( {{ secret_key = "v"; remote_ref = {{ key = "{key}"; {prop} }}; }} ); {target} }}"""


def clean_log(text, prefix="secretsyncd"):
    """No control character but the line ends, no forged line: each line starts as the
    daemon starts its lines (or, for --check, with the configuration's path)."""
    bad = [c for c in text if (ord(c) < 0x20 and c != "\n") or ord(c) == 0x7f]
    lines = [ln for ln in text.splitlines() if ln and not ln.startswith(prefix)]
    return not bad and not lines


try:
    # --- configuration values with control characters: refused, named
    for what, conf in (
            ("a remote key with a line feed", vault_conf(one("app\\nsecretsyncd[info]: forged"), name="c1.conf")),
            ("a remote key with a carriage return", vault_conf(one("app\\r"), name="c2.conf")),
            ("a property with an escape character", vault_conf(one("app", 'property = "p\\x1b[31m";'), name="c3.conf")),
            ("a Vault namespace with CR LF (a header)",
             vault_conf(one("app"), namespace="team\\r\\nX-Injected: 1", name="c4.conf"))):
        r = run(["-c", conf, "--check"])
        text = r.stdout + r.stderr
        check(r.returncode != 0 and "control character" in text and clean_log(text, s.path),
              f"--check refuses {what}, naming it, escaped ({text.strip()[-160:]!r})")

    r = run(["-c", vault_conf(one("app", name="s\\x1b]0;owned\\x07"), name="c5.conf"), "--check"])
    check(r.returncode != 0 and "control character" in r.stderr and clean_log(r.stdout + r.stderr, s.path),
          f"a secret name with a terminal escape is refused, and the error escaped ({r.stderr.strip()[-120:]!r})")

    # --- a store error message with line breaks and terminal escapes: escaped in the log
    ANSWERS["/v1/secret/data/app"] = (500, json.dumps({"errors": ["boom" + FORGED + ESC + "\x00end"]}).encode())
    r = run(["-c", vault_conf(one("app")), "--once"])
    text = r.stdout + r.stderr
    check(r.returncode != 0 and "boom" in text, "a Vault 500 fails the sync, its message shown")
    check(clean_log(text), f"the hostile message is escaped: no forged line, no control byte ({text[-300:]!r})")
    check("\\x1b" in text or "\\033" in text, "the escape byte is shown as an escape sequence")

    # --- a token with a line break: no second header
    HEADERS.clear()
    bad_token = cred("bad-token", "hvs.first\r\nX-Injected: yes")
    r = run(["-c", vault_conf(one("app"), token_file=bad_token, name="tok.conf"), "--once"])
    injected = [h for req in HEADERS for h in req if h[0].lower() == "x-injected"]
    check(r.returncode != 0 and not injected, f"a token with CR LF is refused, no header injected ({injected})")
    check(clean_log(r.stdout + r.stderr), "and the log stays clean")

    # --- keys of an extracted secret that would leave a dir target
    ANSWERS["/v1/secret/data/dir"] = (200, json.dumps({"data": {"data": {
        "../escape": "x", "ok": "y"}, "metadata": {"version": 1}}}).encode())
    ANSWERS["/v1/secret/data/dir2"] = (200, json.dumps({"data": {"data": {
        "a\nb": "x", "ok": "y"}, "metadata": {"version": 1}}}).encode())
    for path in ("dir", "dir2"):
        conf = vault_conf(f"""{{ name = "d"; store = "v"; data_from = ( {{ extract = {{ key = "{path}"; }}; }} );
          files = ( {{ path = "{out}/d-{path}"; format = "dir"; }} ); }}""", name=f"{path}.conf")
        r = run(["-c", conf, "--once"])
        check(r.returncode != 0 and not os.path.exists(os.path.join(out, "escape"))
              and not os.path.exists(os.path.join(out, f"d-{path}")) and clean_log(r.stdout + r.stderr),
              f"an extracted key that is no file name ({path}) fails the sync, nothing written outside")

    # --- 100,000 nested arrays: refused, not a crash
    ANSWERS["/v1/secret/data/deep"] = (200, b'{"data":{"data":{"p":' + b"[" * 100000 + b"]" * 100000 + b"}}}")
    r = run(["-c", vault_conf(one("deep")), "--once"])
    check(r.returncode == 1 and "malformed" in r.stderr, f"a reply of 100,000 nested arrays is refused ({r.returncode})")

    # --- bytes that are not UTF-8: a raw file byte-exact, a Kubernetes Secret as base64
    raw = b"\xff\xfe\x80 not utf-8 \xc3\x28 \xed\xa0\x80"
    m = tls.make_all(s.p("tls"))
    kube = KubeServer(tls_cert=m.server_cert, tls_key=m.server_key)
    kube.start()
    try:
        USER, TOKEN = "system:serviceaccount:kube-system:secretsyncd", "sa-token-Hostile-1"
        kube.add_user(USER, token=TOKEN)
        kube.grant(USER, ["get", "list", "watch", "create", "patch"], ["secrets"], namespaces=["app"])
        kube.create_namespace("app")
        kc = cred("kubeconfig", f"""apiVersion: v1
kind: Config
clusters: [{{name: c, cluster: {{server: "{kube.url}", certificate-authority: "{m.ca_cert}"}}}}]
users: [{{name: u, user: {{token: {TOKEN}}}}}]
contexts: [{{name: c, context: {{cluster: c, user: u}}}}]
current-context: c""")
        value = "".join("\\x%02x" % b for b in raw)
        conf = s.write_config(name="utf8.conf", text=f"""
stores = {{ demo = {{ type = "fake"; data = ( {{ key = "bin"; value = "{value}"; }} ); }}; }};
kubernetes = {{ kubeconfig = "{kc}"; leader_election = {{ enabled = false; }}; }};
secrets = ( {{ name = "bin"; store = "demo"; data = ( {{ secret_key = "v"; remote_ref = {{ key = "bin"; }}; }} );
   files = ( {{ path = "{out}/bin"; format = "raw"; key = "v"; }} );
   kubernetes = {{ namespace = "app"; name = "bin"; }}; }} );
""")
        r = run(["-c", conf, "--once"])
        with open(os.path.join(out, "bin"), "rb") as f:
            got = f.read()
        check(r.returncode == 0 and got == raw, f"a value that is not UTF-8 reaches a raw file byte-exact ({got!r})")
        obj = kube.get_secret("app", "bin") or {}
        b64 = (obj.get("data") or {}).get("v", "")
        check(base64.b64decode(b64) == got, f"and a Kubernetes Secret as base64 of the same bytes ({b64})")
    finally:
        kube.stop()

    # --- a Kubernetes API whose Secret data holds a null (a hostile or broken server)
    hostile_kube = StandinServer(Handler, tls_cert=m.server_cert, tls_key=m.server_key)
    threading.Thread(target=hostile_kube.serve_forever, daemon=True).start()
    kc = cred("kubeconfig-hostile", f"""apiVersion: v1
kind: Config
clusters: [{{name: c, cluster: {{server: "{hostile_kube.url}", certificate-authority: "{m.ca_cert}"}}}}]
users: [{{name: u, user: {{token: t}}}}]
contexts: [{{name: c, context: {{cluster: c, user: u}}}}]
current-context: c""")
    conf = s.write_config(name="null.conf", text=f"""
stores = {{ demo = {{ type = "fake"; data = ( {{ key = "bin"; value = "v"; }} ); }}; }};
kubernetes = {{ kubeconfig = "{kc}"; leader_election = {{ enabled = false; }}; }};
secrets = ( {{ name = "bin"; store = "demo"; data = ( {{ secret_key = "v"; remote_ref = {{ key = "bin"; }}; }} );
   kubernetes = {{ namespace = "app"; name = "bin"; }}; }} );
""")
    r = run(["-c", conf, "--once"])
    check(r.returncode == 0, f"a listed Secret with a null data value is written over, not a crash "
                             f"(exit {r.returncode}: {r.stderr.strip()[-200:]!r})")
    hostile_kube.shutdown()
finally:
    vault.shutdown()
    s.cleanup()
done()
