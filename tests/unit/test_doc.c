/*
 * Tests for the document tree: typing as kubectl types YAML, positions,
 * limits, anchors and merge keys, stream splitting, List expansion, JSON in
 * and out, and the builders.
 */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "buf.h"
#include "doc.h"
#include "error.h"
#include "file.h"

/* ---- helpers ---- */

static struct doc_node *parse_ok(const char *text)
{
	struct doc_node *root = NULL;
	struct doc_error err;
	int r = doc_parse(text, strlen(text), NULL, &root, &err);

	if (r < 0)
		fail_msg("parse of \"%s\" failed (%d): %s", text, r, err.message);
	return root;
}

/* Parses text with limits and checks it fails with a message containing expected. */
static void parse_fails_with(const char *text, size_t len, const struct doc_limits *limits,
			     const char *expected, struct doc_error *err)
{
	struct doc_node *root = NULL;
	int r = doc_parse(text, len, limits, &root, err);

	if (r != MLB_EINPUT)
		fail_msg("parse of \"%s\" returned %d, expected MLB_EINPUT", text, r);
	assert_null(root);
	if (!strstr(err->message, expected))
		fail_msg("message \"%s\" does not contain \"%s\"", err->message, expected);
}

/* Like parse_fails_with() for a string literal that may contain NUL bytes. */
#define PARSE_FAILS_BYTES(literal, expected, err) \
	parse_fails_with(literal, sizeof(literal) - 1, NULL, expected, err)

static void parse_fails(const char *text, const char *expected)
{
	struct doc_error err;

	parse_fails_with(text, strlen(text), NULL, expected, &err);
}

/* Parses "value: TEXT", returns the root and sets *value to the member. */
static struct doc_node *parse_value(const char *text, const struct doc_node **value)
{
	char document[256];
	struct doc_node *root;

	snprintf(document, sizeof(document), "value: %s\n", text);
	root = parse_ok(document);
	*value = doc_get(root, "value");
	assert_non_null(*value);
	return root;
}

static char *to_json(const struct doc_node *node)
{
	struct buf out = BUF_INIT(1 << 26);
	int r = doc_write_json(node, &out);

	if (r < 0)
		fail_msg("doc_write_json failed: %d", r);
	return buf_steal(&out);
}

static void assert_json(const char *yaml, const char *expected)
{
	struct doc_node *root = parse_ok(yaml);
	char *json = to_json(root);

	assert_string_equal(json, expected);
	free(json);
	doc_free(root);
}

/* Compares two trees. An integer equals a float of the same value, as in JSON. */
static bool trees_equal(const struct doc_node *a, const struct doc_node *b)
{
	bool a_number = a->type == DOC_INT || a->type == DOC_FLOAT;
	bool b_number = b->type == DOC_INT || b->type == DOC_FLOAT;

	if (a_number && b_number) {
		double x = a->type == DOC_INT ? (double)a->integer : a->real;
		double y = b->type == DOC_INT ? (double)b->integer : b->real;

		if (a->type == DOC_INT && b->type == DOC_INT)
			return a->integer == b->integer;
		return x == y || (isnan(x) && isnan(y));
	}
	if (a->type != b->type || a->count != b->count)
		return false;
	switch (a->type) {
	case DOC_BOOL:
		return a->boolean == b->boolean;
	case DOC_STRING:
		return a->text_len == b->text_len && memcmp(a->text, b->text, a->text_len) == 0;
	case DOC_MAP:
	case DOC_SEQ:
		for (size_t i = 0; i < a->count; i++) {
			if (a->type == DOC_MAP && strcmp(a->items[i]->key, b->items[i]->key) != 0)
				return false;
			if (!trees_equal(a->items[i], b->items[i]))
				return false;
		}
		return true;
	default:
		return true;
	}
}

/* ---- typing ---- */

struct typing_case {
	const char *text;
	enum doc_type type;
	long long integer;
	double real;
};

static void check_typing(const struct typing_case *cases, size_t count)
{
	for (size_t i = 0; i < count; i++) {
		const struct doc_node *value;
		struct doc_node *root = parse_value(cases[i].text, &value);

		if (value->type != cases[i].type)
			fail_msg("\"%s\" has type %d, expected %d", cases[i].text, value->type,
				 cases[i].type);
		if (cases[i].type == DOC_BOOL && value->boolean != (cases[i].integer != 0))
			fail_msg("\"%s\" is %d, expected %lld", cases[i].text, value->boolean,
				 cases[i].integer);
		if (cases[i].type == DOC_INT && value->integer != cases[i].integer)
			fail_msg("\"%s\" is %lld, expected %lld", cases[i].text, value->integer,
				 cases[i].integer);
		if (cases[i].type == DOC_FLOAT && !(value->real == cases[i].real ||
						   (isnan(value->real) && isnan(cases[i].real))))
			fail_msg("\"%s\" is %.17g, expected %.17g", cases[i].text, value->real,
				 cases[i].real);
		doc_free(root);
	}
}

static void test_typing_booleans(void **state)
{
	static const struct typing_case cases[] = {
		{ "y", DOC_BOOL, 1, 0 }, { "Y", DOC_BOOL, 1, 0 }, { "yes", DOC_BOOL, 1, 0 },
		{ "Yes", DOC_BOOL, 1, 0 }, { "YES", DOC_BOOL, 1, 0 }, { "true", DOC_BOOL, 1, 0 },
		{ "True", DOC_BOOL, 1, 0 }, { "TRUE", DOC_BOOL, 1, 0 }, { "on", DOC_BOOL, 1, 0 },
		{ "On", DOC_BOOL, 1, 0 }, { "ON", DOC_BOOL, 1, 0 },
		{ "n", DOC_BOOL, 0, 0 }, { "N", DOC_BOOL, 0, 0 }, { "no", DOC_BOOL, 0, 0 },
		{ "No", DOC_BOOL, 0, 0 }, { "NO", DOC_BOOL, 0, 0 }, { "false", DOC_BOOL, 0, 0 },
		{ "False", DOC_BOOL, 0, 0 }, { "FALSE", DOC_BOOL, 0, 0 }, { "off", DOC_BOOL, 0, 0 },
		{ "Off", DOC_BOOL, 0, 0 }, { "OFF", DOC_BOOL, 0, 0 },
		{ "yEs", DOC_STRING, 0, 0 }, { "tRUE", DOC_STRING, 0, 0 }, { "t", DOC_STRING, 0, 0 },
		{ "o", DOC_STRING, 0, 0 }, { "True1", DOC_STRING, 0, 0 }, { "yes please", DOC_STRING, 0, 0 },
		{ "\"true\"", DOC_STRING, 0, 0 }, { "'no'", DOC_STRING, 0, 0 },
	};

	(void)state;
	check_typing(cases, sizeof(cases) / sizeof(cases[0]));
}

static void test_typing_nulls(void **state)
{
	static const struct typing_case cases[] = {
		{ "", DOC_NULL, 0, 0 }, { "~", DOC_NULL, 0, 0 }, { "null", DOC_NULL, 0, 0 },
		{ "Null", DOC_NULL, 0, 0 }, { "NULL", DOC_NULL, 0, 0 }, { "nULL", DOC_STRING, 0, 0 },
		{ "\"\"", DOC_STRING, 0, 0 }, { "'~'", DOC_STRING, 0, 0 }, { "none", DOC_STRING, 0, 0 },
	};

	(void)state;
	check_typing(cases, sizeof(cases) / sizeof(cases[0]));
}

static void test_typing_integers(void **state)
{
	static const struct typing_case cases[] = {
		{ "0", DOC_INT, 0, 0 }, { "42", DOC_INT, 42, 0 }, { "-17", DOC_INT, -17, 0 },
		{ "+12", DOC_INT, 12, 0 }, { "-0", DOC_INT, 0, 0 },
		{ "0644", DOC_INT, 420, 0 }, { "0777", DOC_INT, 511, 0 }, { "-0644", DOC_INT, -420, 0 },
		{ "00", DOC_INT, 0, 0 },
		{ "0o700", DOC_INT, 448, 0 }, { "0O17", DOC_INT, 15, 0 }, { "-0o10", DOC_INT, -8, 0 },
		{ "0x1F", DOC_INT, 31, 0 }, { "0X1f", DOC_INT, 31, 0 }, { "-0x10", DOC_INT, -16, 0 },
		{ "0b101", DOC_INT, 5, 0 }, { "0B11", DOC_INT, 3, 0 }, { "-0b101", DOC_INT, -5, 0 },
		{ "1_000", DOC_INT, 1000, 0 }, { "0x_FF", DOC_INT, 255, 0 }, { "1_", DOC_INT, 1, 0 },
		{ "0_x10", DOC_INT, 16, 0 }, { "1__0", DOC_INT, 10, 0 },
		{ "9223372036854775807", DOC_INT, LLONG_MAX, 0 },
		{ "-9223372036854775808", DOC_INT, LLONG_MIN, 0 },
		{ "-0x8000000000000000", DOC_INT, LLONG_MIN, 0 },
	};

	(void)state;
	check_typing(cases, sizeof(cases) / sizeof(cases[0]));
}

