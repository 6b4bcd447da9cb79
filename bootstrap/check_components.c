/*
 * The checks every component gets for the objects it ships: its CRDs,
 * workloads, their pods and its admission webhooks.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_internal.h"

/* Live objects of one component's workloads, for the pod check. */
struct live_workload {
	const struct check_object *expected;
	struct doc_node *object;    /* NULL when missing or unreadable */
};

struct live_set {
	struct live_workload *items;
	size_t count;
};

static void live_set_release(struct live_set *set)
{
	for (size_t i = 0; i < set->count; i++)
		doc_free(set->items[i].object);
	free(set->items);
	set->items = NULL;
	set->count = 0;
}

static int live_set_add(struct live_set *set, const struct check_object *expected, struct doc_node *object)
{
	struct live_workload *items = reallocarray(set->items, set->count + 1, sizeof(*items));

	if (!items) {
		doc_free(object);
		return -ENOMEM;
	}
	set->items = items;
	items[set->count].expected = expected;
	items[set->count].object = object;
	set->count++;
	return 0;
}

int check_get_object(struct check_state *state, enum check_object_kind kind, const char *namespace,
		     const char *name, struct doc_node **out)
{
	char *path = NULL;
	int r;

	*out = NULL;
	r = check_object_path(kind, namespace, name, &path);
	if (r == 0)
		r = kube_get(state->client, path, out, NULL);
	if (r == -ENOENT) {
		*out = NULL;
		r = 0;
	}
	free(path);
	return r;
}

struct endpoint_count {
	size_t ready;
};

static int count_slice(const struct doc_node *item, void *userdata)
{
	struct endpoint_count *count = userdata;

	count->ready += check_endpoint_slice_ready_count(item);
	return 0;
}

int check_service_ready_endpoints(struct check_state *state, const char *namespace, const char *name,
				  size_t *ready, const char **source)
{
	struct endpoint_count count = { 0 };
	struct doc_node *endpoints = NULL;
	struct buf path = BUF_INIT(2048);
	int r;

	*ready = 0;
	*source = "EndpointSlices";
	r = buf_printf(&path, "/apis/discovery.k8s.io/v1/namespaces/%s/endpointslices?", namespace);
	if (r == 0)
		r = buf_append_str(&path, "labelSelector=");
	if (r == 0)
		r = check_url_escape(&path, "kubernetes.io/service-name=");
	if (r == 0)
		r = check_url_escape(&path, name);
	if (r == 0)
		r = kube_list(state->client, buf_str(&path), count_slice, &count);
	if (r == 0) {
		*ready = count.ready;
		goto out;
	}
	if (r != -ENOENT)
		goto out;
	/* A server without discovery.k8s.io/v1 (before Kubernetes 1.21) still has Endpoints. */
	*source = "Endpoints";
	buf_reset(&path);
	r = buf_printf(&path, "/api/v1/namespaces/%s/endpoints/%s", namespace, name);
	if (r == 0)
		r = kube_get(state->client, buf_str(&path), &endpoints, NULL);
	if (r == -ENOENT)
		r = 0;
	if (r == 0)
		*ready = check_endpoints_ready_count(endpoints);
out:
	doc_free(endpoints);
	buf_release(&path);
	return r;
}

static size_t count_kind(const struct check_component *component, enum check_object_kind kind)
{
	size_t n = 0;

	for (size_t i = 0; i < component->object_count; i++)
		if (component->objects[i].kind == kind)
			n++;
	return n;
}

/* Formats "COMPONENT.SUFFIX" into id. */
static const char *check_id(char *id, size_t size, const struct check_component *component, const char *suffix)
{
	snprintf(id, size, "%s.%s", component->name, suffix);
	return id;
}

