#!/usr/bin/env python3
"""secretsyncctl against the real daemon: the status table and detail after good and failed
syncs and after a restart, refresh of one secret (and its exit code), reload with a bad file,
--json, exit 3 with no daemon, a non-root client refused, raw Varlink, and hostile clients
(partial, huge, never reading, a thousand connections) while the secrets sync."""
import base64
import hashlib
import json
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lib import (CHIMERA, CHIMERA_VALUES, DAEMON, Daemon, Scratch, check, done, fake_store, no_secrets_in,
                 require_daemon, skip)

CTL = os.environ.get("SECRETSYNCCTL") or os.path.join(os.path.dirname(DAEMON), "secretsyncctl")
require_daemon()
if not os.access(CTL, os.X_OK):
    skip(f"{CTL} not built")

s = Scratch()
out, run, state = s.p("out"), s.p("run"), s.p("state")
sock = os.path.join(run, "io.secretsyncd")
marker = s.p("on-change.count")
N_EXTRA = 1000  # enough secrets that a Status reply outgrows the socket buffers


def config(data=None, extra_secrets=0):
    extra = "".join(
        f""",
  {{ name = "bulk-{i}"; store = "demo"; refresh_interval = "1h";
     data = ( {{ secret_key = "s"; remote_ref = {{ key = "chimera/jwt-secret"; property = "secret"; }}; }} );
     files = ( {{ path = "{out}/bulk/{i}.env"; format = "env"; }} ); }}"""
        for i in range(extra_secrets))
    return f"""
daemon = {{ min_backoff = "10m"; max_backoff = "1h"; runtime_dir = "{run}"; state_dir = "{state}"; }};
stores = {{ {fake_store(data=data)} }};
secrets = (
  {{ name = "postgres"; store = "demo";
     data = ( {{ secret_key = "password"; remote_ref = {{ key = "chimera/postgres-password"; property = "password"; }}; }} );
     files = ( {{ path = "{out}/postgres.env"; format = "env";
                  on_change = [ "/bin/sh", "-c", "echo x >> {marker}" ]; }} ); }},
  {{ name = "redis"; store = "demo";
     data = ( {{ secret_key = "password"; remote_ref = {{ key = "chimera/redis-password"; property = "password"; }}; }} );
     files = ( {{ path = "{out}/redis.env"; format = "env"; }} ); }},
  {{ name = "missing"; store = "demo";
     data = ( {{ secret_key = "x"; remote_ref = {{ key = "chimera/does-not-exist"; }}; }} );
     files = ( {{ path = "{out}/missing.env"; format = "env"; }} ); }}{extra}
);
"""


def ctl(*args, user=None, timeout=30, socket_path=sock):
    cmd = [CTL, "--socket", socket_path] + list(args)
    if user:
        cmd = ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups"] + cmd  # numeric: no NSS needed
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


def status_json(*names):
    r = ctl("--json", "status", *names)
    return json.loads(r.stdout) if r.returncode == 0 else None


def by_name(st):
    return {x["name"]: x for x in st["secrets"]}


