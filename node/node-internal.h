/*
 * Declarations shared by the files of the node module. Other modules use
 * node.h only.
 */
#ifndef MLBOOT_NODE_INTERNAL_H
#define MLBOOT_NODE_INTERNAL_H

#include <stdarg.h>
#include <stdint.h>
#include <time.h>

#include "node.h"

/* Default and maximum bytes of stdout or stderr that node_run() keeps. */
#define NODE_OUTPUT_DEFAULT_MAX ((size_t)1 << 20)
#define NODE_OUTPUT_HARD_MAX ((size_t)256 << 20)

struct node_transport {
	/*
	 * Runs argv (already prefixed with sudo when the host needs it) and
	 * fills result->exit_status, out and err. Returns 0 once the exit
	 * status is known.
	 */
	int (*run)(struct node_session *session, const struct node_command *command,
		   const char *const *argv, int64_t deadline_ms, struct node_result *result,
		   struct node_error *err);
	void (*close)(struct node_session *session);
};

struct node_session {
	const struct node_transport *transport;
	const struct node_host *host;
	struct node_options options;
	void *state;                      /* owned by the transport */
};

extern const struct node_transport node_local_transport;

/* Opens the SSH transport's state for session->host (ssh.c). */
int node_ssh_open(struct node_session *session, struct node_error *err);
extern const struct node_transport node_ssh_transport;

/*
 * Writes "host 'NAME': " and the formatted text into err (when err is not
 * NULL), logs it at debug level and returns r.
 */
int node_fail(struct node_error *err, int r, const char *host_name, const char *format, ...)
	__attribute__((format(printf, 4, 5)));
int node_vfail(struct node_error *err, int r, const char *host_name, const char *format,
	       va_list args) __attribute__((format(printf, 4, 0)));

/*
 * Copies at most len bytes of text from a remote host into out (of size
 * out_size, always NUL-terminated), writing control bytes and bytes above
 * 0x7e as \n, \t or \xNN, so the copy is safe to print on a terminal.
 */
void node_escape_text(const char *text, size_t len, char *out, size_t out_size);

/* Milliseconds of CLOCK_MONOTONIC. */
int64_t node_now_ms(void);
/* Milliseconds from now until deadline_ms, at least 0, at most INT32_MAX. */
int node_remaining_ms(int64_t deadline_ms);

/*
 * Appends up to len bytes to an output capture that keeps at most max bytes
 * (setting *truncated when bytes are dropped). The last bytes of the stream
 * are kept in tail as well, whatever max is, so that a status trailer can be
 * found after a truncated capture.
 */
#define NODE_TAIL_MAX 64
struct node_capture {
	struct buf *buf;
	size_t max;
	bool *truncated;
	uint64_t total;                   /* bytes of the whole stream */
	char tail[NODE_TAIL_MAX];
	size_t tail_len;
};
void node_capture_init(struct node_capture *capture, struct buf *buf, size_t max,
		       bool *truncated);
int node_capture_append(struct node_capture *capture, const char *data, size_t len);

/*
 * Reads the next piece of a command's stdin into buffer: from stdin_data
 * starting at *offset, or from stdin_read. Returns the byte count, 0 at the
 * end or a negative result code.
 */
ssize_t node_command_read_stdin(const struct node_command *command, size_t *offset,
				void *buffer, size_t size);

/*
 * Read-ahead of an upload source on its own thread (read_ahead.c): reads
 * bytes offset to end with read_at and, when hash is not NULL, hashes them
 * in order. node_read_ahead_read() returns the next bytes, 0 at the end, or
 * the read error. node_read_ahead_stop() joins the thread and frees it;
 * hash must not be used until then.
 */
struct read_ahead;
struct sha256;
int node_read_ahead_start(node_read_at_fn read_at, void *context, uint64_t offset, uint64_t end,
			  struct sha256 *hash, struct read_ahead **out);
ssize_t node_read_ahead_read(struct read_ahead *ahead, void *buffer, size_t size);
int node_read_ahead_stop(struct read_ahead *ahead);

/* Host key helpers shared by known_hosts.c and ssh-hostkey.c. */
int node_base64_encode(const unsigned char *data, size_t len, bool pad, struct buf *out);
/* Decodes base64 (padding optional); -EINVAL on other characters. */
int node_base64_decode(const char *text, size_t len, unsigned char **out, size_t *out_len);
/* Key type name inside a key blob (its first SSH string), or NULL. */
int node_key_blob_type(const unsigned char *blob, size_t len, char *type, size_t type_size);

#endif
