#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#include "common.h"
#include "commands.h"
#include "config.h"
#include "journal.h"
#include "report.h"

#define PLAN_MAX (16u * 1024 * 1024)

static const char status_usage[] =
	"usage: mlboot status [-f mlboot.yaml] [--state-dir DIR] [-o text|json]\n"
	"\n"
	"Prints what the install journal records: each step of the last plan with\n"
	"its state (done, failed with its message, running, interrupted or\n"
	"pending), when it started and finished, and how often it ran. Reads the\n"
	"state folder only; changes nothing and contacts no host.\n"
	"\n"
	"Options:\n"
	"  -f, --file FILE       platform configuration whose spec.stateDir to read\n"
	"  --state-dir DIR       state folder (default: spec.stateDir, else " CONFIG_DEFAULT_STATE_DIR ")\n"
	"  -o, --output FORMAT   text (default) or json\n"
	"  -h, --help            show this help\n"
	"\n"
	"Exit status: 0 every planned step is done, 1 a step failed or is not done\n"
	"yet, 2 usage error, 3 invalid mlboot.yaml.\n";

enum {
	OPTION_STATE_DIR = 256,
};

struct status_options {
	const char *config_path;
	const char *state_dir;
	bool json;
};

static int parse_options(int argc, char **argv, struct status_options *options)
{
	static const struct option long_options[] = {
		{ "file",      required_argument, NULL, 'f' },
		{ "state-dir", required_argument, NULL, OPTION_STATE_DIR },
		{ "output",    required_argument, NULL, 'o' },
		{ "help",      no_argument,       NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":f:o:h", long_options, NULL)) != -1) {
		switch (c) {
		case 'f':
			options->config_path = optarg;
			break;
		case OPTION_STATE_DIR:
			options->state_dir = optarg;
			break;
		case 'o':
			if (strcmp(optarg, "json") == 0)
				options->json = true;
			else if (strcmp(optarg, "text") != 0)
				return cli_usage_error("status", "invalid output format '%s': use text or json", optarg);
			break;
		case 'h':
			fputs(status_usage, stdout);
			return 1;
		case ':':
			return cli_usage_error("status", "option '%s' requires a value", argv[optind - 1]);
		default:
			return cli_usage_error("status", "unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind < argc)
		return cli_usage_error("status", "unexpected argument '%s'", argv[optind]);
	return 0;
}

/* Whether an install holds the lock of folder now: a shared lock that cannot be had means it does. */
static bool install_is_running(const char *folder)
{
	char path[4096];
	bool running = false;
	int fd;

	snprintf(path, sizeof(path), "%s/lock", folder);
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return false;
	if (flock(fd, LOCK_SH | LOCK_NB) < 0 && errno == EWOULDBLOCK)
		running = true;
	close(fd);
	return running;
}

static const char *step_state(const struct journal_step *step, bool running)
{
	if (!step)
		return "pending";
	switch (step->event) {
	case JOURNAL_DONE:
		return "done";
	case JOURNAL_FAILED:
		return "failed";
	default:
		return running ? "running" : "interrupted";
	}
}

static void format_time(time_t when, char *out, size_t size)
{
	struct tm tm;

	if (when == 0 || !localtime_r(&when, &tm)) {
		snprintf(out, size, "-");
		return;
	}
	strftime(out, size, "%Y-%m-%d %H:%M:%S", &tm);
}

/* The steps to show: those of the plan file in its order, then any other step of the journal. */
struct status_rows {
	char **names;
	size_t count;
};

static int rows_add(struct status_rows *rows, const char *name, size_t len)
{
	char **grown;

	for (size_t i = 0; i < rows->count; i++)
		if (strlen(rows->names[i]) == len && strncmp(rows->names[i], name, len) == 0)
			return 0;
	grown = realloc(rows->names, (rows->count + 1) * sizeof(*grown));
	if (!grown)
		return -ENOMEM;
	rows->names = grown;
	grown[rows->count] = strndup(name, len);
	if (!grown[rows->count])
		return -ENOMEM;
	rows->count++;
	return 0;
}

static void rows_release(struct status_rows *rows)
{
	for (size_t i = 0; i < rows->count; i++)
		free(rows->names[i]);
	free(rows->names);
}

static int collect_rows(const char *folder, const struct journal *journal, struct status_rows *rows)
{
	struct buf plan = BUF_INIT(PLAN_MAX);
	char path[4096];
	int r;

	snprintf(path, sizeof(path), "%s/plan", folder);
	r = file_read_all(path, PLAN_MAX, &plan);
	if (r < 0 && r != -ENOENT) {
		log_errno(LOG_WARNING, r, "cannot read the plan '%s'; showing the journal's steps only", path);
		r = 0;
	}
	if (r == 0) {
		const char *line = buf_str(&plan);

		while (*line && r == 0) {
			size_t len = strcspn(line, "\n");

			if (len > 0)
				r = rows_add(rows, line, len);
			line += len;
			if (*line == '\n')
				line++;
		}
	}
	r = r == -ENOENT ? 0 : r;
	for (size_t i = 0; r == 0 && i < journal->count; i++)
		r = rows_add(rows, journal->steps[i].name, strlen(journal->steps[i].name));
	buf_release(&plan);
	return r;
}

static int print_text(const char *folder, const struct journal *journal, const struct status_rows *rows,
		      bool running)
{
	struct buf escaped = BUF_INIT(8192);

	printf("state folder %s: %s\n", folder, running ? "an install is running" : "no install is running");
	printf("%-36s %-11s %-19s %-19s %4s  %s\n", "STEP", "STATE", "STARTED", "FINISHED", "RUNS", "MESSAGE");
	for (size_t i = 0; i < rows->count; i++) {
		const struct journal_step *step = journal_find(journal, rows->names[i]);
		char started[32], finished[32];

		format_time(step ? step->started : 0, started, sizeof(started));
		format_time(step && step->event != JOURNAL_START ? step->finished : 0, finished, sizeof(finished));
		buf_reset(&escaped);
		if (step && step->message)
			report_escape_terminal(&escaped, step->message);
		printf("%-36s %-11s %-19s %-19s %4u  %s\n", rows->names[i], step_state(step, running), started,
		       finished, step ? step->runs : 0, buf_str(&escaped));
	}
	buf_release(&escaped);
	return fflush(stdout) == 0 ? 0 : -EIO;
}

static int print_json(const char *folder, const struct journal *journal, const struct status_rows *rows,
		      bool running)
{
	struct buf out = BUF_INIT(64u * 1024 * 1024);
	int r;

	r = buf_append_str(&out, "{\"apiVersion\":\"mlboot.dev/v1alpha1\",\"kind\":\"InstallStatus\",\"stateDir\":");
	if (r == 0)
		r = doc_write_json_string(&out, folder, strlen(folder));
	if (r == 0)
		r = buf_printf(&out, ",\"running\":%s,\"steps\":[", running ? "true" : "false");
	for (size_t i = 0; r == 0 && i < rows->count; i++) {
		const struct journal_step *step = journal_find(journal, rows->names[i]);

		r = buf_printf(&out, "%s{\"step\":", i ? "," : "");
		if (r == 0)
			r = doc_write_json_string(&out, rows->names[i], strlen(rows->names[i]));
		if (r == 0)
			r = buf_printf(&out, ",\"state\":\"%s\",\"runs\":%u", step_state(step, running),
				       step ? step->runs : 0);
		if (r == 0 && step)
			r = buf_printf(&out, ",\"digest\":\"%s\",\"started\":%lld,\"finished\":%lld", step->digest,
				       (long long)step->started,
				       (long long)(step->event != JOURNAL_START ? step->finished : 0));
		if (r == 0 && step && step->message) {
			r = buf_append_str(&out, ",\"message\":");
			if (r == 0)
				r = doc_write_json_string(&out, step->message, strlen(step->message));
		}
		if (r == 0)
			r = buf_append_char(&out, '}');
	}
	if (r == 0)
		r = buf_append_str(&out, "]}\n");
	if (r == 0 && (fwrite(out.data, 1, out.len, stdout) != out.len || fflush(stdout) != 0))
		r = -EIO;
	buf_release(&out);
	return r;
}

int cmd_status(int argc, char **argv)
{
	struct status_options options = { 0 };
	struct config config;
	struct config_problems problems;
	struct journal *journal = NULL;
	struct status_rows rows = { 0 };
	const char *folder;
	bool running, all_done = true;
	int r;

	memset(&config, 0, sizeof(config));
	memset(&problems, 0, sizeof(problems));
	r = parse_options(argc, argv, &options);
	if (r != 0) {
		r = r > 0 ? 0 : r;
		goto out;
	}
	if (options.config_path && !options.state_dir) {
		r = config_load(options.config_path, &config, &problems);
		if (r < 0) {
			config_problems_log(&problems, options.config_path);
			goto out;
		}
	}
	folder = CONFIG_DEFAULT_STATE_DIR;
	if (options.state_dir)
		folder = options.state_dir;
	else if (config.state_dir)
		folder = config.state_dir;
	r = journal_read(folder, &journal);
	if (r < 0) {
		log_errno(LOG_ERR, r, "cannot read the journal in '%s'", folder);
		goto out;
	}
	running = install_is_running(folder);
	r = collect_rows(folder, journal, &rows);
	if (r < 0)
		goto out;
	r = options.json ? print_json(folder, journal, &rows, running) : print_text(folder, journal, &rows, running);
	if (r < 0)
		goto out;
	for (size_t i = 0; i < rows.count; i++) {
		const struct journal_step *step = journal_find(journal, rows.names[i]);

		if (!step || step->event != JOURNAL_DONE)
			all_done = false;
	}
	if (rows.count == 0) {
		struct stat st;

		if (stat(folder, &st) < 0)
			log_info("the state folder '%s' does not exist: no install has run with it; give the "
				 "install's --state-dir or stateDir of mlboot.yaml", folder);
		else
			log_info("the journal in '%s' records no step: no install has run with this state "
				 "folder", folder);
		all_done = false;
	}
	r = all_done ? 0 : MLB_EFAILED;
out:
	rows_release(&rows);
	journal_close(journal);
	config_problems_release(&problems);
	config_release(&config);
	return r;
}
