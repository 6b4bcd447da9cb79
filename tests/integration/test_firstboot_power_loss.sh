#!/usr/bin/env bash
# A power cut in the middle of the first-boot install: the container
# (systemd as PID 1) is killed with SIGKILL to its PID 1 while images are
# on their way to node2, then booted again.
#
# node2's link is slowed to 2 Mbit/s (tc tbf on its bridge port), so that
# node1 has its images while node2's transfer is still running when the
# power goes.
#
# Proves that:
#   - after the cut, the next boot starts the install again, which resumes
#     from the install journal and completes: the done-stamp exists;
#   - no step of the install journal is done twice; images/node1, done
#     before the cut, is not started again, and images/node2, cut short, is;
#   - the first run after the cut succeeds: no step fails, for example
#     because content that the cut import left on node2 was taken as there;
#   - the second run says that it skipped the steps done before.
#
# The kill ends every process of the container at once, but the host keeps
# unwritten file data in its page cache: this tests resumption after the
# processes die anywhere, not that fsync reaches a disk.
#
# Exit status: 0 pass, 77 skip (not root, no namespaces), 1 fail.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.sh
. "$here/lib.sh"
# shellcheck source=lib/nspawn.sh
. "$here/lib/nspawn.sh"
# shellcheck source=lib/firstboot.sh
. "$here/lib/firstboot.sh"

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

# Number of records of STEP with EVENT (start, done, failed) in the install journal.
journal_count() {
	local step=$1 event=$2
	grep -F "\"step\":\"$step\"" "$NSPAWN_DIR/root/var/lib/mlboot/journal" 2>/dev/null |
		grep -cF "\"event\":\"$event\"" || true
}

node2_transfer_running() {
	[ "$(journal_count images/node1 "done")" -ge 1 ] && [ "$(journal_count images/node2 start)" -ge 1 ]
}

trap firstboot_cleanup EXIT
FIRSTBOOT_LAYER_BYTES=$((4 * 1024 * 1024))
firstboot_setup fbpwr
firstboot_standin_start

node2_port=$MLB_TESTBED_PREFIX-n2
tc qdisc add dev "$node2_port" root tbf rate 2mbit burst 32kbit latency 2s

nspawn_boot
firstboot_wait_for 120 "node1's images to be done and node2's to be on their way" node2_transfer_running ||
	mlb_die "the image transfer did not reach the point of the cut"
sleep 3
check "images/node2 is not done when the power goes" test "$(journal_count images/node2 "done")" -eq 0
mlb_log "cutting the power (SIGKILL to the container's PID 1)"
nspawn_kill
cp "$NSPAWN_DIR/root/var/lib/mlboot/journal" "$FIRSTBOOT_WORK/journal-at-cut.txt"
check "no done-stamp after the cut" test ! -e "$NSPAWN_DIR/root$FIRSTBOOT_STAMP"

tc qdisc del dev "$node2_port" root
nspawn_boot
firstboot_wait_for 180 "the done-stamp after the second boot" nspawn_exec test -f "$FIRSTBOOT_STAMP" ||
	mlb_die "the install did not finish after the power came back"
firstboot_wait_for 60 "the unit to finish" firstboot_unit_is mlboot-install.service ActiveState inactive || true
cp "$NSPAWN_DIR/root/var/lib/mlboot/journal" "$FIRSTBOOT_WORK/journal-after.txt"

check "the unit succeeded after the power cut" \
	test "$(firstboot_unit_property mlboot-install.service Result)" = success
mapfile -t steps < <(sed -n 's/.*"step":"\([^"]*\)".*/\1/p' "$FIRSTBOOT_WORK/journal-after.txt" | sort -u)
check "the install journal has steps (${#steps[@]})" test "${#steps[@]}" -ge 5
for step in "${steps[@]}"; do
	done_count=$(journal_count "$step" "done")
	check "step $step is done once ($done_count)" test "$done_count" -eq 1
done
check "images/node1, done before the cut, was not started again" \
	test "$(journal_count images/node1 start)" -eq 1
check "images/node2, cut short, was started again" test "$(journal_count images/node2 start)" -ge 2
failed_attempts=$(grep -c '"event":"failed"' "$FIRSTBOOT_WORK/journal-after.txt" || true)
grep '"event":"failed"' "$FIRSTBOOT_WORK/journal-after.txt" >&2 || true
check "the first run after the cut completed without a failed step ($failed_attempts failed)" \
	test "$failed_attempts" -eq 0
boot2=$(firstboot_install_journal -b 0)
check "the second run skipped the step done before the cut" \
	grep -q "images/node1: done before with the same inputs; skipped" <<<"$boot2"
check "the second run imported node2's images" grep -q "images/node2: .* imported" <<<"$boot2"
check "the second run finished" grep -q "unattended install finished" <<<"$boot2"
nspawn_poweroff

if [ "$failures" -gt 0 ]; then
	mlb_die "$failures checks failed"
fi
mlb_log "all checks passed"
