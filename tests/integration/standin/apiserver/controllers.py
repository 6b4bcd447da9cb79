"""Simulated controllers: what kube-controller-manager, the scheduler and
the kubelets would do, reduced to status changes after a delay.

Nothing runs. A Deployment gets a ReplicaSet and Pods at once. After the
controller delay of its kind (control state, default 0.2 s), its Pods
become Running and Ready and the Deployment reports them available.
StatefulSets and DaemonSets work the same way, Jobs complete, APIServices
become Available when their Service has a Ready pod, Services get
Endpoints and EndpointSlices, namespaces are emptied when deleted, and
CRDs become Established (default delay 0.05 s). An object annotated
standin.mlboot.dev/keep-unready: "true", or named in the control state's
unready list, stays unready. Controllers for add-ons (cert-manager,
KServe) are in addon_controllers.py.

One thread runs every controller. Store events queue the changed object
(and objects that depend on it); a queued object is reconciled when its
due time comes, and a reconcile may ask to run again later.
"""

import hashlib
import heapq
import ipaddress
import itertools
import json
import logging
import threading
import time

from . import control as control_module
from .catalog import types_from_crd
from .util import clone, new_uid, now_rfc3339
from .webhooks import service_has_ready_endpoint

log = logging.getLogger("standin.controllers")

PODS = ("", "pods")
SERVICES = ("", "services")
ENDPOINTS = ("", "endpoints")
NAMESPACES = ("", "namespaces")
NODES = ("", "nodes")
CONFIGMAPS = ("", "configmaps")
SERVICEACCOUNTS = ("", "serviceaccounts")
DEPLOYMENTS = ("apps", "deployments")
REPLICASETS = ("apps", "replicasets")
STATEFULSETS = ("apps", "statefulsets")
DAEMONSETS = ("apps", "daemonsets")
JOBS = ("batch", "jobs")
APISERVICES = ("apiregistration.k8s.io", "apiservices")
CRDS = ("apiextensions.k8s.io", "customresourcedefinitions")
ENDPOINTSLICES = ("discovery.k8s.io", "endpointslices")
PVCS = ("", "persistentvolumeclaims")

POD_NETWORK = ipaddress.ip_network("10.244.0.0/16")
# The annotation that MetalLB reads for the addresses a Service requests.
LOAD_BALANCER_IPS_ANNOTATION = "metallb.universe.tf/loadBalancerIPs"
RETRY_AFTER_ERROR = 1.0


def short_hash(value, length=10):
    """A stable hash of a JSON value in the alphabet of generated names."""
    digest = hashlib.sha256(json.dumps(value, sort_keys=True).encode())
    alphabet = "bcdfghjklmnpqrstvwxz2456789"
    number = int(digest.hexdigest(), 16)
    chars = []
    for _ in range(length):
        number, index = divmod(number, len(alphabet))
        chars.append(alphabet[index])
    return "".join(chars)


def condition(condition_type, status, reason="", message="",
              transition_time=None):
    entry = {"type": condition_type, "status": status,
             "lastTransitionTime": transition_time or now_rfc3339()}
    if reason:
        entry["reason"] = reason
    if message:
        entry["message"] = message
    return entry


def merge_conditions(old_conditions, new_conditions):
    """Keep lastTransitionTime (and lastUpdateTime) of conditions whose
    status did not change, so an unchanged status compares equal."""
    old_by_type = {c.get("type"): c for c in old_conditions or []}
    merged = []
    for new in new_conditions:
        old = old_by_type.get(new["type"])
        if old and old.get("status") == new["status"] and old.get(
                "reason") == new.get("reason") and old.get(
                "message") == new.get("message"):
            merged.append(old)
        else:
            merged.append(new)
    return merged


def owner_reference(obj, controller=True):
    return {"apiVersion": obj["apiVersion"], "kind": obj["kind"],
            "name": obj["metadata"]["name"], "uid": obj["metadata"]["uid"],
            "controller": controller, "blockOwnerDeletion": True}


def controlled_by(obj, owner_uid):
    return any(ref.get("uid") == owner_uid and ref.get("controller")
               for ref in obj["metadata"].get("ownerReferences") or [])


def controller_ref(obj):
    for ref in obj["metadata"].get("ownerReferences") or []:
        if ref.get("controller"):
            return ref
    return None


