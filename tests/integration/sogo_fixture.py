"""A real ActiveSync server for the integration tests: SOGo 5.8 with PostgreSQL, Dovecot and memcached on
loopback (sogo/sogo-lab.sh), in its own temp folder on free ports, stopped by the PIDs it recorded.

Users alice (3 messages in her INBOX) and bob (1); sogod trusts the header x-webobjects-remote-user.
Packages: scripts/install-deps.sh --with-sogo. Needs root (the daemons run as their Debian users).
"""

import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
SOGO_DIR = os.path.join(HERE, "sogo")
SOGO_LAB = os.path.join(SOGO_DIR, "sogo-lab.sh")
sys.path.insert(0, SOGO_DIR)
import sogo_eas  # noqa: E402,F401  (re-exported: the WBXML client pieces the tests use)

DOMAIN = "corp.example.test"
# Messages sogo-lab.sh puts in the mailboxes.
ALICE_SUBJECTS = ["Lab message one", "Lab message two", "Lab message three"]
BOB_SUBJECTS = ["Bob private message"]


def unavailable_reason():
    """Why SOGo cannot run here (skip reason), or None."""
    if os.geteuid() != 0:
        return "the SOGo lab needs root (its daemons run as the sogo, postgres and dovecot users)"
    for tool in ("/usr/sbin/sogod", "/usr/lib/postgresql/15/bin/postgres", "/usr/sbin/dovecot",
                 "/usr/bin/memcached", "/usr/bin/xml2wbxml"):
        if not os.access(tool, os.X_OK):
            return "%s is missing: run scripts/install-deps.sh --with-sogo" % tool
    return None


class SogoLab:
    """sogod and its services, started in a fresh temp folder; `url` is sogod's base URL (http, loopback)."""

    def __init__(self, workers=4):
        self.dir = tempfile.mkdtemp(prefix="easedge-sogo-")
        os.chmod(self.dir, 0o755)  # the daemons' users must reach it
        self.port = harness.unused_port()
        self.env = dict(os.environ, SOGO_WORKERS=str(workers))
        try:
            self.started = self._run("start", self.dir, str(self.port), timeout=240)
        except BaseException:
            self.stop()
            raise
        self.url = "http://127.0.0.1:%d" % self.port

    def _run(self, *args, timeout=60):
        result = subprocess.run([SOGO_LAB] + list(args), capture_output=True, text=True, timeout=timeout,
                                stdin=subprocess.DEVNULL, env=self.env)
        if result.returncode != 0:
            raise RuntimeError("sogo-lab.sh %s failed (%d):\n%s%s" % (args[0], result.returncode, result.stdout,
                                                                       result.stderr))
        return result.stdout.strip()

    def deliver(self, user, subject):
        """One more message in USER's INBOX (wakes a Ping on it)."""
        self._run("deliver", self.dir, user, subject)

    def log(self):
        """sogod's log so far: one line per request it answered, with the query."""
        try:
            with open(os.path.join(self.dir, "log", "sogod.log"), errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def stop(self):
        if self.dir is None:
            return
        try:
            self._run("stop", self.dir, timeout=120)
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None
