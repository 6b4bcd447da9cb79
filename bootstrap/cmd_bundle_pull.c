#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "bundle_network.h"
#include "commands.h"
#include "common.h"
#include "images.h"

#define PULL_IMAGES_MAX 4096

static const char pull_usage[] =
	"usage: mlboot bundle pull --layout DIR [--platform LIST] [--registry-mirror SOURCE=MIRROR]...\n"
	"                          [--ca-file FILE] [--docker-config FILE] IMAGE...\n"
	"\n"
	"Pulls images over the OCI distribution API into one OCI image layout, where\n"
	"each blob is stored once, and prints each image's name and digest. Blobs the\n"
	"layout already has are not fetched again. Every manifest and blob is checked\n"
	"against its digest.\n"
	"\n"
	"  --layout DIR               the OCI image layout to write (created when missing);\n"
	"                             its index.json and oci-layout must be regular files\n"
	"  --platform LIST            comma-separated OS/ARCH[/VARIANT] to keep of image\n"
	"                             indexes (default linux/amd64)\n"
	"  --registry-mirror S=M      pull the content of registry S from M, keeping the\n"
	"                             names of S (repeatable)\n"
	"  --ca-file FILE             PEM certificates to trust instead of the system's\n"
	"  --docker-config FILE       credentials (\"auths\" only; credential helpers are\n"
	"                             not run); default $DOCKER_CONFIG/config.json, else\n"
	"                             ~/.docker/config.json\n"
	"\n"
	"Proxies come from https_proxy and no_proxy. Exit status: 0 success, 2 usage\n"
	"error, 3 invalid reference or manifest, 4 digest mismatch, 5 registry\n"
	"unreachable, 6 TLS or credentials rejected.\n";

enum {
	OPTION_LAYOUT = 256,
	OPTION_PLATFORM,
	OPTION_MIRROR,
	OPTION_CA_FILE,
	OPTION_DOCKER_CONFIG,
};

/*
 * Checks the layout folder before anything is pulled. It must be a folder
 * or not exist. Where they exist, blobs/ and blobs/sha256/ must be folders
 * and index.json and oci-layout regular files, because writing the layout
 * replaces those files (see file_check_output()). Logs why and returns
 * MLB_EINPUT otherwise.
 */
static int check_layout_path(const char *dir)
{
	static const char *const folders[] = { "", "/blobs", "/blobs/sha256" };
	static const char *const files[] = { "/oci-layout", "/index.json" };
	char path[PATH_MAX], reason[PATH_MAX + 256];
	struct stat st;

	for (size_t i = 0; i < ARRAY_SIZE(folders); i++) {
		if (snprintf(path, sizeof(path), "%s%s", dir, folders[i]) >= (int)sizeof(path))
			return log_errno(LOG_ERR, -ENAMETOOLONG, "invalid --layout '%s'", dir);
		if (stat(path, &st) == 0 && !S_ISDIR(st.st_mode)) {
			log_error("cannot write the OCI image layout: '%s' is %s, not a folder", path,
				  file_type_name(st.st_mode));
			return MLB_EINPUT;
		}
	}
	for (size_t i = 0; i < ARRAY_SIZE(files); i++) {
		int r;

		if (snprintf(path, sizeof(path), "%s%s", dir, files[i]) >= (int)sizeof(path))
			return log_errno(LOG_ERR, -ENAMETOOLONG, "invalid --layout '%s'", dir);
		r = file_check_output(path, &st);
		if (r < 0 && st.st_mode != 0) {
			file_output_problem(path, st.st_mode, reason, sizeof(reason));
			log_error("cannot write the OCI image layout: %s", reason);
			return MLB_EINPUT;
		}
	}
	return 0;
}

