#!/usr/bin/env bash
# Checks the stand-in API server (tests/integration/standin) against real
# kubectl: version, discovery, server-side apply, get, wait, watch, delete,
# admission webhooks that are not ready yet, authentication, authorization
# and fault injection, on the fixtures in tests/fixtures/manifests. With
# MLBOOT_UPSTREAM_DIR set, it also applies the real cert-manager, Argo CD,
# KServe and Kubeflow release manifests from that folder.
#
# Exit status: 0 when every check passes, 77 when kubectl, Debian's
# python3 or openssl is missing, 1 otherwise. Without MLBOOT_UPSTREAM_DIR
# the fixture checks still run and the upstream part prints a SKIP line.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
standin="$here/standin/standin.py"
fixtures="$repo/tests/fixtures/manifests"
python=/usr/bin/python3
kubectl=${MLBOOT_KUBECTL:-/usr/bin/kubectl}

for tool in "$kubectl" "$python"; do
	if [ ! -x "$tool" ]; then
		echo "SKIP: $tool is not installed"
		exit 77
	fi
done
if ! command -v openssl >/dev/null; then
	echo "SKIP: openssl is not installed (Debian package openssl)"
	exit 77
fi

work=$(mktemp -d)
standin_pids=()
passed=0
failed=0

stop_standins() {
	local pid
	for pid in "${standin_pids[@]}"; do
		kill "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	done
	standin_pids=()
}

cleanup() {
	stop_standins
	rm -rf "$work"
}
trap cleanup EXIT

# start_standin DIR: start a stand-in with state in DIR, wait for DIR/port.
start_standin() {
	local state=$1
	"$python" "$standin" --state-dir "$state" >"$state.log" 2>&1 &
	local pid=$!
	standin_pids+=("$pid")
	for _ in $(seq 300); do
		[ -s "$state/port" ] && return 0
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	echo "error: the stand-in in $state did not start; its log:" >&2
	cat "$state.log" >&2
	exit 1
}

state="$work/main"
start_standin "$state"

k() {
	"$kubectl" --kubeconfig "$state/admin.kubeconfig" \
		--cache-dir "$work/kubectl-cache" --request-timeout=60s "$@"
}
k_as() {
	local who=$1
	shift
	"$kubectl" --kubeconfig "$state/$who.kubeconfig" \
		--cache-dir "$work/kubectl-cache-$who" --request-timeout=60s "$@"
}
ctl() {
	"$python" "$standin" ctl --state-dir "$state" "$@" >/dev/null
}

elapsed_since() {
	awk -v start="$1" -v now="$EPOCHREALTIME" \
		'BEGIN { printf "%.2f", now - start }'
}

# run_command COMMAND...: run it, keep its output in $output and its exit
# status in $status.
run_command() {
	status=0
	output=$("$@" 2>&1) || status=$?
}

report() {
	local verdict=$1 name=$2 start=$3 detail=${4:-}
	if [ "$verdict" = ok ]; then
		passed=$((passed + 1))
		echo "ok: $name ($(elapsed_since "$start") s)"
		return
	fi
	failed=$((failed + 1))
	echo "FAIL: $name: $detail"
	printf '%s\n' "$output" | tail -n 20 | sed 's/^/    /'
}

# expect_success NAME COMMAND...: the command must exit 0.
expect_success() {
	local name=$1 start=$EPOCHREALTIME
	shift
	run_command "$@"
	if [ "$status" -eq 0 ]; then
		report ok "$name" "$start"
	else
		report fail "$name" "$start" "exit status $status"
	fi
}

# expect_failure NAME REGEX COMMAND...: the command must fail and its
# output must match REGEX (grep -E).
expect_failure() {
	local name=$1 pattern=$2 start=$EPOCHREALTIME
	shift 2
	run_command "$@"
	if [ "$status" -eq 0 ]; then
		report fail "$name" "$start" \
			"succeeded, expected a failure matching '$pattern'"
	elif grep -Eq -- "$pattern" <<<"$output"; then
		report ok "$name" "$start"
	else
		report fail "$name" "$start" \
			"exit status $status without matching '$pattern'"
	fi
}

