/*
 * kubeconfig loading: kubectl's merge rules, relative paths, *-data fields,
 * tokens, conflicts, exec credential plugins and the in-cluster account.
 * Fixtures are in tests/fixtures/kubeconfig; run from the repository root.
 */
#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "kube.h"

#define FIXTURES "tests/fixtures/kubeconfig"

static char home_folder[] = "/tmp/mlboot-test-kubeconfig-XXXXXX";
static char fixtures[1024];

static void assert_contains(const char *text, const char *part)
{
	if (!strstr(text, part))
		fail_msg("expected \"%s\" in \"%s\"", part, text);
}

static void assert_lacks(const char *text, const char *part)
{
	if (strstr(text, part))
		fail_msg("did not expect \"%s\" in \"%s\"", part, text);
}

static const char *fixture(const char *name)
{
	static char path[4][PATH_MAX];
	static int next;
	char *slot = path[next++ % 4];

	snprintf(slot, PATH_MAX, "%s/%s", fixtures, name);
	return slot;
}

static void read_fixture(const char *name, struct buf *out)
{
	buf_init(out, 1 << 20);
	assert_int_equal(file_read_all(fixture(name), 1 << 20, out), 0);
}

/* Every test starts from an environment that cannot reach a real kubeconfig or cluster. */
static int setup(void **state)
{
	(void)state;
	setenv("HOME", home_folder, 1);
	unsetenv("KUBECONFIG");
	unsetenv("KUBERNETES_SERVICE_HOST");
	unsetenv("KUBERNETES_SERVICE_PORT");
	return 0;
}

static int load_with_env(const char *kubeconfig_env, const char *context, struct kube_credentials *out)
{
	struct kubeconfig_options options = { .context = context };

	if (kubeconfig_env)
		setenv("KUBECONFIG", kubeconfig_env, 1);
	return kubeconfig_load(&options, out);
}

static int load_data(const char *text, struct kube_credentials *out)
{
	struct kubeconfig_options options = { .data = text, .data_len = strlen(text), .data_name = "inline.yaml" };

	return kubeconfig_load(&options, out);
}

static void merge_first_file_wins(void **state)
{
	struct kube_credentials c;
	char list[2 * PATH_MAX + 2];

	(void)state;
	snprintf(list, sizeof(list), "%s:%s", fixture("merge-a.yaml"), fixture("merge-b.yaml"));
	assert_int_equal(load_with_env(list, NULL, &c), 0);
	assert_string_equal(c.context_name, "ctx-a");
	assert_string_equal(c.server, "https://127.0.0.1:6443");
	assert_string_equal(c.token, "token-from-a");
	assert_string_equal(c.default_namespace, "team-a");
	assert_string_equal(c.source, fixture("merge-a.yaml"));
	kube_credentials_release(&c);
}

static void merge_reversed_order(void **state)
{
	struct kube_credentials c;
	char list[2 * PATH_MAX + 2];

	(void)state;
	snprintf(list, sizeof(list), "%s:%s", fixture("merge-b.yaml"), fixture("merge-a.yaml"));
	assert_int_equal(load_with_env(list, NULL, &c), 0);
	assert_string_equal(c.context_name, "ctx-b");
	assert_string_equal(c.server, "https://127.0.0.2:6443");
	assert_string_equal(c.token, "token-from-b");
	assert_string_equal(c.default_namespace, "default");
	kube_credentials_release(&c);
}

/* A context from the second file still gets the first file's cluster of the same name. */
static void merge_entry_by_name(void **state)
{
	struct kube_credentials c;
	char list[2 * PATH_MAX + 2];

	(void)state;
	snprintf(list, sizeof(list), "%s:%s", fixture("merge-a.yaml"), fixture("merge-b.yaml"));
	assert_int_equal(load_with_env(list, "ctx-b", &c), 0);
	assert_string_equal(c.context_name, "ctx-b");
	assert_string_equal(c.cluster_name, "shared");
	assert_string_equal(c.server, "https://127.0.0.1:6443");
	assert_string_equal(c.token, "token-from-b");
	assert_string_equal(c.source, fixture("merge-b.yaml"));
	kube_credentials_release(&c);
}

