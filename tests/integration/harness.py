"""Test harness for easedge integration tests: lab PKI, stand-in Exchange, easedge, curl and raw TLS.

Python standard library only. Binaries come from the environment (set by tests/integration/CMakeLists.txt):
EASEDGE_BIN, STANDIN_BIN, EASEDGE_SOURCE_DIR. Every child process is killed when the test module ends,
also on failures (atexit as the last resort).
"""

import atexit
import hashlib
import http.client
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import threading
import time
import unittest
import urllib.error
import urllib.request

SOURCE_DIR = os.environ.get("EASEDGE_SOURCE_DIR", os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))
EASEDGE_BIN = os.environ.get("EASEDGE_BIN", "")
STANDIN_BIN = os.environ.get("STANDIN_BIN", "")
MAKE_LAB_PKI = os.path.join(SOURCE_DIR, "scripts", "make-lab-pki.sh")

# How long a child may take to print its "listening on" line.
STARTUP_TIMEOUT = 15.0
# Default socket timeout for raw clients: generous, so a slow shared CI machine does not fail a test.
IO_TIMEOUT = 10.0

DEVICES = ("alice", "bob", "revoked", "expired", "notyet", "noupn", "serverauth", "untrusted")

_children = []


def _kill_all():
    for child in list(_children):
        child.stop()


atexit.register(_kill_all)


class Lab:
    """A temporary folder holding one lab PKI (scripts/make-lab-pki.sh), shared by a test module."""

    def __init__(self, key_type="p256"):
        self.dir = tempfile.mkdtemp(prefix="easedge-it-")
        self.pki = os.path.join(self.dir, "pki")
        result = subprocess.run([MAKE_LAB_PKI, self.pki, "--key-type", key_type],
                                capture_output=True, text=True, timeout=120)
        if result.returncode != 0:
            raise RuntimeError("make-lab-pki.sh failed: " + result.stderr)
        self._counter = 0

    def path(self, *parts):
        return os.path.join(self.pki, *parts)

    def device(self, name):
        """(cert, key) paths of a device certificate."""
        return self.path("devices", name + ".pem"), self.path("devices", name + ".key")

    def device_der(self, name):
        with open(self.path("devices", name + ".pem")) as f:
            return ssl.PEM_cert_to_DER_cert(f.read())

    def fresh_dir(self, prefix):
        self._counter += 1
        d = os.path.join(self.dir, "%s-%d" % (prefix, self._counter))
        os.makedirs(d)
        return d

    def cleanup(self):
        shutil.rmtree(self.dir, ignore_errors=True)


SANITIZER_MARKERS = ("runtime error: ", "ERROR: AddressSanitizer", "ERROR: LeakSanitizer")


def built_with_sanitizers(binary):
    """Whether `binary` comes from a sanitizer build (EASEDGE_SANITIZE=ON): it then refers to ASan's runtime."""
    if not binary or not os.path.exists(binary):
        return False
    with open(binary, "rb") as f:
        return b"__asan_init" in f.read()


def stop_process(proc, grace=5):
    """SIGTERM, then SIGKILL after `grace` seconds; returns once the process is gone."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class Child:
    """A child process whose stderr is drained (and kept) by a thread; ready when a regex matches a line."""

    def __init__(self, argv, ready_regex, log_path, cwd=None, startup_timeout=STARTUP_TIMEOUT):
        self.argv = argv
        self.log_path = log_path
        self.lines = []
        self._ready = threading.Event()
        self._regex = re.compile(ready_regex)
        self.match = None
        self._log = open(log_path, "w")
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=self._log,
                                     stderr=subprocess.PIPE, cwd=cwd)
        _children.append(self)
        self._reader = threading.Thread(target=self._drain, daemon=True)
        self._reader.start()
        deadline = time.monotonic() + startup_timeout
        while not self._ready.wait(0.05):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self._reader.join(1)
                self.stop()
                raise RuntimeError("%s did not become ready (exit %s); its stderr:\n%s" %
                                   (os.path.basename(argv[0]), self.proc.returncode, self.output()))

    def _drain(self):
        for raw in self.proc.stderr:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            self.lines.append(line)
            self._log.write(line + "\n")
            self._log.flush()
            if not self._ready.is_set():
                m = self._regex.search(line)
                if m:
                    self.match = m
                    self._ready.set()

    def output(self):
        return "\n".join(self.lines)

    def alive(self):
        return self.proc.poll() is None

    def stop(self):
        if self in _children:
            _children.remove(self)
        stop_process(self.proc)
        self._reader.join(5)
        self.proc.stderr.close()
        self._log.close()
        self.fail_on_sanitizer_report()

    def fail_on_sanitizer_report(self):
        """In a sanitizer build (EASEDGE_SANITIZE=ON), a finding the process printed and went on from (UBSan) or
        reported at exit (LeakSanitizer) fails the test that ran it; the normal build never prints these."""
        for index, line in enumerate(self.lines):
            if any(marker in line for marker in SANITIZER_MARKERS):
                raise AssertionError("%s: sanitizer report:\n%s" % (os.path.basename(self.argv[0]),
                                                                   "\n".join(self.lines[index:index + 40])))


class Standin:
    """standin-exchange on 127.0.0.1:0 with a request log the tests read."""

    def __init__(self, lab, *args, listen="127.0.0.1:0"):
        d = lab.fresh_dir("standin")
        self.log_file = os.path.join(d, "requests.jsonl")
        argv = [STANDIN_BIN, "--listen", listen, "--threads", "2", "--log", self.log_file] + list(args)
        self.child = Child(argv, r"standin listening on (\S+):(\d+)", os.path.join(d, "stderr.log"))
        self.port = int(self.child.match.group(2))
        self.url = "http://127.0.0.1:%d" % self.port

    def requests(self):
        """Every request the stand-in answered so far, as dicts (ts, method, target, status, ...)."""
        if not os.path.exists(self.log_file):
            return []
        with open(self.log_file) as f:
            return [json.loads(line) for line in f if line.strip()]

    def saw(self, marker):
        """True when an answered request's target contains `marker`."""
        return any(marker in r["target"] for r in self.requests())

    def stop(self):
        self.child.stop()


