/*
 * Tests for the sd_notify protocol and for the pruning of saved reports:
 * datagrams reach a socket named by a path or in the abstract namespace,
 * NOTIFY_SOCKET is removed from the environment, a repeated STATUS= is not
 * sent again, SIGTERM sends STOPPING=1 and still ends the process, and
 * pruning keeps the newest reports of one kind only.
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
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <signal.h>
#include <unistd.h>

#include <cmocka.h>

#include "common.h"
#include "sd_notify.h"
#include "unattended.h"

/* Binds a datagram socket to name ("@..." abstract, else a path) and returns it. */
static int bind_receiver(const char *name)
{
	struct sockaddr_un address;
	socklen_t len;
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	memset(&address, 0, sizeof(address));
	address.sun_family = AF_UNIX;
	memcpy(address.sun_path, name, strlen(name));
	len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(name));
	if (name[0] == '@')
		address.sun_path[0] = '\0';
	assert_int_equal(bind(fd, (struct sockaddr *)&address, len), 0);
	return fd;
}

/* Receives one datagram as a string, or returns an empty string when none is waiting. */
static void receive(int fd, char *out, size_t size)
{
	ssize_t n = recv(fd, out, size - 1, MSG_DONTWAIT);

	if (n < 0) {
		assert_int_equal(errno, EAGAIN);
		n = 0;
	}
	out[n] = '\0';
}

static void notify_abstract_socket(void **state)
{
	char name[64], message[SD_NOTIFY_MESSAGE_MAX + 16];
	int fd;

	(void)state;
	snprintf(name, sizeof(name), "@mlboot-test-notify-%ld", (long)getpid());
	fd = bind_receiver(name);
	assert_int_equal(setenv("NOTIFY_SOCKET", name, 1), 0);

	assert_int_equal(sd_notify_setup(), 1);
	assert_true(sd_notify_enabled());
	assert_null(getenv("NOTIFY_SOCKET"));

	assert_int_equal(sd_notify_status("waiting for %s", "node1\nnode2"), 1);
	receive(fd, message, sizeof(message));
	assert_string_equal(message, "STATUS=waiting for node1 node2");

	assert_int_equal(sd_notify_status("waiting for %s", "node1\nnode2"), 0);
	receive(fd, message, sizeof(message));
	assert_string_equal(message, "");

	assert_int_equal(sd_notify_send("READY=1"), 1);
	receive(fd, message, sizeof(message));
	assert_string_equal(message, "READY=1");
	close(fd);
}

static void notify_path_socket(void **state)
{
	char folder[] = "/tmp/mlboot-notify-test-XXXXXX", path[128];
	char message[SD_NOTIFY_MESSAGE_MAX + 16];
	int fd;

	(void)state;
	assert_non_null(mkdtemp(folder));
	snprintf(path, sizeof(path), "%s/notify", folder);
	fd = bind_receiver(path);
	assert_int_equal(setenv("NOTIFY_SOCKET", path, 1), 0);
	assert_int_equal(sd_notify_setup(), 1);

	assert_int_equal(sd_notify_send("STOPPING=1"), 1);
	receive(fd, message, sizeof(message));
	assert_string_equal(message, "STOPPING=1");
	close(fd);
	unlink(path);
	rmdir(folder);
}

static void notify_long_status_cut(void **state)
{
	char name[64], message[SD_NOTIFY_MESSAGE_MAX + 16], text[3 * SD_NOTIFY_MESSAGE_MAX];
	int fd;

	(void)state;
	snprintf(name, sizeof(name), "@mlboot-test-notify-long-%ld", (long)getpid());
	fd = bind_receiver(name);
	assert_int_equal(setenv("NOTIFY_SOCKET", name, 1), 0);
	assert_int_equal(sd_notify_setup(), 1);

	/* "é" is two bytes: a cut must not leave half of one. */
	for (size_t i = 0; i + 2 < sizeof(text); i += 2)
		memcpy(text + i, "\xc3\xa9", 2);
	text[sizeof(text) - 1 - (sizeof(text) - 1) % 2] = '\0';
	assert_int_equal(sd_notify_status("%s", text), 1);
	receive(fd, message, sizeof(message));
	assert_true(strlen(message) < SD_NOTIFY_MESSAGE_MAX);
	assert_int_equal(strncmp(message, "STATUS=\xc3\xa9", 9), 0);
	assert_int_equal((strlen(message) - strlen("STATUS=")) % 2, 0);
	close(fd);
}

