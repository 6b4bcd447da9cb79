/*
 * The node checks: over SSH (or locally for the host mlboot runs on),
 * containerd responds, the disk has room, and every image of the bundle is
 * present and pinned in containerd's k8s.io namespace, where kubelet
 * finds images.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "check_internal.h"
#include "node.h"
#include "preflight_node.h"

/* Time `ctr images ls` may take on one node. */
#define CTR_TIMEOUT_MS 60000

/* The results of one host's task, filled by that host's thread. */
struct host_check {
	bool connected;
	long long connect_ms;
	int probe_result;
	struct node_error probe_error;
	struct node_result probe;
	int64_t local_start_ns;
	int64_t local_end_ns;
	int ctr_result;
	struct node_error ctr_error;
	struct node_result ctr;
};

struct nodes_run {
	struct node_options node_options;
	struct host_check *hosts;
};

static int64_t realtime_ns(void)
{
	struct timespec now;

	clock_gettime(CLOCK_REALTIME, &now);
	return (int64_t)now.tv_sec * 1000000000 + now.tv_nsec;
}

static long long monotonic_ms(void)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (long long)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

static int check_host(const struct node_host *host, size_t index, void *context, struct node_error *err)
{
	static const char *const probe_argv[] = { "sh", "-s", NULL };
	static const char *const ctr_argv[] = {
		"ctr", "--address", PREFLIGHT_CONTAINERD_SOCKET, "-n", "k8s.io", "images", "ls", NULL,
	};
	struct nodes_run *run = context;
	struct host_check *result = &run->hosts[index];
	struct node_session *session = NULL;
	struct node_command probe = {
		.argv = probe_argv,
		.stdin_data = preflight_probe_script,
		.stdout_max = NODE_PROBE_OUTPUT_MAX + 1,
		.stderr_max = 4096,
		.timeout_ms = PREFLIGHT_PROBE_TIMEOUT_MS,
	};
	struct node_command ctr = {
		.argv = ctr_argv,
		.stdout_max = CHECK_CTR_OUTPUT_MAX,
		.stderr_max = 4096,
		.timeout_ms = CTR_TIMEOUT_MS,
	};
	long long started = monotonic_ms();
	int r;

	probe.stdin_len = strlen(preflight_probe_script);
	r = node_connect(host, &run->node_options, &session, err);
	if (r < 0)
		return r;
	result->connected = true;
	result->connect_ms = monotonic_ms() - started;
	result->local_start_ns = realtime_ns();
	result->probe_result = node_run(session, &probe, &result->probe, &result->probe_error);
	result->local_end_ns = realtime_ns();
	result->ctr_result = node_run(session, &ctr, &result->ctr, &result->ctr_error);
	node_close(session);
	log_debug("host '%s': checked in %lld ms", host->name, monotonic_ms() - started);
	return 0;
}

static const char *unreachable_remedy(int result)
{
	switch (result) {
	case MLB_EDENIED:
		return "check the pinned hostKey or the known_hosts entry of the host, and that the SSH user's "
		       "public key is in its authorized_keys";
	case MLB_EINPUT:
		return "fix the ssh settings of this host in mlboot.yaml or its key file";
	default:
		return "check that the host is up, that sshd listens on the address and port in mlboot.yaml, "
		       "and that no firewall between here and there drops the connection";
	}
}

/* Copies at most 300 bytes of a command's stderr, without the final line break. */
static void stderr_excerpt(const struct node_result *result, char *out, size_t size)
{
	size_t len = result->err.len > 300 ? 300 : result->err.len;

	while (len > 0 && (result->err.data[len - 1] == '\n' || result->err.data[len - 1] == '\r'))
		len--;
	snprintf(out, size, "%.*s", (int)len, len ? result->err.data : "");
}

static int report_images(struct check_state *state, const char *group, struct host_check *result)
{
	const char *images_title = "the bundle's images present", *pinned_title = "the bundle's images pinned";
	struct check_node_images images = { NULL, 0 };
	struct preflight_finding present, pinned;
	char error[400];
	size_t skipped = 0;
	int r;

	if (!state->platform->from_bundle) {
		r = check_add(state, group, "node.images", images_title, CHECK_SKIP, NULL,
			      "skipped: no bundle, so the images the node should hold are not known");
		if (r == 0)
			r = check_add(state, group, "node.pinned", pinned_title, CHECK_SKIP, NULL,
				      "skipped: no bundle, so the images the node should hold are not known");
		return r;
	}
	if (result->ctr_result < 0 || result->ctr.exit_status != 0) {
		const char *remedy = "containerd must answer ctr on the node: see the containerd check of this node";

		if (result->ctr_result < 0) {
			r = check_add(state, group, "node.images", images_title, CHECK_FAIL, remedy,
				      "ctr -n k8s.io images ls failed: %s",
				      result->ctr_error.message[0] ? result->ctr_error.message
								   : mlb_strerror(result->ctr_result));
		} else {
			stderr_excerpt(&result->ctr, error, sizeof(error));
			r = check_add(state, group, "node.images", images_title, CHECK_FAIL, remedy,
				      "ctr -n k8s.io images ls exited with status %d: %s", result->ctr.exit_status,
				      error[0] ? error : "no message");
		}
		if (r == 0)
			r = check_add(state, group, "node.pinned", pinned_title, CHECK_SKIP, NULL,
				      "skipped: the node's images could not be listed");
		return r;
	}
	r = check_parse_ctr_images(result->ctr.out.data ? result->ctr.out.data : "", result->ctr.out.len, &images,
				   &skipped);
	if (r < 0)
		return r;
	if (skipped > 0)
		log_debug("check: %zu lines of ctr images ls were not understood", skipped);
	preflight_finding_init(&present);
	preflight_finding_init(&pinned);
	r = check_evaluate_node_images(state->platform, &images, &present, &pinned);
	if (r == 0)
		r = check_add_finding(state, group, "node.images", images_title, &present);
	if (r == 0)
		r = check_add_finding(state, group, "node.pinned", pinned_title, &pinned);
	preflight_finding_release(&present);
	preflight_finding_release(&pinned);
	check_node_images_release(&images);
	return r;
}

