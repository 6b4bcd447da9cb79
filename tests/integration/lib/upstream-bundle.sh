# shellcheck shell=bash
# A real bundle of the platform catalog in airgap/catalog/, built from the
# unmodified release manifests in $MLBOOT_UPSTREAM_DIR.
#
# The real images cannot be pulled here, so one tiny placeholder image
# (lib/make-oci-image) is copied with skopeo under the repository path and
# tag of every image the catalog names, into Debian's docker-registry on
# 127.0.0.1. The build pulls each of them through one --registry-mirror
# per registry host. Everything else is real: the manifests, the image
# discovery, the pulls, the bundle, its index and its signature.
#
# The build sends nothing past loopback: https_proxy and http_proxy point at
# lib/rejecting-proxy.py, which logs and rejects every request, so a client
# that tried to reach a real registry would show up in its log.
#
# Source after lib.sh and lib/registry.sh; MLBOOT must name the binary.
# A caller that starts the services itself stops them in its exit trap
# with upstream_services_stop.
#
# Functions:
#   build_upstream_bundle OUT KEY WORKDIR
#       Writes a bundle of platform-rawdeployment.yaml to OUT, signed
#       with the private key KEY. The result is cached under
#       WORKDIR/upstream-bundle-cache, keyed by the catalog, its lock, the
#       mlboot binary and KEY, so a second call in the same WORKDIR copies
#       it. Returns 77 when MLBOOT_UPSTREAM_DIR is unset, 1 on failure.
#   upstream_catalog_write VARIANT DIR
#       Writes DIR/catalog.yaml: airgap/catalog/VARIANT.yaml with every
#       source replaced by its copy in MLBOOT_UPSTREAM_DIR, after checking
#       each copy's sha256 against VARIANT.lock or the catalog's own pin.
#   upstream_catalog_images CATALOG
#       Prints the image names of a catalog, one a line.
#   upstream_services_start WORKDIR / upstream_services_stop
#       Start and stop the registry and the rejecting proxy.
#   upstream_registry_seed CATALOG
#       Copies the placeholder under every image name of CATALOG.
#   upstream_build CATALOG OUT KEY CACHE [ARG...]
#       Runs mlboot bundle build through the mirrors, with the proxy set.
#       UPSTREAM_SKIP_MIRROR=HOST leaves out the mirror of HOST.

UPSTREAM_REPO=${UPSTREAM_REPO:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)}
UPSTREAM_CATALOG_DIR=$UPSTREAM_REPO/airgap/catalog
UPSTREAM_LIB_DIR=$UPSTREAM_REPO/tests/integration/lib
# Parallel skopeo copies while seeding the registry.
UPSTREAM_SEED_JOBS=${UPSTREAM_SEED_JOBS:-4}

# Set by upstream_services_start.
UPSTREAM_WORK=
UPSTREAM_CERTS=
UPSTREAM_REGISTRY=
UPSTREAM_PROXY_PID=
UPSTREAM_PROXY_LOG=

# upstream_copy_path URL: prints the path, relative to MLBOOT_UPSTREAM_DIR,
# of the unmodified copy of the release file at URL.
upstream_copy_path() {
	case $1 in
	https://github.com/cert-manager/cert-manager/releases/download/v1.19.4/cert-manager.yaml)
		echo cert-manager-v1.19.4/cert-manager.yaml ;;
	https://raw.githubusercontent.com/kubeflow/manifests/master/common/istio/istio-crds/base/crd.yaml)
		echo istio-1.29.1/crds.yaml ;;
	https://raw.githubusercontent.com/kubeflow/manifests/master/common/istio/istio-namespace/base/namespace.yaml)
		echo istio-1.29.1/namespace.yaml ;;
	https://raw.githubusercontent.com/kubeflow/manifests/master/common/istio/istio-install/base/install.yaml)
		echo istio-1.29.1/install.yaml ;;
	https://raw.githubusercontent.com/kserve/kserve/v0.16.0/install/v0.16.0/kserve.yaml)
		echo kserve-v0.16.0/kserve.yaml ;;
	https://raw.githubusercontent.com/kserve/kserve/v0.16.0/install/v0.16.0/kserve-cluster-resources.yaml)
		echo kserve-v0.16.0/kserve-cluster-resources.yaml ;;
	https://raw.githubusercontent.com/argoproj/argo-cd/v3.5.1/manifests/install.yaml)
		echo argo-cd-v3.5.1/install.yaml ;;
	*)
		return 1 ;;
	esac
}

