#!/usr/bin/env python3
"""An HTTP proxy on 127.0.0.1 that forwards nothing: it logs and rejects.

Usage: rejecting-proxy.py PORT LOG

Tests point https_proxy and http_proxy at it (with no_proxy naming
127.0.0.1), so a client that tries to reach any host other than loopback
sends its request here instead of onto the network. The proxy writes the
request line (for example "CONNECT quay.io:443 HTTP/1.1") to LOG, one line
per request, and answers 403 Forbidden without opening any connection of
its own. DNS is not queried either: clients that use a proxy leave name
resolution to it.

An empty LOG after a run proves that the client sent nothing past loopback.
"""

import socketserver
import sys

# A request line longer than this is truncated in the log.
REQUEST_LINE_MAX = 1024
# Seconds a client may take to send its request line.
READ_TIMEOUT = 5


class RejectingHandler(socketserver.StreamRequestHandler):
    timeout = READ_TIMEOUT

    def handle(self):
        try:
            line = self.rfile.readline(REQUEST_LINE_MAX)
        except OSError:
            return
        text = line.decode("latin-1").strip()
        if not text:
            return
        with open(self.server.log_path, "a", encoding="utf-8") as log:
            log.write(text + "\n")
        body = b"rejected by the mlboot test proxy: no traffic leaves this machine\n"
        self.wfile.write(b"HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\n"
                         b"Connection: close\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)


class RejectingProxy(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


def main(argv):
    if len(argv) != 3:
        print("usage: rejecting-proxy.py PORT LOG", file=sys.stderr)
        return 2
    server = RejectingProxy(("127.0.0.1", int(argv[1])), RejectingHandler)
    server.log_path = argv[2]
    open(server.log_path, "a", encoding="utf-8").close()
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
