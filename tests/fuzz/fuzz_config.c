/*
 * libFuzzer target for the mlboot.yaml loader: any bytes go through
 * config_parse(), which must return 0 or MLB_EINPUT with at least one
 * problem, never crash, leak or read out of bounds. Paths in the input
 * resolve against the current folder; the loader only opens and reads them.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "common.h"
#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct config_problems problems = { 0 };
	struct config config;
	int r;

	r = config_parse("fuzz.yaml", (const char *)data, size, &config, &problems);
	if (r == 0) {
		if (problems.count != 0 || config.host_count == 0)
			abort();
		for (size_t i = 0; i < config.host_count; i++) {
			struct node_host node;

			if (config_host_to_node(&config.hosts[i], &node) < 0)
				abort();
			node_host_release(&node);
		}
		config_release(&config);
	} else if (r == MLB_EINPUT) {
		if (problems.count == 0 && problems.dropped == 0)
			abort();
		for (size_t i = 0; i < problems.count; i++) {
			char *line = config_problem_format(&problems.items[i], "fuzz.yaml");

			free(line);
		}
	} else if (r != -ENOMEM) {
		abort();
	}
	config_problems_release(&problems);
	return 0;
}