# upstream_lock_pin LOCK URL: prints the sha256 that LOCK records for URL.
upstream_lock_pin() {
	awk -v line="- url: \"$2\"" '$0 == line { getline; if ($1 == "sha256:") print $2; exit }' "$1"
}

upstream_sha256() {
	sha256sum "$1" | cut -d' ' -f1
}

upstream_catalog_write() {
	local variant=$1 dir=$2
	local source=$UPSTREAM_CATALOG_DIR/$variant.yaml lock=$UPSTREAM_CATALOG_DIR/$variant.lock
	local upstream=${MLBOOT_UPSTREAM_DIR:?MLBOOT_UPSTREAM_DIR must be set}
	local line indent url copy pin actual path="" problems=0

	[ -f "$source" ] || { mlb_log "no catalog '$source'"; return 1; }
	[ -f "$lock" ] || { mlb_log "no lock '$lock'"; return 1; }
	mkdir -p "$dir"
	while IFS= read -r line; do
		if [[ $line =~ ^(\ *)-\ url:\ (.*)$ ]]; then
			indent=${BASH_REMATCH[1]}
			url=${BASH_REMATCH[2]}
			if ! copy=$(upstream_copy_path "$url"); then
				mlb_log "$variant.yaml: no copy in MLBOOT_UPSTREAM_DIR is known for '$url'"
				problems=$((problems + 1))
				continue
			fi
			pin=$(upstream_lock_pin "$lock" "$url")
			actual=$(upstream_sha256 "$upstream/$copy")
			if [ -z "$pin" ]; then
				mlb_log "$variant.lock: no sha256 for '$url'"
				problems=$((problems + 1))
			elif [ "$pin" != "$actual" ]; then
				mlb_log "'$upstream/$copy' has sha256 $actual, and $variant.lock pins $pin for '$url'"
				problems=$((problems + 1))
			fi
			printf '%s- path: %s\n%s  sha256: %s\n' "$indent" "$upstream/$copy" "$indent" "$pin"
		elif [[ $line =~ ^(\ *)-\ path:\ (.*)$ ]]; then
			path=${BASH_REMATCH[2]}
			printf '%s- path: %s\n' "${BASH_REMATCH[1]}" "$upstream/$path"
		elif [[ $line =~ ^\ *sha256:\ ([0-9a-f]{64})$ ]] && [ -n "$path" ]; then
			actual=$(upstream_sha256 "$upstream/$path")
			if [ "${BASH_REMATCH[1]}" != "$actual" ]; then
				mlb_log "'$upstream/$path' has sha256 $actual, and $variant.yaml pins ${BASH_REMATCH[1]}"
				problems=$((problems + 1))
			fi
			path=""
			printf '%s\n' "$line"
		else
			printf '%s\n' "$line"
		fi
	done <"$source" >"$dir/catalog.yaml"
	[ "$problems" -eq 0 ]
}

upstream_catalog_images() {
	sed -n 's/^    - name: \([^ ]*\)$/\1/p' "$1"
}

# upstream_catalog_hosts CATALOG: prints each registry host of the catalog's images once.
upstream_catalog_hosts() {
	upstream_catalog_images "$1" | cut -d/ -f1 | sort -u
}

