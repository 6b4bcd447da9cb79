#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "common.h"
#include "config.h"

#define FIXTURES "tests/fixtures/config/"

/* One invalid fixture and the problem it must produce. */
struct bad_case {
	const char *file;
	unsigned line;
	unsigned column;
	const char *field;       /* exact field path of the problem */
	const char *fragment;    /* part of its message */
	size_t count;            /* problems expected in all; 0: at least one */
};

static const struct bad_case bad_cases[] = {
	{ "bad-api-version.yaml", 1, 13, "apiVersion", "unsupported apiVersion \"mlboot.dev/v1\": use mlboot.dev/v1alpha1", 1 },
	{ "bad-kind.yaml", 2, 7, "kind", "unsupported kind \"Cluster\"", 1 },
	{ "bad-missing-metadata.yaml", 1, 1, "metadata", "missing required field \"metadata\"", 1 },
	{ "bad-metadata-name.yaml", 4, 9, "metadata.name", "invalid name \"Lab_A\"", 1 },
	{ "bad-unknown-top.yaml", 10, 1, "specs", "unknown field \"specs\": did you mean \"spec\"?", 1 },
	{ "bad-unknown-spec-field.yaml", 10, 3, "spec.paralelism", "did you mean \"parallelism\"?", 1 },
	{ "bad-unknown-field-no-suggestion.yaml", 10, 7, "spec.hosts[0].colour", "expected one of name, role, local, ssh, sudo", 1 },
	{ "bad-unknown-ssh-field.yaml", 14, 9, "spec.hosts[1].ssh.keypath", "did you mean \"keyPath\"?", 1 },
	{ "bad-hosts-not-list.yaml", 7, 5, "spec.hosts", "expected a list, got a map", 1 },
	{ "bad-no-hosts.yaml", 6, 10, "spec.hosts", "no hosts", 1 },
	{ "bad-missing-hosts.yaml", 6, 3, "spec.hosts", "missing required field \"hosts\"", 1 },
	{ "bad-no-control-plane.yaml", 7, 5, "spec.hosts", "no host has role control-plane", 1 },
	{ "bad-role.yaml", 8, 13, "spec.hosts[0].role", "invalid role \"master\": use control-plane or worker", 1 },
	{ "bad-duplicate-name.yaml", 10, 13, "spec.hosts[1].name", "duplicate host name \"cp1\": also spec.hosts[0] at line 7", 1 },
	{ "bad-duplicate-address.yaml", 15, 22, "spec.hosts[2].ssh.address", "duplicate address \"2001:DB8:0::21\" port 22: also spec.hosts[1] at line 10", 1 },
	{ "bad-two-local.yaml", 12, 14, "spec.hosts[1].local", "more than one host has local: true (also spec.hosts[0] at line 7)", 1 },
	{ "bad-local-and-ssh.yaml", 10, 7, "spec.hosts[0].ssh", "local: true and ssh are both given", 1 },
	{ "bad-no-ssh.yaml", 10, 7, "spec.hosts[1].ssh", "missing required field \"ssh\"", 1 },
	{ "bad-port-range.yaml", 14, 15, "spec.hosts[1].ssh.port", "invalid port \"70000\": use 1-65535", 1 },
	{ "bad-port-string.yaml", 14, 15, "spec.hosts[1].ssh.port", "invalid port \"22\": expected a whole number from 1 to 65535, got a string: remove the quotes", 1 },
	{ "bad-parallelism-string.yaml", 10, 16, "spec.parallelism", "invalid parallelism \"8\": expected a whole number from 1 to 256, got a string: remove the quotes", 1 },
	{ "bad-host-key.yaml", 14, 18, "spec.hosts[1].ssh.hostKey", "invalid host key \"SHA256:short\"", 1 },
	{ "bad-host-key-bits.yaml", 14, 18, "spec.hosts[1].ssh.hostKey", "43 base64 characters", 1 },
	{ "bad-address.yaml", 12, 22, "spec.hosts[1].ssh.address", "invalid address \"host name\"", 1 },
	{ "bad-user.yaml", 12, 40, "spec.hosts[1].ssh.user", "invalid user name \"-oProxyCommand=x\"", 1 },
	{ "bad-from-host-unknown.yaml", 6, 26, "spec.kubeconfig.fromHost", "unknown host \"cp2\": did you mean \"cp1\"?", 1 },
	{ "bad-from-host-worker.yaml", 6, 26, "spec.kubeconfig.fromHost", "host \"w1\" is a worker", 1 },
	{ "bad-from-host-and-path.yaml", 8, 5, "spec.kubeconfig.fromHost", "path and fromHost are both given", 1 },
	{ "bad-kubeconfig-missing.yaml", 6, 22, "spec.kubeconfig.path", "cannot read kubeconfig \"tests/fixtures/config/no-such-kubeconfig\": No such file or directory", 1 },
	{ "bad-duration-no-unit.yaml", 10, 25, "spec.timeouts.component", "invalid duration \"15\": give a unit", 1 },
	{ "bad-duration-order.yaml", 10, 23, "spec.timeouts.install", "invalid duration \"30m1h\"", 1 },
	{ "bad-duration-zero.yaml", 11, 16, "spec.timeouts.component", "invalid duration \"0s\": use 1s to 168h", 1 },
	{ "bad-duration-too-long.yaml", 11, 14, "spec.timeouts.install", "invalid duration \"200h\": use 1s to 168h", 1 },
	{ "bad-timeouts-order.yaml", 11, 16, "spec.timeouts.component", "the component timeout (10800s) is longer than the install timeout (7200s)", 1 },
	{ "bad-parallelism.yaml", 10, 16, "spec.parallelism", "invalid parallelism \"0\": use 1-256", 1 },
	{ "bad-state-dir-relative.yaml", 10, 13, "spec.stateDir", "invalid path \"state\": use an absolute path", 1 },
	{ "bad-path-unset-variable.yaml", 14, 21, "spec.hosts[1].ssh.knownHosts", "environment variable \"MLBOOT_TEST_UNSET_VARIABLE\" is not set", 1 },
	{ "bad-path-tilde-user.yaml", 14, 18, "spec.hosts[1].ssh.keyPath", "only \"~/\" is expanded", 1 },
	{ "bad-known-hosts-missing.yaml", 14, 21, "spec.hosts[1].ssh.knownHosts", "cannot read known_hosts file", 1 },
	{ "bad-key-missing.yaml", 14, 18, "spec.hosts[1].ssh.keyPath", "cannot read key file \"tests/fixtures/config/no-such-key\": No such file or directory", 1 },
	{ "bad-key-is-folder.yaml", 14, 18, "spec.hosts[1].ssh.keyPath", "not a regular file", 1 },
	{ "bad-passphrase-without-key.yaml", 14, 24, "spec.hosts[1].ssh.passphraseEnv", "passphraseEnv needs keyPath", 1 },
	{ "bad-bundle-scheme.yaml", 6, 11, "spec.bundle", "unsupported URL scheme", 1 },
	{ "bad-bundle-http.yaml", 6, 11, "spec.bundle", "invalid bundle URL \"http://mirror.example.internal/platform.bundle\": mlboot install downloads only https:// URLs", 1 },
	{ "bad-images-mode.yaml", 10, 18, "spec.images.mode", "invalid mode \"registry\": only containerd is supported", 1 },
	{ "bad-istio-profile.yaml", 12, 22, "spec.components.istio.profile", "invalid profile \"minimal\"", 1 },
	{ "bad-istio-profile-demo.yaml", 12, 22, "spec.components.istio.profile", "invalid profile \"demo\": mlboot cannot change Istio's profile", 1 },
	{ "bad-kserve-mode.yaml", 13, 30, "spec.components.kserve.deploymentMode", "invalid deployment mode \"ModelMesh\"", 1 },
	{ "bad-component-needs.yaml", 12, 5, "spec.components.kserve", "kserve needs certManager, which is not listed", 1 },
	{ "bad-component-type.yaml", 11, 18, "spec.components.certManager", "expected a map (use {} for the defaults), got a boolean", 1 },
	{ "bad-yaml-syntax.yaml", 11, 1, "", "did not find expected ',' or ']'", 1 },
	{ "bad-duplicate-key.yaml", 10, 7, "", "duplicate key \"role\"", 1 },
	{ "bad-name-type.yaml", 7, 13, "spec.hosts[0].name", "expected a string, got an integer \"123\": put the value in quotes", 1 },
	{ "bad-bool-type.yaml", 9, 14, "spec.hosts[0].local", "expected a boolean (true or false), got a string", 1 },
	{ "bad-control-character.yaml", 12, 22, "spec.hosts[1].ssh.address", "invalid value \"192.0.2.21\\x1b[31m\": control characters are not allowed", 1 },
	{ "bad-not-a-map.yaml", 1, 1, "", "expected a map with apiVersion, kind, metadata and spec, got a list", 1 },
	{ "bad-many.yaml", 14, 15, "spec.hosts[1].ssh.port", "invalid port \"0\"", 5 },
};