class Controllers:
    def __init__(self, api, control, ca_certificate_pem):
        self.api = api
        self.store = api.store
        self.control = control
        self.ca_certificate_pem = ca_certificate_pem
        self._condition = threading.Condition()
        self._queue = []
        self._due = {}
        self._sequence = itertools.count()
        self._since = {}
        self._pod_ips = itertools.count(2)
        self._stopping = False
        self._thread = None
        # (group_resource, namespace) whose objects a store event affected;
        # expanded into queue entries by the controller thread.
        self._pending_dependents = set()

        self.handlers = {
            DEPLOYMENTS: self.reconcile_deployment,
            REPLICASETS: self.reconcile_replicaset,
            STATEFULSETS: self.reconcile_statefulset,
            DAEMONSETS: self.reconcile_daemonset,
            JOBS: self.reconcile_job,
            PODS: self.reconcile_pod,
            SERVICES: self.reconcile_service,
            NAMESPACES: self.reconcile_namespace,
            APISERVICES: self.reconcile_apiservice,
            CRDS: self.reconcile_crd,
            PVCS: self.reconcile_claim,
        }
        # Objects to reconcile again when an object of a kind changes.
        self.dependents = {
            PODS: [SERVICES, APISERVICES],
            SERVICES: [APISERVICES],
            DEPLOYMENTS: [APISERVICES],
            STATEFULSETS: [APISERVICES],
            DAEMONSETS: [APISERVICES],
            NODES: [DAEMONSETS],
        }

        self.store.add_listener(self._on_event)
        self.control.add_listener(self.resync)

    def register(self, group_resource, handler, dependents_of=()):
        """Add a controller for group_resource; dependents_of lists kinds
        whose changes should reconcile all objects of group_resource in
        the same namespace."""
        self.handlers[group_resource] = handler
        for other in dependents_of:
            self.dependents.setdefault(other, []).append(group_resource)

    # -- queue -------------------------------------------------------------

    def _on_event(self, event):
        if event.group_resource in self.handlers:
            self.enqueue((event.group_resource, event.namespace, event.name))
        dependents = self.dependents.get(event.group_resource)
        if dependents:
            with self._condition:
                for dependent in dependents:
                    self._pending_dependents.add((dependent, event.namespace))
                self._condition.notify()

    def enqueue(self, key, delay=0.0):
        due = time.monotonic() + max(delay, 0.0)
        with self._condition:
            current = self._due.get(key)
            if current is not None and current <= due:
                return
            self._due[key] = due
            heapq.heappush(self._queue, (due, next(self._sequence), key))
            self._condition.notify()

    def resync(self):
        """Reconcile every object of every controlled kind."""
        for group_resource in list(self.handlers):
            for obj in self.store.list(group_resource):
                metadata = obj["metadata"]
                self.enqueue((group_resource, metadata.get("namespace", ""),
                              metadata["name"]))

    def start(self):
        self._thread = threading.Thread(target=self._run, name="controllers",
                                        daemon=True)
        self._thread.start()

    def stop(self):
        with self._condition:
            self._stopping = True
            self._condition.notify()

    def _expand_dependents(self):
        with self._condition:
            pending = self._pending_dependents
            self._pending_dependents = set()
        for group_resource, namespace in pending:
            if group_resource == APISERVICES:
                objects = self.store.list(group_resource)
            elif group_resource == DAEMONSETS and not namespace:
                objects = self.store.list(group_resource)
            else:
                objects = self.store.list(group_resource, namespace)
            for obj in objects:
                metadata = obj["metadata"]
                self.enqueue((group_resource, metadata.get("namespace", ""),
                              metadata["name"]))

    def _next_key(self):
        with self._condition:
            while not self._stopping:
                if self._pending_dependents:
                    return None
                if self._queue:
                    due, _sequence, key = self._queue[0]
                    wait = due - time.monotonic()
                    if wait <= 0:
                        heapq.heappop(self._queue)
                        if self._due.get(key) != due:
                            continue
                        del self._due[key]
                        return key
                    self._condition.wait(wait)
                else:
                    self._condition.wait(1.0)
            raise StopIteration

    def _run(self):
        while True:
            try:
                key = self._next_key()
            except StopIteration:
                return
            if key is None:
                self._expand_dependents()
                continue
            group_resource, namespace, name = key
            handler = self.handlers.get(group_resource)
            obj = self.store.get(group_resource, namespace, name)
            try:
                requeue = handler(obj, key)
            except Exception:  # a controller bug must not stop the others
                log.exception("controller for %s %s/%s failed; retrying in "
                              "%.0f s", "/".join(group_resource), namespace,
                              name, RETRY_AFTER_ERROR)
                requeue = RETRY_AFTER_ERROR
            if obj is None:
                self._since.pop(key, None)
            if requeue is not None:
                self.enqueue(key, requeue)

    # -- readiness timing --------------------------------------------------

    def held_unready(self, obj):
        annotations = obj["metadata"].get("annotations") or {}
        if annotations.get(control_module.UNREADY_ANNOTATION) == "true":
            return True
        return self.control.is_unready(obj.get("kind", ""),
                                       obj["metadata"].get("namespace", ""),
                                       obj["metadata"]["name"])

    def remaining_delay(self, key, obj, kind=None):
        """Seconds until obj's current generation counts as ready."""
        generation = obj["metadata"].get("generation", 0)
        since = self._since.get(key)
        if since is None or since[0] != generation:
            since = (generation, time.monotonic())
            self._since[key] = since
        delay = self.control.controller_delay(kind or obj.get("kind", ""))
        return since[1] + delay - time.monotonic()

    def readiness(self, key, obj, kind=None):
        """Return (ready, requeue_after) for obj."""
        if self.held_unready(obj):
            return False, None
        remaining = self.remaining_delay(key, obj, kind)
        if remaining > 0:
            return False, remaining
        return True, None

    def update_status(self, group_resource, obj, status):
        """Write status; when obj changed meanwhile, reconcile it again."""
        stored = self.api.system_update_status(group_resource, obj, status)
        if stored is None:
            metadata = obj["metadata"]
            self.enqueue((group_resource, metadata.get("namespace", ""),
                          metadata["name"]), 0.05)
        return stored

    # -- pods --------------------------------------------------------------

    def nodes(self):
        return [node for node in self.store.list(NODES)
                if not (node.get("spec") or {}).get("unschedulable")]

    def _pod_ip(self):
        return str(POD_NETWORK.network_address + next(self._pod_ips))

    def pod_status(self, pod, ready, node, old_status=None):
        """Build a pod status: Running and Ready, or Pending."""
        old_status = old_status or {}
        spec = pod.get("spec") or {}
        started = old_status.get("startTime") or now_rfc3339()
        status = {"phase": "Running" if ready else "Pending",
                  "qosClass": "BestEffort", "startTime": started}
        scheduled = node is not None
        flag = "True" if ready else "False"
        status["conditions"] = merge_conditions(old_status.get("conditions"), [
            condition("PodReadyToStartContainers", flag),
            condition("Initialized", flag),
            condition("Ready", flag),
            condition("ContainersReady", flag),
            condition("PodScheduled", "True" if scheduled else "False",
                      "" if scheduled else "Unschedulable",
                      "" if scheduled else "no nodes available to schedule "
                                           "pods"),
        ])

        if node is not None:
            host_ip = _node_ip(node)
            status["hostIP"] = host_ip
            status["hostIPs"] = [{"ip": host_ip}]
            pod_ip = old_status.get("podIP") or self._pod_ip()
            status["podIP"] = pod_ip
            status["podIPs"] = [{"ip": pod_ip}]

        container_statuses = []
        for container in spec.get("containers") or []:
            container_statuses.append(_container_status(container, ready,
                                                        started))
        status["containerStatuses"] = container_statuses
        init_statuses = [_init_container_status(c, ready)
                         for c in spec.get("initContainers") or []]
        if init_statuses:
            status["initContainerStatuses"] = init_statuses
        return status

    def new_pod(self, owner, name, template, node, ready, extra_labels):
        metadata = clone((template or {}).get("metadata") or {})
        labels = dict(metadata.get("labels") or {})
        labels.update(extra_labels)
        spec = clone((template or {}).get("spec") or {})
        spec.setdefault("restartPolicy", "Always")
        spec.setdefault("schedulerName", "default-scheduler")
        spec.setdefault("serviceAccountName",
                        spec.get("serviceAccount", "default"))
        spec.setdefault("terminationGracePeriodSeconds", 30)
        spec.setdefault("dnsPolicy", "ClusterFirst")
        if node is not None:
            spec["nodeName"] = node["metadata"]["name"]
        pod = {"apiVersion": "v1", "kind": "Pod",
               "metadata": {"name": name,
                            "namespace": owner["metadata"]["namespace"],
                            "labels": labels,
                            "ownerReferences": [owner_reference(owner)],
                            "uid": new_uid(),
                            "creationTimestamp": now_rfc3339()},
               "spec": spec}
        if metadata.get("annotations"):
            pod["metadata"]["annotations"] = metadata["annotations"]
        pod["status"] = self.pod_status(pod, ready, node)
        return pod

    def owned_pods(self, owner):
        namespace = owner["metadata"].get("namespace", "")
        pods = []
        for group_resource, pod_namespace, name in self.api.dependents_of(
                owner["metadata"]["uid"]):
            if group_resource != PODS or pod_namespace != namespace:
                continue
            pod = self.store.get(PODS, namespace, name)
            if pod is not None and controlled_by(pod, owner["metadata"][
                    "uid"]):
                pods.append(pod)
        return sorted(pods, key=lambda p: p["metadata"]["name"])

    def set_pod_ready(self, pod, ready):
        """Move an owned pod to Ready (or back); return the stored pod."""
        node = None
        node_name = (pod.get("spec") or {}).get("nodeName")
        if node_name:
            node = self.store.get(NODES, "", node_name)
        status = self.pod_status(pod, ready, node, pod.get("status"))
        return self.update_status(PODS, pod, status) or pod

    def sync_pods(self, owner, names_and_nodes, template, ready,
                  extra_labels):
        """Make the owner's pods exactly those named, in the ready state.

        names_and_nodes: list of (pod name or None for a generated name,
        node). Returns the number of pods that are ready.
        """
        existing = self.owned_pods(owner)
        by_name = {p["metadata"]["name"]: p for p in existing}
        expected_count = len(names_and_nodes)
        fixed_names = {n for n, _node in names_and_nodes if n}
        keep = []
        for pod in existing:
            name = pod["metadata"]["name"]
            if fixed_names and name not in fixed_names:
                self.api.remove(PODS, pod["metadata"]["namespace"], name,
                                "Background")
            elif not fixed_names and len(keep) >= expected_count:
                self.api.remove(PODS, pod["metadata"]["namespace"], name,
                                "Background")
            else:
                keep.append(pod)
        ready_count = 0
        for pod in keep:
            stored = self.set_pod_ready(pod, ready)
            if _pod_is_ready(stored):
                ready_count += 1
        kept_names = {p["metadata"]["name"] for p in keep}
        missing = [(n, node) for n, node in names_and_nodes
                   if n and n not in kept_names]
        if not fixed_names:
            prefix = owner["metadata"]["name"] + "-"
            missing = [(prefix + short_hash([owner["metadata"]["uid"], i,
                                             time.time()], 5), node)
                       for i, (_n, node) in enumerate(
                           names_and_nodes[len(keep):])]
        for name, node in missing:
            if name in by_name:
                continue
            pod = self.new_pod(owner, name, template, node, ready,
                               extra_labels)
            self.api.system_put(PODS, pod)
            if _pod_is_ready(pod):
                ready_count += 1
        return ready_count

    def schedule(self, count, offset=0):
        """Pick nodes round-robin for count pods (None when there is none)."""
        nodes = self.nodes()
        if not nodes:
            return [None] * count
        return [nodes[(offset + i) % len(nodes)] for i in range(count)]

    # -- Deployments and ReplicaSets ---------------------------------------

    def reconcile_deployment(self, deployment, key):
        if deployment is None or deployment["metadata"].get(
                "deletionTimestamp"):
            return None
        spec = deployment.get("spec") or {}
        replicas = spec.get("replicas", 1)
        template = spec.get("template") or {}
        template_hash = short_hash(template)
        replicaset_name = f"{deployment['metadata']['name']}-{template_hash}"
        namespace = deployment["metadata"]["namespace"]
        ready, requeue = self.readiness(key, deployment)

        replicaset = self.store.get(REPLICASETS, namespace, replicaset_name)
        if replicaset is None:
            replicaset = self._new_replicaset(deployment, replicaset_name,
                                              template, template_hash,
                                              replicas)
        elif (replicaset.get("spec") or {}).get("replicas") != replicas:
            updated = clone(replicaset)
            updated["spec"]["replicas"] = replicas
            replicaset = self.store.put(REPLICASETS, updated)
        for old in self.store.list(REPLICASETS, namespace):
            if old["metadata"]["name"] != replicaset_name and controlled_by(
                    old, deployment["metadata"]["uid"]):
                self.api.remove(REPLICASETS, namespace,
                                old["metadata"]["name"], "Background")

        ready_count = self.sync_pods(
            replicaset, [(None, node) for node in self.schedule(replicas)],
            replicaset["spec"]["template"], ready,
            {"pod-template-hash": template_hash})
        self._set_replicaset_status(replicaset, replicas, ready_count)

        available = ready_count >= replicas
        old_status = deployment.get("status") or {}
        conditions = [
            condition("Available", "True" if available else "False",
                      "MinimumReplicasAvailable" if available else
                      "MinimumReplicasUnavailable",
                      "Deployment has minimum availability." if available
                      else "Deployment does not have minimum availability."),
            condition("Progressing", "True",
                      "NewReplicaSetAvailable" if available else
                      "ReplicaSetUpdated",
                      f'ReplicaSet "{replicaset_name}" has successfully '
                      "progressed." if available else
                      f'ReplicaSet "{replicaset_name}" is progressing.'),
        ]
        status = {"observedGeneration": deployment["metadata"].get(
                      "generation", 1),
                  "replicas": replicas, "updatedReplicas": replicas,
                  "conditions": merge_conditions(old_status.get("conditions"),
                                                 conditions)}
        if ready_count:
            status["readyReplicas"] = ready_count
            status["availableReplicas"] = ready_count
        if replicas - ready_count > 0:
            status["unavailableReplicas"] = replicas - ready_count
        self.update_status(DEPLOYMENTS, deployment, status)
        return requeue

    def _new_replicaset(self, owner, name, template, template_hash, replicas):
        template = clone(template)
        template.setdefault("metadata", {}).setdefault("labels", {})[
            "pod-template-hash"] = template_hash
        selector = clone((owner.get("spec") or {}).get("selector") or {})
        selector.setdefault("matchLabels", {})["pod-template-hash"] = (
            template_hash)
        labels = dict(template["metadata"]["labels"])
        replicaset = {
            "apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {"name": name,
                         "namespace": owner["metadata"]["namespace"],
                         "labels": labels,
                         "annotations": {
                             "deployment.kubernetes.io/desired-replicas":
                                 str(replicas),
                             "deployment.kubernetes.io/revision": "1"},
                         "ownerReferences": [owner_reference(owner)],
                         "generation": 1},
            "spec": {"replicas": replicas, "selector": selector,
                     "template": template},
        }
        return self.api.system_put(REPLICASETS, replicaset)

    def _set_replicaset_status(self, replicaset, replicas, ready_count):
        status = {"replicas": replicas, "fullyLabeledReplicas": replicas,
                  "observedGeneration": replicaset["metadata"].get(
                      "generation", 1)}
        if ready_count:
            status["readyReplicas"] = ready_count
            status["availableReplicas"] = ready_count
        current = self.store.get(REPLICASETS,
                                 replicaset["metadata"]["namespace"],
                                 replicaset["metadata"]["name"])
        if current is not None:
            self.update_status(REPLICASETS, current, status)

    def reconcile_replicaset(self, replicaset, key):
        """ReplicaSets without a controlling Deployment run their own pods."""
        if replicaset is None or replicaset["metadata"].get(
                "deletionTimestamp"):
            return None
        if controller_ref(replicaset) is not None:
            return None
        spec = replicaset.get("spec") or {}
        replicas = spec.get("replicas", 1)
        ready, requeue = self.readiness(key, replicaset)
        ready_count = self.sync_pods(
            replicaset, [(None, node) for node in self.schedule(replicas)],
            spec.get("template"), ready, {})
        self._set_replicaset_status(replicaset, replicas, ready_count)
        return requeue

    # -- StatefulSets and DaemonSets ---------------------------------------

    def reconcile_statefulset(self, statefulset, key):
        if statefulset is None or statefulset["metadata"].get(
                "deletionTimestamp"):
            return None
        spec = statefulset.get("spec") or {}
        name = statefulset["metadata"]["name"]
        replicas = spec.get("replicas", 1)
        revision = f"{name}-{short_hash(spec.get('template') or {})}"
        ready, requeue = self.readiness(key, statefulset)
        nodes = self.schedule(replicas)
        pods = [(f"{name}-{index}", nodes[index]) for index in range(replicas)]
        ready_count = self.sync_pods(statefulset, pods, spec.get("template"),
                                     ready,
                                     {"controller-revision-hash": revision})
        status = {"observedGeneration": statefulset["metadata"].get(
                      "generation", 1),
                  "replicas": replicas, "currentReplicas": replicas,
                  "updatedReplicas": replicas, "currentRevision": revision,
                  "updateRevision": revision, "collisionCount": 0,
                  "readyReplicas": ready_count,
                  "availableReplicas": ready_count}
        if not ready_count:
            del status["readyReplicas"]
            del status["availableReplicas"]
        self.update_status(STATEFULSETS, statefulset, status)
        return requeue

    def reconcile_daemonset(self, daemonset, key):
        if daemonset is None or daemonset["metadata"].get(
                "deletionTimestamp"):
            return None
        spec = daemonset.get("spec") or {}
        name = daemonset["metadata"]["name"]
        nodes = self.nodes()
        ready, requeue = self.readiness(key, daemonset)
        pods = [(f"{name}-{short_hash([name, n['metadata']['name']], 5)}", n)
                for n in nodes]
        ready_count = self.sync_pods(daemonset, pods, spec.get("template"),
                                     ready, {})
        status = {"observedGeneration": daemonset["metadata"].get(
                      "generation", 1),
                  "desiredNumberScheduled": len(nodes),
                  "currentNumberScheduled": len(nodes),
                  "updatedNumberScheduled": len(nodes),
                  "numberMisscheduled": 0,
                  "numberReady": ready_count,
                  "numberAvailable": ready_count}
        if len(nodes) - ready_count:
            status["numberUnavailable"] = len(nodes) - ready_count
        self.update_status(DAEMONSETS, daemonset, status)
        return requeue

    # -- Jobs and standalone pods ------------------------------------------

    def reconcile_job(self, job, key):
        if job is None or job["metadata"].get("deletionTimestamp"):
            return None
        if (job.get("spec") or {}).get("suspend"):
            return None
        old_status = job.get("status") or {}
        for existing in old_status.get("conditions") or []:
            if existing.get("type") in ("Complete", "Failed") and existing.get(
                    "status") == "True":
                return None

        ready, requeue = self.readiness(key, job)
        start = old_status.get("startTime") or now_rfc3339()
        if not ready:
            status = {"startTime": start, "active": 1, "ready": 0,
                      "terminating": 0, "uncountedTerminatedPods": {}}
            self.update_status(JOBS, job, status)
            return requeue

        finished = now_rfc3339()
        completions = (job.get("spec") or {}).get("completions", 1) or 1
        status = {"startTime": start, "completionTime": finished,
                  "succeeded": completions, "ready": 0, "terminating": 0,
                  "uncountedTerminatedPods": {},
                  "conditions": [
                      condition("SuccessCriteriaMet", "True",
                                "CompletionsReached",
                                "Reached expected number of succeeded pods"),
                      condition("Complete", "True", "CompletionsReached",
                                "Reached expected number of succeeded pods"),
                  ]}
        self.update_status(JOBS, job, status)
        return None

    def reconcile_pod(self, pod, key):
        """Pods created by clients (not by a simulated workload) start."""
        if pod is None or pod["metadata"].get("deletionTimestamp"):
            return None
        if controller_ref(pod) is not None:
            return None
        ready, requeue = self.readiness(key, pod)
        node = None
        node_name = (pod.get("spec") or {}).get("nodeName")
        if node_name:
            node = self.store.get(NODES, "", node_name)
        else:
            nodes = self.schedule(1)
            node = nodes[0]
            if node is not None:
                updated = clone(pod)
                updated["spec"]["nodeName"] = node["metadata"]["name"]
                pod = self.store.put(PODS, updated)
        status = self.pod_status(pod, ready and node is not None, node,
                                 pod.get("status"))
        self.update_status(PODS, pod, status)
        return requeue

    # -- Services, Endpoints and EndpointSlices ----------------------------

    def reconcile_service(self, service, key):
        _group_resource, namespace, name = key
        if service is None:
            self.api.remove(ENDPOINTS, namespace, name, "Background")
            return None
        service = self._assign_load_balancer(service)
        spec = service.get("spec") or {}
        selector = spec.get("selector")
        if not selector or spec.get("type") == "ExternalName":
            return None

        ready_addresses, unready_addresses = [], []
        for pod in self.store.list(PODS, namespace):
            labels = pod["metadata"].get("labels") or {}
            if any(labels.get(k) != v for k, v in selector.items()):
                continue
            pod_ip = (pod.get("status") or {}).get("podIP")
            if not pod_ip or pod["metadata"].get("deletionTimestamp"):
                continue
            address = {"ip": pod_ip,
                       "nodeName": (pod.get("spec") or {}).get("nodeName",
                                                               ""),
                       "targetRef": {"kind": "Pod", "namespace": namespace,
                                     "name": pod["metadata"]["name"],
                                     "uid": pod["metadata"]["uid"]}}
            if _pod_is_ready(pod):
                ready_addresses.append(address)
            else:
                unready_addresses.append(address)

        ports = []
        for port in spec.get("ports") or []:
            target = port.get("targetPort", port.get("port"))
            entry = {"port": target if isinstance(target, int) else port.get(
                "port"), "protocol": port.get("protocol", "TCP")}
            if port.get("name"):
                entry["name"] = port["name"]
            ports.append(entry)

        self._write_endpoints(service, ready_addresses, unready_addresses,
                              ports)
        self._write_endpoint_slice(service, ready_addresses,
                                   unready_addresses, ports)
        return None

    # -- Simulated load balancer -------------------------------------------
    #
    # Bare-metal clusters give LoadBalancer Services an address through a
    # controller such as MetalLB, which takes the address a Service requests
    # in spec.loadBalancerIP or in its annotation
    # metallb.universe.tf/loadBalancerIPs. This stand-in reports that
    # address in status.loadBalancer.ingress, as MetalLB does once it has
    # announced it. It routes no traffic, so a test that needs a server at
    # that address runs one itself. A LoadBalancer Service that requests no
    # address keeps an empty status, as it would with no controller.

    def _assign_load_balancer(self, service):
        """Set status.loadBalancer of a LoadBalancer Service; return the
        stored Service."""
        spec = service.get("spec") or {}
        if spec.get("type") != "LoadBalancer":
            return service
        annotations = service["metadata"].get("annotations") or {}
        requested = annotations.get(LOAD_BALANCER_IPS_ANNOTATION) or spec.get(
            "loadBalancerIP") or ""
        ingress = [{"ip": address.strip(), "ipMode": "VIP"}
                   for address in requested.split(",") if address.strip()]
        status = dict(service.get("status") or {})
        status["loadBalancer"] = {"ingress": ingress} if ingress else {}
        stored = self.api.system_update_status(SERVICES, service, status)
        return stored or service

    def _write_endpoints(self, service, ready, unready, ports):
        namespace = service["metadata"]["namespace"]
        name = service["metadata"]["name"]
        subset = {}
        if ready:
            subset["addresses"] = ready
        if unready:
            subset["notReadyAddresses"] = unready
        if subset:
            subset["ports"] = ports
        endpoints = {"apiVersion": "v1", "kind": "Endpoints",
                     "metadata": {"name": name, "namespace": namespace,
                                  "labels": dict(service["metadata"].get(
                                      "labels") or {})}}
        if subset:
            endpoints["subsets"] = [subset]
        current = self.store.get(ENDPOINTS, namespace, name)
        if current is not None:
            if current.get("subsets") == endpoints.get("subsets"):
                return
            endpoints["metadata"]["uid"] = current["metadata"]["uid"]
            endpoints["metadata"]["creationTimestamp"] = current["metadata"][
                "creationTimestamp"]
        self.api.system_put(ENDPOINTS, endpoints)

    def _write_endpoint_slice(self, service, ready, unready, ports):
        namespace = service["metadata"]["namespace"]
        service_name = service["metadata"]["name"]
        name = f"{service_name}-{short_hash(service['metadata']['uid'], 5)}"
        endpoints = []
        for address, is_ready in [(a, True) for a in ready] + [
                (a, False) for a in unready]:
            endpoints.append({"addresses": [address["ip"]],
                              "conditions": {"ready": is_ready,
                                             "serving": is_ready,
                                             "terminating": False},
                              "nodeName": address["nodeName"],
                              "targetRef": address["targetRef"]})
        slice_object = {
            "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": name, "namespace": namespace,
                         "labels": {
                             "kubernetes.io/service-name": service_name,
                             "endpointslice.kubernetes.io/managed-by":
                                 "endpointslice-controller.k8s.io"},
                         "ownerReferences": [owner_reference(service)]},
            "addressType": "IPv4", "endpoints": endpoints, "ports": ports}
        current = self.store.get(ENDPOINTSLICES, namespace, name)
        if current is not None:
            if (current.get("endpoints") == endpoints
                    and current.get("ports") == ports):
                return
            slice_object["metadata"]["uid"] = current["metadata"]["uid"]
            slice_object["metadata"]["creationTimestamp"] = current[
                "metadata"]["creationTimestamp"]
        self.api.system_put(ENDPOINTSLICES, slice_object)

    # -- Namespaces ----------------------------------------------------------

    def reconcile_namespace(self, namespace, key):
        if namespace is None:
            return None
        name = namespace["metadata"]["name"]
        if namespace["metadata"].get("deletionTimestamp"):
            remaining = self.api.delete_namespace_contents(name)
            if remaining:
                return 0.2
            if not namespace["metadata"].get("finalizers"):
                self.api.remove(NAMESPACES, "", name, "Background")
            return None
        if self.store.get(SERVICEACCOUNTS, name, "default") is None:
            self.api.system_put(SERVICEACCOUNTS, {
                "apiVersion": "v1", "kind": "ServiceAccount",
                "metadata": {"name": "default", "namespace": name}})
        if self.store.get(CONFIGMAPS, name, "kube-root-ca.crt") is None:
            self.api.system_put(CONFIGMAPS, {
                "apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "kube-root-ca.crt", "namespace": name,
                             "annotations": {
                                 "kubernetes.io/description":
                                     "Contains a CA bundle that can be used "
                                     "to verify the kube-apiserver when "
                                     "using internal endpoints such as the "
                                     "internal service IP or "
                                     "kubernetes.default.svc. No other "
                                     "usage is guaranteed across "
                                     "distributions of Kubernetes "
                                     "clusters."}},
                "data": {"ca.crt": self.ca_certificate_pem}})
        return None

    # -- APIServices ---------------------------------------------------------

    def reconcile_apiservice(self, apiservice, key):
        if apiservice is None:
            return None
        service_ref = (apiservice.get("spec") or {}).get("service")
        if not service_ref:
            available = condition("Available", "True", "Local",
                                  "Local APIServices are always available")
        else:
            namespace = service_ref.get("namespace", "")
            name = service_ref.get("name", "")
            service = self.store.get(SERVICES, namespace, name)
            if service is None:
                available = condition("Available", "False",
                                      "ServiceNotFound",
                                      f'service/{name} in "{namespace}" is '
                                      "not present")
            elif service_has_ready_endpoint(self.api, service):
                available = condition("Available", "True", "Passed",
                                      "all checks passed")
            else:
                available = condition("Available", "False",
                                      "MissingEndpoints",
                                      f'endpoints for service/{name} in '
                                      f'"{namespace}" have no addresses')
        old_status = apiservice.get("status") or {}
        status = {"conditions": merge_conditions(old_status.get("conditions"),
                                                 [available])}
        self.update_status(APISERVICES, apiservice, status)
        return None

    # -- CustomResourceDefinitions -----------------------------------------

    def reconcile_crd(self, crd, key):
        if crd is None:
            return None
        old_status = crd.get("status") or {}
        established = any(c.get("type") == "Established" and c.get(
            "status") == "True" for c in old_status.get("conditions") or [])
        if not established:
            remaining = self.remaining_delay(key, crd,
                                             "CustomResourceDefinition")
            if remaining > 0:
                return remaining

        spec = crd.get("spec") or {}
        names = dict(spec.get("names") or {})
        names.setdefault("singular", names.get("kind", "").lower())
        names.setdefault("listKind", names.get("kind", "") + "List")
        conflict = self._crd_name_conflict(crd)
        if conflict:
            conditions = [
                condition("NamesAccepted", "False", "NameConflict", conflict),
                condition("Established", "False", "NotAccepted",
                          "not all names are accepted"),
            ]
        else:
            self.api.catalog.register_crd(crd["metadata"]["name"],
                                          types_from_crd(crd))
            conditions = [
                condition("NamesAccepted", "True", "NoConflicts",
                          "no conflicts found"),
                condition("Established", "True", "InitialNamesAccepted",
                          "the initial names have been accepted"),
            ]

        stored = list(old_status.get("storedVersions") or [])
        for version in spec.get("versions") or []:
            if version.get("storage") and version["name"] not in stored:
                stored.append(version["name"])
        status = {"conditions": merge_conditions(old_status.get("conditions"),
                                                 conditions),
                  "acceptedNames": names if not conflict else
                  old_status.get("acceptedNames", {"plural": "", "kind": ""}),
                  "storedVersions": stored}
        self.update_status(CRDS, crd, status)
        return None

    def _crd_name_conflict(self, crd):
        spec = crd.get("spec") or {}
        names = spec.get("names") or {}
        for other in self.store.list(CRDS):
            if other["metadata"]["name"] == crd["metadata"]["name"]:
                continue
            other_spec = other.get("spec") or {}
            if other_spec.get("group") != spec.get("group"):
                continue
            other_names = other_spec.get("names") or {}
            if other_names.get("plural") == names.get("plural"):
                return f'"{names.get("plural")}" is already in use'
            if other_names.get("kind") == names.get("kind"):
                return f'"{names.get("kind")}" is already in use'
        return None

    # -- PersistentVolumeClaims ----------------------------------------------

    def reconcile_claim(self, claim, key):
        """Claims bind after the delay; no PersistentVolume is made."""
        if claim is None or claim["metadata"].get("deletionTimestamp"):
            return None
        if (claim.get("status") or {}).get("phase") == "Bound":
            return None
        ready, requeue = self.readiness(key, claim)
        if not ready:
            return requeue
        spec = claim.get("spec") or {}
        status = {"phase": "Bound",
                  "accessModes": spec.get("accessModes") or ["ReadWriteOnce"],
                  "capacity": {"storage": ((spec.get("resources") or {}).get(
                      "requests") or {}).get("storage", "1Gi")}}
        self.update_status(PVCS, claim, status)
        return None


