/*
 * Unit tests of the airgap module: names, SHA256SUMS, tar headers, the
 * index, and a bundle written with the writer API and then verified, read,
 * inspected through its index and unpacked. Also the outputs a build must
 * not replace, unreadable bundles, interrupted unpacks and the staging
 * folders a killed unpack leaves. Fixtures (an OCI layout, a binary, keys)
 * are written into a temporary folder by the tests.
 */
#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "airgap.h"
#include "airgap-internal.h"

struct fixture {
	char dir[256];
	char key[300];
	char pub[300];
	char layout[300];
	char layout2[300];
	char binary[300];
	char bundle[300];
	struct bundle_key *signing;
	struct bundle_trust trust;
};

static const char manifest_text[] =
	"apiVersion: v1\nkind: Namespace\nmetadata:\n  name: demo\n"
	"---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: demo\n  namespace: demo\n"
	"data:\n  a: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n"
	"  b: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n";

/* Longer than the 100 bytes of a ustar name, so its entry needs a pax header. */
static const char long_manifest_name[] =
	"a-manifest-with-a-name-longer-than-one-hundred-bytes-so-that-its-tar-entry-needs-a-pax-path-record.yaml";

static void write_file(const char *path, const void *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

	assert_true(fd >= 0);
	assert_int_equal(file_write_full(fd, data, len), 0);
	close(fd);
}

/* Writes data as a blob of layout and sets hex to its digest. */
static void write_blob(const char *layout, const void *data, size_t len, char hex[SHA256_HEX_LEN + 1])
{
	char path[600];

	assert_int_equal(sha256_hex(data, len, hex), 0);
	snprintf(path, sizeof(path), "%s/blobs/sha256/%s", layout, hex);
	write_file(path, data, len);
}

/* A layer of len bytes that depends only on seed. */
static void fill_layer(unsigned char *data, size_t len, unsigned seed)
{
	uint32_t state = seed * 2654435761u + 1;

	for (size_t i = 0; i < len; i++) {
		state = state * 1103515245u + 12345u;
		data[i] = (unsigned char)(state >> 16);
	}
}

/* Writes an OCI layout with one image of two layers: one shared (seed 1) and one its own. */
static void make_layout(const char *layout, const char *name, unsigned own_seed)
{
	char shared[SHA256_HEX_LEN + 1], own[SHA256_HEX_LEN + 1], config[SHA256_HEX_LEN + 1];
	char manifest[SHA256_HEX_LEN + 1], path[600], text[2048];
	unsigned char *layer = malloc(65536);
	int config_len, manifest_len, n;

	assert_non_null(layer);
	snprintf(path, sizeof(path), "%s/blobs/sha256", layout);
	assert_int_equal(file_mkdir_parents(path, 0755), 0);
	snprintf(path, sizeof(path), "%s/oci-layout", layout);
	write_file(path, "{\"imageLayoutVersion\":\"1.0.0\"}", 30);

	fill_layer(layer, 65536, 1);
	write_blob(layout, layer, 65536, shared);
	fill_layer(layer, 4000, own_seed);
	write_blob(layout, layer, 4000, own);
	config_len = snprintf(text, sizeof(text), "{\"architecture\":\"amd64\",\"os\":\"linux\",\"rootfs\":"
			      "{\"type\":\"layers\",\"diff_ids\":[\"sha256:%s\",\"sha256:%s\"]}}", shared, own);
	write_blob(layout, text, (size_t)config_len, config);
	manifest_len = snprintf(text, sizeof(text),
				"{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","
				"\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\","
				"\"digest\":\"sha256:%s\",\"size\":%d},\"layers\":["
				"{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+gzip\",\"digest\":\"sha256:%s\",\"size\":65536},"
				"{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+gzip\",\"digest\":\"sha256:%s\",\"size\":4000}]}",
				config, config_len, shared, own);
	write_blob(layout, text, (size_t)manifest_len, manifest);
	n = snprintf(text, sizeof(text),
		     "{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","
		     "\"digest\":\"sha256:%s\",\"size\":%d,\"annotations\":{\"io.containerd.image.name\":\"%s\"}}]}",
		     manifest, manifest_len, name);
	snprintf(path, sizeof(path), "%s/index.json", layout);
	write_file(path, text, (size_t)n);
	free(layer);
}

