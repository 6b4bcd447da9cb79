"""Simulated controllers of add-ons: cert-manager and KServe.

They act only once the add-on's CRDs are established, since objects of
those kinds cannot exist before.

- cert-manager: Issuers and ClusterIssuers become Ready. A Certificate
  becomes Ready after the controller delay of kind Certificate, and its
  spec.secretName Secret gets a real key pair signed by the stand-in's CA
  (whatever the issuer). cainjector.py imitates cert-manager's CA injector,
  which fills caBundle fields from those Secrets.
- KServe: an InferenceService gets a predictor Deployment and Service
  named NAME-predictor, as in KServe's RawDeployment mode, with the image
  of the ServingRuntime or ClusterServingRuntime that supports its model
  format. It becomes Ready with status.url once that Deployment is
  Available. Serverless mode (Knative) is not simulated.
"""

import base64
import datetime
import json
import logging

from . import pki
from .control import UNREADY_ANNOTATION
from .controllers import (DEPLOYMENTS, SERVICES, condition, merge_conditions,
                          owner_reference)
from .util import clone, now_rfc3339

log = logging.getLogger("standin.controllers")

CERTIFICATES = ("cert-manager.io", "certificates")
ISSUERS = ("cert-manager.io", "issuers")
CLUSTER_ISSUERS = ("cert-manager.io", "clusterissuers")
INFERENCE_SERVICES = ("serving.kserve.io", "inferenceservices")
SERVING_RUNTIMES = ("serving.kserve.io", "servingruntimes")
CLUSTER_SERVING_RUNTIMES = ("serving.kserve.io", "clusterservingruntimes")
SECRETS = ("", "secrets")
CONFIGMAPS = ("", "configmaps")

# Model formats of the old predictor fields (spec.predictor.sklearn, ...).
LEGACY_PREDICTOR_FORMATS = ("sklearn", "xgboost", "tensorflow", "pytorch",
                            "onnx", "triton", "lightgbm", "paddle", "pmml",
                            "huggingface")

# KServe's default ingress domain and URL template (RawDeployment mode).
INGRESS_DOMAIN = "example.com"
CERTIFICATE_ANNOTATION = "cert-manager.io/certificate-name"
CERTIFICATE_HASH_ANNOTATION = "standin.mlboot.dev/certificate-spec-hash"


