/*
 * Files: bounded reads and atomic writes.
 *
 * Every descriptor is opened with O_CLOEXEC. file_write_atomic() writes a
 * temporary file beside the target, fsyncs it, renames it over the target
 * and fsyncs the folder, so a reader sees the old or the new content and
 * never a part of it, even after a power cut. It replaces only a regular
 * file: see file_check_output().
 */
#ifndef MLBOOT_COMMON_FILE_H
#define MLBOOT_COMMON_FILE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "buf.h"

/* Reads a whole file; -EFBIG when it is larger than max bytes. */
int file_read_all(const char *path, size_t max, struct buf *out);
/*
 * Writes a whole file atomically (see above). Returns the error of
 * file_check_output() when path names anything but a regular file, and
 * writes nothing then.
 */
int file_write_atomic(const char *path, const void *data, size_t len, mode_t mode);
/*
 * Checks what an output file would replace at path, without following a
 * symbolic link. Returns 0 when nothing exists there and 1 for a regular
 * file, filling *st (when not NULL) in both cases with what lstat() read.
 * Anything else is rejected, because replacing it would destroy it or,
 * for a link, hide where the output went: -EISDIR for a folder, -ELOOP for
 * a symbolic link, -EEXIST for a device, FIFO or socket (*st filled).
 * Other lstat() failures return their -errno, with st->st_mode 0.
 * NOTE: the check and the later rename are two steps, so a file created in
 * between is replaced all the same.
 */
int file_check_output(const char *path, struct stat *st);
/* Names a file type for messages: "a folder", "a FIFO", "a symbolic link", ... */
const char *file_type_name(mode_t mode);
/*
 * Writes into out why an output may not be written at path, for a
 * file_check_output() result below 0 other than an lstat() failure and
 * the mode it read: "'PATH' is a FIFO; an output replaces only a regular
 * file, so give a new file name". A symbolic link gets its own reason.
 */
void file_output_problem(const char *path, mode_t mode, char *out, size_t size);
/* Writes all len bytes, retrying after EINTR and short writes. */
int file_write_full(int fd, const void *data, size_t len);
/* Creates a folder and its parents; an existing folder is success. */
int file_mkdir_parents(const char *path, mode_t mode);
/* Expands a leading "~/" and $VAR or ${VAR} into a new string (caller frees). */
int file_expand_path(const char *path, char **out);
/* Joins a relative path to the folder of base; absolute paths are copied. */
int file_resolve_relative(const char *base_file, const char *path, char **out);
bool file_exists(const char *path);

#endif
