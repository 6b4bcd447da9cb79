/*
 * Preflight: the checks that run before an install changes anything.
 *
 * The cluster checks talk to the Kubernetes API server and add one result
 * per check to a report, in the group "cluster". Every check runs even when
 * an earlier one failed, except that nothing further is asked of an API
 * server that cannot be reached or that rejects the TLS handshake or the
 * credentials: those checks are added as skipped, with the reason.
 *
 * The evaluation functions below are pure: they take what the API returned
 * and fill a finding, so they can be tested without a server.
 */
#ifndef MLBOOT_BOOTSTRAP_PREFLIGHT_H
#define MLBOOT_BOOTSTRAP_PREFLIGHT_H

#include <stdbool.h>
#include <stddef.h>

#include "common.h"
#include "kube.h"
#include "report.h"

#define PREFLIGHT_GROUP_CLUSTER "cluster"

/* Ids of the cluster checks, in the order they run; docs/preflight.md describes each. */
#define PREFLIGHT_CHECK_API       "cluster.api"
#define PREFLIGHT_CHECK_VERSION   "cluster.version"
#define PREFLIGHT_CHECK_ADMIN     "cluster.admin"
#define PREFLIGHT_CHECK_STORAGE   "cluster.storageclass"
#define PREFLIGHT_CHECK_NODES     "cluster.nodes"
#define PREFLIGHT_CHECK_KUBELETS  "cluster.kubelet-versions"

/* The annotations that mark the default StorageClass, GA and beta. */
#define STORAGECLASS_DEFAULT_ANNOTATION      "storageclass.kubernetes.io/is-default-class"
#define STORAGECLASS_BETA_DEFAULT_ANNOTATION "storageclass.beta.kubernetes.io/is-default-class"

/* A round trip to the API server slower than this is reported as a warning. */
#define PREFLIGHT_SLOW_ROUND_TRIP_MS 1000

/* Maximum number of nodes or StorageClasses read; Kubernetes supports up to 5000 nodes. */
#define PREFLIGHT_MAX_OBJECTS 20000

struct preflight_cluster_options {
	struct kubeconfig_options kubeconfig;
	/* Oldest server version accepted; only major and minor are compared. */
	struct kube_version min_version;
	/* Newest server version accepted (major and minor); major 0 means no maximum. */
	struct kube_version max_version;
	/* Leaves out cluster.admin, for callers that do not need every right. */
	bool skip_admin;
	/* NULL: preflight_client_options, which bound an unreachable server to a few seconds. */
	const struct kube_client_options *client;
	/*
	 * When not NULL and the API server could be used, receives the client
	 * of the checks, which the caller frees with kube_client_free();
	 * otherwise *client_out is set to NULL.
	 */
	struct kube_client **client_out;
};

extern const struct kube_client_options preflight_client_options;

/*
 * Runs every cluster check, adds the results to report and sets the
 * report's subject to the server URL and context. Returns 0 when the API
 * server could be used, whatever the checks found. Otherwise returns the
 * reason, which the report also states: MLB_EINPUT for a kubeconfig that
 * cannot be loaded, MLB_EUNREACHABLE, or MLB_EDENIED for a failed TLS
 * verification or rejected credentials. Returns -ENOMEM when memory ran
 * out. Each request blocks for as long as the client options allow.
 */
int preflight_cluster(const struct preflight_cluster_options *options, struct report *report);

/*
 * Parses a minimum version such as "1.24", "v1.24" or "1.24.3"; each
 * number is at most 999. Returns MLB_EINPUT on anything else.
 */
int preflight_parse_min_version(const char *text, struct kube_version *out);

/* The result of one check: its status, evidence and, when failed or warned, the remedy. */
struct preflight_finding {
	enum check_status status;
	struct buf evidence;
	struct buf remedy;
};

void preflight_finding_init(struct preflight_finding *finding);
void preflight_finding_release(struct preflight_finding *finding);
/* Adds the finding to report as check id with title; NULL remedy when empty. */
int preflight_finding_add(const struct preflight_finding *finding, struct report *report,
			  const char *group, const char *id, const char *title);

/* A StorageClass, as far as the default-class check needs it. */
struct preflight_storageclass {
	char *name;
	bool is_default;
};

/*
 * Whether a StorageClass object is marked default: either annotation is the
 * string "true", exactly, as Kubernetes' own IsDefaultAnnotation() reads it
 * (so "True" or "yes" is not default, and GA "false" with beta "true" is).
 */
bool preflight_storageclass_is_default(const struct doc_node *storageclass);
/* Fills one entry from a StorageClass object; MLB_EINPUT when it has no name. */
int preflight_storageclass_from_object(const struct doc_node *object,
				       struct preflight_storageclass *out);
void preflight_storageclass_release(struct preflight_storageclass *storageclass);
/*
 * One default: pass. None among several: fail, with the kubectl patch
 * command that marks the first one default. Several defaults: warn, listing
 * them. No StorageClass at all: fail, saying to install a provisioner.
 */
int preflight_evaluate_storageclasses(const struct preflight_storageclass *classes, size_t count,
				      struct preflight_finding *out);

/* A node, as far as the readiness and version checks need it. */
struct preflight_node {
	char *name;
	char *ready_status;     /* the Ready condition's status: "True", "False", "Unknown"; NULL: none */
	char *ready_reason;     /* its reason, such as "KubeletNotReady"; may be NULL */
	char *kubelet_version;  /* status.nodeInfo.kubeletVersion; may be NULL */
	bool unschedulable;     /* spec.unschedulable: cordoned */
};

int preflight_node_from_object(const struct doc_node *object, struct preflight_node *out);
void preflight_node_release(struct preflight_node *node);
/*
 * Every node Ready: pass (warn when some are cordoned). Any node not Ready,
 * or no node at all: fail, listing each node that is not Ready with its
 * condition's status and reason.
 */
int preflight_evaluate_node_readiness(const struct preflight_node *nodes, size_t count,
				      struct preflight_finding *out);

enum preflight_skew {
	PREFLIGHT_SKEW_SUPPORTED,
	PREFLIGHT_SKEW_KUBELET_TOO_OLD,
	PREFLIGHT_SKEW_KUBELET_NEWER,
};

/*
 * Compares a kubelet's version with the API server's by the Kubernetes
 * version skew policy, as kubernetes.io/releases/version-skew-policy
 * publishes it for 1.28 and later. A kubelet must not be newer than the
 * API server. It may be up to three minor versions older, or up to two
 * when the kubelet is older than 1.25. Patch versions are not compared.
 */
enum preflight_skew preflight_kubelet_skew(const struct kube_version *server,
					   const struct kube_version *kubelet);
/*
 * Passes when every kubelet is within the skew policy. Fails, naming the
 * nodes, when a kubelet is too old or newer than the server. Otherwise
 * warns, naming the nodes, when a kubelet version is missing or cannot be
 * parsed.
 */
int preflight_evaluate_kubelet_versions(const struct preflight_node *nodes, size_t count,
					const struct kube_version *server,
					struct preflight_finding *out);

#endif
