#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "report.h"

#define TRUNCATED_MARK " [truncated]"

/* ANSI SGR sequences for the status labels of the text output. */
#define COLOUR_PASS  "\033[32m"
#define COLOUR_WARN  "\033[33m"
#define COLOUR_FAIL  "\033[1;31m"
#define COLOUR_SKIP  "\033[2m"
#define COLOUR_RESET "\033[0m"

int report_init(struct report *report, const char *title, const char *subject)
{
	int r = -ENOMEM;

	memset(report, 0, sizeof(*report));
	report->time = time(NULL);
	report->title = strdup(title ? title : "");
	if (!report->title)
		goto out;
	if (subject) {
		report->subject = strdup(subject);
		if (!report->subject)
			goto out;
	}
	r = -pthread_mutex_init(&report->lock, NULL);
	if (r < 0)
		goto out;
	return 0;
out:
	free(report->title);
	free(report->subject);
	memset(report, 0, sizeof(*report));
	return r;
}

static void check_result_release(struct check_result *check)
{
	free(check->group);
	free(check->id);
	free(check->title);
	free(check->evidence);
	free(check->remedy);
}

void report_release(struct report *report)
{
	if (!report || !report->title)
		return;
	for (size_t i = 0; i < report->count; i++)
		check_result_release(&report->checks[i]);
	free(report->checks);
	free(report->title);
	free(report->subject);
	free(report->bundle);
	pthread_mutex_destroy(&report->lock);
	memset(report, 0, sizeof(*report));
}

int report_set_subject(struct report *report, const char *subject)
{
	char *copy = NULL;

	if (subject) {
		copy = strdup(subject);
		if (!copy)
			return -ENOMEM;
	}
	pthread_mutex_lock(&report->lock);
	free(report->subject);
	report->subject = copy;
	pthread_mutex_unlock(&report->lock);
	return 0;
}

int report_set_bundle(struct report *report, const char *bundle)
{
	char *copy = NULL;

	if (bundle) {
		copy = strdup(bundle);
		if (!copy)
			return -ENOMEM;
	}
	pthread_mutex_lock(&report->lock);
	free(report->bundle);
	report->bundle = copy;
	pthread_mutex_unlock(&report->lock);
	return 0;
}

/* Returns the length of a prefix of text[0..len) that ends on a UTF-8 character boundary. */
static size_t utf8_boundary(const char *text, size_t len)
{
	while (len > 0 && ((unsigned char)text[len] & 0xC0) == 0x80)
		len--;
	return len;
}

/*
 * Copies text, cutting it at REPORT_TEXT_MAX bytes with a mark. NULL stays
 * NULL; *out is NULL only then.
 */
static int copy_bounded(const char *text, char **out)
{
	size_t len, keep;
	char *copy;

	*out = NULL;
	if (!text)
		return 0;
	len = strlen(text);
	keep = len;
	if (len > REPORT_TEXT_MAX)
		keep = utf8_boundary(text, REPORT_TEXT_MAX - strlen(TRUNCATED_MARK));
	copy = malloc(keep + strlen(TRUNCATED_MARK) + 1);
	if (!copy)
		return -ENOMEM;
	memcpy(copy, text, keep);
	copy[keep] = '\0';
	if (keep < len)
		strcat(copy, TRUNCATED_MARK);
	*out = copy;
	return 0;
}

__attribute__((format(printf, 2, 0)))
static int format_bounded(char **out, const char *format, va_list args)
{
	char *text = NULL;
	va_list copy;
	int n, r;

	*out = NULL;
	va_copy(copy, args);
	n = vsnprintf(NULL, 0, format, copy);
	va_end(copy);
	if (n < 0)
		return -EINVAL;
	text = malloc((size_t)n + 1);
	if (!text)
		return -ENOMEM;
	vsnprintf(text, (size_t)n + 1, format, args);
	r = copy_bounded(text, out);
	free(text);
	return r;
}

/* Makes room for one more result; the caller holds the lock. */
static int checks_reserve_locked(struct report *report)
{
	struct check_result *checks;
	size_t capacity;

	if (report->count >= REPORT_MAX_CHECKS)
		return -E2BIG;
	if (report->count < report->capacity)
		return 0;
	capacity = report->capacity ? report->capacity * 2 : 16;
	checks = reallocarray(report->checks, capacity, sizeof(*checks));
	if (!checks)
		return -ENOMEM;
	report->checks = checks;
	report->capacity = capacity;
	return 0;
}

