#!/usr/bin/env python3
"""Issue 12's listener limits and TLS defaults as a device (or an attacker) sees them: TLS 1.2 suites, the
connection limit, accept() out of descriptors, a connection that never sends a request, an oversized certificate.

Run by ctest (tests/integration/CMakeLists.txt), or by hand:
  EASEDGE_BIN=build/proxy/easedge STANDIN_BIN=build/bench/standin-exchange python3 tests/integration/test_limits.py -v
"""

import os
import re
import socket
import subprocess
import sys
import time
import unittest
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

EAS = "/Microsoft-Server-ActiveSync?Cmd=Sync&User=alice&DeviceId=LIMITS0001&DeviceType=iPhone"
# The lab PKI's server key is P-256 (make-lab-pki.sh's default): only ECDHE-ECDSA suites can be negotiated, so
# the CBC suites tried are the ECDSA ones (an ECDHE-RSA suite would fail for want of an RSA key, proving nothing).
CBC_SUITES = ("ECDHE-ECDSA-AES128-SHA", "ECDHE-ECDSA-AES256-SHA", "ECDHE-ECDSA-AES128-SHA256",
              "ECDHE-ECDSA-AES256-SHA384")
AEAD_SUITES = ("ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-ECDSA-CHACHA20-POLY1305")

lab = None


def setUpModule():
    global lab
    lab = h.module_lab("EASEDGE_BIN", "STANDIN_BIN")


def tearDownModule():
    h.end_module_lab()


def s_client_cipher(port, *args):
    """The suite `openssl s_client ARGS` negotiates with easedge (alice's certificate), None when the handshake fails."""
    cert, key = lab.device("alice")
    result = subprocess.run(["openssl", "s_client", "-connect", "127.0.0.1:%d" % port, "-servername", "localhost",
                             "-CAfile", lab.path("ca-bundle.pem"), "-cert", cert, "-key", key] + list(args),
                            input=b"", capture_output=True, timeout=30)
    m = re.search(r"Cipher is (\S+)", result.stdout.decode("latin-1"))
    return m.group(1) if m and m.group(1) != "(NONE)" else None


