#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bundle_network.h"
#include "commands.h"
#include "common.h"
#include "images.h"

#define MANIFEST_FILES_MAX 1024
#define MANIFEST_FILE_MAX  (64u * 1024 * 1024)

static const char images_usage[] =
	"usage: mlboot bundle images -f FILE... [-o text|wide|json]\n"
	"\n"
	"Prints the images that a set of rendered Kubernetes manifests needs, one\n"
	"normalised reference a line, sorted and each once. Images are found in\n"
	"containers, init containers and ephemeral containers of every workload kind\n"
	"and custom resource, in --*-image arguments and *_IMAGE environment values,\n"
	"and in the ConfigMaps of KServe, Knative, Istio, Kubeflow Pipelines and\n"
	"Katib (docs/image-discovery.md lists every rule).\n"
	"\n"
	"  -f, --file FILE       a manifest file, '-' for standard input (repeatable)\n"
	"  -o, --output FORMAT   text (default), wide (each image with the places that\n"
	"                        name it) or json\n"
	"\n"
	"Exit status: 0 success, 2 usage error, 3 a manifest is invalid YAML or a\n"
	"container image field is not a valid reference (the images found are still\n"
	"printed).\n";

enum images_output {
	IMAGES_OUTPUT_TEXT,
	IMAGES_OUTPUT_WIDE,
	IMAGES_OUTPUT_JSON,
};

static int read_manifests(const char *path, struct image_set *set)
{
	struct buf data = BUF_INIT(MANIFEST_FILE_MAX);
	struct doc_stream stream = { 0 };
	struct doc_error error = { "", 0, 0 };
	int r;

	if (strcmp(path, "-") == 0) {
		char chunk[65536];
		ssize_t n;

		r = 0;
		while (r == 0 && (n = read(STDIN_FILENO, chunk, sizeof(chunk))) != 0) {
			if (n < 0) {
				r = errno == EINTR ? 0 : -errno;
				continue;
			}
			r = buf_append(&data, chunk, (size_t)n);
		}
	} else {
		r = file_read_all(path, MANIFEST_FILE_MAX, &data);
	}
	if (r < 0) {
		log_errno(LOG_ERR, r, "failed to read the manifests '%s'", path);
		r = r == -EFBIG || r == -E2BIG ? MLB_EINPUT : r;
		goto out;
	}
	r = doc_parse_stream(data.data ? data.data : "", data.len, NULL, &stream, &error);
	if (r < 0) {
		log_error("invalid manifests '%s':%u:%u: %s", path, error.line, error.column, error.message);
		goto out;
	}
	r = image_discover(&stream, path, set);
	if (r < 0)
		log_errno(LOG_ERR, r, "failed to list the images of '%s'", path);
out:
	doc_stream_release(&stream);
	buf_release(&data);
	return r;
}

static int print_json(const struct image_set *set)
{
	struct doc_node *root = doc_new(DOC_SEQ);
	struct buf out = BUF_INIT(256u * 1024 * 1024);
	int r = root ? 0 : -ENOMEM;

	for (size_t i = 0; r == 0 && i < set->count; i++) {
		const struct image_entry *entry = &set->entries[i];
		struct doc_node *item = doc_new(DOC_MAP), *sources = doc_new(DOC_SEQ);

		if (!item || !sources || doc_seq_append(root, item) < 0) {
			doc_free(sources);
			r = -ENOMEM;
			break;
		}
		r = doc_map_set_string(item, "reference", entry->reference);
		if (r == 0)
			r = doc_map_set(item, "sources", sources);
		else
			doc_free(sources);
		for (size_t j = 0; r == 0 && j < entry->source_count; j++) {
			struct doc_node *source = doc_new(DOC_MAP);

			if (!source || doc_seq_append(sources, source) < 0) {
				r = -ENOMEM;
				break;
			}
			r = doc_map_set_string(source, "file", entry->sources[j].file);
			if (r == 0)
				r = doc_map_set(source, "line", doc_new_int(entry->sources[j].line));
			if (r == 0)
				r = doc_map_set_string(source, "object", entry->sources[j].object);
			if (r == 0)
				r = doc_map_set_string(source, "field", entry->sources[j].field);
		}
	}
	if (r == 0)
		r = doc_write_json(root, &out);
	if (r == 0)
		printf("%s\n", buf_str(&out));
	doc_free(root);
	buf_release(&out);
	return r;
}

static void print_text(const struct image_set *set, bool wide)
{
	for (size_t i = 0; i < set->count; i++) {
		const struct image_entry *entry = &set->entries[i];

		printf("%s\n", entry->reference);
		if (!wide)
			continue;
		for (size_t j = 0; j < entry->source_count; j++)
			printf("    %s:%u: %s: %s\n", entry->sources[j].file, entry->sources[j].line,
			       entry->sources[j].object, entry->sources[j].field);
		if (entry->source_total > entry->source_count)
			printf("    and %zu more places\n", entry->source_total - entry->source_count);
	}
}

int bundle_images_command(int argc, char **argv)
{
	static const struct option options[] = {
		{ "file", required_argument, NULL, 'f' },
		{ "output", required_argument, NULL, 'o' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *files[MANIFEST_FILES_MAX];
	enum images_output output = IMAGES_OUTPUT_TEXT;
	struct image_set set;
	size_t file_count = 0;
	int c, r = 0;

	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":f:o:h", options, NULL)) != -1) {
		switch (c) {
		case 'f':
			if (file_count >= MANIFEST_FILES_MAX)
				return cli_usage_error("bundle images", "more than %d files", MANIFEST_FILES_MAX);
			files[file_count++] = optarg;
			break;
		case 'o':
			if (strcmp(optarg, "text") == 0)
				output = IMAGES_OUTPUT_TEXT;
			else if (strcmp(optarg, "wide") == 0)
				output = IMAGES_OUTPUT_WIDE;
			else if (strcmp(optarg, "json") == 0)
				output = IMAGES_OUTPUT_JSON;
			else
				return cli_usage_error("bundle images", "invalid output format '%s': use text, wide or json",
						       optarg);
			break;
		case 'h':
			fputs(images_usage, stdout);
			return 0;
		case ':':
			return cli_usage_error("bundle images", "option '%s' requires a value", argv[optind - 1]);
		default:
			return cli_usage_error("bundle images", "unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind < argc)
		return cli_usage_error("bundle images", "unexpected argument '%s': name manifest files with -f",
				       argv[optind]);
	if (file_count == 0)
		return cli_usage_error("bundle images", "missing -f FILE");

	image_set_init(&set);
	for (size_t i = 0; i < file_count; i++) {
		int file_result = read_manifests(files[i], &set);

		if (file_result == -ENOMEM || file_result == -E2BIG) {
			r = file_result;
			goto out;
		}
		if (file_result < 0 && r == 0)
			r = file_result;
	}
	for (size_t i = 0; i < set.problem_count; i++)
		log_error("%s", set.problems[i]);
	if (set.problem_total > set.problem_count)
		log_error("%zu more invalid image references not shown", set.problem_total - set.problem_count);
	if (set.problem_total > 0 && r == 0)
		r = MLB_EINPUT;

	if (output == IMAGES_OUTPUT_JSON) {
		int print_result = print_json(&set);

		if (print_result < 0)
			r = log_errno(LOG_ERR, print_result, "failed to write the image list as JSON");
	} else {
		print_text(&set, output == IMAGES_OUTPUT_WIDE);
	}
	log_info("%zu images in %zu files", set.count, file_count);
out:
	image_set_release(&set);
	return r;
}
