/*
 * Checking one entry's bytes as they stream: the SHA-256 and size of the
 * stored bytes and, for a zstd entry, of the decompressed bytes.
 * Decompression stops one byte past the size the index records, so a zstd
 * bomb costs no more than that.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "airgap-internal.h"

ZSTD_DCtx *bundle_decoder_new(void)
{
	ZSTD_DCtx *decoder = ZSTD_createDCtx();

	if (!decoder)
		return NULL;
	if (ZSTD_isError(ZSTD_DCtx_setParameter(decoder, ZSTD_d_windowLogMax, BUNDLE_ZSTD_WINDOW_LOG))) {
		ZSTD_freeDCtx(decoder);
		return NULL;
	}
	return decoder;
}

int entry_check_begin(struct entry_check *check, const struct bundle_file *file,
		      ZSTD_DCtx *decoder, unsigned char *out_buffer,
		      bundle_data_callback sink, void *sink_context)
{
	int r;

	memset(check, 0, sizeof(*check));
	check->file = file;
	check->decoder = decoder;
	check->out_buffer = out_buffer;
	check->sink = sink;
	check->sink_context = sink_context;
	r = sha256_init(&check->stored_hash);
	if (r < 0)
		return r;
	if (file->compression == BUNDLE_COMPRESSION_ZSTD) {
		r = sha256_init(&check->unpacked_hash);
		if (r < 0) {
			sha256_release(&check->stored_hash);
			return r;
		}
		ZSTD_DCtx_reset(decoder, ZSTD_reset_session_only);
	}
	return 0;
}

void entry_check_release(struct entry_check *check)
{
	sha256_release(&check->stored_hash);
	sha256_release(&check->unpacked_hash);
}

/* Decompresses stored bytes, hashing and passing on what comes out. */
static int decompress(struct entry_check *check, const unsigned char *data, size_t len)
{
	ZSTD_inBuffer input = { data, len, 0 };
	bool output_full = false;

	/* A full output buffer means the decoder may hold more, even with no input left. */
	while ((input.pos < input.size || output_full) && !check->too_large && !check->zstd_error) {
		ZSTD_outBuffer output = { check->out_buffer, BUNDLE_CHUNK, 0 };
		uint64_t room = check->file->size - check->unpacked_seen;
		size_t result;
		int r;

		/* One byte past the recorded size is enough to tell that it is too large. */
		if (room < BUNDLE_CHUNK)
			output.size = (size_t)room + 1;
		result = ZSTD_decompressStream(check->decoder, &output, &input);
		if (ZSTD_isError(result)) {
			check->zstd_error = true;
			snprintf(check->zstd_message, sizeof(check->zstd_message), "%s",
				 ZSTD_getErrorName(result));
			break;
		}
		check->frame_done = result == 0;
		if (output.pos > room) {
			check->too_large = true;
			break;
		}
		output_full = output.pos == output.size;
		check->unpacked_seen += output.pos;
		if (output.pos == 0)
			continue;
		r = sha256_update(&check->unpacked_hash, check->out_buffer, output.pos);
		if (r < 0)
			return r;
		if (check->sink) {
			r = check->sink(check->sink_context, check->out_buffer, output.pos);
			if (r < 0)
				return r;
		}
	}
	return 0;
}

int entry_check_feed(struct entry_check *check, const void *data, size_t len)
{
	const unsigned char *bytes = data;
	int r;

	if (len == 0)
		return 0;
	r = sha256_update(&check->stored_hash, data, len);
	if (r < 0)
		return r;
	check->stored_seen += len;

	if (check->file->compression == BUNDLE_COMPRESSION_NONE) {
		if (check->stored_seen > check->file->size) {
			check->too_large = true;
			return 0;
		}
		return check->sink ? check->sink(check->sink_context, data, len) : 0;
	}

	if (check->bad_magic || check->too_large || check->zstd_error)
		return 0;
	/* The magic bytes decide that this is zstd data; the entry's name never does. */
	while (check->magic_len < 4 && len > 0) {
		check->magic[check->magic_len++] = *bytes++;
		len--;
		if (check->magic_len == 4) {
			static const unsigned char magic[4] = { ZSTD_MAGIC_0, ZSTD_MAGIC_1, ZSTD_MAGIC_2, ZSTD_MAGIC_3 };

			if (memcmp(check->magic, magic, 4) != 0) {
				check->bad_magic = true;
				return 0;
			}
			r = decompress(check, check->magic, 4);
			if (r < 0)
				return r;
		}
	}
	if (len == 0)
		return 0;
	return decompress(check, bytes, len);
}

int entry_check_end(struct entry_check *check, const char *display, struct bundle_report *report)
{
	const struct bundle_file *file = check->file;
	unsigned char digest[SHA256_BYTES];
	char expected[SHA256_HEX_LEN + 1], actual[SHA256_HEX_LEN + 1];
	int r, result = 0;

	r = sha256_final(&check->stored_hash, digest);
	if (r < 0)
		return r;
	if (check->stored_seen != file->stored_size) {
		return bundle_report_add(report, MLB_EINTEGRITY,
					 "'%s': size is %llu bytes, the index records %llu",
					 display, (unsigned long long)check->stored_seen,
					 (unsigned long long)file->stored_size);
	}
	if (memcmp(digest, file->stored_sha256, SHA256_BYTES) != 0) {
		sha256_to_hex(file->stored_sha256, expected);
		sha256_to_hex(digest, actual);
		return bundle_report_add(report, MLB_EINTEGRITY, "'%s': sha256 mismatch: expected %s, got %s",
					 display, expected, actual);
	}
	if (file->compression == BUNDLE_COMPRESSION_NONE)
		return 0;

	if (check->bad_magic || check->magic_len < 4) {
		result = bundle_report_add(report, MLB_EINTEGRITY,
					   "'%s': recorded as zstd-compressed, but the data does not start with the zstd magic bytes",
					   display);
	} else if (check->too_large) {
		result = bundle_report_add(report, MLB_EINTEGRITY,
					   "'%s': decompresses to more than the %llu bytes the index records (stopped there)",
					   display, (unsigned long long)file->size);
	} else if (check->zstd_error) {
		result = bundle_report_add(report, MLB_EINTEGRITY, "'%s': invalid zstd data: %s", display,
					   check->zstd_message);
	} else if (!check->frame_done) {
		result = bundle_report_add(report, MLB_EINTEGRITY, "'%s': the zstd data ends inside a frame",
					   display);
	} else if (check->unpacked_seen != file->size) {
		result = bundle_report_add(report, MLB_EINTEGRITY,
					   "'%s': decompresses to %llu bytes, the index records %llu", display,
					   (unsigned long long)check->unpacked_seen, (unsigned long long)file->size);
	}
	if (result < 0)
		return result;
	r = sha256_final(&check->unpacked_hash, digest);
	if (r < 0)
		return r;
	if (memcmp(digest, file->sha256, SHA256_BYTES) != 0) {
		sha256_to_hex(file->sha256, expected);
		sha256_to_hex(digest, actual);
		return bundle_report_add(report, MLB_EINTEGRITY,
					 "'%s': sha256 of the decompressed data mismatch: expected %s, got %s",
					 display, expected, actual);
	}
	return 0;
}
