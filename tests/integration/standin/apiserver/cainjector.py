"""Imitation of cert-manager's cainjector.

cert-manager's cainjector copies a CA certificate into the caBundle fields
of objects annotated with one of:

- cert-manager.io/inject-ca-from: NAMESPACE/CERTIFICATE. The CA is the
  ca.crt of the Certificate's spec.secretName Secret, once the Certificate
  is Ready.
- cert-manager.io/inject-ca-from-secret: NAMESPACE/SECRET. The CA is the
  Secret's ca.crt, once the Secret exists.
- cert-manager.io/inject-apiserver-ca: "true". The CA is the stand-in's
  own CA.

The fields filled are webhooks[*].clientConfig.caBundle of Validating- and
MutatingWebhookConfigurations, spec.conversion.webhook.clientConfig.caBundle
of CustomResourceDefinitions whose conversion strategy is Webhook, and
spec.caBundle of APIServices.

cert-manager's own webhook names no Certificate: started with
--dynamic-serving-ca-secret-name and --dynamic-serving-ca-secret-namespace,
it creates that Secret itself, with a CA, and its configurations inject
from the Secret. So once a Deployment with those arguments is Available,
the stand-in creates the Secret: ca.crt is the stand-in's CA, and tls.crt
and tls.key a key pair for the --dynamic-serving-dns-names, signed by it.

Differences from the real cainjector (cert-manager 1.19): it does not check
that the Secret of inject-ca-from-secret carries
cert-manager.io/allow-direct-injection, nor that the Secret of a Certificate
names it in cert-manager.io/certificate-name. It runs in the stand-in
whether or not cert-manager is installed. It polls every
POLL_SECONDS until the source is ready, where the real one watches
Certificates and Secrets.
"""

import base64
import logging

from . import managedfields, pki
from .addon_controllers import CERTIFICATES, SECRETS
from .controllers import APISERVICES, CRDS, DEPLOYMENTS

log = logging.getLogger("standin.controllers")

VALIDATING_WEBHOOKS = ("admissionregistration.k8s.io",
                       "validatingwebhookconfigurations")
MUTATING_WEBHOOKS = ("admissionregistration.k8s.io",
                     "mutatingwebhookconfigurations")
FROM_CERTIFICATE = "cert-manager.io/inject-ca-from"
FROM_SECRET = "cert-manager.io/inject-ca-from-secret"
FROM_APISERVER = "cert-manager.io/inject-apiserver-ca"
FIELD_MANAGER = "cert-manager-cainjector"
# Seconds between checks of a CA source that is not ready yet.
POLL_SECONDS = 0.5
# Arguments of cert-manager's webhook (cmd/webhook in cert-manager 1.19).
DYNAMIC_CA_NAME = "--dynamic-serving-ca-secret-name="
DYNAMIC_CA_NAMESPACE = "--dynamic-serving-ca-secret-namespace="
DYNAMIC_DNS_NAMES = "--dynamic-serving-dns-names="


