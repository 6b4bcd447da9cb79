/*
 * OCI and Docker manifests and indexes, platforms, and picking an index
 * entry for a platform.
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

#define D1 "sha256:1111111111111111111111111111111111111111111111111111111111111111"
#define D2 "sha256:2222222222222222222222222222222222222222222222222222222222222222"
#define D3 "sha256:3333333333333333333333333333333333333333333333333333333333333333"
#define D4 "sha256:4444444444444444444444444444444444444444444444444444444444444444"
#define D5 "sha256:5555555555555555555555555555555555555555555555555555555555555555"
#define D6 "sha256:6666666666666666666666666666666666666666666666666666666666666666"

#define ENTRY(digest, os, arch, variant) \
	"{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"" digest "\",\"size\":100," \
	"\"platform\":{\"os\":\"" os "\",\"architecture\":\"" arch "\"" variant "}}"

static const char index_json[] =
	"{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.index.v1+json\",\"manifests\":["
	ENTRY(D1, "linux", "arm", ",\"variant\":\"v6\"") ","
	ENTRY(D2, "linux", "arm", ",\"variant\":\"v7\"") ","
	ENTRY(D3, "linux", "arm64", ",\"variant\":\"v8\"") ","
	ENTRY(D4, "linux", "amd64", "") ","
	ENTRY(D5, "unknown", "unknown", "") ","
	"{\"mediaType\":\"application/vnd.oci.image.index.v1+json\",\"digest\":\"" D6 "\",\"size\":5,"
	"\"platform\":{\"os\":\"linux\",\"architecture\":\"s390x\"}}"
	"]}";

static void test_manifest_index(void **state)
{
	struct image_manifest m;

	(void)state;
	assert_int_equal(image_manifest_parse(index_json, strlen(index_json), NULL, &m), 0);
	assert_int_equal(m.kind, IMAGE_MANIFEST_INDEX);
	assert_int_equal(m.count, 6);
	assert_string_equal(m.descriptors[1].platform.variant, "v7");
	assert_true(m.descriptors[3].has_platform);
	assert_int_equal(m.descriptors[3].size, 100);
	image_manifest_release(&m);
}

static size_t select_for(const struct image_manifest *m, const char *platform_text, int expected_result)
{
	struct image_platform platform;
	size_t position = SIZE_MAX;

	assert_int_equal(image_platform_parse(platform_text, &platform), 0);
	assert_int_equal(image_index_select(m, &platform, &position), expected_result);
	return position;
}

static void test_index_select(void **state)
{
	struct image_manifest m;

	(void)state;
	assert_int_equal(image_manifest_parse(index_json, strlen(index_json), NULL, &m), 0);
	assert_int_equal(select_for(&m, "linux/amd64", 0), 3);
	/* containerd normalises amd64/v1 and arm64/v8 to no variant. */
	assert_int_equal(select_for(&m, "linux/amd64/v1", 0), 3);
	assert_int_equal(select_for(&m, "linux/arm64", 0), 2);
	assert_int_equal(select_for(&m, "linux/arm64/v8", 0), 2);
	/* arm without a variant means v7; an explicit v6 takes v6. */
	assert_int_equal(select_for(&m, "linux/arm", 0), 1);
	assert_int_equal(select_for(&m, "linux/arm/v6", 0), 0);
	assert_int_equal(select_for(&m, "linux/arm/v5", -ENOENT), SIZE_MAX);
	/* Nested indexes and attestations (unknown/unknown) are never picked. */
	select_for(&m, "linux/s390x", -ENOENT);
	select_for(&m, "windows/amd64", -ENOENT);
	image_manifest_release(&m);
}

static void test_manifest_image(void **state)
{
	static const char docker[] =
		"{\"schemaVersion\":2,\"mediaType\":\"application/vnd.docker.distribution.manifest.v2+json\","
		"\"config\":{\"mediaType\":\"application/vnd.docker.container.image.v1+json\",\"size\":7023,\"digest\":\"" D1 "\"},"
		"\"layers\":[{\"mediaType\":\"application/vnd.docker.image.rootfs.diff.tar.gzip\",\"size\":32654,\"digest\":\"" D2 "\"},"
		"{\"mediaType\":\"application/vnd.docker.image.rootfs.diff.tar.gzip\",\"size\":0,\"digest\":\"" D3 "\"}]}";
	/* OCI allows leaving mediaType out, so the members and Content-Type decide what it is. */
	static const char oci[] =
		"{\"schemaVersion\":2,\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"size\":2,"
		"\"digest\":\"" D1 "\"},\"layers\":[]}";
	struct image_manifest m;

	(void)state;
	assert_int_equal(image_manifest_parse(docker, strlen(docker), "text/plain", &m), 0);
	assert_int_equal(m.kind, IMAGE_MANIFEST_IMAGE);
	assert_string_equal(m.media_type, IMAGE_MEDIA_DOCKER_MANIFEST);
	assert_string_equal(m.config.digest, D1);
	assert_int_equal(m.config.size, 7023);
	assert_int_equal(m.count, 2);
	assert_int_equal(m.descriptors[1].size, 0);
	image_manifest_release(&m);

	assert_int_equal(image_manifest_parse(oci, strlen(oci), NULL, &m), 0);
	assert_string_equal(m.media_type, IMAGE_MEDIA_OCI_MANIFEST);
	assert_int_equal(m.count, 0);
	image_manifest_release(&m);

	assert_int_equal(image_manifest_parse(oci, strlen(oci), IMAGE_MEDIA_OCI_MANIFEST "; charset=utf-8", &m), 0);
	image_manifest_release(&m);
}

