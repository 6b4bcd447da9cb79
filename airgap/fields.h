/*
 * Field readers shared by the strictly read YAML documents of the airgap
 * module: the catalog (catalog.c) and the bundle index (index.c). They
 * report each problem through the caller's function, so that each document
 * keeps its own message prefix.
 */
#ifndef MLBOOT_AIRGAP_FIELDS_H
#define MLBOOT_AIRGAP_FIELDS_H

#include <stdbool.h>
#include <stddef.h>

#include "doc.h"

/* A callback that records a problem in field at node, or in the whole document when node is NULL. */
struct field_reader {
	void (*report)(void *context, const struct doc_node *node, const char *field, const char *message);
	void *context;
};

/* Reports "unknown key 'KEY'" for each member of map that is not in the NULL-terminated list known. */
void field_check_keys(const struct field_reader *reader, const struct doc_node *map, const char *field,
		      const char *const *known);

/* Returns the member of map named key. Reports "missing 'KEY'" at map when there is none and required is true. */
const struct doc_node *field_get(const struct field_reader *reader, const struct doc_node *map, const char *field,
				 const char *key, bool required);

/*
 * Returns the member of map named key when it has the given type, and NULL
 * otherwise. Reports "missing 'KEY'" at map when the member is missing and
 * required, and "'KEY' must be TYPE_NAME" when it has another type.
 */
const struct doc_node *field_get_typed(const struct field_reader *reader, const struct doc_node *map,
				       const char *field, const char *key, enum doc_type type,
				       const char *type_name, bool required);

/* Returns whether list has at most max items. Reports "more than MAX NOUN" at list when it has more. */
bool field_check_count(const struct field_reader *reader, const struct doc_node *list, const char *field,
		       size_t max, const char *noun);

/* A walk over the items of a list whose items must be maps. */
struct field_walk {
	const struct field_reader *reader;
	const struct doc_node *list;
	const char *parent;          /* field of the map that contains the list; "" at the top level */
	const char *key;             /* the list's key in that map */
	const char *const *known;    /* the keys an item may have, NULL-terminated */
	const char *not_map;         /* the message for an item that is not a map */
	size_t next;                 /* position of the next item to read */
	size_t index;                /* position of the item last returned */
	char field[128];             /* "PARENT.KEY[INDEX]" or "KEY[INDEX]" of that item */
};

void field_walk_init(struct field_walk *walk, const struct field_reader *reader, const struct doc_node *list,
		     const char *parent, const char *key, const char *const *known, const char *not_map);

/*
 * Returns the next item that is a map, after checking its keys, and sets
 * walk->index and walk->field to its position and field. Reports each item
 * on the way that is not a map. Returns NULL after the last item.
 */
const struct doc_node *field_walk_next(struct field_walk *walk);

#endif
