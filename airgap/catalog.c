/*
 * The catalog (docs/catalog.md) and `mlboot bundle build` from it. The
 * whole catalog is validated first, every problem reported with file, line
 * and field; only then are files read. Sources are local paths, relative
 * to the catalog's folder; URL sources are rejected by this build.
 */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "airgap-internal.h"
#include "fields.h"

#define CATALOG_MAX (4u * 1024 * 1024)
#define CATALOG_KIND "Catalog"

static const struct doc_limits catalog_limits = {
	.max_bytes = CATALOG_MAX,
	.max_depth = 32,
	.max_nodes = 1000000,
};

/* A source: a local file (resolved) and an optional pinned sha256. */
struct catalog_source {
	char *path;
	bool pinned;
	unsigned char sha256[SHA256_BYTES];
	const struct doc_node *node;
};

struct catalog_file {
	char *name;                  /* manifest file name or binary name */
	char *platform;              /* binaries only */
	struct catalog_source source;
};

struct catalog_image {
	char *name;
	char *digest;                /* optional "sha256:HEX" pin */
	struct catalog_source source;
};

struct catalog_component {
	const char *name, *version, *namespace;
	struct catalog_file *manifests;
	size_t manifest_count;
	struct catalog_file *binaries;
	size_t binary_count;
	struct catalog_image *images;
	size_t image_count;
};

struct catalog {
	const char *file;            /* the catalog path, for messages */
	struct bundle_report *report;
	struct field_reader fields;  /* reader for fields.c, reporting through catalog_error() */
	struct doc_node *root;
	const char *name, *version, *kubernetes_min, *kubernetes_max;
	const char **platforms;
	size_t platform_count;
	struct catalog_component *components;
	size_t component_count;
};

__attribute__((format(printf, 4, 5)))
static void catalog_error(struct catalog *catalog, const struct doc_node *node, const char *field,
			  const char *format, ...)
{
	char message[384];
	va_list args;

	va_start(args, format);
	vsnprintf(message, sizeof(message), format, args);
	va_end(args);
	if (node)
		bundle_report_add(catalog->report, MLB_EINPUT, "%s:%u:%u: %s: %s", catalog->file, node->line,
				  node->column, field, message);
	else
		bundle_report_add(catalog->report, MLB_EINPUT, "%s: %s: %s", catalog->file, field, message);
}

static void catalog_report(void *context, const struct doc_node *node, const char *field, const char *message)
{
	catalog_error(context, node, field, "%s", message);
}

/* The text of a scalar member (strings, and numbers as written, such as 1.30); NULL when missing. */
static const char *get_text(struct catalog *catalog, const struct doc_node *map, const char *field,
			    const char *key, bool required)
{
	const struct doc_node *node = field_get(&catalog->fields, map, field, key, required);

	if (!node)
		return NULL;
	if ((node->type != DOC_STRING && node->type != DOC_INT && node->type != DOC_FLOAT) || !node->text ||
	    node->text_len == 0 || memchr(node->text, '\0', node->text_len)) {
		catalog_error(catalog, node, field, "'%s' must be a non-empty string", key);
		return NULL;
	}
	return node->text;
}

static const struct doc_node *get_list(struct catalog *catalog, const struct doc_node *map, const char *field,
				       const char *key, bool required)
{
	return field_get_typed(&catalog->fields, map, field, key, DOC_SEQ, "a list", required);
}

static bool is_dns_label(const char *text)
{
	size_t len = strlen(text);

	if (len == 0 || len > 63 || text[0] == '-' || text[len - 1] == '-')
		return false;
	return strspn(text, "abcdefghijklmnopqrstuvwxyz0123456789-") == len;
}

/* Parses "1.N" into N; -1 when the text is not a Kubernetes minor version. */
static long kubernetes_minor(const char *text)
{
	char *end;
	long minor;

	if (strncmp(text, "1.", 2) != 0 || text[2] < '0' || text[2] > '9')
		return -1;
	errno = 0;
	minor = strtol(text + 2, &end, 10);
	if (errno || *end || minor > 1000)
		return -1;
	return minor;
}

