#!/usr/bin/env bash
# The pretraining demo (`make demo-shakespeare` runs it after installing
# and building): train a `small` DeepSeek-architecture model — MLA, DeepSeekMoE
# with shared and routed experts and aux-loss-free balancing, and a
# multi-token-prediction module — from scratch on 2 cores for a few minutes,
# show the falling loss, then generate text from it.
#
# Corpus: tiny Shakespeare when ../shared/data is present; otherwise
# arithmetic with worked steps that this script generates (nothing is
# downloaded). DEMO_STEPS overrides the number of training steps.
set -euo pipefail
cd "$(dirname "$0")/.."
B=build/deepc
D=build/demo-shakespeare
STEPS=${DEMO_STEPS:-500}
rm -rf "$D" && mkdir -p "$D"

SHAKESPEARE=../shared/data/corpus/tinyshakespeare.txt
if [ -f "$SHAKESPEARE" ]; then
  CORPUS=$SHAKESPEARE; PROMPT="ROMEO:"; echo "== corpus: tiny Shakespeare ($SHAKESPEARE)"
else
  CORPUS=$D/arithmetic.txt; PROMPT="Q: 27 + 48 = ?"
  echo "== corpus: generated arithmetic with worked steps ($CORPUS)"
  awk 'BEGIN { srand(7); for (i = 0; i < 40000; i++) {
         a = int(rand() * 90) + 10; b = int(rand() * 90) + 10; t = int(b / 10) * 10; o = b % 10;
         printf "Q: %d + %d = ?\nA: %d + %d = %d + %d = %d. The answer is %d.\n\n", a, b, a, t, a + t, o, a + b, a + b } }' > "$CORPUS"
fi

echo "== byte-level BPE tokenizer, 4096 tokens, trained on the corpus"
$B tokenizer-train --data "$CORPUS" --vocab-size 4096 --out "$D/tokenizer.json"
$B prepare --tokenizer "$D/tokenizer.json" --data "$CORPUS" --out "$D/data" --val-frac 0.05
echo
echo "== training the small preset: $STEPS steps of 8 x 128 tokens"
$B info --preset small | sed -n '2,7p'
$B train --preset small --data "$D/data" --out "$D/run" --steps "$STEPS" --batch 8 --seq 128 \
  --lr 3e-3 --min-lr 3e-4 --warmup 30 --log-every 50 --eval-every 100 --save-every 250 
echo
/usr/bin/python3 - "$D/run/metrics.jsonl" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if '"loss"' in l]
print("   step   loss    MTP loss  val loss  tokens/s")
for r in rows:
    print("  %5d  %7.4f  %7.4f  %8s  %7.0f" % (r["step"], r["loss"], r["mtp_loss"],
          "%.4f" % r["val_loss"] if "val_loss" in r else "", r["tokens_per_s"]))
print("first loss %.4f -> last loss %.4f" % (rows[0]["loss"], rows[-1]["loss"]))
PY
$B plot "$D/run" --out "$D/loss.png"
CKPT="$D/run/$(cat "$D/run/latest")"
echo
echo "== generating from $CKPT (greedy, then sampled)"
$B generate -m "$CKPT" -p "$PROMPT" --raw -n 80 --temp 0
echo
$B generate -m "$CKPT" -p "$PROMPT" --raw -n 80 --temp 0.8 --seed 1
echo
