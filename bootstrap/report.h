/*
 * Check reports: what preflight and check found, one result per check, and
 * the ways to print it (text for a terminal, JSON for machines; JUnit and
 * HTML for hand-over).
 *
 * A report may be filled from several threads at once: report_add() and
 * report_set_subject() lock. The readers (report_count() and the writers)
 * do not lock, so call them once every thread that adds has finished.
 * Every string is copied.
 *
 * Strings are stored as given. The text writer escapes control characters
 * (and other characters that can change what a terminal shows) in every
 * field, since evidence carries names and messages from the API server and
 * the nodes. The JSON writer escapes what JSON requires.
 */
#ifndef MLBOOT_BOOTSTRAP_REPORT_H
#define MLBOOT_BOOTSTRAP_REPORT_H

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <time.h>

#include "common.h"

enum check_status {
	CHECK_PASS,
	CHECK_WARN,
	CHECK_FAIL,
	CHECK_SKIP,
};

struct check_result {
	char *group;        /* "cluster", "node cp1", "cert-manager", ... */
	char *id;           /* stable identifier, such as "cluster.version" */
	char *title;        /* one line for a person */
	enum check_status status;
	char *evidence;     /* what was seen: values, names, counts */
	char *remedy;       /* what to do; NULL when passed */
};

struct report {
	char *title;        /* "preflight", "check" */
	char *subject;      /* the cluster: server URL and context; may be NULL */
	char *bundle;       /* the bundle the checks compared against; may be NULL */
	time_t time;        /* when the report was started; report_init() sets it */
	struct check_result *checks;
	size_t count;
	size_t capacity;
	pthread_mutex_t lock;
};

/* subject may be NULL and set later with report_set_subject(). */
int report_init(struct report *report, const char *title, const char *subject);
/* Frees every string and destroys the lock; accepts a zeroed report. */
void report_release(struct report *report);
int report_set_subject(struct report *report, const char *subject);
/* Names the bundle in the report (JSON "bundle", and the HTML and JUnit headers); NULL clears it. */
int report_set_bundle(struct report *report, const char *bundle);

/*
 * Adds one result; evidence is a printf format. remedy may be NULL.
 * Evidence and remedy longer than REPORT_TEXT_MAX bytes are cut at a
 * character boundary and end in "[truncated]". Returns -E2BIG when the
 * report already contains REPORT_MAX_CHECKS results, or -ENOMEM.
 */
#define REPORT_TEXT_MAX   (64 * 1024)
#define REPORT_MAX_CHECKS 100000
int report_add(struct report *report, const char *group, const char *id, const char *title,
	       enum check_status status, const char *remedy, const char *evidence_format, ...)
	__attribute__((format(printf, 7, 8)));

/*
 * Whether check i is the first of its group. The writers list groups in
 * the order of their first check, and each group's checks in the order
 * they were added.
 */
bool report_group_starts_at(const struct report *report, size_t i);
/* Counts the checks of a group that have status. */
size_t report_group_count(const struct report *report, const char *group, enum check_status status);
/* Counts every check of a group. */
size_t report_group_total(const struct report *report, const char *group);

/* "pass", "warn", "fail" or "skip": the names the JSON document uses. */
const char *check_status_name(enum check_status status);
size_t report_count(const struct report *report, enum check_status status);

/*
 * One line per check grouped by group, a summary line last; colour only when
 * asked. Groups appear in the order of their first check, checks in the
 * order they were added. Returns -EIO when writing to out failed.
 */
int report_write_text(const struct report *report, FILE *out, bool colour);
/* The versioned JSON document described in docs/report-format.md. */
int report_write_json(const struct report *report, struct buf *out);
/*
 * JUnit XML as CI systems read it (tests/fixtures/check/junit.xsd): one testsuite
 * per group and one testcase per check, named by its id. A failed check
 * has a <failure> with the remedy as its message and the evidence and
 * remedy as its text; a skipped check has a <skipped> with the reason.
 * Passed and warned checks carry their title and evidence in <system-out>.
 */
int report_write_junit(const struct report *report, struct buf *out);
/*
 * One self-contained HTML page: inline CSS, no scripts, no external
 * resources, printable. It shows the subject, bundle and time, a
 * summary, the failed and warned checks first, then every check by
 * group with its evidence and remedy. Every field is escaped.
 */
int report_write_html(const struct report *report, struct buf *out);

/*
 * Appends text with every character escaped that could change a terminal's
 * state or hide text. C0 controls and DEL become \t, \n, \r or \xHH, and C1
 * controls, bidirectional formatting characters and the Unicode line and
 * paragraph separators become \uHHHH. Bytes that are not valid UTF-8
 * become \xHH. A backslash becomes \\, so that an escape cannot be faked.
 */
int report_escape_terminal(struct buf *out, const char *text);

/*
 * Appends text for an XML or HTML document, inside an element or an
 * attribute value in double or single quotes. &, <, >, " and ' become
 * entities, and tab, line feed and carriage return become character
 * references, so attribute values keep them. Everything that
 * report_escape_terminal() escapes, and U+FFFE and U+FFFF (which XML 1.0
 * does not allow), becomes the same visible \xHH or \uHHHH text, and a
 * backslash becomes \\.
 */
int report_escape_markup(struct buf *out, const char *text);

#endif
