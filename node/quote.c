/*
 * POSIX shell quoting of argument vectors.
 *
 * Every argument is written in single quotes, inside which a POSIX shell
 * gives every byte its literal value, and each single quote in the argument
 * becomes '\'' (close the quotes, an escaped quote, open them again). No
 * byte is special inside single quotes, so newlines, "$()", backticks and
 * bytes that are not UTF-8 need no other treatment. An empty argument
 * becomes ''.
 */
#include <errno.h>
#include <string.h>

#include "node.h"

int node_quote_arg(const char *arg, struct buf *out)
{
	size_t start_len = out->len;
	int r;

	r = buf_append_char(out, '\'');
	for (const char *p = arg; r == 0 && *p; ) {
		size_t span = strcspn(p, "'");

		r = buf_append(out, p, span);
		p += span;
		if (r == 0 && *p == '\'') {
			r = buf_append_str(out, "'\\''");
			p++;
		}
	}
	if (r == 0)
		r = buf_append_char(out, '\'');
	if (r < 0) {
		/* Leave the buffer as it was, so a caller never sends half an argument. */
		out->len = start_len;
		if (out->data)
			out->data[start_len] = '\0';
	}
	return r;
}

int node_quote_argv(const char *const *argv, struct buf *out)
{
	size_t start_len = out->len;
	int r = 0;

	if (!argv || !argv[0])
		return -EINVAL;
	for (size_t i = 0; r == 0 && argv[i]; i++) {
		if (i > 0)
			r = buf_append_char(out, ' ');
		if (r == 0)
			r = node_quote_arg(argv[i], out);
	}
	if (r < 0) {
		out->len = start_len;
		if (out->data)
			out->data[start_len] = '\0';
	}
	return r;
}
