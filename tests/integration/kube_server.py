#!/usr/bin/env python3
"""A stand-in Kubernetes API server for secretsyncd's integration tests.

Python 3 standard library only. It answers the parts of the Kubernetes API that secretsyncd
and kubectl use the way the API reference and the API server do: the same JSON shapes
(objects with metadata.uid/resourceVersion/creationTimestamp/generation/managedFields, lists,
Tables for kubectl, `Status` errors with reason/code/details and the API server's messages),
HTTPS, bearer tokens and TLS client certificates, RBAC-like rules with the API server's
Forbidden message, discovery, Namespaces, Secrets (create/get/list/update/delete, merge,
strategic merge and JSON patches, server-side apply with field managers and conflicts, the
Secret validation of the API), watch (chunked events, bookmarks, 410 Expired), Leases,
Deployments/StatefulSets/DaemonSets, ServiceAccounts with TokenRequest (RS256 tokens with the
API server's claims, verifiable with the issuer's keys from /openid/v1/jwks, as
ServiceAccountIssuerDiscovery serves them), TokenReview, SelfSubjectAccessReview and
SelfSubjectReview.

Bodies are JSON, except that kubectl's typed clients (create secret/namespace/token, auth
can-i) send protobuf: the few messages they send are decoded (see _PB_MESSAGES); answers are
always JSON. Aggregated discovery is not served: clients fall back to /api and /apis.

Simplifications a test may meet: one global resourceVersion counter (as etcd's revision);
server-side apply owns fields at the granularity of map leaves (lists are atomic; stringData
keys are owned as the data keys they become); deletion is immediate (no finalizers, no
garbage collection); workload status is filled in at once as if a controller had rolled
everything out; YAML bodies are accepted only when they are JSON.

Everything a test arranges or inspects goes through a control API that is not Kubernetes':
POST (or GET) /_test/<operation> with a JSON object of keyword arguments (no authentication),
answered with the operation's JSON result; the same operations are methods of KubeServer
for in-process use. See CONTROL_OPS and the method docstrings.

Use in-process:

    with KubeServer(tls_cert=c, tls_key=k, client_ca=ca) as kube:
        kube.add_user("system:serviceaccount:kube-system:secretsyncd", token="t0k")
        kube.grant("system:serviceaccount:kube-system:secretsyncd", ["get", "list", "watch", "patch"],
                   ["secrets"], namespaces=["chimera"])
        kube.create_namespace("chimera")
        ... kube.url, kube.secret_data("chimera", "postgres-secret"), kube.count(verb="patch") ...

or as a process:

    python3 kube_server.py --port 0 --tls-cert C --tls-key K [--client-ca CA]
        [--admin-token T] [--sa-key PEM] [--state-file S] [--ready-file R] [--log L]

which prints the port it listens on as one line on stdout, writes R (JSON {"port", "url",
"pid", "admin_token"}) once it is ready, and stops cleanly on SIGTERM/SIGINT.
"""

import argparse
import base64
import binascii
import bisect
import copy
import datetime
import fnmatch
import hashlib
import http.server
import json
import os
import random
import re
import secrets
import select
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.parse
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rsa_jwt  # noqa: E402  (openssl signs the service-account tokens)

KUBE_VERSION = {"major": "1", "minor": "32", "gitVersion": "v1.32.4", "gitCommit": "59526cd4867447956156ae3a602fcbac10a2c335",
                "gitTreeState": "clean", "buildDate": "2025-04-22T16:02:27Z", "goVersion": "go1.23.6",
                "compiler": "gc", "platform": "linux/amd64"}
MAX_SECRET_SIZE = 1024 * 1024             # core.MaxSecretSize
DEFAULT_AUDIENCE = "https://kubernetes.default.svc.cluster.local"
TOKEN_ISSUER = "https://kubernetes.default.svc.cluster.local"
DEFAULT_WATCH_TIMEOUT = 1800              # the API server's --min-request-timeout
INITIAL_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
ADMIN_USER = "kubernetes-admin"
MASTERS = "system:masters"

# The operations of the control API (POST /_test/<op>), all methods of KubeServer.
CONTROL_OPS = (
    "add_user", "remove_user", "set_token", "add_token", "remove_token", "grant", "revoke", "users",
    "create_namespace", "delete_namespace",
    "put_object", "get_object", "list_objects", "delete_object",
    "put_secret", "get_secret", "secret_data",
    "put_workload", "get_workload", "restarted_at",
    "get_lease", "put_lease",
    "create_service_account", "issued_tokens", "token_info", "expire_token", "set_token_lifetime",
    "service_account_issuer",
    "compact", "drop_watches", "set_bookmark_interval", "resource_version",
    "add_fault", "clear_faults", "list_faults", "set_latency", "down", "up", "drop_connections",
    "stats", "reset_stats", "requests", "count",
)

WRITE_VERBS = ("create", "update", "patch", "delete", "deletecollection")


# ---------------------------------------------------------------------------------------------
# Small helpers

