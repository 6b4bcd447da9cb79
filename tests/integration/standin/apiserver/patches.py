"""JSON merge patch (RFC 7386), JSON patch (RFC 6902) and an approximation
of Kubernetes strategic merge patch."""

import copy

from .status import ApiError, bad_request

# Merge keys of strategic merge patch for the list fields of built-in kinds
# that clients patch most. The real server takes them from the Go struct
# tags of every type; lists not named here are replaced as a whole.
STRATEGIC_MERGE_KEYS = {
    "containers": "name",
    "initContainers": "name",
    "ephemeralContainers": "name",
    "volumes": "name",
    "env": "name",
    "imagePullSecrets": "name",
    "volumeMounts": "mountPath",
    "volumeDevices": "devicePath",
    "conditions": "type",
    "hostAliases": "ip",
    "topologySpreadConstraints": "topologyKey",
    "ownerReferences": "uid",
    "resourceClaims": "name",
}


def merge_patch(target, patch):
    """Apply an RFC 7386 JSON merge patch and return the new value."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def _list_merge_key(field, items):
    if field == "ports":
        if all(isinstance(i, dict) and "containerPort" in i for i in items):
            return "containerPort"
        return "port"
    return STRATEGIC_MERGE_KEYS.get(field)


def _strategic_merge_list(field, target, patch):
    key = _list_merge_key(field, patch)
    if key is None or not all(isinstance(i, dict) for i in patch):
        return [strategic_merge_patch(None, item) for item in patch]
    result = [copy.deepcopy(i) for i in (target or [])
              if isinstance(i, dict)]
    for item in patch:
        directive = item.get("$patch")
        matches = [i for i, existing in enumerate(result)
                   if existing.get(key) == item.get(key)]
        if directive == "delete":
            result = [e for i, e in enumerate(result) if i not in matches]
            continue
        if matches:
            index = matches[0]
            result[index] = strategic_merge_patch(result[index], item)
        else:
            result.append(strategic_merge_patch(None, item))
    return result


def strategic_merge_patch(target, patch):
    """Apply a strategic merge patch, approximated.

    Maps merge as in a JSON merge patch. Lists named in
    STRATEGIC_MERGE_KEYS merge by their key and honour `$patch: delete`;
    other lists are replaced. `$deleteFromPrimitiveList/FIELD` removes
    values, `$patch: replace` on a map replaces it, and the ordering
    directives (`$setElementOrder`, `$retainKeys`) are ignored.
    """
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    if patch.get("$patch") == "replace":
        return {k: copy.deepcopy(v) for k, v in patch.items()
                if not k.startswith("$")}
    if patch.get("$patch") == "delete":
        return None
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if key.startswith("$deleteFromPrimitiveList/"):
            field = key.split("/", 1)[1]
            if isinstance(result.get(field), list):
                result[field] = [v for v in result[field] if v not in value]
            continue
        if key.startswith("$"):
            continue
        if value is None:
            result.pop(key, None)
        elif isinstance(value, list):
            result[key] = _strategic_merge_list(key, result.get(key), value)
        elif isinstance(value, dict):
            merged = strategic_merge_patch(result.get(key), value)
            if merged is None:
                result.pop(key, None)
            else:
                result[key] = merged
        else:
            result[key] = value
    return result


def _decode_pointer(pointer):
    if pointer == "":
        return []
    if not pointer.startswith("/"):
        raise bad_request(f"invalid JSON pointer {pointer!r}")
    return [part.replace("~1", "/").replace("~0", "~")
            for part in pointer[1:].split("/")]


def _resolve_parent(document, parts, pointer):
    node = document
    for part in parts[:-1]:
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(
                node):
            node = node[int(part)]
        else:
            raise _patch_error(f"doc is missing path: {pointer!r}")
    return node


def _patch_error(message):
    return ApiError(422, "Invalid", message)


def _get(document, pointer):
    parts = _decode_pointer(pointer)
    if not parts:
        return document
    parent = _resolve_parent(document, parts, pointer)
    last = parts[-1]
    if isinstance(parent, dict) and last in parent:
        return parent[last]
    if isinstance(parent, list) and last.isdigit() and int(last) < len(parent):
        return parent[int(last)]
    raise _patch_error(f"doc is missing path: {pointer!r}")


def _add(document, pointer, value):
    parts = _decode_pointer(pointer)
    if not parts:
        return value
    parent = _resolve_parent(document, parts, pointer)
    last = parts[-1]
    if isinstance(parent, dict):
        parent[last] = value
    elif isinstance(parent, list):
        if last == "-":
            parent.append(value)
        elif last.isdigit() and int(last) <= len(parent):
            parent.insert(int(last), value)
        else:
            raise _patch_error(f"invalid array index in {pointer!r}")
    else:
        raise _patch_error(f"doc is missing path: {pointer!r}")
    return document


def _remove(document, pointer):
    parts = _decode_pointer(pointer)
    if not parts:
        raise _patch_error("cannot remove the whole document")
    parent = _resolve_parent(document, parts, pointer)
    last = parts[-1]
    if isinstance(parent, dict) and last in parent:
        return parent.pop(last)
    if isinstance(parent, list) and last.isdigit() and int(last) < len(parent):
        return parent.pop(int(last))
    raise _patch_error(f"unable to remove nonexistent key: {pointer!r}")


def json_patch(document, operations):
    """Apply an RFC 6902 JSON patch to a copy of document and return it."""
    if not isinstance(operations, list):
        raise bad_request("json patch must be a list of operations")
    document = copy.deepcopy(document)
    for operation in operations:
        if not isinstance(operation, dict):
            raise bad_request("json patch operation must be an object")
        op = operation.get("op")
        path = operation.get("path", "")
        if op == "add":
            document = _add(document, path, copy.deepcopy(
                operation.get("value")))
        elif op == "remove":
            _remove(document, path)
        elif op == "replace":
            _get(document, path)
            if _decode_pointer(path):
                _remove(document, path)
            document = _add(document, path, copy.deepcopy(
                operation.get("value")))
        elif op == "move":
            value = _remove(document, operation.get("from", ""))
            document = _add(document, path, value)
        elif op == "copy":
            value = copy.deepcopy(_get(document, operation.get("from", "")))
            document = _add(document, path, value)
        elif op == "test":
            if _get(document, path) != operation.get("value"):
                raise _patch_error(f"testing value {path!r} failed")
        else:
            raise bad_request(f"unexpected kind of json patch operation: "
                              f"{op!r}")
    return document
