#!/usr/bin/env python3
"""The Google stand-ins (gcp_server.py) answer as Secret Manager, the OAuth 2.0 token endpoint,
STS, IAM Credentials and the metadata server do: Google's own JavaScript clients,
@google-cloud/secret-manager in its HTTP/1.1 REST mode (fallback) with google-auth-library
(installed with npm ci from tests/integration/npm/gcp), read secrets from them with a
service account key (a self-signed JWT: google-auth-library sends the JWT bearer grant only
to its fixed oauth2.googleapis.com, so the grant is proven by the daemon's tests), workload identity
federation (file-sourced subject token, STS, service account impersonation; and a URL-sourced
token without impersonation) and the metadata server, with the payload's dataCrc32c as Google computes it; and
see the stand-in's refusals as Google's (NOT_FOUND, PERMISSION_DENIED, FAILED_PRECONDITION).

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
from gcp_server import PROJECT, GcpServer  # noqa: E402
from lib import Scratch, check, done, skip  # noqa: E402

if not tls.have_openssl():
    skip("the openssl command is not installed (needed to make test certificates)")
node_dir, why = npm_client.install("gcp")
if node_dir is None:
    if npm_client.unreachable(why) or "not installed" in why:
        skip(why)
    print("not ok - npm ci: %s" % why)
    sys.exit(1)

SCRIPT = r"""
const { SecretManagerServiceClient } = require('@google-cloud/secret-manager');
const { GoogleAuth } = require('google-auth-library');
const c = JSON.parse(process.argv[2]);
const endpoint = { apiEndpoint: '127.0.0.1', port: c.port, protocol: 'https', fallback: true };
const SCOPE = 'https://www.googleapis.com/auth/cloud-platform';
const clients = {
  keyfile: () => new SecretManagerServiceClient({ ...endpoint, keyFilename: c.keyFile }),
  external: () => new SecretManagerServiceClient({ ...endpoint,
                     auth: new GoogleAuth({ keyFilename: c.externalFile, scopes: [SCOPE] }) }),
  externalurl: () => new SecretManagerServiceClient({ ...endpoint,
                     auth: new GoogleAuth({ keyFilename: c.externalUrlFile, scopes: [SCOPE] }) }),
  metadata: () => new SecretManagerServiceClient({ ...endpoint, auth: new GoogleAuth({ scopes: [SCOPE] }) }),
};
const name = (s, v) => `projects/${c.project}/secrets/${s}/versions/${v}`;
(async () => {
  const out = {};
  for (const [label, make] of Object.entries(clients)) {
    const r = out[label] = {};
    try {
      const client = make();
      const [latest] = await client.accessSecretVersion({ name: name('db-password', 'latest') });
      r.value = Buffer.from(latest.payload.data).toString('base64');
      r.name = latest.name;
      const crc = Number(latest.payload.dataCrc32c.value ?? latest.payload.dataCrc32c);
      r.crc = crc;
      const [first] = await client.accessSecretVersion({ name: name('db-password', '1') });
      r.first = Buffer.from(first.payload.data).toString();
      for (const [k, s, v] of [['missing', 'missing', 'latest'], ['denied', 'denied', 'latest'],
                               ['disabled', 'db-password', '2']]) {
        try { await client.accessSecretVersion({ name: name(s, v) }); r[k] = 'read'; }
        catch (e) {
          /* In REST mode the transport (gaxios) may surface the HTTP answer itself: the status
             name is then in the message's JSON body. */
          const st = /NOT_FOUND|PERMISSION_DENIED|FAILED_PRECONDITION/.exec(String(e.message) + ' ' + e.code);
          r[k] = [e.code, st ? st[0] : String(e.message).slice(0, 80)];
        }
      }
    } catch (e) {
      r.error = String(e.message || e).slice(0, 400);
    }
  }
  console.log(JSON.stringify(out));
})();
"""


def main():
    s = Scratch()
    m = tls.make_all(s.p("tls"))
    gcp = GcpServer(m.server_cert, m.server_key, s.path)
    sa = "secretsyncd@chimera-prod.iam.gserviceaccount.com"
    key_file = gcp.add_service_account(sa)
    wi_sa = "wi-reader@chimera-prod.iam.gserviceaccount.com"
    gcp.add_service_account(wi_sa)
    issuer_key = rsa_jwt.make_rsa_key(s.p("issuer.key"))
    issuer = "https://oidc.chimera.example"
    audience = "//iam.googleapis.com/projects/123456789012/locations/global/workloadIdentityPools/chimera/providers/k8s"
    gcp.add_pool_provider(audience, issuer, issuer_key)
    principal = "principal://iam.googleapis.com/projects/123456789012/locations/global/workloadIdentityPools/chimera/" \
                "subject/system:serviceaccount:chimera:secretsyncd"
    gcp.allow_impersonation(principal, wi_sa)
    now = int(time.time())
    subject = rsa_jwt.sign(issuer_key, {"alg": "RS256", "typ": "JWT"},
                           {"iss": issuer, "sub": "system:serviceaccount:chimera:secretsyncd", "aud": "https:" + audience,
                            "iat": now, "exp": now + 3600})
    subject_file = s.p("subject-token")
    with open(subject_file, "w") as f:
        f.write(subject)
    gcp.subject_token = subject
    external = {"type": "external_account", "audience": audience,
                "subject_token_type": "urn:ietf:params:oauth:token-type:jwt", "token_url": gcp.url + "/v1/token",
                "credential_source": {"file": subject_file, "format": {"type": "text"}},
                "service_account_impersonation_url": gcp.url + "/v1/projects/-/serviceAccounts/%s:generateAccessToken"
                % wi_sa, "universe_domain": "googleapis.com"}
    ext_file, ext_url_file = s.p("wif.json"), s.p("wif-url.json")
    with open(ext_file, "w") as f:
        json.dump(external, f)
    external_url = dict(external, credential_source={"url": gcp.url + "/subject-token", "headers": {"Metadata": "True"},
                                                     "format": {"type": "json", "subject_token_field_name":
                                                                "access_token"}})
    del external_url["service_account_impersonation_url"]
    with open(ext_url_file, "w") as f:
        json.dump(external_url, f)
    gcp.metadata_account = "node@chimera-prod.iam.gserviceaccount.com"
    value = bytes(range(256)) + "Pa$$w0rd-\u00e9".encode()
    gcp.put_secret("db-password", b"first-v4lue")
    gcp.put_secret("db-password", b"disabled", state="DISABLED")
    gcp.put_secret("db-password", value)
    gcp.put_secret("denied", b"nobody-reads-this")
    for p in (sa, wi_sa, principal, gcp.metadata_account):
        gcp.grant(p, "db-password")
        gcp.grant(p, "missing")
    gcp.start()
    conf = {"port": int(gcp.url.rsplit(":", 1)[1]), "project": PROJECT, "keyFile": key_file, "externalFile": ext_file,
            "externalUrlFile": ext_url_file}
    env = dict(os.environ, NODE_EXTRA_CA_CERTS=m.ca_cert, NODE_PATH=os.path.join(node_dir, "node_modules"),
               GCE_METADATA_HOST=gcp.metadata_host, GCE_METADATA_IP=gcp.metadata_host, HOME=s.path)
    env.pop("GOOGLE_APPLICATION_CREDENTIALS", None)
    script = s.p("gcp.js")
    with open(script, "w") as f:
        f.write(SCRIPT)
    r = subprocess.run(["node", script, json.dumps(conf)], capture_output=True, text=True, timeout=120, env=env,
                       cwd=node_dir)
    try:
        out = json.loads(r.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        out = {}
        print("#   node: %s %s" % (r.stdout[-500:], r.stderr[-1500:]))
    import base64
    from gcp_server import crc32c
    for label, what in (("keyfile", "a service account key file (a self-signed JWT)"), ("external", "workload identity federation with impersonation"),
                        ("externalurl", "a URL-sourced subject token"), ("metadata", "the metadata server")):
        got = out.get(label, {})
        check(got.get("value") == base64.b64encode(value).decode() and got.get("first") == "first-v4lue" and
              got.get("crc") == crc32c(value) and got.get("name", "").endswith("/versions/3"),
              "%s: latest (binary, its dataCrc32c) and version 1 (%s)" % (what, {k: str(v)[:40] for k, v in got.items()}))
        check([x[1] for x in (got.get("missing"), got.get("denied"), got.get("disabled")) if x] ==
              ["NOT_FOUND", "PERMISSION_DENIED", "FAILED_PRECONDITION"],
              "%s: NOT_FOUND, PERMISSION_DENIED, and FAILED_PRECONDITION for a disabled version" % what)
    grants = {g for g, _ in gcp.token_requests}
    check({"self_signed_jwt", "sts", "impersonate", "metadata"} <= grants,
          "the stand-in verified a self-signed JWT, an STS exchange, an impersonation and a metadata request (%s)" % grants)
    gcp.stop()
    s.cleanup()
    done()


main()
