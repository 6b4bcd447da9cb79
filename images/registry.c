/*
 * The OCI distribution client (distribution-spec v1.0 pull, and the token
 * authentication of distribution's docs/spec/auth/token.md) over libcurl.
 *
 * Redirects are followed here, not by libcurl, so that an Authorization
 * header is only ever sent to the host that asked for it: blob storage on
 * another host gets the redirect URL alone, which carries its own
 * signature.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <openssl/evp.h>

#include "images.h"
#include "images-internal.h"

#define URL_MAX 4096
#define HEADER_VALUE_MAX 4096
#define TOKEN_RESPONSE_MAX (1u * 1024 * 1024)
#define TOKEN_MAX (64u * 1024)
#define TOKEN_CACHE_SIZE 32
#define REDIRECTS_MAX 5
#define DEFAULT_RETRIES 4
#define DEFAULT_TIMEOUT 60
#define BACKOFF_FIRST_MS 500
#define BACKOFF_MAX_MS 8000
#define RETRY_AFTER_MAX_S 60
#define DOCKER_CONFIG_MAX (1u * 1024 * 1024)
#define CONFIG_BLOB_MAX (8u * 1024 * 1024)

static const char manifest_accept[] =
	"Accept: " IMAGE_MEDIA_OCI_INDEX ", " IMAGE_MEDIA_OCI_MANIFEST ", " IMAGE_MEDIA_DOCKER_LIST ", "
	IMAGE_MEDIA_DOCKER_MANIFEST;

/* A token for pulling from one repository of one host. */
struct token_entry {
	char host[IMAGE_REGISTRY_MAX + 1];
	char repository[IMAGE_NAME_MAX + 1];
	char *header;   /* "Authorization: Bearer ..." or "Authorization: Basic ..." */
};

struct registry_client {
	struct registry_options options;
	struct image_mirror *mirrors;
	struct image_platform *platforms;
	char *ca_file;
	struct buf docker_config;     /* config.json text; secret */
	CURL *curl;
	struct token_entry tokens[TOKEN_CACHE_SIZE];
	size_t next_token;
	struct registry_stats stats;
};

/* The destination of a response body: memory (bounded) or a blob writer. */
struct sink {
	struct buf *memory;
	struct layout_blob_writer *blob;
	int error;
};

struct response {
	long status;
	char content_type[IMAGE_MEDIA_TYPE_MAX + 1];
	char digest[IMAGE_DIGEST_MAX + 8];
	char location[URL_MAX];
	char authenticate[HEADER_VALUE_MAX];
	long retry_after;
	uint64_t content_length;
};

struct request {
	const char *method;           /* "GET" or "HEAD" */
	const char *accept;           /* a full "Accept: ..." header line, or NULL */
	const char *host;             /* registry host the repository lives on */
	const char *repository;
	bool allow_auth;              /* false for token requests (they carry their own) */
	const char *basic_header;     /* for token requests: credentials for the realm */
	struct sink sink;
	const char *progress_label;
};

struct progress {
	const char *label;
	time_t last;
};

/* --- Client ---------------------------------------------------------------- */

static int read_docker_config(struct registry_client *client)
{
	const char *explicit_path = client->options.docker_config;
	char *path = NULL;
	const char *folder = getenv("DOCKER_CONFIG");
	int r;

	if (explicit_path)
		path = strdup(explicit_path);
	else if (folder && *folder && asprintf(&path, "%s/config.json", folder) < 0)
		path = NULL;
	else if (!(folder && *folder) && file_expand_path("~/.docker/config.json", &path) < 0)
		path = NULL;
	if (!path)
		return -ENOMEM;
	r = file_read_all(path, DOCKER_CONFIG_MAX, &client->docker_config);
	if (r == -ENOENT && !explicit_path) {
		log_debug("no docker config '%s': pulling anonymously unless a registry asks for a token", path);
		r = 0;
	} else if (r < 0) {
		log_debug("failed to read the docker config '%s': %s", path, mlb_strerror(r));
		r = r == -EFBIG ? MLB_EINPUT : r;
	} else if (strstr(buf_str(&client->docker_config), "\"credsStore\"") ||
		   strstr(buf_str(&client->docker_config), "\"credHelpers\"")) {
		log_debug("'%s' names credential helpers, which mlboot does not run: only its \"auths\" are used", path);
	}
	free(path);
	return r;
}

