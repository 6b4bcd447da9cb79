/*
 * The document tree: YAML and JSON read into one tree of nodes.
 *
 * JSON is read by the same parser, since JSON is YAML's flow style. Plain
 * scalars are typed as kubectl types them (YAML 1.1 through go-yaml v2):
 * true/false/yes/no/on/off/y/n in their usual capitalisations are booleans,
 * 0644 is octal (420), 0o700 and 0x1F and 0b101 are integers, ~ and null are
 * null. Quoted scalars and scalars tagged !!str are strings. Anchors and
 * aliases are expanded; merge keys (<<) are applied.
 *
 * Every node carries the line and column (1-based) where it starts, and map
 * members carry the position of their key, so errors can name them. Parsing
 * rejects duplicate keys (naming both lines), input larger than
 * limits->max_bytes, nesting deeper than limits->max_depth and more than
 * limits->max_nodes nodes (aliases count every time they expand).
 *
 * Ownership: a tree is freed with doc_free() on its root; every node belongs
 * to its parent. doc_map_set() and doc_seq_append() take ownership of the
 * value, also when they fail.
 */
#ifndef MLBOOT_COMMON_DOC_H
#define MLBOOT_COMMON_DOC_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"

enum doc_type {
	DOC_NULL,
	DOC_BOOL,
	DOC_INT,
	DOC_FLOAT,
	DOC_STRING,
	DOC_MAP,
	DOC_SEQ,
};

struct doc_node {
	enum doc_type type;
	unsigned line;
	unsigned column;
	/* Key of a map member, NUL-terminated; NULL for other nodes. */
	char *key;
	unsigned key_line;
	unsigned key_column;
	bool boolean;
	long long integer;
	double real;
	/*
	 * Scalar text: the value of a string, or the source text of a number,
	 * boolean or null. NUL-terminated; text_len allows NUL inside strings.
	 */
	char *text;
	size_t text_len;
	/* Members of a map (each with key) or items of a sequence, in order. */
	struct doc_node **items;
	size_t count;
	size_t capacity;
};

struct doc_limits {
	size_t max_bytes;
	unsigned max_depth;
	size_t max_nodes;
};

/* Limits used when a caller passes NULL: 64 MiB, depth 128, 4 million nodes. */
extern const struct doc_limits doc_default_limits;

/* A parse error: what failed and where (0 when not known). */
struct doc_error {
	char message[512];
	unsigned line;
	unsigned column;
};

/* Documents of a stream, in order; empty documents are left out. */
struct doc_stream {
	struct doc_node **docs;
	size_t count;
};

/*
 * Parses a stream of documents split on the parser's document events (so
 * "---" inside a block scalar is text), skipping empty documents and
 * expanding objects whose kind is List or ends in "List" and that have an
 * "items" sequence into their items. A byte order mark and CRLF line ends
 * are accepted. On failure returns MLB_EINPUT (or -ENOMEM) and fills err.
 */
int doc_parse_stream(const char *data, size_t len, const struct doc_limits *limits,
		     struct doc_stream *out, struct doc_error *err);
/* Parses exactly one document; an empty input gives a DOC_NULL root. */
int doc_parse(const char *data, size_t len, const struct doc_limits *limits,
	      struct doc_node **out, struct doc_error *err);
void doc_stream_release(struct doc_stream *stream);
void doc_free(struct doc_node *node);

/* Look-ups; each returns NULL when the node is not a map or has no such key. */
const struct doc_node *doc_get(const struct doc_node *map, const char *key);
struct doc_node *doc_get_mutable(struct doc_node *map, const char *key);
/* The string value of a member; NULL when missing or not a string. */
const char *doc_get_string(const struct doc_node *map, const char *key);
/* Follows a NULL-terminated list of keys: doc_find(obj, "metadata", "name", NULL). */
const struct doc_node *doc_find(const struct doc_node *node, ...);
/* The string at a NULL-terminated path of keys; NULL when any step is missing. */
const char *doc_find_string(const struct doc_node *node, ...);
/* Whether a node is a string equal to text. */
bool doc_string_equals(const struct doc_node *node, const char *text);

/* Builders; each returns NULL when out of memory. */
struct doc_node *doc_new(enum doc_type type);
struct doc_node *doc_new_string(const char *text);
struct doc_node *doc_new_int(long long value);
struct doc_node *doc_new_bool(bool value);
struct doc_node *doc_clone(const struct doc_node *node);
/* Sets key to value, replacing an existing member in place. */
int doc_map_set(struct doc_node *map, const char *key, struct doc_node *value);
int doc_map_set_string(struct doc_node *map, const char *key, const char *text);
/* Returns the map under key, creating an empty one when missing. */
struct doc_node *doc_map_ensure_map(struct doc_node *map, const char *key);
/* Removes and frees a member; returns whether it existed. */
bool doc_map_remove(struct doc_node *map, const char *key);
int doc_seq_append(struct doc_node *seq, struct doc_node *item);

/*
 * Writes compact JSON. Floats keep their source text when it is a valid
 * JSON number; infinities and NaN fail with MLB_EINPUT, as JSON has none.
 */
int doc_write_json(const struct doc_node *node, struct buf *out);
/* Appends text as a JSON string literal with quotes. */
int doc_write_json_string(struct buf *out, const char *text, size_t len);

#endif
