#!/usr/bin/env python3
"""Issue 15's operator console in a real browser: headless Chromium loads every page of a running easedge that
has seen traffic (devices that sync, a revoked one, hostile strings in a subject and a DeviceId), and the tests
read the DOM after the scripts ran. Screenshots go to $EASEDGE_CONSOLE_SCREENSHOTS (default
./console-screenshots). Also: the JSON API, the explain size limit and admin.auth.

  EASEDGE_BIN=build/proxy/easedge STANDIN_BIN=build/bench/standin/standin-exchange python3 tests/integration/test_console.py -v
"""

import json
import os
import re
import subprocess
import sys
import threading
import unittest
import urllib.error
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import browser  # noqa: E402
import harness as h  # noqa: E402

EAS = "/Microsoft-Server-ActiveSync?Cmd=%s&User=%s&DeviceId=%s&DeviceType=%s"
XSS_SUBJECT_CN = "<script>document.body.dataset.pwned='subject'<\\/script>"
# easedge refuses a DeviceId that is not letters and digits (400) before anything records it; DeviceType may be
# any printable ASCII without spaces, so the hostile markup rides there.
XSS_DEVICE_ID = "\"><img src=x>"
XSS_DEVICE_TYPE = "\"><img/src=\"x\"/onerror=\"document.body.dataset.pwned='device'\">"
SCREENSHOTS = os.environ.get("EASEDGE_CONSOLE_SCREENSHOTS", os.path.join(os.getcwd(), "console-screenshots"))

lab = None


def setUpModule():
    global lab
    lab = h.module_lab("EASEDGE_BIN", "STANDIN_BIN")


def tearDownModule():
    h.end_module_lab()


def hostile_device(directory):
    """A device certificate from the lab's issuing CA whose subject is a <script> element (no UPN: refused 403.16)."""
    key, csr, pem, ext = (os.path.join(directory, "hostile" + e) for e in (".key", ".csr", ".pem", ".ext"))
    with open(ext, "w") as f:
        f.write("extendedKeyUsage=clientAuth\nkeyUsage=digitalSignature\n")
    for argv in (["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", csr,
                  "-subj", "/CN=" + XSS_SUBJECT_CN],
                 ["x509", "-req", "-in", csr, "-CA", lab.path("issuing-ca.pem"), "-CAkey", lab.path("issuing-ca.key"),
                  "-CAcreateserial", "-CAserial", os.path.join(directory, "serial"), "-days", "2", "-extfile", ext,
                  "-out", pem]):
        subprocess.run(["openssl"] + argv, check=True, capture_output=True, timeout=30)
    return pem, key


def subject_of(pem):
    out = subprocess.run(["openssl", "x509", "-noout", "-subject", "-nameopt", "RFC2253", "-in", pem],
                         check=True, capture_output=True, text=True).stdout
    return out.strip().split("=", 1)[1]


def http(port, path, data=None, headers=None):
    request = urllib.request.Request("http://127.0.0.1:%d%s" % (port, path), data=data, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=h.IO_TIMEOUT) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def admin_port(proxy):
    m = h.wait_until(lambda: re.search(r"admin listening on \S+:(\d+)", proxy.child.output()), 5)
    return int(m.group(1))


