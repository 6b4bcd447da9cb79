/*
 * libFuzzer target for image references: parsing, formatting, and the
 * property that a formatted reference parses back to the same text.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "images.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct image_reference ref, again;
	char text[1024], formatted[IMAGE_REFERENCE_MAX], reformatted[IMAGE_REFERENCE_MAX];

	if (size >= sizeof(text))
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	(void)image_reference_is_fully_qualified(text);
	if (image_reference_parse(text, &ref) < 0)
		return 0;
	if (image_reference_format(&ref, formatted, sizeof(formatted)) < 0)
		abort();
	/* Normalising is idempotent. */
	if (image_reference_parse(formatted, &again) < 0 ||
	    image_reference_format(&again, reformatted, sizeof(reformatted)) < 0 ||
	    strcmp(formatted, reformatted) != 0)
		abort();
	return 0;
}