static void test_typing_floats(void **state)
{
	static const struct typing_case cases[] = {
		{ "1.5", DOC_FLOAT, 0, 1.5 }, { "1e3", DOC_FLOAT, 0, 1000 }, { "1E3", DOC_FLOAT, 0, 1000 },
		{ "-1.5e-3", DOC_FLOAT, 0, -1.5e-3 }, { "+2.5E+2", DOC_FLOAT, 0, 250 },
		{ ".5", DOC_FLOAT, 0, 0.5 }, { "+.5", DOC_FLOAT, 0, 0.5 }, { "-.5", DOC_FLOAT, 0, -0.5 },
		{ "1.", DOC_FLOAT, 0, 1 }, { "1.10", DOC_FLOAT, 0, 1.1 },
		{ "08", DOC_FLOAT, 0, 8 }, { "09.5", DOC_FLOAT, 0, 9.5 },
		{ "1_000.5", DOC_FLOAT, 0, 1000.5 }, { ".5_5", DOC_FLOAT, 0, 0.55 },
		{ ".5e1_0", DOC_FLOAT, 0, 0.5e10 }, { ".5e+3", DOC_FLOAT, 0, 500 },
		{ ".25E-2", DOC_FLOAT, 0, 0.0025 }, { "1e-400", DOC_FLOAT, 0, 0 },
		{ ".inf", DOC_FLOAT, 0, INFINITY }, { ".Inf", DOC_FLOAT, 0, INFINITY },
		{ ".INF", DOC_FLOAT, 0, INFINITY }, { "+.inf", DOC_FLOAT, 0, INFINITY },
		{ "-.inf", DOC_FLOAT, 0, -INFINITY }, { "-.Inf", DOC_FLOAT, 0, -INFINITY },
		{ "-.INF", DOC_FLOAT, 0, -INFINITY },
		{ ".nan", DOC_FLOAT, 0, NAN }, { ".NaN", DOC_FLOAT, 0, NAN }, { ".NAN", DOC_FLOAT, 0, NAN },
		/* Past 64 bits: go-yaml's uint64, then a float read from the digits as decimal. */
		{ "9223372036854775808", DOC_FLOAT, 0, 9223372036854775808.0 },
		{ "18446744073709551615", DOC_FLOAT, 0, 18446744073709551615.0 },
		{ "0xFFFFFFFFFFFFFFFF", DOC_FLOAT, 0, 18446744073709551615.0 },
		{ "18446744073709551616", DOC_FLOAT, 0, 18446744073709551616.0 },
		{ "-9223372036854775809", DOC_FLOAT, 0, -9223372036854775809.0 },
		{ "0777777777777777777777777", DOC_FLOAT, 0, 777777777777777777777777.0 },
	};

	(void)state;
	check_typing(cases, sizeof(cases) / sizeof(cases[0]));
}

static void test_typing_strings(void **state)
{
	static const char *const strings[] = {
		"1e400", "-1e400", "1.2.3", "10.0.0.1", "0x", "0b2", "0o8", "0xG", "<<", "_1",
		".5_", "._5", ".", "+", "+-1", "--1", "1e", "1e+", ".e5", ".5e", ".5e+", ".5e3_",
		".5e_3", ".5_e3", ".5.5", "2001-12-14", "2001-12-14T21:59:43Z",
		"12:30", "1:20:30", "0x1p3", ".inf1", "inf", "+inf", "NaN", "nan", "Infinity",
		"v1", "apps/v1", "1Gi", "500m", "\"42\"", "'0644'", "\"1.5\"", "\"null\"",
		"|\n  42", ">\n  true",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(strings) / sizeof(strings[0]); i++) {
		const struct doc_node *value;
		struct doc_node *root = parse_value(strings[i], &value);

		if (value->type != DOC_STRING)
			fail_msg("\"%s\" has type %d, expected a string", strings[i], value->type);
		doc_free(root);
	}
}

static void test_typing_long_numbers(void **state)
{
	char text[300];
	const struct doc_node *value;
	struct doc_node *root;

	(void)state;
	/* Go reads any number of leading zeros: octal 1. */
	memset(text, '0', 200);
	snprintf(text + 200, sizeof(text) - 200, "1");
	root = parse_value(text, &value);
	assert_int_equal(value->type, DOC_INT);
	assert_int_equal(value->integer, 1);
	doc_free(root);

	/* 64 binary ones: the largest unsigned 64-bit value. */
	memcpy(text, "0b", 2);
	memset(text + 2, '1', 64);
	snprintf(text + 66, sizeof(text) - 66, "%s", "");
	root = parse_value(text, &value);
	assert_int_equal(value->type, DOC_FLOAT);
	assert_true(value->real == 18446744073709551615.0);
	doc_free(root);

	/* 150 decimal digits: too large for 64 bits, so a float. */
	memset(text, '9', 150);
	text[150] = '\0';
	root = parse_value(text, &value);
	assert_int_equal(value->type, DOC_FLOAT);
	assert_true(value->real > 9.9e149);
	assert_int_equal(value->text_len, 150);
	doc_free(root);
}

static void test_typing_keeps_source_text(void **state)
{
	const struct doc_node *value;
	struct doc_node *root;

	(void)state;
	root = parse_value("0644", &value);
	assert_string_equal(value->text, "0644");
	assert_int_equal(value->text_len, 4);
	doc_free(root);

	root = parse_value("Yes", &value);
	assert_string_equal(value->text, "Yes");
	doc_free(root);

	root = parse_value("~", &value);
	assert_string_equal(value->text, "~");
	doc_free(root);

	root = parse_value("\"a\\0b\"", &value);
	assert_int_equal(value->type, DOC_STRING);
	assert_int_equal(value->text_len, 3);
	assert_memory_equal(value->text, "a\0b", 4);
	doc_free(root);
}

static void test_typing_tags(void **state)
{
	static const struct typing_case cases[] = {
		{ "!!str 42", DOC_STRING, 0, 0 }, { "!!str true", DOC_STRING, 0, 0 },
		{ "!!str", DOC_STRING, 0, 0 },
		{ "!!int '42'", DOC_INT, 42, 0 }, { "!!int \"0x10\"", DOC_INT, 16, 0 },
		{ "!!int 0644", DOC_INT, 420, 0 },
		{ "!!int 18446744073709551615", DOC_FLOAT, 0, 18446744073709551615.0 },
		{ "!!float 1", DOC_FLOAT, 0, 1 }, { "!!float '1.5'", DOC_FLOAT, 0, 1.5 },
		{ "!!float 0x10", DOC_FLOAT, 0, 16 },
		{ "!!bool yes", DOC_BOOL, 1, 0 }, { "!!bool 'false'", DOC_BOOL, 0, 0 },
		{ "!!null ''", DOC_NULL, 0, 0 }, { "!!null ~", DOC_NULL, 0, 0 },
		{ "!<tag:yaml.org,2002:int> 7", DOC_INT, 7, 0 },
		{ "!custom 42", DOC_STRING, 0, 0 }, { "! 42", DOC_STRING, 0, 0 },
		{ "!!binary aGVsbG8=", DOC_STRING, 0, 0 }, { "!!timestamp 2001-12-14", DOC_STRING, 0, 0 },
		{ "!!merge <<", DOC_STRING, 0, 0 },
	};

	(void)state;
	check_typing(cases, sizeof(cases) / sizeof(cases[0]));
}

