#!/usr/bin/env python3
"""Respond to HTTP as the platform's endpoints would, for the tests of `mlboot check`.

The testbed has no Istio, no KServe model server and no Argo CD, so this
small server stands in for what `mlboot check` talks to over HTTP:

--gateway ADDR:PORT   responds as the Istio ingress gateway: every response
                      carries "server: istio-envoy"; a request for no
                      known host or path gets Envoy's empty 404. A POST to
                      /v1/models/NAME:predict with the Host of a model
                      (--model) gets the answer of KServe's sklearn model
                      server (the v1 protocol): {"predictions": [...]}.
--health ADDR:PORT    answers GET /healthz with 200 "ok", as the health
                      endpoints of Argo CD's server and repo server do.
--argocd-server ADDR:PORT
                      the plain HTTP port of argocd-server: as Argo CD does
                      without server.insecure, it responds to every request
                      with a 307 redirect to https://HOST/PATH, HOST being
                      the request's Host header.
--argocd-tls ADDR:PORT
                      the HTTPS port of argocd-server: GET /healthz gets 200
                      "ok" over TLS, with a self-signed certificate made at
                      start as Argo CD makes its own (RSA 2048, O=Argo CD, not
                      a CA, server authentication, names localhost,
                      argocd-server, argocd-server.NS, argocd-server.NS.svc
                      and argocd-server.NS.svc.cluster.local, NS from
                      --argocd-namespace, default argocd). Its private key
                      exists only in this process; --certificate-out FILE
                      receives the certificate (tls.crt).

The model is honest about its input: it classifies each instance of the
iris data set (sepal length, sepal width, petal length, petal width, in
cm) with a fixed decision tree on the petals, so other inputs give other
answers. For KServe's sample request it answers [1, 1], as the real
sklearn iris model does.

--mode-file FILE is read at every request and changes the model's answers:
"ok" (or a missing file) answers as above, "503" answers predictions with
503 "no healthy upstream", as Envoy does when no model pod is ready, and
"wrong" shifts every predicted class by one. It changes the plain port of
argocd-server too: "tls" (or a missing file) redirects as above, "plain"
answers GET /healthz with 200 "ok" as argocd-server with server.insecure
does, and "elsewhere" redirects to https://argocd.elsewhere.example/PATH.

Usage: gateway.py [--gateway ADDR:PORT]... [--health ADDR:PORT]...
                  [--argocd-server ADDR:PORT]... [--argocd-tls ADDR:PORT]...
                  [--argocd-namespace NS] [--certificate-out FILE]
                  [--model NAME=HOST]... [--mode-file FILE] [--ready-file FILE]

It runs until SIGTERM or SIGINT. Standard library only.
"""

import argparse
import json
import os
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MAX_BODY = 1024 * 1024
DEFAULT_MODEL = "iris=iris-ml.example.com"
# Where the "elsewhere" mode redirects: a reserved name (RFC 2606) that no check may follow.
ELSEWHERE = "argocd.elsewhere.example"


def classify_iris(features):
    """Return the iris class (0 setosa, 1 versicolor, 2 virginica) of one
    instance, by a decision tree on petal length and width."""
    _sepal_length, _sepal_width, petal_length, petal_width = features
    if petal_length < 2.45:
        return 0
    if petal_width < 1.75:
        return 1 if petal_length < 4.95 else 2
    return 2


def parse_instances(body):
    """Return the instances of a v1 predict request, or raise ValueError."""
    request = json.loads(body)
    instances = request.get("instances") if isinstance(request, dict) else None
    if not isinstance(instances, list) or not instances:
        raise ValueError("the request has no \"instances\" list")
    for instance in instances:
        if (not isinstance(instance, list) or len(instance) != 4 or
                not all(isinstance(v, (int, float)) and not isinstance(v, bool)
                        for v in instance)):
            raise ValueError("each instance must be 4 numbers: sepal length, "
                             "sepal width, petal length, petal width")
    return instances


