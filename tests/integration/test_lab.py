#!/usr/bin/env python3
"""The test lab itself: scripts/make-lab-pki.sh produces the contract's files and verdicts, and
standin-exchange behaves as the demo, the tests and the benchmarks expect."""

import base64
import http.client
import json
import os
import socket
import struct
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

DOMAIN_SID = "S-1-5-21-1004336348-1177238915-682003330"
lab = None


def setUpModule():
    global lab
    lab = h.module_lab()


def tearDownModule():
    h.end_module_lab()


def openssl(*args, input_bytes=None):
    return subprocess.run(["openssl"] + list(args), capture_output=True, input=input_bytes, timeout=60)


def ldif_entries(path):
    """users.ldif as {dn: {attr: [values]}} (base64 values decoded to bytes)."""
    entries, current = {}, None
    with open(path) as f:
        lines = f.read().splitlines()
    for line in lines:
        if not line or line.startswith("#") or line.startswith("version:"):
            current = None if not line else current
            continue
        name, _, value = line.partition(":")
        if value.startswith(":"):
            value = base64.b64decode(value[1:].strip())
        else:
            value = value.strip()
        if name == "dn":
            current = entries.setdefault(value, {})
        else:
            current.setdefault(name, []).append(value)
    return entries


def sid_to_string(raw):
    revision, count = raw[0], raw[1]
    authority = int.from_bytes(raw[2:8], "big")
    subs = struct.unpack("<%dI" % count, raw[8:8 + 4 * count])
    return "S-%d-%d-" % (revision, authority) + "-".join(str(s) for s in subs)


