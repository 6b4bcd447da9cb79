#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "airgap.h"
#include "check.h"
#include "commands.h"
#include "common.h"
#include "config.h"
#include "preflight.h"
#include "preflight_node.h"
#include "report.h"

#define DEFAULT_MIN_VERSION "1.24"
#define MAX_PUBKEYS 16
#define MAX_TIMEOUT 3600
#define MAX_RESTART_WARN 1000000

static const char check_usage[] =
	"usage: mlboot check [-f mlboot.yaml] [--kubeconfig FILE] [--context NAME]\n"
	"                    [--bundle FILE] [--pubkey KEY]... [-o text|json|junit|html]\n"
	"                    [--report FILE] [--restart-warn N] [--min-free BYTES]\n"
	"                    [--timeout SECONDS] [--cluster-ips] [--accept-new-host-keys]\n"
	"\n"
	"Checks that an installed platform works, and reports each check with what\n"
	"was seen and, for a failure, what to do: the API server and its version\n"
	"against the bundle's range, the default StorageClass and the nodes; for\n"
	"each component of the bundle that mlboot.yaml installs (spec.components)\n"
	"its CRDs, workloads, pods and webhooks;\n"
	"cert-manager issuing a test certificate; the Istio ingress gateway\n"
	"answering HTTP; the sample model answering a prediction through it; Argo\n"
	"CD's health endpoints; that every running pod's image is in the bundle;\n"
	"and, with -f, on every node over SSH: containerd, free space, and the\n"
	"bundle's images present and pinned. Every check runs, also after others\n"
	"failed. The only change made to the cluster is a scratch namespace for the\n"
	"test certificate, which is removed again.\n"
	"\n"
	"Options:\n"
	"  -f, --file FILE        platform configuration (mlboot.yaml): its kubeconfig,\n"
	"                         bundle and hosts\n"
	"  --kubeconfig FILE      kubeconfig to use (default: mlboot.yaml's, else\n"
	"                         $KUBECONFIG, ~/.kube/config, the in-cluster account)\n"
	"  --context NAME         context of the kubeconfig (default: current-context)\n"
	"  --bundle FILE          the bundle the platform was installed from (default:\n"
	"                         spec.bundle of mlboot.yaml); without one, the objects\n"
	"                         labelled app.kubernetes.io/managed-by=mlboot say what\n"
	"                         is installed, and the image checks are skipped\n"
	"  --pubkey KEY           trust this public key for the bundle's signature\n"
	"                         (repeatable; default: the keys in " BUNDLE_KEYS_DIR ")\n"
	"  -o, --output FORMAT    report format on stdout: text (default), json, junit\n"
	"                         (JUnit XML) or html\n"
	"  --report FILE          also write the report to FILE, in the format its name\n"
	"                         ends in: .json, .xml (JUnit) or .html; FILE must be a\n"
	"                         new name or a regular file other than the inputs\n"
	"  --restart-warn N       warn about pods that restarted more than N times\n"
	"                         (default 5)\n"
	"  --min-free BYTES       free space each node needs under /var/lib/containerd;\n"
	"                         K, M, G, T suffixes are powers of 1024 (default 10G)\n"
	"  --timeout SECONDS      how long the test certificate may take (default 120)\n"
	"  --cluster-ips          reach Services by their cluster IP when they have no\n"
	"                         external address: only on a cluster node\n"
	"  --accept-new-host-keys trust a host that no known_hosts file lists\n"
	"  -h, --help             show this help\n"
	"\n"
	"Exit status: 0 every check passed (warnings included), 1 a check failed,\n"
	"2 usage error, 3 mlboot.yaml, the kubeconfig or the bundle is missing or\n"
	"invalid, or --report names a file that may not be replaced,\n"
	"4 the bundle's signature or checksums do not match, 5 the API server or a\n"
	"host is unreachable, 6 TLS verification failed or the credentials were\n"
	"rejected.\n";

enum output_format {
	OUTPUT_TEXT,
	OUTPUT_JSON,
	OUTPUT_JUNIT,
	OUTPUT_HTML,
};

