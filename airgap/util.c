#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "airgap-internal.h"

/* Nesting below which remove_tree_at() stops; bundles nest far less. */
#define REMOVE_DEPTH_MAX 64

void bundle_report_init(struct bundle_report *report)
{
	memset(report, 0, sizeof(*report));
}

void bundle_report_release(struct bundle_report *report)
{
	if (!report)
		return;
	for (size_t i = 0; i < report->count; i++)
		free(report->messages[i]);
	free(report->messages);
	report->messages = NULL;
	report->count = 0;
	for (size_t i = 0; i < report->note_count; i++)
		free(report->notes[i]);
	free(report->notes);
	report->notes = NULL;
	report->note_count = 0;
}

int bundle_report_note(struct bundle_report *report, const char *format, ...)
{
	char message[512];
	char **notes;
	va_list args;

	va_start(args, format);
	vsnprintf(message, sizeof(message), format, args);
	va_end(args);

	notes = realloc(report->notes, (report->note_count + 1) * sizeof(*notes));
	if (!notes)
		return -ENOMEM;
	report->notes = notes;
	notes[report->note_count] = strdup(message);
	if (!notes[report->note_count])
		return -ENOMEM;
	report->note_count++;
	return 0;
}

/* Set by bundle_set_interrupt_flag(); read between chunks by unpack and the writer. */
static const volatile sig_atomic_t *interrupt_flag;

void bundle_set_interrupt_flag(const volatile sig_atomic_t *flag)
{
	interrupt_flag = flag;
}

bool bundle_interrupted(void)
{
	return interrupt_flag && *interrupt_flag != 0;
}

int input_file_add(struct input_file **list, size_t *count, const char *path, const char *role,
		   const struct stat *known)
{
	struct input_file *grown;
	struct stat st;

	if (known)
		st = *known;
	else if (stat(path, &st) < 0)
		return errno == ENOENT ? 0 : -errno;
	grown = realloc(*list, (*count + 1) * sizeof(**list));
	if (!grown)
		return -ENOMEM;
	*list = grown;
	grown[*count] = (struct input_file){ st.st_dev, st.st_ino, strdup(path), strdup(role) };
	if (!grown[*count].path || !grown[*count].role) {
		free(grown[*count].path);
		free(grown[*count].role);
		return -ENOMEM;
	}
	(*count)++;
	return 0;
}

void input_files_release(struct input_file *list, size_t count)
{
	for (size_t i = 0; i < count; i++) {
		free(list[i].path);
		free(list[i].role);
	}
	free(list);
}

int output_check(const char *output, const struct input_file *inputs, size_t count, char *message, size_t size)
{
	struct stat st;
	int r;

	message[0] = '\0';
	r = file_check_output(output, &st);
	if (r == 0)
		return 0;
	if (r < 0 && st.st_mode == 0) {
		snprintf(message, size, "failed to check the output '%s': %s", output, mlb_strerror(r));
		return r;
	}
	if (r < 0) {
		char reason[PATH_MAX + 256];

		file_output_problem(output, st.st_mode, reason, sizeof(reason));
		snprintf(message, size, "cannot write the bundle: %s", reason);
		return MLB_EINPUT;
	}
	for (size_t i = 0; i < count; i++) {
		if (inputs[i].dev == st.st_dev && inputs[i].ino == st.st_ino) {
			snprintf(message, size,
				 "cannot write the bundle: the output '%s' is the same file as the %s '%s', which the "
				 "bundle would replace; give another output path",
				 output, inputs[i].role, inputs[i].path);
			return MLB_EINPUT;
		}
	}
	return 0;
}

int bundle_check_output(const char *output, const struct bundle_input *inputs, size_t count,
			struct bundle_report *report)
{
	struct input_file *files = NULL;
	size_t file_count = 0;
	char message[2 * PATH_MAX];
	int r = 0;

	for (size_t i = 0; r == 0 && i < count; i++) {
		r = input_file_add(&files, &file_count, inputs[i].path, inputs[i].role, NULL);
		if (r < 0 && r != -ENOMEM)
			r = bundle_report_errno(report, r, "failed to read the %s '%s'", inputs[i].role, inputs[i].path);
	}
	if (r == 0) {
		r = output_check(output, files, file_count, message, sizeof(message));
		if (r < 0)
			bundle_report_add(report, r, "%s", message);
	}
	input_files_release(files, file_count);
	return r;
}

