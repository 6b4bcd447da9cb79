#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "common.h"
#include "config.h"
#include "node.h"
#include "preflight_node.h"
#include "report.h"

#define GROUP_NODES "nodes"
/* Room for an escaped value: each byte may take 4 characters (\xNN). */
#define ESCAPED_MAX 1024
#define MIB (1024ULL * 1024)
#define GIB (1024ULL * 1024 * 1024)

/* kubeadm's documented minimums: 2 GB of RAM a machine, 2 CPUs a control-plane machine. */
#define MIN_MEMORY_BYTES (2ULL * 1000 * 1000 * 1000)
#define MIN_CONTROL_PLANE_CPUS 2

/*
 * The probe. It prints every key on every node, with an empty value when
 * there is nothing to report, so a missing key always means broken output.
 * Commands read /dev/null, not the script on stdin. Values go through
 * printf, since dash's echo would interpret backslashes in them.
 */
const char preflight_probe_script[] =
	"export LC_ALL=C\n"
	"PATH=$PATH:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n"
	"kv() { printf '%s=%s\\n' \"$1\" \"$2\"; }\n"
	"now() {\n"
	"\tt=$(date +%s.%N 2>/dev/null </dev/null)\n"
	"\tcase $t in ''|*[!0-9.]*) t=$(date +%s </dev/null) ;; esac\n"
	"\tprintf '%s' \"$t\"\n"
	"}\n"
	/* read fails at a missing final newline but keeps what it read, so its status is ignored. */
	"sysctl_value() {\n"
	"\tv=\n"
	"\tif [ -r \"$2\" ]; then read -r v < \"$2\" || :; fi\n"
	"\tkv \"$1\" \"$v\"\n"
	"}\n"
	"echo probe_version=1\n"
	"kv clock_start \"$(now)\"\n"
	"kv uid \"$(id -u </dev/null)\"\n"
	"kv arch \"$(uname -m)\"\n"
	"kv kernel \"$(uname -r)\"\n"
	"kv hostname \"$(uname -n)\"\n"
	"os=/etc/os-release\n"
	"[ -r \"$os\" ] || os=/usr/lib/os-release\n"
	"[ -r \"$os\" ] || os=/dev/null\n"
	"awk -F= '\n"
	"\t$1 == \"ID\" || $1 == \"VERSION_ID\" || $1 == \"PRETTY_NAME\" {\n"
	"\t\tv = substr($0, length($1) + 2)\n"
	"\t\tif (v ~ /^\".*\"$/ || v ~ /^\\047.*\\047$/) v = substr(v, 2, length(v) - 2)\n"
	"\t\tk = $1 == \"ID\" ? \"os_id\" : $1 == \"VERSION_ID\" ? \"os_version_id\" : \"os_pretty_name\"\n"
	"\t\tif (!(k in seen)) { seen[k] = 1; print k \"=\" v }\n"
	"\t}\n"
	"\tEND {\n"
	"\t\tif (!(\"os_id\" in seen)) print \"os_id=\"\n"
	"\t\tif (!(\"os_version_id\" in seen)) print \"os_version_id=\"\n"
	"\t\tif (!(\"os_pretty_name\" in seen)) print \"os_pretty_name=\"\n"
	"\t}' \"$os\" </dev/null\n"
	"if [ -r /sys/fs/cgroup/cgroup.controllers ]; then\n"
	"\tkv cgroup2 1\n"
	"\tc=; read -r c < /sys/fs/cgroup/cgroup.controllers || :\n"
	"\tkv cgroup_controllers \"$c\"\n"
	"else\n"
	"\tkv cgroup2 0\n"
	"\tkv cgroup_controllers ''\n"
	"fi\n"
	"sock=" PREFLIGHT_CONTAINERD_SOCKET "\n"
	"if [ -S \"$sock\" ]; then kv containerd_socket 1; else kv containerd_socket 0; fi\n"
	"answer=0 version=\n"
	"if command -v ctr >/dev/null 2>&1; then\n"
	"\tkv ctr 1\n"
	"\tif [ -S \"$sock\" ]; then\n"
	"\t\tif command -v timeout >/dev/null 2>&1; then\n"
	"\t\t\tout=$(timeout 10 ctr --address \"$sock\" version 2>/dev/null </dev/null)\n"
	"\t\telse\n"
	"\t\t\tout=$(ctr --address \"$sock\" version 2>/dev/null </dev/null)\n"
	"\t\tfi && answer=1\n"
	"\t\tversion=$(printf '%s\\n' \"$out\" | sed -n '/^Server:/,$ s/^[[:space:]]*Version:[[:space:]]*//p' | head -n 1)\n"
	"\tfi\n"
	"else\n"
	"\tkv ctr 0\n"
	"fi\n"
	"kv containerd_answer \"$answer\"\n"
	"kv containerd_version \"$version\"\n"
	"d=" PREFLIGHT_CONTAINERD_ROOT "\n"
	"while [ ! -d \"$d\" ]; do d=${d%/*}; [ -n \"$d\" ] || d=/; done\n"
	"kv disk_path \"$d\"\n"
	"set -- $(df -Pk \"$d\" 2>/dev/null </dev/null | awk 'NR == 2 { print $(NF - 4), $(NF - 2) }')\n"
	"kv disk_total_kb \"${1:-}\"\n"
	"kv disk_free_kb \"${2:-}\"\n"
	"awk '$1 == \"MemTotal:\" { print \"mem_total_kb=\" $2 }\n"
	"\t$1 == \"SwapTotal:\" { print \"swap_total_kb=\" $2 }' /proc/meminfo </dev/null\n"
	"n=$(getconf _NPROCESSORS_ONLN 2>/dev/null </dev/null) || n=\n"
	"[ -n \"$n\" ] || n=$(nproc 2>/dev/null </dev/null) || n=\n"
	"kv cpus \"$n\"\n"
	"m=0\n"
	"if [ -d /sys/module/overlay ] || grep -qw overlay /proc/filesystems 2>/dev/null </dev/null; then m=1; fi\n"
	"kv module_overlay \"$m\"\n"
	"m=0\n"
	"if [ -d /sys/module/br_netfilter ] || [ -e /proc/sys/net/bridge/bridge-nf-call-iptables ] ||\n"
	"\tgrep -q '^br_netfilter ' /proc/modules 2>/dev/null </dev/null; then m=1; fi\n"
	"kv module_br_netfilter \"$m\"\n"
	"sysctl_value ip_forward /proc/sys/net/ipv4/ip_forward\n"
	"sysctl_value bridge_nf_call_iptables /proc/sys/net/bridge/bridge-nf-call-iptables\n"
	"kv clock_end \"$(now)\"\n"
	"echo probe_end=1\n"
	"exit 0\n";

/* Text */

/* Copies text with control bytes, quotes, backslashes and bytes above 0x7e escaped, cut to fit. */
static void escape_text(char *out, size_t size, const char *text, size_t len)
{
	size_t n = 0;

	for (size_t i = 0; i < len && n + 8 < size; i++) {
		unsigned char c = (unsigned char)text[i];

		if (c == '"' || c == '\\') {
			out[n++] = '\\';
			out[n++] = (char)c;
		} else if (c == '\n') {
			out[n++] = '\\';
			out[n++] = 'n';
		} else if (c < 0x20 || c > 0x7e) {
			n += (size_t)snprintf(out + n, size - n, "\\x%02x", c);
		} else {
			out[n++] = (char)c;
		}
	}
	out[n] = '\0';
}

