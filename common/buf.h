/*
 * Growable byte buffers with a hard maximum size.
 *
 * A buffer always keeps a NUL byte after its data, so data can be read as a
 * C string when it contains text. Appending past the maximum fails with -E2BIG
 * and leaves the buffer as it was. buf_release() frees the memory;
 * buf_release_secret() first overwrites it, for tokens and keys.
 */
#ifndef MLBOOT_COMMON_BUF_H
#define MLBOOT_COMMON_BUF_H

#include <stdarg.h>
#include <stddef.h>

struct buf {
	char *data;
	size_t len;
	size_t capacity;
	size_t max;
};

#define BUF_INIT(maximum) { .data = NULL, .len = 0, .capacity = 0, .max = (maximum) }

void buf_init(struct buf *b, size_t max);
int buf_append(struct buf *b, const void *data, size_t len);
int buf_append_str(struct buf *b, const char *text);
int buf_append_char(struct buf *b, char c);
int buf_printf(struct buf *b, const char *format, ...)
	__attribute__((format(printf, 2, 3)));
int buf_vprintf(struct buf *b, const char *format, va_list args)
	__attribute__((format(printf, 2, 0)));
/* Makes room for len more bytes without changing the length. */
int buf_reserve(struct buf *b, size_t len);
/* Returns the data as a C string; "" for an empty buffer. */
const char *buf_str(const struct buf *b);
/* Moves the data out to the caller, who frees it; the buffer is left empty. */
char *buf_steal(struct buf *b);
void buf_reset(struct buf *b);
void buf_release(struct buf *b);
void buf_release_secret(struct buf *b);

/* Overwrites memory in a way the compiler cannot drop. */
void secure_wipe(void *data, size_t len);
/* Frees a NUL-terminated secret after overwriting it; accepts NULL. */
void secret_free(char *secret);

#endif
