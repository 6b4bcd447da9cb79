#!/usr/bin/env bash
# `mlboot install` and `mlboot check` with spec.components of mlboot.yaml,
# on a testbed of 3 nodes and the stand-in API server, with the project's
# small platform (tests/fixtures/platform).
#
# Proves that:
#   - each of these is an error that names its cause, with the file and
#     line for mlboot.yaml: a listed component that the bundle lacks,
#     --only naming a component that spec.components does not list or that
#     the bundle lacks, and kserve.deploymentMode Serverless with a bundle
#     that has no Knative Serving. The install stops before it sends any
#     request to the API server;
#   - --dry-run plans the listed components only;
#   - the install applies the listed components only, with their images
#     only, and puts the sample model into sampleModel.namespace;
#   - mlboot check expects the listed components only, and the sample
#     model in sampleModel.namespace.
#
# Exit status: 0 pass, 77 skip (not root, no namespaces), 1 fail. The
# testbed uses MLB_COMPONENTS_TEST_SUBNET (default 198.18.50.0/24). While
# another testbed uses that subnet, the test waits up to
# MLB_INSTALL_TEST_WAIT seconds (default 900) and then skips.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.sh
. "$here/lib.sh"
# shellcheck source=lib/standin.sh
. "$here/lib/standin.sh"
# shellcheck source=lib/results.sh
. "$here/lib/results.sh"
# shellcheck source=lib/install-testbed.sh
. "$here/lib/install-testbed.sh"
testbed=$here/testbed

install_testbed_settings mlbcomp "${MLB_COMPONENTS_TEST_SUBNET:-198.18.50.0/24}"
install_testbed_require
install_testbed_wait_until_free ||
	mlb_skip "subnet $MLB_TESTBED_SUBNET or testbed $MLB_TESTBED_PREFIX is in use; set MLB_COMPONENTS_TEST_SUBNET to a free 198.18.N.0/24, or run testbed/down after a crashed run"
"$testbed/deps"

work=$(mktemp -d /var/tmp/mlb-test-components.XXXXXX)
standin_isolate_environment "$work/home"
trap 'install_testbed_cleanup $?' EXIT

install_testbed_start
install_testbed_build_bundle
standin_start "$work/standin"

# The same platform without its argocd component.
"$STANDIN_PYTHON" - "$work/platform/catalog.yaml" "$work/platform/catalog-no-argocd.yaml" <<'EOF'
import re, sys
source, target = sys.argv[1:3]
with open(source, encoding="utf-8") as handle:
    text = handle.read()
text, count = re.subn(r"\n  - name: argocd\n(    .*\n)+", "\n", text)
if count != 1:
    sys.exit(f"{source}: expected one argocd component, found {count}")
with open(target, "w", encoding="utf-8") as handle:
    handle.write(text)
EOF
"$MLBOOT" bundle build -f "$work/platform/catalog-no-argocd.yaml" -o "$work/no-argocd.bundle" \
	--key "$work/signing.key" >/dev/null 2>"$work/build-no-argocd.err" ||
	mlb_die "bundle build without argocd failed; see $work/build-no-argocd.err"

# write_config FILE BUNDLE COMPONENTS: an mlboot.yaml for the testbed whose
# spec.components is the YAML text COMPONENTS (one "    key: value" a line).
write_config() {
	local file=$1 bundle=$2 components=$3
	install_testbed_write_config "$file" components-test "$bundle" "$STANDIN_DIR/admin.kubeconfig" \
		"$work/state"
	printf '  components:\n%s\n' "$components" >>"$file"
}

# The line of the first line of FILE that starts with TEXT.
line_of() {
	grep -n -m1 "^$2" "$1" | cut -d: -f1
}

# How many requests the stand-in served since it started.
request_count() {
	standin_ctl stats | "$STANDIN_PYTHON" -c 'import json, sys; print(json.load(sys.stdin)["total"])'
}

# run_install CONFIG ARGS...: mlboot install with its stdout in $work/out and
# stderr in $work/install.err; sets status.
run_install() {
	local config=$1
	shift
	status=0
	"$MLBOOT" install -f "$config" --pubkey "$work/signing.pub" "$@" >"$work/out" 2>"$work/install.err" ||
		status=$?
}

# Whether the last install exited with STATUS, printed FRAGMENT on stderr,
# sent no request to the API server and wrote no journal.
rejected_before_any_request() {
	local expected=$1 fragment=$2
	if [ "$status" -ne "$expected" ]; then
		mlb_log "exit status $status, expected $expected"
		return 1
	fi
	if ! grep -qF -- "$fragment" "$work/install.err"; then
		mlb_log "stderr lacks: $fragment"
		return 1
	fi
	if [ "$(request_count)" -ne 0 ]; then
		mlb_log "the stand-in served $(request_count) requests"
		return 1
	fi
	[ ! -e "$work/state/journal" ] || { mlb_log "a journal was written"; return 1; }
}

