/*
 * Tests for the pure parts of the install: object rewrites, waves and
 * scopes, step digests, readiness gates, webhook matching, the model's
 * storage check and the parsing of what a node's containerd lists.
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

#include "common.h"
#include "install.h"

static struct doc_node *parse(const char *text)
{
	struct doc_node *node = NULL;
	struct doc_error error;

	assert_int_equal(doc_parse(text, strlen(text), NULL, &node, &error), 0);
	return node;
}

static int ready(const char *text, char *why, size_t size)
{
	struct doc_node *object = parse(text);
	int r = install_ready_evaluate(object, why, size);

	doc_free(object);
	return r;
}

static void rewrite_adds_labels_and_namespace(void **state)
{
	struct install_rewrites rewrites = { 0 };
	struct doc_node *object = parse("apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: sa\n"
					"  labels: {app: x}\n");

	(void)state;
	assert_int_equal(install_object_rewrite(object, "kserve", "1.2.3", "kserve", true, &rewrites), 0);
	assert_string_equal(doc_find_string(object, "metadata", "labels", "app", NULL), "x");
	assert_string_equal(doc_find_string(object, "metadata", "labels", INSTALL_LABEL_MANAGED_BY, NULL), "mlboot");
	assert_string_equal(doc_find_string(object, "metadata", "labels", INSTALL_LABEL_COMPONENT, NULL), "kserve");
	assert_string_equal(doc_find_string(object, "metadata", "labels", INSTALL_LABEL_VERSION, NULL), "1.2.3");
	assert_string_equal(doc_find_string(object, "metadata", "namespace", NULL), "kserve");
	assert_int_equal(rewrites.namespace_added, 1);
	doc_free(object);
}

static void rewrite_keeps_given_namespace(void **state)
{
	struct install_rewrites rewrites = { 0 };
	struct doc_node *object = parse("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, namespace: other}\n");

	(void)state;
	assert_int_equal(install_object_rewrite(object, "c", "1", "kserve", true, &rewrites), 0);
	assert_string_equal(doc_find_string(object, "metadata", "namespace", NULL), "other");
	assert_int_equal(rewrites.namespace_added, 0);
	doc_free(object);
}

static void rewrite_cluster_scoped_gets_no_namespace(void **state)
{
	struct install_rewrites rewrites = { 0 };
	struct doc_node *object = parse("apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\n"
					"metadata: {name: r, labels: null}\n");

	(void)state;
	assert_int_equal(install_object_rewrite(object, "c", "1", "ns", false, &rewrites), 0);
	assert_null(doc_find(object, "metadata", "namespace", NULL));
	assert_string_equal(doc_find_string(object, "metadata", "labels", INSTALL_LABEL_COMPONENT, NULL), "c");
	doc_free(object);
}

static void rewrite_pull_policy_everywhere(void **state)
{
	struct install_rewrites rewrites = { 0 };
	struct doc_node *object = parse(
		"apiVersion: serving.kserve.io/v1alpha1\nkind: ClusterServingRuntime\nmetadata: {name: r}\n"
		"spec:\n"
		"  containers:\n"
		"  - {name: a, image: x, imagePullPolicy: Always}\n"
		"  - {name: b, image: y, imagePullPolicy: Never}\n"
		"  template:\n"
		"    spec:\n"
		"      initContainers: [{name: c, image: z, imagePullPolicy: Always}]\n"
		"      ephemeralContainers: [{name: d, image: z, imagePullPolicy: Always}]\n");
	const struct doc_node *containers;

	(void)state;
	assert_int_equal(install_object_rewrite(object, "c", "1", NULL, false, &rewrites), 0);
	assert_int_equal(rewrites.pull_policy, 3);
	containers = doc_find(object, "spec", "containers", NULL);
	assert_string_equal(doc_get_string(containers->items[0], "imagePullPolicy"), "IfNotPresent");
	assert_string_equal(doc_get_string(containers->items[1], "imagePullPolicy"), "Never");
	doc_free(object);
}

static void wave_of_objects(void **state)
{
	struct doc_node *crd = parse("apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\n"
				     "metadata: {name: a.b}\n");
	struct doc_node *namespace = parse("apiVersion: v1\nkind: Namespace\nmetadata: {name: n}\n");
	struct doc_node *role = parse("apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: r}\n");
	struct doc_node *deployment = parse("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\n");

	(void)state;
	assert_int_equal(install_object_wave(crd, false), INSTALL_WAVE_CRDS);
	assert_int_equal(install_object_wave(namespace, false), INSTALL_WAVE_NAMESPACES);
	assert_int_equal(install_object_wave(role, false), INSTALL_WAVE_CLUSTER);
	assert_int_equal(install_object_wave(deployment, true), INSTALL_WAVE_REST);
	assert_string_equal(install_wave_name(INSTALL_WAVE_CLUSTER), "cluster");
	doc_free(crd);
	doc_free(namespace);
	doc_free(role);
	doc_free(deployment);
}

static void component_namespace_object(void **state)
{
	struct install_rewrites rewrites = { 0 };
	struct doc_node *created = install_namespace_new("argocd");
	struct doc_node *other = parse("apiVersion: v1\nkind: Namespace\nmetadata: {name: kubeflow}\n");
	struct doc_node *config_map = parse("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: argocd}\n");

	(void)state;
	assert_non_null(created);
	assert_string_equal(doc_get_string(created, "apiVersion"), "v1");
	assert_string_equal(doc_get_string(created, "kind"), "Namespace");
	assert_string_equal(doc_find_string(created, "metadata", "name", NULL), "argocd");
	assert_true(install_object_is_namespace(created, "argocd"));
	assert_false(install_object_is_namespace(other, "argocd"));
	assert_false(install_object_is_namespace(config_map, "argocd"));
	assert_int_equal(install_object_wave(created, false), INSTALL_WAVE_NAMESPACES);

	/* The added Namespace is rewritten as the manifests' objects are: labels, and no namespace of its own. */
	assert_int_equal(install_object_rewrite(created, "argocd", "1.0.0", "argocd", false, &rewrites), 0);
	assert_string_equal(doc_find_string(created, "metadata", "labels", INSTALL_LABEL_COMPONENT, NULL), "argocd");
	assert_null(doc_find(created, "metadata", "namespace", NULL));
	assert_int_equal(rewrites.namespace_added, 0);
	doc_free(created);
	doc_free(other);
	doc_free(config_map);
}

