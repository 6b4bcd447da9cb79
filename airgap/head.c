/*
 * The leading entries of a bundle: the index, SHA256SUMS and the signature.
 * They are read whole (each under its own size limit), the signature is
 * checked before either text is parsed, and the index is then matched
 * against SHA256SUMS line by line.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "airgap-internal.h"

void bundle_head_init(struct bundle_head *head)
{
	memset(head, 0, sizeof(*head));
	buf_init(&head->index_data, BUNDLE_INDEX_MAX);
	buf_init(&head->sums_data, BUNDLE_SUMS_MAX);
	buf_init(&head->pending_raw, TAR_PAX_MAX + 2 * TAR_BLOCK);
}

void bundle_head_release(struct bundle_head *head)
{
	if (!head)
		return;
	buf_release(&head->index_data);
	buf_release(&head->sums_data);
	buf_release(&head->pending_raw);
	bundle_sums_release(&head->sums);
	bundle_index_release(&head->index);
	free(head->file_of_line);
	head->file_of_line = NULL;
	head->have_index = false;
}

/* Reads the data of a leading entry, which must be name, a canonical 0644 file of at most max bytes. */
static int read_leading(struct input *in, const struct tar_entry *entry, const struct buf *raw, const char *name,
			size_t max, struct buf *out, struct bundle_report *report)
{
	const char *field = NULL;
	struct escaped shown;
	int r;

	if (strcmp(entry->path, name) != 0 || entry->path_len != strlen(name))
		return bundle_report_add(report, MLB_EINTEGRITY,
					 "the entry at byte %llu is '%s', expected '%s': this is not an mlboot bundle, or its entries are out of order",
					 (unsigned long long)entry->header_offset, escape_name(&shown, entry->path), name);
	if (entry->typeflag != '0')
		return bundle_report_add(report, MLB_EINTEGRITY, "'%s' is a %s, expected a regular file", name,
					 tar_type_name(entry->typeflag));
	if (entry->size > max)
		return bundle_report_add(report, MLB_EINTEGRITY, "'%s' is larger than %zu bytes", name, max);
	if (entry->mode != 0644 || !tar_header_is_canonical(entry, raw, &field))
		return bundle_report_add(report, MLB_EINTEGRITY,
					 "the tar header of '%s' is not in canonical form (field '%s')", name,
					 field ? field : "mode");
	r = buf_reserve(out, (size_t)entry->size);
	if (r < 0)
		return r;
	r = input_read(in, out->data, (size_t)entry->size);
	if (r == 0) {
		unsigned char padding[TAR_BLOCK];
		size_t padding_len = tar_padding(entry->size);

		out->len = (size_t)entry->size;
		out->data[out->len] = '\0';
		r = input_read(in, padding, padding_len);
		for (size_t i = 0; r == 0 && i < padding_len; i++)
			if (padding[i])
				return bundle_report_add(report, MLB_EINTEGRITY, "'%s' is followed by non-zero padding",
							 name);
	}
	if (r == -ENODATA)
		return bundle_report_add(report, MLB_EINTEGRITY, "the archive is truncated inside '%s'", name);
	if (r < 0)
		return bundle_report_errno(report, r, "failed to read '%s'", name);
	return 0;
}

static int next_entry(struct input *in, struct tar_entry *entry, struct buf *raw, struct bundle_report *report)
{
	char message[256];
	int r = tar_next(in, entry, raw, message, sizeof(message));

	if (r < 0)
		return bundle_report_add(report, r, "%s", message);
	return r;
}