class LabPki(unittest.TestCase):
    def test_contract_files_exist(self):
        names = ["root-ca.pem", "root-ca.key", "issuing-ca.pem", "issuing-ca.key", "ca-bundle.pem", "server.pem",
                 "server.key", "server-chain.pem", "issuing.crl", "root.crl", "users.ldif"]
        for device in h.DEVICES:
            names += ["devices/%s.%s" % (device, ext) for ext in ("pem", "key", "p12")]
        for name in names:
            self.assertTrue(os.path.getsize(lab.path(name)) > 0, name)

    def test_verify_verdicts(self):
        expected = {"alice": None, "bob": None, "noupn": None, "serverauth": None, "revoked": "error 23",
                    "expired": "error 10", "notyet": "error 9", "untrusted": "error 20"}
        for device, error in expected.items():
            with self.subTest(device=device):
                r = openssl("verify", "-CAfile", lab.path("ca-bundle.pem"), "-crl_check", "-CRLfile",
                            lab.path("issuing.crl"), lab.path("devices", device + ".pem"))
                text = (r.stdout + r.stderr).decode()
                if error is None:
                    self.assertEqual(r.returncode, 0, text)
                else:
                    self.assertNotEqual(r.returncode, 0, text)
                    self.assertIn(error, text)
        r = openssl("verify", "-CAfile", lab.path("ca-bundle.pem"), "-purpose", "sslclient",
                    lab.path("devices", "serverauth.pem"))
        self.assertIn(b"unsuitable certificate purpose", r.stdout + r.stderr)
        r = openssl("verify", "-CAfile", lab.path("ca-bundle.pem"), "-purpose", "sslserver",
                    lab.path("server-chain.pem"))
        self.assertEqual(r.returncode, 0, r.stderr)

    def test_device_certificate_shape(self):
        r = openssl("x509", "-in", lab.path("devices", "alice.pem"), "-noout", "-subject", "-ext",
                    "subjectAltName,extendedKeyUsage", "-nameopt", "RFC2253")
        text = r.stdout.decode()
        self.assertIn("subject=CN=WorkspaceONEUEM.alice", text)
        self.assertIn("UPN::alice@corp.example.test", text)
        self.assertIn("email:alice@corp.example.test", text)
        self.assertIn("TLS Web Client Authentication", text)
        r = openssl("x509", "-in", lab.path("devices", "noupn.pem"), "-noout", "-ext", "subjectAltName")
        self.assertNotIn(b"UPN", r.stdout)
        r = openssl("x509", "-in", lab.path("devices", "untrusted.pem"), "-noout", "-issuer")
        self.assertIn(b"Rogue CA", r.stdout)

    def test_sid_extension_der(self):
        der = lab.device_der("alice")
        sid = (DOMAIN_SID + "-1104").encode()
        expected = bytes.fromhex("303FA03D060A2B060104018237190201A02F042D") + sid
        self.assertIn(expected, der)
        self.assertNotIn(bytes.fromhex("2B0601040182371902"), lab.device_der("bob"))

    def test_users_ldif(self):
        entries = ldif_entries(lab.path("users.ldif"))
        rids = {"alice": 1104, "bob": 1105, "carol": 1106, "dave": 1107, "erin": 1108, "frank": 1109, "disabled": 1110}
        for login, rid in rids.items():
            with self.subTest(user=login):
                dn = "CN=%s,CN=Users,DC=corp,DC=example,DC=test" % login
                entry = entries[dn]
                self.assertEqual(entry["sAMAccountName"], [login])
                self.assertEqual(entry["userPrincipalName"], ["%s@corp.example.test" % login])
                self.assertEqual(sid_to_string(entry["objectSid"][0]), "%s-%d" % (DOMAIN_SID, rid))
                self.assertEqual(entry["userAccountControl"], ["514" if login == "disabled" else "512"])
        self.assertIn("CN=EAS Users,OU=Groups,DC=corp,DC=example,DC=test", entries)
        # bob's strong explicit binding: issuer in encoded order + serial with its bytes reversed.
        serial = openssl("x509", "-in", lab.path("devices", "bob.pem"), "-noout", "-serial").stdout.decode()
        serial = serial.strip().split("=")[1]
        reversed_serial = bytes.fromhex(serial)[::-1].hex()
        self.assertEqual(entries["CN=bob,CN=Users,DC=corp,DC=example,DC=test"]["altSecurityIdentities"],
                         ["X509:<I>DC=test,DC=example,DC=corp,CN=EASEdge Lab Issuing CA<SR>" + reversed_serial])

    def test_p12_opens_with_empty_password(self):
        r = openssl("pkcs12", "-in", lab.path("devices", "alice.p12"), "-passin", "pass:", "-nokeys")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn(b"WorkspaceONEUEM.alice", r.stdout)

    def test_rerun_regenerates_and_foreign_folder_is_refused(self):
        with tempfile.TemporaryDirectory() as d:
            out = os.path.join(d, "pki")
            for _ in range(2):
                r = subprocess.run([h.MAKE_LAB_PKI, out, "--key-type", "rsa2048"], capture_output=True)
                self.assertEqual(r.returncode, 0, r.stderr)
            r = openssl("x509", "-in", os.path.join(out, "devices", "alice.pem"), "-noout", "-text")
            self.assertIn(b"Public-Key: (2048 bit)", r.stdout)
            foreign = os.path.join(d, "foreign")
            os.makedirs(foreign)
            open(os.path.join(foreign, "keep.txt"), "w").close()
            r = subprocess.run([h.MAKE_LAB_PKI, foreign], capture_output=True)
            self.assertNotEqual(r.returncode, 0)
            self.assertTrue(os.path.exists(os.path.join(foreign, "keep.txt")))
            r = subprocess.run([h.MAKE_LAB_PKI, out, "--key-type", "dsa"], capture_output=True)
            self.assertEqual(r.returncode, 2)


