#!/usr/bin/env python3
"""Issue 14, several Exchange servers: easedge in front of two stand-in Exchange servers on loopback.

Least connections spread requests over both; a stopped server costs no request that had not reached it (a
failed connect is retried on the other server); both down is 503 with Retry-After; upstream.source_addresses
spread outgoing connections over 127.0.0.2-127.0.0.4; /metrics shows each server; active checks notice a
server going and coming back.

Run by ctest (tests/integration/CMakeLists.txt), or by hand:
  EASEDGE_BIN=build/proxy/easedge STANDIN_BIN=build/bench/standin/standin-exchange \\
    python3 tests/integration/test_upstream_servers.py -v
"""

import os
import re
import sys
import threading
import unittest
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

EAS = "/Microsoft-Server-ActiveSync"

lab = None


def setUpModule():
    global lab
    lab = h.module_lab("EASEDGE_BIN", "STANDIN_BIN")


def tearDownModule():
    h.end_module_lab()


def target(cmd="Sync"):
    return "%s?Cmd=%s&User=alice&DeviceId=IT%s&DeviceType=iPhone" % (EAS, cmd, uuid.uuid4().hex[:14].upper())


def server_metric(text, name, url):
    m = re.search(r'^%s\{server="%s"\} (\S+)$' % (re.escape(name), re.escape(url)), text, re.M)
    return float(m.group(1)) if m else None


