#!/usr/bin/env python3
"""A stand-in HashiCorp Vault server for secretsyncd's integration tests.

Python 3 standard library only. It answers the parts of Vault's HTTP API that secretsyncd
uses the way Vault's API documentation and source describe them: the response envelope
({"request_id", "lease_id", "renewable", "lease_duration", "data", "wrap_info", "warnings",
"auth", "mount_type"}), error bodies ({"errors": [...]}, an empty list for a missing secret),
status codes, KV v1 and v2, token lookup/renewal (capped at the token's max TTL), the
approle, kubernetes, jwt and cert login methods, ACL policies, X-Vault-Namespace, sealing
and /v1/sys/health.

Everything a test needs to arrange or inspect goes through a control API that is not
Vault's: POST (or GET) /_test/<operation> with a JSON object of keyword arguments, answered
with the operation's JSON result; the same operations are methods of VaultServer for
in-process use. See CONTROL_OPS and the method docstrings.

Use in-process:

    with VaultServer(tls_cert=c, tls_key=k, client_ca=ca) as vault:
        vault.put_secret("chimera/db", {"password": "x"})
        token = vault.create_token(policies=["reader"], ttl=60)["id"]
        ... vault.url, vault.stats() ...

or as a process:

    python3 vault_server.py --port 0 --tls-cert C --tls-key K [--client-ca CA]
        [--state-file S] [--ready-file R] [--log L]

which prints the port it listens on as one line on stdout, writes R (JSON
{"port", "url", "pid", "root_token"}) once it is ready, and stops cleanly on SIGTERM/SIGINT.
"""

import argparse
import base64
import copy
import datetime
import fnmatch
import hashlib
import http.server
import json
import os
import re
import secrets
import signal
import socket
import ssl
import string
import sys
import threading
import time
import traceback
import urllib.parse
import uuid

VAULT_VERSION = "1.15.6"
DEFAULT_LEASE_TTL = 2764800          # 768h: Vault's default and max lease TTL
KV1_LEASE_DURATION = 2764800         # what KV v1 reports as lease_duration
DEFAULT_OVERSIZE = 32 * 1024 * 1024  # bytes of an "oversize" fault body

ERR_PERMISSION_DENIED = "permission denied"
ERR_SEALED = "Vault is sealed"

# Messages for injected faults that give no body of their own.
FAULT_MESSAGES = {
    400: "invalid request",
    403: ERR_PERMISSION_DENIED,
    405: "unsupported operation",
    412: "required index state not present",
    429: "rate limit quota exceeded",
    500: "internal error",
    502: "bad gateway",
    503: ERR_SEALED,
}

# The operations of the control API (POST /_test/<op>), all methods of VaultServer.
CONTROL_OPS = (
    "put_secret", "get_secret", "delete_secret", "undelete_secret", "destroy_secret", "remove_secret",
    "add_mount", "enable_auth", "configure_auth", "set_policy", "delete_policy",
    "create_token", "token_info", "expire_token", "revoke_token",
    "add_role", "add_approle", "add_kubernetes_role", "add_jwt_role", "add_cert_role", "delete_role",
    "seal", "unseal", "set_standby",
    "add_fault", "clear_faults", "list_faults", "set_latency",
    "stats", "reset_stats", "drop_connections",
)


# ---------------------------------------------------------------------------------------------
# Small helpers

_DURATION_UNITS = {"ns": 1e-9, "us": 1e-6, "\u00b5s": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600, "d": 86400}
_DURATION_RE = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|\u00b5s|ms|s|m|h|d)")


def parse_duration(value):
    """Seconds (int) from an int/float, a digit string, or a Go-style duration ("1h30m", "90s")."""
    if value is None or value == "":
        return 0
    if isinstance(value, bool):
        raise ValueError("bad duration %r" % (value,))
    if isinstance(value, (int, float)):
        return int(value)
    s = str(value).strip()
    if re.fullmatch(r"-?\d+", s):
        return int(s)
    pos, total = 0, 0.0
    for m in _DURATION_RE.finditer(s):
        if m.start() != pos:
            raise ValueError("bad duration %r" % (value,))
        total += float(m.group(1)) * _DURATION_UNITS[m.group(2)]
        pos = m.end()
    if pos != len(s) or pos == 0:
        raise ValueError("bad duration %r" % (value,))
    return int(total)


def go_duration(seconds):
    """Go's time.Duration String() for whole seconds: 3600 -> "1h0m0s", 90 -> "1m30s"."""
    seconds = int(seconds)
    if seconds == 0:
        return "0s"
    sign = "-" if seconds < 0 else ""
    seconds = abs(seconds)
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    if h:
        return "%s%dh%dm%ds" % (sign, h, m, s)
    if m:
        return "%s%dm%ds" % (sign, m, s)
    return "%s%ds" % (sign, s)