static void scope_of_builtin_and_crd_kinds(void **state)
{
	struct install_crd_scopes scopes = { 0 };
	struct doc_node *crd = parse("apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\n"
				     "metadata: {name: clusterissuers.cert-manager.io}\n"
				     "spec: {group: cert-manager.io, scope: Cluster, names: {kind: ClusterIssuer}}\n");

	(void)state;
	assert_int_equal(install_builtin_scope("v1", "Namespace"), 1);
	assert_int_equal(install_builtin_scope("v1", "ConfigMap"), 0);
	assert_int_equal(install_builtin_scope("admissionregistration.k8s.io/v1", "ValidatingWebhookConfiguration"), 1);
	assert_int_equal(install_builtin_scope("apps/v1", "Deployment"), 0);
	assert_int_equal(install_builtin_scope("cert-manager.io/v1", "ClusterIssuer"), -ENOENT);
	assert_int_equal(install_crd_scopes_add(&scopes, crd), 0);
	assert_int_equal(install_crd_scopes_find(&scopes, "cert-manager.io/v1", "ClusterIssuer"), 0);
	assert_int_equal(install_crd_scopes_find(&scopes, "cert-manager.io/v1", "Issuer"), -ENOENT);
	install_crd_scopes_release(&scopes);
	doc_free(crd);
}

static void digest_follows_content(void **state)
{
	struct install_object a = { .doc = parse("{kind: ConfigMap, data: {k: v}}") };
	struct install_object b = { .doc = parse("{kind: ConfigMap, data: {k: w}}") };
	struct install_object *first[] = { &a }, *second[] = { &b };
	char one[SHA256_HEX_LEN + 1], two[SHA256_HEX_LEN + 1], three[SHA256_HEX_LEN + 1];

	(void)state;
	assert_int_equal(install_digest_objects("apply/x/rest", first, 1, one), 0);
	assert_int_equal(install_digest_objects("apply/x/rest", second, 1, two), 0);
	assert_int_equal(install_digest_objects("apply/y/rest", first, 1, three), 0);
	assert_string_not_equal(one, two);
	assert_string_not_equal(one, three);
	assert_int_equal(install_digest_objects("apply/x/rest", first, 1, two), 0);
	assert_string_equal(one, two);
	doc_free(a.doc);
	doc_free(b.doc);
}

