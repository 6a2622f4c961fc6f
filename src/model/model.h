/*
 * model.h — the loaded model, the batch and cache views the layers run on,
 * and their scratch; shared by the layer files (mla.c, moe.c, ffn.c), model.c
 * and the engine (src/infer/engine.c). A layer never sees a session: it gets
 * a batch of token states with their positions and a view of its cache.
 *
 * Shapes: T tokens in a call, C hidden_size, H heads, nope/rope/v the head
 * dims, kvl kv_lora_rank, E routed experts, K experts per token.
 */
#ifndef DC_MODEL_H
#define DC_MODEL_H
#include "deepc.h"
#include "base/team.h"
#include "kernels/matmul.h"
#include "model/rope.h"
#include "model/weights.h"
struct dist;

struct dc_model {
    dc_config cfg;
    model_w w;
    rope rope;
    float softmax_scale; /* (nope+rope)^-0.5, times YaRN's mscale^2 */
    struct moe_ep *ep;   /* routed experts split over ranks (moe_ep.h), or NULL */
};

/* model_load: dc_model_load, with f32 = 1 giving every tensor of a GGUF
 * dequantised to float32 (for writers, which read weights as floats) instead
 * of its matrices kept in their stored types. */
int model_load(const char *path, int f32, dc_model **out, dc_err *err);
/* model_load_ep: dc_model_load on the expert group of d (d->ep_size > 1):
 * only this rank's routed experts are read (moe_ep.h). On ep_rank 0 the
 * model runs as usual; on the others, moe_ep_follow(m->ep, m) serves the
 * experts until rank 0 frees its model. */
int model_load_ep(const char *path, const struct dist *d, dc_model **out, dc_err *err);

/* kv_view: where one layer's cache rows live in a paged KV store
 * (src/infer/kv_store): position j of a sequence whose page table is
 * pages[] is at base + pages[j / page_tokens] * page_stride + layer_off
 * + (j % page_tokens) * row. A row is, per the attention form,
 *   absorbed: [ kv_a_layernorm(c_kv) (kvl) | roped shared key (rope) ]
 *   naive:    [ per-head keys (H, nope+rope) | per-head values (H, v) ]
 * (V2 paper appendix C: the absorbed cache holds only the latent). */
typedef struct kv_view {
    void *base;
    size_t page_stride; /* elements per page (every layer) */
    size_t layer_off;   /* this layer's first row within a page, elements */
    int page_tokens;
    int row;            /* elements per position */
    int attn;           /* DC_ATTN_* */
    int bf16;           /* 1: elements are bfloat16 (absorbed only), 0: float32 */
} kv_view;

/* kv_at: position j's row (float32 *, or uint16_t * when bf16) */
static inline void *kv_at(const kv_view *v, const int *pages, int j) {
    size_t e = (size_t)pages[j / v->page_tokens] * v->page_stride + v->layer_off + (size_t)(j % v->page_tokens) * v->row;
    return (char *)v->base + e * (v->bf16 ? 2 : 4);
}

/* kv_row_floats: floats per position and layer for an attention form. */
int kv_row_floats(const dc_config *c, int attn);

/* tok_batch: the T tokens of one forward call, in runs of consecutive
 * positions of one sequence each. A token at position p attends to
 * positions 0..p of its own sequence only; its row is written before any
 * token attends, so a run sees its own earlier tokens. */
typedef struct tok_batch {
    int T;
    const int *pos;          /* (T) each token's position in its sequence */
    const int *const *pages; /* (T) the page table of each token's sequence */
    int nrun;
    const int *run0;         /* (nrun + 1) run r is tokens run0[r] .. run0[r+1]-1 */
} tok_batch;

/* scratch: activation buffers for up to cap_T tokens, grown (never shrunk)
 * by scratch_reserve; nothing is allocated while decoding token by token. */
typedef struct scratch {
    int cap_T, cap_thr, max_len;
    float *x, *xn, *y;        /* (T, C) residual stream, normed input, sublayer output */
    float *qa;                /* (T, q_lora) */
    float *q;                 /* (T, H, nope+rope) */
    float *kva;               /* (T, kvl+rope) */
    float *kv;                /* (T, H, nope+v) naive */
    float *att;               /* (T, H, v) */
    float *qabs, *lat;        /* (T, H, kvl) absorb */
    float *scores;            /* (threads, scratch_score_floats) */
    float *h1, *h3;           /* (T, max(I, Im*S)) */
    float *rlog;              /* (T, E) router scores */
    int *idx;                 /* (T, K) chosen experts */
    float *wts;               /* (T, K) their weights */
    int *tok;                 /* (T) tokens routed to one expert */
    float *tokw;              /* (T) and their weights */
    float *xe, *ye;           /* (T, C) gathered tokens, expert output */
    float *hidden;            /* (T, C) final-normed hidden states */
    float *cat;               /* (T, 2C) MTP input */
    float *sq;                /* (T, n) one head's scores in an expanded prefill, grown on demand */
    size_t sq_cap;
    float *ex;                /* (n, H, nope+v | kvl | rope) expanded keys/values and gathered latents */
    size_t ex_cap;
    float *kvw;               /* (H*(nope+v), kvl) kv_b widened from k_b, v_b (mla.c), grown on demand */
    size_t kvw_cap;
    int *att_t;               /* (T) the tokens attending one by one (mla.c) */
    long experts_run;         /* routed experts run (chosen by >= 1 token) since model_forward began */
} scratch;