def cpu_seconds(pid):
    """utime + stime of a process, in seconds (/proc/PID/stat fields 14 and 15)."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def log_lines(proxy, needle):
    return [l for l in proxy.child.lines if needle in l]


def error_lines(proxy):
    return [l for l in proxy.child.lines if re.search(r" (error|critical) ", l)]


def metrics(admin_port):
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % admin_port, timeout=h.IO_TIMEOUT) as r:
        return r.read().decode()


def metric(text, name, labels=""):
    m = re.search(r"^%s%s (\S+)$" % (re.escape(name), re.escape(labels)), text, re.M)
    return float(m.group(1)) if m else None


def open_tcp(port, count):
    """`count` plain TCP connections that never start TLS: each holds a descriptor in easedge."""
    return [socket.create_connection(("127.0.0.1", port), timeout=h.IO_TIMEOUT) for _ in range(count)]


class LimitsCase(h.ProxyTestCase):
    def curl(self, device="alice", **kwargs):
        return h.curl(lab, self.proxy.url(EAS), device=device, **kwargs)

    def assert_serving(self):
        self.assertTrue(self.proxy.child.alive(), "easedge exited; its stderr:\n" + self.proxy.child.output())
        r = self.curl()
        self.assertEqual(r.status, 200, r)


class CipherDefaults(LimitsCase):
    """tls.ciphers default: TLS 1.2 with forward-secret AEAD suites only; TLS 1.3 unchanged."""

    def test_tls12_cbc_suites_are_refused(self):
        for suite in CBC_SUITES + ("ECDHE-RSA-AES128-SHA",):
            with self.subTest(suite=suite):
                self.assertIsNone(s_client_cipher(self.proxy.port, "-tls1_2", "-cipher", suite))
        self.assert_serving()

    def test_tls12_aead_suites_and_tls13_work(self):
        for suite in AEAD_SUITES:
            with self.subTest(suite=suite):
                self.assertEqual(s_client_cipher(self.proxy.port, "-tls1_2", "-cipher", suite), suite)
        self.assertTrue(s_client_cipher(self.proxy.port, "-tls1_3").startswith("TLS_"))

    def test_bad_cipher_list_is_a_config_error_naming_the_key(self):
        config = h.base_config("http://127.0.0.1:1", tls={"ciphers": "ECDHE-ECDSA-AES128-GCM-SHA265"})
        path = h.write_config(lab, config, "bad-ciphers.yaml")
        code, out, err = h.run_easedge("--check-config", path)
        lines = [l for l in (out + err).splitlines() if l.strip()]
        self.assertNotEqual(code, 0, out + err)
        self.assertEqual(len(lines), 1, out + err)
        self.assertIn("tls.ciphers", lines[0])
        self.assertIn(path, lines[0])


class CipherListApplied(LimitsCase):
    """tls.ciphers set to one CBC suite: that suite is the only TLS 1.2 one (the key reaches the server context)."""

    @classmethod
    def config(cls, upstream_url):
        return h.base_config(upstream_url, tls={"ciphers": "ECDHE-ECDSA-AES128-SHA256"})

    def test_only_the_configured_suite_is_negotiated(self):
        self.assertEqual(s_client_cipher(self.proxy.port, "-tls1_2"), "ECDHE-ECDSA-AES128-SHA256")
        self.assertIsNone(s_client_cipher(self.proxy.port, "-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-GCM-SHA256"))


class ConnectionLimit(LimitsCase):
    """limits.max_connections: 3. Past it a new connection is closed before TLS (counted as `overloaded`) and
    accepting pauses; the others wait in the kernel's backlog until a connection ends."""

    @classmethod
    def config(cls, upstream_url):
        return h.base_config(upstream_url, limits={"max_connections": 3}, timeouts={"handshake_seconds": 30},
                             admin={"listen": "127.0.0.1:0"})

    def admin_port(self):
        m = h.wait_until(lambda: re.search(r"admin listening on \S+:(\d+)", self.proxy.child.output()), 5)
        self.assertIsNotNone(m, "no admin listener")
        return int(m.group(1))

    def test_start_up_block_names_the_limit(self):
        self.assertTrue(log_lines(self.proxy, "connection limit 3 (limits.max_connections)"), self.proxy.child.output())

    def test_over_the_limit_is_closed_counted_and_logged_once(self):
        admin = self.admin_port()
        held = open_tcp(self.proxy.port, 3)
        try:
            self.assertTrue(h.wait_until(lambda: metric(metrics(admin), "easedge_connections_open") == 3, 5))
            extra = open_tcp(self.proxy.port, 5)
            self.assertTrue(h.closed_by_peer(extra[0], 3), "a connection over the limit stayed open")
            self.assertGreaterEqual(metric(metrics(admin), "easedge_refusals_total", '{reason="overloaded"}'), 1)
            time.sleep(0.5)  # several pauses: each may close one more connection, none may log again
            self.assertLessEqual(len(log_lines(self.proxy, "connection limit (3) reached")), 2,
                                 self.proxy.child.output())
            for s in extra:
                s.close()
        finally:
            for s in held:
                s.close()
        # The limit frees up as soon as the held connections end.
        self.assertTrue(h.wait_until(lambda: self.curl(timeout=5).status == 200, 10))


class ConnectionLimitFromDescriptors(unittest.TestCase):
    """limits.max_connections: 0 (default): sized from RLIMIT_NOFILE at start, printed in the start-up block."""

    def test_default_limit_is_sized_from_the_fd_limit(self):
        proxy = h.Easedge(lab, h.base_config("http://127.0.0.1:1"), "fd-sized.yaml",
                          launcher=("prlimit", "--nofile=1024:1024"))
        try:
            # (1024 - 256 reserved) / 2: each connection may hold a descriptor towards Exchange too.
            self.assertTrue(log_lines(proxy, "connection limit 384 (limits.max_connections 0: sized from the fd limit)"),
                            proxy.child.output())
        finally:
            proxy.stop()


@unittest.skipIf(h.built_with_sanitizers(h.EASEDGE_BIN),
                 "the sanitizers need descriptors of their own (UBSan's vptr check opens a pipe), which this test "
                 "takes away: their reports are then false")
