/*
 * Uploads split into byte ranges (node/upload-ranges.c), run through the
 * local transport: the same shell steps as over SSH (dd at an offset, the
 * block probe with split, the final sha256), with one session per range.
 * Also the flush to disk that a request can ask for.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "common.h"
#include "node.h"

#define MIB ((size_t)1 << 20)

struct fixture {
	struct node_host host;
	struct node_session *session;
	char dir[64];
	char source[128];
	char destination[128];
	char part[128];
};

/* A source read through read_at: a file, with one injected fault. */
struct fault_source {
	int fd;
	uint64_t fault_at;                /* offset of the injected fault */
	bool fail;                        /* reads that cover fault_at fail with -EIO */
	bool flip_once;                   /* the first read that covers fault_at gets it flipped */
	atomic_bool flipped;              /* reads come from several threads */
};

struct progress_record {
	uint64_t calls;
	uint64_t last_done;
	uint64_t last_total;
	bool went_back;
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
	snprintf(f->dir, sizeof(f->dir), "/tmp/mlboot-upload-test-XXXXXX");
	if (!mkdtemp(f->dir) || node_connect(&f->host, NULL, &f->session, &err) < 0)
		return -1;
	snprintf(f->source, sizeof(f->source), "%s/source.bin", f->dir);
	snprintf(f->destination, sizeof(f->destination), "%s/dest.bin", f->dir);
	snprintf(f->part, sizeof(f->part), "%s/.dest.bin.mlboot-part", f->dir);
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

/* Removes what an earlier test left at the destination and its temporary file. */
static void remove_outputs(struct fixture *f)
{
	unlink(f->destination);
	unlink(f->part);
}

/* Fills data with size pseudo-random bytes. */
static void fill(unsigned char *data, size_t size, unsigned seed)
{
	for (size_t i = 0; i < size; i++) {
		seed = seed * 1103515245u + 12345u;
		data[i] = (unsigned char)(seed >> 16);
	}
}

/* Writes size pseudo-random bytes to path and returns them, for the caller to free. */
static unsigned char *write_source(const char *path, size_t size, unsigned seed, char hex[65])
{
	unsigned char *data = malloc(size);

	assert_non_null(data);
	fill(data, size, seed);
	assert_int_equal(file_write_atomic(path, data, size, 0600), 0);
	assert_int_equal(sha256_hex(data, size, hex), 0);
	return data;
}

static void assert_file_sha256(const char *path, const char *hex)
{
	struct buf data = BUF_INIT(128 << 20);
	char actual[65];

	assert_int_equal(file_read_all(path, 128 << 20, &data), 0);
	assert_int_equal(sha256_hex(data.data, data.len, actual), 0);
	assert_string_equal(actual, hex);
	buf_release(&data);
}

/* Whether bytes offset to offset + len of path equal those of expected. */
static bool file_range_equals(const char *path, const unsigned char *expected, size_t offset,
			      size_t len)
{
	struct buf data = BUF_INIT(128 << 20);
	bool equal;

	assert_int_equal(file_read_all(path, 128 << 20, &data), 0);
	equal = data.len >= offset + len && memcmp(data.data + offset, expected + offset, len) == 0;
	buf_release(&data);
	return equal;
}

static void record_progress(void *context, uint64_t done, uint64_t total)
{
	struct progress_record *record = context;

	if (done < record->last_done)
		record->went_back = true;
	record->calls++;
	record->last_done = done;
	record->last_total = total;
}

static ssize_t fault_read_at(void *context, void *buffer, size_t size, uint64_t offset)
{
	struct fault_source *source = context;
	bool covers = offset <= source->fault_at && source->fault_at - offset < size;
	ssize_t n;

	if (covers && source->fail)
		return -EIO;
	n = pread(source->fd, buffer, size, (off_t)offset);
	if (n < 0)
		return -errno;
	if (covers && source->flip_once && source->fault_at - offset < (size_t)n &&
	    !atomic_exchange(&source->flipped, true))
		((unsigned char *)buffer)[source->fault_at - offset] ^= 0x01;
	return n;
}

/* Uploads the fixture's source file in up to streams ranges. */
static int upload_split(struct fixture *f, unsigned streams, const char *expected,
			struct node_upload_stats *stats, struct progress_record *progress)
{
	struct node_upload request = {
		.source_path = f->source,
		.destination = f->destination,
		.mode = 0640,
		.expected_sha256 = expected,
		.streams = streams,
		.split_min_size = 1,
		.progress = progress ? record_progress : NULL,
		.progress_context = progress,
	};
	struct node_error err = { "" };
	int r = node_upload(f->session, &request, stats, &err);

