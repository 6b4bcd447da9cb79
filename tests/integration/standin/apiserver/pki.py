"""Certificates for the stand-in, made with the openssl command-line tool.

Keys are ECDSA P-256. The CA and the admin client certificate are kept
across restarts of the same state folder, so kubeconfigs stay valid. The
server certificate is made anew at every start, because --san may change.
"""

import ipaddress
import os
import secrets
import subprocess
import tempfile

CA_DAYS = 3650
LEAF_DAYS = 365


class PkiError(RuntimeError):
    pass


def _openssl(*args, input_bytes=None):
    try:
        result = subprocess.run(["openssl", *args], input=input_bytes,
                                capture_output=True, check=False, timeout=60)
    except FileNotFoundError:
        raise PkiError("openssl is not installed: install the Debian "
                       "package openssl") from None
    if result.returncode != 0:
        raise PkiError(f"openssl {args[0]} failed: "
                       f"{result.stderr.decode(errors='replace').strip()}")
    return result.stdout


def _write_private(path, data):
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(data)


def _new_key():
    return _openssl("genpkey", "-algorithm", "EC", "-pkeyopt",
                    "ec_paramgen_curve:P-256")


def _serial():
    return "0x" + secrets.token_hex(16)


def ensure_ca(directory):
    """Create ca.crt and ca.key in directory unless both exist."""
    cert_path = os.path.join(directory, "ca.crt")
    key_path = os.path.join(directory, "ca.key")
    if os.path.exists(cert_path) and os.path.exists(key_path):
        return cert_path, key_path
    key = _new_key()
    _write_private(key_path, key)
    _openssl("req", "-x509", "-new", "-key", key_path, "-out", cert_path,
             "-days", str(CA_DAYS), "-subj", "/CN=mlboot-standin-ca",
             "-set_serial", _serial(),
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign,"
                        "digitalSignature")
    return cert_path, key_path


def _san_entries(names):
    entries = []
    for name in names:
        try:
            ipaddress.ip_address(name)
            entries.append(f"IP:{name}")
        except ValueError:
            entries.append(f"DNS:{name}")
    return ",".join(entries)


def issue(directory, ca, basename, subject, usage, sans=(), days=LEAF_DAYS,
          keep_existing=False):
    """Issue a certificate signed by ca into directory/basename.{crt,key}.

    subject: an openssl subject string ("/CN=admin/O=system:masters").
    usage: "serverAuth" or "clientAuth". Returns (cert_path, key_path).
    """
    cert_path = os.path.join(directory, basename + ".crt")
    key_path = os.path.join(directory, basename + ".key")
    if keep_existing and os.path.exists(cert_path) and os.path.exists(
            key_path):
        return cert_path, key_path
    ca_cert, ca_key = ca
    _write_private(key_path, _new_key())
    extensions = ["basicConstraints=critical,CA:FALSE",
                  "keyUsage=critical,digitalSignature,keyEncipherment",
                  f"extendedKeyUsage={usage}"]
    if sans:
        extensions.append("subjectAltName=" + _san_entries(sans))
    with tempfile.TemporaryDirectory() as scratch:
        request_path = os.path.join(scratch, "request.csr")
        extensions_path = os.path.join(scratch, "extensions.cnf")
        with open(extensions_path, "w", encoding="ascii") as handle:
            handle.write("\n".join(extensions) + "\n")
        _openssl("req", "-new", "-key", key_path, "-subj", subject,
                 "-out", request_path)
        _openssl("x509", "-req", "-in", request_path, "-CA", ca_cert,
                 "-CAkey", ca_key, "-set_serial", _serial(), "-days",
                 str(days), "-extfile", extensions_path, "-out", cert_path)
    return cert_path, key_path


def issue_in_memory(ca, common_name, dns_names, days=90):
    """Issue a serving certificate and return (cert_pem, key_pem) bytes,
    for the simulated cert-manager."""
    with tempfile.TemporaryDirectory() as scratch:
        subject = "/CN=" + (common_name or (dns_names[0] if dns_names else
                                            "standin-certificate"))
        cert_path, key_path = issue(scratch, ca, "leaf", subject,
                                    "serverAuth,clientAuth",
                                    sans=dns_names, days=days)
        with open(cert_path, "rb") as cert, open(key_path, "rb") as key:
            return cert.read(), key.read()
