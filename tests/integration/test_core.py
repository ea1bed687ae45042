#!/usr/bin/env python3
"""Issue 3's HTTP behaviour as a device sees it: easedge in front of standin-exchange, driven by curl and raw TLS.

Run by ctest (tests/integration/CMakeLists.txt), or by hand:
  EASEDGE_BIN=build/proxy/easedge STANDIN_BIN=build/bench/standin-exchange python3 tests/integration/test_core.py -v
"""

import json
import os
import re
import socket
import sys
import time
import unittest
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

UPN = "alice@corp.example.test"
LIMIT = 10485760  # limits.upload_read_ahead_bytes default (IIS uploadReadAheadSize from the guide)
EAS = "/Microsoft-Server-ActiveSync"

lab = None


def setUpModule():
    global lab
    lab = h.module_lab("EASEDGE_BIN", "STANDIN_BIN")


def tearDownModule():
    h.end_module_lab()


def marker():
    """A DeviceId unique to one request, so a test can ask the stand-in whether that request reached it."""
    return "IT" + uuid.uuid4().hex[:14].upper()


def eas_target(device_id, cmd="Sync", user="alice"):
    return "%s?Cmd=%s&User=%s&DeviceId=%s&DeviceType=iPhone" % (EAS, cmd, user, device_id)


class ProxyCase(h.ProxyTestCase):
    """Device-side helpers over the harness's one-stand-in-one-easedge-per-class base."""

    def curl(self, target, device="alice", **kwargs):
        return h.curl(lab, self.proxy.url(target), device=device, **kwargs)

    def assert_proxy_alive(self):
        self.assertTrue(self.proxy.child.alive(), "easedge exited; its stderr:\n" + self.proxy.child.output())
        r = self.curl(eas_target(marker()))
        self.assertEqual(r.status, 200, r)

    def assert_refused(self, result, status, substatus, device_id):
        self.assertEqual(result.status, status, result)
        if substatus is not None:
            self.assertIn(b"%d.%d" % (status, substatus), result.body, result)
        self.assertFalse(self.standin.saw(device_id), "a refused request reached the upstream")