def read_mode(path, default="ok"):
    if not path:
        return default
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read().strip() or default
    except FileNotFoundError:
        return default


def make_argocd_certificate(namespace):
    """Return an ssl.SSLContext for a new self-signed certificate shaped like
    the one argocd-server generates (InitializeSettings in
    util/settings/settings.go, GenerateX509KeyPair in util/tls/tls.go of
    argoproj/argo-cd), and the certificate in PEM. The private key is
    written to a private temporary folder, loaded and deleted."""
    names = ["localhost", "argocd-server", "argocd-server." + namespace,
             "argocd-server.%s.svc" % namespace,
             "argocd-server.%s.svc.cluster.local" % namespace]
    folder = tempfile.mkdtemp(prefix="gateway-tls.")
    try:
        config = os.path.join(folder, "openssl.cnf")
        with open(config, "w", encoding="utf-8") as handle:
            handle.write(
                "[req]\ndistinguished_name = subject\nprompt = no\n"
                "x509_extensions = server\n"
                "[subject]\nO = Argo CD\n"
                "[server]\nbasicConstraints = critical, CA:FALSE\n"
                "keyUsage = critical, digitalSignature, keyEncipherment\n"
                "extendedKeyUsage = serverAuth\n"
                "subjectKeyIdentifier = none\n"
                "subjectAltName = %s\n" % ", ".join("DNS:" + name for name in names))
        certificate = os.path.join(folder, "tls.crt")
        key = os.path.join(folder, "tls.key")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                        "-days", "365", "-config", config, "-keyout", key,
                        "-out", certificate],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(certificate, key)
        with open(certificate, encoding="ascii") as handle:
            return context, handle.read()
    finally:
        shutil.rmtree(folder)


class TLSServer(ThreadingHTTPServer):
    """A ThreadingHTTPServer that speaks TLS, with each handshake in the
    request's own thread so that a stalled client blocks no other."""

    def __init__(self, server_address, handler, context):
        super().__init__(server_address, handler)
        self.context = context

    def get_request(self):
        connection, client = self.socket.accept()
        return (self.context.wrap_socket(connection, server_side=True,
                                         do_handshake_on_connect=False), client)

    def handle_error(self, request, client_address):
        error = sys.exc_info()[1]
        sys.stderr.write("gateway.py: %s: TLS connection failed: %s\n"
                         % (client_address[0], error))


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    role = "gateway"
    models = {}
    mode_file = None

    def version_string(self):
        return "istio-envoy" if self.role == "gateway" else "argocd"

    def setup(self):
        if self.role == "argocd-tls":
            self.request.do_handshake()
        super().setup()

    def log_message(self, format, *args):  # noqa: A002 (the base class's name)
        sys.stderr.write("gateway.py: %s %s\n" % (self.address_string(),
                                                  format % args))

    def send_body(self, status, body, content_type="application/json"):
        data = body.encode() if isinstance(body, str) else body
        self.send_response(status)
        if data:
            self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def read_body(self):
        length = int(self.headers.get("Content-Length") or 0)
        if length < 0 or length > MAX_BODY:
            raise ValueError("the request body is larger than %d bytes" % MAX_BODY)
        return self.rfile.read(length)

    def redirect(self, location):
        """Send a 307 Temporary Redirect to location, as Go's http.Redirect does."""
        body = '<a href="%s">Temporary Redirect</a>.\n\n' % location
        self.send_response(307)
        self.send_header("Location", location)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body.encode())

    def do_GET(self):  # noqa: N802 (the base class's name)
        if self.role == "argocd-server":
            mode = read_mode(self.mode_file, "tls")
            if mode == "tls":
                self.redirect("https://%s%s" % (self.headers.get("Host", ""), self.path))
                return
            if mode == "elsewhere":
                self.redirect("https://%s%s" % (ELSEWHERE, self.path))
                return
        if self.role in ("health", "argocd-server", "argocd-tls"):
            if self.path.split("?")[0] == "/healthz":
                self.send_body(200, "ok", "text/plain")
            else:
                self.send_body(404, "404 page not found\n", "text/plain")
            return
        # Envoy's response when no route matches the host and path.
        self.send_body(404, b"")

    do_HEAD = do_GET

    def do_POST(self):  # noqa: N802
        try:
            body = self.read_body()
        except ValueError as error:
            self.send_body(413, json.dumps({"error": str(error)}))
            return
        if self.role != "gateway":
            self.send_body(405, "405 method not allowed\n", "text/plain")
            return
        host = (self.headers.get("Host") or "").split(":")[0].lower()
        path = self.path.split("?")[0]
        name = None
        if path.startswith("/v1/models/") and path.endswith(":predict"):
            name = path[len("/v1/models/"):-len(":predict")]
        if name is None or self.models.get(name) != host:
            self.send_body(404, b"")
            return
        mode = read_mode(self.mode_file)
        if mode == "503":
            self.send_body(503, "no healthy upstream", "text/plain")
            return
        try:
            instances = parse_instances(body)
        except ValueError as error:
            self.send_body(400, json.dumps({"error": str(error)}))
            return
        predictions = [classify_iris(instance) for instance in instances]
        if mode == "wrong":
            predictions = [(value + 1) % 3 for value in predictions]
        self.send_body(200, json.dumps({"predictions": predictions}))


