#!/bin/bash
# Integration test of the node module's SSH transport against real sshd
# nodes of the testbed (tests/integration/testbed), driven by node-probe.
#
# Covers commands on 3 nodes in parallel. A wrong pinned host key, a changed
# known_hosts key and a recorded key of another type must fail hard, naming
# the host and both fingerprints. An unknown host is rejected, then accepted
# and recorded with --accept-new-host-keys. Also covered: the host key type
# preference (ECDSA pinned, only ed25519 recorded), RSA, unreadable and
# encrypted user keys, a stopped sshd on one node while the others succeed,
# the sudo user with and without a sudo password, the bastion hop (also with
# node3 unreachable directly), a missing exit status, a command time limit,
# an upload cut mid-way by a TCP proxy and resumed, and hostile file names
# uploaded and listed back byte for byte. Uploads of 64 MiB or more go over
# two sessions. For them the test covers content and session count, a cut
# of one session then a resume, and a wrong expected digest. It also covers
# a second session that reaches another host and must fail its host key
# check, and the bastion.
#
# Exit status: 0 pass, 77 skip (not root, or no namespaces here), 1 fail.
# It runs a testbed of its own (prefix mlbssh) on 198.18.0.0/24, so it
# cannot run while another testbed uses that subnet.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
# shellcheck source=lib.sh
. "$here/lib.sh"
testbed=$here/testbed

export MLB_TESTBED_PREFIX=mlbssh
export MLB_TESTBED_SUBNET=198.18.0.0/24
export MLB_TESTBED_DIR=/tmp/mlbssh-testbed
unset MLB_TESTBED_SUDO_PASSWORD MLB_TESTBED_BASTION_ONLY

if [ "$(id -u)" -ne 0 ]; then
	echo "SKIP: needs root for network namespaces and mounts"
	exit 77
fi
if ! unshare --net --mount true 2>/dev/null; then
	echo "SKIP: this kernel or sandbox does not allow new network and mount namespaces"
	exit 77
fi
"$testbed/deps" || mlb_die "cannot install the testbed's packages"

# Sanitizer builds: ignore a leak inside libssh2 1.10 itself (see the file).
# The slow unwinder is needed to see libssh2's frames below libcrypto's.
export LSAN_OPTIONS="suppressions=$root/tests/fixtures/ssh/lsan-libssh2.supp:print_suppressions=0${LSAN_OPTIONS:+:$LSAN_OPTIONS}"
export ASAN_OPTIONS="fast_unwind_on_malloc=0${ASAN_OPTIONS:+:$ASAN_OPTIONS}"

build=${MLBOOT_BUILD:-$root/build}
probe_bin=$build/tests/node-probe
make -s -C "$root" BUILD="$build" "$build/tests/node-probe" || mlb_die "cannot build node-probe"

work=$(mktemp -d /tmp/mlb-test-ssh.XXXXXX)
passed=0
failed=0
proxy_pid=

cleanup() {
	[ -n "$proxy_pid" ] && kill "$proxy_pid" 2>/dev/null
	"$testbed/down" >/dev/null 2>&1 || true
	rm -rf "$work"
}
trap cleanup EXIT

env_file=$("$testbed/up" 3) || mlb_die "testbed/up failed"
set -a
# shellcheck disable=SC1090
. "$env_file"
set +a

# Runs node-probe; its stdout goes to $work/out, stderr to $work/err, and
# its exit status to $status.
probe() {
	"$probe_bin" --connect-timeout 3000 "$@" >"$work/out" 2>"$work/err"
	status=$?
}

# Host options for node I with the default key and known_hosts; more
# options may follow and override them.
node() {
	local i=$1 addr
	shift
	addr=MLB_NODE${i}_ADDR
	printf '%s\n' --host "node$i" --address "${!addr}" --key "$MLB_TESTBED_KEY_ED25519" \
		--known-hosts "$MLB_TESTBED_KNOWN_HOSTS" "$@"
}

expect_status() {
	if [ "$status" -ne "$1" ]; then
		echo "expected exit status $1, got $status; stderr:" >&2
		cat "$work/err" >&2
		return 1
	fi
}

