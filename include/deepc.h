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
    DC_EFULL = -9,    /* no room: the KV store or the engine's sequence table is full */
};

typedef struct dc_err {
    int code;
    char msg[256];
} dc_err;

/* dc_strerror: a short name for a code ("io error", ...); never NULL. */
const char *dc_strerror(int code);

/* dc_version: the release, "MAJOR.MINOR.PATCH"; dc_build_info: the compiler
 * and build options the library was built with. Both static strings. */
const char *dc_version(void);
const char *dc_build_info(void);

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
/* the element type of the absorbed (latent) KV cache: bfloat16 by default
 * (half the bytes; the logits move by about 1e-3 relative, see
 * tests/test_engine.c), float32 on request. The naive cache is float32. */
enum { DC_KV_BF16 = 0, DC_KV_F32 = 1 };

/* dc_model_load: load a checkpoint directory in the Hugging Face layout
 * (config.json + model.safetensors or a sharded index). Weights are read into
 * memory (resident) and dequantised to float32. */
int dc_model_load(const char *dir, dc_model **out, dc_err *err);
void dc_model_free(dc_model *m);
const dc_config *dc_model_config(const dc_model *m);
size_t dc_model_weight_bytes(const dc_model *m);

/* ---------------------------------------------------------------- session */
/* A dc_session is one sequence on an engine of its own (see "engine" below),
 * with the same numbers as that sequence in a batch of others. It borrows the
 * model, which must outlive it. */
typedef struct dc_session dc_session;

/* max_ctx: the most positions the cache holds; attn: DC_ATTN_*. */
int dc_session_new(dc_model *m, int max_ctx, int attn, dc_session **out, dc_err *err);
/* dc_session_new_kv: the same with the latent cache's element type
 * (DC_KV_BF16, dc_session_new's default, or DC_KV_F32). */
int dc_session_new_kv(dc_model *m, int max_ctx, int attn, int kv_type, dc_session **out, dc_err *err);
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

/* ---------------------------------------------------------------- tokenizer */
/* DeepSeek's byte-level BPE (src/tokenizer/). A dc_tokenizer is read-only
 * once loaded: any number of threads may encode and decode with it at once. */
typedef struct dc_tokenizer dc_tokenizer;

/* encode flags. By default the text's non-special added tokens (DeepSeek-V3:
 * <think>, <｜User｜>, <｜Assistant｜>, tool tokens) become their ids, exactly as
 * in Hugging Face and llama.cpp, and special ones (BOS, EOS, pad, fim,
 * placeholders) are read as plain text. */
enum {
    DC_TOK_SPECIAL = 1, /* also recognise special tokens written in the text (what HF's
                           encode does by default; use it on rendered chat templates) */
    DC_TOK_BOS = 2,     /* put the BOS token first */
    DC_TOK_PLAIN = 4,   /* recognise no added token at all: for untrusted text such as
                           a user's message, so it cannot forge turn markers */
};
/* decode flags */
enum { DC_TOK_SKIP_SPECIAL = 1 /* leave out special tokens (BOS, EOS, pad, ...) */ };

/* dc_tokenizer_load: PATH is a Hugging Face tokenizer.json, a directory
 * holding one (tokenizer_config.json beside it gives BOS/EOS), or a GGUF file
 * with tokenizer.ggml.* metadata. */
int dc_tokenizer_load(const char *path, dc_tokenizer **out, dc_err *err);
void dc_tokenizer_free(dc_tokenizer *t);
/* dc_tokenizer_n_vocab: one past the largest token id. */
int dc_tokenizer_n_vocab(const dc_tokenizer *t);
int dc_tokenizer_bos(const dc_tokenizer *t); /* -1 when none */
int dc_tokenizer_eos(const dc_tokenizer *t); /* -1 when none */
/* dc_tokenizer_pre: the pre-tokenizer's name ("deepseek-v3", ..., "custom"). */
const char *dc_tokenizer_pre(const dc_tokenizer *t);
/* dc_tokenizer_piece: the raw bytes of token id (borrowed, not NUL-terminated),
 * NULL for an id that names no token. */
