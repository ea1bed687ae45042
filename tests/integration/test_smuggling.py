#!/usr/bin/env python3
"""Issue 12's smuggling and header-injection cases, black box: raw TLS devices -> easedge -> a strict recording upstream.

Every forwarded byte is parsed by a strict HTTP/1.1 parser (RFC 9112) in this module; an attack passes only when
easedge refuses it (nothing reaches the upstream) or forwards exactly the one well-formed request the device meant.

Run by ctest (tests/integration/CMakeLists.txt), or by hand:
  EASEDGE_BIN=build/proxy/easedge python3 tests/integration/test_smuggling.py -v
"""

import gzip
import os
import re
import socket
import ssl
import sys
import threading
import time
import unittest
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

UPN = "alice@corp.example.test"
EAS = "/Microsoft-Server-ActiveSync"
# A complete second request hidden in a body: if it ever reaches the upstream as a request, the edge was bypassed.
SMUGGLED = (b"GET /ecp/?evil=1 HTTP/1.1\r\nHost: x\r\n"
            b"X-Forwarded-User: administrator@corp.example.test\r\n\r\n")
# Values spoofed headers carry; none of them may appear in anything the upstream receives.
SENTINELS = ("evil", "administrator", "/ecp", "203.0.113.66")
# Identity and routing headers a device must never set for Exchange (issue 12's strip list).
STRIP = ("X-Original-URL", "X-Rewrite-URL", "x-webobjects-remote-user", "X-ARR-ClientCert", "X-Remote-User",
         "Remote-User", "X-Client-IP", "True-Client-IP", "X-HTTP-Method-Override", "X-Forwarded-User",
         "X-Forwarded-Client-Cert", "x-forwarded-for", "Forwarded", "X-Real-IP", "Authorization")
# Headers easedge itself sets; a client's copy must be replaced, never merged or passed beside it.
OWN_HEADERS = ("x-forwarded-user", "x-forwarded-client-cert", "x-forwarded-for", "x-forwarded-proto")
# A settle barrier waits this long for the upstream to see it; only a broken edge makes it wait that long.
SETTLE_TIMEOUT = 10.0
# The upstream-response timeout easedge runs with: an upstream left waiting for bytes that never come (a bad
# head was forwarded) then costs seconds, not the hour of the default.
UPSTREAM_RESPONSE_SECONDS = 3

lab = None
upstream = None


# --- a strict HTTP/1.1 parser (RFC 9112) -------------------------------------------------------------------

class ParseError(Exception):
    pass


