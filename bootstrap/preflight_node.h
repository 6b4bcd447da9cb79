/*
 * Node preflight: what each host of mlboot.yaml must offer before an
 * install, found by one probe per host.
 *
 * The probe is one POSIX sh script, sent on the standard input of "sh -s"
 * (through "sudo -n" when the host has sudo: true), that prints key=value
 * lines between the markers "probe_version=1" and "probe_end=1". The
 * output is parsed strictly: a line that is not a known key with a valid
 * value is reported as a problem and its value is not used. Values are
 * escaped before they are printed.
 *
 * Each finding becomes a check in the report, in the group "node NAME",
 * with the evidence and, when it did not pass, the remedy. Checks that
 * compare nodes (hostnames, architectures) go to the group "nodes".
 */
#ifndef MLBOOT_BOOTSTRAP_PREFLIGHT_NODE_H
#define MLBOOT_BOOTSTRAP_PREFLIGHT_NODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "node.h"
#include "report.h"

/* Free bytes needed where containerd keeps its content, until bundles state their size. */
#define PREFLIGHT_DEFAULT_SPACE_NEEDED (20ULL << 30)
/* The containerd socket and content root that the probe checks. */
#define PREFLIGHT_CONTAINERD_SOCKET "/run/containerd/containerd.sock"
#define PREFLIGHT_CONTAINERD_ROOT "/var/lib/containerd"

/* Time the probe may take on one node, connection excluded. */
#define PREFLIGHT_PROBE_TIMEOUT_MS 60000

/* Clock offsets: up to the first passes, up to the second warns, beyond fails (ms). */
#define PREFLIGHT_CLOCK_WARN_MS 1000
#define PREFLIGHT_CLOCK_FAIL_MS 60000

struct preflight_nodes_options {
	uint64_t space_needed;       /* bytes; 0 means PREFLIGHT_DEFAULT_SPACE_NEEDED */
	bool accept_new_host_keys;   /* record the key of a host no known_hosts file lists */
};

/*
 * Probes every host of config, config->parallelism at a time, and adds the
 * checks to report. A host that cannot be reached or probed is one failing
 * check naming the host and the reason; the other hosts are still probed.
 * Returns 0 when every host was probed (whatever the checks found),
 * MLB_EUNREACHABLE when at least one host could not be reached, or -ENOMEM.
 * Blocks for at most the connection timeouts of node_options_init() plus
 * PREFLIGHT_PROBE_TIMEOUT_MS for each round of hosts.
 */
int preflight_nodes(const struct config *config, const struct preflight_nodes_options *options,
		    struct report *report);

/*
 * Points cluster (the kubeconfig options of the cluster checks) at the
 * kubeconfig that config names, unless the command line already named a
 * file (cluster->path set); a context from the command line is kept. For
 * kubeconfig.fromHost the file is fetched into resolved, which must outlive
 * cluster and be released with config_kubeconfig_release(). When the fetch
 * fails, adds the failing check "cluster.kubeconfig" to report, logs the
 * reason and returns its result code (node/node.h).
 */
int preflight_use_config_kubeconfig(const struct config *config,
				    const struct preflight_nodes_options *options,
				    struct kubeconfig_options *cluster,
				    struct config_kubeconfig *resolved, struct report *report);

/*
 * Parses a byte count for --space-needed: digits, optionally followed by
 * K, M, G or T (or KiB, MiB, GiB, TiB), all powers of 1024. Returns
 * -EINVAL or -ERANGE on anything else or on overflow.
 */
int preflight_parse_size(const char *text, uint64_t *out);

/* The script that preflight_nodes() runs on each host. */
extern const char preflight_probe_script[];

/* Probe output */

#define NODE_PROBE_OUTPUT_MAX (64 * 1024)
#define NODE_PROBE_LINE_MAX 1024
#define NODE_PROBE_PROBLEMS_KEPT 16
#define NODE_PROBE_PROBLEM_LEN 240

enum node_probe_key {
	NODE_PROBE_CLOCK_START,
	NODE_PROBE_UID,
	NODE_PROBE_ARCH,
	NODE_PROBE_KERNEL,
	NODE_PROBE_HOSTNAME,
	NODE_PROBE_OS_ID,
	NODE_PROBE_OS_VERSION_ID,
	NODE_PROBE_OS_PRETTY_NAME,
	NODE_PROBE_CGROUP2,
	NODE_PROBE_CGROUP_CONTROLLERS,
	NODE_PROBE_CONTAINERD_SOCKET,
	NODE_PROBE_CTR,
	NODE_PROBE_CONTAINERD_ANSWER,
	NODE_PROBE_CONTAINERD_VERSION,
	NODE_PROBE_DISK_PATH,
	NODE_PROBE_DISK_TOTAL_KB,
	NODE_PROBE_DISK_FREE_KB,
	NODE_PROBE_MEM_TOTAL_KB,
	NODE_PROBE_SWAP_TOTAL_KB,
	NODE_PROBE_CPUS,
	NODE_PROBE_MODULE_OVERLAY,
	NODE_PROBE_MODULE_BR_NETFILTER,
	NODE_PROBE_IP_FORWARD,
	NODE_PROBE_BRIDGE_NF_CALL_IPTABLES,
	NODE_PROBE_CLOCK_END,
	NODE_PROBE_KEY_COUNT,
};