def address(text):
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit():
        raise argparse.ArgumentTypeError("expected ADDRESS:PORT, got %r" % text)
    return host.strip("[]"), int(port)


def model(text):
    name, _, host = text.partition("=")
    if not name or not host:
        raise argparse.ArgumentTypeError("expected NAME=HOST, got %r" % text)
    return name, host.lower()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gateway", type=address, action="append", default=[])
    parser.add_argument("--health", type=address, action="append", default=[])
    parser.add_argument("--argocd-server", type=address, action="append", default=[])
    parser.add_argument("--argocd-tls", type=address, action="append", default=[])
    parser.add_argument("--argocd-namespace", default="argocd")
    parser.add_argument("--certificate-out")
    parser.add_argument("--model", type=model, action="append", default=[])
    parser.add_argument("--mode-file")
    parser.add_argument("--ready-file")
    options = parser.parse_args()
    if not (options.gateway or options.health or options.argocd_server or options.argocd_tls):
        parser.error("give at least one --gateway, --health, --argocd-server or --argocd-tls address")
    if options.argocd_tls and not options.certificate_out:
        parser.error("--argocd-tls needs --certificate-out FILE for the certificate")

    context = None
    if options.argocd_tls:
        context, certificate = make_argocd_certificate(options.argocd_namespace)
        with open(options.certificate_out, "w", encoding="ascii") as handle:
            handle.write(certificate)

    models = dict(options.model or [model(DEFAULT_MODEL)])
    servers = []
    for role, addresses in (("gateway", options.gateway),
                            ("health", options.health),
                            ("argocd-server", options.argocd_server),
                            ("argocd-tls", options.argocd_tls)):
        handler = type(role.title().replace("-", "") + "Handler", (Handler,),
                       {"role": role, "models": models,
                        "mode_file": options.mode_file})
        for host, port in addresses:
            if role == "argocd-tls":
                server = TLSServer((host, port), handler, context)
            else:
                server = ThreadingHTTPServer((host, port), handler)
            server.daemon_threads = True
            servers.append(server)
    for server in servers:
        threading.Thread(target=server.serve_forever, daemon=True).start()
    if options.ready_file:
        with open(options.ready_file, "w", encoding="utf-8") as handle:
            handle.write("ready\n")

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    while not stop.wait(1.0):
        pass
    for server in servers:
        server.shutdown()
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
