"""gen_train_cases.py OUTDIR - tiny random DeepSeek models with float64 reference training numbers.

Each case OUTDIR/<name>/ holds:
  config.json          a complete HF config
  model.safetensors    the initial parameters, F32 (e_score_correction_bias non-zero; each MTP
                       module's embed_tokens / shared_head.head are copies of the main ones)
  tokens.bin           int32 little-endian (B, T+1), row-major
  train.json           hyperparameters and expected numbers (see README.md)
  grads.safetensors    F32 gradient of the total loss for every trainable parameter after the
                       first forward/backward, before clipping (main names only for embed/head)
  params_after.safetensors  F32 trainable parameters and biases after the N steps (for debugging)
and OUTDIR/cases.txt lists the case names. The semantics are train_ref.py's.

Routing is decisive at every step of the N-step run: for every token of every MoE gate (MTP
blocks too) the K-th/(K+1)-th choice scores and the kept/dropped group scores differ by more
than MARGIN, or the case is reseeded. Before writing, each case is checked: autograd gradients
against central finite differences, the batched training forward against the inference
reference (per-sequence logits, MTP depth 1), and the balance loss against a per-token loop.
Deterministic (fixed seeds); a few seconds on two cores. Exits non-zero if a check fails.
"""
import json
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

import st
import train_ref as tr
from deepseek_ref import Config, Transformer, model_from_weights
from gen_cases import random_weights, top_gap

MARGIN = 1e-4      # smallest allowed routing gap, at every step
STEPS = 5

V3 = dict(
    architectures=["DeepseekV3ForCausalLM"], model_type="deepseek_v3",
    vocab_size=96, hidden_size=32, intermediate_size=64, moe_intermediate_size=16,
    num_hidden_layers=3, num_nextn_predict_layers=1, num_attention_heads=4, num_key_value_heads=4,
    q_lora_rank=16, kv_lora_rank=16, qk_nope_head_dim=8, qk_rope_head_dim=8, v_head_dim=8,
    n_routed_experts=8, num_experts_per_tok=2, n_shared_experts=1, first_k_dense_replace=1,
    moe_layer_freq=1, n_group=4, topk_group=2, topk_method="noaux_tc", scoring_func="sigmoid",
    norm_topk_prob=True, routed_scaling_factor=2.5, rms_norm_eps=1e-6, rope_theta=10000.0,
    rope_scaling=dict(type="yarn", factor=4.0, original_max_position_embeddings=4, beta_fast=32,
                      beta_slow=1, mscale=0.8, mscale_all_dim=0.9),
    max_position_embeddings=64, hidden_act="silu", bos_token_id=0, eos_token_id=1,
    attention_bias=False, tie_word_embeddings=False, torch_dtype="float32")

V2 = dict(
    V3, architectures=["DeepseekV2ForCausalLM"], model_type="deepseek_v2", vocab_size=80,
    hidden_size=40, num_nextn_predict_layers=0, q_lora_rank=None, n_shared_experts=2,
    n_group=1, topk_group=1, topk_method="greedy", scoring_func="softmax", norm_topk_prob=False,
    routed_scaling_factor=1.0, rope_scaling=None)

MTP2 = dict(V3, vocab_size=112, num_hidden_layers=2, num_nextn_predict_layers=2)

# name: (config, B, T, hyperparameters, first seed, note)
CASES = {
    "train_v3": (V3, 2, 10, tr.Hyper(lam=0.3, alpha=0.01, gamma=0.01, lr=1e-2, wd=0.1, clip=1.0),
                 1000, "V3: q-LoRA, sigmoid noaux_tc (4 groups keep 2) with bias updates, 1 shared "
                       "expert, YaRN, 1 MTP module; 3 layers (first dense)"),
    "train_v2": (V2, 2, 8, tr.Hyper(lam=0.3, alpha=0.01, gamma=0.0, lr=1e-2, wd=0.1, clip=1.0),
                 2000, "V2: plain q_proj, softmax greedy gate without normalisation, scale 1, "
                       "2 shared experts, plain RoPE, no MTP, no bias; 3 layers (first dense)"),
    "train_mtp2": (MTP2, 2, 12, tr.Hyper(lam=0.3, alpha=0.01, gamma=0.01, lr=1e-2, wd=0.1,
                                         clip=0.05),
                   3000, "train_v3's gate and YaRN with 2 main layers (first dense), 2 MTP "
                         "modules (MoE blocks), clip 0.05 so clipping is active every step"),
}

