#!/usr/bin/env bash
# The bundle commands end to end through the mlboot binary: keygen, build
# from the fixture catalog, verify, inspect (text and JSON), unpack, and
# the exit statuses for the common mistakes (0 success, 2 usage, 3 invalid
# input, 4 integrity). Also checks these:
#   - two builds give identical bytes;
#   - GNU tar and sha256sum accept the bundle as an ordinary tar;
#   - no output replaces an input or anything but a regular file (keys,
#     catalog, sources, FIFOs, links, folders and device nodes are left as
#     they were);
#   - missing inputs exit 3;
#   - an unpack interrupted by SIGINT, SIGTERM or SIGHUP leaves nothing,
#     and the next unpack cleans up after one killed by SIGKILL.
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

# lacks FILE TEXT DESCRIPTION
lacks() {
	checks=$((checks + 1))
	if grep -qF -- "$2" "$1"; then
		echo "FAIL $3: '$2' found in:" >&2
		sed 's/^/  | /' "$1" >&2
		failures=$((failures + 1))
	fi
}

# verdict DESCRIPTION COMMAND...: counts a check that passes when the command succeeds.
verdict() {
	local description=$1
	shift
	checks=$((checks + 1))
	if ! "$@"; then
		echo "FAIL $description" >&2
		failures=$((failures + 1))
	fi
}

# fingerprint PATH: type, inode, size, change time and device numbers of
# PATH itself (a link is not followed), and the SHA-256 of a regular file.
fingerprint() {
	stat -c '%F %i %s %Z %t:%T' -- "$1"
	if [ -f "$1" ] && [ ! -L "$1" ]; then
		sha256sum <"$1"
	fi
}

