"""`standin.py ctl`: drive a running stand-in through /_standin/ from
shell tests. Prints the JSON response on stdout and exits 1 on failure."""

import argparse
import http.client
import json
import os
import ssl
import sys
from urllib.parse import urlsplit


class CtlError(RuntimeError):
    pass


def _read(state_dir, name):
    path = os.path.join(state_dir, name)
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read().strip()
    except OSError as error:
        raise CtlError(f"cannot read {path}: {error.strerror}; is the "
                       "stand-in running with this --state-dir?") from None


def request(state_dir, method, path, body=None, timeout=30):
    """Send one control request and return the decoded JSON response."""
    url = urlsplit(_read(state_dir, "url"))
    token = _read(state_dir, "control-token")
    context = ssl.create_default_context(
        cafile=os.path.join(state_dir, "ca.crt"))
    connection = http.client.HTTPSConnection(url.hostname, url.port,
                                             context=context, timeout=timeout)
    headers = {"Authorization": f"Bearer {token}",
               "Accept": "application/json"}

    payload = None
    if body is not None:
        payload = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    try:
        connection.request(method, path, body=payload, headers=headers)
        response = connection.getresponse()
        data = response.read()
    except (OSError, http.client.HTTPException) as error:
        raise CtlError(f"{method} {path} failed: {error}") from None
    finally:
        connection.close()

    try:
        document = json.loads(data or b"{}")
    except ValueError:
        raise CtlError(f"{method} {path}: the response is not JSON: "
                       f"{data[:200]!r}") from None
    if response.status != 200:
        raise CtlError(f"{method} {path} failed with HTTP {response.status}: "
                       f"{document.get('message', document)}")
    return document


def _split_name(text):
    namespace, _, name = text.rpartition("/")
    return namespace, name


def _fault_rule(args):
    rule = {"type": args.type, "probability": args.probability,
            "pathPrefix": args.path_prefix}
    if args.type == "error":
        rule["status"] = args.status
    # The server rejects a reason or newToken on a rule of another type.
    if args.reason:
        rule["reason"] = args.reason
    if args.new_token:
        rule["newToken"] = True
    if args.require_continue:
        rule["requireContinue"] = True
    if args.method:
        rule["methods"] = args.method
    if args.retry_after is not None:
        rule["retryAfterSeconds"] = args.retry_after
    if args.type == "delay":
        rule["delayMs"] = args.delay_ms
        rule["delayMaxMs"] = (args.delay_max_ms if args.delay_max_ms
                              is not None else args.delay_ms)
    if args.count is not None:
        rule["count"] = args.count
    return rule


