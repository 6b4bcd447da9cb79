/*
 * Objects of the install: their scope, their wave, the rewrites every
 * applied object gets, and the digests that key the journal's steps.
 * Nothing here talks to the network.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "install.h"

const char *install_wave_name(enum install_wave wave)
{
	switch (wave) {
	case INSTALL_WAVE_CRDS:
		return "crds";
	case INSTALL_WAVE_NAMESPACES:
		return "namespaces";
	case INSTALL_WAVE_CLUSTER:
		return "cluster";
	default:
		return "rest";
	}
}

/* The group of an apiVersion: "" for "v1", "apps" for "apps/v1". */
static void api_group(const char *api_version, char *out, size_t size)
{
	const char *slash = api_version ? strchr(api_version, '/') : NULL;
	size_t len = slash ? (size_t)(slash - api_version) : 0;

	if (len >= size)
		len = size - 1;
	memcpy(out, api_version ? api_version : "", len);
	out[len] = '\0';
}

/* Kinds of Kubernetes 1.24 to 1.33 and their scope; true is cluster-scoped. */
static const struct {
	const char *group;
	const char *kind;
	bool cluster;
} builtin_kinds[] = {
	{ "", "Namespace", true },
	{ "", "Node", true },
	{ "", "PersistentVolume", true },
	{ "", "ComponentStatus", true },
	{ "", "ConfigMap", false },
	{ "", "Secret", false },
	{ "", "Service", false },
	{ "", "ServiceAccount", false },
	{ "", "Endpoints", false },
	{ "", "Pod", false },
	{ "", "PodTemplate", false },
	{ "", "PersistentVolumeClaim", false },
	{ "", "ReplicationController", false },
	{ "", "LimitRange", false },
	{ "", "ResourceQuota", false },
	{ "", "Event", false },
	{ "apps", "Deployment", false },
	{ "apps", "StatefulSet", false },
	{ "apps", "DaemonSet", false },
	{ "apps", "ReplicaSet", false },
	{ "apps", "ControllerRevision", false },
	{ "batch", "Job", false },
	{ "batch", "CronJob", false },
	{ "autoscaling", "HorizontalPodAutoscaler", false },
	{ "policy", "PodDisruptionBudget", false },
	{ "networking.k8s.io", "NetworkPolicy", false },
	{ "networking.k8s.io", "Ingress", false },
	{ "networking.k8s.io", "IngressClass", true },
	{ "discovery.k8s.io", "EndpointSlice", false },
	{ "coordination.k8s.io", "Lease", false },
	{ "events.k8s.io", "Event", false },
	{ "rbac.authorization.k8s.io", "Role", false },
	{ "rbac.authorization.k8s.io", "RoleBinding", false },
	{ "rbac.authorization.k8s.io", "ClusterRole", true },
	{ "rbac.authorization.k8s.io", "ClusterRoleBinding", true },
	{ "apiextensions.k8s.io", "CustomResourceDefinition", true },
	{ "apiregistration.k8s.io", "APIService", true },
	{ "admissionregistration.k8s.io", "ValidatingWebhookConfiguration", true },
	{ "admissionregistration.k8s.io", "MutatingWebhookConfiguration", true },
	{ "admissionregistration.k8s.io", "ValidatingAdmissionPolicy", true },
	{ "admissionregistration.k8s.io", "ValidatingAdmissionPolicyBinding", true },
	{ "storage.k8s.io", "StorageClass", true },
	{ "storage.k8s.io", "CSIDriver", true },
	{ "storage.k8s.io", "CSINode", true },
	{ "storage.k8s.io", "VolumeAttachment", true },
	{ "storage.k8s.io", "CSIStorageCapacity", false },
	{ "scheduling.k8s.io", "PriorityClass", true },
	{ "node.k8s.io", "RuntimeClass", true },
	{ "flowcontrol.apiserver.k8s.io", "FlowSchema", true },
	{ "flowcontrol.apiserver.k8s.io", "PriorityLevelConfiguration", true },
	{ "certificates.k8s.io", "CertificateSigningRequest", true },
};

