#include <errno.h>
#include <string.h>

#include <openssl/evp.h>

#include "hash.h"

int sha256_init(struct sha256 *h)
{
	EVP_MD_CTX *context = EVP_MD_CTX_new();

	if (!context)
		return -ENOMEM;
	if (EVP_DigestInit_ex(context, EVP_sha256(), NULL) != 1) {
		EVP_MD_CTX_free(context);
		return -EIO;
	}
	h->context = context;
	return 0;
}

int sha256_update(struct sha256 *h, const void *data, size_t len)
{
	return EVP_DigestUpdate(h->context, data, len) == 1 ? 0 : -EIO;
}

int sha256_final(struct sha256 *h, unsigned char digest[SHA256_BYTES])
{
	unsigned int len = 0;
	int r = EVP_DigestFinal_ex(h->context, digest, &len) == 1 && len == SHA256_BYTES ? 0 : -EIO;

	sha256_release(h);
	return r;
}

void sha256_release(struct sha256 *h)
{
	EVP_MD_CTX_free(h->context);
	h->context = NULL;
}

void sha256_to_hex(const unsigned char digest[SHA256_BYTES], char hex[SHA256_HEX_LEN + 1])
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < SHA256_BYTES; i++) {
		hex[2 * i] = digits[digest[i] >> 4];
		hex[2 * i + 1] = digits[digest[i] & 15];
	}
	hex[SHA256_HEX_LEN] = '\0';
}

int sha256_hex(const void *data, size_t len, char hex[SHA256_HEX_LEN + 1])
{
	unsigned char digest[SHA256_BYTES];
	unsigned int digest_len = 0;

	if (EVP_Digest(data, len, digest, &digest_len, EVP_sha256(), NULL) != 1)
		return -EIO;
	sha256_to_hex(digest, hex);
	return 0;
}

int sha256_is_hex(const char *text)
{
	size_t i;

	for (i = 0; text[i]; i++)
		if (!((text[i] >= '0' && text[i] <= '9') || (text[i] >= 'a' && text[i] <= 'f')))
			return 0;
	return i == SHA256_HEX_LEN;
}
