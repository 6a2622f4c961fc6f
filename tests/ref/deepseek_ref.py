"""deepseek_ref.py - a float64 PyTorch reference of DeepSeek-V2 / V2-Lite / V3 / R1, for golden numbers.

Sources: DeepSeek-V2 paper (arXiv:2405.04434) §2.1 MLA, §2.1.3 decoupled RoPE, §2.2 DeepSeekMoE,
appendix C (absorbed MLA); DeepSeek-V3 report (arXiv:2412.19437) §2.1.1 MLA, §2.1.2 gate with
aux-loss-free bias, §2.2 MTP; YaRN (arXiv:2309.00071) as configured by `rope_scaling`. Where a paper
and the official checkpoints differ, the checkpoints win (HF names, config fields, gate details).

Every module's state_dict() key is the Hugging Face tensor name, so a checkpoint loads with
load_state_dict(strict=True). Everything computes in float64.

Shapes: T tokens in this call, S = tokens cached so far plus T, C hidden_size, H heads,
dn qk_nope_head_dim, dr qk_rope_head_dim, dv v_head_dim, r kv_lora_rank, E routed experts,
K experts per token, V vocab_size.

CLI:  python3 deepseek_ref.py --model DIR --ids 1,2,3 --out FILE.f32 [--mtp]
writes float32 little-endian logits [T, V], row-major (with --mtp: the depth-1 MTP head's logits,
see Transformer.mtp for the convention).
"""
import argparse
import json
import math
import os
from dataclasses import dataclass, fields
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

import st

F64 = torch.float64

# ---------------------------------------------------------------------------- config


@dataclass
class Config:
    """The config.json fields the forward pass reads; names and meaning as in HF's config."""
    vocab_size: int
    hidden_size: int                  # C
    intermediate_size: int            # dense SwiGLU width
    moe_intermediate_size: int        # width of one expert
    num_hidden_layers: int            # L main blocks
    num_attention_heads: int          # H
    kv_lora_rank: int                 # r: compressed KV latent
    qk_nope_head_dim: int
    qk_rope_head_dim: int
    v_head_dim: int
    n_routed_experts: int = 0         # E (0: every layer dense)
    num_experts_per_tok: int = 0      # K
    q_lora_rank: Optional[int] = None  # None: plain q_proj
    num_nextn_predict_layers: int = 0  # D MTP modules, stored as layers L..L+D-1
    n_shared_experts: int = 0
    first_k_dense_replace: int = 0
    moe_layer_freq: int = 1
    n_group: int = 1
    topk_group: int = 1
    topk_method: str = "greedy"       # "greedy" | "group_limited_greedy" | "noaux_tc"
    scoring_func: str = "softmax"     # "softmax" | "sigmoid"
    norm_topk_prob: bool = False
    routed_scaling_factor: float = 1.0
    rms_norm_eps: float = 1e-6
    rope_theta: float = 10000.0
    rope_scaling: Optional[dict] = None
    quantization_config: Optional[dict] = None

    @classmethod
    def from_dict(cls, d):
        """Known fields of a config.json dict; missing or null ones take the HF class defaults
        (V3's gate defaults for model_type deepseek_v3)."""
        if d.get("tie_word_embeddings"):
            raise ValueError("tie_word_embeddings: DeepSeek checkpoints never tie lm_head")
        known = {f.name: d[f.name] for f in fields(cls) if d.get(f.name) is not None}
        if d.get("model_type") == "deepseek_v3":
            known = {"topk_method": "noaux_tc", "scoring_func": "sigmoid", "norm_topk_prob": True,
                     **known}
        if known.get("topk_method") == "gready":   # the misspelt default of HF's DeepseekV2Config
            known["topk_method"] = "greedy"
        return cls(**known)

    def is_moe(self, i):
        """Layer i (MTP modules included) uses DeepSeekMoE rather than a dense MLP."""
        return (self.n_routed_experts > 0 and i >= self.first_k_dense_replace
                and i % self.moe_layer_freq == 0)


def linear(n_in, n_out):
    """Bias-free float64 Linear, weight [n_out, n_in] as in HF."""
    return nn.Linear(n_in, n_out, bias=False, dtype=F64)

# ---------------------------------------------------------------------------- norm, rope


