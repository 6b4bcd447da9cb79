/*
 * Image references, parsed and normalised by the grammar of
 * distribution/reference (reference.go, normalize.go), which Docker,
 * containerd and the kubelet share.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "images.h"

/* Input longer than this cannot be a valid reference. */
#define REFERENCE_TEXT_MAX (IMAGE_REFERENCE_MAX + 16)

static bool is_lower_alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static bool is_alnum(char c)
{
	return is_lower_alnum(c) || (c >= 'A' && c <= 'Z');
}

/*
 * A path component: [a-z0-9]+ separated by ".", "_", "__" or any number
 * of "-".
 */
static bool component_is_valid(const char *text, size_t len)
{
	size_t i = 0;

	if (len == 0 || !is_lower_alnum(text[0]) || !is_lower_alnum(text[len - 1]))
		return false;
	while (i < len) {
		if (is_lower_alnum(text[i])) {
			i++;
			continue;
		}
		if (text[i] == '.') {
			i++;
		} else if (text[i] == '_') {
			i++;
			if (i < len && text[i] == '_')
				i++;
		} else if (text[i] == '-') {
			while (i < len && text[i] == '-')
				i++;
		} else {
			return false;
		}
		if (i >= len || !is_lower_alnum(text[i]))
			return false;
	}
	return true;
}

static bool path_is_valid(const char *text, size_t len)
{
	size_t start = 0;

	for (size_t i = 0; i <= len; i++) {
		if (i == len || text[i] == '/') {
			if (!component_is_valid(text + start, i - start))
				return false;
			start = i + 1;
		}
	}
	return true;
}

/* A host name of DNS labels (letters of both cases), with an optional :PORT. */
static bool domain_is_valid(const char *text, size_t len)
{
	const char *colon = memchr(text, ':', len);
	size_t host_len = colon ? (size_t)(colon - text) : len;
	size_t label_start = 0;

	if (host_len == 0)
		return false;
	for (size_t i = 0; i <= host_len; i++) {
		if (i < host_len && text[i] != '.') {
			if (!is_alnum(text[i]) && text[i] != '-')
				return false;
			continue;
		}
		if (i == label_start || text[label_start] == '-' || text[i - 1] == '-')
			return false;
		label_start = i + 1;
	}
	if (colon) {
		const char *port = colon + 1;
		size_t port_len = len - host_len - 1;
		unsigned long value = 0;

		if (port_len == 0 || port_len > 5)
			return false;
		for (size_t i = 0; i < port_len; i++) {
			if (!isdigit((unsigned char)port[i]))
				return false;
			value = value * 10 + (unsigned long)(port[i] - '0');
		}
		if (value == 0 || value > 65535)
			return false;
	}
	return true;
}

/* A tag: [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}. */
static bool tag_is_valid(const char *text, size_t len)
{
	if (len == 0 || len > IMAGE_TAG_MAX)
		return false;
	if (!is_alnum(text[0]) && text[0] != '_')
		return false;
	for (size_t i = 1; i < len; i++)
		if (!is_alnum(text[i]) && text[i] != '_' && text[i] != '.' && text[i] != '-')
			return false;
	return true;
}

static bool digest_is_valid(const char *text, size_t len)
{
	char hex[SHA256_HEX_LEN + 1];

	if (len != IMAGE_DIGEST_MAX || strncmp(text, "sha256:", 7) != 0)
		return false;
	memcpy(hex, text + 7, SHA256_HEX_LEN);
	hex[SHA256_HEX_LEN] = '\0';
	return sha256_is_hex(hex);
}

/* Whether the first component of a name is a registry host, by Docker's rule. */
static bool first_component_is_domain(const char *text, size_t len)
{
	if (len == 9 && memcmp(text, "localhost", 9) == 0)
		return true;
	for (size_t i = 0; i < len; i++)
		if (text[i] == '.' || text[i] == ':' || (text[i] >= 'A' && text[i] <= 'Z'))
			return true;
	return false;
}

static int copy_text(char *out, size_t size, const char *text, size_t len)
{
	if (len >= size)
		return MLB_EINPUT;
	memcpy(out, text, len);
	out[len] = '\0';
	return 0;
}