int report_add(struct report *report, const char *group, const char *id, const char *title,
	       enum check_status status, const char *remedy, const char *evidence_format, ...)
{
	struct check_result check = { .status = status };
	va_list args;
	int r = -ENOMEM;

	check.group = strdup(group ? group : "");
	check.id = strdup(id ? id : "");
	check.title = strdup(title ? title : "");
	if (!check.group || !check.id || !check.title)
		goto out;
	if (evidence_format) {
		va_start(args, evidence_format);
		r = format_bounded(&check.evidence, evidence_format, args);
		va_end(args);
	} else {
		r = copy_bounded("", &check.evidence);
	}
	if (r < 0)
		goto out;
	r = copy_bounded(remedy, &check.remedy);
	if (r < 0)
		goto out;

	pthread_mutex_lock(&report->lock);
	r = checks_reserve_locked(report);
	if (r == 0) {
		report->checks[report->count++] = check;
		memset(&check, 0, sizeof(check));
	}
	pthread_mutex_unlock(&report->lock);
out:
	check_result_release(&check);
	return r;
}

const char *check_status_name(enum check_status status)
{
	switch (status) {
	case CHECK_PASS:
		return "pass";
	case CHECK_WARN:
		return "warn";
	case CHECK_FAIL:
		return "fail";
	case CHECK_SKIP:
		return "skip";
	}
	return "unknown";
}

size_t report_count(const struct report *report, enum check_status status)
{
	size_t n = 0;

	for (size_t i = 0; i < report->count; i++)
		if (report->checks[i].status == status)
			n++;
	return n;
}

/*
 * Decodes one UTF-8 character at p (which has at least one byte before the
 * NUL). Returns its length in bytes and stores the code point, or returns 0
 * for a byte that does not start a valid, shortest-form sequence.
 */
static size_t utf8_decode(const unsigned char *p, uint32_t *code_point)
{
	uint32_t c;
	size_t len;

	if (p[0] < 0x80) {
		*code_point = p[0];
		return 1;
	}
	if (p[0] >= 0xC2 && p[0] <= 0xDF) {
		c = p[0] & 0x1F;
		len = 2;
	} else if (p[0] >= 0xE0 && p[0] <= 0xEF) {
		c = p[0] & 0x0F;
		len = 3;
	} else if (p[0] >= 0xF0 && p[0] <= 0xF4) {
		c = p[0] & 0x07;
		len = 4;
	} else {
		return 0;
	}
	for (size_t i = 1; i < len; i++) {
		/* The NUL at the end fails this test, so reading stops there. */
		if ((p[i] & 0xC0) != 0x80)
			return 0;
		c = (c << 6) | (p[i] & 0x3F);
	}
	if ((len == 3 && c < 0x800) || (len == 4 && (c < 0x10000 || c > 0x10FFFF)))
		return 0;
	if (c >= 0xD800 && c <= 0xDFFF)
		return 0;
	*code_point = c;
	return len;
}

static bool code_point_needs_escape(uint32_t c)
{
	return c < 0x20 || c == 0x7F ||
	       (c >= 0x80 && c <= 0x9F) ||       /* C1 controls, CSI among them */
	       c == 0x061C ||                     /* Arabic letter mark */
	       c == 0x200E || c == 0x200F ||      /* left-to-right and right-to-left marks */
	       c == 0x2028 || c == 0x2029 ||      /* line and paragraph separators */
	       (c >= 0x202A && c <= 0x202E) ||    /* bidirectional embeddings and overrides */
	       (c >= 0x2066 && c <= 0x2069);      /* bidirectional isolates */
}

int report_escape_terminal(struct buf *out, const char *text)
{
	const unsigned char *p = (const unsigned char *)text;
	int r = 0;

	while (*p && r == 0) {
		uint32_t c = 0;
		size_t len = utf8_decode(p, &c);

		if (len == 0) {
			r = buf_printf(out, "\\x%02x", *p);
			p++;
			continue;
		}
		if (c == '\\')
			r = buf_append_str(out, "\\\\");
		else if (c == '\n')
			r = buf_append_str(out, "\\n");
		else if (c == '\t')
			r = buf_append_str(out, "\\t");
		else if (c == '\r')
			r = buf_append_str(out, "\\r");
		else if (c < 0x80 && code_point_needs_escape(c))
			r = buf_printf(out, "\\x%02x", (unsigned)c);
		else if (code_point_needs_escape(c))
			r = buf_printf(out, "\\u%04x", (unsigned)c);
		else
			r = buf_append(out, p, len);
		p += len;
	}
	return r;
}

