/*
 * libFuzzer target for the OCI and Docker manifest and index parser, and
 * for platform selection on whatever index it accepts. The first byte picks
 * the Content-Type passed along (none, an index type or a manifest type).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "images.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const content_types[] = { NULL, IMAGE_MEDIA_OCI_INDEX, IMAGE_MEDIA_DOCKER_MANIFEST };
	static const char *const platforms[] = { "linux/amd64", "linux/arm64", "linux/arm", "linux/arm/v6" };
	struct image_manifest manifest;
	const char *content_type;

	if (size == 0)
		return 0;
	content_type = content_types[data[0] % 3];
	if (image_manifest_parse((const char *)data + 1, size - 1, content_type, &manifest) < 0)
		return 0;
	if (manifest.kind == IMAGE_MANIFEST_INDEX) {
		for (size_t i = 0; i < sizeof(platforms) / sizeof(platforms[0]); i++) {
			struct image_platform platform;
			size_t position;

			if (image_platform_parse(platforms[i], &platform) == 0 &&
			    image_index_select(&manifest, &platform, &position) == 0 && position >= manifest.count)
				abort();
		}
	}
	image_manifest_release(&manifest);
	return 0;
}
