/*
 * The network half of `mlboot bundle build`. Before the airgap module's
 * writer runs, url sources are fetched into the cache folder and images
 * without a path are pulled into one shared OCI image layout there. The
 * catalog is then rewritten with local paths and pins for the writer, and
 * catalog.lock records what each source resolved to. Every build also
 * checks that each image its manifests name is in the bundle.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bundle_network.h"
#include "commands.h"
#include "common.h"
#include "fetch.h"
#include "images.h"

#define CATALOG_MAX (4u * 1024 * 1024)
#define LOCK_MAX (16u * 1024 * 1024)
#define MANIFEST_MAX (64u * 1024 * 1024)
#define PATH_BYTES 4096
#define LOCK_KIND "CatalogLock"
#define LOCK_API_VERSION "mlboot.dev/v1alpha1"

static const struct doc_limits catalog_limits = { CATALOG_MAX, 32, 1000000 };
static const struct doc_limits lock_limits = { LOCK_MAX, 8, 1000000 };

/* One resolved source, as catalog.lock records it. */
struct lock_entry {
	char *key;      /* URL, or normalised image reference */
	char *pin;      /* sha256 hex, or "sha256:HEX" digest */
};

struct lock_list {
	struct lock_entry *entries;
	size_t count;
};

/* An image the bundle will hold: its name there and, when known, its digest. */
struct bundle_image_name {
	struct image_reference ref;
	char digest[IMAGE_DIGEST_MAX + 1];
};

struct build_state {
	struct bundle_network *network;
	const char *catalog_path;
	struct doc_node *catalog;            /* rewritten in place */
	struct lock_list old_files, old_images;
	struct lock_list new_files, new_images;
	struct image_platform platforms[IMAGE_PLATFORMS_MAX];
	size_t platform_count;
	const char *platform_filter;
	struct registry_client *client;
	struct image_layout *layout;
	struct bundle_image_name *images;
	size_t image_count;
	size_t problems;
	/* File names the manifests of the component being walked have in the
	 * bundle; manifest_names_active is false while other lists are walked. */
	char **manifest_names;
	size_t manifest_name_count;
	bool manifest_names_active;
};

/* --- Options ------------------------------------------------------------------ */

void bundle_network_init(struct bundle_network *network)
{
	memset(network, 0, sizeof(*network));
}

int bundle_network_option(struct bundle_network *network, int option, const char *value)
{
	switch (option) {
	case BUNDLE_OPTION_CACHE:
		network->cache_dir = value;
		return 0;
	case BUNDLE_OPTION_LOCKED:
		network->locked = true;
		return 0;
	case BUNDLE_OPTION_CA_FILE:
		network->ca_file = value;
		return 0;
	case BUNDLE_OPTION_DOCKER_CONFIG:
		network->docker_config = value;
		return 0;
	case BUNDLE_OPTION_MIRROR:
		if (network->mirror_count >= IMAGE_MIRRORS_MAX)
			return cli_usage_error("bundle build", "more than %u registry mirrors", IMAGE_MIRRORS_MAX);
		if (image_mirror_parse(value, &network->mirrors[network->mirror_count]) < 0)
			return cli_usage_error("bundle build",
					       "invalid registry mirror '%s': use SOURCE=MIRROR, such as docker.io=mirror.example.com:5000",
					       value);
		network->mirror_count++;
		return 0;
	default:
		return MLB_EUSAGE;
	}
}

void bundle_network_release(struct bundle_network *network)
{
	free(network->resolved_catalog);
	free(network->lock_path);
	free(network->lock_text);
	network->resolved_catalog = network->lock_path = network->lock_text = NULL;
}

/* --- catalog.lock -------------------------------------------------------------- */

static void lock_list_release(struct lock_list *list)
{
	for (size_t i = 0; i < list->count; i++) {
		free(list->entries[i].key);
		free(list->entries[i].pin);
	}
	free(list->entries);
	memset(list, 0, sizeof(*list));
}

static const char *lock_find(const struct lock_list *list, const char *key)
{
	for (size_t i = 0; i < list->count; i++)
		if (strcmp(list->entries[i].key, key) == 0)
			return list->entries[i].pin;
	return NULL;
}