def _yaml_scalar(value):
    if value is True:
        return "true"
    if value is False:
        return "false"
    if value is None:
        return "null"
    if isinstance(value, (int, float)):
        return str(value)
    return json.dumps(str(value))  # a JSON string is a valid YAML double-quoted scalar


def to_yaml(value, indent=0):
    """YAML text for nested dicts / lists / scalars (enough for easedge configs)."""
    pad = "  " * indent
    lines = []
    if isinstance(value, dict):
        for k, v in value.items():
            if isinstance(v, (dict, list)) and v:
                lines.append("%s%s:" % (pad, k))
                lines.append(to_yaml(v, indent + 1))
            elif isinstance(v, list):
                lines.append("%s%s: []" % (pad, k))
            elif isinstance(v, dict):
                lines.append("%s%s: {}" % (pad, k))
            else:
                lines.append("%s%s: %s" % (pad, k, _yaml_scalar(v)))
    elif isinstance(value, list):
        for v in value:
            if isinstance(v, (dict, list)):
                inner = to_yaml(v, indent + 1).lstrip()
                lines.append("%s- %s" % (pad, inner))
            else:
                lines.append("%s- %s" % (pad, _yaml_scalar(v)))
    else:
        lines.append(pad + _yaml_scalar(value))
    return "\n".join(lines)


