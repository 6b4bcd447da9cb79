/*
 * The install: a plan of steps built from a bundle and mlboot.yaml, run
 * in order and recorded in the journal (journal.h) so that a re-run skips
 * what is done and goes on where a crash stopped.
 *
 * The steps are below. Each is keyed by the sha256 digest of its inputs.
 *   images/NODE                 missing image content to the node's containerd
 *   binaries/NODE               the bundle's binaries to a control-plane node
 *   apply/COMPONENT/WAVE        one wave of objects by server-side apply,
 *                               WAVE being crds, namespaces, cluster or rest
 *   wait/COMPONENT              the component's readiness gates
 *   model                       the sample model is Ready and served from the bundle
 *   check                       every gate once more, at the end
 *
 * The functions below the plan are pure (no network, no files), so the
 * unit tests can call them: object rewrites, wave classification,
 * readiness evaluation, webhook matching and the parsing of ctr output.
 *
 * Results are 0 or negative codes from common/error.h. Functions that talk
 * to the API server or the nodes block, each request bounded by the kube
 * client's and node module's timeouts, and each wait by the component
 * timeout of mlboot.yaml.
 */
#ifndef MLBOOT_BOOTSTRAP_INSTALL_H
#define MLBOOT_BOOTSTRAP_INSTALL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "airgap.h"
#include "common.h"
#include "config.h"
#include "journal.h"
#include "kube.h"
#include "node.h"

/* Labels every applied object carries. */
#define INSTALL_LABEL_MANAGED_BY "app.kubernetes.io/managed-by"
#define INSTALL_LABEL_COMPONENT  "mlboot.dev/component"
#define INSTALL_LABEL_VERSION    "mlboot.dev/platform-version"
#define INSTALL_MANAGER          "mlboot"

/* The containerd label that keeps an image from kubelet's garbage collection (containerd 1.7+). */
#define INSTALL_PINNED_LABEL     "io.cri-containerd.pinned"

/* Maximum size of a manifest file read from a bundle, and maximum number of objects in one component. */
#define INSTALL_MANIFEST_MAX     (64u * 1024 * 1024)
#define INSTALL_OBJECTS_MAX      20000u
/* Maximum number of server-side apply requests in flight at once (one client each). */
#define INSTALL_APPLY_WORKERS_MAX 16u
#define INSTALL_APPLY_WORKERS_DEFAULT 4u
/* Maximum pause between two polls of a readiness gate or two retries of a webhook rejection. */
#define INSTALL_POLL_MAX_MS      2000L
#define INSTALL_POLL_FIRST_MS    50L

enum install_wave {
	INSTALL_WAVE_CRDS,
	INSTALL_WAVE_NAMESPACES,
	INSTALL_WAVE_CLUSTER,
	INSTALL_WAVE_REST,
	INSTALL_WAVE_COUNT,
};

const char *install_wave_name(enum install_wave wave);

/* One object of a component, as it will be applied. */
struct install_object {
	struct doc_node *doc;        /* owned; rewritten: labels, namespace, pull policy */
	const char *file;            /* the manifest it came from; owned by the component */
	char *description;           /* "Deployment 'ns/name'", for messages */
	enum install_wave wave;
	bool custom;                 /* its kind is defined by a CRD (of the bundle or the cluster) */
	char *path;                  /* API path of the object, set when the resource is known */
};

/* Counts of the rewrites made in one component, logged once per component. */
struct install_rewrites {
	unsigned pull_policy;        /* imagePullPolicy Always set to IfNotPresent */
	unsigned namespace_added;    /* namespaced objects given the component's namespace */
	unsigned namespace_moved;    /* objects moved from the bundle's namespace to sampleModel.namespace */
};

struct install_component {
	const struct bundle_component *bundle;   /* name, version, namespace, manifests */
	char **files;                /* manifest paths, owned */
	size_t file_count;
	struct install_object *objects;   /* in apply order within each wave */
	size_t object_count;
	struct install_rewrites rewrites;
	char wave_digest[INSTALL_WAVE_COUNT][SHA256_HEX_LEN + 1];
	size_t wave_objects[INSTALL_WAVE_COUNT];
	char wait_digest[SHA256_HEX_LEN + 1];
	bool listed;                 /* installed by the configuration: spec.components lists it, or is not given */
	bool selected;               /* installed in this run: listed, and named by --only when it is given */
	/*
	 * The namespace its objects go to: the bundle's namespace of the
	 * component, or sampleModel.namespace of mlboot.yaml for the sample
	 * model. NULL when the bundle gives none ("default").
	 */
	const char *namespace;
};

/* Counters of one run, printed at the end. */
struct install_totals {
	unsigned long steps_run;
	unsigned long steps_skipped;
	unsigned long objects_applied;
	unsigned long webhook_retries;
	unsigned long images_imported;
	uint64_t bytes_sent;
	unsigned long blobs_sent;
	unsigned long blobs_present;
};

