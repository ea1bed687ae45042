#!/usr/bin/env python3
"""Issue 14's farm on loopback: HAProxy (TCP mode, send-proxy-v2, health checks on /readyz) in front of three
easedge nodes sharing ticket keys and a CRL file, two stand-in Exchange servers, easbench through HAProxy.
HAProxy runs deploy/haproxy/easedge-farm.cfg.in, the file docs/scale-out.md shows.

  EASEDGE_BIN=build/proxy/easedge STANDIN_BIN=build/bench/standin-exchange \
  EASBENCH_BIN=build/bench/easbench/easbench python3 tests/integration/test_farm.py -v
"""

import base64
import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

EASBENCH_BIN = os.environ.get("EASBENCH_BIN", "")
HAPROXY_CONFIG = os.path.join(h.SOURCE_DIR, "deploy", "haproxy", "easedge-farm.cfg.in")
EAS = "/Microsoft-Server-ActiveSync"
NODES = 3
REFRESH = 2          # tls.revocation.refresh_seconds of every node
DRAIN_DELAY = 3      # timeouts.drain_delay_seconds: above HAProxy's detection (fall 2 x inter 1 s)
CHECK_SETTLE = 4.0   # HAProxy marks a node up after rise 2 x inter 1 s: wait a little longer
DEVICE_ADDRESS = "127.0.0.5"  # where the farm's "device" connects from, as opposed to HAProxy's 127.0.0.1

lab = None
farm = None


def setUpModule():
    global lab, farm
    if not shutil.which("haproxy"):
        raise unittest.SkipTest("haproxy is not installed (scripts/install-deps.sh --with-bench)")
    if not (EASBENCH_BIN and os.access(EASBENCH_BIN, os.X_OK)):
        raise unittest.SkipTest("EASBENCH_BIN is not set to a built easbench")
    lab = h.module_lab("EASEDGE_BIN", "STANDIN_BIN")
    farm = Farm(lab)


def tearDownModule():
    if farm:
        farm.stop()
    h.end_module_lab()


def proxy_v2_header(source, destination):
    """A PROXY protocol v2 header for a TCP/IPv4 connection from `source` to `destination` ((ip, port) pairs)."""
    addresses = socket.inet_aton(source[0]) + socket.inet_aton(destination[0]) + struct.pack("!HH", source[1], destination[1])
    return b"\r\n\r\n\x00\r\nQUIT\n" + bytes([0x21, 0x11]) + struct.pack("!H", len(addresses)) + addresses


def request_once(port, ctx, target, session=None, proxy_from=None, bind=None):
    """One request on a new TLS connection to 127.0.0.1:port, with a PROXY v2 header first when `proxy_from`
    (a node's own listener) and from the local address `bind`: (resumed?, response or None, session)."""
    raw = socket.create_connection(("127.0.0.1", port), timeout=h.IO_TIMEOUT,
                                   source_address=(bind, 0) if bind else None)
    if proxy_from:
        raw.sendall(proxy_v2_header((proxy_from, 40000), ("127.0.0.1", port)))
    with ctx.wrap_socket(raw, server_hostname="localhost", session=session) as tls:
        tls.sendall(("POST %s HTTP/1.1\r\nHost: localhost\r\nContent-Length: 1\r\nConnection: close\r\n\r\nx"
                     % target).encode())
        response = h.read_response(tls)
        return tls.session_reused, response, tls.session  # TLS 1.3 tickets arrive after the handshake


def eas_target(device_id, cmd="Sync", user="alice"):
    return "%s?Cmd=%s&User=%s&DeviceId=%s&DeviceType=iPhone" % (EAS, cmd, user, device_id)


def metric_sum(text, name):
    """Sum of every sample of `name` (any labels) in a Prometheus text page."""
    return sum(float(m.group(1)) for m in re.finditer(r"^%s(?:\{[^}]*\})? (\S+)$" % re.escape(name), text, re.M))