def admin_get(port, path):
    """(status, text) of a plain GET to 127.0.0.1:port (the admin listener); an error status is an answer too."""
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path), timeout=IO_TIMEOUT) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def wait_until(predicate, timeout=15.0):
    """Calls predicate every 0.1 s until it returns something truthy or timeout seconds pass; returns its last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.1)


def base_config(upstream_url, **sections):
    """The issue's example config with paths relative to the PKI folder (where the config file is written).

    Keyword arguments replace or add top-level sections; a dict value for an existing dict section is merged.
    """
    config = {
        "listen": ["127.0.0.1:0"],
        "tls": {
            "certificate": "server-chain.pem",
            "private_key": "server.key",
            "client_ca": "ca-bundle.pem",
            "client_certificate": "required",
            "crl": ["issuing.crl"],
        },
        "upstream": {"url": upstream_url},
        # No balancer in front: a SIGTERM stops accepting at once (tests of the drain for balancers set it).
        "timeouts": {"drain_delay_seconds": 0},
        "threads": 2,
    }
    for key, value in sections.items():
        if isinstance(value, dict) and isinstance(config.get(key), dict):
            config[key] = dict(config[key], **value)
        elif value is None:
            config.pop(key, None)
        else:
            config[key] = value
    return config


def write_config(lab, config, name="easedge.yaml"):
    """Writes the config into the PKI folder (relative paths resolve there) and returns its path."""
    path = lab.path(name)
    with open(path, "w") as f:
        f.write(to_yaml(config) + "\n")
    return path


class Easedge:
    """The built easedge, started with a config dict, on 127.0.0.1:0; `port` is the bound port."""

    def __init__(self, lab, config, name="easedge.yaml", launcher=()):
        """`launcher`: a command that execs easedge in place (e.g. prlimit), so the child's pid stays easedge's."""
        self.lab = lab
        self.config_path = write_config(lab, config, name)
        d = lab.fresh_dir("easedge")
        # cwd elsewhere: relative paths must resolve against the config file's folder, not the cwd.
        self.child = Child(list(launcher) + [EASEDGE_BIN, "--config", self.config_path],
                           r"proxy listening on (\S+):(\d+)", os.path.join(d, "stderr.log"), cwd=d)
        self.port = int(self.child.match.group(2))
        self.base = "https://127.0.0.1:%d" % self.port

    def url(self, path="/Microsoft-Server-ActiveSync"):
        return self.base + path

    def stop(self):
        self.child.stop()


def run_easedge(*args, timeout=30):
    """Runs `easedge ARGS...` to completion: (exit code, stdout, stderr)."""
    result = subprocess.run([EASEDGE_BIN] + list(args), capture_output=True, text=True, timeout=timeout,
                            stdin=subprocess.DEVNULL)
    return result.returncode, result.stdout, result.stderr


class CurlResult:
    def __init__(self, returncode, status, headers, body, stderr):
        self.returncode = returncode  # curl's own exit code (0 = transfer completed)
        self.status = status          # last HTTP status, 0 when no response came
        self.headers = headers        # [(name, value)] of the last response
        self.body = body              # bytes
        self.stderr = stderr

    def header(self, name):
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None

    def json(self):
        return json.loads(self.body.decode("utf-8"))

    def __repr__(self):
        return "CurlResult(curl=%d, status=%d, body=%r, stderr=%r)" % (
            self.returncode, self.status, self.body[:300], self.stderr[-300:])


def curl(lab, url, device=None, method=None, headers=(), data=None, data_file=None, extra=(), timeout=60):
    """curl as a device would run it: --cacert the lab CA, optional client certificate by device name."""
    d = lab.fresh_dir("curl")
    header_file = os.path.join(d, "headers")
    body_file = os.path.join(d, "body")
    argv = ["curl", "-sS", "--cacert", lab.path("ca-bundle.pem"), "-D", header_file, "-o", body_file,
            "--max-time", str(timeout)]
    if device:
        cert, key = lab.device(device)
        argv += ["--cert", cert, "--key", key]
    if method:
        argv += ["-X", method]
    for h in headers:
        argv += ["-H", h]
    if data is not None:
        data_file = os.path.join(d, "request-body")
        with open(data_file, "wb") as f:
            f.write(data if isinstance(data, bytes) else data.encode())
    if data_file is not None:
        argv += ["--data-binary", "@" + data_file]
    argv += list(extra) + [url]
    result = subprocess.run(argv, capture_output=True, timeout=timeout + 10, stdin=subprocess.DEVNULL)
    status, parsed = 0, []
    if os.path.exists(header_file):
        with open(header_file, "rb") as f:
            raw = f.read().decode("latin-1")
        # -D holds every response (100 Continue, then the final one): keep the last block.
        for block in re.split(r"\r?\n\r?\n", raw):
            lines = [l for l in block.splitlines() if l]
            if not lines or not lines[0].startswith("HTTP/"):
                continue
            status = int(lines[0].split()[1])
            parsed = [tuple(part.strip() for part in l.split(":", 1)) for l in lines[1:] if ":" in l]
    body = b""
    if os.path.exists(body_file):
        with open(body_file, "rb") as f:
            body = f.read()
    shutil.rmtree(d, ignore_errors=True)
    return CurlResult(result.returncode, status, parsed, body, result.stderr.decode("utf-8", "replace"))


def client_context(lab, device=None):
    """A python ssl context like a device's: verifies the server against the lab CA, optional client cert."""
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=lab.path("ca-bundle.pem"))
    if device:
        ctx.load_cert_chain(*lab.device(device))
    return ctx


def tls_connect(lab, port, device=None, timeout=IO_TIMEOUT):
    """A raw TLS socket to easedge (handshake done), for requests curl refuses to send."""
    raw = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    return client_context(lab, device).wrap_socket(raw, server_hostname="localhost")


def https_connection(lab, port, device=None, timeout=IO_TIMEOUT):
    """http.client over TLS with a client certificate: for keep-alive tests."""
    return http.client.HTTPSConnection("127.0.0.1", port, context=client_context(lab, device), timeout=timeout)


class RawResponse:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body

    def header(self, name):
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None

    def __repr__(self):
        return "RawResponse(%d, %r, %r)" % (self.status, self.headers, self.body[:300])


def read_response(sock, method="POST"):
    """Reads one HTTP response from a (TLS) socket; None when the peer closed without answering."""
    try:
        resp = http.client.HTTPResponse(sock, method=method)
        resp.begin()
        body = resp.read()
    except (http.client.RemoteDisconnected, ConnectionError, ssl.SSLError):
        return None
    except http.client.BadStatusLine:
        return None
    return RawResponse(resp.status, resp.getheaders(), body)


