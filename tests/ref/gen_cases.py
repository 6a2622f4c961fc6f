"""gen_cases.py OUTDIR - write tiny random DeepSeek checkpoints and their float64 reference logits.

Each case OUTDIR/<name>/ holds config.json, the checkpoint (model.safetensors, or shards plus
model.safetensors.index.json), case.json = {"ids", "logits", "mtp_logits", "dtype", "note"},
logits.f32 ([T, V] float32 little-endian) and, with an MTP module, mtp_logits.f32 (Transformer.mtp's
convention). The logits are those of the float64 reference on the DEQUANTISED stored weights, so a
loader sees exactly the numbers the reference used. OUTDIR/cases.txt lists the case names.

Routing is made robust before writing: for every token and every MoE gate (the MTP block's too),
the kept/dropped group scores and the K-th/(K+1)-th expert choices differ by more than MARGIN,
and so do the two best logits where the MTP reads an argmax; otherwise the case is reseeded. A
float32 implementation then cannot flip a routing choice by rounding.
Deterministic (fixed seeds); a few seconds on two cores.
"""
import json
import os
import sys

import numpy as np
import torch

import st
from deepseek_ref import Config, Gate, Transformer, model_from_weights

MARGIN = 1e-3          # smallest allowed routing / argmax gap
FP8_BLOCK = [16, 16]


def fp8_block(dtype):
    """The scale block of a case: "fp8_128" has the official 128x128 blocks (deepc keeps such
    matrices FP8 in memory), "fp8" 16x16 ones (deepc widens them to float32)."""
    return [128, 128] if dtype == "fp8_128" else FP8_BLOCK

V3 = dict(  # shared by the v3_* cases; sizes chosen so several are not multiples of the fp8 block
    architectures=["DeepseekV3ForCausalLM"], model_type="deepseek_v3",
    vocab_size=131, hidden_size=56, intermediate_size=88, moe_intermediate_size=24,
    num_hidden_layers=3, num_nextn_predict_layers=1, num_attention_heads=4, num_key_value_heads=4,
    q_lora_rank=20, kv_lora_rank=24, qk_nope_head_dim=16, qk_rope_head_dim=8, v_head_dim=12,
    n_routed_experts=8, num_experts_per_tok=3, n_shared_experts=1, first_k_dense_replace=1,
    moe_layer_freq=1, n_group=4, topk_group=2, topk_method="noaux_tc", scoring_func="sigmoid",
    norm_topk_prob=True, routed_scaling_factor=2.5, rms_norm_eps=1e-6, rope_theta=10000.0,
    # original length 4 < 2*pi puts both correction dims below 0: low == high == 0, the +0.001
    # branch, ramp [0, 1, 1, 1] (dim pair 0 extrapolated, the rest interpolated).
    rope_scaling=dict(type="yarn", factor=4.0, original_max_position_embeddings=4, beta_fast=32,
                      beta_slow=1, mscale=0.8, mscale_all_dim=0.9),
    max_position_embeddings=64, hidden_act="silu", bos_token_id=0, eos_token_id=1,
    attention_bias=False, tie_word_embeddings=False)

# v3 with every *_proj input width a multiple of 128, so each FP8 matrix (kv_b too: kv_lora 128)
# has whole 128-wide column blocks; row counts (96, 152, 128 + 24 ...) leave partial 128-row blocks
V3_128 = dict(V3, hidden_size=128, intermediate_size=256, moe_intermediate_size=128, q_lora_rank=128,
              kv_lora_rank=128, v_head_dim=32)

V2LITE = dict(
    V3, architectures=["DeepseekV2ForCausalLM"], model_type="deepseek_v2", vocab_size=100,
    num_nextn_predict_layers=0, q_lora_rank=None, num_experts_per_tok=2, n_shared_experts=2,
    n_group=1, topk_group=1, topk_method="greedy", scoring_func="softmax", norm_topk_prob=False,
    routed_scaling_factor=1.0,
    # V2-Lite's own YaRN numbers: low 1, high 3, ramp [0, 0, 0.5, 1]; equal mscales leave cos/sin
    # unscaled and only change the softmax scale.
    rope_scaling=dict(type="yarn", factor=40.0, original_max_position_embeddings=4096, beta_fast=32,
                      beta_slow=1, mscale=0.707, mscale_all_dim=0.707),
    max_position_embeddings=256)

