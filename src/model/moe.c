/*
 * moe.c — DeepSeekMoE (V2 paper §2.2, V3 report §2.1.2): shared experts that
 * every token uses plus K of E fine-grained routed experts.
 *
 * Gate, per token (the official Gate.forward):
 *   s      = sigmoid(x W_g^T)  (V3)   or softmax(x W_g^T) over E  (V2)
 *   choice = s + b             b = e_score_correction_bias, for CHOOSING only (noaux_tc)
 *   groups (group_limited_greedy, noaux_tc, n_group > 1): a group's score is
 *            the sum of its two best choice scores when b exists, else its max;
 *            only the topk_group best groups stay eligible
 *   idx    = top-K of choice;  w = s[idx]  (unbiased)
 *   w     /= sum(w) + 1e-20    when norm_topk_prob and K > 1
 *   w     *= routed_scaling_factor
 * out = sum_k w_k * expert_idx_k(x) + shared(x)
 *
 * Tokens are grouped by expert, so each chosen expert runs one product over
 * its tokens and unchosen experts are never touched.
 */
#include <math.h>
#include <string.h>
#include "model/model.h"

/* topk_desc: the indices of the k largest of v[0..n) in descending order;
 * ties go to the lower index. */
static void topk_desc(const float *v, int n, int k, int *out) {
    for (int i = 0; i < k; i++) {
        int best = -1;
        for (int j = 0; j < n; j++) {
            int taken = 0;
            for (int q = 0; q < i; q++) taken |= out[q] == j;
            if (!taken && (best < 0 || v[j] > v[best])) best = j;
        }
        out[i] = best;
    }
}

void moe_route(const dc_config *c, const layer_w *lw, int T, const float *xn, float *rlog, int *idx, float *wts) {
    const int E = c->n_routed_experts, K = c->num_experts_per_tok, G = c->n_group;
    mat router = {(float *)lw->router, MAT_F32, E, c->hidden_size};
    matmul(rlog, xn, &router, T); /* (T, E) */
    for (int t = 0; t < T; t++) {
        float *s = rlog + (size_t)t * E, choice[E];
        if (c->scoring_func == DC_SCORE_SIGMOID) {
            for (int e = 0; e < E; e++) s[e] = 1.0f / (1.0f + expf(-s[e]));
        } else {
            float mx = s[0];
            for (int e = 1; e < E; e++) mx = fmaxf(mx, s[e]);
            double sum = 0;
            for (int e = 0; e < E; e++) sum += (s[e] = expf(s[e] - mx));
            for (int e = 0; e < E; e++) s[e] = (float)(s[e] / sum);
        }
        for (int e = 0; e < E; e++) choice[e] = s[e] + (lw->router_bias ? lw->router_bias[e] : 0.0f);
        if (c->topk_method != DC_TOPK_GREEDY && G > 1) {
            int per = E / G, keep[G];
            float gs[G];
            for (int g = 0; g < G; g++) {
                const float *v = choice + g * per;
                if (lw->router_bias) {
                    int two[2];
                    topk_desc(v, per, 2, two);
                    gs[g] = v[two[0]] + v[two[1]];
                } else {
                    gs[g] = v[0];
                    for (int j = 1; j < per; j++) gs[g] = fmaxf(gs[g], v[j]);
                }
            }
            topk_desc(gs, G, c->topk_group, keep);
            for (int g = 0; g < G; g++) {
                int kept = 0;
                for (int q = 0; q < c->topk_group; q++) kept |= keep[q] == g;
                if (!kept)
                    for (int j = 0; j < per; j++) choice[g * per + j] = -INFINITY;
            }
        }
        int *ix = idx + (size_t)t * K;
        float *w = wts + (size_t)t * K;
        topk_desc(choice, E, K, ix);
        float sum = 0;
        for (int k = 0; k < K; k++) sum += (w[k] = s[ix[k]]);
        if (c->norm_topk_prob && K > 1)
            for (int k = 0; k < K; k++) w[k] /= sum + 1e-20f;
        for (int k = 0; k < K; k++) w[k] *= c->routed_scaling_factor;
    }
}

void moe_forward(dc_session *ss, const layer_w *lw, int T, const float *xn, float *out) {
    const dc_config *c = &ss->m->cfg;
    scratch *s = &ss->s;
    const int E = c->n_routed_experts, K = c->num_experts_per_tok, C = c->hidden_size;
    moe_route(c, lw, T, xn, s->rlog, s->idx, s->wts);
    if (c->n_shared_experts) ffn_forward(s, &lw->sh_gate, &lw->sh_up, &lw->sh_down, T, xn, out);
    else memset(out, 0, sizeof(float) * (size_t)T * C);
    for (int e = 0; e < E; e++) {
        int n = 0;
        for (int t = 0; t < T; t++)
            for (int k = 0; k < K; k++)
                if (s->idx[t * K + k] == e) {
                    s->tok[n] = t;
                    s->tokw[n] = s->wts[t * K + k];
                    memcpy(s->xe + (size_t)n * C, xn + (size_t)t * C, sizeof(float) * C);
                    n++;
                }
        if (!n) continue;
        ffn_forward(s, &lw->exp_gate[e], &lw->exp_up[e], &lw->exp_down[e], n, s->xe, s->ye);
        for (int i = 0; i < n; i++) {
            float *o = out + (size_t)s->tok[i] * C;
            const float *y = s->ye + (size_t)i * C;
            for (int d = 0; d < C; d++) o[d] += s->tokw[i] * y[d];
        }
    }
}
