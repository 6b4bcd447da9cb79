/*
 * Components through the API: the manifests of each component are read
 * from the bundle, rewritten and sorted into waves, then applied with
 * server-side apply, wave by wave, with the readiness gates in between.
 *
 * Objects that one of the component's own webhooks (failurePolicy Fail)
 * would be called for are held back until the webhook's backend is
 * ready, so that no request is sent only to be rejected. A rejection by a
 * webhook mlboot did not foresee is retried with backoff until the
 * component's timeout.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "install.h"
#include "install_private.h"

static const struct doc_limits manifest_limits = {
	.max_bytes = INSTALL_MANIFEST_MAX,
	.max_depth = 128,
	.max_nodes = 4 * 1000 * 1000,
};

static int collect_bytes(void *context, const void *data, size_t len)
{
	return buf_append(context, data, len);
}

/* Reads one manifest file of the bundle into a stream of documents. */
static int read_manifest(struct install *install, const char *path, struct doc_stream *stream)
{
	const struct bundle_file *file = bundle_reader_find(install->reader, path);
	struct buf data = BUF_INIT(INSTALL_MANIFEST_MAX);
	struct doc_error error;
	int r;

	if (!file) {
		log_error("manifest '%s' is listed in the bundle's index but not stored in it", path);
		return MLB_EINTEGRITY;
	}
	r = bundle_reader_stream(install->reader, file, collect_bytes, &data);
	if (r < 0) {
		log_errno(LOG_ERR, r, "failed to read manifest '%s' from the bundle", path);
		goto out;
	}
	r = doc_parse_stream(data.data ? data.data : "", data.len, &manifest_limits, stream, &error);
	if (r < 0)
		log_error("invalid manifest '%s' in the bundle, line %u: %s", path, error.line, error.message);
out:
	buf_release(&data);
	return r;
}

void install_components_release(struct install *install)
{
	for (size_t i = 0; i < install->component_count; i++) {
		struct install_component *component = &install->components[i];

		for (size_t k = 0; k < component->object_count; k++) {
			doc_free(component->objects[k].doc);
			free(component->objects[k].description);
			free(component->objects[k].path);
		}
		free(component->objects);
		for (size_t k = 0; k < component->file_count; k++)
			free(component->files[k]);
		free(component->files);
	}
	free(install->components);
	install->components = NULL;
	install->component_count = 0;
	if (install->crd_scopes) {
		install_crd_scopes_release(install->crd_scopes);
		free(install->crd_scopes);
		install->crd_scopes = NULL;
	}
}

static int component_add_object(struct install_component *component, struct doc_node *doc, const char *file)
{
	struct install_object *object;

	if (component->object_count >= INSTALL_OBJECTS_MAX) {
		doc_free(doc);
		log_error("component '%s' has more than %u objects", component->bundle->name, INSTALL_OBJECTS_MAX);
		return MLB_EINPUT;
	}
	object = realloc(component->objects, (component->object_count + 1) * sizeof(*object));
	if (!object) {
		doc_free(doc);
		return -ENOMEM;
	}
	component->objects = object;
	object = &component->objects[component->object_count++];
	memset(object, 0, sizeof(*object));
	object->doc = doc;
	object->file = file;
	return 0;
}

/* Logs a problem of mlboot.yaml at position, as config_problems_log() prints the problems of the file. */
static void log_config_problem(const struct install *install, struct config_position position, const char *field,
			       const char *message)
{
	struct config_problem problem = {
		.line = position.line, .column = position.column, .field = (char *)field, .message = (char *)message,
	};
	char *line = config_problem_format(&problem, install->settings.config_path);

	log_error("%s", line ? line : message);
	free(line);
}

