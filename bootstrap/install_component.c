/*
 * One component's steps: apply/COMPONENT/WAVE for each wave that has
 * objects, then wait/COMPONENT; and the readiness polling they share with
 * the model and check steps.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "install.h"
#include "install_private.h"

#define WHY_MAX 512

static bool kind_equals(const struct install_object *object, const char *group_prefix, const char *kind)
{
	const char *api_version = doc_get_string(object->doc, "apiVersion");
	const char *object_kind = doc_get_string(object->doc, "kind");

	return api_version && object_kind && strcmp(object_kind, kind) == 0 &&
	       strncmp(api_version, group_prefix, strlen(group_prefix)) == 0;
}

static bool is_webhook_configuration(const struct install_object *object)
{
	return kind_equals(object, "admissionregistration.k8s.io/", "ValidatingWebhookConfiguration") ||
	       kind_equals(object, "admissionregistration.k8s.io/", "MutatingWebhookConfiguration");
}

/*
 * Whether the Endpoints of a Service list a ready address. A list with a
 * field selector is used instead of a GET, so that a Service whose
 * Endpoints do not exist yet costs no failed request.
 */
static int service_has_endpoint(struct install *install, const char *namespace, const char *name,
				 char *why, size_t size)
{
	struct doc_node *list = NULL;
	const struct doc_node *items;
	char *path = NULL;
	int r, ready = 0;

	if (asprintf(&path, "/api/v1/namespaces/%s/endpoints?fieldSelector=metadata.name%%3D%s", namespace,
		     name) < 0)
		return -ENOMEM;
	r = kube_get(install->client, path, &list, NULL);
	free(path);
	if (r < 0) {
		snprintf(why, size, "cannot read the Endpoints of service '%s/%s': %s", namespace, name,
			 kube_last_error());
		return 0;
	}
	items = doc_get(list, "items");
	for (size_t i = 0; items && items->type == DOC_SEQ && i < items->count; i++) {
		const struct doc_node *subsets = doc_get(items->items[i], "subsets");

		for (size_t k = 0; subsets && subsets->type == DOC_SEQ && k < subsets->count; k++) {
			const struct doc_node *addresses = doc_get(subsets->items[k], "addresses");

			if (addresses && addresses->type == DOC_SEQ && addresses->count > 0)
				ready = 1;
		}
	}
	if (!ready)
		snprintf(why, size, "service '%s/%s' behind its webhook has no ready endpoint", namespace, name);
	doc_free(list);
	return ready;
}

/* The webhook part of a gate: each webhook's Service has a ready endpoint. */
static int webhook_backends_ready(struct install *install, const struct doc_node *live, char *why, size_t size)
{
	const struct doc_node *webhooks = doc_get(live, "webhooks");

	for (size_t i = 0; webhooks && webhooks->type == DOC_SEQ && i < webhooks->count; i++) {
		const struct doc_node *service = doc_find(webhooks->items[i], "clientConfig", "service", NULL);
		const char *namespace = doc_get_string(service, "namespace");
		const char *name = doc_get_string(service, "name");
		int r;

		if (!namespace || !name)
			continue;
		r = service_has_endpoint(install, namespace, name, why, size);
		if (r <= 0)
			return r;
	}
	return 1;
}

/* Evaluates one object's gate against the live object: 1 ready, 0 not yet, negative failed for good. */
static int object_ready(struct install *install, struct install_object *object, char *why, size_t size)
{
	struct doc_node *live = NULL;
	char *message = NULL;
	int r;

	if (!object->path) {
		r = install_object_resolve(install, object, NULL);
		if (r < 0) {
			snprintf(why, size, "%s", kube_last_error());
			return 0;
		}
	}
	r = kube_get(install->client, object->path, &live, &message);
	if (r == -ENOENT) {
		snprintf(why, size, "it does not exist (was it deleted?)");
		r = 0;
		goto out;
	}
	if (r < 0) {
		snprintf(why, size, "cannot read it: %s", message ? message : kube_last_error());
		r = 0;
		goto out;
	}
	r = install_ready_evaluate(live, why, size);
	if (r == 1 && is_webhook_configuration(object))
		r = webhook_backends_ready(install, live, why, size);
out:
	free(message);
	doc_free(live);
	return r;
}

