/*
 * The expected platform, read from the bundle's index and manifests, or
 * from the mlboot labels of the objects on the cluster.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_internal.h"
#include "images.h"

/* Where each kind is served; the versions are the ones Kubernetes 1.24 and later, cert-manager 1.x and KServe 0.x serve. */
static const struct {
	const char *kind;
	const char *group;           /* apiVersion group, "" for core */
	const char *path;            /* API prefix */
	const char *resource;
	const char *plural_name;     /* for kubectl commands */
	bool namespaced;
} kinds[CHECK_OBJECT_KIND_COUNT] = {
	[CHECK_OBJECT_CRD] = { "CustomResourceDefinition", "apiextensions.k8s.io",
			       "/apis/apiextensions.k8s.io/v1", "customresourcedefinitions", "crd", false },
	[CHECK_OBJECT_DEPLOYMENT] = { "Deployment", "apps", "/apis/apps/v1", "deployments",
				      "deployment", true },
	[CHECK_OBJECT_STATEFULSET] = { "StatefulSet", "apps", "/apis/apps/v1", "statefulsets",
				       "statefulset", true },
	[CHECK_OBJECT_DAEMONSET] = { "DaemonSet", "apps", "/apis/apps/v1", "daemonsets", "daemonset",
				     true },
	[CHECK_OBJECT_MUTATING_WEBHOOK] = { "MutatingWebhookConfiguration", "admissionregistration.k8s.io",
					    "/apis/admissionregistration.k8s.io/v1",
					    "mutatingwebhookconfigurations", "mutatingwebhookconfiguration",
					    false },
	[CHECK_OBJECT_VALIDATING_WEBHOOK] = { "ValidatingWebhookConfiguration", "admissionregistration.k8s.io",
					      "/apis/admissionregistration.k8s.io/v1",
					      "validatingwebhookconfigurations",
					      "validatingwebhookconfiguration", false },
	[CHECK_OBJECT_SERVICE] = { "Service", "", "/api/v1", "services", "service", true },
	[CHECK_OBJECT_INFERENCE_SERVICE] = { "InferenceService", "serving.kserve.io",
					     "/apis/serving.kserve.io/v1beta1", "inferenceservices",
					     "inferenceservice", true },
	[CHECK_OBJECT_NAMESPACE] = { "Namespace", "", "/api/v1", "namespaces", "namespace", false },
};

const char *check_object_kind_name(enum check_object_kind kind, bool plural)
{
	if ((unsigned)kind >= CHECK_OBJECT_KIND_COUNT)
		return "?";
	return plural ? kinds[kind].plural_name : kinds[kind].kind;
}

bool check_object_kind_namespaced(enum check_object_kind kind)
{
	return (unsigned)kind < CHECK_OBJECT_KIND_COUNT && kinds[kind].namespaced;
}

int check_object_path(enum check_object_kind kind, const char *namespace, const char *name, char **out)
{
	int n;

	*out = NULL;
	if ((unsigned)kind >= CHECK_OBJECT_KIND_COUNT)
		return -EINVAL;
	if (kinds[kind].namespaced && namespace)
		n = asprintf(out, "%s/namespaces/%s/%s%s%s", kinds[kind].path, namespace,
			     kinds[kind].resource, name ? "/" : "", name ? name : "");
	else
		n = asprintf(out, "%s/%s%s%s", kinds[kind].path, kinds[kind].resource, name ? "/" : "",
			     name ? name : "");
	if (n < 0) {
		*out = NULL;
		return -ENOMEM;
	}
	return 0;
}

static void component_release(struct check_component *component)
{
	for (size_t i = 0; i < component->object_count; i++) {
		free(component->objects[i].namespace);
		free(component->objects[i].name);
	}
	free(component->objects);
	for (size_t i = 0; i < component->image_count; i++)
		free(component->images[i]);
	free(component->images);
	free(component->name);
	free(component->version);
	free(component->namespace);
	memset(component, 0, sizeof(*component));
}

void check_platform_release(struct check_platform *platform)
{
	if (!platform)
		return;
	for (size_t i = 0; i < platform->component_count; i++)
		component_release(&platform->components[i]);
	free(platform->components);
	for (size_t i = 0; i < platform->image_count; i++) {
		free(platform->images[i].name);
		free(platform->images[i].digest);
		free(platform->images[i].component);
	}
	free(platform->images);
	free(platform->description);
	free(platform->name);
	free(platform->version);
	memset(platform, 0, sizeof(*platform));
}

