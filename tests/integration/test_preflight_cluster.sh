#!/usr/bin/env bash
# mlboot preflight against the stand-in Kubernetes API server: a good
# cluster passes, and each kind of problem fails the right check with the
# right exit status and remedy. Only loopback is contacted.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
. "$here/lib/standin.sh"

: "${MLBOOT:?MLBOOT must name the mlboot binary (tests/run sets it)}"
[ -x "$MLBOOT" ] || mlb_die "'$MLBOOT' is not an executable; build it first"
standin_require
command -v kubectl >/dev/null || mlb_skip "kubectl is missing"
command -v openssl >/dev/null || mlb_skip "openssl is missing"

work=$(mktemp -d /tmp/mlboot-preflight-cluster.XXXXXX)
cleanup() {
	standin_stop
	rm -rf "$work"
}
trap cleanup EXIT
standin_isolate_environment "$work/home"

standin_start "$work/standin" || mlb_die "the stand-in API server did not start"
admin=$STANDIN_DIR/admin.kubeconfig

failures=0
pass() { printf 'ok   %s\n' "$1"; }
fail() {
	printf 'FAIL %s\n' "$*" >&2
	failures=$((failures + 1))
}

# Run preflight with the given arguments: stdout to $work/out, stderr to
# $work/err, the exit status to $status.
run_preflight() {
	"$MLBOOT" preflight "$@" >"$work/out" 2>"$work/err"
	status=$?
}

# Print a field of one check of the JSON report in $work/out.
check_field() {
	local id=$1 field=$2
	"$STANDIN_PYTHON" - "$work/out" "$id" "$field" <<'EOF'
import json, sys
path, expected_id, field = sys.argv[1:4]
with open(path, encoding="utf-8") as handle:
    report = json.load(handle)
for check in report["checks"]:
    if check["id"] == expected_id:
        value = check[field]
        print("null" if value is None else value)
        break
else:
    print("missing")
EOF
}

# Print a summary count ("passed", "failed", ...) of the JSON report.
summary_field() {
	"$STANDIN_PYTHON" -c 'import json, sys; print(json.load(open(sys.argv[1]))["summary"][sys.argv[2]])' \
		"$work/out" "$1"
}

expect_status() {
	local name=$1 expected=$2
	if [ "$status" -ne "$expected" ]; then
		fail "$name: exit status $status, expected $expected; stderr:"
		sed 's/^/    /' "$work/err" >&2
		sed 's/^/    /' "$work/out" >&2
		return 1
	fi
}

expect_check() {
	local name=$1 id=$2 expected=$3 actual
	actual=$(check_field "$id" status)
	if [ "$actual" != "$expected" ]; then
		fail "$name: check $id is '$actual', expected '$expected'"
		sed 's/^/    /' "$work/out" >&2
		return 1
	fi
}

expect_text() {
	local name=$1 file=$2 text=$3
	if ! grep -qF -- "$text" "$file"; then
		fail "$name: '$text' not found in $(basename "$file"):"
		sed 's/^/    /' "$file" >&2
		return 1
	fi
}

# Set the Ready condition and kubelet version of a node through the status
# subresource, as kubelet does.
set_node_status() {
	local node=$1 ready=$2 reason=$3 kubelet=$4
	standin_kubectl patch node "$node" --subresource=status --type=merge -p \
		"{\"status\":{\"conditions\":[{\"type\":\"Ready\",\"status\":\"$ready\",\"reason\":\"$reason\"}],\"nodeInfo\":{\"kubeletVersion\":\"$kubelet\"}}}" \
		>/dev/null || mlb_die "cannot set the status of node '$node'"
}

# Make every node Ready with the given kubelet version.
set_all_nodes_ready() {
	local node
	for node in $(standin_kubectl get nodes -o name); do
		set_node_status "${node#node/}" True KubeletReady "$1"
	done
}

# The cluster every case starts from: the stand-in's own node, two workers
# made through the API, all Ready, and the StorageClass "standard" as the
# only default beside the non-default "slow".
server_version=v1.32.4
standin_kubectl apply -f - >/dev/null <<'EOF' || mlb_die "cannot create the nodes and StorageClasses"
apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: Node
  metadata: {name: worker-1, labels: {kubernetes.io/hostname: worker-1}}
- apiVersion: v1
  kind: Node
  metadata: {name: worker-2, labels: {kubernetes.io/hostname: worker-2}}