/* A sysctl as the probe read it: absent when /proc/sys has no such file. */
enum node_probe_sysctl {
	NODE_SYSCTL_ABSENT = -1,
	NODE_SYSCTL_OFF = 0,
	NODE_SYSCTL_ON = 1,
};

/*
 * The values a probe found. A value is valid only when node_probe_has() is
 * true for its key, and text values are "" otherwise.
 */
struct node_probe {
	uint64_t present;                 /* bit (1 << key) for each valid key */
	bool begin_seen;
	bool end_seen;

	char arch[32];                    /* uname -m */
	char kernel[128];                 /* uname -r */
	char hostname[254];               /* uname -n */
	char os_id[64];                   /* ID of /etc/os-release */
	char os_version_id[64];           /* VERSION_ID; may be "" */
	char os_pretty_name[128];         /* PRETTY_NAME; may be "" */
	char cgroup_controllers[256];     /* cgroup v2 controllers; "" for cgroup v1 */
	char containerd_version[64];      /* server version; "" when ctr version failed */
	char disk_path[256];              /* the folder whose file system was measured */

	unsigned long long uid;
	bool cgroup2;
	bool containerd_socket;
	bool ctr;
	bool containerd_answer;
	bool module_overlay;
	bool module_br_netfilter;
	enum node_probe_sysctl ip_forward;
	enum node_probe_sysctl bridge_nf_call_iptables;
	unsigned long long disk_total_kb;
	unsigned long long disk_free_kb;
	unsigned long long mem_total_kb;
	unsigned long long swap_total_kb;
	unsigned long long cpus;
	int64_t clock_start_ns;           /* the node's CLOCK_REALTIME when the probe began */
	int64_t clock_end_ns;             /* ... and when it ended */

	/* Problems in the output, escaped; problem_count also counts those not kept. */
	char problems[NODE_PROBE_PROBLEMS_KEPT][NODE_PROBE_PROBLEM_LEN];
	size_t problem_count;
};

/*
 * Parses the probe's output (at most NODE_PROBE_OUTPUT_MAX bytes are
 * read). Returns 0 when the output is complete and every line valid, else
 * MLB_EINPUT with the problems in out; the valid values are kept either way.
 */
int node_probe_parse(const char *output, size_t len, struct node_probe *out);
bool node_probe_has(const struct node_probe *probe, enum node_probe_key key);
const char *node_probe_key_name(enum node_probe_key key);

/*
 * Estimates how far the node's clock is ahead of the local one (negative:
 * behind), from the local CLOCK_REALTIME before the probe was sent and
 * after its output arrived. The network round trip is the local interval
 * minus the probe's own run time on the node. The node's end time is taken
 * to be half a round trip before the output arrived, and *uncertainty_ns
 * is that half. Returns -ENODATA when the probe has no valid clock values.
 */
int node_probe_clock_offset(const struct node_probe *probe, int64_t local_start_ns,
			    int64_t local_end_ns, int64_t *offset_ns, int64_t *uncertainty_ns);

/* The inputs of preflight_node_evaluate() besides the probe. */
struct node_probe_context {
	const struct config_host *host;
	uint64_t space_needed;
	int64_t local_start_ns;           /* CLOCK_REALTIME around the probe */
	int64_t local_end_ns;
	int exit_status;                  /* of the probe script */
	const char *stderr_text;          /* the probe's stderr, unescaped; may be NULL */
	size_t stderr_len;
};

/* Adds the checks of one probed host to report, in the group "node NAME". */
int preflight_node_evaluate(const struct node_probe *probe, const struct node_probe_context *context,
			    struct report *report);
/*
 * Adds only the checks that an installed node still needs to pass to
 * report, in the group "node NAME": node.probe, node.containerd and
 * node.disk (free space against context->space_needed).
 */
int preflight_node_evaluate_runtime(const struct node_probe *probe,
				    const struct node_probe_context *context, struct report *report);

/*
 * Compares the nodes: adds "nodes.hostnames" (fails when two hosts report
 * one hostname) and "nodes.architectures" (warns when they differ).
 * probes[i] belongs to config->hosts[i]; NULL entries (hosts not probed)
 * are skipped.
 */
int preflight_nodes_compare(const struct config *config, const struct node_probe *const *probes,
			    struct report *report);

#endif