/*
 * Checks that cert-manager serves: a server-side dry run of an Issuer
 * must pass its webhook. Returns 1 when it passed, 0 when not yet.
 */
static int issuer_probe(struct install *install, const char *namespace, char *why, size_t size)
{
	static const char probe_format[] =
		"{\"apiVersion\":\"cert-manager.io/v1\",\"kind\":\"Issuer\",\"metadata\":{\"name\":"
		"\"mlboot-readiness-probe\",\"namespace\":\"%s\"},\"spec\":{\"selfSigned\":{}}}";
	struct install_object probe = { 0 };
	struct kube_response response;
	struct doc_error error;
	char text[512];
	int r, ready = 0;

	snprintf(text, sizeof(text), probe_format, namespace);
	r = doc_parse(text, strlen(text), NULL, &probe.doc, &error);
	if (r < 0)
		return r;
	r = install_object_resolve(install, &probe, NULL);
	if (r < 0) {
		snprintf(why, size, "cert-manager's Issuer kind is not served: %s", kube_last_error());
		goto out;
	}
	r = install_send_apply(install->client, &probe, true, &response);
	if (r == 0 && response.status >= 200 && response.status <= 299) {
		ready = 1;
	} else if (r == 0) {
		char *message = kube_status_message(&response.body);

		snprintf(why, size, "a dry run of an Issuer was rejected (HTTP %ld): %s", response.status,
			 message ? message : "no message");
		free(message);
	} else {
		snprintf(why, size, "a dry run of an Issuer failed: %s", kube_last_error());
	}
	kube_response_release(&response);
	r = ready;
out:
	doc_free(probe.doc);
	free(probe.path);
	return r;
}

static bool component_defines_issuers(const struct install_component *component)
{
	for (size_t i = 0; i < component->object_count; i++)
		if (component->objects[i].wave == INSTALL_WAVE_CRDS &&
		    doc_string_equals(doc_find(component->objects[i].doc, "metadata", "name", NULL),
				      "issuers.cert-manager.io"))
			return true;
	return false;
}

/*
 * Polls the gates of objects (and the Issuer probe when issuer_namespace
 * is set) until every one passes or deadline_ms. With deadline_ms 0 each
 * gate is evaluated once. On a timeout, every object still waiting is
 * logged with the reason.
 */
int install_wait_ready(struct install *install, const char *component_name, struct install_object **objects,
		       size_t count, const char *issuer_namespace, int64_t deadline_ms)
{
	bool *ready = calloc(count + 1, sizeof(*ready));
	char (*why)[WHY_MAX] = calloc(count + 1, WHY_MAX);
	char issuer_why[WHY_MAX] = "";
	bool issuer_ready = issuer_namespace == NULL;
	long pause = INSTALL_POLL_FIRST_MS;
	int64_t started = install_now_ms();
	int r = 0;

	if (!ready || !why) {
		r = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < count; i++)
		ready[i] = !install_kind_has_gate(doc_get_string(objects[i]->doc, "apiVersion"),
						  doc_get_string(objects[i]->doc, "kind"));
	for (;;) {
		size_t waiting = 0;

		for (size_t i = 0; i < count; i++) {
			if (ready[i])
				continue;
			r = object_ready(install, objects[i], why[i], WHY_MAX);
			if (r < 0) {
				log_error("component '%s': %s failed: %s", component_name, objects[i]->description, why[i]);
				install_set_failure(install, "%s failed: %s", objects[i]->description, why[i]);
				r = MLB_EFAILED;
				goto out;
			}
			ready[i] = r == 1;
			if (!ready[i])
				waiting++;
		}
		if (!issuer_ready && waiting == 0) {
			r = issuer_probe(install, issuer_namespace, issuer_why, sizeof(issuer_why));
			if (r < 0)
				goto out;
			issuer_ready = r == 1;
		}
		if (waiting == 0 && issuer_ready)
			break;
		if (install_now_ms() >= deadline_ms) {
			size_t shown = 0;

			for (size_t i = 0; i < count; i++) {
				if (ready[i])
					continue;
				if (shown++ == 0)
					install_set_failure(install, "%zu objects not ready; first: %s: %s", waiting,
							    objects[i]->description, why[i]);
				log_error("component '%s': %s is not ready: %s", component_name, objects[i]->description,
					  why[i]);
			}
			if (!issuer_ready && waiting == 0) {
				install_set_failure(install, "cert-manager rejects a dry run of an Issuer: %s", issuer_why);
				log_error("component '%s': cert-manager rejects a dry run of an Issuer: %s", component_name,
					  issuer_why);
			}
			if (deadline_ms > 0)
				log_error("component '%s': not ready after %lld s, the component timeout", component_name,
					  (long long)((install_now_ms() - started) / 1000));
			r = -ETIMEDOUT;
			goto out;
		}
		install_sleep_ms(pause);
		pause = pause * 2 > INSTALL_POLL_MAX_MS ? INSTALL_POLL_MAX_MS : pause * 2;
	}
	r = 0;
out:
	free(ready);
	free(why);
	return r;
}

