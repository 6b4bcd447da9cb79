#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "common.h"
#include "config.h"
#include "install.h"
#include "kube.h"
#include "node.h"
#include "preflight.h"
#include "report.h"
#include "sd_notify.h"
#include "unattended.h"

/* Maximum number of report files of one kind that pruning reads. */
#define PRUNE_MAX_FILES 200000
/* Maximum length of the reason kept for a probe that has not succeeded yet. */
#define PROBE_MESSAGE_MAX NODE_ERROR_MAX
/* Maximum length of the "waiting for ..." text that is logged and sent as STATUS=. */
#define WAITING_TEXT_MAX 1024

static double seconds_since(const struct timespec *start)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - start->tv_sec) + (double)(now.tv_nsec - start->tv_nsec) / 1e9;
}

/* $STATE_DIRECTORY may list several folders separated by colons, and the first is the unit's own. */
static int stamp_folder_choose(const struct config *config, char **out)
{
	const char *state = getenv("STATE_DIRECTORY");
	size_t len;

	if (state && state[0] == '/') {
		len = strcspn(state, ":");
		*out = strndup(state, len);
	} else {
		*out = strdup(config->state_dir ? config->state_dir : CONFIG_DEFAULT_STATE_DIR);
	}
	return *out ? 0 : -ENOMEM;
}

static int reports_keep_parse(unsigned *keep)
{
	const char *text = getenv("MLBOOT_REPORTS_KEEP");
	unsigned long value;
	char *end;

	*keep = UNATTENDED_REPORTS_KEEP;
	if (!text || !text[0])
		return 0;
	errno = 0;
	value = strtoul(text, &end, 10);
	if (errno != 0 || *end != '\0' || text[0] < '0' || text[0] > '9' || value < 1 ||
	    value > UNATTENDED_REPORTS_KEEP_MAX) {
		log_error("invalid MLBOOT_REPORTS_KEEP '%s': expected a whole number from 1 to %u;"
			  " fix it in /etc/mlboot/mlboot.env", text, UNATTENDED_REPORTS_KEEP_MAX);
		return MLB_EINPUT;
	}
	*keep = (unsigned)value;
	return 0;
}

static int unattended_init(struct unattended *run, const struct config *config, const char *config_path)
{
	int r;

	memset(run, 0, sizeof(*run));
	run->config = config;
	run->config_path = config_path;
	clock_gettime(CLOCK_MONOTONIC, &run->started);
	sd_notify_setup();
	r = sd_notify_stopping_on_signal();
	if (r < 0)
		log_errno(LOG_WARNING, r, "failed to set up the SIGTERM handler that tells systemd of a stop");

	r = reports_keep_parse(&run->reports_keep);
	if (r < 0)
		goto out;
	r = stamp_folder_choose(config, &run->stamp_folder);
	if (r < 0)
		goto out;
	if (asprintf(&run->stamp_path, "%s/%s", run->stamp_folder, UNATTENDED_STAMP_NAME) < 0) {
		run->stamp_path = NULL;
		r = -ENOMEM;
		goto out;
	}
	r = 0;
out:
	if (r == -ENOMEM)
		log_errno(LOG_ERR, r, "failed to prepare the unattended install");
	return r;
}

void unattended_release(struct unattended *run)
{
	if (!run)
		return;
	free(run->stamp_folder);
	free(run->stamp_path);
	memset(run, 0, sizeof(*run));
}

static bool unattended_is_done(const struct unattended *run)
{
	struct stat st;

	return run->stamp_path && lstat(run->stamp_path, &st) == 0 && S_ISREG(st.st_mode);
}

void unattended_config_invalid(const char *config_path, const struct config_problems *problems)
{
	config_problems_log(problems, config_path);
	sd_notify_setup();
	if (!sd_notify_enabled())
		return;
	if (problems->count > 0) {
		char *first = config_problem_format(&problems->items[0], config_path);

		sd_notify_status("invalid configuration %s; fix it and the install starts again",
				 first ? first : config_path);
		free(first);
	} else {
		sd_notify_status("invalid configuration %s", config_path);
	}
}

void unattended_progress(const char *format, ...)
{
	char text[SD_NOTIFY_MESSAGE_MAX];
	va_list args;

	if (!sd_notify_enabled())
		return;
	va_start(args, format);
	vsnprintf(text, sizeof(text), format, args);
	va_end(args);
	sd_notify_status("%s", text);
}

/* ------------------------------------------------------------------------
 * Waiting for the bundle, the API server and the hosts
 */

