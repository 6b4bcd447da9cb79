# shellcheck shell=bash
# The result lines of an integration test, "ok - NAME" or "not ok - NAME"
# on stdout. The globals passed and failed count them, and sourcing this
# file sets both to 0. A test ends with `echo "$passed passed, $failed
# failed"` and exits 1 when failed is not 0.
#
#   pass NAME                            count and print a passed check
#   fail NAME                            count and print a failed check
#   check NAME COMMAND...                pass NAME when COMMAND succeeds, fail it otherwise
#   results_print_error_logs STATUS DIR  the ends of DIR/*.err after a failure

passed=0
failed=0

pass() {
	passed=$((passed + 1))
	echo "ok - $1"
}

fail() {
	failed=$((failed + 1))
	echo "not ok - $1"
}

check() {
	local name=$1
	shift
	if "$@"; then pass "$name"; else fail "$name"; fi
}

# Print the last 25 lines of every DIR/*.err on stderr when a check failed
# or STATUS, the script's exit status in an EXIT trap, is not 0.
results_print_error_logs() {
	local status=$1 dir=$2 log
	if [ "$failed" -gt 0 ] || [ "$status" -ne 0 ]; then
		for log in "$dir"/*.err; do
			[ -f "$log" ] || continue
			echo "--- $log" >&2
			tail -n 25 "$log" >&2
		done
	fi
}
