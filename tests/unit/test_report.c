#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common.h"
#include "report.h"

/* Renders the text output into a new string (caller frees). */
static char *render_text(const struct report *report, bool colour)
{
	char *text = NULL;
	size_t len = 0;
	FILE *stream = open_memstream(&text, &len);

	assert_non_null(stream);
	assert_int_equal(report_write_text(report, stream, colour), 0);
	assert_int_equal(fclose(stream), 0);
	return text;
}

/* Parses the JSON output back into a document tree (caller frees). */
static struct doc_node *render_json(const struct report *report)
{
	struct buf json = BUF_INIT(1024 * 1024);
	struct doc_node *root = NULL;
	struct doc_error error;

	assert_int_equal(report_write_json(report, &json), 0);
	assert_int_equal(doc_parse(json.data, json.len, NULL, &root, &error), 0);
	buf_release(&json);
	return root;
}

static void fill_sample(struct report *report)
{
	assert_int_equal(report_init(report, "preflight", "https://127.0.0.1:6443 (context 'lab')"), 0);
	assert_int_equal(report_add(report, "cluster", "cluster.api", "API server reachable", CHECK_PASS,
				    NULL, "%s, round trip %d ms", "https://127.0.0.1:6443", 3), 0);
	assert_int_equal(report_add(report, "node cp1", "node.disk", "disk space", CHECK_WARN,
				    "free space under /var", "%d GiB free", 12), 0);
	assert_int_equal(report_add(report, "cluster", "cluster.storageclass", "default StorageClass",
				    CHECK_FAIL, "kubectl patch storageclass fast -p '{}'",
				    "none of the 2 StorageClasses is marked default"), 0);
	assert_int_equal(report_add(report, "cluster", "cluster.nodes", "every node Ready", CHECK_SKIP,
				    NULL, "skipped: the API server is unreachable"), 0);
}

static void test_report_counts(void **state)
{
	struct report report;

	(void)state;
	fill_sample(&report);
	assert_int_equal(report.count, 4);
	assert_int_equal(report_count(&report, CHECK_PASS), 1);
	assert_int_equal(report_count(&report, CHECK_WARN), 1);
	assert_int_equal(report_count(&report, CHECK_FAIL), 1);
	assert_int_equal(report_count(&report, CHECK_SKIP), 1);
	assert_string_equal(report.checks[0].evidence, "https://127.0.0.1:6443, round trip 3 ms");
	assert_null(report.checks[0].remedy);
	report_release(&report);
}

static void test_report_status_names(void **state)
{
	(void)state;
	assert_string_equal(check_status_name(CHECK_PASS), "pass");
	assert_string_equal(check_status_name(CHECK_WARN), "warn");
	assert_string_equal(check_status_name(CHECK_FAIL), "fail");
	assert_string_equal(check_status_name(CHECK_SKIP), "skip");
}

static void test_report_copies_strings(void **state)
{
	struct report report;
	char group[] = "cluster", remedy[] = "do this";

	(void)state;
	assert_int_equal(report_init(&report, "check", NULL), 0);
	assert_int_equal(report_add(&report, group, "id", "title", CHECK_FAIL, remedy, "seen"), 0);
	group[0] = 'X';
	remedy[0] = 'X';
	assert_string_equal(report.checks[0].group, "cluster");
	assert_string_equal(report.checks[0].remedy, "do this");
	report_release(&report);
}

static void test_report_text_layout(void **state)
{
	struct report report;
	char *text;

	(void)state;
	fill_sample(&report);
	text = render_text(&report, false);
	assert_string_equal(text,
		"mlboot preflight: https://127.0.0.1:6443 (context 'lab')\n"
		"\n"
		"cluster\n"
		"  PASS  API server reachable: https://127.0.0.1:6443, round trip 3 ms\n"
		"  FAIL  default StorageClass: none of the 2 StorageClasses is marked default\n"
		"        remedy: kubectl patch storageclass fast -p '{}'\n"
		"  SKIP  every node Ready: skipped: the API server is unreachable\n"
		"\n"
		"node cp1\n"
		"  WARN  disk space: 12 GiB free\n"
		"        remedy: free space under /var\n"
		"\n"
		"1 passed, 1 warnings, 1 failed, 1 skipped\n");
	free(text);
	report_release(&report);
}

static void test_report_text_remedy_only_when_failed_or_warned(void **state)
{
	struct report report;
	char *text;

	(void)state;
	assert_int_equal(report_init(&report, "check", NULL), 0);
	assert_int_equal(report_add(&report, "g", "a", "passed check", CHECK_PASS, "never shown",
				    "ok"), 0);
	assert_int_equal(report_add(&report, "g", "b", "skipped check", CHECK_SKIP, "never shown",
				    "x"), 0);
	text = render_text(&report, false);
	assert_null(strstr(text, "never shown"));
	assert_null(strstr(text, "remedy"));
	free(text);
	report_release(&report);
}

