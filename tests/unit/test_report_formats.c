#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "common.h"
#include "report.h"

#define JUNIT_SCHEMA "tests/fixtures/check/junit.xsd"
#define XMLLINT "/usr/bin/xmllint"

/* Evidence as an API server or a node could send it: markup, quotes, controls, a bidi override, bad UTF-8. */
#define HOSTILE "<script>alert(\"x\")</script> & 'q' \x1b[31mred\x1b[0m \xe2\x80\xae" "evil \xff end\\n"

static void fill_report(struct report *report)
{
	assert_int_equal(report_init(report, "check", "https://127.0.0.1:6443 (context 'lab')"), 0);
	assert_int_equal(report_set_bundle(report, "/srv/platform.bundle (platform lab 1.0)"), 0);
	report->time = 1700000000;
	assert_int_equal(report_add(report, "cluster", "cluster.api", "API server reachable", CHECK_PASS, NULL,
				    "https://127.0.0.1:6443, round trip 3 ms"), 0);
	assert_int_equal(report_add(report, "kserve", "kserve.prediction", "model answers a prediction", CHECK_FAIL,
				    "check the model's pods", "%s", HOSTILE), 0);
	assert_int_equal(report_add(report, "air gap", "airgap.bundle", "bundle signature", CHECK_WARN,
				    "sign the bundle", "unsigned"), 0);
	assert_int_equal(report_add(report, "node n1", "node.images", "images <present>", CHECK_SKIP, NULL,
				    "skipped: no bundle"), 0);
	assert_int_equal(report_add(report, "kserve", "kserve.inferenceservice", "InferenceService Ready",
				    CHECK_PASS, NULL, "ml/iris Ready"), 0);
}

static char *render(int (*writer)(const struct report *, struct buf *), const struct report *report)
{
	struct buf out = BUF_INIT(16 * 1024 * 1024);
	char *text;

	assert_int_equal(writer(report, &out), 0);
	text = buf_steal(&out);
	assert_non_null(text);
	return text;
}

static size_t count_of(const char *text, const char *needle)
{
	size_t n = 0;

	for (const char *p = strstr(text, needle); p; p = strstr(p + 1, needle))
		n++;
	return n;
}

static void test_markup_escape(void **state)
{
	struct buf out = BUF_INIT(4096);

	(void)state;
	assert_int_equal(report_escape_markup(&out, "a<b>&\"c\"'d'\t\n\\"), 0);
	assert_string_equal(buf_str(&out), "a&lt;b&gt;&amp;&quot;c&quot;&#39;d&#39;&#9;&#10;\\\\");
	buf_reset(&out);
	assert_int_equal(report_escape_markup(&out, "\x01\x1b\x7f\xc2\x85\xe2\x80\xae\xef\xbf\xbe\xff"), 0);
	assert_string_equal(buf_str(&out), "\\x01\\x1b\\x7f\\u0085\\u202e\\ufffe\\xff");
	buf_reset(&out);
	assert_int_equal(report_escape_markup(&out, "caf\xc3\xa9 \xe6\x97\xa5"), 0);
	assert_string_equal(buf_str(&out), "caf\xc3\xa9 \xe6\x97\xa5");
	buf_release(&out);
}

static void test_junit_structure(void **state)
{
	struct report report;
	char *xml;

	(void)state;
	fill_report(&report);
	xml = render(report_write_junit, &report);
	assert_non_null(strstr(xml, "<testsuites name=\"mlboot check\" tests=\"5\" failures=\"1\" errors=\"0\">"));
	/* Groups in the order of their first check; kserve gathers both of its checks. */
	assert_non_null(strstr(xml, "<testsuite name=\"kserve\" tests=\"2\" failures=\"1\" errors=\"0\" skipped=\"0\" "
				    "timestamp=\"2023-11-14T22:13:20\">"));
	assert_true(strstr(xml, "name=\"cluster\"") < strstr(xml, "name=\"kserve\""));
	assert_true(strstr(xml, "name=\"kserve\"") < strstr(xml, "name=\"air gap\""));
	assert_int_equal(count_of(xml, "<testsuite "), 4);
	assert_int_equal(count_of(xml, "<testcase "), 5);
	assert_non_null(strstr(xml, "<failure type=\"fail\" message=\"check the model&#39;s pods\">"));
	assert_non_null(strstr(xml, "<skipped message=\"skipped: no bundle\"/>"));
	assert_non_null(strstr(xml, "<system-out>warn: bundle signature: unsigned&#10;remedy: sign the bundle</system-out>"));
	assert_non_null(strstr(xml, "<property name=\"bundle\" value=\"/srv/platform.bundle (platform lab 1.0)\"/>"));
	/* Nothing of the hostile evidence survives as markup or as a control character. */
	assert_null(strstr(xml, "<script"));
	assert_null(strchr(xml, '\x1b'));
	assert_null(strstr(xml, "\xe2\x80\xae"));
	assert_non_null(strstr(xml, "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;q&#39; \\x1b[31mred"));
	free(xml);
	report_release(&report);
}

