#!/usr/bin/env python3
"""Issue 4's mapping as a device sees it: the built easedge with a `mapping:` section in front of the stand-in.

LDIF directory (the lab's users.ldif and edited copies): the SID extension, an explicit issuer+serial binding,
no UPN, a disabled account, require_group, and a weak UPN-only mapping under `full` and `compatibility`. Every
LDIF verdict is checked against `easedge map-cert --config <the same file> CERT --json` (same decision, same
account, same reason). Then a Samba AD DC over LDAP (skipped with a message where Samba cannot run): a mapped
user, and the DC stopped mid-run (uncached certificate -> 503 + Retry-After, cached one -> 200, then recovery).

  EASEDGE_BIN=build/proxy/easedge STANDIN_BIN=build/bench/standin-exchange python3 tests/integration/test_mapping_http.py -v
"""

import fcntl
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

EAS = "/Microsoft-Server-ActiveSync"
BASE = "DC=corp,DC=example,DC=test"
GROUP = "CN=EAS Users,OU=Groups," + BASE
DOMAIN_SID = "S-1-5-21-1004336348-1177238915-682003330"
RETRY_AFTER = 7  # timeouts.retry_after_seconds in these configs, so the header value is ours, not a default

SAMBA_DC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "samba", "samba-dc.sh")
SAMBA_LOCK = "/tmp/easedge-samba.lock"
SAMBA_LOCK_WAIT = 900  # seconds: other suites may hold the DC for a while
RECOVERY_WAIT = 30     # seconds for the mapper to reconnect once the DC is back

lab = None


def setUpModule():
    global lab
    lab = h.module_lab("EASEDGE_BIN", "STANDIN_BIN")
    # Accounts the lab has no device certificate for (clientAuth, SID extension, so only the account decides).
    issue_device("disabled", "disabled@corp.example.test", DOMAIN_SID + "-1110")
    issue_device("frank", "frank@corp.example.test", DOMAIN_SID + "-1109")
    # users.ldif copies: bob without his issuer+serial value (a weak UPN-only mapping), bob renamed.
    with open(lab.path("users.ldif")) as f:
        ldif = f.read()
    without_binding = re.sub(r"(dn: CN=bob,[^\n]*\n(?:[^\n]+\n)*?)altSecurityIdentities: [^\n]*\n", r"\1", ldif)
    assert without_binding != ldif, "users.ldif has no altSecurityIdentities for bob"
    with open(lab.path("users-bob-weak.ldif"), "w") as f:
        f.write(without_binding)
    renamed = ldif.replace("userPrincipalName: bob@corp.example.test", "userPrincipalName: robert@corp.example.test")
    assert renamed != ldif
    with open(lab.path("users-bob-renamed.ldif"), "w") as f:
        f.write(renamed)


def tearDownModule():
    h.end_module_lab()


def issue_device(name, upn, sid=None):
    """A Workspace ONE-shaped device certificate (clientAuth, UPN SAN, optional KB5014754 SID extension) from the
    lab issuing CA with `openssl ca`, written where harness.curl finds devices (devices/NAME.pem/.key)."""
    cert, key = lab.device(name)
    work = lab.fresh_dir("issue-" + name)
    csr, ext = os.path.join(work, "req.pem"), os.path.join(work, "ext.cnf")
    extensions = [
        "[ device_ext ]",
        "basicConstraints = critical, CA:FALSE",
        "keyUsage = critical, digitalSignature",
        "extendedKeyUsage = clientAuth",
        "subjectKeyIdentifier = hash",
        "subjectAltName = otherName:1.3.6.1.4.1.311.20.2.3;UTF8:" + upn,
    ]
    if sid:
        extensions += ["1.3.6.1.4.1.311.25.2 = ASN1:SEQUENCE:sid_ext",
                       "[ sid_ext ]", "sid = IMPLICIT:0,SEQUENCE:sid_value",
                       "[ sid_value ]", "type = OID:1.3.6.1.4.1.311.25.2.1", "value = EXPLICIT:0,OCTETSTRING:" + sid]
    with open(ext, "w") as f:
        f.write("\n".join(extensions) + "\n")
    cnf = lab.path("ca", "openssl.cnf")
    for argv in (["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", key],
                 ["req", "-new", "-config", cnf, "-key", key, "-subj", "/CN=WorkspaceONEUEM." + name, "-out", csr],
                 ["ca", "-batch", "-notext", "-preserveDN", "-rand_serial", "-config", cnf, "-name", "issuing",
                  "-in", csr, "-out", cert, "-extfile", ext, "-extensions", "device_ext", "-days", "30"]):
        result = subprocess.run(["openssl"] + argv, capture_output=True, text=True, timeout=60)
        if result.returncode != 0:
            raise RuntimeError("openssl %s failed: %s" % (argv[0], result.stderr))
    return cert