int bundle_parse_platforms(const char *list, struct image_platform *out, size_t max, size_t *count)
{
	char copy[1024], *save = NULL;

	*count = 0;
	if (strlen(list) >= sizeof(copy))
		return MLB_EUSAGE;
	strcpy(copy, list);
	for (char *item = strtok_r(copy, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
		if (*count >= max || image_platform_parse(item, &out[*count]) < 0)
			return MLB_EUSAGE;
		(*count)++;
	}
	return *count ? 0 : MLB_EUSAGE;
}

int bundle_pull_command(int argc, char **argv)
{
	static const struct option options[] = {
		{ "layout", required_argument, NULL, OPTION_LAYOUT },
		{ "platform", required_argument, NULL, OPTION_PLATFORM },
		{ "registry-mirror", required_argument, NULL, OPTION_MIRROR },
		{ "ca-file", required_argument, NULL, OPTION_CA_FILE },
		{ "docker-config", required_argument, NULL, OPTION_DOCKER_CONFIG },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct image_platform platforms[IMAGE_PLATFORMS_MAX];
	struct image_mirror mirrors[IMAGE_MIRRORS_MAX];
	struct registry_options registry = { 0 };
	struct registry_client *client = NULL;
	struct image_layout *layout = NULL;
	const struct registry_stats *stats;
	const char *layout_dir = NULL, *platform_list = "linux/amd64";
	size_t mirror_count = 0, platform_count = 0;
	int c, r, failed = 0;

	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":h", options, NULL)) != -1) {
		switch (c) {
		case OPTION_LAYOUT:
			layout_dir = optarg;
			break;
		case OPTION_PLATFORM:
			platform_list = optarg;
			break;
		case OPTION_MIRROR:
			if (mirror_count >= IMAGE_MIRRORS_MAX)
				return cli_usage_error("bundle pull", "more than %u registry mirrors", IMAGE_MIRRORS_MAX);
			if (image_mirror_parse(optarg, &mirrors[mirror_count]) < 0)
				return cli_usage_error("bundle pull",
						       "invalid registry mirror '%s': use SOURCE=MIRROR, such as docker.io=mirror.example.com:5000",
						       optarg);
			mirror_count++;
			break;
		case OPTION_CA_FILE:
			registry.ca_file = optarg;
			break;
		case OPTION_DOCKER_CONFIG:
			registry.docker_config = optarg;
			break;
		case 'h':
			fputs(pull_usage, stdout);
			return 0;
		case ':':
			return cli_usage_error("bundle pull", "option '%s' requires a value", argv[optind - 1]);
		default:
			return cli_usage_error("bundle pull", "unknown option '%s'", argv[optind - 1]);
		}
	}
	if (!layout_dir)
		return cli_usage_error("bundle pull", "missing --layout DIR");
	if (optind >= argc)
		return cli_usage_error("bundle pull", "missing the IMAGE to pull");
	if (argc - optind > PULL_IMAGES_MAX)
		return cli_usage_error("bundle pull", "more than %d images", PULL_IMAGES_MAX);
	if (bundle_parse_platforms(platform_list, platforms, IMAGE_PLATFORMS_MAX, &platform_count) < 0)
		return cli_usage_error("bundle pull", "invalid platform list '%s': use OS/ARCH[/VARIANT],...",
				       platform_list);
	for (int i = optind; i < argc; i++) {
		struct image_reference ref;

		if (image_reference_parse(argv[i], &ref) < 0) {
			log_error("invalid image reference '%s'", argv[i]);
			return MLB_EINPUT;
		}
	}

	r = check_layout_path(layout_dir);
	if (r < 0)
		return r;
	registry.platforms = platforms;
	registry.platform_count = platform_count;
	registry.mirrors = mirrors;
	registry.mirror_count = mirror_count;
	registry.progress = cli_settings.progress;
	r = registry_client_new(&registry, &client);
	if (r < 0) {
		log_errno(LOG_ERR, r, "failed to set up the registry client");
		goto out;
	}
	r = image_layout_open(layout_dir, &layout);
	if (r < 0) {
		log_errno(LOG_ERR, r, "failed to open the OCI image layout '%s'", layout_dir);
		goto out;
	}
	for (int i = optind; i < argc; i++) {
		struct image_reference ref;
		char digest[IMAGE_DIGEST_MAX + 1], name[IMAGE_REFERENCE_MAX];
		int pull_result;

		image_reference_parse(argv[i], &ref);
		image_reference_format(&ref, name, sizeof(name));
		pull_result = registry_pull(client, &ref, NULL, layout, digest);
		if (pull_result < 0) {
			log_errno(LOG_ERR, pull_result, "failed to pull '%s'", name);
			if (r == 0 || failed == 0)
				r = pull_result;
			failed++;
			continue;
		}
		printf("%s %s\n", name, digest);
	}
	if (r == 0 || failed < argc - optind) {
		int save_result = image_layout_save(layout);

		if (save_result < 0) {
			log_errno(LOG_ERR, save_result, "failed to write '%s/index.json'", layout_dir);
			r = save_result;
		}
	}
	stats = registry_client_stats(client);
	log_info("%llu requests, %llu manifests and %llu blobs fetched (%llu bytes), %llu blobs already present",
		 (unsigned long long)stats->requests, (unsigned long long)stats->manifests_fetched,
		 (unsigned long long)stats->blobs_fetched, (unsigned long long)stats->bytes_fetched,
		 (unsigned long long)stats->blobs_present);
	if (failed)
		log_error("%d of %d images failed", failed, argc - optind);
out:
	image_layout_free(layout);
	registry_client_free(client);
	return r;
}
