"""easedge with `upstream.auth: kerberos` in front of a Negotiate-only stand-in Exchange, against Samba AD.

Devices alice and bob on their own keep-alive connections, interleaved: Exchange sees each as themselves,
over shared upstream connections. A disabled user gets 403, a service outside the delegation list 502
with the fix in the log, Exchange's 401 to a fresh token 502 without a retry loop, a KDC taken away 503 +
Retry-After for new users while cached users keep working, and `easedge kcd-check` gives its verdicts.
"""

import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from kerberos_fixture import REALM, SPN, KdcRelay, SambaDC, acceptor_requests, copy_keytabs, \
    require_kerberos_lab, start_acceptor, write_krb5_conf  # noqa: E402


def principal(user):
    """How the acceptor names a user impersonated by UPN (the enterprise form)."""
    return "%s\\@corp.example.test@%s" % (user, REALM)


def issue_device(lab, name, upn):
    """A device certificate from the lab's issuing CA for UPN (the lab PKI has no device for every user)."""
    d = lab.fresh_dir("device-" + name)
    key, csr, cert, ext = (os.path.join(d, n) for n in ("key.pem", "req.csr", "cert.pem", "ext.cnf"))
    with open(ext, "w") as f:
        f.write("basicConstraints = critical, CA:FALSE\nkeyUsage = critical, digitalSignature, keyEncipherment\n"
                "extendedKeyUsage = clientAuth\nsubjectAltName = otherName:1.3.6.1.4.1.311.20.2.3;UTF8:%s\n" % upn)
    subprocess.run(["openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-keyout", key, "-subj", "/CN=WorkspaceONEUEM." + name, "-out", csr],
                   check=True, capture_output=True)
    subprocess.run(["openssl", "x509", "-req", "-in", csr, "-CA", lab.path("issuing-ca.pem"), "-CAkey",
                    lab.path("issuing-ca.key"), "-CAcreateserial", "-days", "30", "-extfile", ext, "-out", cert],
                   check=True, capture_output=True)
    return cert, key


class KerberosProxyTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not harness.EASEDGE_BIN:
            raise unittest.SkipTest("EASEDGE_BIN is not set (build the easedge target)")
        cls.python = require_kerberos_lab()
        cls.lab = harness.Lab()
        cls.dc = SambaDC()
        cls.work = tempfile.mkdtemp(prefix="easedge-krb-proxy-")
        copy_keytabs(cls.dc, cls.work)
        write_krb5_conf(os.path.join(cls.work, "krb5.conf"), 88)
        # easedge and the acceptor inherit the environment: point both at the test realm.
        cls.saved_env = {k: os.environ.get(k) for k in ("KRB5_CONFIG", "KRB5RCACHEDIR", "KRB5CCNAME")}
        os.environ.update(KRB5_CONFIG=os.path.join(cls.work, "krb5.conf"), KRB5RCACHEDIR=cls.work,
                          KRB5CCNAME="MEMORY:unused")
        cls.acceptor = start_acceptor(cls.python, cls.work)

    @classmethod
    def tearDownClass(cls):
        cls.acceptor.stop()
        cls.dc.stop()
        for k, v in cls.saved_env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        cls.lab.cleanup()
        shutil.rmtree(cls.work, ignore_errors=True)

    def easedge(self, account="easproxy", service=SPN, acceptor=None, **kerberos):
        section = {"keytab": os.path.join(self.work, account + ".keytab"),
                   "principal": "%s@%s" % (account, REALM), "service": service}
        section.update(kerberos)
        url = "http://127.0.0.1:%d" % (acceptor or self.acceptor).port
        proxy = harness.Easedge(self.lab, harness.base_config(url, upstream={"url": url, "auth": "kerberos",
                                                                             "kerberos": section}))
        self.addCleanup(proxy.stop)
        return proxy

    def get(self, connection, headers=None):
        connection.request("GET", "/Microsoft-Server-ActiveSync?Cmd=Sync&User=x&DeviceId=d1&DeviceType=t",
                           headers=headers or {})
        response = connection.getresponse()
        return response, response.read()

    def test_interleaved_devices_are_each_seen_as_their_own_user(self):
        proxy = self.easedge()
        connections = {user: harness.https_connection(self.lab, proxy.port, user) for user in ("alice", "bob")}
        for c in connections.values():
            self.addCleanup(c.close)
        before = len(acceptor_requests(self.acceptor))
        order = ["alice", "bob", "alice", "alice", "bob", "bob", "alice", "bob"]
        for user in order:
            # A client's own Authorization header never reaches Exchange in this mode.
            response, body = self.get(connections[user], {"Authorization": "Basic ZXZlOnNlY3JldA=="})
            self.assertEqual(response.status, 200, body)
            self.assertEqual(response.getheader("X-Kerberos-Principal"), principal(user))
        seen = acceptor_requests(self.acceptor)[before:]
        self.assertEqual([r["principal"] for r in seen], [principal(u) for u in order])
        self.assertLess(len({r["connection"] for r in seen}), len(order), "upstream connections are reused")

    def test_a_disabled_user_is_refused_with_403(self):
        proxy = self.easedge()
        cert, key = issue_device(self.lab, "disabled", "disabled@corp.example.test")
        result = harness.curl(self.lab, proxy.url(), extra=["--cert", cert, "--key", key])
        self.assertEqual(result.status, 403, result)

    def test_a_service_outside_the_delegation_list_is_a_502_with_the_fix_in_the_log(self):
        other = start_acceptor(self.python, self.work, keytab="other.keytab", name="other")
        self.addCleanup(other.stop)
        proxy = self.easedge(service="HTTP/other.corp.example.test", acceptor=other)
        result = harness.curl(self.lab, proxy.url(), device="alice")
        self.assertEqual(result.status, 502, result)
        self.assertEqual(acceptor_requests(other), [], "nothing reaches the upstream without a ticket")
        log = proxy.child.output()
        self.assertIn("msDS-AllowedToDelegateTo", log)
        self.assertIn("Set-ADUser easproxy -Add @{'msDS-AllowedToDelegateTo'='HTTP/other.corp.example.test'}", log)

    def test_an_upstream_401_to_a_fresh_token_is_a_502_without_a_retry_loop(self):
        # This "Exchange" holds another service's key: it cannot read tickets for HTTP/exchange.
        wrong = start_acceptor(self.python, self.work, keytab="other.keytab", name="wrong-key")
        self.addCleanup(wrong.stop)
        proxy = self.easedge(acceptor=wrong)
        result = harness.curl(self.lab, proxy.url(), device="bob")
        self.assertEqual(result.status, 502, result)
        self.assertEqual([r["status"] for r in acceptor_requests(wrong)], [401], "one attempt, no loop")

    def test_new_users_get_503_while_the_kdc_is_away_and_cached_users_keep_working(self):
        relay = KdcRelay()
        self.addCleanup(relay.stop)
        conf = os.path.join(self.work, "krb5-relay.conf")
        write_krb5_conf(conf, relay.port)
        saved = os.environ["KRB5_CONFIG"]
        os.environ["KRB5_CONFIG"] = conf
        try:
            proxy = self.easedge()
        finally:
            os.environ["KRB5_CONFIG"] = saved
        self.assertEqual(harness.curl(self.lab, proxy.url(), device="alice").status, 200)
        relay.stop()
        for _ in range(3):
            result = harness.curl(self.lab, proxy.url(), device="alice")
            self.assertEqual(result.status, 200, result)
            self.assertEqual(result.header("X-Kerberos-Principal"), principal("alice"))
        result = harness.curl(self.lab, proxy.url(), device="bob")
        self.assertEqual(result.status, 503, result)
        self.assertIsNotNone(result.header("Retry-After"), result)
        relay = KdcRelay(relay.port)
        self.addCleanup(relay.stop)
        result = harness.curl(self.lab, proxy.url(), device="bob")
        self.assertEqual((result.status, result.header("X-Kerberos-Principal")), (200, principal("bob")), result)

    def test_each_exchange_server_gets_a_ticket_for_its_own_spn(self):
        # Two Exchange servers, each holding only its own key (exch1/exch2.keytab): a ticket for the other
        # server's SPN, or for the service-wide one, would be a 401 there.
        acceptors = [start_acceptor(self.python, self.work, keytab="exch%d.keytab" % i, name="exch%d" % i)
                     for i in (1, 2)]
        for acceptor in acceptors:
            self.addCleanup(acceptor.stop)
        spns = ["HTTP/exch%d.corp.example.test" % i for i in (1, 2)]
        config = harness.base_config("")
        config["upstream"] = {
            "servers": [{"url": "http://127.0.0.1:%d" % a.port, "service": spn} for a, spn in zip(acceptors, spns)],
            "auth": "kerberos",
            "kerberos": {"keytab": os.path.join(self.work, "easproxy.keytab"), "principal": "easproxy@" + REALM}}
        proxy = harness.Easedge(self.lab, config)
        self.addCleanup(proxy.stop)
        order = ["alice", "bob", "alice", "bob", "alice", "bob"]
        for user in order:
            result = harness.curl(self.lab, proxy.url(), device=user)
            self.assertEqual(result.status, 200, result)
            self.assertEqual(result.header("X-Kerberos-Principal"), principal(user))
        # Least connections, ties in turn: one request at a time lands on both servers.
        seen = [acceptor_requests(a) for a in acceptors]
        for spn, requests in zip(spns, seen):
            self.assertTrue(requests, "no request reached %s" % spn)
            self.assertEqual({(r["status"], r["service"]) for r in requests}, {(200, spn + "@" + REALM)})
        self.assertEqual(sorted(r["principal"] for r in seen[0] + seen[1]), sorted(principal(u) for u in order))
        # exch2 stopped: its connect fails before a byte was sent, so the request goes to exch1 with a
        # ticket for exch1, never exch2's ticket.
        acceptors[1].stop()
        for user in ("alice", "bob"):
            result = harness.curl(self.lab, proxy.url(), device=user)
            self.assertEqual(result.status, 200, result)
        after = acceptor_requests(acceptors[0])[len(seen[0]):]
        self.assertEqual([(r["principal"], r["service"]) for r in after],
                         [(principal(u), spns[0] + "@" + REALM) for u in ("alice", "bob")])

    def test_kcd_check_through_easedge(self):
        config = harness.write_config(self.lab, harness.base_config(
            "http://127.0.0.1:%d" % self.acceptor.port,
            upstream={"url": "http://127.0.0.1:%d" % self.acceptor.port, "auth": "kerberos",
                      "kerberos": {"keytab": os.path.join(self.work, "easproxy.keytab"),
                                   "principal": "easproxy@" + REALM, "service": SPN}}), "kcd.yaml")
        code, out, err = harness.run_easedge("kcd-check", "--config", config, "--user", "alice@corp.example.test",
                                             timeout=120)
        self.assertEqual(code, 0, out + err)
        self.assertIn("RESULT: OK", out)
        code, out, err = harness.run_easedge("kcd-check", "--config", config, "--user", "disabled@corp.example.test",
                                             timeout=120)
        self.assertEqual(code, 1, out + err)
        self.assertTrue(re.search(r"FAILED at step 3 \(S4U2Self\)", out), out)


if __name__ == "__main__":
    unittest.main()
