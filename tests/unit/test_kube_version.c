/*
 * Kubernetes version strings: upstream, vendor builds, pre-releases, the
 * major/minor fallback and garbage.
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

#include "kube.h"

struct version_case {
	const char *git_version;
	const char *major;
	const char *minor;
	int result;
	int expected_major;
	int expected_minor;
	int expected_patch;
	bool pre_release;
};

static const struct version_case cases[] = {
	{ "v1.23.17", "1", "23", 0, 1, 23, 17, false },
	{ "v1.24.0", "1", "24", 0, 1, 24, 0, false },
	{ "v1.24.0-rc.0", "1", "24", 0, 1, 24, 0, true },
	{ "v1.27.3+k3s1", "1", "27", 0, 1, 27, 3, false },
	{ "v1.28.2-eks-a5df82a", "1", "28+", 0, 1, 28, 2, false },
	{ "v1.29.1-gke.1", "1", "29+", 0, 1, 29, 1, false },
	{ "v1.30.0-rc.1", "1", "30", 0, 1, 30, 0, true },
	{ "v1.31.0-alpha.3", "1", "31", 0, 1, 31, 0, true },
	{ "v1.31.0-beta.0", "1", "31", 0, 1, 31, 0, true },
	{ "v1.26.5+rke2r1", "1", "26", 0, 1, 26, 5, false },
	{ "v1.25.16-rc.0+k3s1", "1", "25", 0, 1, 25, 16, true },
	{ "1.29.4", NULL, NULL, 0, 1, 29, 4, false },
	{ "v1.32.10", "1", "32", 0, 1, 32, 10, false },
	/* gitVersion unparsable: major and minor decide, "27+" included. */
	{ "v1.27", "1", "27+", 0, 1, 27, 0, false },
	{ NULL, "1", "27+", 0, 1, 27, 0, false },
	{ "", "1", "24", 0, 1, 24, 0, false },
	/* gitVersion wins when both parse. */
	{ "v1.29.2", "1", "28", 0, 1, 29, 2, false },
	/* Garbage. */
	{ "garbage", "one", "two", MLB_EINPUT, 0, 0, 0, false },
	{ NULL, NULL, NULL, MLB_EINPUT, 0, 0, 0, false },
	{ "v1.x.3", "1", "", MLB_EINPUT, 0, 0, 0, false },
	{ "v1.27.3-", NULL, NULL, MLB_EINPUT, 0, 0, 0, false },
	{ "v1.27.3garbage", NULL, NULL, MLB_EINPUT, 0, 0, 0, false },
	{ "v99999999999.1.1", NULL, NULL, MLB_EINPUT, 0, 0, 0, false },
	{ NULL, "1", "27++", MLB_EINPUT, 0, 0, 0, false },
	{ NULL, "-1", "27", MLB_EINPUT, 0, 0, 0, false },
	{ " v1.27.3", NULL, NULL, MLB_EINPUT, 0, 0, 0, false },
};

static void version_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct version_case *c = &cases[i];
		struct kube_version version = { .major = -1 };
		int r = kube_version_parse(c->git_version, c->major, c->minor, &version);

		if (r != c->result)
			fail_msg("'%s' (major '%s', minor '%s'): result %d, expected %d",
				 c->git_version ? c->git_version : "(null)", c->major ? c->major : "(null)",
				 c->minor ? c->minor : "(null)", r, c->result);
		if (r < 0)
			continue;
		if (version.major != c->expected_major || version.minor != c->expected_minor ||
		    version.patch != c->expected_patch || version.pre_release != c->pre_release)
			fail_msg("'%s': parsed %d.%d.%d pre-release %d, expected %d.%d.%d pre-release %d",
				 c->git_version ? c->git_version : "(null)", version.major, version.minor,
				 version.patch, version.pre_release, c->expected_major, c->expected_minor,
				 c->expected_patch, c->pre_release);
	}
}

static void version_keeps_git_version(void **state)
{
	struct kube_version version;

	(void)state;
	assert_int_equal(kube_version_parse("v1.28.2-eks-a5df82a", "1", "28+", &version), 0);
	assert_string_equal(version.git_version, "v1.28.2-eks-a5df82a");
	assert_int_equal(kube_version_parse(NULL, "1", "27+", &version), 0);
	assert_string_equal(version.git_version, "v1.27");
}

static void version_garbage_message(void **state)
{
	struct kube_version version;

	(void)state;
	assert_int_equal(kube_version_parse("nonsense", "x", "y", &version), MLB_EINPUT);
	assert_non_null(strstr(kube_last_error(), "gitVersion 'nonsense'"));
	assert_non_null(strstr(kube_last_error(), "minor 'y'"));
}

