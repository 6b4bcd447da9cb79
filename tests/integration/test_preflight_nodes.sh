#!/usr/bin/env bash
# Node preflight against real nodes: `mlboot preflight -f mlboot.yaml` on a
# testbed of 3 nodes (network namespaces with their own sshd and containerd).
#
# Proves that:
#   - 3 nodes are probed over SSH, node2 as a sudo user and node3 through
#     node1 as a bastion, and every check reports what the node really has.
#     Checks that depend on this machine's kernel (cgroup v2, br_netfilter,
#     sysctls, swap, memory, CPUs) are compared with what the node shows;
#   - applying the remedy the report gives for net.ipv4.ip_forward turns
#     that check from fail to pass;
#   - kubeconfig.fromHost reads /etc/kubernetes/admin.conf from node1 over
#     SSH; its server https://127.0.0.1:PORT (as k3s writes) is rewritten to
#     node1's address, TLS still verified, and the cluster checks reach the
#     stand-in API server running in node1's namespace;
#   - a node with a stopped sshd is one failing check naming it, the others
#     are still reported, and the exit status is 5;
#   - a node with too little disk under /var/lib/containerd fails the disk check;
#   - an unknown host key is rejected unless --accept-new-host-keys is given,
#     which records it;
#   - a non-root user without sudo is told to set sudo: true;
#   - an invalid mlboot.yaml gives exit status 3 and FILE:LINE:COLUMN.
#
# Exit status: 0 pass, 77 skip (not root, no namespaces), 1 fail. The
# testbed uses MLB_PREFLIGHT_TEST_SUBNET (default 198.18.0.0/24); while
# another testbed holds that subnet, the test waits up to
# MLB_PREFLIGHT_TEST_WAIT seconds (default 900) and then skips.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.sh
. "$here/lib.sh"
testbed=$here/testbed
standin=$here/standin/standin.py

export MLB_TESTBED_PREFIX=mlbpfn
export MLB_TESTBED_SUBNET=${MLB_PREFLIGHT_TEST_SUBNET:-198.18.0.0/24}
export MLB_TESTBED_DIR=/tmp/mlbpfn-testbed
unset MLB_TESTBED_SUDO_PASSWORD MLB_TESTBED_BASTION_ONLY
# The product must never fall back to this machine's own kubeconfig or keys.
export KUBECONFIG=/nonexistent/kubeconfig
unset SSH_AUTH_SOCK

if [ "$(id -u)" -ne 0 ]; then
	mlb_skip "needs root for network namespaces and mounts"
fi
if ! unshare --net --mount true 2>/dev/null; then
	mlb_skip "this kernel or sandbox does not allow new network and mount namespaces"
fi
[ -x "${MLBOOT:-}" ] || mlb_die "MLBOOT is not set to the mlboot binary; run through tests/run"

# Another testbed (another prefix) on the same subnet would make `up` fail.
subnet_taken_by_other() {
	ip -o -4 addr show to "$MLB_TESTBED_SUBNET" | awk '{print $2}' | grep -qv "^$MLB_TESTBED_PREFIX-br\$"
}
wait_limit=${MLB_PREFLIGHT_TEST_WAIT:-900}
waited=0
while subnet_taken_by_other; do
	if [ "$waited" -ge "$wait_limit" ]; then
		mlb_skip "subnet $MLB_TESTBED_SUBNET is used by another testbed; set MLB_PREFLIGHT_TEST_SUBNET to a free 198.18.N.0/24"
	fi
	[ "$waited" -gt 0 ] || mlb_log "waiting for subnet $MLB_TESTBED_SUBNET, which another testbed uses"
	sleep 5
	waited=$((waited + 5))
done
"$testbed/deps"

# Not under /tmp: every node has its own /tmp, and node1 must see the
# stand-in's state folder.
work=$(mktemp -d /var/tmp/mlb-test-preflight-nodes.XXXXXX)
standin_pid=
passed=0
failed=0

