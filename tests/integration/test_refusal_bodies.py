#!/usr/bin/env python3
"""Issue 12, point 4: a refusal tells the device the class, the log tells the operator the detail.

For each refusal a hostile device can provoke on purpose (revoked, untrusted, expired certificate; no account;
required group missing) the body is the IIS-style status line plus a request id, and nothing the detail knows:
no CRL path, account name, SID, DN or subject. The same id is in the X-Request-Id header, the access log line
and easedge's log line, which has the detail. The access log's user is '-' until a certificate maps: the
query's User= is a claim, never logged as the user.

  EASEDGE_BIN=build/proxy/easedge STANDIN_BIN=build/bench/standin-exchange python3 tests/integration/test_refusal_bodies.py -v
"""

import json
import os
import sys
import time
import unittest
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

EAS = "/Microsoft-Server-ActiveSync"
DOMAIN = "corp.example.test"
BASE = "DC=corp,DC=example,DC=test"
# A group nobody is in: the required-group refusal names it in the log, never in the body.
REQUIRED_GROUP = "CN=Mobile Executives,OU=Groups," + BASE
# Whatever a refusal's detail may carry; none of it may reach a device.
INTERNALS = ("S-1-5-", "CN=", "DC=", "OU=", "@", "/", "\\", DOMAIN, ".crl", ".ldif", ".pem")
# The access log writer flushes at least every second.
LOG_WAIT = 10.0

lab = None


def setUpModule():
    global lab
    lab = h.module_lab("EASEDGE_BIN", "STANDIN_BIN")
    # alice's account renamed: her certificate (UPN and SID) then matches no account.
    with open(lab.path("users.ldif")) as f:
        ldif = f.read()
    renamed = ldif.replace("userPrincipalName: alice@", "userPrincipalName: alice.renamed@")
    assert renamed != ldif, "users.ldif has no userPrincipalName for alice"
    with open(lab.path("users-alice-renamed.ldif"), "w") as f:
        f.write(renamed)


def tearDownModule():
    h.end_module_lab()


def marker():
    return "RB" + uuid.uuid4().hex[:14].upper()


class RefusalCase(h.ProxyTestCase):
    """An easedge with a JSON access log; helpers to send one request and find its three traces."""

    extra_config = {}

    @classmethod
    def config(cls, upstream_url):
        cls.access_log = os.path.join(lab.fresh_dir("access-" + cls.__name__), "access.log")
        sections = dict(cls.extra_config, log={"access": cls.access_log, "format": "json"})
        return h.base_config(upstream_url, **sections)

    def send(self, device, user="administrator"):
        """(curl result, query) of one Sync as DEVICE (None: no certificate) claiming User=USER."""
        query = "Cmd=Sync&User=%s&DeviceId=%s&DeviceType=iPhone" % (user, marker())
        return h.curl(self.lab, self.proxy.url(EAS + "?" + query), device=device, data=b"sync"), query

    def entries(self):
        """The access log's JSON entries so far (whole lines only: the writer may be in the middle of one)."""
        if not os.path.exists(self.access_log):
            return []
        with open(self.access_log, "rb") as f:
            data = f.read()
        return [json.loads(l) for l in data[:data.rfind(b"\n") + 1].decode().splitlines()]

    def access_entry(self, key, value):
        """The one access log entry whose KEY is VALUE (waits for the writer)."""
        def find():
            found = [e for e in self.entries() if e.get(key) == value]
            return found[0] if len(found) == 1 else None
        entry = h.wait_until(find, LOG_WAIT)
        self.assertIsNotNone(entry, "no single access log line with %s %s" % (key, value))
        return entry

    def assert_refusal(self, device, status_line, name, detail_has=(), body_lacks=()):
        """DEVICE's request is refused with STATUS_LINE (e.g. '403.13 Forbidden: ...'): the body is that line
        and a request id; the log line under that id is refusal NAME with a detail containing DETAIL_HAS;
        neither INTERNALS nor BODY_LACKS is in the body. Returns the access log entry."""
        r, query = self.send(device)
        status = int(status_line.split(" ")[0].split(".")[0])
        self.assertEqual(r.status, status, r)
        request_id = h.refusal_request_id(r)
        self.assertIsNotNone(request_id, "no Request-Id line matching X-Request-Id: %r" % r)
        self.assertEqual(r.body.decode(), "%s\r\nRequest-Id: %s\r\n" % (status_line, request_id))
        for secret in INTERNALS + tuple(body_lacks) + ("administrator",):
            self.assertNotIn(secret.encode(), r.body, "the body reveals %r" % secret)
            for header, value in r.headers:
                if secret != "/":  # Content-Type: text/plain
                    self.assertNotIn(secret, value, "header %s reveals %r" % (header, secret))

        logged = h.refusal_log_line(self.proxy.child, request_id)
        self.assertIsNotNone(logged, "no log line for request %s:\n%s" % (request_id, self.proxy.child.output()))
        self.assertEqual((logged["status"], logged["name"]), (status_line.split(" ")[0], name), logged.group(0))
        self.assertTrue(logged["detail"], logged.group(0))
        for text in detail_has:
            self.assertIn(text, logged["detail"])

        entry = self.access_entry("request_id", request_id)
        self.assertEqual((entry["status"], entry["query"]), (status, query))
        self.assertEqual(entry["user"], "", "the claimed User= must not be logged as the user")
        return entry