class AddonControllers:
    def __init__(self, controllers, ca_paths):
        self.controllers = controllers
        self.api = controllers.api
        self.store = controllers.store
        self.ca_paths = ca_paths
        controllers.register(CERTIFICATES, self.reconcile_certificate)
        controllers.register(ISSUERS, self.reconcile_issuer)
        controllers.register(CLUSTER_ISSUERS, self.reconcile_issuer)
        controllers.register(INFERENCE_SERVICES,
                             self.reconcile_inference_service,
                             dependents_of=[DEPLOYMENTS])

    # -- cert-manager --------------------------------------------------------

    def reconcile_issuer(self, issuer, key):
        if issuer is None:
            return None
        ready, requeue = self.controllers.readiness(key, issuer)
        old_status = issuer.get("status") or {}
        ready_condition = condition(
            "Ready", "True" if ready else "False",
            "KeyPairVerified" if ready else "Pending",
            "Signing CA verified" if ready else "Issuer is being set up")
        ready_condition["observedGeneration"] = issuer["metadata"].get(
            "generation", 1)
        status = dict(old_status)
        status["conditions"] = merge_conditions(old_status.get("conditions"),
                                                [ready_condition])
        self.controllers.update_status(key[0], issuer, status)
        return requeue

    def reconcile_certificate(self, certificate, key):
        if certificate is None:
            return None
        ready, requeue = self.controllers.readiness(key, certificate)
        old_status = certificate.get("status") or {}
        generation = certificate["metadata"].get("generation", 1)
        if not ready:
            pending = condition("Ready", "False", "DoesNotExist",
                                "Issuing certificate as Secret does not "
                                "exist")
            pending["observedGeneration"] = generation
            status = {"conditions": merge_conditions(
                old_status.get("conditions"), [pending])}
            self.controllers.update_status(CERTIFICATES, certificate, status)
            return requeue
        try:
            not_before, not_after = self._ensure_secret(certificate)
        except (pki.PkiError, OSError) as error:
            log.error("issuing certificate %s/%s failed: %s",
                      key[1], key[2], error)
            failed = condition("Ready", "False", "Failed", str(error))
            failed["observedGeneration"] = generation
            self.controllers.update_status(CERTIFICATES, certificate, {
                "conditions": merge_conditions(old_status.get("conditions"),
                                               [failed])})
            return 5.0
        ready_condition = condition("Ready", "True", "Ready",
                                    "Certificate is up to date and has not "
                                    "expired")
        ready_condition["observedGeneration"] = generation
        status = {"conditions": merge_conditions(old_status.get("conditions"),
                                                 [ready_condition]),
                  "notBefore": not_before, "notAfter": not_after,
                  "renewalTime": not_after, "revision": 1}
        self.controllers.update_status(CERTIFICATES, certificate, status)
        return None

    def _ensure_secret(self, certificate):
        """Create or refresh the Secret of a Certificate; return its
        validity as (notBefore, notAfter) timestamps."""
        spec = certificate.get("spec") or {}
        namespace = certificate["metadata"]["namespace"]
        secret_name = spec.get("secretName") or certificate["metadata"][
            "name"]
        dns_names = list(spec.get("dnsNames") or [])
        spec_hash = json.dumps([spec.get("commonName"), dns_names,
                                spec.get("ipAddresses")], sort_keys=True)

        existing = self.store.get(SECRETS, namespace, secret_name)
        annotations = (existing or {}).get("metadata", {}).get(
            "annotations") or {}
        validity = annotations.get("standin.mlboot.dev/validity", "")
        if existing is not None and annotations.get(
                CERTIFICATE_HASH_ANNOTATION) == spec_hash and validity:
            not_before, _, not_after = validity.partition("/")
            return not_before, not_after

        names = dns_names + list(spec.get("ipAddresses") or [])
        cert_pem, key_pem = pki.issue_in_memory(self.ca_paths,
                                                spec.get("commonName"), names)
        with open(self.ca_paths[0], "rb") as handle:
            ca_pem = handle.read()
        not_before = now_rfc3339()
        days = 90
        not_after = _add_days(not_before, days)

        secret = {"apiVersion": "v1", "kind": "Secret",
                  "type": "kubernetes.io/tls",
                  "metadata": {"name": secret_name, "namespace": namespace,
                               "labels": {"controller.cert-manager.io/fao":
                                          "true"},
                               "annotations": {
                                   CERTIFICATE_ANNOTATION:
                                       certificate["metadata"]["name"],
                                   "cert-manager.io/alt-names":
                                       ",".join(dns_names),
                                   "cert-manager.io/common-name":
                                       spec.get("commonName", ""),
                                   "cert-manager.io/issuer-name":
                                       (spec.get("issuerRef") or {}).get(
                                           "name", ""),
                                   "cert-manager.io/issuer-kind":
                                       (spec.get("issuerRef") or {}).get(
                                           "kind", "Issuer"),
                                   CERTIFICATE_HASH_ANNOTATION: spec_hash,
                                   "standin.mlboot.dev/validity":
                                       f"{not_before}/{not_after}"}},
                  "data": {"tls.crt": _b64(cert_pem), "tls.key": _b64(key_pem),
                           "ca.crt": _b64(ca_pem)}}
        if existing is not None:
            secret["metadata"]["uid"] = existing["metadata"]["uid"]
            secret["metadata"]["creationTimestamp"] = existing["metadata"][
                "creationTimestamp"]
        self.api.system_put(SECRETS, secret)
        return not_before, not_after

    # -- KServe --------------------------------------------------------------

    def reconcile_inference_service(self, service, key):
        if service is None or service["metadata"].get("deletionTimestamp"):
            return None
        namespace = service["metadata"]["namespace"]
        name = service["metadata"]["name"]
        old_status = service.get("status") or {}
        predictor_name = f"{name}-predictor"
        runtime, model_format = self._find_runtime(service)
        if runtime is None:
            message = ("No runtime found to support predictor with model "
                       f"type: {model_format}")
            self._set_service_status(service, old_status, False,
                                     "NoSupportingRuntime", message)
            return 5.0

        deployment = self.store.get(DEPLOYMENTS, namespace, predictor_name)
        if deployment is None:
            deployment = self._create_predictor(service, runtime,
                                                predictor_name)
        if self.store.get(SERVICES, namespace, predictor_name) is None:
            self._create_predictor_service(service, predictor_name)

        available = any(
            c.get("type") == "Available" and c.get("status") == "True"
            for c in (deployment.get("status") or {}).get("conditions") or [])
        if self.controllers.held_unready(service):
            available = False
        self._set_service_status(
            service, old_status, available,
            "" if available else "PredictorNotReady",
            "" if available else f'Deployment "{predictor_name}" is not '
                                 "available")
        return None

    def _find_runtime(self, service):
        predictor = (service.get("spec") or {}).get("predictor") or {}
        model = predictor.get("model") or {}
        model_format = (model.get("modelFormat") or {}).get("name")
        if not model_format:
            for legacy in LEGACY_PREDICTOR_FORMATS:
                if legacy in predictor:
                    model_format = legacy
                    model = predictor[legacy]
                    break

        namespace = service["metadata"]["namespace"]
        runtime_name = model.get("runtime")
        if runtime_name:
            runtime = self.store.get(SERVING_RUNTIMES, namespace,
                                     runtime_name) or self.store.get(
                CLUSTER_SERVING_RUNTIMES, "", runtime_name)
            return runtime, model_format

        # Candidates are the runtimes that support the format with
        # autoSelect and the predictor's protocol (default v1). As in
        # KServe, the highest priority wins, namespaced runtimes first.
        protocol = model.get("protocolVersion") or predictor.get(
            "protocolVersion") or "v1"
        candidates = []
        runtimes = [(0, r) for r in self.store.list(SERVING_RUNTIMES,
                                                    namespace)]
        runtimes += [(1, r) for r in self.store.list(
            CLUSTER_SERVING_RUNTIMES)]
        for scope_rank, runtime in runtimes:
            spec = runtime.get("spec") or {}
            if spec.get("disabled"):
                continue
            protocols = spec.get("protocolVersions") or ["v1"]
            if protocol not in protocols:
                continue
            for supported in spec.get("supportedModelFormats") or []:
                if supported.get("name") == model_format and supported.get(
                        "autoSelect"):
                    candidates.append((-int(supported.get("priority", 0)),
                                       scope_rank,
                                       runtime["metadata"]["name"], runtime))
        if not candidates:
            return None, model_format
        return min(candidates, key=lambda c: c[:3])[3], model_format

    def _storage_initializer_image(self):
        for config_map in self.store.list(CONFIGMAPS):
            if config_map["metadata"]["name"] != "inferenceservice-config":
                continue
            raw = (config_map.get("data") or {}).get("storageInitializer")
            try:
                return json.loads(raw or "{}").get("image")
            except ValueError:
                return None
        return None

    def _create_predictor(self, service, runtime, name):
        namespace = service["metadata"]["namespace"]
        service_name = service["metadata"]["name"]
        predictor = (service.get("spec") or {}).get("predictor") or {}
        runtime_containers = clone((runtime.get("spec") or {}).get(
            "containers") or [])
        containers = []
        for index, container in enumerate(runtime_containers):
            if index == 0:
                container["name"] = "kserve-container"
            containers.append(container)

        pod_spec = {"containers": containers}
        storage_uri = ((predictor.get("model") or {}).get("storageUri")
                       or next((predictor[f].get("storageUri")
                                for f in LEGACY_PREDICTOR_FORMATS
                                if isinstance(predictor.get(f), dict)),
                               None))
        initializer_image = self._storage_initializer_image()
        if storage_uri and initializer_image:
            pod_spec["initContainers"] = [{
                "name": "storage-initializer", "image": initializer_image,
                "args": [storage_uri, "/mnt/models"]}]

        labels = {"app": f"isvc.{name}",
                  "serving.kserve.io/inferenceservice": service_name,
                  "component": "predictor"}
        deployment = {
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": namespace,
                         "labels": dict(labels),
                         "ownerReferences": [owner_reference(service)],
                         "generation": 1},
            "spec": {"replicas": 1,
                     "selector": {"matchLabels": {"app": f"isvc.{name}"}},
                     "template": {"metadata": {"labels": dict(labels)},
                                  "spec": pod_spec}}}
        annotations = service["metadata"].get("annotations") or {}
        if annotations.get(UNREADY_ANNOTATION) == "true":
            deployment["metadata"]["annotations"] = {
                UNREADY_ANNOTATION: "true"}
        return self.api.system_put(DEPLOYMENTS, deployment)

    def _create_predictor_service(self, service, name):
        namespace = service["metadata"]["namespace"]
        self.api.system_put(SERVICES, {
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": namespace,
                         "ownerReferences": [owner_reference(service)]},
            "spec": {"type": "ClusterIP",
                     "clusterIP": self.api.allocator.cluster_ip(),
                     "selector": {"app": f"isvc.{name}"},
                     "ports": [{"name": "http", "port": 80, "protocol": "TCP",
                                "targetPort": 8080}]}})

    def _set_service_status(self, service, old_status, ready, reason,
                            message):
        namespace = service["metadata"]["namespace"]
        name = service["metadata"]["name"]
        flag = "True" if ready else "False"
        conditions = [condition("IngressReady", flag, reason, message),
                      condition("PredictorReady", flag, reason, message),
                      condition("Ready", flag, reason, message)]
        status = dict(old_status)
        status["conditions"] = merge_conditions(old_status.get("conditions"),
                                                conditions)
        status["observedGeneration"] = service["metadata"].get("generation",
                                                               1)
        if ready:
            internal = (f"http://{name}-predictor.{namespace}"
                        ".svc.cluster.local")
            status["url"] = f"http://{name}-{namespace}.{INGRESS_DOMAIN}"
            status["address"] = {"url": internal}
            status["components"] = {"predictor": {"url": internal}}
            status["modelStatus"] = {
                "states": {"activeModelState": "Loaded",
                           "targetModelState": "Loaded"},
                "transitionStatus": "UpToDate"}
        else:
            for field in ("url", "address", "components"):
                status.pop(field, None)
            status["modelStatus"] = {
                "states": {"activeModelState": "Pending",
                           "targetModelState": "Loaded"},
                "transitionStatus": "InProgress"}
        self.controllers.update_status(INFERENCE_SERVICES, service, status)


def _b64(data):
    return base64.b64encode(data).decode()


def _add_days(timestamp, days):
    start = datetime.datetime.strptime(timestamp, "%Y-%m-%dT%H:%M:%SZ")
    return (start + datetime.timedelta(days=days)).strftime(
        "%Y-%m-%dT%H:%M:%SZ")