static void merge_skips_missing_and_duplicates(void **state)
{
	struct kube_credentials c;
	char list[4 * PATH_MAX];

	(void)state;
	snprintf(list, sizeof(list), "%s::%s:%s:%s", fixture("no-such-file.yaml"), fixture("merge-b.yaml"),
		 fixture("merge-b.yaml"), fixture("merge-a.yaml"));
	assert_int_equal(load_with_env(list, NULL, &c), 0);
	assert_string_equal(c.context_name, "ctx-b");
	kube_credentials_release(&c);
}

static void merge_all_missing(void **state)
{
	struct kube_credentials c;

	(void)state;
	assert_int_equal(load_with_env(fixture("no-such-file.yaml"), NULL, &c), MLB_EINPUT);
	assert_contains(kube_last_error(), "no-such-file.yaml");
	assert_null(c.server);
}

static void explicit_path_only(void **state)
{
	struct kubeconfig_options options = { .path = NULL };
	struct kube_credentials c;

	(void)state;
	setenv("KUBECONFIG", fixture("merge-a.yaml"), 1);
	options.path = fixture("merge-b.yaml");
	assert_int_equal(kubeconfig_load(&options, &c), 0);
	assert_string_equal(c.context_name, "ctx-b");
	assert_string_equal(c.server, "https://127.0.0.2:6443");
	kube_credentials_release(&c);
}

static void explicit_path_missing(void **state)
{
	struct kubeconfig_options options = { .path = NULL };
	struct kube_credentials c;

	(void)state;
	options.path = fixture("no-such-file.yaml");
	assert_int_equal(kubeconfig_load(&options, &c), MLB_EINPUT);
	assert_contains(kube_last_error(), "no-such-file.yaml");
	assert_contains(kube_last_error(), "does not exist");
}

static void context_option_selects(void **state)
{
	struct kubeconfig_options options = { .context = "ctx-only-b" };
	struct kube_credentials c;

	(void)state;
	options.path = fixture("merge-b.yaml");
	assert_int_equal(kubeconfig_load(&options, &c), 0);
	assert_string_equal(c.cluster_name, "only-b");
	/* A trailing slash of the server URL is dropped; a path prefix stays. */
	assert_string_equal(c.server, "https://127.0.0.3:6443/prefix");
	assert_true(c.insecure_skip_tls_verify);
	assert_int_equal(c.ca_pem.len, 0);
	kube_credentials_release(&c);
}

static void context_option_missing(void **state)
{
	struct kubeconfig_options options = { .context = "nope" };
	struct kube_credentials c;

	(void)state;
	options.path = fixture("merge-b.yaml");
	assert_int_equal(kubeconfig_load(&options, &c), MLB_EINPUT);
	assert_contains(kube_last_error(), "context 'nope' not found");
	assert_contains(kube_last_error(), "'ctx-b', 'ctx-only-b'");
}

static void current_context_missing(void **state)
{
	struct kubeconfig_options options = { .path = NULL };
	struct kube_credentials c;

	(void)state;
	options.path = fixture("missing-context.yaml");
	assert_int_equal(kubeconfig_load(&options, &c), MLB_EINPUT);
	assert_contains(kube_last_error(), "missing-context.yaml' line 4");
	assert_contains(kube_last_error(), "current-context 'gone'");
	assert_contains(kube_last_error(), "available contexts: 'one', 'two'");
}

static void current_context_unset(void **state)
{
	struct kube_credentials c;

	(void)state;
	assert_int_equal(load_data("clusters: []\ncontexts:\n- {name: only, context: {cluster: x}}\n", &c), MLB_EINPUT);
	assert_contains(kube_last_error(), "no current-context");
	assert_contains(kube_last_error(), "'only'");
}

static void relative_paths_from_own_folder(void **state)
{
	struct kubeconfig_options options = { .path = NULL };
	struct kube_credentials c;
	struct buf ca, cert, key;

	(void)state;
	options.path = fixture("nested/config");
	assert_int_equal(kubeconfig_load(&options, &c), 0);
	read_fixture("ca.crt", &ca);
	read_fixture("client.crt", &cert);
	read_fixture("client.key", &key);
	assert_int_equal(c.ca_pem.len, ca.len);
	assert_memory_equal(c.ca_pem.data, ca.data, ca.len);
	assert_int_equal(c.client_cert_pem.len, cert.len);
	assert_memory_equal(c.client_cert_pem.data, cert.data, cert.len);
	assert_int_equal(c.client_key_pem.len, key.len);
	assert_memory_equal(c.client_key_pem.data, key.data, key.len);
	assert_null(c.token);
	buf_release(&ca);
	buf_release(&cert);
	buf_release(&key);
	kube_credentials_release(&c);
}

