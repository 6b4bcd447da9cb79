#!/usr/bin/env bash
# Hostile bundles: every case written by tests/fixtures/bundle/make_hostile.py
# must be rejected by both `mlboot bundle verify` and `mlboot bundle unpack`
# with the expected exit status and message, archive names must reach the
# terminal escaped, and unpack must leave nothing behind: not in the
# destination, not beside it, and not in the folder that absolute names
# and links point at.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
fixtures="$here/../fixtures/bundle"

MLBOOT=${MLBOOT:?MLBOOT must name the mlboot binary}
for tool in python3 openssl zstd; do
	command -v "$tool" >/dev/null || mlb_skip "'$tool' is not installed (tests/install-deps installs it)"
done

work=$(mktemp -d /tmp/mlboot-hostile.XXXXXX)
# MLBOOT_KEEP_WORK=1 keeps the cases and outputs for a look after a failure.
if [ -n "${MLBOOT_KEEP_WORK:-}" ]; then
	echo "work folder: $work" >&2
else
	trap 'rm -rf "$work"' EXIT
fi
escape="$work/escape-target"
mkdir -p "$escape"

# A good, signed bundle to start from.
cp -r "$fixtures" "$work/src"
python3 "$fixtures/make_layout.py" "$work/src/images/controller" \
	--name quay.io/jetstack/cert-manager-controller:v1.14.4 --layer 11:40000 --layer 12:3000 >/dev/null
python3 "$fixtures/make_layout.py" "$work/src/images/webhook" --archive "$work/src/images/webhook.tar" \
	--name quay.io/jetstack/cert-manager-webhook:v1.14.4 --layer 11:40000 --layer 13:5000 \
	--platforms linux/amd64,linux/arm64 >/dev/null
"$MLBOOT" keygen -o "$work/signer" >/dev/null || mlb_die "keygen failed"
"$MLBOOT" bundle build -f "$work/src/catalog.yaml" -o "$work/good.bundle" --key "$work/signer.key" >/dev/null ||
	mlb_die "building the good bundle failed"
"$MLBOOT" bundle verify "$work/good.bundle" --pubkey "$work/signer.pub" >/dev/null ||
	mlb_die "the good bundle does not verify"

python3 "$fixtures/make_hostile.py" "$work/good.bundle" "$work/signer.key" "$work/cases" "$escape" ||
	mlb_die "make_hostile.py failed"

failures=0
count=0
fail() {
	echo "FAIL $1: $2" >&2
	failures=$((failures + 1))
}

while IFS=$'\t' read -r name expected message; do
	count=$((count + 1))
	bundle="$work/cases/$name.bundle"
	parent="$work/run/$name"
	mkdir -p "$parent"

	"$MLBOOT" bundle verify "$bundle" --pubkey "$work/signer.pub" >"$parent.verify.out" 2>"$parent.verify.err"
	status=$?
	[ "$status" -eq "$expected" ] || fail "$name" "verify exited $status, expected $expected: $(head -c 400 "$parent.verify.err")"
	grep -qF -- "$message" "$parent.verify.err" || fail "$name" "verify did not say '$message': $(head -c 400 "$parent.verify.err")"

	"$MLBOOT" bundle unpack "$bundle" -C "$parent/dest" --pubkey "$work/signer.pub" >"$parent.unpack.out" 2>"$parent.unpack.err"
	status=$?
	[ "$status" -eq "$expected" ] || fail "$name" "unpack exited $status, expected $expected: $(head -c 400 "$parent.unpack.err")"
	grep -qF -- "$message" "$parent.unpack.err" || fail "$name" "unpack did not say '$message'"

	# Nothing left behind: the destination was created by unpack and must be gone again.
	leftovers=$(find "$parent" -mindepth 1 | head -5)
	[ -z "$leftovers" ] || fail "$name" "unpack left files behind: $leftovers"
	[ -z "$(ls -A "$escape")" ] || fail "$name" "something was written to $escape"
	[ ! -e "$work/escaped" ] && [ ! -e "$work/run/escaped" ] || fail "$name" "a file escaped the destination"

	# Archive names are escaped before they reach a terminal.
	if LC_ALL=C grep -q $'\x1b' "$parent.verify.err" "$parent.unpack.err"; then
		fail "$name" "an escape character reached the error output"
	fi
	[ "$status" -ne 0 ] && [ -s "$parent.unpack.out" ] && fail "$name" "unpack printed a result on failure"
done <"$work/cases/cases.tsv"

# One bundle with several problems: all of them are reported, not only the first.
for problem in "sha256 mismatch" "not listed in SHA256SUMS" "is missing"; do
	grep -qF -- "$problem" "$work/run/several-problems.verify.err" ||
		fail several-problems "verify did not report '$problem'"
done
grep -qF 'bad\x1b[31mname' "$work/run/control-character.verify.err" ||
	fail control-character "the name was not shown escaped as \\x1b"

# An existing destination is left exactly as it was after a failed unpack.
mkdir -p "$work/existing/dest"
"$MLBOOT" bundle unpack "$work/cases/wrong-hash.bundle" -C "$work/existing/dest" --pubkey "$work/signer.pub" 2>/dev/null
[ -d "$work/existing/dest" ] && [ -z "$(ls -A "$work/existing/dest")" ] ||
	fail existing-destination "the existing destination was changed"

echo "$count hostile cases, $failures failures"
[ "$count" -ge 25 ] || mlb_die "expected at least 25 cases, got $count"
[ "$failures" -eq 0 ]
