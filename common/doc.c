/*
 * The document tree: nodes, the string-keyed hash index that the parser
 * uses for map members and anchors, look-ups and builders.
 *
 * The rest of the tree is in doc_scalar.c (scalar typing and Go-compatible
 * float formatting), doc_parse.c (the parser) and doc_json.c (the JSON
 * writer). doc_internal.h declares what these files share.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "doc.h"
#include "doc_internal.h"

/* ---- nodes ---- */

struct doc_node *node_alloc(enum doc_type type)
{
	struct doc_node *node = calloc(1, sizeof(*node));

	if (node)
		node->type = type;
	return node;
}

char *copy_text(const char *text, size_t len)
{
	char *copy;

	if (len == SIZE_MAX)
		return NULL;
	copy = malloc(len + 1);
	if (!copy)
		return NULL;
	if (len)
		memcpy(copy, text, len);
	copy[len] = '\0';
	return copy;
}

void doc_free(struct doc_node *node)
{
	if (!node)
		return;
	for (size_t i = 0; i < node->count; i++)
		doc_free(node->items[i]);
	free(node->items);
	free(node->key);
	free(node->text);
	free(node);
}

int node_reserve(struct doc_node *node, size_t extra)
{
	struct doc_node **items;
	size_t needed, capacity;

	if (extra > SIZE_MAX / sizeof(*items) - node->count)
		return -ENOMEM;
	needed = node->count + extra;
	if (needed <= node->capacity)
		return 0;
	capacity = node->capacity ? node->capacity : 4;
	while (capacity < needed)
		capacity = capacity > SIZE_MAX / sizeof(*items) / 2 ? needed : capacity * 2;
	items = realloc(node->items, capacity * sizeof(*items));
	if (!items)
		return -ENOMEM;
	node->items = items;
	node->capacity = capacity;
	return 0;
}

bool is_collection(const struct doc_node *node)
{
	return node->type == DOC_MAP || node->type == DOC_SEQ;
}

/* ---- a string-keyed hash index over an array ---- */

const char *key_of_node(const void *array, size_t position)
{
	return ((struct doc_node *const *)array)[position]->key;
}

static size_t hash_text(const char *text)
{
	uint64_t hash = 14695981039346656037ULL;

	for (const unsigned char *p = (const unsigned char *)text; *p; p++) {
		hash ^= *p;
		hash *= 1099511628211ULL;
	}
	return (size_t)(hash ^ (hash >> 32));
}

void key_index_release(struct key_index *index)
{
	free(index->slots);
	index->slots = NULL;
	index->capacity = 0;
	index->count = 0;
}

static void key_index_place(size_t *slots, size_t capacity, size_t hash, size_t position)
{
	size_t slot = hash & (capacity - 1);

	while (slots[slot])
		slot = (slot + 1) & (capacity - 1);
	slots[slot] = position + 1;
}

int key_index_add(struct key_index *index, const void *array, key_at_function key_at,
		  size_t position)
{
	if ((index->count + 1) * 2 > index->capacity) {
		size_t capacity = index->capacity ? index->capacity * 2 : 64;
		size_t *slots;

		if (capacity > SIZE_MAX / sizeof(*slots) || capacity < index->capacity)
			return -ENOMEM;
		slots = calloc(capacity, sizeof(*slots));
		if (!slots)
			return -ENOMEM;
		for (size_t i = 0; i < index->capacity; i++) {
			size_t old = index->slots[i];

			if (old)
				key_index_place(slots, capacity, hash_text(key_at(array, old - 1)), old - 1);
		}
		free(index->slots);
		index->slots = slots;
		index->capacity = capacity;
	}
	key_index_place(index->slots, index->capacity, hash_text(key_at(array, position)), position);
	index->count++;
	return 0;
}

/* Returns the position of key, or SIZE_MAX when it is not in the index. */
size_t key_index_find(const struct key_index *index, const void *array,
		      key_at_function key_at, const char *key)
{
	size_t slot;

	if (!index->capacity)
		return SIZE_MAX;
	slot = hash_text(key) & (index->capacity - 1);
	while (index->slots[slot]) {
		size_t position = index->slots[slot] - 1;

		if (strcmp(key_at(array, position), key) == 0)
			return position;
		slot = (slot + 1) & (index->capacity - 1);
	}
	return SIZE_MAX;
}

/* ---- look-ups ---- */

struct doc_node *doc_get_mutable(struct doc_node *map, const char *key)
{
	if (!map || map->type != DOC_MAP || !key)
		return NULL;
	for (size_t i = 0; i < map->count; i++)
		if (map->items[i] && map->items[i]->key && strcmp(map->items[i]->key, key) == 0)
			return map->items[i];
	return NULL;
}

const struct doc_node *doc_get(const struct doc_node *map, const char *key)
{
	return doc_get_mutable((struct doc_node *)map, key);
}

const char *doc_get_string(const struct doc_node *map, const char *key)
{
	const struct doc_node *node = doc_get(map, key);

	return node && node->type == DOC_STRING ? node->text : NULL;
}

static const struct doc_node *find_path(const struct doc_node *node, va_list args)
{
	const char *key;

	while (node && (key = va_arg(args, const char *)))
		node = doc_get(node, key);
	return node;
}

