/*
 * node-probe: drives the node module from shell tests, before the mlboot
 * commands that use it exist.
 *
 *   node-probe [OPTIONS] run -- PROGRAM [ARGS...]
 *   node-probe [OPTIONS] upload SOURCE DESTINATION
 *
 * Hosts are described by options. --host NAME starts a new host, and the
 * host options after it apply to that host:
 *
 *   --address ADDR --port N --user USER --key FILE --passphrase-env VAR
 *   --host-key "SHA256:..." --known-hosts FILE --sudo --local
 *   --bastion-address ADDR --bastion-port N --bastion-user USER
 *   --bastion-key FILE --bastion-host-key FP --bastion-known-hosts FILE
 *
 * Global options:
 *   --accept-new-host-keys, --parallel N, --connect-timeout MS,
 *   --command-timeout MS, --mode OCTAL
 *   --sha256 HEX          upload: the expected digest, as install passes it
 *                         from the bundle index
 *   --upload-streams N    upload: sessions per large file (0, the default,
 *                         lets the node module choose)
 *   --sync                upload: flush the file to disk on the node, as
 *                         install does for binaries
 *   --raw                 run on one host: print only its stdout
 *   -v                    debug log
 *
 * Output: "run" prints "--- NAME exit=N" and the captured stdout for each
 * host (or only the stdout with --raw). "upload" prints one line per host:
 * "NAME: size=S resumed=R sent=B sha256=H". Failures go to stderr as
 * "error: MESSAGE", one per failed host. The exit status is mlboot's for the
 * first failed host (5 unreachable, 6 denied, 4 integrity, 3 input, 1
 * other), else 1 when a command exited non-zero, else 0.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libssh2.h>

#include "common.h"
#include "node.h"

#define MAX_HOSTS 16

struct probe {
	struct node_host hosts[MAX_HOSTS];
	size_t host_count;
	struct node_options options;
	unsigned parallel;
	bool raw;
	mode_t mode;
	/* run */
	const char *const *argv;
	struct node_result results[MAX_HOSTS];
	/* upload */
	const char *source;
	const char *destination;
	const char *sha256;
	unsigned streams;
	bool sync;
	struct node_upload_stats stats[MAX_HOSTS];
};

static void usage(void)
{
	fprintf(stderr,
		"usage: node-probe [OPTIONS] run -- PROGRAM [ARGS...]\n"
		"       node-probe [OPTIONS] upload SOURCE DESTINATION\n"
		"see the comment at the top of tests/integration/node-probe.c for the options\n");
	exit(2);
}

static char *copy(const char *text)
{
	char *result = strdup(text);

	if (!result) {
		fprintf(stderr, "error: out of memory\n");
		exit(1);
	}
	return result;
}

static unsigned parse_number(const char *text, unsigned long max, int base)
{
	char *end;
	unsigned long value;

	errno = 0;
	value = strtoul(text, &end, base);
	if (errno || !*text || *end || value > max) {
		fprintf(stderr, "error: invalid number '%s'\n", text);
		exit(2);
	}
	return (unsigned)value;
}

static struct node_host *current_host(struct probe *probe, const char *option)
{
	if (probe->host_count == 0) {
		fprintf(stderr, "error: %s before the first --host\n", option);
		exit(2);
	}
	return &probe->hosts[probe->host_count - 1];
}

static struct node_ssh *bastion_of(struct node_host *host)
{
	if (!host->ssh.bastion) {
		host->ssh.bastion = calloc(1, sizeof(*host->ssh.bastion));
		if (!host->ssh.bastion) {
			fprintf(stderr, "error: out of memory\n");
			exit(1);
		}
	}
	return host->ssh.bastion;
}

/* Applies one option that takes a value; returns false when name is not one. */
static bool host_option(struct probe *probe, const char *name, const char *value)
{
	struct node_host *host;
	struct node_ssh *ssh;
	bool bastion = strncmp(name, "--bastion-", 10) == 0;
	const char *field = bastion ? name + 10 : name + 2;
	char **slot = NULL;

	if (strcmp(name, "--host") == 0) {
		if (probe->host_count == MAX_HOSTS) {
			fprintf(stderr, "error: at most %d hosts\n", MAX_HOSTS);
			exit(2);
		}
		host = &probe->hosts[probe->host_count++];
		node_host_init(host);
		host->name = copy(value);
		return true;
	}
	host = current_host(probe, name);
	ssh = bastion ? bastion_of(host) : &host->ssh;
	if (strcmp(field, "address") == 0)
		slot = &ssh->address;
	else if (strcmp(field, "user") == 0)
		slot = &ssh->user;
	else if (strcmp(field, "key") == 0)
		slot = &ssh->key_path;
	else if (strcmp(field, "passphrase-env") == 0)
		slot = &ssh->passphrase_env;
	else if (strcmp(field, "host-key") == 0)
		slot = &ssh->host_key;
	else if (strcmp(field, "known-hosts") == 0)
		slot = &ssh->known_hosts;
	else if (strcmp(field, "port") == 0) {
		ssh->port = (uint16_t)parse_number(value, 65535, 10);
		return true;
	} else
		return false;
	free(*slot);
	*slot = copy(value);
	return true;
}

static int run_task(const struct node_host *host, size_t index, void *context,
		    struct node_error *err)
{
	struct probe *probe = context;
	struct node_session *session = NULL;
	struct node_command command = { .argv = probe->argv };
	int r;

