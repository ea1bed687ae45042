#!/usr/bin/env python3
"""Issue 7's revocation behaviour as a device sees it: CRLs from CDPs over HTTP, OCSP from `openssl ocsp`,
file reloads, expired and garbage CRLs, both on_unavailable modes, and revocation reaching an open
keep-alive connection with no restart.

The device PKI is made here with the openssl CLI (`openssl ca`, so revoking and publishing are the real
thing), its certificates carry CDP and AIA URLs on loopback. The server certificate comes from the lab PKI.

  EASEDGE_BIN=build/proxy/easedge STANDIN_BIN=build/bench/standin-exchange python3 tests/integration/test_revocation.py -v
"""

import functools
import http.client
import http.server
import os
import re
import socket
import ssl
import subprocess
import sys
import threading
import time
import unittest
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

EAS = "/Microsoft-Server-ActiveSync?Cmd=Sync&User=alice&DeviceId=REVOCATIONTEST&DeviceType=iPhone"
REFRESH = 1           # tls.revocation.refresh_seconds used by these tests
WAIT = 15.0           # longest wait for a change to show (REFRESH plus generous slack for a loaded CI box)

lab = None


def setUpModule():
    global lab
    lab = h.module_lab("EASEDGE_BIN", "STANDIN_BIN")


def tearDownModule():
    h.end_module_lab()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


CA_CONFIG = """
[ca]
default_ca = issuing
[issuing]
dir = {dir}
database = $dir/index.txt
new_certs_dir = $dir/newcerts
certificate = $dir/issuing.pem
private_key = $dir/issuing.key
serial = $dir/serial
crlnumber = $dir/crlnumber
default_md = sha256
default_days = 30
default_crl_hours = 1
policy = anything
unique_subject = no
copy_extensions = none
[anything]
commonName = supplied
[device]
basicConstraints = CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = clientAuth
subjectAltName = otherName:1.3.6.1.4.1.311.20.2.3;UTF8:${{ENV::UPN}}
crlDistributionPoints = URI:${{ENV::CDP}}
authorityInfoAccess = OCSP;URI:${{ENV::OCSP}}
[device_no_urls]
basicConstraints = CA:FALSE
extendedKeyUsage = clientAuth
subjectAltName = otherName:1.3.6.1.4.1.311.20.2.3;UTF8:${{ENV::UPN}}
[issuing_ca]
basicConstraints = critical, CA:TRUE, pathlen:0
keyUsage = critical, keyCertSign, cRLSign
[responder]
basicConstraints = CA:FALSE
extendedKeyUsage = OCSPSigning
"""


# The device extensions read UPN/CDP/OCSP from the environment; every other openssl run needs them defined too.
PLACEHOLDERS = {"UPN": "-", "CDP": "-", "OCSP": "-"}


class DevicePki:
    """Root CA -> issuing CA (an `openssl ca` database) -> device certificates with CDP/AIA on loopback."""

    def __init__(self, directory, cdp_url, ocsp_url):
        self.dir = directory
        self.cdp_url = cdp_url
        self.ocsp_url = ocsp_url
        os.makedirs(os.path.join(directory, "newcerts"))
        open(os.path.join(directory, "index.txt"), "w").close()
        with open(os.path.join(directory, "serial"), "w") as f:
            f.write("1000\n")
        with open(os.path.join(directory, "crlnumber"), "w") as f:
            f.write("01\n")
        self.config = os.path.join(directory, "ca.cnf")
        with open(self.config, "w") as f:
            f.write(CA_CONFIG.format(dir=directory))
        self.run("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                 "-keyout", "root.key", "-out", "root.pem", "-days", "30", "-subj", "/CN=Revocation Test Root",
                 "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign")
        self.run("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "issuing.key",
                 "-out", "issuing.csr", "-subj", "/CN=Revocation Test Issuing CA")
        self.run("x509", "-req", "-in", "issuing.csr", "-CA", "root.pem", "-CAkey", "root.key", "-CAcreateserial",
                 "-out", "issuing.pem", "-days", "30", "-extfile", self.config, "-extensions", "issuing_ca")
        with open(self.path("ca-bundle.pem"), "w") as out:
            for name in ("issuing.pem", "root.pem"):
                with open(self.path(name)) as f:
                    out.write(f.read())

    def path(self, name):
        return os.path.join(self.dir, name)

    def run(self, *args, env=None):
        result = subprocess.run(["openssl"] + list(args), cwd=self.dir, capture_output=True, text=True,
                                timeout=60, env=dict(os.environ, **dict(PLACEHOLDERS, **(env or {}))))
        if result.returncode != 0:
            raise RuntimeError("openssl %s failed: %s" % (" ".join(args), result.stderr))
        return result.stdout

    def issue(self, name, upn="alice@corp.example.test", cdp_url=None, ocsp_url=None, urls=True):
        env = {"UPN": upn, "CDP": cdp_url or self.cdp_url, "OCSP": ocsp_url or self.ocsp_url}
        self.run("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", name + ".key",
                 "-out", name + ".csr", "-subj", "/CN=WorkspaceONEUEM." + name, env=env)
        self.run("ca", "-batch", "-config", self.config, "-in", name + ".csr", "-out", name + ".pem",
                 "-extensions", "device" if urls else "device_no_urls", "-notext", env=env)
        return self.path(name + ".pem"), self.path(name + ".key")

    def responder_cert(self):
        """A delegated OCSP signing certificate, as AD CS's Online Responder uses."""
        self.run("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "ocsp.key",
                 "-out", "ocsp.csr", "-subj", "/CN=Revocation Test OCSP")
        self.run("ca", "-batch", "-config", self.config, "-in", "ocsp.csr", "-out", "ocsp.pem",
                 "-extensions", "responder", "-notext")
        return self.path("ocsp.pem"), self.path("ocsp.key")

    def revoke(self, name, reason="keyCompromise"):
        self.run("ca", "-config", self.config, "-revoke", self.path(name + ".pem"), "-crl_reason", reason)

    def publish_crl(self, target, last_update=None, next_update=None, der=True):
        """Writes a CRL of the issuing CA to `target` atomically (rename), as a publishing job would."""
        tmp = target + ".tmp.pem"
        args = ["ca", "-config", self.config, "-gencrl", "-out", tmp]
        if last_update:
            args += ["-crl_lastupdate", last_update]
        if next_update:
            args += ["-crl_nextupdate", next_update]
        self.run(*args)
        if der:
            self.run("crl", "-in", tmp, "-outform", "DER", "-out", target + ".tmp")
            os.remove(tmp)
            tmp = target + ".tmp"
        os.replace(tmp, target)


