/*
 * OCI and Docker v2 manifests and indexes, and platform selection.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "images.h"

static const struct doc_limits manifest_limits = {
	.max_bytes = IMAGE_MANIFEST_MAX,
	.max_depth = 32,
	.max_nodes = 16 * IMAGE_DESCRIPTORS_MAX + 4096,
};

static bool platform_field_is_valid(const char *text, size_t max)
{
	size_t len = strlen(text);

	if (len == 0 || len >= max)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = text[i];

		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.'))
			return false;
	}
	return true;
}

int image_platform_parse(const char *text, struct image_platform *out)
{
	char copy[sizeof(out->os) + sizeof(out->architecture) + sizeof(out->variant)];
	char *architecture, *variant;

	memset(out, 0, sizeof(*out));
	if (!text || strlen(text) >= sizeof(copy))
		return MLB_EINPUT;
	strcpy(copy, text);
	architecture = strchr(copy, '/');
	if (!architecture)
		return MLB_EINPUT;
	*architecture++ = '\0';
	variant = strchr(architecture, '/');
	if (variant)
		*variant++ = '\0';
	if (!platform_field_is_valid(copy, sizeof(out->os)) ||
	    !platform_field_is_valid(architecture, sizeof(out->architecture)) ||
	    (variant && !platform_field_is_valid(variant, sizeof(out->variant))))
		return MLB_EINPUT;
	strcpy(out->os, copy);
	strcpy(out->architecture, architecture);
	if (variant)
		strcpy(out->variant, variant);
	return 0;
}

void image_platform_format(const struct image_platform *platform, char *out, size_t size)
{
	snprintf(out, size, "%s/%s%s%s", platform->os, platform->architecture,
		 platform->variant[0] ? "/" : "", platform->variant);
}

/* The variant as containerd's platforms.Normalize() spells it. */
static const char *normalised_variant(const struct image_platform *platform)
{
	if (strcmp(platform->architecture, "arm64") == 0 && strcmp(platform->variant, "v8") == 0)
		return "";
	if (strcmp(platform->architecture, "amd64") == 0 && strcmp(platform->variant, "v1") == 0)
		return "";
	if (strcmp(platform->architecture, "arm") == 0 && !platform->variant[0])
		return "v7";
	return platform->variant;
}

bool image_platform_matches(const struct image_platform *want, const struct image_platform *have)
{
	if (strcmp(want->os, have->os) != 0 || strcmp(want->architecture, have->architecture) != 0)
		return false;
	if (!want->variant[0])
		return true;
	return strcmp(normalised_variant(want), normalised_variant(have)) == 0;
}

static bool is_image_manifest_type(const char *media_type)
{
	return strcmp(media_type, IMAGE_MEDIA_OCI_MANIFEST) == 0 ||
	       strcmp(media_type, IMAGE_MEDIA_DOCKER_MANIFEST) == 0;
}

static bool is_index_type(const char *media_type)
{
	return strcmp(media_type, IMAGE_MEDIA_OCI_INDEX) == 0 ||
	       strcmp(media_type, IMAGE_MEDIA_DOCKER_LIST) == 0;
}

int image_index_select(const struct image_manifest *index, const struct image_platform *platform,
		       size_t *position)
{
	size_t fallback = SIZE_MAX;

	if (index->kind != IMAGE_MANIFEST_INDEX)
		return -EINVAL;
	for (size_t i = 0; i < index->count; i++) {
		const struct image_descriptor *d = &index->descriptors[i];

		if (!d->has_platform || !is_image_manifest_type(d->media_type))
			continue;
		if (!image_platform_matches(platform, &d->platform))
			continue;
		if (strcmp(normalised_variant(platform), normalised_variant(&d->platform)) == 0) {
			*position = i;
			return 0;
		}
		if (fallback == SIZE_MAX)
			fallback = i;
	}
	if (fallback == SIZE_MAX)
		return -ENOENT;
	*position = fallback;
	return 0;
}

/* Copies the string member key of map into out; MLB_EINPUT when missing (unless optional) or too long. */
static int copy_member(const struct doc_node *map, const char *key, char *out, size_t size, bool optional)
{
	const struct doc_node *node = doc_get(map, key);

	out[0] = '\0';
	if (!node)
		return optional ? 0 : MLB_EINPUT;
	if (node->type != DOC_STRING || node->text_len >= size || strlen(node->text) != node->text_len)
		return MLB_EINPUT;
	memcpy(out, node->text, node->text_len + 1);
	return 0;
}

static int parse_platform(const struct doc_node *node, struct image_platform *out)
{
	if (node->type != DOC_MAP)
		return MLB_EINPUT;
	if (copy_member(node, "os", out->os, sizeof(out->os), false) < 0 ||
	    copy_member(node, "architecture", out->architecture, sizeof(out->architecture), false) < 0 ||
	    copy_member(node, "variant", out->variant, sizeof(out->variant), true) < 0)
		return MLB_EINPUT;
	return 0;
}

