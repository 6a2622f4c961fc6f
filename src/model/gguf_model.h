/*
 * gguf_model.h — DeepSeek models as llama.cpp's `deepseek2` GGUF files:
 * metadata <-> dc_config, GGUF tensor names <-> deepc's weights table
 * (Hugging Face names), reading (matrices kept in their stored type when the
 * kernels have it, the rest dequantised to float32) and writing (in a chosen
 * ggml type). docs/gguf.md has the full key and tensor map.
 *
 * Names (llama-arch.cpp): token_embd, output_norm, output, and per block N
 * blk.N.{attn_norm, attn_q_a, attn_q_a_norm, attn_q_b | attn_q, attn_kv_a_mqa,
 * attn_kv_a_norm, attn_k_b + attn_v_b | attn_kv_b, attn_output, ffn_norm,
 * ffn_{gate,up,down} (dense), ffn_gate_inp, exp_probs_b.bias,
 * ffn_{gate,up,down}_exps | ffn_gate_up_exps (3-D: ne = {in, out, E}),
 * ffn_{gate,up,down}_shexp}; the MTP modules are blocks L.. with
 * blk.N.nextn.{eh_proj, enorm, hnorm, embed_tokens, shared_head_norm,
 * shared_head_head}.
 *
 * The split attention (convert_hf_to_gguf.py, DeepseekV2Model): kv_b
 * (H*(nope+v), kvl) viewed as (H, nope+v, kvl) is cut into k_b (H, nope,
 * kvl), stored transposed as torch (H, kvl, nope) = ggml ne {nope, kvl, H},
 * and v_b (H, v, kvl) = ne {kvl, v, H}. A float32 read folds them back
 * exactly; otherwise they are kept as stored, as layer_w's k_b (H*kvl, nope)
 * and v_b (H*v, kvl), the two products of the absorbed attention (mla.c).
 */
#ifndef DC_GGUF_MODEL_H
#define DC_GGUF_MODEL_H
#include <stdio.h>
#include "deepc.h"
#include "io/gguf.h"
#include "model/weights.h"

/* path_is_gguf: the path names a .gguf file. */
int path_is_gguf(const char *path);

/* gguf_config: a dc_config from a deepseek2 GGUF's metadata (and tensor
 * shapes: vocab size, the selection bias); g must have its tensors read. */
int gguf_config(const gguf *g, dc_config *cfg, dc_err *err);
/* gguf_config_load: open path and read its config (dc_config_load for .gguf). */
int gguf_config_load(const char *path, dc_config *cfg, dc_err *err);

/* gguf_name: the GGUF name of a table entry (for a routed expert, the 3-D
 * tensor that holds all of that layer's experts); 0 when it has none. */
int gguf_name(const wt_entry *e, char *out, size_t cap);

/* gguf_read_entries: fill the storage the table's entries point at from g
 * (alias entries whose GGUF tensor is absent are skipped). */
int gguf_read_entries(const dc_config *cfg, const gguf *g, const wt_entry *e, int n, dc_err *err);
/* gguf_read_entry: one entry of g into float32 dst (wt_numel(e) floats; a
 * split kv_b folded back), the mapped pages it read released; dst NULL: only
 * found and its shape checked. *present 0 (and DC_OK) for an absent alias. */
int gguf_read_entry(const dc_config *cfg, const gguf *g, const wt_entry *e, float *dst, int *present, dc_err *err);
/* weights_load_gguf: weights_load for a GGUF file: the table; matrices
 * stored in a type with kernels (wtype.h; attn_k_b / attn_v_b too, as k_b and
 * v_b) copied as they are into w->qarena as mats of that type (w->kept set,
 * w->dtype the type holding the most bytes); every other tensor, or all of
 * them when f32, dequantised into the float32 arena. */
int weights_load_gguf(const dc_config *cfg, const char *path, int f32, model_w *w, dc_err *err);

/* model_entries: the weights table of cfg with every dst / m pointer rebased
 * onto the loaded weights w (so a writer can walk a loaded model by name).
 * *out is malloc'd. */
int model_entries(const dc_config *cfg, model_w *w, wt_entry **out, int *n, dc_err *err);

/* Mixed presets (quant_mix.c): quant_mix_parse gives 1.. for "q4_k_m" etc.,
 * 0 for a name that is not one; quant_mix_type the GG_* type of a tensor
 * (its GGUF name, block index or -1, the number of blocks). */
int quant_mix_parse(const char *name);
const char *quant_mix_name(int mix);
int quant_mix_base(int mix);
uint32_t quant_mix_file_type(int mix);
int quant_mix_type(int mix, const char *gguf_name, int layer, int n_layers);

/* gguf_save_opts: what goes into a GGUF besides the weights. */
typedef struct gguf_save_opts {
    int type;                   /* GG_* for the matrices (the base type of a mix) */
    int mix;                    /* 0, or a quant_mix_parse preset choosing per tensor */
    dc_convert_stats *stats;    /* filled when not NULL */
    const dc_tokenizer *tok;    /* may be NULL: no tokenizer.ggml.* keys */
    const char *chat_template;  /* may be NULL */
    const char *name;           /* general.name, may be NULL */
    void (*log)(void *ctx, const char *line); /* fallbacks are reported here; may be NULL */
    void *log_ctx;
    /* read: entry e's values as float32 into dst (wt_numel(e) floats), a
     * tensor at a time from a source (wt_source.h); NULL: the entries point
     * at a loaded model's float32 storage */
    int (*read)(void *ctx, const wt_entry *e, float *dst, dc_err *err);
    void *read_ctx;
} gguf_save_opts;

/* gguf_save: write the model (entries from model_entries, or a weights
 * table read through o->read) as a deepseek2 GGUF at path, atomically. Matrices whose rows do not fit the type fall
 * back per tensor (K-quants -> q8_0 -> f16), said on o->log; norms, biases
 * and the router stay f32. */
int gguf_save(const dc_config *cfg, const wt_entry *e, int n, const gguf_save_opts *o, const char *path, dc_err *err);
#endif
