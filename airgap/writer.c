/*
 * The bundle writer. Files are hashed as they are added, and compressed
 * ones are kept in an unlinked spool file. bundle_writer_finish() sorts
 * them, writes the index, SHA256SUMS and the signature, then copies every
 * entry into a temporary file that is renamed over the output. Files added
 * by path are read again at that point and must still match their hash.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "airgap-oci.h"

#define BLOB_PREFIX "images/blobs/sha256/"

enum source_kind {
	SOURCE_SPOOL,   /* stored bytes are in the spool file */
	SOURCE_PATH,    /* stored bytes are the source file, unchanged */
};

struct writer_file {
	struct bundle_file file;
	enum source_kind kind;
	uint64_t spool_offset;
	char *source;
};

struct writer_image {
	char *name;
	char *component;
	struct oci_image oci;
};

struct bundle_writer {
	char *path;
	char *folder;
	int spool_fd;
	uint64_t spool_len;
	char *extract_dir;          /* OCI archives are extracted below it; NULL until needed */
	unsigned extract_count;
	char *name, *version, *kubernetes_min, *kubernetes_max;
	char **platforms;
	size_t platform_count;
	struct bundle_component *components;
	size_t component_count;
	struct writer_file *files;
	size_t file_count;
	struct writer_image *images;
	size_t image_count;
	/* Files the output must not replace: every source read, and those of bundle_writer_protect(). */
	struct input_file *inputs;
	size_t input_count;
	ZSTD_CCtx *encoder;
	unsigned char *chunk;
	unsigned char *compressed;
	char error[1024];
};

__attribute__((format(printf, 3, 4)))
static int writer_fail(struct bundle_writer *writer, int r, const char *format, ...)
{
	va_list args;

	va_start(args, format);
	vsnprintf(writer->error, sizeof(writer->error), format, args);
	va_end(args);
	return r;
}

const char *bundle_writer_error(const struct bundle_writer *writer)
{
	return writer ? writer->error : "";
}

/* An unlinked temporary file in folder. */
static int open_spool(const char *folder)
{
	int fd = open(folder, O_RDWR | O_TMPFILE | O_CLOEXEC, 0600);
	char path[PATH_MAX], suffix[17];

	if (fd >= 0 || (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL))
		return fd >= 0 ? fd : -errno;
	/* Filesystems without O_TMPFILE: create and unlink at once. */
	if (random_hex(suffix, 16) < 0)
		return -EIO;
	if (snprintf(path, sizeof(path), "%s/.mlboot-spool-%s", folder, suffix) >= (int)sizeof(path))
		return -ENAMETOOLONG;
	fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	unlink(path);
	return fd;
}

int bundle_writer_open(const char *path, struct bundle_writer **out)
{
	struct bundle_writer *writer;
	char *copy = NULL;
	int r;

	r = file_check_output(path, NULL);
	if (r == -EISDIR || r == -ELOOP || r == -EEXIST)
		return MLB_EINPUT;
	if (r < 0)
		return r;
	r = -ENOMEM;
	writer = calloc(1, sizeof(*writer));
	if (!writer)
		return -ENOMEM;
	writer->spool_fd = -1;
	writer->path = strdup(path);
	copy = strdup(path);
	if (!writer->path || !copy)
		goto out;
	writer->folder = strdup(dirname(copy));
	writer->encoder = ZSTD_createCCtx();
	writer->chunk = malloc(BUNDLE_CHUNK);
	writer->compressed = malloc(ZSTD_CStreamOutSize());
	if (!writer->folder || !writer->encoder || !writer->chunk || !writer->compressed)
		goto out;
	writer->spool_fd = open_spool(writer->folder);
	if (writer->spool_fd < 0) {
		r = writer->spool_fd;
		goto out;
	}
	*out = writer;
	writer = NULL;
	r = 0;
out:
	free(copy);
	bundle_writer_free(writer);
	return r;
}

