/*
 * The node module: reaching the cluster's nodes.
 *
 * A node is reached through a session. A session uses one of two transports:
 * SSH (libssh2) for remote hosts, and local (posix_spawn with pipes) for the
 * host mlboot runs on (struct node_host.local). Commands, uploads and
 * node_for_each() work the same way on both transports.
 *
 * Results: every function returns 0 or a negative result code (a negative
 * errno value or an MLB_E* code from common/error.h):
 *
 *   MLB_EUNREACHABLE  the host did not respond, the TCP connection, SSH
 *                     handshake or authentication failed or timed out, or the
 *                     connection dropped
 *   MLB_EDENIED       host key verification failed, the server rejected the
 *                     user's key, or sudo requires a password
 *   MLB_EINTEGRITY    an upload arrived with another sha256
 *   MLB_EINPUT        a host description or request is invalid, or a key file
 *                     cannot be parsed
 *   -ETIMEDOUT        a command ran longer than its time limit
 *   -EPROTO           a remote command ended without reporting an exit status
 *
 * Functions that can fail fill a struct node_error with a lowercase message
 * that names the host and says what to do next (for example both host key
 * fingerprints on a mismatch). The module logs only at debug level, with one
 * exception: accepting a new host key is logged as a notice, as ssh warns
 * "Permanently added". Callers log the message once. Text that came from the remote host is escaped in
 * these messages, so they are safe to print on a terminal.
 *
 * Threads: libssh2_init() must have run before the first call. A session is
 * used by one thread at a time; different sessions may be used from
 * different threads at once. node_for_each() runs one thread per host, up to
 * a bound.
 *
 * Blocking: every call blocks the calling thread, and each wait is bounded by
 * one of the timeouts in struct node_options.
 */
#ifndef MLBOOT_NODE_NODE_H
#define MLBOOT_NODE_NODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "buf.h"

/* Limits on what a host description may contain. */
#define NODE_NAME_MAX 253           /* host names, DNS length */
#define NODE_PATH_MAX 4096          /* key files, known_hosts files, upload paths */
#define NODE_BASTION_DEPTH_MAX 3    /* bastions of bastions */
#define NODE_ERROR_MAX 2048         /* a struct node_error message, with its NUL */

/* "SHA256:" and 43 characters of unpadded base64, as ssh-keygen -l prints. */
#define NODE_FINGERPRINT_LEN 50

enum node_role {
	NODE_ROLE_WORKER,
	NODE_ROLE_CONTROL_PLANE,
};

/*
 * How to reach a host over SSH. All strings are owned by the struct and
 * freed by node_ssh_release(); NULL means "not set".
 */
struct node_ssh {
	char *address;        /* IP address or DNS name; required */
	uint16_t port;        /* 0 means 22 */
	char *user;           /* NULL means the name of the local user, as ssh does */
	/*
	 * Private key file (ed25519 or ECDSA, OpenSSH or PEM format). NULL
	 * means authenticate through the ssh-agent at $SSH_AUTH_SOCK. "~/" and
	 * $VAR are expanded.
	 */
	char *key_path;
	/*
	 * Name of an environment variable that contains the key's passphrase.
	 * An encrypted key without one fails: mlboot never prompts.
	 */
	char *passphrase_env;
	/*
	 * Pinned host key: "SHA256:<base64>" as ssh-keygen -l prints it,
	 * optionally preceded by the key type and a space ("ssh-ed25519
	 * SHA256:..."). When set, known_hosts files are not read for this host.
	 */
	char *host_key;
	/*
	 * known_hosts file used instead of both ~/.ssh/known_hosts and
	 * /etc/ssh/ssh_known_hosts, for reading and for appending new keys.
	 */
	char *known_hosts;
	/* Host to connect through; NULL for a direct connection. Owned. */
	struct node_ssh *bastion;
};

/* One host of mlboot.yaml's spec.hosts. Owns its strings. */
struct node_host {
	char *name;           /* required; used in every message */
	enum node_role role;
	bool local;           /* the host mlboot runs on: no SSH, ssh is unused */
	bool sudo;            /* run every command through "sudo -n --" */
	struct node_ssh ssh;
};