static void format_bytes(char *out, size_t size, unsigned long long bytes)
{
	if (bytes >= GIB)
		snprintf(out, size, "%.1f GiB", (double)bytes / (double)GIB);
	else if (bytes >= MIB)
		snprintf(out, size, "%.1f MiB", (double)bytes / (double)MIB);
	else
		snprintf(out, size, "%llu bytes", bytes);
}

static int64_t realtime_ns(void)
{
	struct timespec now;

	clock_gettime(CLOCK_REALTIME, &now);
	return (int64_t)now.tv_sec * 1000000000 + now.tv_nsec;
}

static int64_t monotonic_ms(void)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

/* Parsing the probe output */

enum value_kind {
	VALUE_TIME,      /* seconds since the epoch, up to 9 decimals */
	VALUE_NUMBER,    /* decimal integer within [min, max] */
	VALUE_BOOL,      /* 0 or 1 */
	VALUE_SYSCTL,    /* "", 0 or 1 */
	VALUE_WORD,      /* letters, digits and the characters of extra */
	VALUE_TEXT,      /* any bytes but control characters */
};

struct probe_field {
	const char *name;
	enum value_kind kind;
	size_t offset;
	size_t size;             /* of a text member, with its NUL */
	const char *extra;       /* punctuation a VALUE_WORD may contain */
	bool empty_ok;
	unsigned long long min;
	unsigned long long max;
};

#define MEMBER_SIZE(member) sizeof(((struct node_probe *)0)->member)
#define FIELD_TIME(name, member) \
	{ name, VALUE_TIME, offsetof(struct node_probe, member), 0, NULL, false, 0, 0 }
#define FIELD_NUMBER(name, member, low, high) \
	{ name, VALUE_NUMBER, offsetof(struct node_probe, member), 0, NULL, false, low, high }
#define FIELD_BOOL(name, member) \
	{ name, VALUE_BOOL, offsetof(struct node_probe, member), 0, NULL, false, 0, 1 }
#define FIELD_SYSCTL(name, member) \
	{ name, VALUE_SYSCTL, offsetof(struct node_probe, member), 0, NULL, true, 0, 1 }
#define FIELD_WORD(name, member, chars, empty) \
	{ name, VALUE_WORD, offsetof(struct node_probe, member), MEMBER_SIZE(member), chars, empty, 0, 0 }
#define FIELD_TEXT(name, member) \
	{ name, VALUE_TEXT, offsetof(struct node_probe, member), MEMBER_SIZE(member), NULL, true, 0, 0 }

/* Sizes in KiB up to 2^50 (1 EiB), so that KiB * 1024 cannot overflow. */
#define MAX_KIB (1ULL << 50)

static const struct probe_field probe_fields[NODE_PROBE_KEY_COUNT] = {
	[NODE_PROBE_CLOCK_START] = FIELD_TIME("clock_start", clock_start_ns),
	[NODE_PROBE_UID] = FIELD_NUMBER("uid", uid, 0, 4294967295ULL),
	[NODE_PROBE_ARCH] = FIELD_WORD("arch", arch, "_-", false),
	[NODE_PROBE_KERNEL] = FIELD_WORD("kernel", kernel, "._+~-", false),
	[NODE_PROBE_HOSTNAME] = FIELD_WORD("hostname", hostname, "._-", false),
	[NODE_PROBE_OS_ID] = FIELD_WORD("os_id", os_id, "._-", true),
	[NODE_PROBE_OS_VERSION_ID] = FIELD_WORD("os_version_id", os_version_id, "._~+-", true),
	[NODE_PROBE_OS_PRETTY_NAME] = FIELD_TEXT("os_pretty_name", os_pretty_name),
	[NODE_PROBE_CGROUP2] = FIELD_BOOL("cgroup2", cgroup2),
	[NODE_PROBE_CGROUP_CONTROLLERS] = FIELD_WORD("cgroup_controllers", cgroup_controllers, "_ ", true),
	[NODE_PROBE_CONTAINERD_SOCKET] = FIELD_BOOL("containerd_socket", containerd_socket),
	[NODE_PROBE_CTR] = FIELD_BOOL("ctr", ctr),
	[NODE_PROBE_CONTAINERD_ANSWER] = FIELD_BOOL("containerd_answer", containerd_answer),
	[NODE_PROBE_CONTAINERD_VERSION] = FIELD_WORD("containerd_version", containerd_version, "._~+-", true),
	[NODE_PROBE_DISK_PATH] = FIELD_WORD("disk_path", disk_path, "/._+-", false),
	[NODE_PROBE_DISK_TOTAL_KB] = FIELD_NUMBER("disk_total_kb", disk_total_kb, 0, MAX_KIB),
	[NODE_PROBE_DISK_FREE_KB] = FIELD_NUMBER("disk_free_kb", disk_free_kb, 0, MAX_KIB),
	[NODE_PROBE_MEM_TOTAL_KB] = FIELD_NUMBER("mem_total_kb", mem_total_kb, 1, MAX_KIB),
	[NODE_PROBE_SWAP_TOTAL_KB] = FIELD_NUMBER("swap_total_kb", swap_total_kb, 0, MAX_KIB),
	[NODE_PROBE_CPUS] = FIELD_NUMBER("cpus", cpus, 1, 1000000),
	[NODE_PROBE_MODULE_OVERLAY] = FIELD_BOOL("module_overlay", module_overlay),
	[NODE_PROBE_MODULE_BR_NETFILTER] = FIELD_BOOL("module_br_netfilter", module_br_netfilter),
	[NODE_PROBE_IP_FORWARD] = FIELD_SYSCTL("ip_forward", ip_forward),
	[NODE_PROBE_BRIDGE_NF_CALL_IPTABLES] = FIELD_SYSCTL("bridge_nf_call_iptables", bridge_nf_call_iptables),
	[NODE_PROBE_CLOCK_END] = FIELD_TIME("clock_end", clock_end_ns),
};

bool node_probe_has(const struct node_probe *probe, enum node_probe_key key)
{
	return key < NODE_PROBE_KEY_COUNT && (probe->present & (1ULL << key));
}

const char *node_probe_key_name(enum node_probe_key key)
{
	return key < NODE_PROBE_KEY_COUNT ? probe_fields[key].name : "?";
}

static void probe_problem(struct node_probe *probe, const char *format, ...)
	__attribute__((format(printf, 2, 3)));

static void probe_problem(struct node_probe *probe, const char *format, ...)
{
	va_list args;

	if (probe->problem_count < NODE_PROBE_PROBLEMS_KEPT) {
		va_start(args, format);
		vsnprintf(probe->problems[probe->problem_count], NODE_PROBE_PROBLEM_LEN, format, args);
		va_end(args);
	}
	probe->problem_count++;
}

static int parse_number(const char *text, size_t len, unsigned long long min,
			unsigned long long max, unsigned long long *out)
{
	unsigned long long value = 0;

	if (len == 0 || len > 20)
		return -EINVAL;
	for (size_t i = 0; i < len; i++) {
		unsigned digit;

		if (text[i] < '0' || text[i] > '9')
			return -EINVAL;
		digit = (unsigned)(text[i] - '0');
		if (value > (max - digit) / 10)
			return -ERANGE;
		value = value * 10 + digit;
	}
	if (value < min)
		return -ERANGE;
	*out = value;
	return 0;
}