struct wait_host {
	bool remote;             /* hosts with local: true need no wait */
	bool pending;
	int result;              /* of the last probe */
	char message[PROBE_MESSAGE_MAX];
};

struct wait_state {
	struct unattended *run;
	struct node_options probe_options;

	bool bundle_pending;
	char bundle_message[PROBE_MESSAGE_MAX];

	bool api_pending;
	char api_message[PROBE_MESSAGE_MAX];
	struct config_kubeconfig kubeconfig;
	bool kubeconfig_resolved;
	struct kube_credentials credentials;
	bool credentials_loaded;
	struct kube_client *client;

	struct node_host *hosts;   /* every host of the config, in its order */
	struct wait_host *host_states;
	struct node_outcome *outcomes;
	size_t host_count;
};

static void wait_state_release(struct wait_state *state)
{
	kube_client_free(state->client);
	if (state->credentials_loaded)
		kube_credentials_release(&state->credentials);
	config_kubeconfig_release(&state->kubeconfig);
	for (size_t i = 0; state->hosts && i < state->host_count; i++)
		node_host_release(&state->hosts[i]);
	free(state->hosts);
	free(state->host_states);
	free(state->outcomes);
}

static int wait_state_init(struct wait_state *state, struct unattended *run,
			   const struct node_options *node_options)
{
	const struct config *config = run->config;
	int r = -ENOMEM;

	memset(state, 0, sizeof(*state));
	state->run = run;
	if (node_options)
		state->probe_options = *node_options;
	else
		node_options_init(&state->probe_options);
	if (state->probe_options.connect_timeout_ms > UNATTENDED_PROBE_CONNECT_MS)
		state->probe_options.connect_timeout_ms = UNATTENDED_PROBE_CONNECT_MS;
	if (state->probe_options.handshake_timeout_ms > UNATTENDED_PROBE_REQUEST_MS)
		state->probe_options.handshake_timeout_ms = UNATTENDED_PROBE_REQUEST_MS;
	if (state->probe_options.auth_timeout_ms > UNATTENDED_PROBE_REQUEST_MS)
		state->probe_options.auth_timeout_ms = UNATTENDED_PROBE_REQUEST_MS;

	state->bundle_pending = run->bundle_path != NULL;
	state->api_pending = true;
	state->host_count = config->host_count;
	if (state->host_count == 0)
		return 0;
	state->hosts = calloc(state->host_count, sizeof(*state->hosts));
	state->host_states = calloc(state->host_count, sizeof(*state->host_states));
	state->outcomes = calloc(state->host_count, sizeof(*state->outcomes));
	if (!state->hosts || !state->host_states || !state->outcomes)
		goto out;
	for (size_t i = 0; i < state->host_count; i++) {
		r = config_host_to_node(&config->hosts[i], &state->hosts[i]);
		if (r < 0)
			goto out;
		state->host_states[i].remote = !config->hosts[i].local;
		state->host_states[i].pending = state->host_states[i].remote;
	}
	r = 0;
out:
	return r;
}

/*
 * A probe result that waiting cannot change: the other side responded and
 * rejected something, or the input is wrong.
 */
static bool result_is_final(int r)
{
	return r < 0 && r != MLB_EUNREACHABLE && r != -ETIMEDOUT && r != -ENOENT;
}

static int probe_bundle(struct wait_state *state)
{
	const char *path = state->run->bundle_path;
	struct stat st;

	if (stat(path, &st) < 0) {
		int r = -errno;

		snprintf(state->bundle_message, sizeof(state->bundle_message), "%s", strerror(-r));
		return r == -ENOENT ? -ENOENT : MLB_EINPUT;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(state->bundle_message, sizeof(state->bundle_message), "not a regular file");
		return MLB_EINPUT;
	}
	return 0;
}

static int probe_host(const struct node_host *host, size_t index, void *context,
		      struct node_error *err)
{
	struct wait_state *state = context;
	struct node_session *session = NULL;
	int r;

	if (!state->host_states[index].pending)
		return 0;
	r = node_connect(host, &state->probe_options, &session, err);
	node_close(session);
	return r;
}

