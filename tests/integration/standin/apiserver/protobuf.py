"""Decoding of Kubernetes protobuf request bodies for a few kinds.

kubectl's typed clients send protobuf (application/vnd.kubernetes.protobuf),
for example `kubectl create namespace NAME`, and client-go 1.32 does not
retry in JSON when the server responds with 415. Decoding needs each Go type's
field numbers, so only these kinds are described: Namespace, ConfigMap,
Secret, ServiceAccount (kubectl create generators), the self reviews
(kubectl auth can-i, kubectl auth whoami) and DeleteOptions. Other kinds
get 415.

Field numbers come from the generated.proto files of k8s.io/api (core/v1,
authorization/v1, authentication/v1) and k8s.io/apimachinery (meta/v1);
Kubernetes never renumbers protobuf fields.
"""

import base64
import datetime

from . import status as status_errors

MAGIC = b"k8s\x00"


class DecodeError(ValueError):
    pass


def _varint(data, position):
    result = 0
    shift = 0
    while True:
        if position >= len(data):
            raise DecodeError("truncated varint")
        byte = data[position]
        position += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, position
        shift += 7
        if shift > 63:
            raise DecodeError("varint too long")


def fields(data):
    """Yield (field_number, wire_type, value) for each field of a message."""
    position = 0
    while position < len(data):
        key, position = _varint(data, position)
        number, wire_type = key >> 3, key & 7
        if wire_type == 0:
            value, position = _varint(data, position)
        elif wire_type == 1:
            value = data[position:position + 8]
            position += 8
        elif wire_type == 2:
            length, position = _varint(data, position)
            value = data[position:position + length]
            if len(value) != length:
                raise DecodeError("truncated field")
            position += length
        elif wire_type == 5:
            value = data[position:position + 4]
            position += 4
        else:
            raise DecodeError(f"unsupported wire type {wire_type}")
        yield number, wire_type, value


def _signed(value):
    return value - (1 << 64) if value >= 1 << 63 else value


def _time(data):
    seconds = 0
    for number, _wire, value in fields(data):
        if number == 1:
            seconds = _signed(value)
    moment = datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _map_entry(data, bytes_values):
    key, item = "", b"" if bytes_values else ""
    for number, _wire, value in fields(data):
        if number == 1:
            key = value.decode()
        elif number == 2:
            item = value if bytes_values else value.decode()
    if bytes_values:
        item = base64.b64encode(item).decode()
    return key, item


# Schemas: field number -> (JSON name, how to decode). Kinds of decoding:
# "string", "bytes" (base64 in JSON), "int", "bool", "time",
# "strings" (repeated), "map" and "bytesmap" (map<string, ...>), or a
# schema (nested message) or [schema] (repeated message).
OWNER_REFERENCE = {5: ("apiVersion", "string"), 1: ("kind", "string"),
                   3: ("name", "string"), 4: ("uid", "string"),
                   6: ("controller", "bool"),
                   7: ("blockOwnerDeletion", "bool")}
OBJECT_META = {1: ("name", "string"), 2: ("generateName", "string"),
               3: ("namespace", "string"), 5: ("uid", "string"),
               6: ("resourceVersion", "string"), 7: ("generation", "int"),
               8: ("creationTimestamp", "time"),
               11: ("labels", "map"), 12: ("annotations", "map"),
               13: ("ownerReferences", [OWNER_REFERENCE]),
               14: ("finalizers", "strings")}
OBJECT_REFERENCE = {1: ("kind", "string"), 2: ("namespace", "string"),
                    3: ("name", "string"), 4: ("uid", "string"),
                    5: ("apiVersion", "string")}
LOCAL_OBJECT_REFERENCE = {1: ("name", "string")}
RESOURCE_ATTRIBUTES = {1: ("namespace", "string"), 2: ("verb", "string"),
                       3: ("group", "string"), 4: ("version", "string"),
                       5: ("resource", "string"), 6: ("subresource", "string"),
                       7: ("name", "string")}
