"""RS256 JSON Web Tokens for the cloud stand-ins, with the Python standard library and the
openssl command: verify a JWT against an RSA public key (a certificate's or a private key's
modulus, read once with openssl), sign one with a private key (openssl dgst -sign)."""
import base64
import hashlib
import json
import re
import ssl
import subprocess

# DER prefix of the DigestInfo for SHA-256 (RFC 8017 section 9.2, note 1).
_SHA256_PREFIX = bytes.fromhex("3031300d060960864801650304020105000420")


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _openssl(*args, data=None):
    p = subprocess.run(["openssl"] + list(args), input=data, capture_output=True)
    if p.returncode != 0:
        raise RuntimeError("openssl %s: %s" % (args[0], p.stderr.decode(errors="replace").strip()))
    return p.stdout


class RsaPublicKey:
    """n and e of an RSA key, from a PEM certificate, public key or private key."""

    def __init__(self, pem_path):
        with open(pem_path) as f:
            text = f.read()
        kind = ["x509"] if "BEGIN CERTIFICATE" in text else ["rsa", "-pubin"] if "BEGIN PUBLIC KEY" in text else ["rsa"]
        dump = _openssl(*kind, "-in", pem_path, "-noout", "-text").decode()
        m = re.search(r"(?:publicExponent|Exponent): (\d+)", dump)
        self.e = int(m.group(1))
        self.n = int(_openssl(*kind, "-in", pem_path, "-noout", "-modulus").decode().strip().split("=", 1)[1], 16)
        self.size = (self.n.bit_length() + 7) // 8

    def _em(self, sig):
        if len(sig) != self.size:
            return None
        s = int.from_bytes(sig, "big")
        return pow(s, self.e, self.n).to_bytes(self.size, "big") if s < self.n else None

    def verify(self, data, sig, alg="RS256"):
        """RS256: RSASSA-PKCS1-v1_5 with SHA-256; PS256: RSASSA-PSS with SHA-256 and MGF1-SHA-256,
        any salt length (RFC 8017 sections 8.2.2 and 9.1.2)."""
        em = self._em(sig)
        if em is None:
            return False
        if alg == "RS256":
            t = _SHA256_PREFIX + hashlib.sha256(data).digest()
            return em == b"\x00\x01" + b"\xff" * (self.size - len(t) - 3) + b"\x00" + t
        if alg != "PS256":
            return False
        embits = self.n.bit_length() - 1
        em = em[len(em) - (embits + 7) // 8:]
        hlen = 32
        if len(em) < hlen + 2 or em[-1] != 0xBC:
            return False
        masked, h = em[: len(em) - hlen - 1], em[len(em) - hlen - 1: -1]
        mask, counter = b"", 0
        while len(mask) < len(masked):
            mask += hashlib.sha256(h + counter.to_bytes(4, "big")).digest()
            counter += 1
        db = bytearray(a ^ b for a, b in zip(masked, mask))
        db[0] &= 0xFF >> (8 * len(em) - embits)
        i = 0
        while i < len(db) and db[i] == 0:
            i += 1
        if i == len(db) or db[i] != 1:
            return False
        salt = bytes(db[i + 1:])
        return hashlib.sha256(b"\x00" * 8 + hashlib.sha256(data).digest() + salt).digest() == h


def cert_x5t(cert_path, algorithm="sha256"):
    """A certificate's thumbprint as JWT headers carry it (x5t: SHA-1, x5t#S256: SHA-256)."""
    with open(cert_path) as f:
        der = ssl.PEM_cert_to_DER_cert(f.read())
    return b64url(hashlib.new(algorithm, der).digest())


def decode(token):
    """(header, claims, signing input, signature) of a compact JWT; ValueError if malformed."""
    parts = token.split(".")
    if len(parts) != 3:
        raise ValueError("not a compact JWS")
    header = json.loads(b64url_decode(parts[0]))
    claims = json.loads(b64url_decode(parts[1]))
    return header, claims, (parts[0] + "." + parts[1]).encode(), b64url_decode(parts[2])


def sign(key_path, header, claims):
    """A compact RS256 JWT signed with the PEM private key at key_path."""
    signing_input = b64url(json.dumps(header).encode()) + "." + b64url(json.dumps(claims).encode())
    sig = _openssl("dgst", "-sha256", "-sign", key_path, data=signing_input.encode())
    return signing_input + "." + b64url(sig)


def make_rsa_key(path):
    """A 2048-bit RSA private key (PKCS#8 PEM, mode 0600) at path."""
    import os
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.close(fd)
    _openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", path)
    return path