class RMSNorm(nn.Module):
    """x / sqrt(mean(x^2) + eps) * w."""

    def __init__(self, dim, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim, dtype=F64))
        self.eps = eps

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def yarn_mscale(factor, m):
    """YaRN attention-temperature correction 0.1 * m * ln(factor) + 1 (1 when not scaling up)."""
    return 0.1 * m * math.log(factor) + 1.0 if factor > 1 else 1.0


class Rope:
    """Decoupled RoPE (V2 §2.1.3) on the dr rope dims, with YaRN when rope_scaling is set.

    Adjacent pairs (2i, 2i+1) rotate by pos * inv_freq[i], inv_freq[i] = theta^(-2i/dr), as the
    official inference/model.py does with view_as_complex (HF's rotate_half on de-interleaved
    dims is the same rotation up to a permutation shared by q and k, so the scores agree).
    YaRN (HF DeepseekV3YarnRotaryEmbedding): dims that turn fewer than beta_slow times over the
    original context are interpolated (inv_freq / factor), those turning more than beta_fast times
    kept, a linear ramp between; cos/sin are scaled by mscale(mscale)/mscale(mscale_all_dim) and
    the softmax scale by mscale(mscale_all_dim)^2."""

    def __init__(self, cfg):
        d, base = cfg.qk_rope_head_dim, cfg.rope_theta
        inv_freq = base ** (-torch.arange(0, d, 2, dtype=F64) / d)
        self.scale = 1.0
        self.softmax_scale = (cfg.qk_nope_head_dim + d) ** -0.5
        rs = cfg.rope_scaling
        if rs:
            if rs.get("type", rs.get("rope_type")) != "yarn":
                raise ValueError(f"rope_scaling type {rs.get('type')} is not supported")
            factor, orig = rs["factor"], rs["original_max_position_embeddings"]

            def corr_dim(n_rot):  # the dim index whose wavelength fits n_rot times in orig
                return d * math.log(orig / (n_rot * 2 * math.pi)) / (2 * math.log(base))
            low = max(math.floor(corr_dim(rs.get("beta_fast", 32))), 0)
            high = min(math.ceil(corr_dim(rs.get("beta_slow", 1))), d - 1)
            if low == high:
                high += 0.001
            ramp = ((torch.arange(d // 2, dtype=F64) - low) / (high - low)).clamp(0, 1)
            inv_freq = inv_freq / factor * ramp + inv_freq * (1 - ramp)
            m_all = yarn_mscale(factor, rs.get("mscale_all_dim", 0))
            self.scale = yarn_mscale(factor, rs.get("mscale", 1)) / m_all
            self.softmax_scale *= m_all * m_all
        self.inv_freq = inv_freq

    def __call__(self, x, pos):
        """x (T, dr) or (T, H, dr); pos (T,) absolute positions. Angles are computed in float64,
        cos/sin then cast to x's dtype (so a model cast with .float() runs in float32)."""
        angle = pos[:, None].to(F64) * self.inv_freq             # (T, dr/2)
        cos, sin = (angle.cos() * self.scale).to(x.dtype), (angle.sin() * self.scale).to(x.dtype)
        if x.dim() == 3:
            cos, sin = cos[:, None], sin[:, None]
        x0, x1 = x.unflatten(-1, (-1, 2)).unbind(-1)
        return torch.stack([x0 * cos - x1 * sin, x0 * sin + x1 * cos], -1).flatten(-2)

# ---------------------------------------------------------------------------- attention


class MLA(nn.Module):
    """Multi-head latent attention (V2 §2.1, V3 §2.1.1).

    q = q_b(norm(q_a(x))) (or q_proj(x)) -> per head [q_nope dn | q_pe dr].
    kv_a_proj_with_mqa(x) -> [c r | k_pe dr]; c = kv_a_layernorm(c); k_pe is one rope key
    shared by all heads. kv_b_proj(c) -> per head [k_nope dn | v dv].
    The cache holds only c and the roped k_pe per token (V2 appendix C). `absorbed` folds
    kv_b_proj into the query (q_nope @ W_uk) and output (latent @ W_uv) instead of expanding
    every cached latent; both paths give the same numbers."""

    def __init__(self, cfg, rope):
        super().__init__()
        C, H = cfg.hidden_size, cfg.num_attention_heads
        self.H, self.r = H, cfg.kv_lora_rank
        self.dn, self.dr, self.dv = cfg.qk_nope_head_dim, cfg.qk_rope_head_dim, cfg.v_head_dim
        self.q_lora = bool(cfg.q_lora_rank)
        if self.q_lora:
            self.q_a_proj = linear(C, cfg.q_lora_rank)
            self.q_a_layernorm = RMSNorm(cfg.q_lora_rank, cfg.rms_norm_eps)
            self.q_b_proj = linear(cfg.q_lora_rank, H * (self.dn + self.dr))
        else:
            self.q_proj = linear(C, H * (self.dn + self.dr))
        self.kv_a_proj_with_mqa = linear(C, self.r + self.dr)
        self.kv_a_layernorm = RMSNorm(self.r, cfg.rms_norm_eps)
        self.kv_b_proj = linear(self.r, H * (self.dn + self.dv))
        self.o_proj = linear(H * self.dv, C)
        self.rope = rope

    def new_cache(self, dtype=F64):
        """An empty cache: c (0, r) and k_pe (0, dr); forward appends to it."""
        return {"c": torch.zeros(0, self.r, dtype=dtype), "pe": torch.zeros(0, self.dr, dtype=dtype)}

    def forward(self, x, cache, absorbed=False):
        """x (T, C) at positions len(cache)..len(cache)+T-1 -> (T, C); appends to cache."""
        T, start = x.shape[0], cache["c"].shape[0]
        pos = torch.arange(start, start + T)
        if self.q_lora:
            q = self.q_b_proj(self.q_a_layernorm(self.q_a_proj(x)))
        else:
            q = self.q_proj(x)
        q_nope, q_pe = q.view(T, self.H, -1).split([self.dn, self.dr], -1)   # (T,H,dn), (T,H,dr)
        q_pe = self.rope(q_pe, pos)
        c, k_pe = self.kv_a_proj_with_mqa(x).split([self.r, self.dr], -1)
        cache["c"] = c = torch.cat([cache["c"], self.kv_a_layernorm(c)])     # (S, r)
        cache["pe"] = k_pe = torch.cat([cache["pe"], self.rope(k_pe, pos)])  # (S, dr)
        if absorbed:  # V2 appendix C: W_uk folded into the query, W_uv into the output
            w_uk, w_uv = self.kv_b_proj.weight.view(self.H, -1, self.r).split([self.dn, self.dv], 1)
            q_lat = torch.einsum("thd,hdc->thc", q_nope, w_uk)               # (T, H, r)
            scores = torch.einsum("thc,sc->ths", q_lat, c)
        else:         # every cached latent expanded to per-head keys and values
            k_nope, v = self.kv_b_proj(c).view(-1, self.H, self.dn + self.dv).split([self.dn, self.dv], -1)
            scores = torch.einsum("thd,shd->ths", q_nope, k_nope)
        scores = (scores + torch.einsum("thr,sr->ths", q_pe, k_pe)) * self.rope.softmax_scale
        causal = torch.arange(c.shape[0])[None, :] > pos[:, None]            # (T, S)
        p = scores.masked_fill(causal[:, None, :], -math.inf).softmax(-1)    # (T, H, S)
        if absorbed:
            out = torch.einsum("thc,hdc->thd", torch.einsum("ths,sc->thc", p, c), w_uv)
        else:
            out = torch.einsum("ths,shd->thd", p, v)                         # (T, H, dv)
        return self.o_proj(out.reshape(T, self.H * self.dv))

# ---------------------------------------------------------------------------- feed-forward


class MLP(nn.Module):
    """SwiGLU: down(silu(gate(x)) * up(x)); the dense layers, each expert, the shared experts."""

    def __init__(self, dim, inter):
        super().__init__()
        self.gate_proj, self.up_proj = linear(dim, inter), linear(dim, inter)
        self.down_proj = linear(inter, dim)

    def forward(self, x):
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class Gate(nn.Module):
    """Router (V2 §2.2, V3 §2.1.2; official inference/model.py Gate.forward).

    scores = sigmoid or softmax of x @ W^T. The V3 bias e_score_correction_bias (noaux_tc) is
    added for CHOOSING only. Group-limited routing keeps the topk_group best of n_group groups,
    a group scoring its max (no bias) or the sum of its two best biased scores (bias). The K
    chosen experts are weighted by their original scores, normalised when norm_topk_prob (and
    K > 1), then times routed_scaling_factor."""

    def __init__(self, cfg):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(cfg.n_routed_experts, cfg.hidden_size, dtype=F64))
        bias = torch.zeros(cfg.n_routed_experts, dtype=F64) if cfg.topk_method == "noaux_tc" else None
        self.e_score_correction_bias = None if bias is None else nn.Parameter(bias)
        self.cfg = cfg

    def select(self, x):
        """x (T, C) -> scores (T, E), choice (T, E) with dropped groups at -inf,
        group scores (T, n_group) or None when there is no grouping."""
        cfg, logits = self.cfg, F.linear(x, self.weight)
        scores = logits.sigmoid() if cfg.scoring_func == "sigmoid" else logits.softmax(-1)
        bias = self.e_score_correction_bias
        choice = scores if bias is None else scores + bias
        if cfg.topk_method == "greedy" or cfg.n_group <= 1:
            return scores, choice, None
        grouped = choice.view(x.shape[0], cfg.n_group, -1)                  # (T, G, E/G)
        groups = grouped.amax(-1) if bias is None else grouped.topk(2, -1).values.sum(-1)
        keep = groups.topk(cfg.topk_group, -1).indices
        drop = torch.ones_like(groups, dtype=torch.bool).scatter(1, keep, False)
        return scores, grouped.masked_fill(drop[..., None], -math.inf).flatten(1), groups

    def forward(self, x):
        """x (T, C) -> weights (T, K), expert indices (T, K)."""
        return self.route(x)[:2]

    def route(self, x):
        """forward, plus the scores (T, E) that training's balance loss reads. The weights carry
        the gradient of the chosen scores; the choice itself (and so the bias) carries none."""
        scores, choice, _ = self.select(x)
        idx = choice.topk(self.cfg.num_experts_per_tok, -1).indices
        w = scores.gather(1, idx)
        if self.cfg.norm_topk_prob and idx.shape[1] > 1:
            w = w / (w.sum(-1, keepdim=True) + 1e-20)
        return w * self.cfg.routed_scaling_factor, idx, scores


class MoE(nn.Module):
    """DeepSeekMoE (V2 §2.2): sum_k w_k * expert_{idx_k}(x) + shared_experts(x)."""

    def __init__(self, cfg):
        super().__init__()
        C, inter = cfg.hidden_size, cfg.moe_intermediate_size
        self.gate = Gate(cfg)
        self.experts = nn.ModuleList(MLP(C, inter) for _ in range(cfg.n_routed_experts))
        self.shared_experts = MLP(C, inter * cfg.n_shared_experts) if cfg.n_shared_experts else None

    def forward(self, x):
        w, idx = self.gate(x)
        return self.mix(x, w, idx)

    def mix(self, x, w, idx):
        """x (T, C), weights (T, K), experts (T, K) -> (T, C). Tokens are grouped per expert: one
        batched call per expert that has any (training calls this after gate.route)."""
        y = torch.zeros_like(x)
        for e, expert in enumerate(self.experts):
            tok, slot = (idx == e).nonzero(as_tuple=True)
            if tok.numel():
                y.index_add_(0, tok, w[tok, slot, None] * expert(x[tok]))
        return y if self.shared_experts is None else y + self.shared_experts(x)

# ---------------------------------------------------------------------------- blocks, model


class Block(nn.Module):
    """Pre-norm decoder block: h = x + attn(norm(x)); out = h + ffn(norm(h))."""

    def __init__(self, cfg, i, rope):
        super().__init__()
        self.input_layernorm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)
        self.self_attn = MLA(cfg, rope)
        self.post_attention_layernorm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)
        self.mlp = MoE(cfg) if cfg.is_moe(i) else MLP(cfg.hidden_size, cfg.intermediate_size)

    def forward(self, x, cache, absorbed=False):
        h = x + self.self_attn(self.input_layernorm(x), cache, absorbed)
        return h + self.mlp(self.post_attention_layernorm(h))


