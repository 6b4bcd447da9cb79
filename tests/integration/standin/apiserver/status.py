"""Error responses as `Status` objects, shaped like kube-apiserver's.

Messages follow the wording of k8s.io/apimachinery/pkg/api/errors so that
clients which match on text (kubectl, mlboot's retry logic) see what they
would see from a real server.
"""


class ApiError(Exception):
    """An API failure that the HTTP layer sends as a Status object."""

    def __init__(self, code, reason, message, details=None, headers=None,
                 metadata=None):
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details
        self.headers = headers or {}
        # ListMeta of the Status, such as the continue token of a 410.
        self.metadata = metadata or {}

    def to_status(self):
        status = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": dict(self.metadata),
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if self.details is not None:
            status["details"] = self.details
        return status


def qualified_resource(group, resource):
    """Return "deployments.apps" or "configmaps" as the real messages do."""
    return f"{resource}.{group}" if group else resource


def _details(group, resource, name=None):
    details = {}
    if name:
        details["name"] = name
    if group:
        details["group"] = group
    details["kind"] = resource
    return details


def not_found(group, resource, name):
    return ApiError(404, "NotFound",
                    f'{qualified_resource(group, resource)} "{name}" not found',
                    _details(group, resource, name))


def not_found_path():
    return ApiError(404, "NotFound",
                    "the server could not find the requested resource",
                    {"causes": [{"reason": "UnexpectedServerResponse",
                                 "message": "404 page not found"}]})


def already_exists(group, resource, name):
    return ApiError(409, "AlreadyExists",
                    f'{qualified_resource(group, resource)} "{name}" already '
                    "exists", _details(group, resource, name))


def conflict_modified(group, resource, name):
    return ApiError(409, "Conflict",
                    "Operation cannot be fulfilled on "
                    f'{qualified_resource(group, resource)} "{name}": the '
                    "object has been modified; please apply your changes to "
                    "the latest version and try again",
                    _details(group, resource, name))


def conflict(group, resource, name, message, causes=None):
    details = _details(group, resource, name)
    if causes:
        details["causes"] = causes
    return ApiError(409, "Conflict", message, details)


def invalid(group, kind, name, causes):
    """Return a 422 Invalid error.

    causes: list of (field, cause_reason, message) where message is already
    in the "Invalid value: ..." or "Required value" form.
    """
    parts = [f"{field}: {message}" for field, _reason, message in causes]
    if len(parts) == 1:
        summary = parts[0]
    else:
        summary = "[" + ", ".join(parts) + "]"
    details = {"name": name, "kind": kind,
               "causes": [{"reason": reason, "message": message,
                           "field": field}
                          for field, reason, message in causes]}
    if group:
        details["group"] = group
    qualified_kind = f"{kind}.{group}" if group else kind
    return ApiError(422, "Invalid",
                    f'{qualified_kind} "{name}" is invalid: {summary}',
                    details)


def bad_request(message):
    return ApiError(400, "BadRequest", message)


def unsupported_media_type(content_type):
    return ApiError(415, "UnsupportedMediaType",
                    f'the body of the request was in an unknown format - '
                    f'accepted media types include: application/json, '
                    f'application/merge-patch+json, '
                    f'application/strategic-merge-patch+json, '
                    f'application/json-patch+json, '
                    f'application/apply-patch+yaml (got "{content_type}")')


def not_acceptable(accept):
    return ApiError(406, "NotAcceptable",
                    f'only the following media types are accepted: '
                    f'application/json (got "{accept}")')


def request_too_large(limit):
    return ApiError(413, "RequestEntityTooLarge",
                    f"Request entity too large: limit is {limit}")


def method_not_allowed():
    return ApiError(405, "MethodNotAllowed",
                    "the server does not allow this method on the requested "
                    "resource")


def unauthorized():
    return ApiError(401, "Unauthorized", "Unauthorized")


def forbidden_resource(user, verb, group, resource, subresource, namespace,
                       name):
    qualified = qualified_resource(group, resource)
    subject = f'{qualified} "{name}"' if name else qualified
    full_resource = f"{resource}/{subresource}" if subresource else resource
    scope = (f'in the namespace "{namespace}"' if namespace
             else "at the cluster scope")
    message = (f'{subject} is forbidden: User "{user}" cannot {verb} '
               f'resource "{full_resource}" in API group "{group}" {scope}')
    return ApiError(403, "Forbidden", message,
                    _details(group, resource, name))


def forbidden_path(user, verb, path):
    return ApiError(403, "Forbidden",
                    f'forbidden: User "{user}" cannot {verb} path "{path}"',
                    {})


def forbidden(group, resource, name, reason_text):
    qualified = qualified_resource(group, resource)
    subject = f'{qualified} "{name}"' if name else qualified
    return ApiError(403, "Forbidden", f"{subject} is forbidden: {reason_text}",
                    _details(group, resource, name))


def internal_error(message, causes=None):
    details = {"causes": [{"message": m} for m in causes]} if causes else None
    return ApiError(500, "InternalError",
                    f"Internal error occurred: {message}", details)


def gone(message):
    return ApiError(410, "Expired", message)


# kube-apiserver's messages for a list whose continue token names a revision
# that etcd has compacted (k8s.io/apiserver/pkg/storage/etcd3/errors.go,
# continueExpired and inconsistentContinue).
CONTINUE_EXPIRED = ("The provided continue parameter is too old to display a "
                    "consistent list result. You can start a new list without "
                    "the continue parameter.")
INCONSISTENT_CONTINUE = (
    "The provided continue parameter is too old to display a consistent list "
    "result. You can start a new list without the continue parameter, or use "
    "the continue token in this response to retrieve the remainder of the "
    "results. Continuing with the provided token results in an inconsistent "
    "list - objects that were created, modified, or deleted between the time "
    "the first chunk was returned and now may show up in the list.")


def continue_expired(next_token=None):
    """Return the 410 Expired error of an expired continue token.

    With next_token, the Status carries it in metadata.continue with the
    longer message, as kube-apiserver does when it can encode a token that
    resumes the list at the latest revision.
    """
    if next_token is None:
        return ApiError(410, "Expired", CONTINUE_EXPIRED)
    return ApiError(410, "Expired", INCONSISTENT_CONTINUE,
                    metadata={"continue": next_token})


def success_status(group, resource, name, uid=None):
    details = _details(group, resource, name)
    if uid:
        details["uid"] = uid
    return {"kind": "Status", "apiVersion": "v1", "metadata": {},
            "status": "Success", "details": details}
