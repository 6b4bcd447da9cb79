# shellcheck shell=bash
# Shell helpers that boot a Debian 12 container with systemd as PID 1 for
# the first-boot tests: debootstrap builds the root file system once,
# systemd-nspawn boots a copy of it, and commands run inside through
# nsenter into the namespaces of the container's PID 1.
#
# Source this file from bash after tests/integration/lib.sh; it sets no
# shell options of its own. Needs root.
#
#   nspawn_require                    install debootstrap and systemd-nspawn
#   nspawn_base_image                 build or reuse the cached base tree; sets NSPAWN_BASE
#   nspawn_image_create DIR           copy the base to DIR/root, install mlboot into it
#   nspawn_netns_create NAME [ADDR/24 BRIDGE]  a namespace, with a veth on BRIDGE
#   nspawn_boot                       boot DIR/root in the namespace, in the background
#   nspawn_exec CMD ...               run a command inside the running container
#   nspawn_poweroff                   a clean shutdown ("systemctl poweroff")
#   nspawn_kill                       SIGKILL to the container's PID 1: a power cut
#   nspawn_cleanup                    stop the container, delete the namespace
#
# The base tree is cached in NSPAWN_CACHE (default /var/cache/mlboot-test),
# in a folder named by a digest of the package list and the mirror, so a
# second run downloads nothing. debootstrap uses the Debian mirror of this
# machine's apt sources.
#
# A SIGKILL of the container's PID 1 ends every process in it at once, but
# the host kernel keeps the container's unwritten file data in its page
# cache: it tests that mlboot resumes after its processes die anywhere, not
# that its fsync calls reach a disk.

NSPAWN_CACHE=${NSPAWN_CACHE:-/var/cache/mlboot-test}
NSPAWN_SUITE=bookworm
# Packages the base tree always has, besides the runtime libraries of mlboot.
# man-db lets "systemd-analyze verify" check the units' Documentation= pages.
NSPAWN_PACKAGES=(systemd systemd-sysv dbus ca-certificates man-db)
# Seconds to wait for the container's PID 1, and for a poweroff.
NSPAWN_BOOT_TIMEOUT=60
NSPAWN_POWEROFF_TIMEOUT=60
NSPAWN_PID=
NSPAWN_LEADER=
NSPAWN_DIR=
NSPAWN_NETNS=
NSPAWN_VETH=

# Install debootstrap and systemd-nspawn when missing. systemd-container is
# pinned to the version of the installed libsystemd-shared, on which it
# depends exactly, so that installing it upgrades none of this machine's
# systemd packages. Skips the test when they cannot be installed.
nspawn_require() {
	mlb_require_root
	if ! command -v debootstrap >/dev/null; then
		mlb_install_packages debootstrap
	fi
	if ! command -v systemd-nspawn >/dev/null; then
		local version
		version=$(dpkg-query -W -f='${Version}' libsystemd-shared 2>/dev/null || true)
		if [ -n "$version" ] && apt-cache show "systemd-container=$version" >/dev/null 2>&1; then
			mlb_install_packages "systemd-container=$version"
		else
			mlb_install_packages systemd-container
		fi
	fi
	command -v debootstrap >/dev/null || mlb_skip "debootstrap is not installed and could not be"
	command -v systemd-nspawn >/dev/null || mlb_skip "systemd-nspawn is not installed and could not be"
}

