/*
 * mlboot check: the final checks of an installed platform.
 *
 * What the platform should contain comes from the bundle (its components,
 * the objects their manifests create, its images and the Kubernetes
 * versions it supports) or, without a bundle, from the objects on the
 * cluster that carry mlboot's labels. check_run() then sends requests to
 * the API server, the nodes (over SSH) and the platform's own endpoints
 * (over HTTP) to test whether the platform works, and adds one result per
 * check to a report. docs/check.md lists every check id.
 *
 * Every check runs, also after others failed. When the API server cannot
 * be used, the checks that need it are added as skipped with the reason;
 * the node checks still run.
 *
 * The evaluation functions below are pure: they take what the API server,
 * a node or an endpoint returned and fill a finding, so that unit tests
 * can run them without a cluster. Results are 0 or negative codes from
 * common/error.h.
 */
#ifndef MLBOOT_BOOTSTRAP_CHECK_H
#define MLBOOT_BOOTSTRAP_CHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "airgap.h"
#include "common.h"
#include "config.h"
#include "kube.h"
#include "preflight.h"
#include "report.h"

/* The labels that mlboot install puts on every object it applies. */
#define CHECK_LABEL_MANAGED_BY       "app.kubernetes.io/managed-by"
#define CHECK_LABEL_COMPONENT        "mlboot.dev/component"
#define CHECK_LABEL_PLATFORM_VERSION "mlboot.dev/platform-version"
/* The label that pins an image in containerd against kubelet's image garbage collection. */
#define CHECK_PINNED_LABEL           "io.cri-containerd.pinned=pinned"

#define CHECK_DEFAULT_RESTART_WARN   5
#define CHECK_DEFAULT_MIN_FREE       (10ULL << 30)
/* Seconds the test certificate may take to be issued. */
#define CHECK_DEFAULT_TIMEOUT        120
/* The sample model that mlboot install deploys when the bundle names no InferenceService. */
#define CHECK_DEFAULT_MODEL_NAMESPACE "ml"
#define CHECK_DEFAULT_MODEL_NAME      "iris"

/* Limits on what the checks read. */
#define CHECK_MANIFEST_MAX     (64u * 1024 * 1024)   /* one manifest file of the bundle */
#define CHECK_OBJECTS_MAX      100000u               /* expected objects, pods, images */
#define CHECK_HTTP_BODY_MAX    (1024u * 1024)
#define CHECK_MAX_LISTED       20                    /* names in one piece of evidence */
#define CHECK_CTR_OUTPUT_MAX   (16u * 1024 * 1024)

enum check_object_kind {
	CHECK_OBJECT_CRD,
	CHECK_OBJECT_DEPLOYMENT,
	CHECK_OBJECT_STATEFULSET,
	CHECK_OBJECT_DAEMONSET,
	CHECK_OBJECT_MUTATING_WEBHOOK,
	CHECK_OBJECT_VALIDATING_WEBHOOK,
	CHECK_OBJECT_SERVICE,
	CHECK_OBJECT_INFERENCE_SERVICE,
	CHECK_OBJECT_NAMESPACE,
	CHECK_OBJECT_KIND_COUNT,
};

/* One object the platform should have. */
struct check_object {
	enum check_object_kind kind;
	char *namespace;           /* NULL for cluster-scoped kinds */
	char *name;
	long long replicas;        /* Deployments and StatefulSets: spec.replicas as shipped, default 1 */
};

struct check_component {
	char *name;
	char *version;             /* may be NULL */
	char *namespace;           /* the component's default namespace; may be NULL */
	struct check_object *objects;
	size_t object_count;
	char **images;             /* normalised names of the images it lists; from a bundle only */
	size_t image_count;
};

/* An image of the bundle. */
struct check_image {
	char *name;                /* normalised registry/repository:tag */
	char *digest;              /* "sha256:HEX" of its manifest or index */
	char *component;           /* the first component that lists it; may be NULL */
};

