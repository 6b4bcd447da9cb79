#!/usr/bin/env bash
# `mlboot check` of an installed platform: the project's small platform
# (tests/fixtures/platform) installed by `mlboot install` on a testbed of 3
# nodes (network namespaces with real sshd and containerd) and the stand-in
# API server.
#
# The stand-in runs no Istio, model server or Argo CD, so
# tests/integration/lib/gateway.py answers for them: in node1's namespace
# as the ingress gateway with the sklearn iris model behind it, at the
# address the stand-in reports for the gateway's LoadBalancer Service, and
# in node2's namespace as Argo CD's health endpoints, at the external IP of
# their Services: argocd-server on port 80 (plain HTTP, or a redirect to
# https) and port 443 (TLS), the repo server on port 8084.
#
# Proves that:
#   - on the installed platform every check passes (exit 0), the test
#     certificate's scratch namespace is removed, and the JSON and JUnit
#     reports validate against their schemas;
#   - each of these faults makes exactly the expected checks fail, with a
#     remedy that names the fix: a Deployment scaled to zero, a CRD removed,
#     a webhook with an empty CA bundle, the model endpoint down, the model
#     answering 503, a wrong prediction, an image removed from a node, an
#     image unpinned on a node, a pod running an image that is not in the
#     bundle; and after each repair the next run shows only its own fault;
#   - argocd-server with TLS, as Argo CD installs it, passes. The check
#     follows the redirect of port 80 to https, verifies the certificate
#     against tls.crt of Secret argocd-server-tls, else argocd-secret, and
#     names that Secret. A certificate other than the Secret's fails saying
#     so, a redirect to another host fails naming its Location, plain HTTP
#     (server.insecure) still passes, and the Secret's contents appear in no
#     report or log;
#   - without a bundle, the mlboot labels tell what to check;
#   - an unreachable API server is exit 5 with a clear message, and the
#     checks that need it are skipped while the nodes are still checked;
#     rejected credentials are exit 6.
#
# Exit status: 0 pass, 77 skip (not root, no namespaces), 1 fail. The
# testbed uses MLB_CHECK_TEST_SUBNET (default 198.18.0.0/24); while another
# testbed holds that subnet, the test waits up to MLB_CHECK_TEST_WAIT
# seconds (default 900) and then skips.
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
gateway=$here/lib/gateway.py
python=/usr/bin/python3

install_testbed_settings mlbchk "${MLB_CHECK_TEST_SUBNET:-198.18.0.0/24}"

skip_test() {
	echo "SKIP: $*"
	exit 77
}

[ "$(id -u)" -eq 0 ] || skip_test "needs root for network namespaces and mounts"
unshare --net --mount true 2>/dev/null || skip_test "this kernel or sandbox does not allow new network and mount namespaces"
[ -x "${MLBOOT:-}" ] || mlb_die "MLBOOT is not set to the mlboot binary; run through tests/run"
[ -x "$STANDIN_PYTHON" ] && [ -f "$STANDIN_SCRIPT" ] || skip_test "the stand-in API server or $STANDIN_PYTHON is missing"

subnet_taken_by_other() {
	ip -o -4 addr show to "$MLB_TESTBED_SUBNET" | awk '{print $2}' | grep -qv "^$MLB_TESTBED_PREFIX-br\$"
}
wait_limit=${MLB_CHECK_TEST_WAIT:-900}
waited=0
while subnet_taken_by_other; do
	if [ "$waited" -ge "$wait_limit" ]; then
		skip_test "subnet $MLB_TESTBED_SUBNET is used by another testbed; set MLB_CHECK_TEST_SUBNET to a free 198.18.N.0/24"
	fi
	[ "$waited" -gt 0 ] || mlb_log "waiting for subnet $MLB_TESTBED_SUBNET, which another testbed uses"
	sleep 5
	waited=$((waited + 5))
done
"$testbed/deps"
mlb_install_packages libxml2-utils python3-jsonschema

# Not under /tmp: every node has its own /tmp, and the nodes must see the image archives.
work=$(mktemp -d /var/tmp/mlb-test-check.XXXXXX)
standin_isolate_environment "$work/home"
gateway_pid=
health_pid=

stop_pid() {
	local pid=$1
	[ -n "$pid" ] || return 0
	kill -TERM "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
}

