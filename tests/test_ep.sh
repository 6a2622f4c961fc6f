#!/usr/bin/env bash
# test_ep.sh — expert parallelism across 2 MPI ranks:
#   bash tests/test_ep.sh build-mpi
# runs build-mpi/tests/mpi_ep (tests/mpi_ep.c: training equal to one process,
# generation identical, bad layouts) under mpirun -np 2 and adds the ranks'
# "N passed, N failed" lines, then `deepc generate --ep 2` and `deepc serve
# --ep 2` against one process. build-mpi/tests/mpi_ep and deepc are (re)built by
# `make MPI=1`. A Makefile may instead give the binaries: $DEEPC_MPI_EP
# (mpi_ep) and $DEEPC_MPI_BIN (deepc), both linked with MPI. Without mpirun
# (no OpenMPI), or with DC_NO_MPI_TEST set (make asan), it says so and counts
# nothing.
build=${1:-build-mpi}
cd "$(dirname "$0")/.." || exit 1
if [ -n "${DC_NO_MPI_TEST:-}" ] || ! command -v mpirun >/dev/null; then
  echo "  skipped: no mpirun (OpenMPI: scripts/deps.sh), or under make asan (DC_NO_MPI_TEST)"
  echo "0 passed, 0 failed"; exit 0
fi
ep_bin=${DEEPC_MPI_EP:-$build/tests/mpi_ep}
deepc=${DEEPC_MPI_BIN:-$build/deepc}
if [ -z "${DEEPC_MPI_EP:-}" ]; then  # make: rebuilt when stale
  make -s MPI=1 BUILD="$build" "$ep_bin" "$deepc" >/dev/null || {
    echo "  FAIL building $ep_bin"; echo "0 passed, 1 failed"; exit 1; }
fi
if [[ "${ASAN_OPTIONS:-}" == *detect_leaks=1* ]]; then
  # as tests/test_dist.sh: OpenMPI's plugins keep memory LeakSanitizer reports without a name to
  # suppress; the one-rank tests leak-check deepc's own code (the EP layer with one rank included)
  echo "  (under ASan: leak checking is off for the MPI runs)"
  export ASAN_OPTIONS=${ASAN_OPTIONS//detect_leaks=1/detect_leaks=0}
fi
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
export OMPI_MCA_btl=${OMPI_MCA_btl:-self,vader,tcp} OMPI_MCA_rmaps_base_oversubscribe=1
out=$(timeout 300 mpirun -np 2 --oversubscribe "$ep_bin" 2>&1); rc=$?
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
tmp=${DEEPC_BUILD:-$build}/tmp/test_ep; rm -rf "$tmp"; mkdir -p "$tmp"
gen_case() { # name model [options]
  local one ep name=$1 model=$2; shift 2
  one=$("$deepc" generate -m "$model" --prompt-ids 1,2,3,4 -n 24 --temp 0 -t 1 "$@" 2>"$tmp/$name.1.err")
  ep=$(timeout 120 mpirun -np 2 --oversubscribe "$deepc" generate -m "$model" --prompt-ids 1,2,3,4 -n 24 \
       --temp 0 -t 1 --ep 2 "$@" 2>"$tmp/$name.2.err")
  set -- "$name"
  grep -h "rank\|expert parallel" "$tmp/$1.2.err" | sed 's/^/    /'
  local ranks; ranks=$(grep -c "routed experts \[" "$tmp/$1.2.err")
  if [ -n "$one" ] && [ "$one" = "$ep" ] && [ "$ranks" -eq 2 ]; then
    echo "  ok   generate_cli_$1 (greedy tokens identical: $(echo $one | tail -c 60))"; pass=$((pass + 1))
  else
    echo "  FAIL generate_cli_$1: one process '$one', --ep 2 '$ep', $ranks rank reports"; cat "$tmp/$1.2.err"
    fail=$((fail + 1))
  fi
}
if "$deepc" init --preset small --dtype bf16 --out "$tmp/small" >/dev/null 2>&1 &&
   "$deepc" init --preset tiny --out "$tmp/tiny" >/dev/null 2>&1 &&
   "$deepc" convert -m "$tmp/tiny" --to gguf -o "$tmp/tiny.gguf" --type q8_0 >/dev/null 2>&1; then
  gen_case bf16 "$tmp/small"
  gen_case gguf "$tmp/tiny.gguf"
  gen_case mtp "$tmp/tiny" --mtp                 # speculative decoding: the MTP block's MoE too
  gen_case batched "$tmp/tiny" --parallel 3      # the batched engine
else
  echo "  FAIL generate_cli: cannot write the test models"; fail=$((fail + 1))
fi

# deepc serve --ep 2: rank 0 serves, rank 1 owns half the experts; a greedy
# completion equals one process's
serve_text() { # port-file log -> the text of a greedy completion
  local port="" i
  for i in $(seq 1 100); do
    port=$(sed -n 's|.*listening on http://127.0.0.1:\([0-9]*\)/.*|\1|p' "$1" | head -n 1)
    [ -n "$port" ] && grep -q "ready in" "$1" && break
    sleep 0.2
  done
  curl -s "http://127.0.0.1:$port/v1/completions" -H 'Content-Type: application/json' \
    -d '{"model":"chat","prompt":"hello","max_tokens":12,"temperature":0}' |
    python3 -c 'import json, sys; print(repr(json.load(sys.stdin)["choices"][0]["text"]))' 2>/dev/null
}
SPECIAL='<｜begin▁of▁sentence｜>,<｜end▁of▁sentence｜>,<｜User｜>,<｜Assistant｜>,<think>,</think>'
if command -v curl >/dev/null && command -v python3 >/dev/null && cat README.md docs/*.md > "$tmp/corpus.txt" &&
   "$deepc" tokenizer-train --data "$tmp/corpus.txt" --vocab-size 512 --special "$SPECIAL" \
     --out "$tmp/tok.json" >/dev/null 2>&1 &&
   "$deepc" init --preset tiny --seed 1 --tokenizer "$tmp/tok.json" --out "$tmp/chat" >/dev/null 2>&1; then
  "$deepc" serve -m "$tmp/chat" --port 0 -t 1 >"$tmp/s1.log" 2>&1 & one_pid=$!
  timeout 120 mpirun -np 2 --oversubscribe "$deepc" serve -m "$tmp/chat" --port 0 -t 1 --ep 2 \
    >"$tmp/s2.log" 2>&1 & ep_pid=$!
  a=$(serve_text "$tmp/s1.log"); b=$(serve_text "$tmp/s2.log")
  kill -TERM "$one_pid" "$ep_pid" 2>/dev/null; wait "$one_pid" "$ep_pid" 2>/dev/null
  if [ -n "$a" ] && [ "$a" = "$b" ] && grep -q "rank 1 of 2: routed experts" "$tmp/s2.log"; then
    echo "  ok   serve_cli (a greedy completion identical through --ep 2: $a)"; pass=$((pass + 1))
  else
    echo "  FAIL serve_cli: one process '$a', --ep 2 '$b'"; cat "$tmp/s2.log"; fail=$((fail + 1))
  fi
else
  echo "  (serve_cli skipped: no curl or python3, or the tokenizer could not be trained)"
fi
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