static int check_crds(struct check_state *state, const struct check_component *component)
{
	const char *title = "CRDs Established and NamesAccepted";
	struct buf problems = BUF_INIT(REPORT_TEXT_MAX), names = BUF_INIT(REPORT_TEXT_MAX);
	struct check_list list = { &names, 0 };
	size_t total = 0, missing = 0, unready = 0;
	const char *first_unready = NULL;
	char id[320];
	int r = 0;

	check_id(id, sizeof(id), component, "crds");
	if (state->skip_reason)
		return check_add_skipped(state, component->name, id, title);
	for (size_t i = 0; i < component->object_count && r == 0; i++) {
		const struct check_object *object = &component->objects[i];
		struct doc_node *crd = NULL;

		if (object->kind != CHECK_OBJECT_CRD)
			continue;
		total++;
		r = check_get_object(state, CHECK_OBJECT_CRD, NULL, object->name, &crd);
		if (r < 0) {
			r = buf_printf(&problems, "%s%s: cannot read: %s", problems.len ? "; " : "", object->name,
				       check_failure_text(r));
			unready++;
			continue;
		}
		if (!crd)
			missing++;
		if (!check_crd_ready(object->name, crd, &problems)) {
			if (crd) {
				unready++;
				if (!first_unready)
					first_unready = object->name;
			}
		} else {
			r = check_list_add(&list, "%s", object->name);
		}
		doc_free(crd);
	}
	if (r == 0)
		r = check_list_finish(&list);
	if (r < 0)
		goto out;
	if (missing == 0 && unready == 0) {
		r = check_add(state, component->name, id, title, CHECK_PASS, NULL,
			      "%zu CRD%s Established with names accepted: %s", total, total == 1 ? "" : "s",
			      buf_str(&names));
	} else {
		char remedy[1024];

		if (missing > 0)
			snprintf(remedy, sizeof(remedy),
				 "apply the component again to restore the missing CRDs: mlboot install --force --only %s "
				 "(deleting a CRD deletes every object of its kind, so those must be restored too)",
				 component->name);
		else
			snprintf(remedy, sizeof(remedy),
				 "kubectl get crd %s -o yaml shows the conditions and their messages; a name "
				 "conflict needs the other CRD removed", first_unready ? first_unready : "NAME");
		r = check_add(state, component->name, id, title, CHECK_FAIL, remedy,
			      "%zu of %zu CRDs not ready: %s", missing + unready, total, buf_str(&problems));
	}
out:
	buf_release(&problems);
	buf_release(&names);
	return r;
}

static const char *workload_title(enum check_object_kind kind)
{
	switch (kind) {
	case CHECK_OBJECT_DEPLOYMENT:
		return "Deployments available with all replicas";
	case CHECK_OBJECT_STATEFULSET:
		return "StatefulSets with all replicas ready";
	default:
		return "DaemonSets ready on every node";
	}
}

static const char *workload_suffix(enum check_object_kind kind)
{
	switch (kind) {
	case CHECK_OBJECT_DEPLOYMENT:
		return "deployments";
	case CHECK_OBJECT_STATEFULSET:
		return "statefulsets";
	default:
		return "daemonsets";
	}
}

/* The remedy for the first problem found, in order of how sure its cure is. */
static void workload_remedy(char *remedy, size_t size, const struct check_component *component,
			    enum check_object_kind kind, const struct check_object *missing,
			    const struct check_object *scaled, const struct check_object *unready)
{
	const char *kind_name = check_object_kind_name(kind, true);

	if (missing)
		snprintf(remedy, size, "apply the component again: mlboot install --force --only %s", component->name);
	else if (scaled)
		snprintf(remedy, size, "scale it back to the replicas the bundle ships: kubectl -n %s scale %s %s "
			 "--replicas=%lld", scaled->namespace, kind_name, scaled->name,
			 scaled->replicas > 0 ? scaled->replicas : 1);
	else if (unready)
		snprintf(remedy, size, "kubectl -n %s describe %s %s and kubectl -n %s get pods show why its pods "
			 "are not ready (image missing on a node, crash, unschedulable)", unready->namespace,
			 kind_name, unready->name, unready->namespace);
	else
		snprintf(remedy, size, "check that the API server can be read: kubectl -n NAMESPACE get %s",
			 kind_name);
}

static int check_workloads(struct check_state *state, const struct check_component *component,
			   enum check_object_kind kind, struct live_set *live)
{
	const char *title = workload_title(kind);
	struct buf problems = BUF_INIT(REPORT_TEXT_MAX), names = BUF_INIT(REPORT_TEXT_MAX);
	struct check_list list = { &names, 0 };
	const struct check_object *missing = NULL, *scaled = NULL, *unready = NULL;
	size_t total = 0, bad = 0;
	char id[320];
	int r = 0;

