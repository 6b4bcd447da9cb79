/*
 * mlboot.yaml: the platform configuration, read and validated in full
 * before anything runs.
 *
 * config_load() reads the file and checks every field. It collects all the
 * problems it finds, not only the first, each with the line and column of
 * the offending key or value and the field's path, such as
 * "spec.hosts[1].ssh.port". docs/config.md lists every field, its default
 * and what is checked.
 *
 * Paths in the file get "~/" and $VAR or ${VAR} expanded; a relative path is
 * taken relative to the folder of mlboot.yaml. The loader reads key files
 * and known_hosts files only to check that they exist, are readable and
 * (for private keys) are not readable by group or others. It opens no
 * connection.
 *
 * Ownership: struct config owns every string in it; config_release()
 * frees them and accepts a zeroed or partly filled config.
 */
#ifndef MLBOOT_BOOTSTRAP_CONFIG_H
#define MLBOOT_BOOTSTRAP_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common.h"
#include "kube.h"
#include "node.h"

#define CONFIG_API_VERSION "mlboot.dev/v1alpha1"
#define CONFIG_KIND "Platform"

/* Largest mlboot.yaml read, and the most hosts and problems kept. */
#define CONFIG_MAX_BYTES (1024 * 1024)
#define CONFIG_MAX_HOSTS 4096
#define CONFIG_MAX_PROBLEMS 200

#define CONFIG_DEFAULT_STATE_DIR "/var/lib/mlboot"
#define CONFIG_DEFAULT_PARALLELISM 8
#define CONFIG_MAX_PARALLELISM 256
#define CONFIG_DEFAULT_SSH_PORT 22
#define CONFIG_DEFAULT_SSH_USER "root"
#define CONFIG_DEFAULT_COMPONENT_TIMEOUT (15 * 60)
#define CONFIG_DEFAULT_INSTALL_TIMEOUT (2 * 60 * 60)
/* Durations are whole seconds from 1 s to 7 days. */
#define CONFIG_MAX_DURATION (7 * 24 * 60 * 60)

enum config_role {
	CONFIG_ROLE_CONTROL_PLANE,
	CONFIG_ROLE_WORKER,
};

/* A jump host that an SSH connection goes through (OpenSSH's ProxyJump). */
struct config_bastion {
	char *address;
	unsigned port;           /* default 22 */
	char *user;              /* default: the host's ssh.user */
	char *key_path;          /* expanded; default: the host's ssh.keyPath */
	char *host_key;          /* "SHA256:..." or NULL: the host's known_hosts */
};

struct config_ssh {
	char *address;           /* host name or IP address */
	unsigned port;           /* default 22 */
	char *user;              /* default root */
	char *key_path;          /* expanded private key; NULL: the ssh-agent */
	char *passphrase_env;    /* name of the variable holding the key's passphrase */
	char *host_key;          /* pinned "SHA256:<43 base64 characters>" or NULL */
	char *known_hosts;       /* expanded; NULL: ~/.ssh/known_hosts */
	struct config_bastion *bastion;   /* NULL: a direct connection */
};

struct config_host {
	char *name;
	enum config_role role;
	bool local;              /* the machine mlboot runs on: no SSH */
	struct config_ssh ssh;   /* all NULL and 0 when local */
	bool sudo;               /* run privileged commands through "sudo -n" */
	unsigned line;           /* where the host's entry starts in mlboot.yaml */
	unsigned column;
};

enum config_kserve_mode {
	CONFIG_KSERVE_RAW_DEPLOYMENT,
	CONFIG_KSERVE_SERVERLESS,
};

/* The keys of spec.components, in the bundle's apply order. */
enum config_component {
	CONFIG_COMPONENT_CERT_MANAGER,
	CONFIG_COMPONENT_ISTIO,
	CONFIG_COMPONENT_KSERVE,
	CONFIG_COMPONENT_KUBEFLOW,
	CONFIG_COMPONENT_ARGOCD,
	CONFIG_COMPONENT_SAMPLE_MODEL,
	CONFIG_COMPONENT_COUNT,
};

