/*
 * Reading single files straight from a bundle. Opening checks the head
 * (signature included) and walks every tar header with the checks of a
 * verify, skipping the data with lseek, to learn where each entry's data
 * starts. Streaming a file reads it with pread and checks its size and
 * hashes at the end.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "airgap-internal.h"

/* The header walk reads headers only, so a small buffer is enough. */
#define READER_BUFFER (64u * 1024)

struct bundle_reader {
	struct input in;
	struct bundle_head head;
	uint64_t *offsets;          /* per index file: where its data starts */
	ZSTD_DCtx *decoder;
	unsigned char *out_buffer;
	unsigned char *read_buffer;
};

static int record_offset(void *context, const struct bundle_file *file, uint64_t data_offset,
			 bundle_data_callback *callback, void **callback_context)
{
	struct bundle_reader *reader = context;

	reader->offsets[file - reader->head.index.files] = data_offset;
	*callback = NULL;
	*callback_context = NULL;
	return 0;
}

static int ignore_close(void *context, const struct bundle_file *file, bool ok)
{
	(void)context;
	(void)file;
	(void)ok;
	return 0;
}

int bundle_reader_open(const char *path, const struct bundle_check_options *options,
		       struct bundle_reader **out, struct bundle_report *report)
{
	struct bundle_reader *reader = calloc(1, sizeof(*reader));
	struct payload_sink sink = { record_offset, ignore_close, reader };
	int r;

	if (!reader)
		return -ENOMEM;
	bundle_head_init(&reader->head);
	reader->in.fd = -1;
	r = bundle_input_open(&reader->in, path, READER_BUFFER, report);
	if (r < 0)
		goto out;
	r = bundle_head_read(&reader->head, &reader->in, options, report);
	if (r < 0)
		goto out;
	r = -ENOMEM;
	reader->offsets = calloc(reader->head.index.file_count + 1, sizeof(*reader->offsets));
	reader->decoder = bundle_decoder_new();
	reader->out_buffer = malloc(BUNDLE_CHUNK);
	reader->read_buffer = malloc(BUNDLE_CHUNK);
	if (!reader->offsets || !reader->decoder || !reader->out_buffer || !reader->read_buffer)
		goto out;
	r = bundle_scan_payload(&reader->in, &reader->head, false, &sink, report);
	if (r < 0)
		goto out;
	*out = reader;
	reader = NULL;
out:
	bundle_reader_close(reader);
	return r;
}

const struct bundle_index *bundle_reader_index(const struct bundle_reader *reader)
{
	return &reader->head.index;
}

const struct bundle_file *bundle_reader_find(const struct bundle_reader *reader, const char *path)
{
	return bundle_index_find_file(&reader->head.index, path);
}

int bundle_reader_stream(struct bundle_reader *reader, const struct bundle_file *file,
			 bundle_data_callback callback, void *context)
{
	struct bundle_report report;
	struct entry_check check;
	uint64_t offset, left;
	int r;

	if (file < reader->head.index.files || file >= reader->head.index.files + reader->head.index.file_count)
		return -EINVAL;
	offset = reader->offsets[file - reader->head.index.files];
	left = file->stored_size;
	bundle_report_init(&report);
	r = entry_check_begin(&check, file, reader->decoder, reader->out_buffer, callback, context);
	if (r < 0)
		return r;
	while (left > 0) {
		size_t want = left < BUNDLE_CHUNK ? (size_t)left : BUNDLE_CHUNK;
		ssize_t n = pread(reader->in.fd, reader->read_buffer, want, (off_t)offset);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = -errno;
			goto out;
		}
		if (n == 0) {
			r = MLB_EINTEGRITY;
			goto out;
		}
		r = entry_check_feed(&check, reader->read_buffer, (size_t)n);
		if (r < 0)
			goto out;
		offset += (uint64_t)n;
		left -= (uint64_t)n;
	}
	r = entry_check_end(&check, file->stored_path, &report);
out:
	entry_check_release(&check);
	bundle_report_release(&report);
	return r;
}

void bundle_reader_close(struct bundle_reader *reader)
{
	if (!reader)
		return;
	input_close(&reader->in);
	bundle_head_release(&reader->head);
	free(reader->offsets);
	ZSTD_freeDCtx(reader->decoder);
	free(reader->out_buffer);
	free(reader->read_buffer);
	free(reader);
}
