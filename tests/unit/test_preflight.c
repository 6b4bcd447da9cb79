#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common.h"
#include "preflight.h"

static struct doc_node *parse_json(const char *json)
{
	struct doc_node *root = NULL;
	struct doc_error error;

	assert_int_equal(doc_parse(json, strlen(json), NULL, &root, &error), 0);
	return root;
}

/* Whether a StorageClass with the given metadata.annotations JSON is the default. */
static bool annotations_mark_default(const char *annotations)
{
	char json[1024];
	struct doc_node *object;
	bool is_default;

	snprintf(json, sizeof(json),
		 "{\"apiVersion\":\"storage.k8s.io/v1\",\"kind\":\"StorageClass\","
		 "\"metadata\":{\"name\":\"fast\",\"annotations\":%s},\"provisioner\":\"x\"}",
		 annotations);
	object = parse_json(json);
	is_default = preflight_storageclass_is_default(object);
	doc_free(object);
	return is_default;
}

static void test_storageclass_ga_true_is_default(void **state)
{
	(void)state;
	assert_true(annotations_mark_default(
		"{\"storageclass.kubernetes.io/is-default-class\":\"true\"}"));
}

static void test_storageclass_beta_true_is_default(void **state)
{
	(void)state;
	assert_true(annotations_mark_default(
		"{\"storageclass.beta.kubernetes.io/is-default-class\":\"true\"}"));
}

static void test_storageclass_other_spellings_not_default(void **state)
{
	static const char *const values[] = { "\"True\"", "\"TRUE\"", "\"yes\"", "\"1\"", "\"on\"",
					      "\" true\"", "\"true \"", "\"\"", "\"false\"", "true" };

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(values); i++) {
		char annotations[256];

		snprintf(annotations, sizeof(annotations),
			 "{\"storageclass.kubernetes.io/is-default-class\":%s}", values[i]);
		assert_false(annotations_mark_default(annotations));
		snprintf(annotations, sizeof(annotations),
			 "{\"storageclass.beta.kubernetes.io/is-default-class\":%s}", values[i]);
		assert_false(annotations_mark_default(annotations));
	}
}

static void test_storageclass_both_annotations(void **state)
{
	(void)state;
	assert_true(annotations_mark_default(
		"{\"storageclass.kubernetes.io/is-default-class\":\"true\","
		"\"storageclass.beta.kubernetes.io/is-default-class\":\"true\"}"));
	/* Kubernetes reads either annotation: a "true" in one wins over a "false" in the other. */
	assert_true(annotations_mark_default(
		"{\"storageclass.kubernetes.io/is-default-class\":\"false\","
		"\"storageclass.beta.kubernetes.io/is-default-class\":\"true\"}"));
	assert_true(annotations_mark_default(
		"{\"storageclass.kubernetes.io/is-default-class\":\"true\","
		"\"storageclass.beta.kubernetes.io/is-default-class\":\"false\"}"));
	assert_false(annotations_mark_default(
		"{\"storageclass.kubernetes.io/is-default-class\":\"false\","
		"\"storageclass.beta.kubernetes.io/is-default-class\":\"false\"}"));
}

static void test_storageclass_without_annotations(void **state)
{
	struct doc_node *object;

	(void)state;
	assert_false(annotations_mark_default("{}"));
	assert_false(annotations_mark_default("{\"other\":\"true\"}"));
	assert_false(annotations_mark_default("null"));
	object = parse_json("{\"metadata\":{\"name\":\"plain\"}}");
	assert_false(preflight_storageclass_is_default(object));
	doc_free(object);
}

static void test_storageclass_from_object(void **state)
{
	struct preflight_storageclass parsed;
	struct doc_node *object;

	(void)state;
	object = parse_json("{\"metadata\":{\"name\":\"local-path\",\"annotations\":"
			    "{\"storageclass.kubernetes.io/is-default-class\":\"true\"}}}");
	assert_int_equal(preflight_storageclass_from_object(object, &parsed), 0);
	assert_string_equal(parsed.name, "local-path");
	assert_true(parsed.is_default);
	preflight_storageclass_release(&parsed);
	doc_free(object);

	object = parse_json("{\"metadata\":{}}");
	assert_int_equal(preflight_storageclass_from_object(object, &parsed), MLB_EINPUT);
	doc_free(object);
}

static struct preflight_storageclass storageclass(const char *name, bool is_default)
{
	return (struct preflight_storageclass){ .name = (char *)name, .is_default = is_default };
}

