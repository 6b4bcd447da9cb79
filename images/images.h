/*
 * The images module: OCI image references, finding the images that
 * Kubernetes manifests need, the OCI distribution client that pulls them,
 * and the OCI image layout they are stored in.
 *
 * Results are 0 or negative codes from common/error.h:
 *   MLB_EINPUT       invalid input: a reference, a manifest, an index, a
 *                    docker config.json, a challenge, an unknown platform;
 *   MLB_EINTEGRITY   content whose digest or size differs from the one
 *                    asked for;
 *   MLB_EUNREACHABLE a registry could not be reached, or returned 5xx or
 *                    429 after every retry;
 *   MLB_EDENIED      TLS verification failed, or the registry rejected the
 *                    credentials (401/403 after authenticating);
 *   -ENOENT          the registry has no such repository, tag or blob;
 *   -errno           the system failed (-ENOMEM, -ENOSPC, ...).
 *
 * Parsers (references, manifests, challenges, config.json, discovery)
 * never block and never print. The registry client blocks on the network:
 * each request is bounded by registry_options.timeout seconds without
 * progress, and retried with backoff. Only the registry client and the
 * layout touch files or the network; secrets (passwords, tokens) are kept
 * in memory it owns, wiped when freed, and never logged.
 */
#ifndef MLBOOT_IMAGES_IMAGES_H
#define MLBOOT_IMAGES_IMAGES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common.h"

/* --- References ---------------------------------------------------------- */

/* Limits from the distribution reference grammar (distribution/reference). */
#define IMAGE_NAME_MAX        255u   /* registry/repository */
#define IMAGE_TAG_MAX         128u
#define IMAGE_REGISTRY_MAX    255u
#define IMAGE_DIGEST_MAX      (7u + SHA256_HEX_LEN)   /* "sha256:" and 64 hex digits */
/* A formatted reference: name, ":" tag, "@" digest and a NUL. */
#define IMAGE_REFERENCE_MAX   (IMAGE_NAME_MAX + 1 + IMAGE_TAG_MAX + 1 + IMAGE_DIGEST_MAX + 1)

#define IMAGE_DEFAULT_REGISTRY "docker.io"
#define IMAGE_DEFAULT_TAG      "latest"

/*
 * A normalised reference, as the container tools expand one: "nginx" is
 * docker.io/library/nginx:latest, "index.docker.io" is docker.io, and a
 * reference with neither tag nor digest gets the tag "latest". tag and
 * digest may both be set ("name:tag@sha256:..."): the digest then decides
 * what is pulled, and the tag is kept as a name.
 */
struct image_reference {
	char registry[IMAGE_REGISTRY_MAX + 1];   /* "docker.io", "quay.io", "127.0.0.1:5000" */
	char repository[IMAGE_NAME_MAX + 1];     /* "library/nginx" */
	char tag[IMAGE_TAG_MAX + 1];             /* "" when only a digest was given */
	char digest[IMAGE_DIGEST_MAX + 1];       /* "sha256:HEX" or "" */
};

/*
 * Parses and normalises text. The registry is the first path component
 * when it contains "." or ":", is "localhost", or has an upper-case letter.
 * Otherwise the reference is on docker.io. Repository components must be
 * lower case. Only sha256 digests are accepted (64 lower-case hex digits).
 * Returns MLB_EINPUT for anything else, with out zeroed.
 */
int image_reference_parse(const char *text, struct image_reference *out);
/* Writes "registry/repository[:tag][@digest]"; -ENAMETOOLONG when size is too small. */
int image_reference_format(const struct image_reference *ref, char *out, size_t size);
/* Writes "registry/repository". */
int image_reference_name(const struct image_reference *ref, char *out, size_t size);
/*
 * Whether text is a reference that names its registry host explicitly
 * ("quay.io/x/y", "host:5000/z") and a tag or a digest. Discovery takes
 * such strings as images wherever ConfigMaps and environment values hold
 * them.
 */
