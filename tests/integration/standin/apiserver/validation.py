"""Validation of objects before they are stored: a subset of the checks of
kube-apiserver, with its field paths and messages.

What is checked: object names, label keys and values, the total size of
annotations, CustomResourceDefinitions, webhook configurations,
Deployment-like selectors, Services, immutable ConfigMaps and Secrets.
What is not: custom resources against their OpenAPI schema, and most
fields of built-in kinds.
"""

import json
import re

from . import status as status_errors

DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS1123_SUBDOMAIN = re.compile(
    r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
DNS1035_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
QUALIFIED_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")

# Total size of all annotations of one object (keys and values), as
# enforced by apimachinery's ValidateAnnotationsSize: 256 KiB.
MAX_ANNOTATIONS_BYTES = 256 * 1024

SUBDOMAIN_MESSAGE = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric "
    "characters, '-' or '.', and must start and end with an alphanumeric "
    "character (e.g. 'example.com', regex used for validation is "
    "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')")
LABEL_MESSAGE = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric "
    "characters or '-', and must start and end with an alphanumeric "
    "character (e.g. 'my-name',  or '123-abc', regex used for validation is "
    "'[a-z0-9]([-a-z0-9]*[a-z0-9])?')")
DNS1035_MESSAGE = (
    "a DNS-1035 label must consist of lower case alphanumeric characters or "
    "'-', start with an alphabetic character, and end with an alphanumeric "
    "character (e.g. 'my-name',  or 'abc-123', regex used for validation is "
    "'[a-z]([-a-z0-9]*[a-z0-9])?')")

# Kinds whose names are path segments (anything but "/" and "%", not "."
# or ".."), as RBAC names like "system:aggregate-to-view" need.
PATH_SEGMENT_NAMED = {"roles", "clusterroles", "rolebindings",
                      "clusterrolebindings"}
LABEL_NAMED = {"namespaces"}
DNS1035_NAMED = {"services"}


def _quote(value):
    return json.dumps(value)


def _invalid(field, value, detail):
    return (field, "FieldValueInvalid",
            f"Invalid value: {_quote(value)}: {detail}")


def _required(field, detail=""):
    message = "Required value" + (f": {detail}" if detail else "")
    return (field, "FieldValueRequired", message)


def validate_name(resource, name):
    causes = []
    field = "metadata.name"
    if resource in PATH_SEGMENT_NAMED:
        if name in (".", "..") or "/" in name or "%" in name:
            causes.append(_invalid(field, name,
                                   "may not contain '/' or '%' and may not "
                                   "be '.' or '..'"))
    elif resource in LABEL_NAMED:
        if len(name) > 63 or not DNS1123_LABEL.match(name):
            causes.append(_invalid(field, name, LABEL_MESSAGE))
    elif resource in DNS1035_NAMED:
        if len(name) > 63 or not DNS1035_LABEL.match(name):
            causes.append(_invalid(field, name, DNS1035_MESSAGE))
    elif len(name) > 253 or not DNS1123_SUBDOMAIN.match(name):
        causes.append(_invalid(field, name, SUBDOMAIN_MESSAGE))
    return causes


def _validate_qualified_key(field, key):
    prefix, _, name = key.rpartition("/")
    if prefix and (len(prefix) > 253 or not DNS1123_SUBDOMAIN.match(prefix)):
        return [_invalid(field, key, "prefix part " + SUBDOMAIN_MESSAGE)]
    if len(name) > 63 or not QUALIFIED_NAME.match(name):
        return [_invalid(field, key,
                         "name part must consist of alphanumeric characters, "
                         "'-', '_' or '.', and must start and end with an "
                         "alphanumeric character")]
    return []


def validate_metadata(metadata):
    causes = []
    labels = metadata.get("labels") or {}
    if not isinstance(labels, dict):
        return [_invalid("metadata.labels", labels, "must be a map")]
    for key, value in labels.items():
        causes += _validate_qualified_key("metadata.labels", key)
        if not isinstance(value, str):
            causes.append(_invalid("metadata.labels", value,
                                   "must be a string"))
        elif len(value) > 63 or not LABEL_VALUE.match(value):
            causes.append(_invalid(
                "metadata.labels", value,
                "a valid label must be an empty string or consist of "
                "alphanumeric characters, '-', '_' or '.', and must start "
                "and end with an alphanumeric character"))
    annotations = metadata.get("annotations") or {}
    if not isinstance(annotations, dict):
        return causes + [_invalid("metadata.annotations", annotations,
                                  "must be a map")]
    total = 0
    for key, value in annotations.items():
        causes += _validate_qualified_key("metadata.annotations", key)
        total += len(key.encode()) + len(str(value).encode())
    if total > MAX_ANNOTATIONS_BYTES:
        causes.append(("metadata.annotations", "FieldValueTooLong",
                       f"Too long: must have at most {MAX_ANNOTATIONS_BYTES} "
                       "bytes"))
    return causes