static bool problem_matches(const struct config_problem *problem, const struct bad_case *c)
{
	return problem->line == c->line && problem->column == c->column &&
	       strcmp(problem->field, c->field) == 0 && strstr(problem->message, c->fragment);
}

static void print_problems(const struct config_problems *problems, const char *file)
{
	for (size_t i = 0; i < problems->count; i++) {
		char *line = config_problem_format(&problems->items[i], file);

		print_message("  got: %s\n", line ? line : "(out of memory)");
		free(line);
	}
}

static void test_bad_fixtures(void **state)
{
	(void)state;
	unsetenv("MLBOOT_TEST_UNSET_VARIABLE");
	for (size_t i = 0; i < ARRAY_SIZE(bad_cases); i++) {
		const struct bad_case *c = &bad_cases[i];
		struct config_problems problems = { 0 };
		struct config config;
		char path[256];
		bool found = false;
		int r;

		snprintf(path, sizeof(path), FIXTURES "%s", c->file);
		r = config_load(path, &config, &problems);
		for (size_t j = 0; j < problems.count; j++)
			found = found || problem_matches(&problems.items[j], c);
		if (!found || r != MLB_EINPUT || (c->count && problems.count != c->count)) {
			print_message("%s: expected %u:%u %s: ...%s... (%zu problems), result %d\n", c->file,
				      c->line, c->column, c->field, c->fragment, c->count, r);
			print_problems(&problems, path);
		}
		assert_int_equal(r, MLB_EINPUT);
		assert_true(found);
		if (c->count)
			assert_int_equal(problems.count, c->count);
		assert_null(config.hosts);
		assert_null(config.name);
		config_problems_release(&problems);
	}
}

static void test_bad_fixture_count(void **state)
{
	(void)state;
	assert_true(ARRAY_SIZE(bad_cases) >= 25);
}

static void test_problem_format(void **state)
{
	struct config_problem problem = { 12, 7, (char *)"spec.hosts[1].ssh.port",
					  (char *)"invalid port \"70000\": use 1-65535" };
	struct config_problem whole = { 0, 0, (char *)"", (char *)"cannot read the configuration" };
	char *line;

	(void)state;
	line = config_problem_format(&problem, "mlboot.yaml");
	assert_string_equal(line, "mlboot.yaml:12:7: spec.hosts[1].ssh.port: invalid port \"70000\": use 1-65535");
	free(line);
	line = config_problem_format(&whole, "mlboot.yaml");
	assert_string_equal(line, "mlboot.yaml: cannot read the configuration");
	free(line);
}

