/*
 * Reading OCI image layouts (a folder with oci-layout, index.json and
 * blobs/sha256/...) and OCI archives (a tar of such a folder) for the
 * bundle writer: selecting an image, and walking its manifests to every
 * blob it needs. Manifests are hashed before they are parsed, so only
 * bytes that match their digest are ever interpreted.
 */
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "airgap-oci.h"

/* Largest manifest or index.json read; real ones are a few KiB. */
#define OCI_MANIFEST_MAX (4u * 1024 * 1024)
#define OCI_DEPTH_MAX 4
#define OCI_ARCHIVE_ENTRIES_MAX 100000

static const struct doc_limits oci_limits = {
	.max_bytes = OCI_MANIFEST_MAX,
	.max_depth = 32,
	.max_nodes = 200000,
};

__attribute__((format(printf, 2, 3)))
static int oci_fail(struct oci_error *error, const char *format, ...)
{
	va_list args;

	va_start(args, format);
	vsnprintf(error->message, sizeof(error->message), format, args);
	va_end(args);
	return MLB_EINPUT;
}

static bool is_index_type(const char *media_type)
{
	return media_type && (strcmp(media_type, "application/vnd.oci.image.index.v1+json") == 0 ||
			      strcmp(media_type, "application/vnd.docker.distribution.manifest.list.v2+json") == 0);
}

static bool is_manifest_type(const char *media_type)
{
	return media_type && (strcmp(media_type, "application/vnd.oci.image.manifest.v1+json") == 0 ||
			      strcmp(media_type, "application/vnd.docker.distribution.manifest.v2+json") == 0);
}

void oci_image_release(struct oci_image *image)
{
	if (!image)
		return;
	free(image->media_type);
	free(image->platform);
	free(image->blobs);
	memset(image, 0, sizeof(*image));
}

/* Reads a descriptor's digest, size and media type. */
static int read_descriptor(const struct doc_node *node, struct oci_descriptor *out, struct oci_error *error)
{
	const char *digest = doc_get_string(node, "digest");
	const char *media_type = doc_get_string(node, "mediaType");
	const struct doc_node *size = doc_get(node, "size");
	unsigned char ignored[SHA256_BYTES];

	memset(out, 0, sizeof(*out));
	if (!digest)
		return oci_fail(error, "a descriptor has no digest");
	if (strncmp(digest, "sha256:", 7) != 0 || hex_decode_sha256(digest + 7, strlen(digest + 7), ignored) < 0)
		return oci_fail(error, "the digest '%.80s' is not sha256 with 64 lowercase hex digits", digest);
	if (!size || size->type != DOC_INT || size->integer < 0)
		return oci_fail(error, "the descriptor of %s has no valid size", digest);
	memcpy(out->hex, digest + 7, SHA256_HEX_LEN + 1);
	out->size = (uint64_t)size->integer;
	snprintf(out->media_type, sizeof(out->media_type), "%s", media_type ? media_type : "");
	return 0;
}

/* Reads a blob that must match its descriptor into out (at most OCI_MANIFEST_MAX bytes). */
static int read_blob(const char *dir, const struct oci_descriptor *descriptor, struct buf *out,
		     struct oci_error *error)
{
	char path[4096], hex[SHA256_HEX_LEN + 1];
	int r;

	if (descriptor->size > OCI_MANIFEST_MAX)
		return oci_fail(error, "the manifest sha256:%s is larger than %u bytes", descriptor->hex,
				OCI_MANIFEST_MAX);
	snprintf(path, sizeof(path), "%s/blobs/sha256/%s", dir, descriptor->hex);
	r = file_read_all(path, OCI_MANIFEST_MAX, out);
	if (r == -ENOENT)
		return -ENOENT;
	if (r < 0)
		return oci_fail(error, "failed to read '%s': %s", path, mlb_strerror(r));
	if (out->len != descriptor->size)
		return oci_fail(error, "the blob sha256:%s is %zu bytes, its descriptor says %llu", descriptor->hex,
				out->len, (unsigned long long)descriptor->size);
	r = sha256_hex(out->data, out->len, hex);
	if (r < 0)
		return r;
	if (strcmp(hex, descriptor->hex) != 0)
		return oci_fail(error, "the blob sha256:%s does not match its digest", descriptor->hex);
	return 0;
}

