/*
 * Host key verification for the SSH transport.
 *
 * A pinned hostKey fingerprint wins. Without one, the known_hosts files are
 * read: ssh.known_hosts when set, else ~/.ssh/known_hosts and
 * /etc/ssh/ssh_known_hosts. A host whose recorded key differs from the
 * offered one, or that has only keys of another type recorded, is rejected.
 * An unknown host is rejected unless options.accept_new_host_keys is set;
 * then its key is appended, as a hashed entry, to the user known_hosts file.
 *
 * libssh2 1.10 offers ECDSA before ed25519 by default, so mlboot sets the
 * host key types to offer in each handshake: the pinned type, or the types recorded
 * for the host. A pin without a type is tried type by type, one handshake
 * each, until a key matches or the server has no other type.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "error.h"
#include "file.h"
#include "log.h"
#include "ssh-link.h"

#define USER_KNOWN_HOSTS "~/.ssh/known_hosts"
#define SYSTEM_KNOWN_HOSTS "/etc/ssh/ssh_known_hosts"

/* Host key types libssh2 1.10 can verify, in the order mlboot prefers them. */
static const char *const hostkey_types[] = {
	"ssh-ed25519",
	"ecdsa-sha2-nistp256",
	"ecdsa-sha2-nistp384",
	"ecdsa-sha2-nistp521",
	"ssh-rsa",
};
#define HOSTKEY_TYPE_COUNT (sizeof(hostkey_types) / sizeof(hostkey_types[0]))

struct recorded_key {
	const struct node_known_entry *entry;
	const char *path;
};

struct ssh_hostkey_plan {
	const struct node_ssh *desc;
	const char *host_name;
	uint16_t port;
	char label[NODE_NAME_MAX + 16];

	bool pinned;
	char pin_type[64];               /* "" when the pin names no type */
	char pin_fingerprint[NODE_FINGERPRINT_LEN + 1];

	struct node_known_hosts files[2];
	size_t file_count;
	char *append_path;               /* user known_hosts file for new keys */
	struct recorded_key *recorded;   /* plain entries that match the host */
	size_t recorded_count;
	struct recorded_key *revoked;    /* @revoked entries that match the host */
	size_t revoked_count;
	struct recorded_key cert_authority; /* first matching @cert-authority entry */

	bool tried[HOSTKEY_TYPE_COUNT];  /* types already offered by the server */
	char offered[512];               /* "TYPE FINGERPRINT" of each offered key */
	bool learning;                   /* the handshake only learns the offered key */
	char methods[256];
	bool methods_are_all;            /* methods lists every supported type */
};

static int type_index(const char *type)
{
	for (size_t i = 0; i < HOSTKEY_TYPE_COUNT; i++)
		if (strcmp(hostkey_types[i], type) == 0)
			return (int)i;
	return -1;
}

/* Sets plan->methods to the types marked in want, in preference order. */
static void set_methods(struct ssh_hostkey_plan *plan, const bool want[HOSTKEY_TYPE_COUNT])
{
	size_t used = 0;

	plan->methods_are_all = true;
	plan->methods[0] = '\0';
	for (size_t i = 0; i < HOSTKEY_TYPE_COUNT; i++) {
		if (!want[i]) {
			plan->methods_are_all = false;
			continue;
		}
		used += (size_t)snprintf(plan->methods + used, sizeof(plan->methods) - used, "%s%s",
					 used ? "," : "", hostkey_types[i]);
	}
}

static void set_all_methods(struct ssh_hostkey_plan *plan)
{
	bool all[HOSTKEY_TYPE_COUNT];

	for (size_t i = 0; i < HOSTKEY_TYPE_COUNT; i++)
		all[i] = true;
	set_methods(plan, all);
}

static int append_record(struct recorded_key **list, size_t *count,
			 const struct node_known_entry *entry, const char *path)
{
	struct recorded_key *grown = reallocarray(*list, *count + 1, sizeof(**list));

	if (!grown)
		return -ENOMEM;
	grown[*count].entry = entry;
	grown[*count].path = path;
	*list = grown;
	(*count)++;
	return 0;
}