class ConsoleCase(unittest.TestCase):
    """One stand-in and one easedge (LDIF mapping, admin listener) with traffic, shared by the tests."""

    @classmethod
    def setUpClass(cls):
        cls.standin = h.Standin(lab)
        config = h.base_config(cls.standin.url,
                               mapping={"directory": {"ldif": "users.ldif"}, "strong_binding": "full",
                                        "ntauth": ["issuing-ca.pem"]},
                               admin={"listen": "127.0.0.1:0"})
        cls.proxy = h.Easedge(lab, config, name="console.yaml")
        cls.admin = admin_port(cls.proxy)
        cls.hostile = hostile_device(lab.fresh_dir("hostile"))
        cls.revoked_subject = subject_of(lab.device("revoked")[0])
        cls.hostile_subject = subject_of(cls.hostile[0])
        cls.send_traffic()

    @classmethod
    def tearDownClass(cls):
        cls.proxy.stop()
        cls.standin.stop()

    @classmethod
    def send_traffic(cls):
        def sync(device, user, device_id, device_type="iPhone", extra=()):
            url = cls.proxy.url(EAS % ("Sync", user, urllib.parse.quote(device_id, safe=""),
                                       urllib.parse.quote(device_type, safe="")))
            return h.curl(lab, url, device=device, data="wbxml", extra=extra).status

        for _ in range(3):
            assert sync("alice", "alice", "ALICE0001") == 200
        assert sync("bob", "bob", "BOB0001", "Android") == 200
        for _ in range(2):
            assert sync("revoked", "revoked", "REVOKED0001") == 403
        assert sync("expired", "expired", "EXPIRED0001", XSS_DEVICE_TYPE) == 403
        assert sync("alice", "alice", XSS_DEVICE_ID) == 400
        pem, key = cls.hostile
        assert sync(None, "x", "HOSTILE0001", extra=("--cert", pem, "--key", key)) == 403


