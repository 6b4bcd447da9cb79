#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

int file_write_atomic(const char *path, const void *data, size_t len, mode_t mode)
{
	char temporary[PATH_MAX];
	int fd, r;

	if (snprintf(temporary, sizeof(temporary), "%s.tmp.%ld", path, (long)getpid()) >= (int)sizeof(temporary))
		return -ENAMETOOLONG;
	fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode);
	if (fd < 0)
		return -errno;
	r = file_write_full(fd, data, len);
	if (r == 0 && fsync(fd) < 0)
		r = -errno;
	if (close(fd) < 0 && r == 0)
		r = -errno;
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
