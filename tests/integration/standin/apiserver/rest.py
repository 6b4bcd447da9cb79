"""The REST storage layer: create, read, update, patch, apply and delete,
in the order of kube-apiserver's handlers (decode, defaults, validation,
admission webhooks, storage).
"""

import base64
import json
import threading

from . import managedfields
from . import patches
from . import selectors
from . import status as status_errors
from . import validation
from . import webhooks
from .defaults import Allocator, apply_defaults
from .status import ApiError, bad_request
from .util import clone, new_uid, now_rfc3339, random_suffix

NAMESPACES = ("", "namespaces")
CRDS = ("apiextensions.k8s.io", "customresourcedefinitions")

# Metadata that only the server sets; writes from clients cannot change it.
SYSTEM_METADATA = ("uid", "creationTimestamp", "deletionTimestamp",
                   "deletionGracePeriodSeconds", "generation", "selfLink")

# Kinds whose objects carry metadata.generation (the others never get it).
_GENERATION_GROUPS = {"apps", "batch", "networking.k8s.io", "policy",
                      "admissionregistration.k8s.io", "apiextensions.k8s.io",
                      "autoscaling", "apiregistration.k8s.io"}


class StaleObject(Exception):
    """The object changed between read and write; patches retry on it."""


# Attempts of a patch or apply that lost a race with another writer, as
# kube-apiserver retries patches internally.
PATCH_ATTEMPTS = 5


class RequestContext:
    """What one API request brings besides its body: user and options."""

    def __init__(self, user, params, user_agent=""):
        self.user = user
        self.params = params
        self.user_agent = user_agent or ""

    def param(self, name, default=None):
        return self.params.get(name, default)

    @property
    def dry_run(self):
        value = self.params.get("dryRun")
        if value in (None, ""):
            return False
        if value != "All":
            raise bad_request(f'unsupported dry run value "{value}": the '
                              'only supported value is "All"')
        return True

    @property
    def field_manager(self):
        manager = self.params.get("fieldManager")
        if manager:
            return manager
        # kube-apiserver names the manager after the user agent's product.
        return (self.user_agent.split("/", 1)[0] or "unknown")[:128]


def _has_generation(rtype):
    if rtype.crd_name:
        return True
    if rtype.group == "" and rtype.resource == "pods":
        return True
    return rtype.group in _GENERATION_GROUPS


def _without_volatile(obj):
    """obj without the fields that change on every write, for no-op checks."""
    result = dict(obj)
    metadata = dict(result.get("metadata") or {})
    metadata.pop("resourceVersion", None)
    metadata["managedFields"] = [
        {k: v for k, v in entry.items() if k != "time"}
        for entry in metadata.get("managedFields") or []]
    result["metadata"] = metadata
    return result


def _spec_changed(old, new):
    skip = ("metadata", "status")
    return ({k: v for k, v in old.items() if k not in skip}
            != {k: v for k, v in new.items() if k not in skip})


def encode_continue(resource_version, last_key):
    raw = json.dumps({"rv": resource_version, "start": list(last_key)})
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_continue(token):
    try:
        padded = token + "=" * (-len(token) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode()))
        return tuple(data["start"])
    except (ValueError, KeyError, TypeError) as error:
        raise bad_request(f"continue key is not valid: {error}") from None


