/*
 * Exec credential plugins (client.authentication.k8s.io v1 and v1beta1):
 * run the kubeconfig's command, read an ExecCredential from its stdout.
 * The plugin's output contains the token or key, so none of it is logged.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "kube_private.h"

#define EXEC_STDOUT_MAX (1UL * 1024 * 1024)
#define EXEC_STDERR_MAX (64UL * 1024)
#define EXEC_ENV_MAX 4096
#define EXEC_INFO_MAX (2UL * 1024 * 1024)

extern char **environ;

struct exec_run {
	pid_t pid;
	int stdout_fd;
	int stderr_fd;
	int error_fd;            /* reports the errno of a failed execvpe() */
	struct buf output;       /* secret */
	struct buf errors;
	int exec_errno;
	int status;
	bool timed_out;
	bool output_too_large;
};

static long long now_ms(void)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (long long)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

static int json_field(struct buf *out, const char *key, const char *value, bool comma)
{
	int r = buf_printf(out, "%s\"%s\":", comma ? "," : "", key);

	if (r == 0)
		r = doc_write_json_string(out, value, strlen(value));
	return r;
}

/* Builds KUBERNETES_EXEC_INFO: an ExecCredential with spec.interactive false and, when asked for, spec.cluster. */
static int build_exec_info(const struct kube_credentials *credentials, struct buf *out)
{
	const struct kube_exec *exec = credentials->exec;
	unsigned char *encoded = NULL;
	int r;

	r = buf_append_str(out, "KUBERNETES_EXEC_INFO={");
	if (r == 0)
		r = json_field(out, "apiVersion", exec->api_version, false);
	if (r == 0)
		r = buf_append_str(out, ",\"kind\":\"ExecCredential\",\"spec\":{\"interactive\":false");
	if (r == 0 && exec->provide_cluster_info) {
		r = buf_append_str(out, ",\"cluster\":{");
		if (r == 0)
			r = json_field(out, "server", credentials->server, false);
		if (r == 0 && credentials->tls_server_name)
			r = json_field(out, "tls-server-name", credentials->tls_server_name, true);
		if (r == 0 && credentials->proxy_url)
			r = json_field(out, "proxy-url", credentials->proxy_url, true);
		if (r == 0 && credentials->insecure_skip_tls_verify)
			r = buf_append_str(out, ",\"insecure-skip-tls-verify\":true");
		if (r == 0 && credentials->ca_pem.len > 0) {
			size_t size = 4 * ((credentials->ca_pem.len + 2) / 3) + 1;

			encoded = malloc(size);
			if (!encoded) {
				r = -ENOMEM;
				goto out;
			}
			EVP_EncodeBlock(encoded, (const unsigned char *)credentials->ca_pem.data,
					(int)credentials->ca_pem.len);
			r = json_field(out, "certificate-authority-data", (const char *)encoded, true);
		}
		if (r == 0)
			r = buf_append_char(out, '}');
	}
	if (r == 0)
		r = buf_append_str(out, "}}");
out:
	free(encoded);
	return r;
}

static bool env_overridden(const char *entry, char *const *overrides)
{
	size_t name_len = strcspn(entry, "=");

	for (size_t i = 0; overrides && overrides[i]; i++)
		if (strncmp(overrides[i], entry, name_len) == 0 && overrides[i][name_len] == '=')
			return true;
	return false;
}

/* The plugin's environment: ours, then the kubeconfig's env (which wins, as in Go's os/exec), then the exec info. */
static int build_environment(const struct kube_exec *exec, char *exec_info, char ***out)
{
	size_t count = 0, n = 0;
	char **env;

	for (char **e = environ; e && *e; e++)
		count++;
	for (char **e = exec->env; e && *e; e++)
		count++;
	if (count + 2 > EXEC_ENV_MAX)
		return kube_fail(MLB_EINPUT, "the exec plugin environment has more than %d variables", EXEC_ENV_MAX);
	env = calloc(count + 2, sizeof(*env));
	if (!env)
		return -ENOMEM;
	for (char **e = environ; e && *e; e++) {
		char *overrides[] = { exec_info, NULL };

		if (!env_overridden(*e, exec->env) && !env_overridden(*e, overrides))
			env[n++] = *e;
	}
	for (char **e = exec->env; e && *e; e++)
		env[n++] = *e;
	env[n] = exec_info;
	*out = env;
	return 0;
}