# ---------------------------------------------------------------------------- building


def initial_weights(model, rng):
    """gen_cases' draw (norms 1 + 0.1 N, embeddings N(0, 1), bias U(-0.1, 0.1), matrices
    N(0, 0.15)), with the MTP copies set equal to the main embed_tokens / lm_head."""
    w = random_weights(model, rng, 0.15)
    L = model.cfg.num_hidden_layers
    for k in range(model.cfg.num_nextn_predict_layers):
        w[f"model.layers.{L + k}.embed_tokens.weight"] = w["model.embed_tokens.weight"].copy()
        w[f"model.layers.{L + k}.shared_head.head.weight"] = w["lm_head.weight"].copy()
    return w


def routing_gap(stats, cfg):
    """Smallest K-th/(K+1)-th choice gap and kept/dropped group gap over all MoE layers."""
    gaps = []
    with torch.no_grad():
        for s in stats:
            _, choice, groups = s.moe.gate.select(s.x)
            gaps.append(top_gap(choice, cfg.num_experts_per_tok))
            if groups is not None:
                gaps.append(top_gap(groups, cfg.topk_group))
    return min(gaps)


def run(cfg, weights, tok, hp, dtype=torch.float64):
    """The N-step run -> dict of its numbers, or None when a step's routing is near a tie."""
    model = model_from_weights(cfg, weights).to(dtype).train()
    params = tr.trainable(model)
    opt = tr.make_optimizer(params, hp)
    rec = dict(losses=[], main_losses=[], mtp_losses=[], aux_losses=[], grad_norms=[], gap=1.0)
    for step in range(STEPS):
        out, norm, grads = tr.train_step(model, params, opt, tok, hp, keep_grads=step == 0)
        gap = routing_gap(out.moe, cfg)
        if gap <= MARGIN:
            return None
        rec["gap"] = min(rec["gap"], gap)
        if step == 0:
            rec.update(first=out, grads=grads)
        for key, v in (("losses", out.total), ("main_losses", out.main),
                       ("mtp_losses", out.mtp), ("aux_losses", out.aux), ("grad_norms", norm)):
            rec[key].append(v.item())
    rec.update(model=model, params=params)
    return rec


def build(config, B, T, hp, seed):
    """Reseed from `seed` until every step's routing is decisive."""
    cfg = Config.from_dict(config)
    shapes = Transformer(cfg)
    for s in range(seed, seed + 200):
        rng = np.random.default_rng(s)
        weights = initial_weights(shapes, rng)
        tok = torch.from_numpy(rng.integers(0, cfg.vocab_size, (B, T + 1)))
        rec = run(cfg, weights, tok, hp)
        if rec is not None:
            return dict(rec, cfg=cfg, weights=weights, tok=tok, seed=s)
    raise RuntimeError(f"no seed in {seed}..{seed + 199} keeps routing gaps above {MARGIN}")

# ---------------------------------------------------------------------------- checks

failures = []


def check(name, value, tol):
    ok = value <= tol
    print(f"    {'ok  ' if ok else 'FAIL'} {name:52s} {value:.2e} (tol {tol:.0e})")
    if not ok:
        failures.append(name)


