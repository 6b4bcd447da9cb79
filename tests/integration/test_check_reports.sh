#!/usr/bin/env bash
# The report formats of `mlboot check` on a real run: the test platform
# applied with kubectl to the stand-in API server (no nodes, no gateway,
# an unsigned bundle), so the report has passed, warned, failed and skipped
# checks.
#
# Proves that:
#   - the JSON report validates against docs/report-schema.json (with the
#     jsonschema module of Debian's python3-jsonschema) and its summary
#     counts its checks;
#   - the JUnit report validates against tests/fixtures/check/junit.xsd with
#     xmllint, with one testcase per check, a failure per failed check and
#     a skipped element per skipped one;
#   - --report FILE writes the format its name asks for, besides stdout;
#   - the HTML report is one self-contained page (no script, no external
#     resource) that headless Chromium renders without console errors, to
#     a PNG screenshot and to a PDF through the print stylesheet;
#   - the text report's groups and summary line.
#
# Exit status: 0 pass, 77 skip (Chromium or the stand-in missing), 1 fail.
# The screenshot is kept at $MLBOOT_BUILD/test-logs/check-report.png.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
# shellcheck source=lib.sh
. "$here/lib.sh"
# shellcheck source=lib/standin.sh
. "$here/lib/standin.sh"
fixture=$repo/tests/fixtures/platform
python=/usr/bin/python3

skip_test() {
	echo "SKIP: $*"
	exit 77
}

[ -x "${MLBOOT:-}" ] || mlb_die "MLBOOT is not set to the mlboot binary; run through tests/run"
[ -x "$STANDIN_PYTHON" ] && [ -f "$STANDIN_SCRIPT" ] || skip_test "the stand-in API server or $STANDIN_PYTHON is missing"
if [ "$(id -u)" -eq 0 ]; then
	mlb_install_packages chromium libxml2-utils python3-jsonschema
fi
command -v chromium >/dev/null || skip_test "chromium is not installed (Debian package chromium)"
command -v xmllint >/dev/null || skip_test "xmllint is not installed (Debian package libxml2-utils)"
"$python" -c 'import jsonschema' 2>/dev/null || skip_test "python3-jsonschema is not installed"

work=$(mktemp -d /tmp/mlb-test-check-reports.XXXXXX)
standin_isolate_environment "$work/home"
passed=0
failed=0

