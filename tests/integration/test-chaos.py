#!/usr/bin/env python3
"""A chaos network: the real daemon with Vault, AWS (moto), Azure, Google and a Kubernetes
API each behind a fault-injecting proxy (chaos_proxy.py), and a second Vault store that
reaches the same server directly. Round after round the values change in every store and
one fault is put on every proxy: added latency, connections reset, bodies cut at half,
bodies that trickle in a byte a second, connections refused, a certificate from another
CA; then a store host that does not resolve. Each round checks that

  * the secrets not behind the fault are synced all the same, at once;
  * the secrets behind it fail, each failure naming the secret and the store, and their
    files keep the last good content; a stalled body fails within the store's timeout;
  * once the fault ends, every target (files and Kubernetes Secrets) gets the new values;
  * the daemon holds as many descriptors and TCP connections after the faults as before,
    and its RSS does not grow (counted from /proc after a warm-up round)."""
import json
import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lib import Daemon, Scratch, check, done, require_daemon, skip

require_daemon()
import tls  # noqa: E402
from moto_server import Moto, have_moto, rerun_with_moto  # noqa: E402

if not have_moto():
    rerun_with_moto(__file__)
    skip("python3 modules moto and boto3 missing (pip install 'moto[server]' boto3)")
if not tls.have_openssl():
    skip("the openssl command is not installed (needed to make test certificates)")
from azure_server import AzureServer  # noqa: E402
from chaos_proxy import ChaosProxy  # noqa: E402
from gcp_server import PROJECT, GcpServer  # noqa: E402
from kube_server import KubeServer  # noqa: E402
from vault_server import VaultServer  # noqa: E402

for k in list(os.environ):
    if k.startswith(("AWS_", "AZURE_")) or k in ("GOOGLE_APPLICATION_CREDENTIALS", "GCE_METADATA_HOST"):
        del os.environ[k]
s = Scratch()
os.environ["HOME"] = s.path
out = s.p("out")
os.makedirs(out)
m = tls.make_all(s.p("tls"))
TIMEOUT = 2.0  # each store's timeout
N = 3          # secrets per store
KUBE_USER, KUBE_TOKEN = "system:serviceaccount:kube-system:secretsyncd", "sa-token-Chaos-51c2"
STORES = ["vault", "aws", "azure", "gcp"]  # behind a proxy each; "direct" is the healthy Vault store


def cred(name, text):
    path = s.p(name)
    with open(path, "w") as f:
        f.write(text + "\n")
    os.chmod(path, 0o600)
    return path


def value(store, i, rnd):
    return f"{store}-{i}-round{rnd}-Pw"