cleanup() {
	local status=$?
	stop_pid "$gateway_pid"
	stop_pid "$health_pid"
	install_testbed_cleanup "$status"
}
trap cleanup EXIT

install_testbed_start

# --- The installed platform ------------------------------------------------------
install_testbed_build_bundle

standin_start "$work/standin"

# Both configs name the three nodes and the stand-in, but no-bundle.yaml names no bundle.
install_testbed_write_config "$work/mlboot.yaml" check-test "$work/platform.bundle" \
	"$STANDIN_DIR/admin.kubeconfig" "$work/state"
install_testbed_write_config "$work/no-bundle.yaml" check-test none \
	"$STANDIN_DIR/admin.kubeconfig" "$work/state"

install() {
	"$MLBOOT" install -f "$work/mlboot.yaml" --pubkey "$work/signing.pub" "$@" >>"$work/install.out" 2>>"$work/install.err"
}
install || mlb_die "mlboot install of the test platform failed; see $work/install.err"

install_testbed_add_check_services

start_gateway() {
	rm -f "$work/gateway.ready"
	"$testbed/node-exec" node1 "$python" "$gateway" --gateway "$MLB_NODE1_ADDR:80" \
		--model "iris=iris-ml.example.com" --mode-file "$work/gateway.mode" \
		--ready-file "$work/gateway.ready" >>"$work/gateway.err" 2>&1 &
	gateway_pid=$!
	mlb_wait_until 30 test -s "$work/gateway.ready" || mlb_die "gateway.py did not start in node1; see $work/gateway.err"
}
echo ok >"$work/gateway.mode"
start_gateway
# argocd-server serves plain HTTP (server.insecure) until the TLS cases below.
echo plain >"$work/argocd.mode"
"$testbed/node-exec" node2 "$python" "$gateway" --health "$MLB_NODE2_ADDR:8084" \
	--argocd-server "$MLB_NODE2_ADDR:80" --argocd-tls "$MLB_NODE2_ADDR:443" \
	--certificate-out "$work/argocd-server.crt" --mode-file "$work/argocd.mode" \
	--ready-file "$work/health.ready" >"$work/health.err" 2>&1 &
health_pid=$!
mlb_wait_until 30 test -s "$work/health.ready" || mlb_die "gateway.py did not start in node2; see $work/health.err"

# --- Helpers -----------------------------------------------------------------------

# run_check NAME [ARGS...]: mlboot check with the bundle; JSON in NAME.json,
# stderr in NAME.err, exit status in NAME.status.
run_check() {
	local name=$1 status=0
	shift
	"$MLBOOT" check -f "$work/mlboot.yaml" --pubkey "$work/signing.pub" -o json "$@" \
		>"$work/$name.json" 2>"$work/$name.err" || status=$?
	echo "$status" >"$work/$name.status"
}

status_of() {
	cat "$work/$1.status"
}

# Prints "GROUP/ID" of every check of report NAME with STATUS, sorted, one a line.
ids_with_status() {
	"$python" - "$work/$1.json" "$2" <<'EOF'
import json, sys
report = json.load(open(sys.argv[1], encoding="utf-8"))
for check in sorted(report["checks"], key=lambda c: (c["group"], c["id"])):
    if check["status"] == sys.argv[2]:
        print(f'{check["group"]}/{check["id"]}')
EOF
}

# A field of the check GROUP/ID of report NAME.
field_of() {
	"$python" - "$work/$1.json" "$2" "$3" <<'EOF'
import json, sys
report = json.load(open(sys.argv[1], encoding="utf-8"))
for check in report["checks"]:
    if f'{check["group"]}/{check["id"]}' == sys.argv[2]:
        print(check[sys.argv[3]] or "")
        break
else:
    sys.exit(f"no check {sys.argv[2]} in {sys.argv[1]}")
EOF
}

# expect_failures NAME GROUP/ID...: exactly those checks failed, exit status 1.
expect_failures() {
	local name=$1 expected actual
	shift
	expected=$(printf '%s\n' "$@" | sort)
	actual=$(ids_with_status "$name" fail)
	if [ "$actual" != "$expected" ]; then
		mlb_log "$name: failing checks differ; expected:"
		sed 's/^/  /' <<<"$expected" >&2
		mlb_log "$name: found:"
		sed 's/^/  /' <<<"$actual" >&2
		return 1
	fi
	[ "$(status_of "$name")" -eq 1 ] || { mlb_log "$name: exit status $(status_of "$name"), expected 1"; return 1; }
}

