"""train_torch.py - the PyTorch training peer for deepc's training benchmark.

    /usr/bin/python3 bench/train_torch.py --threads N --steps S [--preset train-bench]

Trains a random-weight model of the preset's shape on one fixed batch of random tokens with the
tests/ref reference model cast to float32 and tests/ref/train_ref.py's step: autograd through the
main loss (plus the sequence-wise balance loss when --alpha > 0), global-norm clipping, AdamW
(betas 0.9/0.95, 2-D weights decayed), then the aux-loss-free bias update. The MoE groups tokens
per expert (one batched call per expert, as DeepSeek's inference/model.py does); attention runs
per sequence. `--warmup` steps (default 2) are excluded from the timing. Prints one line:

    torch train-bench: N threads, X tokens/s (Y s/step)
"""
import argparse
import os
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "ref"))
import train_ref as tr                                      # noqa: E402
from deepseek_ref import Config, Transformer                # noqa: E402

PRESETS = {
    # BENCHMARKS.md's train-bench: batch 8 x 256 tokens, f32, AdamW, main loss, bias update on.
    "train-bench": dict(
        config=dict(vocab_size=4096, hidden_size=256, intermediate_size=1024,
                    moe_intermediate_size=256, num_hidden_layers=4, num_nextn_predict_layers=0,
                    num_attention_heads=8, q_lora_rank=128, kv_lora_rank=64, qk_nope_head_dim=32,
                    qk_rope_head_dim=16, v_head_dim=32, n_routed_experts=16, num_experts_per_tok=2,
                    n_shared_experts=1, first_k_dense_replace=1, n_group=4, topk_group=2,
                    topk_method="noaux_tc", scoring_func="sigmoid", norm_topk_prob=True,
                    routed_scaling_factor=2.5, rope_scaling=None),
        batch=8, seq=256),
}


def init_(model, gen):
    """Random weights: matrices N(0, 1/fan_in), embeddings N(0, 1), norms 1, bias 0."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("e_score_correction_bias"):
                p.zero_()
            elif p.dim() == 1:
                p.fill_(1.0)
            elif name.endswith("embed_tokens.weight"):
                p.normal_(0.0, 1.0, generator=gen)
            else:
                p.normal_(0.0, p.shape[1] ** -0.5, generator=gen)


def main(argv=None):
    ap = argparse.ArgumentParser(description="PyTorch training throughput on a deepc shape")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=5, help="timed steps")
    ap.add_argument("--warmup", type=int, default=2, help="untimed steps first")
    ap.add_argument("--preset", default="train-bench", choices=sorted(PRESETS))
    ap.add_argument("--batch", type=int, help="override the preset's batch size")
    ap.add_argument("--seq", type=int, help="override the preset's tokens per sequence")
    ap.add_argument("--alpha", type=float, default=0.0, help="balance loss weight (0: off)")
    ap.add_argument("--gamma", type=float, default=1e-3, help="bias update speed")
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    torch.set_num_threads(args.threads)
    preset = PRESETS[args.preset]
    B, T = args.batch or preset["batch"], args.seq or preset["seq"]
    cfg = Config.from_dict(preset["config"])
    gen = torch.Generator().manual_seed(args.seed)
    model = Transformer(cfg).to(torch.float32).train()
    init_(model, gen)
    hp = tr.Hyper(alpha=args.alpha, gamma=args.gamma, lr=args.lr, wd=0.1, clip=1.0)
    params = tr.trainable(model)
    opt = tr.make_optimizer(params, hp)
    tok = torch.randint(0, cfg.vocab_size, (B, T + 1), generator=gen)

    for _ in range(args.warmup):
        tr.train_step(model, params, opt, tok, hp)
    t0 = time.perf_counter()
    for _ in range(args.steps):
        tr.train_step(model, params, opt, tok, hp)
    dt = (time.perf_counter() - t0) / max(args.steps, 1)
    print(f"torch {args.preset}: {args.threads} threads, {B * T / dt:.0f} tokens/s ({dt:.2f} s/step)")


if __name__ == "__main__":
    main()
