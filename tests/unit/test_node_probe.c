#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "common.h"
#include "config.h"
#include "preflight_node.h"
#include "report.h"

/* The probe output of a Debian 12 node with containerd 1.6. */
static const char good_output[] =
	"probe_version=1\n"
	"clock_start=1700000000.100000000\n"
	"uid=0\n"
	"arch=x86_64\n"
	"kernel=6.1.0-18-amd64\n"
	"hostname=node1\n"
	"os_pretty_name=Debian GNU/Linux 12 (bookworm)\n"
	"os_version_id=12\n"
	"os_id=debian\n"
	"cgroup2=1\n"
	"cgroup_controllers=cpuset cpu io memory hugetlb pids rdma misc\n"
	"containerd_socket=1\n"
	"ctr=1\n"
	"containerd_answer=1\n"
	"containerd_version=1.6.20~ds1\n"
	"disk_path=/var/lib/containerd\n"
	"disk_total_kb=102400000\n"
	"disk_free_kb=52428800\n"
	"mem_total_kb=16384000\n"
	"swap_total_kb=0\n"
	"cpus=4\n"
	"module_overlay=1\n"
	"module_br_netfilter=1\n"
	"ip_forward=1\n"
	"bridge_nf_call_iptables=1\n"
	"clock_end=1700000000.300000000\n"
	"probe_end=1\n";

/*
 * Returns good_output with the line starting "KEY=" replaced by
 * replacement (which ends in "\n", or is "" to drop the line). Caller frees.
 */
static char *output_with(const char *key, const char *replacement)
{
	struct buf out = BUF_INIT(1 << 20);
	size_t key_len = strlen(key);

	for (const char *line = good_output; *line;) {
		const char *end = strchr(line, '\n') + 1;

		if (strncmp(line, key, key_len) == 0 && line[key_len] == '=')
			buf_append_str(&out, replacement);
		else
			buf_append(&out, line, (size_t)(end - line));
		line = end;
	}
	return buf_steal(&out);
}

static bool has_problem(const struct node_probe *probe, const char *fragment)
{
	for (size_t i = 0; i < probe->problem_count && i < NODE_PROBE_PROBLEMS_KEPT; i++)
		if (strstr(probe->problems[i], fragment))
			return true;
	for (size_t i = 0; i < probe->problem_count && i < NODE_PROBE_PROBLEMS_KEPT; i++)
		print_message("  problem: %s\n", probe->problems[i]);
	return false;
}

/* Whether no kept problem contains a byte that a terminal would interpret. */
static bool problems_printable(const struct node_probe *probe)
{
	for (size_t i = 0; i < probe->problem_count && i < NODE_PROBE_PROBLEMS_KEPT; i++)
		for (const unsigned char *p = (const unsigned char *)probe->problems[i]; *p; p++)
			if (*p < 0x20 || *p > 0x7e)
				return false;
	return true;
}

static void test_probe_good_output(void **state)
{
	struct node_probe probe;

	(void)state;
	assert_int_equal(node_probe_parse(good_output, strlen(good_output), &probe), 0);
	assert_int_equal(probe.problem_count, 0);
	assert_true(probe.begin_seen);
	assert_true(probe.end_seen);
	for (int key = 0; key < NODE_PROBE_KEY_COUNT; key++)
		assert_true(node_probe_has(&probe, (enum node_probe_key)key));
	assert_string_equal(probe.arch, "x86_64");
	assert_string_equal(probe.kernel, "6.1.0-18-amd64");
	assert_string_equal(probe.hostname, "node1");
	assert_string_equal(probe.os_id, "debian");
	assert_string_equal(probe.os_version_id, "12");
	assert_string_equal(probe.os_pretty_name, "Debian GNU/Linux 12 (bookworm)");
	assert_true(probe.cgroup2);
	assert_string_equal(probe.cgroup_controllers, "cpuset cpu io memory hugetlb pids rdma misc");
	assert_true(probe.containerd_socket);
	assert_true(probe.ctr);
	assert_true(probe.containerd_answer);
	assert_string_equal(probe.containerd_version, "1.6.20~ds1");
	assert_string_equal(probe.disk_path, "/var/lib/containerd");
	assert_int_equal(probe.disk_total_kb, 102400000ULL);
	assert_int_equal(probe.disk_free_kb, 52428800ULL);
	assert_int_equal(probe.mem_total_kb, 16384000ULL);
	assert_int_equal(probe.swap_total_kb, 0);
	assert_int_equal(probe.cpus, 4);
	assert_int_equal(probe.uid, 0);
	assert_true(probe.module_overlay);
	assert_true(probe.module_br_netfilter);
	assert_int_equal(probe.ip_forward, NODE_SYSCTL_ON);
	assert_int_equal(probe.bridge_nf_call_iptables, NODE_SYSCTL_ON);
	assert_int_equal(probe.clock_start_ns, 1700000000100000000LL);
	assert_int_equal(probe.clock_end_ns, 1700000000300000000LL);
}