int report_escape_markup(struct buf *out, const char *text)
{
	const unsigned char *p = (const unsigned char *)text;
	int r = 0;

	while (*p && r == 0) {
		uint32_t c = 0;
		size_t len = utf8_decode(p, &c);

		if (len == 0) {
			r = buf_printf(out, "\\x%02x", *p);
			p++;
			continue;
		}
		switch (c) {
		case '&':
			r = buf_append_str(out, "&amp;");
			break;
		case '<':
			r = buf_append_str(out, "&lt;");
			break;
		case '>':
			r = buf_append_str(out, "&gt;");
			break;
		case '"':
			r = buf_append_str(out, "&quot;");
			break;
		case '\'':
			r = buf_append_str(out, "&#39;");
			break;
		case '\t':
			r = buf_append_str(out, "&#9;");
			break;
		case '\n':
			r = buf_append_str(out, "&#10;");
			break;
		case '\r':
			r = buf_append_str(out, "&#13;");
			break;
		case '\\':
			r = buf_append_str(out, "\\\\");
			break;
		default:
			if (c < 0x80 && code_point_needs_escape(c))
				r = buf_printf(out, "\\x%02x", (unsigned)c);
			else if (code_point_needs_escape(c) || c == 0xFFFE || c == 0xFFFF)
				r = buf_printf(out, "\\u%04x", (unsigned)c);
			else
				r = buf_append(out, p, len);
			break;
		}
		p += len;
	}
	return r;
}

static const char *status_label(enum check_status status)
{
	switch (status) {
	case CHECK_PASS:
		return "PASS";
	case CHECK_WARN:
		return "WARN";
	case CHECK_FAIL:
		return "FAIL";
	case CHECK_SKIP:
		return "SKIP";
	}
	return "????";
}

static const char *status_colour(enum check_status status)
{
	switch (status) {
	case CHECK_PASS:
		return COLOUR_PASS;
	case CHECK_WARN:
		return COLOUR_WARN;
	case CHECK_FAIL:
		return COLOUR_FAIL;
	case CHECK_SKIP:
		return COLOUR_SKIP;
	}
	return "";
}

static int text_append_check(struct buf *line, const struct check_result *check, bool colour)
{
	int r;

	r = buf_printf(line, "  %s%s%s  ", colour ? status_colour(check->status) : "",
		       status_label(check->status), colour ? COLOUR_RESET : "");
	if (r == 0)
		r = report_escape_terminal(line, check->title);
	if (r == 0 && check->evidence && check->evidence[0]) {
		r = buf_append_str(line, ": ");
		if (r == 0)
			r = report_escape_terminal(line, check->evidence);
	}
	if (r == 0)
		r = buf_append_char(line, '\n');
	if (r == 0 && check->remedy && check->remedy[0] &&
	    (check->status == CHECK_FAIL || check->status == CHECK_WARN)) {
		r = buf_append_str(line, "        remedy: ");
		if (r == 0)
			r = report_escape_terminal(line, check->remedy);
		if (r == 0)
			r = buf_append_char(line, '\n');
	}
	return r;
}

/* Whether the group of check i already appeared among checks 0..i-1. */
static bool group_seen_before(const struct report *report, size_t i)
{
	for (size_t j = 0; j < i; j++)
		if (strcmp(report->checks[j].group, report->checks[i].group) == 0)
			return true;
	return false;
}

bool report_group_starts_at(const struct report *report, size_t i)
{
	return i < report->count && !group_seen_before(report, i);
}

size_t report_group_count(const struct report *report, const char *group, enum check_status status)
{
	size_t n = 0;

	for (size_t i = 0; i < report->count; i++)
		if (report->checks[i].status == status && strcmp(report->checks[i].group, group) == 0)
			n++;
	return n;
}

size_t report_group_total(const struct report *report, const char *group)
{
	size_t n = 0;

	for (size_t i = 0; i < report->count; i++)
		if (strcmp(report->checks[i].group, group) == 0)
			n++;
	return n;
}

/* Sends the text gathered in line to out and empties line. */
static int text_flush(struct buf *line, FILE *out)
{
	int r = 0;

	if (line->len > 0 && fwrite(line->data, 1, line->len, out) != line->len)
		r = -EIO;
	buf_reset(line);
	return r;
}

