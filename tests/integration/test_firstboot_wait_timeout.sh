#!/usr/bin/env bash
# The wait of "mlboot install --unattended" when nothing comes up, without
# systemd: the bundle file is missing, and the API server and the host's
# SSH port are loopback ports that nothing listens on. The install timeout
# of mlboot.yaml is 6 s.
#
# Proves that:
#   - the wait gives up after the install timeout with exit status 5
#     (unreachable), and not much later;
#   - it logs one error for each thing that never responded: the bundle,
#     the API server and the host, each with its last error;
#   - it logs what it waits for once while that does not change;
#   - the bundle appearing ends its part of the wait;
#   - with the done-stamp present, it does nothing and exits 0.
#
# Exit status: 0 pass, 77 skip (no python3 or ssh-keygen), 1 fail.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.sh
. "$here/lib.sh"

[ -x "${MLBOOT:-}" ] || mlb_die "MLBOOT is not set to the mlboot binary; run through tests/run"
command -v python3 >/dev/null || mlb_skip "python3 is not installed"
command -v ssh-keygen >/dev/null || mlb_skip "ssh-keygen is not installed"

work=$(mktemp -d /tmp/mlb-test-firstboot-timeout.XXXXXX)
trap 'rm -rf "$work"' EXIT
failures=0
check() {
	local what=$1
	shift
	if "$@"; then
		mlb_log "ok: $what"
	else
		mlb_log "FAIL: $what"
		failures=$((failures + 1))
	fi
}

# Runs the unattended install with the stamp folder in the work folder;
# sets status and leaves its stderr in $work/err.
run_unattended() {
	status=0
	STATE_DIRECTORY=$work/state "$MLBOOT" install --unattended -f "$work/mlboot.yaml" \
		>"$work/out" 2>"$work/err" || status=$?
	sed 's/^/  | /' "$work/err" >&2
}

# Two loopback ports that nothing listens on: each socket is bound, its port
# read, and the socket closed again.
read -r api_port ssh_port < <(python3 -c '
import socket
ports = []
for _ in range(2):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    ports.append(s.getsockname()[1])
    s.close()
print(*ports)')

ssh-keygen -q -t ed25519 -N '' -f "$work/id_ed25519"
: >"$work/known_hosts"
cat >"$work/kubeconfig" <<KUBECONFIG
apiVersion: v1
kind: Config
clusters:
- name: down
  cluster:
    server: https://127.0.0.1:$api_port
    insecure-skip-tls-verify: true
users:
- name: admin
  user:
    token: not-a-real-token
contexts:
- name: down
  context: {cluster: down, user: admin}
current-context: down
KUBECONFIG
cat >"$work/mlboot.yaml" <<CONFIG
apiVersion: mlboot.dev/v1alpha1
kind: Platform
metadata:
  name: timeout
spec:
  bundle: $work/platform.bundle
  kubeconfig:
    path: $work/kubeconfig
  hosts:
    - name: w1
      role: control-plane
      ssh:
        address: 127.0.0.1
        port: $ssh_port
        keyPath: $work/id_ed25519
        knownHosts: $work/known_hosts
  timeouts:
    component: 5s
    install: 6s
  stateDir: $work/state
CONFIG

start=$SECONDS
run_unattended
elapsed=$((SECONDS - start))
check "the wait ends with exit status 5 (unreachable), got $status" test "$status" -eq 5
check "the wait ends after the 6 s timeout, not much later ($elapsed s)" \
	test "$elapsed" -ge 6 -a "$elapsed" -le 20
check "the missing bundle is named" \
	grep -q "error: the bundle '$work/platform.bundle' did not appear within 6 s: No such file or directory" "$work/err"
check "the API server is named with its last error" \
	grep -q "error: the API server did not respond within 6 s: .*127.0.0.1:$api_port" "$work/err"
check "the host is named" grep -q "error: no SSH login within 6 s: host 'w1'" "$work/err"
waits=$(grep -c "waiting for" "$work/err" || true)
check "the unchanged wait is logged once ($waits)" test "$waits" -eq 1
check "no done-stamp after a failed wait" test ! -e "$work/state/install.done"

# The bundle appears while it waits: it drops out of what the wait names.
(
	sleep 2
	: >"$work/platform.bundle"
) &
run_unattended
wait
check "the second wait also ends with exit status 5, got $status" test "$status" -eq 5
check "the bundle is reported present" grep -q "the bundle '$work/platform.bundle' is present" "$work/err"
check "the bundle is not among what never responded" \
	bash -c "! grep -q 'the bundle .* did not appear' '$work/err'"
check "the changed wait is logged again" \
	grep -q "waiting for the API server https://127.0.0.1:$api_port, SSH on host 'w1'" "$work/err"

# With the done-stamp, nothing runs.
mkdir -p "$work/state"
echo "finished: test" >"$work/state/install.done"
run_unattended
check "with the done-stamp it exits 0, got $status" test "$status" -eq 0
check "with the done-stamp it says so" grep -q "finished before" "$work/err"
check "with the done-stamp it waits for nothing" bash -c "! grep -q 'waiting for' '$work/err'"

if [ "$failures" -gt 0 ]; then
	mlb_die "$failures checks failed"
fi
mlb_log "all checks passed"