static int build_bundle(struct fixture *f, const char *output, const struct bundle_key *key)
{
	static const char *const platforms[] = { "linux/amd64" };
	struct bundle_platform_info info = {
		.name = "unit-platform", .version = "0.0.1", .kubernetes_min = "1.24", .kubernetes_max = "1.33",
		.platforms = platforms, .platform_count = 1,
	};
	struct bundle_writer *writer = NULL;
	int r;

	r = bundle_writer_open(output, &writer);
	if (r < 0)
		return r;
	r = bundle_writer_set_platform(writer, &info);
	if (r == 0)
		r = bundle_writer_add_component(writer, "base", "v1.0.0", "demo");
	if (r == 0)
		r = bundle_writer_add_manifest(writer, "base", "demo.yaml", manifest_text, strlen(manifest_text));
	if (r == 0)
		r = bundle_writer_add_manifest(writer, "base", "empty.yaml", "", 0);
	if (r == 0)
		r = bundle_writer_add_manifest(writer, "base", long_manifest_name, manifest_text, 40);
	if (r == 0)
		r = bundle_writer_add_binary_path(writer, "base", "tool", "linux/amd64", f->binary);
	if (r == 0)
		r = bundle_writer_add_image(writer, "base", "registry.test/base:v1", f->layout);
	if (r == 0)
		r = bundle_writer_add_component(writer, "extra", "2.0", NULL);
	if (r == 0)
		r = bundle_writer_add_oci_layout(writer, "extra", f->layout2);
	if (r == 0)
		r = bundle_writer_add_image(writer, "extra", "registry.test/base:v1", f->layout);
	if (r == 0)
		r = bundle_writer_finish(writer, key);
	if (r < 0)
		print_message("writer: %s\n", bundle_writer_error(writer));
	bundle_writer_free(writer);
	return r;
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	char key_id[SHA256_HEX_LEN + 1], text[4096];

	assert_non_null(f);
	snprintf(f->dir, sizeof(f->dir), "/tmp/mlboot-test-bundle.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->key, sizeof(f->key), "%s/signer.key", f->dir);
	snprintf(f->pub, sizeof(f->pub), "%s/signer.pub", f->dir);
	snprintf(f->layout, sizeof(f->layout), "%s/layout", f->dir);
	snprintf(f->layout2, sizeof(f->layout2), "%s/layout2", f->dir);
	snprintf(f->binary, sizeof(f->binary), "%s/tool", f->dir);
	snprintf(f->bundle, sizeof(f->bundle), "%s/test.bundle", f->dir);
	{
		char name[300];

		snprintf(name, sizeof(name), "%s/signer", f->dir);
		assert_int_equal(bundle_key_generate(name, key_id), 0);
	}
	assert_int_equal(bundle_key_load_private(f->key, &f->signing), 0);
	assert_string_equal(bundle_key_id(f->signing), key_id);
	bundle_trust_init(&f->trust);
	assert_int_equal(bundle_trust_add_file(&f->trust, f->pub), 0);
	make_layout(f->layout, "registry.test/base:v1", 2);
	make_layout(f->layout2, "registry.test/extra:v2", 3);
	for (size_t i = 0; i < sizeof(text); i++)
		text[i] = (char)('a' + i % 7);
	write_file(f->binary, text, sizeof(text));
	assert_int_equal(build_bundle(f, f->bundle, f->signing), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	int fd = open("/tmp", O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	remove_tree_at(fd, f->dir + strlen("/tmp/"));
	close(fd);
	bundle_key_free(f->signing);
	bundle_trust_release(&f->trust);
	free(f);
	return 0;
}

static void read_whole(const char *path, struct buf *out)
{
	buf_init(out, 64 * 1024 * 1024);
	assert_int_equal(file_read_all(path, 64 * 1024 * 1024, out), 0);
}

/* --- Names ------------------------------------------------------------ */

static void test_path_validation(void **state)
{
	static const struct {
		const char *path;
		bool valid;
	} cases[] = {
		{ "images/blobs/sha256/abc", true }, { "a", true }, { "a.b/c-d_e", true },
		{ "", false }, { "/etc/passwd", false }, { "a/../b", false }, { "..", false },
		{ "./a", false }, { "a/./b", false }, { "a//b", false }, { "a/", false },
		{ "a\nb", false }, { "a\x1b", false }, { "a\\b", false }, { "a\x7f", false },
	};
	const char *reason;

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		reason = NULL;
		if (bundle_path_is_valid(cases[i].path, strlen(cases[i].path), &reason) != cases[i].valid)
			fail_msg("'%s' should be %s", cases[i].path, cases[i].valid ? "valid" : "invalid");
		if (!cases[i].valid)
			assert_non_null(reason);
	}
}

static void test_path_length_limits(void **state)
{
	char path[BUNDLE_PATH_MAX + 2];

	(void)state;
	memset(path, 'a', sizeof(path));
	for (size_t i = 100; i < sizeof(path); i += 101)
		path[i] = '/';
	assert_true(bundle_path_is_valid(path, BUNDLE_PATH_MAX, NULL));
	assert_false(bundle_path_is_valid(path, BUNDLE_PATH_MAX + 1, NULL));
	memset(path, 'a', 300);
	assert_true(bundle_path_is_valid(path, 255, NULL));
	assert_false(bundle_path_is_valid(path, 256, NULL));
}

static void test_escape_name(void **state)
{
	char out[64];

	(void)state;
	bundle_escape_name("a\x1b[31m\nb\\", 9, out, sizeof(out));
	assert_string_equal(out, "a\\x1b[31m\\nb\\\\");
	bundle_escape_name("caf\xc3\xa9", 5, out, sizeof(out));
	assert_string_equal(out, "caf\\xc3\\xa9");
	bundle_escape_name("0123456789012345678901234567890123456789", 40, out, 16);
	assert_string_equal(out, "012345678901...");
	assert_int_equal(strlen(out), 15);
}

/* --- SHA256SUMS ------------------------------------------------------- */

static const char hash_a[] = "ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb";

static void test_sums_parse_valid(void **state)
{
	struct bundle_report report;
	struct bundle_sums sums;
	char text[512];

	(void)state;
	snprintf(text, sizeof(text), "%s  mlboot-bundle.yaml\n%s  a\n%s  b/c\n", hash_a, hash_a, hash_a);
	bundle_report_init(&report);
	assert_int_equal(bundle_sums_parse(text, strlen(text), &sums, &report), 0);
	assert_int_equal(sums.count, 3);
	assert_string_equal(sums.lines[2].path, "b/c");
	assert_int_equal(sums.lines[1].sha256[0], 0xca);
	assert_int_equal(report.total, 0);
	bundle_sums_release(&sums);
	bundle_report_release(&report);
}

/* Copies a line template with '@' replaced by hash_a and '#' by hash_a less its last digit. */
static void expand_hashes(const char *template, char *out)
{
	for (; *template; template++) {
		if (*template == '@' || *template == '#') {
			size_t len = *template == '@' ? SHA256_HEX_LEN : SHA256_HEX_LEN - 1;

			memcpy(out, hash_a, len);
			out += len;
		} else {
			*out++ = *template;
		}
	}
	*out = '\0';
}

static void test_sums_parse_reports_every_line(void **state)
{
	static const struct {
		const char *line;
		const char *message;
	} cases[] = {
		{ "@ a\n", "two spaces" },
		{ "@ *a\n", "invalid" },
		{ "#  a\n", "64 lowercase hex" },
		{ "@  /abs\n", "absolute path" },
		{ "@  ../x\n", "'..'" },
		{ "@  SHA256SUMS\n", "reserved" },
		{ "@  z\n@  y\n", "out of order" },
		{ "@  z\n@  z\n", "listed twice" },
		{ "@  last", "newline" },
		{ "@  a\r\n", "control character" },
	};

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct bundle_report report;
		struct bundle_sums sums = { NULL, 0 };
		char text[1024];
		int n = snprintf(text, sizeof(text), "%s  mlboot-bundle.yaml\n", hash_a);

		expand_hashes(cases[i].line, text + n);
		bundle_report_init(&report);
		assert_int_equal(bundle_sums_parse(text, strlen(text), &sums, &report), MLB_EINTEGRITY);
		assert_true(report.count >= 1);
		if (!strstr(report.messages[0], cases[i].message) && !strstr(report.messages[0], "expected 64"))
			fail_msg("case %zu: '%s' lacks '%s'", i, report.messages[0], cases[i].message);
		assert_null(sums.lines);
		bundle_report_release(&report);
	}
}

static void test_sums_first_line_is_index(void **state)
{
	struct bundle_report report;
	struct bundle_sums sums;
	char text[256];

	(void)state;
	snprintf(text, sizeof(text), "%s  a\n", hash_a);
	bundle_report_init(&report);
	assert_int_equal(bundle_sums_parse(text, strlen(text), &sums, &report), MLB_EINTEGRITY);
	assert_non_null(strstr(report.messages[0], "must name mlboot-bundle.yaml"));
	bundle_report_release(&report);
}

/* --- Tar headers ------------------------------------------------------ */

static void check_header_round_trip(const char *dir, const char *path, uint64_t size, unsigned mode)
{
	struct buf header = BUF_INIT(TAR_PAX_MAX + 2 * TAR_BLOCK), raw = BUF_INIT(TAR_PAX_MAX + 2 * TAR_BLOCK);
	char file[400], message[256];
	struct tar_entry entry;
	struct input in;
	const char *field = NULL;

	snprintf(file, sizeof(file), "%s/header", dir);
	assert_int_equal(tar_header_encode(path, size, mode, &header), 0);
	assert_int_equal(header.len % TAR_BLOCK, 0);
	write_file(file, header.data, header.len);
	assert_int_equal(input_open(&in, file, 4096), 0);
	assert_int_equal(tar_next(&in, &entry, &raw, message, sizeof(message)), 1);
	assert_string_equal(entry.path, path);
	assert_int_equal(entry.size, size);
	assert_int_equal(entry.mode, mode);
	assert_int_equal(entry.typeflag, '0');
	assert_true(tar_header_is_canonical(&entry, &raw, &field));
	input_close(&in);
	buf_release(&header);
	buf_release(&raw);
}

static void test_tar_header_round_trip(void **state)
{
	struct fixture *f = *state;
	char long_path[600];

	memset(long_path, 'x', sizeof(long_path) - 1);
	long_path[sizeof(long_path) - 1] = '\0';
	long_path[50] = '/';
	check_header_round_trip(f->dir, "short", 0, 0644);
	check_header_round_trip(f->dir, "exactly-100-bytes-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", 1, 0755);
	check_header_round_trip(f->dir, long_path, 12345, 0644);
	check_header_round_trip(f->dir, "huge", 9ull * 1024 * 1024 * 1024, 0644);
}

static void test_tar_header_not_canonical(void **state)
{
	struct fixture *f = *state;
	struct buf header = BUF_INIT(4096), raw = BUF_INIT(4096);
	char file[400], message[256];
	struct tar_entry entry;
	struct input in;
	const char *field = NULL;
	unsigned sum = 0;

	snprintf(file, sizeof(file), "%s/header", f->dir);
	assert_int_equal(tar_header_encode("name", 10, 0644, &header), 0);
	/* mtime 1 instead of 0, with a correct checksum. */
	header.data[136 + 10] = '1';
	memset(header.data + 148, ' ', 8);
	for (size_t i = 0; i < TAR_BLOCK; i++)
		sum += (unsigned char)header.data[i];
	snprintf(header.data + 148, 8, "%06o", sum);
	header.data[155] = ' ';
	write_file(file, header.data, header.len);
	assert_int_equal(input_open(&in, file, 4096), 0);
	assert_int_equal(tar_next(&in, &entry, &raw, message, sizeof(message)), 1);
	assert_false(tar_header_is_canonical(&entry, &raw, &field));
	assert_string_equal(field, "mtime");
	input_close(&in);
	buf_release(&header);
	buf_release(&raw);
}

/* --- Whole bundles ---------------------------------------------------- */

static void test_verify_good_bundle(void **state)
{
	struct fixture *f = *state;
	struct bundle_check_options options = { &f->trust, false, false };
	struct bundle_report report;

	bundle_report_init(&report);
	assert_int_equal(bundle_verify(f->bundle, &options, &report), 0);
	assert_int_equal(report.total, 0);
	assert_int_equal(report.signature, BUNDLE_SIGNATURE_VALID);
	assert_string_equal(report.key_id, bundle_key_id(f->signing));
	assert_true(report.entries >= 10);
	bundle_report_release(&report);
}

static void test_build_is_deterministic(void **state)
{
	struct fixture *f = *state;
	struct buf first, second;
	char again[400];

	snprintf(again, sizeof(again), "%s/again.bundle", f->dir);
	assert_int_equal(build_bundle(f, again, f->signing), 0);
	read_whole(f->bundle, &first);
	read_whole(again, &second);
	assert_int_equal(first.len, second.len);
	assert_memory_equal(first.data, second.data, first.len);
	buf_release(&first);
	buf_release(&second);
}

static int collect(void *context, const void *data, size_t len)
{
	return buf_append(context, data, len);
}

static void test_reader_streams_files(void **state)
{
	struct fixture *f = *state;
	struct bundle_check_options options = { &f->trust, false, false };
	struct bundle_reader *reader = NULL;
	struct bundle_report report;
	const struct bundle_index *index;
	const struct bundle_file *file;
	struct buf data = BUF_INIT(1 << 20), binary;

	bundle_report_init(&report);
	assert_int_equal(bundle_reader_open(f->bundle, &options, &reader, &report), 0);
	index = bundle_reader_index(reader);
	assert_string_equal(index->name, "unit-platform");
	assert_string_equal(index->kubernetes_min, "1.24");
	assert_int_equal(index->component_count, 2);
	assert_string_equal(index->components[0].name, "base");
	assert_string_equal(index->components[1].name, "extra");
	assert_int_equal(index->components[1].image_count, 2);
	assert_int_equal(index->image_count, 2);

	file = bundle_reader_find(reader, "components/base/manifests/demo.yaml");
	assert_non_null(file);
	assert_int_equal(file->compression, BUNDLE_COMPRESSION_ZSTD);
	assert_string_equal(file->stored_path, "components/base/manifests/demo.yaml.zst");
	assert_ptr_equal(bundle_reader_find(reader, file->stored_path), file);
	assert_int_equal(bundle_reader_stream(reader, file, collect, &data), 0);
	assert_int_equal(data.len, strlen(manifest_text));
	assert_memory_equal(data.data, manifest_text, data.len);

	file = bundle_reader_find(reader, "binaries/linux/amd64/tool");
	assert_non_null(file);
	assert_int_equal(file->mode, 0755);
	buf_reset(&data);
	assert_int_equal(bundle_reader_stream(reader, file, collect, &data), 0);
	read_whole(f->binary, &binary);
	assert_int_equal(data.len, binary.len);
	assert_memory_equal(data.data, binary.data, data.len);

	file = bundle_reader_find(reader, "components/base/manifests/empty.yaml");
	assert_non_null(file);
	assert_int_equal(file->compression, BUNDLE_COMPRESSION_NONE);
	assert_int_equal(file->size, 0);
	assert_null(bundle_reader_find(reader, "images/blobs/sha256/missing"));

	bundle_reader_close(reader);
	bundle_report_release(&report);
	buf_release(&data);
	buf_release(&binary);
}

static void test_shared_layer_stored_once(void **state)
{
	struct fixture *f = *state;
	struct bundle_check_options options = { &f->trust, false, false };
	struct bundle_reader *reader = NULL;
	struct bundle_report report;
	const struct bundle_index *index;
	size_t blobs = 0, references = 0;

	bundle_report_init(&report);
	assert_int_equal(bundle_reader_open(f->bundle, &options, &reader, &report), 0);
	index = bundle_reader_index(reader);
	for (size_t i = 0; i < index->file_count; i++)
		blobs += strncmp(index->files[i].path, "images/blobs/", 13) == 0;
	for (size_t i = 0; i < index->image_count; i++)
		references += index->images[i].blob_count;
	/* Two images of 4 blobs each (manifest, config, two layers), one layer shared. */
	assert_int_equal(references, 8);
	assert_int_equal(blobs, 7);
	bundle_reader_close(reader);
	bundle_report_release(&report);
}

static void test_libarchive_reads_bundle(void **state)
{
	struct fixture *f = *state;
	struct archive *archive = archive_read_new();
	struct archive_entry *entry;
	const char *expected[] = { BUNDLE_INDEX_NAME, BUNDLE_SUMS_NAME, BUNDLE_SIGNATURE_NAME };
	bool long_seen = false;
	size_t count = 0;

	archive_read_support_format_all(archive);
	assert_int_equal(archive_read_open_filename(archive, f->bundle, 65536), ARCHIVE_OK);
	while (archive_read_next_header(archive, &entry) == ARCHIVE_OK) {
		if (count < 3)
			assert_string_equal(archive_entry_pathname(entry), expected[count]);
		assert_int_equal(archive_entry_filetype(entry), AE_IFREG);
		assert_int_equal(archive_entry_mtime(entry), 0);
		assert_int_equal(archive_entry_uid(entry), 0);
		if (strstr(archive_entry_pathname(entry), long_manifest_name))
			long_seen = true;
		count++;
	}
	assert_true(count >= 10);
	assert_true(long_seen);
	assert_int_equal(archive_format(archive) & ARCHIVE_FORMAT_BASE_MASK, ARCHIVE_FORMAT_TAR);
	archive_read_free(archive);
}

/* Flips one byte of the first copy of needle in the bundle file. */
static void corrupt_after(const char *path, const char *needle, size_t needle_len, size_t skip)
{
	struct buf data;
	char *at;

	read_whole(path, &data);
	at = memmem(data.data, data.len, needle, needle_len);
	assert_non_null(at);
	at[skip] ^= 0x55;
	write_file(path, data.data, data.len);
	buf_release(&data);
}

static void test_verify_reports_every_problem(void **state)
{
	struct fixture *f = *state;
	struct bundle_check_options options = { &f->trust, false, false };
	struct bundle_report report;
	unsigned char layer[64];
	char copy[400];
	struct buf data;

	snprintf(copy, sizeof(copy), "%s/corrupt.bundle", f->dir);
	read_whole(f->bundle, &data);
	write_file(copy, data.data, data.len);
	buf_release(&data);
	/* Two layers are damaged: the shared one (seed 1) and the first image's own (seed 2). */
	fill_layer(layer, sizeof(layer), 1);
	corrupt_after(copy, (const char *)layer, sizeof(layer), 10);
	fill_layer(layer, sizeof(layer), 2);
	corrupt_after(copy, (const char *)layer, sizeof(layer), 20);

	bundle_report_init(&report);
	assert_int_equal(bundle_verify(copy, &options, &report), MLB_EINTEGRITY);
	assert_int_equal(report.total, 2);
	assert_non_null(strstr(report.messages[0], "sha256 mismatch"));
	assert_non_null(strstr(report.messages[1], "sha256 mismatch"));
	bundle_report_release(&report);
}

static void test_reader_detects_damage_when_streaming(void **state)
{
	struct fixture *f = *state;
	struct bundle_check_options options = { &f->trust, false, false };
	struct bundle_reader *reader = NULL;
	struct bundle_report report;
	struct buf data = BUF_INIT(1 << 20);
	unsigned char layer[64];
	char copy[400], digest[SHA256_HEX_LEN + 1], path[200];
	unsigned char *whole = malloc(65536);
	struct buf original;

	assert_non_null(whole);
	snprintf(copy, sizeof(copy), "%s/stream.bundle", f->dir);
	read_whole(f->bundle, &original);
	write_file(copy, original.data, original.len);
	buf_release(&original);
	fill_layer(layer, sizeof(layer), 1);
	corrupt_after(copy, (const char *)layer, sizeof(layer), 1);

	fill_layer(whole, 65536, 1);
	assert_int_equal(sha256_hex(whole, 65536, digest), 0);
	snprintf(path, sizeof(path), "images/blobs/sha256/%s", digest);
	bundle_report_init(&report);
	/* Opening reads headers only, so the damage is found when the layer is streamed. */
	assert_int_equal(bundle_reader_open(copy, &options, &reader, &report), 0);
	assert_int_equal(bundle_reader_stream(reader, bundle_reader_find(reader, path), collect, &data), MLB_EINTEGRITY);
	bundle_reader_close(reader);
	bundle_report_release(&report);
	buf_release(&data);
	free(whole);
}

static void test_unsigned_needs_permission(void **state)
{
	struct fixture *f = *state;
	struct bundle_check_options strict = { &f->trust, false, false }, lenient = { &f->trust, true, false };
	struct bundle_report report;
	char path[400];

	snprintf(path, sizeof(path), "%s/unsigned.bundle", f->dir);
	assert_int_equal(build_bundle(f, path, NULL), 0);
	bundle_report_init(&report);
	assert_int_equal(bundle_verify(path, &strict, &report), MLB_EINTEGRITY);
	assert_int_equal(report.signature, BUNDLE_SIGNATURE_ABSENT);
	assert_non_null(strstr(report.messages[0], "unsigned"));
	bundle_report_release(&report);

	bundle_report_init(&report);
	assert_int_equal(bundle_verify(path, &lenient, &report), 0);
	assert_int_equal(report.signature, BUNDLE_SIGNATURE_ABSENT);
	bundle_report_release(&report);
}

static void test_untrusted_key_rejected(void **state)
{
	struct fixture *f = *state;
	struct bundle_trust empty;
	struct bundle_check_options options = { &empty, false, false };
	struct bundle_report report;

	bundle_trust_init(&empty);
	bundle_report_init(&report);
	assert_int_equal(bundle_verify(f->bundle, &options, &report), MLB_EINTEGRITY);
	assert_int_equal(report.signature, BUNDLE_SIGNATURE_UNTRUSTED);
	assert_non_null(strstr(report.messages[0], "no trusted public key"));
	bundle_report_release(&report);
}

static void test_unpack_writes_files(void **state)
{
	struct fixture *f = *state;
	struct bundle_check_options options = { &f->trust, false, false };
	struct bundle_report report;
	char destination[400], path[600];
	struct buf data;
	struct stat st;

	snprintf(destination, sizeof(destination), "%s/unpacked", f->dir);
	bundle_report_init(&report);
	assert_int_equal(bundle_unpack(f->bundle, destination, &options, &report), 0);
	bundle_report_release(&report);

	snprintf(path, sizeof(path), "%s/components/base/manifests/demo.yaml", destination);
	read_whole(path, &data);
	assert_int_equal(data.len, strlen(manifest_text));
	assert_memory_equal(data.data, manifest_text, data.len);
	buf_release(&data);
	snprintf(path, sizeof(path), "%s/binaries/linux/amd64/tool", destination);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0755);
	snprintf(path, sizeof(path), "%s/%s", destination, BUNDLE_INDEX_NAME);
	assert_int_equal(stat(path, &st), 0);
	snprintf(path, sizeof(path), "%s/images/oci-layout", destination);
	assert_int_equal(stat(path, &st), 0);

	/* A second unpack into the same, now non-empty, folder fails and changes nothing. */
	bundle_report_init(&report);
	assert_int_equal(bundle_unpack(f->bundle, destination, &options, &report), -ENOTEMPTY);
	bundle_report_release(&report);
}

