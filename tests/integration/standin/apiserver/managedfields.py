"""Field ownership (metadata.managedFields) and server-side apply.

A simplified model of sigs.k8s.io/structured-merge-diff:
- a field set is a set of leaf paths, each a tuple of map keys;
- every list is atomic: its owner owns the whole list, and applying a list
  replaces it (the real server merges lists of maps by key, such as
  containers by name, and tracks `k:{...}` entries);
- an apply merges the applied configuration into the live object map by
  map and removes fields that the same manager applied before and no
  manager owns now;
- an apply reports a conflict when another manager owns a field whose
  value it would change, unless force is set.
"""

import copy
import datetime

from . import status as status_errors

# Metadata fields that field ownership tracks; the rest is set by the
# server.
TRACKED_METADATA = ("labels", "annotations", "ownerReferences", "finalizers")


def now_rfc3339():
    return datetime.datetime.now(datetime.timezone.utc).strftime(
        "%Y-%m-%dT%H:%M:%SZ")


def trackable(obj, status_subresource, only_status):
    """Return the part of obj whose fields ownership covers.

    status_subresource: the type has a status subresource, so requests on
    the main resource never own status. only_status: the request is on the
    status subresource.
    """
    if only_status:
        return {"status": obj.get("status")} if "status" in obj else {}
    result = {}
    for key, value in obj.items():
        if key in ("apiVersion", "kind"):
            continue
        if key == "status" and status_subresource:
            continue
        if key == "metadata":
            metadata = {k: value[k] for k in TRACKED_METADATA
                        if isinstance(value, dict) and k in value}
            if metadata:
                result["metadata"] = metadata
            continue
        result[key] = value
    return result


def leaf_paths(value, prefix=()):
    """Return {path: value} for every leaf; lists and empty maps are leaves."""
    leaves = {}
    if isinstance(value, dict) and value:
        for key, child in value.items():
            leaves.update(leaf_paths(child, prefix + (key,)))
    elif prefix:
        leaves[prefix] = value
    return leaves


def encode_fields(paths):
    """Encode a set of paths as a FieldsV1 object ("f:name" keys)."""
    root = {}
    for path in sorted(paths):
        node = root
        for key in path:
            node = node.setdefault("f:" + key, {})
    # A path that is also the prefix of a longer path is marked with ".".
    for path in paths:
        node = root
        for key in path:
            node = node["f:" + key]
        if node:
            node["."] = {}
    return root


def decode_fields(fields, prefix=()):
    """Decode FieldsV1 into a set of paths; list entries own their list."""
    paths = set()
    if not isinstance(fields, dict) or not fields:
        if prefix:
            paths.add(prefix)
        return paths
    for key, child in fields.items():
        if key == ".":
            if prefix:
                paths.add(prefix)
        elif key.startswith("f:"):
            paths |= decode_fields(child, prefix + (key[2:],))
        elif prefix:
            # k:{...}, v:... and i:... entries address list items; this
            # model owns lists whole.
            paths.add(prefix)
    return paths


class ManagerEntry:
    def __init__(self, manager, operation, api_version, subresource, paths,
                 time=None):
        self.manager = manager
        self.operation = operation
        self.api_version = api_version
        self.subresource = subresource
        self.paths = set(paths)
        self.time = time or now_rfc3339()

    @property
    def key(self):
        return (self.manager, self.operation, self.subresource)

    def to_json(self):
        entry = {"manager": self.manager, "operation": self.operation,
                 "apiVersion": self.api_version, "time": self.time,
                 "fieldsType": "FieldsV1",
                 "fieldsV1": encode_fields(self.paths)}
        if self.subresource:
            entry["subresource"] = self.subresource
        return entry


def read_entries(obj):
    entries = []
    for raw in (obj.get("metadata", {}).get("managedFields") or []):
        if not isinstance(raw, dict):
            continue
        entries.append(ManagerEntry(
            raw.get("manager", ""), raw.get("operation", "Update"),
            raw.get("apiVersion", ""), raw.get("subresource", ""),
            decode_fields(raw.get("fieldsV1") or {}), raw.get("time")))
    return entries


def write_entries(obj, entries):
    kept = [e.to_json() for e in entries if e.paths]
    if kept:
        obj.setdefault("metadata", {})["managedFields"] = kept
    else:
        obj.setdefault("metadata", {}).pop("managedFields", None)


def _find(entries, key):
    for entry in entries:
        if entry.key == key:
            return entry
    return None


def _overlaps(path, paths):
    """True when path equals, contains or is contained in one of paths."""
    for other in paths:
        shorter = min(len(path), len(other))
        if path[:shorter] == other[:shorter]:
            return True
    return False


def _delete_path(obj, path):
    parents = []
    node = obj
    for key in path[:-1]:
        if not isinstance(node, dict) or key not in node:
            return
        parents.append((node, key))
        node = node[key]
    if isinstance(node, dict):
        node.pop(path[-1], None)
    # Drop maps left empty by the removal, below the top-level sections.
    for parent, key in reversed(parents[1:]):
        if parent.get(key) == {}:
            del parent[key]


def deep_merge(base, overlay):
    """Merge overlay into a copy of base: maps recursively, the rest
    replaced."""
    if not isinstance(base, dict) or not isinstance(overlay, dict):
        return copy.deepcopy(overlay)
    result = dict(base)
    for key, value in overlay.items():
        if isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = deep_merge(result[key], value)
        else:
            result[key] = copy.deepcopy(value)
    return result