bool image_reference_is_fully_qualified(const char *text);
/* The host the distribution API of a registry is served on: docker.io is registry-1.docker.io. */
const char *image_registry_api_host(const char *registry);

/* --- Platforms ----------------------------------------------------------- */

struct image_platform {
	char os[32];
	char architecture[32];
	char variant[16];   /* "" when none */
};

/* Parses "os/arch" or "os/arch/variant" (lower case); MLB_EINPUT otherwise. */
int image_platform_parse(const char *text, struct image_platform *out);
void image_platform_format(const struct image_platform *platform, char *out, size_t size);
/*
 * Whether a manifest for have runs on want: same os and architecture, and
 * the same variant when want names one. Variants are compared as
 * containerd normalises them: "v8" of arm64 and "v1" of amd64 equal no
 * variant, and no variant of arm is "v7".
 */
bool image_platform_matches(const struct image_platform *want, const struct image_platform *have);

/* --- Manifests and indexes ---------------------------------------------- */

#define IMAGE_MANIFEST_MAX        (4u * 1024 * 1024)  /* the limit of distribution 2.8 */
#define IMAGE_DESCRIPTORS_MAX     4096u
#define IMAGE_MEDIA_TYPE_MAX      255u

#define IMAGE_MEDIA_OCI_INDEX     "application/vnd.oci.image.index.v1+json"
#define IMAGE_MEDIA_OCI_MANIFEST  "application/vnd.oci.image.manifest.v1+json"
#define IMAGE_MEDIA_DOCKER_LIST   "application/vnd.docker.distribution.manifest.list.v2+json"
#define IMAGE_MEDIA_DOCKER_MANIFEST "application/vnd.docker.distribution.manifest.v2+json"

struct image_descriptor {
	char media_type[IMAGE_MEDIA_TYPE_MAX + 1];
	char digest[IMAGE_DIGEST_MAX + 1];
	uint64_t size;
	bool has_platform;
	struct image_platform platform;   /* of index entries that give one */
};

enum image_manifest_kind {
	IMAGE_MANIFEST_INDEX,     /* OCI image index or Docker manifest list */
	IMAGE_MANIFEST_IMAGE,     /* OCI or Docker v2 schema 2 image manifest */
};

/*
 * A parsed manifest or index. For an image, descriptors are the layers
 * (and config the config blob); for an index, the manifests it lists.
 */
struct image_manifest {
	enum image_manifest_kind kind;
	char media_type[IMAGE_MEDIA_TYPE_MAX + 1];
	struct image_descriptor config;
	struct image_descriptor *descriptors;
	size_t count;
};

/*
 * Parses a manifest or index. The media type is the document's own
 * mediaType, else content_type (the Content-Type the registry sent, may be
 * NULL), else it is inferred from the members (manifests or layers).
 * Schema 1 manifests, unknown media types, descriptors without a valid
 * sha256 digest or size, and more than IMAGE_DESCRIPTORS_MAX descriptors
 * are MLB_EINPUT.
 */
int image_manifest_parse(const char *data, size_t len, const char *content_type,
			 struct image_manifest *out);
void image_manifest_release(struct image_manifest *manifest);
/*
 * Picks the index entry for platform: the first whose normalised variant
 * equals the one asked for, else (when platform names no variant) the
 * first entry of the same os and architecture. Entries that are not image
 * manifests (nested indexes) and entries without a platform are skipped,
 * and so are attestations, whose platform is unknown/unknown. -ENOENT when
 * none fits.
 */
int image_index_select(const struct image_manifest *index, const struct image_platform *platform,
		       size_t *position);

/* --- Finding images in manifests ---------------------------------------- */

#define IMAGE_SET_MAX          16384u
#define IMAGE_SOURCES_MAX      64u    /* places recorded per image; more are counted only */
#define IMAGE_PROBLEMS_MAX     1000u

/* The place that names an image: file, "Deployment/ns/name", field path and line. */
struct image_source {
	char *file;
	char *object;
	char *field;
	unsigned line;
};