	if (r < 0)
		print_message("node_upload: %s\n", err.message);
	return r;
}

/* Uploads through a fault_source of size bytes in up to streams ranges. */
static int upload_faulty(struct fixture *f, struct fault_source *source, uint64_t size,
			 unsigned streams, const char *expected, struct node_upload_stats *stats,
			 struct node_error *err)
{
	struct node_upload request = {
		.read_at = fault_read_at,
		.read_context = source,
		.size = size,
		.destination = f->destination,
		.mode = 0640,
		.expected_sha256 = expected,
		.streams = streams,
		.split_min_size = 1,
	};

	return node_upload(f->session, &request, stats, err);
}

static void test_split_range_counts_and_content(void **state)
{
	struct fixture *f = *state;
	static const struct {
		size_t size;
		unsigned streams;
		unsigned ranges;
	} cases[] = {
		/* Ranges start at multiples of the 8 MiB resume block. */
		{ 20 * MIB + 17, 3, 3 },  /* 8 MiB, 8 MiB, 4 MiB + 17 */
		{ 16 * MIB, 2, 2 },       /* two whole blocks */
		{ 8 * MIB + 1, 2, 2 },    /* a last range of one byte */
		{ 24 * MIB - 1, 2, 2 },   /* 16 MiB, then 8 MiB - 1 */
		{ 40 * MIB + 17, 8, 6 },  /* fewer ranges than streams: one block each */
		{ 5 * MIB, 3, 1 },        /* one block: not split */
	};

	remove_outputs(f);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct node_upload_stats stats;
		struct progress_record progress = { 0 };
		char hex[65];
		struct stat st;

		print_message("size %zu, %u streams\n", cases[i].size, cases[i].streams);
		free(write_source(f->source, cases[i].size, (unsigned)i + 10, hex));
		assert_int_equal(upload_split(f, cases[i].streams, NULL, &stats, &progress), 0);
		assert_int_equal(stats.ranges, cases[i].ranges);
		assert_int_equal(stats.size, cases[i].size);
		assert_int_equal(stats.resumed_from, 0);
		assert_int_equal(stats.bytes_sent, cases[i].size);
		assert_string_equal(stats.sha256, hex);
		assert_file_sha256(f->destination, hex);
		assert_int_equal(stat(f->destination, &st), 0);
		assert_int_equal(st.st_size, cases[i].size);
		assert_int_equal(st.st_mode & 07777, 0640);
		assert_int_equal(access(f->part, F_OK), -1);
		assert_false(progress.went_back);
		assert_int_equal(progress.last_done, cases[i].size);
		assert_int_equal(progress.last_total, cases[i].size);
	}
}

static void test_split_defaults_to_one_stream_locally(void **state)
{
	struct fixture *f = *state;
	struct node_upload_stats stats;
	char hex[65];

	remove_outputs(f);
	free(write_source(f->source, 20 * MIB, 20, hex));
	/* streams 0: the default, one stream for a local host. */
	assert_int_equal(upload_split(f, 0, hex, &stats, NULL), 0);
	assert_int_equal(stats.ranges, 1);
	assert_file_sha256(f->destination, hex);
}