# Checks that stderr contains each argument as a fixed string.
expect_error() {
	local text
	for text in "$@"; do
		if ! grep -qF -- "$text" "$work/err"; then
			echo "stderr lacks '$text'; stderr:" >&2
			cat "$work/err" >&2
			return 1
		fi
	done
}

check() {
	local name=$1
	shift
	if "$@"; then
		passed=$((passed + 1))
		echo "ok   $name"
	else
		failed=$((failed + 1))
		echo "FAIL $name"
	fi
}

case_parallel_run() {
	local start elapsed
	mapfile -t args < <(node 1; node 2; node 3)
	start=$(date +%s%N)
	probe "${args[@]}" run -- sh -c 'sleep 1; hostname'
	elapsed=$((($(date +%s%N) - start) / 1000000))
	expect_status 0 || return 1
	printf -- '--- node1 exit=0\nnode1\n--- node2 exit=0\nnode2\n--- node3 exit=0\nnode3\n' |
		diff - "$work/out" || return 1
	# Three one-second commands in parallel take well under three seconds.
	[ "$elapsed" -lt 2500 ] || { echo "took $elapsed ms: not parallel" >&2; return 1; }
}

case_exit_status_and_streams() {
	mapfile -t args < <(node 1)
	probe "${args[@]}" --raw run -- sh -c 'printf "a\nb"; echo to-stderr >&2; exit 42'
	expect_status 1 || return 1
	[ "$(cat "$work/out")" = "$(printf 'a\nb')" ] || return 1
	# The exit status line the wrapper adds is taken off stderr.
	[ "$(cat "$work/err")" = "node1 stderr: to-stderr" ] || { cat "$work/err" >&2; return 1; }
	probe "${args[@]}" run -- sh -c 'exit 0'
	grep -qx -- '--- node1 exit=0' "$work/out" || return 1
	probe "${args[@]}" run -- sh -c 'exit 42'
	grep -qx -- '--- node1 exit=42' "$work/out"
}

case_wrong_pinned_key() {
	mapfile -t args < <(node 2 --host-key "$MLB_NODE1_HOSTKEY_ED25519")
	probe "${args[@]}" run -- true
	expect_status 6 &&
		expect_error "host 'node2'" "host key verification failed" \
			"$MLB_NODE1_HOSTKEY_ED25519" "$MLB_NODE2_HOSTKEY_ED25519"
}

case_changed_known_hosts_key() {
	# node2's address recorded with node1's ed25519 key.
	awk -v addr="$MLB_NODE2_ADDR" '{print addr, $1, $2}' "$MLB_NODE1_HOSTKEY_ED25519_PUB" \
		>"$work/changed_known_hosts"
	mapfile -t args < <(node 2 --known-hosts "$work/changed_known_hosts")
	probe "${args[@]}" run -- true
	expect_status 6 &&
		expect_error "host 'node2'" "host key verification failed" \
			"$MLB_NODE1_HOSTKEY_ED25519" "$MLB_NODE2_HOSTKEY_ED25519" \
			"$work/changed_known_hosts:1"
}

case_other_key_type_recorded() {
	# An RSA key recorded for node2, which has only ed25519 and ECDSA host keys.
	awk -v addr="$MLB_NODE2_ADDR" '{print addr, $1, $2}' \
		"$root/tests/fixtures/ssh/test-only-rsa.pub" >"$work/rsa_known_hosts"
	mapfile -t args < <(node 2 --known-hosts "$work/rsa_known_hosts")
	probe "${args[@]}" run -- true
	expect_status 6 &&
		expect_error "host 'node2'" "records a ssh-rsa key" "offers no key of that type" \
			"SHA256:GXOcz36fxQ2rFdjvHNVLkeMljji0Zew1wDQEIDBin60" \
			"$MLB_NODE2_HOSTKEY_ED25519"
}

