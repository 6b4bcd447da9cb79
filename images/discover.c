/*
 * Finding the images that rendered manifests need. The rules, and why each
 * is there, are in docs/image-discovery.md; the functions below follow its
 * order: container lists anywhere in an object, container arguments and
 * environment values, then ConfigMaps and the structured text inside them.
 */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "images.h"

#define FIELD_PATH_MAX 1024
#define OBJECT_LABEL_MAX 512
/* Limits for structured text inside a ConfigMap value. */
static const struct doc_limits embedded_limits = {
	.max_bytes = 4u * 1024 * 1024,
	.max_depth = 64,
	.max_nodes = 1000000,
};

/* State of one walk over one object. */
struct discovery {
	struct image_set *set;
	const char *file;
	char object[OBJECT_LABEL_MAX];
	char field[FIELD_PATH_MAX];
	size_t field_len;
	/* Whether an invalid container image is a problem (true outside ConfigMap text). */
	bool strict;
	/* The line of the ConfigMap value being read, for positions inside its text. */
	unsigned base_line;
	/* Depth of ConfigMap text inside ConfigMap text being read. */
	unsigned nesting;
	int result;
};

/* Text inside text inside a ConfigMap value is read to this depth. */
#define TEXT_NESTING_MAX 3

/* --- The set ------------------------------------------------------------- */

void image_set_init(struct image_set *set)
{
	memset(set, 0, sizeof(*set));
}

static void source_release(struct image_source *source)
{
	free(source->file);
	free(source->object);
	free(source->field);
}

void image_set_release(struct image_set *set)
{
	if (!set)
		return;
	for (size_t i = 0; i < set->count; i++) {
		for (size_t j = 0; j < set->entries[i].source_count; j++)
			source_release(&set->entries[i].sources[j]);
		free(set->entries[i].sources);
		free(set->entries[i].reference);
	}
	free(set->entries);
	for (size_t i = 0; i < set->problem_count; i++)
		free(set->problems[i]);
	free(set->problems);
	memset(set, 0, sizeof(*set));
}

/* Binary search: the position of reference, or where it would be inserted. */
static size_t set_position(const struct image_set *set, const char *reference, bool *found)
{
	size_t low = 0, high = set->count;

	*found = false;
	while (low < high) {
		size_t middle = low + (high - low) / 2;
		int c = strcmp(set->entries[middle].reference, reference);

		if (c == 0) {
			*found = true;
			return middle;
		}
		if (c < 0)
			low = middle + 1;
		else
			high = middle;
	}
	return low;
}

const struct image_entry *image_set_find(const struct image_set *set, const char *reference)
{
	struct image_reference ref;
	char text[IMAGE_REFERENCE_MAX];
	bool found;
	size_t position;

	if (image_reference_parse(reference, &ref) < 0 || image_reference_format(&ref, text, sizeof(text)) < 0)
		return NULL;
	position = set_position(set, text, &found);
	return found ? &set->entries[position] : NULL;
}

static int entry_add_source(struct image_entry *entry, const struct image_source *source)
{
	struct image_source *copy;

	entry->source_total++;
	if (!source || entry->source_count >= IMAGE_SOURCES_MAX)
		return 0;
	if (entry->source_count % 4 == 0) {
		struct image_source *grown = realloc(entry->sources, (entry->source_count + 4) * sizeof(*grown));

		if (!grown)
			return -ENOMEM;
		entry->sources = grown;
	}
	copy = &entry->sources[entry->source_count];
	memset(copy, 0, sizeof(*copy));
	copy->line = source->line;
	copy->file = strdup(source->file ? source->file : "");
	copy->object = strdup(source->object ? source->object : "");
	copy->field = strdup(source->field ? source->field : "");
	if (!copy->file || !copy->object || !copy->field) {
		source_release(copy);
		return -ENOMEM;
	}
	entry->source_count++;
	return 0;
}

