"""selftest.py [OUTDIR] - check the reference against itself; prints the max diff of each check.

  (a) absorbed MLA (kv_b_proj folded into query and output) == naive MLA, float64, < 1e-10
  (b) full-sequence logits == prefill + token-by-token decode through the KV cache (absorbed),
      for the main model and the MTP module
  (c) gen_cases' files loaded back through the CLI == the in-memory logits, exactly
  (d) fp8 e4m3: decode -> encode is the identity on all 254 finite codes; block quantisation
      error within half a step; bf16 rounds to nearest even; an F16 checkpoint loads
  (e) the vectorised gate == a plain per-token Python transcription of the routing rule
Cases are generated into OUTDIR (default: a temporary folder). Exits non-zero on any failure.
"""
import json
import math
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch

import deepseek_ref as ref
import gen_cases
import st

HERE = os.path.dirname(os.path.abspath(__file__))
failures = []


def check(name, value, tol):
    """Print one check's value (a max diff or max ratio); remember it if above tol."""
    ok = value <= tol
    print(f"  {'ok  ' if ok else 'FAIL'} {name:55s} {value:.3e} (tol {tol:.0e})")
    if not ok:
        failures.append(name)


def maxdiff(a, b):
    return (a - b).abs().max().item()


def read_rows(path, rows):
    """A float32 little-endian logits file -> float64 (rows, V)."""
    return torch.from_numpy(np.fromfile(path, dtype="<f4").reshape(rows, -1)).double()


def cli_logits(folder, ids, out, *flags):
    """Run the CLI's main() on a case folder -> the rows it wrote."""
    ref.main(["--model", folder, "--ids", ",".join(map(str, ids.tolist())), "--out", out, *flags])
    return read_rows(out, len(ids))


@torch.no_grad()
def check_model(folder, name, tmp):
    """(a), (b), (c) and (e) on one written case."""
    with open(os.path.join(folder, "case.json")) as f:
        case = json.load(f)
    ids = torch.tensor(case["ids"])
    model = ref.load_model(folder)
    logits, h = model(ids)
    check(f"{name}: absorbed vs naive logits", maxdiff(model(ids, absorbed=True)[0], logits), 1e-10)

    cache = model.new_cache()
    rows = [model(ids[:5], cache)[0]]
    rows += [model(ids[t:t + 1], cache, absorbed=True)[0] for t in range(5, len(ids))]
    check(f"{name}: prefill 5 + decode vs full", maxdiff(torch.cat(rows), logits), 1e-10)

    out = os.path.join(tmp, "selftest.f32")
    want = read_rows(os.path.join(folder, case["logits"]), len(ids))
    check(f"{name}: CLI logits vs {case['logits']}", maxdiff(cli_logits(folder, ids, out), want), 0)
    if case["mtp_logits"]:
        mtp = model.mtp(ids, logits, h)
        layer = model.model["layers"][model.cfg.num_hidden_layers]
        next_ids = torch.cat([ids[1:], logits[-1:].argmax(-1)])
        layer_cache = layer.self_attn.new_cache()
        steps = [layer(next_ids[t:t + 1], h[t:t + 1], layer_cache, absorbed=True)
                 for t in range(len(ids))]
        check(f"{name}: MTP decode vs full", maxdiff(torch.cat(steps), mtp), 1e-10)
        want = read_rows(os.path.join(folder, case["mtp_logits"]), len(ids))
        check(f"{name}: CLI --mtp vs {case['mtp_logits']}",
              maxdiff(cli_logits(folder, ids, out, "--mtp"), want), 0)
    check_gates(model, ids, name)


