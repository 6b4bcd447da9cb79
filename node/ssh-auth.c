/*
 * User authentication for the SSH transport: a private key file or the
 * ssh-agent. mlboot never prompts; an encrypted key's passphrase comes from
 * the environment variable that ssh.passphrase_env names.
 */
#include <errno.h>
#include <poll.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "error.h"
#include "file.h"
#include "log.h"
#include "ssh-link.h"

/* Maximum size of a private key file; an RSA key of 16384 bits takes about 13 KiB. */
#define KEY_FILE_MAX (64 * 1024)
/* Maximum time of one wait while the ssh-agent works, since its socket cannot be polled. */
#define AGENT_POLL_MS 20

static const char rsa_advice[] =
	"libssh2 1.10 signs with RSA keys only as ssh-rsa (SHA-1), which OpenSSH 8.8 and "
	"later reject by default, since they require rsa-sha2-256 or rsa-sha2-512 "
	"signatures. Use an ed25519 or ECDSA key instead (ssh-keygen -t ed25519) and add "
	"it to the user's authorized_keys on the host";

struct key_info {
	char type[64];                    /* key type name, "" when unknown */
	bool encrypted;
	const char *format;
};

static uint32_t read_u32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Takes an SSH string (uint32 length and bytes) off *data. */
static bool take_string(const unsigned char **data, size_t *len, const unsigned char **text,
			size_t *text_len)
{
	uint32_t n;

	if (*len < 4)
		return false;
	n = read_u32(*data);
	if (n > *len - 4)
		return false;
	*text = *data + 4;
	*text_len = n;
	*data += 4 + n;
	*len -= 4 + n;
	return true;
}

/*
 * Reads the unencrypted header of an OpenSSH private key ("openssh-key-v1").
 * The cipher name shows whether the key is encrypted, and the public key in
 * the header gives its type, even when the private part is encrypted.
 */
static void inspect_openssh_key(const char *body, size_t len, struct key_info *info)
{
	static const char magic[] = "openssh-key-v1";
	struct buf text = BUF_INIT(KEY_FILE_MAX);
	unsigned char *decoded = NULL;
	const unsigned char *cursor, *cipher, *kdf, *kdf_options, *public_key;
	size_t decoded_len, left, cipher_len, kdf_len, kdf_options_len, public_len;

	info->format = "OpenSSH";
	for (size_t i = 0; i < len; i++)
		if (body[i] != '\n' && body[i] != '\r' && body[i] != ' ' && body[i] != '\t' &&
		    buf_append_char(&text, body[i]) < 0)
			goto out;
	if (node_base64_decode(buf_str(&text), text.len, &decoded, &decoded_len) < 0)
		goto out;
	if (decoded_len < sizeof(magic) || memcmp(decoded, magic, sizeof(magic)) != 0)
		goto out;
	cursor = decoded + sizeof(magic);
	left = decoded_len - sizeof(magic);
	if (!take_string(&cursor, &left, &cipher, &cipher_len) ||
	    !take_string(&cursor, &left, &kdf, &kdf_len) ||
	    !take_string(&cursor, &left, &kdf_options, &kdf_options_len) || left < 4)
		goto out;
	info->encrypted = !(cipher_len == 4 && memcmp(cipher, "none", 4) == 0);
	cursor += 4;
	left -= 4;
	if (take_string(&cursor, &left, &public_key, &public_len))
		node_key_blob_type(public_key, public_len, info->type, sizeof(info->type));
out:
	if (decoded) {
		secure_wipe(decoded, decoded_len);
		free(decoded);
	}
	buf_release_secret(&text);
}

/* Finds the type of an unencrypted PKCS#8 key through OpenSSL. */
static void inspect_pkcs8_key(const char *data, size_t len, struct key_info *info)
{
	BIO *bio = BIO_new_mem_buf(data, (int)len);
	EVP_PKEY *key = NULL;

	info->format = "PKCS#8";
	if (!bio)
		return;
	key = PEM_read_bio_PrivateKey(bio, NULL, NULL, (void *)"");
	if (key) {
		switch (EVP_PKEY_get_base_id(key)) {
		case EVP_PKEY_ED25519:
			snprintf(info->type, sizeof(info->type), "ssh-ed25519");
			break;
		case EVP_PKEY_EC:
			snprintf(info->type, sizeof(info->type), "ecdsa-sha2");
			break;
		case EVP_PKEY_RSA:
			snprintf(info->type, sizeof(info->type), "ssh-rsa");
			break;
		}
		EVP_PKEY_free(key);
	}
	BIO_free(bio);
}

