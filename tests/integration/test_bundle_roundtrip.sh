#!/usr/bin/env bash
# The bundle commands end to end through the mlboot binary: keygen, build
# from the fixture catalog, verify, inspect (text and JSON), unpack, and
# the exit statuses for the common mistakes (0 success, 2 usage, 3 invalid
# input, 4 integrity). Also checks that two builds give identical bytes and
# that GNU tar and sha256sum accept the bundle as an ordinary tar.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
fixtures="$here/../fixtures/bundle"

MLBOOT=${MLBOOT:?MLBOOT must name the mlboot binary}
command -v python3 >/dev/null || mlb_skip "python3 is not installed"

work=$(mktemp -d /tmp/mlboot-roundtrip.XXXXXX)
trap 'rm -rf "$work"' EXIT
failures=0
checks=0

# expect STATUS DESCRIPTION COMMAND...: runs the command, output in $work/out and $work/err.
expect() {
	local status=$1 description=$2
	shift 2
	checks=$((checks + 1))
	"$@" >"$work/out" 2>"$work/err"
	local actual=$?
	if [ "$actual" -ne "$status" ]; then
		echo "FAIL $description: exit $actual, expected $status" >&2
		sed 's/^/  | /' "$work/err" >&2
		failures=$((failures + 1))
		return 1
	fi
	return 0
}

# contains FILE TEXT DESCRIPTION
contains() {
	checks=$((checks + 1))
	if ! grep -qF -- "$2" "$1"; then
		echo "FAIL $3: '$2' not found in:" >&2
		sed 's/^/  | /' "$1" >&2
		failures=$((failures + 1))
	fi
}

cp -r "$fixtures" "$work/src"
python3 "$fixtures/make_layout.py" "$work/src/images/controller" \
	--name quay.io/jetstack/cert-manager-controller:v1.14.4 --layer 21:200000 --layer 22:3000 >/dev/null
python3 "$fixtures/make_layout.py" "$work/src/images/webhook" --archive "$work/src/images/webhook.tar" \
	--name quay.io/jetstack/cert-manager-webhook:v1.14.4 --layer 21:200000 --layer 23:5000 \
	--platforms linux/amd64,linux/arm64 >/dev/null
rm -rf "$work/src/images/webhook"

# Keys.
expect 0 "keygen" "$MLBOOT" keygen -o "$work/signer"
[ "$(stat -c %a "$work/signer.key")" = 600 ] || { echo "FAIL keygen: the private key is not mode 0600" >&2; failures=$((failures + 1)); }
expect 3 "keygen refuses to overwrite" "$MLBOOT" keygen -o "$work/signer"
contains "$work/err" "already exists" "keygen overwrite message"
expect 0 "second key" "$MLBOOT" keygen -o "$work/other"
expect 2 "keygen without -o" "$MLBOOT" keygen

# Build, twice: identical bytes.
expect 0 "build" "$MLBOOT" bundle build -f "$work/src/catalog.yaml" -o "$work/a.bundle" --key "$work/signer.key"
contains "$work/out" "signed by key" "build output"
expect 0 "build again" "$MLBOOT" bundle build -f "$work/src/catalog.yaml" -o "$work/b.bundle" --key "$work/signer.key"
checks=$((checks + 1))
cmp -s "$work/a.bundle" "$work/b.bundle" || { echo "FAIL two builds differ" >&2; failures=$((failures + 1)); }
expect 0 "unsigned build" "$MLBOOT" bundle build -f "$work/src/catalog.yaml" -o "$work/unsigned.bundle"
expect 0 "build for one platform" "$MLBOOT" bundle build -f "$work/src/catalog.yaml" -o "$work/amd64.bundle" \
	--platform linux/amd64