static void deployment_gate(void **state)
{
	char why[256];

	(void)state;
	assert_int_equal(ready("{apiVersion: apps/v1, kind: Deployment, metadata: {generation: 2}, spec: {replicas: 2},"
			       " status: {observedGeneration: 2, updatedReplicas: 2, availableReplicas: 2,"
			       " conditions: [{type: Available, status: 'True'}]}}", why, sizeof(why)), 1);
	assert_int_equal(ready("{apiVersion: apps/v1, kind: Deployment, metadata: {generation: 3}, spec: {replicas: 2},"
			       " status: {observedGeneration: 2, updatedReplicas: 2, availableReplicas: 2,"
			       " conditions: [{type: Available, status: 'True'}]}}", why, sizeof(why)), 0);
	assert_non_null(strstr(why, "generation 3"));
	assert_int_equal(ready("{apiVersion: apps/v1, kind: Deployment, metadata: {generation: 1}, spec: {replicas: 2},"
			       " status: {observedGeneration: 1, updatedReplicas: 1, availableReplicas: 1,"
			       " conditions: [{type: Available, status: 'True'}]}}", why, sizeof(why)), 0);
	assert_non_null(strstr(why, "1 of 2"));
	assert_int_equal(ready("{apiVersion: apps/v1, kind: Deployment, metadata: {generation: 1},"
			       " status: {observedGeneration: 1, conditions: [{type: Progressing, status: 'False',"
			       " reason: ProgressDeadlineExceeded, message: stuck}]}}", why, sizeof(why)), -EIO);
	assert_non_null(strstr(why, "stuck"));
}

static void statefulset_daemonset_job_gates(void **state)
{
	char why[256];

	(void)state;
	assert_int_equal(ready("{apiVersion: apps/v1, kind: StatefulSet, spec: {replicas: 1},"
			       " status: {readyReplicas: 1, updatedReplicas: 1}}", why, sizeof(why)), 1);
	assert_int_equal(ready("{apiVersion: apps/v1, kind: StatefulSet, spec: {replicas: 2},"
			       " status: {readyReplicas: 1, updatedReplicas: 2}}", why, sizeof(why)), 0);
	assert_int_equal(ready("{apiVersion: apps/v1, kind: DaemonSet, status: {desiredNumberScheduled: 3,"
			       " numberReady: 3, updatedNumberScheduled: 3}}", why, sizeof(why)), 1);
	assert_int_equal(ready("{apiVersion: apps/v1, kind: DaemonSet, status: {}}", why, sizeof(why)), 0);
	assert_int_equal(ready("{apiVersion: batch/v1, kind: Job, status: {conditions: [{type: Complete,"
			       " status: 'True'}]}}", why, sizeof(why)), 1);
	assert_int_equal(ready("{apiVersion: batch/v1, kind: Job, status: {conditions: [{type: Failed,"
			       " status: 'True', message: BackoffLimitExceeded}]}}", why, sizeof(why)), -EIO);
	assert_int_equal(ready("{apiVersion: batch/v1, kind: Job, status: {}}", why, sizeof(why)), 0);
}

static void condition_gates(void **state)
{
	char why[256];

	(void)state;
	assert_int_equal(ready("{apiVersion: apiregistration.k8s.io/v1, kind: APIService, status: {conditions:"
			       " [{type: Available, status: 'True'}]}}", why, sizeof(why)), 1);
	assert_int_equal(ready("{apiVersion: apiregistration.k8s.io/v1, kind: APIService, status: {conditions:"
			       " [{type: Available, status: 'False', message: no endpoints}]}}", why, sizeof(why)), 0);
	assert_non_null(strstr(why, "no endpoints"));
	assert_int_equal(ready("{apiVersion: apiextensions.k8s.io/v1, kind: CustomResourceDefinition, status:"
			       " {conditions: [{type: Established, status: 'True'}]}}", why, sizeof(why)), 1);
	assert_int_equal(ready("{apiVersion: serving.kserve.io/v1beta1, kind: InferenceService, status: {}}",
			       why, sizeof(why)), 0);
	assert_int_equal(ready("{apiVersion: v1, kind: ConfigMap}", why, sizeof(why)), 1);
	assert_false(install_kind_has_gate("v1", "ConfigMap"));
	assert_true(install_kind_has_gate("apps/v1", "Deployment"));
}

