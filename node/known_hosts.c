/*
 * known_hosts files: parsing, host matching, fingerprints and hashed lines.
 *
 * The format is OpenSSH's (sshd(8), section SSH_KNOWN_HOSTS FILE FORMAT):
 * an optional marker, comma-separated host patterns, the key type, the key
 * blob in base64 and an optional comment. libssh2 1.10's
 * libssh2_knownhost_checkp() reports a host whose recorded keys are all of
 * another type than the offered one as not found, and returns no entry.
 * mlboot must reject such a host and name the recorded fingerprint, so it
 * parses the files here.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "error.h"
#include "file.h"
#include "hash.h"
#include "node-internal.h"

#define HASHED_PREFIX "|1|"
#define SHA1_BYTES 20
/* Maximum length of a looked-up name: "[" NODE_NAME_MAX "]:65535". */
#define LOOKUP_NAME_MAX (NODE_NAME_MAX + 8)

static const char base64_alphabet[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int node_base64_encode(const unsigned char *data, size_t len, bool pad, struct buf *out)
{
	int r = 0;

	for (size_t i = 0; r == 0 && i < len; i += 3) {
		size_t n = len - i < 3 ? len - i : 3;
		unsigned value = (unsigned)data[i] << 16;
		char group[4];

		if (n > 1)
			value |= (unsigned)data[i + 1] << 8;
		if (n > 2)
			value |= data[i + 2];
		group[0] = base64_alphabet[(value >> 18) & 63];
		group[1] = base64_alphabet[(value >> 12) & 63];
		group[2] = n > 1 ? base64_alphabet[(value >> 6) & 63] : '=';
		group[3] = n > 2 ? base64_alphabet[value & 63] : '=';
		r = buf_append(out, group, pad ? 4 : n + 1);
	}
	return r;
}

static int base64_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

int node_base64_decode(const char *text, size_t len, unsigned char **out, size_t *out_len)
{
	unsigned char *data;
	unsigned value = 0;
	size_t count = 0, bits = 0;

	while (len > 0 && text[len - 1] == '=')
		len--;
	if (len % 4 == 1)
		return -EINVAL;
	data = malloc(len / 4 * 3 + 3);
	if (!data)
		return -ENOMEM;
	for (size_t i = 0; i < len; i++) {
		int v = base64_value((unsigned char)text[i]);

		if (v < 0) {
			free(data);
			return -EINVAL;
		}
		value = (value << 6) | (unsigned)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			data[count++] = (unsigned char)(value >> bits);
			value &= (1u << bits) - 1;
		}
	}
	/* Leftover bits must be zero, as in canonical base64. */
	if (value != 0) {
		free(data);
		return -EINVAL;
	}
	*out = data;
	*out_len = count;
	return 0;
}

int node_key_blob_type(const unsigned char *blob, size_t len, char *type, size_t type_size)
{
	size_t name_len;

	if (len < 4)
		return -EINVAL;
	name_len = (size_t)blob[0] << 24 | (size_t)blob[1] << 16 | (size_t)blob[2] << 8 | blob[3];
	if (name_len == 0 || name_len > len - 4 || name_len >= type_size)
		return -EINVAL;
	for (size_t i = 0; i < name_len; i++)
		if (!isgraph(blob[4 + i]))
			return -EINVAL;
	memcpy(type, blob + 4, name_len);
	type[name_len] = '\0';
	return 0;
}

int node_fingerprint(const void *blob, size_t len, char out[NODE_FINGERPRINT_LEN + 1])
{
	unsigned char digest[SHA256_BYTES];
	struct buf text = BUF_INIT(64);
	struct sha256 h;
	int r;

	r = sha256_init(&h);
	if (r < 0)
		return r;
	r = sha256_update(&h, blob, len);
	if (r == 0)
		r = sha256_final(&h, digest);
	sha256_release(&h);
	if (r == 0)
		r = buf_append_str(&text, "SHA256:");
	if (r == 0)
		r = node_base64_encode(digest, sizeof(digest), false, &text);
	if (r == 0 && text.len != NODE_FINGERPRINT_LEN)
		r = -EINVAL;
	if (r == 0)
		memcpy(out, text.data, NODE_FINGERPRINT_LEN + 1);
	buf_release(&text);
	return r;
}

