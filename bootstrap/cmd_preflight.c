#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common.h"
#include "commands.h"
#include "config.h"
#include "preflight.h"
#include "preflight_node.h"
#include "report.h"

#define DEFAULT_MIN_VERSION "1.24"

static const char preflight_usage[] =
	"usage: mlboot preflight [--kubeconfig FILE] [--context NAME] [-f mlboot.yaml]\n"
	"                        [-o text|json] [--min-version VERSION]\n"
	"                        [--accept-new-host-keys] [--space-needed BYTES]\n"
	"\n"
	"Checks that the cluster is ready for an install, without changing anything:\n"
	"the API server is reachable over verified TLS, its version is supported,\n"
	"the user has cluster-admin rights, there is one default StorageClass, and\n"
	"every node is Ready with a kubelet version the skew policy allows. With\n"
	"-f, every host of mlboot.yaml is also probed over SSH (containerd, free\n"
	"space, kernel modules, sysctls, swap, clock; see docs/config.md), and the\n"
	"file's kubeconfig is used unless --kubeconfig is given. Every check runs\n"
	"and the report lists each one with what was seen and, for a failure,\n"
	"what to do.\n"
	"\n"
	"Options:\n"
	"  --kubeconfig FILE      kubeconfig to use (default: $KUBECONFIG, else\n"
	"                         ~/.kube/config, else the in-cluster service account)\n"
	"  --context NAME         context of the kubeconfig (default: current-context)\n"
	"  -f, --file FILE        platform configuration (mlboot.yaml)\n"
	"  -o, --output FORMAT    report format: text (default) or json\n"
	"  --min-version VERSION  oldest Kubernetes version accepted, MAJOR.MINOR\n"
	"                         (default " DEFAULT_MIN_VERSION ")\n"
	"  --accept-new-host-keys trust a host that no known_hosts file lists and\n"
	"                         record its key (a changed key is still rejected)\n"
	"  --space-needed BYTES   free space each node needs for images under\n"
	"                         /var/lib/containerd; K, M, G, T suffixes are\n"
	"                         powers of 1024 (default 20G)\n"
	"  -h, --help             show this help\n"
	"\n"
	"The report goes to stdout; colour is used when stdout is a terminal and\n"
	"NO_COLOR is unset. Exit status: 0 every check passed (warnings included),\n"
	"1 a check failed, 2 usage error, 3 the kubeconfig or mlboot.yaml is\n"
	"invalid, 5 the API server or a host is unreachable, 6 TLS verification\n"
	"failed or the credentials were rejected.\n";

enum output_format {
	OUTPUT_TEXT,
	OUTPUT_JSON,
};

/* All settings of one preflight run, from the command line. */
struct preflight_run {
	struct preflight_cluster_options cluster;
	const char *config_path;
	enum output_format output;
	struct preflight_nodes_options nodes;
};

enum {
	OPTION_KUBECONFIG = 256,
	OPTION_CONTEXT,
	OPTION_MIN_VERSION,
	OPTION_ACCEPT_NEW_HOST_KEYS,
	OPTION_SPACE_NEEDED,
};

