/*
 * The local transport, node_for_each() and uploads through the local
 * transport (the same shell steps as over SSH, run by this machine's sh).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "common.h"
#include "node.h"

struct fixture {
	struct node_host host;
	struct node_session *session;
	char dir[64];
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct node_error err;

	if (!f)
		return -1;
	node_host_init(&f->host);
	f->host.name = strdup("local");
	f->host.local = true;
	snprintf(f->dir, sizeof(f->dir), "/tmp/mlboot-node-test-XXXXXX");
	if (!mkdtemp(f->dir) || node_connect(&f->host, NULL, &f->session, &err) < 0)
		return -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	char command[128];

	node_close(f->session);
	node_host_release(&f->host);
	snprintf(command, sizeof(command), "rm -rf '%s'", f->dir);
	if (system(command) != 0)
		return -1;
	free(f);
	return 0;
}

static int run(struct fixture *f, struct node_command *command, struct node_result *result)
{
	struct node_error err = { "" };
	int r = node_run(f->session, command, result, &err);

	if (r < 0)
		print_message("node_run: %s\n", err.message);
	return r;
}

static void test_local_output_and_exit_status(void **state)
{
	struct fixture *f = *state;
	const char *argv[] = { "sh", "-c", "printf 'out\\n'; printf 'err' >&2; exit 7", NULL };
	struct node_command command = { .argv = argv };
	struct node_result result;

	node_result_init(&result);
	assert_int_equal(run(f, &command, &result), 0);
	assert_int_equal(result.exit_status, 7);
	assert_string_equal(buf_str(&result.out), "out\n");
	assert_string_equal(buf_str(&result.err), "err");
	assert_false(result.out_truncated);
	node_result_release(&result);
}

static void test_local_stdin_data_binary(void **state)
{
	struct fixture *f = *state;
	const char *argv[] = { "cat", NULL };
	static const char data[] = "bin\0ary\xff\n";
	struct node_command command = { .argv = argv, .stdin_data = data, .stdin_len = sizeof(data) };
	struct node_result result;

	node_result_init(&result);
	assert_int_equal(run(f, &command, &result), 0);
	assert_int_equal(result.exit_status, 0);
	assert_int_equal(result.out.len, sizeof(data));
	assert_memory_equal(result.out.data, data, sizeof(data));
	node_result_release(&result);
}

struct counting_reader {
	size_t left;
	unsigned char next;
};

static ssize_t counting_read(void *context, void *buffer, size_t size)
{
	struct counting_reader *reader = context;
	unsigned char *bytes = buffer;

	if (size > reader->left)
		size = reader->left;
	for (size_t i = 0; i < size; i++)
		bytes[i] = reader->next++;
	reader->left -= size;
	return (ssize_t)size;
}

static void test_local_stdin_callback_large(void **state)
{
	struct fixture *f = *state;
	const char *argv[] = { "wc", "-c", NULL };
	struct counting_reader reader = { .left = 5 * 1024 * 1024 + 3 };
	struct node_command command = { .argv = argv, .stdin_read = counting_read,
					.stdin_context = &reader };
	struct node_result result;

	node_result_init(&result);
	assert_int_equal(run(f, &command, &result), 0);
	assert_int_equal(result.exit_status, 0);
	assert_int_equal(strtoul(buf_str(&result.out), NULL, 10), 5 * 1024 * 1024 + 3);
	node_result_release(&result);
}

static ssize_t failing_read(void *context, void *buffer, size_t size)
{
	(void)context;
	(void)buffer;
	(void)size;
	return -EIO;
}

static void test_local_stdin_error_ends_command(void **state)
{
	struct fixture *f = *state;
	const char *argv[] = { "cat", NULL };
	struct node_command command = { .argv = argv, .stdin_read = failing_read };
	struct node_result result;
	struct node_error err;

	node_result_init(&result);
	assert_int_equal(node_run(f->session, &command, &result, &err), -EIO);
	assert_non_null(strstr(err.message, "host 'local'"));
	node_result_release(&result);
}

static void test_local_command_exits_before_reading_input(void **state)
{
	struct fixture *f = *state;
	const char *argv[] = { "sh", "-c", "exit 3", NULL };
	struct counting_reader reader = { .left = 64 * 1024 * 1024 };
	struct node_command command = { .argv = argv, .stdin_read = counting_read,
					.stdin_context = &reader };
	struct node_result result;

	node_result_init(&result);
	assert_int_equal(run(f, &command, &result), 0);
	assert_int_equal(result.exit_status, 3);
	node_result_release(&result);
}

static void test_local_output_cap(void **state)
{
	struct fixture *f = *state;
	const char *argv[] = { "head", "-c", "100000", "/dev/zero", NULL };
	struct node_command command = { .argv = argv, .stdout_max = 1000 };
	struct node_result result;

	node_result_init(&result);
	assert_int_equal(run(f, &command, &result), 0);
	assert_int_equal(result.exit_status, 0);
	assert_int_equal(result.out.len, 1000);
	assert_true(result.out_truncated);
	assert_false(result.err_truncated);
	node_result_release(&result);
}

static void test_local_timeout_kills_command(void **state)
{
	struct fixture *f = *state;
	const char *argv[] = { "sh", "-c", "sleep 30; echo late", NULL };
	struct node_command command = { .argv = argv, .timeout_ms = 300 };
	struct node_result result;
	struct node_error err;
	time_t start = time(NULL);

	node_result_init(&result);
	assert_int_equal(node_run(f->session, &command, &result, &err), -ETIMEDOUT);
	assert_true(time(NULL) - start < 5);
	assert_non_null(strstr(err.message, "time limit"));
	node_result_release(&result);
}

static void test_local_missing_program_and_signal(void **state)
{
	struct fixture *f = *state;
	const char *missing[] = { "mlboot-no-such-program", NULL };
	const char *killed[] = { "sh", "-c", "kill -TERM $$", NULL };
	struct node_command command = { .argv = missing };
	struct node_result result;

	node_result_init(&result);
	assert_int_equal(run(f, &command, &result), 0);
	assert_int_equal(result.exit_status, 127);
	command.argv = killed;
	assert_int_equal(run(f, &command, &result), 0);
	assert_int_equal(result.exit_status, 128 + 15);
	node_result_release(&result);
}

static void test_host_validation(void **state)
{
	struct node_host host;
	struct node_error err;

	(void)state;
	node_host_init(&host);
	assert_int_equal(node_host_validate(&host, &err), MLB_EINPUT);
	host.name = strdup("w1");
	assert_int_equal(node_host_validate(&host, &err), MLB_EINPUT);
	assert_non_null(strstr(err.message, "missing address"));
	host.ssh.address = strdup("198.18.0.12");
	assert_int_equal(node_host_validate(&host, &err), 0);
	host.ssh.host_key = strdup("SHA256:short");
	assert_int_equal(node_host_validate(&host, &err), MLB_EINPUT);
	assert_non_null(strstr(err.message, "hostKey"));
	free(host.ssh.host_key);
	host.ssh.host_key = NULL;

	/* Bastions nest at most NODE_BASTION_DEPTH_MAX deep. */
	{
		struct node_ssh *level = &host.ssh;

		for (int depth = 0; depth <= NODE_BASTION_DEPTH_MAX; depth++) {
			level->bastion = calloc(1, sizeof(*level->bastion));
			level = level->bastion;
			level->address = strdup("198.18.0.11");
		}
		assert_int_equal(node_host_validate(&host, &err), MLB_EINPUT);
		assert_non_null(strstr(err.message, "bastions"));
	}
	node_host_release(&host);
}