struct install_settings {
	const char *config_path;
	const char *state_dir;       /* NULL: config's stateDir */
	const char *bundle_path;     /* NULL: config's bundle */
	const char *only;            /* NULL: every component */
	bool dry_run;
	bool force;
	bool allow_unsigned;
	const char **pubkeys;
	size_t pubkey_count;
	unsigned apply_workers;      /* 0: INSTALL_APPLY_WORKERS_DEFAULT */
};

struct install_crd_scopes;

/* All state of one install run. */
struct install {
	struct install_settings settings;
	struct config config;
	struct config_kubeconfig kubeconfig;
	struct kube_credentials credentials;
	bool have_credentials;
	struct kube_client *client;
	struct bundle_trust trust;
	struct bundle_check_options check_options;
	const char *bundle_path;
	const char *state_dir;
	struct bundle_reader *reader;
	const struct bundle_index *index;
	struct journal *journal;
	pthread_mutex_t lock;        /* guards journal and totals from node threads */
	struct install_component *components;   /* every component of the bundle, in its order */
	size_t component_count;
	struct install_crd_scopes *crd_scopes;  /* of the listed components' CRDs */
	struct install_totals totals;
	struct node_options node_options;
	/* Extra API clients of the apply workers; the main client is the first worker. */
	struct kube_client *workers[INSTALL_APPLY_WORKERS_MAX];
	size_t worker_count;
	/* Why the last step failed, for its journal record. */
	char failure[1024];
	/* When timeouts.install runs out (monotonic ms); no wait goes past it. */
	int64_t install_deadline_ms;
};

/* --- Objects and waves (install_objects.c) ---------------------------- */

/* Scope of kinds defined by the bundle's CRDs, for classification before they exist. */
struct install_crd_scope {
	char *group;
	char *kind;
	bool namespaced;
};

struct install_crd_scopes {
	struct install_crd_scope *items;
	size_t count;
	size_t capacity;
};

void install_crd_scopes_release(struct install_crd_scopes *scopes);
/* Records the group, kind and scope of a CustomResourceDefinition object; other objects are ignored. */
int install_crd_scopes_add(struct install_crd_scopes *scopes, const struct doc_node *object);
/* 1 namespaced, 0 cluster-scoped, -ENOENT when the kind is not among them. */
int install_crd_scopes_find(const struct install_crd_scopes *scopes, const char *api_version,
			    const char *kind);

/*
 * Whether a built-in kind is cluster-scoped: 1 yes, 0 namespaced, -ENOENT
 * when the kind is not in mlboot's table of built-in kinds.
 */
int install_builtin_scope(const char *api_version, const char *kind);

/*
 * Rewrites one object for the air gap and for ownership. It adds the
 * three mlboot labels and gives a namespaced object without a namespace the
 * component's namespace. It sets every imagePullPolicy Always in a
 * container list (containers, initContainers, ephemeralContainers, wherever
 * a pod template is) to IfNotPresent. The changes are counted in rewrites.
 */
int install_object_rewrite(struct doc_node *object, const char *component, const char *version,
			   const char *namespace, bool namespaced, struct install_rewrites *rewrites);

/* The wave of an object given its scope. */
enum install_wave install_object_wave(const struct doc_node *object, bool namespaced);

/* Whether object is the Namespace called name. */
bool install_object_is_namespace(const struct doc_node *object, const char *name);
/* A new Namespace object called name (apiVersion, kind and metadata.name only); NULL when out of memory. */
struct doc_node *install_namespace_new(const char *name);

/* Writes "Kind 'namespace/name'" or "Kind 'name'" into out. */
void install_object_describe(const struct doc_node *object, char *out, size_t size);

/*
 * Moves an object of namespace from into namespace to: a namespaced object
 * whose metadata.namespace is from, and the Namespace called from, which is
 * renamed. References to the namespace inside other fields are not
 * changed. Returns 1 when the object was changed, 0 when not, or -ENOMEM.
 */
int install_object_move_namespace(struct doc_node *object, bool namespaced, const char *from, const char *to);

/*
 * Sets the default deployment mode of KServe's inferenceservice-config
 * ConfigMap: "defaultDeploymentMode" of the JSON in its "deploy" key, with
 * the other settings there kept. Copies the mode the bundle set into
 * previous (empty when none). Returns 1 when object is that ConfigMap, 0
 * when it is another object, MLB_EINPUT when its "deploy" key is missing or
 * not a JSON object, or -ENOMEM.
 */
int install_kserve_set_deployment_mode(struct doc_node *object, const char *mode, char *previous,
				       size_t previous_size);

/*
 * The storage URI problem of an InferenceService in an air gap: a message
 * for gs://, s3://, http(s):// and other remote schemes, NULL for oci://,
 * pvc:// and objects that are not InferenceServices.
 */
const char *install_model_storage_problem(const struct doc_node *object);

