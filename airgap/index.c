/*
 * The bundle index, mlboot-bundle.yaml: written in one canonical form by
 * bundle_index_write() and read back strictly by bundle_index_parse(),
 * which rejects unknown keys and anything inconsistent.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "airgap-internal.h"
#include "fields.h"

#define IMAGE_BLOBS_MAX 4096u
#define BLOB_PREFIX "images/blobs/sha256/"

static const struct doc_limits index_limits = {
	.max_bytes = BUNDLE_INDEX_MAX,
	.max_depth = 16,
	.max_nodes = 2000000,
};

/* --- Release and look-up ------------------------------------------------ */

static void free_strings(char **strings, size_t count)
{
	for (size_t i = 0; i < count; i++)
		free(strings[i]);
	free(strings);
}

void bundle_index_release(struct bundle_index *index)
{
	if (!index)
		return;
	free(index->name);
	free(index->version);
	free(index->kubernetes_min);
	free(index->kubernetes_max);
	free_strings(index->platforms, index->platform_count);
	for (size_t i = 0; i < index->component_count; i++) {
		struct bundle_component *c = &index->components[i];

		free(c->name);
		free(c->version);
		free(c->namespace);
		free_strings(c->manifests, c->manifest_count);
		for (size_t j = 0; j < c->binary_count; j++) {
			free(c->binaries[j].name);
			free(c->binaries[j].platform);
			free(c->binaries[j].path);
		}
		free(c->binaries);
		free_strings(c->images, c->image_count);
	}
	free(index->components);
	for (size_t i = 0; i < index->image_count; i++) {
		free(index->images[i].name);
		free(index->images[i].digest);
		free(index->images[i].media_type);
		free(index->images[i].blobs);
	}
	free(index->images);
	for (size_t i = 0; i < index->file_count; i++) {
		free(index->files[i].path);
		free(index->files[i].stored_path);
	}
	free(index->files);
	memset(index, 0, sizeof(*index));
}

static const struct bundle_file *find_stored(const struct bundle_index *index, const char *path)
{
	size_t low = 0, high = index->file_count;

	while (low < high) {
		size_t middle = low + (high - low) / 2;
		int order = strcmp(index->files[middle].stored_path, path);

		if (order == 0)
			return &index->files[middle];
		if (order < 0)
			low = middle + 1;
		else
			high = middle;
	}
	return NULL;
}

const struct bundle_file *bundle_index_find_file(const struct bundle_index *index, const char *path)
{
	const struct bundle_file *file = find_stored(index, path);
	char stored[BUNDLE_PATH_MAX + 8];

	if (file)
		return file;
	if (snprintf(stored, sizeof(stored), "%s.zst", path) >= (int)sizeof(stored))
		return NULL;
	file = find_stored(index, stored);
	return file && file->compression == BUNDLE_COMPRESSION_ZSTD ? file : NULL;
}

const struct bundle_image *bundle_index_find_image(const struct bundle_index *index, const char *name)
{
	for (size_t i = 0; i < index->image_count; i++)
		if (index->images[i].name && strcmp(index->images[i].name, name) == 0)
			return &index->images[i];
	return NULL;
}

static int compare_file_paths(const void *a, const void *b)
{
	const struct bundle_file *x = *(const struct bundle_file *const *)a;
	const struct bundle_file *y = *(const struct bundle_file *const *)b;

	return strcmp(x->path, y->path);
}

/* The files ordered by unpacked path; the caller frees the array. */
static int sort_by_path(const struct bundle_index *index, const struct bundle_file ***out)
{
	const struct bundle_file **sorted = malloc((index->file_count + 1) * sizeof(*sorted));

	if (!sorted)
		return -ENOMEM;
	for (size_t i = 0; i < index->file_count; i++)
		sorted[i] = &index->files[i];
	qsort(sorted, index->file_count, sizeof(*sorted), compare_file_paths);
	*out = sorted;
	return 0;
}