static void probe_hosts(struct wait_state *state)
{
	bool any = false;

	for (size_t i = 0; i < state->host_count; i++)
		any = any || state->host_states[i].pending;
	if (!any)
		return;
	memset(state->outcomes, 0, state->host_count * sizeof(*state->outcomes));
	node_for_each(state->hosts, state->host_count, state->run->config->parallelism, probe_host,
		      state, state->outcomes);
	for (size_t i = 0; i < state->host_count; i++) {
		struct wait_host *host = &state->host_states[i];

		if (!host->pending)
			continue;
		host->result = state->outcomes[i].result;
		snprintf(host->message, sizeof(host->message), "%s", state->outcomes[i].error.message);
		if (host->result == 0) {
			host->pending = false;
			log_info("host '%s' accepted the SSH login after %.0f s", state->hosts[i].name,
				 seconds_since(&state->run->started));
		}
	}
}

/* Builds the API client once the kubeconfig can be read; returns 0 or a probe result. */
static int api_client_prepare(struct wait_state *state)
{
	static const struct kube_client_options probe_client_options = {
		.connect_timeout_ms = UNATTENDED_PROBE_CONNECT_MS,
		.request_timeout_ms = UNATTENDED_PROBE_REQUEST_MS,
		.max_retries = 0,
		.max_retry_delay_ms = 0,
	};
	struct node_error err;
	int r;

	if (state->client)
		return 0;
	if (!state->kubeconfig_resolved) {
		r = config_kubeconfig_resolve(state->run->config, &state->probe_options,
					      &state->kubeconfig, &err);
		if (r < 0) {
			snprintf(state->api_message, sizeof(state->api_message), "%s", err.message);
			config_kubeconfig_release(&state->kubeconfig);
			/* kubeconfig.fromHost: the host's bootstrap tool may not have written it yet. */
			return r == MLB_EINPUT ? -ENOENT : r;
		}
		state->kubeconfig_resolved = true;
	}
	if (!state->credentials_loaded) {
		r = kubeconfig_load(&state->kubeconfig.options, &state->credentials);
		if (r < 0) {
			snprintf(state->api_message, sizeof(state->api_message), "%s", kube_last_error());
			return r;
		}
		state->credentials_loaded = true;
	}
	r = kube_client_new(&state->credentials, &probe_client_options, &state->client);
	if (r < 0)
		snprintf(state->api_message, sizeof(state->api_message), "%s", kube_last_error());
	return r;
}

static int probe_api(struct wait_state *state)
{
	struct kube_response response;
	int r;

	memset(&response, 0, sizeof(response));
	r = api_client_prepare(state);
	if (r < 0)
		goto out;
	r = kube_request(state->client, "GET", "/version", NULL, NULL, 0, &response);
	if (r < 0)
		snprintf(state->api_message, sizeof(state->api_message), "%s", kube_last_error());
out:
	kube_response_release(&response);
	return r;
}

/* Appends "the bundle ..., the API server ..., SSH on host ..." for what is pending. */
static void waiting_describe(const struct wait_state *state, char *text, size_t size)
{
	size_t n = 0, pending_hosts = 0;

	text[0] = '\0';
#define APPEND(...) \
	do { \
		if (n < size) { \
			int written = snprintf(text + n, size - n, __VA_ARGS__); \
			n += written > 0 ? (size_t)written : 0; \
		} \
	} while (0)
	if (state->bundle_pending)
		APPEND("%sthe bundle '%s'", n ? ", " : "", state->run->bundle_path);
	if (state->api_pending)
		APPEND("%sthe API server%s%s", n ? ", " : "",
		       state->client ? " " : "", state->client ? kube_client_server(state->client) : "");
	for (size_t i = 0; i < state->host_count; i++)
		pending_hosts += state->host_states[i].pending;
	if (pending_hosts > 0) {
		APPEND("%sSSH on host%s", n ? ", " : "", pending_hosts > 1 ? "s" : "");
		for (size_t i = 0, shown = 0; i < state->host_count; i++) {
			if (!state->host_states[i].pending)
				continue;
			if (++shown > 8) {
				APPEND(" and %zu more", pending_hosts - 8);
				break;
			}
			APPEND("%s '%s'", shown > 1 ? "," : "", state->hosts[i].name);
		}
	}
#undef APPEND
}

static bool wait_pending(const struct wait_state *state)
{
	if (state->bundle_pending || state->api_pending)
		return true;
	for (size_t i = 0; i < state->host_count; i++)
		if (state->host_states[i].pending)
			return true;
	return false;
}

/* Logs, at the end of a wait that timed out, each thing that never responded and why. */
static void wait_log_timeout(const struct wait_state *state, unsigned timeout)
{
	if (state->bundle_pending)
		log_error("the bundle '%s' did not appear within %u s: %s", state->run->bundle_path,
			  timeout, state->bundle_message);
	if (state->api_pending)
		log_error("the API server did not respond within %u s: %s", timeout,
			  state->api_message[0] ? state->api_message : "no response");
	for (size_t i = 0; i < state->host_count; i++)
		if (state->host_states[i].pending)
			log_error("no SSH login within %u s: %s", timeout, state->host_states[i].message);
}

