/*
 * Scalar typing and Go-compatible float formatting for the document tree.
 *
 * Plain scalars are typed by the rules of go-yaml v2 (resolve.go, v2.4),
 * which kubectl uses through sigs.k8s.io/yaml. go-yaml reads integers and
 * floats with Go's strconv.ParseInt, ParseUint and ParseFloat, so their
 * syntax is Go's. Float values are formatted as Go's encoding/json writes
 * them, and float keys as sigs.k8s.io/yaml writes them.
 */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "doc.h"
#include "doc_internal.h"

/* ---- scalar typing ---- */

bool in_set(char c, const char *set)
{
	return c != '\0' && strchr(set, c);
}

enum tag_kind classify_tag(const char *tag)
{
	static const struct {
		const char *suffix;
		enum tag_kind kind;
	} core[] = {
		{ "str", TAG_STR }, { "int", TAG_INT }, { "float", TAG_FLOAT },
		{ "bool", TAG_BOOL }, { "null", TAG_NULL }, { "map", TAG_MAP },
		{ "seq", TAG_SEQ }, { "merge", TAG_MERGE },
	};
	size_t prefix_len = strlen(CORE_TAG_PREFIX);

	if (!tag)
		return TAG_NONE;
	if (strncmp(tag, CORE_TAG_PREFIX, prefix_len) != 0)
		return TAG_OTHER;
	for (size_t i = 0; i < sizeof(core) / sizeof(core[0]); i++)
		if (strcmp(tag + prefix_len, core[i].suffix) == 0)
			return core[i].kind;
	/*
	 * !!binary, !!timestamp, !!omap, !!set and others keep their text.
	 * NOTE: go-yaml decodes !!binary from base64 and rejects a !!timestamp
	 * that is not a date, so such scalars can differ from kubectl's.
	 */
	return TAG_OTHER;
}

/* Words that go-yaml v2 resolves by table, with their values. */
static bool resolve_word(const char *text, size_t len, struct scalar_value *out)
{
	static const struct {
		const char *word;
		enum doc_type type;
		int value;   /* the boolean, the sign of an infinity, or 2 for NaN */
	} words[] = {
		{ "y", DOC_BOOL, 1 }, { "Y", DOC_BOOL, 1 }, { "yes", DOC_BOOL, 1 },
		{ "Yes", DOC_BOOL, 1 }, { "YES", DOC_BOOL, 1 }, { "true", DOC_BOOL, 1 },
		{ "True", DOC_BOOL, 1 }, { "TRUE", DOC_BOOL, 1 }, { "on", DOC_BOOL, 1 },
		{ "On", DOC_BOOL, 1 }, { "ON", DOC_BOOL, 1 },
		{ "n", DOC_BOOL, 0 }, { "N", DOC_BOOL, 0 }, { "no", DOC_BOOL, 0 },
		{ "No", DOC_BOOL, 0 }, { "NO", DOC_BOOL, 0 }, { "false", DOC_BOOL, 0 },
		{ "False", DOC_BOOL, 0 }, { "FALSE", DOC_BOOL, 0 }, { "off", DOC_BOOL, 0 },
		{ "Off", DOC_BOOL, 0 }, { "OFF", DOC_BOOL, 0 },
		{ "~", DOC_NULL, 0 }, { "null", DOC_NULL, 0 }, { "Null", DOC_NULL, 0 },
		{ "NULL", DOC_NULL, 0 },
		{ ".nan", DOC_FLOAT, 2 }, { ".NaN", DOC_FLOAT, 2 }, { ".NAN", DOC_FLOAT, 2 },
		{ ".inf", DOC_FLOAT, 1 }, { ".Inf", DOC_FLOAT, 1 }, { ".INF", DOC_FLOAT, 1 },
		{ "+.inf", DOC_FLOAT, 1 }, { "+.Inf", DOC_FLOAT, 1 }, { "+.INF", DOC_FLOAT, 1 },
		{ "-.inf", DOC_FLOAT, -1 }, { "-.Inf", DOC_FLOAT, -1 }, { "-.INF", DOC_FLOAT, -1 },
	};

	if (len > 5)
		return false;
	for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
		if (strlen(words[i].word) != len || memcmp(words[i].word, text, len) != 0)
			continue;
		out->type = words[i].type;
		out->boolean = words[i].value == 1;
		if (words[i].type == DOC_FLOAT)
			out->real = words[i].value == 2 ? NAN : words[i].value * INFINITY;
		return true;
	}
	return false;
}

int digit_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'Z')
		return c - 'A' + 10;
	return 99;
}

/*
 * Parses an integer with Go's base-0 syntax: an optional sign, then 0x, 0o,
 * 0b or a leading 0 (octal) or decimal digits. Returns false on bad syntax
 * or when the magnitude does not fit 64 bits.
 */
