"""train_ref.py - the training-time pieces of the reference: batched forward with the losses,
AdamW, gradient clipping and the aux-loss-free bias update. The model itself is deepseek_ref's
Transformer (its modules, HF names and forward pieces); nothing here re-implements a layer.

Sources: DeepSeek-V3 report (arXiv:2412.19437) §2.1.2 (aux-loss-free balancing: bias update,
eq. 17-20 sequence-wise balance loss), §2.2 (MTP, eq. 21-25), §4.2 (AdamW, betas 0.9/0.95).

Batch: tok (B, T+1) integer ids; inputs x = tok[:, :T], targets y = tok[:, 1:]. Each sequence is
independent: causal attention inside it, RoPE positions 0..T-1.

  main     = mean cross-entropy of lm_head(model.norm(h_L)) against y over the B*T positions
  MTP k    (k = 1..D, module k is model.layers[L+k-1]) with the MAIN embed_tokens and lm_head:
             u_i = eh_proj([enorm(embed(tok[b, min(i+k, T)])) ; hnorm(hprev_i)]),
             hprev = the main model's final-normed hidden (k = 1) or module k-1's block output
             (before its shared_head.norm); out = block(u) over the sequence;
             logits = lm_head(shared_head.norm(out)); target tok[b, i+k+1] for i <= T-k-1;
             loss_k = mean CE over those B*(T-k) positions; mtp = mean_k loss_k (0 when D = 0)
  aux      for every MoE layer (main and MTP blocks), per sequence b over its T tokens:
             s' = s / sum_j s_j (s the gate's sigmoid or softmax scores), P_i = mean_t s'_{i,t},
             f_i = E / (K*T) * #{t : t chose i} (a constant), L_b = alpha * sum_i f_i P_i;
             layer aux = mean_b L_b; aux = sum over MoE layers
  total    = main + lambda * mtp + aux

Gradients flow through the chosen experts' weights (normalised and scaled as in the forward) and
through the aux loss's P; the top-k choice and e_score_correction_bias get none (the bias is kept
out of the trainable set). The MTP modules' own embed_tokens / shared_head.head are not trained:
the main ones are used, and tie_mtp_copies() copies them back so the Transformer stays loadable.

Step (train_step): forward, backward, every trainable parameter gets a gradient tensor (zeros
where autograd left None: unchosen experts), clip_grad_norm_(clip) over all of them (grads *=
min(1, clip / (norm + 1e-6)), torch's rule), AdamW(lr, betas (0.9, 0.95), eps 1e-8, wd) with
2-D tensors decayed and 1-D ones not, then per MoE layer with a bias:
bias_i += gamma * sign(mean_j load_j - load_i), load_i = the number of token-choices of expert i
in that layer over the whole batch (forward of this step, before the update).
"""
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from deepseek_ref import MoE

# ---------------------------------------------------------------------------- hyperparameters


@dataclass
class Hyper:
    """Training hyperparameters (names as in train.json)."""
    lam: float = 0.3          # MTP loss weight lambda
    alpha: float = 1e-4       # sequence-wise balance loss weight
    gamma: float = 1e-3       # bias update speed
    lr: float = 1e-2
    wd: float = 0.1
    clip: float = 1.0
    betas: tuple = (0.9, 0.95)
    eps: float = 1e-8

# ---------------------------------------------------------------------------- forward


@dataclass
class MoEStat:
    """What one MoE layer saw in one forward: for the near-tie check, aux loss and bias update."""
    name: str                 # e.g. "model.layers.1"
    moe: MoE
    x: torch.Tensor           # (B*T, C) gate input
    scores: torch.Tensor      # (B*T, E)
    idx: torch.Tensor         # (B*T, K)


@dataclass
class Losses:
    total: torch.Tensor
    main: torch.Tensor
    mtp: torch.Tensor
    aux: torch.Tensor
    mtp_k: list = field(default_factory=list)   # loss_k, k = 1..D
    moe: list = field(default_factory=list)     # MoEStat per MoE layer, in layer order
    logits: torch.Tensor = None                 # (B, T, V) main logits


def attention(mla, xn, B, T):
    """MLA over B independent sequences: xn (B*T, C) -> (B*T, C), each from a fresh cache."""
    return torch.cat([mla(xb, mla.new_cache(xn.dtype)) for xb in xn.view(B, T, -1)])


def block_forward(block, x, B, T, name, stats):
    """Block.forward over B sequences, x (B*T, C); a MoE layer appends its MoEStat to stats."""
    h = x + attention(block.self_attn, block.input_layernorm(x), B, T)
    hn = block.post_attention_layernorm(h)
    if isinstance(block.mlp, MoE):
        w, idx, scores = block.mlp.gate.route(hn)
        stats.append(MoEStat(name, block.mlp, hn.detach(), scores, idx))
        return h + block.mlp.mix(hn, w, idx)
    return h + block.mlp(hn)