def marker():
    """A DeviceId unique to one request, so a test can ask the stand-in whether that request reached it."""
    return "MAP" + uuid.uuid4().hex[:13].upper()


def mapping_config(upstream_url, **mapping):
    section = {"directory": {"ldif": "users.ldif"}, "ntauth": ["issuing-ca.pem"], "strong_binding": "full"}
    section.update(mapping)
    return h.base_config(upstream_url, mapping=section, timeouts={"retry_after_seconds": RETRY_AFTER})


class MappingCase(h.ProxyTestCase):
    """A request per device, and the same question put to `easedge map-cert` with the proxy's own config file."""

    def request(self, device, user=None):
        """(curl result, DeviceId) of one Sync as DEVICE, asking for USER (default: the device name)."""
        device_id = marker()
        target = "%s?Cmd=Sync&User=%s&DeviceId=%s&DeviceType=iPhone" % (EAS, user or device, device_id)
        return h.curl(self.lab, self.proxy.url(target), device=device, data=b"sync"), device_id

    def map_cert(self, device):
        code, out, err = h.run_easedge("map-cert", "--config", self.proxy.config_path, self.lab.device(device)[0],
                                       "--json")
        self.assertIn(code, (0, 1), err)
        return code, json.loads(out)

    def assert_forwarded_as(self, device, upn):
        r, device_id = self.request(device)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(h.echoed_values(r, "X-Forwarded-User"), [upn])
        self.assertTrue(self.standin.saw(device_id))
        code, verdict = self.map_cert(device)
        self.assertEqual(code, 0, verdict)
        self.assertTrue(verdict["mapped"], verdict)
        self.assertEqual(verdict["account"]["userPrincipalName"], upn, "map-cert and the proxy disagree")
        return verdict

    def assert_unmappable(self, device):
        """403.16, never forwarded; map-cert says not mapped with the reason the proxy logged under the body's
        request id (the body itself tells only the class). Returns map-cert's verdict."""
        r, device_id = self.request(device)
        self.assertEqual(r.status, 403, r)
        self.assertIn(b"403.16", r.body, r)
        self.assertFalse(self.standin.saw(device_id), "a refused request reached the upstream")
        code, verdict = self.map_cert(device)
        self.assertEqual(code, 1, verdict)
        self.assertFalse(verdict["mapped"], verdict)
        request_id = h.refusal_request_id(r)
        self.assertIsNotNone(request_id, r)
        logged = h.refusal_log_line(self.proxy.child, request_id)
        self.assertIsNotNone(logged, "no log line for request %s:\n%s" % (request_id, self.proxy.child.output()))
        self.assertEqual(logged["detail"], verdict["reason"], "map-cert and the proxy give different reasons")
        self.assertNotIn(verdict["reason"].encode(), r.body, "the body must not carry the reason")
        return verdict


class LdifFullEnforcement(MappingCase):
    """The lab's users.ldif, NTAuth = the issuing CA, strong_binding: full."""

    @classmethod
    def config(cls, upstream_url):
        return mapping_config(upstream_url)

    def test_alice_maps_strongly_by_her_sid_extension(self):
        verdict = self.assert_forwarded_as("alice", "alice@corp.example.test")
        self.assertEqual(verdict["method"], "upn")
        self.assertTrue(verdict["strong"])
        self.assertEqual(verdict["account"]["objectSid"], DOMAIN_SID + "-1104")

    def test_bob_maps_by_his_explicit_issuer_serial_binding(self):
        verdict = self.assert_forwarded_as("bob", "bob@corp.example.test")
        self.assertEqual(verdict["method"], "altsec:issuer-serial")
        self.assertTrue(verdict["strong"])

    def test_certificate_without_upn_or_binding_is_403_16(self):
        verdict = self.assert_unmappable("noupn")
        self.assertIsNone(verdict["account"])
        self.assertIn("no UPN", verdict["reason"])

    def test_disabled_account_is_403_16(self):
        verdict = self.assert_unmappable("disabled")
        self.assertEqual(verdict["account"]["sAMAccountName"], "disabled")
        self.assertEqual(verdict["reason"], "account disabled is disabled")

    def test_repeated_requests_keep_their_verdicts(self):
        # The second answer comes from the mapping cache (positive and negative): it must not differ.
        for _ in range(2):
            r, _ = self.request("alice")
            self.assertEqual(r.status, 200, r)
            r, device_id = self.request("disabled")
            self.assertEqual(r.status, 403, r)
            self.assertFalse(self.standin.saw(device_id))


