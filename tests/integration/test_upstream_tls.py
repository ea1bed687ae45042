#!/usr/bin/env python3
"""easedge in front of an HTTPS Exchange, as most deployments run it: nginx (real) terminates TLS with the lab's
server certificate (localhost, 127.0.0.1, exchange.corp.example.test) and passes requests on to the stand-in.
easedge verifies Exchange's certificate (upstream.ca, and the name from the URL or upstream.server_name) before it
sends a byte of a request. It also reuses its TLS connections, and takes a fresh one when Exchange closed an idle
one. A response whose body ends with the connection is complete only with Exchange's close_notify (RFC 9112
section 9.8); after a bare FIN the device's connection is cut without the body's end.

  EASEDGE_BIN=build/proxy/easedge STANDIN_BIN=build/bench/standin-exchange \
  python3 tests/integration/test_upstream_tls.py -v
"""

import os
import shutil
import socket
import subprocess
import ssl
import sys
import threading
import time
import unittest
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

UPN = "alice@corp.example.test"
EAS = "/Microsoft-Server-ActiveSync"
EXCHANGE_NAME = "exchange.corp.example.test"  # in the lab server certificate's SANs

# One process (no master, no workers to drop privileges to), everything under the test's folder. The access log
# names the TLS connection each request came on, so a test can tell a reused connection from a new one.
NGINX_CONF = """daemon off;
master_process off;
pid {d}/nginx.pid;
error_log {d}/error.log info;
events {{ worker_connections 64; }}
http {{
  log_format tls '$connection $connection_requests $ssl_protocol "$ssl_server_name" "$request"';
  access_log {d}/access.log tls;
  client_body_temp_path {d}/client-body;
  proxy_temp_path {d}/proxy;
  keepalive_timeout {keepalive}s;
  server {{
    listen 127.0.0.1:{port} ssl;
    ssl_certificate {pki}/server-chain.pem;
    ssl_certificate_key {pki}/server.key;
    ssl_protocols TLSv1.2 TLSv1.3;  # nginx 1.22 leaves TLS 1.3 out by default; Exchange on Windows Server 2022 has it
    location / {{
      proxy_pass http://127.0.0.1:{standin};
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }}
  }}
}}
"""

lab = None


def setUpModule():
    global lab
    if not shutil.which("nginx"):
        raise unittest.SkipTest("nginx is not installed (scripts/install-deps.sh --with-bench)")
    lab = h.module_lab("EASEDGE_BIN", "STANDIN_BIN")


def tearDownModule():
    h.end_module_lab()


def marker():
    """A DeviceId unique to one request, to find that request in the stand-in's and nginx's logs."""
    return "TLS" + uuid.uuid4().hex[:13].upper()


def eas_target(device_id):
    return "%s?Cmd=Sync&User=alice&DeviceId=%s&DeviceType=iPhone" % (EAS, device_id)