TCHAR = frozenset(b"!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
HEXDIG = frozenset(b"0123456789abcdefABCDEF")
MAX_HEAD = 65536


class Message:
    """One parsed request or response: start line parts, fields as sent (name, value), body, trailers."""

    def __init__(self):
        self.method = self.target = None   # requests
        self.status = self.reason = None   # responses
        self.headers = []
        self.body = b""
        self.trailers = []
        self.raw = b""

    def values(self, name):
        return [v for k, v in self.headers if k.lower() == name.lower()]

    def __repr__(self):
        start = ("%s %s" % (self.method, self.target)) if self.method else ("%s %s" % (self.status, self.reason))
        return "<%s headers=%r body=%r trailers=%r>" % (start, self.headers, self.body[:200], self.trailers)


def _check_line_endings(region):
    """Every LF must end a CRLF and every CR must start one (no bare LF or CR in a head or a trailer section)."""
    for i, c in enumerate(region):
        if c == 0x0A and (i == 0 or region[i - 1] != 0x0D):
            raise ParseError("bare LF at byte %d" % i)
        if c == 0x0D and i + 1 < len(region) and region[i + 1] != 0x0A:
            raise ParseError("bare CR at byte %d" % i)


def _parse_field(line):
    if line[:1] in (b" ", b"\t"):
        raise ParseError("obs-fold (line starts with whitespace): %r" % line)
    colon = line.find(b":")
    if colon <= 0:
        raise ParseError("field line without a name and colon: %r" % line)
    name = line[:colon]
    if not all(c in TCHAR for c in name):  # also catches whitespace before the colon
        raise ParseError("bad field name %r" % name)
    value = line[colon + 1:].strip(b" \t")
    if any((c < 0x20 and c != 0x09) or c == 0x7F for c in value):
        raise ParseError("control character in field value %r" % line)
    return name.decode("ascii"), value.decode("latin-1")


def parse_message(buf, response=False, request_method="POST", at_eof=False):
    """(Message, bytes used) for the one message at the start of `buf`; None when more bytes are needed.

    Raises ParseError for anything RFC 9112 does not allow, and for framing a careful recipient must refuse:
    Transfer-Encoding other than one field that says exactly "chunked", Content-Length other than one field
    with one decimal value, both together, a request without exactly one Host, chunk extensions.
    """
    end = buf.find(b"\r\n\r\n")
    _check_line_endings(buf if end < 0 else buf[:end + 4])
    if end < 0:
        if len(buf) > MAX_HEAD:
            raise ParseError("head longer than %d bytes without an end" % MAX_HEAD)
        return None
    lines = buf[:end].split(b"\r\n")
    msg = Message()
    start = lines[0]
    if response:
        parts = start.split(b" ", 2)
        if len(parts) < 2 or parts[0] != b"HTTP/1.1" or not re.fullmatch(rb"[0-9]{3}", parts[1]):
            raise ParseError("bad status line %r" % start)
        msg.status = int(parts[1])
        msg.reason = parts[2].decode("latin-1") if len(parts) == 3 else ""
    else:
        parts = start.split(b" ")
        if len(parts) != 3 or parts[2] != b"HTTP/1.1":
            raise ParseError("bad request line %r" % start)
        if not parts[0] or not all(c in TCHAR for c in parts[0]):
            raise ParseError("bad method %r" % parts[0])
        if not parts[1].startswith(b"/") or not all(0x21 <= c <= 0x7E for c in parts[1]):
            raise ParseError("bad request target %r" % parts[1])
        msg.method, msg.target = parts[0].decode("ascii"), parts[1].decode("ascii")
    msg.headers = [_parse_field(line) for line in lines[1:]]

    te, cl = msg.values("Transfer-Encoding"), msg.values("Content-Length")
    if te and cl:
        raise ParseError("both Transfer-Encoding %r and Content-Length %r" % (te, cl))
    if te and (len(te) != 1 or te[0].lower() != "chunked"):
        raise ParseError("Transfer-Encoding is not exactly one 'chunked': %r" % te)
    if cl and (len(cl) != 1 or not re.fullmatch(r"[0-9]{1,18}", cl[0])):
        raise ParseError("Content-Length is not one decimal value: %r" % cl)
    if not response and len(msg.values("Host")) != 1:
        raise ParseError("request with %d Host fields" % len(msg.values("Host")))

    pos = end + 4
    no_body = response and (msg.status < 200 or msg.status in (204, 304) or request_method == "HEAD")
    if no_body:
        pass
    elif te:
        while True:
            eol = buf.find(b"\r\n", pos)
            if eol < 0:
                if len(buf) - pos > 64:
                    raise ParseError("chunk-size line too long: %r" % buf[pos:pos + 64])
                return None
            size_line = buf[pos:eol]
            if not size_line or len(size_line) > 16 or not all(c in HEXDIG for c in size_line):
                raise ParseError("bad chunk-size line %r (extensions are refused too)" % size_line)
            size = int(size_line, 16)
            pos = eol + 2
            if size == 0:
                break
            if len(buf) < pos + size + 2:
                return None
            if buf[pos + size:pos + size + 2] != b"\r\n":
                raise ParseError("chunk data not followed by CRLF")
            msg.body += buf[pos:pos + size]
            pos += size + 2
        while True:  # trailer section, then the final CRLF
            eol = buf.find(b"\r\n", pos)
            if eol < 0:
                _check_line_endings(buf[pos:])
                if len(buf) - pos > MAX_HEAD:
                    raise ParseError("trailer section too long")
                return None
            line = buf[pos:eol]
            _check_line_endings(line)
            pos = eol + 2
            if not line:
                break
            msg.trailers.append(_parse_field(line))
    elif cl:
        n = int(cl[0])
        if len(buf) < pos + n:
            return None
        msg.body = buf[pos:pos + n]
        pos += n
    elif response:
        if not at_eof:  # close-delimited: the body is everything until the connection ends
            return None
        msg.body = buf[pos:]
        pos = len(buf)
    msg.raw = buf[:pos]
    return msg, pos


# --- the recording upstream ---------------------------------------------------------------------------------

class Record:
    """What the upstream got: a parsed request, or an error with the bytes it could not parse."""

    def __init__(self, conn, msg=None, error=None, raw=b""):
        self.conn = conn
        self.msg = msg
        self.error = error
        self.raw = raw

    def __repr__(self):
        if self.error:
            return "<conn %d: %s; bytes %r>" % (self.conn, self.error, self.raw[:600])
        return "<conn %d: %r>" % (self.conn, self.msg)


def normal_answer(msg):
    # The body names the request it answers, so a device can tell when it got someone else's answer.
    body = msg.target.encode()
    return b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)