static void test_unpack_failure_leaves_nothing(void **state)
{
	struct fixture *f = *state;
	struct bundle_check_options options = { &f->trust, false, false };
	struct bundle_report report;
	unsigned char layer[64];
	char copy[400], destination[400];
	struct buf data;
	struct stat st;

	snprintf(copy, sizeof(copy), "%s/late-damage.bundle", f->dir);
	read_whole(f->bundle, &data);
	write_file(copy, data.data, data.len);
	buf_release(&data);
	fill_layer(layer, sizeof(layer), 3);
	corrupt_after(copy, (const char *)layer, sizeof(layer), 5);

	snprintf(destination, sizeof(destination), "%s/not-created", f->dir);
	bundle_report_init(&report);
	assert_int_equal(bundle_unpack(copy, destination, &options, &report), MLB_EINTEGRITY);
	assert_int_equal(stat(destination, &st), -1);
	assert_int_equal(errno, ENOENT);
	bundle_report_release(&report);
}

/* --- Outputs that must not be replaced --------------------------------------- */

/* Asserts that path is still the file that before describes: same inode, type, size and change time. */
static void assert_unchanged(const char *path, const struct stat *before)
{
	struct stat now;

	assert_int_equal(lstat(path, &now), 0);
	assert_int_equal(now.st_ino, before->st_ino);
	assert_int_equal(now.st_mode, before->st_mode);
	assert_int_equal(now.st_size, before->st_size);
	assert_int_equal(now.st_rdev, before->st_rdev);
	assert_int_equal(now.st_ctim.tv_sec, before->st_ctim.tv_sec);
	assert_int_equal(now.st_ctim.tv_nsec, before->st_ctim.tv_nsec);
}

