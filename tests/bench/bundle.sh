#!/usr/bin/env bash
# Bundle verify and unpack against the standard tools, in one run:
#
#   verify  vs openssl dgst -sha256 over the bundle bytes   target <= 1.25
#   verify  vs sha256sum -c over the files tar extracted    target <= 0.5
#   unpack  vs tar -x followed by sha256sum -c              target <= 0.5
#   peak memory of verify (/usr/bin/time -v)                target < 64 MiB
#   bundle size vs the per-image OCI archives it replaces   (information)
#
# The bundle contains four images with 1 GiB of pseudo-random layer data
# stored. Each image has two layers of BENCH_LAYER_MIB MiB (default 205),
# and one of them is shared by all four images. Everything is written below a temporary
# folder (BENCH_DIR, default /tmp) and deleted afterwards. Each time is the
# best of RUNS runs (default 5) after one warm-up run, with the files in
# the page cache, so the figures compare CPU work rather than the disk.
# Each pair of commands is run alternately, so that load from other
# processes on a shared machine falls on both alike.
# Exits 1 when a target is missed.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=../integration/lib.sh
. "$here/integration/lib.sh"
MLBOOT=${MLBOOT:?MLBOOT must name the mlboot binary}
runs=${RUNS:-5}
layer_mib=${BENCH_LAYER_MIB:-205}

mlb_install_packages time openssl python3 coreutils tar
work=$(mktemp -d "${BENCH_DIR:-/tmp}/mlboot-bench-bundle.XXXXXX")
trap 'rm -rf "$work"' EXIT
fixtures=$here/fixtures/bundle

# Four images: a base layer shared by all, and one layer of their own each.
size=$((layer_mib * 1024 * 1024))
mkdir -p "$work/src/manifests"
cp "$fixtures/manifests/"*.yaml "$work/src/manifests/"
{
	printf 'apiVersion: mlboot.dev/v1alpha1\nkind: Catalog\nmetadata: {name: bench}\nspec:\n'
	printf '  version: "1"\n  kubernetes: {minVersion: "1.24", maxVersion: "1.33"}\n  platforms: [linux/amd64]\n'
	printf '  components:\n  - name: bench\n    version: "1"\n    manifests: [{path: manifests/sample.yaml}]\n    images:\n'
} >"$work/src/catalog.yaml"
for i in 1 2 3 4; do
	python3 "$fixtures/make_layout.py" "$work/src/image$i" --name "registry.bench/image$i:v1" \
		--layer "1000:$size" --layer "$((1000 + i)):$size" >/dev/null
	printf '    - {name: "registry.bench/image%s:v1", path: image%s}\n' "$i" "$i" >>"$work/src/catalog.yaml"
done
"$MLBOOT" keygen -o "$work/key" >/dev/null
"$MLBOOT" bundle build -f "$work/src/catalog.yaml" -o "$work/bench.bundle" --key "$work/key.key" >/dev/null

# time_once FUNCTION: prints the wall time of one run in seconds.
time_once() {
	local start end
	start=$(date +%s.%N)
	"$1" >/dev/null 2>&1
	end=$(date +%s.%N)
	echo "$end - $start" | bc -l
}

# smaller A B: prints the smaller number; an empty A counts as infinity.
smaller() {
	if [ -z "$1" ] || [ "$(echo "$2 < $1" | bc -l)" = 1 ]; then echo "$2"; else echo "$1"; fi
}

# best_pair A B: the best wall times of functions A and B, run alternately
# RUNS times after one warm-up run each, so that load from other processes
# falls on both alike.
best_pair() {
	local best_a="" best_b=""
	"$1" >/dev/null 2>&1
	"$2" >/dev/null 2>&1
	for _ in $(seq "$runs"); do
		best_a=$(smaller "$best_a" "$(time_once "$1")")
		best_b=$(smaller "$best_b" "$(time_once "$2")")
	done
	printf '%.3f %.3f\n' "$best_a" "$best_b"
}

