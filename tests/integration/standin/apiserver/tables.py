"""Server-side printing: meta.k8s.io/v1 Table responses for `kubectl get`.

Built-in kinds get the main columns of kube-apiserver's printers (not all
of them); custom resources get their CRD's additionalPrinterColumns, with
a small JSONPath evaluator.
"""

import re
import time

from .util import human_duration, parse_rfc3339


def _column(name, column_type="string", column_format="", priority=0,
            description=""):
    return {"name": name, "type": column_type, "format": column_format,
            "description": description or name, "priority": priority}


def _age(obj):
    created = parse_rfc3339(obj["metadata"].get("creationTimestamp"))
    if created is None:
        return "<unknown>"
    return human_duration(time.time() - created.timestamp())


def _status(obj):
    return obj.get("status") or {}


def _spec(obj):
    return obj.get("spec") or {}


def _condition(obj, condition_type):
    for condition in _status(obj).get("conditions") or []:
        if condition.get("type") == condition_type:
            return condition
    return None


def _pod_ready(pod):
    statuses = _status(pod).get("containerStatuses") or []
    total = len(_spec(pod).get("containers") or [])
    ready = sum(1 for s in statuses if s.get("ready"))
    return f"{ready}/{total}"


def _pod_restarts(pod):
    return sum(s.get("restartCount", 0)
               for s in _status(pod).get("containerStatuses") or [])


def _service_ports(service):
    ports = []
    for port in _spec(service).get("ports") or []:
        text = str(port.get("port"))
        if port.get("nodePort"):
            text += f":{port['nodePort']}"
        ports.append(f"{text}/{port.get('protocol', 'TCP')}")
    return ",".join(ports) or "<none>"


def _node_status(node):
    ready = _condition(node, "Ready")
    return "Ready" if ready and ready.get("status") == "True" else "NotReady"


def _node_roles(node):
    prefix = "node-role.kubernetes.io/"
    roles = sorted(key[len(prefix):] for key in
                   node["metadata"].get("labels") or {}
                   if key.startswith(prefix))
    return ",".join(roles) or "<none>"


def _endpoints(endpoints):
    addresses = []
    for subset in endpoints.get("subsets") or []:
        for address in subset.get("addresses") or []:
            for port in subset.get("ports") or []:
                addresses.append(f"{address.get('ip')}:{port.get('port')}")
    if not addresses:
        return "<none>"
    listed = ",".join(addresses[:3])
    return listed + (f" + {len(addresses) - 3} more..."
                    if len(addresses) > 3 else "")


def _apiservice_available(apiservice):
    condition = _condition(apiservice, "Available")
    if condition is None:
        return "Unknown"
    if condition.get("status") == "True":
        return "True"
    return f"{condition.get('status')} ({condition.get('reason', '')})"


def _apiservice_service(apiservice):
    service = _spec(apiservice).get("service")
    if not service:
        return "Local"
    return f"{service.get('namespace')}/{service.get('name')}"


def _job_status(job):
    for condition_type in ("Complete", "Failed", "Suspended"):
        condition = _condition(job, condition_type)
        if condition and condition.get("status") == "True":
            return condition_type
    return "Running"


def _storage_class_name(storage_class):
    name = storage_class["metadata"]["name"]
    annotations = storage_class["metadata"].get("annotations") or {}
    if annotations.get("storageclass.kubernetes.io/is-default-class") == "true":
        return f"{name} (default)"
    return name


_NAME = (_column("Name", column_format="name"), lambda o: o["metadata"]["name"])
_AGE = (_column("Age"), _age)

