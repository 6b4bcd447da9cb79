/*
 * Registry authentication inputs: WWW-Authenticate challenges (RFC 7235,
 * with the Bearer parameters of the distribution token specification),
 * docker config.json credentials, and --registry-mirror values.
 */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>

#include "images.h"
#include "images-internal.h"

#define CHALLENGE_MAX 8192
#define DOCKER_CONFIG_MAX (1u * 1024 * 1024)

static bool is_token_char(char c)
{
	/* RFC 7230 tchar */
	return isalnum((unsigned char)c) || (c && strchr("!#$%&'*+-.^_`|~", c));
}

static const char *skip_spaces(const char *p)
{
	while (*p == ' ' || *p == '\t')
		p++;
	return p;
}

/* Reads a token or quoted-string value into out; returns the position after it, or NULL. */
static const char *read_value(const char *p, char *out, size_t size)
{
	size_t len = 0;

	if (*p == '"') {
		for (p++; *p != '"'; p++) {
			if (*p == '\0')
				return NULL;
			if (*p == '\\') {
				p++;
				if (*p == '\0')
					return NULL;
			}
			if ((unsigned char)*p < 0x20 && *p != '\t')
				return NULL;
			if (len + 1 >= size)
				return NULL;
			out[len++] = *p;
		}
		out[len] = '\0';
		return p + 1;
	}
	while (is_token_char(*p)) {
		if (len + 1 >= size)
			return NULL;
		out[len++] = *p++;
	}
	if (len == 0)
		return NULL;
	out[len] = '\0';
	return p;
}

int image_challenge_parse(const char *header, struct image_challenge *out)
{
	const char *p, *start;
	char name[64], value[IMAGE_CHALLENGE_FIELD_MAX];
	size_t len;

	memset(out, 0, sizeof(*out));
	if (!header || strnlen(header, CHALLENGE_MAX + 1) > CHALLENGE_MAX)
		return MLB_EINPUT;
	p = skip_spaces(header);
	start = p;
	while (is_token_char(*p))
		p++;
	len = (size_t)(p - start);
	if (len == 0 || len >= sizeof(out->scheme))
		goto invalid;
	memcpy(out->scheme, start, len);
	if (strcasecmp(out->scheme, "bearer") == 0)
		strcpy(out->scheme, "Bearer");
	else if (strcasecmp(out->scheme, "basic") == 0)
		strcpy(out->scheme, "Basic");

	for (;;) {
		const char *param;

		p = skip_spaces(p);
		while (*p == ',')
			p = skip_spaces(p + 1);
		if (*p == '\0')
			break;
		param = p;
		while (is_token_char(*p))
			p++;
		len = (size_t)(p - param);
		if (len == 0 || len >= sizeof(name))
			goto invalid;
		memcpy(name, param, len);
		name[len] = '\0';
		p = skip_spaces(p);
		if (*p != '=') {
			/* A token without "=" starts the next challenge (or is a token68): stop here. */
			break;
		}
		p = skip_spaces(p + 1);
		p = read_value(p, value, sizeof(value));
		if (!p)
			goto invalid;
		if (strcasecmp(name, "realm") == 0)
			strcpy(out->realm, value);
		else if (strcasecmp(name, "service") == 0)
			strcpy(out->service, value);
		else if (strcasecmp(name, "scope") == 0)
			strcpy(out->scope, value);
		else if (strcasecmp(name, "error") == 0 && strlen(value) < sizeof(out->error))
			memcpy(out->error, value, strlen(value) + 1);
		p = skip_spaces(p);
		if (*p != ',' && *p != '\0')
			goto invalid;
	}
	if (strcmp(out->scheme, "Bearer") == 0 && !out->realm[0])
		goto invalid;
	return 0;
invalid:
	memset(out, 0, sizeof(*out));
	return MLB_EINPUT;
}

int images_base64_decode(const char *text, size_t len, char **out, size_t *out_len)
{
	unsigned char *decoded;
	int n;
	size_t padding = 0;

	*out = NULL;
	if (len == 0 || len % 4 != 0 || len > DOCKER_CONFIG_MAX)
		return MLB_EINPUT;
	for (size_t i = 0; i < len; i++)
		if (!isalnum((unsigned char)text[i]) && text[i] != '+' && text[i] != '/' &&
		    !(text[i] == '=' && i >= len - 2))
			return MLB_EINPUT;
	if (text[len - 1] == '=')
		padding++;
	if (text[len - 2] == '=')
		padding++;
	decoded = malloc(len / 4 * 3 + 1);
	if (!decoded)
		return -ENOMEM;
	n = EVP_DecodeBlock(decoded, (const unsigned char *)text, (int)len);
	if (n < 0 || (size_t)n < padding) {
		secure_wipe(decoded, len / 4 * 3 + 1);
		free(decoded);
		return MLB_EINPUT;
	}
	n -= (int)padding;
	decoded[n] = '\0';
	*out = (char *)decoded;
	*out_len = (size_t)n;
	return 0;
}

/*
 * The registry host an "auths" key names: "https://index.docker.io/v1/"
 * is index.docker.io, "quay.io" is quay.io.
 */
