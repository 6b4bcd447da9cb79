/*
 * The document parser, built from libyaml's event API. This file contains
 * the parser state, anchors and aliases, merge keys, the limits, positions
 * for libyaml's errors, JSON surrogate pairs, stream splitting with List
 * expansion and the parsing entry points.
 *
 * Scalars are typed by doc_scalar.c. Non-string keys become strings as
 * sigs.k8s.io/yaml converts them before it writes JSON.
 */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yaml.h>

#include "doc.h"
#include "doc_internal.h"
#include "error.h"

const struct doc_limits doc_default_limits = {
	.max_bytes = (size_t)64 << 20,
	.max_depth = 128,
	.max_nodes = 4000000,
};

/* Maps with more members than this get a hash index for duplicate checks. */
#define MAP_INDEX_THRESHOLD 16
/* Scalars and keys are quoted in messages up to this many bytes. */
#define MESSAGE_QUOTE_MAX 64

/* ---- parser state ---- */

struct merge_source {
	size_t position;                 /* explicit members before the merge key */
	const struct doc_node *source;   /* a map, or a sequence of maps */
	unsigned line;
	unsigned column;
};

/* A mapping or sequence whose end event has not arrived yet. */
struct parse_frame {
	struct doc_node *node;
	char *anchor;
	unsigned long anchor_serial;
	/* For a mapping: the key whose value comes next. */
	bool have_key;
	bool key_is_merge;
	char *key;
	unsigned key_line;
	unsigned key_column;
	struct key_index members;
	struct merge_source *merges;
	size_t merge_count;
	size_t merge_capacity;
};

struct anchor {
	char *name;
	struct doc_node *node;
	bool owned;                  /* a key scalar, which is not in the tree */
	unsigned long serial;
};

struct doc_parser {
	struct doc_limits limits;
	struct doc_error *err;
	const char *input;
	size_t input_len;
	yaml_parser_t yaml;
	size_t nodes;
	struct parse_frame *frames;
	unsigned depth;
	unsigned frame_capacity;
	struct anchor *anchors;
	size_t anchor_count;
	size_t anchor_capacity;
	struct key_index anchor_index;
	unsigned long anchor_serial;
	/* Merge values are not in the tree; they live until the document ends. */
	struct doc_node **retained;
	size_t retained_count;
	size_t retained_capacity;
	struct doc_node *root;
	bool single_document;        /* doc_parse(): a second document is an error */
	bool seen_document;
};

static unsigned mark_line(yaml_mark_t mark)
{
	return mark.line >= UINT_MAX ? UINT_MAX : (unsigned)mark.line + 1;
}

static unsigned mark_column(yaml_mark_t mark)
{
	return mark.column >= UINT_MAX ? UINT_MAX : (unsigned)mark.column + 1;
}

static int parse_fail(struct doc_parser *p, unsigned line, unsigned column, const char *format, ...)
	__attribute__((format(printf, 4, 5)));

static int parse_fail(struct doc_parser *p, unsigned line, unsigned column, const char *format, ...)
{
	va_list args;

	va_start(args, format);
	vsnprintf(p->err->message, sizeof(p->err->message), format, args);
	va_end(args);
	p->err->line = line;
	p->err->column = column;
	return MLB_EINPUT;
}

/* Writes text in double quotes for a message, escaped and shortened. */
static const char *quote_text(char *out, size_t size, const char *text, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	size_t n = 0;

	out[n++] = '"';
	for (size_t i = 0; i < len && n + 8 < size; i++) {
		unsigned char c = (unsigned char)text[i];

		/* Cut at the first character that starts past the maximum. */
		if (i >= MESSAGE_QUOTE_MAX && (c & 0xc0) != 0x80) {
			memcpy(out + n, "...", 3);
			n += 3;
			break;
		}
		if (c < 0x20 || c == 0x7f || c == '"' || c == '\\') {
			out[n++] = '\\';
			out[n++] = 'x';
			out[n++] = hex[c >> 4];
			out[n++] = hex[c & 15];
		} else {
			out[n++] = (char)c;
		}
	}
	out[n++] = '"';
	out[n] = '\0';
	return out;
}

/* Writes a tag for a message, in its short form for the core tags. */
static const char *tag_display(char *out, size_t size, const char *tag)
{
	size_t prefix_len = strlen(CORE_TAG_PREFIX);

	if (!tag)
		tag = "";
	if (strncmp(tag, CORE_TAG_PREFIX, prefix_len) == 0)
		snprintf(out, size, "!!%s", tag + prefix_len);
	else
		snprintf(out, size, "%s", tag);
	return out;
}

static int count_node(struct doc_parser *p, unsigned line, unsigned column)
{
	if (p->nodes >= p->limits.max_nodes)
		return parse_fail(p, line, column,
				  "input has more than %zu nodes at line %u, column %u",
				  p->limits.max_nodes, line, column);
	p->nodes++;
	return 0;
}

static struct parse_frame *top_frame(struct doc_parser *p)
{
	return p->depth ? &p->frames[p->depth - 1] : NULL;
}

static bool expecting_key(struct doc_parser *p)
{
	struct parse_frame *frame = top_frame(p);

	return frame && frame->node->type == DOC_MAP && !frame->have_key;
}

static void frame_release(struct parse_frame *frame)
{
	doc_free(frame->node);
	free(frame->anchor);
	free(frame->key);
	key_index_release(&frame->members);
	free(frame->merges);
	memset(frame, 0, sizeof(*frame));
}

/* ---- anchors ---- */

static const char *key_of_anchor(const void *array, size_t position)
{
	return ((const struct anchor *)array)[position].name;
}

static void anchors_release(struct doc_parser *p)
{
	for (size_t i = 0; i < p->anchor_count; i++) {
		free(p->anchors[i].name);
		if (p->anchors[i].owned)
			doc_free(p->anchors[i].node);
	}
	free(p->anchors);
	p->anchors = NULL;
	p->anchor_count = 0;
	p->anchor_capacity = 0;
	key_index_release(&p->anchor_index);
}

