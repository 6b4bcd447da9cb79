#!/usr/bin/env bash
# A real bundle of the platform catalog (airgap/catalog/) from the unmodified
# release manifests in MLBOOT_UPSTREAM_DIR, pulled through --registry-mirror
# from Debian's docker-registry on 127.0.0.1 (lib/upstream-bundle.sh).
#
# Only the images are imitated: one tiny placeholder image is served under
# the repository path and tag of every image the catalog names. Proves that:
#   - the shipped catalogs and locks match the release copies (every url
#     source's sha256, every rendered file's pin), the RawDeployment variant
#     is the full catalog without Knative, and each component lists exactly
#     the images discovery finds in its manifests;
#   - the bundle builds, verifies, inspects (components, versions, image
#     counts, shared blobs stored once) and unpacks to byte-identical
#     manifests;
#   - the shipped catalog itself, with its URLs, builds from a cache holding
#     the copies without a single request, and --locked accepts its lock once
#     a build has pinned the image digests;
#   - a placeholder removed from the registry fails the build, naming the
#     image; Knative's digest-pinned images fail the full catalog the same way;
#   - nothing leaves loopback: every request of every build reached the
#     local registry, a rejecting proxy saw none, and a build missing one
#     mirror fails instead of reaching the real registry;
#   - build_upstream_bundle, which other tests use, builds once per work
#     folder and then copies its cached result.
#
# Exit status: 0 pass, 77 skip (MLBOOT_UPSTREAM_DIR unset), 1 fail.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
. "$here/lib/registry.sh"
. "$here/lib/upstream-bundle.sh"
: "${MLBOOT:?MLBOOT must name the mlboot binary}"

if [ -z "${MLBOOT_UPSTREAM_DIR:-}" ]; then
	echo "SKIP: MLBOOT_UPSTREAM_DIR is unset"
	exit 77
fi
[ -d "$MLBOOT_UPSTREAM_DIR" ] || mlb_die "MLBOOT_UPSTREAM_DIR '$MLBOOT_UPSTREAM_DIR' is not a folder"
mlb_require_root
mlb_install_packages docker-registry skopeo openssl curl python3

work=$(mktemp -d)
cleanup() {
	upstream_services_stop
	rm -rf "$work"
}
trap cleanup EXIT
unset https_proxy HTTPS_PROXY http_proxy HTTP_PROXY all_proxy ALL_PROXY

failures=0
fail() {
	mlb_log "FAIL: $*"
	failures=$((failures + 1))
}
# now: seconds since the epoch, with milliseconds.
now() {
	date +%s.%N | cut -c1-14
}
elapsed() {
	awk -v start="$1" -v end="$2" 'BEGIN { printf "%.2f", end - start }'
}

# Components of the RawDeployment variant: name, version, manifests, images.
expected_components="cert-manager v1.19.4 1 4
istio 1.29.1 3 4
kserve v0.16.0 2 23
kubeflow v1.10.2 20 61
argocd v3.5.1 1 3"
expected_images=95

# --- The shipped catalogs ---------------------------------------------------------
for variant in platform platform-rawdeployment; do
	upstream_catalog_write "$variant" "$work/$variant" ||
		fail "$variant.yaml or its lock does not match the copies in MLBOOT_UPSTREAM_DIR"
done
catalog=$work/platform-rawdeployment/catalog.yaml
full_catalog=$work/platform/catalog.yaml

# From spec: on, the variant is the full catalog without Knative's component.
strip_knative() {
	sed -n '/^spec:$/,$p' "$1" |
		awk '/^  # Knative Serving as/ { skip = 1 }
		     skip && /^$/ { skip = 0; next }
		     !skip' |
		sed '/^$/d'
}
diff <(strip_knative "$UPSTREAM_CATALOG_DIR/platform.yaml") \
	<(sed -n '/^spec:$/,$p' "$UPSTREAM_CATALOG_DIR/platform-rawdeployment.yaml" | sed '/^$/d') >"$work/variant.diff" ||
	fail "platform-rawdeployment.yaml differs from platform.yaml by more than Knative: $(cat "$work/variant.diff")"
cmp -s <(sed 1,4d "$UPSTREAM_CATALOG_DIR/platform.lock") <(sed 1,4d "$UPSTREAM_CATALOG_DIR/platform-rawdeployment.lock") ||
	fail "platform.lock and platform-rawdeployment.lock pin different files"

