/*
 * The payload entries of a bundle, read in one pass after the head, and
 * bundle_verify(), which is that pass with nowhere to write to.
 *
 * An entry whose header cannot be trusted (wrong type, name, mode, size,
 * or a header that is not canonical) is reported and its data skipped. The
 * pass goes on so that every problem is reported, and stops early only when
 * the tar structure itself breaks (bad checksum, truncation).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "airgap-internal.h"

struct scan {
	struct input *in;
	struct bundle_head *head;
	const struct payload_sink *sink;
	struct bundle_report *report;
	bool hash_data;
	bool *seen;                 /* per SHA256SUMS line */
	size_t last_line;
	ZSTD_DCtx *decoder;
	unsigned char *out_buffer;
};

/* Position of path among the SHA256SUMS lines after the first; 0 when absent. */
static size_t find_line(const struct bundle_sums *sums, const char *path)
{
	size_t low = 1, high = sums->count;

	while (low < high) {
		size_t middle = low + (high - low) / 2;
		int order = strcmp(sums->lines[middle].path, path);

		if (order == 0)
			return middle;
		if (order < 0)
			low = middle + 1;
		else
			high = middle;
	}
	return 0;
}

/* Skips an entry's data and padding; fatal (negative) only when the archive ends first. */
static int skip_data(struct scan *scan, const struct tar_entry *entry, const char *display)
{
	uint64_t total = entry->size + tar_padding(entry->size);
	int r;

	if (total < entry->size)
		return bundle_report_add(scan->report, MLB_EINTEGRITY, "'%s': size out of range", display);
	r = input_skip(scan->in, total);
	if (r == -ENODATA)
		return bundle_report_add(scan->report, MLB_EINTEGRITY, "the archive is truncated inside '%s'",
					 display);
	if (r < 0)
		return bundle_report_errno(scan->report, r, "failed to read past '%s'", display);
	return 0;
}

/* Reports why an entry's header is unacceptable; 0 when it is acceptable. */
static int check_header(struct scan *scan, const struct tar_entry *entry, const char *display)
{
	const char *reason = NULL;
	struct escaped link;

	if (entry->typeflag == '1' || entry->typeflag == '2')
		return bundle_report_add(scan->report, MLB_EINTEGRITY,
					 "'%s' is a %s to '%s': bundles contain only regular files", display,
					 tar_type_name(entry->typeflag), escape_name(&link, entry->linkname));
	if (entry->typeflag != '0')
		return bundle_report_add(scan->report, MLB_EINTEGRITY,
					 "'%s' is a %s: bundles contain only regular files", display,
					 tar_type_name(entry->typeflag));
	if (entry->path_has_nul)
		return bundle_report_add(scan->report, MLB_EINTEGRITY, "'%s': invalid name: it contains a NUL byte",
					 display);
	if (!bundle_path_is_valid(entry->path, entry->path_len, &reason))
		return bundle_report_add(scan->report, MLB_EINTEGRITY, "'%s': invalid name: %s", display, reason);
	if (entry->problem[0])
		return bundle_report_add(scan->report, MLB_EINTEGRITY, "'%s' %s", display, entry->problem);
	if (entry->mode & 07000)
		return bundle_report_add(scan->report, MLB_EINTEGRITY,
					 "'%s' has mode 0%o: setuid, setgid and sticky bits are not allowed",
					 display, entry->mode);
	return 0;
}