class SharedHead(nn.Module):
    """The MTP module's own output head: head(norm(x))."""

    def __init__(self, cfg):
        super().__init__()
        self.norm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)
        self.head = linear(cfg.hidden_size, cfg.vocab_size)

    def forward(self, x):
        return self.head(self.norm(x))


class MTP(Block):
    """Multi-token prediction module (V3 §2.2), stored as layer L+k (a Block's tensors plus its own).

    input_i = eh_proj([enorm(embed(t_{i+1})) ; hnorm(h_i)]) (embedding first, as vLLM/SGLang
    load the official weights), then the block, then shared_head; row i predicts t_{i+2}."""

    def __init__(self, cfg, i, rope):
        super().__init__(cfg, i, rope)
        C = cfg.hidden_size
        self.embed_tokens = nn.Embedding(cfg.vocab_size, C, dtype=F64)
        self.enorm, self.hnorm = RMSNorm(C, cfg.rms_norm_eps), RMSNorm(C, cfg.rms_norm_eps)
        self.eh_proj = linear(2 * C, C)
        self.shared_head = SharedHead(cfg)

    def forward(self, next_ids, h, cache, absorbed=False):
        """next_ids (T,) the tokens after each position; h (T, C) previous depth's hidden -> (T, V)."""
        x = self.eh_proj(torch.cat([self.enorm(self.embed_tokens(next_ids)), self.hnorm(h)], -1))
        return self.shared_head(super().forward(x, cache, absorbed))


