/*
 * Image discovery: the project's fixtures against their expected list, and
 * single rules with the values that must not count.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "images.h"

/* Fixture paths, relative to this file (tests run from the repository root). */
#define FIXTURES "tests/fixtures/images/discovery/"

static int discover_text(const char *text, struct image_set *set)
{
	struct doc_stream stream = { 0 };
	struct doc_error error;
	int r;

	r = doc_parse_stream(text, strlen(text), NULL, &stream, &error);
	if (r < 0)
		fail_msg("fixture text does not parse: %s", error.message);
	r = image_discover(&stream, "inline.yaml", set);
	doc_stream_release(&stream);
	return r;
}

static void discover_file(const char *path, struct image_set *set)
{
	struct buf data = BUF_INIT(1024 * 1024);
	struct doc_stream stream = { 0 };
	struct doc_error error;

	if (file_read_all(path, 1024 * 1024, &data) < 0)
		fail_msg("cannot read '%s': run from the repository root", path);
	assert_int_equal(doc_parse_stream(data.data, data.len, NULL, &stream, &error), 0);
	assert_int_equal(image_discover(&stream, path, set), 0);
	doc_stream_release(&stream);
	buf_release(&data);
}

static void test_discovery_fixtures_match(void **state)
{
	struct buf expected = BUF_INIT(1024 * 1024);
	struct image_set set;
	char *line, *save = NULL;
	size_t count = 0;

	(void)state;
	image_set_init(&set);
	discover_file(FIXTURES "workloads.yaml", &set);
	discover_file(FIXTURES "configuration.yaml", &set);
	assert_int_equal(set.problem_total, 0);
	assert_int_equal(file_read_all(FIXTURES "expected.txt", 1024 * 1024, &expected), 0);
	for (line = strtok_r(expected.data, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		if (count >= set.count)
			fail_msg("expected '%s', and only %zu images were found", line, set.count);
		if (strcmp(set.entries[count].reference, line) != 0)
			fail_msg("image %zu is '%s', expected '%s'", count, set.entries[count].reference, line);
		count++;
	}
	if (count != set.count)
		fail_msg("found %zu images, expected %zu; the first extra one is '%s'", set.count, count,
			 set.entries[count].reference);
	buf_release(&expected);
	image_set_release(&set);
}

static void test_discovery_records_sources(void **state)
{
	static const char text[] =
		"apiVersion: apps/v1\n"
		"kind: Deployment\n"
		"metadata: {name: web, namespace: shop}\n"
		"spec:\n"
		"  template:\n"
		"    spec:\n"
		"      containers:\n"
		"      - name: a\n"
		"        image: nginx:1.25\n"
		"      - name: b\n"
		"        image: docker.io/library/nginx:1.25\n";
	struct image_set set;
	const struct image_entry *entry;

	(void)state;
	image_set_init(&set);
	assert_int_equal(discover_text(text, &set), 0);
	assert_int_equal(set.count, 1);
	entry = image_set_find(&set, "nginx:1.25");
	assert_non_null(entry);
	assert_int_equal(entry->source_count, 2);
	assert_string_equal(entry->sources[0].file, "inline.yaml");
	assert_string_equal(entry->sources[0].object, "Deployment/shop/web");
	assert_string_equal(entry->sources[0].field, "spec.template.spec.containers[0].image");
	assert_int_equal(entry->sources[0].line, 9);
	assert_string_equal(entry->sources[1].field, "spec.template.spec.containers[1].image");
	assert_null(image_set_find(&set, "nginx:1.26"));
	image_set_release(&set);
}

static void test_discovery_invalid_container_image(void **state)
{
	static const char text[] =
		"kind: Pod\n"
		"metadata: {name: p}\n"
		"spec:\n"
		"  containers:\n"
		"  - {name: a, image: \"Bad Image\\u0001\"}\n"
		"  - {name: b, image: \"\"}\n"
		"  - {name: c}\n";
	struct image_set set;

	(void)state;
	image_set_init(&set);
	assert_int_equal(discover_text(text, &set), 0);
	assert_int_equal(set.count, 0);
	assert_int_equal(set.problem_total, 1);
	/* The value is escaped before it reaches a message. */
	assert_non_null(strstr(set.problems[0], "inline.yaml:5: Pod/p: spec.containers[0].image: invalid image reference 'Bad Image?'"));
	image_set_release(&set);
}

static void test_discovery_istio_values(void **state)
{
	/* An image with "/" is used as it is; global.variant is appended to the tag. */
	static const char text[] =
		"kind: ConfigMap\n"
		"metadata: {name: istio-sidecar-injector, namespace: istio-system}\n"
		"data:\n"
		"  values: '{\"global\":{\"hub\":\"docker.io/istio\",\"tag\":1.20,\"proxy\":{\"image\":\"my.registry/istio/proxy:7\"}},"
		"\"image\":\"pilot\",\"hub\":\"\",\"tag\":\"\"}'\n";
	struct image_set set;

	(void)state;
	image_set_init(&set);
	assert_int_equal(discover_text(text, &set), 0);
	assert_int_equal(set.count, 2);
	assert_string_equal(set.entries[0].reference, "docker.io/istio/pilot:1.20");
	assert_string_equal(set.entries[1].reference, "my.registry/istio/proxy:7");
	image_set_release(&set);
}

static void test_discovery_skips_crds_and_secrets(void **state)
{
	static const char text[] =
		"kind: CustomResourceDefinition\n"
		"spec: {containers: [{image: example/crd:1}]}\n"
		"---\n"
		"kind: Secret\n"
		"data: {IMAGE: quay.io/a/b:1}\n"
		"spec: {containers: [{image: example/secret:1}]}\n"
		"---\n"
		"kind: ConfigMap\n"
		"metadata: {name: c}\n"
		"data:\n"
		"  _example: 'image: quay.io/example/only:1'\n"
		"  note: 'not yaml: [unclosed'\n"
		"  number: 5\n";
	struct image_set set;

	(void)state;
	image_set_init(&set);
	assert_int_equal(discover_text(text, &set), 0);
	assert_int_equal(set.count, 0);
	assert_int_equal(set.problem_total, 0);
	image_set_release(&set);
}

static void test_image_set_add(void **state)
{
	struct image_set set;

	(void)state;
	image_set_init(&set);
	assert_int_equal(image_set_add(&set, "b", NULL), 0);
	assert_int_equal(image_set_add(&set, "a", NULL), 0);
	assert_int_equal(image_set_add(&set, "docker.io/library/a:latest", NULL), 0);
	assert_int_equal(image_set_add(&set, "NOT VALID", NULL), MLB_EINPUT);
	assert_int_equal(set.count, 2);
	assert_string_equal(set.entries[0].reference, "docker.io/library/a:latest");
	assert_int_equal(set.entries[0].source_total, 2);
	assert_int_equal(set.entries[0].source_count, 0);
	image_set_release(&set);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_discovery_fixtures_match),
		cmocka_unit_test(test_discovery_records_sources),
		cmocka_unit_test(test_discovery_invalid_container_image),
		cmocka_unit_test(test_discovery_istio_values),
		cmocka_unit_test(test_discovery_skips_crds_and_secrets),
		cmocka_unit_test(test_image_set_add),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