static void inspect_key(const char *data, size_t len, struct key_info *info)
{
	static const char openssh_begin[] = "-----BEGIN OPENSSH PRIVATE KEY-----";
	static const char openssh_end[] = "-----END OPENSSH PRIVATE KEY-----";
	const char *begin = memmem(data, len, openssh_begin, strlen(openssh_begin));

	memset(info, 0, sizeof(*info));
	info->format = "unknown";
	if (begin) {
		const char *body = begin + strlen(openssh_begin);
		const char *end = memmem(body, len - (size_t)(body - data), openssh_end,
					 strlen(openssh_end));

		if (end)
			inspect_openssh_key(body, (size_t)(end - body), info);
		return;
	}
	if (memmem(data, len, "-----BEGIN EC PRIVATE KEY-----", 30)) {
		info->format = "PEM";
		snprintf(info->type, sizeof(info->type), "ecdsa-sha2");
	} else if (memmem(data, len, "-----BEGIN RSA PRIVATE KEY-----", 31)) {
		info->format = "PEM";
		snprintf(info->type, sizeof(info->type), "ssh-rsa");
	} else if (memmem(data, len, "-----BEGIN DSA PRIVATE KEY-----", 31)) {
		info->format = "PEM";
		snprintf(info->type, sizeof(info->type), "ssh-dss");
	} else if (memmem(data, len, "-----BEGIN ENCRYPTED PRIVATE KEY-----", 37)) {
		info->format = "PKCS#8";
		info->encrypted = true;
	} else if (memmem(data, len, "-----BEGIN PRIVATE KEY-----", 27)) {
		inspect_pkcs8_key(data, len, info);
	}
	if (memmem(data, len, "Proc-Type: 4,ENCRYPTED", 22))
		info->encrypted = true;
}

static bool is_rsa_type(const char *type)
{
	return strcmp(type, "ssh-rsa") == 0;
}

static int user_name(const struct node_ssh *desc, char *out, size_t size)
{
	struct passwd entry, *found = NULL;
	char buffer[4096];

	if (desc->user) {
		snprintf(out, size, "%s", desc->user);
		return 0;
	}
	if (getpwuid_r(geteuid(), &entry, buffer, sizeof(buffer), &found) != 0 || !found)
		return -ENOENT;
	snprintf(out, size, "%s", found->pw_name);
	return 0;
}

/*
 * Waits for libssh2 during authentication. An ssh-agent call may wait on the
 * agent's socket, which libssh2 does not expose, so those waits poll the SSH
 * socket in short slices and let the caller retry.
 */
static int auth_wait(struct ssh_link *link, int64_t deadline_ms, bool agent)
{
	int64_t slice;
	int r;

	if (!agent)
		return ssh_link_wait(link, deadline_ms);
	if (node_remaining_ms(deadline_ms) == 0)
		return -ETIMEDOUT;
	slice = node_now_ms() + AGENT_POLL_MS;
	r = ssh_link_wait(link, slice < deadline_ms ? slice : deadline_ms);
	return r == -ETIMEDOUT ? 0 : r;
}