/* Records name for node. Takes ownership of name, and of node when owned is set. */
static int anchor_define(struct doc_parser *p, char *name, struct doc_node *node, bool owned,
			 unsigned long serial)
{
	size_t position = key_index_find(&p->anchor_index, p->anchors, key_of_anchor, name);
	struct anchor *entry;
	int r;

	if (position != SIZE_MAX) {
		/* A later anchor with the same name replaces the earlier one. */
		entry = &p->anchors[position];
		if (entry->owned)
			doc_free(entry->node);
		free(name);
		entry->node = node;
		entry->owned = owned;
		entry->serial = serial;
		return 0;
	}
	if (p->anchor_count == p->anchor_capacity) {
		size_t capacity = p->anchor_capacity ? p->anchor_capacity * 2 : 16;
		struct anchor *anchors = reallocarray(p->anchors, capacity, sizeof(*anchors));

		if (!anchors) {
			r = -ENOMEM;
			goto fail;
		}
		p->anchors = anchors;
		p->anchor_capacity = capacity;
	}
	p->anchors[p->anchor_count] = (struct anchor){ name, node, owned, serial };
	r = key_index_add(&p->anchor_index, p->anchors, key_of_anchor, p->anchor_count);
	if (r < 0) {
		p->anchors[p->anchor_count] = (struct anchor){ 0 };
		goto fail;
	}
	p->anchor_count++;
	return 0;
fail:
	free(name);
	if (owned)
		doc_free(node);
	return r;
}

/* Finds the node of an alias, rejecting aliases to unknown or enclosing nodes. */
static int anchor_resolve(struct doc_parser *p, const char *name, unsigned line, unsigned column,
			  const struct doc_node **out)
{
	size_t position = key_index_find(&p->anchor_index, p->anchors, key_of_anchor, name);
	unsigned long defined = position == SIZE_MAX ? 0 : p->anchors[position].serial;
	char quoted[MESSAGE_QUOTE_MAX * 4 + 8];

	quote_text(quoted, sizeof(quoted), name, strlen(name));
	for (unsigned i = 0; i < p->depth; i++) {
		if (p->frames[i].anchor && strcmp(p->frames[i].anchor, name) == 0 &&
		    p->frames[i].anchor_serial > defined)
			return parse_fail(p, line, column,
					  "alias %s at line %u, column %u refers to a node that contains it",
					  quoted, line, column);
	}
	if (position == SIZE_MAX)
		return parse_fail(p, line, column,
				  "alias %s at line %u, column %u refers to an anchor that is not defined before it in this document",
				  quoted, line, column);
	*out = p->anchors[position].node;
	return 0;
}

/* ---- copying with limits ---- */

/*
 * Copies src with its key. With a parser, each copied node counts against
 * its node limit, and levels is how deep the copy may nest collections.
 * Past either limit the copy fails with -E2BIG or -ELOOP, and the caller
 * writes the message.
 */
int clone_tree(const struct doc_node *src, struct doc_parser *p, unsigned levels,
	       struct doc_node **out)
{
	struct doc_node *copy;
	int r = -ENOMEM;

	*out = NULL;
	if (p) {
		if (p->nodes >= p->limits.max_nodes)
			return -E2BIG;
		if (is_collection(src) && levels == 0)
			return -ELOOP;
		p->nodes++;
	}
	copy = node_alloc(src->type);
	if (!copy)
		return -ENOMEM;
	copy->line = src->line;
	copy->column = src->column;
	copy->key_line = src->key_line;
	copy->key_column = src->key_column;
	copy->boolean = src->boolean;
	copy->integer = src->integer;
	copy->real = src->real;
	if (src->key && !(copy->key = strdup(src->key)))
		goto fail;
	if (src->text) {
		copy->text = copy_text(src->text, src->text_len);
		if (!copy->text)
			goto fail;
		copy->text_len = src->text_len;
	}
	if (src->count) {
		copy->items = calloc(src->count, sizeof(*copy->items));
		if (!copy->items)
			goto fail;
		copy->capacity = src->count;
		for (size_t i = 0; i < src->count; i++) {
			r = clone_tree(src->items[i], p, levels ? levels - 1 : 0, &copy->items[i]);
			if (r < 0)
				goto fail;
			copy->count++;
		}
	}
	*out = copy;
	return 0;
fail:
	doc_free(copy);
	return r;
}

static int clone_failure(struct doc_parser *p, int r, const char *what, unsigned line,
			 unsigned column)
{
	if (r == -E2BIG)
		return parse_fail(p, line, column,
				  "input has more than %zu nodes once %s at line %u, column %u is expanded; each use of an alias counts all its nodes again",
				  p->limits.max_nodes, what, line, column);
	if (r == -ELOOP)
		return parse_fail(p, line, column,
				  "%s at line %u, column %u expands to nesting deeper than the maximum of %u levels",
				  what, line, column, p->limits.max_depth);
	return r;
}

/* ---- map members ---- */

static size_t frame_find_member(struct parse_frame *frame, const char *key, int *result)
{
	struct doc_node *map = frame->node;

	*result = 0;
	if (map->count < MAP_INDEX_THRESHOLD) {
		for (size_t i = 0; i < map->count; i++)
			if (strcmp(map->items[i]->key, key) == 0)
				return i;
		return SIZE_MAX;
	}
	if (!frame->members.capacity) {
		for (size_t i = 0; i < map->count; i++) {
			*result = key_index_add(&frame->members, map->items, key_of_node, i);
			if (*result < 0) {
				key_index_release(&frame->members);
				return SIZE_MAX;
			}
		}
	}
	return key_index_find(&frame->members, map->items, key_of_node, key);
}

/* Stores the key of the next member and rejects a duplicate. Takes ownership of key. */
static int frame_set_key(struct doc_parser *p, char *key, size_t len, bool merge,
			 unsigned line, unsigned column)
{
	struct parse_frame *frame = top_frame(p);
	char quoted[MESSAGE_QUOTE_MAX * 4 + 8];
	size_t existing;
	int r;

	if (memchr(key, '\0', len)) {
		r = parse_fail(p, line, column,
			       "key %s at line %u, column %u contains a NUL character, which keys cannot contain",
			       quote_text(quoted, sizeof(quoted), key, len), line, column);
		free(key);
		return r;
	}
	if (!merge) {
		existing = frame_find_member(frame, key, &r);
		if (r < 0) {
			free(key);
			return r;
		}
		if (existing != SIZE_MAX) {
			r = parse_fail(p, line, column,
				       "duplicate key %s at line %u, first defined at line %u",
				       quote_text(quoted, sizeof(quoted), key, len), line,
				       frame->node->items[existing]->key_line);
			free(key);
			return r;
		}
	}
	frame->key = key;
	frame->have_key = true;
	frame->key_is_merge = merge;
	frame->key_line = line;
	frame->key_column = column;
	return 0;
}

