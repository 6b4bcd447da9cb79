"""A minimal OpenAPI v3 description of the served resources.

kubectl (1.27 and later) reads /openapi/v3 to learn whether the server
supports the `fieldValidation` query parameter for a kind: it looks for a
PATCH operation tagged with the kind's x-kubernetes-group-version-kind and
a `fieldValidation` query parameter. When it finds one, it leaves
validation to the server and skips client-side schema validation, which
would need /openapi/v2 in protobuf form. These documents carry the paths,
operations and parameters that kubectl reads, and schemas that accept any
object: `kubectl explain` finds no field documentation here.
"""

import hashlib
import json

_WRITE_PARAMETERS = ("dryRun", "fieldManager", "fieldValidation")


def _parameter(name, description):
    return {"name": name, "in": "query", "description": description,
            "schema": {"type": "string", "uniqueItems": True}}


_PARAMETER_DESCRIPTIONS = {
    "dryRun": "When present, indicates that modifications should not be "
              "persisted. The only valid value is All.",
    "fieldManager": "A name associated with the actor or entity that is "
                    "making these changes.",
    "fieldValidation": "How the server handles objects with unknown or "
                       "duplicate fields: Ignore, Warn or Strict.",
    "force": "Force is going to \"force\" Apply requests.",
}


def path_prefix(group, version):
    return f"api/{version}" if not group else f"apis/{group}/{version}"


def schema_name(rtype):
    """Return the definition name, e.g. io.k8s.api.apps.v1.Deployment."""
    if rtype.crd_name:
        reversed_group = ".".join(reversed(rtype.group.split(".")))
        return f"{reversed_group}.{rtype.version}.{rtype.kind}"
    group = rtype.group.split(".")[0] if rtype.group else "core"
    return f"io.k8s.api.{group}.{rtype.version}.{rtype.kind}"


def _gvk(rtype):
    return {"group": rtype.group, "version": rtype.version,
            "kind": rtype.kind}


def _operation(rtype, action, parameters, description):
    reference = {"$ref": f"#/components/schemas/{schema_name(rtype)}"}
    operation = {
        "description": description,
        "operationId": f"{action}{rtype.kind}",
        "parameters": [_parameter(p, _PARAMETER_DESCRIPTIONS[p])
                       for p in parameters],
        "responses": {"200": {"description": "OK", "content": {
            "application/json": {"schema": reference}}}},
        "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": _gvk(rtype),
    }
    if action in ("post", "put", "patch"):
        media_types = (["application/apply-patch+yaml",
                        "application/json-patch+json",
                        "application/merge-patch+json",
                        "application/strategic-merge-patch+json"]
                       if action == "patch" else ["application/json"])
        operation["requestBody"] = {"content": {
            media_type: {"schema": reference} for media_type in media_types}}
    return operation


def _paths_for(rtype):
    prefix = "/" + path_prefix(rtype.group, rtype.version)
    if rtype.namespaced:
        collection = f"{prefix}/namespaces/{{namespace}}/{rtype.resource}"
    else:
        collection = f"{prefix}/{rtype.resource}"
    paths = {collection: {}}
    if "create" in rtype.verbs:
        paths[collection]["post"] = _operation(
            rtype, "post", _WRITE_PARAMETERS, f"create a {rtype.kind}")
    if rtype.virtual:
        return paths
    paths[collection]["get"] = _operation(rtype, "list", (),
                                          f"list objects of kind {rtype.kind}")
    item = f"{collection}/{{name}}"
    paths[item] = {
        "get": _operation(rtype, "get", (), f"read the specified "
                                            f"{rtype.kind}"),
        "put": _operation(rtype, "put", _WRITE_PARAMETERS,
                          f"replace the specified {rtype.kind}"),
        "patch": _operation(rtype, "patch", _WRITE_PARAMETERS + ("force",),
                            f"partially update the specified {rtype.kind}"),
        "delete": _operation(rtype, "delete", ("dryRun",),
                             f"delete a {rtype.kind}"),
    }
    return paths


def group_version_document(catalog, group, version, git_version):
    """Build the OpenAPI v3 document of one group version."""
    paths = {}
    schemas = {}
    for rtype in sorted(catalog.types_of(group, version),
                        key=lambda t: t.resource):
        paths.update(_paths_for(rtype))
        schemas[schema_name(rtype)] = {
            "description": f"{rtype.kind} (schema not described by the "
                           "stand-in API server)",
            "type": "object",
            "x-kubernetes-preserve-unknown-fields": True,
            "x-kubernetes-group-version-kind": [_gvk(rtype)],
        }
    return {"openapi": "3.0.0",
            "info": {"title": "Kubernetes", "version": git_version},
            "paths": paths,
            "components": {"schemas": schemas}}


def _document_hash(catalog, group, version):
    summary = sorted((t.resource, t.kind, t.namespaced, tuple(t.verbs))
                     for t in catalog.types_of(group, version))
    return hashlib.sha512(json.dumps(summary).encode()).hexdigest().upper()


def index_document(catalog):
    """Build /openapi/v3: one entry per served group version."""
    paths = {}
    for group in [""] + catalog.groups():
        for version in catalog.versions_of(group):
            prefix = path_prefix(group, version)
            digest = _document_hash(catalog, group, version)
            paths[prefix] = {
                "serverRelativeURL": f"/openapi/v3/{prefix}?hash={digest}"}
    return {"paths": paths}


def _protobuf_field(number, payload):
    """Encode one length-delimited protobuf field."""
    length = len(payload)
    size = bytearray()
    while True:
        byte = length & 0x7F
        length >>= 7
        if length:
            size.append(byte | 0x80)
        else:
            size.append(byte)
            break
    return bytes([(number << 3) | 2]) + bytes(size) + payload


def v2_document_protobuf(git_version):
    """Build an /openapi/v2 document with no paths and no definitions, in
    the protobuf form of gnostic's openapi_v2.Document that kubectl reads
    (swagger = 1, info = 2 with title = 1 and version = 2).

    kubectl falls back to it only for kinds that /openapi/v3 does not list,
    such as custom resources applied in the same file as their CRD. With no
    definitions it skips client-side validation of those objects, as it
    does on a real server for kinds missing from the document.
    """
    info = _protobuf_field(1, b"Kubernetes") + _protobuf_field(
        2, git_version.encode())
    return _protobuf_field(1, b"2.0") + _protobuf_field(2, info)


def v2_document_json(git_version):
    return {"swagger": "2.0",
            "info": {"title": "Kubernetes", "version": git_version},
            "paths": {}, "definitions": {}}
