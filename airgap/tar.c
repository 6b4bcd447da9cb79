/*
 * The bundle's tar layer. mlboot writes its headers itself, so that a
 * bundle's bytes depend only on its inputs and not on a library version.
 * It reads them strictly, so that a reader can require each header to be
 * exactly the canonical encoding of the entry's name, size and mode.
 *
 * Canonical form of a regular file entry: when the path is longer than 100
 * bytes or the size does not fit 11 octal digits, a pax extended header
 * ('x', name "././@PaxHeader") with a "path" and then a "size" record as
 * needed; then a ustar header with the first 100 bytes of the path, mode,
 * uid 0, gid 0, size (0 when the pax header has it), mtime 0, typeflag '0',
 * magic "ustar" version "00", empty user and group names and device
 * numbers 0. Numbers are zero-padded octal ending in a NUL, as GNU tar
 * writes them.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "airgap-internal.h"

/* Offsets of the ustar header fields. */
enum {
	FIELD_NAME = 0,
	FIELD_MODE = 100,
	FIELD_UID = 108,
	FIELD_GID = 116,
	FIELD_SIZE = 124,
	FIELD_MTIME = 136,
	FIELD_CHECKSUM = 148,
	FIELD_TYPEFLAG = 156,
	FIELD_LINKNAME = 157,
	FIELD_MAGIC = 257,
	FIELD_VERSION = 263,
	FIELD_UNAME = 265,
	FIELD_GNAME = 297,
	FIELD_DEVMAJOR = 329,
	FIELD_DEVMINOR = 337,
	FIELD_PREFIX = 345,
};

static void put_octal(unsigned char *field, size_t width, uint64_t value)
{
	/* width - 1 digits and a NUL; callers keep value in range. */
	for (size_t i = width - 1; i-- > 0;) {
		field[i] = (unsigned char)('0' + (value & 7));
		value >>= 3;
	}
	field[width - 1] = '\0';
}

static void ustar_finish(unsigned char block[TAR_BLOCK])
{
	unsigned sum = 0;

	memset(block + FIELD_CHECKSUM, ' ', 8);
	for (size_t i = 0; i < TAR_BLOCK; i++)
		sum += block[i];
	put_octal(block + FIELD_CHECKSUM, 7, sum);
	block[FIELD_CHECKSUM + 7] = ' ';
}

static void ustar_fill(unsigned char block[TAR_BLOCK], const char *name, size_t name_len,
		       uint64_t size, unsigned mode, char typeflag)
{
	memset(block, 0, TAR_BLOCK);
	memcpy(block + FIELD_NAME, name, name_len > 100 ? 100 : name_len);
	put_octal(block + FIELD_MODE, 8, mode);
	put_octal(block + FIELD_UID, 8, 0);
	put_octal(block + FIELD_GID, 8, 0);
	put_octal(block + FIELD_SIZE, 12, size);
	put_octal(block + FIELD_MTIME, 12, 0);
	block[FIELD_TYPEFLAG] = (unsigned char)typeflag;
	memcpy(block + FIELD_MAGIC, "ustar", 6);
	memcpy(block + FIELD_VERSION, "00", 2);
	put_octal(block + FIELD_DEVMAJOR, 8, 0);
	put_octal(block + FIELD_DEVMINOR, 8, 0);
	ustar_finish(block);
}

/* Appends one pax record "LEN key=value\n", LEN counting the whole record. */
static int pax_record(struct buf *out, const char *key, const char *value, size_t value_len)
{
	size_t body = 1 + strlen(key) + 1 + value_len + 1;
	size_t total = body, digits;
	char prefix[32];

	for (;;) {
		digits = (size_t)snprintf(prefix, sizeof(prefix), "%zu", total);
		if (body + digits == total)
			break;
		total = body + digits;
	}
	if (buf_printf(out, "%zu %s=", total, key) < 0 || buf_append(out, value, value_len) < 0 ||
	    buf_append_char(out, '\n') < 0)
		return -E2BIG;
	return 0;
}