/* Reads an entry's data through the checks and the sink. */
static int stream_data(struct scan *scan, const struct tar_entry *entry, const struct bundle_file *file,
		       const char *display)
{
	bundle_data_callback callback = NULL;
	void *callback_context = NULL;
	struct entry_check check;
	uint64_t left = entry->size;
	bool ok = false;
	int r, k;

	if (scan->sink) {
		r = scan->sink->open(scan->sink->context, file, entry->data_offset, &callback, &callback_context);
		if (r < 0)
			return bundle_report_add(scan->report, r, "'%s': failed to create the file", display);
	}
	if (!scan->hash_data) {
		r = skip_data(scan, entry, display);
		if (scan->sink)
			scan->sink->close(scan->sink->context, file, r == 0);
		return r;
	}

	r = entry_check_begin(&check, file, scan->decoder, scan->out_buffer, callback, callback_context);
	if (r < 0)
		goto out;
	while (left > 0) {
		const unsigned char *data;
		size_t len;

		if (bundle_interrupted()) {
			r = bundle_report_add(scan->report, -EINTR, "interrupted by a signal while reading '%s'", display);
			goto out;
		}
		r = input_next(scan->in, left > SIZE_MAX ? SIZE_MAX : (size_t)left, &data, &len);
		if (r < 0) {
			r = bundle_report_errno(scan->report, r, "failed to read '%s'", display);
			goto out;
		}
		if (len == 0) {
			r = bundle_report_add(scan->report, MLB_EINTEGRITY, "the archive is truncated inside '%s'",
					      display);
			goto out;
		}
		r = entry_check_feed(&check, data, len);
		if (r < 0) {
			r = bundle_report_add(scan->report, r, "'%s': failed to write", display);
			goto out;
		}
		left -= len;
	}
	scan->report->bytes += entry->size;
	k = entry_check_end(&check, display, scan->report);
	ok = k == 0;

	{
		unsigned char padding[TAR_BLOCK];
		size_t padding_len = tar_padding(entry->size);

		r = input_read(scan->in, padding, padding_len);
		if (r == -ENODATA) {
			r = bundle_report_add(scan->report, MLB_EINTEGRITY, "the archive is truncated after '%s'",
					      display);
			goto out;
		}
		if (r < 0)
			goto out;
		for (size_t i = 0; i < padding_len; i++) {
			if (padding[i]) {
				ok = false;
				bundle_report_add(scan->report, MLB_EINTEGRITY, "'%s' is followed by non-zero padding",
						  display);
				break;
			}
		}
	}
out:
	entry_check_release(&check);
	if (scan->sink) {
		k = scan->sink->close(scan->sink->context, file, ok && r == 0);
		if (k < 0 && r == 0)
			r = bundle_report_add(scan->report, k, "'%s': failed to write", display);
	}
	return r;
}

/* Handles one payload entry; a negative result stops the pass. */
static int scan_entry(struct scan *scan, const struct tar_entry *entry, const struct buf *raw)
{
	const struct bundle_sums *sums = &scan->head->sums;
	const struct bundle_file *file;
	const char *field = NULL;
	struct escaped shown;
	const char *display;
	size_t line;
	bool problem = false;

	bundle_escape_name(entry->path, entry->path_len < BUNDLE_PATH_MAX ? entry->path_len : BUNDLE_PATH_MAX,
			   shown.text, sizeof(shown.text));
	display = shown.text;
	scan->report->entries++;

	line = entry->path_len <= BUNDLE_PATH_MAX && !entry->path_has_nul ? find_line(sums, entry->path) : 0;
	if (check_header(scan, entry, display) < 0) {
		/* Reported once: a listed entry with a bad header is not also "missing". */
		if (line)
			scan->seen[line] = true;
		return skip_data(scan, entry, display);
	}

	if (line == 0) {
		if (strcmp(entry->path, BUNDLE_INDEX_NAME) == 0 || strcmp(entry->path, BUNDLE_SUMS_NAME) == 0 ||
		    strcmp(entry->path, BUNDLE_SIGNATURE_NAME) == 0)
			bundle_report_add(scan->report, MLB_EINTEGRITY, "'%s' appears again after the start", display);
		else
			bundle_report_add(scan->report, MLB_EINTEGRITY,
					  "'%s' is not listed in SHA256SUMS: an extra entry", display);
		return skip_data(scan, entry, display);
	}
	if (scan->seen[line]) {
		bundle_report_add(scan->report, MLB_EINTEGRITY, "'%s' appears more than once", display);
		return skip_data(scan, entry, display);
	}
	scan->seen[line] = true;
	if (line < scan->last_line) {
		bundle_report_add(scan->report, MLB_EINTEGRITY, "'%s' is out of order", display);
		problem = true;
	}
	scan->last_line = line;

	file = &scan->head->index.files[scan->head->file_of_line[line]];
	if (entry->mode != file->mode) {
		bundle_report_add(scan->report, MLB_EINTEGRITY, "'%s' has mode 0%o, the index records 0%o", display,
				  entry->mode, file->mode);
		problem = true;
	} else if (!tar_header_is_canonical(entry, raw, &field)) {
		bundle_report_add(scan->report, MLB_EINTEGRITY,
				  "'%s': the tar header is not in canonical form (field '%s')", display, field);
		problem = true;
	}
	if (entry->size != file->stored_size) {
		bundle_report_add(scan->report, MLB_EINTEGRITY, "'%s': size is %llu bytes, the index records %llu",
				  display, (unsigned long long)entry->size, (unsigned long long)file->stored_size);
		return skip_data(scan, entry, display);
	}
	if (problem) {
		const struct payload_sink *sink = scan->sink;
		int r;

		/* Still hashed, so that a wrong hash is reported too, but written nowhere. */
		scan->sink = NULL;
		r = stream_data(scan, entry, file, display);
		scan->sink = sink;
		return r;
	}
	return stream_data(scan, entry, file, display);
}

