#!/usr/bin/env python3
"""An HTTP proxy on 127.0.0.1 that tunnels CONNECT requests to loopback only.

Usage: loopback-proxy.py PORT LOG

It writes each request line (for example "CONNECT 127.0.0.1:6443
HTTP/1.1") to LOG. It opens a tunnel when the target is 127.0.0.1 and
returns 403 Forbidden for anything else. A test can so show that a client
sends its traffic through the proxy it was given, and that nothing leaves
this machine. It writes its port to LOG.ready once it listens.
"""

import select
import socket
import socketserver
import sys

REQUEST_LINE_MAX = 1024
HEADERS_MAX = 100
READ_TIMEOUT = 5
CHUNK = 65536


def forbid(wfile, reason):
    body = ("rejected by the mlboot test proxy: " + reason + "\n").encode()
    wfile.write(b"HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\n"
                b"Connection: close\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)


def relay(client, upstream):
    """Copies bytes both ways until either side closes."""
    sockets = [client, upstream]
    while True:
        readable, _, _ = select.select(sockets, [], [], 60)
        if not readable:
            return
        for source in readable:
            data = source.recv(CHUNK)
            if not data:
                return
            (upstream if source is client else client).sendall(data)


class TunnelHandler(socketserver.StreamRequestHandler):
    timeout = READ_TIMEOUT

    def handle(self):
        try:
            line = self.rfile.readline(REQUEST_LINE_MAX).decode("latin-1").strip()
            for _ in range(HEADERS_MAX):
                header = self.rfile.readline(REQUEST_LINE_MAX)
                if header in (b"\r\n", b"\n", b""):
                    break
        except OSError:
            return
        if not line:
            return
        with open(self.server.log_path, "a", encoding="utf-8") as log:
            log.write(line + "\n")
        parts = line.split()
        if len(parts) != 3 or parts[0] != "CONNECT":
            forbid(self.wfile, "only CONNECT is served")
            return
        host, _, port = parts[1].rpartition(":")
        if host != "127.0.0.1" or not port.isdigit():
            forbid(self.wfile, "only 127.0.0.1 is reached")
            return
        try:
            upstream = socket.create_connection(("127.0.0.1", int(port)), timeout=READ_TIMEOUT)
        except OSError as error:
            forbid(self.wfile, "cannot connect: " + str(error))
            return
        with upstream:
            self.wfile.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            self.wfile.flush()
            self.connection.settimeout(None)
            upstream.settimeout(None)
            relay(self.connection, upstream)


class TunnelProxy(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


def main(argv):
    if len(argv) != 3:
        print("usage: loopback-proxy.py PORT LOG", file=sys.stderr)
        return 2
    server = TunnelProxy(("127.0.0.1", int(argv[1])), TunnelHandler)
    server.log_path = argv[2]
    open(server.log_path, "a", encoding="utf-8").close()
    with open(server.log_path + ".ready", "w", encoding="utf-8") as ready:
        ready.write(str(server.server_address[1]) + "\n")
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
