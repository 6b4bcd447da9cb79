/*
 * SHA256SUMS in the format of coreutils' sha256sum: "HEX  PATH\n" per line.
 * Only the canonical form is read: lowercase hex, two spaces (text mode),
 * no escaped names, every line ending in a newline.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "airgap-internal.h"

void bundle_sums_release(struct bundle_sums *sums)
{
	if (!sums)
		return;
	for (size_t i = 0; i < sums->count; i++)
		free(sums->lines[i].path);
	free(sums->lines);
	sums->lines = NULL;
	sums->count = 0;
}

static bool path_equals(const char *path, size_t len, const char *name)
{
	return len == strlen(name) && memcmp(path, name, len) == 0;
}

static int report_line(struct bundle_report *report, size_t number, const char *line, size_t len,
		       const char *problem)
{
	char shown[128];

	bundle_escape_name(line, len, shown, sizeof(shown));
	return bundle_report_add(report, MLB_EINTEGRITY, "SHA256SUMS line %zu: %s: '%s'", number, problem,
				 shown);
}

int bundle_sums_parse(const char *data, size_t len, struct bundle_sums *out,
		      struct bundle_report *report)
{
	struct bundle_sums sums = { NULL, 0 };
	size_t pos = 0, number = 0, capacity = 0;
	int r = 0;

	if (len > BUNDLE_SUMS_MAX)
		return bundle_report_add(report, MLB_EINTEGRITY, "SHA256SUMS is larger than %u bytes",
					 BUNDLE_SUMS_MAX);
	if (len == 0)
		return bundle_report_add(report, MLB_EINTEGRITY, "SHA256SUMS is empty");

	while (pos < len) {
		const char *line = data + pos, *newline = memchr(line, '\n', len - pos);
		size_t line_len = newline ? (size_t)(newline - line) : len - pos;
		const char *path = line + SHA256_HEX_LEN + 2, *reason = NULL;
		size_t path_len = line_len > SHA256_HEX_LEN + 2 ? line_len - SHA256_HEX_LEN - 2 : 0;
		unsigned char digest[SHA256_BYTES];

		number++;
		pos += line_len + (newline ? 1 : 0);
		if (!newline) {
			r = report_line(report, number, line, line_len, "the last line does not end with a newline");
			continue;
		}
		if (line_len < SHA256_HEX_LEN + 3 || hex_decode_sha256(line, SHA256_HEX_LEN, digest) < 0 ||
		    line[SHA256_HEX_LEN] != ' ' || line[SHA256_HEX_LEN + 1] != ' ') {
			r = report_line(report, number, line, line_len,
					"expected 64 lowercase hex digits, two spaces and a path");
			continue;
		}
		if (!bundle_path_is_valid(path, path_len, &reason)) {
			r = report_line(report, number, line, line_len, reason);
			continue;
		}
		if (number == 1 && !path_equals(path, path_len, BUNDLE_INDEX_NAME)) {
			r = report_line(report, number, line, line_len, "the first line must name " BUNDLE_INDEX_NAME);
			continue;
		}
		if (number > 1 && (path_equals(path, path_len, BUNDLE_INDEX_NAME) ||
				   path_equals(path, path_len, BUNDLE_SUMS_NAME) ||
				   path_equals(path, path_len, BUNDLE_SIGNATURE_NAME))) {
			r = report_line(report, number, line, line_len, "the path is reserved for the bundle's own entries");
			continue;
		}
		if (sums.count > 1) {
			const char *previous = sums.lines[sums.count - 1].path;
			size_t previous_len = strlen(previous);
			int order = memcmp(previous, path, previous_len < path_len ? previous_len : path_len);

			/* A path that is a prefix of the other sorts first. */
			if (order == 0 && previous_len < path_len)
				order = -1;
			else if (order == 0 && previous_len > path_len)
				order = 1;
			if (order >= 0) {
				r = report_line(report, number, line, line_len,
						order == 0 ? "the path is listed twice" : "the path is out of order");
				continue;
			}
		}
		if (sums.count >= BUNDLE_FILES_MAX + 1) {
			r = bundle_report_add(report, MLB_EINTEGRITY, "SHA256SUMS has more than %u lines",
					      BUNDLE_FILES_MAX + 1);
			break;
		}
		if (sums.count == capacity) {
			size_t grown = capacity ? capacity * 2 : 64;
			struct bundle_sum *lines = realloc(sums.lines, grown * sizeof(*lines));

			if (!lines) {
				r = -ENOMEM;
				break;
			}
			sums.lines = lines;
			capacity = grown;
		}
		sums.lines[sums.count].path = strndup(path, path_len);
		if (!sums.lines[sums.count].path) {
			r = -ENOMEM;
			break;
		}
		memcpy(sums.lines[sums.count].sha256, digest, SHA256_BYTES);
		sums.count++;
	}
	if (r == 0 && sums.count == 0)
		r = bundle_report_add(report, MLB_EINTEGRITY, "SHA256SUMS has no lines");
	if (r < 0) {
		bundle_sums_release(&sums);
		return r;
	}
	*out = sums;
	return 0;
}

int bundle_sums_write(const unsigned char index_sha256[SHA256_BYTES], const struct bundle_index *index,
		      struct buf *out)
{
	char hex[SHA256_HEX_LEN + 1];
	int r;

	sha256_to_hex(index_sha256, hex);
	r = buf_printf(out, "%s  %s\n", hex, BUNDLE_INDEX_NAME);
	for (size_t i = 0; r == 0 && i < index->file_count; i++) {
		sha256_to_hex(index->files[i].stored_sha256, hex);
		r = buf_printf(out, "%s  %s\n", hex, index->files[i].stored_path);
	}
	return r;
}