static void test_report_text_colour_on_request(void **state)
{
	struct report report;
	char *plain, *coloured;

	(void)state;
	fill_sample(&report);
	plain = render_text(&report, false);
	coloured = render_text(&report, true);
	assert_null(strchr(plain, '\033'));
	assert_non_null(strstr(coloured, "\033[32mPASS\033[0m"));
	assert_non_null(strstr(coloured, "\033[1;31mFAIL\033[0m"));
	assert_non_null(strstr(coloured, "\033[33mWARN\033[0m"));
	free(plain);
	free(coloured);
	report_release(&report);
}

static void test_report_text_escapes_cluster_data(void **state)
{
	struct report report;
	char *text;

	(void)state;
	assert_int_equal(report_init(&report, "preflight", "https://x\033]0;title\007"), 0);
	assert_int_equal(report_add(&report, "node \033[2J", "id", "title", CHECK_FAIL,
				    "run\r\nrm -rf /", "name \033[31mred\033[0m\ttab \xc2\x9b" "1m"), 0);
	text = render_text(&report, true);
	assert_non_null(strstr(text, "https://x\\x1b]0;title\\x07"));
	assert_non_null(strstr(text, "node \\x1b[2J"));
	assert_non_null(strstr(text, "name \\x1b[31mred\\x1b[0m\\ttab \\u009b1m"));
	assert_non_null(strstr(text, "remedy: run\\r\\nrm -rf /"));
	assert_null(strstr(text, "\033[2J"));
	assert_null(strstr(text, "\033]0"));
	assert_null(strstr(text, "\xc2\x9b"));
	free(text);
	report_release(&report);
}

static void test_escape_terminal_cases(void **state)
{
	static const struct {
		const char *input;
		const char *expected;
	} cases[] = {
		{ "plain text", "plain text" },
		{ "caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x98\x80",
		  "caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x98\x80" },
		{ "a\\b", "a\\\\b" },
		{ "tab\there", "tab\\there" },
		{ "bell\007", "bell\\x07" },
		{ "del\177", "del\\x7f" },
		{ "esc\033[0m", "esc\\x1b[0m" },
		{ "c1 \xc2\x85 next line", "c1 \\u0085 next line" },
		{ "invalid \xff byte", "invalid \\xff byte" },
		{ "cut \xe6\x97", "cut \\xe6\\x97" },
		{ "overlong \xc0\xaf", "overlong \\xc0\\xaf" },
		{ "surrogate \xed\xa0\x80", "surrogate \\xed\\xa0\\x80" },
		{ "rtl \xe2\x80\xae override", "rtl \\u202e override" },
		{ "isolate \xe2\x81\xa6", "isolate \\u2066" },
		{ "separator \xe2\x80\xa8", "separator \\u2028" },
	};

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct buf out = BUF_INIT(4096);

		assert_int_equal(report_escape_terminal(&out, cases[i].input), 0);
		assert_string_equal(buf_str(&out), cases[i].expected);
		buf_release(&out);
	}
}

static void test_report_groups_in_first_seen_order(void **state)
{
	struct report report;
	char *text, *b, *a, *second_a;

	(void)state;
	assert_int_equal(report_init(&report, "check", NULL), 0);
	assert_int_equal(report_add(&report, "b", "b.1", "first b", CHECK_PASS, NULL, "-"), 0);
	assert_int_equal(report_add(&report, "a", "a.1", "first a", CHECK_PASS, NULL, "-"), 0);
	assert_int_equal(report_add(&report, "b", "b.2", "second b", CHECK_PASS, NULL, "-"), 0);
	assert_int_equal(report_add(&report, "a", "a.2", "second a", CHECK_PASS, NULL, "-"), 0);
	text = render_text(&report, false);
	b = strstr(text, "\nb\n");
	a = strstr(text, "\na\n");
	second_a = strstr(text, "second a");
	assert_non_null(b);
	assert_non_null(a);
	assert_true(b < strstr(text, "second b"));
	assert_true(strstr(text, "second b") < a);
	assert_true(a < second_a);
	free(text);
	report_release(&report);
}

