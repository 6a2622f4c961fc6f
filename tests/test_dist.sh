#!/usr/bin/env bash
# test_dist.sh — deepc across processes (src/dist/, docs/distributed.md):
# `mpirun -np 2` on this machine against one process, on a tiny model the
# test makes. Proofs:
#   dp_bitexact      2 data-parallel ranks give the losses, gradient norms and
#                    checkpoint (parameters, AdamW m and v) of one process with
#                    the same global batch, bit for bit, over 20 steps
#   zero1            the same with ZeRO-1 (--zero), and the optimiser state per
#                    rank falls
#   resume_2_to_1    a run checkpointed on 2 ranks resumes on 1 (and 1 -> 2),
#                    ending with the uninterrupted run's bits
#   zero1_bf16_moments  ZeRO-1 with --bf16-moments, stopped and resumed on 2
#                    ranks: one process's bits; the moments take half the bytes;
#                    and with --ep 2 (ep_bf16_moments)
#   sft_dp           sft on 2 ranks = 1 process
#   grpo_dp          GRPO (mu 2, beta > 0) with rollouts spread over 2 ranks = 1 process
#   distill_dp       distill: teacher sampling spread over 2 ranks, then the
#                    student's fine-tuning: the data and checkpoint of 1 process
#   killed_rank      kill -9 of one rank ends the job within 30 s, with
#                    mpirun's message naming it; --resume finishes the run
#                    from the last checkpoint with the uninterrupted run's bits
#   silent_rank      a rank that stops answering (SIGSTOP) ends the job after
#                    --rank-timeout with deepc's message
#   bad_layout       --ep that does not divide the ranks, --accum not a
#                    multiple of the replicas: clear errors
# The global batches have 4 micro-batches: with 2, a wrong summation order
# would pass unseen (a + b = b + a; (a + b) + c != (a + c) + b).
# Needs $DEEPC_MPI_BIN (the Makefile's $(BUILD)/mpi/deepc) and mpirun; says
# why and counts nothing when they are missing. Ends with "N passed, N failed".
set -u
pass=0; fail=0
ok() { echo "  ok   $1"; pass=$((pass + 1)); }
bad() { echo "  FAIL $1: $2"; fail=$((fail + 1)); }
finish() { echo "$pass passed, $fail failed"; [ "$fail" -eq 0 ]; exit $?; }

if [ -n "${DC_NO_MPI_TEST:-}" ]; then
  echo "  skipped: DC_NO_MPI_TEST is set"
  finish
