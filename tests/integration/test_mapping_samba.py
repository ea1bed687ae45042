"""The mapping decisions against a real Active Directory stand-in: a Samba AD DC on loopback (issue 4).

Users come from `samba-dc.sh populate` (samba-tool); altSecurityIdentities are set over LDAP; certificates
are issued here by the lab issuing CA, with the accounts' real objectSid in the SID extension. Covers plain
LDAP, StartTLS and LDAPS with CA verification, the nested group check (LDAP_MATCHING_RULE_IN_CHAIN), a
disabled user, hostile UPNs, and the DC stopped mid-run (directory_unavailable, the cache, then recovery).

Holds /tmp/easedge-samba.lock for the whole module (the DC's ports are fixed). Skips only where Samba is not
installed or the test cannot run it (not root).
"""

import base64
import fcntl
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

PROBE = os.environ.get("MAPPING_PROBE_BIN", "")
SAMBA_DC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "samba", "samba-dc.sh")
LOCK_PATH = "/tmp/easedge-samba.lock"
LOCK_WAIT = 900  # seconds: other suites may hold the DC for a while
BASE = "DC=corp,DC=example,DC=test"
GROUP = "CN=EAS Users,OU=Groups," + BASE
ISSUER_DN = "DC=test,DC=example,DC=corp,CN=EASEdge Lab Issuing CA"
RECOVERY_WAIT = 20  # seconds for the mapper to reconnect after the DC is back


def skip_reason():
    if not (PROBE and os.access(PROBE, os.X_OK)):
        return "MAPPING_PROBE_BIN is not set to a built mapping_probe"
    for tool in ("samba", "samba-tool", "ldapsearch", "ldapmodify"):
        if not shutil.which(tool):
            return "Samba AD DC is not installed (%s missing): scripts/install-deps.sh --with-samba" % tool
    if os.geteuid() != 0:
        return "Samba AD DC needs root to provision and bind its ports"
    return None