def rfc3339(ts):
    """RFC 3339 UTC time with microseconds, as Vault formats times (it gives nanoseconds)."""
    if ts is None:
        return None
    return datetime.datetime.fromtimestamp(ts, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _rand(n, alphabet=string.ascii_letters + string.digits):
    return "".join(secrets.choice(alphabet) for _ in range(n))


def new_token_id():
    return "hvs." + _rand(24)


def new_accessor():
    return _rand(24)


def norm_ns(ns):
    """A namespace path without leading/trailing slashes ("" is the root namespace)."""
    return (ns or "").strip().strip("/")


def norm_path(p):
    return (p or "").strip("/")


def _as_list(v):
    if v is None:
        return []
    if isinstance(v, str):
        return [x.strip() for x in v.split(",") if x.strip()]
    return list(v)


def _as_bool(v, default=False):
    if v is None:
        return default
    if isinstance(v, str):
        return v.strip().lower() in ("1", "true", "yes", "on")
    return bool(v)


def _pattern_regex(pattern):
    """A Vault ACL path pattern as a regex: '+' is one path segment, a trailing '*' a prefix."""
    glob = pattern.endswith("*")
    body = pattern[:-1] if glob else pattern
    out = []
    for part in re.split(r"(\+)", body):
        out.append("[^/]+" if part == "+" else re.escape(part))
    return re.compile("^" + "".join(out) + (".*" if glob else "") + "$")


def _pattern_rank(pattern):
    """Higher ranks win: an exact pattern beats any glob; then the longer literal part."""
    exact = not pattern.endswith("*") and "+" not in pattern
    literal = len(pattern.replace("*", "").replace("+", ""))
    return (1 if exact else 0, literal, -pattern.count("+"))


def jwt_claims(token):
    """The claims of a compact JWS, or None when it is not one (no signature check)."""
    parts = (token or "").split(".")
    if len(parts) != 3:
        return None
    try:
        raw = parts[1] + "=" * (-len(parts[1]) % 4)
        claims = json.loads(base64.urlsafe_b64decode(raw.encode()).decode())
    except (ValueError, UnicodeDecodeError):
        return None
    return claims if isinstance(claims, dict) else None


def pem_to_der(pem_text):
    m = re.search(r"-----BEGIN CERTIFICATE-----(.*?)-----END CERTIFICATE-----", pem_text, re.S)
    if not m:
        raise ValueError("no PEM certificate found")
    return base64.b64decode("".join(m.group(1).split()))


def _cert_subject_cn(parsed, field="subject"):
    for rdn in (parsed or {}).get(field, ()):
        for key, value in rdn:
            if key == "commonName":
                return value
    return None


def _fingerprint_norm(fp):
    return (fp or "").replace(":", "").strip().lower()


# ---------------------------------------------------------------------------------------------
# The server

class _ApiError(Exception):
    def __init__(self, status, errors=None, body=None):
        super().__init__(status)
        self.status = status
        self.errors = [] if errors is None else list(errors)
        self.body = body


class _HTTPServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256
    allow_reuse_address = True

    def __init__(self, addr, vault):
        self.vault = vault
        family = socket.AF_INET6 if ":" in addr[0] else socket.AF_INET
        self.address_family = family
        super().__init__(addr, _Handler)

    def get_request(self):
        sock, addr = self.socket.accept()
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass
        with self.vault._lock:
            self.vault._stats["connections"] += 1
        return sock, addr

    def finish_request(self, request, client_address):
        vault = self.vault
        conn = request
        try:
            if vault._ssl_ctx is not None:
                request.settimeout(10)
                try:
                    conn = vault._ssl_ctx.wrap_socket(request, server_side=True)
                except (ssl.SSLError, OSError) as e:
                    with vault._lock:
                        vault._stats["tls_failures"] += 1
                    vault._log("TLS handshake with %s failed: %s" % (client_address[0], e))
                    return
            conn.settimeout(vault.idle_timeout)
            with vault._lock:
                vault._conns.add(conn)
            try:
                self.RequestHandlerClass(conn, client_address, self)
            finally:
                with vault._lock:
                    vault._conns.discard(conn)
        finally:
            if conn is not request:
                try:
                    conn.close()
                except OSError:
                    pass

    def handle_error(self, request, client_address):
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, TimeoutError, ssl.SSLError, OSError)):
            return
        self.vault._log("error serving %s:\n%s" % (client_address[0], traceback.format_exc()))


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "VaultStandIn/" + VAULT_VERSION
    sys_version = ""

    # -- plumbing

    def log_message(self, fmt, *args):
        self.server.vault._log("%s %s" % (self.address_string(), fmt % args))

    def log_request(self, code="-", size="-"):
        self.log_message('"%s" %s %s', self.requestline, str(code), str(size))

    def do_GET(self):
        self._dispatch("GET")

    def do_HEAD(self):
        self._dispatch("HEAD")

    def do_POST(self):
        self._dispatch("POST")

    def do_PUT(self):
        self._dispatch("PUT")

    def do_PATCH(self):
        self._dispatch("PATCH")

    def do_DELETE(self):
        self._dispatch("DELETE")

    def do_LIST(self):
        self._dispatch("LIST")

    def _read_body(self):
        te = (self.headers.get("Transfer-Encoding") or "").lower()
        if "chunked" in te:
            chunks = []
            while True:
                line = self.rfile.readline(65537)
                if not line:
                    raise ValueError("truncated chunked body")
                size = int(line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while True:  # trailers
                        t = self.rfile.readline(65537)
                        if t in (b"\r\n", b"\n", b""):
                            break
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline(3)
            return b"".join(chunks)
        length = self.headers.get("Content-Length")
        if not length:
            return b""
        n = int(length)
        if n < 0:
            raise ValueError("negative Content-Length")
        data = self.rfile.read(n)
        if len(data) != n:
            raise ValueError("truncated body")
        return data

    def _raw_shutdown(self):
        try:
            socket.socket.shutdown(self.connection, socket.SHUT_RDWR)
        except OSError:
            pass
        self.close_connection = True

    def _write(self, data):
        try:
            self.wfile.write(data)
            return True
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError, OSError):
            self.close_connection = True
            return False

    def _send(self, method, status, payload, headers=None, mods=None, content_type=None):
        if payload is None:
            data = b""
        elif isinstance(payload, (bytes, bytearray)):
            data = bytes(payload)
        elif isinstance(payload, str):
            data = payload.encode()
        else:
            data = (json.dumps(payload, separators=(",", ":")) + "\n").encode()
        mods = mods or {}
        oversize = mods.get("oversize")
        if oversize:
            return self._send_oversize(status, oversize, mods, headers)
        self.send_response(status)
        if data or content_type:
            self.send_header("Content-Type", content_type or "application/json")
        self.send_header("Cache-Control", "no-store")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, str(v))
        if method == "HEAD":
            data = b""
        truncate = mods.get("truncate")
        if truncate and data:
            n = len(data) // 2 if truncate is True else max(0, min(int(truncate), len(data) - 1))
            data = data[:n]
        # Headers and body in one write: no Nagle / delayed-ACK stall between them.
        self._headers_buffer.append(b"\r\n")
        head = b"".join(self._headers_buffer)
        self._headers_buffer = []
        self._write(head + data)
        if truncate:
            self._raw_shutdown()

    def _send_oversize(self, status, oversize, mods, headers):
        size = DEFAULT_OVERSIZE if oversize is True else int(oversize)
        head = b'{"request_id":"' + str(uuid.uuid4()).encode() + \
            b'","lease_id":"","renewable":false,"lease_duration":0,"data":{"data":{"pad":"'
        tail = b'"},"metadata":{"version":1}},"wrap_info":null,"warnings":null,"auth":null}\n'
        pad = max(0, size - len(head) - len(tail))
        total = len(head) + pad + len(tail)
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Cache-Control", "no-store")
        self.send_header("Content-Length", str(total))
        for k, v in (headers or {}).items():
            self.send_header(k, str(v))
        self.end_headers()
        limit = total
        if mods.get("truncate"):
            limit = total // 2
        sent = 0
        block = b"A" * (1 << 20)
        if not self._write(head):
            return
        sent += len(head)
        while sent < min(limit, len(head) + pad):
            n = min(len(block), len(head) + pad - sent, limit - sent)
            if not self._write(block[:n]):
                return
            sent += n
        if sent < limit:
            self._write(tail[: limit - sent])
        if limit < total:
            self._raw_shutdown()

    def _token(self):
        tok = self.headers.get("X-Vault-Token")
        if tok:
            return tok.strip()
        auth = self.headers.get("Authorization") or ""
        if auth[:7].lower() == "bearer ":
            return auth[7:].strip()
        return None

    # -- dispatch

    def _dispatch(self, method):
        vault = self.server.vault
        try:
            body = self._read_body()
        except (ValueError, OSError):
            self._send(method, 400, {"errors": ["error reading request body"]})
            self.close_connection = True
            return
        split = urllib.parse.urlsplit(self.path)
        path = urllib.parse.unquote(split.path)
        query = urllib.parse.parse_qs(split.query, keep_blank_values=True)
        if path.startswith("/_test/") or path == "/_test":
            return self._control(method, path[len("/_test/"):], query, body)
        token = self._token()
        ns = norm_ns(self.headers.get("X-Vault-Namespace"))
        vault._record_request(method, path, token, ns)
        fault = vault._take_fault(method, path)
        mods = None
        if fault:
            if fault.get("delay_ms"):
                time.sleep(fault["delay_ms"] / 1000.0)
            if fault.get("drop"):
                vault._record_status(method, path, token, ns, "drop")
                self._raw_shutdown()
                return
            if fault.get("status"):
                st = int(fault["status"])
                fbody = fault.get("body")
                if fbody is None:
                    msg = FAULT_MESSAGES.get(st)
                    fbody = {"errors": [msg] if msg else []}
                vault._record_status(method, path, token, ns, st)
                self._send(method, st, fbody, fault.get("headers"), fault, fault.get("content_type"))
                return
            mods = fault
        try:
            status, payload, headers = vault._api(method, path, query, body, token, ns, self.connection)
        except _ApiError as e:
            status, payload, headers = e.status, (e.body if e.body is not None else {"errors": e.errors}), None
        except Exception:
            vault._log("internal error on %s %s:\n%s" % (method, path, traceback.format_exc()))
            status, payload, headers = 500, {"errors": ["internal error"]}, None
        vault._record_status(method, path, token, ns, status)
        self._send(method, status, payload, headers, mods)

    def _control(self, method, op, query, body):
        vault = self.server.vault
        op = op.strip("/").replace("-", "_")
        if op not in CONTROL_OPS:
            return self._send(method, 404, {"error": "unknown control operation %r" % op,
                                            "operations": list(CONTROL_OPS)})
        kwargs = {k: (v[-1] if len(v) == 1 else v) for k, v in query.items()}
        if body.strip():
            try:
                extra = json.loads(body)
            except ValueError as e:
                return self._send(method, 400, {"error": "bad JSON: %s" % e})
            if not isinstance(extra, dict):
                return self._send(method, 400, {"error": "the body must be a JSON object of arguments"})
            kwargs.update(extra)
        try:
            result = getattr(vault, op)(**kwargs)
        except (TypeError, ValueError, KeyError) as e:
            return self._send(method, 400, {"error": "%s: %s" % (type(e).__name__, e)})
        self._send(method, 200, {"ok": True} if result is None else result)


