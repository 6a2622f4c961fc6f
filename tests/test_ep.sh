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
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