class CrlServer:
    """python's http.server on 127.0.0.1:<ephemeral> serving a folder: the CDP."""

    def __init__(self, directory):
        handler = functools.partial(QuietHandler, directory=directory)
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, name):
        return "http://127.0.0.1:%d/%s" % (self.port, name)

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


class OcspResponder:
    """`openssl ocsp` answering from the CA database (it re-reads index.txt when it changes)."""

    def __init__(self, pki, port, signer):
        cert, key = signer
        d = lab.fresh_dir("ocsp")
        self.log = open(os.path.join(d, "ocsp.log"), "w")
        self.proc = subprocess.Popen(
            ["openssl", "ocsp", "-index", pki.path("index.txt"), "-port", str(port),
             "-rsigner", cert, "-rkey", key, "-CA", pki.path("issuing.pem"), "-nmin", "5", "-ignore_err"],
            stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT, cwd=d)
        # Wait for its ready line: a probe connection would block it (it serves one connection at a time
        # and waits for that connection's request).
        deadline = time.monotonic() + h.STARTUP_TIMEOUT
        while time.monotonic() < deadline:
            with open(self.log.name) as f:
                if "waiting for OCSP client connections" in f.read():
                    return
            time.sleep(0.1)
        self.stop()
        raise RuntimeError("openssl ocsp did not start")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(5)
        self.log.close()


class Device:
    """A device with its own keep-alive TLS connection to easedge."""

    def __init__(self, port, cert_and_key):
        self.port = port
        self.ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=lab.path("ca-bundle.pem"))
        self.ctx.load_cert_chain(*cert_and_key)
        self.conn = None

    def request(self, keep_alive=True):
        """(status, body) of one request; keep_alive reuses the connection of the previous request."""
        if self.conn is None or not keep_alive:
            self.close()
            self.conn = http.client.HTTPSConnection("127.0.0.1", self.port, context=self.ctx, timeout=h.IO_TIMEOUT)
        self.conn.request("POST", EAS, body=b"", headers={"Content-Type": "application/vnd.ms-sync.wbxml"})
        response = self.conn.getresponse()
        body = response.read().decode("utf-8", "replace")
        if response.will_close:
            self.close()
        return response.status, body

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def metrics(admin_port):
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % admin_port, timeout=h.IO_TIMEOUT) as r:
        return r.read().decode()


def metric_value(text, name, labels=""):
    m = re.search(r"^%s%s (\S+)$" % (re.escape(name), re.escape(labels)), text, re.M)
    return float(m.group(1)) if m else None