/* Timeouts and connection settings; node_options_init() sets the defaults. */
struct node_options {
	unsigned connect_timeout_ms;   /* TCP connect, for each address: 10 s */
	unsigned handshake_timeout_ms; /* SSH handshake with host key check: 15 s */
	unsigned auth_timeout_ms;      /* user authentication: 15 s */
	unsigned command_timeout_ms;   /* each node_run() without its own: 10 min */
	/*
	 * Seconds between SSH keepalive messages on an idle connection: 15.
	 * 0 disables them. A peer that stops acknowledging data for three
	 * intervals is treated as gone (TCP_USER_TIMEOUT).
	 */
	unsigned keepalive_interval_s;
	/*
	 * Accept a host that no known_hosts file lists and append its key to
	 * the user known_hosts file (or ssh.known_hosts) as a hashed entry.
	 * A changed key is rejected even with this set.
	 */
	bool accept_new_host_keys;
};

struct node_error {
	char message[NODE_ERROR_MAX];
};

void node_options_init(struct node_options *options);

void node_host_init(struct node_host *host);
/* Frees every string of the host and its bastion; accepts NULL. */
void node_host_release(struct node_host *host);
void node_ssh_release(struct node_ssh *ssh);

/*
 * Checks a host description before any connection: required fields, lengths,
 * the form of host_key, bastion depth. Returns 0 or MLB_EINPUT with err
 * naming the field.
 */
int node_host_validate(const struct node_host *host, struct node_error *err);

/* Whether text is a valid host_key value (see struct node_ssh). */
bool node_host_key_is_valid(const char *text);

/* ------------------------------------------------------------------------
 * Sessions and commands
 */

struct node_session;

/*
 * Opens a session to host. For a local host this only records the host. For
 * SSH it connects (through the bastions), verifies the host key and
 * authenticates. options may be NULL for the defaults. host must stay valid
 * until the session is closed. On success *out belongs to the caller, who
 * closes it with node_close().
 */
int node_connect(const struct node_host *host, const struct node_options *options,
		 struct node_session **out, struct node_error *err);
/* Closes the session and frees it; accepts NULL. */
void node_close(struct node_session *session);
const struct node_host *node_session_host(const struct node_session *session);

/*
 * Reads up to size bytes of a command's standard input into buffer. Returns
 * the number of bytes read, 0 at the end, or a negative result code, which
 * ends the command with that result.
 */
typedef ssize_t (*node_read_fn)(void *context, void *buffer, size_t size);

struct node_command {
	/* Program and arguments, NULL-terminated; argv[0] is looked up in PATH. */
	const char *const *argv;
	/* Standard input: stdin_data/stdin_len, or stdin_read, or neither (empty). */
	const void *stdin_data;
	size_t stdin_len;
	node_read_fn stdin_read;
	void *stdin_context;
	/* Bytes of stdout and stderr kept; more is dropped. 0 means 1 MiB. */
	size_t stdout_max;
	size_t stderr_max;
	/* Time limit for the whole command; 0 means options.command_timeout_ms. */
	unsigned timeout_ms;
};

struct node_result {
	/*
	 * The command's exit status as a shell's $? reports it: 0-255, and
	 * 128+N for a command killed by signal N.
	 */
	int exit_status;
	struct buf out;       /* captured stdout, up to stdout_max bytes */
	struct buf err;       /* captured stderr, up to stderr_max bytes */
	bool out_truncated;
	bool err_truncated;
};

void node_result_init(struct node_result *result);
void node_result_release(struct node_result *result);

/*
 * Runs a command on the session's host and waits for it to exit. With
 * host.sudo the command runs as "sudo -n -- ARGV...". Over SSH the command
 * string is the POSIX-quoted argv run by the user's login shell, which must
 * be a POSIX shell (sh, bash, dash, ksh, zsh).
 *
 * Returns 0 when the command ran and reported its exit status, also a
 * non-zero one: the caller reads result->exit_status. Fails with
 * MLB_EDENIED when sudo requires a password, -ETIMEDOUT after the time
 * limit (the remote command may keep running), -EPROTO when no exit status
 * arrived, MLB_EUNREACHABLE when the connection dropped, or the result of
 * stdin_read. result must be initialised; its buffers are reset first.
 */
int node_run(struct node_session *session, const struct node_command *command,
	     struct node_result *result, struct node_error *err);

/*
 * Appends argv as one POSIX shell command: every argument in single quotes,
 * each ' written as '\'', separated by spaces. A shell's word splitting of
 * the result gives back each argument byte for byte.
 */