/* Checks the bundle against spec.components and --only; see install.h. */
static int check_selection(struct install *install)
{
	const char *only = install->settings.only;
	struct config_problems problems = { 0 };
	const char **names = calloc(install->component_count + 1, sizeof(*names));
	const struct install_component *named = NULL;
	int r;

	if (!names)
		return -ENOMEM;
	for (size_t i = 0; i < install->component_count; i++) {
		names[i] = install->components[i].bundle->name;
		if (only && strcmp(only, names[i]) == 0)
			named = &install->components[i];
	}
	r = config_check_bundle_components(&install->config, names, install->component_count, install->bundle_path,
					   &problems);
	free(names);
	if (r == MLB_EINPUT)
		config_problems_log(&problems, install->settings.config_path);
	config_problems_release(&problems);
	if (r < 0)
		return r;
	if (only && !named) {
		log_error("component '%s' given to --only is not in the bundle '%s'; 'mlboot bundle inspect' lists "
			  "its components", only, install->bundle_path);
		return MLB_EUSAGE;
	}
	if (named && !named->listed) {
		int key = config_component_of(only);

		log_error("component '%s' given to --only is not listed in spec.components of '%s'; add %s to "
			  "spec.components, or name a listed component", only, install->settings.config_path,
			  key >= 0 ? config_component_key((enum config_component)key) : "its key");
		return MLB_EINPUT;
	}
	return 0;
}

int install_components_select(struct install *install)
{
	const struct bundle_index *index = install->index;
	const struct config_components *settings = &install->config.components;

	install->components = calloc(index->component_count ? index->component_count : 1,
				     sizeof(*install->components));
	if (!install->components)
		return -ENOMEM;
	install->component_count = index->component_count;
	for (size_t i = 0; i < index->component_count; i++) {
		struct install_component *component = &install->components[i];

		component->bundle = &index->components[i];
		component->namespace = component->bundle->namespace;
		component->listed = config_component_selected(&install->config, component->bundle->name);
		component->selected = component->listed && (!install->settings.only ||
							     strcmp(install->settings.only, component->bundle->name) == 0);
		if (settings->sample_model_namespace_at.line &&
		    config_component_of(component->bundle->name) == CONFIG_COMPONENT_SAMPLE_MODEL)
			component->namespace = settings->sample_model_namespace;
		if (!component->listed)
			log_info("component '%s' of the bundle is not listed in spec.components of '%s': not installed",
				 component->bundle->name, install->settings.config_path);
	}
	return check_selection(install);
}

/* Reads the manifests of the listed components; the objects keep their file order for now. */
static int read_components(struct install *install, struct install_crd_scopes *scopes)
{
	int r = 0;

	for (size_t i = 0; i < install->component_count; i++) {
		struct install_component *component = &install->components[i];

		if (!component->listed)
			continue;
		component->files = calloc(component->bundle->manifest_count + 1, sizeof(char *));
		if (!component->files)
			return -ENOMEM;
		for (size_t f = 0; f < component->bundle->manifest_count; f++) {
			struct doc_stream stream = { 0 };

			component->files[f] = strdup(component->bundle->manifests[f]);
			if (!component->files[f])
				return -ENOMEM;
			component->file_count++;
			r = read_manifest(install, component->files[f], &stream);
			if (r < 0)
				return r;
			for (size_t d = 0; d < stream.count; d++) {
				if (stream.docs[d]->type == DOC_NULL)
					continue;
				if (r == 0)
					r = install_crd_scopes_add(scopes, stream.docs[d]);
				if (r == 0)
					r = component_add_object(component, stream.docs[d], component->files[f]);
				else
					doc_free(stream.docs[d]);
				stream.docs[d] = NULL;
			}
			doc_stream_release(&stream);
			if (r < 0)
				return r;
		}
	}
	return 0;
}

/*
 * Sets KServe's default deployment mode in the inferenceservice-config
 * ConfigMap of the bundle's KServe to kserve.deploymentMode of mlboot.yaml
 * (RawDeployment unless it is Serverless). Serverless needs Knative
 * Serving, so it is an error when the bundle does not bring it.
 */