/* Converts a typed scalar to a key as sigs.k8s.io/yaml does before writing JSON. */
static int key_from_scalar(struct doc_parser *p, const struct scalar_value *value,
			   const char *text, size_t len, unsigned line, unsigned column,
			   char **key, size_t *key_len)
{
	char number[48];

	switch (value->type) {
	case DOC_STRING:
		*key = copy_text(text, len);
		*key_len = len;
		return *key ? 0 : -ENOMEM;
	case DOC_INT:
		snprintf(number, sizeof(number), "%lld", value->integer);
		break;
	case DOC_FLOAT:
		format_key_float(value->real, number, sizeof(number));
		break;
	case DOC_BOOL:
		snprintf(number, sizeof(number), "%s", value->boolean ? "true" : "false");
		break;
	default:
		return parse_fail(p, line, column,
				  "key at line %u, column %u is null (empty, ~ or null); quote it to use it as a string",
				  line, column);
	}
	*key_len = strlen(number);
	*key = strdup(number);
	return *key ? 0 : -ENOMEM;
}

static int complex_key_failure(struct doc_parser *p, const char *what, unsigned line,
			       unsigned column)
{
	return parse_fail(p, line, column,
			  "%s used as a key at line %u, column %u is not supported; keys must be scalars",
			  what, line, column);
}

/* ---- merge keys ---- */

static int check_merge_source(struct doc_parser *p, const struct doc_node *source)
{
	struct parse_frame *frame = top_frame(p);
	bool valid = source->type == DOC_MAP;

	if (source->type == DOC_SEQ) {
		valid = true;
		for (size_t i = 0; i < source->count; i++)
			if (source->items[i]->type != DOC_MAP)
				valid = false;
	}
	if (!valid)
		return parse_fail(p, frame->key_line, frame->key_column,
				  "merge key \"<<\" at line %u, column %u needs a mapping or a sequence of mappings as its value",
				  frame->key_line, frame->key_column);
	return 0;
}

/* Records a merge into the map of the top frame. source must live until the document ends. */
static int frame_add_merge(struct doc_parser *p, const struct doc_node *source)
{
	struct parse_frame *frame = top_frame(p);
	int r = check_merge_source(p, source);

	if (r < 0)
		return r;
	if (frame->merge_count == frame->merge_capacity) {
		size_t capacity = frame->merge_capacity ? frame->merge_capacity * 2 : 4;
		struct merge_source *merges = reallocarray(frame->merges, capacity, sizeof(*merges));

		if (!merges)
			return -ENOMEM;
		frame->merges = merges;
		frame->merge_capacity = capacity;
	}
	frame->merges[frame->merge_count++] = (struct merge_source){
		frame->node->count, source, frame->key_line, frame->key_column,
	};
	free(frame->key);
	frame->key = NULL;
	frame->have_key = false;
	frame->key_is_merge = false;
	return 0;
}

struct merged_map {
	struct doc_node **items;
	size_t count;
	size_t capacity;
	size_t *merge_of;       /* which merge set each member, 0 for none */
	struct key_index index;
};

static int retain(struct doc_parser *p, struct doc_node *node);

/*
 * Sets member in the merged map. A member with the same key is replaced but
 * kept until the document ends, since an anchor or a later merge source may
 * point to it.
 */
static int merged_set(struct doc_parser *p, struct merged_map *merged, struct doc_node *member,
		      size_t merge)
{
	size_t position = key_index_find(&merged->index, merged->items, key_of_node, member->key);
	int r;

	if (position != SIZE_MAX) {
		r = retain(p, merged->items[position]);
		if (r < 0)
			return r;
		merged->items[position] = member;
		merged->merge_of[position] = merge;
		return 0;
	}
	if (merged->count == merged->capacity) {
		size_t capacity = merged->capacity ? merged->capacity * 2 : 16;
		struct doc_node **items = reallocarray(merged->items, capacity, sizeof(*items));
		size_t *merge_of;

		if (!items)
			return -ENOMEM;
		merged->items = items;
		merge_of = reallocarray(merged->merge_of, capacity, sizeof(*merge_of));
		if (!merge_of)
			return -ENOMEM;
		merged->merge_of = merge_of;
		merged->capacity = capacity;
	}
	merged->items[merged->count] = member;
	merged->merge_of[merged->count] = merge;
	r = key_index_add(&merged->index, merged->items, key_of_node, merged->count);
	if (r < 0)
		return r;
	merged->count++;
	return 0;
}

/*
 * Applies one "<<" as go-yaml v2 does: its members overwrite what the map
 * already has, and within a sequence of maps the first map that has a key
 * wins.
 */
static int merged_apply(struct doc_parser *p, struct merged_map *merged,
			const struct merge_source *merge, size_t merge_number)
{
	const struct doc_node *source = merge->source;
	size_t maps = source->type == DOC_SEQ ? source->count : 1;

	for (size_t m = 0; m < maps; m++) {
		const struct doc_node *map = source->type == DOC_SEQ ? source->items[m] : source;

		for (size_t i = 0; i < map->count; i++) {
			size_t position = key_index_find(&merged->index, merged->items, key_of_node,
							 map->items[i]->key);
			struct doc_node *copy;
			int r;

			if (position != SIZE_MAX && merged->merge_of[position] == merge_number)
				continue;
			r = clone_tree(map->items[i], p, p->limits.max_depth - p->depth, &copy);
			if (r < 0)
				return clone_failure(p, r, "merge key \"<<\"", merge->line, merge->column);
			r = merged_set(p, merged, copy, merge_number);
			if (r < 0) {
				doc_free(copy);
				return r;
			}
		}
	}
	return 0;
}

