"""Admission webhooks, simulated.

The stand-in never calls a webhook. For each create, update or delete it
finds the webhook configurations whose rules match the request, as
kube-apiserver does, and checks whether the webhook's Service could
respond. The Service must exist and a Ready pod must match its selector
(the simulated controllers make pods Ready when their Deployment,
StatefulSet or DaemonSet becomes ready). When it could not respond and the
webhook's failurePolicy is Fail (the v1 default), the request fails with
the same 500 Status a real server returns for a connection refused. A
webhook that could respond admits the request unchanged, so mutating
webhooks mutate nothing.

Matching honours rules (apiGroups, apiVersions, resources with
subresources, operations, scope), namespaceSelector and objectSelector.
matchConditions (CEL) are not evaluated: a webhook with matchConditions is
treated as matching. Webhooks that name a URL instead of a Service are
treated as reachable.
"""

from . import selectors
from . import status as status_errors

CONFIG_RESOURCES = (
    ("admissionregistration.k8s.io", "mutatingwebhookconfigurations"),
    ("admissionregistration.k8s.io", "validatingwebhookconfigurations"),
)


def _match_list(values, wanted):
    return "*" in values or wanted in values


def _resource_matches(resources, resource, subresource):
    full = f"{resource}/{subresource}" if subresource else resource
    for pattern in resources:
        if pattern in ("*/*", full):
            return True
        if pattern == "*" and not subresource:
            return True
        if subresource and pattern == f"*/{subresource}":
            return True
        if subresource and pattern == f"{resource}/*":
            return True
    return False


def _rule_matches(rule, operation, rtype, subresource, equivalent_versions):
    if not _match_list(rule.get("operations") or [], operation):
        return False
    if not _match_list(rule.get("apiGroups") or [], rtype.group):
        return False
    versions = rule.get("apiVersions") or []
    if not _match_list(versions, rtype.version) and not any(
            version in versions for version in equivalent_versions):
        return False
    if not _resource_matches(rule.get("resources") or [], rtype.resource,
                             subresource):
        return False
    scope = rule.get("scope", "*")
    if scope == "Cluster" and rtype.namespaced:
        return False
    if scope == "Namespaced" and not rtype.namespaced:
        return False
    return True


def _selector_matches(selector, labels):
    requirements = selectors.selector_from_label_selector(selector or {})
    return selectors.labels_match(requirements, labels)


def _webhook_matches(api, webhook, operation, rtype, obj, old, subresource):

    # matchPolicy Equivalent also matches the same resource requested at
    # another version of its group.
    equivalent_versions = []
    if webhook.get("matchPolicy", "Equivalent") == "Equivalent":
        equivalent_versions = [
            version for version in api.catalog.versions_of(rtype.group)
            if api.catalog.lookup(rtype.group, version, rtype.resource)]
    if not any(_rule_matches(rule, operation, rtype, subresource,
                             equivalent_versions)
               for rule in webhook.get("rules") or []):
        return False

    labels = ((obj or {}).get("metadata") or {}).get("labels") or {}
    old_labels = ((old or {}).get("metadata") or {}).get("labels") or {}
    object_selector = webhook.get("objectSelector")
    if object_selector and not (_selector_matches(object_selector, labels) or
                                (old is not None and _selector_matches(
                                    object_selector, old_labels))):
        return False

    namespace_selector = webhook.get("namespaceSelector")
    if namespace_selector:
        if (rtype.group, rtype.resource) == ("", "namespaces"):
            namespace_labels = labels
        elif rtype.namespaced:
            namespace = (obj or old)["metadata"].get("namespace", "")
            namespace_obj = api.store.get(("", "namespaces"), "", namespace)
            namespace_labels = ((namespace_obj or {}).get("metadata") or
                                {}).get("labels") or {}
        else:
            return True
        if not _selector_matches(namespace_selector, namespace_labels):
            return False
    return True


def _go_duration(seconds):
    return f"{int(seconds)}s"


def service_backend_problem(api, service_ref, timeout_seconds):
    """Return why a call to the Service would fail, or None if it would
    reach a Ready pod. The text is what Go's HTTP client reports."""
    namespace = service_ref.get("namespace", "")
    name = service_ref.get("name", "")
    port = service_ref.get("port", 443)
    path = service_ref.get("path") or ""
    url = (f"https://{name}.{namespace}.svc:{port}{path}"
           f"?timeout={_go_duration(timeout_seconds)}")
    service = api.store.get(("", "services"), namespace, name)
    if service is None:
        return (f'failed to call webhook: Post "{url}": service "{name}" '
                "not found")
    if service_has_ready_endpoint(api, service):
        return None
    cluster_ip = (service.get("spec") or {}).get("clusterIP", "")
    return (f'failed to call webhook: Post "{url}": dial tcp '
            f"{cluster_ip}:{port}: connect: connection refused")


def service_has_ready_endpoint(api, service):
    """True when a Ready pod matches the Service's selector (or, for a
    Service without selector, when its Endpoints list an address)."""
    metadata = service["metadata"]
    namespace = metadata.get("namespace", "")
    selector = (service.get("spec") or {}).get("selector")
    if not selector:
        endpoints = api.store.get(("", "endpoints"), namespace,
                                  metadata["name"])
        return any(subset.get("addresses")
                   for subset in (endpoints or {}).get("subsets") or [])
    for pod in api.store.list(("", "pods"), namespace):
        pod_labels = pod["metadata"].get("labels") or {}
        if any(pod_labels.get(k) != v for k, v in selector.items()):
            continue
        if pod["metadata"].get("deletionTimestamp"):
            continue
        for condition in (pod.get("status") or {}).get("conditions") or []:
            if condition.get("type") == "Ready" and condition.get(
                    "status") == "True":
                return True
    return False


def admit(api, operation, rtype, obj, old, subresource):
    """Raise the webhook failure a real server would return, if any."""
    if rtype.group == "admissionregistration.k8s.io":
        # Webhooks are never called for webhook configurations.
        return
    if rtype.virtual:
        return
    for group_resource in CONFIG_RESOURCES:
        for config in api.store.list(group_resource):
            for webhook in config.get("webhooks") or []:
                if webhook.get("failurePolicy", "Fail") != "Fail":
                    continue
                if not _webhook_matches(api, webhook, operation, rtype, obj,
                                        old, subresource):
                    continue
                client = webhook.get("clientConfig") or {}
                service = client.get("service")
                if not isinstance(service, dict):
                    continue
                problem = service_backend_problem(
                    api, service, webhook.get("timeoutSeconds", 10))
                if problem is None:
                    continue
                error = f'failed calling webhook "{webhook.get("name")}": ' \
                        f"{problem}"
                raise status_errors.internal_error(error, [error])
