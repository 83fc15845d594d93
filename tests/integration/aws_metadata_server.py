"""Stand-ins for the EC2 instance metadata service (IMDSv2) and the ECS / EKS Pod Identity
container credentials endpoint, answering as the AWS documentation shows, with credentials
the test hands in (real ones from moto's STS, so the daemon can use them). Standard library."""
import json
import secrets
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class MetadataServer:
    def __init__(self, role="chimera-node", container_path="/v2/credentials/abc", auth_token=None):
        self.role = role
        self.container_path = container_path
        self.auth_token = auth_token
        self.creds = None  # {"AccessKeyId", "SecretAccessKey", "Token", "Expiration"}
        self.tokens = set()
        self.requests = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def reply(self, code, body, ctype="text/plain"):
                data = body.encode() if isinstance(body, str) else body
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_PUT(self):
                outer.requests.append(("PUT", self.path))
                if self.path != "/latest/api/token":
                    return self.reply(404, "Not Found")
                ttl = self.headers.get("X-aws-ec2-metadata-token-ttl-seconds")
                if not ttl or not ttl.isdigit() or not 1 <= int(ttl) <= 21600:
                    return self.reply(400, "Bad Request")
                tok = secrets.token_urlsafe(32)
                outer.tokens.add(tok)
                self.send_response(200)
                self.send_header("X-aws-ec2-metadata-token-ttl-seconds", ttl)
                self.send_header("Content-Length", str(len(tok)))
                self.end_headers()
                self.wfile.write(tok.encode())

            def do_GET(self):
                outer.requests.append(("GET", self.path))
                if self.path == outer.container_path:
                    if outer.auth_token and self.headers.get("Authorization") != outer.auth_token:
                        return self.reply(401, json.dumps({"code": "Unauthorized"}), "application/json")
                    c = dict(outer.creds, RoleArn="arn:aws:iam::123456789012:role/chimera-role")
                    return self.reply(200, json.dumps(c), "application/json")
                if not self.path.startswith("/latest/meta-data/"):
                    return self.reply(404, "Not Found")
                if self.headers.get("X-aws-ec2-metadata-token") not in outer.tokens:
                    return self.reply(401, "Unauthorized")  # IMDSv2 only, as the instance requires
                base = "/latest/meta-data/iam/security-credentials/"
                if self.path == base:
                    return self.reply(200, outer.role)
                if self.path == base + outer.role:
                    c = dict(outer.creds, Code="Success", Type="AWS-HMAC", LastUpdated="2026-01-01T00:00:00Z")
                    return self.reply(200, json.dumps(c), "text/plain")
                return self.reply(404, "Not Found")

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def start(self):
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def stop(self):
        self.httpd.shutdown()