/* Asserts that bundle_check_output() rejects path with a message naming it and containing reason. */
static void assert_output_rejected(const char *path, const struct bundle_input *inputs, size_t count,
				   const char *reason)
{
	struct bundle_report report;
	struct stat before;

	assert_int_equal(lstat(path, &before), 0);
	bundle_report_init(&report);
	assert_int_equal(bundle_check_output(path, inputs, count, &report), MLB_EINPUT);
	assert_int_equal(report.count, 1);
	assert_non_null(strstr(report.messages[0], path));
	if (!strstr(report.messages[0], reason))
		fail_msg("'%s' does not say '%s'", report.messages[0], reason);
	bundle_report_release(&report);
	assert_unchanged(path, &before);
}

static void test_check_output_rejects_special_files(void **state)
{
	struct fixture *f = *state;
	struct bundle_report report;
	char path[400];

	snprintf(path, sizeof(path), "%s/fifo", f->dir);
	assert_int_equal(mkfifo(path, 0644), 0);
	assert_output_rejected(path, NULL, 0, "is a FIFO");
	snprintf(path, sizeof(path), "%s/link-to-key", f->dir);
	assert_int_equal(symlink(f->key, path), 0);
	assert_output_rejected(path, NULL, 0, "is a symbolic link");
	snprintf(path, sizeof(path), "%s/dangling-link", f->dir);
	assert_int_equal(symlink("nothing-here", path), 0);
	assert_output_rejected(path, NULL, 0, "is a symbolic link");
	assert_output_rejected(f->layout, NULL, 0, "is a folder");

	/* A device node of our own, never one under /dev; creating it needs CAP_MKNOD. */
	snprintf(path, sizeof(path), "%s/full-device", f->dir);
	if (mknod(path, S_IFCHR | 0666, makedev(1, 7)) == 0)
		assert_output_rejected(path, NULL, 0, "is a character device");
	else
		print_message("mknod: %s: the device case is not exercised\n", strerror(errno));

	/* A new name and a regular file that is no input are fine. */
	bundle_report_init(&report);
	snprintf(path, sizeof(path), "%s/new.bundle", f->dir);
	assert_int_equal(bundle_check_output(path, NULL, 0, &report), 0);
	assert_int_equal(bundle_check_output(f->bundle, NULL, 0, &report), 0);
	assert_int_equal(report.count, 0);
	bundle_report_release(&report);
}

