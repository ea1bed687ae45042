#!/usr/bin/env python3
"""easbench against easedge in front of standin-exchange: its counts equal the stand-in's request log exactly,
and bad input ends with one clear line and a non-zero exit, quickly.

Run by ctest (tests/integration/CMakeLists.txt), or by hand:
  EASBENCH_BIN=build/bench/easbench/easbench EASEDGE_BIN=build/proxy/easedge \
  STANDIN_BIN=build/bench/standin-exchange python3 tests/integration/test_easbench.py -v
"""

import json
import os
import re
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

EASBENCH_BIN = os.environ.get("EASBENCH_BIN", "")
UPN_DOMAIN = "corp.example.test"
JSON_FIELDS = {"scenario", "connections", "duration_s", "requests", "ok", "errors", "status_counts", "rate_per_s",
               "handshakes", "handshake_rate_per_s", "latency_ms"}
RUN_TIMEOUT = 120  # easbench bounds itself; this only catches a hang
PING_HOLD = 1

lab = None
standin = None
proxy = None


def setUpModule():
    global lab, standin, proxy
    reason = h.require_binaries("EASEDGE_BIN", "STANDIN_BIN")
    if reason:
        raise unittest.SkipTest(reason)
    if not (EASBENCH_BIN and os.access(EASBENCH_BIN, os.X_OK)):
        raise unittest.SkipTest("EASBENCH_BIN is not set to a built binary")
    lab = h.Lab()
    standin = h.Standin(lab, "--ping-hold", str(PING_HOLD))
    proxy = h.Easedge(lab, h.base_config(standin.url))


def tearDownModule():
    h._kill_all()
    if lab:
        lab.cleanup()


def easbench(*args, url=None, identity="minted", timeout=RUN_TIMEOUT, **flags):
    """Runs easbench to completion: (exit code, stdout, stderr, parsed --json or None).

    `args` are flags as a flat list; keyword `flags` (ca="...", device_ca_key="...") replace the defaults.
    """
    d = lab.fresh_dir("easbench")
    json_path = os.path.join(d, "result.json")
    options = {"url": url or proxy.url(), "ca": lab.path("ca-bundle.pem")}
    if identity == "minted":
        options.update(device_ca=lab.path("issuing-ca.pem"), device_ca_key=lab.path("issuing-ca.key"),
                       devices="20", upn_domain=UPN_DOMAIN)
    elif identity:
        options["cert"], options["key"] = lab.device(identity)
    options.update(flags)
    argv = [EASBENCH_BIN]
    for k, v in options.items():
        argv += ["--" + k.replace("_", "-"), v]
    argv += list(args) + ["--json", json_path]
    r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    result = None
    if os.path.exists(json_path):
        with open(json_path) as f:
            result = json.load(f)
    return r.returncode, r.stdout, r.stderr, result


class CountsMatchTheStandinLog(unittest.TestCase):
    """What easbench reports as ok is exactly what the stand-in logged as answered."""

    def run_and_count(self, *args):
        before = len(standin.requests())
        rc, out, err, result = easbench(*args)
        self.assertEqual(rc, 0, err)
        logged = standin.requests()[before:]
        self.assertIsNotNone(result, out)
        self.assertEqual(set(result), JSON_FIELDS)
        self.assertEqual(set(result["latency_ms"]), {"p50", "p90", "p99", "max"})
        self.assertGreater(result["ok"], 0, out + err)
        self.assertEqual(result["ok"], len(logged), "easbench ok vs stand-in log lines\n" + out)
        self.assertEqual(result["requests"], result["ok"] + result["errors"])
        ok_statuses = sum(n for code, n in result["status_counts"].items() if 200 <= int(code) < 300)
        self.assertEqual(ok_statuses, result["ok"])
        self.assertTrue(all(line["status"] == 200 for line in logged))
        # Every forwarded identity is one of the minted devices.
        users = {line["x_forwarded_user"] for line in logged}
        self.assertTrue(users <= {"user%d@%s" % (i, UPN_DOMAIN) for i in range(1, 21)}, users)
        return result, logged, out

    def test_sync_for_a_few_seconds(self):
        result, logged, out = self.run_and_count("--scenario", "sync", "--connections", "4", "--duration", "3")
        self.assertEqual(result["scenario"], "sync")
        self.assertEqual(result["connections"], 4)
        self.assertGreaterEqual(result["handshakes"], 4)
        self.assertTrue(all("Cmd=Sync" in line["target"] and line["body_bytes"] == 1024 for line in logged))
        self.assertRegex(out, r"easbench_cpu_s\s+[\d.]+")

    def test_handshake_requests_is_exact(self):
        result, logged, _ = self.run_and_count("--scenario", "handshake", "--connections", "3", "--requests", "30")
        self.assertEqual(result["requests"], 30)
        self.assertEqual(result["handshakes"], 30)  # a new TLS connection per request

    def test_open_loop_rate(self):
        result, _, _ = self.run_and_count("--scenario", "sync", "--connections", "2", "--requests", "20",
                                          "--rate", "50")
        self.assertEqual(result["requests"], 20)
        self.assertGreater(result["duration_s"], 0.3)  # 20 requests scheduled 20 ms apart

    def test_held_pings(self):
        result, logged, out = self.run_and_count("--scenario", "ping", "--connections", "10", "--requests", "10",
                                                 "--ping-hold", str(PING_HOLD))
        self.assertEqual(result["requests"], 10)
        self.assertTrue(all("Cmd=Ping" in line["target"] for line in logged))
        self.assertGreaterEqual(result["latency_ms"]["p50"], PING_HOLD * 1000 * 0.9)
        self.assertRegex(out, r"peak_held_pings\s+10\b")

    def test_upload_body_arrives_whole(self):
        result, logged, _ = self.run_and_count("--scenario", "upload", "--connections", "1", "--requests", "2",
                                               "--upload-bytes", "300000")
        self.assertEqual(result["ok"], 2)
        self.assertTrue(all(line["body_bytes"] == 300000 and "Cmd=SendMail" in line["target"] for line in logged))

    def test_one_certificate_from_files(self):
        before = len(standin.requests())
        rc, out, err, result = easbench("--scenario", "sync", "--connections", "2", "--requests", "10",
                                        identity="alice")
        self.assertEqual(rc, 0, err)
        logged = standin.requests()[before:]
        self.assertEqual(result["ok"], len(logged))
        self.assertTrue(all(line["x_forwarded_user"] == "alice@" + UPN_DOMAIN for line in logged))
        self.assertTrue(all("User=alice&" in line["target"] for line in logged))