	check_id(id, sizeof(id), component, workload_suffix(kind));
	if (state->skip_reason)
		return check_add_skipped(state, component->name, id, title);
	for (size_t i = 0; i < component->object_count && r == 0; i++) {
		const struct check_object *object = &component->objects[i];
		struct doc_node *workload = NULL;

		if (object->kind != kind)
			continue;
		total++;
		r = check_get_object(state, kind, object->namespace, object->name, &workload);
		if (r < 0) {
			bad++;
			if (!unready)
				unready = object;
			r = buf_printf(&problems, "%s%s/%s: cannot read: %s", problems.len ? "; " : "",
				       object->namespace, object->name, check_failure_text(r));
			continue;
		}
		switch (check_workload_state(kind, object, workload, &problems)) {
		case CHECK_WORKLOAD_READY:
			r = check_list_add(&list, "%s/%s", object->namespace, object->name);
			break;
		case CHECK_WORKLOAD_MISSING:
			bad++;
			if (!missing)
				missing = object;
			break;
		case CHECK_WORKLOAD_SCALED_TO_ZERO:
			bad++;
			if (!scaled)
				scaled = object;
			break;
		case CHECK_WORKLOAD_NOT_READY:
			bad++;
			if (!unready)
				unready = object;
			break;
		}
		if (r == 0)
			r = live_set_add(live, object, workload);
		else
			doc_free(workload);
	}
	if (r == 0)
		r = check_list_finish(&list);
	if (r < 0)
		goto out;
	if (bad == 0) {
		r = check_add(state, component->name, id, title, CHECK_PASS, NULL, "%zu ready: %s", total,
			      buf_str(&names));
	} else {
		char remedy[1024];

		workload_remedy(remedy, sizeof(remedy), component, kind, missing, scaled, unready);
		r = check_add(state, component->name, id, title, CHECK_FAIL, remedy, "%zu of %zu not ready: %s",
			      bad, total, buf_str(&problems));
	}
out:
	buf_release(&problems);
	buf_release(&names);
	return r;
}

/* The findings of the pod check across a component's workloads. */
struct pod_scan {
	const struct check_options *options;
	char **seen;                  /* "namespace/name" of each pod counted */
	size_t count;
	size_t not_ready;
	size_t restarting;
	long long max_restarts;
	char max_restarted[512];
	char first_bad[512];          /* "namespace name" of the first pod not ready */
	struct check_list bad_list;
	struct check_list restart_list;
	int error;
};

static bool pod_seen(const struct pod_scan *scan, const char *key)
{
	for (size_t i = 0; i < scan->count; i++)
		if (strcmp(scan->seen[i], key) == 0)
			return true;
	return false;
}

static int scan_pod(const struct doc_node *pod, void *userdata)
{
	struct pod_scan *scan = userdata;
	const char *namespace = doc_find_string(pod, "metadata", "namespace", NULL);
	const char *name = doc_find_string(pod, "metadata", "name", NULL);
	struct check_pod_state pod_state;
	char **seen;
	char *key;
	int r = 0;

	if (!namespace || !name || doc_find(pod, "metadata", "deletionTimestamp", NULL))
		return 0;
	if (asprintf(&key, "%s/%s", namespace, name) < 0)
		return -ENOMEM;
	if (pod_seen(scan, key)) {
		free(key);
		return 0;
	}
	if (scan->count >= CHECK_OBJECTS_MAX) {
		free(key);
		return -E2BIG;
	}
	seen = reallocarray(scan->seen, scan->count + 1, sizeof(*seen));
	if (!seen) {
		free(key);
		return -ENOMEM;
	}
	scan->seen = seen;
	seen[scan->count++] = key;

	check_pod_state(pod, &pod_state);
	if (!pod_state.running || !pod_state.ready) {
		scan->not_ready++;
		if (!scan->first_bad[0])
			snprintf(scan->first_bad, sizeof(scan->first_bad), "%s %s", namespace, name);
		r = check_list_add(&scan->bad_list, "%s (%s%s%s%s)", key, pod_state.phase ? pod_state.phase : "no phase",
				   pod_state.running && !pod_state.ready ? ", not Ready" : "",
				   pod_state.waiting_reason ? ", " : "",
				   pod_state.waiting_reason ? pod_state.waiting_reason : "");
	}
	if (r == 0 && pod_state.restarts > (long long)scan->options->restart_warn) {
		scan->restarting++;
		r = check_list_add(&scan->restart_list, "%s restarted %lld times", key, pod_state.restarts);
	}
	if (pod_state.restarts > scan->max_restarts || !scan->max_restarted[0]) {
		scan->max_restarts = pod_state.restarts;
		snprintf(scan->max_restarted, sizeof(scan->max_restarted), "%s %s", namespace, name);
	}
	return r;
}