static void test_check_output_rejects_inputs(void **state)
{
	struct fixture *f = *state;
	struct bundle_input inputs[] = {
		{ f->key, "signing key" },
		{ f->pub, "public key" },
		{ "/nonexistent/catalog.yaml", "catalog" },
	};
	struct bundle_report report;
	char hard_link[400];

	assert_output_rejected(f->key, inputs, ARRAY_SIZE(inputs), "the same file as the signing key");
	assert_output_rejected(f->pub, inputs, ARRAY_SIZE(inputs), "the same file as the public key");
	/* Another name for the key is the key all the same. */
	snprintf(hard_link, sizeof(hard_link), "%s/hard-link.key", f->dir);
	assert_int_equal(link(f->key, hard_link), 0);
	assert_output_rejected(hard_link, inputs, ARRAY_SIZE(inputs), "the same file as the signing key");

	bundle_report_init(&report);
	assert_int_equal(bundle_check_output(f->bundle, inputs, ARRAY_SIZE(inputs), &report), 0);
	bundle_report_release(&report);
}

static void test_writer_keeps_its_sources(void **state)
{
	static const char *const platforms[] = { "linux/amd64" };
	struct bundle_platform_info info = {
		.name = "unit-platform", .version = "0.0.1", .kubernetes_min = "1.24", .kubernetes_max = "1.33",
		.platforms = platforms, .platform_count = 1,
	};
	struct fixture *f = *state;
	struct bundle_writer *writer = NULL;
	struct stat before;
	char fifo[400];

	/* The output is the binary the bundle reads: finish fails and the binary stays. */
	assert_int_equal(lstat(f->binary, &before), 0);
	assert_int_equal(bundle_writer_open(f->binary, &writer), 0);
	assert_int_equal(bundle_writer_set_platform(writer, &info), 0);
	assert_int_equal(bundle_writer_add_component(writer, "base", "v1", NULL), 0);
	assert_int_equal(bundle_writer_add_binary_path(writer, "base", "tool", "linux/amd64", f->binary), 0);
	assert_int_equal(bundle_writer_finish(writer, NULL), MLB_EINPUT);
	assert_non_null(strstr(bundle_writer_error(writer), "the same file as the source file"));
	bundle_writer_free(writer);
	assert_unchanged(f->binary, &before);

	/* A protected file, such as the signing key, is checked before anything is added. */
	assert_int_equal(lstat(f->key, &before), 0);
	assert_int_equal(bundle_writer_open(f->key, &writer), 0);
	assert_int_equal(bundle_writer_protect(writer, f->key, "signing key"), 0);
	assert_int_equal(bundle_writer_check_output(writer), MLB_EINPUT);
	assert_non_null(strstr(bundle_writer_error(writer), "signing key"));
	bundle_writer_free(writer);
	assert_unchanged(f->key, &before);

	/* A FIFO is refused at once. */
	snprintf(fifo, sizeof(fifo), "%s/out.fifo", f->dir);
	assert_int_equal(mkfifo(fifo, 0644), 0);
	assert_int_equal(lstat(fifo, &before), 0);
	writer = NULL;
	assert_int_equal(bundle_writer_open(fifo, &writer), MLB_EINPUT);
	assert_null(writer);
	assert_unchanged(fifo, &before);
}

/* --- Unreadable bundles --------------------------------------------------------- */