# A response hidden after a hostile one: it must never reach a device.
SMUGGLED_RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nSMUGGLED"

# Hostile answers for the response-side tests, by name.
HOSTILE_ANSWERS = {
    "te-identity-chunked": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: identity\r\nTransfer-Encoding: chunked\r\n\r\n"
                           b"5\r\nhello\r\n0\r\n\r\n" + SMUGGLED_RESPONSE,
    "connection-content-length": b"HTTP/1.1 200 OK\r\nConnection: Content-Length\r\nContent-Length: 5\r\n\r\n"
                                 b"hello" + SMUGGLED_RESPONSE,
    "cl-and-te": b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
                 b"5\r\nhello\r\n0\r\n\r\n" + SMUGGLED_RESPONSE,
    "cl-list": b"HTTP/1.1 200 OK\r\nContent-Length: 5, 6\r\n\r\nhello" + SMUGGLED_RESPONSE,
    "chunked-trailers": b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n"
                        b"Trailer: X-Upstream-Trailer, X-Forwarded-User\r\n\r\n"
                        b"6\r\nhello \r\n5\r\nworld\r\n0\r\nX-Upstream-Trailer: evil\r\n"
                        b"X-Forwarded-User: administrator@corp.example.test\r\n\r\n",
}


class RecordingUpstream:
    """Plain-HTTP keep-alive server on 127.0.0.1:0 that parses every byte strictly and records each request.

    A parse error is recorded with the unparsed bytes and closes that connection; bytes left when a connection
    ends are recorded as an error too. Every request is answered with normal_answer, or with the bytes a test
    registered for its DeviceId (answer_with): a query parameter of our own would be refused by easedge.
    """

    def __init__(self):
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(64)
        self.port = self.listener.getsockname()[1]
        self.url = "http://127.0.0.1:%d" % self.port
        self.records = []
        self.cond = threading.Condition()
        self.conns = {}  # id -> (socket, thread)
        self.answers = {}  # DeviceId -> raw response bytes
        self._next = 0
        self._accepter = threading.Thread(target=self._accept, daemon=True)
        self._accepter.start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            with self.cond:
                self._next += 1
                cid = self._next
                thread = threading.Thread(target=self._serve, args=(conn, cid), daemon=True)
                self.conns[cid] = (conn, thread)
            thread.start()

    def _record(self, record):
        with self.cond:
            self.records.append(record)
            self.cond.notify_all()

    def _serve(self, conn, cid):
        buf = b""
        try:
            while True:
                while buf:
                    try:
                        parsed = parse_message(buf)
                    except ParseError as e:
                        self._record(Record(cid, error=str(e), raw=buf))
                        return
                    if parsed is None:
                        break
                    msg, used = parsed
                    buf = buf[used:]
                    self._record(Record(cid, msg=msg))
                    device_id = re.search(r"[?&]DeviceId=(\w+)", msg.target)
                    hostile = self.answers.get(device_id.group(1)) if device_id else None
                    conn.sendall(hostile or normal_answer(msg))
                try:
                    data = conn.recv(65536)
                except OSError:
                    data = b""
                if not data:
                    if buf:
                        self._record(Record(cid, error="connection ended with %d unparsed bytes" % len(buf), raw=buf))
                    return
                buf += data
        finally:
            conn.close()
            with self.cond:
                self.conns.pop(cid, None)

    def answer_with(self, device_id, raw):
        with self.cond:
            self.answers[device_id] = raw

    def mark(self):
        with self.cond:
            return len(self.records)

    def since(self, mark):
        with self.cond:
            return list(self.records[mark:])

    def wait_for_target(self, mark, marker, timeout=SETTLE_TIMEOUT):
        """True once a request whose target contains `marker` was recorded after `mark`."""
        def seen():
            return any(r.msg is not None and marker in r.msg.target for r in self.records[mark:])
        with self.cond:
            return self.cond.wait_for(seen, timeout)

    def close_all(self):
        """Ends every connection (recording unparsed leftovers), so no test inherits another's upstream state."""
        with self.cond:
            conns = list(self.conns.values())
        for conn, _ in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for _, thread in conns:
            thread.join(5)

    def stop(self):
        self.listener.close()
        self.close_all()