cleanup() {
	local status=$?
	standin_stop
	if [ "$failed" -gt 0 ] || [ "$status" -ne 0 ]; then
		for log in "$work"/*.err; do
			[ -f "$log" ] || continue
			echo "--- $log" >&2
			tail -n 25 "$log" >&2
		done
	fi
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

check() {
	local name=$1
	shift
	if "$@"; then pass "$name"; else fail "$name"; fi
}

# --- A platform on the stand-in, applied with kubectl ------------------------------
cp -r "$fixture" "$work/platform"
"$fixture/make-images" "$work/platform/images"
"$MLBOOT" bundle build -f "$work/platform/catalog.yaml" -o "$work/platform.bundle" >"$work/build.out" 2>"$work/build.err" ||
	mlb_die "bundle build failed; see $work/build.err"
standin_start "$work/standin"
for file in cert-manager istio kserve kserve-runtimes kubeflow argocd sample-model; do
	cat "$fixture/manifests/$file.yaml"
	echo ---
done >"$work/all.yaml"
# The first runs fail until the CRDs are established and the webhooks serve, as on a real cluster.
apply_all() {
	standin_kubectl apply --server-side -f "$work/all.yaml" >"$work/apply.out" 2>"$work/apply.err"
}
mlb_wait_until 90 apply_all || mlb_die "kubectl apply of the test platform did not succeed; see $work/apply.err"
model_ready() {
	test "$(standin_kubectl -n ml get inferenceservice iris -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}')" = True
}
mlb_wait_until 60 model_ready || mlb_die "the sample model did not become Ready"

# --- The reports ------------------------------------------------------------------------
run() {
	local status=0
	"$MLBOOT" check --kubeconfig "$STANDIN_DIR/admin.kubeconfig" --bundle "$work/platform.bundle" "$@" || status=$?
	return "$status"
}
status=0
run -o json --report "$work/report.html" >"$work/report.json" 2>"$work/json.err" || status=$?
check "check exits 1: some checks fail" test "$status" -eq 1
run -o junit --report "$work/copy.json" >"$work/report.xml" 2>"$work/junit.err" || true
run -o text >"$work/report.txt" 2>"$work/text.err" || true

# Statuses the run must contain, so that every writer is exercised on each.
count_status() {
	"$python" -c 'import json, sys
print(sum(1 for c in json.load(open(sys.argv[1]))["checks"] if c["status"] == sys.argv[2]))' "$work/report.json" "$1"
}
for status_name in pass warn fail skip; do
	check "the report has checks with status $status_name" test "$(count_status "$status_name")" -gt 0
done

check "JSON validates against docs/report-schema.json, and the summary counts the checks" \
	"$python" - "$repo/docs/report-schema.json" "$work/report.json" <<'EOF'
import json, sys
import jsonschema
schema = json.load(open(sys.argv[1], encoding="utf-8"))
report = json.load(open(sys.argv[2], encoding="utf-8"))
jsonschema.Draft202012Validator.check_schema(schema)
jsonschema.Draft202012Validator(schema).validate(report)
counts = {status: sum(1 for c in report["checks"] if c["status"] == status)
          for status in ("pass", "warn", "fail", "skip")}
assert report["summary"] == {"total": len(report["checks"]), "passed": counts["pass"],
                             "warnings": counts["warn"], "failed": counts["fail"],
                             "skipped": counts["skip"]}, report["summary"]
assert report["title"] == "check", report["title"]
assert "platform.bundle" in report["bundle"], report["bundle"]
EOF
check "a report that breaks the schema is rejected by the same validator" \
	"$python" - "$repo/docs/report-schema.json" "$work/report.json" <<'EOF'
import json, sys
import jsonschema
schema = json.load(open(sys.argv[1], encoding="utf-8"))
report = json.load(open(sys.argv[2], encoding="utf-8"))
report["checks"][0]["status"] = "maybe"
try:
    jsonschema.Draft202012Validator(schema).validate(report)
except jsonschema.ValidationError:
    sys.exit(0)
sys.exit("a check with status 'maybe' validated")
EOF
# Two runs: the evidence differs (round trips, the scratch namespace's name), the checks do not.
check "--report FILE.json wrote the same checks as -o json" \
	"$python" -c 'import json, sys
a, b = ([(c["group"], c["id"], c["status"]) for c in json.load(open(p))["checks"]] for p in sys.argv[1:3])
sys.exit(a != b)' "$work/report.json" "$work/copy.json"

check "JUnit validates against junit.xsd" \
	xmllint --noout --schema "$repo/tests/fixtures/check/junit.xsd" "$work/report.xml"
check "JUnit has one testcase per check, a failure per failed check and a skipped per skipped one" \
	"$python" - "$work/report.xml" "$work/report.json" <<'EOF'
import json, sys
import xml.etree.ElementTree as ET
root = ET.parse(sys.argv[1]).getroot()
report = json.load(open(sys.argv[2]))
cases = root.findall("./testsuite/testcase")
assert len(cases) == len(report["checks"]), (len(cases), len(report["checks"]))
failed = [c for c in cases if c.find("failure") is not None]
skipped = [c for c in cases if c.find("skipped") is not None]
assert len(failed) == report["summary"]["failed"] == int(root.get("failures")), len(failed)
assert len(skipped) == report["summary"]["skipped"], len(skipped)
for case in failed:
    assert case.find("failure").get("message"), case.get("name")
EOF

check "text report: groups and the summary line" \
	grep -qE '^[0-9]+ passed, [0-9]+ warnings, [0-9]+ failed, [0-9]+ skipped$' "$work/report.txt"
check "text report: no colour when stdout is not a terminal" test -z "$(grep -P '\x1b' "$work/report.txt" || true)"

# --- --report replaces only a regular file that is no input -----------------------------
# refused_status FILE [OPTION...]: the exit status of a check writing its report to FILE.
refused_status() {
	local file=$1 status=0
	shift
	"$MLBOOT" check --report "$file" "$@" >/dev/null 2>"$work/refused.err" || status=$?
	echo "$status"
}
# fingerprint PATH: type, inode, size, change time and device numbers (a link is not followed).
fingerprint() {
	stat -c '%F %i %s %Z %t:%T' -- "$1"
}
admin=(--kubeconfig "$STANDIN_DIR/admin.kubeconfig")

mkfifo "$work/fifo.json"
before=$(fingerprint "$work/fifo.json")
check "--report into a FIFO exits 3" test "$(refused_status "$work/fifo.json" "${admin[@]}")" -eq 3
check "--report into a FIFO: the message names the path and why" \
	grep -qF "cannot write the report: '$work/fifo.json' is a FIFO" "$work/refused.err"
check "--report into a FIFO leaves the FIFO" test "$(fingerprint "$work/fifo.json")" = "$before"

echo '{"kept": true}' >"$work/target.json"
ln -s "$work/target.json" "$work/link.json"
before=$(fingerprint "$work/link.json")
check "--report into a symbolic link exits 3" test "$(refused_status "$work/link.json" "${admin[@]}")" -eq 3
check "--report into a symbolic link: the message says a link is rejected" \
	grep -qF "'$work/link.json' is a symbolic link; an output never follows or replaces a link" "$work/refused.err"
check "--report into a symbolic link leaves the link" test "$(fingerprint "$work/link.json")" = "$before"
check "--report into a symbolic link leaves its target" test "$(cat "$work/target.json")" = '{"kept": true}'

# A device node of our own (the numbers of /dev/full), never one under /dev.
if mknod "$work/device.json" c 1 7 2>/dev/null; then
	before=$(fingerprint "$work/device.json")
	check "--report into a device node exits 3" test "$(refused_status "$work/device.json" "${admin[@]}")" -eq 3
	check "--report into a device node: the message says why" \
		grep -qF "'$work/device.json' is a character device" "$work/refused.err"
	check "--report into a device node leaves the node" test "$(fingerprint "$work/device.json")" = "$before"
else
	echo "note: mknod is not permitted here: the device node case is not exercised" >&2
fi

mkdir "$work/folder.json"
check "--report into a folder exits 3" test "$(refused_status "$work/folder.json" "${admin[@]}")" -eq 3
check "--report into a folder leaves it empty" test -z "$(ls -A "$work/folder.json")"

cp "$STANDIN_DIR/admin.kubeconfig" "$work/kubeconfig.json"
kubeconfig_sum=$(sha256sum <"$work/kubeconfig.json")
check "--report over its kubeconfig exits 3" \
	test "$(refused_status "$work/kubeconfig.json" --kubeconfig "$work/kubeconfig.json")" -eq 3
check "--report over its kubeconfig: the message names both" \
	grep -qF "'$work/kubeconfig.json' is the same file as the kubeconfig" "$work/refused.err"
check "--report over its kubeconfig leaves the kubeconfig" test "$(sha256sum <"$work/kubeconfig.json")" = "$kubeconfig_sum"

cp "$work/platform.bundle" "$work/bundle.json"
bundle_sum=$(sha256sum <"$work/bundle.json")
check "--report over its bundle exits 3" \
	test "$(refused_status "$work/bundle.json" "${admin[@]}" --bundle "$work/bundle.json")" -eq 3
check "--report over its bundle leaves the bundle" test "$(sha256sum <"$work/bundle.json")" = "$bundle_sum"
check "no temporary report file is left" test -z "$(find "$work" -maxdepth 1 -name '*.tmp*' -print)"

check "HTML has no script and nothing to fetch" "$python" - "$work/report.html" <<'EOF'
import sys
from html.parser import HTMLParser

class Scan(HTMLParser):
    def __init__(self):
        super().__init__()
        self.problems = []
        self.rows = 0
    def handle_starttag(self, tag, attrs):
        if tag in ("script", "link", "img", "iframe", "object", "embed", "base"):
            self.problems.append(f"<{tag}>")
        for name, value in attrs:
            if name == "src" or name.startswith("on"):
                self.problems.append(f"{tag} {name}")
            if name == "href" and not (value or "").startswith("#"):
                self.problems.append(f"{tag} href={value}")
        if tag == "tr" and dict(attrs).get("id", "").startswith("check-"):
            self.rows += 1

text = open(sys.argv[1], encoding="utf-8").read()
scan = Scan()
scan.feed(text)
for needle in ("@import", "url("):
    if needle in text:
        scan.problems.append(needle)
assert not scan.problems, scan.problems
assert "@media print" in text
assert scan.rows > 0
EOF

# --- Chromium renders the page ---------------------------------------------------------------
chromium_run() {
	chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
		--disable-background-networking --disable-component-update --disable-sync \
		--user-data-dir="$(mktemp -d "$work/chromium.XXXXXX")" "$@"
}
chromium_run --enable-logging=stderr --v=0 --dump-dom "file://$work/report.html" \
	>"$work/dom.html" 2>"$work/chromium-dom.err" || fail "chromium --dump-dom exits 0"
check "Chromium shows the page's checks" grep -q 'class="verdict fail">FAILED' "$work/dom.html"
check "Chromium logs no console message and no load error" \
	test -z "$(grep -E 'CONSOLE|net::ERR|Refused to' "$work/chromium-dom.err" || true)"
chromium_run --screenshot="$work/report.png" --window-size=1200,1600 "file://$work/report.html" \
	>"$work/chromium-png.out" 2>"$work/chromium-png.err" || fail "chromium --screenshot exits 0"
check "the screenshot is a 1200x1600 PNG with content" "$python" - "$work/report.png" <<'EOF'
import struct, sys, zlib
data = open(sys.argv[1], "rb").read()
assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
width, height = struct.unpack(">II", data[16:24])
assert (width, height) == (1200, 1600), (width, height)
# Gather the image data and count distinct bytes: a blank page has almost none.
position, idat = 8, b""
while position < len(data):
    length, kind = struct.unpack(">I4s", data[position:position + 8])
    if kind == b"IDAT":
        idat += data[position + 8:position + 8 + length]
    position += 12 + length
pixels = zlib.decompress(idat)
assert len(set(pixels)) > 50, f"only {len(set(pixels))} distinct byte values: blank page?"
EOF
chromium_run --print-to-pdf="$work/report.pdf" --no-pdf-header-footer "file://$work/report.html" \
	>"$work/chromium-pdf.out" 2>"$work/chromium-pdf.err" || fail "chromium --print-to-pdf exits 0"
check "the print stylesheet gives a PDF of at least one page" \
	"$python" -c 'import sys
data = open(sys.argv[1], "rb").read()
sys.exit(not (data.startswith(b"%PDF") and data.count(b"/Type /Page") + data.count(b"/Type/Page") >= 1))' "$work/report.pdf"
if [ -n "${MLBOOT_BUILD:-}" ] && [ -d "$MLBOOT_BUILD/test-logs" ]; then
	cp "$work/report.png" "$MLBOOT_BUILD/test-logs/check-report.png"
	cp "$work/report.html" "$MLBOOT_BUILD/test-logs/check-report.html"
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