class LdifRequireGroup(MappingCase):
    """require_group: frank is in no group, alice is a member of EAS Users."""

    @classmethod
    def config(cls, upstream_url):
        return mapping_config(upstream_url, require_group=GROUP)

    def test_account_outside_the_group_is_refused_and_never_forwarded(self):
        verdict = self.assert_unmappable("frank")
        self.assertEqual(verdict["account"]["sAMAccountName"], "frank")
        self.assertEqual(verdict["reason"], "account frank is not a member of " + GROUP)

    def test_member_is_forwarded(self):
        self.assert_forwarded_as("alice", "alice@corp.example.test")


class LdifNoGroupCheck(MappingCase):
    """The same frank certificate without require_group maps: the group was the only reason for the refusal."""

    @classmethod
    def config(cls, upstream_url):
        return mapping_config(upstream_url)

    def test_frank_maps_without_require_group(self):
        self.assert_forwarded_as("frank", "frank@corp.example.test")


class LdifForwardsTheDirectoryName(MappingCase):
    """bob's account renamed in the directory: the upstream hears the directory's UPN, not the certificate's."""

    @classmethod
    def config(cls, upstream_url):
        return mapping_config(upstream_url, directory={"ldif": "users-bob-renamed.ldif"})

    def test_forwarded_user_is_the_directory_user_principal_name(self):
        verdict = self.assert_forwarded_as("bob", "robert@corp.example.test")
        self.assertEqual(verdict["method"], "altsec:issuer-serial")


class LdifWeakMappingFull(MappingCase):
    """bob's certificate (no SID extension) with his altSecurityIdentities value removed: UPN only, weak."""

    @classmethod
    def config(cls, upstream_url):
        return mapping_config(upstream_url, directory={"ldif": "users-bob-weak.ldif"})

    def test_full_enforcement_refuses_a_weak_mapping(self):
        verdict = self.assert_unmappable("bob")
        self.assertEqual(verdict["method"], "upn")
        self.assertFalse(verdict["strong"])
        self.assertIn("strong_binding is full", verdict["reason"])

    def test_strong_mappings_still_pass(self):
        self.assert_forwarded_as("alice", "alice@corp.example.test")


class LdifWeakMappingCompatibility(MappingCase):
    """The same weak mapping under strong_binding: compatibility (certificate newer than the account) passes."""

    @classmethod
    def config(cls, upstream_url):
        return mapping_config(upstream_url, directory={"ldif": "users-bob-weak.ldif"}, strong_binding="compatibility")

    def test_compatibility_allows_a_weak_mapping(self):
        verdict = self.assert_forwarded_as("bob", "bob@corp.example.test")
        self.assertEqual(verdict["method"], "upn")
        self.assertFalse(verdict["strong"])
        self.assertEqual(verdict["mode"], "compatibility")

    def test_disabled_account_is_still_refused(self):
        self.assert_unmappable("disabled")


# ---- directories over LDAP --------------------------------------------------------------------------------

def ldap_directory(url, password_file, timeout_seconds):
    """mapping.directory for an LDAP DC of the lab domain, bound as easproxy, reconnecting quickly."""
    return {"ldap": {"url": url, "base": BASE, "bind_dn": "CN=easproxy,CN=Users," + BASE,
                     "password_file": password_file, "timeout_seconds": timeout_seconds,
                     "reconnect_max_backoff_seconds": 1}}


