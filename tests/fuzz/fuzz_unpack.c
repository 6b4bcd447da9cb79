/*
 * libFuzzer target for bundle verification and unpacking. Each input is
 * written to a file and unpacked, unsigned bundles allowed, into a new
 * folder inside a private parent folder. Whatever happens, nothing may
 * appear in the parent but the destination, and a failed unpack must leave
 * no destination at all. verify and unpack must agree on success.
 */
#include <dirent.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "airgap.h"
#include "airgap-internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char parent[64];

static void remove_parent(void)
{
	rmdir(parent);
}

/* Counts the items of a folder other than "." and "..", and whether "dest" is one. */
static size_t count_items(const char *path, bool *has_destination)
{
	DIR *dir = opendir(path);
	struct dirent *item;
	size_t count = 0;

	if (!dir)
		abort();
	*has_destination = false;
	while ((item = readdir(dir))) {
		if (strcmp(item->d_name, ".") == 0 || strcmp(item->d_name, "..") == 0)
			continue;
		if (strcmp(item->d_name, "dest") == 0)
			*has_destination = true;
		count++;
	}
	closedir(dir);
	return count;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct bundle_check_options options = { NULL, true, false };
	struct bundle_report verify_report, unpack_report;
	char bundle[128], destination[128];
	bool has_destination;
	int fd, verified, unpacked, parent_fd;

	if (!parent[0]) {
		snprintf(parent, sizeof(parent), "/tmp/mlboot-fuzz-unpack.XXXXXX");
		if (!mkdtemp(parent))
			abort();
		atexit(remove_parent);
	}
	snprintf(bundle, sizeof(bundle), "%s.bundle", parent);
	snprintf(destination, sizeof(destination), "%s/dest", parent);
	fd = open(bundle, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || file_write_full(fd, data, size) < 0)
		abort();
	close(fd);

	bundle_report_init(&verify_report);
	bundle_report_init(&unpack_report);
	verified = bundle_verify(bundle, &options, &verify_report);
	unpacked = bundle_unpack(bundle, destination, &options, &unpack_report);
	if ((verified == 0) != (unpacked == 0))
		abort();
	if (count_items(parent, &has_destination) != (unpacked == 0 ? 1u : 0u))
		abort();
	if (unpacked != 0 && has_destination)
		abort();
	if (unpacked == 0) {
		parent_fd = open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (parent_fd < 0 || remove_tree_at(parent_fd, "dest") < 0)
			abort();
		close(parent_fd);
	}
	bundle_report_release(&verify_report);
	bundle_report_release(&unpack_report);
	unlink(bundle);
	return 0;
}