/* Whether a live workload wants pods: replicas above 0, or a DaemonSet scheduled on a node. */
static bool wants_pods(const struct live_workload *workload)
{
	const struct doc_node *count;

	if (!workload->object)
		return false;
	if (workload->expected->kind == CHECK_OBJECT_DAEMONSET)
		count = doc_find(workload->object, "status", "desiredNumberScheduled", NULL);
	else
		count = doc_find(workload->object, "spec", "replicas", NULL);
	if (!count)
		return workload->expected->kind != CHECK_OBJECT_DAEMONSET;
	return count->type == DOC_INT && count->integer > 0;
}

static int list_workload_pods(struct check_state *state, const struct live_workload *workload,
			      struct pod_scan *scan)
{
	struct buf path = BUF_INIT(8192);
	int r;

	r = buf_printf(&path, "/api/v1/namespaces/%s/pods?", workload->expected->namespace);
	if (r == 0)
		r = check_selector_query(workload->object, &path);
	if (r == -ENOENT) {
		/* A selector of matchExpressions only: kubectl get pods cannot use it either. */
		log_debug("check: %s/%s has no matchLabels; its pods are not listed", workload->expected->namespace,
			  workload->expected->name);
		r = 0;
		goto out;
	}
	if (r == 0)
		r = kube_list(state->client, buf_str(&path), scan_pod, scan);
out:
	buf_release(&path);
	return r;
}

static int check_pods(struct check_state *state, const struct check_component *component,
		      const struct live_set *live)
{
	const char *title = "pods Running and Ready, without restarts piling up";
	struct buf bad_text = BUF_INIT(REPORT_TEXT_MAX), restart_text = BUF_INIT(REPORT_TEXT_MAX);
	struct pod_scan scan;
	size_t wanting = 0, unreadable = 0;
	char id[320], remedy[1024];
	int r = 0;

	memset(&scan, 0, sizeof(scan));
	scan.options = state->options;
	scan.bad_list.out = &bad_text;
	scan.restart_list.out = &restart_text;
	check_id(id, sizeof(id), component, "pods");
	if (state->skip_reason) {
		r = check_add_skipped(state, component->name, id, title);
		goto out;
	}
	for (size_t i = 0; i < live->count && r == 0; i++) {
		if (!wants_pods(&live->items[i]))
			continue;
		wanting++;
		r = list_workload_pods(state, &live->items[i], &scan);
		if (r < 0 && r != -ENOMEM && r != -E2BIG) {
			log_warning("cannot list the pods of %s/%s: %s", live->items[i].expected->namespace,
				    live->items[i].expected->name, check_failure_text(r));
			unreadable++;
			r = 0;
		}
	}
	if (r == 0)
		r = check_list_finish(&scan.bad_list);
	if (r == 0)
		r = check_list_finish(&scan.restart_list);
	if (r < 0)
		goto out;

	if (scan.not_ready > 0 || unreadable > 0) {
		const char *space = strchr(scan.first_bad, ' ');

		snprintf(remedy, sizeof(remedy),
			 "kubectl -n %.*s describe pod %s shows why it is not ready (image not on the node, "
			 "failing probe, crash); kubectl -n %.*s logs %s --previous shows the last crash",
			 space ? (int)(space - scan.first_bad) : 9, space ? scan.first_bad : "NAMESPACE",
			 space ? space + 1 : "NAME", space ? (int)(space - scan.first_bad) : 9,
			 space ? scan.first_bad : "NAMESPACE", space ? space + 1 : "NAME");
		r = check_add(state, component->name, id, title, CHECK_FAIL, remedy,
			      "%zu of %zu pods not Running and Ready: %s%s", scan.not_ready, scan.count,
			      buf_str(&bad_text), unreadable ? "; the pods of some workloads could not be listed" : "");
	} else if (scan.count == 0 && wanting > 0) {
		r = check_add(state, component->name, id, title, CHECK_FAIL,
			      "the workloads have no pods: kubectl get events -A --sort-by=.lastTimestamp "
			      "shows why none was created",
			      "no pod found for the %zu workloads that want pods", wanting);
	} else if (scan.count == 0) {
		r = check_add(state, component->name, id, title, CHECK_SKIP, NULL,
			      "no workload of this component wants a pod: each is missing or scaled to zero");
	} else if (scan.restarting > 0) {
		const char *space = strchr(scan.max_restarted, ' ');

		snprintf(remedy, sizeof(remedy),
			 "a pod that restarts often is unhealthy: kubectl -n %.*s logs %s --previous shows "
			 "why its last run ended", space ? (int)(space - scan.max_restarted) : 0,
			 scan.max_restarted, space ? space + 1 : "");
		r = check_add(state, component->name, id, title, CHECK_WARN, remedy,
			      "%zu pods Running and Ready, %zu restarted more than %u times: %s", scan.count,
			      scan.restarting, state->options->restart_warn, buf_str(&restart_text));
	} else {
		r = check_add(state, component->name, id, title, CHECK_PASS, NULL,
			      "%zu pod%s Running and Ready; most restarts of a pod: %lld (limit %u)", scan.count,
			      scan.count == 1 ? "" : "s", scan.max_restarts, state->options->restart_warn);
	}
out:
	for (size_t i = 0; i < scan.count; i++)
		free(scan.seen[i]);
	free(scan.seen);
	buf_release(&bad_text);
	buf_release(&restart_text);
	return r;
}