class LiveDirectoryCase(MappingCase):
    """A directory server the class starts before its proxy (`start_directory`, returning an object with
    close()) and stops after it; `cls.directory`."""

    @classmethod
    def start_directory(cls):
        raise NotImplementedError

    @classmethod
    def setUpClass(cls):
        cls.directory = cls.start_directory()
        try:
            super().setUpClass()
        except BaseException:
            cls.directory.close()
            raise

    @classmethod
    def tearDownClass(cls):
        try:
            super().tearDownClass()
        finally:
            cls.directory.close()



class SilentDirectory:
    """A TCP listener that accepts LDAP connections and never answers (a hung DC, not a stopped one)."""

    def __init__(self):
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(64)
        self.port = self.listener.getsockname()[1]
        self.accepted = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                self.accepted.append(self.listener.accept()[0])
            except OSError:
                return

    def close(self):
        self.listener.close()
        for s in self.accepted:
            s.close()


class HungDirectoryCase(LiveDirectoryCase):
    """mapping.directory.ldap to a silent DC with a 2 s LDAP timeout: every answer must be 503 + Retry-After."""

    ldap_timeout = 2
    request_header_seconds = 30

    @classmethod
    def start_directory(cls):
        with open(lab.path("hung-dc.password"), "w") as f:
            f.write("unused")
        return SilentDirectory()

    @classmethod
    def config(cls, upstream_url):
        directory = ldap_directory("ldap://127.0.0.1:%d" % cls.directory.port, "hung-dc.password", cls.ldap_timeout)
        config = mapping_config(upstream_url, directory=directory)
        config["timeouts"]["request_header_seconds"] = cls.request_header_seconds
        return config

    def assert_all_unavailable(self, devices):
        """The devices ask at once (the mapper's workers are busy waiting for the DC): each gets 503."""
        results = {}

        def ask(device):
            results[device] = self.request(device)

        threads = [threading.Thread(target=ask, args=(device,)) for device in devices]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for device, (r, device_id) in results.items():
            with self.subTest(device=device):
                self.assertEqual(r.status, 503, r)
                self.assertEqual(r.header("Retry-After"), str(RETRY_AFTER), r)
                self.assertFalse(self.standin.saw(device_id))


class LdapHungDirectory(HungDirectoryCase):
    def test_hung_dc_is_503_never_403_nor_200(self):
        self.assert_all_unavailable(["alice", "bob", "frank", "disabled"])


class LdapLookupOutlastsHeaderTimeout(HungDirectoryCase):
    """timeouts.request_header_seconds shorter than the directory's answer: the device must still hear 503
    (the proxy arms the header timer while it waits for the mapper), not a dropped connection."""

    request_header_seconds = 1

    def test_slow_directory_is_503_not_a_dropped_connection(self):
        self.assert_all_unavailable(["alice", "bob"])


# ---- Samba AD DC over LDAP -------------------------------------------------------------------------------