/* "SECONDS[.FRACTION]" with 1 to 12 digits of seconds and up to 9 of fraction. */
static int parse_time(const char *text, size_t len, int64_t *out)
{
	const char *dot = memchr(text, '.', len);
	size_t whole = dot ? (size_t)(dot - text) : len;
	unsigned long long seconds, fraction = 0;
	size_t fraction_len = dot ? len - whole - 1 : 0;

	if (whole == 0 || whole > 12 || (dot && (fraction_len == 0 || fraction_len > 9)))
		return -EINVAL;
	if (parse_number(text, whole, 0, 999999999999ULL, &seconds) < 0)
		return -EINVAL;
	if (dot && parse_number(dot + 1, fraction_len, 0, 999999999ULL, &fraction) < 0)
		return -EINVAL;
	for (size_t i = fraction_len; i < 9; i++)
		fraction *= 10;
	*out = (int64_t)seconds * 1000000000 + (int64_t)fraction;
	return 0;
}

static bool word_char_valid(char c, const char *extra)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       (c != '\0' && strchr(extra, c));
}

/* Stores one value. Returns a description of what is wrong with it, or NULL. */
static const char *probe_store(struct node_probe *probe, const struct probe_field *field,
			       const char *value, size_t len)
{
	char *member = (char *)probe + field->offset;
	unsigned long long number;

	if (len == 0 && !field->empty_ok)
		return "empty value";
	switch (field->kind) {
	case VALUE_TIME:
		if (parse_time(value, len, (int64_t *)(void *)member) < 0)
			return "expected seconds since the epoch";
		return NULL;
	case VALUE_NUMBER:
		if (parse_number(value, len, field->min, field->max, &number) < 0)
			return "expected a whole number in range";
		*(unsigned long long *)(void *)member = number;
		return NULL;
	case VALUE_BOOL:
		if (len != 1 || (value[0] != '0' && value[0] != '1'))
			return "expected 0 or 1";
		*(bool *)(void *)member = value[0] == '1';
		return NULL;
	case VALUE_SYSCTL:
		if (len == 0) {
			*(enum node_probe_sysctl *)(void *)member = NODE_SYSCTL_ABSENT;
			return NULL;
		}
		if (len != 1 || (value[0] != '0' && value[0] != '1'))
			return "expected 0, 1 or nothing";
		*(enum node_probe_sysctl *)(void *)member = value[0] == '1' ? NODE_SYSCTL_ON : NODE_SYSCTL_OFF;
		return NULL;
	case VALUE_WORD:
		for (size_t i = 0; i < len; i++)
			if (!word_char_valid(value[i], field->extra))
				return "unexpected character";
		break;
	case VALUE_TEXT:
		for (size_t i = 0; i < len; i++)
			if ((unsigned char)value[i] < 0x20 || value[i] == 0x7f)
				return "control character";
		break;
	}
	if (len >= field->size)
		return "value too long";
	memcpy(member, value, len);
	member[len] = '\0';
	return NULL;
}

/*
 * Parses one key=value line. seen collects the keys met so far: a key met
 * twice is reported and its value dropped, whatever later copies hold.
 */
static void probe_parse_line(struct node_probe *probe, unsigned line_number, const char *line,
			     size_t len, uint64_t *seen)
{
	char shown[96];
	const char *equals = memchr(line, '=', len);
	const char *value, *problem;
	size_t key_len, value_len;
	int key = -1;

	if (!equals) {
		escape_text(shown, sizeof(shown), line, len > 40 ? 40 : len);
		probe_problem(probe, "line %u: not key=value: \"%s%s\"", line_number, shown,
			      len > 40 ? "..." : "");
		return;
	}
	key_len = (size_t)(equals - line);
	value = equals + 1;
	value_len = len - key_len - 1;
	for (int i = 0; i < NODE_PROBE_KEY_COUNT; i++) {
		if (strlen(probe_fields[i].name) == key_len &&
		    memcmp(probe_fields[i].name, line, key_len) == 0) {
			key = i;
			break;
		}
	}
	if (key < 0) {
		escape_text(shown, sizeof(shown), line, key_len > 40 ? 40 : key_len);
		probe_problem(probe, "line %u: unknown key \"%s\"", line_number, shown);
		return;
	}
	if (*seen & (1ULL << key)) {
		probe_problem(probe, "line %u: duplicate key \"%s\": the value is not used", line_number,
			      probe_fields[key].name);
		probe->present &= ~(1ULL << key);
		return;
	}
	*seen |= 1ULL << key;
	problem = probe_store(probe, &probe_fields[key], value, value_len);
	if (problem) {
		escape_text(shown, sizeof(shown), value, value_len > 40 ? 40 : value_len);
		probe_problem(probe, "line %u: invalid %s \"%s%s\": %s", line_number,
			      probe_fields[key].name, shown, value_len > 40 ? "..." : "", problem);
		return;
	}
	probe->present |= 1ULL << key;
}

int node_probe_parse(const char *output, size_t len, struct node_probe *out)
{
	uint64_t seen = 0, all = (1ULL << NODE_PROBE_KEY_COUNT) - 1;
	const char *p = output, *end;
	unsigned line_number = 0;
	size_t skipped_before = 0, skipped_after = 0;

	memset(out, 0, sizeof(*out));
	out->ip_forward = NODE_SYSCTL_ABSENT;
	out->bridge_nf_call_iptables = NODE_SYSCTL_ABSENT;
	if (len > NODE_PROBE_OUTPUT_MAX) {
		probe_problem(out, "output larger than %d bytes: only the start was read",
			      NODE_PROBE_OUTPUT_MAX);
		len = NODE_PROBE_OUTPUT_MAX;
	}
	end = output + len;

	while (p < end) {
		const char *newline = memchr(p, '\n', (size_t)(end - p));
		size_t line_len = newline ? (size_t)(newline - p) : (size_t)(end - p);
		const char *line = p;
		char shown[96];

		p = newline ? newline + 1 : end;
		line_number++;
		escape_text(shown, sizeof(shown), line, line_len > 40 ? 40 : line_len);
		if (!newline) {
			probe_problem(out, "line %u: no line end: the output was cut", line_number);
			break;
		}
		if (memchr(line, '\0', line_len)) {
			probe_problem(out, "line %u: NUL byte in \"%s\"", line_number, shown);
			continue;
		}
		if (line_len > NODE_PROBE_LINE_MAX) {
			probe_problem(out, "line %u: longer than %d bytes", line_number, NODE_PROBE_LINE_MAX);
			continue;
		}
		if (!out->begin_seen) {
			if (line_len == 15 && memcmp(line, "probe_version=1", 15) == 0) {
				out->begin_seen = true;
			} else if (line_len > 14 && memcmp(line, "probe_version=", 14) == 0) {
				probe_problem(out, "line %u: unsupported probe version \"%s\"", line_number, shown);
				break;
			} else if (skipped_before++ == 0) {
				probe_problem(out, "line %u: output before the probe began: \"%s%s\" (does a login script print to stdout?)",
					      line_number, shown, line_len > 40 ? "..." : "");
			}
			continue;
		}
		if (out->end_seen) {
			if (skipped_after++ == 0)
				probe_problem(out, "line %u: output after the probe ended: \"%s%s\"", line_number,
					      shown, line_len > 40 ? "..." : "");
			continue;
		}
		if (line_len == 11 && memcmp(line, "probe_end=1", 11) == 0) {
			out->end_seen = true;
			continue;
		}
		probe_parse_line(out, line_number, line, line_len, &seen);
	}

	if (skipped_before > 1)
		probe_problem(out, "%zu lines of output before the probe began", skipped_before);
	if (skipped_after > 1)
		probe_problem(out, "%zu lines of output after the probe ended", skipped_after);
	if (!out->begin_seen) {
		probe_problem(out, "no probe output: the line \"probe_version=1\" is missing");
		return MLB_EINPUT;
	}
	if (!out->end_seen)
		probe_problem(out, "the probe output ended early: the line \"probe_end=1\" is missing");
	if ((seen & all) != all) {
		char missing[NODE_PROBE_PROBLEM_LEN] = "";
		size_t n = 0;

		for (int i = 0; i < NODE_PROBE_KEY_COUNT; i++) {
			int written;

			if (seen & (1ULL << i))
				continue;
			written = snprintf(missing + n, sizeof(missing) - n, "%s%s", n ? ", " : "",
					   probe_fields[i].name);
			if (written < 0 || (size_t)written >= sizeof(missing) - n)
				break;
			n += (size_t)written;
		}
		probe_problem(out, "missing keys: %s", missing);
	}
	return out->end_seen && out->problem_count == 0 ? 0 : MLB_EINPUT;
}