int registry_client_new(const struct registry_options *options, struct registry_client **out)
{
	struct registry_client *client;
	int r;

	*out = NULL;
	if (!options->platforms || options->platform_count == 0 || options->platform_count > IMAGE_PLATFORMS_MAX ||
	    options->mirror_count > IMAGE_MIRRORS_MAX)
		return -EINVAL;
	client = calloc(1, sizeof(*client));
	if (!client)
		return -ENOMEM;
	buf_init(&client->docker_config, DOCKER_CONFIG_MAX);
	client->options = *options;
	client->platforms = calloc(options->platform_count, sizeof(*client->platforms));
	client->mirrors = calloc(options->mirror_count + 1, sizeof(*client->mirrors));
	if (options->ca_file)
		client->ca_file = strdup(options->ca_file);
	if (!client->platforms || !client->mirrors || (options->ca_file && !client->ca_file)) {
		r = -ENOMEM;
		goto out;
	}
	memcpy(client->platforms, options->platforms, options->platform_count * sizeof(*client->platforms));
	if (options->mirror_count)
		memcpy(client->mirrors, options->mirrors, options->mirror_count * sizeof(*client->mirrors));
	client->options.platforms = client->platforms;
	client->options.mirrors = client->mirrors;
	client->options.ca_file = client->ca_file;
	client->options.docker_config = NULL;
	if (client->options.retries == 0)
		client->options.retries = DEFAULT_RETRIES;
	if (client->options.timeout <= 0)
		client->options.timeout = DEFAULT_TIMEOUT;
	client->options.docker_config = options->docker_config;
	r = read_docker_config(client);
	client->options.docker_config = NULL;
	if (r < 0)
		goto out;
	client->curl = curl_easy_init();
	if (!client->curl) {
		r = -ENOMEM;
		goto out;
	}
	*out = client;
	client = NULL;
	r = 0;
out:
	registry_client_free(client);
	return r;
}

void registry_client_free(struct registry_client *client)
{
	if (!client)
		return;
	for (size_t i = 0; i < TOKEN_CACHE_SIZE; i++)
		secret_free(client->tokens[i].header);
	buf_release_secret(&client->docker_config);
	if (client->curl)
		curl_easy_cleanup(client->curl);
	free(client->platforms);
	free(client->mirrors);
	free(client->ca_file);
	free(client);
}

const struct registry_stats *registry_client_stats(const struct registry_client *client)
{
	return &client->stats;
}

static struct token_entry *token_find(struct registry_client *client, const char *host, const char *repository)
{
	for (size_t i = 0; i < TOKEN_CACHE_SIZE; i++) {
		struct token_entry *t = &client->tokens[i];

		if (t->header && strcmp(t->host, host) == 0 && strcmp(t->repository, repository) == 0)
			return t;
	}
	return NULL;
}

/* Stores a header (taking ownership) for host and repository. */
static void token_store(struct registry_client *client, const char *host, const char *repository, char *header)
{
	struct token_entry *t = token_find(client, host, repository);

	if (!t) {
		t = &client->tokens[client->next_token];
		client->next_token = (client->next_token + 1) % TOKEN_CACHE_SIZE;
	}
	secret_free(t->header);
	snprintf(t->host, sizeof(t->host), "%s", host);
	snprintf(t->repository, sizeof(t->repository), "%s", repository);
	t->header = header;
}

/* --- HTTP -------------------------------------------------------------------- */

static size_t write_body(char *data, size_t size, size_t count, void *context)
{
	struct sink *sink = context;
	size_t len = size * count;
	int r = 0;

	if (sink->memory)
		r = buf_append(sink->memory, data, len);
	else if (sink->blob)
		r = layout_blob_write(sink->blob, data, len);
	if (r < 0) {
		sink->error = r;
		return 0;
	}
	return len;
}

/* Copies a header's value when the line names it (case-insensitively). */
static bool header_value(const char *line, size_t len, const char *name, char *out, size_t size)
{
	size_t name_len = strlen(name);
	size_t start, end;

	if (len <= name_len || strncasecmp(line, name, name_len) != 0 || line[name_len] != ':')
		return false;
	start = name_len + 1;
	while (start < len && (line[start] == ' ' || line[start] == '\t'))
		start++;
	end = len;
	while (end > start && (line[end - 1] == '\r' || line[end - 1] == '\n' || line[end - 1] == ' '))
		end--;
	if (end - start >= size)
		end = start;   /* too long to be trusted: treated as absent */
	memcpy(out, line + start, end - start);
	out[end - start] = '\0';
	return true;
}

static size_t read_header(char *line, size_t size, size_t count, void *context)
{
	struct response *response = context;
	size_t len = size * count;
	char value[64];

	/* A new status line (after a 100 Continue, for one) starts the headers again. */
	if (len > 5 && strncmp(line, "HTTP/", 5) == 0) {
		long status = response->status;

		memset(response, 0, sizeof(*response));
		response->status = status;
		return len;
	}
	header_value(line, len, "Content-Type", response->content_type, sizeof(response->content_type));
	header_value(line, len, "Docker-Content-Digest", response->digest, sizeof(response->digest));
	header_value(line, len, "Location", response->location, sizeof(response->location));
	if (!response->authenticate[0])
		header_value(line, len, "WWW-Authenticate", response->authenticate, sizeof(response->authenticate));
	if (header_value(line, len, "Retry-After", value, sizeof(value))) {
		char *end;
		long seconds = strtol(value, &end, 10);

		if (end != value && *end == '\0' && seconds >= 0)
			response->retry_after = seconds > RETRY_AFTER_MAX_S ? RETRY_AFTER_MAX_S : seconds;
	}
	return len;
}

