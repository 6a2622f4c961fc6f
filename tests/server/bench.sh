#!/usr/bin/env bash
# tests/server/bench.sh — `make bench-serve`: serving figures of deepc serve
# beside llama.cpp's llama-server on the same GGUF, same threads and the same
# number of parallel sequences, measured in the same run (bench.js: aggregate
# tokens/s and time to first token at 1, 2, 4, 8 concurrent clients), and
# the single-stream decode bound (weights bytes per token against the
# machine's read bandwidth, from `deepc bench`). Prints; never fails on speed.
#   GGUF=/path/model.gguf [LLAMA_SERVER=/work/llama/build/bin/llama-server]
#   [THREADS=2] [PARALLEL=8] [CONC=1,2,4,8] [REQUESTS=2] [MAX_TOKENS=32] [REPS=3] bash tests/server/bench.sh
set -u
cd "$(dirname "$0")/../.."
BUILD=${DEEPC_BUILD:-build}
GGUF=${GGUF:?set GGUF to a .gguf file (e.g. a mini q4_0)}
LLAMA_SERVER=${LLAMA_SERVER:-/work/llama/build/bin/llama-server}
THREADS=${THREADS:-2}; PARALLEL=${PARALLEL:-8}; CONC=${CONC:-1,2,4,8}
REQUESTS=${REQUESTS:-2}; MAX_TOKENS=${MAX_TOKENS:-32}; CTX=${CTX:-1024}
PORT_D=${PORT_D:-18431}; PORT_L=${PORT_L:-18432}
NAME=$(basename "$GGUF" .gguf)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done; wait 2>/dev/null; }
trap cleanup EXIT

wait_health() { for _ in $(seq 600); do curl -sf "http://127.0.0.1:$1/health" >/dev/null && return 0; sleep 0.5; done; return 1; }

echo "== machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores; load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "== model: $GGUF ($(du -h "$GGUF" | cut -f1)); $THREADS threads, $PARALLEL parallel sequences, ctx $CTX each"
"$BUILD/deepc" bench -m "$GGUF" --threads "$THREADS" --prefill 64 --decode 64 2>&1 | sed 's/^/   deepc bench: /'

# Both servers run at once and take turns (bench.js), so background load that
# comes and goes hits them alike. deepc's OpenMP threads spin a while between
# parallel regions and then sleep (as llama.cpp's threadpool does), so the
# idle one does not steal the cores from the other.
OMP_WAIT_POLICY=active GOMP_SPINCOUNT=${GOMP_SPINCOUNT:-200000} "$BUILD/deepc" serve -m "$GGUF" --port "$PORT_D" \
    -t "$THREADS" --parallel "$PARALLEL" --ctx "$CTX" --cache 0 --alias model 2>"$BUILD/bench-serve-deepc.log" &
pids+=($!)
wait_health "$PORT_D" || { echo "deepc serve did not come up:"; cat "$BUILD/bench-serve-deepc.log"; exit 1; }
urls="http://127.0.0.1:$PORT_D"; labels="deepc serve"
if [ -x "$LLAMA_SERVER" ]; then
  "$LLAMA_SERVER" -m "$GGUF" --host 127.0.0.1 --port "$PORT_L" -t "$THREADS" -np "$PARALLEL" \
      -c $((CTX * PARALLEL)) --no-webui >"$BUILD/bench-serve-llama.log" 2>&1 &
  pids+=($!)
  wait_health "$PORT_L" || { echo "llama-server did not come up:"; tail -20 "$BUILD/bench-serve-llama.log"; exit 1; }
  urls="$urls,http://127.0.0.1:$PORT_L"; labels="$labels,llama-server"
  echo "== llama-server: $("$LLAMA_SERVER" --version 2>&1 | grep -m1 version)"
else
  echo "(no llama-server at $LLAMA_SERVER: no peer figures)"
fi
node tests/server/bench.js --url "$urls" --label "$labels" --conc "$CONC" --requests "$REQUESTS" \
    --max-tokens "$MAX_TOKENS" --reps "${REPS:-3}"
echo "== load after: $(cut -d' ' -f1-3 /proc/loadavg)"
