/*
 * One run of mlboot check: the cluster checks of preflight with the
 * bundle's version range, then the components, their add-on endpoints,
 * the air gap and the nodes.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_internal.h"

#define GROUP_PLATFORM "platform"

void check_options_init(struct check_options *options)
{
	memset(options, 0, sizeof(*options));
	options->restart_warn = CHECK_DEFAULT_RESTART_WARN;
	options->min_free = CHECK_DEFAULT_MIN_FREE;
	options->timeout = CHECK_DEFAULT_TIMEOUT;
	options->model_namespace = CHECK_DEFAULT_MODEL_NAMESPACE;
	options->model_name = CHECK_DEFAULT_MODEL_NAME;
}

int check_add(struct check_state *state, const char *group, const char *id, const char *title,
	      enum check_status status, const char *remedy, const char *format, ...)
{
	struct buf evidence = BUF_INIT(REPORT_TEXT_MAX);
	va_list args;
	int r;

	va_start(args, format);
	r = buf_vprintf(&evidence, format, args);
	va_end(args);
	/* Evidence past the report's maximum is cut by report_add(); here it only must not fail. */
	if (r == -E2BIG)
		r = 0;
	if (r == 0)
		r = report_add(state->report, group, id, title, status,
			       status == CHECK_PASS || status == CHECK_SKIP ? NULL : remedy, "%s",
			       buf_str(&evidence));
	if (r == 0)
		log_debug("check: %s: %s: %s", group, id, check_status_name(status));
	buf_release(&evidence);
	return r;
}

int check_add_finding(struct check_state *state, const char *group, const char *id, const char *title,
		      const struct preflight_finding *finding)
{
	const char *remedy = finding->remedy.len ? buf_str(&finding->remedy) : NULL;

	return check_add(state, group, id, title, finding->status, remedy, "%s", buf_str(&finding->evidence));
}

int check_add_skipped(struct check_state *state, const char *group, const char *id, const char *title)
{
	return check_add(state, group, id, title, CHECK_SKIP, NULL, "skipped: %s", state->skip_reason);
}

const char *check_failure_text(int r)
{
	const char *message = kube_last_error();

	return message && message[0] ? message : mlb_strerror(r);
}