static void test_unreadable_bundle_is_invalid_input(void **state)
{
	struct fixture *f = *state;
	struct bundle_check_options options = { &f->trust, false, false };
	struct bundle_reader *reader = NULL;
	struct bundle_report report;
	char missing[400], destination[400];

	snprintf(missing, sizeof(missing), "%s/missing.bundle", f->dir);
	bundle_report_init(&report);
	assert_int_equal(bundle_verify(missing, &options, &report), MLB_EINPUT);
	assert_true(report.unreadable);
	assert_int_equal(report.count, 1);
	assert_non_null(strstr(report.messages[0], "cannot read the bundle file"));
	assert_non_null(strstr(report.messages[0], "No such file"));
	bundle_report_release(&report);

	/* A folder is no bundle either. */
	bundle_report_init(&report);
	assert_int_equal(bundle_verify(f->dir, &options, &report), MLB_EINPUT);
	assert_true(report.unreadable);
	assert_non_null(strstr(report.messages[0], "Is a directory"));
	bundle_report_release(&report);

	bundle_report_init(&report);
	assert_int_equal(bundle_reader_open(missing, &options, &reader, &report), MLB_EINPUT);
	assert_null(reader);
	assert_true(report.unreadable);
	bundle_report_release(&report);

	snprintf(destination, sizeof(destination), "%s/not-created", f->dir);
	bundle_report_init(&report);
	assert_int_equal(bundle_unpack(missing, destination, &options, &report), MLB_EINPUT);
	assert_false(file_exists(destination));
	bundle_report_release(&report);

	/* A readable bundle is not marked. */
	bundle_report_init(&report);
	assert_int_equal(bundle_verify(f->bundle, &options, &report), 0);
	assert_false(report.unreadable);
	bundle_report_release(&report);
}

/* --- Interrupted and killed unpacks ------------------------------------------- */

static volatile sig_atomic_t unit_interrupt;

/* Feeds a bundle through a FIFO and raises the interrupt flag once the unpack has staged files. */
struct feeder {
	const char *fifo;
	const char *destination;
	struct buf data;
	bool staged_seen;
};

/* Whether destination contains a staging folder with the index in it already. */
static bool staging_has_index(const char *destination)
{
	char pattern[600];
	struct dirent *item;
	bool found = false;
	DIR *dir = opendir(destination);

	if (!dir)
		return false;
	while (!found && (item = readdir(dir))) {
		struct stat st;

		if (strncmp(item->d_name, ".mlboot-unpack-", 15) != 0)
			continue;
		snprintf(pattern, sizeof(pattern), "%s/%s/%s", destination, item->d_name, BUNDLE_INDEX_NAME);
		found = stat(pattern, &st) == 0;
	}
	closedir(dir);
	return found;
}

static void *feed_fifo(void *context)
{
	struct feeder *feeder = context;
	size_t half = feeder->data.len / 2;
	int fd = open(feeder->fifo, O_WRONLY | O_CLOEXEC);

	if (fd < 0)
		return NULL;
	if (file_write_full(fd, feeder->data.data, half) == 0) {
		for (int i = 0; i < 500 && !feeder->staged_seen; i++) {
			struct timespec pause = { 0, 10 * 1000 * 1000 };

			feeder->staged_seen = staging_has_index(feeder->destination);
			if (!feeder->staged_seen)
				nanosleep(&pause, NULL);
		}
	}
	unit_interrupt = SIGINT;
	/* The unpack stops reading once the flag is set, so EPIPE here is expected. */
	(void)file_write_full(fd, feeder->data.data + half, feeder->data.len - half);
	close(fd);
	return NULL;
}

/* Unpacks f->bundle through a FIFO into destination and interrupts it half way; returns the result. */
static int unpack_interrupted(struct fixture *f, const char *destination, struct bundle_report *report)
{
	struct bundle_check_options options = { &f->trust, false, false };
	struct feeder feeder = { .destination = destination };
	char fifo[400];
	pthread_t thread;
	int r;

	snprintf(fifo, sizeof(fifo), "%s/feed.fifo", f->dir);
	unlink(fifo);
	assert_int_equal(mkfifo(fifo, 0600), 0);
	feeder.fifo = fifo;
	read_whole(f->bundle, &feeder.data);
	unit_interrupt = 0;
	bundle_set_interrupt_flag(&unit_interrupt);
	assert_int_equal(pthread_create(&thread, NULL, feed_fifo, &feeder), 0);
	r = bundle_unpack(fifo, destination, &options, report);
	assert_int_equal(pthread_join(thread, NULL), 0);
	bundle_set_interrupt_flag(NULL);
	buf_release(&feeder.data);
	assert_true(feeder.staged_seen);
	return r;
}

static void test_unpack_interrupted_leaves_nothing(void **state)
{
	struct fixture *f = *state;
	struct bundle_report report;
	char destination[400];
	DIR *dir;

	signal(SIGPIPE, SIG_IGN);

	/* A destination the unpack created is removed again. */
	snprintf(destination, sizeof(destination), "%s/interrupted", f->dir);
	bundle_report_init(&report);
	assert_int_equal(unpack_interrupted(f, destination, &report), -EINTR);
	assert_true(report.entries > 0);
	assert_false(file_exists(destination));
	bundle_report_release(&report);

	/* An existing, empty destination is left empty. */
	assert_int_equal(mkdir(destination, 0755), 0);
	bundle_report_init(&report);
	assert_int_equal(unpack_interrupted(f, destination, &report), -EINTR);
	bundle_report_release(&report);
	dir = opendir(destination);
	assert_non_null(dir);
	for (struct dirent *item; (item = readdir(dir));)
		if (strcmp(item->d_name, ".") != 0 && strcmp(item->d_name, "..") != 0)
			fail_msg("the interrupted unpack left '%s'", item->d_name);
	closedir(dir);
}

/* Fails the test when folder contains a temporary file or folder of a build or an unpack. */
static void assert_no_temporary_files(const char *folder)
{
	struct dirent *item;
	DIR *dir = opendir(folder);

	assert_non_null(dir);
	while ((item = readdir(dir)))
		if (strstr(item->d_name, ".tmp-") || strncmp(item->d_name, ".mlboot-", 8) == 0)
			fail_msg("'%s' was left in '%s'", item->d_name, folder);
	closedir(dir);
}

static void test_writer_interrupted_writes_nothing(void **state)
{
	static const char *const platforms[] = { "linux/amd64" };
	struct bundle_platform_info info = {
		.name = "unit-platform", .version = "0.0.1", .kubernetes_min = "1.24", .kubernetes_max = "1.33",
		.platforms = platforms, .platform_count = 1,
	};
	struct fixture *f = *state;
	struct bundle_writer *writer = NULL;
	char output[400];

	/* Interrupted while the sources are read: the first chunk stops it. */
	snprintf(output, sizeof(output), "%s/interrupted.bundle", f->dir);
	unit_interrupt = SIGTERM;
	bundle_set_interrupt_flag(&unit_interrupt);
	assert_int_equal(build_bundle(f, output, f->signing), -EINTR);
	bundle_set_interrupt_flag(NULL);
	assert_false(file_exists(output));
	assert_no_temporary_files(f->dir);

	/* Interrupted while the bundle is written: the temporary file is removed. */
	assert_int_equal(bundle_writer_open(output, &writer), 0);
	assert_int_equal(bundle_writer_set_platform(writer, &info), 0);
	assert_int_equal(bundle_writer_add_component(writer, "base", "v1", NULL), 0);
	assert_int_equal(bundle_writer_add_manifest(writer, "base", "demo.yaml", manifest_text, strlen(manifest_text)), 0);
	assert_int_equal(bundle_writer_add_binary_path(writer, "base", "tool", "linux/amd64", f->binary), 0);
	bundle_set_interrupt_flag(&unit_interrupt);
	assert_int_equal(bundle_writer_finish(writer, f->signing), -EINTR);
	bundle_set_interrupt_flag(NULL);
	assert_non_null(strstr(bundle_writer_error(writer), "interrupted"));
	bundle_writer_free(writer);
	assert_false(file_exists(output));
	assert_no_temporary_files(f->dir);
}