class Node:
    """One easedge of the farm: PROXY v2 on its listener, an admin listener, the farm's keys and CRL file."""

    def __init__(self, farm, index):
        self.farm, self.index = farm, index
        self.port = self.admin = 0
        self.proxy = None

    def config(self, upstream):
        config = h.base_config(
            "",
            listen=[{"address": "127.0.0.1:%d" % self.port, "proxy_protocol": True}],
            tls={"crl": [self.farm.crl], "session_ticket_keys": self.farm.keys,
                 "revocation": {"refresh_seconds": REFRESH}},
            timeouts={"drain_delay_seconds": DRAIN_DELAY, "drain_seconds": 10},
            admin={"listen": "127.0.0.1:%d" % self.admin},
            threads=1)
        config["upstream"] = upstream  # {"url": ...} or {"servers": [...]}
        return config

    def start(self, upstream=None):
        """Starts (again, on the same ports once known) and waits for its admin listener."""
        self.upstream = upstream or self.farm.upstream
        self.proxy = h.Easedge(self.farm.lab, self.config(self.upstream), name="farm-node%d.yaml" % self.index)
        self.port = self.proxy.port
        m = h.wait_until(lambda: re.search(r"admin listening on \S+:(\d+)", self.proxy.child.output()), 5)
        if not m:
            raise RuntimeError("node %d has no admin listener:\n%s" % (self.index, self.proxy.child.output()))
        self.admin = int(m.group(1))
        time.sleep(0.5)  # signal handlers are installed after the start-up block (see test_operations.py)

    def reconfigure(self, upstream):
        """Rewrites the node's config with `upstream` and reloads it (SIGHUP)."""
        h.write_config(self.farm.lab, self.config(upstream), name="farm-node%d.yaml" % self.index)
        before = self.proxy.child.output().count("reload done")
        self.proxy.child.proc.send_signal(signal.SIGHUP)
        if not h.wait_until(lambda: self.proxy.child.output().count("reload done") > before, 10):
            raise RuntimeError("node %d did not reload:\n%s" % (self.index, self.proxy.child.output()[-3000:]))
        self.upstream = upstream

    def metrics(self):
        return h.admin_get(self.admin, "/metrics")[1]

    def ready(self):
        return h.admin_get(self.admin, "/readyz")[0] == 200

    def stop(self):
        if self.proxy:
            self.proxy.stop()