int report_write_text(const struct report *report, FILE *out, bool colour)
{
	/* Each check's fields are at most REPORT_TEXT_MAX bytes, and escaping at most quadruples them. */
	struct buf line = BUF_INIT(16 * (size_t)REPORT_TEXT_MAX + 1024);
	int r;

	r = buf_append_str(&line, "mlboot ");
	if (r == 0)
		r = report_escape_terminal(&line, report->title);
	if (r == 0 && report->subject) {
		r = buf_append_str(&line, ": ");
		if (r == 0)
			r = report_escape_terminal(&line, report->subject);
	}
	if (r == 0)
		r = buf_append_char(&line, '\n');
	if (r == 0)
		r = text_flush(&line, out);

	/* Quadratic in the number of groups, which stays small (one per node at most). */
	for (size_t i = 0; i < report->count && r == 0; i++) {
		const char *group = report->checks[i].group;

		if (group_seen_before(report, i))
			continue;
		r = buf_append_char(&line, '\n');
		if (r == 0)
			r = report_escape_terminal(&line, group[0] ? group : "checks");
		if (r == 0)
			r = buf_append_char(&line, '\n');
		for (size_t j = i; j < report->count && r == 0; j++) {
			if (strcmp(report->checks[j].group, group) != 0)
				continue;
			r = text_append_check(&line, &report->checks[j], colour);
			if (r == 0)
				r = text_flush(&line, out);
		}
	}
	if (r == 0)
		r = buf_printf(&line, "\n%zu passed, %zu warnings, %zu failed, %zu skipped\n",
			       report_count(report, CHECK_PASS), report_count(report, CHECK_WARN),
			       report_count(report, CHECK_FAIL), report_count(report, CHECK_SKIP));
	if (r == 0)
		r = text_flush(&line, out);
	if (r == 0 && fflush(out) != 0)
		r = -EIO;
	buf_release(&line);
	return r;
}

static int json_append_string(struct buf *out, const char *text)
{
	if (!text)
		return buf_append_str(out, "null");
	return doc_write_json_string(out, text, strlen(text));
}

/* Appends ,"key":value where value is a JSON string (or null). */
static int json_append_member(struct buf *out, const char *key, const char *value, bool first)
{
	int r;

	r = buf_printf(out, "%s\"%s\":", first ? "" : ",", key);
	if (r == 0)
		r = json_append_string(out, value);
	return r;
}

static int json_append_check(struct buf *out, const struct check_result *check)
{
	int r;

	r = buf_append_char(out, '{');
	if (r == 0)
		r = json_append_member(out, "group", check->group, true);
	if (r == 0)
		r = json_append_member(out, "id", check->id, false);
	if (r == 0)
		r = json_append_member(out, "title", check->title, false);
	if (r == 0)
		r = json_append_member(out, "status", check_status_name(check->status), false);
	if (r == 0)
		r = json_append_member(out, "evidence", check->evidence, false);
	if (r == 0)
		r = json_append_member(out, "remedy", check->remedy, false);
	if (r == 0)
		r = buf_append_char(out, '}');
	return r;
}

int report_write_json(const struct report *report, struct buf *out)
{
	char stamp[32];
	struct tm tm;
	int r;

	if (!gmtime_r(&report->time, &tm))
		return -EINVAL;
	if (strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		return -EINVAL;

	r = buf_append_str(out, "{\"apiVersion\":\"mlboot.dev/v1alpha1\",\"kind\":\"Report\"");
	if (r == 0)
		r = json_append_member(out, "title", report->title, false);
	if (r == 0)
		r = json_append_member(out, "subject", report->subject, false);
	if (r == 0 && report->bundle)
		r = json_append_member(out, "bundle", report->bundle, false);
	if (r == 0)
		r = json_append_member(out, "time", stamp, false);
	if (r == 0)
		r = buf_printf(out, ",\"summary\":{\"total\":%zu,\"passed\":%zu,\"warnings\":%zu,"
			       "\"failed\":%zu,\"skipped\":%zu}",
			       report->count, report_count(report, CHECK_PASS),
			       report_count(report, CHECK_WARN), report_count(report, CHECK_FAIL),
			       report_count(report, CHECK_SKIP));
	if (r == 0)
		r = buf_append_str(out, ",\"checks\":[");
	for (size_t i = 0; i < report->count && r == 0; i++) {
		if (i > 0)
			r = buf_append_char(out, ',');
		if (r == 0)
			r = json_append_check(out, &report->checks[i]);
	}
	if (r == 0)
		r = buf_append_str(out, "]}\n");
	return r;
}