static int build_argv(const struct kube_exec *exec, char ***out)
{
	size_t count = 0;
	char **argv;

	for (char **a = exec->args; a && *a; a++)
		count++;
	argv = calloc(count + 2, sizeof(*argv));
	if (!argv)
		return -ENOMEM;
	argv[0] = exec->command;
	for (size_t i = 0; i < count; i++)
		argv[i + 1] = exec->args[i];
	*out = argv;
	return 0;
}

/* Only async-signal-safe calls between fork() and exec. */
static void exec_child(int null_fd, int stdout_fd, int stderr_fd, int error_fd,
		       const char *command, char **argv, char **env)
{
	int saved;

	setpgid(0, 0);
	if (dup2(null_fd, STDIN_FILENO) < 0 || dup2(stdout_fd, STDOUT_FILENO) < 0 ||
	    dup2(stderr_fd, STDERR_FILENO) < 0)
		_exit(126);
	execvpe(command, argv, env);
	saved = errno;
	(void)!write(error_fd, &saved, sizeof(saved));
	_exit(127);
}

static void drain(int *fd, struct buf *into, bool *too_large, bool keep_excess_silently)
{
	char chunk[16384];
	ssize_t n = read(*fd, chunk, sizeof(chunk));

	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return;
	if (n <= 0) {
		close(*fd);
		*fd = -1;
		return;
	}
	if (buf_append(into, chunk, (size_t)n) < 0 && !keep_excess_silently)
		*too_large = true;
	secure_wipe(chunk, (size_t)n);
}

/* Reads the plugin's output until both pipes close, the output is too large or the deadline passes. */
static void exec_collect(struct exec_run *run, long long deadline)
{
	while (run->stdout_fd >= 0 || run->stderr_fd >= 0) {
		struct pollfd fds[2] = {
			{ .fd = run->stdout_fd, .events = POLLIN },
			{ .fd = run->stderr_fd, .events = POLLIN },
		};
		long long left = deadline - now_ms();
		int n;

		if (left <= 0) {
			run->timed_out = true;
			return;
		}
		n = poll(fds, 2, left > 1000 ? 1000 : (int)left);
		if (n < 0 && errno != EINTR)
			return;
		if (n <= 0)
			continue;
		if (fds[0].revents)
			drain(&run->stdout_fd, &run->output, &run->output_too_large, false);
		if (fds[1].revents)
			drain(&run->stderr_fd, &run->errors, &run->output_too_large, true);
		if (run->output_too_large)
			return;
	}
}

/* Waits for the plugin to exit until the deadline; kills its process group when it has not. */
static void exec_reap(struct exec_run *run, long long deadline)
{
	int status;

	if (run->timed_out || run->output_too_large)
		kill(-run->pid, SIGKILL);
	for (;;) {
		pid_t done = waitpid(run->pid, &status, run->timed_out || run->output_too_large ? 0 : WNOHANG);

		if (done == run->pid) {
			run->status = status;
			break;
		}
		if (done < 0 && errno != EINTR) {
			run->status = -1;
			break;
		}
		if (done == 0 && now_ms() >= deadline) {
			run->timed_out = true;
			kill(-run->pid, SIGKILL);
			continue;
		}
		if (done == 0) {
			struct timespec pause = { 0, 10 * 1000 * 1000 };

			nanosleep(&pause, NULL);
		}
	}
	/* Kill what the plugin left running in its group, such as a helper it started. */
	kill(-run->pid, SIGKILL);
}