static void test_problems_sorted_and_all_reported(void **state)
{
	struct config_problems problems = { 0 };
	struct config config;

	(void)state;
	assert_int_equal(config_load(FIXTURES "bad-many.yaml", &config, &problems), MLB_EINPUT);
	assert_int_equal(problems.count, 5);
	assert_string_equal(problems.items[0].field, "metadata.name");
	assert_string_equal(problems.items[1].field, "spec.hosts[0].role");
	assert_string_equal(problems.items[2].field, "spec.hosts[1].ssh.port");
	assert_string_equal(problems.items[3].field, "spec.hosts[1].ssh.hostKey");
	assert_string_equal(problems.items[4].field, "spec.parallelism");
	for (size_t i = 1; i < problems.count; i++)
		assert_true(problems.items[i - 1].line <= problems.items[i].line);
	config_problems_release(&problems);
}

static void test_missing_file(void **state)
{
	struct config_problems problems = { 0 };
	struct config config;

	(void)state;
	assert_int_equal(config_load(FIXTURES "no-such-file.yaml", &config, &problems), MLB_EINPUT);
	assert_int_equal(problems.count, 1);
	assert_int_equal(problems.items[0].line, 0);
	assert_non_null(strstr(problems.items[0].message, "No such file or directory"));
	config_problems_release(&problems);
}

static void test_problems_capped(void **state)
{
	struct buf text = BUF_INIT(1 << 20);
	struct config_problems problems = { 0 };
	struct config config;

	(void)state;
	buf_append_str(&text, "apiVersion: mlboot.dev/v1alpha1\nkind: Platform\nmetadata: {name: a}\n"
			      "spec:\n  hosts:\n");
	for (int i = 0; i < 300; i++)
		buf_printf(&text, "    - {name: h%d, role: control-plane, ssh: {address: 192.0.2.1, port: 0}}\n", i);
	assert_int_equal(config_parse("many.yaml", text.data, text.len, &config, &problems), MLB_EINPUT);
	assert_int_equal(problems.count, CONFIG_MAX_PROBLEMS);
	assert_true(problems.dropped > 0);
	config_problems_release(&problems);
	buf_release(&text);
}

static void test_good_minimal_defaults(void **state)
{
	struct config_problems problems = { 0 };
	struct config config;

	(void)state;
	assert_int_equal(config_load(FIXTURES "good-minimal.yaml", &config, &problems), 0);
	assert_int_equal(problems.count, 0);
	assert_string_equal(config.name, "lab-a");
	assert_null(config.bundle);
	assert_null(config.kubeconfig_path);
	assert_null(config.kubeconfig_from_host);
	assert_int_equal(config.host_count, 1);
	assert_string_equal(config.hosts[0].name, "cp1");
	assert_int_equal(config.hosts[0].role, CONFIG_ROLE_CONTROL_PLANE);
	assert_true(config.hosts[0].local);
	assert_false(config.hosts[0].sudo);
	assert_null(config.hosts[0].ssh.address);
	assert_true(config.images_pin);
	assert_true(config.components.cert_manager);
	assert_true(config.components.istio);
	assert_true(config.components.kserve);
	assert_true(config.components.kubeflow);
	assert_true(config.components.argocd);
	assert_true(config.components.sample_model);
	assert_string_equal(config.components.istio_profile, "default");
	assert_int_equal(config.components.kserve_mode, CONFIG_KSERVE_RAW_DEPLOYMENT);
	assert_string_equal(config.components.sample_model_namespace, "ml");
	assert_int_equal(config.component_timeout, 15 * 60);
	assert_int_equal(config.install_timeout, 2 * 60 * 60);
	assert_string_equal(config.state_dir, "/var/lib/mlboot");
	assert_int_equal(config.parallelism, 8);
	config_release(&config);
}

static void test_good_full_values(void **state)
{
	struct config_problems problems = { 0 };
	struct config config;
	const struct config_host *host;

	(void)state;
	assert_int_equal(config_load(FIXTURES "good-full.yaml", &config, &problems), 0);
	print_problems(&problems, "good-full.yaml");
	assert_string_equal(config.bundle, "https://mirror.example.internal:8443/platform.bundle");
	assert_true(config.bundle_is_url);
	assert_string_equal(config.kubeconfig_from_host, "cp1");
	assert_string_equal(config.kubeconfig_context, "admin@lab-b");
	assert_int_equal(config.host_count, 3);

	host = config_find_host(&config, "cp1");
	assert_non_null(host);
	assert_string_equal(host->ssh.address, "192.0.2.11");
	assert_int_equal(host->ssh.port, 2222);
	assert_string_equal(host->ssh.user, "admin");
	assert_string_equal(host->ssh.host_key, "SHA256:Fa3lD3cI3sr0hD4XFbj1hD5XgSwFZtKqLFjZ9cX0Z1k");
	assert_null(host->ssh.key_path);
	assert_true(host->sudo);

	host = config_find_host(&config, "w1");
	assert_non_null(host);
	assert_int_equal(host->role, CONFIG_ROLE_WORKER);
	assert_string_equal(host->ssh.address, "2001:db8::21");
	assert_int_equal(host->ssh.port, 22);
	assert_string_equal(host->ssh.user, "root");
	assert_string_equal(host->ssh.known_hosts, FIXTURES "known_hosts");
	assert_non_null(host->ssh.bastion);
	assert_string_equal(host->ssh.bastion->address, "bastion.example.internal");
	assert_int_equal(host->ssh.bastion->port, 22);
	assert_string_equal(host->ssh.bastion->user, "jump");
	assert_null(host->ssh.bastion->key_path);
	assert_string_equal(host->ssh.bastion->host_key, "SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU");

	host = config_find_host(&config, "w2");
	assert_non_null(host);
	assert_true(host->local);
	assert_null(config_find_host(&config, "w3"));

	assert_false(config.images_pin);
	assert_true(config.components.argocd);
	assert_true(config.components.listed);
	assert_string_equal(config.components.istio_profile, "default");
	assert_int_equal(config.components.kserve_mode, CONFIG_KSERVE_SERVERLESS);
	assert_int_equal(config.components.kserve_mode_at.line, 36);
	assert_string_equal(config.components.sample_model_namespace, "models");
	assert_int_equal(config.components.sample_model_namespace_at.line, 39);
	assert_int_equal(config.component_timeout, 90);
	assert_int_equal(config.install_timeout, 5400);
	assert_string_equal(config.state_dir, "/srv/mlboot");
	assert_int_equal(config.parallelism, 16);
	config_release(&config);
}