static void notify_invalid_socket_rejected(void **state)
{
	(void)state;
	assert_int_equal(setenv("NOTIFY_SOCKET", "relative/path", 1), 0);
	assert_int_equal(sd_notify_setup(), -EINVAL);
	assert_null(getenv("NOTIFY_SOCKET"));
	assert_int_equal(setenv("NOTIFY_SOCKET", "@", 1), 0);
	assert_int_equal(sd_notify_setup(), -EINVAL);
}

static void notify_stopping_on_sigterm(void **state)
{
	char name[64], message[64];
	int fd, status;
	pid_t child;

	(void)state;
	snprintf(name, sizeof(name), "@mlboot-test-notify-stop-%ld", (long)getpid());
	fd = bind_receiver(name);
	child = fork();
	assert_true(child >= 0);
	if (child == 0) {
		setenv("NOTIFY_SOCKET", name, 1);
		if (sd_notify_setup() != 1 || sd_notify_stopping_on_signal() != 0)
			_exit(2);
		raise(SIGTERM);
		_exit(3);
	}
	assert_int_equal(waitpid(child, &status, 0), child);
	assert_true(WIFSIGNALED(status));
	assert_int_equal(WTERMSIG(status), SIGTERM);
	receive(fd, message, sizeof(message));
	assert_string_equal(message, "STOPPING=1");
	close(fd);
}

static void touch(const char *folder, const char *name)
{
	char path[512];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", folder, name);
	fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	assert_true(fd >= 0);
	close(fd);
}

static bool present(const char *folder, const char *name)
{
	char path[512];

	snprintf(path, sizeof(path), "%s/%s", folder, name);
	return access(path, F_OK) == 0;
}

static void prune_keeps_newest(void **state)
{
	char folder[] = "/tmp/mlboot-prune-test-XXXXXX", command[128];

	(void)state;
	assert_non_null(mkdtemp(folder));
	touch(folder, "check-20250101T000000Z.json");
	touch(folder, "check-20250301T000000Z.json");
	touch(folder, "check-20250201T000000Z.json");
	touch(folder, "check-20250101T000000Z.html");
	touch(folder, "install-20240101T000000Z.json");
	touch(folder, "check-.json");

	assert_int_equal(unattended_prune_reports(folder, "check", ".json", 2), 1);
	assert_false(present(folder, "check-20250101T000000Z.json"));
	assert_true(present(folder, "check-20250201T000000Z.json"));
	assert_true(present(folder, "check-20250301T000000Z.json"));
	/* Other kinds and names outside the pattern stay. */
	assert_true(present(folder, "check-20250101T000000Z.html"));
	assert_true(present(folder, "install-20240101T000000Z.json"));
	assert_true(present(folder, "check-.json"));

	assert_int_equal(unattended_prune_reports(folder, "check", ".json", 5), 0);
	assert_int_equal(unattended_prune_reports("/nonexistent/mlboot", "check", ".json", 1), -ENOENT);
	snprintf(command, sizeof(command), "rm -rf '%s'", folder);
	assert_int_equal(system(command), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(notify_abstract_socket),
		cmocka_unit_test(notify_path_socket),
		cmocka_unit_test(notify_long_status_cut),
		cmocka_unit_test(notify_invalid_socket_rejected),
		cmocka_unit_test(notify_stopping_on_sigterm),
		cmocka_unit_test(prune_keeps_newest),
	};

	log_set_level(LOG_CRIT);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
