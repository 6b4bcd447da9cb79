/*
 * Uploads over an exec channel: "cat >>TMP" with the file as stdin, a
 * sha256 check on the node, then chmod and "mv -f" over the destination.
 * Large files are split into byte ranges sent over several sessions
 * (upload-ranges.c). This file has the request checks, the one-stream
 * transfer, and the final check and rename that both paths share.
 *
 * SFTP is not used: libssh2 1.10's SFTP writes are slow unless pipelined,
 * and its rename does not overwrite. A stream through one channel has no
 * round trip per chunk, so the transfer runs as fast as the cipher.
 *
 * The node needs a POSIX sh and the coreutils cat, wc, sha256sum, chmod, mv
 * and rm. Every path reaches the node as a positional parameter of
 * "sh -c SCRIPT sh ARGS", never inside the script, so no file name can
 * change what the script does.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "error.h"
#include "log.h"
#include "upload-internal.h"

#define PART_SUFFIX ".mlboot-part"
#define NAME_MAX_BYTES 255
#define PREFIX_CHUNK (1 << 20)

/*
 * Prints the size and sha256 of the temporary file left by an earlier try,
 * or "none". Symbolic links are never followed: a link there is not ours.
 */
static const char probe_script[] =
	SHA256_FUNCTION
	"if [ -f \"$1\" ] && [ ! -h \"$1\" ]; then wc -c <\"$1\" && sha256_of_stdin <\"$1\"; "
	"else echo none; fi";

/*
 * Appends stdin to the temporary file, after checking that it still has the
 * expected length ($2 bytes; 0 starts a new file), then prints its sha256.
 */
static const char transfer_script[] =
	SHA256_FUNCTION
	"umask 077; t=$1; n=$2; "
	"if [ \"$n\" = 0 ]; then : >\"$t\" || exit 3; "
	"else [ ! -h \"$t\" ] && [ \"$(wc -c <\"$t\")\" -eq \"$n\" ] || "
	"{ echo \"temporary file changed during the upload\" >&2; exit 3; }; fi; "
	"cat >>\"$t\" || exit 4; sha256_of_stdin <\"$t\"";

/*
 * Gives the temporary file its mode and renames it over the destination.
 * With $4 = "sync", the file is flushed to disk before the rename and its
 * folder after it. "sync FILE" needs GNU coreutils 8.24 or a recent
 * BusyBox; elsewhere a plain "sync" flushes every file system.
 */
static const char finish_script[] =
	"chmod \"$3\" \"$1\" || exit 1; "
	"if [ \"$4\" = sync ]; then sync -- \"$1\" 2>/dev/null || sync || exit 1; fi; "
	"mv -f -- \"$1\" \"$2\" || exit 1; "
	"if [ \"$4\" = sync ]; then sync -- \"${2%/*}/\" 2>/dev/null || sync || exit 1; fi";
static const char discard_script[] = "rm -f -- \"$1\"";

static ssize_t file_read_at(void *context, void *buffer, size_t size, uint64_t offset)
{
	const struct upload_source *source = context;
	ssize_t n;

	do
		n = pread(source->fd, buffer, size, (off_t)offset);
	while (n < 0 && errno == EINTR);
	return n < 0 ? -errno : n;
}

int upload_source_read(struct upload_source *source, void *buffer, size_t len, uint64_t offset)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = source->read_at(source->context, (char *)buffer + done, len - done,
					    offset + done);

		if (n < 0)
			return (int)n;
		if (n == 0)
			return -ENODATA;
		done += (size_t)n;
	}
	return 0;
}

void upload_progress_init(struct upload_progress *progress, const struct node_upload *request,
			  uint64_t done, uint64_t total)
{
	pthread_mutex_init(&progress->lock, NULL);
	progress->request = request;
	progress->done = done;
	progress->total = total;
	if (request->progress)
		request->progress(request->progress_context, done, total);
}

void upload_progress_add(struct upload_progress *progress, uint64_t bytes)
{
	const struct node_upload *request = progress->request;

	pthread_mutex_lock(&progress->lock);
	progress->done += bytes;
	if (request->progress)
		request->progress(request->progress_context, progress->done, progress->total);
	pthread_mutex_unlock(&progress->lock);
}

