#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common.h"
#include "config.h"

/* Longest field path, and the most characters of a value shown in a message. */
#define FIELD_MAX 256
#define SHOWN_VALUE_MAX 64
/* Room for a quoted value: each shown byte may take 4 characters (\xNN). */
#define SHOWN_MAX (SHOWN_VALUE_MAX * 4 + 8)
/* Private keys and known_hosts files are read only this far to check their form. */
#define KEY_FILE_MAX (64 * 1024)

struct loader {
	const char *file;
	struct config *config;
	struct config_problems *problems;
	int error;               /* -ENOMEM once memory ran out */
	bool role_invalid;       /* a host's role was reported: "no control plane" would mislead */
};

static const struct doc_limits config_doc_limits = {
	.max_bytes = CONFIG_MAX_BYTES,
	.max_depth = 32,
	.max_nodes = 200000,
};

/* Problems */

void config_problems_release(struct config_problems *problems)
{
	if (!problems)
		return;
	for (size_t i = 0; i < problems->count; i++) {
		free(problems->items[i].field);
		free(problems->items[i].message);
	}
	free(problems->items);
	memset(problems, 0, sizeof(*problems));
}

char *config_problem_format(const struct config_problem *problem, const char *file)
{
	struct buf out = BUF_INIT(8192);
	int r;

	r = buf_append_str(&out, file);
	if (r == 0 && problem->line > 0)
		r = buf_printf(&out, ":%u:%u", problem->line, problem->column);
	if (r == 0)
		r = buf_append_str(&out, ": ");
	if (r == 0 && problem->field && problem->field[0])
		r = buf_printf(&out, "%s: ", problem->field);
	if (r == 0)
		r = buf_append_str(&out, problem->message);
	if (r < 0) {
		buf_release(&out);
		return NULL;
	}
	return buf_steal(&out);
}

void config_problems_log(const struct config_problems *problems, const char *file)
{
	for (size_t i = 0; i < problems->count; i++) {
		char *line = config_problem_format(&problems->items[i], file);

		if (line)
			log_error("%s", line);
		else
			log_error("%s: %s", file, problems->items[i].message);
		free(line);
	}
	if (problems->dropped > 0)
		log_error("%s: %zu more problems not shown", file, problems->dropped);
}

static int problems_vadd(struct config_problems *problems, unsigned line, unsigned column, const char *field,
			 const char *format, va_list args)
{
	struct config_problem *problem;
	int n;

	if (problems->count >= CONFIG_MAX_PROBLEMS) {
		problems->dropped++;
		return 0;
	}
	if (problems->count == problems->capacity) {
		size_t capacity = problems->capacity ? problems->capacity * 2 : 16;
		struct config_problem *items = realloc(problems->items, capacity * sizeof(*items));

		if (!items)
			return -ENOMEM;
		problems->items = items;
		problems->capacity = capacity;
	}
	problem = &problems->items[problems->count];
	memset(problem, 0, sizeof(*problem));
	problem->line = line;
	problem->column = column;
	problem->field = strdup(field ? field : "");
	n = vasprintf(&problem->message, format, args);
	if (!problem->field || n < 0) {
		free(problem->field);
		if (n >= 0)
			free(problem->message);
		return -ENOMEM;
	}
	problems->count++;
	return 0;
}

int config_problems_add(struct config_problems *problems, struct config_position position, const char *field,
			const char *format, ...)
{
	va_list args;
	int r;

	va_start(args, format);
	r = problems_vadd(problems, position.line, position.column, field, format, args);
	va_end(args);
	return r;
}

static void problem_add(struct loader *l, unsigned line, unsigned column, const char *field,
			const char *format, ...) __attribute__((format(printf, 5, 6)));

static void problem_add(struct loader *l, unsigned line, unsigned column, const char *field,
			const char *format, ...)
{
	va_list args;
	int r;

	va_start(args, format);
	r = problems_vadd(l->problems, line, column, field, format, args);
	va_end(args);
	if (r < 0)
		l->error = r;
}

/* Problems at a value and at a map member's key. */
#define problem_at(l, node, field, ...) \
	problem_add((l), (node)->line, (node)->column, (field), __VA_ARGS__)
#define problem_at_key(l, node, field, ...) \
	problem_add((l), (node)->key_line, (node)->key_column, (field), __VA_ARGS__)

static int problem_compare(const void *a, const void *b)
{
	const struct config_problem *x = a, *y = b;

	if (x->line != y->line)
		return x->line < y->line ? -1 : 1;
	if (x->column != y->column)
		return x->column < y->column ? -1 : 1;
	return 0;
}

/*
 * Sorts problems by position with insertion sort, which keeps problems at
 * one position in the order they were found (qsort would not). At most
 * CONFIG_MAX_PROBLEMS items make it cheap.
 */
static void problems_sort(struct config_problems *problems)
{
	for (size_t i = 1; i < problems->count; i++) {
		struct config_problem item = problems->items[i];
		size_t j = i;

		while (j > 0 && problem_compare(&problems->items[j - 1], &item) > 0) {
			problems->items[j] = problems->items[j - 1];
			j--;
		}
		problems->items[j] = item;
	}
}

/* Text helpers */

/*
 * Writes text in double quotes with control characters, quotes, backslashes
 * and bytes above 0x7e escaped, cut after SHOWN_VALUE_MAX characters.
 */
static void quote_text(char *out, size_t size, const char *text, size_t len)
{
	size_t n = 0, shown = 0;

	out[n++] = '"';
	for (size_t i = 0; i < len && n + 8 < size; i++) {
		unsigned char c = (unsigned char)text[i];

		if (shown == SHOWN_VALUE_MAX) {
			memcpy(out + n, "...", 3);
			n += 3;
			break;
		}
		if (c == '"' || c == '\\') {
			out[n++] = '\\';
			out[n++] = (char)c;
		} else if (c < 0x20 || c > 0x7e) {
			n += (size_t)snprintf(out + n, size - n, "\\x%02x", c);
		} else {
			out[n++] = (char)c;
		}
		shown++;
	}
	out[n++] = '"';
	out[n] = '\0';
}

/* Copies remote text with control bytes and bytes above 0x7e escaped, cut to fit size. */
static void escape_into(char *out, size_t size, const char *text, size_t len)
{
	size_t n = 0;

	for (size_t i = 0; i < len && n + 5 < size; i++) {
		unsigned char c = (unsigned char)text[i];

		if (c == '\\' || c == '"') {
			out[n++] = '\\';
			out[n++] = (char)c;
		} else if (c < 0x20 || c > 0x7e) {
			n += (size_t)snprintf(out + n, size - n, "\\x%02x", c);
		} else {
			out[n++] = (char)c;
		}
	}
	out[n] = '\0';
}

/* Quotes a scalar's text, or names the type of a map or list. */
static void quote_node(char *out, size_t size, const struct doc_node *node)
{
	if (node->text)
		quote_text(out, size, node->text, node->text_len);
	else
		snprintf(out, size, "%s", node->type == DOC_MAP ? "a map" : "a list");
}

static const char *type_name(const struct doc_node *node)
{
	switch (node->type) {
	case DOC_NULL:
		return "null";
	case DOC_BOOL:
		return "a boolean";
	case DOC_INT:
		return "an integer";
	case DOC_FLOAT:
		return "a number";
	case DOC_STRING:
		return "a string";
	case DOC_MAP:
		return "a map";
	case DOC_SEQ:
		return "a list";
	}
	return "an unknown type";
}

/* Writes "parent.key". A path longer than size is cut, which only shortens messages. */
static void field_join(char *out, size_t size, const char *parent, const char *key)
{
	int n;

	if (parent[0])
		n = snprintf(out, size, "%s.%s", parent, key);
	else
		n = snprintf(out, size, "%s", key);
	if (n < 0)
		out[0] = '\0';
}

static char *text_dup(struct loader *l, const char *text)
{
	char *copy;

	if (!text)
		return NULL;
	copy = strdup(text);
	if (!copy)
		l->error = -ENOMEM;
	return copy;
}

static bool is_lower_alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static bool is_alnum(char c)
{
	return is_lower_alnum(c) || (c >= 'A' && c <= 'Z');
}

/* A DNS-1123 label: 1 to 63 lowercase letters, digits and '-', alphanumeric at both ends. */
static bool dns_label_valid(const char *text, size_t len)
{
	if (len == 0 || len > 63)
		return false;
	if (!is_lower_alnum(text[0]) || !is_lower_alnum(text[len - 1]))
		return false;
	for (size_t i = 0; i < len; i++)
		if (!is_lower_alnum(text[i]) && text[i] != '-')
			return false;
	return true;
}

/*
 * Checks a whole string with dns_label_valid(). Strings from get_string()
 * contain no NUL byte, so strlen() is their full length.
 */
static bool dns_label_string_valid(const char *text)
{
	return dns_label_valid(text, strlen(text));
}

/* A DNS-1123 subdomain: labels joined by '.', at most 253 characters. */
static bool dns_subdomain_valid(const char *text)
{
	size_t len = strlen(text);
	const char *label = text;

	if (len == 0 || len > 253)
		return false;
	for (const char *p = text;; p++) {
		if (*p == '.' || *p == '\0') {
			if (!dns_label_valid(label, (size_t)(p - label)))
				return false;
			if (*p == '\0')
				return true;
			label = p + 1;
		}
	}
}

/* A host name as DNS allows it (letters of either case) or an IP address. */
static bool address_valid(const char *text)
{
	unsigned char binary[sizeof(struct in6_addr)];
	size_t len = strlen(text);
	const char *label = text;

	if (inet_pton(AF_INET, text, binary) == 1 || inet_pton(AF_INET6, text, binary) == 1)
		return true;
	if (len == 0 || len > 253)
		return false;
	for (const char *p = text;; p++) {
		if (*p == '.' || *p == '\0') {
			size_t n = (size_t)(p - label);

			if (n == 0 || n > 63 || label[0] == '-' || label[n - 1] == '-')
				return false;
			for (size_t i = 0; i < n; i++)
				if (!is_alnum(label[i]) && label[i] != '-')
					return false;
			if (*p == '\0')
				return true;
			label = p + 1;
		}
	}
}