int install_builtin_scope(const char *api_version, const char *kind)
{
	char group[256];

	if (!api_version || !kind)
		return -ENOENT;
	api_group(api_version, group, sizeof(group));
	for (size_t i = 0; i < ARRAY_SIZE(builtin_kinds); i++)
		if (strcmp(builtin_kinds[i].group, group) == 0 && strcmp(builtin_kinds[i].kind, kind) == 0)
			return builtin_kinds[i].cluster ? 1 : 0;
	return -ENOENT;
}

void install_crd_scopes_release(struct install_crd_scopes *scopes)
{
	for (size_t i = 0; i < scopes->count; i++) {
		free(scopes->items[i].group);
		free(scopes->items[i].kind);
	}
	free(scopes->items);
	memset(scopes, 0, sizeof(*scopes));
}

static bool is_crd(const struct doc_node *object)
{
	const char *api_version = doc_get_string(object, "apiVersion");
	const char *kind = doc_get_string(object, "kind");

	return api_version && kind && strncmp(api_version, "apiextensions.k8s.io/", 21) == 0 &&
	       strcmp(kind, "CustomResourceDefinition") == 0;
}

int install_crd_scopes_add(struct install_crd_scopes *scopes, const struct doc_node *object)
{
	const char *group, *kind, *scope;
	struct install_crd_scope *item;

	if (!is_crd(object))
		return 0;
	group = doc_find_string(object, "spec", "group", NULL);
	kind = doc_find_string(object, "spec", "names", "kind", NULL);
	scope = doc_find_string(object, "spec", "scope", NULL);
	if (!group || !kind)
		return 0;
	if (scopes->count == scopes->capacity) {
		size_t capacity = scopes->capacity ? scopes->capacity * 2 : 32;
		struct install_crd_scope *items = realloc(scopes->items, capacity * sizeof(*items));

		if (!items)
			return -ENOMEM;
		scopes->items = items;
		scopes->capacity = capacity;
	}
	item = &scopes->items[scopes->count];
	item->group = strdup(group);
	item->kind = strdup(kind);
	item->namespaced = !scope || strcmp(scope, "Cluster") != 0;
	if (!item->group || !item->kind) {
		free(item->group);
		free(item->kind);
		return -ENOMEM;
	}
	scopes->count++;
	return 0;
}

int install_crd_scopes_find(const struct install_crd_scopes *scopes, const char *api_version,
			    const char *kind)
{
	char group[256];

	if (!api_version || !kind)
		return -ENOENT;
	api_group(api_version, group, sizeof(group));
	for (size_t i = 0; i < scopes->count; i++)
		if (strcmp(scopes->items[i].group, group) == 0 && strcmp(scopes->items[i].kind, kind) == 0)
			return scopes->items[i].namespaced ? 1 : 0;
	return -ENOENT;
}

enum install_wave install_object_wave(const struct doc_node *object, bool namespaced)
{
	const char *api_version = doc_get_string(object, "apiVersion");
	const char *kind = doc_get_string(object, "kind");

	if (is_crd(object))
		return INSTALL_WAVE_CRDS;
	if (api_version && kind && strcmp(api_version, "v1") == 0 && strcmp(kind, "Namespace") == 0)
		return INSTALL_WAVE_NAMESPACES;
	return namespaced ? INSTALL_WAVE_REST : INSTALL_WAVE_CLUSTER;
}

bool install_object_is_namespace(const struct doc_node *object, const char *name)
{
	const char *api_version = doc_get_string(object, "apiVersion");
	const char *kind = doc_get_string(object, "kind");
	const char *object_name = doc_find_string(object, "metadata", "name", NULL);

	return api_version && kind && object_name && strcmp(api_version, "v1") == 0 &&
	       strcmp(kind, "Namespace") == 0 && strcmp(object_name, name) == 0;
}

struct doc_node *install_namespace_new(const char *name)
{
	struct doc_node *object = doc_new(DOC_MAP);
	struct doc_node *metadata;

	if (!object)
		return NULL;
	/* doc_map_set() takes its value, also when it fails. */
	if (doc_map_set_string(object, "apiVersion", "v1") < 0 || doc_map_set_string(object, "kind", "Namespace") < 0 ||
	    doc_map_set(object, "metadata", doc_new(DOC_MAP)) < 0)
		goto fail;
	metadata = doc_get_mutable(object, "metadata");
	if (!metadata || doc_map_set_string(metadata, "name", name) < 0)
		goto fail;
	return object;
fail:
	doc_free(object);
	return NULL;
}

