"""Resource types the stand-in serves: the built-in kinds and those that
CustomResourceDefinitions register.

The catalog drives discovery, URL routing, the OpenAPI v3 documents and
SelfSubjectAccessReview results. Each built-in kind is served at one
version only.
"""

import re
import threading

ALL_VERBS = ["create", "delete", "deletecollection", "get", "list", "patch",
             "update", "watch"]
CREATE_ONLY = ["create"]


class ResourceType:
    """One resource (plural name) of one group and version."""

    def __init__(self, group, version, resource, kind, namespaced,
                 short_names=(), verbs=None, subresources=(), categories=(),
                 singular=None, crd_name=None, printer_columns=None,
                 virtual=False):
        self.group = group
        self.version = version
        self.resource = resource
        self.kind = kind
        self.namespaced = namespaced
        self.short_names = list(short_names)
        self.verbs = list(verbs if verbs is not None else ALL_VERBS)
        self.subresources = list(subresources)
        self.categories = list(categories)
        self.singular = singular if singular is not None else kind.lower()
        self.crd_name = crd_name
        self.printer_columns = printer_columns
        # Virtual resources (access reviews) are evaluated, never stored.
        self.virtual = virtual

    @property
    def group_version(self):
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def group_resource(self):
        """Store key: objects of a resource are shared by all its versions."""
        return (self.group, self.resource)

    @property
    def list_kind(self):
        return self.kind + "List"

    def has_subresource(self, name):
        return name in self.subresources

    def discovery_entries(self):
        """Return the APIResource entries of legacy discovery for this type."""
        entry = {
            "name": self.resource,
            "singularName": self.singular,
            "namespaced": self.namespaced,
            "kind": self.kind,
            "verbs": self.verbs,
        }
        if self.short_names:
            entry["shortNames"] = self.short_names
        if self.categories:
            entry["categories"] = self.categories
        entries = [entry]
        for sub in self.subresources:
            sub_entry = {
                "name": f"{self.resource}/{sub}",
                "singularName": "",
                "namespaced": self.namespaced,
                "kind": self.kind,
                "verbs": ["get", "patch", "update"],
            }
            if sub == "scale":
                sub_entry.update(group="autoscaling", version="v1",
                                 kind="Scale")
            entries.append(sub_entry)
        return entries


def _builtin(group, version, rows):
    types = []
    for row in rows:
        resource, kind, namespaced = row[0], row[1], row[2]
        options = row[3] if len(row) > 3 else {}
        types.append(ResourceType(group, version, resource, kind, namespaced,
                                  **options))
    return types


_ALL = ("all",)