static void entry_release(struct node_known_entry *entry)
{
	free(entry->patterns);
	free(entry->key_type);
	free(entry->key);
}

void node_known_hosts_release(struct node_known_hosts *known)
{
	if (!known)
		return;
	for (size_t i = 0; i < known->count; i++)
		entry_release(&known->entries[i]);
	free(known->entries);
	free(known->path);
	memset(known, 0, sizeof(*known));
}

/* Takes the next run of non-blank characters from *cursor (up to end). */
static bool next_field(const char **cursor, const char *end, const char **field, size_t *len)
{
	const char *p = *cursor;

	while (p < end && (*p == ' ' || *p == '\t'))
		p++;
	if (p == end)
		return false;
	*field = p;
	while (p < end && *p != ' ' && *p != '\t')
		p++;
	*len = (size_t)(p - *field);
	*cursor = p;
	return true;
}

static void note_invalid(struct node_known_hosts *known, unsigned line, const char *reason)
{
	if (known->invalid_lines++ == 0) {
		known->first_invalid_line = line;
		snprintf(known->first_invalid_reason, sizeof(known->first_invalid_reason), "%s",
			 reason);
	}
}

/*
 * Parses one line (without its line end) into entry. Returns 1 for an
 * entry, 0 for a blank or comment line, -EINVAL with *reason for an invalid
 * line, or -ENOMEM.
 */
static int parse_line(const char *line, size_t len, unsigned number,
		      struct node_known_entry *entry, const char **reason)
{
	const char *cursor = line, *end = line + len;
	const char *field, *patterns, *type;
	size_t field_len, patterns_len, type_len;
	char blob_type[64];
	int r;

	memset(entry, 0, sizeof(*entry));
	entry->line = number;
	if (!next_field(&cursor, end, &field, &field_len) || field[0] == '#')
		return 0;

	if (field[0] == '@') {
		if (field_len == 15 && memcmp(field, "@cert-authority", 15) == 0)
			entry->marker = NODE_KNOWN_CERT_AUTHORITY;
		else if (field_len == 8 && memcmp(field, "@revoked", 8) == 0)
			entry->marker = NODE_KNOWN_REVOKED;
		else {
			*reason = "unknown marker";
			return -EINVAL;
		}
		if (!next_field(&cursor, end, &field, &field_len)) {
			*reason = "missing host patterns";
			return -EINVAL;
		}
	}
	patterns = field;
	patterns_len = field_len;
	if (!next_field(&cursor, end, &type, &type_len)) {
		*reason = "missing key type";
		return -EINVAL;
	}
	if (!next_field(&cursor, end, &field, &field_len)) {
		*reason = "missing key";
		return -EINVAL;
	}
	if (type_len >= sizeof(blob_type) || isdigit((unsigned char)type[0])) {
		*reason = "unsupported key format (SSH protocol 1 keys are not supported)";
		return -EINVAL;
	}

	r = node_base64_decode(field, field_len, &entry->key, &entry->key_len);
	if (r == -ENOMEM)
		return r;
	if (r < 0) {
		*reason = "key is not valid base64";
		return -EINVAL;
	}
	if (node_key_blob_type(entry->key, entry->key_len, blob_type, sizeof(blob_type)) < 0 ||
	    strlen(blob_type) != type_len || memcmp(blob_type, type, type_len) != 0) {
		*reason = "key type does not match the type inside the key";
		free(entry->key);
		entry->key = NULL;
		return -EINVAL;
	}

