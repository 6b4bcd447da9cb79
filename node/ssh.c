/*
 * The SSH transport: connections, handshakes and remote commands through
 * libssh2 1.10.
 */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "error.h"
#include "log.h"
#include "ssh-link.h"

/* Bytes read from a channel or from stdin in one call. */
#define SSH_READ_CHUNK (64 * 1024)
#define SSH_STDIN_CHUNK (256 * 1024)
/* Maximum wait for a channel or session to close after a command. */
#define SSH_CLOSE_TIMEOUT_MS 2000

/*
 * The remote wrapper. "$@" runs the quoted argv that follows it, and the
 * shell then prints the exit status as the last line of stderr. libssh2
 * 1.10's libssh2_channel_get_exit_status() returns 0 when the server sent no
 * status at all, so without this line a lost status would look like success.
 */
#define EXIT_STATUS_MARKER "mlboot-exit-status:"
static const char remote_wrapper[] =
	"sh -c '\"$@\"; s=$?; printf \"\\n" EXIT_STATUS_MARKER "%d\\n\" \"$s\" >&2; exit \"$s\"' sh ";

int ssh_result(int libssh2_error)
{
	switch (libssh2_error) {
	case 0:
		return 0;
	case LIBSSH2_ERROR_ALLOC:
		return -ENOMEM;
	case LIBSSH2_ERROR_TIMEOUT:
	case LIBSSH2_ERROR_SOCKET_TIMEOUT:
		return -ETIMEDOUT;
	case LIBSSH2_ERROR_SOCKET_NONE:
	case LIBSSH2_ERROR_BANNER_RECV:
	case LIBSSH2_ERROR_BANNER_SEND:
	case LIBSSH2_ERROR_SOCKET_SEND:
	case LIBSSH2_ERROR_SOCKET_RECV:
	case LIBSSH2_ERROR_SOCKET_DISCONNECT:
	case LIBSSH2_ERROR_BAD_SOCKET:
		return MLB_EUNREACHABLE;
	case LIBSSH2_ERROR_AUTHENTICATION_FAILED:
	case LIBSSH2_ERROR_PUBLICKEY_UNVERIFIED:
	case LIBSSH2_ERROR_KEYFILE_AUTH_FAILED:
		return MLB_EDENIED;
	default:
		return -EPROTO;
	}
}

const char *ssh_link_error(const struct ssh_link *link)
{
	char *message = NULL;

	if (!link->session)
		return "";
	libssh2_session_last_error(link->session, &message, NULL, 0);
	return message ? message : "";
}

int ssh_link_wait(struct ssh_link *link, int64_t deadline_ms)
{
	int directions = libssh2_session_block_directions(link->session);
	struct pollfd pfd = { .fd = link->fd, .events = 0 };
	int timeout = node_remaining_ms(deadline_ms);
	int n;

	if (timeout == 0)
		return -ETIMEDOUT;
	/*
	 * Keepalives only while nothing is being sent: libssh2 cannot start a
	 * new packet while another one is half sent.
	 */
	if (link->keepalive_interval_s && !(directions & LIBSSH2_SESSION_BLOCK_OUTBOUND)) {
		int next = 0;
		int rc = libssh2_keepalive_send(link->session, &next);

		if (rc == LIBSSH2_ERROR_SOCKET_SEND)
			return MLB_EUNREACHABLE;
		if (next > 0 && next * 1000 < timeout)
			timeout = next * 1000;
	}

	if (directions & LIBSSH2_SESSION_BLOCK_INBOUND)
		pfd.events |= POLLIN;
	if (directions & LIBSSH2_SESSION_BLOCK_OUTBOUND)
		pfd.events |= POLLOUT;
	if (!pfd.events)
		pfd.events = POLLIN;
	n = poll(&pfd, 1, timeout);
	if (n < 0 && errno != EINTR)
		return -errno;
	/* POLLHUP and POLLERR wake us too; the next libssh2 call reports them. */
	return 0;
}

