#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common.h"
#include "fetch.h"
#include "commands.h"
#include "install.h"
#include "preflight.h"
#include "preflight_node.h"
#include "report.h"
#include "unattended.h"

#define PUBKEYS_MAX 16

static const char install_usage[] =
	"usage: mlboot install [-f mlboot.yaml] [--dry-run] [--only COMPONENT] [--force]\n"
	"                      [--state-dir DIR] [--bundle FILE] [--pubkey KEY]... [--allow-unsigned]\n"
	"\n"
	"Installs the platform of the bundle on the cluster of mlboot.yaml: preflight\n"
	"first (nothing changes when it fails), then the bundle's images into every\n"
	"node's containerd, its binaries onto the control-plane nodes, and each\n"
	"component that spec.components lists (all of them without it) through\n"
	"the API in the bundle's order, wave by wave (CRDs,\n"
	"namespaces, cluster-scoped objects, the rest) with readiness gates, then the\n"
	"sample model and final checks. Each step is recorded in the journal under\n"
	"the state folder: a re-run skips the steps done with the same inputs and\n"
	"goes on where a crash stopped. See docs/install.md.\n"
	"\n"
	"Options:\n"
	"  -f, --file FILE       platform configuration (default: mlboot.yaml)\n"
	"  --dry-run             print the plan and what would change (images missing\n"
	"                        per node, objects to create or change); change nothing\n"
	"  --only COMPONENT      install this component only (its images included); it\n"
	"                        must be one that spec.components lists, when given\n"
	"  --force               run every step again, even those done before\n"
	"  --state-dir DIR       folder of the journal (default: spec.stateDir)\n"
	"  --bundle FILE|URL     the bundle (default: spec.bundle); an https:// URL is\n"
	"                        downloaded into STATE_DIR/bundles, resuming a cut\n"
	"                        download, and verified like a local file\n"
	"  --bundle-ca FILE      CA certificates (PEM) for the bundle URL's server\n"
	"  --pubkey KEY          trust this public key (repeatable); default: the\n"
	"                        *.pub files of " BUNDLE_KEYS_DIR "\n"
	"  --allow-unsigned      accept an unsigned bundle or one signed by an untrusted key\n"
	"  --apply-workers N     server-side apply requests in flight at once, 1 to 16\n"
	"                        (default 4)\n"
	"  --unattended          mode of the systemd unit mlboot-install.service: wait\n"
	"                        for the bundle, the API server and every host, report\n"
	"                        to systemd, and write the done-stamp on success\n"
	"                        (docs/first-boot.md)\n"
	"  -h, --help            show this help\n"
	"\n"
	"Exit status: 0 installed, 1 a check or step failed, 2 usage error, 3 invalid\n"
	"input, 4 the bundle failed its integrity checks, 5 a host or the API server\n"
	"is unreachable, 6 access denied.\n";

enum {
	OPTION_DRY_RUN = 256,
	OPTION_ONLY,
	OPTION_FORCE,
	OPTION_STATE_DIR,
	OPTION_BUNDLE,
	OPTION_PUBKEY,
	OPTION_ALLOW_UNSIGNED,
	OPTION_APPLY_WORKERS,
	OPTION_UNATTENDED,
	OPTION_BUNDLE_CA,
};

/* --unattended: the first-boot mode of bootstrap/unattended.h. */
static bool unattended_requested;
/* --bundle-ca: the CA that signs the certificate of a bundle depot; NULL: the system's. */
static const char *bundle_ca_file;

