#!/usr/bin/env python3
"""Issue 17: real mail through easedge. SOGo 5.8 (a real ActiveSync server over IMAP mail) behind easedge,
driven by devices with the lab PKI's certificates: alice's and bob's certificates map to SOGo's alice and bob.

easedge sends the user as SOGo's x-webobjects-remote-user (upstream.identity_header, identity_format
upn_local_part), maps /Microsoft-Server-ActiveSync to /SOGo/Microsoft-Server-ActiveSync (a path in
upstream.url), and copes with sogod closing every connection after its answer without saying so.

Covered: OPTIONS shows SOGo's MS-ASProtocolVersions; FolderSync lists alice's folders; Sync of the INBOX
returns alice's messages; bob sees his and never alice's; a device's own x-webobjects-remote-user or
Authorization: Basic never changes who it is; a revoked device never reaches SOGo; a held Ping ends with
Status 2 when mail arrives and Status 1 when none does; twenty requests on one device connection (pooled
upstream connections, and upstream.keepalive: false); the base64 query form.

Needs root and scripts/install-deps.sh --with-sogo (skipped otherwise). Run by ctest, or by hand:
  EASEDGE_BIN=build/proxy/easedge python3 tests/integration/test_sogo.py -v
"""

import base64
import os
import struct
import sys
import threading
import time
import types
import unittest
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
import sogo_fixture  # noqa: E402
from sogo_fixture import ALICE_SUBJECTS, BOB_SUBJECTS, sogo_eas  # noqa: E402

EAS = "/Microsoft-Server-ActiveSync"
FOLDERSYNC = 9  # [MS-ASHTTP] 2.2.1.1.1.1.2 command code
TAG_USER = 8    # [MS-ASHTTP] 2.2.1.1.1.1.3 parameter tag

lab = None
sogo = None


def setUpModule():
    global lab, sogo
    reason = sogo_fixture.unavailable_reason()
    if reason:
        raise unittest.SkipTest(reason)
    lab = h.module_lab("EASEDGE_BIN")
    t0 = time.monotonic()
    try:
        sogo = sogo_fixture.SogoLab()
    except BaseException:
        h.end_module_lab()
        raise
    print("SOGo lab up in %.1f s: %s" % (time.monotonic() - t0, sogo.url), file=sys.stderr)


def tearDownModule():
    if sogo:
        sogo.stop()
    h.end_module_lab()


def sogo_config(**upstream):
    """easedge in front of SOGo: the user as SOGo reads it, the path SOGo serves, no certificate header."""
    settings = {"url": sogo.url + "/SOGo", "identity_header": "x-webobjects-remote-user",
                "identity_format": "upn_local_part", "client_cert_header": ""}
    settings.update(upstream)
    return h.base_config(None, upstream=settings)


def device_id():
    return "SOGOIT" + uuid.uuid4().hex[:10].upper()