- apiVersion: storage.k8s.io/v1
  kind: StorageClass
  metadata: {name: slow}
  provisioner: example.com/nfs
EOF
set_all_nodes_ready "$server_version"

reset_cluster() {
	standin_ctl faults clear >/dev/null
	standin_ctl set-version "$server_version" >/dev/null
	set_all_nodes_ready "$server_version"
	standin_kubectl annotate --overwrite storageclass standard \
		storageclass.kubernetes.io/is-default-class=true >/dev/null
	standin_kubectl annotate storageclass standard slow \
		storageclass.beta.kubernetes.io/is-default-class- >/dev/null 2>&1
	standin_kubectl annotate storageclass slow \
		storageclass.kubernetes.io/is-default-class- >/dev/null 2>&1
}

case_good_cluster() {
	local name="good cluster passes"
	reset_cluster
	run_preflight --kubeconfig "$admin" -o json
	expect_status "$name" 0 || return
	"$STANDIN_PYTHON" -m json.tool "$work/out" >/dev/null || { fail "$name: the JSON report does not parse"; return; }
	[ "$(summary_field passed)" = 6 ] || { fail "$name: $(summary_field passed) checks passed, expected 6"; return; }
	[ "$(summary_field failed)" = 0 ] || { fail "$name: failures in a good cluster"; return; }
	expect_text "$name" "$work/out" '"apiVersion":"mlboot.dev/v1alpha1"' || return
	expect_text "$name" "$work/out" "3 nodes Ready: standin-node-1, worker-1, worker-2" || return
	expect_text "$name" "$work/out" "'standard' is the default of 2 StorageClasses: slow, standard" || return

	run_preflight --kubeconfig "$admin"
	expect_status "$name (text)" 0 || return
	expect_text "$name (text)" "$work/out" "6 passed, 0 warnings, 0 failed, 0 skipped" || return
	expect_text "$name (text)" "$work/out" "PASS  API server reachable: $STANDIN_URL, TLS verified, round trip" || return
	if grep -q $'\033' "$work/out"; then
		fail "$name: colour codes in output that is not a terminal"
		return
	fi
	pass "$name"
}

case_old_version() {
	local name="version v1.23 fails"
	reset_cluster
	standin_ctl set-version v1.23.17 >/dev/null
	set_all_nodes_ready v1.23.17
	run_preflight --kubeconfig "$admin" -o json
	expect_status "$name" 1 || return
	expect_check "$name" cluster.version fail || return
	expect_text "$name" "$work/out" "v1.23.17 is older than the minimum 1.24" || return
	expect_check "$name" cluster.storageclass pass || return

	run_preflight --kubeconfig "$admin" --min-version 1.23 -o json
	expect_status "$name (--min-version 1.23)" 0 || return
	pass "$name"
}

case_no_default_storageclass() {
	local name="no default StorageClass fails" remedy command
	reset_cluster
	standin_kubectl annotate storageclass standard storageclass.kubernetes.io/is-default-class- >/dev/null
	run_preflight --kubeconfig "$admin" -o json
	expect_status "$name" 1 || return
	expect_check "$name" cluster.storageclass fail || return
	remedy=$(check_field cluster.storageclass remedy)
	case $remedy in
	*"kubectl patch storageclass slow -p '{\"metadata\":{\"annotations\":{\"storageclass.kubernetes.io/is-default-class\":\"true\"}}}'"*) ;;
	*) fail "$name: remedy without the patch command: $remedy"; return ;;
	esac

	# The remedy is a command that works: run it, and the check passes.
	command=${remedy#*kubectl patch }
	eval "standin_kubectl patch $command" >/dev/null || { fail "$name: the remedy's command failed"; return; }
	run_preflight --kubeconfig "$admin" -o json
	expect_status "$name (after the remedy)" 0 || return
	expect_text "$name" "$work/out" "'slow' is the default" || return
	pass "$name"
}

