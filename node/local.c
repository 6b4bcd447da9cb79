/*
 * The local transport runs commands on the host mlboot runs on. They are
 * started with posix_spawnp(), which is safe in a threaded program, unlike
 * fork() followed by anything but exec. Each command gets its own process
 * group, so that a timeout can kill the command and everything it started.
 *
 * Standard input is a Unix socketpair rather than a pipe, so that writing
 * to a command that has exited fails with EPIPE through MSG_NOSIGNAL instead
 * of raising SIGPIPE in mlboot.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "error.h"
#include "log.h"
#include "node-internal.h"

#define LOCAL_CHUNK (256 * 1024)
#define LOCAL_REAP_POLL_MS 10

extern char **environ;

struct local_run {
	pid_t pid;
	int in, out, err;                 /* our ends; -1 once closed */
	char *in_buffer, *read_buffer;
	size_t in_offset, in_len, data_offset;
	bool in_done;
};

static void close_fd(int *fd)
{
	if (*fd >= 0) {
		close(*fd);
		*fd = -1;
	}
}

static int spawn_command(const char *const *argv, struct local_run *run)
{
	posix_spawn_file_actions_t actions;
	posix_spawnattr_t attributes;
	int in[2] = { -1, -1 }, out[2] = { -1, -1 }, err[2] = { -1, -1 };
	sigset_t empty, defaults;
	int r;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, in) < 0 ||
	    pipe2(out, O_CLOEXEC) < 0 || pipe2(err, O_CLOEXEC) < 0) {
		r = -errno;
		goto fail_pipes;
	}

	posix_spawn_file_actions_init(&actions);
	posix_spawn_file_actions_adddup2(&actions, in[1], STDIN_FILENO);
	posix_spawn_file_actions_adddup2(&actions, out[1], STDOUT_FILENO);
	posix_spawn_file_actions_adddup2(&actions, err[1], STDERR_FILENO);
	posix_spawnattr_init(&attributes);
	sigemptyset(&empty);
	sigemptyset(&defaults);
	sigaddset(&defaults, SIGPIPE);
	posix_spawnattr_setsigmask(&attributes, &empty);
	posix_spawnattr_setsigdefault(&attributes, &defaults);
	posix_spawnattr_setpgroup(&attributes, 0);
	posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK |
				 POSIX_SPAWN_SETSIGDEF);

	r = -posix_spawnp(&run->pid, argv[0], &actions, &attributes, (char *const *)argv, environ);
	posix_spawn_file_actions_destroy(&actions);
	posix_spawnattr_destroy(&attributes);
	if (r < 0)
		goto fail_pipes;

	close(in[1]);
	close(out[1]);
	close(err[1]);
	run->in = in[0];
	run->out = out[0];
	run->err = err[0];
	fcntl(run->in, F_SETFL, O_NONBLOCK);
	fcntl(run->out, F_SETFL, O_NONBLOCK);
	fcntl(run->err, F_SETFL, O_NONBLOCK);
	return 0;

fail_pipes:
	for (int i = 0; i < 2; i++) {
		close_fd(&in[i]);
		close_fd(&out[i]);
		close_fd(&err[i]);
	}
	return r;
}

/* Moves stdin into the command's socket; returns bytes moved or a negative result. */
static ssize_t pump_stdin(struct local_run *run, const struct node_command *command)
{
	ssize_t moved = 0;

	while (!run->in_done) {
		ssize_t n;

		if (run->in_len == 0) {
			n = node_command_read_stdin(command, &run->data_offset, run->in_buffer,
						    LOCAL_CHUNK);
			if (n < 0)
				return n;
			if (n == 0) {
				run->in_done = true;
				break;
			}
			run->in_offset = 0;
			run->in_len = (size_t)n;
		}
		n = send(run->in, run->in_buffer + run->in_offset, run->in_len, MSG_NOSIGNAL);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			break;
		if (n < 0) {
			/* The command exited or closed its input without reading all of it. */
			run->in_done = true;
			break;
		}
		run->in_offset += (size_t)n;
		run->in_len -= (size_t)n;
		moved += n;
	}
	if (run->in_done && run->in >= 0) {
		close_fd(&run->in);
		moved++;
	}
	return moved;
}

static ssize_t pump_output(int *fd, struct node_capture *capture, char *buffer)
{
	ssize_t moved = 0;

	while (*fd >= 0) {
		ssize_t n = read(*fd, buffer, LOCAL_CHUNK);

		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			break;
		if (n <= 0) {
			close_fd(fd);
			moved++;
			break;
		}
		if (node_capture_append(capture, buffer, (size_t)n) < 0)
			return -ENOMEM;
		moved += n;
	}
	return moved;
}

