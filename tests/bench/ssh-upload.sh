#!/bin/bash
# Upload throughput of mlboot's node module against OpenSSH scp, to the same
# testbed node (node1 of a testbed with prefix mlbssh on 198.18.0.0/24) in
# the same run.
#
# The file (MLB_BENCH_UPLOAD_MIB MiB of random bytes, default 512) is sent
# MLB_BENCH_RUNS times (default 3) by each tool, alternating. The fastest
# run of each counts, because these machines are shared and a run can lose
# the CPU to another job. mlboot is run as install runs it: the
# expected sha256 comes from the bundle index, so only the node hashes the
# file. A second line gives mlboot without an expected digest, which also
# hashes the file locally. MB is 10^6 bytes.
#
# Prints: upload: mlboot X MB/s, scp Y MB/s, ratio Z
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
testbed=$root/tests/integration/testbed
# shellcheck source=../integration/lib.sh
. "$root/tests/integration/lib.sh"

export MLB_TESTBED_PREFIX=mlbssh
export MLB_TESTBED_SUBNET=198.18.0.0/24
export MLB_TESTBED_DIR=/tmp/mlbssh-testbed
unset MLB_TESTBED_SUDO_PASSWORD MLB_TESTBED_BASTION_ONLY

mib=${MLB_BENCH_UPLOAD_MIB:-512}
runs=${MLB_BENCH_RUNS:-3}
[[ $mib =~ ^[0-9]+$ ]] && [ "$mib" -ge 1 ] || mlb_die "invalid MLB_BENCH_UPLOAD_MIB '$mib'"
[[ $runs =~ ^[0-9]+$ ]] && [ "$runs" -ge 1 ] || mlb_die "invalid MLB_BENCH_RUNS '$runs'"
[ "$(id -u)" -eq 0 ] || mlb_die "needs root for the testbed's network namespaces"

build=${MLBOOT_BUILD:-$root/build}
probe=$build/tests/node-probe
make -s -C "$root" BUILD="$build" "$build/tests/node-probe" || mlb_die "cannot build node-probe"
"$testbed/deps" || mlb_die "cannot install the testbed's packages"

work=$(mktemp -d /tmp/mlb-bench-upload.XXXXXX)
cleanup() {
	"$testbed/down" >/dev/null 2>&1 || true
	rm -rf "$work"
}
trap cleanup EXIT

env_file=$("$testbed/up" 1) || mlb_die "testbed/up failed"
set -a
# shellcheck disable=SC1090
. "$env_file"
set +a

file=$work/upload.bin
head -c "$((mib * 1024 * 1024))" /dev/urandom >"$file"
bytes=$(stat -c %s "$file")
digest=$(sha256sum <"$file" | cut -c1-64)
host=(--host node1 --address "$MLB_NODE1_ADDR" --key "$MLB_TESTBED_KEY_ED25519"
	--known-hosts "$MLB_TESTBED_KNOWN_HOSTS")

# Prints the seconds a command took, with nanosecond resolution.
seconds() {
	local start end
	start=$(date +%s%N)
	"$@" >/dev/null || mlb_die "failed: $*"
	end=$(date +%s%N)
	awk -v ns="$((end - start))" 'BEGIN { printf "%.3f\n", ns / 1e9 }'
}

best() {
	printf '%s\n' "$@" | sort -n | head -n 1
}

mlboot_times=() plain_times=() scp_times=()
for ((run = 1; run <= runs; run++)); do
	mlboot_times+=("$(seconds "$probe" "${host[@]}" --sha256 "$digest" upload "$file" /tmp/bench-mlboot.bin)")
	scp_times+=("$(seconds scp -q -F "$MLB_TESTBED_SSH_CONFIG" "$file" node1:/tmp/bench-scp.bin)")
	plain_times+=("$(seconds "$probe" "${host[@]}" upload "$file" /tmp/bench-mlboot.bin)")
done

# Both copies arrived whole.
for copy in /tmp/bench-mlboot.bin /tmp/bench-scp.bin; do
	remote=$("$testbed/node-exec" node1 sha256sum "$copy" | cut -c1-64)
	[ "$remote" = "$digest" ] || mlb_die "node1:$copy has sha256 $remote, expected $digest"
done

rate() {
	awk -v bytes="$bytes" -v seconds="$1" 'BEGIN { printf "%.1f\n", bytes / seconds / 1e6 }'
}

ratio() {
	awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f\n", a / b }'
}
mlboot_rate=$(rate "$(best "${mlboot_times[@]}")")
plain_rate=$(rate "$(best "${plain_times[@]}")")
scp_rate=$(rate "$(best "${scp_times[@]}")")
echo "seconds per run: mlboot ${mlboot_times[*]}; without digest ${plain_times[*]}; scp ${scp_times[*]}" >&2
echo "upload: mlboot $mlboot_rate MB/s, scp $scp_rate MB/s, ratio $(ratio "$mlboot_rate" "$scp_rate")"
echo "upload without expected digest: mlboot $plain_rate MB/s, scp $scp_rate MB/s, ratio $(ratio "$plain_rate" "$scp_rate")"
