#!/usr/bin/env bash
# mlboot install with the bundle given as an https URL of an internal depot:
# the download resumes after a cut, the downloaded bundle is verified like a
# local one before anything else happens, and a tampered download is
# rejected with the integrity exit code.
#
# Everything runs on 127.0.0.1: an HTTPS artifact server
# (lib/artifact-server.py) offers the bundle. The cluster of the config is a
# closed port, so each install stops at preflight, after the bundle step this
# test is about.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
# shellcheck source=lib.sh
. "$here/lib.sh"
# shellcheck source=lib/registry.sh
. "$here/lib/registry.sh"

[ -x "${MLBOOT:-}" ] || mlb_die "MLBOOT must name the built mlboot binary"
unset KUBECONFIG KUBERNETES_SERVICE_HOST KUBERNETES_SERVICE_PORT https_proxy HTTPS_PROXY

work=$(mktemp -d /tmp/mlboot-bundle-url.XXXXXX)
server_pid=
cleanup() {
	[ -z "$server_pid" ] || kill "$server_pid" 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

passed=0 failed=0
check() {
	local name=$1
	shift
	if "$@"; then
		passed=$((passed + 1))
		echo "ok - $name"
	else
		failed=$((failed + 1))
		echo "not ok - $name"
	fi
}

# A signed bundle of the project's small platform, large enough to cut.
cp -r "$repo/tests/fixtures/platform" "$work/platform"
"$repo/tests/fixtures/platform/make-images" "$work/platform/images"
(cd "$work" && "$MLBOOT" keygen -o "$work/signing") >/dev/null
mkdir -p "$work/files"
"$MLBOOT" bundle build -f "$work/platform/catalog.yaml" -o "$work/files/platform.bundle" \
	--key "$work/signing.key" >/dev/null 2>"$work/build.err" ||
	mlb_die "bundle build failed: $(cat "$work/build.err")"
bundle_sha=$(sha256sum "$work/files/platform.bundle" | cut -d' ' -f1)

certs=$work/certs
registry_make_ca "$certs"
port=$(registry_free_port)
/usr/bin/python3 "$here/lib/artifact-server.py" "$port" "$certs/server.crt" "$certs/server.key" \
	"$work/files" "$work/server.log" &
server_pid=$!
mlb_wait_until 20 curl -s -o /dev/null --cacert "$certs/ca.crt" "https://127.0.0.1:$port/platform.bundle" ||
	mlb_die "the artifact server did not start"
depot=https://127.0.0.1:$port

# A kubeconfig for a port where nothing listens: preflight fails fast.
cat >"$work/kubeconfig" <<YAML
apiVersion: v1
kind: Config
clusters:
- name: closed
  cluster: {server: "https://127.0.0.1:1", certificate-authority: "$certs/ca.crt"}
users:
- name: nobody
  user: {token: not-a-secret}
contexts:
- name: closed
  context: {cluster: closed, user: nobody}
current-context: closed
YAML

# write_config URL STATE: an mlboot.yaml whose bundle is URL.
write_config() {
	cat >"$work/mlboot.yaml" <<YAML
apiVersion: mlboot.dev/v1alpha1
kind: Platform
metadata: {name: depot-test}
spec:
  bundle: "$1"
  kubeconfig: {path: "$work/kubeconfig"}
  stateDir: "$2"
  hosts:
    - {name: cp1, role: control-plane, local: true}
YAML
}

# 1. A download cut halfway resumes with a Range request and is verified.
write_config "$depot/cut/platform.bundle" "$work/state-cut"
status=0
"$MLBOOT" install -f "$work/mlboot.yaml" --bundle-ca "$certs/ca.crt" --pubkey "$work/signing.pub" \
	>"$work/cut.out" 2>"$work/cut.err" || status=$?
check "cut download resumed with a Range request" grep -q "GET /cut/platform.bundle 206 bytes=" "$work/server.log"
check "second request reported" grep -Eq "bytes downloaded in [2-9] requests" "$work/cut.err"
check "downloaded bundle is whole" \
	test "$(sha256sum "$work/state-cut/bundles/platform.bundle" | cut -d' ' -f1)" = "$bundle_sha"
check "no partial file left" test ! -e "$work/state-cut/bundles/platform.bundle.part"
check "bundle verified, then preflight reached" grep -q "bundle '.*platform.bundle': platform" "$work/cut.err"
check "closed cluster exits unreachable (5)" test "$status" -eq 5

# 2. A second run uses the downloaded file without a request.
requests=$(wc -l <"$work/server.log")
"$MLBOOT" install -f "$work/mlboot.yaml" --bundle-ca "$certs/ca.crt" --pubkey "$work/signing.pub" \
	>/dev/null 2>"$work/again.err" || true
check "second run sends no request" test "$(wc -l <"$work/server.log")" -eq "$requests"
check "second run says it reuses the file" grep -q "downloaded from .* before" "$work/again.err"

# 3. A server whose file changed between the cut and the resume: the bundle
#    fails verification (exit 4) and nothing past it runs.
write_config "$depot/tamper/platform.bundle" "$work/state-tamper"
status=0
"$MLBOOT" install -f "$work/mlboot.yaml" --bundle-ca "$certs/ca.crt" --pubkey "$work/signing.pub" \
	>"$work/tamper.out" 2>"$work/tamper.err" || status=$?
check "tampered download exits 4" test "$status" -eq 4
check "tampered download never reaches preflight" test ! -e "$work/state-tamper/journal"

# 4. Without the depot's CA the download is rejected (TLS verified, exit 6).
write_config "$depot/platform.bundle" "$work/state-untrusted"
status=0
"$MLBOOT" install -f "$work/mlboot.yaml" --pubkey "$work/signing.pub" \
	>/dev/null 2>"$work/untrusted.err" || status=$?
check "untrusted depot certificate exits 6" test "$status" -eq 6
check "nothing kept from an untrusted depot" test ! -e "$work/state-untrusted/bundles/platform.bundle"

# 5. Plain http is refused before any request.
write_config "http://127.0.0.1:$port/platform.bundle" "$work/state-http"
status=0
"$MLBOOT" install -f "$work/mlboot.yaml" >/dev/null 2>"$work/http.err" || status=$?
check "http bundle URL is invalid input (3)" test "$status" -eq 3
check "http refusal names https" grep -q "only https:// URLs" "$work/http.err"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