size_t tar_padding(uint64_t size)
{
	return (size_t)((TAR_BLOCK - size % TAR_BLOCK) % TAR_BLOCK);
}

int tar_header_encode(const char *path, uint64_t size, unsigned mode, struct buf *out)
{
	size_t path_len = strlen(path);
	bool pax_path = path_len > 100, pax_size = size > TAR_USTAR_SIZE_MAX;
	unsigned char block[TAR_BLOCK];
	int r;

	if (pax_path || pax_size) {
		struct buf records = BUF_INIT(TAR_PAX_MAX);
		char number[32];

		r = 0;
		if (pax_path)
			r = pax_record(&records, "path", path, path_len);
		if (r == 0 && pax_size) {
			int n = snprintf(number, sizeof(number), "%llu", (unsigned long long)size);

			r = pax_record(&records, "size", number, (size_t)n);
		}
		if (r == 0) {
			ustar_fill(block, TAR_PAX_NAME, strlen(TAR_PAX_NAME), records.len, 0644, 'x');
			r = buf_append(out, block, TAR_BLOCK);
		}
		if (r == 0)
			r = buf_append(out, records.data, records.len);
		if (r == 0) {
			static const unsigned char zeros[TAR_BLOCK];

			r = buf_append(out, zeros, tar_padding(records.len));
		}
		buf_release(&records);
		if (r < 0)
			return r;
	}
	ustar_fill(block, path, path_len, pax_size ? 0 : size, mode, '0');
	return buf_append(out, block, TAR_BLOCK);
}

/* --- Input ------------------------------------------------------------- */