/* Whether object is one that a webhook configuration of the component would be called for. */
static int held_by_webhook(struct install *install, struct install_component *component,
			   struct install_object *object, bool *held)
{
	const struct kube_resource *resource;
	int r;

	*held = false;
	r = install_object_resolve(install, object, &resource);
	if (r < 0) {
		log_error("component '%s': cannot apply %s: %s", component->bundle->name, object->description,
			  kube_last_error());
		install_set_failure(install, "cannot apply %s: %s", object->description, kube_last_error());
		return r;
	}
	for (size_t i = 0; i < component->object_count; i++) {
		struct install_object *configuration = &component->objects[i];

		if (is_webhook_configuration(configuration) &&
		    install_webhook_matches(configuration->doc, resource->group, resource->version, resource->name,
					    resource->namespaced)) {
			log_debug("holding %s until webhook configuration %s serves", object->description,
				  configuration->description);
			*held = true;
			return 0;
		}
	}
	return 0;
}

int64_t install_component_deadline(const struct install *install)
{
	unsigned seconds = install->config.component_timeout ? install->config.component_timeout
							     : CONFIG_DEFAULT_COMPONENT_TIMEOUT;
	int64_t deadline = install_now_ms() + (int64_t)seconds * 1000;

	if (install->install_deadline_ms > 0 && install->install_deadline_ms < deadline)
		deadline = install->install_deadline_ms;
	return deadline;
}

static void step_name(char *out, size_t size, const struct install_component *component, enum install_wave wave)
{
	snprintf(out, size, "apply/%s/%s", component->bundle->name, install_wave_name(wave));
}

static int record_failed(struct install *install, const char *step, const char *digest, int r)
{
	if (!install->failure[0])
		install_set_failure(install, "%s", mlb_strerror(r));
	install_step_record(install, step, digest, JOURNAL_FAILED, install->failure);
	return r;
}

