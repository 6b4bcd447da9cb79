#!/usr/bin/env bash
# First boot under systemd, with the cluster not ready yet: a Debian 12
# container (systemd as PID 1) with mlboot, its units, a bundle and an
# mlboot.yaml boots while the API server is down and node2's sshd is
# stopped. Both come up 30 seconds later.
#
# Proves that:
#   - mlboot-install.service starts at boot and waits: it logs what it waits
#     for (the API server and SSH on node2), and "systemctl status" shows it
#     as the unit's STATUS= text, while the unit stays "activating";
#   - the wait is not logged more than once a minute while nothing changes;
#   - once both respond, the install completes on the first run (no
#     restart), writes the done-stamp and the final check report, and the
#     motd snippet reports that the install finished;
#   - a second boot does not run the install again (the unit's condition
#     on the done-stamp), and the stamp is unchanged.
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

trap firstboot_cleanup EXIT
firstboot_setup fbwt

# node2 does not accept SSH logins and the API server is down when the machine boots.
firstboot_testbed stop-sshd node2
nspawn_boot
boot_time=$SECONDS

firstboot_wait_for 30 "the install to log its wait" firstboot_journal_has "waiting for" || true
journal=$(firstboot_install_journal)
check "the install logs that it waits for the API server" \
	grep -q "waiting for .*the API server" <<<"$journal"
check "the install logs that it waits for SSH on node2" \
	grep -q "waiting for .*SSH on host 'node2'" <<<"$journal"
check "node1 accepted the SSH login at once" grep -q "host 'node1' accepted the SSH login" <<<"$journal"
status_text=$(firstboot_unit_property mlboot-install.service StatusText)
mlb_log "STATUS= while waiting: $status_text"
check "systemctl status shows what the install waits for" grep -q "^waiting for" <<<"$status_text"
state=$(firstboot_unit_property mlboot-install.service ActiveState)
check "the unit is activating while it waits (ActiveState=$state)" test "$state" = activating
motd=$(nspawn_exec /etc/update-motd.d/60-mlboot)
mlb_log "motd while waiting: $motd"
check "the motd says the install is running" grep -q "install is RUNNING" <<<"$motd"

# The API server and node2 come up 30 seconds after boot.
sleep $((30 - (SECONDS - boot_time) > 0 ? 30 - (SECONDS - boot_time) : 0))
firstboot_standin_start
firstboot_testbed start-sshd node2

firstboot_wait_for 180 "the done-stamp" nspawn_exec test -f "$FIRSTBOOT_STAMP" ||
	mlb_die "the install did not finish within 180 s of the cluster coming up"
firstboot_wait_for 60 "the unit to finish" \
	firstboot_unit_is mlboot-install.service ActiveState inactive || true
journal=$(firstboot_install_journal)
printf '%s\n' "$journal" >"$FIRSTBOOT_WORK/journal-boot1.txt"
check "the API server responded after the wait" grep -q "the API server .* responded after" <<<"$journal"
waited=$(sed -n "s/.*host 'node2' accepted the SSH login after \([0-9]*\) s.*/\1/p" <<<"$journal" | head -n 1)
check "node2 accepted the SSH login after about 30 s (${waited:-?} s)" test "${waited:-0}" -ge 20
waits_logged=$(grep -c "waiting for" <<<"$journal" || true)
check "the wait was logged at most 3 times in 30 s ($waits_logged)" test "$waits_logged" -le 3
check "the install finished" grep -q "unattended install finished" <<<"$journal"
check "the unit succeeded" test "$(firstboot_unit_property mlboot-install.service Result)" = success
check "the unit did not need a restart" test "$(firstboot_unit_property mlboot-install.service NRestarts)" = 0
check "the unit is inactive after success" \
	test "$(firstboot_unit_property mlboot-install.service ActiveState)" = inactive
status_text=$(firstboot_unit_property mlboot-install.service StatusText)
mlb_log "STATUS= at the end: $status_text"
check "the final STATUS= names the done-stamp" grep -q "install.done" <<<"$status_text"
check "the done-stamp names the config" nspawn_exec grep -q "^config: $FIRSTBOOT_CONFIG" "$FIRSTBOOT_STAMP"
check "the final check report is saved" nspawn_exec sh -c 'ls /var/lib/mlboot/reports/install-*.json'
motd=$(nspawn_exec /etc/update-motd.d/60-mlboot)
check "the motd says the install finished" grep -q "install finished" <<<"$motd"
steps_done=$(nspawn_exec grep -c '"event":"done"' /var/lib/mlboot/journal || true)
check "the install journal records done steps ($steps_done)" test "${steps_done:-0}" -ge 5
stamp_before=$(nspawn_exec stat -c '%Y %s' "$FIRSTBOOT_STAMP")

# Second boot: the unit's condition keeps the install from running again.
nspawn_poweroff
nspawn_boot
firstboot_wait_for 60 "the second boot to finish starting" firstboot_system_started || true
condition=$(firstboot_unit_property mlboot-install.service ConditionResult)
check "the condition on the done-stamp failed on the second boot (ConditionResult=$condition)" \
	test "$condition" = no
check "the install did not run on the second boot" \
	test "$(firstboot_unit_property mlboot-install.service ExecMainPID)" = 0
check "the done-stamp is unchanged" test "$(nspawn_exec stat -c '%Y %s' "$FIRSTBOOT_STAMP")" = "$stamp_before"
runs=$(firstboot_install_journal | grep -c "unattended install of" || true)
check "the install ran in one boot only ($runs runs in all)" test "$runs" -eq 1
nspawn_poweroff

if [ "$failures" -gt 0 ]; then
	mlb_die "$failures checks failed"
fi
mlb_log "all checks passed"
