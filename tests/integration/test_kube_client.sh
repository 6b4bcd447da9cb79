#!/usr/bin/env bash
# The Kubernetes API client against the stand-in API server: server-side
# apply of a CRD and then of its custom resource, pagination, retries
# through injected 500 and 429 responses, a wrong CA, an expired token, an
# unreachable port, tokens kept out of debug logs and connection reuse.
# Lists get an injected 410 Expired for their continue token, once (the
# list starts again) and on every page (the client gives up), and other
# 410 responses that fail a list.
# Starts the stand-in on loopback, runs the cmocka binary test_kube_client
# against it, and stops it.
set -uo pipefail
cd "$(dirname "$0")/../.."
. tests/integration/lib.sh

BUILD=${BUILD:-build}
case $BUILD in
/*) build_dir=$BUILD ;;
*) build_dir=$PWD/$BUILD ;;
esac
if [ -n "${MLBOOT_BUILD:-}" ] && [ -d "$MLBOOT_BUILD" ]; then
	build_dir=$MLBOOT_BUILD
fi
binary="$build_dir/tests/test_kube_client"
standin=tests/integration/standin/standin.py

if [ ! -x /usr/bin/python3 ]; then
	echo "SKIP: /usr/bin/python3 is missing, which the stand-in API server needs (apt-get install python3)"
	exit "$MLB_EXIT_SKIP"
fi
[ -f "$standin" ] || mlb_die "the stand-in API server '$standin' is missing"
if [ ! -x "$binary" ]; then
	make --no-print-directory BUILD="$BUILD" "$BUILD/tests/test_kube_client" >&2 ||
		mlb_die "cannot build '$binary'"
fi

state=$(mktemp -d /tmp/mlboot-kube-client-XXXXXX)
standin_pid=
cleanup() {
	if [ -n "$standin_pid" ]; then
		kill "$standin_pid" 2>/dev/null
		wait "$standin_pid" 2>/dev/null
	fi
	rm -rf "$state"
}
trap cleanup EXIT

# Nothing may reach a real cluster or a proxy.
unset KUBECONFIG KUBERNETES_SERVICE_HOST KUBERNETES_SERVICE_PORT
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY
export HOME="$state/home"
mkdir -p "$HOME"

/usr/bin/python3 "$standin" --state-dir "$state/standin" >"$state/standin.log" 2>&1 &
standin_pid=$!
if ! mlb_wait_until 30 test -s "$state/standin/port"; then
	cat "$state/standin.log" >&2
	mlb_die "the stand-in did not write its port within 30 s"
fi

export MLBOOT_STANDIN_DIR="$state/standin"
status=0
"$binary" >"$state/output" 2>&1 || status=$?
cat "$state/output"
if [ "$status" -ne 0 ]; then
	tail -n 40 "$state/standin.log" >&2
	mlb_die "test_kube_client failed (exit status $status)"
fi
if grep -q '^\[  SKIPPED \]' "$state/output"; then
	mlb_die "test_kube_client skipped tests although the stand-in is running"
fi

# No token of the stand-in's configuration may appear in anything the client printed.
tokens=$(/usr/bin/python3 -c 'import json, sys
for t in json.load(open(sys.argv[1]))["tokens"]:
    print(t["token"])' "$state/standin/config.json")
[ -n "$tokens" ] || mlb_die "no tokens found in the stand-in's config.json"
while read -r token; do
	if grep -qF -- "$token" "$state/output"; then
		mlb_die "a bearer token appears in the client's output"
	fi
done <<<"$tokens"
mlb_log "passed"