/* Each entry's paths resolve against the file that defined that entry. */
static void relative_paths_per_file(void **state)
{
	struct kube_credentials c;
	char list[2 * PATH_MAX + 2];
	char *token = NULL;

	(void)state;
	snprintf(list, sizeof(list), "%s:%s", fixture("nested/config"), fixture("other/config"));
	assert_int_equal(load_with_env(list, "uses-other-user", &c), 0);
	assert_string_equal(c.token_file, fixture("other/token"));
	assert_int_equal(kube_token_file_read(c.token_file, &token), 0);
	assert_string_equal(token, "other-token-value");
	secret_free(token);
	assert_true(c.ca_pem.len > 0);
	kube_credentials_release(&c);
}

static void data_fields_decoded(void **state)
{
	struct kubeconfig_options options = { .path = NULL };
	struct kube_credentials c;
	struct buf ca, cert, key;

	(void)state;
	options.path = fixture("data.yaml");
	assert_int_equal(kubeconfig_load(&options, &c), 0);
	read_fixture("ca.crt", &ca);
	read_fixture("client.crt", &cert);
	read_fixture("client.key", &key);
	assert_int_equal(c.ca_pem.len, ca.len);
	assert_memory_equal(c.ca_pem.data, ca.data, ca.len);
	assert_int_equal(c.client_cert_pem.len, cert.len);
	assert_memory_equal(c.client_cert_pem.data, cert.data, cert.len);
	assert_int_equal(c.client_key_pem.len, key.len);
	assert_memory_equal(c.client_key_pem.data, key.data, key.len);
	assert_string_equal(c.tls_server_name, "kubernetes.default.svc");
	assert_string_equal(c.proxy_url, "http://127.0.0.1:3128");
	assert_string_equal(c.default_namespace, "ml");
	assert_false(c.insecure_skip_tls_verify);
	buf_release(&ca);
	buf_release(&cert);
	buf_release(&key);
	kube_credentials_release(&c);
}

static const char cluster_head[] =
	"current-context: x\n"
	"contexts: [{name: x, context: {cluster: c, user: u}}]\n";

static int load_cluster_and_user(const char *cluster, const char *user, struct kube_credentials *out)
{
	char text[8192];

	snprintf(text, sizeof(text), "%sclusters:\n- name: c\n  cluster:\n%s\nusers:\n- name: u\n  user:\n%s\n",
		 cluster_head, cluster, user);
	return load_data(text, out);
}

static void data_invalid_base64(void **state)
{
	struct kube_credentials c;

	(void)state;
	assert_int_equal(load_cluster_and_user("    server: https://127.0.0.1:1\n"
					       "    certificate-authority-data: 'not*base64'",
					       "    token: t", &c), MLB_EINPUT);
	assert_contains(kube_last_error(), "inline.yaml' line 7");
	assert_contains(kube_last_error(), "certificate-authority-data");
	assert_contains(kube_last_error(), "not valid base64");
}

static void data_not_pem(void **state)
{
	struct kube_credentials c;

	(void)state;
	/* "aGVsbG8=" is "hello". */
	assert_int_equal(load_cluster_and_user("    server: https://127.0.0.1:1\n"
					       "    certificate-authority-data: aGVsbG8=",
					       "    token: t", &c), MLB_EINPUT);
	assert_contains(kube_last_error(), "contains no PEM certificate");
}

static void ca_file_and_data_conflict(void **state)
{
	struct kube_credentials c;

	(void)state;
	assert_int_equal(load_cluster_and_user("    server: https://127.0.0.1:1\n"
					       "    certificate-authority: ca.crt\n"
					       "    certificate-authority-data: aGVsbG8=",
					       "    token: t", &c), MLB_EINPUT);
	assert_contains(kube_last_error(), "cluster 'c' sets both 'certificate-authority-data' and 'certificate-authority'");
}

