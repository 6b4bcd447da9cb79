/*
 * The install's steps and journal records, the dry-run plan of a
 * component, and the model and check steps at the end.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "images.h"
#include "install.h"
#include "install_private.h"

int64_t install_now_ms(void)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

void install_sleep_ms(long ms)
{
	struct timespec pause = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&pause, &pause) < 0 && errno == EINTR)
		;
}

void install_set_failure(struct install *install, const char *format, ...)
{
	va_list args;

	pthread_mutex_lock(&install->lock);
	va_start(args, format);
	vsnprintf(install->failure, sizeof(install->failure), format, args);
	va_end(args);
	pthread_mutex_unlock(&install->lock);
}

bool install_step_done(struct install *install, const char *step, const char *digest)
{
	bool done;

	if (install->settings.force)
		return false;
	pthread_mutex_lock(&install->lock);
	done = journal_is_done(install->journal, step, digest);
	pthread_mutex_unlock(&install->lock);
	return done;
}

int install_step_record(struct install *install, const char *step, const char *digest,
			enum journal_event event, const char *message)
{
	int r;

	pthread_mutex_lock(&install->lock);
	r = journal_record(install->journal, step, digest, event, message);
	pthread_mutex_unlock(&install->lock);
	if (event == JOURNAL_START)
		log_debug("%s: started (inputs %.12s)", step, digest);
	return r;
}

/* --- The dry-run plan of a component ------------------------------------ */

static int compare_members(const void *a, const void *b)
{
	const struct doc_node *left = *(const struct doc_node *const *)a;
	const struct doc_node *right = *(const struct doc_node *const *)b;

	return strcmp(left->key, right->key);
}

/* Sorts every map of a tree by key, so two objects compare equal whatever order the server wrote. */
static void sort_tree(struct doc_node *node, unsigned depth)
{
	if (!node || depth > 200)
		return;
	if (node->type == DOC_MAP && node->count > 1)
		qsort(node->items, node->count, sizeof(*node->items), compare_members);
	for (size_t i = 0; i < node->count; i++)
		sort_tree(node->items[i], depth + 1);
}

/* The JSON of an object without the fields every write changes, with maps sorted. */
static int comparable_json(const struct doc_node *object, struct buf *out)
{
	static const char *const volatile_fields[] = {
		"managedFields", "resourceVersion", "generation", "creationTimestamp", "uid",
	};
	struct doc_node *copy = doc_clone(object);
	struct doc_node *metadata;
	int r;

	if (!copy)
		return -ENOMEM;
	metadata = doc_get_mutable(copy, "metadata");
	for (size_t i = 0; metadata && i < ARRAY_SIZE(volatile_fields); i++)
		doc_map_remove(metadata, volatile_fields[i]);
	doc_map_remove(copy, "status");
	sort_tree(copy, 0);
	r = doc_write_json(copy, out);
	doc_free(copy);
	return r;
}

enum plan_action {
	PLAN_CREATE,
	PLAN_CHANGE,
	PLAN_UNCHANGED,
	PLAN_UNKNOWN,
};

/* Finds out what applying object would do, without changing anything. */
static enum plan_action plan_object(struct install *install, struct install_object *object, char *why, size_t size)
{
	struct buf live_json = BUF_INIT(KUBE_APPLY_BODY_MAX), applied_json = BUF_INIT(KUBE_APPLY_BODY_MAX);
	struct doc_node *live = NULL, *applied = NULL;
	struct kube_response response = { 0 };
	enum plan_action action = PLAN_UNKNOWN;
	struct doc_error error;
	char *message = NULL;
	int r;

	why[0] = '\0';
	r = install_object_resolve(install, object, NULL);
	if (r == -ENOENT) {
		snprintf(why, size, "its kind is served once the component's CRDs are established");
		action = PLAN_CREATE;
		goto out;
	}
	if (r < 0) {
		snprintf(why, size, "%s", kube_last_error());
		goto out;
	}
	r = kube_get(install->client, object->path, &live, &message);
	if (r == -ENOENT) {
		action = PLAN_CREATE;
		goto out;
	}
	if (r < 0) {
		snprintf(why, size, "cannot read it: %s", message ? message : kube_last_error());
		goto out;
	}
	r = install_send_apply(install->client, object, true, &response);
	if (r < 0) {
		snprintf(why, size, "the dry run failed: %s", kube_last_error());
		goto out;
	}
	if (response.status < 200 || response.status > 299) {
		char *status_message = kube_status_message(&response.body);

		snprintf(why, size, "the server-side dry run was rejected (HTTP %ld): %s", response.status,
			 status_message ? status_message : "no message");
		free(status_message);
		goto out;
	}
	r = doc_parse(response.body.data, response.body.len, NULL, &applied, &error);
	if (r == 0)
		r = comparable_json(live, &live_json);
	if (r == 0)
		r = comparable_json(applied, &applied_json);
	if (r < 0) {
		snprintf(why, size, "cannot compare the dry run with the live object: %s", mlb_strerror(r));
		goto out;
	}
	action = live_json.len == applied_json.len && memcmp(live_json.data, applied_json.data, live_json.len) == 0
			 ? PLAN_UNCHANGED : PLAN_CHANGE;
out:
	kube_response_release(&response);
	buf_release(&live_json);
	buf_release(&applied_json);
	doc_free(live);
	doc_free(applied);
	free(message);
	return action;
}

