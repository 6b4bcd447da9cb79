/*
 * Discovery: which resources the API server serves, read from /api, /apis
 * and each group version's resource list, and kept per client so that
 * apply maps apiVersion and kind to a resource path without asking again.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kube_private.h"

/* Bounds on what one server's discovery may hold. */
#define DISCOVERY_RESOURCES_MAX 100000
#define DISCOVERY_GROUP_VERSIONS_MAX 10000

int kube_api_version_split(const char *api_version, char **group, char **version)
{
	const char *slash;

	*group = NULL;
	*version = NULL;
	if (!api_version || !*api_version)
		return -EINVAL;
	slash = strchr(api_version, '/');
	if (slash && (slash == api_version || !slash[1] || strchr(slash + 1, '/')))
		return -EINVAL;
	*group = slash ? strndup(api_version, (size_t)(slash - api_version)) : strdup("");
	*version = strdup(slash ? slash + 1 : api_version);
	if (!*group || !*version) {
		free(*group);
		free(*version);
		*group = *version = NULL;
		return -ENOMEM;
	}
	return 0;
}

int kube_group_version_path(const char *group, const char *version, char **out)
{
	int n;

	if (!version || !*version || strchr(version, '/') || (group && strchr(group, '/')))
		return -EINVAL;
	if (!group || !*group)
		n = asprintf(out, "/api/%s", version);
	else
		n = asprintf(out, "/apis/%s/%s", group, version);
	if (n < 0) {
		*out = NULL;
		return -ENOMEM;
	}
	return 0;
}

static void discovered_free(struct kube_discovered *entry)
{
	if (!entry)
		return;
	free(entry->resource.group);
	free(entry->resource.version);
	free(entry->resource.kind);
	free(entry->resource.name);
	free(entry);
}

void kube_discovery_release(struct kube_client *client)
{
	for (size_t i = 0; i < client->resource_count; i++)
		discovered_free(client->resources[i]);
	free(client->resources);
	client->resources = NULL;
	client->resource_count = 0;
	client->resource_capacity = 0;
	client->discovered = false;
}

static struct kube_discovered *discovery_lookup(struct kube_client *client, const char *group,
						const char *version, const char *name)
{
	for (size_t i = 0; i < client->resource_count; i++) {
		struct kube_resource *resource = &client->resources[i]->resource;

		if (strcmp(resource->name, name) == 0 && strcmp(resource->version, version) == 0 &&
		    strcmp(resource->group, group) == 0)
			return client->resources[i];
	}
	return NULL;
}

/*
 * Adds or updates one resource. Entries are never freed before the client,
 * so pointers that kube_resource_find() returned stay valid across refreshes.
 */
static int discovery_add(struct kube_client *client, const char *group, const char *version,
			 const char *kind, const char *name, bool namespaced)
{
	struct kube_discovered *entry = discovery_lookup(client, group, version, name);

	if (entry) {
		if (strcmp(entry->resource.kind, kind) != 0) {
			char *copy = strdup(kind);

			if (!copy)
				return -ENOMEM;
			free(entry->resource.kind);
			entry->resource.kind = copy;
		}
		entry->resource.namespaced = namespaced;
		entry->served = true;
		return 0;
	}
	if (client->resource_count >= DISCOVERY_RESOURCES_MAX)
		return kube_fail(MLB_EFAILED, "API server '%s' lists more than %d resources in discovery",
				 client->server, DISCOVERY_RESOURCES_MAX);
	if (client->resource_count == client->resource_capacity) {
		size_t capacity = client->resource_capacity ? client->resource_capacity * 2 : 256;
		struct kube_discovered **resources = realloc(client->resources, capacity * sizeof(*resources));

		if (!resources)
			return -ENOMEM;
		client->resources = resources;
		client->resource_capacity = capacity;
	}
	entry = calloc(1, sizeof(*entry));
	if (!entry)
		return -ENOMEM;
	entry->resource.group = strdup(group);
	entry->resource.version = strdup(version);
	entry->resource.kind = strdup(kind);
	entry->resource.name = strdup(name);
	entry->resource.namespaced = namespaced;
	entry->served = true;
	if (!entry->resource.group || !entry->resource.version || !entry->resource.kind || !entry->resource.name) {
		discovered_free(entry);
		return -ENOMEM;
	}
	client->resources[client->resource_count++] = entry;
	return 0;
}

