# shellcheck shell=bash
# shellcheck disable=SC2034 # the TESTBED_* globals are read by the scripts that source this file
# Settings and helpers shared by the testbed commands. Sourced, not run.
#
# Settings (environment variables, all optional):
#   MLB_TESTBED_PREFIX  name prefix of namespaces and links (default "mlb"):
#                       namespaces PREFIX-node1.., bridge PREFIX-br, host-side
#                       veths PREFIX-n1..
#   MLB_TESTBED_SUBNET  the nodes' /24 (default 198.18.0.0/24), which must
#                       lie in 198.18.0.0/15, the RFC 2544 benchmark range
#   MLB_TESTBED_DIR     state directory (default /tmp/PREFIX-testbed)
# A testbed records its prefix and subnet in DIR/testbed.conf, and every
# command after `up` reads them from there.

TESTBED_HOME=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../lib.sh
. "$TESTBED_HOME/../lib.sh"

# Directories of which each node has its own copy: node-init binds
# DIR/nodeI/fs/PATH over PATH. /tmp comes last because the state directory
# usually lies under /tmp and must stay reachable until every other bind is
# made.
TESTBED_NODE_DIRS=(
	/etc/ssh
	/etc/containerd
	/etc/kubernetes
	/etc/sudoers.d
	/run/containerd
	/var/lib/containerd
	/var/lib/mlboot
	/var/log
	/usr/local/bin
	/root
	/home
	/tmp
)
# Files of which each node has its own copy (users, groups and the names of
# the testbed's hosts).
TESTBED_NODE_FILES=(
	/etc/hosts
	/etc/passwd
	/etc/group
	/etc/shadow
)

# The node that has the non-root sudo user, the bastion, and the node that is
# reached through the bastion.
TESTBED_SUDO_NODE=2
TESTBED_SUDO_USER=mlbuser
TESTBED_BASTION_NODE=1
TESTBED_BEHIND_BASTION_NODE=3

# Node I has address BASE.(10+I), so at most 244 nodes fit in the /24.
TESTBED_MAX_NODES=244

# Load and check the settings. Values recorded by `up` in testbed.conf take
# precedence over the environment, so that `down` and `node-exec` find the
# testbed whatever the caller's environment contains.
testbed_load_settings() {
	TESTBED_PREFIX=${MLB_TESTBED_PREFIX:-mlb}
	TESTBED_SUBNET=${MLB_TESTBED_SUBNET:-198.18.0.0/24}
	TESTBED_DIR=${MLB_TESTBED_DIR:-/tmp/$TESTBED_PREFIX-testbed}
	TESTBED_DIR=${TESTBED_DIR%/}
	TESTBED_CONF=$TESTBED_DIR/testbed.conf
	TESTBED_NODE_COUNT=0

	if [ -f "$TESTBED_CONF" ]; then
		local key value
		while IFS='=' read -r key value; do
			case $key in
			PREFIX) TESTBED_PREFIX=$value ;;
			SUBNET) TESTBED_SUBNET=$value ;;
			NODE_COUNT) TESTBED_NODE_COUNT=$value ;;
			esac
		done <"$TESTBED_CONF"
	fi

	testbed_check_settings
}