int install_component_plan(struct install *install, struct install_component *component)
{
	static const char *const action_names[] = { "create", "change", "unchanged", "unknown" };
	size_t totals[4] = { 0 };
	char why[1024];

	printf("component %s %s (namespace %s)\n", component->bundle->name, component->bundle->version,
	       component->namespace ? component->namespace : "-");
	for (int wave = 0; wave < INSTALL_WAVE_COUNT; wave++) {
		char step[512];
		size_t counts[4] = { 0 };
		bool done;

		if (component->wave_objects[wave] == 0)
			continue;
		snprintf(step, sizeof(step), "apply/%s/%s", component->bundle->name,
			 install_wave_name((enum install_wave)wave));
		done = install_step_done(install, step, component->wave_digest[wave]);
		printf("  %-40s %zu objects%s\n", step, component->wave_objects[wave],
		       done ? ", done before with the same inputs" : "");
		for (size_t i = 0; i < component->object_count; i++) {
			struct install_object *object = &component->objects[i];
			enum plan_action action;

			if (object->wave != (enum install_wave)wave)
				continue;
			action = plan_object(install, object, why, sizeof(why));
			counts[action]++;
			totals[action]++;
			if (action != PLAN_UNCHANGED)
				printf("    %-9s %s%s%s\n", action_names[action], object->description, why[0] ? ": " : "",
				       why);
		}
		printf("    %zu to create, %zu to change, %zu unchanged, %zu unknown\n", counts[PLAN_CREATE],
		       counts[PLAN_CHANGE], counts[PLAN_UNCHANGED], counts[PLAN_UNKNOWN]);
	}
	{
		char step[512];

		snprintf(step, sizeof(step), "wait/%s", component->bundle->name);
		printf("  %-40s %s\n", step,
		       install_step_done(install, step, component->wait_digest) ? "done before" : "to run");
	}
	printf("  component %s: %zu to create, %zu to change, %zu unchanged, %zu unknown\n",
	       component->bundle->name, totals[PLAN_CREATE], totals[PLAN_CHANGE], totals[PLAN_UNCHANGED],
	       totals[PLAN_UNKNOWN]);
	return 0;
}

/* --- The model and check steps ------------------------------------------ */

static bool is_inference_service(const struct install_object *object)
{
	const char *api_version = doc_get_string(object->doc, "apiVersion");
	const char *kind = doc_get_string(object->doc, "kind");

	return api_version && kind && strncmp(api_version, "serving.kserve.io/", 18) == 0 &&
	       strcmp(kind, "InferenceService") == 0;
}

/* The first storageUri of an InferenceService's predictor. */
static const char *storage_uri(const struct doc_node *node, unsigned depth)
{
	if (!node || depth > 16 || (node->type != DOC_MAP && node->type != DOC_SEQ))
		return NULL;
	for (size_t i = 0; i < node->count; i++) {
		const char *found;

		if (node->items[i]->key && strcmp(node->items[i]->key, "storageUri") == 0 &&
		    node->items[i]->type == DOC_STRING)
			return node->items[i]->text;
		found = storage_uri(node->items[i], depth + 1);
		if (found)
			return found;
	}
	return NULL;
}

/* Checks that the model's storage is carried by the bundle: an image of it, or a PVC of the platform. */
static int check_model_storage(struct install *install, const struct install_object *service, const char *uri)
{
	const char *namespace = doc_find_string(service->doc, "metadata", "namespace", NULL);

	if (strncmp(uri, "oci://", 6) == 0) {
		struct image_reference reference;
		char name[IMAGE_REFERENCE_MAX];

		if (image_reference_parse(uri + 6, &reference) < 0 ||
		    image_reference_format(&reference, name, sizeof(name)) < 0) {
			log_error("%s: storageUri '%s' is not a valid image reference", service->description, uri);
			return MLB_EINPUT;
		}
		if (!bundle_index_find_image(install->index, name)) {
			log_error("%s: storageUri '%s' names image '%s', which the bundle does not carry",
				  service->description, uri, name);
			return MLB_EINPUT;
		}
		return 0;
	}
	if (strncmp(uri, "pvc://", 6) == 0) {
		size_t len = strcspn(uri + 6, "/");

		for (size_t c = 0; c < install->component_count; c++)
			for (size_t i = 0; i < install->components[c].object_count; i++) {
				const struct install_object *object = &install->components[c].objects[i];
				const char *name = doc_find_string(object->doc, "metadata", "name", NULL);
				const char *claim_namespace = doc_find_string(object->doc, "metadata", "namespace", NULL);

				if (doc_string_equals(doc_get(object->doc, "kind"), "PersistentVolumeClaim") && name &&
				    strlen(name) == len && strncmp(name, uri + 6, len) == 0 && claim_namespace &&
				    namespace && strcmp(claim_namespace, namespace) == 0)
					return 0;
			}
		log_error("%s: storageUri '%s' names a PVC that the platform does not create", service->description,
			  uri);
		return MLB_EINPUT;
	}
	return 0;
}