static int set_kserve_mode(struct install *install)
{
	const struct config_components *settings = &install->config.components;
	bool serverless = settings->kserve_mode == CONFIG_KSERVE_SERVERLESS;
	const char *mode = serverless ? "Serverless" : "RawDeployment";
	bool knative = false;
	char previous[64];

	for (size_t c = 0; c < install->component_count; c++)
		if (install->components[c].listed &&
		    strcmp(install->components[c].bundle->name, "knative-serving") == 0)
			knative = true;
	for (size_t c = 0; c < install->component_count; c++) {
		struct install_component *component = &install->components[c];

		if (!component->listed || strcmp(component->bundle->name, "kserve") != 0)
			continue;
		if (serverless && !knative) {
			char message[512];

			snprintf(message, sizeof(message),
				 "Serverless needs Knative Serving, which the bundle '%s' does not bring; set "
				 "deploymentMode to RawDeployment, or use a bundle with the knative-serving "
				 "component", install->bundle_path);
			log_config_problem(install, settings->kserve_mode_at, "spec.components.kserve.deploymentMode",
					   message);
			return MLB_EINPUT;
		}
		for (size_t i = 0; i < component->object_count; i++) {
			int r = install_kserve_set_deployment_mode(component->objects[i].doc, mode, previous,
								   sizeof(previous));

			if (r == -ENOMEM)
				return r;
			if (r == 0)
				continue;
			if (r < 0) {
				log_error("the ConfigMap inferenceservice-config in '%s' has no \"deploy\" key holding "
					  "a JSON object, so KServe's deployment mode cannot be set to %s; the bundle "
					  "is damaged or its KServe is not supported", component->objects[i].file, mode);
				return MLB_EINPUT;
			}
			if (strcmp(previous, mode) != 0)
				log_info("kserve: default deployment mode set to %s (the bundle's manifests say %s)",
					 mode, previous[0] ? previous : "none");
			return 0;
		}
		log_warning("kserve: the bundle's KServe has no ConfigMap inferenceservice-config, so its "
			    "default deployment mode stays as its manifests set it, not %s", mode);
	}
	return 0;
}

int install_components_read(struct install *install)
{
	int r;

	install->crd_scopes = calloc(1, sizeof(*install->crd_scopes));
	if (!install->crd_scopes)
		return -ENOMEM;
	r = read_components(install, install->crd_scopes);
	if (r == 0)
		r = set_kserve_mode(install);
	return r;
}

/*
 * Finds whether an object's kind is namespaced: the built-in table first,
 * then the CRDs of the bundle, then discovery (for kinds the cluster
 * already has, such as those of an earlier install).
 */
static int object_scope(struct install *install, const struct install_crd_scopes *scopes,
			const struct doc_node *object, bool *namespaced)
{
	const char *api_version = doc_get_string(object, "apiVersion");
	const char *kind = doc_get_string(object, "kind");
	const struct kube_resource *resource;
	int r;

	r = install_builtin_scope(api_version, kind);
	if (r >= 0) {
		*namespaced = r == 0;
		return 0;
	}
	r = install_crd_scopes_find(scopes, api_version, kind);
	if (r >= 0) {
		*namespaced = r == 1;
		return 0;
	}
	r = kube_resource_find(install->client, api_version, kind, &resource);
	if (r < 0)
		return r;
	*namespaced = resource->namespaced;
	return 0;
}

static bool object_is_custom(const struct install_crd_scopes *scopes, const struct doc_node *object)
{
	const char *api_version = doc_get_string(object, "apiVersion");
	const char *kind = doc_get_string(object, "kind");

	return install_builtin_scope(api_version, kind) < 0 && install_crd_scopes_find(scopes, api_version, kind) >= 0;
}

