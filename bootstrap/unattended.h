/*
 * Unattended installs: "mlboot install --unattended", as the systemd unit
 * mlboot-install.service runs it at first boot.
 *
 * In this mode mlboot never prompts. Before the install it waits, with
 * backoff and bounded by the config's install timeout, for what a machine
 * that has just booted may not have yet: the bundle file, a response from
 * the API server, and an SSH login to every remote host. It reports
 * progress to systemd as STATUS= lines (bootstrap/sd_notify.h), which
 * `systemctl status mlboot-install` shows. After a successful install it
 * saves the final check report and writes the done-stamp, whose presence
 * keeps the unit from starting again (ConditionPathExists=!).
 *
 * Files, in the stamp folder: $STATE_DIRECTORY when systemd sets it (the
 * unit's StateDirectory=mlboot, so /var/lib/mlboot), else the config's
 * stateDir:
 *   install.done          the done-stamp, written atomically;
 *   reports/install-*.json  the final check report of each successful install;
 *   reports/install-*.html  the same as an HTML page.
 * Reports beyond $MLBOOT_REPORTS_KEEP (default UNATTENDED_REPORTS_KEEP) of
 * one kind are removed, oldest first.
 *
 * Functions return 0 or a negative result code (common/error.h).
 * unattended_begin() and unattended_end() log their own errors once, since
 * they run at the top level of the command; the report helpers only return
 * theirs.
 */
#ifndef MLBOOT_BOOTSTRAP_UNATTENDED_H
#define MLBOOT_BOOTSTRAP_UNATTENDED_H

#include <stdbool.h>
#include <time.h>

#include "config.h"
#include "install.h"
#include "node.h"
#include "report.h"

#define UNATTENDED_STAMP_NAME "install.done"
#define UNATTENDED_REPORTS_FOLDER "reports"
#define UNATTENDED_REPORTS_KEEP 30
#define UNATTENDED_REPORTS_KEEP_MAX 100000

/* Backoff between two rounds of probes, in seconds: doubling from the first to the maximum. */
#define UNATTENDED_BACKOFF_FIRST 1
#define UNATTENDED_BACKOFF_MAX 10
/* A wait that has not changed is logged again after this many seconds. */
#define UNATTENDED_LOG_INTERVAL 60

/* Time limits of one probe, in milliseconds: short, since a probe is repeated. */
#define UNATTENDED_PROBE_CONNECT_MS 3000
#define UNATTENDED_PROBE_REQUEST_MS 10000

struct unattended {
	const struct config *config;   /* not owned */
	const char *config_path;       /* not owned */
	const char *bundle_path;       /* not owned; NULL: nothing to wait for */
	char *stamp_folder;
	char *stamp_path;
	unsigned reports_keep;
	struct timespec started;       /* CLOCK_MONOTONIC, when unattended_begin() started */
	bool waited;                   /* unattended_begin() returned 0: the install runs */
};

/*
 * Starts an unattended install, once mlboot.yaml is loaded and before the
 * bundle is opened: connects to $NOTIFY_SOCKET, sends STOPPING=1 on
 * SIGTERM, reads MLBOOT_REPORTS_KEEP, and then waits as described above
 * (bundle_path is the bundle the install opens). node_options gives the
 * SSH settings of the install (its host key policy); the probes shorten
 * its timeouts. config, config_path and bundle_path must outlive run.
 *
 * Returns 1 when the done-stamp exists (an earlier unattended install
 * succeeded: the caller exits 0 without installing), 0 when everything
 * is ready, MLB_EUNREACHABLE when the install timeout passed first (what
 * never responded is logged), or at once the result of a probe that
 * waiting cannot change: MLB_EDENIED for a rejected host key, user key
 * or TLS certificate, MLB_EINPUT for an invalid kubeconfig, a bundle path
 * that is not a regular file or an invalid MLBOOT_REPORTS_KEEP. Blocks
 * for up to the install timeout.
 */
int unattended_begin(struct unattended *run, const struct config *config, const char *config_path,
		     const char *bundle_path, const struct node_options *node_options);
void unattended_release(struct unattended *run);

/*
 * Ends an unattended install whose result is result. On success it runs
 * the checks of "mlboot check" against the installed bundle, saves their
 * report under reports/ as install-STAMP.json and .html, prunes old
 * reports, writes the done-stamp atomically and sends READY=1 with a final
 * STATUS=. Failed checks and a report that cannot be saved are logged as
 * warnings only, since the install's own readiness gates passed. On
 * failure it sends STATUS= with the result and what systemd does next.
 *
 * Does nothing but return result unless unattended_begin() returned 0, so
 * it may be called with a zeroed run. Returns result, or the error of
 * writing the stamp. Blocks for as long as the checks take.
 */
int unattended_end(struct unattended *run, struct install *install, int result);

/*
 * Logs each problem of an invalid mlboot.yaml as config_problems_log()
 * does, and sends the first one ("invalid configuration FILE:LINE: ...")
 * as the STATUS= line. For use instead of unattended_begin() when the
 * config could not be loaded.
 */
void unattended_config_invalid(const char *config_path, const struct config_problems *problems);

/*
 * Sends "STATUS=" with the formatted text, which "systemctl status" shows;
 * does nothing unless unattended_begin() or unattended_config_invalid()
 * found $NOTIFY_SOCKET. For the install's progress: the step it runs.
 */
void unattended_progress(const char *format, ...) __attribute__((format(printf, 1, 2)));

/*
 * Writes report as PREFIX-STAMP.json and PREFIX-STAMP.html into folder,
 * creating it, each file atomically, then
 * removes the oldest PREFIX-*.json and PREFIX-*.html beyond keep each.
 * STAMP is the report's UTC time as YYYYmmddTHHMMSSZ, so that names sort
 * by time. Returns 0 or a negative errno.
 */
int unattended_save_report(const struct report *report, const char *folder, const char *prefix,
			   unsigned keep);

/*
 * Removes the oldest files named PREFIX-*SUFFIX in folder until at most
 * keep remain. Names are compared as bytes, which orders the timestamps
 * above by time. Returns the number removed or a negative errno.
 */
int unattended_prune_reports(const char *folder, const char *prefix, const char *suffix,
			     unsigned keep);

#endif