/* The expected platform: its components, objects, images and Kubernetes versions. */
struct check_platform {
	bool from_bundle;          /* false: from the mlboot labels on the cluster */
	char *description;         /* for the report: the bundle, its platform and version */
	char *name;                /* platform name and version; may be NULL */
	char *version;
	bool have_version_range;
	struct kube_version min_version;
	struct kube_version max_version;
	enum bundle_signature_state signature;
	char key_id[SHA256_HEX_LEN + 1];
	struct check_component *components;
	size_t component_count;
	struct check_image *images;
	size_t image_count;
};

void check_platform_release(struct check_platform *platform);

/*
 * Reads the expected platform from a bundle: the index (components,
 * versions, images) and every manifest of every component, which are
 * streamed from the bundle, checked against their hashes and parsed.
 * Namespaced objects without a namespace are counted in the component's
 * namespace. trust may be NULL; an unsigned bundle, or one signed by a
 * key that is not trusted, is read (the signature state is recorded for
 * the report), but a signature that is wrong is not. Problems go to
 * report. Returns 0, MLB_EINTEGRITY, MLB_EINPUT or -errno.
 */
int check_platform_from_bundle(const char *path, const struct bundle_trust *trust,
			       struct check_platform *out, struct bundle_report *report);

/*
 * Narrows a platform read from a bundle to what mlboot.yaml installs: the
 * components spec.components lists (every component without it), with the
 * sample model's objects moved to sampleModel.namespace when it is given.
 * A listed component that the bundle lacks is a problem added to problems,
 * named after bundle. Returns 0, MLB_EINPUT or -ENOMEM.
 */
int check_platform_select(struct check_platform *platform, const struct config *config, const char *bundle,
			  struct config_problems *problems);

/*
 * Fills the expected platform from the objects on the cluster labelled
 * app.kubernetes.io/managed-by=mlboot, grouped by mlboot.dev/component.
 * Kinds the server does not serve are left out.
 */
int check_platform_from_labels(struct kube_client *client, struct check_platform *out);

/*
 * Adds the objects of one manifest document to a component: CRDs,
 * Deployments, StatefulSets, DaemonSets, webhook configurations,
 * Services, InferenceServices and Namespaces; other kinds are ignored.
 */
int check_component_add_document(struct check_component *component, const struct doc_node *document);

/* Settings of one run. */
struct check_options {
	struct preflight_cluster_options cluster;
	const struct config *config;       /* NULL: no node checks */
	bool accept_new_host_keys;
	unsigned restart_warn;             /* restarts of a pod above this warn */
	uint64_t min_free;                 /* bytes each node needs free under /var/lib/containerd */
	unsigned timeout;                  /* seconds for the test certificate */
	/* May connect to ClusterIPs: only where this machine is on the cluster's service network. */
	bool cluster_ips;
	const char *model_namespace;       /* the sample model when the bundle names none */
	const char *model_name;
	/*
	 * Not 0 when the kubeconfig of mlboot.yaml could not be fetched, which
	 * the report already states. The API checks are then skipped and
	 * check_run() returns this result.
	 */
	int kubeconfig_failure;
};

void check_options_init(struct check_options *options);

/*
 * Runs every check and adds the results to report. platform states what
 * to expect; when platform->from_bundle is false and the API server is
 * reachable, it is filled from the labels first. Returns 0 when the API
 * server could be used and every node was reached (whatever the checks
 * found), MLB_EUNREACHABLE, MLB_EDENIED or MLB_EINPUT when the API server
 * could not be used or a node not reached, or -ENOMEM.
 */
int check_run(const struct check_options *options, struct check_platform *platform,
	      struct report *report);

/* ---- Pure evaluations, for the checks and the unit tests ---------------- */

/*
 * "a, b, c" and, past CHECK_MAX_LISTED entries, " and N more" after them:
 * call check_list_add() for each entry and check_list_finish() once.
 */
struct check_list {
	struct buf *out;
	size_t count;
};
int check_list_add(struct check_list *list, const char *format, ...)
	__attribute__((format(printf, 2, 3)));
int check_list_finish(const struct check_list *list);

/* Whether a condition of type is "True" in object.status.conditions. */
bool check_condition_true(const struct doc_node *object, const char *type);
/* The status of a condition of type ("True", "False", "Unknown") or NULL; message and reason when asked. */
const char *check_condition_status(const struct doc_node *object, const char *type,
				   const char **reason, const char **message);

