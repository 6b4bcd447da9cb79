/*
 * Ed25519 keys and bundle signatures through OpenSSL's EVP interface.
 *
 * The signature entry is four lines of text:
 *
 *   mlboot-bundle-signature-v1
 *   algorithm: ed25519
 *   key: KEY_ID             (64 hex digits: SHA-256 of the raw public key)
 *   signature: SIGNATURE    (128 hex digits: the 64-byte Ed25519 signature)
 *
 * and the signed message is BUNDLE_SIGNATURE_PREFIX followed by the bytes
 * of SHA256SUMS. The prefix keeps a signature made for a bundle from being
 * valid for any other use of the same key.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>

#include "airgap-internal.h"

#define ED25519_PUBLIC_BYTES 32
#define ED25519_SIGNATURE_BYTES 64
/* Largest key file read; a PEM Ed25519 key is about 120 bytes. */
#define KEY_FILE_MAX (16u * 1024)
#define TRUST_KEYS_MAX 256

struct bundle_key {
	EVP_PKEY *pkey;
	bool private_key;
	char id[SHA256_HEX_LEN + 1];
};

static const char signature_header[] = "mlboot-bundle-signature-v1\nalgorithm: ed25519\nkey: ";

static int key_set_id(struct bundle_key *key)
{
	unsigned char raw[ED25519_PUBLIC_BYTES];
	size_t len = sizeof(raw);

	if (EVP_PKEY_get_raw_public_key(key->pkey, raw, &len) != 1 || len != sizeof(raw))
		return MLB_EINPUT;
	return sha256_hex(raw, len, key->id);
}

const char *bundle_key_id(const struct bundle_key *key)
{
	return key->id;
}

void bundle_key_free(struct bundle_key *key)
{
	if (!key)
		return;
	EVP_PKEY_free(key->pkey);
	secure_wipe(key, sizeof(*key));
	free(key);
}

/* Declines to decrypt: encrypted keys are not supported, and mlboot never prompts. */
static int no_password(char *buffer, int size, int rwflag, void *context)
{
	(void)buffer;
	(void)size;
	(void)rwflag;
	(void)context;
	return -1;
}

static int key_load(const char *path, bool private_key, struct bundle_key **out)
{
	struct buf data = BUF_INIT(KEY_FILE_MAX);
	struct bundle_key *key = NULL;
	BIO *bio = NULL;
	int r;

	r = file_read_all(path, KEY_FILE_MAX, &data);
	if (r < 0)
		goto out;
	r = -ENOMEM;
	key = calloc(1, sizeof(*key));
	bio = BIO_new_mem_buf(data.data, (int)data.len);
	if (!key || !bio)
		goto out;
	key->private_key = private_key;
	key->pkey = private_key ? PEM_read_bio_PrivateKey(bio, NULL, no_password, NULL)
				: PEM_read_bio_PUBKEY(bio, NULL, no_password, NULL);
	r = MLB_EINPUT;
	if (!key->pkey || EVP_PKEY_get_id(key->pkey) != EVP_PKEY_ED25519)
		goto out;
	r = key_set_id(key);
	if (r < 0)
		goto out;
	*out = key;
	key = NULL;
out:
	BIO_free(bio);
	buf_release_secret(&data);
	bundle_key_free(key);
	return r;
}

int bundle_key_load_private(const char *path, struct bundle_key **out)
{
	return key_load(path, true, out);
}

int bundle_key_load_public(const char *path, struct bundle_key **out)
{
	return key_load(path, false, out);
}

/* Writes data to a new temporary file beside final_path with mode; the caller links it. */
static int write_temporary(const char *final_path, const void *data, size_t len, mode_t mode,
			   char temporary[PATH_MAX])
{
	char suffix[17];
	int fd, r;

	r = random_hex(suffix, 16);
	if (r < 0)
		return r;
	if (snprintf(temporary, PATH_MAX, "%s.tmp-%s", final_path, suffix) >= PATH_MAX)
		return -ENAMETOOLONG;
	fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
	if (fd < 0)
		return -errno;
	r = fchmod(fd, mode) < 0 ? -errno : 0;
	if (r == 0)
		r = file_write_full(fd, data, len);
	if (r == 0 && fsync(fd) < 0)
		r = -errno;
	if (close(fd) < 0 && r == 0)
		r = -errno;
	if (r < 0)
		unlink(temporary);
	return r;
}

