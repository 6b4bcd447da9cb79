#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "file.h"

int file_read_all(const char *path, size_t max, struct buf *out)
{
	char chunk[65536];
	int fd, r = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	for (;;) {
		ssize_t n = read(fd, chunk, sizeof(chunk));

		if (n < 0) {
			if (errno == EINTR)
				continue;
			r = -errno;
			break;
		}
		if (n == 0)
			break;
		if ((size_t)n > max - out->len || out->len > max) {
			r = -EFBIG;
			break;
		}
		r = buf_append(out, chunk, (size_t)n);
		if (r < 0)
			break;
	}
	close(fd);
	if (r == 0 && !out->data)
		r = buf_append(out, "", 0);
	return r;
}

int file_write_full(int fd, const void *data, size_t len)
{
	const char *p = data;

	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int fsync_parent(const char *path)
{
	char *copy = strdup(path);
	int fd, r = 0;

	if (!copy)
		return -ENOMEM;
	fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		r = -errno;
	else if (fsync(fd) < 0)
		r = -errno;
	if (fd >= 0)
		close(fd);
	free(copy);
	return r;
}

int file_check_output(const char *path, struct stat *st)
{
	struct stat local;

	if (!st)
		st = &local;
	memset(st, 0, sizeof(*st));
	if (lstat(path, st) < 0) {
		int r = -errno;

		memset(st, 0, sizeof(*st));
		return r == -ENOENT ? 0 : r;
	}
	if (S_ISREG(st->st_mode))
		return 1;
	if (S_ISDIR(st->st_mode))
		return -EISDIR;
	if (S_ISLNK(st->st_mode))
		return -ELOOP;
	return -EEXIST;
}

const char *file_type_name(mode_t mode)
{
	switch (mode & S_IFMT) {
	case S_IFREG:
		return "a regular file";
	case S_IFDIR:
		return "a folder";
	case S_IFLNK:
		return "a symbolic link";
	case S_IFCHR:
		return "a character device";
	case S_IFBLK:
		return "a block device";
	case S_IFIFO:
		return "a FIFO";
	case S_IFSOCK:
		return "a socket";
	default:
		return "a file of unknown type";
	}
}

void file_output_problem(const char *path, mode_t mode, char *out, size_t size)
{
	if (S_ISLNK(mode))
		snprintf(out, size,
			 "'%s' is a symbolic link; an output never follows or replaces a link, so that it cannot land "
			 "somewhere else: give the path of the link's target, or remove the link", path);
	else
		snprintf(out, size, "'%s' is %s; an output replaces only a regular file, so give a new file name",
			 path, file_type_name(mode));
}

/* Creates a new temporary file beside path, named PATH.tmp-HEX, never opening an existing one. */
static int create_temporary(const char *path, mode_t mode, char *out, size_t size)
{
	static const char digits[] = "0123456789abcdef";

	for (int attempt = 0; attempt < 8; attempt++) {
		unsigned char random[6];
		char suffix[2 * sizeof(random) + 1];
		ssize_t n = getrandom(random, sizeof(random), 0);
		int fd;

		if (n < 0)
			return -errno;
		if (n != (ssize_t)sizeof(random))
			return -EIO;
		for (size_t i = 0; i < sizeof(random); i++) {
			suffix[2 * i] = digits[random[i] >> 4];
			suffix[2 * i + 1] = digits[random[i] & 15];
		}
		suffix[sizeof(suffix) - 1] = '\0';
		if (snprintf(out, size, "%s.tmp-%s", path, suffix) >= (int)size)
			return -ENAMETOOLONG;
		fd = open(out, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
		if (fd >= 0 || errno != EEXIST)
			return fd >= 0 ? fd : -errno;
	}
	return -EEXIST;
}

int file_write_atomic(const char *path, const void *data, size_t len, mode_t mode)
{
	char temporary[PATH_MAX];
	int fd, r;

	r = file_check_output(path, NULL);
	if (r < 0)
		return r;
	fd = create_temporary(path, mode, temporary, sizeof(temporary));
	if (fd < 0)
		return fd;
	r = file_write_full(fd, data, len);
	if (r == 0 && fsync(fd) < 0)
		r = -errno;
	if (close(fd) < 0 && r == 0)
		r = -errno;
	/* Checked again just before the rename, since writing may have taken a while. */
	if (r == 0) {
		r = file_check_output(path, NULL);
		r = r > 0 ? 0 : r;
	}
	if (r == 0 && rename(temporary, path) < 0)
		r = -errno;
	if (r < 0) {
		unlink(temporary);
		return r;
	}
	return fsync_parent(path);
}

int file_mkdir_parents(const char *path, mode_t mode)
{
	char copy[PATH_MAX];
	size_t len = strlen(path);

	if (len == 0 || len >= sizeof(copy))
		return -ENAMETOOLONG;
	memcpy(copy, path, len + 1);
	for (char *p = copy + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(copy, mode) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(copy, mode) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

static const char *home_folder(void)
{
	const char *home = getenv("HOME");
	struct passwd *pw;

	if (home && *home)
		return home;
	pw = getpwuid(getuid());
	return pw ? pw->pw_dir : NULL;
}

int file_expand_path(const char *path, char **out)
{
	struct buf b = BUF_INIT(PATH_MAX);
	const char *p = path;
	int r = 0;

	if (p[0] == '~' && (p[1] == '/' || p[1] == '\0')) {
		const char *home = home_folder();

		if (!home)
			return -ENOENT;
		r = buf_append_str(&b, home);
		p++;
	}
	while (r == 0 && *p) {
		if (*p == '$' && (p[1] == '{' || p[1] == '_' || (p[1] >= 'A' && p[1] <= 'Z') || (p[1] >= 'a' && p[1] <= 'z'))) {
			char name[256];
			size_t n = 0;
			bool braced = p[1] == '{';
			const char *value;

			p += braced ? 2 : 1;
			while (*p && n + 1 < sizeof(name) && (*p == '_' || (*p >= '0' && *p <= '9') || (*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z')))
				name[n++] = *p++;
			name[n] = '\0';
			if (braced) {
				if (*p != '}') {
					r = -EINVAL;
					break;
				}
				p++;
			}
			value = getenv(name);
			if (!value) {
				r = -ENOENT;
				break;
			}
			r = buf_append_str(&b, value);
			continue;
		}
		r = buf_append_char(&b, *p++);
	}
	if (r < 0) {
		buf_release(&b);
		return r;
	}
	*out = buf_steal(&b);
	return *out ? 0 : -ENOMEM;
}

int file_resolve_relative(const char *base_file, const char *path, char **out)
{
	char *copy, *folder;
	int n;

	if (path[0] == '/' || !base_file) {
		*out = strdup(path);
		return *out ? 0 : -ENOMEM;
	}
	copy = strdup(base_file);
	if (!copy)
		return -ENOMEM;
	folder = dirname(copy);
	n = asprintf(out, "%s/%s", folder, path);
	free(copy);
	return n < 0 ? -ENOMEM : 0;
}

bool file_exists(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0;
}