/* The 1.24 boundary (dockershim removal) as callers compare it. */
static void version_boundary_compares(void **state)
{
	struct kube_version old_version, new_version;

	(void)state;
	assert_int_equal(kube_version_parse("v1.23.17-eks-1", NULL, NULL, &old_version), 0);
	assert_int_equal(kube_version_parse("v1.24.0+k3s1", NULL, NULL, &new_version), 0);
	assert_true(old_version.major == 1 && old_version.minor < 24);
	assert_true(new_version.major == 1 && new_version.minor >= 24);
	assert_false(new_version.pre_release);
}

static void api_version_split_cases(void **state)
{
	char *group = NULL, *version = NULL;

	(void)state;
	assert_int_equal(kube_api_version_split("v1", &group, &version), 0);
	assert_string_equal(group, "");
	assert_string_equal(version, "v1");
	free(group);
	free(version);
	assert_int_equal(kube_api_version_split("apps/v1", &group, &version), 0);
	assert_string_equal(group, "apps");
	assert_string_equal(version, "v1");
	free(group);
	free(version);
	assert_int_equal(kube_api_version_split("serving.kserve.io/v1beta1", &group, &version), 0);
	assert_string_equal(group, "serving.kserve.io");
	assert_string_equal(version, "v1beta1");
	free(group);
	free(version);
	assert_int_equal(kube_api_version_split("a/b/c", &group, &version), -EINVAL);
	assert_int_equal(kube_api_version_split("/v1", &group, &version), -EINVAL);
	assert_int_equal(kube_api_version_split("apps/", &group, &version), -EINVAL);
	assert_int_equal(kube_api_version_split("", &group, &version), -EINVAL);
	assert_null(group);
	assert_null(version);
}

static void discovery_paths(void **state)
{
	char *path = NULL;

	(void)state;
	assert_int_equal(kube_group_version_path("", "v1", &path), 0);
	assert_string_equal(path, "/api/v1");
	free(path);
	assert_int_equal(kube_group_version_path(NULL, "v1", &path), 0);
	assert_string_equal(path, "/api/v1");
	free(path);
	assert_int_equal(kube_group_version_path("apiextensions.k8s.io", "v1", &path), 0);
	assert_string_equal(path, "/apis/apiextensions.k8s.io/v1");
	free(path);
	assert_int_equal(kube_group_version_path("apps", "", &path), -EINVAL);
	assert_int_equal(kube_group_version_path("a/b", "v1", &path), -EINVAL);
}

static void resource_paths(void **state)
{
	struct kube_resource pods = { .group = (char *)"", .version = (char *)"v1", .kind = (char *)"Pod",
				      .name = (char *)"pods", .namespaced = true };
	struct kube_resource crds = { .group = (char *)"apiextensions.k8s.io", .version = (char *)"v1",
				      .kind = (char *)"CustomResourceDefinition",
				      .name = (char *)"customresourcedefinitions", .namespaced = false };
	struct kube_resource isvc = { .group = (char *)"serving.kserve.io", .version = (char *)"v1beta1",
				      .kind = (char *)"InferenceService", .name = (char *)"inferenceservices",
				      .namespaced = true };
	char *path = NULL;

	(void)state;
	assert_int_equal(kube_resource_path(&pods, "kube-system", "coredns-1", &path), 0);
	assert_string_equal(path, "/api/v1/namespaces/kube-system/pods/coredns-1");
	free(path);
	assert_int_equal(kube_resource_path(&pods, "ml", NULL, &path), 0);
	assert_string_equal(path, "/api/v1/namespaces/ml/pods");
	free(path);
	/* A namespaced collection with no namespace spans all namespaces. */
	assert_int_equal(kube_resource_path(&pods, NULL, NULL, &path), 0);
	assert_string_equal(path, "/api/v1/pods");
	free(path);
	/* The namespace of a cluster-scoped resource is ignored. */
	assert_int_equal(kube_resource_path(&crds, "ml", "inferenceservices.serving.kserve.io", &path), 0);
	assert_string_equal(path, "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/"
			    "inferenceservices.serving.kserve.io");
	free(path);
	assert_int_equal(kube_resource_path(&isvc, "ml", "iris", &path), 0);
	assert_string_equal(path, "/apis/serving.kserve.io/v1beta1/namespaces/ml/inferenceservices/iris");
	free(path);
	/* Characters that would change the URL are escaped. */
	assert_int_equal(kube_resource_path(&crds, NULL, "a/b?c", &path), 0);
	assert_string_equal(path, "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/a%2Fb%3Fc");
	free(path);
	assert_int_equal(kube_resource_path(&pods, "ml", "..", &path), MLB_EINPUT);
	assert_null(path);
	assert_int_equal(kube_resource_path(&pods, ".", "x", &path), MLB_EINPUT);
	assert_int_equal(kube_resource_path(&pods, "ml", "", &path), MLB_EINPUT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(version_table),
		cmocka_unit_test(version_keeps_git_version),
		cmocka_unit_test(version_garbage_message),
		cmocka_unit_test(version_boundary_compares),
		cmocka_unit_test(api_version_split_cases),
		cmocka_unit_test(discovery_paths),
		cmocka_unit_test(resource_paths),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
