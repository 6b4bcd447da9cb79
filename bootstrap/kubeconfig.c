/*
 * kubeconfig loading with kubectl's rules (client-go tools/clientcmd):
 * the files of $KUBECONFIG are merged in order, and the first file that
 * sets a context, cluster or user of a given name, or current-context,
 * wins. Paths in an entry are relative to the folder of the file that
 * defined the entry. Unknown fields are ignored; known fields of the wrong
 * type are errors, as kubectl's decoder makes them.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

#include "kube_private.h"

#define KUBECONFIG_FILE_MAX (16UL * 1024 * 1024)
#define KUBECONFIG_FILES_MAX 64
#define KUBECONFIG_PEM_MAX (1UL * 1024 * 1024)
#define KUBECONFIG_TOKEN_MAX (64UL * 1024)
#define KUBECONFIG_NAMES_MAX 4096
#define SERVICE_ACCOUNT_DIR "/var/run/secrets/kubernetes.io/serviceaccount"

static void credentials_init(struct kube_credentials *out);

static const struct doc_limits kubeconfig_limits = {
	.max_bytes = KUBECONFIG_FILE_MAX,
	.max_depth = 64,
	.max_nodes = 1000000,
};

struct kubeconfig_file {
	char *path;              /* file name, or data_name for in-memory data */
	bool resolve_relative;   /* false for in-memory data: paths stay as written */
	struct doc_node *root;   /* NULL for an empty file */
};

struct kubeconfig_set {
	struct kubeconfig_file files[KUBECONFIG_FILES_MAX];
	size_t count;
};

/* A named entry of one section, with the file that defined it. */
struct kubeconfig_entry {
	const struct kubeconfig_file *file;
	const struct doc_node *item;     /* the list item: name and body */
	const struct doc_node *body;     /* item["cluster"], item["context"] or item["user"]; may be NULL */
	const char *name;
};

static int config_error(int r, const struct kubeconfig_file *file, unsigned line, const char *format, ...)
	__attribute__((format(printf, 4, 5)));

static int config_error(int r, const struct kubeconfig_file *file, unsigned line, const char *format, ...)
{
	char message[1536];
	va_list args;

	va_start(args, format);
	vsnprintf(message, sizeof(message), format, args);
	va_end(args);
	if (line > 0)
		return kube_fail(r, "kubeconfig '%s' line %u: %s", file->path, line, message);
	return kube_fail(r, "kubeconfig '%s': %s", file->path, message);
}

void kube_doc_wipe(struct doc_node *node)
{
	if (!node)
		return;
	if (node->text)
		secure_wipe(node->text, node->text_len);
	for (size_t i = 0; i < node->count; i++)
		kube_doc_wipe(node->items[i]);
}

static void kubeconfig_set_release(struct kubeconfig_set *set)
{
	for (size_t i = 0; i < set->count; i++) {
		kube_doc_wipe(set->files[i].root);
		doc_free(set->files[i].root);
		free(set->files[i].path);
	}
	set->count = 0;
}

static const char *doc_type_name(enum doc_type type)
{
	switch (type) {
	case DOC_NULL:
		return "null";
	case DOC_BOOL:
		return "a boolean";
	case DOC_INT:
	case DOC_FLOAT:
		return "a number";
	case DOC_STRING:
		return "a string";
	case DOC_MAP:
		return "a map";
	default:
		return "a list";
	}
}

struct field_type {
	const char *name;
	enum doc_type type;
};

static const struct field_type cluster_fields[] = {
	{ "server", DOC_STRING },
	{ "tls-server-name", DOC_STRING },
	{ "insecure-skip-tls-verify", DOC_BOOL },
	{ "certificate-authority", DOC_STRING },
	{ "certificate-authority-data", DOC_STRING },
	{ "proxy-url", DOC_STRING },
	{ "disable-compression", DOC_BOOL },
	{ "extensions", DOC_SEQ },
	{ NULL, DOC_NULL },
};

static const struct field_type context_fields[] = {
	{ "cluster", DOC_STRING },
	{ "user", DOC_STRING },
	{ "namespace", DOC_STRING },
	{ "extensions", DOC_SEQ },
	{ NULL, DOC_NULL },
};

static const struct field_type user_fields[] = {
	{ "client-certificate", DOC_STRING },
	{ "client-certificate-data", DOC_STRING },
	{ "client-key", DOC_STRING },
	{ "client-key-data", DOC_STRING },
	{ "token", DOC_STRING },
	{ "tokenFile", DOC_STRING },
	{ "as", DOC_STRING },
	{ "as-uid", DOC_STRING },
	{ "as-groups", DOC_SEQ },
	{ "as-user-extra", DOC_MAP },
	{ "username", DOC_STRING },
	{ "password", DOC_STRING },
	{ "auth-provider", DOC_MAP },
	{ "exec", DOC_MAP },
	{ "extensions", DOC_SEQ },
	{ NULL, DOC_NULL },
};

static const struct field_type exec_fields[] = {
	{ "command", DOC_STRING },
	{ "args", DOC_SEQ },
	{ "env", DOC_SEQ },
	{ "apiVersion", DOC_STRING },
	{ "installHint", DOC_STRING },
	{ "provideClusterInfo", DOC_BOOL },
	{ "interactiveMode", DOC_STRING },
	{ NULL, DOC_NULL },
};