int image_set_add(struct image_set *set, const char *text, const struct image_source *source)
{
	struct image_reference ref;
	char normalised[IMAGE_REFERENCE_MAX];
	struct image_entry *entry;
	size_t position;
	bool found;

	if (image_reference_parse(text, &ref) < 0 || image_reference_format(&ref, normalised, sizeof(normalised)) < 0)
		return MLB_EINPUT;
	position = set_position(set, normalised, &found);
	if (!found) {
		if (set->count >= IMAGE_SET_MAX)
			return -E2BIG;
		if (set->count % 64 == 0) {
			struct image_entry *grown = realloc(set->entries, (set->count + 64) * sizeof(*grown));

			if (!grown)
				return -ENOMEM;
			set->entries = grown;
		}
		memmove(&set->entries[position + 1], &set->entries[position],
			(set->count - position) * sizeof(*set->entries));
		entry = &set->entries[position];
		memset(entry, 0, sizeof(*entry));
		entry->reference = strdup(normalised);
		set->count++;
		if (!entry->reference)
			return -ENOMEM;
	}
	return entry_add_source(&set->entries[position], source);
}

/* --- Recording what a walk finds ----------------------------------------- */

static void set_problem(struct image_set *set, const char *message)
{
	char *copy;

	set->problem_total++;
	if (set->problem_count >= IMAGE_PROBLEMS_MAX)
		return;
	if (set->problem_count % 16 == 0) {
		char **grown = realloc(set->problems, (set->problem_count + 16) * sizeof(*grown));

		if (!grown)
			return;
		set->problems = grown;
	}
	copy = strdup(message);
	if (copy)
		set->problems[set->problem_count++] = copy;
}

/* Copies text for a message, with control characters and non-ASCII bytes as '?'. */
static void escape_value(const char *text, char *out, size_t size)
{
	size_t i;

	for (i = 0; text[i] && i + 4 < size; i++)
		out[i] = (text[i] >= 0x20 && text[i] < 0x7f) ? text[i] : '?';
	if (text[i] && size > 4) {
		strcpy(out + i, "...");
		return;
	}
	out[i] = '\0';
}

static unsigned node_line(const struct discovery *d, const struct doc_node *node)
{
	/* Nodes parsed from ConfigMap text count lines from the start of that text. */
	return d->base_line ? d->base_line + node->line : node->line;
}

static void record(struct discovery *d, const char *text, const struct doc_node *node, bool strict)
{
	struct image_source source = {
		.file = (char *)d->file,
		.object = d->object,
		.field = d->field,
		.line = node_line(d, node),
	};
	int r;

	if (d->result < 0)
		return;
	r = image_set_add(d->set, text, &source);
	if (r == MLB_EINPUT) {
		char value[128], message[FIELD_PATH_MAX + OBJECT_LABEL_MAX + 512];

		if (!strict)
			return;
		escape_value(text, value, sizeof(value));
		snprintf(message, sizeof(message), "%s:%u: %s: %s: invalid image reference '%s'",
			 d->file, source.line, d->object, d->field, value);
		set_problem(d->set, message);
		return;
	}
	if (r < 0)
		d->result = r;
}

static size_t field_push(struct discovery *d, const char *format, ...)
	__attribute__((format(printf, 2, 3)));

/* Appends to the field path; returns the length to restore with field_pop(). */
static size_t field_push(struct discovery *d, const char *format, ...)
{
	size_t saved = d->field_len;
	va_list args;
	int n;

	if (d->field_len + 1 >= sizeof(d->field))
		return saved;
	va_start(args, format);
	n = vsnprintf(d->field + d->field_len, sizeof(d->field) - d->field_len, format, args);
	va_end(args);
	if (n > 0)
		d->field_len += (size_t)n;
	if (d->field_len >= sizeof(d->field))
		d->field_len = sizeof(d->field) - 1;
	return saved;
}

static void field_pop(struct discovery *d, size_t saved)
{
	d->field_len = saved;
	d->field[saved] = '\0';
}

static size_t field_push_key(struct discovery *d, const char *key)
{
	return field_push(d, "%s%s", d->field_len ? "." : "", key);
}

/* --- Which names and values are images ------------------------------------ */

/* Whether a key or argument name ends in "image", as in --executor-image, cacheImage or TENSORBOARD_IMAGE. */
static bool name_ends_in_image(const char *name, size_t len)
{
	return len >= 5 && strncasecmp(name + len - 5, "image", 5) == 0;
}

