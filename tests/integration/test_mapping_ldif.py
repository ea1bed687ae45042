"""map-cert against the lab PKI and its users.ldif: every verdict, the JSON contract, exit codes (issue 4).

Runs the mapping library through MAPPING_PROBE_BIN (tests/mapping/mapping_probe: `map-cert` behaves as
`easedge map-cert`).
"""

import json
import os
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

PROBE = os.environ.get("MAPPING_PROBE_BIN", "")
GROUP = "CN=EAS Users,OU=Groups,DC=corp,DC=example,DC=test"
DOMAIN_SID = "S-1-5-21-1004336348-1177238915-682003330"
JSON_KEYS = {"mapped", "account", "method", "strong", "mode", "reason", "bindings"}


def setUpModule():
    global LAB
    if not (PROBE and os.access(PROBE, os.X_OK)):
        raise unittest.SkipTest("MAPPING_PROBE_BIN is not set to a built mapping_probe")
    LAB = harness.Lab()


def tearDownModule():
    LAB.cleanup()


def mapping_config(**overrides):
    mapping = {"directory": {"ldif": "users.ldif"}, "strong_binding": "full", "ntauth": ["issuing-ca.pem"],
               "require_group": GROUP}
    mapping.update(overrides)
    return harness.base_config("http://127.0.0.1:9", mapping=mapping)