/* Evaluates StorageClasses given as name and default flag. */
static void evaluate_classes(const struct preflight_storageclass *classes, size_t count,
			     struct preflight_finding *finding)
{
	preflight_finding_init(finding);
	assert_int_equal(preflight_evaluate_storageclasses(classes, count, finding), 0);
}

static void test_evaluate_one_default_passes(void **state)
{
	struct preflight_storageclass classes[] = {
		storageclass("fast", false), storageclass("local-path", true), storageclass("slow", false),
	};
	struct preflight_finding finding;

	(void)state;
	evaluate_classes(classes, ARRAY_SIZE(classes), &finding);
	assert_int_equal(finding.status, CHECK_PASS);
	assert_string_equal(buf_str(&finding.evidence),
			    "'local-path' is the default of 3 StorageClasses: fast, local-path, slow");
	assert_int_equal(finding.remedy.len, 0);
	preflight_finding_release(&finding);
}

static void test_evaluate_no_default_fails_with_patch(void **state)
{
	struct preflight_storageclass classes[] = {
		storageclass("fast", false), storageclass("slow", false),
	};
	struct preflight_finding finding;

	(void)state;
	evaluate_classes(classes, ARRAY_SIZE(classes), &finding);
	assert_int_equal(finding.status, CHECK_FAIL);
	assert_string_equal(buf_str(&finding.evidence),
			    "none of the 2 StorageClasses is marked default: fast, slow");
	assert_non_null(strstr(buf_str(&finding.remedy),
			       "kubectl patch storageclass fast -p '{\"metadata\":{\"annotations\":"
			       "{\"storageclass.kubernetes.io/is-default-class\":\"true\"}}}'"));
	preflight_finding_release(&finding);
}

static void test_evaluate_only_class_not_default(void **state)
{
	struct preflight_storageclass classes[] = { storageclass("local-path", false) };
	struct preflight_finding finding;

	(void)state;
	evaluate_classes(classes, ARRAY_SIZE(classes), &finding);
	assert_int_equal(finding.status, CHECK_FAIL);
	assert_string_equal(buf_str(&finding.evidence),
			    "the only StorageClass is not marked default: local-path");
	assert_non_null(strstr(buf_str(&finding.remedy), "kubectl patch storageclass local-path -p"));
	preflight_finding_release(&finding);
}

static void test_evaluate_unsafe_name_not_in_command(void **state)
{
	struct preflight_storageclass classes[] = { storageclass("x'; rm -rf / #", false) };
	struct preflight_finding finding;

	(void)state;
	evaluate_classes(classes, ARRAY_SIZE(classes), &finding);
	assert_int_equal(finding.status, CHECK_FAIL);
	assert_non_null(strstr(buf_str(&finding.remedy), "kubectl patch storageclass NAME -p"));
	assert_null(strstr(buf_str(&finding.remedy), "rm -rf"));
	preflight_finding_release(&finding);
}

static void test_evaluate_several_defaults_warns(void **state)
{
	struct preflight_storageclass classes[] = {
		storageclass("fast", true), storageclass("medium", false), storageclass("slow", true),
	};
	struct preflight_finding finding;

	(void)state;
	evaluate_classes(classes, ARRAY_SIZE(classes), &finding);
	assert_int_equal(finding.status, CHECK_WARN);
	assert_string_equal(buf_str(&finding.evidence), "2 StorageClasses are marked default: fast, slow");
	assert_non_null(strstr(buf_str(&finding.remedy),
			       "kubectl annotate storageclass slow "
			       "storageclass.kubernetes.io/is-default-class- "
			       "storageclass.beta.kubernetes.io/is-default-class-"));
	preflight_finding_release(&finding);
}

static void test_evaluate_no_storageclass_fails(void **state)
{
	struct preflight_finding finding;

	(void)state;
	evaluate_classes(NULL, 0, &finding);
	assert_int_equal(finding.status, CHECK_FAIL);
	assert_string_equal(buf_str(&finding.evidence), "no StorageClass exists");
	assert_non_null(strstr(buf_str(&finding.remedy), "install a storage provisioner"));
	preflight_finding_release(&finding);
}

static void test_evaluate_long_list_is_cut(void **state)
{
	struct preflight_storageclass classes[30];
	char names[30][16];
	struct preflight_finding finding;

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(classes); i++) {
		snprintf(names[i], sizeof(names[i]), "class-%02zu", i);
		classes[i] = storageclass(names[i], false);
	}
	evaluate_classes(classes, ARRAY_SIZE(classes), &finding);
	assert_non_null(strstr(buf_str(&finding.evidence), "class-19 and 10 more"));
	assert_null(strstr(buf_str(&finding.evidence), "class-20"));
	preflight_finding_release(&finding);
}

