/*
 * known_hosts parsing, host matching, hashed entries and fingerprints,
 * against the test-only keys in tests/fixtures/ssh and the fingerprints
 * that "ssh-keygen -lf" printed for them (fingerprints.txt there).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common.h"
#include "node-internal.h"

#define FIXTURES "tests/fixtures/ssh/"

struct fingerprint_case {
	const char *file;
	const char *type;
	const char *fingerprint;
};

/* From "ssh-keygen -lf FILE" (OpenSSH 9.2) for each public key. */
static const struct fingerprint_case fingerprint_cases[] = {
	{ "test-only-ed25519.pub", "ssh-ed25519", "SHA256:1WS6KisQH2GL+Hg62kqaAgS6r3PL+mb7Gp6iCznR6Xc" },
	{ "test-only-ecdsa.pub", "ecdsa-sha2-nistp256", "SHA256:4MorFMp+ouJaHzRN+2Z5mRMT+1Z4aLJ8sZvi5vVDaTw" },
	{ "test-only-ecdsa384-pem.pub", "ecdsa-sha2-nistp384", "SHA256:FNeNAJhhcuLhMM/tbVzZILJpNo0FLj5IAjh7FAUmI5k" },
	{ "test-only-ed25519-encrypted.pub", "ssh-ed25519", "SHA256:z0ZBMjReqc/YtT6KDwxE7LKL2ZLjKTv4wOZjKcMMzNA" },
	{ "test-only-rsa.pub", "ssh-rsa", "SHA256:GXOcz36fxQ2rFdjvHNVLkeMljji0Zew1wDQEIDBin60" },
};

static void load_fixture(const char *name, struct node_known_hosts *known)
{
	assert_int_equal(node_known_hosts_load(name, known), 0);
}

static const struct node_known_entry *entry_at_line(const struct node_known_hosts *known,
						    unsigned line)
{
	for (size_t i = 0; i < known->count; i++)
		if (known->entries[i].line == line)
			return &known->entries[i];
	fail_msg("no entry at line %u", line);
	return NULL;
}

static void test_fingerprint_matches_ssh_keygen(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(fingerprint_cases) / sizeof(fingerprint_cases[0]); i++) {
		const struct fingerprint_case *c = &fingerprint_cases[i];
		struct buf text = BUF_INIT(1 << 16);
		char path[256], fingerprint[NODE_FINGERPRINT_LEN + 1];
		char *type, *base64, *save = NULL;
		unsigned char *blob = NULL;
		size_t len;

		snprintf(path, sizeof(path), FIXTURES "%s", c->file);
		assert_int_equal(file_read_all(path, 1 << 16, &text), 0);
		type = strtok_r(text.data, " ", &save);
		base64 = strtok_r(NULL, " ", &save);
		assert_non_null(base64);
		assert_string_equal(type, c->type);
		assert_int_equal(node_base64_decode(base64, strlen(base64), &blob, &len), 0);
		assert_int_equal(node_fingerprint(blob, len, fingerprint), 0);
		assert_string_equal(fingerprint, c->fingerprint);
		assert_true(node_host_key_is_valid(fingerprint));
		free(blob);
		buf_release(&text);
	}
}

static void test_parse_fixture_entries(void **state)
{
	struct node_known_hosts known;

	(void)state;
	load_fixture(FIXTURES "known_hosts", &known);
	assert_string_equal(known.path, FIXTURES "known_hosts");
	/* Lines 4 to 10 are valid entries; 11 to 15 are invalid. */
	assert_int_equal(known.count, 7);
	assert_int_equal(known.invalid_lines, 5);
	assert_int_equal(known.first_invalid_line, 11);
	assert_string_equal(known.first_invalid_reason, "missing key type");

	assert_string_equal(entry_at_line(&known, 4)->key_type, "ssh-ed25519");
	assert_string_equal(entry_at_line(&known, 4)->fingerprint, fingerprint_cases[0].fingerprint);
	assert_string_equal(entry_at_line(&known, 5)->patterns, "[node-a.test]:2222");
	assert_string_equal(entry_at_line(&known, 5)->fingerprint, fingerprint_cases[1].fingerprint);
	assert_string_equal(entry_at_line(&known, 6)->fingerprint, fingerprint_cases[4].fingerprint);
	assert_string_equal(entry_at_line(&known, 7)->key_type, "ecdsa-sha2-nistp384");
	for (unsigned line = 4; line <= 8; line++)
		assert_int_equal(entry_at_line(&known, line)->marker, NODE_KNOWN_PLAIN);
	node_known_hosts_release(&known);
}

