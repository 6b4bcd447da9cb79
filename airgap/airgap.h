/*
 * The air-gapped bundle: its format, signing keys, the writer behind
 * `mlboot bundle build`, streaming verification, safe unpacking and reading
 * single entries straight from a bundle. docs/bundle-format.md specifies
 * the format and docs/catalog.md the catalog that a build reads.
 *
 * A bundle is an uncompressed pax tar. Its first entries are the index
 * (mlboot-bundle.yaml), SHA256SUMS (the SHA-256 of the index and of every
 * payload entry as stored) and, when signed, mlboot-bundle.sig (Ed25519
 * over a fixed prefix and the SHA256SUMS bytes). Every tar header must be
 * the canonical encoding of its entry, so no byte of a bundle escapes the
 * signature: headers follow from the signed names and sizes, contents are
 * in SHA256SUMS and the padding is zeros.
 *
 * Results are 0 or negative codes from common/error.h:
 *   MLB_EINTEGRITY  a hash, size, signature or the tar structure of a
 *                   bundle is wrong, or an unsigned bundle was not allowed;
 *   MLB_EINPUT      a catalog or an index that is invalid (after its
 *                   signature checked out), an unsupported format version,
 *                   a bundle or catalog that cannot be read, or an output
 *                   path that may not be replaced;
 *   -errno          the system failed (-ENOSPC, -EEXIST, -EIO, ...).
 * Checks collect every problem they find in a struct bundle_report, with
 * archive names already escaped for a terminal, and never print: the
 * caller prints the report. Calls block on file I/O only.
 */
#ifndef MLBOOT_AIRGAP_AIRGAP_H
#define MLBOOT_AIRGAP_AIRGAP_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common.h"

#define BUNDLE_FORMAT_VERSION   1
#define BUNDLE_API_VERSION      "mlboot.dev/v1alpha1"
#define BUNDLE_INDEX_NAME       "mlboot-bundle.yaml"
#define BUNDLE_SUMS_NAME        "SHA256SUMS"
#define BUNDLE_SIGNATURE_NAME   "mlboot-bundle.sig"
#define BUNDLE_SIGNATURE_PREFIX "mlboot-bundle-signature-v1\n"
#define BUNDLE_KEYS_DIR         "/etc/mlboot/keys"

/* Hard limits; a bundle or catalog past any of them is rejected. */
#define BUNDLE_INDEX_MAX        (4u * 1024 * 1024)
#define BUNDLE_SUMS_MAX         (8u * 1024 * 1024)
#define BUNDLE_SIGNATURE_MAX    1024u
#define BUNDLE_FILES_MAX        65536u
#define BUNDLE_PATH_MAX         1024u
#define BUNDLE_NAME_MAX         255u
#define BUNDLE_COMPONENTS_MAX   256u
#define BUNDLE_IMAGES_MAX       4096u
#define BUNDLE_REPORT_MAX       1000u
/* Block size the index's bytesNeeded rounds every file and folder up to. */
#define BUNDLE_DISK_BLOCK       4096u

/* What a check found out about a bundle's signature. */
enum bundle_signature_state {
	BUNDLE_SIGNATURE_UNKNOWN,    /* not read yet */
	BUNDLE_SIGNATURE_ABSENT,     /* the bundle is unsigned */
	BUNDLE_SIGNATURE_VALID,      /* signed by a trusted key, and the signature is valid */
	BUNDLE_SIGNATURE_UNTRUSTED,  /* signed by a key that is not trusted: not checked */
	BUNDLE_SIGNATURE_INVALID,    /* signed by a trusted key, and the signature is wrong */
};

/* Problems found by a check; messages past BUNDLE_REPORT_MAX are counted only. */
struct bundle_report {
	char **messages;
	size_t count;       /* messages stored */
	size_t total;       /* problems found, including those not stored */
	int result;         /* 0, or MLB_EINTEGRITY over MLB_EINPUT over other codes */
	enum bundle_signature_state signature;
	char key_id[SHA256_HEX_LEN + 1];   /* the signer's key ID when signed */
	uint64_t entries;   /* payload entries read */
	uint64_t bytes;     /* payload bytes read */
	bool unreadable;    /* the bundle file could not be opened: nothing was checked */
	/* Changes made on the way that the caller should log, such as removed leftovers. */
	char **notes;
	size_t note_count;
};