static int show_progress(void *context, curl_off_t total, curl_off_t now, curl_off_t upload_total,
			 curl_off_t upload_now)
{
	struct progress *progress = context;
	time_t current = time(NULL);

	(void)upload_total;
	(void)upload_now;
	if (current == progress->last || total <= 0)
		return 0;
	progress->last = current;
	fprintf(stderr, "\r%-60.60s %6.1f / %.1f MiB", progress->label, (double)now / 1048576.0,
		(double)total / 1048576.0);
	return 0;
}

/* Whether two URLs have the same scheme, host and port. */
static bool same_origin(const char *a, const char *b)
{
	CURLU *ua = curl_url(), *ub = curl_url();
	bool same = false;

	if (ua && ub && curl_url_set(ua, CURLUPART_URL, a, 0) == CURLUE_OK &&
	    curl_url_set(ub, CURLUPART_URL, b, 0) == CURLUE_OK) {
		char *sa = NULL, *sb = NULL, *ha = NULL, *hb = NULL, *pa = NULL, *pb = NULL;

		curl_url_get(ua, CURLUPART_SCHEME, &sa, 0);
		curl_url_get(ub, CURLUPART_SCHEME, &sb, 0);
		curl_url_get(ua, CURLUPART_HOST, &ha, 0);
		curl_url_get(ub, CURLUPART_HOST, &hb, 0);
		curl_url_get(ua, CURLUPART_PORT, &pa, CURLU_DEFAULT_PORT);
		curl_url_get(ub, CURLUPART_PORT, &pb, CURLU_DEFAULT_PORT);
		same = sa && sb && ha && hb && pa && pb && strcasecmp(sa, sb) == 0 && strcasecmp(ha, hb) == 0 &&
		       strcmp(pa, pb) == 0;
		curl_free(sa);
		curl_free(sb);
		curl_free(ha);
		curl_free(hb);
		curl_free(pa);
		curl_free(pb);
	}
	curl_url_cleanup(ua);
	curl_url_cleanup(ub);
	return same;
}

/* Resolves a Location header against the URL it came from; https only. */
static int resolve_location(const char *base, const char *location, char *out, size_t size)
{
	CURLU *url = curl_url();
	char *text = NULL, *scheme = NULL;
	int r = MLB_EINPUT;

	if (!url)
		return -ENOMEM;
	if (curl_url_set(url, CURLUPART_URL, base, 0) != CURLUE_OK ||
	    curl_url_set(url, CURLUPART_URL, location, 0) != CURLUE_OK ||
	    curl_url_get(url, CURLUPART_URL, &text, 0) != CURLUE_OK ||
	    curl_url_get(url, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK)
		goto out;
	if (strcmp(scheme, "https") != 0 || strlen(text) >= size)
		goto out;
	strcpy(out, text);
	r = 0;
out:
	curl_free(text);
	curl_free(scheme);
	curl_url_cleanup(url);
	return r;
}

/* Maps a libcurl failure to a result: TLS trust problems are denials, the rest unreachable. */
static int curl_result(CURLcode code)
{
	switch (code) {
	case CURLE_OK:
		return 0;
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_ISSUER_ERROR:
	case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
		return MLB_EDENIED;
	case CURLE_OUT_OF_MEMORY:
		return -ENOMEM;
	case CURLE_WRITE_ERROR:
		return -EIO;
	default:
		return MLB_EUNREACHABLE;
	}
}

/* Sends one request to url, with no retry and no redirect handling. */
static int send_once(struct registry_client *client, const char *url, const struct request *request,
		     const char *authorization, struct response *response)
{
	struct curl_slist *headers = NULL, *added = NULL;
	struct progress progress = { request->progress_label, 0 };
	CURL *curl = client->curl;
	CURLcode code;
	curl_off_t length = -1;
	int r = 0;

	memset(response, 0, sizeof(*response));
	curl_easy_reset(curl);
	if (request->accept) {
		added = curl_slist_append(headers, request->accept);
		if (!added)
			r = -ENOMEM;
		else
			headers = added;
	}
	if (r == 0 && authorization) {
		added = curl_slist_append(headers, authorization);
		if (!added)
			r = -ENOMEM;
		else
			headers = added;
	}
	if (r < 0)
		goto out;
	curl_easy_setopt(curl, CURLOPT_URL, url);
	curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "https");
	curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(curl, CURLOPT_USERAGENT, "mlboot/" MLBOOT_VERSION);
	curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, 2L);
	if (client->ca_file)
		curl_easy_setopt(curl, CURLOPT_CAINFO, client->ca_file);
	curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, 30L);
	curl_easy_setopt(curl, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl_easy_setopt(curl, CURLOPT_LOW_SPEED_TIME, client->options.timeout);
	curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, read_header);
	curl_easy_setopt(curl, CURLOPT_HEADERDATA, response);
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, write_body);
	curl_easy_setopt(curl, CURLOPT_WRITEDATA, (void *)&request->sink);
	if (strcmp(request->method, "HEAD") == 0)
		curl_easy_setopt(curl, CURLOPT_NOBODY, 1L);
	if (client->options.progress && request->progress_label && request->sink.blob) {
		curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
		curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, show_progress);
		curl_easy_setopt(curl, CURLOPT_XFERINFODATA, &progress);
	}
	client->stats.requests++;
	code = curl_easy_perform(curl);
	if (progress.last)
		fputs("\r\033[K", stderr);
	curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &response->status);
	curl_easy_getinfo(curl, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &length);
	response->content_length = length > 0 ? (uint64_t)length : 0;
	if (code == CURLE_WRITE_ERROR && ((struct sink *)&request->sink)->error) {
		r = ((struct sink *)&request->sink)->error;
	} else if (code != CURLE_OK) {
		r = curl_result(code);
		log_debug("%s '%s' failed: %s", request->method, url, curl_easy_strerror(code));
	}
