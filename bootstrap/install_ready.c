/*
 * Readiness gates, evaluated on the live objects the API server returns,
 * and the webhook rules that decide which objects wait for a webhook.
 * Nothing here talks to the network.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "install.h"

static bool kind_is(const char *api_version, const char *kind, const char *want_group, const char *want_kind)
{
	size_t len = strlen(want_group);

	if (!api_version || !kind || strcmp(kind, want_kind) != 0)
		return false;
	if (len == 0)
		return strchr(api_version, '/') == NULL;
	return strncmp(api_version, want_group, len) == 0 && api_version[len] == '/';
}

bool install_kind_has_gate(const char *api_version, const char *kind)
{
	return kind_is(api_version, kind, "apps", "Deployment") ||
	       kind_is(api_version, kind, "apps", "StatefulSet") ||
	       kind_is(api_version, kind, "apps", "DaemonSet") ||
	       kind_is(api_version, kind, "batch", "Job") ||
	       kind_is(api_version, kind, "apiregistration.k8s.io", "APIService") ||
	       kind_is(api_version, kind, "apiextensions.k8s.io", "CustomResourceDefinition") ||
	       kind_is(api_version, kind, "admissionregistration.k8s.io", "ValidatingWebhookConfiguration") ||
	       kind_is(api_version, kind, "admissionregistration.k8s.io", "MutatingWebhookConfiguration") ||
	       kind_is(api_version, kind, "serving.kserve.io", "InferenceService");
}

/* The status of condition type, or NULL when the object has no such condition. */
static const char *condition_status(const struct doc_node *object, const char *type, const char **reason,
				    const char **message)
{
	const struct doc_node *conditions = doc_find(object, "status", "conditions", NULL);

	if (reason)
		*reason = NULL;
	if (message)
		*message = NULL;
	if (!conditions || conditions->type != DOC_SEQ)
		return NULL;
	for (size_t i = 0; i < conditions->count; i++) {
		const struct doc_node *condition = conditions->items[i];

		if (doc_string_equals(doc_get(condition, "type"), type)) {
			if (reason)
				*reason = doc_get_string(condition, "reason");
			if (message)
				*message = doc_get_string(condition, "message");
			return doc_get_string(condition, "status");
		}
	}
	return NULL;
}

static long long integer_at(const struct doc_node *object, const char *section, const char *key,
			    long long fallback)
{
	const struct doc_node *node = doc_find(object, section, key, NULL);

	return node && node->type == DOC_INT ? node->integer : fallback;
}

static long long metadata_generation(const struct doc_node *object)
{
	return integer_at(object, "metadata", "generation", 0);
}

static bool generation_observed(const struct doc_node *object, char *why, size_t size)
{
	long long observed = integer_at(object, "status", "observedGeneration", -1);

	/* An object without a generation (not from an API server) has nothing to observe. */
	if (metadata_generation(object) > 0 && observed < metadata_generation(object)) {
		snprintf(why, size, "its controller has not seen generation %lld yet (observed %lld)",
			 metadata_generation(object), observed);
		return false;
	}
	return true;
}

static int deployment_ready(const struct doc_node *object, char *why, size_t size)
{
	long long replicas = integer_at(object, "spec", "replicas", 1);
	long long updated = integer_at(object, "status", "updatedReplicas", 0);
	long long available = integer_at(object, "status", "availableReplicas", 0);
	const char *reason, *message;
	const char *status;

	if (!generation_observed(object, why, size))
		return 0;
	status = condition_status(object, "Progressing", &reason, &message);
	if (status && strcmp(status, "False") == 0 && reason && strcmp(reason, "ProgressDeadlineExceeded") == 0) {
		snprintf(why, size, "its rollout exceeded its progress deadline: %s", message ? message : reason);
		return -EIO;
	}
	status = condition_status(object, "Available", NULL, NULL);
	if (!status || strcmp(status, "True") != 0) {
		snprintf(why, size, "condition Available is %s", status ? status : "not reported yet");
		return 0;
	}
	if (updated < replicas || available < replicas) {
		snprintf(why, size, "%lld of %lld replicas updated, %lld available", updated, replicas, available);
		return 0;
	}
	return 1;
}