/* Creates a staging folder as a killed unpack leaves it: a name of the right form, with files in it. */
static void make_leftover(const char *destination, char *path, size_t size)
{
	char file[600];

	snprintf(path, size, "%s/.mlboot-unpack-0123456789ab", destination);
	assert_int_equal(file_mkdir_parents(path, 0700), 0);
	snprintf(file, sizeof(file), "%s/components", path);
	assert_int_equal(mkdir(file, 0755), 0);
	snprintf(file, sizeof(file), "%s/components/part.yaml", path);
	write_file(file, "half", 4);
}

static void test_unpack_removes_leftover_staging(void **state)
{
	struct fixture *f = *state;
	struct bundle_check_options options = { &f->trust, false, false };
	struct bundle_report report;
	char destination[400], leftover[500], path[600];

	snprintf(destination, sizeof(destination), "%s/after-kill", f->dir);
	make_leftover(destination, leftover, sizeof(leftover));
	bundle_report_init(&report);
	assert_int_equal(bundle_unpack(f->bundle, destination, &options, &report), 0);
	assert_int_equal(report.note_count, 1);
	assert_non_null(strstr(report.notes[0], leftover));
	assert_false(file_exists(leftover));
	snprintf(path, sizeof(path), "%s/%s", destination, BUNDLE_INDEX_NAME);
	assert_true(file_exists(path));
	bundle_report_release(&report);
}