static void test_probe_empty_values_allowed(void **state)
{
	char *text = output_with("ip_forward", "ip_forward=\n");
	char *text2;
	struct node_probe probe;

	(void)state;
	assert_int_equal(node_probe_parse(text, strlen(text), &probe), 0);
	assert_int_equal(probe.ip_forward, NODE_SYSCTL_ABSENT);
	assert_true(node_probe_has(&probe, NODE_PROBE_IP_FORWARD));
	free(text);

	text = output_with("containerd_version", "containerd_version=\n");
	text2 = output_with("os_pretty_name", "os_pretty_name=\n");
	assert_int_equal(node_probe_parse(text, strlen(text), &probe), 0);
	assert_string_equal(probe.containerd_version, "");
	assert_int_equal(node_probe_parse(text2, strlen(text2), &probe), 0);
	free(text);
	free(text2);
}

static void test_probe_missing_keys(void **state)
{
	char *text = output_with("cpus", "");
	char *text2;
	struct node_probe probe;

	(void)state;
	assert_int_equal(node_probe_parse(text, strlen(text), &probe), MLB_EINPUT);
	assert_false(node_probe_has(&probe, NODE_PROBE_CPUS));
	assert_true(node_probe_has(&probe, NODE_PROBE_ARCH));
	assert_true(has_problem(&probe, "missing keys: cpus"));
	free(text);

	text = output_with("arch", "");
	text2 = output_with("hostname", "");
	free(text);
	text = text2;
	text2 = output_with("clock_end", "");
	assert_int_equal(node_probe_parse(text2, strlen(text2), &probe), MLB_EINPUT);
	assert_true(has_problem(&probe, "missing keys: clock_end"));
	free(text);
	free(text2);
}

static void test_probe_hostile_values(void **state)
{
	static const struct {
		const char *key;
		const char *line;
		const char *fragment;
	} cases[] = {
		{ "hostname", "hostname=node1\033[2J\033[H\n", "invalid hostname \"node1\\x1b[2J\\x1b[H\": unexpected character" },
		{ "hostname", "hostname=node1;rm -rf /\n", "invalid hostname" },
		{ "arch", "arch=x86_64 \n", "invalid arch" },
		{ "arch", "arch=\n", "invalid arch \"\": empty value" },
		{ "kernel", "kernel=6.1\r\n", "invalid kernel \"6.1\\x0d\"" },
		{ "os_pretty_name", "os_pretty_name=Evil\aOS\n", "invalid os_pretty_name \"Evil\\x07OS\": control character" },
		{ "disk_path", "disk_path=/var/lib/$(reboot)\n", "invalid disk_path" },
		{ "containerd_version", "containerd_version=1.6 <script>\n", "invalid containerd_version" },
		{ "cpus", "cpus=0\n", "invalid cpus \"0\"" },
		{ "cpus", "cpus=4 \n", "invalid cpus" },
		{ "cpus", "cpus=+4\n", "invalid cpus" },
		{ "uid", "uid=-1\n", "invalid uid" },
		{ "uid", "uid=4294967296\n", "invalid uid" },
		{ "mem_total_kb", "mem_total_kb=99999999999999999999999\n", "invalid mem_total_kb" },
		{ "disk_free_kb", "disk_free_kb=1125899906842625\n", "invalid disk_free_kb" },
		{ "disk_free_kb", "disk_free_kb=0x10\n", "invalid disk_free_kb" },
		{ "cgroup2", "cgroup2=2\n", "invalid cgroup2 \"2\": expected 0 or 1" },
		{ "cgroup2", "cgroup2=yes\n", "invalid cgroup2" },
		{ "ip_forward", "ip_forward=10\n", "invalid ip_forward \"10\": expected 0, 1 or nothing" },
		{ "clock_start", "clock_start=1.2.3\n", "invalid clock_start" },
		{ "clock_start", "clock_start=1700000000.\n", "invalid clock_start" },
		{ "clock_start", "clock_start=1700000000.1234567890\n", "invalid clock_start" },
		{ "clock_start", "clock_start=17000000000000\n", "invalid clock_start" },
		{ "clock_end", "clock_end=%N\n", "invalid clock_end" },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *text = output_with(cases[i].key, cases[i].line);
		struct node_probe probe;
		int r = node_probe_parse(text, strlen(text), &probe);

		if (!has_problem(&probe, cases[i].fragment))
			print_message("case %zu (%s): expected ...%s...\n", i, cases[i].key, cases[i].fragment);
		assert_int_equal(r, MLB_EINPUT);
		assert_true(has_problem(&probe, cases[i].fragment));
		assert_true(problems_printable(&probe));
		/* An invalid value is not used, and no other key is lost. */
		for (int key = 0; key < NODE_PROBE_KEY_COUNT; key++)
			assert_int_equal(node_probe_has(&probe, (enum node_probe_key)key),
					 strcmp(node_probe_key_name((enum node_probe_key)key), cases[i].key) != 0);
		free(text);
	}
}