# expect_output NAME REGEX COMMAND...: the command must exit 0 and its
# output must match REGEX (grep -E).
expect_output() {
	local name=$1 pattern=$2 start=$EPOCHREALTIME
	shift 2
	run_command "$@"
	if [ "$status" -ne 0 ]; then
		report fail "$name" "$start" "exit status $status"
	elif grep -Eq -- "$pattern" <<<"$output"; then
		report ok "$name" "$start"
	else
		report fail "$name" "$start" "output does not match '$pattern'"
	fi
}

# raw_request KUBECONFIG_NAME METHOD PATH: send one request with the
# bearer token of STATE/KUBECONFIG_NAME.kubeconfig. Prints the HTTP status,
# and for an error also the Status object's kind, reason and message.
raw_request() {
	"$python" - "$state" "$1" "$2" "$3" <<'PYTHON'
import json, ssl, sys, urllib.error, urllib.request
state, kubeconfig, method, path = sys.argv[1:]
token = ""
for line in open(f"{state}/{kubeconfig}.kubeconfig"):
    if line.strip().startswith("token:"):
        token = line.split(":", 1)[1].strip()
url = open(f"{state}/url").read().strip() + path
context = ssl.create_default_context(cafile=f"{state}/ca.crt")
request = urllib.request.Request(
    url, method=method, headers={"Authorization": f"Bearer {token}"})
try:
    with urllib.request.urlopen(request, context=context, timeout=30) as response:
        print(response.status)
except urllib.error.HTTPError as error:
    body = json.load(error)
    print(error.code, body.get("kind"), body.get("reason"), body.get("message"))
PYTHON
}

# stats_count STATUS: how many requests got STATUS (0: dropped) since the
# last reset.
stats_count() {
	"$python" "$standin" ctl --state-dir "$state" stats |
		"$python" -c 'import json, sys
print(json.load(sys.stdin)["byStatus"].get(sys.argv[1], 0))' "$1"
}

echo "== version and discovery"
expect_output "kubectl version shows the server version" \
	'Server Version: v1\.32\.4' k version
ctl set-version v1.27.3+k3s1 --minor 27+
expect_output "set-version changes gitVersion" \
	'"gitVersion":"v1\.27\.3\+k3s1"' k get --raw /version
expect_output "set-version sets minor as given" '"minor":"27\+"' \
	k get --raw /version
expect_output "kubectl version shows a k3s version" \
	'v1\.27\.3\+k3s1' k version
ctl set-version v1.32.4
expect_output "kubectl api-resources falls back to legacy discovery" \
	'deployments +deploy +apps/v1 +true +Deployment' k api-resources
expect_output "discovery lists CRD short names" \
	'customresourcedefinitions +crd,crds +apiextensions\.k8s\.io/v1 +false' \
	k api-resources
expect_output "kubectl get nodes shows the configured node" \
	'standin-node-1 +Ready +control-plane' k get nodes

echo "== server-side apply of fixtures"
expect_output "apply --server-side creates the CRD" \
	'widgets\.example\.mlboot\.dev serverside-applied' \
	k apply --server-side -f "$fixtures/standin-crd.yaml"
expect_output "kubectl wait sees the CRD Established" 'condition met' \
	k wait --for=condition=Established \
	crd/widgets.example.mlboot.dev --timeout=30s
expect_output "the CRD reports its accepted names" '^Widget$' \
	k get crd widgets.example.mlboot.dev \
	-o 'jsonpath={.status.acceptedNames.kind}'

# A webhook listed before the Deployment that serves it rejects the
# ConfigMap at the end of the file while that Deployment is not available.
ctl delay Deployment 3
expect_failure "applying in file order fails on the unready webhook" \
	'failed calling webhook "configmaps\.validate\.example\.mlboot\.dev".*connect: connection refused' \
	k apply --server-side -f "$fixtures/standin-app.yaml"
expect_output "kubectl wait sees the webhook Deployment Available" \
	'condition met' k wait --for=condition=Available \
	deployment/demo-webhook -n standin-demo --timeout=30s
ctl delay Deployment 0.2
expect_output "applying again after the webhook is ready succeeds" \
	'configmap/demo-settings serverside-applied' \
	k apply --server-side -f "$fixtures/standin-app.yaml"
expect_output "kubectl wait sees the app Deployment Available" \
	'condition met' k wait --for=condition=Available \
	deployment/demo-app -n standin-demo --timeout=30s
expect_output "the Deployment reports its available replicas" '^2$' \
	k get deployment demo-app -n standin-demo \
	-o 'jsonpath={.status.availableReplicas}'
