#!/usr/bin/env python3
"""AWS store benchmarks against moto (IAM and signatures enforced), figures printed:

  1. HTTP requests for one sync of 40 and of 1,000 secrets (target: at most ceil(N/20)
     Secrets Manager calls, plus the credential calls: none for static keys, one STS call
     for web identity);
  2. time and peak RSS of `--once` for 1,000 secrets from moto, beside the fake store
     (target: RSS within 1 MiB of the fake store's);
  3. 100 secrets written to env files: secretsyncd beside what operators script today,
     `aws secretsmanager get-secret-value` + `jq` in a shell loop (target: >= 50x faster).

Needs python3 modules moto and boto3, and for 3. the aws CLI and jq.
"""
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
from moto_server import Moto, have_moto  # noqa: E402

DAEMON = os.environ.get("SECRETSYNCD") or os.path.join(HERE, "..", "..", "build", "secretsyncd")


def config(d, n, store, name="bench.conf"):
    out = os.path.join(d, "out")
    os.makedirs(out, exist_ok=True)
    secrets = ",\n".join(
        f'{{ name = "s{i}"; store = "{"aws" if "aws" in store.split("=")[0] else "demo"}"; data = ( {{ secret_key = "PASSWORD"; '
        f'remote_ref = {{ key = "bench/s{i}"; property = "password"; }}; }} ); '
        f'files = ( {{ path = "{out}/s{i}.env"; format = "env"; }} ); }}' for i in range(n))
    path = os.path.join(d, name)
    with open(path, "w") as f:
        f.write(f'daemon = {{ log_level = "warning"; }};\nstores = {{ {store} }};\nsecrets = (\n{secrets}\n);\n')
    os.chmod(path, 0o600)
    return path, out


def once(conf, env=None):
    e = dict(os.environ, **(env or {}))
    t0 = time.monotonic()
    p = subprocess.run(["/usr/bin/time", "-f", "%M", DAEMON, "-c", conf, "--once"], stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE, text=True, env=e)
    dt = time.monotonic() - t0
    if p.returncode != 0:
        sys.exit(f"--once failed: {p.stderr[-800:]}")
    return dt, int(p.stderr.strip().split("\n")[-1])


def main():
    if not have_moto():
        print("SKIP: python3 modules moto and boto3 missing")
        return 77
    d = tempfile.mkdtemp(prefix="secretsyncd-bench-aws-")
    moto = Moto(os.path.join(d, "moto.log"))
    try:
        sm = moto.client("secretsmanager")
        n_max = 1000
        for i in range(n_max):
            sm.create_secret(Name=f"bench/s{i}", SecretString='{"password":"value-%d"}' % i)
        key_id, secret = moto.user("bench", [{"Effect": "Allow", "Resource": "*", "Action": [
            "secretsmanager:GetSecretValue", "secretsmanager:BatchGetSecretValue"]}])
        key_file = os.path.join(d, "aws.key")
        with open(key_file, "w") as f:
            f.write(secret)
        os.chmod(key_file, 0o600)
        aws_store = (f'aws = {{ type = "aws"; region = "{moto.region}"; endpoint = "{moto.url}"; '
                     f'auth = {{ method = "static"; access_key_id = "{key_id}"; secret_access_key_file = "{key_file}"; }}; }};')

        print("1. HTTP requests for one sync (static keys: no credential calls)")
        for n in (40, 1000):
            conf, _ = config(d, n, aws_store)
            moto.counts(reset=True)
            once(conf)
            c = moto.counts()
            calls = sum(c.values())
            print(f"   {n:5d} secrets: {calls} Secrets Manager calls ({c}); bound ceil(N/20) = {math.ceil(n / 20)}; "
                  f"ESO: {n}")

        print("2. --once, 1,000 secrets, each to its own env file (best of 3)")
        fake_data = ",\n".join('{ key = "bench/s%d"; value = "{\\"password\\":\\"value-%d\\"}"; }' % (i, i)
                               for i in range(n_max))
        fake_conf, _ = config(d, n_max, f"demo = {{ type = \"fake\"; data = ( {fake_data} ); }};", "fake.conf")
        aws_conf, _ = config(d, n_max, aws_store, "aws.conf")
        for name, conf in (("fake store", fake_conf), ("moto      ", aws_conf)):
            runs = [once(conf) for _ in range(3)]
            print(f"   {name}: {min(r[0] for r in runs):.2f} s, peak RSS {min(r[1] for r in runs) / 1024:.1f} MiB")

        print("3. 100 secrets to env files")
        conf, out = config(d, 100, aws_store, "hundred.conf")
        t_daemon = min(once(conf)[0] for _ in range(3))
        if not shutil.which("aws") or not shutil.which("jq"):
            print(f"   secretsyncd: {t_daemon:.2f} s; the aws CLI or jq is missing: no comparison")
            return 0
        script = os.path.join(d, "loop.sh")
        loop_out = os.path.join(d, "loop")
        os.makedirs(loop_out, exist_ok=True)
        with open(script, "w") as f:
            f.write(f"""set -e
for i in $(seq 0 99); do
  v=$(aws secretsmanager get-secret-value --endpoint-url {moto.url} --region {moto.region} \\
        --secret-id bench/s$i --query SecretString --output text | jq -r .password)
  printf 'PASSWORD="%s"\\n' "$v" > {loop_out}/s$i.env.tmp && mv {loop_out}/s$i.env.tmp {loop_out}/s$i.env
done
""")
        env = dict(os.environ, AWS_ACCESS_KEY_ID=key_id, AWS_SECRET_ACCESS_KEY=secret)
        t0 = time.monotonic()
        subprocess.run(["sh", script], check=True, env=env)
        t_loop = time.monotonic() - t0
        same = all(open(os.path.join(out, f"s{i}.env")).read() == open(os.path.join(loop_out, f"s{i}.env")).read()
                   for i in range(100))
        print(f"   secretsyncd --once: {t_daemon:.2f} s; aws CLI + jq loop: {t_loop:.1f} s; "
              f"{t_loop / t_daemon:.0f}x faster (target >= 50x); same files: {same}")
        return 0
    finally:
        moto.stop()
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
