/*
 * weights.h — the model's tensors: one table from the config that names every
 * tensor (Hugging Face names), its shape and where it lives, and the loader
 * and writer built on that table.
 *
 * The table drives everything that walks the weights: loading a checkpoint,
 * `deepc init` writing one, and counting. All tensors live in one 64-byte
 * aligned float32 arena owned by model_w; layers hold borrowed pointers.
 *
 * Layer numbering follows the checkpoint: 0..L-1 are decoder layers, L..L+D-1
 * the MTP modules (V3 report §2.2), each a decoder block plus embed_tokens,
 * enorm, hnorm, eh_proj and shared_head.{norm,head}.
 */
#ifndef DC_WEIGHTS_H
#define DC_WEIGHTS_H
#include <stddef.h>
#include <stdint.h>
#include "base/file.h"
#include "deepc.h"
#include "kernels/matmul.h"

typedef struct layer_w {
    float *attn_norm;                 /* input_layernorm (C) */
    mat q_a;                          /* (q_lora, C) when q_lora_rank */
    float *q_a_norm;                  /* (q_lora) */
    mat q_b;                          /* (H*(nope+rope), q_lora) */
    mat q;                            /* (H*(nope+rope), C) without q-LoRA */
    mat kv_a;                         /* (kv_lora+rope, C) kv_a_proj_with_mqa */
    float *kv_a_norm;                 /* (kv_lora) */
    mat kv_b;                         /* (H*(nope+v), kv_lora); NULL data when k_b / v_b hold it */
    /* kv_b as the absorbed attention multiplies it (V2 appendix C), in a
     * stored type (a GGUF's attn_k_b / attn_v_b kept as stored, or kv_b
     * converted by weights_convert); NULL data when kv_b holds it instead:
     *   k_b (H*kv_lora, nope): rows h*kvl.. of head h are W_uk_h^T (kvl, nope)
     *   v_b (H*v, kv_lora):    rows h*v..   of head h are W_uv_h   (v, kvl) */
    mat k_b, v_b;
    mat o;                            /* (C, H*v) */
    float *ffn_norm;                  /* post_attention_layernorm (C) */
    int is_moe;
    mat gate, up, down;               /* dense: (I, C), (I, C), (C, I) */
    float *router;                    /* (E, C) mlp.gate.weight, float32 always */
    float *router_bias;               /* (E) e_score_correction_bias, or NULL */
    mat *exp_gate, *exp_up, *exp_down;/* E each: (Im, C), (Im, C), (C, Im); owned arrays */
    mat sh_gate, sh_up, sh_down;      /* shared experts: (Im*S, C), (Im*S, C), (C, Im*S) */
    /* MTP modules only */
    float *embed;                     /* (V, C) stored as embed_type */
    int embed_type;                   /* GG_* storage of embed (GG_F32 = 0 unless a GGUF kept it) */
    float *enorm, *hnorm;             /* (C) */
    mat eh_proj;                      /* (C, 2C) */
    float *head_norm;                 /* shared_head.norm (C) */
    mat head;                         /* shared_head.head (V, C) */
} layer_w;

typedef struct model_w {
    float *embed;                     /* (V, C) model.embed_tokens, stored as embed_type: not
                                       * float32 when a GGUF kept it as stored (embed_head.h) */
    int embed_type;                   /* GG_* (kernels/ggml_types.h); GG_F32 = 0 by default */
    float *norm;                      /* (C) model.norm */
    mat head;                         /* (V, C) lm_head */
    layer_w *layers;                  /* L + D, owned */
    int nlayers;
    float *arena;                     /* owns every tensor's storage */
    size_t arena_floats;
    void *qarena;                     /* owns converted or kept (bf16, q8, fp8 ...) matrices, or NULL */
    size_t qarena_bytes;              /* bytes of qarena */
    void *karena;                     /* the kept matrices' qarena after weights_convert replaced it:
                                       * what was converted is given back (released_bytes), an
                                       * embedding kept as stored lives on in it; or NULL */
    size_t karena_bytes;
    void *kvb_arena;                  /* owns k_b and v_b made from kv_b (weights_split_kvb), or NULL */
    size_t kvb_bytes;
    size_t released_bytes;            /* arena / karena bytes given back to the OS after conversion */
    int dtype;                        /* MAT_* of the converted matrices (MAT_F32 when none) */
    int kept;                         /* 1: matrices kept as stored (a GGUF's: load_gguf.c; a checkpoint's
                                       * FP8, BF16, F16: weights.c) */
    mfile map;                        /* a GGUF whose kept matrices are borrowed from its mapping, or empty */
    int ex0, ex1;                     /* set before loading: only routed experts [ex0, ex1) are read
                                       * (expert parallel, moe_ep.h); ex1 = 0: all */
} model_w;

enum { WT_MAT, WT_HEAD, WT_EMBED, WT_NORM, WT_ROUTER, WT_BIAS };