static void insecure_with_ca_rejected(void **state)
{
	struct kube_credentials c;
	char cluster[4096];
	struct buf ca;

	(void)state;
	read_fixture("ca.crt", &ca);
	snprintf(cluster, sizeof(cluster), "    server: https://127.0.0.1:1\n"
		 "    insecure-skip-tls-verify: true\n    certificate-authority: %s", fixture("ca.crt"));
	assert_int_equal(load_cluster_and_user(cluster, "    token: t", &c), MLB_EINPUT);
	assert_contains(kube_last_error(), "cluster 'c'");
	assert_contains(kube_last_error(), "insecure-skip-tls-verify together with a certificate authority");
	assert_contains(kube_last_error(), "line 7");
	buf_release(&ca);
}

static void insecure_alone_accepted(void **state)
{
	struct kube_credentials c;

	(void)state;
	assert_int_equal(load_cluster_and_user("    server: https://127.0.0.1:1\n"
					       "    insecure-skip-tls-verify: true", "    token: t", &c), 0);
	assert_true(c.insecure_skip_tls_verify);
	kube_credentials_release(&c);
}

static void token_and_token_file_conflict(void **state)
{
	struct kube_credentials c;

	(void)state;
	assert_int_equal(load_cluster_and_user("    server: https://127.0.0.1:1",
					       "    token: t\n    tokenFile: /nonexistent", &c), MLB_EINPUT);
	assert_contains(kube_last_error(), "user 'u' sets both 'token' and 'tokenFile'");
}

static void token_file_read_and_trimmed(void **state)
{
	char *token = NULL;

	(void)state;
	assert_int_equal(kube_token_file_read(fixture("in-cluster/token"), &token), 0);
	assert_string_equal(token, "in-cluster-token");
	secret_free(token);
	assert_int_equal(kube_token_file_read(fixture("no-such-token"), &token), -ENOENT);
	assert_null(token);
	assert_contains(kube_last_error(), "no-such-token");
}

static void token_file_empty_rejected(void **state)
{
	char path[PATH_MAX];
	char *token = NULL;
	FILE *f;

	(void)state;
	snprintf(path, sizeof(path), "%s/empty-token", home_folder);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs("\n\n", f);
	fclose(f);
	assert_int_equal(kube_token_file_read(path, &token), MLB_EINPUT);
	assert_contains(kube_last_error(), "is empty");
	unlink(path);
}

static void client_certificate_without_key(void **state)
{
	struct kube_credentials c;
	char user[4096];

	(void)state;
	snprintf(user, sizeof(user), "    client-certificate: %s", fixture("client.crt"));
	assert_int_equal(load_cluster_and_user("    server: https://127.0.0.1:1", user, &c), MLB_EINPUT);
	assert_contains(kube_last_error(), "user 'u' has a client certificate but no client-key");
}

static void client_certificate_file_missing(void **state)
{
	struct kube_credentials c;

	(void)state;
	assert_int_equal(load_cluster_and_user("    server: https://127.0.0.1:1",
					       "    client-certificate: /nonexistent/client.crt\n"
					       "    client-key: /nonexistent/client.key", &c), -ENOENT);
	assert_contains(kube_last_error(), "cannot read 'client-certificate' '/nonexistent/client.crt'");
	assert_contains(kube_last_error(), "line 10");
}

static void server_must_be_https(void **state)
{
	struct kube_credentials c;

	(void)state;
	assert_int_equal(load_cluster_and_user("    server: http://127.0.0.1:8080", "    token: t", &c), MLB_EINPUT);
	assert_contains(kube_last_error(), "is not https");
	assert_int_equal(load_cluster_and_user("    insecure-skip-tls-verify: true", "    token: t", &c), MLB_EINPUT);
	assert_contains(kube_last_error(), "no server found for cluster 'c'");
}

static void proxy_url_checked(void **state)
{
	struct kube_credentials c;

	(void)state;
	assert_int_equal(load_cluster_and_user("    server: https://127.0.0.1:1\n    insecure-skip-tls-verify: true\n"
					       "    proxy-url: ftp://127.0.0.1:21", "    token: t", &c), MLB_EINPUT);
	assert_contains(kube_last_error(), "invalid 'proxy-url' 'ftp://127.0.0.1:21' for cluster 'c'");
	assert_int_equal(load_cluster_and_user("    server: https://127.0.0.1:1\n    insecure-skip-tls-verify: true\n"
					       "    proxy-url: socks5://127.0.0.1:1080", "    token: t", &c), 0);
	assert_string_equal(c.proxy_url, "socks5://127.0.0.1:1080");
	kube_credentials_release(&c);
}

