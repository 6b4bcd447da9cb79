/*
 * Declarations shared by the upload files: upload.c (requests, one stream,
 * the final check and rename) and upload-ranges.c (uploads split into byte
 * ranges over several sessions).
 */
#ifndef MLBOOT_NODE_UPLOAD_INTERNAL_H
#define MLBOOT_NODE_UPLOAD_INTERNAL_H

#include <pthread.h>
#include <stdint.h>

#include "hash.h"
#include "node-internal.h"

/* Small commands of an upload (probe, rename) must finish within this. */
#define UPLOAD_STEP_TIMEOUT_MS (5 * 60 * 1000)
/* Bytes of stdout kept from a small command of an upload. */
#define UPLOAD_STEP_OUTPUT_MAX 4096

/*
 * A shell function that prints the sha256 of stdin as hex at the start of
 * the line. openssl uses the CPU's SHA instructions and hashes about five
 * times faster than Debian 12's sha256sum, so it is used when the node has
 * it. On a 2-core Debian 12 VM, "openssl speed" gave 1.9 GB/s and sha256sum
 * of a 512 MiB file 0.4 GB/s. Both print the digest first ("HEX *stdin",
 * "HEX  -").
 */
#define SHA256_FUNCTION \
	"sha256_of_stdin() { if command -v openssl >/dev/null 2>&1; then openssl dgst -sha256 -r; " \
	"else sha256sum; fi; }; "

/* The bytes to upload: a local file or the request's read_at. */
struct upload_source {
	const struct node_upload *request;
	node_read_at_fn read_at;
	void *context;
	int fd;
	uint64_t size;
};

/* Reads exactly len bytes at offset, or fails: the source must not shrink. */
int upload_source_read(struct upload_source *source, void *buffer, size_t len, uint64_t offset);
/* Feeds len bytes of the source from offset into hash. */
int upload_hash_range(struct upload_source *source, struct sha256 *hash, uint64_t offset,
		      uint64_t len);

/*
 * Progress of one upload over all its streams. request->progress is called
 * with the lock held, so calls never overlap.
 */
struct upload_progress {
	pthread_mutex_t lock;
	const struct node_upload *request;
	uint64_t done;
	uint64_t total;
};

void upload_progress_init(struct upload_progress *progress, const struct node_upload *request,
			  uint64_t done, uint64_t total);
/* Adds bytes to done and reports the new total. */
void upload_progress_add(struct upload_progress *progress, uint64_t bytes);
void upload_progress_release(struct upload_progress *progress);

/*
 * stdin of one transfer command: bytes offset to end of the source, read on
 * a read-ahead thread. upload_stream_read() is its node_read_fn.
 */
struct upload_stream {
	struct upload_source *source;
	struct upload_progress *progress;
	struct read_ahead *ahead;
	uint64_t offset;                  /* next byte to send */
	uint64_t end;                     /* first byte not to send */
	uint64_t sent;
	int error;                        /* the read error that ended the stream */
};

ssize_t upload_stream_read(void *context, void *buffer, size_t size);

/*
 * Runs "sh -c SCRIPT sh ARGS..." (at most 3 arguments) with the limits of a
 * small upload step. base, when not NULL, supplies the standard input.
 */
int upload_run_script(struct node_session *session, const char *script, const char *const *args,
		      unsigned timeout_ms, size_t stdout_max, const struct node_command *base,
		      struct node_result *result, struct node_error *err);

/* Time limit of a command that sends len bytes (see struct node_upload.timeout_ms). */
unsigned upload_transfer_timeout(const struct node_session *session,
				 const struct node_upload *request, uint64_t len);

/*
 * The number of byte ranges a source of size bytes is split into for
 * streams sessions (upload-ranges.c): at most streams, fewer when the
 * source has fewer resume blocks.
 */
unsigned upload_range_count(uint64_t size, unsigned streams);

/*
 * Sends the source in byte ranges over up to streams sessions into the
 * temporary file part (upload-ranges.c), resuming what an earlier call
 * left, and reads back the node's sha256 of the whole file into
 * remote_hex. hash, when not NULL, receives the whole source in order, on
 * a thread of its own. Fills stats->resumed_from, bytes_sent and ranges.
 */
int upload_ranges(struct node_session *session, struct upload_source *source, const char *part,
		  unsigned streams, struct sha256 *hash, struct node_upload_stats *stats,
		  char remote_hex[SHA256_HEX_LEN + 1], struct node_error *err);

#endif
