#!/usr/bin/env bash
# tests/server/test_server.sh — the tests of `deepc serve` with real clients, run by
# `make test` through tests/run.sh (which adds up the final line).
#
#   1. the npm packages of package.json (the official openai client and
#      playwright-core) into $BUILD/server-npm, once (npm ci, the lock file
#      pins every version and hash);
#   2. the test models into $BUILD/serve-test: a byte-level BPE of 512
#      tokens trained on the repository's documentation, a random tiny
#      DeepSeek-V3 model on it, and the same model with an R1 chat template;
#   3. every tests/server/*.test.js with node, bounded in time; each prints
#      "ok"/"FAIL" lines and "N passed, N failed".
# Ends with the total "N passed, N failed". Missing tools (node, npm,
# chromium) are a failure that says to run scripts/deps.sh.
set -u
cd "$(dirname "$0")/../.."
BUILD=${DEEPC_BUILD:-build}
export DEEPC_BUILD=$BUILD
NPM_DIR=$BUILD/server-npm
MODELS=$BUILD/serve-test
pass=0; fail=0

fail_setup() { echo "  FAIL server tests: $*"; echo "0 passed, 1 failed"; exit 1; }

for tool in node npm chromium; do
  command -v $tool >/dev/null || fail_setup "$tool is missing (run scripts/deps.sh)"
done
[ -x "$BUILD/deepc" ] || fail_setup "$BUILD/deepc is not built"

# 1. npm packages, once per lock file
if ! cmp -s tests/server/package-lock.json "$NPM_DIR/package-lock.json" || [ ! -d "$NPM_DIR/node_modules/openai" ]; then
  rm -rf "$NPM_DIR" && mkdir -p "$NPM_DIR"
  cp tests/server/package.json tests/server/package-lock.json "$NPM_DIR/"
  (cd "$NPM_DIR" && timeout 300 npm ci --no-audit --no-fund --loglevel=error) >"$BUILD/server-npm.log" 2>&1 ||
    fail_setup "npm ci failed (see $BUILD/server-npm.log)"
fi
export NODE_PATH=$PWD/$NPM_DIR/node_modules

# 2. test models (the tokenizer's special tokens are the chat template's)
SPECIAL='<｜begin▁of▁sentence｜>,<｜end▁of▁sentence｜>,<｜User｜>,<｜Assistant｜>,<think>,</think>'
if [ ! -f "$MODELS/tiny/model.safetensors" ] || [ "$BUILD/deepc" -nt "$MODELS/tiny/model.safetensors" ]; then
  rm -rf "$MODELS" && mkdir -p "$MODELS"
  # the tokenizer (and so the random model's greedy answers, which web.test.js
  # needs to loop for 2000 tokens) comes from this text: a fixed list, so that
  # adding a document (docs/distributed.md did) does not change the test models
  cat README.md docs/gguf.md docs/inference.md docs/post-training.md docs/serve.md docs/tokenizer.md \
      docs/training.md > "$MODELS/corpus.txt"
  "$BUILD/deepc" tokenizer-train --data "$MODELS/corpus.txt" --vocab-size 512 --special "$SPECIAL" \
      --out "$MODELS/tok.json" >/dev/null 2>&1 || fail_setup "tokenizer-train failed"
  "$BUILD/deepc" init --preset tiny --seed 1 --tokenizer "$MODELS/tok.json" --out "$MODELS/tiny" >/dev/null 2>&1 ||
    fail_setup "deepc init failed"
  # for the web chat: answers long enough to watch and stop (positions up to 16384)
  mkdir -p "$MODELS/tiny-long"
  for f in model.safetensors tokenizer.json; do ln -s "../tiny/$f" "$MODELS/tiny-long/$f"; done
  sed 's/"max_position_embeddings":[^,]*/"max_position_embeddings":\t16384/' "$MODELS/tiny/config.json" > "$MODELS/tiny-long/config.json"
  mkdir -p "$MODELS/tiny-r1"
  for f in config.json model.safetensors tokenizer.json; do ln -s "../tiny/$f" "$MODELS/tiny-r1/$f"; done
  # the generation prompt of DeepSeek-R1's later template opens the reasoning
  cat > "$MODELS/tiny-r1/tokenizer_config.json" <<'EOF'
{"bos_token": "<｜begin▁of▁sentence｜>", "eos_token": "<｜end▁of▁sentence｜>",
 "chat_template": "{% if add_generation_prompt %}{{'<｜Assistant｜><think>\\n'}}{% endif %}"}
EOF
fi

# 3. the tests
for t in tests/server/*.test.js; do
  echo "-- $(basename "$t")"
  out=$(timeout 170 node "$t" 2>&1); rc=$?
  echo "$out" | grep -v -E '^[0-9]+ passed, [0-9]+ failed$'
  line=$(echo "$out" | grep -E '^[0-9]+ passed, [0-9]+ failed$' | tail -n 1)
  if [ -n "$line" ]; then
    p=${line%% passed*}; f=${line#*passed, }; f=${f%% failed*}
    pass=$((pass + p)); fail=$((fail + f))
    [ "$rc" -ne 0 ] && [ "$f" -eq 0 ] && { echo "  FAIL $(basename "$t") exited $rc"; fail=$((fail + 1)); }
  else
    echo "  FAIL $(basename "$t") exited $rc without a result line (timeout 170 s?)"
    fail=$((fail + 1))
  fi
done
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
