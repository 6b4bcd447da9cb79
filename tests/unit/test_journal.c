/*
 * Tests for the install journal: records survive a re-open, a step is done
 * only with the same input digest, a torn last line is dropped, and a second
 * holder of the lock is turned away.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "common.h"
#include "journal.h"

static int make_folder(void **state)
{
	char *folder = strdup("/tmp/mlboot-journal-test-XXXXXX");

	assert_non_null(mkdtemp(folder));
	*state = folder;
	return 0;
}

static int remove_folder(void **state)
{
	char command[512];

	snprintf(command, sizeof(command), "rm -rf '%s'", (char *)*state);
	assert_int_equal(system(command), 0);
	free(*state);
	return 0;
}

static void journal_done_survives_reopen(void **state)
{
	const char *folder = *state;
	struct journal *journal = NULL;

	assert_int_equal(journal_open(folder, &journal), 0);
	assert_false(journal_is_done(journal, "images/node1", "sha256:aa"));
	assert_int_equal(journal_record(journal, "images/node1", "sha256:aa", JOURNAL_START, NULL), 0);
	assert_false(journal_is_done(journal, "images/node1", "sha256:aa"));
	assert_int_equal(journal_record(journal, "images/node1", "sha256:aa", JOURNAL_DONE, NULL), 0);
	assert_true(journal_is_done(journal, "images/node1", "sha256:aa"));
	journal_close(journal);

	assert_int_equal(journal_open(folder, &journal), 0);
	assert_true(journal_is_done(journal, "images/node1", "sha256:aa"));
	assert_int_equal(journal_find(journal, "images/node1")->runs, 1);
	journal_close(journal);
}

static void journal_changed_digest_not_done(void **state)
{
	struct journal *journal = NULL;

	assert_int_equal(journal_open(*state, &journal), 0);
	assert_int_equal(journal_record(journal, "apply/istio", "sha256:old", JOURNAL_DONE, NULL), 0);
	assert_false(journal_is_done(journal, "apply/istio", "sha256:new"));
	assert_true(journal_is_done(journal, "apply/istio", "sha256:old"));
	journal_close(journal);
}

static void journal_started_step_not_done(void **state)
{
	struct journal *journal = NULL;

	assert_int_equal(journal_open(*state, &journal), 0);
	assert_int_equal(journal_record(journal, "apply/kserve", "d1", JOURNAL_DONE, NULL), 0);
	assert_int_equal(journal_record(journal, "apply/kserve", "d1", JOURNAL_START, NULL), 0);
	journal_close(journal);

	assert_int_equal(journal_open(*state, &journal), 0);
	assert_false(journal_is_done(journal, "apply/kserve", "d1"));
	assert_int_equal(journal_find(journal, "apply/kserve")->runs, 1);
	journal_close(journal);
}

static void journal_failed_keeps_message(void **state)
{
	struct journal *journal = NULL;
	const struct journal_step *step;

	assert_int_equal(journal_open(*state, &journal), 0);
	assert_int_equal(journal_record(journal, "wait/kserve", "d", JOURNAL_FAILED,
					"deployment \"kserve-controller\" not available: \"quoted\"\nsecond line"), 0);
	journal_close(journal);

	assert_int_equal(journal_read(*state, &journal), 0);
	step = journal_find(journal, "wait/kserve");
	assert_non_null(step);
	assert_int_equal(step->event, JOURNAL_FAILED);
	assert_string_equal(step->message, "deployment \"kserve-controller\" not available: \"quoted\"\nsecond line");
	journal_close(journal);
}

static void journal_torn_line_dropped(void **state)
{
	struct journal *journal = NULL;
	char path[512];
	struct buf content = BUF_INIT(1 << 20);
	int fd;

	assert_int_equal(journal_open(*state, &journal), 0);
	assert_int_equal(journal_record(journal, "a", "1", JOURNAL_DONE, NULL), 0);
	journal_close(journal);

	/* A power cut in the middle of the next record leaves half a line. */
	snprintf(path, sizeof(path), "%s/journal", (char *)*state);
	fd = open(path, O_WRONLY | O_APPEND);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "{\"time\":1,\"step\":\"b\",\"dig", 25), 25);
	close(fd);

	assert_int_equal(journal_open(*state, &journal), 0);
	assert_true(journal_is_done(journal, "a", "1"));
	assert_null(journal_find(journal, "b"));
	assert_int_equal(journal_record(journal, "b", "2", JOURNAL_DONE, NULL), 0);
	journal_close(journal);

	assert_int_equal(file_read_all(path, 1 << 20, &content), 0);
	assert_null(strstr(content.data, "\"dig{"));
	assert_int_equal(content.data[content.len - 1], '\n');
	buf_release(&content);

	assert_int_equal(journal_read(*state, &journal), 0);
	assert_true(journal_is_done(journal, "b", "2"));
	journal_close(journal);
}

static void journal_invalid_record_rejected(void **state)
{
	struct journal *journal = NULL;
	char path[512];
	int fd;

	snprintf(path, sizeof(path), "%s/journal", (char *)*state);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "{\"time\":1,\"step\":\"a\",\"digest\":\"1\",\"event\":\"maybe\"}\n", 52), 52);
	close(fd);
	assert_int_equal(journal_read(*state, &journal), MLB_EINPUT);
}

static void journal_second_holder_rejected(void **state)
{
	struct journal *journal = NULL;
	pid_t child;
	int status;

	assert_int_equal(journal_open(*state, &journal), 0);
	child = fork();
	assert_true(child >= 0);
	if (child == 0) {
		struct journal *second = NULL;
		int r = journal_open(*state, &second);

		_exit(r == -EBUSY ? 0 : 1);
	}
	assert_int_equal(waitpid(child, &status, 0), child);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	journal_close(journal);

	/* Once released, the lock can be taken again. */
	assert_int_equal(journal_open(*state, &journal), 0);
	journal_close(journal);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(journal_done_survives_reopen, make_folder, remove_folder),
		cmocka_unit_test_setup_teardown(journal_changed_digest_not_done, make_folder, remove_folder),
		cmocka_unit_test_setup_teardown(journal_started_step_not_done, make_folder, remove_folder),
		cmocka_unit_test_setup_teardown(journal_failed_keeps_message, make_folder, remove_folder),
		cmocka_unit_test_setup_teardown(journal_torn_line_dropped, make_folder, remove_folder),
		cmocka_unit_test_setup_teardown(journal_invalid_record_rejected, make_folder, remove_folder),
		cmocka_unit_test_setup_teardown(journal_second_holder_rejected, make_folder, remove_folder),
	};

	log_set_level(LOG_CRIT);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