class Transformer(nn.Module):
    """DeepseekV3ForCausalLM / DeepseekV2ForCausalLM: embed -> L blocks -> norm -> lm_head.
    model.layers also holds the D MTP modules at indices L..L+D-1."""

    def __init__(self, cfg):
        super().__init__()
        rope, L = Rope(cfg), cfg.num_hidden_layers
        layers = [Block(cfg, i, rope) for i in range(L)]
        layers += [MTP(cfg, L + k, rope) for k in range(cfg.num_nextn_predict_layers)]
        self.model = nn.ModuleDict({
            "embed_tokens": nn.Embedding(cfg.vocab_size, cfg.hidden_size, dtype=F64),
            "layers": nn.ModuleList(layers),
            "norm": RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)})
        self.lm_head = linear(cfg.hidden_size, cfg.vocab_size)
        self.cfg = cfg

    def new_cache(self):
        """One empty MLA cache per layer (MTP modules included)."""
        return [layer.self_attn.new_cache() for layer in self.model["layers"]]

    def forward(self, ids, cache=None, absorbed=False):
        """ids (T,) following the tokens already in cache -> logits (T, V) and the hidden state
        after the final norm (T, C), which is what the MTP module reads."""
        cache = self.new_cache() if cache is None else cache
        x = self.model["embed_tokens"](ids)
        for layer, layer_cache in zip(self.model["layers"][:self.cfg.num_hidden_layers], cache):
            x = layer(x, layer_cache, absorbed)
        h = self.model["norm"](x)
        return self.lm_head(h), h

    def mtp(self, ids, logits, h):
        """Depth-1 MTP logits (T, V) for a full sequence ids (T,) given forward's logits and h.
        Row i reads t_{i+1} = ids[i+1]; the last row reads argmax(logits[T-1]) as its next token,
        as speculative decoding would. Positions start at 0."""
        mtp = self.model["layers"][self.cfg.num_hidden_layers]
        next_ids = torch.cat([ids[1:], logits[-1:].argmax(-1)])
        return mtp(next_ids, h, mtp.self_attn.new_cache())

