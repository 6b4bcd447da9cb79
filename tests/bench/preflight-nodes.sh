#!/usr/bin/env bash
# Node preflight: wall time of `mlboot preflight -f` for 3 testbed nodes
# against 1 node, run alternately in one session, as medians of RUNS runs
# each (default 15). Nodes are probed in parallel, so 3 nodes should take
# well under 1.5 times as long as one.
#
# Prints both ratios: the whole command, and the node phase alone (from the
# "node checks: N hosts in X ms" log line). The configs name a kubeconfig
# that cannot be loaded, so the cluster half ends at once, makes no
# connection, and preflight exits 3; that exit status is expected here.
#
# Needs root (network namespaces); without it, prints why and exits 0.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=../integration/lib.sh
. "$here/integration/lib.sh"
testbed=$here/integration/testbed
runs=${RUNS:-15}

export MLB_TESTBED_PREFIX=mlbpfb
export MLB_TESTBED_SUBNET=${MLB_PREFLIGHT_TEST_SUBNET:-198.18.0.0/24}
export MLB_TESTBED_DIR=/tmp/mlbpfb-testbed
unset MLB_TESTBED_SUDO_PASSWORD MLB_TESTBED_BASTION_ONLY SSH_AUTH_SOCK
export KUBECONFIG=/nonexistent/kubeconfig

if [ "$(id -u)" -ne 0 ] || ! unshare --net --mount true 2>/dev/null; then
	echo "preflight-nodes: skipped: needs root and network namespaces"
	exit 0
fi
[ -x "${MLBOOT:-}" ] || mlb_die "MLBOOT is not set to the mlboot binary; run through tests/bench/run"
# Another testbed on the same subnet would make `up` fail: wait for it up to
# MLB_PREFLIGHT_TEST_WAIT seconds (default 900).
waited=0
while ip -o -4 addr show to "$MLB_TESTBED_SUBNET" | awk '{print $2}' | grep -qv "^$MLB_TESTBED_PREFIX-br\$"; do
	if [ "$waited" -ge "${MLB_PREFLIGHT_TEST_WAIT:-900}" ]; then
		echo "preflight-nodes: skipped: subnet $MLB_TESTBED_SUBNET is used by another testbed (set MLB_PREFLIGHT_TEST_SUBNET)"
		exit 0
	fi
	sleep 5
	waited=$((waited + 5))
done
"$testbed/deps"

work=$(mktemp -d /var/tmp/mlb-bench-preflight-nodes.XXXXXX)
cleanup() {
	"$testbed/down" >/dev/null 2>&1 || true
	rm -rf "$work"
}
trap cleanup EXIT

env_file=$("$testbed/up" 3 2>"$work/up.err") || mlb_die "testbed/up failed: $(tail -n 5 "$work/up.err")"
set -a
# shellcheck disable=SC1090
. "$env_file"
set +a
: >"$work/empty.kubeconfig"

write_config() {
	local file=$1 count=$2 i
	{
		printf 'apiVersion: mlboot.dev/v1alpha1\nkind: Platform\nmetadata: {name: bench}\n'
		printf 'spec:\n  kubeconfig: {path: "%s"}\n  hosts:\n' "$work/empty.kubeconfig"
		for ((i = 1; i <= count; i++)); do
			local address_var=MLB_NODE${i}_ADDR hostkey_var=MLB_NODE${i}_HOSTKEY_ED25519
			printf '    - name: node%s\n      role: %s\n' "$i" "$([ "$i" -eq 1 ] && echo control-plane || echo worker)"
			printf '      ssh: {address: %s, keyPath: "%s", hostKey: "%s"}\n' \
				"${!address_var}" "$MLB_TESTBED_KEY_ED25519" "${!hostkey_var}"
		done
	} >"$file"
}
write_config "$work/one.yaml" 1
write_config "$work/three.yaml" 3

# run CONFIG: prints "TOTAL_MS NODE_PHASE_MS" for one preflight.
run() {
	local start end phase
	start=$(date +%s%N)
	"$MLBOOT" preflight -f "$1" --space-needed 1M >/dev/null 2>"$work/last.err" || true
	end=$(date +%s%N)
	phase=$(sed -n 's/^node checks: [0-9]* hosts\{0,1\} in \([0-9]*\) ms.*/\1/p' "$work/last.err")
	[ -n "$phase" ] || mlb_die "no node checks line in the output: $(cat "$work/last.err")"
	if grep -q 'unreachable' "$work/last.err" && ! grep -q ', 0 unreachable' "$work/last.err"; then
		mlb_die "a node was unreachable during the benchmark: $(cat "$work/last.err")"
	fi
	echo "$(((end - start) / 1000000)) $phase"
}

median() {
	sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# One warm-up run each, then alternate so that drift on a shared machine hits both.
run "$work/one.yaml" >/dev/null
run "$work/three.yaml" >/dev/null
: >"$work/one.times"
: >"$work/three.times"
for ((i = 0; i < runs; i++)); do
	run "$work/one.yaml" >>"$work/one.times"
	run "$work/three.yaml" >>"$work/three.times"
done

one_total=$(cut -d' ' -f1 "$work/one.times" | median)
three_total=$(cut -d' ' -f1 "$work/three.times" | median)
one_phase=$(cut -d' ' -f2 "$work/one.times" | median)
three_phase=$(cut -d' ' -f2 "$work/three.times" | median)

echo "preflight -f, $runs runs each, medians ($(nproc) CPUs):"
printf '  1 node:  %s ms total, node phase %s ms\n' "$one_total" "$one_phase"
printf '  3 nodes: %s ms total, node phase %s ms\n' "$three_total" "$three_phase"
awk -v a="$three_total" -v b="$one_total" -v c="$three_phase" -v d="$one_phase" 'BEGIN {
	printf "  ratio 3 nodes / 1 node: %.2fx total, %.2fx node phase (target: under 1.5x)\n", a / b, c / d
	exit (a / b < 1.5) ? 0 : 1
}'
