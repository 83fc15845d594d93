"""Shared helpers for secretsyncd's integration tests (Python 3 standard library only).

Tests start the real daemon binary ($SECRETSYNCD, set by `make check`) and talk to it
through its real interfaces: command line, files, signals, the sd_notify socket, stderr.
"""
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

SKIP = 77

DAEMON = os.environ.get("SECRETSYNCD") or os.path.join(
    os.environ.get("TOP_BUILDDIR", os.path.join(os.path.dirname(__file__), "..", "..", "build")), "secretsyncd")

# The Project Chimera secrets (the operator's guide this project started from).
CHIMERA = {
    "chimera/postgres-password": '{"password":"pg-Pa$$w0rd\\"quoted\\""}',
    "chimera/redis-password": '{"password":"redis-s3cret"}',
    "chimera/minio-credentials": '{"username":"chimera-admin","password":"minio-S3cret"}',
    "chimera/jwt-secret": '{"secret":"jwt-0123456789abcdef"}',
    "chimera/grafana-admin": '{"password":"grafana-adm1n"}',
}
# Values that must never show up in any output.
CHIMERA_VALUES = ['pg-Pa$$w0rd"quoted"', "redis-s3cret", "minio-S3cret", "jwt-0123456789abcdef", "grafana-adm1n"]

failures = 0
passes = 0


def skip(why):
    print(f"SKIP: {why}")
    sys.exit(SKIP)


def check(cond, what):
    global failures, passes
    if cond:
        passes += 1
        print(f"ok - {what}")
    else:
        failures += 1
        print(f"not ok - {what}")
    return cond


def done():
    print(f"{passes} passed, {failures} failed")
    sys.exit(1 if failures else 0)


def require_daemon():
    if not os.access(DAEMON, os.X_OK):
        skip(f"daemon binary {DAEMON} not built")


def lc_string(s):
    """A libconfig string literal."""
    out = ['"']
    for ch in s:
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ord(ch) < 0x20:
            out.append("\\x%02x" % ord(ch))
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def fake_store(name="demo", data=None):
    data = CHIMERA if data is None else data
    entries = ",\n      ".join(f"{{ key = {lc_string(k)}; value = {lc_string(v)}; }}" for k, v in data.items())
    return f'{name} = {{ type = "fake"; data = (\n      {entries}\n    ); }};'


class Scratch:
    """A private directory for one test, removed at exit."""

    def __init__(self):
        self.path = tempfile.mkdtemp(prefix="secretsyncd-test-")
        os.chmod(self.path, 0o755)

    def p(self, *parts):
        return os.path.join(self.path, *parts)

    private_dirs = True

    def write_config(self, text, name="secretsyncd.conf", mode=0o600, private_dirs=None):
        """Writes a configuration. Unless it names them, the daemon's runtime_dir (control
        socket) and state_dir (status) go into this scratch directory: tests must not touch
        the host's /run and /var/lib, nor meet each other's socket when run in parallel."""
        path = self.p(name)
        tmp = path + ".tmp"
        if private_dirs is None:
            private_dirs = self.private_dirs
        if private_dirs and "runtime_dir" not in text and "state_dir" not in text:
            dirs = f'runtime_dir = "{self.p("run")}"; state_dir = "{self.p("state")}";'
            text, n = re.subn(r"^(\s*daemon\s*[=:]\s*\{)", lambda m: m.group(1) + " " + dirs, text, count=1,
                              flags=re.M)
            if n == 0:
                text = f"daemon = {{ {dirs} }};\n" + text
        with open(tmp, "w") as f:
            f.write(text)
        os.chmod(tmp, mode)
        os.rename(tmp, path)
        return path

    def cleanup(self):
        shutil.rmtree(self.path, ignore_errors=True)


def run(args, timeout=30, env=None, **kw):
    e = {k: v for k, v in os.environ.items() if k not in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID",
                                                              "JOURNAL_STREAM")}
    if env:
        e.update(env)
    return subprocess.run([DAEMON] + args, capture_output=True, text=True, timeout=timeout, env=e, **kw)


class NotifySocket:
    """The sd_notify receiving end, as systemd would hold it: read all the time (a thread),
    since a daemon's sd_notify() blocks once the socket's small datagram queue is full."""

    def __init__(self, scratch):
        self.path = scratch.p("notify.sock")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.messages = []
        self.cond = threading.Condition()
        self.closed = False
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        while True:
            try:
                data = self.sock.recv(65536).decode()
            except OSError:
                return
            fields = dict(line.split("=", 1) for line in data.split("\n") if "=" in line)
            with self.cond:
                self.messages.append(fields)
                self.cond.notify_all()

    def wait_for(self, pred, timeout=10.0):
        """Wait for a datagram whose fields satisfy pred(dict); returns it (dropping it and
        the ones before it) or None."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for i, m in enumerate(self.messages):
                    if pred(m):
                        del self.messages[: i + 1]
                        return m
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self.cond.wait(left)

    def drain(self, secs=0.3):
        time.sleep(secs)
        with self.cond:
            out, self.messages = self.messages, []
        return out

    def close(self):
        self.sock.close()


class Daemon:
    """The daemon running in the foreground, as systemd would run it."""

    def __init__(self, config, scratch, notify=None, env=None, args=()):
        e = {k: v for k, v in os.environ.items() if k not in ("NOTIFY_SOCKET", "JOURNAL_STREAM")}
        if notify:
            e["NOTIFY_SOCKET"] = notify.path
        if env:
            e.update(env)
        self.log_path = scratch.p("daemon.log")
        self.log = open(self.log_path, "w+")
        self.proc = subprocess.Popen([DAEMON, "-c", config] + list(args), stdout=self.log, stderr=subprocess.STDOUT,
                                     env=e)

    def output(self):
        with open(self.log_path) as f:
            return f.read()

    def wait_log(self, needle, count=1, timeout=10.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.output().count(needle) >= count:
                return True
            time.sleep(0.05)
        return False

    def signal(self, sig):
        self.proc.send_signal(sig)

    def stop(self, timeout=10):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            return None
        finally:
            self.log.close()


def no_secrets_in(text, values=CHIMERA_VALUES):
    return [v for v in values if v in text]
