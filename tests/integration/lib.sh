# shellcheck shell=bash
# Shared shell helpers for the integration tests and the testbed scripts.
# Source this file from bash. It sets no shell options of its own.

# Exit status of a skipped test (the automake convention).
MLB_EXIT_SKIP=77

mlb_log() {
	printf '%s: %s\n' "${0##*/}" "$*" >&2
}

mlb_die() {
	printf '%s: error: %s\n' "${0##*/}" "$*" >&2
	exit 1
}

mlb_skip() {
	printf '%s: skipped: %s\n' "${0##*/}" "$*" >&2
	exit "$MLB_EXIT_SKIP"
}

mlb_require_root() {
	if [ "$(id -u)" -ne 0 ]; then
		mlb_die "must run as root (network namespaces, mounts and daemons need it)"
	fi
}

# Print the packages among the arguments that dpkg does not list as installed.
mlb_missing_packages() {
	local package status
	for package in "$@"; do
		status=$(dpkg-query -W -f='${db:Status-Status}' "$package" 2>/dev/null || true)
		if [ "$status" != "installed" ]; then
			printf '%s\n' "$package"
		fi
	done
}

# Install the Debian packages among the arguments that are missing, with
# apt-get and no prompts. Package scripts may not start services: a missing
# /usr/sbin/policy-rc.d is created for the duration of the install and then
# removed, so that installing openssh-server or containerd starts no
# system-wide sshd or containerd.
mlb_install_packages() {
	local -a missing
	mapfile -t missing < <(mlb_missing_packages "$@")
	if [ "${#missing[@]}" -eq 0 ]; then
		return 0
	fi
	mlb_require_root
	mlb_log "installing missing packages: ${missing[*]}"

	local policy=/usr/sbin/policy-rc.d created_policy=0
	if [ ! -e "$policy" ]; then
		printf '#!/bin/sh\n# Created by mlboot tests: starts no services during apt-get install.\nexit 101\n' >"$policy"
		chmod 0755 "$policy"
		created_policy=1
	fi

	local status=0
	DEBIAN_FRONTEND=noninteractive apt-get update -q >&2 || status=$?
	if [ "$status" -eq 0 ]; then
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
			"${missing[@]}" >&2 || status=$?
	fi

	if [ "$created_policy" -eq 1 ]; then
		rm -f "$policy"
	fi
	if [ "$status" -ne 0 ]; then
		mlb_die "apt-get failed (exit status $status) installing: ${missing[*]}"
	fi
}

# Run a command until it succeeds or TIMEOUT seconds pass. Return 0 on
# success and 1 on timeout. The command's output goes where the caller sends it.
mlb_wait_until() {
	local timeout=$1
	shift
	local deadline=$((SECONDS + timeout))
	while ! "$@"; do
		if [ "$SECONDS" -ge "$deadline" ]; then
			return 1
		fi
		sleep 0.1
	done
}
