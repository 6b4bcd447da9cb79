/*
 * Registry authentication inputs: WWW-Authenticate challenges, docker
 * config.json credentials and --registry-mirror values.
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

static void test_challenge_bearer(void **state)
{
	struct image_challenge c;

	(void)state;
	assert_int_equal(image_challenge_parse("Bearer realm=\"https://auth.docker.io/token\",service=\"registry.docker.io\","
					       "scope=\"repository:library/nginx:pull\"", &c), 0);
	assert_string_equal(c.scheme, "Bearer");
	assert_string_equal(c.realm, "https://auth.docker.io/token");
	assert_string_equal(c.service, "registry.docker.io");
	assert_string_equal(c.scope, "repository:library/nginx:pull");
	assert_string_equal(c.error, "");
}

static void test_challenge_forms(void **state)
{
	struct image_challenge c;

	(void)state;
	/* Scheme and parameter names are case-insensitive; spaces around "=" and "," are allowed. */
	assert_int_equal(image_challenge_parse("  bearer Realm = \"https://r/t\" , SERVICE=svc ,error=\"insufficient_scope\"", &c), 0);
	assert_string_equal(c.scheme, "Bearer");
	assert_string_equal(c.realm, "https://r/t");
	assert_string_equal(c.service, "svc");
	assert_string_equal(c.error, "insufficient_scope");

	/* Escapes inside quoted strings; a scope listing two repositories. */
	assert_int_equal(image_challenge_parse("Bearer realm=\"https://r/t\",scope=\"repository:a:pull repository:b:pull\\\"x\"", &c), 0);
	assert_string_equal(c.scope, "repository:a:pull repository:b:pull\"x");

	/* Unknown parameters are skipped; a second challenge ends the first. */
	assert_int_equal(image_challenge_parse("Bearer realm=\"https://r/t\",foo=bar, Basic realm=\"x\"", &c), 0);
	assert_string_equal(c.realm, "https://r/t");

	assert_int_equal(image_challenge_parse("Basic realm=\"Registry Realm\"", &c), 0);
	assert_string_equal(c.scheme, "Basic");
	assert_string_equal(c.realm, "Registry Realm");

	assert_int_equal(image_challenge_parse("Basic", &c), 0);
	assert_string_equal(c.scheme, "Basic");
}

static void test_challenge_invalid(void **state)
{
	static const char *const cases[] = {
		"",
		"   ",
		"Bearer",                                  /* Bearer needs a realm */
		"Bearer service=\"x\"",
		"Bearer realm=\"unterminated",
		"Bearer realm=\"https://r\" junk=",
		"Bearer realm=\"https://r\" service=\"a\"",   /* no comma between parameters */
		"Bearer realm=\"a\x01b\"",
		"=realm",
	};
	struct image_challenge c;
	char long_value[3000];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		if (image_challenge_parse(cases[i], &c) != MLB_EINPUT)
			fail_msg("challenge '%s' was accepted", cases[i]);
	assert_int_equal(image_challenge_parse(NULL, &c), MLB_EINPUT);

	snprintf(long_value, sizeof(long_value), "Bearer realm=\"%02000d\"", 1);
	assert_int_equal(image_challenge_parse(long_value, &c), MLB_EINPUT);
	assert_string_equal(c.realm, "");
}

static int lookup(const char *json, const char *registry, char **user, char **password)
{
	return image_docker_config_lookup(json, strlen(json), registry, user, password);
}

static void test_docker_config_auth(void **state)
{
	/* "dXNlcjpwYXNzOndvcmQ=" is base64 of "user:pass:word". */
	static const char json[] =
		"{\"auths\":{\"https://index.docker.io/v1/\":{\"auth\":\"aHViOmh1YnBhc3M=\"},"
		"\"quay.io\":{\"auth\":\"dXNlcjpwYXNzOndvcmQ=\"},"
		"\"http://127.0.0.1:5000/v2/\":{\"username\":\"local\",\"password\":\"secret\"}},"
		"\"credsStore\":\"desktop\"}";
	char *user = NULL, *password = NULL;

	(void)state;
	assert_int_equal(lookup(json, "quay.io", &user, &password), 0);
	assert_string_equal(user, "user");
	assert_string_equal(password, "pass:word");
	secret_free(user);
	secret_free(password);

	assert_int_equal(lookup(json, "docker.io", &user, &password), 0);
	assert_string_equal(user, "hub");
	assert_string_equal(password, "hubpass");
	secret_free(user);
	secret_free(password);

	assert_int_equal(lookup(json, "registry-1.docker.io", &user, &password), 0);
	secret_free(user);
	secret_free(password);

	assert_int_equal(lookup(json, "127.0.0.1:5000", &user, &password), 0);
	assert_string_equal(user, "local");
	assert_string_equal(password, "secret");
	secret_free(user);
	secret_free(password);

	assert_int_equal(lookup(json, "ghcr.io", &user, &password), -ENOENT);
	assert_null(user);
	assert_null(password);
	/* quay.io's entry is not index.docker.io's, and a port makes another registry. */
	assert_int_equal(lookup(json, "127.0.0.1", &user, &password), -ENOENT);
}

static void test_docker_config_invalid(void **state)
{
	static const char *const cases[] = {
		"not json",
		"[]",
		"{\"auths\":[]}",
		"{\"auths\":{\"quay.io\":\"x\"}}",
		"{\"auths\":{\"quay.io\":{\"auth\":\"bm9jb2xvbg==\"}}}",   /* "nocolon" */
		"{\"auths\":{\"quay.io\":{\"auth\":\"***\"}}}",
		"{\"auths\":{\"quay.io\":{\"auth\":\"YQ\"}}}",            /* missing padding */
	};
	char *user = NULL, *password = NULL;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		if (lookup(cases[i], "quay.io", &user, &password) != MLB_EINPUT)
			fail_msg("config '%s' was accepted", cases[i]);
	assert_int_equal(lookup("{}", "quay.io", &user, &password), -ENOENT);
	assert_int_equal(lookup("{\"auths\":{\"quay.io\":{}}}", "quay.io", &user, &password), -ENOENT);
}

static void test_mirror_parse(void **state)
{
	struct image_mirror m;

	(void)state;
	assert_int_equal(image_mirror_parse("docker.io=127.0.0.1:5000", &m), 0);
	assert_string_equal(m.source, "docker.io");
	assert_string_equal(m.mirror, "127.0.0.1:5000");
	assert_int_equal(image_mirror_parse("index.docker.io=mirror.example.com", &m), 0);
	assert_string_equal(m.source, "docker.io");
	assert_int_equal(image_mirror_parse("quay.io=localhost:5000", &m), 0);

	assert_int_equal(image_mirror_parse("docker.io", &m), MLB_EINPUT);
	assert_int_equal(image_mirror_parse("=mirror.example.com", &m), MLB_EINPUT);
	assert_int_equal(image_mirror_parse("docker.io=", &m), MLB_EINPUT);
	assert_int_equal(image_mirror_parse("docker.io=mirror/path", &m), MLB_EINPUT);
	assert_int_equal(image_mirror_parse("docker.io=https://mirror", &m), MLB_EINPUT);
	assert_int_equal(image_mirror_parse("docker.io=nodots", &m), MLB_EINPUT);
	assert_string_equal(m.source, "");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_challenge_bearer),
		cmocka_unit_test(test_challenge_forms),
		cmocka_unit_test(test_challenge_invalid),
		cmocka_unit_test(test_docker_config_auth),
		cmocka_unit_test(test_docker_config_invalid),
		cmocka_unit_test(test_mirror_parse),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
