#!/usr/bin/env bash
# Runs every test binary given, prints each one's output, and ends with the
# total line "N passed, N failed". A binary that crashes or prints no total
# counts as one failed test.
build=$1; shift
pass=0; fail=0
# libgomp's default wait policy is several times slower here (src/base/threads.c)
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
mkdir -p "$build/tmp"
for t in "$@"; do
  echo "== $(basename "$t")"
  out=$("$t" 2>&1); rc=$?
  echo "$out" | grep -a -v -E '^[0-9]+ passed, [0-9]+ failed$'
  line=$(echo "$out" | grep -a -E '^[0-9]+ passed, [0-9]+ failed$' | tail -n 1)
  if [ -n "$line" ]; then
    p=${line%% passed*}; f=${line#*passed, }; f=${f%% failed*}
    pass=$((pass + p)); fail=$((fail + f))
    [ "$rc" -ne 0 ] && [ "$f" -eq 0 ] && { echo "  FAIL $(basename "$t") exited $rc"; fail=$((fail + 1)); }
  else
    echo "  FAIL $(basename "$t") exited $rc without a result line"
    fail=$((fail + 1))
  fi
done
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
