/*
 * Host descriptions, sessions and commands: what the SSH and local
 * transports share.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "error.h"
#include "log.h"
#include "node-internal.h"

/* sudo's own messages when it would need a password (sudo 1.9, plugins/sudoers). */
static const char *const sudo_password_messages[] = {
	"sudo: a password is required",
	"sudo: a terminal is required to read the password",
	"sudo: no tty present and no askpass program specified",
};

void node_options_init(struct node_options *options)
{
	memset(options, 0, sizeof(*options));
	options->connect_timeout_ms = 10 * 1000;
	options->handshake_timeout_ms = 15 * 1000;
	options->auth_timeout_ms = 15 * 1000;
	options->command_timeout_ms = 10 * 60 * 1000;
	options->keepalive_interval_s = 15;
	options->accept_new_host_keys = false;
}

void node_host_init(struct node_host *host)
{
	memset(host, 0, sizeof(*host));
	host->role = NODE_ROLE_WORKER;
}

void node_ssh_release(struct node_ssh *ssh)
{
	if (!ssh)
		return;
	free(ssh->address);
	free(ssh->user);
	free(ssh->key_path);
	free(ssh->passphrase_env);
	free(ssh->host_key);
	free(ssh->known_hosts);
	if (ssh->bastion) {
		node_ssh_release(ssh->bastion);
		free(ssh->bastion);
	}
	memset(ssh, 0, sizeof(*ssh));
}

void node_host_release(struct node_host *host)
{
	if (!host)
		return;
	free(host->name);
	node_ssh_release(&host->ssh);
	node_host_init(host);
}

bool node_host_key_is_valid(const char *text)
{
	const char *fingerprint = text;
	const char *space;

	if (!text)
		return false;
	space = strchr(text, ' ');
	if (space) {
		size_t type_len = (size_t)(space - text);

		if (type_len == 0 || type_len > 63)
			return false;
		for (size_t i = 0; i < type_len; i++)
			if (text[i] <= ' ' || text[i] > '~')
				return false;
		fingerprint = space + 1;
	}
	if (strlen(fingerprint) != NODE_FINGERPRINT_LEN || strncmp(fingerprint, "SHA256:", 7) != 0)
		return false;
	for (const char *p = fingerprint + 7; *p; p++)
		if (!strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/", *p))
			return false;
	return true;
}

static int validate_ssh(const struct node_ssh *ssh, const char *host_name, const char *what,
			unsigned depth, struct node_error *err)
{
	if (depth > NODE_BASTION_DEPTH_MAX)
		return node_fail(err, MLB_EINPUT, host_name,
				 "more than %d bastions in a chain", NODE_BASTION_DEPTH_MAX);
	if (!ssh->address || !ssh->address[0])
		return node_fail(err, MLB_EINPUT, host_name, "%s: missing address", what);
	if (strlen(ssh->address) > NODE_NAME_MAX || strpbrk(ssh->address, " \t\r\n/[]"))
		return node_fail(err, MLB_EINPUT, host_name, "%s: invalid address '%.64s'", what,
				 ssh->address);
	if (ssh->user && (!ssh->user[0] || strlen(ssh->user) > NODE_NAME_MAX))
		return node_fail(err, MLB_EINPUT, host_name, "%s: invalid user", what);
	if (ssh->key_path && (!ssh->key_path[0] || strlen(ssh->key_path) >= NODE_PATH_MAX))
		return node_fail(err, MLB_EINPUT, host_name, "%s: invalid keyPath", what);
	if (ssh->known_hosts && (!ssh->known_hosts[0] || strlen(ssh->known_hosts) >= NODE_PATH_MAX))
		return node_fail(err, MLB_EINPUT, host_name, "%s: invalid knownHosts path", what);
	if (ssh->passphrase_env && !ssh->passphrase_env[0])
		return node_fail(err, MLB_EINPUT, host_name, "%s: empty passphraseEnv", what);
	if (ssh->host_key && !node_host_key_is_valid(ssh->host_key))
		return node_fail(err, MLB_EINPUT, host_name,
				 "%s: invalid hostKey '%.80s': expected \"SHA256:\" and 43 base64 "
				 "characters, as 'ssh-keygen -lf KEY.pub' prints", what, ssh->host_key);
	if (ssh->bastion)
		return validate_ssh(ssh->bastion, host_name, "bastion", depth + 1, err);
	return 0;
}

int node_host_validate(const struct node_host *host, struct node_error *err)
{
	const char *name = host->name ? host->name : "(unnamed)";

	if (!host->name || !host->name[0] || strlen(host->name) > NODE_NAME_MAX)
		return node_fail(err, MLB_EINPUT, name, "invalid or missing name");
	if (host->local)
		return 0;
	return validate_ssh(&host->ssh, name, "ssh", 0, err);
}

void node_escape_text(const char *text, size_t len, char *out, size_t out_size)
{
	size_t used = 0;

	if (out_size == 0)
		return;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)text[i];
		char piece[8];
		size_t piece_len;

		if (c == '\n')
			piece_len = (size_t)snprintf(piece, sizeof(piece), "\\n");
		else if (c == '\t')
			piece_len = (size_t)snprintf(piece, sizeof(piece), "\\t");
		else if (c < 0x20 || c > 0x7e || c == '\\')
			piece_len = (size_t)snprintf(piece, sizeof(piece), "\\x%02x", c);
		else {
			piece[0] = (char)c;
			piece_len = 1;
		}
		if (used + piece_len >= out_size)
			break;
		memcpy(out + used, piece, piece_len);
		used += piece_len;
	}
	out[used] = '\0';
}