static void test_split_rejects_too_many_streams(void **state)
{
	struct fixture *f = *state;
	struct node_upload_stats stats;
	char hex[65];

	remove_outputs(f);
	free(write_source(f->source, 4096, 21, hex));
	assert_int_equal(upload_split(f, NODE_UPLOAD_STREAMS_MAX + 1, NULL, &stats, NULL),
			 MLB_EINPUT);
}

static void test_split_cut_range_then_resume(void **state)
{
	struct fixture *f = *state;
	const size_t size = 40 * MIB + 17;   /* ranges 0-16 MiB, 16-32 MiB, 32 MiB-end */
	struct fault_source source = { .fail = true, .fault_at = 28 * MIB };
	struct node_upload_stats stats;
	struct node_error err = { "" };
	unsigned char *data;
	char hex[65];
	int r;

	remove_outputs(f);
	data = write_source(f->source, size, 30, hex);
	source.fd = open(f->source, O_RDONLY | O_CLOEXEC);
	assert_true(source.fd >= 0);

	/* Range 1 fails 12 MiB in, but ranges 0 and 2 still arrive whole. */
	r = upload_faulty(f, &source, size, 3, hex, &stats, &err);
	print_message("first try: %s\n", err.message);
	assert_int_equal(r, -EIO);
	assert_int_equal(stats.ranges, 3);
	assert_true(stats.bytes_sent < size);
	assert_int_equal(access(f->destination, F_OK), -1);
	assert_int_equal(access(f->part, F_OK), 0);
	assert_true(file_range_equals(f->part, data, 0, 16 * MIB));
	assert_true(file_range_equals(f->part, data, 32 * MIB, size - 32 * MIB));

	/* The retry sends only what range 1 lacks, from a block boundary on. */
	source.fail = false;
	r = upload_faulty(f, &source, size, 3, hex, &stats, &err);
	if (r < 0)
		print_message("retry: %s\n", err.message);
	assert_int_equal(r, 0);
	print_message("resumed %llu, sent %llu\n", (unsigned long long)stats.resumed_from,
		      (unsigned long long)stats.bytes_sent);
	assert_true(stats.resumed_from >= 16 * MIB + (size - 32 * MIB));
	assert_true(stats.resumed_from <= size - 8 * MIB);
	assert_int_equal((stats.resumed_from - (size - 32 * MIB)) % (8 * MIB), 0);
	assert_int_equal(stats.resumed_from + stats.bytes_sent, size);
	assert_file_sha256(f->destination, hex);
	assert_int_equal(access(f->part, F_OK), -1);
	close(source.fd);
	free(data);
}

static void test_split_wrong_expected_digest(void **state)
{
	struct fixture *f = *state;
	const char *wrong = "0000000000000000000000000000000000000000000000000000000000000000";
	struct node_upload_stats stats;
	char hex[65];

	remove_outputs(f);
	free(write_source(f->source, 20 * MIB + 3, 40, hex));
	assert_int_equal(upload_split(f, 2, wrong, &stats, NULL), MLB_EINTEGRITY);
	assert_int_equal(stats.ranges, 2);
	assert_int_equal(access(f->destination, F_OK), -1);
	assert_int_equal(access(f->part, F_OK), -1);
}

static void test_split_corrupt_transfer_detected(void **state)
{
	struct fixture *f = *state;
	const size_t size = 20 * MIB + 3;
	/* The first read of byte 9 MiB + 5 is flipped, so the transfer or the hash reads the wrong byte. */
	struct fault_source source = { .flip_once = true, .fault_at = 9 * MIB + 5 };
	struct node_upload_stats stats;
	struct node_error err = { "" };
	char hex[65];

	remove_outputs(f);
	free(write_source(f->source, size, 41, hex));
	source.fd = open(f->source, O_RDONLY | O_CLOEXEC);
	assert_true(source.fd >= 0);
	assert_int_equal(upload_faulty(f, &source, size, 2, NULL, &stats, &err), MLB_EINTEGRITY);
	print_message("%s\n", err.message);
	assert_true(atomic_load(&source.flipped));
	assert_non_null(strstr(err.message, "arrived with sha256"));
	assert_int_equal(access(f->destination, F_OK), -1);
	assert_int_equal(access(f->part, F_OK), -1);
	close(source.fd);
}

