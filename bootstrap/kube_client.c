/*
 * HTTP to the API server through one libcurl easy handle per client, so
 * that every request reuses the same connection (HTTP/2 when the server
 * offers it through ALPN). A client is used by one thread at a time.
 */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "kube_private.h"

#define RETRY_BASE_DELAY_MS 200L
/* An exec credential is renewed this long before its expirationTimestamp. */
#define EXEC_RENEW_MARGIN_S 10

const struct kube_client_options kube_client_options_default = {
	.connect_timeout_ms = 10000,
	.request_timeout_ms = 60000,
	.max_retries = 4,
	.max_retry_delay_ms = 10000,
};

static const struct doc_limits response_limits = {
	.max_bytes = KUBE_RESPONSE_MAX,
	.max_depth = 256,
	.max_nodes = 8 * 1000 * 1000,
};

static _Thread_local char last_error[2048];

const char *kube_last_error(void)
{
	return last_error;
}

int kube_fail(int r, const char *format, ...)
{
	va_list args;

	va_start(args, format);
	vsnprintf(last_error, sizeof(last_error), format, args);
	va_end(args);
	log_debug("%s", last_error);
	return r;
}

char *kube_escape(const char *text)
{
	char *escaped = curl_easy_escape(NULL, text, 0);
	char *copy;

	if (!escaped)
		return NULL;
	copy = strdup(escaped);
	curl_free(escaped);
	return copy;
}

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_result;