static void unknown_fields_ignored(void **state)
{
	struct kube_credentials c;

	(void)state;
	assert_int_equal(load_data("apiVersion: v1\nkind: Config\npreferences: {colors: true}\n"
				   "some-future-field: [1, 2]\ncurrent-context: x\n"
				   "contexts: [{name: x, context: {cluster: c, user: u, new-thing: 1}}]\n"
				   "clusters: [{name: c, cluster: {server: 'https://127.0.0.1:1', "
				   "insecure-skip-tls-verify: true, extensions: [], not-yet: x}}]\n"
				   "users: [{name: u, user: {token: t, later: {a: b}}}]\n", &c), 0);
	assert_string_equal(c.token, "t");
	kube_credentials_release(&c);
}

static void wrong_type_names_line(void **state)
{
	struct kube_credentials c;

	(void)state;
	assert_int_equal(load_cluster_and_user("    server: https://127.0.0.1:1\n    insecure-skip-tls-verify: true",
					       "    token: 12345", &c), MLB_EINPUT);
	assert_contains(kube_last_error(), "inline.yaml' line 11");
	assert_contains(kube_last_error(), "'token' of user 'u' must be a string, not a number; quote the value");
	assert_int_equal(load_cluster_and_user("    server: https://127.0.0.1:1\n"
					       "    insecure-skip-tls-verify: 'true'", "    token: t", &c), MLB_EINPUT);
	assert_contains(kube_last_error(), "must be a boolean, not a string");
}

static void duplicate_names_rejected(void **state)
{
	struct kube_credentials c;

	(void)state;
	assert_int_equal(load_data("current-context: x\ncontexts:\n- {name: x, context: {cluster: c}}\n"
				   "- {name: x, context: {cluster: d}}\n", &c), MLB_EINPUT);
	assert_contains(kube_last_error(), "context 'x' is defined twice (first at line 3)");
}

static void invalid_yaml_names_file(void **state)
{
	struct kube_credentials c;

	(void)state;
	assert_int_equal(load_data("current-context: x\ncontexts: [\n", &c), MLB_EINPUT);
	assert_contains(kube_last_error(), "kubeconfig 'inline.yaml'");
	assert_contains(kube_last_error(), "invalid YAML");
}

static void unsupported_auth_rejected(void **state)
{
	struct kube_credentials c;

	(void)state;
	assert_int_equal(load_cluster_and_user("    server: https://127.0.0.1:1", "    token: t\n    as: admin", &c),
			 MLB_EINPUT);
	assert_contains(kube_last_error(), "impersonation");
	assert_int_equal(load_cluster_and_user("    server: https://127.0.0.1:1",
					       "    username: a\n    password: b", &c), MLB_EINPUT);
	assert_contains(kube_last_error(), "basic authentication");
	assert_int_equal(load_cluster_and_user("    server: https://127.0.0.1:1",
					       "    auth-provider: {name: oidc, config: {}}", &c), MLB_EINPUT);
	assert_contains(kube_last_error(), "auth-provider 'oidc'");
}

static void exec_with_token_rejected(void **state)
{
	struct kube_credentials c;

	(void)state;
	assert_int_equal(load_cluster_and_user("    server: https://127.0.0.1:1",
					       "    token: t\n    exec: {apiVersion: client.authentication.k8s.io/v1beta1, "
					       "command: x}", &c), MLB_EINPUT);
	assert_contains(kube_last_error(), "exec plugin together with a token");
}

static void exec_v1_needs_interactive_mode(void **state)
{
	struct kube_credentials c;

	(void)state;
	assert_int_equal(load_cluster_and_user("    server: https://127.0.0.1:1",
					       "    exec: {apiVersion: client.authentication.k8s.io/v1, command: x}", &c),
			 MLB_EINPUT);
	assert_contains(kube_last_error(), "interactiveMode: Never");
	assert_int_equal(load_cluster_and_user("    server: https://127.0.0.1:1",
					       "    exec: {apiVersion: client.authentication.k8s.io/v1, command: x, "
					       "interactiveMode: Always}", &c), MLB_EINPUT);
	assert_contains(kube_last_error(), "never prompts");
	assert_int_equal(load_cluster_and_user("    server: https://127.0.0.1:1",
					       "    exec: {apiVersion: client.authentication.k8s.io/v1alpha1, command: x}",
					       &c), MLB_EINPUT);
	assert_contains(kube_last_error(), "apiVersion 'client.authentication.k8s.io/v1alpha1'");
}