static void webhook_injection_gate(void **state)
{
	char why[256];

	(void)state;
	assert_int_equal(ready("{apiVersion: admissionregistration.k8s.io/v1, kind: ValidatingWebhookConfiguration,"
			       " metadata: {annotations: {cert-manager.io/inject-ca-from: kserve/serving-cert}},"
			       " webhooks: [{name: w, clientConfig: {service: {name: s, namespace: n}}}]}",
			       why, sizeof(why)), 0);
	assert_non_null(strstr(why, "caBundle"));
	assert_int_equal(ready("{apiVersion: admissionregistration.k8s.io/v1, kind: ValidatingWebhookConfiguration,"
			       " metadata: {annotations: {cert-manager.io/inject-ca-from: kserve/serving-cert}},"
			       " webhooks: [{name: w, clientConfig: {caBundle: Zm9v, service: {name: s}}}]}",
			       why, sizeof(why)), 1);
	assert_int_equal(ready("{apiVersion: admissionregistration.k8s.io/v1, kind: MutatingWebhookConfiguration,"
			       " webhooks: [{name: w, clientConfig: {service: {name: s}}}]}", why, sizeof(why)), 1);
}

static void webhook_rules_match(void **state)
{
	struct doc_node *configuration = parse(
		"{kind: ValidatingWebhookConfiguration, webhooks: ["
		" {name: a, failurePolicy: Fail, clientConfig: {service: {name: s, namespace: n}},"
		"  rules: [{apiGroups: [serving.kserve.io], apiVersions: [v1beta1], operations: [CREATE],"
		"           resources: [inferenceservices]}]},"
		" {name: b, failurePolicy: Ignore, clientConfig: {service: {name: s, namespace: n}},"
		"  rules: [{apiGroups: ['*'], apiVersions: ['*'], operations: ['*'], resources: ['*']}]},"
		" {name: c, clientConfig: {service: {name: s, namespace: n}},"
		"  rules: [{apiGroups: [cert-manager.io], apiVersions: ['*'], operations: [UPDATE],"
		"           resources: ['*/*'], scope: Namespaced}]},"
		" {name: d, clientConfig: {service: {name: s, namespace: n}},"
		"  rules: [{apiGroups: [''], apiVersions: [v1], operations: [DELETE], resources: [pods]}]}]}");

	(void)state;
	assert_true(install_webhook_matches(configuration, "serving.kserve.io", "v1beta1", "inferenceservices", true));
	assert_false(install_webhook_matches(configuration, "serving.kserve.io", "v1beta1", "servingruntimes", true));
	assert_true(install_webhook_matches(configuration, "cert-manager.io", "v1", "issuers", true));
	assert_false(install_webhook_matches(configuration, "cert-manager.io", "v1", "clusterissuers", false));
	assert_false(install_webhook_matches(configuration, "", "v1", "pods", true));
	assert_false(install_webhook_matches(configuration, "apps", "v1", "deployments", true));
	assert_false(install_webhook_matches(configuration, "admissionregistration.k8s.io", "v1",
					     "validatingwebhookconfigurations", false));
	doc_free(configuration);
}

static void webhook_rejection_detected(void **state)
{
	(void)state;
	assert_true(install_is_webhook_rejection(500, "Internal error occurred: failed calling webhook \"w\": "
						      "failed to call webhook: connection refused"));
	assert_false(install_is_webhook_rejection(500, "etcdserver: request timed out"));
	assert_false(install_is_webhook_rejection(422, "failed calling webhook"));
	assert_false(install_is_webhook_rejection(500, NULL));
}