def balance_loss(scores, idx, B, T, alpha):
    """V3 eq. 17-20 for one layer: scores (B*T, E), idx (B*T, K) -> mean over b of L_b."""
    E, K = scores.shape[1], idx.shape[1]
    s = scores.view(B, T, E)
    P = (s / s.sum(-1, keepdim=True)).mean(1)                                # (B, E)
    count = F.one_hot(idx.view(B, T * K), E).sum(1).to(scores.dtype)         # (B, E)
    f = count * (E / (K * T))
    return alpha * (f * P).sum(-1).mean()


def forward(model, tok, hp):
    """tok (B, T+1) -> Losses (everything as tensors in the model's dtype, graph attached)."""
    L, D = model.cfg.num_hidden_layers, model.cfg.num_nextn_predict_layers
    B, T = tok.shape[0], tok.shape[1] - 1
    embed, layers, head = model.model["embed_tokens"], model.model["layers"], model.lm_head
    stats = []
    x = embed(tok[:, :T]).reshape(B * T, -1)
    for i in range(L):
        x = block_forward(layers[i], x, B, T, f"model.layers.{i}", stats)
    h = model.model["norm"](x)
    logits = head(h)
    main = F.cross_entropy(logits, tok[:, 1:].reshape(-1))
    mtp_k, hprev = [], h
    for k in range(1, D + 1):
        m = layers[L + k - 1]
        ids = tok[:, torch.arange(T).add(k).clamp(max=T)]                       # (B, T)
        u = m.eh_proj(torch.cat([m.enorm(embed(ids)).reshape(B * T, -1), m.hnorm(hprev)], -1))
        hprev = block_forward(m, u, B, T, f"model.layers.{L + k - 1}", stats)
        lk = head(m.shared_head.norm(hprev)).view(B, T, -1)[:, :T - k]
        mtp_k.append(F.cross_entropy(lk.reshape(B * (T - k), -1), tok[:, k + 1:].reshape(-1)))
    zero = logits.new_zeros(())
    mtp = torch.stack(mtp_k).mean() if mtp_k else zero
    aux = sum((balance_loss(s.scores, s.idx, B, T, hp.alpha) for s in stats), zero)
    total = main + hp.lam * mtp + aux
    return Losses(total, main, mtp, aux, mtp_k, stats, logits.view(B, T, -1))

# ---------------------------------------------------------------------------- parameters


def mtp_copy_names(cfg):
    """The MTP modules' embed_tokens / shared_head.head: untrained copies of the main ones."""
    L = cfg.num_hidden_layers
    return {f"model.layers.{L + k}.{n}" for k in range(cfg.num_nextn_predict_layers)
            for n in ("embed_tokens.weight", "shared_head.head.weight")}


def trainable(model):
    """[(HF name, parameter)] that the optimiser updates: everything except the gates'
    e_score_correction_bias (a buffer updated by update_biases) and the MTP copies. Marks the
    excluded ones requires_grad=False."""
    skip = mtp_copy_names(model.cfg)
    out = []
    for name, p in model.named_parameters():
        if name in skip or name.endswith("e_score_correction_bias"):
            p.requires_grad_(False)
        else:
            out.append((name, p))
    return out


def tie_mtp_copies(model):
    """Copy the main embed_tokens / lm_head into every MTP module's copies."""
    L = model.cfg.num_hidden_layers
    with torch.no_grad():
        for m in model.model["layers"][L:]:
            m.embed_tokens.weight.copy_(model.model["embed_tokens"].weight)
            m.shared_head.head.weight.copy_(model.lm_head.weight)


def make_optimizer(params, hp):
    """AdamW with two groups: 2-D tensors (matrices, embeddings, heads, routers) decay, 1-D
    (norm weights) do not."""
    decay = [p for _, p in params if p.dim() >= 2]
    plain = [p for _, p in params if p.dim() < 2]
    return torch.optim.AdamW([{"params": decay, "weight_decay": hp.wd},
                              {"params": plain, "weight_decay": 0.0}],
                             lr=hp.lr, betas=hp.betas, eps=hp.eps)

# ---------------------------------------------------------------------------- one step


@torch.no_grad()
def update_biases(stats, gamma):
    """V3 §2.1.2: bias_i += gamma * sign(mean(load) - load_i), per MoE layer with a bias."""
    for s in stats:
        bias = s.moe.gate.e_score_correction_bias
        if bias is None:
            continue
        load = torch.bincount(s.idx.flatten(), minlength=bias.numel()).to(bias.dtype)
        bias += gamma * torch.sign(load.mean() - load)


def train_step(model, params, opt, tok, hp, keep_grads=False):
    """One forward / backward / clip / AdamW / bias update -> (Losses, grad norm before
    clipping, {name: gradient before clipping} as clones if keep_grads else None)."""
    opt.zero_grad(set_to_none=True)
    out = forward(model, tok, hp)
    out.total.backward()
    for _, p in params:
        if p.grad is None:            # unchosen experts: a zero gradient, still decayed / stepped
            p.grad = torch.zeros_like(p)
    grads = {n: p.grad.detach().clone() for n, p in params} if keep_grads else None
    norm = torch.nn.utils.clip_grad_norm_([p for _, p in params], hp.clip)
    opt.step()
    update_biases(out.moe, hp.gamma)
    tie_mtp_copies(model)
    return out, norm, grads