	r = node_connect(host, &probe->options, &session, err);
	if (r < 0)
		return r;
	r = node_run(session, &command, &probe->results[index], err);
	node_close(session);
	return r;
}

static int upload_task(const struct node_host *host, size_t index, void *context,
		       struct node_error *err)
{
	struct probe *probe = context;
	struct node_session *session = NULL;
	struct node_upload request = {
		.source_path = probe->source,
		.destination = probe->destination,
		.expected_sha256 = probe->sha256,
		.mode = probe->mode,
		.streams = probe->streams,
		.sync = probe->sync,
	};
	int r;

	r = node_connect(host, &probe->options, &session, err);
	if (r < 0)
		return r;
	r = node_upload(session, &request, &probe->stats[index], err);
	node_close(session);
	return r;
}

static int report(struct probe *probe, const struct node_outcome *outcomes, bool upload)
{
	int status = 0;

	for (size_t i = 0; i < probe->host_count; i++) {
		const char *name = probe->hosts[i].name;

		if (outcomes[i].result < 0) {
			fprintf(stderr, "error: %s\n", outcomes[i].error.message);
			if (status == 0 || status == 1)
				status = mlb_exit_code(outcomes[i].result);
			continue;
		}
		if (upload) {
			const struct node_upload_stats *stats = &probe->stats[i];

			printf("%s: size=%llu resumed=%llu sent=%llu sha256=%s\n", name,
			       (unsigned long long)stats->size,
			       (unsigned long long)stats->resumed_from,
			       (unsigned long long)stats->bytes_sent, stats->sha256);
			continue;
		}
		if (!probe->raw)
			printf("--- %s exit=%d\n", name, probe->results[i].exit_status);
		fwrite(probe->results[i].out.data ? probe->results[i].out.data : "", 1,
		       probe->results[i].out.len, stdout);
		if (probe->results[i].err.len)
			fprintf(stderr, "%s stderr: %.*s", name, (int)probe->results[i].err.len,
				probe->results[i].err.data);
		if (probe->results[i].exit_status != 0 && status == 0)
			status = 1;
	}
	return status;
}

int main(int argc, char **argv)
{
	static struct probe probe;
	struct node_outcome *outcomes;
	bool upload = false;
	int i, status;

	log_setup();
	node_options_init(&probe.options);
	probe.mode = 0644;

	for (i = 1; i < argc; i++) {
		const char *arg = argv[i];

		if (strcmp(arg, "run") == 0 || strcmp(arg, "upload") == 0)
			break;
		if (strcmp(arg, "-v") == 0)
			log_set_level(LOG_DEBUG);
		else if (strcmp(arg, "--raw") == 0)
			probe.raw = true;
		else if (strcmp(arg, "--sync") == 0)
			probe.sync = true;
		else if (strcmp(arg, "--accept-new-host-keys") == 0)
			probe.options.accept_new_host_keys = true;
		else if (strcmp(arg, "--sudo") == 0)
			current_host(&probe, arg)->sudo = true;
		else if (strcmp(arg, "--local") == 0)
			current_host(&probe, arg)->local = true;
		else if (i + 1 >= argc)
			usage();
		else if (strcmp(arg, "--parallel") == 0)
			probe.parallel = parse_number(argv[++i], 64, 10);
		else if (strcmp(arg, "--connect-timeout") == 0)
			probe.options.connect_timeout_ms = parse_number(argv[++i], 600000, 10);
		else if (strcmp(arg, "--command-timeout") == 0)
			probe.options.command_timeout_ms = parse_number(argv[++i], 86400000, 10);
		else if (strcmp(arg, "--sha256") == 0)
			probe.sha256 = argv[++i];
		else if (strcmp(arg, "--upload-streams") == 0)
			probe.streams = parse_number(argv[++i], NODE_UPLOAD_STREAMS_MAX, 10);
		else if (strcmp(arg, "--mode") == 0)
			probe.mode = parse_number(argv[++i], 07777, 8);
		else if (host_option(&probe, arg, argv[i + 1]))
			i++;
		else
			usage();
	}
	if (i >= argc || probe.host_count == 0)
		usage();

	if (strcmp(argv[i], "run") == 0) {
		if (i + 2 >= argc || strcmp(argv[i + 1], "--") != 0)
			usage();
		probe.argv = (const char *const *)&argv[i + 2];
	} else {
		if (argc - i != 3)
			usage();
		upload = true;
		probe.source = argv[i + 1];
		probe.destination = argv[i + 2];
	}

	if (libssh2_init(0) != 0) {
		fprintf(stderr, "error: cannot initialise libssh2\n");
		return 1;
	}
	for (size_t h = 0; h < probe.host_count; h++)
		node_result_init(&probe.results[h]);
	outcomes = calloc(probe.host_count, sizeof(*outcomes));
	if (!outcomes) {
		fprintf(stderr, "error: out of memory\n");
		return 1;
	}
	node_for_each(probe.hosts, probe.host_count, probe.parallel,
		      upload ? upload_task : run_task, &probe, outcomes);
	status = report(&probe, outcomes, upload);

	for (size_t h = 0; h < probe.host_count; h++) {
		node_result_release(&probe.results[h]);
		node_host_release(&probe.hosts[h]);
	}
	free(outcomes);
	libssh2_exit();
	return status;
}
