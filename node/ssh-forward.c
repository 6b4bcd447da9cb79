/*
 * Bastion hops.
 *
 * libssh2 runs a session over a socket descriptor, never over another
 * session's channel. So the target's session gets one end of a Unix
 * socketpair, and a forwarding thread copies bytes between the other end
 * and a direct-tcpip channel that the bastion's session opened to the
 * target. The thread owns the bastion's session from then on, so each
 * session is still used by one thread only, as libssh2 requires.
 *
 * Shutdown: when the target's session closes its end, the thread reads the
 * end of the stream and exits. When the target side of the channel closes,
 * the thread shuts down writing on its end, so the target's session sees
 * the connection end as it would on a TCP socket. When the bastion fails,
 * the thread closes its end, so the target's session fails at once instead
 * of waiting for a timeout.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "error.h"
#include "log.h"
#include "ssh-link.h"

#define FORWARD_CHUNK (256 * 1024)
#define FORWARD_SOCKET_BUFFER (1 << 20)
#define FORWARD_POLL_MS 1000
#define FORWARD_CLOSE_TIMEOUT_MS 2000

struct ssh_forward {
	struct ssh_link bastion;
	LIBSSH2_CHANNEL *channel;
	int fd;                           /* the thread's end of the socketpair */
	pthread_t thread;
	char host_name[NODE_NAME_MAX + 1];
	char *up;                         /* from the target's session to the channel */
	char *down;                       /* from the channel to the target's session */
};

struct forward_buffer {
	char *data;
	size_t offset, len;
};

static bool forward_wait(struct ssh_forward *forward, bool sending_to_channel,
			 const struct forward_buffer *up, const struct forward_buffer *down,
			 bool pair_eof)
{
	int directions = libssh2_session_block_directions(forward->bastion.session);
	struct pollfd fds[2] = {
		{ .fd = forward->bastion.fd, .events = POLLIN },
		{ .fd = forward->fd, .events = 0 },
	};
	int timeout = FORWARD_POLL_MS;

	if (directions & LIBSSH2_SESSION_BLOCK_OUTBOUND)
		fds[0].events |= POLLOUT;
	if (!pair_eof && up->len == 0)
		fds[1].events |= POLLIN;
	if (down->len > down->offset)
		fds[1].events |= POLLOUT;
	/* libssh2 cannot start a keepalive packet while a channel write is half sent. */
	if (!sending_to_channel && forward->bastion.keepalive_interval_s) {
		int next = 0;

		if (libssh2_keepalive_send(forward->bastion.session, &next) ==
		    LIBSSH2_ERROR_SOCKET_SEND)
			return false;
		if (next > 0 && next * 1000 < timeout)
			timeout = next * 1000;
	}
	if (poll(fds, 2, timeout) < 0 && errno != EINTR)
		return false;
	return true;
}

static void *forward_main(void *argument)
{
	struct ssh_forward *forward = argument;
	struct forward_buffer up = { .data = forward->up }, down = { .data = forward->down };
	bool pair_eof = false, channel_eof = false, pair_shut = false;
	const char *reason = "the target's session closed";
	int64_t deadline;

	for (;;) {
		bool progress = false;
		ssize_t n;

		if (!channel_eof && down.len == 0) {
			n = libssh2_channel_read(forward->channel, down.data, FORWARD_CHUNK);
			if (n > 0) {
				down.offset = 0;
				down.len = (size_t)n;
				progress = true;
			} else if (n == 0 || n == LIBSSH2_ERROR_EAGAIN) {
				if (libssh2_channel_eof(forward->channel)) {
					channel_eof = true;
					progress = true;
				}
			} else {
				reason = "the bastion's session failed";
				break;
			}
		}
		if (down.len > down.offset) {
			n = send(forward->fd, down.data + down.offset, down.len - down.offset,
				 MSG_DONTWAIT | MSG_NOSIGNAL);
			if (n > 0) {
				down.offset += (size_t)n;
				if (down.offset == down.len)
					down.offset = down.len = 0;
				progress = true;
			} else if (n < 0 && errno != EAGAIN && errno != EINTR) {
				break;
			}
		}
		if (channel_eof && down.len == 0 && !pair_shut) {
			shutdown(forward->fd, SHUT_WR);
			pair_shut = true;
		}

		if (!pair_eof && up.len == 0) {
			n = recv(forward->fd, up.data, FORWARD_CHUNK, MSG_DONTWAIT);
			if (n > 0) {
				up.offset = 0;
				up.len = (size_t)n;
				progress = true;
			} else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
				pair_eof = true;
				progress = true;
			}
		}
		if (up.len > up.offset) {
			n = libssh2_channel_write(forward->channel, up.data + up.offset,
						  up.len - up.offset);
			if (n > 0) {
				up.offset += (size_t)n;
				if (up.offset == up.len)
					up.offset = up.len = 0;
				progress = true;
			} else if (n < 0 && n != LIBSSH2_ERROR_EAGAIN) {
				reason = "the bastion's channel to the target failed";
				break;
			}
		}
		/* The target's session closed its end: nothing more to carry. */
		if (pair_eof && up.len == 0)
			break;
		if (!progress && !forward_wait(forward, up.len > 0, &up, &down, pair_eof)) {
			reason = "the connection to the bastion failed";
			break;
		}
	}
	log_debug("host '%s': bastion forwarding on %s ends: %s", forward->host_name,
		  forward->bastion.label, reason);

	/* Closing our end makes the target's session fail at once if it still runs. */
	close(forward->fd);
	forward->fd = -1;
	deadline = node_now_ms() + FORWARD_CLOSE_TIMEOUT_MS;
	while (libssh2_channel_close(forward->channel) == LIBSSH2_ERROR_EAGAIN)
		if (ssh_link_wait(&forward->bastion, deadline) < 0) {
			forward->bastion.broken = true;
			break;
		}
	libssh2_channel_free(forward->channel);
	forward->channel = NULL;
	return NULL;
}

