/*
 * libFuzzer target for the SHA256SUMS parser. A parse that fails must
 * leave at least one message; one that succeeds must give lines whose
 * paths are valid, unique and in order, and which print back to the input.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "airgap.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct bundle_report report;
	struct bundle_sums sums;
	struct buf text = BUF_INIT(BUNDLE_SUMS_MAX + 1);
	char hex[SHA256_HEX_LEN + 1];

	bundle_report_init(&report);
	if (bundle_sums_parse((const char *)data, size, &sums, &report) < 0) {
		if (report.total == 0)
			abort();
		bundle_report_release(&report);
		return 0;
	}
	for (size_t i = 0; i < sums.count; i++) {
		if (!bundle_path_is_valid(sums.lines[i].path, strlen(sums.lines[i].path), NULL))
			abort();
		if (i > 1 && strcmp(sums.lines[i - 1].path, sums.lines[i].path) >= 0)
			abort();
		sha256_to_hex(sums.lines[i].sha256, hex);
		if (buf_printf(&text, "%s  %s\n", hex, sums.lines[i].path) < 0)
			abort();
	}
	if (text.len != size || memcmp(text.data, data, size) != 0)
		abort();
	bundle_sums_release(&sums);
	bundle_report_release(&report);
	buf_release(&text);
	return 0;
}
