/*
 * Shared by the airgap module's own files and its tests; not part of the
 * module's contract (airgap.h is).
 */
#ifndef MLBOOT_AIRGAP_AIRGAP_INTERNAL_H
#define MLBOOT_AIRGAP_AIRGAP_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <zstd.h>

#include "airgap.h"

#define TAR_BLOCK          512u
/* Largest pax extended header accepted; canonical ones are under 2 KiB. */
#define TAR_PAX_MAX        (64u * 1024)
/* Largest size the 11 octal digits of a ustar size field can hold. */
#define TAR_USTAR_SIZE_MAX 077777777777ull
#define TAR_PAX_NAME       "././@PaxHeader"

/*
 * Read buffer of the streaming checks. 256 KiB stays in the CPU's L2 cache
 * while it is hashed, and took about 6% less CPU than 4 MiB in a measured
 * verify of an 800 MB bundle (hyperfine, 8 runs).
 */
#define BUNDLE_READ_BUFFER (256u * 1024)
/* Chunks handed to a sink; also the zstd output buffer. */
#define BUNDLE_CHUNK       (1024u * 1024)
/* Largest zstd window accepted when decompressing (2^23 = 8 MiB), and used when compressing. */
#define BUNDLE_ZSTD_WINDOW_LOG 23
#define BUNDLE_ZSTD_LEVEL  12

#define ZSTD_MAGIC_0 0x28
#define ZSTD_MAGIC_1 0xb5
#define ZSTD_MAGIC_2 0x2f
#define ZSTD_MAGIC_3 0xfd

/* --- util.c ------------------------------------------------------------ */

/* Records a problem as bundle_report_add() does, with ": " and the description of r appended. */
int bundle_report_errno(struct bundle_report *report, int r, const char *format, ...)
	__attribute__((format(printf, 3, 4)));

/* Escapes a NUL-terminated name with bundle_escape_name() into the caller's buffer. */
#define ESCAPED_NAME_MAX 256
struct escaped {
	char text[ESCAPED_NAME_MAX];
};
const char *escape_name(struct escaped *out, const char *name);

int sha256_digest(const void *data, size_t len, unsigned char out[SHA256_BYTES]);
int hex_decode_sha256(const char *hex, size_t len, unsigned char out[SHA256_BYTES]);
/* Whether data starts with the magic bytes of gzip, zstd, xz, bzip2 or zip. */
bool data_is_compressed(const unsigned char *data, size_t len);
/* Writes digits random hex digits from getrandom() and a NUL to out. */
int random_hex(char *out, size_t digits);
/* Removes a folder tree below dir_fd without following symbolic links. */
int remove_tree_at(int dir_fd, const char *name);
/* Adds size, rounded up to whole BUNDLE_DISK_BLOCKs (at least one), to *total; false on overflow. */
bool disk_blocks_add(uint64_t *total, uint64_t size);
/* Whether the flag of bundle_set_interrupt_flag() is set. */
bool bundle_interrupted(void);

/* A file that an output must not replace, identified by st_dev and st_ino. */
struct input_file {
	dev_t dev;
	ino_t ino;
	char *path;
	char *role;
};

/*
 * Adds path to the list, identified by known when not NULL, else by stat()
 * (which follows a symbolic link). A missing path is skipped.
 */
int input_file_add(struct input_file **list, size_t *count, const char *path, const char *role,
		   const struct stat *known);
void input_files_release(struct input_file *list, size_t count);
/*
 * Checks output as bundle_check_output() does against the listed files.
 * Returns 0, MLB_EINPUT or an lstat() error, with the reason in message.
 */
int output_check(const char *output, const struct input_file *inputs, size_t count, char *message, size_t size);

/* --- tar.c: canonical writing and strict reading -------------------------- */

/* Appends the canonical headers of a regular file entry (pax header when needed, then ustar). */
int tar_header_encode(const char *path, uint64_t size, unsigned mode, struct buf *out);
/* Returns the number of zero bytes that pad an entry of this size to a whole block. */
size_t tar_padding(uint64_t size);

/* A sequential reader over a file with a large buffer, which hands out chunks without copying. */
struct input {
	int fd;
	unsigned char *buffer;
	size_t capacity;
	size_t start;
	size_t end;
	uint64_t offset;   /* file offset of buffer[start] */
	bool eof;
};

/* Opens path for reading; -EISDIR for a folder. */
int input_open(struct input *in, const char *path, size_t capacity);
/*
 * Opens a bundle with input_open() and reports a failure, setting
 * report->unreadable. A path that names no readable file (missing, a
 * folder, no permission) is invalid input: MLB_EINPUT.
 */
int bundle_input_open(struct input *in, const char *path, size_t capacity, struct bundle_report *report);
void input_close(struct input *in);
/* Points *data at up to max buffered bytes (reading more when empty); *len 0 at end of file. */
int input_next(struct input *in, size_t max, const unsigned char **data, size_t *len);
/* Copies exactly n bytes; -ENODATA when the file ends first. */
int input_read(struct input *in, void *out, size_t n);
/* Skips n bytes, with lseek when they are not buffered; -ENODATA past the end. */
int input_skip(struct input *in, uint64_t n);
/* Repositions at offset and drops the buffer. */
int input_seek(struct input *in, uint64_t offset);

