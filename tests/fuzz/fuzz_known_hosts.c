/*
 * libFuzzer target for the known_hosts parser.
 *
 * Each input is parsed as a known_hosts file. Every entry must carry a
 * well-formed fingerprint, a key type equal to the type inside its key
 * blob, and a line number within the input. Every entry is matched against
 * a few host names (plain, hashed and with a port), and its key is written
 * as a hashed line that must parse back to the same key and match the name
 * it was hashed for.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "node-internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fail(const char *problem, unsigned line)
{
	fprintf(stderr, "fuzz_known_hosts: %s (line %u)\n", problem, line);
	abort();
}

static void check_round_trip(const struct node_known_entry *entry)
{
	struct node_known_hosts again;
	struct buf line = BUF_INIT(NODE_KNOWN_LINE_MAX * 2);

	if (node_known_hosts_format_hashed("198.18.0.12", 2222, entry->key_type, entry->key,
					   entry->key_len, &line) < 0) {
		buf_release(&line);
		return;
	}
	if (node_known_hosts_parse(line.data, line.len, NULL, &again) < 0)
		fail("a formatted line did not parse", entry->line);
	if (line.len <= NODE_KNOWN_LINE_MAX) {
		if (again.count != 1)
			fail("a formatted line gave no entry", entry->line);
		if (again.entries[0].key_len != entry->key_len ||
		    memcmp(again.entries[0].key, entry->key, entry->key_len) != 0)
			fail("a formatted line changed the key", entry->line);
		if (!node_known_entry_matches(&again.entries[0], "198.18.0.12", 2222) ||
		    node_known_entry_matches(&again.entries[0], "198.18.0.12", 22))
			fail("a hashed line matched the wrong host", entry->line);
	}
	node_known_hosts_release(&again);
	buf_release(&line);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct node_known_hosts known;
	unsigned lines = 1;
	char type[64];

	for (size_t i = 0; i < size; i++)
		lines += data[i] == '\n';
	if (node_known_hosts_parse((const char *)data, size, "fuzz", &known) < 0)
		return 0;
	if (known.count + known.invalid_lines > lines)
		fail("more entries than lines", 0);

	for (size_t i = 0; i < known.count; i++) {
		const struct node_known_entry *entry = &known.entries[i];

		if (entry->line == 0 || entry->line > lines)
			fail("line number out of range", entry->line);
		if (!node_host_key_is_valid(entry->fingerprint))
			fail("malformed fingerprint", entry->line);
		if (node_key_blob_type(entry->key, entry->key_len, type, sizeof(type)) < 0 ||
		    strcmp(type, entry->key_type) != 0)
			fail("key type differs from the blob", entry->line);
		node_known_entry_matches(entry, "node-a.test", 22);
		node_known_entry_matches(entry, "198.18.0.11", 2222);
		node_known_entry_matches(entry, "", 22);
		check_round_trip(entry);
	}
	node_known_hosts_release(&known);
	return 0;
}