case_unknown_host_then_accepted() {
	local file=$work/new_known_hosts
	mapfile -t args < <(node 3 --known-hosts "$file")
	probe "${args[@]}" run -- true
	expect_status 6 && expect_error "host 'node3'" "is not known" "$MLB_NODE3_HOSTKEY_ED25519" ||
		return 1
	[ ! -s "$file" ] || { echo "rejected key was recorded" >&2; return 1; }

	probe --accept-new-host-keys "${args[@]}" run -- true
	expect_status 0 && expect_error "(hashed entry)" || return 1
	[ "$(wc -l <"$file")" -eq 1 ] && grep -q '^|1|' "$file" || { cat "$file" >&2; return 1; }
	ssh-keygen -F "$MLB_NODE3_ADDR" -f "$file" | grep -q ssh-ed25519 || return 1
	[ "$(ssh-keygen -lf "$file" | awk '{print $2}')" = "$MLB_NODE3_HOSTKEY_ED25519" ] || return 1

	# Recorded now: accepted without the flag, and nothing is appended.
	probe "${args[@]}" run -- true
	expect_status 0 && [ "$(wc -l <"$file")" -eq 1 ]
}

case_host_key_type_preference() {
	# Pinned ECDSA key without its type: found by a second handshake.
	mapfile -t args < <(node 2 --host-key "$MLB_NODE2_HOSTKEY_ECDSA")
	probe "${args[@]}" run -- true
	expect_status 0 || return 1
	# Pinned with its type: the first handshake offers only ECDSA.
	mapfile -t args < <(node 2 --host-key "ecdsa-sha2-nistp256 $MLB_NODE2_HOSTKEY_ECDSA")
	probe "${args[@]}" run -- true
	expect_status 0 || return 1
	# Only ed25519 recorded: libssh2 1.10 picks ECDSA unless mlboot sets the preference.
	grep "^$MLB_NODE2_ADDR ssh-ed25519 " "$MLB_TESTBED_KNOWN_HOSTS" >"$work/ed25519_only"
	mapfile -t args < <(node 2 --known-hosts "$work/ed25519_only")
	probe "${args[@]}" run -- true
	expect_status 0 || return 1
	# Only ECDSA recorded.
	grep "^$MLB_NODE2_ADDR ecdsa-sha2-nistp256 " "$MLB_TESTBED_KNOWN_HOSTS" >"$work/ecdsa_only"
	mapfile -t args < <(node 2 --known-hosts "$work/ecdsa_only")
	probe "${args[@]}" run -- true
	expect_status 0 || return 1
	# Hashed known_hosts entries.
	mapfile -t args < <(node 2 --known-hosts "$MLB_TESTBED_KNOWN_HOSTS_HASHED")
	probe "${args[@]}" run -- true
	expect_status 0
}

case_user_keys() {
	mapfile -t args < <(node 1 --key "$MLB_TESTBED_KEY_RSA")
	probe "${args[@]}" run -- true
	expect_status 6 &&
		expect_error "host 'node1'" "rejected RSA key" "rsa-sha2-256" "ed25519 or ECDSA" || return 1

	mapfile -t args < <(node 1 --key "$MLB_TESTBED_KEY_ECDSA")
	probe "${args[@]}" run -- true
	expect_status 0 || return 1

	mapfile -t args < <(node 1 --key "$work/no-such-key")
	probe "${args[@]}" run -- true
	expect_status 3 && expect_error "cannot read key file" || return 1

	# A test-only key that node1 does not accept: "server rejected the key".
	mapfile -t args < <(node 1 --key "$root/tests/fixtures/ssh/test-only-ecdsa384-pem")
	cp "$root/tests/fixtures/ssh/test-only-ecdsa384-pem" "$work/pem-key"
	chmod 0600 "$work/pem-key"
	mapfile -t args < <(node 1 --key "$work/pem-key")
	probe "${args[@]}" run -- true
	expect_status 6 && expect_error "rejected key" "authorized_keys" || return 1

	cp "$root/tests/fixtures/ssh/test-only-ed25519-encrypted" "$work/encrypted-key"
	chmod 0600 "$work/encrypted-key"
	mapfile -t args < <(node 1 --key "$work/encrypted-key")
	probe "${args[@]}" run -- true
	expect_status 3 && expect_error "is encrypted" "passphraseEnv" || return 1
	mapfile -t args < <(node 1 --key "$work/encrypted-key" --passphrase-env MLB_TEST_PASSPHRASE)
	MLB_TEST_PASSPHRASE=wrong probe "${args[@]}" run -- true
	expect_status 3 && expect_error "cannot use key file" || return 1
	# The right passphrase opens the key; node1 does not list it, so the server rejects it.
	MLB_TEST_PASSPHRASE=test-only-passphrase probe "${args[@]}" run -- true
	expect_status 6 && expect_error "rejected key"
}