static void test_report_json_document(void **state)
{
	struct report report;
	struct doc_node *root;
	const struct doc_node *checks, *summary;

	(void)state;
	fill_sample(&report);
	report.time = 1700000000;
	root = render_json(&report);
	assert_string_equal(doc_get_string(root, "apiVersion"), "mlboot.dev/v1alpha1");
	assert_string_equal(doc_get_string(root, "kind"), "Report");
	assert_string_equal(doc_get_string(root, "title"), "preflight");
	assert_string_equal(doc_get_string(root, "subject"), "https://127.0.0.1:6443 (context 'lab')");
	assert_string_equal(doc_get_string(root, "time"), "2023-11-14T22:13:20Z");

	summary = doc_get(root, "summary");
	assert_non_null(summary);
	assert_int_equal(doc_get(summary, "total")->integer, 4);
	assert_int_equal(doc_get(summary, "passed")->integer, 1);
	assert_int_equal(doc_get(summary, "warnings")->integer, 1);
	assert_int_equal(doc_get(summary, "failed")->integer, 1);
	assert_int_equal(doc_get(summary, "skipped")->integer, 1);

	checks = doc_get(root, "checks");
	assert_non_null(checks);
	assert_int_equal(checks->type, DOC_SEQ);
	assert_int_equal(checks->count, 4);
	assert_string_equal(doc_get_string(checks->items[0], "group"), "cluster");
	assert_string_equal(doc_get_string(checks->items[0], "id"), "cluster.api");
	assert_string_equal(doc_get_string(checks->items[0], "title"), "API server reachable");
	assert_string_equal(doc_get_string(checks->items[0], "status"), "pass");
	assert_string_equal(doc_get_string(checks->items[0], "evidence"),
			    "https://127.0.0.1:6443, round trip 3 ms");
	assert_int_equal(doc_get(checks->items[0], "remedy")->type, DOC_NULL);
	assert_string_equal(doc_get_string(checks->items[2], "status"), "fail");
	assert_string_equal(doc_get_string(checks->items[2], "remedy"),
			    "kubectl patch storageclass fast -p '{}'");
	doc_free(root);
	report_release(&report);
}

static void test_report_json_null_subject(void **state)
{
	struct report report;
	struct doc_node *root;

	(void)state;
	assert_int_equal(report_init(&report, "preflight", NULL), 0);
	root = render_json(&report);
	assert_int_equal(doc_get(root, "subject")->type, DOC_NULL);
	assert_int_equal(doc_get(root, "checks")->count, 0);
	doc_free(root);
	report_release(&report);
}

static void test_report_json_escaping_round_trip(void **state)
{
	static const char evidence[] =
		"quote \" backslash \\ newline \n escape \033 tab \t unicode \xc3\xa9";
	struct buf json = BUF_INIT(1024 * 1024);
	struct report report;
	struct doc_node *root;
	const struct doc_node *checks;

	(void)state;
	assert_int_equal(report_init(&report, "preflight", "a \"quoted\" subject"), 0);
	assert_int_equal(report_add(&report, "cluster", "id", "title", CHECK_WARN, "line one\nline two",
				    "%s", evidence), 0);
	assert_int_equal(report_write_json(&report, &json), 0);
	/* No raw control character may reach the JSON text. */
	for (size_t i = 0; i + 1 < json.len; i++)
		assert_true((unsigned char)json.data[i] >= 0x20);
	root = render_json(&report);
	checks = doc_get(root, "checks");
	assert_string_equal(doc_get_string(checks->items[0], "evidence"), evidence);
	assert_string_equal(doc_get_string(checks->items[0], "remedy"), "line one\nline two");
	assert_string_equal(doc_get_string(root, "subject"), "a \"quoted\" subject");
	doc_free(root);
	buf_release(&json);
	report_release(&report);
}

static void test_report_truncates_long_evidence(void **state)
{
	struct report report;
	size_t len = 3 * (REPORT_TEXT_MAX / 3 + 100);
	char *long_text = malloc(len + 1);
	const char *evidence;
	size_t kept;

	(void)state;
	assert_non_null(long_text);
	/* Three-byte characters, so that the cut falls inside one and must move back. */
	for (size_t i = 0; i + 2 < len; i += 3)
		memcpy(long_text + i, "\xe6\x97\xa5", 3);
	long_text[len] = '\0';
	assert_int_equal(report_init(&report, "check", NULL), 0);
	assert_int_equal(report_add(&report, "g", "id", "t", CHECK_FAIL, long_text, "%s", long_text), 0);
	evidence = report.checks[0].evidence;
	assert_true(strlen(evidence) <= REPORT_TEXT_MAX);
	assert_string_equal(evidence + strlen(evidence) - strlen(" [truncated]"), " [truncated]");
	kept = strlen(evidence) - strlen(" [truncated]");
	assert_int_equal(kept % 3, 0);
	assert_memory_equal(evidence + kept - 3, "\xe6\x97\xa5", 3);
	assert_true(strlen(report.checks[0].remedy) <= REPORT_TEXT_MAX);
	free(long_text);
	report_release(&report);
}

