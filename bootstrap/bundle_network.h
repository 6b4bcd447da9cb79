/*
 * The network half of `mlboot bundle`: the subcommands that fetch files,
 * pull images or read manifests for images, before the airgap module's
 * writer runs. Each returns 0 or a negative result code (common/error.h).
 */
#ifndef MLBOOT_BOOTSTRAP_BUNDLE_NETWORK_H
#define MLBOOT_BOOTSTRAP_BUNDLE_NETWORK_H

#include <stdbool.h>
#include <stddef.h>

#include "images.h"

/* mlboot bundle images -f FILE...: prints the images a set of manifests needs. */
int bundle_images_command(int argc, char **argv);
/* mlboot bundle pull --layout DIR IMAGE...: pulls images into an OCI image layout. */
int bundle_pull_command(int argc, char **argv);

/* Parses "os/arch[/variant],..." into out; MLB_EUSAGE when invalid or more than max. */
int bundle_parse_platforms(const char *list, struct image_platform *out, size_t max, size_t *count);

/* Options that `bundle build` takes for its network half. */
enum bundle_network_option {
	BUNDLE_OPTION_CACHE = 1000,
	BUNDLE_OPTION_LOCKED,
	BUNDLE_OPTION_CA_FILE,
	BUNDLE_OPTION_DOCKER_CONFIG,
	BUNDLE_OPTION_MIRROR,
};

/* The entries of a getopt_long() table for those options. */
#define BUNDLE_NETWORK_OPTIONS \
	{ "cache", required_argument, NULL, BUNDLE_OPTION_CACHE }, \
	{ "locked", no_argument, NULL, BUNDLE_OPTION_LOCKED }, \
	{ "ca-file", required_argument, NULL, BUNDLE_OPTION_CA_FILE }, \
	{ "docker-config", required_argument, NULL, BUNDLE_OPTION_DOCKER_CONFIG }, \
	{ "registry-mirror", required_argument, NULL, BUNDLE_OPTION_MIRROR }

#define BUNDLE_NETWORK_USAGE \
	"  --cache DIR           fetch url sources and pull images without a path into\n" \
	"                        DIR, and reuse what is there; writes catalog.lock\n" \
	"                        beside the catalog\n" \
	"  --locked              accept only sources pinned by the catalog or\n" \
	"                        catalog.lock, with the content they pin\n" \
	"  --ca-file FILE        PEM certificates to trust for downloads and registries\n" \
	"  --docker-config FILE  registry credentials (\"auths\" of a docker config.json)\n" \
	"  --registry-mirror S=M pull the images of registry S from M (repeatable)\n"

struct bundle_network {
	const char *cache_dir;
	bool locked;
	const char *ca_file;
	const char *docker_config;
	struct image_mirror mirrors[IMAGE_MIRRORS_MAX];
	size_t mirror_count;
	char *resolved_catalog;   /* the catalog the writer should read; NULL for the original */
	char *lock_path;
	char *lock_text;          /* catalog.lock to write when the bundle is written */
};

void bundle_network_init(struct bundle_network *network);
/* Takes one of the options above; MLB_EUSAGE (after logging) for a bad value. */
int bundle_network_option(struct bundle_network *network, int option, const char *value);
/*
 * Runs before the writer: fetches, pulls, rewrites the catalog into
 * network->resolved_catalog when it had network sources, and checks that
 * every image the manifests name is in the bundle. Logs every problem.
 */
int bundle_network_prepare(struct bundle_network *network, const char *catalog_path, const char *platform_filter);
/* Runs after the bundle was written: writes catalog.lock. */
int bundle_network_finish(struct bundle_network *network);
void bundle_network_release(struct bundle_network *network);

#endif