out:
	curl_slist_free_all(headers);
	return r;
}

static void reset_sink(struct request *request)
{
	request->sink.error = 0;
	if (request->sink.memory)
		buf_reset(request->sink.memory);
	if (request->sink.blob)
		(void)layout_blob_restart(request->sink.blob);
}

static bool retryable_status(long status)
{
	return status == 429 || status == 408 || (status >= 500 && status <= 599);
}

static void backoff_sleep(unsigned attempt, long retry_after)
{
	long ms = BACKOFF_FIRST_MS;

	for (unsigned i = 0; i < attempt && ms < BACKOFF_MAX_MS; i++)
		ms *= 2;
	if (ms > BACKOFF_MAX_MS)
		ms = BACKOFF_MAX_MS;
	if (retry_after > 0)
		ms = retry_after * 1000;
	usleep((useconds_t)ms * 1000);
}

/*
 * Sends a request, following redirects (the Authorization header only to
 * the first origin) and retrying connection failures, 408, 429 and 5xx
 * with exponential backoff. The final response is in response.
 */
static int send_with_retries(struct registry_client *client, const char *first_url, const struct request *request,
			     const char *authorization, struct response *response)
{
	char url[URL_MAX];
	int r = MLB_EUNREACHABLE;

	for (unsigned attempt = 0; attempt <= client->options.retries; attempt++) {
		unsigned redirects = 0;

		snprintf(url, sizeof(url), "%s", first_url);
		if (attempt > 0) {
			log_debug("retrying %s '%s' (attempt %u of %u)", request->method, url, attempt + 1,
				  client->options.retries + 1);
			backoff_sleep(attempt - 1, response->retry_after);
			reset_sink((struct request *)request);
		}
		for (;;) {
			const char *auth = same_origin(url, first_url) ? authorization : NULL;

			r = send_once(client, url, request, auth, response);
			if (r < 0 || response->status < 300 || response->status > 399 || response->status == 304)
				break;
			if (!response->location[0] || ++redirects > REDIRECTS_MAX) {
				r = MLB_EINPUT;
				log_debug("'%s' answered %ld without a usable Location, or redirected more than %d times",
					  url, response->status, REDIRECTS_MAX);
				return r;
			}
			r = resolve_location(url, response->location, url, sizeof(url));
			if (r < 0) {
				log_debug("'%s' redirected to a location that is not https", first_url);
				return r;
			}
			log_debug("following a redirect to another location%s",
				  same_origin(url, first_url) ? "" : " on another host (without credentials)");
			reset_sink((struct request *)request);
		}
		if (r == MLB_EDENIED || r == -ENOMEM || r == -EIO || r == -ENOSPC || r == -EFBIG)
			return r;
		if (r < 0)
			continue;
		if (!retryable_status(response->status))
			return 0;
		r = MLB_EUNREACHABLE;
		log_debug("%s '%s' answered %ld", request->method, url, response->status);
	}
	return r;
}

/* --- Authentication ---------------------------------------------------------- */

