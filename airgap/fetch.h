/*
 * Fetching release artifacts for `mlboot bundle build`: files named by an
 * https URL and pinned by sha256, over libcurl.
 *
 * Results are 0 or negative codes from common/error.h: MLB_EINTEGRITY for a
 * file whose sha256 differs from the pin (the file is deleted, never kept),
 * MLB_EUNREACHABLE when the server could not be reached or returned 5xx/429 after
 * every retry, MLB_EDENIED for TLS verification failures and 401/403,
 * -ENOENT for 404, MLB_EINPUT for an invalid URL or pin, -EFBIG past the
 * size limit, -errno for the system. Calls block on the network, each
 * request bounded by fetch_options.timeout seconds without progress.
 */
#ifndef MLBOOT_AIRGAP_FETCH_H
#define MLBOOT_AIRGAP_FETCH_H

#include <stdbool.h>
#include <stdint.h>

#include "common.h"

#define FETCH_SIZE_MAX_DEFAULT (64ull * 1024 * 1024 * 1024)
#define FETCH_URL_MAX 4096

struct fetch_options {
	const char *ca_file;      /* PEM bundle; NULL for the system CA store */
	unsigned retries;         /* attempts after the first failure; 0 for the default 5 */
	long timeout;             /* seconds without progress; 0 for 60 */
	uint64_t max_size;        /* 0 for FETCH_SIZE_MAX_DEFAULT */
	bool progress;            /* a progress bar on stderr; callers pass it only for a terminal */
};

/* The outcome of a fetch, for logs and tests. */
struct fetch_result {
	char sha256[SHA256_HEX_LEN + 1];
	uint64_t size;
	uint64_t resumed_from;    /* bytes of a .part file kept from an earlier attempt */
	unsigned attempts;
};

/*
 * Downloads url into destination. Data goes to destination + ".part"
 * first; a .part left by an interrupted attempt (of this run or an earlier
 * one) is continued with an HTTP Range request. When expected_sha256 (64
 * lower-case hex digits) is given, the whole file must have that digest,
 * else it is deleted and MLB_EINTEGRITY returned. On success the file is
 * fsynced and renamed to destination, and result (may be NULL) says what
 * happened. Redirects are followed (https only); proxies come from the
 * environment (https_proxy, no_proxy).
 */
int fetch_file(const char *url, const char *expected_sha256, const char *destination,
	       const struct fetch_options *options, struct fetch_result *result);

/*
 * Makes a file of a cache folder available: cache_dir/sha256/HEX when the
 * source is pinned and that file is there with the right digest (no
 * request is sent), else fetched into it. path receives the file's path.
 */
int fetch_cached(const char *url, const char *expected_sha256, const char *cache_dir,
		 const struct fetch_options *options, char *path, size_t path_size, struct fetch_result *result);

#endif