static void set_socket_options(int fd, unsigned keepalive_interval_s)
{
	int one = 1;

	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (keepalive_interval_s) {
		int idle = (int)keepalive_interval_s, count = 3;
		unsigned user_timeout = keepalive_interval_s * 3 * 1000;

		setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
		setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
		setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &idle, sizeof(idle));
		setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &count, sizeof(count));
		/* Unacknowledged data for this long means the peer is gone. */
		setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &user_timeout, sizeof(user_timeout));
	}
}

/* Connects a non-blocking TCP socket to one address, waiting up to timeout_ms. */
static int connect_address(const struct addrinfo *ai, unsigned timeout_ms, int *out)
{
	struct pollfd pfd;
	socklen_t len = sizeof(int);
	int fd, error = 0, n;

	fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
	if (fd < 0)
		return -errno;
	if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
		goto connected;
	if (errno != EINPROGRESS) {
		error = errno;
		goto fail;
	}
	pfd.fd = fd;
	pfd.events = POLLOUT;
	do
		n = poll(&pfd, 1, (int)timeout_ms);
	while (n < 0 && errno == EINTR);
	if (n == 0) {
		error = ETIMEDOUT;
		goto fail;
	}
	if (n < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &len) < 0) {
		error = errno;
		goto fail;
	}
	if (error)
		goto fail;
connected:
	*out = fd;
	return 0;
fail:
	close(fd);
	return -error;
}

static int tcp_connect(const char *address, uint16_t port, const struct node_options *options,
		       const char *host_name, int *out, struct node_error *err)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV };
	struct addrinfo *list = NULL;
	char service[8];
	int r, last = -EHOSTUNREACH;

	snprintf(service, sizeof(service), "%u", (unsigned)port);
	/* NOTE: getaddrinfo() has no timeout; a name needing a slow DNS server can block. */
	r = getaddrinfo(address, service, &hints, &list);
	if (r != 0)
		return node_fail(err, MLB_EUNREACHABLE, host_name, "cannot resolve '%s': %s", address,
				 gai_strerror(r));

	for (const struct addrinfo *ai = list; ai; ai = ai->ai_next) {
		last = connect_address(ai, options->connect_timeout_ms, out);
		if (last == 0)
			break;
		log_debug("host '%s': connect to %s port %u failed: %s", host_name, address,
			  (unsigned)port, strerror(-last));
	}
	freeaddrinfo(list);
	if (last == -ETIMEDOUT)
		return node_fail(err, MLB_EUNREACHABLE, host_name,
				 "connection to %s port %u timed out after %u ms; check that the "
				 "host is up and that no firewall drops SSH", address, (unsigned)port,
				 options->connect_timeout_ms);
	if (last < 0)
		return node_fail(err, MLB_EUNREACHABLE, host_name,
				 "cannot connect to %s port %u: %s%s", address, (unsigned)port,
				 strerror(-last),
				 last == -ECONNREFUSED ? " (is sshd running on the host?)" : "");
	set_socket_options(*out, options->keepalive_interval_s);
	return 0;
}

void ssh_link_close(struct ssh_link *link)
{
	if (link->session) {
		int64_t deadline = node_now_ms() + SSH_CLOSE_TIMEOUT_MS;

		if (!link->broken) {
			while (libssh2_session_disconnect(link->session, "mlboot done") ==
			       LIBSSH2_ERROR_EAGAIN)
				if (ssh_link_wait(link, deadline) < 0)
					break;
		}
		libssh2_session_free(link->session);
		link->session = NULL;
	}
	if (link->fd >= 0) {
		close(link->fd);
		link->fd = -1;
	}
	if (link->forward) {
		ssh_forward_stop(link->forward);
		link->forward = NULL;
	}
}

/* Opens the byte stream to desc: a TCP connection, or a channel through the bastion. */
static int open_stream(const struct node_ssh *desc, const char *host_name,
		       const struct node_options *options, unsigned depth, struct ssh_link *link,
		       struct node_error *err)
{
	uint16_t port = desc->port ? desc->port : 22;
	struct ssh_link bastion = SSH_LINK_INIT;
	int r;

	if (!desc->bastion)
		return tcp_connect(desc->address, port, options, host_name, &link->fd, err);