static int load_exec_context(const char *context, struct kube_credentials *out)
{
	struct kubeconfig_options options = { .context = context };

	options.path = fixture("exec.yaml");
	return kubeconfig_load(&options, out);
}

static void exec_v1_token(void **state)
{
	struct kube_exec_credential credential;
	struct kube_credentials c;

	(void)state;
	assert_int_equal(load_exec_context("v1-token", &c), 0);
	assert_non_null(c.exec);
	assert_string_equal(c.exec->command, fixture("./exec-plugin.sh"));
	assert_string_equal(c.exec->api_version, "client.authentication.k8s.io/v1");
	assert_string_equal(c.exec->args[1], "token");
	assert_null(c.exec->args[2]);
	assert_string_equal(c.exec->env[0], "PLUGIN_REQUIRED=from-kubeconfig");
	assert_int_equal(kube_exec_credential_get(&c, 10000, &credential), 0);
	assert_string_equal(credential.token, "plugin-token-123");
	assert_int_equal(credential.client_cert_pem.len, 0);
	assert_int_equal((long long)credential.expiry, 4071006245LL);
	kube_exec_credential_release(&credential);
	kube_credentials_release(&c);
}

static void exec_v1beta1_certificate(void **state)
{
	struct kube_exec_credential credential;
	struct kube_credentials c;
	struct buf cert, key;

	(void)state;
	assert_int_equal(load_exec_context("v1beta1-cert", &c), 0);
	assert_string_equal(c.exec->interactive_mode, "IfAvailable");
	assert_int_equal(kube_exec_credential_get(&c, 10000, &credential), 0);
	read_fixture("client.crt", &cert);
	read_fixture("client.key", &key);
	assert_null(credential.token);
	assert_int_equal(credential.client_cert_pem.len, cert.len);
	assert_memory_equal(credential.client_cert_pem.data, cert.data, cert.len);
	assert_int_equal(credential.client_key_pem.len, key.len);
	assert_memory_equal(credential.client_key_pem.data, key.data, key.len);
	assert_int_equal((long long)credential.expiry, 0);
	buf_release(&cert);
	buf_release(&key);
	kube_exec_credential_release(&credential);
	kube_credentials_release(&c);
}

static void exec_version_mismatch(void **state)
{
	struct kube_exec_credential credential;
	struct kube_credentials c;

	(void)state;
	assert_int_equal(load_exec_context("mismatch", &c), 0);
	assert_int_equal(kube_exec_credential_get(&c, 10000, &credential), MLB_EINPUT);
	assert_contains(kube_last_error(), "configured for apiVersion 'client.authentication.k8s.io/v1'");
	assert_contains(kube_last_error(), "returned apiVersion 'client.authentication.k8s.io/v1beta1'");
	assert_null(credential.token);
	kube_credentials_release(&c);
}

static void exec_empty_output(void **state)
{
	struct kube_exec_credential credential;
	struct kube_credentials c;

	(void)state;
	assert_int_equal(load_exec_context("empty", &c), 0);
	assert_int_equal(kube_exec_credential_get(&c, 10000, &credential), MLB_EINPUT);
	assert_contains(kube_last_error(), "printed nothing on stdout");
	assert_contains(kube_last_error(), "'client.authentication.k8s.io/v1'");
	assert_contains(kube_last_error(), "user 'empty'");
	kube_credentials_release(&c);
}

static void exec_failure_shows_stderr(void **state)
{
	struct kube_exec_credential credential;
	struct kube_credentials c;

	(void)state;
	assert_int_equal(load_exec_context("failing", &c), 0);
	assert_int_equal(kube_exec_credential_get(&c, 10000, &credential), MLB_EDENIED);
	assert_contains(kube_last_error(), "failed with exit status 2");
	assert_contains(kube_last_error(), "the identity provider rejected the login");
	assert_lacks(kube_last_error(), "first line");
	kube_credentials_release(&c);
}

