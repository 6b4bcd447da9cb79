#!/usr/bin/env bash
# `mlboot bundle build --cache` with network sources, against servers on
# 127.0.0.1 only: an HTTPS artifact server (lib/artifact-server.py) for url
# sources and Debian's docker-registry for images. Proves a cut download
# resumes with Range, a tampered download is rejected and deleted, images
# are pulled (docker.io names through a mirror), catalog.lock pins them, a
# second build sends no request, --locked rejects what is not pinned, and a
# manifest naming an image the bundle lacks stops the build.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
. "$here/lib/registry.sh"
: "${MLBOOT:?MLBOOT must name the mlboot binary}"

mlb_require_root
mlb_install_packages docker-registry skopeo openssl curl python3

work=$(mktemp -d)
artifact_pid=
cleanup() {
	registry_stop "$work/registry"
	[ -n "$artifact_pid" ] && kill "$artifact_pid" 2>/dev/null && wait "$artifact_pid" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT
export no_proxy=127.0.0.1,localhost NO_PROXY=127.0.0.1,localhost
unset https_proxy HTTPS_PROXY http_proxy HTTP_PROXY all_proxy ALL_PROXY

certs=$work/certs
registry_make_ca "$certs"
port=$(registry_free_port)
registry_start "$work/registry" "$port" "$certs"
registry=127.0.0.1:$port

images=$work/images
mkdir -p "$images"
MLB_OCI_PLATFORM=linux/amd64 "$here/lib/make-oci-image" demo/alpha:1.0 "$images/alpha.tar" alpha "$images/shared.tar.gz" >/dev/null
MLB_OCI_PLATFORM=linux/amd64 "$here/lib/make-oci-image" library/tiny:1.0 "$images/tiny.tar" tiny "$images/shared.tar.gz" >/dev/null
registry_push "$images/alpha.tar" "$registry/demo/alpha:1.0" "$certs"
registry_push "$images/tiny.tar" "$registry/library/tiny:1.0" "$certs"

# Files the artifact server offers: a manifest that names both images, a
# binary, and a large file to cut halfway.
files=$work/files
mkdir -p "$files"
cat >"$files/app.yaml" <<YAML
apiVersion: apps/v1
kind: Deployment
metadata: {name: app, namespace: demo}
spec:
  template:
    spec:
      containers:
      - {name: app, image: "$registry/demo/alpha:1.0"}
      initContainers:
      - {name: init, image: "tiny:1.0"}
YAML
printf '#!/bin/sh\necho hello\n' >"$files/hello.sh"
head -c 3000000 /dev/urandom >"$files/big.bin"
app_sha=$(sha256sum "$files/app.yaml" | cut -d' ' -f1)
big_sha=$(sha256sum "$files/big.bin" | cut -d' ' -f1)

artifact_port=$(registry_free_port)
/usr/bin/python3 "$here/lib/artifact-server.py" "$artifact_port" "$certs/server.crt" "$certs/server.key" \
	"$files" "$work/artifact.log" &
artifact_pid=$!
mlb_wait_until 20 curl -s -o /dev/null --cacert "$certs/ca.crt" "https://127.0.0.1:$artifact_port/hello.sh" ||
	mlb_die "the artifact server did not start"
artifacts=https://127.0.0.1:$artifact_port

# write_catalog FILE [EXTRA_MANIFEST_URL [EXTRA_BINARY_URL]]: the test catalog,
# with one more manifest or binary when asked.
write_catalog() {
	local extra_manifest=${2:-} extra_binary=${3:-}
	{
		cat <<YAML
apiVersion: mlboot.dev/v1alpha1
kind: Catalog
metadata: {name: network-test}
spec:
  version: 1.0.0
  kubernetes: {minVersion: "1.24", maxVersion: "1.33"}
  platforms: [linux/amd64]
  components:
  - name: app
    version: "1.0"
    namespace: demo
    manifests:
    - url: $artifacts/cut/app.yaml
YAML
		[ -n "$extra_manifest" ] && printf '    - url: %s\n' "$extra_manifest"
		cat <<YAML
    images:
    - name: $registry/demo/alpha:1.0
    - name: tiny:1.0
    binaries:
    - name: hello
      platform: linux/amd64
      url: $artifacts/redirect/hello.sh
    - name: big
      platform: linux/amd64
      url: $artifacts/cut/big.bin
      sha256: $big_sha
YAML
		[ -n "$extra_binary" ] && printf '    - {name: extra, platform: linux/amd64, url: %s}\n' "$extra_binary"
	} >"$1"
}

failures=0
fail() {
	mlb_log "FAIL: $*"
	failures=$((failures + 1))
}
build() {
	"$MLBOOT" bundle build --ca-file "$certs/ca.crt" --registry-mirror "docker.io=$registry" "$@"
}

src=$work/src
mkdir -p "$src"
write_catalog "$src/catalog.yaml"
cache=$work/cache

# --- First build: fetch, resume, pull, lock -------------------------------
build -f "$src/catalog.yaml" -o "$work/first.bundle" --cache "$cache" >"$work/out" 2>"$work/err" ||
	fail "the first build failed: $(tail -n 20 "$work/err")"
[ -f "$work/first.bundle" ] || fail "the first build wrote no bundle"
"$MLBOOT" bundle verify --allow-unsigned "$work/first.bundle" >/dev/null 2>&1 || fail "the first bundle does not verify"

# The cut downloads were resumed from where they stopped.
grep -q '^GET /cut/big.bin 200-cut - none$' "$work/artifact.log" || fail "big.bin was not cut: $(cat "$work/artifact.log")"
grep -qE '^GET /cut/big.bin 206 bytes=[1-9][0-9]*- none$' "$work/artifact.log" ||
	fail "big.bin was not resumed with a Range request: $(cat "$work/artifact.log")"
grep -qE '^GET /cut/app.yaml 206 bytes=[1-9][0-9]*- none$' "$work/artifact.log" || fail "app.yaml was not resumed"
grep -q '^GET /redirect/hello.sh 302 - none$' "$work/artifact.log" || fail "the redirect was not taken"
cmp -s "$cache/sha256/$big_sha" "$files/big.bin" || fail "the resumed big.bin differs from the original"

# catalog.lock pins every url and every image.
lock=$src/catalog.lock
[ -f "$lock" ] || fail "no catalog.lock was written"
grep -q "sha256: $app_sha" "$lock" || fail "catalog.lock lacks app.yaml's sha256"
grep -q "sha256: $big_sha" "$lock" || fail "catalog.lock lacks big.bin's sha256"
grep -q "name: \"$registry/demo/alpha:1.0\"" "$lock" || fail "catalog.lock lacks the alpha image"
grep -q 'name: "docker.io/library/tiny:1.0"' "$lock" || fail "catalog.lock lacks docker.io/library/tiny:1.0"
[ "$(grep -c 'digest: "sha256:' "$lock")" -eq 2 ] || fail "catalog.lock should pin 2 image digests"

"$MLBOOT" bundle inspect "$work/first.bundle" >"$work/inspect" 2>/dev/null || fail "inspect failed"
grep -q "docker.io/library/tiny:1.0" "$work/inspect" || fail "the bundle lacks docker.io/library/tiny:1.0"
grep -q "$registry/demo/alpha:1.0" "$work/inspect" || fail "the bundle lacks the alpha image"
# A manifest fetched from a URL is stored under the URL's file name, not its sha256.
"$MLBOOT" bundle inspect -o json "$work/first.bundle" >"$work/inspect.json" 2>/dev/null || fail "inspect -o json failed"
grep -q '"components/app/manifests/app.yaml"' "$work/inspect.json" ||
	fail "the fetched manifest is not stored as components/app/manifests/app.yaml: $(cat "$work/inspect.json")"
grep -q "components/app/manifests/$app_sha" "$work/inspect.json" && fail "the fetched manifest is stored under its sha256"

# --- Second build: everything is pinned and cached, so nothing is requested ---
registry_requests=$(grep -c 'response completed' "$work/registry/registry.log")
artifact_requests=$(wc -l <"$work/artifact.log")
build -f "$src/catalog.yaml" -o "$work/second.bundle" --cache "$cache" --locked >/dev/null 2>"$work/err" ||
	fail "the second build failed: $(tail -n 20 "$work/err")"
[ "$(grep -c 'response completed' "$work/registry/registry.log")" -eq "$registry_requests" ] ||
	fail "the second build sent requests to the registry"
[ "$(wc -l <"$work/artifact.log")" -eq "$artifact_requests" ] || fail "the second build fetched files again"
cmp -s "$work/first.bundle" "$work/second.bundle" || fail "the second build gave different bytes"

# --- --locked: a source that is not pinned is refused, and named -------------
write_catalog "$src/locked.yaml" "" "$artifacts/hello.sh"
cp "$lock" "$src/locked.lock"
status=0
build -f "$src/locked.yaml" -o "$work/locked.bundle" --cache "$cache" --locked >/dev/null 2>"$work/err" || status=$?
[ "$status" -eq 3 ] || fail "--locked with an unpinned source gave exit status $status, expected 3"
grep -q "'$artifacts/hello.sh' is not pinned" "$work/err" || fail "--locked did not name the source: $(cat "$work/err")"
[ ! -e "$work/locked.bundle" ] || fail "--locked wrote a bundle"

# --- A manifest naming an image that is not in the bundle ----------------------
cat >"$files/missing.yaml" <<YAML
apiVersion: v1
kind: Pod
metadata: {name: missing}
spec:
  containers:
  - {name: a, image: "$registry/demo/not-listed:2.0"}
YAML
write_catalog "$src/missing.yaml" "$artifacts/missing.yaml"
status=0
build -f "$src/missing.yaml" -o "$work/missing.bundle" --cache "$cache" >/dev/null 2>"$work/err" || status=$?
[ "$status" -eq 3 ] || fail "a manifest with an image not in the bundle gave exit status $status, expected 3"
grep -q "the image '$registry/demo/not-listed:2.0' is not in the bundle" "$work/err" ||
	fail "the missing image was not named: $(cat "$work/err")"
[ ! -e "$work/missing.bundle" ] || fail "a bundle was written though an image is missing"

# --- Images the registry does not have: each is named, and none is pulled -----
cat >"$src/absent.yaml" <<YAML
apiVersion: mlboot.dev/v1alpha1
kind: Catalog
metadata: {name: absent}
spec:
  version: 1.0.0
  kubernetes: {minVersion: "1.24", maxVersion: "1.33"}
  platforms: [linux/amd64]
  components:
  - name: app
    version: "1.0"
    images:
    - name: $registry/demo/absent:1.0
    - name: tiny:1.0
    - name: $registry/demo/alpha:9.9
YAML
status=0
build -f "$src/absent.yaml" -o "$work/absent.bundle" --cache "$work/absent-cache" >/dev/null 2>"$work/err" || status=$?
[ "$status" -eq 3 ] || fail "images missing from the registry gave exit status $status, expected 3: $(tail -n 5 "$work/err")"
grep -q "the image '$registry/demo/absent:1.0' was not found: the registry $registry has no such" "$work/err" ||
	fail "the missing repository was not named: $(cat "$work/err")"
grep -q "the image '$registry/demo/alpha:9.9' was not found" "$work/err" ||
	fail "the missing tag was not named, or the build stopped at the first missing image: $(cat "$work/err")"
grep -q "docker.io/library/tiny:1.0' was not found" "$work/err" && fail "an image the mirror has was reported missing"
[ ! -e "$work/absent.bundle" ] || fail "a bundle was written though images are missing"

# --- A tampered download fails its pin and is deleted ---------------------------
cat >"$src/tampered.yaml" <<YAML
apiVersion: mlboot.dev/v1alpha1
kind: Catalog
metadata: {name: tampered}
spec:
  version: 1.0.0
  kubernetes: {minVersion: "1.24", maxVersion: "1.33"}
  platforms: [linux/amd64]
  components:
  - name: app
    version: "1.0"
    binaries:
    - name: big
      platform: linux/amd64
      url: $artifacts/tamper/big.bin
      sha256: $big_sha
YAML
tamper_cache=$work/tamper-cache
status=0
build -f "$src/tampered.yaml" -o "$work/tampered.bundle" --cache "$tamper_cache" >/dev/null 2>"$work/err" || status=$?
[ "$status" -eq 4 ] || fail "a tampered download gave exit status $status, expected 4: $(tail -n 5 "$work/err")"
grep -qE '^GET /tamper/big.bin 206 bytes=[1-9][0-9]*- none$' "$work/artifact.log" || fail "the tampered file was not resumed"
[ -z "$(find "$tamper_cache" -type f -name '*.part')" ] || fail "the tampered .part file was kept"
[ ! -e "$tamper_cache/sha256/$big_sha" ] || fail "the tampered file was kept under its pin"
[ ! -e "$work/tampered.bundle" ] || fail "a bundle was written from a tampered file"

mlb_log "catalog.lock of the first build:"
cat "$lock" >&2
mlb_log "requests the artifact server saw:"
cat "$work/artifact.log" >&2
[ "$failures" -eq 0 ] || mlb_die "$failures checks failed"
echo "bundle build with network sources: every check passed"