@unittest.skipUnless(browser.available(), "Debian's chromium is not installed (scripts/install-deps.sh --with-browser)")
class BrowserTest(ConsoleCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        os.makedirs(SCREENSHOTS, exist_ok=True)
        cls.browser = browser.Browser(lab.fresh_dir("chromium"))
        cls.base = "http://127.0.0.1:%d" % cls.admin

    @classmethod
    def tearDownClass(cls):
        cls.browser.close()
        super().tearDownClass()

    def open(self, path, ready="document.body && document.body.dataset.ready"):
        self.assertEqual(self.browser.open(self.base + path, ready), "true", self.browser.dom()[:2000])
        return self.browser.dom()

    def cells_of_row_with(self, text):
        """The cell texts of the first table row whose text contains `text`."""
        return self.browser.evaluate(
            "(() => { const row = [...document.querySelectorAll('#view tbody tr')].find(r => r.textContent.includes(%s));"
            " return row ? [...row.cells].map(c => c.textContent) : null; })()" % json.dumps(text))

    def assertNothingInjected(self):
        self.assertIsNone(self.browser.evaluate("document.body.dataset.pwned || null"))
        self.assertEqual(self.browser.evaluate("document.querySelectorAll('#view script, #view img').length"), 0)

    def test_overview_charts_update_from_the_api(self):
        stop = threading.Event()

        def keep_syncing():  # live traffic while the page polls, so the rates are not flat
            while not stop.is_set():
                h.curl(lab, self.proxy.url(EAS % ("Sync", "alice", "ALICE0001", "iPhone")), device="alice", data="wbxml")

        worker = threading.Thread(target=keep_syncing, daemon=True)
        worker.start()
        try:
            self.open("/?refresh=1")
            # Each poll adds a point to every chart; rates need two polls. Wait for lines of several points.
            self.assertTrue(self.browser.wait_for(
                "[...document.querySelectorAll('svg.chart polyline')].filter("
                "p => p.getAttribute('points').split(' ').length >= 8).length >= 5", 30))
        finally:
            stop.set()
            worker.join(30)
        text = self.browser.evaluate("document.getElementById('view').innerText")
        for label in ("Requests/s", "TLS handshakes/s", "Held requests", "Open device connections", "Upstream latency"):
            self.assertIn(label, text)
        self.assertEqual(self.cells_of_row_with("403.13"), ["403.13", "2"])
        self.assertIn("403.16", text)
        self.assertIn("403.17", text)
        self.assertTrue(self.browser.evaluate("document.querySelectorAll('svg.chart rect[height]').length > 2"))
        self.browser.screenshot(os.path.join(SCREENSHOTS, "overview.png"))

    def test_devices_show_refusals_and_render_hostile_strings_as_text(self):
        self.open("/devices")
        row = self.cells_of_row_with(self.revoked_subject)
        self.assertIsNotNone(row, self.browser.dom()[:3000])
        self.assertIn("403.13", row)
        self.assertIn("REVOKED0001", row)
        self.assertTrue(any(c.startswith("certificate_revoked") for c in row), row)
        # The <script> subject and the "><img DeviceType are table text, nothing more.
        hostile = self.cells_of_row_with("HOSTILE0001")
        self.assertIsNotNone(hostile, self.browser.dom()[:3000])
        self.assertIn("403.16", hostile)
        self.assertIn(self.hostile_subject, hostile)  # RFC 2253 text: CN=\\<script\\>...
        self.assertIn("<script>", self.hostile_subject.replace("\\", ""))
        self.assertIn(XSS_DEVICE_TYPE, self.cells_of_row_with("EXPIRED0001"))
        self.assertIn("403.17", self.cells_of_row_with("EXPIRED0001"))
        self.assertNothingInjected()
        # Most active devices and users.
        self.assertEqual(self.cells_of_row_with("ALICE0001")[:2], ["ALICE0001", "iPhone"])
        self.assertIsNotNone(self.cells_of_row_with("alice@corp.example.test"))
        self.browser.screenshot(os.path.join(SCREENSHOTS, "devices.png"))
        # The filter box narrows the refusals table.
        self.browser.evaluate("(() => { const f = document.getElementById('filter'); f.value = 'REVOKED0001';"
                              " f.dispatchEvent(new Event('input')); })()")
        rows = self.browser.evaluate("document.querySelectorAll('#refusals tbody tr').length")
        self.assertEqual(rows, 2)

    def test_revocation_shows_the_crl_and_its_next_update(self):
        self.open("/revocation")
        headers = self.browser.evaluate("[...document.querySelectorAll('#view th')].map(th => th.textContent)")
        self.assertIn("nextUpdate", headers)
        row = self.cells_of_row_with("issuing.crl")
        self.assertIsNotNone(row, self.browser.dom()[:3000])
        self.assertRegex(row[3], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
        self.assertRegex(row[4], r"\d+m$")
        self.assertTrue(row[6].startswith("ok at "), row)
        self.assertIn("deny", self.browser.evaluate("document.querySelector('#view dl').textContent"))
        self.browser.screenshot(os.path.join(SCREENSHOTS, "revocation.png"))

    def test_directory_shows_the_directory_and_upstream(self):
        self.open("/directory")
        text = self.browser.evaluate("document.getElementById('view').innerText")
        self.assertIn("ldif", text)
        self.assertIn("users.ldif", text)
        self.assertIsNotNone(self.cells_of_row_with(self.standin.url))
        self.assertIn("ok", self.cells_of_row_with(self.standin.url))
        self.browser.screenshot(os.path.join(SCREENSHOTS, "directory.png"))

    def explain(self, device):
        self.open("/explain")
        with open(lab.device(device)[0]) as f:
            pem = f.read()
        self.browser.evaluate("(() => { document.getElementById('pem').value = %s;"
                              " document.getElementById('explain-form').requestSubmit(); })()" % json.dumps(pem))
        self.assertTrue(self.browser.wait_for("document.body.dataset.explained === 'true'"))
        return self.browser.evaluate("document.getElementById('result').innerText")

    def test_explain_a_revoked_and_a_mapped_certificate(self):
        text = self.explain("revoked")
        self.assertIn("revoked", text)
        self.assertIn("valid", text)  # the chain itself is fine
        text = self.explain("bob")
        self.assertIn("mapped", text)
        self.assertIn("CN=bob,CN=Users", text)
        self.assertIn("X509:<I>", text)  # the strong altSecurityIdentities values map-cert prints
        self.assertNothingInjected()
        self.browser.screenshot(os.path.join(SCREENSHOTS, "explain.png"))


class ApiTest(ConsoleCase):
    def test_json_endpoints(self):
        status, body = http(self.admin, "/api/refusals")
        self.assertEqual(status, 200)
        rows = json.loads(body)["refusals"]
        revoked = [r for r in rows if r["reason"] == "certificate_revoked"]
        self.assertEqual(len(revoked), 2)
        self.assertEqual(revoked[0]["subject"], self.revoked_subject)
        self.assertEqual(revoked[0]["status"], "403.13")
        self.assertEqual(revoked[0]["device_id"], "REVOKED0001")
        self.assertEqual(revoked[0]["cmd"], "Sync")
        self.assertNotIn("<", body)  # escaped for browsers, same JSON value
        for path in ("/api/overview", "/api/activity", "/api/revocation", "/api/directory"):
            status, body = http(self.admin, path)
            self.assertEqual(status, 200, path)
            json.loads(body)
        self.assertEqual(json.loads(http(self.admin, "/api/overview")[1])["refusals"]["403.13"], 2)
        self.assertEqual(http(self.admin, "/healthz"), (200, "ok\n"))
        self.assertEqual(http(self.admin, "/nowhere")[0], 404)

    def test_explain_matches_map_cert_and_has_a_size_limit(self):
        with open(lab.device("bob")[0], "rb") as f:
            pem = f.read()
        status, body = http(self.admin, "/api/explain", data=pem)
        self.assertEqual(status, 200, body)
        explained = json.loads(body)
        code, out, err = h.run_easedge("map-cert", "--config", self.proxy.config_path, lab.device("bob")[0], "--json")
        self.assertEqual(code, 0, err)
        self.assertEqual(explained["mapping"], json.loads(out))
        self.assertEqual(explained["chain"]["status"], "valid")
        self.assertEqual(explained["revocation"]["status"], "good")
        self.assertEqual(http(self.admin, "/api/explain", data=b"not a certificate")[0], 400)
        self.assertEqual(http(self.admin, "/api/explain", data=b"x" * (65 * 1024))[0], 413)
        self.assertEqual(http(self.admin, "/healthz"), (200, "ok\n"))  # still serving


class AuthTest(unittest.TestCase):
    def check_config(self, admin, name):
        path = h.write_config(lab, h.base_config("http://127.0.0.1:9", admin=admin), name)
        return h.run_easedge("--check-config", path)

    def test_a_listener_off_loopback_needs_auth(self):
        code, _, err = self.check_config({"listen": "0.0.0.0:0"}, "open.yaml")
        self.assertNotEqual(code, 0)
        self.assertIn("admin.auth", err)
        code, _, err = self.check_config({"listen": "0.0.0.0:0", "auth": "token", "token_file": "missing.token"},
                                         "missing.yaml")
        self.assertNotEqual(code, 0)
        self.assertIn("admin.token_file", err)
        self.assertIn("missing.token", err)
        # --check-config builds the admin listener's TLS context too: a key of another certificate is refused.
        code, _, err = self.check_config({"listen": "0.0.0.0:0", "auth": "client_certificate",
                                          "client_ca": "rogue-ca.pem", "certificate": "server-chain.pem",
                                          "private_key": "devices/alice.key"}, "mismatch.yaml")
        self.assertNotEqual(code, 0)
        self.assertIn("admin.private_key", err)
        self.assertIn("alice.key", err)

    def test_the_token_guards_the_api(self):
        token = "console-test-token-0123456789"
        with open(lab.path("admin.token"), "w") as f:
            f.write(token + "\n")
        standin = h.Standin(lab)
        proxy = h.Easedge(lab, h.base_config(standin.url, admin={"listen": "127.0.0.1:0", "auth": "token",
                                                                 "token_file": "admin.token"}), name="token.yaml")
        try:
            port = admin_port(proxy)
            self.assertEqual(http(port, "/api/overview")[0], 401)
            self.assertEqual(http(port, "/api/overview", headers={"Authorization": "Bearer nope"})[0], 401)
            self.assertEqual(http(port, "/api/overview", headers={"Authorization": "Bearer " + token})[0], 200)
            self.assertEqual(http(port, "/")[0], 200)  # the page itself holds no data
            self.assertEqual(http(port, "/metrics")[0], 200)
        finally:
            proxy.stop()
            standin.stop()

    def test_operator_certificates_guard_the_https_console(self):
        """admin.auth: client_certificate over HTTPS. The lab's rogue CA stands in for an operator CA: its
        certificate `untrusted` is the operator's; `alice` (issuing CA), trusted for ActiveSync, is not one."""
        standin = h.Standin(lab)
        proxy = h.Easedge(lab, h.base_config(standin.url, admin={
            "listen": "127.0.0.1:0", "auth": "client_certificate", "client_ca": "rogue-ca.pem",
            "certificate": "server-chain.pem", "private_key": "server.key"}), name="operator.yaml")
        try:
            base = "https://127.0.0.1:%d" % admin_port(proxy)
            # (a) The operator's certificate opens the pages and the API.
            overview = h.curl(lab, base + "/api/overview", device="untrusted")
            self.assertEqual(overview.status, 200, overview)
            self.assertIn("requests", overview.json())
            self.assertEqual(h.curl(lab, base + "/", device="untrusted").status, 200)
            h.wait_until(lambda: re.search(r"admin: GET /api/overview from 127\.0\.0\.1:\d+ by "
                                           r"CN=WorkspaceONEUEM\.alice", proxy.child.output()), 5)
            # (b) Without one, the console is refused; the probes answer as always.
            refused = h.curl(lab, base + "/api/overview")
            self.assertEqual(refused.status, 401, refused)
            self.assertIn(b"no client certificate", refused.body)
            self.assertEqual(h.curl(lab, base + "/").status, 401)
            for probe in ("/healthz", "/readyz", "/metrics"):
                self.assertEqual(h.curl(lab, base + probe).status, 200, probe)
            # (c) A certificate from another CA (a device's) is refused.
            device = h.curl(lab, base + "/api/refusals", device="alice")
            self.assertEqual(device.status, 401, device)
            self.assertIn(b"not trusted by admin.client_ca", device.body)
            # (d) Plain HTTP on the HTTPS port gets no answer, and the listener goes on serving.
            plain = h.curl(lab, base.replace("https://", "http://") + "/healthz", timeout=10)
            self.assertNotEqual(plain.returncode, 0, plain)
            self.assertEqual(plain.status, 0, plain)
            self.assertEqual(h.curl(lab, base + "/api/overview", device="untrusted").status, 200)
            self.assertTrue(proxy.child.alive())
        finally:
            proxy.stop()
            standin.stop()

    def test_a_published_admin_crl_withdraws_an_operator_without_a_reload(self):
        """admin.crl is compared every tls.revocation.refresh_seconds, as tls.crl is: the rogue CA (standing in
        for the operator CA) revokes its `untrusted` certificate, publishes a CRL, and the console refuses it."""
        ca = ["openssl", "ca", "-batch", "-config", lab.path("ca", "openssl.cnf"), "-name", "rogue"]
        crl = os.path.join(lab.fresh_dir("operator-crl"), "operators.crl")
        subprocess.run(ca + ["-gencrl", "-out", crl], check=True, capture_output=True, timeout=30)
        standin = h.Standin(lab)
        config = h.base_config(standin.url, admin={
            "listen": "127.0.0.1:0", "auth": "client_certificate", "client_ca": "rogue-ca.pem", "crl": [crl],
            "certificate": "server-chain.pem", "private_key": "server.key"})
        config["tls"]["revocation"] = {"refresh_seconds": 1}
        proxy = h.Easedge(lab, config, name="operator-crl.yaml")
        try:
            base = "https://127.0.0.1:%d" % admin_port(proxy)
            self.assertEqual(h.curl(lab, base + "/api/overview", device="untrusted").status, 200)
            subprocess.run(ca + ["-revoke", lab.path("devices", "untrusted.pem")], check=True, capture_output=True,
                           timeout=30)
            subprocess.run(ca + ["-gencrl", "-out", crl + ".new"], check=True, capture_output=True, timeout=30)
            os.replace(crl + ".new", crl)  # published atomically, as docs/operations.md asks
            refused = h.wait_until(lambda: h.curl(lab, base + "/api/overview", device="untrusted").status == 401,
                                   timeout=h.IO_TIMEOUT)
            self.assertTrue(refused, proxy.child.output())
            answer = h.curl(lab, base + "/api/overview", device="untrusted")
            self.assertIn(b"refused by admin.crl: certificate revoked", answer.body)
            self.assertIn("admin.crl changed: re-read", proxy.child.output())
            self.assertEqual(h.curl(lab, base + "/healthz").status, 200)
        finally:
            proxy.stop()
            standin.stop()


if __name__ == "__main__":
    unittest.main()
