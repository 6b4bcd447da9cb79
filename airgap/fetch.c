/*
 * Release artifacts over https with libcurl: retries with backoff, resume
 * with Range into a .part file, and a sha256 check of the whole file.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "fetch.h"

#define DEFAULT_RETRIES 5
#define DEFAULT_TIMEOUT 60
#define BACKOFF_FIRST_MS 500
#define BACKOFF_MAX_MS 16000
#define PATH_BYTES 4096

/* One download into a .part file. */
struct download {
	int fd;
	struct sha256 hash;
	uint64_t size;          /* bytes in the .part file and in hash */
	uint64_t max_size;
	int error;
	bool progress;
	time_t progress_shown;
	const char *label;
};

static size_t write_data(char *data, size_t size, size_t count, void *context)
{
	struct download *download = context;
	size_t len = size * count;
	int r;

	if (len > download->max_size - download->size) {
		download->error = -EFBIG;
		return 0;
	}
	r = file_write_full(download->fd, data, len);
	if (r == 0)
		r = sha256_update(&download->hash, data, len);
	if (r < 0) {
		download->error = r;
		return 0;
	}
	download->size += len;
	return len;
}

static int show_progress(void *context, curl_off_t total, curl_off_t now, curl_off_t upload_total,
			 curl_off_t upload_now)
{
	struct download *download = context;
	time_t current = time(NULL);
	int width = 30, filled;
	double fraction;

	(void)upload_total;
	(void)upload_now;
	if (!download->progress || total <= 0 || current == download->progress_shown)
		return 0;
	download->progress_shown = current;
	fraction = (double)now / (double)total;
	filled = (int)(fraction * width);
	fprintf(stderr, "\r%-40.40s [%.*s%*s] %3d%%", download->label, filled, "##############################",
		width - filled, "", (int)(fraction * 100));
	return 0;
}

/* Hashes the bytes already in the .part file, so a resumed download is checked whole. */
static int hash_existing(struct download *download)
{
	unsigned char chunk[65536];
	ssize_t n;

	if (lseek(download->fd, 0, SEEK_SET) < 0)
		return -errno;
	download->size = 0;
	while ((n = read(download->fd, chunk, sizeof(chunk))) != 0) {
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (sha256_update(&download->hash, chunk, (size_t)n) < 0)
			return -ENOMEM;
		download->size += (uint64_t)n;
	}
	return 0;
}

/* Starts the .part file over: the server sent the whole file, or the part was unusable. */
static int restart_download(struct download *download)
{
	sha256_release(&download->hash);
	download->size = 0;
	if (ftruncate(download->fd, 0) < 0 || lseek(download->fd, 0, SEEK_SET) < 0)
		return -errno;
	return sha256_init(&download->hash);
}

static int curl_result(CURLcode code)
{
	switch (code) {
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_ISSUER_ERROR:
		return MLB_EDENIED;
	case CURLE_OUT_OF_MEMORY:
		return -ENOMEM;
	case CURLE_URL_MALFORMAT:
	case CURLE_UNSUPPORTED_PROTOCOL:
		return MLB_EINPUT;
	default:
		return MLB_EUNREACHABLE;
	}
}

/* Whether an attempt's failure is worth another try. */
static bool retryable(int r, long status)
{
	if (r == MLB_EUNREACHABLE)
		return true;
	return r == 0 && (status == 408 || status == 429 || (status >= 500 && status <= 599));
}

/* One request: GET, from download->size on when the .part has data. */
static int attempt(CURL *curl, const char *url, const struct fetch_options *options, struct download *download,
		   long *status)
{
	char range[64];
	CURLcode code;
	int r;

	curl_easy_reset(curl);
	curl_easy_setopt(curl, CURLOPT_URL, url);
	curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "https");
	curl_easy_setopt(curl, CURLOPT_REDIR_PROTOCOLS_STR, "https");
	curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 1L);
	curl_easy_setopt(curl, CURLOPT_MAXREDIRS, 10L);
	curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(curl, CURLOPT_USERAGENT, "mlboot/" MLBOOT_VERSION);
	curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, 2L);
	if (options->ca_file)
		curl_easy_setopt(curl, CURLOPT_CAINFO, options->ca_file);
	curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, 30L);
	curl_easy_setopt(curl, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl_easy_setopt(curl, CURLOPT_LOW_SPEED_TIME, options->timeout > 0 ? options->timeout : DEFAULT_TIMEOUT);
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, write_data);
	curl_easy_setopt(curl, CURLOPT_WRITEDATA, download);
	if (download->progress) {
		curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
		curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, show_progress);
		curl_easy_setopt(curl, CURLOPT_XFERINFODATA, download);
	}
	if (download->size > 0) {
		snprintf(range, sizeof(range), "%llu-", (unsigned long long)download->size);
		curl_easy_setopt(curl, CURLOPT_RANGE, range);
	}
	/*
	 * The body is written as it arrives, so the status must be known
	 * first: a 200 to a Range request restarts the file, and error pages
	 * must not land in it. HTTP errors make libcurl stop before the body.
	 */
	curl_easy_setopt(curl, CURLOPT_FAILONERROR, 1L);
	code = curl_easy_perform(curl);
	*status = 0;
	curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, status);
	if (download->progress_shown)
		fputs("\r\033[K", stderr);
	if (download->error)
		return download->error;
	if (code == CURLE_HTTP_RETURNED_ERROR)
		return 0;
	if (code != CURLE_OK) {
		log_debug("fetching '%s' failed: %s", url, curl_easy_strerror(code));
		r = curl_result(code);
		return r;
	}
	return 0;
}