/* Checks the known fields of a map; null is allowed anywhere, as Go decodes it to the zero value. */
static int check_fields(const struct kubeconfig_file *file, const struct doc_node *map,
			const char *where, const struct field_type *fields)
{
	if (!map || map->type == DOC_NULL)
		return 0;
	if (map->type != DOC_MAP)
		return config_error(MLB_EINPUT, file, map->line, "%s must be a map, not %s",
				    where, doc_type_name(map->type));
	for (const struct field_type *f = fields; f->name; f++) {
		const struct doc_node *value = doc_get(map, f->name);

		if (!value || value->type == DOC_NULL || value->type == f->type)
			continue;
		if (f->type == DOC_STRING)
			return config_error(MLB_EINPUT, file, value->line,
					    "'%s' of %s must be a string, not %s; quote the value",
					    f->name, where, doc_type_name(value->type));
		return config_error(MLB_EINPUT, file, value->line, "'%s' of %s must be %s, not %s",
				    f->name, where, doc_type_name(f->type), doc_type_name(value->type));
	}
	return 0;
}

static int check_exec(const struct kubeconfig_file *file, const struct doc_node *exec, const char *where)
{
	const struct doc_node *args = doc_get(exec, "args");
	const struct doc_node *env = doc_get(exec, "env");
	int r;

	r = check_fields(file, exec, where, exec_fields);
	if (r < 0)
		return r;
	for (size_t i = 0; args && i < args->count; i++)
		if (args->items[i]->type != DOC_STRING)
			return config_error(MLB_EINPUT, file, args->items[i]->line,
					    "each of exec 'args' of %s must be a string; quote the value", where);
	for (size_t i = 0; env && i < env->count; i++) {
		const struct doc_node *item = env->items[i];
		const char *name = doc_get_string(item, "name");

		if (item->type != DOC_MAP || !name || !*name)
			return config_error(MLB_EINPUT, file, item->line,
					    "each of exec 'env' of %s must be a map with a 'name' and a 'value'", where);
		if (doc_get(item, "value") && doc_get(item, "value")->type != DOC_STRING &&
		    doc_get(item, "value")->type != DOC_NULL)
			return config_error(MLB_EINPUT, file, item->line,
					    "exec env '%s' of %s must have a string 'value'; quote the value",
					    name, where);
	}
	return 0;
}

/*
 * Checks one section ("clusters", "contexts", "users"): a list of maps each
 * with a unique name. kubectl rejects a file that names an entry twice.
 */
static int check_section(const struct kubeconfig_file *file, const char *section, const char *body_key,
			 const struct field_type *fields)
{
	const struct doc_node *list = doc_get(file->root, section);

	if (!list || list->type == DOC_NULL)
		return 0;
	if (list->type != DOC_SEQ)
		return config_error(MLB_EINPUT, file, list->line, "'%s' must be a list, not %s",
				    section, doc_type_name(list->type));
	for (size_t i = 0; i < list->count; i++) {
		const struct doc_node *item = list->items[i];
		const struct doc_node *name = doc_get(item, "name");
		char where[320];
		int r;

		if (item->type != DOC_MAP)
			return config_error(MLB_EINPUT, file, item->line, "each item of '%s' must be a map", section);
		if (!name || name->type != DOC_STRING)
			return config_error(MLB_EINPUT, file, item->line,
					    "an item of '%s' has no 'name' string; give each entry a name", section);
		for (size_t j = 0; j < i; j++) {
			const struct doc_node *other = doc_get(list->items[j], "name");

			if (strcmp(other->text, name->text) == 0)
				return config_error(MLB_EINPUT, file, name->line,
						    "%s '%s' is defined twice (first at line %u); remove one",
						    body_key, name->text, other->line);
		}
		snprintf(where, sizeof(where), "%s '%s'", body_key, name->text);
		r = check_fields(file, doc_get(item, body_key), where, fields);
		if (r < 0)
			return r;
		if (strcmp(body_key, "user") == 0) {
			const struct doc_node *exec = doc_get(doc_get(item, body_key), "exec");

			if (exec && exec->type == DOC_MAP) {
				r = check_exec(file, exec, where);
				if (r < 0)
					return r;
			}
		}
	}
	return 0;
}

static int check_file(const struct kubeconfig_file *file)
{
	const struct doc_node *current;
	int r;

	if (!file->root)
		return 0;
	if (file->root->type != DOC_MAP)
		return config_error(MLB_EINPUT, file, file->root->line,
				    "a kubeconfig must be a map with clusters, contexts and users, not %s",
				    doc_type_name(file->root->type));
	current = doc_get(file->root, "current-context");
	if (current && current->type != DOC_STRING && current->type != DOC_NULL)
		return config_error(MLB_EINPUT, file, current->line,
				    "'current-context' must be a string; quote the value");
	r = check_section(file, "clusters", "cluster", cluster_fields);
	if (r == 0)
		r = check_section(file, "contexts", "context", context_fields);
	if (r == 0)
		r = check_section(file, "users", "user", user_fields);
	return r;
}

static int parse_file(struct kubeconfig_file *file, const char *data, size_t len)
{
	struct doc_error err = { 0 };
	struct doc_node *root = NULL;
	int r;

	r = doc_parse(data, len, &kubeconfig_limits, &root, &err);
	if (r < 0) {
		if (r == -ENOMEM)
			return kube_fail(r, "kubeconfig '%s': out of memory", file->path);
		return config_error(MLB_EINPUT, file, err.line, "invalid YAML: %s", err.message);
	}
	if (root->type == DOC_NULL) {
		/* An empty file is an empty configuration, as kubectl reads it. */
		doc_free(root);
		root = NULL;
	}
	file->root = root;
	return check_file(file);
}

