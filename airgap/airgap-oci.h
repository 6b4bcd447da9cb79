/*
 * OCI image layouts as the bundle writer reads them; internal to the
 * airgap module. Functions return 0, -errno, or MLB_EINPUT with
 * error->message saying what is wrong with the layout.
 */
#ifndef MLBOOT_AIRGAP_AIRGAP_OCI_H
#define MLBOOT_AIRGAP_AIRGAP_OCI_H

#include "airgap-internal.h"

#define OCI_IMAGE_BLOBS_MAX 4096

struct oci_error {
	char message[512];
};

struct oci_descriptor {
	char hex[SHA256_HEX_LEN + 1];    /* the sha256 digest without "sha256:" */
	uint64_t size;
	char media_type[128];
};

/* An image and every blob it needs: its manifest (or index) first. */
struct oci_image {
	char hex[SHA256_HEX_LEN + 1];
	uint64_t size;
	char *media_type;
	char *platform;                  /* of the index.json descriptor; NULL when none */
	struct oci_descriptor *blobs;
	size_t blob_count;
};

void oci_image_release(struct oci_image *image);

/* Checks dir/oci-layout and parses dir/index.json into *out (caller frees with doc_free()). */
int oci_layout_read_index(const char *dir, struct doc_node **out, struct oci_error *error);
/*
 * Picks the descriptor of index.json annotated with name (io.containerd.image.name
 * or org.opencontainers.image.ref.name, the full name or its tag), or the
 * only descriptor when there is one.
 */
int oci_layout_select(const struct doc_node *index, const char *dir, const char *name,
		      const struct doc_node **out, struct oci_error *error);
/* The full image name a descriptor is annotated with; NULL when it has none. */
const char *oci_descriptor_name(const struct doc_node *descriptor);
/*
 * Walks an image from its index.json descriptor to every blob it needs.
 * Each manifest is read and checked against its digest before it is
 * parsed. Of an image index, only the manifests for platforms are
 * followed, and each of platforms must have one.
 */
int oci_image_collect(const char *dir, const struct doc_node *descriptor, const char *const *platforms,
		      size_t platform_count, struct oci_image *out, struct oci_error *error);
/*
 * Extracts the layout members of an OCI archive (oci-layout, index.json,
 * blobs/sha256/HEX; regular files only) into the folder dir_fd, which
 * should be empty. Other members are skipped; nothing is written through a
 * link or outside dir_fd.
 */
int oci_archive_extract(const char *archive_path, int dir_fd, struct oci_error *error);

#endif