void upload_progress_release(struct upload_progress *progress)
{
	pthread_mutex_destroy(&progress->lock);
}

ssize_t upload_stream_read(void *context, void *buffer, size_t size)
{
	struct upload_stream *stream = context;
	uint64_t left = stream->end - stream->offset;
	ssize_t n;

	if (left == 0)
		return 0;
	if (size > left)
		size = (size_t)left;
	n = node_read_ahead_read(stream->ahead, buffer, size);
	if (n == 0)
		n = -ENODATA;
	if (n < 0) {
		stream->error = (int)n;
		return n;
	}
	stream->offset += (size_t)n;
	stream->sent += (size_t)n;
	upload_progress_add(stream->progress, (uint64_t)n);
	return n;
}

int upload_hash_range(struct upload_source *source, struct sha256 *hash, uint64_t offset,
		      uint64_t len)
{
	char *buffer = malloc(PREFIX_CHUNK);
	uint64_t done = 0;
	int r = 0;

	if (!buffer)
		return -ENOMEM;
	while (r == 0 && done < len) {
		size_t n = len - done < PREFIX_CHUNK ? (size_t)(len - done) : PREFIX_CHUNK;

		r = upload_source_read(source, buffer, n, offset + done);
		if (r == 0)
			r = sha256_update(hash, buffer, n);
		done += n;
	}
	free(buffer);
	return r;
}

int upload_run_script(struct node_session *session, const char *script, const char *const *args,
		      unsigned timeout_ms, size_t stdout_max, const struct node_command *base,
		      struct node_result *result, struct node_error *err)
{
	const char *argv[9] = { "sh", "-c", script, "sh" };
	struct node_command command = { 0 };
	size_t argc = 4;

	if (base)
		command = *base;
	for (size_t i = 0; args[i] && argc < 8; i++)
		argv[argc++] = args[i];
	argv[argc] = NULL;
	command.argv = argv;
	command.timeout_ms = timeout_ms;
	command.stdout_max = stdout_max;
	command.stderr_max = 4096;
	return node_run(session, &command, result, err);
}

unsigned upload_transfer_timeout(const struct node_session *session,
				 const struct node_upload *request, uint64_t len)
{
	uint64_t timeout;

	if (request->timeout_ms)
		return request->timeout_ms;
	timeout = session->options.command_timeout_ms + (len >> 20) * 1000;
	return timeout > UINT32_MAX ? UINT32_MAX : (unsigned)timeout;
}

/* Builds "DIR/.NAME.mlboot-part", or "DIR/.mlboot-part-HASH" for a long NAME. */
static int part_path(const char *destination, struct buf *out)
{
	const char *slash = strrchr(destination, '/');
	const char *name = slash + 1;
	int r;

	r = buf_append(out, destination, (size_t)(name - destination));
	if (r < 0)
		return r;
	if (strlen(name) + 1 + strlen(PART_SUFFIX) <= NAME_MAX_BYTES)
		return buf_printf(out, ".%s%s", name, PART_SUFFIX);
	{
		char hex[SHA256_HEX_LEN + 1];

		r = sha256_hex(destination, strlen(destination), hex);
		if (r == 0)
			r = buf_printf(out, "%s-%.16s", PART_SUFFIX, hex);
	}
	return r;
}

static int validate_request(const struct node_upload *request, const char *host_name,
			    struct node_error *err)
{
	const char *destination = request->destination;
	const char *name;

