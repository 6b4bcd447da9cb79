/*
 * The Kubernetes API client: kubeconfig, HTTP through libcurl, discovery,
 * reads, lists and server-side apply.
 *
 * Results are 0 or negative codes from common/error.h:
 *   MLB_EUNREACHABLE  no HTTP answer after the retries (connection refused,
 *                     timed out, DNS); the message names the server URL;
 *   MLB_EDENIED       TLS verification failed, 401 or 403;
 *   MLB_EINPUT        a kubeconfig that is invalid or contradicts itself;
 *   MLB_EFAILED       any other HTTP error status (the Status message is
 *                     logged and kept in kube_response.body).
 * Calls block for at most the client's request timeout times the retries;
 * the defaults are in kube_client_options_default.
 *
 * Secrets (tokens, client keys, exec plugin output) live in buffers that
 * are wiped when released and are never logged at any level.
 */
#ifndef MLBOOT_BOOTSTRAP_KUBE_H
#define MLBOOT_BOOTSTRAP_KUBE_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "common.h"

struct kubeconfig_options {
	/* --kubeconfig; NULL: each file of $KUBECONFIG merged, else ~/.kube/config, else in-cluster. */
	const char *path;
	/* --context; NULL: current-context. */
	const char *context;
	/* A kubeconfig held in memory (for example fetched over SSH); used instead of files when set. */
	const char *data;
	size_t data_len;
	const char *data_name;   /* shown in messages in place of a file name */
};

/* An exec credential plugin as the kubeconfig's user names it. */
struct kube_exec {
	char *command;
	char **args;             /* NULL-terminated */
	char **env;              /* NULL-terminated "NAME=value" */
	char *api_version;       /* client.authentication.k8s.io/v1 or v1beta1 */
	char *interactive_mode;  /* Never or IfAvailable; mlboot never prompts */
	char *install_hint;      /* shown when the command cannot be run; may be NULL */
	bool provide_cluster_info;   /* pass the cluster in KUBERNETES_EXEC_INFO */
};

/* What one context of a kubeconfig resolves to. */
struct kube_credentials {
	char *source;            /* the kubeconfig file (or data_name) that set the context */
	char *context_name;
	char *cluster_name;
	char *user_name;
	char *server;            /* https://host:port, no trailing slash */
	char *tls_server_name;
	char *proxy_url;
	bool insecure_skip_tls_verify;
	struct buf ca_pem;       /* empty: the system's CA store */
	struct buf client_cert_pem;
	struct buf client_key_pem;   /* secret */
	char *token;             /* secret */
	char *token_file;        /* read at every client start */
	struct kube_exec *exec;  /* NULL unless the user has an exec plugin */
	char *default_namespace; /* the context's namespace, else "default" */
};

int kubeconfig_load(const struct kubeconfig_options *options, struct kube_credentials *out);
/* The in-cluster service account, from the given folder (normally /var/run/secrets/kubernetes.io/serviceaccount). */
int kubeconfig_in_cluster(const char *service_account_dir, struct kube_credentials *out);
void kube_credentials_release(struct kube_credentials *credentials);

struct kube_client_options {
	long connect_timeout_ms;
	long request_timeout_ms;
	unsigned max_retries;        /* further attempts after the first */
	long max_retry_delay_ms;     /* cap on backoff and on Retry-After */
};
extern const struct kube_client_options kube_client_options_default;

struct kube_client;

/* The client copies what it needs from credentials. options may be NULL. */
int kube_client_new(const struct kube_credentials *credentials,
		    const struct kube_client_options *options, struct kube_client **out);
void kube_client_free(struct kube_client *client);
/* The server URL, for messages. */
const char *kube_client_server(const struct kube_client *client);

struct kube_response {
	long status;             /* HTTP status */
	struct buf body;
	double seconds;          /* time of the last attempt */
	unsigned attempts;
};
void kube_response_release(struct kube_response *response);

/*
 * Sends one request, retrying connection errors, 429 and 5xx with backoff
 * (honouring Retry-After). Returns 0 whenever an HTTP answer arrived,
 * whatever its status, so the caller can read it; MLB_EUNREACHABLE or
 * MLB_EDENIED (TLS) when none did.
 */
int kube_request(struct kube_client *client, const char *method, const char *path,
		 const char *content_type, const void *body, size_t body_len,
		 struct kube_response *response);

/* Reads the "message" of a Status response body into a new string; NULL when there is none. */
char *kube_status_message(const struct buf *body);

/*
 * GET path and parse the JSON answer. A non-2xx status is an error:
 * MLB_EDENIED for 401/403, -ENOENT for 404, MLB_EFAILED otherwise, with the
 * Status message logged at debug level and returned in *message when
 * message is not NULL (caller frees).
 */
int kube_get(struct kube_client *client, const char *path, struct doc_node **out, char **message);

/* Times kube_list starts a list again after its continue token expired. */
#define KUBE_LIST_RESTARTS_MAX 3

/*
 * Calls each() for every item of a list, following "continue" tokens
 * (limit 500 a page), and stops at the first non-zero result of each(),
 * which it returns. each() runs only once every page has arrived, so a
 * list of several pages is held in memory (the pages before the last as
 * JSON text). When a page gets 410 with reason Expired because its
 * continue token is too old, the list starts again from the first page
 * and drops the pages read so far. So each() gets every item once, from
 * one consistent pass. After KUBE_LIST_RESTARTS_MAX restarts it fails
 * with MLB_EFAILED.
 */