static int load_known_hosts(struct ssh_hostkey_plan *plan, struct node_error *err)
{
	const char *paths[2];
	char *user_path = NULL;
	size_t path_count = 0;
	int r;

	if (plan->desc->known_hosts) {
		r = file_expand_path(plan->desc->known_hosts, &user_path);
		if (r < 0)
			return node_fail(err, MLB_EINPUT, plan->host_name,
					 "cannot expand knownHosts path '%s'", plan->desc->known_hosts);
		paths[path_count++] = user_path;
	} else {
		r = file_expand_path(USER_KNOWN_HOSTS, &user_path);
		if (r < 0)
			return node_fail(err, r, plan->host_name,
					 "cannot find the home folder for %s", USER_KNOWN_HOSTS);
		paths[path_count++] = user_path;
		paths[path_count++] = SYSTEM_KNOWN_HOSTS;
	}
	plan->append_path = user_path;

	for (size_t i = 0; i < path_count; i++) {
		struct node_known_hosts *known = &plan->files[plan->file_count];

		r = node_known_hosts_load(paths[i], known);
		if (r < 0)
			return node_fail(err, r == -E2BIG || r == -EFBIG ? MLB_EINPUT : r,
					 plan->host_name, "cannot read known_hosts file '%s': %s",
					 paths[i], mlb_strerror(r));
		plan->file_count++;
		if (known->invalid_lines)
			log_debug("%s: %zu invalid lines skipped, the first at line %u: %s", paths[i],
				  known->invalid_lines, known->first_invalid_line,
				  known->first_invalid_reason);
	}

	for (size_t f = 0; f < plan->file_count; f++) {
		const struct node_known_hosts *known = &plan->files[f];

		for (size_t i = 0; i < known->count; i++) {
			const struct node_known_entry *entry = &known->entries[i];

			if (!node_known_entry_matches(entry, plan->desc->address, plan->port))
				continue;
			switch (entry->marker) {
			case NODE_KNOWN_PLAIN:
				r = append_record(&plan->recorded, &plan->recorded_count, entry,
						  known->path);
				break;
			case NODE_KNOWN_REVOKED:
				r = append_record(&plan->revoked, &plan->revoked_count, entry,
						  known->path);
				break;
			case NODE_KNOWN_CERT_AUTHORITY:
				log_debug("%s:%u: @cert-authority lines are not supported (libssh2 "
					  "1.10 has no host certificates); line ignored", known->path,
					  entry->line);
				if (!plan->cert_authority.entry) {
					plan->cert_authority.entry = entry;
					plan->cert_authority.path = known->path;
				}
				r = 0;
				break;
			default:
				r = 0;
			}
			if (r < 0)
				return node_fail(err, r, plan->host_name, "out of memory");
		}
	}
	return 0;
}

int ssh_hostkey_plan_new(const struct node_ssh *desc, const char *host_name,
			 struct ssh_hostkey_plan **out, struct node_error *err)
{
	struct ssh_hostkey_plan *plan;
	int r;

	plan = calloc(1, sizeof(*plan));
	if (!plan)
		return node_fail(err, -ENOMEM, host_name, "out of memory");
	plan->desc = desc;
	plan->host_name = host_name;
	plan->port = desc->port ? desc->port : 22;
	snprintf(plan->label, sizeof(plan->label), "%s port %u", desc->address,
		 (unsigned)plan->port);

	if (desc->host_key) {
		const char *space = strchr(desc->host_key, ' ');
		bool want[HOSTKEY_TYPE_COUNT] = { false };

		if (!node_host_key_is_valid(desc->host_key)) {
			r = node_fail(err, MLB_EINPUT, host_name, "invalid hostKey '%.80s'",
				      desc->host_key);
			goto fail;
		}
		plan->pinned = true;
		if (space) {
			int index;

			snprintf(plan->pin_type, sizeof(plan->pin_type), "%.*s",
				 (int)(space - desc->host_key), desc->host_key);
			index = type_index(plan->pin_type);
			if (index < 0) {
				r = node_fail(err, MLB_EINPUT, host_name,
					      "hostKey type '%s' is not supported by libssh2 1.10; "
					      "pin an ssh-ed25519 or ecdsa-sha2-nistp256 key",
					      plan->pin_type);
				goto fail;
			}
			want[index] = true;
			set_methods(plan, want);
		} else {
			set_all_methods(plan);
		}
		snprintf(plan->pin_fingerprint, sizeof(plan->pin_fingerprint), "%s",
			 space ? space + 1 : desc->host_key);
		*out = plan;
		return 0;
	}

	r = load_known_hosts(plan, err);
	if (r < 0)
		goto fail;
	if (plan->recorded_count > 0) {
		bool want[HOSTKEY_TYPE_COUNT] = { false };
		bool any = false;

		for (size_t i = 0; i < plan->recorded_count; i++) {
			int index = type_index(plan->recorded[i].entry->key_type);

			if (index >= 0)
				want[index] = any = true;
		}
		if (any)
			set_methods(plan, want);
		else
			set_all_methods(plan);
	} else {
		set_all_methods(plan);
	}
	*out = plan;
	return 0;
fail:
	ssh_hostkey_plan_free(plan);
	return r;
}

