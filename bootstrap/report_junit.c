/*
 * The JUnit XML writer, in the layout Ant's JUnit report introduced and
 * Jenkins, GitLab and most CI systems read: <testsuites>, one <testsuite> per group, one <testcase>
 * per check.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "report.h"

/* Appends ' NAME="VALUE"' with the value escaped. */
static int append_attribute(struct buf *out, const char *name, const char *value)
{
	int r;

	r = buf_printf(out, " %s=\"", name);
	if (r == 0)
		r = report_escape_markup(out, value ? value : "");
	if (r == 0)
		r = buf_append_char(out, '"');
	return r;
}

static int append_count_attribute(struct buf *out, const char *name, size_t value)
{
	return buf_printf(out, " %s=\"%zu\"", name, value);
}

static int append_property(struct buf *out, const char *name, const char *value)
{
	int r;

	r = buf_append_str(out, "      <property");
	if (r == 0)
		r = append_attribute(out, "name", name);
	if (r == 0)
		r = append_attribute(out, "value", value);
	if (r == 0)
		r = buf_append_str(out, "/>\n");
	return r;
}

/* Appends the body of an element: "TITLE: evidence" and a remedy line. */
static int append_check_text(struct buf *out, const struct check_result *check, bool with_status)
{
	int r = 0;

	if (with_status)
		r = buf_printf(out, "%s: ", check_status_name(check->status));
	if (r == 0)
		r = report_escape_markup(out, check->title);
	if (r == 0 && check->evidence && check->evidence[0]) {
		r = buf_append_str(out, ": ");
		if (r == 0)
			r = report_escape_markup(out, check->evidence);
	}
	if (r == 0 && check->remedy && check->remedy[0] && check->status != CHECK_PASS) {
		r = buf_append_str(out, "&#10;remedy: ");
		if (r == 0)
			r = report_escape_markup(out, check->remedy);
	}
	return r;
}

static int append_testcase(struct buf *out, const struct check_result *check)
{
	int r;

	r = buf_append_str(out, "    <testcase");
	if (r == 0)
		r = append_attribute(out, "name", check->id);
	if (r == 0)
		r = append_attribute(out, "classname", check->group);
	if (r == 0)
		r = buf_append_str(out, ">\n");
	if (r < 0)
		return r;

	switch (check->status) {
	case CHECK_FAIL:
		r = buf_append_str(out, "      <failure type=\"fail\"");
		if (r == 0)
			r = append_attribute(out, "message",
					     check->remedy && check->remedy[0] ? check->remedy : check->evidence);
		if (r == 0)
			r = buf_append_char(out, '>');
		if (r == 0)
			r = append_check_text(out, check, false);
		if (r == 0)
			r = buf_append_str(out, "</failure>\n");
		break;
	case CHECK_SKIP:
		r = buf_append_str(out, "      <skipped");
		if (r == 0)
			r = append_attribute(out, "message", check->evidence);
		if (r == 0)
			r = buf_append_str(out, "/>\n");
		break;
	case CHECK_PASS:
	case CHECK_WARN:
		r = buf_append_str(out, "      <system-out>");
		if (r == 0)
			r = append_check_text(out, check, true);
		if (r == 0)
			r = buf_append_str(out, "</system-out>\n");
		break;
	}
	if (r == 0)
		r = buf_append_str(out, "    </testcase>\n");
	return r;
}

static int append_testsuite(struct buf *out, const struct report *report, size_t first,
			    const char *timestamp, const char *time_rfc3339)
{
	const char *group = report->checks[first].group;
	int r;

	r = buf_append_str(out, "  <testsuite");
	if (r == 0)
		r = append_attribute(out, "name", group[0] ? group : "checks");
	if (r == 0)
		r = append_count_attribute(out, "tests", report_group_total(report, group));
	if (r == 0)
		r = append_count_attribute(out, "failures", report_group_count(report, group, CHECK_FAIL));
	if (r == 0)
		r = buf_append_str(out, " errors=\"0\"");
	if (r == 0)
		r = append_count_attribute(out, "skipped", report_group_count(report, group, CHECK_SKIP));
	if (r == 0)
		r = append_attribute(out, "timestamp", timestamp);
	if (r == 0)
		r = buf_append_str(out, ">\n    <properties>\n");
	if (r == 0)
		r = append_property(out, "report", report->title);
	if (r == 0 && report->subject)
		r = append_property(out, "subject", report->subject);
	if (r == 0 && report->bundle)
		r = append_property(out, "bundle", report->bundle);
	if (r == 0)
		r = append_property(out, "time", time_rfc3339);
	if (r == 0)
		r = buf_append_str(out, "    </properties>\n");

	for (size_t i = first; i < report->count && r == 0; i++)
		if (strcmp(report->checks[i].group, group) == 0)
			r = append_testcase(out, &report->checks[i]);
	if (r == 0)
		r = buf_append_str(out, "  </testsuite>\n");
	return r;
}

int report_write_junit(const struct report *report, struct buf *out)
{
	char timestamp[32], time_rfc3339[32], name[128];
	struct tm tm;
	int r;

	if (!gmtime_r(&report->time, &tm))
		return -EINVAL;
	/* Ant's JUnit task writes the timestamp without a zone; Jenkins reads that form. It is UTC here. */
	if (strftime(timestamp, sizeof(timestamp), "%Y-%m-%dT%H:%M:%S", &tm) == 0 ||
	    strftime(time_rfc3339, sizeof(time_rfc3339), "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		return -EINVAL;
	snprintf(name, sizeof(name), "mlboot %s", report->title);

	r = buf_append_str(out, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites");
	if (r == 0)
		r = append_attribute(out, "name", name);
	if (r == 0)
		r = append_count_attribute(out, "tests", report->count);
	if (r == 0)
		r = append_count_attribute(out, "failures", report_count(report, CHECK_FAIL));
	if (r == 0)
		r = buf_append_str(out, " errors=\"0\">\n");
	for (size_t i = 0; i < report->count && r == 0; i++)
		if (report_group_starts_at(report, i))
			r = append_testsuite(out, report, i, timestamp, time_rfc3339);
	if (r == 0)
		r = buf_append_str(out, "</testsuites>\n");
	return r;
}