BUILTIN_COLUMNS = {
    ("", "namespaces"): [_NAME, (_column("Status"),
                                 lambda o: _status(o).get("phase", "")), _AGE],
    ("", "nodes"): [_NAME, (_column("Status"), _node_status),
                    (_column("Roles"), _node_roles), _AGE,
                    (_column("Version"), lambda o: _status(o).get(
                        "nodeInfo", {}).get("kubeletVersion", ""))],
    ("", "pods"): [_NAME, (_column("Ready"), _pod_ready),
                   (_column("Status"), lambda o: _status(o).get("phase", "")),
                   (_column("Restarts", "string"), _pod_restarts), _AGE,
                   (_column("IP", priority=1),
                    lambda o: _status(o).get("podIP", "<none>")),
                   (_column("Node", priority=1),
                    lambda o: _spec(o).get("nodeName", "<none>"))],
    ("", "services"): [_NAME, (_column("Type"),
                               lambda o: _spec(o).get("type", "")),
                       (_column("Cluster-IP"),
                        lambda o: _spec(o).get("clusterIP", "")),
                       (_column("External-IP"), lambda o: "<none>"),
                       (_column("Port(s)"), _service_ports), _AGE],
    ("", "endpoints"): [_NAME, (_column("Endpoints"), _endpoints), _AGE],
    ("", "configmaps"): [_NAME, (_column("Data", "integer"),
                                 lambda o: len(o.get("data") or {}) + len(
                                     o.get("binaryData") or {})), _AGE],
    ("", "secrets"): [_NAME, (_column("Type"), lambda o: o.get("type", "")),
                      (_column("Data", "integer"),
                       lambda o: len(o.get("data") or {})), _AGE],
    ("", "serviceaccounts"): [_NAME, (_column("Secrets", "integer"),
                                      lambda o: len(o.get("secrets") or [])),
                              _AGE],
    ("", "persistentvolumeclaims"): [
        _NAME, (_column("Status"), lambda o: _status(o).get("phase", "")),
        (_column("Volume"), lambda o: _spec(o).get("volumeName", "")),
        (_column("Capacity"), lambda o: (_status(o).get("capacity") or {}).get(
            "storage", "")),
        (_column("Access Modes"), lambda o: ",".join(
            _status(o).get("accessModes") or [])),
        (_column("StorageClass"),
         lambda o: _spec(o).get("storageClassName", "<unset>")), _AGE],
    ("apps", "deployments"): [
        _NAME, (_column("Ready"), lambda o: "%d/%d" % (
            _status(o).get("readyReplicas", 0), _spec(o).get("replicas", 0))),
        (_column("Up-to-date", "integer"),
         lambda o: _status(o).get("updatedReplicas", 0)),
        (_column("Available", "integer"),
         lambda o: _status(o).get("availableReplicas", 0)), _AGE],
    ("apps", "statefulsets"): [
        _NAME, (_column("Ready"), lambda o: "%d/%d" % (
            _status(o).get("readyReplicas", 0), _spec(o).get("replicas", 0))),
        _AGE],
    ("apps", "daemonsets"): [
        _NAME, (_column("Desired", "integer"),
                lambda o: _status(o).get("desiredNumberScheduled", 0)),
        (_column("Current", "integer"),
         lambda o: _status(o).get("currentNumberScheduled", 0)),
        (_column("Ready", "integer"),
         lambda o: _status(o).get("numberReady", 0)),
        (_column("Up-to-date", "integer"),
         lambda o: _status(o).get("updatedNumberScheduled", 0)),
        (_column("Available", "integer"),
         lambda o: _status(o).get("numberAvailable", 0)), _AGE],
    ("apps", "replicasets"): [
        _NAME, (_column("Desired", "integer"),
                lambda o: _spec(o).get("replicas", 0)),
        (_column("Current", "integer"),
         lambda o: _status(o).get("replicas", 0)),
        (_column("Ready", "integer"),
         lambda o: _status(o).get("readyReplicas", 0)), _AGE],
    ("batch", "jobs"): [
        _NAME, (_column("Status"), _job_status),
        (_column("Completions"), lambda o: "%d/%d" % (
            _status(o).get("succeeded", 0), _spec(o).get("completions", 1))),
        _AGE],
    ("apiextensions.k8s.io", "customresourcedefinitions"): [
        _NAME, (_column("Created At", "date"),
                lambda o: o["metadata"].get("creationTimestamp", ""))],
    ("apiregistration.k8s.io", "apiservices"): [
        _NAME, (_column("Service"), _apiservice_service),
        (_column("Available"), _apiservice_available), _AGE],
    ("storage.k8s.io", "storageclasses"): [
        (_column("Name", column_format="name"), _storage_class_name),
        (_column("Provisioner"), lambda o: o.get("provisioner", "")),
        (_column("ReclaimPolicy"), lambda o: o.get("reclaimPolicy", "")),
        (_column("VolumeBindingMode"),
         lambda o: o.get("volumeBindingMode", "")),
        (_column("AllowVolumeExpansion"),
         lambda o: str(bool(o.get("allowVolumeExpansion"))).lower()), _AGE],
}