# --- the device side ----------------------------------------------------------------------------------------

def marker():
    return "SM" + uuid.uuid4().hex[:14].upper()


def eas_target(device_id=None):
    return "%s?Cmd=Sync&User=alice&DeviceId=%s&DeviceType=iPhone" % (EAS, device_id or marker())


def request(target, headers=(), body=b"", method="POST", host=True):
    """Raw request bytes: request line, Host (unless host=False), the given header lines verbatim, body verbatim."""
    head = "%s %s HTTP/1.1\r\n" % (method, target)
    if host:
        head += "Host: localhost\r\n"
    head += "".join(line + "\r\n" for line in headers) + "\r\n"
    return head.encode("latin-1") + body


def chunked(body, chunk=7, trailers=()):
    out = b""
    for i in range(0, len(body), chunk):
        part = body[i:i + chunk]
        out += b"%x\r\n%s\r\n" % (len(part), part)
    return out + b"0\r\n" + b"".join(t.encode() + b"\r\n" for t in trailers) + b"\r\n"


class Device:
    """A raw TLS connection to easedge with a strict reader for its responses."""

    def __init__(self, port, device="alice"):
        self.sock = h.tls_connect(lab, port, device)
        self.buf = b""
        self.eof = False

    def send(self, data):
        self.sock.sendall(data)

    def _fill(self, timeout):
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(65536)
        except (socket.timeout, TimeoutError):
            raise
        except (ConnectionError, ssl.SSLError, OSError):
            data = b""
        if data:
            self.buf += data
        else:
            self.eof = True

    def response(self, method="POST", timeout=h.IO_TIMEOUT):
        """The next response, strictly parsed; None when the connection ended before one began."""
        deadline = time.monotonic() + timeout
        while True:
            parsed = parse_message(self.buf, response=True, request_method=method, at_eof=self.eof)
            if parsed:
                msg, used = parsed
                self.buf = self.buf[used:]
                return msg
            if self.eof:
                if self.buf:
                    raise ParseError("connection ended inside a response: %r" % self.buf[:300])
                return None
            remaining = deadline - time.monotonic()
            try:
                if remaining <= 0:
                    raise TimeoutError
                self._fill(remaining)
            except (socket.timeout, TimeoutError):
                # Also a response without framing on a connection that stays open: it never ends.
                raise AssertionError("no complete response within %.0f s; got %r" % (timeout, self.buf[:300]))

    def drain(self, timeout=5.0):
        """Reads until the peer closes or `timeout` passes: (closed, bytes that came after the last response)."""
        deadline = time.monotonic() + timeout
        try:
            while not self.eof and time.monotonic() < deadline:
                self._fill(deadline - time.monotonic())
        except (socket.timeout, TimeoutError):
            pass
        return self.eof, self.buf

    def close(self):
        self.sock.close()


# --- tests --------------------------------------------------------------------------------------------------

def setUpModule():
    global lab, upstream
    lab = h.module_lab("EASEDGE_BIN")
    upstream = RecordingUpstream()


def tearDownModule():
    if upstream:
        upstream.stop()
    h.end_module_lab()