static int add_blob(struct oci_image *image, const char *hex, uint64_t size)
{
	struct oci_descriptor *blobs;

	for (size_t i = 0; i < image->blob_count; i++)
		if (strcmp(image->blobs[i].hex, hex) == 0)
			return 0;
	if (image->blob_count >= OCI_IMAGE_BLOBS_MAX)
		return -E2BIG;
	blobs = realloc(image->blobs, (image->blob_count + 1) * sizeof(*blobs));
	if (!blobs)
		return -ENOMEM;
	image->blobs = blobs;
	memset(&blobs[image->blob_count], 0, sizeof(*blobs));
	memcpy(blobs[image->blob_count].hex, hex, SHA256_HEX_LEN + 1);
	blobs[image->blob_count].size = size;
	image->blob_count++;
	return 0;
}

/* "os/architecture[/variant]" of a descriptor's platform, or "" when it has none. */
static void platform_name(const struct doc_node *descriptor, char *out, size_t size)
{
	const char *os = doc_find_string(descriptor, "platform", "os", NULL);
	const char *architecture = doc_find_string(descriptor, "platform", "architecture", NULL);
	const char *variant = doc_find_string(descriptor, "platform", "variant", NULL);

	if (!os || !architecture)
		snprintf(out, size, "%s", "");
	else if (variant)
		snprintf(out, size, "%s/%s/%s", os, architecture, variant);
	else
		snprintf(out, size, "%s/%s", os, architecture);
}

static bool platform_wanted(const char *platform, const char *const *platforms, size_t count)
{
	for (size_t i = 0; i < count; i++) {
		size_t len = strlen(platforms[i]);

		/* "linux/arm" in the list takes every linux/arm variant. */
		if (strcmp(platform, platforms[i]) == 0 || (strncmp(platform, platforms[i], len) == 0 && platform[len] == '/'))
			return true;
	}
	return false;
}

static int walk(const char *dir, const struct oci_descriptor *descriptor, const char *const *platforms,
		size_t platform_count, unsigned depth, struct oci_image *image, struct oci_error *error);

static int walk_index(const char *dir, const struct doc_node *root, const char *const *platforms,
		      size_t platform_count, unsigned depth, struct oci_image *image, struct oci_error *error)
{
	const struct doc_node *manifests = doc_get(root, "manifests");
	bool *found = calloc(platform_count + 1, sizeof(*found));
	int r = 0;

	if (!found)
		return -ENOMEM;
	if (!manifests || manifests->type != DOC_SEQ) {
		free(found);
		return oci_fail(error, "an image index has no 'manifests' list");
	}
	for (size_t i = 0; r == 0 && i < manifests->count; i++) {
		struct oci_descriptor child;
		char platform[128];

		r = read_descriptor(manifests->items[i], &child, error);
		if (r < 0)
			break;
		platform_name(manifests->items[i], platform, sizeof(platform));
		if (!platform[0] || !platform_wanted(platform, platforms, platform_count))
			continue;
		r = walk(dir, &child, platforms, platform_count, depth + 1, image, error);
		if (r == 0) {
			for (size_t p = 0; p < platform_count; p++)
				if (platform_wanted(platform, &platforms[p], 1))
					found[p] = true;
		}
	}
	for (size_t p = 0; r == 0 && p < platform_count; p++)
		if (!found[p])
			r = oci_fail(error, "the image index sha256:%s in '%s' has no manifest for %s",
				     image->blobs[0].hex, dir, platforms[p]);
	free(found);
	return r;
}