int kube_list(struct kube_client *client, const char *path,
	      int (*each)(const struct doc_node *item, void *userdata), void *userdata);

/* A resource as discovery reports it. */
struct kube_resource {
	char *group;             /* "" for the core group */
	char *version;
	char *kind;
	char *name;              /* plural, as used in paths */
	bool namespaced;
};

/* Reads /api and /apis and every group version once; refresh forces a new read. */
int kube_discover(struct kube_client *client, bool refresh);
/*
 * Finds the resource for apiVersion and kind, reading discovery when
 * needed and once more on a miss (CRDs register new kinds). -ENOENT when
 * the server does not serve it. *out stays valid until kube_client_free().
 */
int kube_resource_find(struct kube_client *client, const char *api_version, const char *kind,
		       const struct kube_resource **out);
/*
 * The path of an object (its name included) or, with name NULL, of its
 * collection. namespace is ignored for cluster-scoped resources; a
 * namespaced resource with a NULL or empty namespace gets the collection
 * across all namespaces.
 */
int kube_resource_path(const struct kube_resource *resource, const char *namespace,
		       const char *name, char **out);

enum {
	KUBE_APPLY_DRY_RUN = 1 << 0,   /* dryRun=All: the server validates, nothing is stored */
};

/*
 * Server-side apply of one object: PATCH with application/apply-patch+yaml,
 * fieldManager=mlboot, force=true. A namespaced object without a namespace
 * gets default_namespace. On success *result (when not NULL) holds the
 * object the server returned. On an HTTP error the Status message goes to
 * *message (when not NULL), so callers can retry webhook rejections.
 */
int kube_apply(struct kube_client *client, const struct doc_node *object,
	       const char *default_namespace, unsigned flags,
	       struct doc_node **result, long *status, char **message);

/* DELETE of one object; a missing object is success. */
int kube_delete(struct kube_client *client, const char *api_version, const char *kind,
		const char *namespace, const char *name);

/* SelfSubjectAccessReview: may the current user do verb on group/resource? "*" allowed. */
int kube_access_review(struct kube_client *client, const char *verb, const char *group,
		       const char *resource, const char *namespace, bool *allowed, char **reason);

struct kube_version {
	int major;
	int minor;
	int patch;
	bool pre_release;        /* -alpha.N, -beta.N or -rc.N; vendor suffixes are not */
	char git_version[64];
};
/* GET /version. */
int kube_server_version(struct kube_client *client, struct kube_version *out);
/*
 * Parses a server version from gitVersion ("v1.27.3+k3s1", "v1.28.2-eks-a5df82a",
 * "v1.29.1-gke.1") and the major/minor fields (minor may be "27+"). A vendor
 * suffix is not a pre-release. Returns MLB_EINPUT when neither form parses.
 */
int kube_version_parse(const char *git_version, const char *major, const char *minor,
		       struct kube_version *out);

/*
 * Returns the message of the last kube_* or kubeconfig_* call that failed in this
 * thread: what failed, on which file, server or object, and what to do.
 * Library calls log it at debug level only, so the caller logs it once,
 * for example log_errno(LOG_ERR, r, "%s", kube_last_error()).
 */
const char *kube_last_error(void);

/* Reads a token file (at most 64 KiB) and trims trailing white space. */
int kube_token_file_read(const char *path, char **out);

/* Credential that an exec plugin printed: a token, or a client certificate and key. */
struct kube_exec_credential {
	char *token;                 /* secret */
	struct buf client_cert_pem;
	struct buf client_key_pem;   /* secret */
	time_t expiry;               /* expirationTimestamp; 0 when the plugin gave none */
};

/* Time an exec credential plugin may run before it is killed. */
#define KUBE_EXEC_TIMEOUT_MS 60000L

/*
 * Runs credentials->exec with its args and env plus KUBERNETES_EXEC_INFO,
 * stdin from /dev/null, and reads an ExecCredential from its stdout (at
 * most 1 MiB). Blocks until the plugin exits or timeout_ms passes (0:
 * KUBE_EXEC_TIMEOUT_MS), then kills its process group. Returns
 * MLB_EDENIED when the plugin cannot run, fails or times out, and
 * MLB_EINPUT when its output is not an ExecCredential of the configured
 * apiVersion or contains neither a token nor a certificate and key.
 */
int kube_exec_credential_get(const struct kube_credentials *credentials, long timeout_ms,
			     struct kube_exec_credential *out);
void kube_exec_credential_release(struct kube_exec_credential *credential);

/* Counters of one client, for benchmarks and tests. */
struct kube_client_stats {
	unsigned long requests;      /* HTTP requests sent, retries included */
	unsigned long retries;
	unsigned long connections;   /* TCP connections libcurl opened */
	unsigned long list_restarts; /* lists started again after an expired continue token */
};
void kube_client_get_stats(const struct kube_client *client, struct kube_client_stats *out);

/* Splits "group/version" or "v1" (the core group: group "") into new strings. */
int kube_api_version_split(const char *api_version, char **group, char **version);
/* Writes the discovery path of a group version: /api/v1 for the core group, else /apis/GROUP/VERSION. */
int kube_group_version_path(const char *group, const char *version, char **out);

#endif