/* "Authorization: Basic BASE64(user:password)" for a registry, or NULL when config.json has none. */
static int basic_header(struct registry_client *client, const char *registry, char **out)
{
	char *username = NULL, *password = NULL, *joined = NULL, *encoded = NULL;
	size_t joined_len, encoded_size;
	int r;

	*out = NULL;
	if (client->docker_config.len == 0)
		return 0;
	r = image_docker_config_lookup(client->docker_config.data, client->docker_config.len, registry, &username,
				       &password);
	if (r == -ENOENT)
		return 0;
	if (r < 0) {
		log_debug("invalid credentials for '%s' in the docker config: %s", registry, mlb_strerror(r));
		return r;
	}
	joined_len = strlen(username) + 1 + strlen(password);
	joined = malloc(joined_len + 1);
	encoded_size = 4 * ((joined_len + 2) / 3) + 1;
	encoded = malloc(encoded_size);
	if (!joined || !encoded) {
		r = -ENOMEM;
		goto out;
	}
	snprintf(joined, joined_len + 1, "%s:%s", username, password);
	EVP_EncodeBlock((unsigned char *)encoded, (const unsigned char *)joined, (int)joined_len);
	if (asprintf(out, "Authorization: Basic %s", encoded) < 0) {
		*out = NULL;
		r = -ENOMEM;
		goto out;
	}
	r = 0;
out:
	if (joined)
		secure_wipe(joined, joined_len);
	free(joined);
	if (encoded)
		secure_wipe(encoded, encoded_size);
	free(encoded);
	secret_free(username);
	secret_free(password);
	return r;
}

/* Appends a query parameter, escaped. */
static int append_query(struct buf *url, const char *name, const char *value, bool *first)
{
	char *escaped = curl_easy_escape(NULL, value, 0);
	int r;

	if (!escaped)
		return -ENOMEM;
	r = buf_printf(url, "%c%s=%s", *first ? (strchr(buf_str(url), '?') ? '&' : '?') : '&', name, escaped);
	*first = false;
	curl_free(escaped);
	return r;
}

/* Reads "token" (or "access_token") from a token response. */
static int parse_token(const struct buf *body, char **token)
{
	static const struct doc_limits limits = { TOKEN_RESPONSE_MAX, 8, 10000 };
	struct doc_node *root = NULL;
	struct doc_error error;
	const char *value;
	int r;

	*token = NULL;
	r = doc_parse(body->data ? body->data : "", body->len, &limits, &root, &error);
	if (r < 0)
		goto out;
	value = doc_get_string(root, "token");
	if (!value || !*value)
		value = doc_get_string(root, "access_token");
	r = MLB_EINPUT;
	if (!value || !*value || strlen(value) > TOKEN_MAX || strpbrk(value, "\r\n"))
		goto out;
	*token = strdup(value);
	r = *token ? 0 : -ENOMEM;
out:
	if (root && root->type == DOC_MAP)
		for (size_t i = 0; i < root->count; i++)
			if (root->items[i]->text)
				secure_wipe(root->items[i]->text, root->items[i]->text_len);
	doc_free(root);
	return r;
}

/*
 * Handles a challenge: fetches a bearer token from the realm (with the
 * registry's credentials when config.json has them), or uses the
 * credentials for Basic. Stores the Authorization header for host and
 * repository.
 */
static int authenticate(struct registry_client *client, const char *host, const char *repository,
			const char *challenge_text)
{
	struct image_challenge challenge;
	struct buf url = BUF_INIT(URL_MAX);
	struct buf body = BUF_INIT(TOKEN_RESPONSE_MAX);
	struct response response;
	struct request request = { 0 };
	char *basic = NULL, *token = NULL, *header = NULL, scope[IMAGE_NAME_MAX + 32];
	bool first = true;
	int r;

	r = image_challenge_parse(challenge_text, &challenge);
	if (r < 0) {
		log_debug("registry '%s' sent an invalid WWW-Authenticate challenge", host);
		goto out;
	}
	r = basic_header(client, host, &basic);
	if (r < 0)
		goto out;
	if (strcmp(challenge.scheme, "Basic") == 0) {
		r = MLB_EDENIED;
		if (!basic) {
			log_debug("registry '%s' asks for a user name and password, and the docker config has none for it",
				  host);
			goto out;
		}
		token_store(client, host, repository, basic);
		basic = NULL;
		r = 0;
		goto out;
	}
	r = MLB_EINPUT;
	if (strcmp(challenge.scheme, "Bearer") != 0 || strncmp(challenge.realm, "https://", 8) != 0) {
		log_debug("registry '%s' asks for the '%s' scheme with realm '%s': only Bearer with an https realm and Basic are supported",
			  host, challenge.scheme, challenge.realm);
		goto out;
	}
	snprintf(scope, sizeof(scope), "repository:%s:pull", repository);
	r = buf_append_str(&url, challenge.realm);
	if (r == 0 && challenge.service[0])
		r = append_query(&url, "service", challenge.service, &first);
	if (r == 0)
		r = append_query(&url, "scope", challenge.scope[0] ? challenge.scope : scope, &first);
	if (r < 0)
		goto out;
	request = (struct request){ .method = "GET", .host = host, .repository = repository,
				    .sink = { .memory = &body } };
	r = send_with_retries(client, buf_str(&url), &request, basic, &response);
	if (r < 0)
		goto out;
	if (response.status == 401 || response.status == 403) {
		log_debug("the token service of '%s' rejected the %s (HTTP %ld)", host,
			  basic ? "credentials" : "anonymous request", response.status);
		r = MLB_EDENIED;
		goto out;
	}
	if (response.status != 200) {
		log_debug("the token service of '%s' answered HTTP %ld", host, response.status);
		r = MLB_EUNREACHABLE;
		goto out;
	}
	r = parse_token(&body, &token);
	if (r < 0) {
		log_debug("the token service of '%s' sent no token", host);
		goto out;
	}
	if (asprintf(&header, "Authorization: Bearer %s", token) < 0) {
		header = NULL;
		r = -ENOMEM;
		goto out;
	}
	token_store(client, host, repository, header);
	header = NULL;
	r = 0;
out:
	secret_free(basic);
	secret_free(token);
	secret_free(header);
	buf_release_secret(&body);
	buf_release(&url);
	return r;
}

