#!/bin/sh
# make check: the project's C self-tests, the conformance suite on this
# machine as a smoke test (every probe reaches an outcome; the host's own
# fails and differs are reported, not asserted), and the host-side tests.
# Prints one closing line for CI.
# usage: tools/check.sh BUILD PYTHON [c|py|quick|all]
#   quick: the C tests, the harness self-tests and the quick pytest tier (no system tests)
set -u
build=$1; py=$2; only=${3:-all}
mkdir -p "$build/check" || exit 1
pass=0; fail=0; failed=""
part() {
	name=$1; shift
	echo "=== $name"
	if "$@"; then pass=$((pass + 1)); else fail=$((fail + 1)); failed="$failed $name"; fi
}
if [ "$only" != py ]; then
	for t in "$build"/tests/*; do
		[ -f "$t" ] && [ -x "$t" ] || continue
		part "c/$(basename "$t")" "$t"
	done
	# The host's own answers are reported, not asserted: this machine is not a system with known answers.
	part conformance-smoke "$py" tools/conform_smoke.py "$build/pagelab-conform" "$build/check/conformance.json" -j 2
fi
if [ "$only" = quick ] && [ -d tests/py ]; then
	part pytest-quick "$py" -m pytest -q -p no:cacheprovider -m "not system" tests/py
elif [ "$only" != c ] && [ -d tests/py ]; then
	part pytest "$py" -m pytest -q -p no:cacheprovider tests/py
fi
[ -n "$failed" ] && echo "failed parts:$failed"
echo "check: $pass passed, $fail failed"
[ "$fail" = 0 ]