/* Runs one probe of everything still pending; returns a final result, or 0 to go on. */
static int wait_round(struct wait_state *state)
{
	int r;

	if (state->bundle_pending) {
		r = probe_bundle(state);
		if (r == 0) {
			state->bundle_pending = false;
			log_info("the bundle '%s' is present", state->run->bundle_path);
		} else if (result_is_final(r)) {
			log_error("invalid bundle '%s' in %s: %s", state->run->bundle_path,
				  state->run->config_path, state->bundle_message);
			return r;
		}
	}

	probe_hosts(state);
	for (size_t i = 0; i < state->host_count; i++) {
		const struct wait_host *host = &state->host_states[i];

		if (host->pending && result_is_final(host->result)) {
			log_errno(LOG_ERR, host->result, "SSH login failed: %s", host->message);
			return host->result;
		}
	}

	if (state->api_pending) {
		r = probe_api(state);
		if (r == 0) {
			state->api_pending = false;
			log_info("the API server %s responded after %.0f s", kube_client_server(state->client),
				 seconds_since(&state->run->started));
		} else if (result_is_final(r)) {
			log_errno(LOG_ERR, r, "the API server cannot be used: %s", state->api_message);
			return r;
		}
	}
	return 0;
}

static int unattended_wait(struct unattended *run, const struct node_options *node_options)
{
	struct wait_state state;
	char waiting[WAITING_TEXT_MAX], logged[WAITING_TEXT_MAX] = "";
	unsigned timeout = run->config->install_timeout ? run->config->install_timeout
							 : CONFIG_DEFAULT_INSTALL_TIMEOUT;
	unsigned delay = UNATTENDED_BACKOFF_FIRST;
	double last_log = -UNATTENDED_LOG_INTERVAL, elapsed;
	int r;

	r = wait_state_init(&state, run, node_options);
	if (r < 0) {
		log_errno(LOG_ERR, r, "failed to prepare the wait for the cluster");
		goto out;
	}
	for (;;) {
		r = wait_round(&state);
		if (r < 0)
			goto out;
		if (!wait_pending(&state))
			break;

		elapsed = seconds_since(&run->started);
		waiting_describe(&state, waiting, sizeof(waiting));
		sd_notify_status("waiting for %s (%.0f s of at most %u s)", waiting, elapsed, timeout);
		if (strcmp(waiting, logged) != 0 || elapsed - last_log >= UNATTENDED_LOG_INTERVAL) {
			log_notice("waiting for %s (%.0f s so far, at most %u s)", waiting, elapsed, timeout);
			snprintf(logged, sizeof(logged), "%s", waiting);
			last_log = elapsed;
		}
		if (elapsed >= timeout) {
			wait_log_timeout(&state, timeout);
			r = MLB_EUNREACHABLE;
			goto out;
		}
		if (elapsed + delay > timeout)
			delay = (unsigned)(timeout - elapsed) + 1;
		sleep(delay);
		delay = delay * 2 > UNATTENDED_BACKOFF_MAX ? UNATTENDED_BACKOFF_MAX : delay * 2;
	}
	log_info("the bundle, the API server and every host are ready after %.0f s",
		 seconds_since(&run->started));
	sd_notify_status("the cluster is ready; installing");
	r = 0;
out:
	wait_state_release(&state);
	return r;
}

/* ------------------------------------------------------------------------
 * Reports and the done-stamp
 */

