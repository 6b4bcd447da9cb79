/*
 * libFuzzer target for check_redirect_to_https(), which reads the Location
 * header that a Service in the cluster sent.
 *
 * The input's first line is the host the request went to, the rest is the
 * Location. When the function accepts a Location, the path it returns must
 * start with "/", fit its buffer, and contain no space, control character
 * or "#". It must appear in the Location, less its leading "/" when the
 * Location has no path of its own ("https://host" or "https://host?query").
 * The Location must name the host right after "https://", in brackets when
 * the host is an IPv6 address. The Location must then start with "https://" in any case.
 * The same host and path, written as a Location, must be accepted again
 * with the same path.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "check.h"

#define TEXT_MAX 4096
#define PATH_SIZE 256

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fail(const char *problem, const char *host, const char *location)
{
	fprintf(stderr, "fuzz_redirect: %s (host \"%s\", location \"%s\")\n", problem, host, location);
	abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char text[TEXT_MAX + 1], path[PATH_SIZE], again_path[PATH_SIZE], again[TEXT_MAX * 2];
	const char *host, *location, *authority;
	char *newline;

	if (size > TEXT_MAX)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	if (strlen(text) != size)
		return 0;
	newline = strchr(text, '\n');
	if (!newline)
		return 0;
	*newline = '\0';
	host = text;
	location = newline + 1;

	memset(path, 'x', sizeof(path));
	if (!check_redirect_to_https(location, host, path, sizeof(path)))
		return 0;
	if (memchr(path, '\0', sizeof(path)) == NULL)
		fail("the path is not terminated within its buffer", host, location);
	if (path[0] != '/')
		fail("the path does not start with /", host, location);
	for (const char *p = path; *p; p++)
		if ((unsigned char)*p <= 0x20 || *p == 0x7f || *p == '#')
			fail("the path holds a space, a control character or #", host, location);
	if (!strstr(location, path) && !strstr(location, path + 1))
		fail("the path is not part of the location", host, location);
	if (strncasecmp(location, "https://", 8) != 0)
		fail("an accepted location does not start with https://", host, location);
	authority = location + 8;
	if (strchr(host, ':') && *authority++ != '[')
		fail("an accepted location has an IPv6 host outside brackets", host, location);
	if (strncasecmp(authority, host, strlen(host)) != 0)
		fail("an accepted location names another host", host, location);

	/* A host with a colon is an IPv6 address, which a URL puts in brackets. */
	if (strchr(host, ':'))
		snprintf(again, sizeof(again), "https://[%s]%s", host, path);
	else
		snprintf(again, sizeof(again), "https://%s%s", host, path);
	if (!check_redirect_to_https(again, host, again_path, sizeof(again_path)))
		fail("the location rebuilt from host and path was rejected", host, again);
	if (strcmp(again_path, path) != 0)
		fail("the location rebuilt from host and path gave another path", host, again);
	return 0;
}
