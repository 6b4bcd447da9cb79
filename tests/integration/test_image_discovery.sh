#!/usr/bin/env bash
# `mlboot bundle images` finds exactly the expected images: in the project's
# own fixtures always, and in the real release manifests of each component
# when MLBOOT_UPSTREAM_DIR names them. The expected lists are in
# tests/fixtures/images/; a difference in either direction fails.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
fixtures=$here/../fixtures/images
: "${MLBOOT:?MLBOOT must name the mlboot binary}"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failures=0

# expect_images NAME EXPECTED_FILE -f FILE...: compares the printed list.
expect_images() {
	local name=$1 expected=$2
	shift 2
	if ! "$MLBOOT" -q bundle images "$@" >"$work/$name.txt" 2>"$work/$name.err"; then
		mlb_log "$name: mlboot bundle images failed: $(cat "$work/$name.err")"
		failures=$((failures + 1))
		return
	fi
	if ! diff -u "$expected" "$work/$name.txt" >"$work/$name.diff"; then
		mlb_log "$name: the images differ from $expected ('-' expected, '+' found):"
		cat "$work/$name.diff" >&2
		failures=$((failures + 1))
		return
	fi
	mlb_log "$name: $(wc -l <"$work/$name.txt") images, as expected"
}

# The project's fixtures: every rule, and values that must not count.
expect_images fixtures "$fixtures/discovery/expected.txt" \
	-f "$fixtures/discovery/workloads.yaml" -f "$fixtures/discovery/configuration.yaml"

# Reading the manifests from standard input gives the same list.
{ cat "$fixtures/discovery/workloads.yaml"; echo ---; cat "$fixtures/discovery/configuration.yaml"; } |
	"$MLBOOT" -q bundle images -f - >"$work/stdin.txt" || mlb_die "bundle images -f - failed"
diff -u "$fixtures/discovery/expected.txt" "$work/stdin.txt" || failures=$((failures + 1))

# A container image that is not a valid reference fails with exit status 3,
# names the field, and the valid images are still printed.
status=0
"$MLBOOT" bundle images -f "$fixtures/discovery/invalid.yaml" >"$work/invalid.txt" 2>"$work/invalid.err" || status=$?
if [ "$status" -ne 3 ]; then
	mlb_log "invalid.yaml: expected exit status 3, got $status"
	failures=$((failures + 1))
fi
grep -q "containers\[0\].image: invalid image reference 'example/UpperCase:1'" "$work/invalid.err" || {
	mlb_log "invalid.yaml: the error does not name the field: $(cat "$work/invalid.err")"
	failures=$((failures + 1))
}
[ "$(cat "$work/invalid.txt")" = "docker.io/example/good:1" ] || {
	mlb_log "invalid.yaml: expected only docker.io/example/good:1, got: $(cat "$work/invalid.txt")"
	failures=$((failures + 1))
}

# JSON output lists the same references, each with where it was found.
"$MLBOOT" -q bundle images -o json -f "$fixtures/discovery/configuration.yaml" >"$work/images.json" ||
	mlb_die "bundle images -o json failed"
/usr/bin/python3 - "$work/images.json" <<'PY' || failures=$((failures + 1))
import json, sys
images = json.load(open(sys.argv[1]))
queue = [i for i in images if i["reference"].startswith("gcr.io/knative-releases/")]
assert len(queue) == 1, queue
source = queue[0]["sources"][0]
assert source["object"] == "ConfigMap/knative-serving/config-deployment", source
assert source["field"] == "data.queue-sidecar-image", source
assert source["line"] > 0, source
PY

if [ -z "${MLBOOT_UPSTREAM_DIR:-}" ]; then
	[ "$failures" -eq 0 ] || mlb_die "$failures checks failed"
	mlb_log "the project's fixtures passed; the real release manifests were not read"
	echo "SKIP: MLBOOT_UPSTREAM_DIR is unset"
	exit "$MLB_EXIT_SKIP"
fi
upstream=$MLBOOT_UPSTREAM_DIR
[ -d "$upstream" ] || mlb_die "MLBOOT_UPSTREAM_DIR '$upstream' is not a folder"

expect_images cert-manager "$fixtures/cert-manager-v1.19.4.txt" \
	-f "$upstream/cert-manager-v1.19.4/cert-manager.yaml"
expect_images istio "$fixtures/istio-1.29.1.txt" \
	-f "$upstream/istio-1.29.1/crds.yaml" -f "$upstream/istio-1.29.1/namespace.yaml" \
	-f "$upstream/istio-1.29.1/install.yaml"
expect_images kserve "$fixtures/kserve-v0.16.0.txt" \
	-f "$upstream/kserve-v0.16.0/kserve.yaml" -f "$upstream/kserve-v0.16.0/kserve-cluster-resources.yaml"
expect_images kubeflow "$fixtures/kubeflow-v1.10.2.txt" \
	-f "$upstream/kubeflow-v1.10.2/example.all.yaml"
expect_images argo-cd "$fixtures/argo-cd-v3.5.1.txt" \
	-f "$upstream/argo-cd-v3.5.1/install.yaml"

[ "$failures" -eq 0 ] || mlb_die "$failures checks failed"
echo "image discovery: every list matches"