const char *dc_tokenizer_piece(const dc_tokenizer *t, int id, size_t *len);
/* dc_tokenizer_is_special: 1 for a special added token, 0 otherwise. */
int dc_tokenizer_is_special(const dc_tokenizer *t, int id);
/* dc_tokenizer_find: the id of an exact token text (added tokens first, then
 * the BPE vocab), -1 when none. */
int dc_tokenizer_find(const dc_tokenizer *t, const char *text, size_t len);

/* dc_tokenizer_encode: text[0, len) (any bytes; invalid UTF-8 is kept byte by
 * byte) -> a malloc'd array of *n ids, owned by the caller. */
int dc_tokenizer_encode(const dc_tokenizer *t, const char *text, size_t len, int flags, int **ids, size_t *n,
                        dc_err *err);
/* dc_tokenizer_decode: ids -> the malloc'd bytes they stand for (NUL-terminated,
 * *len without it), owned by the caller. An unknown id is DC_EARG. */
int dc_tokenizer_decode(const dc_tokenizer *t, const int *ids, size_t n, int flags, char **text, size_t *len,
                        dc_err *err);

/* Streaming decode for token-by-token output: push ids one at a time and get
 * back the bytes that are ready; an incomplete UTF-8 sequence at the end is
 * held back until it is completed (or shown to be invalid, when its bytes
 * are released as they are). dc_detok borrows the tokenizer. */
typedef struct dc_detok dc_detok;
int dc_detok_new(const dc_tokenizer *t, int flags, dc_detok **out, dc_err *err);
/* dc_detok_push: *text (borrowed until the next call) and *len are the bytes ready now. */
int dc_detok_push(dc_detok *d, int id, const char **text, size_t *len, dc_err *err);
/* dc_detok_flush: whatever is held back (at the end of generation). */
void dc_detok_flush(dc_detok *d, const char **text, size_t *len);
void dc_detok_free(dc_detok *d);

/* Chat templates (the Jinja templates of DeepSeek's tokenizer_config.json, in C). */
enum {
    DC_CHAT_V3 = 0, /* deepseek-v3/tokenizer_config.json: generation prompt "<｜Assistant｜>" */
    DC_CHAT_R1 = 1, /* the same, with "<｜Assistant｜><think>\n" as the generation prompt */
};
typedef struct dc_chat_tool_call {
    const char *type;      /* "function" */
    const char *name;
    const char *arguments; /* JSON text */
} dc_chat_tool_call;
typedef struct dc_chat_msg {
    const char *role;      /* "system", "user", "assistant" or "tool" */
    const char *content;   /* NULL allowed for an assistant turn with tool calls */
    const dc_chat_tool_call *tool_calls;
    int n_tool_calls;      /* > 0: the assistant turn calls tools */
} dc_chat_msg;
/* dc_chat_render: the prompt text for msgs (a malloc'd, NUL-terminated string
 * owned by the caller). Earlier assistant turns lose everything up to their
 * last "</think>". Encode the result with DC_TOK_SPECIAL. */
int dc_chat_render(int style, const dc_chat_msg *msgs, int n, int add_generation_prompt, char **out, dc_err *err);

/* BPE training (byte-level, with the DeepSeek-V3 pre-tokenizer). */
typedef struct dc_bpe_train_opts {
    int vocab_size;            /* total ids: specials + 256 bytes + merges */
    const char *const *special; /* special tokens, given ids 0.. in order */
    int n_special;
    int min_frequency;         /* stop when the best pair is rarer (>= 2 is sensible) */
    const char *pre;           /* pre-tokenizer set, NULL: "deepseek-v3" */
    /* progress(ctx, stage, done, total): called now and then from the calling
     * thread; stage "count" counts bytes read, "merge" merges made */
    void (*progress)(void *ctx, const char *stage, long done, long total);
    void *progress_ctx;
} dc_bpe_train_opts;
/* dc_bpe_train: train on files[0, nfiles) and write a tokenizer.json to out_path
 * that deepc and the Hugging Face library load. */
