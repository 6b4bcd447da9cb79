#!/usr/bin/env bash
# `mlboot bundle pull` against real registries on 127.0.0.1: Debian's
# docker-registry over TLS with a CA the test makes, one instance open and
# one behind token authentication (lib/token-server.py). Proves platform
# selection of an image index, shared layers fetched and stored once,
# references by digest, a registry mirror keeping the original names, no
# second fetch of present blobs, digest checks, TLS verification, and
# bearer tokens with credentials from a docker config.json.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
. "$here/lib/registry.sh"
: "${MLBOOT:?MLBOOT must name the mlboot binary}"

mlb_require_root
mlb_install_packages docker-registry skopeo openssl curl python3
command -v "$MLB_REGISTRY_BIN" >/dev/null || mlb_die "'$MLB_REGISTRY_BIN' is missing after installing docker-registry"

work=$(mktemp -d)
token_pid=
storage_pid=
cleanup() {
	registry_stop "$work/open"
	registry_stop "$work/secured"
	[ -n "$token_pid" ] && kill "$token_pid" 2>/dev/null && wait "$token_pid" 2>/dev/null
	[ -n "$storage_pid" ] && kill "$storage_pid" 2>/dev/null && wait "$storage_pid" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT
certs=$work/certs
registry_make_ca "$certs"
# No proxy may take these requests elsewhere.
export no_proxy=127.0.0.1,localhost NO_PROXY=127.0.0.1,localhost
unset https_proxy HTTPS_PROXY http_proxy HTTP_PROXY all_proxy ALL_PROXY

port=$(registry_free_port)
registry_start "$work/open" "$port" "$certs"
registry=127.0.0.1:$port

# --- Test images ---------------------------------------------------------
images=$work/images
mkdir -p "$images"
make_image() {
	"$here/lib/make-oci-image" "$@" | sed 's/.*@//'
}
amd64_digest=$(MLB_OCI_PLATFORM=linux/amd64 make_image demo/multi:amd64 "$images/multi-amd64.tar" amd64) ||
	mlb_die "make-oci-image failed"
arm64_digest=$(MLB_OCI_PLATFORM=linux/arm64 make_image demo/multi:arm64 "$images/multi-arm64.tar" arm64) ||
	mlb_die "make-oci-image failed"
alpha_digest=$(MLB_OCI_PLATFORM=linux/amd64 make_image demo/alpha:1.0 "$images/alpha.tar" alpha "$images/shared.tar.gz")
beta_digest=$(MLB_OCI_PLATFORM=linux/amd64 make_image demo/beta:1.0 "$images/beta.tar" beta "$images/shared.tar.gz")
MLB_OCI_PLATFORM=linux/amd64 make_image library/tiny:1.0 "$images/tiny.tar" tiny >/dev/null
registry_push "$images/multi-amd64.tar" "$registry/demo/multi:amd64" "$certs"
registry_push "$images/multi-arm64.tar" "$registry/demo/multi:arm64" "$certs"
registry_push "$images/alpha.tar" "$registry/demo/alpha:1.0" "$certs"
registry_push "$images/beta.tar" "$registry/demo/beta:1.0" "$certs"
registry_push "$images/tiny.tar" "$registry/library/tiny:1.0" "$certs"

# An image index over the two platform images, pushed with the registry API.
/usr/bin/python3 - "$registry" "$certs/ca.crt" "$amd64_digest" "$arm64_digest" >"$work/index.json" <<'PY' ||
import json, ssl, sys, urllib.request
registry, ca, amd64, arm64 = sys.argv[1:]
context = ssl.create_default_context(cafile=ca)
def size(digest):
    request = urllib.request.Request(f"https://{registry}/v2/demo/multi/manifests/{digest}",
        headers={"Accept": "application/vnd.oci.image.manifest.v1+json"})
    return len(urllib.request.urlopen(request, context=context).read())
manifest = "application/vnd.oci.image.manifest.v1+json"
print(json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [
    {"mediaType": manifest, "digest": amd64, "size": size(amd64), "platform": {"os": "linux", "architecture": "amd64"}},
    {"mediaType": manifest, "digest": arm64, "size": size(arm64),
     "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"}}]}, separators=(",", ":")))
