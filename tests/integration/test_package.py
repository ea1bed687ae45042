#!/usr/bin/env python3
"""The Debian packages from scripts/package.sh: lintian-clean, installed with dpkg on this machine, the shipped
configuration refused with a clear message, the unit verified, and nothing left behind by dpkg --purge.

This installs into the machine's / (the issue asks for a real dpkg -i), so it holds /tmp/easedge-package.lock,
refuses to touch a machine where easedge is already installed or its paths exist, and always purges what it
installed. Needs root and scripts/install-deps.sh --with-packaging. Run by ctest, or by hand:
  EASEDGE_BUILD_DIR=build-test python3 tests/integration/test_package.py -v
"""

import fcntl
import glob
import os
import pwd
import re
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

BUILD_DIR = os.environ.get("EASEDGE_BUILD_DIR", "")
LOCK = "/tmp/easedge-package.lock"
PACKAGES = ("easedge", "easedge-bench")
DPKG_LOCK_WAIT = 300     # seconds to wait for another apt/dpkg on the machine to let go of the dpkg lock
COMMAND_TIMEOUT = 300    # package.sh (strip, dpkg-deb, lintian) and each dpkg call
# Everything the packages install or the service writes: none may exist before, none may remain after purge.
PATHS = ("/usr/sbin/easedge", "/usr/bin/easbench", "/usr/bin/standin-exchange", "/etc/easedge",
         "/lib/systemd/system/easedge.service", "/usr/share/doc/easedge", "/usr/share/doc/easedge-bench",
         "/var/lib/easedge", "/var/log/easedge")
SYSTEMD_STATE = "/var/lib/systemd/deb-systemd-helper-enabled"

debs = []
work = None
lock = None


def run(argv, **kw):
    return subprocess.run(argv, capture_output=True, text=True, timeout=COMMAND_TIMEOUT, stdin=subprocess.DEVNULL,
                          **kw)


def dpkg(*args):
    """dpkg, waiting while another apt/dpkg on the machine holds its lock (dpkg itself would fail at once)."""
    deadline = time.monotonic() + DPKG_LOCK_WAIT
    while True:
        r = run(["dpkg"] + list(args))
        if r.returncode == 0 or "lock" not in r.stderr or time.monotonic() > deadline:
            return r
        time.sleep(2)


def installed(package):
    r = run(["dpkg-query", "-W", "-f=${Status}", package])
    return r.returncode == 0 and r.stdout.strip() == "install ok installed"


def purge_ours():
    present = [p for p in PACKAGES if run(["dpkg-query", "-W", p]).returncode == 0]
    if present:
        dpkg("--purge", *present)


def setUpModule():
    global work, lock
    if os.geteuid() != 0:
        raise unittest.SkipTest("needs root (dpkg -i into /)")
    missing = [t for t in ("dpkg-deb", "fakeroot", "lintian", "dpkg-shlibdeps", "systemd-analyze")
               if not shutil.which(t)]
    if missing:
        raise unittest.SkipTest("missing %s: scripts/install-deps.sh --with-packaging" % ", ".join(missing))
    if not (BUILD_DIR and os.access(os.path.join(BUILD_DIR, "proxy", "easedge"), os.X_OK)):
        raise unittest.SkipTest("EASEDGE_BUILD_DIR is not set to a build with proxy/easedge")
    lock = open(LOCK, "a")
    fcntl.flock(lock, fcntl.LOCK_EX)  # one package test at a time on this machine
    # Never overwrite or purge an easedge this test did not install.
    if any(run(["dpkg-query", "-W", p]).returncode == 0 for p in PACKAGES):
        raise unittest.SkipTest("an easedge package is already installed on this machine: not touching it")
    taken = [p for p in PATHS if os.path.lexists(p)]
    if taken:
        raise unittest.SkipTest("these paths exist already, not overwriting them: " + ", ".join(taken))
    work = tempfile.mkdtemp(prefix="easedge-package-")
    r = run(["bash", os.path.join(h.SOURCE_DIR, "scripts", "package.sh"), "--build-dir", BUILD_DIR, "--no-build",
             "--output", work])
    if r.returncode != 0:
        raise RuntimeError("scripts/package.sh failed (%d):\n%s" % (r.returncode, r.stderr[-4000:]))
    debs.extend(r.stdout.split())