int input_open(struct input *in, const char *path, size_t capacity)
{
	struct stat st;

	memset(in, 0, sizeof(*in));
	in->fd = -1;
	in->buffer = malloc(capacity);
	if (!in->buffer)
		return -ENOMEM;
	in->capacity = capacity;
	in->fd = open(path, O_RDONLY | O_CLOEXEC);
	if (in->fd < 0) {
		int r = -errno;

		free(in->buffer);
		in->buffer = NULL;
		return r;
	}
	if (fstat(in->fd, &st) == 0 && S_ISDIR(st.st_mode)) {
		input_close(in);
		return -EISDIR;
	}
	(void)posix_fadvise(in->fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	return 0;
}

int bundle_input_open(struct input *in, const char *path, size_t capacity, struct bundle_report *report)
{
	int r = input_open(in, path, capacity);

	switch (r) {
	case 0:
	case -ENOMEM:
		return r;
	case -ENOENT:
	case -ENOTDIR:
	case -EISDIR:
	case -EACCES:
	case -EPERM:
	case -ELOOP:
	case -ENAMETOOLONG:
	case -ENXIO:
		report->unreadable = true;
		return bundle_report_add(report, MLB_EINPUT, "cannot read the bundle file: %s", mlb_strerror(r));
	default:
		report->unreadable = true;
		return bundle_report_errno(report, r, "failed to open the bundle file");
	}
}

void input_close(struct input *in)
{
	if (in->fd >= 0)
		close(in->fd);
	in->fd = -1;
	free(in->buffer);
	in->buffer = NULL;
}

static int input_fill(struct input *in)
{
	ssize_t n;

	if (in->start == in->end) {
		in->start = 0;
		in->end = 0;
	}
	if (in->eof || in->end == in->capacity)
		return 0;
	/* A read from a pipe that a signal interrupts is retried unless the signal asked to stop. */
	do {
		n = read(in->fd, in->buffer + in->end, in->capacity - in->end);
	} while (n < 0 && errno == EINTR && !bundle_interrupted());
	if (n < 0)
		return -errno;
	if (n == 0)
		in->eof = true;
	in->end += (size_t)n;
	return 0;
}

int input_next(struct input *in, size_t max, const unsigned char **data, size_t *len)
{
	size_t available;
	int r;

	if (in->start == in->end) {
		r = input_fill(in);
		if (r < 0)
			return r;
	}
	available = in->end - in->start;
	if (available > max)
		available = max;
	*data = in->buffer + in->start;
	*len = available;
	in->start += available;
	in->offset += available;
	return 0;
}

int input_read(struct input *in, void *out, size_t n)
{
	unsigned char *p = out;

	while (n > 0) {
		const unsigned char *data;
		size_t len;
		int r = input_next(in, n, &data, &len);

		if (r < 0)
			return r;
		if (len == 0)
			return -ENODATA;
		memcpy(p, data, len);
		p += len;
		n -= len;
	}
	return 0;
}

int input_seek(struct input *in, uint64_t offset)
{
	if (lseek(in->fd, (off_t)offset, SEEK_SET) < 0)
		return -errno;
	in->start = 0;
	in->end = 0;
	in->eof = false;
	in->offset = offset;
	return 0;
}

int input_skip(struct input *in, uint64_t n)
{
	size_t buffered = in->end - in->start;
	off_t end;

	if (n <= buffered) {
		in->start += (size_t)n;
		in->offset += n;
		return 0;
	}
	end = lseek(in->fd, 0, SEEK_END);
	if (end < 0) {
		/* Not seekable: read and drop. */
		while (n > 0) {
			const unsigned char *data;
			size_t len;
			int r = input_next(in, n > SIZE_MAX ? SIZE_MAX : (size_t)n, &data, &len);

			if (r < 0)
				return r;
			if (len == 0)
				return -ENODATA;
			n -= len;
		}
		return 0;
	}
	if (in->offset + n > (uint64_t)end) {
		int r = input_seek(in, (uint64_t)end);

		return r < 0 ? r : -ENODATA;
	}
	return input_seek(in, in->offset + n);
}

/* --- Strict reading ------------------------------------------------------ */

const char *tar_type_name(char typeflag)
{
	switch (typeflag) {
	case '0':
	case '\0':
		return "regular file";
	case '1':
		return "hard link";
	case '2':
		return "symbolic link";
	case '3':
		return "character device";
	case '4':
		return "block device";
	case '5':
		return "directory";
	case '6':
		return "FIFO";
	case '7':
		return "contiguous file";
	case 'g':
		return "global pax header";
	case 'x':
		return "pax extended header";
	case 'L':
	case 'K':
		return "GNU long name header";
	case 'S':
		return "GNU sparse file";
	default:
		return "entry of unknown type";
	}
}

static bool block_is_zero(const unsigned char block[TAR_BLOCK])
{
	for (size_t i = 0; i < TAR_BLOCK; i++)
		if (block[i])
			return false;
	return true;
}

/* Parses an octal or base-256 number field; false when invalid. */
static bool parse_number(const unsigned char *field, size_t width, uint64_t *out)
{
	uint64_t value = 0;
	size_t i = 0;

	if (field[0] & 0x80) {
		/* Base-256: a positive big-endian number after the marker bit. */
		if (field[0] != 0x80)
			return false;
		for (i = 1; i < width; i++) {
			if (value >> 56)
				return false;
			value = value << 8 | field[i];
		}
		*out = value;
		return true;
	}
	while (i < width && field[i] == ' ')
		i++;
	if (i == width || field[i] < '0' || field[i] > '7')
		return false;
	for (; i < width && field[i] >= '0' && field[i] <= '7'; i++) {
		if (value >> 61)
			return false;
		value = value << 3 | (uint64_t)(field[i] - '0');
	}
	for (; i < width; i++)
		if (field[i] != ' ' && field[i] != '\0')
			return false;
	*out = value;
	return true;
}

static bool checksum_is_valid(const unsigned char block[TAR_BLOCK])
{
	uint64_t expected;
	unsigned sum = 0;
	int signed_sum = 0;

	if (!parse_number(block + FIELD_CHECKSUM, 8, &expected))
		return false;
	for (size_t i = 0; i < TAR_BLOCK; i++) {
		unsigned char c = i >= FIELD_CHECKSUM && i < FIELD_CHECKSUM + 8 ? ' ' : block[i];

		sum += c;
		signed_sum += (signed char)c;
	}
	/* Some old writers summed signed chars; both are read, only unsigned is canonical. */
	return expected == sum || (int64_t)expected == signed_sum;
}

static void set_unknown_key_problem(struct tar_entry *entry, const char *key)
{
	if (entry->problem[0])
		return;
	snprintf(entry->problem, sizeof(entry->problem),
		 "has the pax record '%s', which bundles do not use", key);
}

/* Applies the records of a pax extended header to entry. */
static int pax_parse(const char *data, size_t len, struct tar_entry *entry, bool *have_path,
		     bool *have_size, uint64_t *size, char *message, size_t size_message)
{
	size_t pos = 0;

	while (pos < len) {
		size_t record_len = 0, i = pos, key_start, key_len, value_start, value_len;

		while (i < len && data[i] >= '0' && data[i] <= '9' && i - pos < 12)
			record_len = record_len * 10 + (size_t)(data[i++] - '0');
		if (i == pos || i >= len || data[i] != ' ' || record_len == 0 ||
		    record_len > len - pos || data[pos + record_len - 1] != '\n') {
			snprintf(message, size_message, "malformed pax record at byte %zu of a pax header", pos);
			return MLB_EINTEGRITY;
		}
		key_start = i + 1;
		for (i = key_start; i < pos + record_len - 1 && data[i] != '='; i++)
			;
		if (i >= pos + record_len - 1) {
			snprintf(message, size_message, "pax record without '=' at byte %zu of a pax header", pos);
			return MLB_EINTEGRITY;
		}
		key_len = i - key_start;
		value_start = i + 1;
		value_len = pos + record_len - 1 - value_start;

		if (key_len == 4 && memcmp(data + key_start, "path", 4) == 0) {
			entry->path_len = value_len;
			entry->path_has_nul = memchr(data + value_start, '\0', value_len) != NULL;
			if (value_len <= BUNDLE_PATH_MAX) {
				memcpy(entry->path, data + value_start, value_len);
				entry->path[value_len] = '\0';
			} else {
				memcpy(entry->path, data + value_start, BUNDLE_PATH_MAX);
				entry->path[BUNDLE_PATH_MAX] = '\0';
			}
			*have_path = true;
		} else if (key_len == 4 && memcmp(data + key_start, "size", 4) == 0) {
			uint64_t value = 0;
			size_t j;

			for (j = value_start; j < value_start + value_len; j++) {
				if (data[j] < '0' || data[j] > '9' || value > (UINT64_MAX - 9) / 10)
					break;
				value = value * 10 + (uint64_t)(data[j] - '0');
			}
			if (value_len == 0 || j != value_start + value_len) {
				snprintf(message, size_message, "invalid pax size record");
				return MLB_EINTEGRITY;
			}
			*size = value;
			*have_size = true;
		} else {
			char key[64];

			snprintf(key, sizeof(key), "%.*s", (int)(key_len < 48 ? key_len : 48), data + key_start);
			for (char *p = key; *p; p++)
				if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e)
					*p = '?';
			set_unknown_key_problem(entry, key);
		}
		pos += record_len;
	}
	return 0;
}