/* All settings of one check run, from the command line. */
struct check_command {
	struct check_options options;
	const char *config_path;
	const char *bundle_path;
	const char *report_path;
	enum output_format report_format;
	enum output_format output;
	const char *pubkeys[MAX_PUBKEYS];
	size_t pubkey_count;
};

enum {
	OPTION_KUBECONFIG = 256,
	OPTION_CONTEXT,
	OPTION_BUNDLE,
	OPTION_PUBKEY,
	OPTION_REPORT,
	OPTION_RESTART_WARN,
	OPTION_MIN_FREE,
	OPTION_TIMEOUT,
	OPTION_CLUSTER_IPS,
	OPTION_ACCEPT_NEW_HOST_KEYS,
};

static int parse_format(const char *text, enum output_format *out)
{
	static const struct {
		const char *name;
		enum output_format format;
	} formats[] = {
		{ "text", OUTPUT_TEXT }, { "json", OUTPUT_JSON }, { "junit", OUTPUT_JUNIT }, { "html", OUTPUT_HTML },
	};

	for (size_t i = 0; i < ARRAY_SIZE(formats); i++) {
		if (strcmp(text, formats[i].name) == 0) {
			*out = formats[i].format;
			return 0;
		}
	}
	return -EINVAL;
}

/* The report format that a file name's ending selects. */
static int format_of_file(const char *path, enum output_format *out)
{
	static const struct {
		const char *ending;
		enum output_format format;
	} endings[] = {
		{ ".json", OUTPUT_JSON }, { ".xml", OUTPUT_JUNIT }, { ".html", OUTPUT_HTML }, { ".htm", OUTPUT_HTML },
	};
	size_t len = strlen(path);

	for (size_t i = 0; i < ARRAY_SIZE(endings); i++) {
		size_t ending_len = strlen(endings[i].ending);

		if (len > ending_len && strcasecmp(path + len - ending_len, endings[i].ending) == 0) {
			*out = endings[i].format;
			return 0;
		}
	}
	return -EINVAL;
}

static int parse_unsigned(const char *text, unsigned long min, unsigned long max, unsigned *out)
{
	unsigned long value;
	char *end;

	if (text[0] < '0' || text[0] > '9')
		return -EINVAL;
	errno = 0;
	value = strtoul(text, &end, 10);
	if (errno != 0 || *end != '\0' || value < min || value > max)
		return -ERANGE;
	*out = (unsigned)value;
	return 0;
}