/* Runs xmllint --schema on the JUnit output; the test is skipped where xmllint is not installed. */
static void test_junit_validates_against_schema(void **state)
{
	char path[] = "/tmp/mlboot-junit-XXXXXX";
	struct report report;
	char *xml;
	pid_t pid;
	int fd, status = -1;

	(void)state;
	if (access(XMLLINT, X_OK) != 0 || access(JUNIT_SCHEMA, R_OK) != 0) {
		skip();
		return;
	}
	fill_report(&report);
	xml = render(report_write_junit, &report);
	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(file_write_full(fd, xml, strlen(xml)), 0);
	close(fd);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		execl(XMLLINT, "xmllint", "--noout", "--schema", JUNIT_SCHEMA, path, (char *)NULL);
		_exit(127);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	unlink(path);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	free(xml);
	report_release(&report);
}

static void test_html_self_contained_and_escaped(void **state)
{
	struct report report;
	char *html;

	(void)state;
	fill_report(&report);
	html = render(report_write_html, &report);
	assert_true(strncmp(html, "<!DOCTYPE html>\n<html lang=\"en\">", 31) == 0);
	assert_non_null(strstr(html, "<title>mlboot check report: FAILED</title>"));
	assert_non_null(strstr(html, "@media print"));
	/* No scripts and nothing to fetch: no src attributes, imports, url() or links out of the page. */
	assert_null(strstr(html, "<script"));
	assert_null(strstr(html, "src="));
	assert_null(strstr(html, "@import"));
	assert_null(strstr(html, "url("));
	assert_null(strstr(html, "href=\"http"));
	assert_null(strstr(html, "<link"));
	/* The hostile evidence appears twice (needs attention, and its group), escaped both times. */
	assert_int_equal(count_of(html, "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;"), 2);
	assert_null(strchr(html, '\x1b'));
	assert_null(strstr(html, "\xe2\x80\xae"));
	assert_non_null(strstr(html, "\\u202eevil \\xff end\\\\n"));
	assert_non_null(strstr(html, "images &lt;present&gt;"));
	/* The facts of the run. */
	assert_non_null(strstr(html, "<dt>Cluster</dt><dd>https://127.0.0.1:6443 (context &#39;lab&#39;)</dd>"));
	assert_non_null(strstr(html, "<dt>Bundle</dt><dd>/srv/platform.bundle (platform lab 1.0)</dd>"));
	assert_non_null(strstr(html, "<dt>Time</dt><dd>2023-11-14 22:13:20 UTC</dd>"));
	assert_non_null(strstr(html, "<div class=\"tile fail\"><b>1</b><span>failed</span></div>"));
	/* Failed and warned checks are listed first, linked to their rows. */
	assert_non_null(strstr(html, "<h2>Needs attention <small>1 failed, 1 warning</small></h2>"));
	assert_non_null(strstr(html, "<a href=\"#check-1\">"));
	assert_non_null(strstr(html, "<tr id=\"check-1\" class=\"fail\">"));
	assert_non_null(strstr(html, "<b>Remedy:</b> check the model&#39;s pods"));
	free(html);
	report_release(&report);
}

static void test_html_verdicts(void **state)
{
	struct report report;
	char *html;

	(void)state;
	assert_int_equal(report_init(&report, "check", NULL), 0);
	assert_int_equal(report_add(&report, "cluster", "cluster.api", "API", CHECK_PASS, NULL, "ok"), 0);
	html = render(report_write_html, &report);
	assert_non_null(strstr(html, "<div class=\"verdict pass\">PASSED</div>"));
	assert_null(strstr(html, "Needs attention"));
	assert_non_null(strstr(html, "<dt>Cluster</dt><dd>not known</dd>"));
	assert_non_null(strstr(html, "<dt>Bundle</dt><dd>none</dd>"));
	free(html);
	assert_int_equal(report_add(&report, "cluster", "cluster.version", "version", CHECK_WARN, "upgrade", "old"), 0);
	html = render(report_write_html, &report);
	assert_non_null(strstr(html, "<div class=\"verdict warn\">PASSED WITH WARNINGS</div>"));
	free(html);
	report_release(&report);
}

static void test_json_bundle_member(void **state)
{
	struct report report;
	struct buf json = BUF_INIT(1024 * 1024);
	struct doc_node *root = NULL;
	struct doc_error error;

	(void)state;
	assert_int_equal(report_init(&report, "preflight", NULL), 0);
	assert_int_equal(report_write_json(&report, &json), 0);
	assert_null(strstr(buf_str(&json), "\"bundle\""));
	buf_reset(&json);
	assert_int_equal(report_set_bundle(&report, "b.bundle \"x\""), 0);
	assert_int_equal(report_write_json(&report, &json), 0);
	assert_int_equal(doc_parse(json.data, json.len, NULL, &root, &error), 0);
	assert_string_equal(doc_get_string(root, "bundle"), "b.bundle \"x\"");
	doc_free(root);
	buf_release(&json);
	report_release(&report);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_markup_escape),
		cmocka_unit_test(test_junit_structure),
		cmocka_unit_test(test_junit_validates_against_schema),
		cmocka_unit_test(test_html_self_contained_and_escaped),
		cmocka_unit_test(test_html_verdicts),
		cmocka_unit_test(test_json_bundle_member),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
