"""The HTTP(S) server the cloud stand-ins run on: threaded, TCP_NODELAY (a keep-alive answer's
headers and body go out at once, not 40 ms apart behind Nagle and delayed ACKs), and the TLS
handshake done in the connection's own thread so that one slow client does not hold up the
others. Python standard library."""
import socket
import ssl
from http.server import ThreadingHTTPServer


class StandinServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256

    def __init__(self, handler, tls_cert=None, tls_key=None):
        self.ssl_ctx = None
        if tls_cert:
            self.ssl_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self.ssl_ctx.load_cert_chain(tls_cert, tls_key)
        super().__init__(("127.0.0.1", 0), handler)
        self.url = "%s://127.0.0.1:%d" % ("https" if tls_cert else "http", self.server_address[1])

    def get_request(self):
        sock, addr = self.socket.accept()
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock, addr

    def finish_request(self, request, client_address):
        conn = request
        if self.ssl_ctx is not None:
            request.settimeout(10)
            try:
                conn = self.ssl_ctx.wrap_socket(request, server_side=True)
            except (ssl.SSLError, OSError):
                return
            conn.settimeout(60)
        try:
            self.RequestHandlerClass(conn, client_address, self)
        finally:
            if conn is not request:
                conn.close()

    def handle_error(self, request, client_address):
        pass  # a client that went away
