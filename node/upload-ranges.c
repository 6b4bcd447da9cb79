/*
 * Uploads split into byte ranges, each sent over its own SSH session on its
 * own thread.
 *
 * libssh2 1.10 encrypts one 16-byte AES block per OpenSSL call, so one
 * session keeps one core busy and the upload runs at that core's speed.
 * Separate sessions encrypt on separate cores. Each range is written at its
 * offset into the upload's one temporary file by "dd seek=... conv=notrunc",
 * so the node copies no byte twice. Part files joined with cat on the node
 * would copy all but the first range again: for 256 MiB on the testbed's
 * ext4 that took 1.2 s, about as long as sending them.
 *
 * A file written in ranges has holes, so its length no longer shows how much
 * arrived. To resume, the node prints the sha256 of each block of the file
 * ("split --filter"), and each range restarts after its longest run of
 * blocks that match the source. Ranges start at multiples of the block size,
 * so every block lies in one range.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "log.h"
#include "upload-internal.h"

/* Resume granularity: a cut range loses at most one block. */
#define BLOCK_SIZE_MIN ((uint64_t)8 << 20)
/* The block size doubles until a file has at most this many blocks. */
#define BLOCKS_MAX 1024
#define MIB ((uint64_t)1 << 20)
/* The block probe prints a length line and one "HEX *stdin" line per block. */
#define BLOCK_PROBE_OUTPUT_MAX (BLOCKS_MAX * 80 + 64)
#define HASH_CHUNK (1 << 20)

/*
 * Prints the length of the temporary file and the sha256 of each of its
 * blocks of $2 bytes, one line each, in order ("split" waits for each
 * filter before it starts the next), or "none". Symbolic links are not
 * followed. split runs the filter with $SHELL, which is set to sh because
 * the filter is sh syntax.
 */
static const char block_probe_script[] =
	"if [ -f \"$1\" ] && [ ! -h \"$1\" ]; then wc -c <\"$1\" && "
	"SHELL=/bin/sh split -b \"$2\" --filter=\"$3\" -- \"$1\"; else echo none; fi";
static const char block_hash_filter[] = SHA256_FUNCTION "sha256_of_stdin";

/*
 * Writes stdin into the temporary file from MiB $2 on, keeping the bytes
 * around it. The file is created when missing.
 */
static const char range_script[] =
	"umask 077; if [ -h \"$1\" ]; then echo \"the temporary file is a symbolic link\" >&2; "
	"exit 3; fi; exec dd of=\"$1\" bs=1048576 seek=\"$2\" conv=notrunc status=none";

/* Prints the sha256 of the temporary file after checking that it has $2 bytes. */
static const char verify_script[] =
	SHA256_FUNCTION
	"if [ ! -f \"$1\" ] || [ -h \"$1\" ] || [ \"$(wc -c <\"$1\")\" -ne \"$2\" ]; then "
	"echo \"temporary file changed during the upload\" >&2; exit 3; fi; sha256_of_stdin <\"$1\"";

static const char reset_script[] = "rm -f -- \"$1\"";

struct upload_range {
	uint64_t start;                   /* first byte of the range in the source */
	uint64_t end;                     /* first byte after it */
	uint64_t resume_from;             /* bytes start to resume_from are on the node */
	uint64_t sent;
	bool assigned;                    /* a session is sending it or has sent it */
	int result;
	struct node_error error;          /* message when result < 0 */
};

struct range_plan {
	uint64_t block_size;
	size_t count;
	struct upload_range ranges[NODE_UPLOAD_STREAMS_MAX];
};

struct range_job;

struct range_worker {
	struct range_job *job;
	unsigned number;                  /* 2 for the first extra session, ... */
	pthread_t thread;
};

/* State shared by the sessions of one split upload. */
struct range_job {
	struct node_session *session;     /* the caller's session */
	struct upload_source *source;
	const char *part;
	struct range_plan plan;
	struct upload_progress progress;
	pthread_mutex_t lock;             /* guards assigned, ready, stop and denied */
	pthread_cond_t changed;           /* ready or stop was set */
	bool ready;                       /* resume points are known: a session may take ranges */
	bool stop;                        /* take no more ranges */
	int denied;                       /* an extra session's host key was rejected */
	struct node_error denied_error;
	struct range_worker workers[NODE_UPLOAD_STREAMS_MAX];
	size_t worker_count;              /* extra sessions' threads started */
};

/* Whole-source hash on its own thread, for uploads without an expected sha256. */
struct hash_job {
	struct upload_source *source;
	struct sha256 *hash;
	pthread_t thread;
	atomic_bool stop;
	int result;
};