@torch.no_grad()
def check_finite_differences(case, hp, eps=1e-5):
    """Autograd gradient vs central differences of the total loss on the initial model, at the
    largest-gradient entry of a few parameters (router, an expert, attention, a norm, MTP, the
    embedding), plus e_score_correction_bias, whose loss slope must be 0."""
    cfg, grads = case["cfg"], case["grads"]
    model = model_from_weights(cfg, case["weights"])
    L, moe_layer = cfg.num_hidden_layers, cfg.first_k_dense_replace
    names = [f"model.layers.{moe_layer}.mlp.gate.weight",
             f"model.layers.{moe_layer}.mlp.experts.3.down_proj.weight",
             "model.layers.0.self_attn.kv_b_proj.weight",
             f"model.layers.{L - 1}.self_attn.kv_a_layernorm.weight",
             "model.embed_tokens.weight", "lm_head.weight"]
    if cfg.num_nextn_predict_layers:
        names += [f"model.layers.{L}.eh_proj.weight", f"model.layers.{L}.mlp.gate.weight"]
    params = dict(model.named_parameters())
    worst = 0.0
    for name in names:
        g = grads[name]
        j = int(g.abs().argmax())
        p = params[name].view(-1)
        keep = p[j].item()
        p[j] = keep + eps
        up = tr.forward(model, case["tok"], hp).total.item()
        p[j] = keep - eps
        down = tr.forward(model, case["tok"], hp).total.item()
        p[j] = keep
        fd, ad = (up - down) / (2 * eps), g.view(-1)[j].item()
        worst = max(worst, abs(fd - ad) / max(abs(ad), 1e-3))
    check(f"autograd vs finite differences ({len(names)} params, rel)", worst, 1e-6)
    if cfg.topk_method == "noaux_tc":
        bias = params[f"model.layers.{moe_layer}.mlp.gate.e_score_correction_bias"]
        base = tr.forward(model, case["tok"], hp).total.item()
        bias[0] += 1e-5
        check("loss slope along e_score_correction_bias", abs(
            tr.forward(model, case["tok"], hp).total.item() - base) / 1e-5, 0.0)


@torch.no_grad()
def check_against_inference(case, hp):
    """The batched training forward vs deepseek_ref's inference path, one sequence at a time:
    main logits, and the depth-1 MTP loss from Transformer.mtp (its rows 0..T-2 read the same
    tokens; the last row, which reads an argmax, has no target). Then the same model cast to
    float32 (as bench/train_torch.py runs it) must give the total loss to float32 accuracy."""
    cfg, tok, first = case["cfg"], case["tok"], case["first"]
    model = model_from_weights(cfg, case["weights"])
    B, T = tok.shape[0], tok.shape[1] - 1
    diff, mtp_rows, mtp_tgt = 0.0, [], []
    for b in range(B):
        logits, h = model(tok[b, :T])
        diff = max(diff, (logits - first.logits[b]).abs().max().item())
        if cfg.num_nextn_predict_layers:
            mtp_rows.append(model.mtp(tok[b, :T], logits, h)[:T - 1])
            mtp_tgt.append(tok[b, 2:])
    check("train forward logits vs inference Transformer", diff, 1e-12)
    if mtp_rows:
        ce = F.cross_entropy(torch.cat(mtp_rows), torch.cat(mtp_tgt)).item()
        check("MTP depth-1 loss vs inference Transformer.mtp", abs(ce - first.mtp_k[0].item()), 1e-12)
    f32 = tr.forward(model.to(torch.float32), tok, hp).total.item()
    check("float32 copy of the model: total loss (rel)", abs(f32 / first.total.item() - 1), 1e-5)


def check_float32_run(case, hp):
    """The whole N-step run again with the model in float32, as the C side runs it: the same
    routing at every step (so identical bias updates) and losses within float32 drift."""
    rec = run(case["cfg"], case["weights"], case["tok"], hp, torch.float32)
    if rec is None:
        check("float32 run: routing gaps stay above MARGIN", 1.0, 0.0)
        return
    g32, g64 = rec["grads"], case["grads"]
    err = max((g32[n].double() - g).abs().max().item() / max(g.abs().max().item(), 1e-30)
              for n, g in g64.items())
    check("float32 step-0 gradients (max diff / tensor's max)", err, 1e-4)
    rel = max(abs(a / b - 1) for a, b in zip(rec["losses"], case["losses"]))
    check(f"float32 {STEPS}-step run: total losses (max rel)", rel, 1e-4)
    b32 = {n: p for n, p in rec["model"].named_parameters() if n.endswith("correction_bias")}
    b64 = {n: p for n, p in case["model"].named_parameters() if n.endswith("correction_bias")}
    diff = max([(b32[n].double() - b64[n]).abs().max().item() for n in b64] + [0.0])
    check(f"float32 {STEPS}-step run: biases after", diff, 1e-6)


