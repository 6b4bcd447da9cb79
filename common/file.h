/*
 * Files: bounded reads and atomic writes.
 *
 * Every descriptor is opened with O_CLOEXEC. file_write_atomic() writes a
 * temporary file beside the target, fsyncs it, renames it over the target
 * and fsyncs the folder, so a reader sees the old or the new content and
 * never a part of it, even after a power cut.
 */
#ifndef MLBOOT_COMMON_FILE_H
#define MLBOOT_COMMON_FILE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "buf.h"

/* Reads a whole file; -EFBIG when it is larger than max bytes. */
int file_read_all(const char *path, size_t max, struct buf *out);
int file_write_atomic(const char *path, const void *data, size_t len, mode_t mode);
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