expect_output "the Deployment's pods are Running" \
	'demo-app-[a-z0-9]+-[a-z0-9]+ +1/1 +Running' \
	k get pods -n standin-demo -l app=demo-app
expect_output "the webhook Service has endpoints" '[0-9.]+:9443' \
	k get endpoints demo-webhook -n standin-demo
expect_output "applying a custom resource succeeds" \
	'widget\.example\.mlboot\.dev/blue-widget serverside-applied' \
	k apply --server-side -f "$fixtures/standin-widget.yaml"
expect_output "kubectl get prints the CRD's printer columns" \
	'blue-widget +3 ' k get widgets -n standin-demo
expect_output "kubectl get -o yaml returns the custom resource" \
	'size: 3' k get wdg blue-widget -n standin-demo -o yaml
expect_output "kubectl get -o json shows the field manager" \
	'"manager": "kubectl"' \
	k get wdg blue-widget -n standin-demo -o json --show-managed-fields
expect_output "the older CRD version serves the same object" \
	'"apiVersion": "example\.mlboot\.dev/v1alpha1"' \
	k get widgets.v1alpha1.example.mlboot.dev blue-widget \
	-n standin-demo -o json

intruder_manifest='apiVersion: v1
kind: ConfigMap
metadata:
  name: demo-settings
  namespace: standin-demo
data:
  greeting: bonjour'
expect_failure "a second field manager gets a conflict" \
	'conflict with "kubectl" using v1: \.data\.greeting' \
	k apply --server-side --field-manager=intruder -f - \
	<<<"$intruder_manifest"
expect_output "force-conflicts takes the field over" 'serverside-applied' \
	k apply --server-side --field-manager=intruder --force-conflicts \
	-f - <<<"$intruder_manifest"
expect_output "the forced value is stored" '^bonjour$' \
	k get configmap demo-settings -n standin-demo \
	-o 'jsonpath={.data.greeting}'

dry_run_manifest='apiVersion: v1
kind: ConfigMap
metadata:
  name: dry-run-only
  namespace: standin-demo'
expect_output "a server dry run succeeds" 'serverside-applied \(server dry run\)' \
	k apply --server-side --dry-run=server -f - <<<"$dry_run_manifest"
expect_failure "a server dry run stores nothing" 'NotFound|not found' \
	k get configmap dry-run-only -n standin-demo
expect_failure "creating in a missing namespace is NotFound" \
	'namespaces "no-such-namespace" not found' \
	k create configmap orphan -n no-such-namespace
expect_output "kubectl create namespace (protobuf body) works" \
	'namespace/created-by-kubectl created' \
	k create namespace created-by-kubectl

all_pods=$(k get pods -A --no-headers | wc -l)
expect_output "paginated lists return every pod" "^ *$all_pods\$" \
	bash -c '"$@" | wc -l' _ "$kubectl" --kubeconfig "$state/admin.kubeconfig" \
	--cache-dir "$work/kubectl-cache" get pods -A --no-headers --chunk-size=1

# kubectl get --watch must print a change made while it runs.
watch_log="$work/watch.log"
k get widgets -n standin-demo --watch --output-watch-events \
	>"$watch_log" 2>&1 &
watch_pid=$!
sleep 1
k patch widget blue-widget -n standin-demo --type merge \
	-p '{"spec":{"size":5}}' >/dev/null
sleep 1
kill "$watch_pid" 2>/dev/null || true
wait "$watch_pid" 2>/dev/null || true
expect_output "kubectl get --watch streams MODIFIED events" \
	'MODIFIED +blue-widget +5 ' cat "$watch_log"

echo "== delete"
expect_output "kubectl delete removes the custom resource" \
	'widget\.example\.mlboot\.dev "blue-widget" deleted' \
	k delete -f "$fixtures/standin-widget.yaml" --timeout=30s
expect_output "kubectl delete namespace waits until it is gone" \
	'namespace "standin-demo" deleted' \
	k delete namespace standin-demo --timeout=30s
expect_failure "the deleted namespace is NotFound" \
	'namespaces "standin-demo" not found' k get namespace standin-demo
expect_output "the namespace's objects are gone" '^No resources found' \
	k get deployments,configmaps,pods -n standin-demo
expect_output "kubectl delete crd removes the CRD" \
	'customresourcedefinition\.apiextensions\.k8s\.io "widgets\.example\.mlboot\.dev" deleted' \
	k delete -f "$fixtures/standin-crd.yaml" --timeout=30s