int bundle_index_bytes_needed(const struct bundle_index *index, uint64_t *out)
{
	const struct bundle_file **sorted = NULL;
	uint64_t total = 0;
	int r;

	r = sort_by_path(index, &sorted);
	if (r < 0)
		return r;
	for (size_t i = 0; i < index->file_count; i++) {
		const char *path = sorted[i]->path;
		const char *previous = i > 0 ? sorted[i - 1]->path : "";

		if (!disk_blocks_add(&total, sorted[i]->size)) {
			r = -EOVERFLOW;
			break;
		}
		/* Sorted paths list a folder's files together: a folder is new where the previous path leaves it. */
		for (const char *slash = strchr(path, '/'); slash; slash = strchr(slash + 1, '/')) {
			size_t len = (size_t)(slash - path) + 1;

			if (strncmp(previous, path, len) == 0)
				continue;
			if (!disk_blocks_add(&total, 0)) {
				r = -EOVERFLOW;
				break;
			}
		}
	}
	free(sorted);
	if (r == 0)
		*out = total;
	return r;
}

/* --- Writing ---------------------------------------------------------- */

static int put_string(struct buf *out, const char *text)
{
	return doc_write_json_string(out, text, strlen(text));
}

static int put_key_string(struct buf *out, const char *indent, const char *key, const char *text)
{
	int r = buf_printf(out, "%s%s: ", indent, key);

	if (r == 0)
		r = put_string(out, text);
	if (r == 0)
		r = buf_append_char(out, '\n');
	return r;
}

static int put_string_list(struct buf *out, const char *indent, const char *key, char **items, size_t count)
{
	int r = buf_printf(out, "%s%s:%s\n", indent, key, count ? "" : " []");

	for (size_t i = 0; r == 0 && i < count; i++) {
		r = buf_printf(out, "%s- ", indent);
		if (r == 0)
			r = put_string(out, items[i]);
		if (r == 0)
			r = buf_append_char(out, '\n');
	}
	return r;
}

static int write_components(const struct bundle_index *index, struct buf *out)
{
	int r = buf_printf(out, "components:%s\n", index->component_count ? "" : " []");

	for (size_t i = 0; r == 0 && i < index->component_count; i++) {
		const struct bundle_component *c = &index->components[i];

		r = buf_append_str(out, "- ");
		if (r == 0)
			r = put_key_string(out, "", "name", c->name);
		if (r == 0)
			r = put_key_string(out, "  ", "version", c->version);
		if (r == 0 && c->namespace)
			r = put_key_string(out, "  ", "namespace", c->namespace);
		if (r == 0)
			r = put_string_list(out, "  ", "manifests", c->manifests, c->manifest_count);
		if (r == 0)
			r = buf_printf(out, "  binaries:%s\n", c->binary_count ? "" : " []");
		for (size_t j = 0; r == 0 && j < c->binary_count; j++) {
			r = buf_append_str(out, "  - ");
			if (r == 0)
				r = put_key_string(out, "", "name", c->binaries[j].name);
			if (r == 0)
				r = put_key_string(out, "    ", "platform", c->binaries[j].platform);
			if (r == 0)
				r = put_key_string(out, "    ", "path", c->binaries[j].path);
		}
		if (r == 0)
			r = put_string_list(out, "  ", "images", c->images, c->image_count);
	}
	return r;
}

static int write_images(const struct bundle_index *index, struct buf *out)
{
	int r = buf_printf(out, "images:%s\n", index->image_count ? "" : " []");

	for (size_t i = 0; r == 0 && i < index->image_count; i++) {
		const struct bundle_image *image = &index->images[i];

		r = buf_append_str(out, "- ");
		if (r == 0)
			r = put_key_string(out, "", "name", image->name);
		if (r == 0)
			r = put_key_string(out, "  ", "digest", image->digest);
		if (r == 0)
			r = put_key_string(out, "  ", "mediaType", image->media_type);
		if (r == 0)
			r = buf_printf(out, "  size: %llu\n  blobs:\n", (unsigned long long)image->size);
		for (size_t j = 0; r == 0 && j < image->blob_count; j++) {
			const char *path = index->files[image->blobs[j]].path;

			r = buf_printf(out, "  - \"sha256:%s\"\n", path + strlen(BLOB_PREFIX));
		}
	}
	return r;
}