V2GROUP = dict(
    V3, architectures=["DeepseekV2ForCausalLM"], model_type="deepseek_v2", vocab_size=112,
    num_nextn_predict_layers=0, topk_method="group_limited_greedy", scoring_func="softmax",
    norm_topk_prob=False, routed_scaling_factor=16.0, rope_scaling=None, max_position_embeddings=256)

# name: (config, stored dtype, tokens, std of routed experts' matrices, first seed, note)
CASES = {
    "v3_f32": (V3, "f32", 14, 0.15, 100,
               "V3: q-LoRA, sigmoid noaux_tc gate with bias, 4 groups keep 2, YaRN with unequal "
               "mscales, 1 MTP module; all F32"),
    "v3_bf16": (V3, "bf16", 14, 0.15, 200,
                "v3_f32's config, every tensor BF16 except e_score_correction_bias (F32), as in the "
                "official release"),
    "v3_fp8": (V3, "fp8", 14, 0.15, 300,
               "v3_f32's config, *_proj weights F8_E4M3 with 16x16 scale_inv blocks (partial edge "
               "blocks: 56, 20, 24, 88 are not multiples of 16), the rest BF16, bias F32"),
    "v3_fp8_128": (V3_128, "fp8_128", 14, 0.15, 600,
                   "v3 at widths that are multiples of 128 (hidden 128, q_lora 128, kv_lora 128, v 32, "
                   "experts 128, dense 256): *_proj weights F8_E4M3 with the official 128x128 scale_inv blocks "
                   "(partial in rows), which deepc keeps FP8 in memory; the rest BF16, bias F32"),
    "v2lite_f32": (V2LITE, "f32", 12, 0.15, 400,
                   "V2-Lite: plain q_proj, softmax greedy gate, no normalisation, 2 shared experts, "
                   "YaRN with equal mscales, no MTP; F32"),
    "v2_group_f32": (V2GROUP, "f32", 16, 0.06, 500,
                     "V2: q-LoRA, softmax group_limited_greedy gate (group = max score), "
                     "routed_scaling_factor 16 with small experts, plain RoPE, no MTP; F32"),
}
SHARDED_NOTE = "v3_f32's weights, ids and logits, written as 3 shards with model.safetensors.index.json"


def random_weights(model, rng, expert_std):
    """{HF name: float32} drawn in state_dict order: norms 1 + 0.1 N, embeddings N(0, 1), the
    correction bias U(-0.1, 0.1), routed experts N(0, expert_std), other matrices N(0, 0.15)."""
    out = {}
    for name, p in model.state_dict().items():
        shape = tuple(p.shape)
        if "norm" in name:
            w = 1 + 0.1 * rng.standard_normal(shape)
        elif name.endswith("e_score_correction_bias"):
            w = rng.uniform(-0.1, 0.1, shape)
        elif name.endswith("embed_tokens.weight"):
            w = rng.standard_normal(shape)
        else:
            w = (expert_std if ".experts." in name else 0.15) * rng.standard_normal(shape)
        out[name] = w.astype(np.float32)
    return out


def is_fp8_weight(name):
    """The official V3 checkpoint's fp8 tensors: every 2-D projection of attention and FFN."""
    return name.endswith("_proj.weight") or name.endswith("kv_a_proj_with_mqa.weight")


def store(weights, dtype):
    """{name: float32} -> {name: raw} in a case's storage dtype ("f32" | "bf16" | "fp8")."""
    raws = {}
    for name, w in weights.items():
        if dtype.startswith("fp8") and is_fp8_weight(name):
            codes, scale_inv = st.fp8_quantize(w, fp8_block(dtype))
            raws[name], raws[name + "_scale_inv"] = ("F8_E4M3", codes), ("F32", scale_inv)
        elif dtype == "f32" or name.endswith("e_score_correction_bias"):
            raws[name] = st.encode(w, "F32")
        else:
            raws[name] = st.encode(w, "BF16")
    return raws


def top_gap(x, k):
    """Smallest gap, over rows, between the k-th and (k+1)-th largest entry of x (T, N)."""
    top = x.topk(k + 1, -1).values
    return (top[:, k - 1] - top[:, k]).min().item()