static void model_storage_must_be_local(void **state)
{
	struct doc_node *remote = parse("{apiVersion: serving.kserve.io/v1beta1, kind: InferenceService,"
					" spec: {predictor: {model: {storageUri: 'gs://kfserving-examples/models/sklearn'}}}}");
	struct doc_node *image = parse("{apiVersion: serving.kserve.io/v1beta1, kind: InferenceService,"
				       " spec: {predictor: {model: {storageUri: 'oci://registry.local/iris:1'}}}}");
	struct doc_node *claim = parse("{apiVersion: serving.kserve.io/v1beta1, kind: InferenceService,"
				       " spec: {predictor: {sklearn: {storageUri: 'pvc://models/iris'}}}}");
	struct doc_node *other = parse("{apiVersion: v1, kind: ConfigMap, data: {storageUri: 's3://x'}}");

	(void)state;
	assert_non_null(install_model_storage_problem(remote));
	assert_null(install_model_storage_problem(image));
	assert_null(install_model_storage_problem(claim));
	assert_null(install_model_storage_problem(other));
	doc_free(remote);
	doc_free(image);
	doc_free(claim);
	doc_free(other);
}

static const char listing[] =
	"x86_64\n"
	"--\n"
	"REF                 TYPE                                       DIGEST"
	"                                                                  SIZE    PLATFORMS   LABELS\n"
	"quay.io/a/b:1       application/vnd.oci.image.manifest.v1+json sha256:"
	"e2488422930cf14c959172612eb0d8ac776539e3ec65a74b0576a1ec312da215 1.2 KiB linux/amd64 "
	"io.cri-containerd.image=managed,io.cri-containerd.pinned=pinned\n"
	"docker.io/c/d:2     application/vnd.oci.image.manifest.v1+json sha256:"
	"81085790f1bf4d4c834f213fd99509d5b459266fcd824d48eaa1013725ac1e0d 1.2 KiB linux/amd64 "
	"io.cri-containerd.image=managed\n"
	"--\n"
	"sha256:e2488422930cf14c959172612eb0d8ac776539e3ec65a74b0576a1ec312da215\n"
	"sha256:2ca35fdae6c20009a1f336da4c792aab9fbe40289990e0109e3bc0aad3d846b7\n";

static void node_listing_parsed(void **state)
{
	struct install_node_images images;

	(void)state;
	assert_int_equal(install_node_images_parse(listing, strlen(listing), &images), 0);
	assert_string_equal(images.arch, "amd64");
	assert_int_equal(images.image_count, 2);
	assert_int_equal(images.blob_count, 2);
	assert_true(install_node_has_blob(&images,
		"sha256:2ca35fdae6c20009a1f336da4c792aab9fbe40289990e0109e3bc0aad3d846b7"));
	assert_false(install_node_has_blob(&images,
		"sha256:81085790f1bf4d4c834f213fd99509d5b459266fcd824d48eaa1013725ac1e0d"));
	assert_true(install_node_has_image(&images, "quay.io/a/b:1",
		"sha256:e2488422930cf14c959172612eb0d8ac776539e3ec65a74b0576a1ec312da215", true));
	assert_true(install_node_has_image(&images, "docker.io/c/d:2",
		"sha256:81085790f1bf4d4c834f213fd99509d5b459266fcd824d48eaa1013725ac1e0d", false));
	assert_false(install_node_has_image(&images, "docker.io/c/d:2",
		"sha256:81085790f1bf4d4c834f213fd99509d5b459266fcd824d48eaa1013725ac1e0d", true));
	assert_false(install_node_has_image(&images, "quay.io/a/b:1",
		"sha256:81085790f1bf4d4c834f213fd99509d5b459266fcd824d48eaa1013725ac1e0d", false));
	install_node_images_release(&images);
}

static void node_listing_rejected(void **state)
{
	struct install_node_images images;
	static const char no_sections[] = "x86_64\nREF TYPE DIGEST\n";
	static const char bad_arch[] = "pdp11\n--\nREF\n--\n";
	static const char bad_blob[] = "aarch64\n--\nREF\n--\nsha256:xyz\n";
	static const char empty_node[] = "aarch64\n--\nREF TYPE DIGEST SIZE PLATFORMS LABELS\n--\n";

	(void)state;
	assert_int_equal(install_node_images_parse(no_sections, strlen(no_sections), &images), MLB_EINPUT);
	assert_int_equal(install_node_images_parse(bad_arch, strlen(bad_arch), &images), MLB_EINPUT);
	assert_int_equal(install_node_images_parse(bad_blob, strlen(bad_blob), &images), MLB_EINPUT);
	assert_int_equal(install_node_images_parse(empty_node, strlen(empty_node), &images), 0);
	assert_string_equal(images.arch, "arm64");
	assert_int_equal(images.image_count, 0);
	install_node_images_release(&images);
	assert_null(install_oci_arch("mips"));
	assert_string_equal(install_oci_arch("armv7l"), "arm");
}