static uint64_t divide_round_up(uint64_t a, uint64_t b)
{
	return a / b + (a % b != 0);
}

/* Cuts size bytes into at most streams ranges that start at block boundaries. */
static void plan_ranges(uint64_t size, unsigned streams, struct range_plan *plan)
{
	uint64_t share, part, start = 0;

	memset(plan, 0, sizeof(*plan));
	plan->block_size = BLOCK_SIZE_MIN;
	while (divide_round_up(size, BLOCKS_MAX) > plan->block_size)
		plan->block_size *= 2;
	if (streams < 1 || size == 0)
		streams = 1;
	if (streams > NODE_UPLOAD_STREAMS_MAX)
		streams = NODE_UPLOAD_STREAMS_MAX;
	share = divide_round_up(size, streams);
	/* Rounding up to a whole block would overflow only for sizes near 2^64. */
	part = share > UINT64_MAX - plan->block_size ? size :
	       divide_round_up(share, plan->block_size) * plan->block_size;

	while (start < size) {
		struct upload_range *range = &plan->ranges[plan->count++];

		range->start = start;
		range->end = size - start > part ? start + part : size;
		range->resume_from = start;
		start = range->end;
	}
}

unsigned upload_range_count(uint64_t size, unsigned streams)
{
	struct range_plan plan;

	plan_ranges(size, streams, &plan);
	return (unsigned)plan.count;
}

/* Whether the len bytes of the source at offset have the sha256 expected_hex. */
static int source_matches(struct upload_source *source, uint64_t offset, uint64_t len,
			  const char *expected_hex, bool *matches)
{
	unsigned char digest[SHA256_BYTES];
	char hex[SHA256_HEX_LEN + 1];
	struct sha256 hash;
	int r;

	r = sha256_init(&hash);
	if (r == 0)
		r = upload_hash_range(source, &hash, offset, len);
	if (r == 0)
		r = sha256_final(&hash, digest);
	sha256_release(&hash);
	if (r < 0)
		return r;
	sha256_to_hex(digest, hex);
	*matches = strcmp(hex, expected_hex) == 0;
	return 0;
}

/*
 * Parses the block probe's output: the file length, then one digest per
 * block. Returns the number of digests in *count, or -EBADMSG when the
 * output is not of that form.
 */
static int parse_block_probe(const char *text, uint64_t block_size, uint64_t *length,
			     char (*digests)[SHA256_HEX_LEN + 1], size_t *count)
{
	unsigned long long value;
	const char *line;
	char *end;

	*count = 0;
	errno = 0;
	value = strtoull(text, &end, 10);
	if (errno || end == text || *end != '\n' || text[0] == '-')
		return -EBADMSG;
	*length = value;
	for (line = end + 1; *line; ) {
		const char *next = strchr(line, '\n');

		if (!next || *count == BLOCKS_MAX || strspn(line, "0123456789abcdef") != SHA256_HEX_LEN)
			return -EBADMSG;
		memcpy(digests[*count], line, SHA256_HEX_LEN);
		digests[*count][SHA256_HEX_LEN] = '\0';
		(*count)++;
		line = next + 1;
	}
	if (*count != divide_round_up(*length, block_size))
		return -EBADMSG;
	return 0;
}

/*
 * Sets each range's resume point after its longest run of blocks that are
 * complete on the node and match the source. Sets *reset when the node's
 * file must be removed first: it is longer than the source or could not be
 * probed.
 *
 * NOTE: the node hashes its whole temporary file with one openssl process
 * per block, so resuming costs a few seconds per GiB on the node.
 */