class OutOfDescriptors(LimitsCase):
    """RLIMIT_NOFILE 64 with max_connections far above it: accept() fails with EMFILE. easedge must pause
    accepting instead of retrying at once (which spun at 100 % CPU with a log line per try), and serve again
    once connections end."""

    NOFILE = 64
    launcher = ("prlimit", "--nofile=%d:%d" % (NOFILE, NOFILE))

    @classmethod
    def config(cls, upstream_url):
        return h.base_config(upstream_url, limits={"max_connections": 100000}, timeouts={"handshake_seconds": 30})

    def test_emfile_pauses_accepting_and_logs_once_per_interval(self):
        pid = self.proxy.child.proc.pid
        with open("/proc/%d/comm" % pid) as f:
            self.assertEqual(f.read().strip(), "easedge", "prlimit did not exec easedge in place")
        held = open_tcp(self.proxy.port, 2 * self.NOFILE)
        try:
            self.assertTrue(h.wait_until(lambda: log_lines(self.proxy, "accept failed"), 5),
                            "accept never failed; stderr:\n" + self.proxy.child.output())
            before = cpu_seconds(pid)
            time.sleep(2)
            used = cpu_seconds(pid) - before
            self.assertLess(used, 0.5, "easedge used %.2f s of CPU in 2 s while out of descriptors" % used)
            self.assertLessEqual(len(log_lines(self.proxy, "accept failed")), 4, self.proxy.child.output())
            self.assertIn("Too many open files", log_lines(self.proxy, "accept failed")[0])
        finally:
            for s in held:
                s.close()
        self.assertTrue(h.wait_until(lambda: self.curl(timeout=5).status == 200, 15),
                        "easedge did not serve again; stderr:\n" + self.proxy.child.output())


class SilentConnection(LimitsCase):
    """timeouts.handshake_seconds: 2. A device that completes the handshake but sends no request is closed
    after it, instead of idling for timeouts.client_idle_seconds (120 s)."""

    @classmethod
    def config(cls, upstream_url):
        return h.base_config(upstream_url, timeouts={"handshake_seconds": 2})

    def test_no_request_after_the_handshake_is_closed(self):
        with h.tls_connect(lab, self.proxy.port, "alice") as tls:
            start = time.monotonic()
            self.assertTrue(h.closed_by_peer(tls, 4.5), "a silent TLS connection stayed open past 4.5 s")
            self.assertGreaterEqual(time.monotonic() - start, 1.0)


class OversizedCertificate(LimitsCase):
    """A device certificate over 100 KB (OpenSSL's max_cert_list): refused in the TLS handshake with an alert,
    a documented refusal. easedge keeps serving and logs nothing at error level per attempt."""

    def make_big_device(self):
        d = lab.fresh_dir("big-device")
        key, csr, ext, pem = (os.path.join(d, n) for n in ("big.key", "big.csr", "big.ext", "big.pem"))
        subprocess.run(["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
                        "-out", key], check=True, capture_output=True)
        subprocess.run(["openssl", "req", "-new", "-config", lab.path("ca", "openssl.cnf"), "-key", key,
                        "-subj", "/CN=WorkspaceONEUEM.alice", "-out", csr], check=True, capture_output=True)
        with open(ext, "w") as f:
            f.write("[ device_ext ]\nbasicConstraints = critical, CA:FALSE\nextendedKeyUsage = clientAuth\n"
                    "subjectAltName = otherName:1.3.6.1.4.1.311.20.2.3;UTF8:alice@corp.example.test\n"
                    'nsComment = "%s"\n' % ("A" * 135000))
        subprocess.run(["openssl", "ca", "-batch", "-notext", "-preserveDN", "-rand_serial", "-config",
                        lab.path("ca", "openssl.cnf"), "-name", "issuing", "-in", csr, "-out", pem, "-extfile", ext,
                        "-extensions", "device_ext", "-days", "1"], check=True, capture_output=True)
        der = subprocess.run(["openssl", "x509", "-in", pem, "-outform", "DER"], check=True, capture_output=True)
        self.assertGreater(len(der.stdout), 100 * 1024)
        return pem, key

    def test_oversized_certificate_gets_a_tls_alert_and_easedge_keeps_serving(self):
        cert, key = self.make_big_device()
        for _ in range(5):
            ctx = h.client_context(lab)
            ctx.load_cert_chain(cert, key)
            raw = socket.create_connection(("127.0.0.1", self.proxy.port), timeout=h.IO_TIMEOUT)
            try:
                # TLS 1.3: the client's handshake ends before the server reads its certificate, so the alert may
                # come with the first read instead.
                with ctx.wrap_socket(raw, server_hostname="localhost") as tls:
                    tls.sendall(("GET %s HTTP/1.1\r\nHost: localhost\r\n\r\n" % EAS).encode())
                    self.assertIsNone(h.read_response(tls, "GET"), "an HTTP answer came back")
            except (h.ssl.SSLError, ConnectionError):
                pass
            finally:
                raw.close()
        self.assert_serving()
        self.assertEqual(error_lines(self.proxy), [], self.proxy.child.output())


if __name__ == "__main__":
    unittest.main()