static int exec_start(const struct kube_exec *exec, char **argv, char **env, struct exec_run *run)
{
	int out_pipe[2] = { -1, -1 }, err_pipe[2] = { -1, -1 }, error_pipe[2] = { -1, -1 };
	int null_fd = -1, r;
	pid_t pid;

	null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (null_fd < 0 || pipe2(out_pipe, O_CLOEXEC) < 0 || pipe2(err_pipe, O_CLOEXEC) < 0 ||
	    pipe2(error_pipe, O_CLOEXEC) < 0) {
		r = -errno;
		goto out;
	}
	pid = fork();
	if (pid < 0) {
		r = -errno;
		goto out;
	}
	if (pid == 0)
		exec_child(null_fd, out_pipe[1], err_pipe[1], error_pipe[1], exec->command, argv, env);
	setpgid(pid, pid);
	run->pid = pid;
	run->stdout_fd = out_pipe[0];
	run->stderr_fd = err_pipe[0];
	run->error_fd = error_pipe[0];
	out_pipe[0] = err_pipe[0] = error_pipe[0] = -1;
	fcntl(run->stdout_fd, F_SETFL, O_NONBLOCK);
	fcntl(run->stderr_fd, F_SETFL, O_NONBLOCK);
	r = 0;
out:
	for (int i = 0; i < 2; i++) {
		if (out_pipe[i] >= 0)
			close(out_pipe[i]);
		if (err_pipe[i] >= 0)
			close(err_pipe[i]);
		if (error_pipe[i] >= 0)
			close(error_pipe[i]);
	}
	if (null_fd >= 0)
		close(null_fd);
	return r;
}

/* Parses an RFC 3339 time such as 2024-05-01T10:00:00Z or 2024-05-01T10:00:00.5+02:00. */
static int parse_rfc3339(const char *text, time_t *out)
{
	struct tm tm = { 0 };
	const char *rest;
	long offset = 0;

	rest = strptime(text, "%Y-%m-%dT%H:%M:%S", &tm);
	if (!rest)
		return -EINVAL;
	if (*rest == '.') {
		rest++;
		if (!(*rest >= '0' && *rest <= '9'))
			return -EINVAL;
		while (*rest >= '0' && *rest <= '9')
			rest++;
	}
	if (*rest == 'Z' || *rest == 'z') {
		rest++;
	} else if (*rest == '+' || *rest == '-') {
		int hours, minutes;

		if (sscanf(rest + 1, "%2d:%2d", &hours, &minutes) != 2 || strlen(rest) != 6 ||
		    hours > 23 || minutes > 59)
			return -EINVAL;
		offset = (hours * 60L + minutes) * 60L * (*rest == '+' ? 1 : -1);
		rest += 6;
	} else {
		return -EINVAL;
	}
	if (*rest)
		return -EINVAL;
	*out = timegm(&tm) - offset;
	return 0;
}

static int parse_credential(const struct kube_credentials *credentials, const struct buf *output,
			    struct kube_exec_credential *out)
{
	const struct kube_exec *exec = credentials->exec;
	const char *user = credentials->user_name ? credentials->user_name : "";
	struct doc_error err = { 0 };
	struct doc_node *root = NULL;
	const struct doc_node *status;
	const char *version, *kind, *token, *cert, *key, *expiry;
	size_t start = 0;
	int r = MLB_EINPUT;