case_default_annotation_spellings() {
	local name="default annotation read exactly"
	reset_cluster
	standin_kubectl annotate --overwrite storageclass standard \
		storageclass.kubernetes.io/is-default-class=True >/dev/null
	run_preflight --kubeconfig "$admin" -o json
	expect_status "$name (\"True\")" 1 || return
	expect_check "$name (\"True\")" cluster.storageclass fail || return

	standin_kubectl annotate --overwrite storageclass standard \
		storageclass.beta.kubernetes.io/is-default-class=true >/dev/null
	run_preflight --kubeconfig "$admin" -o json
	expect_status "$name (beta \"true\")" 0 || return
	expect_check "$name (beta \"true\")" cluster.storageclass pass || return

	standin_kubectl annotate --overwrite storageclass slow \
		storageclass.kubernetes.io/is-default-class=true >/dev/null
	run_preflight --kubeconfig "$admin" -o json
	expect_status "$name (two defaults)" 0 || return
	expect_check "$name (two defaults)" cluster.storageclass warn || return
	expect_text "$name" "$work/out" "2 StorageClasses are marked default: slow, standard" || return

	standin_kubectl delete storageclass standard slow >/dev/null
	run_preflight --kubeconfig "$admin" -o json
	expect_status "$name (no StorageClass)" 1 || return
	expect_text "$name" "$work/out" "install a storage provisioner" || return
	standin_kubectl apply -f - >/dev/null <<'EOF' || mlb_die "cannot restore the StorageClasses"
apiVersion: v1
kind: List
items:
- apiVersion: storage.k8s.io/v1
  kind: StorageClass
  metadata: {name: standard}
  provisioner: rancher.io/local-path
- apiVersion: storage.k8s.io/v1
  kind: StorageClass
  metadata: {name: slow}
  provisioner: example.com/nfs
EOF
	pass "$name"
}

case_node_not_ready() {
	local name="node not Ready fails"
	reset_cluster
	set_node_status worker-2 False KubeletNotReady "$server_version"
	run_preflight --kubeconfig "$admin" -o json
	expect_status "$name" 1 || return
	expect_check "$name" cluster.nodes fail || return
	expect_text "$name" "$work/out" "1 of 3 nodes not Ready: worker-2 (Ready=False, reason KubeletNotReady)" || return
	pass "$name"
}

case_kubelet_skew() {
	local name="kubelet skew fails"
	reset_cluster
	set_node_status worker-1 True KubeletReady v1.28.9
	set_node_status worker-2 True KubeletReady v1.29.0
	run_preflight --kubeconfig "$admin" -o json
	expect_status "$name" 1 || return
	expect_check "$name" cluster.kubelet-versions fail || return
	expect_text "$name" "$work/out" "kubelet too old for API server v1.32.4 on worker-1 (v1.28.9)" || return
	if grep -q "worker-2 (v1.29.0)" "$work/out"; then
		fail "$name: worker-2, three minor versions older, is reported"
		return
	fi
	set_node_status worker-1 True KubeletReady v1.33.0
	run_preflight --kubeconfig "$admin" -o json
	expect_status "$name (newer)" 1 || return
	expect_text "$name" "$work/out" "kubelet newer than API server v1.32.4 on worker-1 (v1.33.0)" || return
	pass "$name"
}

case_viewer() {
	local name="viewer fails the admin check"
	reset_cluster
	run_preflight --kubeconfig "$STANDIN_DIR/viewer.kubeconfig" -o json
	expect_status "$name" 1 || return
	expect_check "$name" cluster.admin fail || return
	expect_check "$name" cluster.api pass || return
	expect_text "$name" "$work/out" "user 'viewer' (context 'standin-viewer') may not use every verb" || return
	expect_text "$name" "$work/out" "cluster-admin ClusterRole" || return
	pass "$name"
}

case_wrong_ca() {
	local name="wrong CA exits 6"
	reset_cluster
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 \
		-subj /CN=another-ca -keyout "$work/other-ca.key" -out "$work/other-ca.crt" 2>/dev/null ||
		mlb_die "openssl cannot make a CA"
	standin_kubeconfig_with_ca "$admin" "$work/other-ca.crt" "$work/wrong-ca.kubeconfig" ||
		mlb_die "cannot write the kubeconfig with another CA"
	run_preflight --kubeconfig "$work/wrong-ca.kubeconfig" -o json
	expect_status "$name" 6 || return
	expect_text "$name" "$work/err" "TLS verification" || return
	expect_check "$name" cluster.api fail || return
	expect_check "$name" cluster.nodes skip || return
	expect_text "$name" "$work/out" "skipped: TLS verification with the API server failed" || return
	pass "$name"
}

