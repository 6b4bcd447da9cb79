#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include <archive.h>
#include <curl/curl.h>
#include <libssh2.h>
#include <openssl/crypto.h>
#include <yaml.h>
#include <zstd.h>

#include "common.h"
#include "commands.h"

static const char version_usage[] =
	"usage: mlboot version\n"
	"\n"
	"Prints mlboot's version, the libraries it runs with and the flags it was\n"
	"built with.\n";

int cmd_version(int argc, char **argv)
{
	static const struct option options[] = {
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "h", options, NULL)) != -1) {
		if (c == 'h') {
			fputs(version_usage, stdout);
			return 0;
		}
		return cli_usage_error("version", "unknown option '%s'", argv[optind - 1]);
	}
	if (optind < argc)
		return cli_usage_error("version", "unexpected argument '%s'", argv[optind]);

	printf("mlboot %s\n", MLBOOT_VERSION);
	printf("libcurl %s\n", curl_version_info(CURLVERSION_NOW)->version);
	printf("libssh2 %s\n", libssh2_version(0));
	printf("%s\n", archive_version_string());
	printf("libyaml %s\n", yaml_get_version_string());
	printf("%s\n", OpenSSL_version(OPENSSL_VERSION));
	printf("zstd %s\n", ZSTD_versionString());
	printf("build flags: %s\n", MLBOOT_BUILD_FLAGS);
	return 0;
}