class RevocationCase(unittest.TestCase):
    """A device PKI, its CDP (http.server) and a stand-in; each test starts its own easedge."""

    @classmethod
    def setUpClass(cls):
        cls.served = lab.fresh_dir("cdp")
        cls.cdp = CrlServer(cls.served)
        cls.ocsp_port = free_port()
        cls.pki = DevicePki(lab.fresh_dir("devpki"), cls.cdp.url("issuing.crl"),
                            "http://127.0.0.1:%d" % cls.ocsp_port)
        cls.standin = h.Standin(lab)
        cls.served_crl = os.path.join(cls.served, "issuing.crl")

    @classmethod
    def tearDownClass(cls):
        cls.standin.stop()
        cls.cdp.stop()

    def setUp(self):
        self.proxies = []
        self.devices = []

    def tearDown(self):
        for d in self.devices:
            d.close()
        for p in self.proxies:
            p.stop()

    def device(self, proxy, cert_and_key):
        d = Device(proxy.port, cert_and_key)
        self.devices.append(d)
        return d

    def metrics(self, proxy):
        """The /metrics text, or None while easedge has no admin listener wired."""
        return metrics(proxy.admin_port) if proxy.admin_port else None

    def start(self, revocation, crl=(), admin=False):
        tls = {"client_ca": self.pki.path("ca-bundle.pem"), "crl": list(crl),
               "revocation": dict({"refresh_seconds": REFRESH}, **revocation)}
        sections = {"tls": tls}
        if admin:
            sections["admin"] = {"listen": "127.0.0.1:0"}
        proxy = h.Easedge(lab, h.base_config(self.standin.url, **sections), name=self.id().split(".")[-1] + ".yaml")
        self.proxies.append(proxy)
        proxy.admin_port = None
        if admin:
            m = h.wait_until(lambda: re.search(r"admin listening on \S+:(\d+)", proxy.child.output()), 2)
            proxy.admin_port = int(m.group(1)) if m else None
        return proxy

    def assert_admitted(self, proxy, result):
        self.assertEqual(result[0], 200, "%s\neasedge's log:\n%s" % (result[1], proxy.child.output()[-3000:]))

    def assert_refused_revoked(self, status, body):
        self.assertEqual(status, 403, body)
        self.assertIn("403.13", body)


class CdpTest(RevocationCase):
    def test_revoked_at_the_ca_is_refused_within_the_refresh_interval_also_on_an_open_connection(self):
        self.pki.publish_crl(self.served_crl)
        proxy = self.start({"fetch_cdp": True, "cache_dir": lab.fresh_dir("cache")})
        phone = self.device(proxy, self.pki.issue("cdp-open"))
        tablet = self.device(proxy, self.pki.issue("cdp-new"))
        self.assertEqual(phone.request()[0], 200)
        self.assertEqual(tablet.request()[0], 200)

        self.pki.revoke("cdp-open")
        self.pki.revoke("cdp-new")
        self.pki.publish_crl(self.served_crl)
        # The open keep-alive connection: its next request is refused, no restart, no reconnect.
        result = h.wait_until(lambda: (lambda r: r if r[0] == 403 else None)(phone.request()), WAIT)
        self.assertTrue(result, "revocation never reached the open connection")
        self.assert_refused_revoked(*result)
        self.assert_refused_revoked(*tablet.request(keep_alive=False))
        self.assertTrue(proxy.child.alive())

    def test_cdp_down_denies_or_allows_as_configured(self):
        dead = "http://127.0.0.1:%d/issuing.crl" % free_port()
        cert = self.pki.issue("cdp-down", cdp_url=dead)
        deny = self.start({"fetch_cdp": True, "on_unavailable": "deny"})
        self.assert_refused_revoked(*self.device(deny, cert).request())
        allow = self.start({"fetch_cdp": True, "on_unavailable": "allow"})
        self.assertEqual(self.device(allow, cert).request()[0], 200)

    def test_revoked_device_stays_refused_when_the_cdp_goes_down(self):
        served = lab.fresh_dir("cdp-flaky")
        cdp = CrlServer(served)
        crl = os.path.join(served, "issuing.crl")
        good = self.pki.issue("flaky-good", cdp_url=cdp.url("issuing.crl"))
        bad = self.pki.issue("flaky-bad", cdp_url=cdp.url("issuing.crl"))
        self.pki.revoke("flaky-bad")
        self.pki.publish_crl(crl)
        proxy = self.start({"fetch_cdp": True, "on_unavailable": "allow"})
        self.assertEqual(self.device(proxy, good).request()[0], 200)
        self.assert_refused_revoked(*self.device(proxy, bad).request())
        cdp.stop()
        time.sleep(3 * REFRESH)  # several failed refresh rounds: the last good CRL keeps answering
        self.assertEqual(self.device(proxy, good).request()[0], 200)
        self.assert_refused_revoked(*self.device(proxy, bad).request())


