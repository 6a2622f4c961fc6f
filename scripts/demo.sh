#!/usr/bin/env bash
# deepc's main job on built-in defaults (`make demo` runs it after installing
# and building): the DeepSeek-R1 pipeline in miniature, on 2 cores.
#
#   1. data: generated arithmetic with worked steps (deepc task), nothing downloaded
#   2. pretrain a tiny DeepSeek-architecture model (MLA, DeepSeekMoE with
#      aux-loss-free balancing, MTP) on it as plain text
#   3. SFT it into the R1 chat format (<think> reasoning </think> <answer>..</answer>)
#   4. GRPO with rule rewards: the answer checked exactly, the format checked
#   5. held-out accuracy after each stage, the reward curve, one question answered
#
# DEMO_TASK, DEMO_PRETRAIN_STEPS, DEMO_SFT_EPOCHS, DEMO_GRPO_STEPS, DEMO_GRPO_LR,
# DEMO_SEQ (longest prompt + answer) and DEMO_DIR override the defaults. The pretraining demo on tiny Shakespeare is `make demo-shakespeare`.
set -euo pipefail
cd "$(dirname "$0")/.."
B=build/deepc
D=${DEMO_DIR:-build/demo}
TASK=${DEMO_TASK:-arith:digits=1,ops=2}
SEQ=${DEMO_SEQ:-64}
PRE=${DEMO_PRETRAIN_STEPS:-1000}
EPOCHS=${DEMO_SFT_EPOCHS:-2}
RL=${DEMO_GRPO_STEPS:-60}
RL_LR=${DEMO_GRPO_LR:-3e-5}
EVAL="--n 200 --max-new 40"
rm -rf "$D" && mkdir -p "$D"
t0=$(date +%s)

accuracy() { # stage model: held-out greedy accuracy as one line
  $B eval -m "$2" --task "$TASK" $EVAL --samples 4 --temp 1 --top-p 1 2> /dev/null | /usr/bin/python3 -c '
import json, sys
r = json.loads(sys.stdin.read())
print("%-16s held-out pass@1 %.3f  format %.3f  (4 samples at temperature 1: maj@4 %.3f, pass@4 %.3f)"
      % (sys.argv[1], r["pass@1"], r["format"], r["maj@4"], r["pass@4"]))' "$1" | tee -a "$D/accuracy.txt"
}

echo "== 1. data: $TASK, with worked steps"
$B task --task "$TASK" --n 20000 --as text --seed 11 > "$D/corpus.txt"
$B task --task "$TASK" --n 2000 --seed 12 > "$D/sft.jsonl"
head -n 6 "$D/corpus.txt" | sed 's/^/   | /'
$B tokenizer-train --data "$D/corpus.txt" --vocab-size 512 --out "$D/tokenizer.json" \
  --special "<｜begin▁of▁sentence｜>,<｜end▁of▁sentence｜>,<｜User｜>,<｜Assistant｜>,<think>,</think>,<answer>,</answer>" > /dev/null 2>&1
$B prepare --tokenizer "$D/tokenizer.json" --data "$D/corpus.txt" --out "$D/data" --val-frac 0.02 2>&1 | tail -n 1

echo
echo "== 2. pretraining the tiny preset (MLA + MoE + MTP) on the worked problems: $PRE steps of 16 x $SEQ tokens"
$B info --preset tiny | sed -n '2,4p'
$B train --preset tiny --data "$D/data" --out "$D/pre" --steps "$PRE" --batch 16 --seq "$SEQ" --lr 3e-3 --warmup 30 \
  --log-every 100 --eval-every 250 --save-every 0
PRE_CK="$D/pre/$(cat "$D/pre/latest")"
accuracy "after pretraining" "$PRE_CK"

echo
echo "== 3. SFT into the R1 chat format: 2000 conversations, $EPOCHS epochs, loss on the answers only"
$B sft -m "$PRE_CK" --data "$D/sft.jsonl" --out "$D/sft" --batch 16 --seq "$SEQ" --lr 1e-3 --min-lr 1e-4 --warmup 10 \
  --epochs "$EPOCHS" --log-every 50 --eval-every 100 --save-every 0
SFT_CK="$D/sft/$(cat "$D/sft/latest")"
accuracy "after SFT" "$SFT_CK"

echo
echo "== 4. GRPO: $RL steps of 16 prompts x 8 samples at temperature 1, reward = exact answer + 0.1 x format"
$B grpo -m "$SFT_CK" --task "$TASK" --out "$D/grpo" --steps "$RL" --prompts 16 -G 8 --max-new 40 --seq "$SEQ" \
  --lr "$RL_LR" --eval-every 20 --eval-n 200 --save-every 0 --log-every 5
RL_CK="$D/grpo/$(cat "$D/grpo/latest")"
accuracy "after GRPO" "$RL_CK"
$B plot "$D/grpo" > /dev/null && echo "the reward curve: $D/grpo/reward.png"
/usr/bin/python3 - "$D/grpo/metrics.jsonl" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if '"reward"' in l]
print("   step  reward  accuracy  format   KL      entropy  length  dropped  rollout tok/s  train tok/s")
for r in rows:
    print("  %5d  %6.3f  %8.3f  %6.3f  %7.4f  %7.3f  %6.1f  %7.2f  %13.0f  %11.0f" % (r["step"], r["reward"],
          r["accuracy"], r["format"], r["kl"], r["entropy"], r["response_len"], r["dropped"],
          r["rollout_tokens_per_s"], r["train_tokens_per_s"]))
PY

echo
echo "== 5. held-out accuracy by stage"
cat "$D/accuracy.txt"
echo
echo "== one question, the thinking shown (greedy)"
$B eval -m "$RL_CK" --task "$TASK" --n 1 --max-new 40 --show 1 > /dev/null
echo "(whole demo: $(( $(date +%s) - t0 )) s)"