/* Pairs each SHA256SUMS line after the first with its index file; both are sorted by stored path. */
static int match_sums(struct bundle_head *head, struct bundle_report *report)
{
	const struct bundle_index *index = &head->index;
	const struct bundle_sums *sums = &head->sums;
	size_t line = 1, file = 0;
	int r = 0;

	head->file_of_line = calloc(sums->count + 1, sizeof(*head->file_of_line));
	if (!head->file_of_line)
		return -ENOMEM;
	while (line < sums->count || file < index->file_count) {
		int order;
		struct escaped shown;

		if (line == sums->count)
			order = 1;
		else if (file == index->file_count)
			order = -1;
		else
			order = strcmp(sums->lines[line].path, index->files[file].stored_path);

		if (order < 0) {
			r = bundle_report_add(report, MLB_EINTEGRITY, "SHA256SUMS lists '%s', which the index does not",
					      escape_name(&shown, sums->lines[line].path));
			line++;
		} else if (order > 0) {
			r = bundle_report_add(report, MLB_EINTEGRITY, "the index lists '%s', which SHA256SUMS does not",
					      escape_name(&shown, index->files[file].stored_path));
			file++;
		} else {
			if (memcmp(sums->lines[line].sha256, index->files[file].stored_sha256, SHA256_BYTES) != 0)
				r = bundle_report_add(report, MLB_EINTEGRITY,
						      "SHA256SUMS and the index give different sha256 for '%s'",
						      escape_name(&shown, sums->lines[line].path));
			head->file_of_line[line] = file;
			line++;
			file++;
		}
	}
	return r;
}

int bundle_head_read(struct bundle_head *head, struct input *in, const struct bundle_check_options *options,
		     struct bundle_report *report)
{
	struct buf raw = BUF_INIT(TAR_PAX_MAX + 2 * TAR_BLOCK);
	struct buf signature = BUF_INIT(BUNDLE_SIGNATURE_MAX);
	unsigned char digest[SHA256_BYTES];
	struct tar_entry *entry = &head->pending;
	bool signed_bundle = false;
	int r;

	r = next_entry(in, entry, &raw, report);
	if (r == 0)
		r = bundle_report_add(report, MLB_EINTEGRITY, "the archive has no entries: not an mlboot bundle");
	if (r < 0)
		goto out;
	r = read_leading(in, entry, &raw, BUNDLE_INDEX_NAME, BUNDLE_INDEX_MAX, &head->index_data, report);
	if (r < 0)
		goto out;

	r = next_entry(in, entry, &raw, report);
	if (r == 0)
		r = bundle_report_add(report, MLB_EINTEGRITY, "the archive ends after the index: %s is missing",
				      BUNDLE_SUMS_NAME);
	if (r < 0)
		goto out;
	r = read_leading(in, entry, &raw, BUNDLE_SUMS_NAME, BUNDLE_SUMS_MAX, &head->sums_data, report);
	if (r < 0)
		goto out;

	/* The third entry is the signature, or already payload when the bundle is unsigned. */
	r = next_entry(in, entry, &head->pending_raw, report);
	if (r < 0)
		goto out;
	if (r == 1 && strcmp(entry->path, BUNDLE_SIGNATURE_NAME) == 0) {
		r = read_leading(in, entry, &head->pending_raw, BUNDLE_SIGNATURE_NAME, BUNDLE_SIGNATURE_MAX,
				 &signature, report);
		if (r < 0)
			goto out;
		signed_bundle = true;
	} else {
		head->have_pending = r == 1;
	}

	r = bundle_signature_check(options, signed_bundle ? signature.data : NULL, signature.len,
				   head->sums_data.data, head->sums_data.len, report);
	if (r < 0)
		goto out;
	r = bundle_sums_parse(head->sums_data.data, head->sums_data.len, &head->sums, report);
	if (r < 0)
		goto out;
	r = sha256_digest(head->index_data.data, head->index_data.len, digest);
	if (r < 0)
		goto out;
	if (memcmp(digest, head->sums.lines[0].sha256, SHA256_BYTES) != 0) {
		r = bundle_report_add(report, MLB_EINTEGRITY, "%s does not match its sha256 in %s", BUNDLE_INDEX_NAME,
				      BUNDLE_SUMS_NAME);
		goto out;
	}
	r = bundle_index_parse(head->index_data.data, head->index_data.len, &head->index, report);
	if (r < 0)
		goto out;
	head->have_index = true;
	r = match_sums(head, report);
out:
	buf_release(&raw);
	buf_release(&signature);
	return r;
}