/* The findings of the webhook check across a component's webhook configurations. */
struct webhook_scan {
	size_t configurations;
	size_t webhooks;
	size_t url_webhooks;
	size_t ca_problems;
	size_t endpoint_problems;
	size_t missing;
	struct buf problems;
	struct buf services;
	struct check_list service_list;
	char first_service[512];              /* "namespace name" of the first Service without endpoints */
};

static int scan_webhook(struct check_state *state, struct webhook_scan *scan, const char *configuration,
			const struct doc_node *webhook)
{
	const struct doc_node *service = doc_find(webhook, "clientConfig", "service", NULL);
	const char *namespace = doc_get_string(service, "namespace");
	const char *name = doc_get_string(service, "name");
	const char *source = NULL;
	size_t ready = 0;
	int r;

	scan->webhooks++;
	if (!check_webhook_ca_bundle(configuration, webhook, &scan->problems))
		scan->ca_problems++;
	if (!service) {
		scan->url_webhooks++;
		return 0;
	}
	if (!namespace || !name) {
		scan->endpoint_problems++;
		return buf_printf(&scan->problems, "%s%s: clientConfig.service has no namespace or name",
				  scan->problems.len ? "; " : "", configuration);
	}
	r = check_service_ready_endpoints(state, namespace, name, &ready, &source);
	if (r < 0 && r != -ENOMEM) {
		scan->endpoint_problems++;
		return buf_printf(&scan->problems, "%sService %s/%s: cannot read its endpoints: %s",
				  scan->problems.len ? "; " : "", namespace, name, check_failure_text(r));
	}
	if (r < 0)
		return r;
	if (ready == 0) {
		scan->endpoint_problems++;
		if (!scan->first_service[0])
			snprintf(scan->first_service, sizeof(scan->first_service), "%s %s", namespace, name);
		return buf_printf(&scan->problems, "%s%s: Service %s/%s has no ready endpoint in its %s",
				  scan->problems.len ? "; " : "", configuration, namespace, name, source);
	}
	return check_list_add(&scan->service_list, "%s/%s (%zu ready in its %s)", namespace, name, ready, source);
}