static int strdup_optional(const char *text, char **out)
{
	*out = NULL;
	if (!text)
		return 0;
	*out = strdup(text);
	return *out ? 0 : -ENOMEM;
}

/* The kind of a document, or CHECK_OBJECT_KIND_COUNT when the checks do not look at it. */
static enum check_object_kind document_kind(const struct doc_node *document)
{
	const char *api_version = doc_get_string(document, "apiVersion");
	const char *kind = doc_get_string(document, "kind");
	size_t group_len;

	if (!api_version || !kind)
		return CHECK_OBJECT_KIND_COUNT;
	group_len = strchr(api_version, '/') ? (size_t)(strchr(api_version, '/') - api_version) : 0;
	for (unsigned i = 0; i < CHECK_OBJECT_KIND_COUNT; i++) {
		if (strcmp(kinds[i].kind, kind) != 0)
			continue;
		if (strlen(kinds[i].group) == group_len && strncmp(kinds[i].group, api_version, group_len) == 0)
			return (enum check_object_kind)i;
	}
	return CHECK_OBJECT_KIND_COUNT;
}

static bool component_has(const struct check_component *component, enum check_object_kind kind,
			  const char *namespace, const char *name)
{
	for (size_t i = 0; i < component->object_count; i++) {
		const struct check_object *object = &component->objects[i];

		if (object->kind != kind || strcmp(object->name, name) != 0)
			continue;
		if (!object->namespace || !namespace || strcmp(object->namespace, namespace) == 0)
			return true;
	}
	return false;
}

static int component_add_object(struct check_component *component, enum check_object_kind kind,
				const char *namespace, const char *name, long long replicas)
{
	struct check_object *objects, *object;

	if (component_has(component, kind, namespace, name))
		return 0;
	if (component->object_count >= CHECK_OBJECTS_MAX)
		return -E2BIG;
	objects = reallocarray(component->objects, component->object_count + 1, sizeof(*objects));
	if (!objects)
		return -ENOMEM;
	component->objects = objects;
	object = &objects[component->object_count];
	memset(object, 0, sizeof(*object));
	object->kind = kind;
	object->replicas = replicas;
	object->name = strdup(name);
	if (!object->name || strdup_optional(namespace, &object->namespace) < 0) {
		free(object->name);
		return -ENOMEM;
	}
	component->object_count++;
	return 0;
}

int check_component_add_document(struct check_component *component, const struct doc_node *document)
{
	enum check_object_kind kind = document_kind(document);
	const char *name = doc_find_string(document, "metadata", "name", NULL);
	const char *namespace = NULL;
	const struct doc_node *replicas;
	long long count = 1;

	if (kind == CHECK_OBJECT_KIND_COUNT || !name || !name[0])
		return 0;
	if (kinds[kind].namespaced) {
		namespace = doc_find_string(document, "metadata", "namespace", NULL);
		if (!namespace || !namespace[0])
			namespace = component->namespace ? component->namespace : "default";
	}
	replicas = doc_find(document, "spec", "replicas", NULL);
	if (replicas && replicas->type == DOC_INT && replicas->integer >= 0)
		count = replicas->integer;
	return component_add_object(component, kind, namespace, name, count);
}

const struct check_object *check_platform_find(const struct check_platform *platform,
					       enum check_object_kind kind, const char *name,
					       const struct check_component **component)
{
	for (size_t i = 0; i < platform->component_count; i++) {
		const struct check_component *c = &platform->components[i];

		for (size_t j = 0; j < c->object_count; j++) {
			if (c->objects[j].kind != kind || strcmp(c->objects[j].name, name) != 0)
				continue;
			if (component)
				*component = c;
			return &c->objects[j];
		}
	}
	return NULL;
}

/* Normalises an image name as containerd and kubelet spell it: docker.io/library/NAME:TAG. */
static int normalise_image(const char *text, char **out)
{
	struct image_reference reference;
	char formatted[IMAGE_REFERENCE_MAX];

	*out = NULL;
	if (image_reference_parse(text, &reference) < 0)
		return strdup_optional(text, out);
	reference.digest[0] = '\0';
	if (!reference.tag[0])
		return strdup_optional(text, out);
	if (image_reference_format(&reference, formatted, sizeof(formatted)) < 0)
		return strdup_optional(text, out);
	return strdup_optional(formatted, out);
}

