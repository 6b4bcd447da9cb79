# shellcheck shell=bash
# The setup that the first-boot tests (test_firstboot_*.sh) share. It is a
# testbed of two nodes, the stand-in API server on the testbed's bridge
# address, a signed bundle of valid images, and a container image with
# mlboot, its units and an mlboot.yaml for that cluster.
#
# Source after tests/integration/lib.sh and lib/nspawn.sh.
#
#   firstboot_setup NAME           all of the above; NAME (1 to 5 lowercase
#                                  letters) names the testbed and the work folder
#   firstboot_standin_start        start the stand-in (same port and CA every time)
#   firstboot_standin_stop
#   firstboot_wait_for SECONDS DESCRIPTION COMMAND...   poll until COMMAND succeeds
#   firstboot_unit_property UNIT PROPERTY               systemctl show, inside
#   firstboot_install_journal [journalctl options]      the unit's journal, every boot
#   firstboot_journal_has REGEX, firstboot_unit_is UNIT PROPERTY VALUE,
#   firstboot_system_started                            conditions for firstboot_wait_for
#   firstboot_cleanup                                   for an EXIT trap
#
# Settings: MLB_FIRSTBOOT_TEST_SUBNET (default 198.18.0.0/24) is the
# testbed's /24, and the container gets its address .50. While another
# testbed holds that subnet, setup waits up to MLB_FIRSTBOOT_TEST_WAIT
# seconds (default 900) and then skips. FIRSTBOOT_LAYER_BYTES (default 1
# MiB) sizes the image layer that both images share.

FIRSTBOOT_HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
FIRSTBOOT_REPO=$(cd "$FIRSTBOOT_HERE/../.." && pwd)
FIRSTBOOT_LAYER_BYTES=${FIRSTBOOT_LAYER_BYTES:-1048576}
FIRSTBOOT_STANDIN_PID=
FIRSTBOOT_WORK=
FIRSTBOOT_TESTBED_UP=0
FIRSTBOOT_KEEP=0
# Paths inside the container, which the tests read too.
FIRSTBOOT_BUNDLE=/var/lib/mlboot-bundle/platform.bundle
FIRSTBOOT_CONFIG=/etc/mlboot/mlboot.yaml
# shellcheck disable=SC2034 # read by the tests
FIRSTBOOT_STAMP=/var/lib/mlboot/install.done

# Skip unless the machine can run the test at all.
firstboot_require() {
	[ "$(id -u)" -eq 0 ] || mlb_skip "needs root for namespaces, debootstrap and systemd-nspawn"
	[ -x "${MLBOOT:-}" ] || mlb_die "MLBOOT is not set to the mlboot binary; run through tests/run"
	unshare --net --mount --pid --fork true 2>/dev/null ||
		mlb_skip "this kernel or sandbox does not allow new namespaces"
	[ -x /usr/bin/python3 ] || mlb_skip "/usr/bin/python3 is missing (the stand-in API server needs it)"
	nspawn_require
	"$FIRSTBOOT_HERE/testbed/deps"
}

# Wait while another testbed (another prefix) uses the subnet.
firstboot_wait_for_subnet() {
	local limit=${MLB_FIRSTBOOT_TEST_WAIT:-900} waited=0
	while ip -o -4 addr show to "$MLB_TESTBED_SUBNET" | awk '{print $2}' |
		grep -qv "^$MLB_TESTBED_PREFIX-br\$"; do
		if [ "$waited" -ge "$limit" ]; then
			mlb_skip "subnet $MLB_TESTBED_SUBNET is used by another testbed; set MLB_FIRSTBOOT_TEST_SUBNET to a free 198.18.N.0/24"
		fi
		[ "$waited" -gt 0 ] || mlb_log "waiting for subnet $MLB_TESTBED_SUBNET, which another testbed uses"
		sleep 5
		waited=$((waited + 5))
	done
}

firstboot_testbed() {
	"$FIRSTBOOT_HERE/testbed/$1" "${@:2}"
}

# Start the stand-in API server on the bridge address, with its state in
# FIRSTBOOT_WORK/standin. The first start picks a free port; later starts
# reuse it, so the kubeconfig in the container stays valid. Objects live in
# the server's memory, so they are lost when it stops.
firstboot_standin_start() {
	local state=$FIRSTBOOT_WORK/standin port_option=0 deadline
	[ -z "${FIRSTBOOT_STANDIN_PORT:-}" ] || port_option=$FIRSTBOOT_STANDIN_PORT
	mkdir -p "$state"
	rm -f "$state/port"
	/usr/bin/python3 "$FIRSTBOOT_HERE/standin/standin.py" --state-dir "$state" \
		--listen "$MLB_TESTBED_BRIDGE_ADDR" --port "$port_option" --san "$MLB_TESTBED_BRIDGE_ADDR" \
		>>"$state/standin.log" 2>&1 &
	FIRSTBOOT_STANDIN_PID=$!
	deadline=$((SECONDS + 60))
	while [ ! -s "$state/port" ]; do
		kill -0 "$FIRSTBOOT_STANDIN_PID" 2>/dev/null ||
			{ tail -n 20 "$state/standin.log" >&2; mlb_die "the stand-in API server exited while starting"; }
		[ "$SECONDS" -lt "$deadline" ] || mlb_die "the stand-in API server did not listen within 60 s"
		sleep 0.1
	done
	FIRSTBOOT_STANDIN_PORT=$(cat "$state/port")
	mlb_log "stand-in API server at https://$MLB_TESTBED_BRIDGE_ADDR:$FIRSTBOOT_STANDIN_PORT (pid $FIRSTBOOT_STANDIN_PID)"
}

