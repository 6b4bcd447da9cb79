/*
 * HTTP and HTTPS requests to the platform's endpoints (the ingress gateway,
 * the model, Argo CD), with libcurl. They go straight to the address the
 * Service reports: never through a proxy, since a proxy outside the
 * cluster could neither reach it nor stand for it.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

#include "check.h"

#define CONNECT_TIMEOUT_MS 5000L

void check_http_response_init(struct check_http_response *response)
{
	memset(response, 0, sizeof(*response));
	buf_init(&response->body, CHECK_HTTP_BODY_MAX);
}

void check_http_response_release(struct check_http_response *response)
{
	buf_release(&response->body);
}

static size_t write_body(char *data, size_t size, size_t count, void *userdata)
{
	struct check_http_response *response = userdata;
	size_t len = size * count;

	if (buf_append(&response->body, data, len) < 0) {
		response->body_truncated = true;
		/* Keep what fits: the evidence quotes the start, and the evaluation rejects a cut body. */
		if (response->body.len < response->body.max) {
			size_t room = response->body.max - response->body.len;

			buf_append(&response->body, data, room < len ? room : len);
		}
	}
	return len;
}

/* Copies a header's value (trimmed) into out when the line is "name: value". */
static void take_header(const char *line, size_t len, const char *name, char *out, size_t size)
{
	size_t name_len = strlen(name);
	size_t start, end;

	if (len <= name_len || strncasecmp(line, name, name_len) != 0 || line[name_len] != ':')
		return;
	start = name_len + 1;
	while (start < len && (line[start] == ' ' || line[start] == '\t'))
		start++;
	end = len;
	while (end > start && (line[end - 1] == '\r' || line[end - 1] == '\n' || line[end - 1] == ' '))
		end--;
	if (end - start >= size)
		end = start + size - 1;
	memcpy(out, line + start, end - start);
	out[end - start] = '\0';
}

static size_t read_header(char *data, size_t size, size_t count, void *userdata)
{
	struct check_http_response *response = userdata;
	size_t len = size * count;

	/* A new status line (after 100 Continue) starts the headers over. */
	if (len >= 5 && strncmp(data, "HTTP/", 5) == 0) {
		response->server[0] = '\0';
		response->content_type[0] = '\0';
		response->location[0] = '\0';
	}
	take_header(data, len, "Server", response->server, sizeof(response->server));
	take_header(data, len, "Content-Type", response->content_type, sizeof(response->content_type));
	take_header(data, len, "Location", response->location, sizeof(response->location));
	return len;
}

/* Clears what an earlier request left in response. */
static void reset_response(struct check_http_response *response)
{
	buf_reset(&response->body);
	response->status = 0;
	response->body_truncated = false;
	response->certificate_rejected = false;
	response->server[0] = response->content_type[0] = response->location[0] = response->error[0] = '\0';
	response->seconds = 0;
}

/* Sets the options that every request shares: no proxy, no redirects, the time limits and the callbacks. */
static void set_common_options(CURL *curl, const char *url, long timeout_s, struct check_http_response *response,
			       char *error)
{
	curl_easy_setopt(curl, CURLOPT_URL, url);
	curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(curl, CURLOPT_PROXY, "");
	curl_easy_setopt(curl, CURLOPT_NOPROXY, "*");
	curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, CONNECT_TIMEOUT_MS);
	curl_easy_setopt(curl, CURLOPT_TIMEOUT, timeout_s > 0 ? timeout_s : 15L);
	curl_easy_setopt(curl, CURLOPT_USERAGENT, "mlboot-check/" MLBOOT_VERSION);
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, write_body);
	curl_easy_setopt(curl, CURLOPT_WRITEDATA, response);
	curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, read_header);
	curl_easy_setopt(curl, CURLOPT_HEADERDATA, response);
	curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, error);
}

/* Runs the request and fills response. Returns 0 when a response arrived, else MLB_EUNREACHABLE. */
static int perform(CURL *curl, const char *method, const char *url, const char *error,
		   struct check_http_response *response)
{
	CURLcode code = curl_easy_perform(curl);

	curl_easy_getinfo(curl, CURLINFO_TOTAL_TIME, &response->seconds);
	if (code == CURLE_OK) {
		curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &response->status);
		return 0;
	}
	/* curl 7.88 reports an untrusted chain and a name mismatch both as CURLE_PEER_FAILED_VERIFICATION. */
	response->certificate_rejected = code == CURLE_PEER_FAILED_VERIFICATION;
	snprintf(response->error, sizeof(response->error), "%s", error[0] ? error : curl_easy_strerror(code));
	log_debug("check: %s %s: %s", method, url, response->error);
	return MLB_EUNREACHABLE;
}

int check_http_request(const struct check_address *address, const char *host_header,
		       const char *path, const char *json_body, long timeout_s,
		       struct check_http_response *response)
{
	char url[512], host_line[400], error[CURL_ERROR_SIZE] = "";
	struct curl_slist *headers = NULL, *more;
	bool ipv6 = strchr(address->host, ':') != NULL;
	CURL *curl = curl_easy_init();
	int r;

