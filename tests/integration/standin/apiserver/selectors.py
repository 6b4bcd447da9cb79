"""Label and field selectors, in query-string and LabelSelector form."""

import re

from .status import bad_request

_SET_PATTERN = re.compile(
    r"^\s*([A-Za-z0-9_./-]+)\s+(in|notin)\s+\(([^)]*)\)\s*$")
_EXISTS_PATTERN = re.compile(r"^\s*(!?)\s*([A-Za-z0-9_./-]+)\s*$")
_EQUALITY_PATTERN = re.compile(
    r"^\s*([A-Za-z0-9_./-]+)\s*(==|=|!=)\s*([A-Za-z0-9_./-]*)\s*$")


def _split_terms(text):
    """Split on commas that are not inside a parenthesised value set."""
    terms, depth, current = [], 0, []
    for char in text:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "," and depth == 0:
            terms.append("".join(current))
            current = []
        else:
            current.append(char)
    terms.append("".join(current))
    return [t for t in terms if t.strip()]


def parse_label_selector(text):
    """Parse a labelSelector query value into a list of requirements.

    Each requirement is (key, operator, values) with operator one of
    "=", "!=", "in", "notin", "exists", "!exists". Raises ApiError 400 on
    text it cannot parse.
    """
    requirements = []
    for term in _split_terms(text or ""):
        match = _SET_PATTERN.match(term)
        if match:
            values = [v.strip() for v in match.group(3).split(",")
                      if v.strip()]
            requirements.append((match.group(1), match.group(2), values))
            continue
        match = _EQUALITY_PATTERN.match(term)
        if match:
            operator = "!=" if match.group(2) == "!=" else "="
            requirements.append((match.group(1), operator,
                                 [match.group(3)]))
            continue
        match = _EXISTS_PATTERN.match(term)
        if match:
            operator = "!exists" if match.group(1) else "exists"
            requirements.append((match.group(2), operator, []))
            continue
        raise bad_request(f"unable to parse requirement: invalid label "
                          f"selector {text!r}")
    return requirements


def selector_from_label_selector(selector):
    """Convert a LabelSelector object (matchLabels, matchExpressions).

    Returns None for a null selector, which matches nothing in some APIs and
    everything in others: callers decide.
    """
    if selector is None:
        return None
    requirements = []
    for key, value in (selector.get("matchLabels") or {}).items():
        requirements.append((key, "=", [str(value)]))
    for expression in selector.get("matchExpressions") or []:
        operator = {"In": "in", "NotIn": "notin", "Exists": "exists",
                     "DoesNotExist": "!exists"}.get(expression.get("operator"))
        if operator is None:
            continue
        requirements.append((expression.get("key", ""), operator,
                             list(expression.get("values") or [])))
    return requirements


def labels_match(requirements, labels):
    """Return True when labels satisfy every requirement."""
    labels = labels or {}
    for key, operator, values in requirements or []:
        present = key in labels
        value = labels.get(key)
        if operator == "=" and value != values[0]:
            return False
        if operator == "!=" and present and value == values[0]:
            return False
        if operator == "in" and (not present or value not in values):
            return False
        if operator == "notin" and present and value in values:
            return False
        if operator == "exists" and not present:
            return False
        if operator == "!exists" and present:
            return False
    return True


# Field labels the real API server supports beyond metadata.name and
# metadata.namespace, per resource (a subset).
_EXTRA_FIELD_LABELS = {
    "pods": ["spec.nodeName", "spec.restartPolicy", "spec.schedulerName",
             "spec.serviceAccountName", "status.phase", "status.podIP",
             "status.nominatedNodeName"],
    "secrets": ["type"],
    "namespaces": ["status.phase"],
    "nodes": ["spec.unschedulable"],
    "events": ["involvedObject.kind", "involvedObject.namespace",
               "involvedObject.name", "involvedObject.uid",
               "involvedObject.apiVersion", "involvedObject.resourceVersion",
               "involvedObject.fieldPath", "reason", "reportingComponent",
               "source", "type"],
    "replicasets": ["status.replicas"],
    "jobs": ["status.successful"],
    "persistentvolumeclaims": [],
}


def parse_field_selector(text, resource):
    """Parse a fieldSelector into (path, operator, value) triples.

    Only field labels the real server supports for the resource are
    accepted. Others raise the real server's 400 error.
    """
    requirements = []
    allowed = ["metadata.name", "metadata.namespace"] + _EXTRA_FIELD_LABELS.get(
        resource, [])
    for term in _split_terms(text or ""):
        match = re.match(r"^\s*([A-Za-z0-9_.]+)\s*(==|=|!=)\s*(.*?)\s*$", term)
        if not match:
            raise bad_request(f"invalid selector: {text!r}; can't understand "
                              f"{term!r}")
        path, operator, value = match.groups()
        if path not in allowed:
            raise bad_request(f'field label not supported: {path}')
        requirements.append((path, "!=" if operator == "!=" else "=", value))
    return requirements


def _field_value(obj, path):
    value = obj
    for part in path.split("."):
        if not isinstance(value, dict):
            return ""
        value = value.get(part)
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def fields_match(requirements, obj):
    for path, operator, value in requirements or []:
        actual = _field_value(obj, path)
        if operator == "=" and actual != value:
            return False
        if operator == "!=" and actual == value:
            return False
    return True