@torch.no_grad()
def run(model, ids):
    """Logits, MTP logits (or None) and the smallest routing / argmax gap seen."""
    gate_inputs = []
    hooks = [m.register_forward_hook(lambda mod, inp, out: gate_inputs.append((mod, inp[0])))
             for m in model.modules() if isinstance(m, Gate)]
    logits, h = model(ids)
    mtp = model.mtp(ids, logits, h) if model.cfg.num_nextn_predict_layers else None
    for hook in hooks:
        hook.remove()
    gaps = [top_gap(logits[-1:], 1)] if mtp is not None else []
    for gate, x in gate_inputs:
        _, choice, groups = gate.select(x)
        gaps.append(top_gap(choice, model.cfg.num_experts_per_tok))
        if groups is not None:
            gaps.append(top_gap(groups, model.cfg.topk_group))
    return logits, mtp, min(gaps)


def build(config, dtype, n_tokens, expert_std, seed):
    """Reseed from `seed` until the routing is robust -> dict of everything a case writes."""
    cfg = Config.from_dict(config)
    shapes = Transformer(cfg)
    for s in range(seed, seed + 100):
        rng = np.random.default_rng(s)
        raws = store(random_weights(shapes, rng, expert_std), dtype)
        ids = torch.from_numpy(rng.integers(0, cfg.vocab_size, n_tokens))
        model = model_from_weights(cfg, st.dequantize(raws, fp8_block(dtype)))
        logits, mtp, gap = run(model, ids)
        if gap > MARGIN:
            return dict(raws=raws, ids=ids, logits=logits, mtp=mtp, seed=s, gap=gap)
    raise RuntimeError(f"no seed in {seed}..{seed + 99} gives routing gaps above {MARGIN}")


def write_f32(path, logits):
    """(T, V) float64 -> float32 little-endian, row-major."""
    logits.to(torch.float32).numpy().astype("<f4").tofile(path)


def write_case(folder, config, dtype, case, note, n_shards=1):
    """Write one case folder: config.json, checkpoint, logits, case.json."""
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
    if n_shards > 1:
        st.save_sharded(folder, case["raws"], n_shards)
    else:
        st.save_file(os.path.join(folder, "model.safetensors"), case["raws"])
    write_f32(os.path.join(folder, "logits.f32"), case["logits"])
    if case["mtp"] is not None:
        write_f32(os.path.join(folder, "mtp_logits.f32"), case["mtp"])
    with open(os.path.join(folder, "case.json"), "w") as f:
        json.dump({"ids": case["ids"].tolist(), "logits": "logits.f32",
                   "mtp_logits": None if case["mtp"] is None else "mtp_logits.f32",
                   "dtype": dtype, "note": note}, f, indent=2)


def with_dtype(config, dtype):
    """The config as written: torch_dtype of the stored weights, and for fp8 checkpoints the
    official quantization_config."""
    if not dtype.startswith("fp8"):
        return dict(config, torch_dtype="float32" if dtype == "f32" else "bfloat16")
    return dict(config, torch_dtype="bfloat16", quantization_config={
        "quant_method": "fp8", "fmt": "e4m3", "activation_scheme": "dynamic",
        "weight_block_size": fp8_block(dtype)})


def main(outdir):
    built = {}
    for name, (config, dtype, n_tokens, expert_std, seed, note) in CASES.items():
        config = with_dtype(config, dtype)
        built[name] = case = build(config, dtype, n_tokens, expert_std, seed)
        write_case(os.path.join(outdir, name), config, dtype, case, note)
        print(f"{name:13s} seed {case['seed']}  min routing gap {case['gap']:.2e}  "
              f"logits std {case['logits'].std().item():.2f}")
    write_case(os.path.join(outdir, "v3_sharded"), with_dtype(V3, "f32"), "f32", built["v3_f32"],
               SHARDED_NOTE, n_shards=3)
    print("v3_sharded    = v3_f32 in 3 shards")
    with open(os.path.join(outdir, "cases.txt"), "w") as f:
        f.write("\n".join(list(CASES) + ["v3_sharded"]) + "\n")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: gen_cases.py OUTDIR")
    main(sys.argv[1])