int node_probe_clock_offset(const struct node_probe *probe, int64_t local_start_ns,
			    int64_t local_end_ns, int64_t *offset_ns, int64_t *uncertainty_ns)
{
	int64_t remote_run, local_run, round_trip;

	if (!node_probe_has(probe, NODE_PROBE_CLOCK_START) || !node_probe_has(probe, NODE_PROBE_CLOCK_END))
		return -ENODATA;
	local_run = local_end_ns - local_start_ns;
	remote_run = probe->clock_end_ns - probe->clock_start_ns;
	if (local_run < 0)
		return -ENODATA;
	/* A clock stepped during the probe, or a node clock running fast, must not give a negative trip. */
	if (remote_run < 0)
		remote_run = 0;
	round_trip = local_run - remote_run;
	if (round_trip < 0)
		round_trip = 0;
	*offset_ns = probe->clock_end_ns - (local_end_ns - round_trip / 2);
	*uncertainty_ns = round_trip / 2;
	return 0;
}

/* Evaluating one probe */

/* The state of one host's evaluation: where its checks go. */
struct evaluation {
	const struct node_probe *probe;
	const struct node_probe_context *context;
	struct report *report;
	char group[300];
	int error;               /* the first failure of report_add() */
};

static void check_add(struct evaluation *e, const char *id, const char *title,
		      enum check_status status, const char *remedy, const char *format, ...)
	__attribute__((format(printf, 6, 7)));

static void check_add(struct evaluation *e, const char *id, const char *title,
		      enum check_status status, const char *remedy, const char *format, ...)
{
	char evidence[2048];
	va_list args;
	int r;

	va_start(args, format);
	vsnprintf(evidence, sizeof(evidence), format, args);
	va_end(args);
	r = report_add(e->report, e->group, id, title, status,
		       status == CHECK_PASS ? NULL : remedy, "%s", evidence);
	if (r < 0 && e->error == 0)
		e->error = r;
}

/* Returns whether the probe delivered every key, else adds the check with status and returns false. */
static bool require_keys(struct evaluation *e, const char *id, const char *title,
			 enum check_status status, const enum node_probe_key *keys, size_t count)
{
	for (size_t i = 0; i < count; i++) {
		if (node_probe_has(e->probe, keys[i]))
			continue;
		check_add(e, id, title, status,
			  "see the probe check of this host for what went wrong with its output",
			  "the probe returned no valid %s", node_probe_key_name(keys[i]));
		return false;
	}
	return true;
}

#define REQUIRE(e, id, title, status, ...)                                                  \
	require_keys((e), (id), (title), (status), (const enum node_probe_key[]){ __VA_ARGS__ }, \
		     sizeof((const enum node_probe_key[]){ __VA_ARGS__ }) / sizeof(enum node_probe_key))

static void evaluate_probe(struct evaluation *e)
{
	const struct node_probe *probe = e->probe;
	const struct node_probe_context *c = e->context;
	char text[ESCAPED_MAX];
	struct buf problems = BUF_INIT(8192);

	if (c->exit_status != 0) {
		size_t shown = 0;

		if (c->stderr_text)
			shown = c->stderr_len > 300 ? 300 : c->stderr_len;
		escape_text(text, sizeof(text), c->stderr_text ? c->stderr_text : "", shown);
		check_add(e, "node.probe", "probe ran", CHECK_FAIL,
			  "check that the login shell of the SSH user is a POSIX shell and that sh, uname, awk, df and sed are installed",
			  "the probe exited with status %d; stderr: \"%s\"", c->exit_status, text);
		return;
	}
	if (probe->problem_count == 0) {
		check_add(e, "node.probe", "probe ran", CHECK_PASS, NULL, "%d values read",
			  NODE_PROBE_KEY_COUNT);
		return;
	}
	for (size_t i = 0; i < probe->problem_count && i < NODE_PROBE_PROBLEMS_KEPT; i++)
		buf_printf(&problems, "%s%s", i ? "; " : "", probe->problems[i]);
	if (probe->problem_count > NODE_PROBE_PROBLEMS_KEPT)
		buf_printf(&problems, "; and %zu more", probe->problem_count - NODE_PROBE_PROBLEMS_KEPT);
	check_add(e, "node.probe", "probe ran", CHECK_FAIL,
		  "make login scripts (.bashrc, .profile) of the SSH user print nothing for non-interactive shells; values that are reported invalid were not used",
		  "%zu problems in the probe output: %s", probe->problem_count, buf_str(&problems));
	buf_release(&problems);
}

/* Maps uname -m to the OCI platform architecture, or NULL when unknown. */
static const char *oci_architecture(const char *machine)
{
	static const struct {
		const char *machine;
		const char *oci;
	} map[] = {
		{ "x86_64", "amd64" }, { "amd64", "amd64" }, { "aarch64", "arm64" },
		{ "arm64", "arm64" },  { "ppc64le", "ppc64le" }, { "s390x", "s390x" },
		{ "armv7l", "arm" },   { "riscv64", "riscv64" },
	};

	for (size_t i = 0; i < ARRAY_SIZE(map); i++)
		if (strcmp(machine, map[i].machine) == 0)
			return map[i].oci;
	return NULL;
}

static void evaluate_arch(struct evaluation *e)
{
	const char *arch = e->probe->arch, *oci;

	if (!REQUIRE(e, "node.arch", "architecture", CHECK_FAIL, NODE_PROBE_ARCH))
		return;
	oci = oci_architecture(arch);
	if (!oci)
		check_add(e, "node.arch", "architecture", CHECK_FAIL,
			  "mlboot knows images for amd64, arm64, ppc64le, s390x, arm and riscv64 only",
			  "unknown machine type %s", arch);
	else if (strcmp(oci, "amd64") != 0 && strcmp(oci, "arm64") != 0)
		check_add(e, "node.arch", "architecture", CHECK_WARN,
			  "check that the bundle carries images for this platform (mlboot bundle inspect)",
			  "%s (linux/%s): images for it are less common than for amd64 and arm64", arch, oci);
	else
		check_add(e, "node.arch", "architecture", CHECK_PASS, NULL, "%s (linux/%s)", arch, oci);
}