	r = ssh_link_open(desc->bastion, host_name, options, depth + 1, &bastion, err);
	if (r < 0)
		return r;
	r = ssh_forward_start(&bastion, desc->address, port, host_name,
			      node_now_ms() + options->handshake_timeout_ms, &link->forward,
			      &link->fd, err);
	if (r < 0)
		ssh_link_close(&bastion);
	return r;
}

/*
 * Makes one connection and handshake with the host key methods of plan.
 * Returns 0, 1 when the plan wants another handshake, or a negative result.
 */
static int handshake_once(const struct node_ssh *desc, const char *host_name,
			  const struct node_options *options, unsigned depth,
			  struct ssh_hostkey_plan *plan, struct ssh_link *link,
			  struct node_error *err)
{
	int64_t deadline;
	int rc, r;

	r = open_stream(desc, host_name, options, depth, link, err);
	if (r < 0)
		return r;

	link->session = libssh2_session_init();
	if (!link->session)
		return node_fail(err, -ENOMEM, host_name, "cannot create an SSH session");
	libssh2_session_set_blocking(link->session, 0);
	/*
	 * A backstop for any libssh2 call that blocks despite non-blocking mode
	 * (the ssh-agent exchange): never longer than the longest phase.
	 */
	libssh2_session_set_timeout(link->session, (long)options->auth_timeout_ms +
				    options->handshake_timeout_ms);

	rc = libssh2_session_method_pref(link->session, LIBSSH2_METHOD_HOSTKEY,
					 ssh_hostkey_plan_methods(plan));
	if (rc != 0)
		return node_fail(err, -EINVAL, host_name,
				 "libssh2 rejected the host key methods '%s': %s",
				 ssh_hostkey_plan_methods(plan), ssh_link_error(link));

	deadline = node_now_ms() + options->handshake_timeout_ms;
	while ((rc = libssh2_session_handshake(link->session, link->fd)) == LIBSSH2_ERROR_EAGAIN) {
		r = ssh_link_wait(link, deadline);
		if (r == -ETIMEDOUT)
			return node_fail(err, MLB_EUNREACHABLE, host_name,
					 "SSH handshake with %s timed out after %u ms", link->label,
					 options->handshake_timeout_ms);
		if (r < 0)
			return node_fail(err, r, host_name, "SSH handshake with %s failed: %s",
					 link->label, strerror(-r));
	}
	if (rc == LIBSSH2_ERROR_KEX_FAILURE || rc == LIBSSH2_ERROR_KEY_EXCHANGE_FAILURE ||
	    rc == LIBSSH2_ERROR_METHOD_NOT_SUPPORTED) {
		log_debug("host '%s': no common algorithm with %s: %s", host_name, link->label,
			  ssh_link_error(link));
		return ssh_hostkey_no_common_method(plan, err);
	}
	if (rc != 0)
		return node_fail(err, ssh_result(rc) == -EPROTO ? MLB_EUNREACHABLE : ssh_result(rc),
				 host_name, "SSH handshake with %s failed: %s", link->label,
				 ssh_link_error(link));

	return ssh_hostkey_verify(plan, link, options, err);
}

int ssh_link_open(const struct node_ssh *desc, const char *host_name,
		  const struct node_options *options, unsigned depth, struct ssh_link *link,
		  struct node_error *err)
{
	struct ssh_hostkey_plan *plan = NULL;
	uint16_t port = desc->port ? desc->port : 22;
	int r, attempts = 0;

	if (depth > NODE_BASTION_DEPTH_MAX)
		return node_fail(err, MLB_EINPUT, host_name, "more than %d bastions in a chain",
				 NODE_BASTION_DEPTH_MAX);

	r = ssh_hostkey_plan_new(desc, host_name, &plan, err);
	if (r < 0)
		return r;

	for (;;) {
		*link = (struct ssh_link)SSH_LINK_INIT;
		snprintf(link->label, sizeof(link->label), "%s port %u", desc->address, (unsigned)port);
		r = handshake_once(desc, host_name, options, depth, plan, link, err);
		if (r != 1)
			break;
		/* Each host key type needs its own handshake; there are few types. */
		ssh_link_close(link);
		if (++attempts > 8) {
			r = node_fail(err, -EPROTO, host_name, "too many handshakes with %s",
				      link->label);
			break;
		}
	}
	if (r < 0)
		goto out;

