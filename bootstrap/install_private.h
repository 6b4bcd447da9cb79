/*
 * Functions the install's own files share; other files use install.h.
 */
#ifndef MLBOOT_BOOTSTRAP_INSTALL_PRIVATE_H
#define MLBOOT_BOOTSTRAP_INSTALL_PRIVATE_H

#include "install.h"

/* Largest server-side apply body: the API server's own limit is 3 MiB. */
#define KUBE_APPLY_BODY_MAX (64u * 1024 * 1024)

/* Sets object->path from discovery (the kind must be served by now) and, when asked, its resource. */
int install_object_resolve(struct install *install, struct install_object *object,
			   const struct kube_resource **resource);
/* One server-side apply PATCH of object->path; the response belongs to the caller. */
int install_send_apply(struct kube_client *client, const struct install_object *object, bool dry_run,
		       struct kube_response *response);
/*
 * Applies objects, several at a time. Webhook rejections are retried with
 * backoff until deadline_ms; any other failure, or a rejection still there
 * at the deadline, fails with every failing object logged.
 */
int install_apply_objects(struct install *install, struct install_component *component,
			  struct install_object **objects, size_t count, int64_t deadline_ms);

/*
 * Polls the readiness gates of objects until each passes or deadline_ms;
 * with issuer_namespace set, also until cert-manager accepts a dry run of
 * an Issuer there. Returns 0, -ETIMEDOUT (every object still waiting is
 * logged with the reason) or MLB_EFAILED when an object failed for good.
 */
int install_wait_ready(struct install *install, const char *component_name, struct install_object **objects,
		       size_t count, const char *issuer_namespace, int64_t deadline_ms);

/* When a component's waits must end: its timeout from now, or the install's deadline when sooner. */
int64_t install_component_deadline(const struct install *install);

#endif