/* An address in one spelling per host: IP addresses canonical, names lowercase. */
static void address_normalize(const char *address, char *out, size_t size)
{
	unsigned char binary[sizeof(struct in6_addr)];

	if (inet_pton(AF_INET, address, binary) == 1 && inet_ntop(AF_INET, binary, out, (socklen_t)size))
		return;
	if (inet_pton(AF_INET6, address, binary) == 1 && inet_ntop(AF_INET6, binary, out, (socklen_t)size))
		return;
	snprintf(out, size, "%s", address);
	for (char *p = out; *p; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
}

/* A POSIX user name as useradd accepts it: letters, digits, '_', '.', '-', an optional final '$'. */
static bool user_name_valid(const char *text)
{
	size_t len = strlen(text);

	if (len == 0 || len > 32)
		return false;
	if (!(is_alnum(text[0]) || text[0] == '_'))
		return false;
	for (size_t i = 1; i < len; i++) {
		char c = text[i];

		if (c == '$' && i == len - 1)
			break;
		if (!is_alnum(c) && c != '_' && c != '.' && c != '-')
			return false;
	}
	return true;
}

static bool variable_name_valid(const char *text)
{
	if (!(text[0] == '_' || (is_alnum(text[0]) && !(text[0] >= '0' && text[0] <= '9'))))
		return false;
	for (const char *p = text; *p; p++)
		if (!is_alnum(*p) && *p != '_')
			return false;
	return strlen(text) <= 255;
}

/*
 * Optimal string alignment distance, ignoring case, so that "prot" and
 * "keypath" are one step or less from "port" and "keyPath". Names longer
 * than 31 characters are never close.
 */
static unsigned edit_distance(const char *a, const char *b)
{
	unsigned d[33][33];
	size_t n = strlen(a), m = strlen(b);

	if (n > 31 || m > 31)
		return UINT_MAX;
	for (size_t i = 0; i <= n; i++)
		d[i][0] = (unsigned)i;
	for (size_t j = 0; j <= m; j++)
		d[0][j] = (unsigned)j;
	for (size_t i = 1; i <= n; i++) {
		for (size_t j = 1; j <= m; j++) {
			unsigned cost = tolower((unsigned char)a[i - 1]) != tolower((unsigned char)b[j - 1]);
			unsigned best = d[i - 1][j] + 1;

			if (d[i][j - 1] + 1 < best)
				best = d[i][j - 1] + 1;
			if (d[i - 1][j - 1] + cost < best)
				best = d[i - 1][j - 1] + cost;
			if (i > 1 && j > 1 &&
			    tolower((unsigned char)a[i - 1]) == tolower((unsigned char)b[j - 2]) &&
			    tolower((unsigned char)a[i - 2]) == tolower((unsigned char)b[j - 1]) &&
			    d[i - 2][j - 2] + 1 < best)
				best = d[i - 2][j - 2] + 1;
			d[i][j] = best;
		}
	}
	return d[n][m];
}

/* The allowed name nearest to key, when it is near enough to be a misspelling. */
static const char *nearest_name(const char *key, const char *const *allowed)
{
	const char *best = NULL;
	unsigned best_distance = UINT_MAX;

	for (size_t i = 0; allowed[i]; i++) {
		unsigned distance = edit_distance(key, allowed[i]);
		size_t len = strlen(allowed[i]);
		unsigned limit = 3;

		if (len <= 4)
			limit = 1;
		else if (len <= 8)
			limit = 2;

		if (distance <= limit && distance < best_distance) {
			best = allowed[i];
			best_distance = distance;
		}
	}
	return best;
}

/* Fields and values */

/* Reports every member of map whose key is not in allowed (NULL-terminated). */
static void check_keys(struct loader *l, const struct doc_node *map, const char *parent,
		       const char *const *allowed)
{
	for (size_t i = 0; i < map->count; i++) {
		const struct doc_node *member = map->items[i];
		char field[FIELD_MAX], shown[SHOWN_MAX];
		const char *suggestion;
		bool known = false;

		for (size_t j = 0; allowed[j] && !known; j++)
			known = strcmp(member->key, allowed[j]) == 0;
		if (known)
			continue;

		field_join(field, sizeof(field), parent, member->key);
		quote_text(shown, sizeof(shown), member->key, strlen(member->key));
		suggestion = nearest_name(member->key, allowed);
		if (suggestion) {
			problem_at_key(l, member, field, "unknown field %s: did you mean \"%s\"?",
				       shown, suggestion);
		} else {
			struct buf names = BUF_INIT(1024);

			for (size_t j = 0; allowed[j]; j++)
				buf_printf(&names, "%s%s", j ? ", " : "", allowed[j]);
			problem_at_key(l, member, field, "unknown field %s: expected one of %s",
				       shown, buf_str(&names));
			buf_release(&names);
		}
	}
}

/* The member named key, or NULL when it is missing or null. */
static const struct doc_node *member_get(const struct doc_node *map, const char *key)
{
	const struct doc_node *node = doc_get(map, key);

	return node && node->type != DOC_NULL ? node : NULL;
}

/*
 * Reports a missing field, unless the map has a misspelling of it. Then the
 * unknown-field problem with its "did you mean" already gives the fix.
 */
static void problem_missing(struct loader *l, const struct doc_node *map, const char *parent,
			    const char *key, const char *hint)
{
	const char *const wanted[] = { key, NULL };
	char field[FIELD_MAX];

	for (size_t i = 0; i < map->count; i++)
		if (strcmp(map->items[i]->key, key) != 0 && nearest_name(map->items[i]->key, wanted))
			return;
	field_join(field, sizeof(field), parent, key);
	problem_at(l, map, field, "missing required field \"%s\"%s%s", key, hint ? ": " : "",
		   hint ? hint : "");
}

static void problem_type(struct loader *l, const struct doc_node *node, const char *field,
			 const char *expected)
{
	if (node->type != DOC_STRING && node->text && strcmp(expected, "a string") == 0) {
		char shown[SHOWN_MAX];

		quote_node(shown, sizeof(shown), node);
		problem_at(l, node, field, "expected a string, got %s %s: put the value in quotes",
			   type_name(node), shown);
		return;
	}
	problem_at(l, node, field, "expected %s, got %s", expected, type_name(node));
}

enum {
	STRING_OPTIONAL = 0,
	STRING_REQUIRED = 1 << 0,
	STRING_EMPTY_OK = 1 << 1,
};

/*
 * The string member named key, or NULL when it is missing (a problem when
 * STRING_REQUIRED) or invalid (always a problem): not a string, empty, or
 * with a control character or NUL in it.
 */
static const struct doc_node *get_string(struct loader *l, const struct doc_node *map,
					 const char *parent, const char *key, unsigned flags)
{
	const struct doc_node *node = member_get(map, key);
	char field[FIELD_MAX];

	field_join(field, sizeof(field), parent, key);
	if (!node) {
		if (flags & STRING_REQUIRED)
			problem_missing(l, map, parent, key, NULL);
		return NULL;
	}
	if (node->type != DOC_STRING) {
		problem_type(l, node, field, "a string");
		return NULL;
	}
	if (node->text_len == 0 && !(flags & STRING_EMPTY_OK)) {
		problem_at(l, node, field, "must not be empty");
		return NULL;
	}
	for (size_t i = 0; i < node->text_len; i++) {
		unsigned char c = (unsigned char)node->text[i];

		if (c < 0x20 || c == 0x7f) {
			char shown[SHOWN_MAX];

			quote_node(shown, sizeof(shown), node);
			problem_at(l, node, field, "invalid value %s: control characters are not allowed",
				   shown);
			return NULL;
		}
	}
	return node;
}

/*
 * Returns the member named key when it has the given type. Returns NULL when
 * it is missing or null, and when it has another type, which is reported as
 * a problem naming expected.
 */
static const struct doc_node *get_typed(struct loader *l, const struct doc_node *map,
					const char *parent, const char *key, enum doc_type type,
					const char *expected)
{
	const struct doc_node *node = member_get(map, key);
	char field[FIELD_MAX];

	if (!node)
		return NULL;
	if (node->type != type) {
		field_join(field, sizeof(field), parent, key);
		problem_type(l, node, field, expected);
		return NULL;
	}
	return node;
}

/* The boolean member named key; *value is left alone when it is missing or invalid. */
static const struct doc_node *get_bool(struct loader *l, const struct doc_node *map,
				       const char *parent, const char *key, bool *value)
{
	const struct doc_node *node = get_typed(l, map, parent, key, DOC_BOOL, "a boolean (true or false)");

	if (node)
		*value = node->boolean;
	return node;
}

/* Whether text is an optional sign and decimal digits only, such as a quoted "22". */
static bool text_is_integer(const char *text)
{
	const char *p = text[0] == '-' || text[0] == '+' ? text + 1 : text;

	if (!*p)
		return false;
	for (; *p; p++)
		if (*p < '0' || *p > '9')
			return false;
	return true;
}

/* The integer member named key within [min, max]; what names the value in messages. */
static const struct doc_node *get_int(struct loader *l, const struct doc_node *map,
				      const char *parent, const char *key, long long min,
				      long long max, const char *what, long long *value)
{
	const struct doc_node *node = member_get(map, key);
	char field[FIELD_MAX], shown[SHOWN_MAX];

	if (!node)
		return NULL;
	field_join(field, sizeof(field), parent, key);
	quote_node(shown, sizeof(shown), node);
	if (node->type != DOC_INT) {
		if (node->type == DOC_STRING && text_is_integer(node->text))
			problem_at(l, node, field,
				   "invalid %s %s: expected a whole number from %lld to %lld, got a string: remove the quotes",
				   what, shown, min, max);
		else if (node->type == DOC_STRING || node->type == DOC_FLOAT)
			problem_at(l, node, field, "invalid %s %s: expected a whole number from %lld to %lld",
				   what, shown, min, max);
		else
			problem_type(l, node, field, "an integer");
		return NULL;
	}
	if (node->integer < min || node->integer > max) {
		problem_at(l, node, field, "invalid %s %s: use %lld-%lld", what, shown, min, max);
		return NULL;
	}
	*value = node->integer;
	return node;
}

/* The map member named key; NULL when it is missing, null or not a map (a problem). */
static const struct doc_node *get_map(struct loader *l, const struct doc_node *map,
				      const char *parent, const char *key)
{
	return get_typed(l, map, parent, key, DOC_MAP, "a map");
}

/*
 * Reads the string member named key (flags as for get_string()) and returns
 * a copy when valid() accepts it. Returns a copy of fallback (which may be
 * NULL) when the member is missing or not a usable string. Returns NULL for
 * a value that valid() rejects, reported as "invalid WHAT \"VALUE\": HINT".
 */
static char *load_valid_string(struct loader *l, const struct doc_node *map, const char *parent,
			       const char *key, unsigned flags, bool (*valid)(const char *text),
			       const char *what, const char *hint, const char *fallback)
{
	const struct doc_node *node = get_string(l, map, parent, key, flags);
	char field[FIELD_MAX], shown[SHOWN_MAX];

	if (!node)
		return text_dup(l, fallback);
	if (!valid(node->text)) {
		field_join(field, sizeof(field), parent, key);
		quote_node(shown, sizeof(shown), node);
		problem_at(l, node, field, "invalid %s %s: %s", what, shown, hint);
		return NULL;
	}
	return text_dup(l, node->text);
}

/*
 * Returns the top-level map named key after checking its keys against
 * known. Returns NULL when the map is missing (reported with hint), null or
 * not a map.
 */
static const struct doc_node *get_section(struct loader *l, const struct doc_node *root, const char *key,
					  const char *const *known, const char *hint)
{
	const struct doc_node *section;

	if (!member_get(root, key)) {
		problem_missing(l, root, "", key, hint);
		return NULL;
	}
	section = get_map(l, root, "", key);
	if (section)
		check_keys(l, section, key, known);
	return section;
}

/* Paths and files */

/*
 * Finds the first $NAME or ${NAME} in path that the environment does not
 * set, with the same reading of names as file_expand_path(). Returns 1 and
 * the name, 0 when every variable is set, or -EINVAL for "${" without a
 * valid name and "}".
 */
static int path_find_unset_variable(const char *path, char *name, size_t size)
{
	for (const char *p = path; *p; p++) {
		bool braced;
		size_t n = 0;

		if (*p != '$')
			continue;
		braced = p[1] == '{';
		if (!braced && !(p[1] == '_' || (is_alnum(p[1]) && !(p[1] >= '0' && p[1] <= '9'))))
			continue;
		p += braced ? 2 : 1;
		while (*p && (is_alnum(*p) || *p == '_')) {
			if (n + 1 < size)
				name[n++] = *p;
			p++;
		}
		name[n] = '\0';
		if (braced && (*p != '}' || n == 0))
			return -EINVAL;
		if (!getenv(name))
			return 1;
		if (!braced)
			p--;
	}
	return 0;
}

/*
 * Expands "~/" and variables in a path and makes a relative path relative
 * to the folder of mlboot.yaml (or, with absolute_only, rejects it).
 * Returns the new path, or NULL after reporting a problem.
 */
static char *expand_path(struct loader *l, const struct doc_node *node, const char *field,
			 bool absolute_only)
{
	char shown[SHOWN_MAX], name[256];
	char *expanded = NULL, *resolved = NULL;
	int r;

	quote_node(shown, sizeof(shown), node);
	if (node->text[0] == '~' && node->text[1] != '/' && node->text[1] != '\0') {
		problem_at(l, node, field, "invalid path %s: only \"~/\" is expanded, not \"~user\"; write the full path",
			   shown);
		return NULL;
	}
	r = path_find_unset_variable(node->text, name, sizeof(name));
	if (r == -EINVAL) {
		problem_at(l, node, field, "invalid path %s: a variable must be written $NAME or ${NAME}",
			   shown);
		return NULL;
	}
	if (r == 1) {
		problem_at(l, node, field, "invalid path %s: environment variable \"%s\" is not set",
			   shown, name);
		return NULL;
	}

	r = file_expand_path(node->text, &expanded);
	if (r == -ENOMEM) {
		l->error = r;
		return NULL;
	}
	if (r == -ENOENT) {
		problem_at(l, node, field, "invalid path %s: the home folder is not known: set HOME",
			   shown);
		return NULL;
	}
	if (r < 0) {
		problem_at(l, node, field, "invalid path %s: %s", shown, mlb_strerror(r));
		return NULL;
	}
	if (expanded[0] == '\0') {
		problem_at(l, node, field, "invalid path %s: it expands to an empty path", shown);
		free(expanded);
		return NULL;
	}
	if (expanded[0] == '/')
		return expanded;
	if (absolute_only) {
		problem_at(l, node, field, "invalid path %s: use an absolute path", shown);
		free(expanded);
		return NULL;
	}
	r = file_resolve_relative(l->file, expanded, &resolved);
	free(expanded);
	if (r < 0) {
		if (r == -ENOMEM)
			l->error = r;
		else
			problem_at(l, node, field, "invalid path %s: %s", shown, mlb_strerror(r));
		return NULL;
	}
	return resolved;
}

/*
 * Opens a file that must be a regular file, without blocking on a FIFO.
 * Returns the descriptor, or -1 after reporting a problem about what (a
 * noun such as "key file").
 */
static int open_regular_file(struct loader *l, const struct doc_node *node, const char *field,
			     const char *what, const char *path, struct stat *st)
{
	char shown[PATH_MAX + 32];
	int fd;

	quote_text(shown, sizeof(shown), path, strlen(path));
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0) {
		problem_at(l, node, field, "cannot read %s %s: %s", what, shown, strerror(errno));
		return -1;
	}
	if (fstat(fd, st) < 0 || !S_ISREG(st->st_mode)) {
		problem_at(l, node, field, "invalid %s %s: not a regular file", what, shown);
		close(fd);
		return -1;
	}
	return fd;
}