	r = ssh_authenticate(link, desc, host_name, node_now_ms() + options->auth_timeout_ms, err);
	if (r < 0)
		goto out;

	link->keepalive_interval_s = options->keepalive_interval_s;
	libssh2_keepalive_config(link->session, 1, options->keepalive_interval_s);
	log_debug("host '%s': connected to %s as the SSH session of %s", host_name, link->label,
		  depth ? "a bastion" : "the host");
out:
	ssh_hostkey_plan_free(plan);
	if (r < 0)
		ssh_link_close(link);
	return r;
}

/* The SSH transport's session state. */
struct ssh_state {
	struct ssh_link link;
};

int node_ssh_open(struct node_session *session, struct node_error *err)
{
	struct ssh_state *state;
	int r;

	state = calloc(1, sizeof(*state));
	if (!state)
		return node_fail(err, -ENOMEM, session->host->name, "out of memory");
	r = ssh_link_open(&session->host->ssh, session->host->name, &session->options, 0,
			  &state->link, err);
	if (r < 0) {
		free(state);
		return r;
	}
	session->state = state;
	return 0;
}

static void ssh_close(struct node_session *session)
{
	struct ssh_state *state = session->state;

	if (!state)
		return;
	ssh_link_close(&state->link);
	free(state);
	session->state = NULL;
}

/*
 * Takes the exit status line off the end of stderr. The wrapper prints it
 * after the command exits, so it is the last line of the stream. A command
 * that prints a line of the same form earlier cannot pass for it.
 */
static int take_exit_status(struct node_capture *capture, struct node_result *result)
{
	static const char marker[] = "\n" EXIT_STATUS_MARKER;
	const char *tail = capture->tail, *found = NULL;
	size_t tail_len = capture->tail_len, trailer_len;
	long status;
	char *end;

	if (tail_len < sizeof(marker) + 1 || tail[tail_len - 1] != '\n')
		return -EPROTO;
	for (size_t i = tail_len - (sizeof(marker) - 1); i-- > 0; )
		if (memcmp(tail + i, marker, sizeof(marker) - 1) == 0) {
			found = tail + i;
			break;
		}
	if (!found)
		return -EPROTO;
	errno = 0;
	status = strtol(found + sizeof(marker) - 1, &end, 10);
	if (errno || end != tail + tail_len - 1 || end == found + sizeof(marker) - 1 ||
	    status < 0 || status > 255)
		return -EPROTO;
	result->exit_status = (int)status;

	/* Remove the trailer from the kept bytes, as far as they reach into it. */
	trailer_len = (size_t)(tail + tail_len - found);
	if (capture->total - trailer_len < result->err.len) {
		result->err.len = (size_t)(capture->total - trailer_len);
		result->err.data[result->err.len] = '\0';
		if (capture->total - trailer_len <= capture->max)
			result->err_truncated = false;
	}
	return 0;
}

struct ssh_run {
	struct ssh_link *link;
	const char *host_name;
	LIBSSH2_CHANNEL *channel;
	int64_t deadline;
	char *stdin_buffer;
	size_t stdin_offset, stdin_pending, stdin_used, stdin_data_offset;
	bool stdin_done, eof_sent;
};

/* Opens a session channel and starts the command on it. */
static int channel_start(struct ssh_run *run, const char *command_line, struct node_error *err)
{
	int rc, r;

	while (!(run->channel = libssh2_channel_open_session(run->link->session))) {
		rc = libssh2_session_last_errno(run->link->session);
		if (rc != LIBSSH2_ERROR_EAGAIN)
			return node_fail(err, ssh_result(rc) == -EPROTO ? MLB_EUNREACHABLE : ssh_result(rc),
					 run->host_name, "cannot open an SSH channel on %s: %s",
					 run->link->label, ssh_link_error(run->link));
		r = ssh_link_wait(run->link, run->deadline);
		if (r < 0)
			return node_fail(err, r, run->host_name, "opening an SSH channel on %s: %s",
					 run->link->label, strerror(-r));
	}
	while ((rc = libssh2_channel_exec(run->channel, command_line)) == LIBSSH2_ERROR_EAGAIN) {
		r = ssh_link_wait(run->link, run->deadline);
		if (r < 0)
			return node_fail(err, r, run->host_name, "starting a command on %s: %s",
					 run->link->label, strerror(-r));
	}
	if (rc != 0)
		return node_fail(err, ssh_result(rc) == -EPROTO ? MLB_EUNREACHABLE : ssh_result(rc),
				 run->host_name, "the server on %s did not start the command: %s",
				 run->link->label, ssh_link_error(run->link));
	return 0;
}