case_expired_token() {
	local name="expired token exits 6"
	reset_cluster
	run_preflight --kubeconfig "$STANDIN_DIR/expired.kubeconfig" -o json
	expect_status "$name" 6 || return
	expect_check "$name" cluster.api fail || return
	expect_text "$name" "$work/out" "rejected the credentials of user 'expired-user' (HTTP 401)" || return
	expect_text "$name" "$work/err" "rejected the credentials" || return
	[ "$(summary_field skipped)" = 5 ] || { fail "$name: $(summary_field skipped) checks skipped, expected 5"; return; }
	pass "$name"
}

case_unreachable() {
	local name="unreachable server exits 5 quickly" port start elapsed
	port=$(standin_unused_port)
	standin_kubeconfig_with_server "$admin" "https://127.0.0.1:$port" "$work/unreachable.kubeconfig" ||
		mlb_die "cannot write the kubeconfig of an unreachable server"
	start=$(date +%s%N)
	run_preflight --kubeconfig "$work/unreachable.kubeconfig" -o json
	elapsed=$((($(date +%s%N) - start) / 1000000))
	expect_status "$name" 5 || return
	expect_check "$name" cluster.api fail || return
	expect_check "$name" cluster.version skip || return
	expect_text "$name" "$work/out" "skipped: the API server is unreachable" || return
	"$STANDIN_PYTHON" -m json.tool "$work/out" >/dev/null || { fail "$name: the JSON report does not parse"; return; }
	if [ "$elapsed" -gt 10000 ]; then
		fail "$name: took $elapsed ms, expected less than 10 s"
		return
	fi
	pass "$name ($elapsed ms)"
}

case_closed_proxy() {
	local name="closed proxy is named without its password" port
	port=$(standin_unused_port)
	sed "s|^\(    server: .*\)$|\1\n    proxy-url: http://operator:proxy-secret@127.0.0.1:$port|" "$admin" \
		>"$work/proxy.kubeconfig" || mlb_die "cannot write the kubeconfig with a proxy"
	grep -q "proxy-url:" "$work/proxy.kubeconfig" || mlb_die "the kubeconfig has no server line to add the proxy to"
	run_preflight --kubeconfig "$work/proxy.kubeconfig" -o json
	expect_status "$name" 5 || return
	expect_check "$name" cluster.api fail || return
	expect_text "$name" "$work/out" "through the proxy 'http://127.0.0.1:$port'" || return
	if grep -q "proxy-secret" "$work/out" "$work/err"; then
		fail "$name: the proxy's password is in the output"
		return
	fi
	pass "$name"
}

case_through_proxy() {
	local name="requests go through the kubeconfig's proxy-url" port pid
	port=$(standin_unused_port)
	"$STANDIN_PYTHON" "$here/lib/loopback-proxy.py" "$port" "$work/proxy.log" 2>"$work/proxy.err" &
	pid=$!
	mlb_wait_until 10 test -s "$work/proxy.log.ready" || { kill "$pid"; fail "$name: the proxy did not start"; return; }
	sed "s|^\(    server: .*\)$|\1\n    proxy-url: http://127.0.0.1:$port|" "$admin" >"$work/via-proxy.kubeconfig" ||
		mlb_die "cannot write the kubeconfig with a proxy"
	run_preflight --kubeconfig "$work/via-proxy.kubeconfig" -o json
	kill "$pid"
	wait "$pid" 2>/dev/null
	expect_status "$name" 0 || return
	expect_text "$name" "$work/proxy.log" "CONNECT ${STANDIN_URL#https://} HTTP/1.1" || return
	pass "$name"
}

case_injected_faults() {
	local name="10% injected 500 and 429 pass" run injected
	reset_cluster
	standin_ctl stats --reset >/dev/null
	standin_ctl faults add --type error --status 500 --probability 0.1 >/dev/null
	standin_ctl faults add --type error --status 429 --probability 0.1 --retry-after 1 >/dev/null
	for run in 1 2 3 4 5; do
		run_preflight --kubeconfig "$admin" -o json
		expect_status "$name (run $run)" 0 || return
	done
	injected=$(standin_ctl stats | "$STANDIN_PYTHON" -c 'import json, sys; print(json.load(sys.stdin)["faultsInjected"])')
	# Without a fault the case would prove nothing.
	[ "$injected" -gt 0 ] || { fail "$name: no fault was injected in 5 runs"; return; }
	standin_ctl faults clear >/dev/null
	pass "$name ($injected faults injected)"
}