class Farm:
    """Two stand-ins, three nodes, HAProxy on deploy/haproxy/easedge-farm.cfg.in."""

    def __init__(self, lab):
        self.lab = lab
        self.dir = lab.fresh_dir("farm")
        self.keys = os.path.join(self.dir, "ticket-keys")
        with open(self.keys, "w") as f:
            f.write("\n".join(base64.b64encode(os.urandom(80)).decode() for _ in range(2)) + "\n")
        self.crl = os.path.join(self.dir, "issuing.crl")
        shutil.copy(lab.path("issuing.crl"), self.crl)
        self.standins = [h.Standin(lab), h.Standin(lab)]
        self.upstream = {"url": self.standins[0].url}
        self.nodes = [Node(self, i + 1) for i in range(NODES)]
        for node in self.nodes:
            node.start()
        self.port = h.unused_port()
        values = {"MAXCONN": "2000", "BIND": "127.0.0.1:%d" % self.port}
        for node in self.nodes:
            values["NODE%d" % node.index] = "127.0.0.1:%d" % node.port
            values["NODE%d_ADMIN" % node.index] = str(node.admin)
        with open(HAPROXY_CONFIG) as f:
            text = re.sub(r"@(\w+)@", lambda m: values.get(m.group(1), m.group(0)), f.read())
        self.haproxy_config = os.path.join(self.dir, "haproxy.cfg")
        with open(self.haproxy_config, "w") as f:
            f.write(text)
        check = subprocess.run(["haproxy", "-c", "-f", self.haproxy_config], capture_output=True, text=True)
        if check.returncode != 0:
            raise RuntimeError("haproxy -c refused the farm config:\n" + check.stdout + check.stderr)
        self.haproxy_log = open(os.path.join(self.dir, "haproxy.log"), "w")
        self.haproxy = subprocess.Popen(["haproxy", "-db", "-f", self.haproxy_config], stdin=subprocess.DEVNULL,
                                        stdout=self.haproxy_log, stderr=subprocess.STDOUT)
        if not h.wait_until(lambda: self.haproxy.poll() is not None or self.can_connect(), 10) or self.haproxy.poll():
            raise RuntimeError("haproxy did not start: see " + self.haproxy_log.name)
        time.sleep(CHECK_SETTLE)

    def can_connect(self):
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
            return True
        except OSError:
            return False

    def easbench(self, connections, duration, timeout=120):
        """easbench's sync scenario through HAProxy as alice: its --json result."""
        out = os.path.join(self.lab.fresh_dir("easbench"), "result.json")
        cert, key = self.lab.device("alice")
        argv = [EASBENCH_BIN, "--url", "https://127.0.0.1:%d%s" % (self.port, EAS), "--ca",
                self.lab.path("ca-bundle.pem"), "--cert", cert, "--key", key, "--scenario", "sync",
                "--connections", str(connections), "--duration", str(duration), "--threads", "1", "--json", out]
        run = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
        if not os.path.exists(out):
            raise RuntimeError("easbench wrote no result (exit %d):\n%s" % (run.returncode, run.stderr))
        with open(out) as f:
            result = json.load(f)
        result["stdout"] = run.stdout
        return result

    def requests_per_node(self):
        return [metric_sum(node.metrics(), "easedge_requests_total") for node in self.nodes]

    def restart(self, node):
        """Starts a stopped node again on its ports and waits until HAProxy sends it connections."""
        node.stop()
        node.start(node.upstream)
        if not h.wait_until(node.ready, 10):
            raise RuntimeError("node %d is not ready after a restart" % node.index)
        time.sleep(CHECK_SETTLE)

    def stop(self):
        if self.haproxy.poll() is None:
            self.haproxy.terminate()
            self.haproxy.wait(10)
        self.haproxy_log.close()
        for node in self.nodes:  # every node drains at the same time
            if node.proxy.child.alive():
                node.proxy.child.proc.send_signal(signal.SIGTERM)
        for node in self.nodes:
            node.stop()
        for standin in self.standins:
            standin.stop()