static void curl_init_once(void)
{
	/* main() initialises libcurl too; the call only counts a reference then. */
	curl_init_result = curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* Tokens go into an HTTP header: white space or control characters would split it. */
static int check_token(const struct kube_client *client, const char *token, const char *source)
{
	for (const unsigned char *p = (const unsigned char *)token; *p; p++)
		if (*p <= 0x20 || *p == 0x7f)
			return kube_fail(MLB_EINPUT, "the token of user '%s' from %s contains white space or control "
					 "characters; check the kubeconfig", client->user_name, source);
	return 0;
}

static int load_token_file(struct kube_client *client)
{
	char *token = NULL;
	int r;

	r = kube_token_file_read(client->token_file, &token);
	if (r == 0)
		r = check_token(client, token, "tokenFile");
	if (r < 0) {
		secret_free(token);
		return r;
	}
	secret_free(client->token);
	client->token = token;
	return 0;
}

/* Runs the exec plugin and takes its token or certificate and key. */
static int load_exec_credential(struct kube_client *client)
{
	struct kube_exec_credential credential;
	int r;

	r = kube_exec_credential_get(client->exec_credentials, 0, &credential);
	if (r < 0)
		return r;
	if (credential.token) {
		r = check_token(client, credential.token, "its exec plugin");
		if (r < 0)
			goto out;
	}
	secret_free(client->token);
	client->token = credential.token;
	credential.token = NULL;
	buf_release(&client->client_cert_pem);
	buf_release_secret(&client->client_key_pem);
	client->client_cert_pem = credential.client_cert_pem;
	client->client_key_pem = credential.client_key_pem;
	buf_init(&credential.client_cert_pem, 0);
	buf_init(&credential.client_key_pem, 0);
	client->exec_expiry = credential.expiry;
	r = 0;
out:
	kube_exec_credential_release(&credential);
	return r;
}

static int copy_string(const char *from, char **to)
{
	if (!from)
		return 0;
	*to = strdup(from);
	return *to ? 0 : -ENOMEM;
}

static int copy_strings(char *const *from, char ***to)
{
	size_t count = 0;

	while (from && from[count])
		count++;
	*to = calloc(count + 1, sizeof(**to));
	if (!*to)
		return -ENOMEM;
	for (size_t i = 0; i < count; i++)
		if (!((*to)[i] = strdup(from[i])))
			return -ENOMEM;
	return 0;
}

/* Copies what running the exec plugin again needs: the plugin and the cluster. */
static int copy_exec_credentials(const struct kube_credentials *from, struct kube_credentials **out)
{
	struct kube_credentials *copy = calloc(1, sizeof(*copy));
	int r;

	if (!copy)
		return -ENOMEM;
	*out = copy;
	copy->exec = calloc(1, sizeof(*copy->exec));
	if (!copy->exec)
		return -ENOMEM;
	buf_init(&copy->ca_pem, from->ca_pem.len + 1);
	r = copy_string(from->server, &copy->server);
	if (r == 0)
		r = copy_string(from->tls_server_name, &copy->tls_server_name);
	if (r == 0)
		r = copy_string(from->proxy_url, &copy->proxy_url);
	if (r == 0)
		r = copy_string(from->user_name, &copy->user_name);
	if (r == 0 && from->ca_pem.len)
		r = buf_append(&copy->ca_pem, from->ca_pem.data, from->ca_pem.len);
	if (r == 0)
		r = copy_string(from->exec->command, &copy->exec->command);
	if (r == 0)
		r = copy_string(from->exec->api_version, &copy->exec->api_version);
	if (r == 0)
		r = copy_string(from->exec->interactive_mode, &copy->exec->interactive_mode);
	if (r == 0)
		r = copy_string(from->exec->install_hint, &copy->exec->install_hint);
	if (r == 0)
		r = copy_strings(from->exec->args, &copy->exec->args);
	if (r == 0)
		r = copy_strings(from->exec->env, &copy->exec->env);
	copy->insecure_skip_tls_verify = from->insecure_skip_tls_verify;
	copy->exec->provide_cluster_info = from->exec->provide_cluster_info;
	return r;
}

static bool host_is_loopback(const char *host)
{
	return strcasecmp(host, "localhost") == 0 || strncmp(host, "127.", 4) == 0 ||
	       strcmp(host, "[::1]") == 0 || strcmp(host, "::1") == 0;
}

/*
 * Sets url_base and, with tls-server-name, connect_to: the URL names the
 * TLS server name (so SNI and the certificate check use it) while the
 * connection goes to the server's real host, as kubectl's tls.Config
 * ServerName does.
 */
static int set_addresses(struct kube_client *client, const struct kube_credentials *credentials)
{
	CURLU *url = curl_url();
	char *host = NULL, *port = NULL, *base = NULL;
	int r = -ENOMEM;

	if (!url)
		return -ENOMEM;
	if (curl_url_set(url, CURLUPART_URL, credentials->server, 0) != CURLUE_OK ||
	    curl_url_get(url, CURLUPART_HOST, &host, 0) != CURLUE_OK ||
	    curl_url_get(url, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) != CURLUE_OK) {
		r = kube_fail(MLB_EINPUT, "server '%s' is not a valid URL", credentials->server);
		goto out;
	}
	client->no_proxy = !credentials->proxy_url && host_is_loopback(host);
	if (credentials->tls_server_name) {
		if (curl_url_set(url, CURLUPART_HOST, credentials->tls_server_name, 0) != CURLUE_OK) {
			r = kube_fail(MLB_EINPUT, "tls-server-name '%s' of cluster '%s' is not a valid host name",
				      credentials->tls_server_name, client->cluster_name);
			goto out;
		}
		if (asprintf(&client->connect_to, "%s:%s:%s:%s", credentials->tls_server_name, port, host, port) < 0) {
			client->connect_to = NULL;
			goto out;
		}
		if (curl_url_get(url, CURLUPART_URL, &base, 0) != CURLUE_OK)
			goto out;
		client->url_base = strdup(base);
	} else {
		client->url_base = strdup(credentials->server);
	}
	if (!client->url_base)
		goto out;
	/* The server may carry a path prefix (a proxy in front of the API); paths are appended to it. */
	for (size_t len = strlen(client->url_base); len > 0 && client->url_base[len - 1] == '/'; len--)
		client->url_base[len - 1] = '\0';
	r = 0;
out:
	curl_free(host);
	curl_free(port);
	curl_free(base);
	curl_url_cleanup(url);
	return r;
}

int kube_client_new(const struct kube_credentials *credentials,
		    const struct kube_client_options *options, struct kube_client **out)
{
	struct kube_client *client = NULL;
	int r = -ENOMEM;

	*out = NULL;
	pthread_once(&curl_once, curl_init_once);
	if (curl_init_result != CURLE_OK)
		return kube_fail(-ENOMEM, "cannot initialise libcurl: %s", curl_easy_strerror(curl_init_result));
	if (!credentials || !credentials->server)
		return kube_fail(-EINVAL, "kube_client_new: credentials without a server");

	client = calloc(1, sizeof(*client));
	if (!client)
		return -ENOMEM;
	client->options = options ? *options : kube_client_options_default;
	if (client->options.connect_timeout_ms <= 0)
		client->options.connect_timeout_ms = kube_client_options_default.connect_timeout_ms;
	if (client->options.request_timeout_ms <= 0)
		client->options.request_timeout_ms = kube_client_options_default.request_timeout_ms;
	if (client->options.max_retry_delay_ms < 0)
		client->options.max_retry_delay_ms = kube_client_options_default.max_retry_delay_ms;
	client->jitter_seed = (unsigned)time(NULL) ^ (unsigned)getpid() ^ (unsigned)(uintptr_t)client;
	buf_init(&client->ca_pem, credentials->ca_pem.len + 1);
	buf_init(&client->client_cert_pem, credentials->client_cert_pem.len + 1);
	buf_init(&client->client_key_pem, credentials->client_key_pem.len + 1);

	if (copy_string(credentials->server, &client->server) < 0 ||
	    copy_string(credentials->cluster_name ? credentials->cluster_name : "", &client->cluster_name) < 0 ||
	    copy_string(credentials->user_name ? credentials->user_name : "", &client->user_name) < 0 ||
	    copy_string(credentials->source ? credentials->source : "", &client->source) < 0 ||
	    copy_string(credentials->proxy_url, &client->proxy_url) < 0 ||
	    copy_string(credentials->token_file, &client->token_file) < 0 ||
	    copy_string(credentials->token, &client->token) < 0 ||
	    asprintf(&client->user_agent, "mlboot/%s", MLBOOT_VERSION) < 0)
		goto out;
	client->insecure_skip_tls_verify = credentials->insecure_skip_tls_verify;
	if ((credentials->ca_pem.len &&
	     buf_append(&client->ca_pem, credentials->ca_pem.data, credentials->ca_pem.len) < 0) ||
	    (credentials->client_cert_pem.len &&
	     buf_append(&client->client_cert_pem, credentials->client_cert_pem.data, credentials->client_cert_pem.len) < 0) ||
	    (credentials->client_key_pem.len &&
	     buf_append(&client->client_key_pem, credentials->client_key_pem.data, credentials->client_key_pem.len) < 0))
		goto out;
	r = set_addresses(client, credentials);
	if (r < 0)
		goto out;
	if (client->token) {
		r = check_token(client, client->token, "the kubeconfig");
		if (r < 0)
			goto out;
	}
	if (client->token_file) {
		r = load_token_file(client);
		if (r < 0)
			goto out;
	}
	if (credentials->exec) {
		r = copy_exec_credentials(credentials, &client->exec_credentials);
		if (r < 0)
			goto out;
		r = load_exec_credential(client);
		if (r < 0)
			goto out;
	}
	client->curl = curl_easy_init();
	if (!client->curl) {
		r = kube_fail(-ENOMEM, "cannot create a libcurl handle");
		goto out;
	}
	*out = client;
	client = NULL;
	r = 0;
out:
	kube_client_free(client);
	return r;
}

void kube_client_free(struct kube_client *client)
{
	if (!client)
		return;
	if (client->curl)
		curl_easy_cleanup(client->curl);
	kube_discovery_release(client);
	free(client->server);
	free(client->cluster_name);
	free(client->user_name);
	free(client->source);
	free(client->url_base);
	free(client->connect_to);
	free(client->proxy_url);
	free(client->user_agent);
	buf_release(&client->ca_pem);
	buf_release(&client->client_cert_pem);
	buf_release_secret(&client->client_key_pem);
	secret_free(client->token);
	free(client->token_file);
	if (client->exec_credentials) {
		kube_credentials_release(client->exec_credentials);
		free(client->exec_credentials);
	}
	free(client);
}

const char *kube_client_server(const struct kube_client *client)
{
	return client->server;
}

void kube_client_get_stats(const struct kube_client *client, struct kube_client_stats *out)
{
	*out = client->stats;
}

void kube_response_release(struct kube_response *response)
{
	if (!response)
		return;
	buf_release(&response->body);
	response->status = 0;
}

/* Result of one attempt of a request. */
struct attempt {
	CURLcode code;
	long status;
	long retry_after_ms;     /* -1 when the response had no Retry-After */
	bool too_large;
};

struct write_target {
	struct buf *body;
	bool *too_large;
};

static size_t write_body(char *data, size_t size, size_t count, void *userdata)
{
	struct write_target *target = userdata;
	size_t len = size * count;

	if (buf_append(target->body, data, len) < 0) {
		*target->too_large = true;
		return 0;
	}
	return len;
}

static size_t read_header(char *data, size_t size, size_t count, void *userdata)
{
	struct attempt *attempt = userdata;
	size_t len = size * count;
	static const char name[] = "retry-after:";
	char value[64];
	size_t n;

	if (len <= sizeof(name) - 1 || strncasecmp(data, name, sizeof(name) - 1) != 0)
		return len;
	n = len - (sizeof(name) - 1);
	if (n >= sizeof(value))
		return len;
	memcpy(value, data + sizeof(name) - 1, n);
	value[n] = '\0';
	value[strcspn(value, "\r\n")] = '\0';
	{
		char *p = value, *end;
		long long seconds;

		while (*p == ' ' || *p == '\t')
			p++;
		errno = 0;
		seconds = strtoll(p, &end, 10);
		if (end != p && *end == '\0' && errno == 0 && seconds >= 0) {
			attempt->retry_after_ms = seconds > 86400 ? 86400000L : (long)seconds * 1000;
		} else {
			/* The other form of Retry-After: an HTTP date. */
			time_t when = curl_getdate(p, NULL);

			if (when > 0)
				attempt->retry_after_ms = when > time(NULL) ? (long)(when - time(NULL)) * 1000 : 0;
		}
	}
	return len;
}

static int append_header(struct curl_slist **headers, const char *header)
{
	struct curl_slist *list = curl_slist_append(*headers, header);

	if (!list)
		return -ENOMEM;
	*headers = list;
	return 0;
}

/* Frees a header list after overwriting it, since one header carries the token. */
static void free_headers(struct curl_slist *headers)
{
	for (struct curl_slist *h = headers; h; h = h->next)
		secure_wipe(h->data, strlen(h->data));
	curl_slist_free_all(headers);
}

static int build_headers(const struct kube_client *client, const char *content_type, bool has_body,
			 struct curl_slist **out)
{
	struct buf header = BUF_INIT(128 * 1024);
	int r;

	r = append_header(out, "Accept: application/json");
	if (r == 0 && content_type) {
		r = buf_printf(&header, "Content-Type: %s", content_type);
		if (r == 0)
			r = append_header(out, header.data);
		buf_reset(&header);
	}
	/* No "Expect: 100-continue" round trip before large bodies. */
	if (r == 0 && has_body)
		r = append_header(out, "Expect:");
	if (r == 0 && client->token) {
		r = buf_printf(&header, "Authorization: Bearer %s", client->token);
		if (r == 0)
			r = append_header(out, header.data);
	}
	buf_release_secret(&header);
	return r;
}

static CURLcode set_tls(struct kube_client *client)
{
	CURLcode c = CURLE_OK;

	if (client->insecure_skip_tls_verify) {
		c = curl_easy_setopt(client->curl, CURLOPT_SSL_VERIFYPEER, 0L);
		if (c == CURLE_OK)
			c = curl_easy_setopt(client->curl, CURLOPT_SSL_VERIFYHOST, 0L);
	} else if (client->ca_pem.len > 0) {
		struct curl_blob ca = { client->ca_pem.data, client->ca_pem.len, CURL_BLOB_COPY };

		/* Trust the kubeconfig's CA only, as kubectl does, not the system store as well. */
		c = curl_easy_setopt(client->curl, CURLOPT_CAINFO_BLOB, &ca);
		if (c == CURLE_OK)
			c = curl_easy_setopt(client->curl, CURLOPT_CAINFO, NULL);
		if (c == CURLE_OK)
			c = curl_easy_setopt(client->curl, CURLOPT_CAPATH, NULL);
	}
	if (c == CURLE_OK && client->client_cert_pem.len > 0) {
		struct curl_blob cert = { client->client_cert_pem.data, client->client_cert_pem.len, CURL_BLOB_COPY };
		struct curl_blob key = { client->client_key_pem.data, client->client_key_pem.len, CURL_BLOB_COPY };

		c = curl_easy_setopt(client->curl, CURLOPT_SSLCERT_BLOB, &cert);
		if (c == CURLE_OK)
			c = curl_easy_setopt(client->curl, CURLOPT_SSLCERTTYPE, "PEM");
		if (c == CURLE_OK)
			c = curl_easy_setopt(client->curl, CURLOPT_SSLKEY_BLOB, &key);
		if (c == CURLE_OK)
			c = curl_easy_setopt(client->curl, CURLOPT_SSLKEYTYPE, "PEM");
	}
	return c;
}

static CURLcode set_options(struct kube_client *client, const char *url, const char *method,
			    const void *body, size_t body_len, struct curl_slist *headers,
			    struct curl_slist *connect_to, struct write_target *target, struct attempt *attempt)
{
	CURL *curl = client->curl;
	CURLcode c;

	curl_easy_reset(curl);
	client->error_buffer[0] = '\0';
	c = curl_easy_setopt(curl, CURLOPT_URL, url);
#define SET(option, value) do { if (c == CURLE_OK) c = curl_easy_setopt(curl, option, value); } while (0)
	SET(CURLOPT_ERRORBUFFER, client->error_buffer);
	SET(CURLOPT_NOSIGNAL, 1L);
	SET(CURLOPT_PROTOCOLS_STR, "https");
	SET(CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
	SET(CURLOPT_CONNECTTIMEOUT_MS, client->options.connect_timeout_ms);
	SET(CURLOPT_TIMEOUT_MS, client->options.request_timeout_ms);
	SET(CURLOPT_USERAGENT, client->user_agent);
	SET(CURLOPT_TCP_KEEPALIVE, 1L);
	SET(CURLOPT_ACCEPT_ENCODING, "");
	SET(CURLOPT_HTTPHEADER, headers);
	SET(CURLOPT_WRITEFUNCTION, write_body);
	SET(CURLOPT_WRITEDATA, target);
	SET(CURLOPT_HEADERFUNCTION, read_header);
	SET(CURLOPT_HEADERDATA, attempt);
	if (connect_to)
		SET(CURLOPT_CONNECT_TO, connect_to);
	if (client->proxy_url) {
		SET(CURLOPT_PROXY, client->proxy_url);
		/* Like kubectl, send every request through proxy-url and ignore no_proxy. */
		SET(CURLOPT_NOPROXY, "");
	} else if (client->no_proxy)
		SET(CURLOPT_NOPROXY, "*");
	if (strcmp(method, "GET") == 0) {
		SET(CURLOPT_HTTPGET, 1L);
	} else {
		SET(CURLOPT_CUSTOMREQUEST, method);
		if (body) {
			SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
			SET(CURLOPT_POSTFIELDS, body);
		}
	}
#undef SET
	if (c == CURLE_OK)
		c = set_tls(client);
	return c;
}

static void perform_once(struct kube_client *client, const char *url, const char *method,
			 const char *content_type, const void *body, size_t body_len,
			 struct kube_response *response, struct attempt *attempt)
{
	struct curl_slist *headers = NULL, *connect_to = NULL;
	struct write_target target = { &response->body, &attempt->too_large };
	long connects = 0;
	double seconds = 0;

	memset(attempt, 0, sizeof(*attempt));
	attempt->retry_after_ms = -1;
	buf_reset(&response->body);
	if (build_headers(client, content_type, body != NULL, &headers) < 0 ||
	    (client->connect_to && !(connect_to = curl_slist_append(NULL, client->connect_to)))) {
		attempt->code = CURLE_OUT_OF_MEMORY;
		goto out;
	}
	attempt->code = set_options(client, url, method, body, body_len, headers, connect_to, &target, attempt);
	if (attempt->code == CURLE_OK)
		attempt->code = curl_easy_perform(client->curl);
	curl_easy_getinfo(client->curl, CURLINFO_RESPONSE_CODE, &attempt->status);
	curl_easy_getinfo(client->curl, CURLINFO_NUM_CONNECTS, &connects);
	curl_easy_getinfo(client->curl, CURLINFO_TOTAL_TIME, &seconds);
	client->stats.requests++;
	client->stats.connections += (unsigned long)connects;
	response->seconds = seconds;
out:
	free_headers(headers);
	curl_slist_free_all(connect_to);
}

static bool status_is_retryable(long status)
{
	return status == 429 || (status >= 500 && status != 501 && status != 505);
}

static bool code_is_tls_verification(CURLcode code)
{
	return code == CURLE_PEER_FAILED_VERIFICATION || code == CURLE_SSL_CACERT_BADFILE ||
	       code == CURLE_SSL_ISSUER_ERROR || code == CURLE_SSL_INVALIDCERTSTATUS ||
	       code == CURLE_SSL_PINNEDPUBKEYNOTMATCH;
}

/* Copies a proxy URL without any user name and password in it, for messages. */
static void proxy_without_credentials(const char *url, char *out, size_t size)
{
	const char *scheme_end = strstr(url, "://");
	const char *host = scheme_end ? scheme_end + 3 : url;
	const char *at = strchr(host, '@');
	const char *slash = strchr(host, '/');

	if (at && (!slash || at < slash))
		snprintf(out, size, "%.*s%s", (int)(host - url), url, at + 1);
	else
		snprintf(out, size, "%s", url);
}

static bool code_is_connection(CURLcode code)
{
	switch (code) {
	case CURLE_COULDNT_RESOLVE_PROXY:
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_CONNECT:
	case CURLE_OPERATION_TIMEDOUT:
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_GOT_NOTHING:
	case CURLE_PARTIAL_FILE:
	case CURLE_HTTP2:
	case CURLE_HTTP2_STREAM:
	case CURLE_WEIRD_SERVER_REPLY:
		return true;
	default:
		return false;
	}
}

/* Whether curl's message reports a TLS alert, which means the server rejected the handshake (usually our certificate). */
static bool error_is_tls_alert(const struct kube_client *client)
{
	return strstr(client->error_buffer, "alert") != NULL;
}

static const char *curl_message(const struct kube_client *client, CURLcode code)
{
	return client->error_buffer[0] ? client->error_buffer : curl_easy_strerror(code);
}

/* Maps a transfer that got no HTTP response to a result and a message. */
static int transfer_error(struct kube_client *client, const char *method, const char *path,
			  const struct attempt *attempt)
{
	CURLcode code = attempt->code;

	if (attempt->too_large)
		return kube_fail(-EFBIG, "the response of API server '%s' to %s %s is larger than %lu MiB",
				 client->server, method, path, KUBE_RESPONSE_MAX >> 20);
	if (code_is_tls_verification(code)) {
		if (client->ca_pem.len > 0)
			return kube_fail(MLB_EDENIED, "TLS verification of API server '%s' failed: the CA in the "
					 "kubeconfig ('%s', cluster '%s') does not match the server's certificate (%s); "
					 "get the cluster's CA certificate into certificate-authority-data",
					 client->server, client->source, client->cluster_name,
					 curl_message(client, code));
		return kube_fail(MLB_EDENIED, "TLS verification of API server '%s' failed: the kubeconfig ('%s', "
				 "cluster '%s') has no CA and the system's CA store does not trust the server's "
				 "certificate (%s); set certificate-authority-data", client->server, client->source,
				 client->cluster_name, curl_message(client, code));
	}
	if (code == CURLE_SSL_CERTPROBLEM)
		return kube_fail(MLB_EINPUT, "the client certificate or key of user '%s' cannot be used (%s); "
				 "check client-certificate-data and client-key-data in '%s'", client->user_name,
				 curl_message(client, code), client->source);
	if (code == CURLE_SSL_CONNECT_ERROR || ((code == CURLE_RECV_ERROR || code == CURLE_SEND_ERROR) &&
						error_is_tls_alert(client)))
		return kube_fail(MLB_EDENIED, "TLS handshake with API server '%s' failed (%s); check the server URL "
				 "and the client certificate of user '%s'", client->server,
				 curl_message(client, code), client->user_name);
	if (code == CURLE_OPERATION_TIMEDOUT)
		return kube_fail(MLB_EUNREACHABLE, "request %s %s to API server '%s' timed out (%s)",
				 method, path, client->server, curl_message(client, code));
	if (client->proxy_url && (code == CURLE_COULDNT_RESOLVE_PROXY || code == CURLE_COULDNT_CONNECT)) {
		char proxy[256];

		proxy_without_credentials(client->proxy_url, proxy, sizeof(proxy));
		return kube_fail(MLB_EUNREACHABLE, "cannot reach API server '%s' through the proxy '%s' (%s); "
				 "check that the proxy is running and the proxy-url in '%s'", client->server, proxy,
				 curl_message(client, code), client->source);
	}
	if (code_is_connection(code))
		return kube_fail(MLB_EUNREACHABLE, "cannot reach API server '%s' (%s); check that it is running "
				 "and that the server URL in '%s' is right", client->server,
				 curl_message(client, code), client->source);
	if (code == CURLE_OUT_OF_MEMORY)
		return kube_fail(-ENOMEM, "out of memory sending %s %s", method, path);
	return kube_fail(MLB_EFAILED, "%s %s to API server '%s' failed: %s", method, path, client->server,
			 curl_message(client, code));
}

static long retry_delay_ms(struct kube_client *client, unsigned attempt, long retry_after_ms)
{
	long cap = client->options.max_retry_delay_ms;
	long delay = RETRY_BASE_DELAY_MS;

	if (retry_after_ms >= 0)
		return retry_after_ms < cap ? retry_after_ms : cap;
	for (unsigned i = 0; i < attempt && delay < cap; i++)
		delay *= 2;
	if (delay > cap)
		delay = cap;
	/* Half fixed, half random, so that clients that failed together retry apart. */
	if (delay > 1)
		delay = delay / 2 + (long)(rand_r(&client->jitter_seed) % (unsigned)(delay / 2 + 1));
	return delay;
}

static void sleep_ms(long ms)
{
	struct timespec pause = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&pause, &pause) < 0 && errno == EINTR)
		;
}

