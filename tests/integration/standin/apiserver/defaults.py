"""Defaults that kube-apiserver fills in when objects are written.

Only the defaults that clients and the simulated controllers read are set:
replicas, Service IPs and ports, webhook policies, namespace phase, the
default StorageClass of a claim and Secret stringData. Service IPs are
text in objects: nothing listens on them.
"""

import base64
import ipaddress
import itertools
import threading

SERVICE_CIDR = ipaddress.ip_network("10.96.0.0/12")
NODE_PORT_RANGE = (30000, 32767)


class Allocator:
    """Hands out Service cluster IPs and node ports, never twice."""

    def __init__(self):
        self._lock = threading.Lock()
        # 10.96.0.1 is the "kubernetes" Service; 10.96.0.10 is DNS.
        self._next_ip = itertools.count(11)
        self._next_port = itertools.count(NODE_PORT_RANGE[0])

    def cluster_ip(self):
        with self._lock:
            return str(SERVICE_CIDR.network_address + next(self._next_ip))

    def node_port(self):
        with self._lock:
            port = next(self._next_port)
        if port > NODE_PORT_RANGE[1]:
            raise RuntimeError("node port range is exhausted")
        return port


def _default_service(service, old, allocator):
    spec = service.setdefault("spec", {})
    old_spec = (old or {}).get("spec") or {}
    spec.setdefault("type", "ClusterIP")
    spec.setdefault("sessionAffinity", "None")
    if spec["type"] != "ExternalName":
        if not spec.get("clusterIP"):
            spec["clusterIP"] = old_spec.get("clusterIP") or (
                allocator.cluster_ip())
        if spec["clusterIP"] != "None":
            spec.setdefault("clusterIPs", [spec["clusterIP"]])
        else:
            spec.setdefault("clusterIPs", ["None"])
        spec.setdefault("ipFamilies", ["IPv4"])
        spec.setdefault("ipFamilyPolicy", "SingleStack")
        spec.setdefault("internalTrafficPolicy", "Cluster")
    if spec["type"] in ("NodePort", "LoadBalancer"):
        spec.setdefault("externalTrafficPolicy", "Cluster")
    old_ports = {(p.get("port"), p.get("protocol", "TCP")): p
                 for p in old_spec.get("ports") or []}
    for port in spec.get("ports") or []:
        port.setdefault("protocol", "TCP")
        port.setdefault("targetPort", port.get("port"))
        if spec["type"] in ("NodePort", "LoadBalancer") and not port.get(
                "nodePort"):
            previous = old_ports.get((port.get("port"), port["protocol"]))
            port["nodePort"] = (previous or {}).get("nodePort") or (
                allocator.node_port())
    service.setdefault("status", {"loadBalancer": {}})


def _default_webhooks(config):
    for webhook in config.get("webhooks") or []:
        webhook.setdefault("failurePolicy", "Fail")
        webhook.setdefault("matchPolicy", "Equivalent")
        webhook.setdefault("namespaceSelector", {})
        webhook.setdefault("objectSelector", {})
        webhook.setdefault("timeoutSeconds", 10)
        if config.get("kind") == "MutatingWebhookConfiguration":
            webhook.setdefault("reinvocationPolicy", "Never")
        service = (webhook.get("clientConfig") or {}).get("service")
        if isinstance(service, dict):
            service.setdefault("port", 443)
        for rule in webhook.get("rules") or []:
            rule.setdefault("scope", "*")


def _default_workload(obj, resource):
    spec = obj.setdefault("spec", {})
    if resource in ("deployments", "statefulsets", "replicasets"):
        spec.setdefault("replicas", 1)
    if resource in ("deployments", "statefulsets", "daemonsets"):
        spec.setdefault("revisionHistoryLimit", 10)
    if resource == "deployments":
        spec.setdefault("progressDeadlineSeconds", 600)
        spec.setdefault("strategy", {"type": "RollingUpdate", "rollingUpdate": {
            "maxSurge": "25%", "maxUnavailable": "25%"}})
    elif resource == "statefulsets":
        spec.setdefault("podManagementPolicy", "OrderedReady")
        spec.setdefault("updateStrategy", {
            "type": "RollingUpdate", "rollingUpdate": {"partition": 0}})
    elif resource == "daemonsets":
        spec.setdefault("updateStrategy", {
            "type": "RollingUpdate",
            "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 1}})


def _default_job(job):
    spec = job.setdefault("spec", {})
    spec.setdefault("parallelism", 1)
    spec.setdefault("completions", 1)
    spec.setdefault("backoffLimit", 6)
    spec.setdefault("completionMode", "NonIndexed")
    spec.setdefault("suspend", False)


def _default_secret(secret):
    secret.setdefault("type", "Opaque")
    string_data = secret.pop("stringData", None)
    if string_data:
        data = dict(secret.get("data") or {})
        for key, value in string_data.items():
            data[key] = base64.b64encode(str(value).encode()).decode()
        secret["data"] = data


def _default_claim(claim, old, default_storage_class):
    spec = claim.setdefault("spec", {})
    spec.setdefault("volumeMode", "Filesystem")
    if old is None and "storageClassName" not in spec and (
            default_storage_class):
        spec["storageClassName"] = default_storage_class
    claim.setdefault("status", {"phase": "Pending"})


def apply_defaults(rtype, obj, old, allocator, default_storage_class):
    """Fill in server defaults on obj (modified in place)."""
    group_resource = (rtype.group, rtype.resource)
    if group_resource == ("", "namespaces"):
        name = obj["metadata"]["name"]
        labels = obj["metadata"].setdefault("labels", {})
        labels["kubernetes.io/metadata.name"] = name
        obj.setdefault("spec", {}).setdefault("finalizers", ["kubernetes"])
        status = obj.setdefault("status", {})
        status.setdefault("phase", "Active")
    elif group_resource == ("", "services"):
        _default_service(obj, old, allocator)
    elif group_resource == ("", "secrets"):
        _default_secret(obj)
    elif group_resource == ("", "persistentvolumeclaims"):
        _default_claim(obj, old, default_storage_class)
    elif group_resource == ("", "pods"):
        obj.setdefault("status", {"phase": "Pending"})
    elif rtype.group == "apps":
        _default_workload(obj, rtype.resource)
    elif group_resource == ("batch", "jobs"):
        _default_job(obj)
    elif rtype.group == "admissionregistration.k8s.io":
        _default_webhooks(obj)
    elif group_resource == ("apiextensions.k8s.io",
                            "customresourcedefinitions"):
        obj.setdefault("spec", {}).setdefault("conversion",
                                              {"strategy": "None"})
    elif group_resource == ("scheduling.k8s.io", "priorityclasses"):
        obj.setdefault("preemptionPolicy", "PreemptLowerPriority")
    elif group_resource == ("storage.k8s.io", "storageclasses"):
        obj.setdefault("reclaimPolicy", "Delete")
        obj.setdefault("volumeBindingMode", "Immediate")
    return obj
