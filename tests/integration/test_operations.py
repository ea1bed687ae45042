#!/usr/bin/env python3
"""Issue 7's operations as an operator sees them: SIGHUP reloads (new server certificate while a Ping is held,
a bad config refused), SIGTERM drain, the admin listener (/healthz, /readyz, /metrics counting exactly), and
memory a burst took going back to the kernel.

  EASEDGE_BIN=build/proxy/easedge STANDIN_BIN=build/bench/standin-exchange python3 tests/integration/test_operations.py -v
"""

import base64
import hashlib
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

EAS = "/Microsoft-Server-ActiveSync?Cmd=%s&User=alice&DeviceId=OPSTEST&DeviceType=iPhone"
PING_HOLD = 4  # seconds the stand-in holds a Ping

lab = None


def setUpModule():
    global lab
    lab = h.module_lab("EASEDGE_BIN", "STANDIN_BIN")


def tearDownModule():
    h.end_module_lab()


def server_fingerprint(port):
    """SHA-256 of the certificate easedge presents on a new connection."""
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=lab.path("ca-bundle.pem"))
    ctx.load_cert_chain(*lab.device("alice"))
    with socket.create_connection(("127.0.0.1", port), timeout=h.IO_TIMEOUT) as raw:
        with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
            return hashlib.sha256(tls.getpeercert(binary_form=True)).hexdigest()


def new_server_certificate(directory, name):
    """A second server certificate from the lab's issuing CA (same names, new key and serial)."""
    key, csr, pem = (os.path.join(directory, name + ext) for ext in (".key", ".csr", ".pem"))
    ext = os.path.join(directory, name + ".ext")
    with open(ext, "w") as f:
        f.write("subjectAltName=DNS:localhost,IP:127.0.0.1,DNS:exchange.corp.example.test\nextendedKeyUsage=serverAuth\n")
    for argv in (["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", csr,
                  "-subj", "/CN=exchange.corp.example.test"],
                 ["x509", "-req", "-in", csr, "-CA", lab.path("issuing-ca.pem"), "-CAkey", lab.path("issuing-ca.key"),
                  "-CAcreateserial", "-CAserial", os.path.join(directory, "serial"), "-days", "2", "-extfile", ext,
                  "-out", pem]):
        subprocess.run(["openssl"] + argv, check=True, capture_output=True, timeout=60)
    return pem, key


class OperationsCase(unittest.TestCase):
    def setUp(self):
        self.standin = h.Standin(lab, "--ping-hold", str(PING_HOLD))
        self.dir = lab.fresh_dir("ops")
        # Own copies of the server certificate files: the reload test replaces them.
        shutil.copy(lab.path("server-chain.pem"), os.path.join(self.dir, "server-chain.pem"))
        shutil.copy(lab.path("server.key"), os.path.join(self.dir, "server.key"))
        self.proxy = None

    def tearDown(self):
        if self.proxy:
            self.proxy.stop()
        self.standin.stop()

    def start(self, tls=None, **sections):
        tls = dict({"certificate": os.path.join(self.dir, "server-chain.pem"),
                    "private_key": os.path.join(self.dir, "server.key")}, **(tls or {}))
        config = h.base_config(self.standin.url, tls=tls, **sections)
        self.proxy = h.Easedge(lab, config, name=self.id().split(".")[-1] + ".yaml")
        # easedge installs its signal handlers after printing the start-up block; a signal sent earlier would
        # take the default action (exit). Reported to the proxy core; give it a moment until that changes.
        time.sleep(1.0)
        return self.proxy

    def held_ping(self):
        """Starts a Ping in the background; returns a thread whose .result is the curl result."""
        thread = threading.Thread(target=lambda: setattr(thread, "result", h.curl(
            lab, self.proxy.url(EAS % "Ping"), device="alice", data=b"ping", timeout=60)))
        thread.start()
        time.sleep(1.0)  # the stand-in logs a request only once answered: give the Ping time to be in flight
        self.assertTrue(thread.is_alive(), "the Ping was answered before the hold")
        return thread


