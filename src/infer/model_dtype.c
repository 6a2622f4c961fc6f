/*
 * model_dtype.c — a loaded model's weight type for inference, and the bytes
 * of weights one decoded token reads (the denominator of the decode bound:
 * tokens/s <= bandwidth / bytes per token, DESIGN.md "Performance model").
 *
 * A model whose matrices were kept as stored (w.kept: a GGUF's q8_0, q4_0,
 * q4_1, q5_0, q5_1, q2_k, q3_k, q4_k, q5_k, q6_k, iq4_nl, iq4_xs, f16, bf16; a checkpoint's FP8, BF16, F16) runs
 * them so under "stored", "f32" (the default of the commands) or its own
 * type. Another type converts a checkpoint's BF16 / F16 matrices (the values
 * the float32 load would give, so the same result); a GGUF's or FP8
 * matrices are never requantised (an error). "fp8" quantises a float
 * checkpoint to e4m3 with 128x128 block scales (fp8_block.h). Byte counts
 * come from each mat's own type, so mixed files count right.
 */
#include <string.h>
#include "base/err.h"
#include "kernels/cpu.h"
#include "model/model.h"

int dc_model_set_dtype(dc_model *m, const char *dtype, dc_err *err) {
    if (!strcmp(dtype, "stored")) return DC_OK;
    int type = mat_type_parse(dtype);
    if (type < 0)
        return err_set(err, DC_EARG,
                       "--dtype: unknown weight type '%s' (stored, f32, bf16, f16, q8, q4_0, q4_1, q5_0, q5_1, "
                       "q2_k, q3_k, q4_k, q5_k, q6_k, iq4_nl, iq4_xs, fp8)",
                       dtype);
    if (type == m->w.dtype) return DC_OK;
    if (m->w.kept && type == MAT_F32) return DC_OK; /* f32: the matrices as stored */
    if (m->w.kept && !weights_convertible(&m->cfg, &m->w))
        return err_set(err, DC_EARG,
                       "--dtype %s: this model's matrices are used as stored (%s); requantising at load is not done "
                       "(deepc convert --type and deepc quantize write other types; or --dtype stored)", dtype, mat_type_name(m->w.dtype));
    return weights_convert(&m->cfg, &m->w, type, err);
}

const char *dc_model_dtype(const dc_model *m) { return mat_type_name(m->w.dtype); }

static size_t ffn_bytes(const mat *g, const mat *u, const mat *d) { return mat_bytes(g) + mat_bytes(u) + mat_bytes(d); }

size_t dc_model_decode_bytes(const dc_model *m) {
    const dc_config *c = &m->cfg;
    const size_t C = c->hidden_size;
    size_t b = mat_bytes(&m->w.head) + C * 4; /* head + final norm */
    for (int l = 0; l < c->num_hidden_layers; l++) {
        const layer_w *lw = &m->w.layers[l];
        b += 2 * C * 4; /* the two norms */
        if (c->q_lora_rank) b += mat_bytes(&lw->q_a) + mat_bytes(&lw->q_b) + (size_t)c->q_lora_rank * 4;
        else b += mat_bytes(&lw->q);
        b += mat_bytes(&lw->kv_a) + mat_bytes(&lw->o) + (size_t)c->kv_lora_rank * 4;
        b += lw->kv_b.data ? mat_bytes(&lw->kv_b) : mat_bytes(&lw->k_b) + mat_bytes(&lw->v_b);
        if (!lw->is_moe) {
            b += ffn_bytes(&lw->gate, &lw->up, &lw->down);
            continue;
        }
        b += (size_t)c->n_routed_experts * C * 4; /* router */
        if (c->n_shared_experts) b += ffn_bytes(&lw->sh_gate, &lw->sh_up, &lw->sh_down);
        b += (size_t)c->num_experts_per_tok * ffn_bytes(&lw->exp_gate[0], &lw->exp_up[0], &lw->exp_down[0]);
    }
    return b;
}

int dc_argmax(const float *v, int n) { return argmax_f32(v, n); }
const char *dc_kernels_name(void) { return kern_get()->name; }