# Order of groups as the real API server lists them in /apis.
BUILTIN_TYPES = (
    _builtin("", "v1", [
        ("namespaces", "Namespace", False,
         {"short_names": ["ns"], "subresources": ["status", "finalize"],
          "verbs": ["create", "delete", "get", "list", "patch", "update",
                    "watch"]}),
        ("nodes", "Node", False,
         {"short_names": ["no"], "subresources": ["status"]}),
        ("pods", "Pod", True,
         {"short_names": ["po"], "subresources": ["status"],
          "categories": _ALL}),
        ("services", "Service", True,
         {"short_names": ["svc"], "subresources": ["status"],
          "categories": _ALL,
          "verbs": ["create", "delete", "deletecollection", "get", "list",
                    "patch", "update", "watch"]}),
        ("endpoints", "Endpoints", True, {"short_names": ["ep"],
                                          "singular": "endpoints"}),
        ("configmaps", "ConfigMap", True, {"short_names": ["cm"]}),
        ("secrets", "Secret", True),
        ("serviceaccounts", "ServiceAccount", True, {"short_names": ["sa"]}),
        ("persistentvolumeclaims", "PersistentVolumeClaim", True,
         {"short_names": ["pvc"], "subresources": ["status"]}),
        ("persistentvolumes", "PersistentVolume", False,
         {"short_names": ["pv"], "subresources": ["status"]}),
        ("events", "Event", True, {"short_names": ["ev"]}),
        ("limitranges", "LimitRange", True, {"short_names": ["limits"]}),
        ("resourcequotas", "ResourceQuota", True,
         {"short_names": ["quota"], "subresources": ["status"]}),
    ]),
    _builtin("apiregistration.k8s.io", "v1", [
        ("apiservices", "APIService", False,
         {"subresources": ["status"], "categories": ("api-extensions",)}),
    ]),
    _builtin("apps", "v1", [
        ("deployments", "Deployment", True,
         {"short_names": ["deploy"], "subresources": ["status", "scale"],
          "categories": _ALL}),
        ("statefulsets", "StatefulSet", True,
         {"short_names": ["sts"], "subresources": ["status", "scale"],
          "categories": _ALL}),
        ("daemonsets", "DaemonSet", True,
         {"short_names": ["ds"], "subresources": ["status"],
          "categories": _ALL}),
        ("replicasets", "ReplicaSet", True,
         {"short_names": ["rs"], "subresources": ["status", "scale"],
          "categories": _ALL}),
        ("controllerrevisions", "ControllerRevision", True),
    ]),
    _builtin("authentication.k8s.io", "v1", [
        ("selfsubjectreviews", "SelfSubjectReview", False,
         {"verbs": CREATE_ONLY, "virtual": True}),
    ]),
    _builtin("authorization.k8s.io", "v1", [
        ("selfsubjectaccessreviews", "SelfSubjectAccessReview", False,
         {"verbs": CREATE_ONLY, "virtual": True}),
        ("selfsubjectrulesreviews", "SelfSubjectRulesReview", False,
         {"verbs": CREATE_ONLY, "virtual": True}),
    ]),
    _builtin("autoscaling", "v2", [
        ("horizontalpodautoscalers", "HorizontalPodAutoscaler", True,
         {"short_names": ["hpa"], "subresources": ["status"],
          "categories": _ALL}),
    ]),
    _builtin("batch", "v1", [
        ("jobs", "Job", True,
         {"subresources": ["status"], "categories": _ALL}),
        ("cronjobs", "CronJob", True,
         {"short_names": ["cj"], "subresources": ["status"],
          "categories": _ALL}),
    ]),
    _builtin("networking.k8s.io", "v1", [
        ("networkpolicies", "NetworkPolicy", True,
         {"short_names": ["netpol"]}),
        ("ingresses", "Ingress", True,
         {"short_names": ["ing"], "subresources": ["status"]}),
        ("ingressclasses", "IngressClass", False),
    ]),
    _builtin("policy", "v1", [
        ("poddisruptionbudgets", "PodDisruptionBudget", True,
         {"short_names": ["pdb"], "subresources": ["status"]}),
    ]),
    _builtin("rbac.authorization.k8s.io", "v1", [
        ("clusterrolebindings", "ClusterRoleBinding", False),
        ("clusterroles", "ClusterRole", False),
        ("rolebindings", "RoleBinding", True),
        ("roles", "Role", True),
    ]),
    _builtin("storage.k8s.io", "v1", [
        ("storageclasses", "StorageClass", False, {"short_names": ["sc"]}),
    ]),
    _builtin("admissionregistration.k8s.io", "v1", [
        ("mutatingwebhookconfigurations", "MutatingWebhookConfiguration",
         False, {"categories": ("api-extensions",)}),
        ("validatingwebhookconfigurations", "ValidatingWebhookConfiguration",
         False, {"categories": ("api-extensions",)}),
    ]),
    _builtin("apiextensions.k8s.io", "v1", [
        ("customresourcedefinitions", "CustomResourceDefinition", False,
         {"short_names": ["crd", "crds"], "subresources": ["status"],
          "categories": ("api-extensions",)}),
    ]),
    _builtin("scheduling.k8s.io", "v1", [
        ("priorityclasses", "PriorityClass", False, {"short_names": ["pc"]}),
    ]),
    _builtin("coordination.k8s.io", "v1", [
        ("leases", "Lease", True),
    ]),
    _builtin("discovery.k8s.io", "v1", [
        ("endpointslices", "EndpointSlice", True),
    ]),
)

_VERSION_PATTERN = re.compile(r"^v(\d+)(?:(alpha|beta)(\d+))?$")