static int parse_options(int argc, char **argv, struct preflight_run *run)
{
	static const struct option options[] = {
		{ "kubeconfig",  required_argument, NULL, OPTION_KUBECONFIG },
		{ "context",     required_argument, NULL, OPTION_CONTEXT },
		{ "file",        required_argument, NULL, 'f' },
		{ "output",      required_argument, NULL, 'o' },
		{ "min-version", required_argument, NULL, OPTION_MIN_VERSION },
		{ "accept-new-host-keys", no_argument, NULL, OPTION_ACCEPT_NEW_HOST_KEYS },
		{ "space-needed", required_argument, NULL, OPTION_SPACE_NEEDED },
		{ "help",        no_argument,       NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *min_version = DEFAULT_MIN_VERSION;
	int c;

	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":f:o:h", options, NULL)) != -1) {
		switch (c) {
		case OPTION_KUBECONFIG:
			run->cluster.kubeconfig.path = optarg;
			break;
		case OPTION_CONTEXT:
			run->cluster.kubeconfig.context = optarg;
			break;
		case 'f':
			run->config_path = optarg;
			break;
		case 'o':
			if (strcmp(optarg, "text") == 0)
				run->output = OUTPUT_TEXT;
			else if (strcmp(optarg, "json") == 0)
				run->output = OUTPUT_JSON;
			else
				return cli_usage_error("preflight", "invalid output format '%s': use text or json",
						       optarg);
			break;
		case OPTION_MIN_VERSION:
			min_version = optarg;
			break;
		case OPTION_ACCEPT_NEW_HOST_KEYS:
			run->nodes.accept_new_host_keys = true;
			break;
		case OPTION_SPACE_NEEDED:
			if (preflight_parse_size(optarg, &run->nodes.space_needed) < 0 ||
			    run->nodes.space_needed == 0)
				return cli_usage_error("preflight",
						       "invalid size '%s' for --space-needed: use bytes or a number with K, M, G or T, such as 20G",
						       optarg);
			break;
		case 'h':
			fputs(preflight_usage, stdout);
			return 1;
		case ':':
			return cli_usage_error("preflight", "option '%s' requires a value",
					       argv[optind - 1]);
		default:
			return cli_usage_error("preflight", "unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind < argc)
		return cli_usage_error("preflight", "unexpected argument '%s'", argv[optind]);
	if (run->cluster.kubeconfig.path && !run->cluster.kubeconfig.path[0])
		return cli_usage_error("preflight", "option '--kubeconfig' requires a file name");
	if (preflight_parse_min_version(min_version, &run->cluster.min_version) < 0)
		return cli_usage_error("preflight",
				       "invalid minimum version '%s': use MAJOR.MINOR, such as 1.24",
				       min_version);
	return 0;
}

/* Colour follows the NO_COLOR convention (no-color.org): a set, non-empty NO_COLOR turns it off. */
static bool stdout_wants_colour(void)
{
	const char *no_colour = getenv("NO_COLOR");

	return isatty(STDOUT_FILENO) && !(no_colour && no_colour[0]);
}

static int write_report(const struct report *report, enum output_format output)
{
	struct buf json = BUF_INIT(256UL * 1024 * 1024);
	int r;

	if (output == OUTPUT_TEXT) {
		r = report_write_text(report, stdout, stdout_wants_colour());
		goto out;
	}
	r = report_write_json(report, &json);
	if (r < 0)
		goto out;
	if (fwrite(json.data, 1, json.len, stdout) != json.len || fflush(stdout) != 0)
		r = -EIO;
out:
	buf_release(&json);
	if (r < 0)
		log_errno(LOG_ERR, r, "failed to write the report");
	return r;
}

/*
 * Logs why the API server could not be used: the evidence of the failed
 * API check, escaped, since it can carry the server's own message.
 */
static void log_access_failure(const struct report *report)
{
	struct buf evidence = BUF_INIT(4 * REPORT_TEXT_MAX);

	for (size_t i = 0; i < report->count; i++) {
		const struct check_result *check = &report->checks[i];

		if (check->status != CHECK_FAIL || strcmp(check->id, PREFLIGHT_CHECK_API) != 0)
			continue;
		if (report_escape_terminal(&evidence, check->evidence) == 0)
			log_error("%s", buf_str(&evidence));
		break;
	}
	log_error("the other cluster checks were skipped; the report's remedy lines say what to do");
	buf_release(&evidence);
}

int cmd_preflight(int argc, char **argv)
{
	struct preflight_run run;
	struct report report;
	struct config config;
	struct config_problems problems;
	struct config_kubeconfig kubeconfig;
	bool have_report = false, kubeconfig_failed = false;
	size_t failed;
	int access, nodes = 0, r;

	memset(&run, 0, sizeof(run));
	memset(&config, 0, sizeof(config));
	memset(&problems, 0, sizeof(problems));
	memset(&kubeconfig, 0, sizeof(kubeconfig));
	r = parse_options(argc, argv, &run);
	if (r != 0) {
		/* 1 means --help was shown. */
		r = r > 0 ? 0 : r;
		goto out;
	}
	if (run.config_path) {
		r = config_load(run.config_path, &config, &problems);
		if (r < 0) {
			config_problems_log(&problems, run.config_path);
			goto out;
		}
	}

	r = report_init(&report, "preflight", NULL);
	if (r < 0)
		goto out;
	have_report = true;

	access = 0;
	if (run.config_path) {
		access = preflight_use_config_kubeconfig(&config, &run.nodes, &run.cluster.kubeconfig,
							 &kubeconfig, &report);
		kubeconfig_failed = access < 0;
	}
	if (access == 0)
		access = preflight_cluster(&run.cluster, &report);
	if (access < 0 && access != MLB_EUNREACHABLE && access != MLB_EDENIED && access != MLB_EINPUT) {
		r = log_errno(LOG_ERR, access, "preflight failed");
		goto out;
	}
	/* Node checks run even when the cluster checks could not: they reach the nodes over SSH. */
	if (run.config_path) {
		nodes = preflight_nodes(&config, &run.nodes, &report);
		if (nodes == -ENOMEM) {
			r = nodes;
			goto out;
		}
	}

	r = write_report(&report, run.output);
	if (r < 0)
		goto out;
	failed = report_count(&report, CHECK_FAIL);
	if (access < 0) {
		if (!kubeconfig_failed)
			log_access_failure(&report);
		r = access;
	} else if (failed > 0) {
		log_error("preflight failed: %zu of %zu checks failed", failed, report.count);
		r = nodes < 0 ? nodes : MLB_EFAILED;
	}
out:
	if (have_report)
		report_release(&report);
	config_kubeconfig_release(&kubeconfig);
	config_problems_release(&problems);
	config_release(&config);
	return r;
}
