/*
 * libFuzzer target for the document tree.
 *
 * Each input is parsed as a stream. Every document is written as JSON and
 * the JSON is parsed again. The two trees must be equal, and writing the
 * second tree must give the same JSON byte for byte. A failed parse must
 * leave a message. The input is also parsed as one document, and each tree
 * is cloned and compared with its copy.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "doc.h"
#include "error.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* libyaml cannot read a key longer than 1024 characters in flow style, so JSON with one is skipped. */
#define JSON_KEY_MAX 1000

/* Low limits, so that small inputs reach the node and depth checks, also through aliases. */
static const struct doc_limits fuzz_limits = {
	.max_bytes = 1 << 20,
	.max_depth = 24,
	.max_nodes = 20000,
};

static void fail(const char *problem, const struct doc_error *err)
{
	fprintf(stderr, "fuzz_doc: %s%s%s\n", problem, err ? ": " : "", err ? err->message : "");
	abort();
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

static bool has_long_key(const struct doc_node *node)
{
	for (size_t i = 0; i < node->count; i++) {
		if (node->type == DOC_MAP) {
			struct buf key = BUF_INIT(1 << 20);
			bool too_long;

			doc_write_json_string(&key, node->items[i]->key, strlen(node->items[i]->key));
			too_long = key.len > JSON_KEY_MAX;
			buf_release(&key);
			if (too_long)
				return true;
		}
		if (has_long_key(node->items[i]))
			return true;
	}
	return false;
}

/*
 * Whether a float negative zero is in the tree. It is written as "-0", as
 * Go writes it, and "-0" reads back as the integer 0, so the second JSON
 * contains "0" there.
 */
static bool has_negative_zero(const struct doc_node *node)
{
	if (node->type == DOC_FLOAT && node->real == 0 && signbit(node->real))
		return true;
	for (size_t i = 0; i < node->count; i++)
		if (has_negative_zero(node->items[i]))
			return true;
	return false;
}

static void check_clone(const struct doc_node *node)
{
	struct doc_node *copy = doc_clone(node);

	if (!copy || !trees_equal(node, copy))
		fail("a clone differs from its source", NULL);
	doc_free(copy);
}

/* Writes a document as JSON, reads it back and checks that nothing changed. */
static void check_round_trip(const struct doc_node *doc)
{
	struct doc_limits reparse_limits = fuzz_limits;
	struct buf json = BUF_INIT(64u << 20), again = BUF_INIT(64u << 20);
	struct doc_node *parsed = NULL;
	struct doc_error err;
	int r;

	r = doc_write_json(doc, &json);
	/* NaN and infinities have no JSON spelling. */
	if (r == MLB_EINPUT)
		goto out;
	if (r < 0)
		fail("writing JSON failed", NULL);
	if (has_long_key(doc))
		goto out;
	reparse_limits.max_bytes = json.len ? json.len : 1;
	r = doc_parse(json.data, json.len, &reparse_limits, &parsed, &err);
	if (r < 0) {
		fprintf(stderr, "JSON: %.300s\n", json.data);
		fail("the JSON written could not be parsed again", &err);
	}
	if (!trees_equal(doc, parsed)) {
		fprintf(stderr, "JSON: %.300s\n", json.data);
		fail("the JSON written reads back as a different tree", NULL);
	}
	if (doc_write_json(parsed, &again) < 0)
		fail("writing the tree read back failed", NULL);
	if (!has_negative_zero(doc) &&
	    (again.len != json.len || memcmp(again.data, json.data, json.len) != 0)) {
		fprintf(stderr, "first:  %.300s\nsecond: %.300s\n", json.data, buf_str(&again));
		fail("writing the tree read back gives different JSON", NULL);
	}
out:
	doc_free(parsed);
	buf_release(&json);
	buf_release(&again);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct doc_stream stream;
	struct doc_node *single = NULL;
	struct doc_error err;
	int r;

	r = doc_parse_stream((const char *)data, size, &fuzz_limits, &stream, &err);
	if (r == 0) {
		for (size_t i = 0; i < stream.count; i++) {
			check_clone(stream.docs[i]);
			check_round_trip(stream.docs[i]);
		}
		doc_stream_release(&stream);
	} else if (r != MLB_EINPUT || !err.message[0] ||
		   !memchr(err.message, '\0', sizeof(err.message))) {
		fail("a failed stream parse left no message", &err);
	}

	r = doc_parse((const char *)data, size, &fuzz_limits, &single, &err);
	if (r == 0) {
		check_clone(single);
		doc_free(single);
	} else if (r != MLB_EINPUT || !err.message[0]) {
		fail("a failed parse left no message", &err);
	}
	return 0;
}