case_vendor_versions() {
	local name="vendor version strings pass"
	reset_cluster
	standin_ctl set-version v1.27.3+k3s1 --minor 27+ >/dev/null
	set_all_nodes_ready v1.27.3+k3s1
	run_preflight --kubeconfig "$admin" -o json
	expect_status "$name (k3s)" 0 || return
	expect_text "$name" "$work/out" "v1.27.3+k3s1 (1.27), minimum 1.24" || return
	expect_check "$name" cluster.kubelet-versions pass || return

	standin_ctl set-version v1.28.2-eks-a5df82a --minor 28+ >/dev/null
	set_node_status worker-1 True KubeletReady v1.28.2-eks-a5df82a
	run_preflight --kubeconfig "$admin" -o json
	expect_status "$name (eks)" 0 || return
	expect_text "$name" "$work/out" "v1.28.2-eks-a5df82a (1.28)" || return
	pass "$name"
}

case_token_not_logged() {
	local name="bearer token not logged with -vvv" token kubeconfig
	reset_cluster
	# Faults make the client retry, which logs the requests it repeats.
	standin_ctl faults add --type error --status 500 --probability 0.3 >/dev/null
	for kubeconfig in token expired viewer; do
		token=$(awk '$1 == "token:" { print $2 }' "$STANDIN_DIR/$kubeconfig.kubeconfig")
		[ -n "$token" ] || mlb_die "no token in $kubeconfig.kubeconfig"
		"$MLBOOT" -vvv preflight --kubeconfig "$STANDIN_DIR/$kubeconfig.kubeconfig" >"$work/out" 2>"$work/err"
		grep -q '^debug: ' "$work/err" || { fail "$name: no debug output with -vvv ($kubeconfig)"; return; }
		if grep -qF -- "$token" "$work/err" "$work/out"; then
			fail "$name: the token of $kubeconfig.kubeconfig appears in the output"
			return
		fi
	done
	standin_ctl faults clear >/dev/null
	pass "$name"
}

case_colour_on_terminal() {
	local name="colour only on a terminal"
	if ! command -v script >/dev/null; then
		echo "skip $name: script (util-linux) is missing"
		return
	fi
	reset_cluster
	# script runs preflight with stdout on a pseudo-terminal.
	NO_COLOR= script -qec "'$MLBOOT' preflight --kubeconfig '$admin'" /dev/null >"$work/out" 2>&1
	expect_text "$name" "$work/out" $'\033[32mPASS\033[0m' || return
	NO_COLOR=1 script -qec "'$MLBOOT' preflight --kubeconfig '$admin'" /dev/null >"$work/out" 2>&1
	expect_text "$name (NO_COLOR)" "$work/out" "PASS  API server reachable" || return
	if grep -q $'\033\[' "$work/out"; then
		fail "$name: colour codes with NO_COLOR=1"
		return
	fi
	pass "$name"
}

case_usage_and_kubeconfig_errors() {
	local name="usage and kubeconfig errors"
	run_preflight --kubeconfig "$admin" -o xml
	expect_status "$name (-o xml)" 2 || return
	expect_text "$name" "$work/err" "invalid output format 'xml'" || return
	run_preflight --kubeconfig "$admin" --min-version one.two
	expect_status "$name (--min-version)" 2 || return
	run_preflight --kubeconfig "$admin" extra
	expect_status "$name (argument)" 2 || return
	run_preflight --kubeconfig "$work/missing.kubeconfig" -o json
	expect_status "$name (missing kubeconfig)" 3 || return
	expect_check "$name" cluster.api fail || return
	run_preflight --kubeconfig "$admin" --context no-such-context -o json
	expect_status "$name (unknown context)" 3 || return
	run_preflight --help
	expect_status "$name (--help)" 0 || return
	expect_text "$name" "$work/out" "usage: mlboot preflight" || return
	pass "$name"
}

case_good_cluster
case_old_version
case_no_default_storageclass
case_default_annotation_spellings
case_node_not_ready
case_kubelet_skew
case_viewer
case_wrong_ca
case_expired_token
case_unreachable
case_closed_proxy
case_through_proxy
case_injected_faults
case_vendor_versions
case_token_not_logged
case_colour_on_terminal
case_usage_and_kubeconfig_errors

if [ "$failures" -gt 0 ]; then
	echo "$failures case(s) failed" >&2
	exit 1
fi
echo "every case passed"