static int write_files(const struct bundle_index *index, struct buf *out)
{
	char hex[SHA256_HEX_LEN + 1];
	int r = buf_printf(out, "files:%s\n", index->file_count ? "" : " []");

	for (size_t i = 0; r == 0 && i < index->file_count; i++) {
		const struct bundle_file *file = &index->files[i];

		sha256_to_hex(file->sha256, hex);
		r = buf_append_str(out, "- ");
		if (r == 0)
			r = put_key_string(out, "", "path", file->path);
		if (r == 0)
			r = buf_printf(out, "  size: %llu\n  sha256: \"%s\"\n  mode: 0%o\n",
				       (unsigned long long)file->size, hex, file->mode);
		if (r == 0 && file->compression == BUNDLE_COMPRESSION_ZSTD) {
			sha256_to_hex(file->stored_sha256, hex);
			r = buf_append_str(out, "  stored:\n");
			if (r == 0)
				r = put_key_string(out, "    ", "path", file->stored_path);
			if (r == 0)
				r = buf_printf(out, "    compression: zstd\n    size: %llu\n    sha256: \"%s\"\n",
					       (unsigned long long)file->stored_size, hex);
		}
	}
	return r;
}

int bundle_index_write(const struct bundle_index *index, struct buf *out)
{
	int r;

	r = buf_printf(out,
		       "# mlboot bundle index; docs/bundle-format.md describes every field.\n"
		       "apiVersion: %s\nkind: BundleIndex\nformatVersion: %u\nplatform:\n",
		       BUNDLE_API_VERSION, index->format_version);
	if (r == 0)
		r = put_key_string(out, "  ", "name", index->name);
	if (r == 0)
		r = put_key_string(out, "  ", "version", index->version);
	if (r == 0)
		r = buf_append_str(out, "  kubernetes:\n");
	if (r == 0)
		r = put_key_string(out, "    ", "minVersion", index->kubernetes_min);
	if (r == 0)
		r = put_key_string(out, "    ", "maxVersion", index->kubernetes_max);
	if (r == 0)
		r = put_string_list(out, "  ", "platforms", index->platforms, index->platform_count);
	if (r == 0)
		r = write_components(index, out);
	if (r == 0)
		r = write_images(index, out);
	if (r == 0)
		r = write_files(index, out);
	if (r == 0)
		r = buf_printf(out, "disk:\n  storedBytes: %llu\n  unpackedBytes: %llu\n  bytesNeeded: %llu\n",
			       (unsigned long long)index->stored_bytes, (unsigned long long)index->unpacked_bytes,
			       (unsigned long long)index->bytes_needed);
	return r;
}

/* --- Parsing ---------------------------------------------------------- */

struct parse {
	struct bundle_report *report;
	int result;
	/* Whether every file record parsed: look-ups by path need them all. */
	bool files_ok;
	struct field_reader fields;  /* reader for fields.c, reporting through parse_error() */
};

__attribute__((format(printf, 4, 5)))
static void parse_error(struct parse *p, const struct doc_node *node, const char *field, const char *format, ...)
{
	char message[320];
	va_list args;

	va_start(args, format);
	vsnprintf(message, sizeof(message), format, args);
	va_end(args);
	if (node)
		bundle_report_add(p->report, MLB_EINPUT, "%s line %u: '%s': %s", BUNDLE_INDEX_NAME, node->line,
				  field, message);
	else
		bundle_report_add(p->report, MLB_EINPUT, "%s: '%s': %s", BUNDLE_INDEX_NAME, field, message);
	if (p->result == 0)
		p->result = MLB_EINPUT;
}

static void parse_report(void *context, const struct doc_node *node, const char *field, const char *message)
{
	parse_error(context, node, field, "%s", message);
}

/* Every field of the index is required. */
static const struct doc_node *get_typed(struct parse *p, const struct doc_node *map, const char *field,
					const char *key, enum doc_type type, const char *type_name)
{
	return field_get_typed(&p->fields, map, field, key, type, type_name, true);
}

static char *get_string(struct parse *p, const struct doc_node *map, const char *field, const char *key)
{
	const struct doc_node *node = get_typed(p, map, field, key, DOC_STRING, "a string");
	char *copy;

	if (!node)
		return NULL;
	if (node->text_len == 0 || memchr(node->text, '\0', node->text_len)) {
		parse_error(p, node, field, "'%s' must be a non-empty string without NUL", key);
		return NULL;
	}
	copy = strdup(node->text);
	if (!copy)
		p->result = -ENOMEM;
	return copy;
}