static int lock_add(struct lock_list *list, const char *key, const char *pin)
{
	struct lock_entry *grown;

	for (size_t i = 0; i < list->count; i++) {
		if (strcmp(list->entries[i].key, key) == 0) {
			char *copy = strdup(pin);

			if (!copy)
				return -ENOMEM;
			free(list->entries[i].pin);
			list->entries[i].pin = copy;
			return 0;
		}
	}
	grown = realloc(list->entries, (list->count + 1) * sizeof(*grown));
	if (!grown)
		return -ENOMEM;
	list->entries = grown;
	grown[list->count].key = strdup(key);
	grown[list->count].pin = strdup(pin);
	if (!grown[list->count].key || !grown[list->count].pin) {
		free(grown[list->count].key);
		free(grown[list->count].pin);
		return -ENOMEM;
	}
	list->count++;
	return 0;
}

/* The lock's path: the catalog's, with ".yaml" or ".yml" replaced by ".lock". */
static int lock_path_for(const char *catalog, char **out)
{
	size_t len = strlen(catalog);

	if (len > 5 && strcmp(catalog + len - 5, ".yaml") == 0)
		len -= 5;
	else if (len > 4 && strcmp(catalog + len - 4, ".yml") == 0)
		len -= 4;
	if (asprintf(out, "%.*s.lock", (int)len, catalog) < 0) {
		*out = NULL;
		return -ENOMEM;
	}
	return 0;
}

static int read_lock_list(const struct doc_node *root, const char *list_name, const char *key_name,
			  const char *pin_name, bool digest, struct lock_list *out, const char *path)
{
	const struct doc_node *list = doc_get(root, list_name);

	if (!list)
		return 0;
	if (list->type != DOC_SEQ) {
		log_error("%s:%u: '%s' must be a list", path, list->line, list_name);
		return MLB_EINPUT;
	}
	for (size_t i = 0; i < list->count; i++) {
		const char *key = doc_get_string(list->items[i], key_name);
		const char *pin = doc_get_string(list->items[i], pin_name);
		bool valid = pin && (digest ? strncmp(pin, "sha256:", 7) == 0 && sha256_is_hex(pin + 7) : sha256_is_hex(pin));
		int r;

		if (!key || !valid) {
			log_error("%s:%u: each item of '%s' needs '%s' and a valid '%s'", path, list->items[i]->line,
				  list_name, key_name, pin_name);
			return MLB_EINPUT;
		}
		r = lock_add(out, key, pin);
		if (r < 0)
			return r;
	}
	return 0;
}

static int read_lock(struct build_state *state)
{
	struct bundle_network *network = state->network;
	struct buf data = BUF_INIT(LOCK_MAX);
	struct doc_node *root = NULL;
	struct doc_error error = { "", 0, 0 };
	int r;

	r = lock_path_for(state->catalog_path, &network->lock_path);
	if (r < 0)
		return r;
	r = file_read_all(network->lock_path, LOCK_MAX, &data);
	if (r == -ENOENT) {
		r = 0;
		goto out;
	}
	if (r < 0) {
		log_errno(LOG_ERR, r, "failed to read '%s'", network->lock_path);
		r = r == -EFBIG ? MLB_EINPUT : r;
		goto out;
	}
	r = doc_parse(data.data, data.len, &lock_limits, &root, &error);
	if (r < 0) {
		log_error("invalid lock file '%s':%u:%u: %s", network->lock_path, error.line, error.column, error.message);
		goto out;
	}
	if (!doc_string_equals(doc_get(root, "kind"), LOCK_KIND)) {
		log_error("'%s' is not a catalog lock: its kind must be %s", network->lock_path, LOCK_KIND);
		r = MLB_EINPUT;
		goto out;
	}
	r = read_lock_list(root, "files", "url", "sha256", false, &state->old_files, network->lock_path);
	if (r == 0)
		r = read_lock_list(root, "images", "name", "digest", true, &state->old_images, network->lock_path);
out:
	doc_free(root);
	buf_release(&data);
	return r;
}