static void test_split_corrupt_block_resent(void **state)
{
	struct fixture *f = *state;
	const size_t size = 40 * MIB + 17;
	struct node_upload_stats stats;
	unsigned char *data;
	char hex[65];

	remove_outputs(f);
	data = write_source(f->source, size, 50, hex);
	/* The whole file is on the node, but block 1 (8-16 MiB, in range 0) has a flipped byte. */
	data[8 * MIB + 5] ^= 0x80;
	assert_int_equal(file_write_atomic(f->part, data, size, 0600), 0);
	data[8 * MIB + 5] ^= 0x80;

	assert_int_equal(upload_split(f, 3, hex, &stats, NULL), 0);
	assert_int_equal(stats.resumed_from, size - 8 * MIB);
	assert_int_equal(stats.bytes_sent, 8 * MIB);
	assert_file_sha256(f->destination, hex);
	free(data);
}

static void test_split_resumes_one_stream_prefix(void **state)
{
	struct fixture *f = *state;
	const size_t size = 40 * MIB + 17;
	struct node_upload_stats stats;
	unsigned char *data;
	char hex[65];

	remove_outputs(f);
	data = write_source(f->source, size, 60, hex);
	/*
	 * A one-stream try left the first 20 MiB: range 0 (0-16 MiB) is
	 * whole, range 1 lacks the end of its first block, range 2 is missing.
	 */
	assert_int_equal(file_write_atomic(f->part, data, 20 * MIB, 0600), 0);
	assert_int_equal(upload_split(f, 3, NULL, &stats, NULL), 0);
	assert_int_equal(stats.resumed_from, 16 * MIB);
	assert_int_equal(stats.bytes_sent, size - 16 * MIB);
	assert_string_equal(stats.sha256, hex);
	assert_file_sha256(f->destination, hex);
	free(data);
}

static void test_split_whole_file_present(void **state)
{
	struct fixture *f = *state;
	const size_t size = 24 * MIB + 1;
	struct node_upload_stats stats;
	unsigned char *data;
	char hex[65];

	remove_outputs(f);
	data = write_source(f->source, size, 70, hex);
	assert_int_equal(file_write_atomic(f->part, data, size, 0600), 0);
	assert_int_equal(upload_split(f, 2, NULL, &stats, NULL), 0);
	assert_int_equal(stats.resumed_from, size);
	assert_int_equal(stats.bytes_sent, 0);
	assert_file_sha256(f->destination, hex);
	free(data);
}

static void test_split_longer_temporary_file_removed(void **state)
{
	struct fixture *f = *state;
	const size_t size = 16 * MIB + 9;
	struct node_upload_stats stats;
	unsigned char *data, *longer;
	char hex[65];

	remove_outputs(f);
	data = write_source(f->source, size, 80, hex);
	longer = malloc(size + 4);
	assert_non_null(longer);
	memcpy(longer, data, size);
	memcpy(longer + size, "more", 4);
	assert_int_equal(file_write_atomic(f->part, longer, size + 4, 0600), 0);
	assert_int_equal(upload_split(f, 2, hex, &stats, NULL), 0);
	assert_int_equal(stats.resumed_from, 0);
	assert_int_equal(stats.bytes_sent, size);
	assert_file_sha256(f->destination, hex);
	free(longer);
	free(data);
}

/*
 * Uploads a 1000-byte source with request.sync set to sync and checks the
 * destination. Meanwhile a "sync" first on PATH logs its arguments to
 * DIR/sync.log, one call a line. Then it runs the real sync, unless
 * fail_with_arguments and it got arguments: then it fails. Returns the log
 * in out, or "none" when sync never ran.
 */
