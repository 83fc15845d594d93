"""Throwaway TLS material for secretsyncd's integration tests, made with the openssl command line.

    from tls import make_all
    m = make_all(scratch_dir)
    m.ca_cert, m.server_cert, m.server_key, m.client_cert, m.client_key   # the test CA's
    m.other_ca_cert, m.other_client_cert, ...                             # an unrelated CA's

Every function returns file paths inside the directory it is given; private keys are 0600
from the moment they exist. Python 3 standard library only (plus the openssl binary).
"""
import ipaddress
import os
import secrets
import shutil
import ssl
import hashlib
import subprocess

__all__ = ["CA", "Material", "have_openssl", "make_ca", "make_server_cert", "make_client_cert", "make_all",
           "fingerprint_sha256", "bundle"]


class CA:
    def __init__(self, cert, key, common_name):
        self.cert = cert
        self.key = key
        self.common_name = common_name

    def __repr__(self):
        return "CA(%r)" % self.cert


class Material:
    """What make_all() makes; attributes are file paths (and common names)."""

    def __repr__(self):
        return "Material(%s)" % ", ".join("%s=%r" % kv for kv in sorted(vars(self).items()))


def have_openssl():
    return shutil.which("openssl") is not None


def _private_file(path):
    """Create (or truncate) path as an empty 0600 file so that openssl writes into it."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.close(fd)
    os.chmod(path, 0o600)


def _openssl(*args):
    p = subprocess.run(["openssl"] + list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if p.returncode != 0:
        raise RuntimeError("openssl %s failed (%d): %s" % (args[0], p.returncode, p.stderr.strip()))
    return p.stdout


def _newkey(key_type):
    if key_type == "ec":
        return ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"]
    if key_type == "rsa":
        return ["-newkey", "rsa:2048"]
    raise ValueError("key_type is ec or rsa")


def _dn_escape(value):
    return value.replace("\\", "\\\\").replace("\n", " ")


def _write(path, text):
    with open(path, "w") as f:
        f.write(text)


def make_ca(directory, name="ca", common_name="secretsyncd test CA", days=3, key_type="ec"):
    """A self-signed CA: <directory>/<name>.crt and <name>.key. Returns a CA."""
    cert = os.path.join(directory, name + ".crt")
    key = os.path.join(directory, name + ".key")
    cfg = os.path.join(directory, name + ".ca.cnf")
    _write(cfg, "[req]\ndistinguished_name = dn\nprompt = no\nx509_extensions = v3_ca\n"
                "[dn]\nCN = %s\n"
                "[v3_ca]\nbasicConstraints = critical,CA:TRUE\nkeyUsage = critical,keyCertSign,cRLSign\n"
                "subjectKeyIdentifier = hash\nauthorityKeyIdentifier = keyid:always\n" % _dn_escape(common_name))
    _private_file(key)
    try:
        _openssl("req", "-x509", "-new", *_newkey(key_type), "-nodes", "-keyout", key, "-out", cert,
                 "-days", str(days), "-config", cfg, "-set_serial", "0x" + secrets.token_hex(16))
    finally:
        os.unlink(cfg)
    os.chmod(key, 0o600)
    return CA(cert, key, common_name)


def _issue(directory, ca, name, common_name, extensions, days, key_type):
    cert = os.path.join(directory, name + ".crt")
    key = os.path.join(directory, name + ".key")
    csr = os.path.join(directory, name + ".csr")
    cfg = os.path.join(directory, name + ".req.cnf")
    ext = os.path.join(directory, name + ".ext.cnf")
    _write(cfg, "[req]\ndistinguished_name = dn\nprompt = no\n[dn]\nCN = %s\n" % _dn_escape(common_name))
    _write(ext, "[ext]\n" + "".join("%s = %s\n" % kv for kv in extensions))
    _private_file(key)
    try:
        _openssl("req", "-new", *_newkey(key_type), "-nodes", "-keyout", key, "-out", csr, "-config", cfg)
        _openssl("x509", "-req", "-in", csr, "-CA", ca.cert, "-CAkey", ca.key,
                 "-set_serial", "0x" + secrets.token_hex(16), "-days", str(days), "-out", cert,
                 "-extfile", ext, "-extensions", "ext")
    finally:
        for p in (csr, cfg, ext):
            if os.path.exists(p):
                os.unlink(p)
    os.chmod(key, 0o600)
    return cert, key


def _key_usage(key_type):
    return "critical,digitalSignature" + (",keyEncipherment" if key_type == "rsa" else "")


def make_server_cert(directory, ca, name="server", hosts=("localhost", "127.0.0.1", "::1"), common_name=None,
                     days=3, key_type="ec"):
    """A server certificate signed by ca, with each host as a SAN (IP or DNS as it parses).
    Returns (cert_path, key_path)."""
    sans = []
    for h in hosts:
        try:
            sans.append("IP:%s" % ipaddress.ip_address(h))
        except ValueError:
            sans.append("DNS:%s" % h)
    exts = [("basicConstraints", "critical,CA:FALSE"), ("keyUsage", _key_usage(key_type)),
            ("extendedKeyUsage", "serverAuth"), ("subjectAltName", ",".join(sans)),
            ("subjectKeyIdentifier", "hash"), ("authorityKeyIdentifier", "keyid,issuer")]
    return _issue(directory, ca, name, common_name or hosts[0], exts, days, key_type)


def make_client_cert(directory, ca, name="client", common_name="secretsyncd-client", days=3, key_type="ec"):
    """A TLS client certificate signed by ca. Returns (cert_path, key_path)."""
    exts = [("basicConstraints", "critical,CA:FALSE"), ("keyUsage", _key_usage(key_type)),
            ("extendedKeyUsage", "clientAuth"), ("subjectKeyIdentifier", "hash"),
            ("authorityKeyIdentifier", "keyid,issuer")]
    return _issue(directory, ca, name, common_name, exts, days, key_type)


def fingerprint_sha256(cert_path):
    """The SHA-256 fingerprint of a PEM certificate's DER, lower-case hex without colons."""
    with open(cert_path) as f:
        return hashlib.sha256(ssl.PEM_cert_to_DER_cert(f.read())).hexdigest()