static int exit_status_of(int status)
{
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return 255;
}

/* Kills the command's process group and reaps it. */
static void kill_command(struct local_run *run)
{
	int status;

	kill(-run->pid, SIGKILL);
	while (waitpid(run->pid, &status, 0) < 0 && errno == EINTR)
		;
	run->pid = 0;
}

static int local_run(struct node_session *session, const struct node_command *command,
		     const char *const *argv, int64_t deadline_ms, struct node_result *result,
		     struct node_error *err)
{
	const char *host_name = session->host->name;
	struct local_run run = { .in = -1, .out = -1, .err = -1 };
	struct node_capture out, errors;
	int status = 0, r;

	node_capture_init(&out, &result->out,
			  command->stdout_max ? command->stdout_max : NODE_OUTPUT_DEFAULT_MAX,
			  &result->out_truncated);
	node_capture_init(&errors, &result->err,
			  command->stderr_max ? command->stderr_max : NODE_OUTPUT_DEFAULT_MAX,
			  &result->err_truncated);
	run.in_buffer = malloc(LOCAL_CHUNK);
	run.read_buffer = malloc(LOCAL_CHUNK);
	if (!run.in_buffer || !run.read_buffer) {
		r = node_fail(err, -ENOMEM, host_name, "out of memory");
		goto out;
	}

	r = spawn_command(argv, &run);
	if (r == -ENOENT || r == -EACCES) {
		/* Report what a shell reports, so both transports look alike to callers. */
		result->exit_status = r == -ENOENT ? 127 : 126;
		buf_printf(&result->err, "mlboot: %s: %s\n", argv[0],
			   r == -ENOENT ? "command not found" : "permission denied");
		r = 0;
		goto out;
	}
	if (r < 0) {
		r = node_fail(err, r, host_name, "cannot start '%s': %s", argv[0], strerror(-r));
		goto out;
	}

	while (run.out >= 0 || run.err >= 0) {
		struct pollfd fds[3];
		nfds_t count = 0;
		ssize_t sent, got_out, got_err;
		int timeout;

		sent = pump_stdin(&run, command);
		if (sent < 0) {
			kill_command(&run);
			r = node_fail(err, (int)sent, host_name, "reading the input of '%s' failed: %s",
				      argv[0], mlb_strerror((int)sent));
			goto out;
		}
		got_out = pump_output(&run.out, &out, run.read_buffer);
		got_err = pump_output(&run.err, &errors, run.read_buffer);
		if (got_out < 0 || got_err < 0) {
			kill_command(&run);
			r = node_fail(err, -ENOMEM, host_name, "out of memory");
			goto out;
		}
		if (sent > 0 || got_out > 0 || got_err > 0)
			continue;

		timeout = node_remaining_ms(deadline_ms);
		if (timeout == 0) {
			kill_command(&run);
			r = node_fail(err, -ETIMEDOUT, host_name,
				      "command '%s' did not finish within its time limit and was "
				      "killed", argv[0]);
			goto out;
		}
		if (run.in >= 0 && run.in_len > 0)
			fds[count++] = (struct pollfd){ .fd = run.in, .events = POLLOUT };
		if (run.out >= 0)
			fds[count++] = (struct pollfd){ .fd = run.out, .events = POLLIN };
		if (run.err >= 0)
			fds[count++] = (struct pollfd){ .fd = run.err, .events = POLLIN };
		if (poll(fds, count, timeout) < 0 && errno != EINTR) {
			r = -errno;
			kill_command(&run);
			r = node_fail(err, r, host_name, "poll failed: %s", strerror(-r));
			goto out;
		}
	}

	/* Both outputs are closed; the command has exited or is about to. */
	for (;;) {
		pid_t done = waitpid(run.pid, &status, WNOHANG);

		if (done == run.pid)
			break;
		if (done < 0 && errno != EINTR) {
			r = node_fail(err, -errno, host_name, "waitpid failed: %s", strerror(errno));
			goto out;
		}
		if (node_remaining_ms(deadline_ms) == 0) {
			kill_command(&run);
			r = node_fail(err, -ETIMEDOUT, host_name,
				      "command '%s' did not exit within its time limit and was killed",
				      argv[0]);
			goto out;
		}
		poll(NULL, 0, LOCAL_REAP_POLL_MS);
	}
	run.pid = 0;
	result->exit_status = exit_status_of(status);
	r = 0;
out:
	close_fd(&run.in);
	close_fd(&run.out);
	close_fd(&run.err);
	free(run.in_buffer);
	free(run.read_buffer);
	return r;
}

static void local_close(struct node_session *session)
{
	(void)session;
}

const struct node_transport node_local_transport = {
	.run = local_run,
	.close = local_close,
};
