#!/usr/bin/env bash
# test_ep.sh — expert parallelism across 2 MPI ranks (tests/mpi_ep.c):
#   bash tests/test_ep.sh build-mpi
# builds build-mpi/tests/mpi_ep with `make MPI=1` when missing, runs it under
# mpirun -np 2 and adds the ranks' "N passed, N failed" lines into one.
# Without mpirun (no OpenMPI) it says so and counts nothing.
build=${1:-build-mpi}
cd "$(dirname "$0")/.." || exit 1
if ! command -v mpirun >/dev/null; then
  echo "test_ep: mpirun not found (OpenMPI: scripts/deps.sh); skipped"
  echo "0 passed, 0 failed"; exit 0
fi
[ -x "$build/tests/mpi_ep" ] || make -s MPI=1 BUILD="$build" "$build/tests/mpi_ep" "$build/deepc" >/dev/null || {
  echo "  FAIL building $build/tests/mpi_ep"; echo "0 passed, 1 failed"; exit 1; }
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
export OMPI_MCA_btl=${OMPI_MCA_btl:-self,vader,tcp} OMPI_MCA_rmaps_base_oversubscribe=1
out=$(timeout 300 mpirun -np 2 --oversubscribe "$build/tests/mpi_ep" 2>&1); rc=$?
echo "$out" | grep -a -v -E '^[0-9]+ passed, [0-9]+ failed$'
pass=0; fail=0; ranks=0
while read -r line; do
  p=${line%% passed*}; f=${line#*passed, }; f=${f%% failed*}
  pass=$((pass + p)); fail=$((fail + f)); ranks=$((ranks + 1))
done < <(echo "$out" | grep -a -E '^[0-9]+ passed, [0-9]+ failed$')
[ "$ranks" -ne 2 ] && { echo "  FAIL mpi_ep: $ranks of 2 ranks reported (exit $rc)"; fail=$((fail + 1)); }
[ "$rc" -ne 0 ] && [ "$fail" -eq 0 ] && { echo "  FAIL mpi_ep exited $rc"; fail=$((fail + 1)); }

# deepc generate --ep 2 against one process, greedy, from a bf16 checkpoint
# and from a Q8_0 GGUF: the same token stream; each rank reads half the experts
tmp=$build/tmp/test_ep; rm -rf "$tmp"; mkdir -p "$tmp"
gen_case() { # name model
  local one ep
  one=$("$build/deepc" generate -m "$2" --prompt-ids 1,2,3,4 -n 24 --temp 0 -t 1 2>"$tmp/$1.1.err")
  ep=$(timeout 120 mpirun -np 2 --oversubscribe "$build/deepc" generate -m "$2" --prompt-ids 1,2,3,4 -n 24 \
       --temp 0 -t 1 --ep 2 2>"$tmp/$1.2.err")
  grep -h "rank\|expert parallel" "$tmp/$1.2.err" | sed 's/^/    /'
  local ranks; ranks=$(grep -c "routed experts \[" "$tmp/$1.2.err")
  if [ -n "$one" ] && [ "$one" = "$ep" ] && [ "$ranks" -eq 2 ]; then
    echo "  ok   generate_cli_$1 (24 greedy tokens identical: $one)"; pass=$((pass + 1))
  else
    echo "  FAIL generate_cli_$1: one process '$one', --ep 2 '$ep', $ranks rank reports"; cat "$tmp/$1.2.err"
    fail=$((fail + 1))
  fi
}
if "$build/deepc" init --preset small --dtype bf16 --out "$tmp/small" >/dev/null 2>&1 &&
   "$build/deepc" init --preset tiny --out "$tmp/tiny" >/dev/null 2>&1 &&
   "$build/deepc" convert -m "$tmp/tiny" --to gguf -o "$tmp/tiny.gguf" --type q8_0 >/dev/null 2>&1; then
  gen_case bf16 "$tmp/small"
  gen_case gguf "$tmp/tiny.gguf"
else
  echo "  FAIL generate_cli: cannot write the test models"; fail=$((fail + 1))
fi
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