/* The component names of the project's test platform, in its order. */
static const char *const platform_names[] = {
	"cert-manager", "istio", "kserve", "kubeflow", "argocd", "sample-model",
};

/* An install with a parsed mlboot.yaml and a bundle index of the given components; nothing is opened. */
struct select_fixture {
	struct install install;
	struct bundle_component components[8];
	struct bundle_index index;
};

static void select_fixture_init(struct select_fixture *fixture, const char *components_yaml,
				const char *const *names, size_t count, const char *only)
{
	struct config_problems problems = { 0 };
	char text[1024];

	memset(fixture, 0, sizeof(*fixture));
	snprintf(text, sizeof(text),
		 "apiVersion: mlboot.dev/v1alpha1\nkind: Platform\nmetadata: {name: a}\n"
		 "spec:\n  hosts: [{name: cp1, role: control-plane, local: true}]\n%s", components_yaml);
	assert_int_equal(config_parse("lab.yaml", text, strlen(text), &fixture->install.config, &problems), 0);
	assert_true(count <= ARRAY_SIZE(fixture->components));
	for (size_t i = 0; i < count; i++) {
		fixture->components[i].name = (char *)names[i];
		fixture->components[i].namespace = strcmp(names[i], "sample-model") == 0 ? (char *)"ml" : NULL;
	}
	fixture->index.components = fixture->components;
	fixture->index.component_count = count;
	fixture->install.index = &fixture->index;
	fixture->install.bundle_path = "lab.bundle";
	fixture->install.settings.config_path = "lab.yaml";
	fixture->install.settings.only = only;
}

static void select_fixture_release(struct select_fixture *fixture)
{
	install_components_release(&fixture->install);
	config_release(&fixture->install.config);
}

static const struct install_component *selected_component(const struct select_fixture *fixture, const char *name)
{
	for (size_t i = 0; i < fixture->install.component_count; i++)
		if (strcmp(fixture->install.components[i].bundle->name, name) == 0)
			return &fixture->install.components[i];
	fail_msg("component %s is not in the install", name);
	return NULL;
}

static void select_listed_components_only(void **state)
{
	struct select_fixture fixture;

	(void)state;
	select_fixture_init(&fixture, "  components: {certManager: {}, argocd: {}}\n", platform_names,
			    ARRAY_SIZE(platform_names), NULL);
	assert_int_equal(install_components_select(&fixture.install), 0);
	assert_int_equal(fixture.install.component_count, ARRAY_SIZE(platform_names));
	assert_true(selected_component(&fixture, "cert-manager")->selected);
	assert_true(selected_component(&fixture, "argocd")->selected);
	assert_false(selected_component(&fixture, "istio")->listed);
	assert_false(selected_component(&fixture, "istio")->selected);
	assert_false(selected_component(&fixture, "kserve")->selected);
	assert_false(selected_component(&fixture, "kubeflow")->selected);
	assert_false(selected_component(&fixture, "sample-model")->selected);
	select_fixture_release(&fixture);
}

static void select_every_component_by_default(void **state)
{
	static const char *const names[] = { "cert-manager", "istio", "knative-serving", "kserve", "custom-part" };
	struct select_fixture fixture;

	(void)state;
	select_fixture_init(&fixture, "", names, ARRAY_SIZE(names), NULL);
	assert_int_equal(install_components_select(&fixture.install), 0);
	for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
		assert_true(selected_component(&fixture, names[i])->listed);
		assert_true(selected_component(&fixture, names[i])->selected);
	}
	select_fixture_release(&fixture);
}

static void select_knative_goes_with_kserve(void **state)
{
	static const char *const names[] = { "cert-manager", "istio", "knative-serving", "kserve", "argocd" };
	struct select_fixture fixture;

	(void)state;
	select_fixture_init(&fixture, "  components: {certManager: {}, istio: {}, kserve: {}}\n", names,
			    ARRAY_SIZE(names), NULL);
	assert_int_equal(install_components_select(&fixture.install), 0);
	assert_true(selected_component(&fixture, "knative-serving")->selected);
	assert_true(selected_component(&fixture, "kserve")->selected);
	assert_false(selected_component(&fixture, "argocd")->selected);
	select_fixture_release(&fixture);
}

