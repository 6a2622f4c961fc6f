#!/usr/bin/env bash
# The demo `make demo` runs after installing and building: deepc's main job
# today, on built-in defaults. It writes a randomly initialised `small`
# DeepSeek-V3-architecture model (MLA + DeepSeekMoE + MTP) as the official
# release stores it (FP8 e4m3 with 128x128 block scales), loads it back and
# runs the forward pass with both attention paths and the MTP head.
set -euo pipefail
cd "$(dirname "$0")/.."
B=build/deepc
D=build/demo
mkdir -p "$D"

echo "== the real DeepSeek-V3 (config only: what it is and what it costs)"
$B info --preset v3
echo
echo "== a small model of the same architecture, written as FP8 safetensors"
$B init --preset small --dtype fp8 --seed 42 --out "$D/small"
$B info -m "$D/small"
echo
IDS=0,101,2024,7,3071,512,99,1000,4095,17,23,311
echo "== forward pass over $IDS"
for attn in naive absorb; do
  /usr/bin/time -f "   $attn attention: %es" $B logits -m "$D/small" --ids $IDS --attn $attn --out "$D/$attn.f32"
done
$B logits -m "$D/small" --ids $IDS --mtp --out "$D/mtp.f32"
$B logits -m "$D/small" --ids $IDS --attn absorb --decode-from 4 --out "$D/decode.f32"
/usr/bin/python3 - "$D" <<'PY'
import struct, sys, os
d = sys.argv[1]
def load(n):
    b = open(os.path.join(d, n), "rb").read()
    return struct.unpack("<%df" % (len(b) // 4), b)
a, b, c, m = load("naive.f32"), load("absorb.f32"), load("decode.f32"), load("mtp.f32")
V = 4096
print("   naive vs absorbed attention:   max |diff| %.2e" % max(abs(x - y) for x, y in zip(a, b)))
print("   one prefill vs token-by-token: max |diff| %.2e" % max(abs(x - y) for x, y in zip(b, c)))
for t in range(len(a) // V):
    row, mrow = a[t * V:(t + 1) * V], m[t * V:(t + 1) * V]
    print("   position %2d: next-token argmax %4d, MTP (token after next) argmax %4d"
          % (t, max(range(V), key=row.__getitem__), max(range(V), key=mrow.__getitem__)))
PY