static void test_probe_time_fractions(void **state)
{
	char *text = output_with("clock_start", "clock_start=1700000000.5\n");
	struct node_probe probe;

	(void)state;
	assert_int_equal(node_probe_parse(text, strlen(text), &probe), 0);
	assert_int_equal(probe.clock_start_ns, 1700000000500000000LL);
	free(text);
	text = output_with("clock_start", "clock_start=1700000000\n");
	assert_int_equal(node_probe_parse(text, strlen(text), &probe), 0);
	assert_int_equal(probe.clock_start_ns, 1700000000000000000LL);
	free(text);
}

static void test_probe_unknown_and_duplicate_keys(void **state)
{
	char *text = output_with("cpus", "cpus=4\nsurprise=1\n");
	struct node_probe probe;

	(void)state;
	assert_int_equal(node_probe_parse(text, strlen(text), &probe), MLB_EINPUT);
	assert_true(has_problem(&probe, "unknown key \"surprise\""));
	assert_true(node_probe_has(&probe, NODE_PROBE_CPUS));
	free(text);

	/* A second and a third copy: the key is dropped, not taken from either. */
	text = output_with("uid", "uid=0\nuid=1000\nuid=0\n");
	assert_int_equal(node_probe_parse(text, strlen(text), &probe), MLB_EINPUT);
	assert_true(has_problem(&probe, "duplicate key \"uid\""));
	assert_false(node_probe_has(&probe, NODE_PROBE_UID));
	assert_int_equal(probe.problem_count, 2);
	free(text);
}

static void test_probe_noise_around_markers(void **state)
{
	struct buf text = BUF_INIT(1 << 20);
	struct node_probe probe;

	(void)state;
	buf_append_str(&text, "Welcome to node1!\n\033]0;title\007\n");
	buf_append_str(&text, good_output);
	buf_append_str(&text, "logout\n");
	assert_int_equal(node_probe_parse(text.data, text.len, &probe), MLB_EINPUT);
	assert_true(has_problem(&probe, "line 1: output before the probe began: \"Welcome to node1!\""));
	assert_true(has_problem(&probe, "2 lines of output before the probe began"));
	assert_true(has_problem(&probe, "output after the probe ended: \"logout\""));
	assert_true(problems_printable(&probe));
	/* The values between the markers are still good. */
	assert_true(node_probe_has(&probe, NODE_PROBE_CPUS));
	assert_int_equal(probe.cpus, 4);
	buf_release(&text);
}