class ReloadTest(OperationsCase):
    def test_sighup_swaps_the_server_certificate_while_a_ping_is_held(self):
        proxy = self.start()
        before = server_fingerprint(proxy.port)
        ping = self.held_ping()

        pem, key = new_server_certificate(self.dir, "renewed")
        chain = os.path.join(self.dir, "server-chain.pem")
        with open(chain + ".new", "w") as out:
            for part in (pem, lab.path("issuing-ca.pem")):
                with open(part) as f:
                    out.write(f.read())
        os.replace(chain + ".new", chain)
        os.replace(key, os.path.join(self.dir, "server.key"))
        proxy.child.proc.send_signal(signal.SIGHUP)
        self.assertTrue(h.wait_until(lambda: "reload done" in proxy.child.output()), proxy.child.output())

        after = server_fingerprint(proxy.port)
        self.assertNotEqual(before, after)
        with open(pem) as f:
            self.assertEqual(after, hashlib.sha256(ssl.PEM_cert_to_DER_cert(f.read())).hexdigest())
        ping.join(PING_HOLD + 30)
        self.assertEqual(ping.result.status, 200, ping.result)  # the held Ping survived the reload
        self.assertTrue(proxy.child.alive())

    def test_sighup_with_a_bad_config_keeps_the_old_one_serving(self):
        proxy = self.start()
        with open(proxy.config_path, "a") as f:
            f.write("\nno_such_key: true\n")
        proxy.child.proc.send_signal(signal.SIGHUP)
        self.assertTrue(h.wait_until(lambda: "reload refused" in proxy.child.output()), proxy.child.output())
        self.assertIn("no_such_key", proxy.child.output())
        self.assertEqual(h.curl(lab, proxy.url(EAS % "Sync"), device="alice").status, 200)


class DrainTest(OperationsCase):
    def test_sigterm_lets_the_held_request_finish_then_exits_0(self):
        proxy = self.start(timeouts={"drain_delay_seconds": 1, "drain_seconds": 30})
        ping = self.held_ping()
        proxy.child.proc.send_signal(signal.SIGTERM)
        # No new connections once the drain delay is over.
        self.assertTrue(h.wait_until(lambda: not can_connect(proxy.port), 5))
        ping.join(PING_HOLD + 30)
        self.assertEqual(ping.result.status, 200, ping.result)
        self.assertEqual(proxy.child.proc.wait(30), 0, proxy.child.output())

    def test_sigterm_on_an_idle_proxy_exits_0_at_once(self):
        # Without a drain delay (no balancer to tell): nothing to drain, no reason to wait for drain_seconds.
        proxy = self.start(timeouts={"drain_delay_seconds": 0, "drain_seconds": 30})
        self.assertEqual(h.curl(lab, proxy.url(EAS % "Sync"), device="alice").status, 200)
        proxy.child.proc.send_signal(signal.SIGTERM)
        try:
            code = proxy.child.proc.wait(10)  # nothing to drain: no reason to wait for drain_seconds
        except subprocess.TimeoutExpired:
            self.fail("easedge did not exit after SIGTERM with no connection open:\n" + proxy.child.output()[-2000:])
        self.assertEqual(code, 0)

    def test_sigterm_closes_what_is_left_after_the_drain_time(self):
        self.standin.stop()
        self.standin = h.Standin(lab, "--ping-hold", "60")
        proxy = self.start(timeouts={"drain_seconds": 1})
        ping = self.held_ping()
        started = time.monotonic()
        proxy.child.proc.send_signal(signal.SIGTERM)
        self.assertEqual(proxy.child.proc.wait(30), 0, proxy.child.output())
        self.assertLess(time.monotonic() - started, 30)  # bounded by drain_seconds, not by the 60 s Ping
        ping.join(30)
        self.assertNotEqual(ping.result.status, 200, ping.result)


class DrainForBalancersTest(OperationsCase):
    """SIGTERM: /readyz fails at once, the listener keeps accepting for drain_delay_seconds, every answer from
    then on says Connection: close, then the listener closes and the process exits 0."""

    def test_sigterm_fails_readyz_at_once_and_accepts_for_the_drain_delay(self):
        delay = 3
        proxy = self.start(admin={"listen": "127.0.0.1:0"},
                           timeouts={"drain_delay_seconds": delay, "drain_seconds": 30})
        admin = int(re.search(r"admin listening on \S+:(\d+)", proxy.child.output()).group(1))
        kept = h.https_connection(lab, proxy.port, "alice")
        kept.request("POST", EAS % "Sync", body=b"one")
        first = kept.getresponse()
        first.read()
        self.assertFalse(first.will_close)

        proxy.child.proc.send_signal(signal.SIGTERM)
        signalled = time.monotonic()
        self.assertTrue(h.wait_until(lambda: h.admin_get(admin, "/readyz")[0] == 503, 1), "/readyz still ready")
        self.assertIn("FAIL listeners: draining", h.admin_get(admin, "/readyz")[1])
        # A balancer that has not noticed yet still gets its new connections served.
        late = h.curl(lab, proxy.url(EAS % "Sync"), device="alice")
        self.assertEqual(late.status, 200, late)
        self.assertEqual((late.header("Connection") or "").lower(), "close", late.headers)
        # The keep-alive connection gets its next answer, with Connection: close.
        kept.request("POST", EAS % "Sync", body=b"two")
        second = kept.getresponse()
        second.read()
        self.assertEqual(second.status, 200)
        self.assertTrue(second.will_close, "no Connection: close while draining")
        kept.close()
        self.assertLess(time.monotonic() - signalled, delay, "too slow to tell accepting during the delay apart")
        self.assertTrue(can_connect(proxy.port))
        self.assertTrue(h.wait_until(lambda: not can_connect(proxy.port), delay + 2))
        self.assertGreaterEqual(time.monotonic() - signalled, delay - 0.2)
        self.assertEqual(proxy.child.proc.wait(10), 0, proxy.child.output())