/* Reads up to max bytes of fd into out. */
static int read_head(int fd, size_t max, struct buf *out)
{
	char chunk[4096];

	while (out->len < max) {
		size_t want = max - out->len < sizeof(chunk) ? max - out->len : sizeof(chunk);
		ssize_t n = read(fd, chunk, want);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			break;
		if (buf_append(out, chunk, (size_t)n) < 0)
			return -ENOMEM;
	}
	return 0;
}

/*
 * Checks a private key file as OpenSSH would before using it: readable,
 * a regular file, no permission for group or others, and a private key
 * rather than a public key or a PuTTY file.
 */
static void check_private_key(struct loader *l, const struct doc_node *node, const char *field,
			      const char *path)
{
	struct buf head = BUF_INIT(KEY_FILE_MAX);
	char shown[PATH_MAX + 32];
	const char *text;
	struct stat st;
	int fd, r;

	fd = open_regular_file(l, node, field, "key file", path, &st);
	if (fd < 0)
		return;
	quote_text(shown, sizeof(shown), path, strlen(path));
	if (st.st_mode & 077) {
		problem_at(l, node, field,
			   "key file %s is accessible by group or others (mode %04o): run chmod 600 %s",
			   shown, (unsigned)(st.st_mode & 07777), path);
		goto out;
	}
	r = read_head(fd, KEY_FILE_MAX, &head);
	if (r < 0) {
		if (r == -ENOMEM)
			l->error = r;
		else
			problem_at(l, node, field, "cannot read key file %s: %s", shown, strerror(-r));
		goto out;
	}
	text = buf_str(&head);
	text += strspn(text, " \t\r\n");
	if (strncmp(text, "ssh-", 4) == 0 || strncmp(text, "ecdsa-", 6) == 0 ||
	    strncmp(text, "sk-", 3) == 0) {
		problem_at(l, node, field,
			   "key file %s is a public key: give the private key (usually the same name without .pub)",
			   shown);
	} else if (strncmp(text, "PuTTY-User-Key-File", 19) == 0) {
		problem_at(l, node, field,
			   "key file %s is in PuTTY format: convert it with puttygen KEY -O private-openssh",
			   shown);
	} else if (strncmp(text, "-----BEGIN ", 11) != 0 || !strstr(text, "PRIVATE KEY-----")) {
		problem_at(l, node, field,
			   "key file %s is not a private key: expected an OpenSSH or PEM private key",
			   shown);
	}
out:
	buf_release_secret(&head);
	close(fd);
}

/* Checks a known_hosts file: readable, and not writable by group or others. */
static void check_known_hosts(struct loader *l, const struct doc_node *node, const char *field,
			      const char *path)
{
	char shown[PATH_MAX + 32];
	struct stat st;
	int fd;

	fd = open_regular_file(l, node, field, "known_hosts file", path, &st);
	if (fd < 0)
		return;
	if (st.st_mode & 022) {
		quote_text(shown, sizeof(shown), path, strlen(path));
		problem_at(l, node, field,
			   "known_hosts file %s is writable by group or others (mode %04o): run chmod 644 %s",
			   shown, (unsigned)(st.st_mode & 07777), path);
	}
	close(fd);
}

static void check_readable(struct loader *l, const struct doc_node *node, const char *field,
			   const char *what, const char *path)
{
	struct stat st;
	int fd = open_regular_file(l, node, field, what, path, &st);

	if (fd >= 0)
		close(fd);
}

/* Formats */