static int auth_with_key(struct ssh_link *link, const struct node_ssh *desc, const char *host_name,
			 const char *user, int64_t deadline_ms, struct node_error *err)
{
	struct buf key = BUF_INIT(KEY_FILE_MAX);
	struct key_info info;
	char *path = NULL, *passphrase = NULL;
	int rc, r;

	r = file_expand_path(desc->key_path, &path);
	if (r < 0) {
		r = node_fail(err, MLB_EINPUT, host_name, "cannot expand keyPath '%s'", desc->key_path);
		goto out;
	}
	r = file_read_all(path, KEY_FILE_MAX, &key);
	if (r < 0) {
		r = node_fail(err, MLB_EINPUT, host_name,
			      "cannot read key file '%s': %s; check keyPath and the file's "
			      "permissions", path, r == -EFBIG ? "larger than 64 KiB" : mlb_strerror(r));
		goto out;
	}
	inspect_key(key.data, key.len, &info);

	if (desc->passphrase_env) {
		const char *value = getenv(desc->passphrase_env);

		if (!value) {
			r = node_fail(err, MLB_EINPUT, host_name,
				      "environment variable '%s', named by passphraseEnv for key "
				      "'%s', is not set", desc->passphrase_env, path);
			goto out;
		}
		passphrase = strdup(value);
		if (!passphrase) {
			r = node_fail(err, -ENOMEM, host_name, "out of memory");
			goto out;
		}
	} else if (info.encrypted) {
		r = node_fail(err, MLB_EINPUT, host_name,
			      "key file '%s' is encrypted and mlboot never prompts; set passphraseEnv "
			      "to the name of an environment variable that contains the passphrase",
			      path);
		goto out;
	}

	while ((rc = libssh2_userauth_publickey_frommemory(link->session, user, strlen(user), NULL, 0,
							   key.data, key.len, passphrase)) ==
	       LIBSSH2_ERROR_EAGAIN) {
		r = auth_wait(link, deadline_ms, false);
		if (r < 0) {
			r = node_fail(err, r == -ETIMEDOUT ? MLB_EUNREACHABLE : r, host_name,
				      "authentication on %s %s", link->label,
				      r == -ETIMEDOUT ? "timed out" : "failed");
			goto out;
		}
	}
	if (rc == 0) {
		r = 0;
		goto out;
	}

	if (rc == LIBSSH2_ERROR_FILE || rc == LIBSSH2_ERROR_KEYFILE_AUTH_FAILED ||
	    rc == LIBSSH2_ERROR_METHOD_NOT_SUPPORTED || rc == LIBSSH2_ERROR_INVAL) {
		r = node_fail(err, MLB_EINPUT, host_name,
			      "cannot use key file '%s' (%s format%s%s%s): %s. %s", path, info.format,
			      info.type[0] ? ", " : "", info.type, info.encrypted ? ", encrypted" : "",
			      ssh_link_error(link),
			      info.encrypted ? "Check the passphrase in the environment variable "
					       "named by passphraseEnv." :
					       "libssh2 1.10 reads ed25519 and ECDSA keys in OpenSSH "
					       "or PEM format.");
		goto out;
	}
	if (rc == LIBSSH2_ERROR_AUTHENTICATION_FAILED || rc == LIBSSH2_ERROR_PUBLICKEY_UNVERIFIED) {
		if (is_rsa_type(info.type))
			r = node_fail(err, MLB_EDENIED, host_name,
				      "the server on %s rejected RSA key '%s' for user '%s': %s",
				      link->label, path, user, rsa_advice);
		else
			r = node_fail(err, MLB_EDENIED, host_name,
				      "the server on %s rejected key '%s'%s%s%s for user '%s'; add "
				      "its public key to that user's ~/.ssh/authorized_keys on the host",
				      link->label, path, info.type[0] ? " (" : "", info.type,
				      info.type[0] ? ")" : "", user);
		goto out;
	}
	r = node_fail(err, ssh_result(rc) == -EPROTO ? MLB_EUNREACHABLE : ssh_result(rc), host_name,
		      "authentication on %s failed: %s", link->label, ssh_link_error(link));
out:
	secret_free(passphrase);
	buf_release_secret(&key);
	free(path);
	return r;
}