# remedy_says NAME GROUP/ID TEXT: the remedy of the check contains TEXT.
remedy_says() {
	local remedy
	remedy=$(field_of "$1" "$2" remedy)
	grep -qF -- "$3" <<<"$remedy" || { mlb_log "$1: remedy of $2 lacks '$3': $remedy"; return 1; }
}

evidence_says() {
	local evidence
	evidence=$(field_of "$1" "$2" evidence)
	grep -qF -- "$3" <<<"$evidence" || { mlb_log "$1: evidence of $2 lacks '$3': $evidence"; return 1; }
}

validate_json() {
	"$python" - "$repo/docs/report-schema.json" "$1" <<'EOF'
import json, sys
import jsonschema
schema = json.load(open(sys.argv[1], encoding="utf-8"))
report = json.load(open(sys.argv[2], encoding="utf-8"))
jsonschema.Draft202012Validator.check_schema(schema)
jsonschema.Draft202012Validator(schema).validate(report)
counts = {"pass": 0, "warn": 0, "fail": 0, "skip": 0}
for check in report["checks"]:
    counts[check["status"]] += 1
summary = report["summary"]
assert summary == {"total": len(report["checks"]), "passed": counts["pass"], "warnings": counts["warn"],
                   "failed": counts["fail"], "skipped": counts["skip"]}, summary
keys = [(c["group"], c["id"]) for c in report["checks"]]
assert len(keys) == len(set(keys)), "a group and id appear twice"
EOF
}

# --- Every check passes on the installed platform ---------------------------------
run_check baseline --report "$work/baseline.xml"
check "installed platform: exit 0" test "$(status_of baseline)" -eq 0
check "installed platform: no check fails, warns or skips" \
	test -z "$(ids_with_status baseline fail; ids_with_status baseline warn; ids_with_status baseline skip)"
for id in cluster/cluster.api cluster/cluster.version cluster/cluster.storageclass cluster/cluster.nodes \
	cert-manager/cert-manager.crds cert-manager/cert-manager.webhooks cert-manager/cert-manager.certificates \
	cert-manager/cert-manager.issuance istio/istio.gateway-endpoints istio/istio.gateway-http \
	kserve/kserve.crds kserve/kserve.inferenceservice kserve/kserve.prediction kubeflow/kubeflow.statefulsets \
	istio/istio.daemonsets argocd/argocd.server-health argocd/argocd.repo-server-health \
	"air gap/airgap.bundle" "air gap/airgap.pod-images" "node node1/node.containerd" "node node2/node.images" \
	"node node3/node.pinned" "node node1/node.disk"; do
	check "installed platform: $id passes" grep -qxF "$id" <(ids_with_status baseline pass)
done
check "the version check uses the bundle's range" evidence_says baseline cluster/cluster.version "supported 1.24 to 1.33"
check "the prediction came through the gateway's load-balancer address" \
	evidence_says baseline kserve/kserve.prediction "POST http://$MLB_NODE1_ADDR:80/v1/models/iris:predict (Host iris-ml.example.com) returned HTTP 200"
check "the test certificate's scratch namespace is gone" \
	test -z "$(standin_kubectl get namespaces -l mlboot.dev/scratch -o name)"
check "the JSON report validates against docs/report-schema.json" validate_json "$work/baseline.json"
check "the JUnit report validates against junit.xsd" \
	xmllint --noout --schema "$repo/tests/fixtures/check/junit.xsd" "$work/baseline.xml"

# --- A Deployment scaled to zero ---------------------------------------------------
standin_kubectl -n kubeflow scale deployment centraldashboard --replicas=0 >/dev/null
run_check scaled
check "scaled to zero: only kubeflow.deployments fails" expect_failures scaled "kubeflow/kubeflow.deployments"
check "scaled to zero: the remedy scales it back" \
	remedy_says scaled kubeflow/kubeflow.deployments "kubectl -n kubeflow scale deployment centraldashboard --replicas=1"
standin_kubectl -n kubeflow scale deployment centraldashboard --replicas=1 >/dev/null
dashboard_available() {
	test "$(standin_kubectl -n kubeflow get deployment centraldashboard -o jsonpath='{.status.availableReplicas}')" = 1
}
mlb_wait_until 60 dashboard_available ||
	mlb_die "centraldashboard did not come back"

