#!/usr/bin/env python3
"""moto's server for the AWS tests, as `python3 -m moto.server` runs it, plus two things:

* Secrets Manager actions are authorized against the secret's ARN, as AWS does (moto
  itself checks them against "*", so a policy scoped to secret:chimera/* would deny all);
* STS AssumeRoleWithWebIdentity is served unsigned, as AWS serves it, and once a test has
  registered an OIDC issuer's key (POST /_secretsyncd/oidc, see Moto.oidc_key()) its token is
  checked as AWS checks it (moto checks nothing): the issuer an IAM OIDC provider of the
  account, the audience one of its client IDs, the RS256 signature the issuer's, exp ahead;
* every request is counted by action (GET /_secretsyncd/counts, POST to reset), so tests and
  the benchmark can say how many calls a sync took;
* faults, for the failures moto cannot make (POST /_secretsyncd/faults with a JSON list, see
  Moto.fault()): the next requests of an action answered with a given status, AWS error
  type and headers, or a huge body, or late.

Run as a script it serves; imported, `Moto` starts it with INITIAL_NO_AUTH_ACTION_COUNT so
that, past the admin user's creation, every request must be signed and allowed by IAM.
"""
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request

INITIAL_NO_AUTH = 3  # create_user, put_user_policy, create_access_key for the admin


