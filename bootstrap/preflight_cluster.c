#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "preflight.h"

/* Names listed in one piece of evidence before "and N more". */
#define MAX_LISTED 20
/* Maximum size of the evidence and remedy of one finding, as in report_add(). */
#define FINDING_TEXT_MAX REPORT_TEXT_MAX

#define PATCH_DEFAULT_JSON \
	"'{\"metadata\":{\"annotations\":{\"" STORAGECLASS_DEFAULT_ANNOTATION "\":\"true\"}}}'"

const struct kube_client_options preflight_client_options = {
	.connect_timeout_ms = 5000,
	.request_timeout_ms = 15000,
	.max_retries = 4,
	.max_retry_delay_ms = 2000,
};

/* State of one run of the cluster checks. */
struct cluster_run {
	const struct preflight_cluster_options *options;
	struct report *report;
	struct kube_credentials credentials;
	bool have_credentials;
	struct kube_client *client;
	/* Reason the checks after the first are skipped; NULL when they run. */
	const char *skip_reason;
	bool have_server_version;
	struct kube_version server_version;
};

void preflight_finding_init(struct preflight_finding *finding)
{
	finding->status = CHECK_FAIL;
	buf_init(&finding->evidence, FINDING_TEXT_MAX);
	buf_init(&finding->remedy, FINDING_TEXT_MAX);
}

void preflight_finding_release(struct preflight_finding *finding)
{
	buf_release(&finding->evidence);
	buf_release(&finding->remedy);
}

int preflight_finding_add(const struct preflight_finding *finding, struct report *report,
			  const char *group, const char *id, const char *title)
{
	const char *remedy = finding->remedy.len ? buf_str(&finding->remedy) : NULL;

	log_debug("preflight: %s: %s", id, check_status_name(finding->status));
	return report_add(report, group, id, title, finding->status, remedy, "%s",
			  buf_str(&finding->evidence));
}

/*
 * Evidence that lists names: "a, b, c" and, past MAX_LISTED entries,
 * " and N more". Each entry is a printf format, so it can carry details.
 */
struct name_list {
	struct buf *out;
	size_t count;
};

static int name_list_add(struct name_list *list, const char *format, ...)
	__attribute__((format(printf, 2, 3)));

static int name_list_add(struct name_list *list, const char *format, ...)
{
	va_list args;
	int r;

	list->count++;
	if (list->count > MAX_LISTED)
		return 0;
	if (list->count > 1) {
		r = buf_append_str(list->out, ", ");
		if (r < 0)
			return r;
	}
	va_start(args, format);
	r = buf_vprintf(list->out, format, args);
	va_end(args);
	return r;
}

static int name_list_finish(const struct name_list *list)
{
	if (list->count <= MAX_LISTED)
		return 0;
	return buf_printf(list->out, " and %zu more", list->count - MAX_LISTED);
}

/*
 * Whether a name can be pasted into a shell command without quoting: what a
 * real API server accepts as an object name (a DNS subdomain) always can.
 */
static bool name_is_shell_safe(const char *name)
{
	size_t len = strlen(name);

	return len > 0 && len <= 253 && strspn(name, "abcdefghijklmnopqrstuvwxyz0123456789.-") == len;
}

static const char *name_for_command(const char *name)
{
	return name_is_shell_safe(name) ? name : "NAME";
}

static int strdup_optional(const char *text, char **out)
{
	*out = NULL;
	if (!text)
		return 0;
	*out = strdup(text);
	return *out ? 0 : -ENOMEM;
}

int preflight_parse_min_version(const char *text, struct kube_version *out)
{
	long numbers[3] = { 0, 0, 0 };
	const char *p = text;
	int parts = 0;

	memset(out, 0, sizeof(*out));
	if (!text)
		return MLB_EINPUT;
	if (*p == 'v')
		p++;
	while (parts < 3) {
		char *end;

		if (*p < '0' || *p > '9')
			return MLB_EINPUT;
		errno = 0;
		numbers[parts] = strtol(p, &end, 10);
		if (errno != 0 || numbers[parts] > 999 || end - p > 3)
			return MLB_EINPUT;
		parts++;
		p = end;
		if (*p == '\0')
			break;
		if (*p != '.')
			return MLB_EINPUT;
		p++;
	}
	if (*p != '\0' || parts < 2)
		return MLB_EINPUT;
	out->major = (int)numbers[0];
	out->minor = (int)numbers[1];
	out->patch = (int)numbers[2];
	snprintf(out->git_version, sizeof(out->git_version), "v%d.%d.%d", out->major, out->minor,
		 out->patch);
	return 0;
}

bool preflight_storageclass_is_default(const struct doc_node *storageclass)
{
	const struct doc_node *annotations = doc_find(storageclass, "metadata", "annotations", NULL);

	if (!annotations || annotations->type != DOC_MAP)
		return false;
	return doc_string_equals(doc_get(annotations, STORAGECLASS_DEFAULT_ANNOTATION), "true") ||
	       doc_string_equals(doc_get(annotations, STORAGECLASS_BETA_DEFAULT_ANNOTATION), "true");
}

int preflight_storageclass_from_object(const struct doc_node *object,
				       struct preflight_storageclass *out)
{
	const char *name = doc_find_string(object, "metadata", "name", NULL);

