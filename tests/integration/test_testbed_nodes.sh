#!/bin/bash
# Smoke test of the testbed nodes (tests/integration/testbed).
#
# Brings up 3 nodes and checks, with OpenSSH's own client and strict host key
# checking, that each node runs a real sshd and containerd with state of its
# own: an image imported over SSH into node1 appears there and not on node2.
# Also checks the pinned host keys, the bastion hop to node3, the sudo user on
# node2 with and without a sudo password, RSA keys with rsa-sha2 only, the
# stop-sshd, start-sshd and limit-disk helpers, and that `down` leaves no
# namespace or link behind.
#
# Exit status: 0 pass, 77 skip (not root, or no network namespaces here),
# 1 fail. It runs a testbed of its own (prefix mlbsmoke, 198.18.250.0/24),
# so a testbed started for `make demo` keeps running.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.sh
. "$here/lib.sh"
testbed=$here/testbed
make_image=$here/lib/make-oci-image

export MLB_TESTBED_PREFIX=mlbsmoke
export MLB_TESTBED_SUBNET=198.18.250.0/24
export MLB_TESTBED_DIR=/tmp/mlbsmoke-testbed
unset MLB_TESTBED_SUDO_PASSWORD MLB_TESTBED_BASTION_ONLY

if [ "$(id -u)" -ne 0 ]; then
	mlb_skip "needs root for network namespaces and mounts"
fi
if ! unshare --net --mount true 2>/dev/null; then
	mlb_skip "this kernel or sandbox does not allow new network and mount namespaces"
fi
"$testbed/deps"

work=$(mktemp -d /tmp/mlb-test-testbed.XXXXXX)
passed=0
failed=0

show_logs() {
	local log
	for log in "$MLB_TESTBED_DIR"/node*/fs/var/log/*.log "$MLB_TESTBED_DIR"/node*/node-init.log; do
		[ -f "$log" ] || continue
		echo "--- last lines of $log" >&2
		tail -n 20 "$log" >&2
	done
}

cleanup() {
	local status=$?
	if [ "$failed" -gt 0 ] || [ "$status" -ne 0 ]; then
		show_logs
	fi
	"$testbed/down" || true
	rm -rf "$work"
}
trap cleanup EXIT

pass() {
	passed=$((passed + 1))
	echo "ok - $1"
}

fail() {
	failed=$((failed + 1))
	echo "not ok - $1"
}

# Run a check: DESCRIPTION COMMAND [ARG...]. The command's output goes to
# stderr, so that a failure shows its cause.
check() {
	local description=$1
	shift
	if "$@" >&2; then
		pass "$description"
	else
		fail "$description"
	fi
}

# Run a check whose command must fail: DESCRIPTION COMMAND [ARG...].
check_fails() {
	local description=$1
	shift
	if "$@" >&2; then
		fail "$description (the command succeeded)"
	else
		pass "$description"
	fi
}

# Milliseconds since the epoch.
now_ms() {
	local ns
	ns=$(date +%s%N)
	printf '%s' "$((ns / 1000000))"
}

# OpenSSH with the testbed's known_hosts and ed25519 key only, rejecting
# unknown hosts. Usage: node_ssh [-o OPTION | -i KEY]... DESTINATION [COMMAND].
# ssh keeps the first value it gets for an option, so the caller's options
# go before the defaults. An -i key is tried before the default key.
node_ssh() {
	local -a options=()
	while [ "$#" -gt 0 ] && [[ $1 == -[oi] ]]; do
		options+=("$1" "$2")
		shift 2
	done
	timeout 60 ssh \
		"${options[@]}" \
		-i "$MLB_TESTBED_KEY_ED25519" \
		-o IdentitiesOnly=yes \
		-o UserKnownHostsFile="$MLB_TESTBED_KNOWN_HOSTS" \
		-o GlobalKnownHostsFile=/dev/null \
		-o StrictHostKeyChecking=yes \
		-o BatchMode=yes \
		-o ConnectTimeout=5 \
		"$@"
}

# Run testbed/up and load the env file it prints.
# Usage: testbed_up [VARIABLE=VALUE]... N. The assignments apply to `up` only.
# The env file exports the same names that `up` reads, so every call states
# the optional settings again.
testbed_up() {
	local -a assignments=(MLB_TESTBED_BASTION_ONLY=0 MLB_TESTBED_SUDO_PASSWORD=)
	while [ "$#" -gt 0 ] && [[ $1 == *=* ]]; do
		assignments+=("$1")
		shift
	done
	local env_file
	env_file=$(env "${assignments[@]}" "$testbed/up" "$@")
	set -a
	# shellcheck disable=SC1090
	. "$env_file"
	set +a
}