int dc_bpe_train(const char *const *files, int nfiles, const dc_bpe_train_opts *opts, const char *out_path,
                 dc_err *err);

/* ---------------------------------------------------------------- progress */
/* dc_set_progress: fn(ctx, stage, done, total) is called by the long library
 * operations while they run: loading a model ("load", tensors read),
 * dc_convert_to_gguf and quantising ("write", tensors written),
 * dc_convert_to_hf ("write"), writing a random model ("init", bytes). It is
 * called from the thread that started the operation, at most ten times a
 * second, and once with done == total when the operation ends. NULL (the
 * default): nothing is called. Process-wide; the CLI draws a progress bar
 * with ETA on stderr with it. */
typedef void (*dc_progress_fn)(void *ctx, const char *stage, long long done, long long total);
void dc_set_progress(dc_progress_fn fn, void *ctx);

/* ---------------------------------------------------------------- inference */
/* Generation on a session (src/infer/): weight types, cache control,
 * sampling, the token loop with optional MTP speculative decoding. */

/* dc_model_set_dtype: store the model's large matrices as "f32", "bf16",
 * "q8" (llama.cpp's Q8_0), "q4_0", "q4_k" or "q6_k" (quantised here) for
 * inference (kv_b as the absorbed attention's two pieces in that type); the
 * router, norms and embeddings stay float32. Once, right
 * after dc_model_load; the model must not be trained afterwards. A GGUF whose
 * matrices were loaded as stored (quantised) is left as it is for "stored" or
 * "f32" and refuses any other type (no requantising). */
int dc_model_set_dtype(dc_model *m, const char *dtype, dc_err *err);
const char *dc_model_dtype(const dc_model *m);
/* dc_argmax: the index of the largest of v[0..n) (the first on ties). */
int dc_argmax(const float *v, int n);
/* dc_kernels_name: the SIMD level the kernels run at here ("avx512", "avx2",
 * "ref"; chosen from the CPU, DEEPC_ISA may force a lower one). */
const char *dc_kernels_name(void);
/* dc_model_decode_bytes: bytes of weights read to decode one token:
 * attention, router, dense FFN or shared + num_experts_per_tok routed
 * experts, final norm and head, averaged over the layers (no KV cache). */
size_t dc_model_decode_bytes(const dc_model *m);

/* dc_session_truncate: forget positions pos.. (pos <= dc_session_pos), in the
 * MTP cache too; positions are counters, so nothing is moved. */
int dc_session_truncate(dc_session *s, int pos, dc_err *err);
/* dc_session_reserve: make room for forward calls of up to n tokens now, so
 * later calls of that size allocate nothing. */
int dc_session_reserve(dc_session *s, int n, dc_err *err);
int dc_session_max_ctx(const dc_session *s);
/* dc_session_model: the model the session borrows. */
dc_model *dc_session_model(const dc_session *s);
/* dc_session_mtp_pos: positions held by the MTP module's cache. */
int dc_session_mtp_pos(const dc_session *s);
/* dc_forward_mtp_last: dc_forward_mtp writing only the last row's logits
 * (1, vocab), or none when logits is NULL. */
int dc_forward_mtp_last(dc_session *s, const float *hidden, const int *next_ids, int n, float *logits,
                        dc_err *err);
/* dc_session_save: the cached positions of both caches and ids (n, the tokens
 * that produced them, n == dc_session_pos) to path, atomically.
 * dc_session_load: the reverse into a session of the same model, attention
 * mode and enough context; *ids is malloc'd (caller frees). */
int dc_session_save(const dc_session *s, const int *ids, int n, const char *path, dc_err *err);
int dc_session_load(dc_session *s, const char *path, int **ids, int *n, dc_err *err);

