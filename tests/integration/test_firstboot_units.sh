#!/usr/bin/env bash
# mlboot's systemd units under a real systemd: "make install" into a Debian
# 12 container, boot it with systemd as PID 1 (systemd-nspawn), and check
# what a package's user relies on.
#
# Proves that:
#   - "systemd-analyze verify" accepts every installed unit, inside the
#     container, with mlboot at the path the units name;
#   - "make install PREFIX=/usr/local" puts the units where systemd reads
#     them (/usr/local/lib/systemd/system), with no @...@ placeholder left,
#     and mlboot.env and the motd script in /etc;
#   - "make install PREFIX=/usr" puts them in /lib/systemd/system and
#     keeps an edited mlboot.env;
#   - the units load, are enabled, and the check timer is waiting;
#   - NOTIFY_SOCKET reaches systemd: a transient unit that runs mlboot's
#     sd_notify code shows its STATUS= text in "systemctl show".
#
# Exit status: 0 pass, 77 skip (not root, no debootstrap), 1 fail.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
# shellcheck source=lib.sh
. "$here/lib.sh"
# shellcheck source=lib/nspawn.sh
. "$here/lib/nspawn.sh"

[ "$(id -u)" -eq 0 ] || mlb_skip "needs root for debootstrap, namespaces and systemd-nspawn"
[ -x "${MLBOOT:-}" ] || mlb_die "MLBOOT is not set to the mlboot binary; run through tests/run"
unshare --net --mount --pid --fork true 2>/dev/null ||
	mlb_skip "this kernel or sandbox does not allow new namespaces"
nspawn_require

work=$(mktemp -d /var/tmp/mlb-test-firstboot-units.XXXXXX)
failures=0
cleanup() {
	local status=$?
	nspawn_cleanup
	if [ "$status" -eq 0 ] && [ "$failures" -eq 0 ]; then
		rm -rf "$work"
	else
		mlb_log "kept $work for reading the logs"
	fi
}
trap cleanup EXIT

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

units=(mlboot-install.service mlboot-install.path mlboot-check.service mlboot-check.timer)

# make install outside the container, for both prefixes.
staging=$work/staging
make -C "$repo" --no-print-directory -o "$MLBOOT_BUILD/mlboot" BUILD="$MLBOOT_BUILD" PREFIX=/usr/local DESTDIR="$staging/local" \
	install >"$work/make-local.log" 2>&1 || { cat "$work/make-local.log" >&2; mlb_die "make install failed"; }
for unit in "${units[@]}"; do
	check "PREFIX=/usr/local installs $unit into /usr/local/lib/systemd/system" \
		test -f "$staging/local/usr/local/lib/systemd/system/$unit"
done
check "no @...@ placeholder is left in the installed files" \
	bash -c "! grep -rn '@[A-Z]*@' '$staging/local/usr/local/lib/systemd/system' '$staging/local/etc'"
check "ExecStart names the installed binary" \
	grep -q '^ExecStart=/usr/local/bin/mlboot ' "$staging/local/usr/local/lib/systemd/system/mlboot-install.service"
check "mlboot.env is installed" test -f "$staging/local/etc/mlboot/mlboot.env"
check "the motd script is installed and executable" test -x "$staging/local/etc/update-motd.d/60-mlboot"

mkdir -p "$staging/usr/etc/mlboot"
echo "MLBOOT_REPORTS_KEEP=7" >"$staging/usr/etc/mlboot/mlboot.env"
make -C "$repo" --no-print-directory -o "$MLBOOT_BUILD/mlboot" BUILD="$MLBOOT_BUILD" PREFIX=/usr DESTDIR="$staging/usr" \
	install >"$work/make-usr.log" 2>&1 || { cat "$work/make-usr.log" >&2; mlb_die "make install PREFIX=/usr failed"; }
check "PREFIX=/usr installs the units into /lib/systemd/system" \
	test -f "$staging/usr/lib/systemd/system/mlboot-install.service"
check "PREFIX=/usr names /usr/bin/mlboot" \
	grep -q '^ExecStart=/usr/bin/mlboot ' "$staging/usr/lib/systemd/system/mlboot-install.service"
check "an existing mlboot.env is kept" grep -qx "MLBOOT_REPORTS_KEEP=7" "$staging/usr/etc/mlboot/mlboot.env"

# The container, in a network namespace of its own with loopback only: no
# mlboot.yaml, so the install fails and is retried. This test looks only at
# the units.
nspawn_base_image
nspawn_image_create "$work/container"
nspawn_netns_create mlbfbu
nspawn_boot

verify_output=$(nspawn_exec systemd-analyze verify \
	"${units[@]/#//usr/local/lib/systemd/system/}" 2>&1) && verify_status=0 || verify_status=$?
printf '%s\n' "$verify_output" >"$work/verify.log"
check "systemd-analyze verify exits 0" test "$verify_status" -eq 0
check "systemd-analyze verify prints nothing about mlboot's units" \
	bash -c "! grep -i mlboot '$work/verify.log'"
[ "$verify_status" -eq 0 ] || cat "$work/verify.log" >&2

for unit in "${units[@]}"; do
	state=$(nspawn_exec systemctl show --property=LoadState --value "$unit")
	check "$unit is loaded (LoadState=$state)" test "$state" = loaded
done
for unit in mlboot-install.service mlboot-install.path mlboot-check.timer; do
	enabled=$(nspawn_exec systemctl is-enabled "$unit" || true)
	check "$unit is enabled ($enabled)" test "$enabled" = enabled
done
timer=$(nspawn_exec systemctl show --property=ActiveState --value mlboot-check.timer)
check "mlboot-check.timer is active ($timer)" test "$timer" = active
check "mlboot-install.path is active" \
	test "$(nspawn_exec systemctl show --property=ActiveState --value mlboot-install.path)" = active

# sd_notify from mlboot itself: "mlboot install --unattended" with a
# missing mlboot.yaml sends the problem as STATUS= before it exits.
nspawn_exec systemd-run --unit=mlb-notify-probe --property=NotifyAccess=main \
	--property=Type=oneshot --property=RemainAfterExit=yes \
	/usr/local/bin/mlboot install --unattended -f /etc/mlboot/no-such.yaml >/dev/null 2>&1 || true
status_text=$(nspawn_exec systemctl show --property=StatusText --value mlb-notify-probe)
mlb_log "STATUS= of the probe unit: $status_text"
check "STATUS= names the missing configuration file" \
	grep -q "no-such.yaml" <<<"$status_text"

nspawn_poweroff
if [ "$failures" -gt 0 ]; then
	mlb_die "$failures checks failed"
fi
mlb_log "all checks passed"