# Print the env file value MLB_<NODE>_<FIELD>, for example node_var node1 ADDR.
node_var() {
	local name="MLB_${1^^}_$2"
	printf '%s' "${!name}"
}

host_key_algorithm() {
	case $1 in
	ed25519) printf 'ssh-ed25519' ;;
	ecdsa) printf 'ecdsa-sha2-nistp256' ;;
	esac
}

served_fingerprint() {
	local addr=$1 type=$2
	ssh-keyscan -T 5 -t "$type" "$addr" 2>/dev/null | ssh-keygen -l -E sha256 -f - | awk '{print $2}'
}

# Print the image names in a node's k8s.io namespace, as root over SSH.
node_images() {
	node_ssh "root@$1" ctr -n k8s.io images ls -q
}

# Print the manifest's layer digests of the single image in an OCI archive.
archive_layers() {
	python3 - "$1" <<'EOF'
import json, sys, tarfile
with tarfile.open(sys.argv[1]) as archive:
    def blob(digest):
        return archive.extractfile("blobs/sha256/" + digest.split(":")[1]).read()
    index = json.load(archive.extractfile("index.json"))
    manifest = json.loads(blob(index["manifests"][0]["digest"]))
    print(" ".join(layer["digest"] for layer in manifest["layers"]))
EOF
}

# --- start ---------------------------------------------------------------

start_ms=$(now_ms)
testbed_up 3
up_ms=$(($(now_ms) - start_ms))
check "env file names 3 nodes" test "$MLB_TESTBED_NODES" = "node1 node2 node3"

start_ms=$(now_ms)
testbed_up 3
rerun_ms=$(($(now_ms) - start_ms))
check "up again keeps the host keys" test "$(served_fingerprint "$MLB_NODE1_ADDR" ed25519)" = "$MLB_NODE1_HOSTKEY_ED25519"

# --- every node: sshd, containerd, host keys ------------------------------

for node in $MLB_TESTBED_NODES; do
	addr=$(node_var "$node" ADDR)
	check "$node: ssh runs ctr images ls" node_ssh "root@$addr" ctr -n k8s.io images ls
	check "$node: hostname is $node" test "$(node_ssh "root@$addr" hostname)" = "$node"
	check "$node: ssh with the ECDSA key" node_ssh -i "$MLB_TESTBED_KEY_ECDSA" "root@$addr" true

	for type in ed25519 ecdsa; do
		upper=${type^^}
		expected=$(node_var "$node" "HOSTKEY_$upper")
		check "$node: served $type host key matches the env" \
			test "$(served_fingerprint "$addr" "$type")" = "$expected"
		check "$node: fingerprints file lists the $type key" \
			grep -qxF "256 $expected $addr ($upper)" "$MLB_TESTBED_FINGERPRINTS"
		check "$node: known_hosts accepts the $type key" \
			node_ssh -o HostKeyAlgorithms="$(host_key_algorithm "$type")" "root@$addr" true
		check "$node: hashed known_hosts accepts the $type key" \
			node_ssh -o UserKnownHostsFile="$MLB_TESTBED_KNOWN_HOSTS_HASHED" \
			-o HostKeyAlgorithms="$(host_key_algorithm "$type")" "root@$addr" true
	done
done

: >"$work/empty_known_hosts"
check_fails "unknown host is rejected" \
	node_ssh -o UserKnownHostsFile="$work/empty_known_hosts" "root@$MLB_NODE1_ADDR" true
printf 'scp payload\n' >"$work/payload"
check "scp (SFTP) copies a file to node1" \
	timeout 60 scp -q -F "$MLB_TESTBED_SSH_CONFIG" "$work/payload" node1:/var/lib/mlboot/payload
check "the copy is in node1's /var/lib/mlboot" cmp "$work/payload" "$MLB_NODE1_ROOTFS/var/lib/mlboot/payload"
check "ssh_config file reaches node2" \
	test "$(timeout 60 ssh -F "$MLB_TESTBED_SSH_CONFIG" node2 hostname)" = node2

# --- RSA: accepted only with rsa-sha2 signatures --------------------------