listed='    certManager: {}
    istio: {profile: default}
    kserve: {deploymentMode: RawDeployment}
    sampleModel: {namespace: zzz}'

# --- Errors before anything is sent --------------------------------------------
config=$work/no-argocd.yaml
write_config "$config" "$work/no-argocd.bundle" '    certManager: {}
    argocd: {}'
run_install "$config"
check "bundle without a listed component rejected at its line" rejected_before_any_request 3 \
	"$config:$(line_of "$config" '    argocd:'):5: spec.components.argocd: argocd is listed, but the bundle '$work/no-argocd.bundle' has no component 'argocd': remove argocd from spec.components, or use a bundle that has it"

config=$work/mlboot.yaml
write_config "$config" "$work/platform.bundle" "$listed"
run_install "$config" --only argocd
check "--only of an unlisted component rejected" rejected_before_any_request 3 \
	"component 'argocd' given to --only is not listed in spec.components of '$config'"

run_install "$config" --only nosuch
check "--only of an unknown component rejected" rejected_before_any_request 2 \
	"component 'nosuch' given to --only is not in the bundle"

write_config "$work/serverless.yaml" "$work/platform.bundle" '    certManager: {}
    istio: {}
    kserve: {deploymentMode: Serverless}'
run_install "$work/serverless.yaml"
check "Serverless without Knative Serving rejected" rejected_before_any_request 3 \
	"$work/serverless.yaml:$(line_of "$work/serverless.yaml" '    kserve:'):30: spec.components.kserve.deploymentMode: Serverless needs Knative Serving, which the bundle '$work/platform.bundle' does not bring"

# --- The dry run and the install of the listed components -----------------------
run_install "$config" --dry-run
check "dry run exits 0" test "$status" -eq 0
check "dry run plans the sample model in zzz" grep -q '^component sample-model .*(namespace zzz)' "$work/out"
check "dry run plans no unlisted component" bash -c "! grep -Eq '^component (kubeflow|argocd) ' '$work/out'"

run_install "$config"
check "install of the listed components exits 0" test "$status" -eq 0
components_applied() {
	standin_kubectl get namespaces,deployments,configmaps,services,inferenceservices -A \
		-l app.kubernetes.io/managed-by=mlboot \
		-o jsonpath='{range .items[*]}{.metadata.labels.mlboot\.dev/component}{"\n"}{end}' | sort -u | tr '\n' ' '
}
applied=$(components_applied)
check "only listed components applied (got: $applied)" test "$applied" = "cert-manager istio kserve sample-model "
check "sample model in namespace zzz" standin_kubectl -n zzz get inferenceservice iris
check "namespace zzz created" standin_kubectl get namespace zzz
check "no namespace ml" bash -c "! kubectl --kubeconfig '$STANDIN_DIR/admin.kubeconfig' get namespace ml >/dev/null 2>&1"
check "listed components' images on node2" install_testbed_node_has_images node2 \
	'quay.io/jetstack/cert-manager-controller:v1.14.4' 'registry.mlboot.dev/models/iris-sklearn:1.0'
check "unlisted components' images not on node2" bash -c \
	"! '$testbed/node-exec' node2 ctr -n k8s.io images ls -q | grep -Eq 'argoproj/argocd|centraldashboard'"

# --- mlboot check expects the listed components ------------------------------------
"$MLBOOT" check -f "$config" --bundle "$work/platform.bundle" --pubkey "$work/signing.pub" -o json \
	>"$work/report.json" 2>"$work/check.err" || true
report_evidence() {
	"$STANDIN_PYTHON" - "$work/report.json" "$1" <<'EOF'
import json, sys
report = json.load(open(sys.argv[1], encoding="utf-8"))
for item in report.get("checks", []):
    if item.get("id") == sys.argv[2]:
        print(item.get("evidence", ""))
EOF
}
components_evidence=$(report_evidence platform.components)
check "check expects 4 components (got: $components_evidence)" \
	grep -q '^4 components of the bundle' <<<"$components_evidence"
lacks_unlisted() {
	! grep -Eq 'argocd|kubeflow' <<<"$1"
}
check "check expects no argocd or kubeflow" lacks_unlisted "$components_evidence"
check "check looks for the model in zzz" grep -q 'zzz/iris' <<<"$(report_evidence kserve.inferenceservice)"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