static bool get_uint(struct parse *p, const struct doc_node *map, const char *field, const char *key,
		     uint64_t *out)
{
	const struct doc_node *node = get_typed(p, map, field, key, DOC_INT, "a number");

	if (!node)
		return false;
	if (node->integer < 0) {
		parse_error(p, node, field, "'%s' must not be negative", key);
		return false;
	}
	*out = (uint64_t)node->integer;
	return true;
}

static bool get_sha256(struct parse *p, const struct doc_node *map, const char *field, const char *key,
		       unsigned char out[SHA256_BYTES])
{
	const struct doc_node *node = get_typed(p, map, field, key, DOC_STRING, "a string");

	if (!node)
		return false;
	if (hex_decode_sha256(node->text, node->text_len, out) < 0) {
		parse_error(p, node, field, "'%s' must be 64 lowercase hex digits", key);
		return false;
	}
	return true;
}

static char *get_path(struct parse *p, const struct doc_node *map, const char *field, const char *key)
{
	char *path = get_string(p, map, field, key);
	const char *reason = NULL;

	if (path && !bundle_path_is_valid(path, strlen(path), &reason)) {
		struct escaped shown;

		parse_error(p, doc_get(map, key), field, "invalid path '%s': %s", escape_name(&shown, path), reason);
		free(path);
		return NULL;
	}
	return path;
}

static bool is_reserved(const char *path)
{
	return strcmp(path, BUNDLE_INDEX_NAME) == 0 || strcmp(path, BUNDLE_SUMS_NAME) == 0 ||
	       strcmp(path, BUNDLE_SIGNATURE_NAME) == 0;
}

static void parse_file(struct parse *p, const struct doc_node *node, size_t i, struct bundle_file *file)
{
	static const char *const keys[] = { "path", "size", "sha256", "mode", "stored", NULL };
	static const char *const stored_keys[] = { "path", "compression", "size", "sha256", NULL };
	const struct doc_node *mode, *stored;
	char field[48];

	snprintf(field, sizeof(field), "files[%zu]", i);
	if (node->type != DOC_MAP) {
		parse_error(p, node, field, "must be a map");
		return;
	}
	field_check_keys(&p->fields, node, field, keys);
	file->path = get_path(p, node, field, "path");
	get_uint(p, node, field, "size", &file->size);
	get_sha256(p, node, field, "sha256", file->sha256);
	mode = get_typed(p, node, field, "mode", DOC_INT, "a number");
	if (mode && mode->integer != 0644 && mode->integer != 0755)
		parse_error(p, mode, field, "'mode' must be 0644 or 0755");
	file->mode = mode ? (unsigned)mode->integer : 0644;
	if (file->path && is_reserved(file->path))
		parse_error(p, node, field, "the path '%s' is reserved", file->path);

	stored = doc_get(node, "stored");
	if (!stored) {
		file->compression = BUNDLE_COMPRESSION_NONE;
		file->stored_path = file->path ? strdup(file->path) : NULL;
		if (file->path && !file->stored_path)
			p->result = -ENOMEM;
		file->stored_size = file->size;
		memcpy(file->stored_sha256, file->sha256, SHA256_BYTES);
		return;
	}
	snprintf(field, sizeof(field), "files[%zu].stored", i);
	if (stored->type != DOC_MAP) {
		parse_error(p, stored, field, "must be a map");
		return;
	}
	field_check_keys(&p->fields, stored, field, stored_keys);
	file->compression = BUNDLE_COMPRESSION_ZSTD;
	if (!doc_string_equals(doc_get(stored, "compression"), "zstd"))
		parse_error(p, stored, field, "'compression' must be zstd");
	file->stored_path = get_path(p, stored, field, "path");
	get_uint(p, stored, field, "size", &file->stored_size);
	get_sha256(p, stored, field, "sha256", file->stored_sha256);
	if (file->path && file->stored_path &&
	    (strlen(file->stored_path) != strlen(file->path) + 4 ||
	     strncmp(file->stored_path, file->path, strlen(file->path)) != 0 ||
	     strcmp(file->stored_path + strlen(file->path), ".zst") != 0))
		parse_error(p, stored, field, "'path' must be the file's path with '.zst' appended");
	if (file->path && strncmp(file->path, "images/", 7) == 0)
		parse_error(p, stored, field, "files under images/ are stored uncompressed");
}