int install_object_move_namespace(struct doc_node *object, bool namespaced, const char *from, const char *to)
{
	struct doc_node *metadata = doc_get_mutable(object, "metadata");
	const char *current;

	if (!metadata || metadata->type != DOC_MAP || strcmp(from, to) == 0)
		return 0;
	if (install_object_is_namespace(object, from))
		return doc_map_set_string(metadata, "name", to) < 0 ? -ENOMEM : 1;
	current = doc_get_string(metadata, "namespace");
	if (!namespaced || !current || strcmp(current, from) != 0)
		return 0;
	return doc_map_set_string(metadata, "namespace", to) < 0 ? -ENOMEM : 1;
}

int install_kserve_set_deployment_mode(struct doc_node *object, const char *mode, char *previous,
				       size_t previous_size)
{
	struct doc_node *data = doc_get_mutable(object, "data");
	const char *deploy = doc_find_string(object, "data", "deploy", NULL);
	struct doc_node *settings = NULL;
	struct buf json = BUF_INIT(1 << 16);
	struct doc_error error;
	const char *current;
	int r;

	if (!doc_string_equals(doc_get(object, "apiVersion"), "v1") ||
	    !doc_string_equals(doc_get(object, "kind"), "ConfigMap") ||
	    !doc_string_equals(doc_find(object, "metadata", "name", NULL), "inferenceservice-config"))
		return 0;
	if (!data || data->type != DOC_MAP || !deploy)
		return MLB_EINPUT;
	/* The value is JSON, which the YAML parser reads too. */
	r = doc_parse(deploy, strlen(deploy), NULL, &settings, &error);
	if (r < 0)
		return r == -ENOMEM ? r : MLB_EINPUT;
	if (settings->type != DOC_MAP) {
		doc_free(settings);
		return MLB_EINPUT;
	}
	current = doc_get_string(settings, "defaultDeploymentMode");
	snprintf(previous, previous_size, "%s", current ? current : "");
	r = doc_map_set_string(settings, "defaultDeploymentMode", mode);
	if (r == 0)
		r = doc_write_json(settings, &json);
	if (r == 0)
		r = doc_map_set_string(data, "deploy", buf_str(&json));
	doc_free(settings);
	buf_release(&json);
	return r < 0 ? -ENOMEM : 1;
}

void install_object_describe(const struct doc_node *object, char *out, size_t size)
{
	const char *kind = doc_get_string(object, "kind");
	const char *name = doc_find_string(object, "metadata", "name", NULL);
	const char *namespace = doc_find_string(object, "metadata", "namespace", NULL);

	if (namespace && *namespace)
		snprintf(out, size, "%s '%s/%s'", kind ? kind : "object", namespace, name ? name : "");
	else
		snprintf(out, size, "%s '%s'", kind ? kind : "object", name ? name : "");
}

static bool is_container_list_key(const char *key)
{
	return key && (strcmp(key, "containers") == 0 || strcmp(key, "initContainers") == 0 ||
		       strcmp(key, "ephemeralContainers") == 0);
}

/*
 * Sets imagePullPolicy Always to IfNotPresent in every container list of
 * the tree: pod templates sit at different paths in each workload kind and
 * custom resource, so the whole object is walked.
 */
static int rewrite_pull_policy(struct doc_node *node, unsigned depth, unsigned *count)
{
	int r;

	if (!node || depth > 64)
		return 0;
	if (node->type == DOC_MAP) {
		for (size_t i = 0; i < node->count; i++) {
			struct doc_node *member = node->items[i];

			if (is_container_list_key(member->key) && member->type == DOC_SEQ) {
				for (size_t k = 0; k < member->count; k++) {
					struct doc_node *container = member->items[k];
					struct doc_node *policy = doc_get_mutable(container, "imagePullPolicy");

					if (policy && doc_string_equals(policy, "Always")) {
						r = doc_map_set_string(container, "imagePullPolicy", "IfNotPresent");
						if (r < 0)
							return r;
						(*count)++;
					}
				}
			}
			r = rewrite_pull_policy(member, depth + 1, count);
			if (r < 0)
				return r;
		}
	} else if (node->type == DOC_SEQ) {
		for (size_t i = 0; i < node->count; i++) {
			r = rewrite_pull_policy(node->items[i], depth + 1, count);
			if (r < 0)
				return r;
		}
	}
	return 0;
}

