/*
 * The air-gap checks: which bundle the checks compared against, and
 * whether every image that the platform's running pods use came from it.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_internal.h"

static int check_bundle(struct check_state *state)
{
	const struct check_platform *platform = state->platform;
	const char *id = "airgap.bundle", *title = "bundle read and its signature";

	if (!platform->from_bundle)
		return check_add(state, CHECK_GROUP_AIRGAP, id, title, CHECK_SKIP, NULL,
				 "no bundle given (--bundle or spec.bundle in mlboot.yaml): the images that pods "
				 "and nodes should hold are not known");
	switch (platform->signature) {
	case BUNDLE_SIGNATURE_VALID:
		return check_add(state, CHECK_GROUP_AIRGAP, id, title, CHECK_PASS, NULL, "%s", platform->description);
	case BUNDLE_SIGNATURE_UNTRUSTED:
		return check_add(state, CHECK_GROUP_AIRGAP, id, title, CHECK_WARN,
				 "install the signer's public key in " BUNDLE_KEYS_DIR " or pass it with --pubkey, so "
				 "that the check knows the bundle it compares against is the one that was built",
				 "%s", platform->description);
	default:
		return check_add(state, CHECK_GROUP_AIRGAP, id, title, CHECK_WARN,
				 "sign bundles when they are built (mlboot bundle build --key KEY), so that a changed "
				 "bundle cannot go unnoticed", "%s", platform->description);
	}
}

/* The findings of the pod image check. */
struct image_scan {
	const struct check_platform *platform;
	size_t pods;
	size_t containers;
	size_t by_digest;
	size_t outside;
	struct check_list problems;
	char first_pod[512];          /* "namespace name" of the first pod with an image from outside */
	int error;
};

static int scan_statuses(struct image_scan *scan, const char *namespace, const char *pod,
			 const struct doc_node *statuses)
{
	struct buf reason = BUF_INIT(4096);
	int r = 0;

	for (size_t i = 0; statuses && statuses->type == DOC_SEQ && i < statuses->count && r >= 0; i++) {
		const struct doc_node *status = statuses->items[i];
		const char *container = doc_get_string(status, "name");
		bool by_digest = false;

		buf_reset(&reason);
		scan->containers++;
		r = check_image_in_bundle(scan->platform, doc_get_string(status, "image"),
					  doc_get_string(status, "imageID"), &by_digest, &reason);
		if (r == 1) {
			if (by_digest)
				scan->by_digest++;
			continue;
		}
		if (r < 0)
			break;
		scan->outside++;
		if (!scan->first_pod[0])
			snprintf(scan->first_pod, sizeof(scan->first_pod), "%s %s", namespace, pod);
		r = check_list_add(&scan->problems, "pod %s/%s container %s: %s", namespace, pod,
				   container ? container : "?", buf_str(&reason));
	}
	buf_release(&reason);
	return r < 0 ? r : 0;
}

static int scan_pod_images(const struct doc_node *pod, void *userdata)
{
	struct image_scan *scan = userdata;
	const char *namespace = doc_find_string(pod, "metadata", "namespace", NULL);
	const char *name = doc_find_string(pod, "metadata", "name", NULL);
	const char *phase = doc_find_string(pod, "status", "phase", NULL);
	int r;

	if (!namespace || !name || !phase || strcmp(phase, "Running") != 0)
		return 0;
	scan->pods++;
	r = scan_statuses(scan, namespace, name, doc_find(pod, "status", "initContainerStatuses", NULL));
	if (r == 0)
		r = scan_statuses(scan, namespace, name, doc_find(pod, "status", "containerStatuses", NULL));
	return r;
}

static int check_pod_images(struct check_state *state)
{
	const char *id = "airgap.pod-images", *title = "every running pod's image is in the bundle";
	struct buf problems = BUF_INIT(REPORT_TEXT_MAX);
	struct image_scan scan;
	size_t unreadable = 0;
	int r = 0;

	memset(&scan, 0, sizeof(scan));
	scan.platform = state->platform;
	scan.problems.out = &problems;
	if (!state->platform->from_bundle) {
		r = check_add(state, CHECK_GROUP_AIRGAP, id, title, CHECK_SKIP, NULL,
			      "skipped: no bundle to compare the images with");
		goto out;
	}
	if (state->skip_reason) {
		r = check_add_skipped(state, CHECK_GROUP_AIRGAP, id, title);
		goto out;
	}
	log_info("comparing the images of running pods in %zu namespaces with the bundle", state->namespace_count);
	for (size_t i = 0; i < state->namespace_count && r == 0; i++) {
		char path[400];

		snprintf(path, sizeof(path), "/api/v1/namespaces/%s/pods", state->namespaces[i]);
		r = kube_list(state->client, path, scan_pod_images, &scan);
		if (r < 0 && r != -ENOMEM && r != -E2BIG) {
			log_warning("cannot list the pods of namespace '%s': %s", state->namespaces[i],
				    check_failure_text(r));
			unreadable++;
			r = 0;
		}
	}
	if (r == 0)
		r = check_list_finish(&scan.problems);
	if (r < 0)
		goto out;
	if (scan.outside > 0) {
		const char *space = strchr(scan.first_pod, ' ');
		char remedy[1024];

		snprintf(remedy, sizeof(remedy),
			 "an image that is not in the bundle came from elsewhere (a registry, or an import by "
			 "hand): change the workload to an image of the bundle (mlboot bundle inspect lists "
			 "them), or build a bundle that carries it; kubectl -n %.*s get pod %s -o yaml shows "
			 "who owns the pod", space ? (int)(space - scan.first_pod) : 0, scan.first_pod,
			 space ? space + 1 : "");
		r = check_add(state, CHECK_GROUP_AIRGAP, id, title, CHECK_FAIL, remedy,
			      "%zu of %zu containers of %zu running pods use images that are not in the bundle: %s",
			      scan.outside, scan.containers, scan.pods, buf_str(&problems));
	} else if (unreadable > 0) {
		r = check_add(state, CHECK_GROUP_AIRGAP, id, title, CHECK_FAIL,
			      "check that the kubeconfig's user may list pods in the platform's namespaces",
			      "the pods of %zu of %zu namespaces could not be listed; %zu containers of the others "
			      "use images of the bundle", unreadable, state->namespace_count, scan.containers);
	} else {
		r = check_add(state, CHECK_GROUP_AIRGAP, id, title, CHECK_PASS, NULL,
			      "%zu containers of %zu running pods in %zu namespaces use images of the bundle "
			      "(%zu matched by digest, %zu by name because the runtime reported no digest)",
			      scan.containers, scan.pods, state->namespace_count, scan.by_digest,
			      scan.containers - scan.by_digest);
	}
out:
	buf_release(&problems);
	return r;
}

int check_airgap(struct check_state *state)
{
	int r;

	r = check_bundle(state);
	if (r == 0)
		r = check_pod_images(state);
	return r;
}