# kept PATH FINGERPRINT DESCRIPTION: PATH is still what fingerprint printed before.
kept() {
	verdict "$3: '$1' was changed" test "$(fingerprint "$1")" = "$2"
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
expect 3 "verify a missing file" "$MLBOOT" bundle verify "$work/missing.bundle" --pubkey "$work/signer.pub"
contains "$work/err" "bundle '$work/missing.bundle': cannot read the bundle file: No such file or directory" \
	"verify missing file message"
contains "$work/err" "was not verified: the file cannot be read" "verify missing file summary"
lacks "$work/err" "failed verification" "verify missing file is no failed verification"
expect 3 "verify a folder" "$MLBOOT" bundle verify "$work/src" --pubkey "$work/signer.pub"
contains "$work/err" "Is a directory" "verify folder message"

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
mkdir "$work/occupied"
echo mine >"$work/occupied/notes.txt"
expect 1 "unpack into a folder with a file" "$MLBOOT" bundle unpack "$work/a.bundle" -C "$work/occupied" --pubkey "$work/signer.pub"
contains "$work/err" "'$work/occupied' is not empty: it contains 'notes.txt'" "unpack names the entry found"
verdict "unpack changed a non-empty folder" test "$(ls -A "$work/occupied")" = notes.txt
echo text >"$work/plain-file"
expect 3 "unpack into a regular file" "$MLBOOT" bundle unpack "$work/a.bundle" -C "$work/plain-file" --pubkey "$work/signer.pub"
contains "$work/err" "exists and is not a folder" "unpack into a file message"
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
expect 3 "build from a missing catalog" "$MLBOOT" bundle build -f "$work/src/missing.yaml" -o "$work/m.bundle"
contains "$work/err" "$work/src/missing.yaml: cannot read the catalog: No such file or directory" "missing catalog message"

# Outputs that would destroy an input or something other than a regular
# file: exit 3, a message naming the path and why, and nothing written.
# reject_output DESCRIPTION REASON OUTPUT: builds signed into OUTPUT, which must stay as it was.
reject_output() {
	local description=$1 reason=$2 output=$3 before
	before=$(fingerprint "$output")
	expect 3 "$description" "$MLBOOT" bundle build -f "$work/src/catalog.yaml" -o "$output" --key "$work/signer.key"
	contains "$work/err" "'$output'" "$description: the message names the path"
	contains "$work/err" "$reason" "$description: the message says why"
	kept "$output" "$before" "$description"
}
# The hard link comes first, since making it changes the key's change time.
ln "$work/signer.key" "$work/hard-link.key"
key_before=$(fingerprint "$work/signer.key")
reject_output "build over its signing key" "is the same file as the signing key" "$work/signer.key"
reject_output "build over the public key beside it" "is the same file as the public key" "$work/signer.pub"
reject_output "build over its catalog" "is the same file as the catalog" "$work/src/catalog.yaml"
reject_output "build over a source manifest" "is the same file as the manifest" "$work/src/manifests/sample.yaml"
reject_output "build over a source binary" "is the same file as the binary" "$work/src/bin/hello.sh"
reject_output "build over an image archive" "is the same file as the image" "$work/src/images/webhook.tar"
reject_output "build over a file of an image layout" "is the same file as the image layout file" \
	"$work/src/images/controller/index.json"
reject_output "build over another name of its signing key" "is the same file as the signing key" "$work/hard-link.key"
mkfifo "$work/out.fifo"
reject_output "build into a FIFO" "is a FIFO" "$work/out.fifo"
ln -s "$work/a.bundle" "$work/out.link"
target_before=$(fingerprint "$work/a.bundle")
reject_output "build into a symbolic link" "is a symbolic link; an output never follows or replaces a link" "$work/out.link"
kept "$work/a.bundle" "$target_before" "build into a symbolic link: its target"
ln -s "$work/nowhere.bundle" "$work/dangling.link"
reject_output "build into a dangling symbolic link" "is a symbolic link" "$work/dangling.link"
verdict "a build wrote through a dangling link" test ! -e "$work/nowhere.bundle"
reject_output "build into a folder" "is a folder" "$work/src"
# A device node of our own (the numbers of /dev/full), never one under /dev.
if mknod "$work/full.device" c 1 7 2>/dev/null; then
	reject_output "build into a device node" "is a character device" "$work/full.device"
	verdict "the device node is no longer a character device" test -c "$work/full.device"
else
	echo "note: mknod is not permitted here: the device node case is not exercised" >&2
fi
kept "$work/signer.key" "$key_before" "the signing key after every rejected build"
verdict "a rejected build left a temporary file" \
	test -z "$(find "$work" -maxdepth 4 \( -name '*.tmp-*' -o -name '.mlboot-oci-*' \) -print)"

# The other outputs a user names: keygen never replaces anything, not even
# a link, and bundle pull rejects a layout whose files it cannot replace
# (timeout turns a pull that blocks reading the FIFO into a failure).
ln -s "$work/nowhere.pub" "$work/linked.pub"
expect 3 "keygen over a dangling link" "$MLBOOT" keygen -o "$work/linked"
verdict "keygen wrote through a link" test ! -e "$work/nowhere.pub" -a ! -e "$work/linked.key"
mkdir "$work/layout"
mkfifo "$work/layout/index.json"
expect 3 "pull into a layout whose index.json is a FIFO" timeout 20 "$MLBOOT" bundle pull --layout "$work/layout" \
	registry.invalid/image:v1
contains "$work/err" "'$work/layout/index.json' is a FIFO" "pull FIFO message"
verdict "pull replaced the FIFO" test -p "$work/layout/index.json"
expect 3 "pull into a layout that is a file" timeout 20 "$MLBOOT" bundle pull --layout "$work/plain-file" \
	registry.invalid/image:v1
contains "$work/err" "is a regular file, not a folder" "pull layout file message"

# Missing inputs are invalid input (3), with the file named.
expect 3 "inspect a missing file" "$MLBOOT" bundle inspect "$work/missing.bundle" --pubkey "$work/signer.pub"
contains "$work/err" "bundle '$work/missing.bundle': cannot read the bundle file" "inspect missing file message"
expect 3 "unpack a missing file" "$MLBOOT" bundle unpack "$work/missing.bundle" -C "$work/from-missing" --pubkey "$work/signer.pub"
contains "$work/err" "bundle '$work/missing.bundle': cannot read the bundle file" "unpack missing file message"
verdict "unpack of a missing file created its destination" test ! -e "$work/from-missing"
expect 3 "check with a missing bundle" "$MLBOOT" check --bundle "$work/missing.bundle" --pubkey "$work/signer.pub"
contains "$work/err" "bundle '$work/missing.bundle': cannot read the bundle file" "check missing bundle message"
expect 3 "check with a missing public key" "$MLBOOT" check --bundle "$work/a.bundle" --pubkey "$work/missing.pub"
contains "$work/err" "cannot read public key '$work/missing.pub'" "check missing public key message"
# install reads the bundle before it reaches the cluster, here a closed port.
cat >"$work/kubeconfig" <<'KUBECONFIG'
apiVersion: v1
kind: Config
clusters:
- name: closed
  cluster: {server: "https://127.0.0.1:9"}
users:
- name: nobody
  user: {token: unused}
contexts:
- name: closed
  context: {cluster: closed, user: nobody}
current-context: closed
KUBECONFIG
cat >"$work/mlboot.yaml" <<CONFIG
apiVersion: mlboot.dev/v1alpha1
kind: Platform
metadata: {name: missing-bundle}
spec:
  bundle: "$work/missing.bundle"
  kubeconfig: {path: "$work/kubeconfig"}
  stateDir: "$work/state"
  hosts:
    - {name: cp1, role: control-plane, local: true}
CONFIG
expect 3 "install with a missing bundle" "$MLBOOT" install -f "$work/mlboot.yaml" --bundle "$work/missing.bundle" \
	--pubkey "$work/signer.pub"
contains "$work/err" "$work/missing.bundle: cannot read the bundle file" "install missing bundle message"

# --- Interrupted and killed unpacks -----------------------------------------------
# Bash starts background commands with SIGINT ignored, and mlboot keeps a
# signal that is ignored at start ignored (as nohup expects), so the
# unpacks below run with the default actions restored by env --default-signal.
if ! env --default-signal=INT true 2>/dev/null; then
	echo "note: env has no --default-signal (coreutils before 8.31): interrupted unpacks are not exercised" >&2
	echo "$checks checks, $failures failures"
	[ "$failures" -eq 0 ]
	exit
fi
# start_unpack ARGS...: starts an unpack in the background; unpacker is its PID (env execs mlboot).
start_unpack() {
	env --default-signal=INT,TERM,HUP "$MLBOOT" bundle unpack "$@" --allow-unsigned >"$work/out" 2>"$work/err" &
	unpacker=$!
}

# wait_for_staging DIR: waits up to 20 s until a staging folder in DIR contains the index.
wait_for_staging() {
	local i
	for i in $(seq 2000); do
		compgen -G "$1/.mlboot-unpack-*/mlboot-bundle.yaml" >/dev/null && return 0
		sleep 0.01
	done
	return 1
}

# A bundle of 256 MiB of random bytes, which nothing compresses.
mkdir -p "$work/big/bin"
head -c 256M /dev/urandom >"$work/big/bin/random"
cat >"$work/big/catalog.yaml" <<'CATALOG'
apiVersion: mlboot.dev/v1alpha1
kind: Catalog
metadata: {name: big}
spec:
  version: 0.1.0
  kubernetes: {minVersion: "1.24", maxVersion: "1.33"}
  platforms: [linux/amd64]
  components:
  - name: big
    version: "1.0"
    binaries:
    - {name: random, platform: linux/amd64, path: bin/random}
CATALOG
"$MLBOOT" bundle build -f "$work/big/catalog.yaml" -o "$work/big.bundle" >/dev/null 2>&1 ||
	mlb_die "building the large bundle failed"
rm -f "$work/big/bin/random"
mkfifo "$work/slow.fifo"

# start_slow_unpack DIR: unpacks the large bundle into DIR through a pipe that
# stalls after 4 MiB, so that the unpack still runs when the test signals it.
start_slow_unpack() {
	(head -c 4M "$work/big.bundle"; exec sleep 120) >"$work/slow.fifo" &
	feeder=$!
	start_unpack "$work/slow.fifo" -C "$1"
	wait_for_staging "$1" || echo "FAIL the unpack into $1 did not start staging within 20 s" >&2
}

# finish_slow_unpack: waits for the unpack, stops the pipe's writer and sets status.
finish_slow_unpack() {
	status=0
	wait "$unpacker" || status=$?
	kill "$feeder" 2>/dev/null
	wait "$feeder" 2>/dev/null
}

for case in "INT 130 new" "TERM 143 existing" "HUP 129 new"; do
	read -r signal expected kind <<<"$case"
	destination="$work/interrupted-$signal"
	if [ "$kind" = existing ]; then
		mkdir "$destination"
	fi
	start_slow_unpack "$destination"
	kill "-$signal" "$unpacker"
	finish_slow_unpack
	verdict "unpack interrupted by SIG$signal exited $status, expected $expected" test "$status" -eq "$expected"
	contains "$work/err" "interrupted by SIG$signal" "SIG$signal message"
	if [ "$kind" = new ]; then
		verdict "an unpack interrupted by SIG$signal left the folder it created" test ! -e "$destination"
	else
		verdict "an unpack interrupted by SIG$signal left files in an existing folder" \
			test -d "$destination" -a -z "$(ls -A "$destination")"
	fi
done

# The same with the bundle read from disk at full speed.
destination="$work/interrupted-file"
start_unpack "$work/big.bundle" -C "$destination"
wait_for_staging "$destination"
kill -TERM "$unpacker"
status=0
wait "$unpacker" || status=$?
verdict "an unpack of a file, interrupted, exited $status, expected 143 (0: it finished before the signal)" \
	test "$status" -eq 143
verdict "an interrupted unpack of a file left its folder" test ! -e "$destination"

# SIGKILL cannot be caught, so the staging folder stays. While that unpack
# runs, a second one into the same folder is rejected and leaves it alone.
# After the kill, the next unpack removes it and succeeds.
destination="$work/killed"
start_slow_unpack "$destination"
staging=$(compgen -G "$destination/.mlboot-unpack-*")
expect 1 "a second unpack into a folder in use" "$MLBOOT" bundle unpack "$work/a.bundle" -C "$destination" \
	--pubkey "$work/signer.pub"
contains "$work/err" "another unpack is writing into the destination folder '$destination'" "folder in use message"
verdict "the second unpack removed the staging folder of the first" test -d "$staging"
kill -KILL "$unpacker"
finish_slow_unpack
verdict "the killed unpack exited $status, expected 137" test "$status" -eq 137
verdict "the killed unpack left no staging folder, so this case proves nothing" test -d "$staging"
expect 0 "unpack after a killed unpack" "$MLBOOT" bundle unpack "$work/a.bundle" -C "$destination" --pubkey "$work/signer.pub"
contains "$work/err" "removed '$staging', a staging folder that an interrupted unpack left behind" \
	"leftover removal is logged"
verdict "the leftover staging folder is still there" test ! -e "$staging"
verdict "the unpack after a kill did not write the files" test -f "$destination/mlboot-bundle.yaml"

echo "$checks checks, $failures failures"
[ "$failures" -eq 0 ]