def serve(host, port):
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
    from moto.secretsmanager.models import secretsmanager_backends
    from moto.secretsmanager.responses import SecretsManagerResponse
    from werkzeug.serving import run_simple

    def determine_resource(self):
        try:
            sid = json.loads(self.body or "{}").get("SecretId")
        except ValueError:
            sid = None
        if not sid:
            return "*"
        secret = secretsmanager_backends[self.current_account][self.region].secrets.get(sid)
        if secret is not None:
            return secret.arn
        return sid if sid.startswith("arn:") else f"arn:aws:secretsmanager:{self.region}:{self.current_account}:secret:{sid}"

    SecretsManagerResponse._determine_resource = determine_resource

    # AssumeRoleWithWebIdentity is unsigned in AWS (the token is the proof); moto's
    # authenticator would fail on the missing Authorization header.
    from moto.sts.responses import TokenResponse
    authorize = TokenResponse._authenticate_and_authorize_normal_action

    def sts_authorize(self, resource="*"):
        if "AssumeRoleWithWebIdentity" in self.querystring.get("Action", []):
            return
        authorize(self, resource)

    TokenResponse._authenticate_and_authorize_normal_action = sts_authorize

    oidc_keys = {}  # issuer URL -> rsa_jwt.RsaPublicKey
    assume_web_identity = TokenResponse.assume_role_with_web_identity

    def checked_assume_web_identity(self):
        if oidc_keys:
            check_web_identity(self._get_param("WebIdentityToken") or "", self.current_account, self.partition)
        return assume_web_identity(self)

    TokenResponse.assume_role_with_web_identity = checked_assume_web_identity

    def check_web_identity(token, account, partition):
        import rsa_jwt
        from moto.iam.models import iam_backends
        from moto.sts.exceptions import STSClientError
        try:
            header, claims, signed, sig = rsa_jwt.decode(token)
        except ValueError:
            raise STSClientError("InvalidIdentityToken", "The token is not a valid JWT")
        iss = str(claims.get("iss", ""))
        providers = iam_backends[account][partition].open_id_providers.values()
        provider = next((p for p in providers if p.url == iss.split("://", 1)[-1]), None)
        if provider is None:
            raise STSClientError("InvalidIdentityToken", "No OpenIDConnect provider found in your account for %s" % iss)
        aud = claims.get("aud")
        aud = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
        if not set(aud) & set(provider.client_id_list):
            raise STSClientError("InvalidIdentityToken", "Incorrect token audience")
        key = oidc_keys.get(iss)
        if key is None or header.get("alg") != "RS256" or not key.verify(signed, sig):
            raise STSClientError("InvalidIdentityToken", "Couldn't retrieve verification key from your identity "
                                 "provider,  please reference AssumeRoleWithWebIdentity documentation for requirements")
        if not isinstance(claims.get("exp"), (int, float)) or claims["exp"] < time.time():
            raise STSClientError("ExpiredTokenException", "Token expired: current date/time %d must be before the "
                                 "expiration date/time %s" % (time.time(), claims.get("exp")))

    counts = {}
    faults = []
    lock = threading.Lock()
    # A fault's Date header must be the only one, as AWS sends one: werkzeug adds its own
    # (BaseHTTPRequestHandler.send_response), so that one is made to say the fault's date.
    from werkzeug.serving import WSGIRequestHandler
    fault_date = threading.local()
    server_date = WSGIRequestHandler.date_time_string

    def date_time_string(self, timestamp=None):
        return getattr(fault_date, "value", None) or server_date(self, timestamp)

    WSGIRequestHandler.date_time_string = date_time_string
    app = DomainDispatcherApplication(create_backend_app)

    def take_fault(action):
        with lock:
            for f in faults:
                if f["action"] == action and f["count"] != 0:
                    f["count"] -= 1
                    return dict(f)
        return None

    def answer_fault(f, start_response):
        if f.get("delay_ms"):
            time.sleep(f["delay_ms"] / 1000.0)
        if f.get("oversize"):
            body = b'{"SecretString":"' + b"x" * int(f["oversize"]) + b'"}'
        elif f.get("xml"):  # STS's query protocol answers errors in XML
            body = (f'<ErrorResponse><Error><Type>Sender</Type><Code>{f.get("type", "InternalFailure")}</Code>'
                    f'<Message>{f.get("message", "injected")}</Message></Error></ErrorResponse>').encode()
        else:
            body = json.dumps({"__type": f.get("type", "InternalFailure"), "message": f.get("message", "injected")}).encode()
        headers = [("Content-Type", "application/x-amz-json-1.1"), ("Content-Length", str(len(body)))]
        extra = dict(f.get("headers") or {})
        fault_date.value = extra.pop("Date", None)
        headers += list(extra.items())
        start_response(f"{f.get('status', 500)} Fault", headers)
        return [body]

    def counting(environ, start_response):
        if environ.get("PATH_INFO") == "/_secretsyncd/oidc":
            import rsa_jwt
            import tempfile
            length = int(environ.get("CONTENT_LENGTH") or 0)
            req = json.loads(environ["wsgi.input"].read(length))
            with tempfile.NamedTemporaryFile("w", suffix=".pem") as f:
                f.write(req["public_key_pem"])
                f.flush()
                key = rsa_jwt.RsaPublicKey(f.name)
            with lock:
                oidc_keys[req["issuer"]] = key
            start_response("200 OK", [("Content-Length", "0")])
            return [b""]
        if environ.get("PATH_INFO") == "/_secretsyncd/faults":
            length = int(environ.get("CONTENT_LENGTH") or 0)
            with lock:
                faults[:] = json.loads(environ["wsgi.input"].read(length) or b"[]")
            start_response("200 OK", [("Content-Length", "0")])
            return [b""]
        if environ.get("PATH_INFO") == "/_secretsyncd/counts":
            with lock:
                body = json.dumps(counts).encode()
                if environ["REQUEST_METHOD"] == "POST":
                    counts.clear()
            start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
            return [body]
        action = environ.get("HTTP_X_AMZ_TARGET", "")
        if not action:
            length = int(environ.get("CONTENT_LENGTH") or 0)
            raw = environ["wsgi.input"].read(length) if length else b""
            import io
            environ["wsgi.input"] = io.BytesIO(raw)
            form = urllib.parse.parse_qs(raw.decode("utf-8", "replace"))
            action = form.get("Action", ["other"])[0]
        with lock:
            counts[action] = counts.get(action, 0) + 1
        fault_date.value = None
        f = take_fault(action)
        if f and not f.get("delay_only"):
            return answer_fault(f, start_response)
        if f:
            time.sleep(f["delay_ms"] / 1000.0)
        return app(environ, start_response)

    run_simple(host, port, counting, threaded=True)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def have_moto():
    try:
        import boto3  # noqa: F401
        import moto  # noqa: F401
        return True
    except ImportError:
        return False