int bundle_scan_payload(struct input *in, struct bundle_head *head, bool hash_data,
			const struct payload_sink *sink, struct bundle_report *report)
{
	struct scan scan = {
		.in = in, .head = head, .sink = sink, .report = report, .hash_data = hash_data,
	};
	struct buf raw = BUF_INIT(TAR_PAX_MAX + 2 * TAR_BLOCK);
	struct tar_entry entry;
	int r = 0;

	scan.seen = calloc(head->sums.count + 1, sizeof(*scan.seen));
	scan.decoder = bundle_decoder_new();
	scan.out_buffer = malloc(BUNDLE_CHUNK);
	if (!scan.seen || !scan.decoder || !scan.out_buffer) {
		r = -ENOMEM;
		goto out;
	}

	if (head->have_pending) {
		head->have_pending = false;
		r = scan_entry(&scan, &head->pending, &head->pending_raw);
	}
	while (r >= 0) {
		char message[256];

		r = tar_next(in, &entry, &raw, message, sizeof(message));
		if (r < 0) {
			bundle_report_add(report, r, "%s", message);
			break;
		}
		if (r == 0)
			break;
		r = scan_entry(&scan, &entry, &raw);
	}
	if (r >= 0) {
		for (size_t line = 1; line < head->sums.count; line++) {
			struct escaped shown;

			if (!scan.seen[line])
				bundle_report_add(report, MLB_EINTEGRITY, "'%s' is missing from the archive",
						  escape_name(&shown, head->sums.lines[line].path));
		}
	}
out:
	free(scan.seen);
	ZSTD_freeDCtx(scan.decoder);
	free(scan.out_buffer);
	buf_release(&raw);
	if (r < 0)
		return r;
	return report->result;
}

int bundle_verify(const char *path, const struct bundle_check_options *options,
		  struct bundle_report *report)
{
	struct bundle_head head;
	struct input in;
	int r;

	bundle_head_init(&head);
	r = bundle_input_open(&in, path, BUNDLE_READ_BUFFER, report);
	if (r < 0) {
		bundle_head_release(&head);
		return r;
	}
	r = bundle_head_read(&head, &in, options, report);
	if (r >= 0)
		r = bundle_scan_payload(&in, &head, true, NULL, report);
	input_close(&in);
	bundle_head_release(&head);
	if (r < 0)
		return r;
	return report->result;
}