void bundle_writer_free(struct bundle_writer *writer)
{
	if (!writer)
		return;
	if (writer->spool_fd >= 0)
		close(writer->spool_fd);
	if (writer->extract_dir) {
		char *copy = strdup(writer->extract_dir);

		char *base = copy ? strrchr(copy, '/') : NULL;

		if (base) {
			int dir_fd;

			*base = '\0';
			dir_fd = open(copy, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
			if (dir_fd >= 0) {
				(void)remove_tree_at(dir_fd, base + 1);
				close(dir_fd);
			}
		}
		free(copy);
		free(writer->extract_dir);
	}
	free(writer->path);
	free(writer->folder);
	free(writer->name);
	free(writer->version);
	free(writer->kubernetes_min);
	free(writer->kubernetes_max);
	for (size_t i = 0; i < writer->platform_count; i++)
		free(writer->platforms[i]);
	free(writer->platforms);
	{
		struct bundle_index index = {
			.components = writer->components,
			.component_count = writer->component_count,
		};

		bundle_index_release(&index);
	}
	for (size_t i = 0; i < writer->file_count; i++) {
		free(writer->files[i].file.path);
		free(writer->files[i].file.stored_path);
		free(writer->files[i].source);
	}
	free(writer->files);
	for (size_t i = 0; i < writer->image_count; i++) {
		free(writer->images[i].name);
		free(writer->images[i].component);
		oci_image_release(&writer->images[i].oci);
	}
	free(writer->images);
	input_files_release(writer->inputs, writer->input_count);
	ZSTD_freeCCtx(writer->encoder);
	free(writer->chunk);
	free(writer->compressed);
	free(writer);
}

static int strdup_into(char **out, const char *text)
{
	char *copy = strdup(text);

	if (!copy)
		return -ENOMEM;
	free(*out);
	*out = copy;
	return 0;
}

int bundle_writer_set_platform(struct bundle_writer *writer, const struct bundle_platform_info *info)
{
	int r;

	if (!info->name || !info->version || !info->kubernetes_min || !info->kubernetes_max)
		return writer_fail(writer, -EINVAL, "the platform needs a name, a version and a Kubernetes range");
	r = strdup_into(&writer->name, info->name);
	if (r == 0)
		r = strdup_into(&writer->version, info->version);
	if (r == 0)
		r = strdup_into(&writer->kubernetes_min, info->kubernetes_min);
	if (r == 0)
		r = strdup_into(&writer->kubernetes_max, info->kubernetes_max);
	if (r < 0)
		return r;
	for (size_t i = 0; i < writer->platform_count; i++)
		free(writer->platforms[i]);
	free(writer->platforms);
	writer->platforms = calloc(info->platform_count + 1, sizeof(*writer->platforms));
	writer->platform_count = 0;
	if (!writer->platforms)
		return -ENOMEM;
	for (size_t i = 0; i < info->platform_count; i++) {
		writer->platforms[i] = strdup(info->platforms[i]);
		if (!writer->platforms[i])
			return -ENOMEM;
		writer->platform_count++;
	}
	return 0;
}

static struct bundle_component *find_component(struct bundle_writer *writer, const char *name)
{
	for (size_t i = 0; i < writer->component_count; i++)
		if (strcmp(writer->components[i].name, name) == 0)
			return &writer->components[i];
	return NULL;
}

/* Whether text is a name usable as a path component: [A-Za-z0-9._-], not starting with '.'. */
static bool is_simple_name(const char *text)
{
	size_t len = strlen(text);

	if (len == 0 || len > BUNDLE_NAME_MAX || text[0] == '.')
		return false;
	return strspn(text, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") == len;
}

int bundle_writer_add_component(struct bundle_writer *writer, const char *name,
				const char *version, const char *namespace)
{
	struct bundle_component *components, *c;

	if (!is_simple_name(name))
		return writer_fail(writer, MLB_EINPUT,
				   "invalid component name '%.80s': use letters, digits, '.', '_' and '-'", name);
	if (find_component(writer, name))
		return writer_fail(writer, MLB_EINPUT, "the component '%s' is added twice", name);
	if (writer->component_count >= BUNDLE_COMPONENTS_MAX)
		return writer_fail(writer, MLB_EINPUT, "more than %u components", BUNDLE_COMPONENTS_MAX);
	components = realloc(writer->components, (writer->component_count + 1) * sizeof(*components));
	if (!components)
		return -ENOMEM;
	writer->components = components;
	c = &components[writer->component_count];
	memset(c, 0, sizeof(*c));
	c->name = strdup(name);
	c->version = strdup(version);
	c->namespace = namespace ? strdup(namespace) : NULL;
	writer->component_count++;
	if (!c->name || !c->version || (namespace && !c->namespace))
		return -ENOMEM;
	return 0;
}

static int append_string(char ***list, size_t *count, const char *text)
{
	char **grown = realloc(*list, (*count + 1) * sizeof(**list));

	if (!grown)
		return -ENOMEM;
	*list = grown;
	grown[*count] = strdup(text);
	if (!grown[*count])
		return -ENOMEM;
	(*count)++;
	return 0;
}

/* --- Adding files ------------------------------------------------------- */

/* Source of the bytes of a file being added: memory or an open file. */
struct content {
	const unsigned char *data;
	size_t len;
	size_t pos;
	int fd;
};

static int content_read(struct content *content, unsigned char *buffer, size_t size, size_t *got)
{
	ssize_t n;

	if (bundle_interrupted())
		return -EINTR;
	if (content->fd < 0) {
		size_t left = content->len - content->pos;

		*got = left < size ? left : size;
		memcpy(buffer, content->data + content->pos, *got);
		content->pos += *got;
		return 0;
	}
	do {
		n = read(content->fd, buffer, size);
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	*got = (size_t)n;
	return 0;
}

static int spool_write(struct bundle_writer *writer, const void *data, size_t len, struct sha256 *hash)
{
	int r = sha256_update(hash, data, len);

	if (r == 0)
		r = file_write_full(writer->spool_fd, data, len);
	if (r == 0)
		writer->spool_len += len;
	return r;
}

static int spool_rewind(struct bundle_writer *writer, uint64_t offset)
{
	if (ftruncate(writer->spool_fd, (off_t)offset) < 0 || lseek(writer->spool_fd, (off_t)offset, SEEK_SET) < 0)
		return -errno;
	writer->spool_len = offset;
	return 0;
}

/* Compresses size bytes of content into the spool from offset start on, hashing both sides. */
static int compress_content(struct bundle_writer *writer, struct content *content, uint64_t size,
			    uint64_t start, struct bundle_file *file)
{
	struct sha256 unpacked, stored;
	uint64_t seen = 0;
	bool done = false;
	int r;

	ZSTD_CCtx_reset(writer->encoder, ZSTD_reset_session_and_parameters);
	if (ZSTD_isError(ZSTD_CCtx_setParameter(writer->encoder, ZSTD_c_compressionLevel, BUNDLE_ZSTD_LEVEL)) ||
	    ZSTD_isError(ZSTD_CCtx_setParameter(writer->encoder, ZSTD_c_windowLog, BUNDLE_ZSTD_WINDOW_LOG)) ||
	    ZSTD_isError(ZSTD_CCtx_setParameter(writer->encoder, ZSTD_c_checksumFlag, 0)) ||
	    ZSTD_isError(ZSTD_CCtx_setPledgedSrcSize(writer->encoder, size)))
		return -EINVAL;
	r = sha256_init(&unpacked);
	if (r < 0)
		return r;
	r = sha256_init(&stored);
	if (r < 0) {
		sha256_release(&unpacked);
		return r;
	}
	while (!done) {
		size_t got = 0;
		ZSTD_inBuffer input;
		ZSTD_EndDirective mode;

		r = content_read(content, writer->chunk, BUNDLE_CHUNK, &got);
		if (r < 0)
			goto out;
		seen += got;
		if (seen > size) {
			r = -ESTALE;
			goto out;
		}
		r = sha256_update(&unpacked, writer->chunk, got);
		if (r < 0)
			goto out;
		mode = got == 0 ? ZSTD_e_end : ZSTD_e_continue;
		input = (ZSTD_inBuffer){ writer->chunk, got, 0 };
		for (;;) {
			ZSTD_outBuffer output = { writer->compressed, ZSTD_CStreamOutSize(), 0 };
			size_t left = ZSTD_compressStream2(writer->encoder, &output, &input, mode);

			if (ZSTD_isError(left)) {
				r = seen < size && got == 0 ? -ESTALE : -EIO;
				goto out;
			}
			r = spool_write(writer, writer->compressed, output.pos, &stored);
			if (r < 0)
				goto out;
			if (mode == ZSTD_e_end ? left == 0 : input.pos == input.size)
				break;
		}
		done = mode == ZSTD_e_end;
	}
	file->size = seen;
	file->stored_size = writer->spool_len - start;
	r = sha256_final(&unpacked, file->sha256);
	if (r == 0)
		r = sha256_final(&stored, file->stored_sha256);
out:
	sha256_release(&unpacked);
	sha256_release(&stored);
	return r;
}

/* Hashes size bytes of content (copying them into the spool when they are in memory). */
static int store_content(struct bundle_writer *writer, struct content *content, uint64_t size,
			 struct bundle_file *file)
{
	struct sha256 hash;
	int r;

	r = sha256_init(&hash);
	if (r < 0)
		return r;
	file->size = 0;
	for (;;) {
		size_t got = 0;

		r = content_read(content, writer->chunk, BUNDLE_CHUNK, &got);
		if (r < 0 || got == 0)
			break;
		if (content->fd < 0) {
			r = spool_write(writer, writer->chunk, got, &hash);
		} else {
			r = sha256_update(&hash, writer->chunk, got);
		}
		if (r < 0)
			break;
		file->size += got;
	}
	if (r == 0 && file->size != size)
		r = -ESTALE;
	if (r == 0)
		r = sha256_final(&hash, file->sha256);
	sha256_release(&hash);
	file->stored_size = file->size;
	memcpy(file->stored_sha256, file->sha256, SHA256_BYTES);
	return r;
}

/* Opens a source file and reads its size and first bytes. */
static int open_source(struct bundle_writer *writer, const char *source, struct content *content,
		       uint64_t *size, unsigned char *head, size_t *head_len)
{
	struct stat st;
	ssize_t n;

	content->fd = open(source, O_RDONLY | O_CLOEXEC);
	if (content->fd < 0)
		return writer_fail(writer, -errno, "failed to open '%s': %s", source, strerror(errno));
	if (fstat(content->fd, &st) < 0 || !S_ISREG(st.st_mode))
		return writer_fail(writer, MLB_EINPUT, "'%s' is not a regular file", source);
	if (input_file_add(&writer->inputs, &writer->input_count, source, "source file", &st) < 0)
		return -ENOMEM;
	*size = (uint64_t)st.st_size;
	n = pread(content->fd, head, *head_len, 0);
	if (n < 0)
		return writer_fail(writer, -errno, "failed to read '%s': %s", source, strerror(errno));
	*head_len = (size_t)n;
	return 0;
}

static int add_content(struct bundle_writer *writer, const char *path, const void *data, size_t len,
		       const char *source, unsigned flags)
{
	struct content content = { data, len, 0, -1 };
	struct writer_file entry = { .kind = SOURCE_SPOOL };
	struct bundle_file *file = &entry.file;
	const char *reason = NULL;
	unsigned char head[8];
	size_t head_len = sizeof(head);
	uint64_t size = len;
	struct writer_file *files;
	bool compress;
	int r;

	if (!bundle_path_is_valid(path, strlen(path), &reason))
		return writer_fail(writer, MLB_EINPUT, "invalid bundle path '%.200s': %s", path, reason);
	if (strlen(path) + 4 > BUNDLE_PATH_MAX)
		return writer_fail(writer, MLB_EINPUT, "the bundle path '%.200s' is too long", path);
	if (writer->file_count >= BUNDLE_FILES_MAX)
		return writer_fail(writer, MLB_EINPUT, "more than %u files", BUNDLE_FILES_MAX);

	if (source) {
		r = open_source(writer, source, &content, &size, head, &head_len);
		if (r < 0)
			goto out;
	} else {
		head_len = len < sizeof(head) ? len : sizeof(head);
		memcpy(head, data, head_len);
	}
	file->mode = flags & BUNDLE_ADD_EXECUTABLE ? 0755 : 0644;
	file->path = strdup(path);
	if (!file->path) {
		r = -ENOMEM;
		goto out;
	}
	entry.spool_offset = writer->spool_len;

	/* The magic bytes, never the name, tell data that is compressed already. */
	compress = (flags & BUNDLE_ADD_COMPRESS) && size > 0 && !data_is_compressed(head, head_len) &&
		   strncmp(path, "images/", 7) != 0;
	if (compress) {
		r = compress_content(writer, &content, size, entry.spool_offset, file);
		if (r < 0)
			goto out;
		if (file->stored_size < file->size) {
			file->compression = BUNDLE_COMPRESSION_ZSTD;
			if (asprintf(&file->stored_path, "%s.zst", path) < 0)
				file->stored_path = NULL;
		} else {
			/* Compressing saves nothing: store the bytes as they are. */
			compress = false;
			r = spool_rewind(writer, entry.spool_offset);
			if (r == 0 && content.fd >= 0 && lseek(content.fd, 0, SEEK_SET) < 0)
				r = -errno;
			if (r < 0)
				goto out;
			content.pos = 0;
		}
	}
	if (!compress) {
		file->compression = BUNDLE_COMPRESSION_NONE;
		r = store_content(writer, &content, size, file);
		if (r < 0)
			goto out;
		file->stored_path = strdup(path);
		if (source) {
			entry.kind = SOURCE_PATH;
			entry.source = strdup(source);
		}
	}
	r = -ENOMEM;
	if (!file->stored_path || (entry.kind == SOURCE_PATH && !entry.source))
		goto out;
	files = realloc(writer->files, (writer->file_count + 1) * sizeof(*files));
	if (!files)
		goto out;
	writer->files = files;
	files[writer->file_count++] = entry;
	entry = (struct writer_file){ .kind = SOURCE_SPOOL };
	r = 0;
out:
	if (content.fd >= 0)
		close(content.fd);
	if (r == -ESTALE)
		r = writer_fail(writer, MLB_EINPUT, "'%s' changed while it was read", source ? source : path);
	else if (r < 0 && !writer->error[0])
		writer_fail(writer, r, "failed to add '%s': %s", source ? source : path, mlb_strerror(r));
	if (r < 0 && writer->spool_len > entry.spool_offset && entry.file.path)
		(void)spool_rewind(writer, entry.spool_offset);
	free(entry.file.path);
	free(entry.file.stored_path);
	free(entry.source);
	return r;
}

/* The OCI layout under images/ is written by the image functions only. */
static int check_free_path(struct bundle_writer *writer, const char *path)
{
	if (strncmp(path, "images/", 7) == 0)
		return writer_fail(writer, MLB_EINPUT, "'%.200s' is under images/: add images with bundle_writer_add_image()",
				   path);
	return 0;
}

int bundle_writer_add_file(struct bundle_writer *writer, const char *path,
			   const void *data, size_t len, unsigned flags)
{
	writer->error[0] = '\0';
	if (check_free_path(writer, path) < 0)
		return MLB_EINPUT;
	return add_content(writer, path, data, len, NULL, flags);
}

int bundle_writer_add_file_path(struct bundle_writer *writer, const char *path,
				const char *source, unsigned flags)
{
	writer->error[0] = '\0';
	if (check_free_path(writer, path) < 0)
		return MLB_EINPUT;
	return add_content(writer, path, NULL, 0, source, flags);
}

static int manifest_path(struct bundle_writer *writer, const char *component, const char *file_name,
			 struct bundle_component **c, char *path, size_t size)
{
	*c = find_component(writer, component);
	if (!*c)
		return writer_fail(writer, MLB_EINPUT, "unknown component '%.80s': add it first", component);
	if (!is_simple_name(file_name))
		return writer_fail(writer, MLB_EINPUT,
				   "invalid manifest file name '%.80s': use letters, digits, '.', '_' and '-'", file_name);
	if ((size_t)snprintf(path, size, "components/%s/manifests/%s", component, file_name) >= size)
		return writer_fail(writer, MLB_EINPUT, "the manifest path of '%.80s' is too long", file_name);
	for (size_t i = 0; i < (*c)->manifest_count; i++)
		if (strcmp((*c)->manifests[i], path) == 0)
			return writer_fail(writer, MLB_EINPUT, "the component '%s' has two manifests named '%s'",
					   component, file_name);
	return 0;
}

int bundle_writer_add_manifest(struct bundle_writer *writer, const char *component,
			       const char *file_name, const void *data, size_t len)
{
	struct bundle_component *c;
	char path[BUNDLE_PATH_MAX];
	int r;

	writer->error[0] = '\0';
	r = manifest_path(writer, component, file_name, &c, path, sizeof(path));
	if (r == 0)
		r = add_content(writer, path, data, len, NULL, BUNDLE_ADD_COMPRESS);
	if (r == 0)
		r = append_string(&c->manifests, &c->manifest_count, path);
	return r;
}

int bundle_writer_add_manifest_path(struct bundle_writer *writer, const char *component,
				    const char *file_name, const char *source)
{
	struct bundle_component *c;
	char path[BUNDLE_PATH_MAX];
	int r;

	writer->error[0] = '\0';
	r = manifest_path(writer, component, file_name, &c, path, sizeof(path));
	if (r == 0)
		r = add_content(writer, path, NULL, 0, source, BUNDLE_ADD_COMPRESS);
	if (r == 0)
		r = append_string(&c->manifests, &c->manifest_count, path);
	return r;
}

/* Whether platform is "os/arch" or "os/arch/variant" of simple names. */
static bool is_platform(const char *platform)
{
	char copy[128];
	size_t parts = 0;

	if (strlen(platform) >= sizeof(copy))
		return false;
	strcpy(copy, platform);
	for (char *part = strtok(copy, "/"); part; part = strtok(NULL, "/")) {
		if (!is_simple_name(part))
			return false;
		parts++;
	}
	return (parts == 2 || parts == 3) && platform[strlen(platform) - 1] != '/' && !strstr(platform, "//");
}

int bundle_writer_add_binary_path(struct bundle_writer *writer, const char *component,
				  const char *name, const char *platform, const char *source)
{
	struct bundle_component *c = find_component(writer, component);
	struct bundle_binary *binaries;
	char path[BUNDLE_PATH_MAX];
	int r;

	writer->error[0] = '\0';
	if (!c)
		return writer_fail(writer, MLB_EINPUT, "unknown component '%.80s': add it first", component);
	if (!is_simple_name(name))
		return writer_fail(writer, MLB_EINPUT, "invalid binary name '%.80s'", name);
	if (!is_platform(platform))
		return writer_fail(writer, MLB_EINPUT, "invalid platform '%.80s': expected OS/ARCH such as linux/amd64",
				   platform);
	if ((size_t)snprintf(path, sizeof(path), "binaries/%s/%s", platform, name) >= sizeof(path))
		return writer_fail(writer, MLB_EINPUT, "the binary path of '%.80s' is too long", name);
	r = add_content(writer, path, NULL, 0, source, BUNDLE_ADD_COMPRESS | BUNDLE_ADD_EXECUTABLE);
	if (r < 0)
		return r;
	binaries = realloc(c->binaries, (c->binary_count + 1) * sizeof(*binaries));
	if (!binaries)
		return -ENOMEM;
	c->binaries = binaries;
	binaries[c->binary_count] = (struct bundle_binary){ strdup(name), strdup(platform), strdup(path) };
	c->binary_count++;
	if (!binaries[c->binary_count - 1].name || !binaries[c->binary_count - 1].platform ||
	    !binaries[c->binary_count - 1].path)
		return -ENOMEM;
	return 0;
}

/* --- Images ----------------------------------------------------------- */

static struct writer_image *find_image(struct bundle_writer *writer, const char *name)
{
	for (size_t i = 0; i < writer->image_count; i++)
		if (strcmp(writer->images[i].name, name) == 0)
			return &writer->images[i];
	return NULL;
}

const char *bundle_writer_image_digest(const struct bundle_writer *writer, const char *name)
{
	for (size_t i = 0; i < writer->image_count; i++)
		if (strcmp(writer->images[i].name, name) == 0)
			return writer->images[i].oci.hex;
	return NULL;
}

static bool blob_added(const struct bundle_writer *writer, const char *path)
{
	for (size_t i = 0; i < writer->file_count; i++)
		if (strcmp(writer->files[i].file.path, path) == 0)
			return true;
	return false;
}

/* Adds the blobs of an image that are not in the bundle yet, checking each against its digest. */
static int add_blobs(struct bundle_writer *writer, const char *dir, const struct oci_image *image)
{
	for (size_t i = 0; i < image->blob_count; i++) {
		const struct oci_descriptor *blob = &image->blobs[i];
		char path[sizeof(BLOB_PREFIX) + SHA256_HEX_LEN], source[PATH_MAX], hex[SHA256_HEX_LEN + 1];
		const struct bundle_file *file;
		int r;

		snprintf(path, sizeof(path), "%s%s", BLOB_PREFIX, blob->hex);
		if (blob_added(writer, path))
			continue;
		if (snprintf(source, sizeof(source), "%s/blobs/sha256/%s", dir, blob->hex) >= (int)sizeof(source))
			return writer_fail(writer, -ENAMETOOLONG, "the path of '%s' is too long", dir);
		r = add_content(writer, path, NULL, 0, source, 0);
		if (r < 0)
			return r;
		file = &writer->files[writer->file_count - 1].file;
		sha256_to_hex(file->sha256, hex);
		if (strcmp(hex, blob->hex) != 0 || file->size != blob->size) {
			writer->file_count--;
			free(writer->files[writer->file_count].file.path);
			free(writer->files[writer->file_count].file.stored_path);
			free(writer->files[writer->file_count].source);
			return writer_fail(writer, MLB_EINPUT,
					   "the blob '%s' does not match its descriptor (sha256:%s, %llu bytes)", source,
					   blob->hex, (unsigned long long)blob->size);
		}
	}
	return 0;
}

static int add_collected_image(struct bundle_writer *writer, struct bundle_component *c, const char *name,
			       const char *dir, const struct doc_node *descriptor)
{
	struct writer_image *existing = find_image(writer, name), *images;
	struct oci_image image = { 0 };
	struct oci_error error = { "" };
	int r;

	if (writer->image_count >= BUNDLE_IMAGES_MAX)
		return writer_fail(writer, MLB_EINPUT, "more than %u images", BUNDLE_IMAGES_MAX);
	r = oci_image_collect(dir, descriptor, (const char *const *)writer->platforms, writer->platform_count,
			      &image, &error);
	if (r < 0)
		return writer_fail(writer, r, "image '%s': %s", name, error.message[0] ? error.message : mlb_strerror(r));
	if (existing) {
		r = strcmp(existing->oci.hex, image.hex) == 0 ? 0
			: writer_fail(writer, MLB_EINPUT, "the image '%s' is added twice with different digests", name);
		oci_image_release(&image);
		if (r == 0) {
			for (size_t i = 0; i < c->image_count; i++)
				if (strcmp(c->images[i], name) == 0)
					return 0;
			r = append_string(&c->images, &c->image_count, name);
		}
		return r;
	}
	r = add_blobs(writer, dir, &image);
	if (r < 0) {
		oci_image_release(&image);
		return r;
	}
	images = realloc(writer->images, (writer->image_count + 1) * sizeof(*images));
	if (!images) {
		oci_image_release(&image);
		return -ENOMEM;
	}
	writer->images = images;
	images[writer->image_count] = (struct writer_image){ strdup(name), strdup(c->name), image };
	writer->image_count++;
	if (!images[writer->image_count - 1].name || !images[writer->image_count - 1].component)
		return -ENOMEM;
	return append_string(&c->images, &c->image_count, name);
}

/* Extracts an OCI archive below the writer's temporary folder; *dir is the layout's folder. */
static int extract_archive(struct bundle_writer *writer, const char *archive, char **dir)
{
	struct oci_error error = { "" };
	char suffix[17];
	int fd, r;

	if (!writer->extract_dir) {
		r = random_hex(suffix, 16);
		if (r < 0)
			return r;
		if (asprintf(&writer->extract_dir, "%s/.mlboot-oci-%s", writer->folder, suffix) < 0) {
			writer->extract_dir = NULL;
			return -ENOMEM;
		}
		if (mkdir(writer->extract_dir, 0700) < 0) {
			r = -errno;
			free(writer->extract_dir);
			writer->extract_dir = NULL;
			return writer_fail(writer, r, "failed to create a temporary folder in '%s'", writer->folder);
		}
	}
	if (asprintf(dir, "%s/%u", writer->extract_dir, writer->extract_count++) < 0) {
		*dir = NULL;
		return -ENOMEM;
	}
	if (mkdir(*dir, 0700) < 0)
		return writer_fail(writer, -errno, "failed to create '%s'", *dir);
	fd = open(*dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	r = oci_archive_extract(archive, fd, &error);
	close(fd);
	if (r < 0)
		return writer_fail(writer, r, "%s", error.message[0] ? error.message : mlb_strerror(r));
	return 0;
}

/* Resolves source to a layout folder, extracting it when it is an OCI archive. */
static int layout_folder(struct bundle_writer *writer, const char *source, char **dir)
{
	struct stat st;

	if (stat(source, &st) < 0)
		return writer_fail(writer, -errno, "failed to read '%s': %s", source, strerror(errno));
	if (S_ISDIR(st.st_mode)) {
		char path[PATH_MAX];
		int r = 0;

		/* Blobs are protected as they are read, the layout's own files here. A file that
		 * cannot be read is left to the layout reader, which reports it. */
		if (snprintf(path, sizeof(path), "%s/index.json", source) < (int)sizeof(path))
			r = input_file_add(&writer->inputs, &writer->input_count, path, "image layout file", NULL);
		if (r != -ENOMEM && snprintf(path, sizeof(path), "%s/oci-layout", source) < (int)sizeof(path))
			r = input_file_add(&writer->inputs, &writer->input_count, path, "image layout file", NULL);
		if (r == -ENOMEM)
			return r;
		*dir = strdup(source);
		return *dir ? 0 : -ENOMEM;
	}
	if (!S_ISREG(st.st_mode))
		return writer_fail(writer, MLB_EINPUT, "'%s' is neither an OCI layout folder nor an OCI archive", source);
	if (input_file_add(&writer->inputs, &writer->input_count, source, "image archive", &st) < 0)
		return -ENOMEM;
	return extract_archive(writer, source, dir);
}

int bundle_writer_add_image(struct bundle_writer *writer, const char *component,
			    const char *name, const char *source)
{
	struct bundle_component *c = find_component(writer, component);
	struct oci_error error = { "" };
	const struct doc_node *descriptor;
	struct doc_node *index = NULL;
	char *dir = NULL;
	int r;

	writer->error[0] = '\0';
	if (!c)
		return writer_fail(writer, MLB_EINPUT, "unknown component '%.80s': add it first", component);
	if (!name[0] || strlen(name) > 512 || strpbrk(name, " \t\r\n\"\\"))
		return writer_fail(writer, MLB_EINPUT, "invalid image name '%.80s'", name);
	r = layout_folder(writer, source, &dir);
	if (r < 0)
		goto out;
	r = oci_layout_read_index(dir, &index, &error);
	if (r == 0)
		r = oci_layout_select(index, dir, name, &descriptor, &error);
	if (r < 0) {
		r = writer_fail(writer, r, "image '%s': %s", name, error.message);
		goto out;
	}
	r = add_collected_image(writer, c, name, dir, descriptor);
out:
	doc_free(index);
	free(dir);
	return r;
}

int bundle_writer_add_oci_layout(struct bundle_writer *writer, const char *component,
				 const char *dir)
{
	struct bundle_component *c = find_component(writer, component);
	struct oci_error error = { "" };
	const struct doc_node *manifests;
	struct doc_node *index = NULL;
	int r;

	writer->error[0] = '\0';
	if (!c)
		return writer_fail(writer, MLB_EINPUT, "unknown component '%.80s': add it first", component);
	r = oci_layout_read_index(dir, &index, &error);
	if (r < 0)
		return writer_fail(writer, r, "%s", error.message);
	manifests = doc_get(index, "manifests");
	for (size_t i = 0; r == 0 && i < manifests->count; i++) {
		const char *name = oci_descriptor_name(manifests->items[i]);

		if (!name) {
			r = writer_fail(writer, MLB_EINPUT,
					"image %zu of '%s/index.json' has no io.containerd.image.name annotation", i, dir);
			break;
		}
		r = add_collected_image(writer, c, name, dir, manifests->items[i]);
	}
	doc_free(index);
	return r;
}

/* --- Finishing ----------------------------------------------------------- */

static int compare_writer_files(const void *a, const void *b)
{
	const struct writer_file *x = a, *y = b;

	return strcmp(x->file.stored_path, y->file.stored_path);
}

static int compare_images(const void *a, const void *b)
{
	const struct writer_image *x = a, *y = b;

	return strcmp(x->name, y->name);
}

/* The merged index.json of the bundle's OCI layout: every image under its name, sorted. */
static int layout_index_json(const struct bundle_writer *writer, struct buf *out)
{
	int r = buf_append_str(out, "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.index.v1+json\","
				    "\"manifests\":[");

	for (size_t i = 0; r == 0 && i < writer->image_count; i++) {
		const struct writer_image *image = &writer->images[i];
		const char *slash = strrchr(image->name, '/');
		const char *colon = strrchr(slash ? slash : image->name, ':');
		const char *tag = colon ? colon + 1 : "latest";

		r = buf_printf(out, "%s{\"mediaType\":", i ? "," : "");
		if (r == 0)
			r = doc_write_json_string(out, image->oci.media_type, strlen(image->oci.media_type));
		if (r == 0)
			r = buf_printf(out, ",\"digest\":\"sha256:%s\",\"size\":%llu", image->oci.hex,
				       (unsigned long long)image->oci.size);
		if (r == 0 && image->oci.platform) {
			char os[64] = "", architecture[64] = "", variant[64] = "";

			sscanf(image->oci.platform, "%63[^/]/%63[^/]/%63s", os, architecture, variant);
			r = buf_printf(out, ",\"platform\":{\"architecture\":\"%s\",\"os\":\"%s\"%s%s%s}", architecture, os,
				       variant[0] ? ",\"variant\":\"" : "", variant, variant[0] ? "\"" : "");
		}
		if (r == 0)
			r = buf_append_str(out, ",\"annotations\":{\"io.containerd.image.name\":");
		if (r == 0)
			r = doc_write_json_string(out, image->name, strlen(image->name));
		if (r == 0)
			r = buf_append_str(out, ",\"org.opencontainers.image.ref.name\":");
		if (r == 0)
			r = doc_write_json_string(out, tag, strlen(tag));
		if (r == 0)
			r = buf_append_str(out, "}}");
	}
	if (r == 0)
		r = buf_append_str(out, "]}\n");
	return r;
}

static int add_layout_files(struct bundle_writer *writer)
{
	static const char oci_layout[] = "{\"imageLayoutVersion\":\"1.0.0\"}\n";
	struct buf index_json = BUF_INIT(BUNDLE_INDEX_MAX);
	int r;

	if (writer->image_count == 0)
		return 0;
	qsort(writer->images, writer->image_count, sizeof(*writer->images), compare_images);
	r = layout_index_json(writer, &index_json);
	if (r == 0)
		r = add_content(writer, "images/index.json", index_json.data, index_json.len, NULL, 0);
	if (r == 0)
		r = add_content(writer, "images/oci-layout", oci_layout, strlen(oci_layout), NULL, 0);
	buf_release(&index_json);
	return r;
}

/* Fills an index that borrows the writer's strings; release only its own arrays with index_unborrow(). */
static int index_borrow(struct bundle_writer *writer, struct bundle_index *index)
{
	memset(index, 0, sizeof(*index));
	index->format_version = BUNDLE_FORMAT_VERSION;
	index->name = writer->name;
	index->version = writer->version;
	index->kubernetes_min = writer->kubernetes_min;
	index->kubernetes_max = writer->kubernetes_max;
	index->platforms = writer->platforms;
	index->platform_count = writer->platform_count;
	index->components = writer->components;
	index->component_count = writer->component_count;
	index->files = calloc(writer->file_count + 1, sizeof(*index->files));
	index->images = calloc(writer->image_count + 1, sizeof(*index->images));
	if (!index->files || !index->images)
		return -ENOMEM;
	index->file_count = writer->file_count;
	for (size_t i = 0; i < writer->file_count; i++) {
		index->files[i] = writer->files[i].file;
		index->stored_bytes += writer->files[i].file.stored_size;
		index->unpacked_bytes += writer->files[i].file.size;
	}
	index->image_count = writer->image_count;
	for (size_t i = 0; i < writer->image_count; i++) {
		const struct writer_image *image = &writer->images[i];
		struct bundle_image *out = &index->images[i];

		out->name = image->name;
		out->media_type = image->oci.media_type;
		out->size = image->oci.size;
		out->blobs = calloc(image->oci.blob_count + 1, sizeof(*out->blobs));
		if (!out->blobs || asprintf(&out->digest, "sha256:%s", image->oci.hex) < 0)
			return -ENOMEM;
		for (size_t j = 0; j < image->oci.blob_count; j++) {
			char path[sizeof(BLOB_PREFIX) + SHA256_HEX_LEN];
			const struct bundle_file *file;

			snprintf(path, sizeof(path), "%s%s", BLOB_PREFIX, image->oci.blobs[j].hex);
			file = bundle_index_find_file(index, path);
			if (!file)
				return -ENOENT;
			out->blobs[out->blob_count++] = (size_t)(file - index->files);
		}
	}
	return bundle_index_bytes_needed(index, &index->bytes_needed);
}

static void index_unborrow(struct bundle_index *index)
{
	for (size_t i = 0; index->images && i < index->image_count; i++) {
		free(index->images[i].digest);
		free(index->images[i].blobs);
	}
	free(index->images);
	free(index->files);
	memset(index, 0, sizeof(*index));
}

static int write_entry_header(int fd, const char *path, uint64_t size, unsigned mode)
{
	struct buf header = BUF_INIT(TAR_PAX_MAX + 2 * TAR_BLOCK);
	int r = tar_header_encode(path, size, mode, &header);

	if (r == 0)
		r = file_write_full(fd, header.data, header.len);
	buf_release(&header);
	return r;
}

static int write_padding(int fd, uint64_t size)
{
	static const unsigned char zeros[TAR_BLOCK];

	return file_write_full(fd, zeros, tar_padding(size));
}

static int write_memory_entry(int fd, const char *path, const struct buf *data)
{
	int r = write_entry_header(fd, path, data->len, 0644);

	if (r == 0)
		r = file_write_full(fd, data->data, data->len);
	if (r == 0)
		r = write_padding(fd, data->len);
	return r;
}

/* Copies a file's stored bytes into the bundle; a source file must still match its hash. */
static int copy_entry(struct bundle_writer *writer, int fd, const struct writer_file *entry)
{
	const struct bundle_file *file = &entry->file;
	unsigned char digest[SHA256_BYTES];
	uint64_t offset = entry->spool_offset, left = file->stored_size;
	struct sha256 hash;
	int in = entry->kind == SOURCE_SPOOL ? writer->spool_fd : -1, r;

	r = write_entry_header(fd, file->stored_path, file->stored_size, file->mode);
	if (r < 0)
		return r;
	if (entry->kind == SOURCE_PATH) {
		in = open(entry->source, O_RDONLY | O_CLOEXEC);
		if (in < 0)
			return writer_fail(writer, -errno, "failed to open '%s': %s", entry->source, strerror(errno));
		offset = 0;
	}
	r = sha256_init(&hash);
	while (r == 0 && left > 0) {
		size_t want = left < BUNDLE_CHUNK ? (size_t)left : BUNDLE_CHUNK;
		ssize_t n;

		if (bundle_interrupted()) {
			r = -EINTR;
			break;
		}
		n = pread(in, writer->chunk, want, (off_t)offset);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			r = n < 0 ? -errno : -ESTALE;
			break;
		}
		r = sha256_update(&hash, writer->chunk, (size_t)n);
		if (r == 0)
			r = file_write_full(fd, writer->chunk, (size_t)n);
		offset += (uint64_t)n;
		left -= (uint64_t)n;
	}
	if (r == 0)
		r = sha256_final(&hash, digest);
	sha256_release(&hash);
	if (r == 0 && memcmp(digest, file->stored_sha256, SHA256_BYTES) != 0)
		r = -ESTALE;
	if (entry->kind == SOURCE_PATH)
		close(in);
	if (r == -ESTALE)
		return writer_fail(writer, MLB_EINPUT, "'%s' changed while the bundle was built",
				   entry->source ? entry->source : file->path);
	if (r == 0)
		r = write_padding(fd, file->stored_size);
	return r;
}

/* Writes the whole tar to fd. */
static int write_bundle(struct bundle_writer *writer, int fd, const struct buf *index_text,
			const struct buf *sums, const struct buf *signature)
{
	static const unsigned char end[2 * TAR_BLOCK];
	int r;

	r = write_memory_entry(fd, BUNDLE_INDEX_NAME, index_text);
	if (r == 0)
		r = write_memory_entry(fd, BUNDLE_SUMS_NAME, sums);
	if (r == 0 && signature->len)
		r = write_memory_entry(fd, BUNDLE_SIGNATURE_NAME, signature);
	for (size_t i = 0; r == 0 && i < writer->file_count; i++)
		r = copy_entry(writer, fd, &writer->files[i]);
	if (r == 0)
		r = file_write_full(fd, end, sizeof(end));
	return r;
}

/* Parses the index text back with the readers' rules, so that a build never writes what they reject. */
static int check_index_text(struct bundle_writer *writer, const struct buf *index_text)
{
	struct bundle_report report;
	struct bundle_index parsed;
	int r;

	bundle_report_init(&report);
	r = bundle_index_parse(index_text->data, index_text->len, &parsed, &report);
	if (r == 0)
		bundle_index_release(&parsed);
	else if (report.count)
		writer_fail(writer, r, "the bundle would be invalid: %s", report.messages[0]);
	bundle_report_release(&report);
	return r;
}

int bundle_writer_protect(struct bundle_writer *writer, const char *path, const char *role)
{
	int r = input_file_add(&writer->inputs, &writer->input_count, path, role, NULL);

	if (r < 0 && r != -ENOMEM)
		return writer_fail(writer, r, "failed to read the %s '%s': %s", role, path, mlb_strerror(r));
	return r;
}

int bundle_writer_check_output(struct bundle_writer *writer)
{
	char message[sizeof(writer->error)];
	int r = output_check(writer->path, writer->inputs, writer->input_count, message, sizeof(message));

	if (r < 0)
		return writer_fail(writer, r, "%s", message);
	return 0;
}

static int write_output(struct bundle_writer *writer, const struct buf *index_text, const struct buf *sums,
			const struct buf *signature)
{
	char temporary[PATH_MAX], suffix[13];
	int fd, r;

	r = bundle_writer_check_output(writer);
	if (r < 0)
		return r;
	r = random_hex(suffix, 12);
	if (r < 0)
		return r;
	if (snprintf(temporary, sizeof(temporary), "%s.tmp-%s", writer->path, suffix) >= (int)sizeof(temporary))
		return -ENAMETOOLONG;
	fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (fd < 0)
		return writer_fail(writer, -errno, "failed to create '%s': %s", temporary, strerror(errno));
	r = write_bundle(writer, fd, index_text, sums, signature);
	if (r == 0 && fsync(fd) < 0)
		r = -errno;
	if (close(fd) < 0 && r == 0)
		r = -errno;
	/* Checked again: the output may have changed while the bundle was written. */
	if (r == 0)
		r = bundle_writer_check_output(writer);
	if (r == 0 && rename(temporary, writer->path) < 0)
		r = -errno;
	if (r < 0) {
		unlink(temporary);
		if (r == -EINTR && !writer->error[0])
			writer_fail(writer, r, "interrupted by a signal: '%s' was not written", writer->path);
		if (!writer->error[0])
			writer_fail(writer, r, "failed to write '%s': %s", writer->path, mlb_strerror(r));
		return r;
	}
	fd = open(writer->folder, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0) {
		(void)fsync(fd);
		close(fd);
	}
	return 0;
}

int bundle_writer_finish(struct bundle_writer *writer, const struct bundle_key *key)
{
	struct buf index_text = BUF_INIT(BUNDLE_INDEX_MAX), sums = BUF_INIT(BUNDLE_SUMS_MAX);
	struct buf signature = BUF_INIT(BUNDLE_SIGNATURE_MAX);
	unsigned char index_digest[SHA256_BYTES];
	struct bundle_index index;
	int r;

	writer->error[0] = '\0';
	memset(&index, 0, sizeof(index));
	if (!writer->name)
		return writer_fail(writer, MLB_EINPUT, "the bundle has no platform name and version");
	r = add_layout_files(writer);
	if (r < 0)
		return r;
	qsort(writer->files, writer->file_count, sizeof(*writer->files), compare_writer_files);

	r = index_borrow(writer, &index);
	if (r == 0)
		r = bundle_index_write(&index, &index_text);
	if (r == -E2BIG)
		r = writer_fail(writer, MLB_EINPUT, "the index would be larger than %u bytes", BUNDLE_INDEX_MAX);
	if (r < 0)
		goto out;
	r = check_index_text(writer, &index_text);
	if (r < 0)
		goto out;
	r = sha256_digest(index_text.data, index_text.len, index_digest);
	if (r == 0)
		r = bundle_sums_write(index_digest, &index, &sums);
	if (r == 0 && key)
		r = bundle_signature_create(key, sums.data, sums.len, &signature);
	if (r < 0)
		goto out;
	r = write_output(writer, &index_text, &sums, &signature);
out:
	if (r < 0 && !writer->error[0])
		writer_fail(writer, r, "failed to write the bundle: %s", mlb_strerror(r));
	index_unborrow(&index);
	buf_release(&index_text);
	buf_release(&sums);
	buf_release(&signature);
	return r;
}
