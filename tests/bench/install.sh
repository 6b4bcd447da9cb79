#!/usr/bin/env bash
# mlboot install, measured against peers in the same session (the machines
# are shared, so only ratios of one run are compared):
#
#   1. the platform through the API: `mlboot install` of the project's own
#      small platform (tests/fixtures/platform) on a fresh stand-in API server
#      with its simulated controller delays set to 0, against `kubectl apply
#      --server-side` of the same files on another fresh stand-in, file by
#      file in the bundle's order, each file applied again until it succeeds
#      (CRDs must be established and webhooks serving first). The images are
#      on the nodes already, so mlboot's own figure is preflight, every wave,
#      every gate, the model and the check. Target: at most 0.3x. The
#      stand-in's statistics of the mlboot runs must show no failed request.
#   2. images: `mlboot install` that imports every image of the platform into
#      3 nodes against 1 node, with the API steps already done. Target: at
#      most 1.5x.
#
# Each figure is the median of RUNS runs (default 5), alternating the peers.
# Needs root (network namespaces); without it, prints why and exits 0.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=../integration/lib.sh
. "$here/integration/lib.sh"
# shellcheck source=../integration/lib/standin.sh
. "$here/integration/lib/standin.sh"
# shellcheck source=../integration/lib/install-testbed.sh
. "$here/integration/lib/install-testbed.sh"
testbed=$here/integration/testbed
fixture=$here/fixtures/platform
runs=${RUNS:-5}

install_testbed_settings mlbinb "${MLB_INSTALL_TEST_SUBNET:-198.18.0.0/24}"

if [ "$(id -u)" -ne 0 ] || ! unshare --net --mount true 2>/dev/null; then
	echo "install: skipped: needs root and network namespaces"
	exit 0
fi
[ -x "${MLBOOT:-}" ] || mlb_die "MLBOOT is not set to the mlboot binary; run through tests/bench/run"
if ! install_testbed_wait_until_free; then
	echo "install: skipped: subnet $MLB_TESTBED_SUBNET or testbed $MLB_TESTBED_PREFIX is in use (set MLB_INSTALL_TEST_SUBNET)"
	exit 0
fi
"$testbed/deps"

work=$(mktemp -d /var/tmp/mlb-bench-install.XXXXXX)
standin_isolate_environment "$work/home"
cleanup() {
	standin_stop
	[ "$INSTALL_TESTBED_STARTED" = 0 ] || "$testbed/down" >/dev/null 2>&1 || true
	rm -rf "$work"
}
trap cleanup EXIT

install_testbed_start 2>"$work/up.err" || mlb_die "testbed/up failed: $(tail -n 5 "$work/up.err")"

cp -r "$fixture" "$work/platform"
"$fixture/make-images" "$work/platform/images"
"$MLBOOT" bundle build -f "$work/platform/catalog.yaml" -o "$work/platform.bundle" >/dev/null
files=(cert-manager istio kserve kserve-runtimes kubeflow argocd sample-model)

# write_config FILE KUBECONFIG STATE_DIR NODE_COUNT
write_config() {
	local file=$1 kubeconfig=$2 state=$3 count=$4
	{
		cat <<EOF
apiVersion: mlboot.dev/v1alpha1
kind: Platform
metadata:
  name: bench
spec:
  bundle: $work/platform.bundle
  kubeconfig:
    path: $kubeconfig
  stateDir: $state
  hosts:
EOF
		install_testbed_hosts "$count"
	} >"$file"
}

# A fresh stand-in with every simulated controller delay at 0.
fresh_standin() {
	standin_stop
	rm -rf "$work/standin"
	standin_start "$work/standin" 2>/dev/null
	local kind
	for kind in default CustomResourceDefinition Deployment StatefulSet DaemonSet Job APIService; do
		standin_ctl delay "$kind" 0 >/dev/null
	done
}

now_ms() {
	date +%s%3N
}

median() {
	sort -n | awk '{ values[NR] = $1 } END { print values[int((NR + 1) / 2)] }'
}

# Keeps the journal records of the steps matching PATTERN (grep -E), so that a re-run does only the others.
keep_steps() {
	local state=$1 pattern=$2
	grep -E "\"step\":\"($pattern)" "$state/journal" >"$state/journal.kept" || true
	mv "$state/journal.kept" "$state/journal"
}

# One first install puts the images on the nodes; its images and binaries steps are kept for the API runs.
fresh_standin
write_config "$work/seed.yaml" "$STANDIN_DIR/admin.kubeconfig" "$work/seed-state" 3
"$MLBOOT" install -f "$work/seed.yaml" --allow-unsigned >/dev/null 2>"$work/seed.err" ||
	mlb_die "the first install failed; see $work/seed.err"