static void test_typing_tag_mismatch(void **state)
{
	struct doc_node *root;

	(void)state;
	parse_fails("value: !!int abc\n", "value \"abc\" at line 1, column 8 is not a valid !!int");
	parse_fails("value: !!int 1.5\n", "is not a valid !!int");
	parse_fails("value: !!bool 1\n", "is not a valid !!bool");
	parse_fails("value: !!float abc\n", "is not a valid !!float");
	parse_fails("value: !!null x\n", "is not a valid !!null");
	parse_fails("value: !!map x\n", "tag !!map at line 1, column 8 cannot apply to a scalar");
	parse_fails("value: !!seq {a: 1}\n", "tag !!seq at line 1, column 8 cannot apply to a mapping");
	parse_fails("value: !!str [1]\n", "cannot apply to a sequence");

	root = parse_ok("a: !!map {b: 1}\nc: !!seq [1]\nd: !Ref {e: 1}\n");
	assert_int_equal(doc_get(root, "a")->type, DOC_MAP);
	assert_int_equal(doc_get(root, "c")->type, DOC_SEQ);
	assert_int_equal(doc_get(root, "d")->type, DOC_MAP);
	doc_free(root);
}

static void test_keys_converted_like_kubectl(void **state)
{
	static const struct {
		const char *yaml;
		const char *key;
	} cases[] = {
		{ "1: a", "1" }, { "true: a", "true" }, { "yes: a", "true" }, { "Off: a", "false" },
		{ "0x10: a", "16" }, { "0644: a", "420" }, { "-5: a", "-5" }, { "1.5: a", "1.5" },
		{ "1.0: a", "1" }, { "0.1: a", "0.1" }, { "1234567.0: a", "1.234567e+06" },
		{ "123456.0: a", "123456" }, { "0.0001: a", "0.0001" }, { "0.00001: a", "1e-05" },
		{ "3.14159265358979: a", "3.1415927" }, { ".inf: a", ".inf" }, { "-.inf: a", "-.inf" },
		{ ".nan: a", ".nan" }, { "1e39: a", ".inf" }, { "-0.0: a", "-0" },
		{ "'~': a", "~" }, { "\"1\": a", "1" }, { "\"<<\": a", "<<" },
		{ "!!str 1: a", "1" }, { "!!int '7': a", "7" },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct doc_node *root = parse_ok(cases[i].yaml);

		assert_int_equal(root->type, DOC_MAP);
		assert_int_equal(root->count, 1);
		if (strcmp(root->items[0]->key, cases[i].key) != 0)
			fail_msg("key of \"%s\" is \"%s\", expected \"%s\"", cases[i].yaml,
				 root->items[0]->key, cases[i].key);
		doc_free(root);
	}
}

static void test_keys_rejected(void **state)
{
	(void)state;
	parse_fails("~: a\n", "key at line 1, column 1 is null");
	parse_fails("a: 1\nnull: b\n", "key at line 2, column 1 is null");
	parse_fails("? [a, b]\n: c\n", "a sequence used as a key at line 1, column 3 is not supported");
	parse_fails("? {a: 1}\n: c\n", "a mapping used as a key at line 1, column 3 is not supported");
	parse_fails("{[a]: 1}\n", "a sequence used as a key");
	parse_fails("a: &m {x: 1}\n*m : 2\n", "a mapping used as a key at line 2, column 1");
	parse_fails("\"a\\0b\": 1\n", "contains a NUL character");
}

/* ---- positions ---- */

static void test_positions_of_nodes_and_keys(void **state)
{
	static const char text[] =
		"apiVersion: v1\n"
		"kind: ConfigMap\n"
		"metadata:\n"
		"  name: demo\n"
		"  labels: {a: \"1\", b: 2}\n"
		"data:\n"
		"  - x\n"
		"  -   y\n";
	struct doc_node *root = parse_ok(text);
	const struct doc_node *metadata, *name, *labels, *b, *data;

	(void)state;
	assert_int_equal(root->line, 1);
	assert_int_equal(root->column, 1);
	metadata = doc_get(root, "metadata");
	assert_int_equal(metadata->key_line, 3);
	assert_int_equal(metadata->key_column, 1);
	assert_int_equal(metadata->line, 4);
	assert_int_equal(metadata->column, 3);
	name = doc_get(metadata, "name");
	assert_int_equal(name->key_line, 4);
	assert_int_equal(name->key_column, 3);
	assert_int_equal(name->line, 4);
	assert_int_equal(name->column, 9);
	labels = doc_get(metadata, "labels");
	assert_int_equal(labels->line, 5);
	assert_int_equal(labels->column, 11);
	assert_int_equal(doc_get(labels, "a")->key_column, 12);
	b = doc_get(labels, "b");
	assert_int_equal(b->key_line, 5);
	assert_int_equal(b->key_column, 20);
	assert_int_equal(b->column, 23);
	data = doc_get(root, "data");
	assert_int_equal(data->line, 7);
	assert_int_equal(data->column, 3);
	assert_int_equal(data->items[1]->line, 8);
	assert_int_equal(data->items[1]->column, 7);
	assert_int_equal(data->items[1]->key_line, 0);
	assert_null(data->items[1]->key);
	doc_free(root);
}

static void test_positions_in_stream(void **state)
{
	static const char text[] = "a: 1\n---\n# comment\nb:\n  c: 2\n";
	struct doc_stream stream;
	struct doc_error err;
	const struct doc_node *c;

	(void)state;
	assert_int_equal(doc_parse_stream(text, strlen(text), NULL, &stream, &err), 0);
	assert_int_equal(stream.count, 2);
	c = doc_find(stream.docs[1], "b", "c", NULL);
	assert_non_null(c);
	assert_int_equal(c->key_line, 5);
	assert_int_equal(c->key_column, 3);
	assert_int_equal(c->line, 5);
	assert_int_equal(c->column, 6);
	doc_stream_release(&stream);
}

/* ---- duplicate keys ---- */

static void test_duplicate_keys_name_both_lines(void **state)
{
	static const char text[] = "metadata:\n  name: a\n  labels: {}\n  name: b\n";
	struct doc_error err;

	(void)state;
	parse_fails_with(text, strlen(text), NULL,
			 "duplicate key \"name\" at line 4, first defined at line 2", &err);
	assert_int_equal(err.line, 4);
	assert_int_equal(err.column, 3);
	parse_fails("{a: 1, b: 2, a: 3}", "duplicate key \"a\" at line 1, first defined at line 1");
	parse_fails("{\"a\":1,\n\"a\":2}", "duplicate key \"a\" at line 2, first defined at line 1");
	parse_fails("1: a\n\"1\": b\n", "duplicate key \"1\" at line 2, first defined at line 1");
	parse_fails("yes: a\ntrue: b\n", "duplicate key \"true\" at line 2");
	parse_fails("a: 1\n\"\\x01\": 2\n\"\\x01\": 3\n", "duplicate key \"\\x01\" at line 3");
	/* A long key is cut at 64 bytes, at a character boundary. */
	parse_fails("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\xc3\xa9zzzz: 1\n"
		    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\xc3\xa9zzzz: 2\n",
		    "duplicate key \"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\xc3\xa9...\" at line 2");
}

static void test_duplicate_keys_in_large_map(void **state)
{
	struct buf text = BUF_INIT(1 << 20);
	struct doc_error err;

	(void)state;
	for (int i = 0; i < 500; i++)
		assert_int_equal(buf_printf(&text, "key%d: %d\n", i, i), 0);
	assert_int_equal(buf_printf(&text, "key17: again\n"), 0);
	parse_fails_with(text.data, text.len, NULL,
			 "duplicate key \"key17\" at line 501, first defined at line 18", &err);
	assert_int_equal(err.line, 501);
	buf_release(&text);
}

static void test_large_map_without_duplicates(void **state)
{
	struct buf text = BUF_INIT(1 << 24);
	struct doc_node *root = NULL;
	struct doc_error err;
	clock_t start;

	(void)state;
	for (int i = 0; i < 200000; i++)
		assert_int_equal(buf_printf(&text, "key%d: %d\n", i, i), 0);
	start = clock();
	assert_int_equal(doc_parse(text.data, text.len, NULL, &root, &err), 0);
	/* A quadratic duplicate check would compare about 2 * 10^10 pairs of keys here. */
	assert_true((double)(clock() - start) / CLOCKS_PER_SEC < 30.0);
	assert_int_equal(root->count, 200000);
	assert_int_equal(doc_get(root, "key199999")->integer, 199999);
	doc_free(root);
	buf_release(&text);
}

/* ---- limits ---- */

static char *nested_sequences(unsigned depth)
{
	char *text = malloc(2 * (size_t)depth + 1);

	assert_non_null(text);
	memset(text, '[', depth);
	memset(text + depth, ']', depth);
	text[2 * depth] = '\0';
	return text;
}