static int find_resume_points(struct range_job *job, bool *reset, struct node_error *err)
{
	struct node_session *session = job->session;
	struct upload_source *source = job->source;
	struct range_plan *plan = &job->plan;
	const char *host_name = session->host->name;
	char block_text[32];
	const char *args[] = { job->part, block_text, block_hash_filter, NULL };
	char (*digests)[SHA256_HEX_LEN + 1] = NULL;
	struct node_result result;
	uint64_t length;
	size_t count;
	int r;

	*reset = false;
	node_result_init(&result);
	snprintf(block_text, sizeof(block_text), "%llu", (unsigned long long)plan->block_size);
	r = upload_run_script(session, block_probe_script, args, UPLOAD_STEP_TIMEOUT_MS,
			      BLOCK_PROBE_OUTPUT_MAX, NULL, &result, err);
	if (r < 0)
		goto out;
	if (result.exit_status == 0 && strcmp(buf_str(&result.out), "none\n") == 0)
		goto out;

	digests = calloc(BLOCKS_MAX, sizeof(*digests));
	if (!digests) {
		r = node_fail(err, -ENOMEM, host_name, "out of memory");
		goto out;
	}
	if (result.exit_status != 0 || result.out_truncated ||
	    parse_block_probe(buf_str(&result.out), plan->block_size, &length, digests, &count) < 0) {
		log_debug("host '%s': the block probe of '%s' failed (exit status %d); starting over",
			  host_name, job->part, result.exit_status);
		*reset = true;
		goto out;
	}
	if (length > source->size) {
		*reset = true;
		goto out;
	}

	for (size_t i = 0; i < plan->count; i++) {
		struct upload_range *range = &plan->ranges[i];

		while (range->resume_from < range->end) {
			uint64_t offset = range->resume_from;
			uint64_t block_end = offset + plan->block_size < source->size ?
					     offset + plan->block_size : source->size;
			bool matches = false;

			/* A block that reaches past the node's file is incomplete there. */
			if (block_end > length)
				break;
			r = source_matches(source, offset, block_end - offset,
					   digests[offset / plan->block_size], &matches);
			if (r < 0) {
				r = node_fail(err, r, host_name, "cannot read the upload source: %s",
					      mlb_strerror(r));
				goto out;
			}
			if (!matches)
				break;
			range->resume_from = block_end;
		}
	}
	r = 0;
out:
	free(digests);
	node_result_release(&result);
	return r;
}

/* Sends the rest of one range over session number into the node's temporary file. */
static int send_range(struct range_job *job, struct node_session *session, unsigned number,
		      struct upload_range *range)
{
	struct upload_source *source = job->source;
	const char *host_name = session->host->name;
	struct upload_stream stream = { .source = source, .progress = &job->progress,
					.offset = range->resume_from, .end = range->end };
	struct node_command command = { .stdin_read = upload_stream_read, .stdin_context = &stream };
	struct node_result result;
	char seek_text[32];
	const char *args[] = { job->part, seek_text, NULL };
	int64_t start_ms = node_now_ms();
	int r, read_error;

	node_result_init(&result);
	log_debug("host '%s': session %u sends bytes %llu to %llu", host_name, number,
		  (unsigned long long)range->resume_from, (unsigned long long)range->end);
	/* Resume points are block boundaries, and blocks are whole MiB. */
	snprintf(seek_text, sizeof(seek_text), "%llu",
		 (unsigned long long)(range->resume_from / MIB));
	r = node_read_ahead_start(source->read_at, source->context, range->resume_from, range->end,
				  NULL, &stream.ahead);
	if (r < 0) {
		r = node_fail(&range->error, r, host_name,
			      "cannot start reading the upload source: %s", mlb_strerror(r));
		goto out;
	}
	r = upload_run_script(session, range_script, args,
			      upload_transfer_timeout(session, source->request,
						      range->end - range->resume_from),
			      UPLOAD_STEP_OUTPUT_MAX, &command, &result, &range->error);
	read_error = node_read_ahead_stop(stream.ahead);
	range->sent = stream.sent;
	if (r == 0 && (stream.error < 0 || read_error < 0)) {
		int error = stream.error < 0 ? stream.error : read_error;

		r = node_fail(&range->error, error, host_name, "cannot read the upload source: %s",
			      mlb_strerror(error));
	}
	if (r < 0)
		goto out;
	if (result.exit_status != 0 || stream.offset != range->end) {
		char text[512];

		node_escape_text(result.err.data ? result.err.data : "", result.err.len, text,
				 sizeof(text));
		r = node_fail(&range->error, MLB_EFAILED, host_name,
			      "writing bytes %llu to %llu of '%s' on the node failed (exit status "
			      "%d): %s", (unsigned long long)range->resume_from,
			      (unsigned long long)range->end, job->part, result.exit_status,
			      text[0] ? text : "no message");
		goto out;
	}
	r = 0;
	log_debug("host '%s': session %u sent bytes %llu to %llu in %lld ms", host_name, number,
		  (unsigned long long)range->resume_from, (unsigned long long)range->end,
		  (long long)(node_now_ms() - start_ms));
out:
	range->result = r;
	node_result_release(&result);
	return r;
}

/*
 * Takes the next range that still needs bytes, or returns NULL. Waits until
 * the resume points are known.
 */
static struct upload_range *take_range(struct range_job *job)
{
	struct upload_range *found = NULL;