static void test_probe_broken_structure(void **state)
{
	struct node_probe probe;
	char *text;
	size_t len = strlen(good_output);

	(void)state;
	/* No begin marker: nothing is read. */
	text = output_with("probe_version", "");
	assert_int_equal(node_probe_parse(text, strlen(text), &probe), MLB_EINPUT);
	assert_true(has_problem(&probe, "no probe output"));
	assert_false(node_probe_has(&probe, NODE_PROBE_CPUS));
	free(text);

	/* Another version. */
	text = output_with("probe_version", "probe_version=2\n");
	assert_int_equal(node_probe_parse(text, strlen(text), &probe), MLB_EINPUT);
	assert_true(has_problem(&probe, "unsupported probe version"));
	free(text);

	/* Cut output: no end marker, and a last line without its newline. */
	assert_int_equal(node_probe_parse(good_output, len - 30, &probe), MLB_EINPUT);
	assert_true(has_problem(&probe, "no line end: the output was cut"));
	assert_true(has_problem(&probe, "ended early"));
	assert_false(probe.end_seen);

	/* A line that is not key=value. */
	text = output_with("cpus", "cpus=4\njust some words\n");
	assert_int_equal(node_probe_parse(text, strlen(text), &probe), MLB_EINPUT);
	assert_true(has_problem(&probe, "not key=value: \"just some words\""));
	free(text);

	/* Empty output. */
	assert_int_equal(node_probe_parse("", 0, &probe), MLB_EINPUT);
	assert_true(has_problem(&probe, "no probe output"));
}

static void test_probe_nul_and_long_lines(void **state)
{
	struct buf text = BUF_INIT(1 << 20);
	struct node_probe probe;

	(void)state;
	buf_append_str(&text, "probe_version=1\n");
	buf_append(&text, "hostname=a\0b\n", 13);
	buf_append_str(&text, "kernel=");
	for (int i = 0; i < 2000; i++)
		buf_append_char(&text, 'k');
	buf_append_str(&text, "\nprobe_end=1\n");
	assert_int_equal(node_probe_parse(text.data, text.len, &probe), MLB_EINPUT);
	assert_true(has_problem(&probe, "line 2: NUL byte"));
	assert_true(has_problem(&probe, "line 3: longer than 1024 bytes"));
	assert_false(node_probe_has(&probe, NODE_PROBE_HOSTNAME));
	assert_false(node_probe_has(&probe, NODE_PROBE_KERNEL));
	buf_release(&text);
}

static void test_probe_garbage(void **state)
{
	unsigned char garbage[8192];
	struct node_probe probe;
	unsigned seed = 12345;

	(void)state;
	for (int round = 0; round < 200; round++) {
		size_t len = (size_t)(seed % sizeof(garbage));

		for (size_t i = 0; i < len; i++) {
			seed = seed * 1103515245u + 12345u;
			garbage[i] = (unsigned char)(seed >> 16);
		}
		/* Half the rounds start like a real probe, so the bytes reach the key parser. */
		if (round % 2 && len > 16)
			memcpy(garbage, "probe_version=1\n", 16);
		assert_int_equal(node_probe_parse((const char *)garbage, len, &probe), MLB_EINPUT);
		assert_true(probe.problem_count > 0);
		assert_true(problems_printable(&probe));
	}
}

static void test_probe_oversized_output(void **state)
{
	struct buf text = BUF_INIT(1 << 20);
	struct node_probe probe;

	(void)state;
	buf_append_str(&text, good_output);
	while (text.len <= NODE_PROBE_OUTPUT_MAX)
		buf_append_str(&text, "cpus=4\n");
	assert_int_equal(node_probe_parse(text.data, text.len, &probe), MLB_EINPUT);
	assert_true(has_problem(&probe, "output larger than"));
	assert_true(has_problem(&probe, "lines of output after the probe ended"));
	/* What came before the cut is still read. */
	assert_true(node_probe_has(&probe, NODE_PROBE_CPUS));
	buf_release(&text);
}