static void test_limit_depth(void **state)
{
	struct doc_limits limits = { .max_depth = 3 };
	struct doc_node *root = NULL;
	struct doc_error err;
	char *deep;

	(void)state;
	deep = nested_sequences(128);
	assert_int_equal(doc_parse(deep, strlen(deep), NULL, &root, &err), 0);
	doc_free(root);
	free(deep);

	deep = nested_sequences(129);
	parse_fails_with(deep, strlen(deep), NULL,
			 "nesting at line 1, column 129 is deeper than the maximum of 128 levels", &err);
	free(deep);

	assert_int_equal(doc_parse("a: {b: {c: 1}}", 14, &limits, &root, &err), 0);
	doc_free(root);
	parse_fails_with("a: {b: {c: {d: 1}}}", 19, &limits, "deeper than the maximum of 3 levels",
			 &err);
	assert_int_equal(err.line, 1);
	assert_int_equal(err.column, 12);
}

static void test_limit_depth_through_alias(void **state)
{
	static const char text[] = "a: &a [[1]]\nb: [[*a]]\n";
	struct doc_limits limits = { .max_depth = 4 };
	struct doc_error err;

	(void)state;
	parse_fails_with(text, strlen(text), &limits,
			 "alias \"a\" at line 2, column 6 expands to nesting deeper than the maximum of 4 levels",
			 &err);
}

static void test_limit_bytes(void **state)
{
	struct doc_limits limits = { .max_bytes = 10 };
	struct doc_stream stream;
	struct doc_node *root = NULL;
	struct doc_error err;

	(void)state;
	assert_int_equal(doc_parse("a: 1234567", 10, &limits, &root, &err), 0);
	doc_free(root);
	parse_fails_with("a: 12345678", 11, &limits,
			 "input is 11 bytes, more than the maximum of 10 bytes", &err);
	assert_int_equal(doc_parse_stream("a: 12345678", 11, &limits, &stream, &err), MLB_EINPUT);
	assert_int_equal(stream.count, 0);
}

static void test_limit_nodes(void **state)
{
	struct doc_limits limits = { .max_nodes = 5 };
	struct doc_node *root = NULL;
	struct doc_error err;

	(void)state;
	assert_int_equal(doc_parse("[1, 2, 3, 4]", 12, &limits, &root, &err), 0);
	doc_free(root);
	parse_fails_with("[1, 2, 3, 4, 5]", 15, &limits,
			 "input has more than 5 nodes at line 1, column 14", &err);
}

static void test_limit_nodes_counts_whole_stream(void **state)
{
	static const char text[] = "[1, 2]\n---\n[3, 4]\n";
	struct doc_limits limits = { .max_nodes = 5 };
	struct doc_stream stream;
	struct doc_error err;

	(void)state;
	assert_int_equal(doc_parse_stream(text, strlen(text), &limits, &stream, &err), MLB_EINPUT);
	assert_non_null(strstr(err.message, "more than 5 nodes"));
	assert_int_equal(stream.count, 0);
	assert_null(stream.docs);
}

static void test_billion_laughs_fails_fast(void **state)
{
	static const char text[] =
		"a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n"
		"b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
		"c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
		"d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
		"e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]\n"
		"f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]\n"
		"g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]\n"
		"h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g]\n"
		"i: &i [*h, *h, *h, *h, *h, *h, *h, *h, *h]\n";
	struct doc_error err;
	clock_t start = clock();

	(void)state;
	parse_fails_with(text, strlen(text), NULL,
			 "input has more than 4000000 nodes once alias \"", &err);
	assert_non_null(strstr(err.message, "each use of an alias counts all its nodes again"));
	/* Without the node limit this input expands to 9^9 strings. */
	assert_true((double)(clock() - start) / CLOCKS_PER_SEC < 30.0);
}

static void test_limits_zero_fields_keep_defaults(void **state)
{
	struct doc_limits limits = { 0 };
	struct doc_node *root = NULL;
	struct doc_error err;

	(void)state;
	assert_int_equal(doc_parse("a: [1, 2]", 9, &limits, &root, &err), 0);
	assert_int_equal(doc_get(root, "a")->count, 2);
	doc_free(root);
}

/* ---- anchors and merge keys ---- */

static void test_anchors_and_aliases(void **state)
{
	static const char text[] =
		"base: &base {a: 1, list: [x, y]}\n"
		"copy: *base\n"
		"scalar: &s hello\n"
		"again: *s\n"
		"&k named: 1\n"
		"keyed: *k\n"
		"*s : from alias\n"
		"redefined: &s 2\n"
		"latest: *s\n"
		"&k other: 3\n"
		"key_again: *k\n";
	struct doc_node *root = parse_ok(text);
	const struct doc_node *copy = doc_get(root, "copy");

	(void)state;
	assert_true(trees_equal(copy, doc_get(root, "base")));
	assert_ptr_not_equal(copy, doc_get(root, "base"));
	assert_int_equal(copy->line, 2);
	assert_int_equal(copy->column, 7);
	assert_string_equal(copy->key, "copy");
	assert_string_equal(doc_get_string(root, "again"), "hello");
	assert_string_equal(doc_get_string(root, "keyed"), "named");
	assert_string_equal(doc_get_string(root, "hello"), "from alias");
	assert_int_equal(doc_get(root, "latest")->integer, 2);
	assert_string_equal(doc_get_string(root, "key_again"), "other");
	doc_free(root);
}

static void test_alias_errors(void **state)
{
	(void)state;
	parse_fails("a: *missing\n",
		    "alias \"missing\" at line 1, column 4 refers to an anchor that is not defined before it");
	parse_fails("a: &x [1, *x]\n", "alias \"x\" at line 1, column 11 refers to a node that contains it");
	parse_fails("a: &x {b: *x}\n", "refers to a node that contains it");
	parse_fails("a: &x 1\n---\nb: *x\n", "expected one document");
}

static void test_anchor_names_do_not_cross_documents(void **state)
{
	static const char text[] = "a: &x 1\n---\nb: *x\n";
	struct doc_stream stream;
	struct doc_error err;

	(void)state;
	assert_int_equal(doc_parse_stream(text, strlen(text), NULL, &stream, &err), MLB_EINPUT);
	assert_non_null(strstr(err.message, "refers to an anchor that is not defined"));
	assert_int_equal(err.line, 3);
}

static void test_merge_keys(void **state)
{
	static const char text[] =
		"base: &base {a: 1, b: 2}\n"
		"other: &other {b: 3, c: 4}\n"
		"one:\n"
		"  <<: *base\n"
		"  b: 20\n"
		"two:\n"
		"  <<: [*base, *other]\n"
		"three:\n"
		"  a: 10\n"
		"  <<: *base\n"
		"four:\n"
		"  <<: {x: 1}\n"
		"  <<: {x: 2, w: 3}\n"
		"five: {<<: *base, \"<<\": quoted}\n"
		"six:\n"
		"  !!merge <<: *other\n";
	struct doc_node *root = parse_ok(text);
	const struct doc_node *node;

	(void)state;
	node = doc_get(root, "one");
	assert_int_equal(node->count, 2);
	assert_int_equal(doc_get(node, "a")->integer, 1);
	assert_int_equal(doc_get(node, "b")->integer, 20);

	node = doc_get(root, "two");
	assert_int_equal(node->count, 3);
	assert_int_equal(doc_get(node, "a")->integer, 1);
	assert_int_equal(doc_get(node, "b")->integer, 2);
	assert_int_equal(doc_get(node, "c")->integer, 4);

	/* go-yaml v2 applies a merge in document order, over the keys before it. */
	node = doc_get(root, "three");
	assert_int_equal(node->count, 2);
	assert_int_equal(doc_get(node, "a")->integer, 1);

	node = doc_get(root, "four");
	assert_int_equal(doc_get(node, "x")->integer, 2);
	assert_int_equal(doc_get(node, "w")->integer, 3);

	node = doc_get(root, "five");
	assert_int_equal(node->count, 3);
	assert_string_equal(doc_get_string(node, "<<"), "quoted");

	node = doc_get(root, "six");
	assert_int_equal(doc_get(node, "c")->integer, 4);
	assert_non_null(doc_get(doc_get(root, "base"), "a"));
	doc_free(root);
}

static void test_merge_keeps_anchored_members_alive(void **state)
{
	static const char text[] =
		"m:\n"
		"  a: &x {k: 1}\n"
		"  <<: {a: 2}\n"
		"  <<: *x\n"
		"later: *x\n";
	struct doc_node *root = parse_ok(text);
	const struct doc_node *m = doc_get(root, "m");

	(void)state;
	assert_int_equal(doc_get(m, "a")->integer, 2);
	assert_int_equal(doc_get(m, "k")->integer, 1);
	assert_int_equal(doc_find(root, "later", "k", NULL)->integer, 1);
	doc_free(root);
}

