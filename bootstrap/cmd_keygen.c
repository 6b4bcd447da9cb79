#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "airgap.h"
#include "common.h"
#include "commands.h"

static const char keygen_usage[] =
	"usage: mlboot keygen -o NAME\n"
	"\n"
	"Creates an Ed25519 key pair for signing bundles: NAME.key, the private\n"
	"key (PEM PKCS#8, unencrypted, mode 0600), and NAME.pub, the public key\n"
	"(PEM) that verifiers trust with --pubkey or by copying it to\n"
	BUNDLE_KEYS_DIR "/. Existing files are never overwritten.\n"
	"\n"
	"  -o, --output NAME   path of the key pair without the .key or .pub suffix\n";

int cmd_keygen(int argc, char **argv)
{
	static const struct option options[] = {
		{ "output", required_argument, NULL, 'o' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	char key_id[SHA256_HEX_LEN + 1];
	const char *name = NULL;
	int c, r;

	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":o:h", options, NULL)) != -1) {
		switch (c) {
		case 'o':
			name = optarg;
			break;
		case 'h':
			fputs(keygen_usage, stdout);
			return 0;
		case ':':
			return cli_usage_error("keygen", "option '%s' requires a value", argv[optind - 1]);
		default:
			return cli_usage_error("keygen", "unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind < argc)
		return cli_usage_error("keygen", "unexpected argument '%s'", argv[optind]);
	if (!name || !name[0])
		return cli_usage_error("keygen", "missing -o NAME");

	r = bundle_key_generate(name, key_id);
	if (r == -EEXIST) {
		char path[PATH_MAX];
		struct stat st;

		/* Name the file that is there; the key is checked first. */
		snprintf(path, sizeof(path), "%s.key", name);
		if (lstat(path, &st) < 0)
			snprintf(path, sizeof(path), "%s.pub", name);
		log_error("'%s' already exists: keygen never overwrites a key, choose another NAME", path);
		return MLB_EINPUT;
	}
	if (r < 0)
		return log_errno(LOG_ERR, r, "failed to create the key pair '%s'", name);
	printf("private key: %s.key\npublic key:  %s.pub\nkey ID:      %s\n", name, name, key_id);
	return 0;
}