def wait_until(pred, timeout=10.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(0.05)
    return False


def varlink(msg, path=sock):
    c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    c.settimeout(10)
    c.connect(path)
    c.sendall(json.dumps(msg).encode() + b"\0")
    buf = b""
    while not buf.endswith(b"\0"):
        chunk = c.recv(65536)
        if not chunk:
            break
        buf += chunk
    c.close()
    return json.loads(buf[:-1]) if buf.endswith(b"\0") else None


def count(path):
    try:
        with open(path) as f:
            return len(f.read().splitlines())
    except FileNotFoundError:
        return 0


# ---- no daemon: exit 3
r = ctl("status")
check(r.returncode == 3 and "not running" in r.stderr, f"no daemon: exit 3 and says so ({r.returncode}: {r.stderr.strip()})")

conf = s.write_config(config())
d = Daemon(conf, s)
try:
    check(wait_until(lambda: os.path.exists(sock)), "the control socket appears")
    check(os.stat(sock).st_mode & 0o777 == 0o600, f"socket mode is 0600 ({oct(os.stat(sock).st_mode & 0o777)})")
    check(os.stat(run).st_mode & 0o777 == 0o700 and os.stat(state).st_mode & 0o777 == 0o700,
          "runtime_dir and state_dir are created 0700")
    check(wait_until(lambda: (st := status_json()) is not None and
                     by_name(st)["postgres"]["status"] == "Synced" and by_name(st)["missing"]["status"] == "Failed"),
          "status --json: postgres Synced, missing Failed")

    r = ctl("status")
    lines = r.stdout.splitlines()
    check(r.returncode == 0, "status exits 0 though a secret failed")
    check(lines and lines[0].split() == ["NAME", "STORE", "REFRESH", "STATUS", "LAST-SYNC", "NEXT", "TARGETS"],
          f"status table header: {lines[:1]}")
    rows = {l.split()[0]: l.split() for l in lines[1:]}
    check(rows.get("postgres", [None] * 4)[3] == "Synced" and rows.get("missing", [None] * 4)[3] == "Failed",
          "status table: STATUS column")
    check(rows.get("postgres", [""] * 7)[-1] == "1/1" and rows.get("missing", [""] * 7)[-1] == "0/1",
          "status table: TARGETS column counts the targets in place")
    cols = [l.index("STATUS") if i == 0 else None for i, l in enumerate(lines[:1])]
    check(all(len(l) >= cols[0] and l[cols[0]:].split()[0] in ("Synced", "Failed", "Pending", "Retrying")
              for l in lines[1:]), "status table: columns are aligned")
    check("\033[" not in r.stdout, "no colour when stdout is not a terminal")

    r = ctl("status", "missing", "postgres")
    check(r.returncode == 0 and "Last error:" in r.stdout and "chimera/does-not-exist" in r.stdout,
          "status NAME: the last error names the missing remote key")
    check(f"{out}/postgres.env" in r.stdout and "written" in r.stdout, "status NAME: targets with their state")
    check("Events:" in r.stdout and "fetched:" in r.stdout, "status NAME: recent events")
    check(not no_secrets_in(r.stdout), "status NAME: no secret value")
    st = status_json("postgres")
    pg = st["secrets"][0]
    check(pg["targets"][0] == {**pg["targets"][0], "target": f"{out}/postgres.env", "kind": "file", "state": "written"},
          "--json: target, kind and state")
    check(pg["remote_keys"] == [{"key": "chimera/postgres-password", "version": None}], "--json: remote keys")
    check(pg["next_refresh"] and pg["next_refresh"] > time.time(), "--json: next refresh is in the future")
    pg_hash = hashlib.sha256(json.dumps({"password": base64.b64encode(
        json.loads(CHIMERA["chimera/postgres-password"])["password"].encode()).decode()},
        separators=(",", ":")).encode()).hexdigest()
    check(pg["data_hash"] == pg_hash, f"--json: the data hash, as a Secret's data-hash would be ({pg['data_hash']})")
    check(f"Data hash:     {pg_hash}" in ctl("status", "postgres").stdout, "status NAME: the data hash")
    r = ctl("status", "nope")
    check(r.returncode == 1 and "no secret named 'nope'" in r.stderr, "status of an unknown secret: exit 1, says so")

    # ---- refresh one secret: only that one syncs
    before_pg = d.output().count("secret 'postgres': fetched")
    before_redis = d.output().count("secret 'redis': fetched")
    r = ctl("refresh", "postgres")
    check(r.returncode == 0 and "postgres: Synced" in r.stdout, f"refresh postgres: exit 0, Synced ({r.stdout.strip()})")
    check(d.output().count("secret 'postgres': fetched") == before_pg + 1, "refresh postgres synced postgres once")
    time.sleep(0.3)
    check(d.output().count("secret 'redis': fetched") == before_redis, "refresh postgres did not sync redis")
    r = ctl("refresh", "missing")
    check(r.returncode == 1 and "missing: Failed" in r.stdout and "does-not-exist" in r.stdout,
          "refresh of a failing secret: exit 1 with its error")
    r = ctl("refresh", "postgres", "nope")
    check(r.returncode == 1 and "nope" in r.stderr, "refresh of an unknown name: exit 1, nothing refreshed")
    r = ctl("refresh")
    check(r.returncode == 2, "refresh without names or --all: usage error (2)")
    r = ctl("refresh", "--all", "--no-wait")
    check(r.returncode == 0 and "sync started" in r.stdout, "refresh --all --no-wait returns at once")
    r = ctl("refresh", "--all")
    check(r.returncode == 1 and "redis: Synced" in r.stdout, "refresh --all waits for every secret; exit 1 (one fails)")

    # ---- reload
    good = open(conf).read()
    s.write_config(good.replace('min_backoff = "10m";', 'min_backoff = "10m"; bogus = 1;'))
    r = ctl("reload")
    check(r.returncode == 1 and f"{conf}:2:" in r.stderr and "bogus" in r.stderr,
          f"reload of a bad file: exit 1 with FILE:LINE errors ({r.stderr.strip()[:200]})")
    s.write_config(good)
    r = ctl("reload")
    check(r.returncode == 0 and r.stderr == "", "reload of a good file: exit 0, quiet")

    # ---- raw Varlink
    rep = varlink({"method": "org.varlink.service.GetInterfaceDescription", "parameters": {"interface": "io.secretsyncd"}})
    desc = (rep or {}).get("parameters", {}).get("description", "")
    check(desc.startswith("#") and "interface io.secretsyncd" in desc and "method Status(" in desc
          and "error ReloadRejected" in desc, "GetInterfaceDescription answers the interface")
    rep = varlink({"method": "io.secretsyncd.Frobnicate"})
    check(rep and rep.get("error") == "org.varlink.service.MethodNotFound", "unknown method: MethodNotFound")
    rep = varlink({"method": "io.secretsyncd.Status", "parameters": {"names": ["nope"]}})
    check(rep and rep.get("error") == "io.secretsyncd.NoSuchSecret" and rep["parameters"]["name"] == "nope",
          "NoSuchSecret names the secret")

    # ---- a non-root client
    r = ctl("status", user="65534")
    check(r.returncode != 0 and "only root" in r.stderr, f"nobody cannot open the 0600 socket ({r.stderr.strip()})")
    os.chmod(sock, 0o666)
    os.chmod(run, 0o755)
    os.chmod(s.path, 0o755)
    r = ctl("status", user="65534")
    check(r.returncode == 1 and "permission denied" in r.stderr and "postgres" not in r.stdout,
          f"with the socket opened up, the daemon still refuses uid nobody (SO_PEERCRED) ({r.stderr.strip()})")
    check(d.wait_log("refused a client with uid"), "the refusal is logged")
    os.chmod(sock, 0o600)
    os.chmod(run, 0o700)
finally:
    d.stop()

check(not os.path.exists(sock), "the socket is removed on exit")
check(os.path.exists(os.path.join(state, "status.json")), "status is saved in state_dir")
saved = json.load(open(os.path.join(state, "status.json")))
check(not no_secrets_in(json.dumps(saved)), "no secret value in the state file")

# ---- restart: status survives; unchanged data runs no on_change
runs = count(marker)
check(runs == 1, f"on_change ran once for the first write ({runs})")
d = Daemon(conf, s)
try:
    st = None
    check(wait_until(lambda: os.path.exists(sock)), "restarted: socket back")
    st = status_json("postgres")
    check(st and st["secrets"][0]["last_sync"] is not None, "restarted: status shows the last sync at once")
    check(st and st["secrets"][0]["data_hash"] == pg_hash, "restarted: and the data hash kept in state_dir")
    check(d.wait_log("secret 'postgres': fetched"), "restarted: postgres synced again")
    time.sleep(0.5)
    check(count(marker) == runs, "restarted: unchanged data does not run on_change again")
    check(f"{out}/postgres.env is up to date" in d.output(), "restarted: the target is reported up to date")
    last = by_name(status_json())["redis"]["last_sync"]
finally:
    d.stop()

# A store that lost redis's key: the last good sync is still shown, as Retrying.
data = dict(CHIMERA)
del data["chimera/redis-password"]
conf2 = s.write_config(config(data=data), name="lost.conf")
d = Daemon(conf2, s)
try:
    check(wait_until(lambda: os.path.exists(sock)), "restarted again")
    check(wait_until(lambda: (st := status_json()) is not None and by_name(st)["redis"]["status"] == "Retrying"),
          "redis failing after a success: Retrying")
    red = by_name(status_json())["redis"]
    check(red["last_sync"] == last, "Retrying keeps the last sync time from before the restart")
finally:
    d.stop()

# ---- a corrupt or foreign state file: a warning, never fatal
for content, what in ((b"{not json", "corrupt"), (b'{"format":"something-else","secrets":{}}', "foreign")):
    with open(os.path.join(state, "status.json"), "wb") as f:
        f.write(content)
    d = Daemon(conf, s)
    try:
        check(d.wait_log("status.json") and d.wait_log("ignoring it"), f"{what} state file: a warning")
        check(wait_until(lambda: (st := status_json()) is not None and by_name(st)["postgres"]["status"] == "Synced"),
              f"{what} state file: the daemon runs and syncs")
    finally:
        d.stop()

# ---- hostile clients while a round of syncs runs
resource.setrlimit(resource.RLIMIT_NOFILE, (4096, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
conf3 = s.write_config(config(extra_secrets=N_EXTRA), name="bulk.conf")
d = Daemon(conf3, s)
hostile = []
try:
    check(wait_until(lambda: os.path.exists(sock)), "bulk: socket up")

    def connect():
        c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        c.setblocking(True)
        c.connect(sock)
        return c

    for i in range(1000):  # a thousand idle connections
        hostile.append(connect())
    c = connect()
    c.sendall(b'{"method":"io.secretsyncd.Status","param')  # a partial message, never finished
    hostile.append(c)
    for _ in range(5):  # ask for the big status, never read it
        c = connect()
        c.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        c.sendall(b'{"method":"io.secretsyncd.Status"}\0')
        hostile.append(c)
    big = connect()
    try:
        big.sendall(b"{" + b" " * (1024 * 1024))  # over the message limit, no NUL
    except OSError:
        pass
    hostile.append(big)

    t0 = time.monotonic()
    r = ctl("refresh", "--all", timeout=60)
    took = time.monotonic() - t0
    check("bulk-999: Synced" in r.stdout, f"refresh --all of {N_EXTRA + 3} secrets completes with hostile clients ({took:.2f}s)")
    t0 = time.monotonic()
    r = ctl("status")
    took = time.monotonic() - t0
    check(r.returncode == 0 and len(r.stdout.splitlines()) == N_EXTRA + 4 and took < 5,
          f"status answers beside them ({took:.2f}s)")
    big.settimeout(5)
    try:
        reply = big.recv(65536)
    except OSError:
        reply = b""
    check(b"InvalidParameter" in reply or reply == b"", "an oversize message is refused")
    check(d.proc.poll() is None, "the daemon is still running")
finally:
    for c in hostile:
        c.close()
    d.stop()

# ---- refresh --wait for a secret that a reload removes meanwhile: answered, not left hanging
from vault_server import VaultServer  # noqa: E402

vault = VaultServer().start()
try:
    vault.put_secret("slow/s", {"v": "slow-value-1"})
    token = s.p("vault-token")
    with open(token, "w") as f:
        f.write("root\n")
    os.chmod(token, 0o600)

    def slow_config(with_slow):
        slow = f"""{{ name = "slow"; store = "vault";
     data = ( {{ secret_key = "v"; remote_ref = {{ key = "slow/s"; property = "v"; }}; }} );
     files = ( {{ path = "{out}/slow.env"; format = "env"; }} ); }},""" if with_slow else ""
        return s.write_config(f"""
daemon = {{ runtime_dir = "{run}"; state_dir = "{state}"; }};
stores = {{ {fake_store()}
  vault = {{ type = "vault"; server = "{vault.url}"; auth = {{ method = "token"; token_file = "{token}"; }}; }}; }};
secrets = ( {slow}
  {{ name = "redis"; store = "demo";
     data = ( {{ secret_key = "password"; remote_ref = {{ key = "chimera/redis-password"; property = "password"; }}; }} );
     files = ( {{ path = "{out}/redis.env"; format = "env"; }} ); }} );
""", name="slow.conf")

    d = Daemon(slow_config(True), s)
    check(wait_until(lambda: os.path.exists(sock)) and d.wait_log("fetched 'slow/s'", timeout=10),
          "a daemon with a slow secret answers")
    vault.set_latency(3000)
    waiter = subprocess.Popen([CTL, "--socket", sock, "refresh", "slow"], stdout=subprocess.PIPE, text=True)
    time.sleep(0.5)
    slow_config(False)
    d.signal(signal.SIGHUP)
    try:
        o, _ = waiter.communicate(timeout=10)
        check(waiter.returncode == 1 and "slow: Removed" in o and "removed from the configuration" in o,
              f"refresh waiting for a secret a reload removed is answered: Removed, exit 1 ({o.strip()!r})")
    except subprocess.TimeoutExpired:
        waiter.kill()
        check(False, "refresh waiting for a secret a reload removed is answered")
    d.stop()
finally:
    vault.stop()

s.cleanup()
done()