expect_failure "the CRD's resource is no longer served" \
	'the server could not find the requested resource' k get widgets -A

echo "== authentication and authorization"
expect_failure "kubectl with an expired token is asked for credentials" \
	'the server has asked for the client to provide credentials' \
	k_as expired get namespaces
expect_output "an expired token gets a 401 Unauthorized Status" \
	'^401 Status Unauthorized Unauthorized$' raw_request expired GET /api
expect_output "the viewer token gets a 403 Forbidden Status for writes" \
	'^403 Status Forbidden configmaps "settings" is forbidden: User "viewer" cannot delete' \
	raw_request viewer DELETE /api/v1/namespaces/default/configmaps/settings
expect_output "the viewer may list namespaces" 'kube-system' \
	k_as viewer get namespaces
expect_failure "the viewer may not create" \
	'configmaps is forbidden: User "viewer" cannot create resource "configmaps"' \
	k_as viewer create configmap forbidden -n default
expect_failure "the viewer may not read secrets" \
	'secrets is forbidden: User "viewer" cannot list resource "secrets"' \
	k_as viewer get secrets -A
expect_failure "SelfSubjectAccessReview denies the viewer writes" '^no$' \
	k_as viewer auth can-i create deployments
expect_output "SelfSubjectAccessReview allows the viewer reads" '^yes$' \
	k_as viewer auth can-i list deployments
expect_output "SelfSubjectAccessReview allows the admin token everything" \
	'^yes$' k_as token auth can-i '*' '*'
ctl role viewer cluster-admin
expect_output "a role set through ctl takes effect" '^yes$' \
	k_as viewer auth can-i create deployments
ctl role viewer view

echo "== fault injection"
ctl faults add --status 500
expect_failure "kubectl fails when every request gets 500" \
	'Internal error occurred: fault injected' k get namespaces
ctl faults clear
"$python" "$standin" ctl --state-dir "$state" stats --reset >/dev/null
ctl faults add --status 429 --retry-after 1 --count 2
expect_output "kubectl retries 429 after Retry-After and succeeds" \
	'kube-system' k get namespaces
expect_output "the statistics count both 429 responses" '^2$' stats_count 429
ctl faults clear
ctl faults add --type drop --count 1 --path-prefix /api/v1/namespaces
expect_output "kubectl retries a GET whose connection was dropped" \
	'kube-system' k get namespaces
expect_output "the statistics count the dropped connection" '^1$' \
	stats_count 0
ctl faults clear
ctl faults add --type delay --delay-ms 400 --count 1 \
	--path-prefix /api/v1/namespaces
start=$EPOCHREALTIME
k get namespaces >/dev/null
expect_output "an injected delay slows the request down" '^1$' \
	awk -v took="$(elapsed_since "$start")" 'BEGIN { print (took >= 0.4) }'
ctl faults clear

echo "== upstream release manifests"
upstream=${MLBOOT_UPSTREAM_DIR:-}
if [ -z "$upstream" ]; then
	echo "SKIP: MLBOOT_UPSTREAM_DIR is unset: the real cert-manager, Argo CD," \
		"KServe and Kubeflow manifests were not applied"
elif [ ! -d "$upstream" ]; then
	failed=$((failed + 1))
	echo "FAIL: MLBOOT_UPSTREAM_DIR is not a folder: $upstream"