static bool parse_go_integer(const char *text, size_t len, bool *negative,
			     unsigned long long *magnitude)
{
	unsigned long long value = 0;
	unsigned base = 10;
	size_t i = 0;

	*negative = false;
	if (i < len && (text[i] == '+' || text[i] == '-')) {
		*negative = text[i] == '-';
		i++;
	}
	if (i < len && text[i] == '0') {
		char prefix = i + 1 < len ? (char)(text[i + 1] | 0x20) : '\0';

		base = 8;
		if (prefix == 'x')
			base = 16;
		else if (prefix == 'b')
			base = 2;
		if (prefix == 'x' || prefix == 'o' || prefix == 'b')
			i += 2;
	}
	if (i == len)
		return false;
	for (; i < len; i++) {
		unsigned digit = (unsigned)digit_value(text[i]);

		if (digit >= base)
			return false;
		if (value > (ULLONG_MAX - digit) / base)
			return false;
		value = value * base + digit;
	}
	*magnitude = value;
	return true;
}

/* go-yaml's yamlStyleFloat: [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)? */
static bool matches_yaml_float(const char *text, size_t len)
{
	size_t i = 0, digits = 0;

	if (i < len && (text[i] == '+' || text[i] == '-'))
		i++;
	if (i < len && text[i] == '.') {
		for (i++; i < len && text[i] >= '0' && text[i] <= '9'; i++)
			digits++;
		if (!digits)
			return false;
	} else {
		for (; i < len && text[i] >= '0' && text[i] <= '9'; i++)
			digits++;
		if (!digits)
			return false;
		if (i < len && text[i] == '.')
			for (i++; i < len && text[i] >= '0' && text[i] <= '9'; i++)
				;
	}
	if (i < len && (text[i] == 'e' || text[i] == 'E')) {
		i++;
		if (i < len && (text[i] == '+' || text[i] == '-'))
			i++;
		digits = 0;
		for (; i < len && text[i] >= '0' && text[i] <= '9'; i++)
			digits++;
		if (!digits)
			return false;
	}
	return i == len;
}

/*
 * Whether Go's ParseFloat accepts text that starts with '.': digits with
 * single underscores between them, then an optional exponent that starts
 * with a digit.
 */
static bool matches_go_dot_float(const char *text, size_t len)
{
	size_t i = 1;
	bool after_digit = false;

	if (len < 2 || text[0] != '.')
		return false;
	for (; i < len && ((text[i] >= '0' && text[i] <= '9') || text[i] == '_'); i++) {
		if (text[i] == '_' && !after_digit)
			return false;
		after_digit = text[i] != '_';
	}
	if (!after_digit)
		return false;
	if (i < len && (text[i] == 'e' || text[i] == 'E')) {
		i++;
		if (i < len && (text[i] == '+' || text[i] == '-'))
			i++;
		if (i == len || text[i] < '0' || text[i] > '9')
			return false;
		for (; i < len && ((text[i] >= '0' && text[i] <= '9') || text[i] == '_'); i++) {
			if (text[i] == '_' && !after_digit)
				return false;
			after_digit = text[i] != '_';
		}
		if (!after_digit)
			return false;
	}
	return i == len;
}

/*
 * Converts float text that a pattern above has accepted. Returns false on
 * overflow, where Go's ParseFloat fails with ErrRange. An underflow to zero
 * is accepted, as Go accepts it.
 */
static bool convert_float(const char *text, double *out)
{
	double value = strtod(text, NULL);

	if (isinf(value))
		return false;
	*out = value;
	return true;
}

static void resolve_integer(unsigned long long magnitude, bool negative, bool signed_text,
			    struct scalar_value *out)
{
	if (!negative && magnitude <= (unsigned long long)LLONG_MAX) {
		out->type = DOC_INT;
		out->integer = (long long)magnitude;
	} else if (negative && magnitude <= (unsigned long long)LLONG_MAX + 1) {
		out->type = DOC_INT;
		out->integer = magnitude == (unsigned long long)LLONG_MAX + 1 ?
			LLONG_MIN : -(long long)magnitude;
	} else if (!negative && !signed_text) {
		/*
		 * go-yaml returns a uint64 here (ParseUint takes no sign). The tree
		 * has no unsigned type, so the value is a float whose text keeps
		 * every digit.
		 */
		out->type = DOC_FLOAT;
		out->real = (double)magnitude;
		out->unsigned_integer = true;
	}
}

/*
 * go-yaml's resolve() for text that starts with a digit, a sign or a dot:
 * integers and floats are read after every underscore is removed, except
 * that text starting with a dot goes to Go's ParseFloat as it is.
 */
static int resolve_number(const char *text, size_t len, struct scalar_value *out)
{
	char small[128];
	char *plain = small;
	unsigned long long magnitude;
	bool negative;
	size_t plain_len = 0;

	if (len >= sizeof(small)) {
		plain = malloc(len + 1);
		if (!plain)
			return -ENOMEM;
	}
	for (size_t i = 0; i < len; i++)
		if (text[i] != '_')
			plain[plain_len++] = text[i];
	plain[plain_len] = '\0';

	if (text[0] == '.') {
		if (matches_go_dot_float(text, len) && convert_float(plain, &out->real))
			out->type = DOC_FLOAT;
	} else if (parse_go_integer(plain, plain_len, &negative, &magnitude)) {
		resolve_integer(magnitude, negative, plain[0] == '+' || plain[0] == '-', out);
	}
	if (out->type == DOC_STRING && text[0] != '.' && matches_yaml_float(plain, plain_len) &&
	    convert_float(plain, &out->real))
		out->type = DOC_FLOAT;
	if (plain != small)
		free(plain);
	return 0;
}

