"""State that tests change at run time: server version, fault injection,
roles, controller delays, objects kept unready, and request statistics.
"""

import collections
import random
import re
import threading

from .util import parse_rfc3339

DEFAULT_VERSION = "v1.32.4"
DEFAULT_CONTROLLER_DELAY = 0.2
DEFAULT_CRD_ESTABLISH_DELAY = 0.05

# The annotation that keeps one object unready, whatever its controller
# delay.
UNREADY_ANNOTATION = "standin.mlboot.dev/keep-unready"

# "expire" sends the 410 Expired Status of a continue token whose revision
# etcd has compacted, in response to a list request with a continue token.
FAULT_TYPES = ("error", "drop", "delay", "expire")

_VERSION_PATTERN = re.compile(r"^v?(\d+)\.(\d+)")


class ControlError(ValueError):
    """A control request with invalid content (sent as 400)."""


def version_info(git_version, major=None, minor=None):
    """Build the /version response; major and minor default from git_version."""
    match = _VERSION_PATTERN.match(git_version or "")
    if not match and (major is None or minor is None):
        raise ControlError(f"invalid gitVersion {git_version!r}: expected "
                           "vMAJOR.MINOR.PATCH, or give major and minor")
    return {
        "major": str(major) if major is not None else match.group(1),
        "minor": str(minor) if minor is not None else match.group(2),
        "gitVersion": git_version,
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2025-01-01T00:00:00Z",
        "goVersion": "go1.23.0",
        "compiler": "gc",
        "platform": "linux/amd64",
    }


class FaultRule:
    """One fault: what to inject, on which requests, how often."""

    def __init__(self, spec):
        if not isinstance(spec, dict):
            raise ControlError("a fault rule must be a JSON object")
        self.type = spec.get("type", "error")
        if self.type not in FAULT_TYPES:
            raise ControlError(f"invalid fault type {self.type!r}: expected "
                               f"one of {', '.join(FAULT_TYPES)}")
        self.status = int(spec.get("status", 500))
        if self.type == "error" and not 400 <= self.status <= 599:
            raise ControlError(f"invalid fault status {self.status}: expected "
                               "400 to 599")
        if self.type == "expire":
            self.status = 410
        # Status reason of an error rule. None means the usual reason for
        # its status.
        self.reason = spec.get("reason")
        if self.reason is not None and self.type != "error":
            raise ControlError("reason applies to error rules only")
        if self.reason is not None and (not isinstance(self.reason, str)
                                        or not self.reason):
            raise ControlError(f"invalid fault reason {self.reason!r}: "
                               "expected a non-empty string")
        # An expire rule with newToken sends a continue token for the rest
        # of the list in metadata.continue, as kube-apiserver usually does.
        # Without it, the Status has no token.
        self.new_token = bool(spec.get("newToken", False))
        if self.new_token and self.type != "expire":
            raise ControlError("newToken applies to expire rules only")
        # Only GET requests with a non-empty continue parameter (pages after
        # the first of a list) match; always so for expire rules.
        self.require_continue = (bool(spec.get("requireContinue", False))
                                 or self.type == "expire")
        self.probability = float(spec.get("probability", 1.0))
        if not 0.0 <= self.probability <= 1.0:
            raise ControlError(f"invalid probability {self.probability}: "
                               "expected 0 to 1")
        self.path_prefix = spec.get("pathPrefix", "")
        self.methods = [m.upper() for m in spec.get("methods") or []]
        self.retry_after_seconds = spec.get("retryAfterSeconds")
        self.delay_ms = int(spec.get("delayMs", 0))
        self.delay_max_ms = int(spec.get("delayMaxMs", self.delay_ms))
        if self.delay_max_ms < self.delay_ms:
            raise ControlError("delayMaxMs must not be less than delayMs")
        count = spec.get("count")
        self.remaining = int(count) if count is not None else None
        self.fired = 0

    def applies_to(self, method, path, has_continue=False):
        if self.methods and method not in self.methods:
            return False
        if self.require_continue and (method != "GET" or not has_continue):
            return False
        return path.startswith(self.path_prefix)

    def to_json(self):
        data = {"type": self.type, "probability": self.probability,
                "pathPrefix": self.path_prefix, "fired": self.fired}
        if self.methods:
            data["methods"] = self.methods
        if self.type == "error":
            data["status"] = self.status
            if self.retry_after_seconds is not None:
                data["retryAfterSeconds"] = self.retry_after_seconds
        if self.type == "error" and self.reason is not None:
            data["reason"] = self.reason
        if self.type == "expire":
            data["newToken"] = self.new_token
        if self.require_continue:
            data["requireContinue"] = True
        if self.type == "delay":
            data["delayMs"] = self.delay_ms
            data["delayMaxMs"] = self.delay_max_ms
        if self.remaining is not None:
            data["count"] = self.remaining
        return data


class FaultDecision:
    def __init__(self):
        self.delay_seconds = 0.0
        self.rule = None


