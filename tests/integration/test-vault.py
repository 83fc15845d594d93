#!/usr/bin/env python3
"""The Vault store against the stand-in Vault server (HTTPS with a CA made here): every auth
method, KV v1 and v2, versions, extract, namespaces, rotation + SIGUSR1, token renewal and
re-login, 403/404/503/500, broken answers, a wrong CA; and no token, secret_id, JWT or value
in any output."""
import base64
import json
import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lib import Daemon, Scratch, check, done, lc_string, require_daemon, run, skip

require_daemon()
import tls
from vault_server import VaultServer

if not tls.have_openssl():
    skip("openssl command missing (needed to make test certificates)")

s = Scratch()
m = tls.make_all(s.p("tls"))
out = s.p("out")
SECRETS = {"chimera/postgres": {"password": "pg-vault-Pw1"},
           "chimera/redis": {"password": "redis-vault-Pw2"},
           "chimera/minio": {"username": "chimera-admin", "password": "minio-vault-Pw3"},
           "chimera/jwt": {"secret": "jwt-vault-Sec4"},
           "chimera/grafana": {"password": "grafana-vault-Pw5"}}
NEVER = ["pg-vault-Pw1", "redis-vault-Pw2", "minio-vault-Pw3", "jwt-vault-Sec4", "grafana-vault-Pw5",
         "pg-rotated-Pw6"]


def fake_jwt(sub):
    enc = lambda d: base64.urlsafe_b64encode(json.dumps(d).encode()).rstrip(b"=").decode()
    return enc({"alg": "RS256", "typ": "JWT"}) + "." + enc(
        {"iss": "kubernetes/serviceaccount", "sub": sub, "kubernetes.io/serviceaccount/namespace": "chimera",
         "kubernetes.io/serviceaccount/service-account.name": "secretsyncd", "exp": int(time.time()) + 3600}) + ".c2ln"


def cred(name, text):
    path = s.p(name)
    with open(path, "w") as f:
        f.write(text + "\n")
    os.chmod(path, 0o600)
    NEVER.append(text)
    return path


def config(auth, extra_store="", secrets_text=None, daemon="", name="secretsyncd.conf"):
    return s.write_config(name=name, text=f"""
daemon = {{ min_backoff = "200ms"; max_backoff = "1s"; {daemon} }};
stores = {{
  vault-backend = {{ type = "vault"; server = "{vault.url}"; mount = "secret"; kv_version = 2;
                    ca_file = "{m.ca_cert}"; {extra_store} auth = {{ {auth} }}; }};
}};
secrets = ( {secrets_text or chimera_secrets()} );
""")


def chimera_secrets(store="vault-backend"):
    return f"""
  {{ name = "postgres-credentials"; store = "{store}";
     data = ( {{ secret_key = "password"; remote_ref = {{ key = "chimera/postgres"; property = "password"; }}; }} );
     files = ( {{ path = "{out}/postgres.env"; format = "env"; }} ); }},
  {{ name = "minio-credentials"; store = "{store}";
     data_from = ( {{ extract = {{ key = "chimera/minio"; }}; }} );
     files = ( {{ path = "{out}/minio.json"; format = "json"; }} ); }},
  {{ name = "jwt-secret"; store = "{store}";
     data = ( {{ secret_key = "secret"; remote_ref = {{ key = "chimera/jwt"; property = "secret"; }}; }} );
     files = ( {{ path = "{out}/jwt.key"; format = "raw"; key = "secret"; }} ); }}"""


def read(name):
    try:
        with open(os.path.join(out, name)) as f:
            return f.read()
    except FileNotFoundError:
        return None


def clean_out():
    for n in os.listdir(out) if os.path.isdir(out) else []:
        os.unlink(os.path.join(out, n))


def leaks(text):
    return [v for v in NEVER if v in text]