static int name_compare(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool name_matches(const char *name, const char *prefix, const char *suffix)
{
	size_t len = strlen(name), prefix_len = strlen(prefix), suffix_len = strlen(suffix);

	return len > prefix_len + 1 + suffix_len && strncmp(name, prefix, prefix_len) == 0 &&
	       name[prefix_len] == '-' && strcmp(name + len - suffix_len, suffix) == 0;
}

int unattended_prune_reports(const char *folder, const char *prefix, const char *suffix,
			     unsigned keep)
{
	char **names = NULL;
	size_t count = 0, capacity = 0;
	struct dirent *entry;
	int folder_fd, removed = 0, r;
	DIR *dir = NULL;

	folder_fd = open(folder, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (folder_fd < 0) {
		r = -errno;
		goto out;
	}
	dir = fdopendir(folder_fd);
	if (!dir) {
		r = -errno;
		close(folder_fd);
		goto out;
	}
	while ((entry = readdir(dir)) != NULL) {
		if (!name_matches(entry->d_name, prefix, suffix))
			continue;
		if (count == PRUNE_MAX_FILES) {
			r = -E2BIG;
			goto out;
		}
		if (count == capacity) {
			size_t grown = capacity ? capacity * 2 : 64;
			char **bigger = realloc(names, grown * sizeof(*names));

			if (!bigger) {
				r = -ENOMEM;
				goto out;
			}
			names = bigger;
			capacity = grown;
		}
		names[count] = strdup(entry->d_name);
		if (!names[count]) {
			r = -ENOMEM;
			goto out;
		}
		count++;
	}
	if (count > 1)
		qsort(names, count, sizeof(*names), name_compare);
	for (size_t i = 0; count > keep && i < count - keep; i++) {
		if (unlinkat(dirfd(dir), names[i], 0) < 0 && errno != ENOENT) {
			r = -errno;
			log_errno(LOG_WARNING, r, "failed to remove the old report '%s/%s'", folder,
				  names[i]);
			goto out;
		}
		removed++;
	}
	r = removed;
out:
	for (size_t i = 0; i < count; i++)
		free(names[i]);
	free(names);
	if (dir)
		closedir(dir);
	return r;
}

int unattended_save_report(const struct report *report, const char *folder, const char *prefix,
			   unsigned keep)
{
	/* The JSON, then the HTML page. */
	struct buf json = BUF_INIT(256UL * 1024 * 1024);
	char stamp[32], *path = NULL;
	struct tm tm;
	int r;

	r = file_mkdir_parents(folder, 0750);
	if (r < 0)
		goto out;
	gmtime_r(&report->time, &tm);
	strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%SZ", &tm);

	r = report_write_json(report, &json);
	if (r < 0)
		goto out;
	if (asprintf(&path, "%s/%s-%s.json", folder, prefix, stamp) < 0) {
		path = NULL;
		r = -ENOMEM;
		goto out;
	}
	r = file_write_atomic(path, json.data, json.len, 0640);
	if (r < 0)
		goto out;

	buf_reset(&json);
	r = report_write_html(report, &json);
	if (r < 0)
		goto out;
	free(path);
	if (asprintf(&path, "%s/%s-%s.html", folder, prefix, stamp) < 0) {
		path = NULL;
		r = -ENOMEM;
		goto out;
	}
	r = file_write_atomic(path, json.data, json.len, 0640);
	if (r < 0)
		goto out;

	r = unattended_prune_reports(folder, prefix, ".json", keep);
	if (r >= 0)
		r = unattended_prune_reports(folder, prefix, ".html", keep);
	if (r < 0)
		goto out;
	r = 0;
out:
	free(path);
	buf_release(&json);
	return r;
}

static int stamp_write(const struct unattended *run)
{
	struct buf text = BUF_INIT(64 * 1024);
	char when[64], *config_path = realpath(run->config_path, NULL);
	time_t now = time(NULL);
	struct tm tm;
	int r;

	gmtime_r(&now, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
	r = buf_printf(&text,
		       "# The unattended install of mlboot succeeded. While this file exists,\n"
		       "# mlboot-install.service does not start again; remove it to install at next boot.\n"
		       "finished: %s\nversion: %s\nconfig: %s\nbundle: %s\nseconds: %.0f\n",
		       when, MLBOOT_VERSION, config_path ? config_path : run->config_path,
		       run->bundle_path ? run->bundle_path : "", seconds_since(&run->started));
	if (r < 0)
		goto out;
	r = file_mkdir_parents(run->stamp_folder, 0755);
	if (r < 0)
		goto out;
	r = file_write_atomic(run->stamp_path, text.data, text.len, 0644);
out:
	free(config_path);
	buf_release(&text);
	return r;
}

static int unattended_finish(struct unattended *run, const struct report *report)
{
	char *folder = NULL;
	int r;

	if (report) {
		if (asprintf(&folder, "%s/%s", run->stamp_folder, UNATTENDED_REPORTS_FOLDER) < 0) {
			folder = NULL;
			r = log_errno(LOG_ERR, -ENOMEM, "failed to save the final check report");
			goto out;
		}
		r = unattended_save_report(report, folder, "install", run->reports_keep);
		if (r < 0)
			log_errno(LOG_WARNING, r, "failed to save the final check report in '%s'", folder);
		else
			log_notice("saved the final check report in '%s' (install-*.json, install-*.html)",
				   folder);
	}
	r = stamp_write(run);
	if (r < 0) {
		log_errno(LOG_ERR, r, "failed to write the done-stamp '%s'", run->stamp_path);
		sd_notify_status("installed, but the done-stamp '%s' could not be written", run->stamp_path);
		goto out;
	}
	log_notice("unattended install finished after %.0f s; wrote '%s'",
		   seconds_since(&run->started), run->stamp_path);
	sd_notify_status("installed in %.0f s; done-stamp %s", seconds_since(&run->started),
			 run->stamp_path);
	sd_notify_send("READY=1");
	r = 0;
out:
	free(folder);
	return r;
}

static void unattended_failed(struct unattended *run, int result)
{
	sd_notify_status("failed after %.0f s: %s; systemd retries after RestartSec and resumes"
			 " from the install journal (journalctl -u mlboot-install)",
			 seconds_since(&run->started), mlb_strerror(result));
}

int unattended_begin(struct unattended *run, const struct config *config, const char *config_path,
		     const char *bundle_path, const struct node_options *node_options)
{
	int r;

	r = unattended_init(run, config, config_path);
	if (r < 0)
		goto out;
	run->bundle_path = bundle_path;
	if (unattended_is_done(run)) {
		log_notice("the unattended install finished before ('%s' exists); nothing to do."
			   " Remove that file to install again", run->stamp_path);
		sd_notify_status("installed before; done-stamp %s", run->stamp_path);
		r = 1;
		goto out;
	}
	log_notice("unattended install of '%s' with '%s'", bundle_path ? bundle_path : "(no bundle)",
		   config_path);
	r = unattended_wait(run, node_options);
	run->waited = r == 0;
out:
	if (r < 0)
		unattended_failed(run, r);
	return r;
}

/*
 * Runs the checks of "mlboot check" on the platform just installed and
 * fills report. Returns 0 when the report could be made, whatever the
 * checks found.
 */
static int final_check(struct install *install, struct report *report)
{
	struct check_options options;
	struct check_platform platform;
	struct bundle_report problems;
	struct config_problems config_problems = { 0 };
	int r;

	memset(&platform, 0, sizeof(platform));
	bundle_report_init(&problems);
	check_options_init(&options);
	options.cluster.kubeconfig = install->kubeconfig.options;
	options.config = &install->config;
	if (install->config.components.sample_model_namespace)
		options.model_namespace = install->config.components.sample_model_namespace;
	r = preflight_parse_min_version("1.24", &options.cluster.min_version);
	if (r < 0)
		goto out;
	r = check_platform_from_bundle(install->bundle_path, &install->trust, &platform, &problems);
	if (r < 0) {
		for (size_t i = 0; i < problems.count; i++)
			log_warning("bundle '%s': %s", install->bundle_path, problems.messages[i]);
		goto out;
	}
	/* The install checked spec.components against this bundle already, so no problem is expected here. */
	r = check_platform_select(&platform, &install->config, install->bundle_path, &config_problems);
	if (r < 0) {
		config_problems_log(&config_problems, install->settings.config_path);
		goto out;
	}
	r = report_set_bundle(report, platform.description);
	if (r < 0)
		goto out;
	r = check_run(&options, &platform, report);
	if (r == -ENOMEM)
		goto out;
	r = 0;
out:
	check_platform_release(&platform);
	bundle_report_release(&problems);
	config_problems_release(&config_problems);
	return r;
}

int unattended_end(struct unattended *run, struct install *install, int result)
{
	struct report report;
	bool have_report = false;
	int r;

	/* Nothing ran: unattended_begin() failed or found the done-stamp, and logged why. */
	if (!run->waited)
		return result;
	if (result < 0) {
		unattended_failed(run, result);
		return result;
	}
	sd_notify_status("installed; running the final checks for the report");
	r = report_init(&report, "check", NULL);
	if (r == 0) {
		have_report = true;
		r = final_check(install, &report);
	}
	if (r < 0)
		log_errno(LOG_WARNING, r, "failed to run the final checks; no report is saved");
	else if (report_count(&report, CHECK_FAIL) > 0)
		log_warning("%zu of %zu final checks failed; the report in '%s/%s' lists them",
			    report_count(&report, CHECK_FAIL), report.count, run->stamp_folder,
			    UNATTENDED_REPORTS_FOLDER);
	r = unattended_finish(run, r == 0 ? &report : NULL);
	if (have_report)
		report_release(&report);
	return r;
}