static void test_components_listed_only(void **state)
{
	static const char text[] =
		"apiVersion: mlboot.dev/v1alpha1\nkind: Platform\nmetadata: {name: a}\n"
		"spec:\n  hosts: [{name: cp1, role: control-plane, local: true}]\n"
		"  components: {certManager: {}, argocd: {}}\n";
	struct config_problems problems = { 0 };
	struct config config;

	(void)state;
	assert_int_equal(config_parse("c.yaml", text, strlen(text), &config, &problems), 0);
	assert_true(config.components.cert_manager);
	assert_true(config.components.argocd);
	assert_false(config.components.istio);
	assert_false(config.components.kserve);
	assert_false(config.components.kubeflow);
	assert_false(config.components.sample_model);
	config_release(&config);
}

static const char components_text[] =
	"apiVersion: mlboot.dev/v1alpha1\nkind: Platform\nmetadata: {name: a}\n"
	"spec:\n  hosts: [{name: cp1, role: control-plane, local: true}]\n"
	"  components:\n"
	"    certManager: {}\n"
	"    argocd: {}\n";

static void test_components_not_given(void **state)
{
	static const char text[] =
		"apiVersion: mlboot.dev/v1alpha1\nkind: Platform\nmetadata: {name: a}\n"
		"spec:\n  hosts: [{name: cp1, role: control-plane, local: true}]\n";
	static const char *const bundle[] = { "cert-manager" };
	struct config_problems problems = { 0 };
	struct config config;

	(void)state;
	assert_int_equal(config_parse("c.yaml", text, strlen(text), &config, &problems), 0);
	assert_false(config.components.listed);
	assert_true(config_component_selected(&config, "kubeflow"));
	assert_true(config_component_selected(&config, "knative-serving"));
	assert_true(config_component_selected(&config, "custom-part"));
	assert_int_equal(config.components.at[CONFIG_COMPONENT_CERT_MANAGER].line, 0);
	assert_int_equal(config.components.kserve_mode_at.line, 0);
	assert_int_equal(config.components.sample_model_namespace_at.line, 0);
	/* Without spec.components a bundle of any components fits. */
	assert_int_equal(config_check_bundle_components(&config, bundle, 1, "b.bundle", &problems), 0);
	assert_int_equal(problems.count, 0);
	config_release(&config);
}

static void test_components_empty_rejected(void **state)
{
	static const char text[] =
		"apiVersion: mlboot.dev/v1alpha1\nkind: Platform\nmetadata: {name: a}\n"
		"spec:\n  hosts: [{name: cp1, role: control-plane, local: true}]\n"
		"  components: {}\n";
	struct config_problems problems = { 0 };
	struct config config;

	(void)state;
	assert_int_equal(config_parse("c.yaml", text, strlen(text), &config, &problems), MLB_EINPUT);
	assert_int_equal(problems.count, 1);
	assert_string_equal(problems.items[0].field, "spec.components");
	assert_int_equal(problems.items[0].line, 6);
	assert_non_null(strstr(problems.items[0].message, "lists no component"));
	config_problems_release(&problems);
}

static void test_component_names_mapped(void **state)
{
	static const struct {
		const char *bundle_name;
		int component;
	} cases[] = {
		{ "cert-manager", CONFIG_COMPONENT_CERT_MANAGER }, { "istio", CONFIG_COMPONENT_ISTIO },
		{ "knative-serving", CONFIG_COMPONENT_KSERVE },    { "kserve", CONFIG_COMPONENT_KSERVE },
		{ "kubeflow", CONFIG_COMPONENT_KUBEFLOW },         { "argocd", CONFIG_COMPONENT_ARGOCD },
		{ "sample-model", CONFIG_COMPONENT_SAMPLE_MODEL }, { "certManager", -1 },
		{ "sampleModel", -1 },                             { "custom-part", -1 },
	};

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		if (config_component_of(cases[i].bundle_name) != cases[i].component)
			print_message("%s: got %d\n", cases[i].bundle_name, config_component_of(cases[i].bundle_name));
		assert_int_equal(config_component_of(cases[i].bundle_name), cases[i].component);
	}
	assert_string_equal(config_component_key(CONFIG_COMPONENT_SAMPLE_MODEL), "sampleModel");
	assert_string_equal(config_component_bundle_name(CONFIG_COMPONENT_SAMPLE_MODEL), "sample-model");
	assert_string_equal(config_component_key(CONFIG_COMPONENT_CERT_MANAGER), "certManager");
	assert_string_equal(config_component_bundle_name(CONFIG_COMPONENT_CERT_MANAGER), "cert-manager");
	assert_null(config_component_key(CONFIG_COMPONENT_COUNT));
}

static void test_components_selected(void **state)
{
	static const char with_kserve[] =
		"apiVersion: mlboot.dev/v1alpha1\nkind: Platform\nmetadata: {name: a}\n"
		"spec:\n  hosts: [{name: cp1, role: control-plane, local: true}]\n"
		"  components: {certManager: {}, istio: {}, kserve: {}}\n";
	struct config_problems problems = { 0 };
	struct config config;

	(void)state;
	assert_int_equal(config_parse("c.yaml", components_text, strlen(components_text), &config, &problems), 0);
	assert_true(config.components.listed);
	assert_true(config_component_selected(&config, "cert-manager"));
	assert_true(config_component_selected(&config, "argocd"));
	assert_false(config_component_selected(&config, "istio"));
	assert_false(config_component_selected(&config, "kserve"));
	assert_false(config_component_selected(&config, "knative-serving"));
	assert_false(config_component_selected(&config, "kubeflow"));
	assert_false(config_component_selected(&config, "sample-model"));
	assert_false(config_component_selected(&config, "custom-part"));
	assert_int_equal(config.components.at[CONFIG_COMPONENT_CERT_MANAGER].line, 7);
	assert_int_equal(config.components.at[CONFIG_COMPONENT_CERT_MANAGER].column, 5);
	assert_int_equal(config.components.at[CONFIG_COMPONENT_ARGOCD].line, 8);
	assert_int_equal(config.components.at[CONFIG_COMPONENT_ISTIO].line, 0);
	config_release(&config);

	assert_int_equal(config_parse("c.yaml", with_kserve, strlen(with_kserve), &config, &problems), 0);
	assert_true(config_component_selected(&config, "kserve"));
	assert_true(config_component_selected(&config, "knative-serving"));
	assert_false(config_component_selected(&config, "argocd"));
	config_release(&config);
}

