#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "common.h"
#include "sd_notify.h"

/* Set once by sd_notify_setup(), read by the signal handler. */
static struct sockaddr_un notify_address;
static socklen_t notify_address_len;
static int notify_fd = -1;

static pthread_mutex_t status_lock = PTHREAD_MUTEX_INITIALIZER;
static char last_status[SD_NOTIFY_MESSAGE_MAX];

int sd_notify_setup(void)
{
	const char *name = getenv("NOTIFY_SOCKET");
	size_t len;
	int fd, r = 0;

	if (!name || !name[0])
		goto out;
	len = strlen(name);
	if ((name[0] != '/' && name[0] != '@') || len < 2 || len >= sizeof(notify_address.sun_path)) {
		log_warning("ignoring NOTIFY_SOCKET: expected an absolute path or an abstract name"
			    " starting with '@' of at most %zu bytes",
			    sizeof(notify_address.sun_path) - 1);
		r = -EINVAL;
		goto out;
	}
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		r = -errno;
		log_errno(LOG_WARNING, r, "failed to create the socket for NOTIFY_SOCKET");
		goto out;
	}
	if (notify_fd >= 0)
		close(notify_fd);
	notify_fd = -1;
	memset(&notify_address, 0, sizeof(notify_address));
	notify_address.sun_family = AF_UNIX;
	memcpy(notify_address.sun_path, name, len);
	/* An abstract name has a NUL first and its length, not a terminator, ends it. */
	if (name[0] == '@')
		notify_address.sun_path[0] = '\0';
	notify_address_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len +
					 (name[0] == '/' ? 1 : 0));
	notify_fd = fd;
	last_status[0] = '\0';
	r = 1;
out:
	unsetenv("NOTIFY_SOCKET");
	return r;
}

bool sd_notify_enabled(void)
{
	return notify_fd >= 0;
}

int sd_notify_send(const char *state)
{
	ssize_t n;

	if (notify_fd < 0)
		return 0;
	n = sendto(notify_fd, state, strlen(state), MSG_NOSIGNAL,
		   (const struct sockaddr *)&notify_address, notify_address_len);
	if (n < 0)
		return -errno;
	return 1;
}

/* Cuts text at max bytes without splitting a UTF-8 sequence, and flattens controls. */
static void status_clean(char *text, size_t max)
{
	size_t len = strlen(text);

	if (len > max) {
		len = max;
		while (len > 0 && ((unsigned char)text[len] & 0xc0) == 0x80)
			len--;
		text[len] = '\0';
	}
	for (unsigned char *p = (unsigned char *)text; *p; p++)
		if (*p < 0x20 || *p == 0x7f)
			*p = ' ';
}

int sd_notify_status(const char *format, ...)
{
	static const char prefix[] = "STATUS=";
	char message[SD_NOTIFY_MESSAGE_MAX];
	char *text = message + sizeof(prefix) - 1;
	va_list args;
	int r = 0;

	if (notify_fd < 0)
		return 0;
	memcpy(message, prefix, sizeof(prefix));
	va_start(args, format);
	vsnprintf(text, sizeof(message) - (sizeof(prefix) - 1), format, args);
	va_end(args);
	status_clean(text, sizeof(message) - sizeof(prefix));

	pthread_mutex_lock(&status_lock);
	if (strcmp(last_status, text) == 0)
		goto out;
	r = sd_notify_send(message);
	if (r > 0)
		snprintf(last_status, sizeof(last_status), "%s", text);
out:
	pthread_mutex_unlock(&status_lock);
	return r;
}

static void stopping_handler(int signal_number)
{
	static const char stopping[] = "STOPPING=1";
	int saved = errno;

	if (notify_fd >= 0)
		(void)sendto(notify_fd, stopping, sizeof(stopping) - 1, MSG_NOSIGNAL,
			     (const struct sockaddr *)&notify_address, notify_address_len);
	errno = saved;
	/* SA_RESETHAND restored the default action; the signal stays blocked until return. */
	raise(signal_number);
}

int sd_notify_stopping_on_signal(void)
{
	struct sigaction action;

	memset(&action, 0, sizeof(action));
	action.sa_handler = stopping_handler;
	sigemptyset(&action.sa_mask);
	action.sa_flags = SA_RESETHAND;
	if (sigaction(SIGTERM, &action, NULL) < 0 || sigaction(SIGINT, &action, NULL) < 0)
		return -errno;
	return 0;
}