void bundle_report_init(struct bundle_report *report);
void bundle_report_release(struct bundle_report *report);
/* Records a problem and merges r into report->result; returns r. */
int bundle_report_add(struct bundle_report *report, int r, const char *format, ...)
	__attribute__((format(printf, 3, 4)));
/* Records a note, which is not a problem; -ENOMEM when it cannot be stored. */
int bundle_report_note(struct bundle_report *report, const char *format, ...)
	__attribute__((format(printf, 2, 3)));

/*
 * Lets a signal handler stop a build or an unpack. While *flag is nonzero,
 * bundle_unpack() and the writer stop at their next chunk of at most
 * 1 MiB, or when a blocking read from a pipe is interrupted, remove what
 * they wrote and return -EINTR. The setting is process-wide, as signal
 * handlers are; NULL turns the check off.
 */
void bundle_set_interrupt_flag(const volatile sig_atomic_t *flag);

/* A file that a bundle must not replace, such as an input of the build. */
struct bundle_input {
	const char *path;
	const char *role;   /* what the file is, for messages: "catalog", "signing key" */
};

/*
 * Checks that a bundle may be written at output. Nothing may exist there,
 * or only a regular file that differs from every input, compared by st_dev
 * and st_ino (inputs that do not exist are skipped). A symbolic link,
 * folder, device, FIFO or socket at output is rejected, as
 * file_check_output() does. A rejection is reported naming the path and
 * returns MLB_EINPUT. Other lstat() failures return their -errno.
 */
int bundle_check_output(const char *output, const struct bundle_input *inputs, size_t count,
			struct bundle_report *report);

/*
 * Writes name into out (size bytes, NUL-terminated) with control
 * characters, DEL, the backslash and bytes above 0x7e escaped as \n, \t,
 * \\ or \xHH, and cut with "..." when longer than out can hold.
 */
void bundle_escape_name(const char *name, size_t len, char *out, size_t size);

/*
 * Whether a path may name an entry: relative, 1 to BUNDLE_PATH_MAX bytes,
 * components of 1 to BUNDLE_NAME_MAX bytes that are neither "." nor "..",
 * no empty component, and no control character, DEL or backslash. When the
 * path is invalid and reason is not NULL, *reason is set to why.
 */
bool bundle_path_is_valid(const char *path, size_t len, const char **reason);

/* --- Keys and trust ----------------------------------------------------- */

/* An Ed25519 key, private (for signing) or public (for verifying). */
struct bundle_key;

/*
 * Creates an Ed25519 key pair: NAME.key (PEM PKCS#8, mode 0600) and
 * NAME.pub (PEM SubjectPublicKeyInfo, mode 0644). Returns -EEXIST, and
 * creates nothing, when either file exists. Private key bytes are wiped
 * from memory after use.
 */
int bundle_key_generate(const char *name, char key_id[SHA256_HEX_LEN + 1]);
/* Loads a private key from a PEM file; MLB_EINPUT when it is not Ed25519. */
int bundle_key_load_private(const char *path, struct bundle_key **out);
int bundle_key_load_public(const char *path, struct bundle_key **out);
/* The key ID: the SHA-256 of the 32-byte raw public key, in hex. */
const char *bundle_key_id(const struct bundle_key *key);
/* Frees a key and wipes private material; accepts NULL. */
void bundle_key_free(struct bundle_key *key);

/* Public keys that signatures are checked against. */
struct bundle_trust {
	struct bundle_key **keys;
	size_t count;
};

void bundle_trust_init(struct bundle_trust *trust);
/* Adds one public key file; a second copy of the same key is ignored. */
int bundle_trust_add_file(struct bundle_trust *trust, const char *path);
/*
 * Adds every "*.pub" file of a folder, in name order. A missing folder adds
 * nothing and is no error; a file that is not an Ed25519 public key is.
 */
int bundle_trust_add_dir(struct bundle_trust *trust, const char *dir);
void bundle_trust_release(struct bundle_trust *trust);

/* --- The index -------------------------------------------------------- */

enum bundle_compression {
	BUNDLE_COMPRESSION_NONE,
	BUNDLE_COMPRESSION_ZSTD,
};

/*
 * One file of a bundle. path, size and sha256 describe the file as
 * unpacked; the stored_* fields describe the tar entry, which differs only
 * for compressed files (stored_path is then path with ".zst" appended).
 */
