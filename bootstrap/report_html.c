/*
 * The HTML writer: one page that a field engineer can hand to a customer.
 * It must read the same offline, in any browser and on paper, so it has
 * inline CSS only, no scripts, no fonts or images to fetch, and print
 * rules. Every text from the report goes through report_escape_markup().
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "report.h"

#ifndef MLBOOT_VERSION
#define MLBOOT_VERSION "unknown"
#endif

static const char html_style[] =
	":root{--pass:#1a7f37;--pass-bg:#dafbe1;--warn:#9a6700;--warn-bg:#fff8c5;"
	"--fail:#cf222e;--fail-bg:#ffebe9;--skip:#57606a;--skip-bg:#eaeef2;"
	"--line:#d0d7de;--soft:#eaeef2;--text:#1f2328;--muted:#59636e}\n"
	"*{box-sizing:border-box}\n"
	"html{-webkit-print-color-adjust:exact;print-color-adjust:exact}\n"
	"body{margin:0;background:#f6f8fa;color:var(--text);"
	"font:14px/1.45 system-ui,-apple-system,\"Segoe UI\",\"DejaVu Sans\",\"Liberation Sans\",Arial,sans-serif}\n"
	"main{max-width:1120px;margin:0 auto;padding:28px 36px 40px;background:#fff;min-height:100vh}\n"
	"header{display:flex;justify-content:space-between;align-items:flex-start;gap:24px;"
	"padding-bottom:16px;border-bottom:3px solid var(--line)}\n"
	"header.pass{border-bottom-color:var(--pass)}header.warn{border-bottom-color:var(--warn)}"
	"header.fail{border-bottom-color:var(--fail)}\n"
	"h1{font-size:24px;font-weight:650;margin:0 0 2px}\n"
	".lead{margin:0;color:var(--muted)}\n"
	".verdict{flex:none;color:#fff;font-weight:700;font-size:15px;letter-spacing:.06em;"
	"padding:9px 18px;border-radius:6px;white-space:nowrap}\n"
	".verdict.pass{background:var(--pass)}.verdict.warn{background:var(--warn)}"
	".verdict.fail{background:var(--fail)}\n"
	"dl.facts{display:grid;grid-template-columns:max-content 1fr;gap:4px 18px;margin:16px 0 0}\n"
	"dl.facts dt{color:var(--muted);font-weight:600}dl.facts dd{margin:0;overflow-wrap:anywhere}\n"
	".summary{display:grid;grid-template-columns:repeat(5,1fr);gap:12px;margin:22px 0 10px}\n"
	".tile{border:1px solid var(--line);border-left-width:5px;border-radius:6px;padding:10px 14px}\n"
	".tile b{display:block;font-size:26px;line-height:1.15}\n"
	".tile span{color:var(--muted);font-size:12px;text-transform:uppercase;letter-spacing:.05em}\n"
	".tile.pass{border-left-color:var(--pass)}.tile.warn{border-left-color:var(--warn)}"
	".tile.fail{border-left-color:var(--fail)}.tile.skip{border-left-color:var(--skip)}"
	".tile.total{border-left-color:var(--text)}\n"
	".bar{display:flex;height:8px;border-radius:4px;overflow:hidden;background:var(--soft);margin:0 0 8px}\n"
	".bar span{display:block;height:100%}\n"
	".bar .pass{background:var(--pass)}.bar .warn{background:#d4a72c}"
	".bar .fail{background:var(--fail)}.bar .skip{background:#afb8c1}\n"
	"h2{font-size:17px;margin:30px 0 8px;display:flex;align-items:baseline;gap:12px}\n"
	"h2 small{font-size:12px;font-weight:400;color:var(--muted)}\n"
	"ol.attention{margin:0;padding:0;list-style:none;border:1px solid var(--line);border-radius:6px}\n"
	"ol.attention li{padding:10px 14px;border-top:1px solid var(--soft)}\n"
	"ol.attention li:first-child{border-top:0}\n"
	"ol.attention a{color:inherit;text-decoration:none}\n"
	".where{color:var(--muted);font-weight:400}\n"
	"table{width:100%;border-collapse:collapse;table-layout:fixed}\n"
	"col.status{width:84px}col.check{width:30%}\n"
	"th{text-align:left;font-size:11px;font-weight:600;text-transform:uppercase;letter-spacing:.05em;"
	"color:var(--muted);border-bottom:1px solid var(--line);padding:6px 8px}\n"
	"td{border-bottom:1px solid var(--soft);padding:8px;vertical-align:top;overflow-wrap:anywhere}\n"
	"tr.fail td:first-child{box-shadow:inset 3px 0 var(--fail)}"
	"tr.warn td:first-child{box-shadow:inset 3px 0 #d4a72c}\n"
	".pill{display:inline-block;min-width:50px;text-align:center;font-size:11px;font-weight:700;"
	"letter-spacing:.05em;padding:2px 7px;border-radius:10px}\n"
	".pill.pass{color:var(--pass);background:var(--pass-bg)}.pill.warn{color:var(--warn);background:var(--warn-bg)}"
	".pill.fail{color:var(--fail);background:var(--fail-bg)}.pill.skip{color:var(--skip);background:var(--skip-bg)}\n"
	".title{font-weight:600}\n"
	".id,code{font-family:ui-monospace,\"DejaVu Sans Mono\",\"Liberation Mono\",monospace;font-size:12px;color:var(--muted)}\n"
	".evidence{white-space:pre-wrap}\n"
	".skip .evidence{color:var(--muted)}\n"
	".remedy{margin-top:6px;padding:6px 10px;border-left:3px solid var(--fail);background:var(--fail-bg);"
	"border-radius:0 4px 4px 0;white-space:pre-wrap}\n"
	".remedy.warn{border-left-color:#d4a72c;background:var(--warn-bg)}\n"
	".remedy b{font-weight:600}\n"
	"footer{margin-top:34px;padding-top:10px;border-top:1px solid var(--line);color:var(--muted);font-size:12px}\n"
	"@media (max-width:760px){main{padding:18px}.summary{grid-template-columns:repeat(2,1fr)}"
	"header{flex-direction:column}col.check{width:40%}}\n"
	"@page{margin:14mm 12mm}\n"
	"@media print{body{background:#fff;font-size:10pt}main{max-width:none;padding:0;min-height:0}"
	"thead{display:table-header-group}tr,li{break-inside:avoid}h2{break-after:avoid}"
	".tile b{font-size:20px}a{color:inherit;text-decoration:none}}\n";

static const char *status_class(enum check_status status)
{
	return check_status_name(status);
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
	return "?";
}

static int append_escaped(struct buf *out, const char *text)
{
	return report_escape_markup(out, text ? text : "");
}

/* Appends "<TAG class="CLASS">escaped text</TAG>". */
static int append_element(struct buf *out, const char *tag, const char *class_name, const char *text)
{
	int r;

	r = buf_printf(out, "<%s class=\"%s\">", tag, class_name);
	if (r == 0)
		r = append_escaped(out, text);
	if (r == 0)
		r = buf_printf(out, "</%s>", tag);
	return r;
}