def _parser():
    parser = argparse.ArgumentParser(
        prog="standin.py ctl",
        description="Change a running stand-in API server.")
    parser.add_argument("--state-dir", required=True,
                        help="state folder of the running stand-in")
    commands = parser.add_subparsers(dest="command", required=True)

    commands.add_parser("state", help="print version, faults, roles, "
                                      "controller settings")
    version = commands.add_parser("set-version",
                                  help="set what /version returns")
    version.add_argument("git_version", help="e.g. v1.23.4 or v1.27.3+k3s1")
    version.add_argument("--major", help="major (default: from the version)")
    version.add_argument("--minor", help='minor, e.g. "27+" (default: from '
                                         "the version)")

    faults = commands.add_parser("faults", help="fault injection")
    fault_commands = faults.add_subparsers(dest="fault_command",
                                           required=True)
    fault_commands.add_parser("show", help="print the fault rules")
    fault_commands.add_parser("clear", help="remove every fault rule")
    seed = fault_commands.add_parser("seed", help="set the random seed")
    seed.add_argument("seed", type=int)
    add = fault_commands.add_parser("add", help="append a fault rule")
    add.add_argument("--type", choices=("error", "drop", "delay", "expire"),
                     default="error",
                     help="error: respond with --status; drop: close the "
                          "connection without a response; delay: wait "
                          "first; expire: answer a GET with a continue "
                          "parameter with 410 Expired, as for a continue "
                          "token that is too old")
    add.add_argument("--status", type=int, default=500,
                     help="HTTP status of an error (default 500)")
    add.add_argument("--reason",
                     help="Status reason of an error (default: the usual "
                          "one for --status, such as Expired for 410)")
    add.add_argument("--new-token", action="store_true",
                     help="expire: put a continue token for the rest of the "
                          "list in the Status, as kube-apiserver usually "
                          "does")
    add.add_argument("--require-continue", action="store_true",
                     help="only GET requests with a continue parameter "
                          "(always so for expire)")
    add.add_argument("--probability", type=float, default=1.0,
                     help="chance per matching request, 0 to 1 (default 1)")
    add.add_argument("--path-prefix", default="",
                     help="only requests whose path starts with this")
    add.add_argument("--method", action="append",
                     help="only this HTTP method (repeatable)")
    add.add_argument("--retry-after", type=int,
                     help="Retry-After seconds for 429 and 503")
    add.add_argument("--delay-ms", type=int, default=0,
                     help="delay in milliseconds (type delay)")
    add.add_argument("--delay-max-ms", type=int,
                     help="random delay between --delay-ms and this")
    add.add_argument("--count", type=int,
                     help="fire at most this many times")

    role = commands.add_parser("role", help="set the role of a user")
    role.add_argument("user")
    role.add_argument("role", nargs="?",
                      help="cluster-admin, view, none, or a role of "
                           "config.json's roleRules")
    role.add_argument("--clear", action="store_true",
                      help="forget the user's role (groups decide again)")

    delay = commands.add_parser("delay", help="set a controller delay")
    delay.add_argument("kind", help='kind such as Deployment, or "default"')
    delay.add_argument("seconds", type=float)

    for name, text in (("unready", "keep an object unready"),
                       ("ready", "let an object become ready again")):
        command = commands.add_parser(name, help=text)
        command.add_argument("kind", help="kind, e.g. Deployment")
        command.add_argument("name", help="NAMESPACE/NAME, or NAME for a "
                                          "cluster-scoped object")

    stats = commands.add_parser("stats", help="print request counts")
    stats.add_argument("--reset", action="store_true",
                       help="print, then set every count to zero")
    stats.add_argument("--prefix", default="",
                       help="only paths starting with this")
    return parser


def run(argv):
    args = _parser().parse_args(argv)
    state_dir = args.state_dir
    if args.command == "state":
        response = request(state_dir, "GET", "/_standin/state")
    elif args.command == "set-version":
        body = {"gitVersion": args.git_version}
        if args.major is not None:
            body["major"] = args.major
        if args.minor is not None:
            body["minor"] = args.minor
        response = request(state_dir, "PUT", "/_standin/version", body)
    elif args.command == "faults":
        response = _run_faults(state_dir, args)
    elif args.command == "role":
        role_path = f"/_standin/roles/{args.user}"
        if args.clear:
            response = request(state_dir, "DELETE", role_path)
        elif not args.role:
            raise CtlError("missing role: give a role, or --clear")
        else:
            response = request(state_dir, "PUT", role_path,
                               {"role": args.role})
    elif args.command == "delay":
        response = request(state_dir, "PUT", "/_standin/controllers",
                         {"delaySeconds": {args.kind: args.seconds}})
    elif args.command in ("unready", "ready"):
        namespace, name = _split_name(args.name)
        response = request(state_dir, "POST", "/_standin/controllers/unready",
                         {"kind": args.kind, "namespace": namespace,
                          "name": name,
                          "unready": args.command == "unready"})
    else:
        path = "/_standin/stats"
        if args.prefix:
            path += "?prefix=" + args.prefix
        response = request(state_dir, "GET", path)
        if args.reset:
            request(state_dir, "DELETE", "/_standin/stats")
    json.dump(response, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


def _run_faults(state_dir, args):
    if args.fault_command == "show":
        return request(state_dir, "GET", "/_standin/faults")
    if args.fault_command == "clear":
        return request(state_dir, "DELETE", "/_standin/faults")
    if args.fault_command == "seed":
        current = request(state_dir, "GET", "/_standin/faults")
        return request(state_dir, "PUT", "/_standin/faults",
                       {"seed": args.seed, "rules": current["rules"]})
    return request(state_dir, "POST", "/_standin/faults/rules",
                   _fault_rule(args))


def main(argv):
    try:
        return run(argv)
    except CtlError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        # The reader of stdout (head, grep -q) stopped early; keep Python
        # from failing again when it flushes stdout at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
