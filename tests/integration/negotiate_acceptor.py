#!/usr/bin/python3
"""A stand-in Exchange that accepts only `Authorization: Negotiate` (SPNEGO/Kerberos), like IIS with
Windows Authentication: every request must carry a token that the service key (keytab) accepts.

    negotiate_acceptor.py --keytab exchange.keytab [--listen 127.0.0.1:0] [--log requests.jsonl]

Answers 200 with JSON {"principal", "service", "method", "target", "connection", "body_bytes"} (service: the
SPN the ticket was issued for) and the header
X-Kerberos-Principal; 401 + `WWW-Authenticate: Negotiate` for a missing, malformed, replayed or foreign
token. HTTP/1.1 keep-alive: each request is authenticated on its own (IIS with authPersistSingleRequest),
so interleaved users on one connection are each seen as themselves. Prints
`acceptor listening on HOST:PORT` on stderr when ready. Needs python3-gssapi (Debian package).
"""

import argparse
import base64
import binascii
import http.server
import itertools
import json
import sys
import threading

import gssapi

_connection_ids = itertools.count(1)


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "negotiate-acceptor"

    def setup(self):
        super().setup()
        self.connection_id = next(_connection_ids)

    def log_message(self, fmt, *args):  # the JSON request log replaces the default stderr lines
        pass

    def _read_body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            total = 0
            while True:
                size = int(self.rfile.readline().split(b";")[0], 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return total
                total += len(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length", "0") or 0)
        return len(self.rfile.read(length)) if length else 0

    def _authenticate(self):
        """(principal, service, reply token) or (None, None, reason)."""
        value = self.headers.get("Authorization", "")
        scheme, _, encoded = value.partition(" ")
        if scheme.lower() != "negotiate" or not encoded.strip():
            return None, None, "no Negotiate token"
        try:
            token = base64.b64decode(encoded.strip(), validate=True)
        except (binascii.Error, ValueError):
            return None, None, "token is not base64"
        try:
            context = gssapi.SecurityContext(creds=self.server.acceptor_creds, usage="accept")
            reply = context.step(token)
            # With SPNEGO the bindings keep a failed step's error (its reject token is the reply) and
            # raise it on the next use of the context.
            if not context.complete:
                return None, None, "token did not complete the handshake"
            return str(context.initiator_name), str(context.target_name), reply
        except gssapi.exceptions.GSSError as e:
            return None, None, "token rejected: %s" % e

    def _handle(self):
        body_bytes = self._read_body()
        principal, service, detail = self._authenticate()
        record = {"connection": self.connection_id, "method": self.command, "target": self.path,
                  "principal": principal, "service": service, "body_bytes": body_bytes}
        if principal is None:
            status, headers = 401, [("WWW-Authenticate", "Negotiate")]
            record["error"] = detail
        else:
            status, headers = 200, [("X-Kerberos-Principal", principal)]
            if detail:
                headers.append(("WWW-Authenticate", "Negotiate " + base64.b64encode(detail).decode()))
        record["status"] = status
        payload = json.dumps(record).encode()
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)
        self.server.log(record)

    do_GET = do_POST = do_OPTIONS = do_HEAD = do_PUT = do_DELETE = _handle


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address, keytab, log_path):
        super().__init__(address, Handler)
        self.acceptor_creds = gssapi.Credentials(usage="accept", store={"keytab": keytab})
        self._log_lock = threading.Lock()
        self._log_file = open(log_path, "a") if log_path else None

    def log(self, record):
        if self._log_file:
            with self._log_lock:
                self._log_file.write(json.dumps(record) + "\n")
                self._log_file.flush()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keytab", required=True, help="the service's keytab (HTTP/host@REALM keys)")
    parser.add_argument("--listen", default="127.0.0.1:0")
    parser.add_argument("--log", default="", help="append one JSON line per request")
    args = parser.parse_args()
    host, _, port = args.listen.rpartition(":")
    server = Server((host, int(port)), args.keytab, args.log)
    sys.stderr.write("acceptor listening on %s:%d\n" % server.server_address[:2])
    sys.stderr.flush()
    server.serve_forever()


if __name__ == "__main__":
    main()
