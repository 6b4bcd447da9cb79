#!/usr/bin/env bash
# `mlboot install` of the real upstream platform: the RawDeployment variant
# of airgap/catalog/ (cert-manager, Istio, KServe, Kubeflow, Argo CD, no
# Knative), bundled from the unmodified release manifests in
# MLBOOT_UPSTREAM_DIR by build_upstream_bundle (lib/upstream-bundle.sh),
# installed on a testbed of 3 nodes (network namespaces with real sshd and
# containerd) and the stand-in API server. The images are placeholders; the
# manifests are the releases' own.
#
# Proves that:
#   - the install completes with every step done in the journal;
#   - every bundle image is in every node's containerd, pinned;
#   - every object of every manifest of every component exists on the
#     stand-in with mlboot's labels, as many per component as the manifests
#     hold;
#   - the webhook configurations that ask cert-manager for a caBundle got
#     one, so their gates held; the stand-in saw no failed request;
#   - a re-run transfers 0 bytes, applies 0 objects and changes no object.
#
# Exit status: 0 pass, 77 skip (MLBOOT_UPSTREAM_DIR unset, not root, no
# namespaces), 1 fail. The testbed uses MLB_INSTALL_UPSTREAM_TEST_SUBNET
# (default 198.18.0.0/24). While another testbed uses that subnet, the test
# waits up to MLB_INSTALL_TEST_WAIT seconds (default 900) and then skips.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.sh
. "$here/lib.sh"
# shellcheck source=lib/standin.sh
. "$here/lib/standin.sh"
# shellcheck source=lib/registry.sh
. "$here/lib/registry.sh"
# shellcheck source=lib/upstream-bundle.sh
. "$here/lib/upstream-bundle.sh"
# shellcheck source=lib/results.sh
. "$here/lib/results.sh"
# shellcheck source=lib/install-testbed.sh
. "$here/lib/install-testbed.sh"
testbed=$here/testbed

install_testbed_settings mlbinu "${MLB_INSTALL_UPSTREAM_TEST_SUBNET:-198.18.0.0/24}"

if [ -z "${MLBOOT_UPSTREAM_DIR:-}" ]; then
	echo "SKIP: MLBOOT_UPSTREAM_DIR is unset"
	exit 77
fi
[ -d "$MLBOOT_UPSTREAM_DIR" ] || mlb_die "MLBOOT_UPSTREAM_DIR '$MLBOOT_UPSTREAM_DIR' is not a folder"
install_testbed_require
install_testbed_wait_until_free ||
	mlb_skip "subnet $MLB_TESTBED_SUBNET or testbed $MLB_TESTBED_PREFIX is in use; set MLB_INSTALL_UPSTREAM_TEST_SUBNET to a free 198.18.N.0/24, or run testbed/down after a crashed run"
"$testbed/deps"

work=$(mktemp -d /var/tmp/mlb-test-install-upstream.XXXXXX)
standin_isolate_environment "$work/home"

cleanup() {
	local status=$?
	upstream_services_stop
	install_testbed_cleanup "$status"
}
trap cleanup EXIT

# --- The bundle -------------------------------------------------------------------
start=$SECONDS
(cd "$work" && "$MLBOOT" keygen -o "$work/signing") >/dev/null
# Called in a condition: the registry's exit status on SIGTERM would end a set -e shell.
if ! build_upstream_bundle "$work/platform.bundle" "$work/signing.key" "$work"; then
	mlb_die "the upstream bundle could not be built"