class RequiredClientCertificate(ProxyCase):
    """tls.client_certificate: required (IIS SSL Settings: Require), default limits and timeouts."""

    standin_args = ("--ping-hold", "2")

    # --- identity ---------------------------------------------------------------------------------------

    def test_valid_certificate_is_forwarded_with_identity_headers(self):
        device_id = marker()
        body = os.urandom(4096)
        r = self.curl(eas_target(device_id), data=body,
                      headers=["Content-Type: application/vnd.ms-sync.wbxml", "MS-ASProtocolVersion: 14.1"])
        self.assertEqual(r.status, 200, r)
        echo = r.json()
        self.assertEqual(echo["method"], "POST")
        self.assertEqual(echo["target"], eas_target(device_id))
        self.assertEqual(echo["body_bytes"], len(body))
        self.assertEqual(echo["body_sha256"], h.sha256_hex(body))
        self.assertEqual(h.echoed_values(r, "X-Forwarded-User"), [UPN])
        xfcc = h.echoed_values(r, "X-Forwarded-Client-Cert")
        self.assertEqual(len(xfcc), 1, xfcc)
        expected = 'Hash=%s;Subject="CN=WorkspaceONEUEM.alice"' % h.sha256_hex(lab.device_der("alice"))
        self.assertEqual(xfcc[0].lower(), expected.lower(), "XFCC must be Envoy's Hash=...;Subject=\"...\" form")
        self.assertEqual(h.echoed_values(r, "X-Forwarded-For"), ["127.0.0.1"])
        self.assertEqual([v.lower() for v in h.echoed_values(r, "X-Forwarded-Proto")], ["https"])
        self.assertEqual(h.echoed_values(r, "MS-ASProtocolVersion"), ["14.1"])
        self.assertTrue(self.standin.saw(device_id))

    def test_bob_without_sid_extension_is_forwarded_as_bob(self):
        r = self.curl(eas_target(marker(), user="bob"), device="bob", data=b"x")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(h.echoed_values(r, "X-Forwarded-User"), ["bob@corp.example.test"])

    def test_refusals_carry_iis_substatus_and_never_reach_upstream(self):
        cases = [
            (None, 7),           # no client certificate
            ("revoked", 13),     # on issuing.crl
            ("expired", 17),
            ("notyet", 17),
            ("untrusted", 16),   # issued by the Rogue CA
            ("serverauth", 16),  # EKU serverAuth only
            ("noupn", 16),       # no UPN SAN: no identity
        ]
        for device, substatus in cases:
            with self.subTest(device=device or "no certificate"):
                device_id = marker()
                r = self.curl(eas_target(device_id), device=device, data=b"payload")
                self.assert_refused(r, 403, substatus, device_id)

    def test_spoofed_identity_headers_never_reach_upstream(self):
        spoofed = [
            "X-Forwarded-User: mallory@corp.example.test",
            'X-Forwarded-Client-Cert: Hash=00;Subject="CN=mallory"',
            "x_forwarded_user: mallory@corp.example.test",
            "X_Forwarded_Client_Cert: mallory",
            "x-forwarded-user: mallory@corp.example.test",
        ]
        r = self.curl(eas_target(marker()), headers=spoofed, data=b"x")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(h.echoed_values(r, "X-Forwarded-User"), [UPN])
        self.assertEqual(len(h.echoed_values(r, "X-Forwarded-Client-Cert")), 1)
        for name, value in h.echoed_headers(r):
            self.assertNotIn("mallory", value.lower(), "spoofed header %s reached the upstream" % name)
        names = [name.lower() for name, _ in h.echoed_headers(r)]
        self.assertNotIn("x_forwarded_user", names)
        self.assertNotIn("x_forwarded_client_cert", names)

    # --- paths and methods ------------------------------------------------------------------------------

    def test_other_paths_get_404_and_are_not_forwarded(self):
        for path in ("/other", "/", "/owa/", "/Microsoft-Server-ActiveSyncX", "/autodiscover/autodiscover.xml"):
            with self.subTest(path=path):
                device_id = marker()
                r = self.curl(path + "?DeviceId=" + device_id, data=b"x")
                self.assert_refused(r, 404, None, device_id)

    def test_endpoint_and_sub_paths_match_case_insensitively(self):
        for path in ("/microsoft-server-activesync", "/MICROSOFT-SERVER-ACTIVESYNC", "/Microsoft-Server-ActiveSync/",
                     "/microsoft-server-activesync/sub", "/Microsoft-Server-ActiveSync/a/b"):
            with self.subTest(path=path):
                device_id = marker()
                target = "%s?Cmd=Sync&User=alice&DeviceId=%s&DeviceType=iPhone" % (path, device_id)
                r = self.curl(target, data=b"x")
                self.assertEqual(r.status, 200, r)
                self.assertEqual(r.json()["target"], target)

    def test_post_get_and_options_pass(self):
        r = self.curl(eas_target(marker()), method="POST", data=b"wbxml")
        self.assertEqual((r.status, r.json()["method"]), (200, "POST"), r)
        r = self.curl(eas_target(marker()))
        self.assertEqual((r.status, r.json()["method"]), (200, "GET"), r)
        r = self.curl(EAS, method="OPTIONS")
        self.assertEqual((r.status, r.json()["method"]), (200, "OPTIONS"), r)
        # Discovery headers from Exchange pass through untouched.
        self.assertEqual(r.header("MS-ASProtocolVersions"), "2.5,12.0,12.1,14.0,14.1,16.0,16.1")
        self.assertIn("Ping", r.header("MS-ASProtocolCommands") or "")
        self.assertEqual(r.header("MS-Server-ActiveSync"), "15.1")

    def test_upstream_statuses_and_their_headers_reach_the_device(self):
        r = self.curl(eas_target(marker()), headers=["X-Standin-Status: 451"], data=b"x")
        self.assertEqual(r.status, 451, r)
        self.assertTrue(r.header("X-MS-Location"), r.headers)
        r = self.curl(eas_target(marker()), headers=["X-Standin-Status: 503"], data=b"x")
        self.assertEqual(r.status, 503, r)
        self.assertEqual(r.header("Retry-After"), "30")
        r = self.curl(eas_target(marker()), headers=["X-Standin-Status: 449"], data=b"x")
        self.assertEqual(r.status, 449, r)

    def test_held_ping_is_answered(self):
        # The stand-in holds Cmd=Ping 2 s; the default upstream response timeout (3600 s) must not cut it.
        device_id = marker()
        r = self.curl(eas_target(device_id, cmd="Ping"), data=b"ping")
        self.assertEqual(r.status, 200, r)
        self.assertTrue(self.standin.saw(device_id))

    # --- bodies and limits ------------------------------------------------------------------------------

    def test_body_of_exactly_the_limit_passes(self):
        body = os.urandom(LIMIT)
        for expect in ("Expect: 100-continue", "Expect:"):
            with self.subTest(expect=expect):
                r = self.curl(eas_target(marker(), cmd="SendMail"), data=body, headers=[expect])
                self.assertEqual(r.status, 200, r)
                self.assertEqual(r.json()["body_bytes"], LIMIT)
                self.assertEqual(r.json()["body_sha256"], h.sha256_hex(body))

    def test_content_length_over_limit_is_refused_before_the_body(self):
        # Only the head is sent: the proxy must answer 413 without waiting for the body, then close.
        device_id = marker()
        sock = h.tls_connect(lab, self.proxy.port, "alice")
        sock.sendall(("POST %s HTTP/1.1\r\nHost: localhost\r\nContent-Length: %d\r\n"
                      "Content-Type: application/vnd.ms-sync.wbxml\r\n\r\n"
                      % (eas_target(device_id, cmd="SendMail"), LIMIT + 1)).encode())
        status, _ = h.read_head(sock)
        self.assertEqual(status, 413)
        self.assertTrue(h.closed_by_peer(sock), "connection must be closed after 413")
        sock.close()
        self.assertFalse(self.standin.saw(device_id))

    def test_expect_100_continue_over_limit_gets_413_not_100(self):
        device_id = marker()
        sock = h.tls_connect(lab, self.proxy.port, "alice")
        sock.sendall(("POST %s HTTP/1.1\r\nHost: localhost\r\nContent-Length: %d\r\nExpect: 100-continue\r\n\r\n"
                      % (eas_target(device_id, cmd="SendMail"), LIMIT + 1)).encode())
        status, _ = h.read_head(sock)
        self.assertEqual(status, 413, "the first answer must be 413, never 100 Continue")
        self.assertTrue(h.closed_by_peer(sock), "connection must be closed after 413")
        sock.close()
        self.assertFalse(self.standin.saw(device_id))

    def test_curl_over_limit_gets_413(self):
        body = os.urandom(LIMIT + 1)
        for expect in ("Expect: 100-continue", "Expect:"):
            with self.subTest(expect=expect):
                device_id = marker()
                r = self.curl(eas_target(device_id, cmd="SendMail"), data=body, headers=[expect])
                self.assert_refused(r, 413, None, device_id)

    def test_chunked_body_over_limit_gets_413(self):
        device_id = marker()
        body = os.urandom(LIMIT + 1)
        r = self.curl(eas_target(device_id, cmd="SendMail"), data=body,
                      headers=["Transfer-Encoding: chunked", "Expect:"])
        self.assert_refused(r, 413, None, device_id)
        self.assert_proxy_alive()

    def test_chunked_body_within_limit_passes(self):
        body = os.urandom(100000)
        r = self.curl(eas_target(marker(), cmd="SendMail"), data=body, headers=["Transfer-Encoding: chunked"])
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["body_bytes"], len(body))
        self.assertEqual(r.json()["body_sha256"], h.sha256_hex(body))

    # --- hostile requests -------------------------------------------------------------------------------

    def raw_request(self, head, body=b""):
        sock = h.tls_connect(lab, self.proxy.port, "alice")
        sock.sendall(head.encode() + body)
        response = h.read_response(sock)
        sock.close()
        return response

    def test_content_length_with_transfer_encoding_is_400_and_not_forwarded(self):
        device_id = marker()
        r = self.raw_request("POST %s HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\n"
                             "Transfer-Encoding: chunked\r\n\r\n" % eas_target(device_id), b"5\r\nhello\r\n0\r\n\r\n")
        self.assertIsNotNone(r, "expected a 400 answer, the connection was closed")
        self.assertEqual(r.status, 400, r)
        self.assertFalse(self.standin.saw(device_id))

    def test_two_different_content_lengths_are_400(self):
        device_id = marker()
        r = self.raw_request("POST %s HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n"
                             % eas_target(device_id), b"hello!")
        self.assertIsNotNone(r, "expected a 400 answer, the connection was closed")
        self.assertEqual(r.status, 400, r)
        self.assertFalse(self.standin.saw(device_id))

    def test_ambiguous_framing_is_400_and_not_forwarded(self):
        # Request-smuggling shapes: the proxy and Exchange must never disagree on where a body ends.
        cases = {
            "chunked not last": "Transfer-Encoding: chunked, identity\r\n",
            "unknown coding": "Transfer-Encoding: gzip\r\n",
            "negative length": "Content-Length: -5\r\n",
            "non-numeric length": "Content-Length: 5x\r\n",
            "list of lengths": "Content-Length: 5, 6\r\n",
            "space before colon": "Content-Length : 5\r\n",
        }
        for name, headers in cases.items():
            with self.subTest(case=name):
                device_id = marker()
                r = self.raw_request("POST %s HTTP/1.1\r\nHost: localhost\r\n%s\r\n" % (eas_target(device_id), headers),
                                     b"5\r\nhello\r\n0\r\n\r\n")
                if r is not None:  # closing without an answer is also a safe refusal
                    self.assertEqual(r.status, 400, r)
                self.assertFalse(self.standin.saw(device_id))

    def test_folded_header_is_refused_or_unfolded(self):
        # RFC 9112 5.2: a proxy rejects obs-fold with 400 or replaces it with spaces before forwarding.
        device_id = marker()
        r = self.raw_request("POST %s HTTP/1.1\r\nHost: localhost\r\nX-Folded: a\r\n b\r\nContent-Length: 5\r\n\r\n"
                             % eas_target(device_id), b"hello")
        self.assertIsNotNone(r)
        if r.status == 200:
            folded = [v for k, v in json.loads(r.body)["headers"] if k.lower() == "x-folded"]
            self.assertEqual(len(folded), 1)
            self.assertNotIn("\n", folded[0])
        else:
            self.assertEqual(r.status, 400, r)
            self.assertFalse(self.standin.saw(device_id))

    def test_oversized_request_header_is_431(self):
        device_id = marker()
        r = self.curl(eas_target(device_id), headers=["X-Filler: " + "a" * 20000])  # default limit 16384
        self.assert_refused(r, 431, None, device_id)

    def test_garbage_instead_of_client_hello_closes_the_connection(self):
        for garbage in (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", os.urandom(2048), b"\x16\x03\x01\xff\xff" + b"A" * 64):
            with self.subTest(garbage=garbage[:16]):
                sock = socket.create_connection(("127.0.0.1", self.proxy.port), timeout=h.IO_TIMEOUT)
                try:
                    sock.sendall(garbage)
                except OSError:
                    pass  # already closed by the proxy: fine
                self.assertTrue(h.closed_by_peer(sock), "proxy kept a non-TLS connection open")
                sock.close()
        self.assert_proxy_alive()

    def test_client_that_stops_mid_body(self):
        for how in ("close", "reset"):
            with self.subTest(how=how):
                device_id = marker()
                raw = socket.create_connection(("127.0.0.1", self.proxy.port), timeout=h.IO_TIMEOUT)
                tls = h.client_context(lab, "alice").wrap_socket(raw, server_hostname="localhost")
                tls.sendall(("POST %s HTTP/1.1\r\nHost: localhost\r\nContent-Length: 1000000\r\n\r\n"
                             % eas_target(device_id, cmd="SendMail")).encode() + os.urandom(20000))
                if how == "reset":
                    tls.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                tls.close()
                self.assert_proxy_alive()
                time.sleep(0.3)
                self.assertFalse(self.standin.saw(device_id), "an incomplete body must never complete upstream")

    # --- connections ------------------------------------------------------------------------------------

    def test_keep_alive_serves_several_requests_on_one_connection(self):
        conn = h.https_connection(lab, self.proxy.port, "alice")
        sockets = []
        for method, body in (("POST", b"one"), ("GET", None), ("OPTIONS", None), ("POST", b"four")):
            conn.request(method, eas_target(marker()), body=body)
            resp = conn.getresponse()
            resp.read()
            self.assertEqual(resp.status, 200)
            self.assertFalse(resp.will_close, "proxy closed a keep-alive connection")
            sockets.append(conn.sock)
        conn.close()
        self.assertTrue(all(s is sockets[0] for s in sockets), "requests did not share one connection")

    def test_tls_1_2_and_1_3(self):
        for flags in (["--tlsv1.2", "--tls-max", "1.2"], ["--tlsv1.3"]):
            with self.subTest(flags=flags):
                r = self.curl(eas_target(marker()), extra=flags)
                self.assertEqual(r.status, 200, r)


def request_on_fresh_connection(port, ctx, target, session=None):
    """One keep-alive-less request on a new TLS connection: (reused?, response, the connection's session)."""
    raw = socket.create_connection(("127.0.0.1", port), timeout=h.IO_TIMEOUT)
    with ctx.wrap_socket(raw, server_hostname="localhost", session=session) as tls:
        tls.sendall(("POST %s HTTP/1.1\r\nHost: localhost\r\nContent-Length: 1\r\nConnection: close\r\n\r\nx"
                     % target).encode())
        response = h.read_response(tls)
        return tls.session_reused, response, tls.session  # TLS 1.3 tickets arrive after the handshake


class SessionResumption(ProxyCase):
    """tls.session_tickets (default on): a resumed connection carries the same identity and the same verdict."""

    def resume(self, device):
        ctx = h.client_context(lab, device)
        _, first, session = request_on_fresh_connection(self.proxy.port, ctx, eas_target(marker()))
        self.assertIsNotNone(session, "no session ticket was issued")
        device_id = marker()
        reused, second, _ = request_on_fresh_connection(self.proxy.port, ctx, eas_target(device_id), session)
        return first, reused, second, device_id

    def test_resumed_connection_keeps_the_identity(self):
        first, reused, second, device_id = self.resume("alice")
        self.assertEqual(first.status, 200, first)
        self.assertTrue(reused, "the second connection was a full handshake")
        self.assertEqual(second.status, 200, second)
        forwarded = json.loads(second.body)["headers"]
        self.assertIn(["X-Forwarded-User", UPN], [[k, v] for k, v in forwarded], forwarded)
        self.assertTrue(self.standin.saw(device_id))

    def test_resuming_does_not_bypass_revocation(self):
        first, reused, second, device_id = self.resume("revoked")
        self.assertEqual(first.status, 403, first)
        self.assertTrue(reused, "the second connection was a full handshake")
        self.assertEqual(second.status, 403, second)
        self.assertIn(b"403.13", second.body)
        self.assertFalse(self.standin.saw(device_id), "a resumed revoked device reached the upstream")


class NoSessionTickets(ProxyCase):
    """tls.session_tickets: false: every connection is a full handshake."""

    @classmethod
    def config(cls, upstream_url):
        return h.base_config(upstream_url, tls={"session_tickets": False})

    def test_no_resumption(self):
        ctx = h.client_context(lab, "alice")
        _, first, session = request_on_fresh_connection(self.proxy.port, ctx, eas_target(marker()))
        self.assertEqual(first.status, 200, first)
        if session is not None:  # a TLS 1.2 session without a ticket, or a TLS 1.3 session that never resumes
            reused, second, _ = request_on_fresh_connection(self.proxy.port, ctx, eas_target(marker()), session)
            self.assertFalse(reused)
            self.assertEqual(second.status, 200, second)


class SmallUploadLimit(ProxyCase):
    """limits.upload_read_ahead_bytes: 1000, to drive the limit byte by byte over raw TLS."""

    @classmethod
    def config(cls, upstream_url):
        return h.base_config(upstream_url, limits={"upload_read_ahead_bytes": 1000})

    def test_limit_passes_and_limit_plus_one_is_413(self):
        r = self.curl(eas_target(marker()), data=os.urandom(1000))
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["body_bytes"], 1000)
        device_id = marker()
        r = self.curl(eas_target(device_id), data=os.urandom(1001))
        self.assert_refused(r, 413, None, device_id)

    def test_chunked_over_limit_is_413_and_closes(self):
        device_id = marker()
        sock = h.tls_connect(lab, self.proxy.port, "alice")
        chunk = os.urandom(600)
        body = b"%x\r\n%s\r\n" % (len(chunk), chunk)
        head = "POST %s HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n" % eas_target(device_id)
        sock.sendall(head.encode() + body + body + b"0\r\n\r\n")
        status, _ = h.read_head(sock)
        self.assertEqual(status, 413)
        self.assertTrue(h.closed_by_peer(sock), "connection must be closed after 413")
        sock.close()
        self.assertFalse(self.standin.saw(device_id))