static void test_merge_errors(void **state)
{
	(void)state;
	parse_fails("a:\n  <<: 1\n",
		    "merge key \"<<\" at line 2, column 3 needs a mapping or a sequence of mappings");
	parse_fails("a:\n  <<: [{b: 1}, 2]\n", "needs a mapping or a sequence of mappings");
	parse_fails("s: &s text\na:\n  <<: *s\n", "needs a mapping or a sequence of mappings");
}

static void test_merge_counts_nodes(void **state)
{
	static const char text[] = "a: &a {b: 1, c: 2, d: 3}\ne: {<<: *a}\n";
	struct doc_limits limits = { .max_nodes = 7 };
	struct doc_error err;

	(void)state;
	parse_fails_with(text, strlen(text), &limits,
			 "more than 7 nodes once merge key \"<<\" at line 2, column 5 is expanded", &err);
}

/* ---- streams ---- */

static void parse_stream_ok(const char *text, size_t len, struct doc_stream *stream)
{
	struct doc_error err;
	int r = doc_parse_stream(text, len, NULL, stream, &err);

	if (r < 0)
		fail_msg("stream parse failed (%d): %s", r, err.message);
}

static void test_stream_skips_empty_documents(void **state)
{
	static const char *const empty[] = {
		"", "# only a comment\n", "---\n", "---\n---\n...\n", "\n\n# a\n---\n# b\n",
		"~\n", "---\nnull\n...\n",
	};
	static const char mixed[] = "a: 1\n---\n\n---\n# x\n---\nb: 2\n---\n{}\n";
	struct doc_stream stream;

	(void)state;
	for (size_t i = 0; i < sizeof(empty) / sizeof(empty[0]); i++) {
		parse_stream_ok(empty[i], strlen(empty[i]), &stream);
		if (stream.count != 0)
			fail_msg("\"%s\" gave %zu documents", empty[i], stream.count);
		doc_stream_release(&stream);
	}

	parse_stream_ok(mixed, strlen(mixed), &stream);
	assert_int_equal(stream.count, 3);
	assert_int_equal(doc_get(stream.docs[0], "a")->integer, 1);
	assert_int_equal(doc_get(stream.docs[1], "b")->integer, 2);
	assert_int_equal(stream.docs[2]->type, DOC_MAP);
	assert_int_equal(stream.docs[2]->count, 0);
	doc_stream_release(&stream);
}

static void test_stream_separator_inside_block_scalar(void **state)
{
	static const char text[] =
		"a: |\n"
		"  x\n"
		"  ---\n"
		"  y\n"
		"---\n"
		"b: 2\n";
	struct doc_stream stream;

	(void)state;
	parse_stream_ok(text, strlen(text), &stream);
	assert_int_equal(stream.count, 2);
	assert_string_equal(doc_get_string(stream.docs[0], "a"), "x\n---\ny\n");
	assert_int_equal(doc_get(stream.docs[1], "b")->integer, 2);
	doc_stream_release(&stream);
}

static void test_stream_byte_order_mark_and_crlf(void **state)
{
	static const char text[] =
		"\xef\xbb\xbf" "a: 1\r\n"
		"b: |\r\n"
		"  x\r\n"
		"  y\r\n"
		"---\r\n"
		"c: 3\r\n";
	struct doc_stream stream;
	const struct doc_node *a;

	(void)state;
	parse_stream_ok(text, strlen(text), &stream);
	assert_int_equal(stream.count, 2);
	a = doc_get(stream.docs[0], "a");
	assert_int_equal(a->key_line, 1);
	assert_int_equal(a->key_column, 1);
	assert_string_equal(doc_get_string(stream.docs[0], "b"), "x\ny\n");
	assert_int_equal(doc_get(stream.docs[1], "c")->key_line, 6);
	doc_stream_release(&stream);
}

static void test_stream_document_end_markers(void **state)
{
	static const char text[] = "a: 1\n...\n---\nb: 2\n...\n# trailing\n";
	struct doc_stream stream;

	(void)state;
	parse_stream_ok(text, strlen(text), &stream);
	assert_int_equal(stream.count, 2);
	assert_int_equal(doc_get(stream.docs[1], "b")->key_line, 4);
	doc_stream_release(&stream);
}

static void test_stream_scalar_and_sequence_documents(void **state)
{
	static const char text[] = "hello\n---\n- 1\n- 2\n";
	struct doc_stream stream;

	(void)state;
	parse_stream_ok(text, strlen(text), &stream);
	assert_int_equal(stream.count, 2);
	assert_true(doc_string_equals(stream.docs[0], "hello"));
	assert_int_equal(stream.docs[1]->type, DOC_SEQ);
	doc_stream_release(&stream);
}

static void test_stream_expands_lists(void **state)
{
	static const char text[] =
		"apiVersion: v1\n"
		"kind: List\n"
		"items:\n"
		"- {apiVersion: v1, kind: ConfigMap, metadata: {name: a}}\n"
		"- {apiVersion: v1, kind: Secret, metadata: {name: b}}\n"
		"---\n"
		"apiVersion: v1\n"
		"kind: ConfigMapList\n"
		"items:\n"
		"- metadata: {name: c}\n"
		"---\n"
		"kind: List\n"
		"items: []\n"
		"---\n"
		"apiVersion: v1\n"
		"kind: ServiceList\n"
		"items:\n"
		"---\n"
		"kind: List\n"
		"items:\n"
		"- kind: List\n"
		"  items:\n"
		"  - {kind: ConfigMap, metadata: {name: nested}}\n"
		"- {kind: Secret, metadata: {name: after}}\n"
		"---\n"
		"kind: Playlist\n"
		"items: [1]\n"
		"---\n"
		"kind: PodList\n"
		"items: not-a-sequence\n";
	static const char *const names[] = { "a", "b", "c", "nested", "after" };
	struct doc_stream stream;

	(void)state;
	parse_stream_ok(text, strlen(text), &stream);
	assert_int_equal(stream.count, 7);
	for (size_t i = 0; i < 5; i++) {
		const char *name = doc_find_string(stream.docs[i], "metadata", "name", NULL);

		assert_non_null(name);
		assert_string_equal(name, names[i]);
		assert_null(stream.docs[i]->key);
	}
	assert_string_equal(doc_get_string(stream.docs[1], "kind"), "Secret");
	/* Items of a typed list inherit its kind and apiVersion, as kubectl does. */
	assert_string_equal(doc_get_string(stream.docs[2], "kind"), "ConfigMap");
	assert_string_equal(doc_get_string(stream.docs[2], "apiVersion"), "v1");
	assert_int_equal(doc_get(stream.docs[2], "kind")->line, 8);
	assert_string_equal(doc_get_string(stream.docs[5], "kind"), "Playlist");
	assert_string_equal(doc_get_string(stream.docs[6], "kind"), "PodList");
	doc_stream_release(&stream);
}

static void test_stream_list_item_not_a_mapping(void **state)
{
	static const char text[] = "a: 1\n---\nkind: List\nitems:\n- {kind: A}\n- 2\n";
	struct doc_stream stream;
	struct doc_error err;

	(void)state;
	assert_int_equal(doc_parse_stream(text, strlen(text), NULL, &stream, &err), MLB_EINPUT);
	assert_string_equal(err.message,
			    "item 2 of the List at line 3 is not a mapping (line 6, column 3)");
	assert_int_equal(err.line, 6);
	assert_int_equal(stream.count, 0);
}

static void test_parse_single_document(void **state)
{
	struct doc_node *root = NULL;
	struct doc_error err;

	(void)state;
	assert_int_equal(doc_parse("", 0, NULL, &root, &err), 0);
	assert_int_equal(root->type, DOC_NULL);
	doc_free(root);

	assert_int_equal(doc_parse("# nothing\n", 10, NULL, &root, &err), 0);
	assert_int_equal(root->type, DOC_NULL);
	doc_free(root);

	/* doc_parse returns a List as it is. */
	root = parse_ok("kind: List\nitems: [{kind: A}]\n");
	assert_int_equal(doc_get(root, "items")->count, 1);
	doc_free(root);

	parse_fails("a: 1\n---\nb: 2\n", "expected one document, but another one starts at line 2");
	parse_fails("---\n---\n", "another one starts at line 2");
}

/* ---- JSON input ---- */