	if (!destination || destination[0] != '/' || strlen(destination) >= NODE_PATH_MAX)
		return node_fail(err, MLB_EINPUT, host_name,
				 "upload destination must be an absolute path shorter than %d bytes",
				 NODE_PATH_MAX);
	name = strrchr(destination, '/') + 1;
	if (!name[0] || strcmp(name, ".") == 0 || strcmp(name, "..") == 0 ||
	    strlen(name) > NAME_MAX_BYTES)
		return node_fail(err, MLB_EINPUT, host_name,
				 "upload destination '%s' does not end in a file name", destination);
	if (request->mode > 07777)
		return node_fail(err, MLB_EINPUT, host_name, "invalid upload mode %o",
				 (unsigned)request->mode);
	if (!request->source_path && !request->read_at)
		return node_fail(err, -EINVAL, host_name, "upload without a source");
	if (request->expected_sha256 && !sha256_is_hex(request->expected_sha256))
		return node_fail(err, -EINVAL, host_name, "invalid expected sha256");
	if (request->streams > NODE_UPLOAD_STREAMS_MAX)
		return node_fail(err, MLB_EINPUT, host_name,
				 "invalid upload stream count %u: the maximum is %d",
				 request->streams, NODE_UPLOAD_STREAMS_MAX);
	return 0;
}

/*
 * The number of sessions to use for a source of size bytes. A local host
 * has no encryption to spread over cores, and a caller's read_at may not
 * allow reads from several threads, so both default to one.
 */
static unsigned stream_count(const struct node_session *session,
			     const struct node_upload *request, uint64_t size)
{
	uint64_t split_min_size = request->split_min_size ? request->split_min_size :
				  NODE_UPLOAD_SPLIT_MIN_SIZE;

	if (size < split_min_size)
		return 1;
	if (request->streams)
		return request->streams;
	return session->host->local || !request->source_path ? 1 : 2;
}

static int open_source(const struct node_upload *request, struct upload_source *source,
		       const char *host_name, struct node_error *err)
{
	struct stat st;

	source->request = request;
	source->fd = -1;
	if (!request->source_path) {
		source->read_at = request->read_at;
		source->context = request->read_context;
		source->size = request->size;
		return 0;
	}
	source->fd = open(request->source_path, O_RDONLY | O_CLOEXEC);
	if (source->fd < 0 || fstat(source->fd, &st) < 0)
		return node_fail(err, MLB_EINPUT, host_name, "cannot read '%s': %s",
				 request->source_path, strerror(errno));
	if (!S_ISREG(st.st_mode))
		return node_fail(err, MLB_EINPUT, host_name, "'%s' is not a regular file",
				 request->source_path);
	source->read_at = file_read_at;
	source->context = source;
	source->size = (uint64_t)st.st_size;
	return 0;
}

/*
 * Asks the node for an earlier try's temporary file and returns the number
 * of its bytes that match the source (0 to start over), with hash fed with
 * exactly those bytes.
 */
static int find_resume_point(struct node_session *session, struct upload_source *source,
			     const char *part, struct sha256 *hash, uint64_t *resume_from,
			     struct node_result *result, struct node_error *err)
{
	const char *host_name = session->host->name;
	const char *args[] = { part, NULL };
	char local_hex[SHA256_HEX_LEN + 1], remote_hex[SHA256_HEX_LEN + 1];
	unsigned char digest[SHA256_BYTES];
	unsigned long long length;
	struct sha256 prefix;
	int r;

	*resume_from = 0;
	r = upload_run_script(session, probe_script, args, UPLOAD_STEP_TIMEOUT_MS,
			      UPLOAD_STEP_OUTPUT_MAX, NULL, result, err);
	if (r < 0)
		return r;
	if (result->exit_status != 0 || strcmp(buf_str(&result->out), "none\n") == 0)
		return 0;
	if (sscanf(buf_str(&result->out), "%llu\n%64[0-9a-f]", &length, remote_hex) != 2 ||
	    strlen(remote_hex) != SHA256_HEX_LEN) {
		log_debug("host '%s': unexpected output of the upload probe; starting over",
			  host_name);
		return 0;
	}
	if (length == 0 || length > source->size)
		return 0;