/* Reads path, or rejects url, of a manifest or binary item; sha256 pins it when given. */
static void parse_source(struct catalog *catalog, const struct doc_node *item, const char *field,
			 struct catalog_source *source)
{
	const char *path = get_text(catalog, item, field, "path", false);
	const char *url = get_text(catalog, item, field, "url", false);
	const char *sha256 = get_text(catalog, item, field, "sha256", false);
	int r;

	source->node = item;
	if (url) {
		catalog_error(catalog, doc_get(item, "url"), field,
			      "url sources are not supported by this build, which reads local paths only: download the file and give its 'path'");
		return;
	}
	if (!path) {
		catalog_error(catalog, item, field, "missing 'path'");
		return;
	}
	if (sha256) {
		if (hex_decode_sha256(sha256, strlen(sha256), source->sha256) < 0)
			catalog_error(catalog, doc_get(item, "sha256"), field, "'sha256' must be 64 lowercase hex digits");
		else
			source->pinned = true;
	}
	r = file_resolve_relative(catalog->file, path, &source->path);
	if (r < 0)
		catalog_error(catalog, item, field, "failed to resolve '%s': %s", path, mlb_strerror(r));
}

static const char *base_name(const char *path)
{
	const char *slash = strrchr(path, '/');

	return slash ? slash + 1 : path;
}

static void parse_manifests(struct catalog *catalog, const struct doc_node *node, const char *component_field,
			    struct catalog_component *c)
{
	static const char *const keys[] = { "path", "url", "sha256", NULL };
	const struct doc_node *list = get_list(catalog, node, component_field, "manifests", false);
	const struct doc_node *item;
	struct field_walk walk;

	if (!list)
		return;
	c->manifests = calloc(list->count + 1, sizeof(*c->manifests));
	if (!c->manifests) {
		bundle_report_add(catalog->report, -ENOMEM, "out of memory");
		return;
	}
	field_walk_init(&walk, &catalog->fields, list, component_field, "manifests", keys,
			"must be a map with 'path'");
	while ((item = field_walk_next(&walk))) {
		struct catalog_file *manifest = &c->manifests[c->manifest_count];
		const char *field = walk.field;

		parse_source(catalog, item, field, &manifest->source);
		if (!manifest->source.path)
			continue;
		manifest->name = strdup(base_name(manifest->source.path));
		c->manifest_count++;
		for (size_t k = 0; manifest->name && k + 1 < c->manifest_count; k++)
			if (strcmp(c->manifests[k].name, manifest->name) == 0)
				catalog_error(catalog, item, field, "a second manifest named '%s' in this component",
					      manifest->name);
	}
}

static bool platform_listed(const struct catalog *catalog, const char *platform)
{
	for (size_t i = 0; i < catalog->platform_count; i++)
		if (strcmp(catalog->platforms[i], platform) == 0)
			return true;
	return false;
}

static void parse_binaries(struct catalog *catalog, const struct doc_node *node, const char *component_field,
			   struct catalog_component *c)
{
	static const char *const keys[] = { "name", "platform", "path", "url", "sha256", NULL };
	const struct doc_node *list = get_list(catalog, node, component_field, "binaries", false);
	const struct doc_node *item;
	struct field_walk walk;

	if (!list)
		return;
	c->binaries = calloc(list->count + 1, sizeof(*c->binaries));
	if (!c->binaries) {
		bundle_report_add(catalog->report, -ENOMEM, "out of memory");
		return;
	}
	field_walk_init(&walk, &catalog->fields, list, component_field, "binaries", keys,
			"must be a map with 'name', 'platform' and 'path'");
	while ((item = field_walk_next(&walk))) {
		struct catalog_file *binary = &c->binaries[c->binary_count];
		const char *field = walk.field;
		const char *name, *platform;

		name = get_text(catalog, item, field, "name", true);
		platform = get_text(catalog, item, field, "platform", true);
		parse_source(catalog, item, field, &binary->source);
		if (platform && !platform_listed(catalog, platform))
			catalog_error(catalog, doc_get(item, "platform"), field,
				      "the platform '%s' is not in spec.platforms", platform);
		if (!name || !platform || !binary->source.path)
			continue;
		binary->name = strdup(name);
		binary->platform = strdup(platform);
		c->binary_count++;
	}
}

