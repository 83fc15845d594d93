#!/usr/bin/env python3
"""Kubernetes targets benchmark against the stand-in API server (figures, not pass/fail):

  1. time for the first sync of 1,000 Kubernetes targets (daemon start to READY=1, every
     Secret created);
  2. HTTP requests of an unchanged refresh of all 1,000 (SIGUSR1) (target: zero writes and
     no more than one list per namespace);
  3. time from `kubectl delete secret` to the Secret being back (target: under 2 s);
  4. the daemon's peak RSS (target: under 20 MiB).
"""
import os
import shutil
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
import tls  # noqa: E402
from kube_server import KubeServer  # noqa: E402
from lib import Daemon, NotifySocket, Scratch, lc_string  # noqa: E402

DAEMON = os.environ.get("SECRETSYNCD") or os.path.join(HERE, "..", "..", "build", "secretsyncd")
os.environ["SECRETSYNCD"] = DAEMON
N = int(os.environ.get("BENCH_KUBE_N", "1000"))
TOKEN = "bench-token-1"


def main():
    if not os.access(DAEMON, os.X_OK):
        print(f"SKIP: {DAEMON} not built")
        return 77
    s = Scratch()
    m = tls.make_all(s.p("tls"))
    kube = KubeServer(tls_cert=m.server_cert, tls_key=m.server_key)
    kube.start()
    d = None
    try:
        kube.add_user("bench", token=TOKEN, admin=True)
        kube.create_namespace("chimera")
        kc = s.p("kubeconfig")
        with open(kc, "w") as f:
            f.write(f"""clusters: [ {{ name: k, cluster: {{ server: "{kube.url}", certificate-authority: "{m.ca_cert}" }} }} ]
users: [ {{ name: u, user: {{ token: "{TOKEN}" }} }} ]
contexts: [ {{ name: k, context: {{ cluster: k, user: u, namespace: chimera }} }} ]
current-context: k
""")
        os.chmod(kc, 0o600)
        data = ",\n".join(f'{{ key = "bench/s{i}"; value = {lc_string(f"value-{i}")}; }}' for i in range(N))
        secrets = ",\n".join(
            f'{{ name = "s{i}"; store = "demo"; data = ( {{ secret_key = "password"; remote_ref = {{ key = "bench/s{i}"; }}; }} ); '
            f'kubernetes = {{ namespace = "chimera"; name = "secret-{i}"; }}; }}' for i in range(N))
        conf = s.write_config(f"""daemon = {{ log_level = "warning"; }};
stores = {{ demo = {{ type = "fake"; data = ( {data} ); }}; }};
kubernetes = {{ kubeconfig = "{kc}"; leader_election = {{ enabled = false; }}; }};
secrets = ( {secrets} );
""")
        notify = NotifySocket(s)
        t0 = time.monotonic()
        d = Daemon(conf, s, notify=notify)
        ready = notify.wait_for(lambda msg: msg.get("READY") == "1", timeout=300)
        t_first = time.monotonic() - t0
        made = len(kube.list_objects("secrets", "chimera"))
        print(f"1. first sync of {N:,} Kubernetes targets: {t_first:.2f} s to READY=1 "
              f"({'ready' if ready else 'NOT READY'}, {made:,} Secrets)")

        time.sleep(1.0)
        kube.reset_stats()
        d.signal(signal.SIGUSR1)
        # With log_level warning an unchanged round prints nothing: wait for the loop to settle.
        time.sleep(3.0)
        st = kube.stats()
        counts = {k: v for k, v in st["counts"].items() if "secrets" in k}
        writes = sum(v for k, v in counts.items() if k.split()[0] in ("create", "update", "patch", "delete"))
        print(f"2. unchanged refresh of {N:,}: {sum(counts.values())} requests for Secrets ({counts or 'none'}): "
              f"{writes} writes (target 0), {counts.get('list secrets', 0)} lists (target <= 1 per namespace)")

        kubectl = shutil.which("kubectl")
        t_repair = []
        for i in (7, 500, N - 1):
            name = f"secret-{i}"
            uid = kube.get_secret("chimera", name)["metadata"]["uid"]
            t0 = time.monotonic()  # kubectl's own start-up counts too: an upper bound
            if kubectl:
                subprocess.run([kubectl, "--kubeconfig", kc, "delete", "secret", name, "--wait=false"],
                               capture_output=True, check=True)
            else:
                kube.delete_object("secrets", name, "chimera")
            while time.monotonic() - t0 < 30:
                obj = kube.get_secret("chimera", name)
                if obj is not None and obj["metadata"]["uid"] != uid:
                    break
                time.sleep(0.002)
            t_repair.append(time.monotonic() - t0)
        print(f"3. {'kubectl delete secret' if kubectl else 'delete'} to the Secret back (new uid), kubectl's start included: "
              + ", ".join(f"{t * 1000:.0f} ms" for t in t_repair) + " (target < 2 s)")

        with open(f"/proc/{d.proc.pid}/status") as f:
            hwm = next(int(line.split()[1]) for line in f if line.startswith("VmHWM"))
        print(f"4. peak RSS of the daemon: {hwm / 1024:.1f} MiB (target < 20 MiB)")
    finally:
        if d:
            d.stop()
        kube.stop()
        s.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