/* The position of a key or value in mlboot.yaml, line 0 when it is not there. */
struct config_position {
	unsigned line;
	unsigned column;
};

/*
 * The components to install. Without spec.components every component of
 * the bundle is installed and every flag below is true; with it, only the
 * listed components are.
 */
struct config_components {
	bool listed;                       /* spec.components is given */
	bool cert_manager;
	bool istio;
	char *istio_profile;               /* always "default": the only profile accepted */
	bool kserve;
	enum config_kserve_mode kserve_mode;   /* default RawDeployment */
	bool kubeflow;
	bool argocd;
	bool sample_model;
	char *sample_model_namespace;      /* default "ml" */
	/* The key of each listed component. */
	struct config_position at[CONFIG_COMPONENT_COUNT];
	/* The values of kserve.deploymentMode and sampleModel.namespace, when given. */
	struct config_position kserve_mode_at;
	struct config_position sample_model_namespace_at;
};

struct config {
	char *file;              /* mlboot.yaml as named by the caller, for messages */
	char *name;              /* metadata.name */
	char *bundle;            /* expanded path or https URL; NULL when not given */
	bool bundle_is_url;
	/* spec.kubeconfig: path and context, or from_host; all NULL when not given. */
	char *kubeconfig_path;
	char *kubeconfig_context;
	char *kubeconfig_from_host;
	struct config_host *hosts;
	size_t host_count;
	bool images_pin;         /* images.pin, default true; images.mode is always containerd */
	struct config_components components;
	unsigned component_timeout;   /* seconds */
	unsigned install_timeout;     /* seconds */
	char *state_dir;
	unsigned parallelism;
};

/* One problem found in mlboot.yaml. */
struct config_problem {
	unsigned line;           /* 1-based; 0 when no position applies */
	unsigned column;
	char *field;             /* "spec.hosts[1].ssh.port"; "" for the document */
	char *message;           /* what is wrong and what to do, values escaped */
};

struct config_problems {
	struct config_problem *items;
	size_t count;
	size_t capacity;
	size_t dropped;          /* problems past CONFIG_MAX_PROBLEMS, counted only */
};

void config_problems_release(struct config_problems *problems);
/*
 * Logs each problem as an error line "FILE:LINE:COLUMN: FIELD: MESSAGE",
 * then a count of the problems left out, if any.
 */
void config_problems_log(const struct config_problems *problems, const char *file);
/* Formats one problem as config_problems_log() prints it; caller frees. */
char *config_problem_format(const struct config_problem *problem, const char *file);

/*
 * Reads and validates mlboot.yaml at path. Returns 0 and fills *out, or
 * MLB_EINPUT with *problems listing everything wrong (the file unreadable,
 * invalid YAML or invalid fields), or -ENOMEM. *out is left empty on
 * failure. problems must be zeroed by the caller.
 */
int config_load(const char *path, struct config *out, struct config_problems *problems);
/*
 * Validates a configuration held in memory; name stands for the file in
 * messages and relative paths resolve against its folder.
 */
int config_parse(const char *name, const char *data, size_t len, struct config *out,
		 struct config_problems *problems);
void config_release(struct config *config);

/* The key of a component in spec.components ("certManager") and its name in a bundle ("cert-manager"). */
const char *config_component_key(enum config_component component);
const char *config_component_bundle_name(enum config_component component);
/*
 * The key of spec.components that installs the bundle component named
 * bundle_name, or -1 when no key does. knative-serving goes with kserve,
 * which needs it in Serverless mode.
 */
int config_component_of(const char *bundle_name);
/* Whether the configuration installs the bundle component named bundle_name. */
bool config_component_selected(const struct config *config, const char *bundle_name);
/*
 * Checks spec.components against the components of a bundle (names, count
 * of them): every listed component must be in it. Each one missing is a
 * problem at its key that names bundle (the bundle's path, for the
 * message) and what to do. Returns 0, MLB_EINPUT when a problem was
 * added, or -ENOMEM.
 */
