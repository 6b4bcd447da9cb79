/*
 * Plain HTTP requests to the platform's endpoints (the ingress gateway,
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
	}
	take_header(data, len, "Server", response->server, sizeof(response->server));
	take_header(data, len, "Content-Type", response->content_type, sizeof(response->content_type));
	return len;
}

int check_http_request(const struct check_address *address, const char *host_header,
		       const char *path, const char *json_body, long timeout_s,
		       struct check_http_response *response)
{
	char url[512], host_line[400], error[CURL_ERROR_SIZE] = "";
	struct curl_slist *headers = NULL, *more;
	bool ipv6 = strchr(address->host, ':') != NULL;
	CURL *curl = curl_easy_init();
	CURLcode code;
	int r = MLB_EUNREACHABLE;

	buf_reset(&response->body);
	response->status = 0;
	response->body_truncated = false;
	response->server[0] = response->content_type[0] = response->error[0] = '\0';
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

	curl_easy_setopt(curl, CURLOPT_URL, url);
	curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http");
	curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(curl, CURLOPT_PROXY, "");
	curl_easy_setopt(curl, CURLOPT_NOPROXY, "*");
	curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, CONNECT_TIMEOUT_MS);
	curl_easy_setopt(curl, CURLOPT_TIMEOUT, timeout_s > 0 ? timeout_s : 15L);
	curl_easy_setopt(curl, CURLOPT_USERAGENT, "mlboot-check/" MLBOOT_VERSION);
	curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, write_body);
	curl_easy_setopt(curl, CURLOPT_WRITEDATA, response);
	curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, read_header);
	curl_easy_setopt(curl, CURLOPT_HEADERDATA, response);
	curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, error);
	if (json_body) {
		curl_easy_setopt(curl, CURLOPT_POSTFIELDS, json_body);
		curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, (long)strlen(json_body));
	}

	code = curl_easy_perform(curl);
	curl_easy_getinfo(curl, CURLINFO_TOTAL_TIME, &response->seconds);
	if (code == CURLE_OK) {
		curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &response->status);
		r = 0;
	} else {
		snprintf(response->error, sizeof(response->error), "%s", error[0] ? error : curl_easy_strerror(code));
		log_debug("check: %s %s: %s", json_body ? "POST" : "GET", url, response->error);
	}
	curl_slist_free_all(headers);
	curl_easy_cleanup(curl);
	return r;
}
