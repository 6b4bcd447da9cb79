# shellcheck shell=bash
# shellcheck disable=SC2154 # work is set by the script that sources this file
# The setup that the tests of an installed platform share: a testbed of
# three nodes (network namespaces with real sshd and containerd), an
# mlboot.yaml for them and a signed bundle of the project's small platform.
# test_install_platform.sh, test_install_upstream.sh and
# test_check_platform.sh use it, and tests/bench/install.sh and the demo use
# parts of it.
#
# Source after tests/integration/lib.sh and lib/standin.sh;
# install_testbed_cleanup also needs lib/results.sh.
#
#   install_testbed_settings PREFIX SUBNET   export MLB_TESTBED_* for testbed PREFIX on SUBNET
#   install_testbed_require                  skip unless root, namespaces, MLBOOT and the stand-in
#   install_testbed_wait_until_free          wait while the subnet or the prefix is in use
#   install_testbed_start                    start three nodes, export their variables
#   install_testbed_cleanup STATUS           the end of the caller's EXIT trap
#   install_testbed_build_bundle             the small platform's signed bundle in $work
#   install_testbed_hosts [COUNT]            the hosts entries of mlboot.yaml
#   install_testbed_write_config FILE NAME BUNDLE KUBECONFIG STATE_DIR [COMPONENT_TIMEOUT]
#   install_testbed_node_has_images NODE IMAGE...
#   install_testbed_add_check_services       Services for the endpoints mlboot check calls
#
# The functions read the caller's variables work (the test's own folder,
# under /var/tmp because every node has its own /tmp) and MLBOOT (the
# binary).

INSTALL_TESTBED_HOME=$(cd "$(dirname "${BASH_SOURCE[0]}")/../testbed" && pwd)
INSTALL_TESTBED_REPO=$(cd "$INSTALL_TESTBED_HOME/../../.." && pwd)
# 1 once this run has called testbed/up, so that cleanup takes down no other run's testbed.
INSTALL_TESTBED_STARTED=0

# Export the testbed settings for testbed PREFIX (its state in
# /tmp/PREFIX-testbed) on SUBNET, a 198.18.N.0/24. The product must not use
# the caller's SSH agent, and the testbed gets no sudo password and no
# bastion-only node.
install_testbed_settings() {
	export MLB_TESTBED_PREFIX=$1
	export MLB_TESTBED_SUBNET=$2
	export MLB_TESTBED_DIR=/tmp/$1-testbed
	unset MLB_TESTBED_SUDO_PASSWORD MLB_TESTBED_BASTION_ONLY SSH_AUTH_SOCK
}

# Skip the test (exit 77) unless it runs as root, may create network and
# mount namespaces and finds the stand-in API server. End it (exit 1) when
# MLBOOT does not name the binary.
install_testbed_require() {
	if [ "$(id -u)" -ne 0 ]; then
		mlb_skip "needs root for network namespaces and mounts"
	fi
	if ! unshare --net --mount true 2>/dev/null; then
		mlb_skip "this kernel or sandbox does not allow new network and mount namespaces"
	fi
	[ -x "${MLBOOT:-}" ] || mlb_die "MLBOOT is not set to the mlboot binary; run through tests/run"
	standin_require
}

# Succeed when another testbed has an address in the subnet, or when another
# run of the same test uses the prefix's bridge.
install_testbed_busy() {
	ip -o -4 addr show to "$MLB_TESTBED_SUBNET" | awk '{print $2}' | grep -qv "^$MLB_TESTBED_PREFIX-br\$" ||
		ip link show "$MLB_TESTBED_PREFIX-br" >/dev/null 2>&1
}

# Wait while install_testbed_busy, checking every 5 s, for at most
# MLB_INSTALL_TEST_WAIT seconds (default 900). Returns 1 when the wait timed out.
install_testbed_wait_until_free() {
	local deadline=$((SECONDS + ${MLB_INSTALL_TEST_WAIT:-900}))
	install_testbed_busy || return 0
	mlb_log "waiting for subnet $MLB_TESTBED_SUBNET and testbed $MLB_TESTBED_PREFIX, which another run uses"
	while install_testbed_busy; do
		[ "$SECONDS" -lt "$deadline" ] || return 1
		sleep 5
	done
}

# Start a testbed of three nodes and export the variables of its env file
# (MLB_NODE1_ADDR, MLB_TESTBED_KEY_ED25519, MLB_TESTBED_KNOWN_HOSTS, ...).
# IPv4 forwarding is turned on in each node because the testbed's namespaces
# start with it off, which preflight rejects. Returns 1 when a step fails.
install_testbed_start() {
	local env_file node
	INSTALL_TESTBED_STARTED=1
	env_file=$("$INSTALL_TESTBED_HOME/up" 3) || return 1
	set -a
	# shellcheck disable=SC1090 # written by testbed/up
	. "$env_file" || { set +a; return 1; }
	set +a
	for node in node1 node2 node3; do
		"$INSTALL_TESTBED_HOME/node-exec" "$node" sysctl -qw net.ipv4.ip_forward=1 || return 1
	done
}

# Stop the stand-in, print the ends of the $work/*.err logs after a failure
# (results_print_error_logs with STATUS, the script's exit status), take
# down the testbed if this run started it, and remove $work. The caller's
# EXIT trap calls this after stopping its own processes.
install_testbed_cleanup() {
	standin_stop
	results_print_error_logs "$1" "$work"
	if [ "$INSTALL_TESTBED_STARTED" = 1 ]; then
		"$INSTALL_TESTBED_HOME/down" || true
	fi
	rm -rf "$work"
}