/* Sends as much stdin as the channel takes now; returns bytes moved or a negative result. */
static ssize_t pump_stdin(struct ssh_run *run, const struct node_command *command)
{
	ssize_t moved = 0;

	while (!run->stdin_done) {
		ssize_t n;

		if (run->stdin_pending == 0) {
			n = node_command_read_stdin(command, &run->stdin_data_offset,
						    run->stdin_buffer, SSH_STDIN_CHUNK);
			if (n < 0)
				return n;
			if (n == 0) {
				run->stdin_done = true;
				break;
			}
			run->stdin_offset = 0;
			run->stdin_pending = (size_t)n;
		}
		n = libssh2_channel_write(run->channel, run->stdin_buffer + run->stdin_offset,
					  run->stdin_pending);
		if (n == LIBSSH2_ERROR_EAGAIN || n == 0)
			break;
		if (n == LIBSSH2_ERROR_CHANNEL_CLOSED || n == LIBSSH2_ERROR_CHANNEL_EOF_SENT) {
			/* The command exited without reading all its input. */
			run->stdin_done = true;
			run->eof_sent = true;
			break;
		}
		if (n < 0)
			return ssh_result((int)n) == -EPROTO ? MLB_EUNREACHABLE : ssh_result((int)n);
		run->stdin_offset += (size_t)n;
		run->stdin_pending -= (size_t)n;
		moved += n;
	}
	if (run->stdin_done && !run->eof_sent) {
		int rc = libssh2_channel_send_eof(run->channel);

		if (rc == 0 || rc == LIBSSH2_ERROR_CHANNEL_CLOSED)
			run->eof_sent = true;
		else if (rc != LIBSSH2_ERROR_EAGAIN)
			return ssh_result(rc) == -EPROTO ? MLB_EUNREACHABLE : ssh_result(rc);
		if (run->eof_sent)
			moved++;
	}
	return moved;
}

/* Reads what has arrived on one stream; returns bytes read or a negative result. */
static ssize_t pump_output(struct ssh_run *run, int stream, struct node_capture *capture,
			   char *buffer)
{
	ssize_t moved = 0;

	for (;;) {
		ssize_t n = libssh2_channel_read_ex(run->channel, stream, buffer, SSH_READ_CHUNK);

		if (n == LIBSSH2_ERROR_EAGAIN || n == 0)
			break;
		if (n < 0)
			return ssh_result((int)n) == -EPROTO ? MLB_EUNREACHABLE : ssh_result((int)n);
		if (node_capture_append(capture, buffer, (size_t)n) < 0)
			return -ENOMEM;
		moved += n;
	}
	return moved;
}

static void channel_finish(struct ssh_run *run)
{
	int64_t deadline = node_now_ms() + SSH_CLOSE_TIMEOUT_MS;
	int rc;

	if (!run->channel)
		return;
	while ((rc = libssh2_channel_close(run->channel)) == LIBSSH2_ERROR_EAGAIN)
		if (ssh_link_wait(run->link, deadline) < 0)
			break;
	if (rc == 0)
		while ((rc = libssh2_channel_wait_closed(run->channel)) == LIBSSH2_ERROR_EAGAIN)
			if (ssh_link_wait(run->link, deadline) < 0)
				break;
	if (rc != 0 && rc != LIBSSH2_ERROR_CHANNEL_CLOSED)
		run->link->broken = true;
	libssh2_channel_free(run->channel);
	run->channel = NULL;
}