class SambaFixture:
    """The DC of samba/samba-dc.sh in a temp folder, holding /tmp/easedge-samba.lock from start to close."""

    def __init__(self):
        self.lock = open(SAMBA_LOCK, "a")
        deadline = time.monotonic() + SAMBA_LOCK_WAIT
        while True:
            try:
                fcntl.flock(self.lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    self.lock.close()
                    raise RuntimeError("%s stayed locked for %d s" % (SAMBA_LOCK, SAMBA_LOCK_WAIT))
                time.sleep(1)
        self.env = dict(os.environ, EASEDGE_SAMBA_LOCKED="1")  # we hold it: samba-dc.sh must not wait again
        self.dir = tempfile.mkdtemp(prefix="easedge-maphttp-dc-")
        try:
            self.run("start")
            self.run("populate")
        except BaseException:
            self.close()
            raise

    def run(self, command):
        result = subprocess.run([SAMBA_DC, command, self.dir], env=self.env, capture_output=True, text=True,
                                timeout=600, stdin=subprocess.DEVNULL)
        if result.returncode != 0:
            raise RuntimeError("samba-dc.sh %s failed:\n%s%s" % (command, result.stdout, result.stderr))

    def object_sid(self, user):
        out = subprocess.run(["samba-tool", "user", "show", user, "--attributes=objectSid", "-s",
                              os.path.join(self.dir, "etc", "smb.conf")],
                             capture_output=True, text=True, check=True, timeout=120).stdout
        m = re.search(r"^objectSid: (S-1-5-21-[0-9-]+)$", out, re.M)
        if not m:
            raise RuntimeError("no objectSid for %s in: %s" % (user, out))
        return m.group(1)

    def close(self):
        try:
            self.run("stop")
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.lock.close()  # releases the flock


class SambaDirectory(LiveDirectoryCase):
    """mapping.directory.ldap to a Samba AD DC; certificates carry the accounts' real objectSid."""

    @classmethod
    def start_directory(cls):
        # samba-dc.sh needs the DC and the OpenLDAP clients, and root (it provisions and binds ports < 1024).
        missing = [tool for tool in ("samba", "samba-tool", "ldapsearch", "ldapmodify") if not shutil.which(tool)]
        if missing or os.geteuid() != 0:
            raise unittest.SkipTest("Samba AD DC cannot run here (%s): scripts/install-deps.sh --with-samba, as root" %
                                    (", ".join(missing) + " missing" if missing else "not root"))
        dc = SambaFixture()
        try:
            for user in ("alice", "bob", "carol", "frank", "disabled"):
                issue_device("samba-" + user, user + "@corp.example.test", dc.object_sid(user))
        except BaseException:
            dc.close()
            raise
        return dc

    @classmethod
    def config(cls, upstream_url):
        directory = ldap_directory("ldap://127.0.0.1:389", os.path.join(cls.directory.dir, "easproxy.password"), 5)
        return mapping_config(upstream_url, directory=directory, require_group=GROUP)

    def request(self, device, user=None):
        return super().request(device, user or device.split("-", 1)[1])

    def assert_unavailable(self, device):
        r, device_id = self.request(device)
        self.assertEqual(r.status, 503, r)
        self.assertEqual(r.header("Retry-After"), str(RETRY_AFTER), r)
        self.assertFalse(self.standin.saw(device_id), "a request reached the upstream during the outage")

    def test_mapped_user_is_forwarded(self):
        r, device_id = self.request("samba-bob")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(h.echoed_values(r, "X-Forwarded-User"), ["bob@corp.example.test"])
        self.assertTrue(self.standin.saw(device_id))

    def test_disabled_and_non_member_are_403_16(self):
        for device in ("samba-disabled", "samba-frank"):
            with self.subTest(device=device):
                r, device_id = self.request(device)
                self.assertEqual(r.status, 403, r)
                self.assertIn(b"403.16", r.body, r)
                self.assertFalse(self.standin.saw(device_id))

    def test_dc_stopped_mid_run_is_503_for_uncached_and_200_for_cached_then_recovers(self):
        # alice is asked while the DC is up (cached, ttl 300 s); carol is asked by no other test (never cached).
        r, _ = self.request("samba-alice")
        self.assertEqual(r.status, 200, r)
        self.directory.run("stop")
        try:
            for _ in range(3):
                self.assert_unavailable("samba-carol")  # fail closed: never 403, never 200
            r, _ = self.request("samba-alice")
            self.assertEqual(r.status, 200, "a cached mapping must survive the outage: %r" % r)
            self.assert_unavailable("samba-carol")
        finally:
            self.directory.run("start")
        deadline = time.monotonic() + RECOVERY_WAIT
        while True:
            r, device_id = self.request("samba-carol")
            if r.status != 503 or time.monotonic() > deadline:
                break
            self.assertFalse(self.standin.saw(device_id))
            time.sleep(0.5)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(h.echoed_values(r, "X-Forwarded-User"), ["carol@corp.example.test"])

    def test_reload_during_an_outage_keeps_cached_mappings(self):
        # SIGHUP with an unchanged configuration (what logrotate sends to reopen the access log) while the DC is
        # down: a device that was just served must still be served from the cache, as without the reload.
        r, _ = self.request("samba-alice")
        self.assertEqual(r.status, 200, r)
        self.directory.run("stop")
        try:
            reloads = self.proxy.child.output().count("reload done")
            self.proxy.child.proc.send_signal(signal.SIGHUP)
            deadline = time.monotonic() + h.STARTUP_TIMEOUT
            while self.proxy.child.output().count("reload done") == reloads and time.monotonic() < deadline:
                time.sleep(0.1)
            self.assertGreater(self.proxy.child.output().count("reload done"), reloads, self.proxy.child.output())
            r, _ = self.request("samba-alice")
            self.assertEqual(r.status, 200, "the reload dropped the mapping cache during the outage: %r" % r)
        finally:
            self.directory.run("start")


if __name__ == "__main__":
    unittest.main()