int node_quote_argv(const char *const *argv, struct buf *out);
/* Appends one argument, quoted as node_quote_argv() quotes it. */
int node_quote_arg(const char *arg, struct buf *out);

/* ------------------------------------------------------------------------
 * Uploads
 */

/*
 * Reads up to size bytes of the upload source at offset into buffer. Returns
 * the number read (short only at the end), 0 at the end, or a negative
 * result code. With one stream, offsets only grow during one node_upload(),
 * except for one restart at 0 when a resumed temporary file turns out not
 * to match. With several streams (struct node_upload.streams), it is called
 * from several threads at once, at offsets in different byte ranges.
 */
typedef ssize_t (*node_read_at_fn)(void *context, void *buffer, size_t size, uint64_t offset);
/*
 * Reports progress: done bytes of total, including resumed bytes. With
 * several streams it is called from their threads, one call at a time.
 */
typedef void (*node_progress_fn)(void *context, uint64_t done, uint64_t total);

/* Maximum of struct node_upload.streams. */
#define NODE_UPLOAD_STREAMS_MAX 8
/* Default of struct node_upload.split_min_size: 64 MiB. */
#define NODE_UPLOAD_SPLIT_MIN_SIZE ((uint64_t)64 << 20)

struct node_upload {
	/* Source: a local file, or read_at with size. */
	const char *source_path;
	node_read_at_fn read_at;
	void *read_context;
	uint64_t size;                   /* required with read_at */
	/* Optional 64 hex digits; a source with another sha256 fails. */
	const char *expected_sha256;
	/* Absolute path on the node; its folder must exist. */
	const char *destination;
	mode_t mode;                     /* permission bits of the result */
	node_progress_fn progress;
	void *progress_context;
	/*
	 * Time limit of each command that sends bytes; 0 means
	 * options.command_timeout_ms plus 1 s per MiB of the source, or of
	 * the range in a split upload.
	 */
	unsigned timeout_ms;
	/*
	 * Sessions that send one source of at least split_min_size bytes at
	 * once, each its own byte range, at most NODE_UPLOAD_STREAMS_MAX. 0
	 * means 2 for a source_path over SSH, and 1 for a local host or a
	 * read_at source. libssh2 1.10 encrypts on one core per session, so a
	 * second session lets encryption use a second core.
	 */
	unsigned streams;
	/* Smallest source split over several sessions; 0 means NODE_UPLOAD_SPLIT_MIN_SIZE. */
	uint64_t split_min_size;
	/*
	 * Flush the file to disk before the rename and its folder after it
	 * ("sync" on the node), so that a power cut after node_upload()
	 * returns cannot leave a short file under the destination's name.
	 */
	bool sync;
};

struct node_upload_stats {
	uint64_t size;                   /* bytes in the source */
	uint64_t resumed_from;           /* bytes already on the node from an earlier try */
	uint64_t bytes_sent;             /* bytes sent in this call */
	char sha256[65];                 /* hex digest of the source */
	unsigned ranges;                 /* byte ranges sent over separate sessions; 1 unsplit */
};

/*
 * Streams the source over an exec channel to "DIR/.NAME.mlboot-part" beside
 * the destination, or "DIR/.mlboot-part-HASH" when NAME is too long for
 * that. The node then computes the sha256 of the file (with openssl, or
 * sha256sum when it has no openssl). After a match the file gets its mode
 * and is renamed over the destination (mv -f). The node needs sh, cat, wc,
 * chmod, mv and rm, and for a split upload GNU coreutils' dd and split.
 * With expected_sha256 the node's digest is compared with it and the
 * source is not hashed locally; without it the source is hashed as it is
 * sent.
 *
 * When a temporary file from an earlier, interrupted call exists, its bytes
 * are kept if their sha256 equals that of the same prefix of the source,
 * and only the rest is sent; otherwise the upload starts over. Fails with
 * MLB_EINTEGRITY when the node's sha256 differs (the temporary file is then
 * removed) or when the source does not match expected_sha256. stats may be
 * NULL.
 *
 * Split uploads: a source of at least split_min_size bytes is cut into up
 * to streams byte ranges, which start at multiples of the resume block
 * size (8 MiB, doubled for sources above 8 GiB). Each range is written at
 * its offset into the same temporary file by dd. The caller's session
 * sends ranges and runs every other step. The extra sessions are opened
 * with node_connect() and the same host description and options, except
 * that they never accept a new host key: each must present the key that
 * the caller's session verified. A session that cannot be opened leaves
 * its range to the others, but a rejected host key fails the upload with
 * MLB_EDENIED. One range's failure does not stop the others, and the call
 * waits for all of them. To resume, the node reports the sha256 of each
 * block of the temporary file, and each range restarts after its longest
 * run of matching blocks.
 */