struct for_each_probe {
	atomic_int running;
	atomic_int most_running;
};

static int for_each_task(const struct node_host *host, size_t index, void *context,
			 struct node_error *err)
{
	struct for_each_probe *probe = context;
	int now = atomic_fetch_add(&probe->running, 1) + 1;
	int seen = atomic_load(&probe->most_running);

	while (now > seen && !atomic_compare_exchange_weak(&probe->most_running, &seen, now))
		;
	nanosleep(&(struct timespec){ .tv_nsec = 50 * 1000 * 1000 }, NULL);
	atomic_fetch_sub(&probe->running, 1);
	if (index == 2 || index == 4) {
		snprintf(err->message, sizeof(err->message), "host '%s': did not answer", host->name);
		return index == 2 ? MLB_EUNREACHABLE : MLB_EDENIED;
	}
	return 0;
}

static void test_for_each_bound_and_outcomes(void **state)
{
	struct node_host hosts[7];
	struct node_outcome outcomes[7];
	struct for_each_probe probe = { 0 };
	char name[16];

	(void)state;
	for (size_t i = 0; i < 7; i++) {
		node_host_init(&hosts[i]);
		snprintf(name, sizeof(name), "n%zu", i);
		hosts[i].name = strdup(name);
		hosts[i].local = true;
	}
	assert_int_equal(node_for_each(hosts, 7, 3, for_each_task, &probe, outcomes),
			 MLB_EUNREACHABLE);
	for (size_t i = 0; i < 7; i++) {
		if (i == 2 || i == 4)
			continue;
		assert_int_equal(outcomes[i].result, 0);
	}
	assert_int_equal(outcomes[2].result, MLB_EUNREACHABLE);
	assert_string_equal(outcomes[2].error.message, "host 'n2': did not answer");
	assert_int_equal(outcomes[4].result, MLB_EDENIED);
	assert_true(atomic_load(&probe.most_running) <= 3);
	assert_true(atomic_load(&probe.most_running) >= 2);

	atomic_store(&probe.most_running, 0);
	assert_int_equal(node_for_each(hosts, 2, 1, for_each_task, &probe, outcomes), 0);
	assert_int_equal(atomic_load(&probe.most_running), 1);
	for (size_t i = 0; i < 7; i++)
		node_host_release(&hosts[i]);
}