/* Rebuilds the map of the top frame with its merges applied in document order. */
static int frame_apply_merges(struct doc_parser *p)
{
	struct parse_frame *frame = top_frame(p);
	struct doc_node *map = frame->node;
	struct merged_map merged = { 0 };
	size_t next_merge = 0;
	int r = 0;

	for (size_t i = 0; i <= map->count && r == 0; i++) {
		while (r == 0 && next_merge < frame->merge_count &&
		       frame->merges[next_merge].position == i) {
			r = merged_apply(p, &merged, &frame->merges[next_merge], next_merge + 1);
			next_merge++;
		}
		if (r == 0 && i < map->count) {
			r = merged_set(p, &merged, map->items[i], 0);
			if (r == 0)
				map->items[i] = NULL;
		}
	}
	if (r < 0) {
		for (size_t i = 0; i < merged.count; i++)
			doc_free(merged.items[i]);
		free(merged.items);
		goto out;
	}
	for (size_t i = 0; i < map->count; i++)
		doc_free(map->items[i]);
	free(map->items);
	map->items = merged.items;
	map->count = merged.count;
	map->capacity = merged.capacity;
out:
	free(merged.merge_of);
	key_index_release(&merged.index);
	return r;
}

/* ---- building the tree ---- */

static int retain(struct doc_parser *p, struct doc_node *node)
{
	if (p->retained_count == p->retained_capacity) {
		size_t capacity = p->retained_capacity ? p->retained_capacity * 2 : 8;
		struct doc_node **retained = reallocarray(p->retained, capacity, sizeof(*retained));

		if (!retained)
			return -ENOMEM;
		p->retained = retained;
		p->retained_capacity = capacity;
	}
	p->retained[p->retained_count++] = node;
	return 0;
}

/* Adds a finished node to the open collection or makes it the root. Takes ownership of node. */
static int attach(struct doc_parser *p, struct doc_node *node)
{
	struct parse_frame *frame = top_frame(p);
	struct doc_node *parent;
	int r;

	if (!frame) {
		p->root = node;
		return 0;
	}
	parent = frame->node;
	if (parent->type == DOC_MAP && frame->key_is_merge) {
		r = retain(p, node);
		if (r < 0) {
			doc_free(node);
			return r;
		}
		return frame_add_merge(p, node);
	}
	r = node_reserve(parent, 1);
	if (r < 0) {
		doc_free(node);
		return r;
	}
	if (parent->type == DOC_MAP) {
		node->key = frame->key;
		node->key_line = frame->key_line;
		node->key_column = frame->key_column;
		frame->key = NULL;
		frame->have_key = false;
	}
	parent->items[parent->count++] = node;
	if (parent->type == DOC_MAP && frame->members.capacity)
		return key_index_add(&frame->members, parent->items, key_of_node, parent->count - 1);
	return 0;
}

static int scalar_value_check_tag(struct doc_parser *p, const yaml_event_t *event,
				  enum tag_kind tag, struct scalar_value *value)
{
	const char *text = (const char *)event->data.scalar.value;
	size_t len = event->data.scalar.length;
	unsigned line = mark_line(event->start_mark), column = mark_column(event->start_mark);
	char quoted[MESSAGE_QUOTE_MAX * 4 + 8], tag_text[80];
	bool match;

	switch (tag) {
	case TAG_INT:
		match = value->type == DOC_INT || value->unsigned_integer;
		break;
	case TAG_FLOAT:
		if (value->type == DOC_INT) {
			value->type = DOC_FLOAT;
			value->real = (double)value->integer;
		}
		match = value->type == DOC_FLOAT;
		break;
	case TAG_BOOL:
		match = value->type == DOC_BOOL;
		break;
	default:
		match = value->type == DOC_NULL;
		break;
	}
	if (!match)
		return parse_fail(p, line, column, "value %s at line %u, column %u is not a valid %s",
				  quote_text(quoted, sizeof(quoted), text, len), line, column,
				  tag_display(tag_text, sizeof(tag_text), (const char *)event->data.scalar.tag));
	return 0;
}

