/*
 * Kubernetes version strings as /version and kubelets report them.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kube_private.h"

#define VERSION_NUMBER_MAX 1000000L

/* Reads digits into *out; returns what follows them, or NULL when there are none or too many. */
static const char *read_number(const char *text, int *out)
{
	long value = 0;
	const char *p = text;

	while (*p >= '0' && *p <= '9') {
		value = value * 10 + (*p - '0');
		if (value > VERSION_NUMBER_MAX)
			return NULL;
		p++;
	}
	if (p == text)
		return NULL;
	*out = (int)value;
	return p;
}

/* Upstream pre-releases are -alpha.N, -beta.N and -rc.N; other suffixes (-eks-..., -gke.N) name a vendor build. */
static bool suffix_is_pre_release(const char *suffix)
{
	static const char *const tags[] = { "alpha", "beta", "rc" };

	for (size_t i = 0; i < ARRAY_SIZE(tags); i++) {
		size_t len = strlen(tags[i]);

		if (strncmp(suffix, tags[i], len) == 0 &&
		    (suffix[len] == '\0' || suffix[len] == '.' || (suffix[len] >= '0' && suffix[len] <= '9')))
			return true;
	}
	return false;
}

static int parse_git_version(const char *text, struct kube_version *out)
{
	const char *p = text;

	if (*p == 'v' || *p == 'V')
		p++;
	p = read_number(p, &out->major);
	if (!p || *p != '.')
		return -EINVAL;
	p = read_number(p + 1, &out->minor);
	if (!p || *p != '.')
		return -EINVAL;
	p = read_number(p + 1, &out->patch);
	if (!p)
		return -EINVAL;
	if (*p == '-') {
		if (!p[1])
			return -EINVAL;
		out->pre_release = suffix_is_pre_release(p + 1);
	} else if (*p == '+') {
		if (!p[1])
			return -EINVAL;
	} else if (*p) {
		return -EINVAL;
	}
	return 0;
}

/* major "1" and minor "27" or "27+" (the plus marks a vendor build). */
static int parse_major_minor(const char *major, const char *minor, struct kube_version *out)
{
	const char *p;

	if (!major || !minor)
		return -EINVAL;
	p = read_number(major, &out->major);
	if (!p || *p)
		return -EINVAL;
	p = read_number(minor, &out->minor);
	if (!p || (*p && strcmp(p, "+") != 0))
		return -EINVAL;
	out->patch = 0;
	return 0;
}

int kube_version_parse(const char *git_version, const char *major, const char *minor,
		       struct kube_version *out)
{
	struct kube_version parsed = { 0 };

	if (git_version && parse_git_version(git_version, &parsed) == 0) {
		snprintf(parsed.git_version, sizeof(parsed.git_version), "%s", git_version);
		*out = parsed;
		return 0;
	}
	memset(&parsed, 0, sizeof(parsed));
	if (parse_major_minor(major, minor, &parsed) == 0) {
		if (git_version && *git_version)
			snprintf(parsed.git_version, sizeof(parsed.git_version), "%s", git_version);
		else
			snprintf(parsed.git_version, sizeof(parsed.git_version), "v%d.%d", parsed.major, parsed.minor);
		*out = parsed;
		return 0;
	}
	return kube_fail(MLB_EINPUT, "cannot parse the Kubernetes version (gitVersion '%s', major '%s', minor '%s'); "
			 "expected a form such as v1.29.1", git_version ? git_version : "", major ? major : "",
			 minor ? minor : "");
}

int kube_server_version(struct kube_client *client, struct kube_version *out)
{
	struct doc_node *info = NULL;
	int r;

	memset(out, 0, sizeof(*out));
	r = kube_get(client, "/version", &info, NULL);
	if (r < 0)
		return r;
	r = kube_version_parse(doc_get_string(info, "gitVersion"), doc_get_string(info, "major"),
			       doc_get_string(info, "minor"), out);
	if (r < 0) {
		char detail[1024];

		snprintf(detail, sizeof(detail), "%s", kube_last_error());
		kube_fail(r, "API server '%s' reported a version mlboot cannot parse: %s", client->server, detail);
	}
	doc_free(info);
	return r;
}