static void exec_timeout_kills_plugin(void **state)
{
	struct kube_exec_credential credential;
	struct kube_credentials c;
	struct timespec start, end;
	double seconds;

	(void)state;
	assert_int_equal(load_exec_context("slow", &c), 0);
	clock_gettime(CLOCK_MONOTONIC, &start);
	assert_int_equal(kube_exec_credential_get(&c, 300, &credential), MLB_EDENIED);
	clock_gettime(CLOCK_MONOTONIC, &end);
	seconds = (double)(end.tv_sec - start.tv_sec) + (double)(end.tv_nsec - start.tv_nsec) / 1e9;
	assert_true(seconds < 5.0);
	assert_contains(kube_last_error(), "did not finish within");
	kube_credentials_release(&c);
}

static void exec_missing_command_hint(void **state)
{
	struct kube_exec_credential credential;
	struct kube_credentials c;

	(void)state;
	assert_int_equal(load_exec_context("missing-command", &c), 0);
	assert_string_equal(c.exec->command, "mlboot-test-no-such-plugin");
	assert_int_equal(kube_exec_credential_get(&c, 10000, &credential), MLB_EDENIED);
	assert_contains(kube_last_error(), "cannot run exec plugin 'mlboot-test-no-such-plugin'");
	assert_contains(kube_last_error(), "install the mlboot-test plugin");
	kube_credentials_release(&c);
}

static void exec_provides_cluster_info(void **state)
{
	struct kube_exec_credential credential;
	struct kube_credentials c;

	(void)state;
	assert_int_equal(load_exec_context("cluster-info", &c), 0);
	assert_true(c.exec->provide_cluster_info);
	assert_int_equal(kube_exec_credential_get(&c, 10000, &credential), 0);
	assert_string_equal(credential.token, "cluster-info-token");
	kube_exec_credential_release(&credential);
	kube_credentials_release(&c);
}

static void in_cluster_account(void **state)
{
	struct kube_credentials c;
	struct buf ca;

	(void)state;
	setenv("KUBERNETES_SERVICE_HOST", "127.0.0.1", 1);
	setenv("KUBERNETES_SERVICE_PORT", "6443", 1);
	assert_int_equal(kubeconfig_in_cluster(fixture("in-cluster"), &c), 0);
	assert_string_equal(c.server, "https://127.0.0.1:6443");
	assert_string_equal(c.token_file, fixture("in-cluster/token"));
	assert_null(c.token);
	assert_string_equal(c.default_namespace, "ml-system");
	read_fixture("in-cluster/ca.crt", &ca);
	assert_int_equal(c.ca_pem.len, ca.len);
	buf_release(&ca);
	kube_credentials_release(&c);

	setenv("KUBERNETES_SERVICE_HOST", "::1", 1);
	assert_int_equal(kubeconfig_in_cluster(fixture("in-cluster"), &c), 0);
	assert_string_equal(c.server, "https://[::1]:6443");
	kube_credentials_release(&c);
}

static void in_cluster_needs_environment(void **state)
{
	struct kube_credentials c;

	(void)state;
	assert_int_equal(kubeconfig_in_cluster(fixture("in-cluster"), &c), MLB_EINPUT);
	assert_contains(kube_last_error(), "KUBERNETES_SERVICE_HOST");
	setenv("KUBERNETES_SERVICE_HOST", "127.0.0.1", 1);
	setenv("KUBERNETES_SERVICE_PORT", "6443", 1);
	assert_int_equal(kubeconfig_in_cluster(fixture("nested"), &c), -ENOENT);
	assert_contains(kube_last_error(), "nested/token");
}

static void no_kubeconfig_anywhere(void **state)
{
	struct kubeconfig_options options = { .path = NULL };
	struct kube_credentials c;

	(void)state;
	assert_int_equal(kubeconfig_load(&options, &c), MLB_EINPUT);
	assert_contains(kube_last_error(), "no kubeconfig found");
	assert_contains(kube_last_error(), home_folder);
	assert_int_equal(kubeconfig_load(NULL, &c), MLB_EINPUT);
}