static int pem_private(EVP_PKEY *pkey, struct buf *out)
{
	BIO *bio = BIO_new(BIO_s_secmem());
	char *data = NULL;
	long len;
	int r = -ENOMEM;

	if (!bio)
		return -ENOMEM;
	if (PEM_write_bio_PrivateKey(bio, pkey, NULL, NULL, 0, NULL, NULL) != 1)
		goto out;
	len = BIO_get_mem_data(bio, &data);
	if (len <= 0)
		goto out;
	r = buf_append(out, data, (size_t)len);
	secure_wipe(data, (size_t)len);
out:
	BIO_free(bio);
	return r;
}

static int pem_public(EVP_PKEY *pkey, struct buf *out)
{
	BIO *bio = BIO_new(BIO_s_mem());
	char *data = NULL;
	long len;
	int r = -ENOMEM;

	if (!bio)
		return -ENOMEM;
	if (PEM_write_bio_PUBKEY(bio, pkey) != 1)
		goto out;
	len = BIO_get_mem_data(bio, &data);
	if (len <= 0)
		goto out;
	r = buf_append(out, data, (size_t)len);
out:
	BIO_free(bio);
	return r;
}

int bundle_key_generate(const char *name, char key_id[SHA256_HEX_LEN + 1])
{
	char key_path[PATH_MAX], pub_path[PATH_MAX];
	char key_temporary[PATH_MAX] = "", pub_temporary[PATH_MAX] = "";
	struct buf private_pem = BUF_INIT(KEY_FILE_MAX), public_pem = BUF_INIT(KEY_FILE_MAX);
	struct bundle_key key = { .pkey = NULL };
	bool key_linked = false;
	struct stat st;
	int r;

	if (snprintf(key_path, sizeof(key_path), "%s.key", name) >= (int)sizeof(key_path) ||
	    snprintf(pub_path, sizeof(pub_path), "%s.pub", name) >= (int)sizeof(pub_path))
		return -ENAMETOOLONG;
	if (lstat(key_path, &st) == 0 || lstat(pub_path, &st) == 0)
		return -EEXIST;

	r = -ENOMEM;
	key.pkey = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	if (!key.pkey)
		goto out;
	r = key_set_id(&key);
	if (r < 0)
		goto out;
	r = pem_private(key.pkey, &private_pem);
	if (r < 0)
		goto out;
	r = pem_public(key.pkey, &public_pem);
	if (r < 0)
		goto out;

	r = write_temporary(key_path, private_pem.data, private_pem.len, 0600, key_temporary);
	if (r < 0)
		goto out;
	r = write_temporary(pub_path, public_pem.data, public_pem.len, 0644, pub_temporary);
	if (r < 0)
		goto out;
	/* link() fails when the name exists, so neither file is ever replaced. */
	if (link(key_temporary, key_path) < 0) {
		r = -errno;
		goto out;
	}
	key_linked = true;
	if (link(pub_temporary, pub_path) < 0) {
		r = -errno;
		goto out;
	}
	memcpy(key_id, key.id, sizeof(key.id));
	r = 0;
out:
	if (r < 0 && key_linked)
		unlink(key_path);
	if (key_temporary[0])
		unlink(key_temporary);
	if (pub_temporary[0])
		unlink(pub_temporary);
	buf_release_secret(&private_pem);
	buf_release(&public_pem);
	EVP_PKEY_free(key.pkey);
	return r;
}

void bundle_trust_init(struct bundle_trust *trust)
{
	trust->keys = NULL;
	trust->count = 0;
}

void bundle_trust_release(struct bundle_trust *trust)
{
	if (!trust)
		return;
	for (size_t i = 0; i < trust->count; i++)
		bundle_key_free(trust->keys[i]);
	free(trust->keys);
	trust->keys = NULL;
	trust->count = 0;
}