static void test_bundle_lacks_listed_component(void **state)
{
	static const char *const bundle[] = { "cert-manager", "istio", "kserve" };
	static const char *const full[] = { "cert-manager", "istio", "argocd" };
	struct config_problems problems = { 0 };
	struct config config;
	char *line;

	(void)state;
	assert_int_equal(config_parse("c.yaml", components_text, strlen(components_text), &config, &problems), 0);
	assert_int_equal(config_check_bundle_components(&config, full, ARRAY_SIZE(full), "lab.bundle", &problems), 0);
	assert_int_equal(problems.count, 0);
	assert_int_equal(config_check_bundle_components(&config, bundle, ARRAY_SIZE(bundle), "lab.bundle", &problems),
			 MLB_EINPUT);
	assert_int_equal(problems.count, 1);
	line = config_problem_format(&problems.items[0], "c.yaml");
	assert_non_null(line);
	assert_string_equal(line, "c.yaml:8:5: spec.components.argocd: argocd is listed, but the bundle 'lab.bundle' "
				  "has no component 'argocd': remove argocd from spec.components, or use a bundle "
				  "that has it");
	free(line);
	config_problems_release(&problems);
	config_release(&config);
}

static void test_sample_model_namespace_position(void **state)
{
	static const char text[] =
		"apiVersion: mlboot.dev/v1alpha1\nkind: Platform\nmetadata: {name: a}\n"
		"spec:\n  hosts: [{name: cp1, role: control-plane, local: true}]\n"
		"  components:\n"
		"    certManager: {}\n"
		"    istio: {profile: default}\n"
		"    kserve: {deploymentMode: RawDeployment}\n"
		"    sampleModel: {namespace: zzz}\n";
	struct config_problems problems = { 0 };
	struct config config;

	(void)state;
	assert_int_equal(config_parse("c.yaml", text, strlen(text), &config, &problems), 0);
	assert_string_equal(config.components.sample_model_namespace, "zzz");
	assert_int_equal(config.components.sample_model_namespace_at.line, 10);
	assert_int_equal(config.components.sample_model_namespace_at.column, 30);
	assert_int_equal(config.components.kserve_mode, CONFIG_KSERVE_RAW_DEPLOYMENT);
	assert_int_equal(config.components.kserve_mode_at.line, 9);
	assert_int_equal(config.components.kserve_mode_at.column, 30);
	assert_string_equal(config.components.istio_profile, "default");
	config_release(&config);
}

static void test_duration_parsing(void **state)
{
	static const struct {
		const char *text;
		int result;
		unsigned seconds;
	} cases[] = {
		{ "90s", 0, 90 },       { "15m", 0, 900 },        { "2h", 0, 7200 },
		{ "1h30m", 0, 5400 },   { "1h1s", 0, 3601 },      { "1h30m15s", 0, 5415 },
		{ "90m", 0, 5400 },     { "168h", 0, 604800 },    { "1s", 0, 1 },
		{ "", -EINVAL, 0 },     { "15", -EINVAL, 0 },     { "m", -EINVAL, 0 },
		{ "1.5h", -EINVAL, 0 }, { "30m1h", -EINVAL, 0 },  { "1h1h", -EINVAL, 0 },
		{ "-1s", -EINVAL, 0 },  { " 1s", -EINVAL, 0 },    { "1s ", -EINVAL, 0 },
		{ "1d", -EINVAL, 0 },   { "1H", -EINVAL, 0 },     { "10ms", -EINVAL, 0 },
		{ "0s", -ERANGE, 0 },   { "0h0m0s", -ERANGE, 0 }, { "169h", -ERANGE, 0 },
		{ "167h61m", -ERANGE, 0 }, { "9999999999s", -ERANGE, 0 },
	};

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		unsigned seconds = 12345;
		int r = config_parse_duration(cases[i].text, &seconds);

		if (r != cases[i].result)
			print_message("duration \"%s\": got %d, expected %d\n", cases[i].text, r, cases[i].result);
		assert_int_equal(r, cases[i].result);
		if (r == 0)
			assert_int_equal(seconds, cases[i].seconds);
		else
			assert_int_equal(seconds, 12345);
	}
}

static void test_host_key_form(void **state)
{
	static const char *const good[] = {
		"SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU",
		"SHA256:APlAQqw+/xAaqknHFeErcmgeckni4i/qYon0I/4PlZw",
	};
	static const char *const bad[] = {
		"",
		"SHA256:",
		"sha256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU",
		"MD5:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU",
		"SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=",
		"SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuF",
		"SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFV",
		"SHA256:47DEQpj8HBSa-_TImW+5JCeuQeRkm5NMpJWZG3hSuFU",
		"SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU ",
		"ssh-ed25519 SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU",
	};

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(good); i++)
		assert_true(config_host_key_valid(good[i]));
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		if (config_host_key_valid(bad[i]))
			print_message("accepted \"%s\"\n", bad[i]);
		assert_false(config_host_key_valid(bad[i]));
	}
}

/* A temporary folder with files for the path and key tests; removed by the teardown. */
struct scratch {
	char dir[64];
};

static int scratch_setup(void **state)
{
	struct scratch *scratch = calloc(1, sizeof(*scratch));

	if (!scratch)
		return -1;
	snprintf(scratch->dir, sizeof(scratch->dir), "/tmp/mlboot-test-config.XXXXXX");
	if (!mkdtemp(scratch->dir)) {
		free(scratch);
		return -1;
	}
	*state = scratch;
	return 0;
}