/*
 * Whether a value under an image-named key is taken as an image: it must
 * parse, and name more than one bare word, since such keys also hold flags
 * and words like "true" or "Always" that would parse as docker.io names.
 */
static bool looks_like_image(const char *text)
{
	struct image_reference ref;

	if (!text || !*text || image_reference_parse(text, &ref) < 0)
		return false;
	return strpbrk(text, "/:@") != NULL;
}

static const char *string_value(const struct doc_node *node)
{
	if (!node || node->type != DOC_STRING || strlen(node->text) != node->text_len)
		return NULL;
	return node->text;
}

/* --- Containers ---------------------------------------------------------- */

/* Arguments "--NAME-image=REF", "--image=REF", and "--NAME-image REF" as two items. */
static void scan_arguments(struct discovery *d, const struct doc_node *list, const char *key)
{
	if (!list || list->type != DOC_SEQ)
		return;
	for (size_t i = 0; i < list->count; i++) {
		const char *arg = string_value(list->items[i]);
		const char *name, *equals, *value = NULL;
		size_t name_len, saved;

		if (!arg || arg[0] != '-')
			continue;
		name = arg + strspn(arg, "-");
		equals = strchr(name, '=');
		name_len = equals ? (size_t)(equals - name) : strlen(name);
		if (!name_ends_in_image(name, name_len))
			continue;
		if (equals) {
			value = equals + 1;
		} else if (i + 1 < list->count) {
			value = string_value(list->items[i + 1]);
			if (value && value[0] == '-')
				value = NULL;
		}
		if (!looks_like_image(value))
			continue;
		saved = field_push(d, ".%s[%zu]", key, equals ? i : i + 1);
		record(d, value, list->items[equals ? i : i + 1], false);
		field_pop(d, saved);
	}
}

/* Environment values named *IMAGE, and values that are fully qualified references. */
static void scan_environment(struct discovery *d, const struct doc_node *list)
{
	if (!list || list->type != DOC_SEQ)
		return;
	for (size_t i = 0; i < list->count; i++) {
		const struct doc_node *item = list->items[i];
		const char *name = doc_get_string(item, "name");
		const struct doc_node *value_node = doc_get(item, "value");
		const char *value = string_value(value_node);
		size_t saved;

		if (!name || !value)
			continue;
		if (!(name_ends_in_image(name, strlen(name)) && looks_like_image(value)) &&
		    !image_reference_is_fully_qualified(value))
			continue;
		saved = field_push(d, ".env[%s]", name);
		record(d, value, value_node, false);
		field_pop(d, saved);
	}
}

static void scan_container(struct discovery *d, const struct doc_node *container)
{
	const struct doc_node *image;
	size_t saved;

	if (container->type != DOC_MAP)
		return;
	image = doc_get(container, "image");
	if (image && image->type == DOC_STRING && image->text_len > 0) {
		saved = field_push(d, ".image");
		record(d, image->text, image, d->strict);
		field_pop(d, saved);
	}
	scan_arguments(d, doc_get(container, "args"), "args");
	scan_arguments(d, doc_get(container, "command"), "command");
	scan_environment(d, doc_get(container, "env"));
}

/* Keys whose value is a list of containers, wherever they appear (Argo uses "sidecars"). */
static bool is_container_list_key(const char *key)
{
	return strcmp(key, "containers") == 0 || strcmp(key, "initContainers") == 0 ||
	       strcmp(key, "ephemeralContainers") == 0 || strcmp(key, "sidecars") == 0;
}

/* Keys whose value is one container (Argo Workflows templates). */
static bool is_container_key(const char *key)
{
	return strcmp(key, "container") == 0 || strcmp(key, "script") == 0;
}

static void walk_embedded(struct discovery *d, const struct doc_node *node);

/*
 * KServe's explainer entries give "image" without a tag and the tag as
 * "defaultImageVersion" beside it; the controller joins them.
 */