static void evaluate_os(struct evaluation *e)
{
	const struct node_probe *probe = e->probe;
	char name[ESCAPED_MAX];

	if (!REQUIRE(e, "node.os", "operating system", CHECK_WARN, NODE_PROBE_OS_ID,
		     NODE_PROBE_OS_PRETTY_NAME, NODE_PROBE_KERNEL))
		return;
	escape_text(name, sizeof(name), probe->os_pretty_name, strlen(probe->os_pretty_name));
	if (!probe->os_id[0])
		check_add(e, "node.os", "operating system", CHECK_WARN,
			  "nothing to do if the node runs Kubernetes; mlboot could not name its distribution",
			  "no /etc/os-release; kernel %s", probe->kernel);
	else
		check_add(e, "node.os", "operating system", CHECK_PASS, NULL, "%s (%s %s), kernel %s",
			  name[0] ? name : probe->os_id, probe->os_id, probe->os_version_id, probe->kernel);
}

/* Whether a space-separated list contains word. */
static bool list_contains(const char *list, const char *word)
{
	size_t len = strlen(word);

	for (const char *p = list; (p = strstr(p, word)); p += len)
		if ((p == list || p[-1] == ' ') && (p[len] == ' ' || p[len] == '\0'))
			return true;
	return false;
}

static void evaluate_cgroup(struct evaluation *e)
{
	static const char *const needed[] = { "cpu", "memory", "pids" };
	const struct node_probe *probe = e->probe;
	char missing[64] = "";

	if (!REQUIRE(e, "node.cgroup", "cgroup v2", CHECK_WARN, NODE_PROBE_CGROUP2,
		     NODE_PROBE_CGROUP_CONTROLLERS))
		return;
	if (!probe->cgroup2) {
		check_add(e, "node.cgroup", "cgroup v2", CHECK_WARN,
			  "boot the node with cgroup v2 (systemd.unified_cgroup_hierarchy=1 on the kernel command line)",
			  "cgroup v1: the kubelet keeps it in maintenance mode since Kubernetes 1.31 and refuses it from 1.35 unless failCgroupV1 is false");
		return;
	}
	for (size_t i = 0; i < ARRAY_SIZE(needed); i++)
		if (!list_contains(probe->cgroup_controllers, needed[i]))
			snprintf(missing + strlen(missing), sizeof(missing) - strlen(missing), "%s%s",
				 missing[0] ? " " : "", needed[i]);
	if (missing[0])
		check_add(e, "node.cgroup", "cgroup v2", CHECK_WARN,
			  "enable the missing controllers; the kubelet needs them to limit pods",
			  "cgroup v2 without the controllers %s (available: %s)", missing,
			  probe->cgroup_controllers);
	else
		check_add(e, "node.cgroup", "cgroup v2", CHECK_PASS, NULL, "cgroup v2 (controllers: %s)",
			  probe->cgroup_controllers);
}

/* Reads "MAJOR.MINOR" at the start of a version such as "v1.7.2" or "1.6.20~ds1". */
static bool version_major_minor(const char *version, unsigned *major, unsigned *minor)
{
	char *end;
	unsigned long value;

	if (*version == 'v')
		version++;
	if (*version < '0' || *version > '9')
		return false;
	value = strtoul(version, &end, 10);
	if (*end != '.' || value > 1000)
		return false;
	*major = (unsigned)value;
	if (end[1] < '0' || end[1] > '9')
		return false;
	value = strtoul(end + 1, &end, 10);
	if (value > 1000)
		return false;
	*minor = (unsigned)value;
	return true;
}

static void evaluate_containerd(struct evaluation *e)
{
	const struct node_probe *probe = e->probe;
	const struct config_host *host = e->context->host;
	const char *title = "containerd running";
	unsigned major, minor;

	if (!REQUIRE(e, "node.containerd", title, CHECK_FAIL, NODE_PROBE_CONTAINERD_SOCKET,
		     NODE_PROBE_CTR, NODE_PROBE_CONTAINERD_ANSWER, NODE_PROBE_CONTAINERD_VERSION,
		     NODE_PROBE_UID))
		return;
	if (!probe->containerd_socket) {
		check_add(e, "node.containerd", title, CHECK_FAIL,
			  "install and start containerd (systemctl enable --now containerd); mlboot imports images into it",
			  "no socket at " PREFLIGHT_CONTAINERD_SOCKET);
		return;
	}
	if (!probe->ctr) {
		check_add(e, "node.containerd", title, CHECK_FAIL,
			  "install containerd's ctr client (Debian and Ubuntu: the containerd package); mlboot imports images with it",
			  "the socket exists but ctr is not in PATH");
		return;
	}
	if (!probe->containerd_answer) {
		if (probe->uid != 0 && !host->sudo)
			check_add(e, "node.containerd", title, CHECK_FAIL,
				  "set sudo: true for this host in mlboot.yaml, or connect as root",
				  "ctr version got no answer on " PREFLIGHT_CONTAINERD_SOCKET
				  " as uid %llu, which usually may not use the socket", probe->uid);
		else
			check_add(e, "node.containerd", title, CHECK_FAIL,
				  "restart containerd (systemctl restart containerd) and read its log (journalctl -u containerd)",
				  "ctr version got no answer on " PREFLIGHT_CONTAINERD_SOCKET);
		return;
	}
	if (!version_major_minor(probe->containerd_version, &major, &minor)) {
		check_add(e, "node.containerd", title, CHECK_WARN,
			  "check that containerd is version 1.6 or newer",
			  "containerd answers, but its version \"%s\" could not be read", probe->containerd_version);
		return;
	}
	if (major < 1 || (major == 1 && minor < 6)) {
		check_add(e, "node.containerd", title, CHECK_FAIL,
			  "upgrade containerd to 1.6 or newer: Kubernetes 1.26 and later need the CRI v1 API",
			  "containerd %s", probe->containerd_version);
		return;
	}
	check_add(e, "node.containerd", title, CHECK_PASS, NULL, "containerd %s answers on %s",
		  probe->containerd_version, PREFLIGHT_CONTAINERD_SOCKET);
}

static void evaluate_disk(struct evaluation *e)
{
	const struct node_probe *probe = e->probe;
	uint64_t needed = e->context->space_needed ? e->context->space_needed : PREFLIGHT_DEFAULT_SPACE_NEEDED;
	unsigned long long free_bytes, total_bytes;
	char free_text[32], total_text[32], needed_text[32], where[320];
	const char *title = "free space for images";

	if (!REQUIRE(e, "node.disk", title, CHECK_FAIL, NODE_PROBE_DISK_PATH,
		     NODE_PROBE_DISK_FREE_KB, NODE_PROBE_DISK_TOTAL_KB))
		return;
	free_bytes = probe->disk_free_kb * 1024;
	total_bytes = probe->disk_total_kb * 1024;
	format_bytes(free_text, sizeof(free_text), free_bytes);
	format_bytes(total_text, sizeof(total_text), total_bytes);
	format_bytes(needed_text, sizeof(needed_text), needed);
	if (strcmp(probe->disk_path, PREFLIGHT_CONTAINERD_ROOT) == 0)
		snprintf(where, sizeof(where), "%s", probe->disk_path);
	else
		snprintf(where, sizeof(where), "%s (" PREFLIGHT_CONTAINERD_ROOT " does not exist yet)",
			 probe->disk_path);
	if (free_bytes < needed) {
		char short_text[32];

		format_bytes(short_text, sizeof(short_text), needed - free_bytes);
		check_add(e, "node.disk", title, CHECK_FAIL,
			  "free or add space on the file system of " PREFLIGHT_CONTAINERD_ROOT
			  " (for example remove unused images with crictl rmi --prune), or grow it",
			  "%s free of %s at %s; %s needed, %s short", free_text, total_text, where,
			  needed_text, short_text);
		return;
	}
	check_add(e, "node.disk", title, CHECK_PASS, NULL, "%s free of %s at %s; %s needed", free_text,
		  total_text, where, needed_text);
}