int bundle_trust_add_file(struct bundle_trust *trust, const char *path)
{
	struct bundle_key *key = NULL, **keys;
	int r;

	r = bundle_key_load_public(path, &key);
	if (r < 0)
		return r;
	for (size_t i = 0; i < trust->count; i++) {
		if (strcmp(trust->keys[i]->id, key->id) == 0) {
			bundle_key_free(key);
			return 0;
		}
	}
	if (trust->count >= TRUST_KEYS_MAX) {
		bundle_key_free(key);
		return -E2BIG;
	}
	keys = realloc(trust->keys, (trust->count + 1) * sizeof(*keys));
	if (!keys) {
		bundle_key_free(key);
		return -ENOMEM;
	}
	trust->keys = keys;
	trust->keys[trust->count++] = key;
	return 0;
}

static int compare_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int bundle_trust_add_dir(struct bundle_trust *trust, const char *dir)
{
	char **names = NULL;
	size_t count = 0;
	struct dirent *item;
	DIR *folder;
	int r = 0;

	folder = opendir(dir);
	if (!folder)
		return errno == ENOENT ? 0 : -errno;
	while ((item = readdir(folder))) {
		size_t len = strlen(item->d_name);
		char **grown;

		if (len <= 4 || strcmp(item->d_name + len - 4, ".pub") != 0 || item->d_name[0] == '.')
			continue;
		if (count >= TRUST_KEYS_MAX) {
			r = -E2BIG;
			break;
		}
		grown = realloc(names, (count + 1) * sizeof(*names));
		if (!grown) {
			r = -ENOMEM;
			break;
		}
		names = grown;
		if (asprintf(&names[count], "%s/%s", dir, item->d_name) < 0) {
			r = -ENOMEM;
			break;
		}
		count++;
	}
	closedir(folder);
	if (r == 0)
		qsort(names, count, sizeof(*names), compare_names);
	for (size_t i = 0; r == 0 && i < count; i++)
		r = bundle_trust_add_file(trust, names[i]);
	for (size_t i = 0; i < count; i++)
		free(names[i]);
	free(names);
	return r;
}

static int message_build(const void *sums, size_t sums_len, struct buf *message)
{
	int r = buf_append_str(message, BUNDLE_SIGNATURE_PREFIX);

	return r < 0 ? r : buf_append(message, sums, sums_len);
}

int bundle_signature_create(const struct bundle_key *key, const void *sums, size_t sums_len,
			    struct buf *out)
{
	struct buf message = BUF_INIT(BUNDLE_SUMS_MAX + 64);
	unsigned char signature[ED25519_SIGNATURE_BYTES];
	char hex[2 * ED25519_SIGNATURE_BYTES + 1];
	size_t signature_len = sizeof(signature);
	EVP_MD_CTX *context = NULL;
	int r;

	if (!key->private_key)
		return -EINVAL;
	r = message_build(sums, sums_len, &message);
	if (r < 0)
		goto out;
	r = -ENOMEM;
	context = EVP_MD_CTX_new();
	if (!context)
		goto out;
	r = -EIO;
	if (EVP_DigestSignInit(context, NULL, NULL, NULL, key->pkey) != 1 ||
	    EVP_DigestSign(context, signature, &signature_len, (const unsigned char *)message.data,
			   message.len) != 1 ||
	    signature_len != sizeof(signature))
		goto out;
	for (size_t i = 0; i < sizeof(signature); i++)
		snprintf(hex + 2 * i, 3, "%02x", signature[i]);
	r = buf_printf(out, "%s%s\nsignature: %s\n", signature_header, key->id, hex);
out:
	EVP_MD_CTX_free(context);
	buf_release(&message);
	return r;
}