# --- A CRD removed --------------------------------------------------------------------
standin_kubectl delete crd applications.argoproj.io >/dev/null
run_check crd
check "CRD removed: only argocd.crds fails" expect_failures crd "argocd/argocd.crds"
check "CRD removed: the evidence names it" evidence_says crd argocd/argocd.crds "applications.argoproj.io: not found"
check "CRD removed: the remedy installs the component again" remedy_says crd argocd/argocd.crds "mlboot install --force --only argocd"
install --force --only argocd || mlb_die "the remedy 'mlboot install --force --only argocd' failed; see $work/install.err"

# --- A webhook with an empty CA bundle -----------------------------------------------
ca_bundle=$(standin_kubectl get validatingwebhookconfiguration istio-validator-istio-system \
	-o jsonpath='{.webhooks[0].clientConfig.caBundle}')
standin_kubectl patch validatingwebhookconfiguration istio-validator-istio-system --type json \
	-p '[{"op":"replace","path":"/webhooks/0/clientConfig/caBundle","value":""}]' >/dev/null
run_check webhook
check "empty CA bundle: only istio.webhooks fails" expect_failures webhook "istio/istio.webhooks"
check "empty CA bundle: the evidence names the webhook" \
	evidence_says webhook istio/istio.webhooks "istio-validator-istio-system/validation.istio.io: caBundle is empty"
check "empty CA bundle: the remedy explains the injection" remedy_says webhook istio/istio.webhooks "cainjector"
standin_kubectl patch validatingwebhookconfiguration istio-validator-istio-system --type json \
	-p "[{\"op\":\"replace\",\"path\":\"/webhooks/0/clientConfig/caBundle\",\"value\":\"$ca_bundle\"}]" >/dev/null

# --- The model endpoint down, answering 503, or answering wrong ------------------------
stop_pid "$gateway_pid"
gateway_pid=
run_check endpoint-down
check "endpoint down: the gateway and prediction checks fail" \
	expect_failures endpoint-down istio/istio.gateway-http kserve/kserve.prediction
check "endpoint down: the evidence says nothing answered" \
	evidence_says endpoint-down kserve/kserve.prediction "no response"
start_gateway

echo 503 >"$work/gateway.mode"
run_check endpoint-503
check "model answers 503: only kserve.prediction fails" expect_failures endpoint-503 "kserve/kserve.prediction"
check "model answers 503: the evidence has the status" evidence_says endpoint-503 kserve/kserve.prediction "returned HTTP 503"
check "model answers 503: the remedy points at the predictor pods" \
	remedy_says endpoint-503 kserve/kserve.prediction "serving.kserve.io/inferenceservice=iris"

echo wrong >"$work/gateway.mode"
run_check wrong
check "wrong prediction: only kserve.prediction fails" expect_failures wrong "kserve/kserve.prediction"
check "wrong prediction: the evidence shows both answers" \
	evidence_says wrong kserve/kserve.prediction "'{\"predictions\": [2, 2]}', expected {\"predictions\":[1,1]}"
echo ok >"$work/gateway.mode"

# --- argocd-server with TLS ----------------------------------------------------------------
# A second certificate for the same names, which argocd-server does not serve.
openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj "/O=Argo CD" \
	-addext "subjectAltName=DNS:argocd-server,DNS:argocd-server.argocd.svc" \
	-keyout "$work/argocd-other.key" -out "$work/argocd-other.crt" 2>/dev/null

# argocd_secret NAME CERTIFICATE: replace Secret argocd/NAME with tls.crt
# CERTIFICATE and, as Argo CD stores it, a tls.key (here the other certificate's).
argocd_secret() {
	standin_kubectl -n argocd delete secret "$1" --ignore-not-found >/dev/null
	standin_kubectl -n argocd create secret generic "$1" --from-file=tls.crt="$2" \
		--from-file=tls.key="$work/argocd-other.key" >/dev/null
}

# report_lacks NAME FILE: neither the report nor the log of run NAME contains a
# line of FILE's PEM body, nor the start of FILE in base64 as a Secret stores it.
report_lacks() {
	local line encoded
	encoded=$(base64 -w0 "$2" | cut -c1-60)
	while read -r line; do
		case $line in -----*) continue ;; esac
		if grep -qF -- "$line" "$work/$1.json" "$work/$1.err"; then
			mlb_log "$1: the report or log contains a line of $2"
			return 1
		fi
	done <"$2"
	! grep -qF -- "$encoded" "$work/$1.json" "$work/$1.err" || { mlb_log "$1: the report or log contains $2 in base64"; return 1; }
}