static void evaluate_resources(struct evaluation *e)
{
	const struct node_probe *probe = e->probe;
	const struct config_host *host = e->context->host;
	char memory[32];

	if (REQUIRE(e, "node.memory", "memory", CHECK_WARN, NODE_PROBE_MEM_TOTAL_KB)) {
		format_bytes(memory, sizeof(memory), probe->mem_total_kb * 1024);
		if (probe->mem_total_kb * 1024 < MIN_MEMORY_BYTES)
			check_add(e, "node.memory", "memory", CHECK_WARN,
				  "give the node more memory: kubeadm documents 2 GB or more a machine",
				  "%s", memory);
		else
			check_add(e, "node.memory", "memory", CHECK_PASS, NULL, "%s", memory);
	}
	if (REQUIRE(e, "node.cpus", "CPUs", CHECK_WARN, NODE_PROBE_CPUS)) {
		if (host->role == CONFIG_ROLE_CONTROL_PLANE && probe->cpus < MIN_CONTROL_PLANE_CPUS)
			check_add(e, "node.cpus", "CPUs", CHECK_WARN,
				  "give the node more CPUs: kubeadm documents 2 or more for a control-plane machine",
				  "%llu online CPU on a control-plane host", probe->cpus);
		else
			check_add(e, "node.cpus", "CPUs", CHECK_PASS, NULL, "%llu online", probe->cpus);
	}
	if (REQUIRE(e, "node.swap", "swap off", CHECK_WARN, NODE_PROBE_SWAP_TOTAL_KB)) {
		format_bytes(memory, sizeof(memory), probe->swap_total_kb * 1024);
		if (probe->swap_total_kb > 0)
			check_add(e, "node.swap", "swap off", CHECK_WARN,
				  "run swapoff -a and remove the swap entries from /etc/fstab, unless the kubelet is set up for swap (failSwapOn: false)",
				  "swap is on: %s", memory);
		else
			check_add(e, "node.swap", "swap off", CHECK_PASS, NULL, "no swap");
	}
}

static void evaluate_kernel_network(struct evaluation *e)
{
	const struct node_probe *probe = e->probe;

	if (REQUIRE(e, "node.overlay", "overlay module loaded", CHECK_FAIL, NODE_PROBE_MODULE_OVERLAY)) {
		if (probe->module_overlay)
			check_add(e, "node.overlay", "overlay module loaded", CHECK_PASS, NULL,
				  "overlay is available (containerd's overlayfs snapshotter needs it)");
		else
			check_add(e, "node.overlay", "overlay module loaded", CHECK_FAIL,
				  "run modprobe overlay, and to load it at boot: echo overlay > /etc/modules-load.d/k8s.conf",
				  "no /sys/module/overlay and no overlay in /proc/filesystems");
	}
	if (REQUIRE(e, "node.br_netfilter", "br_netfilter module loaded", CHECK_WARN,
		    NODE_PROBE_MODULE_BR_NETFILTER)) {
		if (probe->module_br_netfilter)
			check_add(e, "node.br_netfilter", "br_netfilter module loaded", CHECK_PASS, NULL,
				  "br_netfilter is loaded or built in");
		else
			check_add(e, "node.br_netfilter", "br_netfilter module loaded", CHECK_WARN,
				  "run modprobe br_netfilter, and to load it at boot: echo br_netfilter >> /etc/modules-load.d/k8s.conf (kube-proxy in iptables mode and bridge-based CNI plugins need it)",
				  "not loaded: no /sys/module/br_netfilter, no /proc/sys/net/bridge");
	}
	if (REQUIRE(e, "node.ip_forward", "IPv4 forwarding on", CHECK_FAIL, NODE_PROBE_IP_FORWARD)) {
		if (probe->ip_forward == NODE_SYSCTL_ON)
			check_add(e, "node.ip_forward", "IPv4 forwarding on", CHECK_PASS, NULL,
				  "net.ipv4.ip_forward = 1");
		else
			check_add(e, "node.ip_forward", "IPv4 forwarding on", CHECK_FAIL,
				  "run sysctl -w net.ipv4.ip_forward=1, and to keep it: echo net.ipv4.ip_forward=1 > /etc/sysctl.d/k8s.conf",
				  "%s", probe->ip_forward == NODE_SYSCTL_OFF ? "net.ipv4.ip_forward = 0: pods on this node cannot reach other nodes"
									       : "no /proc/sys/net/ipv4/ip_forward");
	}
	if (REQUIRE(e, "node.bridge_nf_call_iptables", "bridged traffic passes iptables", CHECK_WARN,
		    NODE_PROBE_BRIDGE_NF_CALL_IPTABLES)) {
		if (probe->bridge_nf_call_iptables == NODE_SYSCTL_ON)
			check_add(e, "node.bridge_nf_call_iptables", "bridged traffic passes iptables", CHECK_PASS,
				  NULL, "net.bridge.bridge-nf-call-iptables = 1");
		else if (probe->bridge_nf_call_iptables == NODE_SYSCTL_OFF)
			check_add(e, "node.bridge_nf_call_iptables", "bridged traffic passes iptables", CHECK_WARN,
				  "run sysctl -w net.bridge.bridge-nf-call-iptables=1, and to keep it: echo net.bridge.bridge-nf-call-iptables=1 >> /etc/sysctl.d/k8s.conf",
				  "net.bridge.bridge-nf-call-iptables = 0");
		else
			check_add(e, "node.bridge_nf_call_iptables", "bridged traffic passes iptables", CHECK_WARN,
				  "run modprobe br_netfilter, then sysctl -w net.bridge.bridge-nf-call-iptables=1",
				  "no /proc/sys/net/bridge/bridge-nf-call-iptables%s",
				  probe->module_br_netfilter ? " in this network namespace, although br_netfilter is loaded"
							     : ": br_netfilter is not loaded");
	}
}

static void evaluate_clock(struct evaluation *e)
{
	const struct node_probe_context *c = e->context;
	int64_t offset, uncertainty, excess_ms;
	const char *direction;
	enum check_status status = CHECK_PASS;

	if (!REQUIRE(e, "node.clock", "clock in step", CHECK_WARN, NODE_PROBE_CLOCK_START,
		     NODE_PROBE_CLOCK_END))
		return;
	if (node_probe_clock_offset(e->probe, c->local_start_ns, c->local_end_ns, &offset, &uncertainty) < 0) {
		check_add(e, "node.clock", "clock in step", CHECK_WARN,
			  "run preflight again; the local clock moved backwards while the probe ran",
			  "the clock offset could not be measured");
		return;
	}
	direction = offset >= 0 ? "ahead of" : "behind";
	excess_ms = ((offset < 0 ? -offset : offset) - uncertainty) / 1000000;
	if (excess_ms > PREFLIGHT_CLOCK_FAIL_MS)
		status = CHECK_FAIL;
	else if (excess_ms > PREFLIGHT_CLOCK_WARN_MS)
		status = CHECK_WARN;
	check_add(e, "node.clock", "clock in step", status,
		  "synchronise the clocks of all nodes and of this machine with NTP (chrony or systemd-timesyncd) against the site's time server; certificates are rejected by a node whose clock is behind",
		  "%.3f s %s this machine (measured to within %.3f s)",
		  (double)(offset < 0 ? -offset : offset) / 1e9, direction, (double)uncertainty / 1e9);
}