static int check_object_fields(const struct install_component *component, const struct install_object *object)
{
	const char *api_version = doc_get_string(object->doc, "apiVersion");
	const char *kind = doc_get_string(object->doc, "kind");
	const char *name = doc_find_string(object->doc, "metadata", "name", NULL);

	if (object->doc->type != DOC_MAP || !api_version || !*api_version || !kind || !*kind || !name || !*name) {
		log_error("component '%s': an object in '%s' at line %u has no apiVersion, kind or metadata.name; "
			  "every applied object needs all three", component->bundle->name, object->file,
			  object->doc->line);
		return MLB_EINPUT;
	}
	return 0;
}

/* Rank of an object inside its wave: built-in kinds before custom resources, so controllers come first. */
static int wave_rank(const struct install_object *object)
{
	return (int)object->wave * 2 + (object->custom ? 1 : 0);
}

/* Checks one object, finds its scope, rewrites it and sets its wave and description. */
static int prepare_object(struct install *install, struct install_component *component,
			  const struct install_crd_scopes *scopes, struct install_object *object)
{
	const char *platform_version = install->index->version;
	const char *problem;
	char description[600];
	bool namespaced = false;
	int r;

	r = check_object_fields(component, object);
	if (r < 0)
		return r;
	r = object_scope(install, scopes, object->doc, &namespaced);
	if (r < 0) {
		install_object_describe(object->doc, description, sizeof(description));
		log_error("component '%s': %s in '%s': %s; no CRD of the bundle defines its kind",
			  component->bundle->name, description, object->file, kube_last_error());
		return r;
	}
	if (component->namespace && component->bundle->namespace) {
		r = install_object_move_namespace(object->doc, namespaced, component->bundle->namespace,
						  component->namespace);
		if (r < 0)
			return r;
		if (r > 0 && !install_object_is_namespace(object->doc, component->namespace))
			component->rewrites.namespace_moved++;
	}
	r = install_object_rewrite(object->doc, component->bundle->name, platform_version,
				   component->namespace, namespaced, &component->rewrites);
	if (r < 0)
		return r;
	object->wave = install_object_wave(object->doc, namespaced);
	object->custom = object_is_custom(scopes, object->doc);
	install_object_describe(object->doc, description, sizeof(description));
	object->description = strdup(description);
	if (!object->description)
		return -ENOMEM;
	problem = install_model_storage_problem(object->doc);
	if (problem) {
		log_error("component '%s': %s: %s", component->bundle->name, description, problem);
		return MLB_EINPUT;
	}
	return 0;
}

/* Whether a component of the bundle has a Namespace object called name. */
static bool bundle_defines_namespace(const struct install *install, const char *name)
{
	for (size_t c = 0; c < install->component_count; c++)
		for (size_t i = 0; i < install->components[c].object_count; i++)
			if (install_object_is_namespace(install->components[c].objects[i].doc, name))
				return true;
	return false;
}

/*
 * Adds the Namespace of a component that put objects into its namespace
 * when no manifest of the bundle creates it (Argo CD's install.yaml has
 * none): the API server rejects objects in a namespace that does not
 * exist. The namespace "default" always exists.
 */
static int add_component_namespace(struct install *install, struct install_component *component,
				   const struct install_crd_scopes *scopes)
{
	const char *namespace = component->namespace;
	struct doc_node *doc;
	int r;

	if (!(component->rewrites.namespace_added || component->rewrites.namespace_moved) || !namespace ||
	    strcmp(namespace, "default") == 0 ||
	    bundle_defines_namespace(install, namespace))
		return 0;
	doc = install_namespace_new(namespace);
	if (!doc)
		return -ENOMEM;
	r = component_add_object(component, doc, "(added by mlboot: the component's namespace)");
	if (r < 0)
		return r;
	r = prepare_object(install, component, scopes, &component->objects[component->object_count - 1]);
	if (r < 0)
		return r;
	log_info("component '%s': added Namespace '%s', which no manifest of the bundle creates",
		 component->bundle->name, namespace);
	return 0;
}