int node_upload(struct node_session *session, const struct node_upload *request,
		struct node_upload_stats *stats, struct node_error *err);

/* ------------------------------------------------------------------------
 * Many hosts at once
 */

/*
 * Work for one host, run on its own thread: typically node_connect(),
 * commands, node_close(). Returns 0 or a negative result code and fills err
 * on failure. index is the host's position in the array.
 */
typedef int (*node_task_fn)(const struct node_host *host, size_t index, void *context,
			    struct node_error *err);

struct node_outcome {
	int result;
	struct node_error error;  /* message when result != 0 */
};

/*
 * Runs task for each of the count hosts, at most parallel at a time (0 means
 * 8), and waits for all. One host's failure never stops the others.
 * outcomes[i] receives host i's result and message. Returns 0 when every
 * task succeeded, else the result of the first failed host in array order.
 * When no thread can be started, the tasks run one after another on the
 * calling thread.
 */
int node_for_each(const struct node_host *hosts, size_t count, unsigned parallel,
		  node_task_fn task, void *context, struct node_outcome *outcomes);

/* ------------------------------------------------------------------------
 * Host keys and known_hosts files
 *
 * The parser reads OpenSSH's known_hosts format: plain, wildcard ("*", "?",
 * "!" negation) and hashed ("|1|salt|hash") host patterns, "[host]:port" for
 * ports other than 22, and comments. Lines with the @cert-authority or
 * @revoked markers are parsed and reported as unsupported: they never make
 * a host trusted, but a @revoked line whose key a host offers rejects it.
 */

/* Writes "SHA256:" and the unpadded base64 SHA-256 of a key blob. */
int node_fingerprint(const void *blob, size_t len, char out[NODE_FINGERPRINT_LEN + 1]);

enum node_known_marker {
	NODE_KNOWN_PLAIN,
	NODE_KNOWN_CERT_AUTHORITY,  /* unsupported */
	NODE_KNOWN_REVOKED,         /* unsupported for trust, honoured for rejection */
};

struct node_known_entry {
	unsigned line;                       /* 1-based line in the file */
	enum node_known_marker marker;
	char *patterns;                      /* host field as written */
	char *key_type;                      /* "ssh-ed25519", ... */
	unsigned char *key;                  /* decoded key blob */
	size_t key_len;
	char fingerprint[NODE_FINGERPRINT_LEN + 1];
};

struct node_known_hosts {
	char *path;                          /* file the entries came from */
	struct node_known_entry *entries;
	size_t count;
	/* Lines that could not be parsed, each counted; the first is described. */
	size_t invalid_lines;
	unsigned first_invalid_line;
	char first_invalid_reason[128];
};

/* Maximum size of a known_hosts file and of one of its lines. */
#define NODE_KNOWN_HOSTS_MAX (16u << 20)
#define NODE_KNOWN_LINE_MAX 16384

/*
 * Parses known_hosts text. Invalid lines are counted and skipped, as ssh
 * skips them. path is copied for messages and may be NULL. Fails with -ENOMEM
 * or MLB_EINPUT when len exceeds NODE_KNOWN_HOSTS_MAX.
 */
int node_known_hosts_parse(const char *text, size_t len, const char *path,
			   struct node_known_hosts *out);
/* Reads and parses a file; a missing file gives an empty list and 0. */
int node_known_hosts_load(const char *path, struct node_known_hosts *out);
void node_known_hosts_release(struct node_known_hosts *known);

/*
 * Whether an entry's host patterns match a host: address for port 22,
 * "[address]:port" otherwise. Hashed patterns are compared by HMAC-SHA1.
 */
bool node_known_entry_matches(const struct node_known_entry *entry, const char *address,
			      uint16_t port);

/*
 * Formats a hashed known_hosts line ("|1|salt|hash TYPE BASE64\n") for a host
 * and key blob, with a random salt.
 */
int node_known_hosts_format_hashed(const char *address, uint16_t port, const char *key_type,
				   const void *key, size_t key_len, struct buf *out);

#endif