	pthread_mutex_lock(&job->lock);
	while (!job->ready && !job->stop)
		pthread_cond_wait(&job->changed, &job->lock);
	for (size_t i = 0; !job->stop && i < job->plan.count; i++) {
		struct upload_range *range = &job->plan.ranges[i];

		if (!range->assigned && range->resume_from < range->end) {
			range->assigned = true;
			found = range;
			break;
		}
	}
	pthread_mutex_unlock(&job->lock);
	return found;
}

/*
 * Sends ranges over session until none is left. A failure may leave the
 * session out of step, so the session stops there and the other sessions
 * take the remaining ranges.
 */
static void send_ranges(struct range_job *job, struct node_session *session, unsigned number)
{
	struct upload_range *range;

	while ((range = take_range(job)))
		if (send_range(job, session, number, range) < 0)
			break;
}

/*
 * Thread of an extra session. The session is opened like the caller's, but
 * it must find the host key that the caller's session verified or
 * recorded: it never accepts a new one.
 */
static void *extra_session_main(void *argument)
{
	struct range_worker *worker = argument;
	struct range_job *job = worker->job;
	const struct node_host *host = job->session->host;
	struct node_options options = job->session->options;
	struct node_session *session = NULL;
	struct node_error error = { "" };
	int r;

	options.accept_new_host_keys = false;
	r = node_connect(host, &options, &session, &error);
	if (r == MLB_EDENIED) {
		pthread_mutex_lock(&job->lock);
		if (!job->denied) {
			job->denied = r;
			job->denied_error = error;
		}
		job->stop = true;
		pthread_cond_broadcast(&job->changed);
		pthread_mutex_unlock(&job->lock);
		return NULL;
	}
	if (r < 0) {
		log_debug("host '%s': upload session %u not opened, so the other sessions send its "
			  "ranges: %s", host->name, worker->number, error.message);
		return NULL;
	}
	send_ranges(job, session, worker->number);
	node_close(session);
	return NULL;
}

static void *hash_main(void *argument)
{
	struct hash_job *job = argument;
	uint64_t size = job->source->size;
	char *buffer = malloc(HASH_CHUNK);
	int r = buffer ? 0 : -ENOMEM;

	for (uint64_t offset = 0; r == 0 && offset < size; ) {
		size_t n = size - offset < HASH_CHUNK ? (size_t)(size - offset) : HASH_CHUNK;

		if (atomic_load(&job->stop)) {
			r = -ECANCELED;
			break;
		}
		r = upload_source_read(job->source, buffer, n, offset);
		if (r == 0)
			r = sha256_update(job->hash, buffer, n);
		offset += n;
	}
	free(buffer);
	job->result = r;
	return NULL;
}

/*
 * Starts count - 1 extra sessions, each on its own thread. They connect at
 * once, while the caller's session probes the node, and wait for
 * open_ranges() or stop_ranges(). A thread that cannot start only means
 * fewer sessions.
 */
static void start_sessions(struct range_job *job, size_t count)
{
	for (size_t i = 0; i + 1 < count; i++) {
		struct range_worker *worker = &job->workers[job->worker_count];
		int r;

		*worker = (struct range_worker){ .job = job, .number = (unsigned)i + 2 };
		r = pthread_create(&worker->thread, NULL, extra_session_main, worker);
		if (r != 0) {
			log_debug("host '%s': cannot start upload session %zu: %s",
				  job->session->host->name, i + 2, strerror(r));
			continue;
		}
		job->worker_count++;
	}
}

/* Lets the sessions take ranges (ready) or makes them stop (not ready). */
static void release_sessions(struct range_job *job, bool ready)
{
	pthread_mutex_lock(&job->lock);
	if (ready)
		job->ready = true;
	else
		job->stop = true;
	pthread_cond_broadcast(&job->changed);
	pthread_mutex_unlock(&job->lock);
}

static void join_sessions(struct range_job *job)
{
	for (size_t i = 0; i < job->worker_count; i++)
		pthread_join(job->workers[i].thread, NULL);
	job->worker_count = 0;
}

/* The first failure of the job, in range order, copied into err. */
static int job_result(struct range_job *job, struct node_error *err)
{
	if (job->denied) {
		if (err)
			*err = job->denied_error;
		return job->denied;
	}
	for (size_t i = 0; i < job->plan.count; i++) {
		struct upload_range *range = &job->plan.ranges[i];

		if (range->assigned && range->result < 0) {
			if (err)
				*err = range->error;
			return range->result;
		}
	}
	for (size_t i = 0; i < job->plan.count; i++) {
		struct upload_range *range = &job->plan.ranges[i];

		if (range->resume_from < range->end && !range->assigned)
			return node_fail(err, MLB_EFAILED, job->session->host->name,
					 "bytes %llu to %llu of '%s' were not sent",
					 (unsigned long long)range->start,
					 (unsigned long long)range->end, job->part);
	}
	return 0;
}