class TlsExchange:
    """nginx terminating TLS on a free loopback port in front of a stand-in Exchange."""

    def __init__(self, lab, keepalive_seconds=75):
        self.standin = h.Standin(lab)
        self.dir = lab.fresh_dir("nginx")
        self.port = h.unused_port()
        conf = os.path.join(self.dir, "nginx.conf")
        with open(conf, "w") as f:
            f.write(NGINX_CONF.format(d=self.dir, port=self.port, pki=lab.pki, standin=self.standin.port,
                                      keepalive=keepalive_seconds))
        self.proc = subprocess.Popen(["nginx", "-p", self.dir, "-e", os.path.join(self.dir, "error.log"), "-c", conf],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if not h.wait_until(self._listening, timeout=h.STARTUP_TIMEOUT):
            self.stop()
            raise RuntimeError("nginx did not listen on %d; its error log:\n%s" % (self.port, self.error_log()))

    def _listening(self):
        if self.proc.poll() is not None:
            raise RuntimeError("nginx exited (%s); its error log:\n%s" % (self.proc.returncode, self.error_log()))
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
            return True
        except OSError:
            return False

    def _read(self, name):
        path = os.path.join(self.dir, name)
        if not os.path.exists(path):
            return ""
        with open(path) as f:
            return f.read()

    def error_log(self):
        return self._read("error.log")

    def requests_for(self, device_id):
        """(connection number, requests on it so far, TLS protocol, SNI) of each request nginx logged for the
        device id."""
        lines = [line.split(" ", 4) for line in self._read("access.log").splitlines() if device_id in line]
        return [(int(c), int(n), protocol, sni.strip('"')) for c, n, protocol, sni, _ in lines]

    def logged(self, device_id):
        """requests_for an answered request: nginx writes its log line as it finishes the answer, so it may
        trail the device's read by a moment."""
        return h.wait_until(lambda: self.requests_for(device_id), timeout=h.IO_TIMEOUT)

    def stop(self):
        h.stop_process(self.proc)
        self.standin.stop()


def https_upstream_config(exchange, **upstream):
    """easedge forwarding to the nginx above: by address, with the lab CA (relative to the PKI folder)."""
    return h.base_config("https://127.0.0.1:%d" % exchange.port,
                         upstream=dict({"ca": "ca-bundle.pem"}, **upstream))


class ExchangeCase(unittest.TestCase):
    keepalive_seconds = 75
    upstream = {"server_name": EXCHANGE_NAME}

    @classmethod
    def setUpClass(cls):
        cls.exchange = TlsExchange(lab, cls.keepalive_seconds)
        try:
            cls.proxy = h.Easedge(lab, https_upstream_config(cls.exchange, **cls.upstream),
                                  name=cls.__name__ + ".yaml")
        except Exception:
            cls.exchange.stop()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.proxy.stop()
        cls.exchange.stop()

    def curl(self, device_id):
        return h.curl(lab, self.proxy.url(eas_target(device_id)), device="alice", data=b"x")

    def post_on(self, conn, device_id):
        conn.request("POST", eas_target(device_id), body=b"x")
        response = conn.getresponse()
        response.read()
        return response.status


class VerifiedExchange(ExchangeCase):
    """upstream.server_name names Exchange; its certificate chains to upstream.ca."""

    def test_a_request_reaches_exchange_over_tls_with_the_identity(self):
        device_id = marker()
        r = self.curl(device_id)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(h.echoed_values(r, "X-Forwarded-User"), [UPN])
        [(_, _, protocol, sni)] = self.exchange.logged(device_id)
        self.assertEqual(sni, EXCHANGE_NAME)  # upstream.server_name is sent as SNI
        self.assertEqual(protocol, "TLSv1.3")

    def test_a_device_connection_keeps_reusing_one_tls_connection_to_exchange(self):
        # One device connection stays on one I/O thread, so its requests take that thread's pooled connection.
        conn = h.https_connection(lab, self.proxy.port, device="alice")
        device_ids = [marker() for _ in range(4)]
        try:
            for device_id in device_ids:
                self.assertEqual(self.post_on(conn, device_id), 200)
        finally:
            conn.close()
        seen = [self.exchange.logged(d) for d in device_ids]
        self.assertTrue(all(len(s) == 1 for s in seen), seen)
        # Reused: fewer TLS connections than requests, and a connection that carried more than one. (The thread's
        # pool may also hold a connection an earlier test opened, so not necessarily a single one.)
        self.assertLess(len({s[0][0] for s in seen}), len(device_ids), seen)
        self.assertGreater(max(s[0][1] for s in seen), 1, seen)


class ExchangeByAddress(ExchangeCase):
    """No server_name: the URL's address is what Exchange's certificate must name (an IP SAN, and no SNI)."""

    upstream = {}

    def test_the_certificate_is_checked_against_the_address(self):
        device_id = marker()
        r = self.curl(device_id)
        self.assertEqual(r.status, 200, r)
        [(_, _, _, sni)] = self.exchange.logged(device_id)
        self.assertEqual(sni, "-")  # nginx logs "-" when the client sent no server name


class ExchangeClosingIdleConnections(ExchangeCase):
    """Exchange (here nginx's keepalive_timeout) closes a pooled connection while it is idle."""

    keepalive_seconds = 1

    def test_the_next_request_takes_a_new_connection_and_is_answered(self):
        first, second = marker(), marker()
        self.assertEqual(self.curl(first).status, 200)
        time.sleep(2.5)  # nginx has closed the idle connection by now
        r = self.curl(second)
        self.assertEqual(r.status, 200, r)
        [(first_connection, _, _, _)] = self.exchange.logged(first)
        [(second_connection, requests_on_it, _, _)] = self.exchange.logged(second)
        self.assertNotEqual(first_connection, second_connection)
        self.assertEqual(requests_on_it, 1)


class UnverifiedExchangeCase(ExchangeCase):
    """Exchange's certificate does not verify: easedge must not send it anything, and tells the device 502.3."""

    def assert_nothing_forwarded(self, reason_in_log):
        device_id = marker()
        r = self.curl(device_id)
        self.assertEqual(r.status, 502, r)
        self.assertIn(b"502.3", r.body)
        self.assertNotIn(reason_in_log.encode(), r.body)  # details in the log, never in the body
        self.assertEqual(self.exchange.requests_for(device_id), [])
        self.assertFalse(self.exchange.standin.saw(device_id))
        self.assertTrue(h.wait_until(lambda: reason_in_log in self.proxy.child.output(), timeout=h.IO_TIMEOUT),
                        self.proxy.child.output())


class ExchangeWithAnotherName(UnverifiedExchangeCase):
    upstream = {"server_name": "mail.elsewhere.example.test"}

    def test_a_certificate_for_another_name_gets_nothing(self):
        self.assert_nothing_forwarded("certificate verify failed")


class ExchangeFromAnotherCa(UnverifiedExchangeCase):
    upstream = {"server_name": EXCHANGE_NAME, "ca": "rogue-ca.pem"}

    def test_a_certificate_from_another_ca_gets_nothing(self):
        self.assert_nothing_forwarded("certificate verify failed")


class CloseDelimitedExchange:
    """An HTTPS "Exchange" (the lab's server certificate) that answers every request with a body ending when the
    connection does (no Content-Length, not chunked), then closes with close_notify. For a DeviceId starting with
    CUT it ends with a bare FIN instead, as if someone on the path had cut the connection: at once, or (LATECUT)
    once the test says the device has the response's head."""

    body = b"<wbxml: a Sync response, some kilobytes long>" * 100

    def __init__(self, lab):
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(lab.path("server-chain.pem"), lab.path("server.key"))
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.answered = []  # request lines
        self.device_has_head = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                raw, _ = self.listener.accept()
            except OSError:
                return  # stopped
            threading.Thread(target=self._answer, args=(raw,), daemon=True).start()

    def _answer(self, raw):
        raw.settimeout(h.IO_TIMEOUT)
        try:
            conn = self.context.wrap_socket(raw, server_side=True)
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                head += chunk
            request_line = head.split(b"\r\n", 1)[0].decode("latin-1")
            self.answered.append(request_line)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/vnd.ms-sync.wbxml\r\n\r\n" + self.body)
            if "DeviceId=LATECUT" in request_line:
                self.device_has_head.wait(h.IO_TIMEOUT)
            if "CUT" in request_line:
                conn.close()  # Python closes a TLS socket without close_notify: the peer sees a bare FIN
            else:
                conn.unwrap().close()  # close_notify, then the connection's end
        except (OSError, ssl.SSLError):
            pass
        finally:
            raw.close()

    def stop(self):
        self.listener.close()


class ExchangeEndingBodiesWithTheConnection(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.exchange = CloseDelimitedExchange(lab)
        # A relay buffer smaller than the body: easedge sends the head with the body's first kilobyte, before
        # it has seen how the body ends.
        config = h.base_config("https://127.0.0.1:%d" % cls.exchange.port, limits={"relay_buffer_bytes": 1024},
                               upstream={"ca": "ca-bundle.pem", "server_name": EXCHANGE_NAME})
        cls.proxy = h.Easedge(lab, config, name=cls.__name__ + ".yaml")

    @classmethod
    def tearDownClass(cls):
        cls.proxy.stop()
        cls.exchange.stop()

    def exchange_bytes(self, device_id):
        """Everything the device receives for one request, until easedge closes the connection; the exchange
        hears once the head is in."""
        sock = h.tls_connect(lab, self.proxy.port, device="alice")
        received = b""
        try:
            sock.sendall(("POST %s HTTP/1.1\r\nHost: localhost\r\nContent-Length: 1\r\nConnection: close\r\n\r\nx"
                          % eas_target(device_id)).encode())
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                received += chunk
                if b"\r\n\r\n" in received:
                    self.exchange.device_has_head.set()
        except (ConnectionError, ssl.SSLError, OSError):
            pass  # a cut connection may end in a reset
        finally:
            sock.close()
        self.assertTrue(any(device_id in line for line in self.exchange.answered))
        return received

    def assert_cut_logged(self):
        self.assertTrue(h.wait_until(lambda: "unexpected eof" in self.proxy.child.output(), timeout=h.IO_TIMEOUT),
                        self.proxy.child.output())

    def test_a_body_closed_with_close_notify_reaches_the_device_whole(self):
        received = self.exchange_bytes(marker())
        head, _, body = received.partition(b"\r\n\r\n")
        self.assertTrue(head.startswith(b"HTTP/1.1 200"), received)
        self.assertIn(b"Transfer-Encoding: chunked", head)  # easedge's own framing of the body it read
        self.assertEqual(dechunk(body), (self.exchange.body, True))

    def test_a_body_cut_by_a_bare_fin_after_its_head_went_out_never_gets_its_end(self):
        self.exchange.device_has_head.clear()
        received = self.exchange_bytes("LATECUT" + marker())
        head, _, body = received.partition(b"\r\n\r\n")
        self.assertTrue(head.startswith(b"HTTP/1.1 200"), received)
        data, whole = dechunk(body)
        self.assertFalse(whole, received)  # the device sees a body that broke off, never a whole one
        self.assertTrue(self.exchange.body.startswith(data))
        self.assert_cut_logged()

    def test_a_body_cut_by_a_bare_fin_at_once_is_never_a_whole_response(self):
        received = self.exchange_bytes("CUT" + marker())
        head, _, body = received.partition(b"\r\n\r\n")
        # Whether easedge had sent the head when the cut came is a race: a 502.3 before, a broken body after.
        if head.startswith(b"HTTP/1.1 502"):
            self.assertIn(b"502.3", body)
        else:
            self.assertTrue(head.startswith(b"HTTP/1.1 200"), received)
            self.assertFalse(dechunk(body)[1], received)
        self.assert_cut_logged()


def dechunk(body):
    """(the data of a chunked body, whether its last chunk came)."""
    data = b""
    while True:
        size_line, crlf, rest = body.partition(b"\r\n")
        if not crlf:
            return data, False
        size = int(size_line, 16)
        if size == 0:
            return data, rest == b"\r\n"
        if len(rest) < size + 2:
            return data + rest[:size], False
        data += rest[:size]
        body = rest[size + 2:]


if __name__ == "__main__":
    unittest.main()
