#!/usr/bin/env python3
"""Soak (figures, not pass/fail; issue 13): the daemon with 1,000 secrets over every store
type (fake, Vault, AWS via moto, Azure, GCP stand-ins; 100 of them also into Kubernetes
Secrets on the stand-in API server), each refreshed every second, for 10 minutes, with
SIGHUP every 5 s and SIGUSR1 every 3 s. Samples RSS and open descriptors every 5 s and
prints their slope after a warm-up (target: flat), the syncs done and the failures seen.
With --valgrind MINUTES it then runs a smaller set (100 secrets) under valgrind memcheck for
that long and prints its error count (target: zero).

  python3 tests/bench/soak.py [--minutes 10] [--secrets 1000] [--valgrind 2]
"""
import argparse
import base64
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
DAEMON = os.environ.get("SECRETSYNCD") or os.path.join(HERE, "..", "..", "build", "secretsyncd")
STORES = ("fake", "vault", "aws", "azure", "gcp")


def write(path, text, mode=0o600):
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, mode)
    return path


class Rig:
    """Every stand-in, with 1 secret per (store, index) and credentials for the daemon."""

    def __init__(self, d, n_per_store):
        import tls
        from azure_server import AzureServer
        from gcp_server import PROJECT, GcpServer
        from kube_server import KubeServer
        from moto_server import Moto
        from vault_server import VaultServer
        self.d, self.n = d, n_per_store
        m = tls.make_all(os.path.join(d, "tls"))
        self.vault = VaultServer(tls_cert=m.server_cert, tls_key=m.server_key)
        self.az = AzureServer(m.server_cert, m.server_key)
        self.gcp = GcpServer(m.server_cert, m.server_key, d)
        self.kube = KubeServer(tls_cert=m.server_cert, tls_key=m.server_key, client_ca=m.ca_cert)
        self.moto = Moto(os.path.join(d, "moto.log"))
        for s in (self.vault, self.az, self.gcp, self.kube):
            s.start()
        self.vault.set_policy("soak", {"secret/data/soak/*": ["read"]})
        vtok = write(os.path.join(d, "vault-token"), self.vault.create_token(policies=["soak"], ttl=86400)["id"])
        self.az.add_app("soak", secret="soak-client-secret")
        self.az.grant("soak")
        azsecret = write(os.path.join(d, "az-secret"), "soak-client-secret")
        gkey = self.gcp.add_service_account("soak@chimera-prod.iam.gserviceaccount.com")
        self.gcp.grant("soak@chimera-prod.iam.gserviceaccount.com")
        sm = self.moto.client("secretsmanager")
        key_id, secret = self.moto.user("soak", [{"Effect": "Allow", "Resource": "*", "Action": [
            "secretsmanager:GetSecretValue", "secretsmanager:BatchGetSecretValue"]}])
        akey = write(os.path.join(d, "aws-key"), secret)
        self.fake_data = []
        for i in range(n_per_store):
            v = json.dumps({"password": f"value-{i}"})
            self.vault.put_secret(f"soak/s{i}", {"password": f"value-{i}"})
            self.az.put_secret(f"s{i}", v)
            self.gcp.put_secret(f"s{i}", v.encode())
            sm.create_secret(Name=f"soak/s{i}", SecretString=v)
            self.fake_data.append(f'{{ key = "soak/s{i}"; value = {json.dumps(v)}; }}')
        self.kube.create_namespace("soak")
        self.kube.add_user("system:serviceaccount:kube-system:secretsyncd", token="soak-kube-token")
        self.kube.grant("system:serviceaccount:kube-system:secretsyncd", ["get", "list", "watch", "create", "patch",
                                                                          "update", "delete"], ["secrets"],
                        namespaces=["soak"])
        ktok = write(os.path.join(d, "kube-token"), "soak-kube-token")
        self.kubeconfig = write(os.path.join(d, "kubeconfig"), f"""apiVersion: v1
kind: Config
clusters:
- name: c
  cluster:
    server: {self.kube.url}
    certificate-authority-data: {base64.b64encode(open(m.ca_cert, "rb").read()).decode()}
contexts:
- name: c
  context: {{ cluster: c, user: u }}
current-context: c
users:
- name: u
  user:
    tokenFile: {ktok}
""")
        self.stores = {
            "fake": f'type = "fake"; data = ( {", ".join(self.fake_data)} );',
            "vault": f'type = "vault"; server = "{self.vault.url}"; ca_file = "{m.ca_cert}"; '
                     f'auth = {{ method = "token"; token_file = "{vtok}"; }};',
            "aws": f'type = "aws"; region = "{self.moto.region}"; endpoint = "{self.moto.url}"; '
                   f'auth = {{ method = "static"; access_key_id = "{key_id}"; secret_access_key_file = "{akey}"; }};',
            "azure": f'type = "azure"; vault_url = "{self.az.url}"; authority = "{self.az.url}"; ca_file = "{m.ca_cert}"; '
                     f'auth = {{ method = "client-secret"; tenant_id = "{self.az.tenant}"; client_id = "soak"; '
                     f'client_secret_file = "{azsecret}"; }};',
            "gcp": f'type = "gcp"; project = "{PROJECT}"; endpoint = "{self.gcp.url}"; ca_file = "{m.ca_cert}"; '
                   f'auth = {{ method = "service-account-key"; key_file = "{gkey}"; }};',
        }

    def config(self, name, n_per_store, n_kube):
        out = os.path.join(self.d, "out-" + name)
        secrets = []
        for st in STORES:
            os.makedirs(os.path.join(out, st), exist_ok=True)
            for i in range(n_per_store):
                key = f"s{i}" if st in ("azure", "gcp") else f"soak/s{i}"
                kube = ""
                if st == "fake" and i < n_kube:
                    kube = f'kubernetes = {{ namespace = "soak"; name = "s{i}"; }};'
                secrets.append(f'{{ name = "{st}-{i}"; store = "{st}"; refresh_interval = "1s"; '
                               f'data = ( {{ secret_key = "P"; remote_ref = {{ key = "{key}"; property = "password"; }}; }} ); '
                               f'files = ( {{ path = "{out}/{st}/s{i}.env"; format = "env"; }} ); {kube} }}')
        stores = " ".join(f"{st} = {{ {self.stores[st]} }};" for st in STORES)
        return write(os.path.join(self.d, name + ".conf"), f"""daemon = {{ log_level = "notice"; min_backoff = "1s";
  max_backoff = "5s"; runtime_dir = "{self.d}/run-{name}"; state_dir = "{self.d}/state-{name}";
  metrics_file = "{self.d}/{name}.prom"; }};
stores = {{ {stores} }};
kubernetes = {{ kubeconfig = "{self.kubeconfig}"; leader_election = {{ enabled = false; }}; }};
secrets = ( {", ".join(secrets)} );
""")

    def stop(self):
        for s in (self.vault, self.az, self.gcp, self.kube, self.moto):
            try:
                s.stop()
            except Exception:
                pass