class Farm14(unittest.TestCase):
    """Issue 14, item 5, in the order (a) to (g); the destructive ones restart what they stop."""

    def test_a_every_node_serves_without_errors(self):
        before = farm.requests_per_node()
        result = farm.easbench(connections=12, duration=4)
        after = farm.requests_per_node()
        # The figures docs/scale-out.md quotes.
        print("\nfarm (a): %d requests, %.1f req/s, p50 %.2f ms, p99 %.2f ms, %d errors; per node %s" % (
            result["requests"], result["rate_per_s"], result["latency_ms"]["p50"], result["latency_ms"]["p99"],
            result["errors"], [int(a - b) for a, b in zip(after, before)]), file=sys.stderr)
        self.assertGreater(result["requests"], 100, result["stdout"])
        self.assertEqual(result["errors"], 0, result["stdout"])
        for node, b, a in zip(farm.nodes, before, after):
            self.assertGreater(a - b, 0, "node %d served nothing" % node.index)

    def test_b_sigterm_under_load_fails_no_request(self):
        node = farm.nodes[1]
        bench = {}
        runner = threading.Thread(target=lambda: bench.update(farm.easbench(connections=12, duration=10)))
        runner.start()
        time.sleep(2)
        node.proxy.child.proc.send_signal(signal.SIGTERM)
        signalled = time.monotonic()
        self.assertTrue(h.wait_until(lambda: h.admin_get(node.admin, "/readyz")[0] == 503, 1),
                        "/readyz did not fail at once on SIGTERM")
        self.assertEqual(node.proxy.child.proc.wait(30), 0, node.proxy.child.output()[-3000:])
        stopped = time.monotonic() - signalled
        runner.join(60)
        print("\nfarm (b): node 2 exited 0 %.1f s after SIGTERM; easbench %d requests, %d errors" % (
            stopped, bench["requests"], bench["errors"]), file=sys.stderr)
        self.assertEqual(bench["errors"], 0, bench["stdout"])
        self.assertGreater(bench["requests"], 100, bench["stdout"])
        farm.restart(node)

    def test_c_kill_9_fails_only_what_was_in_flight_on_that_node(self):
        node = farm.nodes[2]
        connections = 12
        bench = {}
        runner = threading.Thread(target=lambda: bench.update(farm.easbench(connections=connections, duration=6)))
        runner.start()
        time.sleep(2)
        node.proxy.child.proc.kill()
        node.proxy.child.proc.wait(10)
        killed = time.monotonic()
        runner.join(60)
        # Each connection has at most one request in flight; only those on the killed node can fail.
        self.assertLessEqual(bench["errors"], connections, bench["stdout"])
        # Every later request succeeds, also before HAProxy's checks notice: a refused connect is redispatched.
        after = farm.easbench(connections=connections, duration=3)
        print("\nfarm (c): run with kill -9: %d requests, %d errors (in flight on node 3); run right after: "
              "%d requests, %d errors" % (bench["requests"], bench["errors"], after["requests"], after["errors"]),
              file=sys.stderr)
        self.assertLess(time.monotonic() - killed, 60)
        self.assertEqual(after["errors"], 0, after["stdout"])
        self.assertGreater(after["requests"], 50, after["stdout"])
        farm.restart(node)

    def test_d_a_device_resumes_on_every_node_and_revocation_still_applies(self):
        ctx = h.client_context(lab, "alice")
        first, second, third = farm.nodes
        _, response, session = request_once(first.port, ctx, eas_target("FARMD1"), proxy_from=DEVICE_ADDRESS)
        self.assertEqual(response.status, 200, response)
        for node in (second, third):
            reused, response, _ = request_once(node.port, ctx, eas_target("FARMD2"), session, proxy_from=DEVICE_ADDRESS)
            self.assertTrue(reused, "node %d did not resume node 1's ticket" % node.index)
            self.assertEqual(response.status, 200, response)
        # After a reload (SIGHUP re-reads the key file) and after a restart the same ticket still resumes.
        second.reconfigure(second.upstream)
        farm.restart(third)
        for node in (second, third):
            reused, response, _ = request_once(node.port, ctx, eas_target("FARMD3"), session, proxy_from=DEVICE_ADDRESS)
            self.assertTrue(reused, "node %d did not resume after a reload or restart" % node.index)
            self.assertEqual(response.status, 200, response)
        # A revoked device's ticket resumes elsewhere, and is refused there too.
        revoked = h.client_context(lab, "revoked")
        _, response, session = request_once(first.port, revoked, eas_target("FARMD4", user="carol"),
                                            proxy_from=DEVICE_ADDRESS)
        self.assertEqual(response.status, 403, response)
        reused, response, _ = request_once(second.port, revoked, eas_target("FARMD5", user="carol"), session,
                                           proxy_from=DEVICE_ADDRESS)
        self.assertTrue(reused)
        self.assertEqual(response.status, 403, response)
        self.assertIn(b"403.13", response.body)
        # Through HAProxy, a device's next connections land on other nodes and resume there.
        before = [metric_sum(n.metrics(), "easedge_tls_resumed_handshakes_total") for n in farm.nodes]
        _, response, session = request_once(farm.port, ctx, eas_target("FARMD6"))
        for _ in range(NODES * 2):
            reused, response, _ = request_once(farm.port, ctx, eas_target("FARMD7"), session)
            self.assertTrue(reused)
            self.assertEqual(response.status, 200, response)
        after = [metric_sum(n.metrics(), "easedge_tls_resumed_handshakes_total") for n in farm.nodes]
        print("\nfarm (d): node 1's ticket resumed on nodes 2 and 3, after a reload and a restart; revoked device "
              "403.13 on a resumed session; through HAProxy %d of %d connections resumed, per node %s" % (
                  sum(after) - sum(before), NODES * 2, [int(a - b) for a, b in zip(after, before)]), file=sys.stderr)
        self.assertEqual(sum(after) - sum(before), NODES * 2)
        self.assertGreaterEqual(sum(1 for b, a in zip(before, after) if a > b), 2, (before, after))

    def test_e_one_exchange_down_fails_nothing_503_only_when_both_are(self):
        a, b = farm.standins
        servers = {"servers": [a.url, b.url]}
        for node in farm.nodes:
            node.reconfigure(servers)
        try:
            both = farm.easbench(connections=6, duration=2)
            self.assertEqual(both["errors"], 0, both["stdout"])
            b.stop()
            one = farm.easbench(connections=6, duration=3)
            self.assertEqual(one["errors"], 0, one["stdout"])
            a.stop()
            ctx = h.client_context(lab, "alice")
            statuses = []
            for node in farm.nodes:
                _, response, _ = request_once(node.port, ctx, eas_target("FARME1"), proxy_from=DEVICE_ADDRESS)
                statuses.append(response.status)
                self.assertEqual(response.status, 503, response)
            print("\nfarm (e): both servers up: %d requests, %d errors; server 2 stopped: %d requests, %d errors; "
                  "both stopped: one request per node answered %s" % (
                      both["requests"], both["errors"], one["requests"], one["errors"], statuses), file=sys.stderr)
        finally:
            farm.standins = [s if s.child.alive() else h.Standin(lab) for s in farm.standins]
            farm.upstream = {"url": farm.standins[0].url}
            ctx = h.client_context(lab, "alice")
            for node in farm.nodes:
                node.reconfigure(farm.upstream)
                request_once(node.port, ctx, eas_target("FARME2"), proxy_from=DEVICE_ADDRESS)  # /readyz: upstream ok
                self.assertTrue(h.wait_until(node.ready, 5), h.admin_get(node.admin, "/readyz"))
            time.sleep(CHECK_SETTLE)

    def test_f_every_node_forwards_the_device_address_from_proxy_v2(self):
        ctx = h.client_context(lab, "alice")
        before = farm.requests_per_node()
        for i in range(NODES * 2):
            _, response, _ = request_once(farm.port, ctx, eas_target("FARMF%d" % i), bind=DEVICE_ADDRESS)
            self.assertEqual(response.status, 200, response)
            forwarded = [v for k, v in json.loads(response.body)["headers"] if k.lower() == "x-forwarded-for"]
            self.assertEqual(forwarded, [DEVICE_ADDRESS])
        after = farm.requests_per_node()
        self.assertTrue(all(a > b for a, b in zip(after, before)), (before, after))

    def test_g_a_crl_update_reaches_every_node_within_its_refresh_interval(self):
        ctx = h.client_context(lab, "bob")
        target = eas_target("FARMG", user="bob")
        for node in farm.nodes:
            _, response, _ = request_once(node.port, ctx, target, proxy_from=DEVICE_ADDRESS)
            self.assertEqual(response.status, 200, response)
        ca = ["openssl", "ca", "-batch", "-config", lab.path("ca", "openssl.cnf"), "-name", "issuing"]
        subprocess.run(ca + ["-revoke", lab.path("devices", "bob.pem"), "-crl_reason", "keyCompromise"],
                       check=True, capture_output=True, timeout=30)
        subprocess.run(ca + ["-gencrl", "-out", farm.crl + ".new"], check=True, capture_output=True, timeout=30)
        os.replace(farm.crl + ".new", farm.crl)
        published = time.monotonic()

        def refused(node):
            _, response, _ = request_once(node.port, ctx, target, proxy_from=DEVICE_ADDRESS)
            return response.status == 403 and b"403.13" in response.body

        for node in farm.nodes:
            self.assertTrue(h.wait_until(lambda: refused(node), REFRESH + 2), "node %d never refused bob" % node.index)
        self.assertLessEqual(time.monotonic() - published, REFRESH + 1.5)


if __name__ == "__main__":
    unittest.main()