class EdgeCase(h.EasedgeTestCase):
    """One easedge per class in front of the module's recording upstream, and the assertions every case shares."""

    tls = {}
    device = "alice"

    @classmethod
    def upstream_url(cls):
        return upstream.url

    @classmethod
    def config(cls, upstream_url):
        return h.base_config(upstream_url, tls=cls.tls,
                             timeouts={"upstream_response_seconds": UPSTREAM_RESPONSE_SECONDS})

    def tearDown(self):
        upstream.close_all()
        self.assertTrue(self.proxy.child.alive(), "easedge exited; its stderr:\n" + self.proxy.child.output())

    # -- helpers --

    def connect(self, device=None):
        dev = Device(self.proxy.port, self.device if device is None else device)
        self.addCleanup(dev.close)
        return dev

    def settle(self, mark):
        """Sends a normal request on a fresh connection and waits until the upstream recorded it, so everything
        the attack made easedge send is recorded before it; then ends the upstream's connections (recording any
        unparsed leftovers). Returns what the upstream recorded since `mark`, barrier excluded. Also proves easedge
        still serves, and that it serves the right answer (a desynchronised upstream connection would not)."""
        target = eas_target()
        dev = Device(self.proxy.port, "alice")
        try:
            dev.send(request(target, ["Content-Length: 7", "Connection: close"], b"barrier"))
            resp = dev.response()
        finally:
            dev.close()
        self.assertIsNotNone(resp, "easedge closed a normal request after the attack")
        self.assertEqual((resp.status, resp.body), (200, target.encode()),
                         "a normal request after the attack got a wrong answer (desynchronised?): %r" % resp)
        self.assertTrue(upstream.wait_for_target(mark, target.split("DeviceId=")[1]), "the barrier never arrived")
        upstream.close_all()
        return [r for r in upstream.since(mark) if not (r.msg and r.msg.target == target)]

    def assert_forwarded(self, record, method, target, body, user=UPN):
        """`record` is the one well-formed request the device meant, with easedge's identity and nothing spoofed."""
        self.assertIsNone(record.error, "upstream could not parse what easedge sent: %r" % record)
        msg = record.msg
        self.assertEqual((msg.method, msg.target), (method, target), record)
        self.assertEqual(msg.body, body, "forwarded body differs from the body the device sent: %r" % record)
        self.assertEqual(msg.trailers, [], "trailers reached the upstream: %r" % record)
        self.assertEqual(msg.values("X-Forwarded-User"), [user] if user else [], record)
        names = [k.lower() for k, _ in msg.headers]
        for name in STRIP:
            if name.lower() not in OWN_HEADERS:
                self.assertNotIn(name.lower(), names, "strip-list header reached the upstream: %r" % record)
        guarded = set(OWN_HEADERS) | {s.lower() for s in STRIP}
        for name in names:
            # IIS/CGI-style servers read X_Forwarded_User as X-Forwarded-User: an underscore spelling is a spoof.
            self.assertFalse("_" in name and name.replace("_", "-") in guarded,
                             "underscore spelling %s reached the upstream: %r" % (name, record))
        for own in OWN_HEADERS:
            self.assertLessEqual(names.count(own), 1, "more than one %s: %r" % (own, record))
        for k, v in msg.headers:
            for sentinel in SENTINELS:
                self.assertNotIn(sentinel, v.lower(), "a spoofed value reached the upstream in %s: %r" % (k, record))
        tokens = [t.strip().lower() for v in msg.values("Connection") for t in v.split(",")]
        for framing in ("content-length", "transfer-encoding", "host"):
            self.assertNotIn(framing, tokens, "forwarded Connection names %s: %r" % (framing, record))

    def read(self, dev, method="POST"):
        try:
            return dev.response(method)
        except ParseError as e:
            self.fail("easedge sent the device a malformed response: %s; bytes %r" % (e, dev.buf[:400]))

    def attempt(self, raw, expected, refusals=(400,), must_refuse=False, device=None):
        """Sends `raw` in one write on a keep-alive connection and checks the outcome.

        `expected`: [(method, target, body)] the device meant. Passes when easedge answers with a status in
        `refusals`, closes the connection and forwards nothing; or (unless must_refuse) when each response is 200
        with its own answer and the upstream recorded exactly the expected requests, each well formed.
        """
        mark = upstream.mark()
        dev = self.connect(device)
        dev.send(raw)
        first = self.read(dev)
        if first is not None and first.status in refusals:
            closed, after = dev.drain()
            records = self.settle(mark)
            self.assertEqual(records, [], "refused with %d but the upstream got: %r" % (first.status, records))
            self.assertEqual(after, b"", "bytes after the refusal: %r" % after)
            self.assertTrue(closed, "easedge kept the connection open after refusing with %d" % first.status)
            return first
        responses = [first]
        if first is not None and first.status == 200:
            for _ in expected[1:]:
                responses.append(self.read(dev))
        records = self.settle(mark)
        if must_refuse:
            self.fail("expected %s and nothing forwarded; device got %r; upstream got %r"
                      % ("/".join(map(str, refusals)), first, records))
        self.assertIsNotNone(first, "easedge closed without answering; upstream got %r" % records)
        for resp, (_, target, _) in zip(responses, expected):
            self.assertIsNotNone(resp, "a pipelined request got no response; upstream got %r" % records)
            self.assertEqual((resp.status, resp.body), (200, target.encode()),
                             "device did not get its own answer; upstream got %r" % records)
        self.assertEqual(len(records), len(expected),
                         "upstream expected %d request(s), got: %r" % (len(expected), records))
        for record, (method, target, body) in zip(records, expected):
            self.assert_forwarded(record, method, target, body,
                                  user=UPN if (device or self.device) else None)
        return first


