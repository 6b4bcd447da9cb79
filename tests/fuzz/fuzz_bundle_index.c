/*
 * libFuzzer target for the bundle index parser. A parse that fails must
 * leave at least one message; one that succeeds must give an index that
 * writes back to text which parses again to the same text.
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
	struct bundle_index index, again;
	struct buf text = BUF_INIT(BUNDLE_INDEX_MAX), text_again = BUF_INIT(BUNDLE_INDEX_MAX);
	int r;

	if (size > BUNDLE_INDEX_MAX)
		return 0;
	bundle_report_init(&report);
	r = bundle_index_parse((const char *)data, size, &index, &report);
	if (r < 0) {
		if (r != -ENOMEM && report.total == 0)
			abort();
		bundle_report_release(&report);
		return 0;
	}
	if (bundle_index_write(&index, &text) == 0) {
		if (bundle_index_parse(text.data, text.len, &again, &report) != 0)
			abort();
		if (bundle_index_write(&again, &text_again) != 0 || text.len != text_again.len ||
		    memcmp(text.data, text_again.data, text.len) != 0)
			abort();
		bundle_index_release(&again);
	}
	bundle_index_release(&index);
	bundle_report_release(&report);
	buf_release(&text);
	buf_release(&text_again);
	return 0;
}