check "RSA key works with rsa-sha2 signatures" \
	node_ssh -i "$MLB_TESTBED_KEY_RSA" "root@$MLB_NODE1_ADDR" true
check_fails "RSA key with ssh-rsa (SHA-1) signatures is rejected" \
	node_ssh -i "$MLB_TESTBED_KEY_RSA" -o PubkeyAcceptedAlgorithms=ssh-rsa "root@$MLB_NODE1_ADDR" true

# --- separate state per node ------------------------------------------------

image_ref=$("$make_image" smoke/tiny:1.0 "$work/tiny.tar" smoke-seed)
check "make-oci-image prints the reference with its digest" \
	grep -qE '^docker\.io/smoke/tiny:1\.0@sha256:[0-9a-f]{64}$' <<<"$image_ref"
check "import into node1 from stdin over ssh" \
	node_ssh "root@$MLB_NODE1_ADDR" ctr -n k8s.io images import - <"$work/tiny.tar"
check "node1 lists the imported image" \
	grep -qxF docker.io/smoke/tiny:1.0 <<<"$(node_images "$MLB_NODE1_ADDR")"
check_fails "node2 does not list node1's image" \
	grep -qxF docker.io/smoke/tiny:1.0 <<<"$(node_images "$MLB_NODE2_ADDR")"
check "node1's socket from the host lists the image" \
	grep -qxF docker.io/smoke/tiny:1.0 <<<"$(ctr --address "$MLB_NODE1_CONTAINERD_SOCKET" -n k8s.io images ls -q)"
check "node-exec node1 lists the image" \
	grep -qxF docker.io/smoke/tiny:1.0 <<<"$("$testbed/node-exec" node1 ctr -n k8s.io images ls -q)"

check "write a file to node1's /tmp" node_ssh "root@$MLB_NODE1_ADDR" 'echo node1 >/tmp/smoke-marker'
check_fails "node2's /tmp does not have it" node_ssh "root@$MLB_NODE2_ADDR" test -e /tmp/smoke-marker
check_fails "the host's /tmp does not have it" test -e /tmp/smoke-marker
check "node1's file is under its rootfs" test -f "$MLB_NODE1_ROOTFS/tmp/smoke-marker"

"$make_image" smoke/a:1 "$work/a.tar" a "$work/shared.tar.gz" >/dev/null
"$make_image" smoke/b:1 "$work/b.tar" b "$work/shared.tar.gz" >/dev/null
read -r shared_a own_a <<<"$(archive_layers "$work/a.tar")"
read -r shared_b own_b <<<"$(archive_layers "$work/b.tar")"
check "images built with one shared-layer file share that layer" test "$shared_a" = "$shared_b"
check "their own layers differ" test "$own_a" != "$own_b"
check "import of two images sharing a layer into node3" \
	node_ssh "root@$MLB_NODE3_ADDR" 'cat >/tmp/a.tar && ctr -n k8s.io images import /tmp/a.tar' <"$work/a.tar"
check "import of the second image into node3" \
	node_ssh "root@$MLB_NODE3_ADDR" ctr -n k8s.io images import - <"$work/b.tar"

# --- bastion: node3 through node1 -------------------------------------------

proxy="ssh -i $MLB_TESTBED_KEY_ED25519 -o IdentitiesOnly=yes -o UserKnownHostsFile=$MLB_TESTBED_KNOWN_HOSTS"
proxy+=" -o GlobalKnownHostsFile=/dev/null -o StrictHostKeyChecking=yes -o BatchMode=yes"
proxy+=" -W %h:%p root@$MLB_NODE1_ADDR"
check "node3 through node1 with ProxyCommand" \
	test "$(node_ssh -o ProxyCommand="$proxy" "root@$MLB_NODE3_ADDR" hostname)" = node3
check "node3's sshd saw node1's address" \
	grep -q "Accepted publickey for root from $MLB_NODE1_ADDR " "$MLB_NODE3_SSHD_LOG"
check "node3 through node1 with ProxyJump (ssh_config)" \
	test "$(timeout 60 ssh -F "$MLB_TESTBED_SSH_CONFIG" node3-via-node1 hostname)" = node3

testbed_up MLB_TESTBED_BASTION_ONLY=1 3
check_fails "bastion-only: direct ssh to node3 fails" \
	node_ssh -o ConnectTimeout=2 "root@$MLB_NODE3_ADDR" true