# Verify.
expect 0 "verify" "$MLBOOT" bundle verify "$work/a.bundle" --pubkey "$work/signer.pub"
contains "$work/out" "OK" "verify result"
expect 4 "verify with another key" "$MLBOOT" bundle verify "$work/a.bundle" --pubkey "$work/other.pub"
contains "$work/err" "not trusted" "verify untrusted key message"
expect 0 "verify trusting both keys" "$MLBOOT" bundle verify "$work/a.bundle" --pubkey "$work/other.pub" --pubkey "$work/signer.pub"
expect 4 "verify unsigned" "$MLBOOT" bundle verify "$work/unsigned.bundle" --pubkey "$work/signer.pub"
contains "$work/err" "--allow-unsigned" "verify unsigned message"
expect 0 "verify unsigned, allowed" "$MLBOOT" bundle verify "$work/unsigned.bundle" --allow-unsigned
expect 3 "verify with a private key as public key" "$MLBOOT" bundle verify "$work/a.bundle" --pubkey "$work/signer.key"
expect 2 "verify without a file" "$MLBOOT" bundle verify
expect 1 "verify a missing file" "$MLBOOT" bundle verify "$work/missing.bundle" --pubkey "$work/signer.pub"

# GNU tar reads the bundle, and sha256sum accepts its SHA256SUMS.
mkdir "$work/tar"
checks=$((checks + 1))
if ! (cd "$work/tar" && tar -xf "$work/a.bundle" && sha256sum --quiet -c SHA256SUMS); then
	echo "FAIL tar -x and sha256sum -c" >&2
	failures=$((failures + 1))
fi

# Inspect.
expect 0 "inspect" "$MLBOOT" bundle inspect "$work/a.bundle" --pubkey "$work/signer.pub"
contains "$work/out" "cert-manager v1.14.4" "inspect components"
contains "$work/out" "1.24 to 1.33" "inspect Kubernetes range"
contains "$work/out" "quay.io/jetstack/cert-manager-webhook:v1.14.4" "inspect images"
contains "$work/out" "shared" "inspect shared bytes"
contains "$work/out" "disk needed" "inspect disk needed"
expect 0 "inspect json" "$MLBOOT" bundle inspect "$work/a.bundle" -o json --pubkey "$work/signer.pub"
checks=$((checks + 1))
if ! python3 - "$work/out" <<'EOF'
import json, sys
report = json.load(open(sys.argv[1]))
assert report["signature"]["state"] == "valid", report["signature"]
assert [c["name"] for c in report["components"]] == ["cert-manager", "sample"]
assert report["kubernetes"] == {"minVersion": "1.24", "maxVersion": "1.33"}
images = report["images"]
# The two images share one 200000-byte layer, stored once.
assert images["bytesShared"] >= 200000, images
assert images["bytesIfStoredAlone"] - images["bytesStored"] == images["bytesShared"]
assert report["disk"]["bytesNeeded"] >= report["disk"]["unpackedBytes"]
EOF
then
	echo "FAIL inspect json content" >&2
	failures=$((failures + 1))
fi
expect 2 "inspect with a bad format" "$MLBOOT" bundle inspect "$work/a.bundle" -o yaml

# Unpack.
expect 0 "unpack" "$MLBOOT" bundle unpack "$work/a.bundle" -C "$work/unpacked" --pubkey "$work/signer.pub"
checks=$((checks + 1))
if ! cmp -s "$work/unpacked/components/cert-manager/manifests/cert-manager.yaml" "$fixtures/manifests/cert-manager.yaml" ||
	! cmp -s "$work/unpacked/binaries/linux/amd64/hello" "$fixtures/bin/hello.sh" ||
	[ "$(stat -c %a "$work/unpacked/binaries/linux/arm64/hello")" != 755 ] ||
	[ ! -f "$work/unpacked/images/index.json" ] || [ ! -f "$work/unpacked/mlboot-bundle.yaml" ]; then
	echo "FAIL unpacked files differ from their sources" >&2
	failures=$((failures + 1))
fi
checks=$((checks + 1))
if find "$work/unpacked" -name '.mlboot-unpack-*' | grep -q .; then
	echo "FAIL unpack left its staging folder" >&2
	failures=$((failures + 1))
fi
checks=$((checks + 1))
if ! (cd "$work/unpacked/images" && python3 - <<'EOF'
import hashlib, json, os
index = json.load(open("index.json"))
for descriptor in index["manifests"]:
    digest = descriptor["digest"].split(":")[1]
    data = open(os.path.join("blobs", "sha256", digest), "rb").read()
    assert hashlib.sha256(data).hexdigest() == digest, digest
    assert len(data) == descriptor["size"], digest
    assert descriptor["annotations"]["io.containerd.image.name"].startswith("quay.io/jetstack/")
EOF
); then
	echo "FAIL the unpacked OCI layout is inconsistent" >&2
	failures=$((failures + 1))