cleanup() {
	local status=$?
	if [ -n "$standin_pid" ]; then
		kill "$standin_pid" 2>/dev/null || true
		wait "$standin_pid" 2>/dev/null || true
	fi
	if [ "$failed" -gt 0 ] || [ "$status" -ne 0 ]; then
		for log in "$work"/*.err; do
			[ -f "$log" ] || continue
			echo "--- $log" >&2
			tail -n 30 "$log" >&2
		done
	fi
	"$testbed/down" || true
	rm -rf "$work"
}
trap cleanup EXIT

pass() {
	passed=$((passed + 1))
	echo "ok - $1"
}

fail() {
	failed=$((failed + 1))
	echo "not ok - $1"
}

env_file=$("$testbed/up" 3)
set -a
# shellcheck disable=SC1090
. "$env_file"
set +a

# The stand-in API server inside node1's namespace, listening on all of its
# addresses with node1's address in its certificate, as k3s does. Its
# admin kubeconfig names https://127.0.0.1:PORT.
"$testbed/node-exec" node1 /usr/bin/python3 "$standin" --state-dir "$work/standin" \
	--listen 0.0.0.0 --san "$MLB_NODE1_ADDR" >"$work/standin.err" 2>&1 &
standin_pid=$!
mlb_wait_until 30 test -s "$work/standin/port" || mlb_die "the stand-in API server did not start; see $work/standin.err"
mlb_wait_until 30 test -s "$work/standin/admin.kubeconfig" || mlb_die "the stand-in wrote no admin.kubeconfig"
standin_port=$(cat "$work/standin/port")
grep -q "server: https://127.0.0.1:$standin_port" "$work/standin/admin.kubeconfig" ||
	mlb_die "the stand-in's admin.kubeconfig does not name https://127.0.0.1:$standin_port"
"$testbed/node-exec" node1 install -m 0600 "$work/standin/admin.kubeconfig" /etc/kubernetes/admin.conf

# write_config FILE [NODE2_SUDO] [NODE3_KNOWN_HOSTS]: hosts node1 (pinned
# host key), node2 (the sudo user, the testbed's known_hosts) and node3
# (through node1 as a bastion, or with its own known_hosts file).
write_config() {
	local file=$1 node2_sudo=${2:-true} node3_known_hosts=${3:-}
	local node3_ssh
	if [ -n "$node3_known_hosts" ]; then
		node3_ssh="{address: $MLB_NODE3_ADDR, keyPath: \"$MLB_TESTBED_KEY_ED25519\", knownHosts: \"$node3_known_hosts\"}"
	else
		node3_ssh="{address: $MLB_NODE3_ADDR, keyPath: \"$MLB_TESTBED_KEY_ED25519\", knownHosts: \"$MLB_TESTBED_KNOWN_HOSTS\", bastion: {address: $MLB_NODE1_ADDR, hostKey: \"$MLB_NODE1_HOSTKEY_ED25519\"}}"
	fi
	cat >"$file" <<EOF
apiVersion: mlboot.dev/v1alpha1
kind: Platform
metadata:
  name: testbed
spec:
  kubeconfig:
    fromHost: node1
  hosts:
    - name: node1
      role: control-plane
      ssh:
        address: $MLB_NODE1_ADDR
        keyPath: "$MLB_TESTBED_KEY_ED25519"
        hostKey: "$MLB_NODE1_HOSTKEY_ED25519"
    - name: node2
      role: worker
      ssh:
        address: $MLB_NODE2_ADDR
        user: $MLB_TESTBED_SUDO_USER
        keyPath: "$MLB_TESTBED_KEY_ED25519"
        knownHosts: "$MLB_TESTBED_KNOWN_HOSTS"
      sudo: $node2_sudo
    - name: node3
      role: worker
      ssh: $node3_ssh
  parallelism: 3
EOF
}

# preflight NAME [OPTIONS...]: runs mlboot preflight -o json on $config,
# keeping the report in $work/NAME.json and stderr in $work/NAME.err, and
# sets $status.
preflight() {
	local name=$1
	shift
	status=0
	"$MLBOOT" preflight -f "$config" -o json "$@" >"$work/$name.json" 2>"$work/$name.err" || status=$?
}

# check_status NAME GROUP ID STATUS [EVIDENCE_FRAGMENT]: whether the report
# NAME has the check with that status (and evidence containing the fragment).
check_status() {
	/usr/bin/python3 - "$work/$1.json" "$2" "$3" "$4" "${5:-}" <<'EOF'
import json, sys
path, group, check_id, status, fragment = sys.argv[1:6]
report = json.load(open(path))
found = [c for c in report["checks"] if c["group"] == group and c["id"] == check_id]
if len(found) != 1:
    print(f"{group} {check_id}: found {len(found)} checks", file=sys.stderr)
    sys.exit(1)
check = found[0]
if check["status"] != status or fragment not in (check["evidence"] or ""):
    print(f"{group} {check_id}: {check['status']}: {check['evidence']} "
          f"(expected {status} with '{fragment}')", file=sys.stderr)
    sys.exit(1)
EOF
}

expect() {
	local description=$1
	shift
	if check_status "$@"; then
		pass "$description"
	else
		fail "$description"
	fi
}

expect_exit() {
	local description=$1 expected=$2
	if [ "$status" -eq "$expected" ]; then
		pass "$description (exit $status)"
	else
		fail "$description: exit $status, expected $expected"
	fi
}

# What a node really has, read inside its namespaces.
node_sh() {
	"$testbed/node-exec" "$1" sh -c "$2"
}

# The status a check must have, from a shell condition run on the node.
status_if() {
	local node=$1 condition=$2 yes=$3 no=$4
	if node_sh "$node" "$condition" >/dev/null 2>&1; then
		echo "$yes"
	else
		echo "$no"
	fi
}

config=$work/mlboot.yaml
write_config "$config"

# 1. Three nodes, as they are. The report goes to the log for diagnosis.
preflight all --space-needed 1M
/usr/bin/python3 -c '
import json, sys
for check in json.load(open(sys.argv[1]))["checks"]:
    print("#", check["group"], "|", check["status"], "|", check["id"], "|", check["evidence"])
' "$work/all.json"
for node in node1 node2 node3; do
	group="node $node"
	expect "$node reachable" all "$group" node.reachable pass
	expect "$node probe output valid" all "$group" node.probe pass "values read"
	expect "$node architecture" all "$group" node.arch pass "$(uname -m) (linux/"
	expect "$node containerd answers" all "$group" node.containerd pass "answers on /run/containerd/containerd.sock"
	expect "$node disk" all "$group" node.disk pass "at /var/lib/containerd; 1.0 MiB needed"
	expect "$node hostname is its own" all "$group" node.hostname pass "$node"
	expect "$node clock" all "$group" node.clock pass "this machine"
	expect "$node overlay as the node shows it" all "$group" node.overlay \
		"$(status_if "$node" '[ -d /sys/module/overlay ] || grep -qw overlay /proc/filesystems' pass fail)"
	expect "$node br_netfilter as the node shows it" all "$group" node.br_netfilter \
		"$(status_if "$node" '[ -d /sys/module/br_netfilter ] || [ -e /proc/sys/net/bridge/bridge-nf-call-iptables ] || grep -q "^br_netfilter " /proc/modules' pass warn)"
	expect "$node bridge-nf-call-iptables as the node shows it" all "$group" node.bridge_nf_call_iptables \
		"$(status_if "$node" '[ "$(cat /proc/sys/net/bridge/bridge-nf-call-iptables 2>/dev/null)" = 1 ]' pass warn)"
	expect "$node ip_forward as the node shows it" all "$group" node.ip_forward \
		"$(status_if "$node" '[ "$(cat /proc/sys/net/ipv4/ip_forward)" = 1 ]' pass fail)"
	expect "$node cgroup as the node shows it" all "$group" node.cgroup \
		"$(status_if "$node" 'for c in cpu memory pids; do grep -qw $c /sys/fs/cgroup/cgroup.controllers || exit 1; done' pass warn)"
	expect "$node swap as the node shows it" all "$group" node.swap \
		"$(status_if "$node" 'awk '\''$1 == "SwapTotal:" { exit $2 != 0 }'\'' /proc/meminfo' pass warn)"
	expect "$node memory as the node shows it" all "$group" node.memory \
		"$(status_if "$node" 'awk '\''$1 == "MemTotal:" { exit $2 * 1024 < 2000000000 }'\'' /proc/meminfo' pass warn)"
done
expect "control-plane CPUs as node1 shows them" all "node node1" node.cpus \
	"$(status_if node1 '[ "$(getconf _NPROCESSORS_ONLN)" -ge 2 ]' pass warn)"
expect "one architecture" all nodes nodes.architectures pass "3 probed nodes"
expect "fromHost kubeconfig reaches the API server" all cluster cluster.api pass "https://$MLB_NODE1_ADDR:$standin_port"
if grep -q "host 'node1': the kubeconfig's server https://127.0.0.1:$standin_port is a loopback address: using https://$MLB_NODE1_ADDR:$standin_port instead" "$work/all.err"; then
	pass "loopback server rewrite is logged"
else
	fail "loopback server rewrite is logged"
fi
if grep -q "read the admin kubeconfig /etc/kubernetes/admin.conf" "$work/all.err"; then
	pass "fromHost names the file it read"
else
	fail "fromHost names the file it read"
fi
if /usr/bin/python3 -c 'import json,sys; sys.exit(any(c["status"] == "fail" for c in json.load(open(sys.argv[1]))["checks"]))' "$work/all.json"; then
	expect_exit "no check failed" 0
else
	expect_exit "a check failed, as the nodes really are" 1
fi

# 2. The remedy for ip_forward, applied to each node, makes it pass.
for node in node1 node2 node3; do
	node_sh "$node" 'echo 1 > /proc/sys/net/ipv4/ip_forward'
done
preflight forwarding --space-needed 1M
for node in node1 node2 node3; do
	expect "$node ip_forward after the remedy" forwarding "node $node" node.ip_forward pass "net.ipv4.ip_forward = 1"
done

# 3. sshd stopped on node2: one failing check naming it, the others reported.
"$testbed/stop-sshd" node2
preflight nossh --space-needed 1M
expect_exit "a host is unreachable" 5
expect "node2 unreachable, named" nossh "node node2" node.reachable fail "host 'node2'"
expect "node1 still probed" nossh "node node1" node.probe pass
expect "node3 still probed" nossh "node node3" node.probe pass
if grep -q "error: host 'node2'" "$work/nossh.err"; then
	pass "the unreachable host is logged by name"
else
	fail "the unreachable host is logged by name"
fi
"$testbed/start-sshd" node2

# 4. Too little disk on node2: a 16 MiB tmpfs over its containerd root.
"$testbed/limit-disk" node2 16M 2>/dev/null
preflight smalldisk --space-needed 64M
expect "node2 disk too small" smalldisk "node node2" node.disk fail "short"
expect "node1 disk fine" smalldisk "node node1" node.disk pass "64.0 MiB needed"
expect "node2 containerd answers on the small disk" smalldisk "node node2" node.containerd pass
expect_exit "a check failed" 1
"$testbed/limit-disk" node2 off 2>/dev/null

# 5. An unknown host key: rejected, then recorded with --accept-new-host-keys.
: >"$work/known_hosts.new"
write_config "$config" true "$work/known_hosts.new"
preflight newkey --space-needed 1M
expect "node3 with an unknown key is rejected" newkey "node node3" node.reachable fail "node3"
expect_exit "the rejected host key gives exit status 6 (denied)" 6
preflight acceptkey --space-needed 1M --accept-new-host-keys
expect "node3 accepted with --accept-new-host-keys" acceptkey "node node3" node.reachable pass
if [ -s "$work/known_hosts.new" ]; then
	pass "the accepted key is recorded"
else
	fail "the accepted key is recorded"
fi
preflight knownkey --space-needed 1M
expect "node3 known after recording" knownkey "node node3" node.reachable pass

# 6. The sudo user without sudo cannot use containerd's socket.
write_config "$config" false
preflight nosudo --space-needed 1M
expect "node2 without sudo is told to set it" nosudo "node node2" node.containerd fail "as uid"

# 7. kubeconfig.fromHost on a host without an admin kubeconfig.
write_config "$config"
"$testbed/node-exec" node1 rm -f /etc/kubernetes/admin.conf
preflight nokubeconfig --space-needed 1M
expect "missing admin kubeconfig is a failed check" nokubeconfig cluster cluster.kubeconfig fail "no admin kubeconfig at /etc/kubernetes/admin.conf"
expect "nodes are still probed without a kubeconfig" nokubeconfig "node node1" node.probe pass

# 8. An invalid mlboot.yaml: exit 3, file, line, column and field, nothing run.
awk -v address="$MLB_NODE2_ADDR" '{ print } $1 == "address:" && $2 == address { print "        port: 70000" }' \
	"$config" >"$work/bad.yaml"
status=0
"$MLBOOT" preflight -f "$work/bad.yaml" >"$work/bad.out" 2>"$work/bad.err" || status=$?
expect_exit "invalid config" 3
if grep -q "^error: $work/bad.yaml:[0-9]*:[0-9]*: spec.hosts\[[0-9]\].ssh.port: invalid port \"70000\": use 1-65535" "$work/bad.err"; then
	pass "the problem names file, line, column and field"
else
	fail "the problem names file, line, column and field"
fi
if [ ! -s "$work/bad.out" ] && ! grep -q "probing" "$work/bad.err"; then
	pass "nothing ran for an invalid config"
else
	fail "nothing ran for an invalid config"
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
