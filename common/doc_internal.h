/*
 * Declarations shared by the files of the document tree and used nowhere
 * else: doc.c (nodes, the key index, look-ups, builders), doc_scalar.c
 * (scalar typing, float formatting), doc_parse.c (the parser) and
 * doc_json.c (the JSON writer).
 */
#ifndef MLBOOT_COMMON_DOC_INTERNAL_H
#define MLBOOT_COMMON_DOC_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

#include "doc.h"

/* Prefix of the YAML core schema tags, which are written !!str, !!int and so on. */
#define CORE_TAG_PREFIX "tag:yaml.org,2002:"

/* ---- doc.c: nodes ---- */

struct doc_node *node_alloc(enum doc_type type);
/* Copies len bytes of text into a new NUL-terminated string. Returns NULL when out of memory. */
char *copy_text(const char *text, size_t len);
int node_reserve(struct doc_node *node, size_t extra);
bool is_collection(const struct doc_node *node);

/* ---- doc.c: a string-keyed hash index over an array ---- */

/*
 * An open-addressing index from a key to its position in an array that the
 * caller owns. The index stores positions, not pointers, so the array may
 * be reallocated.
 */
struct key_index {
	size_t *slots;     /* position + 1, or 0 for an empty slot */
	size_t capacity;   /* a power of two, or 0 before the first add */
	size_t count;
};

typedef const char *(*key_at_function)(const void *array, size_t position);

const char *key_of_node(const void *array, size_t position);
void key_index_release(struct key_index *index);
int key_index_add(struct key_index *index, const void *array, key_at_function key_at,
		  size_t position);
size_t key_index_find(const struct key_index *index, const void *array,
		      key_at_function key_at, const char *key);

/* ---- doc_scalar.c: scalar typing ---- */

struct scalar_value {
	enum doc_type type;
	bool boolean;
	long long integer;
	double real;
	bool unsigned_integer;   /* a float holding 2^63 .. 2^64-1, which go-yaml calls an integer */
};

enum tag_kind {
	TAG_NONE,
	TAG_STR,
	TAG_INT,
	TAG_FLOAT,
	TAG_BOOL,
	TAG_NULL,
	TAG_MAP,
	TAG_SEQ,
	TAG_MERGE,
	TAG_OTHER,
};

bool in_set(char c, const char *set);
/* Returns the value of a digit or letter in bases up to 36, or 99 for any other character. */
int digit_value(char c);
enum tag_kind classify_tag(const char *tag);
int resolve_plain(const char *text, size_t len, struct scalar_value *out);

/* ---- doc_scalar.c: Go-compatible float formatting ---- */

void format_json_float(double value, char *out, size_t size);
void format_key_float(double value, char *out, size_t size);

/* ---- doc_parse.c ---- */

struct doc_parser;

/* Copies src with its key. doc_clone() passes no parser, so no limit applies. */
int clone_tree(const struct doc_node *src, struct doc_parser *p, unsigned levels,
	       struct doc_node **out);

#endif