static void test_clock_offset(void **state)
{
	struct node_probe probe;
	int64_t offset, uncertainty;
	const int64_t second = 1000000000;

	(void)state;
	assert_int_equal(node_probe_parse(good_output, strlen(good_output), &probe), 0);
	/* The probe ran 0.2 s on the node; locally 0.3 s passed, so the round trip was 0.1 s. */
	assert_int_equal(node_probe_clock_offset(&probe, 1700000000000000000LL, 1700000000300000000LL,
						 &offset, &uncertainty), 0);
	assert_int_equal(uncertainty, second / 20);
	assert_int_equal(offset, 1700000000300000000LL - (1700000000300000000LL - second / 20));

	/* A node 90 s behind. */
	assert_int_equal(node_probe_clock_offset(&probe, 1700000090000000000LL, 1700000090300000000LL,
						 &offset, &uncertainty), 0);
	assert_true(offset < -89 * second && offset > -91 * second);

	/* A local clock that went backwards cannot be used. */
	assert_int_equal(node_probe_clock_offset(&probe, 10, 5, &offset, &uncertainty), -ENODATA);
	probe.present &= ~(1ULL << NODE_PROBE_CLOCK_END);
	assert_int_equal(node_probe_clock_offset(&probe, 0, 1, &offset, &uncertainty), -ENODATA);
}

/* A report filled by preflight_node_evaluate() for one probe output. */
struct evaluated {
	struct report report;
	struct config_host host;
};

static void evaluate(const char *output, uint64_t space_needed, int64_t local_start_ns,
		     struct evaluated *out)
{
	struct node_probe probe;
	struct node_probe_context context;

	memset(out, 0, sizeof(*out));
	out->host.name = (char *)"node1";
	out->host.role = CONFIG_ROLE_CONTROL_PLANE;
	memset(&context, 0, sizeof(context));
	context.host = &out->host;
	context.space_needed = space_needed;
	context.local_start_ns = local_start_ns;
	context.local_end_ns = local_start_ns + 300000000LL;
	node_probe_parse(output, strlen(output), &probe);
	assert_int_equal(report_init(&out->report, "preflight", NULL), 0);
	assert_int_equal(preflight_node_evaluate(&probe, &context, &out->report), 0);
}

static const struct check_result *find_check(const struct report *report, const char *id)
{
	for (size_t i = 0; i < report->count; i++)
		if (strcmp(report->checks[i].id, id) == 0)
			return &report->checks[i];
	print_message("no check %s\n", id);
	return NULL;
}

static void assert_check(const struct report *report, const char *id, enum check_status status,
			 const char *fragment)
{
	const struct check_result *check = find_check(report, id);

	assert_non_null(check);
	if (check->status != status || !strstr(check->evidence, fragment))
		print_message("%s: %s: %s\n", id, check_status_name(check->status), check->evidence);
	assert_int_equal(check->status, status);
	assert_non_null(strstr(check->evidence, fragment));
	assert_string_equal(check->group, "node node1");
	if (status == CHECK_PASS)
		assert_null(check->remedy);
	else
		assert_non_null(check->remedy);
}

static void test_evaluate_good_node(void **state)
{
	struct evaluated e;

	(void)state;
	evaluate(good_output, 20ULL << 30, 1700000000000000000LL, &e);
	assert_check(&e.report, "node.probe", CHECK_PASS, "values read");
	assert_check(&e.report, "node.arch", CHECK_PASS, "x86_64 (linux/amd64)");
	assert_check(&e.report, "node.os", CHECK_PASS, "Debian GNU/Linux 12 (bookworm)");
	assert_check(&e.report, "node.cgroup", CHECK_PASS, "cgroup v2");
	assert_check(&e.report, "node.containerd", CHECK_PASS, "containerd 1.6.20~ds1");
	assert_check(&e.report, "node.disk", CHECK_PASS, "50.0 GiB free of 97.7 GiB at /var/lib/containerd; 20.0 GiB needed");
	assert_check(&e.report, "node.memory", CHECK_PASS, "15.6 GiB");
	assert_check(&e.report, "node.cpus", CHECK_PASS, "4 online");
	assert_check(&e.report, "node.swap", CHECK_PASS, "no swap");
	assert_check(&e.report, "node.overlay", CHECK_PASS, "overlay");
	assert_check(&e.report, "node.br_netfilter", CHECK_PASS, "loaded");
	assert_check(&e.report, "node.ip_forward", CHECK_PASS, "net.ipv4.ip_forward = 1");
	assert_check(&e.report, "node.bridge_nf_call_iptables", CHECK_PASS, "= 1");
	assert_check(&e.report, "node.clock", CHECK_PASS, "0.050 s ahead of this machine");
	assert_int_equal(report_count(&e.report, CHECK_FAIL), 0);
	assert_int_equal(report_count(&e.report, CHECK_WARN), 0);
	report_release(&e.report);
}