static int read_block(struct input *in, unsigned char block[TAR_BLOCK], struct buf *raw,
		      char *message, size_t size, const char *what)
{
	int r = input_read(in, block, TAR_BLOCK);

	if (r == -ENODATA) {
		snprintf(message, size, "the archive is truncated: it ends inside %s at byte %llu",
			 what, (unsigned long long)in->offset);
		return MLB_EINTEGRITY;
	}
	if (r < 0) {
		snprintf(message, size, "read failed at byte %llu: %s", (unsigned long long)in->offset,
			 strerror(-r));
		return r;
	}
	if (raw && buf_append(raw, block, TAR_BLOCK) < 0) {
		snprintf(message, size, "header at byte %llu is too large", (unsigned long long)in->offset);
		return MLB_EINTEGRITY;
	}
	return 0;
}

static int end_of_archive(struct input *in, char *message, size_t size)
{
	unsigned char block[TAR_BLOCK];
	const unsigned char *data;
	size_t len;
	int r;

	r = read_block(in, block, NULL, message, size, "the end-of-archive blocks");
	if (r < 0)
		return r;
	if (!block_is_zero(block)) {
		snprintf(message, size, "a lone zero block at byte %llu is followed by data",
			 (unsigned long long)(in->offset - 2 * TAR_BLOCK));
		return MLB_EINTEGRITY;
	}
	r = input_next(in, 1, &data, &len);
	if (r < 0) {
		snprintf(message, size, "read failed: %s", strerror(-r));
		return r;
	}
	if (len != 0) {
		snprintf(message, size, "unexpected data after the end-of-archive blocks at byte %llu",
			 (unsigned long long)(in->offset - 1));
		return MLB_EINTEGRITY;
	}
	return 0;
}