	reset_response(response);
	if (!curl)
		return -ENOMEM;
	snprintf(url, sizeof(url), "http://%s%s%s:%u%s", ipv6 ? "[" : "", address->host, ipv6 ? "]" : "",
		 address->port, path);
	if (host_header) {
		snprintf(host_line, sizeof(host_line), "Host: %s", host_header);
		more = curl_slist_append(headers, host_line);
		headers = more ? more : headers;
	}
	if (json_body) {
		more = curl_slist_append(headers, "Content-Type: application/json");
		headers = more ? more : headers;
	}
	more = curl_slist_append(headers, "Accept: application/json, */*");
	headers = more ? more : headers;

	set_common_options(curl, url, timeout_s, response, error);
	curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http");
	curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
	if (json_body) {
		curl_easy_setopt(curl, CURLOPT_POSTFIELDS, json_body);
		curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, (long)strlen(json_body));
	}

	r = perform(curl, json_body ? "POST" : "GET", url, error, response);
	curl_slist_free_all(headers);
	curl_easy_cleanup(curl);
	return r;
}

int check_https_request(const struct check_address *address, const struct check_tls *tls, const char *path,
			long timeout_s, struct check_http_response *response)
{
	char url[900], connect_to[700], error[CURL_ERROR_SIZE] = "";
	struct curl_blob trust = { (void *)tls->ca_pem, tls->ca_pem_len, CURL_BLOB_COPY };
	struct curl_slist *route = NULL;
	bool ipv6 = strchr(address->host, ':') != NULL;
	CURL *curl;
	int r;

	reset_response(response);
	if (!tls->server_name[0] || strchr(tls->server_name, ':') || tls->ca_pem_len == 0)
		return -EINVAL;
	curl = curl_easy_init();
	if (!curl)
		return -ENOMEM;
	/*
	 * The URL names the server so that curl sends it as SNI and verifies the
	 * certificate against it. CONNECT_TO sends the connection to the
	 * Service's address, so the name need not resolve on this machine.
	 */
	snprintf(url, sizeof(url), "https://%s:%u%s", tls->server_name, address->port, path);
	snprintf(connect_to, sizeof(connect_to), "%s:%u:%s%s%s:%u", tls->server_name, address->port,
		 ipv6 ? "[" : "", address->host, ipv6 ? "]" : "", address->port);
	route = curl_slist_append(NULL, connect_to);
	if (!route) {
		curl_easy_cleanup(curl);
		return -ENOMEM;
	}

	set_common_options(curl, url, timeout_s, response, error);
	curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "https");
	curl_easy_setopt(curl, CURLOPT_CONNECT_TO, route);
	curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, 2L);
	/*
	 * The certificates of tls->ca_pem are the only trust anchors, because
	 * CAINFO_BLOB replaces CAINFO and CAPATH is cleared.
	 */
	curl_easy_setopt(curl, CURLOPT_CAINFO_BLOB, &trust);
	curl_easy_setopt(curl, CURLOPT_CAPATH, NULL);

	r = perform(curl, "GET", url, error, response);
	curl_slist_free_all(route);
	curl_easy_cleanup(curl);
	return r;
}

/* Whether text, of len bytes, can go into a request line: printable ASCII without spaces or '#'. */
static bool path_is_valid(const char *text, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (text[i] <= ' ' || text[i] >= 0x7f || text[i] == '#')
			return false;
	return true;
}

bool check_redirect_to_https(const char *location, const char *host, char *path, size_t path_size)
{
	static const char scheme[] = "https://";
	const char *authority, *authority_end, *host_end, *rest;
	size_t host_len = strlen(host), rest_len;
	bool ipv6 = strchr(host, ':') != NULL;

	if (path_size > 0)
		path[0] = '\0';
	if (!location || strncasecmp(location, scheme, sizeof(scheme) - 1) != 0 || host_len == 0)
		return false;
	authority = location + sizeof(scheme) - 1;
	authority_end = authority + strcspn(authority, "/?#");
	/* An IPv6 address is in brackets, and the port, if any, follows the last ':' after the host. */
	if (ipv6) {
		if (authority[0] != '[' || (size_t)(authority_end - authority) < host_len + 2 ||
		    strncasecmp(authority + 1, host, host_len) != 0 || authority[host_len + 1] != ']')
			return false;
		host_end = authority + host_len + 2;
	} else {
		if ((size_t)(authority_end - authority) < host_len || strncasecmp(authority, host, host_len) != 0)
			return false;
		host_end = authority + host_len;
	}
	if (host_end != authority_end) {
		/* Only a port may follow the host. */
		if (host_end[0] != ':' || host_end + 1 == authority_end ||
		    strspn(host_end + 1, "0123456789") != (size_t)(authority_end - host_end - 1))
			return false;
	}
	rest = authority_end;
	rest_len = strcspn(rest, "#");
	if (!path_is_valid(rest, rest_len))
		return false;
	if (rest_len == 0 || rest[0] == '?') {
		/* "https://host" and "https://host?q" request the root path. */
		if (rest_len + 2 > path_size)
			return false;
		path[0] = '/';
		memcpy(path + 1, rest, rest_len);
		path[rest_len + 1] = '\0';
		return true;
	}
	if (rest_len + 1 > path_size)
		return false;
	memcpy(path, rest, rest_len);
	path[rest_len] = '\0';
	return true;
}