static void test_evaluate_failures(void **state)
{
	static const struct {
		const char *key;
		const char *line;
		const char *id;
		enum check_status status;
		const char *fragment;
	} cases[] = {
		{ "disk_free_kb", "disk_free_kb=1024\n", "node.disk", CHECK_FAIL, "1.0 MiB free" },
		{ "containerd_socket", "containerd_socket=0\n", "node.containerd", CHECK_FAIL, "no socket at /run/containerd/containerd.sock" },
		{ "ctr", "ctr=0\n", "node.containerd", CHECK_FAIL, "ctr is not in PATH" },
		{ "containerd_answer", "containerd_answer=0\n", "node.containerd", CHECK_FAIL, "got no answer" },
		{ "containerd_version", "containerd_version=1.5.9\n", "node.containerd", CHECK_FAIL, "containerd 1.5.9" },
		{ "containerd_version", "containerd_version=v2.0.0\n", "node.containerd", CHECK_PASS, "containerd v2.0.0" },
		{ "containerd_version", "containerd_version=unknown\n", "node.containerd", CHECK_WARN, "could not be read" },
		{ "swap_total_kb", "swap_total_kb=2097152\n", "node.swap", CHECK_WARN, "swap is on: 2.0 GiB" },
		{ "mem_total_kb", "mem_total_kb=1000000\n", "node.memory", CHECK_WARN, "976.6 MiB" },
		{ "cpus", "cpus=1\n", "node.cpus", CHECK_WARN, "1 online CPU on a control-plane host" },
		{ "module_overlay", "module_overlay=0\n", "node.overlay", CHECK_FAIL, "no /sys/module/overlay" },
		{ "module_br_netfilter", "module_br_netfilter=0\n", "node.br_netfilter", CHECK_WARN, "not loaded" },
		{ "ip_forward", "ip_forward=0\n", "node.ip_forward", CHECK_FAIL, "net.ipv4.ip_forward = 0" },
		{ "ip_forward", "ip_forward=\n", "node.ip_forward", CHECK_FAIL, "no /proc/sys/net/ipv4/ip_forward" },
		{ "bridge_nf_call_iptables", "bridge_nf_call_iptables=0\n", "node.bridge_nf_call_iptables", CHECK_WARN, "= 0" },
		{ "bridge_nf_call_iptables", "bridge_nf_call_iptables=\n", "node.bridge_nf_call_iptables", CHECK_WARN, "no /proc/sys/net/bridge/bridge-nf-call-iptables" },
		{ "cgroup2", "cgroup2=0\n", "node.cgroup", CHECK_WARN, "cgroup v1" },
		{ "cgroup_controllers", "cgroup_controllers=cpuset io\n", "node.cgroup", CHECK_WARN, "without the controllers cpu memory pids" },
		{ "arch", "arch=riscv64\n", "node.arch", CHECK_WARN, "riscv64 (linux/riscv64)" },
		{ "arch", "arch=mips\n", "node.arch", CHECK_FAIL, "unknown machine type mips" },
		{ "os_id", "os_id=\n", "node.os", CHECK_WARN, "no /etc/os-release" },
		{ "disk_path", "disk_path=/var/lib\n", "node.disk", CHECK_PASS, "at /var/lib (/var/lib/containerd does not exist yet)" },
		{ "cpus", "cpus=many\n", "node.cpus", CHECK_WARN, "the probe returned no valid cpus" },
		{ "disk_free_kb", "disk_free_kb=\n", "node.disk", CHECK_FAIL, "the probe returned no valid disk_free_kb" },
		{ "hostname", "hostname=a\033b\n", "node.probe", CHECK_FAIL, "invalid hostname \"a\\x1bb\"" },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *text = output_with(cases[i].key, cases[i].line);
		struct evaluated e;

		print_message("case %zu: %s\n", i, cases[i].line);
		evaluate(text, 20ULL << 30, 1700000000000000000LL, &e);
		assert_check(&e.report, cases[i].id, cases[i].status, cases[i].fragment);
		report_release(&e.report);
		free(text);
	}
}

