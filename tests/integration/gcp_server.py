"""Stand-ins for Google Secret Manager (REST v1, AccessSecretVersion, global and regional),
Google's OAuth 2.0 token endpoint (the service-account JWT bearer grant), Security Token
Service (token exchange for workload identity federation), IAM Service Account Credentials
(generateAccessToken) and the GCE metadata server, answering as Google's REST references
show. Python standard library, and openssl through rsa_jwt.

    gcp = GcpServer(tls_cert, tls_key, scratch_dir)
    key_path = gcp.add_service_account("reader@chimera-prod.iam.gserviceaccount.com")
    gcp.add_pool_provider(audience, issuer, issuer_key_pem)  # workload identity federation
    gcp.allow_impersonation(principal, sa_email)
    gcp.put_secret("db-password", b"bytes")              # versions 1, 2, ...; location=...
    gcp.grant(principal, "db-password")
    gcp.start(); ...; gcp.stop()

What it verifies, as Google does: Secret Manager wants a valid, unexpired bearer token (an
access token it issued, or a service account's self-signed JWT, as Google's client
libraries send); the token endpoint verifies the assertion's RS256 signature with the
service account's public key, its audience (token_uri), scope, issuer and lifetime; STS
verifies the subject token's signature against the pool provider's issuer key, its issuer
and audience; IAM Credentials checks the caller may impersonate; the metadata server wants
Metadata-Flavor: Google.
"""
import base64
import json
import os
import secrets
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler

import rsa_jwt
from standin_http import StandinServer

PROJECT, PROJECT_NUMBER = "chimera-prod", "123456789012"
SCOPE = "https://www.googleapis.com/auth/cloud-platform"
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"


def crc32c(data):
    crc = 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 & -(crc & 1))
    return crc ^ 0xFFFFFFFF