keep_steps "$work/seed-state" 'images/|binaries/'

: >"$work/mlboot.ms"
: >"$work/kubectl.ms"
failures=""
for run in $(seq 1 "$runs"); do
	fresh_standin
	rm -rf "$work/api-state"
	mkdir -p "$work/api-state"
	cp "$work/seed-state/journal" "$work/api-state/journal"
	write_config "$work/api.yaml" "$STANDIN_DIR/admin.kubeconfig" "$work/api-state" 3
	start=$(now_ms)
	"$MLBOOT" install -f "$work/api.yaml" --allow-unsigned >/dev/null 2>"$work/api.err" ||
		mlb_die "mlboot install failed in run $run; see $work/api.err"
	echo $(($(now_ms) - start)) >>"$work/mlboot.ms"
	failures+=$(standin_ctl stats | /usr/bin/python3 -c '
import json, sys
stats = json.load(sys.stdin)
print("".join(f" {code}x{count}" for code, count in stats["byStatus"].items() if not code.startswith("2")))')

	fresh_standin
	attempts=0
	start=$(now_ms)
	for file in "${files[@]}"; do
		tries=0
		until standin_kubectl apply --server-side -f "$fixture/manifests/$file.yaml" >/dev/null 2>&1; do
			tries=$((tries + 1))
			[ "$tries" -lt 50 ] || mlb_die "kubectl apply of $file.yaml failed 50 times"
		done
		attempts=$((attempts + tries + 1))
	done
	echo $(($(now_ms) - start)) >>"$work/kubectl.ms"
done
mlboot_ms=$(median <"$work/mlboot.ms")
kubectl_ms=$(median <"$work/kubectl.ms")
echo "platform through the API (${#files[@]} files, 57 objects, controller delays 0, median of $runs):"
echo "  mlboot install            ${mlboot_ms} ms (preflight, waves, gates, model, check)"
echo "  kubectl apply --server-side ${kubectl_ms} ms ($attempts invocations in the last run, repeated until each file passed)"
awk -v a="$mlboot_ms" -v b="$kubectl_ms" 'BEGIN { printf "  ratio mlboot/kubectl      %.2fx (target <= 0.3x)\n", a / b }'
if [ -z "$failures" ]; then
	echo "  stand-in statistics of the mlboot runs: no failed request"
else
	echo "  stand-in statistics of the mlboot runs: failed requests:$failures"
fi

# --- Images: 3 nodes against 1 ------------------------------------------------------
fresh_standin
write_config "$work/full.yaml" "$STANDIN_DIR/admin.kubeconfig" "$work/full-state" 3
"$MLBOOT" install -f "$work/full.yaml" --allow-unsigned >/dev/null 2>"$work/full.err" ||
	mlb_die "the install for the image runs failed; see $work/full.err"
keep_steps "$work/full-state" 'apply/|wait/|model|check'
: >"$work/images1.ms"
: >"$work/images3.ms"
for run in $(seq 1 "$runs"); do
	for count in 1 3; do
		for node in node1 node2 node3; do
			"$testbed/stop-containerd" "$node" >/dev/null
			"$testbed/node-exec" "$node" sh -c 'rm -rf /var/lib/containerd/*'
			"$testbed/start-containerd" "$node" >/dev/null
		done
		rm -rf "$work/images-state"
		mkdir -p "$work/images-state"
		cp "$work/full-state/journal" "$work/images-state/journal"
		write_config "$work/images.yaml" "$STANDIN_DIR/admin.kubeconfig" "$work/images-state" "$count"
		start=$(now_ms)
		"$MLBOOT" install -f "$work/images.yaml" --allow-unsigned >"$work/images.out" 2>"$work/images.err" ||
			mlb_die "mlboot install to $count nodes failed; see $work/images.err"
		echo $(($(now_ms) - start)) >>"$work/images$count.ms"
	done
done
one_ms=$(median <"$work/images1.ms")
three_ms=$(median <"$work/images3.ms")
images=$(grep -c 'path: images/' "$fixture/catalog.yaml")
echo "images to nodes ($images images, median of $runs, each node's containerd emptied first):"
echo "  1 node                    ${one_ms} ms"
echo "  3 nodes                   ${three_ms} ms"
awk -v a="$three_ms" -v b="$one_ms" 'BEGIN { printf "  ratio 3 nodes/1 node      %.2fx (target <= 1.5x)\n", a / b }'