/*
 * Sends a request to /v2/REPOSITORY/PATH on host and handles one challenge
 * per call: a 401 fetches a token (or uses Basic credentials) and repeats.
 */
static int registry_request(struct registry_client *client, struct request *request, const char *path,
			    struct response *response)
{
	char url[URL_MAX];
	int r;

	if (snprintf(url, sizeof(url), "https://%s/v2/%s/%s", request->host, request->repository, path) >=
	    (int)sizeof(url))
		return -ENAMETOOLONG;
	for (int round = 0; round < 2; round++) {
		struct token_entry *token = token_find(client, request->host, request->repository);

		r = send_with_retries(client, url, request, token ? token->header : NULL, response);
		if (r < 0)
			return r;
		if (response->status != 401)
			break;
		if (round == 1 || !response->authenticate[0]) {
			log_debug("registry '%s' rejected the %s for '%s'", request->host,
				  token ? "credentials" : "anonymous request", request->repository);
			return MLB_EDENIED;
		}
		r = authenticate(client, request->host, request->repository, response->authenticate);
		if (r < 0)
			return r;
		reset_sink(request);
	}
	if (response->status == 403)
		return MLB_EDENIED;
	if (response->status == 404)
		return -ENOENT;
	if (response->status != 200) {
		log_debug("registry '%s' answered HTTP %ld for '%s'", request->host, response->status, path);
		return MLB_EUNREACHABLE;
	}
	return 0;
}

/* --- Pulling ------------------------------------------------------------------ */

/* Where a reference's content comes from: a mirror of its registry, or the registry itself. */
static const char *content_host(const struct registry_client *client, const struct image_reference *ref,
				bool *mirrored)
{
	*mirrored = false;
	for (size_t i = 0; i < client->options.mirror_count; i++) {
		if (strcmp(client->mirrors[i].source, ref->registry) == 0) {
			*mirrored = true;
			return client->mirrors[i].mirror;
		}
	}
	return image_registry_api_host(ref->registry);
}

/*
 * Reads a manifest the layout already has, when its digest is known: a
 * build pinned by catalog.lock then sends no request for content it has.
 * Returns 0 when body contains the verified bytes, -ENOENT when absent.
 */
static int load_local_manifest(const struct image_layout *layout, const char *digest, struct buf *body)
{
	char path[PATH_MAX_LAYOUT], hex[SHA256_HEX_LEN + 1];
	int r;

	buf_reset(body);
	r = image_layout_blob_path(layout, digest, path, sizeof(path));
	if (r < 0)
		return r;
	r = file_read_all(path, IMAGE_MANIFEST_MAX, body);
	if (r < 0)
		return -ENOENT;
	r = sha256_hex(body->data ? body->data : "", body->len, hex);
	if (r < 0)
		return r;
	return strcmp(hex, digest + 7) == 0 ? 0 : -ENOENT;
}

/*
 * Fetches a manifest by tag or digest into body and checks it: against
 * expected_digest when given, else against Docker-Content-Digest when the
 * registry sent one. Writes the digest of the bytes to digest.
 */
static int fetch_manifest(struct registry_client *client, const char *host, const char *repository,
			  const char *tag_or_digest, const char *expected_digest, struct buf *body,
			  char content_type[IMAGE_MEDIA_TYPE_MAX + 1], char digest[IMAGE_DIGEST_MAX + 1])
{
	struct request request = { .method = "GET", .accept = manifest_accept, .host = host,
				   .repository = repository, .sink = { .memory = body } };
	struct response response;
	char path[IMAGE_TAG_MAX + IMAGE_DIGEST_MAX + 16], hex[SHA256_HEX_LEN + 1];
	int r;

	buf_reset(body);
	snprintf(path, sizeof(path), "manifests/%s", tag_or_digest);
	r = registry_request(client, &request, path, &response);
	if (r < 0)
		return r;
	r = sha256_hex(body->data ? body->data : "", body->len, hex);
	if (r < 0)
		return r;
	snprintf(digest, IMAGE_DIGEST_MAX + 1, "sha256:%s", hex);
	if (expected_digest && strcmp(expected_digest, digest) != 0) {
		log_debug("the manifest '%s' of '%s' from '%s' has digest %s", tag_or_digest, repository, host, digest);
		return MLB_EINTEGRITY;
	}
	if (response.digest[0] && strncmp(response.digest, "sha256:", 7) == 0 && strcmp(response.digest, digest) != 0) {
		log_debug("the manifest of '%s' from '%s' has digest %s, and the registry says %s", repository, host,
			  digest, response.digest);
		return MLB_EINTEGRITY;
	}
	snprintf(content_type, IMAGE_MEDIA_TYPE_MAX + 1, "%s", response.content_type);
	client->stats.manifests_fetched++;
	return 0;
}