/* sha256 over the JSON of each object in order, with a label naming the step. */
int install_digest_objects(const char *label, struct install_object *const *objects, size_t count,
			   char out[SHA256_HEX_LEN + 1]);

/* --- Readiness (install_ready.c) ------------------------------------- */

/*
 * Evaluates one live object against its gate. Returns 1 when it is ready
 * (also for kinds without a gate), 0 when it is not ready yet, and -EIO when
 * it failed for good, such as a failed Job. why (why_size bytes) receives
 * the reason in every case.
 */
int install_ready_evaluate(const struct doc_node *live, char *why, size_t why_size);
/* Whether a kind has a gate install_ready_evaluate() checks. */
bool install_kind_has_gate(const char *api_version, const char *kind);
/* Whether a webhook configuration wants its caBundle injected (cert-manager's cainjector annotations). */
bool install_webhook_wants_injection(const struct doc_node *configuration);

/*
 * Whether a webhook configuration with failurePolicy Fail has a webhook
 * whose rules match CREATE or UPDATE of group/version/resource. Selectors
 * are not evaluated: a webhook with selectors counts as matching, which
 * only delays an object.
 */
bool install_webhook_matches(const struct doc_node *configuration, const char *group,
			     const char *version, const char *resource, bool namespaced);

/* Whether an API error is a webhook that could not be called (HTTP 500 "failed calling webhook"). */
bool install_is_webhook_rejection(long status, const char *message);

/* --- Images on nodes (install_images.c) -------------------------------- */

/* The images and blobs of a node's containerd, from "ctr images ls" and "ctr content ls -q". */
struct install_node_images {
	char arch[32];               /* OCI architecture of the node: amd64, arm64, ... */
	char **names;                /* image names */
	char **digests;              /* their manifest or index digests, "sha256:..." */
	bool *pinned;
	size_t image_count;
	char **blobs;                /* content digests, sorted */
	size_t blob_count;
};

void install_node_images_release(struct install_node_images *images);
/*
 * Parses the output of the listing script: "uname -m", a line "--",
 * "ctr images ls", a line "--", "ctr content ls -q". MLB_EINPUT when a
 * section is missing or a line cannot be read.
 */
int install_node_images_parse(const char *output, size_t len, struct install_node_images *out);
bool install_node_has_blob(const struct install_node_images *images, const char *digest);
/* Whether the node has name at digest (and pinned, when pin is set). */
bool install_node_has_image(const struct install_node_images *images, const char *name,
			    const char *digest, bool pin);
/* Maps "uname -m" output to an OCI architecture; NULL when unknown. */
const char *install_oci_arch(const char *machine);

/* Runs images/NODE for every host, config.parallelism at a time. */
int install_images(struct install *install);
/* Runs binaries/NODE for every control-plane host. */
int install_binaries(struct install *install);
/* For --dry-run: prints the images each node lacks. */
int install_images_plan(struct install *install);

/* --- Components through the API (install_apply.c) ---------------------- */

/*
 * Chooses the components of the run from the bundle, spec.components and
 * --only, without any I/O: fills install->components with every component
 * of install->index and sets listed and selected. Logs each problem and
 * returns MLB_EINPUT when spec.components lists a component the bundle
 * does not have or --only names one that spec.components does not list,
 * MLB_EUSAGE when --only names a component the bundle does not have, or
 * -ENOMEM.
 */
int install_components_select(struct install *install);
/*
 * Reads the manifests of the listed components from the bundle and checks
 * the settings of spec.components against them; needs no API server.
 * MLB_EINPUT when kserve.deploymentMode disagrees with the bundle's KServe.
 */
int install_components_read(struct install *install);
/* Rewrites the objects of the listed components and sorts them into waves; may query discovery of the API server. */
int install_components_prepare(struct install *install);
void install_components_release(struct install *install);
/* Runs the apply and wait steps of one component. */
int install_component_run(struct install *install, struct install_component *component);
/* For --dry-run: prints what would be created or changed in one component. */
int install_component_plan(struct install *install, struct install_component *component);
/* The model and check steps. */
int install_model_step(struct install *install);
int install_check_step(struct install *install);

/* --- Steps (install.c) -------------------------------------------------- */

/* Whether a step may be skipped: done with digest, and --force not given. */
bool install_step_done(struct install *install, const char *step, const char *digest);
/* Records a start, done or failed event under the install's lock. */
int install_step_record(struct install *install, const char *step, const char *digest,
			enum journal_event event, const char *message);
/* Sets install->failure (under the lock), the message a failed step records. */
void install_set_failure(struct install *install, const char *format, ...)
	__attribute__((format(printf, 2, 3)));
/* sha256 of text, as 64 hex digits. */
int install_digest_text(const char *text, size_t len, char out[SHA256_HEX_LEN + 1]);
/* Milliseconds on the monotonic clock. */
int64_t install_now_ms(void);
void install_sleep_ms(long ms);

#endif