/* Sampling. The logits pass through: repeat penalty over the last
 * repeat_last_n tokens of history (a logit > 0 divided by it, < 0
 * multiplied), temperature, top-k, softmax, min-p (p >= min_p * p_max),
 * top-p (the smallest prefix of the sorted tokens with mass >= top_p), then
 * one draw. temperature <= 0 is greedy: the argmax (the lowest id on ties),
 * no randomness. Same seed, same draws. Any logits give a defined token:
 * NaN ranks below every number (chosen only when all are NaN: token 0), and
 * when some logits are +inf the draw is uniform among those. */
typedef struct dc_sampler_params {
    float temperature;
    int top_k;            /* 0: off */
    float top_p;          /* 1: off */
    float min_p;          /* 0: off */
    float repeat_penalty; /* 1: off */
    int repeat_last_n;    /* the window of the three penalties: the history's last N tokens */
    uint64_t seed;
    /* OpenAI's presence / frequency penalties (0: off), as llama.cpp applies
     * them over the same window: logit -= presence + frequency * count for
     * each token that occurs count > 0 times there */
    float presence_penalty, frequency_penalty;
} dc_sampler_params;
/* dc_sampler_defaults: temperature 0.6, top-k 40, top-p 0.95, min-p 0.05, no penalties (window 64), seed 0. */
void dc_sampler_defaults(dc_sampler_params *p);
typedef struct dc_sampler dc_sampler;
int dc_sampler_new(const dc_sampler_params *p, int vocab, dc_sampler **out, dc_err *err);
void dc_sampler_free(dc_sampler *s);
/* dc_sample: one token from logits (vocab; overwritten) given the history. */
int dc_sample(dc_sampler *s, float *logits, const int *hist, int n_hist);

/* dc_gen_cb: called with each new token as soon as it is chosen; a nonzero
 * return stops generation (that token is still counted). */
typedef int (*dc_gen_cb)(void *ctx, int token);
typedef struct dc_gen_opts {
    int max_new;             /* tokens to generate at most */
    int eos;                 /* stop after this token; -1: never */
    int mtp;                 /* draft with the MTP module, verify two at a time */
    dc_gen_cb cb;            /* may be NULL */
    void *ctx;
    volatile int *cancel;    /* stop when it becomes nonzero (a signal handler); may be NULL */
    /* draft: with mtp, choose the draft token from the MTP logits (vocab) for
     * output index n_gen; NULL: their argmax. For tests and benchmarks (an
     * oracle drafter exercises acceptance on random-weight models). */
    int (*draft)(void *ctx, const float *mtp_logits, int n_gen);
} dc_gen_opts;
typedef struct dc_gen_stats {
    int n_prompt, n_gen;     /* tokens fed first, tokens generated */
    double prefill_s, decode_s;
    int n_draft, n_accept;   /* MTP drafts verified and accepted */
    int mtp_used;            /* 0 when MTP was asked for but could not run (no module, caches out of step) */
    int ctx_full;            /* 1 when generation stopped because the context had no room left */
} dc_gen_stats;
/* dc_generate: append prompt (n >= 1 ids) to the session's cache, then
 * sample up to max_new tokens. The last generated token is NOT fed to the
 * cache (its logits are not needed): a caller continuing the sequence feeds
 * it first. With mtp, the output is identical to without (same logits bit
 * for bit, same draws), only faster when drafts are accepted. */
int dc_generate(dc_session *s, dc_sampler *smp, const int *prompt, int n_prompt, const dc_gen_opts *o,
                dc_gen_stats *st, dc_err *err);