SCHEMAS = {
    ("v1", "Namespace"): {1: ("metadata", OBJECT_META),
                          2: ("spec", {1: ("finalizers", "strings")})},
    ("v1", "ConfigMap"): {1: ("metadata", OBJECT_META),
                          2: ("data", "map"), 3: ("binaryData", "bytesmap"),
                          4: ("immutable", "bool")},
    ("v1", "Secret"): {1: ("metadata", OBJECT_META),
                       2: ("data", "bytesmap"), 3: ("type", "string"),
                       4: ("stringData", "map"), 5: ("immutable", "bool")},
    ("v1", "ServiceAccount"): {
        1: ("metadata", OBJECT_META), 2: ("secrets", [OBJECT_REFERENCE]),
        3: ("imagePullSecrets", [LOCAL_OBJECT_REFERENCE]),
        4: ("automountServiceAccountToken", "bool")},
    ("authorization.k8s.io/v1", "SelfSubjectAccessReview"): {
        1: ("metadata", OBJECT_META),
        2: ("spec", {1: ("resourceAttributes", RESOURCE_ATTRIBUTES),
                     2: ("nonResourceAttributes",
                         {1: ("path", "string"), 2: ("verb", "string")})})},
    ("authorization.k8s.io/v1", "SelfSubjectRulesReview"): {
        1: ("metadata", OBJECT_META),
        2: ("spec", {1: ("namespace", "string")})},
    ("authentication.k8s.io/v1", "SelfSubjectReview"): {
        1: ("metadata", OBJECT_META)},
    ("v1", "DeleteOptions"): {
        1: ("gracePeriodSeconds", "int"),
        2: ("preconditions", {1: ("uid", "string"),
                              2: ("resourceVersion", "string")}),
        3: ("orphanDependents", "bool"), 4: ("propagationPolicy", "string"),
        5: ("dryRun", "strings")},
}


def decode_message(data, schema):
    result = {}
    for number, _wire, value in fields(data):
        if number not in schema:
            continue
        name, kind = schema[number]
        if kind == "string":
            # gogo-protobuf writes empty strings; JSON omits them.
            if value:
                result[name] = value.decode()
        elif kind == "bytes":
            result[name] = base64.b64encode(value).decode()
        elif kind == "int":
            result[name] = _signed(value)
        elif kind == "bool":
            result[name] = bool(value)
        elif kind == "time":
            result[name] = _time(value)
        elif kind == "strings":
            result.setdefault(name, []).append(value.decode())
        elif kind in ("map", "bytesmap"):
            key, item = _map_entry(value, kind == "bytesmap")
            result.setdefault(name, {})[key] = item
        elif isinstance(kind, list):
            result.setdefault(name, []).append(decode_message(value,
                                                              kind[0]))
        else:
            result[name] = decode_message(value, kind)
    return result


def decode(body):
    """Decode a protobuf request body into a JSON-ready object.

    Raises a 415 ApiError for kinds without a schema here, and 400 for a
    body that is not a valid envelope.
    """
    if not body.startswith(MAGIC):
        raise status_errors.bad_request("protobuf body lacks the k8s "
                                        "envelope prefix")
    api_version = kind = ""
    raw = b""
    try:
        for number, _wire, value in fields(body[len(MAGIC):]):
            if number == 1:
                for type_number, _type_wire, type_value in fields(value):
                    if type_number == 1:
                        api_version = type_value.decode()
                    elif type_number == 2:
                        kind = type_value.decode()
            elif number == 2:
                raw = value
        schema = SCHEMAS.get((api_version, kind))
        if schema is None and kind == "DeleteOptions":
            schema = SCHEMAS[("v1", "DeleteOptions")]
        if schema is None:
            raise status_errors.ApiError(
                415, "UnsupportedMediaType",
                f"the stand-in API server decodes protobuf bodies only for "
                f"Namespace, ConfigMap, Secret, ServiceAccount, the self "
                f"reviews and DeleteOptions, not {api_version} {kind}: send "
                f"JSON")
        obj = decode_message(raw, schema)
    except (DecodeError, UnicodeDecodeError) as error:
        raise status_errors.bad_request(
            f"invalid protobuf body: {error}") from None
    obj["apiVersion"] = api_version
    obj["kind"] = kind
    return obj
