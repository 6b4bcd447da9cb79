#!/bin/bash
# Upload throughput of mlboot's node module against OpenSSH scp, to the same
# testbed node (node1 of a testbed with prefix mlbssh on 198.18.0.0/24) in
# the same run.
#
# The file (MLB_BENCH_UPLOAD_MIB MiB of random bytes, default 512) is sent
# MLB_BENCH_RUNS times (default 5) by each tool, alternating, so that load
# from other jobs on a shared machine falls on both. mlboot runs in its
# default configuration, as install runs it: 2 sessions for a file of 64 MiB
# or more, and the expected sha256 from the bundle index, so only the node
# hashes the file. Three more lines explain the gap: mlboot with one
# session, mlboot without an expected digest (it also hashes the file
# locally), and scp held to aes128-ctr with hmac-sha2-256, the cipher and
# MAC that libssh2 1.10 negotiates. Each line gives the median and the range
# of the runs; the ratio divides the medians. After the runs, the sha256 of
# each copy on the node is checked against the file's. MB is 10^6 bytes.
#
# Prints:
#   machine: N cores, load average L at the start
#   upload: mlboot X MB/s (min-max), scp Y MB/s (min-max), ratio Z
#   upload with one session: ...
#   upload without expected digest: ...
#   scp with mlboot's cipher and MAC: scp X MB/s (min-max), scp Y MB/s (min-max), ratio Z
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
runs=${MLB_BENCH_RUNS:-5}
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

# Prints "MEDIAN MIN MAX" of the rates in MB/s for the given run times.
rates() {
	printf '%s\n' "$@" | awk -v bytes="$bytes" '{ print bytes / $1 / 1e6 }' | sort -n |
		awk '{ r[NR] = $1 } END {
			m = NR % 2 ? r[(NR + 1) / 2] : (r[NR / 2] + r[NR / 2 + 1]) / 2
			printf "%.1f %.1f %.1f\n", m, r[1], r[NR] }'
}

# Prints one result line: LABEL, NAME and rates of the tool measured, then
# the rates of scp with its defaults.
report() {
	local label=$1 name=$2 median min max scp_median scp_min scp_max
	read -r median min max <<<"$3"
	read -r scp_median scp_min scp_max <<<"$4"
	printf '%s: %s %s MB/s (%s-%s), scp %s MB/s (%s-%s), ratio %s\n' "$label" "$name" \
		"$median" "$min" "$max" "$scp_median" "$scp_min" "$scp_max" \
		"$(awk -v a="$median" -v b="$scp_median" 'BEGIN { printf "%.2f", a / b }')"
}

echo "machine: $(nproc) cores, load average $(cut -d' ' -f1 /proc/loadavg) at the start"
mlboot_times=() single_times=() plain_times=() scp_times=() scp_ctr_times=()
for ((run = 1; run <= runs; run++)); do
	mlboot_times+=("$(seconds "$probe" "${host[@]}" --sha256 "$digest" upload "$file" /tmp/bench-mlboot.bin)")
	scp_times+=("$(seconds scp -q -F "$MLB_TESTBED_SSH_CONFIG" "$file" node1:/tmp/bench-scp.bin)")
	single_times+=("$(seconds "$probe" "${host[@]}" --upload-streams 1 --sha256 "$digest" upload "$file" /tmp/bench-mlboot-single.bin)")
	plain_times+=("$(seconds "$probe" "${host[@]}" upload "$file" /tmp/bench-mlboot-plain.bin)")
	scp_ctr_times+=("$(seconds scp -q -F "$MLB_TESTBED_SSH_CONFIG" -o Ciphers=aes128-ctr -o MACs=hmac-sha2-256 "$file" node1:/tmp/bench-scp-ctr.bin)")
done

# Every copy arrived whole.
for copy in /tmp/bench-mlboot.bin /tmp/bench-mlboot-single.bin /tmp/bench-mlboot-plain.bin \
	/tmp/bench-scp.bin /tmp/bench-scp-ctr.bin; do
	remote=$("$testbed/node-exec" node1 sha256sum "$copy" | cut -c1-64)
	[ "$remote" = "$digest" ] || mlb_die "node1:$copy has sha256 $remote, expected $digest"
done

echo "seconds per run: mlboot ${mlboot_times[*]}; one session ${single_times[*]};" \
	"without digest ${plain_times[*]}; scp ${scp_times[*]};" \
	"scp with mlboot's cipher ${scp_ctr_times[*]}" >&2
scp_rates=$(rates "${scp_times[@]}")
report "upload" mlboot "$(rates "${mlboot_times[@]}")" "$scp_rates"
report "upload with one session" mlboot "$(rates "${single_times[@]}")" "$scp_rates"
report "upload without expected digest" mlboot "$(rates "${plain_times[@]}")" "$scp_rates"
report "scp with mlboot's cipher and MAC" scp "$(rates "${scp_ctr_times[@]}")" "$scp_rates"