static void test_evaluate_uid_without_sudo(void **state)
{
	char *text = output_with("containerd_answer", "containerd_answer=0\n");
	char *text2 = NULL;
	struct evaluated e;

	(void)state;
	text2 = strstr(text, "uid=0\n");
	assert_non_null(text2);
	memcpy(text2, "uid=9\n", 6);
	evaluate(text, 20ULL << 30, 1700000000000000000LL, &e);
	assert_check(&e.report, "node.containerd", CHECK_FAIL, "as uid 9");
	assert_non_null(strstr(find_check(&e.report, "node.containerd")->remedy, "sudo: true"));
	report_release(&e.report);
	free(text);
}

static void test_evaluate_clock_limits(void **state)
{
	struct evaluated e;
	const int64_t second = 1000000000;
	/* good_output's probe ends at ...000.3; local_end is local_start + 0.3 s. */
	const int64_t in_step = 1700000000000000000LL;

	(void)state;
	evaluate(good_output, 20ULL << 30, in_step + 5 * second, &e);
	assert_check(&e.report, "node.clock", CHECK_WARN, "behind this machine");
	report_release(&e.report);
	evaluate(good_output, 20ULL << 30, in_step - 90 * second, &e);
	assert_check(&e.report, "node.clock", CHECK_FAIL, "ahead of this machine");
	report_release(&e.report);
}

static void test_evaluate_probe_exit_status(void **state)
{
	struct node_probe probe;
	struct node_probe_context context;
	struct config_host host = { .name = (char *)"node1" };
	struct report report;
	const char stderr_text[] = "sh: 1: awk: not found\033[0m";

	(void)state;
	memset(&context, 0, sizeof(context));
	context.host = &host;
	context.exit_status = 127;
	context.stderr_text = stderr_text;
	context.stderr_len = sizeof(stderr_text) - 1;
	node_probe_parse(good_output, strlen(good_output), &probe);
	assert_int_equal(report_init(&report, "preflight", NULL), 0);
	assert_int_equal(preflight_node_evaluate(&probe, &context, &report), 0);
	assert_check(&report, "node.probe", CHECK_FAIL, "exited with status 127; stderr: \"sh: 1: awk: not found\\x1b[0m\"");
	report_release(&report);
}

static void test_compare_hostnames_and_arch(void **state)
{
	struct config config;
	struct config_host hosts[3];
	struct node_probe probes[3];
	const struct node_probe *pointers[3];
	struct report report;
	char *other = output_with("arch", "arch=aarch64\n");
	const struct check_result *check;

	(void)state;
	memset(&config, 0, sizeof(config));
	memset(hosts, 0, sizeof(hosts));
	hosts[0].name = (char *)"cp1";
	hosts[1].name = (char *)"w1";
	hosts[2].name = (char *)"w2";
	config.hosts = hosts;
	config.host_count = 3;
	node_probe_parse(good_output, strlen(good_output), &probes[0]);
	node_probe_parse(other, strlen(other), &probes[1]);
	node_probe_parse(good_output, strlen(good_output), &probes[2]);
	strcpy(probes[2].hostname, "node3");
	pointers[0] = &probes[0];
	pointers[1] = &probes[1];
	pointers[2] = &probes[2];

	assert_int_equal(report_init(&report, "preflight", NULL), 0);
	assert_int_equal(preflight_nodes_compare(&config, pointers, &report), 0);
	assert_int_equal(report.count, 4);
	check = &report.checks[0];
	assert_string_equal(check->group, "node cp1");
	assert_string_equal(check->id, "node.hostname");
	assert_int_equal(check->status, CHECK_FAIL);
	assert_non_null(strstr(check->evidence, "hostname node1 is also the hostname of w1"));
	check = &report.checks[1];
	assert_int_equal(check->status, CHECK_FAIL);
	assert_non_null(strstr(check->evidence, "also the hostname of cp1"));
	check = &report.checks[2];
	assert_int_equal(check->status, CHECK_PASS);
	assert_string_equal(check->evidence, "node3");
	check = &report.checks[3];
	assert_string_equal(check->group, "nodes");
	assert_int_equal(check->status, CHECK_WARN);
	assert_non_null(strstr(check->evidence, "cp1 linux/amd64, w1 linux/arm64, w2 linux/amd64"));
	report_release(&report);

	/* A host that was not probed is left out. */
	pointers[1] = NULL;
	assert_int_equal(report_init(&report, "preflight", NULL), 0);
	assert_int_equal(preflight_nodes_compare(&config, pointers, &report), 0);
	assert_int_equal(report.count, 3);
	assert_int_equal(report.checks[0].status, CHECK_PASS);
	assert_int_equal(report.checks[2].status, CHECK_PASS);
	assert_non_null(strstr(report.checks[2].evidence, "2 probed nodes are linux/amd64"));
	report_release(&report);
	free(other);
}

