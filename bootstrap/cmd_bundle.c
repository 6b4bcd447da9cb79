#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "airgap.h"
#include "bundle_network.h"
#include "common.h"
#include "commands.h"

#define PUBKEYS_MAX 16

static const char bundle_usage[] =
	"usage: mlboot bundle build -f CATALOG -o FILE [--key KEY] [--platform LIST]\n"
	"       mlboot bundle verify FILE [--pubkey KEY]... [--allow-unsigned]\n"
	"       mlboot bundle inspect FILE [-o text|json] [--pubkey KEY]...\n"
	"       mlboot bundle unpack FILE -C DIR [--pubkey KEY]... [--allow-unsigned] [--fsync]\n"
	"       mlboot bundle images -f FILE... [-o text|wide|json]\n"
	"       mlboot bundle pull --layout DIR [--platform LIST] IMAGE...\n"
	"\n"
	"Builds, checks, describes and unpacks air-gapped bundles (docs/bundle-format.md).\n"
	"Run 'mlboot bundle SUBCOMMAND --help' for the options of one.\n";

static const char build_usage[] =
	"usage: mlboot bundle build -f CATALOG -o FILE [--key KEY] [--platform LIST]\n"
	"                           [--cache DIR [--locked]] [--registry-mirror S=M]...\n"
	"\n"
	"Builds a bundle from a catalog (docs/catalog.md); with --cache, url sources\n"
	"and images without a path are fetched first (docs/bundle-build.md).\n"
	"The same inputs give the same bytes.\n"
	"\n"
	"  -f, --file CATALOG    the catalog (catalog.yaml)\n"
	"  -o, --output FILE     the bundle to write; replaced only when the build succeeds,\n"
	"                        and only a regular file other than the inputs (never a\n"
	"                        link, folder, device, FIFO or socket)\n"
	"  --key KEY             sign with this Ed25519 private key (from mlboot keygen);\n"
	"                        without it the bundle is unsigned\n"
	"  --platform LIST       comma-separated platforms to keep, among the catalog's\n"
	BUNDLE_NETWORK_USAGE;

static const char verify_usage[] =
	"usage: mlboot bundle verify FILE [--pubkey KEY]... [--allow-unsigned]\n"
	"\n"
	"Reads the bundle once: checks its signature, then the sha256 and size of every\n"
	"entry, and reports every problem. Exit status 4 when anything is wrong.\n"
	"\n"
	"  --pubkey KEY        trust this public key (repeatable); default: the *.pub\n"
	"                      files in " BUNDLE_KEYS_DIR "\n"
	"  --allow-unsigned    accept a bundle that is unsigned or signed by an untrusted key\n";

static const char inspect_usage[] =
	"usage: mlboot bundle inspect FILE [-o text|json] [--pubkey KEY]...\n"
	"\n"
	"Prints the bundle's platform, components in apply order with their versions,\n"
	"manifests, binaries and images, the bytes images share, and the disk space an\n"
	"unpack needs. Contents are not hashed: run verify for that.\n"
	"\n"
	"  -o, --output FORMAT   text (default) or json\n"
	"  --pubkey KEY          trust this public key (repeatable); default: " BUNDLE_KEYS_DIR "\n";

static const char unpack_usage[] =
	"usage: mlboot bundle unpack FILE -C DIR [--pubkey KEY]... [--allow-unsigned] [--fsync]\n"
	"\n"
	"Verifies and unpacks the bundle into DIR, an empty or new folder, in one pass.\n"
	"Files are moved into place only when every check passed; on failure, SIGINT,\n"
	"SIGTERM and SIGHUP included, DIR is left as it was. Staging folders that a\n"
	"killed unpack left in DIR are removed first. Compressed files are written\n"
	"decompressed.\n"
	"\n"
	"  -C, --directory DIR  the destination folder\n"
	"  --pubkey KEY         trust this public key (repeatable); default: " BUNDLE_KEYS_DIR "\n"
	"  --allow-unsigned     accept a bundle that is unsigned or signed by an untrusted key\n"
	"  --fsync              flush the files to disk before moving them into place, so that\n"
	"                       a power cut cannot leave incomplete files (slower)\n";