/* ---------------------------------------------------------------- engine */
/* The batch-first inference core (src/infer/engine.c). A dc_engine holds a
 * paged KV store shared by up to max_seqs sequences and runs one batch of
 * tokens from any of them through one forward pass, so the weights are read
 * once per step for every sequence in flight (continuous batching at the
 * token level: prefill chunks of some sequences and single decode tokens of
 * others mixed in one call). It borrows the model, which must outlive it.
 * One thread at a time may call into an engine; several engines may share
 * one model from different threads.
 *
 * The store is pages of page_tokens positions, each page holding every
 * layer's cache rows (absorbed: kv_lora + rope floats per layer and
 * position; naive: per-head keys and values). A sequence is a list of pages;
 * dc_seq_fork makes a new sequence share another's pages (reference
 * counted, copied only when one of them writes into a shared page), so G
 * samples of one prompt hold the prompt once. */
typedef struct dc_engine dc_engine;

typedef struct dc_engine_opts {
    int max_seqs;    /* sequences alive at once (default 16) */
    int n_pages;     /* pages in the KV store; 0: enough for max_seqs sequences of max_len
                        (each with one page more, for a copy on write) */
    int page_tokens; /* positions per page (default 16) */
    int max_len;     /* the longest a sequence may grow, positions (default 4096) */
    int max_batch;   /* tokens per dc_engine_decode call at most (default 512) */
    int attn;        /* DC_ATTN_ABSORB (default) or DC_ATTN_NAIVE */
    int kv_type;     /* DC_KV_BF16 (default, 0) or DC_KV_F32; DC_ATTN_NAIVE stores float32 always */
    int n_threads;   /* threads for this engine's forward passes; <= 0: all cores */
} dc_engine_opts;
void dc_engine_defaults(dc_engine_opts *o);
int dc_engine_new(dc_model *m, const dc_engine_opts *o, dc_engine **out, dc_err *err);
void dc_engine_free(dc_engine *e);
dc_model *dc_engine_model(const dc_engine *e);
const dc_engine_opts *dc_engine_get_opts(const dc_engine *e);

/* Sequences are small integer ids (0 <= id < max_seqs). */
/* dc_seq_new: an empty sequence; its id, or DC_EFULL when max_seqs are alive. */
int dc_seq_new(dc_engine *e, dc_err *err);
/* dc_seq_fork: a new sequence holding the same positions as src (main and MTP
 * caches) without copying them; its id or a negative code. */
int dc_seq_fork(dc_engine *e, int src, dc_err *err);
/* dc_seq_free: forget a sequence and give back its pages; unknown ids are ignored. */
void dc_seq_free(dc_engine *e, int seq);
/* dc_seq_truncate: keep positions 0..len-1 (len <= dc_seq_len), in the MTP
 * cache too (speculation's rejected drafts, a regenerated answer). Pages that
 * are shared with a fork stay untouched for the fork. */
int dc_seq_truncate(dc_engine *e, int seq, int len, dc_err *err);
/* dc_seq_truncate_mtp: keep MTP positions 0..len-1 only (len <= dc_seq_mtp_len). */
int dc_seq_truncate_mtp(dc_engine *e, int seq, int len, dc_err *err);
int dc_seq_len(const dc_engine *e, int seq);     /* positions cached; -1 for an unknown id */
int dc_seq_mtp_len(const dc_engine *e, int seq); /* positions in the MTP module's cache */

/* dc_kv_stats: what the store holds. positions counts each sequence's
 * positions; pages_used the distinct pages they occupy, so positions stored
 * once for several forks show as positions > pages_used * page_tokens. */
typedef struct dc_kv_stats {
    int n_pages, pages_used, page_tokens, n_seqs;
    size_t bytes_per_page;   /* every layer's rows for page_tokens positions */
    size_t bytes_per_token;  /* bytes_per_page / page_tokens */
    int64_t positions;       /* sum of the live sequences' lengths (main cache) */
} dc_kv_stats;
void dc_engine_kv_stats(const dc_engine *e, dc_kv_stats *st);

/* A batch: n tokens, each with the sequence it extends. A sequence's tokens
 * are appended at its end in the order given (its next positions), so they
 * must be given in order; tokens of different sequences may interleave.
 * logits[i] nonzero asks for token i's logits; logits NULL asks for each
 * sequence's last token in the batch. */
