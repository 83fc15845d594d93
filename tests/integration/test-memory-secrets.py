#!/usr/bin/env python3
"""No secret in the memory of the idle daemon. After a round of syncs from Vault (over TLS,
token auth), from AWS (moto), and from Vault into Kubernetes Secrets on the stand-in API
server (the values also counted in base64, as a Secret's data holds them), between refreshes, the whole memory of the daemon is read
as root reads it, through /proc/PID/maps and /proc/PID/mem (what an attacker with root, or
gcore, sees), and the distinctive random secret values and credentials are counted:

  * secret values: none anywhere (what the daemon freed was wiped first: its own buffers,
    libcurl's, OpenSSL's and json-c's);
  * credentials the daemon keeps for its next request (the Vault token, the AWS secret key):
    none outside the memory marked MADV_DONTDUMP, which a core dump leaves out;
  * with gdb installed, a core taken with gcore holds neither.

Also: a process of another user (nobody) can read neither /proc/PID/mem nor /proc/PID/environ.
Prints the counts it finds, as figures."""
import base64
import os
import re
import secrets
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lib import DAEMON, NotifySocket, Scratch, check, done, require_daemon, skip

require_daemon()
from moto_server import Moto, have_moto, rerun_with_moto

if not have_moto():
    rerun_with_moto(__file__)
import tls
from kube_server import KubeServer
from vault_server import VaultServer

if os.geteuid() != 0:
    skip("needs root: it reads the daemon's memory through /proc/PID/mem")
if not tls.have_openssl():
    skip("openssl command missing (needed to make test certificates)")
for k in list(os.environ):
    if k.startswith("AWS_"):
        del os.environ[k]

N = 20
s = Scratch()
os.environ["HOME"] = s.path
m = tls.make_all(s.p("tls"))
out = s.p("out")


def value(prefix):
    return f"{prefix}-{secrets.token_hex(12)}"


def cred(name, text):
    path = s.p(name)
    with open(path, "w") as f:
        f.write(text + "\n")
    os.chmod(path, 0o600)
    return path


def memory(pid):
    """[(start, dontdump, bytes)] of every readable mapping, read through /proc/PID/mem."""
    regions, cur = [], None
    with open(f"/proc/{pid}/smaps") as f:
        for line in f:
            h = re.match(r"([0-9a-f]+)-([0-9a-f]+) (\S+) \S+ \S+ \S+\s*(.*)$", line)
            if h:
                cur = {"start": int(h[1], 16), "end": int(h[2], 16), "perms": h[3], "name": h[4], "dd": False}
                regions.append(cur)
            elif line.startswith("VmFlags:"):
                cur["dd"] = " dd" in line
    found = []
    with open(f"/proc/{pid}/mem", "rb", buffering=0) as mem:
        for r in regions:
            if "r" not in r["perms"] or r["name"] in ("[vvar]", "[vsyscall]") or r["end"] - r["start"] > 1 << 36:
                continue
            try:
                mem.seek(r["start"])
                found.append((r["start"], r["dd"], mem.read(r["end"] - r["start"])))
            except OSError:
                pass
    return found


def sanitized(pid):
    """Whether the daemon runs under AddressSanitizer (terabytes of shadow memory mapped):
    its quarantine keeps freed memory unused and its instrumented stack frames differ, so
    what the shipped build leaves behind is not what this one shows."""
    with open(f"/proc/{pid}/maps") as f:
        return any(int(b, 16) - int(a, 16) > 1 << 36 for a, b in (line.split()[0].split("-") for line in f))


def count(regions, needles, dontdump=None):
    return sum(data.count(n.encode()) for _, dd, data in regions if dontdump is None or dd == dontdump
               for n in needles)


def gcore(pid, needles):
    """Copies of needles in a core taken with gdb's gcore; None without gdb."""
    if subprocess.run(["sh", "-c", "command -v gcore"], capture_output=True).returncode != 0:
        return None
    core = s.p("core")
    r = subprocess.run(["gcore", "-o", core, str(pid)], capture_output=True, text=True, timeout=120)
    path = f"{core}.{pid}"
    if r.returncode != 0 or not os.path.exists(path):
        return f"gcore failed: {r.stderr[-200:]}"
    with open(path, "rb") as f:
        data = f.read()
    os.unlink(path)
    return sum(data.count(n.encode()) for n in needles)