/* Types a scalar event by its tag and style. */
static int resolve_scalar(struct doc_parser *p, const yaml_event_t *event, struct scalar_value *value)
{
	const char *text = (const char *)event->data.scalar.value;
	size_t len = event->data.scalar.length;
	enum tag_kind tag = classify_tag((const char *)event->data.scalar.tag);
	unsigned line = mark_line(event->start_mark), column = mark_column(event->start_mark);
	char tag_text[80];
	int r;

	memset(value, 0, sizeof(*value));
	value->type = DOC_STRING;
	switch (tag) {
	case TAG_NONE:
		if (event->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
			return 0;
		return resolve_plain(text, len, value);
	case TAG_MAP:
	case TAG_SEQ:
		return parse_fail(p, line, column, "tag %s at line %u, column %u cannot apply to a scalar",
				  tag_display(tag_text, sizeof(tag_text),
					      (const char *)event->data.scalar.tag), line, column);
	case TAG_INT:
	case TAG_FLOAT:
	case TAG_BOOL:
	case TAG_NULL:
		r = resolve_plain(text, len, value);
		if (r < 0)
			return r;
		return scalar_value_check_tag(p, event, tag, value);
	default:
		return 0;
	}
}

static struct doc_node *scalar_node_new(const struct scalar_value *value, const char *text,
					size_t len, yaml_mark_t mark)
{
	struct doc_node *node = node_alloc(value->type);

	if (!node)
		return NULL;
	node->text = copy_text(text, len);
	if (!node->text) {
		free(node);
		return NULL;
	}
	node->text_len = len;
	node->boolean = value->boolean;
	node->integer = value->integer;
	node->real = value->real;
	node->line = mark_line(mark);
	node->column = mark_column(mark);
	return node;
}

static bool is_merge_key(const yaml_event_t *event, enum tag_kind tag)
{
	const char *text = (const char *)event->data.scalar.value;

	if (tag == TAG_MERGE)
		return true;
	return tag == TAG_NONE && event->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
	       event->data.scalar.length == 2 && text[0] == '<' && text[1] == '<';
}

static int on_key_scalar(struct doc_parser *p, const yaml_event_t *event,
			 const struct scalar_value *value)
{
	const char *text = (const char *)event->data.scalar.value;
	size_t len = event->data.scalar.length;
	unsigned line = mark_line(event->start_mark), column = mark_column(event->start_mark);
	bool merge = is_merge_key(event, classify_tag((const char *)event->data.scalar.tag));
	char *key;
	size_t key_len;
	int r;

	if (event->data.scalar.anchor) {
		struct doc_node *node;
		char *name;

		r = count_node(p, line, column);
		if (r < 0)
			return r;
		node = scalar_node_new(value, text, len, event->start_mark);
		name = strdup((const char *)event->data.scalar.anchor);
		if (!node || !name) {
			doc_free(node);
			free(name);
			return -ENOMEM;
		}
		r = anchor_define(p, name, node, true, ++p->anchor_serial);
		if (r < 0)
			return r;
	}
	if (merge) {
		key = strdup("<<");
		key_len = 2;
		if (!key)
			return -ENOMEM;
	} else {
		r = key_from_scalar(p, value, text, len, line, column, &key, &key_len);
		if (r < 0)
			return r;
	}
	return frame_set_key(p, key, key_len, merge, line, column);
}

static int on_scalar(struct doc_parser *p, const yaml_event_t *event)
{
	unsigned line = mark_line(event->start_mark), column = mark_column(event->start_mark);
	struct scalar_value value;
	struct doc_node *node;
	char *name = NULL;
	int r;

	r = resolve_scalar(p, event, &value);
	if (r < 0)
		return r;
	if (expecting_key(p))
		return on_key_scalar(p, event, &value);
	r = count_node(p, line, column);
	if (r < 0)
		return r;
	node = scalar_node_new(&value, (const char *)event->data.scalar.value,
			       event->data.scalar.length, event->start_mark);
	if (!node)
		return -ENOMEM;
	if (event->data.scalar.anchor) {
		name = strdup((const char *)event->data.scalar.anchor);
		if (!name) {
			doc_free(node);
			return -ENOMEM;
		}
	}
	r = attach(p, node);
	if (r < 0 || !name) {
		free(name);
		return r;
	}
	return anchor_define(p, name, node, false, ++p->anchor_serial);
}

static int key_from_node(struct doc_parser *p, const struct doc_node *node, unsigned line,
			 unsigned column, char **key, size_t *key_len)
{
	struct scalar_value value = {
		.type = node->type, .boolean = node->boolean,
		.integer = node->integer, .real = node->real,
	};

	return key_from_scalar(p, &value, node->text ? node->text : "", node->text_len,
			       line, column, key, key_len);
}

static int on_alias(struct doc_parser *p, const yaml_event_t *event)
{
	const char *name = (const char *)event->data.alias.anchor;
	unsigned line = mark_line(event->start_mark), column = mark_column(event->start_mark);
	struct parse_frame *frame = top_frame(p);
	const struct doc_node *target = NULL;
	struct doc_node *copy;
	char quoted[MESSAGE_QUOTE_MAX * 4 + 8], what[MESSAGE_QUOTE_MAX * 4 + 16];
	char *key;
	size_t key_len;
	int r;

	r = anchor_resolve(p, name, line, column, &target);
	if (r < 0)
		return r;
	if (expecting_key(p)) {
		if (is_collection(target))
			return complex_key_failure(p, target->type == DOC_MAP ? "a mapping" : "a sequence",
						   line, column);
		r = key_from_node(p, target, line, column, &key, &key_len);
		if (r < 0)
			return r;
		return frame_set_key(p, key, key_len, false, line, column);
	}
	/* A merge reads its source without changing it, so it needs no copy. */
	if (frame && frame->node->type == DOC_MAP && frame->key_is_merge)
		return frame_add_merge(p, target);

	snprintf(what, sizeof(what), "alias %s", quote_text(quoted, sizeof(quoted), name, strlen(name)));
	r = clone_tree(target, p, p->limits.max_depth - p->depth, &copy);
	if (r < 0)
		return clone_failure(p, r, what, line, column);
	free(copy->key);
	copy->key = NULL;
	copy->line = line;
	copy->column = column;
	return attach(p, copy);
}

static int check_collection_tag(struct doc_parser *p, const char *tag, enum doc_type type,
				unsigned line, unsigned column)
{
	enum tag_kind kind = classify_tag(tag);
	char tag_text[80];

	if (kind == TAG_NONE || kind == TAG_OTHER)
		return 0;
	if ((kind == TAG_MAP && type == DOC_MAP) || (kind == TAG_SEQ && type == DOC_SEQ))
		return 0;
	return parse_fail(p, line, column, "tag %s at line %u, column %u cannot apply to a %s",
			  tag_display(tag_text, sizeof(tag_text), tag), line, column,
			  type == DOC_MAP ? "mapping" : "sequence");
}

static int on_collection_start(struct doc_parser *p, const yaml_event_t *event)
{
	bool mapping = event->type == YAML_MAPPING_START_EVENT;
	enum doc_type type = mapping ? DOC_MAP : DOC_SEQ;
	const char *tag = (const char *)(mapping ? event->data.mapping_start.tag :
					  event->data.sequence_start.tag);
	const char *anchor = (const char *)(mapping ? event->data.mapping_start.anchor :
					     event->data.sequence_start.anchor);
	unsigned line = mark_line(event->start_mark), column = mark_column(event->start_mark);
	struct parse_frame *frame;
	int r;

	if (expecting_key(p))
		return complex_key_failure(p, mapping ? "a mapping" : "a sequence", line, column);
	r = check_collection_tag(p, tag, type, line, column);
	if (r < 0)
		return r;
	if (p->depth >= p->limits.max_depth)
		return parse_fail(p, line, column,
				  "nesting at line %u, column %u is deeper than the maximum of %u levels",
				  line, column, p->limits.max_depth);
	r = count_node(p, line, column);
	if (r < 0)
		return r;
	if (p->depth == p->frame_capacity) {
		unsigned capacity = p->frame_capacity ? p->frame_capacity * 2 : 16;
		struct parse_frame *frames = reallocarray(p->frames, capacity, sizeof(*frames));

		if (!frames)
			return -ENOMEM;
		p->frames = frames;
		p->frame_capacity = capacity;
	}
	frame = &p->frames[p->depth];
	memset(frame, 0, sizeof(*frame));
	frame->node = node_alloc(type);
	if (!frame->node)
		return -ENOMEM;
	frame->node->line = line;
	frame->node->column = column;
	if (anchor) {
		frame->anchor = strdup(anchor);
		if (!frame->anchor) {
			frame_release(frame);
			return -ENOMEM;
		}
		frame->anchor_serial = ++p->anchor_serial;
	}
	p->depth++;
	return 0;
}

static int on_collection_end(struct doc_parser *p)
{
	struct parse_frame *frame = top_frame(p);
	struct doc_node *node;
	char *anchor;
	unsigned long serial;
	int r;

	if (frame->merge_count) {
		r = frame_apply_merges(p);
		if (r < 0)
			return r;
	}
	node = frame->node;
	anchor = frame->anchor;
	serial = frame->anchor_serial;
	frame->node = NULL;
	frame->anchor = NULL;
	frame_release(frame);
	p->depth--;

	r = attach(p, node);
	if (r < 0 || !anchor) {
		free(anchor);
		return r;
	}
	return anchor_define(p, anchor, node, false, serial);
}

/* ---- documents ---- */

/* Frees the frames, anchors and retained nodes of one document, and its root when free_root is set. */
static void document_reset(struct doc_parser *p, bool free_root)
{
	while (p->depth)
		frame_release(&p->frames[--p->depth]);
	anchors_release(p);
	for (size_t i = 0; i < p->retained_count; i++)
		doc_free(p->retained[i]);
	p->retained_count = 0;
	if (free_root)
		doc_free(p->root);
	p->root = NULL;
}

/* Called with each document's root; takes ownership of it. */
typedef int (*document_function)(struct doc_parser *p, struct doc_node *root, void *context);

static int handle_event(struct doc_parser *p, const yaml_event_t *event,
			document_function on_document, void *context)
{
	struct doc_node *root;

	switch (event->type) {
	case YAML_DOCUMENT_START_EVENT:
		if (p->single_document && p->seen_document)
			return parse_fail(p, mark_line(event->start_mark), mark_column(event->start_mark),
					  "expected one document, but another one starts at line %u",
					  mark_line(event->start_mark));
		p->seen_document = true;
		return 0;
	case YAML_DOCUMENT_END_EVENT:
		root = p->root;
		p->root = NULL;
		document_reset(p, true);
		return on_document(p, root, context);
	case YAML_SCALAR_EVENT:
		return on_scalar(p, event);
	case YAML_ALIAS_EVENT:
		return on_alias(p, event);
	case YAML_SEQUENCE_START_EVENT:
	case YAML_MAPPING_START_EVENT:
		return on_collection_start(p, event);
	case YAML_SEQUENCE_END_EVENT:
	case YAML_MAPPING_END_EVENT:
		return on_collection_end(p);
	default:
		return 0;
	}
}

/* ---- positions in the input, for libyaml's errors ---- */

/* Returns the length of the line break at text, or 0. libyaml also breaks lines at NEL, LS and PS. */
static size_t line_break_length(const unsigned char *text, size_t left)
{
	if (text[0] == '\r')
		return left > 1 && text[1] == '\n' ? 2 : 1;
	if (text[0] == '\n')
		return 1;
	if (left > 1 && text[0] == 0xc2 && text[1] == 0x85)
		return 2;
	if (left > 2 && text[0] == 0xe2 && text[1] == 0x80 && (text[2] == 0xa8 || text[2] == 0xa9))
		return 3;
	return 0;
}

static size_t utf8_length(unsigned char lead)
{
	if (lead >= 0xf0)
		return 4;
	if (lead >= 0xe0)
		return 3;
	if (lead >= 0xc0)
		return 2;
	return 1;
}

/* Steps over one character or line break and returns whether it was a line break. */
static bool step_character(const unsigned char *text, size_t len, size_t *i)
{
	size_t step = line_break_length(text + *i, len - *i);
	bool line_break = step != 0;

	if (!step)
		step = utf8_length(text[*i]);
	*i += step > len - *i ? len - *i : step;
	return line_break;
}

static size_t skip_byte_order_mark(const char *input, size_t len)
{
	return len >= 3 && memcmp(input, "\xef\xbb\xbf", 3) == 0 ? 3 : 0;
}

/* Returns the byte offset of a libyaml mark: a 0-based line and a column in characters. */
static size_t offset_of_mark(const char *input, size_t len, size_t line, size_t column)
{
	const unsigned char *text = (const unsigned char *)input;
	size_t i = skip_byte_order_mark(input, len), at_line = 0, at_column = 0;

	while (i < len && (at_line != line || at_column != column)) {
		if (step_character(text, len, &i)) {
			at_line++;
			at_column = 0;
		} else {
			at_column++;
		}
	}
	return i;
}

/* Finds the 1-based line and column of a byte offset, counting as libyaml does. */
static void position_of_offset(const char *input, size_t len, size_t offset, unsigned *line,
			       unsigned *column)
{
	const unsigned char *text = (const unsigned char *)input;
	size_t i = skip_byte_order_mark(input, len);

	*line = 1;
	*column = 1;
	while (i < len && i < offset) {
		if (step_character(text, len, &i)) {
			(*line)++;
			*column = 1;
		} else {
			(*column)++;
		}
	}
}

static int reader_failure(struct doc_parser *p)
{
	const yaml_parser_t *yaml = &p->yaml;
	const char *problem = yaml->problem ? yaml->problem : "unreadable input";
	unsigned line, column;

	position_of_offset(p->input, p->input_len, yaml->problem_offset, &line, &column);
	if (strcmp(problem, "control characters are not allowed") == 0)
		return parse_fail(p, line, column,
				  "control character U+%04X at line %u, column %u is not allowed in YAML or JSON text",
				  (unsigned)yaml->problem_value, line, column);
	if (yaml->problem_value >= 0)
		return parse_fail(p, line, column,
				  "invalid UTF-8 at line %u, column %u (byte offset %zu): %s 0x%02x; the input must be UTF-8 text",
				  line, column, yaml->problem_offset, problem,
				  (unsigned)yaml->problem_value);
	return parse_fail(p, line, column,
			  "invalid UTF-8 at line %u, column %u (byte offset %zu): %s; the input must be UTF-8 text",
			  line, column, yaml->problem_offset, problem);
}

/* Turns libyaml's problem, context and marks into one message with positions. */
static int libyaml_failure(struct doc_parser *p)
{
	const yaml_parser_t *yaml = &p->yaml;
	const char *problem = yaml->problem ? yaml->problem : "unknown error";
	unsigned line = mark_line(yaml->problem_mark), column = mark_column(yaml->problem_mark);
	char context[200] = "";
	const char *hint = "";
	size_t offset;

	if (yaml->error == YAML_MEMORY_ERROR)
		return -ENOMEM;
	if (yaml->error == YAML_READER_ERROR)
		return reader_failure(p);
	offset = offset_of_mark(p->input, p->input_len, yaml->problem_mark.line,
				yaml->problem_mark.column);
	if (offset < p->input_len && p->input[offset] == '\t')
		hint = "; YAML does not allow tabs for indentation, use spaces";
	if (yaml->context && (yaml->context_mark.line != yaml->problem_mark.line ||
			      yaml->context_mark.column != yaml->problem_mark.column))
		snprintf(context, sizeof(context), " (%s that starts at line %u, column %u)",
			 yaml->context, mark_line(yaml->context_mark),
			 mark_column(yaml->context_mark));
	else if (yaml->context)
		snprintf(context, sizeof(context), " (%s)", yaml->context);
	return parse_fail(p, line, column, "syntax error at line %u, column %u: %s%s%s",
			  line, column, problem, context, hint);
}

/* ---- JSON surrogate pairs ---- */

static bool read_hex4(const char *text, unsigned *value)
{
	*value = 0;
	for (int i = 0; i < 4; i++) {
		int digit = digit_value(text[i]);

		if (digit > 15)
			return false;
		*value = *value * 16 + (unsigned)digit;
	}
	return true;
}

static bool has_surrogate_escape(const char *data, size_t len)
{
	for (const char *p = data; (p = memchr(p, '\\', len - (size_t)(p - data))); p++) {
		size_t left = len - (size_t)(p - data);

		if (left >= 4 && p[1] == 'u' && (p[2] | 0x20) == 'd' && in_set(p[3], "89abcdefABCDEF"))
			return true;
	}
	return false;
}

/*
 * Copies the body of a JSON string that starts after its opening quote,
 * rewriting surrogate escapes: a pair becomes one \UXXXXXXXX escape and a
 * lone one becomes \uFFFD, as Go's encoding/json reads it. Returns the
 * offset of the closing quote, or 0 when there is none, and the bytes
 * saved, which the caller writes as spaces after the quote.
 */
static size_t copy_json_string(const char *data, size_t len, size_t i, char *out, size_t *saved)
{
	unsigned high, low;

	*saved = 0;
	while (i < len && data[i] != '"') {
		if (data[i] != '\\') {
			out[i - *saved] = data[i];
			i++;
			continue;
		}
		if (i + 1 >= len)
			return 0;
		if (data[i + 1] == 'u' && i + 6 <= len && read_hex4(data + i + 2, &high) &&
		    high >= 0xd800 && high <= 0xdfff) {
			char *to = out + i - *saved;

			if (high <= 0xdbff && i + 12 <= len && data[i + 6] == '\\' && data[i + 7] == 'u' &&
			    read_hex4(data + i + 8, &low) && low >= 0xdc00 && low <= 0xdfff) {
				unsigned code = 0x10000 + ((high - 0xd800) << 10) + (low - 0xdc00);
				char escape[11];

				snprintf(escape, sizeof(escape), "\\U%08X", code);
				memcpy(to, escape, 10);
				i += 12;
				*saved += 2;
			} else {
				memcpy(to, "\\uFFFD", 6);
				i += 6;
			}
			continue;
		}
		out[i - *saved] = data[i];
		out[i + 1 - *saved] = data[i + 1];
		i += 2;
	}
	return i < len ? i : 0;
}

/*
 * libyaml rejects \uD800-\uDFFF escapes, but JSON writes characters past
 * U+FFFF as such pairs. When the whole input lexes as JSON, this returns a
 * copy with the pairs rewritten to YAML's \U escape. The copy has the same
 * length, since the bytes saved become spaces after the string, so lines
 * and columns outside the rewritten strings stay as they were. *out is
 * NULL when the input has no such escape or does not lex as JSON.
 * NOTE: YAML that is not strict JSON, such as a flow mapping with a
 * single-quoted key, still fails on these escapes.
 */
static int rewrite_json_surrogates(const char *data, size_t len, char **out)
{
	char *copy;
	char previous = '\0';
	size_t i = 0;

	*out = NULL;
	if (!has_surrogate_escape(data, len))
		return 0;
	copy = malloc(len + 1);
	if (!copy)
		return -ENOMEM;
	i = skip_byte_order_mark(data, len);
	memcpy(copy, data, i);
	while (i < len) {
		char c = data[i];
		size_t end, saved;

		if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
			copy[i++] = c;
			continue;
		}
		if (previous == '\0' && c != '{' && c != '[')
			goto not_json;
		if (previous == '"' && !in_set(c, ",:]}"))
			goto not_json;
		if (c == '"') {
			if (!in_set(previous, "{[,:"))
				goto not_json;
			copy[i] = '"';
			end = copy_json_string(data, len, i + 1, copy, &saved);
			if (!end)
				goto not_json;
			copy[end - saved] = '"';
			memset(copy + end - saved + 1, ' ', saved);
			i = end + 1;
			previous = '"';
			continue;
		}
		if (!in_set(c, "{}[],:0123456789+-.eEtrufalsn"))
			goto not_json;
		copy[i++] = c;
		previous = c;
	}
	copy[len] = '\0';
	*out = copy;
	return 0;
not_json:
	free(copy);
	return 0;
}