typedef struct dc_batch {
    int n;
    const int *token;          /* (n) ids */
    const int *seq;            /* (n) sequence ids */
    const unsigned char *logits; /* (n) or NULL */
} dc_batch;
/* dc_engine_decode: run the batch through the main model. On error nothing
 * changed (a sequence that does not fit, DC_EFULL, is named in the message;
 * the caller may drop it and retry the others). */
int dc_engine_decode(dc_engine *e, const dc_batch *b, dc_err *err);
/* dc_engine_logits: the logits (vocab) of batch token i of the last
 * dc_engine_decode or dc_engine_decode_mtp call, NULL if they were not asked
 * for. dc_engine_hidden: the final-normed hidden state (hidden_size) of batch
 * token i of the last dc_engine_decode. Both borrowed until the next call. */
const float *dc_engine_logits(const dc_engine *e, int i);
const float *dc_engine_hidden(const dc_engine *e, int i);
/* dc_engine_last_bytes: bytes of weights the last dc_engine_decode read once
 * for its whole batch: attention, norms, router, dense and shared FFNs, the
 * routed experts chosen by at least one token, final norm and head. */
size_t dc_engine_last_bytes(const dc_engine *e);
/* dc_engine_decode_mtp: the first MTP module over n positions, each extending
 * its sequence's MTP cache.
 * b->token[i] is the token after that position; hidden (n, hidden_size) the
 * main model's final-normed state there (rows of dc_engine_hidden; may point
 * into it). Logits predict the token two after each position. */
int dc_engine_decode_mtp(dc_engine *e, const dc_batch *b, const float *hidden, dc_err *err);

/* Stop strings (src/infer/stop.c): generated text is pushed as it comes;
 * bytes that could still be the start of a stop string are held back until
 * they are known not to be one. The stop string itself is never released. */
typedef struct dc_stop dc_stop;
/* dc_stop_new: stops[0..n) (non-empty strings, copied). */
int dc_stop_new(const char *const *stops, int n, dc_stop **out, dc_err *err);
void dc_stop_free(dc_stop *s);
/* dc_stop_push: add text; *out and *out_len: the bytes now safe to show (borrowed
 * until the next call). Returns 1 once a stop string has completed (what came
 * before it is in *out), 0 otherwise. */
int dc_stop_push(dc_stop *s, const char *text, size_t len, const char **out, size_t *out_len);
/* dc_stop_flush: the held-back bytes at the end of generation (none after a stop). */
void dc_stop_flush(dc_stop *s, const char **out, size_t *out_len);
/* dc_stop_reset: forget the text, keep the stop strings. */
void dc_stop_reset(dc_stop *s);

/* Batched generation on an engine: many sequences sampled together, each
 * with its own sampler (parameters, seed) and limits. */
enum { DC_FINISH_NONE = 0, DC_FINISH_STOP = 1, DC_FINISH_LENGTH = 2, DC_FINISH_CANCEL = 3 };
typedef struct dc_gen_seq {
    const int *prompt;   /* (n_prompt) ids; with share_prompt_of >= 0 ignored */
    int n_prompt;
    int share_prompt_of; /* -1, or the index of an earlier entry whose prompt this one
                            repeats: forked from it after its prefill, not prefilled again */
    dc_sampler *smp;     /* borrowed; each sequence its own */
    int max_new;         /* tokens to generate at most */
    int *out;            /* (max_new) caller-owned: the generated ids */
    /* results */
    int n_out;
    int finish;          /* DC_FINISH_* */
} dc_gen_seq;
/* dc_gen_batch_cb: called with each new token of sequence index i; nonzero
 * stops that sequence (DC_FINISH_STOP; the token is kept). */