	memset(out, 0, sizeof(*out));
	if (!name)
		return MLB_EINPUT;
	out->name = strdup(name);
	if (!out->name)
		return -ENOMEM;
	out->is_default = preflight_storageclass_is_default(object);
	return 0;
}

void preflight_storageclass_release(struct preflight_storageclass *storageclass)
{
	free(storageclass->name);
	storageclass->name = NULL;
}

static int evaluate_no_storageclass(struct preflight_finding *out)
{
	int r;

	out->status = CHECK_FAIL;
	r = buf_append_str(&out->evidence, "no StorageClass exists");
	if (r == 0)
		r = buf_append_str(&out->remedy,
				   "install a storage provisioner with its StorageClass (a CSI driver "
				   "for the datacenter's storage, or local-path-provisioner for a lab), "
				   "then mark the class default: kubectl patch storageclass NAME -p "
				   PATCH_DEFAULT_JSON);
	return r;
}

int preflight_evaluate_storageclasses(const struct preflight_storageclass *classes, size_t count,
				      struct preflight_finding *out)
{
	struct name_list all = { .out = &out->evidence };
	struct name_list defaults = { .out = &out->evidence };
	size_t default_count = 0;
	const char *first_default = NULL, *second_default = NULL;
	int r = 0;

	if (count == 0)
		return evaluate_no_storageclass(out);

	for (size_t i = 0; i < count; i++) {
		if (!classes[i].is_default)
			continue;
		default_count++;
		if (!first_default)
			first_default = classes[i].name;
		else if (!second_default)
			second_default = classes[i].name;
	}

	if (default_count == 1) {
		out->status = CHECK_PASS;
		r = buf_printf(&out->evidence, "'%s' is the default of %zu StorageClass%s: ",
			       first_default, count, count == 1 ? "" : "es");
		for (size_t i = 0; i < count && r == 0; i++)
			r = name_list_add(&all, "%s", classes[i].name);
		if (r == 0)
			r = name_list_finish(&all);
		return r;
	}

	if (default_count == 0) {
		out->status = CHECK_FAIL;
		if (count == 1)
			r = buf_append_str(&out->evidence, "the only StorageClass is not marked default: ");
		else
			r = buf_printf(&out->evidence, "none of the %zu StorageClasses is marked default: ",
				       count);
		for (size_t i = 0; i < count && r == 0; i++)
			r = name_list_add(&all, "%s", classes[i].name);
		if (r == 0)
			r = name_list_finish(&all);
		if (r == 0)
			r = buf_printf(&out->remedy,
				       "mark one class default, for example: kubectl patch storageclass "
				       "%s -p " PATCH_DEFAULT_JSON, name_for_command(classes[0].name));
		return r;
	}

	out->status = CHECK_WARN;
	r = buf_printf(&out->evidence, "%zu StorageClasses are marked default: ", default_count);
	for (size_t i = 0; i < count && r == 0; i++)
		if (classes[i].is_default)
			r = name_list_add(&defaults, "%s", classes[i].name);
	if (r == 0)
		r = name_list_finish(&defaults);
	if (r == 0)
		r = buf_printf(&out->remedy,
			       "keep one default, because a claim without a class gets the newest "
			       "default (Kubernetes 1.26 and later) or is rejected (before 1.26); remove "
			       "both annotations from each of the others, for example: kubectl annotate "
			       "storageclass %s " STORAGECLASS_DEFAULT_ANNOTATION "- "
			       STORAGECLASS_BETA_DEFAULT_ANNOTATION "-",
			       name_for_command(second_default));
	return r;
}

int preflight_node_from_object(const struct doc_node *object, struct preflight_node *out)
{
	const char *name = doc_find_string(object, "metadata", "name", NULL);
	const struct doc_node *conditions = doc_find(object, "status", "conditions", NULL);
	const struct doc_node *unschedulable = doc_find(object, "spec", "unschedulable", NULL);
	int r = -ENOMEM;

	memset(out, 0, sizeof(*out));
	if (!name)
		return MLB_EINPUT;
	out->name = strdup(name);
	if (!out->name)
		goto out;
	if (conditions && conditions->type == DOC_SEQ) {
		for (size_t i = 0; i < conditions->count; i++) {
			const struct doc_node *condition = conditions->items[i];

			if (!doc_string_equals(doc_get(condition, "type"), "Ready"))
				continue;
			if (strdup_optional(doc_get_string(condition, "status"), &out->ready_status) < 0 ||
			    strdup_optional(doc_get_string(condition, "reason"), &out->ready_reason) < 0)
				goto out;
			break;
		}
	}
	if (strdup_optional(doc_find_string(object, "status", "nodeInfo", "kubeletVersion", NULL),
			    &out->kubelet_version) < 0)
		goto out;
	out->unschedulable = unschedulable && unschedulable->type == DOC_BOOL && unschedulable->boolean;
	return 0;
out:
	preflight_node_release(out);
	return r;
}

void preflight_node_release(struct preflight_node *node)
{
	free(node->name);
	free(node->ready_status);
	free(node->ready_reason);
	free(node->kubelet_version);
	memset(node, 0, sizeof(*node));
}

static bool node_is_ready(const struct preflight_node *node)
{
	return node->ready_status && strcmp(node->ready_status, "True") == 0;
}