/* Reads the node's sha256 of the whole temporary file into remote_hex. */
static int verify_part(struct range_job *job, char remote_hex[SHA256_HEX_LEN + 1],
		       struct node_error *err)
{
	struct node_session *session = job->session;
	char size_text[32];
	const char *args[] = { job->part, size_text, NULL };
	struct node_result result;
	int r;

	node_result_init(&result);
	snprintf(size_text, sizeof(size_text), "%llu", (unsigned long long)job->source->size);
	r = upload_run_script(session, verify_script, args,
			      upload_transfer_timeout(session, job->source->request, 0),
			      UPLOAD_STEP_OUTPUT_MAX, NULL, &result, err);
	if (r < 0)
		goto out;
	if (result.exit_status != 0 ||
	    sscanf(buf_str(&result.out), "%64[0-9a-f]", remote_hex) != 1 ||
	    strlen(remote_hex) != SHA256_HEX_LEN) {
		char text[512];

		node_escape_text(result.err.data ? result.err.data : "", result.err.len, text,
				 sizeof(text));
		r = node_fail(err, MLB_EFAILED, session->host->name,
			      "hashing '%s' on the node failed (exit status %d): %s", job->part,
			      result.exit_status, text[0] ? text : "no message");
		goto out;
	}
	r = 0;
out:
	node_result_release(&result);
	return r;
}

int upload_ranges(struct node_session *session, struct upload_source *source, const char *part,
		  unsigned streams, struct sha256 *hash, struct node_upload_stats *stats,
		  char remote_hex[SHA256_HEX_LEN + 1], struct node_error *err)
{
	const char *host_name = session->host->name;
	const char *reset_args[] = { part, NULL };
	struct range_job job = { .session = session, .source = source, .part = part };
	struct hash_job hashing = { .source = source, .hash = hash };
	struct node_result result;
	bool hashing_started = false, progress_started = false, reset;
	uint64_t resumed = 0;
	int r;

	node_result_init(&result);
	pthread_mutex_init(&job.lock, NULL);
	pthread_cond_init(&job.changed, NULL);
	plan_ranges(source->size, streams, &job.plan);
	stats->ranges = (unsigned)job.plan.count;

	if (hash) {
		r = -pthread_create(&hashing.thread, NULL, hash_main, &hashing);
		if (r < 0) {
			r = node_fail(err, r, host_name, "cannot start hashing the upload source: %s",
				      strerror(-r));
			goto out;
		}
		hashing_started = true;
	}
	start_sessions(&job, job.plan.count < streams ? job.plan.count : streams);

	r = find_resume_points(&job, &reset, err);
	if (r < 0)
		goto out;
	if (reset) {
		r = upload_run_script(session, reset_script, reset_args, UPLOAD_STEP_TIMEOUT_MS,
				      UPLOAD_STEP_OUTPUT_MAX, NULL, &result, err);
		if (r == 0 && result.exit_status != 0)
			r = node_fail(err, MLB_EFAILED, host_name, "cannot remove '%s' on the node",
				      part);
		if (r < 0)
			goto out;
	}
	for (size_t i = 0; i < job.plan.count; i++)
		resumed += job.plan.ranges[i].resume_from - job.plan.ranges[i].start;
	stats->resumed_from = resumed;
	upload_progress_init(&job.progress, source->request, resumed, source->size);
	progress_started = true;

	release_sessions(&job, true);
	send_ranges(&job, session, 1);
	join_sessions(&job);
	for (size_t i = 0; i < job.plan.count; i++)
		stats->bytes_sent += job.plan.ranges[i].sent;
	r = job_result(&job, err);
	if (r < 0)
		goto out;
	r = verify_part(&job, remote_hex, err);
out:
	if (job.worker_count) {
		release_sessions(&job, false);
		join_sessions(&job);
	}
	if (hashing_started) {
		if (r < 0)
			atomic_store(&hashing.stop, true);
		pthread_join(hashing.thread, NULL);
		if (r == 0 && hashing.result < 0)
			r = node_fail(err, hashing.result, host_name,
				      "cannot read the upload source: %s", mlb_strerror(hashing.result));
	}
	if (progress_started)
		upload_progress_release(&job.progress);
	pthread_cond_destroy(&job.changed);
	pthread_mutex_destroy(&job.lock);
	node_result_release(&result);
	return r;
}
