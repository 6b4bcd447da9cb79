#!/usr/bin/python3
"""Stand-in Kubernetes API server for mlboot's tests.

    standin.py --state-dir DIR [--listen 127.0.0.1] [--port 0] [--san IP]...
    standin.py ctl --state-dir DIR COMMAND ...

Serves HTTPS on loopback by default and keeps every object in memory. The
state folder receives the CA, certificates, kubeconfigs and, once the
socket listens, the file `port`. See README.md beside this file.
"""

import argparse
import logging
import os
import signal
import ssl
import sys
import threading

# Keep the source folder free of __pycache__ folders.
sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from apiserver import ctl  # noqa: E402
from apiserver import startup  # noqa: E402
from apiserver.addon_controllers import AddonControllers  # noqa: E402
from apiserver.cainjector import CAInjector  # noqa: E402
from apiserver.authz import Authorizer  # noqa: E402
from apiserver.catalog import Catalog  # noqa: E402
from apiserver.control import ControlState  # noqa: E402
from apiserver.controllers import Controllers  # noqa: E402
from apiserver.pki import PkiError  # noqa: E402
from apiserver.rest import Api  # noqa: E402
from apiserver.server import App, StandinHTTPServer  # noqa: E402
from apiserver.store import Store  # noqa: E402

log = logging.getLogger("standin")


def parse_arguments(argv):
    parser = argparse.ArgumentParser(
        description="Serve a stand-in Kubernetes API server for tests.")
    parser.add_argument("--state-dir", required=True,
                        help="folder for certificates, kubeconfigs, "
                             "config.json, port and pid (created if missing)")
    parser.add_argument("--listen", default="127.0.0.1",
                        help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0,
                        help="TCP port; 0 picks a free one (default 0)")
    parser.add_argument("--san", action="append", default=[],
                        help="extra IP address or DNS name for the server "
                             "certificate (repeatable)")
    parser.add_argument("--log-level", default="info",
                        choices=("debug", "info", "warning", "error"),
                        help="log level on stderr; debug logs every request")
    return parser.parse_args(argv)


def _remove(path):
    try:
        os.remove(path)
    except FileNotFoundError:
        pass


def _ssl_context(server_paths, ca_path):
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(*server_paths)
    # Client certificates are optional: token and anonymous requests come
    # without one. A certificate that does not verify fails the handshake.
    context.verify_mode = ssl.CERT_OPTIONAL
    context.load_verify_locations(ca_path)
    context.set_alpn_protocols(["http/1.1"])
    return context


def serve(args):
    state_dir = os.path.abspath(args.state_dir)
    os.makedirs(state_dir, mode=0o700, exist_ok=True)
    port_file = os.path.join(state_dir, "port")
    pid_file = os.path.join(state_dir, "pid")
    _remove(port_file)

    config = startup.load_config(state_dir)
    control_token = startup.control_token(state_dir)
    try:
        ca_paths, server_paths = startup.prepare_certificates(state_dir,
                                                              args.san)
    except PkiError as error:
        log.error("cannot make certificates in %s: %s", state_dir, error)
        return 1

    catalog = Catalog()
    store = Store()
    control = ControlState(config)
    api = Api(catalog, store, control)
    authorizer = Authorizer(control)
    with open(ca_paths[0], encoding="ascii") as handle:
        ca_pem = handle.read()
    controllers = Controllers(api, control, ca_pem)
    AddonControllers(controllers, ca_paths)
    CAInjector(controllers, ca_paths)

    app = App(catalog, store, control, api, authorizer, control_token,
              (args.listen, 0))
    try:
        server = StandinHTTPServer((args.listen, args.port), app,
                                   _ssl_context(server_paths, ca_paths[0]))
    except OSError as error:
        log.error("cannot listen on %s port %d: %s", args.listen, args.port,
                  error.strerror)
        return 1
    port = server.server_address[1]
    app.server_address = (args.listen, port)
    url = startup.server_url(args.listen, port)

    startup.seed_objects(api, config, args.listen, port,
                         control.version["gitVersion"])
    controllers.start()
    controllers.resync()

    startup.write_kubeconfigs(state_dir, url, ca_paths[0], config)
    startup.write_private_file(os.path.join(state_dir, "url"), url + "\n")
    startup.write_private_file(pid_file, f"{os.getpid()}\n")
    # Written last: tests wait for this file.
    startup.write_private_file(port_file, f"{port}\n")

    def stop(signal_number, _frame):
        log.info("received signal %d, stopping", signal_number)
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    log.info("serving on %s (state folder %s, pid %d)", url, state_dir,
             os.getpid())
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        controllers.stop()
        server.server_close()
        _remove(port_file)
        _remove(pid_file)
        log.info("stopped")
    return 0


def main(argv):
    if argv and argv[0] == "ctl":
        return ctl.main(argv[1:])
    args = parse_arguments(argv)
    logging.basicConfig(
        level=getattr(logging, args.log_level.upper()),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr)
    return serve(args)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