static int platform_add_image(struct check_platform *platform, const char *name, const char *digest)
{
	struct check_image *images, *image;

	if (platform->image_count >= CHECK_OBJECTS_MAX)
		return -E2BIG;
	images = reallocarray(platform->images, platform->image_count + 1, sizeof(*images));
	if (!images)
		return -ENOMEM;
	platform->images = images;
	image = &images[platform->image_count];
	memset(image, 0, sizeof(*image));
	if (normalise_image(name, &image->name) < 0 || strdup_optional(digest, &image->digest) < 0) {
		free(image->name);
		return -ENOMEM;
	}
	platform->image_count++;
	return 0;
}

static struct check_component *platform_add_component(struct check_platform *platform, const char *name,
						      const char *version, const char *namespace)
{
	struct check_component *components, *component;

	if (platform->component_count >= BUNDLE_COMPONENTS_MAX)
		return NULL;
	components = reallocarray(platform->components, platform->component_count + 1, sizeof(*components));
	if (!components)
		return NULL;
	platform->components = components;
	component = &components[platform->component_count];
	memset(component, 0, sizeof(*component));
	component->name = strdup(name);
	if (!component->name || strdup_optional(version, &component->version) < 0 ||
	    strdup_optional(namespace, &component->namespace) < 0) {
		component_release(component);
		return NULL;
	}
	platform->component_count++;
	return component;
}

/*
 * Records which component lists each image, for remedies that name the
 * component to install again, and the component's own list of images.
 * Components are kept in an array that may move, so the name is copied.
 */
static int note_image_component(struct check_platform *platform, struct check_component *component,
				const struct bundle_component *source)
{
	component->images = calloc(source->image_count + 1, sizeof(*component->images));
	if (!component->images)
		return -ENOMEM;
	for (size_t i = 0; i < source->image_count; i++) {
		char *name = NULL;
		int r = normalise_image(source->images[i], &name);

		if (r < 0)
			return r;
		if (name) {
			component->images[component->image_count] = strdup(name);
			if (!component->images[component->image_count]) {
				free(name);
				return -ENOMEM;
			}
			component->image_count++;
		}
		for (size_t j = 0; j < platform->image_count; j++) {
			struct check_image *image = &platform->images[j];

			if (image->component || !name || strcmp(image->name, name) != 0)
				continue;
			image->component = strdup(source->name);
			if (!image->component) {
				free(name);
				return -ENOMEM;
			}
		}
		free(name);
	}
	return 0;
}

static int collect_bytes(void *context, const void *data, size_t len)
{
	return buf_append(context, data, len);
}

/* Streams one manifest from the bundle and adds its objects to component. */
static int read_manifest(struct bundle_reader *reader, struct check_component *component, const char *path,
			 struct bundle_report *report)
{
	const struct bundle_file *file = bundle_reader_find(reader, path);
	struct buf data = BUF_INIT(CHECK_MANIFEST_MAX);
	struct doc_stream stream = { NULL, 0 };
	struct doc_error error;
	int r;

	if (!file)
		return bundle_report_add(report, MLB_EINPUT, "manifest '%s' of component '%s' is not in the bundle",
					 path, component->name);
	r = bundle_reader_stream(reader, file, collect_bytes, &data);
	if (r == -E2BIG)
		r = bundle_report_add(report, MLB_EINPUT, "manifest '%s' is larger than %u bytes", path,
				      CHECK_MANIFEST_MAX);
	else if (r < 0)
		r = bundle_report_add(report, r, "failed to read manifest '%s' from the bundle", path);
	if (r < 0)
		goto out;
	r = doc_parse_stream(buf_str(&data), data.len, NULL, &stream, &error);
	if (r < 0) {
		r = bundle_report_add(report, r, "manifest '%s': line %u: %s", path, error.line, error.message);
		goto out;
	}
	for (size_t i = 0; i < stream.count && r == 0; i++)
		r = check_component_add_document(component, stream.docs[i]);
out:
	doc_stream_release(&stream);
	buf_release(&data);
	return r;
}

