/*
 * Service state reports to systemd through $NOTIFY_SOCKET, the protocol of
 * sd_notify(3), without linking libsystemd.
 *
 * The socket is an AF_UNIX datagram socket. A NOTIFY_SOCKET that starts
 * with "/" is a path; one that starts with "@" names a socket in the
 * abstract namespace. Each message is one datagram of newline-separated
 * VARIABLE=value assignments, such as "STATUS=waiting for the API server".
 *
 * sd_notify_setup() reads and then removes NOTIFY_SOCKET from the
 * environment, so that the programs mlboot starts (ssh, ctr, credential
 * plugins) cannot report in its name. Without a socket every call does
 * nothing and returns 0. None of these calls block: a datagram to a full
 * socket is dropped and reported as -EAGAIN.
 */
#ifndef MLBOOT_BOOTSTRAP_SD_NOTIFY_H
#define MLBOOT_BOOTSTRAP_SD_NOTIFY_H

#include <stdbool.h>

/* Longest message sent; a longer STATUS= text is cut at a character boundary. */
#define SD_NOTIFY_MESSAGE_MAX 2048

/*
 * Reads NOTIFY_SOCKET and unsets it. A socket found replaces the one an
 * earlier call found; without NOTIFY_SOCKET the earlier one stays in use.
 * Returns 1 when a socket is set
 * and valid, 0 when none is set, and -EINVAL (with a warning logged) when
 * the value is neither an absolute path nor an abstract name, or too long.
 */
int sd_notify_setup(void);
/* Whether sd_notify_setup() found a socket. */
bool sd_notify_enabled(void);

/*
 * Sends state, one or more "VARIABLE=value" lines, as one datagram.
 * Returns 1 when sent, 0 without a socket, or a negative errno.
 */
int sd_notify_send(const char *state);

/*
 * Sends "STATUS=" and the formatted text, which systemctl status shows.
 * Control characters become spaces, so the text stays one line. The text is
 * sent only when it differs from the last status sent.
 */
int sd_notify_status(const char *format, ...) __attribute__((format(printf, 1, 2)));

/*
 * Sends "STOPPING=1" when SIGTERM or SIGINT arrives, then ends the process
 * with that signal as before. The handler does only async-signal-safe work.
 * Returns 0 or a negative errno from sigaction().
 */
int sd_notify_stopping_on_signal(void);

#endif