static int result_rank(int r)
{
	if (r == MLB_EINTEGRITY)
		return 3;
	if (r == MLB_EINPUT)
		return 2;
	return r < 0 ? 1 : 0;
}

int bundle_report_add(struct bundle_report *report, int r, const char *format, ...)
{
	char message[512];
	char **messages;
	va_list args;

	if (result_rank(r) > result_rank(report->result))
		report->result = r;
	report->total++;
	if (report->count >= BUNDLE_REPORT_MAX)
		return r;

	va_start(args, format);
	vsnprintf(message, sizeof(message), format, args);
	va_end(args);

	messages = realloc(report->messages, (report->count + 1) * sizeof(*messages));
	if (!messages)
		return r;
	report->messages = messages;
	messages[report->count] = strdup(message);
	if (messages[report->count])
		report->count++;
	return r;
}

int bundle_report_errno(struct bundle_report *report, int r, const char *format, ...)
{
	char message[448];
	va_list args;

	va_start(args, format);
	vsnprintf(message, sizeof(message), format, args);
	va_end(args);
	return bundle_report_add(report, r, "%s: %s", message, mlb_strerror(r));
}

void bundle_escape_name(const char *name, size_t len, char *out, size_t size)
{
	static const char digits[] = "0123456789abcdef";
	size_t n = 0;

	if (size == 0)
		return;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)name[i];
		char piece[5];
		size_t piece_len;

		if (c == '\n') {
			memcpy(piece, "\\n", 2);
			piece_len = 2;
		} else if (c == '\t') {
			memcpy(piece, "\\t", 2);
			piece_len = 2;
		} else if (c == '\\') {
			memcpy(piece, "\\\\", 2);
			piece_len = 2;
		} else if (c < 0x20 || c > 0x7e) {
			piece[0] = '\\';
			piece[1] = 'x';
			piece[2] = digits[c >> 4];
			piece[3] = digits[c & 15];
			piece_len = 4;
		} else {
			piece[0] = (char)c;
			piece_len = 1;
		}
		/* Room for the piece, "..." and the NUL. */
		if (n + piece_len + 4 > size) {
			if (size >= 4) {
				memcpy(out + (n < size - 4 ? n : size - 4), "...", 3);
				n = (n < size - 4 ? n : size - 4) + 3;
			}
			break;
		}
		memcpy(out + n, piece, piece_len);
		n += piece_len;
	}
	out[n < size ? n : size - 1] = '\0';
}

const char *escape_name(struct escaped *out, const char *name)
{
	bundle_escape_name(name, strlen(name), out->text, sizeof(out->text));
	return out->text;
}

bool bundle_path_is_valid(const char *path, size_t len, const char **reason)
{
	const char *why = NULL;
	size_t component = 0;

	if (len == 0)
		why = "the name is empty";
	else if (len > BUNDLE_PATH_MAX)
		why = "the name is longer than 1024 bytes";
	else if (path[0] == '/')
		why = "the name is an absolute path";
	for (size_t i = 0; !why && i <= len; i++) {
		unsigned char c = i < len ? (unsigned char)path[i] : '/';

		if (c == '/') {
			const char *start = path + i - component;

			if (component == 0)
				why = i == len ? "the name ends with '/'" : "the name has an empty component";
			else if (component == 1 && start[0] == '.')
				why = "the name has a '.' component";
			else if (component == 2 && start[0] == '.' && start[1] == '.')
				why = "the name has a '..' component";
			else if (component > BUNDLE_NAME_MAX)
				why = "a component of the name is longer than 255 bytes";
			component = 0;
			continue;
		}
		if (c < 0x20 || c == 0x7f)
			why = "the name contains a control character";
		else if (c == '\\')
			why = "the name contains a backslash";
		component++;
	}
	if (why && reason)
		*reason = why;
	return why == NULL;
}