PY
	mlb_die "failed to write the image index"
curl -sf --cacert "$certs/ca.crt" -X PUT -H "Content-Type: application/vnd.oci.image.index.v1+json" \
	--data-binary "@$work/index.json" "https://$registry/v2/demo/multi/manifests/1.0" ||
	mlb_die "failed to push the image index"
index_digest=sha256:$(sha256sum "$work/index.json" | cut -d' ' -f1)

failures=0
fail() {
	mlb_log "FAIL: $*"
	failures=$((failures + 1))
}
pull() {
	"$MLBOOT" bundle pull --ca-file "$certs/ca.crt" "$@"
}
blob() {
	printf '%s/blobs/sha256/%s' "$1" "${2#sha256:}"
}
# layout_name LAYOUT NAME: prints the digest index.json records for NAME.
layout_name() {
	/usr/bin/python3 -c '
import json, sys
for m in json.load(open(sys.argv[1] + "/index.json"))["manifests"]:
    a = m.get("annotations", {})
    if a.get("dev.mlboot.image.name") == sys.argv[2]:
        assert a.get("org.opencontainers.image.ref.name") == sys.argv[2]
        assert a.get("io.containerd.image.name") == sys.argv[2]
        print(m["digest"], a.get("dev.mlboot.image.source", "-"))
' "$1" "$2"
}
# layer_of LAYOUT MANIFEST_DIGEST: prints the digests of a manifest's layers.
layers_of() {
	/usr/bin/python3 -c '
import json, sys
for layer in json.load(open(sys.argv[1]))["layers"]:
    print(layer["digest"])' "$(blob "$1" "$2")"
}

# --- An image index: only the platforms asked for -------------------------
layout=$work/layout-index
pull --layout "$layout" "$registry/demo/multi:1.0" >"$work/out" || fail "pulling the index failed"
grep -qx "$registry/demo/multi:1.0 $index_digest" "$work/out" || fail "unexpected output: $(cat "$work/out")"
[ "$(layout_name "$layout" "$registry/demo/multi:1.0")" = "$index_digest -" ] || fail "index.json does not name the index"
cmp -s "$(blob "$layout" "$index_digest")" "$work/index.json" || fail "the index was not stored byte for byte"
[ -f "$(blob "$layout" "$amd64_digest")" ] || fail "the linux/amd64 manifest is missing"
[ ! -e "$(blob "$layout" "$arm64_digest")" ] || fail "the linux/arm64 manifest was stored though not asked for"
for layer in $(layers_of "$layout" "$amd64_digest"); do
	[ -f "$(blob "$layout" "$layer")" ] || fail "the amd64 layer $layer is missing"
done

layout=$work/layout-both
pull --layout "$layout" --platform linux/amd64,linux/arm64 "$registry/demo/multi:1.0" >/dev/null ||
	fail "pulling two platforms failed"
for digest in "$amd64_digest" "$arm64_digest"; do
	[ -f "$(blob "$layout" "$digest")" ] || fail "the manifest $digest is missing with two platforms"
	for layer in $(layers_of "$layout" "$digest"); do
		[ -f "$(blob "$layout" "$layer")" ] || fail "the layer $layer is missing"
	done
done

status=0
pull --layout "$work/layout-none" --platform linux/s390x "$registry/demo/multi:1.0" >/dev/null 2>&1 || status=$?
[ "$status" -eq 3 ] || fail "a platform the index lacks gave exit status $status, expected 3"

