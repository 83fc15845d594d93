#!/usr/bin/env python3
"""The metrics file read by the real consumers: Debian's prometheus-node-exporter (textfile
collector, scraped over loopback: no node_textfile_scrape_error) and `promtool check
metrics`. Names, types and labels as SPEC's table; mode 0644; no secret value; store
requests counted by HTTP status (a Vault stand-in answers 200 and 404)."""
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lib import (Daemon, Scratch, check, done, fake_store, no_secrets_in, require_daemon, skip)
from vault_server import VaultServer

require_daemon()
EXPORTER = shutil.which("prometheus-node-exporter") or shutil.which("node_exporter")
PROMTOOL = shutil.which("promtool")
if not EXPORTER:
    skip("prometheus-node-exporter is not installed (apt-get install prometheus-node-exporter)")
if not PROMTOOL:
    skip("promtool is not installed (apt-get install prometheus)")

s = Scratch()
out, textdir = s.p("out"), s.p("textfile")
prom = os.path.join(textdir, "secretsyncd.prom")
VAULT_VALUE = "vault-Metr1cs-value"

vault = VaultServer()
vault.start()
vault.put_secret("chimera/jwt", {"secret": VAULT_VALUE})
tok = s.p("vault-token")
with open(tok, "w") as f:
    f.write("root")
os.chmod(tok, 0o600)

conf = s.write_config(f"""
daemon = {{ min_backoff = "10m"; max_backoff = "1h"; runtime_dir = "{s.p('run')}"; state_dir = "{s.p('state')}";
           metrics_file = "{prom}"; }};
stores = {{ {fake_store()}
           vault-backend = {{ type = "vault"; server = "{vault.url}"; auth = {{ method = "token"; token_file = "{tok}"; }}; }}; }};
secrets = (
  {{ name = "postgres"; store = "demo";
     data = ( {{ secret_key = "password"; remote_ref = {{ key = "chimera/postgres-password"; property = "password"; }}; }} );
     files = ( {{ path = "{out}/postgres.env"; format = "env"; }} ); }},
  {{ name = "jwt"; store = "vault-backend";
     data = ( {{ secret_key = "secret"; remote_ref = {{ key = "chimera/jwt"; property = "secret"; }}; }} );
     files = ( {{ path = "{out}/jwt.env"; format = "env"; }} ); }},
  {{ name = "gone"; store = "vault-backend";
     data = ( {{ secret_key = "x"; remote_ref = {{ key = "chimera/not-there"; }}; }} );
     files = ( {{ path = "{out}/gone.env"; format = "env"; }} ); }}
);
""")


def free_port():
    with socket.socket() as x:
        x.bind(("127.0.0.1", 0))
        return x.getsockname()[1]


def wait_for(pred, timeout=15.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(0.1)
    return False


def text():
    try:
        with open(prom) as f:
            return f.read()
    except FileNotFoundError:
        return ""


d = Daemon(conf, s)
exporter = None
try:
    check(wait_for(lambda: 'secretsyncd_secret_ready{secret="gone",store="vault-backend"} 0' in text() and
                   'secretsyncd_secret_ready{secret="jwt",store="vault-backend"} 1' in text()),
          "the metrics file appears after the first syncs")
    t = text()
    check(os.stat(prom).st_mode & 0o777 == 0o644, "mode 0644")
    check(not no_secrets_in(t) and VAULT_VALUE not in t and "root" not in t.replace("secretsyncd", ""),
          "no secret value or token in it")
    for name, typ in (("secretsyncd_secret_ready", "gauge"),
                      ("secretsyncd_secret_last_success_timestamp_seconds", "gauge"),
                      ("secretsyncd_sync_total", "counter"), ("secretsyncd_target_writes_total", "counter"),
                      ("secretsyncd_store_requests_total", "counter"),
                      ("secretsyncd_store_request_duration_seconds", "histogram"),
                      ("secretsyncd_leader", "gauge"), ("secretsyncd_config_last_reload_successful", "gauge"),
                      ("secretsyncd_build_info", "gauge")):
        check(f"# TYPE {name} {typ}\n" in t and f"# HELP {name} " in t, f"{name}: HELP and TYPE {typ}")
    check('secretsyncd_sync_total{secret="postgres",result="success"} 1' in t, "sync_total: secret, result")
    check('secretsyncd_target_writes_total{secret="postgres",kind="file"} 1' in t, "target_writes_total: kind file")
    check(re.search(r'secretsyncd_store_requests_total\{store="vault-backend",type="vault",code="200"\} [1-9]', t),
          "store_requests_total: store, type, code 200")
    check(re.search(r'secretsyncd_store_requests_total\{store="vault-backend",type="vault",code="404"\} [1-9]', t),
          "store_requests_total: code 404 for the missing key")
    check(re.search(r'secretsyncd_store_request_duration_seconds_bucket\{store="vault-backend",le="\+Inf"\} [1-9]', t)
          and 'secretsyncd_store_request_duration_seconds_count{store="vault-backend"}' in t, "duration histogram")
    check(re.search(r'secretsyncd_secret_last_success_timestamp_seconds\{secret="postgres"\} 1[0-9]{9}\.', t),
          "last success timestamp in seconds")
    check('secretsyncd_build_info{version="' in t and "secretsyncd_leader 0" in t, "build_info and leader")

    r = subprocess.run([PROMTOOL, "check", "metrics"], input=t, capture_output=True, text=True, timeout=30)
    check(r.returncode == 0, f"promtool check metrics passes ({(r.stdout + r.stderr).strip()[:300]})")

    port = free_port()
    elog = open(s.p("exporter.log"), "w")
    exporter = subprocess.Popen([EXPORTER, "--collector.disable-defaults", "--collector.textfile",
                                 f"--collector.textfile.directory={textdir}", f"--web.listen-address=127.0.0.1:{port}"],
                                stdout=elog, stderr=subprocess.STDOUT)
    scraped = ""

    def scrape():
        global scraped
        try:
            scraped = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
            return True
        except OSError:
            return False

    check(wait_for(scrape), "node_exporter answers on loopback")
    check("node_textfile_scrape_error 0" in scraped, "node_exporter: node_textfile_scrape_error 0")
    check('secretsyncd_secret_ready{secret="postgres",store="demo"} 1' in scraped,
          "node_exporter serves secretsyncd_secret_ready")
    check('secretsyncd_store_requests_total{code="200",store="vault-backend",type="vault"}' in scraped,
          "node_exporter serves the store requests")

    # A failed reload shows in the gauge, at most METRICS_INTERVAL (10 s) later.
    good = open(conf).read()
    s.write_config(good.replace('min_backoff = "10m";', 'min_backoff = "10m"; bogus = 1;'))
    d.signal(__import__("signal").SIGHUP)
    check(wait_for(lambda: "secretsyncd_config_last_reload_successful 0" in text(), timeout=15),
          "config_last_reload_successful 0 after a rejected reload")
    check(wait_for(scrape) and "node_textfile_scrape_error 0" in scraped, "still scraped without error")
finally:
    if exporter:
        exporter.terminate()
        exporter.wait()
    d.stop()
    vault.stop()
s.cleanup()
done()