static int append_fact(struct buf *out, const char *name, const char *value)
{
	int r;

	r = buf_printf(out, "<dt>%s</dt><dd>", name);
	if (r == 0)
		r = append_escaped(out, value);
	if (r == 0)
		r = buf_append_str(out, "</dd>\n");
	return r;
}

static int append_remedy(struct buf *out, const struct check_result *check)
{
	int r;

	if (!check->remedy || !check->remedy[0] ||
	    (check->status != CHECK_FAIL && check->status != CHECK_WARN))
		return 0;
	r = buf_printf(out, "<div class=\"remedy%s\"><b>Remedy:</b> ",
		       check->status == CHECK_WARN ? " warn" : "");
	if (r == 0)
		r = append_escaped(out, check->remedy);
	if (r == 0)
		r = buf_append_str(out, "</div>");
	return r;
}

struct verdict {
	const char *class_name;
	const char *label;
	const char *sentence;
};

static struct verdict report_verdict(const struct report *report)
{
	if (report_count(report, CHECK_FAIL) > 0)
		return (struct verdict){ "fail", "FAILED", "Some checks failed: the platform needs attention." };
	if (report_count(report, CHECK_WARN) > 0)
		return (struct verdict){ "warn", "PASSED WITH WARNINGS",
					 "Every check passed; some warnings should be looked at." };
	return (struct verdict){ "pass", "PASSED", "Every check passed." };
}

