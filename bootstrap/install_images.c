/*
 * Images and binaries onto the nodes.
 *
 * Each node gets one listing of its containerd: the images with their
 * digests and labels, and every blob of the content store. Then each image
 * it lacks gets one "ctr images import -", fed an OCI archive that
 * libarchive writes on the fly from the bundle. The archive carries the
 * index, oci-layout and only the blobs the node lacks: ctr 1.6.20 imports
 * such an archive and finds the other blobs in its content store (checked
 * in the testbed, see docs/install.md). containerd checks every blob
 * against its digest as it arrives.
 *
 * One import per image: when a connection is cut, ctr drops the blobs of
 * the import in flight (its lease ends), but the images imported before
 * stay, so a retry sends only what is still missing.
 */
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "images.h"
#include "install.h"
#include "report.h"

#define LISTING_MAX (64u * 1024 * 1024)
#define BLOB_PREFIX "images/blobs/sha256/"
/* Attempts of one node's step when the connection drops, and the first pause between them. */
#define NODE_ATTEMPTS 4
#define NODE_RETRY_PAUSE_MS 1000L

static const char listing_script[] =
	"set -e\n"
	"uname -m\n"
	"echo --\n"
	"ctr -n k8s.io images ls\n"
	"echo --\n"
	"ctr -n k8s.io content ls -q\n";

static const char pin_script[] =
	"for name do\n"
	"  ctr -n k8s.io images label \"$name\" " INSTALL_PINNED_LABEL "=pinned >/dev/null || exit 1\n"
	"done\n";

/* --- Parsing what a node has --------------------------------------------- */

void install_node_images_release(struct install_node_images *images)
{
	for (size_t i = 0; i < images->image_count; i++) {
		free(images->names[i]);
		free(images->digests[i]);
	}
	for (size_t i = 0; i < images->blob_count; i++)
		free(images->blobs[i]);
	free(images->names);
	free(images->digests);
	free(images->pinned);
	free(images->blobs);
	memset(images, 0, sizeof(*images));
}

const char *install_oci_arch(const char *machine)
{
	static const struct {
		const char *machine;
		const char *arch;
	} map[] = {
		{ "x86_64", "amd64" }, { "amd64", "amd64" }, { "aarch64", "arm64" }, { "arm64", "arm64" },
		{ "armv7l", "arm" }, { "armv6l", "arm" }, { "ppc64le", "ppc64le" }, { "s390x", "s390x" },
		{ "riscv64", "riscv64" },
	};

	for (size_t i = 0; i < ARRAY_SIZE(map); i++)
		if (strcmp(map[i].machine, machine) == 0)
			return map[i].arch;
	return NULL;
}

