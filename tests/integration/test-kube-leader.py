#!/usr/bin/env python3
"""Leader election and an API server that is away, against the stand-in API server:

* two daemons with the same Kubernetes targets elect one leader; only it writes Secrets
  (both write their files); the other takes over within a lease duration after the leader
  is SIGKILLed, and repairs drift from then on;
* a leader that cannot renew (its Lease access revoked) stops before its lease runs out;
* SIGTERM releases the Lease at once;
* --once writes Kubernetes targets only if it holds or can take the Lease, and otherwise
  says it skipped them;
* the API server down at start: files are written, READY=1 is not held back, and the
  Secrets come once it is back."""
import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lib import Daemon, NotifySocket, Scratch, check, done, fake_store, require_daemon, run, skip

require_daemon()
import tls
from kube_server import KubeServer

if not tls.have_openssl():
    skip("openssl command missing (needed to make test certificates)")

s = Scratch()
m = tls.make_all(s.p("tls"))
NODES = {"node-a": "tok-node-a-51d2", "node-b": "tok-node-b-93e7"}
WRITES = ["create", "update", "patch", "delete"]


def kubeconfig(node):
    path = s.p(f"kubeconfig-{node}")
    with open(path, "w") as f:
        f.write(f"""clusters: [ {{ name: k, cluster: {{ server: "{kube.url}", certificate-authority: "{m.ca_cert}" }} }} ]
users: [ {{ name: u, user: {{ token: "{NODES[node]}" }} }} ]
contexts: [ {{ name: k, context: {{ cluster: k, user: u }} }} ]
current-context: k
""")
    os.chmod(path, 0o600)
    return path


def config(node, election=True, name=None):
    return s.write_config(name=name or f"{node}.conf", text=f"""
daemon = {{ min_backoff = "300ms"; max_backoff = "1s"; }};
stores = {{ {fake_store()} }};
kubernetes = {{ kubeconfig = "{kubeconfig(node)}";
               leader_election = {{ enabled = {"true" if election else "false"}; namespace = "kube-system";
                                    lease_name = "secretsyncd"; identity = "{node}";
                                    lease_duration = "3s"; renew_deadline = "2s"; retry_period = "500ms"; }}; }};
secrets = (
  {{ name = "redis-credentials"; store = "demo";
     data = ( {{ secret_key = "password"; remote_ref = {{ key = "chimera/redis-password"; property = "password"; }}; }} );
     kubernetes = {{ namespace = "chimera"; name = "redis-secret"; }};
     files = ( {{ path = "{s.p('out', node, 'redis.env')}"; format = "env"; }} ); }}
);
""")