testbed_check_settings() {
	if ! [[ $TESTBED_PREFIX =~ ^[a-z][a-z0-9]{0,7}$ ]]; then
		mlb_die "invalid MLB_TESTBED_PREFIX '$TESTBED_PREFIX': expected 1 to 8 lowercase letters or digits, starting with a letter (link names have at most 15 characters)"
	fi

	if ! [[ $TESTBED_SUBNET =~ ^(198\.1[89])\.([0-9]{1,3})\.0/24$ ]] ||
		[ "${BASH_REMATCH[2]}" -gt 255 ]; then
		mlb_die "invalid MLB_TESTBED_SUBNET '$TESTBED_SUBNET': expected 198.18.N.0/24 or 198.19.N.0/24 (RFC 2544 benchmark range)"
	fi
	TESTBED_NET_BASE=${BASH_REMATCH[1]}.${BASH_REMATCH[2]}
	TESTBED_BRIDGE_ADDR=$TESTBED_NET_BASE.1
	TESTBED_BRIDGE=$TESTBED_PREFIX-br

	if ! [[ $TESTBED_NODE_COUNT =~ ^[0-9]+$ ]]; then
		mlb_die "invalid NODE_COUNT '$TESTBED_NODE_COUNT' in $TESTBED_CONF: run testbed/down and testbed/up again"
	fi

	if ! [[ $TESTBED_DIR =~ ^/[A-Za-z0-9._/-]+$ ]]; then
		mlb_die "invalid MLB_TESTBED_DIR '$TESTBED_DIR': expected an absolute path of letters, digits, '.', '_', '-' and '/'"
	fi
	# The binds of node-init hide everything below these directories, so a
	# state directory there would vanish from the nodes' view halfway
	# through. /tmp works because it is bound last.
	local dir
	for dir in "${TESTBED_NODE_DIRS[@]}"; do
		if [ "$dir" != /tmp ] && [[ $TESTBED_DIR/ == "$dir"/* ]]; then
			mlb_die "invalid MLB_TESTBED_DIR '$TESTBED_DIR': it must not lie under $dir, which each node replaces with its own directory"
		fi
	done
}

testbed_write_conf() {
	mkdir -p "$TESTBED_DIR"
	printf 'PREFIX=%s\nSUBNET=%s\nNODE_COUNT=%s\n' \
		"$TESTBED_PREFIX" "$TESTBED_SUBNET" "$TESTBED_NODE_COUNT" >"$TESTBED_CONF.new"
	mv "$TESTBED_CONF.new" "$TESTBED_CONF"
}

# Per-node names. I is the node number, from 1.
testbed_node_name() { printf 'node%s' "$1"; }
testbed_node_netns() { printf '%s-node%s' "$TESTBED_PREFIX" "$1"; }
testbed_node_veth() { printf '%s-n%s' "$TESTBED_PREFIX" "$1"; }
testbed_node_addr() { printf '%s.%s' "$TESTBED_NET_BASE" "$((10 + $1))"; }
testbed_node_dir() { printf '%s/node%s' "$TESTBED_DIR" "$1"; }

# Print the node number for NAME, which may be "node2", "2", the namespace
# name "mlb-node2" or the address "198.18.0.12".
testbed_node_index() {
	local name=$1 index=
	if [[ $name =~ ^(node)?([0-9]+)$ ]]; then
		index=${BASH_REMATCH[2]}
	elif [[ $name == "$TESTBED_PREFIX"-node* ]] && [[ ${name#"$TESTBED_PREFIX"-node} =~ ^[0-9]+$ ]]; then
		index=${name#"$TESTBED_PREFIX"-node}
	elif [[ $name == "$TESTBED_NET_BASE".* ]] && [[ ${name##*.} =~ ^[0-9]+$ ]]; then
		index=$((10#${name##*.} - 10))
	fi
	if [ "$TESTBED_NODE_COUNT" -eq 0 ]; then
		mlb_die "no testbed in $TESTBED_DIR (no testbed.conf); run testbed/up first, or set MLB_TESTBED_DIR or MLB_TESTBED_PREFIX"
	fi
	if ! [[ $index =~ ^[0-9]+$ ]] || [ "$((10#$index))" -lt 1 ] || [ "$((10#$index))" -gt "$TESTBED_NODE_COUNT" ]; then
		mlb_die "unknown node '$name': the testbed in $TESTBED_DIR has nodes node1 to node$TESTBED_NODE_COUNT"
	fi
	printf '%s' "$((10#$index))"
}

# Process records. A pid file contains "PID STARTTIME", where STARTTIME is field
# 22 of /proc/PID/stat, so that a recycled process id is never mistaken for
# the process that was started.
testbed_proc_starttime() {
	local stat
	stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
	# Field 2 (comm) may contain spaces, so the fields after it are read from
	# past its closing ") ".
	stat=${stat##*) }
	# shellcheck disable=SC2086
	set -- $stat
	printf '%s' "${20}"
}

testbed_record_pid() {
	local pid=$1 file=$2 starttime
	starttime=$(testbed_proc_starttime "$pid") || return 1
	printf '%s %s\n' "$pid" "$starttime" >"$file"
}

# Print the process id recorded in FILE if that process still runs.
testbed_recorded_pid() {
	local file=$1 pid starttime current
	[ -f "$file" ] || return 1
	read -r pid starttime <"$file" || return 1
	[[ $pid =~ ^[0-9]+$ ]] || return 1
	current=$(testbed_proc_starttime "$pid") || return 1
	[ "$current" = "$starttime" ] || return 1
	printf '%s' "$pid"
}

# Print the process id of node I's holder: the process that keeps the node's
# mount and UTS namespaces alive and that nsenter joins.
testbed_holder_pid() {
	local pid netns
	pid=$(testbed_recorded_pid "$(testbed_node_dir "$1")/holder.pid") || return 1
	netns=/run/netns/$(testbed_node_netns "$1")
	[ -e "$netns" ] || return 1
	[ "$(stat -L -c %d:%i "/proc/$pid/ns/net" 2>/dev/null)" = "$(stat -L -c %d:%i "$netns")" ] || return 1
	printf '%s' "$pid"
}

# Run a command in node I's network, mount and UTS namespaces.
testbed_node_run() {
	local index=$1 holder
	shift
	holder=$(testbed_holder_pid "$index") ||
		mlb_die "node$index is not running (no live holder process in $(testbed_node_dir "$index")); run testbed/up"
	nsenter --target "$holder" --net --mount --uts -- "$@"
}

# Succeed if the process exists and has not exited. An exited process stays
# a zombie until its parent reaps it, and the parent of a daemon is PID 1,
# which in some sandboxes reaps only now and then.
testbed_pid_alive() {
	local stat
	stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
	stat=${stat##*) }
	[ "${stat%% *}" != Z ]
}

# Send SIGTERM to the processes, wait up to 5 seconds, then SIGKILL the rest.
testbed_kill_pids() {
	local pid
	[ "$#" -gt 0 ] || return 0
	kill -TERM "$@" 2>/dev/null || true
	local deadline=$((SECONDS + 5))
	while [ "$SECONDS" -lt "$deadline" ]; do
		local alive=0
		for pid in "$@"; do
			if testbed_pid_alive "$pid"; then
				alive=1
			fi
		done
		[ "$alive" -eq 1 ] || return 0
		sleep 0.1
	done
	kill -KILL "$@" 2>/dev/null || true
}

# Daemons. Each runs in the foreground in its own session, with its pid in
# DIR/nodeI/DAEMON.pid.
testbed_daemon_pid() {
	local index=$1 daemon=$2 pid exe
	pid=$(testbed_recorded_pid "$(testbed_node_dir "$index")/$daemon.pid") || return 1
	exe=$(readlink "/proc/$pid/exe" 2>/dev/null) || return 1
	[ "${exe##*/}" = "$daemon" ] || return 1
	printf '%s' "$pid"
}

testbed_sshd_listening() {
	local output
	output=$(ip netns exec "$(testbed_node_netns "$1")" ss -Hltn 'sport = :22' 2>/dev/null) || return 1
	[ -n "$output" ]
}

testbed_containerd_ready() {
	testbed_node_run "$1" ctr --address /run/containerd/containerd.sock version >/dev/null 2>&1
}

testbed_start_daemon() {
	local index=$1 daemon=$2 dir holder pid
	dir=$(testbed_node_dir "$index")
	if testbed_daemon_pid "$index" "$daemon" >/dev/null; then
		return 0
	fi
	holder=$(testbed_holder_pid "$index") || mlb_die "node$index is not running; run testbed/up"

	local -a command
	case $daemon in
	sshd)
		# sshd re-executes itself for each connection, so it needs its
		# absolute path. -D keeps it in the foreground so that the pid
		# below is the listener's.
		command=(/usr/sbin/sshd -D -f /etc/ssh/sshd_config -E /var/log/sshd.log)
		;;
	containerd)
		command=(containerd --config /etc/containerd/config.toml)
		;;
	*) mlb_die "unknown daemon '$daemon'" ;;
	esac

	# setsid and nsenter exec without forking here (the background child is
	# no process group leader, and nsenter joins no pid namespace), so $!
	# becomes the daemon's own pid once both have run.
	setsid nsenter --target "$holder" --net --mount --uts -- "${command[@]}" \
		</dev/null >>"$dir/fs/var/log/$daemon.stdout.log" 2>&1 &
	pid=$!
	if ! mlb_wait_until 5 testbed_pid_runs_program "$pid" "$daemon"; then
		mlb_die "node$index: $daemon did not start; see $dir/fs/var/log/$daemon*.log"
	fi
	testbed_record_pid "$pid" "$dir/$daemon.pid"

	case $daemon in
	sshd) mlb_wait_until 10 testbed_sshd_listening "$index" ||
		mlb_die "node$index: sshd is not listening on port 22 after 10 s; see $dir/fs/var/log/sshd.log" ;;
	containerd) mlb_wait_until 20 testbed_containerd_ready "$index" ||
		mlb_die "node$index: containerd does not answer on /run/containerd/containerd.sock after 20 s; see $dir/fs/var/log/containerd.stdout.log" ;;
	esac
}

testbed_pid_runs_program() {
	local exe
	exe=$(readlink "/proc/$1/exe" 2>/dev/null) || return 1
	[ "${exe##*/}" = "$2" ]
}

testbed_stop_daemon() {
	local index=$1 daemon=$2 pid
	if pid=$(testbed_daemon_pid "$index" "$daemon"); then
		testbed_kill_pids "$pid"
	fi
	rm -f "$(testbed_node_dir "$index")/$daemon.pid"
}