int install_object_rewrite(struct doc_node *object, const char *component, const char *version,
			   const char *namespace, bool namespaced, struct install_rewrites *rewrites)
{
	struct doc_node *metadata, *labels;
	const char *current;
	int r;

	if (!object || object->type != DOC_MAP)
		return MLB_EINPUT;
	metadata = doc_map_ensure_map(object, "metadata");
	if (!metadata)
		return -ENOMEM;
	if (metadata->type != DOC_MAP)
		return MLB_EINPUT;
	labels = doc_get_mutable(metadata, "labels");
	if (labels && labels->type == DOC_NULL) {
		doc_map_remove(metadata, "labels");
		labels = NULL;
	}
	if (!labels)
		labels = doc_map_ensure_map(metadata, "labels");
	if (!labels)
		return -ENOMEM;
	if (labels->type != DOC_MAP)
		return MLB_EINPUT;
	r = doc_map_set_string(labels, INSTALL_LABEL_MANAGED_BY, INSTALL_MANAGER);
	if (r == 0)
		r = doc_map_set_string(labels, INSTALL_LABEL_COMPONENT, component);
	if (r == 0)
		r = doc_map_set_string(labels, INSTALL_LABEL_VERSION, version);
	if (r < 0)
		return r;

	current = doc_get_string(metadata, "namespace");
	if (namespaced && (!current || !*current)) {
		r = doc_map_set_string(metadata, "namespace", namespace && *namespace ? namespace : "default");
		if (r < 0)
			return r;
		rewrites->namespace_added++;
	}
	return rewrite_pull_policy(object, 0, &rewrites->pull_policy);
}

/* Finds the first storageUri string under node whose scheme cannot be reached from an air gap. */
static const char *find_remote_storage(const struct doc_node *node, unsigned depth)
{
	static const char *const local_schemes[] = { "oci://", "pvc://" };

	if (!node || depth > 32)
		return NULL;
	if (node->type == DOC_MAP || node->type == DOC_SEQ) {
		for (size_t i = 0; i < node->count; i++) {
			const struct doc_node *member = node->items[i];
			const char *found;

			if (member->key && strcmp(member->key, "storageUri") == 0 && member->type == DOC_STRING &&
			    strstr(member->text, "://")) {
				bool local = false;

				for (size_t k = 0; k < ARRAY_SIZE(local_schemes); k++)
					if (strncmp(member->text, local_schemes[k], strlen(local_schemes[k])) == 0)
						local = true;
				if (!local)
					return member->text;
			}
			found = find_remote_storage(member, depth + 1);
			if (found)
				return found;
		}
	}
	return NULL;
}

const char *install_model_storage_problem(const struct doc_node *object)
{
	const char *api_version = doc_get_string(object, "apiVersion");
	const char *kind = doc_get_string(object, "kind");

	if (!api_version || !kind || strncmp(api_version, "serving.kserve.io/", 18) != 0 ||
	    strcmp(kind, "InferenceService") != 0)
		return NULL;
	if (find_remote_storage(doc_get(object, "spec"), 0))
		return "its storageUri names a remote store, which an air-gapped cluster cannot reach; "
		       "carry the model in the bundle as an OCI image (oci://) or on a PVC (pvc://)";
	return NULL;
}

int install_digest_text(const char *text, size_t len, char out[SHA256_HEX_LEN + 1])
{
	return sha256_hex(text, len, out);
}

int install_digest_objects(const char *label, struct install_object *const *objects, size_t count,
			   char out[SHA256_HEX_LEN + 1])
{
	struct buf json = BUF_INIT(INSTALL_MANIFEST_MAX);
	unsigned char digest[SHA256_BYTES];
	struct sha256 hash;
	int r;

	r = sha256_init(&hash);
	if (r < 0)
		return r;
	r = sha256_update(&hash, label, strlen(label) + 1);
	for (size_t i = 0; r == 0 && i < count; i++) {
		buf_reset(&json);
		r = doc_write_json(objects[i]->doc, &json);
		if (r == 0)
			r = sha256_update(&hash, json.data, json.len + 1);
	}
	if (r == 0)
		r = sha256_final(&hash, digest);
	else
		sha256_release(&hash);
	if (r == 0)
		sha256_to_hex(digest, out);
	buf_release(&json);
	return r;
}