static int parse_descriptor(const struct doc_node *node, struct image_descriptor *out)
{
	const struct doc_node *size, *platform;
	struct image_reference check;
	char text[16 + IMAGE_DIGEST_MAX];

	memset(out, 0, sizeof(*out));
	if (node->type != DOC_MAP)
		return MLB_EINPUT;
	if (copy_member(node, "mediaType", out->media_type, sizeof(out->media_type), false) < 0 ||
	    copy_member(node, "digest", out->digest, sizeof(out->digest), false) < 0)
		return MLB_EINPUT;
	/* The digest must be a sha256 one, which the reference parser checks. */
	snprintf(text, sizeof(text), "x@%s", out->digest);
	if (image_reference_parse(text, &check) < 0)
		return MLB_EINPUT;
	size = doc_get(node, "size");
	if (!size || size->type != DOC_INT || size->integer < 0)
		return MLB_EINPUT;
	out->size = (uint64_t)size->integer;
	platform = doc_get(node, "platform");
	if (platform) {
		if (parse_platform(platform, &out->platform) < 0)
			return MLB_EINPUT;
		out->has_platform = true;
	}
	return 0;
}

/* The media type without parameters ("; charset=utf-8"). */
static void strip_parameters(const char *text, char *out, size_t size)
{
	size_t len = strcspn(text, "; \t");

	if (len >= size)
		len = 0;
	memcpy(out, text, len);
	out[len] = '\0';
}

static int pick_media_type(const struct doc_node *root, const char *content_type, char *out, size_t size)
{
	const struct doc_node *own = doc_get(root, "mediaType");

	if (own) {
		if (own->type != DOC_STRING || own->text_len >= size)
			return MLB_EINPUT;
		strcpy(out, own->text);
		return 0;
	}
	if (content_type) {
		strip_parameters(content_type, out, size);
		if (is_index_type(out) || is_image_manifest_type(out))
			return 0;
	}
	/* OCI allows mediaType to be left out, so the members decide which it is. */
	if (doc_get(root, "manifests"))
		snprintf(out, size, "%s", IMAGE_MEDIA_OCI_INDEX);
	else if (doc_get(root, "layers"))
		snprintf(out, size, "%s", IMAGE_MEDIA_OCI_MANIFEST);
	else
		return MLB_EINPUT;
	return 0;
}

int image_manifest_parse(const char *data, size_t len, const char *content_type,
			 struct image_manifest *out)
{
	struct doc_node *root = NULL;
	struct doc_error error;
	const struct doc_node *version, *list, *config;
	int r;

	memset(out, 0, sizeof(*out));
	if (len > IMAGE_MANIFEST_MAX)
		return MLB_EINPUT;
	r = doc_parse(data, len, &manifest_limits, &root, &error);
	if (r < 0)
		goto out;
	r = MLB_EINPUT;
	if (root->type != DOC_MAP)
		goto out;
	version = doc_get(root, "schemaVersion");
	if (!version || version->type != DOC_INT || version->integer != 2)
		goto out;
	if (pick_media_type(root, content_type, out->media_type, sizeof(out->media_type)) < 0)
		goto out;

	if (is_index_type(out->media_type)) {
		out->kind = IMAGE_MANIFEST_INDEX;
		list = doc_get(root, "manifests");
		if (doc_get(root, "layers") || doc_get(root, "config"))
			goto out;
	} else if (is_image_manifest_type(out->media_type)) {
		out->kind = IMAGE_MANIFEST_IMAGE;
		list = doc_get(root, "layers");
		config = doc_get(root, "config");
		if (doc_get(root, "manifests") || !config || parse_descriptor(config, &out->config) < 0)
			goto out;
	} else {
		goto out;
	}
	if (!list || list->type != DOC_SEQ || list->count > IMAGE_DESCRIPTORS_MAX)
		goto out;
	if (list->count > 0) {
		out->descriptors = calloc(list->count, sizeof(*out->descriptors));
		if (!out->descriptors) {
			r = -ENOMEM;
			goto out;
		}
	}
	for (size_t i = 0; i < list->count; i++) {
		if (parse_descriptor(list->items[i], &out->descriptors[i]) < 0)
			goto out;
		out->count++;
	}
	r = 0;
out:
	doc_free(root);
	if (r < 0)
		image_manifest_release(out);
	return r;
}

void image_manifest_release(struct image_manifest *manifest)
{
	if (!manifest)
		return;
	free(manifest->descriptors);
	memset(manifest, 0, sizeof(*manifest));
}