int preflight_node_evaluate(const struct node_probe *probe, const struct node_probe_context *context,
			    struct report *report)
{
	struct evaluation e = { .probe = probe, .context = context, .report = report };

	snprintf(e.group, sizeof(e.group), "node %s", context->host->name);
	evaluate_probe(&e);
	evaluate_arch(&e);
	evaluate_os(&e);
	evaluate_cgroup(&e);
	evaluate_containerd(&e);
	evaluate_disk(&e);
	evaluate_resources(&e);
	evaluate_kernel_network(&e);
	evaluate_clock(&e);
	return e.error;
}

int preflight_node_evaluate_runtime(const struct node_probe *probe,
				    const struct node_probe_context *context, struct report *report)
{
	struct evaluation e = { .probe = probe, .context = context, .report = report };

	snprintf(e.group, sizeof(e.group), "node %s", context->host->name);
	evaluate_probe(&e);
	evaluate_containerd(&e);
	evaluate_disk(&e);
	return e.error;
}

/* Comparing the nodes */

int preflight_nodes_compare(const struct config *config, const struct node_probe *const *probes,
			    struct report *report)
{
	struct buf platforms = BUF_INIT(4096);
	const char *first_platform = NULL;
	bool mixed = false;
	size_t probed = 0;
	int r = 0;

	for (size_t i = 0; i < config->host_count && r == 0; i++) {
		const struct node_probe *probe = probes[i];
		struct evaluation e = { .probe = probe, .report = report };
		struct buf others = BUF_INIT(4096);

		if (!probe)
			continue;
		snprintf(e.group, sizeof(e.group), "node %s", config->hosts[i].name);
		if (!REQUIRE(&e, "node.hostname", "hostname unique", CHECK_WARN, NODE_PROBE_HOSTNAME)) {
			r = e.error;
			continue;
		}
		for (size_t j = 0; j < config->host_count; j++) {
			if (j == i || !probes[j] || !node_probe_has(probes[j], NODE_PROBE_HOSTNAME))
				continue;
			if (strcasecmp(probes[j]->hostname, probe->hostname) == 0)
				buf_printf(&others, "%s%s", others.len ? ", " : "", config->hosts[j].name);
		}
		if (others.len > 0)
			check_add(&e, "node.hostname", "hostname unique", CHECK_FAIL,
				  "give every node its own hostname (hostnamectl set-hostname NAME): Kubernetes names nodes after them",
				  "hostname %s is also the hostname of %s", probe->hostname, buf_str(&others));
		else
			check_add(&e, "node.hostname", "hostname unique", CHECK_PASS, NULL, "%s",
				  probe->hostname);
		buf_release(&others);
		r = e.error;
	}

	for (size_t i = 0; i < config->host_count; i++) {
		const char *oci;

		if (!probes[i] || !node_probe_has(probes[i], NODE_PROBE_ARCH))
			continue;
		oci = oci_architecture(probes[i]->arch);
		if (!oci)
			oci = probes[i]->arch;
		probed++;
		buf_printf(&platforms, "%s%s linux/%s", platforms.len ? ", " : "", config->hosts[i].name, oci);
		if (!first_platform)
			first_platform = oci;
		else if (strcmp(first_platform, oci) != 0)
			mixed = true;
	}
	if (r == 0 && probed > 0) {
		if (probed == 1)
			r = report_add(report, GROUP_NODES, "nodes.architectures", "one architecture", CHECK_PASS,
				       NULL, "the one probed node is linux/%s", first_platform);
		else if (mixed)
			r = report_add(report, GROUP_NODES, "nodes.architectures", "one architecture", CHECK_WARN,
				       "make sure the bundle carries images for every platform listed (mlboot bundle build --platform)",
				       "the nodes differ: %s", buf_str(&platforms));
		else
			r = report_add(report, GROUP_NODES, "nodes.architectures", "one architecture", CHECK_PASS,
				       NULL, "%zu probed nodes are linux/%s", probed, first_platform);
	}
	buf_release(&platforms);
	return r;
}

/* Probing the hosts */

/* The outcome of one host's probe, filled by that host's thread. */
struct host_probe {
	bool connected;
	int64_t connect_ms;
	int run_result;                   /* of node_run() */
	struct node_error run_error;
	struct node_result output;
	int64_t local_start_ns;
	int64_t local_end_ns;
};

struct probe_run {
	struct node_options node_options;
	struct host_probe *hosts;
};

static int probe_host(const struct node_host *host, size_t index, void *context,
		      struct node_error *err)
{
	static const char *const argv[] = { "sh", "-s", NULL };
	struct probe_run *run = context;
	struct host_probe *result = &run->hosts[index];
	struct node_session *session = NULL;
	struct node_command command = {
		.argv = argv,
		.stdin_data = preflight_probe_script,
		.stdin_len = sizeof(preflight_probe_script) - 1,
		.stdout_max = NODE_PROBE_OUTPUT_MAX + 1,
		.stderr_max = 4096,
		.timeout_ms = PREFLIGHT_PROBE_TIMEOUT_MS,
	};
	int64_t started = monotonic_ms();
	int r;

	r = node_connect(host, &run->node_options, &session, err);
	if (r < 0)
		return r;
	result->connected = true;
	result->connect_ms = monotonic_ms() - started;

	result->local_start_ns = realtime_ns();
	result->run_result = node_run(session, &command, &result->output, &result->run_error);
	result->local_end_ns = realtime_ns();
	log_debug("host '%s': probe finished in %lld ms (connect %lld ms)", host->name,
		  (long long)(monotonic_ms() - started), (long long)result->connect_ms);
	node_close(session);
	return 0;
}

static const char *unreachable_remedy(int result)
{
	switch (result) {
	case MLB_EDENIED:
		return "check the pinned hostKey or the known_hosts entry of the host (a new host needs --accept-new-host-keys or a known_hosts entry), and that the SSH user's public key is in its authorized_keys";
	case MLB_EINPUT:
		return "fix the ssh settings of this host in mlboot.yaml or its key file";
	default:
		return "check that the host is up, that sshd listens on the address and port in mlboot.yaml, and that no firewall between here and there drops the connection";
	}
}

