#!/usr/bin/env python3
"""Azure Key Vault and Google Secret Manager benchmark (figures, not pass/fail): each stand-in
adds 20 ms to every secret read; secretsyncd --once syncs 1,000 secrets from it with
max_concurrent_requests = 16. Prints the time, its ratio to the ideal (1,000 x 20 ms / 16 =
1.25 s; target <= 1.5), and the token requests made (target: one, not one per read)."""
import json
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


def run(name, d, store, server, secret_ids):
    secrets = ",\n".join(
        f'{{ name = "s{i}"; store = "c"; data = ( {{ secret_key = "P"; remote_ref = {{ key = "{k}"; '
        f'property = "password"; }}; }} ); files = ( {{ path = "{d}/out-{name}/s{i}.env"; format = "env"; }} ); }}'
        for i, k in enumerate(secret_ids))
    conf = os.path.join(d, name + ".conf")
    with open(conf, "w") as f:
        f.write(f"""daemon = {{ max_concurrent_requests = {CONCURRENCY}; log_level = "warning"; }};
stores = {{ c = {{ {store} }}; }};
secrets = ( {secrets} );
""")
    os.chmod(conf, 0o600)
    server.delay = LATENCY_MS / 1000.0
    del server.token_requests[:]
    t0 = time.monotonic()
    p = subprocess.run([DAEMON, "-c", conf, "--once"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    dt = time.monotonic() - t0
    if p.returncode != 0:
        print(f"{name}: --once failed: {p.stderr[-800:]}")
        return 1
    ideal = N * LATENCY_MS / 1000.0 / CONCURRENCY
    print(f"{name}: {N:,} secrets, {LATENCY_MS} ms per read, max_concurrent_requests = {CONCURRENCY}: {dt:.3f} s "
          f"(ideal {ideal:.2f} s, ratio {dt / ideal:.2f}, target <= 1.5), {len(server.token_requests)} token "
          f"request(s) (target 1)")
    return 0


def main():
    if not os.access(DAEMON, os.X_OK):
        print(f"SKIP: {DAEMON} not built")
        return 77
    import tls
    from azure_server import AzureServer
    from gcp_server import PROJECT, GcpServer
    if not tls.have_openssl():
        print("SKIP: needs openssl")
        return 77
    d = tempfile.mkdtemp(prefix="secretsyncd-bench-clouds-", dir="/var/tmp")
    os.chmod(d, 0o755)
    m = tls.make_all(os.path.join(d, "tls"))
    az = AzureServer(m.server_cert, m.server_key)
    gcp = GcpServer(m.server_cert, m.server_key, d)
    az.start()
    gcp.start()
    rc = 0
    try:
        az.add_app("bench", secret="bench-client-secret")
        az.grant("bench")
        gcp_key = gcp.add_service_account("bench@chimera-prod.iam.gserviceaccount.com")
        gcp.grant("bench@chimera-prod.iam.gserviceaccount.com")
        for i in range(N):
            az.put_secret(f"s{i}", json.dumps({"password": f"value-{i}"}))
            gcp.put_secret(f"s{i}", json.dumps({"password": f"value-{i}"}).encode())
        sf = os.path.join(d, "client-secret")
        with open(sf, "w") as f:
            f.write("bench-client-secret")
        os.chmod(sf, 0o600)
        ids = [f"s{i}" for i in range(N)]
        rc |= run("azure", d, f'type = "azure"; vault_url = "{az.url}"; authority = "{az.url}"; ca_file = "{m.ca_cert}"; '
                  f'auth = {{ method = "client-secret"; tenant_id = "{az.tenant}"; client_id = "bench"; '
                  f'client_secret_file = "{sf}"; }};', az, ids)
        rc |= run("gcp", d, f'type = "gcp"; project = "{PROJECT}"; endpoint = "{gcp.url}"; ca_file = "{m.ca_cert}"; '
                  f'auth = {{ method = "service-account-key"; key_file = "{gcp_key}"; }};', gcp, ids)
    finally:
        az.stop()
        gcp.stop()
        shutil.rmtree(d, ignore_errors=True)
    return rc


if __name__ == "__main__":
    sys.exit(main())