upstream_services_start() {
	local port proxy_port
	UPSTREAM_WORK=$1
	UPSTREAM_CERTS=$UPSTREAM_WORK/certs
	mkdir -p "$UPSTREAM_WORK"
	registry_make_ca "$UPSTREAM_CERTS"
	port=$(registry_free_port)
	registry_start "$UPSTREAM_WORK/registry" "$port" "$UPSTREAM_CERTS"
	UPSTREAM_REGISTRY=127.0.0.1:$port

	proxy_port=$(registry_free_port)
	UPSTREAM_PROXY_LOG=$UPSTREAM_WORK/proxy.log
	: >"$UPSTREAM_PROXY_LOG"
	/usr/bin/python3 "$UPSTREAM_LIB_DIR/rejecting-proxy.py" "$proxy_port" "$UPSTREAM_PROXY_LOG" &
	UPSTREAM_PROXY_PID=$!
	UPSTREAM_PROXY=http://127.0.0.1:$proxy_port
	mlb_wait_until 20 curl -s -o /dev/null --noproxy '' -x "$UPSTREAM_PROXY" http://proxy-check.invalid/ ||
		mlb_die "the rejecting proxy on port $proxy_port did not start"
	# The start-up probe above is the only line the proxy should ever log.
	: >"$UPSTREAM_PROXY_LOG"
}

upstream_services_stop() {
	[ -n "$UPSTREAM_WORK" ] && registry_stop "$UPSTREAM_WORK/registry"
	if [ -n "$UPSTREAM_PROXY_PID" ]; then
		kill "$UPSTREAM_PROXY_PID" 2>/dev/null && wait "$UPSTREAM_PROXY_PID" 2>/dev/null
		UPSTREAM_PROXY_PID=
	fi
	return 0
}

upstream_registry_seed() {
	local catalog=$1 seed=$UPSTREAM_WORK/seed name
	local -a destinations=()

	mkdir -p "$seed" "$UPSTREAM_CERTS/skopeo"
	cp "$UPSTREAM_CERTS/ca.crt" "$UPSTREAM_CERTS/skopeo/ca.crt"
	printf '{"default":[{"type":"insecureAcceptAnything"}]}\n' >"$seed/policy.json"
	MLB_OCI_PLATFORM=linux/amd64 "$UPSTREAM_LIB_DIR/make-oci-image" mlboot/placeholder:1.0 \
		"$seed/placeholder.tar" upstream "$seed/base-layer.tar.gz" >/dev/null ||
		{ mlb_log "make-oci-image failed"; return 1; }
	while IFS= read -r name; do
		case $name in
		*@sha256:*)
			# A placeholder cannot have the digest such a reference pins.
			mlb_log "cannot seed '$name': the reference pins a digest"
			return 1 ;;
		esac
		destinations+=("$UPSTREAM_REGISTRY/${name#*/}")
	done < <(upstream_catalog_images "$catalog")
	printf '%s\n' "${destinations[@]}" |
		xargs -P "$UPSTREAM_SEED_JOBS" -I '{}' skopeo --policy "$seed/policy.json" copy --quiet \
			--preserve-digests --dest-cert-dir "$UPSTREAM_CERTS/skopeo" \
			"oci-archive:$seed/placeholder.tar" 'docker://{}' >&2 ||
		{ mlb_log "skopeo failed to copy the placeholder under every name"; return 1; }
}