class Stats:
    """Request counts by method, path and status (0 for a dropped
    connection)."""

    def __init__(self):
        self._lock = threading.Lock()
        self._counts = collections.Counter()
        self._faults = 0

    def record(self, method, path, status_code, injected=False):
        with self._lock:
            self._counts[(method, path, status_code)] += 1
            if injected:
                self._faults += 1

    def reset(self):
        with self._lock:
            self._counts.clear()
            self._faults = 0

    def to_json(self, prefix=""):
        with self._lock:
            items = [(key, count) for key, count in self._counts.items()
                     if key[1].startswith(prefix)]
            faults = self._faults
        by_status = collections.Counter()
        by_method = collections.Counter()
        requests = []
        for (method, path, status_code), count in sorted(items):
            by_status[str(status_code)] += count
            by_method[method] += count
            requests.append({"method": method, "path": path,
                             "status": status_code, "count": count})
        return {"total": sum(count for _key, count in items),
                "faultsInjected": faults,
                "byStatus": dict(by_status), "byMethod": dict(by_method),
                "requests": requests}


class ControlState:
    def __init__(self, config):
        self._lock = threading.Lock()
        self.stats = Stats()
        version = config.get("version") or {}
        self._version = version_info(version.get("gitVersion",
                                                 DEFAULT_VERSION),
                                     version.get("major"),
                                     version.get("minor"))
        self._tokens = {}
        for entry in config.get("tokens") or []:
            self._tokens[entry["token"]] = entry
        self._roles = dict(config.get("roles") or {})
        self._role_rules = dict(config.get("roleRules") or {})
        controllers = config.get("controllers") or {}
        self._delays = {"default": DEFAULT_CONTROLLER_DELAY,
                        "CustomResourceDefinition":
                            DEFAULT_CRD_ESTABLISH_DELAY}
        self._delays.update(controllers.get("delaySeconds") or {})
        self._unready = set()
        self._fault_seed = 0
        self._random = random.Random(0)
        self._fault_rules = []
        faults = config.get("faults")
        if faults:
            self.set_faults(faults)
        self._listeners = []

    def add_listener(self, callback):
        """Call callback() after controller settings change."""
        self._listeners.append(callback)

    def _notify(self):
        for callback in self._listeners:
            callback()

    # -- version -----------------------------------------------------------

    @property
    def version(self):
        with self._lock:
            return dict(self._version)

    def set_version(self, spec):
        info = version_info(spec.get("gitVersion", ""), spec.get("major"),
                            spec.get("minor"))
        with self._lock:
            self._version = info
        return info

    # -- authentication and roles -----------------------------------------

    def token_entry(self, token):
        with self._lock:
            return self._tokens.get(token)

    @staticmethod
    def token_expired(entry, now):
        expires = parse_rfc3339(entry.get("expiresAt"))
        return expires is not None and expires <= now

    def role_for_user(self, user):
        with self._lock:
            return self._roles.get(user)

    def role_rules(self, role):
        with self._lock:
            return self._role_rules.get(role)

    def set_role(self, user, role, rules=None):
        with self._lock:
            if role is None:
                self._roles.pop(user, None)
            else:
                self._roles[user] = role
            if rules is not None:
                self._role_rules[role] = rules

    def roles_json(self):
        with self._lock:
            return {"roles": dict(self._roles),
                    "roleRules": dict(self._role_rules)}

    # -- faults ------------------------------------------------------------

    def set_faults(self, spec):
        rules = [FaultRule(rule) for rule in spec.get("rules") or []]
        with self._lock:
            if "seed" in spec:
                self._fault_seed = int(spec["seed"])
                self._random = random.Random(self._fault_seed)
            self._fault_rules = rules

    def add_fault(self, rule_spec):
        rule = FaultRule(rule_spec)
        with self._lock:
            self._fault_rules.append(rule)

    def faults_json(self):
        with self._lock:
            return {"seed": self._fault_seed,
                    "rules": [rule.to_json() for rule in self._fault_rules]}

    def decide_fault(self, method, path, has_continue=False):
        """Pick the faults for one request.

        has_continue is whether the request carries a non-empty continue
        parameter, which expire rules and rules with requireContinue need. Delay rules add up; the first
        error, drop or expire rule that fires ends the search. With one
        client sending requests one at a time, a seed gives the same
        decisions on every run; concurrent clients interleave.
        """
        decision = FaultDecision()
        with self._lock:
            for rule in self._fault_rules:
                if rule.remaining is not None and rule.remaining <= 0:
                    continue
                if not rule.applies_to(method, path, has_continue):
                    continue
                if self._random.random() >= rule.probability:
                    continue
                if rule.remaining is not None:
                    rule.remaining -= 1
                rule.fired += 1
                if rule.type == "delay":
                    decision.delay_seconds += self._random.uniform(
                        rule.delay_ms, rule.delay_max_ms) / 1000.0
                    continue
                decision.rule = rule
                break
        return decision

    # -- controllers -------------------------------------------------------

    def controller_delay(self, kind):
        with self._lock:
            return float(self._delays.get(kind, self._delays["default"]))

    def set_controller_delays(self, delays):
        for kind, seconds in delays.items():
            if float(seconds) < 0:
                raise ControlError(f"invalid delay for {kind!r}: must not "
                                   "be negative")
        with self._lock:
            self._delays.update({k: float(v) for k, v in delays.items()})
        self._notify()

    def set_unready(self, kind, namespace, name, unready):
        with self._lock:
            key = (kind, namespace or "", name)
            if unready:
                self._unready.add(key)
            else:
                self._unready.discard(key)
        self._notify()

    def is_unready(self, kind, namespace, name):
        with self._lock:
            return (kind, namespace or "", name) in self._unready

    def controllers_json(self):
        with self._lock:
            return {"delaySeconds": dict(self._delays),
                    "unready": [{"kind": k, "namespace": n, "name": m}
                                for k, n, m in sorted(self._unready)]}