# Each rendered entry of the Kubeflow example is in one component, or in the
# documented list of entries that other components replace.
excluded="01 03 04 05 27"
for file in "$MLBOOT_UPSTREAM_DIR"/kubeflow-v1.10.2/[0-9][0-9]-*.yaml; do
	entry=$(basename "$file")
	count=$(grep -c -- "- path: kubeflow-v1.10.2/$entry\$" "$UPSTREAM_CATALOG_DIR/platform.yaml")
	case " $excluded " in
	*" ${entry%%-*} "*) [ "$count" -eq 0 ] || fail "the excluded entry $entry is in platform.yaml" ;;
	*) [ "$count" -eq 1 ] || fail "the entry $entry is in platform.yaml $count times, expected once" ;;
	esac
done

# Each component lists exactly the images that discovery finds in its manifests.
component_paths() {
	awk -v name="$2" '/^  - name: / { inside = ($3 == name) }
	                  inside && /^    - path: / { print $3 }' "$1"
}
component_images() {
	awk -v name="$2" '/^  - name: / { inside = ($3 == name) }
	                  inside && /^    - name: / { print $3 }' "$1"
}
for component in cert-manager istio knative-serving kserve kubeflow argocd; do
	args=()
	while IFS= read -r path; do
		args+=(-f "$path")
	done < <(component_paths "$full_catalog" "$component")
	[ "${#args[@]}" -gt 0 ] || { fail "component $component has no manifests"; continue; }
	"$MLBOOT" bundle images "${args[@]}" 2>/dev/null | sort >"$work/found" ||
		fail "discovery failed on the manifests of $component"
	component_images "$full_catalog" "$component" | sort >"$work/listed"
	diff "$work/listed" "$work/found" >"$work/images.diff" ||
		fail "the images of $component in platform.yaml differ from what discovery finds (< listed, > found): $(cat "$work/images.diff")"
done

# --- The build ---------------------------------------------------------------------
upstream_services_start "$work/services"
"$MLBOOT" keygen -o "$work/signer" >/dev/null 2>&1 || mlb_die "mlboot keygen failed"
# The full catalog's images with a tag: those of the variant, and Istio's
# proxy for Knative's gateway. Knative's own images are pinned by digest.
grep -v '@sha256:' "$full_catalog" >"$work/seed.yaml"
start=$(now)
upstream_registry_seed "$work/seed.yaml" || mlb_die "the registry could not be seeded"
seed_seconds=$(elapsed "$start" "$(now)")

bundle=$work/platform.bundle
start=$(now)
upstream_build "$catalog" "$bundle" "$work/signer.key" "$work/cache" >"$work/build.out" 2>"$work/build.err" ||
	fail "the build failed: $(tail -n 20 "$work/build.err")"
build_seconds=$(elapsed "$start" "$(now)")
[ -f "$bundle" ] || mlb_die "the build wrote no bundle: $(tail -n 20 "$work/build.err")"
[ ! -s "$UPSTREAM_PROXY_LOG" ] || fail "the build sent requests past loopback: $(cat "$UPSTREAM_PROXY_LOG")"