static void test_markers_reported_unsupported(void **state)
{
	struct node_known_hosts known;
	const struct node_known_entry *entry;

	(void)state;
	load_fixture(FIXTURES "known_hosts", &known);
	entry = entry_at_line(&known, 9);
	assert_int_equal(entry->marker, NODE_KNOWN_CERT_AUTHORITY);
	assert_string_equal(entry->patterns, "*.ca.test");
	assert_string_equal(entry->fingerprint, fingerprint_cases[3].fingerprint);
	entry = entry_at_line(&known, 10);
	assert_int_equal(entry->marker, NODE_KNOWN_REVOKED);
	assert_true(node_known_entry_matches(entry, "node-a.test", 22));
	node_known_hosts_release(&known);

	/* An unknown marker makes the line invalid (line 14 of the fixture). */
	assert_int_equal(node_known_hosts_parse("@bogus host ssh-ed25519 AAAA\n", 29, NULL, &known), 0);
	assert_int_equal(known.count, 0);
	assert_int_equal(known.invalid_lines, 1);
	assert_string_equal(known.first_invalid_reason, "unknown marker");
	node_known_hosts_release(&known);
}

static void test_plain_and_port_matching(void **state)
{
	struct node_known_hosts known;
	const struct node_known_entry *port22, *port2222;

	(void)state;
	load_fixture(FIXTURES "known_hosts", &known);
	port22 = entry_at_line(&known, 4);
	port2222 = entry_at_line(&known, 5);

	assert_true(node_known_entry_matches(port22, "node-a.test", 22));
	assert_true(node_known_entry_matches(port22, "node-a.test", 0));
	assert_true(node_known_entry_matches(port22, "NODE-A.TEST", 22));
	assert_false(node_known_entry_matches(port22, "node-a.test", 2222));
	assert_false(node_known_entry_matches(port22, "node-a.tes", 22));
	assert_false(node_known_entry_matches(port22, "node-a.test.", 22));

	assert_true(node_known_entry_matches(port2222, "node-a.test", 2222));
	assert_false(node_known_entry_matches(port2222, "node-a.test", 22));
	assert_false(node_known_entry_matches(port2222, "node-a.test", 2223));
	node_known_hosts_release(&known);
}

static void test_pattern_lists_wildcards_negation(void **state)
{
	struct node_known_hosts known;
	const struct node_known_entry *list, *wild, *question;

	(void)state;
	load_fixture(FIXTURES "known_hosts", &known);
	list = entry_at_line(&known, 6);
	wild = entry_at_line(&known, 7);
	question = entry_at_line(&known, 8);

	assert_true(node_known_entry_matches(list, "node-b.test", 22));
	assert_true(node_known_entry_matches(list, "node-c.test", 22));
	assert_true(node_known_entry_matches(list, "node-d.test", 22));
	assert_false(node_known_entry_matches(list, "node-e.test", 22));

	assert_true(node_known_entry_matches(wild, "x.wild.test", 22));
	assert_true(node_known_entry_matches(wild, "a.b.wild.test", 22));
	assert_false(node_known_entry_matches(wild, "bad.wild.test", 22));
	assert_false(node_known_entry_matches(wild, "wild.test", 22));
	assert_false(node_known_entry_matches(wild, "x.wild.test", 2222));

	assert_true(node_known_entry_matches(question, "node-1.q.test", 22));
	assert_false(node_known_entry_matches(question, "node-10.q.test", 22));
	assert_false(node_known_entry_matches(question, "node-.q.test", 22));
	node_known_hosts_release(&known);
}