static void discovery_mark_group_version(struct kube_client *client, const char *group, const char *version,
					 bool served)
{
	for (size_t i = 0; i < client->resource_count; i++) {
		struct kube_resource *resource = &client->resources[i]->resource;

		if (strcmp(resource->version, version) == 0 && strcmp(resource->group, group) == 0)
			client->resources[i]->served = served;
	}
}

/* Reads one group version's resource list; -ENOENT when the server does not serve it. */
static int discover_group_version(struct kube_client *client, const char *group, const char *version)
{
	struct doc_node *list = NULL;
	const struct doc_node *resources;
	char *path = NULL;
	int r;

	r = kube_group_version_path(group, version, &path);
	if (r < 0)
		return kube_fail(MLB_EFAILED, "API server '%s' lists an invalid group version '%s/%s'",
				 client->server, group, version);
	r = kube_get(client, path, &list, NULL);
	if (r == -ENOENT)
		discovery_mark_group_version(client, group, version, false);
	if (r < 0)
		goto out;
	/* Every resource of the group version that this response omits is no longer served. */
	discovery_mark_group_version(client, group, version, false);
	resources = doc_get(list, "resources");
	for (size_t i = 0; resources && resources->type == DOC_SEQ && i < resources->count; i++) {
		const struct doc_node *item = resources->items[i];
		const char *name = doc_get_string(item, "name");
		const char *kind = doc_get_string(item, "kind");
		const struct doc_node *namespaced = doc_get(item, "namespaced");

		/* Subresources (pods/log, deployments/scale) are not objects to apply. */
		if (!name || !*name || !kind || !*kind || strchr(name, '/'))
			continue;
		r = discovery_add(client, group, version, kind, name,
				  namespaced && namespaced->type == DOC_BOOL && namespaced->boolean);
		if (r < 0)
			goto out;
	}
	r = 0;
out:
	doc_free(list);
	free(path);
	return r;
}

/*
 * Reads a group version during a full discovery. An aggregated API that is
 * down (for example metrics.k8s.io responding with 503) is skipped, as
 * kubectl skips it. A denial or an unreachable server ends discovery.
 */
static int discover_listed_group_version(struct kube_client *client, const char *group, const char *version)
{
	int r = discover_group_version(client, group, version);

	if (r == MLB_EFAILED || r == -ENOENT) {
		log_debug("discovery: skipped group version '%s%s%s' of API server '%s': %s", group,
			  *group ? "/" : "", version, client->server, kube_last_error());
		return 0;
	}
	return r;
}

int kube_discover(struct kube_client *client, bool refresh)
{
	struct doc_node *api = NULL, *apis = NULL;
	const struct doc_node *versions, *groups;
	size_t group_versions = 0;
	int r;

	if (client->discovered && !refresh)
		return 0;
	/* Group versions that the server no longer lists stay unserved. */
	for (size_t i = 0; i < client->resource_count; i++)
		client->resources[i]->served = false;
	r = kube_get(client, "/api", &api, NULL);
	if (r < 0)
		goto out;
	versions = doc_get(api, "versions");
	for (size_t i = 0; versions && versions->type == DOC_SEQ && i < versions->count; i++) {
		if (versions->items[i]->type != DOC_STRING)
			continue;
		r = discover_listed_group_version(client, "", versions->items[i]->text);
		if (r < 0)
			goto out;
	}

	r = kube_get(client, "/apis", &apis, NULL);
	if (r < 0)
		goto out;
	groups = doc_get(apis, "groups");
	for (size_t i = 0; groups && groups->type == DOC_SEQ && i < groups->count; i++) {
		const char *group = doc_get_string(groups->items[i], "name");
		const struct doc_node *group_versions_list = doc_get(groups->items[i], "versions");

		if (!group || !*group)
			continue;
		for (size_t j = 0; group_versions_list && group_versions_list->type == DOC_SEQ &&
				   j < group_versions_list->count; j++) {
			const char *version = doc_get_string(group_versions_list->items[j], "version");

			if (!version || !*version)
				continue;
			if (++group_versions > DISCOVERY_GROUP_VERSIONS_MAX) {
				r = kube_fail(MLB_EFAILED, "API server '%s' lists more than %d group versions",
					      client->server, DISCOVERY_GROUP_VERSIONS_MAX);
				goto out;
			}
			r = discover_listed_group_version(client, group, version);
			if (r < 0)
				goto out;
		}
	}
	client->discovered = true;
	log_debug("discovery of API server '%s': %zu resources", client->server, client->resource_count);
	r = 0;
out:
	doc_free(api);
	doc_free(apis);
	return r;
}