vault = VaultServer(tls_cert=m.server_cert, tls_key=m.server_key)
moto = Moto(s.p("moto.log"))
az = AzureServer(m.server_cert, m.server_key)
gcp = GcpServer(m.server_cert, m.server_key, s.path)
kube = KubeServer(tls_cert=m.server_cert, tls_key=m.server_key)
proxies = {}
d = None
try:
    vault.start()
    az.start()
    gcp.start()
    kube.start()
    vault.set_policy("read", {"secret/data/*": ["read"]})
    vault_token = cred("vault-token", vault.create_token(policies=["read"], ttl=7200)["id"])
    sm = moto.client("secretsmanager")
    key_id, aws_secret = moto.user("app", [{"Effect": "Allow", "Resource": "*", "Action": [
        "secretsmanager:GetSecretValue", "secretsmanager:BatchGetSecretValue"]}])
    az.add_app("app-secret", secret="app-Chaos~Secret")
    sa_key = gcp.add_service_account("secretsyncd@%s.iam.gserviceaccount.com" % PROJECT)
    kube.add_user(KUBE_USER, token=KUBE_TOKEN)
    kube.grant(KUBE_USER, ["get", "list", "watch", "create", "patch", "delete"], ["secrets"], namespaces=["chaos"])
    kube.create_namespace("chaos")
    for i in range(N):
        az.grant("app-secret", f"azure-{i}")
        gcp.grant("secretsyncd@%s.iam.gserviceaccount.com" % PROJECT, f"gcp-{i}")

    def host_port(url):
        h, p = url.split("://")[1].rsplit(":", 1)
        return (h, int(p))

    proxies = {
        "vault": ChaosProxy(host_port(vault.url), tls=(m.server_cert, m.server_key), upstream_tls=True),
        "aws": ChaosProxy(host_port(moto.url)),
        "azure": ChaosProxy(host_port(az.url), tls=(m.server_cert, m.server_key), upstream_tls=True),
        "gcp": ChaosProxy(host_port(gcp.url), tls=(m.server_cert, m.server_key), upstream_tls=True),
        "kube": ChaosProxy(host_port(kube.url), tls=(m.server_cert, m.server_key), upstream_tls=True),
    }
    kubeconfig = s.p("kubeconfig")
    with open(kubeconfig, "w") as f:
        f.write(f"""apiVersion: v1
kind: Config
clusters:
- name: chaos
  cluster:
    server: {proxies["kube"].url}
    certificate-authority: {m.ca_cert}
users:
- name: sa
  user:
    token: {KUBE_TOKEN}
contexts:
- name: chaos
  context: {{cluster: chaos, user: sa}}
current-context: chaos
""")
    os.chmod(kubeconfig, 0o600)

    def rotate(rnd):
        for i in range(N):
            vault.put_secret(f"chaos/vault-{i}", {"v": value("vault", i, rnd)})
            vault.put_secret(f"chaos/direct-{i}", {"v": value("direct", i, rnd)})
            name, v = f"chaos/aws-{i}", value("aws", i, rnd)
            if rnd == 0:
                sm.create_secret(Name=name, SecretString=v)
            else:
                sm.put_secret_value(SecretId=name, SecretString=v)
            az.put_secret(f"azure-{i}", value("azure", i, rnd))
            gcp.put_secret(f"gcp-{i}", value("gcp", i, rnd).encode())

    def secrets_conf():
        ent = []
        refs = {"vault": lambda i: f"chaos/vault-{i}", "direct": lambda i: f"chaos/direct-{i}",
                "aws": lambda i: f"chaos/aws-{i}", "azure": lambda i: f"azure-{i}", "gcp": lambda i: f"gcp-{i}"}
        for st, ref in refs.items():
            prop = 'property = "v";' if st in ("vault", "direct") else ""
            for i in range(N):
                ent.append(f"""{{ name = "{st}-{i}"; store = "{st}";
   data = ( {{ secret_key = "v"; remote_ref = {{ key = "{ref(i)}"; {prop} }}; }} );
   files = ( {{ path = "{out}/{st}-{i}"; format = "raw"; key = "v"; }} ); }}""")
        for i in range(N):  # Kubernetes Secrets from the healthy store: only the API is behind the fault
            ent.append(f"""{{ name = "kube-{i}"; store = "direct";
   data = ( {{ secret_key = "v"; remote_ref = {{ key = "chaos/direct-{i}"; property = "v"; }}; }} );
   kubernetes = {{ namespace = "chaos"; name = "kube-{i}"; }}; }}""")
        return ",\n".join(ent)

    def config(vault_server=None, name="secretsyncd.conf"):
        t = f'timeout = "{TIMEOUT:g}s";'
        return s.write_config(name=name, text=f"""
daemon = {{ min_backoff = "200ms"; max_backoff = "1s"; refresh_interval = "1h"; max_concurrent_requests = 4; }};
stores = {{
  vault = {{ type = "vault"; server = "{vault_server or proxies["vault"].url}"; ca_file = "{m.ca_cert}"; {t}
            auth = {{ method = "token"; token_file = "{vault_token}"; }}; }};
  direct = {{ type = "vault"; server = "{vault.url}"; ca_file = "{m.ca_cert}"; {t}
             auth = {{ method = "token"; token_file = "{vault_token}"; }}; }};
  aws = {{ type = "aws"; region = "{Moto.region}"; endpoint = "{proxies["aws"].url}"; {t}
          auth = {{ method = "static"; access_key_id = "{key_id}"; secret_access_key_file = "{cred("aws.key", aws_secret)}"; }}; }};
  azure = {{ type = "azure"; vault_url = "{proxies["azure"].url}"; authority = "{az.url}"; ca_file = "{m.ca_cert}"; {t}
            auth = {{ method = "client-secret"; tenant_id = "{az.tenant}"; client_id = "app-secret";
                      client_secret_file = "{cred("azure.secret", "app-Chaos~Secret")}"; }}; }};
  gcp = {{ type = "gcp"; project = "{PROJECT}"; endpoint = "{proxies["gcp"].url}"; ca_file = "{m.ca_cert}"; {t}
          auth = {{ method = "service-account-key"; key_file = "{sa_key}"; }}; }};
}};
kubernetes = {{ kubeconfig = "{kubeconfig}"; leader_election = {{ enabled = false; }}; timeout = "{TIMEOUT:g}s"; }};
secrets = ( {secrets_conf()} );
""")

    def read(name):
        try:
            with open(os.path.join(out, name)) as f:
                return f.read()
        except FileNotFoundError:
            return None

    def synced(stores, rnd):
        """The targets of these stores that do not hold round rnd's values yet."""
        late = []
        for st in stores:
            for i in range(N):
                if st == "kube":
                    got = (kube.secret_data("chaos", f"kube-{i}") or {}).get("v")
                    want = value("direct", i, rnd)
                else:
                    got, want = read(f"{st}-{i}"), value(st, i, rnd)
                if got != want:
                    late.append(f"{st}-{i}")
        return late

    def wait_synced(stores, rnd, timeout):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if not synced(stores, rnd):
                return []
            time.sleep(0.05)
        return synced(stores, rnd)

    def failures(log, store):
        if store == "kube":
            return [ln for ln in log.splitlines() if "failed:" in ln and "secret 'kube-" in ln]
        return [ln for ln in log.splitlines() if "failed:" in ln and f"store '{store}'" in ln]

    def usage():
        pid = d.proc.pid
        fds = os.listdir(f"/proc/{pid}/fd")
        socks = {os.readlink(f"/proc/{pid}/fd/{f}") for f in fds}
        inodes = {x[8:-1] for x in socks if x.startswith("socket:[")}
        tcp = 0
        for table in ("tcp", "tcp6"):
            with open(f"/proc/{pid}/net/{table}") as f:
                tcp += sum(1 for ln in f.readlines()[1:] if ln.split()[9] in inodes)
        with open(f"/proc/{pid}/status") as f:
            rss = int(next(ln for ln in f if ln.startswith("VmRSS:")).split()[1])
        return len(fds), tcp, rss

    rotate(0)
    d = Daemon(config(), s)
    late = wait_synced(STORES + ["direct", "kube"], 0, 30)
    check(not late, f"every target written through the healthy proxies ({late})")

    rnd = 0
    ALL = STORES + ["direct", "kube"]

    def fault_round(kind, seconds=1.0, behind=("vault", "aws", "azure", "gcp", "kube"), expect_fail=True):
        """One round: new values, the fault on the proxies `behind`, a refresh; then the
        fault ends and a second refresh must bring every target to the new values."""
        global rnd
        rnd += 1
        start = len(d.output())
        for p in behind:  # first: a retry still due from the last round must not read the new values
            proxies[p].fault(kind, seconds)
        rotate(rnd)
        t0 = time.monotonic()
        d.signal(signal.SIGUSR1)
        healthy = [st for st in ALL if st not in behind]
        late = wait_synced(healthy, rnd, 10)
        took = time.monotonic() - t0
        # Not after a timeout of the stalled requests, though these outnumber the places
        # (max_concurrent_requests = 4 for 12 reads behind the fault).
        check(not late and took < TIMEOUT, f"{kind}: the secrets not behind the fault are synced at once "
                                           f"({took:.2f} s; late: {late})")
        faulty = [st for st in STORES if st in behind]
        named = faulty + (["kube"] if "kube" in behind else [])
        result = {}
        if expect_fail:
            end, first = t0 + 4 * TIMEOUT + 5, {}
            while time.monotonic() < end and len(first) < len(named):
                log = d.output()[start:]
                first.update({st: time.monotonic() - t0 for st in named if st not in first and failures(log, st)})
                time.sleep(0.05)
            log = d.output()[start:]
            result["fail_after"] = max(first.values(), default=99)
            if result["fail_after"] > TIMEOUT + 1:
                print(f"# {kind}: first failure after (s) {json.dumps({k: round(v, 2) for k, v in first.items()})}")
            missing = [st for st in named if not failures(log, st)]
            check(not missing, f"{kind}: a failure is logged for each store and Kubernetes target behind it ({missing})")
            kept = [f"{st}-{i}" for st in faulty for i in range(N) if read(f"{st}-{i}") != value(st, i, rnd - 1)]
            check(not kept, f"{kind}: the files behind the fault keep their last good content ({kept})")
            for st in named:
                print(f"# {kind}: " + next(iter(failures(log, st)), f"(no failure for {st})"))
        for p in behind:
            proxies[p].fault(None)
        t1 = time.monotonic()
        d.signal(signal.SIGUSR1)
        late = wait_synced(ALL, rnd, 20)
        result["recovered_after"] = time.monotonic() - t1
        check(not late, f"{kind}: every target has the new values once the fault ends "
                        f"({result['recovered_after']:.1f} s; late: {late})")
        return result, d.output()[start:]

    def certificate_round():
        """A certificate from another CA: refused, the store named; then the right one again."""
        global rnd
        rnd += 1
        start = len(d.output())
        for p in ("vault", "azure", "gcp", "kube"):
            proxies[p].set_cert(m.other_server_cert, m.other_server_key)
        rotate(rnd)
        d.signal(signal.SIGUSR1)
        late = wait_synced(["direct", "aws"], rnd, 10)
        check(not late, f"certificate: the stores with the right certificate are synced ({late})")
        end = time.monotonic() + 10
        while time.monotonic() < end and not all(failures(d.output()[start:], st) for st in ("vault", "azure", "gcp", "kube")):
            time.sleep(0.05)
        log = d.output()[start:]
        bad = [st for st in ("vault", "azure", "gcp", "kube")
               if not any("certificate" in ln.lower() or "tls" in ln.lower() for ln in failures(log, st))]
        check(not bad, f"certificate: the foreign certificate is refused, each failure names the store and TLS ({bad})")
        print("# certificate: " + next(iter(failures(log, "vault")), ""))
        kept = [f"{st}-{i}" for st in ("vault", "azure", "gcp") for i in range(N) if read(f"{st}-{i}") != value(st, i, rnd - 1)]
        check(not kept, f"certificate: nothing read through it was written ({kept})")
        for p in ("vault", "azure", "gcp", "kube"):
            proxies[p].set_cert(m.server_cert, m.server_key)
        d.signal(signal.SIGUSR1)
        late = wait_synced(ALL, rnd, 20)
        check(not late, f"certificate: every target synced once the right certificate is back ({late})")

    def dns_round():
        """A store host that does not resolve (a reload points Vault at a .invalid name): the
        store named, the others unaffected; then a reload with the right name."""
        global rnd
        rnd += 1
        start = len(d.output())
        bad_host = "https://vault.chaos.invalid:%d" % proxies["vault"].port
        os.rename(config(vault_server=bad_host, name="dns.conf"), s.p("secretsyncd.conf"))
        d.signal(signal.SIGHUP)
        d.wait_log("reloaded", count=d.output().count("reloaded") + 1)
        rotate(rnd)
        t0 = time.monotonic()
        d.signal(signal.SIGUSR1)
        late = wait_synced(["direct", "aws", "azure", "gcp", "kube"], rnd, 15)
        check(not late, f"dns: the other stores are synced ({late})")
        end = time.monotonic() + 15
        while time.monotonic() < end and not failures(d.output()[start:], "vault"):
            time.sleep(0.05)
        log = d.output()[start:]
        check(any("vault.chaos.invalid" in ln for ln in failures(log, "vault")),
              f"dns: an unresolvable host fails the store's reads, the host named ({time.monotonic() - t0:.1f} s)")
        print("# dns: " + next(iter(failures(log, "vault")), ""))
        config()
        d.signal(signal.SIGHUP)
        d.wait_log("reloaded", count=d.output().count("reloaded") + 1)
        d.signal(signal.SIGUSR1)
        late = wait_synced(ALL, rnd, 20)
        check(not late, f"dns: every target synced once the name is right again ({late})")

    def series():
        for kind in ("latency", "reset", "truncate", "refuse", "stall"):
            behind = ("vault", "aws", "azure", "gcp", "kube")
            r, log = fault_round(kind, seconds=0.5, behind=behind, expect_fail=kind != "latency")
            figures.setdefault(kind, []).append(r)
            if kind == "stall":
                check(r["fail_after"] < TIMEOUT + 2.0,
                      f"stall: the stalled reads fail within the stores' timeout ({r['fail_after']:.1f} s, timeout {TIMEOUT:g} s)")
                check(all("timed out" in ln for st in STORES for ln in failures(log, st)), "stall: the failures say 'timed out'")
            if kind == "refuse":
                check(all(any("connect" in ln.lower() for ln in failures(log, st)) for st in STORES),
                      "refuse: each store's failures say it could not connect")
        certificate_round()
        dns_round()
        fault_round("latency", seconds=0, expect_fail=False)  # a healthy round: the caches settle
        time.sleep(0.5)
        return usage()

    def non_tcp(pid):
        return sorted(os.readlink(f"/proc/{pid}/fd/{f}") for f in os.listdir(f"/proc/{pid}/fd")
                      if not os.readlink(f"/proc/{pid}/fd/{f}").startswith("socket:"))

    # A warm-up: every pool has made its connections, every code path its allocations.
    figures = {}
    series()
    counts = [usage()]
    files0 = non_tcp(d.proc.pid)
    for _ in range(2):
        counts.append(series())
    print(f"# figures (seconds, per series): {json.dumps({k: [{a: round(b, 2) for a, b in x.items()} for x in v] for k, v in figures.items()})}")
    for when, c in zip(("after the warm-up", "after series 1", "after series 2"), counts):
        print(f"# {when}: {c[0]} descriptors, {c[1]} TCP connections, RSS {c[2]} KiB")
    files1 = non_tcp(d.proc.pid)
    check(files0 == files1, f"the same descriptors other than sockets before and after ({len(files0)} -> {len(files1)})")
    # The six connection caches keep as many connections as requests ran at once in the last
    # round: a few more or fewer. A leak would grow by one at least per fault, 14 a series.
    check(counts[2][0] - counts[0][0] <= 3, f"no descriptor leaked ({counts[0][0]} -> {counts[2][0]})")
    check(counts[2][1] - counts[0][1] <= 3, f"no TCP connection leaked ({counts[0][1]} -> {counts[2][1]})")
    with open(f"/proc/{d.proc.pid}/maps") as f:
        asan = "libasan" in f.read()  # its quarantine holds freed memory: RSS says nothing then
    if not asan:
        check(counts[2][2] - counts[1][2] < 512,
              f"RSS flat from one series to the next ({counts[1][2]} -> {counts[2][2]} KiB)")
    check(d.proc.poll() is None, "the daemon is still running")
    rc, d = d.stop(), None
    check(rc == 0, f"the daemon stops cleanly (exit {rc}; built with ASan, LeakSanitizer would fail it on a leak)")
finally:
    if d:
        d.stop()
    for p in proxies.values():
        p.stop()
    for srv in (vault, az, gcp, kube, moto):
        try:
            srv.stop()
        except Exception:
            pass
    s.cleanup()
done()