check "bastion-only: node3 through node1 works" \
	test "$(node_ssh -o ProxyCommand="$proxy" "root@$MLB_NODE3_ADDR" hostname)" = node3
testbed_up 3
check "without bastion-only, direct ssh to node3 works again" node_ssh "root@$MLB_NODE3_ADDR" true

# --- sudo user on node2 ------------------------------------------------------

check "mlbuser logs in to node2 with a key" \
	test "$(node_ssh "$MLB_TESTBED_SUDO_USER@$MLB_NODE2_ADDR" id -un)" = mlbuser
check "mlbuser runs sudo without a password" \
	test "$(node_ssh "$MLB_TESTBED_SUDO_USER@$MLB_NODE2_ADDR" sudo -n id -u)" = 0
check "mlbuser runs ctr through sudo" \
	node_ssh "$MLB_TESTBED_SUDO_USER@$MLB_NODE2_ADDR" sudo -n ctr -n k8s.io images ls
check_fails "node1 has no mlbuser" node_ssh "$MLB_TESTBED_SUDO_USER@$MLB_NODE1_ADDR" true
check_fails "the host has no mlbuser" getent passwd "$MLB_TESTBED_SUDO_USER"

testbed_up MLB_TESTBED_SUDO_PASSWORD=smoke-sudo-password 3
check "env file carries the sudo password" test "$MLB_TESTBED_SUDO_PASSWORD" = smoke-sudo-password
sudo_output=$(node_ssh "$MLB_TESTBED_SUDO_USER@$MLB_NODE2_ADDR" sudo -n true 2>&1 || true)
check "sudo -n reports that a password is required" grep -q "a password is required" <<<"$sudo_output"
check "sudo -S accepts the password" \
	test "$(node_ssh "$MLB_TESTBED_SUDO_USER@$MLB_NODE2_ADDR" \
		"echo $MLB_TESTBED_SUDO_PASSWORD | sudo -S -p '' id -u")" = 0
testbed_up 3
check "sudo needs no password again" \
	node_ssh "$MLB_TESTBED_SUDO_USER@$MLB_NODE2_ADDR" sudo -n true

# --- breaking nodes -----------------------------------------------------------

check "stop-sshd node2" "$testbed/stop-sshd" node2
check_fails "ssh to node2 fails while its sshd is stopped" node_ssh "root@$MLB_NODE2_ADDR" true
check "node2's containerd still runs" "$testbed/node-exec" node2 ctr version
check "start-sshd node2" "$testbed/start-sshd" node2
check "ssh to node2 works again" node_ssh "root@$MLB_NODE2_ADDR" true

check "stop-containerd node2" "$testbed/stop-containerd" node2
check_fails "ctr on node2 fails while containerd is stopped" node_ssh "root@$MLB_NODE2_ADDR" ctr version
check "start-containerd node2" "$testbed/start-containerd" node2
check "ctr on node2 works again" node_ssh "root@$MLB_NODE2_ADDR" ctr version

check "limit-disk node1 8M" "$testbed/limit-disk" node1 8M
size_kb=$(node_ssh "root@$MLB_NODE1_ADDR" df -k --output=size /var/lib/containerd | tail -n 1 | tr -d ' ')
check "node1's /var/lib/containerd has 8 MiB" test "$size_kb" -eq 8192
check "node1's containerd runs on the small disk" node_ssh "root@$MLB_NODE1_ADDR" ctr version
check "limit-disk node1 off" "$testbed/limit-disk" node1 off
check "node1's image is back after limit-disk off" \
	grep -qxF docker.io/smoke/tiny:1.0 <<<"$(node_images "$MLB_NODE1_ADDR")"

check "node-exec returns the command's exit status" \
	test "$("$testbed/node-exec" node2 sh -c 'exit 7' || echo "$?")" = 7

# --- down --------------------------------------------------------------------

start_ms=$(now_ms)
check "down" "$testbed/down"
down_ms=$(($(now_ms) - start_ms))
check_fails "no namespace is left" grep -q "^$MLB_TESTBED_PREFIX-node" <<<"$(ip netns list)"
check_fails "no link is left" grep -q "$MLB_TESTBED_PREFIX-" <<<"$(ip -o link show)"
check_fails "no state directory is left" test -e "$MLB_TESTBED_DIR"

echo "# timings: up 3 (first) ${up_ms} ms, up 3 (again) ${rerun_ms} ms, down ${down_ms} ms"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