enum check_workload_state {
	CHECK_WORKLOAD_READY,
	CHECK_WORKLOAD_MISSING,
	CHECK_WORKLOAD_SCALED_TO_ZERO,   /* a Deployment or StatefulSet with spec.replicas 0 */
	CHECK_WORKLOAD_NOT_READY,
};

/*
 * Evaluates one workload against the replicas the bundle ships. object is
 * the live Deployment, StatefulSet or DaemonSet, or NULL when it is
 * missing. Appends "ns/name: what is wrong" to problems unless it is
 * ready. A Deployment or StatefulSet scaled to 0 is not ready, since the
 * platform needs its pods, and neither is a DaemonSet scheduled on no node.
 */
enum check_workload_state check_workload_state(enum check_object_kind kind, const struct check_object *expected,
					       const struct doc_node *object, struct buf *problems);

/* Evaluates one CRD: Established and NamesAccepted. Appends the problem as check_workload_state() does. */
bool check_crd_ready(const char *name, const struct doc_node *object, struct buf *problems);

/* The state of one pod, for the pod check. */
struct check_pod_state {
	bool running;
	bool ready;
	long long restarts;        /* the sum over its containers */
	const char *phase;
	const char *waiting_reason;  /* of the first container that waits, such as CrashLoopBackOff */
};
void check_pod_state(const struct doc_node *pod, struct check_pod_state *out);

/*
 * Evaluates one webhook of a webhook configuration: a caBundle that contains
 * at least one PEM certificate. Appends the problem as above.
 */
bool check_webhook_ca_bundle(const char *configuration, const struct doc_node *webhook,
			     struct buf *problems);

/*
 * Checks the Secret that cert-manager wrote for a Certificate: tls.crt is a
 * PEM certificate valid now and for dns_name, and tls.key is its private
 * key. Appends what was found, or the first problem, to out and returns
 * whether every test held.
 */
bool check_certificate_secret(const struct doc_node *secret, const char *dns_name, struct buf *out);

/*
 * Counts the ready endpoints of an EndpointSlice (an endpoint whose ready
 * condition is missing counts as ready, as the EndpointSlice API documents) or
 * the ready addresses of an Endpoints object.
 */
size_t check_endpoint_slice_ready_count(const struct doc_node *slice);
size_t check_endpoints_ready_count(const struct doc_node *endpoints);

/* The address and port at which this machine reaches a Service. */
struct check_address {
	char host[256];
	unsigned port;
	const char *source;        /* "load balancer", "external IP", "cluster IP" */
};

/*
 * Picks the address of a Service and the port named port_name (or, when
 * port_name is NULL or missing, the port number port_number, else the
 * first port): status.loadBalancer.ingress (ip, else hostname), then
 * spec.externalIPs, then spec.clusterIP when cluster_ips is set. Returns
 * -ENOENT when there is none, with *reason saying why.
 */
int check_service_address(const struct doc_node *service, const char *port_name, unsigned port_number,
			  bool cluster_ips, struct check_address *out, const char **reason);

/* Deep equality of two documents; numbers compare by value, so 1 equals 1.0. */
bool check_document_equal(const struct doc_node *a, const struct doc_node *b);

/* An HTTP response as the probes keep it. */
struct check_http_response {
	long status;               /* 0 when no response arrived */
	char server[128];          /* the Server header, "" when absent */
	char content_type[128];
	char location[1024];       /* the Location header, "" when absent; longer values are cut */
	struct buf body;           /* at most CHECK_HTTP_BODY_MAX bytes */
	bool body_truncated;
	char error[256];           /* why no response arrived */
	bool certificate_rejected; /* no response because the server's certificate failed verification */
	double seconds;
};
void check_http_response_init(struct check_http_response *response);
void check_http_response_release(struct check_http_response *response);

/*
 * Sends one HTTP request to http://HOST:PORT/PATH with the given Host
 * header (NULL: HOST), and an optional JSON body (POST when set, else GET).
 * No proxy is used and redirects are not followed. Connecting is bounded
 * to 5 s and the whole request to timeout_s. Returns 0 when a response
 * arrived, whatever its status; MLB_EUNREACHABLE otherwise, with
 * response->error set.
 */