static int fetch_blob(struct registry_client *client, const char *host, const char *repository,
		      const struct image_descriptor *blob, struct image_layout *layout)
{
	struct layout_blob_writer writer;
	struct request request = { .method = "GET", .host = host, .repository = repository };
	struct response response;
	char path[IMAGE_DIGEST_MAX + 16], label[IMAGE_NAME_MAX + 32];
	int r;

	if (image_layout_has_blob(layout, blob->digest, blob->size)) {
		client->stats.blobs_present++;
		return 0;
	}
	r = layout_blob_begin(layout, blob->digest, blob->size, &writer);
	if (r < 0)
		return r;
	/* NOTE: a retry downloads the blob from its first byte again; only url sources resume with Range. */
	snprintf(path, sizeof(path), "blobs/%s", blob->digest);
	snprintf(label, sizeof(label), "%s %.19s", repository, blob->digest);
	request.sink.blob = &writer;
	request.progress_label = label;
	r = registry_request(client, &request, path, &response);
	if (r == 0)
		r = layout_blob_commit(&writer);
	layout_blob_abort(&writer);
	if (r == MLB_EINTEGRITY || r == -EFBIG) {
		log_debug("the blob %s of '%s' from '%s' does not match its digest or size", blob->digest, repository,
			  host);
		r = MLB_EINTEGRITY;
	}
	if (r == 0) {
		client->stats.blobs_fetched++;
		client->stats.bytes_fetched += blob->size;
	}
	return r;
}

/* Checks an image config's os and architecture against the client's platforms. */
static int check_config_platform(const struct registry_client *client, const struct image_layout *layout,
				 const struct image_descriptor *config)
{
	static const struct doc_limits limits = { CONFIG_BLOB_MAX, 64, 1000000 };
	struct buf data = BUF_INIT(CONFIG_BLOB_MAX);
	struct doc_node *root = NULL;
	struct doc_error error;
	struct image_platform have = { 0 };
	char path[PATH_MAX_LAYOUT];
	const char *os, *architecture, *variant;
	int r;

	if (config->size > CONFIG_BLOB_MAX)
		return 0;
	r = image_layout_blob_path(layout, config->digest, path, sizeof(path));
	if (r == 0)
		r = file_read_all(path, CONFIG_BLOB_MAX, &data);
	if (r == 0)
		r = doc_parse(data.data, data.len, &limits, &root, &error);
	if (r < 0) {
		/* Not an image config (an artifact, say): nothing to check. */
		r = 0;
		goto out;
	}
	os = doc_get_string(root, "os");
	architecture = doc_get_string(root, "architecture");
	variant = doc_get_string(root, "variant");
	if (!os || !architecture || strlen(os) >= sizeof(have.os) ||
	    strlen(architecture) >= sizeof(have.architecture) || (variant && strlen(variant) >= sizeof(have.variant)))
		goto out;
	strcpy(have.os, os);
	strcpy(have.architecture, architecture);
	if (variant)
		strcpy(have.variant, variant);
	r = MLB_EINPUT;
	for (size_t i = 0; i < client->options.platform_count; i++)
		if (image_platform_matches(&client->platforms[i], &have))
			r = 0;
	if (r < 0)
		log_debug("the image is for %s/%s only, which is none of the platforms asked for", os, architecture);
out:
	doc_free(root);
	buf_release(&data);
	return r;
}

static int pull_image_manifest(struct registry_client *client, const char *host, const char *repository,
			       const struct image_manifest *manifest, struct image_layout *layout, bool check_platform)
{
	int r;

	r = fetch_blob(client, host, repository, &manifest->config, layout);
	for (size_t i = 0; r == 0 && i < manifest->count; i++) {
		if (strstr(manifest->descriptors[i].media_type, "foreign")) {
			log_debug("skipping the foreign layer %s, which registries do not serve",
				  manifest->descriptors[i].digest);
			continue;
		}
		r = fetch_blob(client, host, repository, &manifest->descriptors[i], layout);
	}
	if (r == 0 && check_platform)
		r = check_config_platform(client, layout, &manifest->config);
	return r;
}