class RequestSmuggling(EdgeCase):
    """Request side: framing, hop-by-hop abuse, Host, trailers, spoofed identity, head limits, pipelining."""

    def test_plain_requests_are_forwarded_exactly(self):
        # Control: the recording upstream and the assertions accept what a correct edge sends.
        for framing in ("content-length", "chunked"):
            with self.subTest(framing=framing):
                target, body = eas_target(), b"plain wbxml \x00\x01\x02" * 10
                if framing == "chunked":
                    raw = request(target, ["Transfer-Encoding: chunked"], chunked(body))
                else:
                    raw = request(target, ["Content-Length: %d" % len(body)], body)
                self.attempt(raw, [("POST", target, body)], refusals=())

    def test_connection_content_length_hides_a_second_request(self):
        for token in ("Content-Length", "keep-alive, content-length", "CONTENT-LENGTH"):
            with self.subTest(connection=token):
                target = eas_target()
                raw = request(target, ["Connection: " + token, "Content-Length: %d" % len(SMUGGLED)], SMUGGLED)
                self.attempt(raw, [("POST", target, SMUGGLED)], must_refuse=True)

    def test_connection_transfer_encoding_hides_a_second_request(self):
        target = eas_target()
        raw = request(target, ["Connection: Transfer-Encoding", "Transfer-Encoding: chunked"], chunked(SMUGGLED))
        self.attempt(raw, [("POST", target, SMUGGLED)], must_refuse=True)

    def test_connection_host_removes_host(self):
        target = eas_target()
        raw = request(target, ["Connection: Host", "Content-Length: 5"], b"hello")
        self.attempt(raw, [("POST", target, b"hello")], must_refuse=True)

    def test_two_transfer_encoding_headers(self):
        for first in ("identity", "gzip", "", "chunked"):
            with self.subTest(first=first):
                target = eas_target()
                raw = request(target, ["Transfer-Encoding: " + first, "Transfer-Encoding: chunked"],
                              chunked(SMUGGLED))
                self.attempt(raw, [("POST", target, SMUGGLED)], must_refuse=True)

    def test_transfer_encoding_spellings(self):
        # 400 or forwarded correctly (decoded, re-framed by easedge) are both fine here.
        plain = b"spelled body " * 5
        for value, body in (("chunked,", plain), ("chunked;q=1", plain), ("gzip, chunked", gzip.compress(plain)),
                            (" Chunked", plain), ("CHUNKED", plain)):
            with self.subTest(te=value):
                target = eas_target()
                raw = request(target, ["Transfer-Encoding: " + value], chunked(body))
                self.attempt(raw, [("POST", target, plain)])

    def test_content_length_list_duplicates_and_signs(self):
        for fields in (["Content-Length: 5, 5"], ["Content-Length: 5", "Content-Length: 5"],
                       ["Content-Length: +5"], ["Content-Length: 5 5"], ["Content-Length: 5", "Content-Length: 6"]):
            with self.subTest(fields=fields):
                target = eas_target()
                self.attempt(request(target, fields, b"hello" + SMUGGLED), [("POST", target, b"hello")],
                             must_refuse=True)

    def test_content_length_with_transfer_encoding(self):
        for order in ("cl-first", "te-first"):
            with self.subTest(order=order):
                target = eas_target()
                body = chunked(SMUGGLED)
                fields = ["Content-Length: %d" % len(body), "Transfer-Encoding: chunked"]
                if order == "te-first":
                    fields.reverse()
                self.attempt(request(target, fields, body), [("POST", target, SMUGGLED)], must_refuse=True)

    def test_chunked_trailers_never_reach_upstream(self):
        target, body = eas_target(), b"trailer body"
        raw = request(target, ["Transfer-Encoding: chunked", "Trailer: X-Forwarded-User, X-Original-URL"],
                      chunked(body, trailers=("X-Forwarded-User: administrator@corp.example.test",
                                              "X-Original-URL: /ecp/")))
        self.attempt(raw, [("POST", target, body)])

    def test_missing_host(self):
        target = eas_target()
        self.attempt(request(target, ["Content-Length: 5"], b"hello", host=False), [("POST", target, b"hello")],
                     must_refuse=True)

    def test_two_host_headers(self):
        for second in ("localhost", "exchange.corp.example.test"):
            with self.subTest(second=second):
                target = eas_target()
                self.attempt(request(target, ["Host: " + second, "Content-Length: 5"], b"hello"),
                             [("POST", target, b"hello")], must_refuse=True)

    def test_identity_and_routing_headers_in_every_spelling(self):
        # One request per name, carrying every spelling of it; 400 or forwarded without any of them.
        values = {"Authorization": "Basic ZXZpbDpldmls", "x-forwarded-for": "203.0.113.66",
                  "X-Client-IP": "203.0.113.66", "True-Client-IP": "203.0.113.66", "X-Real-IP": "203.0.113.66",
                  "Forwarded": 'for="203.0.113.66";by=evil', "X-Original-URL": "/ecp/?evil",
                  "X-Rewrite-URL": "/ecp/?evil", "X-HTTP-Method-Override": "EVIL"}
        for name in STRIP:
            with self.subTest(name=name):
                value = values.get(name, "administrator@corp.example.test")
                spellings = {name, name.lower(), name.upper(), name.replace("-", "_"),
                             name.lower().replace("-", "_")}
                target = eas_target()
                fields = ["%s: %s" % (s, value) for s in sorted(spellings)] + ["Content-Length: 5"]
                self.attempt(request(target, fields, b"hello"), [("POST", target, b"hello")])

    def test_head_over_byte_limit_made_of_small_fields(self):
        # 600 fields of 40 bytes: each far under 16 KB, the head about 24 KB.
        target = eas_target()
        fields = ["X-Pad-%03d: %s" % (i, "p" * 28) for i in range(600)] + ["Content-Length: 5"]
        self.attempt(request(target, fields, b"hello"), [("POST", target, b"hello")],
                     refusals=(431,), must_refuse=True)

    def test_head_over_byte_limit_under_field_count(self):
        # 90 fields of 200 bytes: under the count limit, so only a whole-head byte count can refuse it (~18 KB).
        target = eas_target()
        fields = ["X-Pad-%02d: %s" % (i, "p" * 190) for i in range(90)] + ["Content-Length: 5"]
        self.attempt(request(target, fields, b"hello"), [("POST", target, b"hello")],
                     refusals=(431,), must_refuse=True)

    def test_more_fields_than_max_request_headers(self):
        # 150 tiny fields: about 2 KB, well under the byte limit, over the default count of 100.
        target = eas_target()
        fields = ["X-F%d: 1" % i for i in range(150)] + ["Content-Length: 5"]
        self.attempt(request(target, fields, b"hello"), [("POST", target, b"hello")],
                     refusals=(431,), must_refuse=True)

    def test_fields_under_the_limits_are_forwarded(self):
        # Control for the two limit tests: 80 small fields pass.
        target = eas_target()
        fields = ["X-F%d: %s" % (i, "v" * 20) for i in range(80)] + ["Content-Length: 5"]
        self.attempt(request(target, fields, b"hello"), [("POST", target, b"hello")], refusals=())

    def test_chunk_terminator_in_its_own_write(self):
        # The device's last read brings only "0\r\n\r\n": easedge must not answer it with an empty chunk (a
        # terminator) and then the terminator again, which the upstream would read as a second message.
        for first_part, rest, body in ((b"5\r\nhello\r\n", b"0\r\n\r\n", b"hello"), (b"", b"0\r\n\r\n", b"")):
            target = eas_target()
            mark = upstream.mark()
            dev = self.connect()
            dev.send(request(target, ["Transfer-Encoding: chunked"], first_part))
            time.sleep(0.3)
            dev.send(rest)
            response = self.read(dev)
            records = self.settle(mark)
            self.assertEqual((response.status, response.body), (200, target.encode()))
            self.assertEqual(len(records), 1, "upstream expected one request, got: %r" % records)
            self.assert_forwarded(records[0], "POST", target, body)

    def test_pipelined_requests_arrive_as_two(self):
        t1, t2 = eas_target(), eas_target()
        raw = (request(t1, ["Content-Length: 5"], b"first") +
               request(t2, ["Transfer-Encoding: chunked"], chunked(b"second body")))
        self.attempt(raw, [("POST", t1, b"first"), ("POST", t2, b"second body")], refusals=())