static void auths_key_host(const char *key, char *out, size_t size)
{
	const char *start = strstr(key, "://");
	size_t len;

	start = start ? start + 3 : key;
	len = strcspn(start, "/");
	if (len >= size)
		len = 0;
	memcpy(out, start, len);
	out[len] = '\0';
}

static bool registry_matches(const char *host, const char *registry)
{
	static const char *const docker_hosts[] = { "docker.io", "index.docker.io", "registry-1.docker.io" };

	if (strcasecmp(host, registry) == 0)
		return true;
	if (strcmp(registry, IMAGE_DEFAULT_REGISTRY) != 0 && strcmp(registry, "registry-1.docker.io") != 0)
		return false;
	for (size_t i = 0; i < ARRAY_SIZE(docker_hosts); i++)
		if (strcasecmp(host, docker_hosts[i]) == 0)
			return true;
	return false;
}

static int entry_credentials(const struct doc_node *entry, char **username, char **password)
{
	const char *auth = doc_get_string(entry, "auth");
	char *decoded = NULL, *colon;
	size_t len;
	int r;

	if (auth && *auth) {
		r = images_base64_decode(auth, strlen(auth), &decoded, &len);
		if (r < 0)
			return r;
		colon = strchr(decoded, ':');
		if (!colon || strlen(decoded) != len) {
			secret_free(decoded);
			return MLB_EINPUT;
		}
		*colon = '\0';
		*username = strdup(decoded);
		*password = strdup(colon + 1);
		secret_free(decoded);
	} else {
		const char *user = doc_get_string(entry, "username");
		const char *pass = doc_get_string(entry, "password");

		if (!user || !pass)
			return -ENOENT;
		*username = strdup(user);
		*password = strdup(pass);
	}
	if (!*username || !*password) {
		secret_free(*username);
		secret_free(*password);
		*username = *password = NULL;
		return -ENOMEM;
	}
	return 0;
}

/* Overwrites every scalar's text, so the parsed tree leaves no password in freed memory. */
static void wipe_tree(struct doc_node *node)
{
	if (!node)
		return;
	if (node->text)
		secure_wipe(node->text, node->text_len);
	for (size_t i = 0; i < node->count; i++)
		wipe_tree(node->items[i]);
}

int image_docker_config_lookup(const char *json, size_t len, const char *registry,
			       char **username, char **password)
{
	static const struct doc_limits limits = { DOCKER_CONFIG_MAX, 16, 100000 };
	struct doc_node *root = NULL;
	struct doc_error error;
	const struct doc_node *auths;
	int r;

	*username = *password = NULL;
	r = doc_parse(json, len, &limits, &root, &error);
	if (r < 0)
		goto out;
	r = MLB_EINPUT;
	if (root->type != DOC_MAP)
		goto out;
	auths = doc_get(root, "auths");
	r = -ENOENT;
	if (!auths)
		goto out;
	r = MLB_EINPUT;
	if (auths->type != DOC_MAP)
		goto out;
	r = -ENOENT;
	for (size_t i = 0; i < auths->count; i++) {
		char host[IMAGE_REGISTRY_MAX + 1];

		auths_key_host(auths->items[i]->key, host, sizeof(host));
		if (!host[0] || !registry_matches(host, registry))
			continue;
		if (auths->items[i]->type != DOC_MAP) {
			r = MLB_EINPUT;
			goto out;
		}
		r = entry_credentials(auths->items[i], username, password);
		if (r != -ENOENT)
			goto out;
	}
out:
	wipe_tree(root);
	doc_free(root);
	return r;
}

int image_mirror_parse(const char *text, struct image_mirror *out)
{
	struct image_reference check;
	const char *equals = strchr(text, '=');
	char probe[IMAGE_REGISTRY_MAX + 16];
	size_t source_len;

	memset(out, 0, sizeof(*out));
	if (!equals)
		return MLB_EINPUT;
	source_len = (size_t)(equals - text);
	if (source_len == 0 || source_len > IMAGE_REGISTRY_MAX || strlen(equals + 1) == 0 ||
	    strlen(equals + 1) > IMAGE_REGISTRY_MAX)
		return MLB_EINPUT;
	memcpy(out->source, text, source_len);
	strcpy(out->mirror, equals + 1);
	/* Each side must be a registry host as a reference would name it. */
	for (int side = 0; side < 2; side++) {
		const char *host = side ? out->mirror : out->source;

		snprintf(probe, sizeof(probe), "%s/x", host);
		if (strchr(host, '/') || image_reference_parse(probe, &check) < 0 ||
		    (strcmp(check.registry, host) != 0 &&
		     !(strcmp(host, "index.docker.io") == 0 && strcmp(check.registry, IMAGE_DEFAULT_REGISTRY) == 0))) {
			memset(out, 0, sizeof(*out));
			return MLB_EINPUT;
		}
	}
	if (strcmp(out->source, "index.docker.io") == 0)
		strcpy(out->source, IMAGE_DEFAULT_REGISTRY);
	return 0;
}