int preflight_evaluate_node_readiness(const struct preflight_node *nodes, size_t count,
				      struct preflight_finding *out)
{
	struct name_list not_ready = { .out = &out->evidence };
	struct name_list listed = { .out = &out->evidence };
	size_t not_ready_count = 0, cordoned_count = 0;
	int r = 0;

	if (count == 0) {
		out->status = CHECK_FAIL;
		r = buf_append_str(&out->evidence, "no node is registered with the API server");
		if (r == 0)
			r = buf_append_str(&out->remedy,
					   "join the nodes to the cluster (for example with kubeadm join) "
					   "and check that kubelet runs on each: systemctl status kubelet");
		return r;
	}
	for (size_t i = 0; i < count; i++) {
		if (!node_is_ready(&nodes[i]))
			not_ready_count++;
		else if (nodes[i].unschedulable)
			cordoned_count++;
	}

	if (not_ready_count > 0) {
		out->status = CHECK_FAIL;
		r = buf_printf(&out->evidence, "%zu of %zu nodes not Ready: ", not_ready_count, count);
		for (size_t i = 0; i < count && r == 0; i++) {
			const struct preflight_node *node = &nodes[i];

			if (node_is_ready(node))
				continue;
			if (!node->ready_status)
				r = name_list_add(&not_ready, "%s (no Ready condition)", node->name);
			else
				r = name_list_add(&not_ready, "%s (Ready=%s, reason %s)", node->name,
						  node->ready_status,
						  node->ready_reason ? node->ready_reason : "not given");
		}
		if (r == 0)
			r = name_list_finish(&not_ready);
		if (r == 0)
			r = buf_append_str(&out->remedy,
					   "on each node listed, check kubelet and the container runtime "
					   "(systemctl status kubelet containerd; journalctl -u kubelet); "
					   "kubectl describe node NAME shows every condition");
		return r;
	}

	if (cordoned_count > 0) {
		out->status = CHECK_WARN;
		r = buf_printf(&out->evidence, "%zu node%s Ready, %zu cordoned: ", count,
			       count == 1 ? "" : "s", cordoned_count);
		for (size_t i = 0; i < count && r == 0; i++)
			if (nodes[i].unschedulable)
				r = name_list_add(&listed, "%s", nodes[i].name);
		if (r == 0)
			r = name_list_finish(&listed);
		if (r == 0)
			r = buf_append_str(&out->remedy,
					   "cordoned nodes take no new pods: kubectl uncordon NAME for "
					   "each node that should run the platform");
		return r;
	}

	out->status = CHECK_PASS;
	r = buf_printf(&out->evidence, "%zu node%s Ready: ", count, count == 1 ? "" : "s");
	for (size_t i = 0; i < count && r == 0; i++)
		r = name_list_add(&listed, "%s", nodes[i].name);
	if (r == 0)
		r = name_list_finish(&listed);
	return r;
}

enum preflight_skew preflight_kubelet_skew(const struct kube_version *server,
					   const struct kube_version *kubelet)
{
	int allowed_older = kubelet->major == 1 && kubelet->minor < 25 ? 2 : 3;

	if (kubelet->major != server->major)
		return kubelet->major > server->major ? PREFLIGHT_SKEW_KUBELET_NEWER
						      : PREFLIGHT_SKEW_KUBELET_TOO_OLD;
	if (kubelet->minor > server->minor)
		return PREFLIGHT_SKEW_KUBELET_NEWER;
	if (server->minor - kubelet->minor > allowed_older)
		return PREFLIGHT_SKEW_KUBELET_TOO_OLD;
	return PREFLIGHT_SKEW_SUPPORTED;
}

/* Node lists of the kubelet version check: too old, newer than the server, unreadable. */
struct kubelet_lists {
	struct name_list too_old;
	struct name_list newer;
	struct name_list unknown;
	struct buf too_old_text;
	struct buf newer_text;
	struct buf unknown_text;
};

static int kubelet_lists_fill(struct kubelet_lists *lists, const struct preflight_node *nodes,
			      size_t count, const struct kube_version *server)
{
	int r = 0;

	for (size_t i = 0; i < count && r == 0; i++) {
		const struct preflight_node *node = &nodes[i];
		struct kube_version kubelet;

		if (!node->kubelet_version ||
		    kube_version_parse(node->kubelet_version, NULL, NULL, &kubelet) < 0) {
			r = name_list_add(&lists->unknown, "%s (%s)", node->name,
					  node->kubelet_version ? node->kubelet_version : "no version");
			continue;
		}
		switch (preflight_kubelet_skew(server, &kubelet)) {
		case PREFLIGHT_SKEW_KUBELET_TOO_OLD:
			r = name_list_add(&lists->too_old, "%s (%s)", node->name, node->kubelet_version);
			break;
		case PREFLIGHT_SKEW_KUBELET_NEWER:
			r = name_list_add(&lists->newer, "%s (%s)", node->name, node->kubelet_version);
			break;
		case PREFLIGHT_SKEW_SUPPORTED:
			break;
		}
	}
	if (r == 0)
		r = name_list_finish(&lists->too_old);
	if (r == 0)
		r = name_list_finish(&lists->newer);
	if (r == 0)
		r = name_list_finish(&lists->unknown);
	return r;
}