static void parse_files(struct parse *p, const struct doc_node *root, struct bundle_index *index)
{
	const struct doc_node *files = get_typed(p, root, "files", "files", DOC_SEQ, "a list");

	if (!files || !field_check_count(&p->fields, files, "files", BUNDLE_FILES_MAX, "files"))
		return;
	index->files = calloc(files->count + 1, sizeof(*index->files));
	if (!index->files) {
		p->result = -ENOMEM;
		return;
	}
	index->file_count = files->count;
	for (size_t i = 0; i < files->count && p->result != -ENOMEM; i++) {
		struct bundle_file *file = &index->files[i];

		parse_file(p, files->items[i], i, file);
		if (i > 0 && file->stored_path && index->files[i - 1].stored_path &&
		    strcmp(index->files[i - 1].stored_path, file->stored_path) >= 0)
			parse_error(p, files->items[i], "files", "'%s' is listed twice or out of order",
				    file->stored_path);
		if (index->stored_bytes + file->stored_size < index->stored_bytes ||
		    index->unpacked_bytes + file->size < index->unpacked_bytes)
			parse_error(p, files->items[i], "files", "the sizes add up past 2^64");
		index->stored_bytes += file->stored_size;
		index->unpacked_bytes += file->size;
	}
}

/* Checks that no two files unpack to one path and that no file is another's folder. */
static void check_file_paths(struct parse *p, struct bundle_index *index)
{
	const struct bundle_file **sorted = NULL;

	if (p->result < 0)
		return;
	if (sort_by_path(index, &sorted) < 0) {
		p->result = -ENOMEM;
		return;
	}
	for (size_t i = 0; i < index->file_count; i++) {
		const char *path = sorted[i]->path;

		if (i > 0 && strcmp(sorted[i - 1]->path, path) == 0)
			parse_error(p, NULL, "files", "two files unpack to '%s'", path);
		for (const char *slash = strchr(path, '/'); slash; slash = strchr(slash + 1, '/')) {
			char folder[BUNDLE_PATH_MAX + 1];

			memcpy(folder, path, (size_t)(slash - path));
			folder[slash - path] = '\0';
			if (bundle_index_find_file(index, folder))
				parse_error(p, NULL, "files", "'%s' is a file and also the folder of '%s'", folder, path);
		}
	}
	free(sorted);
}

static char **parse_string_list(struct parse *p, const struct doc_node *map, const char *field, const char *key,
				size_t max, size_t *count)
{
	const struct doc_node *list = get_typed(p, map, field, key, DOC_SEQ, "a list");
	char **items;

	*count = 0;
	if (!list)
		return NULL;
	if (list->count > max) {
		parse_error(p, list, field, "'%s' has more than %zu items", key, max);
		return NULL;
	}
	items = calloc(list->count + 1, sizeof(*items));
	if (!items) {
		p->result = -ENOMEM;
		return NULL;
	}
	for (size_t i = 0; i < list->count; i++) {
		const struct doc_node *item = list->items[i];

		if (item->type != DOC_STRING || item->text_len == 0 || memchr(item->text, '\0', item->text_len)) {
			parse_error(p, item, field, "'%s' items must be non-empty strings", key);
			continue;
		}
		items[*count] = strdup(item->text);
		if (!items[*count]) {
			p->result = -ENOMEM;
			break;
		}
		(*count)++;
	}
	return items;
}

static void require_file(struct parse *p, const struct bundle_index *index, const struct doc_node *node,
			 const char *field, const char *path)
{
	if (path && p->files_ok && !bundle_index_find_file(index, path)) {
		struct escaped shown;

		parse_error(p, node, field, "'%s' is not among the files", escape_name(&shown, path));
	}
}