static struct kube_version version(int major, int minor, int patch)
{
	struct kube_version v = { .major = major, .minor = minor, .patch = patch };

	snprintf(v.git_version, sizeof(v.git_version), "v%d.%d.%d", major, minor, patch);
	return v;
}

static void test_skew_cases(void **state)
{
	static const struct {
		int server_minor;
		int kubelet_minor;
		enum preflight_skew expected;
	} cases[] = {
		{ 28, 28, PREFLIGHT_SKEW_SUPPORTED },
		{ 28, 27, PREFLIGHT_SKEW_SUPPORTED },
		{ 28, 25, PREFLIGHT_SKEW_SUPPORTED },      /* three older */
		{ 29, 25, PREFLIGHT_SKEW_KUBELET_TOO_OLD }, /* four older */
		{ 31, 28, PREFLIGHT_SKEW_SUPPORTED },
		{ 31, 27, PREFLIGHT_SKEW_KUBELET_TOO_OLD },
		{ 27, 24, PREFLIGHT_SKEW_KUBELET_TOO_OLD }, /* kubelets before 1.25: two at most */
		{ 26, 24, PREFLIGHT_SKEW_SUPPORTED },
		{ 27, 25, PREFLIGHT_SKEW_SUPPORTED },
		{ 24, 22, PREFLIGHT_SKEW_SUPPORTED },
		{ 24, 21, PREFLIGHT_SKEW_KUBELET_TOO_OLD },
		{ 27, 28, PREFLIGHT_SKEW_KUBELET_NEWER },
		{ 27, 30, PREFLIGHT_SKEW_KUBELET_NEWER },
	};

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct kube_version server = version(1, cases[i].server_minor, 0);
		struct kube_version kubelet = version(1, cases[i].kubelet_minor, 0);

		assert_int_equal(preflight_kubelet_skew(&server, &kubelet), cases[i].expected);
	}
}

static void test_skew_ignores_patch(void **state)
{
	struct kube_version server = version(1, 28, 1);
	struct kube_version kubelet = version(1, 28, 9);

	(void)state;
	assert_int_equal(preflight_kubelet_skew(&server, &kubelet), PREFLIGHT_SKEW_SUPPORTED);
}

static void test_skew_other_major(void **state)
{
	struct kube_version server = version(1, 30, 0);
	struct kube_version newer = version(2, 0, 0);
	struct kube_version older = version(0, 30, 0);

	(void)state;
	assert_int_equal(preflight_kubelet_skew(&server, &newer), PREFLIGHT_SKEW_KUBELET_NEWER);
	assert_int_equal(preflight_kubelet_skew(&server, &older), PREFLIGHT_SKEW_KUBELET_TOO_OLD);
}

static struct preflight_node node(const char *name, const char *ready, const char *reason,
				  const char *kubelet)
{
	return (struct preflight_node){
		.name = (char *)name,
		.ready_status = (char *)ready,
		.ready_reason = (char *)reason,
		.kubelet_version = (char *)kubelet,
	};
}

static void test_kubelet_versions_pass(void **state)
{
	struct preflight_node nodes[] = {
		node("cp1", "True", NULL, "v1.27.3+k3s1"),
		node("w1", "True", NULL, "v1.27.3+k3s1"),
		node("w2", "True", NULL, "v1.25.0"),
	};
	struct kube_version server = version(1, 27, 3);
	struct preflight_finding finding;

	(void)state;
	preflight_finding_init(&finding);
	assert_int_equal(preflight_evaluate_kubelet_versions(nodes, ARRAY_SIZE(nodes), &server,
							     &finding), 0);
	assert_int_equal(finding.status, CHECK_PASS);
	assert_string_equal(buf_str(&finding.evidence),
			    "API server v1.27.3; kubelet v1.27.3+k3s1 on cp1, w1; kubelet v1.25.0 on w2");
	preflight_finding_release(&finding);
}

static void test_kubelet_versions_too_old_and_newer(void **state)
{
	struct preflight_node nodes[] = {
		node("cp1", "True", NULL, "v1.29.1"),
		node("old", "True", NULL, "v1.25.4"),
		node("new", "True", NULL, "v1.30.0"),
	};
	struct kube_version server = version(1, 29, 1);
	struct preflight_finding finding;
	const char *evidence, *remedy;

	(void)state;
	preflight_finding_init(&finding);
	assert_int_equal(preflight_evaluate_kubelet_versions(nodes, ARRAY_SIZE(nodes), &server,
							     &finding), 0);
	evidence = buf_str(&finding.evidence);
	remedy = buf_str(&finding.remedy);
	assert_int_equal(finding.status, CHECK_FAIL);
	assert_non_null(strstr(evidence, "kubelet too old for API server v1.29.1 on old (v1.25.4)"));
	assert_non_null(strstr(evidence, "kubelet newer than API server v1.29.1 on new (v1.30.0)"));
	assert_null(strstr(evidence, "cp1"));
	assert_non_null(strstr(remedy, "upgrade kubelet on the nodes listed to 1.26 or newer"));
	assert_non_null(strstr(remedy, "must not be newer than the API server"));
	preflight_finding_release(&finding);
}