def ticket_keys_file(path, *keys):
    with open(path, "w") as f:
        f.write("".join(k + "\n" for k in keys))


def resumed_request(port, ctx, session=None):
    """One request on a new connection: (resumed?, status, session)."""
    with socket.create_connection(("127.0.0.1", port), timeout=h.IO_TIMEOUT) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost", session=session) as tls:
            tls.sendall(("POST %s HTTP/1.1\r\nHost: localhost\r\nContent-Length: 1\r\nConnection: close\r\n\r\nx"
                         % (EAS % "Sync")).encode())
            response = h.read_response(tls)
            return tls.session_reused, response.status if response else 0, tls.session


class TicketKeysTest(OperationsCase):
    """tls.session_ticket_keys: tickets survive a reload and a restart, rotate by line order, bad files are named."""

    def keys(self):
        return [base64.b64encode(os.urandom(80)).decode() for _ in range(2)]

    def test_tickets_resume_across_reload_rotation_and_restart(self):
        old, new = self.keys()
        keys = os.path.join(self.dir, "ticket-keys")
        ticket_keys_file(keys, old)
        proxy = self.start(tls={"session_ticket_keys": keys})
        ctx = h.client_context(lab, "alice")
        _, status, session = resumed_request(proxy.port, ctx)
        self.assertEqual(status, 200)
        # Rotation step 1: the new key encrypts, the old one still decrypts.
        ticket_keys_file(keys, new, old)
        proxy.child.proc.send_signal(signal.SIGHUP)
        self.assertTrue(h.wait_until(lambda: "reload done" in proxy.child.output()), proxy.child.output())
        self.assertEqual(resumed_request(proxy.port, ctx, session)[:2], (True, 200))
        # A restart with the same file resumes too.
        proxy.stop()
        proxy = self.start(tls={"session_ticket_keys": keys})
        self.assertEqual(resumed_request(proxy.port, ctx, session)[:2], (True, 200))
        # Rotation step 2: the old key gone, its tickets mean a full handshake, not an error.
        ticket_keys_file(keys, new)
        proxy.child.proc.send_signal(signal.SIGHUP)
        self.assertTrue(h.wait_until(lambda: proxy.child.output().count("reload done") == 1), proxy.child.output())
        self.assertEqual(resumed_request(proxy.port, ctx, session)[:2], (False, 200))

    def test_a_bad_key_file_is_a_config_error_naming_file_and_line(self):
        keys = os.path.join(self.dir, "bad-keys")
        ticket_keys_file(keys, self.keys()[0], "c2hvcnQ=")
        config = h.base_config(self.standin.url, tls={"session_ticket_keys": keys})
        code, _, err = h.run_easedge("--check-config", h.write_config(lab, config, name="bad-keys.yaml"))
        self.assertEqual(code, 1, err)
        self.assertIn("tls.session_ticket_keys", err)
        self.assertIn(keys + "' line 2: a key is 80 bytes, this one is 5", err)