static void parse_binaries(struct parse *p, const struct doc_node *node, const char *component_field,
			   const struct bundle_index *index, struct bundle_component *c)
{
	static const char *const keys[] = { "name", "platform", "path", NULL };
	const struct doc_node *list = get_typed(p, node, component_field, "binaries", DOC_SEQ, "a list");
	const struct doc_node *item;
	struct field_walk walk;

	if (!list)
		return;
	c->binaries = calloc(list->count + 1, sizeof(*c->binaries));
	if (!c->binaries) {
		p->result = -ENOMEM;
		return;
	}
	field_walk_init(&walk, &p->fields, list, component_field, "binaries", keys, "must be a map");
	while ((item = field_walk_next(&walk))) {
		struct bundle_binary *binary = &c->binaries[c->binary_count];
		const char *field = walk.field;

		binary->name = get_string(p, item, field, "name");
		binary->platform = get_string(p, item, field, "platform");
		binary->path = get_path(p, item, field, "path");
		c->binary_count++;
		require_file(p, index, item, field, binary->path);
	}
}

static void parse_components(struct parse *p, const struct doc_node *root, struct bundle_index *index)
{
	static const char *const keys[] = { "name", "version", "namespace", "manifests", "binaries", "images", NULL };
	const struct doc_node *list = get_typed(p, root, "components", "components", DOC_SEQ, "a list");
	const struct doc_node *node;
	struct field_walk walk;

	if (!list || !field_check_count(&p->fields, list, "components", BUNDLE_COMPONENTS_MAX, "components"))
		return;
	index->components = calloc(list->count + 1, sizeof(*index->components));
	if (!index->components) {
		p->result = -ENOMEM;
		return;
	}
	index->component_count = list->count;
	field_walk_init(&walk, &p->fields, list, "", "components", keys, "must be a map");
	while (p->result != -ENOMEM && (node = field_walk_next(&walk))) {
		size_t i = walk.index;
		struct bundle_component *c = &index->components[i];
		const char *field = walk.field;

		c->name = get_string(p, node, field, "name");
		c->version = get_string(p, node, field, "version");
		if (doc_get(node, "namespace"))
			c->namespace = get_string(p, node, field, "namespace");
		c->manifests = parse_string_list(p, node, field, "manifests", BUNDLE_FILES_MAX, &c->manifest_count);
		for (size_t j = 0; j < c->manifest_count; j++)
			require_file(p, index, node, field, c->manifests[j]);
		parse_binaries(p, node, field, index, c);
		c->images = parse_string_list(p, node, field, "images", BUNDLE_IMAGES_MAX, &c->image_count);
		for (size_t j = 0; j < i; j++)
			if (c->name && index->components[j].name && strcmp(c->name, index->components[j].name) == 0)
				parse_error(p, node, field, "the component '%s' is listed twice", c->name);
	}
}

static void parse_image_blobs(struct parse *p, const struct doc_node *node, const char *field,
			      const struct bundle_index *index, struct bundle_image *image)
{
	const struct doc_node *list = get_typed(p, node, field, "blobs", DOC_SEQ, "a list");

	if (!list)
		return;
	if (list->count == 0 || list->count > IMAGE_BLOBS_MAX) {
		parse_error(p, list, field, "'blobs' must have 1 to %u items", IMAGE_BLOBS_MAX);
		return;
	}
	image->blobs = calloc(list->count, sizeof(*image->blobs));
	if (!image->blobs) {
		p->result = -ENOMEM;
		return;
	}
	for (size_t j = 0; j < list->count; j++) {
		const struct doc_node *item = list->items[j];
		unsigned char digest[SHA256_BYTES];
		char path[sizeof(BLOB_PREFIX) + SHA256_HEX_LEN];
		const struct bundle_file *file;

		if (item->type != DOC_STRING || item->text_len != 7 + SHA256_HEX_LEN ||
		    strncmp(item->text, "sha256:", 7) != 0 ||
		    hex_decode_sha256(item->text + 7, SHA256_HEX_LEN, digest) < 0) {
			parse_error(p, item, field, "blobs must be digests 'sha256:' and 64 hex digits");
			continue;
		}
		if (!p->files_ok)
			continue;
		snprintf(path, sizeof(path), "%s%s", BLOB_PREFIX, item->text + 7);
		file = find_stored(index, path);
		if (!file) {
			parse_error(p, item, field, "the blob %s is not among the files", item->text);
			continue;
		}
		if (memcmp(file->sha256, digest, SHA256_BYTES) != 0)
			parse_error(p, item, field, "the file of blob %s has another sha256", item->text);
		image->blobs[image->blob_count++] = (size_t)(file - index->files);
	}
}

