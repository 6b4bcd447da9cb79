#!/usr/bin/env bash
# `mlboot install` of the project's own small platform (tests/fixtures/platform)
# on a testbed of 3 nodes (network namespaces with real sshd and containerd)
# and the stand-in API server.
#
# Proves that:
#   - kubectl apply --server-side of the whole platform in file order, without
#     gates, fails on the stand-in (custom resources before their CRDs, then
#     webhooks that do not serve yet), while mlboot installs it;
#   - --dry-run prints the plan and changes nothing;
#   - after the install every image is in every node's containerd, pinned;
#     every object of every manifest exists with mlboot's labels; the gates
#     held: the stand-in saw no failed request; binaries are on node1;
#   - a re-run transfers 0 bytes and changes 0 objects, also with --force;
#   - kill -9 at ten points (during the image transfer, between two waves,
#     during a wait, and seven more spread over the plan),
#     each followed by a re-run, completes with no step done twice;
#   - 10% injected API faults (503 and dropped connections) still complete;
#   - a connection cut mid-transfer (node2's sshd restarted and its sessions
#     ended) resumes and completes;
#   - a node that stays down fails the install with a message naming it,
#     after the other nodes got every image; status shows the failure.
#
# test_install_upstream.sh installs the real upstream platform.
#
# Exit status: 0 pass, 77 skip (not root, no namespaces), 1 fail. The
# testbed uses MLB_INSTALL_TEST_SUBNET (default 198.18.0.0/24). While
# another testbed uses that subnet, the test waits up to
# MLB_INSTALL_TEST_WAIT seconds (default 900) and then skips.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
# shellcheck source=lib.sh
. "$here/lib.sh"
# shellcheck source=lib/standin.sh
. "$here/lib/standin.sh"
# shellcheck source=lib/results.sh
. "$here/lib/results.sh"
# shellcheck source=lib/install-testbed.sh
. "$here/lib/install-testbed.sh"
testbed=$here/testbed
fixture=$repo/tests/fixtures/platform

install_testbed_settings mlbins "${MLB_INSTALL_TEST_SUBNET:-198.18.0.0/24}"
install_testbed_require
install_testbed_wait_until_free ||
	mlb_skip "subnet $MLB_TESTBED_SUBNET or testbed $MLB_TESTBED_PREFIX is in use; set MLB_INSTALL_TEST_SUBNET to a free 198.18.N.0/24, or run testbed/down after a crashed run"
"$testbed/deps"

work=$(mktemp -d /var/tmp/mlb-test-install.XXXXXX)
standin_isolate_environment "$work/home"
run_pid=

cleanup() {
	local status=$?
	[ -z "$run_pid" ] || kill -KILL "$run_pid" 2>/dev/null || true
	install_testbed_cleanup "$status"
}
trap cleanup EXIT

install_testbed_start
nodes=(node1 node2 node3)

# --- The bundle of the test platform ------------------------------------------
install_testbed_build_bundle
mapfile -t images < <(grep -o 'name: [^,]*, path: images/' "$fixture/catalog.yaml" | awk '{print $2}' | tr -d ,)
[ "${#images[@]}" -ge 10 ] || mlb_die "the catalog lists only ${#images[@]} images"

# write_config FILE KUBECONFIG STATE_DIR [COMPONENT_TIMEOUT]
write_config() {
	install_testbed_write_config "$1" install-test "$work/platform.bundle" "$2" "$3" "${4:-3m}"
}

install() {
	"$MLBOOT" install -f "$work/mlboot.yaml" --pubkey "$work/signing.pub" "$@"
}

# A fresh stand-in (objects live in memory only) with slower Deployments, as pods take time on a real cluster.
fresh_standin() {
	local name=$1 delay=${2:-1}
	standin_stop
	standin_start "$work/$name"
	standin_ctl delay Deployment "$delay" >/dev/null
	write_config "$work/mlboot.yaml" "$STANDIN_DIR/admin.kubeconfig" "$work/state-$name"
}

# Empties a node's containerd: its images and content store.
clear_node_images() {
	local node=$1
	"$testbed/stop-containerd" "$node" >/dev/null
	"$testbed/node-exec" "$node" sh -c 'rm -rf /var/lib/containerd/*'
	"$testbed/start-containerd" "$node" >/dev/null
}