static int parse_options(int argc, char **argv, struct install_settings *settings, const char **pubkeys)
{
	static const struct option options[] = {
		{ "file",           required_argument, NULL, 'f' },
		{ "dry-run",        no_argument,       NULL, OPTION_DRY_RUN },
		{ "only",           required_argument, NULL, OPTION_ONLY },
		{ "force",          no_argument,       NULL, OPTION_FORCE },
		{ "state-dir",      required_argument, NULL, OPTION_STATE_DIR },
		{ "bundle",         required_argument, NULL, OPTION_BUNDLE },
		{ "pubkey",         required_argument, NULL, OPTION_PUBKEY },
		{ "allow-unsigned", no_argument,       NULL, OPTION_ALLOW_UNSIGNED },
		{ "apply-workers",  required_argument, NULL, OPTION_APPLY_WORKERS },
		{ "unattended",     no_argument,       NULL, OPTION_UNATTENDED },
		{ "bundle-ca",      required_argument, NULL, OPTION_BUNDLE_CA },
		{ "help",           no_argument,       NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	optind = 1;
	opterr = 0;
	settings->config_path = "mlboot.yaml";
	while ((c = getopt_long(argc, argv, ":f:h", options, NULL)) != -1) {
		switch (c) {
		case 'f':
			settings->config_path = optarg;
			break;
		case OPTION_DRY_RUN:
			settings->dry_run = true;
			break;
		case OPTION_ONLY:
			settings->only = optarg;
			break;
		case OPTION_FORCE:
			settings->force = true;
			break;
		case OPTION_STATE_DIR:
			if (optarg[0] != '/')
				return cli_usage_error("install", "the state folder '%s' must be an absolute path", optarg);
			settings->state_dir = optarg;
			break;
		case OPTION_BUNDLE:
			settings->bundle_path = optarg;
			break;
		case OPTION_BUNDLE_CA:
			bundle_ca_file = optarg;
			break;
		case OPTION_PUBKEY:
			if (settings->pubkey_count >= PUBKEYS_MAX)
				return cli_usage_error("install", "at most %d --pubkey options", PUBKEYS_MAX);
			pubkeys[settings->pubkey_count++] = optarg;
			break;
		case OPTION_ALLOW_UNSIGNED:
			settings->allow_unsigned = true;
			break;
		case OPTION_APPLY_WORKERS: {
			char *end;
			long value = strtol(optarg, &end, 10);

			if (*end || end == optarg || value < 1 || value > (long)INSTALL_APPLY_WORKERS_MAX)
				return cli_usage_error("install", "invalid --apply-workers '%s': use 1 to %u", optarg,
						       INSTALL_APPLY_WORKERS_MAX);
			settings->apply_workers = (unsigned)value;
			break;
		}
		case OPTION_UNATTENDED:
			unattended_requested = true;
			break;
		case 'h':
			fputs(install_usage, stdout);
			return 1;
		case ':':
			return cli_usage_error("install", "option '%s' requires a value", argv[optind - 1]);
		default:
			return cli_usage_error("install", "unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind < argc)
		return cli_usage_error("install", "unexpected argument '%s'", argv[optind]);
	settings->pubkeys = pubkeys;
	return 0;
}

static int load_trust(struct install *install)
{
	int r = 0;

	bundle_trust_init(&install->trust);
	for (size_t i = 0; r == 0 && i < install->settings.pubkey_count; i++)
		r = bundle_trust_add_file(&install->trust, install->settings.pubkeys[i]);
	if (r == 0 && install->settings.pubkey_count == 0)
		r = bundle_trust_add_dir(&install->trust, BUNDLE_KEYS_DIR);
	if (r < 0)
		return log_errno(LOG_ERR, r, "failed to load the trusted public keys");
	install->check_options.trust = &install->trust;
	install->check_options.allow_unsigned = install->settings.allow_unsigned;
	return 0;
}

static int open_bundle(struct install *install)
{
	struct bundle_report report;
	int r;

	bundle_report_init(&report);
	r = bundle_reader_open(install->bundle_path, &install->check_options, &install->reader, &report);
	if (r < 0) {
		for (size_t i = 0; i < report.count; i++)
			log_error("%s: %s", install->bundle_path, report.messages[i]);
		log_errno(LOG_ERR, r, "cannot use the bundle '%s'; 'mlboot bundle verify' checks it in full",
			  install->bundle_path);
	} else {
		install->index = bundle_reader_index(install->reader);
		log_info("bundle '%s': platform %s %s, %zu components, %zu images", install->bundle_path,
			 install->index->name, install->index->version, install->index->component_count,
			 install->index->image_count);
	}
	bundle_report_release(&report);
	return r;
}

/* Bytes the images of the bundle take on a node: blobs as stored, and again once unpacked (an estimate). */
static uint64_t space_needed(const struct bundle_index *index)
{
	uint64_t total = 0;

	for (size_t i = 0; i < index->file_count; i++)
		if (strncmp(index->files[i].path, "images/", 7) == 0)
			total += index->files[i].size;
	return total * 2 + (64ULL << 20);
}

/* Fails the report when the server is newer than the bundle's supported range. */
static int check_version_range(struct install *install, struct report *report)
{
	struct kube_version server, newest;
	int r;

	if (!install->index->kubernetes_max)
		return 0;
	r = kube_server_version(install->client, &server);
	if (r < 0)
		return report_add(report, PREFLIGHT_GROUP_CLUSTER, "cluster.bundle-range",
				  "server version within the bundle's range", CHECK_FAIL, "check the API server",
				  "cannot read the version: %s", kube_last_error());
	if (preflight_parse_min_version(install->index->kubernetes_max, &newest) < 0)
		return report_add(report, PREFLIGHT_GROUP_CLUSTER, "cluster.bundle-range",
				  "server version within the bundle's range", CHECK_FAIL, "rebuild the bundle",
				  "the bundle's kubernetes maxVersion '%s' is invalid", install->index->kubernetes_max);
	if (server.major > newest.major || (server.major == newest.major && server.minor > newest.minor))
		return report_add(report, PREFLIGHT_GROUP_CLUSTER, "cluster.bundle-range",
				  "server version within the bundle's range", CHECK_FAIL,
				  "use a bundle built for this Kubernetes version",
				  "server %s is newer than %s, the newest version the bundle supports",
				  server.git_version, install->index->kubernetes_max);
	return report_add(report, PREFLIGHT_GROUP_CLUSTER, "cluster.bundle-range",
			  "server version within the bundle's range", CHECK_PASS, NULL, "server %s, bundle %s to %s",
			  server.git_version, install->index->kubernetes_min ? install->index->kubernetes_min : "any",
			  install->index->kubernetes_max);
}

/*
 * Runs preflight (cluster and nodes), opens the API client on success and
 * prints the report when anything failed. Nothing is changed here.
 */
static int run_preflight(struct install *install)
{
	struct preflight_cluster_options cluster = { 0 };
	struct preflight_nodes_options nodes = { 0 };
	struct report report;
	size_t failed;
	int access, r;

	r = report_init(&report, "preflight", NULL);
	if (r < 0)
		return r;
	nodes.space_needed = space_needed(install->index);
	if (preflight_parse_min_version(install->index->kubernetes_min ? install->index->kubernetes_min : "1.24",
					&cluster.min_version) < 0) {
		log_error("the bundle's kubernetes minVersion '%s' is invalid", install->index->kubernetes_min);
		r = MLB_EINPUT;
		goto out;
	}
	access = preflight_use_config_kubeconfig(&install->config, &nodes, &cluster.kubeconfig, &install->kubeconfig,
						 &report);
	if (access == 0)
		access = preflight_cluster(&cluster, &report);
	if (access == -ENOMEM) {
		r = access;
		goto out;
	}
	r = preflight_nodes(&install->config, &nodes, &report);
	if (r == -ENOMEM)
		goto out;
	if (access == 0) {
		r = kubeconfig_load(&cluster.kubeconfig, &install->credentials);
		install->have_credentials = r == 0;
		if (r == 0)
			r = kube_client_new(&install->credentials, NULL, &install->client);
		if (r < 0) {
			log_errno(LOG_ERR, r, "cannot open the API client: %s", kube_last_error());
			goto out;
		}
		r = check_version_range(install, &report);
		if (r < 0)
			goto out;
	}
	failed = report_count(&report, CHECK_FAIL);
	if (failed > 0 || access < 0) {
		report_write_text(&report, stdout, false);
		log_error("preflight failed: %zu of %zu checks failed; nothing was changed", failed, report.count);
		r = access < 0 ? access : MLB_EFAILED;
		goto out;
	}
	log_info("preflight: %zu checks passed (%zu warnings)", report.count, report_count(&report, CHECK_WARN));
	r = 0;
out:
	report_release(&report);
	return r;
}

static bool plan_has_model(const struct install *install)
{
	for (size_t c = 0; c < install->component_count; c++) {
		const struct install_component *component = &install->components[c];

		for (size_t i = 0; component->selected && i < component->object_count; i++)
			if (doc_string_equals(doc_get(component->objects[i].doc, "kind"), "InferenceService"))
				return true;
	}
	return false;
}

/* Writes the plan's step names beside the journal, for 'mlboot status'. */
static int write_plan(struct install *install)
{
	struct buf text = BUF_INIT(16 * 1024 * 1024);
	char path[4096];
	int r = 0;

	for (size_t i = 0; r == 0 && i < install->config.host_count; i++) {
		r = buf_printf(&text, "images/%s\n", install->config.hosts[i].name);
		if (r == 0 && install->config.hosts[i].role == CONFIG_ROLE_CONTROL_PLANE)
			for (size_t c = 0; c < install->component_count; c++)
				if (install->components[c].selected && install->components[c].bundle->binary_count) {
					r = buf_printf(&text, "binaries/%s\n", install->config.hosts[i].name);
					break;
				}
	}
	for (size_t c = 0; r == 0 && c < install->component_count; c++) {
		const struct install_component *component = &install->components[c];

		if (!component->selected)
			continue;
		for (int wave = 0; r == 0 && wave < INSTALL_WAVE_COUNT; wave++)
			if (component->wave_objects[wave])
				r = buf_printf(&text, "apply/%s/%s\n", component->bundle->name,
					       install_wave_name((enum install_wave)wave));
		if (r == 0)
			r = buf_printf(&text, "wait/%s\n", component->bundle->name);
	}
	if (r == 0 && plan_has_model(install))
		r = buf_append_str(&text, "model\n");
	if (r == 0)
		r = buf_append_str(&text, "check\n");
	snprintf(path, sizeof(path), "%s/plan", install->state_dir);
	if (r == 0)
		r = file_write_atomic(path, text.data, text.len, 0644);
	buf_release(&text);
	return r;
}

static void print_summary(const struct install *install, int r)
{
	const struct install_totals *totals = &install->totals;

	printf("install of %s %s: %s\n", install->index->name, install->index->version,
	       r == 0 ? "done" : "FAILED");
	printf("  steps:   %lu run, %lu skipped (done before with the same inputs)\n", totals->steps_run,
	       totals->steps_skipped);
	printf("  objects: %lu applied, %lu webhook rejections retried\n", totals->objects_applied,
	       totals->webhook_retries);
	printf("  images:  %lu imports into nodes, %lu blobs sent, %lu blobs already on the nodes, %llu bytes sent\n",
	       totals->images_imported, totals->blobs_sent, totals->blobs_present,
	       (unsigned long long)totals->bytes_sent);
	if (r < 0 && install->failure[0])
		printf("  failed:  %s\n", install->failure);
	printf("  journal: %s/journal ('mlboot status --state-dir %s' shows it)\n", install->state_dir,
	       install->state_dir);
}

static int run_dry(struct install *install)
{
	int r;

	printf("plan of %s %s (dry run: nothing is changed)\n", install->index->name, install->index->version);
	r = install_images_plan(install);
	if (r < 0)
		log_errno(LOG_WARNING, r, "images: could not list what every node has");
	for (size_t c = 0; c < install->component_count; c++)
		if (install->components[c].selected)
			install_component_plan(install, &install->components[c]);
	return 0;
}

static int run_steps(struct install *install)
{
	int r;

	r = write_plan(install);
	if (r < 0)
		return log_errno(LOG_ERR, r, "failed to write the plan into '%s'", install->state_dir);
	unattended_progress("images to %zu hosts", install->config.host_count);
	r = install_images(install);
	if (r < 0)
		return r;
	unattended_progress("binaries to the control-plane hosts");
	r = install_binaries(install);
	if (r < 0)
		return r;
	for (size_t c = 0; c < install->component_count; c++) {
		if (!install->components[c].selected)
			continue;
		unattended_progress("component %s (%zu of %zu)", install->components[c].bundle->name, c + 1,
				    install->component_count);
		r = install_component_run(install, &install->components[c]);
		if (r < 0)
			return r;
	}
	unattended_progress("the sample model");
	r = install_model_step(install);
	if (r < 0)
		return r;
	unattended_progress("final checks");
	return install_check_step(install);
}

static void install_release(struct install *install)
{
	install_components_release(install);
	for (size_t i = 0; i < install->worker_count; i++)
		kube_client_free(install->workers[i]);
	kube_client_free(install->client);
	if (install->have_credentials)
		kube_credentials_release(&install->credentials);
	config_kubeconfig_release(&install->kubeconfig);
	journal_close(install->journal);
	bundle_reader_close(install->reader);
	bundle_trust_release(&install->trust);
	config_release(&install->config);
	pthread_mutex_destroy(&install->lock);
}

/*
 * Downloads a bundle named by an https URL (an internal depot) into the
 * state folder, resuming a download an earlier run left unfinished. A file
 * downloaded completely before is used again without a request. Either
 * way the bundle is then verified like a local one before it is used.
 */
static int download_bundle(const char *url, const char *state_dir, char **out)
{
	struct fetch_options options = { .ca_file = bundle_ca_file, .progress = cli_settings.progress };
	struct fetch_result result;
	const char *name = strrchr(url, '/');
	char *folder = NULL, *path = NULL;
	int r;

	if (strncmp(url, "https://", 8) != 0) {
		log_error("invalid bundle URL '%s': only https:// URLs are downloaded", url);
		return MLB_EINPUT;
	}
	name = name && name[1] ? name + 1 : "platform.bundle";
	if (strcspn(name, "?#") == 0 || name[0] == '.') {
		log_error("invalid bundle URL '%s': it must end with a file name", url);
		return MLB_EINPUT;
	}
	if (asprintf(&folder, "%s/bundles", state_dir) < 0 ||
	    asprintf(&path, "%s/%.*s", folder, (int)strcspn(name, "?#"), name) < 0) {
		r = -ENOMEM;
		goto out;
	}
	r = file_mkdir_parents(folder, 0750);
	if (r < 0) {
		log_errno(LOG_ERR, r, "failed to create '%s'", folder);
		goto out;
	}
	if (file_exists(path)) {
		log_info("bundle: using '%s', downloaded from '%s' before", path, url);
	} else {
		log_info("bundle: downloading '%s' into '%s'", url, path);
		r = fetch_file(url, NULL, path, &options, &result);
		if (r < 0) {
			log_errno(LOG_ERR, r, "failed to download the bundle '%s'", url);
			goto out;
		}
		log_info("bundle: %llu bytes downloaded in %u requests (%llu bytes kept from an earlier run)",
			 (unsigned long long)result.size, result.attempts, (unsigned long long)result.resumed_from);
	}
	*out = path;
	path = NULL;
	r = 0;
out:
	free(folder);
	free(path);
	return r;
}

int cmd_install(int argc, char **argv)
{
	struct install install;
	struct unattended unattended = { 0 };
	struct config_problems problems;
	const char *pubkeys[PUBKEYS_MAX];
	char *downloaded = NULL;
	int r;

	memset(&install, 0, sizeof(install));
	memset(&problems, 0, sizeof(problems));
	pthread_mutex_init(&install.lock, NULL);
	node_options_init(&install.node_options);
	r = parse_options(argc, argv, &install.settings, pubkeys);
	if (r != 0) {
		r = r > 0 ? 0 : r;
		goto out;
	}
	/* A node that closes its end of an import must fail the write, not end mlboot. */
	signal(SIGPIPE, SIG_IGN);
	r = config_load(install.settings.config_path, &install.config, &problems);
	if (r < 0) {
		if (unattended_requested)
			unattended_config_invalid(install.settings.config_path, &problems);
		else
			config_problems_log(&problems, install.settings.config_path);
		goto out;
	}
	install.state_dir = install.settings.state_dir ? install.settings.state_dir : install.config.state_dir;
	if (!install.state_dir)
		install.state_dir = CONFIG_DEFAULT_STATE_DIR;
	install.bundle_path = install.settings.bundle_path ? install.settings.bundle_path : install.config.bundle;
	if (!install.bundle_path) {
		log_error("no bundle: set spec.bundle in '%s' or give --bundle FILE", install.settings.config_path);
		r = MLB_EUSAGE;
		goto out;
	}
	if (install.settings.bundle_path && strncasecmp(install.bundle_path, "http://", 7) == 0) {
		log_error("invalid --bundle '%s': only https:// URLs are downloaded; use an https:// URL, or "
			  "copy the bundle to this machine and give its path", install.bundle_path);
		r = MLB_EUSAGE;
		goto out;
	}
	if ((install.config.bundle_is_url && !install.settings.bundle_path) ||
	    strncmp(install.bundle_path, "https://", 8) == 0) {
		r = download_bundle(install.bundle_path, install.state_dir, &downloaded);
		if (r < 0)
			goto out;
		install.bundle_path = downloaded;
	}
	if (unattended_requested) {
		r = unattended_begin(&unattended, &install.config, install.settings.config_path,
				     install.bundle_path, &install.node_options);
		if (r != 0) {
			/* 1: an earlier unattended install succeeded. */
			r = r > 0 ? 0 : r;
			goto out;
		}
	}
	r = load_trust(&install);
	if (r == 0)
		r = open_bundle(&install);
	/* Which components, and whether the bundle has them and fits their settings, is known before any connection. */
	if (r == 0)
		r = install_components_select(&install);
	if (r == 0)
		r = install_components_read(&install);
	if (r < 0)
		goto out;

	/* The lock comes before preflight, so that two runs never interleave. */
	if (install.settings.dry_run)
		r = journal_read(install.state_dir, &install.journal);
	else
		r = journal_open(install.state_dir, &install.journal);
	if (r == -ENOENT && install.settings.dry_run)
		r = 0;
	if (r < 0) {
		if (r == -EBUSY)
			log_error("the journal in '%s' is locked by another install; wait for it to finish or stop it",
				  install.state_dir);
		else
			log_errno(LOG_ERR, r, "cannot open the journal in '%s'", install.state_dir);
		goto out;
	}

	unattended_progress("preflight of the cluster and every host");
	r = run_preflight(&install);
	if (r < 0)
		goto out;
	r = install_components_prepare(&install);
	if (r < 0)
		goto out;
	if (install.settings.dry_run) {
		r = run_dry(&install);
		goto out;
	}
	install.install_deadline_ms = install_now_ms() +
				      (int64_t)(install.config.install_timeout ? install.config.install_timeout
									       : CONFIG_DEFAULT_INSTALL_TIMEOUT) * 1000;
	r = run_steps(&install);
	print_summary(&install, r);
	if (r < 0 && r != MLB_EUNREACHABLE && r != MLB_EDENIED && r != MLB_EINPUT && r != MLB_EINTEGRITY)
		r = MLB_EFAILED;
out:
	if (unattended_requested)
		r = unattended_end(&unattended, &install, r);
	unattended_release(&unattended);
	install_release(&install);
	config_problems_release(&problems);
	free(downloaded);
	return r;
}
