"""A fault-injecting TCP proxy for the integration tests (Python standard library, threads).

It sits between the daemon and a stand-in server and, on the test's word, breaks the
network the ways nodes see it break: added latency, connections reset, bodies cut short,
bodies that trickle in one byte a second, connections refused, a server certificate from
another CA. Faults apply at once, to the connections already open as well as to new ones
(the daemon keeps connections alive, so a fault that waited for a new one might never hit).

With tls=(cert, key) the proxy ends TLS itself and speaks to the upstream over TLS again
(upstream_tls=True, not verified: the stand-in is ours) or plain TCP. It then sees HTTP in
clear text, so it can cut a body at its half, and swap its certificate mid-run.

    p = ChaosProxy(("127.0.0.1", vault_port), tls=(cert, key), upstream_tls=True)
    p.fault("stall")        # also: "latency" (seconds=), "reset", "truncate", "refuse"
    p.fault(None)           # healthy again
    p.set_cert(other_cert, other_key)
"""
import select
import socket
import ssl
import struct
import threading
import time

FAULTS = ("latency", "reset", "truncate", "stall", "refuse")


class ChaosProxy:
    def __init__(self, upstream, tls=None, upstream_tls=False):
        self.upstream = upstream
        self.upstream_tls = upstream_tls
        self.lock = threading.Lock()
        self.kind = None
        self.latency = 0.0
        self.conns = set()
        self.accepted = 0
        self.ctx = None
        if tls:
            self.set_cert(*tls)
        self.port = 0
        self.listener = None
        self._listen()
        self.url = "%s://127.0.0.1:%d" % ("https" if tls else "http", self.port)

    # ---------------------------------------------------------------- control ----

    def fault(self, kind, seconds=1.0):
        """Start a fault (one of FAULTS) or end it (None). "latency" delays each answer by
        `seconds`; "refuse" closes the listening socket (connect() gets ECONNREFUSED) and
        the open connections; "reset" answers every request with a TCP RST."""
        assert kind is None or kind in FAULTS, kind
        with self.lock:
            old, self.kind, self.latency = self.kind, kind, seconds
        if kind == "refuse":
            self._close_listener()
            self.drop_connections()
        elif old == "refuse":
            self._listen()
        if kind == "reset":
            self.drop_connections(rst=True)

    def set_cert(self, cert, key):
        """Serve this certificate from now on; open connections are closed (as a server
        restarted with a new certificate would close them)."""
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        with self.lock:
            self.ctx = ctx
        self.drop_connections()

    def drop_connections(self, rst=False):
        with self.lock:
            conns = list(self.conns)
        for c in conns:
            _close(c, rst)

    def open_connections(self):
        with self.lock:
            return len(self.conns) // 2

    def stop(self):
        self._close_listener()
        self.drop_connections()

    # --------------------------------------------------------------- plumbing ----

    def _listen(self):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", self.port))
        s.listen(128)
        self.port = s.getsockname()[1]
        self.listener = s
        threading.Thread(target=self._accept, args=(s,), daemon=True).start()

    def _close_listener(self):
        s, self.listener = self.listener, None
        if s:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()

    def _accept(self, listener):
        while True:
            try:
                c, _ = listener.accept()
            except OSError:
                return
            self.accepted += 1
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _serve(self, client):
        upstream = None
        try:
            client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            client.settimeout(5)
            with self.lock:
                ctx = self.ctx
            if ctx:
                client = ctx.wrap_socket(client, server_side=True)
            upstream = socket.create_connection(self.upstream, timeout=5)
            upstream.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self.upstream_tls:
                uctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
                uctx.check_hostname = False
                uctx.verify_mode = ssl.CERT_NONE
                upstream = uctx.wrap_socket(upstream)
            with self.lock:
                self.conns.update((client, upstream))
            self._pump(client, upstream)
        except (OSError, ssl.SSLError, ValueError):
            pass
        finally:
            with self.lock:
                self.conns.discard(client)
                self.conns.discard(upstream)
            _close(client)
            if upstream:
                _close(upstream)

    def _pump(self, client, upstream):
        pending = b""  # an answer being held back (truncate)
        while True:
            ready = [s for s in (client, upstream) if isinstance(s, ssl.SSLSocket) and s.pending()]
            if not ready:
                ready, _, _ = select.select([client, upstream], [], [], 0.5)
            for s in ready:
                try:
                    data = s.recv(65536)
                except (socket.timeout, ssl.SSLWantReadError):
                    continue
                if not data:
                    return
                kind = self.kind
                if s is client:
                    if kind == "reset":
                        _close(client, rst=True)
                        return
                    upstream.sendall(data)
                    continue
                if kind == "latency":
                    time.sleep(self.latency)
                elif kind == "stall":
                    for i in range(len(data)):
                        client.sendall(data[i:i + 1])
                        time.sleep(1)
                        if self.kind != "stall":
                            client.sendall(data[i + 1:])
                            break
                    continue
                elif kind == "truncate":
                    pending += data
                    cut = _half_answer(pending)
                    if cut is not None:
                        client.sendall(pending[:cut])
                        return
                    continue
                client.sendall(data)


def _half_answer(buf):
    """Where to cut an HTTP answer in buf: after its headers and half its body; None while
    the headers or that half have not all arrived."""
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        return None
    length = None
    for line in buf[:end].split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    body = end + 4
    if length is None:  # chunked or to the end: half of what came
        return body + (len(buf) - body) // 2
    want = body + length // 2
    return want if len(buf) >= want else None


def _close(s, rst=False):
    try:
        if rst:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        else:
            s.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    try:
        s.close()
    except OSError:
        pass