static int walk_manifest(const struct doc_node *root, struct oci_image *image, struct oci_error *error)
{
	const struct doc_node *layers = doc_get(root, "layers");
	const struct doc_node *config = doc_get(root, "config");
	struct oci_descriptor blob;
	int r;

	if (!config || config->type != DOC_MAP)
		return oci_fail(error, "an image manifest has no 'config'");
	r = read_descriptor(config, &blob, error);
	if (r == 0)
		r = add_blob(image, blob.hex, blob.size);
	if (r < 0)
		return r;
	if (!layers || layers->type != DOC_SEQ)
		return oci_fail(error, "an image manifest has no 'layers' list");
	for (size_t i = 0; i < layers->count; i++) {
		r = read_descriptor(layers->items[i], &blob, error);
		if (r == 0)
			r = add_blob(image, blob.hex, blob.size);
		if (r < 0)
			return r;
	}
	return 0;
}

static int walk(const char *dir, const struct oci_descriptor *descriptor, const char *const *platforms,
		size_t platform_count, unsigned depth, struct oci_image *image, struct oci_error *error)
{
	struct buf data = BUF_INIT(OCI_MANIFEST_MAX);
	struct doc_error parse_error;
	struct doc_node *root = NULL;
	const char *media_type;
	int r;

	if (depth > OCI_DEPTH_MAX)
		return oci_fail(error, "image indexes nest deeper than %d levels", OCI_DEPTH_MAX);
	r = read_blob(dir, descriptor, &data, error);
	if (r == -ENOENT)
		r = oci_fail(error, "the manifest sha256:%s is missing from '%s/blobs/sha256'", descriptor->hex, dir);
	if (r < 0)
		goto out;
	r = add_blob(image, descriptor->hex, descriptor->size);
	if (r < 0)
		goto out;
	r = doc_parse(data.data, data.len, &oci_limits, &root, &parse_error);
	if (r < 0) {
		r = oci_fail(error, "the manifest sha256:%s is not valid JSON: line %u: %s", descriptor->hex,
			     parse_error.line, parse_error.message);
		goto out;
	}
	media_type = descriptor->media_type[0] ? descriptor->media_type : doc_get_string(root, "mediaType");
	if (!media_type && doc_get(root, "manifests"))
		media_type = "application/vnd.oci.image.index.v1+json";
	if (!media_type && doc_get(root, "layers"))
		media_type = "application/vnd.oci.image.manifest.v1+json";
	if (is_index_type(media_type))
		r = walk_index(dir, root, platforms, platform_count, depth, image, error);
	else if (is_manifest_type(media_type))
		r = walk_manifest(root, image, error);
	else
		r = oci_fail(error, "the manifest sha256:%s has the unsupported media type '%.80s'", descriptor->hex,
			     media_type ? media_type : "");
	if (r == 0 && depth == 0 && !image->media_type) {
		image->media_type = strdup(media_type);
		if (!image->media_type)
			r = -ENOMEM;
	}
out:
	doc_free(root);
	buf_release(&data);
	return r;
}

/* Whether a descriptor of index.json is annotated with name (full reference or tag). */
static bool descriptor_has_name(const struct doc_node *descriptor, const char *name)
{
	const char *full = doc_find_string(descriptor, "annotations", "io.containerd.image.name", NULL);
	const char *ref = doc_find_string(descriptor, "annotations", "org.opencontainers.image.ref.name", NULL);
	const char *slash = strrchr(name, '/');
	const char *colon = strrchr(slash ? slash : name, ':');

	if (full && strcmp(full, name) == 0)
		return true;
	if (ref && strcmp(ref, name) == 0)
		return true;
	return ref && colon && strcmp(ref, colon + 1) == 0;
}