/* Adds a file to the set; -ENOENT (with no message) when it does not exist. */
static int add_file(struct kubeconfig_set *set, const char *path)
{
	struct buf text = BUF_INIT(KUBECONFIG_FILE_MAX);
	struct kubeconfig_file *file;
	int r;

	if (set->count >= KUBECONFIG_FILES_MAX)
		return kube_fail(MLB_EINPUT, "more than %d kubeconfig files in KUBECONFIG; merge some of them",
				 KUBECONFIG_FILES_MAX);
	r = file_read_all(path, KUBECONFIG_FILE_MAX, &text);
	if (r == -ENOENT)
		goto out;
	if (r == -EFBIG) {
		r = kube_fail(MLB_EINPUT, "kubeconfig '%s' is larger than %lu MiB", path,
			      KUBECONFIG_FILE_MAX >> 20);
		goto out;
	}
	if (r < 0) {
		r = kube_fail(r, "cannot read kubeconfig '%s': %s", path, strerror(-r));
		goto out;
	}
	file = &set->files[set->count];
	file->path = strdup(path);
	if (!file->path) {
		r = -ENOMEM;
		goto out;
	}
	file->resolve_relative = true;
	set->count++;
	r = parse_file(file, text.data, text.len);
out:
	buf_release_secret(&text);
	return r;
}

/* Splits $KUBECONFIG on ':' and loads each file once, skipping missing ones as kubectl does. */
static int add_kubeconfig_list(struct kubeconfig_set *set, const char *list)
{
	char *copy = strdup(list), *save = NULL;
	char *seen[KUBECONFIG_FILES_MAX];
	size_t seen_count = 0;
	int r = 0;

	if (!copy)
		return -ENOMEM;
	for (char *path = strtok_r(copy, ":", &save); path; path = strtok_r(NULL, ":", &save)) {
		bool duplicate = false;

		for (size_t i = 0; i < seen_count; i++)
			duplicate = duplicate || strcmp(seen[i], path) == 0;
		if (duplicate)
			continue;
		if (seen_count >= ARRAY_SIZE(seen)) {
			r = kube_fail(MLB_EINPUT, "more than %d kubeconfig files in KUBECONFIG; merge some of them",
				      KUBECONFIG_FILES_MAX);
			break;
		}
		seen[seen_count++] = path;
		r = add_file(set, path);
		if (r == -ENOENT) {
			log_debug("kubeconfig '%s' named in KUBECONFIG does not exist; skipped", path);
			r = 0;
		}
		if (r < 0)
			break;
	}
	free(copy);
	return r;
}

/* Finds the first entry of a section with this name, in file order. */
static bool find_entry(const struct kubeconfig_set *set, const char *section, const char *body_key,
		       const char *name, struct kubeconfig_entry *out)
{
	for (size_t i = 0; i < set->count; i++) {
		const struct doc_node *list = doc_get(set->files[i].root, section);

		for (size_t j = 0; list && list->type == DOC_SEQ && j < list->count; j++) {
			const struct doc_node *item = list->items[j];

			if (!doc_string_equals(doc_get(item, "name"), name))
				continue;
			out->file = &set->files[i];
			out->item = item;
			out->body = doc_get(item, body_key);
			out->name = doc_get_string(item, "name");
			return true;
		}
	}
	return false;
}

/* Writes the names of every entry of a section, in merge order, as "'a', 'b'". */
static void list_names(const struct kubeconfig_set *set, const char *section, struct buf *out)
{
	for (size_t i = 0; i < set->count; i++) {
		const struct doc_node *list = doc_get(set->files[i].root, section);

		for (size_t j = 0; list && list->type == DOC_SEQ && j < list->count; j++) {
			const char *name = doc_get_string(list->items[j], "name");
			struct kubeconfig_entry first;

			/* A name defined in an earlier file is listed once. */
			if (!find_entry(set, section, "", name, &first) || first.item != list->items[j])
				continue;
			if (buf_printf(out, "%s'%s'", out->len ? ", " : "", name) < 0)
				return;
		}
	}
	if (out->len == 0)
		buf_append_str(out, "none");
}

static const char *entry_string(const struct kubeconfig_entry *entry, const char *key)
{
	const char *value = doc_get_string(entry->body, key);

	return value && *value ? value : NULL;
}

static unsigned entry_line(const struct kubeconfig_entry *entry, const char *key)
{
	const struct doc_node *value = doc_get(entry->body, key);

	if (value)
		return value->key_line ? value->key_line : value->line;
	return entry->item->line;
}

/* Resolves a path of an entry against the folder of its file. */
static int entry_path(const struct kubeconfig_entry *entry, const char *path, char **out)
{
	if (!entry->file->resolve_relative) {
		*out = strdup(path);
		return *out ? 0 : -ENOMEM;
	}
	return file_resolve_relative(entry->file->path, path, out);
}

static int base64_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

/*
 * Decodes standard base64 with padding, as Go's encoding/json decodes
 * []byte fields; line breaks are skipped. -EINVAL on anything else.
 */