static void test_json_input(void **state)
{
	static const char text[] =
		"{\"a\": {\"b\": [1, 2.5, -3e2, true, false, null, \"x\", 0, -0, 1.0, 1E+2]},\n"
		" \"c\": \"\\u00e9\\n\\t\\\"\\\\\\/\",\n"
		" \"big\": 12345678901234567890, \"neg\": -9223372036854775808,\n"
		" \"empty\": {}, \"list\": [], \"s\": \"\"}";
	struct doc_node *root = parse_ok(text);
	const struct doc_node *b = doc_find(root, "a", "b", NULL);
	const struct doc_node *big;

	(void)state;
	assert_int_equal(b->count, 11);
	assert_int_equal(b->items[0]->type, DOC_INT);
	assert_true(b->items[1]->real == 2.5);
	assert_true(b->items[2]->real == -300);
	assert_true(b->items[3]->boolean);
	assert_int_equal(b->items[5]->type, DOC_NULL);
	assert_true(doc_string_equals(b->items[6], "x"));
	assert_int_equal(b->items[8]->type, DOC_INT);
	assert_int_equal(b->items[9]->type, DOC_FLOAT);
	assert_true(b->items[10]->real == 100);
	assert_true(doc_string_equals(doc_get(root, "c"), "\xc3\xa9\n\t\"\\/"));
	big = doc_get(root, "big");
	assert_int_equal(big->type, DOC_FLOAT);
	assert_string_equal(big->text, "12345678901234567890");
	assert_int_equal(doc_get(root, "neg")->integer, LLONG_MIN);
	assert_int_equal(doc_get(root, "empty")->type, DOC_MAP);
	assert_int_equal(doc_get(root, "list")->type, DOC_SEQ);
	assert_true(doc_string_equals(doc_get(root, "s"), ""));
	assert_int_equal(doc_get(root, "c")->key_line, 2);
	assert_int_equal(doc_get(root, "c")->key_column, 2);
	doc_free(root);
}

static void test_json_unicode_escapes(void **state)
{
	static const char text[] =
		"{\"pair\":\"\\ud83d\\ude00\",\"b\":1,\n"
		" \"lone\":\"x\\ud800y\",\"low\":\"\\uDC00\",\"nul\":\"a\\u0000b\",\"bmp\":\"\\u4e2d\"}";
	struct doc_node *root = parse_ok(text);
	const struct doc_node *b = doc_get(root, "b");
	const struct doc_node *nul = doc_get(root, "nul");

	(void)state;
	assert_true(doc_string_equals(doc_get(root, "pair"), "\xf0\x9f\x98\x80"));
	/* The rewrite keeps the columns of everything after the string. */
	assert_int_equal(b->key_column, 24);
	assert_int_equal(b->column, 28);
	assert_true(doc_string_equals(doc_get(root, "lone"), "x\xef\xbf\xbdy"));
	assert_true(doc_string_equals(doc_get(root, "low"), "\xef\xbf\xbd"));
	assert_int_equal(nul->text_len, 3);
	assert_memory_equal(nul->text, "a\0b", 3);
	assert_true(doc_string_equals(doc_get(root, "bmp"), "\xe4\xb8\xad"));
	doc_free(root);
}

static void test_json_tabs_and_compact(void **state)
{
	static const char text[] = "{\n\t\"a\":\t[1,{\"b\":\"c\"}],\"d\":true}";
	struct doc_node *root = parse_ok(text);

	(void)state;
	assert_int_equal(doc_get(root, "a")->type, DOC_SEQ);
	assert_string_equal(doc_get(root, "a")->items[1]->items[0]->text, "c");
	assert_int_equal(doc_get(root, "a")->key_line, 2);
	assert_int_equal(doc_get(root, "a")->key_column, 2);
	doc_free(root);
}

/* ---- JSON output ---- */

static void test_json_writer_from_yaml(void **state)
{
	(void)state;
	assert_json("a: 1\n"
		    "b: [x, \"y\", 2.50, 0644, yes, ~, .5, 1_000, 08, +1.5, 1., -.5, 1e3, 0o17, 0x10]\n"
		    "c: {d: \"q\\\"uote\", e: \"tab\\there\"}\n",
		    "{\"a\":1,\"b\":[\"x\",\"y\",2.50,420,true,null,0.5,1000,8,1.5,1,-0.5,1e3,15,16],"
		    "\"c\":{\"d\":\"q\\\"uote\",\"e\":\"tab\\there\"}}");
	assert_json("- 18446744073709551615\n- 0xFFFFFFFFFFFFFFFF\n- !!float 0644\n- 1_000.5\n",
		    "[18446744073709551615,18446744073709552000,420,1000.5]");
	assert_json("[]", "[]");
	assert_json("{}", "{}");
	assert_json("", "null");
	assert_json("\"\"", "\"\"");
	assert_json("{1: a, true: b}", "{\"1\":\"a\",\"true\":\"b\"}");
}

static void test_json_writer_escaping(void **state)
{
	(void)state;
	assert_json("\"\\0\\x01\\x1f\\b\\f\\n\\r\\t\\\\\\\"/\"",
		    "\"\\u0000\\u0001\\u001f\\b\\f\\n\\r\\t\\\\\\\"/\"");
	assert_json("\"<a & b>\\u2028\\u2029\\x7f\\x80\\N\\x9f\\xa0\\uFFFE\\uFFFF\\uFFFD\"",
		    "\"<a & b>\\u2028\\u2029\\u007f\\u0080\\u0085\\u009f\xc2\xa0\\ufffe\\uffff\xef\xbf\xbd\"");
	assert_json("\"\\u00e9\\U0001F600\"", "\"\xc3\xa9\xf0\x9f\x98\x80\"");
	assert_json("{\"k\\ney\": 1}", "{\"k\\ney\":1}");
}

static void test_json_writer_invalid_utf8(void **state)
{
	struct buf out = BUF_INIT(1024);
	struct doc_node *node = doc_new_string("a\xff" "b\xc3(\xed\xa0\x80z");

	(void)state;
	assert_int_equal(doc_write_json(node, &out), 0);
	assert_string_equal(out.data, "\"a\\ufffdb\\ufffd(\\ufffd\\ufffd\\ufffdz\"");
	buf_reset(&out);
	assert_int_equal(doc_write_json_string(&out, "x\0y", 3), 0);
	assert_string_equal(out.data, "\"x\\u0000y\"");
	doc_free(node);
	buf_release(&out);
}

static void test_json_writer_rejects_nan_and_infinity(void **state)
{
	static const char *const texts[] = { ".nan", ".inf", "-.Inf" };
	struct buf out = BUF_INIT(1024);

	(void)state;
	for (size_t i = 0; i < 3; i++) {
		struct doc_node *root = parse_ok(texts[i]);

		assert_int_equal(doc_write_json(root, &out), MLB_EINPUT);
		doc_free(root);
	}
	buf_release(&out);
}

static void test_json_writer_float_format(void **state)
{
	static const struct {
		double value;
		const char *json;
	} cases[] = {
		{ 1e21, "1e+21" }, { 1e20, "100000000000000000000" }, { 1e-7, "1e-7" },
		{ 1.5e-10, "1.5e-10" }, { 0.000001, "0.000001" }, { 123456.789, "123456.789" },
		{ 0.1, "0.1" }, { 1.0 / 3, "0.3333333333333333" }, { -2.5, "-2.5" }, { 0.0, "0" },
		{ -0.0, "-0" }, { 5e-324, "5e-324" }, { 1.7976931348623157e308, "1.7976931348623157e+308" },
		{ 100, "100" },
	};
	struct buf out = BUF_INIT(1024);

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct doc_node *node = doc_new(DOC_FLOAT);

		free(node->text);
		node->text = NULL;
		node->text_len = 0;
		node->real = cases[i].value;
		buf_reset(&out);
		assert_int_equal(doc_write_json(node, &out), 0);
		if (strcmp(buf_str(&out), cases[i].json) != 0)
			fail_msg("%.17g was written as %s, expected %s", cases[i].value, buf_str(&out),
				 cases[i].json);
		doc_free(node);
	}
	buf_release(&out);
}

static void test_json_writer_buffer_maximum(void **state)
{
	struct doc_node *root = parse_ok("{a: [1, 2, 3], b: \"long enough text\"}");
	struct buf out = BUF_INIT(10);

	(void)state;
	assert_int_equal(doc_write_json(root, &out), -E2BIG);
	doc_free(root);
	buf_release(&out);
}