# Print the first Debian archive URL of this machine's apt sources (deb822
# .sources files first, then one-line sources.list entries), skipping the
# security archive.
nspawn_mirror() {
	local file url
	for file in /etc/apt/sources.list.d/*.sources; do
		[ -f "$file" ] || continue
		url=$(awk 'tolower($1) == "uris:" { for (i = 2; i <= NF; i++) print $i }' "$file" |
			grep -v -- '-security' | head -n 1)
		if [ -n "$url" ]; then
			printf '%s\n' "$url"
			return 0
		fi
	done
	for file in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
		[ -f "$file" ] || continue
		url=$(awk '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) { print $i; break } }' "$file" |
			grep -v -- '-security' | head -n 1)
		if [ -n "$url" ]; then
			printf '%s\n' "$url"
			return 0
		fi
	done
	return 1
}

# Print the Debian packages that contain the shared libraries mlboot links.
# Returns 1 when a library belongs to no package.
nspawn_runtime_packages() {
	local binary=$1 library owner
	local -a libraries owners=()
	mapfile -t libraries < <(ldd "$binary" |
		awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }')
	for library in "${libraries[@]}"; do
		owner=$(dpkg -S "$library" 2>/dev/null || dpkg -S "$(readlink -f "$library")" 2>/dev/null ||
			dpkg -S "/usr$library" 2>/dev/null || true)
		owner=${owner%%:*}
		if [ -z "$owner" ]; then
			mlb_log "no Debian package contains $library, which $binary needs"
			return 1
		fi
		owners+=("$owner")
	done
	printf '%s\n' "${owners[@]}" | sort -u
}

# Build the base tree, or reuse the cached one, and set NSPAWN_BASE to it.
# The base has systemd, dbus and mlboot's runtime libraries, a persistent
# journal (/var/log/journal) and a fixed machine id, so that journalctl
# inside shows every boot.
nspawn_base_image() {
	local mirror runtime packages digest tmp
	mirror=$(nspawn_mirror) || mlb_skip "no Debian mirror found in /etc/apt/sources.list(.d)"
	runtime=$(nspawn_runtime_packages "$MLBOOT") ||
		mlb_die "failed to find the packages of the libraries $MLBOOT needs"
	packages=$(printf '%s\n' "${NSPAWN_PACKAGES[@]}" "$runtime" | sort -u | paste -sd, -)
	digest=$(printf '%s %s %s\n' "$NSPAWN_SUITE" "$mirror" "$packages" | sha256sum | cut -c1-16)
	NSPAWN_BASE=$NSPAWN_CACHE/$NSPAWN_SUITE-$digest
	mkdir -p "$NSPAWN_CACHE"

	# One build at a time: a second test waits for the first one's tree.
	exec {nspawn_lock}>"$NSPAWN_CACHE/.lock"
	flock "$nspawn_lock"
	if [ ! -f "$NSPAWN_BASE/.complete" ]; then
		tmp=$NSPAWN_BASE.tmp
		rm -rf "$tmp"
		mlb_log "building the container base $NSPAWN_BASE from $mirror (once; later runs reuse it)"
		if ! debootstrap --variant=minbase --include="$packages" "$NSPAWN_SUITE" "$tmp" "$mirror" \
			>"$NSPAWN_CACHE/debootstrap.log" 2>&1; then
			tail -n 20 "$NSPAWN_CACHE/debootstrap.log" >&2
			rm -rf "$tmp"
			exec {nspawn_lock}>&-
			mlb_die "debootstrap failed; its log is $NSPAWN_CACHE/debootstrap.log"
		fi
		rm -rf "$tmp/var/cache/apt/archives/"*.deb
		mkdir -p "$tmp/var/log/journal"
		od -An -N16 -tx1 /dev/urandom | tr -d ' \n' >"$tmp/etc/machine-id"
		echo >>"$tmp/etc/machine-id"
		touch "$tmp/.complete"
		rm -rf "$NSPAWN_BASE"
		mv "$tmp" "$NSPAWN_BASE"
	fi
	exec {nspawn_lock}>&-
}

# Copy the base tree to DIR/root, run "make install" of mlboot into it with
# PREFIX=/usr/local, and enable the units as a package's postinst would.
# The binary is the one the tests run ($MLBOOT_BUILD/mlboot): make does not
# rebuild it.
nspawn_image_create() {
	NSPAWN_DIR=$1
	local root=$NSPAWN_DIR/root repo
	repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
	mkdir -p "$NSPAWN_DIR"
	rm -rf "$root"
	cp -a --reflink=auto "$NSPAWN_BASE" "$root"
	rm -f "$root/.complete"
	make -C "$repo" --no-print-directory -o "$MLBOOT_BUILD/mlboot" BUILD="$MLBOOT_BUILD" PREFIX=/usr/local DESTDIR="$root" \
		install >"$NSPAWN_DIR/make-install.log" 2>&1 ||
		{ cat "$NSPAWN_DIR/make-install.log" >&2; mlb_die "make install into the container image failed"; }
	# LeakSanitizer stops the threads of the process with ptrace at exit,
	# which the units' SystemCallFilter=@system-service does not allow: the
	# process then never exits. An ASan build keeps its other checks.
	if ldd "$MLBOOT_BUILD/mlboot" | grep -q libasan; then
		local unit
		for unit in mlboot-install.service mlboot-check.service; do
			mkdir -p "$root/etc/systemd/system/$unit.d"
			printf '[Service]\nEnvironment=ASAN_OPTIONS=detect_leaks=0\n' \
				>"$root/etc/systemd/system/$unit.d/sanitizer.conf"
		done
	fi
	systemctl --root="$root" enable mlboot-install.service mlboot-install.path mlboot-check.timer \
		>>"$NSPAWN_DIR/make-install.log" 2>&1 ||
		{ cat "$NSPAWN_DIR/make-install.log" >&2; mlb_die "systemctl --root enable failed"; }
}

# Create network namespace NAME. With ADDRESS (CIDR form) and BRIDGE it
# gets a veth "eth0" with that address whose other end joins BRIDGE;
# without them it has loopback only.
nspawn_netns_create() {
	local name=$1 address=${2:-} bridge=${3:-}
	NSPAWN_NETNS=$name
	NSPAWN_VETH=
	ip netns del "$name" 2>/dev/null || true
	ip netns add "$name"
	ip -n "$name" link set lo up
	[ -n "$address" ] || return 0
	NSPAWN_VETH=${name:0:11}-h
	ip link del "$NSPAWN_VETH" 2>/dev/null || true
	ip link add "$NSPAWN_VETH" type veth peer name eth0 netns "$name"
	ip link set "$NSPAWN_VETH" master "$bridge" up
	ip -n "$name" addr add "$address" dev eth0
	ip -n "$name" link set eth0 up
}

# Boot DIR/root with systemd as PID 1 in the network namespace, its console
# going to DIR/console.log (appended, one section per boot). Returns once
# systemd inside responds to systemctl, while units may still be starting.
# Sets NSPAWN_PID (the systemd-nspawn process) and NSPAWN_LEADER (the
# container's PID 1, by its PID in the host's PID namespace).
nspawn_boot() {
	local deadline child
	echo "---- boot at $(date -u +%FT%TZ)" >>"$NSPAWN_DIR/console.log"
	systemd-nspawn --quiet -D "$NSPAWN_DIR/root" --boot --register=no --keep-unit \
		--machine=mlb-firstboot --console=read-only \
		--network-namespace-path="/run/netns/$NSPAWN_NETNS" \
		>>"$NSPAWN_DIR/console.log" 2>&1 </dev/null &
	NSPAWN_PID=$!
	NSPAWN_LEADER=
	deadline=$((SECONDS + NSPAWN_BOOT_TIMEOUT))
	while [ "$SECONDS" -lt "$deadline" ]; do
		if ! kill -0 "$NSPAWN_PID" 2>/dev/null; then
			tail -n 30 "$NSPAWN_DIR/console.log" >&2
			mlb_die "systemd-nspawn exited while booting; its console log is above"
		fi
		if [ -z "$NSPAWN_LEADER" ]; then
			for child in $(pgrep -P "$NSPAWN_PID"); do
				if [ "$(cat "/proc/$child/comm" 2>/dev/null)" = systemd ]; then
					NSPAWN_LEADER=$child
				fi
			done
		fi
		if [ -n "$NSPAWN_LEADER" ] &&
			nspawn_exec systemctl show --property=Version >/dev/null 2>&1; then
			return 0
		fi
		sleep 0.2
	done
	mlb_die "the container did not boot within $NSPAWN_BOOT_TIMEOUT s; console: $NSPAWN_DIR/console.log"
}

# Run a command inside the container, in every namespace of its PID 1, with
# a clean environment: nothing of the test's environment leaks in.
nspawn_exec() {
	[ -n "$NSPAWN_LEADER" ] || mlb_die "nspawn_exec: no container is running"
	nsenter --target "$NSPAWN_LEADER" --all -- \
		/usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
		SYSTEMD_PAGER= SYSTEMD_COLORS=0 LANG=C.UTF-8 "$@"
}

# Wait for the systemd-nspawn process to exit, up to TIMEOUT seconds.
nspawn_wait_exit() {
	local timeout=$1 deadline
	deadline=$((SECONDS + timeout))
	while kill -0 "$NSPAWN_PID" 2>/dev/null; do
		[ "$SECONDS" -lt "$deadline" ] || return 1
		sleep 0.2
	done
	wait "$NSPAWN_PID" 2>/dev/null || true
	NSPAWN_PID=
	NSPAWN_LEADER=
}

# Shut the container down cleanly and wait for it.
nspawn_poweroff() {
	[ -n "$NSPAWN_PID" ] || return 0
	nspawn_exec systemctl poweroff --no-block >/dev/null 2>&1 || true
	if ! nspawn_wait_exit "$NSPAWN_POWEROFF_TIMEOUT"; then
		mlb_log "the container did not power off within $NSPAWN_POWEROFF_TIMEOUT s; killing it"
		nspawn_kill
	fi
}

# Cut the power: SIGKILL to the container's PID 1 ends every process of its
# PID namespace at once, with no shutdown. systemd-nspawn then exits.
nspawn_kill() {
	[ -n "$NSPAWN_PID" ] || return 0
	[ -z "$NSPAWN_LEADER" ] || kill -KILL "$NSPAWN_LEADER" 2>/dev/null || true
	if ! nspawn_wait_exit 20; then
		kill -KILL "$NSPAWN_PID" 2>/dev/null || true
		nspawn_wait_exit 10 || mlb_log "systemd-nspawn (pid $NSPAWN_PID) did not exit"
	fi
}

# Stop a running container and delete the namespace and veth. DIR stays,
# for reading logs: the caller removes it.
nspawn_cleanup() {
	nspawn_kill
	if [ -n "$NSPAWN_NETNS" ]; then
		ip netns del "$NSPAWN_NETNS" 2>/dev/null || true
		[ -z "$NSPAWN_VETH" ] || ip link del "$NSPAWN_VETH" 2>/dev/null || true
		NSPAWN_NETNS=
	fi
}

# Print the journal of a unit inside the container, every boot, as short lines.
nspawn_journal() {
	nspawn_exec journalctl --no-pager --quiet -o short-monotonic "$@"
}