class UpstreamTimeout(ProxyCase):
    @classmethod
    def config(cls, upstream_url):
        return h.base_config(upstream_url, timeouts={"upstream_response_seconds": 2})

    def test_slow_upstream_gets_504(self):
        r = self.curl(eas_target(marker()), headers=["X-Standin-Delay-Ms: 4000"], data=b"x")
        self.assertEqual(r.status, 504, r)

    def test_fast_upstream_still_passes(self):
        r = self.curl(eas_target(marker()), headers=["X-Standin-Delay-Ms: 200"], data=b"x")
        self.assertEqual(r.status, 200, r)


class UpstreamDown(h.EasedgeTestCase):
    @classmethod
    def upstream_url(cls):
        return "http://127.0.0.1:%d" % h.unused_port()

    def test_unreachable_upstream_gets_502(self):
        r = h.curl(lab, self.proxy.url(eas_target(marker())), device="alice", data=b"x")
        self.assertEqual(r.status, 502, r)
        # A refused certificate is still refused first.
        r = h.curl(lab, self.proxy.url(eas_target(marker())), device="untrusted", data=b"x")
        self.assertEqual(r.status, 403, r)


class OptionalClientCertificate(ProxyCase):
    """tls.client_certificate: optional (IIS SSL Settings: Accept)."""

    @classmethod
    def config(cls, upstream_url):
        return h.base_config(upstream_url, tls={"client_certificate": "optional"})

    def test_no_certificate_is_forwarded_without_identity(self):
        r = self.curl(eas_target(marker()), device=None, data=b"x",
                      headers=["X-Forwarded-User: mallory@corp.example.test", "X-Forwarded-Client-Cert: mallory"])
        self.assertEqual(r.status, 200, r)
        self.assertEqual(h.echoed_values(r, "X-Forwarded-User"), [])
        self.assertEqual(h.echoed_values(r, "X-Forwarded-Client-Cert"), [])

    def test_valid_certificate_is_forwarded_with_identity(self):
        r = self.curl(eas_target(marker()), data=b"x")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(h.echoed_values(r, "X-Forwarded-User"), [UPN])