static void parse_images(struct catalog *catalog, const struct doc_node *node, const char *component_field,
			 struct catalog_component *c)
{
	static const char *const keys[] = { "name", "path", "digest", NULL };
	const struct doc_node *list = get_list(catalog, node, component_field, "images", false);
	const struct doc_node *item;
	struct field_walk walk;

	if (!list)
		return;
	c->images = calloc(list->count + 1, sizeof(*c->images));
	if (!c->images) {
		bundle_report_add(catalog->report, -ENOMEM, "out of memory");
		return;
	}
	field_walk_init(&walk, &catalog->fields, list, component_field, "images", keys,
			"must be a map with 'name' and 'path'");
	while ((item = field_walk_next(&walk))) {
		struct catalog_image *image = &c->images[c->image_count];
		const char *field = walk.field;
		const char *name, *path, *digest;
		unsigned char ignored[SHA256_BYTES];
		int r;

		name = get_text(catalog, item, field, "name", true);
		path = get_text(catalog, item, field, "path", false);
		digest = get_text(catalog, item, field, "digest", false);
		if (name && !path) {
			catalog_error(catalog, item, field,
				      "the image '%s' has no 'path': pulling from a registry is not supported by this build, give an OCI layout folder or OCI archive",
				      name);
			continue;
		}
		if (digest && (strncmp(digest, "sha256:", 7) != 0 ||
			       hex_decode_sha256(digest + 7, strlen(digest + 7), ignored) < 0)) {
			catalog_error(catalog, doc_get(item, "digest"), field, "'digest' must be sha256: and 64 hex digits");
			continue;
		}
		if (!name || !path)
			continue;
		r = file_resolve_relative(catalog->file, path, &image->source.path);
		if (r < 0) {
			catalog_error(catalog, item, field, "failed to resolve '%s'", path);
			continue;
		}
		image->source.node = item;
		image->name = strdup(name);
		image->digest = digest ? strdup(digest) : NULL;
		c->image_count++;
	}
}

static void parse_components(struct catalog *catalog, const struct doc_node *spec)
{
	static const char *const keys[] = { "name", "version", "namespace", "manifests", "images", "binaries", NULL };
	const struct doc_node *list = get_list(catalog, spec, "spec", "components", true);
	const struct doc_node *node;
	struct field_walk walk;

	if (!list ||
	    !field_check_count(&catalog->fields, list, "spec.components", BUNDLE_COMPONENTS_MAX, "components"))
		return;
	catalog->components = calloc(list->count + 1, sizeof(*catalog->components));
	if (!catalog->components) {
		bundle_report_add(catalog->report, -ENOMEM, "out of memory");
		return;
	}
	catalog->component_count = list->count;
	field_walk_init(&walk, &catalog->fields, list, "spec", "components", keys, "must be a map");
	while ((node = field_walk_next(&walk))) {
		size_t i = walk.index;
		struct catalog_component *c = &catalog->components[i];
		const char *field = walk.field;

		c->name = get_text(catalog, node, field, "name", true);
		c->version = get_text(catalog, node, field, "version", true);
		c->namespace = get_text(catalog, node, field, "namespace", false);
		if (c->name && !is_dns_label(c->name))
			catalog_error(catalog, doc_get(node, "name"), field,
				      "invalid name '%s': use lowercase letters, digits and '-', at most 63", c->name);
		if (c->namespace && !is_dns_label(c->namespace))
			catalog_error(catalog, doc_get(node, "namespace"), field, "invalid namespace '%s'", c->namespace);
		for (size_t k = 0; c->name && k < i; k++)
			if (catalog->components[k].name && strcmp(catalog->components[k].name, c->name) == 0)
				catalog_error(catalog, node, field, "the component '%s' is listed twice", c->name);
		parse_manifests(catalog, node, field, c);
		parse_binaries(catalog, node, field, c);
		parse_images(catalog, node, field, c);
	}
}

