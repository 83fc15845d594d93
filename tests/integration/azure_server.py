"""Stand-ins for Azure Key Vault (secrets, REST API 7.4), the Microsoft Entra ID token
endpoint (v2.0 client credentials) and the managed-identity instance metadata endpoint
(IMDS), answering as the Azure REST references show. Python standard library (and the
openssl command, through rsa_jwt, for RS256).

    az = AzureServer(tls_cert, tls_key)           # HTTPS: Key Vault and Entra ID on one port
    az.add_app("client-id", secret="s3cret")      # or cert=PEM path, or federated=(issuer, key)
    az.add_identity("mi-client-id", default=True) # managed identities (IMDS on plain http)
    az.put_secret("name", "value")                # versions accumulate; the last is current
    az.grant("client-id", "name")                 # RBAC: who may get which secret ("*": all)
    az.start(); ...; az.stop()

What it verifies, as the real services do: the vault answers 401 with the bearer challenge
to a request without a valid token; a token is for the vault's audience, unexpired and not
revoked; the token endpoint checks the tenant, the scope, the client secret or the client
assertion (RS256 signature against the registered certificate, its x5t#S256 or x5t
thumbprint, audience, issuer, subject, expiry) or the federated token (signature against
the issuer's key, issuer, subject, audience api://AzureADTokenExchange, expiry); IMDS needs
the Metadata: true header.
"""
import json
import secrets
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler

import rsa_jwt
from standin_http import StandinServer

VAULT_RESOURCE = "https://vault.azure.net"
TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
FEDERATED_AUDIENCE = "api://AzureADTokenExchange"
CLIENT_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