int image_reference_parse(const char *text, struct image_reference *out)
{
	const char *at, *name_end, *slash, *last_slash, *colon;
	const char *path;
	size_t text_len, name_len, path_len, domain_len;
	int r = MLB_EINPUT;

	memset(out, 0, sizeof(*out));
	if (!text)
		goto out;
	text_len = strnlen(text, REFERENCE_TEXT_MAX + 1);
	if (text_len == 0 || text_len > REFERENCE_TEXT_MAX)
		goto out;

	at = memchr(text, '@', text_len);
	name_end = at ? at : text + text_len;
	if (at) {
		if (!digest_is_valid(at + 1, text_len - (size_t)(at + 1 - text)))
			goto out;
		memcpy(out->digest, at + 1, IMAGE_DIGEST_MAX);
		out->digest[IMAGE_DIGEST_MAX] = '\0';
	}

	/* A tag is a ":" after the last "/", so "host:5000/name" has none. */
	last_slash = NULL;
	for (const char *p = text; p < name_end; p++)
		if (*p == '/')
			last_slash = p;
	colon = memchr(last_slash ? last_slash : text, ':', (size_t)(name_end - (last_slash ? last_slash : text)));
	if (colon) {
		if (!tag_is_valid(colon + 1, (size_t)(name_end - colon - 1)))
			goto out;
		if (copy_text(out->tag, sizeof(out->tag), colon + 1, (size_t)(name_end - colon - 1)) < 0)
			goto out;
		name_end = colon;
	}
	name_len = (size_t)(name_end - text);
	if (name_len == 0)
		goto out;

	slash = memchr(text, '/', name_len);
	if (slash && first_component_is_domain(text, (size_t)(slash - text))) {
		domain_len = (size_t)(slash - text);
		if (!domain_is_valid(text, domain_len))
			goto out;
		if (domain_len == 15 && memcmp(text, "index.docker.io", 15) == 0) {
			strcpy(out->registry, IMAGE_DEFAULT_REGISTRY);
		} else if (copy_text(out->registry, sizeof(out->registry), text, domain_len) < 0) {
			goto out;
		}
		path = slash + 1;
		path_len = name_len - domain_len - 1;
	} else {
		strcpy(out->registry, IMAGE_DEFAULT_REGISTRY);
		path = text;
		path_len = name_len;
	}
	if (!path_is_valid(path, path_len))
		goto out;

	if (strcmp(out->registry, IMAGE_DEFAULT_REGISTRY) == 0 && !memchr(path, '/', path_len)) {
		if (path_len + 8 > IMAGE_NAME_MAX)
			goto out;
		memcpy(out->repository, "library/", 8);
		memcpy(out->repository + 8, path, path_len);
		out->repository[path_len + 8] = '\0';
	} else if (copy_text(out->repository, sizeof(out->repository), path, path_len) < 0) {
		goto out;
	}
	if (strlen(out->registry) + 1 + strlen(out->repository) > IMAGE_NAME_MAX)
		goto out;

	if (!out->tag[0] && !out->digest[0])
		strcpy(out->tag, IMAGE_DEFAULT_TAG);
	r = 0;
out:
	if (r < 0)
		memset(out, 0, sizeof(*out));
	return r;
}

int image_reference_name(const struct image_reference *ref, char *out, size_t size)
{
	int n = snprintf(out, size, "%s/%s", ref->registry, ref->repository);

	return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

int image_reference_format(const struct image_reference *ref, char *out, size_t size)
{
	int n = snprintf(out, size, "%s/%s%s%s%s%s", ref->registry, ref->repository,
			 ref->tag[0] ? ":" : "", ref->tag, ref->digest[0] ? "@" : "", ref->digest);

	return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

bool image_reference_is_fully_qualified(const char *text)
{
	struct image_reference ref;
	const char *slash, *last_slash;

	if (!text || image_reference_parse(text, &ref) < 0)
		return false;
	slash = strchr(text, '/');
	if (!slash || !first_component_is_domain(text, (size_t)(slash - text)))
		return false;
	if (strchr(text, '@'))
		return true;
	last_slash = strrchr(text, '/');
	return strchr(last_slash, ':') != NULL;
}

const char *image_registry_api_host(const char *registry)
{
	if (strcmp(registry, IMAGE_DEFAULT_REGISTRY) == 0)
		return "registry-1.docker.io";
	return registry;
}