static void test_hashed_entries_from_ssh_keygen(void **state)
{
	struct node_known_hosts known;

	(void)state;
	/* Written by "ssh-keygen -H" from node-a.test and [node-a.test]:2222 lines. */
	load_fixture(FIXTURES "known_hosts.hashed", &known);
	assert_int_equal(known.count, 2);
	assert_int_equal(known.invalid_lines, 0);
	assert_true(node_known_entry_matches(&known.entries[0], "node-a.test", 22));
	assert_false(node_known_entry_matches(&known.entries[0], "node-a.test", 2222));
	assert_false(node_known_entry_matches(&known.entries[0], "node-b.test", 22));
	assert_true(node_known_entry_matches(&known.entries[1], "node-a.test", 2222));
	assert_false(node_known_entry_matches(&known.entries[1], "node-a.test", 22));
	assert_string_equal(known.entries[1].fingerprint, fingerprint_cases[1].fingerprint);
	node_known_hosts_release(&known);
}

static void test_hashed_line_round_trip(void **state)
{
	struct node_known_hosts known;
	struct node_known_hosts source;
	struct buf line = BUF_INIT(4096);
	const struct node_known_entry *key;

	(void)state;
	load_fixture(FIXTURES "known_hosts", &source);
	key = entry_at_line(&source, 4);

	assert_int_equal(node_known_hosts_format_hashed("198.18.0.11", 22, key->key_type, key->key,
							key->key_len, &line), 0);
	assert_int_equal(node_known_hosts_format_hashed("198.18.0.11", 2200, key->key_type, key->key,
							key->key_len, &line), 0);
	assert_memory_equal(line.data, "|1|", 3);
	assert_int_equal(node_known_hosts_parse(line.data, line.len, NULL, &known), 0);
	assert_int_equal(known.count, 2);
	assert_int_equal(known.invalid_lines, 0);
	assert_true(node_known_entry_matches(&known.entries[0], "198.18.0.11", 22));
	assert_false(node_known_entry_matches(&known.entries[0], "198.18.0.12", 22));
	assert_false(node_known_entry_matches(&known.entries[0], "198.18.0.11", 2200));
	assert_true(node_known_entry_matches(&known.entries[1], "198.18.0.11", 2200));
	assert_false(node_known_entry_matches(&known.entries[1], "198.18.0.11", 22));
	assert_string_equal(known.entries[0].fingerprint, key->fingerprint);
	/* Two hashes of the same name differ: each line has its own salt. */
	assert_true(strncmp(line.data, strchr(line.data, '\n') + 1, 30) != 0);

	node_known_hosts_release(&known);
	node_known_hosts_release(&source);
	buf_release(&line);
}

