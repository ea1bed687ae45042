"""Kerberos constrained delegation against a real Samba AD DC on loopback.

kcd-check's verdicts for a correct and broken set-ups, tokens for interleaved users that a Negotiate
acceptor (with Exchange's keytab) sees as the right principals, refusals, and a KDC taken away mid-run.
Drives tests/auth/kerberos/kerberos_probe (KERBEROS_PROBE_BIN) and tests/integration/negotiate_acceptor.py;
the DC and the acceptor come from kerberos_fixture.py.
"""

import base64
import http.client
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from kerberos_fixture import REALM, SPN, KdcRelay, SambaDC, copy_keytabs, require_kerberos_lab, start_acceptor, \
    write_krb5_conf  # noqa: E402

PROBE_BIN = os.environ.get("KERBEROS_PROBE_BIN", "")


class Probe:
    """kerberos_probe CONFIG serve: Delegator::token_for over a line protocol."""

    def __init__(self, config, env, log_path):
        self.log = open(log_path, "w")
        self.proc = subprocess.Popen([PROBE_BIN, config, "serve"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self.log, text=True, env=env)

    def ask(self, line):
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        answer = self.proc.stdout.readline().rstrip("\n")
        if not answer:
            raise RuntimeError("kerberos_probe died; its log: " + open(self.log.name).read())
        return answer

    def token(self, upn):
        """('ok', 'inline'|'worker', header) or ('fail', kind, message)."""
        parts = self.ask("token " + upn).split(" ", 2)
        if parts[0] == "ok":
            return "ok", parts[1], parts[2]
        return "fail", parts[1], parts[2] if len(parts) > 2 else ""

    def stats(self):
        return dict(item.split("=") for item in self.ask("stats").split()[1:])

    def stop(self):
        self.proc.stdin.close()
        self.proc.wait(30)
        self.proc.stdout.close()
        self.log.close()


class KerberosTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not PROBE_BIN:
            raise unittest.SkipTest("KERBEROS_PROBE_BIN is not set (build the kerberos_probe target)")
        cls.python = require_kerberos_lab()
        cls.dc = SambaDC()
        cls.work = tempfile.mkdtemp(prefix="easedge-krb-it-")
        copy_keytabs(cls.dc, cls.work)
        for name in ("cert.pem", "key.pem"):  # the config loader wants tls files; kerberos never reads them
            open(os.path.join(cls.work, name), "w").close()
        write_krb5_conf(os.path.join(cls.work, "krb5.conf"), 88)
        cls.env = dict(os.environ, KRB5_CONFIG=os.path.join(cls.work, "krb5.conf"), KRB5CCNAME="MEMORY:unused",
                       KRB5RCACHEDIR=cls.work)
        cls.acceptor = start_acceptor(cls.python, cls.work)
        cls.acceptor_port = cls.acceptor.port

    @classmethod
    def tearDownClass(cls):
        cls.acceptor.stop()
        cls.dc.stop()
        if not os.environ.get("EASEDGE_KEEP_TEST_DIRS"):
            shutil.rmtree(cls.work, ignore_errors=True)

    # --- helpers -------------------------------------------------------------------------------------

    def config(self, name, account="easproxy", service=SPN, **kerberos):
        section = {"keytab": account + ".keytab", "principal": "%s@%s" % (account, REALM), "service": service}
        section.update(kerberos)
        config = {"listen": ["127.0.0.1:0"],
                  "tls": {"certificate": "cert.pem", "private_key": "key.pem", "client_certificate": "off"},
                  "upstream": {"url": "http://127.0.0.1:%d" % self.acceptor_port, "auth": "kerberos",
                               "kerberos": section}}
        path = os.path.join(self.work, name + ".yaml")
        with open(path, "w") as f:
            f.write(harness.to_yaml(config) + "\n")
        return path

    def kcd_check(self, config, user, env=None):
        result = subprocess.run([PROBE_BIN, config, "kcd-check", user], capture_output=True, text=True, timeout=120,
                                env=env or self.env, stdin=subprocess.DEVNULL)
        return result.returncode, result.stdout + result.stderr

    def probe(self, config, env=None):
        probe = Probe(config, env or self.env, config + ".probe.log")
        self.addCleanup(probe.stop)
        return probe

    def upstream(self):
        connection = http.client.HTTPConnection("127.0.0.1", self.acceptor_port, timeout=30)
        self.addCleanup(connection.close)
        return connection

    @staticmethod
    def send(connection, header, target="/Microsoft-Server-ActiveSync?Cmd=Sync"):
        headers = {"Authorization": header} if header else {}
        connection.request("POST", target, body=b"<sync/>", headers=headers)
        response = connection.getresponse()
        return response.status, json.loads(response.read())

    def assert_ok_token(self, answer):
        self.assertEqual(answer[0], "ok", answer)
        self.assertTrue(answer[2].startswith("Negotiate "), answer)

    # --- kcd-check -----------------------------------------------------------------------------------

    def test_kcd_check_passes_for_a_correct_setup(self):
        code, out = self.kcd_check(self.config("good"), "alice@corp.example.test")
        self.assertEqual(code, 0, out)
        for expected in ("[1/5] keytab", "aes256-cts", "[2/5] service TGT", "forwardable",
                         "[3/5] S4U2Self", "evidence ticket for alice\\@corp.example.test@CORP.EXAMPLE.TEST, forwardable",
                         "[4/5] S4U2Proxy", "service ticket for alice\\@corp.example.test@CORP.EXAMPLE.TEST",
                         "[5/5] Negotiate token", "RESULT: OK"):
            self.assertIn(expected, out)
        self.assertNotIn("FAIL", out)

    def test_kcd_check_names_the_delegation_list_for_a_service_outside_it(self):
        code, out = self.kcd_check(self.config("outside", service="HTTP/other.corp.example.test"),
                                   "alice@corp.example.test")
        self.assertEqual(code, 1, out)
        self.assertIn("[3/5] S4U2Self", out)
        self.assertIn("FAILED at step 4 (S4U2Proxy)", out)
        self.assertIn("msDS-AllowedToDelegateTo of easproxy", out)
        self.assertIn("Set-ADUser easproxy -Add @{'msDS-AllowedToDelegateTo'='HTTP/other.corp.example.test'}", out)

    def test_kcd_check_asks_for_protocol_transition_when_it_is_off(self):
        code, out = self.kcd_check(self.config("noany", account="easproxy-noany"), "alice@corp.example.test")
        self.assertEqual(code, 1, out)
        self.assertIn("NOT forwardable", out)
        self.assertIn("FAILED at step 4 (S4U2Proxy)", out)
        self.assertIn("Use any authentication protocol", out)
        self.assertIn("Set-ADAccountControl easproxy-noany -TrustedToAuthForDelegation $true", out)
        self.assertNotIn("msDS-AllowedToDelegateTo'=", out, "the delegation list is fine: don't send them there")

    def test_kcd_check_finds_an_spn_nobody_holds(self):
        code, out = self.kcd_check(self.config("nospn", service="HTTP/nowhere.corp.example.test"),
                                   "alice@corp.example.test")
        self.assertEqual(code, 1, out)
        self.assertIn("no account holds the SPN HTTP/nowhere.corp.example.test", out)
        self.assertIn("setspn -Q HTTP/nowhere.corp.example.test", out)

    def test_kcd_check_spots_a_upn_suffix_the_account_does_not_have(self):
        code, out = self.kcd_check(self.config("good"), "krbupn@wrong.example.org")
        self.assertEqual(code, 1, out)
        self.assertIn("FAILED at step 3 (S4U2Self)", out)
        self.assertIn("krbupn@CORP.EXAMPLE.TEST (sAMAccountName) exists", out)
        self.assertIn("Set-ADUser krbupn -UserPrincipalName krbupn@wrong.example.org", out)
        self.assertIn("UPNSuffixes @{Add='wrong.example.org'}", out)
        # The UPN itself and the implicit UPN (sAMAccountName@dns-domain) both name the account.
        for user in ("kerberos.upn@corp.example.test", "krbupn@corp.example.test"):
            code, out = self.kcd_check(self.config("good"), user)
            self.assertEqual(code, 0, out)
            self.assertIn("RESULT: OK", out)

    def test_kcd_check_refuses_a_disabled_user(self):
        code, out = self.kcd_check(self.config("good"), "disabled@corp.example.test")
        self.assertEqual(code, 1, out)
        self.assertIn("disabled, locked out, expired or restricted", out)
        self.assertIn("the proxy answers this user 403", out)

    def test_kcd_check_diagnoses_a_stale_keytab(self):
        stale = os.path.join(self.work, "stale.keytab")
        subprocess.run(["ktutil"], input="addent -password -p easproxy@%s -k 9 -e aes256-cts-hmac-sha1-96\n"
                       "Not!ThePassw0rd\nwkt %s\nq\n" % (REALM, stale), text=True, capture_output=True, check=True)
        code, out = self.kcd_check(self.config("stale", account="easproxy", keytab="stale.keytab"),
                                   "alice@corp.example.test")
        self.assertEqual(code, 1, out)
        self.assertIn("aes256-cts (kvno 9)", out)
        self.assertIn("FAILED at step 2 (service TGT)", out)
        self.assertIn("does not match the password of easproxy", out)
        self.assertIn("ktpass /princ easproxy@CORP.EXAMPLE.TEST", out)

    def test_kcd_check_reports_an_unreachable_kdc(self):
        conf = os.path.join(self.work, "krb5-dead.conf")
        with socket.socket() as s:  # a port nobody listens on
            s.bind(("127.0.0.1", 0))
            dead = s.getsockname()[1]
        write_krb5_conf(conf, dead)
        code, out = self.kcd_check(self.config("good"), "alice@corp.example.test", dict(self.env, KRB5_CONFIG=conf))
        self.assertEqual(code, 1, out)
        self.assertIn("FAILED at step 2 (service TGT)", out)
        self.assertIn("no KDC of the realm answered", out)
        self.assertIn("503", out)

    # --- token_for -----------------------------------------------------------------------------------

    def test_interleaved_users_are_each_seen_as_themselves_on_one_connection(self):
        probe = self.probe(self.config("interleaved"))
        connection = self.upstream()
        users = ["alice@corp.example.test", "bob@corp.example.test", "alice@corp.example.test",
                 "kerberos.upn@corp.example.test", "bob@corp.example.test", "Alice@Corp.Example.Test"]
        seen_connections = set()
        for i, user in enumerate(users):
            answer = probe.token(user)
            self.assert_ok_token(answer)
            first_time = user.lower() not in [u.lower() for u in users[:i]]
            self.assertEqual(answer[1], "worker" if first_time else "inline",
                             "%s: KDC work on a worker, cached users answered inline" % user)
            status, record = self.send(connection, answer[2])
            self.assertEqual(status, 200, record)
            self.assertEqual(record["principal"], "%s@%s" % (user.lower().replace("@", "\\@"), REALM))
            seen_connections.add(record["connection"])
        self.assertEqual(len(seen_connections), 1, "all requests on one keep-alive connection")
        stats = probe.stats()
        self.assertEqual(stats["exchanges"], "3", stats)  # alice, bob, kerberos.upn: the rest from the cache
        self.assertEqual(stats["hits"], "3", stats)
        self.assertEqual(stats["cached"], "3", stats)

    def test_every_token_is_fresh_and_a_replayed_one_is_rejected(self):
        probe = self.probe(self.config("fresh"))
        connection = self.upstream()
        first = probe.token("alice@corp.example.test")
        second = probe.token("alice@corp.example.test")
        self.assert_ok_token(first)
        self.assert_ok_token(second)
        self.assertNotEqual(first[2], second[2])
        self.assertEqual(self.send(connection, first[2])[0], 200)
        self.assertEqual(self.send(connection, second[2])[0], 200)
        status, record = self.send(connection, first[2])
        self.assertEqual(status, 401, "the acceptor's replay cache rejects a reused authenticator")
        self.assertIn("rejected", record["error"])

    def test_the_acceptor_refuses_requests_without_a_valid_token(self):
        connection = self.upstream()
        self.assertEqual(self.send(connection, None)[0], 401)
        self.assertEqual(self.send(connection, "Negotiate " + base64.b64encode(b"\x60\x03junk").decode())[0], 401)
        self.assertEqual(self.send(connection, "Basic YWxpY2U6cGFzcw==")[0], 401)

    def test_disabled_and_unknown_users_are_refused(self):
        probe = self.probe(self.config("refused"))
        for user in ("disabled@corp.example.test", "nobody@corp.example.test"):
            answer = probe.token(user)
            self.assertEqual(answer[:2], ("fail", "user_refused"), answer)
            self.assertIn("S4U2Self for " + user, answer[2])
        self.assert_ok_token(probe.token("alice@corp.example.test"))

    def test_setup_errors_name_cause_and_fix(self):
        probe = self.probe(self.config("outside-probe", service="HTTP/other.corp.example.test"))
        answer = probe.token("alice@corp.example.test")
        self.assertEqual(answer[:2], ("fail", "setup_error"), answer)
        self.assertIn("S4U2Proxy", answer[2])
        self.assertIn("fix: add HTTP/other.corp.example.test to the delegation list of easproxy", answer[2])
        probe = self.probe(self.config("noany-probe", account="easproxy-noany"))
        answer = probe.token("alice@corp.example.test")
        self.assertEqual(answer[:2], ("fail", "setup_error"), answer)
        self.assertIn("TrustedToAuthForDelegation", answer[2])

    def test_cached_users_keep_working_while_the_kdc_is_away(self):
        relay = KdcRelay()
        self.addCleanup(relay.stop)
        conf = os.path.join(self.work, "krb5-relay.conf")
        write_krb5_conf(conf, relay.port)
        probe = self.probe(self.config("outage"), dict(self.env, KRB5_CONFIG=conf))
        connection = self.upstream()
        answer = probe.token("alice@corp.example.test")
        self.assert_ok_token(answer)
        self.assertEqual(answer[1], "worker")

        relay.stop()  # the KDC is gone (LDAP and everything else stay up)
        for _ in range(3):
            answer = probe.token("alice@corp.example.test")
            self.assert_ok_token(answer)
            self.assertEqual(answer[1], "inline")
            status, record = self.send(connection, answer[2])
            self.assertEqual((status, record["principal"]), (200, "alice\\@corp.example.test@" + REALM))
        answer = probe.token("bob@corp.example.test")
        self.assertEqual(answer[:2], ("fail", "kdc_unavailable"), answer)
        self.assertIn("no KDC of the realm answered", answer[2])

        relay = KdcRelay(relay.port)  # the KDC is back on the same address
        self.addCleanup(relay.stop)
        answer = probe.token("bob@corp.example.test")
        self.assert_ok_token(answer)
        status, record = self.send(connection, answer[2])
        self.assertEqual((status, record["principal"]), (200, "bob\\@corp.example.test@" + REALM))
        stats = probe.stats()
        self.assertEqual(stats["unavailable"], "1", stats)


if __name__ == "__main__":
    unittest.main()