def map_cert(device, config=None, json_output=True, cert=None):
    path = harness.write_config(LAB, config or mapping_config(), "mapping.yaml")
    argv = [PROBE, "map-cert", "--config", path, cert or LAB.device(device)[0]]
    if json_output:
        argv.append("--json")
    result = subprocess.run(argv, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    return result


def map_json(device, **overrides):
    result = map_cert(device, mapping_config(**overrides))
    assert result.returncode in (0, 1), result.stderr
    obj = json.loads(result.stdout)
    assert set(obj) == JSON_KEYS, obj
    return result.returncode, obj


class MapCertJson(unittest.TestCase):
    def test_alice_maps_by_upn_made_strong_by_her_sid_extension(self):
        code, o = map_json("alice")
        self.assertEqual(code, 0)
        self.assertTrue(o["mapped"])
        self.assertEqual(o["method"], "upn")
        self.assertTrue(o["strong"])
        self.assertEqual(o["mode"], "full")
        self.assertIsNone(o["reason"])
        self.assertEqual(o["account"], {"dn": "CN=alice,CN=Users,DC=corp,DC=example,DC=test",
                                        "sAMAccountName": "alice", "userPrincipalName": "alice@corp.example.test",
                                        "objectSid": DOMAIN_SID + "-1104"})

    def test_bob_maps_by_his_issuer_serial_binding(self):
        code, o = map_json("bob")
        self.assertEqual(code, 0)
        self.assertEqual(o["method"], "altsec:issuer-serial")
        self.assertTrue(o["strong"])
        self.assertEqual(o["account"]["sAMAccountName"], "bob")

    def test_bindings_are_the_exact_strings_for_the_certificate(self):
        _, o = map_json("bob")
        b = o["bindings"]
        self.assertEqual(set(b), {"issuer_serial", "ski", "sha1_pukey", "issuer_subject", "subject", "rfc822"})
        issuer = "DC=test,DC=example,DC=corp,CN=EASEdge Lab Issuing CA"
        serial = subprocess.run(["openssl", "x509", "-in", LAB.device("bob")[0], "-noout", "-serial"],
                                capture_output=True, text=True, check=True).stdout.strip().split("=")[1]
        serial = serial if len(serial) % 2 == 0 else "0" + serial
        serial_bytes = bytes.fromhex(serial)
        if serial_bytes[0] & 0x80:
            serial_bytes = b"\0" + serial_bytes  # Windows keeps the DER sign byte
        self.assertEqual(b["issuer_serial"], "X509:<I>%s<SR>%s" % (issuer, serial_bytes[::-1].hex()))
        self.assertEqual(b["subject"], "X509:<S>CN=WorkspaceONEUEM.bob")
        self.assertEqual(b["issuer_subject"], "X509:<I>%s<S>CN=WorkspaceONEUEM.bob" % issuer)
        self.assertEqual(b["rfc822"], "X509:<RFC822>bob@corp.example.test")
        thumb = subprocess.run(["openssl", "x509", "-in", LAB.device("bob")[0], "-noout", "-fingerprint", "-sha1"],
                               capture_output=True, text=True, check=True).stdout.strip().split("=")[1]
        self.assertEqual(b["sha1_pukey"], "X509:<SHA1-PUKEY>" + thumb.replace(":", "").lower())
        self.assertTrue(b["ski"].startswith("X509:<SKI>"))

    def test_weak_upn_mapping_is_refused_under_full_and_allowed_under_compatibility(self):
        code, o = map_json("revoked")  # carol: UPN only, no SID extension, no binding
        self.assertEqual(code, 1)
        self.assertFalse(o["mapped"])
        self.assertEqual(o["method"], "upn")
        self.assertFalse(o["strong"])
        self.assertEqual(o["account"]["sAMAccountName"], "carol")  # named, though refused
        self.assertIn("strong_binding is full", o["reason"])
        code, o = map_json("revoked", strong_binding="compatibility")
        self.assertEqual(code, 0)
        self.assertTrue(o["mapped"])
        self.assertFalse(o["strong"])
        self.assertEqual(o["mode"], "compatibility")
        self.assertIn("compatibility", o["reason"])

    def test_no_upn_and_no_binding_is_not_mapped(self):
        code, o = map_json("noupn")
        self.assertEqual(code, 1)
        self.assertIsNone(o["account"])
        self.assertIsNone(o["method"])
        self.assertIn("no UPN", o["reason"])
        self.assertEqual(o["bindings"]["rfc822"], "X509:<RFC822>noupn@corp.example.test")

    def test_certificate_from_a_ca_outside_ntauth_gets_no_implicit_mapping(self):
        code, o = map_json("untrusted", strong_binding="disabled")
        self.assertEqual(code, 1)
        self.assertIn("not allowed", o["reason"])

    def test_account_outside_require_group_is_refused(self):
        code, o = map_json("serverauth", strong_binding="disabled")  # frank is not in EAS Users
        self.assertEqual(code, 1)
        self.assertEqual(o["reason"], "account frank is not a member of " + GROUP)
        code, o = map_json("serverauth", strong_binding="disabled", require_group="")
        self.assertEqual(code, 0)

    def test_subject_template_rule(self):
        # noupn's subject is CN=WorkspaceONEUEM.noupn: the template finds no account named noupn.
        code, o = map_json("noupn", strong_binding="compatibility",
                           subject_template="CN=WorkspaceONEUEM.{sAMAccountName}")
        self.assertEqual(code, 1)
        self.assertIn("subject-template value noupn", o["reason"])


class MapCertText(unittest.TestCase):
    def test_text_report_names_the_verdict_and_the_strong_values_to_add(self):
        result = map_cert("revoked", json_output=False)
        self.assertEqual(result.returncode, 1)
        out = result.stdout
        self.assertIn("account:      CN=carol,CN=Users,DC=corp,DC=example,DC=test", out)
        self.assertIn("method:       upn", out)
        self.assertIn("strong:       no", out)
        self.assertIn("mode:         full", out)
        self.assertIn("verdict:      refused: weak mapping (upn) refused", out)
        self.assertIn("add one of these values", out)
        self.assertRegex(out, r"X509:<I>DC=test,DC=example,DC=corp,CN=EASEdge Lab Issuing CA<SR>[0-9a-f]+\n")
        self.assertRegex(out, r"X509:<SKI>[0-9a-f]{40}\n")
        self.assertRegex(out, r"X509:<SHA1-PUKEY>[0-9a-f]{40}\n")

    def test_adding_the_suggested_value_makes_the_mapping_strong(self):
        _, refused = map_json("revoked")
        ldif_path = LAB.path("users-bound.ldif")
        with open(LAB.path("users.ldif")) as src, open(ldif_path, "w") as dst:
            text = src.read()
            anchor = "mail: carol@corp.example.test\n"
            dst.write(text.replace(anchor, anchor + "altSecurityIdentities: %s\n" % refused["bindings"]["ski"]))
        code, o = map_json("revoked", directory={"ldif": "users-bound.ldif"})
        self.assertEqual(code, 0)
        self.assertEqual(o["method"], "altsec:ski")
        self.assertTrue(o["strong"])


class MapCertErrors(unittest.TestCase):
    def test_config_without_mapping_is_a_usage_error(self):
        result = map_cert("alice", harness.base_config("http://127.0.0.1:9"))
        self.assertEqual(result.returncode, 2)
        self.assertIn("no mapping section", result.stderr)

    def test_missing_certificate_is_a_usage_error(self):
        result = map_cert("alice", cert=LAB.path("absent.pem"))
        self.assertEqual(result.returncode, 2)
        self.assertIn("absent.pem", result.stderr)

    def test_ldif_syntax_error_names_file_and_line(self):
        with open(LAB.path("broken.ldif"), "w") as f:
            f.write("dn: CN=x,DC=corp\nobjectClass: user\nsAMAccountName x\n")
        result = map_cert("alice", mapping_config(directory={"ldif": "broken.ldif"}))
        self.assertEqual(result.returncode, 2)
        self.assertIn("broken.ldif:3:", result.stderr)


if __name__ == "__main__":
    unittest.main()