struct bundle_file {
	char *path;
	uint64_t size;
	unsigned char sha256[SHA256_BYTES];
	unsigned mode;                       /* 0644 or 0755 */
	enum bundle_compression compression;
	char *stored_path;                   /* own copy, also when equal to path */
	uint64_t stored_size;
	unsigned char stored_sha256[SHA256_BYTES];
};

struct bundle_binary {
	char *name;
	char *platform;     /* "linux/amd64" */
	char *path;         /* an unpacked file path of the bundle */
};

struct bundle_component {
	char *name;
	char *version;
	char *namespace;    /* may be NULL */
	char **manifests;   /* unpacked file paths, in apply order */
	size_t manifest_count;
	struct bundle_binary *binaries;
	size_t binary_count;
	char **images;      /* image names, each in bundle_index.images */
	size_t image_count;
};

/* An image of the shared OCI layout under images/. */
struct bundle_image {
	char *name;         /* full reference: registry/repository:tag */
	char *digest;       /* "sha256:HEX" of its manifest or image index */
	char *media_type;
	uint64_t size;
	/* Every blob the image needs (its manifests first), as index.files positions. */
	size_t *blobs;
	size_t blob_count;
};

struct bundle_index {
	unsigned format_version;
	char *name;             /* platform name */
	char *version;          /* platform version */
	char *kubernetes_min;   /* "1.24" */
	char *kubernetes_max;
	char **platforms;       /* "linux/amd64", ... */
	size_t platform_count;
	struct bundle_component *components;   /* apply order */
	size_t component_count;
	struct bundle_image *images;           /* sorted by name */
	size_t image_count;
	struct bundle_file *files;             /* sorted by stored_path: bundle order */
	size_t file_count;
	uint64_t stored_bytes;    /* sum of stored sizes */
	uint64_t unpacked_bytes;  /* sum of unpacked sizes */
	uint64_t bytes_needed;    /* bundle_index_bytes_needed(): the index file not included */
};

/*
 * Parses and validates an index. Every problem goes to report; the result
 * is MLB_EINPUT (or -ENOMEM) when any was found, and then out is released.
 * An unknown formatVersion is reported as such before anything else.
 */
int bundle_index_parse(const char *data, size_t len, struct bundle_index *out,
		       struct bundle_report *report);
void bundle_index_release(struct bundle_index *index);
/* Writes the canonical YAML text of an index (the bytes a build stores). */
int bundle_index_write(const struct bundle_index *index, struct buf *out);
/* Finds a file by its unpacked or its stored path; NULL when absent. */
const struct bundle_file *bundle_index_find_file(const struct bundle_index *index, const char *path);
const struct bundle_image *bundle_index_find_image(const struct bundle_index *index, const char *name);
/*
 * Computes the disk space an unpack of the index's files takes: each file
 * and each folder rounded up to BUNDLE_DISK_BLOCK (an empty file counts one
 * block). The index file itself is not included. -EOVERFLOW on overflow.
 */
int bundle_index_bytes_needed(const struct bundle_index *index, uint64_t *out);

/* --- SHA256SUMS ------------------------------------------------------- */

struct bundle_sum {
	char *path;
	unsigned char sha256[SHA256_BYTES];
};

struct bundle_sums {
	struct bundle_sum *lines;    /* in file order */
	size_t count;
};

/*
 * Parses coreutils-format lines "HEX  PATH\n": 64 lowercase hex digits, two
 * spaces, a valid path. The first line must name the index, and the other
 * paths must be unique and in strictly increasing byte order. Every bad line
 * is reported (with its number); the result is then MLB_EINTEGRITY.
 */
int bundle_sums_parse(const char *data, size_t len, struct bundle_sums *out,
		      struct bundle_report *report);
void bundle_sums_release(struct bundle_sums *sums);

/* --- Writing a bundle --------------------------------------------------- */

struct bundle_writer;

/* Flags of the bundle_writer_add_file*() functions. */
enum bundle_add_flags {
	/* Compress with zstd, unless the data already starts with the magic
	 * bytes of gzip, zstd, xz, bzip2 or zip or compressing saves nothing. */
	BUNDLE_ADD_COMPRESS = 1 << 0,
	BUNDLE_ADD_EXECUTABLE = 1 << 1,     /* mode 0755 instead of 0644 */
};