def proc_figures(pid):
    rss = 0
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
    return rss, len(os.listdir(f"/proc/{pid}/fd"))


def slope(points):
    """Least-squares slope of (t, y) points, per minute."""
    n = len(points)
    if n < 2:
        return 0.0
    mt = sum(t for t, _ in points) / n
    my = sum(y for _, y in points) / n
    den = sum((t - mt) ** 2 for t, _ in points)
    return 60.0 * sum((t - mt) * (y - my) for t, y in points) / den if den else 0.0


def soak(rig, minutes, n_per_store, n_kube):
    conf = rig.config("soak", n_per_store, n_kube)
    log = open(os.path.join(rig.d, "soak.log"), "w")
    p = subprocess.Popen([DAEMON, "-c", conf], stdout=log, stderr=log)
    t0 = time.monotonic()
    samples, next_hup, next_usr1, next_sample = [], 5.0, 3.0, 0.0
    try:
        while (t := time.monotonic() - t0) < minutes * 60:
            if p.poll() is not None:
                print(f"soak: the daemon exited with {p.returncode} after {t:.0f} s")
                return 1
            if t >= next_hup:
                p.send_signal(signal.SIGHUP)
                next_hup += 5
            if t >= next_usr1:
                p.send_signal(signal.SIGUSR1)
                next_usr1 += 3
            if t >= next_sample:
                samples.append((t,) + proc_figures(p.pid))
                next_sample += 5
            time.sleep(0.1)
    finally:
        p.send_signal(signal.SIGTERM)
        try:
            rc = p.wait(60)
        except subprocess.TimeoutExpired:
            p.kill()
            rc = "killed after 60 s"
        log.close()
    text = open(os.path.join(rig.d, "soak.log"), errors="replace").read()
    failed = [l for l in text.splitlines() if "failed" in l]
    prom = open(os.path.join(rig.d, "soak.prom")).read()
    count = lambda result: sum(float(v) for v in re.findall(
        r'^secretsyncd_sync_total\{[^}]*result="%s"[^}]*\} (\S+)' % result, prom, re.M))
    warm = [s for s in samples if s[0] >= min(120, minutes * 60 * 0.2)]
    rss = [(t, r) for t, r, _ in warm]
    fds = [(t, n) for t, _, n in warm]
    n = n_per_store * len(STORES)
    print(f"soak: {n:,} secrets ({n_kube} also to Kubernetes) refreshed every 1 s for {minutes} min, SIGHUP every 5 s, "
          f"SIGUSR1 every 3 s; exit {rc} at SIGTERM")
    print(f"  RSS after warm-up: {rss[0][1] / 1024:.1f} -> {rss[-1][1] / 1024:.1f} MiB, slope "
          f"{slope(rss):+.1f} KiB/min ({100 * slope(rss) / rss[0][1]:+.3f}%/min; target flat)")
    print(f"  open descriptors after warm-up: {fds[0][1]} -> {fds[-1][1]}, slope {slope(fds):+.2f}/min (target 0)")
    print(f"  syncs: {count('success'):,.0f} succeeded, {count('failure'):,.0f} failed; {len(failed)} failure lines"
          + (f"; first: {failed[0][:200]}" if failed else ""))
    return 0


