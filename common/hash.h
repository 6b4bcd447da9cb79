/*
 * SHA-256 through OpenSSL's EVP interface, which uses the CPU's SHA
 * instructions where they exist.
 */
#ifndef MLBOOT_COMMON_HASH_H
#define MLBOOT_COMMON_HASH_H

#include <stddef.h>

#define SHA256_BYTES 32
#define SHA256_HEX_LEN 64

struct sha256 {
	void *context;  /* EVP_MD_CTX */
};

int sha256_init(struct sha256 *h);
int sha256_update(struct sha256 *h, const void *data, size_t len);
/* Writes the digest and releases the context. */
int sha256_final(struct sha256 *h, unsigned char digest[SHA256_BYTES]);
/* Releases the context without a digest; accepts an unused or final one. */
void sha256_release(struct sha256 *h);
/* Writes 64 lowercase hex digits and a NUL. */
void sha256_to_hex(const unsigned char digest[SHA256_BYTES], char hex[SHA256_HEX_LEN + 1]);
int sha256_hex(const void *data, size_t len, char hex[SHA256_HEX_LEN + 1]);
/* Whether text is exactly 64 lowercase hex digits. */
int sha256_is_hex(const char *text);

#endif