struct image_entry {
	char *reference;                 /* normalised, image_reference_format() */
	struct image_source *sources;
	size_t source_count;
	size_t source_total;
};

/* The images found in a set of manifests, sorted by reference, each once. */
struct image_set {
	struct image_entry *entries;
	size_t count;
	/* Fields that must name an image but do not parse as one; messages. */
	char **problems;
	size_t problem_count;
	size_t problem_total;
};

void image_set_init(struct image_set *set);
void image_set_release(struct image_set *set);
/* Adds one reference (normalising it) with where it came from; MLB_EINPUT when invalid. */
int image_set_add(struct image_set *set, const char *text, const struct image_source *source);
const struct image_entry *image_set_find(const struct image_set *set, const char *reference);

/*
 * Finds the images a stream of manifests needs and adds them to set.
 * docs/image-discovery.md lists the rules: containers, init containers and
 * ephemeral containers wherever they appear (every workload kind and pod
 * templates inside custom resources), --*-image= arguments, *_IMAGE
 * environment values, ConfigMaps of KServe, Knative, Istio, Kubeflow
 * Pipelines and Katib, and ConfigMap values that are fully qualified
 * references. file names the source in image_source. A container image
 * field that is not a valid reference is recorded in set->problems; the
 * result is still 0 then. Returns -E2BIG past IMAGE_SET_MAX images.
 */
int image_discover(const struct doc_stream *stream, const char *file, struct image_set *set);

/* --- The OCI image layout ------------------------------------------------ */

/* Annotations written on each index.json entry. */
#define IMAGE_ANNOTATION_REF_NAME        "org.opencontainers.image.ref.name"
#define IMAGE_ANNOTATION_CONTAINERD_NAME "io.containerd.image.name"
#define IMAGE_ANNOTATION_MLBOOT_NAME     "dev.mlboot.image.name"
#define IMAGE_ANNOTATION_MLBOOT_SOURCE   "dev.mlboot.image.source"

/*
 * One OCI image layout folder (oci-layout, index.json, blobs/sha256/)
 * shared by every image: each blob is stored once. index.json lists one
 * entry per image name with the full name in the annotations above.
 */
struct image_layout;

/* Opens dir, creating it and its layout files when missing; reads an existing index.json. */
int image_layout_open(const char *dir, struct image_layout **out);
/* Whether blobs/sha256/HEX exists as a regular file of size bytes. */
bool image_layout_has_blob(const struct image_layout *layout, const char *digest, uint64_t size);
/* The path of a blob, whether it exists or not. */
int image_layout_blob_path(const struct image_layout *layout, const char *digest, char *out, size_t size);
/*
 * Stores data as a blob after checking it against digest: MLB_EINTEGRITY
 * when it differs. The file is written under a temporary name, fsynced and
 * renamed into place.
 */
int image_layout_put_blob(struct image_layout *layout, const char *digest, const void *data, size_t len);
/*
 * Records name (a full reference without digest) as pointing at the
 * manifest or index descriptor, replacing an entry of the same name, with
 * source (where the content came from; NULL for the registry the name
 * gives). Saved by image_layout_save().
 */
int image_layout_set_image(struct image_layout *layout, const char *name,
			   const struct image_descriptor *descriptor, const char *source);
/* The descriptor recorded for name; NULL when none. */
const struct image_descriptor *image_layout_find_image(const struct image_layout *layout, const char *name);
/* Writes index.json atomically (sorted by name, so the same images give the same bytes). */
int image_layout_save(struct image_layout *layout);
const char *image_layout_dir(const struct image_layout *layout);
void image_layout_free(struct image_layout *layout);

/* --- Registry authentication -------------------------------------------- */

#define IMAGE_CHALLENGE_FIELD_MAX 1024u

