/*
 * The OCI image layout that pulled images are stored in (OCI image-spec
 * image-layout.md): oci-layout, index.json and blobs/sha256/HEX.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "images.h"
#include "images-internal.h"

#define LAYOUT_INDEX_MAX (16u * 1024 * 1024)
#define OCI_LAYOUT_TEXT "{\"imageLayoutVersion\":\"1.0.0\"}"

struct layout_entry {
	char *name;
	char *source;        /* NULL when pulled from the registry the name gives */
	struct image_descriptor descriptor;
};

struct image_layout {
	char *dir;
	struct layout_entry *entries;
	size_t count;
};

static const struct doc_limits index_limits = {
	.max_bytes = LAYOUT_INDEX_MAX,
	.max_depth = 16,
	.max_nodes = 1000000,
};

const char *image_layout_dir(const struct image_layout *layout)
{
	return layout->dir;
}

static int digest_hex(const char *digest, const char **hex)
{
	if (strncmp(digest, "sha256:", 7) != 0 || !sha256_is_hex(digest + 7))
		return MLB_EINPUT;
	*hex = digest + 7;
	return 0;
}

int image_layout_blob_path(const struct image_layout *layout, const char *digest, char *out, size_t size)
{
	const char *hex;
	int n;

	if (digest_hex(digest, &hex) < 0)
		return MLB_EINPUT;
	n = snprintf(out, size, "%s/blobs/sha256/%s", layout->dir, hex);
	return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

bool image_layout_has_blob(const struct image_layout *layout, const char *digest, uint64_t size)
{
	char path[PATH_MAX_LAYOUT];
	struct stat st;

	if (image_layout_blob_path(layout, digest, path, sizeof(path)) < 0)
		return false;
	if (lstat(path, &st) < 0 || !S_ISREG(st.st_mode))
		return false;
	return (uint64_t)st.st_size == size;
}

static void entry_release(struct layout_entry *entry)
{
	free(entry->name);
	free(entry->source);
}

void image_layout_free(struct image_layout *layout)
{
	if (!layout)
		return;
	for (size_t i = 0; i < layout->count; i++)
		entry_release(&layout->entries[i]);
	free(layout->entries);
	free(layout->dir);
	free(layout);
}

static struct layout_entry *find_entry(const struct image_layout *layout, const char *name)
{
	for (size_t i = 0; i < layout->count; i++)
		if (strcmp(layout->entries[i].name, name) == 0)
			return &layout->entries[i];
	return NULL;
}

const struct image_descriptor *image_layout_find_image(const struct image_layout *layout, const char *name)
{
	const struct layout_entry *entry = find_entry(layout, name);

	return entry ? &entry->descriptor : NULL;
}

int image_layout_set_image(struct image_layout *layout, const char *name,
			   const struct image_descriptor *descriptor, const char *source)
{
	struct layout_entry *entry = find_entry(layout, name);
	char *name_copy = NULL, *source_copy = NULL;

	name_copy = strdup(name);
	if (source)
		source_copy = strdup(source);
	if (!name_copy || (source && !source_copy)) {
		free(name_copy);
		free(source_copy);
		return -ENOMEM;
	}
	if (!entry) {
		struct layout_entry *grown = realloc(layout->entries, (layout->count + 1) * sizeof(*grown));

		if (!grown) {
			free(name_copy);
			free(source_copy);
			return -ENOMEM;
		}
		layout->entries = grown;
		entry = &layout->entries[layout->count++];
	} else {
		entry_release(entry);
	}
	memset(entry, 0, sizeof(*entry));
	entry->name = name_copy;
	entry->source = source_copy;
	entry->descriptor = *descriptor;
	entry->descriptor.has_platform = false;
	return 0;
}

/* Reads the entries of an existing index.json that carry an image name. */
static int load_index(struct image_layout *layout, const char *path)
{
	struct buf data = BUF_INIT(LAYOUT_INDEX_MAX);
	struct doc_node *root = NULL;
	struct doc_error error;
	const struct doc_node *manifests;
	int r;

	r = file_read_all(path, LAYOUT_INDEX_MAX, &data);
	if (r < 0)
		goto out;
	r = doc_parse(data.data, data.len, &index_limits, &root, &error);
	if (r < 0)
		goto out;
	manifests = doc_get(root, "manifests");
	r = MLB_EINPUT;
	if (!manifests || manifests->type != DOC_SEQ)
		goto out;
	for (size_t i = 0; i < manifests->count; i++) {
		const struct doc_node *item = manifests->items[i];
		const char *name = doc_find_string(item, "annotations", IMAGE_ANNOTATION_MLBOOT_NAME, NULL);
		const char *source = doc_find_string(item, "annotations", IMAGE_ANNOTATION_MLBOOT_SOURCE, NULL);
		const struct doc_node *size = doc_get(item, "size");
		struct image_descriptor descriptor = { 0 };
		const char *media_type = doc_get_string(item, "mediaType");
		const char *digest = doc_get_string(item, "digest");
		const char *hex;

		if (!name)
			name = doc_find_string(item, "annotations", IMAGE_ANNOTATION_CONTAINERD_NAME, NULL);
		if (!name || !media_type || !digest || !size || size->type != DOC_INT || size->integer < 0 ||
		    strlen(media_type) > IMAGE_MEDIA_TYPE_MAX || digest_hex(digest, &hex) < 0)
			goto out;
		strcpy(descriptor.media_type, media_type);
		strcpy(descriptor.digest, digest);
		descriptor.size = (uint64_t)size->integer;
		r = image_layout_set_image(layout, name, &descriptor, source);
		if (r < 0)
			goto out;
		r = MLB_EINPUT;
	}
	r = 0;
out:
	doc_free(root);
	buf_release(&data);
	return r;
}

int image_layout_open(const char *dir, struct image_layout **out)
{
	struct image_layout *layout = NULL;
	char path[PATH_MAX_LAYOUT];
	int r;

	*out = NULL;
	if (strlen(dir) + 80 >= sizeof(path))
		return -ENAMETOOLONG;
	layout = calloc(1, sizeof(*layout));
	if (!layout || !(layout->dir = strdup(dir))) {
		r = -ENOMEM;
		goto out;
	}
	snprintf(path, sizeof(path), "%s/blobs/sha256", dir);
	r = file_mkdir_parents(path, 0755);
	if (r < 0)
		goto out;
	snprintf(path, sizeof(path), "%s/oci-layout", dir);
	if (!file_exists(path)) {
		r = file_write_atomic(path, OCI_LAYOUT_TEXT, strlen(OCI_LAYOUT_TEXT), 0644);
		if (r < 0)
			goto out;
	}
	snprintf(path, sizeof(path), "%s/index.json", dir);
	if (file_exists(path)) {
		r = load_index(layout, path);
		if (r < 0)
			goto out;
	}
	*out = layout;
	layout = NULL;
	r = 0;
out:
	image_layout_free(layout);
	return r;
}

int image_layout_put_blob(struct image_layout *layout, const char *digest, const void *data, size_t len)
{
	char path[PATH_MAX_LAYOUT], actual[SHA256_HEX_LEN + 1];
	const char *hex;
	int r;

	r = digest_hex(digest, &hex);
	if (r < 0)
		return r;
	r = sha256_hex(data, len, actual);
	if (r < 0)
		return r;
	if (strcmp(actual, hex) != 0)
		return MLB_EINTEGRITY;
	if (image_layout_has_blob(layout, digest, len))
		return 0;
	r = image_layout_blob_path(layout, digest, path, sizeof(path));
	if (r < 0)
		return r;
	return file_write_atomic(path, data, len, 0644);
}

static int compare_entries(const void *a, const void *b)
{
	return strcmp(((const struct layout_entry *)a)->name, ((const struct layout_entry *)b)->name);
}

static int write_annotation(struct buf *out, const char *key, const char *value, bool first)
{
	int r = buf_append_str(out, first ? "" : ",");

	if (r == 0)
		r = doc_write_json_string(out, key, strlen(key));
	if (r == 0)
		r = buf_append_char(out, ':');
	if (r == 0)
		r = doc_write_json_string(out, value, strlen(value));
	return r;
}

int image_layout_save(struct image_layout *layout)
{
	struct buf out = BUF_INIT(LAYOUT_INDEX_MAX);
	char path[PATH_MAX_LAYOUT];
	int r;

	qsort(layout->entries, layout->count, sizeof(*layout->entries), compare_entries);
	r = buf_append_str(&out, "{\"schemaVersion\":2,\"mediaType\":\"" IMAGE_MEDIA_OCI_INDEX "\",\"manifests\":[");
	for (size_t i = 0; r == 0 && i < layout->count; i++) {
		const struct layout_entry *entry = &layout->entries[i];

		r = buf_printf(&out, "%s{\"mediaType\":", i ? "," : "");
		if (r == 0)
			r = doc_write_json_string(&out, entry->descriptor.media_type, strlen(entry->descriptor.media_type));
		if (r == 0)
			r = buf_printf(&out, ",\"digest\":\"%s\",\"size\":%llu,\"annotations\":{", entry->descriptor.digest,
				       (unsigned long long)entry->descriptor.size);
		if (r == 0)
			r = write_annotation(&out, IMAGE_ANNOTATION_MLBOOT_NAME, entry->name, true);
		if (r == 0 && entry->source)
			r = write_annotation(&out, IMAGE_ANNOTATION_MLBOOT_SOURCE, entry->source, false);
		if (r == 0)
			r = write_annotation(&out, IMAGE_ANNOTATION_CONTAINERD_NAME, entry->name, false);
		if (r == 0)
			r = write_annotation(&out, IMAGE_ANNOTATION_REF_NAME, entry->name, false);
		if (r == 0)
			r = buf_append_str(&out, "}}");
	}
	if (r == 0)
		r = buf_append_str(&out, "]}\n");
	if (r == 0) {
		snprintf(path, sizeof(path), "%s/index.json", layout->dir);
		r = file_write_atomic(path, out.data, out.len, 0644);
	}
	buf_release(&out);
	return r;
}

/* --- Streaming blobs ------------------------------------------------------- */

int layout_blob_begin(struct image_layout *layout, const char *digest, uint64_t size,
		      struct layout_blob_writer *writer)
{
	int r;

	memset(writer, 0, sizeof(*writer));
	writer->fd = -1;
	r = image_layout_blob_path(layout, digest, writer->final_path, sizeof(writer->final_path));
	if (r < 0)
		return r;
	snprintf(writer->digest, sizeof(writer->digest), "%s", digest);
	writer->expected_size = size;
	if (snprintf(writer->temp_path, sizeof(writer->temp_path), "%s/blobs/sha256/.partial-XXXXXX", layout->dir) >=
	    (int)sizeof(writer->temp_path))
		return -ENAMETOOLONG;
	writer->fd = mkostemp(writer->temp_path, O_CLOEXEC);
	if (writer->fd < 0) {
		writer->temp_path[0] = '\0';
		return -errno;
	}
	r = sha256_init(&writer->hash);
	if (r < 0)
		layout_blob_abort(writer);
	return r;
}

int layout_blob_write(struct layout_blob_writer *writer, const void *data, size_t len)
{
	int r;

	if (len > writer->expected_size - writer->written)
		return -EFBIG;
	r = sha256_update(&writer->hash, data, len);
	if (r == 0)
		r = file_write_full(writer->fd, data, len);
	if (r == 0)
		writer->written += len;
	return r;
}

int layout_blob_restart(struct layout_blob_writer *writer)
{
	sha256_release(&writer->hash);
	writer->written = 0;
	if (ftruncate(writer->fd, 0) < 0 || lseek(writer->fd, 0, SEEK_SET) < 0)
		return -errno;
	return sha256_init(&writer->hash);
}

int layout_blob_commit(struct layout_blob_writer *writer)
{
	unsigned char digest[SHA256_BYTES];
	char hex[SHA256_HEX_LEN + 1];
	int r;

	if (writer->written != writer->expected_size) {
		r = MLB_EINTEGRITY;
		goto out;
	}
	r = sha256_final(&writer->hash, digest);
	if (r < 0)
		goto out;
	sha256_to_hex(digest, hex);
	if (strcmp(hex, writer->digest + 7) != 0) {
		r = MLB_EINTEGRITY;
		goto out;
	}
	if (fchmod(writer->fd, 0644) < 0 || fsync(writer->fd) < 0 || rename(writer->temp_path, writer->final_path) < 0) {
		r = -errno;
		goto out;
	}
	writer->temp_path[0] = '\0';
	r = 0;
out:
	layout_blob_abort(writer);
	return r;
}

void layout_blob_abort(struct layout_blob_writer *writer)
{
	sha256_release(&writer->hash);
	if (writer->fd >= 0)
		close(writer->fd);
	writer->fd = -1;
	if (writer->temp_path[0])
		unlink(writer->temp_path);
	writer->temp_path[0] = '\0';
}
