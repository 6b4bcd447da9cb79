#!/usr/bin/env bash
# First boot with broken settings: the container (systemd as PID 1) boots
# with an unknown option in MLBOOT_INSTALL_OPTIONS of mlboot.env and an
# invalid port in mlboot.yaml; then each is fixed in turn.
#
# Proves that:
#   - a bad command line (exit status 2) is not retried on a timer: the unit
#     stays failed, and the motd snippet says so;
#   - a change in /etc/mlboot starts it at once (mlboot-install.path);
#   - an invalid mlboot.yaml fails with exit status 3 and a journal message
#     at error priority naming the file, the line and the field, also shown
#     as STATUS=;
#   - while it stays invalid, attempts are RestartSec= apart (5 s here);
#   - once it is fixed, the next attempt installs and writes the done-stamp,
#     and a later change in /etc/mlboot does not start the install again.
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
firstboot_setup fbcfg
firstboot_standin_start
root=$NSPAWN_DIR/root
config=$root$FIRSTBOOT_CONFIG
env_file=$root/etc/mlboot/mlboot.env

# Both mistakes are in place before the first boot.
cp "$config" "$FIRSTBOOT_WORK/mlboot.yaml.good"
cp "$env_file" "$FIRSTBOOT_WORK/mlboot.env.good"
echo "MLBOOT_INSTALL_OPTIONS=--no-such-option" >>"$env_file"
address_line=$(grep -n "address: $MLB_NODE2_ADDR" "$config" | cut -d: -f1)
sed -i "${address_line}a\\        port: 99999" "$config"
bad_line=$((address_line + 1))

nspawn_boot
firstboot_wait_for 30 "the unit to fail on the unknown option" \
	firstboot_unit_is mlboot-install.service ActiveState failed ||
	mlb_die "the unit did not fail on the unknown option"
check "the journal names the unknown option" firstboot_journal_has "unknown option '--no-such-option'"
check "the exit status is 2" test "$(firstboot_unit_property mlboot-install.service ExecMainStatus)" = 2
sleep 8
check "a bad command line is not retried on a timer (still failed after 8 s)" \
	firstboot_unit_is mlboot-install.service ActiveState failed
check "no restart happened" test "$(firstboot_unit_property mlboot-install.service NRestarts)" = 0
motd=$(nspawn_exec /etc/update-motd.d/60-mlboot)
mlb_log "motd: $motd"
check "the motd says the install failed" grep -q "install FAILED" <<<"$motd"
check "the motd names the command that shows why" grep -q "journalctl -u mlboot-install" <<<"$motd"

# Fixing mlboot.env starts the unit at once, which now reads the bad mlboot.yaml.
fixed_at=$SECONDS
cp "$FIRSTBOOT_WORK/mlboot.env.good" "$env_file"
firstboot_wait_for 20 "the configuration error in the journal" \
	firstboot_journal_has "$FIRSTBOOT_CONFIG:$bad_line:" ||
	mlb_die "no journal message names $FIRSTBOOT_CONFIG:$bad_line"
started_after=$((SECONDS - fixed_at))
check "the change in /etc/mlboot started the unit at once (${started_after} s)" test "$started_after" -le 4
journal=$(firstboot_install_journal)
mlb_log "the message: $(grep -m1 "$FIRSTBOOT_CONFIG:$bad_line:" <<<"$journal")"
check "the message names the field" grep -q "$FIRSTBOOT_CONFIG:$bad_line:[0-9]*: spec.hosts\[1\].ssh.port" <<<"$journal"
error_logged() {
	firstboot_install_journal -p err | grep -q "$FIRSTBOOT_CONFIG:$bad_line:"
}
check "the journal records the message at error priority" error_logged
firstboot_wait_for 10 "the first attempt to exit" \
	firstboot_unit_is mlboot-install.service ExecMainStatus 3 || true
check "the exit status is 3 (invalid input)" \
	test "$(firstboot_unit_property mlboot-install.service ExecMainStatus)" = 3
status_text=$(firstboot_unit_property mlboot-install.service StatusText)
mlb_log "STATUS=: $status_text"
check "STATUS= names the file and the line" grep -q "$FIRSTBOOT_CONFIG:$bad_line:" <<<"$status_text"

# While the file stays invalid, attempts are RestartSec= (5 s) apart.
sleep 12
mapfile -t attempts < <(firstboot_install_journal -o short-monotonic |
	grep "$FIRSTBOOT_CONFIG:$bad_line:" | sed -n 's/^\[ *\([0-9]*\)\.\([0-9]*\)\].*/\1\2/p')
check "the invalid file was retried (${#attempts[@]} attempts)" test "${#attempts[@]}" -ge 2
check "at most 4 attempts in 12 s (${#attempts[@]})" test "${#attempts[@]}" -le 4
for ((i = 1; i < ${#attempts[@]}; i++)); do
	gap=$(((attempts[i] - attempts[i - 1]) / 1000))
	check "attempt $((i + 1)) came ${gap} ms after the one before (at least 5000)" test "$gap" -ge 5000
done

# Fixed: the next attempt installs.
cp "$FIRSTBOOT_WORK/mlboot.yaml.good" "$config"
firstboot_wait_for 120 "the done-stamp" nspawn_exec test -f "$FIRSTBOOT_STAMP" ||
	mlb_die "the install did not finish after the configuration was fixed"
firstboot_wait_for 60 "the unit to finish" firstboot_unit_is mlboot-install.service ActiveState inactive || true
check "the unit succeeded" test "$(firstboot_unit_property mlboot-install.service Result)" = success
invocation=$(firstboot_unit_property mlboot-install.service InvocationID)
touch "$config"
sleep 3
check "a change after the install does not run it again" \
	test "$(firstboot_unit_property mlboot-install.service InvocationID)" = "$invocation"
nspawn_poweroff

if [ "$failures" -gt 0 ]; then
	mlb_die "$failures checks failed"
fi
mlb_log "all checks passed"