int node_vfail(struct node_error *err, int r, const char *host_name, const char *format,
	       va_list args)
{
	char message[NODE_ERROR_MAX];
	int prefix;

	prefix = snprintf(message, sizeof(message), "host '%s': ", host_name ? host_name : "?");
	if (prefix < 0 || (size_t)prefix >= sizeof(message))
		prefix = 0;
	vsnprintf(message + prefix, sizeof(message) - (size_t)prefix, format, args);
	log_debug("%s", message);
	if (err)
		memcpy(err->message, message, sizeof(message));
	return r;
}

int node_fail(struct node_error *err, int r, const char *host_name, const char *format, ...)
{
	va_list args;

	va_start(args, format);
	node_vfail(err, r, host_name, format, args);
	va_end(args);
	return r;
}

int64_t node_now_ms(void)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

int node_remaining_ms(int64_t deadline_ms)
{
	int64_t left = deadline_ms - node_now_ms();

	if (left < 0)
		return 0;
	if (left > INT32_MAX)
		return INT32_MAX;
	return (int)left;
}

void node_capture_init(struct node_capture *capture, struct buf *buf, size_t max,
		       bool *truncated)
{
	memset(capture, 0, sizeof(*capture));
	capture->buf = buf;
	capture->max = max;
	capture->truncated = truncated;
}

int node_capture_append(struct node_capture *capture, const char *data, size_t len)
{
	size_t room = capture->buf->len < capture->max ? capture->max - capture->buf->len : 0;
	size_t keep = len < room ? len : room;
	int r = 0;

	if (keep > 0)
		r = buf_append(capture->buf, data, keep);
	if (keep < len)
		*capture->truncated = true;
	capture->total += len;

	if (len >= NODE_TAIL_MAX) {
		memcpy(capture->tail, data + len - NODE_TAIL_MAX, NODE_TAIL_MAX);
		capture->tail_len = NODE_TAIL_MAX;
	} else {
		size_t drop = capture->tail_len + len > NODE_TAIL_MAX ?
			      capture->tail_len + len - NODE_TAIL_MAX : 0;

		memmove(capture->tail, capture->tail + drop, capture->tail_len - drop);
		memcpy(capture->tail + capture->tail_len - drop, data, len);
		capture->tail_len += len - drop;
	}
	return r;
}

ssize_t node_command_read_stdin(const struct node_command *command, size_t *offset,
				void *buffer, size_t size)
{
	if (command->stdin_read)
		return command->stdin_read(command->stdin_context, buffer, size);
	if (!command->stdin_data || *offset >= command->stdin_len)
		return 0;
	if (size > command->stdin_len - *offset)
		size = command->stdin_len - *offset;
	memcpy(buffer, (const char *)command->stdin_data + *offset, size);
	*offset += size;
	return (ssize_t)size;
}