static int append_header(struct buf *out, const struct report *report, const char *time_text,
			 const struct verdict *verdict)
{
	int r;

	r = buf_printf(out, "<header class=\"%s\"><div><h1>mlboot ", verdict->class_name);
	if (r == 0)
		r = append_escaped(out, report->title);
	if (r == 0)
		r = buf_printf(out, " report</h1><p class=\"lead\">%s</p>\n<dl class=\"facts\">\n",
			       verdict->sentence);
	if (r == 0)
		r = append_fact(out, "Cluster", report->subject ? report->subject : "not known");
	if (r == 0)
		r = append_fact(out, "Bundle", report->bundle ? report->bundle : "none");
	if (r == 0)
		r = append_fact(out, "Time", time_text);
	if (r == 0)
		r = append_fact(out, "mlboot", MLBOOT_VERSION);
	if (r == 0)
		r = buf_printf(out, "</dl></div><div class=\"verdict %s\">%s</div></header>\n",
			       verdict->class_name, verdict->label);
	return r;
}

static int append_summary(struct buf *out, const struct report *report)
{
	static const struct {
		enum check_status status;
		const char *label;
	} tiles[] = {
		{ CHECK_PASS, "passed" },
		{ CHECK_WARN, "warnings" },
		{ CHECK_FAIL, "failed" },
		{ CHECK_SKIP, "skipped" },
	};
	int r;

	r = buf_append_str(out, "<section class=\"summary\">\n");
	for (size_t i = 0; i < ARRAY_SIZE(tiles) && r == 0; i++)
		r = buf_printf(out, "<div class=\"tile %s\"><b>%zu</b><span>%s</span></div>\n",
			       status_class(tiles[i].status), report_count(report, tiles[i].status),
			       tiles[i].label);
	if (r == 0)
		r = buf_printf(out, "<div class=\"tile total\"><b>%zu</b><span>checks</span></div>\n"
			       "</section>\n<div class=\"bar\">", report->count);
	for (size_t i = 0; i < ARRAY_SIZE(tiles) && r == 0 && report->count > 0; i++) {
		size_t count = report_count(report, tiles[i].status);

		if (count > 0)
			r = buf_printf(out, "<span class=\"%s\" style=\"width:%.2f%%\"></span>",
				       status_class(tiles[i].status),
				       100.0 * (double)count / (double)report->count);
	}
	if (r == 0)
		r = buf_append_str(out, "</div>\n");
	return r;
}

/* The failed and warned checks, first the failed, each linked to its row. */
static int append_attention(struct buf *out, const struct report *report)
{
	static const enum check_status order[] = { CHECK_FAIL, CHECK_WARN };
	size_t failed = report_count(report, CHECK_FAIL), warned = report_count(report, CHECK_WARN);
	int r;

	if (failed == 0 && warned == 0)
		return 0;
	r = buf_printf(out, "<h2>Needs attention <small>%zu failed, %zu warning%s</small></h2>\n"
		       "<ol class=\"attention\">\n", failed, warned, warned == 1 ? "" : "s");
	for (size_t k = 0; k < ARRAY_SIZE(order) && r == 0; k++) {
		for (size_t i = 0; i < report->count && r == 0; i++) {
			const struct check_result *check = &report->checks[i];

			if (check->status != order[k])
				continue;
			r = buf_printf(out, "<li><a href=\"#check-%zu\"><span class=\"pill %s\">%s</span> "
				       "<span class=\"title\">", i, status_class(check->status),
				       status_label(check->status));
			if (r == 0)
				r = append_escaped(out, check->title);
			if (r == 0)
				r = buf_append_str(out, "</span> <span class=\"where\">&#8212; ");
			if (r == 0)
				r = append_escaped(out, check->group);
			if (r == 0)
				r = buf_append_str(out, "</span></a>");
			if (r == 0)
				r = append_element(out, "div", "evidence", check->evidence);
			if (r == 0)
				r = append_remedy(out, check);
			if (r == 0)
				r = buf_append_str(out, "</li>\n");
		}
	}
	if (r == 0)
		r = buf_append_str(out, "</ol>\n");
	return r;
}