# --- Two images sharing a layer: fetched once, stored once -----------------
layout=$work/layout-shared
before=$(registry_count "$work/open" '/blobs/')
pull --layout "$layout" "$registry/demo/alpha:1.0" "$registry/demo/beta:1.0" >/dev/null || fail "pulling alpha and beta failed"
shared=$(comm -12 <(layers_of "$layout" "$alpha_digest" | sort) <(layers_of "$layout" "$beta_digest" | sort))
[ -n "$shared" ] || fail "alpha and beta share no layer: the test images are wrong"
[ "$(registry_count "$work/open" "/blobs/$shared")" -eq 1 ] ||
	fail "the shared layer was requested $(registry_count "$work/open" "/blobs/$shared") times, expected once"
# 2 configs, 2 own layers and 1 shared layer.
[ $(($(registry_count "$work/open" '/blobs/') - before)) -eq 5 ] || fail "expected 5 blob requests"
[ "$(find "$layout/blobs/sha256" -type f | wc -l)" -eq 7 ] ||
	fail "expected 7 blobs (2 manifests, 2 configs, 3 layers): $(find "$layout/blobs/sha256" -type f | wc -l)"

# A second pull fetches no blob: the layout has them all.
before=$(registry_count "$work/open" '/blobs/')
pull --layout "$layout" "$registry/demo/alpha:1.0" "$registry/demo/beta:1.0" >/dev/null 2>"$work/err" ||
	fail "the second pull failed"
[ "$(registry_count "$work/open" '/blobs/')" -eq "$before" ] || fail "the second pull fetched blobs again"
grep -q '0 blobs fetched\|and 0 blobs fetched' "$work/err" || fail "the second pull reports fetching: $(cat "$work/err")"

# --- A reference by digest ---------------------------------------------------
layout=$work/layout-digest
pull --layout "$layout" "$registry/demo/alpha@$alpha_digest" >/dev/null || fail "pulling by digest failed"
[ "$(layout_name "$layout" "$registry/demo/alpha@$alpha_digest")" = "$alpha_digest -" ] ||
	fail "the digest reference is not recorded under its name"
status=0
pull --layout "$layout" "$registry/demo/alpha@$beta_digest" >/dev/null 2>&1 || status=$?
[ "$status" -ne 0 ] || fail "a digest the repository does not have was pulled"

# --- A mirror: docker.io names, content from the local registry --------------
layout=$work/layout-mirror
pull --layout "$layout" --registry-mirror "docker.io=$registry" tiny:1.0 >"$work/out" || fail "pulling through a mirror failed"
grep -q '^docker.io/library/tiny:1.0 sha256:' "$work/out" || fail "the mirror pull printed: $(cat "$work/out")"
[ "$(layout_name "$layout" docker.io/library/tiny:1.0 | cut -d' ' -f2)" = "$registry" ] ||
	fail "index.json does not keep docker.io/library/tiny:1.0 with the mirror as its source"

# --- Integrity: a blob changed in the registry's storage is rejected ----------
own_layer=$(comm -23 <(layers_of "$work/layout-shared" "$alpha_digest" | sort) <(echo "$shared"))
data=$(find "$work/open/storage" -path "*/blobs/sha256/*/${own_layer#sha256:}/data")
[ -f "$data" ] || mlb_die "the registry stores no data file for $own_layer"
/usr/bin/python3 -c '
import sys
with open(sys.argv[1], "r+b") as f:
    b = f.read(1); f.seek(0); f.write(bytes([b[0] ^ 0xff]))' "$data"
layout=$work/layout-tampered
status=0
pull --layout "$layout" "$registry/demo/alpha:1.0" >/dev/null 2>"$work/err" || status=$?
[ "$status" -eq 4 ] || fail "a tampered blob gave exit status $status, expected 4: $(cat "$work/err")"
[ ! -e "$(blob "$layout" "$own_layer")" ] || fail "the tampered blob was kept"
[ -z "$(find "$layout/blobs" -name '.partial-*')" ] || fail "a partial blob file was left behind"