/* Fetches a manifest named by digest, stores it, and returns it parsed. */
static int pull_child_manifest(struct registry_client *client, const char *host, const char *repository,
			       const struct image_descriptor *descriptor, struct image_layout *layout,
			       struct image_manifest *out)
{
	struct buf body = BUF_INIT(IMAGE_MANIFEST_MAX);
	char content_type[IMAGE_MEDIA_TYPE_MAX + 1], digest[IMAGE_DIGEST_MAX + 1];
	int r;

	if (descriptor->size > IMAGE_MANIFEST_MAX) {
		r = MLB_EINPUT;
		goto out;
	}
	content_type[0] = '\0';
	r = load_local_manifest(layout, descriptor->digest, &body);
	if (r == -ENOENT)
		r = fetch_manifest(client, host, repository, descriptor->digest, descriptor->digest, &body,
				   content_type, digest);
	if (r == 0 && body.len != descriptor->size)
		r = MLB_EINTEGRITY;
	if (r == 0)
		r = image_manifest_parse(body.data, body.len, descriptor->media_type, out);
	if (r == 0 && out->kind != IMAGE_MANIFEST_IMAGE) {
		image_manifest_release(out);
		log_debug("nested image indexes are not supported (%s of '%s')", descriptor->digest, repository);
		r = MLB_EINPUT;
	}
	if (r == 0)
		r = image_layout_put_blob(layout, descriptor->digest, body.data, body.len);
out:
	buf_release(&body);
	return r;
}

static int pull_index(struct registry_client *client, const char *host, const char *repository,
		      const struct image_manifest *index, struct image_layout *layout)
{
	int r = 0;

	for (size_t i = 0; r == 0 && i < client->options.platform_count; i++) {
		struct image_manifest child = { 0 };
		char platform[96];
		size_t position;

		image_platform_format(&client->platforms[i], platform, sizeof(platform));
		r = image_index_select(index, &client->platforms[i], &position);
		if (r < 0) {
			log_debug("the image index of '%s' has no manifest for %s", repository, platform);
			r = MLB_EINPUT;
			break;
		}
		r = pull_child_manifest(client, host, repository, &index->descriptors[position], layout, &child);
		if (r == 0)
			r = pull_image_manifest(client, host, repository, &child, layout, false);
		image_manifest_release(&child);
	}
	return r;
}

int registry_pull(struct registry_client *client, const struct image_reference *ref,
		  const char *pinned_digest, struct image_layout *layout,
		  char digest_out[IMAGE_DIGEST_MAX + 1])
{
	struct buf body = BUF_INIT(IMAGE_MANIFEST_MAX);
	struct image_manifest manifest = { 0 };
	struct image_descriptor top = { 0 };
	char content_type[IMAGE_MEDIA_TYPE_MAX + 1], digest[IMAGE_DIGEST_MAX + 1];
	char name[IMAGE_REFERENCE_MAX];
	const char *expected = NULL, *host;
	bool mirrored;
	int r;

	if (pinned_digest && *pinned_digest)
		expected = pinned_digest;
	if (ref->digest[0]) {
		if (expected && strcmp(expected, ref->digest) != 0)
			return MLB_EINTEGRITY;
		expected = ref->digest;
	}
	host = content_host(client, ref, &mirrored);
	content_type[0] = '\0';
	r = expected ? load_local_manifest(layout, expected, &body) : -ENOENT;
	if (r == 0)
		strcpy(digest, expected);
	else if (r == -ENOENT)
		r = fetch_manifest(client, host, ref->repository, expected ? expected : ref->tag, expected, &body,
				   content_type, digest);
	if (r < 0)
		goto out;
	r = image_manifest_parse(body.data, body.len, content_type[0] ? content_type : NULL, &manifest);
	if (r < 0) {
		log_debug("the manifest of '%s/%s' is not an OCI or Docker v2 manifest or index", ref->registry,
			  ref->repository);
		goto out;
	}
	r = image_layout_put_blob(layout, digest, body.data, body.len);
	if (r < 0)
		goto out;
	if (manifest.kind == IMAGE_MANIFEST_INDEX)
		r = pull_index(client, host, ref->repository, &manifest, layout);
	else
		r = pull_image_manifest(client, host, ref->repository, &manifest, layout, true);
	if (r < 0)
		goto out;

	snprintf(top.media_type, sizeof(top.media_type), "%s", manifest.media_type);
	strcpy(top.digest, digest);
	top.size = body.len;
	r = image_reference_name(ref, name, sizeof(name));
	if (r == 0) {
		size_t len = strlen(name);

		if (ref->tag[0])
			snprintf(name + len, sizeof(name) - len, ":%s", ref->tag);
		else
			snprintf(name + len, sizeof(name) - len, "@%s", ref->digest);
		r = image_layout_set_image(layout, name, &top, mirrored ? host : NULL);
	}
	if (r == 0 && digest_out)
		strcpy(digest_out, digest);
out:
	image_manifest_release(&manifest);
	buf_release(&body);
	return r;
}