/* Appends "kubelet V on a, b; kubelet W on c" with one entry per distinct version. */
static int append_kubelet_versions(struct buf *out, const struct preflight_node *nodes,
				   size_t count)
{
	size_t versions_listed = 0;
	int r = 0;

	for (size_t i = 0; i < count && r == 0; i++) {
		const char *version = nodes[i].kubelet_version;
		struct name_list names = { .out = out };
		bool seen = false;

		if (!version)
			continue;
		for (size_t j = 0; j < i && !seen; j++)
			seen = nodes[j].kubelet_version && strcmp(nodes[j].kubelet_version, version) == 0;
		if (seen)
			continue;
		if (++versions_listed > MAX_LISTED)
			return buf_append_str(out, "; and more versions");
		r = buf_printf(out, "; kubelet %s on ", version);
		for (size_t j = i; j < count && r == 0; j++)
			if (nodes[j].kubelet_version && strcmp(nodes[j].kubelet_version, version) == 0)
				r = name_list_add(&names, "%s", nodes[j].name);
		if (r == 0)
			r = name_list_finish(&names);
	}
	return r;
}

/* The oldest kubelet minor version the skew policy allows beside the server. */
static int oldest_supported_kubelet_minor(const struct kube_version *server)
{
	struct kube_version kubelet = { .major = server->major, .minor = server->minor };

	while (kubelet.minor > 0) {
		kubelet.minor--;
		if (preflight_kubelet_skew(server, &kubelet) != PREFLIGHT_SKEW_SUPPORTED)
			return kubelet.minor + 1;
	}
	return 0;
}

static int kubelet_remedy(const struct kubelet_lists *lists, const struct kube_version *server,
			  struct buf *remedy)
{
	int r = 0;

	if (lists->too_old.count > 0)
		r = buf_printf(remedy, "upgrade kubelet on the nodes listed to %d.%d or newer, one "
			       "minor version at a time (the skew policy allows a kubelet three minor "
			       "versions older than the API server, two for kubelets older than 1.25)",
			       server->major, oldest_supported_kubelet_minor(server));
	if (r == 0 && lists->newer.count > 0)
		r = buf_printf(remedy, "%sa kubelet must not be newer than the API server: upgrade "
			       "the control plane first, or install kubelet %d.%d on the nodes listed",
			       remedy->len ? "; " : "", server->major, server->minor);
	if (r == 0 && lists->too_old.count == 0 && lists->newer.count == 0 && lists->unknown.count > 0)
		r = buf_append_str(remedy, "check the version of kubelet on the nodes listed: "
				   "kubelet --version");
	return r;
}

int preflight_evaluate_kubelet_versions(const struct preflight_node *nodes, size_t count,
					const struct kube_version *server,
					struct preflight_finding *out)
{
	struct kubelet_lists lists;
	const char *separator = "";
	int r;

	memset(&lists, 0, sizeof(lists));
	buf_init(&lists.too_old_text, FINDING_TEXT_MAX);
	buf_init(&lists.newer_text, FINDING_TEXT_MAX);
	buf_init(&lists.unknown_text, FINDING_TEXT_MAX);
	lists.too_old.out = &lists.too_old_text;
	lists.newer.out = &lists.newer_text;
	lists.unknown.out = &lists.unknown_text;

	if (count == 0) {
		out->status = CHECK_SKIP;
		r = buf_append_str(&out->evidence, "no node to compare");
		goto out;
	}
	r = kubelet_lists_fill(&lists, nodes, count, server);
	if (r < 0)
		goto out;

	if (lists.too_old.count > 0 || lists.newer.count > 0)
		out->status = CHECK_FAIL;
	else if (lists.unknown.count > 0)
		out->status = CHECK_WARN;
	else
		out->status = CHECK_PASS;

	if (lists.too_old.count > 0) {
		r = buf_printf(&out->evidence, "kubelet too old for API server %s on %s",
			       server->git_version, buf_str(&lists.too_old_text));
		separator = "; ";
	}
	if (r == 0 && lists.newer.count > 0) {
		r = buf_printf(&out->evidence, "%skubelet newer than API server %s on %s", separator,
			       server->git_version, buf_str(&lists.newer_text));
		separator = "; ";
	}
	if (r == 0 && lists.unknown.count > 0)
		r = buf_printf(&out->evidence, "%skubelet version not readable on %s", separator,
			       buf_str(&lists.unknown_text));
	if (r == 0 && out->status == CHECK_PASS) {
		r = buf_printf(&out->evidence, "API server %s", server->git_version);
		if (r == 0)
			r = append_kubelet_versions(&out->evidence, nodes, count);
	}
	if (r == 0 && out->status != CHECK_PASS)
		r = kubelet_remedy(&lists, server, &out->remedy);
out:
	buf_release(&lists.too_old_text);
	buf_release(&lists.newer_text);
	buf_release(&lists.unknown_text);
	return r;
}

/* The checks against the API server, in the order they run. */

#define TITLE_API        "API server reachable"
#define TITLE_VERSION    "Kubernetes version supported"
#define TITLE_ADMIN      "cluster-admin rights"
#define TITLE_STORAGE    "default StorageClass"
#define TITLE_NODES      "every node Ready"
#define TITLE_KUBELETS   "kubelet versions within the skew policy"