fi
mlb_log "bundle built in $((SECONDS - start)) s"
"$MLBOOT" bundle inspect "$work/platform.bundle" -o json --pubkey "$work/signing.pub" >"$work/inspect.json"
"$MLBOOT" bundle unpack "$work/platform.bundle" -C "$work/unpacked" --pubkey "$work/signing.pub" >/dev/null
mapfile -t images < <(/usr/bin/python3 -c '
import json, sys
for component in json.load(open(sys.argv[1]))["components"]:
    for image in component["images"]:
        print(image["name"])' "$work/inspect.json" | sort -u)
[ "${#images[@]}" -ge 90 ] || mlb_die "the bundle lists only ${#images[@]} images"
# component namespace manifest, one manifest a line, in the bundle's order.
/usr/bin/python3 -c '
import json, sys
for component in json.load(open(sys.argv[1]))["components"]:
    for manifest in component["manifests"]:
        print(component["name"], component["namespace"], manifest)' "$work/inspect.json" >"$work/manifests.txt"

# --- The testbed and the stand-in -------------------------------------------------
install_testbed_start
nodes=(node1 node2 node3)
standin_start "$work/standin"
install_testbed_write_config "$work/mlboot.yaml" install-upstream-test "$work/platform.bundle" \
	"$STANDIN_DIR/admin.kubeconfig" "$work/state" 3m

install() {
	"$MLBOOT" install -f "$work/mlboot.yaml" --pubkey "$work/signing.pub"
}

# Every bundle image listed by the node's containerd, pinned.
node_has_every_image() {
	install_testbed_node_has_images "$1" "${images[@]}"
}

# Every object of every manifest, read back from the stand-in, with mlboot's
# labels; per component as many as its manifests hold.
every_object_applied() {
	local component namespace manifest found expected problems=0
	declare -A found_total=() expected_total=()
	while read -r component namespace manifest; do
		expected=$(/usr/bin/python3 -c '
import re, sys
text = open(sys.argv[1]).read()
documents = re.split(r"^---[^\n]*$", text, flags=re.M)
print(sum(1 for document in documents if re.search(r"^kind:", document, re.M)))' "$work/unpacked/$manifest")
		# The context's namespace, unlike -n, also accepts objects that name another namespace.
		cp "$STANDIN_DIR/admin.kubeconfig" "$work/get.kubeconfig"
		kubectl --kubeconfig "$work/get.kubeconfig" config set-context --current --namespace "$namespace" >/dev/null
		found=$(kubectl --kubeconfig "$work/get.kubeconfig" --request-timeout=30s get -f "$work/unpacked/$manifest" \
			-o json 2>"$work/get.err" |
			/usr/bin/python3 -c '
import json, sys
component = sys.argv[1]
document = json.load(sys.stdin)
items = document["items"] if "items" in document else [document]
want = {"app.kubernetes.io/managed-by": "mlboot", "mlboot.dev/component": component}
for item in items:
    labels = item["metadata"].get("labels") or {}
    if any(labels.get(key) != value for key, value in want.items()):
        sys.exit(f"{item['kind']} {item['metadata']['name']} lacks mlboot labels: {labels}")
print(len(items))' "$component") || {
			mlb_log "$manifest: $(tail -n 3 "$work/get.err")"
			problems=$((problems + 1))
			continue
		}
		found_total[$component]=$((${found_total[$component]:-0} + found))
		expected_total[$component]=$((${expected_total[$component]:-0} + expected))
	done <"$work/manifests.txt"
	for component in "${!expected_total[@]}"; do
		mlb_log "$component: ${found_total[$component]} objects found, ${expected_total[$component]} in its manifests"
		[ "${found_total[$component]}" -eq "${expected_total[$component]}" ] || problems=$((problems + 1))
	done
	[ "$problems" -eq 0 ]
}

# Every webhook of every configuration annotated for cert-manager's CA
# injection has a caBundle; prints how many configurations were checked.
injected_webhooks_have_ca() {
	standin_kubectl get validatingwebhookconfigurations,mutatingwebhookconfigurations -o json |
		/usr/bin/python3 -c '
import json, sys
annotations = ("cert-manager.io/inject-ca-from", "cert-manager.io/inject-ca-from-secret")
checked = 0
for item in json.load(sys.stdin)["items"]:
    if not set(annotations) & set(item["metadata"].get("annotations") or {}):
        continue
    checked += 1
    for webhook in item["webhooks"]:
        if not webhook["clientConfig"].get("caBundle"):
            sys.exit(f"{item['kind']} {item['metadata']['name']}: webhook {webhook['name']} has no caBundle")
if checked < 5:
    sys.exit(f"only {checked} annotated webhook configurations")
print(checked)'
}

# Every step of the journal done.
every_step_done() {
	"$MLBOOT" status --state-dir "$work/state" -o json >"$work/status.json" || return 1
	/usr/bin/python3 -c '
import json, sys
steps = json.load(open(sys.argv[1]))["steps"]
pending = [f"{s['step']} {s['state']}" for s in steps if s["state"] != "done"]
if pending or len(steps) < 10:
    sys.exit(f"{len(steps)} steps, not done: {pending}")' "$work/status.json"
}

# resourceVersion of every object mlboot manages, by kind, namespace and name.
resource_versions() {
	local kinds
	kinds=$(standin_kubectl api-resources --verbs=list -o name | paste -sd,)
	standin_kubectl get "$kinds" -A -l app.kubernetes.io/managed-by=mlboot \
		-o jsonpath='{range .items[*]}{.kind} {.metadata.namespace}/{.metadata.name} {.metadata.resourceVersion}{"\n"}{end}' |
		sort
}

# --- The install ---------------------------------------------------------------------
standin_ctl stats --reset >/dev/null
start=$SECONDS
if install >"$work/install.out" 2>"$work/install.err"; then
	pass "the upstream platform installs ($((SECONDS - start)) s)"
else
	fail "the upstream platform installs"
	tail -n 30 "$work/install.out" >&2
fi
check "the journal shows every step done" every_step_done
for node in "${nodes[@]}"; do
	check "$node has all ${#images[@]} images, pinned" node_has_every_image "$node"
done
check "every object of every manifest is applied with mlboot's labels" every_object_applied
check "webhooks annotated for CA injection have a caBundle" injected_webhooks_have_ca
# KServe's manifests default to Serverless; this bundle has no Knative Serving.
kserve_mode=$(standin_kubectl -n kserve get configmap inferenceservice-config -o jsonpath='{.data.deploy}')
check "KServe's default deployment mode set to RawDeployment (got: $kserve_mode)" \
	test "$kserve_mode" = '{"defaultDeploymentMode":"RawDeployment"}'
failures=$(standin_stats_failures)
check "the gates held: the stand-in saw no failed request${failures:+ ($failures)}" test -z "$failures"

# --- A re-run ------------------------------------------------------------------------
versions_before=$(resource_versions)
object_count=$(grep -c . <<<"$versions_before" || true)
check "the stand-in lists the $object_count objects mlboot manages" test "$object_count" -ge 500
standin_ctl stats --reset >/dev/null
start=$SECONDS
if install >"$work/rerun.out" 2>"$work/rerun.err"; then
	pass "re-run completes ($((SECONDS - start)) s)"
else
	fail "re-run completes"
fi
check "re-run sends 0 bytes" grep -q ' 0 bytes sent' "$work/rerun.out"
check "re-run applies 0 objects" grep -q 'objects: 0 applied' "$work/rerun.out"
check "re-run sends no apply to the API server" test "$(standin_patch_count)" -eq 0
check "re-run changes no object (same resourceVersions)" test "$versions_before" = "$(resource_versions)"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