static void parse_images(struct parse *p, const struct doc_node *root, struct bundle_index *index)
{
	static const char *const keys[] = { "name", "digest", "mediaType", "size", "blobs", NULL };
	const struct doc_node *list = get_typed(p, root, "images", "images", DOC_SEQ, "a list");
	const struct doc_node *node;
	struct field_walk walk;

	if (!list || !field_check_count(&p->fields, list, "images", BUNDLE_IMAGES_MAX, "images"))
		return;
	index->images = calloc(list->count + 1, sizeof(*index->images));
	if (!index->images) {
		p->result = -ENOMEM;
		return;
	}
	index->image_count = list->count;
	field_walk_init(&walk, &p->fields, list, "", "images", keys, "must be a map");
	while (p->result != -ENOMEM && (node = field_walk_next(&walk))) {
		size_t i = walk.index;
		struct bundle_image *image = &index->images[i];
		const char *field = walk.field;

		image->name = get_string(p, node, field, "name");
		image->digest = get_string(p, node, field, "digest");
		image->media_type = get_string(p, node, field, "mediaType");
		get_uint(p, node, field, "size", &image->size);
		parse_image_blobs(p, node, field, index, image);
		if (i > 0 && image->name && index->images[i - 1].name &&
		    strcmp(index->images[i - 1].name, image->name) >= 0)
			parse_error(p, node, field, "the image '%s' is listed twice or out of order", image->name);
		if (image->digest && image->blob_count > 0) {
			const struct bundle_file *first = &index->files[image->blobs[0]];

			if (strncmp(image->digest, "sha256:", 7) != 0 ||
			    strcmp(first->path + strlen(BLOB_PREFIX), image->digest + 7) != 0)
				parse_error(p, node, field, "the first blob must be the image's digest");
			else if (first->size != image->size)
				parse_error(p, node, field, "'size' differs from the size of its blob");
		}
	}
}

static void check_component_images(struct parse *p, const struct bundle_index *index)
{
	for (size_t i = 0; i < index->component_count; i++) {
		const struct bundle_component *c = &index->components[i];

		for (size_t j = 0; j < c->image_count; j++) {
			if (!bundle_index_find_image(index, c->images[j])) {
				struct escaped shown;

				parse_error(p, NULL, "components", "the image '%s' of '%s' is not among the images",
					    escape_name(&shown, c->images[j]), c->name ? c->name : "?");
			}
		}
	}
}

static void parse_platform(struct parse *p, const struct doc_node *root, struct bundle_index *index)
{
	static const char *const keys[] = { "name", "version", "kubernetes", "platforms", NULL };
	static const char *const kubernetes_keys[] = { "minVersion", "maxVersion", NULL };
	const struct doc_node *platform = get_typed(p, root, "platform", "platform", DOC_MAP, "a map");
	const struct doc_node *kubernetes;

	if (!platform)
		return;
	field_check_keys(&p->fields, platform, "platform", keys);
	index->name = get_string(p, platform, "platform", "name");
	index->version = get_string(p, platform, "platform", "version");
	kubernetes = get_typed(p, platform, "platform", "kubernetes", DOC_MAP, "a map");
	if (kubernetes) {
		field_check_keys(&p->fields, kubernetes, "platform.kubernetes", kubernetes_keys);
		index->kubernetes_min = get_string(p, kubernetes, "platform.kubernetes", "minVersion");
		index->kubernetes_max = get_string(p, kubernetes, "platform.kubernetes", "maxVersion");
	}
	index->platforms = parse_string_list(p, platform, "platform", "platforms", 64, &index->platform_count);
}

