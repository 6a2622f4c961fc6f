"""gen_post_cases.py OUTDIR - post-training losses (GRPO, SFT, distillation) on tiny random
DeepSeek models, with float64 reference losses and gradients for src/train/loss.c.

Each case OUTDIR/<name>/ holds:
  config.json, model.safetensors   the model (F32; gen_train_cases' V3 shape: q-LoRA, sigmoid
                                   noaux_tc gate with a bias, YaRN, an MTP module, unused here)
  tokens.bin                       int32 (B, T+1); rows shorter than T+1 are padded with id 1
  post.json                        the loss's inputs per position n = b*T + i (predicting
                                   tok[b][i+1]) and the expected numbers (below)
  grads.safetensors                F32 gradient of sum_n w_n l_n for every trainable parameter
and OUTDIR/cases.txt lists the names.

Losses (loss.h), from the main head's logits z at each position, lp = log_softmax(z)[y]:
  grpo  r = exp(lp - old_lp), l = -min(r A, clip(r, 1 - eps_low, 1 + eps_high) A) + beta k3,
        k3 = exp(ref_lp - lp) - (ref_lp - lp) - 1
  sft   l = -lp
  kd    l = (1 - alpha)(-lp) + alpha tau^2 sum_j pt_j (log pt_j - log q_{u_j}),
        pt = softmax(zt / tau) over the teacher's k entries, q = softmax(z / tau)
The objective is sum_n w_n l_n; w is 0 at padding and (for GRPO and SFT) at prompt positions.
Weights: token mean (w = 1 / all response tokens) or per-sequence mean (w = 1 / (rows * the
row's response tokens)), GRPO's two normalisations. old_lp = lp + U(-0.6, 0.6) and advantages
of both signs, so both clip sides are active (post.json counts the clipped positions of each
side); ref_lp = lp + N(0, 0.3).

post.json: kind, B, T, w, adv, old_lp, ref_lp, eps_low, eps_high, beta, kd_k, kd_ids,
kd_logits, kd_temp, kd_alpha (those that apply), and loss (sum w l), logp (per position),
clipped_low / clipped_high (counts), seed, note. No MTP, no balance loss (lambda = alpha = 0).
Routing is decisive (gaps > 1e-4) and, for GRPO, both clip sides active, or the case is
reseeded. Checked before writing: autograd
against central differences of the objective on a few parameters.
"""
import json
import os
import sys

import numpy as np
import torch

import st
import train_ref as tr
from deepseek_ref import Config, Transformer, model_from_weights
from gen_train_cases import V3, initial_weights, routing_gap

MARGIN = 1e-4
B, T = 4, 9
LENS = [10, 7, 9, 5]            # tokens per row (T + 1 = 10); the rest is padding
PROMPT = [3, 2, 4, 2]           # prompt tokens per row: positions i < PROMPT-1 carry no loss
HP = tr.Hyper(lam=0.0, alpha=0.0, gamma=0.0, lr=0.0, wd=0.0, clip=0.0)

CASES = {
    "grpo_token": dict(kind="grpo", norm="token", beta=0.04, seed=100,
                       note="GRPO, token-level mean (DAPO), k3 KL with beta 0.04, both clip sides"),
    "grpo_seq": dict(kind="grpo", norm="seq", beta=0.04, seed=200,
                     note="GRPO, per-sequence mean (the original GRPO), k3 KL with beta 0.04"),
    "grpo_nokl": dict(kind="grpo", norm="token", beta=0.0, seed=300,
                      note="GRPO, token mean, beta 0 (no KL term, DAPO's default)"),
    "sft": dict(kind="sft", norm="token", seed=400, note="SFT: CE on the response positions, token mean"),
    "kd": dict(kind="kd", norm="token", seed=500, kd_k=5, kd_temp=2.0, kd_alpha=0.7,
               note="distillation: 0.3 CE + 0.7 tau^2 KL to the teacher's top-5 at tau 2"),
}


def masks():
    """w-shaped 0/1 mask of the loss positions (response tokens) and the row counts."""
    m = np.zeros((B, T))
    for b in range(B):
        m[b, PROMPT[b] - 1:LENS[b] - 1] = 1
    return m


def weights_for(norm):
    m = masks()
    if norm == "token":
        return m / m.sum()
    return m / (B * m.sum(1, keepdims=True))


