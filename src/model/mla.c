/*
 * mla.c — Multi-head Latent Attention (DeepSeek-V2 paper §2.1, V3 report
 * §2.1.1), in its two equivalent forms.
 *
 *   q      = q_b(norm(q_a(x)))  or  q_proj(x)         (T, H, nope+rope)
 *   [c, kr]= kv_a_proj_with_mqa(x)                    (T, kvl), (T, rope)
 *   c      = kv_a_layernorm(c); kr = rope(kr); q_pe = rope(q_pe)
 *   naive:    [k_nope, v] = kv_b(c) per head; score = q . [k_nope, kr]
 *   absorbed: score = (W_uk_h^T q_nope) . c + q_pe . kr, out_h = W_uv_h (sum p c)
 *             where kv_b's rows for head h are [W_uk_h (nope, kvl); W_uv_h (v, kvl)]
 *             (V2 appendix C): the cache holds only c and kr per token.
 *   p      = softmax(score * softmax_scale) over positions <= the query's
 *   out    = o_proj(concat_h out_h)
 *
 * Shapes as in model.h. Positions of this call are pos..pos+T-1; their keys
 * are appended to the cache before attending, so a token sees itself.
 */
#include <math.h>
#include <omp.h>
#include <string.h>
#include "model/model.h"
#include "model/norm.h"

/* softmax_inplace: p[j] = exp(s[j] - max) / sum over n entries. */
static void softmax_inplace(float *p, int n) {
    float mx = p[0];
    for (int j = 1; j < n; j++) mx = p[j] > mx ? p[j] : mx;
    double sum = 0;
    for (int j = 0; j < n; j++) {
        p[j] = expf(p[j] - mx);
        sum += p[j];
    }
    float inv = (float)(1.0 / sum);
    for (int j = 0; j < n; j++) p[j] *= inv;
}

void mla_forward(dc_session *ss, const layer_w *lw, kv_layer *kv, int pos, int T, const float *xn, float *out) {
    const dc_model *m = ss->m;
    const dc_config *c = &m->cfg;
    scratch *s = &ss->s;
    const int H = c->num_attention_heads, nope = c->qk_nope_head_dim, rd = c->qk_rope_head_dim;
    const int qk = nope + rd, vd = c->v_head_dim, kvl = c->kv_lora_rank;
    const float scale = m->softmax_scale;

    /* queries: (T, H, qk) */
    if (c->q_lora_rank) {
        matmul(s->qa, xn, &lw->q_a, T);
        rmsnorm_forward(s->qa, s->qa, lw->q_a_norm, T, c->q_lora_rank, c->rms_norm_eps);
        matmul(s->q, s->qa, &lw->q_b, T);
    } else {
        matmul(s->q, xn, &lw->q, T);
    }
    /* latent and shared rope key: (T, kvl + rope) */
    matmul(s->kva, xn, &lw->kv_a, T);
    for (int t = 0; t < T; t++) {
        float *row = s->kva + (size_t)t * (kvl + rd);
        rmsnorm_forward(row, row, lw->kv_a_norm, 1, kvl, c->rms_norm_eps);
        rope_apply(&m->rope, row + kvl, 1, rd, pos + t);
        rope_apply(&m->rope, s->q + (size_t)t * H * qk + nope, H, qk, pos + t);
    }

    if (ss->attn == DC_ATTN_NAIVE) {
        /* expand every head's key and value from the normed latents: (T, H, nope+v).
         * The latents sit strided inside kva; gather them into lat (unused here). */
        float *lat_in = s->lat; /* (T, kvl) */
        for (int t = 0; t < T; t++)
            memcpy(lat_in + (size_t)t * kvl, s->kva + (size_t)t * (kvl + rd), sizeof(float) * kvl);
        matmul(s->kv, lat_in, &lw->kv_b, T);
        for (int t = 0; t < T; t++) {
            int p = pos + t;
            for (int h = 0; h < H; h++) {
                float *k = kv->k + ((size_t)p * H + h) * qk, *v = kv->v + ((size_t)p * H + h) * vd;
                const float *src = s->kv + ((size_t)t * H + h) * (nope + vd);
                memcpy(k, src, sizeof(float) * nope);
                memcpy(k + nope, s->kva + (size_t)t * (kvl + rd) + kvl, sizeof(float) * rd);
                memcpy(v, src + nope, sizeof(float) * vd);
            }
        }
#pragma omp parallel for collapse(2) schedule(dynamic, 1)
        for (int t = 0; t < T; t++)
            for (int h = 0; h < H; h++) {
                float *sc = s->scores + (size_t)omp_get_thread_num() * ss->max_ctx;
                const float *q = s->q + ((size_t)t * H + h) * qk;
                int n = pos + t + 1;
                for (int j = 0; j < n; j++) sc[j] = dot_f32(q, kv->k + ((size_t)j * H + h) * qk, qk) * scale;
                softmax_inplace(sc, n);
                float *o = s->att + ((size_t)t * H + h) * vd;
                memset(o, 0, sizeof(float) * vd);
                for (int j = 0; j < n; j++) {
                    const float *v = kv->v + ((size_t)j * H + h) * vd;
                    for (int e = 0; e < vd; e++) o[e] += sc[j] * v[e];
                }
            }
    } else {
        for (int t = 0; t < T; t++) {
            memcpy(kv->ckv + (size_t)(pos + t) * kvl, s->kva + (size_t)t * (kvl + rd), sizeof(float) * kvl);
            memcpy(kv->kpe + (size_t)(pos + t) * rd, s->kva + (size_t)t * (kvl + rd) + kvl, sizeof(float) * rd);
        }
        const float *wkv = lw->kv_b.data; /* (H, nope+v, kvl) */
#pragma omp parallel for collapse(2) schedule(dynamic, 1)
        for (int t = 0; t < T; t++)
            for (int h = 0; h < H; h++) {
                float *sc = s->scores + (size_t)omp_get_thread_num() * ss->max_ctx;
                const float *q = s->q + ((size_t)t * H + h) * qk;
                float *qa = s->qabs + ((size_t)t * H + h) * kvl, *lat = s->lat + ((size_t)t * H + h) * kvl;
                const float *wh = wkv + (size_t)h * (nope + vd) * kvl;
                /* q_abs = W_uk_h^T q_nope: (kvl) */
                memset(qa, 0, sizeof(float) * kvl);
                for (int d = 0; d < nope; d++) {
                    const float *wr = wh + (size_t)d * kvl;
                    for (int l = 0; l < kvl; l++) qa[l] += q[d] * wr[l];
                }
                int n = pos + t + 1;
                for (int j = 0; j < n; j++)
                    sc[j] = (dot_f32(qa, kv->ckv + (size_t)j * kvl, kvl) +
                             dot_f32(q + nope, kv->kpe + (size_t)j * rd, rd)) * scale;
                softmax_inplace(sc, n);
                memset(lat, 0, sizeof(float) * kvl);
                for (int j = 0; j < n; j++) {
                    const float *cj = kv->ckv + (size_t)j * kvl;
                    for (int l = 0; l < kvl; l++) lat[l] += sc[j] * cj[l];
                }
                /* out_h = W_uv_h lat: (v) */
                float *o = s->att + ((size_t)t * H + h) * vd;
                for (int e = 0; e < vd; e++) o[e] = dot_f32(wh + (size_t)(nope + e) * kvl, lat, kvl);
            }
    }
    matmul(out, s->att, &lw->o, T); /* (T, C) */
}