def bundle(path, *cert_paths):
    """Concatenate PEM certificates into path (a CA bundle). Returns path."""
    with open(path, "w") as out:
        for p in cert_paths:
            with open(p) as f:
                text = f.read()
            out.write(text if text.endswith("\n") else text + "\n")
    return path


def make_all(directory, key_type="ec", days=3):
    """The test CA with a server certificate for localhost/127.0.0.1/::1 and a client
    certificate, and an unrelated second CA with the same pair (for "wrong CA" tests)."""
    os.makedirs(directory, exist_ok=True)
    m = Material()
    ca = make_ca(directory, "ca", "secretsyncd test CA", days, key_type)
    m.ca_cert, m.ca_key, m.ca_cn = ca.cert, ca.key, ca.common_name
    m.server_cert, m.server_key = make_server_cert(directory, ca, "server", days=days, key_type=key_type)
    m.client_cn = "secretsyncd-client"
    m.client_cert, m.client_key = make_client_cert(directory, ca, "client", m.client_cn, days, key_type)
    other = make_ca(directory, "other-ca", "unrelated test CA", days, key_type)
    m.other_ca_cert, m.other_ca_key, m.other_ca_cn = other.cert, other.key, other.common_name
    m.other_server_cert, m.other_server_key = make_server_cert(directory, other, "other-server", days=days,
                                                               key_type=key_type)
    m.other_client_cn = "intruder-client"
    m.other_client_cert, m.other_client_key = make_client_cert(directory, other, "other-client",
                                                               m.other_client_cn, days, key_type)
    m.ca = ca
    m.other_ca = other
    return m