def rerun_with_moto(path):
    """When this interpreter lacks moto (a PATH whose first python3 is the system's), run
    the script again with a pyenv interpreter that has it, as this kind of machine ships
    one; returns only if none is found."""
    import glob
    if os.environ.get("SECRETSYNCD_MOTO_RERUN"):
        return
    home = os.path.expanduser("~")
    for py in sorted(glob.glob(os.path.join(home, ".pyenv/versions/*/bin/python3")), reverse=True):
        if os.path.realpath(py) == os.path.realpath(sys.executable):
            continue
        probe = subprocess.run([py, "-c", "import moto, boto3"], capture_output=True)
        if probe.returncode == 0:
            os.environ["SECRETSYNCD_MOTO_RERUN"] = "1"
            os.execv(py, [py, os.path.abspath(path)] + sys.argv[1:])


class Moto:
    region = "us-east-1"
    account = "123456789012"

    def __init__(self, log_path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = dict(os.environ, INITIAL_NO_AUTH_ACTION_COUNT=str(INITIAL_NO_AUTH))
        for k in list(env):
            if k.startswith("AWS_"):
                del env[k]
        self.log = open(log_path, "w")
        self.proc = subprocess.Popen([sys.executable, os.path.abspath(__file__), str(self.port)], env=env,
                                     stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        else:
            raise RuntimeError("moto did not start")
        import boto3
        iam = self.client("iam", "AKIAIOSFODNN7EXAMPLE", "unused")
        iam.create_user(UserName="admin")
        iam.put_user_policy(UserName="admin", PolicyName="all", PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}))
        k = iam.create_access_key(UserName="admin")["AccessKey"]
        self.admin = (k["AccessKeyId"], k["SecretAccessKey"])
        self.boto3 = boto3

    def client(self, service, key_id=None, secret=None, token=None):
        import boto3
        key_id, secret = (key_id, secret) if key_id else self.admin
        return boto3.client(service, endpoint_url=self.url, region_name=self.region, aws_access_key_id=key_id,
                            aws_secret_access_key=secret, aws_session_token=token)

    def user(self, name, statements):
        """An IAM user with an inline policy; returns (access key id, secret key)."""
        iam = self.client("iam")
        iam.create_user(UserName=name)
        iam.put_user_policy(UserName=name, PolicyName="p", PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": statements}))
        k = iam.create_access_key(UserName=name)["AccessKey"]
        return k["AccessKeyId"], k["SecretAccessKey"]

    def role(self, name, statements, trust=None):
        iam = self.client("iam")
        trust = trust or {"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": ["sts:AssumeRole", "sts:AssumeRoleWithWebIdentity"]}]}
        arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
        iam.put_role_policy(RoleName=name, PolicyName="p", PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": statements}))
        return arn

    def oidc_key(self, issuer, public_key_pem):
        """From now on check web identity tokens: issuer's tokens must verify with this key (and
        the issuer must be an IAM OIDC provider, see oidc_provider())."""
        req = urllib.request.Request(self.url + "/_secretsyncd/oidc", method="POST",
                                     data=json.dumps({"issuer": issuer, "public_key_pem": public_key_pem}).encode())
        urllib.request.urlopen(req).close()

    def oidc_provider(self, issuer, client_ids):
        """An IAM OIDC identity provider for issuer (its ARN), as EKS creates one for IRSA."""
        return self.client("iam").create_open_id_connect_provider(
            Url=issuer, ClientIDList=list(client_ids), ThumbprintList=["9e99a48a9960b14926bb7f3b02e22da2b0ab7280"])[
            "OpenIDConnectProviderArn"]

    def counts(self, reset=False):
        req = urllib.request.Request(self.url + "/_secretsyncd/counts", method="POST" if reset else "GET",
                                     data=b"" if reset else None)
        with urllib.request.urlopen(req) as r:
            return json.loads(r.read())

    def fault(self, *faults):
        """Replace the faults: each a dict with "action" (e.g.
        "secretsmanager.GetSecretValue", "AssumeRoleWithWebIdentity"), "count" (-1: forever),
        and either "status" with "type" (the AWS error type), "message" and "headers", or
        "oversize" (a body of that many bytes), or "delay_ms" ("delay_only": then served)."""
        req = urllib.request.Request(self.url + "/_secretsyncd/faults", method="POST",
                                     data=json.dumps(list(faults)).encode())
        urllib.request.urlopen(req).close()

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


if __name__ == "__main__":
    serve("127.0.0.1", int(sys.argv[1]))