static void record_versioned_image(struct discovery *d, const struct doc_node *image, const char *version)
{
	char composed[IMAGE_REFERENCE_MAX + 16];
	const char *last_slash = strrchr(image->text, '/');

	if (strchr(image->text, '@') || strchr(last_slash ? last_slash : image->text, ':') || !*version)
		snprintf(composed, sizeof(composed), "%s", image->text);
	else
		snprintf(composed, sizeof(composed), "%s:%s", image->text, version);
	if (looks_like_image(composed))
		record(d, composed, image, false);
}
static void scan_text(struct discovery *d, const struct doc_node *value, const char *text);

/*
 * Walks a tree for container lists. In ConfigMap text (embedded is true),
 * image-named keys and fully qualified strings count as well.
 */
static void walk_tree(struct discovery *d, const struct doc_node *node, bool embedded)
{
	if (d->result < 0)
		return;
	if (node->type == DOC_SEQ) {
		for (size_t i = 0; i < node->count; i++) {
			size_t saved = field_push(d, "[%zu]", i);

			if (embedded)
				walk_embedded(d, node->items[i]);
			else
				walk_tree(d, node->items[i], false);
			field_pop(d, saved);
		}
		return;
	}
	if (node->type != DOC_MAP)
		return;
	for (size_t i = 0; i < node->count; i++) {
		const struct doc_node *member = node->items[i];
		size_t saved = field_push_key(d, member->key);

		if (is_container_list_key(member->key) && member->type == DOC_SEQ) {
			for (size_t j = 0; j < member->count; j++) {
				size_t item_saved = field_push(d, "[%zu]", j);

				scan_container(d, member->items[j]);
				field_pop(d, item_saved);
			}
		} else if (is_container_key(member->key) && member->type == DOC_MAP && doc_get(member, "image")) {
			scan_container(d, member);
		} else if (embedded && member->type == DOC_STRING && doc_get_string(node, "defaultImageVersion") &&
			   name_ends_in_image(member->key, strlen(member->key))) {
			record_versioned_image(d, member, doc_get_string(node, "defaultImageVersion"));
		} else if (embedded) {
			walk_embedded(d, member);
		} else {
			walk_tree(d, member, false);
		}
		field_pop(d, saved);
	}
}

/*
 * A member of ConfigMap text: a string under an image-named key (with
 * KServe's "defaultImageVersion" beside it as the tag when the image has
 * none), any fully qualified string, or a subtree to walk.
 */
static void walk_embedded(struct discovery *d, const struct doc_node *node)
{
	const char *text = string_value(node);

	if (node->type == DOC_MAP || node->type == DOC_SEQ) {
		walk_tree(d, node, true);
		return;
	}
	if (!text)
		return;
	if (node->key && name_ends_in_image(node->key, strlen(node->key)) && looks_like_image(text)) {
		record(d, text, node, false);
		return;
	}
	if (image_reference_is_fully_qualified(text)) {
		record(d, text, node, false);
		return;
	}
	if (strchr(text, '\n'))
		scan_text(d, node, text);
}

/* --- ConfigMaps ---------------------------------------------------------- */

/* A scalar that Helm values give as a string or, unquoted, as a number. */
static const char *scalar_text(const struct doc_node *node)
{
	if (!node || !node->text || node->type == DOC_MAP || node->type == DOC_SEQ || node->type == DOC_NULL)
		return NULL;
	return node->text;
}

/*
 * Records one image of Istio's values, composed as its charts do. An image
 * that contains "/" is used as it is. Otherwise it is HUB/IMAGE:TAG, with
 * "-VARIANT" appended to the tag when a variant is set.
 */
static void record_istio_image(struct discovery *d, const struct doc_node *position, const struct doc_node *image_node,
			       const char *fallback_image, const char *hub, const char *tag, const char *variant,
			       const char *field)
{
	const char *image = scalar_text(image_node);
	char composed[IMAGE_REFERENCE_MAX + 64];
	size_t saved;

	if (!image || !*image)
		image = fallback_image;
	if (!image)
		return;
	if (strchr(image, '/'))
		snprintf(composed, sizeof(composed), "%s", image);
	else
		snprintf(composed, sizeof(composed), "%s/%s:%s%s%s", hub, image, tag,
			 variant && *variant ? "-" : "", variant ? variant : "");
	saved = field_push(d, "%s", field);
	record(d, composed, image_node ? image_node : position, false);
	field_pop(d, saved);
}