case_stopped_sshd() {
	"$testbed/stop-sshd" node2 >/dev/null 2>&1 || return 1
	mapfile -t args < <(node 1; node 2; node 3)
	probe "${args[@]}" run -- hostname
	local result=0
	expect_status 5 && expect_error "host 'node2'" "$MLB_NODE2_ADDR" || result=1
	grep -qx node1 "$work/out" && grep -qx node3 "$work/out" || { cat "$work/out" >&2; result=1; }
	"$testbed/start-sshd" node2 >/dev/null 2>&1 || result=1
	return $result
}

case_sudo_user() {
	mapfile -t args < <(node 2 --user "$MLB_TESTBED_SUDO_USER")
	probe "${args[@]}" --raw run -- id -un
	expect_status 0 && [ "$(cat "$work/out")" = "$MLB_TESTBED_SUDO_USER" ] || return 1
	mapfile -t args < <(node 2 --user "$MLB_TESTBED_SUDO_USER" --sudo)
	probe "${args[@]}" --raw run -- id -un
	expect_status 0 && [ "$(cat "$work/out")" = root ]
}

case_sudo_password_detected() {
	local start elapsed result=0
	MLB_TESTBED_SUDO_PASSWORD=test-only-sudo-password "$testbed/up" 3 >/dev/null 2>&1 || return 1
	mapfile -t args < <(node 2 --user "$MLB_TESTBED_SUDO_USER" --sudo)
	start=$SECONDS
	probe "${args[@]}" run -- id -un
	elapsed=$((SECONDS - start))
	expect_status 6 && expect_error "host 'node2'" "sudo requires a password" "NOPASSWD" ||
		result=1
	[ "$elapsed" -lt 10 ] || { echo "took $elapsed s: sudo waited for a password" >&2; result=1; }
	"$testbed/up" 3 >/dev/null 2>&1 || result=1
	return $result
}

case_bastion() {
	local bastion=(--bastion-address "$MLB_NODE1_ADDR" --bastion-key "$MLB_TESTBED_KEY_ED25519"
		--bastion-known-hosts "$MLB_TESTBED_KNOWN_HOSTS")
	local before
	before=$(grep -c "Accepted publickey for root from $MLB_NODE1_ADDR" "$MLB_NODE3_SSHD_LOG")
	mapfile -t args < <(node 3 "${bastion[@]}")
	probe "${args[@]}" --raw run -- hostname
	expect_status 0 && [ "$(cat "$work/out")" = node3 ] || return 1
	# node3 saw the connection come from node1, the bastion.
	[ "$(grep -c "Accepted publickey for root from $MLB_NODE1_ADDR" "$MLB_NODE3_SSHD_LOG")" -gt "$before" ] ||
		return 1

	# A wrong pin on the bastion fails and names the bastion's fingerprints.
	mapfile -t args < <(node 3 "${bastion[@]}" --bastion-host-key "$MLB_NODE2_HOSTKEY_ED25519")
	probe "${args[@]}" run -- hostname
	expect_status 6 && expect_error "host 'node3'" "$MLB_NODE1_ADDR" "$MLB_NODE1_HOSTKEY_ED25519" ||
		return 1

	# Upload through the bastion.
	head -c 3000000 /dev/urandom >"$work/bastion.bin"
	mapfile -t args < <(node 3 "${bastion[@]}")
	probe "${args[@]}" upload "$work/bastion.bin" /tmp/bastion.bin
	expect_status 0 || return 1
	grep -q "sha256=$(sha256sum <"$work/bastion.bin" | cut -c1-64)" "$work/out"
}