void node_result_init(struct node_result *result)
{
	memset(result, 0, sizeof(*result));
	buf_init(&result->out, NODE_OUTPUT_HARD_MAX);
	buf_init(&result->err, NODE_OUTPUT_HARD_MAX);
}

void node_result_release(struct node_result *result)
{
	if (!result)
		return;
	buf_release(&result->out);
	buf_release(&result->err);
	node_result_init(result);
}

int node_connect(const struct node_host *host, const struct node_options *options,
		 struct node_session **out, struct node_error *err)
{
	struct node_session *session = NULL;
	int r;

	*out = NULL;
	r = node_host_validate(host, err);
	if (r < 0)
		return r;

	session = calloc(1, sizeof(*session));
	if (!session)
		return node_fail(err, -ENOMEM, host->name, "out of memory");
	session->host = host;
	if (options)
		session->options = *options;
	else
		node_options_init(&session->options);

	if (host->local) {
		session->transport = &node_local_transport;
	} else {
		session->transport = &node_ssh_transport;
		r = node_ssh_open(session, err);
		if (r < 0)
			goto out;
	}
	*out = session;
	session = NULL;
	r = 0;
out:
	free(session);
	return r;
}

void node_close(struct node_session *session)
{
	if (!session)
		return;
	if (session->transport && session->transport->close)
		session->transport->close(session);
	free(session);
}

const struct node_host *node_session_host(const struct node_session *session)
{
	return session->host;
}

/* Whether a failed command's stderr shows that sudo wanted a password. */
static bool sudo_wants_password(const struct node_result *result)
{
	const char *text = buf_str(&result->err);

	if (result->exit_status != 1)
		return false;
	for (size_t i = 0; i < sizeof(sudo_password_messages) / sizeof(sudo_password_messages[0]); i++) {
		const char *found = strstr(text, sudo_password_messages[i]);

		/* sudo prints its messages at the start of a line. */
		if (found && (found == text || found[-1] == '\n'))
			return true;
	}
	return false;
}

int node_run(struct node_session *session, const struct node_command *command,
	     struct node_result *result, struct node_error *err)
{
	const struct node_host *host = session->host;
	const char **argv = NULL;
	size_t argc = 0, prefix = 0;
	unsigned timeout_ms;
	int r;

	buf_reset(&result->out);
	buf_reset(&result->err);
	result->exit_status = -1;
	result->out_truncated = false;
	result->err_truncated = false;

	if (!command->argv || !command->argv[0] || !command->argv[0][0])
		return node_fail(err, -EINVAL, host->name, "empty command");
	while (command->argv[argc])
		argc++;

	prefix = host->sudo ? 3 : 0;
	argv = calloc(argc + prefix + 1, sizeof(*argv));
	if (!argv)
		return node_fail(err, -ENOMEM, host->name, "out of memory");
	if (host->sudo) {
		argv[0] = "sudo";
		argv[1] = "-n";
		argv[2] = "--";
	}
	for (size_t i = 0; i < argc; i++)
		argv[prefix + i] = command->argv[i];

	timeout_ms = command->timeout_ms ? command->timeout_ms : session->options.command_timeout_ms;
	if (timeout_ms == 0)
		timeout_ms = 10 * 60 * 1000;
	r = session->transport->run(session, command, argv, node_now_ms() + timeout_ms, result,
				    err);
	if (r < 0)
		goto out;

	if (host->sudo && sudo_wants_password(result)) {
		char user[NODE_NAME_MAX + 16] = "mlboot's user";

		if (!host->local && host->ssh.user)
			snprintf(user, sizeof(user), "user '%s'", host->ssh.user);
		else if (!host->local)
			snprintf(user, sizeof(user), "the login user");
		r = node_fail(err, MLB_EDENIED, host->name,
			      "sudo requires a password for %s, and mlboot never types one. Allow "
			      "passwordless sudo (a NOPASSWD rule in /etc/sudoers.d) for this user, "
			      "or connect as root and set sudo: false", user);
		goto out;
	}
	r = 0;
out:
	free(argv);
	return r;
}