/* ---- parsing entry points ---- */

static void limits_fill(struct doc_limits *limits, const struct doc_limits *requested)
{
	*limits = doc_default_limits;
	if (!requested)
		return;
	/* A zero field keeps the default, so callers can set only what they need. */
	if (requested->max_bytes)
		limits->max_bytes = requested->max_bytes;
	if (requested->max_depth)
		limits->max_depth = requested->max_depth;
	if (requested->max_nodes)
		limits->max_nodes = requested->max_nodes;
}

static int parse_run(const char *data, size_t len, const struct doc_limits *limits,
		     struct doc_error *err, bool single_document, document_function on_document,
		     void *context)
{
	struct doc_error unused;
	struct doc_parser p = { 0 };
	char *rewritten = NULL;
	int r;

	if (!err)
		err = &unused;
	memset(err, 0, sizeof(*err));
	if (!data && len)
		return -EINVAL;
	limits_fill(&p.limits, limits);
	p.err = err;
	p.single_document = single_document;
	if (len > p.limits.max_bytes)
		return parse_fail(&p, 0, 0, "input is %zu bytes, more than the maximum of %zu bytes",
				  len, p.limits.max_bytes);
	r = rewrite_json_surrogates(data ? data : "", len, &rewritten);
	if (r < 0)
		return r;
	p.input = data ? data : "";
	if (rewritten)
		p.input = rewritten;
	p.input_len = len;
	if (!yaml_parser_initialize(&p.yaml)) {
		free(rewritten);
		return -ENOMEM;
	}
	yaml_parser_set_input_string(&p.yaml, (const unsigned char *)p.input, len);
	for (;;) {
		yaml_event_t event;
		yaml_event_type_t type;

		if (!yaml_parser_parse(&p.yaml, &event)) {
			r = libyaml_failure(&p);
			break;
		}
		type = event.type;
		r = handle_event(&p, &event, on_document, context);
		yaml_event_delete(&event);
		if (r < 0 || type == YAML_STREAM_END_EVENT)
			break;
	}
	document_reset(&p, true);
	free(p.frames);
	free(p.retained);
	yaml_parser_delete(&p.yaml);
	free(rewritten);
	return r;
}

