/*
 * Unpacking runs the checks of bundle_verify() in the same pass. Every file
 * is written below a fresh staging folder inside the destination through
 * directory descriptors (openat, mkdirat, O_NOFOLLOW, O_EXCL), so nothing
 * is written through a symbolic link or outside the destination. The files
 * are moved into place only when the whole bundle checked out. On any
 * failure, an interruption through bundle_set_interrupt_flag() included,
 * the staging folder is removed and the destination is as before.
 *
 * The destination stays locked (flock) while an unpack runs. A staging
 * folder in a destination that is not locked was therefore left by an
 * unpack that could not clean up (SIGKILL, a power cut), and the next
 * unpack removes it.
 * NOTE: mlboot versions before this lock took none, so an unpack by such a
 * version that is still running loses its staging folder to a new unpack.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "airgap-internal.h"

#define STAGING_PREFIX ".mlboot-unpack-"
/* Random hex digits after the prefix. */
#define STAGING_DIGITS 12

struct unpack {
	int staging_fd;
	/* The folder of the previous file, kept open: most files share one. */
	char folder[BUNDLE_PATH_MAX + 1];
	int folder_fd;
	int file_fd;
};

static int write_chunk(void *context, const void *data, size_t len)
{
	struct unpack *unpack = context;

	return file_write_full(unpack->file_fd, data, len);
}

/* Opens (creating as needed) the folder of path below the staging folder. */
static int open_folder(struct unpack *unpack, const char *path, const char **base)
{
	const char *slash = strrchr(path, '/');
	size_t folder_len = slash ? (size_t)(slash - path) : 0;
	char copy[BUNDLE_PATH_MAX + 1];
	int fd;

	*base = slash ? slash + 1 : path;
	if (unpack->folder_fd >= 0 && strlen(unpack->folder) == folder_len &&
	    strncmp(unpack->folder, path, folder_len) == 0)
		return unpack->folder_fd;
	if (unpack->folder_fd >= 0 && unpack->folder_fd != unpack->staging_fd)
		close(unpack->folder_fd);
	unpack->folder_fd = -1;

	fd = unpack->staging_fd;
	memcpy(copy, path, folder_len);
	copy[folder_len] = '\0';
	for (char *component = copy, *end; folder_len > 0 && component; component = end) {
		int next;

		end = strchr(component, '/');
		if (end)
			*end++ = '\0';
		if (mkdirat(fd, component, 0755) < 0 && errno != EEXIST) {
			int r = -errno;

			if (fd != unpack->staging_fd)
				close(fd);
			return r;
		}
		next = openat(fd, component, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd != unpack->staging_fd)
			close(fd);
		if (next < 0)
			return -errno;
		fd = next;
	}
	memcpy(unpack->folder, path, folder_len);
	unpack->folder[folder_len] = '\0';
	unpack->folder_fd = fd;
	return fd;
}