static int prepare_component(struct install *install, struct install_component *component,
			     const struct install_crd_scopes *scopes)
{
	const char *platform_version = install->index->version;
	struct install_object *sorted = NULL, **wave_objects = NULL;
	size_t position = 0;
	int r = 0;

	for (size_t i = 0; i < component->object_count; i++) {
		r = prepare_object(install, component, scopes, &component->objects[i]);
		if (r < 0)
			goto out;
	}
	r = add_component_namespace(install, component, scopes);
	if (r < 0)
		goto out;

	/* A stable sort by rank keeps the file order inside each wave. */
	r = -ENOMEM;
	sorted = calloc(component->object_count + 1, sizeof(*sorted));
	wave_objects = calloc(component->object_count + 1, sizeof(*wave_objects));
	if (!sorted || !wave_objects)
		goto out;
	for (int rank = 0; rank < INSTALL_WAVE_COUNT * 2; rank++)
		for (size_t i = 0; i < component->object_count; i++)
			if (wave_rank(&component->objects[i]) == rank)
				sorted[position++] = component->objects[i];
	memcpy(component->objects, sorted, component->object_count * sizeof(*sorted));

	for (int wave = 0; wave < INSTALL_WAVE_COUNT; wave++) {
		char label[512];
		size_t count = 0;

		for (size_t i = 0; i < component->object_count; i++)
			if (component->objects[i].wave == (enum install_wave)wave)
				wave_objects[count++] = &component->objects[i];
		component->wave_objects[wave] = count;
		snprintf(label, sizeof(label), "apply/%s/%s\n%s", component->bundle->name,
			 install_wave_name((enum install_wave)wave), platform_version);
		r = install_digest_objects(label, wave_objects, count, component->wave_digest[wave]);
		if (r < 0)
			goto out;
	}
	{
		struct buf text = BUF_INIT(4096);

		r = buf_printf(&text, "wait/%s\n", component->bundle->name);
		for (int wave = 0; r == 0 && wave < INSTALL_WAVE_COUNT; wave++)
			r = buf_printf(&text, "%s\n", component->wave_digest[wave]);
		if (r == 0)
			r = install_digest_text(text.data, text.len, component->wait_digest);
		buf_release(&text);
		if (r < 0)
			goto out;
	}

	if (component->rewrites.pull_policy)
		log_info("component '%s': set imagePullPolicy Always to IfNotPresent in %u containers (no registry "
			 "is reachable)", component->bundle->name, component->rewrites.pull_policy);
	if (component->rewrites.namespace_moved)
		log_info("component '%s': moved %u objects from namespace '%s' to '%s' (sampleModel.namespace)",
			 component->bundle->name, component->rewrites.namespace_moved, component->bundle->namespace,
			 component->namespace);
	if (component->rewrites.namespace_added)
		log_info("component '%s': put %u namespaced objects without a namespace in '%s'",
			 component->bundle->name, component->rewrites.namespace_added,
			 component->namespace ? component->namespace : "default");
	r = 0;
out:
	free(sorted);
	free(wave_objects);
	return r;
}

int install_components_prepare(struct install *install)
{
	int r = 0;

	for (size_t i = 0; r == 0 && i < install->component_count; i++)
		if (install->components[i].listed)
			r = prepare_component(install, &install->components[i], install->crd_scopes);
	return r;
}

/* --- Sending objects ---------------------------------------------------- */

/* Sets object->path from discovery; the kind must be served by now. */
int install_object_resolve(struct install *install, struct install_object *object,
			   const struct kube_resource **resource_out)
{
	const struct kube_resource *resource;
	const char *namespace;
	int r;

	r = kube_resource_find(install->client, doc_get_string(object->doc, "apiVersion"),
			       doc_get_string(object->doc, "kind"), &resource);
	if (r < 0)
		return r;
	if (resource_out)
		*resource_out = resource;
	if (object->path)
		return 0;
	namespace = doc_find_string(object->doc, "metadata", "namespace", NULL);
	return kube_resource_path(resource, namespace, doc_find_string(object->doc, "metadata", "name", NULL),
				  &object->path);
}