#define REMEDY_ADMIN_KUBECONFIG \
	"run preflight with a kubeconfig whose user is bound to the cluster-admin ClusterRole " \
	"(for example /etc/kubernetes/admin.conf on a kubeadm control-plane node): " \
	"mlboot preflight --kubeconfig FILE"

static int add_check(struct cluster_run *run, const char *id, const char *title,
		     enum check_status status, const char *remedy, const char *format, ...)
	__attribute__((format(printf, 6, 7)));

static int add_check(struct cluster_run *run, const char *id, const char *title,
		     enum check_status status, const char *remedy, const char *format, ...)
{
	struct buf evidence = BUF_INIT(FINDING_TEXT_MAX);
	va_list args;
	int r;

	va_start(args, format);
	r = buf_vprintf(&evidence, format, args);
	va_end(args);
	if (r == 0)
		r = report_add(run->report, PREFLIGHT_GROUP_CLUSTER, id, title, status, remedy, "%s",
			       buf_str(&evidence));
	if (r == 0)
		log_debug("preflight: %s: %s", id, check_status_name(status));
	buf_release(&evidence);
	return r;
}

/* Returns the client's message for a failed request, else the description of r. */
static const char *failure_text(int r)
{
	const char *message = kube_last_error();

	return message && message[0] ? message : mlb_strerror(r);
}

/*
 * Returns the client's message for a failed request, which names the server
 * and the cause. Without one, formats "PREFIX SERVER: description" into a
 * thread-local buffer.
 */
static const char *failure_evidence(int r, const char *server, const char *prefix)
{
	static _Thread_local char text[1024];
	const char *message = kube_last_error();

	if (message && message[0])
		return message;
	snprintf(text, sizeof(text), "%s %s: %s", prefix, server, mlb_strerror(r));
	return text;
}

static const char *text_or(const char *text, const char *fallback)
{
	return text && text[0] ? text : fallback;
}

/* Adds the API check for a kubeconfig that could not be loaded or used. */
static int fail_kubeconfig(struct cluster_run *run, int r)
{
	static const char remedy[] =
		"pass a valid kubeconfig with --kubeconfig FILE, and one of its contexts with "
		"--context NAME; kubectl --kubeconfig FILE config view shows its contents";
	const char *path = run->options->kubeconfig.path;

	if (path)
		return add_check(run, PREFLIGHT_CHECK_API, TITLE_API, CHECK_FAIL, remedy,
				 "cannot use the kubeconfig '%s': %s", path, failure_text(r));
	return add_check(run, PREFLIGHT_CHECK_API, TITLE_API, CHECK_FAIL, remedy,
			 "no usable kubeconfig in $KUBECONFIG, ~/.kube/config or the in-cluster "
			 "service account: %s", failure_text(r));
}

static int set_subject(struct cluster_run *run)
{
	const struct kube_credentials *credentials = &run->credentials;
	struct buf subject = BUF_INIT(4096);
	int r;

	r = buf_printf(&subject, "%s (context '%s', user '%s')", text_or(credentials->server, "?"),
		       text_or(credentials->context_name, "?"), text_or(credentials->user_name, "?"));
	if (r == 0)
		r = report_set_subject(run->report, buf_str(&subject));
	buf_release(&subject);
	return r;
}

/* Returns the message of a Status response, or "HTTP N" when the body has none (caller frees). */
static char *response_message(const struct kube_response *response)
{
	struct doc_node *root = NULL;
	struct doc_error error;
	char *message = NULL;
	const char *text;

	if (doc_parse(buf_str(&response->body), response->body.len, NULL, &root, &error) == 0 &&
	    (text = doc_get_string(root, "message")) != NULL)
		message = strdup(text);
	else if (asprintf(&message, "HTTP %ld", response->status) < 0)
		message = NULL;
	doc_free(root);
	return message;
}

/* Adds the passing API check, or a warning when the round trip was slow or TLS is not verified. */
static int pass_api(struct cluster_run *run, const struct kube_response *response)
{
	const struct kube_credentials *credentials = &run->credentials;
	long milliseconds = (long)(response->seconds * 1000.0 + 0.5);
	bool plain_http = strncmp(credentials->server, "http://", 7) == 0;
	const char *tls = "TLS verified";
	enum check_status status = CHECK_PASS;
	const char *remedy = NULL;

	if (plain_http) {
		tls = "plain HTTP, no TLS";
		status = CHECK_WARN;
		remedy = "use the API server's https:// address with the cluster's CA in "
			 "certificate-authority-data, so that credentials travel encrypted";
	} else if (credentials->insecure_skip_tls_verify) {
		tls = "TLS not verified (insecure-skip-tls-verify is set)";
		status = CHECK_WARN;
		remedy = "put the cluster's CA in certificate-authority-data and remove "
			 "insecure-skip-tls-verify from the kubeconfig";
	} else if (milliseconds > PREFLIGHT_SLOW_ROUND_TRIP_MS) {
		status = CHECK_WARN;
		remedy = "the API server responds slowly: check its load (etcd latency, "
			 "kube-apiserver CPU) and the network between this machine and the server";
	}
	return add_check(run, PREFLIGHT_CHECK_API, TITLE_API, status, remedy,
			 "%s, %s, round trip %ld ms%s", credentials->server, tls, milliseconds,
			 response->attempts > 1 ? " (after retries)" : "");
}