case_bastion_only_route() {
	local result=0
	MLB_TESTBED_BASTION_ONLY=1 "$testbed/up" 3 >/dev/null 2>&1 || return 1
	mapfile -t args < <(node 3)
	"$probe_bin" --connect-timeout 1000 "${args[@]}" run -- true >"$work/out" 2>"$work/err"
	status=$?
	expect_status 5 && expect_error "host 'node3'" "timed out" || result=1
	mapfile -t args < <(node 3 --bastion-address "$MLB_NODE1_ADDR" \
		--bastion-key "$MLB_TESTBED_KEY_ED25519" --bastion-known-hosts "$MLB_TESTBED_KNOWN_HOSTS")
	probe "${args[@]}" --raw run -- hostname
	expect_status 0 && [ "$(cat "$work/out")" = node3 ] || result=1
	"$testbed/up" 3 >/dev/null 2>&1 || result=1
	return $result
}

case_missing_exit_status() {
	mapfile -t args < <(node 1)
	# Killing the wrapper shell leaves no exit status line.
	probe "${args[@]}" run -- sh -c 'kill -KILL $PPID; sleep 1'
	expect_status 1 && expect_error "host 'node1'" "without reporting an exit status"
}

case_command_time_limit() {
	local start=$SECONDS
	mapfile -t args < <(node 1)
	probe --command-timeout 1000 "${args[@]}" run -- sleep 20
	expect_status 1 && expect_error "host 'node1'" "time limit" || return 1
	[ $((SECONDS - start)) -lt 8 ]
}

# A TCP proxy on loopback that forwards to node1's sshd and cuts the
# connection (with a reset) after LIMIT bytes from the client.
start_cutting_proxy() {
	local limit=$1
	rm -f "$work/proxy.port"
	python3 - "$work/proxy.port" "$MLB_NODE1_ADDR" "$limit" <<'EOF' &
import socket, struct, sys, threading
port_file, target, limit = sys.argv[1], sys.argv[2], int(sys.argv[3])
server = socket.socket()
server.bind(("127.0.0.1", 0))
server.listen(1)
server.settimeout(60)
with open(port_file + ".new", "w") as f:
    f.write(str(server.getsockname()[1]))
import os
os.rename(port_file + ".new", port_file)
client, _ = server.accept()
upstream = socket.create_connection((target, 22), timeout=60)
client.settimeout(60)
def copy_down():
    try:
        while True:
            data = upstream.recv(65536)
            if not data:
                break
            client.sendall(data)
    except OSError:
        pass
threading.Thread(target=copy_down, daemon=True).start()
sent = 0
while sent < limit:
    data = client.recv(65536)
    if not data:
        break
    data = data[: limit - sent]
    upstream.sendall(data)
    sent += len(data)
# Reset both connections, as a dropped link or a killed peer would.
for s in (client, upstream):
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()
EOF
	proxy_pid=$!
	mlb_wait_until 10 test -s "$work/proxy.port"
}

case_upload_cut_and_resumed() {
	local size=$((48 * 1024 * 1024)) port resumed sent sha remote
	head -c "$size" /dev/urandom >"$work/resume.bin"
	sha=$(sha256sum <"$work/resume.bin" | cut -c1-64)
	mapfile -t args < <(node 1)
	probe "${args[@]}" run -- rm -f /tmp/resume.bin /tmp/.resume.bin.mlboot-part

	start_cutting_proxy $((16 * 1024 * 1024)) || return 1
	port=$(cat "$work/proxy.port")
	probe --host node1 --address 127.0.0.1 --port "$port" --key "$MLB_TESTBED_KEY_ED25519" \
		--host-key "$MLB_NODE1_HOSTKEY_ED25519" upload "$work/resume.bin" /tmp/resume.bin
	wait "$proxy_pid"
	proxy_pid=
	expect_status 5 && expect_error "host 'node1'" "lost" || return 1
	# The node's cat may still be writing what it received.
	sleep 1

	probe "${args[@]}" upload "$work/resume.bin" /tmp/resume.bin
	expect_status 0 || return 1
	resumed=$(sed -n 's/.* resumed=\([0-9]*\) .*/\1/p' "$work/out")
	sent=$(sed -n 's/.* sent=\([0-9]*\) .*/\1/p' "$work/out")
	echo "resumed from $resumed bytes, sent $sent of $size" >&2
	[ "$resumed" -gt 0 ] && [ "$sent" -lt "$size" ] && [ $((resumed + sent)) -eq "$size" ] ||
		{ cat "$work/out" >&2; return 1; }
	grep -q "sha256=$sha" "$work/out" || return 1
	remote=$("$testbed/node-exec" node1 sha256sum /tmp/resume.bin | cut -c1-64)
	[ "$remote" = "$sha" ] || { echo "node has $remote, expected $sha" >&2; return 1; }
	! "$testbed/node-exec" node1 test -e /tmp/.resume.bin.mlboot-part
}