def setUpModule():
    global LAB, DC, LOCK, ENV, SIDS, CERTS
    reason = skip_reason()
    if reason:
        raise unittest.SkipTest(reason)
    LOCK = open(LOCK_PATH, "a")
    deadline = time.time() + LOCK_WAIT
    while True:
        try:
            fcntl.flock(LOCK, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            if time.time() > deadline:
                raise RuntimeError("%s stayed locked for %d s" % (LOCK_PATH, LOCK_WAIT))
            time.sleep(1)
    ENV = dict(os.environ, EASEDGE_SAMBA_LOCKED="1")
    LAB = harness.Lab()
    DC = tempfile.mkdtemp(prefix="easedge-samba-")
    try:
        dc("start")
        dc("populate")
        SIDS = {name: object_sid(name) for name in ("alice", "bob", "carol", "frank", "disabled")}
        CERTS = issue_certificates()
        bind_certificates()
    except Exception:
        tearDownModule()
        raise


def tearDownModule():
    try:
        if "DC" in globals():
            subprocess.run([SAMBA_DC, "stop", DC], env=ENV, capture_output=True, timeout=60)
            shutil.rmtree(DC, ignore_errors=True)
        if "LAB" in globals():
            LAB.cleanup()
    finally:
        if "LOCK" in globals():
            LOCK.close()


def dc(command):
    result = subprocess.run([SAMBA_DC, command, DC], env=ENV, capture_output=True, text=True, timeout=300)
    if result.returncode != 0:
        raise RuntimeError("samba-dc.sh %s failed:\n%s%s" % (command, result.stdout, result.stderr))


def admin_args():
    return ["-x", "-H", "ldap://127.0.0.1", "-D", "Administrator@corp.example.test", "-w", "Passw0rd!Adm1n"]


def object_sid(name):
    out = subprocess.run(["ldapsearch", "-LLL", "-o", "ldif-wrap=no"] + admin_args() +
                         ["-b", BASE, "(sAMAccountName=%s)" % name, "objectSid"],
                         capture_output=True, text=True, check=True).stdout
    for line in out.splitlines():
        if line.startswith("objectSid:: "):
            raw = base64.b64decode(line.split(" ", 1)[1])
            count = raw[1]
            authority = int.from_bytes(raw[2:8], "big")
            subs = [int.from_bytes(raw[8 + 4 * i:12 + 4 * i], "little") for i in range(count)]
            return "S-%d-%d-%s" % (raw[0], authority, "-".join(str(s) for s in subs))
    raise RuntimeError("no objectSid for " + name)


def sid_extension_der(sid):
    """SEQUENCE { [0] { OID 1.3.6.1.4.1.311.25.2.1, [0] EXPLICIT OCTET STRING sid } } (KB5014754)."""
    def tlv(tag, body):
        assert len(body) < 128
        return bytes([tag, len(body)]) + body
    oid = bytes.fromhex("060a2b060104018237190201")
    return tlv(0x30, tlv(0xA0, oid + tlv(0xA0, tlv(0x04, sid.encode()))))


def issue(name, upn, sid=None, serial=None):
    """A Workspace ONE-shaped device certificate from the lab issuing CA."""
    d = LAB.fresh_dir("cert-" + name)
    key, csr, cert, ext = (os.path.join(d, n) for n in ("key.pem", "csr.pem", "cert.pem", "ext.cnf"))
    subprocess.run(["openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-keyout", key, "-out", csr, "-subj", "/CN=WorkspaceONEUEM." + name],
                   check=True, capture_output=True)
    lines = ["subjectAltName = otherName:1.3.6.1.4.1.311.20.2.3;UTF8:%s" % upn,
             "extendedKeyUsage = clientAuth", "subjectKeyIdentifier = hash"]
    if sid:
        lines.append("1.3.6.1.4.1.311.25.2 = DER:" + sid_extension_der(sid).hex())
    with open(ext, "w") as f:
        f.write("\n".join(lines) + "\n")
    args = ["openssl", "x509", "-req", "-in", csr, "-CA", LAB.path("issuing-ca.pem"), "-CAkey",
            LAB.path("issuing-ca.key"), "-days", "30", "-extfile", ext, "-out", cert]
    args += ["-set_serial", serial] if serial else ["-CAcreateserial", "-CAserial", os.path.join(d, "serial")]
    subprocess.run(args, check=True, capture_output=True)
    return cert


def issue_certificates():
    return {
        "alice": issue("alice", "alice@corp.example.test", SIDS["alice"]),
        "alice_wrong_sid": issue("alice2", "alice@corp.example.test", SIDS["bob"]),
        "bob": issue("bob", "bob@corp.example.test", serial="0x00A1B2C3D4E5F60718"),
        "carol": issue("carol", "carol@corp.example.test", serial="0x1A2B3C4D5E"),
        "carol_weak": issue("carol2", "carol@corp.example.test"),
        "frank": issue("frank", "frank@corp.example.test", SIDS["frank"]),
        "disabled": issue("disabled", "disabled@corp.example.test", SIDS["disabled"]),
        "nobody": issue("nobody", "nobody@corp.example.test"),
        "star": issue("star", "*"),
        "injection": issue("inject", "x)(|(userPrincipalName=*"),
    }


def bind_certificates():
    """altSecurityIdentities over LDAP: Windows form for bob (from map-cert), Samba serial order for carol."""
    bob = probe_json(CERTS["bob"], ldap_config())["bindings"]["issuer_serial"]
    assert bob.endswith("<SR>1807f6e5d4c3b2a100"), bob  # serial bytes reversed, sign byte kept
    ldif = ("dn: CN=bob,CN=Users,%s\nchangetype: modify\nadd: altSecurityIdentities\n"
            "altSecurityIdentities: %s\n\n"
            "dn: CN=carol,CN=Users,%s\nchangetype: modify\nadd: altSecurityIdentities\n"
            "altSecurityIdentities: X509:<I>%s<SR>1a2b3c4d5e\n") % (BASE, bob, BASE, ISSUER_DN)
    subprocess.run(["ldapmodify"] + admin_args(), input=ldif, text=True, check=True, capture_output=True)


def ldap_config(url="ldap://127.0.0.1:389", starttls=False, ca=True, mode="full", **mapping):
    ldap = {"url": url, "base": BASE, "bind_dn": "CN=easproxy,CN=Users," + BASE,
            "password_file": os.path.join(DC, "easproxy.password"), "timeout_seconds": 5,
            "reconnect_max_backoff_seconds": 1}
    if ca:
        ldap["ca"] = os.path.join(DC, "tls", "ca.pem") if ca is True else ca
    if starttls:
        ldap["starttls"] = True
    section = {"directory": {"ldap": ldap}, "strong_binding": mode, "ntauth": ["issuing-ca.pem"],
               "require_group": GROUP}
    section.update(mapping)
    return harness.base_config("http://127.0.0.1:9", mapping=section)


def probe_json(cert, config):
    path = harness.write_config(LAB, config, "samba-mapping.yaml")
    result = subprocess.run([PROBE, "map-cert", "--config", path, cert, "--json"], capture_output=True, text=True,
                            timeout=60, stdin=subprocess.DEVNULL)
    if result.returncode not in (0, 1):
        raise AssertionError("map-cert exit %d: %s" % (result.returncode, result.stderr))
    obj = json.loads(result.stdout)
    obj["exit"] = result.returncode
    return obj


class SambaMapping(unittest.TestCase):
    def map(self, name, **config):
        return probe_json(CERTS[name], ldap_config(**config))

    def test_real_object_sid_in_the_sid_extension_makes_upn_mapping_strong(self):
        o = self.map("alice")
        self.assertEqual(o["exit"], 0, o)
        self.assertTrue(o["mapped"])
        self.assertEqual(o["method"], "upn")
        self.assertTrue(o["strong"])
        self.assertEqual(o["account"]["objectSid"], SIDS["alice"])
        self.assertEqual(o["account"]["dn"], "CN=alice,CN=Users," + BASE)  # and nested group membership held

    def test_sid_of_another_account_is_refused(self):
        o = self.map("alice_wrong_sid", mode="compatibility")
        self.assertFalse(o["mapped"])
        self.assertIn("does not match the account's objectSid " + SIDS["alice"], o["reason"])

    def test_issuer_serial_binding_set_over_ldap(self):
        o = self.map("bob")
        self.assertTrue(o["mapped"], o)
        self.assertEqual(o["method"], "altsec:issuer-serial")
        self.assertTrue(o["strong"])
        self.assertEqual(o["account"]["sAMAccountName"], "bob")

    def test_samba_serial_order_is_tolerated(self):
        o = self.map("carol")
        self.assertTrue(o["mapped"], o)
        self.assertEqual(o["method"], "altsec:issuer-serial")

    def test_weak_upn_mapping_follows_the_mode(self):
        o = self.map("carol_weak")
        self.assertFalse(o["mapped"])
        self.assertIn("strong_binding is full", o["reason"])
        o = self.map("carol_weak", mode="compatibility")
        self.assertTrue(o["mapped"], o)
        self.assertFalse(o["strong"])

    def test_disabled_user_never_maps(self):
        o = self.map("disabled", mode="disabled")
        self.assertFalse(o["mapped"])
        self.assertEqual(o["reason"], "account disabled is disabled")

    def test_account_outside_the_group_is_refused(self):
        o = self.map("frank")
        self.assertFalse(o["mapped"])
        self.assertEqual(o["reason"], "account frank is not a member of " + GROUP)
        self.assertTrue(self.map("frank", require_group="")["mapped"])

    def test_unknown_and_hostile_upns_match_nothing(self):
        for name in ("nobody", "star", "injection"):
            o = self.map(name, mode="disabled")
            self.assertFalse(o["mapped"], name)
            self.assertIsNone(o["account"], name)
            self.assertIn("no account has userPrincipalName", o["reason"], name)

    def test_starttls_with_ca_verification(self):
        o = self.map("alice", starttls=True)
        self.assertTrue(o["mapped"], o)

    def test_ldaps_with_ca_verification(self):
        o = self.map("alice", url="ldaps://127.0.0.1:636")
        self.assertTrue(o["mapped"], o)

    def test_ldaps_with_the_wrong_ca_is_unavailable_never_refused(self):
        o = self.map("alice", url="ldaps://127.0.0.1:636", ca=LAB.path("root-ca.pem"))
        self.assertFalse(o["mapped"])
        self.assertIsNone(o["account"])
        self.assertTrue(o["reason"].startswith("directory unavailable:"), o["reason"])

    def test_wrong_bind_password_is_unavailable(self):
        with open(LAB.path("wrong.password"), "w") as f:
            f.write("not-the-password\n")
        config = ldap_config()
        config["mapping"]["directory"]["ldap"]["password_file"] = LAB.path("wrong.password")
        o = probe_json(CERTS["alice"], config)
        self.assertTrue(o["reason"].startswith("directory unavailable:"), o["reason"])
        self.assertIn("Invalid credentials", o["reason"])
        self.assertNotIn("not-the-password", o["reason"])


class SambaOutage(unittest.TestCase):
    """Must run last in the module: it stops and restarts the DC."""

    def test_dc_stopped_mid_run_then_recovery(self):
        path = harness.write_config(LAB, ldap_config(), "samba-serve.yaml")
        probe = subprocess.Popen([PROBE, "serve", "--config", path], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                 stderr=subprocess.DEVNULL, text=True)
        try:
            self.assertEqual(probe.stdout.readline().strip(), "ready")

            def ask(name):
                probe.stdin.write("%s %s\n" % (CERTS[name], LAB.path("issuing-ca.pem")))
                probe.stdin.flush()
                return json.loads(probe.stdout.readline())

            self.assertTrue(ask("alice")["mapped"])
            dc("stop")
            o = ask("bob")
            self.assertFalse(o["mapped"])
            self.assertIsNone(o["account"])
            self.assertTrue(o["reason"].startswith("directory unavailable:"), o["reason"])
            self.assertTrue(ask("alice")["mapped"], "a cached mapping survives the outage")
            dc("start")
            deadline = time.time() + RECOVERY_WAIT
            while True:
                o = ask("bob")
                if o["mapped"] or time.time() > deadline:
                    break
                self.assertTrue(o["reason"].startswith("directory unavailable:"), o["reason"])
                time.sleep(0.5)
            self.assertTrue(o["mapped"], o)
            self.assertEqual(o["method"], "altsec:issuer-serial")
        finally:
            probe.stdin.close()
            probe.wait(timeout=30)
            probe.stdout.close()


if __name__ == "__main__":
    unittest.main()