static int ssh_run(struct node_session *session, const struct node_command *command,
		   const char *const *argv, int64_t deadline_ms, struct node_result *result,
		   struct node_error *err)
{
	struct ssh_state *state = session->state;
	const char *host_name = session->host->name;
	struct ssh_run run = { .link = &state->link, .host_name = host_name,
			       .deadline = deadline_ms };
	struct node_capture out, errors;
	struct buf command_line = BUF_INIT(1 << 20);
	char *read_buffer = NULL;
	int r;

	if (state->link.broken)
		return node_fail(err, MLB_EUNREACHABLE, host_name,
				 "the SSH session to %s failed earlier; connect again",
				 state->link.label);

	node_capture_init(&out, &result->out,
			  command->stdout_max ? command->stdout_max : NODE_OUTPUT_DEFAULT_MAX,
			  &result->out_truncated);
	node_capture_init(&errors, &result->err,
			  command->stderr_max ? command->stderr_max : NODE_OUTPUT_DEFAULT_MAX,
			  &result->err_truncated);

	r = buf_append_str(&command_line, remote_wrapper);
	if (r == 0)
		r = node_quote_argv(argv, &command_line);
	if (r < 0) {
		r = node_fail(err, r == -E2BIG ? MLB_EINPUT : r, host_name,
			      "command line longer than 1 MiB");
		goto out;
	}

	run.stdin_buffer = malloc(SSH_STDIN_CHUNK);
	read_buffer = malloc(SSH_READ_CHUNK);
	if (!run.stdin_buffer || !read_buffer) {
		r = node_fail(err, -ENOMEM, host_name, "out of memory");
		goto out;
	}

	r = channel_start(&run, buf_str(&command_line), err);
	if (r < 0)
		goto fail_link;

	for (;;) {
		ssize_t sent, got_out, got_err;

		sent = pump_stdin(&run, command);
		if (sent < 0 && sent != MLB_EUNREACHABLE) {
			r = node_fail(err, (int)sent, host_name, "reading the command's input failed: %s",
				      mlb_strerror((int)sent));
			goto fail_link;
		}
		got_out = pump_output(&run, 0, &out, read_buffer);
		got_err = pump_output(&run, SSH_EXTENDED_DATA_STDERR, &errors, read_buffer);
		if (sent == MLB_EUNREACHABLE || got_out < 0 || got_err < 0) {
			r = node_fail(err, got_out == -ENOMEM || got_err == -ENOMEM ? -ENOMEM :
				      MLB_EUNREACHABLE, host_name,
				      "connection to %s lost while running '%s': %s", run.link->label,
				      argv[0], ssh_link_error(run.link));
			goto fail_link;
		}
		if (libssh2_channel_eof(run.channel))
			break;
		if (sent > 0 || got_out > 0 || got_err > 0)
			continue;

		r = ssh_link_wait(run.link, run.deadline);
		if (r == -ETIMEDOUT) {
			r = node_fail(err, -ETIMEDOUT, host_name,
				      "command '%s' did not finish within its time limit; it may "
				      "still run on the host", argv[0]);
			goto fail_link;
		}
		if (r < 0) {
			r = node_fail(err, MLB_EUNREACHABLE, host_name, "waiting for %s: %s",
				      run.link->label, strerror(-r));
			goto fail_link;
		}
	}

	channel_finish(&run);
	r = take_exit_status(&errors, result);
	if (r < 0) {
		char text[256];

		node_escape_text(errors.tail, errors.tail_len, text, sizeof(text));
		r = node_fail(err, -EPROTO, host_name,
			      "command '%s' ended without reporting an exit status (the login "
			      "shell must be a POSIX shell; last bytes of stderr: \"%s\")", argv[0],
			      text);
	}
	goto out;

fail_link:
	/* A half-finished exchange can leave the session out of step: use it no more. */
	if (run.channel) {
		channel_finish(&run);
		if (r == MLB_EUNREACHABLE || r == -ETIMEDOUT)
			state->link.broken = true;
	}
out:
	if (run.channel)
		channel_finish(&run);
	free(run.stdin_buffer);
	free(read_buffer);
	buf_release(&command_line);
	return r;
}

const struct node_transport node_ssh_transport = {
	.run = ssh_run,
	.close = ssh_close,
};