/* Runs the real probe script with this machine's /bin/sh: its output must parse cleanly. */
static void test_probe_script_runs_here(void **state)
{
	char script_path[] = "/tmp/mlboot-test-probe.XXXXXX";
	char command[128];
	struct buf output = BUF_INIT(NODE_PROBE_OUTPUT_MAX * 2);
	struct node_probe probe;
	FILE *pipe;
	int fd, r;
	char chunk[4096];
	size_t n;

	(void)state;
	fd = mkstemp(script_path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, preflight_probe_script, strlen(preflight_probe_script)),
			 (ssize_t)strlen(preflight_probe_script));
	close(fd);
	snprintf(command, sizeof(command), "sh -s < %s", script_path);
	pipe = popen(command, "r");
	assert_non_null(pipe);
	while ((n = fread(chunk, 1, sizeof(chunk), pipe)) > 0)
		buf_append(&output, chunk, n);
	assert_int_equal(pclose(pipe), 0);
	unlink(script_path);

	r = node_probe_parse(output.data ? output.data : "", output.len, &probe);
	if (r != 0)
		print_message("%s", buf_str(&output));
	assert_int_equal(r, 0);
	assert_int_equal(probe.problem_count, 0);
	assert_true(probe.cpus >= 1);
	assert_true(probe.mem_total_kb > 0);
	assert_true(probe.clock_end_ns >= probe.clock_start_ns);
	buf_release(&output);
}

static void test_parse_size(void **state)
{
	static const struct {
		const char *text;
		int result;
		uint64_t bytes;
	} cases[] = {
		{ "0", 0, 0 },                 { "1024", 0, 1024 },
		{ "20G", 0, 20ULL << 30 },     { "20GiB", 0, 20ULL << 30 },
		{ "512M", 0, 512ULL << 20 },   { "1T", 0, 1ULL << 40 },
		{ "16K", 0, 16384 },           { "", -EINVAL, 0 },
		{ "G", -EINVAL, 0 },           { "20GB", -EINVAL, 0 },
		{ "20 G", -EINVAL, 0 },        { "-1", -EINVAL, 0 },
		{ "1.5G", -EINVAL, 0 },        { "18446744073709551616", -ERANGE, 0 },
		{ "16777216T", -ERANGE, 0 },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint64_t bytes = 7;
		int r = preflight_parse_size(cases[i].text, &bytes);

		if (r != cases[i].result)
			print_message("size \"%s\": got %d\n", cases[i].text, r);
		assert_int_equal(r, cases[i].result);
		if (r == 0)
			assert_int_equal(bytes, cases[i].bytes);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_probe_good_output),
		cmocka_unit_test(test_probe_empty_values_allowed),
		cmocka_unit_test(test_probe_missing_keys),
		cmocka_unit_test(test_probe_hostile_values),
		cmocka_unit_test(test_probe_time_fractions),
		cmocka_unit_test(test_probe_unknown_and_duplicate_keys),
		cmocka_unit_test(test_probe_noise_around_markers),
		cmocka_unit_test(test_probe_broken_structure),
		cmocka_unit_test(test_probe_nul_and_long_lines),
		cmocka_unit_test(test_probe_garbage),
		cmocka_unit_test(test_probe_oversized_output),
		cmocka_unit_test(test_clock_offset),
		cmocka_unit_test(test_evaluate_good_node),
		cmocka_unit_test(test_evaluate_failures),
		cmocka_unit_test(test_evaluate_uid_without_sudo),
		cmocka_unit_test(test_evaluate_clock_limits),
		cmocka_unit_test(test_evaluate_probe_exit_status),
		cmocka_unit_test(test_compare_hostnames_and_arch),
		cmocka_unit_test(test_probe_script_runs_here),
		cmocka_unit_test(test_parse_size),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