static void test_manifest_invalid(void **state)
{
	static const char *const cases[] = {
		"",
		"[]",
		"{\"schemaVersion\":1,\"fsLayers\":[]}",
		"{\"schemaVersion\":2}",
		"{\"schemaVersion\":2,\"mediaType\":\"application/vnd.docker.distribution.manifest.v1+prettyjws\",\"layers\":[]}",
		"{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.index.v1+json\",\"manifests\":{}}",
		"{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.index.v1+json\",\"manifests\":[],\"layers\":[]}",
		"{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"layers\":[]}",
		"{\"schemaVersion\":2,\"config\":{\"mediaType\":\"x\",\"size\":1,\"digest\":\"sha256:12\"},\"layers\":[]}",
		"{\"schemaVersion\":2,\"config\":{\"mediaType\":\"x\",\"size\":-1,\"digest\":\"" D1 "\"},\"layers\":[]}",
		"{\"schemaVersion\":2,\"config\":{\"mediaType\":\"x\",\"size\":\"1\",\"digest\":\"" D1 "\"},\"layers\":[]}",
		"{\"schemaVersion\":2,\"config\":{\"size\":1,\"digest\":\"" D1 "\"},\"layers\":[]}",
		"{\"schemaVersion\":2,\"config\":{\"mediaType\":\"x\",\"size\":1,\"digest\":\"" D1 "\"},\"layers\":[7]}",
		"{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":\"x\",\"size\":1,\"digest\":\"" D1 "\",\"platform\":{\"os\":\"linux\"}}]}",
		"{\"schemaVersion\":2,\"schemaVersion\":2,\"manifests\":[]}",
	};
	struct image_manifest m;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		if (image_manifest_parse(cases[i], strlen(cases[i]), NULL, &m) != MLB_EINPUT)
			fail_msg("manifest %zu '%s' was accepted", i, cases[i]);
		assert_null(m.descriptors);
	}
}

static void test_manifest_too_many_descriptors(void **state)
{
	struct buf text = BUF_INIT(IMAGE_MANIFEST_MAX);
	struct image_manifest m;

	(void)state;
	assert_int_equal(buf_append_str(&text, "{\"schemaVersion\":2,\"manifests\":["), 0);
	for (unsigned i = 0; i <= IMAGE_DESCRIPTORS_MAX; i++)
		assert_int_equal(buf_printf(&text, "%s{\"mediaType\":\"x\",\"size\":1,\"digest\":\"" D1 "\"}", i ? "," : ""), 0);
	assert_int_equal(buf_append_str(&text, "]}"), 0);
	assert_int_equal(image_manifest_parse(text.data, text.len, NULL, &m), MLB_EINPUT);
	buf_release(&text);
}

static void test_platform_parse(void **state)
{
	struct image_platform p;
	char text[96];

	(void)state;
	assert_int_equal(image_platform_parse("linux/arm64/v8", &p), 0);
	assert_string_equal(p.os, "linux");
	assert_string_equal(p.architecture, "arm64");
	assert_string_equal(p.variant, "v8");
	image_platform_format(&p, text, sizeof(text));
	assert_string_equal(text, "linux/arm64/v8");
	assert_int_equal(image_platform_parse("linux/amd64", &p), 0);
	image_platform_format(&p, text, sizeof(text));
	assert_string_equal(text, "linux/amd64");

	assert_int_equal(image_platform_parse("linux", &p), MLB_EINPUT);
	assert_int_equal(image_platform_parse("linux/", &p), MLB_EINPUT);
	assert_int_equal(image_platform_parse("/amd64", &p), MLB_EINPUT);
	assert_int_equal(image_platform_parse("Linux/amd64", &p), MLB_EINPUT);
	assert_int_equal(image_platform_parse("linux/amd64/v1/x", &p), MLB_EINPUT);
	assert_int_equal(image_platform_parse("linux/amd64/", &p), MLB_EINPUT);
	assert_int_equal(image_platform_parse(NULL, &p), MLB_EINPUT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_manifest_index),
		cmocka_unit_test(test_index_select),
		cmocka_unit_test(test_manifest_image),
		cmocka_unit_test(test_manifest_invalid),
		cmocka_unit_test(test_manifest_too_many_descriptors),
		cmocka_unit_test(test_platform_parse),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