static int scratch_teardown(void **state)
{
	struct scratch *scratch = *state;
	char command[128];

	snprintf(command, sizeof(command), "rm -rf '%s'", scratch->dir);
	if (system(command) != 0)
		return -1;
	free(scratch);
	return 0;
}

static void write_file(const char *dir, const char *name, const char *text, mode_t mode)
{
	char path[256];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	unlink(path);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	assert_int_equal(chmod(path, mode), 0);
}

#define PRIVATE_KEY \
	"-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----\n"

/*
 * Parses a config whose second host has the given ssh map (flow style),
 * named as a file in dir. Returns the result; problems are left to the caller.
 */
static int parse_with_ssh(const char *dir, const char *ssh, struct config *config,
			  struct config_problems *problems)
{
	char text[2048], name[256];

	snprintf(text, sizeof(text),
		 "apiVersion: mlboot.dev/v1alpha1\nkind: Platform\nmetadata: {name: a}\n"
		 "spec:\n  hosts:\n    - {name: cp1, role: control-plane, local: true}\n"
		 "    - name: w1\n      role: worker\n      ssh: %s\n",
		 ssh);
	snprintf(name, sizeof(name), "%s/mlboot.yaml", dir);
	return config_parse(name, text, strlen(text), config, problems);
}

/* Expects exactly one problem, on line 9, whose message contains fragment. */
static void expect_one_problem(const char *dir, const char *ssh, const char *fragment)
{
	struct config_problems problems = { 0 };
	struct config config;
	int r = parse_with_ssh(dir, ssh, &config, &problems);

	if (problems.count != 1 || !strstr(problems.items[0].message, fragment)) {
		print_message("ssh %s: expected ...%s...\n", ssh, fragment);
		print_problems(&problems, "mlboot.yaml");
	}
	assert_int_equal(r, MLB_EINPUT);
	assert_int_equal(problems.count, 1);
	assert_int_equal(problems.items[0].line, 9);
	assert_non_null(strstr(problems.items[0].message, fragment));
	config_problems_release(&problems);
}

static void expect_valid(const char *dir, const char *ssh, struct config *config)
{
	struct config_problems problems = { 0 };
	int r = parse_with_ssh(dir, ssh, config, &problems);

	if (r != 0) {
		print_message("ssh %s: expected no problem\n", ssh);
		print_problems(&problems, "mlboot.yaml");
	}
	assert_int_equal(r, 0);
	config_problems_release(&problems);
}

static void test_key_permissions(void **state)
{
	struct scratch *scratch = *state;
	const char *dir = scratch->dir;
	char expected[512];
	struct config config;

	write_file(dir, "id_ok", PRIVATE_KEY, 0600);
	expect_valid(dir, "{address: 192.0.2.21, keyPath: id_ok}", &config);
	snprintf(expected, sizeof(expected), "%s/id_ok", dir);
	assert_string_equal(config.hosts[1].ssh.key_path, expected);
	config_release(&config);

	write_file(dir, "id_ro", PRIVATE_KEY, 0400);
	expect_valid(dir, "{address: 192.0.2.21, keyPath: id_ro}", &config);
	config_release(&config);

	write_file(dir, "id_group", PRIVATE_KEY, 0640);
	snprintf(expected, sizeof(expected), "is accessible by group or others (mode 0640): run chmod 600 %s/id_group", dir);
	expect_one_problem(dir, "{address: 192.0.2.21, keyPath: id_group}", expected);

	write_file(dir, "id_other", PRIVATE_KEY, 0604);
	expect_one_problem(dir, "{address: 192.0.2.21, keyPath: id_other}", "(mode 0604): run chmod 600");

	write_file(dir, "id_world", PRIVATE_KEY, 0644);
	expect_one_problem(dir, "{address: 192.0.2.21, keyPath: id_world}", "(mode 0644): run chmod 600");

	write_file(dir, "id_ed25519.pub", "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAA test\n", 0600);
	expect_one_problem(dir, "{address: 192.0.2.21, keyPath: id_ed25519.pub}", "is a public key");

	write_file(dir, "id.ppk", "PuTTY-User-Key-File-3: ssh-ed25519\n", 0600);
	expect_one_problem(dir, "{address: 192.0.2.21, keyPath: id.ppk}", "PuTTY format");

	write_file(dir, "notes.txt", "not a key\n", 0600);
	expect_one_problem(dir, "{address: 192.0.2.21, keyPath: notes.txt}", "is not a private key");

	/* The bastion's key is checked the same way. */
	expect_one_problem(dir, "{address: 192.0.2.21, bastion: {address: 192.0.2.1, keyPath: id_world}}",
			   "(mode 0644): run chmod 600");
}