def _validate_crd(crd):
    causes = []
    spec = crd.get("spec") or {}
    names = spec.get("names") or {}
    group = spec.get("group", "")
    plural = names.get("plural", "")
    name = crd["metadata"]["name"]

    if not group:
        causes.append(_required("spec.group"))
    elif len(group.split(".")) < 2:
        causes.append(_invalid("spec.group", group,
                               "should be a domain with at least one dot"))
    if not plural:
        causes.append(_required("spec.names.plural"))
    if not names.get("kind"):
        causes.append(_required("spec.names.kind"))
    if group and plural and name != f"{plural}.{group}":
        causes.append(_invalid("metadata.name", name,
                               'must be spec.names.plural+"."+spec.group'))

    if spec.get("scope") not in ("Cluster", "Namespaced"):
        causes.append(("spec.scope", "FieldValueNotSupported",
                       f"Unsupported value: {_quote(spec.get('scope', ''))}: "
                       'supported values: "Cluster", "Namespaced"'))

    versions = spec.get("versions") or []
    if not versions:
        causes.append(_required("spec.versions",
                                "must have exactly one version marked as "
                                "storage version"))
    elif sum(1 for v in versions if v.get("storage")) != 1:
        causes.append(_invalid("spec.versions", versions,
                               "must have exactly one version marked as "
                               "storage version"))
    for index, version in enumerate(versions):
        schema = (version.get("schema") or {}).get("openAPIV3Schema")
        if schema is None:
            causes.append(_required(
                f"spec.versions[{index}].schema.openAPIV3Schema",
                "schemas are required"))
    return causes


def _validate_webhooks(config):
    causes = []
    seen = set()
    for index, webhook in enumerate(config.get("webhooks") or []):
        field = f"webhooks[{index}]"
        name = webhook.get("name", "")
        if not name:
            causes.append(_required(f"{field}.name"))
        elif len(name.split(".")) < 3 or not DNS1123_SUBDOMAIN.match(name):
            causes.append(_invalid(f"{field}.name", name,
                                   "should be a domain with at least three "
                                   "segments separated by dots"))
        elif name in seen:
            causes.append((f"{field}.name", "FieldValueDuplicate",
                           f"Duplicate value: {_quote(name)}"))
        seen.add(name)
        if webhook.get("sideEffects") not in ("None", "NoneOnDryRun"):
            causes.append(("%s.sideEffects" % field, "FieldValueNotSupported",
                           "Unsupported value: "
                           f"{_quote(webhook.get('sideEffects', ''))}: "
                           'supported values: "None", "NoneOnDryRun"'))
        if not webhook.get("admissionReviewVersions"):
            causes.append(_required(f"{field}.admissionReviewVersions",
                                    "must specify one of v1, v1beta1"))
        client = webhook.get("clientConfig") or {}
        if ("url" in client) == ("service" in client):
            causes.append(_required(f"{field}.clientConfig",
                                    "exactly one of url or service is "
                                    "required"))
    return causes


def _validate_selector(obj, old):
    spec = obj.get("spec") or {}
    selector = spec.get("selector")
    if selector is None:
        return [_required("spec.selector")]
    labels = ((spec.get("template") or {}).get("metadata") or {}).get(
        "labels") or {}
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return [_invalid("spec.template.metadata.labels", labels,
                             "`selector` does not match template `labels`")]
    if old is not None and (old.get("spec") or {}).get("selector") != selector:
        return [_invalid("spec.selector", selector, "field is immutable")]
    return []


def _validate_service(service):
    spec = service.get("spec") or {}
    if spec.get("type") == "ExternalName" or spec.get("clusterIP") == "None":
        return []
    if not spec.get("ports"):
        return [_required("spec.ports")]
    return []


def _validate_immutable_data(obj, old):
    if old is None or not old.get("immutable"):
        return []
    for field in ("data", "binaryData", "stringData"):
        if obj.get(field) != old.get(field):
            return [(field, "FieldValueForbidden",
                     "Forbidden: field is immutable when `immutable` is set")]
    return []


def validate(rtype, obj, old):
    """Raise a 422 Invalid ApiError when obj is not valid for rtype."""
    metadata = obj.get("metadata") or {}
    name = metadata.get("name", "")
    causes = validate_name(rtype.resource, name)
    causes += validate_metadata(metadata)
    resource = (rtype.group, rtype.resource)
    if resource == ("apiextensions.k8s.io", "customresourcedefinitions"):
        causes += _validate_crd(obj)
    elif resource in (("admissionregistration.k8s.io",
                       "mutatingwebhookconfigurations"),
                      ("admissionregistration.k8s.io",
                       "validatingwebhookconfigurations")):
        causes += _validate_webhooks(obj)
    elif resource in (("apps", "deployments"), ("apps", "statefulsets"),
                      ("apps", "daemonsets"), ("apps", "replicasets")):
        causes += _validate_selector(obj, old)
    elif resource == ("", "services"):
        causes += _validate_service(obj)
    elif resource in (("", "configmaps"), ("", "secrets")):
        causes += _validate_immutable_data(obj, old)
    if causes:
        raise status_errors.invalid(rtype.group, rtype.kind, name, causes)
