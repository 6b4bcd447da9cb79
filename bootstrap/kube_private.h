/*
 * Definitions shared by the Kubernetes API client's own files: the client
 * structure and the error message helper. Other modules use kube.h only.
 */
#ifndef MLBOOT_BOOTSTRAP_KUBE_PRIVATE_H
#define MLBOOT_BOOTSTRAP_KUBE_PRIVATE_H

#include <stdbool.h>
#include <time.h>

#include <curl/curl.h>

#include "kube.h"

/* Maximum size of a response body and of a request body. */
#define KUBE_RESPONSE_MAX (256UL * 1024 * 1024)
#define KUBE_REQUEST_MAX (64UL * 1024 * 1024)
/* Page size (the limit parameter) of list requests. */
#define KUBE_LIST_PAGE_SIZE 500
#define KUBE_FIELD_MANAGER "mlboot"

/* One resource of the discovery cache; resource must stay the first member. */
struct kube_discovered {
	struct kube_resource resource;
	bool served;             /* false once a refresh no longer lists it */
};

struct kube_client {
	CURL *curl;
	char error_buffer[CURL_ERROR_SIZE];
	struct kube_client_options options;

	char *server;            /* as the kubeconfig gives it, for messages */
	char *cluster_name;
	char *user_name;
	char *source;            /* the kubeconfig that set the context */
	char *url_base;          /* server with the host replaced by tls-server-name */
	char *connect_to;        /* CURLOPT_CONNECT_TO entry when tls-server-name is set */
	char *proxy_url;
	bool no_proxy;           /* loopback server without proxy-url: ignore *_proxy variables */
	bool insecure_skip_tls_verify;
	char *user_agent;
	struct buf ca_pem;
	struct buf client_cert_pem;
	struct buf client_key_pem;   /* secret */
	char *token;                 /* secret */
	char *token_file;
	/* A copy of the credentials, kept to run the exec plugin again. */
	struct kube_credentials *exec_credentials;
	time_t exec_expiry;

	struct kube_discovered **resources;
	size_t resource_count;
	size_t resource_capacity;
	bool discovered;

	struct kube_client_stats stats;
	unsigned jitter_seed;
};

/*
 * Stores the message kube_last_error() returns and logs it at debug level;
 * returns r so that "return kube_fail(r, ...)" sets and propagates.
 */
int kube_fail(int r, const char *format, ...) __attribute__((format(printf, 2, 3)));

/*
 * Maps a non-2xx response to a result code and a message naming the request:
 * MLB_EDENIED for 401 and 403, -ENOENT for 404, MLB_EFAILED otherwise.
 * Sets kube_last_error() and, when message is not NULL, a copy in *message.
 */
int kube_http_error(struct kube_client *client, const char *method, const char *path,
		    const struct kube_response *response, char **message);
/* Parses a JSON body into a tree. */
int kube_parse_body(struct kube_client *client, const char *path, const struct buf *body,
		    struct doc_node **out);
/* Percent-encodes one path segment or query value into a new string. */
char *kube_escape(const char *text);

/* Overwrites every scalar of a tree before it is freed: kubeconfigs and plugin output hold tokens and keys. */
void kube_doc_wipe(struct doc_node *node);

void kube_discovery_release(struct kube_client *client);

#endif