static void test_kubelet_oldest_supported_before_1_25(void **state)
{
	struct preflight_node nodes[] = { node("old", "True", NULL, "v1.23.0") };
	struct kube_version server = version(1, 27, 0);
	struct preflight_finding finding;

	(void)state;
	preflight_finding_init(&finding);
	assert_int_equal(preflight_evaluate_kubelet_versions(nodes, 1, &server, &finding), 0);
	assert_int_equal(finding.status, CHECK_FAIL);
	/* 1.24 would be three minor versions older, which kubelets before 1.25 may not be. */
	assert_non_null(strstr(buf_str(&finding.remedy), "to 1.25 or newer"));
	preflight_finding_release(&finding);
}

static void test_kubelet_version_unreadable_warns(void **state)
{
	struct preflight_node nodes[] = {
		node("cp1", "True", NULL, "v1.28.0"),
		node("odd", "True", NULL, "not-a-version"),
		node("none", "True", NULL, NULL),
	};
	struct kube_version server = version(1, 28, 0);
	struct preflight_finding finding;

	(void)state;
	preflight_finding_init(&finding);
	assert_int_equal(preflight_evaluate_kubelet_versions(nodes, ARRAY_SIZE(nodes), &server,
							     &finding), 0);
	assert_int_equal(finding.status, CHECK_WARN);
	assert_string_equal(buf_str(&finding.evidence),
			    "kubelet version not readable on odd (not-a-version), none (no version)");
	preflight_finding_release(&finding);
}

static void test_nodes_all_ready_pass(void **state)
{
	struct preflight_node nodes[] = {
		node("cp1", "True", "KubeletReady", "v1.28.0"),
		node("w1", "True", "KubeletReady", "v1.28.0"),
	};
	struct preflight_finding finding;

	(void)state;
	preflight_finding_init(&finding);
	assert_int_equal(preflight_evaluate_node_readiness(nodes, ARRAY_SIZE(nodes), &finding), 0);
	assert_int_equal(finding.status, CHECK_PASS);
	assert_string_equal(buf_str(&finding.evidence), "2 nodes Ready: cp1, w1");
	preflight_finding_release(&finding);
}

static void test_nodes_not_ready_fail_with_reason(void **state)
{
	struct preflight_node nodes[] = {
		node("cp1", "True", "KubeletReady", "v1.28.0"),
		node("w1", "False", "KubeletNotReady", "v1.28.0"),
		node("w2", "Unknown", "NodeStatusUnknown", "v1.28.0"),
		node("w3", NULL, NULL, "v1.28.0"),
	};
	struct preflight_finding finding;

	(void)state;
	preflight_finding_init(&finding);
	assert_int_equal(preflight_evaluate_node_readiness(nodes, ARRAY_SIZE(nodes), &finding), 0);
	assert_int_equal(finding.status, CHECK_FAIL);
	assert_string_equal(buf_str(&finding.evidence),
			    "3 of 4 nodes not Ready: w1 (Ready=False, reason KubeletNotReady), "
			    "w2 (Ready=Unknown, reason NodeStatusUnknown), w3 (no Ready condition)");
	assert_non_null(strstr(buf_str(&finding.remedy), "kubelet"));
	preflight_finding_release(&finding);
}

static void test_nodes_none_fail(void **state)
{
	struct preflight_finding finding;

	(void)state;
	preflight_finding_init(&finding);
	assert_int_equal(preflight_evaluate_node_readiness(NULL, 0, &finding), 0);
	assert_int_equal(finding.status, CHECK_FAIL);
	assert_string_equal(buf_str(&finding.evidence), "no node is registered with the API server");
	preflight_finding_release(&finding);
}

static void test_nodes_cordoned_warn(void **state)
{
	struct preflight_node nodes[] = {
		node("cp1", "True", NULL, "v1.28.0"),
		node("w1", "True", NULL, "v1.28.0"),
	};
	struct preflight_finding finding;

	(void)state;
	nodes[1].unschedulable = true;
	preflight_finding_init(&finding);
	assert_int_equal(preflight_evaluate_node_readiness(nodes, ARRAY_SIZE(nodes), &finding), 0);
	assert_int_equal(finding.status, CHECK_WARN);
	assert_string_equal(buf_str(&finding.evidence), "2 nodes Ready, 1 cordoned: w1");
	assert_non_null(strstr(buf_str(&finding.remedy), "kubectl uncordon"));
	preflight_finding_release(&finding);
}