# A TCP proxy on loopback for the sessions of one split upload. Connection
# N (1-based) goes to the Nth address of the comma-separated TARGETS, or to
# the last one. Connection CUT is reset after LIMIT bytes from the client,
# and the others are forwarded whole. It serves up to 4 connections.
start_session_proxy() {
	local targets=$1 cut=$2 limit=$3
	rm -f "$work/proxy.port"
	python3 - "$work/proxy.port" "$targets" "$cut" "$limit" <<'EOF' &
import os, socket, struct, sys, threading
port_file, targets, cut, limit = sys.argv[1], sys.argv[2].split(","), int(sys.argv[3]), int(sys.argv[4])
server = socket.socket()
server.bind(("127.0.0.1", 0))
server.listen(4)
server.settimeout(60)
with open(port_file + ".new", "w") as f:
    f.write(str(server.getsockname()[1]))
os.rename(port_file + ".new", port_file)

def copy(source, sink, limit):
    sent = 0
    try:
        while limit is None or sent < limit:
            data = source.recv(65536)
            if not data:
                break
            if limit is not None:
                data = data[: limit - sent]
            sink.sendall(data)
            sent += len(data)
    except OSError:
        pass
    if limit is not None:
        # Reset both connections, as a dropped link or a killed peer would.
        for s in (source, sink):
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            s.close()
    else:
        try:
            sink.shutdown(socket.SHUT_WR)
        except OSError:
            pass

threads = []
for number in range(1, 5):
    try:
        client, _ = server.accept()
    except socket.timeout:
        break
    upstream = socket.create_connection((targets[min(number, len(targets)) - 1], 22), timeout=60)
    client.settimeout(60)
    for args in ((upstream, client, None), (client, upstream, limit if number == cut else None)):
        thread = threading.Thread(target=copy, args=args, daemon=True)
        thread.start()
        threads.append(thread)
    server.settimeout(10)
for thread in threads:
    thread.join(120)
EOF
	proxy_pid=$!
	mlb_wait_until 10 test -s "$work/proxy.port"
}

# Counts the sessions node I's sshd accepted for root from ADDRESS (default:
# the root namespace).
accepted_sessions() {
	local log=MLB_NODE${1}_SSHD_LOG
	grep -c "Accepted publickey for root from ${2:-$MLB_TESTBED_BRIDGE_ADDR} " "${!log}"
}

case_split_upload() {
	local size=$((80 * 1024 * 1024 + 17)) sha before remote
	head -c "$size" /dev/urandom >"$work/split.bin"
	sha=$(sha256sum <"$work/split.bin" | cut -c1-64)
	mapfile -t args < <(node 1)
	before=$(accepted_sessions 1)
	probe "${args[@]}" upload "$work/split.bin" /tmp/split.bin
	expect_status 0 || return 1
	grep -q "resumed=0 sent=$size sha256=$sha" "$work/out" || { cat "$work/out" >&2; return 1; }
	# The caller's session and one extra session for the second range.
	[ "$(accepted_sessions 1)" -eq $((before + 2)) ] ||
		{ echo "expected 2 new sessions, got $(($(accepted_sessions 1) - before))" >&2; return 1; }
	remote=$("$testbed/node-exec" node1 sha256sum /tmp/split.bin | cut -c1-64)
	[ "$remote" = "$sha" ] || { echo "node has $remote, expected $sha" >&2; return 1; }
	! "$testbed/node-exec" node1 test -e /tmp/.split.bin.mlboot-part
}