static void parse_spec(struct catalog *catalog, const struct doc_node *spec)
{
	static const char *const keys[] = { "version", "kubernetes", "platforms", "components", NULL };
	static const char *const kubernetes_keys[] = { "minVersion", "maxVersion", NULL };
	const struct doc_node *kubernetes = doc_get(spec, "kubernetes");
	const struct doc_node *platforms = get_list(catalog, spec, "spec", "platforms", true);

	field_check_keys(&catalog->fields, spec, "spec", keys);
	catalog->version = get_text(catalog, spec, "spec", "version", true);
	if (!kubernetes || kubernetes->type != DOC_MAP) {
		catalog_error(catalog, kubernetes ? kubernetes : spec, "spec.kubernetes",
			      "missing, or not a map with minVersion and maxVersion");
	} else {
		field_check_keys(&catalog->fields, kubernetes, "spec.kubernetes", kubernetes_keys);
		catalog->kubernetes_min = get_text(catalog, kubernetes, "spec.kubernetes", "minVersion", true);
		catalog->kubernetes_max = get_text(catalog, kubernetes, "spec.kubernetes", "maxVersion", true);
		if (catalog->kubernetes_min && catalog->kubernetes_max) {
			long min = kubernetes_minor(catalog->kubernetes_min), max = kubernetes_minor(catalog->kubernetes_max);

			if (min < 0 || max < 0)
				catalog_error(catalog, kubernetes, "spec.kubernetes",
					      "versions must be minor versions such as \"1.24\" (quote them in YAML)");
			else if (min > max)
				catalog_error(catalog, kubernetes, "spec.kubernetes", "minVersion %s is above maxVersion %s",
					      catalog->kubernetes_min, catalog->kubernetes_max);
		}
	}
	if (platforms) {
		catalog->platforms = calloc(platforms->count + 1, sizeof(*catalog->platforms));
		if (!catalog->platforms) {
			bundle_report_add(catalog->report, -ENOMEM, "out of memory");
			return;
		}
		if (platforms->count == 0)
			catalog_error(catalog, platforms, "spec.platforms", "must list at least one platform");
		for (size_t i = 0; i < platforms->count; i++) {
			const struct doc_node *item = platforms->items[i];

			if (item->type != DOC_STRING || !strchr(item->text, '/')) {
				catalog_error(catalog, item, "spec.platforms", "items must be OS/ARCH, such as linux/amd64");
				continue;
			}
			catalog->platforms[catalog->platform_count++] = item->text;
		}
	}
	parse_components(catalog, spec);
}

static int catalog_parse(struct catalog *catalog, const char *path, struct bundle_report *report)
{
	static const char *const keys[] = { "apiVersion", "kind", "metadata", "spec", NULL };
	struct buf data = BUF_INIT(CATALOG_MAX);
	struct doc_error error = { "", 0, 0 };
	const struct doc_node *spec;
	int r;

	catalog->file = path;
	catalog->report = report;
	catalog->fields = (struct field_reader){ catalog_report, catalog };
	r = file_read_all(path, CATALOG_MAX, &data);
	if (r < 0) {
		buf_release(&data);
		if (r == -EFBIG)
			return bundle_report_add(report, MLB_EINPUT, "%s: cannot read the catalog: it is larger than 4 MiB",
						 path);
		/* A catalog that is missing, a folder or not readable is a wrong input; a failing disk is not. */
		if (r != -ENOMEM && r != -EIO)
			return bundle_report_add(report, MLB_EINPUT, "%s: cannot read the catalog: %s", path,
						 mlb_strerror(r));
		return bundle_report_add(report, r, "%s: failed to read the catalog: %s", path, mlb_strerror(r));
	}
	r = doc_parse(data.data, data.len, &catalog_limits, &catalog->root, &error);
	buf_release(&data);
	if (r < 0)
		return bundle_report_add(report, r == -ENOMEM ? r : MLB_EINPUT, "%s:%u:%u: %s", path, error.line,
					 error.column, error.message);
	if (catalog->root->type != DOC_MAP)
		return bundle_report_add(report, MLB_EINPUT, "%s: the catalog must be a map", path);
	field_check_keys(&catalog->fields, catalog->root, "catalog", keys);
	if (!doc_string_equals(doc_get(catalog->root, "apiVersion"), BUNDLE_API_VERSION))
		catalog_error(catalog, catalog->root, "apiVersion", "must be %s", BUNDLE_API_VERSION);
	if (!doc_string_equals(doc_get(catalog->root, "kind"), CATALOG_KIND))
		catalog_error(catalog, catalog->root, "kind", "must be %s", CATALOG_KIND);
	catalog->name = doc_find_string(catalog->root, "metadata", "name", NULL);
	if (!catalog->name || !catalog->name[0])
		catalog_error(catalog, catalog->root, "metadata.name", "missing");
	spec = doc_get(catalog->root, "spec");
	if (!spec || spec->type != DOC_MAP)
		catalog_error(catalog, catalog->root, "spec", "missing, or not a map");
	else
		parse_spec(catalog, spec);
	return report->result;
}