/*
 * Sends GET /api and adds the API check. /api is the discovery root, which
 * every authenticated user may read and anonymous users may not (unlike
 * /version), so the request tests the credentials too.
 */
static int check_api(struct cluster_run *run)
{
	const struct kube_credentials *credentials = &run->credentials;
	struct kube_response response;
	char *message = NULL;
	int access, r;

	memset(&response, 0, sizeof(response));
	access = kube_request(run->client, "GET", "/api", NULL, NULL, 0, &response);
	if (access == MLB_EUNREACHABLE) {
		run->skip_reason = "the API server is unreachable";
		r = add_check(run, PREFLIGHT_CHECK_API, TITLE_API, CHECK_FAIL,
			      "check that the API server runs and that the kubeconfig's server "
			      "address is right and reachable from this machine (firewall, routes, "
			      "proxy); on a control-plane node: crictl ps --name kube-apiserver",
			      "%s", failure_evidence(access, credentials->server, "no response from"));
		goto out;
	}
	if (access == MLB_EDENIED) {
		run->skip_reason = "TLS verification with the API server failed";
		r = add_check(run, PREFLIGHT_CHECK_API, TITLE_API, CHECK_FAIL,
			      "the kubeconfig's certificate-authority-data must be the CA that signed "
			      "the API server's certificate (on kubeadm clusters "
			      "/etc/kubernetes/pki/ca.crt), and the server address must be a name or "
			      "address in that certificate",
			      "%s", failure_evidence(access, credentials->server,
						     "TLS verification failed with"));
		goto out;
	}
	if (access < 0) {
		r = access;
		goto out;
	}
	if (response.status == 401 || response.status == 403) {
		access = MLB_EDENIED;
		run->skip_reason = "the API server rejected the credentials";
		message = response_message(&response);
		r = add_check(run, PREFLIGHT_CHECK_API, TITLE_API, CHECK_FAIL,
			      "the token or client certificate of the kubeconfig's user is expired, "
			      "revoked or missing: get a current kubeconfig for the cluster (for "
			      "example /etc/kubernetes/admin.conf on a kubeadm control-plane node)",
			      "%s %s user '%s' (HTTP %ld): %s", credentials->server,
			      response.status == 401 ? "rejected the credentials of" : "denied access to",
			      text_or(credentials->user_name, "?"), response.status,
			      text_or(message, "no message"));
		goto out;
	}
	if (response.status < 200 || response.status > 299) {
		/* The server responds with an error, so the other checks still run and may show more. */
		access = 0;
		message = response_message(&response);
		r = add_check(run, PREFLIGHT_CHECK_API, TITLE_API, CHECK_FAIL,
			      "check the API server's health: kubectl get --raw /readyz?verbose",
			      "%s responded to GET /api with HTTP %ld: %s", credentials->server,
			      response.status, text_or(message, "no message"));
		goto out;
	}
	access = 0;
	r = pass_api(run, &response);
out:
	free(message);
	kube_response_release(&response);
	return r < 0 ? r : access;
}

static int check_version(struct cluster_run *run)
{
	const struct kube_version *minimum = &run->options->min_version;
	const struct kube_version *maximum = &run->options->max_version;
	const char *git_version, *major, *minor;
	struct doc_node *root = NULL;
	char *message = NULL;
	struct kube_version version;
	int r;

	r = kube_get(run->client, "/version", &root, &message);
	if (r < 0) {
		r = add_check(run, PREFLIGHT_CHECK_VERSION, TITLE_VERSION, CHECK_FAIL,
			      "check the API server's health: kubectl get --raw /readyz?verbose",
			      "GET /version failed: %s", text_or(message, failure_text(r)));
		goto out;
	}
	git_version = doc_get_string(root, "gitVersion");
	major = doc_get_string(root, "major");
	minor = doc_get_string(root, "minor");
	if (kube_version_parse(git_version, major, minor, &version) < 0) {
		r = add_check(run, PREFLIGHT_CHECK_VERSION, TITLE_VERSION, CHECK_FAIL,
			      "check that the server is a Kubernetes API server: kubectl version",
			      "cannot read the server version: gitVersion '%s', major '%s', minor '%s'",
			      text_or(git_version, ""), text_or(major, ""), text_or(minor, ""));
		goto out;
	}
	run->server_version = version;
	run->have_server_version = true;
	if (version.major < minimum->major ||
	    (version.major == minimum->major && version.minor < minimum->minor)) {
		char remedy[256];

		snprintf(remedy, sizeof(remedy),
			 "upgrade the cluster to Kubernetes %d.%d or newer before installing",
			 minimum->major, minimum->minor);
		r = add_check(run, PREFLIGHT_CHECK_VERSION, TITLE_VERSION, CHECK_FAIL, remedy,
			      "%s is older than the minimum %d.%d", version.git_version,
			      minimum->major, minimum->minor);
		goto out;
	}
	if (maximum->major > 0 &&
	    (version.major > maximum->major ||
	     (version.major == maximum->major && version.minor > maximum->minor))) {
		char remedy[256];

		snprintf(remedy, sizeof(remedy),
			 "use a platform bundle built for Kubernetes %d.%d, or run a cluster of "
			 "Kubernetes %d.%d to %d.%d", version.major, version.minor, minimum->major,
			 minimum->minor, maximum->major, maximum->minor);
		r = add_check(run, PREFLIGHT_CHECK_VERSION, TITLE_VERSION, CHECK_FAIL, remedy,
			      "%s is newer than the maximum %d.%d", version.git_version,
			      maximum->major, maximum->minor);
		goto out;
	}
	if (maximum->major > 0)
		r = add_check(run, PREFLIGHT_CHECK_VERSION, TITLE_VERSION, CHECK_PASS, NULL,
			      "%s (%d.%d), supported %d.%d to %d.%d", version.git_version,
			      version.major, version.minor, minimum->major, minimum->minor,
			      maximum->major, maximum->minor);
	else
		r = add_check(run, PREFLIGHT_CHECK_VERSION, TITLE_VERSION, CHECK_PASS, NULL,
			      "%s (%d.%d), minimum %d.%d", version.git_version, version.major,
			      version.minor, minimum->major, minimum->minor);
out:
	free(message);
	doc_free(root);
	return r;
}