static int describe_bundle(struct check_platform *out, const char *path, const struct bundle_report *report)
{
	char signature[128];
	int n;

	switch (report->signature) {
	case BUNDLE_SIGNATURE_VALID:
		snprintf(signature, sizeof(signature), "signed by trusted key %.16s", report->key_id);
		break;
	case BUNDLE_SIGNATURE_UNTRUSTED:
		snprintf(signature, sizeof(signature), "signed by key %.16s, which is not trusted here",
			 report->key_id);
		break;
	case BUNDLE_SIGNATURE_ABSENT:
		snprintf(signature, sizeof(signature), "unsigned");
		break;
	default:
		snprintf(signature, sizeof(signature), "signature not checked");
		break;
	}
	n = asprintf(&out->description, "%s (platform %s %s, %zu components, %zu images, %s)", path,
		     out->name ? out->name : "?", out->version ? out->version : "?", out->component_count,
		     out->image_count, signature);
	if (n < 0) {
		out->description = NULL;
		return -ENOMEM;
	}
	return 0;
}

int check_platform_from_bundle(const char *path, const struct bundle_trust *trust,
			       struct check_platform *out, struct bundle_report *report)
{
	struct bundle_check_options options = { .trust = trust, .allow_unsigned = true };
	struct bundle_reader *reader = NULL;
	const struct bundle_index *index;
	int r;

	memset(out, 0, sizeof(*out));
	out->from_bundle = true;
	r = bundle_reader_open(path, &options, &reader, report);
	if (r < 0)
		goto out;
	index = bundle_reader_index(reader);
	out->signature = report->signature;
	memcpy(out->key_id, report->key_id, sizeof(out->key_id));
	if (strdup_optional(index->name, &out->name) < 0 || strdup_optional(index->version, &out->version) < 0) {
		r = -ENOMEM;
		goto out;
	}
	if (index->kubernetes_min && preflight_parse_min_version(index->kubernetes_min, &out->min_version) == 0) {
		out->have_version_range = true;
		if (index->kubernetes_max &&
		    preflight_parse_min_version(index->kubernetes_max, &out->max_version) < 0)
			memset(&out->max_version, 0, sizeof(out->max_version));
	}
	for (size_t i = 0; i < index->image_count && r == 0; i++)
		r = platform_add_image(out, index->images[i].name, index->images[i].digest);
	for (size_t i = 0; i < index->component_count && r == 0; i++) {
		const struct bundle_component *source = &index->components[i];
		struct check_component *component =
			platform_add_component(out, source->name, source->version, source->namespace);

		if (!component) {
			r = -ENOMEM;
			break;
		}
		r = note_image_component(out, component, source);
		if (r == 0 && source->namespace)
			r = component_add_object(component, CHECK_OBJECT_NAMESPACE, NULL, source->namespace, 0);
		for (size_t j = 0; j < source->manifest_count && r == 0; j++)
			r = read_manifest(reader, component, source->manifests[j], report);
	}
	if (r == 0)
		r = describe_bundle(out, path, report);
out:
	bundle_reader_close(reader);
	if (r < 0)
		check_platform_release(out);
	return r;
}

/* Moves the objects of component from its bundle namespace to namespace, as mlboot install does. */
static int move_component_namespace(struct check_component *component, const char *namespace)
{
	const char *from = component->namespace;

	if (!from || strcmp(from, namespace) == 0)
		return 0;
	for (size_t i = 0; i < component->object_count; i++) {
		struct check_object *object = &component->objects[i];
		char **field = object->kind == CHECK_OBJECT_NAMESPACE ? &object->name : &object->namespace;
		char *copy;

		if (!*field || strcmp(*field, from) != 0)
			continue;
		copy = strdup(namespace);
		if (!copy)
			return -ENOMEM;
		free(*field);
		*field = copy;
	}
	free(component->namespace);
	component->namespace = strdup(namespace);
	return component->namespace ? 0 : -ENOMEM;
}

/* Keeps the images that a component of the platform lists, each named after the first such component. */
static int keep_component_images(struct check_platform *platform)
{
	size_t kept = 0;
	int r = 0;

	for (size_t i = 0; i < platform->image_count; i++) {
		struct check_image *image = &platform->images[i];
		const struct check_component *owner = NULL;

		for (size_t c = 0; c < platform->component_count && !owner; c++)
			for (size_t k = 0; k < platform->components[c].image_count && !owner; k++)
				if (strcmp(platform->components[c].images[k], image->name) == 0)
					owner = &platform->components[c];
		if (!owner) {
			free(image->name);
			free(image->digest);
			free(image->component);
			continue;
		}
		if (!image->component || strcmp(image->component, owner->name) != 0) {
			free(image->component);
			image->component = strdup(owner->name);
			if (!image->component)
				r = -ENOMEM;
		}
		platform->images[kept++] = *image;
	}
	platform->image_count = kept;
	return r;
}