static void select_only_narrows_listed(void **state)
{
	struct select_fixture fixture;

	(void)state;
	select_fixture_init(&fixture, "  components: {certManager: {}, argocd: {}}\n", platform_names,
			    ARRAY_SIZE(platform_names), "argocd");
	assert_int_equal(install_components_select(&fixture.install), 0);
	assert_true(selected_component(&fixture, "argocd")->selected);
	assert_true(selected_component(&fixture, "cert-manager")->listed);
	assert_false(selected_component(&fixture, "cert-manager")->selected);
	assert_false(selected_component(&fixture, "kubeflow")->selected);
	select_fixture_release(&fixture);
}

static void select_only_unlisted_rejected(void **state)
{
	struct select_fixture fixture;

	(void)state;
	select_fixture_init(&fixture, "  components: {certManager: {}, argocd: {}}\n", platform_names,
			    ARRAY_SIZE(platform_names), "kubeflow");
	assert_int_equal(install_components_select(&fixture.install), MLB_EINPUT);
	select_fixture_release(&fixture);
}

static void select_only_unknown_rejected(void **state)
{
	struct select_fixture fixture;

	(void)state;
	select_fixture_init(&fixture, "", platform_names, ARRAY_SIZE(platform_names), "nosuch");
	assert_int_equal(install_components_select(&fixture.install), MLB_EUSAGE);
	select_fixture_release(&fixture);
}

static void select_bundle_lacks_listed(void **state)
{
	static const char *const names[] = { "cert-manager", "istio", "kserve" };
	struct select_fixture fixture;

	(void)state;
	select_fixture_init(&fixture, "  components: {certManager: {}, argocd: {}}\n", names, ARRAY_SIZE(names),
			    NULL);
	assert_int_equal(install_components_select(&fixture.install), MLB_EINPUT);
	select_fixture_release(&fixture);
}

static void select_sample_model_namespace(void **state)
{
	static const char components[] =
		"  components:\n    certManager: {}\n    istio: {}\n    kserve: {}\n    sampleModel: {namespace: zzz}\n";
	struct select_fixture fixture;

	(void)state;
	select_fixture_init(&fixture, components, platform_names, ARRAY_SIZE(platform_names), NULL);
	assert_int_equal(install_components_select(&fixture.install), 0);
	assert_string_equal(selected_component(&fixture, "sample-model")->namespace, "zzz");
	assert_null(selected_component(&fixture, "kserve")->namespace);
	select_fixture_release(&fixture);

	/* Without the setting, the bundle's namespace stays. */
	select_fixture_init(&fixture, "", platform_names, ARRAY_SIZE(platform_names), NULL);
	assert_int_equal(install_components_select(&fixture.install), 0);
	assert_string_equal(selected_component(&fixture, "sample-model")->namespace, "ml");
	select_fixture_release(&fixture);
}

static void move_namespace_of_objects(void **state)
{
	struct doc_node *space = parse("apiVersion: v1\nkind: Namespace\nmetadata: {name: ml}\n");
	struct doc_node *service = parse("apiVersion: serving.kserve.io/v1beta1\nkind: InferenceService\n"
					 "metadata: {name: iris, namespace: ml}\n");
	struct doc_node *other = parse("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, namespace: kserve}\n");
	struct doc_node *role = parse("apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\n"
				      "metadata: {name: ml}\n");

	(void)state;
	assert_int_equal(install_object_move_namespace(space, false, "ml", "zzz"), 1);
	assert_string_equal(doc_find_string(space, "metadata", "name", NULL), "zzz");
	assert_int_equal(install_object_move_namespace(service, true, "ml", "zzz"), 1);
	assert_string_equal(doc_find_string(service, "metadata", "namespace", NULL), "zzz");
	assert_int_equal(install_object_move_namespace(other, true, "ml", "zzz"), 0);
	assert_string_equal(doc_find_string(other, "metadata", "namespace", NULL), "kserve");
	assert_int_equal(install_object_move_namespace(role, false, "ml", "zzz"), 0);
	assert_string_equal(doc_find_string(role, "metadata", "name", NULL), "ml");
	doc_free(space);
	doc_free(service);
	doc_free(other);
	doc_free(role);
}