else
	cert_manager="$upstream/cert-manager-v1.19.4/cert-manager.yaml"
	argo_cd="$upstream/argo-cd-v3.5.1/install.yaml"
	kserve="$upstream/kserve-v0.16.0/kserve.yaml"
	kserve_runtimes="$upstream/kserve-v0.16.0/kserve-cluster-resources.yaml"
	kserve_iris="$upstream/kserve-samples/sklearn.yaml"
	kubeflow="$upstream/kubeflow-v1.10.2/example.all.yaml"

	expect_success "cert-manager: apply --server-side" \
		k apply --server-side -f "$cert_manager"
	expect_output "cert-manager: Deployments become Available" \
		'condition met' k wait --for=condition=Available deployment \
		--all -n cert-manager --timeout=60s

	expect_output "Argo CD: kubectl create namespace argocd" \
		'namespace/argocd created' k create namespace argocd
	expect_success "Argo CD: apply --server-side -n argocd" \
		k apply --server-side -n argocd -f "$argo_cd"
	expect_output "Argo CD: CRDs become Established" 'condition met' \
		k wait --for=condition=Established \
		crd/applications.argoproj.io crd/applicationsets.argoproj.io \
		crd/appprojects.argoproj.io --timeout=60s
	expect_output "Argo CD: Deployments become Available" 'condition met' \
		k wait --for=condition=Available deployment --all -n argocd \
		--timeout=60s
	expect_output "Argo CD: the StatefulSet rolls out" 'roll out complete' \
		k rollout status statefulset/argocd-application-controller \
		-n argocd --timeout=60s
	expect_failure "Argo CD: client-side apply hits the annotation limit" \
		'metadata\.annotations: Too long: must have at most 262144 bytes' \
		k apply -n argocd -f "$argo_cd"

	# kserve.yaml contains CRDs, objects of those CRDs, and webhooks with
	# failurePolicy Fail served by its own Deployments. A long Deployment
	# delay keeps those webhooks down until the test lowers it.
	ctl delay Deployment 120
	expect_failure "KServe: first apply cannot map kinds of new CRDs" \
		'no matches for kind "LLMInferenceServiceConfig".*|ensure CRDs are installed first' \
		k apply --server-side -f "$kserve"
	expect_output "KServe: CRDs become Established" 'condition met' \
		k wait --for=condition=Established \
		crd/llminferenceserviceconfigs.serving.kserve.io \
		crd/inferenceservices.serving.kserve.io --timeout=60s
	expect_failure "KServe: second apply fails on its unready webhook" \
		'failed calling webhook "llminferenceserviceconfig\.kserve-webhook-server\.validator".*connect: connection refused' \
		k apply --server-side -f "$kserve"
	ctl delay Deployment 0.2
	expect_output "KServe: Deployments become Available" 'condition met' \
		k wait --for=condition=Available deployment --all -n kserve \
		--timeout=60s
	expect_success "KServe: third apply succeeds" \
		k apply --server-side -f "$kserve"
	expect_output "KServe: all 8 LLMInferenceServiceConfigs exist" '^ *8$' \
		bash -c '"$@" | wc -l' _ "$kubectl" \
		--kubeconfig "$state/admin.kubeconfig" \
		--cache-dir "$work/kubectl-cache" get llminferenceserviceconfigs \
		-n kserve --no-headers
	expect_output "KServe: its Certificates become Ready" 'condition met' \
		k wait --for=condition=Ready certificates.cert-manager.io --all \
		-n kserve --timeout=60s
	expect_success "KServe: apply the cluster serving runtimes" \
		k apply --server-side -f "$kserve_runtimes"
	expect_success "KServe: apply the iris InferenceService" \
		k apply --server-side -n default -f "$kserve_iris"
	expect_output "KServe: the InferenceService becomes Ready" \
		'condition met' k wait --for=condition=Ready \
		inferenceservice/sklearn-iris -n default --timeout=60s
	expect_output "KServe: the InferenceService reports its URL" \
		'^http://sklearn-iris-default\.example\.com$' \
		k get inferenceservice sklearn-iris -n default \
		-o 'jsonpath={.status.url}'
	expect_output "KServe: the predictor runs the sklearn server image" \
		'kserve/sklearnserver:v0\.16\.0' k get pods -n default \
		-l serving.kserve.io/inferenceservice=sklearn-iris \
		-o 'jsonpath={.items[*].spec.containers[*].image}'

	# Kubeflow's rendered example in a fresh stand-in: 611 documents.
	state="$work/kubeflow"
	start_standin "$state"
	expect_failure "Kubeflow: first apply cannot map kinds of new CRDs" \
		'ensure CRDs are installed first' \
		k apply --server-side --force-conflicts -f "$kubeflow"
	expect_success "Kubeflow: second apply of 611 documents succeeds" \
		k apply --server-side --force-conflicts -f "$kubeflow"
	expect_output "Kubeflow: every Deployment becomes Available" \
		'condition met' k wait --for=condition=Available deployment \
		--all -A --timeout=120s
fi

echo "$passed passed, $failed failed"
if [ "$failed" -ne 0 ]; then
	for log in "$work"/*.log; do
		[ -f "$log" ] || continue
		echo "--- last lines of $(basename "$log")"
		tail -n 30 "$log"
	done
	exit 1
fi
exit 0
