#!/usr/bin/env bash
# bench_dist.sh BIN — bench_dist.c on 1 process (1 and 2 threads) and on
# 2 ranks of 1 thread (plain data parallel and ZeRO-1), the same global batch
# (2 micro-batches of 8 x 256 a step). Prints; never fails on time.
BIN=$1
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
export OMPI_MCA_btl_vader_single_copy_mechanism=none
echo "data parallel on the train-bench shape: global batch 2 x 8 x 256 tokens a step, f32 AdamW"
echo "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), $(nproc) cores; load: $(cut -d' ' -f1-3 /proc/loadavg)"
printf "%-26s %5s %7s %9s %9s %9s %10s %9s %10s %12s\n" "run" "ranks" "threads" "step s" "comm s" "comm" \
  "MB sent" "tok/s" "MB/s comm" "optim MB/rk"
"$BIN" --threads 1 --label "1 process" || true
"$BIN" --threads 2 --label "1 process" || true
mpirun -np 2 --oversubscribe "$BIN" --threads 1 --label "2 ranks (data parallel)" || true
mpirun -np 2 --oversubscribe "$BIN" --threads 1 --zero --label "2 ranks (ZeRO-1)" || true
echo "(MB sent: bytes this rank sent per step through the collectives; comm s includes waiting for the"
echo " slower rank; the machine's bound on 2 cores is 1 process x 2 threads)"