typedef struct wt_entry {
    char name[128];
    int rows, cols;                   /* cols == 0: a vector of `rows` */
    int kind;                         /* WT_* */
    int layer, expert;                /* -1 when not applicable */
    float **dst;                      /* where the storage pointer goes */
    mat *m;                           /* the mat to fill (dst == &m->data) */
    const char *alias;                /* MTP embed/head: the main tensor used when this one is absent */
    int *gtype;                       /* embeddings: where a GGUF's stored type goes when kept, or NULL */
} wt_entry;

/* weights_table: allocate w's layer arrays and list every tensor of cfg.
 * *out is malloc'd (caller frees); w keeps the arrays until weights_free. */
int weights_table(const dc_config *cfg, model_w *w, wt_entry **out, int *n, dc_err *err);
void weights_free(model_w *w);
size_t wt_numel(const wt_entry *e);
/* weights_keep_experts: drop from e the routed experts outside [ex0, ex1)
 * (nothing when ex1 is 0); returns the entries left. The loaders call it with
 * the range w held before weights_table cleared w, and keep the range in w. */
int weights_keep_experts(wt_entry *e, int n, int ex0, int ex1);

/* weights_load: read every tensor of the table from the checkpoint in dir
 * into a new arena, dequantising BF16 / F16 / F8_E4M3 (+ weight_scale_inv).
 * keep (inference): F8_E4M3 matrices with 128-wide column blocks stay FP8
 * (MAT_FP8, fp8_block.h, in qarena; w->kept, w->dtype MAT_FP8), kv_b too;
 * BF16 and F16 matrices, heads and token embeddings stay as stored (MAT_BF16,
 * MAT_F16; GG_BF16, GG_F16), and a GGUF's matrices stay as stored; 0:
 * everything float32 (training, writers). */
int weights_load(const dc_config *cfg, const char *dir, int keep, model_w *w, dc_err *err);

/* weights_convert: for inference, store the big matrices of w (attention
 * projections, dense / shared / routed experts, eh_proj, heads) as
 * type (any MAT_* with a quantiser, wtype.h, for the matrices whose rows are
 * whole blocks: bf16, f16, q8, q4_0, q4_1, q5_0, q5_1, q2_k, q3_k, q4_k, q5_k,
 * q6_k, iq4_nl, iq4_xs, fp8 with 128x128
 * block scales; quantised here; a matrix whose rows are not whole blocks of
 * the type stays as it is, where `deepc convert` writes a narrower type:
 * iq4_nl for iq4_xs, q8_0 for the K-quants); kv_b becomes the absorbed attention's k_b
 * (W_uk^T per head) and v_b in that type (kv_b's data then NULL; layer_w);
 * embeddings, norms and the router stay as they are. The pages of converted
 * matrices are given back to the OS. Only once, from float32 or from
 * matrices a checkpoint kept as BF16 / F16 (each widened to float32 on the
 * way, one at a time: the same values, so the same result as from a float32
 * load); other kept types (FP8, a GGUF's) are not requantised. w must not be
 * trained afterwards. */
int weights_convert(const dc_config *cfg, model_w *w, int type, dc_err *err);
/* weights_convertible: whether weights_convert would take w (1) or refuse it (0) */
int weights_convertible(const dc_config *cfg, const model_w *w);

/* weights_split_kvb: each layer's float32 (or kept bf16 / f16) kv_b into the absorbed
 * attention's k_b and v_b (layer_w) of type (any MAT_* with a quantiser;
 * float32 too, W_uk transposed), in w->kvb_arena; kv_b's pages are given
 * back and its data set NULL. Nothing when kv_b's rows or W_uk^T's are not
 * whole blocks of type. weights_convert calls it; for inference only. */
int weights_split_kvb(const dc_config *cfg, model_w *w, int type, dc_err *err);

/* weights_read: read the checkpoint in dir into the storage the table's
 * entries already point at (dequantising as weights_load does); alias entries
 * (the MTP copies of embedding and head) are skipped. */
int weights_read(const dc_config *cfg, const char *dir, const wt_entry *e, int n, dc_err *err);

/* weights_read_entry: entry e of the checkpoint s (opened from dir) into
 * float32 dst (wt_numel(e) floats), dequantised and checked as weights_load
 * does, the mapped pages it read released; dst NULL: only found and its shape
 * checked. *present 0 (and DC_OK) for an alias the checkpoint does not hold. */
struct st_set;
int weights_read_entry(const dc_config *cfg, const struct st_set *s, const char *dir, const wt_entry *e, float *dst,
                       int *present, dc_err *err);

/* weights_write_random: write a randomly initialised checkpoint of cfg to dir
 * (config.json + model.safetensors, sharded above shard_bytes) with dtype
 * "f32", "bf16" or "fp8". Tensor values depend only on seed and name. */
int weights_write_random(const dc_config *cfg, const char *dir, uint64_t seed, const char *dtype,
                         size_t shard_bytes, dc_err *err);
#endif
