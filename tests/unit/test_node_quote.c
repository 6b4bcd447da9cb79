/*
 * POSIX quoting of argument vectors: every argument must reach a real
 * /bin/sh byte for byte, whatever it contains.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "common.h"
#include "node.h"

/* Arguments a hostile file or image name could contain. */
static const char *const hostile[] = {
	"plain",
	"",
	"with space",
	"  leading and trailing spaces  ",
	"tab\there",
	"it's",
	"''",
	"'",
	"\"double\"",
	"$(touch /tmp/mlboot-quote-test-pwned)",
	"`id`",
	"${HOME}",
	"$HOME",
	"back\\slash\\",
	"new\nline",
	"\n",
	"-n",
	"--",
	"-e \\x41",
	"; rm -rf /nonexistent",
	"a|b&c>d<e",
	"*",
	"?",
	"[a-z]",
	"~",
	"~root",
	"#not a comment",
	"!event",
	"\xff\xfe not UTF-8 \x80\xc3",
	"\x01\x02\x1b[31mcontrol\x7f",
	"caf\xc3\xa9",
	"x=y",
	NULL,
};

/*
 * Runs "printf '%s\0' ARGS..." quoted by node_quote_argv() through
 * "/bin/sh -c" (popen) and returns what it printed, with its length.
 */
static char *run_through_shell(const char *const *args, size_t *out_len)
{
	const char *argv[64] = { "printf", "%s\\0" };
	struct buf command = BUF_INIT(1 << 20);
	struct buf output = BUF_INIT(1 << 20);
	size_t argc = 2;
	char chunk[4096];
	size_t n;
	FILE *shell;

	for (size_t i = 0; args[i]; i++)
		argv[argc++] = args[i];
	argv[argc] = NULL;
	assert_int_equal(node_quote_argv(argv, &command), 0);

	shell = popen(buf_str(&command), "r");
	assert_non_null(shell);
	while ((n = fread(chunk, 1, sizeof(chunk), shell)) > 0)
		assert_int_equal(buf_append(&output, chunk, n), 0);
	assert_int_equal(pclose(shell), 0);
	buf_release(&command);
	*out_len = output.len;
	return buf_steal(&output);
}

static void test_quote_hostile_args_through_sh(void **state)
{
	size_t len, offset = 0, count = 0;
	char *output;

	(void)state;
	unlink("/tmp/mlboot-quote-test-pwned");
	output = run_through_shell(hostile, &len);
	for (size_t i = 0; hostile[i]; i++) {
		size_t expected = strlen(hostile[i]);

		assert_true(offset + expected < len + 1);
		assert_memory_equal(output + offset, hostile[i], expected);
		assert_int_equal(output[offset + expected], '\0');
		offset += expected + 1;
		count++;
	}
	assert_int_equal(offset, len);
	assert_int_equal(count, sizeof(hostile) / sizeof(hostile[0]) - 1);
	/* The command substitution stayed text. */
	assert_int_equal(access("/tmp/mlboot-quote-test-pwned", F_OK), -1);
	free(output);
}

static void test_quote_each_arg_alone(void **state)
{
	(void)state;
	for (size_t i = 0; hostile[i]; i++) {
		const char *args[] = { hostile[i], NULL };
		size_t len;
		char *output = run_through_shell(args, &len);

		assert_int_equal(len, strlen(hostile[i]) + 1);
		assert_memory_equal(output, hostile[i], len);
		free(output);
	}
}

static void test_quote_exact_forms(void **state)
{
	struct buf out = BUF_INIT(1024);

	(void)state;
	assert_int_equal(node_quote_arg("", &out), 0);
	assert_string_equal(buf_str(&out), "''");
	buf_reset(&out);
	assert_int_equal(node_quote_arg("it's", &out), 0);
	assert_string_equal(buf_str(&out), "'it'\\''s'");
	buf_reset(&out);
	assert_int_equal(node_quote_arg("'", &out), 0);
	assert_string_equal(buf_str(&out), "''\\'''");
	buf_reset(&out);
	{
		const char *argv[] = { "ls", "-l", "a b", NULL };

		assert_int_equal(node_quote_argv(argv, &out), 0);
		assert_string_equal(buf_str(&out), "'ls' '-l' 'a b'");
	}
	buf_release(&out);
}

static void test_quote_rejects_empty_argv(void **state)
{
	struct buf out = BUF_INIT(64);
	const char *empty[] = { NULL };

	(void)state;
	assert_int_equal(node_quote_argv(empty, &out), -EINVAL);
	assert_int_equal(node_quote_argv(NULL, &out), -EINVAL);
	buf_release(&out);
}

static void test_quote_full_buffer_leaves_it_unchanged(void **state)
{
	struct buf out = BUF_INIT(8);
	const char *argv[] = { "abc", "defghij", NULL };

	(void)state;
	assert_int_equal(buf_append_str(&out, "x"), 0);
	assert_int_equal(node_quote_argv(argv, &out), -E2BIG);
	assert_string_equal(buf_str(&out), "x");
	assert_int_equal(node_quote_arg("0123456789", &out), -E2BIG);
	assert_string_equal(buf_str(&out), "x");
	buf_release(&out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_quote_hostile_args_through_sh),
		cmocka_unit_test(test_quote_each_arg_alone),
		cmocka_unit_test(test_quote_exact_forms),
		cmocka_unit_test(test_quote_rejects_empty_argv),
		cmocka_unit_test(test_quote_full_buffer_leaves_it_unchanged),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