int install_send_apply(struct kube_client *client, const struct install_object *object, bool dry_run,
		       struct kube_response *response)
{
	struct buf body = BUF_INIT(KUBE_APPLY_BODY_MAX);
	char *request = NULL;
	int r;

	memset(response, 0, sizeof(*response));
	r = doc_write_json(object->doc, &body);
	if (r < 0)
		goto out;
	if (asprintf(&request, "%s?fieldManager=%s&force=true%s", object->path, INSTALL_MANAGER,
		     dry_run ? "&dryRun=All" : "") < 0) {
		request = NULL;
		r = -ENOMEM;
		goto out;
	}
	r = kube_request(client, "PATCH", request, "application/apply-patch+yaml", body.data, body.len, response);
out:
	free(request);
	buf_release(&body);
	return r;
}

/* One object of a batch and what became of it. */
struct apply_item {
	struct install_object *object;
	int result;
	long status;
	char *message;
};

struct apply_batch {
	struct install *install;
	struct apply_item *items;
	size_t count;
	atomic_size_t next;
	struct kube_client **clients;
};

struct apply_worker {
	struct apply_batch *batch;
	struct kube_client *client;
};

static void apply_one(struct kube_client *client, struct apply_item *item)
{
	struct kube_response response;

	free(item->message);
	item->message = NULL;
	item->status = 0;
	item->result = install_send_apply(client, item->object, false, &response);
	if (item->result == 0) {
		item->status = response.status;
		if (response.status < 200 || response.status > 299) {
			item->message = kube_status_message(&response.body);
			item->result = MLB_EFAILED;
		}
	} else {
		const char *text = kube_last_error();

		item->message = strdup(text && *text ? text : mlb_strerror(item->result));
	}
	kube_response_release(&response);
}

static void *apply_worker_main(void *argument)
{
	struct apply_worker *worker = argument;
	struct apply_batch *batch = worker->batch;

	for (;;) {
		size_t index = atomic_fetch_add(&batch->next, 1);

		if (index >= batch->count)
			break;
		apply_one(worker->client, &batch->items[index]);
	}
	return NULL;
}

/* Makes the extra clients the apply workers use; each keeps its own connection. */
static int ensure_workers(struct install *install, unsigned requested)
{
	if (requested > INSTALL_APPLY_WORKERS_MAX)
		requested = INSTALL_APPLY_WORKERS_MAX;
	while (install->worker_count + 1 < requested) {
		struct kube_client *client;
		int r = kube_client_new(&install->credentials, NULL, &client);

		if (r < 0)
			return log_errno(LOG_ERR, r, "failed to create an API client: %s", kube_last_error());
		install->workers[install->worker_count++] = client;
	}
	return 0;
}

/*
 * Applies every item, several at a time: the main client and the worker
 * clients each take the next item. Results land in the items.
 */
static int apply_items(struct install *install, struct apply_item *items, size_t count)
{
	struct apply_batch batch = { .install = install, .items = items, .count = count };
	struct apply_worker workers[INSTALL_APPLY_WORKERS_MAX];
	pthread_t threads[INSTALL_APPLY_WORKERS_MAX];
	size_t started = 0, requested;
	int r;

	atomic_init(&batch.next, 0);
	requested = install->settings.apply_workers ? install->settings.apply_workers : INSTALL_APPLY_WORKERS_DEFAULT;
	if (requested > count)
		requested = count;
	if (requested > 1) {
		r = ensure_workers(install, (unsigned)requested);
		if (r < 0)
			return r;
	}
	for (size_t i = 0; i + 1 < requested && i < install->worker_count; i++) {
		workers[i].batch = &batch;
		workers[i].client = install->workers[i];
		if (pthread_create(&threads[i], NULL, apply_worker_main, &workers[i]) != 0)
			break;
		started++;
	}
	{
		struct apply_worker self = { .batch = &batch, .client = install->client };

		apply_worker_main(&self);
	}
	for (size_t i = 0; i < started; i++)
		pthread_join(threads[i], NULL);
	return 0;
}