class CAInjector:
    def __init__(self, controllers, ca_paths):
        self.controllers = controllers
        self.ca_paths = ca_paths
        self.api = controllers.api
        self.store = controllers.store
        self.apiserver_ca = base64.b64encode(
            controllers.ca_certificate_pem.encode("ascii")).decode("ascii")
        for group_resource in (VALIDATING_WEBHOOKS, MUTATING_WEBHOOKS,
                               CRDS, APISERVICES):
            self._chain(group_resource, self.inject)
        self._chain(DEPLOYMENTS, self.serve_dynamic_ca)

    def _chain(self, group_resource, step):
        """Run the injection after the kind's existing controller, if any;
        the sooner of the two requeue delays wins."""
        previous = self.controllers.handlers.get(group_resource)

        def handler(obj, key):
            requeue = previous(obj, key) if previous else None
            # The previous controller may have written a new status.
            current = self.store.get(group_resource, key[1], key[2])
            step_requeue = step(group_resource, current)
            delays = [d for d in (requeue, step_requeue) if d is not None]
            return min(delays) if delays else None

        self.controllers.handlers[group_resource] = handler

    def inject(self, group_resource, obj):
        """Fill the caBundle fields of obj when it is annotated and its CA
        source is ready; return a requeue delay while it is not."""
        if obj is None or obj["metadata"].get("deletionTimestamp"):
            return None
        annotations = obj["metadata"].get("annotations") or {}
        if FROM_CERTIFICATE in annotations:
            ca_bundle = self._ca_from_certificate(annotations[FROM_CERTIFICATE])
        elif FROM_SECRET in annotations:
            ca_bundle = self._ca_from_secret(annotations[FROM_SECRET])
        elif annotations.get(FROM_APISERVER) == "true":
            ca_bundle = self.apiserver_ca
        else:
            return None
        if not ca_bundle:
            return POLL_SECONDS

        new = _with_ca_bundle(group_resource, obj, ca_bundle)
        if new is None:
            return None
        if not self._store_update(group_resource, obj, new):
            return 0.05
        metadata = obj["metadata"]
        log.info("cainjector: injected caBundle into %s %s",
                 obj.get("kind", ""), metadata["name"])
        return None

    def serve_dynamic_ca(self, group_resource, deployment):
        """Create the CA Secret of cert-manager's webhook once its
        Deployment is Available, as the webhook does when it starts."""
        if deployment is None or deployment["metadata"].get(
                "deletionTimestamp"):
            return None
        namespace = deployment["metadata"]["namespace"]
        arguments = []
        pod_spec = ((deployment.get("spec") or {}).get("template") or {}).get(
            "spec") or {}
        for container in pod_spec.get("containers") or []:
            arguments += (container.get("command") or []) + (
                container.get("args") or [])
        arguments = [a.replace("$(POD_NAMESPACE)", namespace)
                     for a in arguments if isinstance(a, str)]
        secret_name = _argument_values(arguments, DYNAMIC_CA_NAME)
        if not secret_name:
            return None
        secret_namespace = _argument_values(arguments, DYNAMIC_CA_NAMESPACE)
        secret_namespace = secret_namespace[-1] if secret_namespace \
            else namespace
        conditions = (deployment.get("status") or {}).get("conditions") or []
        if not any(c.get("type") == "Available" and c.get("status") == "True"
                   for c in conditions):
            return None
        if self.store.get(SECRETS, secret_namespace,
                          secret_name[-1]) is not None:
            return None

        dns_names = _argument_values(arguments, DYNAMIC_DNS_NAMES)
        cert_pem, key_pem = pki.issue_in_memory(
            self.ca_paths, dns_names[0] if dns_names else None, dns_names)
        with open(self.ca_paths[0], "rb") as handle:
            ca_pem = handle.read()
        self.api.system_put(SECRETS, {
            "apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
            "metadata": {"name": secret_name[-1],
                         "namespace": secret_namespace},
            "data": {"ca.crt": _b64(ca_pem), "tls.crt": _b64(cert_pem),
                     "tls.key": _b64(key_pem)}})
        log.info("cainjector: %s/%s created the serving CA Secret %s/%s",
                 namespace, deployment["metadata"]["name"], secret_namespace,
                 secret_name[-1])
        return None

    def _ca_from_certificate(self, reference):
        namespace, _, name = reference.partition("/")
        certificate = self.store.get(CERTIFICATES, namespace, name)
        if certificate is None:
            return None
        conditions = (certificate.get("status") or {}).get("conditions") or []
        if not any(c.get("type") == "Ready" and c.get("status") == "True"
                   for c in conditions):
            return None
        secret_name = (certificate.get("spec") or {}).get("secretName") or name
        return self._ca_from_secret(f"{namespace}/{secret_name}")

    def _ca_from_secret(self, reference):
        namespace, _, name = reference.partition("/")
        secret = self.store.get(SECRETS, namespace, name)
        if secret is None:
            return None
        return (secret.get("data") or {}).get("ca.crt") or None

    def _store_update(self, group_resource, old, new):
        """Store new unless old changed meanwhile, as an Update by the
        cainjector's field manager. Returns whether it was stored."""
        metadata = old["metadata"]
        with self.store.lock:
            current = self.store.get(group_resource,
                                     metadata.get("namespace", ""),
                                     metadata["name"])
            if current is None or current["metadata"][
                    "resourceVersion"] != metadata["resourceVersion"]:
                return False
            if "generation" in metadata:
                new["metadata"]["generation"] = metadata["generation"] + 1
            # CRDs and APIServices have a status subresource, webhook
            # configurations have no status.
            managedfields.track_update(current, new, FIELD_MANAGER,
                                       current.get("apiVersion", ""),
                                       group_resource in (CRDS, APISERVICES),
                                       False)
            self.store.put(group_resource, new)
            return True


def _argument_values(arguments, prefix):
    return [a[len(prefix):] for a in arguments if a.startswith(prefix)]


def _b64(data):
    return base64.b64encode(data).decode("ascii")


def _with_ca_bundle(group_resource, obj, ca_bundle):
    """Return a copy of obj with ca_bundle in its caBundle fields, or None
    when they already hold it or obj has none."""
    new = dict(obj)
    new["metadata"] = dict(obj["metadata"])
    changed = False

    def fill(client_config):
        nonlocal changed
        if client_config.get("caBundle") == ca_bundle:
            return client_config
        changed = True
        return dict(client_config, caBundle=ca_bundle)

    if group_resource in (VALIDATING_WEBHOOKS, MUTATING_WEBHOOKS):
        new["webhooks"] = [
            dict(webhook, clientConfig=fill(webhook.get("clientConfig") or {}))
            for webhook in obj.get("webhooks") or []]
    elif group_resource == CRDS:
        conversion = (obj.get("spec") or {}).get("conversion") or {}
        if conversion.get("strategy") != "Webhook":
            return None
        webhook = conversion.get("webhook") or {}
        webhook = dict(webhook,
                       clientConfig=fill(webhook.get("clientConfig") or {}))
        new["spec"] = dict(obj["spec"],
                           conversion=dict(conversion, webhook=webhook))
    elif group_resource == APISERVICES:
        spec = obj.get("spec") or {}
        if not spec.get("service"):
            return None
        if spec.get("caBundle") != ca_bundle:
            changed = True
            new["spec"] = dict(spec, caBundle=ca_bundle)
    return new if changed else None