int oci_layout_read_index(const char *dir, struct doc_node **out, struct oci_error *error)
{
	struct buf data = BUF_INIT(OCI_MANIFEST_MAX);
	struct doc_error parse_error;
	struct doc_node *root = NULL;
	char path[4096];
	int r;

	snprintf(path, sizeof(path), "%s/oci-layout", dir);
	r = file_read_all(path, 4096, &data);
	if (r < 0)
		return oci_fail(error, "'%s' is not an OCI image layout: failed to read its oci-layout: %s", dir,
				mlb_strerror(r));
	r = doc_parse(data.data, data.len, &oci_limits, &root, &parse_error);
	if (r < 0 || !doc_string_equals(doc_get(root, "imageLayoutVersion"), "1.0.0")) {
		doc_free(root);
		buf_release(&data);
		return oci_fail(error, "'%s/oci-layout' does not give imageLayoutVersion 1.0.0", dir);
	}
	doc_free(root);
	root = NULL;
	buf_reset(&data);

	snprintf(path, sizeof(path), "%s/index.json", dir);
	r = file_read_all(path, OCI_MANIFEST_MAX, &data);
	if (r < 0) {
		buf_release(&data);
		return oci_fail(error, "failed to read '%s': %s", path, mlb_strerror(r));
	}
	r = doc_parse(data.data, data.len, &oci_limits, &root, &parse_error);
	buf_release(&data);
	if (r < 0)
		return oci_fail(error, "'%s' is not valid JSON: line %u: %s", path, parse_error.line,
				parse_error.message);
	if (!doc_get(root, "manifests") || doc_get(root, "manifests")->type != DOC_SEQ) {
		doc_free(root);
		return oci_fail(error, "'%s' has no 'manifests' list", path);
	}
	*out = root;
	return 0;
}

int oci_image_collect(const char *dir, const struct doc_node *descriptor, const char *const *platforms,
		      size_t platform_count, struct oci_image *out, struct oci_error *error)
{
	struct oci_image image = { 0 };
	struct oci_descriptor top;
	char platform[128];
	int r;

	r = read_descriptor(descriptor, &top, error);
	if (r < 0)
		return r;
	r = walk(dir, &top, platforms, platform_count, 0, &image, error);
	if (r == 0) {
		platform_name(descriptor, platform, sizeof(platform));
		if (platform[0]) {
			image.platform = strdup(platform);
			if (!image.platform)
				r = -ENOMEM;
		}
	}
	if (r < 0) {
		oci_image_release(&image);
		return r;
	}
	memcpy(image.hex, top.hex, sizeof(top.hex));
	image.size = top.size;
	*out = image;
	return 0;
}

int oci_layout_select(const struct doc_node *index, const char *dir, const char *name,
		      const struct doc_node **out, struct oci_error *error)
{
	const struct doc_node *manifests = doc_get(index, "manifests");
	const struct doc_node *match = NULL;

	for (size_t i = 0; i < manifests->count; i++) {
		if (!descriptor_has_name(manifests->items[i], name))
			continue;
		if (match)
			return oci_fail(error, "'%s/index.json' has several images named '%s'", dir, name);
		match = manifests->items[i];
	}
	if (!match && manifests->count == 1)
		match = manifests->items[0];
	if (!match)
		return oci_fail(error, "'%s/index.json' has %zu images and none is annotated as '%s'", dir,
				manifests->count, name);
	*out = match;
	return 0;
}

const char *oci_descriptor_name(const struct doc_node *descriptor)
{
	const char *full = doc_find_string(descriptor, "annotations", "io.containerd.image.name", NULL);
	const char *ref = doc_find_string(descriptor, "annotations", "org.opencontainers.image.ref.name", NULL);

	if (full)
		return full;
	/* A reference name that is only a tag does not say which repository it belongs to. */
	if (ref && strchr(ref, '/'))
		return ref;
	return NULL;
}