static void upload_with_logging_sync(struct fixture *f, bool sync, bool fail_with_arguments,
				     struct buf *out)
{
	struct node_upload request = {
		.source_path = f->source,
		.destination = f->destination,
		.mode = 0640,
		.sync = sync,
	};
	struct node_error err = { "" };
	char bin[128], script_path[160], script[512], log_path[128], old_path[4096], path[4096 + 160];
	const char *current = getenv("PATH");
	unsigned char *data;
	char hex[65];

	remove_outputs(f);
	data = write_source(f->source, 1000, 80, hex);
	snprintf(bin, sizeof(bin), "%s/bin", f->dir);
	assert_true(mkdir(bin, 0700) == 0 || errno == EEXIST);
	snprintf(log_path, sizeof(log_path), "%s/sync.log", f->dir);
	snprintf(script_path, sizeof(script_path), "%s/sync", bin);
	snprintf(script, sizeof(script), "#!/bin/sh\necho \"$*\" >>'%s'\n%sPATH=/usr/bin:/bin exec sync \"$@\"\n",
		 log_path, fail_with_arguments ? "[ $# -eq 0 ] || exit 1\n" : "");
	assert_int_equal(file_write_atomic(script_path, script, strlen(script), 0700), 0);
	snprintf(old_path, sizeof(old_path), "%s", current ? current : "/usr/bin:/bin");
	snprintf(path, sizeof(path), "%s:%s", bin, old_path);
	assert_int_equal(setenv("PATH", path, 1), 0);

	assert_int_equal(node_upload(f->session, &request, NULL, &err), 0);
	assert_int_equal(setenv("PATH", old_path, 1), 0);

	if (access(log_path, F_OK) == 0)
		assert_int_equal(file_read_all(log_path, 1 << 16, out), 0);
	else
		assert_int_equal(buf_append_str(out, "none"), 0);
	unlink(log_path);
	assert_file_sha256(f->destination, hex);
	free(data);
}

static void test_sync_flushes_file_and_folder(void **state)
{
	struct fixture *f = *state;
	struct buf log = BUF_INIT(1 << 16);
	char expected[512];

	upload_with_logging_sync(f, true, false, &log);
	snprintf(expected, sizeof(expected), "-- %s\n-- %s/\n", f->part, f->dir);
	assert_string_equal(buf_str(&log), expected);
	buf_release(&log);
}

static void test_sync_falls_back_to_global(void **state)
{
	struct fixture *f = *state;
	struct buf log = BUF_INIT(1 << 16);
	char expected[512];

	upload_with_logging_sync(f, true, true, &log);
	snprintf(expected, sizeof(expected), "-- %s\n\n-- %s/\n\n", f->part, f->dir);
	assert_string_equal(buf_str(&log), expected);
	buf_release(&log);
}

static void test_no_sync_unless_asked(void **state)
{
	struct fixture *f = *state;
	struct buf log = BUF_INIT(1 << 16);

	upload_with_logging_sync(f, false, false, &log);
	assert_string_equal(buf_str(&log), "none");
	buf_release(&log);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_split_range_counts_and_content),
		cmocka_unit_test(test_split_defaults_to_one_stream_locally),
		cmocka_unit_test(test_split_rejects_too_many_streams),
		cmocka_unit_test(test_split_cut_range_then_resume),
		cmocka_unit_test(test_split_wrong_expected_digest),
		cmocka_unit_test(test_split_corrupt_transfer_detected),
		cmocka_unit_test(test_split_corrupt_block_resent),
		cmocka_unit_test(test_split_resumes_one_stream_prefix),
		cmocka_unit_test(test_split_whole_file_present),
		cmocka_unit_test(test_split_longer_temporary_file_removed),
		cmocka_unit_test(test_sync_flushes_file_and_folder),
		cmocka_unit_test(test_sync_falls_back_to_global),
		cmocka_unit_test(test_no_sync_unless_asked),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
