#!/usr/bin/env bash
# `make fuzz`: each harness for SECONDS with TIMEOUT seconds per input; a
# crash, a timeout or a memory blow-up fails the run (the input is kept in
# build/fuzz as crash-*, timeout-* or oom-*). Usage: run.sh BUILD SECONDS TIMEOUT NAME...
set -u
B=$1 SECONDS_EACH=$2 TIMEOUT=$3
shift 3
cd "$B/fuzz"
fail=0
for t in "$@"; do
  echo "== fuzz_$t: $SECONDS_EACH s, at most $TIMEOUT s per input"
  ./fuzz_$t -max_total_time="$SECONDS_EACH" -timeout="$TIMEOUT" -rss_limit_mb=2048 -max_len=65536 \
      -print_final_stats=1 "corpus_$t" > "fuzz_$t.log" 2>&1
  rc=$?
  grep -E "^stat::number_of_executed_units|^stat::average_exec_per_sec|ERROR|SUMMARY|Test unit written" "fuzz_$t.log"
  if [ $rc -ne 0 ]; then echo "  fuzz_$t found a problem: $B/fuzz/fuzz_$t.log"; fail=1; fi
done
exit $fail
