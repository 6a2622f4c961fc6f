/*
 * model.h — the loaded model and a decoding session (KV cache + scratch),
 * shared by the layer files (mla.c, moe.c, ffn.c) and model.c.
 *
 * Shapes: T tokens in a call, C hidden_size, H heads, nope/rope/v the head
 * dims, kvl kv_lora_rank, E routed experts, K experts per token.
 */
#ifndef DC_MODEL_H
#define DC_MODEL_H
#include "deepc.h"
#include "model/rope.h"
#include "model/weights.h"

struct dc_model {
    dc_config cfg;
    model_w w;
    rope rope;
    float softmax_scale; /* (nope+rope)^-0.5, times YaRN's mscale^2 */
};

/* model_load: dc_model_load, with f32 = 1 giving every tensor of a GGUF
 * dequantised to float32 (for writers, which read weights as floats) instead
 * of its matrices kept in their stored types. */
int model_load(const char *path, int f32, dc_model **out, dc_err *err);

/* kv_layer: one layer's cache. Naive attention keeps per-head keys and
 * values; absorbed attention keeps only the normalised latent and the rope key
 * (V2 paper appendix C). */
typedef struct kv_layer {
    float *k;   /* naive: (ctx, H, nope+rope) */
    float *v;   /* naive: (ctx, H, v) */
    float *ckv; /* absorb: (ctx, kvl) kv_a_layernorm(c_kv) */
    float *kpe; /* absorb: (ctx, rope) roped shared key */
} kv_layer;

/* scratch: activation buffers for up to cap_T tokens, grown (never shrunk)
 * by scratch_reserve; nothing is allocated while decoding token by token. */
typedef struct scratch {
    int cap_T, cap_thr;
    float *x, *xn, *y;        /* (T, C) residual stream, normed input, sublayer output */
    float *qa;                /* (T, q_lora) */
    float *q;                 /* (T, H, nope+rope) */
    float *kva;               /* (T, kvl+rope) */
    float *kv;                /* (T, H, nope+v) naive */
    float *att;               /* (T, H, v) */
    float *qabs, *lat;        /* (T, H, kvl) absorb */
    float *scores;            /* (threads, ctx) */
    float *h1, *h3;           /* (T, max(I, Im*S)) */
    float *rlog;              /* (T, E) router scores */
    int *idx;                 /* (T, K) chosen experts */
    float *wts;               /* (T, K) their weights */
    int *tok;                 /* (T) tokens routed to one expert */
    float *tokw;              /* (T) and their weights */
    float *xe, *ye;           /* (T, C) gathered tokens, expert output */
    float *hidden;            /* (T, C) final-normed hidden states */
    float *cat;               /* (T, 2C) MTP input */
    float *sq;                /* (T, pos+T) one head's scores in a prefill, grown on demand */
    size_t sq_cap;            /* floats in sq */
} scratch;

struct dc_session {
    dc_model *m;              /* borrowed */
    int max_ctx, attn;
    int pos, mtp_pos;         /* positions held by the main and MTP caches */
    int hidden_T;             /* rows of scratch.hidden from the last dc_forward */
    kv_layer *kv;             /* (L + D) */
    float *kv_mem;            /* owns every cache */
    scratch s;
};

/* block_forward: one decoder block on the residual stream x (T, C) in place,
 * positions pos..pos+T-1, appending to kv. */
void block_forward(dc_session *ss, int layer, kv_layer *kv, int pos, int T, float *x);

/* mla_forward: out (T, C) = attention of normed xn (T, C) (V2 §2.1, V3 §2.1.1). */
void mla_forward(dc_session *ss, const layer_w *lw, kv_layer *kv, int pos, int T, const float *xn, float *out);
/* ffn_forward: SwiGLU out (T, C) = down(silu(gate xn) * up xn). */
void ffn_forward(scratch *s, const mat *gate, const mat *up, const mat *down, int T, const float *xn, float *out);
/* moe_route: the chosen experts idx (T, K) and weights wts (T, K) (V3 §2.1.2). */
void moe_route(const dc_config *c, const layer_w *lw, int T, const float *xn, float *rlog, int *idx, float *wts);
/* moe_forward: out (T, C) = shared experts + weighted routed experts. */
void moe_forward(dc_session *ss, const layer_w *lw, int T, const float *xn, float *out);
#endif
