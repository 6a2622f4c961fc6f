#!/usr/bin/env bash
# Seeds for `make fuzz`: one small valid input per harness (build/fuzz/corpus_*),
# made with the deepc binary; existing corpora are kept (they grow as libFuzzer
# finds new coverage).
set -eu
B=$1
F=$B/fuzz
mkdir -p "$F"/corpus_readers "$F"/corpus_config "$F"/corpus_tokenizer "$F"/corpus_index "$F"/corpus_jsonl "$F"/corpus_session "$F"/work
W=$F/work
if [ ! -f "$F/corpus_config/seed" ]; then
  "$B/deepc" init --preset tiny --layers 1 --force --out "$W/m" > /dev/null
  cp "$W/m/config.json" "$F/corpus_config/seed"
fi
if [ ! -f "$F/corpus_readers/seed_gguf" ]; then
  "$B/deepc" convert -m "$W/m" --to gguf --type q8_0 -o "$W/m.gguf" 2> /dev/null
  { printf '\000'; head -c 65535 "$W/m.gguf"; } > "$F/corpus_readers/seed_gguf"
  { printf '\001'; head -c 65535 "$W/m/model.safetensors"; } > "$F/corpus_readers/seed_st"
fi
if [ ! -f "$F/corpus_tokenizer/seed" ]; then
  for i in $(seq 100); do echo "the quick brown fox $i jumps over the lazy dog"; done > "$W/t.txt"
  "$B/deepc" tokenizer-train --data "$W/t.txt" --vocab-size 300 --out "$F/corpus_tokenizer/seed" > /dev/null 2>&1
fi
[ -f "$F/corpus_index/seed" ] || printf '{"metadata": {"total_size": 8}, "weight_map": {"w": "model-00001-of-00001.safetensors"}}\n' > "$F/corpus_index/seed"
[ -f "$F/corpus_jsonl/seed" ] || printf '{"text": "hello"}\n{"text": "a\\nb", "id": 2}\n\n{"id": 3, "text": "\\u00e9t\\u00e9"}\n' > "$F/corpus_jsonl/seed"
if [ ! -f "$F/corpus_session/seed" ]; then
  # a real session of the model fuzz_session loads (work/m): a short chat saved with /save
  for i in $(seq 100); do echo "the quick brown fox $i jumps over the lazy dog"; done > "$W/t.txt"
  "$B/deepc" tokenizer-train --data "$W/t.txt" --vocab-size 300 --out "$W/tok.json" > /dev/null 2>&1
  printf 'hello\n/save %s\n' "$F/corpus_session/seed" | "$B/deepc" chat -m "$W/m" --tokenizer "$W/tok.json" -n 4 > /dev/null 2>&1
  [ -f "$F/corpus_session/seed" ] || { echo "seeds.sh: deepc chat did not save a session"; exit 1; }
fi