fi
if [[ "${ASAN_OPTIONS:-}" == *detect_leaks=1* ]]; then
  echo "  (under ASan: leak checking is off for the MPI runs: OpenMPI keeps memory in the plugins it"
  echo "  loads and unloads, which LeakSanitizer reports without a name to suppress; deepc's own code is"
  echo "  leak-checked by the one-rank tests, test_dist_dp and the trainers' tests)"
  export ASAN_OPTIONS=${ASAN_OPTIONS//detect_leaks=1/detect_leaks=0}
fi
BIN=${DEEPC_MPI_BIN:-}
if [ -z "$BIN" ] || [ ! -x "$BIN" ] || ! command -v mpirun > /dev/null; then
  echo "  skipped: OpenMPI is not installed (mpicc, mpirun: scripts/deps.sh installs them)"
  finish
fi
BUILD=${DEEPC_BUILD:-build}
W=$(mktemp -d "$PWD/$BUILD/tmp/dist.XXXXXX") || { bad setup "mktemp"; finish; }
trap 'rm -rf "$W"' EXIT
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_WAIT_POLICY=passive
# shared memory between the ranks without the kernel's cross-memory attach
# (refused in some containers)
export OMPI_MCA_btl_vader_single_copy_mechanism=none
MPI="mpirun -np 2 --oversubscribe"

# the fixture: sums as a corpus, a BPE tokenizer, prepared shards
python3 - "$W/corpus.txt" << 'EOF'
import random, sys
r = random.Random(3)
with open(sys.argv[1], "w") as f:
    for i in range(3000):
        a, b = r.randint(10, 99), r.randint(10, 99)
        f.write(f"{a} + {b} = {a + b}\n")
EOF
"$BIN" tokenizer-train --data "$W/corpus.txt" --vocab-size 320 --out "$W/tok.json" > /dev/null 2>&1 &&
  "$BIN" prepare --tokenizer "$W/tok.json" --data "$W/corpus.txt" --out "$W/data" --val-frac 0.1 > /dev/null 2>&1 ||
  { bad setup "tokenizer-train / prepare"; finish; }

# metrics lines without the timings and the rank count
norm() { sed -E 's/, "(tokens_per_s|rollout_tokens_per_s|train_tokens_per_s|comm_s|ranks)": [^,}]*//g' "$1"; }
# same_ckpt A B: every file of two checkpoints identical (trainer.json: its settings aside)
same_ckpt() {
  for f in model.safetensors optim-m.safetensors optim-v.safetensors config.json; do
    cmp -s "$1/$f" "$2/$f" || { echo "$f differs"; return 1; }
  done
}
TRAIN="train --preset tiny --data $W/data --batch 2 --seq 24 --accum 4 --steps 20 --log-every 1 --eval-every 5
       --save-every 100 -t 1"

# ---------------------------------------------------------------- dp_bitexact
"$BIN" $TRAIN --out "$W/one" > "$W/one.txt" 2>&1 || bad dp_bitexact "1 process: $(tail -3 "$W/one.txt")"
$MPI "$BIN" $TRAIN --out "$W/two" > "$W/two.txt" 2>&1 || bad dp_bitexact "2 ranks: $(tail -5 "$W/two.txt")"
if [ -f "$W/two/step-0000020/model.safetensors" ]; then
  d=$(diff <(norm "$W/one/metrics.jsonl") <(norm "$W/two/metrics.jsonl") | head -4)
  lines=$(grep -c '"loss"' "$W/two/metrics.jsonl")
  if [ -n "$d" ]; then bad dp_bitexact "metrics differ: $d"
  elif [ "$lines" -ne 20 ]; then bad dp_bitexact "$lines metrics lines, not 20"
  elif ! grep -q '"val_loss"' "$W/two/metrics.jsonl"; then bad dp_bitexact "no val_loss logged"
  elif ! grep -q '"ranks": 2' "$W/two/metrics.jsonl"; then bad dp_bitexact "the 2-rank run did not log its ranks"
  elif ! m=$(same_ckpt "$W/one/step-0000020" "$W/two/step-0000020"); then bad dp_bitexact "checkpoint: $m"
  elif ! grep -q "2 ranks = 2 data-parallel replicas" "$W/two.txt"; then bad dp_bitexact "no layout line"
  elif [ "$(grep -c 'model 0.23M' "$W/two.txt")" -ne 1 ]; then bad dp_bitexact "rank 1 printed too"
  else ok "dp_bitexact (20 steps: losses, grad norms, val loss, parameters, m, v)"; fi
else bad dp_bitexact "no checkpoint two/step-0000020/model.safetensors"
fi

# ---------------------------------------------------------------- ep_train
# expert parallel through the CLI: the routed experts split over the 2 ranks
# (each holds half), the checkpoint gathered whole: the one process's bits
$MPI "$BIN" $TRAIN --ep 2 --out "$W/ep" > "$W/ep.txt" 2>&1 || bad ep_train "$(tail -5 "$W/ep.txt")"
if [ -f "$W/ep/step-0000020/model.safetensors" ]; then
  d=$(diff <(norm "$W/one/metrics.jsonl") <(norm "$W/ep/metrics.jsonl") | head -4)
  if [ -n "$d" ]; then bad ep_train "metrics differ: $d"
  elif ! m=$(same_ckpt "$W/one/step-0000020" "$W/ep/step-0000020"); then bad ep_train "checkpoint: $m"
  else ok "ep_train (--ep 2: losses and the gathered checkpoint of 1 process, bit for bit)"; fi
else bad ep_train "no checkpoint ep/step-0000020/model.safetensors"
fi

# ---------------------------------------------------------------- zero1
$MPI "$BIN" $TRAIN --zero --out "$W/zero" > "$W/zero.txt" 2>&1 || bad zero1 "$(tail -5 "$W/zero.txt")"
if [ -f "$W/zero/step-0000020/model.safetensors" ]; then
  d=$(diff <(norm "$W/one/metrics.jsonl") <(norm "$W/zero/metrics.jsonl") | head -4)
  mem=$(grep -o 'per rank: [0-9.]* MB at most (ZeRO-1 shards over 2 replicas; [0-9.]* MB' "$W/zero.txt")
  shard=$(echo "$mem" | awk '{print $3}'); whole=$(echo "$mem" | awk '{print $12}')
  if [ -n "$d" ]; then bad zero1 "metrics differ: $d"
  elif ! m=$(same_ckpt "$W/one/step-0000020" "$W/zero/step-0000020"); then bad zero1 "checkpoint: $m"
  elif [ -z "$mem" ] || ! awk -v s="$shard" -v w="$whole" 'BEGIN { exit !(s > 0 && s <= 0.6 * w) }'; then
    bad zero1 "optimiser state per rank not reduced: '$mem'"
  else ok "zero1 (the same bits; optimiser state per rank $shard MB of $whole MB)"; fi
else bad zero1 "no checkpoint zero/step-0000020/model.safetensors"
fi

# ---------------------------------------------------------------- resume_2_to_1 (and 1 -> 2)
$MPI "$BIN" $TRAIN --zero --stop-after 10 --out "$W/r21" > "$W/r21.txt" 2>&1 &&
  "$BIN" train --data "$W/data" --out "$W/r21" --resume --log-every 1 --eval-every 5 -t 1 >> "$W/r21.txt" 2>&1
"$BIN" $TRAIN --stop-after 10 --out "$W/r12" > "$W/r12.txt" 2>&1 &&
  $MPI "$BIN" train --data "$W/data" --out "$W/r12" --resume --log-every 1 --eval-every 5 -t 1 >> "$W/r12.txt" 2>&1
if ! m=$(same_ckpt "$W/one/step-0000020" "$W/r21/step-0000020"); then bad resume_2_to_1 "2 -> 1: $m; $(tail -3 "$W/r21.txt")"
elif ! m=$(same_ckpt "$W/one/step-0000020" "$W/r12/step-0000020"); then bad resume_2_to_1 "1 -> 2: $m; $(tail -3 "$W/r12.txt")"
elif [ -n "$(diff <(norm "$W/one/metrics.jsonl") <(norm "$W/r21/metrics.jsonl"))" ]; then bad resume_2_to_1 "metrics differ"
else ok "resume_2_to_1 (ZeRO-1 on 2 ranks -> 1 process, and 1 -> 2: the uninterrupted run's bits)"; fi

# ---------------------------------------------------------------- zero1_bf16_moments
# ZeRO-1 with 2-byte moments: shards widened for the checkpoint, stopped at
# 10 and resumed on 2 ranks (read back into bf16 shards): one process's bits
"$BIN" $TRAIN --bf16-moments --out "$W/m1" > "$W/m1.txt" 2>&1 || bad zero1_bf16_moments "$(tail -3 "$W/m1.txt")"
$MPI "$BIN" $TRAIN --bf16-moments --zero --stop-after 10 --out "$W/m2" > "$W/m2.txt" 2>&1 &&
  $MPI "$BIN" train --data "$W/data" --out "$W/m2" --resume --log-every 1 --eval-every 5 -t 1 >> "$W/m2.txt" 2>&1
mem=$(grep -o 'per rank: [0-9.]* MB at most (ZeRO-1 shards over 2 replicas; [0-9.]* MB' "$W/m2.txt" | head -1)
whole=$(echo "$mem" | awk '{print $12}')
zmem=$(grep -o 'per rank: [0-9.]* MB at most (ZeRO-1 shards over 2 replicas; [0-9.]* MB' "$W/zero.txt" | awk '{print $12}')
if ! m=$(same_ckpt "$W/m1/step-0000020" "$W/m2/step-0000020"); then bad zero1_bf16_moments "$m; $(tail -3 "$W/m2.txt")"
elif [ -n "$(diff <(norm "$W/m1/metrics.jsonl") <(norm "$W/m2/metrics.jsonl"))" ]; then bad zero1_bf16_moments "metrics differ"
elif ! awk -v a="$whole" -v b="$zmem" 'BEGIN { exit !(a > 0 && a * 2 > b * 0.99 && a * 2 < b * 1.01) }'; then
  bad zero1_bf16_moments "moments not half the float32 bytes: '$whole' vs '$zmem' MB"
else ok "zero1_bf16_moments (stopped and resumed on 2 ranks: 1 process's bits; moments $whole MB vs $zmem MB in float32)"; fi
# and expert parallel: each rank's experts' 2-byte moments widened into the gathered checkpoint
$MPI "$BIN" $TRAIN --bf16-moments --ep 2 --out "$W/m3" > "$W/m3.txt" 2>&1 || bad ep_bf16_moments "$(tail -3 "$W/m3.txt")"
if ! m=$(same_ckpt "$W/m1/step-0000020" "$W/m3/step-0000020"); then bad ep_bf16_moments "$m"
else ok "ep_bf16_moments (--ep 2 --bf16-moments: the gathered checkpoint of 1 process, bit for bit)"; fi

# ---------------------------------------------------------------- sft_dp
python3 - "$W/sft.jsonl" << 'EOF'
import sys
with open(sys.argv[1], "w") as f:
    for i in range(200):
        a, b = i % 10, (i * 7) % 10
        f.write('{"prompt": "%d + %d =", "response": "%d"}\n' % (a, b, a + b))
EOF
# a tokenizer with the chat template's special tokens, and a tiny model for it
"$BIN" tokenizer-train --data "$W/corpus.txt" --vocab-size 300 --special '<｜begin▁of▁sentence｜>,<｜end▁of▁sentence｜>,<｜User｜>,<｜Assistant｜>,<think>,</think>' \
  --out "$W/chat.json" > /dev/null 2>&1 &&
  "$BIN" init --preset tiny --tokenizer "$W/chat.json" --out "$W/m0" > /dev/null 2>&1 || bad sft_dp "init"
SFT="sft -m $W/m0 --data $W/sft.jsonl --template v3 --batch 2 --seq 16 --accum 4 --steps 6 --log-every 1 --eval-every 3 -t 1"
"$BIN" $SFT --out "$W/s1" > "$W/s1.txt" 2>&1 || bad sft_dp "1 process: $(tail -3 "$W/s1.txt")"
$MPI "$BIN" $SFT --out "$W/s2" > "$W/s2.txt" 2>&1 || bad sft_dp "2 ranks: $(tail -5 "$W/s2.txt")"
if [ -f "$W/s2/step-0000006/model.safetensors" ]; then
  if [ -n "$(diff <(norm "$W/s1/metrics.jsonl") <(norm "$W/s2/metrics.jsonl"))" ]; then bad sft_dp "metrics differ"
  elif ! m=$(same_ckpt "$W/s1/step-0000006" "$W/s2/step-0000006"); then bad sft_dp "checkpoint: $m"
  else ok "sft_dp (6 steps, the same bits)"; fi
else bad sft_dp "no checkpoint s2/step-0000006/model.safetensors"
fi

# ---------------------------------------------------------------- grpo_dp
python3 - "$W/qa.jsonl" << 'EOF'
import sys
with open(sys.argv[1], "w") as f:
    for i in range(0, 100, 9):
        f.write('{"prompt": "%d + %d =", "answer": %d}\n' % (i // 10, i % 10, i // 10 + i % 10))
EOF
GRPO="grpo -m $W/m0 --task jsonl:$W/qa.jsonl,instruct=0 --no-think --answer last --prompts 8 -G 4 --max-new 4
      --seq 16 --batch 4 --lr 1e-3 --eval-every 0 --seed 3 -t 1 --steps 3 --reward random --mu 2 --beta 0.04"
"$BIN" $GRPO --out "$W/g1" > "$W/g1.txt" 2>&1 || bad grpo_dp "1 process: $(tail -3 "$W/g1.txt")"
$MPI "$BIN" $GRPO --out "$W/g2" > "$W/g2.txt" 2>&1 || bad grpo_dp "2 ranks: $(tail -5 "$W/g2.txt")"
if [ -f "$W/g2/step-0000006/model.safetensors" ]; then
  if [ -n "$(diff <(norm "$W/g1/metrics.jsonl") <(norm "$W/g2/metrics.jsonl"))" ]; then
    bad grpo_dp "metrics differ: $(diff <(norm "$W/g1/metrics.jsonl") <(norm "$W/g2/metrics.jsonl") | head -3)"
  elif ! grep -q '"reward"' "$W/g2/metrics.jsonl"; then bad grpo_dp "no rewards logged"
  elif ! m=$(same_ckpt "$W/g1/step-0000006" "$W/g2/step-0000006"); then bad grpo_dp "checkpoint: $m"
  else ok "grpo_dp (rollouts spread over 2 ranks: rewards, losses and parameters of 1 process)"; fi
else bad grpo_dp "no checkpoint g2/step-0000006/model.safetensors"
fi

# ---------------------------------------------------------------- distill_dp
# a teacher that ends its answers: the tiny model fine-tuned on the sums a while
"$BIN" sft -m "$W/m0" --data "$W/sft.jsonl" --template v3 --batch 16 --seq 16 --steps 60 --lr 3e-3 --min-lr 3e-3 \
  --sched const --warmup 5 --eval-every 0 -t 1 --out "$W/teach" > "$W/teach.txt" 2>&1 || bad distill_dp "teacher sft"
for i in $(seq 0 39); do echo "{\"prompt\": \"$((i % 10)) + $((i * 3 % 10)) =\"}"; done > "$W/prompts.txt"
DIST="distill --teacher $W/teach/step-0000060 --student $W/m0 --prompts $W/prompts.txt --no-think --samples 2
      --max-new 6 --temp 1 --batch 2 --seq 16 --accum 4 --epochs 1 -t 1"
"$BIN" $DIST --out "$W/d1" > "$W/d1.txt" 2>&1 || bad distill_dp "1 process: $(tail -3 "$W/d1.txt")"
$MPI "$BIN" $DIST --out "$W/d2" > "$W/d2.txt" 2>&1 || bad distill_dp "2 ranks: $(tail -5 "$W/d2.txt")"
if [ -f "$W/d2/distill.jsonl" ] && [ -f "$W/d1/distill.jsonl" ]; then
  ck=$(cat "$W/d1/latest" 2> /dev/null)
  n=$(wc -l < "$W/d1/distill.jsonl")
  if ! cmp -s "$W/d1/distill.jsonl" "$W/d2/distill.jsonl"; then bad distill_dp "the teacher's data differ"
  elif [ "$n" -lt 5 ]; then bad distill_dp "only $n answers accepted"
  elif [ -z "$ck" ] || ! m=$(same_ckpt "$W/d1/$ck" "$W/d2/$ck"); then bad distill_dp "student checkpoint $ck: ${m:-missing}"
  else ok "distill_dp (teacher sampling spread over 2 ranks: the same $n answers; the student's $ck bit for bit)"; fi
else bad distill_dp "no distill.jsonl"
fi

# ---------------------------------------------------------------- killed_rank
# rank_pid R: the pid of rank R of the job started under mpirun pid $1
rank_pid() {
  for p in $(pgrep -P "$1"); do
    tr '\0' '\n' < "/proc/$p/environ" 2> /dev/null | grep -qx "OMPI_COMM_WORLD_RANK=$2" && { echo "$p"; return; }
  done
}
LONG="train --preset tiny --data $W/data --batch 2 --seq 24 --accum 2 --steps 2000 --log-every 1 --eval-every 0
      --save-every 5 -t 1"
$MPI "$BIN" $LONG --out "$W/kill" > "$W/kill.txt" 2>&1 &
job=$!
for _ in $(seq 300); do [ -f "$W/kill/latest" ] && break; sleep 0.1; done
victim=$(rank_pid "$job" 1)
if [ -z "$victim" ] || [ ! -f "$W/kill/latest" ]; then
  bad killed_rank "no rank 1 or no checkpoint after 30 s"; kill "$job" 2> /dev/null
else
  kill -9 "$victim"; t0=$(date +%s)
  for _ in $(seq 300); do kill -0 "$job" 2> /dev/null || break; sleep 0.1; done
  if kill -0 "$job" 2> /dev/null; then bad killed_rank "the job still runs 30 s after kill -9 of rank 1"; kill -9 "$job"
  else
    wait "$job"; rc=$?; secs=$(($(date +%s) - t0))
    k=$(cat "$W/kill/latest"); k=${k#step-}; k=$((10#$k))
    # resume on one process for 12 more steps; the reference: one process, the same settings, k + 12 steps
    "$BIN" train --data "$W/data" --out "$W/kill" --resume --stop-after 12 -t 1 > "$W/kres.txt" 2>&1
    "$BIN" $LONG --stop-after $((k + 12)) --out "$W/kref" > /dev/null 2>&1
    last=$(printf 'step-%07d' $((k + 12)))
    if [ "$rc" -eq 0 ]; then bad killed_rank "the job exited 0"
    elif ! grep -q "exited on signal 9" "$W/kill.txt"; then bad killed_rank "no message naming the killed rank: $(tail -4 "$W/kill.txt")"
    elif ! grep -q "resumed .*step-" "$W/kres.txt"; then bad killed_rank "resume: $(tail -3 "$W/kres.txt")"
    elif ! m=$(same_ckpt "$W/kref/$last" "$W/kill/$last"); then bad killed_rank "resumed run differs at $last: $m"
    else ok "killed_rank (ended in ${secs} s, exit $rc; resumed at step $k to $((k + 12)) with the bits of an unbroken run)"; fi
  fi
fi

# ---------------------------------------------------------------- silent_rank
$MPI "$BIN" $LONG --rank-timeout 2 --out "$W/stop" > "$W/stop.txt" 2>&1 &
job=$!
for _ in $(seq 300); do [ -f "$W/stop/latest" ] && break; sleep 0.1; done
victim=$(rank_pid "$job" 1)
if [ -z "$victim" ]; then bad silent_rank "no rank 1"; kill "$job" 2> /dev/null
else
  kill -STOP "$victim"; t0=$(date +%s)
  for _ in $(seq 300); do kill -0 "$job" 2> /dev/null || break; sleep 0.1; done
  if kill -0 "$job" 2> /dev/null; then bad silent_rank "the job still runs 30 s after rank 1 stopped"; kill -9 "$victim" "$job"
  else
    wait "$job"; rc=$?; secs=$(($(date +%s) - t0))
    if [ "$rc" -eq 0 ]; then bad silent_rank "the job exited 0"
    elif ! grep -q "rank 0 (pid [0-9]*): no answer from the other ranks for 2 s" "$W/stop.txt"; then
      bad silent_rank "no message from rank 0: $(grep -a deepc "$W/stop.txt" | tail -3)"
    else ok "silent_rank (rank 0 ended the job ${secs} s after rank 1 stopped answering, exit $rc)"; fi
  fi
fi

# ---------------------------------------------------------------- bad_layout
$MPI "$BIN" $TRAIN --ep 3 --out "$W/bad1" > "$W/bad1.txt" 2>&1; rc1=$?
$MPI "$BIN" ${TRAIN/--accum 4/--accum 3} --out "$W/bad2" > "$W/bad2.txt" 2>&1; rc2=$?
if [ "$rc1" -eq 0 ] || ! grep -q "ep 3 does not divide the 2 ranks" "$W/bad1.txt"; then bad bad_layout "--ep 3: $(grep -a error "$W/bad1.txt" | head -2)"
elif [ "$rc2" -eq 0 ] || ! grep -q "accum 3 is not a multiple of the 2 data-parallel replicas" "$W/bad2.txt"; then
  bad bad_layout "--accum 3: $(grep -a error "$W/bad2.txt" | head -2)"
else ok "bad_layout (clear errors for --ep 3 and --accum 3 on 2 ranks)"; fi

finish
