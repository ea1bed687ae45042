"""Shared pieces of the Kerberos integration tests: a Samba AD DC with the delegation set-up, a relay in
front of its KDC, krb5.conf files, and the Negotiate-accepting stand-in Exchange (negotiate_acceptor.py).

The DC has fixed ports: SambaDC holds /tmp/easedge-samba.lock (flock) while it runs.
"""

import fcntl
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
SAMBA_DIR = os.path.join(HERE, "samba")
SAMBA_FIXTURE = os.path.join(SAMBA_DIR, "samba-dc.sh")
SAMBA_LOCK = "/tmp/easedge-samba.lock"
REALM = "CORP.EXAMPLE.TEST"
SPN = "HTTP/exchange.corp.example.test"
KEYTABS = ("easproxy.keytab", "easproxy-noany.keytab", "exchange.keytab", "other.keytab", "exch1.keytab",
           "exch2.keytab")


def gssapi_python():
    """A python3 that has the gssapi module (Debian's python3-gssapi lives in /usr/bin/python3)."""
    for candidate in (sys.executable, "/usr/bin/python3"):
        if candidate and subprocess.run([candidate, "-c", "import gssapi"], capture_output=True).returncode == 0:
            return candidate
    return None


class SambaDC:
    """A provisioned, populated, running Samba AD DC in a temp folder, with the delegation set-up of
    samba/populate-kerberos.sh; holds the machine-wide lock from start to stop."""

    def __init__(self):
        self.lock = open(SAMBA_LOCK, "a")
        fcntl.flock(self.lock, fcntl.LOCK_EX)
        self.dir = tempfile.mkdtemp(prefix="easedge-krb-dc-")
        # We hold the lock: samba-dc.sh must not wait for it again.
        self.env = dict(os.environ, EASEDGE_SAMBA_LOCKED="1")
        try:
            self._run([SAMBA_FIXTURE, "start", self.dir], 180)
            self._run([SAMBA_FIXTURE, "populate", self.dir], 180)
            # About 40 samba-tool runs, each a few seconds of Python start-up on a busy machine.
            self._run([os.path.join(SAMBA_DIR, "populate-kerberos.sh"), self.dir], 420)
        except BaseException:
            self.stop()
            raise

    def _run(self, argv, timeout):
        result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL,
                                env=self.env)
        if result.returncode != 0:
            raise RuntimeError("%s failed (%d):\n%s%s" % (argv[0], result.returncode, result.stdout, result.stderr))

    def path(self, name):
        return os.path.join(self.dir, name)

    def stop(self):
        try:
            self._run([SAMBA_FIXTURE, "stop", self.dir], 60)
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)
            fcntl.flock(self.lock, fcntl.LOCK_UN)
            self.lock.close()


class KdcRelay:
    """A TCP relay on 127.0.0.1 in front of the KDC (port 88), so a test can take the KDC away and back."""

    def __init__(self, port=0):
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", port))
        self.listener.listen(16)
        self.port = self.listener.getsockname()[1]
        self.sockets = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            try:
                kdc = socket.create_connection(("127.0.0.1", 88))
            except OSError:
                client.close()
                continue
            self.sockets += [client, kdc]
            for a, b in ((client, kdc), (kdc, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(source, sink):
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                sink.sendall(data)
        except OSError:
            pass
        for s in (source, sink):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def stop(self):
        self.listener.close()
        for s in self.sockets:
            try:
                s.close()
            except OSError:
                pass


def write_krb5_conf(path, kdc_port):
    with open(path, "w") as f:
        f.write("[libdefaults]\n default_realm = %s\n dns_lookup_kdc = false\n dns_lookup_realm = false\n"
                " rdns = false\n dns_canonicalize_hostname = false\n udp_preference_limit = 1\n"
                "[realms]\n %s = {\n  kdc = 127.0.0.1:%d\n }\n" % (REALM, REALM, kdc_port))


def require_kerberos_lab():
    """Skips the test class unless Samba and python3-gssapi are installed; the gssapi python otherwise."""
    if shutil.which("samba-tool") is None:
        raise unittest.SkipTest("Samba is not installed (scripts/install-deps.sh --with-samba)")
    python = gssapi_python()
    if python is None:
        raise unittest.SkipTest("python3-gssapi is not installed (scripts/install-deps.sh --with-samba)")
    return python


def copy_keytabs(dc, folder):
    for name in KEYTABS:
        shutil.copy(dc.path(name), os.path.join(folder, name))


def start_acceptor(python, folder, keytab="exchange.keytab", name="acceptor"):
    """negotiate_acceptor.py with FOLDER/KEYTAB on 127.0.0.1:0; its JSON request log is FOLDER/NAME.jsonl."""
    child = harness.Child(
        [python, os.path.join(HERE, "negotiate_acceptor.py"), "--keytab", os.path.join(folder, keytab),
         "--log", os.path.join(folder, name + ".jsonl")],
        r"acceptor listening on (\S+):(\d+)", os.path.join(folder, name + ".log"))
    child.port = int(child.match.group(2))
    child.requests_file = os.path.join(folder, name + ".jsonl")
    return child


def acceptor_requests(acceptor):
    """Every request the acceptor answered so far (dicts: connection, principal, status, target, ...)."""
    if not os.path.exists(acceptor.requests_file):
        return []
    with open(acceptor.requests_file) as f:
        return [json.loads(line) for line in f if line.strip()]