def token_losses(logits, tok, spec):
    """Per-position loss (B, T) and lp (B, T) from logits (B, T, V), all float64 with grad."""
    lsm = torch.log_softmax(logits, -1)
    lp = lsm.gather(-1, tok[:, 1:].unsqueeze(-1)).squeeze(-1)
    if spec["kind"] == "sft":
        return -lp, lp
    if spec["kind"] == "kd":
        tau, a = spec["kd_temp"], spec["kd_alpha"]
        ids, zt = spec["kd_ids_t"], spec["kd_logits_t"]
        lpt = torch.log_softmax(zt / tau, -1)
        lq = torch.log_softmax(logits / tau, -1).gather(-1, ids)
        kl = (lpt.exp() * (lpt - lq)).sum(-1)
        return (1 - a) * (-lp) + a * tau * tau * kl, lp
    adv, old, ref = spec["adv_t"], spec["old_t"], spec["ref_t"]
    r = torch.exp(lp - old)
    rc = torch.clamp(r, 1 - spec["eps_low"], 1 + spec["eps_high"])
    pg = -torch.minimum(r * adv, rc * adv)
    d = ref - lp
    k3 = torch.exp(d) - d - 1
    return pg + spec["beta"] * k3, lp


def objective(model, tok, spec, w):
    out = tr.forward(model, tok, HP)
    l, lp = token_losses(out.logits, tok, spec)
    return (w * l).sum(), lp, out


def make_inputs(spec, lp, rng, V):
    """The loss's fixed inputs around the current log-probs lp (B, T)."""
    if spec["kind"] == "grpo":
        rows = np.array([1.2, -0.7, 0.4, -1.5])
        spec["adv"] = np.repeat(rows[:, None], T, 1) * masks()
        spec["old_lp"] = lp + rng.uniform(-0.6, 0.6, (B, T))
        spec["ref_lp"] = lp + rng.normal(0, 0.3, (B, T))
        spec["eps_low"], spec["eps_high"] = 0.2, 0.28
        spec["adv_t"] = torch.tensor(spec["adv"])
        spec["old_t"] = torch.tensor(spec["old_lp"])
        spec["ref_t"] = torch.tensor(spec["ref_lp"])
    if spec["kind"] == "kd":
        k = spec["kd_k"]
        ids = np.stack([[rng.choice(V, k, replace=False) for _ in range(T)] for _ in range(B)])
        spec["kd_ids"], spec["kd_logits"] = ids, rng.normal(0, 2.0, (B, T, k))
        spec["kd_ids_t"] = torch.tensor(ids)
        spec["kd_logits_t"] = torch.tensor(spec["kd_logits"])


def build(name, spec):
    cfg = Config.from_dict(V3)
    shapes = Transformer(cfg)
    for s in range(spec["seed"], spec["seed"] + 200):
        rng = np.random.default_rng(s)
        weights = initial_weights(shapes, rng)
        tok = rng.integers(2, cfg.vocab_size, (B, T + 1))
        for b in range(B):
            tok[b, LENS[b]:] = 1
        tok = torch.from_numpy(tok)
        model = model_from_weights(cfg, weights).double()
        params = tr.trainable(model)
        with torch.no_grad():
            out = tr.forward(model, tok, HP)
        if routing_gap(out.moe, cfg) <= MARGIN:
            continue
        lp0 = torch.log_softmax(out.logits, -1).gather(-1, tok[:, 1:].unsqueeze(-1)).squeeze(-1).numpy()
        make_inputs(spec, lp0, rng, cfg.vocab_size)
        if spec["kind"] == "grpo":  # both clip sides active, or another draw
            r, m = np.exp(lp0 - spec["old_lp"]), masks() > 0
            if not (((r < 1 - spec["eps_low"]) & (spec["adv"] < 0) & m).any()
                    and ((r > 1 + spec["eps_high"]) & (spec["adv"] > 0) & m).any()):
                continue
        w = torch.tensor(weights_for(spec["norm"]))
        total, lp, _ = objective(model, tok, spec, w)
        total.backward()
        grads = {n: (p.grad if p.grad is not None else torch.zeros_like(p)).detach().clone() for n, p in params}
        return dict(cfg=cfg, weights=weights, tok=tok, w=w, total=total.item(), lp=lp.detach().numpy(),
                    grads=grads, model=model, seed=s)
    raise RuntimeError(f"{name}: no seed keeps the routing decisive")