case_split_upload_cut_and_resumed() {
	local size=$((80 * 1024 * 1024)) half=$((40 * 1024 * 1024)) port resumed sent sha remote
	head -c "$size" /dev/urandom >"$work/split-resume.bin"
	sha=$(sha256sum <"$work/split-resume.bin" | cut -c1-64)
	mapfile -t args < <(node 1)
	probe "${args[@]}" run -- rm -f /tmp/split-resume.bin /tmp/.split-resume.bin.mlboot-part

	# The second session (one of the two 40 MiB ranges) is cut after 16 MiB.
	start_session_proxy "$MLB_NODE1_ADDR" 2 $((16 * 1024 * 1024)) || return 1
	port=$(cat "$work/proxy.port")
	probe --host node1 --address 127.0.0.1 --port "$port" --key "$MLB_TESTBED_KEY_ED25519" \
		--host-key "$MLB_NODE1_HOSTKEY_ED25519" upload "$work/split-resume.bin" /tmp/split-resume.bin
	wait "$proxy_pid"
	proxy_pid=
	expect_status 5 && expect_error "host 'node1'" "lost" || return 1
	! "$testbed/node-exec" node1 test -e /tmp/split-resume.bin || return 1
	# The node's dd may still be writing what it received.
	sleep 1

	probe "${args[@]}" upload "$work/split-resume.bin" /tmp/split-resume.bin
	expect_status 0 || return 1
	resumed=$(sed -n 's/.* resumed=\([0-9]*\) .*/\1/p' "$work/out")
	sent=$(sed -n 's/.* sent=\([0-9]*\) .*/\1/p' "$work/out")
	echo "resumed from $resumed bytes, sent $sent of $size" >&2
	# The uncut range arrived whole; the cut one resumes at a block boundary.
	[ "$resumed" -ge "$half" ] && [ "$sent" -gt 0 ] && [ "$sent" -le "$half" ] &&
		[ $((resumed + sent)) -eq "$size" ] || { cat "$work/out" >&2; return 1; }
	grep -q "sha256=$sha" "$work/out" || return 1
	remote=$("$testbed/node-exec" node1 sha256sum /tmp/split-resume.bin | cut -c1-64)
	[ "$remote" = "$sha" ] || { echo "node has $remote, expected $sha" >&2; return 1; }
	! "$testbed/node-exec" node1 test -e /tmp/.split-resume.bin.mlboot-part
}

case_split_upload_wrong_digest() {
	local wrong=0000000000000000000000000000000000000000000000000000000000000000
	head -c $((70 * 1024 * 1024)) /dev/urandom >"$work/split-wrong.bin"
	mapfile -t args < <(node 1)
	probe "${args[@]}" --sha256 "$wrong" upload "$work/split-wrong.bin" /tmp/split-wrong.bin
	expect_status 4 && expect_error "host 'node1'" "arrived with sha256" "$wrong" || return 1
	! "$testbed/node-exec" node1 test -e /tmp/split-wrong.bin &&
		! "$testbed/node-exec" node1 test -e /tmp/.split-wrong.bin.mlboot-part
}

case_split_upload_other_host_rejected() {
	local port
	head -c $((70 * 1024 * 1024)) /dev/urandom >"$work/split-other.bin"
	# The first session reaches node1. The second one, through the same
	# address, reaches node2 and must fail node1's pinned host key.
	start_session_proxy "$MLB_NODE1_ADDR,$MLB_NODE2_ADDR" 0 0 || return 1
	port=$(cat "$work/proxy.port")
	probe --host node1 --address 127.0.0.1 --port "$port" --key "$MLB_TESTBED_KEY_ED25519" \
		--host-key "$MLB_NODE1_HOSTKEY_ED25519" upload "$work/split-other.bin" /tmp/split-other.bin
	kill "$proxy_pid" 2>/dev/null
	wait "$proxy_pid" 2>/dev/null
	proxy_pid=
	expect_status 6 &&
		expect_error "host 'node1'" "host key verification failed" \
			"$MLB_NODE1_HOSTKEY_ED25519" "$MLB_NODE2_HOSTKEY_ED25519" || return 1
	! "$testbed/node-exec" node1 test -e /tmp/split-other.bin &&
		! "$testbed/node-exec" node2 test -e /tmp/split-other.bin &&
		! "$testbed/node-exec" node2 test -e /tmp/.split-other.bin.mlboot-part
}