echo tls >"$work/argocd.mode"
argocd_secret argocd-secret "$work/argocd-server.crt"
run_check argocd-tls -vv
check "argocd-server with TLS: exit 0 and no check fails" \
	test "$(status_of argocd-tls)" -eq 0 -a -z "$(ids_with_status argocd-tls fail)"
check "argocd-server with TLS: argocd.server-health passes" \
	grep -qxF argocd/argocd.server-health <(ids_with_status argocd-tls pass)
check "argocd-server with TLS: the evidence shows the redirect" \
	evidence_says argocd-tls argocd/argocd.server-health "returned HTTP 307 with Location https://$MLB_NODE2_ADDR/healthz"
check "argocd-server with TLS: the evidence names the https URL and address" \
	evidence_says argocd-tls argocd/argocd.server-health \
	"GET https://argocd-server.argocd.svc:443/healthz at $MLB_NODE2_ADDR:443 (external IP address) returned HTTP 200 'ok'"
check "argocd-server with TLS: the evidence names the Secret" \
	evidence_says argocd-tls argocd/argocd.server-health "verified against tls.crt of Secret argocd/argocd-secret"
check "argocd-server with TLS: no tls.key in the report or the debug log" report_lacks argocd-tls "$work/argocd-other.key"
check "argocd-server with TLS: no tls.crt in the report or the debug log" report_lacks argocd-tls "$work/argocd-server.crt"

argocd_secret argocd-secret "$work/argocd-other.crt"
run_check argocd-mismatch
check "certificate not the Secret's: only argocd.server-health fails" \
	expect_failures argocd-mismatch argocd/argocd.server-health
check "certificate not the Secret's: the evidence says it did not match" \
	evidence_says argocd-mismatch argocd/argocd.server-health \
	"the server's certificate did not match the one in Secret argocd/argocd-secret"
check "certificate not the Secret's: the remedy compares the certificates" \
	remedy_says argocd-mismatch argocd/argocd.server-health \
	"openssl s_client -connect $MLB_NODE2_ADDR:443 -servername argocd-server.argocd.svc"

# argocd-server-tls, when it exists, is the certificate argocd-server serves.
argocd_secret argocd-server-tls "$work/argocd-server.crt"
run_check argocd-server-tls
check "argocd-server-tls first: argocd.server-health passes" \
	grep -qxF argocd/argocd.server-health <(ids_with_status argocd-server-tls pass)
check "argocd-server-tls first: the evidence names it" \
	evidence_says argocd-server-tls argocd/argocd.server-health "verified against tls.crt of Secret argocd/argocd-server-tls"
standin_kubectl -n argocd delete secret argocd-server-tls >/dev/null
argocd_secret argocd-secret "$work/argocd-server.crt"

echo elsewhere >"$work/argocd.mode"
run_check argocd-elsewhere
check "redirect to another host: only argocd.server-health fails" \
	expect_failures argocd-elsewhere argocd/argocd.server-health
check "redirect to another host: the evidence names the Location" \
	evidence_says argocd-elsewhere argocd/argocd.server-health \
	"returned HTTP 307 with Location https://argocd.elsewhere.example/healthz, which is not https on the same address"

echo plain >"$work/argocd.mode"
run_check argocd-plain
check "argocd-server with server.insecure: argocd.server-health passes" \
	grep -qxF argocd/argocd.server-health <(ids_with_status argocd-plain pass)
check "argocd-server with server.insecure: the evidence shows plain HTTP" \
	evidence_says argocd-plain argocd/argocd.server-health \
	"GET http://$MLB_NODE2_ADDR:80/healthz (external IP address of argocd/argocd-server) returned HTTP 200 'ok'"

# --- An image removed from a node, and one unpinned -----------------------------------
"$testbed/node-exec" node2 ctr -n k8s.io images rm docker.io/library/redis:7.0.15-alpine >/dev/null
"$testbed/node-exec" node3 ctr -n k8s.io images label docker.io/istio/pilot:1.22.1 io.cri-containerd.pinned= >/dev/null
run_check images
check "image removed and one unpinned: node2's images and node3's pins fail" \
	expect_failures images "node node2/node.images" "node node3/node.pinned"