static void test_line_ends_and_limits(void **state)
{
	struct node_known_hosts known, fixture;
	struct buf text = BUF_INIT(NODE_KNOWN_HOSTS_MAX + 16);
	const struct node_known_entry *key;
	char *big;

	(void)state;
	load_fixture(FIXTURES "known_hosts", &fixture);
	key = entry_at_line(&fixture, 4);

	/* CRLF line ends, blank lines, comments and no final newline. */
	assert_int_equal(buf_printf(&text, "# comment\r\n\r\n   \r\nhost-1 %s ", key->key_type), 0);
	assert_int_equal(node_base64_encode(key->key, key->key_len, true, &text), 0);
	assert_int_equal(buf_append_str(&text, " comment words\r\nhost-2\t"), 0);
	assert_int_equal(buf_printf(&text, "%s\t", key->key_type), 0);
	assert_int_equal(node_base64_encode(key->key, key->key_len, true, &text), 0);
	assert_int_equal(node_known_hosts_parse(text.data, text.len, NULL, &known), 0);
	assert_int_equal(known.count, 2);
	assert_int_equal(known.invalid_lines, 0);
	assert_int_equal(known.entries[0].line, 4);
	assert_true(node_known_entry_matches(&known.entries[1], "host-2", 22));
	node_known_hosts_release(&known);

	/* A NUL byte or an overlong line makes that line invalid. */
	buf_reset(&text);
	assert_int_equal(buf_append(&text, "host\0x ssh-ed25519 AAAA\n", 24), 0);
	assert_int_equal(node_known_hosts_parse(text.data, text.len, NULL, &known), 0);
	assert_int_equal(known.invalid_lines, 1);
	assert_string_equal(known.first_invalid_reason, "NUL byte in line");
	node_known_hosts_release(&known);

	big = malloc(NODE_KNOWN_LINE_MAX + 2);
	assert_non_null(big);
	memset(big, 'a', NODE_KNOWN_LINE_MAX + 1);
	big[NODE_KNOWN_LINE_MAX + 1] = '\n';
	assert_int_equal(node_known_hosts_parse(big, NODE_KNOWN_LINE_MAX + 2, NULL, &known), 0);
	assert_int_equal(known.invalid_lines, 1);
	assert_string_equal(known.first_invalid_reason, "line too long");
	node_known_hosts_release(&known);
	free(big);

	/* A file over the maximum is rejected whole. */
	assert_int_equal(node_known_hosts_parse("", (size_t)NODE_KNOWN_HOSTS_MAX + 1, NULL, &known),
			 MLB_EINPUT);

	/* A missing file is an empty list. */
	assert_int_equal(node_known_hosts_load(FIXTURES "no-such-known_hosts", &known), 0);
	assert_int_equal(known.count, 0);
	node_known_hosts_release(&known);

	node_known_hosts_release(&fixture);
	buf_release(&text);
}

static void test_host_key_values(void **state)
{
	(void)state;
	assert_true(node_host_key_is_valid(fingerprint_cases[0].fingerprint));
	assert_true(node_host_key_is_valid("ssh-ed25519 SHA256:1WS6KisQH2GL+Hg62kqaAgS6r3PL+mb7Gp6iCznR6Xc"));
	assert_false(node_host_key_is_valid(NULL));
	assert_false(node_host_key_is_valid(""));
	assert_false(node_host_key_is_valid("SHA256:"));
	assert_false(node_host_key_is_valid("SHA256:1WS6KisQH2GL+Hg62kqaAgS6r3PL+mb7Gp6iCznR6Xc="));
	assert_false(node_host_key_is_valid("SHA256:1WS6KisQH2GL+Hg62kqaAgS6r3PL+mb7Gp6iCznR6X"));
	assert_false(node_host_key_is_valid("MD5:1WS6KisQH2GL+Hg62kqaAgS6r3PL+mb7Gp6iCznR6Xcx"));
	assert_false(node_host_key_is_valid("SHA256:1WS6KisQH2GL+Hg62kqaAgS6r3PL+mb7Gp6iCznR6X!"));
	assert_false(node_host_key_is_valid(" SHA256:1WS6KisQH2GL+Hg62kqaAgS6r3PL+mb7Gp6iCznR6Xc"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fingerprint_matches_ssh_keygen),
		cmocka_unit_test(test_parse_fixture_entries),
		cmocka_unit_test(test_markers_reported_unsupported),
		cmocka_unit_test(test_plain_and_port_matching),
		cmocka_unit_test(test_pattern_lists_wildcards_negation),
		cmocka_unit_test(test_hashed_entries_from_ssh_keygen),
		cmocka_unit_test(test_hashed_line_round_trip),
		cmocka_unit_test(test_line_ends_and_limits),
		cmocka_unit_test(test_host_key_values),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