void ssh_hostkey_plan_free(struct ssh_hostkey_plan *plan)
{
	if (!plan)
		return;
	for (size_t i = 0; i < plan->file_count; i++)
		node_known_hosts_release(&plan->files[i]);
	free(plan->recorded);
	free(plan->revoked);
	free(plan->append_path);
	free(plan);
}

const char *ssh_hostkey_plan_methods(const struct ssh_hostkey_plan *plan)
{
	return plan->methods;
}

static void note_offered(struct ssh_hostkey_plan *plan, const char *type, const char *fingerprint)
{
	size_t used = strlen(plan->offered);

	snprintf(plan->offered + used, sizeof(plan->offered) - used, "%s%s %s", used ? ", " : "",
		 type, fingerprint);
}

static int fail_pin_mismatch(struct ssh_hostkey_plan *plan, struct node_error *err)
{
	return node_fail(err, MLB_EDENIED, plan->host_name,
			 "host key verification failed for %s: hostKey pins %s%s%s, but the "
			 "server offered %s. If the host was reinstalled, check the new key "
			 "('ssh-keygen -lf' on the host's /etc/ssh/ssh_host_*_key.pub) and "
			 "update hostKey",
			 plan->label, plan->pin_type, plan->pin_type[0] ? " " : "",
			 plan->pin_fingerprint, plan->offered[0] ? plan->offered : "no key");
}

static int fail_other_type(struct ssh_hostkey_plan *plan, struct node_error *err)
{
	const struct recorded_key *record = &plan->recorded[0];

	return node_fail(err, MLB_EDENIED, plan->host_name,
			 "host key verification failed for %s: %s:%u records a %s key (%s) for "
			 "this host, but the server offers no key of that type (it offered %s). "
			 "The host's keys changed or someone is intercepting the connection; if "
			 "the change is expected, replace the entry (ssh-keygen -R '%s' -f '%s')",
			 plan->label, record->path, record->entry->line, record->entry->key_type,
			 record->entry->fingerprint, plan->offered[0] ? plan->offered : "no key",
			 plan->port == 22 ? plan->desc->address : "[host]:port", record->path);
}

/* Appends a hashed entry for a newly accepted host to the user known_hosts file. */
static int record_new_key(struct ssh_hostkey_plan *plan, const char *type,
			  const unsigned char *blob, size_t len, struct node_error *err)
{
	struct buf line = BUF_INIT(NODE_KNOWN_LINE_MAX);
	char *folder = NULL, *slash;
	int fd = -1, r;

	r = node_known_hosts_format_hashed(plan->desc->address, plan->port, type, blob, len, &line);
	if (r < 0) {
		r = node_fail(err, r, plan->host_name, "cannot format a known_hosts line: %s",
			      mlb_strerror(r));
		goto out;
	}

	folder = strdup(plan->append_path);
	if (!folder) {
		r = node_fail(err, -ENOMEM, plan->host_name, "out of memory");
		goto out;
	}
	slash = strrchr(folder, '/');
	if (slash && slash != folder) {
		*slash = '\0';
		r = file_mkdir_parents(folder, 0700);
		if (r < 0) {
			r = node_fail(err, r, plan->host_name, "cannot create folder '%s': %s",
				      folder, mlb_strerror(r));
			goto out;
		}
	}

	fd = open(plan->append_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		r = node_fail(err, -errno, plan->host_name, "cannot open '%s' to record the host key: %s",
			      plan->append_path, strerror(errno));
		goto out;
	}
	/* Hosts connected in parallel may append at once. */
	if (flock(fd, LOCK_EX) < 0 || file_write_full(fd, line.data, line.len) < 0 || fsync(fd) < 0) {
		r = node_fail(err, -errno, plan->host_name, "cannot record the host key in '%s': %s",
			      plan->append_path, strerror(errno));
		goto out;
	}
	r = 0;
out:
	if (fd >= 0)
		close(fd);
	free(folder);
	buf_release(&line);
	return r;
}