static int base64_decode(const char *text, size_t len, struct buf *out)
{
	unsigned quantum = 0, bits = 0, padding = 0, symbols = 0;
	int r;

	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)text[i];
		int value;

		if (c == '\n' || c == '\r')
			continue;
		if (c == '=') {
			padding++;
			symbols++;
			continue;
		}
		value = base64_value(c);
		if (value < 0 || padding > 0)
			return -EINVAL;
		symbols++;
		quantum = (quantum << 6) | (unsigned)value;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			r = buf_append_char(out, (char)((quantum >> bits) & 0xff));
			if (r < 0)
				return r;
		}
	}
	if (symbols % 4 != 0 || padding > 2)
		return -EINVAL;
	quantum = 0;
	secure_wipe(&quantum, sizeof(quantum));
	return 0;
}

static bool pem_has_certificate(const struct buf *pem)
{
	return pem->len > 0 && memmem(pem->data, pem->len, "-----BEGIN CERTIFICATE-----", 27) != NULL;
}

static bool pem_has_private_key(const struct buf *pem)
{
	return pem->len > 0 && memmem(pem->data, pem->len, "-----BEGIN ", 11) != NULL &&
	       memmem(pem->data, pem->len, "PRIVATE KEY-----", 16) != NULL;
}

/*
 * Loads one PEM value from FIELD-data (base64) or FIELD (a path). Both at
 * once is an error, as kubectl's validation reports it.
 */
static int load_pem(const struct kubeconfig_entry *entry, const char *what, const char *field,
		    bool key, struct buf *out)
{
	char data_field[64];
	const char *data, *path;
	char *resolved = NULL;
	int r;

	snprintf(data_field, sizeof(data_field), "%s-data", field);
	data = entry_string(entry, data_field);
	path = entry_string(entry, field);
	if (data && path)
		return config_error(MLB_EINPUT, entry->file, entry_line(entry, data_field),
				    "%s '%s' sets both '%s' and '%s'; keep one of them",
				    what, entry->name, data_field, field);
	if (data) {
		r = base64_decode(data, strlen(data), out);
		if (r == -EINVAL || r == -E2BIG)
			return config_error(MLB_EINPUT, entry->file, entry_line(entry, data_field),
					    "'%s' of %s '%s' is not valid base64; encode the PEM file with 'base64 -w0'",
					    data_field, what, entry->name);
		if (r < 0)
			return kube_fail(r, "cannot decode '%s' of %s '%s'", data_field, what, entry->name);
	} else if (path) {
		r = entry_path(entry, path, &resolved);
		if (r < 0)
			return kube_fail(r, "cannot resolve '%s' of %s '%s'", field, what, entry->name);
		r = file_read_all(resolved, KUBECONFIG_PEM_MAX, out);
		if (r < 0) {
			r = config_error(r == -EFBIG ? MLB_EINPUT : r, entry->file, entry_line(entry, field),
					 "cannot read '%s' '%s' of %s '%s': %s", field, resolved, what,
					 entry->name, r == -EFBIG ? "larger than 1 MiB" : strerror(-r));
			free(resolved);
			return r;
		}
	} else {
		return 0;
	}
	if (key ? !pem_has_private_key(out) : !pem_has_certificate(out)) {
		r = config_error(MLB_EINPUT, entry->file, entry_line(entry, data ? data_field : field),
				 "'%s' of %s '%s' contains no PEM %s", data ? data_field : field,
				 what, entry->name, key ? "private key" : "certificate");
		free(resolved);
		return r;
	}
	free(resolved);
	return 0;
}