class Servers(unittest.TestCase):
    """Two stand-ins and one easedge per test (each test stops servers)."""

    upstream = {}

    def setUp(self):
        self.standins = [h.Standin(lab), h.Standin(lab)]
        self.urls = [s.url for s in self.standins]
        self.proxy = None

    def tearDown(self):
        if self.proxy:
            self.proxy.stop()
        for s in self.standins:
            s.stop()

    def start(self, servers=None, **upstream):
        upstream = dict({"servers": servers or self.urls}, **upstream)
        config = h.base_config(None, upstream=upstream, admin={"listen": "127.0.0.1:0"})
        self.proxy = h.Easedge(lab, config, name="%s.yaml" % self._testMethodName)
        m = h.wait_until(lambda: re.search(r"admin listening on \S+:(\d+)", self.proxy.child.output()), 5)
        self.admin = int(m.group(1))

    def request(self, conn=None, cmd="Sync"):
        """One POST as alice over `conn` (a kept-alive connection) or a fresh one: (status, headers, body)."""
        own = conn is None
        if own:
            conn = h.https_connection(lab, self.proxy.port, device="alice")
        try:
            conn.request("POST", target(cmd), body=b"x" * 100, headers={"Content-Type": "application/vnd.ms-sync.wbxml"})
            r = conn.getresponse()
            return r.status, dict(r.getheaders()), r.read()
        finally:
            if own:
                conn.close()

    def metrics(self):
        status, text = h.admin_get(self.admin, "/metrics")
        self.assertEqual(status, 200)
        return text

    def served(self, index):
        return len(self.standins[index].requests())

    def test_both_servers_serve_and_metrics_show_each(self):
        self.start()
        conns = [h.https_connection(lab, self.proxy.port, device="alice") for _ in range(4)]
        for i in range(20):
            status, _, _ = self.request(conns[i % 4])
            self.assertEqual(status, 200)
        for c in conns:
            c.close()
        self.assertGreater(self.served(0), 0)
        self.assertGreater(self.served(1), 0)
        self.assertEqual(self.served(0) + self.served(1), 20)
        text = self.metrics()
        for i, url in enumerate(self.urls):
            self.assertEqual(server_metric(text, "easedge_upstream_server_up", url), 1, text)
            self.assertEqual(server_metric(text, "easedge_upstream_server_requests_total", url), self.served(i), text)
            self.assertEqual(server_metric(text, "easedge_upstream_server_failures_total", url), 0, text)
            self.assertEqual(server_metric(text, "easedge_upstream_server_active_connections", url), 0, text)

    def test_held_requests_go_to_the_least_loaded_server(self):
        holding = [h.Standin(lab, "--ping-hold", "3") for _ in range(2)]
        self.standins += holding
        self.start(servers=[s.url for s in holding], max_idle_connections=0)
        ping_status = []
        ping = threading.Thread(target=lambda: ping_status.append(self.request(cmd="Ping")[0]))
        ping.start()
        active = lambda s: server_metric(self.metrics(), "easedge_upstream_server_active_connections", s.url)  # noqa: E731
        self.assertTrue(h.wait_until(lambda: active(holding[0]) == 1 or active(holding[1]) == 1, 5))
        busy, free = (holding[0], holding[1]) if active(holding[0]) == 1 else (holding[1], holding[0])
        # While one server holds the Ping, every other request goes to the one without connections in use
        # (round robin would send half of them to the busy one).
        for _ in range(4):
            self.assertEqual(self.request()[0], 200)
        ping.join(15)
        self.assertEqual(ping_status, [200])
        self.assertEqual(len(free.requests()), 4)
        self.assertEqual([r["target"].split("Cmd=")[1][:4] for r in busy.requests()], ["Ping"])

    def test_stopped_server_costs_no_request(self):
        self.start()
        conns = [h.https_connection(lab, self.proxy.port, device="alice") for _ in range(4)]
        for i in range(8):
            self.assertEqual(self.request(conns[i % 4])[0], 200)
        self.standins[1].stop()  # easedge's pooled connections to it are closed with it
        before = self.served(0)
        for i in range(20):
            status, headers, body = self.request(conns[i % 4])
            self.assertEqual(status, 200, body)
        for c in conns:
            c.close()
        self.assertEqual(self.served(0) - before, 20)
        text = self.metrics()
        self.assertEqual(server_metric(text, "easedge_upstream_server_up", self.urls[1]), 0, text)
        self.assertGreaterEqual(server_metric(text, "easedge_upstream_server_failures_total", self.urls[1]), 1)
        self.assertEqual(server_metric(text, "easedge_upstream_server_up", self.urls[0]), 1, text)

    def test_connect_failure_is_retried_on_the_other_server(self):
        dead = "http://127.0.0.1:%d" % h.unused_port()
        self.start(servers=[dead, self.urls[0]])
        for _ in range(6):
            self.assertEqual(self.request()[0], 200)
        self.assertEqual(self.served(0), 6)
        self.assertIn("trying another server", self.proxy.child.output())
        text = self.metrics()
        # Failed once, then skipped for retry_seconds (30 s by default): no request tried it again.
        self.assertEqual(server_metric(text, "easedge_upstream_server_failures_total", dead), 1, text)
        self.assertEqual(server_metric(text, "easedge_upstream_server_up", dead), 0, text)

    def test_all_down_is_503_with_retry_after(self):
        self.start(retry_seconds=60)
        for s in self.standins:
            s.stop()
        for _ in range(3):
            status, headers, body = self.request()
            self.assertEqual(status, 503, body)
            self.assertEqual(headers.get("Retry-After"), "30")  # timeouts.retry_after_seconds
            self.assertIn(b"no mail server can be reached", body)
        self.assertIn("upstreams_down", self.proxy.child.output())

    def test_source_addresses_spread_outgoing_connections(self):
        self.start(servers=[self.urls[0]], source_addresses=["127.0.0.2", "127.0.0.3", "127.0.0.4"],
                   max_idle_connections=0)
        for _ in range(9):
            self.assertEqual(self.request()[0], 200)
        peers = [r["peer"] for r in self.standins[0].requests()]
        self.assertEqual(sorted(set(peers)), ["127.0.0.2", "127.0.0.3", "127.0.0.4"])
        for address in ("127.0.0.2", "127.0.0.3", "127.0.0.4"):
            self.assertEqual(peers.count(address), 3, peers)

    def test_health_checks_notice_a_server_going_and_coming_back(self):
        port = self.standins[1].port
        self.start(health_check={"path": EAS + "/healthcheck.htm", "interval_seconds": 1}, retry_seconds=1)
        up = lambda: server_metric(self.metrics(), "easedge_upstream_server_up", self.urls[1])  # noqa: E731
        self.assertTrue(h.wait_until(lambda: any("healthcheck.htm" in r["target"]
                                                 for r in self.standins[1].requests()), 5))
        self.standins[1].stop()
        self.assertTrue(h.wait_until(lambda: up() == 0, 5), self.proxy.child.output())
        self.assertIn("failed its health check", self.proxy.child.output())
        for _ in range(5):  # no request is given to it meanwhile
            self.assertEqual(self.request()[0], 200)
        self.standins[1] = h.Standin(lab, listen="127.0.0.1:%d" % port)
        self.assertTrue(h.wait_until(lambda: up() == 1, 5), self.proxy.child.output())
        self.assertIn("is up again", self.proxy.child.output())
        self.assertTrue(any("healthcheck.htm" in r["target"] for r in self.standins[1].requests()))


if __name__ == "__main__":
    unittest.main()