class StandinExchange(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        reason = h.require_binaries("STANDIN_BIN")
        if reason:
            raise unittest.SkipTest(reason)
        cls.standin = h.Standin(lab, "--ping-hold", "1", "--response-bytes", "7")

    @classmethod
    def tearDownClass(cls):
        cls.standin.stop()

    def request(self, method, target, body=None, headers=None):
        conn = http.client.HTTPConnection("127.0.0.1", self.standin.port, timeout=h.IO_TIMEOUT)
        conn.request(method, target, body=body, headers=headers or {})
        resp = conn.getresponse()
        data = resp.read()
        conn.close()
        return resp, data

    def test_echo(self):
        body = os.urandom(100000)
        resp, data = self.request("POST", "/Microsoft-Server-ActiveSync?Cmd=Sync", body,
                                  {"X-Forwarded-User": "alice@corp.example.test", "X-Extra": "1"})
        self.assertEqual(resp.status, 200)
        self.assertEqual(resp.getheader("Content-Type"), "application/json")
        echo = json.loads(data)
        self.assertEqual(echo["method"], "POST")
        self.assertEqual(echo["target"], "/Microsoft-Server-ActiveSync?Cmd=Sync")
        self.assertIn(["X-Forwarded-User", "alice@corp.example.test"], echo["headers"])
        self.assertEqual(echo["body_bytes"], len(body))
        self.assertEqual(echo["body_sha256"], h.sha256_hex(body))
        self.assertEqual(echo["filler"], "x" * 7)
        last = self.standin.requests()[-1]
        self.assertEqual((last["method"], last["status"], last["x_forwarded_user"], last["body_bytes"]),
                         ("POST", 200, "alice@corp.example.test", len(body)))

    def test_options_discovery_headers(self):
        resp, _ = self.request("OPTIONS", "/Microsoft-Server-ActiveSync")
        self.assertEqual(resp.getheader("MS-ASProtocolVersions"), "2.5,12.0,12.1,14.0,14.1,16.0,16.1")
        self.assertIn("Ping", resp.getheader("MS-ASProtocolCommands"))
        self.assertEqual(resp.getheader("MS-Server-ActiveSync"), "15.1")

    def test_status_hooks(self):
        resp, _ = self.request("POST", "/x", b"", {"X-Standin-Status": "451"})
        self.assertEqual(resp.status, 451)
        self.assertTrue(resp.getheader("X-MS-Location"))
        resp, _ = self.request("POST", "/x", b"", {"X-Standin-Status": "503"})
        self.assertEqual((resp.status, resp.getheader("Retry-After")), (503, "30"))

    def held(self, target, headers=None):
        """True when the answer is held past 0.8 s (the stand-in holds pings 1 s here)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.standin.port, timeout=0.8)
        conn.request("POST", target, body=b"", headers=headers or {})
        try:
            conn.getresponse().read()
            return False
        except (socket.timeout, TimeoutError):
            return True
        finally:
            conn.close()

    def test_ping_hold_plain_and_base64(self):
        self.assertTrue(self.held("/Microsoft-Server-ActiveSync?Cmd=Ping&User=alice&DeviceId=A&DeviceType=iPhone"))
        # [MS-ASHTTP] spec example with the command code byte set to 18 (Ping).
        raw = bytearray(base64.b64decode("jAAJBAp2MTQwRGV2aWNlAApTbWFydFBob25l"))
        raw[1] = 18
        self.assertTrue(self.held("/Microsoft-Server-ActiveSync?" + base64.b64encode(bytes(raw)).decode()))
        self.assertFalse(self.held("/Microsoft-Server-ActiveSync?jAAJBAp2MTQwRGV2aWNlAApTbWFydFBob25l"))
        self.assertFalse(self.held("/Microsoft-Server-ActiveSync?Cmd=Sync"))
        self.assertTrue(self.held("/x", {"X-Standin-Delay-Ms": "2000"}))

    def test_expect_100_continue_and_keep_alive(self):
        sock = socket.create_connection(("127.0.0.1", self.standin.port), timeout=h.IO_TIMEOUT)
        sock.sendall(b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n")
        self.assertEqual(h.read_head(sock)[0], 100)
        sock.sendall(b"abc")
        status, headers = h.read_head(sock)
        self.assertEqual(status, 200)
        length = int(dict((k.lower(), v) for k, v in headers)["content-length"])
        body = b""
        while len(body) < length:
            body += sock.recv(length - len(body))
        self.assertEqual(json.loads(body)["body_bytes"], 3)
        sock.sendall(b"GET /again HTTP/1.1\r\nHost: a\r\n\r\n")
        self.assertEqual(h.read_head(sock)[0], 200)
        sock.close()

    def test_concurrent_connections(self):
        conns = [http.client.HTTPConnection("127.0.0.1", self.standin.port, timeout=h.IO_TIMEOUT) for _ in range(50)]
        for c in conns:
            c.request("GET", "/x")
        for c in conns:
            self.assertEqual(c.getresponse().status, 200)
            c.close()


if __name__ == "__main__":
    unittest.main()