/* scratch_score_floats: each thread's attention scratch: MLA_HEAD_GROUP
 * heads' scores over max_len positions, then one cache row widened to
 * float32 (kvl + rope) (mla.c). scratch_scores: thread i's. */
#define MLA_HEAD_GROUP 8
static inline size_t scratch_score_floats(const dc_config *c, int max_len) {
    return (size_t)MLA_HEAD_GROUP * max_len + c->kv_lora_rank + c->qk_rope_head_dim;
}
static inline float *scratch_scores(const struct scratch *s, const dc_config *c, int i) {
    return s->scores + (size_t)i * scratch_score_floats(c, s->max_len);
}
/* scratch_reserve: buffers for T tokens of cfg, per-thread attention
 * scratch for max_len positions for the calling thread count; buffers only grow. */
int scratch_reserve(scratch *s, const dc_config *c, int T, int max_len, dc_err *err);
void scratch_free(scratch *s);
/* scratch_grow: *buf to at least n floats (*cap floats now); 0 on OOM. */
int scratch_grow(float **buf, size_t *cap, size_t n);

/* model_forward: the main model over batch b (ids (T)): embedding, every
 * decoder block (writing the cache through kv, one view per layer), final
 * norm into s->hidden (T, C). */
void model_forward(const dc_model *m, scratch *s, const kv_view *kv, const tok_batch *b, const int *ids);
/* model_mtp_forward: MTP module 0 over b: next_ids (T) the token after each
 * position, hidden (T, C) the main model's final-normed states there (may
 * alias s->hidden); shared_head.norm of the output into s->xn (T, C). */
void model_mtp_forward(const dc_model *m, scratch *s, const kv_view *kv, const tok_batch *b, const int *next_ids,
                       const float *hidden);

/* block_forward: one decoder block on the residual stream x (T, C) in place. */
void block_forward(const dc_model *m, scratch *s, const kv_view *kv, const tok_batch *b, int layer, float *x);
/* mla_reserve: what mla_forward needs beyond scratch_reserve's buffers for
 * the attention form attn (a model holding only k_b and v_b widens them for
 * a naive cache); DC_ENOMEM when it cannot be had. */
int mla_reserve(const dc_model *m, scratch *s, int attn, dc_err *err);
/* mla_forward: out (T, C) = attention of normed xn (T, C) (V2 §2.1, V3 §2.1.1). */
void mla_forward(const dc_model *m, scratch *s, const layer_w *lw, const kv_view *kv, const tok_batch *b,
                 const float *xn, float *out);
/* ffn_forward: SwiGLU out (T, C) = down(silu(gate xn) * up xn). */
void ffn_forward(scratch *s, const mat *gate, const mat *up, const mat *down, int T, const float *xn, float *out);
/* ffn_forward_h: the same in the caller's h1, h3 ((T, gate->rows) each;
 * moe.c runs experts side by side, each thread in its own) */
void ffn_forward_h(float *h1, float *h3, const mat *gate, const mat *up, const mat *down, int T, const float *xn,
                   float *out);
/* moe_route: the chosen experts idx (T, K) and weights wts (T, K) (V3 §2.1.2). */
void moe_route(const dc_config *c, const layer_w *lw, int T, const float *xn, float *rlog, int *idx, float *wts);
/* One token's decode step in ONE parallel region (model.c, issue 15: ~40
 * regions and ~30 barriers a token, each a futex syscall on the VMs deepc
 * runs on): the layers' phases meet at team_sync. Each *_one_team runs one
 * sublayer on thread t->i of t->n; thread 0 makes the products' activations
 * (and the serial steps between them) into sh; the output is complete after
 * the caller's next team_sync. They return 0, on every thread alike, when
 * thread 0 could not get memory for an activation or a buffer (the step is
 * then run again the usual way). The bits of mla_forward, ffn_forward and
 * moe_forward at T = 1. */
typedef struct one_share {
    mv_act a[4];         /* the current products' activations */
    float *h1, *h3, *ye; /* the MoE's expert buffers (in scratch ex) */
    int e[65];           /* the MoE's runs: -1 the shared experts, then the chosen by id */
    float w[65];         /* and their weights */
    int ok;              /* thread 0's verdict on the phase's memory */
} one_share;
int mla_one_team(const team *t, one_share *sh, const dc_model *m, scratch *s, const layer_w *lw, const kv_view *kv,
                 const tok_batch *b, const float *xn, float *out);
/* ffn_one_fits / moe_one_fits: whether the layer's FFN / MoE can run so
 * (its gate and up multiply one kind of activation; moe.c's one_fits) */
int ffn_one_fits(const mat *gate, const mat *up);
int ffn_one_team(const team *t, one_share *sh, scratch *s, const mat *gate, const mat *up, const mat *down,
                 const float *xn, float *out);
int moe_one_fits(const dc_config *c, const layer_w *lw);
int moe_one_team(const team *t, one_share *sh, const dc_config *c, scratch *s, const layer_w *lw, const float *xn,
                 float *out);
/* model_one_off: 1 runs every step the usual way (tests compare the two);
 * model_one_runs: the block runs made in one region so far (all engines) */
extern int model_one_off;
extern long model_one_runs;

/* moe_forward: out (T, C) = shared experts + weighted routed experts; the
 * tokens of the whole batch are grouped by expert, so an expert chosen by
 * several tokens (of any sequences) is read once. */
void moe_forward(const dc_config *c, scratch *s, const layer_w *lw, int T, const float *xn, float *out);
#endif