static int statefulset_ready(const struct doc_node *object, char *why, size_t size)
{
	long long replicas = integer_at(object, "spec", "replicas", 1);
	long long ready = integer_at(object, "status", "readyReplicas", 0);
	long long updated = integer_at(object, "status", "updatedReplicas", 0);

	if (!generation_observed(object, why, size))
		return 0;
	if (ready < replicas || updated < replicas) {
		snprintf(why, size, "%lld of %lld replicas ready, %lld updated", ready, replicas, updated);
		return 0;
	}
	return 1;
}

static int daemonset_ready(const struct doc_node *object, char *why, size_t size)
{
	long long desired = integer_at(object, "status", "desiredNumberScheduled", -1);
	long long ready = integer_at(object, "status", "numberReady", 0);
	long long updated = integer_at(object, "status", "updatedNumberScheduled", 0);

	if (!generation_observed(object, why, size))
		return 0;
	if (desired < 0) {
		snprintf(why, size, "its controller has not scheduled it yet");
		return 0;
	}
	if (ready < desired || updated < desired) {
		snprintf(why, size, "%lld of %lld pods ready, %lld updated", ready, desired, updated);
		return 0;
	}
	return 1;
}

static int job_ready(const struct doc_node *object, char *why, size_t size)
{
	const char *reason, *message;
	const char *status = condition_status(object, "Failed", &reason, &message);

	if (status && strcmp(status, "True") == 0) {
		snprintf(why, size, "the job failed: %s", message ? message : reason ? reason : "no reason given");
		return -EIO;
	}
	status = condition_status(object, "Complete", NULL, NULL);
	if (!status || strcmp(status, "True") != 0) {
		snprintf(why, size, "not complete yet (%lld succeeded)", integer_at(object, "status", "succeeded", 0));
		return 0;
	}
	return 1;
}

static int condition_true(const struct doc_node *object, const char *type, char *why, size_t size)
{
	const char *reason, *message;
	const char *status = condition_status(object, type, &reason, &message);

	if (!status || strcmp(status, "True") != 0) {
		snprintf(why, size, "condition %s is %s%s%s", type, status ? status : "not reported yet",
			 message ? ": " : reason ? ": " : "", message ? message : reason ? reason : "");
		return 0;
	}
	return 1;
}

bool install_webhook_wants_injection(const struct doc_node *configuration)
{
	static const char *const annotations[] = {
		"cert-manager.io/inject-ca-from",
		"cert-manager.io/inject-ca-from-secret",
		"cert-manager.io/inject-apiserver-ca",
	};
	const struct doc_node *map = doc_find(configuration, "metadata", "annotations", NULL);

	for (size_t i = 0; i < ARRAY_SIZE(annotations); i++)
		if (doc_get(map, annotations[i]))
			return true;
	return false;
}

/* A webhook configuration's own part of the gate: the caBundle its annotations promise. */
static int webhook_configuration_ready(const struct doc_node *object, char *why, size_t size)
{
	const struct doc_node *webhooks = doc_get(object, "webhooks");

	if (!install_webhook_wants_injection(object) || !webhooks || webhooks->type != DOC_SEQ)
		return 1;
	for (size_t i = 0; i < webhooks->count; i++) {
		const char *ca = doc_find_string(webhooks->items[i], "clientConfig", "caBundle", NULL);

		if (!ca || !*ca) {
			snprintf(why, size, "webhook '%s' has no caBundle yet (it is annotated for injection)",
				 doc_get_string(webhooks->items[i], "name") ? doc_get_string(webhooks->items[i], "name")
									    : "");
			return 0;
		}
	}
	return 1;
}