const struct doc_node *doc_find(const struct doc_node *node, ...)
{
	va_list args;

	va_start(args, node);
	node = find_path(node, args);
	va_end(args);
	return node;
}

const char *doc_find_string(const struct doc_node *node, ...)
{
	va_list args;

	va_start(args, node);
	node = find_path(node, args);
	va_end(args);
	return node && node->type == DOC_STRING ? node->text : NULL;
}

bool doc_string_equals(const struct doc_node *node, const char *text)
{
	size_t len;

	if (!node || node->type != DOC_STRING || !node->text || !text)
		return false;
	len = strlen(text);
	return node->text_len == len && memcmp(node->text, text, len) == 0;
}

/* ---- builders ---- */

/* Sets the text of a built scalar: its canonical spelling. */
static int builder_set_text(struct doc_node *node, const char *text)
{
	node->text = strdup(text);
	if (!node->text)
		return -ENOMEM;
	node->text_len = strlen(text);
	return 0;
}

struct doc_node *doc_new(enum doc_type type)
{
	static const char *const spelling[] = {
		[DOC_NULL] = "null", [DOC_BOOL] = "false", [DOC_INT] = "0",
		[DOC_FLOAT] = "0", [DOC_STRING] = "",
	};
	struct doc_node *node;

	if (type > DOC_SEQ)
		return NULL;
	node = node_alloc(type);
	if (!node)
		return NULL;
	if (type <= DOC_STRING && builder_set_text(node, spelling[type]) < 0) {
		free(node);
		return NULL;
	}
	return node;
}

struct doc_node *doc_new_string(const char *text)
{
	struct doc_node *node = node_alloc(DOC_STRING);

	if (!node)
		return NULL;
	if (builder_set_text(node, text ? text : "") < 0) {
		free(node);
		return NULL;
	}
	return node;
}

struct doc_node *doc_new_int(long long value)
{
	struct doc_node *node = node_alloc(DOC_INT);
	char text[24];

	if (!node)
		return NULL;
	node->integer = value;
	snprintf(text, sizeof(text), "%lld", value);
	if (builder_set_text(node, text) < 0) {
		free(node);
		return NULL;
	}
	return node;
}

struct doc_node *doc_new_bool(bool value)
{
	struct doc_node *node = node_alloc(DOC_BOOL);

	if (!node)
		return NULL;
	node->boolean = value;
	if (builder_set_text(node, value ? "true" : "false") < 0) {
		free(node);
		return NULL;
	}
	return node;
}

struct doc_node *doc_clone(const struct doc_node *node)
{
	struct doc_node *copy;

	if (!node)
		return NULL;
	return clone_tree(node, NULL, 0, &copy) < 0 ? NULL : copy;
}

int doc_map_set(struct doc_node *map, const char *key, struct doc_node *value)
{
	struct doc_node *existing;
	char *key_copy;
	int r;

	if (!value)
		return -ENOMEM;
	if (!map || map->type != DOC_MAP || !key) {
		doc_free(value);
		return -EINVAL;
	}
	key_copy = strdup(key);
	if (!key_copy) {
		doc_free(value);
		return -ENOMEM;
	}
	free(value->key);
	value->key = key_copy;
	for (size_t i = 0; i < map->count; i++) {
		existing = map->items[i];
		if (strcmp(existing->key, key) != 0)
			continue;
		value->key_line = existing->key_line;
		value->key_column = existing->key_column;
		doc_free(existing);
		map->items[i] = value;
		return 0;
	}
	r = node_reserve(map, 1);
	if (r < 0) {
		doc_free(value);
		return r;
	}
	map->items[map->count++] = value;
	return 0;
}

int doc_map_set_string(struct doc_node *map, const char *key, const char *text)
{
	return doc_map_set(map, key, doc_new_string(text));
}

struct doc_node *doc_map_ensure_map(struct doc_node *map, const char *key)
{
	struct doc_node *existing = doc_get_mutable(map, key);
	struct doc_node *created;

	if (existing)
		return existing->type == DOC_MAP ? existing : NULL;
	created = doc_new(DOC_MAP);
	if (doc_map_set(map, key, created) < 0)
		return NULL;
	return created;
}

bool doc_map_remove(struct doc_node *map, const char *key)
{
	if (!map || map->type != DOC_MAP || !key)
		return false;
	for (size_t i = 0; i < map->count; i++) {
		if (strcmp(map->items[i]->key, key) != 0)
			continue;
		doc_free(map->items[i]);
		memmove(&map->items[i], &map->items[i + 1], (map->count - i - 1) * sizeof(*map->items));
		map->count--;
		return true;
	}
	return false;
}

int doc_seq_append(struct doc_node *seq, struct doc_node *item)
{
	int r;

	if (!item)
		return -ENOMEM;
	if (!seq || seq->type != DOC_SEQ) {
		doc_free(item);
		return -EINVAL;
	}
	r = node_reserve(seq, 1);
	if (r < 0) {
		doc_free(item);
		return r;
	}
	free(item->key);
	item->key = NULL;
	item->key_line = 0;
	item->key_column = 0;
	seq->items[seq->count++] = item;
	return 0;
}