/* Adds the reachability check of one host, and the checks of its probe when it ran. */
static int report_host(const struct config_host *host, const struct node_outcome *outcome,
		       struct host_probe *result, uint64_t space_needed, struct node_probe *probe,
		       bool *probed, struct report *report)
{
	char group[300], how[600];
	struct node_probe_context context = {
		.host = host,
		.space_needed = space_needed,
		.local_start_ns = result->local_start_ns,
		.local_end_ns = result->local_end_ns,
		.exit_status = result->output.exit_status,
		.stderr_text = result->output.err.data,
		.stderr_len = result->output.err.len,
	};

	*probed = false;
	snprintf(group, sizeof(group), "node %s", host->name);
	if (host->local)
		snprintf(how, sizeof(how), "the local host%s", host->sudo ? ", with sudo" : "");
	else
		snprintf(how, sizeof(how), "%s@%s port %u%s%s%s, connected in %lld ms", host->ssh.user,
			 host->ssh.address, host->ssh.port, host->ssh.bastion ? " through " : "",
			 host->ssh.bastion ? host->ssh.bastion->address : "", host->sudo ? ", with sudo" : "",
			 (long long)result->connect_ms);

	if (outcome->result < 0 || !result->connected)
		return report_add(report, group, "node.reachable", "host reachable", CHECK_FAIL,
				  unreachable_remedy(outcome->result), "%s",
				  outcome->error.message[0] ? outcome->error.message : mlb_strerror(outcome->result));
	if (report_add(report, group, "node.reachable", "host reachable", CHECK_PASS, NULL, "%s", how) < 0)
		return -ENOMEM;

	if (result->run_result < 0) {
		const char *remedy = result->run_result == MLB_EDENIED
			? "allow the SSH user to run commands through sudo without a password (NOPASSWD in /etc/sudoers.d/)"
			: "run mlboot preflight -v for details, and check that the host is not overloaded";

		return report_add(report, group, "node.probe", "probe ran", CHECK_FAIL, remedy, "%s",
				  result->run_error.message[0] ? result->run_error.message
							       : mlb_strerror(result->run_result));
	}
	if (result->output.out_truncated)
		log_debug("host '%s': probe output larger than %d bytes", host->name, NODE_PROBE_OUTPUT_MAX);
	node_probe_parse(result->output.out.data ? result->output.out.data : "", result->output.out.len, probe);
	*probed = true;
	return preflight_node_evaluate(probe, &context, report);
}

int preflight_nodes(const struct config *config, const struct preflight_nodes_options *options,
		    struct report *report)
{
	struct probe_run run;
	struct node_host *hosts = NULL;
	struct node_outcome *outcomes = NULL;
	struct node_probe *probes = NULL;
	const struct node_probe **probed = NULL;
	size_t count = config->host_count, unreachable = 0, denied = 0;
	uint64_t space_needed = options && options->space_needed ? options->space_needed
								  : PREFLIGHT_DEFAULT_SPACE_NEEDED;
	int64_t started = monotonic_ms();
	int r = -ENOMEM;

	memset(&run, 0, sizeof(run));
	node_options_init(&run.node_options);
	run.node_options.accept_new_host_keys = options && options->accept_new_host_keys;
	if (count == 0)
		return 0;

	hosts = calloc(count, sizeof(*hosts));
	outcomes = calloc(count, sizeof(*outcomes));
	probes = calloc(count, sizeof(*probes));
	probed = calloc(count, sizeof(*probed));
	run.hosts = calloc(count, sizeof(*run.hosts));
	if (!hosts || !outcomes || !probes || !probed || !run.hosts)
		goto out;
	for (size_t i = 0; i < count; i++) {
		node_result_init(&run.hosts[i].output);
		r = config_host_to_node(&config->hosts[i], &hosts[i]);
		if (r < 0)
			goto out;
	}

	log_info("probing %zu host%s, at most %u at a time", count, count == 1 ? "" : "s",
		 config->parallelism);
	r = node_for_each(hosts, count, config->parallelism, probe_host, &run, outcomes);
	if (r == -ENOMEM || r == -EAGAIN)
		goto out;

	for (size_t i = 0; i < count; i++) {
		bool was_probed;

		r = report_host(&config->hosts[i], &outcomes[i], &run.hosts[i], space_needed, &probes[i],
				&was_probed, report);
		if (r < 0)
			goto out;
		probed[i] = was_probed ? &probes[i] : NULL;
		if (outcomes[i].result < 0) {
			unreachable++;
			if (outcomes[i].result == MLB_EDENIED)
				denied++;
			log_error("%s", outcomes[i].error.message[0] ? outcomes[i].error.message
								     : mlb_strerror(outcomes[i].result));
		}
	}
	r = preflight_nodes_compare(config, probed, report);
	if (r < 0)
		goto out;
	log_info("node checks: %zu host%s in %lld ms, %zu unreachable", count, count == 1 ? "" : "s",
		 (long long)(monotonic_ms() - started), unreachable);
	/* A rejected host key or user key needs the operator's decision, so it wins over a host down. */
	r = 0;
	if (denied > 0)
		r = MLB_EDENIED;
	else if (unreachable > 0)
		r = MLB_EUNREACHABLE;
out:
	for (size_t i = 0; hosts && i < count; i++)
		node_host_release(&hosts[i]);
	for (size_t i = 0; run.hosts && i < count; i++)
		node_result_release(&run.hosts[i].output);
	free(hosts);
	free(outcomes);
	free(probes);
	free(probed);
	free(run.hosts);
	return r;
}

/* Command-line helpers */

int preflight_use_config_kubeconfig(const struct config *config,
				    const struct preflight_nodes_options *options,
				    struct kubeconfig_options *cluster,
				    struct config_kubeconfig *resolved, struct report *report)
{
	struct node_options node_options;
	struct node_error err;
	const char *context = cluster->context;
	int r;

	memset(resolved, 0, sizeof(*resolved));
	if (cluster->path)
		return 0;
	node_options_init(&node_options);
	node_options.accept_new_host_keys = options && options->accept_new_host_keys;
	r = config_kubeconfig_resolve(config, &node_options, resolved, &err);
	if (r < 0) {
		if (r == -ENOMEM)
			return r;
		log_error("cannot read the kubeconfig of kubeconfig.fromHost: %s", err.message);
		if (report_add(report, "cluster", "cluster.kubeconfig", "kubeconfig", CHECK_FAIL,
			       "fix the access to the host named by kubeconfig.fromHost, or set kubeconfig.path in mlboot.yaml",
			       "%s", err.message) < 0)
			return -ENOMEM;
		/* The command handles MLB_EINPUT, MLB_EDENIED and MLB_EUNREACHABLE; a timeout counts as unreachable. */
		if (r != MLB_EINPUT && r != MLB_EDENIED)
			r = MLB_EUNREACHABLE;
		return r;
	}
	*cluster = resolved->options;
	if (context)
		cluster->context = context;
	return 0;
}

int preflight_parse_size(const char *text, uint64_t *out)
{
	static const struct {
		const char *suffix;
		unsigned shift;
	} units[] = {
		{ "", 0 },    { "K", 10 },   { "M", 20 },   { "G", 30 },   { "T", 40 },
		{ "KiB", 10 }, { "MiB", 20 }, { "GiB", 30 }, { "TiB", 40 },
	};
	unsigned long long value;
	size_t digits = strspn(text, "0123456789");

	if (digits == 0)
		return -EINVAL;
	if (parse_number(text, digits, 0, UINT64_MAX, &value) < 0)
		return -ERANGE;
	for (size_t i = 0; i < ARRAY_SIZE(units); i++) {
		if (strcmp(text + digits, units[i].suffix) != 0)
			continue;
		if (value > (UINT64_MAX >> units[i].shift))
			return -ERANGE;
		*out = (uint64_t)value << units[i].shift;
		return 0;
	}
	return -EINVAL;
}