case_split_upload_through_bastion() {
	local sha before
	head -c $((72 * 1024 * 1024 + 5)) /dev/urandom >"$work/split-bastion.bin"
	sha=$(sha256sum <"$work/split-bastion.bin" | cut -c1-64)
	before=$(accepted_sessions 3 "$MLB_NODE1_ADDR")
	mapfile -t args < <(node 3 --bastion-address "$MLB_NODE1_ADDR" \
		--bastion-key "$MLB_TESTBED_KEY_ED25519" --bastion-known-hosts "$MLB_TESTBED_KNOWN_HOSTS")
	probe "${args[@]}" upload "$work/split-bastion.bin" /tmp/split-bastion.bin
	expect_status 0 && grep -q "sha256=$sha" "$work/out" || return 1
	# Both sessions reached node3 through node1.
	[ "$(accepted_sessions 3 "$MLB_NODE1_ADDR")" -eq $((before + 2)) ] || return 1
	[ "$("$testbed/node-exec" node3 sha256sum /tmp/split-bastion.bin | cut -c1-64)" = "$sha" ]
}

case_hostile_names() {
	local name
	local -a names=(
		"with space" "it's" '"double"' '$(touch pwned)' '`touch pwned`' $'new\nline'
		"-leading-dash" $'\xff\xfe-not-utf8' "semi;colon&amp|pipe" "*" "..dots.."
		$'tab\tname' "trailing space " "back\\slash"
	)
	echo "hostile names test file" >"$work/hostile.txt"
	mapfile -t args < <(node 1)
	probe "${args[@]}" run -- sh -c 'rm -rf /tmp/hostile-names && mkdir /tmp/hostile-names'
	expect_status 0 || return 1
	for name in "${names[@]}"; do
		probe "${args[@]}" upload "$work/hostile.txt" "/tmp/hostile-names/$name"
		expect_status 0 || return 1
	done
	probe "${args[@]}" --raw run -- find /tmp/hostile-names -mindepth 1 -maxdepth 1 -printf '%f\0'
	expect_status 0 || return 1
	printf '%s\0' "${names[@]}" >"$work/expected-names"
	python3 - "$work/expected-names" "$work/out" <<'EOF' || return 1
import sys
expected = sorted(open(sys.argv[1], "rb").read().split(b"\0")[:-1])
listed = sorted(open(sys.argv[2], "rb").read().split(b"\0")[:-1])
if expected != listed:
    print("expected", expected, "\nlisted  ", listed, file=sys.stderr)
    sys.exit(1)
EOF
	# The contents arrived too, and no name ran as a command.
	probe "${args[@]}" --raw run -- cat "/tmp/hostile-names/\$(touch pwned)"
	[ "$(cat "$work/out")" = "hostile names test file" ] || return 1
	! "$testbed/node-exec" node1 test -e /tmp/hostile-names/pwned &&
		! "$testbed/node-exec" node1 test -e /root/pwned &&
		! "$testbed/node-exec" node1 test -e /pwned
}

check "run on 3 nodes in parallel" case_parallel_run
check "exit status and output streams" case_exit_status_and_streams
check "wrong pinned host key" case_wrong_pinned_key
check "changed known_hosts key" case_changed_known_hosts_key
check "key of another type recorded" case_other_key_type_recorded
check "unknown host rejected then accepted" case_unknown_host_then_accepted
check "host key type preference" case_host_key_type_preference
check "user key errors" case_user_keys
check "stopped sshd on one node" case_stopped_sshd
check "sudo user" case_sudo_user
check "sudo password detected" case_sudo_password_detected
check "bastion hop" case_bastion
check "bastion as the only route" case_bastion_only_route
check "missing exit status" case_missing_exit_status
check "command time limit" case_command_time_limit
check "upload cut and resumed" case_upload_cut_and_resumed
check "hostile file names" case_hostile_names
check "split upload over two sessions" case_split_upload
check "split upload cut and resumed" case_split_upload_cut_and_resumed
check "split upload with a wrong digest" case_split_upload_wrong_digest
check "split upload session to another host" case_split_upload_other_host_rejected
check "split upload through a bastion" case_split_upload_through_bastion

echo "ssh transport: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