static int create_file(struct unpack *unpack, const char *path)
{
	const char *base;
	int folder_fd = open_folder(unpack, path, &base);

	if (folder_fd < 0)
		return folder_fd;
	unpack->file_fd = openat(folder_fd, base, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (unpack->file_fd < 0)
		return -errno;
	return 0;
}

static int sink_open(void *context, const struct bundle_file *file, uint64_t data_offset,
		     bundle_data_callback *callback, void **callback_context)
{
	struct unpack *unpack = context;
	int r;

	(void)data_offset;
	r = create_file(unpack, file->path);
	if (r < 0)
		return r;
	*callback = write_chunk;
	*callback_context = unpack;
	return 0;
}

static int sink_close(void *context, const struct bundle_file *file, bool ok)
{
	struct unpack *unpack = context;
	int r = 0;

	if (unpack->file_fd < 0)
		return 0;
	if (ok && fchmod(unpack->file_fd, file->mode) < 0)
		r = -errno;
	if (close(unpack->file_fd) < 0 && r == 0)
		r = -errno;
	unpack->file_fd = -1;
	return r;
}

/* Whether name has the form of a staging folder: STAGING_PREFIX and STAGING_DIGITS lowercase hex digits. */
static bool is_staging_name(const char *name)
{
	size_t prefix_len = strlen(STAGING_PREFIX);

	return strncmp(name, STAGING_PREFIX, prefix_len) == 0 && strlen(name) == prefix_len + STAGING_DIGITS &&
	       strspn(name + prefix_len, "0123456789abcdef") == STAGING_DIGITS;
}

/*
 * Decides whether an entry of the locked destination is a staging folder
 * that an unpack killed before its cleanup (SIGKILL, a power cut) left
 * behind: a folder, not a link, named like one, owned by this user. The
 * destination's lock shows that no unpack uses it. Otherwise writes why the
 * entry stays into reason (empty when it is simply another file).
 */
static bool is_leftover(int dir_fd, const char *name, bool locked, char *reason, size_t size)
{
	struct stat st;

	reason[0] = '\0';
	if (!is_staging_name(name) || fstatat(dir_fd, name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISDIR(st.st_mode))
		return false;
	if (st.st_uid != geteuid()) {
		snprintf(reason, size, ", the staging folder of an unpack by user ID %u, which is left alone",
			 (unsigned)st.st_uid);
		return false;
	}
	if (!locked) {
		snprintf(reason, size,
			 ", the staging folder of an interrupted unpack: this filesystem cannot lock the folder "
			 "to prove that no unpack still uses it, so remove it yourself");
		return false;
	}
	return true;
}

/* Removes the leftover staging folders of names, noting each in the report. */
static int remove_leftovers(int dir_fd, const char *destination, char **names, size_t count,
			    struct bundle_report *report)
{
	for (size_t i = 0; i < count; i++) {
		int r = remove_tree_at(dir_fd, names[i]);

		if (r < 0)
			return bundle_report_errno(report, r, "failed to remove '%s/%s', a staging folder that an "
					      "interrupted unpack left behind", destination, names[i]);
		r = bundle_report_note(report, "removed '%s/%s', a staging folder that an interrupted unpack left behind",
				       destination, names[i]);
		if (r < 0)
			return r;
	}
	return 0;
}

/*
 * Opens the destination, creating it when missing, and locks it (flock)
 * until the descriptor is closed, so that a second unpack into it fails
 * instead of mixing files. It must be an empty folder, except for leftover
 * staging folders (is_leftover()), which are removed.
 */
static int open_destination(const char *destination, bool *created, struct bundle_report *report)
{
	char reason[160], **leftovers = NULL;
	struct escaped shown;
	size_t leftover_count = 0;
	struct dirent *item;
	bool locked = false;
	DIR *dir;
	int fd, copy, r = 0;

	*created = false;
	if (mkdir(destination, 0755) == 0)
		*created = true;
	else if (errno != EEXIST)
		return bundle_report_errno(report, -errno, "failed to create the destination folder '%s'", destination);
	fd = open(destination, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 && errno == ENOTDIR)
		return bundle_report_add(report, MLB_EINPUT,
					 "the destination '%s' exists and is not a folder: give an empty or new folder",
					 destination);
	if (fd < 0)
		return bundle_report_errno(report, -errno, "failed to open the destination folder '%s'", destination);
	if (flock(fd, LOCK_EX | LOCK_NB) == 0) {
		locked = true;
	} else if (errno == EWOULDBLOCK) {
		close(fd);
		return bundle_report_add(report, -EBUSY,
					 "another unpack is writing into the destination folder '%s': wait for it to finish",
					 destination);
	}
	/* Any other flock() failure means a filesystem without locks: unpack anyway, but keep leftovers. */

	copy = dup(fd);
	dir = copy >= 0 ? fdopendir(copy) : NULL;
	if (!dir) {
		r = -errno;
		if (copy >= 0)
			close(copy);
		close(fd);
		return bundle_report_errno(report, r, "failed to read the destination folder '%s'", destination);
	}
	while (r == 0 && (item = readdir(dir))) {
		char **grown;

		if (strcmp(item->d_name, ".") == 0 || strcmp(item->d_name, "..") == 0)
			continue;
		if (!is_leftover(fd, item->d_name, locked, reason, sizeof(reason))) {
			r = bundle_report_add(report, -ENOTEMPTY,
					      "the destination folder '%s' is not empty: it contains '%s'%s; unpack into an "
					      "empty or new folder", destination, escape_name(&shown, item->d_name), reason);
			break;
		}
		grown = realloc(leftovers, (leftover_count + 1) * sizeof(*leftovers));
		if (!grown || !(grown[leftover_count] = strdup(item->d_name))) {
			leftovers = grown ? grown : leftovers;
			r = -ENOMEM;
			break;
		}
		leftovers = grown;
		leftover_count++;
	}
	closedir(dir);
	if (r == 0)
		r = remove_leftovers(fd, destination, leftovers, leftover_count, report);
	for (size_t i = 0; i < leftover_count; i++)
		free(leftovers[i]);
	free(leftovers);
	if (r < 0) {
		close(fd);
		return r;
	}
	return fd;
}

/* Reports an interruption that bundle_set_interrupt_flag() signalled; 0 when there was none. */
static int check_interrupt(struct bundle_report *report)
{
	if (!bundle_interrupted())
		return 0;
	return bundle_report_add(report, -EINTR, "interrupted by a signal");
}

static int check_space(int dir_fd, const struct bundle_head *head, struct bundle_report *report)
{
	uint64_t needed = head->index.bytes_needed, available;
	struct statvfs st;

	if (!disk_blocks_add(&needed, head->index_data.len))
		return bundle_report_add(report, -EOVERFLOW, "the bundle's sizes overflow");
	if (fstatvfs(dir_fd, &st) < 0)
		return bundle_report_errno(report, -errno, "failed to read the free space of the destination");
	available = (uint64_t)st.f_bavail * st.f_frsize;
	if (available < needed)
		return bundle_report_add(report, -ENOSPC,
					 "not enough free space in the destination: the bundle needs %llu bytes, %llu are available",
					 (unsigned long long)needed, (unsigned long long)available);
	if (st.f_files > 0 && st.f_favail < head->index.file_count + 1)
		return bundle_report_add(report, -ENOSPC,
					 "not enough free inodes in the destination: the bundle has %zu files, %llu inodes are available",
					 head->index.file_count, (unsigned long long)st.f_favail);
	return 0;
}

/* Moves each top-level item of the staging folder into the destination; undoes the moves on failure. */
static int move_into_place(int destination_fd, const char *staging_name, int staging_fd,
			   struct bundle_report *report)
{
	char **moved = NULL;
	size_t count = 0;
	struct dirent *item;
	DIR *dir;
	int copy, r = 0;

	copy = dup(staging_fd);
	dir = copy >= 0 ? fdopendir(copy) : NULL;
	if (!dir) {
		if (copy >= 0)
			close(copy);
		return bundle_report_errno(report, -errno, "failed to read the staging folder");
	}
	while ((item = readdir(dir))) {
		char **grown;

		if (strcmp(item->d_name, ".") == 0 || strcmp(item->d_name, "..") == 0)
			continue;
		grown = realloc(moved, (count + 1) * sizeof(*moved));
		if (!grown) {
			r = -ENOMEM;
			break;
		}
		moved = grown;
		moved[count] = strdup(item->d_name);
		if (!moved[count]) {
			r = -ENOMEM;
			break;
		}
		if (renameat2(staging_fd, item->d_name, destination_fd, item->d_name, RENAME_NOREPLACE) < 0) {
			struct escaped shown;

			r = bundle_report_errno(report, -errno, "failed to move '%s' into the destination",
					      escape_name(&shown, item->d_name));
			free(moved[count]);
			break;
		}
		count++;
	}
	closedir(dir);
	if (r < 0) {
		for (size_t i = 0; i < count; i++)
			(void)renameat2(destination_fd, moved[i], staging_fd, moved[i], RENAME_NOREPLACE);
	}
	for (size_t i = 0; i < count; i++)
		free(moved[i]);
	free(moved);
	if (r == 0 && unlinkat(destination_fd, staging_name, AT_REMOVEDIR) < 0)
		r = bundle_report_errno(report, -errno, "failed to remove the staging folder");
	return r;
}

static int write_index(int staging_fd, const struct buf *index_data)
{
	int fd = openat(staging_fd, BUNDLE_INDEX_NAME, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
	int r;

	if (fd < 0)
		return -errno;
	r = file_write_full(fd, index_data->data, index_data->len);
	if (close(fd) < 0 && r == 0)
		r = -errno;
	return r;
}

int bundle_unpack(const char *path, const char *destination,
		  const struct bundle_check_options *options, struct bundle_report *report)
{
	struct unpack unpack = { .staging_fd = -1, .folder_fd = -1, .file_fd = -1 };
	struct payload_sink sink = { sink_open, sink_close, &unpack };
	char staging_name[sizeof(STAGING_PREFIX) + STAGING_DIGITS];
	bool created = false, staged = false;
	struct bundle_head head;
	struct input in;
	int destination_fd = -1, r;

	bundle_head_init(&head);
	r = bundle_input_open(&in, path, BUNDLE_READ_BUFFER, report);
	if (r < 0) {
		bundle_head_release(&head);
		return r;
	}
	r = bundle_head_read(&head, &in, options, report);
	if (r == 0)
		r = check_interrupt(report);
	if (r < 0)
		goto out;

	/* Nothing is created before the signature and the index checked out. */
	destination_fd = open_destination(destination, &created, report);
	if (destination_fd < 0) {
		r = destination_fd;
		goto out;
	}
	r = check_space(destination_fd, &head, report);
	if (r < 0)
		goto out;

	memcpy(staging_name, STAGING_PREFIX, strlen(STAGING_PREFIX));
	r = random_hex(staging_name + strlen(STAGING_PREFIX), STAGING_DIGITS);
	if (r < 0)
		goto out;
	if (mkdirat(destination_fd, staging_name, 0700) < 0) {
		r = bundle_report_errno(report, -errno, "failed to create a staging folder in the destination");
		goto out;
	}
	staged = true;
	unpack.staging_fd = openat(destination_fd, staging_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (unpack.staging_fd < 0) {
		r = bundle_report_errno(report, -errno, "failed to open the staging folder");
		goto out;
	}
	r = write_index(unpack.staging_fd, &head.index_data);
	if (r < 0) {
		r = bundle_report_errno(report, r, "failed to write %s", BUNDLE_INDEX_NAME);
		goto out;
	}

	r = bundle_scan_payload(&in, &head, true, &sink, report);
	if (r < 0 || report->result < 0) {
		r = r < 0 ? r : report->result;
		goto out;
	}
	if (options->fsync && syncfs(unpack.staging_fd) < 0) {
		r = bundle_report_errno(report, -errno, "failed to flush the unpacked files to disk");
		goto out;
	}
	/* The last point to stop at: the moves below are quick and undo themselves on failure. */
	r = check_interrupt(report);
	if (r < 0)
		goto out;
	r = move_into_place(destination_fd, staging_name, unpack.staging_fd, report);
	if (r == 0) {
		staged = false;
		if (options->fsync && fsync(destination_fd) < 0)
			r = bundle_report_errno(report, -errno, "failed to flush the destination folder");
	}
out:
	if (unpack.file_fd >= 0)
		close(unpack.file_fd);
	if (unpack.folder_fd >= 0 && unpack.folder_fd != unpack.staging_fd)
		close(unpack.folder_fd);
	if (unpack.staging_fd >= 0)
		close(unpack.staging_fd);
	if (staged) {
		int removed = remove_tree_at(destination_fd, staging_name);

		if (removed < 0)
			bundle_report_errno(report, removed, "failed to remove the staging folder '%s/%s'", destination,
					    staging_name);
	}
	if (destination_fd >= 0)
		close(destination_fd);
	if (r < 0 && created)
		(void)rmdir(destination);
	input_close(&in);
	bundle_head_release(&head);
	return r;
}