int check_http_request(const struct check_address *address, const char *host_header,
		       const char *path, const char *json_body, long timeout_s,
		       struct check_http_response *response);

/* The TLS settings of an HTTPS request. */
struct check_tls {
	const char *server_name;   /* sent as SNI and Host, and the name the certificate must be valid for */
	const char *ca_pem;        /* PEM certificates that are the only trust anchors, not NUL-terminated */
	size_t ca_pem_len;
};

/*
 * Sends GET https://SERVER_NAME:PORT/PATH to the address's host and port,
 * with SERVER_NAME from tls, and verifies the server's certificate against
 * tls->ca_pem only (a self-signed certificate there is its own anchor) and
 * against SERVER_NAME. Verification is never turned off. Otherwise as
 * check_http_request(): returns 0 when a response arrived, MLB_EUNREACHABLE
 * otherwise, with response->certificate_rejected set when the certificate
 * failed verification, and -EINVAL for an empty name, a name with ':' or
 * an empty trust anchor.
 */
int check_https_request(const struct check_address *address, const struct check_tls *tls, const char *path,
			long timeout_s, struct check_http_response *response);

/*
 * Decides whether a Location header redirects a plain HTTP request sent to
 * host onto HTTPS at the same host: https://HOST[:PORT][/PATH][?QUERY],
 * with HOST equal to host ignoring case (an IPv6 address in brackets). On
 * true, path gets "/PATH?QUERY" ("/" when the Location has none), without
 * any fragment. A path with spaces or control characters, or one longer
 * than path_size, gives false.
 */
bool check_redirect_to_https(const char *location, const char *host, char *path, size_t path_size);

/* Whether a Server header names Envoy, as the Istio ingress gateway sends it ("istio-envoy", "envoy"). */
bool check_server_is_envoy(const char *server);

/*
 * Evaluates the response to the prediction request: HTTP 200 and a JSON body
 * equal to expected_json (parsed and compared as documents, not as bytes).
 * request describes the request for the evidence; model ("namespace/name")
 * is named in the remedy. Fills finding.
 */
int check_evaluate_prediction(const struct check_http_response *response, const char *expected_json,
			      const char *request, const char *model, struct preflight_finding *finding);

/*
 * Returns the manifest digest in an image id of the form NAME@sha256:HEX
 * (a pointer into image_id), or NULL. A bare "sha256:HEX" is the image
 * config's id under containerd, not a manifest digest, so it gives NULL.
 */
const char *check_image_id_digest(const char *image_id);

/*
 * Decides whether a running container's image is one of the bundle's:
 * the image reference of the container status (or its spec) by name, and
 * its imageID digest, when the runtime reported one, against the bundle's
 * digest for that name. Returns 1 when it is in the bundle (with
 * *by_digest telling whether a digest was compared), 0 when it is not
 * (with the reason appended to reason), or a negative code.
 */
int check_image_in_bundle(const struct check_platform *platform, const char *image,
			  const char *image_id, bool *by_digest, struct buf *reason);

/* One image as `ctr images ls` lists it. */
struct check_node_image {
	char *name;
	char *digest;
	bool pinned;
};

struct check_node_images {
	struct check_node_image *items;
	size_t count;
};

/*
 * Parses the output of `ctr -n k8s.io images ls`: a header line, then
 * REF TYPE DIGEST SIZE UNIT PLATFORMS LABELS, separated by white space.
 * Lines that do not fit are skipped and counted in *skipped (may be NULL).
 */
int check_parse_ctr_images(const char *text, size_t len, struct check_node_images *out, size_t *skipped);
void check_node_images_release(struct check_node_images *images);

/*
 * Compares a node's images with the bundle's: fills present (every image
 * with the same digest) and pinned (every one of them pinned).
 */
int check_evaluate_node_images(const struct check_platform *platform, const struct check_node_images *images,
			       struct preflight_finding *present, struct preflight_finding *pinned);

#endif