class VaultServer:
    """The stand-in Vault. Thread-safe; every public method is also a control operation."""

    def __init__(self, host="127.0.0.1", port=0, tls_cert=None, tls_key=None, client_ca=None,
                 root_token="root", kv2_mount="secret", kv1_mount="kv1", log=None, idle_timeout=300,
                 system_max_ttl=DEFAULT_LEASE_TTL):
        self.host = host
        self.requested_port = int(port)
        self.root_token = root_token
        self.idle_timeout = idle_timeout
        self.system_max_ttl = int(system_max_ttl)
        self.kv2_mount = norm_path(kv2_mount)
        self.kv1_mount = norm_path(kv1_mount)
        self._lock = threading.RLock()
        self._log_lock = threading.Lock()
        self._log_file = None
        if log:
            self._log_file = open(log, "a", buffering=1) if isinstance(log, str) else log
        self._ssl_ctx = None
        if tls_cert:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(tls_cert, tls_key)
            cas = [client_ca] if isinstance(client_ca, str) else list(client_ca or [])
            if cas:
                for ca in cas:
                    ctx.load_verify_locations(cafile=ca)
                ctx.verify_mode = ssl.CERT_OPTIONAL
            self._ssl_ctx = ctx
        self._httpd = None
        self._thread = None
        self._conns = set()
        self.cluster_id = str(uuid.uuid4())
        self._init_state()

    # -- lifecycle

    def _init_state(self):
        with self._lock:
            self._mounts = {self.kv2_mount: 2}
            if self.kv1_mount:
                self._mounts[self.kv1_mount] = 1
            self._kv = {}                 # (ns, mount, path) -> entry
            self._policies = {}           # name -> [(pattern, regex, caps)]
            self._tokens = {}             # id -> token dict
            self._accessors = {}          # accessor -> id
            self._auth_mounts = {("", "approle"): "approle", ("", "kubernetes"): "kubernetes",
                                 ("", "jwt"): "jwt", ("", "cert"): "cert"}
            self._roles = {}              # (ns, mount, name) -> role dict
            self._auth_config = {}        # (ns, mount) -> what auth/<mount>/config holds
            self._sealed = False
            self._standby = False
            self._faults = []
            self._fault_seq = 0
            self._latency = {"delay_ms": 0, "scope": "kv"}
            self._reset_stats_locked()
            self._add_token_locked(id=self.root_token, policies=["root"], ttl=0, renewable=False,
                                   display_name="root", path="auth/token/root", orphan=True)

    def start(self):
        """Listen and serve in a background thread; returns self."""
        self._httpd = _HTTPServer((self.host, self.requested_port), self)
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.2},
                                        name="vault-stand-in", daemon=True)
        self._thread.start()
        return self

    def stop(self):
        """Stop listening, drop every open connection, and close the log."""
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self.drop_connections()
            self._thread.join(5)
            self._httpd = None
        if self._log_file is not None and self._log_file not in (sys.stdout, sys.stderr):
            with self._log_lock:
                try:
                    self._log_file.close()
                except OSError:
                    pass
                self._log_file = None

    def __enter__(self):
        return self.start() if self._httpd is None else self

    def __exit__(self, *exc):
        self.stop()

    @property
    def port(self):
        return self._httpd.server_address[1]

    @property
    def scheme(self):
        return "https" if self._ssl_ctx else "http"

    @property
    def url(self):
        host = self.host
        if ":" in host:
            host = "[%s]" % host
        return "%s://%s:%d" % (self.scheme, host, self.port)

    def _log(self, msg):
        if self._log_file is None:
            return
        with self._log_lock:
            if self._log_file is not None:
                try:
                    self._log_file.write("%s %s\n" % (time.strftime("%H:%M:%S"), msg))
                except (OSError, ValueError):
                    pass

    def load_state(self, state):
        """Apply a state document: {op: [kwargs, ...]} or [{"op": op, ...kwargs}, ...]."""
        order = ("add_mount", "enable_auth", "configure_auth", "set_policy", "create_token", "add_role", "add_approle",
                 "add_kubernetes_role", "add_jwt_role", "add_cert_role", "put_secret", "delete_secret",
                 "destroy_secret", "set_latency", "add_fault", "set_standby", "seal")
        if isinstance(state, dict):
            unknown = [k for k in state if k not in CONTROL_OPS]
            if unknown:
                raise ValueError("unknown operations in state: %s" % ", ".join(unknown))
            steps = []
            for op in order + tuple(k for k in state if k not in order):
                items = state.get(op)
                if items is None:
                    continue
                for kw in (items if isinstance(items, list) else [items]):
                    steps.append((op, kw or {}))
        else:
            steps = []
            for item in state:
                item = dict(item)
                steps.append((item.pop("op"), item))
        for op, kw in steps:
            if op not in CONTROL_OPS:
                raise ValueError("unknown operation %r" % op)
            getattr(self, op)(**kw)

    # -- control: KV

    def _mount_for(self, mount, kv_version):
        if mount is None:
            mount = self.kv1_mount if kv_version == 1 else self.kv2_mount
        mount = norm_path(mount)
        if mount not in self._mounts:
            self._mounts[mount] = int(kv_version or 2)
        return mount

    def add_mount(self, path, version=2):
        """Mount a KV engine (version 1 or 2) at path (in every namespace)."""
        version = int(version)
        if version not in (1, 2):
            raise ValueError("version must be 1 or 2")
        with self._lock:
            self._mounts[norm_path(path)] = version

    def put_secret(self, path, data, mount=None, namespace="", kv_version=None, custom_metadata=None):
        """Write a secret; on KV v2 a new version. data: a JSON object (or its text).
        Returns {"mount", "path", "namespace", "version"} (version null on KV v1)."""
        if isinstance(data, str):
            data = json.loads(data)
        if not isinstance(data, dict):
            raise ValueError("data must be a JSON object")
        with self._lock:
            mount = self._mount_for(mount, kv_version)
            ns, path = norm_ns(namespace), norm_path(path)
            if self._mounts[mount] == 1:
                self._kv[(ns, mount, path)] = {"data": copy.deepcopy(data)}
                version = None
            else:
                meta = self._kv2_write(ns, mount, path, data)
                if custom_metadata is not None:
                    self._kv[(ns, mount, path)]["custom_metadata"] = dict(custom_metadata)
                version = meta["version"]
        return {"mount": mount, "path": path, "namespace": ns, "version": version}

    def _kv2_write(self, ns, mount, path, data):
        now = time.time()
        entry = self._kv.get((ns, mount, path))
        if entry is None:
            entry = {"versions": {}, "current": 0, "created": now, "updated": now, "custom_metadata": None}
            self._kv[(ns, mount, path)] = entry
        entry["current"] += 1
        entry["updated"] = now
        entry["versions"][entry["current"]] = {"data": copy.deepcopy(data), "created": now,
                                               "deletion_time": None, "destroyed": False}
        return self._kv2_version_meta(entry, entry["current"])

    @staticmethod
    def _kv2_version_meta(entry, n):
        v = entry["versions"][n]
        return {"created_time": rfc3339(v["created"]), "custom_metadata": copy.deepcopy(entry["custom_metadata"]),
                "deletion_time": rfc3339(v["deletion_time"]) or "", "destroyed": v["destroyed"], "version": n}

    def _kv_entry(self, path, mount, namespace):
        mount = norm_path(mount) if mount is not None else self.kv2_mount
        entry = self._kv.get((norm_ns(namespace), mount, norm_path(path)))
        if entry is None:
            raise KeyError("no secret %r on mount %r in namespace %r" % (path, mount, namespace))
        return mount, entry

    def _versions_of(self, entry, versions):
        if versions is None or versions == []:
            return [entry["current"]]
        return [int(v) for v in _as_list(versions)]

    def get_secret(self, path, mount=None, namespace="", version=None):
        """What is stored: {"data", "version", "deleted", "destroyed", "current_version"}."""
        with self._lock:
            mount, entry = self._kv_entry(path, mount, namespace)
            if "versions" not in entry:
                return {"data": copy.deepcopy(entry["data"]), "version": None}
            n = int(version) if version else entry["current"]
            v = entry["versions"].get(n)
            if v is None:
                raise KeyError("no version %d" % n)
            return {"data": copy.deepcopy(v["data"]), "version": n, "deleted": v["deletion_time"] is not None,
                    "destroyed": v["destroyed"], "current_version": entry["current"]}

    def delete_secret(self, path, versions=None, mount=None, namespace=""):
        """Soft-delete KV v2 versions (default: the latest); on KV v1 delete the secret."""
        with self._lock:
            mount, entry = self._kv_entry(path, mount, namespace)
            if "versions" not in entry:
                del self._kv[(norm_ns(namespace), mount, norm_path(path))]
                return
            for n in self._versions_of(entry, versions):
                v = entry["versions"].get(n)
                if v is not None and v["deletion_time"] is None and not v["destroyed"]:
                    v["deletion_time"] = time.time()

    def undelete_secret(self, path, versions=None, mount=None, namespace=""):
        with self._lock:
            mount, entry = self._kv_entry(path, mount, namespace)
            for n in self._versions_of(entry, versions):
                v = entry["versions"].get(n)
                if v is not None and not v["destroyed"]:
                    v["deletion_time"] = None

    def destroy_secret(self, path, versions=None, mount=None, namespace=""):
        """Permanently destroy KV v2 versions (default: the latest)."""
        with self._lock:
            mount, entry = self._kv_entry(path, mount, namespace)
            for n in self._versions_of(entry, versions):
                v = entry["versions"].get(n)
                if v is not None:
                    v["destroyed"] = True
                    v["data"] = None

    def remove_secret(self, path, mount=None, namespace=""):
        """Remove a secret with all its versions and metadata."""
        with self._lock:
            mount = norm_path(mount) if mount is not None else self.kv2_mount
            self._kv.pop((norm_ns(namespace), mount, norm_path(path)), None)

    # -- control: policies and tokens

    def set_policy(self, name, rules):
        """Define an ACL policy. rules: {"secret/data/chimera/*": ["read"], ...}, or a list of
        {"path": ..., "capabilities": [...]} or [path, capabilities] pairs. A trailing '*' is a
        prefix glob, '+' one path segment; the most specific matching path wins; "deny" wins."""
        parsed = []
        if isinstance(rules, dict):
            items = list(rules.items())
        else:
            items = []
            for r in rules:
                if isinstance(r, dict):
                    items.append((r["path"], r.get("capabilities", [])))
                else:
                    items.append((r[0], r[1]))
        for pattern, caps in items:
            pattern = pattern.lstrip("/")
            parsed.append((pattern, _pattern_regex(pattern), [c.lower() for c in _as_list(caps)]))
        with self._lock:
            self._policies[name] = parsed

    def delete_policy(self, name):
        with self._lock:
            self._policies.pop(name, None)

    def _add_token_locked(self, id=None, policies=None, ttl=0, max_ttl=0, explicit_max_ttl=0, renewable=True,
                          num_uses=0, namespace="", meta=None, display_name="token", path="auth/token/create",
                          orphan=False, entity_id="", creation_ttl=None):
        now = time.time()
        ttl = parse_duration(ttl)
        tid = id or new_token_id()
        if tid in self._tokens:
            old = self._tokens.pop(tid)
            self._accessors.pop(old["accessor"], None)
        tok = {
            "id": tid, "accessor": new_accessor(), "policies": list(_as_list(policies)),
            "namespace": norm_ns(namespace), "ttl": ttl, "max_ttl": parse_duration(max_ttl),
            "explicit_max_ttl": parse_duration(explicit_max_ttl), "renewable": _as_bool(renewable, True),
            "num_uses": int(num_uses or 0), "creation_time": now, "issue_time": now,
            "expire_at": (now + ttl) if ttl > 0 else None, "meta": dict(meta) if meta else None,
            "display_name": display_name, "path": path, "orphan": bool(orphan), "entity_id": entity_id,
            "revoked": False, "creation_ttl": ttl if creation_ttl is None else creation_ttl,
        }
        self._tokens[tid] = tok
        self._accessors[tok["accessor"]] = tid
        return tok

    def create_token(self, policies=None, ttl=0, max_ttl=0, explicit_max_ttl=0, renewable=True, num_uses=0,
                     namespace="", id=None, meta=None, display_name="token", orphan=False, **_ignored):
        """Create a token directly (no "default" policy added). ttl 0 = never expires.
        Returns its lookup-self data (with "id")."""
        with self._lock:
            tok = self._add_token_locked(id=id, policies=policies, ttl=ttl, max_ttl=max_ttl,
                                         explicit_max_ttl=explicit_max_ttl, renewable=renewable,
                                         num_uses=num_uses, namespace=namespace, meta=meta,
                                         display_name=display_name, orphan=orphan)
            return self._lookup_data(tok)

    def token_info(self, token):
        """The token's lookup-self data plus "valid", "revoked", "namespace"; null if unknown."""
        with self._lock:
            tok = self._tokens.get(token)
            if tok is None:
                return None
            d = self._lookup_data(tok)
            d["valid"] = self._token_alive(tok)
            d["revoked"] = tok["revoked"]
            d["namespace"] = tok["namespace"]
            return d

    def expire_token(self, token):
        """Make the token's TTL run out now."""
        with self._lock:
            tok = self._tokens[token]
            tok["expire_at"] = time.time() - 1

    def revoke_token(self, token):
        with self._lock:
            tok = self._tokens[token]
            tok["revoked"] = True

    def _max_ttl_of(self, tok):
        caps = [x for x in (tok["explicit_max_ttl"], tok["max_ttl"], self.system_max_ttl) if x and x > 0]
        return min(caps) if caps else 0

    def _token_alive(self, tok, now=None):
        now = time.time() if now is None else now
        if tok["revoked"]:
            return False
        if tok["expire_at"] is not None and now >= tok["expire_at"]:
            return False
        return True

    def _lookup_data(self, tok):
        now = time.time()
        ttl = 0 if tok["expire_at"] is None else max(0, int(round(tok["expire_at"] - now)))
        return {
            "accessor": tok["accessor"], "creation_time": int(tok["creation_time"]),
            "creation_ttl": tok["creation_ttl"], "display_name": tok["display_name"],
            "entity_id": tok["entity_id"], "expire_time": rfc3339(tok["expire_at"]),
            "explicit_max_ttl": tok["explicit_max_ttl"], "id": tok["id"],
            "issue_time": rfc3339(tok["issue_time"]), "meta": copy.deepcopy(tok["meta"]),
            "num_uses": tok["num_uses"], "orphan": tok["orphan"], "path": tok["path"],
            "policies": list(tok["policies"]), "renewable": tok["renewable"], "ttl": ttl, "type": "service",
        }

    # -- control: auth roles

    def enable_auth(self, method, mount=None, namespace=""):
        """Mount an auth method (approle, kubernetes, jwt, cert) at auth/<mount>."""
        if method not in ("approle", "kubernetes", "jwt", "cert"):
            raise ValueError("unsupported auth method %r" % method)
        with self._lock:
            self._auth_mounts[(norm_ns(namespace), norm_path(mount or method))] = method

    def configure_auth(self, method, mount=None, namespace="", pem_keys=None, issuer=None,
                       jwt_validation_pubkeys=None, bound_issuer=None):
        """What auth/<mount>/config holds. kubernetes: pem_keys (PEM public keys or
        certificates that sign service-account JWTs) and issuer; jwt: jwt_validation_pubkeys
        and bound_issuer. With keys, a login's JWT is verified (RS256 signature, exp, nbf,
        issuer, the role's audiences) instead of looked up in the role's jwts."""
        if method not in ("kubernetes", "jwt"):
            raise ValueError("configure_auth: kubernetes or jwt, not %r" % method)
        keys = _as_list(pem_keys if method == "kubernetes" else jwt_validation_pubkeys)
        with self._lock:
            key = (norm_ns(namespace), norm_path(mount or method))
            self._auth_mounts[key] = method
            self._auth_config[key] = {"keys": keys, "issuer": issuer if method == "kubernetes" else bound_issuer}

    def _verified_claims(self, ns, mount, jwt, now=None):
        """None when the mount has no keys; else (claims, why): claims of a JWT that one of the
        keys signed and whose exp/nbf/iss hold, or None and why not."""
        cfg = self._auth_config.get((ns, mount))
        if not cfg or not cfg["keys"]:
            return None
        import rsa_jwt  # beside this file; only for tests that configure keys
        try:
            header, claims, signed, sig = rsa_jwt.decode(jwt)
        except (ValueError, UnicodeDecodeError):
            return None, "not a compact JWS"
        if not isinstance(claims, dict) or header.get("alg") not in ("RS256", "PS256"):
            return None, "unsupported token"
        if not any(self._public_key(k).verify(signed, sig, header["alg"]) for k in cfg["keys"]):
            return None, "no known key successfully validated the token signature"
        now = time.time() if now is None else now
        if isinstance(claims.get("exp"), (int, float)) and claims["exp"] < now - 5:
            return None, "token is expired (exp)"
        if isinstance(claims.get("nbf"), (int, float)) and claims["nbf"] > now + 5:
            return None, "token not valid yet (nbf)"
        if cfg["issuer"] and claims.get("iss") != cfg["issuer"]:
            return None, "invalid issuer (iss) claim"
        return claims, None

    def _public_key(self, pem):
        import rsa_jwt
        import tempfile
        cache = self.__dict__.setdefault("_pubkeys", {})
        if pem not in cache:
            with tempfile.NamedTemporaryFile("w", suffix=".pem") as f:
                f.write(pem)
                f.flush()
                cache[pem] = rsa_jwt.RsaPublicKey(f.name)
        return cache[pem]

    @staticmethod
    def _audience_ok(claims, wanted):
        aud = claims.get("aud")
        aud = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
        return bool(set(aud) & set(wanted))

    def _role_common(self, method, name, mount, namespace, policies, ttl, max_ttl, explicit_max_ttl,
                     renewable, num_uses, no_default_policy):
        mount = norm_path(mount or method)
        ns = norm_ns(namespace)
        self._auth_mounts[(ns, mount)] = method
        return (ns, mount, name), {
            "method": method, "name": name, "mount": mount, "namespace": ns,
            "policies": _as_list(policies), "ttl": parse_duration(ttl), "max_ttl": parse_duration(max_ttl),
            "explicit_max_ttl": parse_duration(explicit_max_ttl), "renewable": _as_bool(renewable, True),
            "num_uses": int(num_uses or 0), "no_default_policy": _as_bool(no_default_policy),
        }

    def add_approle(self, name, role_id, secret_id=None, secret_ids=None, policies=None, ttl=DEFAULT_LEASE_TTL,
                    max_ttl=0, explicit_max_ttl=0, renewable=True, num_uses=0, mount="approle", namespace="",
                    bind_secret_id=True, secret_id_num_uses=0, no_default_policy=False, metadata=None):
        """An AppRole role: login with {role_id, secret_id}. secret_id_num_uses > 0 limits each
        secret ID's logins."""
        with self._lock:
            key, role = self._role_common("approle", name, mount, namespace, policies, ttl, max_ttl,
                                          explicit_max_ttl, renewable, num_uses, no_default_policy)
            ids = _as_list(secret_ids) + ([secret_id] if secret_id else [])
            uses = int(secret_id_num_uses or 0)
            role.update(role_id=role_id, bind_secret_id=_as_bool(bind_secret_id, True),
                        secret_ids={s: (uses if uses > 0 else None) for s in ids},
                        metadata=dict(metadata or {}))
            self._roles[key] = role
            return self._role_view(role)

    def add_kubernetes_role(self, name, jwts=None, jwt=None, bound_service_account_names=("*",),
                            bound_service_account_namespaces=("*",), policies=None, ttl=DEFAULT_LEASE_TTL,
                            max_ttl=0, explicit_max_ttl=0, renewable=True, num_uses=0, mount="kubernetes",
                            namespace="", no_default_policy=False, audience=None):
        """A kubernetes auth role: login with {role, jwt}; jwt must be one of jwts (what the
        TokenReview would accept), or, when configure_auth gave the mount pem_keys, verify
        with them (and carry audience in aud, if set). When a JWT decodes, its service
        account name/namespace are checked against the bound lists (globs)."""
        with self._lock:
            key, role = self._role_common("kubernetes", name, mount, namespace, policies, ttl, max_ttl,
                                          explicit_max_ttl, renewable, num_uses, no_default_policy)
            role.update(jwts=_as_list(jwts) + ([jwt] if jwt else []),
                        bound_service_account_names=_as_list(bound_service_account_names) or ["*"],
                        bound_service_account_namespaces=_as_list(bound_service_account_namespaces) or ["*"],
                        audience=audience or None)
            self._roles[key] = role
            return self._role_view(role)

    def add_jwt_role(self, name, jwts=None, jwt=None, policies=None, ttl=DEFAULT_LEASE_TTL, max_ttl=0,
                     explicit_max_ttl=0, renewable=True, num_uses=0, mount="jwt", namespace="",
                     user_claim="sub", no_default_policy=False, bound_audiences=None, bound_subject=None):
        """A jwt auth role: login with {role, jwt}; jwt must be one of jwts (a valid signature),
        or, when configure_auth gave the mount jwt_validation_pubkeys, verify with them, with
        bound_audiences and bound_subject checked as Vault checks them. An "exp" claim in the
        past is rejected as Vault does."""
        with self._lock:
            key, role = self._role_common("jwt", name.lower(), mount, namespace, policies, ttl, max_ttl,
                                          explicit_max_ttl, renewable, num_uses, no_default_policy)
            role.update(jwts=_as_list(jwts) + ([jwt] if jwt else []), user_claim=user_claim,
                        bound_audiences=_as_list(bound_audiences), bound_subject=bound_subject or None)
            self._roles[key] = role
            return self._role_view(role)

    def add_cert_role(self, name, fingerprint=None, fingerprints=None, common_name=None,
                      allowed_common_names=None, issuer_cn=None, certificate=None, policies=None,
                      ttl=DEFAULT_LEASE_TTL, max_ttl=0, explicit_max_ttl=0, renewable=True, num_uses=0,
                      mount="cert", namespace="", no_default_policy=False):
        """A cert auth role, matched against the TLS client certificate (which the listener has
        verified against client_ca): by SHA-256 fingerprint of the certificate (hex, colons
        allowed), subject CN (globs), or issuer CN. certificate: a PEM file path or PEM text;
        it adds its fingerprint (a pinned leaf) and its subject CN as an accepted issuer (a CA).
        A role with no constraint accepts any verified client certificate."""
        fps = [_fingerprint_norm(f) for f in _as_list(fingerprints) + ([fingerprint] if fingerprint else [])]
        issuers = _as_list(issuer_cn)
        if certificate:
            pem = certificate
            if "-----BEGIN" not in certificate:
                with open(certificate) as f:
                    pem = f.read()
            fps.append(hashlib.sha256(pem_to_der(pem)).hexdigest())
            cn = self._pem_subject_cn(pem, certificate)
            if cn:
                issuers.append(cn)
        with self._lock:
            key, role = self._role_common("cert", name, mount, namespace, policies, ttl, max_ttl,
                                          explicit_max_ttl, renewable, num_uses, no_default_policy)
            role.update(fingerprints=fps, allowed_common_names=_as_list(allowed_common_names) + _as_list(common_name),
                        issuer_cns=issuers)
            self._roles[key] = role
            return self._role_view(role)

    @staticmethod
    def _pem_subject_cn(pem, maybe_path):
        decode = getattr(getattr(ssl, "_ssl", None), "_test_decode_cert", None)
        if decode is None:
            return None
        path = maybe_path if "-----BEGIN" not in maybe_path else None
        tmp = None
        try:
            if path is None:
                import tempfile
                fd, tmp = tempfile.mkstemp(suffix=".pem")
                with os.fdopen(fd, "w") as f:
                    f.write(pem)
                path = tmp
            return _cert_subject_cn(decode(path))
        except Exception:
            return None
        finally:
            if tmp:
                os.unlink(tmp)

    def add_role(self, method, **kwargs):
        """add_<method>_role by name: method is approle, kubernetes, jwt or cert."""
        fn = {"approle": self.add_approle, "kubernetes": self.add_kubernetes_role, "jwt": self.add_jwt_role,
              "cert": self.add_cert_role}.get(method)
        if fn is None:
            raise ValueError("unsupported auth method %r" % method)
        return fn(**kwargs)

    def delete_role(self, method, name, mount=None, namespace=""):
        with self._lock:
            self._roles.pop((norm_ns(namespace), norm_path(mount or method), name), None)

    @staticmethod
    def _role_view(role):
        r = copy.deepcopy(role)
        if "secret_ids" in r:
            r["secret_ids"] = sorted(r["secret_ids"])
        return r

    # -- control: server state, faults, stats

    def seal(self):
        with self._lock:
            self._sealed = True

    def unseal(self):
        with self._lock:
            self._sealed = False

    def set_standby(self, standby=True):
        """Only changes what /v1/sys/health answers (429 for a standby)."""
        with self._lock:
            self._standby = _as_bool(standby, True)

    def add_fault(self, path_glob="*", status=None, count=1, body=None, delay_ms=0, truncate=False,
                  oversize=None, drop=False, method=None, headers=None, content_type=None):
        """Inject a fault into the next `count` matching /v1 requests (-1: forever).
        path_glob: fnmatch glob on the path after "/v1/" ("secret/data/chimera/*"), or on the
        whole path when it starts with "/". method: only that HTTP method. status: answer with
        it (body: a JSON value, or text sent as is; default {"errors": [Vault's message]});
        without status the request is served normally after delay_ms, with truncate (send
        fewer bytes than Content-Length, then close; true = half, or a byte count) and oversize
        (true = 32 MiB, or a byte count: a huge JSON body) applied to the real answer.
        drop: close the connection without answering. headers: extra response headers.
        Returns {"id": n}."""
        if status is None and not (delay_ms or truncate or oversize or drop):
            raise ValueError("a fault needs status, delay_ms, truncate, oversize or drop")
        with self._lock:
            self._fault_seq += 1
            fault = {"id": self._fault_seq, "path_glob": path_glob or "*", "method": (method or "").upper() or None,
                     "status": int(status) if status else None, "count": int(count), "body": body,
                     "delay_ms": int(delay_ms or 0), "truncate": truncate, "oversize": oversize,
                     "drop": _as_bool(drop), "headers": dict(headers or {}), "content_type": content_type,
                     "hits": 0}
            self._faults.append(fault)
            return {"id": fault["id"]}

    def clear_faults(self, id=None):
        """Remove one fault by id, or all."""
        with self._lock:
            if id is None:
                self._faults = []
            else:
                self._faults = [f for f in self._faults if f["id"] != int(id)]

    def list_faults(self):
        with self._lock:
            return copy.deepcopy(self._faults)

    def set_latency(self, delay_ms=0, scope="kv"):
        """Delay every KV read (scope "kv") or every /v1 request (scope "all") by delay_ms."""
        if scope not in ("kv", "all"):
            raise ValueError("scope is kv or all")
        with self._lock:
            self._latency = {"delay_ms": int(delay_ms or 0), "scope": scope}

    def _reset_stats_locked(self):
        self._stats = {"connections": 0, "tls_failures": 0, "requests_total": 0, "requests": {},
                       "logins": {}, "login_failures": {}, "renewals": 0, "lookups": 0,
                       "tokens_seen": [], "token_uses": {}, "namespaces_seen": [], "log": []}

    def reset_stats(self):
        with self._lock:
            self._reset_stats_locked()

    def stats(self):
        """{"connections" (TCP connections accepted), "open_connections", "tls_failures",
        "requests_total", "requests": {path: n}, "logins": {mount: n} (attempts),
        "login_failures": {mount: n}, "renewals" and "lookups" (requests to renew-self and
        lookup-self, whatever their outcome), "tokens_seen": [distinct X-Vault-Token (or
        Bearer) values in first-seen order], "token_uses": {token: n}, "namespaces_seen",
        "log": [last 2000 {"method", "path", "namespace", "token", "status"}], "sealed",
        "standby"}. /_test/ requests are not counted."""
        with self._lock:
            s = copy.deepcopy(self._stats)
            s["open_connections"] = len(self._conns)
            s["sealed"] = self._sealed
            s["standby"] = self._standby
            return s

    def drop_connections(self):
        """Close every open client connection (keep-alive ones too). Returns how many."""
        with self._lock:
            conns = list(self._conns)
        for c in conns:
            try:
                socket.socket.shutdown(c, socket.SHUT_RDWR)
            except OSError:
                pass
        return {"dropped": len(conns)}

    # -- request bookkeeping

    def _record_request(self, method, path, token, ns):
        with self._lock:
            st = self._stats
            st["requests_total"] += 1
            st["requests"][path] = st["requests"].get(path, 0) + 1
            if path in ("/v1/auth/token/lookup-self", "/v1/auth/token/lookup"):
                st["lookups"] += 1
            elif path == "/v1/auth/token/renew-self":
                st["renewals"] += 1
            if token:
                if token not in st["token_uses"]:
                    st["tokens_seen"].append(token)
                st["token_uses"][token] = st["token_uses"].get(token, 0) + 1
            if ns and ns not in st["namespaces_seen"]:
                st["namespaces_seen"].append(ns)

    def _record_status(self, method, path, token, ns, status):
        with self._lock:
            log = self._stats["log"]
            log.append({"method": method, "path": path, "namespace": ns, "token": token, "status": status})
            if len(log) > 2000:
                del log[:len(log) - 2000]

    def _take_fault(self, method, path):
        rel = path[len("/v1/"):] if path.startswith("/v1/") else path.lstrip("/")
        with self._lock:
            for f in self._faults:
                if f["method"] and f["method"] != method:
                    continue
                target = path if f["path_glob"].startswith("/") else rel
                if not fnmatch.fnmatchcase(target, f["path_glob"]):
                    continue
                f["hits"] += 1
                if f["count"] > 0:
                    f["count"] -= 1
                    if f["count"] == 0:
                        self._faults.remove(f)
                return dict(f)
        return None

    # -- the Vault API

    def _envelope(self, data=None, auth=None, warnings=None, lease_duration=0, mount_type=None, renewable=False):
        env = {"request_id": str(uuid.uuid4()), "lease_id": "", "renewable": renewable,
               "lease_duration": lease_duration, "data": data, "wrap_info": None, "warnings": warnings,
               "auth": auth}
        if mount_type is not None:
            env["mount_type"] = mount_type
        return env

    def _api(self, method, path, query, body, token, ns, conn):
        if not path.startswith("/v1/"):
            raise _ApiError(404, [])
        rel = path[len("/v1/"):].strip("/")
        op_method = method
        if method == "GET" and query.get("list", [""])[-1].lower() in ("true", "1"):
            op_method = "LIST"

        if rel in ("sys/health",) and method in ("GET", "HEAD"):
            return self._sys_health(query)
        if rel == "sys/seal-status" and method == "GET":
            return self._sys_seal_status()

        with self._lock:
            sealed = self._sealed
            latency = dict(self._latency)
            kv_mount = self._kv_mount_of(rel)
        if sealed:
            raise _ApiError(503, [ERR_SEALED])
        if latency["delay_ms"] and (latency["scope"] == "all" or (kv_mount and op_method in ("GET", "LIST"))):
            time.sleep(latency["delay_ms"] / 1000.0)

        params = {}
        if body.strip() and method in ("POST", "PUT", "PATCH", "DELETE"):
            try:
                params = json.loads(body)
            except ValueError:
                raise _ApiError(400, ["error parsing JSON"])
            if not isinstance(params, dict):
                raise _ApiError(400, ["error parsing JSON"])

        with self._lock:
            # Logins need no token.
            if rel.startswith("auth/") and rel.endswith("/login") and method in ("POST", "PUT"):
                mount = rel[len("auth/"):-len("/login")]
                auth_method = self._auth_mounts.get((ns, mount))
                if auth_method is not None:
                    return self._login(auth_method, ns, mount, params, conn)
            tok = self._check_token(token, ns)
            try:
                if rel in ("auth/token/lookup-self", "auth/token/renew-self", "auth/token/revoke-self",
                           "auth/token/lookup", "auth/token/create", "auth/token/create-orphan"):
                    return self._token_api(rel, op_method, params, tok, ns)
                if kv_mount:
                    return self._kv_api(kv_mount, rel, op_method, query, params, tok, ns)
                # Nothing here: Vault checks the ACL before routing.
                self._require(tok, ns, rel, "read" if op_method == "GET" else "update")
                raise _ApiError(404, ['no handler for route "%s". route entry not found.' % rel])
            finally:
                self._use_token(tok)

    def _kv_mount_of(self, rel):
        best = None
        for m in self._mounts:
            if rel == m or rel.startswith(m + "/"):
                if best is None or len(m) > len(best):
                    best = m
        return best

    # tokens and ACLs

    def _check_token(self, token, ns):
        if not token:
            raise _ApiError(403, [ERR_PERMISSION_DENIED])
        tok = self._tokens.get(token)
        if tok is None or not self._token_alive(tok):
            raise _ApiError(403, [ERR_PERMISSION_DENIED])
        tns = tok["namespace"]
        if tns and not (ns == tns or ns.startswith(tns + "/")):
            raise _ApiError(403, [ERR_PERMISSION_DENIED])
        return tok

    def _use_token(self, tok):
        if tok is not None and tok["num_uses"] > 0:
            tok["num_uses"] -= 1
            if tok["num_uses"] == 0:
                tok["revoked"] = True

    def _allowed(self, tok, ns, acl_path, caps):
        if "root" in tok["policies"]:
            return True
        tns = tok["namespace"]
        rel_ns = ns[len(tns):].strip("/") if tns else ns
        full = (rel_ns + "/" + acl_path) if rel_ns else acl_path
        best_rank, best = None, None
        for pname in tok["policies"]:
            for pattern, regex, pcaps in self._policies.get(pname, ()):
                if not regex.match(full):
                    continue
                rank = _pattern_rank(pattern)
                if best_rank is None or rank > best_rank:
                    best_rank, best = rank, set(pcaps)
                elif rank == best_rank:
                    best |= set(pcaps)
        if not best or "deny" in best:
            return False
        return any(c in best for c in caps)

    def _require(self, tok, ns, acl_path, *caps):
        if not self._allowed(tok, ns, acl_path, caps):
            raise _ApiError(403, [ERR_PERMISSION_DENIED])

    def _auth_block(self, tok, metadata=None):
        now = time.time()
        lease = 0 if tok["expire_at"] is None else max(0, int(round(tok["expire_at"] - now)))
        pols = list(tok["policies"])
        return {"client_token": tok["id"], "accessor": tok["accessor"], "policies": pols, "token_policies": pols,
                "metadata": copy.deepcopy(metadata if metadata is not None else tok["meta"]),
                "lease_duration": lease, "renewable": tok["renewable"], "entity_id": tok["entity_id"],
                "token_type": "service", "orphan": tok["orphan"], "mfa_requirement": None,
                "num_uses": tok["num_uses"]}

    def _token_api(self, rel, method, params, tok, ns):
        if rel == "auth/token/lookup-self":
            if method not in ("GET", "POST", "PUT"):
                raise _ApiError(405, ["1 error occurred:\n\t* unsupported operation\n\n"])
            return 200, self._envelope(data=self._lookup_data(tok), mount_type="token"), None
        if rel == "auth/token/lookup":
            if method not in ("POST", "PUT"):
                raise _ApiError(405, ["1 error occurred:\n\t* unsupported operation\n\n"])
            self._require(tok, ns, rel, "update")
            other = self._tokens.get(params.get("token") or "")
            if other is None or not self._token_alive(other):
                raise _ApiError(403, ["bad token"])
            return 200, self._envelope(data=self._lookup_data(other), mount_type="token"), None
        if rel == "auth/token/renew-self":
            if method not in ("POST", "PUT"):
                raise _ApiError(405, ["1 error occurred:\n\t* unsupported operation\n\n"])
            return self._renew(tok, params.get("increment"))
        if rel == "auth/token/revoke-self":
            if method not in ("POST", "PUT"):
                raise _ApiError(405, ["1 error occurred:\n\t* unsupported operation\n\n"])
            tok["revoked"] = True
            return 204, None, None
        # create / create-orphan
        if method not in ("POST", "PUT"):
            raise _ApiError(405, ["1 error occurred:\n\t* unsupported operation\n\n"])
        self._require(tok, ns, rel, "create", "update")
        try:
            pols = _as_list(params.get("policies")) or [p for p in tok["policies"]]
            if not _as_bool(params.get("no_default_policy")) and "default" not in pols and "root" not in pols:
                pols = ["default"] + pols
            ttl = parse_duration(params.get("ttl")) or DEFAULT_LEASE_TTL
            display_name = "token-" + params["display_name"] if params.get("display_name") else "token"
            new = self._add_token_locked(id=params.get("id") if "root" in tok["policies"] else None,
                                         policies=sorted(set(pols)), ttl=ttl,
                                         explicit_max_ttl=params.get("explicit_max_ttl") or 0,
                                         renewable=params.get("renewable", True),
                                         num_uses=params.get("num_uses") or 0, namespace=ns,
                                         meta=params.get("meta"), display_name=display_name,
                                         orphan=rel.endswith("orphan") or _as_bool(params.get("no_parent")))
        except ValueError as e:
            raise _ApiError(400, [str(e)])
        return 200, self._envelope(auth=self._auth_block(new)), None

    def _renew(self, tok, increment):
        if not tok["renewable"] or tok["expire_at"] is None:
            raise _ApiError(400, ["lease is not renewable"])
        try:
            incr = parse_duration(increment) if increment not in (None, "", 0) else 0
        except ValueError as e:
            raise _ApiError(400, [str(e)])
        if incr <= 0:
            incr = tok["creation_ttl"] or DEFAULT_LEASE_TTL
        now = time.time()
        new_exp = now + incr
        warnings = None
        max_ttl = self._max_ttl_of(tok)
        if max_ttl:
            cap = tok["creation_time"] + max_ttl
            if new_exp > cap:
                new_exp = cap
                warnings = ['TTL of "%s" exceeded the effective max_ttl of "%s"; TTL value is capped accordingly'
                            % (go_duration(incr), go_duration(max(0, int(round(cap - now)))))]
        tok["expire_at"] = max(new_exp, now)
        return 200, self._envelope(auth=self._auth_block(tok), warnings=warnings), None

    # logins

    def _issue_login_token(self, role, display_name, metadata, alias):
        pols = list(role["policies"])
        if not role["no_default_policy"] and "default" not in pols:
            pols.append("default")
        entity = str(uuid.uuid5(uuid.NAMESPACE_URL, "%s/%s/%s/%s" % (role["namespace"], role["mount"],
                                                                       role["name"], alias)))
        tok = self._add_token_locked(policies=sorted(set(pols)), ttl=role["ttl"] or DEFAULT_LEASE_TTL,
                                     max_ttl=role["max_ttl"], explicit_max_ttl=role["explicit_max_ttl"],
                                     renewable=role["renewable"], num_uses=role["num_uses"],
                                     namespace=role["namespace"], meta=metadata, display_name=display_name,
                                     path="auth/%s/login" % role["mount"], orphan=True, entity_id=entity)
        return 200, self._envelope(auth=self._auth_block(tok, metadata)), None

    def _login(self, method, ns, mount, params, conn):
        key = "%s/%s" % (ns, mount) if ns else mount
        self._stats["logins"][key] = self._stats["logins"].get(key, 0) + 1
        try:
            return getattr(self, "_login_" + method)(ns, mount, params, conn)
        except _ApiError:
            self._stats["login_failures"][key] = self._stats["login_failures"].get(key, 0) + 1
            raise

    def _roles_at(self, method, ns, mount):
        return sorted((r for (rns, rm, _), r in self._roles.items()
                       if rns == ns and rm == mount and r["method"] == method), key=lambda r: r["name"])

    def _login_approle(self, ns, mount, params, conn):
        role_id = str(params.get("role_id") or "").strip()
        if not role_id:
            raise _ApiError(400, ["missing role_id"])
        role = next((r for r in self._roles_at("approle", ns, mount) if r["role_id"] == role_id), None)
        if role is None:
            raise _ApiError(400, ["invalid role or secret ID"])
        if role["bind_secret_id"]:
            secret_id = str(params.get("secret_id") or "").strip()
            if not secret_id:
                raise _ApiError(400, ["missing secret_id"])
            if secret_id not in role["secret_ids"]:
                raise _ApiError(400, ["invalid role or secret ID"])
            left = role["secret_ids"][secret_id]
            if left is not None:
                if left <= 1:
                    del role["secret_ids"][secret_id]
                else:
                    role["secret_ids"][secret_id] = left - 1
        metadata = dict(role["metadata"])
        metadata["role_name"] = role["name"]
        return self._issue_login_token(role, "approle", metadata, role_id)

    def _login_kubernetes(self, ns, mount, params, conn):
        name = str(params.get("role") or "")
        if not name:
            raise _ApiError(400, ["missing role"])
        jwt = str(params.get("jwt") or "")
        if not jwt:
            raise _ApiError(400, ["missing jwt"])
        role = self._roles.get((ns, mount, name))
        if role is None or role["method"] != "kubernetes":
            raise _ApiError(400, ['invalid role name "%s"' % name])
        verified = self._verified_claims(ns, mount, jwt)
        if verified is not None:
            if verified[0] is None:
                raise _ApiError(403, [ERR_PERMISSION_DENIED])
            if role["audience"] and not self._audience_ok(verified[0], [role["audience"]]):
                raise _ApiError(403, ["invalid audience (aud) claim: audience claim does not match any expected "
                                      "audience"])
        claims = jwt_claims(jwt)
        sa_name, sa_ns, sa_uid, secret_name = "default", "default", "", ""
        if claims is not None:
            k8s = claims.get("kubernetes.io")
            if isinstance(k8s, dict):
                sa = k8s.get("serviceaccount") or {}
                sa_name, sa_uid, sa_ns = sa.get("name", ""), sa.get("uid", ""), k8s.get("namespace", "")
            else:
                sa_name = claims.get("kubernetes.io/serviceaccount/service-account.name", "")
                sa_uid = claims.get("kubernetes.io/serviceaccount/service-account.uid", "")
                sa_ns = claims.get("kubernetes.io/serviceaccount/namespace", "")
                secret_name = claims.get("kubernetes.io/serviceaccount/secret.name", "")
            names = role["bound_service_account_names"]
            if not (names == ["*"] or any(fnmatch.fnmatchcase(sa_name, g) for g in names)):
                raise _ApiError(403, ["service account name not authorized"])
            nss = role["bound_service_account_namespaces"]
            if not (nss[:1] == ["*"] or any(fnmatch.fnmatchcase(sa_ns, g) for g in nss)):
                raise _ApiError(403, ["namespace not authorized"])
        if verified is None and jwt not in role["jwts"]:
            raise _ApiError(403, [ERR_PERMISSION_DENIED])
        if not sa_uid:
            sa_uid = str(uuid.uuid5(uuid.NAMESPACE_URL, "sa/%s/%s" % (sa_ns, sa_name)))
        metadata = {"role": name, "service_account_name": sa_name, "service_account_namespace": sa_ns,
                    "service_account_secret_name": secret_name, "service_account_uid": sa_uid}
        return self._issue_login_token(role, "%s-%s-%s" % (mount, sa_ns, sa_name), metadata, sa_uid)

    def _login_jwt(self, ns, mount, params, conn):
        name = str(params.get("role") or "").lower()
        if not name:
            raise _ApiError(400, ["missing role"])
        role = self._roles.get((ns, mount, name))
        if role is None or role["method"] != "jwt":
            raise _ApiError(400, ['role "%s" could not be found' % name])
        jwt = str(params.get("jwt") or "")
        if not jwt:
            raise _ApiError(400, ["missing token"])
        verified = self._verified_claims(ns, mount, jwt)
        if verified is not None:
            if verified[0] is None:
                raise _ApiError(400, ["error validating token: %s" % verified[1]] if "signature" not in verified[1]
                                else [verified[1]])
            aud = verified[0].get("aud")
            if role["bound_audiences"] and not self._audience_ok(verified[0], role["bound_audiences"]):
                raise _ApiError(400, ["error validating claims: invalid audience (aud) claim: audience claim does "
                                      "not match any expected audience"])
            if not role["bound_audiences"] and aud:
                raise _ApiError(400, ["audience claim found in JWT but no audiences bound to the role"])
            if role["bound_subject"] and verified[0].get("sub") != role["bound_subject"]:
                raise _ApiError(400, ["sub claim does not match bound subject"])
        elif jwt not in role["jwts"]:
            raise _ApiError(400, ["no known key successfully validated the token signature"])
        claims = jwt_claims(jwt) or {}
        exp = claims.get("exp")
        if isinstance(exp, (int, float)) and exp < time.time() - 5:
            raise _ApiError(400, ["error validating claims: go-jose/go-jose/jwt: validation failed, "
                                  "token is expired (exp)"])
        user = claims.get(role["user_claim"], "jwt-user" if not claims else None)
        if not isinstance(user, str):
            raise _ApiError(400, ['claim "%s" not found in token' % role["user_claim"]])
        return self._issue_login_token(role, "%s-%s" % (mount, user), {"role": name}, user)

    def _login_cert(self, ns, mount, params, conn):
        if not isinstance(conn, ssl.SSLSocket):
            raise _ApiError(400, ["tls connection required"])
        der = conn.getpeercert(binary_form=True)
        if not der:
            raise _ApiError(400, ["client certificate must be supplied"])
        parsed = conn.getpeercert() or {}
        fp = hashlib.sha256(der).hexdigest()
        cn = _cert_subject_cn(parsed) or ""
        issuer = _cert_subject_cn(parsed, "issuer") or ""
        name = str(params.get("name") or "")
        roles = self._roles_at("cert", ns, mount)
        if name:
            roles = [r for r in roles if r["name"] == name]
        for role in roles:
            if role["fingerprints"] or role["issuer_cns"]:
                if fp not in role["fingerprints"] and issuer not in role["issuer_cns"]:
                    continue
            if role["allowed_common_names"] and \
                    not any(fnmatch.fnmatchcase(cn, g) for g in role["allowed_common_names"]):
                continue
            metadata = {"authority_key_id": "", "cert_name": role["name"], "common_name": cn,
                        "serial_number": str(int(parsed.get("serialNumber", "0") or "0", 16)),
                        "subject_key_id": ""}
            return self._issue_login_token(role, "%s-%s" % (mount, role["name"]), metadata, fp)
        raise _ApiError(400, ["invalid certificate or no client certificate supplied"])

    # KV

    def _kv_api(self, mount, rel, method, query, params, tok, ns):
        sub = rel[len(mount):].strip("/")
        if self._mounts[mount] == 1:
            return self._kv1(mount, sub, method, params, tok, ns)
        op, _, path = sub.partition("/")
        if op == "data" and path:
            return self._kv2_data(mount, path, method, query, params, tok, ns)
        if op == "metadata":
            return self._kv2_metadata(mount, path, method, tok, ns)
        if op in ("delete", "undelete", "destroy") and path and method in ("POST", "PUT"):
            self._require(tok, ns, rel, "update")
            entry = self._kv.get((ns, mount, path))
            if entry is not None:
                versions = _as_list(params.get("versions"))
                if not versions:
                    raise _ApiError(400, ["no version number provided"])
                for n in versions:
                    v = entry["versions"].get(int(n))
                    if v is None:
                        continue
                    if op == "delete" and v["deletion_time"] is None and not v["destroyed"]:
                        v["deletion_time"] = time.time()
                    elif op == "undelete" and not v["destroyed"]:
                        v["deletion_time"] = None
                    elif op == "destroy":
                        v["destroyed"], v["data"] = True, None
            return 204, None, None
        if op == "config":
            self._require(tok, ns, rel, "read")
            return 200, self._envelope(data={"cas_required": False, "delete_version_after": "0s",
                                             "max_versions": 0}, mount_type="kv"), None
        # A KV v1-style path on a v2 mount.
        self._require(tok, ns, rel, "read" if method in ("GET", "LIST") else "update")
        warn = ("Invalid path for a versioned K/V secrets engine. See the API docs for the appropriate API "
                "endpoints to use. If using the Vault CLI, use 'vault kv get' for this operation.")
        return 404, self._envelope(warnings=[warn]), None

    def _kv_list(self, mount, prefix, ns):
        prefix = prefix.strip("/")
        start = prefix + "/" if prefix else ""
        keys = set()
        for (kns, kmount, kpath), entry in self._kv.items():
            if kns != ns or kmount != mount or not kpath.startswith(start):
                continue
            rest = kpath[len(start):]
            head, sep, _ = rest.partition("/")
            keys.add(head + sep)
        if not keys:
            raise _ApiError(404, [])
        return 200, self._envelope(data={"keys": sorted(keys)}, mount_type="kv"), None

    def _kv1(self, mount, path, method, params, tok, ns):
        acl = mount + "/" + path if path else mount
        if method == "LIST":
            self._require(tok, ns, acl, "list")
            return self._kv_list(mount, path, ns)
        if not path:
            raise _ApiError(405 if method != "GET" else 404, [])
        if method == "GET":
            self._require(tok, ns, acl, "read")
            entry = self._kv.get((ns, mount, path))
            if entry is None:
                raise _ApiError(404, [])
            return 200, self._envelope(data=copy.deepcopy(entry["data"]), lease_duration=KV1_LEASE_DURATION,
                                       mount_type="kv"), None
        if method in ("POST", "PUT"):
            self._require(tok, ns, acl, "create", "update")
            if not params:
                raise _ApiError(400, ["missing data fields"])
            self._kv[(ns, mount, path)] = {"data": copy.deepcopy(params)}
            return 204, None, None
        if method == "DELETE":
            self._require(tok, ns, acl, "delete")
            self._kv.pop((ns, mount, path), None)
            return 204, None, None
        raise _ApiError(405, ["1 error occurred:\n\t* unsupported operation\n\n"])

    def _kv2_data(self, mount, path, method, query, params, tok, ns):
        acl = "%s/data/%s" % (mount, path)
        if method == "GET":
            self._require(tok, ns, acl, "read")
            entry = self._kv.get((ns, mount, path))
            if entry is None:
                raise _ApiError(404, [])
            raw = query.get("version", [""])[-1]
            try:
                n = int(raw) if raw else 0
            except ValueError:
                raise _ApiError(400, ['error converting input %s for field "version": strconv.ParseInt: '
                                      'parsing "%s": invalid syntax' % (raw, raw)])
            if n <= 0:
                n = entry["current"]
            v = entry["versions"].get(n)
            if v is None:
                raise _ApiError(404, [])
            meta = self._kv2_version_meta(entry, n)
            if v["destroyed"] or (v["deletion_time"] is not None and v["deletion_time"] <= time.time()):
                # Vault answers 404 with the version's metadata (and data null), no "errors".
                return 404, self._envelope(data={"data": None, "metadata": meta}), None
            return 200, self._envelope(data={"data": copy.deepcopy(v["data"]), "metadata": meta},
                                       mount_type="kv"), None
        if method in ("POST", "PUT"):
            self._require(tok, ns, acl, "create", "update")
            data = params.get("data")
            if data is None:
                raise _ApiError(400, ["no data provided"])
            if not isinstance(data, dict):
                raise _ApiError(400, ["error converting input for field \"data\""])
            entry = self._kv.get((ns, mount, path))
            cas = (params.get("options") or {}).get("cas")
            if cas is not None and int(cas) != (entry["current"] if entry else 0):
                raise _ApiError(400, ["check-and-set parameter did not match the current version"])
            meta = self._kv2_write(ns, mount, path, data)
            return 200, self._envelope(data=meta, mount_type="kv"), None
        if method == "DELETE":
            self._require(tok, ns, acl, "delete")
            entry = self._kv.get((ns, mount, path))
            if entry is not None:
                v = entry["versions"].get(entry["current"])
                if v is not None and v["deletion_time"] is None and not v["destroyed"]:
                    v["deletion_time"] = time.time()
            return 204, None, None
        raise _ApiError(405, ["1 error occurred:\n\t* unsupported operation\n\n"])

    def _kv2_metadata(self, mount, path, method, tok, ns):
        acl = "%s/metadata/%s" % (mount, path) if path else "%s/metadata" % mount
        if method == "LIST":
            self._require(tok, ns, acl, "list")
            return self._kv_list(mount, path, ns)
        if not path:
            raise _ApiError(405, ["1 error occurred:\n\t* unsupported operation\n\n"])
        if method == "GET":
            self._require(tok, ns, acl, "read")
            entry = self._kv.get((ns, mount, path))
            if entry is None:
                raise _ApiError(404, [])
            versions = {str(n): {"created_time": rfc3339(v["created"]),
                                 "deletion_time": rfc3339(v["deletion_time"]) or "", "destroyed": v["destroyed"]}
                        for n, v in entry["versions"].items()}
            data = {"cas_required": False, "created_time": rfc3339(entry["created"]),
                    "current_version": entry["current"], "custom_metadata": copy.deepcopy(entry["custom_metadata"]),
                    "delete_version_after": "0s", "max_versions": 0, "oldest_version": 0,
                    "updated_time": rfc3339(entry["updated"]), "versions": versions}
            return 200, self._envelope(data=data, mount_type="kv"), None
        if method == "DELETE":
            self._require(tok, ns, acl, "delete")
            self._kv.pop((ns, mount, path), None)
            return 204, None, None
        raise _ApiError(405, ["1 error occurred:\n\t* unsupported operation\n\n"])

    # sys

    def _sys_health(self, query):
        def q(name, default):
            v = query.get(name, [""])[-1]
            try:
                return int(v) if v != "" else default
            except ValueError:
                return default
        with self._lock:
            sealed, standby = self._sealed, self._standby
        standby_ok = query.get("standbyok", [""])[-1].lower() in ("true", "1")
        if sealed:
            status = q("sealedcode", 503)
        elif standby and not standby_ok:
            status = q("standbycode", 429)
        else:
            status = q("activecode", 200)
        body = {"initialized": True, "sealed": sealed, "standby": sealed or standby, "performance_standby": False,
                "replication_performance_mode": "disabled", "replication_dr_mode": "disabled",
                "server_time_utc": int(time.time()), "version": VAULT_VERSION, "enterprise": False,
                "echo_duration_ms": 0, "clock_skew_ms": 0}
        if not sealed:
            body["cluster_name"] = "vault-cluster-stand-in"
            body["cluster_id"] = self.cluster_id
        return status, body, None

    def _sys_seal_status(self):
        with self._lock:
            sealed = self._sealed
        body = {"type": "shamir", "initialized": True, "sealed": sealed, "t": 1, "n": 1, "progress": 0,
                "nonce": "", "version": VAULT_VERSION, "build_date": "2024-02-28T17:07:34Z", "migration": False,
                "recovery_seal": False, "storage_type": "inmem"}
        if not sealed:
            body["cluster_name"] = "vault-cluster-stand-in"
            body["cluster_id"] = self.cluster_id
        return 200, body, None