enum {
	OPTION_KEY = 256,
	OPTION_PLATFORM,
	OPTION_PUBKEY,
	OPTION_ALLOW_UNSIGNED,
	OPTION_FSYNC,
};

/* State shared by the subcommands: the bundle, the trusted keys and their options. */
struct bundle_cli {
	const char *name;          /* "bundle verify", for messages */
	const char *file;
	const char *pubkeys[PUBKEYS_MAX];
	size_t pubkey_count;
	bool allow_unsigned;
	bool fsync;
	struct bundle_trust trust;
};

static int add_pubkey(struct bundle_cli *cli, const char *path)
{
	if (cli->pubkey_count >= PUBKEYS_MAX)
		return cli_usage_error(cli->name, "more than %d --pubkey options", PUBKEYS_MAX);
	cli->pubkeys[cli->pubkey_count++] = path;
	return 0;
}

static int load_trust(struct bundle_cli *cli)
{
	int r;

	bundle_trust_init(&cli->trust);
	for (size_t i = 0; i < cli->pubkey_count; i++) {
		r = bundle_trust_add_file(&cli->trust, cli->pubkeys[i]);
		if (r < 0) {
			log_errno(LOG_ERR, r, "failed to load the public key '%s'", cli->pubkeys[i]);
			return r == -ENOMEM ? r : MLB_EINPUT;
		}
	}
	if (cli->pubkey_count > 0)
		return 0;
	r = bundle_trust_add_dir(&cli->trust, BUNDLE_KEYS_DIR);
	if (r < 0) {
		log_errno(LOG_ERR, r, "failed to load the public keys in '%s'", BUNDLE_KEYS_DIR);
		return r == -ENOMEM ? r : MLB_EINPUT;
	}
	return 0;
}

/* The signal that interrupted a build or an unpack; 0 when none did. */
static volatile sig_atomic_t interrupt_signal;

static void record_interrupt(int signal_number)
{
	interrupt_signal = signal_number;
}

static const int interrupt_signals[] = { SIGINT, SIGTERM, SIGHUP };

/*
 * Makes SIGINT, SIGTERM and SIGHUP set interrupt_signal, which the airgap
 * module checks between chunks, so that it removes what it wrote before
 * the process ends. Without SA_RESTART, a read from a pipe returns at
 * once. A signal ignored at start stays ignored, as for nohup. The
 * previous actions go to saved.
 */
static void catch_interrupts(struct sigaction saved[ARRAY_SIZE(interrupt_signals)])
{
	struct sigaction action;

	memset(&action, 0, sizeof(action));
	action.sa_handler = record_interrupt;
	sigemptyset(&action.sa_mask);
	for (size_t i = 0; i < ARRAY_SIZE(interrupt_signals); i++) {
		if (sigaction(interrupt_signals[i], NULL, &saved[i]) == 0 && saved[i].sa_handler != SIG_IGN)
			sigaction(interrupt_signals[i], &action, NULL);
	}
	bundle_set_interrupt_flag(&interrupt_signal);
}

static void restore_interrupts(const struct sigaction saved[ARRAY_SIZE(interrupt_signals)])
{
	bundle_set_interrupt_flag(NULL);
	for (size_t i = 0; i < ARRAY_SIZE(interrupt_signals); i++)
		sigaction(interrupt_signals[i], &saved[i], NULL);
}

/*
 * Ends the process by the signal that interrupted it, with its default
 * action, so that the parent gets the status of a process killed by that
 * signal (128 + N in a shell), as if mlboot had not caught it.
 */
static void end_by_interrupt(void)
{
	int signal_number = interrupt_signal;

	fflush(stdout);
	signal(signal_number, SIG_DFL);
	raise(signal_number);
	/* Not reached unless the signal is blocked: exit with the shell's status for it. */
	_exit(128 + signal_number);
}