def can_connect(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


def metric(text, name, labels=""):
    m = re.search(r"^%s%s (\S+)$" % (re.escape(name), re.escape(labels)), text, re.M)
    return float(m.group(1)) if m else None


class AdminTest(OperationsCase):
    def setUp(self):
        super().setUp()
        proxy = self.start(admin={"listen": "127.0.0.1:0"})
        m = h.wait_until(lambda: re.search(r"admin listening on \S+:(\d+)", proxy.child.output()), 2)
        if not m:
            self.skipTest("easedge has no admin listener wired yet")
        self.admin = int(m.group(1))

    def test_health_and_readiness(self):
        self.assertEqual(h.admin_get(self.admin, "/healthz"), (200, "ok\n"))
        status, body = h.admin_get(self.admin, "/readyz")
        self.assertEqual(status, 200, body)
        self.assertTrue(body.startswith("ready\n"), body)

    def test_metrics_count_exactly_what_happened(self):
        for _ in range(3):
            self.assertEqual(h.curl(lab, self.proxy.url(EAS % "Sync"), device="alice").status, 200)
        self.assertEqual(h.curl(lab, self.proxy.url(EAS % "Sync"), device="revoked").status, 403)
        self.assertEqual(h.curl(lab, self.proxy.url("/owa/"), device="alice").status, 404)
        # curl has its answers; easedge may still be processing the last connection's close (a loaded CI
        # machine showed connections_open 1 for a moment): read the metrics once it is done.
        h.wait_until(lambda: metric(h.admin_get(self.admin, "/metrics")[1], "easedge_connections_open") == 0, 5)
        status, text = h.admin_get(self.admin, "/metrics")
        self.assertEqual(status, 200)
        self.assertEqual(metric(text, "easedge_requests_total", '{status="200",command="Sync"}'), 3, text)
        self.assertEqual(metric(text, "easedge_refusals_total", '{reason="certificate_revoked"}'), 1, text)
        self.assertEqual(metric(text, "easedge_refusals_total", '{reason="not_found"}'), 1, text)
        self.assertEqual(metric(text, "easedge_connections_open"), 0, text)
        self.assertEqual(metric(text, "easedge_crl_loads_total"), 1, text)
        self.assertIsNotNone(re.search(r'^easedge_build_info\{version="[^"]+"\} 1$', text, re.M), text)
        self.assertIsNotNone(re.search(r'^easedge_crl_next_update_seconds\{issuer="[^"]*Issuing CA[^"]*"', text, re.M), text)

    def test_a_device_leaving_a_held_ping_releases_it_before_exchange_answers(self):
        def held():
            return metric(h.admin_get(self.admin, "/metrics")[1], "easedge_requests_held")

        sent = time.monotonic()
        tls = h.tls_connect(lab, self.proxy.port, "alice")
        tls.sendall(("POST %s HTTP/1.1\r\nHost: localhost\r\nContent-Length: 4\r\n\r\nping" % (EAS % "Ping")).encode())
        self.assertTrue(h.wait_until(lambda: held() == 1, 2), "the Ping was never held")
        time.sleep(0.5)
        tls.close()  # the phone went to sleep: its connection is gone while Exchange still holds the Ping
        self.assertTrue(h.wait_until(lambda: held() == 0, 3), "the held Ping was not released")
        self.assertLess(time.monotonic() - sent, PING_HOLD, "released only when Exchange answered")
        status, text = h.admin_get(self.admin, "/metrics")
        self.assertEqual(metric(text, "easedge_connections_open"), 0, text)



class MemoryReleaseTest(OperationsCase):
    UPLOADS = 32
    BUFFER_BYTES = 1 << 20  # limits.relay_buffer_bytes: large, so the burst's buffers show in RSS

    def rss_kb(self):
        with open("/proc/%d/status" % self.proxy.child.proc.pid) as f:
            return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))

    def test_a_burst_of_uploads_gives_its_relay_buffers_back_to_the_kernel(self):
        """Each upload takes a relay buffer; the sweeps (every 5 s) free those no later request needed and have
        the allocator hand their pages back: tcmalloc in the shipped build (glibc's malloc_trim did nothing
        there, and once crashed), glibc in builds without it."""
        if h.built_with_sanitizers(h.EASEDGE_BIN):
            self.skipTest("ASan's allocator keeps freed memory in quarantine: RSS says nothing of easedge's")
        self.start(limits={"relay_buffer_bytes": self.BUFFER_BYTES})
        body = os.urandom(self.BUFFER_BYTES)
        baseline = self.rss_kb()
        results = []
        threads = [threading.Thread(target=lambda: results.append(h.curl(
            lab, self.proxy.url(EAS % "SendMail"), device="alice", data=body, timeout=60)))
            for _ in range(self.UPLOADS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual([r.status for r in results], [200] * self.UPLOADS, results[:1])
        burst = self.rss_kb() - baseline
        self.assertGreater(burst, 4096, "the burst's buffers should be resident (RSS grew %d KB)" % burst)
        # Two sweeps: the first marks the buffers as unused since, the second frees them.
        self.assertTrue(h.wait_until(lambda: self.rss_kb() - baseline < burst / 2, timeout=20),
                        "RSS stayed %d KB above the start after the sweeps (%d KB after the burst)" %
                        (self.rss_kb() - baseline, burst))
        self.assertTrue(self.proxy.child.alive(), self.proxy.child.output())

if __name__ == "__main__":
    unittest.main()