def covers(live, applied):
    """Return True when applying `applied` would leave `live` as it is.

    Maps need only the applied keys. Lists need the same length, and each
    applied item must be covered by the live item at its index. So a list
    that the server completed with defaults (a Service port's protocol)
    still counts as unchanged, as the real server's lists merged by key do.
    """
    if isinstance(applied, dict):
        return isinstance(live, dict) and all(
            key in live and covers(live[key], value)
            for key, value in applied.items())
    if isinstance(applied, list):
        return isinstance(live, list) and len(live) == len(applied) and all(
            covers(live_item, applied_item)
            for live_item, applied_item in zip(live, applied))
    return live == applied


def _describe_path(path):
    return "." + ".".join(path)


def apply(live, applied, manager, force, api_version, status_subresource,
          only_status, group, resource, name):
    """Server-side apply `applied` onto `live` (None when absent).

    Returns the new object with managedFields set. Raises a 409 Conflict
    ApiError naming the conflicting fields when another manager owns a
    field whose value would change and force is False.
    """
    subresource = "status" if only_status else ""
    applied_leaves = leaf_paths(trackable(applied, status_subresource,
                                          only_status))
    if live is None:
        result = copy.deepcopy(applied)
        result.setdefault("metadata", {}).pop("managedFields", None)
        write_entries(result, [ManagerEntry(manager, "Apply", api_version,
                                            subresource, applied_leaves)])
        return result

    entries = read_entries(live)
    own_key = (manager, "Apply", subresource)
    live_leaves = leaf_paths(trackable(live, status_subresource, only_status))

    conflicts = []
    for entry in entries:
        if entry.key == own_key:
            continue
        for path in entry.paths & applied_leaves.keys():
            if path in live_leaves and not covers(live_leaves[path],
                                                  applied_leaves[path]):
                conflicts.append((entry, path))
    if conflicts and not force:
        raise _conflict_error(conflicts, group, resource, name)
    for entry, path in conflicts:
        entry.paths.discard(path)

    result = copy.deepcopy(live)
    own = _find(entries, own_key)
    if own is not None:
        others = set()
        for entry in entries:
            if entry is not own:
                others |= entry.paths
        for path in own.paths - applied_leaves.keys():
            if not _overlaps(path, others) and not _overlaps(
                    path, applied_leaves.keys()):
                _delete_path(result, path)

    applied_body = {k: v for k, v in applied.items() if k != "metadata"}
    if only_status:
        applied_body = {"status": applied.get("status", {})}
    elif status_subresource:
        applied_body.pop("status", None)
    result = deep_merge(result, applied_body)
    metadata = result.setdefault("metadata", {})
    for key in TRACKED_METADATA:
        value = applied.get("metadata", {}).get(key)
        if value is None:
            continue
        if isinstance(value, dict) and isinstance(metadata.get(key), dict):
            metadata[key] = deep_merge(metadata[key], value)
        else:
            metadata[key] = copy.deepcopy(value)

    if own is None:
        own = ManagerEntry(manager, "Apply", api_version, subresource, ())
        entries.append(own)
    own.paths = set(applied_leaves)
    own.api_version = api_version
    own.time = now_rfc3339()
    write_entries(result, entries)
    return result


def _conflict_error(conflicts, group, resource, name):
    by_manager = {}
    for entry, path in conflicts:
        by_manager.setdefault((entry.manager, entry.api_version), []).append(
            _describe_path(path))
    count = len(conflicts)
    noun = "conflict" if count == 1 else "conflicts"
    parts = []
    causes = []
    for (manager, api_version), fields in by_manager.items():
        fields.sort()
        if len(fields) == 1:
            parts.append(f'conflict with "{manager}" using {api_version}: '
                         f"{fields[0]}")
        else:
            parts.append(f'conflicts with "{manager}" using {api_version}:\n'
                         + "\n".join("- " + f for f in fields))
        for field in fields:
            causes.append({"type": "FieldManagerConflict",
                           "message": f'conflict with "{manager}" using '
                                      f"{api_version}",
                           "field": field})
    message = f"Apply failed with {count} {noun}: " + "\n".join(parts)
    return status_errors.conflict(group, resource, name, message, causes)


def track_update(old, new, manager, api_version, status_subresource,
                 only_status):
    """Record that `manager` made the change old -> new (operation Update).

    Fields the change set or altered move to the manager; removed fields
    leave every manager. old is None on create. Sets managedFields on new.
    """
    subresource = "status" if only_status else ""
    new_leaves = leaf_paths(trackable(new, status_subresource, only_status))
    requested = new.get("metadata", {}).get("managedFields")
    if old is None:
        entries = []
        old_leaves = {}
    else:
        old_leaves = leaf_paths(trackable(old, status_subresource,
                                          only_status))
        if requested is not None and requested != old.get(
                "metadata", {}).get("managedFields"):
            # The client rewrote managedFields itself (kubectl does so when
            # it moves from client-side to server-side apply).
            entries = read_entries(new)
        else:
            entries = read_entries(old)
    missing = object()
    changed = {path for path, value in new_leaves.items()
               if old_leaves.get(path, missing) != value}
    removed = old_leaves.keys() - new_leaves.keys()
    for entry in entries:
        entry.paths -= removed
        entry.paths -= changed
    if changed:
        key = (manager, "Update", subresource)
        own = _find(entries, key)
        if own is None:
            own = ManagerEntry(manager, "Update", api_version, subresource,
                               ())
            entries.append(own)
        own.paths |= changed
        own.api_version = api_version
        own.time = now_rfc3339()
    write_entries(new, entries)
    return new