	entry->patterns = strndup(patterns, patterns_len);
	entry->key_type = strndup(type, type_len);
	if (!entry->patterns || !entry->key_type) {
		entry_release(entry);
		return -ENOMEM;
	}
	r = node_fingerprint(entry->key, entry->key_len, entry->fingerprint);
	if (r < 0) {
		entry_release(entry);
		return r;
	}
	return 1;
}

int node_known_hosts_parse(const char *text, size_t len, const char *path,
			   struct node_known_hosts *out)
{
	struct node_known_hosts known = { 0 };
	size_t capacity = 0;
	unsigned number = 0;
	int r = -ENOMEM;

	if (len > NODE_KNOWN_HOSTS_MAX)
		return MLB_EINPUT;
	if (path) {
		known.path = strdup(path);
		if (!known.path)
			goto out;
	}

	for (size_t start = 0; start < len; ) {
		const char *line = text + start;
		const char *newline = memchr(line, '\n', len - start);
		size_t line_len = newline ? (size_t)(newline - line) : len - start;
		struct node_known_entry entry;
		const char *reason = NULL;
		int parsed;

		start += line_len + (newline ? 1 : 0);
		number++;
		if (line_len > 0 && line[line_len - 1] == '\r')
			line_len--;
		if (line_len > NODE_KNOWN_LINE_MAX) {
			note_invalid(&known, number, "line too long");
			continue;
		}
		if (memchr(line, '\0', line_len)) {
			note_invalid(&known, number, "NUL byte in line");
			continue;
		}

		parsed = parse_line(line, line_len, number, &entry, &reason);
		if (parsed == -ENOMEM)
			goto out;
		if (parsed < 0) {
			note_invalid(&known, number, reason);
			continue;
		}
		if (parsed == 0)
			continue;

		if (known.count == capacity) {
			size_t grown = capacity ? capacity * 2 : 16;
			struct node_known_entry *entries =
				reallocarray(known.entries, grown, sizeof(*entries));

			if (!entries) {
				entry_release(&entry);
				goto out;
			}
			known.entries = entries;
			capacity = grown;
		}
		known.entries[known.count++] = entry;
	}

	*out = known;
	memset(&known, 0, sizeof(known));
	r = 0;
out:
	node_known_hosts_release(&known);
	return r;
}

int node_known_hosts_load(const char *path, struct node_known_hosts *out)
{
	struct buf text = BUF_INIT(NODE_KNOWN_HOSTS_MAX);
	int r;

	r = file_read_all(path, NODE_KNOWN_HOSTS_MAX, &text);
	if (r == -ENOENT || r == -ENOTDIR) {
		memset(out, 0, sizeof(*out));
		out->path = strdup(path);
		r = out->path ? 0 : -ENOMEM;
		goto out;
	}
	if (r < 0)
		goto out;
	r = node_known_hosts_parse(buf_str(&text), text.len, path, out);
out:
	buf_release(&text);
	return r;
}

static void lookup_name(const char *address, uint16_t port, char *name, size_t size)
{
	if (port == 0 || port == 22)
		snprintf(name, size, "%s", address);
	else
		snprintf(name, size, "[%s]:%u", address, (unsigned)port);
}

/*
 * Glob match as OpenSSH's match_pattern(): "*" matches any run of bytes and
 * "?" one byte. Host names compare without regard to ASCII case.
 */
static bool glob_match(const char *text, const char *pattern, size_t pattern_len)
{
	const char *star_pattern = NULL, *star_text = NULL;
	size_t p = 0;

	for (;;) {
		if (p < pattern_len && pattern[p] == '*') {
			star_pattern = pattern + ++p;
			star_text = text;
			continue;
		}
		if (*text == '\0' && p == pattern_len)
			return true;
		if (*text != '\0' && p < pattern_len &&
		    (pattern[p] == '?' ||
		     tolower((unsigned char)pattern[p]) == tolower((unsigned char)*text))) {
			text++;
			p++;
			continue;
		}
		if (!star_pattern || *star_text == '\0')
			return false;
		text = ++star_text;
		p = (size_t)(star_pattern - pattern);
	}
}