static int check_admin(struct cluster_run *run)
{
	const struct kube_credentials *credentials = &run->credentials;
	char *reason = NULL;
	bool allowed = false;
	int r;

	r = kube_access_review(run->client, "*", "*", "*", NULL, &allowed, &reason);
	if (r < 0) {
		r = add_check(run, PREFLIGHT_CHECK_ADMIN, TITLE_ADMIN, CHECK_FAIL, REMEDY_ADMIN_KUBECONFIG,
			      "the SelfSubjectAccessReview for user '%s' (context '%s') failed: %s",
			      text_or(credentials->user_name, "?"),
			      text_or(credentials->context_name, "?"), failure_text(r));
		goto out;
	}
	if (!allowed) {
		r = add_check(run, PREFLIGHT_CHECK_ADMIN, TITLE_ADMIN, CHECK_FAIL, REMEDY_ADMIN_KUBECONFIG,
			      "user '%s' (context '%s') may not use every verb on every resource%s%s",
			      text_or(credentials->user_name, "?"),
			      text_or(credentials->context_name, "?"), reason && reason[0] ? ": " : "",
			      text_or(reason, ""));
		goto out;
	}
	r = add_check(run, PREFLIGHT_CHECK_ADMIN, TITLE_ADMIN, CHECK_PASS, NULL,
		      "user '%s' (context '%s') may use every verb on every resource",
		      text_or(credentials->user_name, "?"), text_or(credentials->context_name, "?"));
out:
	free(reason);
	return r;
}

/*
 * A kind of object that the cluster checks list. from_object reads one
 * object into an element of item_size bytes, and release frees that element.
 */
struct object_kind {
	size_t item_size;
	int (*from_object)(const struct doc_node *object, void *out);
	void (*release)(void *item);
};

/*
 * The objects of one kind from a list request, in an array of
 * kind->item_size elements. An object that from_object rejects with
 * MLB_EINPUT (one without a name, which no check can use) is left out.
 */
struct object_list {
	const struct object_kind *kind;
	void *items;
	size_t count;
};

static int object_list_add(const struct doc_node *object, void *userdata)
{
	struct object_list *list = userdata;
	void *items;
	int r;

	if (list->count >= PREFLIGHT_MAX_OBJECTS)
		return -E2BIG;
	items = reallocarray(list->items, list->count + 1, list->kind->item_size);
	if (!items)
		return -ENOMEM;
	list->items = items;
	r = list->kind->from_object(object, (char *)list->items + list->count * list->kind->item_size);
	if (r == MLB_EINPUT)
		return 0;
	if (r < 0)
		return r;
	list->count++;
	return 0;
}

static void object_list_release(struct object_list *list)
{
	for (size_t i = 0; i < list->count; i++)
		list->kind->release((char *)list->items + i * list->kind->item_size);
	free(list->items);
	list->items = NULL;
	list->count = 0;
}

static int storageclass_from_object(const struct doc_node *object, void *out)
{
	return preflight_storageclass_from_object(object, out);
}

static void storageclass_release(void *item)
{
	preflight_storageclass_release(item);
}

static int node_from_object(const struct doc_node *object, void *out)
{
	return preflight_node_from_object(object, out);
}

static void node_release(void *item)
{
	preflight_node_release(item);
}

static const struct object_kind storageclass_kind = {
	.item_size = sizeof(struct preflight_storageclass),
	.from_object = storageclass_from_object,
	.release = storageclass_release,
};

static const struct object_kind node_kind = {
	.item_size = sizeof(struct preflight_node),
	.from_object = node_from_object,
	.release = node_release,
};

static int check_storageclass(struct cluster_run *run)
{
	struct object_list list = { .kind = &storageclass_kind };
	struct preflight_finding finding;
	int r;

	preflight_finding_init(&finding);
	r = kube_list(run->client, "/apis/storage.k8s.io/v1/storageclasses", object_list_add, &list);
	if (r < 0) {
		r = add_check(run, PREFLIGHT_CHECK_STORAGE, TITLE_STORAGE, CHECK_FAIL,
			      r == MLB_EDENIED ? REMEDY_ADMIN_KUBECONFIG : NULL,
			      "listing StorageClasses failed: %s", failure_text(r));
		goto out;
	}
	r = preflight_evaluate_storageclasses(list.items, list.count, &finding);
	if (r == 0)
		r = preflight_finding_add(&finding, run->report, PREFLIGHT_GROUP_CLUSTER,
					  PREFLIGHT_CHECK_STORAGE, TITLE_STORAGE);
out:
	object_list_release(&list);
	preflight_finding_release(&finding);
	return r;
}

