/*
 * Image references: normalisation as the container tools do it, tags,
 * digests, registry hosts and ports, and invalid input.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "images.h"

#define DIGEST_A "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

struct normalise_case {
	const char *input;
	const char *expected;
};

static const struct normalise_case valid_cases[] = {
	{ "nginx", "docker.io/library/nginx:latest" },
	{ "nginx:1.25", "docker.io/library/nginx:1.25" },
	{ "library/nginx", "docker.io/library/nginx:latest" },
	{ "docker.io/nginx", "docker.io/library/nginx:latest" },
	{ "index.docker.io/library/redis:7", "docker.io/library/redis:7" },
	{ "kserve/agent:v0.16.0", "docker.io/kserve/agent:v0.16.0" },
	{ "quay.io/jetstack/cert-manager-controller:v1.19.4", "quay.io/jetstack/cert-manager-controller:v1.19.4" },
	{ "host:5000/a/b:tag", "host:5000/a/b:tag" },
	{ "host:5000/a/b", "host:5000/a/b:latest" },
	{ "127.0.0.1:5000/demo/multi:1.0", "127.0.0.1:5000/demo/multi:1.0" },
	{ "localhost/app", "localhost/app:latest" },
	{ "localhost:5000/app:1", "localhost:5000/app:1" },
	{ "Example.COM/app:1", "Example.COM/app:1" },
	{ "gcr.io/knative-releases/knative.dev/serving/cmd/queue@" DIGEST_A,
	  "gcr.io/knative-releases/knative.dev/serving/cmd/queue@" DIGEST_A },
	{ "nginx@" DIGEST_A, "docker.io/library/nginx@" DIGEST_A },
	{ "quay.io/a/b:1.0@" DIGEST_A, "quay.io/a/b:1.0@" DIGEST_A },
	{ "gcr.io/ml-pipeline/minio:RELEASE.2019-08-14T20-37-41Z-license-compliance",
	  "gcr.io/ml-pipeline/minio:RELEASE.2019-08-14T20-37-41Z-license-compliance" },
	{ "gcr.io/tfx-oss-public/ml_metadata_store_server:1.14.0",
	  "gcr.io/tfx-oss-public/ml_metadata_store_server:1.14.0" },
	{ "a__b/c--d:_x", "docker.io/a__b/c--d:_x" },
	{ "busybox:1.28", "docker.io/library/busybox:1.28" },
};

static const char *const invalid_cases[] = {
	"",
	"Nginx",
	"example/UpperCase:1",
	"nginx:",
	":tag",
	"nginx:-bad",
	"nginx@sha256:123",
	"nginx@sha512:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
	"nginx@SHA256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
	"nginx@sha256:0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef",
	"a//b",
	"/a",
	"a/",
	"a..b",
	"-a",
	"a-",
	"a___b",
	"host:99999/a",
	"host:/a",
	"-host.com/a",
	"http://quay.io/a:1",
	"{{ .ProxyImage }}",
	"$VOLUME_VIEWER_IMAGE",
	"quay.io/a b:1",
	"true false",
};

static void test_reference_normalises(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(valid_cases) / sizeof(valid_cases[0]); i++) {
		struct image_reference ref;
		char text[IMAGE_REFERENCE_MAX];

		if (image_reference_parse(valid_cases[i].input, &ref) != 0)
			fail_msg("'%s' was rejected", valid_cases[i].input);
		assert_int_equal(image_reference_format(&ref, text, sizeof(text)), 0);
		if (strcmp(text, valid_cases[i].expected) != 0)
			fail_msg("'%s' became '%s', expected '%s'", valid_cases[i].input, text, valid_cases[i].expected);
	}
}

static void test_reference_rejects_invalid(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(invalid_cases) / sizeof(invalid_cases[0]); i++) {
		struct image_reference ref;

		if (image_reference_parse(invalid_cases[i], &ref) != MLB_EINPUT)
			fail_msg("'%s' was accepted", invalid_cases[i]);
		assert_string_equal(ref.registry, "");
	}
	assert_int_equal(image_reference_parse(NULL, &(struct image_reference){ 0 }), MLB_EINPUT);
}

static void test_reference_parts(void **state)
{
	struct image_reference ref;

	(void)state;
	assert_int_equal(image_reference_parse("host:5000/team/app:2.0@" DIGEST_A, &ref), 0);
	assert_string_equal(ref.registry, "host:5000");
	assert_string_equal(ref.repository, "team/app");
	assert_string_equal(ref.tag, "2.0");
	assert_string_equal(ref.digest, DIGEST_A);

	assert_int_equal(image_reference_parse("app@" DIGEST_A, &ref), 0);
	assert_string_equal(ref.tag, "");
	assert_string_equal(ref.repository, "library/app");
}

static void test_reference_length_limits(void **state)
{
	char text[600];
	struct image_reference ref;

	(void)state;
	/* 255 bytes of registry/repository is the most the grammar allows. */
	memset(text, 'a', sizeof(text));
	memcpy(text, "quay.io/", 8);
	text[255] = '\0';
	assert_int_equal(image_reference_parse(text, &ref), 0);
	text[255] = 'a';
	text[256] = '\0';
	assert_int_equal(image_reference_parse(text, &ref), MLB_EINPUT);

	/* A tag of 128 characters is accepted, 129 is not. */
	memset(text, 'b', sizeof(text));
	memcpy(text, "app:", 4);
	text[4 + 128] = '\0';
	assert_int_equal(image_reference_parse(text, &ref), 0);
	text[4 + 128] = 'b';
	text[4 + 129] = '\0';
	assert_int_equal(image_reference_parse(text, &ref), MLB_EINPUT);

	memset(text, 'c', sizeof(text) - 1);
	text[sizeof(text) - 1] = '\0';
	assert_int_equal(image_reference_parse(text, &ref), MLB_EINPUT);
}