class GcpServer:
    def __init__(self, tls_cert, tls_key, directory, token_lifetime=3599, delay=0.0):
        self.directory = directory
        self.token_lifetime = token_lifetime
        self.delay = delay
        self.accounts = {}    # email -> (RsaPublicKey, private_key_id)
        self.providers = {}   # audience -> (issuer, RsaPublicKey)
        self.impersonation = {}  # principal -> set of emails
        self.secrets = {}     # (location, name) -> [ {"data", "state"} ]
        self.grants = {}      # principal -> set of names ("*": all)
        self.tokens = {}      # token -> {"principal", "exp", "scope"}
        self.throttle, self.fail, self.corrupt = {}, {}, set()
        self.token_requests = []
        self.reads = []
        self._issued = []
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def reply(self, code, obj, headers=()):
                data = json.dumps(obj).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json; charset=UTF-8")
                self.send_header("Content-Length", str(len(data)))
                for k, v in headers:
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def body(self):
                n = int(self.headers.get("Content-Length") or 0)
                return self.rfile.read(n) if n else b""

            def do_GET(self):
                if outer.delay:
                    time.sleep(outer.delay)
                u = urllib.parse.urlsplit(self.path)
                if u.path.startswith("/v1/projects/") and u.path.endswith(":access"):
                    return outer._access(self, u.path[len("/v1/"):-len(":access")])
                if u.path.startswith("/computeMetadata/"):
                    return outer._metadata(self, u)
                if u.path == "/subject-token":
                    return outer._subject(self)
                return google_error(self, 404, "NOT_FOUND", "no route for %s" % u.path)

            def do_POST(self):
                u = urllib.parse.urlsplit(self.path)
                body = self.body()
                if u.path == "/token":
                    return outer._oauth_token(self, urllib.parse.parse_qs(body.decode()))
                if u.path == "/v1/token":
                    ctype = self.headers.get("Content-Type", "")
                    form = json.loads(body) if "json" in ctype else {
                        k: v[0] for k, v in urllib.parse.parse_qs(body.decode()).items()}
                    return outer._sts(self, form)
                if u.path.startswith("/v1/projects/-/serviceAccounts/") and u.path.endswith(":generateAccessToken"):
                    email = urllib.parse.unquote(u.path[len("/v1/projects/-/serviceAccounts/"):-len(":generateAccessToken")])
                    return outer._generate(self, email, json.loads(body or b"{}"))
                return google_error(self, 404, "NOT_FOUND", "no route for %s" % u.path)

        self.httpd = StandinServer(Handler, tls_cert, tls_key)
        self.url = self.httpd.url
        self.metadata_httpd = StandinServer(Handler)
        self.metadata_url = self.metadata_httpd.url
        self.metadata_host = self.metadata_url[len("http://"):]
        self.metadata_account = None
        self.subject_token = None  # what /subject-token serves (a URL-sourced credential)

    # ------------------------------------------------------------ set-up ----

    def add_service_account(self, email):
        """A service account with a new RSA key; returns the path of its JSON key file as IAM
        issues it (mode 0600)."""
        name = email.split("@")[0]
        pem = rsa_jwt.make_rsa_key(os.path.join(self.directory, name + ".pem"))
        kid = secrets.token_hex(20)
        self.accounts[email] = (rsa_jwt.RsaPublicKey(pem), kid)
        with open(pem) as f:
            private_key = f.read()
        key = {"type": "service_account", "project_id": PROJECT, "private_key_id": kid, "private_key": private_key,
               "client_email": email, "client_id": str(secrets.randbelow(10 ** 20)),
               "auth_uri": "https://accounts.google.com/o/oauth2/auth", "token_uri": self.url + "/token",
               "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
               "client_x509_cert_url": "https://www.googleapis.com/robot/v1/metadata/x509/" + email,
               "universe_domain": "googleapis.com"}
        path = os.path.join(self.directory, name + ".json")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(key, f, indent=2)
        return path

    def add_pool_provider(self, audience, issuer, issuer_key):
        self.providers[audience] = (issuer, rsa_jwt.RsaPublicKey(issuer_key))

    def allow_impersonation(self, principal, email):
        self.impersonation.setdefault(principal, set()).add(email)

    def put_secret(self, name, data, location=None, state="ENABLED"):
        versions = self.secrets.setdefault((location, name), [])
        versions.append({"data": data, "state": state})
        return str(len(versions))

    def grant(self, principal, name="*"):
        self.grants.setdefault(principal, set()).add(name)

    def revoke_tokens(self):
        with self.lock:
            self.tokens.clear()

    def issued_tokens(self):
        with self.lock:
            return list(self._issued)

    def start(self):
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        threading.Thread(target=self.metadata_httpd.serve_forever, daemon=True).start()

    def stop(self):
        self.httpd.shutdown()
        self.metadata_httpd.shutdown()

    # ------------------------------------------------------------ tokens ----

    def _issue(self, principal, scope=SCOPE):
        tok = "ya29.c." + secrets.token_urlsafe(64)
        with self.lock:
            self.tokens[tok] = {"principal": principal, "exp": time.time() + self.token_lifetime, "scope": scope}
            self._issued.append(tok)
        return tok

    def _oauth_error(self, h, error, description):
        self.token_requests.append(("error", error))
        return h.reply(400, {"error": error, "error_description": description})

    def _oauth_token(self, h, form):
        f = {k: v[0] for k, v in form.items()}
        if f.get("grant_type") != JWT_BEARER:
            return self._oauth_error(h, "unsupported_grant_type", "Invalid grant_type: %s" % f.get("grant_type"))
        try:
            header, claims, signing_input, sig = rsa_jwt.decode(f.get("assertion", ""))
        except (ValueError, UnicodeDecodeError):
            return self._oauth_error(h, "invalid_grant", "Invalid JWT: malformed.")
        account = self.accounts.get(claims.get("iss"))
        if account is None:
            return self._oauth_error(h, "invalid_grant", "Invalid grant: account not found")
        key, kid = account
        if header.get("alg") != "RS256" or ("kid" in header and header["kid"] != kid) or \
                not key.verify(signing_input, sig):
            return self._oauth_error(h, "invalid_grant", "Invalid JWT Signature.")
        now = time.time()
        if claims.get("aud") != self.url + "/token":
            return self._oauth_error(h, "invalid_grant", "Invalid JWT: Token must be a short-lived token (60 minutes) "
                                     "and in a reasonable timeframe. Check your iat and exp values in the JWT claim.")
        iat, exp = claims.get("iat"), claims.get("exp")
        if not isinstance(iat, int) or not isinstance(exp, int) or exp < now or iat > now + 300 or exp - iat > 3600:
            return self._oauth_error(h, "invalid_grant", "Invalid JWT: Token must be a short-lived token (60 minutes) "
                                     "and in a reasonable timeframe. Check your iat and exp values in the JWT claim.")
        if SCOPE not in str(claims.get("scope", "")).split():
            return self._oauth_error(h, "invalid_scope", "Invalid OAuth scope or ID token audience provided.")
        self.token_requests.append(("jwt_bearer", claims["iss"]))
        return h.reply(200, {"access_token": self._issue(claims["iss"]), "expires_in": self.token_lifetime,
                             "token_type": "Bearer"})

    def _sts(self, h, f):
        def err(error, text):
            self.token_requests.append(("error", error))
            return h.reply(400, {"error": error, "error_description": text})
        if f.get("grant_type") != TOKEN_EXCHANGE:
            return err("invalid_grant", "Invalid value for \"grant_type\".")
        provider = self.providers.get(f.get("audience"))
        if provider is None:
            return err("invalid_target", "The target service indicated by the \"audience\" parameters is invalid.")
        if f.get("subject_token_type") not in ("urn:ietf:params:oauth:token-type:jwt",
                                               "urn:ietf:params:oauth:token-type:id_token"):
            return err("invalid_request", "Invalid value for \"subject_token_type\".")
        issuer, key = provider
        try:
            header, claims, signing_input, sig = rsa_jwt.decode(f.get("subject_token", ""))
        except (ValueError, UnicodeDecodeError):
            return err("invalid_grant", "Unable to parse the ID Token.")
        aud = claims.get("aud")
        expected = "https:" + f["audience"]
        if not key.verify(signing_input, sig, header.get("alg", "")) or claims.get("iss") != issuer:
            return err("invalid_grant", "Invalid JWT signature or issuer.")
        if expected not in (aud if isinstance(aud, list) else [aud]):
            return err("invalid_grant", "The audience in ID Token [%s] does not match the expected audience %s." % (
                aud, expected))
        if not isinstance(claims.get("exp"), int) or claims["exp"] < time.time():
            return err("invalid_grant", "ID Token issued at %s is stale to sign-in." % claims.get("iat"))
        pool = f["audience"].split("/providers/")[0].replace("//iam.googleapis.com/", "")
        principal = "principal://iam.googleapis.com/%s/subject/%s" % (pool, claims.get("sub"))
        self.token_requests.append(("sts", principal))
        return h.reply(200, {"access_token": self._issue(principal, f.get("scope", "")),
                             "issued_token_type": "urn:ietf:params:oauth:token-type:access_token",
                             "token_type": "Bearer", "expires_in": self.token_lifetime})

    def _bearer(self, h):
        auth = h.headers.get("Authorization", "")
        if not auth.startswith("Bearer "):
            return None
        tok = auth[7:]
        with self.lock:
            t = self.tokens.get(tok)
        if t is not None:
            return t if t["exp"] >= time.time() else None
        # A service account's self-signed JWT, as Google's client libraries send one.
        try:
            header, claims, signing_input, sig = rsa_jwt.decode(tok)
        except (ValueError, UnicodeDecodeError):
            return None
        account = self.accounts.get(claims.get("iss"))
        if account is None or not account[0].verify(signing_input, sig) or claims.get("sub") != claims.get("iss"):
            return None
        if not isinstance(claims.get("exp"), int) or claims["exp"] < time.time():
            return None
        self.token_requests.append(("self_signed_jwt", claims["iss"]))
        return {"principal": claims["iss"], "exp": claims["exp"], "scope": claims.get("scope", SCOPE)}

    def _generate(self, h, email, body):
        t = self._bearer(h)
        if t is None:
            return unauthenticated(h)
        if email not in self.impersonation.get(t["principal"], set()) or email not in self.accounts:
            self.token_requests.append(("error", "getAccessToken"))
            return google_error(h, 403, "PERMISSION_DENIED", "Permission 'iam.serviceAccounts.getAccessToken' denied on "
                                "resource (or it may not exist).")
        if SCOPE not in body.get("scope", []):
            return google_error(h, 400, "INVALID_ARGUMENT", "Request contains an invalid argument: scope.")
        self.token_requests.append(("impersonate", email))
        tok = self._issue(email)
        exp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + self.token_lifetime))
        return h.reply(200, {"accessToken": tok, "expireTime": exp})

    def _metadata(self, h, u):
        if h.headers.get("Metadata-Flavor") != "Google":
            return h.reply(403, {"error": "Missing Metadata-Flavor:Google header."})
        hdr = [("Metadata-Flavor", "Google")]
        base = "/computeMetadata/v1/"
        path = u.path[len(base):] if u.path.startswith(base) else None
        if path in ("", "instance", "instance/"):
            return h.reply(200, {"id": 1}, hdr)
        if path == "project/project-id":
            return reply_text(h, PROJECT, hdr)
        if self.metadata_account is None:
            return reply_text(h, "service account not found", hdr, 404)
        if path == "instance/service-accounts/default/email":
            return reply_text(h, self.metadata_account, hdr)
        if path == "instance/service-accounts/default/token":
            self.token_requests.append(("metadata", self.metadata_account))
            return h.reply(200, {"access_token": self._issue(self.metadata_account), "expires_in": self.token_lifetime,
                                 "token_type": "Bearer"}, hdr)
        return reply_text(h, "not found", hdr, 404)

    def _subject(self, h):
        if h.headers.get("Metadata") != "True":
            return h.reply(400, {"error": "Metadata header required"})
        return h.reply(200, {"access_token": self.subject_token})

    # ---------------------------------------------------- Secret Manager ----

    def _access(self, h, name):
        parts = name.split("/")
        if len(parts) == 6 and parts[2] == "secrets" and parts[4] == "versions":
            project, location, secret, version = parts[1], None, parts[3], parts[5]
        elif len(parts) == 8 and parts[2] == "locations" and parts[4] == "secrets" and parts[6] == "versions":
            project, location, secret, version = parts[1], parts[3], parts[5], parts[7]
        else:
            return google_error(h, 400, "INVALID_ARGUMENT", "Invalid resource field value in the request.")
        t = self._bearer(h)
        if t is None:
            return unauthenticated(h)
        shown = name
        with self.lock:
            for d, code, status in ((self.throttle, 429, "RESOURCE_EXHAUSTED"), (self.fail, 503, "UNAVAILABLE")):
                if d.get(secret, 0) > 0:
                    d[secret] -= 1
                    self.reads.append((secret, version, code))
                    return google_error(h, code, status, "Quota exceeded for quota metric 'Access requests' and limit "
                                        "'Access requests per minute per project'." if code == 429 else
                                        "The service is currently unavailable.")
        granted = self.grants.get(t["principal"], set())
        if project not in (PROJECT, PROJECT_NUMBER) or ("*" not in granted and secret not in granted):
            self.reads.append((secret, version, 403))
            return google_error(h, 403, "PERMISSION_DENIED", "Permission 'secretmanager.versions.access' denied for "
                                "resource '%s' (or it may not exist)." % shown)
        versions = self.secrets.get((location, secret))
        base = "projects/%s/%ssecrets/%s" % (PROJECT_NUMBER, "locations/%s/" % location if location else "", secret)
        if not versions:
            self.reads.append((secret, version, 404))
            return google_error(h, 404, "NOT_FOUND", "Secret [%s] not found or has no versions." % base)
        if version == "latest":  # the most recently created version, whatever its state
            idx = len(versions) - 1
        else:
            idx = int(version) - 1 if version.isdigit() and 0 < int(version) <= len(versions) else None
        if idx is None:
            self.reads.append((secret, version, 404))
            return google_error(h, 404, "NOT_FOUND", "Secret Version [%s/versions/%s] not found." % (base, version))
        v = versions[idx]
        if v["state"] != "ENABLED":
            self.reads.append((secret, version, 400))
            return google_error(h, 400, "FAILED_PRECONDITION", "Secret Version [%s/versions/%d] is in %s state." % (
                base, idx + 1, v["state"]))
        self.reads.append((secret, version, 200))
        crc = crc32c(v["data"]) ^ (1 if secret in self.corrupt else 0)
        return h.reply(200, {"name": "%s/versions/%d" % (base, idx + 1),
                             "payload": {"data": base64.b64encode(v["data"]).decode(), "dataCrc32c": str(crc)}})


def google_error(h, code, status, message):
    return h.reply(code, {"error": {"code": code, "message": message, "status": status}})


def unauthenticated(h):
    return h.reply(401, {"error": {"code": 401, "message": "Request had invalid authentication credentials. Expected "
                                   "OAuth 2 access token, login cookie or other valid authentication credential.",
                                   "status": "UNAUTHENTICATED"}},
                   [("WWW-Authenticate", 'Bearer realm="https://accounts.google.com/"')])


def reply_text(h, text, headers, code=200):
    data = text.encode()
    h.send_response(code)
    h.send_header("Content-Type", "application/text")
    h.send_header("Content-Length", str(len(data)))
    for k, v in headers:
        h.send_header(k, v)
    h.end_headers()
    h.wfile.write(data)
