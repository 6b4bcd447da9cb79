#!/usr/bin/env bash
# The periodic check under systemd: mlboot-check.timer starts
# mlboot-check.service, which runs "mlboot check" and keeps its reports in
# /var/lib/mlboot/reports. The timer is set to every 10 s here, and
# MLBOOT_REPORTS_KEEP to 2.
#
# Proves that:
#   - before the install is done, the check is skipped (its condition on the
#     done-stamp) or waits for the install, and writes no report;
#   - the unattended install saves its final check report as JSON and HTML;
#   - after the install, each run writes a timestamped JSON and HTML report,
#     and only the newest 2 of each are kept;
#   - the JSON is a report document with checks, the HTML a whole page.
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

reports=/var/lib/mlboot/reports

# Number of reports in the container matching a shell pattern.
count_reports() {
	local pattern=$1
	nspawn_exec sh -c "ls -1 $reports 2>/dev/null | grep -c -E '$pattern' || true"
}

check_runs_with_report() {
	nspawn_journal -u mlboot-check.service | grep -c "check report: " || true
}

enough_check_runs() {
	[ "$(check_runs_with_report)" -ge 3 ]
}

trap firstboot_cleanup EXIT
firstboot_setup fbchk
root=$NSPAWN_DIR/root
install -d "$root/etc/systemd/system/mlboot-check.timer.d"
cat >"$root/etc/systemd/system/mlboot-check.timer.d/test.conf" <<'CONF'
[Timer]
OnBootSec=
OnCalendar=
OnCalendar=*:*:0/10
RandomizedDelaySec=0
AccuracySec=1s
CONF
echo "MLBOOT_REPORTS_KEEP=2" >>"$root/etc/mlboot/mlboot.env"

# The API server is down at boot, so the install waits and the check is skipped.
nspawn_boot
firstboot_wait_for 40 "a skipped run of the check" \
	firstboot_unit_is mlboot-check.service ConditionResult no ||
	mlb_die "mlboot-check.service did not come up as skipped"
check "no check report before the install is done" test "$(count_reports '^check-')" -eq 0
# Later starts wait for the running install (After=mlboot-install.service).
sleep 12
check "still no check report while the install waits" test "$(count_reports '^check-')" -eq 0

firstboot_standin_start
firstboot_wait_for 180 "the done-stamp" nspawn_exec test -f "$FIRSTBOOT_STAMP" ||
	mlb_die "the install did not finish"
check "the install saved its final check report as JSON" test "$(count_reports '^install-.*\.json$')" -eq 1
check "the install saved its final check report as HTML" test "$(count_reports '^install-.*\.html$')" -eq 1
install_json=$(nspawn_exec sh -c "cat $reports/install-*.json")
check "the final report is a check report with checks" \
	python3 -c 'import json, sys; d = json.load(sys.stdin); sys.exit(0 if d["checks"] else 1)' <<<"$install_json"

firstboot_wait_for 120 "three runs of the check with a report" enough_check_runs ||
	mlb_die "the check did not run three times"
runs=$(check_runs_with_report)
mlb_log "check runs with a report: $runs"
check "2 JSON check reports are kept" test "$(count_reports '^check-[0-9]{8}T[0-9]{6}Z\.json$')" -eq 2
check "2 HTML check reports are kept" test "$(count_reports '^check-[0-9]{8}T[0-9]{6}Z\.html$')" -eq 2
newest=$(nspawn_journal -u mlboot-check.service | sed -n 's/.*check report: \([^ ]*\.json\) and.*/\1/p' | tail -n 1)
check "the newest report is kept ($newest)" nspawn_exec test -f "$newest"
json=$(nspawn_exec cat "$newest")
check "the JSON report has checks" \
	python3 -c 'import json, sys; d = json.load(sys.stdin); sys.exit(0 if d["checks"] else 1)' <<<"$json"
html=$(nspawn_exec cat "${newest%.json}.html")
check "the HTML report is a whole page" grep -q "</html>" <<<"$html"
nspawn_poweroff

if [ "$failures" -gt 0 ]; then
	mlb_die "$failures checks failed"
fi
mlb_log "all checks passed"