int config_parse_duration(const char *text, unsigned *seconds)
{
	static const struct {
		char unit;
		unsigned long long seconds;
	} units[] = { { 'h', 3600 }, { 'm', 60 }, { 's', 1 } };
	unsigned long long total = 0;
	size_t next_unit = 0;
	const char *p = text;

	if (!*p)
		return -EINVAL;
	while (*p) {
		unsigned long long value = 0;
		size_t digits = 0;
		size_t u;

		while (*p >= '0' && *p <= '9') {
			if (++digits > 9)
				return -ERANGE;
			value = value * 10 + (unsigned long long)(*p - '0');
			p++;
		}
		if (digits == 0)
			return -EINVAL;
		for (u = next_unit; u < ARRAY_SIZE(units) && units[u].unit != *p; u++)
			;
		if (u == ARRAY_SIZE(units))
			return -EINVAL;
		total += value * units[u].seconds;
		if (total > CONFIG_MAX_DURATION)
			return -ERANGE;
		next_unit = u + 1;
		p++;
	}
	if (total == 0)
		return -ERANGE;
	*seconds = (unsigned)total;
	return 0;
}

static int base64_index(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

bool config_host_key_valid(const char *text)
{
	const char *digest;
	int last;

	if (strncmp(text, "SHA256:", 7) != 0)
		return false;
	digest = text + 7;
	if (strlen(digest) != 43)
		return false;
	for (size_t i = 0; i < 43; i++)
		if (base64_index(digest[i]) < 0)
			return false;
	/* 43 characters carry 258 bits: the last 2 must be zero for 32 bytes. */
	last = base64_index(digest[42]);
	return (last & 3) == 0;
}

/* Sections of the document */

static void load_metadata(struct loader *l, const struct doc_node *root)
{
	static const char *const keys[] = { "name", NULL };
	const struct doc_node *metadata = get_section(l, root, "metadata", keys,
						      "give metadata.name, such as lab-a");

	if (!metadata)
		return;
	l->config->name = load_valid_string(l, metadata, "metadata", "name", STRING_REQUIRED,
					    dns_label_string_valid, "name",
					    "use at most 63 lowercase letters, digits and '-', starting and ending with a letter or digit",
					    NULL);
}

/* The scheme of a URL ("http" in "http://..."), or 0 when text is not a URL. */
static size_t url_scheme_length(const char *text)
{
	size_t n = 0;

	if (!((text[0] >= 'a' && text[0] <= 'z') || (text[0] >= 'A' && text[0] <= 'Z')))
		return 0;
	while (is_alnum(text[n]) || text[n] == '+' || text[n] == '-' || text[n] == '.')
		n++;
	return strncmp(text + n, "://", 3) == 0 ? n : 0;
}

static void load_bundle(struct loader *l, const struct doc_node *spec)
{
	const struct doc_node *node = get_string(l, spec, "spec", "bundle", STRING_OPTIONAL);
	size_t scheme;
	char shown[SHOWN_MAX];

	if (!node)
		return;
	quote_node(shown, sizeof(shown), node);
	scheme = url_scheme_length(node->text);
	if (scheme == 0) {
		l->config->bundle = expand_path(l, node, "spec.bundle", false);
		return;
	}
	if (scheme == 4 && strncasecmp(node->text, "http", 4) == 0) {
		problem_at(l, node, "spec.bundle",
			   "invalid bundle URL %s: mlboot install downloads only https:// URLs; use an "
			   "https:// URL, or copy the bundle to this machine and give its path", shown);
		return;
	}
	if (!(scheme == 5 && strncasecmp(node->text, "https", 5) == 0)) {
		problem_at(l, node, "spec.bundle",
			   "invalid bundle %s: unsupported URL scheme; use a path or an https:// URL", shown);
		return;
	}
	{
		const char *host = node->text + scheme + 3;

		if (host[0] == '\0' || host[0] == '/' || strpbrk(node->text, " \t\"<>\\^`{|}")) {
			problem_at(l, node, "spec.bundle",
				   "invalid bundle URL %s: expected https://HOST[:PORT]/PATH without spaces",
				   shown);
			return;
		}
	}
	l->config->bundle = text_dup(l, node->text);
	l->config->bundle_is_url = true;
}

static void load_kubeconfig(struct loader *l, const struct doc_node *spec)
{
	static const char *const keys[] = { "path", "context", "fromHost", NULL };
	const struct doc_node *kubeconfig, *path, *context, *from_host;
	struct config *config = l->config;

	kubeconfig = get_map(l, spec, "spec", "kubeconfig");
	if (!kubeconfig)
		return;
	check_keys(l, kubeconfig, "spec.kubeconfig", keys);
	path = get_string(l, kubeconfig, "spec.kubeconfig", "path", STRING_OPTIONAL);
	context = get_string(l, kubeconfig, "spec.kubeconfig", "context", STRING_EMPTY_OK);
	from_host = get_string(l, kubeconfig, "spec.kubeconfig", "fromHost", STRING_OPTIONAL);

	if (path && from_host) {
		problem_at_key(l, doc_get(kubeconfig, "fromHost"), "spec.kubeconfig.fromHost",
			       "path and fromHost are both given: use one");
		return;
	}
	if (path) {
		config->kubeconfig_path = expand_path(l, path, "spec.kubeconfig.path", false);
		if (config->kubeconfig_path)
			check_readable(l, path, "spec.kubeconfig.path", "kubeconfig",
				       config->kubeconfig_path);
	}
	if (context && context->text_len > 0)
		config->kubeconfig_context = text_dup(l, context->text);
	if (from_host)
		config->kubeconfig_from_host = text_dup(l, from_host->text);
}

/* Reads a key path, expands it and checks the key file. */
static char *load_key_path(struct loader *l, const struct doc_node *map, const char *parent)
{
	const struct doc_node *node = get_string(l, map, parent, "keyPath", STRING_OPTIONAL);
	char field[FIELD_MAX];
	char *path;

	if (!node)
		return NULL;
	field_join(field, sizeof(field), parent, "keyPath");
	path = expand_path(l, node, field, false);
	if (path)
		check_private_key(l, node, field, path);
	return path;
}

static char *load_host_key(struct loader *l, const struct doc_node *map, const char *parent)
{
	return load_valid_string(l, map, parent, "hostKey", STRING_OPTIONAL, config_host_key_valid,
				 "host key",
				 "expected \"SHA256:\" and 43 base64 characters, as ssh-keygen -l -E sha256 -f KEY.pub prints",
				 NULL);
}

static char *load_address(struct loader *l, const struct doc_node *map, const char *parent)
{
	return load_valid_string(l, map, parent, "address", STRING_REQUIRED, address_valid, "address",
				 "expected a host name or an IPv4 or IPv6 address (without brackets or port)",
				 NULL);
}

static char *load_user(struct loader *l, const struct doc_node *map, const char *parent,
		       const char *fallback)
{
	return load_valid_string(l, map, parent, "user", STRING_OPTIONAL, user_name_valid, "user name",
				 "use letters, digits, '_', '.' and '-', at most 32 characters", fallback);
}

static unsigned load_port(struct loader *l, const struct doc_node *map, const char *parent)
{
	long long port = CONFIG_DEFAULT_SSH_PORT;

	get_int(l, map, parent, "port", 1, 65535, "port", &port);
	return (unsigned)port;
}

static struct config_bastion *load_bastion(struct loader *l, const struct doc_node *ssh_map,
					   const char *parent, const struct config_ssh *ssh)
{
	static const char *const keys[] = { "address", "port", "user", "keyPath", "hostKey", NULL };
	const struct doc_node *map = get_map(l, ssh_map, parent, "bastion");
	struct config_bastion *bastion;
	char field[FIELD_MAX];

	if (!map)
		return NULL;
	field_join(field, sizeof(field), parent, "bastion");
	check_keys(l, map, field, keys);
	bastion = calloc(1, sizeof(*bastion));
	if (!bastion) {
		l->error = -ENOMEM;
		return NULL;
	}
	bastion->address = load_address(l, map, field);
	bastion->port = load_port(l, map, field);
	bastion->user = load_user(l, map, field, ssh->user ? ssh->user : CONFIG_DEFAULT_SSH_USER);
	bastion->key_path = load_key_path(l, map, field);
	if (!bastion->key_path && !member_get(map, "keyPath"))
		bastion->key_path = text_dup(l, ssh->key_path);
	bastion->host_key = load_host_key(l, map, field);
	return bastion;
}

static void load_ssh(struct loader *l, const struct doc_node *map, const char *parent,
		     struct config_ssh *ssh)
{
	static const char *const keys[] = {
		"address", "port", "user", "keyPath", "passphraseEnv", "hostKey", "knownHosts",
		"bastion", NULL,
	};
	const struct doc_node *node;
	char field[FIELD_MAX], shown[SHOWN_MAX];

	check_keys(l, map, parent, keys);
	ssh->address = load_address(l, map, parent);
	ssh->port = load_port(l, map, parent);
	ssh->user = load_user(l, map, parent, CONFIG_DEFAULT_SSH_USER);
	ssh->key_path = load_key_path(l, map, parent);
	ssh->host_key = load_host_key(l, map, parent);

	node = get_string(l, map, parent, "passphraseEnv", STRING_OPTIONAL);
	if (node) {
		field_join(field, sizeof(field), parent, "passphraseEnv");
		quote_node(shown, sizeof(shown), node);
		if (!variable_name_valid(node->text))
			problem_at(l, node, field,
				   "invalid variable name %s: use letters, digits and '_', not starting with a digit",
				   shown);
		else if (!member_get(map, "keyPath"))
			problem_at(l, node, field,
				   "passphraseEnv needs keyPath: the passphrase unlocks that key file");
		else if (!getenv(node->text))
			problem_at(l, node, field,
				   "environment variable %s is not set: export it with the key's passphrase",
				   shown);
		else
			ssh->passphrase_env = text_dup(l, node->text);
	}

	node = get_string(l, map, parent, "knownHosts", STRING_OPTIONAL);
	if (node) {
		field_join(field, sizeof(field), parent, "knownHosts");
		ssh->known_hosts = expand_path(l, node, field, false);
		if (ssh->known_hosts)
			check_known_hosts(l, node, field, ssh->known_hosts);
		if (member_get(map, "hostKey"))
			problem_at_key(l, doc_get(map, "knownHosts"), field,
				       "hostKey and knownHosts are both given: use one, because a pinned hostKey replaces known_hosts");
	}
	ssh->bastion = load_bastion(l, map, parent, ssh);
}

static void load_host(struct loader *l, const struct doc_node *item, size_t index,
		      struct config_host *host)
{
	static const char *const keys[] = { "name", "role", "local", "ssh", "sudo", NULL };
	const struct doc_node *node, *ssh_map;
	char parent[FIELD_MAX], field[FIELD_MAX], shown[SHOWN_MAX];

	snprintf(parent, sizeof(parent), "spec.hosts[%zu]", index);
	host->line = item->line;
	host->column = item->column;
	if (item->type != DOC_MAP) {
		problem_type(l, item, parent, "a map");
		return;
	}
	check_keys(l, item, parent, keys);

	host->name = load_valid_string(l, item, parent, "name", STRING_REQUIRED, dns_subdomain_valid,
				       "host name",
				       "use lowercase letters, digits, '-' and '.', as in a Kubernetes node name",
				       NULL);

	host->role = CONFIG_ROLE_WORKER;
	node = get_string(l, item, parent, "role", STRING_REQUIRED);
	if (!node) {
		l->role_invalid = true;
	} else {
		if (strcmp(node->text, "control-plane") == 0) {
			host->role = CONFIG_ROLE_CONTROL_PLANE;
		} else if (strcmp(node->text, "worker") != 0) {
			l->role_invalid = true;
			field_join(field, sizeof(field), parent, "role");
			quote_node(shown, sizeof(shown), node);
			problem_at(l, node, field, "invalid role %s: use control-plane or worker", shown);
		}
	}

	get_bool(l, item, parent, "sudo", &host->sudo);
	/* An invalid local is reported once, and the ssh rules that depend on it are skipped. */
	if (member_get(item, "local") && !get_bool(l, item, parent, "local", &host->local))
		return;

	field_join(field, sizeof(field), parent, "ssh");
	ssh_map = get_map(l, item, parent, "ssh");
	if (host->local && member_get(item, "ssh")) {
		problem_at_key(l, doc_get(item, "ssh"), field,
			       "local: true and ssh are both given: a local host is reached without SSH, so remove one");
		return;
	}
	if (!host->local && !member_get(item, "ssh")) {
		problem_missing(l, item, parent, "ssh",
				"give ssh.address, or local: true for the machine mlboot runs on");
		return;
	}
	if (ssh_map)
		load_ssh(l, ssh_map, field, &host->ssh);
}

/* Reports a second host with the same name or address and port as an earlier one. */
static void check_host_duplicates(struct loader *l, const struct doc_node *hosts)
{
	const struct config *config = l->config;

	for (size_t i = 0; i < config->host_count; i++) {
		const struct config_host *host = &config->hosts[i];
		const struct doc_node *item = hosts->items[i];
		char field[FIELD_MAX], shown[SHOWN_MAX];

		for (size_t j = 0; j < i; j++) {
			const struct config_host *other = &config->hosts[j];

			if (host->name && other->name && strcmp(host->name, other->name) == 0) {
				const struct doc_node *node = doc_get(item, "name");

				snprintf(field, sizeof(field), "spec.hosts[%zu].name", i);
				quote_text(shown, sizeof(shown), host->name, strlen(host->name));
				problem_at(l, node, field, "duplicate host name %s: also spec.hosts[%zu] at line %u",
					   shown, j, other->line);
				break;
			}
		}
		if (!host->ssh.address)
			continue;
		for (size_t j = 0; j < i; j++) {
			const struct config_host *other = &config->hosts[j];
			char a[256], b[256];

			if (!other->ssh.address || other->ssh.port != host->ssh.port)
				continue;
			address_normalize(host->ssh.address, a, sizeof(a));
			address_normalize(other->ssh.address, b, sizeof(b));
			if (strcmp(a, b) != 0)
				continue;
			snprintf(field, sizeof(field), "spec.hosts[%zu].ssh.address", i);
			quote_text(shown, sizeof(shown), host->ssh.address, strlen(host->ssh.address));
			problem_at(l, doc_find(item, "ssh", "address", NULL), field,
				   "duplicate address %s port %u: also spec.hosts[%zu] at line %u",
				   shown, host->ssh.port, j, other->line);
			break;
		}
	}
}

static void load_hosts(struct loader *l, const struct doc_node *spec)
{
	const struct doc_node *hosts = member_get(spec, "hosts");
	struct config *config = l->config;
	const struct config_host *first_local = NULL;
	bool control_plane = false;

	if (!hosts) {
		problem_missing(l, spec, "spec", "hosts", "list every node of the cluster");
		return;
	}
	if (hosts->type != DOC_SEQ) {
		problem_type(l, hosts, "spec.hosts", "a list");
		return;
	}
	if (hosts->count == 0) {
		problem_at(l, hosts, "spec.hosts", "no hosts: list every node, at least one with role control-plane");
		return;
	}
	if (hosts->count > CONFIG_MAX_HOSTS) {
		problem_at(l, hosts, "spec.hosts", "too many hosts (%zu): at most %d are supported",
			   hosts->count, CONFIG_MAX_HOSTS);
		return;
	}
	config->hosts = calloc(hosts->count, sizeof(*config->hosts));
	if (!config->hosts) {
		l->error = -ENOMEM;
		return;
	}
	config->host_count = hosts->count;
	for (size_t i = 0; i < hosts->count; i++) {
		struct config_host *host = &config->hosts[i];

		load_host(l, hosts->items[i], i, host);
		if (host->role == CONFIG_ROLE_CONTROL_PLANE)
			control_plane = true;
		if (!host->local)
			continue;
		if (first_local) {
			char field[FIELD_MAX];

			snprintf(field, sizeof(field), "spec.hosts[%zu].local", i);
			problem_at(l, doc_get(hosts->items[i], "local"), field,
				   "more than one host has local: true (also spec.hosts[%zu] at line %u): mlboot runs on one machine",
				   (size_t)(first_local - config->hosts), first_local->line);
		} else {
			first_local = host;
		}
	}
	if (!control_plane && !l->role_invalid)
		problem_at(l, hosts, "spec.hosts", "no host has role control-plane: mark at least one");
	check_host_duplicates(l, hosts);
}

/* Checks kubeconfig.fromHost against the hosts, once both are read. */
static void check_from_host(struct loader *l, const struct doc_node *spec)
{
	const struct config *config = l->config;
	const struct doc_node *node = doc_find(spec, "kubeconfig", "fromHost", NULL);
	const struct config_host *host;
	char shown[SHOWN_MAX];

	if (!config->kubeconfig_from_host || !node)
		return;
	quote_node(shown, sizeof(shown), node);
	host = config_find_host(config, config->kubeconfig_from_host);
	if (!host) {
		const char *names[CONFIG_MAX_HOSTS + 1];
		const char *suggestion;
		size_t n = 0;

		for (size_t i = 0; i < config->host_count; i++)
			if (config->hosts[i].name)
				names[n++] = config->hosts[i].name;
		names[n] = NULL;
		suggestion = nearest_name(config->kubeconfig_from_host, names);
		if (suggestion)
			problem_at(l, node, "spec.kubeconfig.fromHost",
				   "unknown host %s: did you mean \"%s\"?", shown, suggestion);
		else
			problem_at(l, node, "spec.kubeconfig.fromHost",
				   "unknown host %s: name one of spec.hosts", shown);
		return;
	}
	if (host->role != CONFIG_ROLE_CONTROL_PLANE)
		problem_at(l, node, "spec.kubeconfig.fromHost",
			   "host %s is a worker: the admin kubeconfig is on a control-plane host", shown);
}

static void load_images(struct loader *l, const struct doc_node *spec)
{
	static const char *const keys[] = { "mode", "pin", NULL };
	const struct doc_node *images = get_map(l, spec, "spec", "images");
	const struct doc_node *mode;
	char shown[SHOWN_MAX];

	l->config->images_pin = true;
	if (!images)
		return;
	check_keys(l, images, "spec.images", keys);
	mode = get_string(l, images, "spec.images", "mode", STRING_OPTIONAL);
	if (mode && strcmp(mode->text, "containerd") != 0) {
		quote_node(shown, sizeof(shown), mode);
		problem_at(l, mode, "spec.images.mode",
			   "invalid mode %s: only containerd is supported (images are imported into each node's containerd)",
			   shown);
	}
	get_bool(l, images, "spec.images", "pin", &l->config->images_pin);
}

/* The keys of spec.components and the bundle components they install, by enum config_component. */
static const struct {
	const char *key;
	const char *bundle_name;
} component_names[CONFIG_COMPONENT_COUNT] = {
	[CONFIG_COMPONENT_CERT_MANAGER] = { "certManager", "cert-manager" },
	[CONFIG_COMPONENT_ISTIO] = { "istio", "istio" },
	[CONFIG_COMPONENT_KSERVE] = { "kserve", "kserve" },
	[CONFIG_COMPONENT_KUBEFLOW] = { "kubeflow", "kubeflow" },
	[CONFIG_COMPONENT_ARGOCD] = { "argocd", "argocd" },
	[CONFIG_COMPONENT_SAMPLE_MODEL] = { "sampleModel", "sample-model" },
};

const char *config_component_key(enum config_component component)
{
	return (unsigned)component < CONFIG_COMPONENT_COUNT ? component_names[component].key : NULL;
}

const char *config_component_bundle_name(enum config_component component)
{
	return (unsigned)component < CONFIG_COMPONENT_COUNT ? component_names[component].bundle_name : NULL;
}

int config_component_of(const char *bundle_name)
{
	for (int i = 0; i < CONFIG_COMPONENT_COUNT; i++)
		if (strcmp(component_names[i].bundle_name, bundle_name) == 0)
			return i;
	/* Knative Serving is a component of its own in the platform catalog, but it is there for KServe. */
	if (strcmp(bundle_name, "knative-serving") == 0)
		return CONFIG_COMPONENT_KSERVE;
	return -1;
}

static bool component_enabled(const struct config_components *c, enum config_component component)
{
	switch (component) {
	case CONFIG_COMPONENT_CERT_MANAGER:
		return c->cert_manager;
	case CONFIG_COMPONENT_ISTIO:
		return c->istio;
	case CONFIG_COMPONENT_KSERVE:
		return c->kserve;
	case CONFIG_COMPONENT_KUBEFLOW:
		return c->kubeflow;
	case CONFIG_COMPONENT_ARGOCD:
		return c->argocd;
	case CONFIG_COMPONENT_SAMPLE_MODEL:
		return c->sample_model;
	case CONFIG_COMPONENT_COUNT:
		break;
	}
	return false;
}

bool config_component_selected(const struct config *config, const char *bundle_name)
{
	int component;

	if (!config->components.listed)
		return true;
	component = config_component_of(bundle_name);
	return component >= 0 && component_enabled(&config->components, (enum config_component)component);
}

int config_check_bundle_components(const struct config *config, const char *const *names, size_t count,
				   const char *bundle, struct config_problems *problems)
{
	const struct config_components *c = &config->components;
	bool missing = false;

	if (!c->listed)
		return 0;
	for (int i = 0; i < CONFIG_COMPONENT_COUNT; i++) {
		const char *expected = component_names[i].bundle_name;
		bool found = false;
		char field[FIELD_MAX];
		int r;

		if (!component_enabled(c, (enum config_component)i))
			continue;
		for (size_t k = 0; k < count && !found; k++)
			found = strcmp(names[k], expected) == 0;
		if (found)
			continue;
		field_join(field, sizeof(field), "spec.components", component_names[i].key);
		r = config_problems_add(problems, c->at[i], field,
					"%s is listed, but the bundle '%s' has no component '%s': remove %s from "
					"spec.components, or use a bundle that has it",
					component_names[i].key, bundle, expected, component_names[i].key);
		if (r < 0)
			return r;
		missing = true;
	}
	return missing ? MLB_EINPUT : 0;
}

/* A component entry: present (a map or null) means installed. */
static const struct doc_node *load_component(struct loader *l, const struct doc_node *components,
					     enum config_component component, const char *const *keys, bool *enabled)
{
	const char *key = component_names[component].key;
	const struct doc_node *node = doc_get(components, key);
	char field[FIELD_MAX];

	*enabled = false;
	if (!node)
		return NULL;
	field_join(field, sizeof(field), "spec.components", key);
	if (node->type != DOC_MAP && node->type != DOC_NULL) {
		problem_type(l, node, field, "a map (use {} for the defaults)");
		return NULL;
	}
	*enabled = true;
	l->config->components.at[component].line = node->key_line;
	l->config->components.at[component].column = node->key_column;
	if (node->type == DOC_NULL)
		return NULL;
	check_keys(l, node, field, keys);
	return node;
}

static void check_component_needs(struct loader *l, const struct doc_node *components,
				  const char *key, bool enabled, const char *needed_key, bool needed,
				  const char *reason)
{
	char field[FIELD_MAX];

	if (!enabled || needed)
		return;
	field_join(field, sizeof(field), "spec.components", key);
	problem_at_key(l, doc_get(components, key), field, "%s needs %s, which is not listed: %s",
		       key, needed_key, reason);
}

static void load_components(struct loader *l, const struct doc_node *spec)
{
	static const char *const keys[] = {
		"certManager", "istio", "kserve", "kubeflow", "argocd", "sampleModel", NULL,
	};
	static const char *const no_keys[] = { NULL };
	static const char *const istio_keys[] = { "profile", NULL };
	static const char *const kserve_keys[] = { "deploymentMode", NULL };
	static const char *const sample_keys[] = { "namespace", NULL };
	struct config_components *c = &l->config->components;
	const struct doc_node *components, *map, *node;
	char shown[SHOWN_MAX];

	c->istio_profile = text_dup(l, "default");
	c->sample_model_namespace = text_dup(l, "ml");
	c->kserve_mode = CONFIG_KSERVE_RAW_DEPLOYMENT;
	c->cert_manager = c->istio = c->kserve = c->kubeflow = c->argocd = c->sample_model = true;
	if (!member_get(spec, "components"))
		return;
	components = get_map(l, spec, "spec", "components");
	if (!components)
		return;
	c->listed = true;
	check_keys(l, components, "spec.components", keys);
	if (components->count == 0)
		problem_at(l, components, "spec.components",
			   "lists no component: list the components to install, or remove spec.components to "
			   "install every component of the bundle");

	load_component(l, components, CONFIG_COMPONENT_CERT_MANAGER, no_keys, &c->cert_manager);
	load_component(l, components, CONFIG_COMPONENT_KUBEFLOW, no_keys, &c->kubeflow);
	load_component(l, components, CONFIG_COMPONENT_ARGOCD, no_keys, &c->argocd);

	/*
	 * The bundle carries Istio already rendered and does not record its
	 * profile, so mlboot cannot choose one: only the profile the platform
	 * catalogs render is accepted.
	 */
	map = load_component(l, components, CONFIG_COMPONENT_ISTIO, istio_keys, &c->istio);
	node = map ? get_string(l, map, "spec.components.istio", "profile", STRING_OPTIONAL) : NULL;
	if (node && strcmp(node->text, "default") != 0) {
		quote_node(shown, sizeof(shown), node);
		problem_at(l, node, "spec.components.istio.profile",
			   "invalid profile %s: mlboot cannot change Istio's profile, because the bundle carries "
			   "Istio's manifests already rendered (the platform catalogs render the default profile); "
			   "remove the setting or set it to default", shown);
	}

	map = load_component(l, components, CONFIG_COMPONENT_KSERVE, kserve_keys, &c->kserve);
	node = map ? get_string(l, map, "spec.components.kserve", "deploymentMode", STRING_OPTIONAL) : NULL;
	if (node) {
		c->kserve_mode_at.line = node->line;
		c->kserve_mode_at.column = node->column;
		if (strcmp(node->text, "Serverless") == 0) {
			c->kserve_mode = CONFIG_KSERVE_SERVERLESS;
		} else if (strcmp(node->text, "RawDeployment") != 0) {
			quote_node(shown, sizeof(shown), node);
			problem_at(l, node, "spec.components.kserve.deploymentMode",
				   "invalid deployment mode %s: use RawDeployment or Serverless", shown);
		}
	}

	map = load_component(l, components, CONFIG_COMPONENT_SAMPLE_MODEL, sample_keys, &c->sample_model);
	node = map ? get_string(l, map, "spec.components.sampleModel", "namespace", STRING_OPTIONAL) : NULL;
	if (node) {
		if (dns_label_valid(node->text, node->text_len)) {
			free(c->sample_model_namespace);
			c->sample_model_namespace = text_dup(l, node->text);
			c->sample_model_namespace_at.line = node->line;
			c->sample_model_namespace_at.column = node->column;
		} else {
			quote_node(shown, sizeof(shown), node);
			problem_at(l, node, "spec.components.sampleModel.namespace",
				   "invalid namespace %s: use at most 63 lowercase letters, digits and '-'", shown);
		}
	}

	check_component_needs(l, components, "kserve", c->kserve, "certManager", c->cert_manager,
			      "the KServe webhooks get their certificates from cert-manager");
	check_component_needs(l, components, "kserve", c->kserve, "istio", c->istio,
			      "mlboot serves KServe models through the Istio ingress gateway");
	check_component_needs(l, components, "kubeflow", c->kubeflow, "istio", c->istio,
			      "Kubeflow's web apps are served through Istio");
	check_component_needs(l, components, "kubeflow", c->kubeflow, "certManager", c->cert_manager,
			      "the Kubeflow webhooks get their certificates from cert-manager");
	check_component_needs(l, components, "sampleModel", c->sample_model, "kserve", c->kserve,
			      "the sample model is a KServe InferenceService");
}

static void load_duration(struct loader *l, const struct doc_node *map, const char *key,
			  unsigned *seconds)
{
	const struct doc_node *node = member_get(map, key);
	char field[FIELD_MAX], shown[SHOWN_MAX];
	int r;

	if (!node)
		return;
	field_join(field, sizeof(field), "spec.timeouts", key);
	quote_node(shown, sizeof(shown), node);
	if (node->type == DOC_INT) {
		problem_at(l, node, field, "invalid duration %s: give a unit, such as 90s, 15m or 1h30m",
			   shown);
		return;
	}
	node = get_string(l, map, "spec.timeouts", key, STRING_OPTIONAL);
	if (!node)
		return;
	r = config_parse_duration(node->text, seconds);
	if (r == -ERANGE)
		problem_at(l, node, field, "invalid duration %s: use 1s to 168h", shown);
	else if (r < 0)
		problem_at(l, node, field,
			   "invalid duration %s: use whole hours, minutes and seconds in that order, such as 90s, 15m, 2h or 1h30m",
			   shown);
}

static void load_timeouts(struct loader *l, const struct doc_node *spec)
{
	static const char *const keys[] = { "component", "install", NULL };
	const struct doc_node *timeouts = get_map(l, spec, "spec", "timeouts");
	struct config *config = l->config;

	config->component_timeout = CONFIG_DEFAULT_COMPONENT_TIMEOUT;
	config->install_timeout = CONFIG_DEFAULT_INSTALL_TIMEOUT;
	if (!timeouts)
		return;
	check_keys(l, timeouts, "spec.timeouts", keys);
	load_duration(l, timeouts, "component", &config->component_timeout);
	load_duration(l, timeouts, "install", &config->install_timeout);
	if (config->component_timeout > config->install_timeout) {
		const struct doc_node *node = doc_get(timeouts, "component");

		if (!node)
			node = timeouts;
		problem_at(l, node, "spec.timeouts.component",
			   "the component timeout (%us) is longer than the install timeout (%us): raise install or lower component",
			   config->component_timeout, config->install_timeout);
	}
}

static void load_spec(struct loader *l, const struct doc_node *root)
{
	static const char *const keys[] = {
		"bundle", "kubeconfig", "hosts", "images", "components", "timeouts", "stateDir",
		"parallelism", NULL,
	};
	struct config *config = l->config;
	const struct doc_node *spec, *node;
	long long parallelism = CONFIG_DEFAULT_PARALLELISM;

	spec = get_section(l, root, "spec", keys, "it lists the hosts and what to install");
	if (!spec)
		return;
	load_bundle(l, spec);
	load_kubeconfig(l, spec);
	load_hosts(l, spec);
	check_from_host(l, spec);
	load_images(l, spec);
	load_components(l, spec);
	load_timeouts(l, spec);

	node = get_string(l, spec, "spec", "stateDir", STRING_OPTIONAL);
	if (node)
		config->state_dir = expand_path(l, node, "spec.stateDir", true);
	else
		config->state_dir = text_dup(l, CONFIG_DEFAULT_STATE_DIR);

	get_int(l, spec, "spec", "parallelism", 1, CONFIG_MAX_PARALLELISM, "parallelism", &parallelism);
	config->parallelism = (unsigned)parallelism;
}

static void load_root(struct loader *l, const struct doc_node *root)
{
	static const char *const keys[] = { "apiVersion", "kind", "metadata", "spec", NULL };
	const struct doc_node *node;
	char shown[SHOWN_MAX];

	if (root->type != DOC_MAP) {
		problem_at(l, root, "", "expected a map with apiVersion, kind, metadata and spec, got %s",
			   type_name(root));
		return;
	}
	check_keys(l, root, "", keys);
	node = get_string(l, root, "", "apiVersion", STRING_REQUIRED);
	if (node && strcmp(node->text, CONFIG_API_VERSION) != 0) {
		quote_node(shown, sizeof(shown), node);
		problem_at(l, node, "apiVersion", "unsupported apiVersion %s: use %s", shown,
			   CONFIG_API_VERSION);
	}
	node = get_string(l, root, "", "kind", STRING_REQUIRED);
	if (node && strcmp(node->text, CONFIG_KIND) != 0) {
		quote_node(shown, sizeof(shown), node);
		problem_at(l, node, "kind", "unsupported kind %s: use %s", shown, CONFIG_KIND);
	}
	load_metadata(l, root);
	load_spec(l, root);
}

/* Entry points */

int config_parse(const char *name, const char *data, size_t len, struct config *out,
		 struct config_problems *problems)
{
	struct loader l = { .file = name, .config = out, .problems = problems };
	struct doc_node *root = NULL;
	struct doc_error error;
	size_t problems_before = problems->count + problems->dropped;
	int r;

	memset(out, 0, sizeof(*out));
	memset(&error, 0, sizeof(error));
	out->file = text_dup(&l, name);
	r = doc_parse(data, len, &config_doc_limits, &root, &error);
	if (r == -ENOMEM) {
		l.error = r;
	} else if (r < 0) {
		problem_add(&l, error.line, error.column, "", "%s", error.message[0] ? error.message : "invalid YAML");
	} else {
		load_root(&l, root);
	}
	doc_free(root);
	problems_sort(problems);

	r = l.error;
	if (r == 0 && problems->count + problems->dropped > problems_before)
		r = MLB_EINPUT;
	if (r < 0)
		config_release(out);
	return r;
}

int config_load(const char *path, struct config *out, struct config_problems *problems)
{
	struct buf data = BUF_INIT(CONFIG_MAX_BYTES);
	struct loader l = { .file = path, .config = out, .problems = problems };
	int r;

	memset(out, 0, sizeof(*out));
	r = file_read_all(path, CONFIG_MAX_BYTES, &data);
	if (r == -ENOMEM)
		goto out;
	if (r == -EFBIG || r == -E2BIG) {
		problem_add(&l, 0, 0, "", "file is larger than %d bytes: is this mlboot.yaml?",
			    CONFIG_MAX_BYTES);
		r = l.error ? l.error : MLB_EINPUT;
		goto out;
	}
	if (r < 0) {
		problem_add(&l, 0, 0, "", "cannot read the configuration: %s", strerror(-r));
		r = l.error ? l.error : MLB_EINPUT;
		goto out;
	}
	r = config_parse(path, data.data, data.len, out, problems);
out:
	buf_release(&data);
	return r;
}

static void bastion_free(struct config_bastion *bastion)
{
	if (!bastion)
		return;
	free(bastion->address);
	free(bastion->user);
	free(bastion->key_path);
	free(bastion->host_key);
	free(bastion);
}

void config_release(struct config *config)
{
	if (!config)
		return;
	free(config->file);
	free(config->name);
	free(config->bundle);
	free(config->kubeconfig_path);
	free(config->kubeconfig_context);
	free(config->kubeconfig_from_host);
	for (size_t i = 0; i < config->host_count; i++) {
		struct config_host *host = &config->hosts[i];

		free(host->name);
		free(host->ssh.address);
		free(host->ssh.user);
		free(host->ssh.key_path);
		free(host->ssh.passphrase_env);
		free(host->ssh.host_key);
		free(host->ssh.known_hosts);
		bastion_free(host->ssh.bastion);
	}
	free(config->hosts);
	free(config->components.istio_profile);
	free(config->components.sample_model_namespace);
	free(config->state_dir);
	memset(config, 0, sizeof(*config));
}

const struct config_host *config_find_host(const struct config *config, const char *name)
{
	for (size_t i = 0; i < config->host_count; i++)
		if (config->hosts[i].name && strcmp(config->hosts[i].name, name) == 0)
			return &config->hosts[i];
	return NULL;
}

const char *config_role_name(enum config_role role)
{
	return role == CONFIG_ROLE_CONTROL_PLANE ? "control-plane" : "worker";
}

/* Copies text into *out, or sets *out to NULL for NULL. Returns 0 or -ENOMEM. */
static int copy_optional(const char *text, char **out)
{
	*out = NULL;
	if (!text)
		return 0;
	*out = strdup(text);
	return *out ? 0 : -ENOMEM;
}

int config_host_to_node(const struct config_host *host, struct node_host *out)
{
	const struct config_ssh *ssh = &host->ssh;
	struct node_ssh *bastion;
	int r;

	node_host_init(out);
	out->role = host->role == CONFIG_ROLE_CONTROL_PLANE ? NODE_ROLE_CONTROL_PLANE : NODE_ROLE_WORKER;
	out->local = host->local;
	out->sudo = host->sudo;
	r = copy_optional(host->name, &out->name);
	if (r < 0 || host->local)
		return r;

	out->ssh.port = (uint16_t)ssh->port;
	if ((r = copy_optional(ssh->address, &out->ssh.address)) < 0 ||
	    (r = copy_optional(ssh->user, &out->ssh.user)) < 0 ||
	    (r = copy_optional(ssh->key_path, &out->ssh.key_path)) < 0 ||
	    (r = copy_optional(ssh->passphrase_env, &out->ssh.passphrase_env)) < 0 ||
	    (r = copy_optional(ssh->host_key, &out->ssh.host_key)) < 0 ||
	    (r = copy_optional(ssh->known_hosts, &out->ssh.known_hosts)) < 0)
		return r;
	if (!ssh->bastion)
		return 0;

	bastion = calloc(1, sizeof(*bastion));
	if (!bastion)
		return -ENOMEM;
	out->ssh.bastion = bastion;
	bastion->port = (uint16_t)ssh->bastion->port;
	if ((r = copy_optional(ssh->bastion->address, &bastion->address)) < 0 ||
	    (r = copy_optional(ssh->bastion->user, &bastion->user)) < 0 ||
	    (r = copy_optional(ssh->bastion->key_path, &bastion->key_path)) < 0 ||
	    (r = copy_optional(ssh->bastion->host_key, &bastion->host_key)) < 0 ||
	    (r = copy_optional(ssh->known_hosts, &bastion->known_hosts)) < 0)
		return r;
	/* The passphrase variable belongs to the host's key; share it only when the key is the same file. */
	if (ssh->passphrase_env && bastion->key_path && ssh->key_path &&
	    strcmp(bastion->key_path, ssh->key_path) == 0)
		r = copy_optional(ssh->passphrase_env, &bastion->passphrase_env);
	return r;
}

/* kubeconfig.fromHost */

/* The files the script tries, in order. The first line it prints names the one it read. */
static const char *const admin_kubeconfig_paths[] = {
	"/etc/kubernetes/admin.conf",
	"/etc/rancher/k3s/k3s.yaml",
	"/etc/rancher/rke2/rke2.yaml",
};

#define KUBECONFIG_MARKER "mlboot-kubeconfig "
#define FETCH_NOT_FOUND 3
#define FETCH_UNREADABLE 4

static const char fetch_kubeconfig_script[] =
	"unreadable=\n"
	"for f in /etc/kubernetes/admin.conf /etc/rancher/k3s/k3s.yaml /etc/rancher/rke2/rke2.yaml; do\n"
	"\tif [ -f \"$f\" ] && [ -r \"$f\" ]; then\n"
	"\t\tprintf '" KUBECONFIG_MARKER "%s\\n' \"$f\"\n"
	"\t\texec cat -- \"$f\"\n"
	"\tfi\n"
	"\tif [ -e \"$f\" ]; then unreadable=\"$unreadable $f\"; fi\n"
	"done\n"
	"if [ -n \"$unreadable\" ]; then echo \"not readable by $(id -un):$unreadable\" >&2; exit 4; fi\n"
	"exit 3\n";

void config_kubeconfig_release(struct config_kubeconfig *kubeconfig)
{
	if (!kubeconfig)
		return;
	buf_release_secret(&kubeconfig->data);
	free(kubeconfig->data_name);
	free(kubeconfig->server_rewritten);
	memset(kubeconfig, 0, sizeof(*kubeconfig));
}

static bool host_is_loopback(const char *host)
{
	unsigned char binary[sizeof(struct in6_addr)];

	if (strcasecmp(host, "localhost") == 0)
		return true;
	if (inet_pton(AF_INET, host, binary) == 1)
		return binary[0] == 127;
	if (inet_pton(AF_INET6, host, binary) == 1) {
		static const unsigned char loopback[16] = { [15] = 1 };

		return memcmp(binary, loopback, 16) == 0;
	}
	return false;
}

int config_rewrite_loopback_server(const char *server, const char *address, char **out,
				   bool *was_name)
{
	const char *host_start, *host_end, *rest;
	char host[256];
	size_t scheme = url_scheme_length(server);
	struct buf rewritten = BUF_INIT(8192);
	int r;

	*out = NULL;
	*was_name = false;
	if (scheme == 0)
		return 0;
	host_start = server + scheme + 3;
	if (*host_start == '[') {
		host_end = strchr(host_start, ']');
		if (!host_end)
			return 0;
		rest = host_end + 1;
		host_start++;
	} else {
		host_end = host_start + strcspn(host_start, ":/?#");
		rest = host_end;
	}
	if ((size_t)(host_end - host_start) >= sizeof(host) || host_end == host_start)
		return 0;
	memcpy(host, host_start, (size_t)(host_end - host_start));
	host[host_end - host_start] = '\0';
	if (!host_is_loopback(host))
		return 0;
	*was_name = strcasecmp(host, "localhost") == 0;

	r = buf_append(&rewritten, server, scheme + 3);
	if (r == 0 && strchr(address, ':'))
		r = buf_printf(&rewritten, "[%s]", address);
	else if (r == 0)
		r = buf_append_str(&rewritten, address);
	if (r == 0)
		r = buf_append_str(&rewritten, rest);
	if (r < 0) {
		buf_release(&rewritten);
		return -ENOMEM;
	}
	*out = buf_steal(&rewritten);
	return *out ? 1 : -ENOMEM;
}

/* Overwrites every key and scalar of a tree, which may hold keys and tokens, before it is freed. */
static void doc_wipe(struct doc_node *node)
{
	if (!node)
		return;
	if (node->key)
		secure_wipe(node->key, strlen(node->key));
	if (node->text)
		secure_wipe(node->text, node->text_len);
	for (size_t i = 0; i < node->count; i++)
		doc_wipe(node->items[i]);
}

/*
 * Rewrites loopback server addresses of a fetched kubeconfig to the host's
 * address. On a rewrite, out->data is replaced by the tree written as JSON
 * (which is YAML), so no text surgery on YAML is needed.
 */
static int rewrite_fetched_kubeconfig(const struct config_host *host, struct config_kubeconfig *out,
				      struct node_error *err)
{
	struct doc_limits limits = { CONFIG_KUBECONFIG_MAX, 64, 100000 };
	struct buf json = BUF_INIT(CONFIG_KUBECONFIG_MAX * 2);
	struct doc_node *root = NULL;
	struct doc_node *clusters;
	struct doc_error parse_error;
	bool changed = false;
	int r;

	r = doc_parse(out->data.data, out->data.len, &limits, &root, &parse_error);
	if (r == -ENOMEM)
		goto out;
	if (r < 0) {
		snprintf(err->message, sizeof(err->message), "host '%s': %s:%u:%u: invalid kubeconfig: %s",
			 host->name, out->data_name, parse_error.line, parse_error.column, parse_error.message);
		r = MLB_EINPUT;
		goto out;
	}
	clusters = doc_get_mutable(root, "clusters");
	for (size_t i = 0; clusters && clusters->type == DOC_SEQ && i < clusters->count; i++) {
		struct doc_node *cluster = doc_get_mutable(clusters->items[i], "cluster");
		const char *server = doc_get_string(cluster, "server");
		char *rewritten = NULL;
		bool was_name;

		if (!server)
			continue;
		r = config_rewrite_loopback_server(server, host->ssh.address, &rewritten, &was_name);
		if (r < 0)
			goto out;
		if (r == 0)
			continue;
		log_info("host '%s': the kubeconfig's server %s is a loopback address: using %s instead",
			 host->name, server, rewritten);
		/* The certificate was checked for "localhost" before the rewrite, so keep checking that name. */
		if (was_name && !doc_get_string(cluster, "tls-server-name")) {
			r = doc_map_set_string(cluster, "tls-server-name", "localhost");
			if (r < 0) {
				free(rewritten);
				goto out;
			}
		}
		r = doc_map_set_string(cluster, "server", rewritten);
		free(out->server_rewritten);
		out->server_rewritten = rewritten;
		if (r < 0)
			goto out;
		changed = true;
	}
	r = 0;
	if (!changed)
		goto out;
	r = doc_write_json(root, &json);
	if (r < 0)
		goto out;
	buf_release_secret(&out->data);
	out->data = json;
	memset(&json, 0, sizeof(json));
out:
	buf_release_secret(&json);
	doc_wipe(root);
	doc_free(root);
	return r;
}

/* Runs the fetch script on host and leaves the file in out->data. */
static int fetch_admin_kubeconfig(const struct config_host *host, const struct node_options *options,
				  struct config_kubeconfig *out, struct node_error *err)
{
	static const char *const argv[] = { "sh", "-s", NULL };
	struct node_command command = {
		.argv = argv,
		.stdin_data = fetch_kubeconfig_script,
		.stdin_len = sizeof(fetch_kubeconfig_script) - 1,
		.stdout_max = CONFIG_KUBECONFIG_MAX + 256,
		.stderr_max = 4096,
	};
	struct node_host node_host;
	struct node_session *session = NULL;
	struct node_result result;
	const char *path = NULL, *text, *newline;
	char detail[512];
	int r;

	node_result_init(&result);
	r = config_host_to_node(host, &node_host);
	if (r < 0)
		goto out;
	r = node_connect(&node_host, options, &session, err);
	if (r < 0)
		goto out;
	r = node_run(session, &command, &result, err);
	if (r < 0)
		goto out;

	text = buf_str(&result.out);
	if (result.exit_status == FETCH_NOT_FOUND || result.exit_status == FETCH_UNREADABLE) {
		escape_into(detail, sizeof(detail), buf_str(&result.err), result.err.len);
		if (result.exit_status == FETCH_NOT_FOUND)
			snprintf(err->message, sizeof(err->message),
				 "host '%s': no admin kubeconfig at %s, %s or %s: set kubeconfig.path instead",
				 host->name, admin_kubeconfig_paths[0], admin_kubeconfig_paths[1],
				 admin_kubeconfig_paths[2]);
		else
			snprintf(err->message, sizeof(err->message),
				 "host '%s': %s: set sudo: true for this host, or connect as root",
				 host->name, detail);
		r = result.exit_status == FETCH_NOT_FOUND ? MLB_EINPUT : MLB_EDENIED;
		goto out;
	}
	if (result.out_truncated) {
		snprintf(err->message, sizeof(err->message),
			 "host '%s': the admin kubeconfig is larger than %d bytes", host->name,
			 CONFIG_KUBECONFIG_MAX);
		r = MLB_EINPUT;
		goto out;
	}
	if (result.exit_status != 0) {
		escape_into(detail, sizeof(detail), buf_str(&result.err), result.err.len);
		snprintf(err->message, sizeof(err->message),
			 "host '%s': reading the admin kubeconfig failed (exit status %d): %s", host->name,
			 result.exit_status, detail);
		r = MLB_EINPUT;
		goto out;
	}

	/* Accept only one of the files asked for, as the first line names it. */
	newline = strchr(text, '\n');
	for (size_t i = 0; newline && i < ARRAY_SIZE(admin_kubeconfig_paths); i++) {
		size_t marker = strlen(KUBECONFIG_MARKER), len = strlen(admin_kubeconfig_paths[i]);

		if ((size_t)(newline - text) == marker + len && strncmp(text, KUBECONFIG_MARKER, marker) == 0 &&
		    strncmp(text + marker, admin_kubeconfig_paths[i], len) == 0)
			path = admin_kubeconfig_paths[i];
	}
	if (!path) {
		escape_into(detail, sizeof(detail), text, newline ? (size_t)(newline - text) : strlen(text));
		snprintf(err->message, sizeof(err->message),
			 "host '%s': unexpected output instead of a kubeconfig: \"%s\"", host->name, detail);
		r = MLB_EINPUT;
		goto out;
	}
	if (asprintf(&out->data_name, "host %s:%s", host->name, path) < 0) {
		out->data_name = NULL;
		r = -ENOMEM;
		goto out;
	}
	buf_init(&out->data, CONFIG_KUBECONFIG_MAX);
	r = buf_append(&out->data, newline + 1, result.out.len - (size_t)(newline + 1 - text));
	if (r < 0)
		goto out;
	log_info("host '%s': read the admin kubeconfig %s", host->name, path);
	if (!host->local)
		r = rewrite_fetched_kubeconfig(host, out, err);
out:
	/* The captured output contains the kubeconfig's keys. */
	if (result.out.data)
		secure_wipe(result.out.data, result.out.capacity);
	node_result_release(&result);
	node_close(session);
	node_host_release(&node_host);
	return r;
}

int config_kubeconfig_resolve(const struct config *config, const struct node_options *node_options,
			      struct config_kubeconfig *out, struct node_error *err)
{
	const struct config_host *host;
	int r;

	memset(out, 0, sizeof(*out));
	err->message[0] = '\0';
	out->options.context = config->kubeconfig_context;
	if (!config->kubeconfig_from_host) {
		out->options.path = config->kubeconfig_path;
		return 0;
	}
	host = config_find_host(config, config->kubeconfig_from_host);
	if (!host) {
		snprintf(err->message, sizeof(err->message), "kubeconfig.fromHost names no host: '%s'",
			 config->kubeconfig_from_host);
		return MLB_EINPUT;
	}
	r = fetch_admin_kubeconfig(host, node_options, out, err);
	if (r < 0)
		return r;
	out->options.data = out->data.data;
	out->options.data_len = out->data.len;
	out->options.data_name = out->data_name;
	return 0;
}