	/* Hash the prefix twice over: once alone to compare, once into the whole. */
	r = sha256_init(&prefix);
	if (r == 0)
		r = upload_hash_range(source, &prefix, 0, length);
	if (r == 0)
		r = sha256_final(&prefix, digest);
	sha256_release(&prefix);
	if (r < 0)
		return node_fail(err, r, host_name, "cannot read the upload source: %s",
				 mlb_strerror(r));
	sha256_to_hex(digest, local_hex);
	if (strcmp(local_hex, remote_hex) != 0) {
		log_debug("host '%s': the %llu bytes of '%s' differ from the source; starting over",
			  host_name, length, part);
		return 0;
	}
	r = hash ? upload_hash_range(source, hash, 0, length) : 0;
	if (r < 0)
		return node_fail(err, r, host_name, "cannot read the upload source: %s",
				 mlb_strerror(r));
	*resume_from = length;
	return 0;
}

/*
 * Streams bytes resume_from to the end of the source into the node's
 * temporary file and reads back the sha256 of the whole file into
 * remote_hex. hash, when not NULL, already contains the prefix and receives
 * the rest.
 */
static int transfer(struct node_session *session, struct upload_source *source, const char *part,
		    uint64_t resume_from, struct sha256 *hash, struct node_upload_stats *stats,
		    char remote_hex[SHA256_HEX_LEN + 1], struct node_error *err)
{
	const struct node_upload *request = source->request;
	const char *host_name = session->host->name;
	struct upload_progress progress;
	struct upload_stream stream = { .source = source, .progress = &progress,
					.offset = resume_from, .end = source->size };
	struct node_command command = { .stdin_read = upload_stream_read, .stdin_context = &stream };
	struct node_result result;
	char resume_text[32];
	const char *args[3] = { part, resume_text, NULL };
	unsigned timeout;
	int r, read_error;

	node_result_init(&result);
	upload_progress_init(&progress, request, resume_from, source->size);
	timeout = upload_transfer_timeout(session, request, source->size);
	snprintf(resume_text, sizeof(resume_text), "%llu", (unsigned long long)resume_from);

	r = node_read_ahead_start(source->read_at, source->context, resume_from, source->size, hash,
				  &stream.ahead);
	if (r < 0) {
		r = node_fail(err, r, host_name, "cannot start reading the upload source: %s",
			      mlb_strerror(r));
		goto out;
	}
	r = upload_run_script(session, transfer_script, args, timeout, UPLOAD_STEP_OUTPUT_MAX,
			      &command, &result, err);
	read_error = node_read_ahead_stop(stream.ahead);
	stats->bytes_sent = stream.sent;
	if (r == 0 && (stream.error < 0 || read_error < 0)) {
		int error = stream.error < 0 ? stream.error : read_error;

		r = node_fail(err, error, host_name, "cannot read the upload source: %s",
			      mlb_strerror(error));
	}
	if (r < 0)
		goto out;

	if (result.exit_status != 0 || stream.offset != source->size ||
	    sscanf(buf_str(&result.out), "%64[0-9a-f]", remote_hex) != 1 ||
	    strlen(remote_hex) != SHA256_HEX_LEN) {
		char text[512];

		node_escape_text(result.err.data ? result.err.data : "", result.err.len, text,
				 sizeof(text));
		r = node_fail(err, MLB_EFAILED, host_name,
			      "writing '%s' on the node failed (exit status %d): %s", part,
			      result.exit_status, text[0] ? text : "no message");
		goto out;
	}
	r = 0;
out:
	upload_progress_release(&progress);
	node_result_release(&result);
	return r;
}

/* Checks the node's sha256 against the expected one, then renames the file into place. */
static int install(struct node_session *session, const struct node_upload *request,
		   const char *part, uint64_t size, const char *remote_hex, const char *expected_hex,
		   struct node_error *err)
{
	const char *host_name = session->host->name;
	const char *discard_args[] = { part, NULL };
	char mode_text[8];
	const char *finish_args[] = { part, request->destination, mode_text,
				      request->sync ? "sync" : "", NULL };
	unsigned timeout = UPLOAD_STEP_TIMEOUT_MS;
	struct node_result result;
	int r;