node_images() {
	"$testbed/node-exec" "$1" ctr -n k8s.io images ls
}

# Every bundle image listed by the node's containerd, pinned.
node_has_every_image() {
	install_testbed_node_has_images "$1" "${images[@]}"
}

# Number of "done" records of STEP in the journal of STATE.
done_count() {
	grep -c "\"step\":\"$2\",.*\"event\":\"done\"" "$1/journal" || true
}

# No step was done twice with the same inputs.
no_step_done_twice() {
	local journal=$1/journal duplicates
	duplicates=$(grep '"event":"done"' "$journal" | sed 's/.*"step":"\([^"]*\)","digest":"\([^"]*\)".*/\1 \2/' |
		sort | uniq -d)
	if [ -n "$duplicates" ]; then
		mlb_log "steps done twice: $duplicates"
		return 1
	fi
}

# Waits until the journal of STATE records EVENT of STEP, at most 120 s.
wait_for_record() {
	local state=$1 step=$2 event=$3
	mlb_wait_until 120 grep -q "\"step\":\"$step\",.*\"event\":\"$event\"" "$state/journal" 2>/dev/null
}

# Every object of every manifest, read back from the stand-in, with mlboot's labels.
every_object_applied() {
	local component namespace file count=0 found
	while read -r component namespace file; do
		found=$(standin_kubectl get -f "$fixture/manifests/$file" -n "$namespace" -o json 2>"$work/get.err" |
			/usr/bin/python3 -c '
import json, sys
component = sys.argv[1]
document = json.load(sys.stdin)
items = document["items"] if "items" in document else [document]
want = {"app.kubernetes.io/managed-by": "mlboot", "mlboot.dev/component": component,
        "mlboot.dev/platform-version": "0.3.0-test"}
for item in items:
    labels = item["metadata"].get("labels") or {}
    if any(labels.get(key) != value for key, value in want.items()):
        sys.exit(f"{item['kind']} {item['metadata']['name']} lacks mlboot labels: {labels}")
print(len(items))' "$component") || { mlb_log "$file: $(cat "$work/get.err")"; return 1; }
		count=$((count + found))
	done <<'EOF'
cert-manager cert-manager cert-manager.yaml
istio istio-system istio.yaml
kserve kserve kserve.yaml
kserve kserve kserve-runtimes.yaml
kubeflow kubeflow kubeflow.yaml
argocd argocd argocd.yaml
sample-model ml sample-model.yaml
EOF
	[ "$count" -eq 57 ] || { mlb_log "found $count objects, expected 57"; return 1; }
}

resource_versions() {
	standin_kubectl get deployments,statefulsets,daemonsets,configmaps,services,clusterroles,namespaces,jobs \
		-A -l app.kubernetes.io/managed-by=mlboot \
		-o jsonpath='{range .items[*]}{.metadata.namespace}/{.metadata.name} {.metadata.resourceVersion}{"\n"}{end}' |
		sort
}

# --- kubectl in file order, without gates ---------------------------------------
standin_start "$work/kubectl-standin"
standin_ctl delay Deployment 2 >/dev/null
for file in cert-manager istio kserve kserve-runtimes kubeflow argocd sample-model; do
	cat "$fixture/manifests/$file.yaml"
	echo ---
done >"$work/all.yaml"
first_status=0
standin_kubectl apply --server-side -f "$work/all.yaml" >"$work/kubectl-1.out" 2>"$work/kubectl-1.err" ||
	first_status=$?
second_status=0
standin_kubectl apply --server-side -f "$work/all.yaml" >"$work/kubectl-2.out" 2>"$work/kubectl-2.err" ||
	second_status=$?
check "kubectl apply of the whole platform fails: custom resources before their CRDs" \
	test "$first_status" -ne 0 -a -n "$(grep -l 'ensure CRDs are installed first\|no matches for kind' "$work/kubectl-1.err")"
check "kubectl apply again at once fails on a webhook that does not serve yet" \
	grep -q 'failed calling webhook' "$work/kubectl-2.err"
[ "$second_status" -ne 0 ] || fail "the second kubectl apply exited 0"
standin_stop

# --- Dry run on an empty cluster -------------------------------------------------
fresh_standin main 1
standin_ctl stats --reset >/dev/null
if install --dry-run >"$work/dry.out" 2>"$work/dry.err"; then
	pass "dry run succeeds"
else
	fail "dry run succeeds"
fi
check "dry run lists images missing on each node" grep -q "node2: ${#images[@]} images to import" "$work/dry.out"
check "dry run lists objects to create" grep -q "create    Deployment 'kserve/kserve-controller-manager'" "$work/dry.out"
check "dry run created nothing" test "$(standin_kubectl get namespaces -o name | grep -c 'cert-manager\|kserve')" -eq 0
check "dry run imported nothing" test -z "$(node_images node1 | grep -v '^REF' || true)"
check "dry run wrote no journal" test ! -s "$work/state-main/journal"

# --- The install -----------------------------------------------------------------
standin_ctl stats --reset >/dev/null
start=$SECONDS
if install >"$work/install.out" 2>"$work/install.err"; then
	pass "install completes ($((SECONDS - start)) s)"
else
	fail "install completes"
	cat "$work/install.err" >&2
fi
for node in "${nodes[@]}"; do
	check "$node has every image, pinned" node_has_every_image "$node"
done
check "every object is applied with mlboot's labels" every_object_applied
check "the gates held: the stand-in saw no failed request" test -z "$(standin_stats_failures)"
check "a namespaced object without namespace went to its component's namespace" \
	standin_kubectl -n cert-manager get serviceaccount cert-manager
check "imagePullPolicy Always became IfNotPresent" test \
	"$(standin_kubectl -n cert-manager get deployment cert-manager -o jsonpath='{.spec.template.spec.containers[0].imagePullPolicy}')" = IfNotPresent
check "the sample model is Ready" test \
	"$(standin_kubectl -n ml get inferenceservice iris -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}')" = True
check "binaries are on the control-plane node" \
	"$testbed/node-exec" node1 sh -c '/usr/local/bin/kustomize | grep -q mlboot && /usr/local/bin/istioctl | grep -q mlboot'
check "workers get no binaries" "$testbed/node-exec" node2 test ! -e /usr/local/bin/kustomize
check "status shows every step done" "$MLBOOT" status --state-dir "$work/state-main" >"$work/status.out"
check "status lists the wait of each component" grep -q '^wait/kserve *done' "$work/status.out"
check "ordering: the ClusterIssuer came after the webhook" \
	test "$(grep -n 'apply/cert-manager/cluster' "$work/state-main/journal" | tail -1 | cut -d: -f1)" -gt \
	"$(grep -n 'apply/cert-manager/rest.*done' "$work/state-main/journal" | cut -d: -f1)"

# --- Re-runs ------------------------------------------------------------------------
versions_before=$(resource_versions)
standin_ctl stats --reset >/dev/null
install >"$work/rerun.out" 2>"$work/rerun.err" || fail "re-run exits 0"
check "re-run sends 0 bytes" grep -q ' 0 bytes sent' "$work/rerun.out"
check "re-run applies 0 objects" grep -q 'objects: 0 applied' "$work/rerun.out"
check "re-run sends no apply to the API server" test "$(standin_patch_count)" -eq 0
install --force >"$work/force.out" 2>"$work/force.err" || fail "re-run with --force exits 0"
check "--force re-run sends 0 bytes" grep -q ' 0 bytes sent' "$work/force.out"
check "--force re-run changes no object (same resourceVersions)" test "$versions_before" = "$(resource_versions)"

# --- kill -9 at ten points, then a re-run ------------------------------------------
# kill_at NAME STEP EVENT: a fresh cluster and empty nodes, mlboot killed when the journal records EVENT of STEP.
kill_at() {
	local name=$1 step=$2 event=$3 state
	fresh_standin "$name" 2
	state=$work/state-$name
	for node in "${nodes[@]}"; do clear_node_images "$node"; done
	# mlboot itself in the background, not a shell function: $! must be its pid.
	"$MLBOOT" install -f "$work/mlboot.yaml" --pubkey "$work/signing.pub" \
		>"$work/$name-killed.out" 2>"$work/$name-killed.err" &
	run_pid=$!
	if ! wait_for_record "$state" "$step" "$event"; then
		fail "$name: the journal never recorded $event of $step"
		kill -KILL "$run_pid" 2>/dev/null || true
		wait "$run_pid" 2>/dev/null || true
		run_pid=
		return
	fi
	if ! kill -KILL "$run_pid" 2>/dev/null; then
		fail "$name: mlboot was still running when the journal recorded $event of $step"
		wait "$run_pid" 2>/dev/null || true
		run_pid=
		return
	fi
	wait "$run_pid" 2>/dev/null || true
	run_pid=
	if install >"$work/$name-resumed.out" 2>"$work/$name-resumed.err"; then
		pass "$name: the re-run after kill -9 completes"
	else
		fail "$name: the re-run after kill -9 completes"
		tail -n 20 "$work/$name-resumed.err" >&2
	fi
	check "$name: no step done twice" no_step_done_twice "$state"
	check "$name: every object applied" every_object_applied
	for node in "${nodes[@]}"; do
		check "$name: $node has every image" node_has_every_image "$node"
	done
}
kill_at kill-images images/node2 start
check "kill-images: the re-run skipped nothing it had not done" test "$(done_count "$work/state-kill-images" images/node2)" -eq 1
kill_at kill-waves apply/kserve/namespaces done
check "kill-waves: waves done before the kill were skipped" grep -q 'apply/cert-manager/crds: done before' "$work/kill-waves-resumed.err"
kill_at kill-wait wait/kubeflow start
check "kill-wait: the interrupted wait ran again" test "$(grep -c '"step":"wait/kubeflow".*"event":"start"' "$work/state-kill-wait/journal")" -eq 2
# Seven more points, spread over the plan: between two nodes' images, the
# binaries, the first CRDs, a readiness gate, a cluster-scoped wave, the
# last component and the sample model's readiness gate.
kill_at kill-images-node1 images/node1 done
kill_at kill-binaries binaries/node1 start
kill_at kill-first-crds apply/cert-manager/crds start
kill_at kill-gate wait/cert-manager start
kill_at kill-cluster-wave apply/istio/cluster start
kill_at kill-last-component apply/argocd/rest start
kill_at kill-model-wait wait/sample-model start

# --- 10% injected API faults -------------------------------------------------------------
fresh_standin faults 0.2
standin_ctl faults seed 7 >/dev/null
standin_ctl faults add --status 503 --probability 0.07 >/dev/null
standin_ctl faults add --type drop --probability 0.03 >/dev/null
if install >"$work/faults.out" 2>"$work/faults.err"; then
	pass "install with 10% injected API faults completes"
else
	fail "install with 10% injected API faults completes"
	tail -n 20 "$work/faults.err" >&2
fi
injected=$(standin_ctl stats | /usr/bin/python3 -c 'import json, sys; print(json.load(sys.stdin)["faultsInjected"])')
check "faults were injected ($injected)" test "$injected" -gt 5
# kubectl, which reads the result, does not retry a failed discovery: the faults end first.
standin_ctl faults clear >/dev/null
check "every object applied despite the faults" every_object_applied

# --- A webhook the cluster had before, not serving -------------------------------------
# It matches Argo CD's StatefulSet and custom resources, and its Service does not exist.
cat >"$work/foreign-webhook.yaml" <<'EOF'
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingWebhookConfiguration
metadata:
  name: foreign-webhook
webhooks:
- name: foreign.example.com
  failurePolicy: Fail
  sideEffects: None
  admissionReviewVersions: [v1]
  rules:
  - {apiGroups: [apps], apiVersions: ["*"], operations: [CREATE, UPDATE], resources: [statefulsets]}
  clientConfig:
    service: {name: foreign, namespace: default, path: /validate}
EOF
fresh_standin foreign 0.2
write_config "$work/mlboot.yaml" "$STANDIN_DIR/admin.kubeconfig" "$work/state-foreign" 15s
standin_kubectl apply -f "$work/foreign-webhook.yaml" >/dev/null
foreign_status=0
install --only argocd >"$work/foreign.out" 2>"$work/foreign.err" || foreign_status=$?
check "a webhook that never serves fails at the component timeout" test "$foreign_status" -ne 0
check "the failure names the object and the webhook" \
	grep -q "StatefulSet 'argocd/argocd-application-controller'.*failed calling webhook \"foreign.example.com\"" "$work/foreign.out"
"$MLBOOT" install -f "$work/mlboot.yaml" --pubkey "$work/signing.pub" --only argocd \
	>"$work/foreign-2.out" 2>"$work/foreign-2.err" &
run_pid=$!
mlb_wait_until 60 grep -q 'rejected by a webhook that is not serving yet' "$work/foreign-2.err" || true
standin_kubectl delete -f "$work/foreign-webhook.yaml" >/dev/null
foreign_status=0
wait "$run_pid" || foreign_status=$?
run_pid=
check "rejections are retried until the webhook is gone, then the install completes" test "$foreign_status" -eq 0
check "the retries were logged" grep -q 'argocd-application-controller. was rejected by a webhook that is not serving yet; retrying' "$work/foreign-2.err"

# --- A connection cut mid-transfer -------------------------------------------------------
# Ends the node's SSH sessions and restarts its sshd: the listener and the
# session processes are all children of the testbed's sshd, which this test started.
cut_ssh() {
	local node=$1 pid netns_var="MLB_NODE${1#node}_NETNS"
	local netns=${!netns_var}
	"$testbed/stop-sshd" "$node" >/dev/null
	for pid in $(ip netns pids "$netns"); do
		[ "$(cat "/proc/$pid/comm" 2>/dev/null)" = sshd ] && kill -KILL "$pid" 2>/dev/null || true
	done
	"$testbed/start-sshd" "$node" >/dev/null
}
fresh_standin cut 0.2
for node in "${nodes[@]}"; do clear_node_images "$node"; done
"$MLBOOT" install -f "$work/mlboot.yaml" --pubkey "$work/signing.pub" >"$work/cut.out" 2>"$work/cut.err" &
run_pid=$!
if wait_for_record "$work/state-cut" images/node2 start; then
	sleep 0.5
	cut_ssh node2
fi
cut_status=0
wait "$run_pid" || cut_status=$?
run_pid=
check "install with node2's connection cut mid-transfer completes" test "$cut_status" -eq 0
check "the cut was seen and the transfer resumed" grep -q 'node2.*trying again' "$work/cut.err"
check "node2 has every image after the cut" node_has_every_image node2

# --- A node that is down ----------------------------------------------------------------------
# Down before the install: preflight names it and nothing changes.
fresh_standin down-before 0.2
"$testbed/stop-sshd" node3 >/dev/null
down_status=0
install >"$work/down-before.out" 2>"$work/down-before.err" || down_status=$?
check "install with node3 down from the start fails in preflight" test "$down_status" -ne 0
check "preflight names node3" grep -q 'node node3' "$work/down-before.out"
check "nothing was applied" test "$(standin_patch_count)" -eq 0
check "no step ran" test ! -s "$work/state-down-before/journal"
"$testbed/start-sshd" node3 >/dev/null

# Down during the transfer, for good: the other nodes finish, then the install fails naming it.
fresh_standin down 0.2
for node in "${nodes[@]}"; do clear_node_images "$node"; done
"$MLBOOT" install -f "$work/mlboot.yaml" --pubkey "$work/signing.pub" >"$work/down.out" 2>"$work/down.err" &
run_pid=$!
if wait_for_record "$work/state-down" images/node3 start; then
	cut_ssh node3
	"$testbed/stop-sshd" node3 >/dev/null
fi
down_status=0
wait "$run_pid" || down_status=$?
run_pid=
check "install with node3 gone mid-transfer fails" test "$down_status" -ne 0
check "the failure names node3" grep -q 'failed: *images/node3: .*node3' "$work/down.out"
check "node1 got every image" node_has_every_image node1
check "node2 got every image" node_has_every_image node2
check "nothing was applied while a node lacks images" test "$(standin_patch_count)" -eq 0
"$MLBOOT" status --state-dir "$work/state-down" -o json >"$work/down-status.json" || true
check "status shows images/node3 failed with its message" /usr/bin/python3 -c '
import json, sys
steps = {s["step"]: s for s in json.load(open(sys.argv[1]))["steps"]}
step = steps["images/node3"]
assert step["state"] == "failed", step
assert "node3" in step.get("message", ""), step
assert steps["images/node1"]["state"] == "done"
assert steps["apply/kserve/rest"]["state"] == "pending"' "$work/down-status.json"
"$testbed/start-sshd" node3 >/dev/null
check "once node3 is back the re-run completes" install >"$work/down-resumed.out" 2>"$work/down-resumed.err"
check "and node1 was not sent anything again" test "$(done_count "$work/state-down" images/node1)" -eq 1

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