firstboot_standin_stop() {
	[ -n "$FIRSTBOOT_STANDIN_PID" ] || return 0
	kill -TERM "$FIRSTBOOT_STANDIN_PID" 2>/dev/null || true
	wait "$FIRSTBOOT_STANDIN_PID" 2>/dev/null || true
	FIRSTBOOT_STANDIN_PID=
}

# Build a signed bundle of the fixture manifests whose two images are valid
# OCI images (ctr can import them) that share one layer of
# FIRSTBOOT_LAYER_BYTES random bytes. Writes FIRSTBOOT_WORK/platform.bundle
# and the key pair FIRSTBOOT_WORK/signer.{key,pub}.
firstboot_bundle() {
	local src=$FIRSTBOOT_WORK/bundle-src make_image=$FIRSTBOOT_HERE/lib/make-oci-image
	mkdir -p "$src/images" "$src/layer"
	cp -r "$FIRSTBOOT_REPO/tests/fixtures/bundle/manifests" "$FIRSTBOOT_REPO/tests/fixtures/bundle/bin" "$src/"
	head -c "$FIRSTBOOT_LAYER_BYTES" /dev/urandom >"$src/layer/random.bin"
	tar -C "$src/layer" -czf "$src/shared-layer.tar.gz" random.bin
	"$make_image" quay.io/jetstack/cert-manager-controller:v1.14.4 "$src/images/controller.tar" 1 \
		"$src/shared-layer.tar.gz" >/dev/null
	"$make_image" quay.io/jetstack/cert-manager-webhook:v1.14.4 "$src/images/webhook.tar" 2 \
		"$src/shared-layer.tar.gz" >/dev/null
	cat >"$src/catalog.yaml" <<'EOF'
apiVersion: mlboot.dev/v1alpha1
kind: Catalog
metadata:
  name: firstboot-platform
spec:
  version: 0.1.0
  kubernetes:
    minVersion: "1.24"
    maxVersion: "1.33"
  platforms: [linux/amd64]
  components:
  - name: cert-manager
    version: v1.14.4
    namespace: cert-manager
    manifests:
    - path: manifests/cert-manager.yaml
    images:
    - name: quay.io/jetstack/cert-manager-controller:v1.14.4
      path: images/controller.tar
    - name: quay.io/jetstack/cert-manager-webhook:v1.14.4
      path: images/webhook.tar
  - name: sample
    version: "1.0"
    namespace: ml
    manifests:
    - path: manifests/sample.yaml
    binaries:
    - name: hello
      platform: linux/amd64
      path: bin/hello.sh
EOF
	"$MLBOOT" -q keygen -o "$FIRSTBOOT_WORK/signer" >/dev/null
	"$MLBOOT" -q bundle build -f "$src/catalog.yaml" -o "$FIRSTBOOT_WORK/platform.bundle" \
		--key "$FIRSTBOOT_WORK/signer.key" >/dev/null ||
		mlb_die "mlboot bundle build failed"
}

# Write mlboot.yaml for the two nodes into the container image at PATH.
firstboot_write_config() {
	local path=$1
	cat >"$path" <<EOF
# mlboot.yaml of the first-boot tests: two testbed nodes over SSH and the
# stand-in API server on the testbed's bridge.
apiVersion: mlboot.dev/v1alpha1
kind: Platform
metadata:
  name: firstboot
spec:
  bundle: $FIRSTBOOT_BUNDLE
  kubeconfig:
    path: /etc/mlboot/admin.kubeconfig
  hosts:
    - name: node1
      role: control-plane
      ssh:
        address: $MLB_NODE1_ADDR
        keyPath: /etc/mlboot/id_ed25519
        knownHosts: /etc/mlboot/known_hosts
    - name: node2
      role: worker
      ssh:
        address: $MLB_NODE2_ADDR
        keyPath: /etc/mlboot/id_ed25519
        knownHosts: /etc/mlboot/known_hosts
  timeouts:
    component: 2m
    install: 10m
EOF
}

