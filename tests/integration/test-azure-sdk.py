#!/usr/bin/env python3
"""The Azure stand-ins (azure_server.py) answer as Key Vault, Entra ID and IMDS do: Microsoft's
own JavaScript clients, @azure/keyvault-secrets with @azure/identity (installed with npm ci
from tests/integration/npm/azure), read secrets from them with every credential type
@azure/identity has for a daemon: client secret, client certificate, workload identity and
managed identity; and they see the stand-in's refusals as the real service's (SecretNotFound,
Forbidden, a wrong secret, an unknown app).

Exits 77 when node/npm or openssl is missing, or when npm cannot reach its registry.
"""
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import npm_client  # noqa: E402
import rsa_jwt  # noqa: E402
import tls  # noqa: E402
from azure_server import FEDERATED_AUDIENCE, AzureServer  # noqa: E402
from lib import Scratch, check, done, skip  # noqa: E402

if not tls.have_openssl():
    skip("the openssl command is not installed (needed to make test certificates)")
node_dir, why = npm_client.install("azure")
if node_dir is None:
    if npm_client.unreachable(why) or "not installed" in why:
        skip(why)
    print("not ok - npm ci: %s" % why)
    sys.exit(1)

SCRIPT = r"""
const { SecretClient } = require('@azure/keyvault-secrets');
const id = require('@azure/identity');
const c = JSON.parse(process.argv[2]);
const common = { authorityHost: c.authority, disableInstanceDiscovery: true };
const creds = {
  secret: () => new id.ClientSecretCredential(c.tenant, 'app-secret', c.secret, common),
  wrongsecret: () => new id.ClientSecretCredential(c.tenant, 'app-secret', 'not-the-secret', common),
  unknownapp: () => new id.ClientSecretCredential(c.tenant, 'no-such-app', c.secret, common),
  cert: () => new id.ClientCertificateCredential(c.tenant, 'app-cert', { certificatePath: c.certPath }, common),
  workload: () => new id.WorkloadIdentityCredential({ tenantId: c.tenant, clientId: 'app-wi',
                                                      tokenFilePath: c.tokenFile, ...common }),
  managed: () => new id.ManagedIdentityCredential({ clientId: 'mi-user' }),
};
(async () => {
  const out = {};
  for (const [name, make] of Object.entries(creds)) {
    const client = new SecretClient(c.vault, make(), { disableChallengeResourceVerification: true,
                                                       retryOptions: { maxRetries: 0 } });
    const r = out[name] = {};
    try {
      const s = await client.getSecret('db-password');
      r.value = s.value; r.version = s.properties.version;
      const old = await client.getSecret('db-password', { version: c.oldVersion });
      r.old = old.value;
      try { await client.getSecret('missing'); } catch (e) { r.missing = [e.statusCode, e.code]; }
      try { await client.getSecret('denied'); } catch (e) { r.denied = [e.statusCode, e.code]; }
    } catch (e) {
      r.error = String(e.message || e).slice(0, 300);
    }
  }
  console.log(JSON.stringify(out));
})();
"""


def main():
    s = Scratch()
    m = tls.make_all(s.p("tls"))
    az = AzureServer(m.server_cert, m.server_key)
    client_secret = "app-Secr3t~value"
    az.add_app("app-secret", secret=client_secret)
    cert, key = tls.make_client_cert(s.p("tls"), m.ca, "app-cert", "app-cert", key_type="rsa")
    pem = s.p("app-cert.pem")
    tls.bundle(pem, cert, key)
    az.add_app("app-cert", cert=cert)
    issuer_key = rsa_jwt.make_rsa_key(s.p("oidc-issuer.key"))
    issuer, subject = "https://oidc.chimera.example/", "system:serviceaccount:chimera:secretsyncd"
    az.add_app("app-wi", federated=(issuer, subject, issuer_key))
    token_file = s.p("azure-identity-token")
    now = int(time.time())
    with open(token_file, "w") as f:
        f.write(rsa_jwt.sign(issuer_key, {"alg": "RS256", "typ": "JWT"},
                             {"iss": issuer, "sub": subject, "aud": [FEDERATED_AUDIENCE], "iat": now, "exp": now + 3600}))
    az.add_identity("mi-user")
    old = az.put_secret("db-password", "first-v4lue")
    az.put_secret("db-password", "Pa$$w0rd-\u00e9-current")
    az.put_secret("denied", "nobody-reads-this")
    for p in ("app-secret", "app-cert", "app-wi", "mi-user"):
        az.grant(p, "db-password")
        az.grant(p, "missing")
    az.start()
    conf = {"vault": az.url, "authority": az.url, "tenant": az.tenant, "secret": client_secret, "certPath": pem,
            "tokenFile": token_file, "oldVersion": old}
    env = dict(os.environ, NODE_EXTRA_CA_CERTS=m.ca_cert, NODE_PATH=os.path.join(node_dir, "node_modules"),
               AZURE_POD_IDENTITY_AUTHORITY_HOST=az.imds_url)
    script = s.p("azure.js")
    with open(script, "w") as f:
        f.write(SCRIPT)
    r = subprocess.run(["node", script, json.dumps(conf)], capture_output=True, text=True, timeout=120, env=env,
                       cwd=node_dir)
    try:
        out = json.loads(r.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        out = {}
        print("#   node: %s %s" % (r.stdout[-500:], r.stderr[-1500:]))
    for name, what in (("secret", "ClientSecretCredential"), ("cert", "ClientCertificateCredential (x5t#S256 "
                       "assertion)"), ("workload", "WorkloadIdentityCredential"), ("managed",
                       "ManagedIdentityCredential (IMDS)")):
        got = out.get(name, {})
        check(got.get("value") == "Pa$$w0rd-\u00e9-current" and got.get("old") == "first-v4lue" and
              len(got.get("version", "")) == 32,
              "%s reads the current and an older version through the 401 challenge (%s)" % (what, got))
        check(got.get("missing") == [404, "SecretNotFound"] and got.get("denied") == [403, "Forbidden"],
              "%s: a missing secret is 404 SecretNotFound, a denied one 403 Forbidden" % what)
    check("AADSTS7000215" in out.get("wrongsecret", {}).get("error", ""),
          "a wrong client secret is refused with AADSTS7000215 (%s)" % out.get("wrongsecret"))
    check("AADSTS700016" in out.get("unknownapp", {}).get("error", ""),
          "an unknown app is refused with AADSTS700016 (%s)" % out.get("unknownapp"))
    grants = {g for g, _ in az.token_requests}
    check({"client_secret", "certificate", "federated", "managed_identity"} <= grants,
          "the stand-in verified a secret, a certificate assertion, a federated token and an IMDS request (%s)" % grants)
    az.stop()
    s.cleanup()
    done()


main()