static void check_disk(struct parse *p, const struct doc_node *root, struct bundle_index *index)
{
	static const char *const keys[] = { "storedBytes", "unpackedBytes", "bytesNeeded", NULL };
	const struct doc_node *disk = get_typed(p, root, "disk", "disk", DOC_MAP, "a map");
	uint64_t stored = 0, unpacked = 0, needed = 0;

	if (!disk)
		return;
	field_check_keys(&p->fields, disk, "disk", keys);
	if (get_uint(p, disk, "disk", "storedBytes", &stored) && stored != index->stored_bytes)
		parse_error(p, disk, "disk", "'storedBytes' is %llu, the files add up to %llu",
			    (unsigned long long)stored, (unsigned long long)index->stored_bytes);
	if (get_uint(p, disk, "disk", "unpackedBytes", &unpacked) && unpacked != index->unpacked_bytes)
		parse_error(p, disk, "disk", "'unpackedBytes' is %llu, the files add up to %llu",
			    (unsigned long long)unpacked, (unsigned long long)index->unpacked_bytes);
	if (!get_uint(p, disk, "disk", "bytesNeeded", &needed) || p->result < 0)
		return;
	if (bundle_index_bytes_needed(index, &index->bytes_needed) < 0)
		parse_error(p, disk, "disk", "the file sizes overflow");
	else if (needed != index->bytes_needed)
		parse_error(p, disk, "disk", "'bytesNeeded' is %llu, the files need %llu",
			    (unsigned long long)needed, (unsigned long long)index->bytes_needed);
}

/* Reads formatVersion first, so that a newer format is reported as such and nothing else. */
static int check_version(struct parse *p, const struct doc_node *root, struct bundle_index *index)
{
	const struct doc_node *version = doc_get(root, "formatVersion");

	if (!version || version->type != DOC_INT) {
		parse_error(p, version ? version : root, "formatVersion", "missing or not a number");
		return MLB_EINPUT;
	}
	if (version->integer != BUNDLE_FORMAT_VERSION) {
		parse_error(p, version, "formatVersion",
			    "format version %lld is not supported: this mlboot reads version %d; use an mlboot that supports it",
			    version->integer, BUNDLE_FORMAT_VERSION);
		return MLB_EINPUT;
	}
	index->format_version = BUNDLE_FORMAT_VERSION;
	if (!doc_string_equals(doc_get(root, "apiVersion"), BUNDLE_API_VERSION))
		parse_error(p, root, "apiVersion", "must be %s", BUNDLE_API_VERSION);
	if (!doc_string_equals(doc_get(root, "kind"), "BundleIndex"))
		parse_error(p, root, "kind", "must be BundleIndex");
	return 0;
}

int bundle_index_parse(const char *data, size_t len, struct bundle_index *out,
		       struct bundle_report *report)
{
	static const char *const keys[] = { "apiVersion", "kind", "formatVersion", "platform", "components",
					    "images", "files", "disk", NULL };
	struct bundle_index index = { 0 };
	struct parse p = { report, 0, false, { parse_report, &p } };
	struct doc_node *root = NULL;
	struct doc_error error = { "", 0, 0 };
	int r;

	r = doc_parse(data, len, &index_limits, &root, &error);
	if (r < 0) {
		if (r == -ENOMEM)
			return r;
		return bundle_report_add(report, MLB_EINPUT, "%s line %u: %s", BUNDLE_INDEX_NAME, error.line,
					 error.message);
	}
	if (root->type != DOC_MAP) {
		r = bundle_report_add(report, MLB_EINPUT, "%s: the document must be a map", BUNDLE_INDEX_NAME);
		goto out;
	}
	r = check_version(&p, root, &index);
	if (r < 0)
		goto out;
	field_check_keys(&p.fields, root, "index", keys);
	parse_platform(&p, root, &index);
	parse_files(&p, root, &index);
	p.files_ok = p.result == 0;
	check_file_paths(&p, &index);
	parse_images(&p, root, &index);
	parse_components(&p, root, &index);
	/* The cross-checks below need every record complete. */
	if (p.result == 0)
		check_component_images(&p, &index);
	if (p.result == 0)
		check_disk(&p, root, &index);
	r = p.result;
out:
	doc_free(root);
	if (r < 0) {
		bundle_index_release(&index);
		return r;
	}
	*out = index;
	return 0;
}