# Everything the tests share; see the top of this file.
firstboot_setup() {
	local name=$1 root env
	firstboot_require
	export MLB_TESTBED_PREFIX=mlb$name
	export MLB_TESTBED_SUBNET=${MLB_FIRSTBOOT_TEST_SUBNET:-198.18.0.0/24}
	export MLB_TESTBED_DIR=/tmp/mlb$name-testbed
	unset MLB_TESTBED_SUDO_PASSWORD MLB_TESTBED_BASTION_ONLY
	firstboot_wait_for_subnet

	FIRSTBOOT_WORK=$(mktemp -d "/var/tmp/mlb-test-firstboot-$name.XXXXXX")
	FIRSTBOOT_TESTBED_UP=1
	env=$(firstboot_testbed up 2) || mlb_die "the testbed did not start"
	set -a
	# shellcheck disable=SC1090 # written by testbed/up
	. "$env"
	set +a
	# Preflight requires IPv4 forwarding, which is set per network namespace.
	firstboot_testbed node-exec node1 sysctl -qw net.ipv4.ip_forward=1
	firstboot_testbed node-exec node2 sysctl -qw net.ipv4.ip_forward=1

	# The first start makes the CA, the client certificate and the port.
	firstboot_standin_start
	firstboot_standin_stop
	firstboot_bundle

	nspawn_base_image
	nspawn_image_create "$FIRSTBOOT_WORK/container"
	root=$NSPAWN_DIR/root
	install -d -m 0755 "$root/etc/mlboot/keys" "$root/var/lib/mlboot-bundle" \
		"$root/etc/systemd/system/mlboot-install.service.d"
	firstboot_write_config "$root$FIRSTBOOT_CONFIG"
	install -m 0644 "$FIRSTBOOT_WORK/signer.pub" "$root/etc/mlboot/keys/firstboot.pub"
	install -m 0600 "$MLB_TESTBED_KEY_ED25519" "$root/etc/mlboot/id_ed25519"
	install -m 0644 "$MLB_TESTBED_KNOWN_HOSTS" "$root/etc/mlboot/known_hosts"
	install -m 0600 "$FIRSTBOOT_WORK/standin/admin.kubeconfig" "$root/etc/mlboot/admin.kubeconfig"
	install -m 0644 "$FIRSTBOOT_WORK/platform.bundle" "$root$FIRSTBOOT_BUNDLE"
	# A shorter retry delay than the unit's 1 min keeps the tests short.
	printf '[Service]\nRestartSec=5s\n' >"$root/etc/systemd/system/mlboot-install.service.d/test.conf"

	nspawn_netns_create "mlb$name-ct" "${MLB_TESTBED_BRIDGE_ADDR%.*}.50/24" "$MLB_TESTBED_BRIDGE"
}

# Poll COMMAND every second until it succeeds or SECONDS pass; on timeout,
# log DESCRIPTION and return 1.
firstboot_wait_for() {
	local timeout=$1 description=$2 deadline
	shift 2
	deadline=$((SECONDS + timeout))
	until "$@" >/dev/null 2>&1; do
		if [ "$SECONDS" -ge "$deadline" ]; then
			mlb_log "timed out after $timeout s waiting for $description"
			return 1
		fi
		sleep 1
	done
}

firstboot_unit_property() {
	nspawn_exec systemctl show --property="$2" --value "$1"
}

# The journal of mlboot-install.service inside the container, every boot.
# shellcheck disable=SC2120 # the tests pass journalctl options
firstboot_install_journal() {
	nspawn_journal -u mlboot-install.service "$@"
}

# Whether the install's journal contains a line matching the regular expression.
firstboot_journal_has() {
	firstboot_install_journal | grep -q -- "$1"
}

# Whether PROPERTY of UNIT inside the container is VALUE.
firstboot_unit_is() {
	[ "$(firstboot_unit_property "$1" "$2")" = "$3" ]
}

# Whether the container's systemd finished starting up (running or degraded).
firstboot_system_started() {
	nspawn_exec systemctl is-system-running --wait 2>/dev/null | grep -Eq '^(running|degraded)$'
}

# For an EXIT trap: stop everything this file started; keep the work
# folder when the test failed (or FIRSTBOOT_KEEP=1), for its logs.
firstboot_cleanup() {
	local status=$?
	if [ -n "$NSPAWN_PID" ] && [ "$status" -ne 0 ] && [ -n "$NSPAWN_LEADER" ]; then
		mlb_log "journal of mlboot-install.service in the container:"
		firstboot_install_journal 2>/dev/null | tail -n 60 >&2 || true
	fi
	nspawn_cleanup
	firstboot_standin_stop
	if [ "$FIRSTBOOT_TESTBED_UP" = 1 ]; then
		firstboot_testbed down >/dev/null 2>&1 || true
	fi
	if [ -n "$FIRSTBOOT_WORK" ]; then
		if [ "$status" -eq 0 ] && [ "$FIRSTBOOT_KEEP" != 1 ]; then
			rm -rf "$FIRSTBOOT_WORK"
		else
			mlb_log "kept $FIRSTBOOT_WORK for reading the logs"
		fi
	fi
	exit "$status"
}