static void kserve_mode_set_in_configmap(void **state)
{
	struct doc_node *raw = parse("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: inferenceservice-config}\n"
				     "data:\n  deploy: '{\"defaultDeploymentMode\": \"RawDeployment\"}'\n");
	struct doc_node *serverless = parse("apiVersion: v1\nkind: ConfigMap\n"
					    "metadata: {name: inferenceservice-config, namespace: kserve}\n"
					    "data:\n  deploy: |-\n    {\n      \"defaultDeploymentMode\": \"Serverless\"\n    }\n");
	struct doc_node *without = parse("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: inferenceservice-config}\n"
					 "data:\n  deploy: '{\"other\": 1}'\n");
	struct doc_node *not_object = parse("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: inferenceservice-config}\n"
					    "data:\n  deploy: '[1, 2]'\n");
	struct doc_node *other = parse("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: config}\n"
				       "data:\n  deploy: '{\"defaultDeploymentMode\": \"Serverless\"}'\n");
	char previous[64];

	(void)state;
	assert_int_equal(install_kserve_set_deployment_mode(raw, "RawDeployment", previous, sizeof(previous)), 1);
	assert_string_equal(previous, "RawDeployment");
	assert_string_equal(doc_find_string(raw, "data", "deploy", NULL), "{\"defaultDeploymentMode\":\"RawDeployment\"}");

	assert_int_equal(install_kserve_set_deployment_mode(serverless, "RawDeployment", previous, sizeof(previous)), 1);
	assert_string_equal(previous, "Serverless");
	assert_string_equal(doc_find_string(serverless, "data", "deploy", NULL),
			    "{\"defaultDeploymentMode\":\"RawDeployment\"}");

	assert_int_equal(install_kserve_set_deployment_mode(without, "Serverless", previous, sizeof(previous)), 1);
	assert_string_equal(previous, "");
	assert_string_equal(doc_find_string(without, "data", "deploy", NULL),
			    "{\"other\":1,\"defaultDeploymentMode\":\"Serverless\"}");

	assert_int_equal(install_kserve_set_deployment_mode(not_object, "RawDeployment", previous, sizeof(previous)),
			 MLB_EINPUT);
	assert_int_equal(install_kserve_set_deployment_mode(other, "RawDeployment", previous, sizeof(previous)), 0);
	assert_string_equal(doc_find_string(other, "data", "deploy", NULL), "{\"defaultDeploymentMode\": \"Serverless\"}");
	doc_free(raw);
	doc_free(serverless);
	doc_free(without);
	doc_free(not_object);
	doc_free(other);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(rewrite_adds_labels_and_namespace),
		cmocka_unit_test(rewrite_keeps_given_namespace),
		cmocka_unit_test(rewrite_cluster_scoped_gets_no_namespace),
		cmocka_unit_test(rewrite_pull_policy_everywhere),
		cmocka_unit_test(wave_of_objects),
		cmocka_unit_test(component_namespace_object),
		cmocka_unit_test(scope_of_builtin_and_crd_kinds),
		cmocka_unit_test(digest_follows_content),
		cmocka_unit_test(deployment_gate),
		cmocka_unit_test(statefulset_daemonset_job_gates),
		cmocka_unit_test(condition_gates),
		cmocka_unit_test(webhook_injection_gate),
		cmocka_unit_test(webhook_rules_match),
		cmocka_unit_test(webhook_rejection_detected),
		cmocka_unit_test(model_storage_must_be_local),
		cmocka_unit_test(node_listing_parsed),
		cmocka_unit_test(node_listing_rejected),
		cmocka_unit_test(select_listed_components_only),
		cmocka_unit_test(select_every_component_by_default),
		cmocka_unit_test(select_knative_goes_with_kserve),
		cmocka_unit_test(select_only_narrows_listed),
		cmocka_unit_test(select_only_unlisted_rejected),
		cmocka_unit_test(select_only_unknown_rejected),
		cmocka_unit_test(select_bundle_lacks_listed),
		cmocka_unit_test(select_sample_model_namespace),
		cmocka_unit_test(move_namespace_of_objects),
		cmocka_unit_test(kserve_mode_set_in_configmap),
	};

	log_set_level(LOG_CRIT);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