/* Renews credentials after a 401: the token file may have rotated, the plugin's token expired. */
static int refresh_credentials(struct kube_client *client)
{
	if (client->exec_credentials)
		return load_exec_credential(client);
	if (client->token_file)
		return load_token_file(client);
	return -EAGAIN;
}

int kube_request(struct kube_client *client, const char *method, const char *path,
		 const char *content_type, const void *body, size_t body_len,
		 struct kube_response *response)
{
	struct attempt attempt;
	char *url = NULL;
	bool refreshed = false;
	int r;

	buf_init(&response->body, KUBE_RESPONSE_MAX);
	response->status = 0;
	response->seconds = 0;
	response->attempts = 0;
	if (!path || path[0] != '/')
		return kube_fail(-EINVAL, "request path '%s' does not start with '/'", path ? path : "");
	if (body_len > KUBE_REQUEST_MAX)
		return kube_fail(-EFBIG, "the body of %s %s is larger than %lu MiB", method, path, KUBE_REQUEST_MAX >> 20);
	if (client->exec_credentials && client->exec_expiry &&
	    time(NULL) + EXEC_RENEW_MARGIN_S >= client->exec_expiry) {
		r = load_exec_credential(client);
		if (r < 0)
			return r;
	}
	if (asprintf(&url, "%s%s", client->url_base, path) < 0)
		return -ENOMEM;