static int write_lock_text(const struct build_state *state, struct buf *out)
{
	int r = buf_append_str(out, "# Written by mlboot bundle build: the sha256 of every file fetched from a URL\n"
				    "# and the digest of every image pulled. Build with --locked to accept only these.\n"
				    "apiVersion: " LOCK_API_VERSION "\nkind: " LOCK_KIND "\nfiles:");

	if (r == 0 && state->new_files.count == 0)
		r = buf_append_str(out, " []");
	for (size_t i = 0; r == 0 && i < state->new_files.count; i++) {
		r = buf_append_str(out, "\n- url: ");
		if (r == 0)
			r = doc_write_json_string(out, state->new_files.entries[i].key, strlen(state->new_files.entries[i].key));
		if (r == 0)
			r = buf_printf(out, "\n  sha256: %s", state->new_files.entries[i].pin);
	}
	if (r == 0)
		r = buf_append_str(out, "\nimages:");
	if (r == 0 && state->new_images.count == 0)
		r = buf_append_str(out, " []");
	for (size_t i = 0; r == 0 && i < state->new_images.count; i++) {
		r = buf_append_str(out, "\n- name: ");
		if (r == 0)
			r = doc_write_json_string(out, state->new_images.entries[i].key,
						  strlen(state->new_images.entries[i].key));
		if (r == 0)
			r = buf_printf(out, "\n  digest: \"%s\"", state->new_images.entries[i].pin);
	}
	if (r == 0)
		r = buf_append_char(out, '\n');
	return r;
}

/* --- Fetching ------------------------------------------------------------------- */

static bool platform_wanted(const struct build_state *state, const char *platform)
{
	struct image_platform parsed;

	if (!platform || image_platform_parse(platform, &parsed) < 0)
		return true;
	for (size_t i = 0; i < state->platform_count; i++)
		if (strcmp(state->platforms[i].os, parsed.os) == 0 &&
		    strcmp(state->platforms[i].architecture, parsed.architecture) == 0 &&
		    strcmp(state->platforms[i].variant, parsed.variant) == 0)
			return true;
	return false;
}

static void problem(struct build_state *state, const char *format, ...)
	__attribute__((format(printf, 2, 3)));

static void problem(struct build_state *state, const char *format, ...)
{
	char message[1024];
	va_list args;

	va_start(args, format);
	vsnprintf(message, sizeof(message), format, args);
	va_end(args);
	log_error("%s", message);
	state->problems++;
}

/* Makes a relative path of the catalog absolute, since the rewritten catalog lives elsewhere. */
static int absolute_path(struct build_state *state, struct doc_node *item)
{
	const char *path = doc_get_string(item, "path");
	char *resolved = NULL, *absolute = NULL;
	int r;

	if (!path)
		return 0;
	r = file_resolve_relative(state->catalog_path, path, &resolved);
	if (r < 0)
		return r;
	absolute = realpath(resolved, NULL);
	r = doc_map_set_string(item, "path", absolute ? absolute : resolved);
	free(absolute);
	free(resolved);
	return r;
}

static void manifest_names_clear(struct build_state *state)
{
	for (size_t i = 0; i < state->manifest_name_count; i++)
		free(state->manifest_names[i]);
	free(state->manifest_names);
	state->manifest_names = NULL;
	state->manifest_name_count = 0;
}

static bool manifest_name_taken(const struct build_state *state, const char *name)
{
	for (size_t i = 0; i < state->manifest_name_count; i++)
		if (strcmp(state->manifest_names[i], name) == 0)
			return true;
	return false;
}

static int manifest_name_add(struct build_state *state, const char *name)
{
	char **grown = realloc(state->manifest_names, (state->manifest_name_count + 1) * sizeof(*grown));

	if (!grown)
		return -ENOMEM;
	state->manifest_names = grown;
	grown[state->manifest_name_count] = strdup(name);
	if (!grown[state->manifest_name_count])
		return -ENOMEM;
	state->manifest_name_count++;
	return 0;
}

/* Records the file names of a component's manifests that have a local path. */
static int manifest_names_collect(struct build_state *state, const struct doc_node *component)
{
	const struct doc_node *list = doc_get(component, "manifests");
	int r = 0;

	manifest_names_clear(state);
	for (size_t j = 0; r == 0 && list && list->type == DOC_SEQ && j < list->count; j++) {
		const char *path = doc_get_string(list->items[j], "path");
		const char *slash = path ? strrchr(path, '/') : NULL;

		if (path)
			r = manifest_name_add(state, slash ? slash + 1 : path);
	}
	return r;
}