int tar_next(struct input *in, struct tar_entry *entry, struct buf *raw, char *message, size_t size)
{
	unsigned char block[TAR_BLOCK];
	bool have_path = false, have_size = false;
	uint64_t pax_size = 0, field;
	int r;

	memset(entry, 0, sizeof(*entry));
	buf_reset(raw);
	entry->header_offset = in->offset;

	r = read_block(in, block, raw, message, size, "a header");
	if (r < 0)
		return r;
	if (block_is_zero(block)) {
		r = end_of_archive(in, message, size);
		return r < 0 ? r : 0;
	}
	if (!checksum_is_valid(block)) {
		snprintf(message, size, "the header at byte %llu has a wrong checksum: the archive is damaged",
			 (unsigned long long)entry->header_offset);
		return MLB_EINTEGRITY;
	}

	if (block[FIELD_TYPEFLAG] == 'x') {
		uint64_t records_len;
		char *records;

		if (!parse_number(block + FIELD_SIZE, 12, &records_len) || records_len > TAR_PAX_MAX) {
			snprintf(message, size, "the pax header at byte %llu is larger than %u bytes",
				 (unsigned long long)entry->header_offset, TAR_PAX_MAX);
			return MLB_EINTEGRITY;
		}
		records = malloc(records_len + tar_padding(records_len) + 1);
		if (!records)
			return -ENOMEM;
		r = input_read(in, records, records_len + tar_padding(records_len));
		if (r == -ENODATA) {
			snprintf(message, size, "the archive is truncated: it ends inside a pax header");
			r = MLB_EINTEGRITY;
		} else if (r < 0) {
			snprintf(message, size, "read failed: %s", strerror(-r));
		} else if (buf_append(raw, records, records_len + tar_padding(records_len)) < 0) {
			r = -ENOMEM;
		} else {
			r = pax_parse(records, records_len, entry, &have_path, &have_size, &pax_size,
				      message, size);
		}
		free(records);
		if (r < 0)
			return r;

		r = read_block(in, block, raw, message, size, "a header");
		if (r < 0)
			return r;
		if (block_is_zero(block) || !checksum_is_valid(block)) {
			snprintf(message, size, "the header after the pax header at byte %llu is missing or damaged",
				 (unsigned long long)entry->header_offset);
			return MLB_EINTEGRITY;
		}
		if (block[FIELD_TYPEFLAG] == 'x' || block[FIELD_TYPEFLAG] == 'g') {
			snprintf(message, size, "a pax header at byte %llu is followed by another one",
				 (unsigned long long)entry->header_offset);
			return MLB_EINTEGRITY;
		}
	}

	entry->typeflag = (char)block[FIELD_TYPEFLAG];
	if (!have_path) {
		size_t len = strnlen((const char *)block + FIELD_NAME, 100);
		size_t prefix_len = strnlen((const char *)block + FIELD_PREFIX, 155);
		size_t n = 0;

		if (prefix_len && memcmp(block + FIELD_MAGIC, "ustar", 5) == 0) {
			memcpy(entry->path, block + FIELD_PREFIX, prefix_len);
			entry->path[prefix_len] = '/';
			n = prefix_len + 1;
		}
		memcpy(entry->path + n, block + FIELD_NAME, len);
		entry->path_len = n + len;
		entry->path[entry->path_len] = '\0';
	}
	{
		size_t len = strnlen((const char *)block + FIELD_LINKNAME, 100);

		memcpy(entry->linkname, block + FIELD_LINKNAME, len);
		entry->linkname[len] = '\0';
	}
	if (!parse_number(block + FIELD_MODE, 8, &field)) {
		snprintf(message, size, "the header at byte %llu has an invalid mode field",
			 (unsigned long long)entry->header_offset);
		return MLB_EINTEGRITY;
	}
	entry->mode = (unsigned)(field & 07777777);
	if (have_size) {
		entry->size = pax_size;
	} else if (!parse_number(block + FIELD_SIZE, 12, &entry->size)) {
		snprintf(message, size, "the header at byte %llu has an invalid size field",
			 (unsigned long long)entry->header_offset);
		return MLB_EINTEGRITY;
	}
	/*
	 * ustar gives links, devices, folders and FIFOs no data, so none is
	 * skipped. A hostile size field then only breaks the next header.
	 */
	if (strchr("123456", entry->typeflag) && entry->typeflag)
		entry->size = 0;
	entry->data_offset = in->offset;
	return 1;
}

