"""Authorization: a role per user, checked with RBAC rule semantics.

Roles are named lists of RBAC PolicyRules. Users get a role from the
control state, which config.json and the control endpoint set. Members of
the group system:masters get cluster-admin, as on a real cluster. Every
authenticated user may read discovery, /version and the health endpoints
and may create self reviews, as the default ClusterRoles system:discovery,
system:public-info-viewer and system:basic-user allow.
"""

from .util import clone

BUILTIN_ROLES = {
    "cluster-admin": [
        {"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]},
        {"verbs": ["*"], "nonResourceURLs": ["*"]},
    ],
    # The real "view" ClusterRole lists every readable resource except
    # Secrets and RBAC objects. "excludeResources" is the stand-in's
    # shorthand for that list and is not an RBAC field.
    "view": [
        {"verbs": ["get", "list", "watch"], "apiGroups": ["*"],
         "resources": ["*"],
         "excludeResources": ["secrets", "roles", "rolebindings",
                              "clusterroles", "clusterrolebindings"]},
    ],
    "none": [],
}

EVERY_USER_RULES = [
    {"verbs": ["create"],
     "apiGroups": ["authorization.k8s.io"],
     "resources": ["selfsubjectaccessreviews", "selfsubjectrulesreviews"]},
    {"verbs": ["create"], "apiGroups": ["authentication.k8s.io"],
     "resources": ["selfsubjectreviews"]},
    {"verbs": ["get"],
     "nonResourceURLs": ["/api", "/api/*", "/apis", "/apis/*", "/healthz",
                         "/healthz/*", "/livez", "/livez/*", "/readyz",
                         "/readyz/*", "/version", "/version/", "/openapi",
                         "/openapi/*"]},
]

# Paths an unauthenticated client may read (kube-apiserver 1.32 with
# anonymous authentication limited to the health and version endpoints).
ANONYMOUS_PATHS = ("/healthz", "/livez", "/readyz", "/version")


class UserInfo:
    def __init__(self, name, groups, authenticator):
        self.name = name
        self.groups = list(groups)
        if "system:authenticated" not in self.groups:
            self.groups.append("system:authenticated")
        self.authenticator = authenticator

    def to_json(self):
        return {"username": self.name, "groups": self.groups}


def _matches(values, wanted):
    return "*" in values or wanted in values


def _resource_matches(rule, resource, subresource):
    resources = rule.get("resources") or []
    if resource in (rule.get("excludeResources") or []):
        return False
    if subresource:
        full = f"{resource}/{subresource}"
        return ("*" in resources or full in resources
                or f"*/{subresource}" in resources)
    return "*" in resources or resource in resources


def _path_matches(patterns, path):
    for pattern in patterns:
        if pattern == "*" or pattern == path:
            return True
        if pattern.endswith("*") and path.startswith(pattern[:-1]):
            return True
    return False


def rule_allows(rule, attributes):
    if not _matches(rule.get("verbs") or [], attributes["verb"]):
        return False
    if attributes.get("path") is not None:
        return _path_matches(rule.get("nonResourceURLs") or [],
                             attributes["path"])
    if "nonResourceURLs" in rule and "resources" not in rule:
        return False
    if not _matches(rule.get("apiGroups") or [], attributes["group"]):
        return False
    if not _resource_matches(rule, attributes["resource"],
                             attributes.get("subresource", "")):
        return False
    names = rule.get("resourceNames") or []
    return not names or attributes.get("name") in names


class Authorizer:
    def __init__(self, control):
        self._control = control

    def role_of(self, user):
        role = self._control.role_for_user(user.name)
        if role is not None:
            return role
        if "system:masters" in user.groups:
            return "cluster-admin"
        return "none"

    def rules_of(self, user):
        role = self.role_of(user)
        rules = self._control.role_rules(role)
        if rules is None:
            rules = BUILTIN_ROLES.get(role, [])
        return clone(rules) + clone(EVERY_USER_RULES)

    def allowed(self, user, attributes):
        """Return True when the user's role allows the request.

        attributes: verb, and either path (non-resource request) or group,
        resource, subresource, namespace and name.
        """
        return any(rule_allows(rule, attributes)
                   for rule in self.rules_of(user))


def access_review(authorizer, user, review):
    """Evaluate a SelfSubjectAccessReview against the user's rules."""
    spec = review.get("spec") or {}
    if "nonResourceAttributes" in spec:
        attributes = dict(spec["nonResourceAttributes"] or {})
        attributes = {"verb": attributes.get("verb", ""),
                      "path": attributes.get("path", "")}
    else:
        raw = spec.get("resourceAttributes") or {}
        attributes = {"verb": raw.get("verb", ""),
                      "group": raw.get("group", ""),
                      "resource": raw.get("resource", ""),
                      "subresource": raw.get("subresource", ""),
                      "namespace": raw.get("namespace", ""),
                      "name": raw.get("name", ""),
                      "path": None}
    allowed = authorizer.allowed(user, attributes)
    role = authorizer.role_of(user)
    result = {"kind": "SelfSubjectAccessReview",
              "apiVersion": "authorization.k8s.io/v1",
              "metadata": {"creationTimestamp": None},
              "spec": spec,
              "status": {"allowed": allowed}}
    if allowed:
        result["status"]["reason"] = (f'allowed by the stand-in role "{role}" '
                                      f'of user "{user.name}"')
    return result


def rules_review(authorizer, user, review):
    """Build a SelfSubjectRulesReview listing the user's rules.

    NOTE: the view role's excludeResources cannot be expressed as RBAC
    rules, so the listed rules also seem to allow reading Secrets.
    """
    resource_rules, non_resource_rules = [], []
    for rule in authorizer.rules_of(user):
        if "nonResourceURLs" in rule:
            non_resource_rules.append({"verbs": rule["verbs"],
                                       "nonResourceURLs":
                                           rule["nonResourceURLs"]})
        else:
            entry = {"verbs": rule["verbs"],
                     "apiGroups": rule.get("apiGroups", []),
                     "resources": rule.get("resources", [])}
            if rule.get("resourceNames"):
                entry["resourceNames"] = rule["resourceNames"]
            resource_rules.append(entry)
    return {"kind": "SelfSubjectRulesReview",
            "apiVersion": "authorization.k8s.io/v1",
            "metadata": {"creationTimestamp": None},
            "spec": review.get("spec") or {},
            "status": {"resourceRules": resource_rules,
                       "nonResourceRules": non_resource_rules,
                       "incomplete": False}}


def subject_review(user):
    """Build a SelfSubjectReview of the user (kubectl auth whoami)."""
    return {"kind": "SelfSubjectReview",
            "apiVersion": "authentication.k8s.io/v1",
            "metadata": {"creationTimestamp": None},
            "status": {"userInfo": user.to_json()}}