/*
 * Writes the last segment of a URL's path ("cert-manager.yaml") to out.
 * False when the URL has no path, or the segment is not a valid bundle
 * file name (letters, digits, '.', '_' and '-', not starting with '.').
 */
static bool url_file_name(const char *url, char *out, size_t size)
{
	const char *scheme = strstr(url, "://");
	const char *path = scheme ? strchr(scheme + 3, '/') : NULL;
	const char *end = url + strcspn(url, "?#");
	const char *start = end;
	size_t len;

	if (!path || path >= end)
		return false;
	while (start > path + 1 && start[-1] != '/')
		start--;
	len = (size_t)(end - start);
	if (len == 0 || len >= size || len > 255 || start[0] == '.')
		return false;
	memcpy(out, start, len);
	out[len] = '\0';
	return strspn(out, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") == len;
}

/*
 * Gives a fetched manifest the file name of its URL: the writer stores a
 * manifest under its file name, and the cache names files by their sha256.
 * A hard link DIR/names/HEX/NAME to DIR/sha256/HEX gives both. On success
 * path is replaced by the link's path; when the name is not usable, path
 * is left as it is and the manifest is stored under its sha256.
 */
static int name_fetched_manifest(struct build_state *state, const char *url, const char *sha256, char *path,
				 size_t size)
{
	char name[256], dir[PATH_BYTES], named[PATH_BYTES];
	int r;

	if (!state->manifest_names_active || !url_file_name(url, name, sizeof(name)) ||
	    manifest_name_taken(state, name))
		return 0;
	if ((size_t)snprintf(dir, sizeof(dir), "%s/names/%s", state->network->cache_dir, sha256) >= sizeof(dir) ||
	    (size_t)snprintf(named, sizeof(named), "%s/%s", dir, name) >= sizeof(named) || strlen(named) >= size)
		return 0;
	r = file_mkdir_parents(dir, 0755);
	if (r == 0 && link(path, named) < 0 && errno != EEXIST)
		r = -errno;
	if (r < 0) {
		log_debug("failed to link '%s' as '%s' (%s): the manifest keeps its sha256 as its name", path, named,
			  mlb_strerror(r));
		return 0;
	}
	r = manifest_name_add(state, name);
	if (r == 0)
		snprintf(path, size, "%s", named);
	return r;
}

/* A manifest or binary item with url: fetched into the cache and rewritten to its path. */
static int fetch_item(struct build_state *state, struct doc_node *item, const char *field)
{
	struct bundle_network *network = state->network;
	struct fetch_options options = {
		.ca_file = network->ca_file,
		.progress = cli_settings.progress,
	};
	struct fetch_result result;
	const char *url = doc_get_string(item, "url");
	const char *catalog_pin = doc_get_string(item, "sha256");
	const char *lock_pin, *pin;
	char path[PATH_BYTES];
	int r;

	if (!url)
		return absolute_path(state, item);
	lock_pin = lock_find(&state->old_files, url);
	pin = catalog_pin ? catalog_pin : lock_pin;
	if (catalog_pin && !sha256_is_hex(catalog_pin)) {
		problem(state, "%s: 'sha256' must be 64 lowercase hex digits", field);
		return 0;
	}
	if (network->locked && !pin) {
		problem(state, "%s: '%s' is not pinned by a sha256 in the catalog or in catalog.lock (--locked)", field, url);
		return 0;
	}
	if (network->locked && catalog_pin && lock_pin && strcmp(catalog_pin, lock_pin) != 0) {
		problem(state, "%s: the catalog pins sha256 %s for '%s', catalog.lock has %s (--locked)", field, catalog_pin,
			url, lock_pin);
		return 0;
	}
	r = fetch_cached(url, pin, network->cache_dir, &options, path, sizeof(path), &result);
	if (r < 0) {
		if (r == MLB_EINTEGRITY)
			log_error("%s: '%s' has sha256 %s, and %s pins %s; the download was deleted", field, url,
				  result.sha256, catalog_pin ? "the catalog" : "catalog.lock", pin);
		else
			log_errno(LOG_ERR, r, "%s: failed to fetch '%s'", field, url);
		return r;
	}
	if (result.attempts)
		log_info("fetched '%s' (%llu bytes%s)", url, (unsigned long long)result.size,
			 result.resumed_from ? ", resumed" : "");
	r = lock_add(&state->new_files, url, result.sha256);
	if (r == 0)
		r = name_fetched_manifest(state, url, result.sha256, path, sizeof(path));
	if (r == 0)
		r = doc_map_remove(item, "url") ? 0 : -EINVAL;
	if (r == 0)
		r = doc_map_set_string(item, "path", path);
	if (r == 0)
		r = doc_map_set_string(item, "sha256", result.sha256);
	return r;
}

static int open_registry(struct build_state *state)
{
	struct bundle_network *network = state->network;
	struct registry_options options = {
		.ca_file = network->ca_file,
		.docker_config = network->docker_config,
		.mirrors = network->mirrors,
		.mirror_count = network->mirror_count,
		.platforms = state->platforms,
		.platform_count = state->platform_count,
		.progress = cli_settings.progress,
	};
	char dir[PATH_BYTES];
	int r;

	if (state->client)
		return 0;
	r = registry_client_new(&options, &state->client);
	if (r < 0)
		return log_errno(LOG_ERR, r, "failed to set up the registry client");
	snprintf(dir, sizeof(dir), "%s/oci", network->cache_dir);
	r = image_layout_open(dir, &state->layout);
	if (r < 0)
		return log_errno(LOG_ERR, r, "failed to open the OCI image layout '%s'", dir);
	return 0;
}

static int remember_image(struct build_state *state, const struct image_reference *ref, const char *digest)
{
	struct bundle_image_name *grown = realloc(state->images, (state->image_count + 1) * sizeof(*grown));

	if (!grown)
		return -ENOMEM;
	state->images = grown;
	grown[state->image_count].ref = *ref;
	snprintf(grown[state->image_count].digest, sizeof(grown[state->image_count].digest), "%s", digest ? digest : "");
	state->image_count++;
	return 0;
}

/*
 * Writes the registry that the images of source are pulled from, for
 * messages: "the registry quay.io", or "the registry 127.0.0.1:5000 (the
 * mirror of quay.io)".
 */
static const char *registry_for(const struct bundle_network *network, const char *source, char *out, size_t size)
{
	snprintf(out, size, "the registry %s", source);
	for (size_t i = 0; i < network->mirror_count; i++)
		if (strcmp(network->mirrors[i].source, source) == 0)
			snprintf(out, size, "the registry %s (the mirror of %s)", network->mirrors[i].mirror, source);
	return out;
}

/* An image item: pulled when it has no path; recorded for the manifest check either way. */
static int pull_item(struct build_state *state, struct doc_node *item, const char *field)
{
	struct bundle_network *network = state->network;
	const char *name = doc_get_string(item, "name");
	const char *catalog_pin = doc_get_string(item, "digest");
	struct image_reference ref;
	char normalised[IMAGE_REFERENCE_MAX], layout_name[IMAGE_REFERENCE_MAX], digest[IMAGE_DIGEST_MAX + 1];
	const char *lock_pin, *pin;
	int r;

	if (!name || image_reference_parse(name, &ref) < 0) {
		problem(state, "%s: invalid image name '%.300s'", field, name ? name : "");
		return 0;
	}
	image_reference_format(&ref, normalised, sizeof(normalised));
	if (doc_get(item, "path")) {
		r = remember_image(state, &ref, catalog_pin);
		return r < 0 ? r : absolute_path(state, item);
	}
	lock_pin = lock_find(&state->old_images, normalised);
	pin = catalog_pin ? catalog_pin : lock_pin;
	if (network->locked && !pin && !ref.digest[0]) {
		problem(state, "%s: the image '%s' is not pinned by a digest in the catalog or in catalog.lock (--locked)",
			field, normalised);
		return 0;
	}
	if (network->locked && catalog_pin && lock_pin && strcmp(catalog_pin, lock_pin) != 0) {
		problem(state, "%s: the catalog pins %s for '%s', catalog.lock has %s (--locked)", field, catalog_pin,
			normalised, lock_pin);
		return 0;
	}
	r = open_registry(state);
	if (r < 0)
		return r;
	r = registry_pull(state->client, &ref, pin, state->layout, digest);
	if (r == -ENOENT) {
		char registry[2 * IMAGE_REGISTRY_MAX + 64];

		/* Counted as a problem, so that one build lists every missing image. */
		problem(state, "%s: the image '%s' was not found: %s has no such repository, tag, digest or blob", field,
			normalised, registry_for(network, ref.registry, registry, sizeof(registry)));
		return 0;
	}
	if (r < 0) {
		if (r == MLB_EINTEGRITY && pin)
			log_error("%s: the image '%s' does not have the pinned digest %s, or its content does not match its digests",
				  field, normalised, pin);
		else
			log_errno(LOG_ERR, r, "%s: failed to pull '%s'", field, normalised);
		return r;
	}
	image_reference_name(&ref, layout_name, sizeof(layout_name));
	snprintf(layout_name + strlen(layout_name), sizeof(layout_name) - strlen(layout_name), "%s%s",
		 ref.tag[0] ? ":" : "@", ref.tag[0] ? ref.tag : ref.digest);
	r = lock_add(&state->new_images, normalised, digest);
	if (r == 0)
		r = remember_image(state, &ref, digest);
	if (r == 0)
		r = doc_map_set_string(item, "name", layout_name);
	if (r == 0)
		r = doc_map_set_string(item, "path", image_layout_dir(state->layout));
	if (r == 0)
		r = doc_map_set_string(item, "digest", digest);
	return r;
}

static int walk_items(struct build_state *state, struct doc_node *component, size_t index, const char *list_name,
		      int (*handle)(struct build_state *, struct doc_node *, const char *))
{
	struct doc_node *list = doc_get_mutable(component, list_name);
	int r = 0;

	if (!list || list->type != DOC_SEQ)
		return 0;
	for (size_t j = 0; r == 0 && j < list->count; j++) {
		char field[128];

		if (list->items[j]->type != DOC_MAP)
			continue;
		snprintf(field, sizeof(field), "spec.components[%zu].%s[%zu]", index, list_name, j);
		if (strcmp(list_name, "binaries") == 0 && !platform_wanted(state, doc_get_string(list->items[j], "platform")))
			continue;
		r = handle(state, list->items[j], field);
	}
	return r;
}

/* --- The manifest check ------------------------------------------------------------ */

static bool bundle_has_image(const struct build_state *state, const char *text)
{
	struct image_reference found;

	if (image_reference_parse(text, &found) < 0)
		return false;
	for (size_t i = 0; i < state->image_count; i++) {
		const struct bundle_image_name *image = &state->images[i];

		if (strcmp(image->ref.registry, found.registry) != 0 || strcmp(image->ref.repository, found.repository) != 0)
			continue;
		if (found.digest[0]) {
			if (strcmp(image->ref.digest, found.digest) == 0 || strcmp(image->digest, found.digest) == 0)
				return true;
		} else if (found.tag[0] && strcmp(image->ref.tag, found.tag) == 0) {
			return true;
		}
	}
	return false;
}

static int check_component_images(struct build_state *state, const struct doc_node *component)
{
	const struct doc_node *manifests = doc_get(component, "manifests");
	const char *name = doc_get_string(component, "name");
	struct image_set set;
	int r = 0;

	if (!manifests || manifests->type != DOC_SEQ)
		return 0;
	image_set_init(&set);
	for (size_t j = 0; r == 0 && j < manifests->count; j++) {
		const char *path = doc_get_string(manifests->items[j], "path");
		struct buf data = BUF_INIT(MANIFEST_MAX);
		struct doc_stream stream = { 0 };
		struct doc_error error = { "", 0, 0 };
		char *resolved = NULL;

		if (!path || file_resolve_relative(state->catalog_path, path, &resolved) < 0)
			continue;
		if (file_read_all(resolved, MANIFEST_MAX, &data) == 0 &&
		    doc_parse_stream(data.data ? data.data : "", data.len, NULL, &stream, &error) == 0)
			r = image_discover(&stream, resolved, &set);
		/* Unreadable or invalid manifests are the writer's to report. */
		doc_stream_release(&stream);
		buf_release(&data);
		free(resolved);
	}
	for (size_t i = 0; r == 0 && i < set.problem_count; i++)
		problem(state, "component '%s': %s", name ? name : "?", set.problems[i]);
	for (size_t i = 0; r == 0 && i < set.count; i++) {
		const struct image_entry *entry = &set.entries[i];

		if (bundle_has_image(state, entry->reference))
			continue;
		problem(state, "component '%s': the image '%s' is not in the bundle; it is named at %s:%u (%s, %s)",
			name ? name : "?", entry->reference, entry->sources[0].file, entry->sources[0].line,
			entry->sources[0].object, entry->sources[0].field);
	}
	image_set_release(&set);
	return r;
}

/* --- The whole pass ----------------------------------------------------------------- */

static int read_platforms(struct build_state *state)
{
	const struct doc_node *list = doc_find(state->catalog, "spec", "platforms", NULL);

	state->platform_count = 0;
	if (!list || list->type != DOC_SEQ)
		return 0;
	for (size_t i = 0; i < list->count && state->platform_count < IMAGE_PLATFORMS_MAX; i++) {
		const char *text = list->items[i]->type == DOC_STRING ? list->items[i]->text : NULL;
		struct image_platform platform;
		bool kept = !state->platform_filter;

		if (!text || image_platform_parse(text, &platform) < 0)
			continue;
		if (state->platform_filter) {
			char copy[1024], *save = NULL;

			snprintf(copy, sizeof(copy), "%s", state->platform_filter);
			for (char *item = strtok_r(copy, ",", &save); item; item = strtok_r(NULL, ",", &save))
				if (strcmp(item, text) == 0)
					kept = true;
		}
		if (kept)
			state->platforms[state->platform_count++] = platform;
	}
	return 0;
}

/* Whether the catalog has sources that need the network: url items or images without a path. */
static bool needs_network(const struct doc_node *catalog)
{
	const struct doc_node *components = doc_find(catalog, "spec", "components", NULL);

	if (!components || components->type != DOC_SEQ)
		return false;
	for (size_t i = 0; i < components->count; i++) {
		static const char *const lists[] = { "manifests", "binaries" };
		const struct doc_node *images = doc_get(components->items[i], "images");

		for (size_t k = 0; k < ARRAY_SIZE(lists); k++) {
			const struct doc_node *list = doc_get(components->items[i], lists[k]);

			for (size_t j = 0; list && list->type == DOC_SEQ && j < list->count; j++)
				if (doc_get(list->items[j], "url"))
					return true;
		}
		for (size_t j = 0; images && images->type == DOC_SEQ && j < images->count; j++)
			if (doc_get(images->items[j], "name") && !doc_get(images->items[j], "path"))
				return true;
	}
	return false;
}

static int fetch_sources(struct build_state *state)
{
	struct doc_node *components = (struct doc_node *)doc_find(state->catalog, "spec", "components", NULL);
	int r = 0;

	if (!components || components->type != DOC_SEQ)
		return 0;
	for (size_t i = 0; r == 0 && i < components->count; i++) {
		r = manifest_names_collect(state, components->items[i]);
		state->manifest_names_active = true;
		if (r == 0)
			r = walk_items(state, components->items[i], i, "manifests", fetch_item);
		state->manifest_names_active = false;
		if (r == 0)
			r = walk_items(state, components->items[i], i, "binaries", fetch_item);
		if (r == 0)
			r = walk_items(state, components->items[i], i, "images", pull_item);
	}
	if (r == 0 && state->layout)
		r = image_layout_save(state->layout);
	return r;
}

/* A catalog with local sources only: its images are recorded for the manifest check. */
static int fetch_sources_local(struct build_state *state)
{
	const struct doc_node *components = doc_find(state->catalog, "spec", "components", NULL);
	int r = 0;

	for (size_t i = 0; r == 0 && components && components->type == DOC_SEQ && i < components->count; i++) {
		const struct doc_node *images = doc_get(components->items[i], "images");

		for (size_t j = 0; r == 0 && images && images->type == DOC_SEQ && j < images->count; j++) {
			const char *name = doc_get_string(images->items[j], "name");
			struct image_reference ref;

			if (name && image_reference_parse(name, &ref) == 0)
				r = remember_image(state, &ref, doc_get_string(images->items[j], "digest"));
		}
	}
	return r;
}

/*
 * Writes the catalog the writer reads. NOTE: problems the writer finds in
 * it are reported against this JSON file, not the lines of the catalog.
 */
static int write_resolved_catalog(struct build_state *state)
{
	struct buf text = BUF_INIT(CATALOG_MAX * 2);
	int r;

	if (asprintf(&state->network->resolved_catalog, "%s/catalog.resolved.json", state->network->cache_dir) < 0) {
		state->network->resolved_catalog = NULL;
		return -ENOMEM;
	}
	r = doc_write_json(state->catalog, &text);
	if (r == 0)
		r = file_write_atomic(state->network->resolved_catalog, text.data, text.len, 0644);
	buf_release(&text);
	return r;
}

int bundle_network_prepare(struct bundle_network *network, const char *catalog_path, const char *platform_filter)
{
	struct build_state state = { .network = network, .catalog_path = catalog_path, .platform_filter = platform_filter };
	struct buf data = BUF_INIT(CATALOG_MAX);
	struct doc_error error = { "", 0, 0 };
	bool network_sources;
	int r;

	/* An unreadable or invalid catalog is left to the writer, which reports every problem in it. */
	if (file_read_all(catalog_path, CATALOG_MAX, &data) < 0 ||
	    doc_parse(data.data, data.len, &catalog_limits, &state.catalog, &error) < 0 ||
	    state.catalog->type != DOC_MAP) {
		r = 0;
		goto out;
	}
	network_sources = needs_network(state.catalog);
	if (network_sources && !network->cache_dir) {
		log_notice("'%s' names url sources or images without a path: give --cache DIR to fetch and pull them",
			   catalog_path);
		r = 0;
		goto out;
	}
	r = read_platforms(&state);
	if (r == 0 && network->cache_dir) {
		r = file_mkdir_parents(network->cache_dir, 0755);
		if (r < 0)
			log_errno(LOG_ERR, r, "failed to create the cache folder '%s'", network->cache_dir);
	}
	if (r == 0 && network->cache_dir)
		r = read_lock(&state);
	if (r == 0 && network_sources)
		r = fetch_sources(&state);
	else if (r == 0)
		r = fetch_sources_local(&state);
	if (r < 0)
		goto out;
	if (state.problems == 0) {
		const struct doc_node *components = doc_find(state.catalog, "spec", "components", NULL);

		for (size_t i = 0; r == 0 && components && components->type == DOC_SEQ && i < components->count; i++)
			r = check_component_images(&state, components->items[i]);
	}
	if (r == 0 && state.problems > 0) {
		log_error("the bundle was not built: %zu problems found", state.problems);
		r = MLB_EINPUT;
	}
	if (r == 0 && network_sources)
		r = write_resolved_catalog(&state);
	if (r == 0 && network->cache_dir && !network->locked && (state.new_files.count || state.new_images.count)) {
		struct buf lock = BUF_INIT(LOCK_MAX);

		r = write_lock_text(&state, &lock);
		if (r == 0)
			network->lock_text = buf_steal(&lock);
		buf_release(&lock);
	}
	if (state.client) {
		const struct registry_stats *stats = registry_client_stats(state.client);

		log_info("registries: %llu requests, %llu blobs fetched (%llu bytes), %llu blobs already in the cache",
			 (unsigned long long)stats->requests, (unsigned long long)stats->blobs_fetched,
			 (unsigned long long)stats->bytes_fetched, (unsigned long long)stats->blobs_present);
	}
out:
	registry_client_free(state.client);
	image_layout_free(state.layout);
	lock_list_release(&state.old_files);
	lock_list_release(&state.old_images);
	lock_list_release(&state.new_files);
	lock_list_release(&state.new_images);
	free(state.images);
	manifest_names_clear(&state);
	doc_free(state.catalog);
	buf_release(&data);
	return r;
}

int bundle_network_finish(struct bundle_network *network)
{
	int r;

	if (!network->lock_text || !network->lock_path)
		return 0;
	r = file_write_atomic(network->lock_path, network->lock_text, strlen(network->lock_text), 0644);
	if (r < 0)
		return log_errno(LOG_ERR, r, "failed to write '%s'", network->lock_path);
	log_info("wrote '%s'", network->lock_path);
	return 0;
}
