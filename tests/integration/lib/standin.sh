# Shell helpers that start, drive and stop the stand-in Kubernetes API
# server (tests/integration/standin/standin.py) for integration tests.
# Source this file from bash after tests/integration/lib.sh; it sets no
# shell options of its own.
#
#   standin_isolate_environment      no fallback to a real cluster or proxy
#   standin_start DIR                start on loopback, state in DIR
#   standin_ctl COMMAND ...          the stand-in's control client
#   standin_kubectl ARGS ...         kubectl as the stand-in's admin
#   standin_stats_failures           the non-2xx statuses the stand-in returned
#   standin_patch_count              how many PATCH requests it served
#   standin_stop                     stop the server standin_start started
#
# standin_start sets STANDIN_DIR, STANDIN_PID, STANDIN_PORT and STANDIN_URL.
# DIR then contains port, url, ca.crt, admin.kubeconfig (client certificate),
# token.kubeconfig, viewer.kubeconfig and expired.kubeconfig (tokens).

STANDIN_SCRIPT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../standin" && pwd)/standin.py"
STANDIN_PYTHON=/usr/bin/python3
# Seconds standin_start waits for the server to write its port file.
STANDIN_START_TIMEOUT=60

# Remove what would make kubectl or mlboot reach anything but the stand-in:
# KUBECONFIG, the in-cluster service variables and proxy settings. HOME
# moves to a fresh folder so that ~/.kube/config is not read either; the
# caller passes that folder.
standin_isolate_environment() {
	local home=$1
	unset KUBECONFIG KUBERNETES_SERVICE_HOST KUBERNETES_SERVICE_PORT
	unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY
	export NO_PROXY='*' no_proxy='*'
	mkdir -p "$home"
	export HOME=$home
}

# Skip the test (exit 77) when the stand-in or Python is missing.
standin_require() {
	[ -x "$STANDIN_PYTHON" ] || mlb_skip "$STANDIN_PYTHON is missing"
	[ -f "$STANDIN_SCRIPT" ] || mlb_skip "the stand-in API server $STANDIN_SCRIPT is missing"
}

# Start the stand-in with its state in DIR (created when missing), on
# 127.0.0.1 and a free port, logging to DIR/standin.log. Waits until it
# listens. Returns 1, with the log on stderr, when it does not start.
standin_start() {
	STANDIN_DIR=$1
	mkdir -p "$STANDIN_DIR"
	rm -f "$STANDIN_DIR/port"
	"$STANDIN_PYTHON" "$STANDIN_SCRIPT" --state-dir "$STANDIN_DIR" --listen 127.0.0.1 \
		>"$STANDIN_DIR/standin.log" 2>&1 &
	STANDIN_PID=$!

	local deadline=$((SECONDS + STANDIN_START_TIMEOUT))
	while [ ! -s "$STANDIN_DIR/port" ]; do
		if ! kill -0 "$STANDIN_PID" 2>/dev/null; then
			mlb_log "the stand-in API server exited while starting; its log:"
			cat "$STANDIN_DIR/standin.log" >&2
			STANDIN_PID=
			return 1
		fi
		if [ "$SECONDS" -ge "$deadline" ]; then
			mlb_log "the stand-in API server did not listen within $STANDIN_START_TIMEOUT s; its log:"
			cat "$STANDIN_DIR/standin.log" >&2
			standin_stop
			return 1
		fi
		sleep 0.1
	done
	STANDIN_PORT=$(cat "$STANDIN_DIR/port")
	STANDIN_URL=$(cat "$STANDIN_DIR/url")
	mlb_log "stand-in API server at $STANDIN_URL (pid $STANDIN_PID, state $STANDIN_DIR)"
}

# Stop the server that standin_start started: SIGTERM, then SIGKILL after
# 10 s. Does nothing when none runs.
standin_stop() {
	[ -n "${STANDIN_PID:-}" ] || return 0
	kill -TERM "$STANDIN_PID" 2>/dev/null || true
	local deadline=$((SECONDS + 10))
	while kill -0 "$STANDIN_PID" 2>/dev/null; do
		if [ "$SECONDS" -ge "$deadline" ]; then
			kill -KILL "$STANDIN_PID" 2>/dev/null || true
			break
		fi
		sleep 0.1
	done
	wait "$STANDIN_PID" 2>/dev/null || true
	STANDIN_PID=
}

# Run the stand-in's control client ("standin.py ctl"): set-version,
# faults, role, stats, ... It prints the JSON response on stdout.
standin_ctl() {
	"$STANDIN_PYTHON" "$STANDIN_SCRIPT" ctl --state-dir "$STANDIN_DIR" "$@"
}

# Run kubectl against the stand-in as its admin (client certificate).
standin_kubectl() {
	kubectl --kubeconfig "$STANDIN_DIR/admin.kubeconfig" --request-timeout=30s "$@"
}

# Print each status outside 2xx that the stand-in returned since it started
# or its statistics were last reset, as "CODE:COUNT" separated by spaces and
# sorted by code. The line is empty when there was none.
standin_stats_failures() {
	standin_ctl stats | "$STANDIN_PYTHON" -c '
import json, sys
stats = json.load(sys.stdin)
bad = {code: count for code, count in stats.get("byStatus", {}).items() if not code.startswith("2")}
print(" ".join(f"{code}:{count}" for code, count in sorted(bad.items())))'
}

# Print how many PATCH requests (server-side applies, among others) the
# stand-in served since it started or its statistics were last reset.
standin_patch_count() {
	standin_ctl stats | "$STANDIN_PYTHON" -c '
import json, sys
print(json.load(sys.stdin).get("byMethod", {}).get("PATCH", 0))'
}

# Print a TCP port on 127.0.0.1 that nothing listens on at the time of the
# call (the kernel picks it, and the socket is closed again).
standin_unused_port() {
	"$STANDIN_PYTHON" -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()'
}

# Write to OUT a copy of kubeconfig IN with certificate-authority-data set
# to the base64 of the PEM file CA.
standin_kubeconfig_with_ca() {
	local in=$1 ca=$2 out=$3
	"$STANDIN_PYTHON" - "$in" "$ca" "$out" <<'EOF'
import base64, re, sys
source, ca, target = sys.argv[1:4]
with open(source, encoding="utf-8") as handle:
    text = handle.read()
with open(ca, "rb") as handle:
    data = base64.b64encode(handle.read()).decode()
text, count = re.subn(r"certificate-authority-data: \S+",
                      "certificate-authority-data: " + data, text)
if count != 1:
    sys.exit(f"{source}: expected one certificate-authority-data, found {count}")
with open(target, "w", encoding="utf-8") as handle:
    handle.write(text)
EOF
}

# Write to OUT a copy of kubeconfig IN whose server is URL.
standin_kubeconfig_with_server() {
	local in=$1 url=$2 out=$3
	"$STANDIN_PYTHON" - "$in" "$url" "$out" <<'EOF'
import re, sys
source, url, target = sys.argv[1:4]
with open(source, encoding="utf-8") as handle:
    text = handle.read()
text, count = re.subn(r"server: \S+", "server: " + url, text)
if count != 1:
    sys.exit(f"{source}: expected one server, found {count}")
with open(target, "w", encoding="utf-8") as handle:
    handle.write(text)
EOF
}
