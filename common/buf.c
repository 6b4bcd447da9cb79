#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "buf.h"

void buf_init(struct buf *b, size_t max)
{
	b->data = NULL;
	b->len = 0;
	b->capacity = 0;
	b->max = max;
}

int buf_reserve(struct buf *b, size_t len)
{
	size_t needed, capacity;
	char *data;

	if (len > b->max || b->len > b->max - len)
		return -E2BIG;
	needed = b->len + len + 1;
	if (needed <= b->capacity)
		return 0;
	capacity = b->capacity ? b->capacity : 256;
	while (capacity < needed)
		capacity = capacity > SIZE_MAX / 2 ? needed : capacity * 2;
	if (capacity > b->max + 1)
		capacity = b->max + 1;
	data = realloc(b->data, capacity);
	if (!data)
		return -ENOMEM;
	b->data = data;
	b->capacity = capacity;
	return 0;
}

int buf_append(struct buf *b, const void *data, size_t len)
{
	int r = buf_reserve(b, len);

	if (r < 0)
		return r;
	if (len)
		memcpy(b->data + b->len, data, len);
	b->len += len;
	b->data[b->len] = '\0';
	return 0;
}

int buf_append_str(struct buf *b, const char *text)
{
	return buf_append(b, text, strlen(text));
}

int buf_append_char(struct buf *b, char c)
{
	return buf_append(b, &c, 1);
}

int buf_vprintf(struct buf *b, const char *format, va_list args)
{
	va_list copy;
	int n, r;

	va_copy(copy, args);
	n = vsnprintf(NULL, 0, format, copy);
	va_end(copy);
	if (n < 0)
		return -EINVAL;
	r = buf_reserve(b, (size_t)n);
	if (r < 0)
		return r;
	vsnprintf(b->data + b->len, (size_t)n + 1, format, args);
	b->len += (size_t)n;
	return 0;
}

int buf_printf(struct buf *b, const char *format, ...)
{
	va_list args;
	int r;

	va_start(args, format);
	r = buf_vprintf(b, format, args);
	va_end(args);
	return r;
}

const char *buf_str(const struct buf *b)
{
	return b->data ? b->data : "";
}

char *buf_steal(struct buf *b)
{
	char *data = b->data;

	if (!data)
		data = calloc(1, 1);
	b->data = NULL;
	b->len = 0;
	b->capacity = 0;
	return data;
}

void buf_reset(struct buf *b)
{
	b->len = 0;
	if (b->data)
		b->data[0] = '\0';
}

void buf_release(struct buf *b)
{
	if (!b)
		return;
	free(b->data);
	b->data = NULL;
	b->len = 0;
	b->capacity = 0;
}

void buf_release_secret(struct buf *b)
{
	if (!b)
		return;
	if (b->data)
		secure_wipe(b->data, b->capacity);
	buf_release(b);
}

void secure_wipe(void *data, size_t len)
{
	if (data && len)
		OPENSSL_cleanse(data, len);
}

void secret_free(char *secret)
{
	if (!secret)
		return;
	secure_wipe(secret, strlen(secret));
	free(secret);
}