/* Found by fuzzing: a float negative zero is written as Go writes it. */
static void test_json_negative_zero(void **state)
{
	struct doc_node *root = parse_ok("[-0.e-53, -0.0, -0, 0.0]");
	char *json = to_json(root);

	(void)state;
	assert_int_equal(root->items[0]->type, DOC_FLOAT);
	assert_int_equal(root->items[2]->type, DOC_INT);
	assert_string_equal(json, "[-0,-0.0,0,0.0]");
	free(json);
	doc_free(root);
}

static void test_json_round_trip(void **state)
{
	static const char text[] =
		"apiVersion: apps/v1\n"
		"kind: Deployment\n"
		"metadata: {name: web, labels: {app: web, \"on\": \"yes\"}}\n"
		"spec:\n"
		"  replicas: 3\n"
		"  ratio: 0.25\n"
		"  template:\n"
		"    spec:\n"
		"      containers:\n"
		"      - name: c\n"
		"        image: nginx:1.25\n"
		"        args: [\"--port=80\", '0644', 0644, ~, \"\\x01\\u00e9\"]\n"
		"        script: |\n"
		"          #!/bin/sh\n"
		"          echo \"hi\"\n";
	struct doc_node *root = parse_ok(text);
	struct doc_node *again;
	char *json = to_json(root);
	char *json_again;

	(void)state;
	again = parse_ok(json);
	assert_true(trees_equal(root, again));
	json_again = to_json(again);
	assert_string_equal(json, json_again);
	free(json);
	free(json_again);
	doc_free(root);
	doc_free(again);
}

/* Parses the rendered Kubeflow manifests when the upstream folder is there. */
static void test_kubeflow_render_round_trip(void **state)
{
	const char *upstream = getenv("MLBOOT_UPSTREAM_DIR");
	struct buf text = BUF_INIT(64u << 20), json = BUF_INIT(64u << 20);
	struct doc_stream stream, again;
	struct doc_error err;
	char path[4096];

	(void)state;
	if (!upstream)
		skip();
	snprintf(path, sizeof(path), "%s/kubeflow-v1.10.2/example.all.yaml", upstream);
	if (file_read_all(path, text.max, &text) < 0)
		skip();
	assert_int_equal(doc_parse_stream(text.data, text.len, NULL, &stream, &err), 0);
	assert_int_equal(stream.count, 611);
	for (size_t i = 0; i < stream.count; i++) {
		assert_int_equal(buf_append_str(&json, "---\n"), 0);
		assert_int_equal(doc_write_json(stream.docs[i], &json), 0);
		assert_int_equal(buf_append_char(&json, '\n'), 0);
	}
	assert_int_equal(doc_parse_stream(json.data, json.len, NULL, &again, &err), 0);
	assert_int_equal(again.count, stream.count);
	for (size_t i = 0; i < stream.count; i++)
		assert_true(trees_equal(stream.docs[i], again.docs[i]));
	doc_stream_release(&stream);
	doc_stream_release(&again);
	buf_release(&text);
	buf_release(&json);
}

/* ---- builders ---- */

static void test_builders(void **state)
{
	struct doc_node *root = doc_new(DOC_MAP);
	struct doc_node *labels, *list;
	char *json;

	(void)state;
	assert_non_null(root);
	assert_int_equal(doc_map_set_string(root, "kind", "ConfigMap"), 0);
	assert_int_equal(doc_map_set(root, "count", doc_new_int(-7)), 0);
	assert_int_equal(doc_map_set(root, "ready", doc_new_bool(true)), 0);
	assert_int_equal(doc_map_set(root, "nothing", doc_new(DOC_NULL)), 0);
	labels = doc_map_ensure_map(root, "labels");
	assert_non_null(labels);
	assert_ptr_equal(doc_map_ensure_map(root, "labels"), labels);
	assert_null(doc_map_ensure_map(root, "kind"));
	assert_int_equal(doc_map_set_string(labels, "app", "web"), 0);
	list = doc_new(DOC_SEQ);
	assert_int_equal(doc_seq_append(list, doc_new_string("a")), 0);
	assert_int_equal(doc_seq_append(list, doc_new_int(2)), 0);
	assert_int_equal(doc_map_set(root, "list", list), 0);

	/* Replacing keeps the member's place. */
	assert_int_equal(doc_map_set(root, "count", doc_new_int(8)), 0);
	json = to_json(root);
	assert_string_equal(json, "{\"kind\":\"ConfigMap\",\"count\":8,\"ready\":true,\"nothing\":null,"
				  "\"labels\":{\"app\":\"web\"},\"list\":[\"a\",2]}");
	free(json);

	assert_string_equal(doc_get(root, "count")->text, "8");
	assert_string_equal(doc_get(root, "ready")->text, "true");
	assert_string_equal(doc_find_string(root, "labels", "app", NULL), "web");
	assert_null(doc_find_string(root, "labels", "missing", NULL));
	assert_null(doc_find_string(root, "count", NULL));
	assert_ptr_equal(doc_find(root, NULL), root);
	assert_null(doc_get_string(root, "count"));
	assert_true(doc_map_remove(root, "ready"));
	assert_false(doc_map_remove(root, "ready"));
	assert_null(doc_get(root, "ready"));
	assert_int_equal(root->count, 5);
	doc_free(root);
}

static void test_builders_take_ownership_on_failure(void **state)
{
	struct doc_node *seq = doc_new(DOC_SEQ);
	struct doc_node *map = doc_new(DOC_MAP);

	(void)state;
	/* Each value below is freed by the failing call; the sanitizer checks it. */
	assert_int_equal(doc_map_set(seq, "a", doc_new_string("x")), -EINVAL);
	assert_int_equal(doc_map_set(map, NULL, doc_new_string("x")), -EINVAL);
	assert_int_equal(doc_seq_append(map, doc_new_int(1)), -EINVAL);
	assert_int_equal(doc_map_set(map, "a", NULL), -ENOMEM);
	assert_int_equal(doc_seq_append(seq, NULL), -ENOMEM);
	assert_null(doc_new((enum doc_type)99));
	assert_null(doc_get(seq, "a"));
	assert_null(doc_get(NULL, "a"));
	assert_false(doc_string_equals(NULL, "a"));
	doc_free(seq);
	doc_free(map);
	doc_free(NULL);
}

static void test_clone_is_deep(void **state)
{
	struct doc_node *root = parse_ok("a: {b: [1, \"two\", 3.5]}\nc: \"x\\0y\"\n");
	struct doc_node *copy = doc_clone(root);
	struct doc_node *member;

	(void)state;
	assert_non_null(copy);
	assert_true(trees_equal(root, copy));
	assert_int_equal(doc_get(copy, "c")->text_len, 3);
	assert_int_equal(doc_get(copy, "a")->key_line, 1);
	member = doc_get_mutable(doc_get_mutable(copy, "a"), "b");
	assert_int_equal(doc_seq_append(member, doc_new_int(4)), 0);
	assert_int_equal(doc_find(root, "a", "b", NULL)->count, 3);
	assert_int_equal(doc_find(copy, "a", "b", NULL)->count, 4);
	assert_null(doc_clone(NULL));

	/* A member moved into a sequence loses its key. */
	member = doc_clone(doc_get(root, "a"));
	assert_string_equal(member->key, "a");
	assert_int_equal(doc_seq_append(member->items[0], doc_clone(doc_get(root, "c"))), 0);
	assert_null(member->items[0]->items[3]->key);
	doc_free(member);
	doc_free(copy);
	doc_free(root);
}

/* Found by fuzzing: a NaN must survive a copy, and equality must allow for it. */
static void test_clone_keeps_nan(void **state)
{
	struct doc_node *root = parse_ok(".nan");
	struct doc_node *copy = doc_clone(root);

	(void)state;
	assert_int_equal(copy->type, DOC_FLOAT);
	assert_true(isnan(copy->real));
	assert_string_equal(copy->text, ".nan");
	assert_true(trees_equal(root, copy));
	doc_free(copy);
	doc_free(root);
}

static void test_string_equals_with_nul(void **state)
{
	struct doc_node *root = parse_ok("a: \"x\\0y\"\nb: x\n");

	(void)state;
	assert_false(doc_string_equals(doc_get(root, "a"), "x"));
	assert_true(doc_string_equals(doc_get(root, "b"), "x"));
	assert_false(doc_string_equals(doc_get(root, "b"), "xy"));
	doc_free(root);
}

/* ---- bad input ---- */

