"""HTTPS front end: TLS, authentication, fault injection, routing, watch
streams and the /_standin/ control endpoints.

HTTP/1.1 with keep-alive on a thread per connection (ThreadingHTTPServer).
ALPN offers only http/1.1, so Go clients that prefer HTTP/2 fall back to
HTTP/1.1. Every response carries Content-Length, or is chunked (watch).
"""

import datetime
import json
import logging
import socket
import ssl
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

from . import authz
from . import openapi
from . import protobuf
from . import selectors
from . import status as status_errors
from . import tables
from .control import ControlError
from .rest import RequestContext, decode_continue, encode_continue
from .status import ApiError

log = logging.getLogger("standin.server")

# kube-apiserver's limit on request bodies (MaxRequestBodyBytes).
MAX_BODY_BYTES = 3 * 1024 * 1024
# Watches end after this many seconds when the client gives no
# timeoutSeconds (kube-apiserver picks 30-60 minutes at random).
DEFAULT_WATCH_SECONDS = 1800
MAX_WATCH_SECONDS = 3600
# Idle keep-alive connections are closed after this many seconds.
IDLE_CONNECTION_SECONDS = 120

INJECTED = "fault injected by the stand-in API server"
_REASONS = {400: "BadRequest", 401: "Unauthorized", 403: "Forbidden",
            404: "NotFound", 405: "MethodNotAllowed", 409: "Conflict",
            410: "Expired", 422: "Invalid", 429: "TooManyRequests",
            500: "InternalError", 503: "ServiceUnavailable", 504: "Timeout"}


class DroppedConnection(Exception):
    """The fault injector closed the connection without a response."""


def _has_continue(request_target):
    """Return whether the request's query has a non-empty continue
    parameter."""
    query = parse_qs(urlsplit(request_target).query)
    return bool(query.get("continue", [""])[-1])


def _parse_accept(header):
    """Return the media ranges of an Accept header as (type, params)."""
    ranges = []
    for part in (header or "").split(","):
        pieces = [p.strip() for p in part.split(";")]
        if not pieces[0]:
            continue
        params = {}
        for piece in pieces[1:]:
            key, _, value = piece.partition("=")
            params[key.strip()] = value.strip()
        ranges.append((pieces[0].lower(), params))
    return ranges


def negotiate(accept_header):
    """Pick the response form: "json", "table" or "partial" (metadata only).

    Raises 406 when only forms the stand-in cannot produce are acceptable
    (protobuf, CBOR, aggregated discovery alone).
    """
    ranges = _parse_accept(accept_header)
    if not ranges:
        return "json"
    for media_type, params in ranges:
        if media_type not in ("application/json", "*/*", "application/*"):
            continue
        form = params.get("as")
        if form == "Table" and params.get("g") == "meta.k8s.io":
            return "table"
        if form in ("PartialObjectMetadata", "PartialObjectMetadataList") \
                and params.get("g") == "meta.k8s.io":
            return "partial"
        if form is None:
            return "json"
    raise status_errors.not_acceptable(accept_header)


class StandinHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256

    def __init__(self, address, app, ssl_context):
        host = address[0]
        self.address_family = (socket.AF_INET6 if ":" in host
                               else socket.AF_INET)
        self.app = app
        self.ssl_context = ssl_context
        super().__init__(address, RequestHandler)

    def finish_request(self, request, client_address):
        # The TLS handshake runs in the connection's thread, so a slow
        # client cannot stall accept().
        request.settimeout(IDLE_CONNECTION_SECONDS)
        # Headers and body go out in separate writes. Without TCP_NODELAY,
        # Nagle's algorithm delays each body until the client's delayed
        # ACK (40 ms on Linux).
        if request.family in (socket.AF_INET, socket.AF_INET6):
            request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            connection = self.ssl_context.wrap_socket(request,
                                                      server_side=True)
        except (ssl.SSLError, OSError) as error:
            log.info("TLS handshake with %s failed: %s", client_address[0],
                     error)
            return
        try:
            self.RequestHandlerClass(connection, client_address, self)
        finally:
            try:
                connection.close()
            except OSError:
                pass


class RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "standin-apiserver"
    sys_version = ""
    timeout = IDLE_CONNECTION_SECONDS

    def log_message(self, format, *args):  # noqa: A002 (signature fixed)
        log.debug("%s %s", self.client_address[0], format % args)

    def do_GET(self):
        self.server.app.handle(self, "GET")

    def do_POST(self):
        self.server.app.handle(self, "POST")

    def do_PUT(self):
        self.server.app.handle(self, "PUT")

    def do_PATCH(self):
        self.server.app.handle(self, "PATCH")

    def do_DELETE(self):
        self.server.app.handle(self, "DELETE")

    def do_HEAD(self):
        self.server.app.handle(self, "HEAD")


def send_bytes(handler, code, body, content_type, headers=None):
    handler.send_response(code)
    handler.send_header("Content-Type", content_type)
    handler.send_header("Content-Length", str(len(body)))
    handler.send_header("Cache-Control", "no-cache, private")
    for key, value in (headers or {}).items():
        handler.send_header(key, value)
    handler.end_headers()
    if handler.command != "HEAD":
        handler.wfile.write(body)


def send_json(handler, code, obj, headers=None):
    body = json.dumps(obj, separators=(",", ":")).encode()
    send_bytes(handler, code, body, "application/json", headers)


class App:
    """Routes one request; the state lives in the objects it is given."""

    def __init__(self, catalog, store, control, api, authorizer,
                 control_token, server_address):
        self.catalog = catalog
        self.store = store
        self.control = control
        self.api = api
        self.authorizer = authorizer
        self.control_token = control_token
        self.server_address = server_address

    # -- entry point -------------------------------------------------------

    def handle(self, handler, method):
        started = time.monotonic()
        path = urlsplit(handler.path).path
        status_code = 0
        injected = False
        user = None
        control_request = path == "/_standin" or path.startswith("/_standin/")
        try:
            body = self._read_body(handler)
            if control_request:
                status_code = self._handle_control(handler, method, path,
                                                   body)
                return
            decision = self.control.decide_fault(
                method, path, _has_continue(handler.path))
            if decision.delay_seconds:
                time.sleep(decision.delay_seconds)
            if decision.rule is not None:
                injected = True
                status_code = self._inject(handler, decision.rule)
                return
            user = self._authenticate(handler)
            if user is None and path not in authz.ANONYMOUS_PATHS:
                raise status_errors.unauthorized()
            status_code = self._route(handler, method, path, body, user)
        except DroppedConnection:
            status_code = 0
        except ApiError as error:
            status_code = error.code
            if error.code >= 500:
                log.warning("%s %s failed: %s", method, path, error.message)
            send_json(handler, error.code, error.to_status(), error.headers)
            if error.code == 413:
                handler.close_connection = True
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError,
                socket.timeout) as error:
            log.debug("connection lost during %s %s: %s", method, path, error)
            handler.close_connection = True
        except Exception as error:  # send 500, keep the server up
            log.exception("%s %s failed with an unexpected error", method,
                          path)
            status_code = 500
            failure = status_errors.internal_error(
                f"the stand-in API server failed: {error}")
            try:
                send_json(handler, 500, failure.to_status())
            except OSError:
                handler.close_connection = True
        finally:
            # Control requests stay out of the statistics that tests read.
            if not control_request:
                self.control.stats.record(method, path, status_code,
                                          injected)
            log.debug("%s %s -> %s in %.1f ms (user %s)", method,
                      handler.path, status_code or "dropped",
                      (time.monotonic() - started) * 1000,
                      user.name if user else "-")

    def _read_body(self, handler):
        if handler.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            total = 0
            while True:
                size_line = handler.rfile.readline(1024)
                size = int(size_line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while handler.rfile.readline(1024) not in (b"\r\n", b"\n",
                                                               b""):
                        pass
                    break
                total += size
                if total > MAX_BODY_BYTES:
                    handler.close_connection = True
                    raise status_errors.request_too_large(MAX_BODY_BYTES)
                chunks.append(handler.rfile.read(size))
                handler.rfile.readline(1024)
            return b"".join(chunks)
        length = int(handler.headers.get("Content-Length") or 0)
        if length > MAX_BODY_BYTES:
            handler.close_connection = True
            raise status_errors.request_too_large(MAX_BODY_BYTES)
        return handler.rfile.read(length) if length else b""

    # -- authentication ----------------------------------------------------

    def _certificate_user(self, handler):
        try:
            certificate = handler.connection.getpeercert()
        except (AttributeError, ValueError):
            return None
        if not certificate:
            return None
        name, groups = None, []
        for rdn in certificate.get("subject", ()):
            for key, value in rdn:
                if key == "commonName":
                    name = value
                elif key == "organizationName":
                    groups.append(value)
        if not name:
            return None
        return authz.UserInfo(name, groups, "x509")

    def _bearer_token(self, handler):
        header = handler.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        return token.strip()

    def _authenticate(self, handler):
        """Return the user, None for an anonymous request, or raise 401."""
        user = self._certificate_user(handler)
        if user is not None:
            return user
        if handler.headers.get("Authorization"):
            token = self._bearer_token(handler)
            entry = self.control.token_entry(token) if token else None
            if entry is None:
                raise status_errors.unauthorized()
            now = datetime.datetime.now(datetime.timezone.utc)
            if self.control.token_expired(entry, now):
                raise status_errors.unauthorized()
            return authz.UserInfo(entry["user"], entry.get("groups") or [],
                                  "token")
        return None

    # -- faults --------------------------------------------------------------

    def _inject(self, handler, rule):
        if rule.type == "drop":
            handler.close_connection = True
            try:
                handler.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            raise DroppedConnection()
        if rule.type == "expire":
            return self._inject_expired(handler, rule)
        code = rule.status
        headers = {}
        details = None
        if code == 429:
            retry_after = int(rule.retry_after_seconds or 1)
            headers["Retry-After"] = str(retry_after)
            details = {"retryAfterSeconds": retry_after}
            message = f"Too many requests, please try again later. ({INJECTED})"
        elif code == 503:
            message = ("the server is currently unable to handle the request "
                       f"({INJECTED})")
            if rule.retry_after_seconds is not None:
                headers["Retry-After"] = str(int(rule.retry_after_seconds))
                details = {"retryAfterSeconds": int(rule.retry_after_seconds)}
        elif code == 500:
            message = f"Internal error occurred: {INJECTED}"
        else:
            message = INJECTED
        reason = rule.reason or _REASONS.get(code, "Unknown")
        error = ApiError(code, reason, message, details, headers)
        send_json(handler, code, error.to_status(), headers)
        return code

    def _inject_expired(self, handler, rule):
        """Send what kube-apiserver sends when etcd has compacted the
        revision of the continue token: 410 Expired with kube-apiserver's
        message, which does not say that the fault was injected.
        """
        next_token = None
        if rule.new_token:
            # kube-apiserver decodes the token before it reads etcd, so an
            # invalid token is still a 400. Its new token resumes after the
            # same key at the latest revision, which it writes as -1.
            query = parse_qs(urlsplit(handler.path).query)
            start_after = decode_continue(query["continue"][-1])
            next_token = encode_continue(-1, start_after)
        error = status_errors.continue_expired(next_token)
        send_json(handler, error.code, error.to_status())
        return error.code

    # -- routing -------------------------------------------------------------

    def _route(self, handler, method, path, body, user):
        query = urlsplit(handler.path).query
        params = {key: values[-1] for key, values in
                  parse_qs(query, keep_blank_values=True).items()}
        if method not in ("GET", "HEAD") and not (
                path.startswith("/api/") or path.startswith("/apis/")):
            raise status_errors.method_not_allowed()
        if path in authz.ANONYMOUS_PATHS or path.startswith(
                ("/healthz/", "/livez/", "/readyz/")):
            return self._serve_health(handler, path, user)
        if user is None:
            raise status_errors.unauthorized()
        if path in ("/api", "/api/", "/apis", "/apis/") or (
                path.startswith("/openapi")):
            self._authorize_path(user, "get", path)
            return self._serve_discovery_root(handler, path, params)
        parts = [unquote(p) for p in path.strip("/").split("/")]
        if parts[0] == "api" and len(parts) >= 2:
            group, version, rest = "", parts[1], parts[2:]
        elif parts[0] == "apis" and len(parts) >= 2:
            if len(parts) == 2:
                self._authorize_path(user, "get", path)
                return self._serve_group(handler, parts[1])
            group, version, rest = parts[1], parts[2], parts[3:]
        else:
            raise status_errors.not_found_path()
        if not self.catalog.has_group_version(group, version):
            raise status_errors.not_found_path()
        if not rest:
            self._authorize_path(user, "get", path)
            return self._serve_resource_list(handler, group, version)
        return self._serve_resource(handler, method, group, version, rest,
                                    params, body, user)

    def _authorize_path(self, user, verb, path):
        if not self.authorizer.allowed(user, {"verb": verb, "path": path}):
            raise status_errors.forbidden_path(user.name, verb, path)

    def _serve_health(self, handler, path, user):
        if path == "/version":
            send_json(handler, 200, self.control.version)
            return 200
        send_bytes(handler, 200, b"ok", "text/plain; charset=utf-8")
        return 200

    # -- discovery -----------------------------------------------------------

    def _serve_discovery_root(self, handler, path, params):
        if path.startswith("/openapi"):
            return self._serve_openapi(handler, path)
        negotiate(handler.headers.get("Accept"))
        if path.rstrip("/") == "/api":
            host, port = self.server_address
            send_json(handler, 200, {
                "kind": "APIVersions", "versions": ["v1"],
                "serverAddressByClientCIDRs": [{
                    "clientCIDR": "0.0.0.0/0",
                    "serverAddress": f"{host}:{port}"}]})
            return 200
        groups = [self._group_json(group) for group in self.catalog.groups()]
        send_json(handler, 200, {"kind": "APIGroupList", "apiVersion": "v1",
                                 "groups": groups})
        return 200

    def _group_json(self, group):
        versions = [{"groupVersion": f"{group}/{version}", "version": version}
                    for version in self.catalog.versions_of(group)]
        return {"name": group, "versions": versions,
                "preferredVersion": versions[0]}

    def _serve_group(self, handler, group):
        if not self.catalog.versions_of(group):
            raise status_errors.not_found_path()
        negotiate(handler.headers.get("Accept"))
        result = self._group_json(group)
        result.update(kind="APIGroup", apiVersion="v1")
        send_json(handler, 200, result)
        return 200

    def _serve_resource_list(self, handler, group, version):
        negotiate(handler.headers.get("Accept"))
        resources = []
        for rtype in sorted(self.catalog.types_of(group, version),
                            key=lambda t: t.resource):
            resources.extend(rtype.discovery_entries())
        group_version = f"{group}/{version}" if group else version
        send_json(handler, 200, {"kind": "APIResourceList",
                                 "apiVersion": "v1",
                                 "groupVersion": group_version,
                                 "resources": resources})
        return 200

    def _serve_openapi(self, handler, path):
        if path.rstrip("/") == "/openapi/v3":
            send_json(handler, 200, openapi.index_document(self.catalog))
            return 200
        prefix = "/openapi/v3/"
        if path.startswith(prefix):
            parts = path[len(prefix):].strip("/").split("/")
            if parts[0] == "api" and len(parts) == 2:
                group, version = "", parts[1]
            elif parts[0] == "apis" and len(parts) == 3:
                group, version = parts[1], parts[2]
            else:
                raise status_errors.not_found_path()
            if not self.catalog.has_group_version(group, version):
                raise status_errors.not_found_path()
            send_json(handler, 200, openapi.group_version_document(
                self.catalog, group, version,
                self.control.version["gitVersion"]))
            return 200
        if path.rstrip("/") == "/openapi/v2":
            git_version = self.control.version["gitVersion"]
            if "protobuf" in handler.headers.get("Accept", ""):
                send_bytes(handler, 200,
                           openapi.v2_document_protobuf(git_version),
                           # kube-openapi responds with this spelling: Go's
                           # mime parser rejects the "@" of the request's.
                           "application/com.github.proto-openapi.spec.v2"
                           ".v1.0+protobuf")
            else:
                send_json(handler, 200, openapi.v2_document_json(git_version))
            return 200
        raise status_errors.not_found_path()

    # -- resources -----------------------------------------------------------

    def _parse_resource_path(self, group, version, rest):
        """Split the path after /api/v1 or /apis/G/V into
        (watch_prefix, namespace, resource, name, subresource)."""
        watch_prefix = False
        if rest and rest[0] == "watch":
            watch_prefix = True
            rest = rest[1:]
        namespace = None
        if len(rest) >= 3 and rest[0] == "namespaces":
            candidate = self.catalog.lookup(group, version, rest[2])
            if candidate is not None and candidate.namespaced:
                namespace = rest[1]
                rest = rest[2:]
        if not rest or len(rest) > 3:
            raise status_errors.not_found_path()
        resource = rest[0]
        name = rest[1] if len(rest) > 1 else None
        subresource = rest[2] if len(rest) > 2 else ""
        return watch_prefix, namespace, resource, name, subresource

    def _serve_resource(self, handler, method, group, version, rest, params,
                        body, user):
        watch_prefix, namespace, resource, name, subresource = (
            self._parse_resource_path(group, version, rest))
        rtype = self.catalog.lookup(group, version, resource)
        if rtype is None:
            raise status_errors.not_found_path()
        if namespace is not None and not rtype.namespaced:
            raise status_errors.not_found_path()
        if subresource and not rtype.has_subresource(subresource):
            raise status_errors.not_found_path()
        watch = watch_prefix or params.get("watch") in ("true", "1")
        verb = self._verb(method, name, watch)
        if verb is None:
            raise status_errors.method_not_allowed()
        if rtype.virtual and verb != "create":
            raise status_errors.method_not_allowed()
        if rtype.namespaced and namespace is None and (
                name is not None or verb == "create"):
            raise status_errors.not_found_path()
        attributes = {"verb": verb, "group": group, "resource": resource,
                      "subresource": subresource,
                      "namespace": namespace or "", "name": name or "",
                      "path": None}
        if not self.authorizer.allowed(user, attributes):
            raise status_errors.forbidden_resource(
                user.name, verb, group, resource, subresource,
                namespace or "", name or "")
        ctx = RequestContext(user, params, handler.headers.get("User-Agent"))
        body = self._json_body(handler, body)
        if rtype.virtual:
            return self._serve_review(handler, rtype, body, user)
        namespace = namespace or ""
        if verb == "watch":
            return self._serve_watch(handler, rtype, namespace, name, params)
        if verb in ("get", "list"):
            form = negotiate(handler.headers.get("Accept"))
            return self._serve_read(handler, rtype, namespace, name,
                                    subresource, params, form)
        return self._serve_write(handler, ctx, verb, rtype, namespace, name,
                                 subresource, body, params)

    @staticmethod
    def _json_body(handler, body):
        """Return body as JSON bytes, decoding the protobuf kinds that
        kubectl's typed clients send."""
        media_type = handler.headers.get("Content-Type", "").split(";")[
            0].strip().lower()
        if body and media_type == "application/vnd.kubernetes.protobuf":
            return json.dumps(protobuf.decode(body)).encode()
        if body and media_type == "application/cbor":
            raise status_errors.unsupported_media_type(media_type)
        return body

    @staticmethod
    def _verb(method, name, watch):
        if method in ("GET", "HEAD"):
            if watch:
                return "watch"
            return "get" if name else "list"
        if method == "POST":
            return None if name else "create"
        if method == "PUT":
            return "update" if name else None
        if method == "PATCH":
            return "patch" if name else None
        if method == "DELETE":
            return "delete" if name else "deletecollection"
        return None

    def _serve_review(self, handler, rtype, body, user):
        try:
            review = json.loads(body or b"{}")
        except ValueError as error:
            raise status_errors.bad_request(
                f"the body of the request is not valid JSON: {error}"
            ) from None
        if rtype.resource == "selfsubjectaccessreviews":
            result = authz.access_review(self.authorizer, user, review)
        elif rtype.resource == "selfsubjectrulesreviews":
            result = authz.rules_review(self.authorizer, user, review)
        else:
            result = authz.subject_review(user)
        send_json(handler, 201, result)
        return 201

    def _serve_read(self, handler, rtype, namespace, name, subresource,
                    params, form):
        if name is not None:
            if subresource == "scale":
                send_json(handler, 200,
                          self.api.get_scale(rtype, namespace, name))
                return 200
            obj = self.api.get(rtype, namespace, name)
            if form == "table":
                obj = tables.to_table(rtype, [obj], {
                    "resourceVersion": obj["metadata"].get(
                        "resourceVersion", "")},
                    params.get("includeObject", "Metadata"))
            elif form == "partial":
                obj = {"kind": "PartialObjectMetadata",
                       "apiVersion": "meta.k8s.io/v1",
                       "metadata": obj["metadata"]}
            send_json(handler, 200, obj)
            return 200
        result = self.api.list(rtype, namespace or None, params)
        if form == "table":
            result = tables.to_table(rtype, result["items"],
                                     result["metadata"],
                                     params.get("includeObject", "Metadata"))
        elif form == "partial":
            result = {"kind": "PartialObjectMetadataList",
                      "apiVersion": "meta.k8s.io/v1",
                      "metadata": result["metadata"],
                      "items": [{"kind": "PartialObjectMetadata",
                                 "apiVersion": "meta.k8s.io/v1",
                                 "metadata": item["metadata"]}
                                for item in result["items"]]}
        send_json(handler, 200, result)
        return 200

    def _serve_write(self, handler, ctx, verb, rtype, namespace, name,
                     subresource, body, params):
        content_type = handler.headers.get("Content-Type", "")
        if subresource == "scale" and verb in ("update", "patch"):
            code, result = self.api.set_scale(
                ctx, rtype, namespace, name, body, content_type,
                "PUT" if verb == "update" else "PATCH")
        elif verb == "create":
            code, result = self.api.create(ctx, rtype, namespace, body)
        elif verb == "update":
            code, result = self.api.update(ctx, rtype, namespace, name, body,
                                           subresource)
        elif verb == "patch":
            code, result = self.api.patch(ctx, rtype, namespace, name, body,
                                          content_type, subresource)
        elif verb == "delete":
            code, result = self.api.delete(ctx, rtype, namespace, name,
                                           self._delete_options(body, params))
        else:
            code, result = self.api.delete_collection(
                ctx, rtype, namespace or None, params,
                self._delete_options(body, params))
        send_json(handler, code, result)
        return code

    @staticmethod
    def _delete_options(body, params):
        options = {}
        if body:
            try:
                options = json.loads(body)
            except ValueError as error:
                raise status_errors.bad_request(
                    f"DeleteOptions are not valid JSON: {error}") from None
        if params.get("propagationPolicy"):
            options["propagationPolicy"] = params["propagationPolicy"]
        return options if isinstance(options, dict) else {}

    # -- watch ---------------------------------------------------------------

    def _serve_watch(self, handler, rtype, namespace, name, params):
        label_requirements = selectors.parse_label_selector(
            params.get("labelSelector", ""))
        field_requirements = selectors.parse_field_selector(
            params.get("fieldSelector", ""), rtype.resource)
        if name:
            field_requirements.append(("metadata.name", "=", name))
        form = negotiate(handler.headers.get("Accept"))
        try:
            timeout = int(params.get("timeoutSeconds") or
                          DEFAULT_WATCH_SECONDS)
        except ValueError:
            raise status_errors.bad_request("timeoutSeconds must be an "
                                            "integer") from None
        timeout = max(0, min(timeout, MAX_WATCH_SECONDS))
        requested = params.get("resourceVersion", "")
        send_initial = params.get("sendInitialEvents") == "true"
        if requested not in ("", "0"):
            try:
                int(requested)
            except ValueError:
                raise status_errors.bad_request(
                    f"invalid resource version {requested!r}") from None
        watch = _WatchStream(self, handler, rtype, namespace,
                             label_requirements, field_requirements, form,
                             params.get("includeObject", "Metadata"))
        return watch.run(requested, send_initial, timeout)

    def matches(self, rtype, namespace, label_requirements,
                field_requirements, obj):
        if obj is None:
            return False
        metadata = obj["metadata"]
        if namespace and metadata.get("namespace", "") != namespace:
            return False
        return (selectors.labels_match(label_requirements,
                                       metadata.get("labels"))
                and selectors.fields_match(field_requirements, obj))

    # -- control endpoints ---------------------------------------------------

    def _control_allowed(self, handler):
        if self._bearer_token(handler) == self.control_token:
            return True
        user = self._certificate_user(handler)
        return user is not None and user.name == "admin" and (
            "system:masters" in user.groups)

    def _handle_control(self, handler, method, path, body):
        if not self._control_allowed(handler):
            user = self._certificate_user(handler)
            if user is None and handler.headers.get("Authorization"):
                user = self._authenticate(handler)
            if user is None:
                raise status_errors.unauthorized()
            raise status_errors.forbidden_path(user.name, method.lower(),
                                               path)
        try:
            request = json.loads(body) if body else {}
        except ValueError as error:
            raise status_errors.bad_request(
                f"the control request is not valid JSON: {error}") from None
        try:
            result = self._control_request(handler, method, path, request)
        except (ControlError, ValueError, TypeError, KeyError) as error:
            raise status_errors.bad_request(
                f"invalid control request: {error}") from None
        send_json(handler, 200, result)
        return 200

    def _control_request(self, handler, method, path, request):
        parts = path.strip("/").split("/")[1:]
        topic = parts[0] if parts else "state"
        control = self.control
        if topic == "state" and method == "GET":
            return self._control_state()
        if topic == "version":
            if method in ("PUT", "POST"):
                control.set_version(request)
            return control.version
        if topic == "faults":
            if len(parts) == 2 and parts[1] == "rules" and method == "POST":
                control.add_fault(request)
            elif method == "PUT":
                control.set_faults(request)
            elif method == "DELETE":
                control.set_faults({"rules": []})
            return control.faults_json()
        if topic == "roles":
            if len(parts) == 2 and method in ("PUT", "POST"):
                control.set_role(parts[1], request["role"],
                                 request.get("rules"))
            elif len(parts) == 2 and method == "DELETE":
                control.set_role(parts[1], None)
            return control.roles_json()
        if topic == "controllers":
            if len(parts) == 2 and parts[1] == "unready" and method in (
                    "PUT", "POST"):
                control.set_unready(request["kind"],
                                    request.get("namespace", ""),
                                    request["name"],
                                    bool(request.get("unready", True)))
            elif method in ("PUT", "POST"):
                control.set_controller_delays(
                    request.get("delaySeconds") or {})
            return control.controllers_json()
        if topic == "stats":
            if method == "DELETE":
                control.stats.reset()
            query = parse_qs(urlsplit(handler.path).query)
            return control.stats.to_json((query.get("prefix") or [""])[-1])
        raise status_errors.not_found_path()

    def _control_state(self):
        return {"version": self.control.version,
                "faults": self.control.faults_json(),
                "roles": self.control.roles_json(),
                "controllers": self.control.controllers_json(),
                "objects": self.store.count(),
                "resourceVersion": str(self.store.resource_version)}


class _WatchStream:
    """One watch response: chunked JSON events until timeout or hang-up."""

    def __init__(self, app, handler, rtype, namespace, label_requirements,
                 field_requirements, form, include_object):
        self.app = app
        self.handler = handler
        self.rtype = rtype
        self.namespace = namespace
        self.labels = label_requirements
        self.fields = field_requirements
        self.form = form
        self.include_object = include_object

    def _encode(self, event_type, obj):
        if event_type in ("ADDED", "MODIFIED", "DELETED"):
            obj = self.app.api.for_version(obj, self.rtype)
            if self.form == "table":
                obj = tables.to_table(self.rtype, [obj], {
                    "resourceVersion": obj["metadata"]["resourceVersion"]},
                    self.include_object)
            elif self.form == "partial":
                obj = {"kind": "PartialObjectMetadata",
                       "apiVersion": "meta.k8s.io/v1",
                       "metadata": obj["metadata"]}
        line = json.dumps({"type": event_type, "object": obj},
                          separators=(",", ":")) + "\n"
        return line.encode()

    def _write_chunk(self, data):
        self.handler.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))

    def _bookmark(self, resource_version, initial_end):
        metadata = {"resourceVersion": str(resource_version)}
        if initial_end:
            metadata["annotations"] = {"k8s.io/initial-events-end": "true"}
        return {"kind": self.rtype.kind,
                "apiVersion": self.rtype.group_version, "metadata": metadata}

    def _translate(self, event):
        """Return the event type this watch sends for event, or None."""
        if event.group_resource != self.rtype.group_resource:
            return None
        new_match = self.app.matches(self.rtype, self.namespace, self.labels,
                                     self.fields, event.object)
        old_match = self.app.matches(self.rtype, self.namespace, self.labels,
                                     self.fields, event.old_object)
        if event.type == "DELETED":
            return "DELETED" if old_match or new_match else None
        if new_match and not old_match:
            return "ADDED"
        if new_match:
            return "MODIFIED"
        if old_match:
            return "DELETED"
        return None

    def run(self, requested, send_initial, timeout):
        store = self.app.store
        initial = []
        with store.lock:
            current = store.resource_version
            if requested in ("", "0") or send_initial:
                objects = store.list(self.rtype.group_resource,
                                     self.namespace or None)
                initial = [obj for obj in objects if self.app.matches(
                    self.rtype, self.namespace, self.labels, self.fields,
                    obj)]
                last_version = current
                backlog = []
            else:
                last_version = int(requested)
                backlog = store.events_since(last_version)
        self.handler.send_response(200)
        self.handler.send_header("Content-Type", "application/json")
        self.handler.send_header("Transfer-Encoding", "chunked")
        self.handler.send_header("Cache-Control", "no-cache, private")
        self.handler.end_headers()
        deadline = time.monotonic() + timeout
        try:
            for obj in initial:
                self._write_chunk(self._encode("ADDED", obj))
            if send_initial:
                self._write_chunk(self._encode(
                    "BOOKMARK", self._bookmark(current, True)))
            while True:
                if backlog is None:
                    error = status_errors.gone(
                        f"too old resource version: {last_version} "
                        f"({store.oldest_event_version()})")
                    self._write_chunk(self._encode("ERROR",
                                                   error.to_status()))
                    break
                for event in backlog:
                    event_type = self._translate(event)
                    if event_type is not None:
                        self._write_chunk(self._encode(event_type,
                                                       event.object))
                    last_version = event.resource_version
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                store.wait_for_change(last_version, min(remaining, 5.0))
                backlog = store.events_since(last_version)
            self.handler.wfile.write(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError,
                socket.timeout, OSError):
            self.handler.close_connection = True
        return 200