static void test_report_rejects_past_max_checks(void **state)
{
	struct report report;

	(void)state;
	assert_int_equal(report_init(&report, "check", NULL), 0);
	for (size_t i = 0; i < REPORT_MAX_CHECKS; i++)
		assert_int_equal(report_add(&report, "g", "id", "t", CHECK_PASS, NULL, "x"), 0);
	assert_int_equal(report_add(&report, "g", "id", "t", CHECK_PASS, NULL, "x"), -E2BIG);
	assert_int_equal(report.count, REPORT_MAX_CHECKS);
	report_release(&report);
}

static void test_report_release_accepts_zeroed(void **state)
{
	struct report report;

	(void)state;
	memset(&report, 0, sizeof(report));
	report_release(&report);
	report_release(NULL);
}

static void test_report_set_subject_replaces(void **state)
{
	struct report report;

	(void)state;
	assert_int_equal(report_init(&report, "preflight", "old"), 0);
	assert_int_equal(report_set_subject(&report, "new"), 0);
	assert_string_equal(report.subject, "new");
	assert_int_equal(report_set_subject(&report, NULL), 0);
	assert_null(report.subject);
	report_release(&report);
}

#define THREADS 8
#define ADDS_PER_THREAD 500

struct adder {
	struct report *report;
	int number;
	int failures;
};

static void *add_many(void *data)
{
	struct adder *adder = data;
	char group[32], id[32];

	snprintf(group, sizeof(group), "node %d", adder->number);
	for (int i = 0; i < ADDS_PER_THREAD; i++) {
		snprintf(id, sizeof(id), "%d.%d", adder->number, i);
		if (report_add(adder->report, group, id, "check", (enum check_status)(i % 4),
			       i % 2 ? "remedy" : NULL, "evidence %d of thread %d", i, adder->number) != 0)
			adder->failures++;
	}
	return NULL;
}

static void test_report_add_from_threads(void **state)
{
	pthread_t threads[THREADS];
	struct adder adders[THREADS];
	struct report report;
	bool *seen;

	(void)state;
	assert_int_equal(report_init(&report, "check", NULL), 0);
	for (int t = 0; t < THREADS; t++) {
		adders[t] = (struct adder){ .report = &report, .number = t };
		assert_int_equal(pthread_create(&threads[t], NULL, add_many, &adders[t]), 0);
	}
	for (int t = 0; t < THREADS; t++) {
		assert_int_equal(pthread_join(threads[t], NULL), 0);
		assert_int_equal(adders[t].failures, 0);
	}
	assert_int_equal(report.count, THREADS * ADDS_PER_THREAD);

	/* Every result arrived whole and exactly once. */
	seen = calloc(THREADS * ADDS_PER_THREAD, sizeof(*seen));
	assert_non_null(seen);
	for (size_t i = 0; i < report.count; i++) {
		const struct check_result *check = &report.checks[i];
		char expected[64];
		int thread, number;

		assert_int_equal(sscanf(check->id, "%d.%d", &thread, &number), 2);
		assert_true(thread >= 0 && thread < THREADS);
		assert_true(number >= 0 && number < ADDS_PER_THREAD);
		assert_false(seen[thread * ADDS_PER_THREAD + number]);
		seen[thread * ADDS_PER_THREAD + number] = true;
		snprintf(expected, sizeof(expected), "evidence %d of thread %d", number, thread);
		assert_string_equal(check->evidence, expected);
		snprintf(expected, sizeof(expected), "node %d", thread);
		assert_string_equal(check->group, expected);
	}
	assert_int_equal(report_count(&report, CHECK_PASS), THREADS * ADDS_PER_THREAD / 4);
	free(seen);
	report_release(&report);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_report_counts),
		cmocka_unit_test(test_report_status_names),
		cmocka_unit_test(test_report_copies_strings),
		cmocka_unit_test(test_report_text_layout),
		cmocka_unit_test(test_report_text_remedy_only_when_failed_or_warned),
		cmocka_unit_test(test_report_text_colour_on_request),
		cmocka_unit_test(test_report_text_escapes_cluster_data),
		cmocka_unit_test(test_escape_terminal_cases),
		cmocka_unit_test(test_report_groups_in_first_seen_order),
		cmocka_unit_test(test_report_json_document),
		cmocka_unit_test(test_report_json_null_subject),
		cmocka_unit_test(test_report_json_escaping_round_trip),
		cmocka_unit_test(test_report_truncates_long_evidence),
		cmocka_unit_test(test_report_rejects_past_max_checks),
		cmocka_unit_test(test_report_release_accepts_zeroed),
		cmocka_unit_test(test_report_set_subject_replaces),
		cmocka_unit_test(test_report_add_from_threads),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
