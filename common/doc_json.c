/*
 * The JSON writer of the document tree: doc_write_json() and
 * doc_write_json_string().
 */
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "doc.h"
#include "doc_internal.h"
#include "error.h"

/* ---- JSON writer ---- */

/* Returns the length of a valid UTF-8 sequence at text, or 0 for an invalid one. */
static size_t utf8_valid_length(const unsigned char *text, size_t left)
{
	unsigned char c = text[0];
	unsigned char low = 0x80, high = 0xbf;
	size_t n;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		n = 2;
	else if (c >= 0xe0 && c <= 0xef)
		n = 3;
	else if (c >= 0xf0 && c <= 0xf4)
		n = 4;
	else
		return 0;
	if (left < n)
		return 0;
	if (c == 0xe0)
		low = 0xa0;
	else if (c == 0xed)
		high = 0x9f;
	else if (c == 0xf0)
		low = 0x90;
	else if (c == 0xf4)
		high = 0x8f;
	if (text[1] < low || text[1] > high)
		return 0;
	for (size_t i = 2; i < n; i++)
		if (text[i] < 0x80 || text[i] > 0xbf)
			return 0;
	return n;
}

/*
 * Whether a valid UTF-8 sequence must be written as \uXXXX: DEL and the C1
 * controls, U+FFFE and U+FFFF, which libyaml rejects as input, and NEL,
 * U+2028 and U+2029, which it reads as line breaks inside quotes. Escaping
 * them keeps the output readable by this parser; Go's encoding/json also
 * escapes U+2028 and U+2029.
 */
static bool needs_unicode_escape(const unsigned char *text, size_t n, unsigned *code)
{
	if (n == 1) {
		*code = text[0];
		return text[0] == 0x7f;
	}
	if (n == 2) {
		*code = ((text[0] & 0x1fu) << 6) | (text[1] & 0x3fu);
		return *code <= 0x9f;
	}
	if (n == 3) {
		*code = ((text[0] & 0x0fu) << 12) | ((text[1] & 0x3fu) << 6) | (text[2] & 0x3fu);
		return *code == 0x2028 || *code == 0x2029 || *code >= 0xfffe;
	}
	return false;
}

int doc_write_json_string(struct buf *out, const char *text, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *s = (const unsigned char *)text;
	size_t start = 0, i = 0;
	int r;

	if (!text && len)
		return -EINVAL;
	r = buf_reserve(out, len + 2);
	if (r < 0)
		return r;
	buf_append_char(out, '"');
	while (i < len) {
		unsigned char c = s[i];
		char escape[8];
		unsigned code = 0;
		size_t n = 1;

		if (c >= 0x20 && c != '"' && c != '\\' && c < 0x7f) {
			i++;
			continue;
		}
		if (c >= 0x7f) {
			n = utf8_valid_length(s + i, len - i);
			if (n && !needs_unicode_escape(s + i, n, &code)) {
				i += n;
				continue;
			}
		}
		r = buf_append(out, s + start, i - start);
		if (r < 0)
			return r;
		if (c == '"' || c == '\\')
			snprintf(escape, sizeof(escape), "\\%c", c);
		else if (c == '\n')
			snprintf(escape, sizeof(escape), "\\n");
		else if (c == '\r')
			snprintf(escape, sizeof(escape), "\\r");
		else if (c == '\t')
			snprintf(escape, sizeof(escape), "\\t");
		else if (c == '\b')
			snprintf(escape, sizeof(escape), "\\b");
		else if (c == '\f')
			snprintf(escape, sizeof(escape), "\\f");
		else if (c < 0x20)
			snprintf(escape, sizeof(escape), "\\u00%c%c", hex[c >> 4], hex[c & 15]);
		else if (n)
			snprintf(escape, sizeof(escape), "\\u%c%c%c%c", hex[code >> 12],
				 hex[(code >> 8) & 15], hex[(code >> 4) & 15], hex[code & 15]);
		else
			/* Invalid UTF-8: one replacement character per byte, as Go writes it. */
			snprintf(escape, sizeof(escape), "\\ufffd");
		r = buf_append_str(out, escape);
		if (r < 0)
			return r;
		i += n ? n : 1;
		start = i;
	}
	r = buf_append(out, s + start, i - start);
	if (r < 0)
		return r;
	return buf_append_char(out, '"');
}

/* Whether text is a number in JSON's grammar. */
static bool is_json_number(const char *text, size_t len)
{
	size_t i = 0, digits;

	if (i < len && text[i] == '-')
		i++;
	if (i < len && text[i] == '0') {
		i++;
	} else {
		for (digits = 0; i < len && text[i] >= '0' && text[i] <= '9'; i++)
			digits++;
		if (!digits)
			return false;
	}
	if (i < len && text[i] == '.') {
		for (i++, digits = 0; i < len && text[i] >= '0' && text[i] <= '9'; i++)
			digits++;
		if (!digits)
			return false;
	}
	if (i < len && (text[i] == 'e' || text[i] == 'E')) {
		i++;
		if (i < len && (text[i] == '+' || text[i] == '-'))
			i++;
		for (digits = 0; i < len && text[i] >= '0' && text[i] <= '9'; i++)
			digits++;
		if (!digits)
			return false;
	}
	return i == len;
}

static int write_scalar(const struct doc_node *node, struct buf *out)
{
	char number[64];

	switch (node->type) {
	case DOC_NULL:
		return buf_append_str(out, "null");
	case DOC_BOOL:
		return buf_append_str(out, node->boolean ? "true" : "false");
	case DOC_INT:
		snprintf(number, sizeof(number), "%lld", node->integer);
		return buf_append_str(out, number);
	case DOC_FLOAT:
		if (node->text && is_json_number(node->text, node->text_len))
			return buf_append(out, node->text, node->text_len);
		if (!isfinite(node->real))
			return MLB_EINPUT;
		format_json_float(node->real, number, sizeof(number));
		return buf_append_str(out, number);
	case DOC_STRING:
		return doc_write_json_string(out, node->text ? node->text : "", node->text ? node->text_len : 0);
	default:
		return -EINVAL;
	}
}

int doc_write_json(const struct doc_node *node, struct buf *out)
{
	bool map;
	int r;

	if (!node || !out)
		return -EINVAL;
	if (!is_collection(node))
		return write_scalar(node, out);
	map = node->type == DOC_MAP;
	r = buf_append_char(out, map ? '{' : '[');
	for (size_t i = 0; i < node->count && r == 0; i++) {
		const struct doc_node *item = node->items[i];

		if (i)
			r = buf_append_char(out, ',');
		if (r == 0 && map) {
			const char *key = item->key ? item->key : "";

			r = doc_write_json_string(out, key, strlen(key));
			if (r == 0)
				r = buf_append_char(out, ':');
		}
		if (r == 0)
			r = doc_write_json(item, out);
	}
	if (r < 0)
		return r;
	return buf_append_char(out, map ? '}' : ']');
}
