/*
 * Writes to the API: server-side apply, delete and access reviews.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kube_private.h"

#define APPLY_CONTENT_TYPE "application/apply-patch+yaml"

/* Names an object in messages: "Deployment 'kubeflow/ml-pipeline'", or its line when it has no kind or name. */
static void describe_object(const struct doc_node *object, char *out, size_t size)
{
	const char *kind = doc_get_string(object, "kind");
	const char *name = doc_find_string(object, "metadata", "name", NULL);
	const char *namespace = doc_find_string(object, "metadata", "namespace", NULL);

	if (kind && *kind && name && *name)
		snprintf(out, size, "%s '%s%s%s'", kind, namespace && *namespace ? namespace : "",
			 namespace && *namespace ? "/" : "", name);
	else if (kind && *kind)
		snprintf(out, size, "%s at line %u", kind, object->line);
	else
		snprintf(out, size, "the object at line %u", object ? object->line : 0);
}

static int check_object(const struct doc_node *object, const char *description)
{
	const char *missing = NULL;

	if (!object || object->type != DOC_MAP)
		return kube_fail(MLB_EINPUT, "%s is not a map; a manifest object needs apiVersion, kind and metadata",
				 description);
	if (!doc_get_string(object, "apiVersion") || !*doc_get_string(object, "apiVersion"))
		missing = "apiVersion";
	else if (!doc_get_string(object, "kind") || !*doc_get_string(object, "kind"))
		missing = "kind";
	else if (!doc_find_string(object, "metadata", "name", NULL) ||
		 !*doc_find_string(object, "metadata", "name", NULL))
		missing = "metadata.name";
	if (missing)
		return kube_fail(MLB_EINPUT, "%s has no %s; every applied object needs apiVersion, kind and "
				 "metadata.name (generateName cannot be applied)", description, missing);
	return 0;
}

int kube_apply(struct kube_client *client, const struct doc_node *object,
	       const char *default_namespace, unsigned flags,
	       struct doc_node **result, long *status, char **message)
{
	const struct kube_resource *resource;
	struct kube_response response = { 0 };
	struct buf body = BUF_INIT(KUBE_REQUEST_MAX);
	const char *namespace = NULL;
	char *path = NULL, *request = NULL;
	char description[512];
	int r;

	if (result)
		*result = NULL;
	if (status)
		*status = 0;
	if (message)
		*message = NULL;
	describe_object(object, description, sizeof(description));
	r = check_object(object, description);
	if (r < 0)
		return r;
	r = kube_resource_find(client, doc_get_string(object, "apiVersion"), doc_get_string(object, "kind"), &resource);
	if (r < 0)
		return r;
	if (resource->namespaced) {
		namespace = doc_find_string(object, "metadata", "namespace", NULL);
		if (!namespace || !*namespace)
			namespace = default_namespace && *default_namespace ? default_namespace : "default";
	}
	r = kube_resource_path(resource, namespace, doc_find_string(object, "metadata", "name", NULL), &path);
	if (r < 0)
		goto out;
	if (asprintf(&request, "%s?fieldManager=%s&force=true%s", path, KUBE_FIELD_MANAGER,
		     flags & KUBE_APPLY_DRY_RUN ? "&dryRun=All" : "") < 0) {
		request = NULL;
		r = -ENOMEM;
		goto out;
	}
	/* JSON is YAML, so the apply-patch+yaml body can be written as JSON. */
	r = doc_write_json(object, &body);
	if (r < 0) {
		r = kube_fail(r == -E2BIG ? MLB_EINPUT : r, "cannot write %s as JSON%s", description,
			      r == -E2BIG ? ": larger than 64 MiB" : "");
		goto out;
	}
	r = kube_request(client, "PATCH", request, APPLY_CONTENT_TYPE, body.data, body.len, &response);
	if (r < 0)
		goto out;
	if (status)
		*status = response.status;
	if (response.status < 200 || response.status > 299) {
		char *server_message = NULL;

		r = kube_http_error(client, "PATCH", path, &response, &server_message);
		if (response.status != 401)
			kube_fail(r, "cannot apply %s%s (HTTP status %ld): %s", description,
				  flags & KUBE_APPLY_DRY_RUN ? " in a dry run" : "", response.status,
				  server_message ? server_message : "no message");
		if (message) {
			*message = server_message;
			server_message = NULL;
		}
		free(server_message);
		goto out;
	}
	if (result)
		r = kube_parse_body(client, path, &response.body, result);
out:
	kube_response_release(&response);
	buf_release(&body);
	free(path);
	free(request);
	return r;
}