def wait(pred, timeout=10.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(0.05)
    return pred()


def holder():
    lease = kube.get_lease("kube-system", "secretsyncd")
    return (lease or {}).get("spec", {}).get("holderIdentity")


def grant_leases(user):
    kube.grant(user, ["get", "create", "update"], ["leases"], namespaces=["kube-system"],
               api_groups=["coordination.k8s.io"])


kube = KubeServer(tls_cert=m.server_cert, tls_key=m.server_key)
kube.start()
daemons = []
try:
    kube.create_namespace("chimera")
    kube.create_namespace("kube-system")
    for node, token in NODES.items():
        user = f"system:node:{node}"
        kube.add_user(user, token=token)
        kube.grant(user, ["get", "list", "watch", "create", "patch", "delete"], ["secrets"], namespaces=["chimera"])
        grant_leases(user)

    # --- two daemons, one leader
    a = Daemon(config("node-a"), s, args=[])
    daemons.append(a)
    check(a.wait_log("leader: this node writes", timeout=10), "node-a becomes the leader")
    check(wait(lambda: kube.secret_data("chimera", "redis-secret") == {"password": "redis-s3cret"}), "the leader writes the Secret")
    s2 = Scratch()
    b = Daemon(config("node-b"), s2)
    daemons.append(b)
    check(wait(lambda: os.path.exists(s.p("out", "node-b", "redis.env")), 10), "the follower writes its files")
    time.sleep(2.0)
    check("leader: this node" not in b.output(), "node-b is not the leader while node-a renews")
    check(holder() == "node-a", f"the Lease names node-a ({holder()})")
    check(kube.count(verb=WRITES, resource="secrets", user="system:node:node-b") == 0, "the follower writes no Secret")

    # --- the leader dies: the follower takes over within a lease duration, and repairs
    a.proc.kill()
    a.proc.wait()
    killed = time.monotonic()
    took = b.wait_log("leader: this node writes", timeout=10)
    elapsed = time.monotonic() - killed
    check(took and elapsed < 3.0 + 1.5, f"node-b takes over {elapsed:.1f} s after node-a's SIGKILL (lease 3 s)")
    check(holder() == "node-b", f"the Lease names node-b ({holder()})")
    kube.put_secret("chimera", "redis-secret", data={"password": "tampered"},
                    labels={"app.kubernetes.io/managed-by": "secretsyncd"}, manager="kubectl-edit")
    check(wait(lambda: kube.secret_data("chimera", "redis-secret") == {"password": "redis-s3cret"}, 5),
          "the new leader repairs an edit")
    check(kube.count(verb=WRITES, resource="secrets", user="system:node:node-b") >= 1, "node-b wrote it")

    # --- a leader that cannot renew stops before its lease runs out
    a2 = Daemon(config("node-a", name="node-a2.conf"), s)
    daemons.append(a2)
    time.sleep(1.0)
    check("leader: this node" not in a2.output(), "a restarted node-a follows node-b")
    kube.revoke("system:node:node-b")
    kube.grant("system:node:node-b", ["get", "list", "watch", "create", "patch", "delete"], ["secrets"],
               namespaces=["chimera"])
    revoked = time.monotonic()
    lost = b.wait_log("no longer the leader", timeout=6)
    lost_after = time.monotonic() - revoked
    check(lost and lost_after < 3.0, f"node-b stops leading {lost_after:.1f} s after it cannot renew (deadline 2 s, lease 3 s)")
    check(a2.wait_log("leader: this node writes", timeout=8), "node-a takes over once node-b's lease ran out")
    grant_leases("system:node:node-b")

    # --- SIGTERM releases the Lease at once
    rc = a2.stop()
    check(rc == 0, f"SIGTERM: exit 0 ({rc})")
    check(wait(lambda: holder() in (None, "", "node-b"), 2), f"the Lease is released at SIGTERM ({holder()})")
    rc = b.stop()
    check(rc == 0, "the other one stops too")

    # --- --once: skipped while another holds the Lease, written when it can take it
    kube.put_lease("kube-system", "secretsyncd", holder="node-z", duration=30)
    kube.delete_object("secrets", "redis-secret", "chimera")
    r = run(["-c", config("node-a"), "--once"])
    check(r.returncode == 0 and "skipped Kubernetes Secret chimera/redis-secret" in r.stderr and "node-z" in r.stderr,
          "--once says it skipped the Secret while node-z holds the Lease")
    check(kube.get_secret("chimera", "redis-secret") is None, "and wrote nothing")
    kube.put_lease("kube-system", "secretsyncd", holder="", duration=1)
    r = run(["-c", config("node-a"), "--once"])
    check(r.returncode == 0 and kube.secret_data("chimera", "redis-secret") == {"password": "redis-s3cret"},
          "--once takes a free Lease and writes")
    check(holder() in (None, ""), f"--once releases the Lease when done ({holder()})")

    # --- the API server down at start
    kube.delete_object("secrets", "redis-secret", "chimera")
    kube.down()
    notify = NotifySocket(s)
    c = Daemon(config("node-a", election=False, name="down.conf"), s, notify=notify)
    daemons.append(c)
    ready = notify.wait_for(lambda msg: msg.get("READY") == "1", timeout=15)
    check(ready is not None, "READY=1 with the API server down")
    check(os.path.exists(s.p("out", "node-a", "redis.env")), "files are written meanwhile")
    check(c.wait_log("cannot write Kubernetes Secret chimera/redis-secret", timeout=5), "the Secret's failure is reported")
    kube.up()
    check(wait(lambda: kube.secret_data("chimera", "redis-secret") == {"password": "redis-s3cret"}, 10),
          "the Secret is written once the API server is back")
    rc = c.stop()
    check(rc == 0, "SIGTERM: exit 0")
    out = "".join(d.output() for d in daemons)
    check(not [v for v in list(NODES.values()) + ["redis-s3cret"] if v in out], "no token or value in any output")
finally:
    for d in daemons:
        if d.proc.poll() is None:
            d.stop()
    kube.stop()
    s.cleanup()
done()