/* Writes size pseudo-random bytes to path and returns their sha256. */
static void write_source(const char *path, size_t size, unsigned seed, char hex[65])
{
	unsigned char *data = malloc(size);

	assert_non_null(data);
	for (size_t i = 0; i < size; i++) {
		seed = seed * 1103515245u + 12345u;
		data[i] = (unsigned char)(seed >> 16);
	}
	assert_int_equal(file_write_atomic(path, data, size, 0600), 0);
	assert_int_equal(sha256_hex(data, size, hex), 0);
	free(data);
}

static void assert_file_sha256(const char *path, const char *hex)
{
	struct buf data = BUF_INIT(64 << 20);
	char actual[65];

	assert_int_equal(file_read_all(path, 64 << 20, &data), 0);
	assert_int_equal(sha256_hex(data.data, data.len, actual), 0);
	assert_string_equal(actual, hex);
	buf_release(&data);
}

static int upload(struct fixture *f, const char *source, const char *destination,
		  const char *expected, struct node_upload_stats *stats)
{
	struct node_upload request = { .source_path = source, .destination = destination,
				       .mode = 0640, .expected_sha256 = expected };
	struct node_error err = { "" };
	int r = node_upload(f->session, &request, stats, &err);

	if (r < 0)
		print_message("node_upload: %s\n", err.message);
	return r;
}