static void test_node_from_object(void **state)
{
	struct preflight_node parsed;
	struct doc_node *object;

	(void)state;
	object = parse_json(
		"{\"kind\":\"Node\",\"metadata\":{\"name\":\"w1\"},\"spec\":{\"unschedulable\":true},"
		"\"status\":{\"conditions\":["
		"{\"type\":\"MemoryPressure\",\"status\":\"False\",\"reason\":\"KubeletHasSufficientMemory\"},"
		"{\"type\":\"Ready\",\"status\":\"False\",\"reason\":\"KubeletNotReady\"}],"
		"\"nodeInfo\":{\"kubeletVersion\":\"v1.28.2-eks-a5df82a\"}}}");
	assert_int_equal(preflight_node_from_object(object, &parsed), 0);
	assert_string_equal(parsed.name, "w1");
	assert_string_equal(parsed.ready_status, "False");
	assert_string_equal(parsed.ready_reason, "KubeletNotReady");
	assert_string_equal(parsed.kubelet_version, "v1.28.2-eks-a5df82a");
	assert_true(parsed.unschedulable);
	preflight_node_release(&parsed);
	doc_free(object);

	object = parse_json("{\"metadata\":{\"name\":\"bare\"}}");
	assert_int_equal(preflight_node_from_object(object, &parsed), 0);
	assert_null(parsed.ready_status);
	assert_null(parsed.kubelet_version);
	assert_false(parsed.unschedulable);
	preflight_node_release(&parsed);
	doc_free(object);
}

static void test_parse_min_version(void **state)
{
	static const char *const invalid[] = {
		"", "1", "v", "1.", "1.x", "1.24.", "1.2.3.4", "-1.24", " 1.24", "1.24 ", "1.1000",
		"1.+24", "1..24", "V1.24", NULL,
	};
	struct kube_version parsed;

	(void)state;
	assert_int_equal(preflight_parse_min_version("1.24", &parsed), 0);
	assert_int_equal(parsed.major, 1);
	assert_int_equal(parsed.minor, 24);
	assert_int_equal(preflight_parse_min_version("v1.27", &parsed), 0);
	assert_int_equal(parsed.minor, 27);
	assert_int_equal(preflight_parse_min_version("1.28.3", &parsed), 0);
	assert_int_equal(parsed.minor, 28);
	assert_int_equal(parsed.patch, 3);
	for (size_t i = 0; i < ARRAY_SIZE(invalid); i++)
		assert_int_equal(preflight_parse_min_version(invalid[i], &parsed), MLB_EINPUT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_storageclass_ga_true_is_default),
		cmocka_unit_test(test_storageclass_beta_true_is_default),
		cmocka_unit_test(test_storageclass_other_spellings_not_default),
		cmocka_unit_test(test_storageclass_both_annotations),
		cmocka_unit_test(test_storageclass_without_annotations),
		cmocka_unit_test(test_storageclass_from_object),
		cmocka_unit_test(test_evaluate_one_default_passes),
		cmocka_unit_test(test_evaluate_no_default_fails_with_patch),
		cmocka_unit_test(test_evaluate_only_class_not_default),
		cmocka_unit_test(test_evaluate_unsafe_name_not_in_command),
		cmocka_unit_test(test_evaluate_several_defaults_warns),
		cmocka_unit_test(test_evaluate_no_storageclass_fails),
		cmocka_unit_test(test_evaluate_long_list_is_cut),
		cmocka_unit_test(test_skew_cases),
		cmocka_unit_test(test_skew_ignores_patch),
		cmocka_unit_test(test_skew_other_major),
		cmocka_unit_test(test_kubelet_versions_pass),
		cmocka_unit_test(test_kubelet_versions_too_old_and_newer),
		cmocka_unit_test(test_kubelet_oldest_supported_before_1_25),
		cmocka_unit_test(test_kubelet_version_unreadable_warns),
		cmocka_unit_test(test_nodes_all_ready_pass),
		cmocka_unit_test(test_nodes_not_ready_fail_with_reason),
		cmocka_unit_test(test_nodes_none_fail),
		cmocka_unit_test(test_nodes_cordoned_warn),
		cmocka_unit_test(test_node_from_object),
		cmocka_unit_test(test_parse_min_version),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