int config_check_bundle_components(const struct config *config, const char *const *names, size_t count,
				   const char *bundle, struct config_problems *problems);
/* Adds one problem with a printf-style message, as the loader does. Returns 0 or -ENOMEM. */
int config_problems_add(struct config_problems *problems, struct config_position position, const char *field,
			const char *format, ...) __attribute__((format(printf, 4, 5)));

/* Finds a host by name; NULL when there is none. */
const struct config_host *config_find_host(const struct config *config, const char *name);
const char *config_role_name(enum config_role role);

/*
 * Fills a node/node.h host description from a host of mlboot.yaml. out is
 * initialised here and released by the caller with node_host_release(),
 * also on failure. A bastion gets the host's knownHosts file. Returns 0 or
 * -ENOMEM.
 */
int config_host_to_node(const struct config_host *host, struct node_host *out);

/* Largest admin kubeconfig fetched from a host. */
#define CONFIG_KUBECONFIG_MAX (1024 * 1024)

/* The kubeconfig that spec.kubeconfig names, ready for kubeconfig_load(). */
struct config_kubeconfig {
	struct kubeconfig_options options;
	struct buf data;         /* a fetched kubeconfig; a secret, wiped on release */
	char *data_name;         /* "host cp1:/etc/kubernetes/admin.conf" */
	char *server_rewritten;  /* the server URL after a loopback rewrite, or NULL */
};

/*
 * Resolves spec.kubeconfig into out->options. For path and context it only
 * copies pointers into config, which must outlive out. For fromHost it
 * connects to that host and reads the first of /etc/kubernetes/admin.conf
 * (kubeadm), /etc/rancher/k3s/k3s.yaml (k3s) and /etc/rancher/rke2/rke2.yaml
 * (RKE2) that exists, through sudo when the host has sudo: true, into
 * out->data; the file never touches a disk here. When a cluster's server
 * is a loopback address (k3s and RKE2 write https://127.0.0.1:6443) and the
 * host is not local, the server becomes the host's ssh.address with the
 * same port, which is logged at info level; TLS verification stays on, so
 * the server certificate must list that address. Without spec.kubeconfig,
 * out->options stays empty (kubectl's defaults apply).
 *
 * Blocks for the connection and one command, bounded by node_options.
 * Returns 0, or a node.h result code with err naming the host: MLB_EINPUT
 * when no admin kubeconfig was found or it is larger than
 * CONFIG_KUBECONFIG_MAX or not YAML, MLB_EDENIED when it cannot be read.
 * Release out with config_kubeconfig_release() in every case.
 */
int config_kubeconfig_resolve(const struct config *config, const struct node_options *node_options,
			      struct config_kubeconfig *out, struct node_error *err);
void config_kubeconfig_release(struct config_kubeconfig *kubeconfig);

/*
 * Rewrites a server URL whose host is a loopback address (127.0.0.0/8, ::1
 * or localhost) to use address instead, keeping scheme, port and path.
 * Returns 1 and a new string in *out, 0 when the host is not loopback, or
 * -ENOMEM. *was_name tells whether the old host was the name localhost.
 */
int config_rewrite_loopback_server(const char *server, const char *address, char **out,
				   bool *was_name);

/*
 * Parses a duration such as "90s", "15m", "2h" or "1h30m" (hours, minutes
 * and seconds, each at most once and in that order) into seconds. Returns
 * -EINVAL for any other form and -ERANGE for 0 or more than
 * CONFIG_MAX_DURATION.
 */
int config_parse_duration(const char *text, unsigned *seconds);

/*
 * Whether text is an OpenSSH SHA-256 fingerprint: "SHA256:" and 43
 * characters of unpadded base64 that encode exactly 32 bytes.
 */
bool config_host_key_valid(const char *text);

#endif