/* NOTE: the model step looks at the first 64 InferenceServices only; a sample platform has one. */
#define MODEL_SERVICES_MAX 64

int install_model_step(struct install *install)
{
	struct install_object **services = calloc(MODEL_SERVICES_MAX, sizeof(*services));
	struct buf text = BUF_INIT(1024 * 1024);
	char digest[SHA256_HEX_LEN + 1];
	size_t count = 0;
	int r = 0;

	if (!services)
		return -ENOMEM;
	for (size_t c = 0; c < install->component_count; c++) {
		struct install_component *component = &install->components[c];

		if (!component->selected)
			continue;
		for (size_t i = 0; i < component->object_count && count < MODEL_SERVICES_MAX; i++)
			if (is_inference_service(&component->objects[i])) {
				services[count++] = &component->objects[i];
				r = buf_printf(&text, "%s\n", component->wait_digest);
				if (r < 0)
					goto out;
			}
	}
	if (count == 0)
		goto out;
	r = install_digest_text(text.data, text.len, digest);
	if (r < 0)
		goto out;
	if (install_step_done(install, "model", digest)) {
		log_info("model: done before with the same inputs; skipped");
		install->totals.steps_skipped++;
		goto out;
	}
	install_step_record(install, "model", digest, JOURNAL_START, NULL);
	install->failure[0] = '\0';
	for (size_t i = 0; i < count && r == 0; i++) {
		const char *uri = storage_uri(doc_get(services[i]->doc, "spec"), 0);

		if (uri)
			r = check_model_storage(install, services[i], uri);
		if (r < 0)
			install_set_failure(install, "%s: its storageUri '%s' is not carried by the bundle",
					    services[i]->description, uri);
	}
	if (r == 0)
		r = install_wait_ready(install, "model", services, count, NULL, install_component_deadline(install));
	for (size_t i = 0; i < count && r == 0; i++) {
		struct doc_node *live = NULL;

		if (kube_get(install->client, services[i]->path, &live, NULL) == 0)
			printf("model %s is Ready at %s, served from %s\n", services[i]->description,
			       doc_find_string(live, "status", "url", NULL) ? doc_find_string(live, "status", "url", NULL)
									      : "(no URL reported)",
			       storage_uri(doc_get(services[i]->doc, "spec"), 0)
				       ? storage_uri(doc_get(services[i]->doc, "spec"), 0) : "(no storageUri)");
		doc_free(live);
	}
	if (r < 0) {
		install_step_record(install, "model", digest, JOURNAL_FAILED,
				    install->failure[0] ? install->failure : mlb_strerror(r));
		goto out;
	}
	install_step_record(install, "model", digest, JOURNAL_DONE, NULL);
	install->totals.steps_run++;
out:
	free(services);
	buf_release(&text);
	return r;
}

int install_check_step(struct install *install)
{
	struct buf text = BUF_INIT(1024 * 1024);
	char digest[SHA256_HEX_LEN + 1];
	size_t checked = 0, components = 0;
	int r = 0, failed = 0;

	for (size_t c = 0; c < install->component_count && r == 0; c++)
		if (install->components[c].selected)
			r = buf_printf(&text, "%s\n", install->components[c].wait_digest);
	if (r == 0)
		r = install_digest_text(text.data ? text.data : "", text.len, digest);
	if (r < 0)
		goto out;
	if (install_step_done(install, "check", digest)) {
		log_info("check: done before with the same inputs; skipped");
		install->totals.steps_skipped++;
		goto out;
	}
	install_step_record(install, "check", digest, JOURNAL_START, NULL);
	install->failure[0] = '\0';
	for (size_t c = 0; c < install->component_count; c++) {
		struct install_component *component = &install->components[c];
		struct install_object **objects;

		if (!component->selected)
			continue;
		objects = calloc(component->object_count + 1, sizeof(*objects));
		if (!objects) {
			r = -ENOMEM;
			goto out;
		}
		for (size_t i = 0; i < component->object_count; i++)
			objects[i] = &component->objects[i];
		r = install_wait_ready(install, component->bundle->name, objects, component->object_count, NULL, 0);
		free(objects);
		checked += component->object_count;
		components++;
		if (r < 0)
			failed++;
		printf("check %-20s %s\n", component->bundle->name, r < 0 ? "FAIL" : "pass");
	}
	if (failed) {
		r = MLB_EFAILED;
		install_step_record(install, "check", digest, JOURNAL_FAILED,
				    install->failure[0] ? install->failure : "a component is not ready");
		goto out;
	}
	log_info("check: %zu objects of %zu components ready", checked, components);
	install_step_record(install, "check", digest, JOURNAL_DONE, NULL);
	install->totals.steps_run++;
	r = 0;
out:
	buf_release(&text);
	return r;
}