static void home_kubeconfig_used(void **state)
{
	struct kubeconfig_options options = { .path = NULL };
	struct kube_credentials c;
	char folder[1024], path[1100];
	static const char text[] =
		"current-context: home\n"
		"contexts: [{name: home, context: {cluster: c, user: u}}]\n"
		"clusters: [{name: c, cluster: {server: 'https://127.0.0.1:1', certificate-authority: ca.crt}}]\n"
		"users: [{name: u, user: {token: t}}]\n";

	(void)state;
	snprintf(folder, sizeof(folder), "%s/.kube", home_folder);
	snprintf(path, sizeof(path), "%s/config", folder);
	assert_int_equal(file_mkdir_parents(folder, 0700), 0);
	assert_int_equal(file_write_atomic(path, text, strlen(text), 0600), 0);
	/* ca.crt is relative to ~/.kube, where there is none. */
	assert_int_equal(kubeconfig_load(&options, &c), -ENOENT);
	assert_contains(kube_last_error(), ".kube/ca.crt");
	assert_contains(kube_last_error(), ".kube/config' line 3");
	unlink(path);
	rmdir(folder);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(merge_first_file_wins, setup),
		cmocka_unit_test_setup(merge_reversed_order, setup),
		cmocka_unit_test_setup(merge_entry_by_name, setup),
		cmocka_unit_test_setup(merge_skips_missing_and_duplicates, setup),
		cmocka_unit_test_setup(merge_all_missing, setup),
		cmocka_unit_test_setup(explicit_path_only, setup),
		cmocka_unit_test_setup(explicit_path_missing, setup),
		cmocka_unit_test_setup(context_option_selects, setup),
		cmocka_unit_test_setup(context_option_missing, setup),
		cmocka_unit_test_setup(current_context_missing, setup),
		cmocka_unit_test_setup(current_context_unset, setup),
		cmocka_unit_test_setup(relative_paths_from_own_folder, setup),
		cmocka_unit_test_setup(relative_paths_per_file, setup),
		cmocka_unit_test_setup(data_fields_decoded, setup),
		cmocka_unit_test_setup(data_invalid_base64, setup),
		cmocka_unit_test_setup(data_not_pem, setup),
		cmocka_unit_test_setup(ca_file_and_data_conflict, setup),
		cmocka_unit_test_setup(insecure_with_ca_rejected, setup),
		cmocka_unit_test_setup(insecure_alone_accepted, setup),
		cmocka_unit_test_setup(token_and_token_file_conflict, setup),
		cmocka_unit_test_setup(token_file_read_and_trimmed, setup),
		cmocka_unit_test_setup(token_file_empty_rejected, setup),
		cmocka_unit_test_setup(client_certificate_without_key, setup),
		cmocka_unit_test_setup(client_certificate_file_missing, setup),
		cmocka_unit_test_setup(server_must_be_https, setup),
		cmocka_unit_test_setup(proxy_url_checked, setup),
		cmocka_unit_test_setup(unknown_fields_ignored, setup),
		cmocka_unit_test_setup(wrong_type_names_line, setup),
		cmocka_unit_test_setup(duplicate_names_rejected, setup),
		cmocka_unit_test_setup(invalid_yaml_names_file, setup),
		cmocka_unit_test_setup(unsupported_auth_rejected, setup),
		cmocka_unit_test_setup(exec_with_token_rejected, setup),
		cmocka_unit_test_setup(exec_v1_needs_interactive_mode, setup),
		cmocka_unit_test_setup(exec_v1_token, setup),
		cmocka_unit_test_setup(exec_v1beta1_certificate, setup),
		cmocka_unit_test_setup(exec_version_mismatch, setup),
		cmocka_unit_test_setup(exec_empty_output, setup),
		cmocka_unit_test_setup(exec_failure_shows_stderr, setup),
		cmocka_unit_test_setup(exec_timeout_kills_plugin, setup),
		cmocka_unit_test_setup(exec_missing_command_hint, setup),
		cmocka_unit_test_setup(exec_provides_cluster_info, setup),
		cmocka_unit_test_setup(in_cluster_account, setup),
		cmocka_unit_test_setup(in_cluster_needs_environment, setup),
		cmocka_unit_test_setup(no_kubeconfig_anywhere, setup),
		cmocka_unit_test_setup(home_kubeconfig_used, setup),
	};
	int failed;

	{
		char resolved[PATH_MAX];

		if (!realpath(FIXTURES, resolved) || strlen(resolved) >= sizeof(fixtures)) {
			fprintf(stderr, "cannot find %s: run the tests from the repository root\n", FIXTURES);
			return 1;
		}
		memcpy(fixtures, resolved, strlen(resolved) + 1);
	}
	if (!mkdtemp(home_folder)) {
		perror("mkdtemp");
		return 1;
	}
	failed = cmocka_run_group_tests(tests, NULL, NULL);
	rmdir(home_folder);
	return failed;
}