int install_ready_evaluate(const struct doc_node *live, char *why, size_t why_size)
{
	const char *api_version = doc_get_string(live, "apiVersion");
	const char *kind = doc_get_string(live, "kind");

	snprintf(why, why_size, "ready");
	if (kind_is(api_version, kind, "apps", "Deployment"))
		return deployment_ready(live, why, why_size);
	if (kind_is(api_version, kind, "apps", "StatefulSet"))
		return statefulset_ready(live, why, why_size);
	if (kind_is(api_version, kind, "apps", "DaemonSet"))
		return daemonset_ready(live, why, why_size);
	if (kind_is(api_version, kind, "batch", "Job"))
		return job_ready(live, why, why_size);
	if (kind_is(api_version, kind, "apiregistration.k8s.io", "APIService"))
		return condition_true(live, "Available", why, why_size);
	if (kind_is(api_version, kind, "apiextensions.k8s.io", "CustomResourceDefinition"))
		return condition_true(live, "Established", why, why_size);
	if (kind_is(api_version, kind, "serving.kserve.io", "InferenceService"))
		return condition_true(live, "Ready", why, why_size);
	if (kind_is(api_version, kind, "admissionregistration.k8s.io", "ValidatingWebhookConfiguration") ||
	    kind_is(api_version, kind, "admissionregistration.k8s.io", "MutatingWebhookConfiguration"))
		return webhook_configuration_ready(live, why, why_size);
	return 1;
}

/* Whether a rule list (apiGroups, apiVersions, resources, operations) contains value or "*". */
static bool list_has(const struct doc_node *list, const char *value)
{
	if (!list || list->type != DOC_SEQ)
		return false;
	for (size_t i = 0; i < list->count; i++)
		if (doc_string_equals(list->items[i], "*") || doc_string_equals(list->items[i], value))
			return true;
	return false;
}

/* Whether a rule lists the resource itself, all resources, or the resource with all its subresources. */
static bool resources_match(const struct doc_node *resources, const char *resource)
{
	char with_subresources[300];

	if (list_has(resources, resource) || list_has(resources, "*/*"))
		return true;
	snprintf(with_subresources, sizeof(with_subresources), "%s/*", resource);
	return list_has(resources, with_subresources);
}

static bool rule_matches(const struct doc_node *rule, const char *group, const char *version,
			 const char *resource, bool namespaced)
{
	const char *scope = doc_get_string(rule, "scope");

	if (!list_has(doc_get(rule, "operations"), "CREATE") && !list_has(doc_get(rule, "operations"), "UPDATE"))
		return false;
	if (!list_has(doc_get(rule, "apiGroups"), group))
		return false;
	/* matchPolicy Equivalent (the default) sends other versions of the same resource too. */
	(void)version;
	if (!resources_match(doc_get(rule, "resources"), resource))
		return false;
	if (scope && strcmp(scope, "Namespaced") == 0 && !namespaced)
		return false;
	if (scope && strcmp(scope, "Cluster") == 0 && namespaced)
		return false;
	return true;
}

bool install_webhook_matches(const struct doc_node *configuration, const char *group, const char *version,
			     const char *resource, bool namespaced)
{
	const struct doc_node *webhooks = doc_get(configuration, "webhooks");

	if (!webhooks || webhooks->type != DOC_SEQ || !resource)
		return false;
	if (strcmp(group, "admissionregistration.k8s.io") == 0)
		return false;    /* webhooks are never called for webhook configurations */
	for (size_t i = 0; i < webhooks->count; i++) {
		const struct doc_node *webhook = webhooks->items[i];
		const char *policy = doc_get_string(webhook, "failurePolicy");
		const struct doc_node *rules = doc_get(webhook, "rules");

		if (policy && strcmp(policy, "Ignore") == 0)
			continue;
		if (!doc_find(webhook, "clientConfig", "service", NULL))
			continue;
		if (!rules || rules->type != DOC_SEQ)
			continue;
		for (size_t k = 0; k < rules->count; k++)
			if (rule_matches(rules->items[k], group, version, resource, namespaced))
				return true;
	}
	return false;
}

bool install_is_webhook_rejection(long status, const char *message)
{
	return status == 500 && message && strstr(message, "failed calling webhook") != NULL;
}