	for (unsigned i = 0;; i++) {
		bool retry;
		long delay;

		perform_once(client, url, method, content_type, body, body_len, response, &attempt);
		response->attempts++;
		if (attempt.code == CURLE_OK && attempt.status == 401 && !refreshed &&
		    refresh_credentials(client) == 0) {
			refreshed = true;
			log_debug("%s %s: status 401, retrying once with renewed credentials", method, path);
			continue;
		}
		if (attempt.code == CURLE_OK)
			retry = status_is_retryable(attempt.status);
		else
			retry = !attempt.too_large && code_is_connection(attempt.code) &&
				!error_is_tls_alert(client);
		if (!retry || i >= client->options.max_retries)
			break;
		delay = retry_delay_ms(client, i, attempt.code == CURLE_OK ? attempt.retry_after_ms : -1);
		if (attempt.code == CURLE_OK)
			log_debug("retrying %s %s after status %ld (attempt %u of %u, waiting %ld ms)", method, path,
				  attempt.status, i + 2, client->options.max_retries + 1, delay);
		else
			log_debug("retrying %s %s after '%s' (attempt %u of %u, waiting %ld ms)", method, path,
				  curl_message(client, attempt.code), i + 2, client->options.max_retries + 1, delay);
		client->stats.retries++;
		sleep_ms(delay);
	}
	free(url);
	if (attempt.code != CURLE_OK) {
		r = transfer_error(client, method, path, &attempt);
		buf_release(&response->body);
		return r;
	}
	response->status = attempt.status;
	return 0;
}