static void test_bad_input_messages(void **state)
{
	struct doc_error err;

	(void)state;
	PARSE_FAILS_BYTES("a:\n\tb: 1\n",
			 "syntax error at line 2, column 1: found character that cannot start any token", &err);
	assert_non_null(strstr(err.message, "YAML does not allow tabs for indentation, use spaces"));
	assert_int_equal(err.line, 2);
	assert_int_equal(err.column, 1);

	PARSE_FAILS_BYTES("a: \"abc\nb: 1\n",
			 "found unexpected end of stream (while scanning a quoted scalar that starts at line 1, column 4)",
			 &err);
	assert_int_equal(err.line, 3);

	PARSE_FAILS_BYTES("a: b\xff\n",
			 "invalid UTF-8 at line 1, column 5 (byte offset 4): invalid leading UTF-8 octet 0xff",
			 &err);
	assert_int_equal(err.column, 5);
	/* libyaml reports the byte that breaks the sequence, here the line break. */
	PARSE_FAILS_BYTES("x: \xc3\xa9\n" "a: b\xc3\n",
			 "invalid UTF-8 at line 2, column 6 (byte offset 11): invalid trailing UTF-8 octet 0x0a",
			 &err);
	PARSE_FAILS_BYTES("a: \x07\n",
			 "control character U+0007 at line 1, column 4 is not allowed", &err);
	PARSE_FAILS_BYTES("a: 1\0b", "control character U+0000 at line 1, column 5", &err);
	parse_fails("a:\n  b: 1\n c: 2\n", "syntax error at line 3, column 2");
	parse_fails("{a: 1",
		    "did not find expected ',' or '}' (while parsing a flow mapping that starts at line 1, column 1)");
	parse_fails("a: [1, 2\n", "syntax error");
	parse_fails("- a\nb: 1\n", "syntax error at line 2, column 1");
	parse_fails("{'a': \"\\ud83d\\ude00\"}", "found invalid Unicode character escape code");
}

static void test_bad_input_positions(void **state)
{
	struct doc_error err;

	(void)state;
	/* Columns count characters, and CR, CRLF, NEL and U+2028 each end a line, as in libyaml. */
	PARSE_FAILS_BYTES("a: \xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80 \xff\n",
			 "invalid UTF-8 at line 1, column 8", &err);
	PARSE_FAILS_BYTES("a: 1\r\nb: 2\rc: \xff", "invalid UTF-8 at line 3, column 4", &err);
	PARSE_FAILS_BYTES("a: x\xc2\x85" "b: \xff", "invalid UTF-8 at line 2, column 4", &err);
	PARSE_FAILS_BYTES("a: x\xe2\x80\xa8" "b: \xff", "invalid UTF-8 at line 2, column 4", &err);
	PARSE_FAILS_BYTES("a: 1\r\n\tb: 2\r\n", "syntax error at line 2, column 1", &err);
	assert_non_null(strstr(err.message, "tabs for indentation"));
	PARSE_FAILS_BYTES("\xef\xbb\xbf" "a:\n\tb: 1\n", "tabs for indentation", &err);
	/* A sequence cut off by the end of the input has no byte to report. */
	PARSE_FAILS_BYTES("a: \xc3",
			 "invalid UTF-8 at line 1, column 4 (byte offset 3): incomplete UTF-8 octet sequence; the input must be UTF-8 text",
			 &err);
}

static void test_json_surrogates_only_in_json(void **state)
{
	struct doc_node *root;

	(void)state;
	/* A plain scalar that contains quotes is YAML, not JSON, and stays as written. */
	root = parse_ok("[true\"\\ud83d\\ude00\"]");
	assert_true(doc_string_equals(root->items[0], "true\"\\ud83d\\ude00\""));
	doc_free(root);

	root = parse_ok("{\"a\":\"\\ud83d\\u00e9\",\"b\":\"\\\\ud83d\"}");
	assert_true(doc_string_equals(doc_get(root, "a"), "\xef\xbf\xbd\xc3\xa9"));
	assert_true(doc_string_equals(doc_get(root, "b"), "\\ud83d"));
	doc_free(root);

	parse_fails("{\"a\":\"\\ud83d\\ude00\" x}", "syntax error");
	parse_fails("{\"a\":\"\\ud83d\\ude00\\", "syntax error");
	parse_fails("{\"a\":\"\\ud8zz\"}", "syntax error");
	parse_fails("- \"\\ud83d\\ude00\"", "found invalid Unicode character escape code");
}

static void test_bad_arguments(void **state)
{
	struct doc_node *root = (struct doc_node *)1;
	struct doc_stream stream;

	(void)state;
	assert_int_equal(doc_parse(NULL, 3, NULL, &root, NULL), -EINVAL);
	assert_null(root);
	assert_int_equal(doc_parse(NULL, 0, NULL, &root, NULL), 0);
	assert_int_equal(root->type, DOC_NULL);
	doc_free(root);
	assert_int_equal(doc_parse_stream("[", 1, NULL, &stream, NULL), MLB_EINPUT);
	doc_stream_release(&stream);
	doc_stream_release(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_typing_booleans),
		cmocka_unit_test(test_typing_nulls),
		cmocka_unit_test(test_typing_integers),
		cmocka_unit_test(test_typing_floats),
		cmocka_unit_test(test_typing_strings),
		cmocka_unit_test(test_typing_long_numbers),
		cmocka_unit_test(test_typing_keeps_source_text),
		cmocka_unit_test(test_typing_tags),
		cmocka_unit_test(test_typing_tag_mismatch),
		cmocka_unit_test(test_keys_converted_like_kubectl),
		cmocka_unit_test(test_keys_rejected),
		cmocka_unit_test(test_positions_of_nodes_and_keys),
		cmocka_unit_test(test_positions_in_stream),
		cmocka_unit_test(test_duplicate_keys_name_both_lines),
		cmocka_unit_test(test_duplicate_keys_in_large_map),
		cmocka_unit_test(test_large_map_without_duplicates),
		cmocka_unit_test(test_limit_depth),
		cmocka_unit_test(test_limit_depth_through_alias),
		cmocka_unit_test(test_limit_bytes),
		cmocka_unit_test(test_limit_nodes),
		cmocka_unit_test(test_limit_nodes_counts_whole_stream),
		cmocka_unit_test(test_billion_laughs_fails_fast),
		cmocka_unit_test(test_limits_zero_fields_keep_defaults),
		cmocka_unit_test(test_anchors_and_aliases),
		cmocka_unit_test(test_alias_errors),
		cmocka_unit_test(test_anchor_names_do_not_cross_documents),
		cmocka_unit_test(test_merge_keys),
		cmocka_unit_test(test_merge_keeps_anchored_members_alive),
		cmocka_unit_test(test_merge_errors),
		cmocka_unit_test(test_merge_counts_nodes),
		cmocka_unit_test(test_stream_skips_empty_documents),
		cmocka_unit_test(test_stream_separator_inside_block_scalar),
		cmocka_unit_test(test_stream_byte_order_mark_and_crlf),
		cmocka_unit_test(test_stream_document_end_markers),
		cmocka_unit_test(test_stream_scalar_and_sequence_documents),
		cmocka_unit_test(test_stream_expands_lists),
		cmocka_unit_test(test_stream_list_item_not_a_mapping),
		cmocka_unit_test(test_parse_single_document),
		cmocka_unit_test(test_json_input),
		cmocka_unit_test(test_json_unicode_escapes),
		cmocka_unit_test(test_json_tabs_and_compact),
		cmocka_unit_test(test_json_writer_from_yaml),
		cmocka_unit_test(test_json_writer_escaping),
		cmocka_unit_test(test_json_writer_invalid_utf8),
		cmocka_unit_test(test_json_writer_rejects_nan_and_infinity),
		cmocka_unit_test(test_json_writer_float_format),
		cmocka_unit_test(test_json_writer_buffer_maximum),
		cmocka_unit_test(test_json_negative_zero),
		cmocka_unit_test(test_json_round_trip),
		cmocka_unit_test(test_kubeflow_render_round_trip),
		cmocka_unit_test(test_builders),
		cmocka_unit_test(test_builders_take_ownership_on_failure),
		cmocka_unit_test(test_clone_is_deep),
		cmocka_unit_test(test_clone_keeps_nan),
		cmocka_unit_test(test_string_equals_with_nul),
		cmocka_unit_test(test_bad_input_messages),
		cmocka_unit_test(test_bad_input_positions),
		cmocka_unit_test(test_json_surrogates_only_in_json),
		cmocka_unit_test(test_bad_arguments),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