def version_priority(version):
    """Return a sort key for Kubernetes version names, highest priority
    largest: v2 > v1 > v1beta2 > v1beta1 > v1alpha1 > other names."""
    match = _VERSION_PATTERN.match(version)
    if not match:
        return (0, 0, 0, version)
    major = int(match.group(1))
    stage = {"alpha": 1, "beta": 2, None: 3}[match.group(2)]
    minor = int(match.group(3) or 0)
    return (stage, major, minor, "")


class Catalog:
    """Thread-safe lookup of resource types by group, version and name."""

    def __init__(self):
        self._lock = threading.RLock()
        self._builtin_groups = []
        # (group, version) -> {resource: ResourceType}
        self._by_group_version = {}
        self._crd_groups = {}
        for types in BUILTIN_TYPES:
            group = types[0].group
            if group not in self._builtin_groups:
                self._builtin_groups.append(group)
            for rtype in types:
                self._add(rtype)

    def _add(self, rtype):
        key = (rtype.group, rtype.version)
        self._by_group_version.setdefault(key, {})[rtype.resource] = rtype

    def lookup(self, group, version, resource):
        with self._lock:
            return self._by_group_version.get((group, version), {}).get(
                resource)

    def has_group_version(self, group, version):
        with self._lock:
            return (group, version) in self._by_group_version

    def types_of(self, group, version):
        with self._lock:
            return list(self._by_group_version.get((group, version),
                                                   {}).values())

    def all_types(self):
        with self._lock:
            return [rtype for types in self._by_group_version.values()
                    for rtype in types.values()]

    def by_kind(self, group, kind):
        """Return the preferred-version type of a kind in a group, or None."""
        with self._lock:
            for version in self.versions_of(group):
                for rtype in self._by_group_version[(group, version)].values():
                    if rtype.kind == kind:
                        return rtype
        return None

    def by_group_resource(self, group, resource):
        with self._lock:
            for version in self.versions_of(group):
                rtype = self._by_group_version[(group, version)].get(resource)
                if rtype is not None:
                    return rtype
        return None

    def groups(self):
        """Return API group names in discovery order, without the core group."""
        with self._lock:
            names = [g for g in self._builtin_groups if g]
            names += sorted(g for g in self._crd_groups
                            if g not in self._builtin_groups)
            return [g for g in names if self.versions_of(g)]

    def versions_of(self, group):
        """Return the versions served for a group, preferred version first."""
        with self._lock:
            versions = [v for (g, v), types in self._by_group_version.items()
                        if g == group and types]
            return sorted(versions, key=version_priority, reverse=True)

    def register_crd(self, crd_name, types):
        """Serve the types of one established CRD, replacing older ones."""
        with self._lock:
            self.unregister_crd(crd_name)
            for rtype in types:
                self._add(rtype)
                self._crd_groups.setdefault(rtype.group, set()).add(crd_name)

    def unregister_crd(self, crd_name):
        with self._lock:
            for key in list(self._by_group_version):
                types = self._by_group_version[key]
                for resource in [r for r, t in types.items()
                                 if t.crd_name == crd_name]:
                    del types[resource]
                if not types:
                    del self._by_group_version[key]
            for group in list(self._crd_groups):
                self._crd_groups[group].discard(crd_name)
                if not self._crd_groups[group]:
                    del self._crd_groups[group]

    def crd_owning(self, group, resource):
        """Return the name of the CRD serving group/resource, or None."""
        rtype = self.by_group_resource(group, resource)
        return rtype.crd_name if rtype else None


def types_from_crd(crd):
    """Build the resource types one CustomResourceDefinition serves."""
    spec = crd.get("spec", {})
    names = spec.get("names", {})
    subresources_spec = {}
    types = []
    for version in spec.get("versions", []):
        if not version.get("served", False):
            continue
        subresources_spec = version.get("subresources") or {}
        subresources = [name for name in ("status", "scale")
                        if name in subresources_spec]
        types.append(ResourceType(
            spec.get("group", ""), version["name"], names.get("plural", ""),
            names.get("kind", ""), spec.get("scope") == "Namespaced",
            short_names=names.get("shortNames", []),
            subresources=subresources,
            categories=names.get("categories", []),
            singular=names.get("singular") or names.get("kind", "").lower(),
            crd_name=crd["metadata"]["name"],
            printer_columns=version.get("additionalPrinterColumns")))
    return types