static int report_host(struct check_state *state, const struct config_host *host,
		       const struct node_outcome *outcome, struct host_check *result)
{
	struct node_probe probe;
	struct node_probe_context context = {
		.host = host,
		.space_needed = state->options->min_free,
		.local_start_ns = result->local_start_ns,
		.local_end_ns = result->local_end_ns,
		.exit_status = result->probe.exit_status,
		.stderr_text = result->probe.err.data,
		.stderr_len = result->probe.err.len,
	};
	char group[300];
	int r;

	snprintf(group, sizeof(group), "node %s", host->name);
	if (outcome->result < 0 || !result->connected) {
		r = check_add(state, group, "node.reachable", "host reachable", CHECK_FAIL,
			      unreachable_remedy(outcome->result), "%s",
			      outcome->error.message[0] ? outcome->error.message : mlb_strerror(outcome->result));
		if (r == 0)
			log_error("%s", outcome->error.message[0] ? outcome->error.message
								  : mlb_strerror(outcome->result));
		return r;
	}
	if (host->local)
		r = check_add(state, group, "node.reachable", "host reachable", CHECK_PASS, NULL,
			      "the local host%s", host->sudo ? ", with sudo" : "");
	else
		r = check_add(state, group, "node.reachable", "host reachable", CHECK_PASS, NULL,
			      "%s@%s port %u%s%s%s, connected in %lld ms", host->ssh.user, host->ssh.address,
			      host->ssh.port, host->ssh.bastion ? " through " : "",
			      host->ssh.bastion ? host->ssh.bastion->address : "", host->sudo ? ", with sudo" : "",
			      result->connect_ms);
	if (r < 0)
		return r;

	if (result->probe_result < 0) {
		r = check_add(state, group, "node.probe", "probe ran", CHECK_FAIL,
			      result->probe_result == MLB_EDENIED
				      ? "allow the SSH user to run commands through sudo without a password"
				      : "run mlboot check -v for details, and check that the host is not overloaded",
			      "%s", result->probe_error.message[0] ? result->probe_error.message
								   : mlb_strerror(result->probe_result));
	} else {
		node_probe_parse(result->probe.out.data ? result->probe.out.data : "", result->probe.out.len, &probe);
		r = preflight_node_evaluate_runtime(&probe, &context, state->report);
	}
	if (r == 0)
		r = report_images(state, group, result);
	return r;
}

int check_nodes(struct check_state *state)
{
	const struct config *config = state->options->config;
	struct nodes_run run;
	struct node_host *hosts = NULL;
	struct node_outcome *outcomes = NULL;
	size_t count = config ? config->host_count : 0, unreachable = 0, denied = 0;
	int r = -ENOMEM;

	if (count == 0)
		return check_add(state, CHECK_GROUP_NODES, "nodes.ssh", "nodes checked over SSH", CHECK_SKIP, NULL,
				 "no hosts to check: pass mlboot.yaml with -f to check containerd, disk space and "
				 "images on every node");
	memset(&run, 0, sizeof(run));
	node_options_init(&run.node_options);
	run.node_options.accept_new_host_keys = state->options->accept_new_host_keys;
	hosts = calloc(count, sizeof(*hosts));
	outcomes = calloc(count, sizeof(*outcomes));
	run.hosts = calloc(count, sizeof(*run.hosts));
	if (!hosts || !outcomes || !run.hosts)
		goto out;
	for (size_t i = 0; i < count; i++) {
		node_result_init(&run.hosts[i].probe);
		node_result_init(&run.hosts[i].ctr);
		r = config_host_to_node(&config->hosts[i], &hosts[i]);
		if (r < 0)
			goto out;
	}
	log_info("checking %zu host%s over SSH, at most %u at a time", count, count == 1 ? "" : "s",
		 config->parallelism);
	r = node_for_each(hosts, count, config->parallelism, check_host, &run, outcomes);
	if (r == -ENOMEM || r == -EAGAIN)
		goto out;
	r = 0;
	for (size_t i = 0; i < count && r == 0; i++) {
		r = report_host(state, &config->hosts[i], &outcomes[i], &run.hosts[i]);
		if (outcomes[i].result < 0)
			unreachable++;
		if (outcomes[i].result == MLB_EDENIED)
			denied++;
	}
	/* A rejected host key or user key needs the operator's decision, so it wins over a host down. */
	if (r == 0 && denied > 0)
		r = MLB_EDENIED;
	else if (r == 0 && unreachable > 0)
		r = MLB_EUNREACHABLE;
out:
	for (size_t i = 0; hosts && i < count; i++)
		node_host_release(&hosts[i]);
	for (size_t i = 0; run.hosts && i < count; i++) {
		node_result_release(&run.hosts[i].probe);
		node_result_release(&run.hosts[i].ctr);
	}
	free(hosts);
	free(outcomes);
	free(run.hosts);
	return r;
}