/* Adds both node checks: readiness, then kubelet versions against the server's. */
static int check_nodes(struct cluster_run *run)
{
	struct object_list list = { .kind = &node_kind };
	struct preflight_finding finding;
	int r;

	preflight_finding_init(&finding);
	r = kube_list(run->client, "/api/v1/nodes", object_list_add, &list);
	if (r < 0) {
		const char *remedy = r == MLB_EDENIED ? REMEDY_ADMIN_KUBECONFIG : NULL;
		const char *error = failure_text(r);

		r = add_check(run, PREFLIGHT_CHECK_NODES, TITLE_NODES, CHECK_FAIL, remedy,
			      "listing nodes failed: %s", error);
		if (r == 0)
			r = add_check(run, PREFLIGHT_CHECK_KUBELETS, TITLE_KUBELETS, CHECK_SKIP, NULL,
				      "skipped: the nodes could not be listed");
		goto out;
	}
	r = preflight_evaluate_node_readiness(list.items, list.count, &finding);
	if (r == 0)
		r = preflight_finding_add(&finding, run->report, PREFLIGHT_GROUP_CLUSTER,
					  PREFLIGHT_CHECK_NODES, TITLE_NODES);
	if (r < 0)
		goto out;

	if (!run->have_server_version) {
		r = add_check(run, PREFLIGHT_CHECK_KUBELETS, TITLE_KUBELETS, CHECK_SKIP, NULL,
			      "skipped: the API server's version is not known");
		goto out;
	}
	preflight_finding_release(&finding);
	preflight_finding_init(&finding);
	r = preflight_evaluate_kubelet_versions(list.items, list.count, &run->server_version,
						&finding);
	if (r == 0)
		r = preflight_finding_add(&finding, run->report, PREFLIGHT_GROUP_CLUSTER,
					  PREFLIGHT_CHECK_KUBELETS, TITLE_KUBELETS);
out:
	object_list_release(&list);
	preflight_finding_release(&finding);
	return r;
}

/* Adds the checks after the first as skipped, with the reason. */
static int skip_remaining(struct cluster_run *run)
{
	static const struct {
		const char *id;
		const char *title;
	} remaining[] = {
		{ PREFLIGHT_CHECK_VERSION, TITLE_VERSION },
		{ PREFLIGHT_CHECK_ADMIN, TITLE_ADMIN },
		{ PREFLIGHT_CHECK_STORAGE, TITLE_STORAGE },
		{ PREFLIGHT_CHECK_NODES, TITLE_NODES },
		{ PREFLIGHT_CHECK_KUBELETS, TITLE_KUBELETS },
	};
	int r = 0;

	for (size_t i = 0; i < ARRAY_SIZE(remaining) && r == 0; i++) {
		if (run->options->skip_admin && strcmp(remaining[i].id, PREFLIGHT_CHECK_ADMIN) == 0)
			continue;
		r = add_check(run, remaining[i].id, remaining[i].title, CHECK_SKIP, NULL,
			      "skipped: %s", run->skip_reason);
	}
	return r;
}

int preflight_cluster(const struct preflight_cluster_options *options, struct report *report)
{
	const struct kube_client_options *client_options =
		options->client ? options->client : &preflight_client_options;
	struct cluster_run run = { .options = options, .report = report };
	int access = 0, r;

	r = kubeconfig_load(&options->kubeconfig, &run.credentials);
	if (r == 0) {
		run.have_credentials = true;
		log_debug("preflight: context '%s' of kubeconfig '%s': server '%s', user '%s'",
			  text_or(run.credentials.context_name, "?"), text_or(run.credentials.source, "?"),
			  text_or(run.credentials.server, "?"), text_or(run.credentials.user_name, "?"));
		r = set_subject(&run);
		if (r < 0)
			goto out;
		r = kube_client_new(&run.credentials, client_options, &run.client);
	}
	if (r < 0) {
		/* Exec plugins that fail deny access; every other failure is in the kubeconfig. */
		access = r == -ENOMEM || r == MLB_EDENIED ? r : MLB_EINPUT;
		run.skip_reason = "no usable kubeconfig";
		r = fail_kubeconfig(&run, r);
		if (r == 0)
			r = skip_remaining(&run);
		goto out;
	}

	access = check_api(&run);
	if (access < 0 && access != MLB_EUNREACHABLE && access != MLB_EDENIED) {
		r = access;
		goto out;
	}
	if (run.skip_reason) {
		r = skip_remaining(&run);
		goto out;
	}

	r = check_version(&run);
	if (r == 0 && !options->skip_admin)
		r = check_admin(&run);
	if (r == 0)
		r = check_storageclass(&run);
	if (r == 0)
		r = check_nodes(&run);
out:
	if (options->client_out) {
		*options->client_out = NULL;
		if (r == 0 && access == 0) {
			*options->client_out = run.client;
			run.client = NULL;
		}
	}
	kube_client_free(run.client);
	if (run.have_credentials)
		kube_credentials_release(&run.credentials);
	if (r < 0)
		return r;
	return access;
}