int install_component_run(struct install *install, struct install_component *component)
{
	const char *name = component->bundle->name;
	struct install_object **now = NULL, **held = NULL, **gated = NULL;
	size_t held_count = 0, gated_count = 0;
	bool waiting_steps[INSTALL_WAVE_COUNT] = { false };
	bool has_webhooks = false;
	const char *current_digest = NULL;
	char step[512];
	int64_t deadline = install_component_deadline(install);
	int r = -ENOMEM;

	now = calloc(component->object_count + 1, sizeof(*now));
	held = calloc(component->object_count + 1, sizeof(*held));
	gated = calloc(component->object_count + 1, sizeof(*gated));
	if (!now || !held || !gated)
		goto out;
	for (size_t i = 0; i < component->object_count; i++)
		if (is_webhook_configuration(&component->objects[i]))
			has_webhooks = true;
	install->failure[0] = '\0';

	for (int wave = 0; wave < INSTALL_WAVE_COUNT; wave++) {
		const char *digest = component->wave_digest[wave];
		size_t now_count = 0, held_before = held_count;

		if (component->wave_objects[wave] == 0)
			continue;
		current_digest = digest;
		step_name(step, sizeof(step), component, (enum install_wave)wave);
		for (size_t i = 0; i < component->object_count; i++)
			if (component->objects[i].wave == (enum install_wave)wave)
				gated[gated_count++] = &component->objects[i];
		if (install_step_done(install, step, digest)) {
			log_info("%s: done before with the same inputs; skipped", step);
			install->totals.steps_skipped++;
			continue;
		}
		install_step_record(install, step, digest, JOURNAL_START, NULL);
		log_info("%s: applying %zu objects", step, component->wave_objects[wave]);
		for (size_t i = 0; i < component->object_count; i++) {
			struct install_object *object = &component->objects[i];
			bool hold = false;

			if (object->wave != (enum install_wave)wave)
				continue;
			if (has_webhooks && wave >= INSTALL_WAVE_CLUSTER) {
				r = held_by_webhook(install, component, object, &hold);
				if (r < 0)
					goto fail;
			}
			if (hold)
				held[held_count++] = object;
			else
				now[now_count++] = object;
		}
		r = install_apply_objects(install, component, now, now_count, deadline);
		if (r < 0)
			goto fail;
		if (wave == INSTALL_WAVE_CRDS) {
			r = install_wait_ready(install, name, now, now_count, NULL, deadline);
			if (r < 0)
				goto fail;
		}
		if (held_count > held_before) {
			waiting_steps[wave] = true;
			log_info("%s: %zu objects wait until the component's webhooks serve", step,
				 held_count - held_before);
			continue;
		}
		install_step_record(install, step, digest, JOURNAL_DONE, NULL);
		install->totals.steps_run++;
	}

	if (held_count > 0) {
		size_t backends = 0;

		/* Webhook configurations and the workloads behind them come first. */
		for (size_t i = 0; i < gated_count; i++) {
			bool is_held = false;

			for (size_t k = 0; k < held_count; k++)
				if (held[k] == gated[i])
					is_held = true;
			if (!is_held)
				now[backends++] = gated[i];
		}
		log_info("component '%s': waiting for its webhooks before applying %zu objects", name, held_count);
		r = install_wait_ready(install, name, now, backends, NULL, deadline);
		if (r == 0)
			r = install_apply_objects(install, component, held, held_count, deadline);
		for (int wave = 0; wave < INSTALL_WAVE_COUNT; wave++) {
			if (!waiting_steps[wave])
				continue;
			step_name(step, sizeof(step), component, (enum install_wave)wave);
			if (r < 0) {
				record_failed(install, step, component->wave_digest[wave], r);
				continue;
			}
			install_step_record(install, step, component->wave_digest[wave], JOURNAL_DONE, NULL);
			install->totals.steps_run++;
		}
		if (r < 0)
			goto out;
	}

	snprintf(step, sizeof(step), "wait/%s", name);
	if (install_step_done(install, step, component->wait_digest)) {
		log_info("%s: done before with the same inputs; skipped", step);
		install->totals.steps_skipped++;
		r = 0;
		goto out;
	}
	install_step_record(install, step, component->wait_digest, JOURNAL_START, NULL);
	log_info("%s: waiting for %s to be ready", step, name);
	r = install_wait_ready(install, name, gated, gated_count,
			       component_defines_issuers(component)
				       ? (component->bundle->namespace ? component->bundle->namespace : "default")
				       : NULL,
			       deadline);
	if (r < 0) {
		record_failed(install, step, component->wait_digest, r);
		goto out;
	}
	install_step_record(install, step, component->wait_digest, JOURNAL_DONE, NULL);
	install->totals.steps_run++;
	log_info("component '%s' %s is ready", name, component->bundle->version);
	r = 0;
	goto out;
fail:
	record_failed(install, step, current_digest, r);
out:
	free(now);
	free(held);
	free(gated);
	return r;
}