static int take_single_document(struct doc_parser *p, struct doc_node *root, void *context)
{
	(void)p;
	*(struct doc_node **)context = root;
	return 0;
}

int doc_parse(const char *data, size_t len, const struct doc_limits *limits,
	      struct doc_node **out, struct doc_error *err)
{
	struct doc_node *root = NULL;
	int r;

	*out = NULL;
	r = parse_run(data, len, limits, err, true, take_single_document, &root);
	if (r < 0) {
		doc_free(root);
		return r;
	}
	if (!root) {
		/* An input without a document, such as one made of comments. */
		root = doc_new(DOC_NULL);
		if (!root)
			return -ENOMEM;
		root->line = 1;
		root->column = 1;
	}
	*out = root;
	return 0;
}

struct stream_builder {
	struct doc_stream *stream;
	size_t capacity;
};

static int stream_push(struct stream_builder *builder, struct doc_node *doc)
{
	struct doc_stream *stream = builder->stream;

	if (stream->count == builder->capacity) {
		size_t capacity = builder->capacity ? builder->capacity * 2 : 16;
		struct doc_node **docs = reallocarray(stream->docs, capacity, sizeof(*docs));

		if (!docs) {
			doc_free(doc);
			return -ENOMEM;
		}
		stream->docs = docs;
		builder->capacity = capacity;
	}
	stream->docs[stream->count++] = doc;
	return 0;
}