int check_url_escape(struct buf *out, const char *text)
{
	static const char unreserved[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~";
	int r = 0;

	for (const unsigned char *p = (const unsigned char *)text; *p && r == 0; p++) {
		if (strchr(unreserved, *p))
			r = buf_append_char(out, (char)*p);
		else
			r = buf_printf(out, "%%%02X", *p);
	}
	return r;
}

int check_selector_query(const struct doc_node *workload, struct buf *out)
{
	const struct doc_node *labels = doc_find(workload, "spec", "selector", "matchLabels", NULL);
	struct buf selector = BUF_INIT(4096);
	int r = 0;

	if (!labels || labels->type != DOC_MAP || labels->count == 0)
		return -ENOENT;
	for (size_t i = 0; i < labels->count && r == 0; i++) {
		const struct doc_node *label = labels->items[i];

		if (label->type != DOC_STRING)
			continue;
		r = buf_printf(&selector, "%s%s=%s", selector.len ? "," : "", label->key, label->text);
	}
	if (r == 0)
		r = buf_append_str(out, "labelSelector=");
	if (r == 0)
		r = check_url_escape(out, buf_str(&selector));
	buf_release(&selector);
	return r;
}

static bool namespace_known(const struct check_state *state, const char *namespace)
{
	for (size_t i = 0; i < state->namespace_count; i++)
		if (strcmp(state->namespaces[i], namespace) == 0)
			return true;
	return false;
}

static int namespace_add(struct check_state *state, const char *namespace)
{
	char **namespaces;

	if (!namespace || !namespace[0] || namespace_known(state, namespace))
		return 0;
	if (state->namespace_count >= CHECK_OBJECTS_MAX)
		return -E2BIG;
	namespaces = reallocarray(state->namespaces, state->namespace_count + 1, sizeof(*namespaces));
	if (!namespaces)
		return -ENOMEM;
	state->namespaces = namespaces;
	namespaces[state->namespace_count] = strdup(namespace);
	if (!namespaces[state->namespace_count])
		return -ENOMEM;
	state->namespace_count++;
	return 0;
}

/* The namespaces of the platform: those the components create or put objects in, and the model's. */
static int collect_namespaces(struct check_state *state)
{
	const struct check_platform *platform = state->platform;
	int r = 0;

	for (size_t i = 0; i < platform->component_count && r == 0; i++) {
		const struct check_component *component = &platform->components[i];

		r = namespace_add(state, component->namespace);
		for (size_t j = 0; j < component->object_count && r == 0; j++) {
			const struct check_object *object = &component->objects[j];

			r = namespace_add(state, object->kind == CHECK_OBJECT_NAMESPACE ? object->name
											: object->namespace);
		}
	}
	return r;
}

static void free_namespaces(struct check_state *state)
{
	for (size_t i = 0; i < state->namespace_count; i++)
		free(state->namespaces[i]);
	free(state->namespaces);
	state->namespaces = NULL;
	state->namespace_count = 0;
}

/* Adds platform.components: which components the checks expect, and from where. */
static int check_platform_components(struct check_state *state)
{
	const struct check_platform *platform = state->platform;
	struct buf names = BUF_INIT(REPORT_TEXT_MAX);
	struct check_list list = { &names, 0 };
	const char *title = "components to check";
	int r = 0;

	for (size_t i = 0; i < platform->component_count && r == 0; i++) {
		const struct check_component *component = &platform->components[i];

		r = check_list_add(&list, "%s%s%s", component->name, component->version ? " " : "",
				   component->version ? component->version : "");
	}
	if (r == 0)
		r = check_list_finish(&list);
	if (r < 0)
		goto out;
	if (platform->from_bundle) {
		r = check_add(state, GROUP_PLATFORM, "platform.components", title, CHECK_PASS, NULL,
			      "%zu components of the bundle's platform %s %s: %s", platform->component_count,
			      platform->name ? platform->name : "?", platform->version ? platform->version : "?",
			      buf_str(&names));
	} else if (!state->client || state->skip_reason) {
		r = check_add_skipped(state, GROUP_PLATFORM, "platform.components", title);
	} else if (platform->component_count == 0) {
		r = check_add(state, GROUP_PLATFORM, "platform.components", title, CHECK_FAIL,
			      "install the platform with mlboot install, or pass its bundle with --bundle "
			      "so that the checks know what to expect",
			      "no bundle was given, and no object on the cluster carries the label "
			      CHECK_LABEL_MANAGED_BY "=mlboot");
	} else {
		r = check_add(state, GROUP_PLATFORM, "platform.components", title, CHECK_PASS, NULL,
			      "no bundle was given: %zu components found by their " CHECK_LABEL_COMPONENT
			      " labels%s%s: %s", platform->component_count,
			      platform->version ? ", platform version " : "",
			      platform->version ? platform->version : "", buf_str(&names));
	}
out:
	buf_release(&names);
	return r;
}

static const char *access_reason(int access)
{
	switch (access) {
	case MLB_EUNREACHABLE:
		return "the API server is unreachable";
	case MLB_EDENIED:
		return "the API server rejected the TLS handshake or the credentials";
	case MLB_EINPUT:
		return "no usable kubeconfig";
	default:
		return "the API server cannot be used";
	}
}

int check_run(const struct check_options *options, struct check_platform *platform, struct report *report)
{
	struct preflight_cluster_options cluster = options->cluster;
	struct check_state state = { .options = options, .platform = platform, .report = report };
	int access, nodes, r;

	cluster.skip_admin = true;
	cluster.client_out = &state.client;
	if (platform->from_bundle && platform->have_version_range) {
		cluster.min_version = platform->min_version;
		cluster.max_version = platform->max_version;
	}
	if (options->kubeconfig_failure < 0) {
		access = options->kubeconfig_failure;
		state.skip_reason = "the kubeconfig of kubeconfig.fromHost could not be read";
	} else {
		log_info("checking the cluster's API server");
		access = preflight_cluster(&cluster, report);
		if (access == -ENOMEM)
			return access;
		if (access < 0 || !state.client)
			state.skip_reason = access_reason(access);
	}

	if (!platform->from_bundle && state.client) {
		log_info("finding the platform's components by their labels");
		r = check_platform_from_labels(state.client, platform);
		if (r < 0) {
			log_errno(LOG_ERR, r, "failed to list the objects mlboot installed: %s", check_failure_text(r));
			if (r == -ENOMEM)
				goto out;
			state.skip_reason = "the objects mlboot installed could not be listed";
		}
	}
	r = check_platform_components(&state);
	if (r == 0)
		r = collect_namespaces(&state);
	if (r == 0)
		r = check_components(&state);
	if (r == 0)
		r = check_addons(&state);
	if (r == 0)
		r = check_airgap(&state);
	if (r < 0)
		goto out;
	nodes = check_nodes(&state);
	if (nodes == -ENOMEM) {
		r = nodes;
		goto out;
	}
	r = access < 0 ? access : nodes;
out:
	kube_client_free(state.client);
	free_namespaces(&state);
	return r;
}
