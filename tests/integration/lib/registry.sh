# shellcheck shell=bash
# Test registries for the image tests: Debian's docker-registry
# (distribution 2.8) serving TLS on 127.0.0.1 with a CA the test makes,
# optionally with token authentication through lib/token-server.py.
# Source after lib.sh. Every function reports failures through mlb_die.

MLB_REGISTRY_BIN=${MLB_REGISTRY_BIN:-/usr/bin/docker-registry}

# registry_make_ca DIR: a CA (ca.crt) and a server certificate for
# 127.0.0.1 and localhost (server.crt, server.key) signed by it, plus a
# token signing key and certificate (token.key, token.crt).
registry_make_ca() {
	local dir=$1
	mkdir -p "$dir"
	openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=mlboot test CA" \
		-keyout "$dir/ca.key" -out "$dir/ca.crt" 2>/dev/null || mlb_die "openssl failed to make the test CA"
	openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" \
		-keyout "$dir/server.key" -out "$dir/server.csr" 2>/dev/null || mlb_die "openssl failed to make a request"
	printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n' >"$dir/server.ext"
	openssl x509 -req -in "$dir/server.csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" -CAcreateserial \
		-days 2 -extfile "$dir/server.ext" -out "$dir/server.crt" 2>/dev/null ||
		mlb_die "openssl failed to sign the server certificate"
	openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=mlboot test token issuer" \
		-keyout "$dir/token.key" -out "$dir/token.crt" 2>/dev/null || mlb_die "openssl failed to make the token key"
}

# registry_free_port: prints a TCP port on 127.0.0.1 that nothing listens on.
registry_free_port() {
	/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# registry_start DIR PORT CERTS [TOKEN_REALM [REDIRECT_BASE]]: runs
# docker-registry on 127.0.0.1:PORT with storage in DIR/storage and its log
# in DIR/registry.log; with TOKEN_REALM, clients need a token from that
# realm; with REDIRECT_BASE, blob downloads are redirected to REDIRECT_BASE
# followed by the blob's storage path (distribution's redirect storage
# middleware). Writes DIR/pid.
registry_start() {
	local dir=$1 port=$2 certs=$3 realm=${4:-} redirect=${5:-}
	mkdir -p "$dir/storage"
	{
		printf 'version: 0.1\n'
		printf 'log:\n  level: info\n  accesslog:\n    disabled: false\n'
		printf 'storage:\n  filesystem:\n    rootdirectory: %s/storage\n  delete:\n    enabled: true\n' "$dir"
		printf 'http:\n  addr: 127.0.0.1:%s\n  secret: mlboot-test-secret\n' "$port"
		printf '  tls:\n    certificate: %s/server.crt\n    key: %s/server.key\n' "$certs" "$certs"
		if [ -n "$realm" ]; then
			printf 'auth:\n  token:\n    realm: %s\n    service: mlboot-test-registry\n' "$realm"
			printf '    issuer: mlboot-test-issuer\n    rootcertbundle: %s/token.crt\n' "$certs"
		fi
		if [ -n "$redirect" ]; then
			printf 'middleware:\n  storage:\n  - name: redirect\n    options:\n      baseurl: %s\n' "$redirect"
		fi
	} >"$dir/config.yml"
	"$MLB_REGISTRY_BIN" serve "$dir/config.yml" >"$dir/registry.log" 2>&1 &
	echo $! >"$dir/pid"
	mlb_wait_until 20 curl -s -o /dev/null --cacert "$certs/ca.crt" "https://127.0.0.1:$port/v2/" ||
		mlb_die "the registry on port $port did not start: $(tail -n 5 "$dir/registry.log")"
}

# registry_stop DIR: stops the registry started with DIR.
registry_stop() {
	local dir=$1 pid
	[ -f "$dir/pid" ] || return 0
	pid=$(cat "$dir/pid")
	kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
	rm -f "$dir/pid"
}

# registry_count DIR PATTERN: how many completed GET requests in the
# registry's log have a URI matching the extended regular expression PATTERN.
# The log quotes a URI only when it has characters such as ':' (a digest),
# so both forms are read. PATTERN is matched against the bare URI.
registry_count() {
	local dir=$1 pattern=$2
	grep 'response completed' "$dir/registry.log" | grep 'http.request.method=GET' |
		grep -oE 'http.request.uri=("[^"]*"|[^ "]*)' | sed -e 's/^http.request.uri=//' -e 's/^"//' -e 's/"$//' |
		grep -cE "$pattern" || true
}

# registry_push ARCHIVE DESTINATION CERTS [CREDS]: copies an OCI archive to
# docker://DESTINATION with skopeo, keeping the manifest bytes.
registry_push() {
	local archive=$1 destination=$2 certs=$3 creds=${4:-}
	local policy
	policy=$(dirname "$archive")/policy.json
	printf '{"default":[{"type":"insecureAcceptAnything"}]}\n' >"$policy"
	local -a extra=()
	[ -n "$creds" ] && extra=(--dest-creds "$creds")
	# skopeo reads CA certificates (*.crt) from the folder given.
	mkdir -p "$certs/skopeo"
	cp "$certs/ca.crt" "$certs/skopeo/ca.crt"
	skopeo --policy "$policy" copy --quiet --preserve-digests --dest-cert-dir "$certs/skopeo" "${extra[@]}" \
		"oci-archive:$archive" "docker://$destination" >&2 || mlb_die "skopeo failed to push '$destination'"
}