int sha256_digest(const void *data, size_t len, unsigned char out[SHA256_BYTES])
{
	struct sha256 hash;
	int r;

	r = sha256_init(&hash);
	if (r < 0)
		return r;
	r = sha256_update(&hash, data, len);
	if (r < 0) {
		sha256_release(&hash);
		return r;
	}
	return sha256_final(&hash, out);
}

int hex_decode_sha256(const char *hex, size_t len, unsigned char out[SHA256_BYTES])
{
	if (len != SHA256_HEX_LEN)
		return -EINVAL;
	for (size_t i = 0; i < SHA256_BYTES; i++) {
		unsigned value = 0;

		for (size_t j = 0; j < 2; j++) {
			char c = hex[2 * i + j];

			value <<= 4;
			if (c >= '0' && c <= '9')
				value |= (unsigned)(c - '0');
			else if (c >= 'a' && c <= 'f')
				value |= (unsigned)(c - 'a' + 10);
			else
				return -EINVAL;
		}
		out[i] = (unsigned char)value;
	}
	return 0;
}

bool data_is_compressed(const unsigned char *data, size_t len)
{
	static const struct {
		const char *magic;
		size_t len;
	} formats[] = {
		{ "\x1f\x8b", 2 },                     /* gzip */
		{ "\x28\xb5\x2f\xfd", 4 },             /* zstd */
		{ "\xfd" "7zXZ\x00", 6 },              /* xz */
		{ "BZh", 3 },                          /* bzip2 */
		{ "PK\x03\x04", 4 },                   /* zip */
	};

	for (size_t i = 0; i < ARRAY_SIZE(formats); i++)
		if (len >= formats[i].len && memcmp(data, formats[i].magic, formats[i].len) == 0)
			return true;
	return false;
}

int random_hex(char *out, size_t digits)
{
	static const char alphabet[] = "0123456789abcdef";
	unsigned char bytes[32];
	size_t need = (digits + 1) / 2;
	ssize_t n;

	if (need > sizeof(bytes))
		return -EINVAL;
	n = getrandom(bytes, need, 0);
	if (n < 0)
		return -errno;
	if ((size_t)n != need)
		return -EIO;
	for (size_t i = 0; i < digits; i++)
		out[i] = alphabet[(bytes[i / 2] >> (i % 2 ? 0 : 4)) & 15];
	out[digits] = '\0';
	return 0;
}

static int remove_tree_depth(int dir_fd, const char *name, unsigned depth)
{
	struct dirent *item;
	DIR *dir = NULL;
	int fd, r = 0;

	if (unlinkat(dir_fd, name, 0) == 0)
		return 0;
	if (errno == ENOENT)
		return 0;
	if (errno != EISDIR && errno != EPERM)
		return -errno;
	if (depth >= REMOVE_DEPTH_MAX)
		return -ELOOP;

	fd = openat(dir_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	dir = fdopendir(fd);
	if (!dir) {
		r = -errno;
		close(fd);
		goto out;
	}
	while ((item = readdir(dir))) {
		int k;

		if (strcmp(item->d_name, ".") == 0 || strcmp(item->d_name, "..") == 0)
			continue;
		k = remove_tree_depth(dirfd(dir), item->d_name, depth + 1);
		if (k < 0 && r == 0)
			r = k;
	}
	if (unlinkat(dir_fd, name, AT_REMOVEDIR) < 0 && r == 0)
		r = -errno;
out:
	if (dir)
		closedir(dir);
	return r;
}

int remove_tree_at(int dir_fd, const char *name)
{
	return remove_tree_depth(dir_fd, name, 0);
}

bool disk_blocks_add(uint64_t *total, uint64_t size)
{
	uint64_t rounded;

	if (size > UINT64_MAX - (BUNDLE_DISK_BLOCK - 1))
		return false;
	rounded = (size + BUNDLE_DISK_BLOCK - 1) / BUNDLE_DISK_BLOCK * BUNDLE_DISK_BLOCK;
	if (rounded == 0)
		rounded = BUNDLE_DISK_BLOCK;
	if (*total > UINT64_MAX - rounded)
		return false;
	*total += rounded;
	return true;
}