char *kube_status_message(const struct buf *body)
{
	struct doc_node *root = NULL;
	struct doc_error err;
	const char *message;
	char *copy = NULL;

	if (body->len == 0 || body->len > 1024 * 1024)
		return NULL;
	if (doc_parse(body->data, body->len, NULL, &root, &err) < 0)
		return NULL;
	message = doc_get_string(root, "message");
	if (message && *message)
		copy = strdup(message);
	doc_free(root);
	return copy;
}

int kube_http_error(struct kube_client *client, const char *method, const char *path,
		    const struct kube_response *response, char **message)
{
	char *status_message = kube_status_message(&response->body);
	const char *text = status_message ? status_message : "no message";
	int r;

	switch (response->status) {
	case 401:
		r = kube_fail(MLB_EDENIED, "API server '%s' rejected the credentials of user '%s' from '%s': "
			      "credentials rejected (expired or invalid token or certificate); renew them",
			      client->server, client->user_name, client->source);
		break;
	case 403:
		r = kube_fail(MLB_EDENIED, "API server '%s' denied %s %s to user '%s': %s", client->server,
			      method, path, client->user_name, text);
		break;
	case 404:
		r = kube_fail(-ENOENT, "%s %s: not found: %s", method, path, text);
		break;
	default:
		r = kube_fail(MLB_EFAILED, "%s %s failed with HTTP status %ld: %s", method, path,
			      response->status, text);
		break;
	}
	if (message) {
		*message = status_message ? status_message : strdup(last_error);
		status_message = NULL;
	}
	free(status_message);
	return r;
}

int kube_parse_body(struct kube_client *client, const char *path, const struct buf *body, struct doc_node **out)
{
	struct doc_error err = { 0 };
	int r;

	r = doc_parse(body->data ? body->data : "", body->len, &response_limits, out, &err);
	if (r < 0)
		return kube_fail(r == -ENOMEM ? -ENOMEM : MLB_EFAILED,
				 "the response of API server '%s' to %s is not valid JSON (line %u: %s)",
				 client->server, path, err.line, err.message);
	return 0;
}

int kube_get(struct kube_client *client, const char *path, struct doc_node **out, char **message)
{
	struct kube_response response;
	int r;

	*out = NULL;
	if (message)
		*message = NULL;
	r = kube_request(client, "GET", path, NULL, NULL, 0, &response);
	if (r < 0)
		return r;
	if (response.status < 200 || response.status > 299)
		r = kube_http_error(client, "GET", path, &response, message);
	else
		r = kube_parse_body(client, path, &response.body, out);
	kube_response_release(&response);
	return r;
}