/* Whether an archive member is part of an OCI layout: oci-layout, index.json or blobs/sha256/HEX. */
static bool layout_member(const char *name)
{
	unsigned char ignored[SHA256_BYTES];

	if (strncmp(name, "./", 2) == 0)
		name += 2;
	if (strcmp(name, "oci-layout") == 0 || strcmp(name, "index.json") == 0)
		return true;
	return strncmp(name, "blobs/sha256/", 13) == 0 && hex_decode_sha256(name + 13, strlen(name + 13), ignored) == 0;
}

static int extract_member(struct archive *archive, int dir_fd, const char *name, struct oci_error *error)
{
	int blobs_fd = -1, sha_fd = -1, fd = -1, r = 0;
	const char *base = name;

	if (strncmp(base, "./", 2) == 0)
		base += 2;
	if (strncmp(base, "blobs/sha256/", 13) == 0) {
		(void)mkdirat(dir_fd, "blobs", 0755);
		blobs_fd = openat(dir_fd, "blobs", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (blobs_fd >= 0) {
			(void)mkdirat(blobs_fd, "sha256", 0755);
			sha_fd = openat(blobs_fd, "sha256", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		}
		if (sha_fd < 0) {
			r = -errno;
			goto out;
		}
		fd = openat(sha_fd, base + 13, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
	} else {
		fd = openat(dir_fd, base, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
	}
	if (fd < 0) {
		r = errno == EEXIST ? oci_fail(error, "the archive has '%s' twice", base) : -errno;
		goto out;
	}
	for (;;) {
		const void *block;
		size_t size;
		la_int64_t offset;
		int status = archive_read_data_block(archive, &block, &size, &offset);

		if (status == ARCHIVE_EOF)
			break;
		if (status != ARCHIVE_OK) {
			r = oci_fail(error, "failed to read '%s' from the archive: %s", base, archive_error_string(archive));
			goto out;
		}
		/* Sparse members would need holes; OCI archives have none, so offsets must be contiguous. */
		if (lseek(fd, 0, SEEK_CUR) != (off_t)offset) {
			r = oci_fail(error, "'%s' in the archive is sparse", base);
			goto out;
		}
		r = file_write_full(fd, block, size);
		if (r < 0)
			goto out;
	}
out:
	if (fd >= 0)
		close(fd);
	if (sha_fd >= 0)
		close(sha_fd);
	if (blobs_fd >= 0)
		close(blobs_fd);
	return r;
}

int oci_archive_extract(const char *archive_path, int dir_fd, struct oci_error *error)
{
	struct archive *archive = archive_read_new();
	struct archive_entry *entry;
	size_t entries = 0;
	int r = 0;

	if (!archive)
		return -ENOMEM;
	archive_read_support_format_tar(archive);
	archive_read_support_filter_none(archive);
	if (archive_read_open_filename(archive, archive_path, 1024 * 1024) != ARCHIVE_OK) {
		r = oci_fail(error, "failed to open the OCI archive '%s': %s", archive_path, archive_error_string(archive));
		goto out;
	}
	for (;;) {
		int status = archive_read_next_header(archive, &entry);
		const char *name;

		if (status == ARCHIVE_EOF)
			break;
		if (status != ARCHIVE_OK && status != ARCHIVE_WARN) {
			r = oci_fail(error, "failed to read the OCI archive '%s': %s", archive_path,
				     archive_error_string(archive));
			break;
		}
		if (++entries > OCI_ARCHIVE_ENTRIES_MAX) {
			r = oci_fail(error, "the OCI archive '%s' has more than %d entries", archive_path,
				     OCI_ARCHIVE_ENTRIES_MAX);
			break;
		}
		name = archive_entry_pathname(entry);
		if (!name || archive_entry_filetype(entry) == AE_IFDIR)
			continue;
		if (archive_entry_filetype(entry) != AE_IFREG || !layout_member(name)) {
			/* Other members (a docker manifest.json, links) are not part of the layout. */
			continue;
		}
		r = extract_member(archive, dir_fd, name, error);
		if (r < 0)
			break;
	}
out:
	archive_read_free(archive);
	return r;
}