def _node_ip(node):
    for address in (node.get("status") or {}).get("addresses") or []:
        if address.get("type") == "InternalIP":
            return address.get("address")
    return ""


def _pod_is_ready(pod):
    for entry in (pod.get("status") or {}).get("conditions") or []:
        if entry.get("type") == "Ready":
            return entry.get("status") == "True"
    return False


def _image_id(image):
    # The real kubelet reports the digest the runtime resolved. The stand-in
    # has one only when the image reference contains it.
    return image if "@sha256:" in image else ""


def _container_status(container, ready, started_at):
    status = {"name": container.get("name", ""),
              "image": container.get("image", ""),
              "imageID": _image_id(container.get("image", "")),
              "ready": ready, "restartCount": 0, "started": ready}
    if ready:
        status["state"] = {"running": {"startedAt": started_at}}
        status["containerID"] = "containerd://" + short_hash(
            [container.get("name"), started_at], 16)
    else:
        status["state"] = {"waiting": {"reason": "ContainerCreating"}}
    return status


def _init_container_status(container, ready):
    status = {"name": container.get("name", ""),
              "image": container.get("image", ""),
              "imageID": _image_id(container.get("image", "")),
              "ready": ready, "restartCount": 0}
    if ready:
        status["state"] = {"terminated": {"exitCode": 0,
                                          "reason": "Completed"}}
    else:
        status["state"] = {"waiting": {"reason": "PodInitializing"}}
    return status