static int check_server(const struct kubeconfig_entry *cluster, const char *server)
{
	CURLU *url = curl_url();
	char *scheme = NULL, *host = NULL;
	int r = MLB_EINPUT;

	if (!url)
		return -ENOMEM;
	if (curl_url_set(url, CURLUPART_URL, server, 0) != CURLUE_OK ||
	    curl_url_get(url, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
	    curl_url_get(url, CURLUPART_HOST, &host, 0) != CURLUE_OK || !*host) {
		r = config_error(MLB_EINPUT, cluster->file, entry_line(cluster, "server"),
				 "server '%s' of cluster '%s' is not a valid URL; write https://HOST:PORT",
				 server, cluster->name);
		goto out;
	}
	if (strcasecmp(scheme, "https") != 0) {
		r = config_error(MLB_EINPUT, cluster->file, entry_line(cluster, "server"),
				 "server '%s' of cluster '%s' is not https; mlboot talks to the API over TLS only",
				 server, cluster->name);
		goto out;
	}
	r = 0;
out:
	curl_free(scheme);
	curl_free(host);
	curl_url_cleanup(url);
	return r;
}

static int check_proxy_url(const struct kubeconfig_entry *cluster, const char *proxy)
{
	CURLU *url = curl_url();
	char *scheme = NULL;
	int r = 0;

	if (!url)
		return -ENOMEM;
	if (curl_url_set(url, CURLUPART_URL, proxy, CURLU_NON_SUPPORT_SCHEME) != CURLUE_OK ||
	    curl_url_get(url, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
	    (strcasecmp(scheme, "http") != 0 && strcasecmp(scheme, "https") != 0 &&
	     strcasecmp(scheme, "socks5") != 0))
		r = config_error(MLB_EINPUT, cluster->file, entry_line(cluster, "proxy-url"),
				 "invalid 'proxy-url' '%s' for cluster '%s'; use an http, https or socks5 URL",
				 proxy, cluster->name);
	curl_free(scheme);
	curl_url_cleanup(url);
	return r;
}

static int dup_optional(const char *value, char **out)
{
	if (!value || !*value)
		return 0;
	*out = strdup(value);
	return *out ? 0 : -ENOMEM;
}

static int load_cluster(const struct kubeconfig_entry *cluster, struct kube_credentials *out)
{
	const struct doc_node *insecure = doc_get(cluster->body, "insecure-skip-tls-verify");
	const char *server = entry_string(cluster, "server");
	const char *proxy = entry_string(cluster, "proxy-url");
	size_t len;
	int r;

	if (!server)
		return config_error(MLB_EINPUT, cluster->file, cluster->item->line,
				    "no server found for cluster '%s'; set its 'server' to https://HOST:PORT",
				    cluster->name);
	r = check_server(cluster, server);
	if (r < 0)
		return r;
	out->server = strdup(server);
	if (!out->server)
		return -ENOMEM;
	len = strlen(out->server);
	while (len > 0 && out->server[len - 1] == '/')
		out->server[--len] = '\0';
	if (proxy) {
		r = check_proxy_url(cluster, proxy);
		if (r < 0)
			return r;
	}
	r = dup_optional(proxy, &out->proxy_url);
	if (r == 0)
		r = dup_optional(entry_string(cluster, "tls-server-name"), &out->tls_server_name);
	if (r < 0)
		return r;
	out->insecure_skip_tls_verify = insecure && insecure->type == DOC_BOOL && insecure->boolean;

	r = load_pem(cluster, "cluster", "certificate-authority", false, &out->ca_pem);
	if (r < 0)
		return r;
	if (out->insecure_skip_tls_verify && out->ca_pem.len > 0)
		return config_error(MLB_EINPUT, cluster->file, entry_line(cluster, "insecure-skip-tls-verify"),
				    "cluster '%s' sets insecure-skip-tls-verify together with a certificate authority; "
				    "remove insecure-skip-tls-verify so that the CA is used (kubectl rejects this too)",
				    cluster->name);
	if (out->insecure_skip_tls_verify)
		log_warning("cluster '%s' in kubeconfig '%s' sets insecure-skip-tls-verify: the API server's "
			    "certificate is NOT verified and anyone on the network path can read the credentials; "
			    "set certificate-authority-data instead", cluster->name, cluster->file->path);
	return 0;
}

static int load_string_list(const struct doc_node *list, char ***out)
{
	size_t count = list ? list->count : 0;
	char **strings = calloc(count + 1, sizeof(*strings));

	if (!strings)
		return -ENOMEM;
	*out = strings;
	for (size_t i = 0; i < count; i++) {
		strings[i] = strdup(list->items[i]->text);
		if (!strings[i])
			return -ENOMEM;
	}
	return 0;
}

static int load_exec_env(const struct doc_node *list, char ***out)
{
	size_t count = list ? list->count : 0;
	char **strings = calloc(count + 1, sizeof(*strings));

	if (!strings)
		return -ENOMEM;
	*out = strings;
	for (size_t i = 0; i < count; i++) {
		const char *value = doc_get_string(list->items[i], "value");

		if (asprintf(&strings[i], "%s=%s", doc_get_string(list->items[i], "name"), value ? value : "") < 0) {
			strings[i] = NULL;
			return -ENOMEM;
		}
	}
	return 0;
}

static int load_exec(const struct kubeconfig_entry *user, const struct doc_node *node, struct kube_credentials *out)
{
	static const char v1[] = "client.authentication.k8s.io/v1";
	static const char v1beta1[] = "client.authentication.k8s.io/v1beta1";
	const char *command = doc_get_string(node, "command");
	const char *api_version = doc_get_string(node, "apiVersion");
	const char *mode = doc_get_string(node, "interactiveMode");
	const struct doc_node *cluster_info = doc_get(node, "provideClusterInfo");
	unsigned line = node->line;
	struct kube_exec *exec;
	int r;

	if (!command || !*command)
		return config_error(MLB_EINPUT, user->file, line,
				    "exec plugin of user '%s' has no 'command'; set the plugin's program", user->name);
	if (!api_version || !*api_version)
		return config_error(MLB_EINPUT, user->file, line,
				    "exec plugin of user '%s' has no 'apiVersion'; set '%s'", user->name, v1);
	if (strcmp(api_version, v1) != 0 && strcmp(api_version, v1beta1) != 0)
		return config_error(MLB_EINPUT, user->file, line,
				    "exec plugin of user '%s' has apiVersion '%s'; mlboot supports '%s' and '%s'",
				    user->name, api_version, v1, v1beta1);
	if (mode && *mode && strcmp(mode, "Never") != 0 && strcmp(mode, "IfAvailable") != 0) {
		if (strcmp(mode, "Always") == 0)
			return config_error(MLB_EINPUT, user->file, line,
					    "exec plugin of user '%s' has interactiveMode 'Always', but mlboot never "
					    "prompts (it runs unattended); use a plugin mode that needs no terminal",
					    user->name);
		return config_error(MLB_EINPUT, user->file, line,
				    "invalid interactiveMode '%s' for user '%s'; use Never or IfAvailable",
				    mode, user->name);
	}
	if ((!mode || !*mode) && strcmp(api_version, v1) == 0)
		return config_error(MLB_EINPUT, user->file, line,
				    "exec plugin of user '%s' has no interactiveMode, which '%s' requires; "
				    "add 'interactiveMode: Never'", user->name, v1);

	exec = calloc(1, sizeof(*exec));
	if (!exec)
		return -ENOMEM;
	out->exec = exec;
	if (strchr(command, '/'))
		r = entry_path(user, command, &exec->command);   /* kubectl resolves only commands with a '/' */
	else
		r = (exec->command = strdup(command)) ? 0 : -ENOMEM;
	if (r == 0)
		r = (exec->api_version = strdup(api_version)) ? 0 : -ENOMEM;
	if (r == 0)
		r = (exec->interactive_mode = strdup(mode && *mode ? mode : "IfAvailable")) ? 0 : -ENOMEM;
	if (r == 0)
		r = dup_optional(doc_get_string(node, "installHint"), &exec->install_hint);
	if (r == 0)
		r = load_string_list(doc_get(node, "args"), &exec->args);
	if (r == 0)
		r = load_exec_env(doc_get(node, "env"), &exec->env);
	exec->provide_cluster_info = cluster_info && cluster_info->type == DOC_BOOL && cluster_info->boolean;
	return r;
}

/* Whether a field has a value: a non-empty string or a non-empty list or map. */
static bool field_is_set(const struct doc_node *value)
{
	if (!value || value->type == DOC_NULL)
		return false;
	if (value->type == DOC_STRING)
		return value->text_len > 0;
	if (value->type == DOC_SEQ || value->type == DOC_MAP)
		return value->count > 0;
	return true;
}

static int reject_unsupported(const struct kubeconfig_entry *user)
{
	static const char *const impersonation[] = { "as", "as-uid", "as-groups", "as-user-extra" };
	const struct doc_node *provider = doc_get(user->body, "auth-provider");

	for (size_t i = 0; i < ARRAY_SIZE(impersonation); i++) {
		const struct doc_node *value = doc_get(user->body, impersonation[i]);

		if (field_is_set(value))
			return config_error(MLB_EINPUT, user->file, entry_line(user, impersonation[i]),
					    "user '%s' sets '%s' (impersonation), which mlboot does not support; "
					    "use a context whose user has the permissions itself",
					    user->name, impersonation[i]);
	}
	if (entry_string(user, "username") || entry_string(user, "password"))
		return config_error(MLB_EINPUT, user->file, entry_line(user, "username"),
				    "user '%s' uses basic authentication (username and password), which Kubernetes "
				    "removed in 1.19; use a client certificate, a token or an exec plugin", user->name);
	if (provider && provider->type == DOC_MAP)
		return config_error(MLB_EINPUT, user->file, entry_line(user, "auth-provider"),
				    "user '%s' uses auth-provider '%s', which mlboot does not support; "
				    "use an exec credential plugin instead", user->name,
				    doc_get_string(provider, "name") ? doc_get_string(provider, "name") : "");
	return 0;
}

static int load_user(const struct kubeconfig_entry *user, struct kube_credentials *out)
{
	const char *token = entry_string(user, "token");
	const char *token_file = entry_string(user, "tokenFile");
	const struct doc_node *exec = doc_get(user->body, "exec");
	bool has_exec = exec && exec->type == DOC_MAP;
	int r;

	r = reject_unsupported(user);
	if (r < 0)
		return r;
	if (token && token_file)
		return config_error(MLB_EINPUT, user->file, entry_line(user, "tokenFile"),
				    "user '%s' sets both 'token' and 'tokenFile'; keep one of them", user->name);
	r = load_pem(user, "user", "client-certificate", false, &out->client_cert_pem);
	if (r == 0)
		r = load_pem(user, "user", "client-key", true, &out->client_key_pem);
	if (r < 0)
		return r;
	if (out->client_cert_pem.len > 0 && out->client_key_pem.len == 0)
		return config_error(MLB_EINPUT, user->file, user->item->line,
				    "user '%s' has a client certificate but no client-key or client-key-data; add the key",
				    user->name);
	if (out->client_key_pem.len > 0 && out->client_cert_pem.len == 0)
		return config_error(MLB_EINPUT, user->file, user->item->line,
				    "user '%s' has a client key but no client-certificate or client-certificate-data; "
				    "add the certificate", user->name);
	if (has_exec && (token || token_file || out->client_cert_pem.len > 0))
		return config_error(MLB_EINPUT, user->file, exec->key_line ? exec->key_line : exec->line,
				    "user '%s' sets an exec plugin together with a %s; keep one of them",
				    user->name, out->client_cert_pem.len > 0 ? "client certificate" : "token");
	if (token) {
		out->token = strdup(token);
		if (!out->token)
			return -ENOMEM;
	}
	if (token_file) {
		r = entry_path(user, token_file, &out->token_file);
		if (r < 0)
			return r;
	}
	if (has_exec)
		return load_exec(user, exec, out);
	return 0;
}

/* Picks the context: --context, else the first current-context of the merge order. */
static int choose_context(const struct kubeconfig_set *set, const char *requested,
			  struct kubeconfig_entry *context)
{
	const struct kubeconfig_file *named_by = NULL;
	const struct doc_node *current = NULL;
	struct buf names = BUF_INIT(KUBECONFIG_NAMES_MAX);
	const char *name = requested;
	int r;

	for (size_t i = 0; !name && i < set->count; i++) {
		const struct doc_node *value = doc_get(set->files[i].root, "current-context");

		if (value && value->type == DOC_STRING && *value->text) {
			current = value;
			named_by = &set->files[i];
			name = value->text;
		}
	}
	if (name && find_entry(set, "contexts", "context", name, context))
		return 0;

	list_names(set, "contexts", &names);
	if (!name)
		r = kube_fail(MLB_EINPUT, "no current-context is set in kubeconfig '%s'%s; pass a context "
			      "(available contexts: %s)", set->files[0].path, set->count > 1 ? " or the files merged with it" : "",
			      buf_str(&names));
	else if (requested)
		r = kube_fail(MLB_EINPUT, "context '%s' not found in kubeconfig '%s'%s; available contexts: %s",
			      name, set->files[0].path, set->count > 1 ? " and the files merged with it" : "",
			      buf_str(&names));
	else
		r = config_error(MLB_EINPUT, named_by, current->line,
				 "current-context '%s' names a context that does not exist; available contexts: %s; "
				 "fix current-context or pass a context", name, buf_str(&names));
	buf_release(&names);
	return r;
}

static int load_set(const struct kubeconfig_set *set, const char *requested, struct kube_credentials *out)
{
	struct kubeconfig_entry context, cluster = { 0 }, user = { 0 };
	const char *cluster_name, *user_name, *namespace;
	int r;

	r = choose_context(set, requested, &context);
	if (r < 0)
		return r;
	if (context.body && context.body->type != DOC_MAP)
		context.body = NULL;
	cluster_name = entry_string(&context, "cluster");
	user_name = entry_string(&context, "user");
	namespace = entry_string(&context, "namespace");
	if (!cluster_name)
		return config_error(MLB_EINPUT, context.file, context.item->line,
				    "context '%s' names no cluster; set its 'cluster'", context.name);
	if (!find_entry(set, "clusters", "cluster", cluster_name, &cluster))
		return config_error(MLB_EINPUT, context.file, entry_line(&context, "cluster"),
				    "cluster '%s' of context '%s' was not found; define it under 'clusters'",
				    cluster_name, context.name);
	if (user_name && !find_entry(set, "users", "user", user_name, &user))
		return config_error(MLB_EINPUT, context.file, entry_line(&context, "user"),
				    "user '%s' of context '%s' was not found; define it under 'users'",
				    user_name, context.name);
	if (cluster.body && cluster.body->type != DOC_MAP)
		cluster.body = NULL;
	if (user.body && user.body->type != DOC_MAP)
		user.body = NULL;

	if (!(out->source = strdup(context.file->path)) || !(out->context_name = strdup(context.name)) ||
	    !(out->cluster_name = strdup(cluster_name)) ||
	    !(out->default_namespace = strdup(namespace ? namespace : "default")))
		return -ENOMEM;
	r = dup_optional(user_name, &out->user_name);
	if (r < 0)
		return r;
	r = load_cluster(&cluster, out);
	if (r < 0)
		return r;
	if (user.item)
		r = load_user(&user, out);
	return r;
}

int kubeconfig_load(const struct kubeconfig_options *options, struct kube_credentials *out)
{
	struct kubeconfig_set *set = calloc(1, sizeof(*set));
	const char *list = getenv("KUBECONFIG");
	char *home_config = NULL;
	int r = -ENOMEM;

	credentials_init(out);
	if (!set)
		return -ENOMEM;
	if (options && options->data) {
		struct kubeconfig_file *file = &set->files[0];

		file->path = strdup(options->data_name ? options->data_name : "(in memory)");
		if (!file->path) {
			r = -ENOMEM;
			goto out;
		}
		set->count = 1;
		r = parse_file(file, options->data, options->data_len);
	} else if (options && options->path) {
		r = add_file(set, options->path);
		if (r == -ENOENT)
			r = kube_fail(MLB_EINPUT, "kubeconfig '%s' does not exist; check the path", options->path);
	} else if (list && *list) {
		r = add_kubeconfig_list(set, list);
	} else {
		r = file_expand_path("~/.kube/config", &home_config);
		if (r == 0) {
			r = add_file(set, home_config);
			if (r == -ENOENT)
				r = 0;
		} else if (r == -ENOENT) {
			r = 0;
		}
	}
	if (r < 0)
		goto out;

	if (set->count == 0) {
		/* As kubectl does, an empty loading result falls back to the pod's service account. */
		if (getenv("KUBERNETES_SERVICE_HOST") && !(options && options->context)) {
			r = kubeconfig_in_cluster(SERVICE_ACCOUNT_DIR, out);
			goto out;
		}
		r = kube_fail(MLB_EINPUT, "no kubeconfig found (%s%s); pass a kubeconfig path or set KUBECONFIG",
			      list && *list ? "none of the files in KUBECONFIG exists: " : "looked for ",
			      list && *list ? list : home_config ? home_config : "~/.kube/config");
		goto out;
	}
	r = load_set(set, options ? options->context : NULL, out);
out:
	kubeconfig_set_release(set);
	free(set);
	free(home_config);
	if (r < 0)
		kube_credentials_release(out);
	return r;
}

int kube_token_file_read(const char *path, char **out)
{
	struct buf text = BUF_INIT(KUBECONFIG_TOKEN_MAX);
	int r;

	*out = NULL;
	r = file_read_all(path, KUBECONFIG_TOKEN_MAX, &text);
	if (r < 0) {
		r = kube_fail(r == -EFBIG ? MLB_EINPUT : r, "cannot read token file '%s': %s", path,
			      r == -EFBIG ? "larger than 64 KiB" : strerror(-r));
		goto out;
	}
	while (text.len > 0 && strchr(" \t\r\n", text.data[text.len - 1]))
		text.data[--text.len] = '\0';
	if (text.len == 0 || memchr(text.data, '\n', text.len)) {
		r = kube_fail(MLB_EINPUT, "token file '%s' is %s; it must hold one bearer token", path,
			      text.len == 0 ? "empty" : "more than one line");
		goto out;
	}
	*out = strdup(text.data);
	r = *out ? 0 : -ENOMEM;
out:
	buf_release_secret(&text);
	return r;
}

static int read_service_account_file(const char *dir, const char *name, size_t max, struct buf *out)
{
	char *path = NULL;
	int r;

	if (asprintf(&path, "%s/%s", dir, name) < 0)
		return -ENOMEM;
	r = file_read_all(path, max, out);
	if (r < 0 && r != -ENOENT)
		r = kube_fail(r, "cannot read service account file '%s': %s", path, strerror(-r));
	free(path);
	return r;
}

int kubeconfig_in_cluster(const char *service_account_dir, struct kube_credentials *out)
{
	const char *host = getenv("KUBERNETES_SERVICE_HOST");
	const char *port = getenv("KUBERNETES_SERVICE_PORT");
	struct buf namespace = BUF_INIT(256);
	char *token = NULL;
	int r;

	credentials_init(out);
	if (!host || !*host || !port || !*port) {
		r = kube_fail(MLB_EINPUT, "KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT must both be set "
			      "to use the in-cluster service account; outside a pod, pass a kubeconfig");
		goto out;
	}
	if (strspn(port, "0123456789") != strlen(port) || strlen(port) > 5 ||
	    strpbrk(host, "/?#@ ") != NULL) {
		r = kube_fail(MLB_EINPUT, "invalid KUBERNETES_SERVICE_HOST '%s' or KUBERNETES_SERVICE_PORT '%s'",
			      host, port);
		goto out;
	}
	r = -ENOMEM;
	if (asprintf(&out->server, strchr(host, ':') ? "https://[%s]:%s" : "https://%s:%s", host, port) < 0) {
		out->server = NULL;
		goto out;
	}
	if (asprintf(&out->token_file, "%s/token", service_account_dir) < 0) {
		out->token_file = NULL;
		goto out;
	}
	if (!(out->source = strdup(service_account_dir)) || !(out->context_name = strdup("in-cluster")) ||
	    !(out->cluster_name = strdup("in-cluster")) || !(out->user_name = strdup("service-account")))
		goto out;

	/* Read the token now so that a missing mount fails here, not at the first request. */
	r = kube_token_file_read(out->token_file, &token);
	if (r < 0)
		goto out;
	r = read_service_account_file(service_account_dir, "ca.crt", KUBECONFIG_PEM_MAX, &out->ca_pem);
	if (r == -ENOENT)
		r = kube_fail(MLB_EINPUT, "service account folder '%s' has no ca.crt; mount the service "
			      "account token volume", service_account_dir);
	if (r < 0)
		goto out;
	if (!pem_has_certificate(&out->ca_pem)) {
		r = kube_fail(MLB_EINPUT, "'%s/ca.crt' contains no PEM certificate", service_account_dir);
		goto out;
	}
	r = read_service_account_file(service_account_dir, "namespace", 253, &namespace);
	if (r < 0 && r != -ENOENT)
		goto out;
	while (namespace.len > 0 && strchr(" \t\r\n", namespace.data[namespace.len - 1]))
		namespace.data[--namespace.len] = '\0';
	out->default_namespace = strdup(namespace.len ? namespace.data : "default");
	r = out->default_namespace ? 0 : -ENOMEM;
out:
	secret_free(token);
	buf_release(&namespace);
	if (r < 0)
		kube_credentials_release(out);
	return r;
}

/* Clears credentials and sets the maximum size of their PEM buffers. */
static void credentials_init(struct kube_credentials *out)
{
	memset(out, 0, sizeof(*out));
	buf_init(&out->ca_pem, KUBECONFIG_PEM_MAX);
	buf_init(&out->client_cert_pem, KUBECONFIG_PEM_MAX);
	buf_init(&out->client_key_pem, KUBECONFIG_PEM_MAX);
}

static void string_list_free(char **list, bool secret)
{
	for (size_t i = 0; list && list[i]; i++) {
		if (secret)
			secret_free(list[i]);
		else
			free(list[i]);
	}
	free(list);
}

void kube_credentials_release(struct kube_credentials *credentials)
{
	if (!credentials)
		return;
	free(credentials->source);
	free(credentials->context_name);
	free(credentials->cluster_name);
	free(credentials->user_name);
	free(credentials->server);
	free(credentials->tls_server_name);
	free(credentials->proxy_url);
	buf_release(&credentials->ca_pem);
	buf_release(&credentials->client_cert_pem);
	buf_release_secret(&credentials->client_key_pem);
	secret_free(credentials->token);
	free(credentials->token_file);
	if (credentials->exec) {
		free(credentials->exec->command);
		string_list_free(credentials->exec->args, false);
		/* Plugin environments often carry credentials of their own. */
		string_list_free(credentials->exec->env, true);
		free(credentials->exec->api_version);
		free(credentials->exec->interactive_mode);
		free(credentials->exec->install_hint);
		free(credentials->exec);
	}
	free(credentials->default_namespace);
	memset(credentials, 0, sizeof(*credentials));
}