/* Types a plain scalar as go-yaml v2 does when it decodes into interface{}. */
int resolve_plain(const char *text, size_t len, struct scalar_value *out)
{
	memset(out, 0, sizeof(*out));
	out->type = DOC_STRING;
	if (len == 0) {
		out->type = DOC_NULL;
		return 0;
	}
	/* go-yaml looks further only at text whose first byte is one of these. */
	if (!in_set(text[0], "+-0123456789.yYnNtTfFoO~"))
		return 0;
	if (resolve_word(text, len, out))
		return 0;
	if (in_set(text[0], "+-0123456789."))
		return resolve_number(text, len, out);
	return 0;
}

/* ---- Go-compatible float formatting ---- */

/*
 * Finds the fewest significant digits that read back as the same value
 * (as a float when single is set), like Go's shortest formatting. value
 * must be finite and not zero. Writes the digits without a point and the
 * decimal exponent of the first digit.
 */
static void shortest_digits(double value, bool single, char digits[24], int *count, int *exponent)
{
	char text[40];
	int max = single ? 9 : 17;

	for (int precision = 1; precision <= max; precision++) {
		snprintf(text, sizeof(text), "%.*e", precision - 1, value);
		if (precision == max)
			break;
		if (single ? strtof(text, NULL) == (float)value : strtod(text, NULL) == value)
			break;
	}
	*count = 0;
	for (const char *p = text; *p && *p != 'e'; p++)
		if (*p >= '0' && *p <= '9')
			digits[(*count)++] = *p;
	while (*count > 1 && digits[*count - 1] == '0')
		(*count)--;
	digits[*count] = '\0';
	*exponent = (int)strtol(strchr(text, 'e') + 1, NULL, 10);
}

static void put_char(char *out, size_t size, size_t *n, char c)
{
	if (*n + 1 < size)
		out[(*n)++] = c;
	out[*n] = '\0';
}

/* Writes the digits d.ddd x 10^exponent in Go's %f style. */
static void format_fixed(char *out, size_t size, bool negative, const char *digits, int count,
			 int exponent)
{
	int point = exponent + 1;   /* digits before the decimal point */
	size_t n = 0;

	out[0] = '\0';
	if (negative)
		put_char(out, size, &n, '-');
	if (point <= 0) {
		put_char(out, size, &n, '0');
		put_char(out, size, &n, '.');
		for (int i = point; i < 0; i++)
			put_char(out, size, &n, '0');
		for (int i = 0; i < count; i++)
			put_char(out, size, &n, digits[i]);
		return;
	}
	for (int i = 0; i < point || i < count; i++) {
		if (i == point)
			put_char(out, size, &n, '.');
		put_char(out, size, &n, i < count ? digits[i] : '0');
	}
}

/* Writes the digits in Go's %e style. Go's 'g' format pads the exponent to two digits. */
static void format_exponent(char *out, size_t size, bool negative, const char *digits, int count,
			    int exponent, bool pad_exponent)
{
	snprintf(out, size, pad_exponent ? "%s%c%s%.*se%+03d" : "%s%c%s%.*se%+d",
		 negative ? "-" : "", digits[0], count > 1 ? "." : "", count - 1, digits + 1,
		 exponent);
}

/* Formats a finite double as Go's encoding/json writes a float64. */
void format_json_float(double value, char *out, size_t size)
{
	char digits[24];
	int count, exponent;
	double magnitude = fabs(value);

	if (value == 0) {
		snprintf(out, size, "%s", signbit(value) ? "-0" : "0");
		return;
	}
	shortest_digits(magnitude, false, digits, &count, &exponent);
	if (magnitude < 1e-6 || magnitude >= 1e21)
		format_exponent(out, size, value < 0, digits, count, exponent, false);
	else
		format_fixed(out, size, value < 0, digits, count, exponent);
}

/* Formats a float key as sigs.k8s.io/yaml does: strconv.FormatFloat(v, 'g', -1, 32). */
void format_key_float(double value, char *out, size_t size)
{
	char digits[24];
	int count, exponent;
	float single = (float)value;

	if (isnan(single)) {
		snprintf(out, size, ".nan");
		return;
	}
	if (isinf(single)) {
		snprintf(out, size, "%s", single < 0 ? "-.inf" : ".inf");
		return;
	}
	if (single == 0) {
		snprintf(out, size, "%s", signbit(single) ? "-0" : "0");
		return;
	}
	shortest_digits(fabs((double)single), true, digits, &count, &exponent);
	if (exponent < -4 || exponent >= 6)
		format_exponent(out, size, single < 0, digits, count, exponent, true);
	else
		format_fixed(out, size, single < 0, digits, count, exponent);
}