# --- TLS: the system CA store does not trust the test CA -----------------------
status=0
"$MLBOOT" bundle pull --layout "$work/layout-tls" "$registry/demo/beta:1.0" >/dev/null 2>&1 || status=$?
[ "$status" -eq 6 ] || fail "an untrusted certificate gave exit status $status, expected 6"

# --- Token authentication with credentials from docker config.json ------------
token_port=$(registry_free_port)
/usr/bin/python3 "$here/lib/token-server.py" "$token_port" "$certs/server.crt" "$certs/server.key" \
	"$certs/token.crt" "$certs/token.key" "puller:s3cret-pass" "$work/token.log" &
token_pid=$!
mlb_wait_until 20 curl -s -o /dev/null --cacert "$certs/ca.crt" "https://127.0.0.1:$token_port/" ||
	mlb_die "the token server did not start"
# Blob downloads of the secured registry are redirected to another origin,
# a file server on its storage folder, as registries redirect to object storage.
storage_port=$(registry_free_port)
mkdir -p "$work/secured/storage"
/usr/bin/python3 "$here/lib/artifact-server.py" "$storage_port" "$certs/server.crt" "$certs/server.key" \
	"$work/secured/storage" "$work/storage.log" &
storage_pid=$!
mlb_wait_until 20 curl -s -o /dev/null --cacert "$certs/ca.crt" "https://127.0.0.1:$storage_port/" ||
	mlb_die "the blob storage server did not start"
secured_port=$(registry_free_port)
registry_start "$work/secured" "$secured_port" "$certs" "https://127.0.0.1:$token_port/token" \
	"https://127.0.0.1:$storage_port/"
secured=127.0.0.1:$secured_port
registry_push "$images/tiny.tar" "$secured/private/tiny:1.0" "$certs" "puller:s3cret-pass"

status=0
pull --layout "$work/layout-anonymous" "$secured/private/tiny:1.0" >/dev/null 2>&1 || status=$?
[ "$status" -eq 6 ] || fail "an anonymous pull from the secured registry gave exit status $status, expected 6"

auth=$(printf 'puller:s3cret-pass' | base64)
printf '{"auths":{"https://%s/v1/":{"auth":"%s"}},"credsStore":"none-run"}\n' "$secured" "$auth" >"$work/config.json"
pull -vv --docker-config "$work/config.json" --layout "$work/layout-token" "$secured/private/tiny:1.0" \
	>"$work/out" 2>"$work/err" || fail "the pull with credentials failed: $(tail -n 5 "$work/err")"
grep -q "^$secured/private/tiny:1.0 sha256:" "$work/out" || fail "the token pull printed: $(cat "$work/out")"
grep -q '^GET /token 200 basic$' "$work/token.log" || fail "no token was issued for the credentials"
# Blobs came from the storage origin, which never saw the registry's token.
grep -qE '^GET /docker/registry/v2/blobs/sha256/[0-9a-f]{2}/[0-9a-f]{64}/data 200 - none$' "$work/storage.log" ||
	fail "no blob was downloaded through the redirect: $(cat "$work/storage.log")"
if grep -v ' none$' "$work/storage.log" | grep -q .; then
	fail "the Authorization header was sent to the redirected host: $(cat "$work/storage.log")"
fi
if grep -q 's3cret-pass\|cHVsbGVyOnMzY3JldC1wYXNz' "$work/err" "$work/out"; then
	fail "the password appears in mlboot's output"
fi

printf '{"auths":{"%s":{"auth":"%s"}}}\n' "$secured" "$(printf 'puller:wrong' | base64)" >"$work/wrong.json"
status=0
pull --docker-config "$work/wrong.json" --layout "$work/layout-wrong" "$secured/private/tiny:1.0" >/dev/null 2>&1 ||
	status=$?
[ "$status" -eq 6 ] || fail "wrong credentials gave exit status $status, expected 6"

[ "$failures" -eq 0 ] || mlb_die "$failures checks failed"
echo "registry pull: every check passed"