def read_head(sock, limit=65536):
    """Reads one response head (status line + headers) without skipping 100 Continue: (status, [(k, v)]).

    (0, []) when the peer closed first.
    """
    data = b""
    try:
        while b"\r\n\r\n" not in data and len(data) < limit:
            chunk = sock.recv(1)
            if not chunk:
                break
            data += chunk
    except (ConnectionError, ssl.SSLError, OSError):
        pass
    if b"\r\n\r\n" not in data:
        return 0, []
    lines = data.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = [tuple(p.strip() for p in l.split(":", 1)) for l in lines[1:] if ":" in l]
    return status, headers


def closed_by_peer(sock, timeout=IO_TIMEOUT):
    """True when the peer closes the connection within `timeout` (EOF, reset or TLS close), False if it stays open."""
    sock.settimeout(timeout)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            data = sock.recv(65536)
            if not data:
                return True
    except (socket.timeout, TimeoutError):
        return False
    except (ConnectionError, ssl.SSLError, OSError):
        return True
    return False


def unused_port():
    """A loopback port nothing listens on (bound then released)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def sha256_hex(data):
    return hashlib.sha256(data).hexdigest()


def echoed_headers(result):
    """The [name, value] pairs the stand-in saw, from its JSON echo."""
    return [tuple(h) for h in result.json()["headers"]]


def echoed_values(result, name):
    return [v for k, v in echoed_headers(result) if k.lower() == name.lower()]


_REQUEST_ID_LINE = re.compile(rb"^Request-Id: ([0-9a-f]{16})\r$", re.M)


def refusal_request_id(result):
    """The request id of one of easedge's refusals (CurlResult or RawResponse): the body's `Request-Id:` line,
    or None when the body has none or the X-Request-Id header disagrees with it."""
    m = _REQUEST_ID_LINE.search(result.body)
    if not m or result.header("X-Request-Id") != m.group(1).decode():
        return None
    return m.group(1).decode()


def refusal_log_line(child, request_id, timeout=IO_TIMEOUT):
    """easedge's stderr line for the refusal with REQUEST_ID, `... request ID METHOD TARGET -> 403.16 NAME (DETAIL)`,
    as a match with groups status, name and detail; None when it does not show up within `timeout` seconds."""
    pattern = re.compile(r" request %s .* -> (?P<status>\S+) (?P<name>\S+) \((?P<detail>.*)\)$" % re.escape(request_id))
    return wait_until(lambda: next(filter(None, (pattern.search(l) for l in list(child.lines))), None), timeout)


_module_lab = None


def module_lab(*binaries):
    """For setUpModule: skips the module when a needed binary (EASEDGE_BIN, STANDIN_BIN) is missing, else
    makes the module's lab PKI and returns it (also used by ProxyTestCase)."""
    global _module_lab
    reason = require_binaries(*binaries)
    if reason:
        raise unittest.SkipTest(reason)
    _module_lab = Lab()
    return _module_lab


def end_module_lab():
    """For tearDownModule: kills every child and removes the lab folder."""
    global _module_lab
    _kill_all()
    if _module_lab:
        _module_lab.cleanup()
        _module_lab = None


class EasedgeTestCase(unittest.TestCase):
    """One easedge per test class on the module's lab, in front of `upstream_url()`; override `config` to change
    the configuration and `launcher` to start easedge through a command (e.g. prlimit)."""

    launcher = ()

    @classmethod
    def upstream_url(cls):
        raise NotImplementedError("say which upstream the class's easedge forwards to")

    @classmethod
    def config(cls, upstream_url):
        return base_config(upstream_url)

    @classmethod
    def setUpClass(cls):
        cls.lab = _module_lab
        cls.proxy = Easedge(cls.lab, cls.config(cls.upstream_url()), name=cls.__name__ + ".yaml",
                            launcher=cls.launcher)

    @classmethod
    def tearDownClass(cls):
        cls.proxy.stop()


class ProxyTestCase(EasedgeTestCase):
    """EasedgeTestCase in front of its own stand-in; override `standin_args` to change the stand-in."""

    standin_args = ()

    @classmethod
    def upstream_url(cls):
        return cls.standin.url

    @classmethod
    def setUpClass(cls):
        cls.standin = Standin(_module_lab, *cls.standin_args)
        try:
            super().setUpClass()
        except Exception:
            cls.standin.stop()
            raise

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        cls.standin.stop()


def require_binaries(*names):
    """Skip reason (str) when a needed binary's variable is not set, else None. A variable set to something
    that is not an executable is a mistake, not a reason to skip: it raises, so a run cannot pass on skips."""
    for env, path in (("EASEDGE_BIN", EASEDGE_BIN), ("STANDIN_BIN", STANDIN_BIN)):
        if env not in names:
            continue
        if not path:
            return "%s is not set to a built binary" % env
        if not os.access(path, os.X_OK):
            raise RuntimeError("%s=%s is not an executable file" % (env, path))
    return None