static int check_webhooks(struct check_state *state, const struct check_component *component)
{
	const char *title = "webhooks with a CA bundle and a ready endpoint";
	struct webhook_scan scan;
	char id[320], remedy[1400];
	int r = 0;

	memset(&scan, 0, sizeof(scan));
	buf_init(&scan.problems, REPORT_TEXT_MAX);
	buf_init(&scan.services, REPORT_TEXT_MAX);
	scan.service_list.out = &scan.services;
	check_id(id, sizeof(id), component, "webhooks");
	if (state->skip_reason) {
		r = check_add_skipped(state, component->name, id, title);
		goto out;
	}
	for (size_t i = 0; i < component->object_count && r == 0; i++) {
		const struct check_object *object = &component->objects[i];
		const struct doc_node *webhooks;
		struct doc_node *configuration = NULL;

		if (object->kind != CHECK_OBJECT_MUTATING_WEBHOOK && object->kind != CHECK_OBJECT_VALIDATING_WEBHOOK)
			continue;
		scan.configurations++;
		r = check_get_object(state, object->kind, NULL, object->name, &configuration);
		if (r < 0 || !configuration) {
			scan.missing++;
			r = buf_printf(&scan.problems, "%s%s %s: %s", scan.problems.len ? "; " : "",
				       check_object_kind_name(object->kind, false), object->name,
				       r < 0 ? check_failure_text(r) : "not found");
			continue;
		}
		webhooks = doc_get(configuration, "webhooks");
		for (size_t j = 0; webhooks && webhooks->type == DOC_SEQ && j < webhooks->count && r == 0; j++)
			r = scan_webhook(state, &scan, object->name, webhooks->items[j]);
		doc_free(configuration);
	}
	if (r == 0)
		r = check_list_finish(&scan.service_list);
	if (r < 0)
		goto out;

	if (scan.missing + scan.ca_problems + scan.endpoint_problems == 0) {
		r = check_add(state, component->name, id, title, CHECK_PASS, NULL,
			      "%zu webhook%s in %zu configuration%s, each with a CA bundle; services with ready "
			      "endpoints: %s%s", scan.webhooks, scan.webhooks == 1 ? "" : "s", scan.configurations,
			      scan.configurations == 1 ? "" : "s", scan.services.len ? buf_str(&scan.services) : "none",
			      scan.url_webhooks ? "; webhooks called by URL are not probed" : "");
		goto out;
	}
	if (scan.missing > 0)
		snprintf(remedy, sizeof(remedy), "apply the component again: mlboot install --force --only %s",
			 component->name);
	else if (scan.ca_problems > 0)
		snprintf(remedy, sizeof(remedy),
			 "a webhook without its CA bundle makes the API server reject the calls it should "
			 "admit: cert-manager's cainjector fills caBundle where the configuration has the "
			 "annotation cert-manager.io/inject-ca-from, and some components fill their own; check "
			 "that cert-manager-cainjector runs, then apply the component again: mlboot install --force "
			 "--only %s", component->name);
	else {
		const char *space = strchr(scan.first_service, ' ');

		snprintf(remedy, sizeof(remedy),
			 "the webhook's Service has no ready pod, so the API server fails the requests it "
			 "should admit: kubectl -n %.*s get endpointslices -l kubernetes.io/service-name=%s, "
			 "and the pods of that Service", space ? (int)(space - scan.first_service) : 0,
			 scan.first_service, space ? space + 1 : "");
	}
	r = check_add(state, component->name, id, title, CHECK_FAIL, remedy, "%zu of %zu webhooks have problems: %s",
		      scan.ca_problems + scan.endpoint_problems + scan.missing, scan.webhooks + scan.missing,
		      buf_str(&scan.problems));
out:
	buf_release(&scan.problems);
	buf_release(&scan.services);
	return r;
}

static int check_component(struct check_state *state, const struct check_component *component)
{
	static const enum check_object_kind workload_kinds[] = {
		CHECK_OBJECT_DEPLOYMENT, CHECK_OBJECT_STATEFULSET, CHECK_OBJECT_DAEMONSET,
	};
	struct live_set live = { NULL, 0 };
	bool has_workloads = false;
	int r = 0;

	log_info("checking component '%s'", component->name);
	if (count_kind(component, CHECK_OBJECT_CRD) > 0)
		r = check_crds(state, component);
	for (size_t i = 0; i < ARRAY_SIZE(workload_kinds) && r == 0; i++) {
		if (count_kind(component, workload_kinds[i]) == 0)
			continue;
		has_workloads = true;
		r = check_workloads(state, component, workload_kinds[i], &live);
	}
	if (r == 0 && has_workloads)
		r = check_pods(state, component, &live);
	if (r == 0 && count_kind(component, CHECK_OBJECT_MUTATING_WEBHOOK) +
			      count_kind(component, CHECK_OBJECT_VALIDATING_WEBHOOK) > 0)
		r = check_webhooks(state, component);
	live_set_release(&live);
	return r;
}

int check_components(struct check_state *state)
{
	int r = 0;

	for (size_t i = 0; i < state->platform->component_count && r == 0; i++)
		r = check_component(state, &state->platform->components[i]);
	return r;
}