static void apply_items_release(struct apply_item *items, size_t count)
{
	for (size_t i = 0; items && i < count; i++)
		free(items[i].message);
	free(items);
}

/*
 * Applies objects; webhook rejections are retried with backoff until the
 * deadline, other failures end the run at once with every failing object
 * named. Only the objects that still fail are sent again.
 */
int install_apply_objects(struct install *install, struct install_component *component,
			  struct install_object **objects, size_t count, int64_t deadline_ms)
{
	struct apply_item *items = calloc(count + 1, sizeof(*items));
	size_t pending = count;
	long pause = INSTALL_POLL_FIRST_MS * 4;
	int r = 0;

	if (!items)
		return -ENOMEM;
	for (size_t i = 0; i < count; i++) {
		items[i].object = objects[i];
		r = install_object_resolve(install, objects[i], NULL);
		if (r < 0) {
			log_error("component '%s': cannot apply %s: %s", component->bundle->name,
				  objects[i]->description, kube_last_error());
			install_set_failure(install, "cannot apply %s: %s", objects[i]->description, kube_last_error());
			goto out;
		}
	}
	for (;;) {
		size_t rejected = 0, failed = 0, kept = 0;

		r = apply_items(install, items, pending);
		if (r < 0)
			goto out;
		for (size_t i = 0; i < pending; i++) {
			struct apply_item *item = &items[i];

			if (item->result == 0) {
				log_debug("applied %s", item->object->description);
				pthread_mutex_lock(&install->lock);
				install->totals.objects_applied++;
				pthread_mutex_unlock(&install->lock);
				continue;
			}
			if (install_is_webhook_rejection(item->status, item->message))
				rejected++;
			else
				failed++;
		}
		if (failed > 0 || (rejected > 0 && install_now_ms() >= deadline_ms)) {
			bool first = true;

			for (size_t i = 0; i < pending; i++) {
				if (items[i].result == 0)
					continue;
				if (first)
					install_set_failure(install, "%zu objects not applied; first: %s: %s",
							    failed + rejected, items[i].object->description,
							    items[i].message ? items[i].message : "no message");
				first = false;
				log_error("component '%s': %s was not applied%s: %s", component->bundle->name,
					  items[i].object->description,
					  install_is_webhook_rejection(items[i].status, items[i].message)
						  ? " (its webhook still rejects it at the component timeout)" : "",
					  items[i].message ? items[i].message : "no message");
			}
			r = failed > 0 ? MLB_EFAILED : -ETIMEDOUT;
			goto out;
		}
		if (rejected == 0)
			break;
		/* Keep only the rejected items, and send them again after a pause. */
		for (size_t i = 0; i < pending; i++) {
			if (items[i].result == 0) {
				free(items[i].message);
				continue;
			}
			if (kept == 0 || rejected <= 3)
				log_info("component '%s': %s was rejected by a webhook that is not serving yet; retrying "
					 "in %ld ms: %s", component->bundle->name, items[i].object->description, pause,
					 items[i].message);
			items[kept++] = items[i];
		}
		pending = kept;
		pthread_mutex_lock(&install->lock);
		install->totals.webhook_retries += pending;
		pthread_mutex_unlock(&install->lock);
		install_sleep_ms(pause);
		pause = pause * 2 > INSTALL_POLL_MAX_MS ? INSTALL_POLL_MAX_MS : pause * 2;
	}
	r = 0;
out:
	apply_items_release(items, pending);
	return r;
}