bool tar_header_is_canonical(const struct tar_entry *entry, const struct buf *raw, const char **field)
{
	static const struct {
		size_t start;
		const char *name;
	} fields[] = {
		{ FIELD_NAME, "name" }, { FIELD_MODE, "mode" }, { FIELD_UID, "uid" },
		{ FIELD_GID, "gid" }, { FIELD_SIZE, "size" }, { FIELD_MTIME, "mtime" },
		{ FIELD_CHECKSUM, "checksum" }, { FIELD_TYPEFLAG, "typeflag" },
		{ FIELD_LINKNAME, "linkname" }, { FIELD_MAGIC, "magic" },
		{ FIELD_VERSION, "version" }, { FIELD_UNAME, "uname" }, { FIELD_GNAME, "gname" },
		{ FIELD_DEVMAJOR, "devmajor" }, { FIELD_DEVMINOR, "devminor" },
		{ FIELD_PREFIX, "prefix" }, { 500, "padding" },
	};
	struct buf expected = BUF_INIT(TAR_PAX_MAX + 2 * TAR_BLOCK);
	size_t header_start, diff;
	bool same;

	*field = "header";
	if (entry->path_len > BUNDLE_PATH_MAX || entry->path_has_nul)
		return false;
	if (tar_header_encode(entry->path, entry->size, entry->mode, &expected) < 0) {
		buf_release(&expected);
		return false;
	}
	same = expected.len == raw->len && memcmp(expected.data, raw->data, raw->len) == 0;
	if (same) {
		buf_release(&expected);
		return true;
	}
	if (expected.len != raw->len) {
		*field = expected.len > raw->len ? "pax header (missing)" : "pax header (not needed)";
		buf_release(&expected);
		return false;
	}
	for (diff = 0; diff < raw->len && expected.data[diff] == raw->data[diff]; diff++)
		;
	header_start = raw->len - TAR_BLOCK;
	if (diff < header_start) {
		*field = "pax header";
	} else {
		size_t offset = diff - header_start;

		for (size_t i = 0; i < ARRAY_SIZE(fields); i++)
			if (offset >= fields[i].start)
				*field = fields[i].name;
		/* A checksum differs whenever anything else does: name the other field. */
		if (offset >= FIELD_CHECKSUM && offset < FIELD_CHECKSUM + 8) {
			for (size_t j = offset + 8; j < TAR_BLOCK; j++) {
				if (expected.data[header_start + j] == raw->data[header_start + j])
					continue;
				for (size_t i = 0; i < ARRAY_SIZE(fields); i++)
					if (j >= fields[i].start)
						*field = fields[i].name;
				break;
			}
		}
	}
	buf_release(&expected);
	return false;
}