static int auth_with_agent(struct ssh_link *link, const char *host_name, const char *user,
			   int64_t deadline_ms, struct node_error *err)
{
	struct libssh2_agent_publickey *identity = NULL, *previous = NULL;
	LIBSSH2_AGENT *agent = NULL;
	size_t tried = 0, rejected_rsa = 0;
	char rejected[512] = "";
	int rc, r;

	if (!getenv("SSH_AUTH_SOCK"))
		return node_fail(err, MLB_EINPUT, host_name,
				 "no keyPath is set and no ssh-agent is running (SSH_AUTH_SOCK is "
				 "unset); set keyPath or start ssh-agent and add a key");

	agent = libssh2_agent_init(link->session);
	if (!agent)
		return node_fail(err, -ENOMEM, host_name, "cannot create an ssh-agent client");
	while ((rc = libssh2_agent_connect(agent)) == LIBSSH2_ERROR_EAGAIN)
		if ((r = auth_wait(link, deadline_ms, true)) < 0)
			break;
	if (rc != 0) {
		r = node_fail(err, MLB_EINPUT, host_name, "cannot connect to the ssh-agent at '%s': %s",
			      getenv("SSH_AUTH_SOCK"), ssh_link_error(link));
		goto out;
	}
	while ((rc = libssh2_agent_list_identities(agent)) == LIBSSH2_ERROR_EAGAIN)
		if ((r = auth_wait(link, deadline_ms, true)) < 0)
			break;
	if (rc != 0) {
		r = node_fail(err, MLB_EINPUT, host_name, "cannot list the ssh-agent's keys: %s",
			      ssh_link_error(link));
		goto out;
	}

	for (;;) {
		char type[64] = "";

		rc = libssh2_agent_get_identity(agent, &identity, previous);
		if (rc != 0)
			break;
		previous = identity;
		tried++;
		node_key_blob_type(identity->blob, identity->blob_len, type, sizeof(type));
		while ((rc = libssh2_agent_userauth(agent, user, identity)) == LIBSSH2_ERROR_EAGAIN) {
			r = auth_wait(link, deadline_ms, true);
			if (r < 0) {
				r = node_fail(err, MLB_EUNREACHABLE, host_name,
					      "authentication on %s timed out", link->label);
				goto out;
			}
		}
		if (rc == 0) {
			r = 0;
			goto out;
		}
		if (is_rsa_type(type))
			rejected_rsa++;
		if (strlen(rejected) + strlen(type) + 3 < sizeof(rejected))
			snprintf(rejected + strlen(rejected), sizeof(rejected) - strlen(rejected),
				 "%s%s", rejected[0] ? ", " : "", type[0] ? type : "unknown");
		log_debug("host '%s': the server rejected the agent's %s key (%s)", host_name,
			  type, identity->comment ? identity->comment : "");
	}

	if (tried == 0)
		r = node_fail(err, MLB_EDENIED, host_name,
			      "the ssh-agent holds no keys; add one with ssh-add or set keyPath");
	else if (rejected_rsa == tried)
		r = node_fail(err, MLB_EDENIED, host_name,
			      "the server on %s rejected every ssh-agent key (%s) for user '%s': %s",
			      link->label, rejected, user, rsa_advice);
	else
		r = node_fail(err, MLB_EDENIED, host_name,
			      "the server on %s rejected every ssh-agent key (%s) for user '%s'; add "
			      "one of their public keys to that user's ~/.ssh/authorized_keys%s",
			      link->label, rejected, user,
			      rejected_rsa ? " (RSA keys cannot work with libssh2 1.10: use ed25519 "
					     "or ECDSA)" : "");
out:
	libssh2_agent_disconnect(agent);
	libssh2_agent_free(agent);
	return r;
}

int ssh_authenticate(struct ssh_link *link, const struct node_ssh *desc, const char *host_name,
		     int64_t deadline_ms, struct node_error *err)
{
	char user[NODE_NAME_MAX + 1];
	const char *methods;
	int r;

	if (user_name(desc, user, sizeof(user)) < 0)
		return node_fail(err, MLB_EINPUT, host_name,
				 "no ssh user is set and the local user has no name; set user");

	while (!(methods = libssh2_userauth_list(link->session, user, (unsigned)strlen(user)))) {
		int rc = libssh2_session_last_errno(link->session);

		if (libssh2_userauth_authenticated(link->session))
			return 0;
		if (rc != LIBSSH2_ERROR_EAGAIN)
			return node_fail(err, MLB_EUNREACHABLE, host_name,
					 "cannot start authentication on %s: %s", link->label,
					 ssh_link_error(link));
		r = auth_wait(link, deadline_ms, false);
		if (r < 0)
			return node_fail(err, MLB_EUNREACHABLE, host_name,
					 "authentication on %s %s", link->label,
					 r == -ETIMEDOUT ? "timed out" : "failed");
	}
	if (!strstr(methods, "publickey"))
		return node_fail(err, MLB_EDENIED, host_name,
				 "the server on %s accepts no public key authentication for user "
				 "'%s' (it offers: %.200s)", link->label, user, methods);

	if (desc->key_path)
		return auth_with_key(link, desc, host_name, user, deadline_ms, err);
	return auth_with_agent(link, host_name, user, deadline_ms, err);
}