static void catalog_release(struct catalog *catalog)
{
	for (size_t i = 0; catalog->components && i < catalog->component_count; i++) {
		struct catalog_component *c = &catalog->components[i];

		for (size_t j = 0; j < c->manifest_count; j++) {
			free(c->manifests[j].name);
			free(c->manifests[j].source.path);
		}
		free(c->manifests);
		for (size_t j = 0; j < c->binary_count; j++) {
			free(c->binaries[j].name);
			free(c->binaries[j].platform);
			free(c->binaries[j].source.path);
		}
		free(c->binaries);
		for (size_t j = 0; j < c->image_count; j++) {
			free(c->images[j].name);
			free(c->images[j].digest);
			free(c->images[j].source.path);
		}
		free(c->images);
	}
	free(catalog->components);
	free(catalog->platforms);
	doc_free(catalog->root);
}

/* Keeps the platforms named in a comma-separated filter; each must be in the catalog. */
static int apply_filter(struct catalog *catalog, const char *filter)
{
	char copy[1024];
	size_t kept = 0;

	if (!filter)
		return 0;
	if (strlen(filter) >= sizeof(copy))
		return bundle_report_add(catalog->report, MLB_EINPUT, "--platform: the list is too long");
	strcpy(copy, filter);
	for (char *item = strtok(copy, ","); item; item = strtok(NULL, ",")) {
		if (!platform_listed(catalog, item))
			bundle_report_add(catalog->report, MLB_EINPUT, "--platform: '%s' is not among the catalog's platforms",
					  item);
	}
	if (catalog->report->result < 0)
		return catalog->report->result;
	for (size_t i = 0; i < catalog->platform_count; i++) {
		bool wanted = false;

		strcpy(copy, filter);
		for (char *item = strtok(copy, ","); item; item = strtok(NULL, ","))
			wanted = wanted || strcmp(item, catalog->platforms[i]) == 0;
		if (wanted)
			catalog->platforms[kept++] = catalog->platforms[i];
	}
	catalog->platform_count = kept;
	return 0;
}

/* Checks a pinned source's sha256 before the writer reads it. */
static int check_pin(struct catalog *catalog, const char *field, const struct catalog_source *source)
{
	unsigned char digest[SHA256_BYTES];
	char expected[SHA256_HEX_LEN + 1], actual[SHA256_HEX_LEN + 1];
	struct sha256 hash;
	FILE *file;
	int r = 0;

	if (!source->pinned)
		return 0;
	file = fopen(source->path, "rbe");
	if (!file) {
		r = -errno;
		catalog_error(catalog, source->node, field, "failed to open '%s': %s", source->path, mlb_strerror(r));
		return MLB_EINPUT;
	}
	r = sha256_init(&hash);
	while (r == 0) {
		unsigned char chunk[65536];
		size_t n = fread(chunk, 1, sizeof(chunk), file);

		if (n == 0)
			break;
		r = sha256_update(&hash, chunk, n);
	}
	if (r == 0 && ferror(file))
		r = -EIO;
	fclose(file);
	if (r == 0)
		r = sha256_final(&hash, digest);
	sha256_release(&hash);
	if (r < 0)
		return r;
	if (memcmp(digest, source->sha256, SHA256_BYTES) != 0) {
		sha256_to_hex(source->sha256, expected);
		sha256_to_hex(digest, actual);
		catalog_error(catalog, source->node, field, "'%s' has sha256 %s, the catalog pins %s", source->path, actual,
			      expected);
		return MLB_EINPUT;
	}
	return 0;
}