run_verify() { "$MLBOOT" bundle verify "$work/bench.bundle" --pubkey "$work/key.pub"; }
run_openssl() { openssl dgst -sha256 "$work/bench.bundle"; }
run_sha256sum() { (cd "$work/tar" && sha256sum --quiet -c SHA256SUMS); }
run_unpack() { rm -rf "$work/unpacked"; "$MLBOOT" bundle unpack "$work/bench.bundle" -C "$work/unpacked" --pubkey "$work/key.pub"; }
run_tar_sha256sum() {
	rm -rf "$work/tar-check" && mkdir "$work/tar-check" && tar -xf "$work/bench.bundle" -C "$work/tar-check" &&
		(cd "$work/tar-check" && sha256sum --quiet -c SHA256SUMS)
}

mlb_install_packages bc
run_verify >/dev/null || mlb_die "the benchmark bundle does not verify"
mkdir "$work/tar"
tar -xf "$work/bench.bundle" -C "$work/tar"

bundle_bytes=$(stat -c %s "$work/bench.bundle")
read -r verify openssl_time < <(best_pair run_verify run_openssl)
read -r verify_again sha256sum_time < <(best_pair run_verify run_sha256sum)
read -r unpack tar_check < <(best_pair run_unpack run_tar_sha256sum)
memory_kib=$(/usr/bin/time -v "$MLBOOT" bundle verify "$work/bench.bundle" --pubkey "$work/key.pub" 2>&1 >/dev/null |
	awk -F': ' '/Maximum resident set size/ {print $2}')
archives=0
for i in 1 2 3 4; do
	archives=$((archives + $(tar -cf - -C "$work/src/image$i" . | wc -c)))
done

ratio() { echo "scale=3; $1 / $2" | bc -l | sed 's/^\./0./'; }
verify_openssl=$(ratio "$verify" "$openssl_time")
verify_sha256sum=$(ratio "$verify_again" "$sha256sum_time")
unpack_tar=$(ratio "$unpack" "$tar_check")
size_ratio=$(ratio "$bundle_bytes" "$archives")
memory_mib=$(ratio "$memory_kib" 1024)

missed=0
verdict() {
	if [ "$(echo "$1" | bc -l)" = 1 ]; then echo "meets target"; else echo "MISSES target"; fi
}

echo "bundle: $bundle_bytes bytes, best of $runs runs, $(nproc) cores, $(uname -m)"
printf 'verify                     %8ss (and %ss beside sha256sum)\n' "$verify" "$verify_again"
printf 'openssl dgst -sha256       %8ss   verify/openssl   = %s (target <= 1.25: %s)\n' "$openssl_time" \
	"$verify_openssl" "$(verdict "$verify_openssl <= 1.25")"
printf 'sha256sum -c (tar files)   %8ss   verify/sha256sum = %s (target <= 0.5: %s)\n' "$sha256sum_time" \
	"$verify_sha256sum" "$(verdict "$verify_sha256sum <= 0.5")"
printf 'unpack                     %8ss\n' "$unpack"
printf 'tar -x + sha256sum -c      %8ss   unpack/tar+sum   = %s (target <= 0.5: %s)\n' "$tar_check" \
	"$unpack_tar" "$(verdict "$unpack_tar <= 0.5")"
printf 'verify peak memory         %8s MiB (target < 64: %s)\n' "$memory_mib" "$(verdict "$memory_mib < 64")"
printf 'bundle vs per-image archives: %s / %s bytes = %s\n' "$bundle_bytes" "$archives" "$size_ratio"
# verdict runs in command substitutions, which cannot set variables here, so the misses are counted here.
for check in "$verify_openssl <= 1.25" "$verify_sha256sum <= 0.5" "$unpack_tar <= 0.5" "$memory_mib < 64"; do
	[ "$(echo "$check" | bc -l)" = 1 ] || missed=1
done
exit "$missed"