struct tar_entry {
	char path[BUNDLE_PATH_MAX + 1];
	size_t path_len;        /* the full length, also when longer than path can hold */
	char linkname[BUNDLE_PATH_MAX + 1];
	char typeflag;
	unsigned mode;          /* the whole mode field, with setuid, setgid and sticky bits */
	uint64_t size;
	uint64_t header_offset;
	uint64_t data_offset;
	bool path_has_nul;      /* a pax path record with a NUL byte in it */
	/* The first problem that does not stop reading (unknown pax key, ...); "" when none. */
	char problem[160];
};

/*
 * Reads the next entry's header blocks into entry, and their raw bytes
 * into raw for tar_header_is_canonical(). Returns 1 for an entry, 0 after
 * the end-of-archive blocks when the file ends there, or MLB_EINTEGRITY
 * with message filled when the archive cannot be read further (bad
 * checksum, truncation, data after the end).
 */
int tar_next(struct input *in, struct tar_entry *entry, struct buf *raw, char *message, size_t size);
/* Whether raw equals the canonical headers of the entry; *field names the first difference. */
bool tar_header_is_canonical(const struct tar_entry *entry, const struct buf *raw, const char **field);
const char *tar_type_name(char typeflag);

/* --- check.c: one entry's bytes against its index record ------------------- */

struct entry_check {
	const struct bundle_file *file;
	struct sha256 stored_hash;
	struct sha256 unpacked_hash;
	uint64_t stored_seen;
	uint64_t unpacked_seen;
	ZSTD_DCtx *decoder;           /* borrowed, reset per entry */
	unsigned char *out_buffer;    /* borrowed, BUNDLE_CHUNK bytes */
	unsigned char magic[4];
	size_t magic_len;
	bool bad_magic;
	bool too_large;
	bool zstd_error;
	bool frame_done;
	char zstd_message[96];
	bundle_data_callback sink;
	void *sink_context;
};

int entry_check_begin(struct entry_check *check, const struct bundle_file *file,
		      ZSTD_DCtx *decoder, unsigned char *out_buffer,
		      bundle_data_callback sink, void *sink_context);
/* Feeds stored bytes; fails only when the sink or the system fails. */
int entry_check_feed(struct entry_check *check, const void *data, size_t len);
/* Reports every mismatch under the escaped name; returns 0 or MLB_EINTEGRITY. */
int entry_check_end(struct entry_check *check, const char *display, struct bundle_report *report);
void entry_check_release(struct entry_check *check);
/* A decoder with the window limit set; NULL when out of memory. */
ZSTD_DCtx *bundle_decoder_new(void);

/* --- head.c: the three leading entries ---------------------------------- */

/* What the leading entries hold once read and checked. */
struct bundle_head {
	struct buf index_data;
	struct buf sums_data;
	struct bundle_sums sums;
	struct bundle_index index;
	bool have_index;
	/* index.files position of each SHA256SUMS line (the index's line excluded). */
	size_t *file_of_line;
	/* Tar entry read after the head that is already a payload entry (unsigned bundles). */
	struct tar_entry pending;
	struct buf pending_raw;
	bool have_pending;
};

void bundle_head_init(struct bundle_head *head);
void bundle_head_release(struct bundle_head *head);
/*
 * Reads the index, SHA256SUMS and the signature entry from in, checks the
 * signature against options (before parsing the index), then parses the
 * index and cross-checks it with SHA256SUMS. Problems go to report.
 */
int bundle_head_read(struct bundle_head *head, struct input *in, const struct bundle_check_options *options,
		     struct bundle_report *report);

/* --- sign.c ------------------------------------------------------------- */

/* Appends the signature entry's text for these SHA256SUMS bytes. */
int bundle_signature_create(const struct bundle_key *key, const void *sums, size_t sums_len,
			    struct buf *out);
/*
 * Checks a signature entry (sig NULL when the bundle is unsigned) against
 * trust and sets report->signature and report->key_id. Returns 0 when the
 * bundle may be used under options.
 */
int bundle_signature_check(const struct bundle_check_options *options, const char *sig, size_t sig_len,
			   const void *sums, size_t sums_len, struct bundle_report *report);

/* --- sums.c -------------------------------------------------------------- */

/* Writes SHA256SUMS: the index's line, then each file's stored hash in bundle order. */
int bundle_sums_write(const unsigned char index_sha256[SHA256_BYTES], const struct bundle_index *index,
		      struct buf *out);

/* --- scan.c: the payload entries after the head ---------------------------- */

/* Where the payload of each expected entry goes while it is checked. */
struct payload_sink {
	/*
	 * Called before the data of an entry whose header checked out; sets
	 * *callback (and *callback_context) to receive the unpacked bytes, or
	 * leaves *callback NULL.
	 */
	int (*open)(void *context, const struct bundle_file *file, uint64_t data_offset,
		    bundle_data_callback *callback, void **callback_context);
	/* Called after the data; ok is whether every check of the entry passed. */
	int (*close)(void *context, const struct bundle_file *file, bool ok);
	void *context;
};

/*
 * Reads every payload entry after the head and checks it against the head.
 * With hash_data false the data is skipped, not read (for finding entries).
 * Problems go to report; the result is the report's when anything was found.
 */
int bundle_scan_payload(struct input *in, struct bundle_head *head, bool hash_data,
			const struct payload_sink *sink, struct bundle_report *report);

#endif
