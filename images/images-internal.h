/*
 * Declarations shared by the files of the images module and used nowhere else.
 */
#ifndef MLBOOT_IMAGES_IMAGES_INTERNAL_H
#define MLBOOT_IMAGES_IMAGES_INTERNAL_H

#include <stdint.h>

#include "images.h"

#define PATH_MAX_LAYOUT 4096

/*
 * A blob being written into a layout. Data goes to a temporary file in
 * blobs/sha256/ and is hashed as it arrives. Commit checks the size and
 * the digest, fsyncs and renames the file into place.
 */
struct layout_blob_writer {
	int fd;
	char temp_path[PATH_MAX_LAYOUT];
	char final_path[PATH_MAX_LAYOUT];
	struct sha256 hash;
	uint64_t written;
	uint64_t expected_size;
	char digest[IMAGE_DIGEST_MAX + 1];
};

int layout_blob_begin(struct image_layout *layout, const char *digest, uint64_t size,
		      struct layout_blob_writer *writer);
/* -EFBIG when more than the expected size arrives. */
int layout_blob_write(struct layout_blob_writer *writer, const void *data, size_t len);
/* Throws away what was written so far and starts again, for a retry. */
int layout_blob_restart(struct layout_blob_writer *writer);
/* MLB_EINTEGRITY when the size or digest differs; the file is then removed. */
int layout_blob_commit(struct layout_blob_writer *writer);
/* Removes the temporary file; safe after commit and on a writer never begun. */
void layout_blob_abort(struct layout_blob_writer *writer);

/* Decodes standard base64 (with padding) into a new NUL-terminated string; MLB_EINPUT when invalid. */
int images_base64_decode(const char *text, size_t len, char **out, size_t *out_len);

#endif