def route_by_hand(cfg, scores, bias):
    """One token's routing, transcribed from the rule: list of scores -> {expert: weight}."""
    choice = [s + (bias[e] if bias is not None else 0.0) for e, s in enumerate(scores)]
    if cfg.topk_method != "greedy" and cfg.n_group > 1:
        size = len(scores) // cfg.n_group
        members = [choice[g * size:(g + 1) * size] for g in range(cfg.n_group)]
        group_score = [sum(sorted(m, reverse=True)[:2]) if bias is not None else max(m)
                       for m in members]
        kept = sorted(range(cfg.n_group), key=lambda g: -group_score[g])[:cfg.topk_group]
        choice = [c if e // size in kept else -math.inf for e, c in enumerate(choice)]
    experts = sorted(range(len(scores)), key=lambda e: -choice[e])[:cfg.num_experts_per_tok]
    weights = [scores[e] for e in experts]
    if cfg.norm_topk_prob and len(experts) > 1:
        weights = [w / (sum(weights) + 1e-20) for w in weights]
    return {e: w * cfg.routed_scaling_factor for e, w in zip(experts, weights)}


def check_gates(model, ids, name):
    """(e): every gate (the MTP block's too) on the hidden states it actually sees."""
    seen = []
    hooks = [m.register_forward_hook(lambda mod, inp, out: seen.append((mod, inp[0], out)))
             for m in model.modules() if isinstance(m, ref.Gate)]
    logits, h = model(ids)
    if model.cfg.num_nextn_predict_layers:
        model.mtp(ids, logits, h)
    for hook in hooks:
        hook.remove()
    diff = 0.0
    for gate, x, (w, idx) in seen:
        scores = gate.select(x)[0]
        bias = gate.e_score_correction_bias
        bias = None if bias is None else bias.tolist()
        for t in range(x.shape[0]):
            hand = route_by_hand(model.cfg, scores[t].tolist(), bias)
            got = dict(zip(idx[t].tolist(), w[t].tolist()))
            if hand.keys() != got.keys():
                diff = math.inf
            else:
                diff = max(diff, max(abs(hand[e] - got[e]) for e in got))
    check(f"{name}: gate vs per-token transcription ({len(seen)} gates)", diff, 1e-15)


def check_formats(tmp, v2lite):
    """(d): fp8, bf16 and an F16 checkpoint."""
    codes = np.array([c for c in range(256) if c & 0x7F != 0x7F], dtype=np.uint8)
    back = st.fp8_encode(st.fp8_decode(codes))
    check(f"fp8: decode->encode on {len(codes)} finite codes",
          float(np.abs(back.astype(int) - codes).max()), 0)

    rng = np.random.default_rng(7)
    w = (rng.standard_normal((37, 45)) * np.exp(rng.uniform(-8, 3, (37, 45)))).astype(np.float32)
    q, s = st.fp8_quantize(w, [16, 16])
    # half an e4m3 step of w/s is |w/s| * 2^-4 (normal) or 2^-10 (subnormal); times the scale
    s_full = np.repeat(np.repeat(s, 16, 0), 16, 1)[:37, :45]
    half_step = np.maximum(np.abs(w) * 2.0 ** -4, s_full * 2.0 ** -10)
    check("fp8: block quantise error / half a step (ratio)",
          float((np.abs(st.fp8_dequantize(q, s, [16, 16]) - w) / half_step).max()), 1 + 1e-6)

    x = np.array([1 + 2 ** -8, 1 + 3 * 2 ** -8, -(1 + 2 ** -8 + 2 ** -20), 3.0], np.float32)
    want = np.array([1.0, 1 + 2 ** -6, -(1 + 2 ** -7), 3.0], np.float32)
    check("bf16: round to nearest even",
          float(np.abs(st.bf16_decode(st.bf16_encode(x)) - want).max()), 0)

    folder = os.path.join(tmp, "v2lite_f16")
    os.makedirs(folder)
    weights = st.dequantize(st.load_dir(v2lite), None)
    st.save_file(os.path.join(folder, "model.safetensors"),
                 {k: st.encode(v, "F16") for k, v in weights.items()})
    with open(os.path.join(v2lite, "config.json")) as src:
        config = src.read()
    with open(os.path.join(folder, "config.json"), "w") as dst:
        dst.write(config)
    loaded = ref.load_model(folder).state_dict()
    check("F16 checkpoint loads as float16-rounded weights",
          max(np.abs(loaded[k].numpy() - v.astype(np.float16)).max() for k, v in weights.items()), 0)


def check_alignment(outdir):
    """Every written safetensors file starts its data 8-byte aligned."""
    worst = 0
    for root, _, files in os.walk(outdir):
        for f in files:
            if f.endswith(".safetensors"):
                with open(os.path.join(root, f), "rb") as fh:
                    worst = max(worst, (8 + int.from_bytes(fh.read(8), "little")) % 8)
    check("safetensors data start % 8", worst, 0)


def check_cli_process(outdir, tmp):
    """The CLI as its own process, on the fp8 case with --mtp."""
    folder, out = os.path.join(outdir, "v3_fp8"), os.path.join(tmp, "cli.f32")
    with open(os.path.join(folder, "case.json")) as f:
        case = json.load(f)
    subprocess.run([sys.executable, os.path.join(HERE, "deepseek_ref.py"), "--model", folder,
                    "--ids", ",".join(map(str, case["ids"])), "--out", out, "--mtp"], check=True)
    n = len(case["ids"])
    check("v3_fp8: deepseek_ref.py --mtp vs mtp_logits.f32",
          maxdiff(read_rows(out, n), read_rows(os.path.join(folder, case["mtp_logits"]), n)), 0)


def main():
    t0 = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        outdir = sys.argv[1] if len(sys.argv) > 1 else os.path.join(tmp, "cases")
        print("gen_cases:")
        gen_cases.main(outdir)
        with open(os.path.join(outdir, "cases.txt")) as f:
            names = f.read().split()
        for name in names:
            print(f"{name}:")
            check_model(os.path.join(outdir, name), name, tmp)
        print("formats and CLI:")
        check_formats(tmp, os.path.join(outdir, "v2lite_f32"))
        check_alignment(outdir)
        check_cli_process(outdir, tmp)
    verdict = "FAILED: " + ", ".join(failures) if failures else "all checks passed"
    print(f"{verdict} ({time.time() - t0:.1f} s)")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