# ---------------------------------------------------------------------------- loading, CLI


def model_from_weights(cfg, weights):
    """Build a Transformer from {HF name: float32 numpy array}; every tensor must be used."""
    model = Transformer(cfg)
    model.load_state_dict({k: torch.from_numpy(v).to(F64) for k, v in weights.items()}, strict=True)
    return model.eval()


def load_model(folder):
    """Load a HF-layout checkpoint folder (F32/BF16/F16/F8_E4M3, single file or sharded)."""
    with open(os.path.join(folder, "config.json")) as f:
        cfg = Config.from_dict(json.load(f))
    block = (cfg.quantization_config or {}).get("weight_block_size", [128, 128])
    return model_from_weights(cfg, st.dequantize(st.load_dir(folder), block))


@torch.no_grad()
def main(argv=None):
    ap = argparse.ArgumentParser(description="DeepSeek float64 reference: write logits as float32")
    ap.add_argument("--model", required=True, help="HF checkpoint folder")
    ap.add_argument("--ids", required=True, help="comma-separated token ids")
    ap.add_argument("--out", required=True, help="output file, float32 little-endian [T, vocab]")
    ap.add_argument("--mtp", action="store_true", help="write the depth-1 MTP head's logits instead")
    args = ap.parse_args(argv)
    model = load_model(args.model)
    ids = torch.tensor([int(t) for t in args.ids.split(",")])
    logits, h = model(ids)
    if args.mtp:
        if not model.cfg.num_nextn_predict_layers:
            raise SystemExit("--mtp: the checkpoint has no MTP module (num_nextn_predict_layers = 0)")
        logits = model.mtp(ids, logits, h)
    logits.to(torch.float32).numpy().astype("<f4").tofile(args.out)


if __name__ == "__main__":
    main()