static const struct kube_resource *discovery_find(const struct kube_client *client, const char *group,
						  const char *version, const char *kind)
{
	for (size_t i = 0; i < client->resource_count; i++) {
		const struct kube_discovered *entry = client->resources[i];

		if (entry->served && strcmp(entry->resource.kind, kind) == 0 &&
		    strcmp(entry->resource.version, version) == 0 && strcmp(entry->resource.group, group) == 0)
			return &entry->resource;
	}
	return NULL;
}

static bool group_version_is_served(const struct kube_client *client, const char *group, const char *version)
{
	for (size_t i = 0; i < client->resource_count; i++) {
		const struct kube_discovered *entry = client->resources[i];

		if (entry->served && strcmp(entry->resource.version, version) == 0 &&
		    strcmp(entry->resource.group, group) == 0)
			return true;
	}
	return false;
}

int kube_resource_find(struct kube_client *client, const char *api_version, const char *kind,
		       const struct kube_resource **out)
{
	char *group = NULL, *version = NULL;
	bool fresh = false;
	int r;

	*out = NULL;
	r = kube_api_version_split(api_version, &group, &version);
	if (r < 0) {
		r = kube_fail(r == -ENOMEM ? r : MLB_EINPUT, "invalid apiVersion '%s'; write GROUP/VERSION or v1",
			      api_version ? api_version : "");
		goto out;
	}
	if (!kind || !*kind) {
		r = kube_fail(MLB_EINPUT, "no kind given for apiVersion '%s'", api_version);
		goto out;
	}
	if (!client->discovered) {
		r = kube_discover(client, false);
		if (r < 0)
			goto out;
		fresh = true;
	}
	*out = discovery_find(client, group, version, kind);
	if (*out)
		goto out;

	/* A miss: a CRD may have registered the kind since; read its group version again. */
	if (!fresh) {
		r = discover_group_version(client, group, version);
		if (r < 0 && r != -ENOENT)
			goto out;
		*out = discovery_find(client, group, version, kind);
		r = 0;
		if (*out)
			goto out;
	}
	if (!group_version_is_served(client, group, version))
		r = kube_fail(-ENOENT, "API server '%s' does not serve apiVersion '%s' (kind %s); install its "
			      "CustomResourceDefinition first and wait until it is established",
			      client->server, api_version, kind);
	else
		r = kube_fail(-ENOENT, "API server '%s' serves apiVersion '%s' but no kind '%s' in it",
			      client->server, api_version, kind);
out:
	free(group);
	free(version);
	return r;
}

/* Names and namespaces become path segments: "." and ".." would be removed by URL normalisation. */
static bool segment_is_valid(const char *text)
{
	return text && *text && strcmp(text, ".") != 0 && strcmp(text, "..") != 0;
}

int kube_resource_path(const struct kube_resource *resource, const char *namespace,
		       const char *name, char **out)
{
	char *prefix = NULL, *namespace_escaped = NULL, *name_escaped = NULL;
	bool in_namespace = resource->namespaced && namespace && *namespace;
	int r;

	*out = NULL;
	if ((in_namespace && !segment_is_valid(namespace)) || (name && !segment_is_valid(name)))
		return kube_fail(MLB_EINPUT, "invalid %s '%s' for %s", name && !segment_is_valid(name) ? "name" : "namespace",
				 name && !segment_is_valid(name) ? name : namespace, resource->kind);
	r = kube_group_version_path(resource->group, resource->version, &prefix);
	if (r < 0)
		return r;
	r = -ENOMEM;
	if (in_namespace && !(namespace_escaped = kube_escape(namespace)))
		goto out;
	if (name && !(name_escaped = kube_escape(name)))
		goto out;
	if (asprintf(out, "%s%s%s/%s%s%s", prefix, in_namespace ? "/namespaces/" : "",
		     in_namespace ? namespace_escaped : "", resource->name, name ? "/" : "",
		     name ? name_escaped : "") < 0) {
		*out = NULL;
		goto out;
	}
	r = 0;
out:
	free(prefix);
	free(namespace_escaped);
	free(name_escaped);
	return r;
}