static void test_reference_format_too_small(void **state)
{
	struct image_reference ref;
	char small[10];

	(void)state;
	assert_int_equal(image_reference_parse("nginx", &ref), 0);
	assert_int_equal(image_reference_format(&ref, small, sizeof(small)), -ENAMETOOLONG);
	assert_int_equal(image_reference_name(&ref, small, sizeof(small)), -ENAMETOOLONG);
}

static void test_reference_fully_qualified(void **state)
{
	(void)state;
	assert_true(image_reference_is_fully_qualified("quay.io/a/b:1"));
	assert_true(image_reference_is_fully_qualified("host:5000/a@" DIGEST_A));
	assert_true(image_reference_is_fully_qualified("localhost/a:1"));
	assert_false(image_reference_is_fully_qualified("registry.k8s.io/busybox"));
	assert_false(image_reference_is_fully_qualified("kserve/agent:v1"));
	assert_false(image_reference_is_fully_qualified("nginx:1"));
	assert_false(image_reference_is_fully_qualified("nvidia.com/gpu"));
	assert_false(image_reference_is_fully_qualified("minio-service.kubeflow:9000"));
	assert_false(image_reference_is_fully_qualified("https://example.com/a:1"));
	assert_false(image_reference_is_fully_qualified(NULL));
}

static void test_registry_api_host(void **state)
{
	(void)state;
	assert_string_equal(image_registry_api_host("docker.io"), "registry-1.docker.io");
	assert_string_equal(image_registry_api_host("quay.io"), "quay.io");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_reference_normalises),
		cmocka_unit_test(test_reference_rejects_invalid),
		cmocka_unit_test(test_reference_parts),
		cmocka_unit_test(test_reference_length_limits),
		cmocka_unit_test(test_reference_format_too_small),
		cmocka_unit_test(test_reference_fully_qualified),
		cmocka_unit_test(test_registry_api_host),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