class ResponseSmuggling(EdgeCase):
    """Response side: the upstream answers with hostile framing; the device must get one clean 502."""

    def fetch(self, mode):
        """One request answered by the upstream's `mode`, Connection: close: ([the response], bytes after it)."""
        device_id = marker()
        upstream.answer_with(device_id, HOSTILE_ANSWERS[mode])
        target = eas_target(device_id)
        dev = self.connect()
        dev.send(request(target, ["Content-Length: 5", "Connection: close"], b"hello"))
        first = self.read(dev)
        # Whatever follows the first response (a second, smuggled one) is left in `rest`.
        _, rest = dev.drain()
        self.settle(upstream.mark())  # easedge still serves the right answers after it
        return [first] if first else [], rest

    def assert_clean_502(self, mode):
        responses, rest = self.fetch(mode)
        self.assertEqual(len(responses), 1, "expected one response, got %r" % responses)
        resp = responses[0]
        self.assertEqual(resp.status, 502, resp)
        self.assertNotIn(b"502.3", resp.body, "bad upstream framing is not 'cannot be reached': %r" % resp)
        self.assertNotIn(b"SMUGGLED", resp.raw + rest, resp)
        self.assertEqual(rest, b"", "bytes after the response")

    def test_upstream_two_transfer_encodings(self):
        self.assert_clean_502("te-identity-chunked")

    def test_upstream_connection_content_length(self):
        self.assert_clean_502("connection-content-length")

    def test_upstream_content_length_and_transfer_encoding(self):
        self.assert_clean_502("cl-and-te")

    def test_upstream_content_length_list(self):
        self.assert_clean_502("cl-list")

    def test_upstream_chunked_is_reframed_without_trailers_as_headers(self):
        responses, rest = self.fetch("chunked-trailers")
        self.assertEqual(len(responses), 1, "expected one response, got %r" % responses)
        resp = responses[0]
        self.assertEqual((resp.status, resp.body), (200, b"hello world"), resp)
        self.assertEqual(rest, b"")
        names = [k.lower() for k, _ in resp.headers]
        self.assertNotIn("x-upstream-trailer", names, resp)
        self.assertNotIn("x-forwarded-user", names, resp)


class OptionalNoCertificate(EdgeCase):
    """tls.client_certificate: optional, a device without a certificate: the smuggle must not get through."""

    tls = {"client_certificate": "optional"}
    device = None

    def test_no_certificate_request_is_forwarded_without_identity(self):
        # Control: without a certificate the request does reach the upstream (with no identity).
        target = eas_target()
        self.attempt(request(target, ["Content-Length: 5"], b"hello"), [("POST", target, b"hello")], refusals=())

    def test_connection_content_length_without_certificate(self):
        target = eas_target()
        raw = request(target, ["Connection: Content-Length", "Content-Length: %d" % len(SMUGGLED)], SMUGGLED)
        self.attempt(raw, [("POST", target, SMUGGLED)], refusals=(400, 403), must_refuse=True)


if __name__ == "__main__":
    unittest.main()