/* Compares a "|1|salt|hash" pattern with HMAC-SHA1(salt, name). */
static bool hashed_match(const char *pattern, size_t len, const char *name)
{
	const char *salt_text = pattern + strlen(HASHED_PREFIX);
	const char *end = pattern + len;
	const char *separator = memchr(salt_text, '|', (size_t)(end - salt_text));
	unsigned char *salt = NULL, *hash = NULL;
	unsigned char digest[EVP_MAX_MD_SIZE];
	unsigned digest_len = 0;
	size_t salt_len, hash_len;
	bool match = false;

	if (!separator)
		return false;
	if (node_base64_decode(salt_text, (size_t)(separator - salt_text), &salt, &salt_len) < 0)
		goto out;
	if (node_base64_decode(separator + 1, (size_t)(end - separator - 1), &hash, &hash_len) < 0)
		goto out;
	if (salt_len != SHA1_BYTES || hash_len != SHA1_BYTES)
		goto out;
	if (!HMAC(EVP_sha1(), salt, (int)salt_len, (const unsigned char *)name, strlen(name),
		  digest, &digest_len) || digest_len != SHA1_BYTES)
		goto out;
	match = CRYPTO_memcmp(digest, hash, SHA1_BYTES) == 0;
out:
	free(salt);
	free(hash);
	return match;
}

bool node_known_entry_matches(const struct node_known_entry *entry, const char *address,
			      uint16_t port)
{
	char name[LOOKUP_NAME_MAX + 1];
	const char *pattern = entry->patterns;
	bool matched = false;

	if (!address || strlen(address) > NODE_NAME_MAX)
		return false;
	lookup_name(address, port, name, sizeof(name));

	if (strncmp(pattern, HASHED_PREFIX, strlen(HASHED_PREFIX)) == 0)
		return hashed_match(pattern, strlen(pattern), name);

	while (*pattern) {
		size_t len = strcspn(pattern, ",");
		bool negated = pattern[0] == '!';
		const char *glob = negated ? pattern + 1 : pattern;
		size_t glob_len = negated ? len - 1 : len;

		if (len > 0 && glob_match(name, glob, glob_len)) {
			/* A negated pattern that matches excludes the host from the line. */
			if (negated)
				return false;
			matched = true;
		}
		pattern += len;
		if (*pattern == ',')
			pattern++;
	}
	return matched;
}

int node_known_hosts_format_hashed(const char *address, uint16_t port, const char *key_type,
				   const void *key, size_t key_len, struct buf *out)
{
	char name[LOOKUP_NAME_MAX + 1];
	unsigned char salt[SHA1_BYTES], digest[EVP_MAX_MD_SIZE];
	unsigned digest_len = 0;
	int r;

	if (strlen(address) > NODE_NAME_MAX)
		return -EINVAL;
	lookup_name(address, port, name, sizeof(name));
	if (RAND_bytes(salt, sizeof(salt)) != 1)
		return -EIO;
	if (!HMAC(EVP_sha1(), salt, sizeof(salt), (const unsigned char *)name, strlen(name),
		  digest, &digest_len) || digest_len != SHA1_BYTES)
		return -EIO;

	r = buf_append_str(out, HASHED_PREFIX);
	if (r == 0)
		r = node_base64_encode(salt, sizeof(salt), true, out);
	if (r == 0)
		r = buf_append_char(out, '|');
	if (r == 0)
		r = node_base64_encode(digest, SHA1_BYTES, true, out);
	if (r == 0)
		r = buf_printf(out, " %s ", key_type);
	if (r == 0)
		r = node_base64_encode(key, key_len, true, out);
	if (r == 0)
		r = buf_append_char(out, '\n');
	return r;
}