struct bundle_platform_info {
	const char *name;
	const char *version;
	const char *kubernetes_min;
	const char *kubernetes_max;
	const char *const *platforms;
	size_t platform_count;
};

/*
 * Starts a bundle that bundle_writer_finish() writes to path. Nothing is
 * written to path before then; the writer keeps compressed data in an
 * unlinked temporary file beside path, so memory stays bounded. Returns
 * MLB_EINPUT, creating nothing, when path names a symbolic link, folder,
 * device, FIFO or socket (bundle_check_output() reports why).
 */
int bundle_writer_open(const char *path, struct bundle_writer **out);
/*
 * Names a file that the bundle must not replace, such as the catalog or
 * the signing key. The writer adds every source file that it reads by
 * itself. A path that does not exist is skipped.
 */
int bundle_writer_protect(struct bundle_writer *writer, const char *path, const char *role);
/*
 * Checks the output path with the rules of bundle_check_output() against
 * the protected files; MLB_EINPUT, with the reason in
 * bundle_writer_error(), when the bundle may not be written there.
 * bundle_writer_finish() checks again before it writes and before it renames.
 */
int bundle_writer_check_output(struct bundle_writer *writer);
int bundle_writer_set_platform(struct bundle_writer *writer, const struct bundle_platform_info *info);
/* Adds a component; components are kept in the order they are added (apply order). */
int bundle_writer_add_component(struct bundle_writer *writer, const char *name,
				const char *version, const char *namespace);
/*
 * Adds a manifest of a component, stored as components/NAME/manifests/FILE,
 * from memory or from a file. File names must be unique per component.
 */
int bundle_writer_add_manifest(struct bundle_writer *writer, const char *component,
			       const char *file_name, const void *data, size_t len);
int bundle_writer_add_manifest_path(struct bundle_writer *writer, const char *component,
				    const char *file_name, const char *source);
/* Adds a binary for a platform, stored as binaries/OS/ARCH/NAME, mode 0755. */
int bundle_writer_add_binary_path(struct bundle_writer *writer, const char *component,
				  const char *name, const char *platform, const char *source);
/*
 * Adds a file at any path outside images/ from memory or from a file. The
 * file's bytes are hashed when added; a file that changes before
 * bundle_writer_finish() fails the build.
 */
int bundle_writer_add_file(struct bundle_writer *writer, const char *path,
			   const void *data, size_t len, unsigned flags);
int bundle_writer_add_file_path(struct bundle_writer *writer, const char *path,
				const char *source, unsigned flags);
/*
 * Adds the image name of a component from an OCI image layout folder or an
 * OCI archive (a tar of such a folder). When the layout has several
 * images, the one annotated with name (io.containerd.image.name or
 * org.opencontainers.image.ref.name, full name or tag) is taken. Of an
 * image index, the manifests for the bundle's platforms are kept. Every
 * blob is checked against its digest and stored once, whatever the number
 * of images that use it.
 */
int bundle_writer_add_image(struct bundle_writer *writer, const char *component,
			    const char *name, const char *source);
/* The hex sha256 digest of an added image's manifest or index; NULL when not added. */
const char *bundle_writer_image_digest(const struct bundle_writer *writer, const char *name);
/* Adds every image of a layout folder under the name its annotations give. */
int bundle_writer_add_oci_layout(struct bundle_writer *writer, const char *component,
				 const char *dir);
/*
 * Writes the bundle to a temporary file beside the path given to
 * bundle_writer_open(), fsyncs it and renames it over the path. key may be
 * NULL for an unsigned bundle. The same inputs give the same bytes. The
 * output is checked first and again before the rename
 * (bundle_writer_check_output()); the temporary file is removed on any
 * failure, an interruption (bundle_set_interrupt_flag()) included.
 */
int bundle_writer_finish(struct bundle_writer *writer, const struct bundle_key *key);
/* Frees the writer and removes its temporary files; accepts NULL. */
void bundle_writer_free(struct bundle_writer *writer);
/* The message of the last failure, for the caller to log; "" when none. */
const char *bundle_writer_error(const struct bundle_writer *writer);