static int parse_options(int argc, char **argv, struct check_command *command)
{
	static const struct option options[] = {
		{ "file",         required_argument, NULL, 'f' },
		{ "kubeconfig",   required_argument, NULL, OPTION_KUBECONFIG },
		{ "context",      required_argument, NULL, OPTION_CONTEXT },
		{ "bundle",       required_argument, NULL, OPTION_BUNDLE },
		{ "pubkey",       required_argument, NULL, OPTION_PUBKEY },
		{ "output",       required_argument, NULL, 'o' },
		{ "report",       required_argument, NULL, OPTION_REPORT },
		{ "restart-warn", required_argument, NULL, OPTION_RESTART_WARN },
		{ "min-free",     required_argument, NULL, OPTION_MIN_FREE },
		{ "timeout",      required_argument, NULL, OPTION_TIMEOUT },
		{ "cluster-ips",  no_argument,       NULL, OPTION_CLUSTER_IPS },
		{ "accept-new-host-keys", no_argument, NULL, OPTION_ACCEPT_NEW_HOST_KEYS },
		{ "help",         no_argument,       NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct check_options *o = &command->options;
	int c;

	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":f:o:h", options, NULL)) != -1) {
		switch (c) {
		case 'f':
			command->config_path = optarg;
			break;
		case OPTION_KUBECONFIG:
			if (!optarg[0])
				return cli_usage_error("check", "option '--kubeconfig' requires a file name");
			o->cluster.kubeconfig.path = optarg;
			break;
		case OPTION_CONTEXT:
			o->cluster.kubeconfig.context = optarg;
			break;
		case OPTION_BUNDLE:
			command->bundle_path = optarg;
			break;
		case OPTION_PUBKEY:
			if (command->pubkey_count >= MAX_PUBKEYS)
				return cli_usage_error("check", "at most %d --pubkey options", MAX_PUBKEYS);
			command->pubkeys[command->pubkey_count++] = optarg;
			break;
		case 'o':
			if (parse_format(optarg, &command->output) < 0)
				return cli_usage_error("check", "invalid output format '%s': use text, json, junit or html",
						       optarg);
			break;
		case OPTION_REPORT:
			if (format_of_file(optarg, &command->report_format) < 0)
				return cli_usage_error("check",
						       "cannot tell the format of report file '%s': name it .json, .xml (JUnit) or .html",
						       optarg);
			command->report_path = optarg;
			break;
		case OPTION_RESTART_WARN:
			if (parse_unsigned(optarg, 0, MAX_RESTART_WARN, &o->restart_warn) < 0)
				return cli_usage_error("check", "invalid --restart-warn '%s': use a count from 0 to %d",
						       optarg, MAX_RESTART_WARN);
			break;
		case OPTION_MIN_FREE:
			if (preflight_parse_size(optarg, &o->min_free) < 0)
				return cli_usage_error("check",
						       "invalid size '%s' for --min-free: use bytes or a number with K, M, G or T, such as 10G",
						       optarg);
			break;
		case OPTION_TIMEOUT:
			if (parse_unsigned(optarg, 1, MAX_TIMEOUT, &o->timeout) < 0)
				return cli_usage_error("check", "invalid --timeout '%s': use seconds from 1 to %d", optarg,
						       MAX_TIMEOUT);
			break;
		case OPTION_CLUSTER_IPS:
			o->cluster_ips = true;
			break;
		case OPTION_ACCEPT_NEW_HOST_KEYS:
			o->accept_new_host_keys = true;
			break;
		case 'h':
			fputs(check_usage, stdout);
			return 1;
		case ':':
			return cli_usage_error("check", "option '%s' requires a value", argv[optind - 1]);
		default:
			return cli_usage_error("check", "unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind < argc)
		return cli_usage_error("check", "unexpected argument '%s'", argv[optind]);
	preflight_parse_min_version(DEFAULT_MIN_VERSION, &o->cluster.min_version);
	return 0;
}

/* Colour follows the NO_COLOR convention (no-color.org): a set, non-empty NO_COLOR turns it off. */
static bool stdout_wants_colour(void)
{
	const char *no_colour = getenv("NO_COLOR");

	return isatty(STDOUT_FILENO) && !(no_colour && no_colour[0]);
}

static int render(const struct report *report, enum output_format format, struct buf *out)
{
	switch (format) {
	case OUTPUT_JSON:
		return report_write_json(report, out);
	case OUTPUT_JUNIT:
		return report_write_junit(report, out);
	case OUTPUT_HTML:
		return report_write_html(report, out);
	case OUTPUT_TEXT:
		break;
	}
	return -EINVAL;
}

/* Whether path names the same file (st_dev and st_ino) as st; false when path cannot be read. */
static bool same_file(const char *path, const struct stat *st)
{
	struct stat other;

	return path && stat(path, &other) == 0 && other.st_dev == st->st_dev && other.st_ino == st->st_ino;
}

/*
 * Rejects a --report path whose file the report would destroy or hide:
 * anything but a new name or a regular file (see file_check_output()), or
 * one of the files this run reads. Logs why and returns MLB_EINPUT.
 */
static int check_report_path(const struct check_command *command, const struct config *config,
			     const char *bundle_path)
{
	const char *path = command->report_path;
	const struct {
		const char *path;
		const char *role;
	} inputs[] = {
		{ command->config_path, "configuration" },
		{ command->options.cluster.kubeconfig.path, "kubeconfig" },
		{ config->kubeconfig_path, "kubeconfig" },
		{ bundle_path, "bundle" },
	};
	char reason[PATH_MAX + 256];
	struct stat st;
	int r;

	r = file_check_output(path, &st);
	if (r == 0)
		return 0;
	if (r < 0 && st.st_mode == 0) {
		log_errno(LOG_ERR, r, "cannot write the report to '%s'", path);
		return MLB_EINPUT;
	}
	if (r < 0) {
		file_output_problem(path, st.st_mode, reason, sizeof(reason));
		log_error("cannot write the report: %s", reason);
		return MLB_EINPUT;
	}
	for (size_t i = 0; i < ARRAY_SIZE(inputs); i++) {
		if (same_file(inputs[i].path, &st)) {
			log_error("cannot write the report: '%s' is the same file as the %s '%s', which the report "
				  "would replace; give another --report path", path, inputs[i].role, inputs[i].path);
			return MLB_EINPUT;
		}
	}
	for (size_t i = 0; i < command->pubkey_count; i++) {
		if (same_file(command->pubkeys[i], &st)) {
			log_error("cannot write the report: '%s' is the same file as the public key '%s', which the "
				  "report would replace; give another --report path", path, command->pubkeys[i]);
			return MLB_EINPUT;
		}
	}
	return 0;
}

static int write_reports(const struct report *report, const struct check_command *command,
			 const struct config *config, const char *bundle_path)
{
	struct buf data = BUF_INIT(256UL * 1024 * 1024);
	int r = 0;

	if (command->report_path) {
		/* Checked at the start too; the run may have taken minutes. */
		r = check_report_path(command, config, bundle_path);
		if (r < 0)
			goto out;
		r = render(report, command->report_format, &data);
		if (r == 0)
			r = file_write_atomic(command->report_path, data.data, data.len, 0644);
		if (r < 0) {
			log_errno(LOG_ERR, r, "failed to write the report to '%s'", command->report_path);
			goto out;
		}
		log_info("report written to '%s'", command->report_path);
		buf_reset(&data);
	}
	if (command->output == OUTPUT_TEXT) {
		r = report_write_text(report, stdout, stdout_wants_colour());
	} else {
		r = render(report, command->output, &data);
		if (r == 0 && (fwrite(data.data, 1, data.len, stdout) != data.len || fflush(stdout) != 0))
			r = -EIO;
	}
	if (r < 0)
		log_errno(LOG_ERR, r, "failed to write the report");
out:
	buf_release(&data);
	return r;
}

/* Loads the trusted keys; a key that is missing or invalid is invalid input, as for bundle verify. */
static int load_trust(const struct check_command *command, struct bundle_trust *trust)
{
	int r = 0;

	for (size_t i = 0; i < command->pubkey_count && r == 0; i++) {
		r = bundle_trust_add_file(trust, command->pubkeys[i]);
		if (r < 0)
			log_errno(LOG_ERR, r, "cannot read public key '%s'", command->pubkeys[i]);
	}
	if (r == 0) {
		r = bundle_trust_add_dir(trust, BUNDLE_KEYS_DIR);
		if (r < 0)
			log_errno(LOG_ERR, r, "cannot read the public keys in '%s'", BUNDLE_KEYS_DIR);
	}
	return r < 0 && r != -ENOMEM ? MLB_EINPUT : r;
}

/* Reads the bundle into platform; logs each problem and returns the result. */
static int load_bundle(const struct check_command *command, const char *path, struct check_platform *platform)
{
	struct bundle_trust trust;
	struct bundle_report problems;
	int r;

	bundle_trust_init(&trust);
	bundle_report_init(&problems);
	r = load_trust(command, &trust);
	if (r < 0)
		goto out;
	log_info("reading the bundle '%s'", path);
	r = check_platform_from_bundle(path, &trust, platform, &problems);
	if (r < 0) {
		for (size_t i = 0; i < problems.count; i++)
			log_error("bundle '%s': %s", path, problems.messages[i]);
		if (problems.total > problems.count)
			log_error("bundle '%s': %zu more problems", path, problems.total - problems.count);
		log_errno(LOG_ERR, r, "cannot read the bundle '%s'", path);
	}
out:
	bundle_report_release(&problems);
	bundle_trust_release(&trust);
	return r;
}

/*
 * Logs why the API server could not be used: the evidence of the failed
 * API check, escaped, since it can carry the server's own message.
 */
static bool log_access_failure(const struct report *report)
{
	struct buf evidence = BUF_INIT(4 * REPORT_TEXT_MAX);
	bool logged = false;

	for (size_t i = 0; i < report->count; i++) {
		const struct check_result *check = &report->checks[i];

		if (check->status != CHECK_FAIL || (strcmp(check->id, PREFLIGHT_CHECK_API) != 0 &&
						    strcmp(check->id, "cluster.kubeconfig") != 0))
			continue;
		buf_reset(&evidence);
		if (report_escape_terminal(&evidence, check->evidence) == 0)
			log_error("%s", buf_str(&evidence));
		logged = true;
	}
	if (logged)
		log_error("the checks that need the API server were skipped; the report's remedy lines say "
			  "what to do");
	buf_release(&evidence);
	return logged;
}

int cmd_check(int argc, char **argv)
{
	struct check_command command;
	struct check_platform platform;
	struct report report;
	struct config config;
	struct config_problems problems;
	struct config_kubeconfig kubeconfig;
	struct preflight_nodes_options node_options;
	const char *bundle_path;
	bool have_report = false;
	size_t failed;
	int r;

	memset(&command, 0, sizeof(command));
	memset(&platform, 0, sizeof(platform));
	memset(&config, 0, sizeof(config));
	memset(&problems, 0, sizeof(problems));
	memset(&kubeconfig, 0, sizeof(kubeconfig));
	memset(&node_options, 0, sizeof(node_options));
	check_options_init(&command.options);
	r = parse_options(argc, argv, &command);
	if (r != 0) {
		/* 1 means --help was shown. */
		r = r > 0 ? 0 : r;
		goto out;
	}
	if (command.config_path) {
		r = config_load(command.config_path, &config, &problems);
		if (r < 0) {
			config_problems_log(&problems, command.config_path);
			goto out;
		}
		command.options.config = &config;
		command.options.model_namespace = config.components.sample_model_namespace
							  ? config.components.sample_model_namespace
							  : CHECK_DEFAULT_MODEL_NAMESPACE;
	}

	bundle_path = command.bundle_path;
	if (!bundle_path && command.config_path && config.bundle) {
		if (config.bundle_is_url) {
			log_error("spec.bundle of '%s' is a URL, which check does not download: pass the "
				  "downloaded bundle with --bundle FILE", command.config_path);
			r = MLB_EINPUT;
			goto out;
		}
		bundle_path = config.bundle;
	}
	if (command.report_path) {
		r = check_report_path(&command, &config, bundle_path);
		if (r < 0)
			goto out;
	}
	if (bundle_path) {
		r = load_bundle(&command, bundle_path, &platform);
		if (r < 0)
			goto out;
	}
	if (bundle_path && command.config_path) {
		r = check_platform_select(&platform, &config, bundle_path, &problems);
		if (r == MLB_EINPUT)
			config_problems_log(&problems, command.config_path);
		if (r < 0)
			goto out;
	}

	r = report_init(&report, "check", NULL);
	if (r < 0)
		goto out;
	have_report = true;
	r = report_set_bundle(&report, bundle_path ? platform.description : NULL);
	if (r < 0)
		goto out;

	if (command.config_path) {
		node_options.accept_new_host_keys = command.options.accept_new_host_keys;
		r = preflight_use_config_kubeconfig(&config, &node_options, &command.options.cluster.kubeconfig,
						    &kubeconfig, &report);
		if (r == -ENOMEM)
			goto out;
		/* A kubeconfig that cannot be fetched is in the report already; the API checks are skipped. */
		command.options.kubeconfig_failure = r;
	}

	r = check_run(&command.options, &platform, &report);
	if (r == -ENOMEM)
		goto out;
	{
		int written = write_reports(&report, &command, &config, bundle_path);

		if (written < 0) {
			r = written;
			goto out;
		}
	}
	failed = report_count(&report, CHECK_FAIL);
	if (r < 0)
		log_access_failure(&report);
	if (r < 0)
		log_error("check failed: %zu of %zu checks failed; %s", failed, report.count, mlb_strerror(r));
	else if (failed > 0) {
		log_error("check failed: %zu of %zu checks failed", failed, report.count);
		r = MLB_EFAILED;
	}
out:
	if (have_report)
		report_release(&report);
	check_platform_release(&platform);
	config_kubeconfig_release(&kubeconfig);
	config_problems_release(&problems);
	config_release(&config);
	return r;
}