/* Logs every problem of a report under the bundle's name; returns its result. */
static int print_problems(const char *file, const struct bundle_report *report, int r)
{
	for (size_t i = 0; i < report->count; i++)
		log_error("bundle '%s': %s", file, report->messages[i]);
	if (report->total > report->count)
		log_error("bundle '%s': %zu more problems not shown", file, report->total - report->count);
	if (r == 0)
		r = report->result;
	return r;
}

static const char *signature_text(const struct bundle_report *report, char *out, size_t size)
{
	switch (report->signature) {
	case BUNDLE_SIGNATURE_VALID:
		snprintf(out, size, "valid, by trusted key %s", report->key_id);
		break;
	case BUNDLE_SIGNATURE_UNTRUSTED:
		snprintf(out, size, "not checked: key %s is not trusted", report->key_id);
		break;
	case BUNDLE_SIGNATURE_ABSENT:
		snprintf(out, size, "none: the bundle is unsigned");
		break;
	default:
		snprintf(out, size, "invalid");
		break;
	}
	return out;
}

/* Parses the options every subcommand but build shares; extra handles -C and -o. */
static int parse_check_options(struct bundle_cli *cli, int argc, char **argv, const char *usage,
			       const char *short_options, const char **extra_value, int extra_option,
			       bool allow_unsigned_option)
{
	static const struct option options[] = {
		{ "pubkey", required_argument, NULL, OPTION_PUBKEY },
		{ "allow-unsigned", no_argument, NULL, OPTION_ALLOW_UNSIGNED },
		{ "fsync", no_argument, NULL, OPTION_FSYNC },
		{ "directory", required_argument, NULL, 'C' },
		{ "output", required_argument, NULL, 'o' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c, r;

	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, short_options, options, NULL)) != -1) {
		if (c == 'h') {
			fputs(usage, stdout);
			return 1;
		}
		if (c == OPTION_PUBKEY) {
			r = add_pubkey(cli, optarg);
			if (r < 0)
				return r;
		} else if (c == OPTION_ALLOW_UNSIGNED && allow_unsigned_option) {
			cli->allow_unsigned = true;
		} else if (c == OPTION_FSYNC && extra_option == 'C') {
			cli->fsync = true;
		} else if (c == extra_option && extra_value) {
			*extra_value = optarg;
		} else if (c == ':') {
			return cli_usage_error(cli->name, "option '%s' requires a value", argv[optind - 1]);
		} else {
			return cli_usage_error(cli->name, "unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind >= argc)
		return cli_usage_error(cli->name, "missing the bundle FILE");
	if (optind + 1 < argc)
		return cli_usage_error(cli->name, "unexpected argument '%s'", argv[optind + 1]);
	cli->file = argv[optind];
	return 0;
}

/* Sets *out to NAME.pub for a private key NAME.key, the pair that mlboot keygen writes, or to NULL for another name. */
static int public_key_beside(const char *key_path, char **out)
{
	size_t len = strlen(key_path);

	*out = NULL;
	if (len <= 4 || strcmp(key_path + len - 4, ".key") != 0)
		return 0;
	if (asprintf(out, "%.*s.pub", (int)(len - 4), key_path) < 0) {
		*out = NULL;
		return -ENOMEM;
	}
	return 0;
}

static int bundle_build(int argc, char **argv)
{
	static const struct option options[] = {
		{ "file", required_argument, NULL, 'f' },
		{ "output", required_argument, NULL, 'o' },
		{ "key", required_argument, NULL, OPTION_KEY },
		{ "platform", required_argument, NULL, OPTION_PLATFORM },
		{ "help", no_argument, NULL, 'h' },
		BUNDLE_NETWORK_OPTIONS,
		{ NULL, 0, NULL, 0 },
	};
	const char *catalog = NULL, *output = NULL, *key_path = NULL, *platforms = NULL;
	struct sigaction saved[ARRAY_SIZE(interrupt_signals)];
	struct bundle_input inputs[4];
	size_t input_count = 0;
	char *public_key = NULL;
	struct bundle_network network;
	struct bundle_key *key = NULL;
	struct bundle_report report;
	struct stat st;
	int c, r;

	bundle_network_init(&network);
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":f:o:h", options, NULL)) != -1) {
		if (c >= BUNDLE_OPTION_CACHE && c <= BUNDLE_OPTION_MIRROR) {
			r = bundle_network_option(&network, c, optarg);
			if (r < 0)
				return r;
			continue;
		}
		switch (c) {
		case 'f':
			catalog = optarg;
			break;
		case 'o':
			output = optarg;
			break;
		case OPTION_KEY:
			key_path = optarg;
			break;
		case OPTION_PLATFORM:
			platforms = optarg;
			break;
		case 'h':
			fputs(build_usage, stdout);
			return 0;
		case ':':
			return cli_usage_error("bundle build", "option '%s' requires a value", argv[optind - 1]);
		default:
			return cli_usage_error("bundle build", "unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind < argc)
		return cli_usage_error("bundle build", "unexpected argument '%s'", argv[optind]);
	if (!catalog)
		return cli_usage_error("bundle build", "missing -f CATALOG");
	if (!output)
		return cli_usage_error("bundle build", "missing -o FILE");

	if (key_path) {
		r = bundle_key_load_private(key_path, &key);
		if (r < 0) {
			log_errno(LOG_ERR, r, "failed to load the private key '%s' (an unencrypted Ed25519 PEM key from mlboot keygen)",
				  key_path);
			return r == -ENOMEM ? r : MLB_EINPUT;
		}
		inputs[input_count++] = (struct bundle_input){ key_path, "signing key" };
		r = public_key_beside(key_path, &public_key);
		if (r < 0)
			goto out;
		if (public_key)
			inputs[input_count++] = (struct bundle_input){ public_key, "public key" };
	}
	inputs[input_count++] = (struct bundle_input){ catalog, "catalog" };
	bundle_report_init(&report);

	/* Checked before any download too; bundle_build_catalog() checks the sources as well. */
	r = bundle_check_output(output, inputs, input_count, &report);
	if (r == 0)
		r = bundle_network_prepare(&network, catalog, platforms);
	if (r == 0 && network.lock_path)
		inputs[input_count++] = (struct bundle_input){ network.lock_path, "catalog lock" };
	if (r == 0) {
		catch_interrupts(saved);
		r = bundle_build_catalog(network.resolved_catalog ? network.resolved_catalog : catalog, output, key,
					 platforms, inputs, input_count, &report);
		restore_interrupts(saved);
	}
	if (interrupt_signal && r < 0) {
		log_error("bundle build interrupted by SIG%s: '%s' was not written", sigabbrev_np(interrupt_signal),
			  output);
		end_by_interrupt();
	}
	for (size_t i = 0; i < report.count; i++)
		log_error("%s", report.messages[i]);
	if (r == 0)
		r = bundle_network_finish(&network);
	bundle_network_release(&network);
	if (r == 0 && stat(output, &st) == 0)
		printf("wrote '%s': %lld bytes, %s\n", output, (long long)st.st_size,
		       key ? "signed" : "unsigned");
	if (r == 0 && key)
		printf("signed by key %s\n", bundle_key_id(key));
	if (interrupt_signal) {
		log_warning("bundle build interrupted by SIG%s after '%s' was written: the bundle is complete",
			    sigabbrev_np(interrupt_signal), output);
		end_by_interrupt();
	}
	bundle_report_release(&report);
out:
	free(public_key);
	bundle_key_free(key);
	return r;
}

static int bundle_verify_command(int argc, char **argv)
{
	struct bundle_cli cli = { .name = "bundle verify" };
	struct bundle_check_options options;
	struct bundle_report report;
	char signature[160];
	int r;

	r = parse_check_options(&cli, argc, argv, verify_usage, ":h", NULL, 0, true);
	if (r != 0)
		return r < 0 ? r : 0;
	r = load_trust(&cli);
	if (r < 0)
		goto out_trust;
	options = (struct bundle_check_options){ &cli.trust, cli.allow_unsigned, false };
	bundle_report_init(&report);
	r = bundle_verify(cli.file, &options, &report);
	r = print_problems(cli.file, &report, r);
	if (r == 0) {
		printf("bundle '%s': OK: %llu entries, %llu bytes checked\n", cli.file,
		       (unsigned long long)report.entries, (unsigned long long)report.bytes);
		printf("signature: %s\n", signature_text(&report, signature, sizeof(signature)));
		if (report.signature != BUNDLE_SIGNATURE_VALID)
			log_warning("bundle '%s': accepted without a valid signature (--allow-unsigned)", cli.file);
	} else if (report.unreadable) {
		log_error("bundle '%s' was not verified: the file cannot be read", cli.file);
	} else {
		log_error("bundle '%s' failed verification: %zu problem%s found", cli.file, report.total,
			  report.total == 1 ? "" : "s");
	}
	bundle_report_release(&report);
out_trust:
	bundle_trust_release(&cli.trust);
	return r;
}

static int bundle_unpack_command(int argc, char **argv)
{
	struct bundle_cli cli = { .name = "bundle unpack" };
	struct sigaction saved[ARRAY_SIZE(interrupt_signals)];
	struct bundle_check_options options;
	struct bundle_report report;
	const char *destination = NULL;
	int r;

	r = parse_check_options(&cli, argc, argv, unpack_usage, ":C:h", &destination, 'C', true);
	if (r != 0)
		return r < 0 ? r : 0;
	if (!destination)
		return cli_usage_error(cli.name, "missing -C DIR");
	r = load_trust(&cli);
	if (r < 0)
		goto out_trust;
	options = (struct bundle_check_options){ &cli.trust, cli.allow_unsigned, cli.fsync };
	bundle_report_init(&report);
	catch_interrupts(saved);
	r = bundle_unpack(cli.file, destination, &options, &report);
	restore_interrupts(saved);
	for (size_t i = 0; i < report.note_count; i++)
		log_notice("%s", report.notes[i]);
	if (interrupt_signal && r < 0) {
		log_error("bundle unpack interrupted by SIG%s: '%s' is left as it was", sigabbrev_np(interrupt_signal),
			  destination);
		end_by_interrupt();
	}
	r = print_problems(cli.file, &report, r);
	if (r == 0) {
		printf("unpacked '%s' into '%s': %llu entries, %llu bytes\n", cli.file, destination,
		       (unsigned long long)report.entries, (unsigned long long)report.bytes);
		if (report.signature != BUNDLE_SIGNATURE_VALID)
			log_warning("bundle '%s': accepted without a valid signature (--allow-unsigned)", cli.file);
		if (interrupt_signal) {
			log_warning("bundle unpack interrupted by SIG%s after every file was in place: '%s' is complete",
				    sigabbrev_np(interrupt_signal), destination);
			end_by_interrupt();
		}
	} else {
		log_error("bundle '%s' was not unpacked: '%s' is left as it was", cli.file, destination);
	}
	bundle_report_release(&report);
out_trust:
	bundle_trust_release(&cli.trust);
	return r;
}

/* --- inspect ---------------------------------------------------------- */

/* Bytes of the images: as if each were stored alone, and as stored (each blob once). */
struct image_bytes {
	uint64_t separate;
	uint64_t stored;
	size_t blobs;
};

static uint64_t image_size(const struct bundle_index *index, const struct bundle_image *image)
{
	uint64_t total = 0;

	for (size_t i = 0; i < image->blob_count; i++)
		total += index->files[image->blobs[i]].size;
	return total;
}

static int count_image_bytes(const struct bundle_index *index, struct image_bytes *out)
{
	bool *counted = calloc(index->file_count + 1, sizeof(*counted));

	if (!counted)
		return -ENOMEM;
	memset(out, 0, sizeof(*out));
	for (size_t i = 0; i < index->image_count; i++) {
		const struct bundle_image *image = &index->images[i];

		out->separate += image_size(index, image);
		for (size_t j = 0; j < image->blob_count; j++) {
			if (counted[image->blobs[j]])
				continue;
			counted[image->blobs[j]] = true;
			out->stored += index->files[image->blobs[j]].size;
			out->blobs++;
		}
	}
	free(counted);
	return 0;
}

static const char *shown(const char *text, char *out, size_t size)
{
	bundle_escape_name(text, strlen(text), out, size);
	return out;
}

static void format_size(uint64_t bytes, char *out, size_t size)
{
	static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	double value = (double)bytes;
	size_t unit = 0;

	while (value >= 1024 && unit + 1 < ARRAY_SIZE(units)) {
		value /= 1024;
		unit++;
	}
	if (unit == 0)
		snprintf(out, size, "%llu B", (unsigned long long)bytes);
	else
		snprintf(out, size, "%.1f %s", value, units[unit]);
}

static void inspect_text(const char *file, const struct bundle_index *index, const struct bundle_report *report,
			 const struct image_bytes *bytes)
{
	char a[256], b[256], size_text[32], signature[160];

	printf("bundle:      %s\n", shown(file, a, sizeof(a)));
	printf("platform:    %s %s\n", shown(index->name, a, sizeof(a)), shown(index->version, b, sizeof(b)));
	printf("kubernetes:  %s to %s\n", shown(index->kubernetes_min, a, sizeof(a)),
	       shown(index->kubernetes_max, b, sizeof(b)));
	printf("platforms:  ");
	for (size_t i = 0; i < index->platform_count; i++)
		printf(" %s", shown(index->platforms[i], a, sizeof(a)));
	printf("\nsignature:   %s\n", signature_text(report, signature, sizeof(signature)));
	printf("\ncomponents, in apply order:\n");
	for (size_t i = 0; i < index->component_count; i++) {
		const struct bundle_component *c = &index->components[i];

		printf("  %s %s", shown(c->name, a, sizeof(a)), shown(c->version, b, sizeof(b)));
		if (c->namespace)
			printf(" (namespace %s)", shown(c->namespace, a, sizeof(a)));
		printf("\n    manifests: %zu\n", c->manifest_count);
		for (size_t j = 0; j < c->binary_count; j++)
			printf("    binary: %s (%s)\n", shown(c->binaries[j].name, a, sizeof(a)),
			       shown(c->binaries[j].platform, b, sizeof(b)));
		for (size_t j = 0; j < c->image_count; j++) {
			const struct bundle_image *image = bundle_index_find_image(index, c->images[j]);

			format_size(image ? image_size(index, image) : 0, size_text, sizeof(size_text));
			printf("    image: %s %s, %s\n", shown(c->images[j], a, sizeof(a)),
			       image ? image->digest : "?", size_text);
		}
	}
	format_size(bytes->separate, a, sizeof(a));
	format_size(bytes->stored, b, sizeof(b));
	format_size(bytes->separate - bytes->stored, size_text, sizeof(size_text));
	printf("\nimages:      %zu images, %zu blobs\n", index->image_count, bytes->blobs);
	printf("image bytes: %s stored; %s if each image were stored alone; %s shared\n", b, a, size_text);
	format_size(index->stored_bytes, a, sizeof(a));
	format_size(index->unpacked_bytes, b, sizeof(b));
	printf("files:       %zu files, %s stored, %s unpacked\n", index->file_count, a, b);
	format_size(index->bytes_needed, a, sizeof(a));
	printf("disk needed: %s (%llu bytes) to unpack\n", a, (unsigned long long)index->bytes_needed);
}

static int json_set(struct doc_node *map, const char *key, struct doc_node *value)
{
	if (!value)
		return -ENOMEM;
	return doc_map_set(map, key, value);
}

static int json_append(struct doc_node *seq, struct doc_node *value)
{
	if (!value)
		return -ENOMEM;
	return doc_seq_append(seq, value);
}

static int inspect_json_component(const struct bundle_index *index, const struct bundle_component *c,
				  struct doc_node *out)
{
	struct doc_node *manifests = doc_new(DOC_SEQ), *binaries = doc_new(DOC_SEQ), *images = doc_new(DOC_SEQ);
	int r;

	r = json_set(out, "name", doc_new_string(c->name));
	if (r == 0)
		r = json_set(out, "version", doc_new_string(c->version));
	if (r == 0 && c->namespace)
		r = json_set(out, "namespace", doc_new_string(c->namespace));
	for (size_t j = 0; r == 0 && manifests && j < c->manifest_count; j++)
		r = json_append(manifests, doc_new_string(c->manifests[j]));
	for (size_t j = 0; r == 0 && binaries && j < c->binary_count; j++) {
		struct doc_node *binary = doc_new(DOC_MAP);

		r = json_append(binaries, binary);
		if (r == 0)
			r = json_set(binary, "name", doc_new_string(c->binaries[j].name));
		if (r == 0)
			r = json_set(binary, "platform", doc_new_string(c->binaries[j].platform));
		if (r == 0)
			r = json_set(binary, "path", doc_new_string(c->binaries[j].path));
	}
	for (size_t j = 0; r == 0 && images && j < c->image_count; j++) {
		const struct bundle_image *image = bundle_index_find_image(index, c->images[j]);
		struct doc_node *item = doc_new(DOC_MAP);

		r = json_append(images, item);
		if (r == 0)
			r = json_set(item, "name", doc_new_string(c->images[j]));
		if (r == 0 && image)
			r = json_set(item, "digest", doc_new_string(image->digest));
		if (r == 0 && image)
			r = json_set(item, "bytes", doc_new_int((long long)image_size(index, image)));
	}
	/* doc_map_set() takes the lists also when it fails. */
	if (r == 0)
		r = json_set(out, "manifests", manifests);
	else
		doc_free(manifests);
	if (r == 0)
		r = json_set(out, "binaries", binaries);
	else
		doc_free(binaries);
	if (r == 0)
		r = json_set(out, "images", images);
	else
		doc_free(images);
	return r;
}

static int inspect_json(const char *file, const struct bundle_index *index, const struct bundle_report *report,
			const struct image_bytes *bytes)
{
	static const char *const states[] = {
		[BUNDLE_SIGNATURE_UNKNOWN] = "unknown", [BUNDLE_SIGNATURE_ABSENT] = "unsigned",
		[BUNDLE_SIGNATURE_VALID] = "valid", [BUNDLE_SIGNATURE_UNTRUSTED] = "untrusted",
		[BUNDLE_SIGNATURE_INVALID] = "invalid",
	};
	struct doc_node *root = doc_new(DOC_MAP), *node, *list;
	struct buf out = BUF_INIT(64 * 1024 * 1024);
	int r;

	if (!root)
		return -ENOMEM;
	r = json_set(root, "bundle", doc_new_string(file));
	if (r == 0)
		r = json_set(root, "formatVersion", doc_new_int(index->format_version));
	if (r == 0 && (node = doc_map_ensure_map(root, "platform"))) {
		r = json_set(node, "name", doc_new_string(index->name));
		if (r == 0)
			r = json_set(node, "version", doc_new_string(index->version));
	}
	if (r == 0 && (node = doc_map_ensure_map(root, "kubernetes"))) {
		r = json_set(node, "minVersion", doc_new_string(index->kubernetes_min));
		if (r == 0)
			r = json_set(node, "maxVersion", doc_new_string(index->kubernetes_max));
	}
	if (r == 0 && (list = doc_new(DOC_SEQ)) && (r = json_set(root, "platforms", list)) == 0)
		for (size_t i = 0; r == 0 && i < index->platform_count; i++)
			r = json_append(list, doc_new_string(index->platforms[i]));
	if (r == 0 && (node = doc_map_ensure_map(root, "signature"))) {
		r = json_set(node, "state", doc_new_string(states[report->signature]));
		if (r == 0 && report->key_id[0])
			r = json_set(node, "keyId", doc_new_string(report->key_id));
	}
	if (r == 0 && (list = doc_new(DOC_SEQ)) && (r = json_set(root, "components", list)) == 0) {
		for (size_t i = 0; r == 0 && i < index->component_count; i++) {
			node = doc_new(DOC_MAP);
			r = json_append(list, node);
			if (r == 0)
				r = inspect_json_component(index, &index->components[i], node);
		}
	}
	if (r == 0 && (node = doc_map_ensure_map(root, "images"))) {
		r = json_set(node, "count", doc_new_int((long long)index->image_count));
		if (r == 0)
			r = json_set(node, "blobs", doc_new_int((long long)bytes->blobs));
		if (r == 0)
			r = json_set(node, "bytesStored", doc_new_int((long long)bytes->stored));
		if (r == 0)
			r = json_set(node, "bytesIfStoredAlone", doc_new_int((long long)bytes->separate));
		if (r == 0)
			r = json_set(node, "bytesShared", doc_new_int((long long)(bytes->separate - bytes->stored)));
	}
	if (r == 0 && (node = doc_map_ensure_map(root, "disk"))) {
		r = json_set(node, "files", doc_new_int((long long)index->file_count));
		if (r == 0)
			r = json_set(node, "storedBytes", doc_new_int((long long)index->stored_bytes));
		if (r == 0)
			r = json_set(node, "unpackedBytes", doc_new_int((long long)index->unpacked_bytes));
		if (r == 0)
			r = json_set(node, "bytesNeeded", doc_new_int((long long)index->bytes_needed));
	}
	if (r == 0)
		r = doc_write_json(root, &out);
	if (r == 0)
		printf("%s\n", out.data);
	doc_free(root);
	buf_release(&out);
	return r;
}

static int bundle_inspect_command(int argc, char **argv)
{
	struct bundle_cli cli = { .name = "bundle inspect" };
	struct bundle_check_options options;
	struct bundle_reader *reader = NULL;
	const char *format = "text";
	struct bundle_report report;
	struct image_bytes bytes;
	int r;

	r = parse_check_options(&cli, argc, argv, inspect_usage, ":o:h", &format, 'o', false);
	if (r != 0)
		return r < 0 ? r : 0;
	if (strcmp(format, "text") != 0 && strcmp(format, "json") != 0)
		return cli_usage_error(cli.name, "invalid output format '%s': use text or json", format);
	r = load_trust(&cli);
	if (r < 0)
		goto out_trust;
	/* Inspect describes unsigned bundles too and prints that they are; a wrong signature still fails. */
	options = (struct bundle_check_options){ &cli.trust, true, false };
	bundle_report_init(&report);
	r = bundle_reader_open(cli.file, &options, &reader, &report);
	r = print_problems(cli.file, &report, r);
	if (r == 0)
		r = count_image_bytes(bundle_reader_index(reader), &bytes);
	if (r == 0 && strcmp(format, "json") == 0)
		r = inspect_json(cli.file, bundle_reader_index(reader), &report, &bytes);
	else if (r == 0)
		inspect_text(cli.file, bundle_reader_index(reader), &report, &bytes);
	bundle_reader_close(reader);
	bundle_report_release(&report);
out_trust:
	bundle_trust_release(&cli.trust);
	return r;
}

static const struct command bundle_commands[] = {
	{ "build",   bundle_build,           "build a bundle from a catalog, fetching its sources with --cache" },
	{ "verify",  bundle_verify_command,  "check the signature and every entry, in one pass" },
	{ "inspect", bundle_inspect_command, "show components, versions, images and disk needed" },
	{ "unpack",  bundle_unpack_command,  "verify and unpack into an empty folder" },
	{ "images",  bundle_images_command,  "list the images a set of manifests needs" },
	{ "pull",    bundle_pull_command,    "pull images from registries into an OCI image layout" },
};

int cmd_bundle(int argc, char **argv)
{
	if (argc < 2) {
		fputs(bundle_usage, stderr);
		return MLB_EUSAGE;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
		fputs(bundle_usage, stdout);
		printf("\nSubcommands:\n");
		for (size_t i = 0; i < ARRAY_SIZE(bundle_commands); i++)
			printf("  %-8s %s\n", bundle_commands[i].name, bundle_commands[i].summary);
		return 0;
	}
	for (size_t i = 0; i < ARRAY_SIZE(bundle_commands); i++)
		if (strcmp(bundle_commands[i].name, argv[1]) == 0)
			return bundle_commands[i].run(argc - 1, argv + 1);
	return cli_usage_error("bundle", "unknown subcommand '%s': use build, verify, inspect, unpack, images or pull", argv[1]);
}