def under_valgrind(rig, minutes):
    if not shutil.which("valgrind"):
        print("valgrind: SKIP (valgrind missing)")
        return 0
    conf = rig.config("valgrind", 20, 10)
    vlog = os.path.join(rig.d, "valgrind.log")
    p = subprocess.Popen(["valgrind", "--tool=memcheck", "--leak-check=full", "--errors-for-leak-kinds=definite",
                          "--track-fds=no", f"--log-file={vlog}", DAEMON, "-c", conf],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    t0 = time.monotonic()
    next_hup, next_usr1 = 20.0, 13.0
    while (t := time.monotonic() - t0) < minutes * 60 and p.poll() is None:
        if t >= next_hup:
            p.send_signal(signal.SIGHUP)
            next_hup += 20
        if t >= next_usr1:
            p.send_signal(signal.SIGUSR1)
            next_usr1 += 13
        time.sleep(0.2)
    p.send_signal(signal.SIGTERM)
    try:
        p.wait(120)
    except subprocess.TimeoutExpired:
        p.kill()
    text = open(vlog, errors="replace").read()
    m = re.search(r"ERROR SUMMARY: (\d+) errors", text)
    lost = re.search(r"definitely lost: ([\d,]+) bytes", text)
    print(f"valgrind memcheck: 100 secrets over every store type, {minutes} min with SIGHUP and SIGUSR1: "
          f"{m.group(1) if m else '?'} errors (target 0), definitely lost {lost.group(1) if lost else '0'} bytes")
    if m and m.group(1) != "0":
        print("\n".join(text.splitlines()[:80]))
    return 0


def main():
    a = argparse.ArgumentParser()
    a.add_argument("--minutes", type=float, default=10)
    a.add_argument("--secrets", type=int, default=1000)
    a.add_argument("--valgrind", type=float, default=0, help="minutes under valgrind after the soak")
    args = a.parse_args()
    if not os.access(DAEMON, os.X_OK):
        print(f"SKIP: {DAEMON} not built")
        return 77
    try:
        import tls
        from moto_server import have_moto
    except ImportError as e:
        print(f"SKIP: {e}")
        return 77
    if not tls.have_openssl() or not have_moto():
        print("SKIP: needs openssl, and moto and boto3 for python3")
        return 77
    d = tempfile.mkdtemp(prefix="secretsyncd-soak-", dir="/var/tmp")
    os.chmod(d, 0o755)
    per_store = max(1, args.secrets // len(STORES))
    rig = Rig(d, per_store)
    try:
        rc = soak(rig, args.minutes, per_store, min(100, per_store))
        if args.valgrind > 0:
            rc |= under_valgrind(rig, args.valgrind)
    finally:
        rig.stop()
        shutil.rmtree(d, ignore_errors=True)
    return rc


if __name__ == "__main__":
    sys.exit(main())