/* A WWW-Authenticate challenge (RFC 7235) as registries send it. */
struct image_challenge {
	char scheme[16];                              /* "Bearer" or "Basic" */
	char realm[IMAGE_CHALLENGE_FIELD_MAX];
	char service[IMAGE_CHALLENGE_FIELD_MAX];
	char scope[IMAGE_CHALLENGE_FIELD_MAX];
	char error[64];                               /* "insufficient_scope", ... */
};

/*
 * Parses the first challenge of a WWW-Authenticate value: a scheme, then
 * comma-separated auth-params with token or quoted-string values (with
 * backslash escapes). Unknown parameters are skipped. MLB_EINPUT when the
 * value is malformed, a field is too long, or a Bearer challenge has no
 * realm.
 */
int image_challenge_parse(const char *header, struct image_challenge *out);

/*
 * Finds the credentials for registry in a docker config.json text: the
 * "auths" entry whose key, with any scheme and path removed, equals the
 * registry (docker.io also matches index.docker.io and
 * registry-1.docker.io). Its "auth" (base64 of "user:password") is used,
 * else its "username" and "password". Credential helpers (credsStore,
 * credHelpers) are not run. -ENOENT when no entry matches; MLB_EINPUT when
 * the file or the entry is invalid. The caller frees both strings with
 * secret_free().
 */
int image_docker_config_lookup(const char *json, size_t len, const char *registry,
			       char **username, char **password);

/* --- The registry client ------------------------------------------------- */

#define IMAGE_MIRRORS_MAX    64u
#define IMAGE_PLATFORMS_MAX  16u

/* Content of registry source is pulled from registry mirror instead. */
struct image_mirror {
	char source[IMAGE_REGISTRY_MAX + 1];
	char mirror[IMAGE_REGISTRY_MAX + 1];
};

/* Parses "SOURCE=MIRROR" (two registry hosts, optional ports); MLB_EINPUT otherwise. */
int image_mirror_parse(const char *text, struct image_mirror *out);

struct registry_options {
	const char *ca_file;          /* PEM bundle; NULL for the system CA store */
	const char *docker_config;    /* NULL: $DOCKER_CONFIG/config.json, else ~/.docker/config.json */
	const struct image_mirror *mirrors;
	size_t mirror_count;
	const struct image_platform *platforms;   /* at least one */
	size_t platform_count;
	unsigned retries;             /* attempts after the first failure; 0 for the default 4 */
	long timeout;                 /* seconds without progress before a request fails; 0: 60 */
	bool progress;                /* a progress line on stderr while blobs download */
};

/* Counters of a client's work, for logs and tests. */
struct registry_stats {
	uint64_t requests;            /* HTTP requests sent, retries and token requests included */
	uint64_t manifests_fetched;
	uint64_t blobs_fetched;
	uint64_t blobs_present;       /* blobs the layout had already */
	uint64_t bytes_fetched;
};

struct registry_client;

/*
 * Creates a client. Reads the docker config file now when it exists (a
 * missing file means anonymous access). Proxies come from the environment
 * (https_proxy, HTTPS_PROXY, no_proxy, as libcurl reads them).
 */
int registry_client_new(const struct registry_options *options, struct registry_client **out);
void registry_client_free(struct registry_client *client);
const struct registry_stats *registry_client_stats(const struct registry_client *client);

/*
 * Pulls an image into layout and records it under its name (the
 * reference's registry/repository:tag, or registry/repository@digest when
 * it has no tag). Of an index, the index itself and the manifests for the
 * client's platforms are stored; each platform must have one. Every
 * manifest and blob is checked against its digest and size; manifests are
 * stored byte for byte. Blobs the layout already has are not fetched.
 * When pinned_digest is not NULL and not empty, the manifest must have that
 * digest (MLB_EINTEGRITY otherwise). The digest pulled is written to
 * digest_out when not NULL.
 */
int registry_pull(struct registry_client *client, const struct image_reference *ref,
		  const char *pinned_digest, struct image_layout *layout,
		  char digest_out[IMAGE_DIGEST_MAX + 1]);

#endif