static void test_unpack_keeps_other_entries(void **state)
{
	struct fixture *f = *state;
	struct bundle_check_options options = { &f->trust, false, false };
	struct bundle_report report;
	char destination[400], leftover[500], notes[600];
	int lock_fd;

	snprintf(destination, sizeof(destination), "%s/busy", f->dir);
	make_leftover(destination, leftover, sizeof(leftover));

	/* Another entry: the unpack fails, names it, and removes nothing. */
	snprintf(notes, sizeof(notes), "%s/notes.txt", destination);
	write_file(notes, "mine", 4);
	bundle_report_init(&report);
	assert_int_equal(bundle_unpack(f->bundle, destination, &options, &report), -ENOTEMPTY);
	assert_non_null(strstr(report.messages[0], "not empty"));
	assert_non_null(strstr(report.messages[0], "'notes.txt'"));
	assert_int_equal(report.note_count, 0);
	assert_true(file_exists(leftover));
	bundle_report_release(&report);
	assert_int_equal(unlink(notes), 0);

	/* A locked destination is in use by another unpack: its staging folder stays. */
	lock_fd = open(destination, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_true(lock_fd >= 0);
	assert_int_equal(flock(lock_fd, LOCK_EX | LOCK_NB), 0);
	bundle_report_init(&report);
	assert_int_equal(bundle_unpack(f->bundle, destination, &options, &report), -EBUSY);
	assert_non_null(strstr(report.messages[0], "another unpack"));
	assert_true(file_exists(leftover));
	bundle_report_release(&report);
	close(lock_fd);

	/* A staging folder of another user stays, and is named. */
	if (geteuid() == 0) {
		assert_int_equal(lchown(leftover, 65534, 65534), 0);
		bundle_report_init(&report);
		assert_int_equal(bundle_unpack(f->bundle, destination, &options, &report), -ENOTEMPTY);
		assert_non_null(strstr(report.messages[0], ".mlboot-unpack-0123456789ab"));
		assert_non_null(strstr(report.messages[0], "user ID 65534"));
		assert_true(file_exists(leftover));
		bundle_report_release(&report);
	} else {
		print_message("not root: the case of another user's staging folder is not exercised\n");
	}
}

static void test_index_rejects_unknown_version(void **state)
{
	static const char text[] = "apiVersion: mlboot.dev/v1alpha1\nkind: BundleIndex\nformatVersion: 7\n";
	struct bundle_report report;
	struct bundle_index index;

	(void)state;
	bundle_report_init(&report);
	assert_int_equal(bundle_index_parse(text, strlen(text), &index, &report), MLB_EINPUT);
	assert_int_equal(report.count, 1);
	assert_non_null(strstr(report.messages[0], "format version 7 is not supported"));
	bundle_report_release(&report);
}

/* Found by fuzz_bundle_index: incomplete records that other records refer to. */
static void test_index_incomplete_records(void **state)
{
	static const char text[] =
		"apiVersion: mlboot.dev/v1alpha1\nkind: BundleIndex\nformatVersion: 1\n"
		"platform: {name: p, version: v, kubernetes: {minVersion: '1.24', maxVersion: '1.33'}, platforms: []}\n"
		"components:\n- {name: a, version: '1', manifests: [x], binaries: [{name: b, platform: linux/amd64, path: x}], images: []}\n"
		"images:\n- {name: i, digest: 'sha256:ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb', "
		"mediaType: m, size: 1, blobs: ['sha256:ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb']}\n"
		"files:\n- {size: 1, sha256: ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb, mode: 0644}\n"
		"- {path: x, size: 1, sha256: ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb, mode: 0644}\n"
		"disk: {storedBytes: 2, unpackedBytes: 2, bytesNeeded: 8192}\n";
	static const char image_without_name[] =
		"apiVersion: mlboot.dev/v1alpha1\nkind: BundleIndex\nformatVersion: 1\n"
		"platform: {name: p, version: v, kubernetes: {minVersion: '1.24', maxVersion: '1.33'}, platforms: []}\n"
		"components:\n- {name: a, version: '1', manifests: [], binaries: [], images: [x]}\n"
		"images:\n- {digest: 'sha256:ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb'}\n"
		"files: []\ndisk: {storedBytes: 0, unpackedBytes: 0, bytesNeeded: 0}\n";
	struct bundle_report report;
	struct bundle_index index;

	(void)state;
	bundle_report_init(&report);
	assert_int_equal(bundle_index_parse(text, strlen(text), &index, &report), MLB_EINPUT);
	assert_non_null(strstr(report.messages[0], "missing 'path'"));
	bundle_report_release(&report);

	/* Also found by the fuzzer: an image record without a name, which a component names. */
	bundle_report_init(&report);
	assert_int_equal(bundle_index_parse(image_without_name, strlen(image_without_name), &index, &report),
			 MLB_EINPUT);
	assert_non_null(strstr(report.messages[0], "missing 'name'"));
	bundle_report_release(&report);
}

static void test_index_round_trip_and_strictness(void **state)
{
	struct fixture *f = *state;
	struct bundle_check_options options = { &f->trust, false, false };
	struct bundle_reader *reader = NULL;
	struct bundle_report report;
	struct buf text = BUF_INIT(BUNDLE_INDEX_MAX), changed = BUF_INIT(BUNDLE_INDEX_MAX);
	struct bundle_index parsed;
	const char *at;

	bundle_report_init(&report);
	assert_int_equal(bundle_reader_open(f->bundle, &options, &reader, &report), 0);
	assert_int_equal(bundle_index_write(bundle_reader_index(reader), &text), 0);
	assert_int_equal(bundle_index_parse(text.data, text.len, &parsed, &report), 0);
	bundle_index_release(&parsed);

	/* An unknown key is an error, not ignored. */
	at = strstr(text.data, "platform:\n");
	assert_non_null(at);
	assert_int_equal(buf_append(&changed, text.data, (size_t)(at - text.data)), 0);
	assert_int_equal(buf_append_str(&changed, "surprise: 1\n"), 0);
	assert_int_equal(buf_append_str(&changed, at), 0);
	assert_int_equal(bundle_index_parse(changed.data, changed.len, &parsed, &report), MLB_EINPUT);
	assert_non_null(strstr(report.messages[report.count - 1], "unknown key 'surprise'"));

	bundle_reader_close(reader);
	bundle_report_release(&report);
	buf_release(&text);
	buf_release(&changed);
}

static void test_writer_rejects_bad_input(void **state)
{
	struct fixture *f = *state;
	struct bundle_writer *writer = NULL;
	char output[400], blob[600];
	struct buf data;
	unsigned char layer[4000];
	char digest[SHA256_HEX_LEN + 1];

	snprintf(output, sizeof(output), "%s/rejected.bundle", f->dir);
	assert_int_equal(bundle_writer_open(output, &writer), 0);
	assert_int_equal(bundle_writer_add_component(writer, "../evil", "1", NULL), MLB_EINPUT);
	assert_int_equal(bundle_writer_add_component(writer, "ok", "1", NULL), 0);
	assert_int_equal(bundle_writer_add_component(writer, "ok", "1", NULL), MLB_EINPUT);
	assert_int_equal(bundle_writer_add_manifest(writer, "ok", "a.yaml", "x", 1), 0);
	assert_int_equal(bundle_writer_add_manifest(writer, "ok", "a.yaml", "x", 1), MLB_EINPUT);
	assert_int_equal(bundle_writer_add_manifest(writer, "missing", "a.yaml", "x", 1), MLB_EINPUT);
	assert_int_equal(bundle_writer_add_file(writer, "../x", "x", 1, 0), MLB_EINPUT);
	assert_int_equal(bundle_writer_add_file(writer, "images/x", "x", 1, 0), MLB_EINPUT);
	assert_int_equal(bundle_writer_add_binary_path(writer, "ok", "tool", "linux", f->binary), MLB_EINPUT);
	assert_non_null(strstr(bundle_writer_error(writer), "invalid platform"));

	/* A blob that no longer matches its digest is refused. */
	fill_layer(layer, sizeof(layer), 2);
	assert_int_equal(sha256_hex(layer, sizeof(layer), digest), 0);
	snprintf(blob, sizeof(blob), "%s/blobs/sha256/%s", f->layout, digest);
	read_whole(blob, &data);
	data.data[0] ^= 1;
	write_file(blob, data.data, data.len);
	assert_int_equal(bundle_writer_add_image(writer, "ok", "registry.test/base:v1", f->layout), MLB_EINPUT);
	assert_non_null(strstr(bundle_writer_error(writer), "does not match"));
	data.data[0] ^= 1;
	write_file(blob, data.data, data.len);
	buf_release(&data);

	/* No platform yet: finish fails, and writes nothing. */
	assert_int_equal(bundle_writer_finish(writer, NULL), MLB_EINPUT);
	bundle_writer_free(writer);
	assert_false(file_exists(output));
}

static void test_trust_dir_loads_pub_files(void **state)
{
	struct fixture *f = *state;
	struct bundle_trust trust;
	char dir[400], path[600];
	struct buf key;

	snprintf(dir, sizeof(dir), "%s/keys", f->dir);
	assert_int_equal(mkdir(dir, 0755), 0);
	read_whole(f->pub, &key);
	snprintf(path, sizeof(path), "%s/signer.pub", dir);
	write_file(path, key.data, key.len);
	snprintf(path, sizeof(path), "%s/copy.pub", dir);
	write_file(path, key.data, key.len);
	snprintf(path, sizeof(path), "%s/notes.txt", dir);
	write_file(path, "not a key", 9);
	buf_release(&key);

	bundle_trust_init(&trust);
	assert_int_equal(bundle_trust_add_dir(&trust, dir), 0);
	assert_int_equal(trust.count, 1);
	assert_int_equal(bundle_trust_add_dir(&trust, "/nonexistent/mlboot/keys"), 0);
	assert_int_equal(trust.count, 1);
	snprintf(path, sizeof(path), "%s/bad.pub", dir);
	write_file(path, "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n", 57);
	assert_true(bundle_trust_add_dir(&trust, dir) < 0);
	bundle_trust_release(&trust);
}

static void test_keygen_refuses_overwrite(void **state)
{
	struct fixture *f = *state;
	char name[400], key_id[SHA256_HEX_LEN + 1];
	struct stat st;

	snprintf(name, sizeof(name), "%s/signer", f->dir);
	assert_int_equal(bundle_key_generate(name, key_id), -EEXIST);
	assert_int_equal(stat(f->key, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_path_validation),
		cmocka_unit_test(test_path_length_limits),
		cmocka_unit_test(test_escape_name),
		cmocka_unit_test(test_sums_parse_valid),
		cmocka_unit_test(test_sums_parse_reports_every_line),
		cmocka_unit_test(test_sums_first_line_is_index),
		cmocka_unit_test(test_index_rejects_unknown_version),
		cmocka_unit_test(test_index_incomplete_records),
		cmocka_unit_test_setup_teardown(test_tar_header_round_trip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tar_header_not_canonical, setup, teardown),
		cmocka_unit_test_setup_teardown(test_verify_good_bundle, setup, teardown),
		cmocka_unit_test_setup_teardown(test_build_is_deterministic, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reader_streams_files, setup, teardown),
		cmocka_unit_test_setup_teardown(test_shared_layer_stored_once, setup, teardown),
		cmocka_unit_test_setup_teardown(test_libarchive_reads_bundle, setup, teardown),
		cmocka_unit_test_setup_teardown(test_verify_reports_every_problem, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reader_detects_damage_when_streaming, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unsigned_needs_permission, setup, teardown),
		cmocka_unit_test_setup_teardown(test_untrusted_key_rejected, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unpack_writes_files, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unpack_failure_leaves_nothing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_index_round_trip_and_strictness, setup, teardown),
		cmocka_unit_test_setup_teardown(test_writer_rejects_bad_input, setup, teardown),
		cmocka_unit_test_setup_teardown(test_trust_dir_loads_pub_files, setup, teardown),
		cmocka_unit_test_setup_teardown(test_keygen_refuses_overwrite, setup, teardown),
		cmocka_unit_test_setup_teardown(test_check_output_rejects_special_files, setup, teardown),
		cmocka_unit_test_setup_teardown(test_check_output_rejects_inputs, setup, teardown),
		cmocka_unit_test_setup_teardown(test_writer_keeps_its_sources, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unreadable_bundle_is_invalid_input, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unpack_interrupted_leaves_nothing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_writer_interrupted_writes_nothing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unpack_removes_leftover_staging, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unpack_keeps_other_entries, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