check "image removed: the evidence names it" \
	evidence_says images "node node2/node.images" "are missing: docker.io/library/redis:7.0.15-alpine"
check "image removed: the remedy names the component" \
	remedy_says images "node node2/node.images" "mlboot install --force --only argocd"
check "image unpinned: the remedy pins it" \
	remedy_says images "node node3/node.pinned" "ctr -n k8s.io images label NAME io.cri-containerd.pinned=pinned"
install --force --only argocd || mlb_die "mlboot install --force --only argocd failed; see $work/install.err"
"$testbed/node-exec" node3 ctr -n k8s.io images label docker.io/istio/pilot:1.22.1 \
	io.cri-containerd.pinned=pinned >/dev/null

# --- A pod running an image that is not in the bundle -----------------------------------
standin_kubectl apply -f - >/dev/null <<'EOF'
apiVersion: v1
kind: Pod
metadata: {name: pulled-from-outside, namespace: ml}
spec:
  containers:
  - {name: shell, image: "docker.io/library/busybox:1.36", command: [sleep, "3600"]}
EOF
outside_pod_running() {
	test "$(standin_kubectl -n ml get pod pulled-from-outside -o jsonpath='{.status.phase}')" = Running
}
mlb_wait_until 30 outside_pod_running ||
	mlb_die "the pod with an outside image did not start"
run_check outside-image
check "image not in the bundle: only airgap.pod-images fails" expect_failures outside-image "air gap/airgap.pod-images"
check "image not in the bundle: the evidence names pod and image" \
	evidence_says outside-image "air gap/airgap.pod-images" "pod ml/pulled-from-outside container shell: docker.io/library/busybox:1.36 is not in the bundle"
check "image not in the bundle: the remedy names the pod" \
	remedy_says outside-image "air gap/airgap.pod-images" "kubectl -n ml get pod pulled-from-outside"
pod_gone() {
	! standin_kubectl -n ml get pod pulled-from-outside >/dev/null 2>&1
}
standin_kubectl -n ml delete pod pulled-from-outside --wait=false >/dev/null
mlb_wait_until 30 pod_gone || mlb_die "the pod with an outside image was not deleted"

# --- Repaired: every check passes again ---------------------------------------------------
run_check repaired
check "after the repairs: exit 0 and no check fails" \
	test "$(status_of repaired)" -eq 0 -a -z "$(ids_with_status repaired fail)"

# --- Without a bundle, the labels say what is installed --------------------------------------
status=0
"$MLBOOT" check -f "$work/no-bundle.yaml" -o json >"$work/labels.json" 2>"$work/labels.err" || status=$?
echo "$status" >"$work/labels.status"
check "without a bundle: exit 0" test "$status" -eq 0
check "without a bundle: the components come from the labels" \
	evidence_says labels platform/platform.components "6 components found by their mlboot.dev/component labels"
check "without a bundle: the image checks are skipped with the reason" \
	evidence_says labels "air gap/airgap.pod-images" "no bundle to compare the images with"
check "without a bundle: the components are still checked" grep -qxF "kserve/kserve.prediction" <(ids_with_status labels pass)

# --- The API server unreachable, and credentials rejected ------------------------------------
port=$(standin_unused_port)
standin_kubeconfig_with_server "$STANDIN_DIR/admin.kubeconfig" "https://127.0.0.1:$port" "$work/unreachable.kubeconfig"
run_check unreachable --kubeconfig "$work/unreachable.kubeconfig"
check "API unreachable: exit 5" test "$(status_of unreachable)" -eq 5
ids_with_status unreachable fail >"$work/unreachable.failed"
check "API unreachable: cluster.api is the one failure" test "$(cat "$work/unreachable.failed")" = "cluster/cluster.api"
check "API unreachable: the message says so" grep -q "127.0.0.1:$port" "$work/unreachable.err"
check "API unreachable: the checks that need it are skipped" \
	evidence_says unreachable kserve/kserve.prediction "skipped: the API server is unreachable"
check "API unreachable: the nodes are still checked" grep -qxF "node node2/node.images" <(ids_with_status unreachable pass)

run_check denied --kubeconfig "$STANDIN_DIR/expired.kubeconfig"
check "credentials rejected: exit 6" test "$(status_of denied)" -eq 6

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