def tearDownModule():
    try:
        if work:
            purge_ours()
            shutil.rmtree(work, ignore_errors=True)
    finally:
        if lock:
            lock.close()


class Package(unittest.TestCase):
    """One install, the checks, one purge: in this order (unittest runs test_ methods by name)."""

    def test_1_built_as_named(self):
        with open(os.path.join(h.SOURCE_DIR, "CMakeLists.txt")) as f:
            version = re.search(r"project\(easedge VERSION ([\d.]+)", f.read())
        names = sorted(os.path.basename(d) for d in debs)
        self.assertEqual(names, ["easedge-bench_%s-1_amd64.deb" % version.group(1),
                                 "easedge_%s-1_amd64.deb" % version.group(1)])
        contents = run(["dpkg-deb", "--contents", [d for d in debs if "/easedge_" in d][0]]).stdout
        for path in ("./usr/sbin/easedge", "./lib/systemd/system/easedge.service", "./etc/easedge/easedge.yaml",
                     "./usr/share/doc/easedge/copyright", "./usr/share/doc/easedge/changelog.Debian.gz",
                     "./usr/share/doc/easedge/deployment.md", "./usr/share/man/man8/easedge.8.gz"):
            self.assertIn(path, contents)
        self.assertNotIn("easbench", contents)  # the load harness is in easedge-bench only

    def test_2_installs(self):
        r = dpkg("-i", *debs)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        for p in PACKAGES:
            self.assertTrue(installed(p), p)
        self.assertIn("/etc/easedge/easedge.yaml", run(["dpkg-query", "-W", "-f=${Conffiles}", "easedge"]).stdout)
        user = pwd.getpwnam("easedge")
        self.assertLess(user.pw_uid, 1000)  # a system user
        self.assertEqual(user.pw_shell, "/usr/sbin/nologin")
        # Installed, not enabled: the certificates have to be put in place first.
        self.assertFalse(glob.glob("/etc/systemd/system/*.wants/easedge.service"))

    def test_3_binaries_run(self):
        r = run(["/usr/sbin/easedge", "--version"])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertRegex(r.stdout.strip(), r"^easedge \d+\.\d+\.\d+$")
        for tool in ("/usr/bin/easbench", "/usr/bin/standin-exchange"):
            r = run([tool, "--help"])
            self.assertEqual(r.returncode, 0, tool + ": " + r.stderr)

    def test_4_shipped_config_names_the_missing_certificate(self):
        r = run(["/usr/sbin/easedge", "--check-config", "/etc/easedge/easedge.yaml"])
        self.assertNotEqual(r.returncode, 0)
        message = (r.stdout + r.stderr).strip()
        self.assertEqual(len(message.splitlines()), 1, message)
        self.assertIn("/etc/easedge/easedge.yaml", message)
        self.assertIn("tls.certificate", message)
        self.assertIn("/etc/easedge/server-chain.pem", message)

    def test_5_unit_verifies(self):
        # systemd-analyze verify loads the unit offline (no running systemd needed) and checks its syntax,
        # the sandboxing directives and that ExecStart's binary exists.
        r = run(["systemd-analyze", "verify", "/lib/systemd/system/easedge.service"])
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertNotIn("easedge.service:", r.stderr, r.stderr)  # no warning about our unit

    def test_6_purge_leaves_nothing(self):
        # What the running service would have written (StateDirectory, LogsDirectory) goes on purge too.
        for d in ("/var/lib/easedge/crl-cache", "/var/log/easedge"):
            os.makedirs(d, exist_ok=True)
        open("/var/log/easedge/access.log", "w").close()
        r = dpkg("--purge", "easedge-bench", "easedge")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        for p in PACKAGES:
            self.assertNotEqual(run(["dpkg-query", "-W", p]).returncode, 0, p + " still known to dpkg")
        left = [p for p in PATHS if os.path.lexists(p)]
        self.assertEqual(left, [], "left behind by dpkg --purge")
        self.assertFalse(glob.glob(os.path.join(SYSTEMD_STATE, "**", "easedge*"), recursive=True))
        # The system user stays (Debian practice, documented in postrm and docs/deployment.md).
        self.assertEqual(pwd.getpwnam("easedge").pw_shell, "/usr/sbin/nologin")


if __name__ == "__main__":
    unittest.main()
