"""Headless Chromium (Debian's `chromium`) driven over the DevTools protocol, Python standard library only.

One page: navigate, evaluate JavaScript, read the rendered DOM, take PNG screenshots. The WebSocket client is
the few lines the protocol needs (RFC 6455: masked client frames, text frames, continuation).
"""

import base64
import json
import os
import shutil
import socket
import struct
import tempfile
import time
import urllib.request

import harness as h

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# A first start on a busy machine takes seconds (the profile is new each time).
STARTUP_TIMEOUT = 60.0
# Flags for a hermetic run as root: no sandbox (root), no GPU, nothing fetched from outside.
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-default-apps", "--disable-extensions", "--hide-scrollbars", "--mute-audio"]


def available():
    return os.path.exists(CHROMIUM)


class WebSocket:
    def __init__(self, url, timeout=h.IO_TIMEOUT):
        assert url.startswith("ws://")
        host_port, _, path = url[5:].partition("/")
        host, _, port = host_port.partition(":")
        self.sock = socket.create_connection((host, int(port)), timeout=timeout)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(("GET /%s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                           "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n" % (path, host_port, key)).encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise ConnectionError("DevTools closed the WebSocket handshake")
            head += chunk
        head, _, self.pending = head.partition(b"\r\n\r\n")
        if b" 101 " not in head.split(b"\r\n")[0]:
            raise ConnectionError("DevTools refused the WebSocket: %r" % head[:200])

    def _read(self, n):
        while len(self.pending) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("DevTools closed the WebSocket")
            self.pending += chunk
        data, self.pending = self.pending[:n], self.pending[n:]
        return data

    def send(self, text):
        payload = text.encode()
        head = bytes([0x81])
        n = len(payload)
        if n < 126:
            head += bytes([0x80 | n])
        elif n < 65536:
            head += bytes([0x80 | 126]) + struct.pack("!H", n)
        else:
            head += bytes([0x80 | 127]) + struct.pack("!Q", n)
        mask = os.urandom(4)
        self.sock.sendall(head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))

    def receive(self):
        message = b""
        while True:
            first, second = self._read(2)
            n = second & 0x7F
            if n == 126:
                n = struct.unpack("!H", self._read(2))[0]
            elif n == 127:
                n = struct.unpack("!Q", self._read(8))[0]
            payload = self._read(n)
            opcode = first & 0x0F
            if opcode == 0x8:
                raise ConnectionError("DevTools closed the WebSocket")
            if opcode in (0x9, 0xA):
                continue  # ping/pong: Chromium does not need an answer here
            message += payload
            if first & 0x80:
                return message.decode("utf-8")

    def close(self):
        self.sock.close()


class Browser:
    """One headless Chromium with a fresh profile, and its first page."""

    def __init__(self, workdir, width=1280, height=900):
        self.profile = tempfile.mkdtemp(prefix="chromium-", dir=workdir)
        argv = [CHROMIUM] + FLAGS + ["--user-data-dir=" + self.profile, "--remote-debugging-port=0",
                                     "--window-size=%d,%d" % (width, height), "about:blank"]
        self.child = h.Child(argv, r"DevTools listening on ws://127\.0\.0\.1:(\d+)/",
                             os.path.join(workdir, "chromium.log"), startup_timeout=STARTUP_TIMEOUT)
        port = int(self.child.match.group(1))
        page = None
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while page is None and time.monotonic() < deadline:
            with urllib.request.urlopen("http://127.0.0.1:%d/json/list" % port, timeout=h.IO_TIMEOUT) as r:
                page = next((t for t in json.load(r) if t.get("type") == "page"), None)
            if page is None:
                time.sleep(0.1)
        if page is None:
            raise RuntimeError("chromium shows no page target")
        self.ws = WebSocket(page["webSocketDebuggerUrl"])
        self.next_id = 0
        self.call("Page.enable")
        self.call("Runtime.enable")

    def call(self, method, **params):
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.ws.receive())
            if message.get("id") == self.next_id:
                if "error" in message:
                    raise RuntimeError("%s: %s" % (method, message["error"]))
                return message.get("result", {})

    def evaluate(self, expression):
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise RuntimeError("%s: %s" % (expression, result["exceptionDetails"]))
        return result["result"].get("value")

    def wait_for(self, expression, timeout=15.0):
        """Evaluates `expression` every 0.1 s until it is truthy; returns its value (or the last falsy one)."""
        return h.wait_until(lambda: self.evaluate(expression), timeout)

    def open(self, url, ready="document.body && document.body.dataset.ready"):
        """Navigates and waits until the page's scripts say they rendered (the console sets data-ready)."""
        self.evaluate("document.body && delete document.body.dataset.ready")
        self.call("Page.navigate", url=url)
        h.wait_until(lambda: self.evaluate("location.href") == url, 10)
        return self.wait_for(ready)

    def dom(self):
        return self.evaluate("document.documentElement.outerHTML")

    def screenshot(self, path):
        data = self.call("Page.captureScreenshot", format="png", captureBeyondViewport=True)["data"]
        with open(path, "wb") as f:
            f.write(base64.b64decode(data))
        return path

    def close(self):
        try:
            self.call("Browser.close")
        except (ConnectionError, OSError, RuntimeError):
            pass
        self.ws.close()
        self.child.stop()
        shutil.rmtree(self.profile, ignore_errors=True)