class Device:
    """An ActiveSync device on one keep-alive TLS connection to easedge, speaking WBXML (sogo_eas's encoder);
    `request` has the shape sogo_eas's foldersync/sync_folder expect."""

    def __init__(self, proxy, name, user=None, base64_query=False, headers=()):
        self.conn = h.https_connection(lab, proxy.port, name, timeout=90)
        self.user = user or name
        self.device_id = device_id()
        self.base64_query = base64_query
        self.headers = list(headers)
        self.a = types.SimpleNamespace(window=100, verbose=False)  # what sogo_eas.sync_folder reads
        self.log = []      # [command, HTTP status]
        self.sockets = []  # the TLS socket each request went over

    def query(self, cmd):
        if not self.base64_query:
            return "?" + "&".join(p for p in ("Cmd=" + cmd if cmd else "", "User=" + self.user,
                                               "DeviceId=" + self.device_id, "DeviceType=iPhone") if p)
        assert cmd == "FolderSync", "the base64 helper here knows FolderSync only"
        device, kind = self.device_id.encode(), b"iPhone"
        data = bytes([141, FOLDERSYNC]) + struct.pack("<H", 0x0409) + bytes([len(device)]) + device + b"\x00"
        data += bytes([len(kind)]) + kind + bytes([TAG_USER, len(self.user)]) + self.user.encode()
        return "?" + base64.b64encode(data).decode()

    def request(self, method, cmd=None, xml=None, timeout=None):
        headers = {"MS-ASProtocolVersion": "14.1", "User-Agent": "easedge-sogo-it/1"}
        body = None
        if xml is not None:
            body = sogo_eas.encode(xml)
            headers["Content-Type"] = "application/vnd.ms-sync.wbxml"
        for name, value in self.headers:
            headers[name] = value
        if timeout:
            self.conn.timeout = timeout
            if self.conn.sock:
                self.conn.sock.settimeout(timeout)
        self.conn.request(method, EAS + self.query(cmd), body=body, headers=headers)
        self.sockets.append(self.conn.sock)
        r = self.conn.getresponse()
        data = r.read()
        resp_headers = {k.lower(): v for k, v in r.getheaders()}
        self.log.append([cmd or method, r.status])
        doc = None
        if r.status == 200 and data and "wbxml" in resp_headers.get("content-type", ""):
            doc = sogo_eas.ET.fromstring(sogo_eas.decode(data).encode("utf-8"))
        return r.status, resp_headers, doc, data

    def foldersync(self):
        out = {}
        folders = sogo_eas.foldersync(self, out)
        return folders, out

    def sync_inbox(self):
        """FolderSync, then Sync of the INBOX to its end: (subjects, summary)."""
        folders, out = self.foldersync()
        if folders is None:
            return None, out
        inbox = sogo_eas.pick(folders, "INBOX")
        out["collection"] = inbox["id"]
        sogo_eas.sync_folder(self, out, inbox)
        return out.get("subjects"), out

    def ping(self, collection, heartbeat):
        t0 = time.monotonic()
        status, _, doc, _ = self.request(
            "POST", "Ping",
            '<Ping xmlns="Ping:"><HeartbeatInterval>%d</HeartbeatInterval><Folders><Folder><Id>%s</Id>'
            '<Class>Email</Class></Folder></Folders></Ping>' % (heartbeat, collection), timeout=heartbeat + 60)
        return status, sogo_eas.text(doc, "Status") if doc is not None else None, time.monotonic() - t0

    def close(self):
        self.conn.close()


class SogoCase(h.EasedgeTestCase):
    """One easedge per class in front of the module's SOGo."""

    @classmethod
    def upstream_url(cls):
        return sogo.url + "/SOGo"

    @classmethod
    def config(cls, upstream_url):
        return sogo_config(url=upstream_url)