int check_platform_select(struct check_platform *platform, const struct config *config, const char *bundle,
			  struct config_problems *problems)
{
	const struct config_components *settings = &config->components;
	const char **names = calloc(platform->component_count + 1, sizeof(*names));
	size_t kept = 0;
	int r;

	if (!names)
		return -ENOMEM;
	for (size_t i = 0; i < platform->component_count; i++)
		names[i] = platform->components[i].name;
	r = config_check_bundle_components(config, names, platform->component_count, bundle, problems);
	free(names);
	if (r < 0)
		return r;
	for (size_t i = 0; i < platform->component_count; i++) {
		struct check_component *component = &platform->components[i];

		if (!config_component_selected(config, component->name)) {
			log_info("component '%s' of the bundle is not listed in spec.components: not checked",
				 component->name);
			component_release(component);
			continue;
		}
		/* On failure the loop still ends, so that each component is counted once. */
		if (r == 0 && settings->sample_model_namespace_at.line &&
		    config_component_of(component->name) == CONFIG_COMPONENT_SAMPLE_MODEL)
			r = move_component_namespace(component, settings->sample_model_namespace);
		platform->components[kept++] = *component;
	}
	platform->component_count = kept;
	if (r == 0 && settings->listed)
		r = keep_component_images(platform);
	return r;
}

/* Collects labelled objects of one kind into the components their label names. */
struct label_walk {
	struct check_platform *platform;
	enum check_object_kind kind;
};

static struct check_component *find_component(struct check_platform *platform, const char *name)
{
	for (size_t i = 0; i < platform->component_count; i++)
		if (strcmp(platform->components[i].name, name) == 0)
			return &platform->components[i];
	return NULL;
}

static int add_labelled(const struct doc_node *item, void *userdata)
{
	struct label_walk *walk = userdata;
	const struct doc_node *labels = doc_find(item, "metadata", "labels", NULL);
	const char *component_name = doc_get_string(labels, CHECK_LABEL_COMPONENT);
	const char *version = doc_get_string(labels, CHECK_LABEL_PLATFORM_VERSION);
	const char *name = doc_find_string(item, "metadata", "name", NULL);
	const char *namespace = doc_find_string(item, "metadata", "namespace", NULL);
	const struct doc_node *replicas = doc_find(item, "spec", "replicas", NULL);
	struct check_component *component;
	long long count = 1;

	if (!name)
		return 0;
	if (!component_name || !component_name[0])
		component_name = "unnamed";
	component = find_component(walk->platform, component_name);
	if (!component) {
		component = platform_add_component(walk->platform, component_name, version, NULL);
		if (!component)
			return -ENOMEM;
	}
	if (version && !walk->platform->version && strdup_optional(version, &walk->platform->version) < 0)
		return -ENOMEM;
	/* A live object scaled to zero still needs its pods: expect at least one. */
	if (replicas && replicas->type == DOC_INT && replicas->integer > 0)
		count = replicas->integer;
	if (!kinds[walk->kind].namespaced)
		namespace = NULL;
	return component_add_object(component, walk->kind, namespace, name, count);
}

int check_platform_from_labels(struct kube_client *client, struct check_platform *out)
{
	struct buf selector = BUF_INIT(256);
	int r;

	memset(out, 0, sizeof(*out));
	r = buf_append_str(&selector, "?labelSelector=");
	if (r == 0)
		r = check_url_escape(&selector, CHECK_LABEL_MANAGED_BY "=mlboot");
	for (unsigned kind = 0; kind < CHECK_OBJECT_KIND_COUNT && r == 0; kind++) {
		struct label_walk walk = { out, (enum check_object_kind)kind };
		char *path = NULL, *query = NULL;

		r = check_object_path(walk.kind, NULL, NULL, &path);
		if (r == 0 && asprintf(&query, "%s%s", path, buf_str(&selector)) < 0) {
			query = NULL;
			r = -ENOMEM;
		}
		if (r == 0) {
			r = kube_list(client, query, add_labelled, &walk);
			/* A kind the server does not serve (no KServe installed) has no objects. */
			if (r == -ENOENT)
				r = 0;
		}
		free(path);
		free(query);
	}
	if (r == 0 && asprintf(&out->description, "none: %zu components found by the label %s=mlboot",
			       out->component_count, CHECK_LABEL_MANAGED_BY) < 0) {
		out->description = NULL;
		r = -ENOMEM;
	}
	buf_release(&selector);
	if (r < 0)
		check_platform_release(out);
	return r;
}
