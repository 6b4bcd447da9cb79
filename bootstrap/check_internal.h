/*
 * The state of one run and the small helpers that the files of the check
 * module share. It is no contract for other modules: check.h is.
 */
#ifndef MLBOOT_BOOTSTRAP_CHECK_INTERNAL_H
#define MLBOOT_BOOTSTRAP_CHECK_INTERNAL_H

#include "check.h"

#define CHECK_GROUP_AIRGAP "air gap"
#define CHECK_GROUP_NODES  "nodes"

/* The state of one run of the checks. */
struct check_state {
	const struct check_options *options;
	struct check_platform *platform;
	struct report *report;
	/* NULL when the API server cannot be used, and skip_reason then gives the reason. */
	struct kube_client *client;
	const char *skip_reason;
	/* The namespaces the platform's objects live in, each once. */
	char **namespaces;
	size_t namespace_count;
	/* The ingress gateway's address, found by the Istio checks for the KServe checks. */
	bool have_gateway;
	struct check_address gateway;
	char gateway_problem[512];
};

/* Adds one result to the report; evidence is a printf format. */
int check_add(struct check_state *state, const char *group, const char *id, const char *title,
	      enum check_status status, const char *remedy, const char *format, ...)
	__attribute__((format(printf, 7, 8)));
/* Adds a finding as one result; the remedy is left out when empty or when it passed. */
int check_add_finding(struct check_state *state, const char *group, const char *id, const char *title,
		      const struct preflight_finding *finding);
/* Adds a skipped result with state->skip_reason. */
int check_add_skipped(struct check_state *state, const char *group, const char *id, const char *title);

/* The API path of an object, or of its collection when name is NULL (across namespaces when namespace is NULL). */
int check_object_path(enum check_object_kind kind, const char *namespace, const char *name, char **out);
/* "Deployment", "CustomResourceDefinition", ...; lower-case plural for kubectl commands with plural set. */
const char *check_object_kind_name(enum check_object_kind kind, bool plural);
bool check_object_kind_namespaced(enum check_object_kind kind);

/* Appends text percent-encoded for a URL query value. */
int check_url_escape(struct buf *out, const char *text);
/*
 * Appends "labelSelector=..." for the matchLabels of a workload's
 * spec.selector; -ENOENT when it has none.
 */
int check_selector_query(const struct doc_node *workload, struct buf *out);

/*
 * Counts the ready endpoints of a Service from its EndpointSlices, or from
 * its Endpoints object when the server does not serve EndpointSlices;
 * *source names which was read. Returns 0 or the failure of the request.
 */
int check_service_ready_endpoints(struct check_state *state, const char *namespace, const char *name,
				  size_t *ready, const char **source);
/* Reads one object; a missing object is 0 with *out NULL. */
int check_get_object(struct check_state *state, enum check_object_kind kind, const char *namespace,
		     const char *name, struct doc_node **out);

/* Returns the client's message for the last failed request, else the description of r. */
const char *check_failure_text(int r);

/* The checks of each area, in the order they run. */
int check_components(struct check_state *state);
int check_addons(struct check_state *state);
int check_airgap(struct check_state *state);
int check_nodes(struct check_state *state);

/* Finds an expected object by kind and name in any component; *component (may be NULL) gets its component. */
const struct check_object *check_platform_find(const struct check_platform *platform,
					       enum check_object_kind kind, const char *name,
					       const struct check_component **component);

#endif