int ssh_hostkey_verify(struct ssh_hostkey_plan *plan, struct ssh_link *link,
		       const struct node_options *options, struct node_error *err)
{
	const unsigned char *blob;
	char type[64], fingerprint[NODE_FINGERPRINT_LEN + 1];
	size_t len = 0;
	int key_type = 0, index, r;

	blob = (const unsigned char *)libssh2_session_hostkey(link->session, &len, &key_type);
	if (!blob || len == 0 || node_key_blob_type(blob, len, type, sizeof(type)) < 0)
		return node_fail(err, -EPROTO, plan->host_name, "the server on %s sent no usable host key",
				 plan->label);
	r = node_fingerprint(blob, len, fingerprint);
	if (r < 0)
		return node_fail(err, r, plan->host_name, "cannot compute a fingerprint");
	index = type_index(type);
	if (index >= 0)
		plan->tried[index] = true;
	note_offered(plan, type, fingerprint);
	log_debug("host '%s': %s offered %s key %s", plan->host_name, plan->label, type,
		  fingerprint);

	if (plan->pinned) {
		bool want[HOSTKEY_TYPE_COUNT];
		bool more = false;

		if (!plan->learning && strcmp(fingerprint, plan->pin_fingerprint) == 0 &&
		    (!plan->pin_type[0] || strcmp(type, plan->pin_type) == 0))
			return 0;
		if (plan->pin_type[0] || plan->learning)
			return fail_pin_mismatch(plan, err);
		for (size_t i = 0; i < HOSTKEY_TYPE_COUNT; i++) {
			want[i] = !plan->tried[i];
			more = more || want[i];
		}
		if (!more)
			return fail_pin_mismatch(plan, err);
		set_methods(plan, want);
		return 1;
	}

	for (size_t i = 0; i < plan->revoked_count; i++) {
		const struct node_known_entry *entry = plan->revoked[i].entry;

		if (entry->key_len == len && memcmp(entry->key, blob, len) == 0)
			return node_fail(err, MLB_EDENIED, plan->host_name,
					 "host key verification failed for %s: its %s key %s is "
					 "marked @revoked in %s:%u", plan->label, type, fingerprint,
					 plan->revoked[i].path, entry->line);
	}

	if (plan->learning)
		return fail_other_type(plan, err);

	if (plan->recorded_count > 0) {
		const struct recorded_key *same_type = NULL;

		for (size_t i = 0; i < plan->recorded_count; i++) {
			const struct node_known_entry *entry = plan->recorded[i].entry;

			if (strcmp(entry->key_type, type) != 0)
				continue;
			if (entry->key_len == len && memcmp(entry->key, blob, len) == 0)
				return 0;
			if (!same_type)
				same_type = &plan->recorded[i];
		}
		if (!same_type)
			return fail_other_type(plan, err);
		return node_fail(err, MLB_EDENIED, plan->host_name,
				 "host key verification failed for %s: the server offered %s key "
				 "%s, but %s:%u records %s for this host. The key changed or "
				 "someone is intercepting the connection; if the change is "
				 "expected, remove the old entry (ssh-keygen -R '%s' -f '%s') and "
				 "connect again", plan->label, type, fingerprint, same_type->path,
				 same_type->entry->line, same_type->entry->fingerprint,
				 plan->port == 22 ? plan->desc->address : "[host]:port",
				 same_type->path);
	}

	if (!options->accept_new_host_keys) {
		char files[2 * NODE_PATH_MAX + 8] = "";
		size_t used = 0;

		for (size_t i = 0; i < plan->file_count; i++)
			used += (size_t)snprintf(files + used, sizeof(files) - used, "%s%s",
						 i ? ", " : "", plan->files[i].path);
		return node_fail(err, MLB_EDENIED, plan->host_name,
				 "host key for %s is not known: the server offered %s key %s, and "
				 "no known_hosts file (%s) lists the host%s%s%s. Check the "
				 "fingerprint on the host, then pin it as hostKey, add it to "
				 "known_hosts, or run with --accept-new-host-keys",
				 plan->label, type, fingerprint, files,
				 plan->cert_authority.entry ? "; its @cert-authority entry in " : "",
				 plan->cert_authority.entry ? plan->cert_authority.path : "",
				 plan->cert_authority.entry ? " is not supported" : "");
	}

	r = record_new_key(plan, type, blob, len, err);
	if (r < 0)
		return r;
	/*
	 * Trusting a new key is a security decision the user must see, so this
	 * is logged above debug level, as ssh's "Permanently added" warning is.
	 */
	log_notice("host '%s': added %s key %s for %s to '%s' (hashed entry)", plan->host_name,
		   type, fingerprint, plan->label, plan->append_path);
	return 0;
}

int ssh_hostkey_no_common_method(struct ssh_hostkey_plan *plan, struct node_error *err)
{
	if (plan->learning || plan->methods_are_all)
		return node_fail(err, MLB_EUNREACHABLE, plan->host_name,
				 "no SSH algorithm in common with %s (libssh2 1.10 verifies "
				 "ssh-ed25519, ecdsa-sha2-nistp* and ssh-rsa host keys)", plan->label);
	if (plan->pinned && !plan->pin_type[0])
		return fail_pin_mismatch(plan, err);
	/* Learn which key the server does offer, to name it in the error. */
	plan->learning = true;
	set_all_methods(plan);
	return 1;
}