@torch.no_grad()
def check_balance_loss(case, hp):
    """The aux loss vs a per-token loop over each layer's recorded scores and choices."""
    cfg, first = case["cfg"], case["first"]
    B, T = case["tok"].shape[0], case["tok"].shape[1] - 1
    E, K, total = cfg.n_routed_experts, cfg.num_experts_per_tok, 0.0
    for s in first.moe:
        sc, idx = s.scores.tolist(), s.idx.tolist()
        layer = 0.0
        for b in range(B):
            rows = range(b * T, (b + 1) * T)
            P = [sum(sc[t][i] / sum(sc[t]) for t in rows) / T for i in range(E)]
            f = [E / (K * T) * sum(idx[t].count(i) for t in rows) for i in range(E)]
            layer += hp.alpha * sum(fi * pi for fi, pi in zip(f, P)) / B
        total += layer
    check("balance loss vs per-token loop", abs(total - first.aux.item()), 1e-15)

# ---------------------------------------------------------------------------- writing


def f32(tensors):
    return {n: st.encode(t.detach().to(torch.float32).numpy(), "F32") for n, t in tensors.items()}


def write_case(folder, config, case, hp, note):
    os.makedirs(folder, exist_ok=True)
    first, tok = case["first"], case["tok"]
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
    st.save_file(os.path.join(folder, "model.safetensors"),
                 {n: st.encode(w, "F32") for n, w in case["weights"].items()})
    tok.to(torch.int32).numpy().astype("<i4").tofile(os.path.join(folder, "tokens.bin"))
    st.save_file(os.path.join(folder, "grads.safetensors"), f32(case["grads"]))
    model = case["model"]
    after = {n: p for n, p in case["params"]}
    biases = {n: p for n, p in model.named_parameters() if n.endswith("e_score_correction_bias")}
    st.save_file(os.path.join(folder, "params_after.safetensors"), f32({**after, **biases}))
    B, T = tok.shape[0], tok.shape[1] - 1
    train = {
        "B": B, "T": T, "lambda": hp.lam, "alpha": hp.alpha, "gamma": hp.gamma, "lr": hp.lr,
        "wd": hp.wd, "clip": hp.clip, "betas": list(hp.betas), "eps": hp.eps, "steps": STEPS,
        "loss": first.main.item(), "mtp_loss": first.mtp.item(), "aux_loss": first.aux.item(),
        "total_loss": first.total.item(), "grad_norm": case["grad_norms"][0],
        "mtp_loss_k": [x.item() for x in first.mtp_k],
        "losses": case["losses"], "main_losses": case["main_losses"],
        "mtp_losses": case["mtp_losses"], "aux_losses": case["aux_losses"],
        "grad_norms": case["grad_norms"],
        "biases_after": {n: b.tolist() for n, b in biases.items()},
        "seed": case["seed"], "min_routing_gap": case["gap"], "note": note}
    with open(os.path.join(folder, "train.json"), "w") as f:
        json.dump(train, f, indent=1)


def main(outdir):
    t0 = time.time()
    torch.set_num_threads(1)
    for name, (config, B, T, hp, seed, note) in CASES.items():
        case = build(config, B, T, hp, seed)
        print(f"{name:11s} seed {case['seed']}  min routing gap {case['gap']:.1e}  total "
              f"{case['losses'][0]:.4f} -> {case['losses'][-1]:.4f}  grad norm "
              f"{case['grad_norms'][0]:.3f} (clip {hp.clip})  aux {case['aux_losses'][0]:.4f}")
        check_finite_differences(case, hp)
        check_against_inference(case, hp)
        check_balance_loss(case, hp)
        check_float32_run(case, hp)
        write_case(os.path.join(outdir, name), config, case, hp, note)
    with open(os.path.join(outdir, "cases.txt"), "w") as f:
        f.write("\n".join(CASES) + "\n")
    print(f"{'FAILED: ' + ', '.join(failures) if failures else 'all checks passed'} "
          f"({time.time() - t0:.1f} s)")
    return 1 if failures else 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: gen_train_cases.py OUTDIR")
    sys.exit(main(sys.argv[1]))