static void backoff_sleep(unsigned attempt_number)
{
	long ms = BACKOFF_FIRST_MS;

	for (unsigned i = 0; i < attempt_number && ms < BACKOFF_MAX_MS; i++)
		ms *= 2;
	if (ms > BACKOFF_MAX_MS)
		ms = BACKOFF_MAX_MS;
	usleep((useconds_t)ms * 1000);
}

/* A URL fit for messages: the query string (which may hold a signature) cut off. */
static void url_for_messages(const char *url, char *out, size_t size)
{
	size_t len = strcspn(url, "?#");

	if (len >= size)
		len = size - 1;
	memcpy(out, url, len);
	out[len] = '\0';
	for (char *p = out; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '?';
}

/* Runs the attempts with retries. The .part file contains the bytes received so far. */
static int download_with_retries(const char *url, const struct fetch_options *options, struct download *download,
				 struct fetch_result *result)
{
	unsigned retries = options->retries ? options->retries : DEFAULT_RETRIES;
	CURL *curl = curl_easy_init();
	char shown[256];
	long status = 0;
	int r = MLB_EUNREACHABLE;

	if (!curl)
		return -ENOMEM;
	url_for_messages(url, shown, sizeof(shown));
	for (unsigned n = 0; n <= retries; n++) {
		uint64_t before = download->size;

		if (n > 0) {
			log_debug("retrying '%s' from byte %llu (attempt %u of %u)", shown,
				  (unsigned long long)download->size, n + 1, retries + 1);
			backoff_sleep(n - 1);
		}
		result->attempts++;
		r = attempt(curl, url, options, download, &status);
		if (r == 0 && status == 200 && before > 0) {
			/* The server ignored the Range: what arrived is the whole file, after the old bytes. */
			log_debug("'%s' does not support Range: downloading the whole file again", shown);
			r = restart_download(download);
			if (r == 0) {
				n--;
				continue;
			}
		}
		if (r == 0 && status == 416) {
			log_debug("'%s' rejected the range from byte %llu: downloading the whole file again", shown,
				  (unsigned long long)download->size);
			r = restart_download(download);
			if (r < 0)
				break;
			r = MLB_EUNREACHABLE;
			continue;
		}
		if (r == 0 && (status == 200 || status == 206))
			break;
		if (r == 0 && (status == 401 || status == 403)) {
			r = MLB_EDENIED;
			break;
		}
		if (r == 0 && status == 404) {
			r = -ENOENT;
			break;
		}
		if (!retryable(r, status)) {
			if (r == 0)
				r = MLB_EUNREACHABLE;
			break;
		}
		r = MLB_EUNREACHABLE;
	}
	if (r < 0)
		log_debug("fetching '%s' failed after %u attempts (HTTP %ld): %s", shown, result->attempts, status,
			  mlb_strerror(r));
	curl_easy_cleanup(curl);
	return r;
}

int fetch_file(const char *url, const char *expected_sha256, const char *destination,
	       const struct fetch_options *options, struct fetch_result *result)
{
	struct download download = { .fd = -1 };
	struct fetch_result ignored;
	unsigned char digest[SHA256_BYTES];
	char part[PATH_BYTES];
	int r;

	if (!result)
		result = &ignored;
	memset(result, 0, sizeof(*result));
	if (strncmp(url, "https://", 8) != 0 || strlen(url) >= FETCH_URL_MAX)
		return MLB_EINPUT;
	if (expected_sha256 && !sha256_is_hex(expected_sha256))
		return MLB_EINPUT;
	if (snprintf(part, sizeof(part), "%s.part", destination) >= (int)sizeof(part))
		return -ENAMETOOLONG;
	download.max_size = options->max_size ? options->max_size : FETCH_SIZE_MAX_DEFAULT;
	download.progress = options->progress;
	download.label = strrchr(destination, '/') ? strrchr(destination, '/') + 1 : destination;
	download.fd = open(part, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (download.fd < 0)
		return -errno;
	r = sha256_init(&download.hash);
	if (r < 0)
		goto out;
	r = hash_existing(&download);
	if (r < 0)
		goto out;
	if (download.size > download.max_size) {
		r = restart_download(&download);
		if (r < 0)
			goto out;
	}
	result->resumed_from = download.size;
	if (lseek(download.fd, 0, SEEK_END) < 0) {
		r = -errno;
		goto out;
	}
	r = download_with_retries(url, options, &download, result);
	if (r < 0)
		goto out;
	r = sha256_final(&download.hash, digest);
	if (r < 0)
		goto out;
	sha256_to_hex(digest, result->sha256);
	result->size = download.size;
	if (expected_sha256 && strcmp(expected_sha256, result->sha256) != 0) {
		/* A bad file is deleted, resumed or not: a retry starts from nothing. */
		unlink(part);
		r = MLB_EINTEGRITY;
		goto out;
	}
	if (fsync(download.fd) < 0 || rename(part, destination) < 0) {
		r = -errno;
		goto out;
	}
	r = 0;
out:
	sha256_release(&download.hash);
	if (download.fd >= 0)
		close(download.fd);
	return r;
}

static int hash_file(const char *path, char hex[SHA256_HEX_LEN + 1], uint64_t *size)
{
	unsigned char chunk[65536], digest[SHA256_BYTES];
	struct sha256 hash;
	ssize_t n;
	int fd, r;

	*size = 0;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return -errno;
	r = sha256_init(&hash);
	while (r == 0 && (n = read(fd, chunk, sizeof(chunk))) != 0) {
		if (n < 0) {
			if (errno != EINTR)
				r = -errno;
			continue;
		}
		r = sha256_update(&hash, chunk, (size_t)n);
		*size += (uint64_t)n;
	}
	if (r == 0)
		r = sha256_final(&hash, digest);
	sha256_release(&hash);
	close(fd);
	if (r == 0)
		sha256_to_hex(digest, hex);
	return r;
}

int fetch_cached(const char *url, const char *expected_sha256, const char *cache_dir,
		 const struct fetch_options *options, char *path, size_t path_size, struct fetch_result *result)
{
	char folder[PATH_BYTES], download[PATH_BYTES], url_hash[SHA256_HEX_LEN + 1], actual[SHA256_HEX_LEN + 1];
	struct fetch_result local;
	int r;

	if (!result)
		result = &local;
	memset(result, 0, sizeof(*result));
	if (snprintf(folder, sizeof(folder), "%s/sha256", cache_dir) >= (int)sizeof(folder))
		return -ENAMETOOLONG;
	r = file_mkdir_parents(folder, 0755);
	if (r < 0)
		return r;
	if (expected_sha256) {
		if (!sha256_is_hex(expected_sha256))
			return MLB_EINPUT;
		if (snprintf(path, path_size, "%s/%s", folder, expected_sha256) >= (int)path_size)
			return -ENAMETOOLONG;
		if (file_exists(path)) {
			r = hash_file(path, actual, &result->size);
			if (r == 0 && strcmp(actual, expected_sha256) == 0) {
				strcpy(result->sha256, actual);
				return 0;
			}
			/* A cached file that changed is not trusted: fetch it again. */
			unlink(path);
		}
		return fetch_file(url, expected_sha256, path, options, result);
	}

	/* Not pinned: download under a name from the URL, then file it under its digest. */
	r = sha256_hex(url, strlen(url), url_hash);
	if (r < 0)
		return r;
	if (snprintf(download, sizeof(download), "%s/.url-%s", folder, url_hash) >= (int)sizeof(download))
		return -ENAMETOOLONG;
	r = fetch_file(url, NULL, download, options, result);
	if (r < 0)
		return r;
	if (snprintf(path, path_size, "%s/%s", folder, result->sha256) >= (int)path_size) {
		unlink(download);
		return -ENAMETOOLONG;
	}
	if (rename(download, path) < 0) {
		r = -errno;
		unlink(download);
		return r;
	}
	return 0;
}