/* Whether a parsed ConfigMap value is Istio's Helm values: a "global" map with a hub. */
static bool is_istio_values(const struct doc_node *root)
{
	const struct doc_node *global = doc_get(root, "global");

	return global && global->type == DOC_MAP && scalar_text(doc_get(global, "hub"));
}

static void scan_istio_values(struct discovery *d, const struct doc_node *root)
{
	const struct doc_node *global = doc_get(root, "global");
	const char *hub = scalar_text(doc_get(global, "hub"));
	const char *tag = scalar_text(doc_get(global, "tag"));
	const char *variant = scalar_text(doc_get(global, "variant"));
	const struct doc_node *proxy = doc_get(global, "proxy");
	const struct doc_node *proxy_init = doc_get(global, "proxy_init");
	const char *own_hub = scalar_text(doc_get(root, "hub"));
	const char *own_tag = scalar_text(doc_get(root, "tag"));
	const char *own_variant = scalar_text(doc_get(root, "variant"));

	if (!hub || !*hub || !tag || !*tag)
		return;
	if (proxy && proxy->type == DOC_MAP) {
		const char *proxy_variant = scalar_text(doc_get(proxy, "variant"));

		record_istio_image(d, proxy, doc_get(proxy, "image"), "proxyv2", hub, tag,
				   proxy_variant && *proxy_variant ? proxy_variant : variant, ".global.proxy.image");
	}
	if (proxy_init && proxy_init->type == DOC_MAP && doc_get(proxy_init, "image"))
		record_istio_image(d, proxy_init, doc_get(proxy_init, "image"), NULL, hub, tag, variant,
				   ".global.proxy_init.image");
	/* The istiod chart's own image, with its hub and tag falling back to global. */
	if (scalar_text(doc_get(root, "image")))
		record_istio_image(d, root, doc_get(root, "image"), NULL, own_hub && *own_hub ? own_hub : hub,
				   own_tag && *own_tag ? own_tag : tag,
				   own_variant && *own_variant ? own_variant : variant, ".image");
}

/* Whether a ConfigMap value may be JSON or YAML worth parsing. */
static bool looks_structured(const char *text)
{
	const char *start = text + strspn(text, " \t\r\n");

	return *start == '{' || *start == '[' || strchr(text, '\n') != NULL;
}

/*
 * Reads "image: VALUE" lines of text that is not YAML, such as the Go
 * templates of Istio's injector. Templated values do not parse as
 * references and are skipped; literal ones count.
 */
static void scan_template_lines(struct discovery *d, const struct doc_node *value, const char *text)
{
	unsigned line = 0;

	for (const char *start = text; *start; line++) {
		const char *end = strchr(start, '\n');
		size_t len = end ? (size_t)(end - start) : strlen(start);
		char copy[IMAGE_REFERENCE_MAX + 64], *item, *tail;
		struct doc_node position = { .line = value->line + line + 1 };

		if (len < sizeof(copy)) {
			memcpy(copy, start, len);
			copy[len] = '\0';
			item = copy + strspn(copy, " \t");
			if (item[0] == '-' && (item[1] == ' ' || item[1] == '\t'))
				item += 1 + strspn(item + 1, " \t");
			if (strncmp(item, "image:", 6) == 0) {
				item += 6 + strspn(item + 6, " \t");
				tail = strstr(item, " #");
				if (tail)
					*tail = '\0';
				len = strlen(item);
				while (len > 0 && (item[len - 1] == ' ' || item[len - 1] == '\t' || item[len - 1] == '\r'))
					item[--len] = '\0';
				if (len >= 2 && (item[0] == '"' || item[0] == '\'') && item[len - 1] == item[0]) {
					item[len - 1] = '\0';
					item++;
				}
				if (looks_like_image(item)) {
					size_t saved = field_push(d, "(line %u)", line + 1);

					record(d, item, &position, false);
					field_pop(d, saved);
				}
			}
		}
		start = end ? end + 1 : start + len;
	}
}