/*
 * Builds a bundle from a catalog whose sources are local paths (see
 * docs/catalog.md). platforms_filter, when not NULL, is a comma-separated
 * subset of the catalog's platforms. Catalog problems go to report, all of
 * them, with file, line and field; the result is then MLB_EINPUT, as it is
 * for a catalog that cannot be read. Before any source is read, the output
 * is checked with bundle_check_output() against the catalog, its sources
 * and the count inputs (the signing key, say).
 */
int bundle_build_catalog(const char *catalog_path, const char *output, const struct bundle_key *key,
			 const char *platforms_filter, const struct bundle_input *inputs, size_t count,
			 struct bundle_report *report);

/* --- Checking and unpacking --------------------------------------------- */

struct bundle_check_options {
	const struct bundle_trust *trust;
	bool allow_unsigned;   /* accept a bundle without a signature, or with an unchecked one */
	bool fsync;            /* unpack only: flush the files to disk before moving them into place */
};

/*
 * Reads the bundle once: the index, SHA256SUMS and the signature first,
 * then every entry, hashed as it streams (and for compressed entries, also
 * decompressed and hashed as unpacked). Entries that are missing, extra,
 * duplicated, out of order, of the wrong type, size or hash, or with a
 * header that is not canonical are all reported. Memory does not grow
 * with the payload, only with the index. Returns 0 only when nothing was
 * found. A path that names no readable file (missing, a folder, no
 * permission) is MLB_EINPUT and sets report->unreadable; so it is for
 * bundle_unpack() and bundle_reader_open().
 * NOTE: measured peaks (tests/bench/bundle.sh and a 14,500-file index) were
 * 17 MiB for a 1 GiB bundle and 48 MiB for a 3.9 MB index, so an index near
 * BUNDLE_INDEX_MAX may take verify past 64 MiB.
 */
int bundle_verify(const char *path, const struct bundle_check_options *options,
		  struct bundle_report *report);

/*
 * Unpacks into destination, which must be an empty folder or not exist
 * (it is then created). The checks are those of bundle_verify(), in the
 * same pass. After the signature and a free-space check against the index,
 * each file is written under a temporary folder inside destination. Only
 * when every entry checked out are the files moved into place. On failure,
 * an interruption (bundle_set_interrupt_flag(), -EINTR) included,
 * destination is left as it was. Compressed files are written
 * decompressed, under their unpacked paths, with the index as
 * mlboot-bundle.yaml. Like tar, unpack leaves flushing to the kernel
 * unless options->fsync is set, so after a power cut the files may be
 * incomplete without it.
 *
 * destination is locked with flock() while the unpack runs; a second
 * unpack into it fails with -EBUSY. Staging folders that an unpack killed
 * before its cleanup left in an unlocked destination, and that this user
 * owns, are removed first, each recorded in report->notes. Any other
 * entry fails the unpack with -ENOTEMPTY and a message naming it. A
 * destination that is not a folder and a bundle that cannot be read are
 * MLB_EINPUT.
 */
int bundle_unpack(const char *path, const char *destination,
		  const struct bundle_check_options *options, struct bundle_report *report);

/* --- Reading entries straight from a bundle ------------------------------- */

struct bundle_reader;

/*
 * Opens a bundle for reading single files: checks the signature as
 * bundle_verify() does, parses the index and walks the tar headers (without
 * reading contents) to find each entry. Contents are checked when streamed.
 */
int bundle_reader_open(const char *path, const struct bundle_check_options *options,
		       struct bundle_reader **out, struct bundle_report *report);
const struct bundle_index *bundle_reader_index(const struct bundle_reader *reader);
/* Finds a file by unpacked or stored path; NULL when absent. */
const struct bundle_file *bundle_reader_find(const struct bundle_reader *reader, const char *path);

/* Receives unpacked bytes; a negative return stops the stream with that result. */
typedef int (*bundle_data_callback)(void *context, const void *data, size_t len);

/*
 * Streams a file's unpacked bytes to callback, in chunks of at most 1 MiB.
 * The callback receives bytes before the hash at the end is checked, so
 * treat them as untrusted until this returns 0. MLB_EINTEGRITY when the size or
 * hash is wrong.
 */
int bundle_reader_stream(struct bundle_reader *reader, const struct bundle_file *file,
			 bundle_data_callback callback, void *context);
void bundle_reader_close(struct bundle_reader *reader);

#endif