class AzureServer:
    def __init__(self, tls_cert, tls_key, tenant=TENANT, token_lifetime=3599, delay=0.0):
        self.tenant = tenant
        self.token_lifetime = token_lifetime
        self.delay = delay
        self.apps = {}        # client_id -> {"secret"|"cert"|"federated"}
        self.identities = {}  # client_id -> {"default": bool}
        self.secrets = {}     # name -> [ {"version", "value", "enabled", "contentType"} ]
        self.grants = {}      # principal -> set of names ("*": every secret)
        self.tokens = {}      # access token -> {"principal", "aud", "exp"}
        self.throttle = {}    # name -> number of 429 answers still to give
        self.fail = {}        # name -> number of 503 answers still to give
        self.token_requests = []  # (grant, principal or error)
        self.reads = []           # (name, version, status)
        self._issued = []         # every access token handed out
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def reply(self, code, obj, headers=()):
                data = json.dumps(obj).encode() if not isinstance(obj, bytes) else obj
                self.send_response(code)
                self.send_header("Content-Type", "application/json; charset=utf-8")
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
                q = urllib.parse.parse_qs(u.query)
                if u.path.startswith("/secrets/"):
                    return outer._get_secret(self, u.path, q)
                if u.path.rstrip("/") == "/metadata/identity/oauth2/token":
                    return outer._imds(self, q)
                if u.path == "/common/discovery/instance":
                    return outer._discovery(self, q)
                if u.path.endswith("/v2.0/.well-known/openid-configuration"):
                    return outer._openid(self, u.path.split("/")[1])
                return self.reply(404, {"error": {"code": "NotFound", "message": "no route for %s" % u.path}})

            def do_POST(self):
                u = urllib.parse.urlsplit(self.path)
                parts = u.path.strip("/").split("/")
                if len(parts) == 4 and parts[1:] == ["oauth2", "v2.0", "token"]:
                    return outer._token(self, parts[0], urllib.parse.parse_qs(self.body().decode()))
                return self.reply(404, {"error": {"code": "NotFound", "message": "no route"}})

        self.httpd = StandinServer(Handler, tls_cert, tls_key)
        self.url = self.httpd.url
        # IMDS is plain http on the instance's link-local address.
        self.imds_httpd = StandinServer(Handler)
        self.imds_url = self.imds_httpd.url

    # ------------------------------------------------------------ set-up ----

    def add_app(self, client_id, secret=None, cert=None, federated=None):
        """An app registration: a client secret, a certificate (PEM path), or a federated
        identity credential (issuer, subject, issuer's public key PEM path)."""
        app = {}
        if secret is not None:
            app["secret"] = secret
        if cert is not None:
            app["cert"] = (rsa_jwt.RsaPublicKey(cert), rsa_jwt.cert_x5t(cert), rsa_jwt.cert_x5t(cert, "sha1"))
        if federated is not None:
            issuer, subject, key = federated
            app["federated"] = (issuer, subject, rsa_jwt.RsaPublicKey(key))
        self.apps[client_id] = app

    def add_identity(self, client_id, default=False):
        self.identities[client_id] = {"default": default}

    def put_secret(self, name, value, enabled=True, content_type=None):
        v = secrets.token_hex(16)
        self.secrets.setdefault(name, []).append({"version": v, "value": value, "enabled": enabled,
                                                  "contentType": content_type})
        return v

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
        threading.Thread(target=self.imds_httpd.serve_forever, daemon=True).start()

    def stop(self):
        self.httpd.shutdown()
        self.imds_httpd.shutdown()

    # ------------------------------------------------------------ tokens ----

    def _issue(self, principal, resource):
        tok = "eyJ0eXAiOiJKV1Qi." + secrets.token_urlsafe(48)
        with self.lock:
            self.tokens[tok] = {"principal": principal, "aud": resource, "exp": time.time() + self.token_lifetime}
            self._issued.append(tok)
        return tok

    def _aad_error(self, h, code, error, aadsts, text):
        self.token_requests.append(("error", "AADSTS%d" % aadsts))
        return h.reply(code, {"error": error, "error_description": "AADSTS%d: %s Trace ID: %s" % (
            aadsts, text, secrets.token_hex(8)), "error_codes": [aadsts], "timestamp": time.strftime(
            "%Y-%m-%d %H:%M:%SZ", time.gmtime()), "trace_id": secrets.token_hex(8),
            "correlation_id": secrets.token_hex(8)})

    def _openid(self, h, tenant):
        base = "%s/%s" % (self.url, tenant)
        return h.reply(200, {"token_endpoint": base + "/oauth2/v2.0/token",
                             "authorization_endpoint": base + "/oauth2/v2.0/authorize",
                             "issuer": "%s/%s/v2.0" % (self.url, tenant), "jwks_uri": base + "/discovery/v2.0/keys",
                             "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt"],
                             "response_types_supported": ["code", "id_token", "token"],
                             "end_session_endpoint": base + "/oauth2/v2.0/logout"})

    def _discovery(self, h, q):
        host = urllib.parse.urlsplit(self.url).netloc
        ep = q.get("authorization_endpoint", [""])[0]
        tenant = urllib.parse.urlsplit(ep).path.strip("/").split("/")[0] or self.tenant
        return h.reply(200, {"tenant_discovery_endpoint": "%s/%s/v2.0/.well-known/openid-configuration" % (
            self.url, tenant), "api-version": "1.1", "metadata": [
            {"preferred_network": host, "preferred_cache": host, "aliases": [host]}]})

    def _token(self, h, tenant, form):
        f = {k: v[0] for k, v in form.items()}
        if tenant not in (self.tenant, "organizations"):
            return self._aad_error(h, 400, "invalid_request", 90002, "Tenant '%s' not found." % tenant)
        if f.get("grant_type") != "client_credentials":
            return self._aad_error(h, 400, "unsupported_grant_type", 70003, "The app requested an unsupported grant type.")
        scope = f.get("scope", "")
        if not scope.endswith("/.default") or scope[: -len("/.default")].rstrip("/") != VAULT_RESOURCE:
            return self._aad_error(h, 400, "invalid_scope", 1002012, "The provided value for scope %s is not valid." % scope)
        cid = f.get("client_id", "")
        app = self.apps.get(cid)
        if app is None:
            return self._aad_error(h, 400, "unauthorized_client", 700016,
                                   "Application with identifier '%s' was not found in the directory." % cid)
        token_url = "%s/%s/oauth2/v2.0/token" % (self.url, tenant)
        if "client_secret" in f:
            if app.get("secret") is None or not secrets.compare_digest(f["client_secret"], app["secret"]):
                return self._aad_error(h, 401, "invalid_client", 7000215, "Invalid client secret provided.")
            grant = "client_secret"
        elif f.get("client_assertion_type") == CLIENT_ASSERTION_TYPE and "client_assertion" in f:
            err, grant = self._check_assertion(app, cid, f["client_assertion"], token_url)
            if err:
                return self._aad_error(h, 401 if err[0] != 70021 else 400, "invalid_client", err[0], err[1])
        else:
            return self._aad_error(h, 401, "invalid_client", 7000216,
                                   "'client_assertion', 'client_secret' or 'request' is required for the "
                                   "'client_credentials' grant type.")
        self.token_requests.append((grant, cid))
        tok = self._issue(cid, VAULT_RESOURCE)
        return h.reply(200, {"token_type": "Bearer", "expires_in": self.token_lifetime,
                             "ext_expires_in": self.token_lifetime, "access_token": tok})

    def _check_assertion(self, app, cid, assertion, token_url):
        try:
            header, claims, signing_input, sig = rsa_jwt.decode(assertion)
        except (ValueError, UnicodeDecodeError):
            return (50027, "JWT token is invalid or malformed."), None
        now = time.time()
        alg = header.get("alg")
        if alg not in ("RS256", "PS256"):
            return (5002738, "Invalid JWT token. '%s' is not a supported signature algorithm." % header.get("alg")), None
        if "x5t#S256" in header or "x5t" in header:
            if not app.get("cert"):
                return (700027, "Client assertion failed signature validation: no certificate is registered."), None
            key, s256, sha1 = app["cert"]
            if header.get("x5t#S256", s256) != s256 or header.get("x5t", sha1) != sha1:
                return (700027, "Client assertion contains an invalid signature. [Reason - The key was not found.]"), None
            if not key.verify(signing_input, sig, alg):
                return (700027, "Client assertion contains an invalid signature."), None
            if claims.get("aud") != token_url:
                return (700212, "No matching federated identity record found for presented assertion audience '%s'." % (
                    claims.get("aud"))), None
            if claims.get("iss") != cid or claims.get("sub") != cid:
                return (700021, "Client assertion application identifier doesn't match 'client_id' parameter."), None
            if not isinstance(claims.get("exp"), int) or claims["exp"] < now:
                return (700024, "Client assertion is not within its valid time range."), None
            if isinstance(claims.get("nbf"), int) and claims["nbf"] > now + 300:
                return (700024, "Client assertion is not within its valid time range."), None
            if not claims.get("jti"):
                return (50027, "JWT token is invalid: no jti."), None
            return None, "certificate"
        if not app.get("federated"):
            return (700027, "Client assertion failed signature validation."), None
        issuer, subject, key = app["federated"]
        if not key.verify(signing_input, sig, alg):
            return (700027, "Client assertion failed signature validation (federated token)."), None
        if claims.get("iss") != issuer or claims.get("sub") != subject:
            return (70021, "No matching federated identity record found for presented assertion. Assertion Issuer: "
                           "'%s'. Assertion Subject: '%s'." % (claims.get("iss"), claims.get("sub"))), None
        aud = claims.get("aud")
        if FEDERATED_AUDIENCE not in (aud if isinstance(aud, list) else [aud]):
            return (700212, "No matching federated identity record found for presented assertion audience '%s'." % aud), None
        if not isinstance(claims.get("exp"), int) or claims["exp"] < now:
            return (700024, "Client assertion is not within its valid time range."), None
        return None, "federated"

    def _imds(self, h, q):
        if h.headers.get("Metadata") != "true":
            return h.reply(400, {"error": "invalid_request", "error_description": "Required metadata header not specified"})
        if q.get("api-version", [""])[0] not in ("2018-02-01", "2019-08-01"):
            return h.reply(400, {"error": "invalid_request", "error_description": "Invalid api-version"})
        resource = q.get("resource", [""])[0].rstrip("/")
        if resource != VAULT_RESOURCE:
            return h.reply(400, {"error": "invalid_resource", "error_description":
                                 "AADSTS500011: The resource principal named %s was not found." % resource})
        cid = q.get("client_id", [None])[0]
        if cid is None:
            cid = next((k for k, v in self.identities.items() if v["default"]), None)
        if cid is None or cid not in self.identities:
            return h.reply(400, {"error": "invalid_request", "error_description": "Identity not found"})
        self.token_requests.append(("managed_identity", cid))
        tok = self._issue(cid, VAULT_RESOURCE)
        now = int(time.time())
        return h.reply(200, {"access_token": tok, "refresh_token": "", "expires_in": str(self.token_lifetime),
                             "expires_on": str(now + self.token_lifetime), "not_before": str(now),
                             "resource": resource, "token_type": "Bearer", "client_id": cid})

    # ------------------------------------------------------------- vault ----

    def _challenge(self, h, message):
        hdr = ('Bearer authorization="%s/%s", resource="%s"' % (self.url, self.tenant, VAULT_RESOURCE))
        return h.reply(401, {"error": {"code": "Unauthorized", "message": message}}, [("WWW-Authenticate", hdr)])

    def _get_secret(self, h, path, q):
        parts = path.strip("/").split("/")
        if q.get("api-version", [""])[0] == "":
            return h.reply(400, {"error": {"code": "BadParameter", "message": "The request URI contains an invalid "
                                           "api-version parameter."}})
        auth = h.headers.get("Authorization", "")
        if not auth.startswith("Bearer "):
            return self._challenge(h, "AKV10000: Request is missing a Bearer or PoP token.")
        with self.lock:
            tok = self.tokens.get(auth[7:])
        if tok is None:
            return self._challenge(h, "AKV10022: Invalid audience or the token was revoked.")
        if tok["exp"] < time.time():
            return self._challenge(h, "AKV10032: Token expired.")
        name = parts[1] if len(parts) > 1 else ""
        version = parts[2] if len(parts) > 2 and parts[2] else None
        principal = tok["principal"]
        with self.lock:
            if self.throttle.get(name, 0) > 0:
                self.throttle[name] -= 1
                self.reads.append((name, version, 429))
                return h.reply(429, {"error": {"code": "Throttled", "message": "Request was not processed because too "
                                               "many requests were received. Reason: VaultRequestTypeLimitReached"}},
                               [("Retry-After", "1")])
            if self.fail.get(name, 0) > 0:
                self.fail[name] -= 1
                self.reads.append((name, version, 503))
                return h.reply(503, {"error": {"code": "ServiceUnavailable", "message": "The service is unavailable."}})
        granted = self.grants.get(principal, set())
        if "*" not in granted and name not in granted:
            self.reads.append((name, version, 403))
            return h.reply(403, {"error": {"code": "Forbidden", "message": "Caller is not authorized to perform action "
                                           "on resource. Caller: appid=%s;iss=https://sts.windows.net/%s/ Action: "
                                           "'Microsoft.KeyVault/vaults/secrets/getSecret/action' Resource: "
                                           "'/subscriptions/0000/resourcegroups/chimera/providers/microsoft.keyvault/"
                                           "vaults/chimera-kv/secrets/%s'" % (principal, self.tenant, name),
                                           "innererror": {"code": "ForbiddenByRbac"}}})
        versions = self.secrets.get(name, [])
        entry = versions[-1] if versions and version is None else next(
            (v for v in versions if v["version"] == version), None)
        if entry is None:
            self.reads.append((name, version, 404))
            what = "(name/id) %s%s" % (name, "/" + version if version else "")
            return h.reply(404, {"error": {"code": "SecretNotFound", "message": "A secret with %s was not found in "
                                           "this key vault. If you recently deleted this secret you may be able to "
                                           "recover it using the correct recovery command." % what}})
        if not entry["enabled"]:
            self.reads.append((name, version, 403))
            return h.reply(403, {"error": {"code": "Forbidden", "message": "Operation get is not allowed on a "
                                           "disabled secret.", "innererror": {"code": "SecretDisabled"}}})
        self.reads.append((name, version, 200))
        out = {"value": entry["value"], "id": "%s/secrets/%s/%s" % (self.url, name, entry["version"]),
               "attributes": {"enabled": True, "created": 1767225600, "updated": 1767225600,
                              "recoveryLevel": "Recoverable+Purgeable", "recoverableDays": 90}, "tags": {}}
        if entry["contentType"]:
            out["contentType"] = entry["contentType"]
        return h.reply(200, out)

