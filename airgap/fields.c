/* Field readers of the catalog and the bundle index. fields.h states the contract. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "airgap-internal.h"
#include "fields.h"

/* Maximum size of one message. The longest is "unknown key '...'" with a key escaped to ESCAPED_NAME_MAX. */
#define FIELD_MESSAGE_MAX (ESCAPED_NAME_MAX + 64)

__attribute__((format(printf, 4, 5)))
static void field_report(const struct field_reader *reader, const struct doc_node *node, const char *field,
			 const char *format, ...)
{
	char message[FIELD_MESSAGE_MAX];
	va_list args;

	va_start(args, format);
	vsnprintf(message, sizeof(message), format, args);
	va_end(args);
	reader->report(reader->context, node, field, message);
}

void field_check_keys(const struct field_reader *reader, const struct doc_node *map, const char *field,
		      const char *const *known)
{
	for (size_t i = 0; i < map->count; i++) {
		size_t k;

		for (k = 0; known[k]; k++)
			if (strcmp(map->items[i]->key, known[k]) == 0)
				break;
		if (!known[k]) {
			struct escaped key;

			field_report(reader, map->items[i], field, "unknown key '%s'",
				     escape_name(&key, map->items[i]->key));
		}
	}
}

const struct doc_node *field_get(const struct field_reader *reader, const struct doc_node *map, const char *field,
				 const char *key, bool required)
{
	const struct doc_node *node = doc_get(map, key);

	if (!node && required)
		field_report(reader, map, field, "missing '%s'", key);
	return node;
}

const struct doc_node *field_get_typed(const struct field_reader *reader, const struct doc_node *map,
				       const char *field, const char *key, enum doc_type type,
				       const char *type_name, bool required)
{
	const struct doc_node *node = field_get(reader, map, field, key, required);

	if (!node)
		return NULL;
	if (node->type != type) {
		field_report(reader, node, field, "'%s' must be %s", key, type_name);
		return NULL;
	}
	return node;
}

bool field_check_count(const struct field_reader *reader, const struct doc_node *list, const char *field,
		       size_t max, const char *noun)
{
	if (list->count <= max)
		return true;
	field_report(reader, list, field, "more than %zu %s", max, noun);
	return false;
}

void field_walk_init(struct field_walk *walk, const struct field_reader *reader, const struct doc_node *list,
		     const char *parent, const char *key, const char *const *known, const char *not_map)
{
	*walk = (struct field_walk){
		.reader = reader, .list = list, .parent = parent, .key = key, .known = known, .not_map = not_map,
	};
}

const struct doc_node *field_walk_next(struct field_walk *walk)
{
	while (walk->next < walk->list->count) {
		const struct doc_node *item = walk->list->items[walk->next];

		walk->index = walk->next++;
		if (walk->parent[0])
			snprintf(walk->field, sizeof(walk->field), "%s.%s[%zu]", walk->parent, walk->key, walk->index);
		else
			snprintf(walk->field, sizeof(walk->field), "%s[%zu]", walk->key, walk->index);
		if (item->type != DOC_MAP) {
			field_report(walk->reader, item, walk->field, "%s", walk->not_map);
			continue;
		}
		field_check_keys(walk->reader, item, walk->field, walk->known);
		return item;
	}
	return NULL;
}