class Resumption(unittest.TestCase):
    """--resume: every connection after a device's first resumes from the latest ticket, and says so."""

    def resumed_counts(self, out):
        return {k: int(re.search(r"^\s*%s\s+(\d+)$" % k, out, re.M).group(1))
                for k in ("handshakes_resumed", "handshakes_full", "resume_missed")}

    def test_each_device_resumes_after_its_first_handshake(self):
        before = len(standin.requests())
        rc, out, err, result = easbench("--resume", scenario="handshake", connections="3", requests="30")
        self.assertEqual(rc, 0, err)
        self.assertEqual(result["ok"], len(standin.requests()) - before)
        self.assertEqual(result["handshakes"], 30)
        self.assertEqual(self.resumed_counts(out),
                         {"handshakes_resumed": 27, "handshakes_full": 3, "resume_missed": 0}, out)

    def test_a_server_that_does_not_resume_fails_the_run(self):
        no_tickets = h.Easedge(lab, h.base_config(standin.url, tls={"session_tickets": False}))
        try:
            rc, out, err, result = easbench("--resume", url=no_tickets.url(), scenario="handshake",
                                            connections="2", requests="6")
        finally:
            no_tickets.stop()
        self.assertEqual(rc, 3, err)
        self.assertIn("does not resume", err)
        self.assertEqual(result["ok"], 6)  # the run itself completed and was written
        # Each of the 2 devices: a first full handshake, then 2 that should have resumed and did not.
        self.assertEqual(self.resumed_counts(out),
                         {"handshakes_resumed": 0, "handshakes_full": 6, "resume_missed": 4}, out)


class BadInput(unittest.TestCase):
    """One line naming the problem, a non-zero exit, and no hang."""

    def assert_refused(self, pattern, *args, url=None, identity="minted", **flags):
        options = dict(scenario="sync", connections="1", requests="1")
        options.update(flags)
        rc, out, err, result = easbench(*args, url=url, identity=identity, timeout=60, **options)
        self.assertNotEqual(rc, 0)
        lines = [l for l in err.splitlines() if l.strip()]
        self.assertEqual(len(lines), 1, err)
        self.assertTrue(lines[0].startswith("easbench: "), err)
        self.assertRegex(lines[0], pattern)
        self.assertIsNone(result)

    def test_unreachable_url(self):
        self.assert_refused(r"cannot connect to 127\.0\.0\.1:\d+: Connection refused",
                            url="https://127.0.0.1:%d/Microsoft-Server-ActiveSync" % h.unused_port())

    def test_not_loopback(self):
        self.assert_refused(r"not a loopback address", url="https://192.0.2.10:443/Microsoft-Server-ActiveSync")

    def test_missing_file(self):
        self.assert_refused(r"--device-ca-key: cannot read file", device_ca_key="/nonexistent/ca.key")

    def test_ca_key_not_matching(self):
        self.assert_refused(r"--device-ca-key .* does not match --device-ca", device_ca_key=lab.path("root-ca.key"))

    def test_device_key_not_matching(self):
        cert, _ = lab.device("alice")
        _, other = lab.device("bob")
        self.assert_refused(r"--key .* does not match --cert", identity=None, cert=cert, key=other)

    def test_server_not_trusted(self):
        self.assert_refused(r"TLS handshake .* failed: certificate verify failed", ca=lab.path("rogue-ca.pem"))

    def test_bad_arguments(self):
        self.assert_refused(r"exactly one of --duration or --requests", duration="1")
        self.assert_refused(r"--scenario: flood not in", scenario="flood")


if __name__ == "__main__":
    unittest.main()