int kube_delete(struct kube_client *client, const char *api_version, const char *kind,
		const char *namespace, const char *name)
{
	const struct kube_resource *resource;
	struct kube_response response = { 0 };
	char *path = NULL, *request = NULL;
	int r;

	r = kube_resource_find(client, api_version, kind, &resource);
	if (r == -ENOENT) {
		/* A kind the server does not serve has no objects left to delete. */
		log_debug("delete %s '%s': apiVersion '%s' is not served; nothing to delete", kind, name, api_version);
		return 0;
	}
	if (r < 0)
		return r;
	if (resource->namespaced && (!namespace || !*namespace))
		return kube_fail(MLB_EINPUT, "cannot delete %s '%s': it is namespaced and no namespace was given",
				 kind, name ? name : "");
	if (!name || !*name)
		return kube_fail(MLB_EINPUT, "cannot delete a %s without a name", kind);
	r = kube_resource_path(resource, namespace, name, &path);
	if (r < 0)
		goto out;
	if (asprintf(&request, "%s?propagationPolicy=Background", path) < 0) {
		request = NULL;
		r = -ENOMEM;
		goto out;
	}
	r = kube_request(client, "DELETE", request, NULL, NULL, 0, &response);
	if (r < 0)
		goto out;
	if (response.status == 404)
		r = 0;
	else if (response.status < 200 || response.status > 299)
		r = kube_http_error(client, "DELETE", path, &response, NULL);
out:
	kube_response_release(&response);
	free(path);
	free(request);
	return r;
}

static int json_member(struct buf *out, const char *key, const char *value)
{
	int r = buf_printf(out, "%s\"%s\":", out->data[out->len - 1] == '{' ? "" : ",", key);

	if (r == 0)
		r = doc_write_json_string(out, value, strlen(value));
	return r;
}

int kube_access_review(struct kube_client *client, const char *verb, const char *group,
		       const char *resource, const char *namespace, bool *allowed, char **reason)
{
	static const char path[] = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews";
	struct kube_response response = { 0 };
	struct buf body = BUF_INIT(64 * 1024);
	struct doc_node *review = NULL;
	const struct doc_node *allowed_node;
	const char *text;
	int r;

	*allowed = false;
	if (reason)
		*reason = NULL;
	r = buf_append_str(&body, "{\"apiVersion\":\"authorization.k8s.io/v1\",\"kind\":\"SelfSubjectAccessReview\","
			   "\"spec\":{\"resourceAttributes\":{");
	if (r == 0)
		r = json_member(&body, "verb", verb);
	if (r == 0)
		r = json_member(&body, "group", group ? group : "");
	if (r == 0)
		r = json_member(&body, "resource", resource);
	if (r == 0 && namespace && *namespace)
		r = json_member(&body, "namespace", namespace);
	if (r == 0)
		r = buf_append_str(&body, "}}}");
	if (r < 0)
		goto out;
	r = kube_request(client, "POST", path, "application/json", body.data, body.len, &response);
	if (r < 0)
		goto out;
	if (response.status < 200 || response.status > 299) {
		r = kube_http_error(client, "POST", path, &response, NULL);
		goto out;
	}
	r = kube_parse_body(client, path, &response.body, &review);
	if (r < 0)
		goto out;
	allowed_node = doc_find(review, "status", "allowed", NULL);
	*allowed = allowed_node && allowed_node->type == DOC_BOOL && allowed_node->boolean;
	text = doc_find_string(review, "status", "reason", NULL);
	if (!text || !*text)
		text = doc_find_string(review, "status", "evaluationError", NULL);
	if (reason && text && *text && !(*reason = strdup(text)))
		r = -ENOMEM;
out:
	doc_free(review);
	kube_response_release(&response);
	buf_release(&body);
	return r;
}