static int append_row(struct buf *out, const struct check_result *check, size_t index)
{
	int r;

	r = buf_printf(out, "<tr id=\"check-%zu\" class=\"%s\"><td><span class=\"pill %s\">%s</span></td><td>",
		       index, status_class(check->status), status_class(check->status),
		       status_label(check->status));
	if (r == 0)
		r = append_element(out, "div", "title", check->title);
	if (r == 0)
		r = append_element(out, "div", "id", check->id);
	if (r == 0)
		r = buf_append_str(out, "</td><td>");
	if (r == 0)
		r = append_element(out, "div", "evidence", check->evidence);
	if (r == 0)
		r = append_remedy(out, check);
	if (r == 0)
		r = buf_append_str(out, "</td></tr>\n");
	return r;
}

static int append_group(struct buf *out, const struct report *report, size_t first)
{
	const char *group = report->checks[first].group;
	int r;

	r = buf_append_str(out, "<section>\n<h2>");
	if (r == 0)
		r = append_escaped(out, group[0] ? group : "checks");
	if (r == 0)
		r = buf_printf(out, " <small>%zu passed, %zu warnings, %zu failed, %zu skipped</small></h2>\n",
			       report_group_count(report, group, CHECK_PASS),
			       report_group_count(report, group, CHECK_WARN),
			       report_group_count(report, group, CHECK_FAIL),
			       report_group_count(report, group, CHECK_SKIP));
	if (r == 0)
		r = buf_append_str(out, "<table>\n<colgroup><col class=\"status\"><col class=\"check\"><col></colgroup>\n"
				   "<thead><tr><th>Status</th><th>Check</th><th>Evidence</th></tr></thead>\n"
				   "<tbody>\n");
	for (size_t i = first; i < report->count && r == 0; i++)
		if (strcmp(report->checks[i].group, group) == 0)
			r = append_row(out, &report->checks[i], i);
	if (r == 0)
		r = buf_append_str(out, "</tbody>\n</table>\n</section>\n");
	return r;
}

int report_write_html(const struct report *report, struct buf *out)
{
	struct verdict verdict = report_verdict(report);
	char time_text[48];
	struct tm tm;
	int r;

	if (!gmtime_r(&report->time, &tm))
		return -EINVAL;
	if (strftime(time_text, sizeof(time_text), "%Y-%m-%d %H:%M:%S UTC", &tm) == 0)
		return -EINVAL;

	r = buf_append_str(out, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
			   "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
			   "<meta name=\"generator\" content=\"mlboot " MLBOOT_VERSION "\">\n<title>mlboot ");
	if (r == 0)
		r = append_escaped(out, report->title);
	if (r == 0)
		r = buf_printf(out, " report: %s</title>\n<style>\n%s</style>\n</head>\n<body>\n<main>\n",
			       verdict.label, html_style);
	if (r == 0)
		r = append_header(out, report, time_text, &verdict);
	if (r == 0)
		r = append_summary(out, report);
	if (r == 0)
		r = append_attention(out, report);
	for (size_t i = 0; i < report->count && r == 0; i++)
		if (report_group_starts_at(report, i))
			r = append_group(out, report, i);
	if (r == 0)
		r = buf_printf(out, "<footer>Written by mlboot %s at %s. Each check lists what it saw "
			       "(evidence) and, when it failed or warned, what to do (remedy). Check ids "
			       "are stable between versions and listed in the mlboot documentation.</footer>\n"
			       "</main>\n</body>\n</html>\n", MLBOOT_VERSION, time_text);
	return r;
}
