#!/usr/bin/python3
"""A registry token service for tests, after distribution's token
authentication (docs/spec/auth/token.md), with the standard library only.

Usage: token-server.py PORT CERT KEY TOKEN_CERT TOKEN_KEY USER:PASSWORD LOG

Serves https://127.0.0.1:PORT/token with the server certificate CERT/KEY.
A request with HTTP Basic credentials equal to USER:PASSWORD gets a JWT
(RS256, signed by TOKEN_KEY through the openssl command, with TOKEN_CERT in
its x5c header) granting the scope it asked for, to the audience named by
its service parameter. Anonymous requests and wrong credentials get 401.
Each request is logged to LOG as "METHOD PATH STATUS AUTH", where AUTH is
basic or none; credentials are never logged.

It imitates what a registry client sees of a token service. It is not a
complete one, because it has no refresh tokens, offline tokens or account
checks.
"""

import base64
import json
import ssl
import subprocess
import sys
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ISSUER = "mlboot-test-issuer"


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def certificate_der(path):
    pem = open(path).read()
    body = pem.split("-----BEGIN CERTIFICATE-----")[1].split("-----END CERTIFICATE-----")[0]
    return base64.b64decode("".join(body.split()))


class TokenHandler(BaseHTTPRequestHandler):
    def log_message(self, format, *args):
        pass

    def record(self, status, auth):
        with open(self.server.log_path, "a") as log:
            log.write(f"{self.command} {self.path.split('?')[0]} {status} {auth}\n")

    def do_GET(self):
        url = urllib.parse.urlsplit(self.path)
        query = urllib.parse.parse_qs(url.query)
        header = self.headers.get("Authorization", "")
        auth = "basic" if header.startswith("Basic ") else "none"
        if url.path != "/token":
            self.answer(404, {"error": "not found"}, auth)
            return
        given = ""
        if auth == "basic":
            try:
                given = base64.b64decode(header[6:]).decode()
            except ValueError:
                given = ""
        if given != self.server.credentials:
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="mlboot test token service"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            self.record(401, auth)
            return
        access = []
        for scope in query.get("scope", []):
            for item in scope.split(" "):
                parts = item.split(":")
                if len(parts) == 3 and parts[0] == "repository":
                    access.append({"type": "repository", "name": parts[1], "actions": parts[2].split(",")})
        token = self.sign({
            "iss": ISSUER,
            "sub": given.split(":")[0],
            "aud": query.get("service", [""])[0],
            "exp": int(time.time()) + 300,
            "nbf": int(time.time()) - 10,
            "iat": int(time.time()),
            "jti": b64url(str(time.time_ns()).encode()),
            "access": access,
        })
        self.answer(200, {"token": token, "access_token": token, "expires_in": 300}, auth)

    def sign(self, claims):
        header = {"typ": "JWT", "alg": "RS256", "x5c": [base64.b64encode(self.server.token_cert).decode()]}
        signing_input = b64url(json.dumps(header).encode()) + "." + b64url(json.dumps(claims).encode())
        signature = subprocess.run(
            ["openssl", "dgst", "-sha256", "-sign", self.server.token_key],
            input=signing_input.encode(), capture_output=True, check=True).stdout
        return signing_input + "." + b64url(signature)

    def answer(self, status, body, auth):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        self.record(status, auth)


def main():
    if len(sys.argv) != 8:
        sys.exit(__doc__)
    port, cert, key, token_cert, token_key, credentials, log_path = sys.argv[1:]
    server = ThreadingHTTPServer(("127.0.0.1", int(port)), TokenHandler)
    server.credentials = credentials
    server.token_cert = certificate_der(token_cert)
    server.token_key = token_key
    server.log_path = log_path
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