class ClientCertificateOff(ProxyCase):
    """tls.client_certificate: off (IIS SSL Settings: Ignore); client_ca is then not required."""

    @classmethod
    def config(cls, upstream_url):
        return h.base_config(upstream_url, tls={"certificate": "server-chain.pem", "private_key": "server.key",
                                                "client_certificate": "off"})

    def test_forwarded_without_identity_and_spoofing_stripped(self):
        r = self.curl(eas_target(marker()), device=None, data=b"x",
                      headers=["X-Forwarded-User: mallory@corp.example.test"])
        self.assertEqual(r.status, 200, r)
        self.assertEqual(h.echoed_values(r, "X-Forwarded-User"), [])
        self.assertEqual(h.echoed_values(r, "X-Forwarded-Client-Cert"), [])


class CommandLine(unittest.TestCase):
    """--check-config and --version."""

    def check(self, config_text, name):
        path = lab.path(name)
        with open(path, "w") as f:
            f.write(config_text)
        return path, h.run_easedge("--check-config", path)

    def assert_one_line_naming(self, result, *needles):
        code, out, err = result
        self.assertNotEqual(code, 0, "invalid config accepted")
        lines = [l for l in (out + err).splitlines() if l.strip()]
        self.assertEqual(len(lines), 1, "expected one clear line, got:\n" + out + err)
        for needle in needles:
            self.assertIn(needle, lines[0])

    def valid_text(self):
        return h.to_yaml(h.base_config("http://127.0.0.1:8080")) + "\n"

    def test_valid_config_exits_0(self):
        _, (code, out, err) = self.check(self.valid_text(), "valid.yaml")
        self.assertEqual(code, 0, out + err)

    def test_unknown_key_is_named(self):
        text = self.valid_text().replace("client_certificate:", "client_certificat:")
        path, result = self.check(text, "typo.yaml")
        self.assert_one_line_naming(result, "tls.client_certificat", path)

    def test_bad_value_is_named(self):
        text = self.valid_text().replace('client_certificate: "required"', 'client_certificate: "maybe"')
        path, result = self.check(text, "badvalue.yaml")
        self.assert_one_line_naming(result, "tls.client_certificate", "maybe")

    def test_missing_file_is_named(self):
        text = self.valid_text().replace('"server.key"', '"no-such.key"')
        _, result = self.check(text, "missing.yaml")
        self.assert_one_line_naming(result, "tls.private_key", "no-such.key")

    def test_bad_number_is_named(self):
        text = self.valid_text() + "limits:\n  upload_read_ahead_bytes: ten\n"
        _, result = self.check(text, "badnumber.yaml")
        self.assert_one_line_naming(result, "limits.upload_read_ahead_bytes")

    def test_missing_config_file(self):
        path = lab.path("does-not-exist.yaml")
        self.assert_one_line_naming(h.run_easedge("--check-config", path), path)

    def test_version(self):
        code, out, err = h.run_easedge("--version")
        self.assertEqual(code, 0, err)
        with open(os.path.join(h.SOURCE_DIR, "CMakeLists.txt")) as f:
            version = re.search(r"project\(easedge VERSION (\S+)", f.read()).group(1)
        self.assertIn(version, out + err)
        self.assertIn("easedge", (out + err).lower())


if __name__ == "__main__":
    unittest.main()