def foreign_reads(pid):
    """What the user nobody manages to read of the daemon's memory and environment."""
    got = []
    for what in ("mem", "environ"):
        r = subprocess.run(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "dd",
                            f"if=/proc/{pid}/{what}", "bs=4096", "count=1", "status=none", "of=/dev/null"],
                           capture_output=True, text=True)
        if r.returncode == 0:
            got.append(what)
    return got


def round_(name, conf, values, credentials, in_cluster=None, kept=False):
    """Starts the daemon, waits for its first round and a moment of idleness, and counts."""
    notify = NotifySocket(s)
    env = {k: v for k, v in os.environ.items() if k != "JOURNAL_STREAM"}
    env["NOTIFY_SOCKET"] = notify.path
    log = open(s.p(f"{name}.log"), "w")
    p = subprocess.Popen([DAEMON, "-c", conf], stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        ready = notify.wait_for(lambda msg: msg.get("READY") == "1", 30)
        check(ready is not None, f"{name}: the daemon finished its first round")
        written = sum(1 for i in range(N) if os.path.exists(os.path.join(out, f"{name}-{i}")))
        check(written == N, f"{name}: all {N} secrets written ({written})")
        if in_cluster:
            check(in_cluster(), f"{name}: every Kubernetes Secret holds its value")
        time.sleep(1)  # idle, between refreshes
        regions = memory(p.pid)
        total = sum(len(d) for _, _, d in regions)
        n_values = count(regions, values)
        kept = count(regions, credentials, dontdump=True)
        exposed = count(regions, credentials, dontdump=False)
        per_value = sum(1 for v in values if count(regions, [v]))
        print(f"figures: {name}: {total // 1024} KiB of memory read; {per_value} of {len(values)} secret values (or their base64) found, "
              f"{n_values} copies; credentials: {exposed} copies a core dump would hold, {kept} in "
              f"MADV_DONTDUMP memory")
        if sanitized(p.pid):
            print(f"# {name}: AddressSanitizer build: counts not checked (its quarantine keeps freed memory unused)")
            core = None
        else:
            if kept:
                # The Kubernetes sink keeps each Secret's data, to repair an edit or a deletion
                # without fetching again: in MADV_DONTDUMP memory only, as credentials.
                outside = count(regions, values, dontdump=False)
                check(outside == 0, f"{name}: the data kept for repairs lies only in MADV_DONTDUMP memory "
                      f"({outside} copies outside it)")
            else:
                check(n_values == 0, f"{name}: no secret value in the memory of the idle daemon ({n_values} copies of "
                      f"{per_value} values)")
            check(exposed == 0, f"{name}: no credential outside MADV_DONTDUMP memory ({exposed} copies)")
            core = gcore(p.pid, values + credentials)
        if core is None:
            print(f"# {name}: no core dump taken (gdb's gcore missing, or a sanitizer build)")
            check(sanitized(p.pid) or os.environ.get("SECRETSYNCD_NO_SKIP") != "1",
                  f"{name}: gdb's gcore is there to take the core (SECRETSYNCD_NO_SKIP=1)")
        else:
            check(core == 0, f"{name}: a core taken with gcore holds no secret value and no credential ({core})")
        check(not foreign_reads(p.pid), f"{name}: the user nobody can read neither /proc/PID/mem nor environ "
              f"({foreign_reads(p.pid)})")
    finally:
        p.terminate()
        p.wait(timeout=30)
        log.close()
        notify.close()
        os.unlink(notify.path)
    with open(s.p(f"{name}.log")) as f:
        text = f.read()
    check(not [v for v in values + credentials if v in text], f"{name}: no secret or credential in the log")


def raw_secrets(name, store, key_of, kube=False):
    target = lambda i: f'kubernetes = {{ namespace = "app"; name = "{name}-{i}"; }};' if kube else ""
    return ", ".join(f"""{{ name = "{name}-{i}"; store = "{store}";
      data = ( {{ secret_key = "v"; remote_ref = {{ {key_of(i)} }}; }} );
      files = ( {{ path = "{out}/{name}-{i}"; format = "raw"; key = "v"; }} ); {target(i)} }}""" for i in range(N))


vault = VaultServer(tls_cert=m.server_cert, tls_key=m.server_key, client_ca=m.ca_cert)
vault.start()
moto = None
try:
    values = [value("vaultsecret") for _ in range(N)]
    for i, v in enumerate(values):
        vault.put_secret(f"app/s{i}", {"password": v, "user": f"user{i}"})
    vault.set_policy("app-read", {"secret/data/app/*": ["read"]})
    token = vault.create_token(policies=["app-read"], ttl=3600)["id"]
    token_file = cred("vault-token", token)
    conf = s.write_config(f"""
daemon = {{ refresh_interval = "1h"; }};
stores = {{ vault = {{ type = "vault"; server = "{vault.url}"; mount = "secret"; kv_version = 2;
                      ca_file = "{m.ca_cert}"; auth = {{ method = "token"; token_file = "{token_file}"; }}; }}; }};
secrets = ( {raw_secrets("vault", "vault", lambda i: f'key = "app/s{i}"; property = "password";')} );
""", name="vault.conf")
    round_("vault", conf, values, [token])

    # Vault into Kubernetes Secrets: the apply bodies, the API's answers and the watch's
    # events carry the values in base64; the daemon's API token is a credential it keeps.
    kube = KubeServer(tls_cert=m.server_cert, tls_key=m.server_key)
    kube.start()
    try:
        kube_token = "kube-" + secrets.token_hex(16)
        kube.add_user("system:serviceaccount:kube-system:secretsyncd", token=kube_token)
        kube.create_namespace("app")
        kube.grant("system:serviceaccount:kube-system:secretsyncd", ["get", "list", "watch", "create", "patch"],
                   ["secrets"], namespaces=["app"])
        values = [value("kubesecret") for _ in range(N)]
        for i, v in enumerate(values):
            vault.put_secret(f"kube/s{i}", {"password": v})
        vault.set_policy("kube-read", {"secret/data/kube/*": ["read"]})
        ktoken = vault.create_token(policies=["kube-read"], ttl=3600)["id"]
        kubeconfig = cred("kubeconfig", f"""apiVersion: v1
kind: Config
clusters: [ {{ name: c, cluster: {{ server: "{kube.url}", certificate-authority: "{m.ca_cert}" }} }} ]
users: [ {{ name: u, user: {{ token: "{kube_token}" }} }} ]
contexts: [ {{ name: c, context: {{ cluster: c, user: u }} }} ]
current-context: c""")
        conf = s.write_config(f"""
daemon = {{ refresh_interval = "1h"; }};
stores = {{ vault = {{ type = "vault"; server = "{vault.url}"; mount = "secret"; kv_version = 2;
                      ca_file = "{m.ca_cert}"; auth = {{ method = "token"; token_file = "{cred("kube-vault-token", ktoken)}"; }}; }}; }};
kubernetes = {{ kubeconfig = "{kubeconfig}"; leader_election = {{ enabled = false; }}; }};
secrets = ( {raw_secrets("kube", "vault", lambda i: f'key = "kube/s{i}"; property = "password";', kube=True)} );
""", name="kube.conf")
        in_base64 = [base64.b64encode(v.encode()).decode() for v in values]
        round_("kube", conf, values + in_base64, [ktoken, kube_token],
               kept=True, in_cluster=lambda: all((kube.secret_data("app", f"kube-{i}") or {}).get("v") == values[i] for i in range(N)))
    finally:
        kube.stop()

    if not have_moto():
        if os.environ.get("SECRETSYNCD_NO_SKIP") == "1":
            check(False, "AWS round: python3 modules moto and boto3 missing")
        else:
            print("# AWS round skipped: python3 modules moto and boto3 missing")
    else:
        moto = Moto(s.p("moto.log"))
        values = [value("awssecret") for _ in range(N)]
        sm = moto.client("secretsmanager")
        for i, v in enumerate(values):
            sm.create_secret(Name=f"app/s{i}", SecretString=f'{{"password":"{v}"}}')
        key_id, secret_key = moto.user("reader", [{"Effect": "Allow", "Resource": "*", "Action": [
            "secretsmanager:GetSecretValue", "secretsmanager:BatchGetSecretValue"]}])
        conf = s.write_config(f"""
daemon = {{ refresh_interval = "1h"; }};
stores = {{ aws = {{ type = "aws"; region = "{Moto.region}"; endpoint = "{moto.url}"; sts_endpoint = "{moto.url}";
                    auth = {{ method = "static"; access_key_id = "{key_id}";
                              secret_access_key_file = "{cred("aws.key", secret_key)}"; }}; }}; }};
secrets = ( {raw_secrets("aws", "aws", lambda i: f'key = "app/s{i}"; property = "password";')} );
""", name="aws.conf")
        round_("aws", conf, values, [secret_key])
finally:
    vault.stop()
    if moto:
        moto.stop()
    s.cleanup()
done()
