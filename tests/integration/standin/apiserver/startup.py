"""Preparing a state folder: config.json, certificates, kubeconfigs, and
the objects a fresh cluster already has."""

import base64
import ipaddress
import json
import logging
import os
import platform
import secrets

from . import pki
from .defaults import apply_defaults
from .util import new_uid, now_rfc3339

log = logging.getLogger("standin")

SERVER_NAMES = ("127.0.0.1", "::1", "localhost", "kubernetes",
                "kubernetes.default", "kubernetes.default.svc",
                "kubernetes.default.svc.cluster.local")
KUBERNETES_SERVICE_IP = "10.96.0.1"


def default_config():
    """Build the config.json written when the state folder has none."""
    return {
        "version": {"gitVersion": "v1.32.4"},
        "tokens": [
            {"token": secrets.token_hex(24), "user": "token-admin",
             "groups": ["system:masters"]},
            {"token": secrets.token_hex(24), "user": "viewer",
             "groups": ["standin:viewers"]},
            {"token": secrets.token_hex(24), "user": "expired-user",
             "groups": ["system:masters"],
             "expiresAt": "2020-01-01T00:00:00Z"},
        ],
        "roles": {"viewer": "view"},
        "roleRules": {},
        "controllers": {"delaySeconds": {"default": 0.2,
                                         "CustomResourceDefinition": 0.05}},
        "nodes": [{"name": "standin-node-1", "internalIP": "127.0.0.1",
                   "roles": ["control-plane"]}],
        "objects": [{
            "apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
            "metadata": {"name": "standard", "annotations": {
                "storageclass.kubernetes.io/is-default-class": "true"}},
            "provisioner": "rancher.io/local-path",
            "volumeBindingMode": "WaitForFirstConsumer",
            "reclaimPolicy": "Delete"}],
    }


def write_private_file(path, text):
    """Write text to path (mode 0600) through a temporary file and rename."""
    temporary = path + ".tmp"
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC,
                         0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)


def load_config(state_dir):
    path = os.path.join(state_dir, "config.json")
    if not os.path.exists(path):
        config = default_config()
        write_private_file(path, json.dumps(config, indent=2) + "\n")
        log.info("wrote default configuration to %s", path)
        return config
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def control_token(state_dir):
    path = os.path.join(state_dir, "control-token")
    if os.path.exists(path):
        with open(path, encoding="ascii") as handle:
            token = handle.read().strip()
        if token:
            return token
    token = secrets.token_hex(24)
    write_private_file(path, token + "\n")
    return token


def prepare_certificates(state_dir, extra_names):
    """Return (ca_paths, server_paths); admin.crt/key are made once."""
    ca = pki.ensure_ca(state_dir)
    pki.issue(state_dir, ca, "admin", "/O=system:masters/CN=admin",
              "clientAuth", keep_existing=True)
    names = list(SERVER_NAMES)
    for name in extra_names:
        if name not in names:
            names.append(name)
    server = pki.issue(state_dir, ca, "server", "/CN=kube-apiserver",
                       "serverAuth", sans=names)
    return ca, server


def server_url(host, port):
    if host in ("0.0.0.0", ""):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    try:
        if ipaddress.ip_address(host).version == 6:
            host = f"[{host}]"
    except ValueError:
        pass
    return f"https://{host}:{port}"


def _b64_file(path):
    with open(path, "rb") as handle:
        return base64.b64encode(handle.read()).decode()


def kubeconfig_text(url, ca_path, context, user_name, user_lines):
    """Render a kubeconfig in YAML block style."""
    lines = [
        "apiVersion: v1",
        "kind: Config",
        "clusters:",
        "- name: standin",
        "  cluster:",
        f"    server: {url}",
        f"    certificate-authority-data: {_b64_file(ca_path)}",
        "users:",
        f"- name: {user_name}",
        "  user:",
    ]
    lines += [f"    {line}" for line in user_lines]
    lines += [
        "contexts:",
        f"- name: {context}",
        "  context:",
        "    cluster: standin",
        f"    user: {user_name}",
        f"current-context: {context}",
        "",
    ]
    return "\n".join(lines)


