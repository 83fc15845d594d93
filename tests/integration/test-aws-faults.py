#!/usr/bin/env python3
"""The AWS store's failures that moto cannot make by itself, injected in front of it
(moto_server.py's faults), and the ones it can: throttling and 5xx retried with backoff,
a 5xx that lasts, DecryptionFailure, a secret scheduled for deletion, an oversize answer,
a clock too far off named as the cause, expired credentials refreshed once and the call
retried, an STS refusal. Each failure names the secret, the store and AWS's error code, and
the last good file is left as it was."""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lib import Scratch, check, done, require_daemon, run, skip

require_daemon()
from moto_server import Moto, have_moto, rerun_with_moto

if not have_moto():
    rerun_with_moto(__file__)
    skip("python3 modules moto and boto3 missing (pip install 'moto[server]' boto3)")

for k in list(os.environ):
    if k.startswith("AWS_"):
        del os.environ[k]
s = Scratch()
os.environ["HOME"] = s.path
out = s.p("out")
NEVER = ["pg-Good-Pw1", "redis-Good-Pw2"]
GET, BATCH = "secretsmanager.GetSecretValue", "secretsmanager.BatchGetSecretValue"


def cred(name, text):
    path = s.p(name)
    with open(path, "w") as f:
        f.write(text + "\n")
    os.chmod(path, 0o600)
    NEVER.append(text)
    return path


def config(auth, keys, name, extra=""):
    entries = ", ".join(f"""{{ name = "{k.split('/')[1]}"; store = "aws";
       data = ( {{ secret_key = "v"; remote_ref = {{ key = "{k}"; }}; }} );
       files = ( {{ path = "{out}/{k.split('/')[1]}"; format = "raw"; key = "v"; }} ); }}""" for k in keys)
    return s.write_config(name=name, text=f"""
stores = {{ aws = {{ type = "aws"; region = "{Moto.region}"; endpoint = "{moto.url}"; sts_endpoint = "{moto.url}"; {extra}
                     auth = {{ {auth} }}; }}; }};
secrets = ( {entries} );
""")


def read(name):
    try:
        with open(os.path.join(out, name)) as f:
            return f.read()
    except FileNotFoundError:
        return None


outputs = []


def once(conf, *faults):
    moto.fault(*faults)
    moto.counts(reset=True)
    t0 = time.monotonic()
    r = run(["-c", conf, "--once"], timeout=120)
    outputs.append(r.stdout + r.stderr)
    moto.fault()
    return r, moto.counts(), time.monotonic() - t0