class ChainRefusals(RefusalCase):
    """The lab's issuing CRL as a file (tls.crl), client certificates required."""

    def test_revoked(self):
        self.assert_refusal("revoked", "403.13 Forbidden: client certificate revoked.", "certificate_revoked",
                            detail_has=[lab.path("issuing.crl")], body_lacks=["carol", lab.path()])

    def test_untrusted(self):
        self.assert_refusal("untrusted", "403.16 Forbidden: client certificate is untrusted or invalid.",
                            "certificate_untrusted", body_lacks=["alice", "rogue", "Rogue"])

    def test_expired(self):
        self.assert_refusal("expired", "403.17 Forbidden: client certificate has expired.", "certificate_expired",
                            body_lacks=["dave"])

    def test_no_certificate_is_logged_without_the_claimed_user(self):
        entry = self.assert_refusal(None, "403.7 Forbidden: client certificate required.", "no_client_certificate")
        self.assertIn("User=administrator", entry["query"], "the claim stays visible as what it is: the query")
        self.assertEqual(entry["cert_sha256"], "")


class MappingRefusals(RefusalCase):
    """LDIF directory where alice's account is renamed, and a required group nobody is in."""

    extra_config = {"mapping": {"directory": {"ldif": "users-alice-renamed.ldif"}, "ntauth": ["issuing-ca.pem"],
                                "strong_binding": "full", "require_group": REQUIRED_GROUP}}

    def test_no_matching_account(self):
        self.assert_refusal("alice", "403.16 Forbidden: client certificate does not map to an account.",
                            "certificate_unmappable", detail_has=["alice@" + DOMAIN], body_lacks=["alice"])

    def test_required_group_missing(self):
        # bob maps by his explicit issuer+serial binding, then fails the group check.
        self.assert_refusal("bob", "403.16 Forbidden: client certificate does not map to an account.",
                            "certificate_unmappable", detail_has=["bob", REQUIRED_GROUP],
                            body_lacks=["bob", "Mobile Executives"])


class OptionalCertificate(RefusalCase):
    """tls.client_certificate: optional: a request without a certificate is forwarded with no identity."""

    extra_config = {"tls": {"client_certificate": "optional"}}

    def test_forwarded_without_certificate_is_logged_without_the_claimed_user(self):
        r, query = self.send(None)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(h.echoed_values(r, "X-Forwarded-User"), [])
        entry = self.access_entry("query", query)
        self.assertEqual((entry["status"], entry["user"]), (200, ""))
        self.assertRegex(entry["request_id"], r"^[0-9a-f]{16}$")


class DeviceClosingAfterItsAnswer(RefusalCase):
    """A device that closes its connection after an answer sent no request: nothing is refused or logged."""

    def test_closing_an_idle_connection_is_no_request(self):
        r, query = self.send("alice", user="alice")
        self.assertEqual(r.status, 200, r)
        self.access_entry("query", query)
        time.sleep(0.5)  # the close reaches easedge after curl's answer
        self.assertEqual([e for e in self.entries() if e["status"] != 200], [],
                         "an idle connection's close was taken for an empty request")

if __name__ == "__main__":
    unittest.main()