def write_kubeconfigs(state_dir, url, ca_path, config):
    admin_cert = os.path.join(state_dir, "admin.crt")
    admin_key = os.path.join(state_dir, "admin.key")
    write_private_file(
        os.path.join(state_dir, "admin.kubeconfig"),
        kubeconfig_text(url, ca_path, "standin-admin", "admin", [
            f"client-certificate-data: {_b64_file(admin_cert)}",
            f"client-key-data: {_b64_file(admin_key)}"]))
    tokens = config.get("tokens") or []
    choices = {
        "token.kubeconfig": next(
            (t for t in tokens if "system:masters" in (t.get("groups") or [])
             and not t.get("expiresAt")), None),
        "viewer.kubeconfig": next(
            (t for t in tokens if t.get("user") == "viewer"), None),
        "expired.kubeconfig": next(
            (t for t in tokens if t.get("expiresAt")), None),
    }
    for filename, token in choices.items():
        if token is None:
            log.warning("config.json has no token for %s; not writing it",
                        filename)
            continue
        context = "standin-" + filename.split(".")[0]
        write_private_file(
            os.path.join(state_dir, filename),
            kubeconfig_text(url, ca_path, context, token["user"],
                            [f"token: {token['token']}"]))


def _node_object(entry, git_version):
    name = entry["name"]
    labels = {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux",
              "kubernetes.io/arch": "amd64",
              "beta.kubernetes.io/os": "linux",
              "beta.kubernetes.io/arch": "amd64"}
    for role in entry.get("roles") or []:
        labels[f"node-role.kubernetes.io/{role}"] = ""
    labels.update(entry.get("labels") or {})
    capacity = {"cpu": str(entry.get("cpu", "2")),
                "memory": entry.get("memory", "24Gi"),
                "pods": "110", "ephemeral-storage": "100Gi"}
    return {
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "labels": labels},
        "spec": {},
        "status": {
            "conditions": [{"type": "Ready", "status": "True",
                            "reason": "KubeletReady",
                            "message": "kubelet is posting ready status",
                            "lastHeartbeatTime": now_rfc3339(),
                            "lastTransitionTime": now_rfc3339()}],
            "addresses": [{"type": "InternalIP",
                           "address": entry.get("internalIP", "127.0.0.1")},
                          {"type": "Hostname", "address": name}],
            "capacity": capacity, "allocatable": dict(capacity),
            "nodeInfo": {"kubeletVersion": git_version,
                         "kubeProxyVersion": git_version,
                         "containerRuntimeVersion": "containerd://1.6.20",
                         "osImage": "Debian GNU/Linux 12 (bookworm)",
                         "kernelVersion": platform.release(),
                         "operatingSystem": "linux",
                         "architecture": "amd64"}},
    }


def seed_objects(api, config, listen_host, port, git_version):
    """Create what a new cluster has: system namespaces, nodes, the
    kubernetes Service, and config.json's extra objects."""
    for name in ("default", "kube-system", "kube-public", "kube-node-lease"):
        put_new(api, "", "v1", "namespaces", {
            "apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": name}})
    for entry in config.get("nodes") or []:
        put_new(api, "", "v1", "nodes", _node_object(entry, git_version))
    put_new(api, "", "v1", "services", {
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "kubernetes", "namespace": "default",
                     "labels": {"component": "apiserver",
                                "provider": "kubernetes"}},
        "spec": {"clusterIP": KUBERNETES_SERVICE_IP,
                 "ports": [{"name": "https", "port": 443,
                            "targetPort": port}]}})
    address = listen_host if listen_host not in ("0.0.0.0", "::", "") \
        else "127.0.0.1"
    put_new(api, "", "v1", "endpoints", {
        "apiVersion": "v1", "kind": "Endpoints",
        "metadata": {"name": "kubernetes", "namespace": "default"},
        "subsets": [{"addresses": [{"ip": address}],
                     "ports": [{"name": "https", "port": port}]}]})
    for obj in config.get("objects") or []:
        group, _, version = obj.get("apiVersion", "").rpartition("/")
        rtype = api.catalog.by_kind(group, obj.get("kind"))
        if rtype is None:
            log.warning("config.json object of kind %r (%s) is not a "
                        "built-in kind; skipped", obj.get("kind"),
                        obj.get("apiVersion"))
            continue
        put_new(api, group, rtype.version, rtype.resource, obj)


def put_new(api, group, version, resource, obj):
    rtype = api.catalog.lookup(group, version, resource)
    metadata = obj["metadata"]
    metadata.setdefault("uid", new_uid())
    metadata.setdefault("creationTimestamp", now_rfc3339())
    apply_defaults(rtype, obj, None, api.allocator, None)
    return api.store.put(rtype.group_resource, obj)