static int build_component(struct catalog *catalog, struct bundle_writer *writer, const struct catalog_component *c)
{
	int r;

	r = bundle_writer_add_component(writer, c->name, c->version, c->namespace);
	for (size_t j = 0; r == 0 && j < c->manifest_count; j++) {
		r = check_pin(catalog, c->name, &c->manifests[j].source);
		if (r == 0)
			r = bundle_writer_add_manifest_path(writer, c->name, c->manifests[j].name, c->manifests[j].source.path);
	}
	for (size_t j = 0; r == 0 && j < c->binary_count; j++) {
		if (!platform_listed(catalog, c->binaries[j].platform))
			continue;
		r = check_pin(catalog, c->name, &c->binaries[j].source);
		if (r == 0)
			r = bundle_writer_add_binary_path(writer, c->name, c->binaries[j].name, c->binaries[j].platform,
							  c->binaries[j].source.path);
	}
	for (size_t j = 0; r == 0 && j < c->image_count; j++) {
		const struct catalog_image *image = &c->images[j];

		r = bundle_writer_add_image(writer, c->name, image->name, image->source.path);
		if (r == 0 && image->digest) {
			const char *hex = bundle_writer_image_digest(writer, image->name);

			if (!hex || strcmp(hex, image->digest + 7) != 0) {
				catalog_error(catalog, image->source.node, c->name, "the image '%s' has digest sha256:%s, the catalog pins %s",
					      image->name, hex ? hex : "?", image->digest);
				return MLB_EINPUT;
			}
		}
	}
	return r;
}

static int protect_source(struct bundle_writer *writer, const struct catalog_source *source, const char *role)
{
	return source->path ? bundle_writer_protect(writer, source->path, role) : 0;
}

/* Names the catalog, every source it lists and the caller's inputs as files the output must not replace. */
static int protect_inputs(const struct catalog *catalog, struct bundle_writer *writer,
			  const struct bundle_input *inputs, size_t count)
{
	int r = bundle_writer_protect(writer, catalog->file, "catalog");

	for (size_t i = 0; r == 0 && i < count; i++)
		r = bundle_writer_protect(writer, inputs[i].path, inputs[i].role);
	for (size_t i = 0; r == 0 && i < catalog->component_count; i++) {
		const struct catalog_component *c = &catalog->components[i];

		for (size_t j = 0; r == 0 && j < c->manifest_count; j++)
			r = protect_source(writer, &c->manifests[j].source, "manifest");
		for (size_t j = 0; r == 0 && j < c->binary_count; j++)
			r = protect_source(writer, &c->binaries[j].source, "binary");
		for (size_t j = 0; r == 0 && j < c->image_count; j++)
			r = protect_source(writer, &c->images[j].source, "image");
	}
	return r;
}

int bundle_build_catalog(const char *catalog_path, const char *output, const struct bundle_key *key,
			 const char *platforms_filter, const struct bundle_input *inputs, size_t count,
			 struct bundle_report *report)
{
	struct catalog catalog = { 0 };
	struct bundle_writer *writer = NULL;
	struct bundle_platform_info info;
	int r;

	r = catalog_parse(&catalog, catalog_path, report);
	if (r == 0)
		r = apply_filter(&catalog, platforms_filter);
	if (r < 0)
		goto out;

	/* The writer checks the output's type too, but only this reports why. */
	r = bundle_check_output(output, NULL, 0, report);
	if (r < 0)
		goto out;
	r = bundle_writer_open(output, &writer);
	if (r < 0) {
		r = bundle_report_add(report, r, "failed to start the bundle '%s': %s", output, mlb_strerror(r));
		goto out;
	}
	r = protect_inputs(&catalog, writer, inputs, count);
	if (r == 0)
		r = bundle_writer_check_output(writer);
	info = (struct bundle_platform_info){
		.name = catalog.name, .version = catalog.version,
		.kubernetes_min = catalog.kubernetes_min, .kubernetes_max = catalog.kubernetes_max,
		.platforms = catalog.platforms, .platform_count = catalog.platform_count,
	};
	if (r == 0)
		r = bundle_writer_set_platform(writer, &info);
	for (size_t i = 0; r == 0 && i < catalog.component_count; i++)
		r = build_component(&catalog, writer, &catalog.components[i]);
	if (r == 0)
		r = bundle_writer_finish(writer, key);
	if (r < 0 && bundle_writer_error(writer)[0])
		bundle_report_add(report, r, "%s", bundle_writer_error(writer));
	else if (r < 0 && report->result == 0)
		bundle_report_add(report, r, "failed to build the bundle: %s", mlb_strerror(r));
out:
	bundle_writer_free(writer);
	catalog_release(&catalog);
	return r;
}
