#!/usr/bin/env python3
"""Vault benchmark (figures, not pass/fail): the stand-in Vault adds 20 ms to every KV read;
secretsyncd --once syncs 1,000 secrets with max_concurrent_requests = 16. Prints the time,
its ratio to the ideal (1,000 x 20 ms / 16 = 1.25 s), the TCP connections the server
accepted, and peak RSS. Target: ratio <= 1.5 over at most 16 connections."""
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
DAEMON = os.environ.get("SECRETSYNCD") or os.path.join(HERE, "..", "..", "build", "secretsyncd")
N, LATENCY_MS, CONCURRENCY = 1000, 20, 16


def main():
    if not os.access(DAEMON, os.X_OK):
        print(f"SKIP: {DAEMON} not built")
        return 77
    import tls
    from vault_server import VaultServer
    if not tls.have_openssl() or not os.access("/usr/bin/time", os.X_OK):
        print("SKIP: needs openssl and /usr/bin/time")
        return 77
    d = tempfile.mkdtemp(prefix="secretsyncd-bench-vault-", dir="/var/tmp")
    os.chmod(d, 0o755)
    m = tls.make_all(os.path.join(d, "tls"))
    vault = VaultServer(tls_cert=m.server_cert, tls_key=m.server_key)
    vault.start()
    try:
        for i in range(N):
            vault.put_secret(f"bench/s{i}", {"password": f"value-{i}"})
        vault.set_policy("bench", {"secret/data/bench/*": ["read"]})
        tok = os.path.join(d, "token")
        with open(tok, "w") as f:
            f.write(vault.create_token(policies=["bench"], ttl=3600)["id"])
        os.chmod(tok, 0o600)
        secrets = ",\n".join(
            f'{{ name = "s{i}"; store = "v"; data = ( {{ secret_key = "P"; remote_ref = {{ key = "bench/s{i}"; '
            f'property = "password"; }}; }} ); files = ( {{ path = "{d}/out/s{i}.env"; format = "env"; }} ); }}'
            for i in range(N))
        conf = os.path.join(d, "bench.conf")
        with open(conf, "w") as f:
            f.write(f"""daemon = {{ max_concurrent_requests = {CONCURRENCY}; log_level = "warning"; }};
stores = {{ v = {{ type = "vault"; server = "{vault.url}"; ca_file = "{m.ca_cert}";
                  auth = {{ method = "token"; token_file = "{tok}"; }}; }}; }};
secrets = ( {secrets} );
""")
        os.chmod(conf, 0o600)
        vault.set_latency(LATENCY_MS, scope="kv")
        vault.reset_stats()
        t0 = time.monotonic()
        p = subprocess.run(["/usr/bin/time", "-f", "%M", DAEMON, "-c", conf, "--once"], stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE, text=True)
        dt = time.monotonic() - t0
        if p.returncode != 0:
            print(f"--once failed: {p.stderr[-800:]}")
            return 1
        rss = int(p.stderr.strip().split("\n")[-1])
        st = vault.stats()
        ideal = N * LATENCY_MS / 1000.0 / CONCURRENCY
        print(f"vault: {N:,} secrets, {LATENCY_MS} ms per read, max_concurrent_requests = {CONCURRENCY}: "
              f"{dt:.3f} s (ideal {ideal:.2f} s, ratio {dt / ideal:.2f}, target <= 1.5), "
              f"{st['connections']} TCP connections (target <= {CONCURRENCY}), "
              f"{st['requests_total']} requests, peak RSS {rss / 1024:.1f} MiB")
    finally:
        vault.stop()
        shutil.rmtree(d, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