/* Reads ConfigMap text: YAML or JSON is parsed and walked, anything else read line by line. */
static void scan_text(struct discovery *d, const struct doc_node *value, const char *text)
{
	struct doc_node *root = NULL;
	struct doc_error error;
	unsigned saved_line = d->base_line;

	if (d->nesting >= TEXT_NESTING_MAX)
		return;
	d->nesting++;
	d->base_line = node_line(d, value);
	if (doc_parse(text, strlen(text), &embedded_limits, &root, &error) < 0) {
		d->base_line = saved_line;
		scan_template_lines(d, value, text);
	} else if (is_istio_values(root)) {
		scan_istio_values(d, root);
		walk_tree(d, root, false);
	} else if (root->type == DOC_MAP || root->type == DOC_SEQ) {
		walk_tree(d, root, true);
	}
	d->base_line = saved_line;
	d->nesting--;
	doc_free(root);
}

static void scan_configmap_value(struct discovery *d, const struct doc_node *value)
{
	const char *text = string_value(value);
	char trimmed[IMAGE_REFERENCE_MAX];
	size_t len;

	if (!text)
		return;
	len = strlen(text);
	while (len > 0 && isspace((unsigned char)text[len - 1]))
		len--;
	if (len > 0 && len < sizeof(trimmed)) {
		memcpy(trimmed, text, len);
		trimmed[len] = '\0';
		if (!strpbrk(trimmed, " \t\n") &&
		    ((name_ends_in_image(value->key, strlen(value->key)) && looks_like_image(trimmed)) ||
		     image_reference_is_fully_qualified(trimmed))) {
			record(d, trimmed, value, false);
			return;
		}
	}
	if (!looks_structured(text))
		return;
	d->strict = false;
	scan_text(d, value, text);
	d->strict = true;
}

static void scan_configmap(struct discovery *d, const struct doc_node *object)
{
	const struct doc_node *data = doc_get(object, "data");

	if (!data || data->type != DOC_MAP)
		return;
	for (size_t i = 0; i < data->count; i++) {
		const struct doc_node *value = data->items[i];
		size_t saved;

		/* Knative and KServe keep commented examples under "_example"; they configure nothing. */
		if (strncmp(value->key, "_example", 8) == 0)
			continue;
		saved = field_push(d, "data.%s", value->key);
		scan_configmap_value(d, value);
		field_pop(d, saved);
		if (d->result < 0)
			return;
	}
}

/* --- Objects ------------------------------------------------------------- */

static void label_object(struct discovery *d, const struct doc_node *object, const char *kind)
{
	const char *namespace = doc_find_string(object, "metadata", "namespace", NULL);
	const char *name = doc_find_string(object, "metadata", "name", NULL);

	if (!name)
		name = doc_find_string(object, "metadata", "generateName", NULL);
	snprintf(d->object, sizeof(d->object), "%.100s/%.100s%s%.200s", kind,
		 namespace ? namespace : "", namespace ? "/" : "", name ? name : "(unnamed)");
	for (char *p = d->object; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '?';
}

int image_discover(const struct doc_stream *stream, const char *file, struct image_set *set)
{
	struct discovery d;

	memset(&d, 0, sizeof(d));
	d.set = set;
	d.file = file ? file : "-";
	for (size_t i = 0; i < stream->count && d.result == 0; i++) {
		const struct doc_node *object = stream->docs[i];
		const char *kind = doc_get_string(object, "kind");

		if (!object || object->type != DOC_MAP || !kind)
			continue;
		/* CRD schemas describe image fields; Secrets hold encoded data, not images. */
		if (strcmp(kind, "CustomResourceDefinition") == 0 || strcmp(kind, "Secret") == 0)
			continue;
		label_object(&d, object, kind);
		d.strict = true;
		field_pop(&d, 0);
		for (size_t j = 0; j < object->count; j++) {
			const struct doc_node *member = object->items[j];
			size_t saved;

			if (strcmp(member->key, "metadata") == 0 || strcmp(member->key, "data") == 0)
				continue;
			saved = field_push_key(&d, member->key);
			walk_tree(&d, member, false);
			field_pop(&d, saved);
		}
		if (strcmp(kind, "ConfigMap") == 0)
			scan_configmap(&d, object);
	}
	return d.result;
}