_TOKEN = re.compile(r"\[\?\(@\.([A-Za-z0-9_.]+)\s*==\s*['\"]([^'\"]*)['\"]\)\]"
                    r"|\[(\*|\d+)\]"
                    r"|\.((?:\\\.|[^.\[])+)")


def jsonpath_values(obj, path):
    """Evaluate the JSONPath subset used by printer columns.

    Supports `.field`, escaped dots (`\\.`), `[N]`, `[*]` and filters of
    the form `[?(@.key=="value")]`. Returns the list of matches.
    """
    path = path.strip()
    if path.startswith("{") and path.endswith("}"):
        path = path[1:-1]
    values = [obj]
    position = 0
    while position < len(path):
        match = _TOKEN.match(path, position)
        if not match:
            return []
        position = match.end()
        filter_key, filter_value, index, field = match.groups()
        next_values = []
        for value in values:
            if field is not None:
                key = field.replace("\\.", ".")
                if isinstance(value, dict) and key in value:
                    next_values.append(value[key])
            elif index is not None and isinstance(value, list):
                if index == "*":
                    next_values.extend(value)
                elif int(index) < len(value):
                    next_values.append(value[int(index)])
            elif filter_key is not None and isinstance(value, list):
                for item in value:
                    actual = item
                    for part in filter_key.split("."):
                        actual = actual.get(part) if isinstance(
                            actual, dict) else None
                    if str(actual) == filter_value or (
                            actual is True and filter_value == "true"):
                        next_values.append(item)
        values = next_values
    return values


def _printer_cell(obj, column):
    values = jsonpath_values(obj, column.get("jsonPath", ""))
    if not values:
        return None
    value = values[0] if len(values) == 1 else ",".join(
        str(v) for v in values)
    if column.get("type") == "date" and isinstance(value, str):
        created = parse_rfc3339(value)
        if created is not None:
            return human_duration(time.time() - created.timestamp())
    return value


def _custom_columns(rtype):
    printer_columns = rtype.printer_columns
    if printer_columns is None:
        # apiextensions defaults additionalPrinterColumns to one Age column.
        printer_columns = [{"name": "Age", "type": "date",
                            "jsonPath": ".metadata.creationTimestamp"}]
    columns = [_NAME]
    for printer_column in printer_columns:
        definition = _column(printer_column.get("name", ""),
                             printer_column.get("type", "string"),
                             printer_column.get("format", ""),
                             printer_column.get("priority", 0),
                             printer_column.get("description", ""))
        columns.append((definition,
                        lambda o, c=printer_column: _printer_cell(o, c)))
    return columns


def columns_for(rtype):
    if rtype.crd_name:
        return _custom_columns(rtype)
    return BUILTIN_COLUMNS.get(rtype.group_resource, [_NAME, _AGE])


def _partial_metadata(obj):
    return {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
            "metadata": obj["metadata"]}


def to_table(rtype, objects, list_metadata, include_object):
    """Build a Table of objects; include_object is None, Metadata or Object."""
    columns = columns_for(rtype)
    rows = []
    for obj in objects:
        row = {"cells": [function(obj) for _definition, function in columns]}
        if include_object == "Object":
            row["object"] = obj
        elif include_object != "None":
            row["object"] = _partial_metadata(obj)
        rows.append(row)
    return {"kind": "Table", "apiVersion": "meta.k8s.io/v1",
            "metadata": list_metadata,
            "columnDefinitions": [definition for definition, _f in columns],
            "rows": rows}