	node_result_init(&result);
	if (strcmp(remote_hex, expected_hex) != 0) {
		upload_run_script(session, discard_script, discard_args, UPLOAD_STEP_TIMEOUT_MS,
				  UPLOAD_STEP_OUTPUT_MAX, NULL, &result, NULL);
		r = node_fail(err, MLB_EINTEGRITY, host_name,
			      "'%s' arrived with sha256 %s, but %s was expected%s; the temporary "
			      "file was removed, so uploading again starts over", request->destination,
			      remote_hex, expected_hex,
			      request->expected_sha256 ? " (the source or the transfer is corrupt)" : "");
		goto out;
	}

	snprintf(mode_text, sizeof(mode_text), "%04o", (unsigned)request->mode);
	/* Writing the file to disk can take as long as sending it. */
	if (request->sync)
		timeout = upload_transfer_timeout(session, request, size);
	r = upload_run_script(session, finish_script, finish_args, timeout,
			      UPLOAD_STEP_OUTPUT_MAX, NULL, &result, err);
	if (r < 0)
		goto out;
	if (result.exit_status != 0) {
		char text[512];

		node_escape_text(result.err.data ? result.err.data : "", result.err.len, text,
				 sizeof(text));
		r = node_fail(err, MLB_EFAILED, host_name, "cannot move the upload to '%s': %s",
			      request->destination, text[0] ? text : "no message");
		goto out;
	}
	r = 0;
out:
	node_result_release(&result);
	return r;
}

int node_upload(struct node_session *session, const struct node_upload *request,
		struct node_upload_stats *stats, struct node_error *err)
{
	const char *host_name = session->host->name;
	struct upload_source source = { .fd = -1 };
	struct node_upload_stats local_stats = { 0 };
	struct node_result result;
	struct buf part = BUF_INIT(NODE_PATH_MAX + 64);
	struct sha256 hash = { 0 };
	struct sha256 *local_hash = NULL;
	unsigned char digest[SHA256_BYTES];
	char remote_hex[SHA256_HEX_LEN + 1] = "";
	uint64_t resume_from = 0;
	unsigned streams;
	int r;

	node_result_init(&result);
	if (!stats)
		stats = &local_stats;
	memset(stats, 0, sizeof(*stats));

	r = validate_request(request, host_name, err);
	if (r < 0)
		goto out;
	r = open_source(request, &source, host_name, err);
	if (r < 0)
		goto out;
	stats->size = source.size;
	r = part_path(request->destination, &part);
	if (r < 0) {
		r = node_fail(err, r, host_name, "destination path too long");
		goto out;
	}
	/*
	 * With an expected sha256 (from a verified bundle index) the node's
	 * hash is compared with it directly, so the source is not hashed here.
	 */
	if (!request->expected_sha256) {
		r = sha256_init(&hash);
		if (r < 0) {
			r = node_fail(err, r, host_name, "cannot start a sha256 hash");
			goto out;
		}
		local_hash = &hash;
	}

	streams = stream_count(session, request, source.size);
	if (streams > 1 && upload_range_count(source.size, streams) > 1) {
		r = upload_ranges(session, &source, buf_str(&part), streams, local_hash, stats,
				  remote_hex, err);
		if (r < 0)
			goto out;
	} else {
		r = find_resume_point(session, &source, buf_str(&part), local_hash, &resume_from,
				      &result, err);
		if (r < 0)
			goto out;
		stats->resumed_from = resume_from;
		stats->ranges = 1;
		r = transfer(session, &source, buf_str(&part), resume_from, local_hash, stats,
			     remote_hex, err);
		if (r < 0)
			goto out;
	}

	if (local_hash) {
		r = sha256_final(local_hash, digest);
		if (r < 0) {
			r = node_fail(err, r, host_name, "cannot finish the sha256 hash");
			goto out;
		}
		sha256_to_hex(digest, stats->sha256);
	} else {
		snprintf(stats->sha256, sizeof(stats->sha256), "%s", request->expected_sha256);
	}
	r = install(session, request, buf_str(&part), source.size, remote_hex, stats->sha256, err);
out:
	sha256_release(&hash);
	if (source.fd >= 0)
		close(source.fd);
	node_result_release(&result);
	buf_release(&part);
	return r;
}