/* Reads the key ID and signature out of a signature entry; false when it is not canonical. */
static bool signature_parse(const char *sig, size_t len, char key_id[SHA256_HEX_LEN + 1],
			    unsigned char signature[ED25519_SIGNATURE_BYTES])
{
	size_t header_len = strlen(signature_header);
	const char *p = sig;
	unsigned char ignored[SHA256_BYTES];

	if (len != header_len + SHA256_HEX_LEN + 1 + strlen("signature: ") + 2 * ED25519_SIGNATURE_BYTES + 1)
		return false;
	if (memcmp(p, signature_header, header_len) != 0)
		return false;
	p += header_len;
	if (hex_decode_sha256(p, SHA256_HEX_LEN, ignored) < 0 || p[SHA256_HEX_LEN] != '\n')
		return false;
	memcpy(key_id, p, SHA256_HEX_LEN);
	key_id[SHA256_HEX_LEN] = '\0';
	p += SHA256_HEX_LEN + 1;
	if (memcmp(p, "signature: ", 11) != 0)
		return false;
	p += 11;
	for (size_t half = 0; half < 2; half++)
		if (hex_decode_sha256(p + half * SHA256_HEX_LEN, SHA256_HEX_LEN, signature + half * 32) < 0)
			return false;
	return p[2 * ED25519_SIGNATURE_BYTES] == '\n';
}

static const struct bundle_key *trust_find(const struct bundle_trust *trust, const char *key_id)
{
	for (size_t i = 0; trust && i < trust->count; i++)
		if (strcmp(trust->keys[i]->id, key_id) == 0)
			return trust->keys[i];
	return NULL;
}

static int signature_verify(const struct bundle_key *key, const unsigned char *signature,
			    const void *sums, size_t sums_len)
{
	struct buf message = BUF_INIT(BUNDLE_SUMS_MAX + 64);
	EVP_MD_CTX *context = NULL;
	int r;

	r = message_build(sums, sums_len, &message);
	if (r < 0)
		goto out;
	r = -ENOMEM;
	context = EVP_MD_CTX_new();
	if (!context)
		goto out;
	r = -EIO;
	if (EVP_DigestVerifyInit(context, NULL, NULL, NULL, key->pkey) != 1)
		goto out;
	r = EVP_DigestVerify(context, signature, ED25519_SIGNATURE_BYTES, (const unsigned char *)message.data,
			     message.len) == 1 ? 0 : MLB_EINTEGRITY;
out:
	EVP_MD_CTX_free(context);
	buf_release(&message);
	return r;
}

int bundle_signature_check(const struct bundle_check_options *options, const char *sig, size_t sig_len,
			   const void *sums, size_t sums_len, struct bundle_report *report)
{
	unsigned char signature[ED25519_SIGNATURE_BYTES];
	const struct bundle_key *key;
	int r;

	if (!sig) {
		report->signature = BUNDLE_SIGNATURE_ABSENT;
		if (options->allow_unsigned)
			return 0;
		return bundle_report_add(report, MLB_EINTEGRITY,
					 "the bundle is unsigned: pass --allow-unsigned to accept it anyway");
	}
	if (!signature_parse(sig, sig_len, report->key_id, signature)) {
		report->signature = BUNDLE_SIGNATURE_INVALID;
		return bundle_report_add(report, MLB_EINTEGRITY, "%s is malformed", BUNDLE_SIGNATURE_NAME);
	}
	key = trust_find(options->trust, report->key_id);
	if (!key) {
		report->signature = BUNDLE_SIGNATURE_UNTRUSTED;
		if (options->allow_unsigned)
			return 0;
		if (!options->trust || options->trust->count == 0)
			return bundle_report_add(report, MLB_EINTEGRITY,
						 "no trusted public key: pass --pubkey FILE or install the key in %s",
						 BUNDLE_KEYS_DIR);
		return bundle_report_add(report, MLB_EINTEGRITY,
					 "the bundle is signed by key %s, which is not trusted: pass its public key with --pubkey",
					 report->key_id);
	}
	r = signature_verify(key, signature, sums, sums_len);
	if (r == MLB_EINTEGRITY) {
		report->signature = BUNDLE_SIGNATURE_INVALID;
		return bundle_report_add(report, MLB_EINTEGRITY,
					 "the signature by key %s does not match SHA256SUMS: the bundle was modified",
					 report->key_id);
	}
	if (r < 0)
		return bundle_report_errno(report, r, "failed to check the signature");
	report->signature = BUNDLE_SIGNATURE_VALID;
	return 0;
}