static void forward_free(struct ssh_forward *forward)
{
	if (forward->channel)
		libssh2_channel_free(forward->channel);
	if (forward->fd >= 0)
		close(forward->fd);
	ssh_link_close(&forward->bastion);
	free(forward->up);
	free(forward->down);
	free(forward);
}

int ssh_forward_start(struct ssh_link *bastion, const char *address, uint16_t port,
		      const char *host_name, int64_t deadline_ms, struct ssh_forward **out,
		      int *fd, struct node_error *err)
{
	struct ssh_forward *forward;
	int pair[2] = { -1, -1 };
	int size = FORWARD_SOCKET_BUFFER;
	int r;

	forward = calloc(1, sizeof(*forward));
	if (!forward)
		return node_fail(err, -ENOMEM, host_name, "out of memory");
	forward->fd = -1;
	forward->bastion = *bastion;
	*bastion = (struct ssh_link)SSH_LINK_INIT;
	snprintf(forward->host_name, sizeof(forward->host_name), "%s", host_name);
	forward->up = malloc(FORWARD_CHUNK);
	forward->down = malloc(FORWARD_CHUNK);
	if (!forward->up || !forward->down) {
		r = node_fail(err, -ENOMEM, host_name, "out of memory");
		goto fail;
	}

	while (!(forward->channel = libssh2_channel_direct_tcpip_ex(forward->bastion.session,
								    address, port, "127.0.0.1", 22))) {
		int rc = libssh2_session_last_errno(forward->bastion.session);

		if (rc != LIBSSH2_ERROR_EAGAIN) {
			r = node_fail(err, MLB_EUNREACHABLE, host_name,
				      "the bastion %s could not connect to %s port %u: %s",
				      forward->bastion.label, address, (unsigned)port,
				      ssh_link_error(&forward->bastion));
			goto fail;
		}
		r = ssh_link_wait(&forward->bastion, deadline_ms);
		if (r < 0) {
			r = node_fail(err, MLB_EUNREACHABLE, host_name,
				      "the bastion %s did not connect to %s port %u in time",
				      forward->bastion.label, address, (unsigned)port);
			goto fail;
		}
	}

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) < 0) {
		r = node_fail(err, -errno, host_name, "cannot create a socketpair: %s",
			      strerror(errno));
		goto fail;
	}
	for (int i = 0; i < 2; i++) {
		setsockopt(pair[i], SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
		setsockopt(pair[i], SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
	}
	forward->fd = pair[1];
	r = pthread_create(&forward->thread, NULL, forward_main, forward);
	if (r != 0) {
		r = node_fail(err, -r, host_name, "cannot start the bastion forwarding thread: %s",
			      strerror(r));
		goto fail;
	}
	*fd = pair[0];
	*out = forward;
	return 0;
fail:
	if (pair[0] >= 0)
		close(pair[0]);
	forward_free(forward);
	return r;
}

void ssh_forward_stop(struct ssh_forward *forward)
{
	if (!forward)
		return;
	/* The caller closed its end, so the thread reads the end of the stream and exits. */
	pthread_join(forward->thread, NULL);
	forward_free(forward);
}