# ---------------------------------------------------------------------------------------------
# Command line

def _write_atomic(path, text, mode=0o644):
    tmp = "%s.tmp.%d" % (path, os.getpid())
    with open(tmp, "w") as f:
        f.write(text)
    os.chmod(tmp, mode)
    os.rename(tmp, path)


def main(argv=None):
    ap = argparse.ArgumentParser(description="A stand-in HashiCorp Vault server for tests.")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0, help="0 picks a free port (printed on stdout)")
    ap.add_argument("--tls-cert", help="server certificate (PEM); plain HTTP without it")
    ap.add_argument("--tls-key", help="server key (PEM)")
    ap.add_argument("--client-ca", action="append", default=[],
                    help="CA(s) for TLS client certificates (cert auth); may repeat")
    ap.add_argument("--root-token", default="root")
    ap.add_argument("--kv2-mount", default="secret")
    ap.add_argument("--kv1-mount", default="kv1")
    ap.add_argument("--state-file", help="JSON state to load at start ({op: [kwargs...]} or [{op, ...}])")
    ap.add_argument("--ready-file", help="written (JSON: port, url, pid, root_token) once listening")
    ap.add_argument("--log", help="request log file (default: no log)")
    ap.add_argument("--idle-timeout", type=float, default=300)
    args = ap.parse_args(argv)
    if bool(args.tls_cert) != bool(args.tls_key):
        ap.error("--tls-cert and --tls-key go together")

    vault = VaultServer(host=args.host, port=args.port, tls_cert=args.tls_cert, tls_key=args.tls_key,
                        client_ca=args.client_ca, root_token=args.root_token, kv2_mount=args.kv2_mount,
                        kv1_mount=args.kv1_mount, log=args.log, idle_timeout=args.idle_timeout)
    if args.state_file:
        with open(args.state_file) as f:
            vault.load_state(json.load(f))
    stop = threading.Event()

    def on_signal(signum, frame):
        stop.set()
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    vault.start()
    if args.ready_file:
        _write_atomic(args.ready_file, json.dumps({"port": vault.port, "url": vault.url, "pid": os.getpid(),
                                                   "root_token": vault.root_token}) + "\n")
    print(vault.port, flush=True)
    try:
        while not stop.wait(0.5):
            pass
    finally:
        vault.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