# Build $work/platform.bundle from a copy of the project's small platform
# (tests/fixtures/platform) with its images made, signed with a new key pair
# $work/signing.key and $work/signing.pub. The build's output is in
# $work/build.out and $work/build.err.
install_testbed_build_bundle() {
	local fixture=$INSTALL_TESTBED_REPO/tests/fixtures/platform
	cp -r "$fixture" "$work/platform"
	"$fixture/make-images" "$work/platform/images"
	(cd "$work" && "$MLBOOT" keygen -o "$work/signing") >/dev/null
	"$MLBOOT" bundle build -f "$work/platform/catalog.yaml" -o "$work/platform.bundle" --key "$work/signing.key" \
		>"$work/build.out" 2>"$work/build.err" || mlb_die "bundle build failed; see $work/build.err"
}

# Print the hosts entries of mlboot.yaml for node1 to nodeCOUNT (default 3):
# node1 is the control plane, the others are workers, and each is reached
# with the testbed's key and known_hosts file.
install_testbed_hosts() {
	local count=${1:-3} index address_var role
	for ((index = 1; index <= count; index++)); do
		address_var=MLB_NODE${index}_ADDR
		role=worker
		[ "$index" -ne 1 ] || role=control-plane
		printf '    - name: node%s\n      role: %s\n' "$index" "$role"
		printf '      ssh: {address: %s, keyPath: "%s", knownHosts: "%s"}\n' \
			"${!address_var}" "$MLB_TESTBED_KEY_ED25519" "$MLB_TESTBED_KNOWN_HOSTS"
	done
}

# install_testbed_write_config FILE NAME BUNDLE KUBECONFIG STATE_DIR [COMPONENT_TIMEOUT]
# Write to FILE an mlboot.yaml of platform NAME for the three nodes, with
# parallelism 3, the component timeout COMPONENT_TIMEOUT (default 3m) and an
# install timeout of 30m. BUNDLE "none" leaves the bundle out.
install_testbed_write_config() {
	local file=$1 name=$2 bundle=$3 kubeconfig=$4 state=$5 timeout=${6:-3m}
	{
		printf 'apiVersion: mlboot.dev/v1alpha1\nkind: Platform\nmetadata:\n  name: %s\nspec:\n' "$name"
		[ "$bundle" = none ] || printf '  bundle: %s\n' "$bundle"
		printf '  kubeconfig:\n    path: %s\n' "$kubeconfig"
		printf '  stateDir: %s\n  parallelism: 3\n  hosts:\n' "$state"
		install_testbed_hosts 3
		printf '  timeouts: {component: %s, install: 30m}\n' "$timeout"
	} >"$file"
}

# Succeed when NODE's containerd lists every IMAGE, pinned. Otherwise log
# the first one that is missing or not pinned. Each IMAGE is an extended
# regular expression matched at the start of a line of `ctr images ls`.
install_testbed_node_has_images() {
	local node=$1 listing image
	shift
	listing=$("$INSTALL_TESTBED_HOME/node-exec" "$node" ctr -n k8s.io images ls)
	for image in "$@"; do
		if ! grep -E "^${image}[[:space:]].*io.cri-containerd.pinned=pinned" <<<"$listing" >/dev/null; then
			mlb_log "$node lacks $image (or it is not pinned)"
			return 1
		fi
	done
}

# Prepare the stand-in for `mlboot check` of the small platform, whose
# endpoints lib/gateway.py serves in node1 and node2. The Istio ingress
# gateway's Service gets node1's address, as MetalLB would give it one on
# bare metal. The Services of Argo CD's server and repo server, which the
# small platform leaves out of Argo CD's manifests, get node2's address and
# the ports of Argo CD's own manifests (manifests/base in argoproj/argo-cd).
# Waits until the stand-in reports the gateway's address.
install_testbed_add_check_services() {
	standin_kubectl -n istio-system patch service istio-ingressgateway --type merge -p \
		"{\"metadata\":{\"annotations\":{\"metallb.universe.tf/loadBalancerIPs\":\"$MLB_NODE1_ADDR\"}},\"spec\":{\"type\":\"LoadBalancer\"}}" \
		>/dev/null
	standin_kubectl apply -f - >/dev/null <<EOF
apiVersion: v1
kind: Service
metadata: {name: argocd-server, namespace: argocd}
spec:
  selector: {app.kubernetes.io/name: argocd-server}
  externalIPs: [$MLB_NODE2_ADDR]
  ports:
  - {name: http, protocol: TCP, port: 80, targetPort: 8080}
  - {name: https, protocol: TCP, port: 443, targetPort: 8080}
---
apiVersion: v1
kind: Service
metadata: {name: argocd-repo-server, namespace: argocd}
spec:
  selector: {app.kubernetes.io/name: argocd-repo-server}
  externalIPs: [$MLB_NODE2_ADDR]
  ports:
  - {name: https-argocdreposerver, protocol: TCP, port: 8081, targetPort: 8081}
  - {name: http-argocdreposervermetrics, protocol: TCP, port: 8084, targetPort: 8084}
EOF
	mlb_wait_until 30 install_testbed_gateway_has_address || mlb_die "the stand-in gave the gateway no address"
}

install_testbed_gateway_has_address() {
	test -n "$(standin_kubectl -n istio-system get service istio-ingressgateway \
		-o jsonpath='{.status.loadBalancer.ingress[0].ip}')"
}