fi
expect 1 "unpack into a non-empty folder" "$MLBOOT" bundle unpack "$work/a.bundle" -C "$work/unpacked" --pubkey "$work/signer.pub"
contains "$work/err" "not empty" "unpack non-empty message"
expect 4 "unpack unsigned" "$MLBOOT" bundle unpack "$work/unsigned.bundle" -C "$work/unsigned" --pubkey "$work/signer.pub"
checks=$((checks + 1))
[ ! -e "$work/unsigned" ] || { echo "FAIL a rejected unpack created its destination" >&2; failures=$((failures + 1)); }
expect 0 "unpack unsigned, allowed" "$MLBOOT" bundle unpack "$work/unsigned.bundle" -C "$work/unsigned" --allow-unsigned
expect 2 "unpack without -C" "$MLBOOT" bundle unpack "$work/a.bundle"
expect 0 "unpack with --fsync" "$MLBOOT" bundle unpack "$work/a.bundle" -C "$work/synced" --fsync --pubkey "$work/signer.pub"
checks=$((checks + 1))
diff -r "$work/unpacked" "$work/synced" >/dev/null || { echo "FAIL unpack with --fsync wrote other files" >&2; failures=$((failures + 1)); }

# Free space is checked against the index before anything is written.
mkdir "$work/small"
if mount -t tmpfs -o size=256k tmpfs "$work/small" 2>/dev/null; then
	expect 1 "unpack onto a full filesystem" "$MLBOOT" bundle unpack "$work/a.bundle" -C "$work/small/dest" --pubkey "$work/signer.pub"
	contains "$work/err" "not enough free space" "free space message"
	checks=$((checks + 1))
	[ -z "$(ls -A "$work/small")" ] || { echo "FAIL unpack wrote to a filesystem without room" >&2; failures=$((failures + 1)); }
	umount "$work/small"
else
	echo "note: tmpfs cannot be mounted here: the free-space check is not exercised" >&2
fi

# Catalog mistakes: exit 3, every problem named with its line.
cat >"$work/src/bad.yaml" <<'EOF'
apiVersion: mlboot.dev/v1alpha1
kind: Catalog
metadata: {name: bad}
spec:
  version: 1.0.0
  kubernetes: {minVersion: "1.30", maxVersion: "1.24"}
  platforms: [linux/amd64]
  components:
  - name: Bad_Name
    version: v1
    manifests:
    - url: https://example.invalid/manifest.yaml
      sha256: 0000000000000000000000000000000000000000000000000000000000000000
    images:
    - name: quay.io/example/image:v1
    typo: true
EOF
expect 3 "build from an invalid catalog" "$MLBOOT" bundle build -f "$work/src/bad.yaml" -o "$work/bad.bundle"
contains "$work/err" "reads local paths only" "url rejected"
contains "$work/err" "bad.yaml:6:" "kubernetes range line"
contains "$work/err" "invalid name 'Bad_Name'" "component name"
contains "$work/err" "unknown key 'typo'" "unknown key"
contains "$work/err" "pulling from a registry is not supported" "image without path"
checks=$((checks + 1))
[ ! -e "$work/bad.bundle" ] || { echo "FAIL an invalid catalog produced a bundle" >&2; failures=$((failures + 1)); }
sed 's|path: manifests/sample.yaml|path: manifests/sample.yaml\n      sha256: 0000000000000000000000000000000000000000000000000000000000000000|' \
	"$work/src/catalog.yaml" >"$work/src/pinned.yaml"
expect 3 "build with a wrong pinned sha256" "$MLBOOT" bundle build -f "$work/src/pinned.yaml" -o "$work/pinned.bundle"
contains "$work/err" "the catalog pins" "pin mismatch message"
expect 3 "build with a missing source" "$MLBOOT" bundle build -f "$work/src/catalog.yaml" -o "$work/c.bundle" --platform linux/s390x
expect 2 "build without -o" "$MLBOOT" bundle build -f "$work/src/catalog.yaml"

echo "$checks checks, $failures failures"
[ "$failures" -eq 0 ]