static void test_bastion_defaults(void **state)
{
	struct scratch *scratch = *state;
	struct config config;
	struct node_host node;

	write_file(scratch->dir, "id_ok", PRIVATE_KEY, 0600);
	write_file(scratch->dir, "known_hosts", "", 0644);
	setenv("MLBOOT_TEST_PASSPHRASE", "secret", 1);
	expect_valid(scratch->dir,
		     "{address: 192.0.2.21, user: ops, keyPath: id_ok, passphraseEnv: MLBOOT_TEST_PASSPHRASE, knownHosts: known_hosts, bastion: {address: 192.0.2.1, port: 2200}}",
		     &config);
	assert_string_equal(config.hosts[1].ssh.passphrase_env, "MLBOOT_TEST_PASSPHRASE");
	assert_string_equal(config.hosts[1].ssh.bastion->user, "ops");
	assert_string_equal(config.hosts[1].ssh.bastion->key_path, config.hosts[1].ssh.key_path);
	assert_int_equal(config.hosts[1].ssh.bastion->port, 2200);

	assert_int_equal(config_host_to_node(&config.hosts[1], &node), 0);
	assert_string_equal(node.name, "w1");
	assert_false(node.local);
	assert_int_equal(node.role, NODE_ROLE_WORKER);
	assert_string_equal(node.ssh.address, "192.0.2.21");
	assert_int_equal(node.ssh.port, 22);
	assert_string_equal(node.ssh.user, "ops");
	assert_string_equal(node.ssh.key_path, config.hosts[1].ssh.key_path);
	assert_string_equal(node.ssh.passphrase_env, "MLBOOT_TEST_PASSPHRASE");
	assert_string_equal(node.ssh.known_hosts, config.hosts[1].ssh.known_hosts);
	assert_non_null(node.ssh.bastion);
	assert_string_equal(node.ssh.bastion->address, "192.0.2.1");
	assert_int_equal(node.ssh.bastion->port, 2200);
	assert_string_equal(node.ssh.bastion->known_hosts, config.hosts[1].ssh.known_hosts);
	assert_string_equal(node.ssh.bastion->passphrase_env, "MLBOOT_TEST_PASSPHRASE");
	node_host_release(&node);

	assert_int_equal(config_host_to_node(&config.hosts[0], &node), 0);
	assert_true(node.local);
	assert_int_equal(node.role, NODE_ROLE_CONTROL_PLANE);
	assert_null(node.ssh.address);
	node_host_release(&node);
	config_release(&config);
	unsetenv("MLBOOT_TEST_PASSPHRASE");
}

static void test_passphrase_variable_unset(void **state)
{
	struct scratch *scratch = *state;

	write_file(scratch->dir, "id_ok", PRIVATE_KEY, 0600);
	unsetenv("MLBOOT_TEST_PASSPHRASE");
	expect_one_problem(scratch->dir, "{address: 192.0.2.21, keyPath: id_ok, passphraseEnv: MLBOOT_TEST_PASSPHRASE}",
			   "environment variable \"MLBOOT_TEST_PASSPHRASE\" is not set");
	expect_one_problem(scratch->dir, "{address: 192.0.2.21, keyPath: id_ok, passphraseEnv: 1PASS}",
			   "invalid variable name \"1PASS\"");
}

static void test_known_hosts_permissions(void **state)
{
	struct scratch *scratch = *state;
	struct config config;

	write_file(scratch->dir, "kh_ok", "", 0644);
	expect_valid(scratch->dir, "{address: 192.0.2.21, knownHosts: kh_ok}", &config);
	config_release(&config);
	write_file(scratch->dir, "kh_open", "", 0666);
	expect_one_problem(scratch->dir, "{address: 192.0.2.21, knownHosts: kh_open}",
			   "writable by group or others (mode 0666): run chmod 644");
	write_file(scratch->dir, "kh_ok", "", 0644);
	expect_one_problem(scratch->dir, "{address: 192.0.2.21, knownHosts: kh_ok, hostKey: \"SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU\"}",
			   "hostKey and knownHosts are both given");
}

static void test_path_expansion(void **state)
{
	struct scratch *scratch = *state;
	char ssh[1024], expected[512];
	const char *home = getenv("HOME");
	char *saved_home = home ? strdup(home) : NULL;
	struct config config;

	write_file(scratch->dir, "kh", "", 0644);
	snprintf(expected, sizeof(expected), "%s/kh", scratch->dir);

	/* $VAR and ${VAR}. */
	setenv("MLBOOT_TEST_DIR", scratch->dir, 1);
	expect_valid(scratch->dir, "{address: 192.0.2.21, knownHosts: $MLBOOT_TEST_DIR/kh}", &config);
	assert_string_equal(config.hosts[1].ssh.known_hosts, expected);
	config_release(&config);
	expect_valid(scratch->dir, "{address: 192.0.2.21, knownHosts: \"${MLBOOT_TEST_DIR}/kh\"}", &config);
	assert_string_equal(config.hosts[1].ssh.known_hosts, expected);
	config_release(&config);

	/* ~/ is $HOME. */
	setenv("HOME", scratch->dir, 1);
	expect_valid(scratch->dir, "{address: 192.0.2.21, knownHosts: ~/kh}", &config);
	assert_string_equal(config.hosts[1].ssh.known_hosts, expected);
	config_release(&config);

	/* A relative path is relative to the folder of mlboot.yaml. */
	expect_valid(scratch->dir, "{address: 192.0.2.21, knownHosts: kh}", &config);
	assert_string_equal(config.hosts[1].ssh.known_hosts, expected);
	config_release(&config);

	/* An absolute path stays as it is. */
	snprintf(ssh, sizeof(ssh), "{address: 192.0.2.21, knownHosts: %s}", expected);
	expect_valid(scratch->dir, ssh, &config);
	assert_string_equal(config.hosts[1].ssh.known_hosts, expected);
	config_release(&config);

	unsetenv("MLBOOT_TEST_MISSING");
	expect_one_problem(scratch->dir, "{address: 192.0.2.21, knownHosts: \"${MLBOOT_TEST_MISSING}/kh\"}",
			   "environment variable \"MLBOOT_TEST_MISSING\" is not set");
	expect_one_problem(scratch->dir, "{address: 192.0.2.21, knownHosts: \"${MLBOOT_TEST_DIR/kh\"}",
			   "a variable must be written $NAME or ${NAME}");
	expect_one_problem(scratch->dir, "{address: 192.0.2.21, knownHosts: \"${}/kh\"}",
			   "a variable must be written $NAME or ${NAME}");

	if (saved_home)
		setenv("HOME", saved_home, 1);
	else
		unsetenv("HOME");
	free(saved_home);
	unsetenv("MLBOOT_TEST_DIR");
}

static void test_state_dir_expansion(void **state)
{
	static const char text[] =
		"apiVersion: mlboot.dev/v1alpha1\nkind: Platform\nmetadata: {name: a}\n"
		"spec:\n  hosts: [{name: cp1, role: control-plane, local: true}]\n"
		"  stateDir: $MLBOOT_TEST_STATE/mlboot\n";
	struct config_problems problems = { 0 };
	struct config config;

	(void)state;
	setenv("MLBOOT_TEST_STATE", "/srv/state", 1);
	assert_int_equal(config_parse("s.yaml", text, strlen(text), &config, &problems), 0);
	assert_string_equal(config.state_dir, "/srv/state/mlboot");
	config_release(&config);
	unsetenv("MLBOOT_TEST_STATE");
}