class SogoThroughEasedge(SogoCase):
    """Pooled upstream connections (the default)."""

    def device(self, name="alice", **kwargs):
        d = Device(self.proxy, name, **kwargs)
        self.addCleanup(d.close)
        return d

    def test_options_shows_sogos_protocol_versions(self):
        status, headers, _, _ = self.device().request("OPTIONS")
        self.assertEqual(status, 200)
        self.assertIn("14.1", headers.get("ms-asprotocolversions", ""), headers)
        self.assertIn("FolderSync", headers.get("ms-asprotocolcommands", ""), headers)

    def test_foldersync_lists_alices_folders(self):
        folders, out = self.device().foldersync()
        self.assertIsNotNone(folders, out)
        self.assertEqual(out["status"], "1", out)
        names = [f["name"] for f in folders]
        for name in ("INBOX", "Drafts", "Sent", "Trash"):
            self.assertIn(name, names)

    def test_sync_of_inbox_returns_alices_messages(self):
        subjects, out = self.device().sync_inbox()
        self.assertIsNotNone(subjects, out)
        for subject in ALICE_SUBJECTS:
            self.assertIn(subject, subjects)
        self.assertNotIn(BOB_SUBJECTS[0], subjects)

    def test_bob_sees_his_mailbox_never_alices(self):
        subjects, out = self.device("bob").sync_inbox()
        self.assertIsNotNone(subjects, out)
        self.assertIn(BOB_SUBJECTS[0], subjects)
        for subject in ALICE_SUBJECTS:
            self.assertNotIn(subject, subjects)

    def test_a_devices_own_identity_headers_never_count(self):
        basic = "Basic " + base64.b64encode(b"bob:anything").decode()
        spoofs = [[("x-webobjects-remote-user", "bob")], [("X_WebObjects_Remote_User", "bob")],
                  [("Authorization", basic)], [("x-webobjects-remote-user", "bob"), ("Authorization", basic)]]
        for headers in spoofs:
            with self.subTest(headers=headers):
                subjects, out = self.device("alice", headers=headers).sync_inbox()
                self.assertIsNotNone(subjects, out)
                self.assertIn(ALICE_SUBJECTS[0], subjects)
                self.assertNotIn(BOB_SUBJECTS[0], subjects)

    def test_revoked_device_never_reaches_sogo(self):
        d = self.device("revoked", user="alice")
        status, _, _, body = d.request("POST", "FolderSync",
                                       '<FolderSync xmlns="FolderHierarchy:"><SyncKey>0</SyncKey></FolderSync>')
        self.assertEqual(status, 403, body)
        self.assertIn(b"403.13", body)
        time.sleep(0.5)
        self.assertNotIn(d.device_id, sogo.log())

    def test_base64_query_form(self):
        folders, out = self.device(base64_query=True).foldersync()
        self.assertIsNotNone(folders, out)
        self.assertEqual(out["status"], "1", out)
        self.assertIn("INBOX", [f["name"] for f in folders])

    def test_twenty_requests_on_one_device_connection(self):
        twenty_in_a_row(self, self.proxy)
        # sogod closed a pooled connection on its own: easedge noticed before using it, and stopped pooling.
        self.assertTrue(any("connections to it are no longer reused" in line for line in self.proxy.child.lines),
                        "\n".join(self.proxy.child.lines[-20:]))

    def test_held_ping_status_2_on_new_mail_and_1_without(self):
        # Each Ping holds one sogod worker for its heartbeat: both run at once, bob's without new mail.
        results = {}

        def ping(name, heartbeat, deliver):
            d = Device(self.proxy, name)
            try:
                _, out = d.sync_inbox()
                if out.get("status") != "1":
                    results[name] = ("priming failed", out)
                    return
                if deliver:
                    threading.Timer(2.0, sogo.deliver, (name, "Delivered during a Ping")).start()
                results[name] = d.ping(out["collection"], heartbeat)
            finally:
                d.close()

        threads = [threading.Thread(target=ping, args=("alice", 60, True)),
                   threading.Thread(target=ping, args=("bob", 10, False))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        alice, bob = results.get("alice"), results.get("bob")
        self.assertEqual(alice[:2], (200, "2"), alice)
        self.assertLess(alice[2], 30, "the Ping should end when the message arrives, not at its heartbeat")
        self.assertEqual(bob[:2], (200, "1"), bob)
        self.assertGreaterEqual(bob[2], 5, "SOGo holds a Ping for its heartbeat")


class SogoWithoutKeepalive(SogoCase):
    """upstream.keepalive: false: a fresh upstream connection (Connection: close) for every request."""

    @classmethod
    def config(cls, upstream_url):
        return sogo_config(url=upstream_url, keepalive=False)

    def test_twenty_requests_on_one_device_connection(self):
        twenty_in_a_row(self, self.proxy)

    def test_check_config_refuses_an_unclean_prefix(self):
        for prefix in ("/SOGo/../admin", "/SOGo//x", "/SOGo/%2e%2e", "/SO Go"):
            with self.subTest(prefix=prefix):
                config = sogo_config(url=sogo.url + prefix)
                path = h.write_config(lab, config, "sogo-bad-prefix.yaml")
                code, _, err = h.run_easedge("--check-config", path)
                self.assertNotEqual(code, 0, err)
                self.assertIn("upstream.url", err)
                self.assertIn("sogo-bad-prefix.yaml", err)


def twenty_in_a_row(test, proxy):
    """Twenty ActiveSync requests on one device connection, with sogod closing each upstream connection after
    its answer: all succeed, the device's connection stays the same, easedge reports no upstream failure."""
    d = Device(proxy, "alice")
    test.addCleanup(d.close)
    failures_before = sum("failed while" in line for line in proxy.child.lines)
    statuses = []
    for i in range(20):
        if i % 2:
            status, headers, _, _ = d.request("OPTIONS")
            ok = status == 200 and "ms-asprotocolversions" in headers
        else:
            folders, out = d.foldersync()
            status, ok = out.get("http"), folders is not None and out.get("status") == "1"
        statuses.append(status)
        test.assertTrue(ok, "request %d: %r" % (i + 1, statuses))
    test.assertEqual(len(set(map(id, d.sockets))), 1, "easedge closed the device's connection")
    test.assertEqual(sum("failed while" in line for line in proxy.child.lines), failures_before,
                     "\n".join(proxy.child.lines[-20:]))


if __name__ == "__main__":
    unittest.main()