static int compare_strings(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Splits the next line off *cursor (without its newline); NULL at the end. */
static char *next_line(char **cursor)
{
	char *line = *cursor, *end;

	if (!line || !*line)
		return NULL;
	end = strchr(line, '\n');
	if (end) {
		*end = '\0';
		*cursor = end + 1;
	} else {
		*cursor = line + strlen(line);
	}
	return line;
}

static int append_string(char ***list, size_t *count, const char *text, size_t len)
{
	char **grown = realloc(*list, (*count + 1) * sizeof(**list));

	if (!grown)
		return -ENOMEM;
	*list = grown;
	grown[*count] = strndup(text, len);
	if (!grown[*count])
		return -ENOMEM;
	(*count)++;
	return 0;
}

/* One line of "ctr images ls": REF TYPE DIGEST SIZE UNIT PLATFORMS LABELS. */
static int parse_image_line(char *line, struct install_node_images *out)
{
	char *fields[16];
	size_t count = 0;
	char *save = NULL, *field;
	size_t names_before = out->image_count;
	bool *pinned;
	int r;

	for (field = strtok_r(line, " \t", &save); field && count < ARRAY_SIZE(fields);
	     field = strtok_r(NULL, " \t", &save))
		fields[count++] = field;
	if (count < 4 || strncmp(fields[2], "sha256:", 7) != 0 || !sha256_is_hex(fields[2] + 7))
		return MLB_EINPUT;
	r = append_string(&out->names, &names_before, fields[0], strlen(fields[0]));
	if (r < 0)
		return r;
	names_before = out->image_count;
	r = append_string(&out->digests, &names_before, fields[2], strlen(fields[2]));
	if (r < 0) {
		free(out->names[out->image_count]);
		return r;
	}
	pinned = realloc(out->pinned, (out->image_count + 1) * sizeof(*pinned));
	if (!pinned) {
		free(out->names[out->image_count]);
		free(out->digests[out->image_count]);
		return -ENOMEM;
	}
	out->pinned = pinned;
	pinned[out->image_count] = strstr(fields[count - 1], INSTALL_PINNED_LABEL "=pinned") != NULL;
	out->image_count++;
	return 0;
}

int install_node_images_parse(const char *output, size_t len, struct install_node_images *out)
{
	char *copy = strndup(output, len), *cursor = copy, *line;
	const char *arch;
	int section = 0, r = 0;

	memset(out, 0, sizeof(*out));
	if (!copy)
		return -ENOMEM;
	line = next_line(&cursor);
	arch = line ? install_oci_arch(line) : NULL;
	if (!arch) {
		r = MLB_EINPUT;
		goto out;
	}
	snprintf(out->arch, sizeof(out->arch), "%s", arch);
	while (r == 0 && (line = next_line(&cursor))) {
		if (strcmp(line, "--") == 0) {
			section++;
			if (section == 1)
				next_line(&cursor);    /* the header line of "ctr images ls" */
			continue;
		}
		if (!*line)
			continue;
		if (section == 1) {
			r = parse_image_line(line, out);
		} else if (section == 2) {
			if (strncmp(line, "sha256:", 7) != 0 || !sha256_is_hex(line + 7))
				r = MLB_EINPUT;
			else
				r = append_string(&out->blobs, &out->blob_count, line, strlen(line));
		} else {
			r = MLB_EINPUT;
		}
	}
	if (r == 0 && section != 2)
		r = MLB_EINPUT;
	if (r == 0 && out->blob_count > 1)
		qsort(out->blobs, out->blob_count, sizeof(*out->blobs), compare_strings);
out:
	free(copy);
	if (r < 0)
		install_node_images_release(out);
	return r;
}

bool install_node_has_blob(const struct install_node_images *images, const char *digest)
{
	return images->blob_count &&
	       bsearch(&digest, images->blobs, images->blob_count, sizeof(*images->blobs), compare_strings);
}

bool install_node_has_image(const struct install_node_images *images, const char *name, const char *digest,
			    bool pin)
{
	for (size_t i = 0; i < images->image_count; i++)
		if (strcmp(images->names[i], name) == 0)
			return strcmp(images->digests[i], digest) == 0 && (!pin || images->pinned[i]);
	return false;
}

/* --- What a node needs of an image --------------------------------------- */

/* The bundle file of a blob digest ("sha256:HEX"); NULL when the bundle lacks it. */
static const struct bundle_file *blob_file(const struct bundle_index *index, const char *digest)
{
	char path[sizeof(BLOB_PREFIX) + SHA256_HEX_LEN + 1];

	if (strncmp(digest, "sha256:", 7) != 0)
		return NULL;
	snprintf(path, sizeof(path), BLOB_PREFIX "%s", digest + 7);
	return bundle_index_find_file(index, path);
}

static int collect_bytes(void *context, const void *data, size_t len)
{
	return buf_append(context, data, len);
}

static int read_blob(struct bundle_reader *reader, const struct bundle_file *file, struct buf *out)
{
	buf_reset(out);
	return bundle_reader_stream(reader, file, collect_bytes, out);
}

struct blob_list {
	const struct bundle_file **files;
	char **digests;
	size_t count;
};

static void blob_list_release(struct blob_list *list)
{
	for (size_t i = 0; i < list->count; i++)
		free(list->digests[i]);
	free(list->digests);
	free(list->files);
	memset(list, 0, sizeof(*list));
}

static int blob_list_add(struct blob_list *list, const struct bundle_index *index, const char *digest)
{
	const struct bundle_file *file = blob_file(index, digest);
	const struct bundle_file **files;
	char **digests;

	if (!file) {
		log_error("blob '%s' is not in the bundle", digest);
		return MLB_EINTEGRITY;
	}
	for (size_t i = 0; i < list->count; i++)
		if (list->files[i] == file)
			return 0;
	files = realloc(list->files, (list->count + 1) * sizeof(*files));
	if (!files)
		return -ENOMEM;
	list->files = files;
	digests = realloc(list->digests, (list->count + 1) * sizeof(*digests));
	if (!digests)
		return -ENOMEM;
	list->digests = digests;
	digests[list->count] = strdup(digest);
	if (!digests[list->count])
		return -ENOMEM;
	files[list->count++] = file;
	return 0;
}

/* Adds a manifest and the config and layers it names. */
static int add_manifest_blobs(struct blob_list *list, const struct bundle_index *index,
			      const char *digest, const struct image_manifest *manifest)
{
	int r = blob_list_add(list, index, digest);

	if (r == 0 && manifest->config.digest[0])
		r = blob_list_add(list, index, manifest->config.digest);
	for (size_t i = 0; r == 0 && i < manifest->count; i++)
		r = blob_list_add(list, index, manifest->descriptors[i].digest);
	return r;
}

/*
 * Lists the blobs a node of architecture arch needs for image. For an
 * image manifest they are the manifest, its config and its layers. For an
 * index they are the index and the manifest for linux/arch with its blobs.
 */
static int image_blobs(struct bundle_reader *reader, const struct bundle_image *image, const char *arch,
		       struct blob_list *out)
{
	const struct bundle_index *index = bundle_reader_index(reader);
	struct image_manifest top = { 0 }, selected = { 0 };
	struct image_platform platform = { 0 };
	struct buf data = BUF_INIT(IMAGE_MANIFEST_MAX);
	const struct bundle_file *file = blob_file(index, image->digest);
	size_t position;
	int r;

	if (!file) {
		log_error("image '%s': its manifest '%s' is not in the bundle", image->name, image->digest);
		return MLB_EINTEGRITY;
	}
	r = read_blob(reader, file, &data);
	if (r == 0)
		r = image_manifest_parse(data.data, data.len, image->media_type, &top);
	if (r < 0)
		goto out;
	if (top.kind == IMAGE_MANIFEST_IMAGE) {
		r = add_manifest_blobs(out, index, image->digest, &top);
		goto out;
	}
	snprintf(platform.os, sizeof(platform.os), "linux");
	snprintf(platform.architecture, sizeof(platform.architecture), "%s", arch);
	r = image_index_select(&top, &platform, &position);
	if (r < 0) {
		log_error("image '%s' has no manifest for linux/%s, the platform of the node", image->name, arch);
		goto out;
	}
	r = blob_list_add(out, index, image->digest);
	if (r < 0)
		goto out;
	file = blob_file(index, top.descriptors[position].digest);
	if (!file) {
		log_error("image '%s': the bundle lacks its manifest for linux/%s", image->name, arch);
		r = MLB_EINTEGRITY;
		goto out;
	}
	r = read_blob(reader, file, &data);
	if (r == 0)
		r = image_manifest_parse(data.data, data.len, top.descriptors[position].media_type, &selected);
	if (r == 0)
		r = add_manifest_blobs(out, index, top.descriptors[position].digest, &selected);
out:
	image_manifest_release(&top);
	image_manifest_release(&selected);
	buf_release(&data);
	return r;
}

/* --- Writing the archive ---------------------------------------------------- */

struct archive_job {
	struct bundle_reader *reader;
	const struct bundle_image *image;
	const struct bundle_file *top;       /* the image's manifest or index */
	const struct bundle_file **blobs;    /* the blobs to send */
	size_t blob_count;
	int fd;                              /* the pipe's write end */
	struct archive *archive;
	int result;
};

static int write_entry_data(void *context, const void *data, size_t len)
{
	struct archive_job *job = context;
	const char *bytes = data;

	while (len > 0) {
		la_ssize_t n = archive_write_data(job->archive, bytes, len);

		if (n <= 0)
			return -EPIPE;
		bytes += n;
		len -= (size_t)n;
	}
	return 0;
}

static int write_entry_header(struct archive_job *job, const char *path, uint64_t size)
{
	struct archive_entry *entry = archive_entry_new();
	int r;

	if (!entry)
		return -ENOMEM;
	archive_entry_set_pathname(entry, path);
	archive_entry_set_size(entry, (la_int64_t)size);
	archive_entry_set_filetype(entry, AE_IFREG);
	archive_entry_set_perm(entry, 0644);
	archive_entry_set_mtime(entry, 0, 0);
	r = archive_write_header(job->archive, entry) == ARCHIVE_OK ? 0 : -EPIPE;
	archive_entry_free(entry);
	return r;
}

static int index_json(const struct bundle_image *image, uint64_t size, struct buf *out)
{
	struct image_reference reference;
	int r;

	r = buf_append_str(out, "{\"schemaVersion\":2,\"mediaType\":\"" IMAGE_MEDIA_OCI_INDEX "\",\"manifests\":[{"
				"\"mediaType\":");
	if (r == 0)
		r = doc_write_json_string(out, image->media_type, strlen(image->media_type));
	if (r == 0)
		r = buf_printf(out, ",\"digest\":\"%s\",\"size\":%llu,\"annotations\":{\"" IMAGE_ANNOTATION_CONTAINERD_NAME
			       "\":", image->digest, (unsigned long long)size);
	if (r == 0)
		r = doc_write_json_string(out, image->name, strlen(image->name));
	if (r == 0 && image_reference_parse(image->name, &reference) == 0 && reference.tag[0]) {
		r = buf_append_str(out, ",\"" IMAGE_ANNOTATION_REF_NAME "\":");
		if (r == 0)
			r = doc_write_json_string(out, reference.tag, strlen(reference.tag));
	}
	if (r == 0)
		r = buf_append_str(out, "}}]}");
	return r;
}

static void *archive_job_main(void *argument)
{
	struct archive_job *job = argument;
	static const char layout[] = "{\"imageLayoutVersion\":\"1.0.0\"}";
	struct buf index = BUF_INIT(64 * 1024);
	int r;

	job->archive = archive_write_new();
	if (!job->archive) {
		r = -ENOMEM;
		goto out;
	}
	if (archive_write_set_format_pax_restricted(job->archive) != ARCHIVE_OK ||
	    archive_write_set_bytes_in_last_block(job->archive, 1) != ARCHIVE_OK ||
	    archive_write_open_fd(job->archive, job->fd) != ARCHIVE_OK) {
		r = -EIO;
		goto out;
	}
	r = index_json(job->image, job->top->size, &index);
	if (r == 0)
		r = write_entry_header(job, "oci-layout", strlen(layout));
	if (r == 0)
		r = write_entry_data(job, layout, strlen(layout));
	if (r == 0)
		r = write_entry_header(job, "index.json", index.len);
	if (r == 0)
		r = write_entry_data(job, index.data, index.len);
	for (size_t i = 0; r == 0 && i < job->blob_count; i++) {
		const struct bundle_file *file = job->blobs[i];
		char path[sizeof("blobs/sha256/") + SHA256_HEX_LEN + 1];

		snprintf(path, sizeof(path), "blobs/sha256/%s", file->path + strlen(BLOB_PREFIX));
		r = write_entry_header(job, path, file->size);
		if (r == 0)
			r = bundle_reader_stream(job->reader, file, write_entry_data, job);
	}
	/* A failed archive is left without its end, so that ctr rejects it instead of importing a part. */
	if (r == 0 && archive_write_close(job->archive) != ARCHIVE_OK)
		r = -EPIPE;
out:
	if (job->archive)
		archive_write_free(job->archive);
	job->archive = NULL;
	close(job->fd);
	job->fd = -1;
	buf_release(&index);
	job->result = r;
	return NULL;
}

struct pipe_source {
	int fd;
	uint64_t bytes;
};

static ssize_t pipe_read(void *context, void *buffer, size_t size)
{
	struct pipe_source *source = context;

	for (;;) {
		ssize_t n = read(source->fd, buffer, size);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		source->bytes += (uint64_t)n;
		return n;
	}
}

/* --- One node ------------------------------------------------------------------ */

struct images_context {
	struct install *install;
	const struct bundle_image **images;  /* the images of the selected components */
	size_t image_count;
	char digest[SHA256_HEX_LEN + 1];
	bool plan_only;
	struct node_host *hosts;
};

/* Per-node counters, reported when the node is done. */
struct node_transfer {
	unsigned long imported;
	unsigned long present;
	unsigned long blobs_sent;
	unsigned long blobs_present;
	uint64_t bytes_sent;
};

static int run_listing(struct node_session *session, struct install_node_images *images, struct node_error *err)
{
	const char *const argv[] = { "sh", "-c", listing_script, NULL };
	struct node_command command = { .argv = argv, .stdout_max = LISTING_MAX, .timeout_ms = 120000 };
	struct node_result result;
	int r;

	node_result_init(&result);
	r = node_run(session, &command, &result, err);
	if (r < 0)
		goto out;
	if (result.exit_status != 0 || result.out_truncated) {
		snprintf(err->message, sizeof(err->message),
			 "%s: listing containerd's images failed (exit status %d): %.300s",
			 node_session_host(session)->name, result.exit_status, buf_str(&result.err));
		r = MLB_EFAILED;
		goto out;
	}
	r = install_node_images_parse(result.out.data ? result.out.data : "", result.out.len, images);
	if (r < 0)
		snprintf(err->message, sizeof(err->message), "%s: cannot read the output of 'ctr images ls' and "
			 "'ctr content ls' (or 'uname -m' names an unknown architecture)",
			 node_session_host(session)->name);
out:
	node_result_release(&result);
	return r;
}

/* Imports one image, sending the blobs the node lacks. */
static int import_image(struct node_session *session, struct bundle_reader *reader,
			const struct bundle_image *image, const struct blob_list *missing,
			const struct bundle_file *top, uint64_t *bytes, struct node_error *err)
{
	const char *const argv[] = { "ctr", "-n", "k8s.io", "images", "import", "-", NULL };
	struct archive_job job = { .reader = reader, .image = image, .top = top, .blobs = missing->files,
				   .blob_count = missing->count, .fd = -1 };
	struct pipe_source source = { .fd = -1 };
	struct node_command command = { .argv = argv, .stdin_read = pipe_read, .stdin_context = &source };
	struct node_result result;
	pthread_t thread;
	int fds[2], r;

	node_result_init(&result);
	if (pipe2(fds, O_CLOEXEC) < 0)
		return -errno;
	source.fd = fds[0];
	job.fd = fds[1];
	if (pthread_create(&thread, NULL, archive_job_main, &job) != 0) {
		close(fds[0]);
		close(fds[1]);
		return -EAGAIN;
	}
	r = node_run(session, &command, &result, err);
	/* Closing the read end ends a writer that ctr stopped reading from. */
	close(source.fd);
	pthread_join(thread, NULL);
	*bytes = source.bytes;
	if (r < 0)
		goto out;
	if (job.result < 0) {
		snprintf(err->message, sizeof(err->message), "%s: image '%s': reading it from the bundle failed: %s",
			 node_session_host(session)->name, image->name, mlb_strerror(job.result));
		r = job.result;
		goto out;
	}
	if (result.exit_status != 0) {
		struct buf escaped = BUF_INIT(4096);

		report_escape_terminal(&escaped, buf_str(&result.err));
		snprintf(err->message, sizeof(err->message), "%s: 'ctr images import' of '%s' failed (exit status %d): %s",
			 node_session_host(session)->name, image->name, result.exit_status, buf_str(&escaped));
		buf_release(&escaped);
		r = MLB_EFAILED;
	}
out:
	node_result_release(&result);
	return r;
}

static int pin_images(struct node_session *session, const char **names, size_t count, struct node_error *err)
{
	const char **argv = calloc(count + 5, sizeof(*argv));
	struct node_command command = { 0 };
	struct node_result result;
	int r;

	if (!argv)
		return -ENOMEM;
	argv[0] = "sh";
	argv[1] = "-c";
	argv[2] = pin_script;
	argv[3] = "mlboot-pin";
	for (size_t i = 0; i < count; i++)
		argv[4 + i] = names[i];
	command.argv = (const char *const *)argv;
	node_result_init(&result);
	r = node_run(session, &command, &result, err);
	if (r == 0 && result.exit_status != 0) {
		snprintf(err->message, sizeof(err->message), "%s: labelling images %s=pinned failed (exit status %d)",
			 node_session_host(session)->name, INSTALL_PINNED_LABEL, result.exit_status);
		r = MLB_EFAILED;
	}
	node_result_release(&result);
	free(argv);
	return r;
}

/* Brings one node's containerd up to the bundle's images; one attempt. */
static int node_images_once(struct images_context *context, const struct node_host *host,
			    struct node_transfer *transfer, struct node_error *err)
{
	struct install *install = context->install;
	bool pin = install->config.images_pin;
	struct node_session *session = NULL;
	struct bundle_reader *reader = NULL, *source;
	struct bundle_report report;
	struct install_node_images have = { 0 };
	const char **to_pin = calloc(context->image_count + 1, sizeof(*to_pin));
	char **sent = NULL;
	size_t pin_count = 0, sent_count = 0;
	int r;

	bundle_report_init(&report);
	if (!to_pin) {
		r = -ENOMEM;
		goto out;
	}
	r = node_connect(host, &install->node_options, &session, err);
	if (r < 0)
		goto out;
	r = run_listing(session, &have, err);
	if (r < 0)
		goto out;
	if (!context->plan_only) {
		r = bundle_reader_open(install->bundle_path, &install->check_options, &reader, &report);
		if (r < 0) {
			snprintf(err->message, sizeof(err->message), "%s: cannot open the bundle '%s': %s", host->name,
				 install->bundle_path, report.count ? report.messages[0] : mlb_strerror(r));
			goto out;
		}
	}
	/* A dry run reads manifests on one thread through the main reader. */
	source = reader ? reader : install->reader;
	for (size_t i = 0; i < context->image_count; i++) {
		const struct bundle_image *image = context->images[i];
		struct blob_list needed = { 0 }, missing = { 0 };
		uint64_t bytes = 0, missing_bytes = 0;

		if (install_node_has_image(&have, image->name, image->digest, false)) {
			transfer->present++;
			if (pin && !install_node_has_image(&have, image->name, image->digest, true))
				to_pin[pin_count++] = image->name;
			continue;
		}
		r = image_blobs(source, image, have.arch, &needed);
		for (size_t b = 0; r == 0 && b < needed.count; b++) {
			bool present = install_node_has_blob(&have, needed.digests[b]);

			for (size_t s = 0; !present && s < sent_count; s++)
				present = strcmp(sent[s], needed.digests[b]) == 0;
			if (present) {
				transfer->blobs_present++;
				continue;
			}
			r = blob_list_add(&missing, bundle_reader_index(source), needed.digests[b]);
			missing_bytes += needed.files[b]->size;
		}
		if (r == 0 && context->plan_only) {
			printf("  %s: %s missing: %zu of %zu blobs to send, %llu bytes\n", host->name, image->name,
			       missing.count, needed.count, (unsigned long long)missing_bytes);
			transfer->imported++;
			transfer->blobs_sent += missing.count;
			transfer->bytes_sent += missing_bytes;
		} else if (r == 0) {
			log_debug("%s: importing %s: %zu of %zu blobs to send", host->name, image->name, missing.count,
				  needed.count);
			r = import_image(session, reader, image, &missing, blob_file(bundle_reader_index(reader),
										  image->digest),
					 &bytes, err);
			transfer->bytes_sent += bytes;
			/*
			 * A blob that no image refers to, such as one left by an
			 * import cut short, may be removed by containerd's garbage
			 * collection between the listing and the import. ctr then
			 * reports it "not found": send the image again, whole.
			 */
			if (r == MLB_EFAILED && missing.count < needed.count && strstr(err->message, "not found")) {
				log_warning("%s; sending all %zu blobs of '%s' again", err->message, needed.count,
					    image->name);
				err->message[0] = '\0';
				bytes = 0;
				r = import_image(session, reader, image, &needed,
						 blob_file(bundle_reader_index(reader), image->digest), &bytes, err);
				transfer->bytes_sent += bytes;
				if (r == 0) {
					blob_list_release(&missing);
					missing = needed;
					needed = (struct blob_list){ 0 };
				}
			}
		}
		if (r == 0 && !context->plan_only) {
			transfer->imported++;
			transfer->blobs_sent += missing.count;
			to_pin[pin_count++] = image->name;
			for (size_t b = 0; r == 0 && b < missing.count; b++)
				r = append_string(&sent, &sent_count, missing.digests[b], strlen(missing.digests[b]));
		}
		blob_list_release(&needed);
		blob_list_release(&missing);
		if (r < 0)
			goto out;
	}
	if (context->plan_only)
		goto out;
	if (pin && pin_count > 0) {
		r = pin_images(session, to_pin, pin_count, err);
		if (r < 0)
			goto out;
	}
	/* Confirm with a new listing: every image at its digest, pinned when asked. */
	install_node_images_release(&have);
	r = run_listing(session, &have, err);
	if (r < 0)
		goto out;
	for (size_t i = 0; i < context->image_count; i++)
		if (!install_node_has_image(&have, context->images[i]->name, context->images[i]->digest, pin)) {
			snprintf(err->message, sizeof(err->message), "%s: image '%s' is %s after the import", host->name,
				 context->images[i]->name,
				 install_node_has_image(&have, context->images[i]->name, context->images[i]->digest, false)
					 ? "not pinned" : "not listed by containerd");
			r = MLB_EFAILED;
			goto out;
		}
out:
	for (size_t i = 0; i < sent_count; i++)
		free(sent[i]);
	free(sent);
	free(to_pin);
	install_node_images_release(&have);
	bundle_reader_close(reader);
	bundle_report_release(&report);
	node_close(session);
	return r;
}

static bool is_connection_failure(int r)
{
	return r == MLB_EUNREACHABLE || r == -ETIMEDOUT || r == -EPROTO;
}

static int images_task(const struct node_host *host, size_t index, void *argument, struct node_error *err)
{
	struct images_context *context = argument;
	struct install *install = context->install;
	struct node_transfer transfer = { 0 };
	char step[NODE_NAME_MAX + 16];
	long pause = NODE_RETRY_PAUSE_MS;
	int r = 0;

	(void)index;
	snprintf(step, sizeof(step), "images/%s", host->name);
	if (!context->plan_only) {
		if (install_step_done(install, step, context->digest)) {
			log_info("%s: done before with the same inputs; skipped", step);
			pthread_mutex_lock(&install->lock);
			install->totals.steps_skipped++;
			pthread_mutex_unlock(&install->lock);
			return 0;
		}
		install_step_record(install, step, context->digest, JOURNAL_START, NULL);
	}
	for (int attempt = 1; attempt <= NODE_ATTEMPTS; attempt++) {
		err->message[0] = '\0';
		r = node_images_once(context, host, &transfer, err);
		if (r == 0 || !is_connection_failure(r) || attempt == NODE_ATTEMPTS || context->plan_only)
			break;
		log_warning("%s (attempt %d of %d); trying again in %ld ms, sending only what is still missing",
			    err->message, attempt, NODE_ATTEMPTS, pause);
		install_sleep_ms(pause);
		pause *= 2;
	}
	if (context->plan_only) {
		if (r == 0)
			printf("  %s: %lu images to import (%llu bytes), %lu present\n", host->name, transfer.imported,
			       (unsigned long long)transfer.bytes_sent, transfer.present);
		return r;
	}
	pthread_mutex_lock(&install->lock);
	install->totals.images_imported += transfer.imported;
	install->totals.bytes_sent += transfer.bytes_sent;
	install->totals.blobs_sent += transfer.blobs_sent;
	install->totals.blobs_present += transfer.blobs_present;
	pthread_mutex_unlock(&install->lock);
	if (r < 0) {
		if (!err->message[0])
			snprintf(err->message, sizeof(err->message), "%s: %s", host->name, mlb_strerror(r));
		install_step_record(install, step, context->digest, JOURNAL_FAILED, err->message);
		return r;
	}
	log_info("%s: %lu images imported (%lu blobs, %llu bytes sent; %lu blobs were there), %lu were there",
		 step, transfer.imported, transfer.blobs_sent, (unsigned long long)transfer.bytes_sent,
		 transfer.blobs_present, transfer.present);
	install_step_record(install, step, context->digest, JOURNAL_DONE, NULL);
	pthread_mutex_lock(&install->lock);
	install->totals.steps_run++;
	pthread_mutex_unlock(&install->lock);
	return 0;
}

/* The images of the selected components, each once, in the index's order (sorted by name). */
static int collect_images(struct install *install, struct images_context *context)
{
	const struct bundle_index *index = install->index;
	struct buf text = BUF_INIT(16 * 1024 * 1024);
	int r;

	context->images = calloc(index->image_count + 1, sizeof(*context->images));
	if (!context->images)
		return -ENOMEM;
	for (size_t i = 0; i < index->image_count; i++) {
		bool wanted = false;

		for (size_t c = 0; c < install->component_count && !wanted; c++) {
			const struct bundle_component *component = install->components[c].bundle;

			if (!install->components[c].selected)
				continue;
			for (size_t k = 0; k < component->image_count; k++)
				if (strcmp(component->images[k], index->images[i].name) == 0)
					wanted = true;
		}
		if (wanted)
			context->images[context->image_count++] = &index->images[i];
	}
	r = buf_printf(&text, "images\npin %d\n", install->config.images_pin ? 1 : 0);
	for (size_t i = 0; r == 0 && i < context->image_count; i++)
		r = buf_printf(&text, "%s %s\n", context->images[i]->name, context->images[i]->digest);
	if (r == 0)
		r = install_digest_text(text.data, text.len, context->digest);
	buf_release(&text);
	return r;
}

static void hosts_release(struct node_host *hosts, size_t count)
{
	for (size_t i = 0; hosts && i < count; i++)
		node_host_release(&hosts[i]);
	free(hosts);
}

static int hosts_from_config(const struct config *config, struct node_host **out)
{
	struct node_host *hosts = calloc(config->host_count + 1, sizeof(*hosts));
	int r = 0;

	if (!hosts)
		return -ENOMEM;
	for (size_t i = 0; r == 0 && i < config->host_count; i++)
		r = config_host_to_node(&config->hosts[i], &hosts[i]);
	if (r < 0) {
		hosts_release(hosts, config->host_count);
		return r;
	}
	*out = hosts;
	return 0;
}

static int images_run(struct install *install, bool plan_only)
{
	struct images_context context = { .install = install, .plan_only = plan_only };
	struct node_outcome *outcomes = NULL;
	size_t failed = 0;
	int r;

	r = collect_images(install, &context);
	if (r < 0)
		goto out;
	if (context.image_count == 0) {
		log_info("images: the selected components need no images");
		goto out;
	}
	r = hosts_from_config(&install->config, &context.hosts);
	if (r < 0)
		goto out;
	outcomes = calloc(install->config.host_count + 1, sizeof(*outcomes));
	if (!outcomes) {
		r = -ENOMEM;
		goto out;
	}
	if (plan_only)
		printf("images (%zu in the bundle for the selected components)\n", context.image_count);
	else
		log_info("images: %zu images to %zu nodes, %u at a time", context.image_count,
			 install->config.host_count, install->config.parallelism);
	r = node_for_each(context.hosts, install->config.host_count, plan_only ? 1 : install->config.parallelism,
			  images_task, &context, outcomes);
	for (size_t i = 0; i < install->config.host_count; i++) {
		if (outcomes[i].result == 0)
			continue;
		failed++;
		log_error("images/%s failed: %s", context.hosts[i].name, outcomes[i].error.message);
		if (!install->failure[0])
			install_set_failure(install, "images/%s: %s", context.hosts[i].name, outcomes[i].error.message);
	}
	if (failed)
		log_error("images: %zu of %zu nodes failed; the other nodes have every image", failed,
			  install->config.host_count);
out:
	hosts_release(context.hosts, install->config.host_count);
	free(outcomes);
	free(context.images);
	return r;
}

int install_images(struct install *install)
{
	return images_run(install, false);
}

int install_images_plan(struct install *install)
{
	return images_run(install, true);
}

/* --- Binaries ---------------------------------------------------------------------- */

struct binary_copy {
	const struct bundle_binary *binary;
	const struct bundle_file *file;
	char *local_path;        /* extracted under the state folder */
};

struct binaries_context {
	struct install *install;
	struct binary_copy *copies;
	size_t count;
	char digest[SHA256_HEX_LEN + 1];
	struct node_host *hosts;
};

static int write_to_fd(void *context, const void *data, size_t len)
{
	return file_write_full(*(int *)context, data, len);
}

/* Streams a binary out of the bundle into a private file beside the journal, for node_upload(). */
static int extract_binary(struct install *install, struct binary_copy *copy)
{
	int fd, r;

	if (asprintf(&copy->local_path, "%s/.binary-%s-%.12s", install->state_dir, copy->binary->name,
		     copy->file->path) < 0) {
		copy->local_path = NULL;
		return -ENOMEM;
	}
	for (char *p = copy->local_path + strlen(install->state_dir) + 1; *p; p++)
		if (*p == '/')
			*p = '_';
	fd = open(copy->local_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0700);
	if (fd < 0)
		return log_errno(LOG_ERR, -errno, "failed to create '%s'", copy->local_path);
	r = bundle_reader_stream(install->reader, copy->file, write_to_fd, &fd);
	if (close(fd) < 0 && r == 0)
		r = -errno;
	if (r < 0)
		log_errno(LOG_ERR, r, "failed to read binary '%s' from the bundle", copy->file->path);
	return r;
}

/* Whether path on the node has the sha256 expected: 1 yes, 0 no (or missing), negative when the node failed. */
static int node_file_has_sha256(struct node_session *session, const char *path, const char *expected,
				struct node_error *err)
{
	const char *const argv[] = { "sha256sum", "--", path, NULL };
	struct node_command command = { .argv = argv, .stdout_max = 4096 };
	struct node_result result;
	int r;

	node_result_init(&result);
	r = node_run(session, &command, &result, err);
	if (r == 0)
		r = result.exit_status == 0 && result.out.len >= SHA256_HEX_LEN &&
		    memcmp(result.out.data, expected, SHA256_HEX_LEN) == 0;
	node_result_release(&result);
	return r;
}

static int binaries_task(const struct node_host *host, size_t index, void *argument, struct node_error *err)
{
	struct binaries_context *context = argument;
	struct install *install = context->install;
	const char *const uname_argv[] = { "uname", "-m", NULL };
	struct node_command uname_command = { .argv = uname_argv };
	struct node_session *session = NULL;
	struct node_result result;
	char step[NODE_NAME_MAX + 16], platform[64];
	const char *arch;
	unsigned uploaded = 0;
	int r;

	(void)index;
	if (host->role != NODE_ROLE_CONTROL_PLANE)
		return 0;
	snprintf(step, sizeof(step), "binaries/%s", host->name);
	if (install_step_done(install, step, context->digest)) {
		log_info("%s: done before with the same inputs; skipped", step);
		pthread_mutex_lock(&install->lock);
		install->totals.steps_skipped++;
		pthread_mutex_unlock(&install->lock);
		return 0;
	}
	install_step_record(install, step, context->digest, JOURNAL_START, NULL);
	node_result_init(&result);
	r = node_connect(host, &install->node_options, &session, err);
	if (r == 0)
		r = node_run(session, &uname_command, &result, err);
	if (r < 0)
		goto out;
	if (result.out.len && result.out.data[result.out.len - 1] == '\n')
		result.out.data[--result.out.len] = '\0';
	arch = install_oci_arch(buf_str(&result.out));
	if (!arch) {
		snprintf(err->message, sizeof(err->message), "%s: unknown architecture '%.60s'", host->name,
			 buf_str(&result.out));
		r = MLB_EFAILED;
		goto out;
	}
	snprintf(platform, sizeof(platform), "linux/%s", arch);
	for (size_t i = 0; i < context->count && r == 0; i++) {
		const struct binary_copy *copy = &context->copies[i];
		char destination[NODE_PATH_MAX], expected[SHA256_HEX_LEN + 1];
		struct node_upload upload = { 0 };
		struct node_upload_stats stats;

		if (strcmp(copy->binary->platform, platform) != 0)
			continue;
		snprintf(destination, sizeof(destination), "/usr/local/bin/%s", copy->binary->name);
		sha256_to_hex(copy->file->sha256, expected);
		r = node_file_has_sha256(session, destination, expected, err);
		if (r == 1) {
			log_debug("%s: %s is already there with sha256 %s", host->name, destination, expected);
			r = 0;
			uploaded++;
			continue;
		}
		if (r < 0)
			break;
		upload.source_path = copy->local_path;
		upload.expected_sha256 = expected;
		upload.destination = destination;
		upload.mode = 0755;
		/* The journal records this step as done next, so the binary must survive a power cut. */
		upload.sync = true;
		r = node_upload(session, &upload, &stats, err);
		if (r == 0) {
			uploaded++;
			pthread_mutex_lock(&install->lock);
			install->totals.bytes_sent += stats.bytes_sent;
			pthread_mutex_unlock(&install->lock);
		}
	}
out:
	node_result_release(&result);
	node_close(session);
	if (r < 0) {
		install_step_record(install, step, context->digest, JOURNAL_FAILED, err->message);
		return r;
	}
	log_info("%s: %u binaries in /usr/local/bin, checked by sha256", step, uploaded);
	install_step_record(install, step, context->digest, JOURNAL_DONE, NULL);
	pthread_mutex_lock(&install->lock);
	install->totals.steps_run++;
	pthread_mutex_unlock(&install->lock);
	return 0;
}

int install_binaries(struct install *install)
{
	struct binaries_context context = { .install = install };
	struct node_outcome *outcomes = NULL;
	struct buf text = BUF_INIT(1024 * 1024);
	size_t total = 0;
	int r = 0;

	for (size_t c = 0; c < install->component_count; c++)
		if (install->components[c].selected)
			total += install->components[c].bundle->binary_count;
	if (total == 0)
		return 0;
	context.copies = calloc(total, sizeof(*context.copies));
	if (!context.copies)
		return -ENOMEM;
	r = buf_append_str(&text, "binaries\n");
	for (size_t c = 0; r == 0 && c < install->component_count; c++) {
		const struct bundle_component *component = install->components[c].bundle;

		if (!install->components[c].selected)
			continue;
		for (size_t b = 0; r == 0 && b < component->binary_count; b++) {
			struct binary_copy *copy = &context.copies[context.count];
			char hex[SHA256_HEX_LEN + 1];

			copy->binary = &component->binaries[b];
			copy->file = bundle_index_find_file(install->index, copy->binary->path);
			if (!copy->file) {
				log_error("binary '%s' is listed in the bundle's index but not stored in it",
					  copy->binary->path);
				r = MLB_EINTEGRITY;
				break;
			}
			context.count++;
			sha256_to_hex(copy->file->sha256, hex);
			r = buf_printf(&text, "%s %s %s\n", copy->binary->name, copy->binary->platform, hex);
		}
	}
	if (r == 0)
		r = install_digest_text(text.data, text.len, context.digest);
	for (size_t i = 0; r == 0 && i < context.count; i++)
		r = extract_binary(install, &context.copies[i]);
	if (r == 0)
		r = hosts_from_config(&install->config, &context.hosts);
	if (r < 0)
		goto out;
	outcomes = calloc(install->config.host_count + 1, sizeof(*outcomes));
	if (!outcomes) {
		r = -ENOMEM;
		goto out;
	}
	r = node_for_each(context.hosts, install->config.host_count, install->config.parallelism, binaries_task,
			  &context, outcomes);
	for (size_t i = 0; i < install->config.host_count; i++)
		if (outcomes[i].result < 0) {
			log_error("binaries/%s failed: %s", context.hosts[i].name, outcomes[i].error.message);
			if (!install->failure[0])
				install_set_failure(install, "binaries/%s: %s", context.hosts[i].name,
						    outcomes[i].error.message);
		}
out:
	for (size_t i = 0; i < context.count; i++) {
		if (context.copies[i].local_path)
			unlink(context.copies[i].local_path);
		free(context.copies[i].local_path);
	}
	free(context.copies);
	hosts_release(context.hosts, install->config.host_count);
	free(outcomes);
	buf_release(&text);
	return r;
}
