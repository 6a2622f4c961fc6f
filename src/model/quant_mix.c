/*
 * quant_mix.c — llama.cpp's mixed quantisation presets (q4_k_m and kin) for
 * deepseek2 GGUF files: one base type for the bulk of the matrices, more
 * bits where the error costs most. After llama.cpp's llama_tensor_get_type
 * (src/llama-quant.cpp), reduced to the tensors a deepseek2 file holds:
 *   output / nextn shared_head_head     q6_k always
 *   attn_k_b, attn_v_b, attn_kv_b       the "value" path: q6_k (_M), q5_k (_S)
 *   attn_output                         one step up in _M presets
 *   ffn_down (dense, _exps, _shexp)     q6_k in "more bits" layers for _M
 *                                       (the first and last eighth of the
 *                                       layers and every third between),
 *                                       one step up in the first eighth for _S
 *   everything else                     the base type
 * A chosen type whose blocks do not fit a tensor's rows falls back as every
 * type does (save_gguf.c pick_type).
 */
#include <stdio.h>
#include <string.h>
#include "kernels/ggml_types.h"
#include "model/gguf_model.h"

typedef struct mix_def {
    const char *name;
    int base, value, attn_out, down_more, down_first; /* GG_* */
    uint32_t file_type;                                  /* general.file_type (llama_ftype) */
} mix_def;

static const mix_def MIXES[] = {
    {"q3_k_m", GG_Q3_K, GG_Q5_K, GG_Q4_K, GG_Q5_K, GG_Q5_K, 12},
    {"q4_k_s", GG_Q4_K, GG_Q5_K, GG_Q4_K, GG_Q4_K, GG_Q5_K, 14},
    {"q4_k_m", GG_Q4_K, GG_Q6_K, GG_Q5_K, GG_Q6_K, GG_Q6_K, 15},
    {"q5_k_s", GG_Q5_K, GG_Q5_K, GG_Q5_K, GG_Q5_K, GG_Q6_K, 16},
    {"q5_k_m", GG_Q5_K, GG_Q6_K, GG_Q6_K, GG_Q6_K, GG_Q6_K, 17},
};
enum { NMIX = sizeof MIXES / sizeof *MIXES };

int quant_mix_parse(const char *name) {
    for (int i = 0; i < NMIX; i++)
        if (strcasecmp(name, MIXES[i].name) == 0) return i + 1;
    return 0;
}

const char *quant_mix_name(int mix) { return mix >= 1 && mix <= NMIX ? MIXES[mix - 1].name : NULL; }

int quant_mix_base(int mix) { return mix >= 1 && mix <= NMIX ? MIXES[mix - 1].base : -1; }

uint32_t quant_mix_file_type(int mix) { return mix >= 1 && mix <= NMIX ? MIXES[mix - 1].file_type : 0; }

/* llama.cpp's use_more_bits: the first and last eighth, and every third layer between */
static int more_bits(int i, int n) { return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2; }

int quant_mix_type(int mix, const char *gguf_name, int layer, int n_layers) {
    if (mix < 1 || mix > NMIX) return -1;
    const mix_def *m = &MIXES[mix - 1];
    if (strcmp(gguf_name, "output.weight") == 0 || strstr(gguf_name, "shared_head_head")) return GG_Q6_K;
    if (strstr(gguf_name, "attn_k_b") || strstr(gguf_name, "attn_v_b") || strstr(gguf_name, "attn_kv_b"))
        return m->value;
    if (strstr(gguf_name, "attn_output")) return m->attn_out;
    if (strstr(gguf_name, "ffn_down") && layer >= 0) {
        if (layer < n_layers / 8) return m->down_first;
        if (more_bits(layer, n_layers)) return m->down_more;
    }
    return m->base;
}