# upstream_registry_remove NAME: deletes the tag of image NAME from the
# registry, so that pulling NAME through the mirror finds nothing.
upstream_registry_remove() {
	local name=$1 repository tag digest
	repository=${name#*/}
	tag=${repository##*:}
	repository=${repository%:*}
	digest=$(curl -sf --cacert "$UPSTREAM_CERTS/ca.crt" -o /dev/null -D - -I \
		-H 'Accept: application/vnd.oci.image.manifest.v1+json' \
		"https://$UPSTREAM_REGISTRY/v2/$repository/manifests/$tag" |
		tr -d '\r' | sed -n 's/^[Dd]ocker-[Cc]ontent-[Dd]igest: //p')
	[ -n "$digest" ] || { mlb_log "'$name' is not in the registry"; return 1; }
	curl -sf --cacert "$UPSTREAM_CERTS/ca.crt" -X DELETE \
		"https://$UPSTREAM_REGISTRY/v2/$repository/manifests/$digest" >/dev/null ||
		{ mlb_log "the registry did not delete '$name'"; return 1; }
}

# upstream_mirror_arguments CATALOG [SKIP_HOST]: prints one --registry-mirror
# argument a line for every registry host of CATALOG except SKIP_HOST.
upstream_mirror_arguments() {
	local host
	while IFS= read -r host; do
		[ "$host" = "${2:-}" ] && continue
		printf -- '--registry-mirror\n%s=%s\n' "$host" "$UPSTREAM_REGISTRY"
	done < <(upstream_catalog_hosts "$1")
}

upstream_build() {
	local catalog=$1 output=$2 key=$3 cache=$4
	shift 4
	local -a mirrors
	mapfile -t mirrors < <(upstream_mirror_arguments "$catalog" "${UPSTREAM_SKIP_MIRROR:-}")
	env -u ALL_PROXY -u all_proxy \
		https_proxy="$UPSTREAM_PROXY" HTTPS_PROXY="$UPSTREAM_PROXY" \
		http_proxy="$UPSTREAM_PROXY" HTTP_PROXY="$UPSTREAM_PROXY" \
		no_proxy=127.0.0.1,localhost NO_PROXY=127.0.0.1,localhost \
		"$MLBOOT" --no-progress bundle build -f "$catalog" -o "$output" --key "$key" \
		--cache "$cache" --ca-file "$UPSTREAM_CERTS/ca.crt" "${mirrors[@]}" "$@"
}

build_upstream_bundle() {
	local output=$1 key=$2 workdir=$3
	local cache_dir=$workdir/upstream-bundle-cache variant=platform-rawdeployment
	local cache_key work status=0

	if [ -z "${MLBOOT_UPSTREAM_DIR:-}" ]; then
		echo "SKIP: MLBOOT_UPSTREAM_DIR is unset"
		return 77
	fi
	mlb_install_packages docker-registry skopeo openssl curl python3
	cache_key=$(cat "$UPSTREAM_CATALOG_DIR/$variant.yaml" "$UPSTREAM_CATALOG_DIR/$variant.lock" \
		"$MLBOOT" "$key" "$UPSTREAM_LIB_DIR/make-oci-image" | sha256sum | cut -c1-16)
	if [ -f "$cache_dir/$cache_key.bundle" ]; then
		cp "$cache_dir/$cache_key.bundle" "$output"
		return 0
	fi

	work=$cache_dir/$cache_key.work
	rm -rf "$work"
	mkdir -p "$work"
	upstream_catalog_write "$variant" "$work/catalog" || return 1
	upstream_services_start "$work/services"
	if upstream_registry_seed "$work/catalog/catalog.yaml"; then
		upstream_build "$work/catalog/catalog.yaml" "$work/platform.bundle" "$key" "$work/cache" \
			>"$work/build.out" 2>"$work/build.err" || status=$?
	else
		status=1
	fi
	upstream_services_stop
	if [ "$status" -ne 0 ]; then
		mlb_log "the upstream bundle build failed (exit status $status): $(tail -n 20 "$work/build.err")"
		return 1
	fi
	if [ -s "$UPSTREAM_PROXY_LOG" ]; then
		mlb_log "the build sent requests past loopback: $(cat "$UPSTREAM_PROXY_LOG")"
		return 1
	fi
	mv "$work/platform.bundle" "$cache_dir/$cache_key.bundle"
	rm -rf "$work"
	cp "$cache_dir/$cache_key.bundle" "$output"
}
