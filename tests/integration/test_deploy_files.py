#!/usr/bin/env python3
"""deploy/: the Kubernetes example parses and its drain arithmetic holds; the configuration it carries uses only
keys easedge knows (with EASEDGE_BIN); the HAProxy farm config names every value test_farm.py fills in.

  EASEDGE_BIN=build/proxy/easedge python3 tests/integration/test_deploy_files.py -v
"""

import base64
import glob
import os
import re
import sys
import tempfile
import unittest

import yaml

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

KUBERNETES = os.path.join(h.SOURCE_DIR, "deploy", "kubernetes")
HAPROXY = os.path.join(h.SOURCE_DIR, "deploy", "haproxy", "easedge-farm.cfg.in")
# Seconds kept free after the drain deadline before the kubelet's SIGKILL.
GRACE_MARGIN = 5


def manifests():
    docs = []
    for path in sorted(glob.glob(os.path.join(KUBERNETES, "*.yaml"))):
        with open(path) as f:
            docs += [d for d in yaml.safe_load_all(f) if d]
    return {d["kind"]: d for d in docs}


class Kubernetes(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.kinds = manifests()
        cls.easedge = yaml.safe_load(cls.kinds["ConfigMap"]["data"]["easedge.yaml"])
        cls.pod = cls.kinds["Deployment"]["spec"]["template"]["spec"]
        cls.container = cls.pod["containers"][0]

    def test_has_the_parts_a_farm_needs(self):
        self.assertLessEqual({"ConfigMap", "Deployment", "Service", "PodDisruptionBudget"}, set(self.kinds))

    def test_grace_period_covers_pre_stop_drain_delay_and_drain(self):
        timeouts = self.easedge["timeouts"]
        pre_stop = self.container["lifecycle"]["preStop"]["sleep"]["seconds"]
        needed = pre_stop + timeouts["drain_delay_seconds"] + timeouts["drain_seconds"] + GRACE_MARGIN
        self.assertGreaterEqual(self.pod["terminationGracePeriodSeconds"], needed)

    def test_readiness_is_readyz_on_the_admin_listener(self):
        probe = self.container["readinessProbe"]["httpGet"]
        self.assertEqual(probe["path"], "/readyz")
        ports = {p["name"]: p["containerPort"] for p in self.container["ports"]}
        self.assertEqual(self.easedge["admin"]["listen"], "0.0.0.0:%d" % ports[probe["port"]])

    def test_device_addresses_survive_the_service(self):
        proxy_v2 = any(isinstance(l, dict) and l.get("proxy_protocol") for l in self.easedge["listen"])
        self.assertTrue(proxy_v2 or self.kinds["Service"]["spec"].get("externalTrafficPolicy") == "Local")

    def test_keys_and_certificates_come_from_secrets(self):
        secret_mounts = {v["name"] for v in self.pod["volumes"] if "secret" in v}
        mounts = {m["mountPath"]: m["name"] for m in self.container["volumeMounts"]}
        tls = self.easedge["tls"]
        for key in ("certificate", "private_key", "client_ca", "session_ticket_keys"):
            folder = os.path.dirname(tls[key])
            self.assertIn(mounts.get(folder), secret_mounts, "tls.%s is not on a Secret volume" % key)

    def test_easedge_knows_every_key_of_the_config_map(self):
        if h.require_binaries("EASEDGE_BIN"):
            self.skipTest("EASEDGE_BIN is not set")
        with tempfile.NamedTemporaryFile("w", suffix=".yaml") as f:
            f.write(self.kinds["ConfigMap"]["data"]["easedge.yaml"])
            f.flush()
            code, _, err = h.run_easedge("--check-config", f.name)
        # The certificate files do not exist here: the first complaint must be about one of them, not a key.
        self.assertEqual(code, 1, err)
        self.assertNotIn("unknown key", err)
        self.assertIn("/etc/easedge/tls/", err)

    def test_the_config_map_loads_with_its_secrets_in_place(self):
        """Every rule, not just the keys: with the Secrets' files where the pod mounts them (the lab PKI here),
        `--check-config` accepts the ConfigMap as it is (e.g. the admin listener off loopback has its auth)."""
        if h.require_binaries("EASEDGE_BIN"):
            self.skipTest("EASEDGE_BIN is not set")
        lab = h.Lab()
        self.addCleanup(lab.cleanup)
        folder = lab.fresh_dir("kubernetes")
        with open(os.path.join(folder, "ticket-keys"), "w") as f:
            f.write(base64.b64encode(os.urandom(80)).decode() + "\n")
        with open(os.path.join(folder, "token"), "w") as f:
            f.write(os.urandom(32).hex() + "\n")
        secrets = {"/etc/easedge/tls/server-chain.pem": lab.path("server-chain.pem"),
                   "/etc/easedge/tls/server.key": lab.path("server.key"),
                   "/etc/easedge/tls/ca-bundle.pem": lab.path("ca-bundle.pem"),
                   "/etc/easedge/tls/exchange-ca.pem": lab.path("ca-bundle.pem"),
                   "/etc/easedge/ticket-keys/ticket-keys": os.path.join(folder, "ticket-keys"),
                   "/etc/easedge/admin/token": os.path.join(folder, "token")}
        text = self.kinds["ConfigMap"]["data"]["easedge.yaml"]
        for mounted, local in secrets.items():
            text = text.replace(mounted, local)
        self.assertNotIn("/etc/easedge/", text, "a path the test does not provide")
        # --check-config resolves upstream names; the example's Exchange has none here.
        text = text.replace("https://exchange.corp.example.com", "https://127.0.0.1")
        config = os.path.join(folder, "easedge.yaml")
        with open(config, "w") as f:
            f.write(text)
        code, out, err = h.run_easedge("--check-config", config)
        self.assertEqual(code, 0, out + err)


class HaproxyConfig(unittest.TestCase):
    def test_placeholders_are_the_ones_the_farm_test_fills(self):
        with open(HAPROXY) as f:
            names = set(re.findall(r"@(\w+)@", "\n".join(l for l in f if not l.startswith("#"))))
        expected = {"MAXCONN", "BIND"} | {"NODE%d" % i for i in (1, 2, 3)} | {"NODE%d_ADMIN" % i for i in (1, 2, 3)}
        self.assertEqual(names, expected)


if __name__ == "__main__":
    unittest.main()