static void test_example_is_valid(void **state)
{
	struct scratch *scratch = *state;
	struct config_problems problems = { 0 };
	struct config config;
	const char *home = getenv("HOME");
	char *saved_home = home ? strdup(home) : NULL;
	char ssh_dir[256];
	int r;

	/* The example names ~/.ssh/id_ed25519 and ~/.ssh/known_hosts: a scratch HOME has both. */
	snprintf(ssh_dir, sizeof(ssh_dir), "%s/.ssh", scratch->dir);
	assert_int_equal(mkdir(ssh_dir, 0700), 0);
	write_file(ssh_dir, "id_ed25519", PRIVATE_KEY, 0600);
	write_file(ssh_dir, "known_hosts", "", 0644);
	setenv("HOME", scratch->dir, 1);
	setenv("MLBOOT_KEY_PASSPHRASE", "example", 1);
	r = config_load("docs/mlboot.yaml.example", &config, &problems);
	print_problems(&problems, "docs/mlboot.yaml.example");
	assert_int_equal(r, 0);
	assert_true(config.host_count >= 3);
	config_release(&config);
	unsetenv("MLBOOT_KEY_PASSPHRASE");
	if (saved_home)
		setenv("HOME", saved_home, 1);
	else
		unsetenv("HOME");
	free(saved_home);
}

static void test_file_too_large(void **state)
{
	struct scratch *scratch = *state;
	struct config_problems problems = { 0 };
	struct config config;
	char path[256];
	char *big = malloc(CONFIG_MAX_BYTES + 2);

	assert_non_null(big);
	memset(big, '#', CONFIG_MAX_BYTES + 1);
	big[CONFIG_MAX_BYTES + 1] = '\0';
	write_file(scratch->dir, "big.yaml", big, 0644);
	free(big);
	snprintf(path, sizeof(path), "%s/big.yaml", scratch->dir);
	assert_int_equal(config_load(path, &config, &problems), MLB_EINPUT);
	assert_int_equal(problems.count, 1);
	assert_non_null(strstr(problems.items[0].message, "larger than"));
	config_problems_release(&problems);
}

static void test_loopback_rewrite(void **state)
{
	static const struct {
		const char *server;
		const char *address;
		int result;
		const char *expected;
		bool was_name;
	} cases[] = {
		{ "https://127.0.0.1:6443", "198.18.0.11", 1, "https://198.18.0.11:6443", false },
		{ "https://127.1.2.3:6443/", "198.18.0.11", 1, "https://198.18.0.11:6443/", false },
		{ "https://localhost:6443", "cp1.lab", 1, "https://cp1.lab:6443", true },
		{ "https://LOCALHOST", "cp1.lab", 1, "https://cp1.lab", true },
		{ "https://[::1]:6443", "2001:db8::11", 1, "https://[2001:db8::11]:6443", false },
		{ "https://[::1]:6443", "198.18.0.11", 1, "https://198.18.0.11:6443", false },
		{ "https://10.0.0.1:6443", "198.18.0.11", 0, NULL, false },
		{ "https://127.example.com:6443", "198.18.0.11", 0, NULL, false },
		{ "https://localhost.example.com", "198.18.0.11", 0, NULL, false },
		{ "https://[2001:db8::1]:6443", "198.18.0.11", 0, NULL, false },
		{ "127.0.0.1:6443", "198.18.0.11", 0, NULL, false },
		{ "https://[::1", "198.18.0.11", 0, NULL, false },
	};

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		char *out = NULL;
		bool was_name = false;
		int r = config_rewrite_loopback_server(cases[i].server, cases[i].address, &out, &was_name);

		if (r != cases[i].result)
			print_message("server %s: got %d\n", cases[i].server, r);
		assert_int_equal(r, cases[i].result);
		if (cases[i].expected) {
			assert_string_equal(out, cases[i].expected);
			assert_int_equal(was_name, cases[i].was_name);
		} else {
			assert_null(out);
		}
		free(out);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bad_fixture_count),
		cmocka_unit_test(test_bad_fixtures),
		cmocka_unit_test(test_problem_format),
		cmocka_unit_test(test_problems_sorted_and_all_reported),
		cmocka_unit_test(test_missing_file),
		cmocka_unit_test(test_problems_capped),
		cmocka_unit_test(test_good_minimal_defaults),
		cmocka_unit_test(test_good_full_values),
		cmocka_unit_test(test_components_listed_only),
		cmocka_unit_test(test_components_not_given),
		cmocka_unit_test(test_components_empty_rejected),
		cmocka_unit_test(test_component_names_mapped),
		cmocka_unit_test(test_components_selected),
		cmocka_unit_test(test_bundle_lacks_listed_component),
		cmocka_unit_test(test_sample_model_namespace_position),
		cmocka_unit_test(test_duration_parsing),
		cmocka_unit_test(test_host_key_form),
		cmocka_unit_test_setup_teardown(test_key_permissions, scratch_setup, scratch_teardown),
		cmocka_unit_test_setup_teardown(test_bastion_defaults, scratch_setup, scratch_teardown),
		cmocka_unit_test_setup_teardown(test_passphrase_variable_unset, scratch_setup, scratch_teardown),
		cmocka_unit_test_setup_teardown(test_known_hosts_permissions, scratch_setup, scratch_teardown),
		cmocka_unit_test_setup_teardown(test_path_expansion, scratch_setup, scratch_teardown),
		cmocka_unit_test(test_state_dir_expansion),
		cmocka_unit_test_setup_teardown(test_example_is_valid, scratch_setup, scratch_teardown),
		cmocka_unit_test_setup_teardown(test_file_too_large, scratch_setup, scratch_teardown),
		cmocka_unit_test(test_loopback_rewrite),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