typedef int (*dc_gen_batch_cb)(void *ctx, int i, int token);
typedef struct dc_gen_batch_opts {
    int eos;             /* stop after this token; -1: never */
    int mtp;             /* each sequence drafts with the MTP module and verifies two tokens a step */
    int prefill_chunk;   /* prompt tokens per sequence per step (0: all at once) */
    dc_gen_batch_cb cb;  /* may be NULL */
    void *ctx;
    volatile int *cancel;
    /* draft: with mtp, the draft token for sequence index i from its MTP logits
     * (vocab), n_gen tokens generated so far; NULL: their argmax. For tests and
     * benchmarks (an oracle drafter exercises acceptance on random weights). */
    int (*draft)(void *ctx, int i, const float *mtp_logits, int n_gen);
} dc_gen_batch_opts;
/* dc_generate_batch: run seqs[0..n) to completion on e (at most max_seqs at
 * once; the rest wait for a free slot), sequences freed at the end. For each
 * sequence the tokens equal what dc_generate would give it alone with the
 * same sampler (see engine.c for where the arithmetic differs by batch). */
int dc_generate_batch(dc_engine *e, dc_gen_seq *seqs, int n, const dc_gen_batch_opts *o, dc_gen_stats *st,
                      dc_err *err);

/* ---------------------------------------------------------------- GGUF */
/* llama.cpp's format, architecture deepseek2 (docs/gguf.md). dc_model_load,
 * dc_config_load and dc_tokenizer_load take a .gguf path too: its tensors, of
 * any type F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q2_K..Q6_K, IQ4_NL,
 * IQ4_XS, Q8_1, Q8_K, F64: the matrices kept as stored where a kernel exists
 * for the type (all of these but Q8_1, Q8_K and F64), the rest dequantised to
 * float32 (docs/gguf.md). */
/* dc_convert_stats: what a conversion wrote. */
typedef struct dc_convert_stats {
    int n_tensors;
    int n_fallback;              /* matrices stored in another type than asked (rows not whole blocks) */
    int n_types;
    struct {
        char type[8];            /* "q4_K", "f32", ... */
        int count;
        uint64_t bytes;
    } types[16];
    uint64_t file_bytes;
    int has_tokenizer;           /* 0: tokenizer.ggml.* absent, the file is for deepc only */
} dc_convert_stats;

typedef struct dc_convert_opts {
    const char *type;  /* f32, f16 (default), bf16, q8_0, q4_0, q4_1, q5_0, q5_1, q2_k, q3_k, q4_k, q5_k, q6_k,
                          iq4_nl, iq4_xs, or a mixed preset as llama.cpp's: q3_k_m, q4_k_s, q4_k_m, q5_k_s, q5_k_m */
    void (*log)(void *ctx, const char *line); /* per-tensor type fallbacks, warnings; may be NULL */
    void *log_ctx;
    int allow_requantize;       /* a .gguf source whose matrices are quantised is refused unless set */
    const char *tokenizer;      /* a tokenizer.json (or directory or .gguf) to write into the GGUF instead of
                                   the source's own; NULL: the source's */
    dc_convert_stats *stats;    /* filled when not NULL */
} dc_convert_opts;
/* dc_convert_to_gguf: the model at src (an HF directory, FP8 included, or a
 * .gguf: then this is quantize) as a deepseek2 GGUF at out, atomically, with
 * its tokenizer and chat template when it has them and its MTP modules as
 * nextn tensors. Without a tokenizer the file loads in deepc only (llama.cpp
 * requires tokenizer.ggml.model): o->log is told so. Stale temporaries of
 * killed conversions beside out are removed first. */
int dc_convert_to_gguf(const char *src, const char *out, const dc_convert_opts *o, dc_err *err);
/* dc_convert_to_hf: a .gguf back to an HF directory (config.json, float32
 * model.safetensors, tokenizer.json when the GGUF has a tokenizer), written
 * beside out_dir and renamed into place. An out_dir that exists and is not
 * empty is refused unless force, which replaces it atomically. */
int dc_convert_to_hf(const char *src, const char *out_dir, int force, dc_err *err);

#ifdef __cplusplus
}
#endif
#endif