vault = VaultServer(tls_cert=m.server_cert, tls_key=m.server_key, client_ca=m.ca_cert)
vault.start()
try:
    for k, v in SECRETS.items():
        vault.put_secret(k, v)
    vault.set_policy("chimera-read", {"secret/data/chimera/*": ["read"], "kv1/chimera/*": ["read"]})
    token = vault.create_token(policies=["chimera-read"], ttl=3600)["id"]
    token_file = cred("vault-token", token)

    # --- token auth, KV v2
    conf = config(f'method = "token"; token_file = "{token_file}";')
    r = run(["-c", conf, "--once"])
    check(r.returncode == 0, f"token auth, KV v2: --once exits 0 ({r.stderr[-300:] if r.returncode else ''})")
    check(read("postgres.env") == 'password="pg-vault-Pw1"\n', "property from a KV v2 secret into env")
    check(json.loads(read("minio.json")) == SECRETS["chimera/minio"], "data_from extract of a KV v2 secret")
    check(read("jwt.key") == "jwt-vault-Sec4", "raw target from Vault")
    check("version 1" in r.stderr and "auth-ok" in r.stderr, "version read and auth-ok reported")
    st = vault.stats()
    check(st["lookups"] >= 1, "the token was looked up after login")
    check(st["connections"] <= 3, f"connections reused ({st['connections']} for 4 requests)")
    all_output = r.stdout + r.stderr

    # --- versions: pin version 1 after a rotation
    vault.put_secret("chimera/postgres", {"password": "pg-rotated-Pw6"})
    pinned = f"""{{ name = "pinned"; store = "vault-backend";
      data = ( {{ secret_key = "p"; remote_ref = {{ key = "chimera/postgres"; property = "password"; version = "1"; }}; }} );
      files = ( {{ path = "{out}/pinned"; format = "raw"; key = "p"; }} ); }},
    {{ name = "latest"; store = "vault-backend";
      data = ( {{ secret_key = "p"; remote_ref = {{ key = "chimera/postgres"; property = "password"; }}; }} );
      files = ( {{ path = "{out}/latest"; format = "raw"; key = "p"; }} ); }}"""
    conf = config(f'method = "token"; token_file = "{token_file}";', secrets_text=pinned)
    r = run(["-c", conf, "--once"])
    check(r.returncode == 0 and read("pinned") == "pg-vault-Pw1" and read("latest") == "pg-rotated-Pw6",
          "remote_ref.version reads an older KV v2 version; without it the latest")
    check("version 2" in r.stderr, "the latest version number is reported")
    all_output += r.stderr

    # --- KV v1
    vault.add_mount("kv1", version=1)
    vault.put_secret("chimera/redis", SECRETS["chimera/redis"], mount="kv1")
    kv1 = f"""{{ name = "redis-credentials"; store = "v1";
      data = ( {{ secret_key = "password"; remote_ref = {{ key = "chimera/redis"; property = "password"; }}; }} );
      files = ( {{ path = "{out}/redis"; format = "raw"; key = "password"; }} ); }}"""
    conf = s.write_config(f"""
stores = {{ v1 = {{ type = "vault"; server = "{vault.url}"; mount = "kv1"; kv_version = 1; ca_file = "{m.ca_cert}";
                   auth = {{ method = "token"; token_file = "{token_file}"; }}; }}; }};
secrets = ( {kv1} );
""")
    r = run(["-c", conf, "--once"])
    check(r.returncode == 0 and read("redis") == "redis-vault-Pw2", "KV v1 read")
    all_output += r.stderr

    # --- namespace
    vault.put_secret("chimera/postgres", {"password": "pg-vault-Pw1"}, namespace="team-a")
    vault.set_policy("ns-read", {"secret/data/*": ["read"]})
    ns_token = vault.create_token(policies=["ns-read"], ttl=3600, namespace="team-a")["id"]
    ns_token_file = cred("ns-token", ns_token)
    conf = config(f'method = "token"; token_file = "{ns_token_file}";', extra_store='namespace = "team-a";',
                  secrets_text=chimera_secrets().split("},\n  { name = \"minio")[0] + "}")
    r = run(["-c", conf, "--once"])
    check(r.returncode == 0 and "team-a" in vault.stats()["namespaces_seen"],
          "namespace: X-Vault-Namespace sent, read from that namespace")

    # --- approle, kubernetes, jwt, cert logins
    sid_file = cred("secret-id", "approle-secret-id-XYZ")
    vault.add_approle("chimera", role_id="role-id-chimera", secret_id="approle-secret-id-XYZ",
                      policies=["chimera-read"], ttl=600)
    k8s_jwt = fake_jwt("system:serviceaccount:chimera:secretsyncd")
    k8s_file = cred("sa-token", k8s_jwt)
    vault.add_kubernetes_role("chimera-role", jwt=k8s_jwt, policies=["chimera-read"], ttl=600)
    oidc_jwt = fake_jwt("ci-runner")
    jwt_file = cred("jwt-token", oidc_jwt)
    vault.add_jwt_role("chimera-ci", jwt=oidc_jwt, policies=["chimera-read"], ttl=600)
    vault.add_cert_role("chimera-node", certificate=m.client_cert, policies=["chimera-read"], ttl=600)
    methods = {
        "approle": f'method = "approle"; role_id = "role-id-chimera"; secret_id_file = "{sid_file}";',
        "kubernetes": f'method = "kubernetes"; role = "chimera-role"; token_file = "{k8s_file}";',
        "jwt": f'method = "jwt"; role = "chimera-ci"; token_file = "{jwt_file}";',
        "cert": f'method = "cert"; name = "chimera-node"; cert_file = "{m.client_cert}"; key_file = "{m.client_key}";',
    }
    for method, auth in methods.items():
        clean_out()
        vault.reset_stats()
        r = run(["-c", config(auth), "--once"])
        st = vault.stats()
        check(r.returncode == 0 and read("jwt.key") == "jwt-vault-Sec4" and st["logins"].get(method, 0) == 1,
              f"{method} login: one login, secrets written ({r.stderr[-200:] if r.returncode else 'ok'})")
        all_output += r.stdout + r.stderr

    # the auth `mount`: the login goes to auth/<mount>/login; the method's default mount has
    # no such role and must not be asked
    edge_jwt = fake_jwt("system:serviceaccount:chimera:edge")
    edge_file = cred("edge-sa-token", edge_jwt)
    vault.add_kubernetes_role("edge-role", jwt=edge_jwt, policies=["chimera-read"], ttl=600, mount="k8s-edge")
    clean_out()
    vault.reset_stats()
    r = run(["-c", config(f'method = "kubernetes"; mount = "k8s-edge"; role = "edge-role"; '
                          f'token_file = "{edge_file}";'), "--once"])
    logins = vault.stats()["logins"]
    check(r.returncode == 0 and read("jwt.key") == "jwt-vault-Sec4" and logins == {"k8s-edge": 1},
          f"auth mount = \"k8s-edge\": one login at auth/k8s-edge/login, none elsewhere ({logins}"
          + (f", {r.stderr[-300:]!r})" if r.returncode else ")"))
    all_output += r.stdout + r.stderr

    # one remote key read once per sync, however many data entries take properties of it
    both = f"""{{ name = "minio-pair"; store = "vault-backend";
      data = ( {{ secret_key = "user"; remote_ref = {{ key = "chimera/minio"; property = "username"; }}; }},
               {{ secret_key = "pass"; remote_ref = {{ key = "chimera/minio"; property = "password"; }}; }} );
      files = ( {{ path = "{out}/minio-pair.env"; format = "env"; }} ); }}"""
    vault.reset_stats()
    r = run(["-c", config(f'method = "token"; token_file = "{token_file}";', secrets_text=both), "--once"])
    reads = vault.stats()["requests"].get("/v1/secret/data/chimera/minio", 0)
    check(r.returncode == 0 and read("minio-pair.env") == 'pass="minio-vault-Pw3"\nuser="chimera-admin"\n'
          and reads == 1, f"two data entries of one remote key: one read at Vault ({reads}), both values written")
    all_output += r.stdout + r.stderr

    # wrong secret_id: auth-failed, names the method and mount, no secret_id in output
    bad_sid = cred("bad-secret-id", "wrong-secret-id-QQQ")
    r = run(["-c", config(f'method = "approle"; role_id = "role-id-chimera"; secret_id_file = "{bad_sid}";'),
             "--once"])
    check(r.returncode == 1 and "auth-failed" in r.stderr and "auth/approle/login" in r.stderr,
          "a refused login is auth-failed, naming the method's path")
    all_output += r.stderr

    # --- failures, each leaving the last good files untouched
    clean_out()
    good = config(f'method = "token"; token_file = "{token_file}";', name="good.conf")
    r = run(["-c", good, "--once"])
    check(r.returncode == 0, "baseline for the failure cases")
    before = read("postgres.env")

    def failing(what, expect, setup, teardown=lambda: None, all_fail=False):
        global all_output
        for name in ("minio.json", "jwt.key"):
            os.unlink(os.path.join(out, name))
        setup()
        try:
            r = run(["-c", good, "--once"], timeout=90)
        finally:
            teardown()
        # only the secret whose read was broken fails and the others are written; a sealed
        # Vault fails every secret and writes nothing
        failed = [line for line in r.stderr.splitlines() if "cannot fetch" in line]
        if all_fail:
            others_ok = len(failed) == 3 and all(expect in line for line in failed) \
                and read("minio.json") is None and read("jwt.key") is None
        else:
            others_ok = len(failed) == 1 and "'chimera/postgres'" in failed[0] \
                and read("minio.json") is not None and read("jwt.key") == "jwt-vault-Sec4"
        check(r.returncode == 1 and expect in r.stderr and read("postgres.env") == before and others_ok,
              f"{what}: exit 1, says '{expect}', last good file untouched, " +
              ("every secret failed" if all_fail else "the other secrets written") +
              ("" if r.returncode == 1 and expect in r.stderr and others_ok else f" [{r.stderr[-600:]!r}]"))
        if all_fail:  # put the other files back for the next case
            run(["-c", good, "--once"])
        all_output += r.stderr
        return r

    vault.set_policy("narrow", {"secret/data/other/*": ["read"]})
    narrow = vault.create_token(policies=["narrow"], ttl=3600)["id"]
    narrow_file = cred("narrow-token", narrow)
    vault.reset_stats()
    r = run(["-c", config(f'method = "token"; token_file = "{narrow_file}";'), "--once"])
    check(r.returncode == 1 and "permission denied" in r.stderr and "secret/data/chimera/postgres" in r.stderr
          and "policies" in r.stderr, "403: permission denied, the path and a hint about the policy")
    check(vault.stats()["lookups"] >= 2, "a 403 on read causes one fresh login (token looked up again)")
    all_output += r.stderr
    failing("404", "not found", lambda: vault.add_fault("secret/data/chimera/postgres", status=404, count=-1),
            vault.clear_faults)
    failing("503 sealed", "sealed", vault.seal, vault.unseal, all_fail=True)
    failing("500", "HTTP 500", lambda: vault.add_fault("secret/data/chimera/postgres", status=500, count=-1),
            vault.clear_faults)
    failing("truncated answer", "postgres",
            lambda: vault.add_fault("secret/data/chimera/postgres", truncate=True, count=-1), vault.clear_faults)
    failing("oversize answer", "too large",
            lambda: vault.add_fault("secret/data/chimera/postgres", oversize=True, count=-1), vault.clear_faults)
    failing("malformed JSON", "malformed",
            lambda: vault.add_fault("secret/data/chimera/postgres", status=200, body="{not json", count=-1),
            vault.clear_faults)

    # redirects are not followed (a 307 to elsewhere is a failure, not a second request)
    vault.reset_stats()
    failing("no redirects", "HTTP 307",
            lambda: vault.add_fault("secret/data/chimera/postgres", status=307, count=-1, body="",
                                    headers={"Location": vault.url + "/v1/secret/data/chimera/jwt"}),
            vault.clear_faults)
    jwt_reads = vault.stats()["requests"].get("/v1/secret/data/chimera/jwt", 0)
    check(jwt_reads == 1, f"the redirect target was not requested by the redirect ({jwt_reads} reads)")

    # a slow answer: the request times out (timeout = "1s")
    slow = s.write_config(open(good).read().replace('kv_version = 2;', 'kv_version = 2; timeout = "1s";'),
                          name="slow.conf")
    vault.add_fault("secret/data/chimera/postgres", delay_ms=3000, count=-1)
    t0 = time.monotonic()
    r = run(["-c", slow, "--once"])
    vault.clear_faults()
    check(r.returncode == 1 and "timed out" in r.stderr and read("postgres.env") == before
          and time.monotonic() - t0 < 3, "a slow answer times out at the store's timeout, last good file untouched"
          + ("" if r.returncode == 1 and "timed out" in r.stderr else f" [{r.returncode} {r.stderr[-400:]!r}]"))
    all_output += r.stderr

    # server down: connection refused, clear message, nothing damaged
    import socket
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    dead_port = sock.getsockname()[1]
    sock.close()
    dead = s.write_config(open(good).read().replace(vault.url, f"https://127.0.0.1:{dead_port}"), name="dead.conf")
    r = run(["-c", dead, "--once"])
    check(r.returncode == 1 and read("postgres.env") == before and
          ("refused" in r.stderr.lower() or "connect" in r.stderr.lower()),
          "server down: the sync fails naming the connection failure, last good file untouched")
    all_output += r.stderr

    # wrong CA: nothing written at all
    clean_out()
    r = run(["-c", config(f'method = "token"; token_file = "{token_file}";').replace(m.ca_cert, m.other_ca_cert)
             if False else s.write_config(open(good).read().replace(m.ca_cert, m.other_ca_cert), name="wrongca.conf"),
             "--once"])
    check(r.returncode == 1 and not os.listdir(out) and ("certificate" in r.stderr.lower() or "TLS" in r.stderr),
          f"wrong CA: TLS verification fails, nothing written ({r.stderr[-200:]!r})")
    all_output += r.stderr

    # ca_pem: the CA as PEM text in the configuration (ESO's caBundle), instead of ca_file
    clean_out()
    with open(m.ca_cert) as f:
        pem = f.read()
    text = open(good).read().replace(f'ca_file = "{m.ca_cert}";', f"ca_pem = {lc_string(pem)};")
    r = run(["-c", s.write_config(text, name="capem.conf"), "--once"])
    check("ca_pem" in text and r.returncode == 0 and (read("postgres.env") or "").startswith('password="pg-'),
          "ca_pem: an inline CA bundle verifies the server" + ("" if r.returncode == 0 else f" ({r.stderr[-200:]!r})"))
    with open(m.other_ca_cert) as f:
        r = run(["-c", s.write_config(text.replace(pem.strip().replace("\n", "\\n"), f.read().strip().replace("\n", "\\n")),
                                      name="capem-wrong.conf"), "--once"])
    check(r.returncode == 1 and "certificate" in r.stderr.lower(), "ca_pem: the wrong CA fails verification")
    both = text.replace("ca_pem =", f'ca_file = "{m.ca_cert}"; ca_pem =')
    r = run(["-c", s.write_config(both, name="capem-both.conf"), "--check-config"])
    check(r.returncode == 2 and "set 'ca_file' or 'ca_pem', not both" in r.stderr, "ca_file and ca_pem together: refused")
    all_output += r.stderr

    # plain http:// works only to a loopback address, with a warning; elsewhere it is refused
    plain = VaultServer()
    plain.start()
    try:
        plain.put_secret("chimera/jwt", SECRETS["chimera/jwt"])
        plain_tok = cred("plain-token", plain.create_token(policies=["root"], ttl=600)["id"])
        jwt_only = chimera_secrets().split("{ name = \"jwt-secret\"")[1]
        conf = s.write_config(f"""
stores = {{ p = {{ type = "vault"; server = "{plain.url}"; auth = {{ method = "token"; token_file = "{plain_tok}"; }}; }}; }};
secrets = ( {{ name = "jwt-secret" {jwt_only.replace('"vault-backend"', '"p"')} );
""", name="plain.conf")
        clean_out()
        r = run(["-c", conf, "--once"])
        check(r.returncode == 0 and read("jwt.key") == "jwt-vault-Sec4" and "plain http://" in r.stderr,
              "plain http:// to 127.0.0.1 works, with a warning" + ("" if r.returncode == 0 else r.stderr[-300:]))
        r = run(["-c", s.write_config(open(conf).read().replace(plain.url, "http://vault.example.com:8200"),
                                      name="plain2.conf"), "--check-config"])
        check(r.returncode == 2 and "https://" in r.stderr, "plain http:// to a non-loopback server is refused")
        all_output += r.stderr
    finally:
        plain.stop()

    # --- daemon: rotation + SIGUSR1, token renewal, fresh login at max TTL, expiry. The
    # refresh interval is long: only SIGUSR1 makes the daemon read again.
    clean_out()
    vault.put_secret("chimera/postgres", {"password": "pg-vault-Pw1"})
    vault.add_approle("short", role_id="role-id-short", secret_id="approle-secret-id-XYZ",
                      policies=["chimera-read"], ttl=3, max_ttl=7)
    vault.reset_stats()
    conf = config(f'method = "approle"; role_id = "role-id-short"; secret_id_file = "{sid_file}";',
                  daemon='refresh_interval = "1h";')
    d = Daemon(conf, s)
    try:
        check(d.wait_log("first round done", timeout=20), "daemon: first round written")
        vault.put_secret("chimera/postgres", {"password": "pg-rotated-Pw6"})
        time.sleep(1.5)
        check("pg-rotated-Pw6" not in (read("postgres.env") or ""), "without SIGUSR1 the rotation waits")
        d.signal(signal.SIGUSR1)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and "pg-rotated-Pw6" not in (read("postgres.env") or ""):
            time.sleep(0.1)
        check("pg-rotated-Pw6" in (read("postgres.env") or ""), "rotation picked up on SIGUSR1")
        for _ in range(9):  # reads across renewals and re-logins
            time.sleep(1)
            d.signal(signal.SIGUSR1)
        time.sleep(0.5)
        st = vault.stats()
        check(st["renewals"] >= 1, f"the token was renewed (renew-self x{st['renewals']})")
        check(st["logins"].get("approle", 0) >= 2, f"a fresh login when the TTL stopped growing "
              f"(logins x{st['logins'].get('approle', 0)})")
        check("failed" not in d.output(), "no sync failed across renewals and re-logins")
        # a revoked token: the next read gets 403, one re-login, and it goes on
        for t in vault.stats()["tokens_seen"]:
            vault.revoke_token(t)
        n = d.output().count("auth-ok")
        check(d.wait_log("auth-ok", count=n + 1, timeout=5), "a revoked token is replaced by a fresh login")
        # (a token revoked while a login was being looked up makes that one sync fail and
        # retry with backoff: what must hold is that reads succeed again)
        n = d.output().count("fetched 'chimera/jwt'")
        d.signal(signal.SIGUSR1)
        check(d.wait_log("fetched 'chimera/jwt'", count=n + 1, timeout=6), "reads succeed again after the re-login")
    finally:
        d.stop()
        all_output += d.output()

    # --- credential files are read at each login: rotate the token file and the secret_id
    # file, make the old credentials worthless at Vault, and the next login must succeed
    clean_out()
    vault.put_secret("chimera/postgres", {"password": "pg-vault-Pw1"})
    vault.reset_stats()
    rot_token_file = cred("rot-token", vault.create_token(policies=["chimera-read"], ttl=3600)["id"])
    rot_sid_file = cred("rot-secret-id", "rot-secret-id-AAA")
    vault.add_approle("rot", role_id="role-id-rot", secret_id="rot-secret-id-AAA", policies=["chimera-read"])
    pg = 'data = ( { secret_key = "p"; remote_ref = { key = "chimera/postgres"; property = "password"; }; } );'
    conf = s.write_config(name="rotate.conf", text=f"""
daemon = {{ refresh_interval = "1h"; min_backoff = "200ms"; max_backoff = "1s"; }};
stores = {{
  by-token = {{ type = "vault"; server = "{vault.url}"; ca_file = "{m.ca_cert}";
               auth = {{ method = "token"; token_file = "{rot_token_file}"; }}; }};
  by-approle = {{ type = "vault"; server = "{vault.url}"; ca_file = "{m.ca_cert}";
                 auth = {{ method = "approle"; role_id = "role-id-rot"; secret_id_file = "{rot_sid_file}"; }}; }};
}};
secrets = (
  {{ name = "t"; store = "by-token"; {pg} files = ( {{ path = "{out}/t"; format = "raw"; key = "p"; }} ); }},
  {{ name = "a"; store = "by-approle"; {pg} files = ( {{ path = "{out}/a"; format = "raw"; key = "p"; }} ); }}
);
""")
    d = Daemon(conf, s)
    try:
        check(d.wait_log("first round done", timeout=20) and read("t") == read("a") == "pg-vault-Pw1",
              "credential rotation: first round with the first token and secret_id")
        new_token = vault.create_token(policies=["chimera-read"], ttl=3600)["id"]
        cred("rot-token", new_token)
        cred("rot-secret-id", "rot-secret-id-BBB")
        vault.add_approle("rot", role_id="role-id-rot", secret_id="rot-secret-id-BBB", policies=["chimera-read"])
        for t in vault.stats()["tokens_seen"]:
            vault.revoke_token(t)
        vault.put_secret("chimera/postgres", {"password": "pg-rotated-Pw6"})
        d.signal(signal.SIGUSR1)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not read("t") == read("a") == "pg-rotated-Pw6":
            time.sleep(0.1)
        check(read("t") == "pg-rotated-Pw6" and new_token in vault.stats()["tokens_seen"],
              "the rewritten token file is read at the next login")
        check(read("a") == "pg-rotated-Pw6", "the rewritten secret_id file is read at the next login")
    finally:
        d.stop()
        all_output += d.output()

    check(not leaks(all_output), f"no token, secret_id, JWT or secret value in any output ({leaks(all_output)})")
finally:
    vault.stop()
    s.cleanup()
done()