	while (start < output->len && strchr(" \t\r\n", output->data[start]))
		start++;
	if (start == output->len)
		return kube_fail(MLB_EINPUT, "exec plugin '%s' of user '%s' printed nothing on stdout; expected an "
				 "ExecCredential of apiVersion '%s', got none", exec->command, user, exec->api_version);
	if (doc_parse(output->data, output->len, NULL, &root, &err) < 0 || root->type != DOC_MAP) {
		r = kube_fail(MLB_EINPUT, "exec plugin '%s' of user '%s' printed something that is not an "
			      "ExecCredential JSON object (expected apiVersion '%s')", exec->command, user,
			      exec->api_version);
		goto out;
	}
	version = doc_get_string(root, "apiVersion");
	kind = doc_get_string(root, "kind");
	if (!version || strcmp(version, exec->api_version) != 0) {
		r = kube_fail(MLB_EINPUT, "exec plugin '%s' of user '%s' is configured for apiVersion '%s' but "
			      "returned apiVersion '%s'; make the kubeconfig's exec apiVersion match the plugin",
			      exec->command, user, exec->api_version, version ? version : "(none)");
		goto out;
	}
	if (!kind || strcmp(kind, "ExecCredential") != 0) {
		r = kube_fail(MLB_EINPUT, "exec plugin '%s' of user '%s' returned kind '%s', not ExecCredential",
			      exec->command, user, kind ? kind : "(none)");
		goto out;
	}
	status = doc_get(root, "status");
	token = doc_get_string(status, "token");
	cert = doc_get_string(status, "clientCertificateData");
	key = doc_get_string(status, "clientKeyData");
	expiry = doc_get_string(status, "expirationTimestamp");
	if (token && !*token)
		token = NULL;
	if ((cert && *cert) != (key && *key)) {
		r = kube_fail(MLB_EINPUT, "exec plugin '%s' of user '%s' returned %s without %s",
			      exec->command, user, cert && *cert ? "clientCertificateData" : "clientKeyData",
			      cert && *cert ? "clientKeyData" : "clientCertificateData");
		goto out;
	}
	if (!token && !(cert && *cert)) {
		r = kube_fail(MLB_EINPUT, "exec plugin '%s' of user '%s' returned neither status.token nor "
			      "status.clientCertificateData and clientKeyData", exec->command, user);
		goto out;
	}
	if (expiry && *expiry && parse_rfc3339(expiry, &out->expiry) < 0) {
		r = kube_fail(MLB_EINPUT, "exec plugin '%s' of user '%s' returned an invalid expirationTimestamp "
			      "'%s'; expected RFC 3339", exec->command, user, expiry);
		goto out;
	}
	r = -ENOMEM;
	if (token && !(out->token = strdup(token)))
		goto out;
	if (cert && *cert && (buf_append_str(&out->client_cert_pem, cert) < 0 ||
			      buf_append_str(&out->client_key_pem, key) < 0))
		goto out;
	r = 0;
out:
	/* The tree contains the token or key. */
	kube_doc_wipe(root);
	doc_free(root);
	return r;
}

/* The last line of the plugin's stderr, for an error message; at most 300 bytes. */
static void last_stderr_line(const struct buf *errors, char *out, size_t size)
{
	size_t end = errors->len, start;

	while (end > 0 && strchr(" \t\r\n", errors->data[end - 1]))
		end--;
	start = end;
	while (start > 0 && errors->data[start - 1] != '\n')
		start--;
	if (end - start > 300)
		start = end - 300;
	snprintf(out, size, "%.*s", (int)(end - start), errors->data ? errors->data + start : "");
}

int kube_exec_credential_get(const struct kube_credentials *credentials, long timeout_ms,
			     struct kube_exec_credential *out)
{
	const struct kube_exec *exec = credentials->exec;
	const char *user = credentials->user_name ? credentials->user_name : "";
	struct exec_run run = { .pid = -1, .stdout_fd = -1, .stderr_fd = -1, .error_fd = -1 };
	struct buf exec_info = BUF_INIT(EXEC_INFO_MAX);
	char **argv = NULL, **env = NULL;
	char detail[320];
	long long deadline;
	ssize_t n;
	int r;

