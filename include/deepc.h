/*
 * deepc.h — the public C API of deepc, the DeepSeek-V3 / R1 / V2 system in C.
 *
 * Conventions
 *   - Every call that can fail on outside input returns int: DC_OK (0) or a
 *     negative DC_E* code, and fills a caller-owned dc_err (may be NULL) whose
 *     msg names the function, the file or tensor, and the numbers involved.
 *   - Nothing here prints, exits or aborts on bad input.
 *   - x_free(NULL) does nothing; objects are owned by whoever created them.
 */
#ifndef DEEPC_H
#define DEEPC_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------- errors */
enum {
    DC_OK = 0,
    DC_EIO = -1,      /* open/read/write/mmap failed */
    DC_EFORMAT = -2,  /* file contents malformed (truncated, bad JSON, bad header) */
    DC_ECONFIG = -3,  /* config field missing or inconsistent */
    DC_ENOMEM = -4,   /* allocation failed */
    DC_EARG = -5,     /* bad argument from the caller */
    DC_ENOTFOUND = -6,/* a tensor or file that must exist does not */
    DC_ESHAPE = -7,   /* a tensor has the wrong shape */
    DC_EDTYPE = -8,   /* a tensor has an unsupported or unexpected dtype */
};

typedef struct dc_err {
    int code;
    char msg[256];
} dc_err;

/* dc_strerror: a short name for a code ("io error", ...); never NULL. */
const char *dc_strerror(int code);

/* ---------------------------------------------------------------- config */
enum { DC_SCORE_SOFTMAX = 0, DC_SCORE_SIGMOID = 1 };
enum { DC_TOPK_GREEDY = 0, DC_TOPK_GROUP_LIMITED = 1, DC_TOPK_NOAUX_TC = 2 };

/* dc_config: the fields of a Hugging Face DeepSeek config.json, named as there.
 * q_lora_rank == 0 means no q-LoRA (config `null`). has_yarn means rope_scaling
 * of type yarn is present. fp8_block_{m,n} > 0 when the checkpoint is block FP8. */
typedef struct dc_config {
    int vocab_size;
    int hidden_size;
    int intermediate_size;       /* dense SwiGLU layers */
    int moe_intermediate_size;   /* each routed / shared expert */
    int num_hidden_layers;
    int num_nextn_predict_layers;/* MTP modules */
    int num_attention_heads;
    int q_lora_rank;             /* 0: plain q_proj */
    int kv_lora_rank;
    int qk_nope_head_dim;
    int qk_rope_head_dim;
    int v_head_dim;
    int n_routed_experts;        /* 0: no MoE at all */
    int n_shared_experts;
    int num_experts_per_tok;
    int first_k_dense_replace;
    int moe_layer_freq;
    int n_group;
    int topk_group;
    int topk_method;             /* DC_TOPK_* */
    int scoring_func;            /* DC_SCORE_* */
    int norm_topk_prob;
    float routed_scaling_factor;
    float rms_norm_eps;
    float rope_theta;
    int max_position_embeddings;
    int has_yarn;
    float rope_factor;
    int rope_original_max_position_embeddings;
    float rope_beta_fast, rope_beta_slow;
    float rope_mscale, rope_mscale_all_dim;
    int tie_word_embeddings;
    int bos_token_id, eos_token_id;
    int fp8_block_m, fp8_block_n;  /* quantization_config.weight_block_size */
    int is_v3;                     /* model_type deepseek_v3 (else deepseek_v2) */
} dc_config;

/* dc_config_load: parse DIR/config.json (or a file path) into *cfg and check it. */
int dc_config_load(const char *path, dc_config *cfg, dc_err *err);
/* dc_config_preset: fill *cfg with a built-in preset: tiny, small, mini,
 * train-bench, v2-lite, v3. */
int dc_config_preset(const char *name, dc_config *cfg, dc_err *err);
/* dc_config_check: every field in range and consistent with the others. */
int dc_config_check(const dc_config *cfg, dc_err *err);
/* dc_config_is_moe_layer: layer index i (MTP modules continue the numbering). */
int dc_config_is_moe_layer(const dc_config *cfg, int i);

/* dc_counts: parameter, byte and cache figures of a config. */
typedef struct dc_counts {
    int64_t params_total;        /* main model, every tensor */
    int64_t params_mtp;          /* MTP modules, every tensor */
    int64_t params_active;       /* per token: attention, dense, shared, K routed, gates, head (no embedding table) */
    int64_t params_embedding;
    int64_t kv_naive_per_token;  /* numbers cached per token, all layers: H*(nope+rope) + H*v */
    int64_t kv_absorb_per_token; /* all layers: kv_lora + rope */
} dc_counts;
void dc_config_counts(const dc_config *cfg, dc_counts *out);

/* ---------------------------------------------------------------- model */
typedef struct dc_model dc_model;

enum { DC_ATTN_NAIVE = 0, DC_ATTN_ABSORB = 1 };

/* dc_model_load: load a checkpoint directory in the Hugging Face layout
 * (config.json + model.safetensors or a sharded index). Weights are read into
 * memory (resident) and dequantised to float32. */
int dc_model_load(const char *dir, dc_model **out, dc_err *err);
void dc_model_free(dc_model *m);
const dc_config *dc_model_config(const dc_model *m);
size_t dc_model_weight_bytes(const dc_model *m);

/* ---------------------------------------------------------------- session */
/* A dc_session holds the KV caches and scratch buffers of one sequence. It
 * borrows the model, which must outlive it. */
typedef struct dc_session dc_session;

/* max_ctx: the most positions the cache holds; attn: DC_ATTN_*. */
int dc_session_new(dc_model *m, int max_ctx, int attn, dc_session **out, dc_err *err);
void dc_session_free(dc_session *s);
/* dc_session_reset: forget every cached position. */
void dc_session_reset(dc_session *s);
int dc_session_pos(const dc_session *s);

/* dc_forward: run n tokens at positions pos..pos+n-1 (appending them to the
 * cache). logits: (n, vocab) or NULL; when last_only, only the last row is
 * written, as (1, vocab). */
int dc_forward(dc_session *s, const int *ids, int n, float *logits, int last_only, dc_err *err);

/* dc_forward_mtp: the first MTP module over n positions that follow the MTP
 * cache. hidden: (n, hidden_size) the main model's final-normed hidden states
 * at those positions (dc_session_hidden gives them); next_ids: (n) the token
 * after each position. logits: (n, vocab), each row predicting the token two
 * after its position. */
int dc_forward_mtp(dc_session *s, const float *hidden, const int *next_ids, int n,
                   float *logits, dc_err *err);
/* dc_session_hidden: the final-normed hidden states (n, hidden_size) of the
 * last dc_forward call; borrowed until the next call. */
const float *dc_session_hidden(const dc_session *s);

/* ---------------------------------------------------------------- threads */
/* dc_set_threads: threads for everything deepc runs (OpenMP and BLAS). n <= 0: all cores. */
void dc_set_threads(int n);
int dc_get_threads(void);

#ifdef __cplusplus
}
#endif
#endif
