#!/usr/bin/env python3
"""The AWS store against moto (which checks every SigV4 signature and IAM policy once past
its first actions): static keys, shared file, environment, web identity through moto's STS,
assume_role, IMDSv2 and container credentials (stand-in servers handing out moto STS
credentials), version stages and ids, binary secrets, ARNs, data_from, a denied secret
beside allowed ones, the batch-denied fallback, batching (request counts), wrong keys,
missing secrets, rotation + SIGUSR1; and no secret, key or token in any output."""
import base64
import json
import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lib import CHIMERA, CHIMERA_VALUES, Daemon, Scratch, check, done, require_daemon, run, skip

require_daemon()
from moto_server import Moto, have_moto, rerun_with_moto

if not have_moto():
    rerun_with_moto(__file__)
    skip("python3 modules moto and boto3 missing (pip install 'moto[server]' boto3)")
from aws_metadata_server import MetadataServer

for k in list(os.environ):
    if k.startswith("AWS_"):
        del os.environ[k]
s = Scratch()
os.environ["HOME"] = s.path  # no ~/.aws of this machine's
out = s.p("out")
NEVER = list(CHIMERA_VALUES) + ["rotated-Pw-7", "previous-Pw-0", "staged-Pw-8"]
BINARY = bytes(range(256)) + b"\x00\xff\n"
REGION, ACCOUNT = Moto.region, Moto.account
SCOPED = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:chimera/*"


def cred(name, text):
    path = s.p(name)
    with open(path, "w") as f:
        f.write(text + "\n")
    os.chmod(path, 0o600)
    NEVER.append(text)
    return path


def read(name, mode="r"):
    try:
        with open(os.path.join(out, name), mode) as f:
            return f.read()
    except FileNotFoundError:
        return None


def clean_out():
    for n in os.listdir(out) if os.path.isdir(out) else []:
        os.unlink(os.path.join(out, n))


def secret_entry(name, key, prop=None, version=None, fmt="raw", store="aws"):
    ref = f'key = "{key}";' + (f' property = "{prop}";' if prop else "") + (f' version = "{version}";' if version else "")
    return f"""{{ name = "{name}"; store = "{store}";
     data = ( {{ secret_key = "v"; remote_ref = {{ {ref} }}; }} );
     files = ( {{ path = "{out}/{name}"; format = "{fmt}"; key = "v"; }} ); }}"""


def chimera_entries():
    return [secret_entry(k.split("/")[1], k, json.loads(v) and list(json.loads(v))[-1]) for k, v in CHIMERA.items()]


def config(auth, entries, extra="", daemon="", name="secretsyncd.conf"):
    return s.write_config(name=name, text=f"""
daemon = {{ min_backoff = "200ms"; max_backoff = "1s"; {daemon} }};
stores = {{ aws = {{ type = "aws"; region = "{REGION}"; endpoint = "{moto.url}"; sts_endpoint = "{moto.url}"; {extra}
                     auth = {{ {auth} }}; }}; }};
secrets = ( {", ".join(entries)} );
""")


CURRENT = dict(CHIMERA)


def chimera_ok(what):
    for k, v in CURRENT.items():
        prop = list(json.loads(v))[-1]
        if read(k.split("/")[1]) != json.loads(v)[prop]:
            return check(False, f"{what}: {k} written")
    return check(True, f"{what}: the five chimera secrets written")


outputs = []


def once(conf, env=None):
    clean_out()
    moto.counts(reset=True)
    r = run(["-c", conf, "--once"], env=env, timeout=60)
    outputs.append(r.stdout + r.stderr)
    return r, moto.counts()


moto = Moto(s.p("moto.log"))
meta = None
try:
    sm = moto.client("secretsmanager")
    for k, v in CHIMERA.items():
        sm.create_secret(Name=k, SecretString=v)
    v0 = sm.create_secret(Name="chimera/versioned", SecretString="previous-Pw-0")["VersionId"]
    v1 = sm.put_secret_value(SecretId="chimera/versioned", SecretString="rotated-Pw-7")["VersionId"]
    sm.put_secret_value(SecretId="chimera/versioned", SecretString="staged-Pw-8", VersionStages=["STAGED"])
    bin_arn = sm.create_secret(Name="chimera/binary", SecretBinary=BINARY)["ARN"]
    sm.create_secret(Name="other/forbidden", SecretString='{"password":"forbidden-Pw-9"}')
    NEVER.append("forbidden-Pw-9")

    batcher = moto.user("batcher", [{"Effect": "Allow", "Resource": "*", "Action": [
        "secretsmanager:GetSecretValue", "secretsmanager:BatchGetSecretValue"]}])
    reader = moto.user("reader", [{"Effect": "Allow", "Resource": SCOPED, "Action": [
        "secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"]}])
    base_user = moto.user("base", [{"Effect": "Allow", "Resource": "*", "Action": "sts:AssumeRole"}])
    role_arn = moto.role("chimera-role", [{"Effect": "Allow", "Resource": "*", "Action": [
        "secretsmanager:GetSecretValue", "secretsmanager:BatchGetSecretValue"]}])
    for k in (batcher, reader, base_user):
        NEVER.append(k[1])
    batcher_key_file = cred("batcher.key", batcher[1])

    # moto enforces signatures and IAM: the least-privilege user cannot read other/*.
    try:
        moto.client("secretsmanager", *reader).get_secret_value(SecretId="other/forbidden")
        check(False, "moto enforces IAM on the secret's ARN")
    except Exception as e:
        check("AccessDenied" in str(e), "moto enforces IAM on the secret's ARN")

    # --- static keys: batching, versions, binary, ARN, data_from
    entries = chimera_entries() + [
        secret_entry("previous", "chimera/versioned", version="AWSPREVIOUS"),
        secret_entry("by-id", "chimera/versioned", version=f"uuid/{v0}"),
        secret_entry("staged", "chimera/versioned", version="STAGED"),
        secret_entry("current", "chimera/versioned"),
        secret_entry("binary", bin_arn),
        f"""{{ name = "minio-all"; store = "aws"; data_from = ( {{ extract = {{ key = "chimera/minio-credentials"; }}; }} );
             files = ( {{ path = "{out}/minio.json"; format = "json"; }} ); }}"""]
    conf = config(f'method = "static"; access_key_id = "{batcher[0]}"; secret_access_key_file = "{batcher_key_file}";',
                  entries)
    r, n = once(conf)
    check(r.returncode == 0, f"static: --once exits 0 ({r.stderr[-400:] if r.returncode else ''})")
    chimera_ok("static")
    check(read("previous") == "rotated-Pw-7" and read("by-id") == "previous-Pw-0" and read("staged") == "staged-Pw-8"
          and read("current") == "staged-Pw-8" or read("current") == "rotated-Pw-7",
          "version stages AWSPREVIOUS, STAGED and uuid/<VersionId>")
    check(read("binary", "rb") == BINARY, "SecretBinary by ARN written byte-exact")
    check(json.loads(read("minio.json") or "{}") == json.loads(CHIMERA["chimera/minio-credentials"]), "data_from extract")
    check(f"version {v0}" in r.stderr, "SECRETSYNC_VERSION is the VersionId")
    check("auth-ok" in r.stderr or "AWS credentials from static keys" in r.stderr, "auth-ok reported")
    check(n.get("secretsmanager.BatchGetSecretValue") == 1 and n.get("secretsmanager.GetSecretValue") == 3,
          f"8 unpinned ids in one BatchGetSecretValue, 3 pinned versions alone ({n})")

    # --- static keys with the key id in a file too (ESO keeps both in a Secret): read at each use
    id_file = s.p("batcher.id")
    with open(id_file, "w") as f:
        f.write(batcher[0] + "\n")
    os.chmod(id_file, 0o600)
    id_auth = f'method = "static"; access_key_id_file = "{id_file}"; secret_access_key_file = "{batcher_key_file}";'
    conf = config(id_auth, chimera_entries())
    r, n = once(conf)
    check(r.returncode == 0, f"static with access_key_id_file: --once exits 0 ({r.stderr[-400:] if r.returncode else ''})")
    chimera_ok("static with access_key_id_file")
    with open(id_file, "w") as f:
        f.write(reader[0] + "\n")  # another user's id: the key no longer matches it
    r, n = once(conf)
    check(r.returncode == 1 and "auth-failed" in r.stderr, "the key id is the file's: another user's id there is refused")
    os.unlink(id_file)
    r, n = once(conf)
    check(r.returncode == 1 and f"cannot read the access key id file {id_file}" in r.stderr,
          f"a missing id file is a sync failure naming it ({r.stderr[-300:]})")
    both = config(f'method = "static"; access_key_id = "{batcher[0]}"; access_key_id_file = "{id_file}"; '
                  f'secret_access_key_file = "{batcher_key_file}";', chimera_entries(), name="both.conf")
    r = run(["-c", both, "--check-config"])
    check(r.returncode == 2 and f"{both}:4: store 'aws': method static takes one of 'access_key_id' and "
          "'access_key_id_file'" in r.stderr, f"both access_key_id and access_key_id_file: FILE:LINE error ({r.stderr.strip()})")

    # --- shared file, least privilege: batch denied -> GetSecretValue each; a denied secret
    ini = cred("credentials", f"[default]\naws_access_key_id = AKIAOTHEROTHEROTHER1\naws_secret_access_key = nope\n\n"
                              f"[profile chimera]\naws_access_key_id = {reader[0]}\naws_secret_access_key = {reader[1]}\n")
    conf = config(f'method = "shared-file"; credentials_file = "{ini}"; profile = "chimera";',
                  chimera_entries() + [secret_entry("forbidden", "other/forbidden", "password")])
    r, n = once(conf)
    check(r.returncode == 1, "shared file: a denied secret fails the run")
    chimera_ok("shared file, beside a denied secret")
    check(read("forbidden") is None, "the denied secret is not written")
    check("other/forbidden" in r.stderr and "AccessDenied" in r.stderr and "GetSecretValue" in r.stderr,
          "the denial names the secret, the action and the AWS error code")
    check(r.stderr.count("BatchGetSecretValue is denied") == 1, f"the batch fallback is said once ({r.stderr})")
    check(n.get("secretsmanager.BatchGetSecretValue") == 1 and n.get("secretsmanager.GetSecretValue") == 6,
          f"one denied batch, then one GetSecretValue per secret ({n})")

    # --- a daemon keeps the batch off after the denial; rotation + SIGUSR1
    conf = config(f'method = "shared-file"; credentials_file = "{ini}"; profile = "chimera";', chimera_entries(),
                  daemon='refresh_interval = "1h";', name="daemon.conf")
    clean_out()
    d = Daemon(conf, s)
    check(d.wait_log("fetched 'chimera/grafana-admin'", timeout=20), "daemon: first sync")
    moto.counts(reset=True)
    sm.put_secret_value(SecretId="chimera/redis-password", SecretString='{"password":"redis-rotated-Pw-10"}')
    NEVER.append("redis-rotated-Pw-10")
    CURRENT["chimera/redis-password"] = '{"password":"redis-rotated-Pw-10"}'
    d.signal(signal.SIGUSR1)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and read("redis-password") != "redis-rotated-Pw-10":
        time.sleep(0.1)
    check(read("redis-password") == "redis-rotated-Pw-10", "rotation: SIGUSR1 picks up put-secret-value")
    time.sleep(0.5)
    n = moto.counts()
    check("secretsmanager.BatchGetSecretValue" not in n, f"the denied batch is not tried again soon ({n} {d.output()})")
    d.stop()
    outputs.append(d.output())

    # --- environment (method default)
    conf = config('method = "default";', chimera_entries())
    r, n = once(conf, env={"AWS_ACCESS_KEY_ID": batcher[0], "AWS_SECRET_ACCESS_KEY": batcher[1]})
    check(r.returncode == 0 and "the environment" in r.stderr, "default chain: keys from the environment")
    chimera_ok("environment")

    # --- web identity (config, then the environment as EKS sets it)
    jwt = cred("token", "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQ6Y2hpbWVyYTpzZWNyZXRzeW5jZCJ9.c2lnbmF0dXJl")
    conf = config(f'method = "web-identity"; role_arn = "{role_arn}"; token_file = "{jwt}";', chimera_entries())
    r, n = once(conf)
    check(r.returncode == 0, f"web identity: exits 0 ({r.stderr[-300:] if r.returncode else ''})")
    chimera_ok("web identity")
    check(n.get("AssumeRoleWithWebIdentity") == 1, f"one AssumeRoleWithWebIdentity ({n})")
    conf = config('method = "default";', chimera_entries())
    r, n = once(conf, env={"AWS_ROLE_ARN": role_arn, "AWS_WEB_IDENTITY_TOKEN_FILE": jwt})
    check(r.returncode == 0 and n.get("AssumeRoleWithWebIdentity") == 1, "default chain: web identity from the environment")

    # --- assume_role on top of static keys that alone may read nothing
    base_key = cred("base.key", base_user[1])
    conf = config(f'method = "static"; access_key_id = "{base_user[0]}"; secret_access_key_file = "{base_key}"; '
                  f'assume_role = {{ role_arn = "{role_arn}"; external_id = "chimera-ext"; session_name = "sync"; }};',
                  chimera_entries())
    r, n = once(conf)
    check(r.returncode == 0 and n.get("AssumeRole") == 1, f"assume_role: one signed AssumeRole, then reads ({n})")
    chimera_ok("assume_role")

    # --- IMDSv2 and the container endpoint, serving role credentials from moto's STS
    c = moto.client("sts", *base_user).assume_role(RoleArn=role_arn, RoleSessionName="node")["Credentials"]
    meta = MetadataServer(auth_token="container-auth-Tok-11")
    meta.creds = {"AccessKeyId": c["AccessKeyId"], "SecretAccessKey": c["SecretAccessKey"], "Token": c["SessionToken"],
                  "Expiration": c["Expiration"].strftime("%Y-%m-%dT%H:%M:%SZ")}
    NEVER += [c["SecretAccessKey"], c["SessionToken"], "container-auth-Tok-11"]
    meta.start()
    conf = config('method = "imds";', chimera_entries())
    r, n = once(conf, env={"AWS_EC2_METADATA_SERVICE_ENDPOINT": meta.url})
    check(r.returncode == 0, f"imds: exits 0 ({r.stderr[-300:] if r.returncode else ''})")
    chimera_ok("imds")
    check(meta.requests[:3] == [("PUT", "/latest/api/token"), ("GET", "/latest/meta-data/iam/security-credentials/"),
                                ("GET", "/latest/meta-data/iam/security-credentials/chimera-node")],
          f"IMDSv2: session token first, then the role ({meta.requests[:3]})")
    tok_file = cred("container-token", "container-auth-Tok-11")
    conf = config('method = "container";', chimera_entries())
    r, n = once(conf, env={"AWS_CONTAINER_CREDENTIALS_FULL_URI": meta.url + meta.container_path,
                           "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE": tok_file})
    check(r.returncode == 0, f"container (Pod Identity style): exits 0 ({r.stderr[-300:] if r.returncode else ''})")
    chimera_ok("container")
    r, n = once(conf, env={"AWS_CONTAINER_CREDENTIALS_FULL_URI": meta.url + meta.container_path,
                           "AWS_CONTAINER_AUTHORIZATION_TOKEN": "wrong"})
    check(r.returncode == 1 and "HTTP 401" in r.stderr and "auth-failed" in r.stderr,
          "container: a wrong authorization token is an auth failure")

    # --- failures: a wrong secret key, a missing secret
    wrong = cred("wrong.key", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYWRONGKEYXX")
    conf = config(f'method = "static"; access_key_id = "{batcher[0]}"; secret_access_key_file = "{wrong}";',
                  chimera_entries())
    r, n = once(conf)
    check(r.returncode == 1 and "refused the credentials" in r.stderr and "auth-failed" in r.stderr,
          f"a wrong secret key: refused, named, auth-failed ({r.stderr[-300:]})")
    conf = config(f'method = "static"; access_key_id = "{batcher[0]}"; secret_access_key_file = "{batcher_key_file}";',
                  [secret_entry("missing", "chimera/does-not-exist"), secret_entry("jwt", "chimera/jwt-secret", "secret")])
    r, n = once(conf)
    check(r.returncode == 1 and "ResourceNotFoundException" in r.stderr and "chimera/does-not-exist" in r.stderr,
          "a missing secret: ResourceNotFoundException, named (from the batch's Errors[])")
    check(read("jwt") == "jwt-0123456789abcdef", "the other secret of that batch is written")

    leaked = [v for v in NEVER if any(v in o for o in outputs)]
    check(not leaked, f"no secret value, key or token in any output ({len(leaked)} leaked)")
finally:
    if meta:
        meta.stop()
    moto.stop()
    s.cleanup()
done()