	memset(out, 0, sizeof(*out));
	buf_init(&out->client_cert_pem, EXEC_STDOUT_MAX);
	buf_init(&out->client_key_pem, EXEC_STDOUT_MAX);
	buf_init(&run.output, EXEC_STDOUT_MAX);
	buf_init(&run.errors, EXEC_STDERR_MAX);
	if (!exec)
		return kube_fail(-EINVAL, "user '%s' has no exec plugin", user);
	if (timeout_ms <= 0)
		timeout_ms = KUBE_EXEC_TIMEOUT_MS;

	r = build_exec_info(credentials, &exec_info);
	if (r == 0)
		r = build_environment(exec, exec_info.data, &env);
	if (r == 0)
		r = build_argv(exec, &argv);
	if (r < 0)
		goto out;
	r = exec_start(exec, argv, env, &run);
	if (r < 0) {
		r = kube_fail(r, "cannot start exec plugin '%s' of user '%s': %s", exec->command, user, strerror(-r));
		goto out;
	}
	deadline = now_ms() + timeout_ms;
	exec_collect(&run, deadline);
	exec_reap(&run, deadline);
	do
		n = read(run.error_fd, &run.exec_errno, sizeof(run.exec_errno));
	while (n < 0 && errno == EINTR);
	if (n != (ssize_t)sizeof(run.exec_errno))
		run.exec_errno = 0;

	if (run.exec_errno) {
		r = kube_fail(MLB_EDENIED, "cannot run exec plugin '%s' of user '%s': %s%s%s", exec->command, user,
			      strerror(run.exec_errno), exec->install_hint ? "; " : "",
			      exec->install_hint ? exec->install_hint : "");
		goto out;
	}
	if (run.timed_out) {
		r = kube_fail(MLB_EDENIED, "exec plugin '%s' of user '%s' did not finish within %ld s and was "
			      "killed; it may be waiting for input, which mlboot never gives", exec->command, user,
			      timeout_ms / 1000);
		goto out;
	}
	if (run.output_too_large) {
		r = kube_fail(MLB_EINPUT, "exec plugin '%s' of user '%s' printed more than %lu KiB on stdout",
			      exec->command, user, EXEC_STDOUT_MAX >> 10);
		goto out;
	}
	if (run.status == -1 || !WIFEXITED(run.status) || WEXITSTATUS(run.status) != 0) {
		last_stderr_line(&run.errors, detail, sizeof(detail));
		if (run.status != -1 && WIFSIGNALED(run.status))
			r = kube_fail(MLB_EDENIED, "exec plugin '%s' of user '%s' was killed by signal %d%s%s",
				      exec->command, user, WTERMSIG(run.status), *detail ? ": " : "", detail);
		else
			r = kube_fail(MLB_EDENIED, "exec plugin '%s' of user '%s' failed with exit status %d%s%s",
				      exec->command, user, run.status == -1 ? -1 : WEXITSTATUS(run.status),
				      *detail ? ": " : "", detail);
		goto out;
	}
	r = parse_credential(credentials, &run.output, out);
	if (r == 0)
		log_debug("exec plugin '%s' of user '%s' returned a %s%s", exec->command, user,
			  out->token ? "token" : "client certificate", out->expiry ? " with an expiry" : "");
out:
	if (run.stdout_fd >= 0)
		close(run.stdout_fd);
	if (run.stderr_fd >= 0)
		close(run.stderr_fd);
	if (run.error_fd >= 0)
		close(run.error_fd);
	buf_release_secret(&run.output);
	buf_release(&run.errors);
	buf_release(&exec_info);
	free(argv);
	free(env);
	if (r < 0)
		kube_exec_credential_release(out);
	return r;
}

void kube_exec_credential_release(struct kube_exec_credential *credential)
{
	if (!credential)
		return;
	secret_free(credential->token);
	credential->token = NULL;
	buf_release(&credential->client_cert_pem);
	buf_release_secret(&credential->client_key_pem);
	credential->expiry = 0;
}