def now_rfc3339(ts=None):
    """metav1.Time: RFC 3339 in UTC, whole seconds."""
    t = time.time() if ts is None else ts
    return datetime.datetime.fromtimestamp(int(t), datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def micro_time(ts=None):
    """metav1.MicroTime: RFC 3339 in UTC with microseconds."""
    t = time.time() if ts is None else ts
    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(text):
    """Seconds since the epoch from an RFC 3339 time (with or without fraction); ValueError."""
    m = re.fullmatch(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)", str(text))
    if not m:
        raise ValueError("parsing time %s as \"2006-01-02T15:04:05.000000Z07:00\": cannot parse" % json.dumps(text))
    base = datetime.datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S")
    tz = datetime.timezone.utc if m.group(3) == "Z" else datetime.datetime.strptime(
        m.group(3).replace(":", ""), "%z").tzinfo
    frac = float(m.group(2) or 0)
    return base.replace(tzinfo=tz).timestamp() + frac


def human_age(seconds):
    """The AGE column, as the API server's duration.HumanDuration prints it."""
    s = int(seconds)
    if s < 0:
        return "0s"
    if s < 120:
        return "%ds" % s
    m = s // 60
    if m < 10:
        return "%dm%ds" % (m, s % 60) if s % 60 else "%dm" % m
    if m < 180:
        return "%dm" % m
    h = s // 3600
    if h < 8:
        return "%dh%dm" % (h, m % 60) if m % 60 else "%dh" % h
    if h < 48:
        return "%dh" % h
    if h < 192:
        return "%dd%dh" % (h // 24, h % 24) if h % 24 else "%dd" % (h // 24)
    return "%dd" % (h // 24)


def b64(text):
    raw = text.encode() if isinstance(text, str) else bytes(text)
    return base64.b64encode(raw).decode()


def b64decode_go(value):
    """Decode as Go's encoding/json decodes a []byte (standard alphabet, padded; CR/LF
    ignored). Raises ValueError("illegal base64 data at input byte N")."""
    if not isinstance(value, str):
        raise ValueError("json: cannot unmarshal %s into Go value of type []uint8" % type(value).__name__)
    s = value.replace("\r", "").replace("\n", "")
    bad = re.search(r"[^A-Za-z0-9+/=]", s)
    if bad:
        raise ValueError("illegal base64 data at input byte %d" % bad.start())
    try:
        return base64.b64decode(s, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("illegal base64 data at input byte %d" % (len(s) - len(s) % 4 if len(s) % 4 else
                                                                     max(0, s.find("=")) if "=" in s else len(s)))


def as_list(v):
    if v is None:
        return []
    if isinstance(v, str):
        return [x.strip() for x in v.split(",") if x.strip()]
    return list(v)


def as_bool(v, default=False):
    if v is None:
        return default
    if isinstance(v, str):
        return v.strip().lower() in ("1", "true", "yes", "on")
    return bool(v)


def json_bytes(payload):
    return (json.dumps(payload, separators=(",", ":")) + "\n").encode()


# ---------------------------------------------------------------------------------------------
# Status errors, as k8s.io/apimachinery/pkg/api/errors builds them

class ApiError(Exception):
    def __init__(self, code, reason, message, details=None, headers=None):
        super().__init__(message)
        self.code, self.reason, self.message, self.details, self.headers = code, reason, message, details, headers
        self.raw = None       # an injected fault's own body

    def status(self):
        if self.raw is not None:
            return self.raw
        return status_object(self.code, self.reason, self.message, self.details)


def status_object(code, reason, message, details=None):
    st = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message}
    if reason:
        st["reason"] = reason
    if details:
        st["details"] = details
    st["code"] = code
    return st


def _details(rt, name, **extra):
    d = {}
    if name:
        d["name"] = name
    if rt.group:
        d["group"] = rt.group
    d["kind"] = rt.plural
    d.update(extra)
    return d


def not_found(rt, name):
    return ApiError(404, "NotFound", '%s "%s" not found' % (rt.qualified, name), _details(rt, name))


def namespace_not_found(ns):
    return ApiError(404, "NotFound", 'namespaces "%s" not found' % ns, {"name": ns, "kind": "namespaces"})


def already_exists(rt, name):
    return ApiError(409, "AlreadyExists", '%s "%s" already exists' % (rt.qualified, name), _details(rt, name))


def conflict(rt, name, why="the object has been modified; please apply your changes to the latest version and try again"):
    return ApiError(409, "Conflict", 'Operation cannot be fulfilled on %s "%s": %s' % (rt.qualified, name, why),
                    _details(rt, name))


def bad_request(message):
    return ApiError(400, "BadRequest", message)


def method_not_allowed(message="the server does not allow this method on the requested resource"):
    return ApiError(405, "MethodNotAllowed", message, {})


class FieldError:
    """One field.Error: type is Required, Invalid, TooLong, Forbidden, NotSupported."""

    REASONS = {"Required": ("FieldValueRequired", "Required value"),
               "Invalid": ("FieldValueInvalid", "Invalid value"),
               "TooLong": ("FieldValueTooLong", "Too long"),
               "Forbidden": ("FieldValueForbidden", "Forbidden"),
               "NotSupported": ("FieldValueNotSupported", "Unsupported value"),
               "Duplicate": ("FieldValueDuplicate", "Duplicate value")}

    def __init__(self, kind, field, detail="", value=None):
        self.kind, self.field, self.detail, self.value = kind, field, detail, value

    def body(self):
        reason, text = self.REASONS[self.kind]
        if self.kind in ("Invalid", "NotSupported", "Duplicate"):
            text += ": " + (json.dumps(self.value) if isinstance(self.value, str) else json.dumps(self.value))
        if self.detail:
            text += ": " + self.detail
        return text

    def __str__(self):
        return "%s: %s" % (self.field, self.body())


def invalid(rt, name, errors):
    text = str(errors[0]) if len(errors) == 1 else "[%s]" % ", ".join(str(e) for e in errors)
    causes = [{"reason": FieldError.REASONS[e.kind][0], "message": e.body(), "field": e.field} for e in errors]
    details = {"name": name} if name else {}
    if rt.group:
        details["group"] = rt.group
    details["kind"] = rt.kind
    details["causes"] = causes
    return ApiError(422, "Invalid", '%s "%s" is invalid: %s' % (rt.qualified_kind, name, text), details)


# Validation messages of k8s.io/apimachinery/pkg/util/validation.
DNS1123_SUBDOMAIN_MSG = ("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or "
                         "'.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used "
                         "for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')")
DNS1123_LABEL_MSG = ("a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must "
                     "start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for "
                     "validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')")
CONFIG_KEY_MSG = ("a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  "
                  "or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')")
_SUBDOMAIN_RE = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_LABEL_RE = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_CONFIG_KEY_RE = re.compile(r"[-._a-zA-Z0-9]+")


def name_errors(name, label=False, field="metadata.name"):
    if not name:
        return [FieldError("Required", field, "name or generateName is required")]
    limit, regex, msg = (63, _LABEL_RE, DNS1123_LABEL_MSG) if label else (253, _SUBDOMAIN_RE, DNS1123_SUBDOMAIN_MSG)
    errs = []
    if len(name) > limit:
        errs.append(FieldError("Invalid", field, "must be no more than %d characters" % limit, name))
    if not regex.fullmatch(name):
        errs.append(FieldError("Invalid", field, msg, name))
    return errs


def config_key_errors(key, field):
    errs = []
    if len(key) > 253:
        errs.append(FieldError("Invalid", field, "must be no more than 253 characters", key))
    if not _CONFIG_KEY_RE.fullmatch(key):
        errs.append(FieldError("Invalid", field, CONFIG_KEY_MSG, key))
    if key == ".":
        errs.append(FieldError("Invalid", field, "must not be '.'", key))
    elif key == "..":
        errs.append(FieldError("Invalid", field, "must not be '..'", key))
    elif key.startswith(".."):
        errs.append(FieldError("Invalid", field, "must not start with '..'", key))
    return errs


# ---------------------------------------------------------------------------------------------
# Selectors

class Selector:
    """A label selector (=, ==, !=, in, notin, exists, !exists, gt, lt) or a field selector
    (=, ==, !=) as the API server parses them."""

    def __init__(self, text, fields=False):
        self.reqs = []
        text = (text or "").strip()
        if not text:
            return
        for part in self._split(text):
            part = part.strip()
            if not part:
                raise bad_request("unable to parse requirement: found '', expected: identifier")
            self.reqs.append(self._field_req(part) if fields else self._label_req(part))

    @staticmethod
    def _split(text):
        out, depth, cur = [], 0, []
        for ch in text:
            if ch == "(":
                depth += 1
            elif ch == ")":
                depth -= 1
            if ch == "," and depth == 0:
                out.append("".join(cur))
                cur = []
            else:
                cur.append(ch)
        out.append("".join(cur))
        return out

    @staticmethod
    def _field_req(part):
        m = re.fullmatch(r"([^=!]+?)\s*(==|=|!=)\s*(.*)", part)
        if not m:
            raise bad_request("invalid selector: '%s'; can't understand '%s'" % (part, part))
        return (m.group(1).strip(), "!=" if m.group(2) == "!=" else "=", m.group(3).strip())

    @staticmethod
    def _label_req(part):
        m = re.fullmatch(r"(\S+)\s+(in|notin)\s*\((.*)\)", part)
        if m:
            return (m.group(1), m.group(2), {v.strip() for v in m.group(3).split(",") if v.strip()} or {""})
        m = re.fullmatch(r"([^=!<>\s]+)\s*(==|=|!=|<|>)\s*(\S*)", part)
        if m:
            op = {"==": "=", "=": "=", "!=": "!=", "<": "lt", ">": "gt"}[m.group(2)]
            return (m.group(1), op, m.group(3))
        m = re.fullmatch(r"(!?)\s*([^=!<>\s()]+)", part)
        if m:
            return (m.group(2), "!exists" if m.group(1) else "exists", None)
        raise bad_request("unable to parse requirement: found '%s', expected: identifier" % part)

    def keys(self):
        return [r[0] for r in self.reqs]

    def matches(self, values):
        """values: a dict (labels, or field name -> value)."""
        for key, op, want in self.reqs:
            have = values.get(key)
            if op == "=" and have != want:
                return False
            if op == "!=" and have == want:
                return False
            if op == "in" and have not in want:
                return False
            if op == "notin" and have in want:
                return False
            if op == "exists" and key not in values:
                return False
            if op == "!exists" and key in values:
                return False
            if op in ("gt", "lt"):
                try:
                    h, w = int(have), int(want)
                except (TypeError, ValueError):
                    return False
                if (op == "gt" and not h > w) or (op == "lt" and not h < w):
                    return False
        return True


# ---------------------------------------------------------------------------------------------
# Patches: JSON merge patch (RFC 7386), strategic merge patch, JSON patch (RFC 6902)

def merge_patch(target, patch):
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if v is None:
            result.pop(k, None)
        else:
            result[k] = merge_patch(result.get(k), v)
    return result


# patchMergeKey of the lists the Kubernetes types mark patchStrategy "merge".
SMP_MERGE_KEYS = {"containers": "name", "initContainers": "name", "ephemeralContainers": "name",
                  "volumes": "name", "env": "name", "volumeMounts": "mountPath", "volumeDevices": "devicePath",
                  "ports": "containerPort", "imagePullSecrets": "name", "hostAliases": "ip",
                  "topologySpreadConstraints": "topologyKey", "conditions": "type", "ownerReferences": "uid",
                  "secrets": "name", "tolerations": None, "finalizers": None}


def _strip_directives(v):
    if isinstance(v, dict):
        return {k: _strip_directives(x) for k, x in v.items() if not k.startswith("$")}
    if isinstance(v, list):
        return [_strip_directives(x) for x in v]
    return copy.deepcopy(v)


def strategic_merge_patch(target, patch):
    """Returns the patched map, or None when the patch says {"$patch": "delete"}."""
    if not isinstance(patch, dict):
        raise bad_request("strategic merge patch: the patch must be a JSON object")
    directive = patch.get("$patch")
    if directive == "replace":
        return _strip_directives(patch)
    if directive == "delete":
        return None
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if k.startswith("$setElementOrder/") or k in ("$patch", "$retainKeys"):
            continue
        if k.startswith("$deleteFromPrimitiveList/"):
            field = k.split("/", 1)[1]
            if isinstance(result.get(field), list):
                result[field] = [x for x in result[field] if x not in (v or [])]
            continue
        if v is None:
            result.pop(k, None)
        elif isinstance(v, dict):
            sub = strategic_merge_patch(result.get(k) if isinstance(result.get(k), dict) else {}, v)
            if sub is None:
                result.pop(k, None)
            else:
                result[k] = sub
        elif isinstance(v, list) and SMP_MERGE_KEYS.get(k) and isinstance(result.get(k), list):
            result[k] = _smp_list(result[k], v, SMP_MERGE_KEYS[k])
        elif isinstance(v, list) and k in SMP_MERGE_KEYS and isinstance(result.get(k), list):
            result[k] = result[k] + [x for x in _strip_directives(v) if x not in result[k]]
        else:
            result[k] = _strip_directives(v)
    if "$retainKeys" in patch:
        keep = set(patch["$retainKeys"] or [])
        result = {k: v for k, v in result.items() if k in keep}
    return result


def _smp_list(current, patch, key):
    if any(isinstance(x, dict) and x.get("$patch") == "replace" for x in patch):
        return [_strip_directives(x) for x in patch if not (isinstance(x, dict) and x.get("$patch"))]
    out = copy.deepcopy(current)
    for item in patch:
        if not isinstance(item, dict):
            if item not in out:
                out.append(copy.deepcopy(item))
            continue
        idx = next((i for i, x in enumerate(out) if isinstance(x, dict) and x.get(key) == item.get(key)), None)
        if item.get("$patch") == "delete":
            if idx is not None:
                del out[idx]
        elif idx is None:
            out.append(_strip_directives(item))
        else:
            out[idx] = strategic_merge_patch(out[idx], item)
    return out


def _pointer(path):
    if path == "":
        return []
    if not path.startswith("/"):
        raise ValueError("JSON pointer must start with '/': %s" % path)
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _container(doc, parts, path):
    cur = doc
    for p in parts[:-1]:
        if isinstance(cur, dict) and p in cur:
            cur = cur[p]
        elif isinstance(cur, list) and p.isdigit() and int(p) < len(cur):
            cur = cur[int(p)]
        else:
            raise ValueError("doc is missing path: \"%s\": missing value" % path)
    return cur


def json_patch(doc, ops):
    if not isinstance(ops, list):
        raise ValueError("json: cannot unmarshal object into Go value of type jsonpatch.Patch")
    doc = copy.deepcopy(doc)
    for op in ops:
        kind, path = op.get("op"), op.get("path")
        if not isinstance(path, str):
            raise ValueError("operation missing path")
        if kind in ("move", "copy"):
            src = _pointer(op.get("from", ""))
            val = copy.deepcopy(_get_pointer(doc, src, op.get("from")))
            if kind == "move":
                doc = _remove_pointer(doc, src, op.get("from"))
            doc = _add_pointer(doc, _pointer(path), val, path)
        elif kind == "add":
            doc = _add_pointer(doc, _pointer(path), copy.deepcopy(op.get("value")), path)
        elif kind == "remove":
            doc = _remove_pointer(doc, _pointer(path), path)
        elif kind == "replace":
            parts = _pointer(path)
            _get_pointer(doc, parts, path)
            doc = _remove_pointer(doc, parts, path) if parts else doc
            doc = _add_pointer(doc, parts, copy.deepcopy(op.get("value")), path)
        elif kind == "test":
            if _get_pointer(doc, _pointer(path), path) != op.get("value"):
                raise ValueError("testing value %s failed: test failed" % path)
        else:
            raise ValueError("Unexpected kind: %s" % kind)
    return doc


def _get_pointer(doc, parts, path):
    if not parts:
        return doc
    cur = _container(doc, parts, path)
    last = parts[-1]
    if isinstance(cur, dict) and last in cur:
        return cur[last]
    if isinstance(cur, list) and last.isdigit() and int(last) < len(cur):
        return cur[int(last)]
    raise ValueError("doc is missing path: \"%s\": missing value" % path)


def _add_pointer(doc, parts, value, path):
    if not parts:
        return value
    cur = _container(doc, parts, path)
    last = parts[-1]
    if isinstance(cur, dict):
        cur[last] = value
    elif isinstance(cur, list):
        if last == "-":
            cur.append(value)
        elif last.isdigit() and int(last) <= len(cur):
            cur.insert(int(last), value)
        else:
            raise ValueError("add operation does not apply: doc is missing path: \"%s\": missing value" % path)
    else:
        raise ValueError("doc is missing path: \"%s\": missing value" % path)
    return doc


def _remove_pointer(doc, parts, path):
    _get_pointer(doc, parts, path)
    if not parts:
        return None
    cur = _container(doc, parts, path)
    if isinstance(cur, dict):
        del cur[parts[-1]]
    else:
        del cur[int(parts[-1])]
    return doc


# ---------------------------------------------------------------------------------------------
# Field ownership (managedFields), at the granularity of map leaves; lists are atomic.

_UNOWNED = {("apiVersion",), ("kind",), ("status",), ("metadata", "name"), ("metadata", "namespace"),
            ("metadata", "uid"), ("metadata", "resourceVersion"), ("metadata", "generation"),
            ("metadata", "creationTimestamp"), ("metadata", "managedFields"), ("metadata", "selfLink"),
            ("metadata", "generateName"), ("metadata", "deletionTimestamp")}


def leaves(obj, prefix=()):
    out = {}
    for k, v in (obj or {}).items():
        p = prefix + (k,)
        if p in _UNOWNED:
            continue
        if isinstance(v, dict) and v:
            out.update(leaves(v, p))
        else:
            out[p] = v
    return out


def related(p, q):
    n = min(len(p), len(q))
    return p[:n] == q[:n]


def fields_v1(paths):
    tree = {}
    for p in sorted(paths):
        node = tree
        for part in p:
            node = node.setdefault("f:" + part, {})
    return tree


def paths_of(tree, prefix=()):
    out = set()
    for k, v in (tree or {}).items():
        if not k.startswith("f:"):
            continue
        p = prefix + (k[2:],)
        children = {c for c in (v or {}) if c.startswith("f:")}
        if children:
            out |= paths_of(v, p)
        else:
            out.add(p)
    return out


def get_path(obj, p):
    cur = obj
    for part in p:
        if not isinstance(cur, dict) or part not in cur:
            return None
        cur = cur[part]
    return cur


def set_path(obj, p, value):
    cur = obj
    for part in p[:-1]:
        if not isinstance(cur.get(part), dict):
            cur[part] = {}
        cur = cur[part]
    cur[p[-1]] = value


def del_path(obj, p):
    chain = [obj]
    for part in p[:-1]:
        nxt = chain[-1].get(part) if isinstance(chain[-1], dict) else None
        if not isinstance(nxt, dict):
            return
        chain.append(nxt)
    chain[-1].pop(p[-1], None)
    for i in range(len(p) - 1, 1, -1):   # prune maps left empty, below the top-level ones
        if chain[i] == {}:
            chain[i - 1].pop(p[i - 1], None)
    if len(p) >= 2 and chain[1] == {} and p[0] in ("data", "stringData"):
        obj.pop(p[0], None)


def manager_text(entry):
    """printManager of the API server's conflict errors."""
    if entry["operation"] == "Update":
        return '"%s" using %s' % (entry["manager"], entry["apiVersion"])
    return '"%s"' % entry["manager"]


# ---------------------------------------------------------------------------------------------
# Protobuf request bodies. kubectl's typed clients (create secret, create token, auth can-i)
# send application/vnd.kubernetes.protobuf: "k8s\0" and a runtime.Unknown {typeMeta, raw}.
# Only the messages kubectl sends are described here (field numbers of k8s.io/api's
# generated.proto); answers are always JSON, which those clients accept too.

PROTOBUF = "application/vnd.kubernetes.protobuf"
_PB_MESSAGES = {
    "Unknown": {1: ("typeMeta", "TypeMeta"), 2: ("raw", "bytes")},
    "TypeMeta": {1: ("apiVersion", "string"), 2: ("kind", "string")},
    "ObjectMeta": {1: ("name", "string"), 2: ("generateName", "string"), 3: ("namespace", "string"),
                   5: ("uid", "string"), 6: ("resourceVersion", "string"), 11: ("labels", "map:string"),
                   12: ("annotations", "map:string"), 14: ("finalizers", "list:string")},
    "Secret": {1: ("metadata", "ObjectMeta"), 2: ("data", "map:bytes"), 3: ("type", "string"),
               4: ("stringData", "map:string"), 5: ("immutable", "bool")},
    "Namespace": {1: ("metadata", "ObjectMeta")},
    "ServiceAccount": {1: ("metadata", "ObjectMeta")},
    "TokenRequest": {1: ("metadata", "ObjectMeta"), 2: ("spec", "TokenRequestSpec")},
    "TokenRequestSpec": {1: ("audiences", "list:string"), 3: ("boundObjectRef", "BoundObjectReference"),
                         4: ("expirationSeconds", "int")},
    "BoundObjectReference": {1: ("kind", "string"), 2: ("apiVersion", "string"), 3: ("name", "string"),
                             4: ("uid", "string")},
    "SelfSubjectAccessReview": {1: ("metadata", "ObjectMeta"), 2: ("spec", "SelfSubjectAccessReviewSpec")},
    "SelfSubjectAccessReviewSpec": {1: ("resourceAttributes", "ResourceAttributes"),
                                    2: ("nonResourceAttributes", "NonResourceAttributes")},
    "ResourceAttributes": {1: ("namespace", "string"), 2: ("verb", "string"), 3: ("group", "string"),
                           4: ("version", "string"), 5: ("resource", "string"), 6: ("subresource", "string"),
                           7: ("name", "string")},
    "NonResourceAttributes": {1: ("path", "string"), 2: ("verb", "string")},
    "SelfSubjectReview": {1: ("metadata", "ObjectMeta")},
    "DeleteOptions": {2: ("preconditions", "Preconditions"), 4: ("propagationPolicy", "string")},
    "Preconditions": {1: ("uid", "string"), 2: ("resourceVersion", "string")},
}


def _pb_fields(buf):
    """(field number, value) pairs of a protobuf message: ints for varints, bytes otherwise."""
    out, i = [], 0

    def varint():
        nonlocal i
        shift = result = 0
        while True:
            if i >= len(buf):
                raise ValueError("truncated varint")
            b = buf[i]
            i += 1
            result |= (b & 0x7f) << shift
            shift += 7
            if not b & 0x80:
                return result
    while i < len(buf):
        key = varint()
        num, wire = key >> 3, key & 7
        if wire == 0:
            out.append((num, varint()))
        elif wire == 2:
            n = varint()
            out.append((num, bytes(buf[i:i + n])))
            i += n
        elif wire in (1, 5):
            n = 8 if wire == 1 else 4
            out.append((num, int.from_bytes(buf[i:i + n], "little")))
            i += n
        else:
            raise ValueError("unsupported protobuf wire type %d" % wire)
    return out


def pb_decode(buf, message):
    schema = _PB_MESSAGES[message]
    obj = {}
    for num, val in _pb_fields(buf):
        if num not in schema:
            continue
        name, kind = schema[num]
        if kind.startswith("map:"):
            entry = dict(_pb_fields(val))
            v = entry.get(2, b"")
            obj.setdefault(name, {})[entry.get(1, b"").decode()] = b64(v) if kind == "map:bytes" else v.decode()
        elif kind.startswith("list:"):
            obj.setdefault(name, []).append(val.decode())
        elif kind == "string":
            if val:                      # Go's omitempty: an empty string is not there in JSON
                obj[name] = val.decode()
        elif kind == "bytes":
            obj[name] = val
        elif kind in ("int", "bool"):
            obj[name] = bool(val) if kind == "bool" else (val - (1 << 64) if val >= 1 << 63 else val)
        else:
            obj[name] = pb_decode(val, kind)
    return obj


def pb_object(body):
    """The JSON form of a protobuf request body; ValueError for what this stand-in cannot read."""
    if not body.startswith(b"k8s\x00"):
        raise ValueError("provided data does not appear to be a protobuf message, expected prefix [107 56 115 0]")
    unknown = pb_decode(body[4:], "Unknown")
    tm = unknown.get("typeMeta", {})
    kind = tm.get("kind", "")
    if kind not in _PB_MESSAGES or kind in ("Unknown", "TypeMeta"):
        raise ValueError("this stand-in API server cannot decode %s from protobuf; send JSON" % (kind or "it"))
    obj = {"kind": kind, "apiVersion": tm.get("apiVersion", "")}
    obj.update(pb_decode(unknown.get("raw", b""), kind))
    return obj


# ---------------------------------------------------------------------------------------------
# Resource types

class ResourceType:
    def __init__(self, group, version, plural, kind, namespaced, short=(), verbs=None, stored=True,
                 subresources=(), columns=None, categories=()):
        self.group, self.version, self.plural, self.kind = group, version, plural, kind
        self.namespaced, self.short, self.stored = namespaced, list(short), stored
        self.verbs = verbs or ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]
        self.subresources = subresources          # [(name, kind, group, version, verbs)]
        self.columns = columns or [("Name", "string", "name"), ("Age", "string", "age")]
        self.categories = list(categories)

    @property
    def key(self):
        return (self.group, self.plural)

    @property
    def api_version(self):
        return "%s/%s" % (self.group, self.version) if self.group else self.version

    @property
    def qualified(self):
        """schema.GroupResource.String(): "secrets", "deployments.apps"."""
        return "%s.%s" % (self.plural, self.group) if self.group else self.plural

    @property
    def qualified_kind(self):
        return "%s.%s" % (self.kind, self.group) if self.group else self.kind

    @property
    def singular(self):
        return self.kind.lower()

    @property
    def workload(self):
        return self.group == "apps"


def _ready(o):
    st = o.get("status", {})
    return "%d/%d" % (st.get("readyReplicas", 0), (o.get("spec") or {}).get("replicas", 1))


_NAME = ("Name", "string", "The name of the object")
_AGE = ("Age", "string", "The age of the object")
RESOURCE_TYPES = [
    ResourceType("", "v1", "namespaces", "Namespace", False, ["ns"],
                 verbs=["create", "delete", "get", "list", "patch", "update", "watch"],
                 columns=[_NAME, ("Status", "string", lambda o: o.get("status", {}).get("phase", "")), _AGE]),
    ResourceType("", "v1", "secrets", "Secret", True,
                 columns=[_NAME, ("Type", "string", lambda o: o.get("type", "")),
                          ("Data", "integer", lambda o: len(o.get("data") or {})), _AGE]),
    ResourceType("", "v1", "serviceaccounts", "ServiceAccount", True, ["sa"],
                 subresources=[("token", "TokenRequest", "authentication.k8s.io", "v1", ["create"])],
                 columns=[_NAME, ("Secrets", "integer", lambda o: len(o.get("secrets") or [])), _AGE]),
    ResourceType("apps", "v1", "deployments", "Deployment", True, ["deploy"], categories=["all"],
                 columns=[_NAME, ("Ready", "string", _ready),
                          ("Up-to-date", "integer", lambda o: o.get("status", {}).get("updatedReplicas", 0)),
                          ("Available", "integer", lambda o: o.get("status", {}).get("availableReplicas", 0)), _AGE]),
    ResourceType("apps", "v1", "statefulsets", "StatefulSet", True, ["sts"], categories=["all"],
                 columns=[_NAME, ("Ready", "string", _ready), _AGE]),
    ResourceType("apps", "v1", "daemonsets", "DaemonSet", True, ["ds"], categories=["all"],
                 columns=[_NAME, ("Desired", "integer", lambda o: o.get("status", {}).get("desiredNumberScheduled", 0)),
                          ("Current", "integer", lambda o: o.get("status", {}).get("currentNumberScheduled", 0)),
                          ("Ready", "integer", lambda o: o.get("status", {}).get("numberReady", 0)), _AGE]),
    ResourceType("coordination.k8s.io", "v1", "leases", "Lease", True,
                 columns=[_NAME, ("Holder", "string", lambda o: (o.get("spec") or {}).get("holderIdentity", "")),
                          _AGE]),
    ResourceType("authentication.k8s.io", "v1", "tokenreviews", "TokenReview", False, verbs=["create"],
                 stored=False),
    ResourceType("authentication.k8s.io", "v1", "selfsubjectreviews", "SelfSubjectReview", False, verbs=["create"],
                 stored=False),
    ResourceType("authorization.k8s.io", "v1", "selfsubjectaccessreviews", "SelfSubjectAccessReview", False,
                 verbs=["create"], stored=False),
]
TYPES = {rt.key: rt for rt in RESOURCE_TYPES}
GROUP_VERSIONS = {}
for _rt in RESOURCE_TYPES:
    GROUP_VERSIONS.setdefault((_rt.group, _rt.version), []).append(_rt)

# What the API server accepts as a PATCH body per content type.
PATCH_TYPES = ("application/json-patch+json", "application/merge-patch+json",
               "application/strategic-merge-patch+json", "application/apply-patch+yaml")


# ---------------------------------------------------------------------------------------------
# HTTP plumbing

class _HTTPServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256
    allow_reuse_address = True

    def __init__(self, addr, kube):
        self.kube = kube
        self.address_family = socket.AF_INET6 if ":" in addr[0] else socket.AF_INET
        super().__init__(addr, _Handler)

    def get_request(self):
        sock, addr = self.socket.accept()
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass
        with self.kube._lock:
            self.kube._stats["connections"] += 1
        return sock, addr

    def finish_request(self, request, client_address):
        kube = self.kube
        conn = request
        try:
            if kube._ssl_ctx is not None:
                request.settimeout(10)
                try:
                    conn = kube._ssl_ctx.wrap_socket(request, server_side=True)
                except (ssl.SSLError, OSError) as e:
                    with kube._lock:
                        kube._stats["tls_failures"] += 1
                    kube._log("TLS handshake with %s failed: %s" % (client_address[0], e))
                    return
            conn.settimeout(kube.idle_timeout)
            with kube._lock:
                kube._conns.add(conn)
            try:
                self.RequestHandlerClass(conn, client_address, self)
            finally:
                with kube._lock:
                    kube._conns.discard(conn)
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
        self.kube._log("error serving %s:\n%s" % (client_address[0], traceback.format_exc()))


class Request:
    """One API request, parsed as the API server's RequestInfoFactory does."""

    def __init__(self, method, raw_path, headers, body, conn):
        split = urllib.parse.urlsplit(raw_path)
        self.method, self.headers, self.body, self.conn = method, headers, body, conn
        self.path = urllib.parse.unquote(split.path)
        self.raw_query = split.query
        self.query = {k: v[-1] for k, v in urllib.parse.parse_qs(split.query, keep_blank_values=True).items()}
        self.user = None
        self.resource_request = False
        self.group = self.version = self.resource = self.subresource = self.name = self.namespace = ""
        self.verb = method.lower()
        parts = [p for p in self.path.split("/") if p]
        if len(parts) >= 3 and parts[0] == "api":
            self.group, self.version, rest = "", parts[1], parts[2:]
        elif len(parts) >= 4 and parts[0] == "apis":
            self.group, self.version, rest = parts[1], parts[2], parts[3:]
        else:
            return
        self.resource_request = True
        watch = False
        if rest and rest[0] == "watch":
            watch, rest = True, rest[1:]
        if len(rest) >= 3 and rest[0] == "namespaces":
            self.namespace, rest = rest[1], rest[2:]
        elif len(rest) >= 2 and rest[0] == "namespaces":
            self.namespace = rest[1]
        self.resource = rest[0] if rest else ""
        self.name = rest[1] if len(rest) > 1 else ""
        self.subresource = "/".join(rest[2:])
        if as_bool(self.query.get("watch")):
            watch = True
        if method in ("GET", "HEAD"):
            self.verb = "get" if self.name else ("watch" if watch else "list")
        elif method == "POST":
            self.verb = "create"
        elif method == "PUT":
            self.verb = "update"
        elif method == "PATCH":
            self.verb = "patch"
        elif method == "DELETE":
            self.verb = "delete" if self.name else "deletecollection"

    @property
    def full_resource(self):
        return self.resource + ("/" + self.subresource if self.subresource else "")

    def wants_table(self):
        return "as=Table" in (self.headers.get("Accept") or "")

    def manager(self):
        fm = self.query.get("fieldManager")
        if fm:
            return fm
        ua = self.headers.get("User-Agent") or "unknown"
        return ua.split("/", 1)[0] or "unknown"


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "KubeAPIStandIn/" + KUBE_VERSION["gitVersion"]
    sys_version = ""

    def log_message(self, fmt, *args):
        self.server.kube._log("%s %s" % (self.address_string(), fmt % args))

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

    def _read_body(self):
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks = []
            while True:
                line = self.rfile.readline(65537)
                if not line:
                    raise ValueError("truncated chunked body")
                size = int(line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline(3)
        n = int(self.headers.get("Content-Length") or 0)
        data = self.rfile.read(n) if n > 0 else b""
        if len(data) != n:
            raise ValueError("truncated body")
        return data

    def raw_shutdown(self):
        try:
            socket.socket.shutdown(self.connection, socket.SHUT_RDWR)
        except OSError:
            pass
        self.close_connection = True

    def write(self, data):
        try:
            self.wfile.write(data)
            self.wfile.flush()
            return True
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError, OSError, ValueError):
            self.close_connection = True
            return False

    def send(self, method, status, payload, headers=None, content_type="application/json"):
        if payload is None:
            data = b""
        elif isinstance(payload, (bytes, bytearray)):
            data = bytes(payload)
        elif isinstance(payload, str):
            data = payload.encode()
        else:
            data = json_bytes(payload)
        self.send_response(status)
        if data:
            self.send_header("Content-Type", content_type)
        self.send_header("Audit-Id", str(uuid.uuid4()))
        self.send_header("Cache-Control", "no-cache, private")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, str(v))
        self._headers_buffer.append(b"\r\n")
        head = b"".join(self._headers_buffer)
        self._headers_buffer = []
        self.write(head + (b"" if method == "HEAD" else data))

    def start_stream(self):
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Audit-Id", str(uuid.uuid4()))
        self.send_header("Cache-Control", "no-cache, private")
        self.send_header("Transfer-Encoding", "chunked")
        self._headers_buffer.append(b"\r\n")
        head = b"".join(self._headers_buffer)
        self._headers_buffer = []
        return self.write(head)

    def send_chunk(self, data):
        return self.write(b"%x\r\n%s\r\n" % (len(data), data))

    def end_stream(self):
        self.write(b"0\r\n\r\n")

    def _dispatch(self, method):
        kube = self.server.kube
        try:
            body = self._read_body()
        except (ValueError, OSError):
            self.send(method, 400, status_object(400, "BadRequest", "error reading request body"))
            self.close_connection = True
            return
        if self.path.startswith("/_test/"):
            return self._control(method, body)
        req = Request(method, self.path, self.headers, body, self.connection)
        kube._serve(self, req)

    def _control(self, method, body):
        kube = self.server.kube
        split = urllib.parse.urlsplit(self.path)
        op = split.path[len("/_test/"):].strip("/").replace("-", "_")
        if op not in CONTROL_OPS:
            return self.send(method, 404, {"error": "unknown control operation %r" % op, "operations": list(CONTROL_OPS)})
        kwargs = {k: (v[-1] if len(v) == 1 else v)
                  for k, v in urllib.parse.parse_qs(split.query, keep_blank_values=True).items()}
        if body.strip():
            try:
                extra = json.loads(body)
            except ValueError as e:
                return self.send(method, 400, {"error": "bad JSON: %s" % e})
            if not isinstance(extra, dict):
                return self.send(method, 400, {"error": "the body must be a JSON object of arguments"})
            kwargs.update(extra)
        if op in ("down", "up"):      # answer first: down closes this very connection
            self.send(method, 200, {"ok": True})
            threading.Thread(target=getattr(kube, op), daemon=True).start()
            return
        try:
            result = getattr(kube, op)(**kwargs)
        except (TypeError, ValueError, KeyError, ApiError) as e:
            return self.send(method, 400, {"error": "%s: %s" % (type(e).__name__, e)})
        self.send(method, 200, {"ok": True} if result is None else result)


# ---------------------------------------------------------------------------------------------
# The server

class KubeServer:
    """The stand-in API server. Thread-safe; every method in CONTROL_OPS is a control operation."""

    def __init__(self, host="127.0.0.1", port=0, tls_cert=None, tls_key=None, client_ca=None,
                 admin_token="admin-token", log=None, idle_timeout=300, history_size=10000,
                 bookmark_interval=60.0, sa_key=None):
        self.host = host
        self.requested_port = int(port)
        self.admin_token = admin_token
        self.idle_timeout = idle_timeout
        self.history_size = int(history_size)
        self._lock = threading.RLock()
        self._cond = threading.Condition(self._lock)
        self._log_lock = threading.Lock()
        self._log_file = open(log, "a", buffering=1) if isinstance(log, str) else log
        self._ssl_ctx = None
        if tls_cert:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(tls_cert, tls_key)
            ctx.set_alpn_protocols(["http/1.1"])
            for ca in ([client_ca] if isinstance(client_ca, str) else list(client_ca or [])):
                ctx.load_verify_locations(cafile=ca)
                ctx.verify_mode = ssl.CERT_OPTIONAL
            self._ssl_ctx = ctx
        self._httpd = None
        self._thread = None
        self._conns = set()
        self._watches = {}            # id -> {"conn", "resource", "namespace", "user", "since"}
        self._watch_seq = 0
        self._sa_key_dir = None
        if not sa_key:                # the API server's --service-account-signing-key-file
            self._sa_key_dir = tempfile.mkdtemp(prefix="kube-sa-key.")
            sa_key = rsa_jwt.make_rsa_key(os.path.join(self._sa_key_dir, "sa.key"))
        self._sa_key = sa_key
        self._sa_public = rsa_jwt.RsaPublicKey(sa_key)
        der = subprocess.run(["openssl", "pkey", "-in", sa_key, "-pubout", "-outform", "DER"], check=True,
                             capture_output=True).stdout
        self._sa_public_pem = subprocess.run(["openssl", "pkey", "-in", sa_key, "-pubout"], check=True,
                                             capture_output=True).stdout.decode()
        self._sa_kid = rsa_jwt.b64url(hashlib.sha256(der).digest())   # as the API server names its key
        self._token_lifetime = None   # set_token_lifetime()
        self._bookmark_interval = float(bookmark_interval)
        self._init_state()

    def _init_state(self):
        with self._lock:
            self._objects = {rt.key: {} for rt in RESOURCE_TYPES if rt.stored}
            self._rv = 1
            self._events = []         # [(rv, resource key, type, object, previous object)]
            self._compacted = 1       # a watch may start at any resourceVersion >= this
            self._users = {}          # name -> {"name", "uid", "groups"}
            self._tokens = {}         # bearer token -> user name
            self._rules = {}          # user or group name -> [rule]
            self._issued = {}         # TokenRequest token -> record
            self._faults = []
            self._fault_seq = 0
            self._latency_ms = 0
            self._reset_stats_locked()
            if self.admin_token:
                self.add_user(ADMIN_USER, token=self.admin_token, groups=[MASTERS])
            for ns in INITIAL_NAMESPACES:
                self.create_namespace(ns)

    # -- lifecycle

    def start(self):
        """Listen and serve in a background thread; returns self."""
        self._httpd = _HTTPServer((self.host, self.requested_port), self)
        self.requested_port = self._httpd.server_address[1]   # up() comes back on the same port
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.1},
                                        name="kube-stand-in", daemon=True)
        self._thread.start()
        return self

    def _stop_listening(self):
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._thread.join(5)
            self._httpd = None
        self.drop_connections()

    def stop(self):
        """Stop listening, drop every open connection, and close the log."""
        self._stop_listening()
        with self._cond:
            self._cond.notify_all()
        if self._log_file is not None and self._log_file not in (sys.stdout, sys.stderr):
            with self._log_lock:
                self._log_file.close()
                self._log_file = None
        if self._sa_key_dir:
            shutil.rmtree(self._sa_key_dir, ignore_errors=True)
            self._sa_key_dir = None

    def __enter__(self):
        return self.start() if self._httpd is None else self

    def __exit__(self, *exc):
        self.stop()

    @property
    def port(self):
        return self.requested_port

    @property
    def url(self):
        host = "[%s]" % self.host if ":" in self.host else self.host
        return "%s://%s:%d" % ("https" if self._ssl_ctx else "http", host, self.port)

    def _log(self, msg):
        if self._log_file is None:
            return
        with self._log_lock:
            if self._log_file is not None:
                try:
                    self._log_file.write("%s %s\n" % (time.strftime("%H:%M:%S"), msg))
                except (OSError, ValueError):
                    pass

    def down(self, seconds=None):
        """Take the whole server down: stop listening (connections are refused) and drop every
        open connection and watch. State is kept. With seconds, come back up after that long."""
        self._stop_listening()
        if seconds:
            threading.Timer(float(seconds), self.up).start()

    def up(self):
        """Listen again on the same port after down()."""
        if self._httpd is None:
            for _ in range(50):
                try:
                    self.start()
                    return
                except OSError:
                    time.sleep(0.1)
            self.start()

    def drop_connections(self):
        """Close every open client connection (keep-alive and watch ones). Returns how many."""
        with self._lock:
            conns = list(self._conns)
        for c in conns:
            try:
                socket.socket.shutdown(c, socket.SHUT_RDWR)
            except OSError:
                pass
        return {"dropped": len(conns)}

    def load_state(self, state):
        """Apply a state document: {op: [kwargs, ...]} (in CONTROL_OPS order) or
        [{"op": op, ...kwargs}, ...]."""
        if isinstance(state, dict):
            unknown = [k for k in state if k not in CONTROL_OPS]
            if unknown:
                raise ValueError("unknown operations in state: %s" % ", ".join(unknown))
            steps = [(op, kw or {}) for op in CONTROL_OPS if op in state
                     for kw in (state[op] if isinstance(state[op], list) else [state[op]])]
        else:
            steps = [(dict(item).pop("op"), {k: v for k, v in item.items() if k != "op"}) for item in state]
        for op, kw in steps:
            if op not in CONTROL_OPS:
                raise ValueError("unknown operation %r" % op)
            getattr(self, op)(**kw)

    # -- control: users, tokens, permissions

    def add_user(self, name, token=None, tokens=None, groups=None, rules=None, admin=False):
        """A user known by bearer token(s) (a TLS client certificate's CN needs no add_user).
        groups: extra groups (system:authenticated is implied); admin: in system:masters (all
        allowed). rules: as grant() takes them, a list of dicts."""
        with self._lock:
            groups = as_list(groups) + ([MASTERS] if admin and MASTERS not in as_list(groups) else [])
            self._users[name] = {"name": name, "uid": str(uuid.uuid4()), "groups": groups}
            for t in as_list(tokens) + ([token] if token else []):
                self._tokens[t] = name
            for r in rules or []:
                self.grant(name, **r)
            return dict(self._users[name])

    def remove_user(self, name):
        with self._lock:
            self._users.pop(name, None)
            self._rules.pop(name, None)
            for t in [t for t, u in self._tokens.items() if u == name]:
                del self._tokens[t]

    def set_token(self, user, token):
        """Make token the user's only bearer token (the old ones stop working): a rotation."""
        with self._lock:
            if user not in self._users:
                raise KeyError("no user %r" % user)
            for t in [t for t, u in self._tokens.items() if u == user]:
                del self._tokens[t]
            self._tokens[token] = user

    def add_token(self, user, token):
        """One more bearer token for the user (old ones keep working)."""
        with self._lock:
            if user not in self._users:
                raise KeyError("no user %r" % user)
            self._tokens[token] = user

    def remove_token(self, token):
        with self._lock:
            self._tokens.pop(token, None)

    def users(self):
        with self._lock:
            return {"users": copy.deepcopy(self._users),
                    "tokens": {u: sum(1 for x in self._tokens.values() if x == u) for u in self._users},
                    "rules": {s: [dict(r, verbs=sorted(r["verbs"]), resources=sorted(r["resources"]),
                                       namespaces=sorted(r["namespaces"]) if r["namespaces"] else None,
                                       api_groups=sorted(r["api_groups"]) if r["api_groups"] is not None else None,
                                       names=sorted(r["names"]) if r["names"] else None)
                                  for r in rules] for s, rules in self._rules.items()}}

    def grant(self, subject, verbs, resources, namespaces=None, api_groups=None, names=None):
        """Allow subject (a user name, or a group such as "system:serviceaccounts") the verbs
        ("get", "list", "watch", "create", "update", "patch", "delete", "deletecollection", or
        "*") on the resources ("secrets", "serviceaccounts/token", "deployments", "leases", or
        "*"; a subresource must be named to be allowed). namespaces: None = every namespace
        and the cluster scope, else a list (namespaced requests only). api_groups: None = any.
        names: None = any, else only requests naming one of them (never list/watch/create)."""
        rule = {"verbs": set(as_list(verbs)), "resources": set(as_list(resources)),
                "namespaces": set(as_list(namespaces)) if namespaces not in (None, "*") else None,
                "api_groups": set(as_list(api_groups)) if api_groups not in (None, "*") else None,
                "names": set(as_list(names)) if names else None}
        if api_groups == "":
            rule["api_groups"] = {""}
        with self._lock:
            self._rules.setdefault(subject, []).append(rule)

    def revoke(self, subject):
        """Remove every rule granted to subject."""
        with self._lock:
            self._rules.pop(subject, None)

    def _allowed(self, user, verb, group, resource, namespace, name):
        if MASTERS in user["groups"]:
            return True
        if verb == "create" and resource in ("selfsubjectaccessreviews", "selfsubjectreviews"):
            return True                     # the system:basic-user role every user has
        with self._lock:
            rules = [r for s in [user["name"]] + user["groups"] for r in self._rules.get(s, [])]
        for r in rules:
            if not ("*" in r["verbs"] or verb in r["verbs"]):
                continue
            if not ("*" in r["resources"] or resource in r["resources"]):
                continue
            if r["api_groups"] is not None and "*" not in r["api_groups"] and group not in r["api_groups"]:
                continue
            if r["namespaces"] is not None and (not namespace or namespace not in r["namespaces"]):
                continue
            if r["names"] is not None and name not in r["names"]:
                continue
            return True
        return False

    @staticmethod
    def forbidden_message(user_name, verb, group, resource, namespace, name):
        """The API server's message for a denied request (and the Status it returns)."""
        if namespace:
            why = 'User "%s" cannot %s resource "%s" in API group "%s" in the namespace "%s"' % (
                user_name, verb, resource, group, namespace)
        else:
            why = 'User "%s" cannot %s resource "%s" in API group "%s" at the cluster scope' % (
                user_name, verb, resource, group)
        base = resource.split("/", 1)[0]
        qualified = "%s.%s" % (base, group) if group else base
        if name:
            return '%s "%s" is forbidden: %s' % (qualified, name, why)
        return "%s is forbidden: %s" % (qualified, why)

    def _forbidden(self, req):
        msg = self.forbidden_message(req.user["name"], req.verb, req.group, req.full_resource, req.namespace,
                                     req.name)
        details = {}
        if req.name:
            details["name"] = req.name
        if req.group:
            details["group"] = req.group
        details["kind"] = req.resource
        return ApiError(403, "Forbidden", msg, details)

    def _authenticate(self, req):
        conn = req.conn
        if isinstance(conn, ssl.SSLSocket):
            try:
                cert = conn.getpeercert()
            except (ValueError, OSError):
                cert = None
            if cert:
                cn, orgs = None, []
                for rdn in cert.get("subject", ()):
                    for k, v in rdn:
                        if k == "commonName":
                            cn = v
                        elif k == "organizationName":
                            orgs.append(v)
                if cn:
                    return {"name": cn, "uid": "", "groups": orgs + ["system:authenticated"], "via": "x509"}
        auth = req.headers.get("Authorization") or ""
        if auth[:7].lower() != "bearer ":
            return None
        token = auth[7:].strip()
        with self._lock:
            name = self._tokens.get(token)
            if name and name in self._users:
                u = self._users[name]
                return {"name": name, "uid": u["uid"], "groups": u["groups"] + ["system:authenticated"],
                        "via": "token"}
            rec = self._issued.get(token)
            if rec and self._token_valid(rec) and DEFAULT_AUDIENCE in rec["audiences"]:
                return self._sa_user(rec, "token")
        return None

    @staticmethod
    def _sa_user(rec, via):
        return {"name": "system:serviceaccount:%s:%s" % (rec["namespace"], rec["name"]), "uid": rec["uid"],
                "groups": ["system:serviceaccounts", "system:serviceaccounts:" + rec["namespace"],
                           "system:authenticated"], "via": via}

    @staticmethod
    def _token_valid(rec):
        return not rec["revoked"] and rec["expiration"] > time.time()

    # -- the store

    _META_ORDER = ("name", "generateName", "namespace", "uid", "resourceVersion", "generation", "creationTimestamp",
                   "deletionTimestamp", "labels", "annotations", "ownerReferences", "finalizers", "managedFields")
    _TOP_ORDER = ("kind", "apiVersion", "metadata", "immutable", "data", "type", "secrets", "imagePullSecrets",
                  "automountServiceAccountToken", "spec", "status")

    @staticmethod
    def _type(resource):
        """A ResourceType from "secrets", "secret", "Secret", "deployments.apps", "deploy"."""
        if isinstance(resource, ResourceType):
            return resource
        r = str(resource)
        for rt in RESOURCE_TYPES:
            if r in (rt.plural, rt.kind, rt.singular, rt.qualified, rt.qualified_kind) or r in rt.short:
                return rt
        raise KeyError("unknown resource %r" % resource)

    def _canonical(self, rt, obj):
        """The object with kind/apiVersion, keys in the order the API server writes them, and
        maps sorted as Go marshals them."""
        obj = dict(obj)
        obj["kind"], obj["apiVersion"] = rt.kind, rt.api_version
        meta = dict(obj.get("metadata") or {})
        for k in ("labels", "annotations"):
            if meta.get(k):
                meta[k] = dict(sorted(meta[k].items()))
            else:
                meta.pop(k, None)
        obj["metadata"] = {k: meta[k] for k in self._META_ORDER if k in meta}
        obj["metadata"].update({k: v for k, v in meta.items() if k not in obj["metadata"]})
        if isinstance(obj.get("data"), dict):
            obj["data"] = dict(sorted(obj["data"].items()))
        out = {k: obj[k] for k in self._TOP_ORDER if k in obj}
        out.update({k: v for k, v in obj.items() if k not in out})
        return out

    def _store(self, rt):
        return self._objects[rt.key]

    def _commit(self, rt, etype, new, old=None):
        """Store a change under a new resourceVersion, record its watch event, wake watchers.
        Returns the stored object (a copy)."""
        self._rv += 1
        key = (new if new is not None else old)["metadata"].get("namespace", ""), \
            (new if new is not None else old)["metadata"]["name"]
        if etype == "DELETED":
            self._store(rt).pop(key, None)
            new = copy.deepcopy(old)
        new["metadata"]["resourceVersion"] = str(self._rv)
        new = self._canonical(rt, new)
        if etype != "DELETED":
            self._store(rt)[key] = new
        self._events.append((self._rv, rt.key, etype, copy.deepcopy(new), copy.deepcopy(old)))
        while len(self._events) > self.history_size:
            self._compacted = self._events.pop(0)[0]
        self._stats["writes"] += 1
        self._cond.notify_all()
        return copy.deepcopy(new)

    def _exists_ns(self, ns):
        return ("", ns) in self._objects[("", "namespaces")]

    @staticmethod
    def _track_update(obj, old, manager, api_version):
        """managedFields after an Update operation by manager: it owns what it changed."""
        entries = copy.deepcopy((old or {}).get("metadata", {}).get("managedFields") or [])
        before = leaves(old) if old else {}
        after = leaves(obj)
        changed = {p for p, v in after.items() if p not in before or before[p] != v}
        removed = {p for p in before if p not in after}
        if old is not None and not changed and not removed:
            obj["metadata"]["managedFields"] = entries
            return
        out, mine = [], None
        for e in entries:
            paths = paths_of(e.get("fieldsV1"))
            paths = {q for q in paths if not any(related(q, c) for c in changed)}
            paths = {q for q in paths if not any(q[:len(r)] == r for r in removed)}
            if e["manager"] == manager and e["operation"] == "Update" and e.get("apiVersion") == api_version:
                mine = paths
                continue
            if paths:
                e["fieldsV1"] = fields_v1(paths)
                out.append(e)
        mine = (mine or set()) | changed
        if mine:
            out.append({"manager": manager, "operation": "Update", "apiVersion": api_version,
                        "time": now_rfc3339(), "fieldsType": "FieldsV1", "fieldsV1": fields_v1(mine)})
        obj["metadata"]["managedFields"] = out

    def _new_object(self, rt, ns, body):
        """metadata the API server sets on create."""
        obj = copy.deepcopy(body)
        meta = obj.setdefault("metadata", {})
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = meta["generateName"] + "".join(random.choice("bcdfghjklmnpqrstvwxz2456789")
                                                          for _ in range(5))
        if rt.namespaced:
            meta["namespace"] = ns
        else:
            meta.pop("namespace", None)
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = now_rfc3339()
        for k in ("resourceVersion", "managedFields", "deletionTimestamp", "selfLink"):
            meta.pop(k, None)
        if rt.workload:
            meta["generation"] = 1
        else:
            meta.pop("generation", None)
        if rt.plural == "namespaces":
            meta.setdefault("labels", {})["kubernetes.io/metadata.name"] = meta.get("name", "")
            obj["spec"] = {"finalizers": ["kubernetes"]}
            obj["status"] = {"phase": "Active"}
        return obj

    def _carry_over(self, rt, obj, old):
        """What an update keeps from the stored object whatever the client sends."""
        meta = obj.setdefault("metadata", {})
        for k in ("uid", "creationTimestamp", "namespace"):
            if k in old["metadata"]:
                meta[k] = old["metadata"][k]
        if rt.workload:
            gen = old["metadata"].get("generation", 1)
            meta["generation"] = gen + 1 if obj.get("spec") != old.get("spec") else gen
        if rt.workload or rt.plural == "namespaces":
            obj["status"] = copy.deepcopy(old.get("status"))
        if rt.plural == "namespaces":
            meta.setdefault("labels", {})["kubernetes.io/metadata.name"] = meta["name"]
            obj["spec"] = copy.deepcopy(old.get("spec"))

    def _default(self, rt, obj):
        """Defaulting and decoding, as the API server does before validation (400 on bodies
        that cannot be decoded)."""
        if rt.plural == "secrets":
            sd = obj.pop("stringData", None)
            if sd:
                if not isinstance(sd, dict):
                    raise bad_request('Secret in version "v1" cannot be handled as a Secret: json: cannot '
                                      'unmarshal %s into Go struct field Secret.stringData' % type(sd).__name__)
                data = obj.get("data") if isinstance(obj.get("data"), dict) else {}
                for k, v in sd.items():
                    if not isinstance(v, str):
                        raise bad_request('Secret in version "v1" cannot be handled as a Secret: json: cannot '
                                          'unmarshal %s into Go struct field Secret.stringData of type string'
                                          % type(v).__name__)
                    data[k] = b64(v)
                obj["data"] = data
            if obj.get("data") is not None and not isinstance(obj["data"], dict):
                raise bad_request('Secret in version "v1" cannot be handled as a Secret: json: cannot unmarshal '
                                  '%s into Go struct field Secret.data' % type(obj["data"]).__name__)
            for k, v in (obj.get("data") or {}).items():
                try:
                    b64decode_go(v)
                except ValueError as e:
                    raise bad_request('Secret in version "v1" cannot be handled as a Secret: %s' % e)
            if not obj.get("data"):
                obj.pop("data", None)
            if not obj.get("type"):
                obj["type"] = "Opaque"
        elif rt.plural == "leases":
            spec = obj.get("spec") or {}
            for k in ("acquireTime", "renewTime"):
                if spec.get(k) is not None:
                    try:
                        spec[k] = micro_time(parse_time(spec[k]))
                    except ValueError as e:
                        raise bad_request('Lease in version "v1" cannot be handled as a Lease: %s' % e)
        elif rt.workload:
            spec = obj.setdefault("spec", {})
            if rt.plural != "daemonsets":
                spec.setdefault("replicas", 1)

    @staticmethod
    def _rolled_out(rt, obj):
        """The status a controller would report once everything is rolled out."""
        if rt.workload:
            spec = obj.get("spec") or {}
            gen = obj["metadata"].get("generation", 1)
            n = spec.get("replicas", 1)
            if rt.plural == "daemonsets":
                obj["status"] = {"currentNumberScheduled": 1, "desiredNumberScheduled": 1, "numberAvailable": 1,
                                 "numberMisscheduled": 0, "numberReady": 1, "observedGeneration": gen,
                                 "updatedNumberScheduled": 1}
            else:
                obj["status"] = {"availableReplicas": n, "observedGeneration": gen, "readyReplicas": n,
                                 "replicas": n, "updatedReplicas": n}
                if rt.plural == "statefulsets":
                    obj["status"]["currentReplicas"] = n

    _LABEL_VALUE_MSG = ("a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or "
                        "'.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or "
                        "'my_value',  or '12345', regex used for validation is "
                        "'(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')")
    _QNAME_MSG = ("name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with "
                  "an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for "
                  "validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')")
    _QNAME_RE = re.compile(r"(([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*)/)?"
                           r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")
    _LABEL_VALUE_RE = re.compile(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?")

    def _validate(self, rt, obj, old):
        meta = obj.get("metadata") or {}
        name = meta.get("name", "")
        errs = name_errors(name, label=rt.plural == "namespaces")
        for k, v in (meta.get("labels") or {}).items():
            if not self._QNAME_RE.fullmatch(k) or len(k.rsplit("/", 1)[-1]) > 63:
                errs.append(FieldError("Invalid", "metadata.labels", self._QNAME_MSG, k))
            if not isinstance(v, str) or len(v) > 63 or not self._LABEL_VALUE_RE.fullmatch(v):
                errs.append(FieldError("Invalid", "metadata.labels", self._LABEL_VALUE_MSG, v))
        ann = meta.get("annotations") or {}
        for k in ann:
            if not self._QNAME_RE.fullmatch(k):
                errs.append(FieldError("Invalid", "metadata.annotations", self._QNAME_MSG, k))
        if sum(len(k) + len(str(v)) for k, v in ann.items()) > 256 * 1024:
            errs.append(FieldError("TooLong", "metadata.annotations", "must have at most 262144 bytes"))
        if rt.plural == "secrets":
            errs += self._validate_secret(obj, old)
        elif rt.plural == "leases":
            spec = obj.get("spec") or {}
            d = spec.get("leaseDurationSeconds")
            if d is not None and (not isinstance(d, int) or d <= 0):
                errs.append(FieldError("Invalid", "spec.leaseDurationSeconds", "must be greater than 0", d))
            t = spec.get("leaseTransitions")
            if t is not None and (not isinstance(t, int) or t < 0):
                errs.append(FieldError("Invalid", "spec.leaseTransitions", "must be greater than or equal to 0", t))
        elif rt.workload:
            if not (obj.get("spec") or {}).get("selector"):
                errs.append(FieldError("Required", "spec.selector", ""))
            elif old is not None and obj["spec"]["selector"] != (old.get("spec") or {}).get("selector"):
                errs.append(FieldError("Invalid", "spec.selector", "field is immutable",
                                       obj["spec"]["selector"]))
        if errs:
            raise invalid(rt, name, errs)

    @staticmethod
    def _validate_secret(obj, old):
        errs = []
        data = obj.get("data") or {}
        decoded = {k: b64decode_go(v) for k, v in data.items()}
        total = 0
        for k, v in decoded.items():
            errs += config_key_errors(k, "data[%s]" % k)
            total += len(k) + len(v)
        if total > MAX_SECRET_SIZE:
            errs.append(FieldError("TooLong", "data", "must have at most %d bytes" % MAX_SECRET_SIZE))
        stype = obj.get("type", "Opaque")
        annotations = obj.get("metadata", {}).get("annotations") or {}
        if stype == "kubernetes.io/service-account-token":
            if not annotations.get("kubernetes.io/service-account.name"):
                errs.append(FieldError("Required", "metadata.annotations[kubernetes.io/service-account.name]"))
        elif stype in ("kubernetes.io/dockercfg", "kubernetes.io/dockerconfigjson"):
            key = ".dockercfg" if stype == "kubernetes.io/dockercfg" else ".dockerconfigjson"
            if key not in decoded:
                errs.append(FieldError("Required", "data[%s]" % key))
            else:
                try:
                    parsed = json.loads(decoded[key])
                    if not isinstance(parsed, dict):
                        raise ValueError("json: cannot unmarshal %s into Go value of type map[string]interface {}"
                                         % type(parsed).__name__)
                except (ValueError, UnicodeDecodeError) as e:
                    msg = str(e) if str(e).startswith("json:") else "invalid character looking for beginning of value"
                    errs.append(FieldError("Invalid", "data[%s]" % key, msg, "<secret contents redacted>"))
        elif stype == "kubernetes.io/basic-auth":
            if "username" not in decoded and "password" not in decoded:
                errs.append(FieldError("Required", "data[username]"))
                errs.append(FieldError("Required", "data[password]"))
        elif stype == "kubernetes.io/ssh-auth":
            if not decoded.get("ssh-privatekey"):
                errs.append(FieldError("Required", "data[ssh-privatekey]"))
        elif stype == "kubernetes.io/tls":
            if "tls.crt" not in decoded:
                errs.append(FieldError("Required", "data[tls.crt]"))
            if "tls.key" not in decoded:
                errs.append(FieldError("Required", "data[tls.key]"))
        if old is not None:
            if stype != old.get("type", "Opaque"):
                errs.append(FieldError("Invalid", "type", "field is immutable", stype))
            if old.get("immutable"):
                if obj.get("data") != old.get("data"):
                    errs.append(FieldError("Forbidden", "data", "field is immutable when `immutable` is set"))
                if not obj.get("immutable"):
                    errs.append(FieldError("Forbidden", "immutable", "field is immutable when `immutable` is set"))
        return errs

    # -- writes, shared by the API and the control operations (called with the lock held)

    def _write(self, rt, new, old, manager=None, dry_run=False):
        """Default, validate, track managedFields (Update operations when manager is given),
        and commit unless nothing changed. Returns (code, object)."""
        self._default(rt, new)
        if old is not None:
            self._carry_over(rt, new, old)
        self._rolled_out(rt, new)
        self._validate(rt, new, old)
        if manager is not None:
            self._track_update(new, old, manager, rt.api_version)
        if old is not None:
            probe = self._canonical(rt, copy.deepcopy(new))
            probe["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"]
            if probe == old:
                return 200, copy.deepcopy(old)      # a no-op: no write, no event, same resourceVersion
        if dry_run:
            out = self._canonical(rt, new)
            if old is not None:
                out["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"]
            return (201 if old is None else 200), out
        return (201 if old is None else 200), self._commit(rt, "ADDED" if old is None else "MODIFIED", new, old)

    def _get_locked(self, rt, ns, name):
        return self._store(rt).get((ns if rt.namespaced else "", name))

    def _create(self, rt, ns, body, manager, dry_run=False):
        if not isinstance(body, dict):
            raise bad_request("Object 'Kind' is missing in '%s'" % json.dumps(body)[:100])
        bns = (body.get("metadata") or {}).get("namespace")
        if rt.namespaced and bns and bns != ns:
            raise bad_request("the namespace of the provided object does not match the namespace sent on the "
                              "request")
        if rt.namespaced and not self._exists_ns(ns):
            raise namespace_not_found(ns)
        obj = self._new_object(rt, ns, body)
        name = obj["metadata"].get("name", "")
        self._default(rt, obj)
        self._rolled_out(rt, obj)
        self._validate(rt, obj, None)
        if self._get_locked(rt, ns, name) is not None:
            raise already_exists(rt, name)
        code, out = self._write(rt, obj, None, manager, dry_run)
        if rt.plural == "namespaces" and not dry_run:
            self._write(TYPES[("", "serviceaccounts")],
                        self._new_object(TYPES[("", "serviceaccounts")], name, {"metadata": {"name": "default"}}),
                        None, "kube-controller-manager")
        return code, out

    def _update(self, rt, ns, name, body, manager, dry_run=False):
        if not isinstance(body, dict):
            raise bad_request("Object 'Kind' is missing in '%s'" % json.dumps(body)[:100])
        meta = body.setdefault("metadata", {})
        if meta.get("name") != name:
            raise bad_request("the name of the object (%s) does not match the name on the URL (%s)"
                              % (meta.get("name", ""), name))
        old = self._get_locked(rt, ns, name)
        if old is None:
            raise not_found(rt, name)
        rv = meta.get("resourceVersion")
        if rv and rv != old["metadata"]["resourceVersion"]:
            raise conflict(rt, name)
        new = copy.deepcopy(body)
        new["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"]
        return self._write(rt, new, old, manager, dry_run)

    def _patch(self, rt, ns, name, body, ctype, manager, force, dry_run=False):
        if ctype == "application/apply-patch+yaml":
            return self._apply(rt, ns, name, body, manager, force, dry_run)
        old = self._get_locked(rt, ns, name)
        if old is None:
            raise not_found(rt, name)
        cur = copy.deepcopy(old)
        try:
            if ctype == "application/json-patch+json":
                new = json_patch(cur, body)
            elif ctype == "application/merge-patch+json":
                if not isinstance(body, dict):
                    raise ValueError("json: cannot unmarshal into Go value of type map[string]interface {}")
                new = merge_patch(cur, body)
            else:
                new = strategic_merge_patch(cur, body)
        except ValueError as e:
            raise ApiError(422, "Invalid", str(e), {})
        if not isinstance(new, dict):
            raise bad_request("the patch made the object something other than a JSON object")
        new.setdefault("metadata", {})
        if new["metadata"].get("resourceVersion") != old["metadata"]["resourceVersion"]:
            raise conflict(rt, name)
        new["metadata"]["name"] = name
        return self._write(rt, new, old, manager, dry_run)

    def _apply(self, rt, ns, name, body, manager, force, dry_run=False):
        """Server-side apply: body is the applier's whole intent for the fields it manages."""
        if not manager:
            raise bad_request("PATCH, application/apply-patch+yaml requests require fieldManager to be set")
        if not isinstance(body, dict):
            raise bad_request("error decoding YAML: the apply configuration must be an object")
        applied = copy.deepcopy(body)
        meta = applied.setdefault("metadata", {})
        if meta.get("name") and meta["name"] != name:
            raise bad_request("the name of the object (%s) does not match the name on the URL (%s)"
                              % (meta["name"], name))
        if applied.get("kind") not in (None, rt.kind) or applied.get("apiVersion") not in (None, rt.api_version):
            raise bad_request("the API version in the data (%s) does not match the expected API version (%s)"
                              % (applied.get("apiVersion"), rt.api_version) if applied.get("kind") == rt.kind else
                              "Kind mismatch: expected %s, got %s" % (rt.kind, applied.get("kind")))
        if rt.plural == "secrets" and applied.get("stringData"):
            sd = applied.pop("stringData")
            self._default(rt, {"metadata": {}, "stringData": sd})     # 400 on a non-string value
            applied.setdefault("data", {}).update({k: b64(v) for k, v in sd.items()})
        old = self._get_locked(rt, ns, name)
        rv = meta.get("resourceVersion")
        if rv and (old is None or rv != old["metadata"]["resourceVersion"]):
            raise conflict(rt, name)
        if old is None:
            if rt.namespaced and not self._exists_ns(ns):
                raise namespace_not_found(ns)
            base = self._new_object(rt, ns, {"metadata": {"name": name}})
            entries = []
        else:
            base = copy.deepcopy(old)
            entries = copy.deepcopy(old["metadata"].get("managedFields") or [])
        want = leaves(applied)
        mine, others = None, []
        for e in entries:
            if e["manager"] == manager and e["operation"] == "Apply":
                mine = e
            else:
                others.append((e, paths_of(e.get("fieldsV1"))))
        conflicts = []
        for e, owned in others:
            for p, v in want.items():
                if any(related(p, q) for q in owned) and get_path(base, p) != v:
                    conflicts.append((e, p))
        if conflicts and not force:
            raise self._apply_conflict(conflicts)
        for e, p in conflicts:
            for e2, owned in others:
                if e2 is e:
                    owned -= {q for q in owned if related(p, q)}
        new = base
        for p, v in want.items():
            set_path(new, p, copy.deepcopy(v))
        before = paths_of(mine.get("fieldsV1")) if mine else set()
        for q in before - set(want):
            if not any(related(q, o) for _, owned in others for o in owned):
                del_path(new, q)
        unchanged = mine is not None and before == set(want)
        entry = {"manager": manager, "operation": "Apply", "apiVersion": rt.api_version,
                 "time": mine["time"] if unchanged else now_rfc3339(), "fieldsType": "FieldsV1",
                 "fieldsV1": fields_v1(want)}
        owned_by = {id(e): owned for e, owned in others}
        out = [entry if e is mine else dict(e, fieldsV1=fields_v1(owned_by[id(e)]))
               for e in entries if e is mine or owned_by[id(e)]]
        if mine is None:
            out.append(entry)
        new["metadata"]["managedFields"] = out
        if old is not None:
            new["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"]
        else:
            self._default(rt, new)
            self._validate(rt, new, None)
        return self._write(rt, new, old, None, dry_run)

    @staticmethod
    def _apply_conflict(conflicts):
        def path(p):
            return "." + ".".join(p)
        if len(conflicts) == 1:
            e, p = conflicts[0]
            msg = "Apply failed with 1 conflict: conflict with %s: %s" % (manager_text(e), path(p))
        else:
            by = {}
            for e, p in conflicts:
                by.setdefault(manager_text(e), []).append(path(p))
            lines = []
            for m in sorted(by):
                lines.append("conflicts with %s:" % m)
                lines += ["- %s" % x for x in by[m]]
            msg = "Apply failed with %d conflicts: %s" % (len(conflicts), "\n".join(lines))
        causes = [{"reason": "FieldManagerConflict", "message": "conflict with %s" % manager_text(e),
                   "field": path(p)} for e, p in conflicts]
        return ApiError(409, "Conflict", msg, {"causes": causes})

    def _delete(self, rt, ns, name, options, dry_run=False):
        old = self._get_locked(rt, ns, name)
        if old is None:
            raise not_found(rt, name)
        pre = (options or {}).get("preconditions") or {}
        if pre.get("uid") and pre["uid"] != old["metadata"]["uid"]:
            raise conflict(rt, name, "Precondition failed: UID in precondition: %s, UID in object meta: %s"
                           % (pre["uid"], old["metadata"]["uid"]))
        if pre.get("resourceVersion") and pre["resourceVersion"] != old["metadata"]["resourceVersion"]:
            raise conflict(rt, name, "Precondition failed: ResourceVersion in precondition: %s, ResourceVersion "
                           "in object meta: %s" % (pre["resourceVersion"], old["metadata"]["resourceVersion"]))
        if not dry_run:
            if rt.plural == "namespaces":
                for other in RESOURCE_TYPES:
                    if other.stored and other.namespaced:
                        for (ons, _), obj in list(self._store(other).items()):
                            if ons == name:
                                self._commit(other, "DELETED", None, obj)
            self._commit(rt, "DELETED", None, old)
        details = {"name": name}
        if rt.group:
            details["group"] = rt.group
        details["kind"] = rt.plural
        details["uid"] = old["metadata"]["uid"]
        return 200, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details}

    # -- reads

    @staticmethod
    def _field_values(rt, obj):
        vals = {"metadata.name": obj["metadata"]["name"], "metadata.namespace": obj["metadata"].get("namespace", "")}
        if rt.plural == "secrets":
            vals["type"] = obj.get("type", "")
        elif rt.plural == "namespaces":
            vals["status.phase"] = obj.get("status", {}).get("phase", "")
        return vals

    def _matcher(self, rt, ns, query):
        labels = Selector(query.get("labelSelector"))
        fields = Selector(query.get("fieldSelector"), fields=True)
        for k in fields.keys():
            if k not in self._field_values(rt, {"metadata": {"name": ""}}):
                raise bad_request('"%s" is not a known field selector: only "metadata.name", "metadata.namespace"'
                                  % k)

        def match(obj):
            if obj is None:
                return False
            if ns and rt.namespaced and obj["metadata"].get("namespace") != ns:
                return False
            return labels.matches(obj["metadata"].get("labels") or {}) and \
                fields.matches(self._field_values(rt, obj))
        return match

    def _list(self, rt, ns, query):
        match = self._matcher(rt, ns, query)
        with self._lock:
            items = [copy.deepcopy(o) for k, o in sorted(self._store(rt).items()) if match(o)]
            rv = str(self._rv)
        start = 0
        if query.get("continue"):
            try:
                tok = json.loads(base64.urlsafe_b64decode(query["continue"].encode()).decode())
                start = int(tok["start"])
            except (ValueError, KeyError, TypeError, binascii.Error):
                raise bad_request("continue key is not valid: illegal base64 data at input byte 0")
        meta = {"resourceVersion": rv}
        limit = int(query.get("limit") or 0)
        items = items[start:]
        if limit > 0 and len(items) > limit:
            meta["continue"] = base64.urlsafe_b64encode(json.dumps({"rv": rv, "start": start + limit}).encode()
                                                        ).decode()
            meta["remainingItemCount"] = len(items) - limit
            items = items[:limit]
        for o in items:
            o.pop("kind", None)
            o.pop("apiVersion", None)
        return {"kind": rt.kind + "List", "apiVersion": rt.api_version, "metadata": meta, "items": items}

    def _table(self, rt, objs, rv, include="Metadata"):
        cols = [{"name": n, "type": t, "format": "name" if n == "Name" else "",
                 "description": d if isinstance(d, str) else "%s of the %s" % (n, rt.kind), "priority": 0}
                for n, t, d in rt.columns]
        rows = []
        now = time.time()
        for o in objs:
            cells = []
            for n, _, d in rt.columns:
                if n == "Name":
                    cells.append(o["metadata"]["name"])
                elif n == "Age":
                    cells.append(human_age(now - parse_time(o["metadata"]["creationTimestamp"])))
                else:
                    cells.append(d(o))
            row = {"cells": cells}
            if include == "Object":
                row["object"] = self._canonical(rt, o)
            elif include != "None":
                row["object"] = {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                                 "metadata": copy.deepcopy(o["metadata"])}
            rows.append(row)
        return {"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": {"resourceVersion": rv},
                "columnDefinitions": cols, "rows": rows}

    # -- serving

    def _serve(self, h, req):
        code, payload, headers, ctype = 500, None, None, "application/json"
        try:
            req.user = self._authenticate(req)
            if req.user is None:
                raise ApiError(401, "Unauthorized", "Unauthorized")
            with self._lock:
                delay = self._latency_ms
            if delay:
                time.sleep(delay / 1000.0)
            fault = self._take_fault(req)
            if fault:
                if fault["delay_ms"]:
                    time.sleep(fault["delay_ms"] / 1000.0)
                if fault["drop"]:
                    self._record(req, "drop")
                    h.raw_shutdown()
                    return
                if fault["status"]:
                    raise self._fault_error(req, fault)
            if req.resource_request and req.resource:
                if not self._allowed(req.user, req.verb, req.group, req.full_resource, req.namespace, req.name):
                    raise self._forbidden(req)
                rt = TYPES.get((req.group, req.resource))
                if rt is None or rt.version != req.version:
                    raise ApiError(404, "NotFound", "the server could not find the requested resource", {})
                if req.verb == "watch":
                    return self._watch(h, req, rt)
                code, payload = self._resource(req, rt)
            else:
                code, payload, ctype = self._nonresource(req)
        except ApiError as e:
            code, payload, headers = e.code, e.status(), e.headers
        except Exception:
            self._log("internal error on %s %s:\n%s" % (req.method, req.path, traceback.format_exc()))
            code, payload = 500, status_object(500, "InternalError", "Internal error occurred: %s"
                                               % traceback.format_exc().strip().splitlines()[-1])
        self._record(req, code)
        h.send(req.method, code, payload, headers, ctype)

    def _body(self, req, patch=False):
        ctype = (req.headers.get("Content-Type") or "application/json").split(";")[0].strip().lower()
        if patch:
            if ctype not in PATCH_TYPES:
                raise ApiError(415, "UnsupportedMediaType", "the body of the request was in an unknown format - "
                               "accepted media types include: %s" % ", ".join(PATCH_TYPES), {})
        elif ctype == PROTOBUF:
            try:
                return ctype, pb_object(req.body)
            except (ValueError, KeyError, UnicodeDecodeError) as e:
                raise bad_request(str(e))
        elif ctype not in ("application/json", "application/yaml", "*/*"):
            raise ApiError(415, "UnsupportedMediaType", "the body of the request was in an unknown format - "
                           "accepted media types include: application/json, application/yaml, %s" % PROTOBUF, {})
        try:
            return ctype, json.loads(req.body.decode("utf-8") if req.body else "null")
        except (ValueError, UnicodeDecodeError) as e:
            if ctype in ("application/apply-patch+yaml", "application/yaml"):
                raise bad_request("error decoding YAML: this stand-in API server reads YAML bodies only in their "
                                  "JSON form (%s)" % e)
            raise bad_request("couldn't get version/kind; json parse error: %s" % e)

    def _resource(self, req, rt):
        ns, name, q = req.namespace, req.name, req.query
        if rt.plural == "namespaces":
            ns = ""
        elif rt.namespaced and not ns and req.verb not in ("list", "deletecollection"):
            raise ApiError(404, "NotFound", "the server could not find the requested resource", {})
        elif not rt.namespaced and ns:
            raise ApiError(404, "NotFound", "the server could not find the requested resource", {})
        if req.subresource:
            if rt.plural == "serviceaccounts" and req.subresource == "token" and req.verb == "create":
                return self._token_request(req, ns, name)
            raise ApiError(404, "NotFound", "the server could not find the requested resource", {})
        if not rt.stored:
            if req.verb != "create":
                raise method_not_allowed()
            return self._review(req, rt)
        dry_run = q.get("dryRun") == "All"
        manager = req.manager()
        with self._lock:
            if req.verb == "get":
                obj = self._get_locked(rt, ns, name)
                if obj is None:
                    raise not_found(rt, name)
                obj = copy.deepcopy(obj)
                return 200, self._table(rt, [obj], obj["metadata"]["resourceVersion"], q.get("includeObject")) \
                    if req.wants_table() else obj
            if req.verb == "list":
                lst = self._list(rt, ns, q)
                if req.wants_table():
                    tbl = self._table(rt, lst["items"], lst["metadata"]["resourceVersion"], q.get("includeObject"))
                    tbl["metadata"] = lst["metadata"]
                    return 200, tbl
                return 200, lst
            if req.verb == "create":
                _, body = self._body(req)
                return self._create(rt, ns, body, manager, dry_run)
            if req.verb == "update":
                _, body = self._body(req)
                return self._update(rt, ns, name, body, manager, dry_run)
            if req.verb == "patch":
                ctype, body = self._body(req, patch=True)
                force = as_bool(q.get("force"))
                if force and ctype != "application/apply-patch+yaml":
                    raise bad_request("force flag is only supported for apply patches")
                return self._patch(rt, ns, name, body, ctype, q.get("fieldManager") if
                                   ctype == "application/apply-patch+yaml" else manager, force, dry_run)
            if req.verb == "delete":
                opts = self._body(req)[1] if req.body.strip() else {}
                return self._delete(rt, ns, name, opts, dry_run)
            if req.verb == "deletecollection":
                match = self._matcher(rt, ns, q)
                gone = [o for o in list(self._store(rt).values()) if match(o)]
                for o in gone:
                    self._delete(rt, o["metadata"].get("namespace", ""), o["metadata"]["name"], {}, dry_run)
                lst = {"kind": rt.kind + "List", "apiVersion": rt.api_version,
                       "metadata": {"resourceVersion": str(self._rv)}, "items": gone}
                return 200, lst
        raise method_not_allowed()

    def _nonresource(self, req):
        p = req.path.rstrip("/") or "/"
        if req.method not in ("GET", "HEAD"):
            raise method_not_allowed()
        if p in ("/healthz", "/livez", "/readyz"):
            return 200, "ok", "text/plain; charset=utf-8"
        if p == "/version":
            return 200, KUBE_VERSION, "application/json"
        if p == "/api":
            return 200, {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [
                {"clientCIDR": "0.0.0.0/0", "serverAddress": "%s:%d" % (self.host, self.port)}]}, "application/json"
        if p == "/apis":
            return 200, {"kind": "APIGroupList", "apiVersion": "v1",
                         "groups": [self._api_group(g) for g in self._groups()]}, "application/json"
        parts = p.strip("/").split("/")
        if parts[0] == "apis" and len(parts) == 2 and parts[1] in self._groups():
            return 200, dict(self._api_group(parts[1]), kind="APIGroup", apiVersion="v1"), "application/json"
        gv = ("", parts[1]) if parts[0] == "api" and len(parts) == 2 else \
            (parts[1], parts[2]) if parts[0] == "apis" and len(parts) == 3 else None
        if gv in GROUP_VERSIONS:
            return 200, self._resource_list(*gv), "application/json"
        if parts[0] == "openapi":
            return self._openapi(parts[1:])
        if p == "/.well-known/openid-configuration":
            return 200, {"issuer": TOKEN_ISSUER, "jwks_uri": "https://%s:%d/openid/v1/jwks" % (self.host, self.port),
                         "response_types_supported": ["id_token"], "subject_types_supported": ["public"],
                         "id_token_signing_alg_values_supported": ["RS256"]}, "application/json"
        if p == "/openid/v1/jwks":
            return 200, self._jwks(), "application/jwk-set+json"
        raise ApiError(404, "NotFound", "the server could not find the requested resource", {})

    @staticmethod
    def _groups():
        seen = []
        for rt in RESOURCE_TYPES:
            if rt.group and rt.group not in seen:
                seen.append(rt.group)
        return seen

    @staticmethod
    def _api_group(group):
        gv = {"groupVersion": "%s/v1" % group, "version": "v1"}
        return {"name": group, "versions": [gv], "preferredVersion": gv}

    @staticmethod
    def _resource_list(group, version):
        resources = []
        for rt in GROUP_VERSIONS[(group, version)]:
            r = {"name": rt.plural, "singularName": rt.singular, "namespaced": rt.namespaced, "kind": rt.kind,
                 "verbs": rt.verbs}
            if rt.short:
                r["shortNames"] = rt.short
            if rt.categories:
                r["categories"] = rt.categories
            r["storageVersionHash"] = base64.b64encode(hashlib.sha256(rt.qualified.encode()).digest()[:8]).decode()
            resources.append(r)
            for sub, kind, sgroup, sversion, verbs in rt.subresources:
                resources.append({"name": "%s/%s" % (rt.plural, sub), "singularName": "", "namespaced": rt.namespaced,
                                  "group": sgroup, "version": sversion, "kind": kind, "verbs": verbs})
        return {"kind": "APIResourceList", "apiVersion": "v1",
                "groupVersion": "%s/%s" % (group, version) if group else version, "resources": resources}

    def _openapi(self, parts):
        """OpenAPI v3, as much as kubectl reads: the index, and per group-version the paths
        with their operations' x-kubernetes-group-version-kind and query parameters (kubectl
        looks for fieldValidation on PATCH before it validates on the server side)."""
        if parts == ["v3"]:
            paths = {}
            for group, version in GROUP_VERSIONS:
                rel = "api/%s" % version if not group else "apis/%s/%s" % (group, version)
                doc = json.dumps(self._openapi_doc(group, version), sort_keys=True).encode()
                paths[rel] = {"serverRelativeURL": "/openapi/v3/%s?hash=%s" % (
                    rel, hashlib.sha512(doc).hexdigest()[:128].upper())}
            return 200, {"paths": paths}, "application/json"
        if len(parts) >= 3 and parts[0] == "v3":
            gv = ("", parts[2]) if parts[1] == "api" and len(parts) == 3 else \
                (parts[2], parts[3]) if parts[1] == "apis" and len(parts) == 4 else None
            if gv in GROUP_VERSIONS:
                return 200, self._openapi_doc(*gv), "application/json"
        raise ApiError(404, "NotFound", "the server could not find the requested resource", {})

    @staticmethod
    def _openapi_doc(group, version):
        def param(name, desc):
            return {"name": name, "in": "query", "description": desc, "schema": {"type": "string", "uniqueItems": True}}
        write_params = [param("dryRun", "When present, indicates that modifications should not be persisted."),
                        param("fieldManager", "fieldManager is a name associated with the actor or entity that is "
                                              "making these changes."),
                        param("fieldValidation", "fieldValidation instructs the server on how to handle objects in "
                                                 "the request containing unknown or duplicate fields.")]
        paths, schemas = {}, {}
        prefix = "/api/%s" % version if not group else "/apis/%s/%s" % (group, version)
        for rt in GROUP_VERSIONS[(group, version)]:
            gvk = {"group": group, "version": version, "kind": rt.kind}
            sname = "io.k8s.api.%s.%s.%s" % ({"": "core"}.get(group, group.split(".")[0]), version, rt.kind)
            schemas[sname] = {"type": "object", "x-kubernetes-group-version-kind": [gvk],
                              "properties": {"apiVersion": {"type": "string"}, "kind": {"type": "string"},
                                             "metadata": {"type": "object"}}}
            ref = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/" + sname}}}}

            def op(action, params, _gvk=gvk, _ref=ref):
                return {"x-kubernetes-action": action, "x-kubernetes-group-version-kind": _gvk,
                        "parameters": params, "responses": {"200": dict(_ref, description="OK")}}
            base = prefix + ("/namespaces/{namespace}/" if rt.namespaced else "/") + rt.plural
            if "list" in rt.verbs:
                paths[base] = {"get": op("list", []), "post": op("post", write_params)}
            else:
                paths[base] = {"post": op("post", write_params)}
            if "get" in rt.verbs:
                paths[base + "/{name}"] = {
                    "get": op("get", []), "put": op("put", write_params), "delete": op("delete", []),
                    "patch": op("patch", write_params + [param("force", "Force is going to \"force\" Apply "
                                                                        "requests.")])}
        return {"openapi": "3.0.0", "info": {"title": "Kubernetes", "version": KUBE_VERSION["gitVersion"]},
                "paths": paths, "components": {"schemas": schemas}}

    # -- watch

    def _watch(self, h, req, rt):
        q = req.query
        match = self._matcher(rt, req.namespace, q)
        table = req.wants_table()
        bookmarks = as_bool(q.get("allowWatchBookmarks"))
        initial_events = as_bool(q.get("sendInitialEvents"))
        try:
            timeout = float(q.get("timeoutSeconds") or DEFAULT_WATCH_TIMEOUT)
            since = q.get("resourceVersion", "")
            start = int(since) if since not in ("", "0") else None
        except ValueError as e:
            raise bad_request("resourceVersion: Invalid value: %s" % e)
        with self._lock:
            expired = start is not None and start < self._compacted and not initial_events
            compacted = self._compacted
            if start is None or initial_events:
                initial = [copy.deepcopy(o) for _, o in sorted(self._store(rt).items()) if match(o)]
                pos = self._rv
            else:
                initial, pos = [], start
            self._watch_seq += 1
            wid = self._watch_seq
            self._watches[wid] = {"conn": h.connection, "resource": rt.qualified, "namespace": req.namespace,
                                  "user": req.user["name"], "killed": False}
            self._stats["watches_started"] += 1
        self._record(req, 200)

        def event(etype, obj):
            if table and etype != "BOOKMARK":
                obj = self._table(rt, [obj], obj["metadata"]["resourceVersion"], q.get("includeObject"))
            return h.send_chunk(json_bytes({"type": etype, "object": obj}))

        def bookmark(rv, annotations=None):
            meta = {"resourceVersion": str(rv), "creationTimestamp": None}
            if annotations:
                meta["annotations"] = annotations
            return event("BOOKMARK", {"kind": rt.kind, "apiVersion": rt.api_version, "metadata": meta})

        try:
            if not h.start_stream():
                return
            if expired:
                event("ERROR", status_object(410, "Expired", "too old resource version: %d (%d)" % (start, compacted)))
                return h.end_stream()
            for o in initial:
                if not event("ADDED", o):
                    return
            if initial_events and bookmarks:
                bookmark(pos, {"k8s.io/initial-events-end": "true"})
            deadline = time.monotonic() + timeout
            next_bookmark = time.monotonic() + self._bookmark_interval
            while True:
                with self._cond:
                    while True:
                        w = self._watches.get(wid)
                        now = time.monotonic()
                        if w is None or w["killed"] or self._rv > pos or now >= deadline or \
                                (bookmarks and now >= next_bookmark):
                            break
                        self._cond.wait(min(deadline, next_bookmark if bookmarks else deadline, now + 0.25) - now)
                        if self._client_gone(h.connection):
                            w["killed"] = True
                    if w is None or w["killed"]:
                        h.raw_shutdown()
                        return
                    if pos < self._compacted:
                        gone = True
                        events = []
                    else:
                        gone = False
                        events = self._events[bisect.bisect_right(self._events, pos, key=lambda e: e[0]):]
                    top, compacted = self._rv, self._compacted
                if gone:
                    event("ERROR", status_object(410, "Expired", "too old resource version: %d (%d)" % (pos, compacted)))
                    return h.end_stream()
                for rv, key, etype, obj, prev in events:
                    pos = rv
                    if key != rt.key:
                        continue
                    now_in, was_in = match(obj), match(prev)
                    if etype == "MODIFIED" and now_in != was_in:
                        etype = "ADDED" if now_in else "DELETED"
                    if (now_in or (etype == "DELETED" and was_in)) and not event(etype, obj):
                        return
                pos = max(pos, top)
                if bookmarks and time.monotonic() >= next_bookmark:
                    if not bookmark(pos):
                        return
                    next_bookmark = time.monotonic() + self._bookmark_interval
                if time.monotonic() >= deadline:
                    return h.end_stream()
        finally:
            with self._lock:
                self._watches.pop(wid, None)
            h.close_connection = True

    @staticmethod
    def _client_gone(conn):
        """A watch client never sends anything: a readable socket is a closed (or closing) one."""
        try:
            return bool(select.select([conn], [], [], 0)[0])
        except (OSError, ValueError):
            return True

    def compact(self):
        """Forget the watch history: a watch (or resumed watch) from any resourceVersion older
        than the current one gets the API server's 410 Expired ERROR event."""
        with self._cond:
            self._events = []
            self._compacted = self._rv
            self._cond.notify_all()
            return {"resourceVersion": str(self._rv)}

    def drop_watches(self):
        """Close every open watch connection (clients see the stream end). Returns how many."""
        with self._cond:
            ws = list(self._watches.values())
            for w in ws:
                w["killed"] = True
            self._cond.notify_all()
        for w in ws:
            try:
                socket.socket.shutdown(w["conn"], socket.SHUT_RDWR)
            except OSError:
                pass
        return {"dropped": len(ws)}

    def set_bookmark_interval(self, seconds):
        """How often a watch with allowWatchBookmarks=true gets a BOOKMARK (default 60 s)."""
        with self._cond:
            self._bookmark_interval = float(seconds)
            self._cond.notify_all()

    def resource_version(self):
        """The current (global) resourceVersion and the oldest one a watch may resume from."""
        with self._lock:
            return {"resourceVersion": str(self._rv), "compacted": str(self._compacted),
                    "watches": [dict((k, v) for k, v in w.items() if k != "conn") for w in self._watches.values()]}

    # -- TokenRequest and reviews

    def _token_request(self, req, ns, name):
        _, body = self._body(req)
        spec = (body or {}).get("spec") or {}
        sa_rt = TYPES[("", "serviceaccounts")]
        with self._lock:
            sa = self._get_locked(sa_rt, ns, name)
            if sa is None:
                raise not_found(sa_rt, name)
        seconds = spec.get("expirationSeconds") or 3600
        tr = ResourceType("authentication.k8s.io", "v1", "tokenrequests", "TokenRequest", True)
        if not isinstance(seconds, int) or seconds < 600:
            raise invalid(tr, name, [FieldError("Invalid", "spec.expirationSeconds",
                                                "may not specify a duration less than 10 minutes", seconds)])
        if seconds > 1 << 32:
            raise invalid(tr, name, [FieldError("Invalid", "spec.expirationSeconds",
                                                "may not specify a duration larger than 2^32 seconds", seconds)])
        audiences = as_list(spec.get("audiences")) or [DEFAULT_AUDIENCE]
        # The API server clamps the lifetime (--service-account-max-token-expiration) and says
        # so in spec.expirationSeconds; set_token_lifetime() makes it grant a short one.
        granted = self._token_lifetime or seconds
        rec = self._issue_token(ns, name, sa["metadata"]["uid"], audiences, granted, req.user["name"], seconds)
        return 201, {"kind": "TokenRequest", "apiVersion": "authentication.k8s.io/v1",
                     "metadata": {"name": name, "namespace": ns, "creationTimestamp": None},
                     "spec": {"audiences": audiences, "expirationSeconds": granted,
                              "boundObjectRef": spec.get("boundObjectRef")},
                     "status": {"token": rec["token"], "expirationTimestamp": now_rfc3339(rec["expiration"])}}

    def _issue_token(self, ns, name, uid, audiences, seconds, requested_by, requested_seconds=None):
        now = int(time.time())
        claims = {"aud": audiences, "exp": now + seconds, "iat": now, "iss": TOKEN_ISSUER, "jti": str(uuid.uuid4()),
                  "kubernetes.io": {"namespace": ns, "serviceaccount": {"name": name, "uid": uid}},
                  "nbf": now, "sub": "system:serviceaccount:%s:%s" % (ns, name)}
        token = rsa_jwt.sign(self._sa_key, {"alg": "RS256", "kid": self._sa_kid}, claims)
        rec = {"token": token, "namespace": ns, "name": name, "uid": uid, "audiences": list(audiences),
               "issued": now, "expiration": now + seconds, "expiration_seconds": seconds,
               "requested_seconds": requested_seconds or seconds, "requested_by": requested_by, "revoked": False}
        with self._lock:
            self._issued[token] = rec
        return rec

    def _review(self, req, rt):
        _, body = self._body(req)
        spec = (body or {}).get("spec") or {}
        out = {"kind": rt.kind, "apiVersion": rt.api_version, "metadata": {"creationTimestamp": None}}
        user = req.user
        if rt.plural == "selfsubjectreviews":
            info = {"username": user["name"], "groups": user["groups"]}
            if user.get("uid"):
                info["uid"] = user["uid"]
            out["status"] = {"userInfo": info}
        elif rt.plural == "selfsubjectaccessreviews":
            ra = spec.get("resourceAttributes") or {}
            resource = ra.get("resource", "") + ("/" + ra["subresource"] if ra.get("subresource") else "")
            allowed = self._allowed(user, ra.get("verb", ""), ra.get("group", ""), resource,
                                    ra.get("namespace", ""), ra.get("name", "")) if ra else MASTERS in user["groups"]
            out["spec"] = spec
            out["status"] = {"allowed": allowed}
        else:
            with self._lock:
                rec = self._issued.get(spec.get("token") or "")
                ok = rec is not None and self._token_valid(rec)
                name = self._tokens.get(spec.get("token") or "")
            auds = as_list(spec.get("audiences"))
            out["spec"] = spec
            if ok and (not auds or set(auds) & set(rec["audiences"])):
                u = self._sa_user(rec, "token")
                out["status"] = {"authenticated": True, "user": {"username": u["name"], "uid": u["uid"],
                                                                 "groups": u["groups"]},
                                 "audiences": auds or rec["audiences"]}
            elif name:
                out["status"] = {"authenticated": True, "user": {"username": name, "groups": self._users[name]["groups"]
                                                                 + ["system:authenticated"]},
                                 "audiences": auds or [DEFAULT_AUDIENCE]}
            else:
                out["status"] = {"user": {}, "error": "[invalid bearer token, token lookup failed]"}
        return 201, out

    def set_token_lifetime(self, seconds=None):
        """Grant TokenRequests this lifetime (seconds), whatever they ask for; None: what they
        ask for. Shorter than the API's 10-minute minimum, for tests of renewal."""
        with self._lock:
            self._token_lifetime = int(seconds) if seconds else None

    def service_account_issuer(self):
        """What verifies the tokens: {"issuer", "kid", "public_key_pem", "jwks"}."""
        return {"issuer": TOKEN_ISSUER, "kid": self._sa_kid, "public_key_pem": self._sa_public_pem,
                "jwks": self._jwks()}

    def _jwks(self):
        def num(n):
            return rsa_jwt.b64url(n.to_bytes((n.bit_length() + 7) // 8, "big"))
        return {"keys": [{"use": "sig", "kty": "RSA", "kid": self._sa_kid, "alg": "RS256",
                          "n": num(self._sa_public.n), "e": num(self._sa_public.e)}]}

    def issued_tokens(self, namespace=None, name=None):
        """The TokenRequest tokens issued (newest last): [{"token", "namespace", "name", "uid",
        "audiences", "issued", "expiration" (epoch seconds), "expiration_seconds" (granted),
        "requested_seconds", "requested_by", "revoked", "valid"}], optionally for one service
        account."""
        with self._lock:
            out = []
            for rec in self._issued.values():
                if namespace not in (None, rec["namespace"]) or name not in (None, rec["name"]):
                    continue
                out.append(dict(rec, valid=self._token_valid(rec)))
            return out

    def token_info(self, token, audience=None):
        """What a TokenReview says of a token: its record plus "valid" (unexpired, not revoked,
        and for audience, issued for it); null for a token this server never issued."""
        with self._lock:
            rec = self._issued.get(token)
            if rec is None:
                return None
            valid = self._token_valid(rec) and (audience is None or audience in rec["audiences"])
            return dict(rec, valid=valid)

    def expire_token(self, token=None, revoke=False):
        """Make an issued token expire now (revoke=True: mark it revoked); token None: all."""
        with self._lock:
            for t, rec in self._issued.items():
                if token in (None, t):
                    if revoke:
                        rec["revoked"] = True
                    else:
                        rec["expiration"] = int(time.time()) - 1

    # -- control: faults, latency, stats

    _FAULT_DEFAULTS = {
        400: ("BadRequest", "the server rejected our request for an unknown reason"),
        401: ("Unauthorized", "Unauthorized"),
        404: ("NotFound", "the server could not find the requested resource"),
        410: ("Expired", "The provided continue parameter is too old to display a consistent list result. You can "
                         "start a new list without the continue parameter."),
        422: ("Invalid", "the server rejected our request due to an error in our request"),
        429: ("TooManyRequests", "Too many requests, please try again later."),
        500: ("InternalError", "Internal error occurred: injected fault"),
        502: ("", "the server responded with the status code 502 but did not return more information"),
        503: ("ServiceUnavailable", "the server is currently unable to handle the request"),
        504: ("Timeout", "the server was unable to return a response in the time allotted, but may still be "
                         "processing the request"),
    }

    def add_fault(self, path_glob="*", method=None, verb=None, resource=None, status=None, count=1, message=None,
                  reason=None, retry_after=None, body=None, headers=None, delay_ms=0, drop=False):
        """Inject a fault into the next `count` matching API requests (-1: forever), after
        authentication. Matching: path_glob (fnmatch on the URL path, e.g.
        "/api/v1/namespaces/chimera/secrets*"), method ("PATCH"), verb ("list", "watch",
        "patch"...), resource ("secrets", "leases", "serviceaccounts/token"). status: answer
        with it, as a Status object with the API server's reason and message for that code
        (409 is the update Conflict of the named object, 403 the Forbidden of the request, 429
        has Retry-After and details.retryAfterSeconds = retry_after, default 1); message/reason
        override them, body (any JSON, or text) replaces the whole answer. delay_ms: wait
        first (alone: serve normally, late). drop: close the connection without answering.
        Returns {"id": n}."""
        if status is None and not (delay_ms or drop):
            raise ValueError("a fault needs status, delay_ms or drop")
        with self._lock:
            self._fault_seq += 1
            fault = {"id": self._fault_seq, "path_glob": path_glob or "*", "method": (method or "").upper() or None,
                     "verb": verb, "resource": resource, "status": int(status) if status else None,
                     "count": int(count), "message": message, "reason": reason,
                     "retry_after": retry_after, "body": body, "headers": dict(headers or {}),
                     "delay_ms": int(delay_ms or 0), "drop": as_bool(drop), "hits": 0}
            self._faults.append(fault)
            return {"id": fault["id"]}

    def clear_faults(self, id=None):
        """Remove one fault by id, or all."""
        with self._lock:
            self._faults = [f for f in self._faults if id is not None and f["id"] != int(id)]

    def list_faults(self):
        with self._lock:
            return copy.deepcopy(self._faults)

    def set_latency(self, delay_ms=0):
        """Delay every API request by delay_ms."""
        with self._lock:
            self._latency_ms = int(delay_ms or 0)

    def _take_fault(self, req):
        with self._lock:
            for f in self._faults:
                if f["method"] and f["method"] != req.method:
                    continue
                if f["verb"] and f["verb"] != req.verb:
                    continue
                if f["resource"] and f["resource"] not in (req.full_resource, req.resource):
                    continue
                if not fnmatch.fnmatchcase(req.path, f["path_glob"]):
                    continue
                f["hits"] += 1
                if f["count"] > 0:
                    f["count"] -= 1
                    if f["count"] == 0:
                        self._faults.remove(f)
                return dict(f)
        return None

    def _fault_error(self, req, f):
        code = f["status"]
        headers = dict(f["headers"])
        rt = TYPES.get((req.group, req.resource))
        details = {}
        if code == 403 and req.resource_request:
            err = self._forbidden(req)
        elif code == 409 and rt is not None and req.name:
            err = conflict(rt, req.name)
        elif code == 404 and rt is not None and req.name:
            err = not_found(rt, req.name)
        else:
            reason, msg = self._FAULT_DEFAULTS.get(code, ("", "the server responded with the status code %d but "
                                                              "did not return more information" % code))
            if code == 429:
                ra = int(f["retry_after"] or 1)
                headers.setdefault("Retry-After", str(ra))
                details = {"retryAfterSeconds": ra}
            elif code in (500, 503) and f["retry_after"]:
                headers.setdefault("Retry-After", str(int(f["retry_after"])))
                details = {"retryAfterSeconds": int(f["retry_after"])}
            err = ApiError(code, reason, msg, details or None)
        if f["message"]:
            err.message = f["message"]
        if f["reason"]:
            err.reason = f["reason"]
        err.headers = headers
        err.raw = f["body"]
        return err

    def _reset_stats_locked(self):
        self._stats = {"connections": 0, "tls_failures": 0, "requests_total": 0, "writes": 0,
                       "watches_started": 0, "counts": {}, "log": []}

    def reset_stats(self):
        with self._lock:
            self._reset_stats_locked()

    def _record(self, req, status):
        entry = {"time": round(time.time(), 3), "method": req.method, "path": req.path, "query": req.raw_query,
                 "user": (req.user or {}).get("name", ""), "verb": req.verb if req.resource_request else "",
                 "resource": req.full_resource if req.resource_request else "", "namespace": req.namespace,
                 "name": req.name, "status": status,
                 "content_type": (req.headers.get("Content-Type") or "").split(";")[0],
                 "user_agent": req.headers.get("User-Agent") or ""}
        with self._lock:
            st = self._stats
            st["requests_total"] += 1
            if req.resource_request:
                key = "%s %s" % (req.verb, req.full_resource)
                st["counts"][key] = st["counts"].get(key, 0) + 1
            st["log"].append(entry)
            if len(st["log"]) > 20000:
                del st["log"][:1000]
        self._log('%s %s %s?%s user=%s -> %s' % (req.method, req.verb, req.path, req.raw_query, entry["user"], status))

    def stats(self):
        """{"connections" (accepted), "open_connections", "tls_failures", "requests_total"
        (API requests, /_test/ not counted), "writes" (changes committed, by anyone),
        "watches_started", "watches_open", "counts": {"<verb> <resource>": n} (e.g. "list
        secrets", "patch secrets", "create serviceaccounts/token"), "log": [the last requests:
        {"time", "method", "path", "query", "user", "verb", "resource", "namespace", "name",
        "status", "content_type", "user_agent"}]}."""
        with self._lock:
            s = copy.deepcopy(self._stats)
            s["open_connections"] = len(self._conns)
            s["watches_open"] = len(self._watches)
            return s

    def requests(self, verb=None, resource=None, namespace=None, name=None, method=None, user=None, status=None):
        """The request log entries matching every given filter (verb may be a list, e.g.
        WRITE_VERBS)."""
        verbs = as_list(verb) if verb is not None else None
        with self._lock:
            return [dict(e) for e in self._stats["log"]
                    if (verbs is None or e["verb"] in verbs) and resource in (None, e["resource"])
                    and namespace in (None, e["namespace"]) and name in (None, e["name"])
                    and method in (None, e["method"]) and user in (None, e["user"])
                    and (status is None or e["status"] == status)]

    def count(self, verb=None, resource=None, namespace=None, name=None, method=None, user=None, status=None):
        """How many logged requests match (see requests()). count(verb=WRITE_VERBS,
        resource="secrets") is the number of Secret writes attempted."""
        return len(self.requests(verb, resource, namespace, name, method, user, status))

    # -- control: objects

    def create_namespace(self, name, labels=None):
        """Create a namespace (with its "default" service account) unless it exists. Returns it."""
        rt = TYPES[("", "namespaces")]
        with self._lock:
            old = self._get_locked(rt, "", name)
            if old is not None:
                return copy.deepcopy(old)
            return self._create(rt, "", {"metadata": {"name": name, "labels": dict(labels or {})}},
                                "stand-in-test")[1]

    def delete_namespace(self, name):
        """Delete a namespace and everything in it. Returns whether it existed."""
        return self.delete_object("namespaces", name)

    def put_object(self, obj, manager="stand-in-test", apply=False, force=False):
        """Create obj, or replace the stored one (an Update by manager, with the API's
        defaulting and validation: an invalid object raises the API's 422 error). apply=True:
        a server-side apply by manager instead (force as the API's force=true). Returns the
        stored object."""
        if isinstance(obj, str):
            obj = json.loads(obj)
        rt = self._type(obj.get("kind", ""))
        meta = obj.get("metadata") or {}
        ns, name = (meta.get("namespace") or "default") if rt.namespaced else "", meta.get("name", "")
        with self._lock:
            if apply:
                return self._apply(rt, ns, name, copy.deepcopy(obj), manager, force)[1]
            old = self._get_locked(rt, ns, name)
            if old is None:
                return self._create(rt, ns, copy.deepcopy(obj), manager)[1]
            new = copy.deepcopy(obj)
            new["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"]
            return self._update(rt, ns, name, new, manager)[1]

    def get_object(self, resource, name, namespace=""):
        """The stored object (a copy), or None. resource: "secrets", "Secret", "deployment"..."""
        rt = self._type(resource)
        with self._lock:
            obj = self._get_locked(rt, namespace, name)
            return copy.deepcopy(obj) if obj is not None else None

    def list_objects(self, resource, namespace=None, label_selector=None):
        """Stored objects of a type (in one namespace, matching a label selector), by name."""
        rt = self._type(resource)
        match = self._matcher(rt, namespace, {"labelSelector": label_selector} if label_selector else {})
        with self._lock:
            return [copy.deepcopy(o) for _, o in sorted(self._store(rt).items()) if match(o)]

    def delete_object(self, resource, name, namespace=""):
        """Delete an object (a DELETED watch event, as kubectl delete makes). Returns whether
        it existed."""
        rt = self._type(resource)
        with self._lock:
            if self._get_locked(rt, namespace, name) is None:
                return False
            self._delete(rt, namespace if rt.namespaced else "", name, {})
            return True

    def put_secret(self, namespace, name, data=None, type="Opaque", labels=None, annotations=None,
                   manager="kubectl", apply=False, force=False, immutable=None):
        """Create or replace a Secret as someone else would (kubectl by default). data: {key:
        text or bytes}, encoded here. apply: a server-side apply by manager. Returns it."""
        meta = {"name": name, "namespace": namespace}
        if labels:
            meta["labels"] = dict(labels)
        if annotations:
            meta["annotations"] = dict(annotations)
        obj = {"apiVersion": "v1", "kind": "Secret", "metadata": meta, "type": type}
        if data:
            obj["data"] = {k: b64(v) for k, v in data.items()}
        if immutable is not None:
            obj["immutable"] = bool(immutable)
        return self.put_object(obj, manager, apply, force)

    def get_secret(self, namespace, name):
        """The stored Secret (data base64-encoded, as the API returns it), or None."""
        return self.get_object("secrets", name, namespace)

    def secret_data(self, namespace, name):
        """The Secret's data decoded ({key: text}; bytes that are not UTF-8 stay bytes), or None."""
        obj = self.get_secret(namespace, name)
        if obj is None:
            return None
        out = {}
        for k, v in (obj.get("data") or {}).items():
            raw = base64.b64decode(v)
            try:
                out[k] = raw.decode("utf-8")
            except UnicodeDecodeError:
                out[k] = raw
        return out

    def put_workload(self, kind, namespace, name, replicas=1, image="busybox:1.36", template_annotations=None,
                     labels=None):
        """Create or replace a Deployment, StatefulSet or DaemonSet (kind: "deployment",
        "statefulset", "daemonset"), with a pod template labelled app=<name>. Returns it."""
        rt = self._type(kind)
        if not rt.workload:
            raise ValueError("%s is not a workload kind" % kind)
        tmeta = {"labels": {"app": name}}
        if template_annotations:
            tmeta["annotations"] = dict(template_annotations)
        spec = {"selector": {"matchLabels": {"app": name}},
                "template": {"metadata": tmeta, "spec": {"containers": [{"name": name, "image": image}]}}}
        if rt.plural != "daemonsets":
            spec["replicas"] = int(replicas)
        if rt.plural == "statefulsets":
            spec["serviceName"] = name
        meta = {"name": name, "namespace": namespace}
        if labels:
            meta["labels"] = dict(labels)
        return self.put_object({"apiVersion": "apps/v1", "kind": rt.kind, "metadata": meta, "spec": spec},
                               "kubectl-create")

    def get_workload(self, kind, namespace, name):
        """The stored Deployment/StatefulSet/DaemonSet, or None."""
        return self.get_object(kind, name, namespace)

    def restarted_at(self, kind, namespace, name):
        """The pod template's kubectl.kubernetes.io/restartedAt annotation (what `kubectl rollout
        restart` sets), or None; {"value", "generation"} when the object exists."""
        obj = self.get_workload(kind, namespace, name)
        if obj is None:
            return None
        ann = ((obj.get("spec") or {}).get("template", {}).get("metadata") or {}).get("annotations") or {}
        return {"value": ann.get("kubectl.kubernetes.io/restartedAt"), "generation": obj["metadata"].get("generation")}

    def get_lease(self, namespace, name):
        """The stored Lease, or None."""
        return self.get_object("leases", name, namespace)

    def put_lease(self, namespace, name, holder=None, duration=15, acquire_time=None, renew_time=None, transitions=0):
        """Create or replace a Lease (times: epoch seconds, default now), e.g. one held by a
        node that has died. Returns it."""
        now = time.time()
        spec = {"holderIdentity": holder, "leaseDurationSeconds": int(duration),
                "acquireTime": micro_time(acquire_time if acquire_time is not None else now),
                "renewTime": micro_time(renew_time if renew_time is not None else now),
                "leaseTransitions": int(transitions)}
        if holder is None:
            del spec["holderIdentity"]
        return self.put_object({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                                "metadata": {"name": name, "namespace": namespace}, "spec": spec})

    def create_service_account(self, namespace, name):
        """Create a ServiceAccount unless it exists. Returns it."""
        with self._lock:
            old = self._get_locked(TYPES[("", "serviceaccounts")], namespace, name)
            if old is not None:
                return copy.deepcopy(old)
            return self.put_object({"apiVersion": "v1", "kind": "ServiceAccount",
                                    "metadata": {"name": name, "namespace": namespace}})


# ---------------------------------------------------------------------------------------------
# Command line

def _write_atomic(path, text, mode=0o644):
    tmp = "%s.tmp.%d" % (path, os.getpid())
    with open(tmp, "w") as f:
        f.write(text)
    os.chmod(tmp, mode)
    os.rename(tmp, path)


def main(argv=None):
    ap = argparse.ArgumentParser(description="A stand-in Kubernetes API server for tests. SIGUSR1 takes it "
                                             "down (connections refused), SIGUSR2 brings it back on the same port.")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0, help="0 picks a free port (printed on stdout)")
    ap.add_argument("--tls-cert", help="server certificate (PEM); plain HTTP without it")
    ap.add_argument("--tls-key", help="server key (PEM)")
    ap.add_argument("--client-ca", action="append", default=[],
                    help="CA(s) for TLS client certificates (user = CN, groups = O); may repeat")
    ap.add_argument("--admin-token", default="admin-token", help="bearer token of %s (system:masters)" % ADMIN_USER)
    ap.add_argument("--sa-key", help="RSA key (PEM) that signs service-account tokens; default: a new one")
    ap.add_argument("--state-file", help="JSON state to load at start ({op: [kwargs...]} or [{op, ...}])")
    ap.add_argument("--ready-file", help="written (JSON: port, url, pid, admin_token) once listening")
    ap.add_argument("--log", help="request log file (default: no log)")
    ap.add_argument("--history-size", type=int, default=10000, help="watch events kept (older: 410 Expired)")
    ap.add_argument("--bookmark-interval", type=float, default=60.0)
    args = ap.parse_args(argv)
    if bool(args.tls_cert) != bool(args.tls_key):
        ap.error("--tls-cert and --tls-key go together")
    kube = KubeServer(host=args.host, port=args.port, tls_cert=args.tls_cert, tls_key=args.tls_key,
                      client_ca=args.client_ca, admin_token=args.admin_token, log=args.log,
                      history_size=args.history_size, bookmark_interval=args.bookmark_interval,
                      sa_key=args.sa_key)
    if args.state_file:
        with open(args.state_file) as f:
            kube.load_state(json.load(f))
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGUSR1, lambda *_: threading.Thread(target=kube.down, daemon=True).start())
    signal.signal(signal.SIGUSR2, lambda *_: threading.Thread(target=kube.up, daemon=True).start())
    kube.start()
    if args.ready_file:
        _write_atomic(args.ready_file, json.dumps({"port": kube.port, "url": kube.url, "pid": os.getpid(),
                                                   "admin_token": kube.admin_token}) + "\n")
    print(kube.port, flush=True)
    try:
        while not stop.wait(0.5):
            pass
    finally:
        kube.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