class CrlFileTest(RevocationCase):
    def crl_file(self, name, **kwargs):
        path = os.path.join(lab.fresh_dir("crlfile"), name)
        self.pki.publish_crl(path, **kwargs)
        return path

    def test_replaced_file_takes_effect_without_restart(self):
        cert = self.pki.issue("file-revoke", urls=False)
        path = self.crl_file("issuing.crl", der=False)
        proxy = self.start({}, crl=[path])
        device = self.device(proxy, cert)
        self.assertEqual(device.request()[0], 200)
        self.pki.revoke("file-revoke")
        self.pki.publish_crl(path, der=False)
        result = h.wait_until(lambda: (lambda r: r if r[0] == 403 else None)(device.request()), WAIT)
        self.assertTrue(result, "the replaced CRL file was never picked up")
        self.assert_refused_revoked(*result)

    def test_expired_crl_is_unavailable_unless_within_grace(self):
        cert = self.pki.issue("file-expired", urls=False)
        path = self.crl_file("old.crl", last_update="20200101000000Z", next_update="20200102000000Z")
        deny = self.start({}, crl=[path])
        status, body = self.device(deny, cert).request()
        self.assert_refused_revoked(status, body)
        lenient = self.start({"on_unavailable": "allow"}, crl=[path])
        self.assertEqual(self.device(lenient, cert).request()[0], 200)

    def test_garbage_file_keeps_the_last_good_crl_and_is_counted(self):
        good = self.pki.issue("garbage-good", urls=False)
        bad = self.pki.issue("garbage-bad", urls=False)
        self.pki.revoke("garbage-bad")
        path = self.crl_file("issuing.crl")
        proxy = self.start({}, crl=[path], admin=True)
        self.assertEqual(self.device(proxy, good).request()[0], 200)
        self.assert_refused_revoked(*self.device(proxy, bad).request())
        text = self.metrics(proxy)
        if text is not None:
            self.assertEqual(metric_value(text, "easedge_crl_load_failures_total"), 0, text)
        with open(path + ".tmp", "wb") as f:
            f.write(b"this is not a CRL")
        os.replace(path + ".tmp", path)
        self.assertTrue(h.wait_until(lambda: "keeping the last good CRL" in proxy.child.output(), WAIT))
        time.sleep(2 * REFRESH)  # more refresh rounds over the same garbage: counted once
        text = self.metrics(proxy)
        if text is not None:
            self.assertEqual(metric_value(text, "easedge_crl_load_failures_total"), 1, text)
        self.assertEqual(self.device(proxy, good).request()[0], 200)
        self.assert_refused_revoked(*self.device(proxy, bad).request())

    def test_unreadable_crl_at_start_names_the_key_and_file(self):
        path = os.path.join(lab.fresh_dir("badcrl"), "broken.crl")
        with open(path, "w") as f:
            f.write("garbage\n")
        config = h.write_config(lab, h.base_config(self.standin.url, tls={"client_ca": self.pki.path("ca-bundle.pem"),
                                                                           "crl": [path]}), name="broken.yaml")
        code, _, err = h.run_easedge("--check-config", config)
        self.assertNotEqual(code, 0)
        self.assertIn("tls.crl[0]", err)
        self.assertIn(path, err)


class OcspTest(RevocationCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        # openssl ocsp notices index.txt changes by mtime in whole seconds: issue before it starts.
        cls.device_cert = cls.pki.issue("ocsp-device")
        cls.responder = OcspResponder(cls.pki, cls.ocsp_port, cls.pki.responder_cert())

    @classmethod
    def tearDownClass(cls):
        cls.responder.stop()
        super().tearDownClass()

    def test_ocsp_good_then_revoked_reaches_the_open_connection(self):
        proxy = self.start({"ocsp": True}, admin=True)
        device = self.device(proxy, self.device_cert)
        self.assert_admitted(proxy, device.request())
        self.assert_admitted(proxy, device.request(keep_alive=False))  # a new connection: from the cache
        text = self.metrics(proxy)
        if text is not None:
            self.assertGreaterEqual(metric_value(text, "easedge_ocsp_requests_total"), 1, text)
            self.assertGreaterEqual(metric_value(text, "easedge_ocsp_cache_hits_total"), 1, text)
        time.sleep(1.1)  # so that openssl ocsp sees index.txt change (mtime in seconds)
        self.pki.revoke("ocsp-device")
        result = h.wait_until(lambda: (lambda r: r if r[0] == 403 else None)(device.request()), WAIT)
        self.assertTrue(result, "the OCSP revocation never reached the open connection")
        self.assert_refused_revoked(*result)

    def test_responder_down_denies_or_allows_as_configured(self):
        dead = "http://127.0.0.1:%d" % free_port()
        cert = self.pki.issue("ocsp-down", ocsp_url=dead)
        deny = self.start({"ocsp": True})
        self.assert_refused_revoked(*self.device(deny, cert).request())
        allow = self.start({"ocsp": True, "on_unavailable": "allow"})
        self.assertEqual(self.device(allow, cert).request()[0], 200)


if __name__ == "__main__":
    unittest.main()