failures = []


@torch.no_grad()
def check_fd(name, case, spec, eps=1e-6):
    """Autograd vs central differences of the objective at the largest-gradient entry of a few
    parameters."""
    model = model_from_weights(case["cfg"], case["weights"]).double()
    params = dict(model.named_parameters())
    worst = 0.0
    for pn in ["lm_head.weight", "model.embed_tokens.weight", "model.layers.1.mlp.gate.weight",
               "model.layers.0.self_attn.kv_b_proj.weight", "model.layers.2.mlp.experts.3.up_proj.weight"]:
        g = case["grads"][pn]
        j = int(g.abs().argmax())
        p = params[pn].view(-1)
        keep = p[j].item()
        p[j] = keep + eps
        up = objective(model, case["tok"], spec, case["w"])[0].item()
        p[j] = keep - eps
        down = objective(model, case["tok"], spec, case["w"])[0].item()
        p[j] = keep
        fd, ad = (up - down) / (2 * eps), g.view(-1)[j].item()
        worst = max(worst, abs(fd - ad) / max(abs(ad), 1e-4))
    ok = worst < 1e-5
    print(f"    {'ok  ' if ok else 'FAIL'} {name}: autograd vs finite differences (5 params, rel) {worst:.1e}")
    if not ok:
        failures.append(name)


def write(folder, name, spec, case):
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump(V3, f, indent=2)
    st.save_file(os.path.join(folder, "model.safetensors"),
                 {n: st.encode(w, "F32") for n, w in case["weights"].items()})
    case["tok"].to(torch.int32).numpy().astype("<i4").tofile(os.path.join(folder, "tokens.bin"))
    st.save_file(os.path.join(folder, "grads.safetensors"),
                 {n: st.encode(g.to(torch.float32).numpy(), "F32") for n, g in case["grads"].items()})
    flat = lambda a: [float(x) for x in np.asarray(a).reshape(-1)]
    post = dict(kind=spec["kind"], norm=spec["norm"], B=B, T=T, w=flat(case["w"]), loss=case["total"],
                logp=flat(case["lp"]), seed=case["seed"], note=spec["note"])
    if spec["kind"] == "grpo":
        r = np.exp(case["lp"] - spec["old_lp"])
        adv, m = spec["adv"], masks() > 0
        post.update(adv=flat(adv), old_lp=flat(spec["old_lp"]), ref_lp=flat(spec["ref_lp"]),
                    eps_low=spec["eps_low"], eps_high=spec["eps_high"], beta=spec["beta"],
                    clipped_low=int(((r < 1 - spec["eps_low"]) & (adv < 0) & m).sum()),
                    clipped_high=int(((r > 1 + spec["eps_high"]) & (adv > 0) & m).sum()))
    if spec["kind"] == "kd":
        post.update(kd_k=spec["kd_k"], kd_ids=[int(x) for x in spec["kd_ids"].reshape(-1)],
                    kd_logits=flat(spec["kd_logits"]), kd_temp=spec["kd_temp"], kd_alpha=spec["kd_alpha"])
    with open(os.path.join(folder, "post.json"), "w") as f:
        json.dump(post, f, indent=1)
    return post


def main(outdir):
    torch.set_num_threads(1)
    for name, spec in CASES.items():
        case = build(name, spec)
        post = write(os.path.join(outdir, name), name, spec, case)
        extra = (f"  clipped {post['clipped_low']} low / {post['clipped_high']} high"
                 if spec["kind"] == "grpo" else "")
        print(f"{name:11s} seed {case['seed']}  objective {case['total']:+.6f}{extra}")
        if spec["kind"] == "grpo" and (post["clipped_low"] == 0 or post["clipped_high"] == 0):
            print(f"    FAIL {name}: a clip side is not active")
            failures.append(name)
        check_fd(name, case, spec)
    with open(os.path.join(outdir, "cases.txt"), "w") as f:
        f.write("\n".join(CASES) + "\n")
    print("FAILED: " + ", ".join(failures) if failures else "all checks passed")
    return 1 if failures else 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: gen_post_cases.py OUTDIR")
    sys.exit(main(sys.argv[1]))