moto = Moto(s.p("moto.log"))
try:
    sm = moto.client("secretsmanager")
    sm.create_secret(Name="chimera/postgres", SecretString="pg-Good-Pw1")
    sm.create_secret(Name="chimera/redis", SecretString="redis-Good-Pw2")
    sm.create_secret(Name="chimera/leaving", SecretString="leaving-Pw3")
    NEVER.append("leaving-Pw3")
    key_id, secret = moto.user("app", [{"Effect": "Allow", "Resource": "*", "Action": [
        "secretsmanager:GetSecretValue", "secretsmanager:BatchGetSecretValue"]}])
    static = f'method = "static"; access_key_id = "{key_id}"; secret_access_key_file = "{cred("app.key", secret)}";'
    one = config(static, ["chimera/postgres"], "one.conf")
    both = config(static, ["chimera/postgres", "chimera/redis"], "both.conf")

    r, n, _ = once(both)
    check(r.returncode == 0 and read("postgres") == "pg-Good-Pw1", "a good run writes the files")

    # --- throttling, retried with backoff and jitter
    r, n, dt = once(both, {"action": BATCH, "count": 2, "status": 400, "type": "ThrottlingException",
                           "message": "Rate exceeded"})
    check(r.returncode == 0 and n.get(BATCH) == 3, f"throttling is retried until the call succeeds ({n}, {dt:.1f} s)")

    # --- a 5xx once: retried; a 5xx that lasts: the sync fails, named, the file untouched
    r, n, _ = once(one, {"action": GET, "count": 1, "status": 500, "type": "InternalFailure"})
    check(r.returncode == 0 and n.get(GET) == 2, f"a 500 is retried ({n})")
    r, n, dt = once(one, {"action": GET, "count": -1, "status": 503, "type": "ServiceUnavailable",
                          "message": "Service is unavailable"})
    check(r.returncode == 1 and "secret 'postgres'" in r.stderr and "store 'aws'" in r.stderr
          and "HTTP 503 ServiceUnavailable" in r.stderr and "retries" in r.stderr,
          f"a lasting 503 fails after its retries, naming secret, store and code ({dt:.1f} s)")
    check(read("postgres") == "pg-Good-Pw1", "the last good file is left as it was")

    # --- an answer that does not come in time
    slow = config(static, ["chimera/postgres"], "slow.conf", 'timeout = "1s";')
    r, n, dt = once(slow, {"action": GET, "count": -1, "delay_ms": 4000, "delay_only": True})
    check(r.returncode == 1 and "timed out" in r.stderr and "chimera/postgres" in r.stderr and dt < 3.5,
          f"the store's timeout ends a read that hangs ({dt:.1f} s for timeout = 1s)")
    check(read("postgres") == "pg-Good-Pw1", "the file stays")

    # --- DecryptionFailure (KMS)
    r, n, _ = once(one, {"action": GET, "count": -1, "status": 400, "type": "DecryptionFailureException",
                         "message": "Secrets Manager can't decrypt the protected secret text using the provided KMS key."})
    check(r.returncode == 1 and "DecryptionFailureException" in r.stderr and "chimera/postgres" in r.stderr
          and n.get(GET) == 1, "DecryptionFailure fails the sync at once, with the code and the secret")

    # --- scheduled for deletion (moto's own InvalidRequestException)
    sm.delete_secret(SecretId="chimera/leaving", RecoveryWindowInDays=7)
    r, n, _ = once(config(static, ["chimera/leaving"], "leaving.conf"))
    check(r.returncode == 1 and "InvalidRequestException" in r.stderr and "chimera/leaving" in r.stderr,
          "a secret scheduled for deletion fails with InvalidRequestException, named")

    # --- an answer over the size limit
    r, n, _ = once(one, {"action": GET, "count": -1, "status": 200, "oversize": 6 * 1024 * 1024})
    check(r.returncode == 1 and "too large" in r.stderr and read("postgres") == "pg-Good-Pw1",
          "an oversize answer fails the sync; the file stays")

    # --- a clock too far off: named as the cause
    r, n, _ = once(one, {"action": GET, "count": -1, "status": 400, "type": "InvalidSignatureException",
                         "message": "Signature expired: 20240101T000000Z is now earlier than 20260101T000000Z",
                         "headers": {"Date": "Mon, 01 Jan 2024 00:00:00 GMT"}})
    check(r.returncode == 1 and "InvalidSignatureException" in r.stderr and "clock" in r.stderr
          and "NTP" in r.stderr, "a refused signature with the server's Date far off names this system's clock")

    # --- expired credentials: refreshed once, then the call again
    role = moto.role("faults-role", [{"Effect": "Allow", "Resource": "*", "Action": [
        "secretsmanager:GetSecretValue", "secretsmanager:BatchGetSecretValue"]}])
    token = cred("web-identity-token", "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQ6Y2hpbWVyYTplc28ifQ.c2ln")
    web = config(f'method = "web-identity"; role_arn = "{role}"; token_file = "{token}";', ["chimera/postgres"], "web.conf")
    r, n, _ = once(web, {"action": GET, "count": 1, "status": 400, "type": "ExpiredTokenException",
                         "message": "The security token included in the request is expired"})
    check(r.returncode == 0 and n.get("AssumeRoleWithWebIdentity") == 2 and n.get(GET) == 2,
          f"an expired session is refreshed once and the call made again ({n})")

    # --- STS refuses the web identity
    r, n, _ = once(web, {"action": "AssumeRoleWithWebIdentity", "count": -1, "status": 403, "xml": True,
                         "type": "AccessDenied", "message": "Not authorized to perform sts:AssumeRoleWithWebIdentity"})
    check(r.returncode == 1 and "AccessDenied" in r.stderr and "AssumeRoleWithWebIdentity" in r.stderr
          and "auth-failed" in r.stderr, "an STS refusal fails with its code and an auth-failed event")

    leaked = [v for v in NEVER if any(v in o for o in outputs)]
    check(not leaked, f"no secret value, key or token in any output ({leaked})")
finally:
    moto.stop()
    s.cleanup()
done()