static void test_upload_and_resume(void **state)
{
	struct fixture *f = *state;
	char source[128], destination[256], part[256], hex[65];
	struct node_upload_stats stats;
	struct stat st;
	const size_t size = 3 * 1024 * 1024 + 17;
	struct buf data = BUF_INIT(64 << 20);

	snprintf(source, sizeof(source), "%s/source.bin", f->dir);
	snprintf(destination, sizeof(destination), "%s/dest.bin", f->dir);
	snprintf(part, sizeof(part), "%s/.dest.bin.mlboot-part", f->dir);
	write_source(source, size, 1, hex);

	assert_int_equal(upload(f, source, destination, NULL, &stats), 0);
	assert_int_equal(stats.size, size);
	assert_int_equal(stats.resumed_from, 0);
	assert_int_equal(stats.bytes_sent, size);
	assert_string_equal(stats.sha256, hex);
	assert_file_sha256(destination, hex);
	assert_int_equal(stat(destination, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0640);
	assert_int_equal(access(part, F_OK), -1);

	/* A temporary file with a correct first MiB: only the rest is sent. */
	assert_int_equal(file_read_all(source, 64 << 20, &data), 0);
	assert_int_equal(file_write_atomic(part, data.data, 1 << 20, 0600), 0);
	assert_int_equal(upload(f, source, destination, NULL, &stats), 0);
	assert_int_equal(stats.resumed_from, 1 << 20);
	assert_int_equal(stats.bytes_sent, size - (1 << 20));
	assert_string_equal(stats.sha256, hex);
	assert_file_sha256(destination, hex);

	/* A temporary file whose bytes differ from the source: start over. */
	data.data[100] ^= 1;
	assert_int_equal(file_write_atomic(part, data.data, 1 << 20, 0600), 0);
	assert_int_equal(upload(f, source, destination, NULL, &stats), 0);
	assert_int_equal(stats.resumed_from, 0);
	assert_int_equal(stats.bytes_sent, size);
	assert_file_sha256(destination, hex);

	/* A temporary file longer than the source: start over. */
	assert_int_equal(file_write_atomic(part, data.data, size, 0600), 0);
	assert_int_equal(buf_append_str(&data, "more"), 0);
	assert_int_equal(file_write_atomic(part, data.data, data.len, 0600), 0);
	assert_int_equal(upload(f, source, destination, hex, &stats), 0);
	assert_int_equal(stats.resumed_from, 0);
	assert_file_sha256(destination, hex);
	buf_release(&data);
}

static void test_upload_expected_sha256_mismatch(void **state)
{
	struct fixture *f = *state;
	char source[128], destination[256], part[256], hex[65];
	struct node_upload_stats stats;
	const char *wrong = "0000000000000000000000000000000000000000000000000000000000000000";

	snprintf(source, sizeof(source), "%s/mismatch.bin", f->dir);
	snprintf(destination, sizeof(destination), "%s/mismatch-dest.bin", f->dir);
	snprintf(part, sizeof(part), "%s/.mismatch-dest.bin.mlboot-part", f->dir);
	write_source(source, 4096, 2, hex);
	assert_int_equal(upload(f, source, destination, wrong, &stats), MLB_EINTEGRITY);
	assert_int_equal(access(destination, F_OK), -1);
	assert_int_equal(access(part, F_OK), -1);
	assert_int_equal(upload(f, source, destination, hex, &stats), 0);
	assert_file_sha256(destination, hex);
}

static void test_upload_hostile_names(void **state)
{
	struct fixture *f = *state;
	static const char *const names[] = {
		"with space", "it's", "$(touch pwned)", "`id`", "new\nline", "-leading-dash",
		"\xff\xfe-not-utf8", "semi;colon&amp", "*", "..dots..", "tab\tname",
	};
	char source[128], destination[512], hex[65];
	struct node_upload_stats stats;

	snprintf(source, sizeof(source), "%s/hostile-source.bin", f->dir);
	write_source(source, 10000, 3, hex);
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		snprintf(destination, sizeof(destination), "%s/%s", f->dir, names[i]);
		assert_int_equal(upload(f, source, destination, NULL, &stats), 0);
		assert_file_sha256(destination, hex);
	}
	snprintf(destination, sizeof(destination), "%s/pwned", f->dir);
	assert_int_equal(access(destination, F_OK), -1);
}

static void test_upload_rejects_bad_destinations(void **state)
{
	struct fixture *f = *state;
	struct node_upload_stats stats;
	char source[128], hex[65];

	snprintf(source, sizeof(source), "%s/bad-dest-source.bin", f->dir);
	write_source(source, 10, 4, hex);
	assert_int_equal(upload(f, source, "relative/path", NULL, &stats), MLB_EINPUT);
	assert_int_equal(upload(f, source, "/tmp/", NULL, &stats), MLB_EINPUT);
	assert_int_equal(upload(f, source, "/tmp/..", NULL, &stats), MLB_EINPUT);
	assert_int_equal(upload(f, "/nonexistent/source", "/tmp/x", NULL, &stats), MLB_EINPUT);
	assert_int_equal(upload(f, source, "/nonexistent-folder/x", NULL, &stats), MLB_EFAILED);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_local_output_and_exit_status),
		cmocka_unit_test(test_local_stdin_data_binary),
		cmocka_unit_test(test_local_stdin_callback_large),
		cmocka_unit_test(test_local_stdin_error_ends_command),
		cmocka_unit_test(test_local_command_exits_before_reading_input),
		cmocka_unit_test(test_local_output_cap),
		cmocka_unit_test(test_local_timeout_kills_command),
		cmocka_unit_test(test_local_missing_program_and_signal),
		cmocka_unit_test(test_host_validation),
		cmocka_unit_test(test_for_each_bound_and_outcomes),
		cmocka_unit_test(test_upload_and_resume),
		cmocka_unit_test(test_upload_expected_sha256_mismatch),
		cmocka_unit_test(test_upload_hostile_names),
		cmocka_unit_test(test_upload_rejects_bad_destinations),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