class Api:
    """Every object operation, used by the HTTP layer and the controllers."""

    def __init__(self, catalog, store, control):
        self.catalog = catalog
        self.store = store
        self.control = control
        self.allocator = Allocator()
        self._owner_lock = threading.Lock()
        # uid of an owner -> set of (group_resource, namespace, name)
        self._dependents = {}
        # (group_resource, namespace, name) -> owner uids it names
        self._owners_of = {}
        store.add_listener(self._index_owners)

    # -- indexes -----------------------------------------------------------

    def _index_owners(self, event):
        key = (event.group_resource, event.namespace, event.name)
        with self._owner_lock:
            for uid in self._owners_of.pop(key, ()):
                dependents = self._dependents.get(uid)
                if dependents is not None:
                    dependents.discard(key)
                    if not dependents:
                        del self._dependents[uid]
            if event.type == "DELETED":
                return
            refs = event.object["metadata"].get("ownerReferences") or []
            uids = {ref.get("uid") for ref in refs if ref.get("uid")}
            if uids:
                self._owners_of[key] = uids
                for uid in uids:
                    self._dependents.setdefault(uid, set()).add(key)

    def dependents_of(self, uid):
        with self._owner_lock:
            return list(self._dependents.get(uid, ()))

    # -- helpers -----------------------------------------------------------

    def for_version(self, obj, rtype):
        """Return obj as served at rtype's version (apiVersion rewritten)."""
        if obj.get("apiVersion") == rtype.group_version:
            return obj
        result = dict(obj)
        result["apiVersion"] = rtype.group_version
        return result

    def default_storage_class(self):
        for storage_class in self.store.list(("storage.k8s.io",
                                              "storageclasses")):
            annotations = storage_class["metadata"].get("annotations") or {}
            if annotations.get(
                    "storageclass.kubernetes.io/is-default-class") == "true":
                return storage_class["metadata"]["name"]
        return None

    def _decode_object(self, body, rtype, name=None, namespace=None):
        try:
            obj = json.loads(body or b"null")
        except ValueError as error:
            raise bad_request(f"the body of the request is not valid JSON: "
                              f"{error}") from None
        if not isinstance(obj, dict):
            raise bad_request("the body of the request must be a JSON "
                              "object")
        self._check_type(obj, rtype)
        metadata = obj.setdefault("metadata", {})
        if not isinstance(metadata, dict):
            raise bad_request("metadata must be an object")
        if name is not None:
            body_name = metadata.get("name")
            if body_name and body_name != name:
                raise bad_request(f"the name of the object ({body_name}) "
                                  f"does not match the name on the URL "
                                  f"({name})")
            metadata["name"] = name
        self._check_namespace(rtype, namespace, metadata)
        return obj

    def _check_type(self, obj, rtype):
        kind = obj.get("kind")
        api_version = obj.get("apiVersion")
        if kind and kind != rtype.kind:
            raise bad_request(f"the kind of the object ({kind}) does not "
                              f"match the kind of the resource "
                              f"({rtype.kind})")
        if api_version:
            group = api_version.rpartition("/")[0]
            if group != rtype.group:
                raise bad_request(f"the API version in the data "
                                  f"({api_version}) does not match the "
                                  f"expected API version "
                                  f"({rtype.group_version})")

    def _check_namespace(self, rtype, namespace, metadata):
        if rtype.namespaced:
            body_namespace = metadata.get("namespace")
            if body_namespace and namespace and body_namespace != namespace:
                raise bad_request("the namespace of the provided object does "
                                  "not match the namespace sent on the "
                                  "request")
            metadata["namespace"] = namespace
        else:
            metadata.pop("namespace", None)

    def require_active_namespace(self, rtype, namespace, name):
        namespace_obj = self.store.get(NAMESPACES, "", namespace)
        if namespace_obj is None:
            raise status_errors.not_found("", "namespaces", namespace)
        if namespace_obj["metadata"].get("deletionTimestamp"):
            raise status_errors.forbidden(
                rtype.group, rtype.resource, name,
                f"unable to create new content in namespace {namespace} "
                "because it is being terminated")

    def _get_existing(self, rtype, namespace, name):
        obj = self.store.get(rtype.group_resource, namespace, name)
        if obj is None:
            raise status_errors.not_found(rtype.group, rtype.resource, name)
        return obj

    # -- reads -------------------------------------------------------------

    def get(self, rtype, namespace, name):
        return self.for_version(self._get_existing(rtype, namespace, name),
                                rtype)

    def list(self, rtype, namespace, params):
        """Return a list object, filtered and paginated as params ask."""
        label_requirements = selectors.parse_label_selector(
            params.get("labelSelector", ""))
        field_requirements = selectors.parse_field_selector(
            params.get("fieldSelector", ""), rtype.resource)
        limit = self._parse_limit(params.get("limit"))
        start_after = None
        if params.get("continue"):
            start_after = decode_continue(params["continue"])

        with self.store.lock:
            resource_version = self.store.resource_version
            objects = self.store.list(rtype.group_resource,
                                      namespace or None)

        items = []
        next_key = None
        remaining = 0
        for obj in objects:
            metadata = obj["metadata"]
            key = (metadata.get("namespace", ""), metadata["name"])
            if start_after is not None and key <= start_after:
                continue
            if not selectors.labels_match(label_requirements,
                                          metadata.get("labels")):
                continue
            if not selectors.fields_match(field_requirements, obj):
                continue
            if limit and len(items) >= limit:
                remaining += 1
                continue
            items.append(self.for_version(obj, rtype))
            next_key = key

        result = {"kind": rtype.list_kind, "apiVersion": rtype.group_version,
                  "metadata": {"resourceVersion": str(resource_version)},
                  "items": items}
        if remaining:
            result["metadata"]["continue"] = encode_continue(
                resource_version, next_key)
            result["metadata"]["remainingItemCount"] = remaining
        return result

    @staticmethod
    def _parse_limit(value):
        if value in (None, ""):
            return 0
        try:
            limit = int(value)
        except ValueError:
            raise bad_request(f"limit must be an integer: {value!r}") from None
        return max(limit, 0)

    # -- create ------------------------------------------------------------

    def create(self, ctx, rtype, namespace, body):
        obj = self._decode_object(body, rtype, namespace=namespace)
        metadata = obj["metadata"]
        if not metadata.get("name"):
            if metadata.get("generateName"):
                metadata["name"] = metadata["generateName"] + random_suffix()
            else:
                raise status_errors.invalid(
                    rtype.group, rtype.kind, "",
                    [("metadata.name", "FieldValueRequired",
                      "Required value: name or generateName is required")])
        return self.create_object(ctx, rtype, obj, tracked=False)

    def create_object(self, ctx, rtype, obj, tracked):
        """Store a new object; tracked: managedFields are already set."""
        metadata = obj["metadata"]
        name = metadata["name"]
        namespace = metadata.get("namespace", "")
        if rtype.namespaced:
            self.require_active_namespace(rtype, namespace, name)

        for key in SYSTEM_METADATA + ("resourceVersion",):
            metadata.pop(key, None)
        if rtype.has_subresource("status"):
            obj.pop("status", None)
        obj["apiVersion"] = rtype.group_version
        obj["kind"] = rtype.kind
        apply_defaults(rtype, obj, None, self.allocator,
                       self.default_storage_class())
        validation.validate(rtype, obj, None)
        webhooks.admit(self, "CREATE", rtype, obj, None, "")

        with self.store.lock:
            if self.store.get(rtype.group_resource, namespace, name):
                raise status_errors.already_exists(rtype.group,
                                                   rtype.resource, name)
            metadata["uid"] = new_uid()
            metadata["creationTimestamp"] = now_rfc3339()
            if _has_generation(rtype):
                metadata["generation"] = 1
            if not tracked:
                managedfields.track_update(None, obj, ctx.field_manager,
                                           rtype.group_version,
                                           rtype.has_subresource("status"),
                                           False)
            if ctx.dry_run:
                return 201, obj
            self.store.put(rtype.group_resource, obj)
        return 201, obj

    # -- update ------------------------------------------------------------

    def update(self, ctx, rtype, namespace, name, body, subresource=""):
        obj = self._decode_object(body, rtype, name=name, namespace=namespace)
        old = self._get_existing(rtype, namespace, name)
        requested_version = obj["metadata"].get("resourceVersion")
        if requested_version and requested_version != old["metadata"][
                "resourceVersion"]:
            raise status_errors.conflict_modified(rtype.group, rtype.resource,
                                                  name)
        new = self._merge_for_subresource(rtype, old, obj, subresource)
        try:
            return self.commit_update(ctx, rtype, old, new, subresource,
                                      tracked=False)
        except StaleObject:
            raise status_errors.conflict_modified(rtype.group, rtype.resource,
                                                  name) from None

    def _merge_for_subresource(self, rtype, old, obj, subresource):
        if subresource == "status":
            new = clone(old)
            if "status" in obj:
                new["status"] = obj["status"]
            else:
                new.pop("status", None)
            return new
        new = obj
        if rtype.has_subresource("status"):
            if "status" in old:
                new["status"] = old["status"]
            else:
                new.pop("status", None)
        return new

    def commit_update(self, ctx, rtype, old, new, subresource, tracked):
        """Validate, admit and store new in place of old.

        tracked: managedFields of new are already computed (apply).
        """
        metadata = new.setdefault("metadata", {})
        old_metadata = old["metadata"]
        for key in SYSTEM_METADATA + ("name", "namespace", "generateName"):
            if key in old_metadata:
                metadata[key] = old_metadata[key]
            else:
                metadata.pop(key, None)
        new["apiVersion"] = rtype.group_version
        new["kind"] = rtype.kind
        apply_defaults(rtype, new, old, self.allocator, None)
        validation.validate(rtype, new, old)
        webhooks.admit(self, "UPDATE", rtype, new, old, subresource)
        with self.store.lock:
            current = self.store.get(rtype.group_resource,
                                     old_metadata.get("namespace", ""),
                                     old_metadata["name"])
            if current is None:
                raise status_errors.not_found(rtype.group, rtype.resource,
                                              old_metadata["name"])
            if current["metadata"]["resourceVersion"] != old_metadata[
                    "resourceVersion"]:
                raise StaleObject()
            if "generation" in old_metadata and _spec_changed(old, new):
                metadata["generation"] = old_metadata["generation"] + 1
            if not tracked:
                managedfields.track_update(old, new, ctx.field_manager,
                                           rtype.group_version,
                                           rtype.has_subresource("status"),
                                           subresource == "status")
            metadata["resourceVersion"] = old_metadata["resourceVersion"]
            if _without_volatile(new) == _without_volatile(
                    self.for_version(old, rtype)):
                return 200, self.for_version(old, rtype)
            if ctx.dry_run:
                return 200, new
            if metadata.get("deletionTimestamp") and not metadata.get(
                    "finalizers") and (rtype.group_resource != NAMESPACES):
                final = self.remove(rtype.group_resource,
                                    metadata.get("namespace", ""),
                                    metadata["name"], "Background")
                return 200, self.for_version(final, rtype)
            self.store.put(rtype.group_resource, new)
        return 200, new

    # -- patch and apply ---------------------------------------------------

    def patch(self, ctx, rtype, namespace, name, body, content_type,
              subresource=""):
        media_type = (content_type or "").split(";")[0].strip().lower()
        for _attempt in range(PATCH_ATTEMPTS):
            try:
                if media_type == "application/apply-patch+yaml":
                    return self._apply_once(ctx, rtype, namespace, name, body,
                                            subresource)
                return self._patch_once(ctx, rtype, namespace, name, body,
                                        media_type, subresource)
            except StaleObject:
                continue
        raise status_errors.conflict_modified(rtype.group, rtype.resource,
                                              name)

    def _patch_once(self, ctx, rtype, namespace, name, body, media_type,
                    subresource):
        old = self._get_existing(rtype, namespace, name)
        try:
            document = json.loads(body or b"null")
        except ValueError as error:
            raise bad_request(f"error decoding patch: {error}") from None
        base = clone(self.for_version(old, rtype))
        if media_type == "application/merge-patch+json":
            new = patches.merge_patch(base, document)
        elif media_type == "application/strategic-merge-patch+json":
            if rtype.crd_name:
                raise ApiError(415, "UnsupportedMediaType",
                               "the body of the request was in an unknown "
                               "format - accepted media types include: "
                               "application/json-patch+json, "
                               "application/merge-patch+json, "
                               "application/apply-patch+yaml")
            new = patches.strategic_merge_patch(base, document)
        elif media_type == "application/json-patch+json":
            new = patches.json_patch(base, document)
        else:
            raise status_errors.unsupported_media_type(media_type)
        if not isinstance(new, dict):
            raise bad_request("the patch did not produce an object")
        requested_version = (new.get("metadata") or {}).get("resourceVersion")
        if requested_version and requested_version != old["metadata"][
                "resourceVersion"]:
            raise status_errors.conflict_modified(rtype.group, rtype.resource,
                                                  name)
        self._check_type(new, rtype)
        new = self._merge_for_subresource(rtype, old, new, subresource)
        return self.commit_update(ctx, rtype, old, new, subresource,
                                  tracked=False)

    def _apply_once(self, ctx, rtype, namespace, name, body, subresource):
        """Server-side apply (PATCH with application/apply-patch+yaml)."""
        manager = ctx.params.get("fieldManager")
        if not manager:
            raise status_errors.invalid(
                "meta.k8s.io", "PatchOptions", "",
                [("fieldManager", "FieldValueRequired",
                  "Required value: is required for apply patch")])
        force = ctx.params.get("force") == "true"
        try:
            applied = json.loads(body or b"null")
        except ValueError:
            # NOTE: YAML bodies are valid for this media type on a real
            # server, but Python's standard library has no YAML parser.
            # kubectl (1.27-1.33) and mlboot send JSON.
            raise bad_request("error decoding YAML: the stand-in API server "
                              "accepts apply patches in JSON only") from None
        if not isinstance(applied, dict) or not applied.get(
                "apiVersion") or not applied.get("kind"):
            raise bad_request("invalid object type: apiVersion and kind are "
                              "required in an apply patch")
        self._check_type(applied, rtype)
        metadata = applied.setdefault("metadata", {})
        if metadata.get("managedFields"):
            raise bad_request("metadata.managedFields must be nil")
        if metadata.get("name") and metadata["name"] != name:
            raise bad_request(f"the name of the object ({metadata['name']}) "
                              f"does not match the name on the URL ({name})")
        metadata["name"] = name
        self._check_namespace(rtype, namespace, metadata)
        old = self.store.get(rtype.group_resource, namespace, name)
        if old is None and subresource:
            raise status_errors.not_found(rtype.group, rtype.resource, name)
        live = clone(self.for_version(old, rtype)) if old else None
        result = managedfields.apply(
            live, applied, manager, force, applied["apiVersion"],
            rtype.has_subresource("status"), subresource == "status",
            rtype.group, rtype.resource, name)
        if old is None:
            try:
                return self.create_object(ctx, rtype, result, tracked=True)
            except ApiError as error:
                if error.reason == "AlreadyExists":
                    # Another client created it meanwhile: apply again.
                    raise StaleObject() from None
                raise
        return self.commit_update(ctx, rtype, old, result, subresource,
                                  tracked=True)

    # -- scale subresource -------------------------------------------------

    def get_scale(self, rtype, namespace, name):
        obj = self._get_existing(rtype, namespace, name)
        metadata = obj["metadata"]
        selector = ((obj.get("spec") or {}).get("selector") or {}).get(
            "matchLabels") or {}
        return {"kind": "Scale", "apiVersion": "autoscaling/v1",
                "metadata": {"name": name, "namespace": namespace,
                             "uid": metadata.get("uid"),
                             "resourceVersion": metadata["resourceVersion"],
                             "creationTimestamp":
                                 metadata.get("creationTimestamp")},
                "spec": {"replicas": (obj.get("spec") or {}).get(
                    "replicas", 0)},
                "status": {"replicas": (obj.get("status") or {}).get(
                    "replicas", 0),
                           "selector": ",".join(f"{k}={v}" for k, v in
                                                sorted(selector.items()))}}

    def set_scale(self, ctx, rtype, namespace, name, body, content_type,
                  method):
        scale = self.get_scale(rtype, namespace, name)
        try:
            document = json.loads(body or b"null")
        except ValueError as error:
            raise bad_request(f"error decoding body: {error}") from None
        if method == "PUT":
            new_scale = document
        elif "json-patch" in (content_type or ""):
            new_scale = patches.json_patch(scale, document)
        else:
            new_scale = patches.merge_patch(scale, document)
        replicas = (new_scale.get("spec") or {}).get("replicas")
        if not isinstance(replicas, int) or replicas < 0:
            raise status_errors.invalid("autoscaling", "Scale", name, [
                ("spec.replicas", "FieldValueInvalid",
                 f"Invalid value: {replicas}: must be greater than or equal "
                 "to 0")])
        old = self._get_existing(rtype, namespace, name)
        new = clone(old)
        new.setdefault("spec", {})["replicas"] = replicas
        try:
            self.commit_update(ctx, rtype, old, new, "", tracked=False)
        except StaleObject:
            raise status_errors.conflict_modified(rtype.group, rtype.resource,
                                                  name) from None
        return 200, self.get_scale(rtype, namespace, name)

    # -- delete ------------------------------------------------------------

    def delete(self, ctx, rtype, namespace, name, options):
        old = self._get_existing(rtype, namespace, name)
        preconditions = (options or {}).get("preconditions") or {}
        if preconditions.get("uid") and preconditions["uid"] != old[
                "metadata"].get("uid"):
            raise status_errors.conflict(
                rtype.group, rtype.resource, name,
                f"Precondition failed: UID in precondition: "
                f"{preconditions['uid']}, UID in object meta: "
                f"{old['metadata'].get('uid')}")
        if preconditions.get("resourceVersion") and preconditions[
                "resourceVersion"] != old["metadata"]["resourceVersion"]:
            raise status_errors.conflict(
                rtype.group, rtype.resource, name,
                f"Precondition failed: ResourceVersion in precondition: "
                f"{preconditions['resourceVersion']}, ResourceVersion in "
                f"object meta: {old['metadata']['resourceVersion']}")
        webhooks.admit(self, "DELETE", rtype, old, old, "")
        if ctx.dry_run:
            return 200, self.for_version(old, rtype)
        propagation = (options or {}).get("propagationPolicy") or (
            "Orphan" if (options or {}).get("orphanDependents") else
            "Background")
        if rtype.group_resource == CRDS:
            final = self.delete_crd(old)
            return 200, final
        if rtype.group_resource == NAMESPACES or old["metadata"].get(
                "finalizers"):
            return 200, self.for_version(self._mark_deleting(rtype, old),
                                         rtype)
        final = self.remove(rtype.group_resource, namespace, name,
                            propagation)
        if final is None:
            raise status_errors.not_found(rtype.group, rtype.resource, name)
        return 200, status_errors.success_status(
            rtype.group, rtype.resource, name, final["metadata"].get("uid"))

    def delete_collection(self, ctx, rtype, namespace, params, options):
        listed = self.list(rtype, namespace, params)
        deleted = []
        for item in listed["items"]:
            metadata = item["metadata"]
            try:
                _code, result = self.delete(ctx, rtype,
                                            metadata.get("namespace", ""),
                                            metadata["name"], options)
            except ApiError as error:
                if error.code == 404:
                    continue
                raise
            deleted.append(item if result.get("kind") == "Status" else result)
        listed["items"] = deleted
        return 200, listed

    def _mark_deleting(self, rtype, old):
        with self.store.lock:
            current = self.store.get(rtype.group_resource,
                                     old["metadata"].get("namespace", ""),
                                     old["metadata"]["name"])
            if current is None or current["metadata"].get(
                    "deletionTimestamp"):
                return current or old
            new = clone(current)
            new["metadata"]["deletionTimestamp"] = now_rfc3339()
            new["metadata"]["deletionGracePeriodSeconds"] = 0
            if rtype.group_resource == NAMESPACES:
                new.setdefault("status", {})["phase"] = "Terminating"
            return self.store.put(rtype.group_resource, new)

    def remove(self, group_resource, namespace, name, propagation):
        """Remove an object now and, unless propagation is Orphan, its
        dependents (by ownerReferences), as the garbage collector would."""
        final = self.store.delete(group_resource, namespace, name)
        if final is None or propagation == "Orphan":
            return final
        uid = final["metadata"].get("uid")
        for dependent in self.dependents_of(uid):
            dependent_gr, dependent_ns, dependent_name = dependent
            obj = self.store.get(dependent_gr, dependent_ns, dependent_name)
            if obj is None:
                continue
            remaining = [ref for ref in obj["metadata"].get(
                "ownerReferences") or [] if ref.get("uid") != uid and (
                self._owner_exists(ref, dependent_ns))]
            if remaining:
                continue
            if obj["metadata"].get("finalizers"):
                rtype = self.catalog.by_group_resource(*dependent_gr)
                if rtype is not None:
                    self._mark_deleting(rtype, obj)
                continue
            self.remove(dependent_gr, dependent_ns, dependent_name,
                        "Background")
        return final

    def _owner_exists(self, ref, namespace):
        group = ref.get("apiVersion", "").rpartition("/")[0]
        for rtype in self.catalog.all_types():
            if rtype.group == group and rtype.kind == ref.get("kind"):
                obj = self.store.get(rtype.group_resource,
                                     namespace if rtype.namespaced else "",
                                     ref.get("name", ""))
                return obj is not None and obj["metadata"].get(
                    "uid") == ref.get("uid")
        return False

    def delete_crd(self, crd):
        """Delete a CRD with all its custom resources, and stop serving it."""
        name = crd["metadata"]["name"]
        spec = crd.get("spec") or {}
        group_resource = (spec.get("group", ""),
                          (spec.get("names") or {}).get("plural", ""))
        self.catalog.unregister_crd(name)
        for obj in self.store.list(group_resource):
            metadata = obj["metadata"]
            self.remove(group_resource, metadata.get("namespace", ""),
                        metadata["name"], "Background")
        final = self.store.delete(CRDS, "", name)
        return final or crd

    def delete_namespace_contents(self, namespace):
        """Remove every object of a namespace; return how many remain
        (objects with finalizers wait for them to be removed)."""
        remaining = 0
        for group_resource in self.store.group_resources():
            if group_resource == NAMESPACES:
                continue
            for obj in self.store.list(group_resource, namespace):
                metadata = obj["metadata"]
                if metadata.get("finalizers"):
                    rtype = self.catalog.by_group_resource(*group_resource)
                    if rtype is not None:
                        self._mark_deleting(rtype, obj)
                    remaining += 1
                    continue
                self.remove(group_resource, namespace, metadata["name"],
                            "Background")
        return remaining

    # -- writes by the simulated controllers ------------------------------

    def system_put(self, group_resource, obj):
        """Store obj as a controller of the cluster would: no admission,
        no validation. New objects get uid and creationTimestamp."""
        metadata = obj["metadata"]
        metadata.setdefault("uid", new_uid())
        metadata.setdefault("creationTimestamp", now_rfc3339())
        return self.store.put(group_resource, obj)

    def system_update_status(self, group_resource, old, status,
                             manager="standin-controller"):
        """Replace the status of old unless it is unchanged; return the
        stored object or None when old is gone or changed meanwhile."""
        if old.get("status") == status:
            return old
        metadata = old["metadata"]
        with self.store.lock:
            current = self.store.get(group_resource,
                                     metadata.get("namespace", ""),
                                     metadata["name"])
            if current is None or current["metadata"][
                    "resourceVersion"] != metadata["resourceVersion"]:
                return None
            new = dict(current)
            new["metadata"] = dict(current["metadata"])
            new["status"] = status
            managedfields.track_update(current, new, manager,
                                       current.get("apiVersion", ""),
                                       True, True)
            return self.store.put(group_resource, new)