/*
 * Whether doc is a List: a kind ending in "List" and items that are a
 * sequence or null. NOTE: kubectl's unstructured decoder treats any object
 * with an "items" member as a list, whatever its kind.
 */
static bool is_list(const struct doc_node *doc)
{
	const char *kind = doc_get_string(doc, "kind");
	const struct doc_node *items = doc_get(doc, "items");
	size_t len;

	if (!kind || !items || (items->type != DOC_SEQ && items->type != DOC_NULL))
		return false;
	len = strlen(kind);
	return len >= 4 && strcmp(kind + len - 4, "List") == 0;
}

/*
 * Sets kind and apiVersion on an item that has neither: the kind is the
 * list's kind without "List", and the apiVersion is the list's. kubectl's
 * unstructured decoder does the same, because the API server writes the
 * items of typed lists such as ConfigMapList without them.
 */
static int list_item_inherit(const struct doc_node *list, struct doc_node *item)
{
	const struct doc_node *kind = doc_get(list, "kind");
	const char *api_version = doc_get_string(list, "apiVersion");
	struct doc_node *member;
	int r;

	if (doc_get(item, "kind") || doc_get(item, "apiVersion") || kind->text_len <= 4)
		return 0;
	member = doc_new_string(kind->text);
	if (member) {
		member->text[kind->text_len - 4] = '\0';
		member->text_len = kind->text_len - 4;
		member->line = kind->line;
		member->column = kind->column;
	}
	r = doc_map_set(item, "kind", member);
	if (r < 0 || !api_version)
		return r;
	return doc_map_set_string(item, "apiVersion", api_version);
}

/* Adds a document to the stream, or the items of a List in its place. Takes ownership of doc. */
static int stream_add(struct doc_parser *p, struct stream_builder *builder, struct doc_node *doc)
{
	struct doc_node *items;
	int r = 0;

	if (doc->type == DOC_NULL) {
		doc_free(doc);
		return 0;
	}
	if (doc->type != DOC_MAP || !is_list(doc))
		return stream_push(builder, doc);

	items = doc_get_mutable(doc, "items");
	for (size_t i = 0; i < items->count && r == 0; i++) {
		struct doc_node *item = items->items[i];

		if (item->type != DOC_MAP) {
			r = parse_fail(p, item->line, item->column,
				       "item %zu of the %s at line %u is not a mapping (line %u, column %u)",
				       i + 1, doc_get_string(doc, "kind"), doc->line, item->line,
				       item->column);
			break;
		}
		r = list_item_inherit(doc, item);
		if (r < 0)
			break;
		items->items[i] = NULL;
		r = stream_add(p, builder, item);
	}
	doc_free(doc);
	return r;
}

static int take_stream_document(struct doc_parser *p, struct doc_node *root, void *context)
{
	if (!root)
		return 0;
	return stream_add(p, context, root);
}

int doc_parse_stream(const char *data, size_t len, const struct doc_limits *limits,
		     struct doc_stream *out, struct doc_error *err)
{
	struct stream_builder builder = { out, 0 };
	int r;

	out->docs = NULL;
	out->count = 0;
	r = parse_run(data, len, limits, err, false, take_stream_document, &builder);
	if (r < 0)
		doc_stream_release(out);
	return r;
}

void doc_stream_release(struct doc_stream *stream)
{
	if (!stream)
		return;
	for (size_t i = 0; i < stream->count; i++)
		doc_free(stream->docs[i]);
	free(stream->docs);
	stream->docs = NULL;
	stream->count = 0;
}
