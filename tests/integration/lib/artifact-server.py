#!/usr/bin/python3
"""An HTTPS file server for the fetch tests, with the standard library only.

Usage: artifact-server.py PORT CERT KEY ROOT LOG

Serves the files under ROOT on https://127.0.0.1:PORT with the certificate
CERT/KEY, honouring "Range: bytes=N-" with 206 Partial Content. A path
prefix selects a behaviour, so one server covers every case:

  /NAME           the file, as a plain server sends it
  /cut/NAME       the first request without a Range announces the whole
                  length, sends half of the file and closes the connection;
                  later requests get the whole file
  /tamper/NAME    like /cut/, but requests with a Range get bytes that differ
                  from the file's (as a server whose file changed would send)
  /redirect/NAME  302 to /NAME
  /fail/NAME      503 for the first two requests, then the file

Every request is appended to LOG as "METHOD PATH STATUS RANGE AUTH", RANGE
being the Range header or "-", and AUTH the scheme of an Authorization
header ("bearer", "basic") or "none"; credentials are never logged. Serving
a registry's storage folder as ROOT lets it stand in for the blob storage
that a registry redirects downloads to.
"""

import os
import ssl
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

counts = {}
lock = threading.Lock()


def count(path):
    with lock:
        counts[path] = counts.get(path, 0) + 1
        return counts[path]


class ArtifactHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args):
        pass

    def record(self, status):
        with open(self.server.log_path, "a") as log:
            scheme = self.headers.get("Authorization", "none").split(" ")[0].lower()
            log.write(f"{self.command} {self.path} {status} {self.headers.get('Range', '-')} {scheme}\n")

    def do_GET(self):
        mode, _, name = self.path.lstrip("/").partition("/")
        if mode not in ("cut", "tamper", "redirect", "fail"):
            mode, name = "plain", self.path.lstrip("/")
        file_path = os.path.realpath(os.path.join(self.server.root, name))
        if not file_path.startswith(self.server.root + os.sep) or not os.path.isfile(file_path):
            self.simple(404)
            return
        if mode == "redirect":
            self.send_response(302)
            self.send_header("Location", "/" + name)
            self.send_header("Content-Length", "0")
            self.end_headers()
            self.record(302)
            return
        seen = count(self.path)
        if mode == "fail" and seen <= 2:
            self.simple(503)
            return
        data = open(file_path, "rb").read()
        start = 0
        range_header = self.headers.get("Range")
        if range_header:
            if not range_header.startswith("bytes=") or not range_header[6:].endswith("-"):
                self.simple(416)
                return
            start = int(range_header[6:-1])
            if start >= len(data):
                self.simple(416)
                return
            if mode == "tamper":
                data = bytes(b ^ 0x5a for b in data)
        body = data[start:]
        self.send_response(206 if range_header else 200)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Accept-Ranges", "bytes")
        if range_header:
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        self.end_headers()
        if mode in ("cut", "tamper") and not range_header and seen == 1:
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.record("200-cut")
            self.close_connection = True
            self.connection.shutdown(2)
            return
        self.wfile.write(body)
        self.record(206 if range_header else 200)

    def simple(self, status):
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()
        self.record(status)


def main():
    if len(sys.argv) != 6:
        sys.exit(__doc__)
    port, cert, key, root, log_path = sys.argv[1:]
    server = ThreadingHTTPServer(("127.0.0.1", int(port)), ArtifactHandler)
    server.root = os.path.realpath(root)
    server.log_path = log_path
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