# Every image was pulled through the mirror: its manifest was asked of the local registry.
while IFS= read -r name; do
	reference=${name#*/}
	pattern="^/v2/${reference%:*}/manifests/${reference##*:}\$"
	[ "$(registry_count "$UPSTREAM_WORK/registry" "$pattern")" -ge 1 ] ||
		fail "the registry log has no manifest request for '$name'"
done < <(upstream_catalog_images "$catalog")

# --- verify, inspect, unpack -----------------------------------------------------------
start=$(now)
"$MLBOOT" bundle verify --pubkey "$work/signer.pub" "$bundle" >"$work/verify.out" 2>"$work/verify.err" ||
	fail "verify failed: $(cat "$work/verify.err")"
verify_seconds=$(elapsed "$start" "$(now)")
grep -q '^signature: valid' "$work/verify.out" || fail "verify did not report a valid signature: $(cat "$work/verify.out")"

"$MLBOOT" bundle inspect -o json --pubkey "$work/signer.pub" "$bundle" >"$work/inspect.json" 2>"$work/inspect.err" ||
	fail "inspect failed: $(cat "$work/inspect.err")"
/usr/bin/python3 - "$work/inspect.json" "$expected_images" "$expected_components" >"$work/inspect.check" 2>&1 <<'PY' ||
import json, sys
index = json.load(open(sys.argv[1]))
expected_images = int(sys.argv[2])
expected = [line.split() for line in sys.argv[3].splitlines()]
problems = []
components = index["components"]
names = [c["name"] for c in components]
if names != [e[0] for e in expected]:
    problems.append(f"components {names}, expected {[e[0] for e in expected]}")
for component, (name, version, manifests, images) in zip(components, expected):
    if component["version"] != version:
        problems.append(f"{name}: version {component['version']}, expected {version}")
    if len(component["manifests"]) != int(manifests):
        problems.append(f"{name}: {len(component['manifests'])} manifests, expected {manifests}")
    if len(component["images"]) != int(images):
        problems.append(f"{name}: {len(component['images'])} images, expected {images}")
if index["signature"]["state"] != "valid":
    problems.append(f"signature {index['signature']['state']}, expected valid")
summary = index["images"]
if summary["count"] != expected_images:
    problems.append(f"{summary['count']} images, expected {expected_images}")
# One placeholder under every name: its manifest, config and two layers are
# the only blobs, stored once, and counted once per image if stored alone.
if summary["blobs"] != 4:
    problems.append(f"{summary['blobs']} blobs, expected 4")
if summary["bytesIfStoredAlone"] != expected_images * summary["bytesStored"]:
    problems.append(f"bytesIfStoredAlone {summary['bytesIfStoredAlone']} is not {expected_images} x bytesStored {summary['bytesStored']}")
if summary["bytesShared"] != summary["bytesIfStoredAlone"] - summary["bytesStored"]:
    problems.append("bytesShared is not bytesIfStoredAlone - bytesStored")
print("\n".join(problems))
sys.exit(1 if problems else 0)
PY
	fail "inspect: $(cat "$work/inspect.check")"

unpacked=$work/unpacked
"$MLBOOT" bundle unpack --pubkey "$work/signer.pub" "$bundle" -C "$unpacked" >/dev/null 2>"$work/unpack.err" ||
	fail "unpack failed: $(cat "$work/unpack.err")"
while read -r component _; do
	while IFS= read -r path; do
		cmp -s "$path" "$unpacked/components/$component/manifests/$(basename "$path")" ||
			fail "the unpacked manifest of $component differs from '$path'"
	done < <(component_paths "$catalog" "$component")
done <<<"$expected_components"
[ "$(grep -o '"io.containerd.image.name"' "$unpacked/images/index.json" | wc -l)" -eq "$expected_images" ] ||
	fail "the unpacked images/index.json does not name $expected_images images"

# --- The shipped catalog, with its URLs, from a cache holding the copies ------------------
shipped=$work/shipped
mkdir -p "$shipped/cache/sha256"
cp "$UPSTREAM_CATALOG_DIR/platform-rawdeployment.yaml" "$UPSTREAM_CATALOG_DIR/platform-rawdeployment.lock" "$shipped/"
ln -s "$MLBOOT_UPSTREAM_DIR/kubeflow-v1.10.2" "$shipped/kubeflow-v1.10.2"
while IFS= read -r url; do
	copy=$MLBOOT_UPSTREAM_DIR/$(upstream_copy_path "$url")
	cp "$copy" "$shipped/cache/sha256/$(upstream_sha256 "$copy")"
done < <(sed -n 's/^    - url: //p' "$shipped/platform-rawdeployment.yaml")

status=0
upstream_build "$shipped/platform-rawdeployment.yaml" "$shipped/locked.bundle" "$work/signer.key" "$shipped/cache" \
	--locked >/dev/null 2>"$work/err" || status=$?
[ "$status" -eq 3 ] || fail "--locked before the image digests were pinned gave exit status $status, expected 3"
[ "$(grep -c 'is not pinned by a digest' "$work/err")" -eq "$expected_images" ] ||
	fail "--locked did not name each of the $expected_images unpinned images: $(tail -n 5 "$work/err")"

upstream_build "$shipped/platform-rawdeployment.yaml" "$shipped/platform.bundle" "$work/signer.key" "$shipped/cache" \
	>/dev/null 2>"$work/err" || fail "the shipped catalog did not build from the cache: $(tail -n 20 "$work/err")"
[ ! -s "$UPSTREAM_PROXY_LOG" ] || fail "the shipped catalog's build sent requests past loopback: $(cat "$UPSTREAM_PROXY_LOG")"
"$MLBOOT" bundle inspect -o json --pubkey "$work/signer.pub" "$shipped/platform.bundle" >"$work/shipped.json" 2>/dev/null ||
	fail "inspect of the shipped catalog's bundle failed"
# A manifest fetched from a URL keeps the file name of its URL.
for path in components/istio/manifests/crd.yaml components/istio/manifests/install.yaml \
	components/argocd/manifests/install.yaml components/cert-manager/manifests/cert-manager.yaml; do
	grep -q "\"$path\"" "$work/shipped.json" || fail "the shipped catalog's bundle has no '$path'"
done
[ "$(grep -c 'digest: "sha256:' "$shipped/platform-rawdeployment.lock")" -eq "$expected_images" ] ||
	fail "the build did not pin the digest of each image in the lock"

requests=$(grep -c 'response completed' "$UPSTREAM_WORK/registry/registry.log")
upstream_build "$shipped/platform-rawdeployment.yaml" "$shipped/locked.bundle" "$work/signer.key" "$shipped/cache" \
	--locked >/dev/null 2>"$work/err" || fail "--locked with the pinned lock failed: $(tail -n 20 "$work/err")"
[ "$(grep -c 'response completed' "$UPSTREAM_WORK/registry/registry.log")" -eq "$requests" ] ||
	fail "the --locked build with a warm cache sent requests to the registry"
cmp -s "$shipped/platform.bundle" "$shipped/locked.bundle" || fail "the --locked build gave different bytes"

# --- Knative's images are pinned by digest: the placeholder cannot have their digests ------
status=0
upstream_build "$full_catalog" "$work/full.bundle" "$work/signer.key" "$work/cache" >/dev/null 2>"$work/err" || status=$?
[ "$status" -eq 3 ] || fail "the full catalog gave exit status $status, expected 3"
[ "$(grep -c "knative-releases/.*@sha256:.*was not found" "$work/err")" -eq 7 ] ||
	fail "the full catalog's build did not name the 7 Knative images: $(tail -n 10 "$work/err")"
[ ! -e "$work/full.bundle" ] || fail "a bundle was written without Knative's images"
[ ! -s "$UPSTREAM_PROXY_LOG" ] || fail "a build sent requests past loopback: $(cat "$UPSTREAM_PROXY_LOG")"

# --- A placeholder removed from the registry ---------------------------------------------
removed=ghcr.io/kubeflow/katib/katib-ui:v0.18.0
upstream_registry_remove "$removed" || fail "could not remove '$removed' from the registry"
mkdir -p "$work/missing"
cp "$catalog" "$work/missing/catalog.yaml"
status=0
upstream_build "$work/missing/catalog.yaml" "$work/missing.bundle" "$work/signer.key" "$work/missing/cache" \
	>/dev/null 2>"$work/err" || status=$?
[ "$status" -eq 3 ] || fail "a missing image gave exit status $status, expected 3: $(tail -n 5 "$work/err")"
grep -q "the image '$removed' was not found: the registry $UPSTREAM_REGISTRY (the mirror of ghcr.io)" "$work/err" ||
	fail "the missing image was not named: $(tail -n 5 "$work/err")"
[ "$(grep -c 'was not found' "$work/err")" -eq 1 ] || fail "images other than '$removed' were reported missing"
[ ! -e "$work/missing.bundle" ] || fail "a bundle was written though an image is missing"

# --- A registry without a mirror is not reached behind the test's back ------------------------
status=0
UPSTREAM_SKIP_MIRROR=quay.io upstream_build "$catalog" "$work/escape.bundle" "$work/signer.key" "$work/escape-cache" \
	>/dev/null 2>"$work/err" || status=$?
[ "$status" -ne 0 ] || fail "a build without a mirror for quay.io succeeded"
[ ! -e "$work/escape.bundle" ] || fail "a bundle was written without a mirror for quay.io"
grep -q '^CONNECT quay.io:443 ' "$UPSTREAM_PROXY_LOG" ||
	fail "the build without a mirror for quay.io did not try quay.io: $(cat "$UPSTREAM_PROXY_LOG")"
grep -v '^CONNECT quay.io:443 ' "$UPSTREAM_PROXY_LOG" >"$work/other-hosts" && fail "requests to other hosts: $(cat "$work/other-hosts")"
upstream_services_stop

# --- build_upstream_bundle: built once per work folder, then copied -------------------------------
start=$(now)
build_upstream_bundle "$work/reused-1.bundle" "$work/signer.key" "$work/reuse" || fail "build_upstream_bundle failed"
first_seconds=$(elapsed "$start" "$(now)")
start=$(now)
build_upstream_bundle "$work/reused-2.bundle" "$work/signer.key" "$work/reuse" || fail "build_upstream_bundle failed the second time"
second_seconds=$(elapsed "$start" "$(now)")
cmp -s "$work/reused-1.bundle" "$work/reused-2.bundle" || fail "the cached bundle differs from the first"
[ "$(find "$work/reuse/upstream-bundle-cache" -name '*.bundle' | wc -l)" -eq 1 ] ||
	fail "build_upstream_bundle did not keep exactly one cached bundle"
"$MLBOOT" bundle verify --pubkey "$work/signer.pub" "$work/reused-1.bundle" >/dev/null 2>&1 ||
	fail "the bundle of build_upstream_bundle does not verify"

bundle_bytes=$(stat -c %s "$bundle")
mlb_log "bundle: $bundle_bytes bytes, $expected_images images; seeding the registry ${seed_seconds}s," \
	"build ${build_seconds}s, verify ${verify_seconds}s; build_upstream_bundle ${first_seconds}s, cached ${second_seconds}s"
[ "$failures" -eq 0 ] || mlb_die "$failures checks failed"
echo "upstream platform bundle: every check passed"
