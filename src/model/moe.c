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
#include <omp.h>
#include <stdint.h>
#include <string.h>
#include "model/model.h"
#include "model/train_layers.h"
#include "kernels/rvec.h"

/* topk_desc: the indices of the k largest of v[0..n) in descending order;
 * ties go to the lower index. */
static void topk_desc(const double *v, int n, int k, int *out) {
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

void moe_choose(const double *choice_in, int E, int G, int topk_group, int K, int method, int has_bias, int *idx) {
    double choice[E];
    memcpy(choice, choice_in, sizeof choice);
    if (method != DC_TOPK_GREEDY && G > 1) {
        int per = E / G, keep[G];
        double gs[G];
        for (int g = 0; g < G; g++) {
            const double *v = choice + g * per;
            if (has_bias) {
                int two[2];
                topk_desc(v, per, 2, two);
                gs[g] = v[two[0]] + v[two[1]];
            } else {
                gs[g] = v[0];
                for (int j = 1; j < per; j++) gs[g] = fmax(gs[g], v[j]);
            }
        }
        topk_desc(gs, G, topk_group, keep);
        for (int g = 0; g < G; g++) {
            int kept = 0;
            for (int q = 0; q < topk_group; q++) kept |= keep[q] == g;
            if (!kept)
                for (int j = 0; j < per; j++) choice[g * per + j] = -INFINITY;
        }
    }
    topk_desc(choice, E, K, idx);
}

/* route_token: one token's router logits s (E), turned into scores in place,
 * into its K experts ix and weights w (the rule above) */
static void route_token(const dc_config *c, const layer_w *lw, float *s, int *ix, float *w) {
    const int E = c->n_routed_experts, K = c->num_experts_per_tok;
    double choice[E];
    if (c->scoring_func == DC_SCORE_SIGMOID) {
        for (int e = 0; e < E; e++) s[e] = 1.0f / (1.0f + expf(-s[e]));
    } else {
        float mx = s[0];
        for (int e = 1; e < E; e++) mx = fmaxf(mx, s[e]);
        double sum = 0;
        for (int e = 0; e < E; e++) sum += (s[e] = expf(s[e] - mx));
        for (int e = 0; e < E; e++) s[e] = (float)(s[e] / sum);
    }
    for (int e = 0; e < E; e++) choice[e] = (double)s[e] + (lw->router_bias ? lw->router_bias[e] : 0.0f);
    moe_choose(choice, E, c->n_group, c->topk_group, K, c->topk_method, lw->router_bias != NULL, ix);
    float sum = 0;
    for (int k = 0; k < K; k++) sum += (w[k] = s[ix[k]]);
    if (c->norm_topk_prob && K > 1)
        for (int k = 0; k < K; k++) w[k] /= sum + 1e-20f;
    for (int k = 0; k < K; k++) w[k] *= c->routed_scaling_factor;
}

void moe_route(const dc_config *c, const layer_w *lw, int T, const float *xn, float *rlog, int *idx, float *wts) {
    const int E = c->n_routed_experts, K = c->num_experts_per_tok;
    mat router = {(float *)lw->router, MAT_F32, E, c->hidden_size};
    matmul_mv(rlog, xn, &router, T); /* (T, E); the same bits in any batch: it picks experts */
    for (int t = 0; t < T; t++) route_token(c, lw, rlog + (size_t)t * E, idx + (size_t)t * K, wts + (size_t)t * K);
}

/* one_fits: whether moe_one can run this layer: the shared experts (if any)
 * one FFN of Is rows (n_shared_experts x Im: V2-Lite's two are one of 2816),
 * every routed expert of Im, every gate and up multiplying the same kind of
 * activations (one quantised x for all), every down too */
static int one_fits(const dc_config *c, const layer_w *lw) {
    const int E = c->n_routed_experts, K = c->num_experts_per_tok, Im = c->moe_intermediate_size;
    if (K < 1 || K > 64) return 0;
    const mat *g0 = &lw->exp_gate[0], *d0 = &lw->exp_down[0];
    const int ga = wtype_get(g0->type)->act, da = wtype_get(d0->type)->act;
    for (int e = -1; e < E; e++) {
        if (e < 0 && !c->n_shared_experts) continue;
        const mat *g = e < 0 ? &lw->sh_gate : &lw->exp_gate[e], *u = e < 0 ? &lw->sh_up : &lw->exp_up[e];
        const mat *d = e < 0 ? &lw->sh_down : &lw->exp_down[e];
        if (!g->data || wtype_get(g->type)->act != ga || wtype_get(u->type)->act != ga || wtype_get(d->type)->act != da)
            return 0;
        if (u->rows != g->rows || d->cols != g->rows || (e >= 0 && g->rows != Im)) return 0;
    }
    return 1;
}

int moe_one_fits(const dc_config *c, const layer_w *lw) { return one_fits(c, lw); }

/* one_plan: after routing, the experts to run in the order their outputs
 * are added: the shared one (weight 1, e -1) first, then the K chosen by
 * ascending id (the order moe_forward's loop adds them); returns how many */
static int one_plan(const dc_config *c, const scratch *s, int *e, float *w) {
    const int K = c->num_experts_per_tok, S = c->n_shared_experts ? 1 : 0;
    if (S) e[0] = -1, w[0] = 1;
    for (int k = 0; k < K; k++) { /* insertion sort of K */
        int j = S + k;
        for (; j > S && e[j - 1] > s->idx[k]; j--) e[j] = e[j - 1], w[j] = w[j - 1];
        e[j] = s->idx[k], w[j] = s->wts[k];
    }
    return S + K;
}

/* the three matrices of run k (e[k] < 0: the shared experts) */
static const mat *run_mat(const layer_w *lw, const int *e, int k, int which) {
    if (e[k] < 0) return which == 0 ? &lw->sh_gate : which == 1 ? &lw->sh_up : &lw->sh_down;
    return which == 0 ? &lw->exp_gate[e[k]] : which == 1 ? &lw->exp_up[e[k]] : &lw->exp_down[e[k]];
}

/* the routed runs' h (K, Im) and the shared one's (Is) quantised for the
 * downs, runs shared out over the threads: a[0] the shared (when S), a[S] the
 * K routed ones as tokens of one act */
static void one_h_fill(mv_act *a, int S, int K, const float *h1, int Is, int i, int n) {
    if (S && i == 0) mv_act_fill(&a[0], h1, 1, 0, 1);
    const int j = S ? (i + n - 1) % n : i; /* thread 0 took the shared one: it comes last here */
    mv_act_fill(&a[S], h1 + (size_t)S * Is, K, j, n);
}

/* moe_one: the whole MoE of ONE token (decode) in one parallel region
 * (issue 15: the router, the shared expert and the routed ones ran three
 * regions with five barriers among them; V2-Lite, whose two shared experts
 * are one FFN of 2 Im rows, ran them all apart: 8 regions and 26 barriers a
 * layer): router rows shared out, x quantised once for every gate and up;
 * thread 0 routes; each thread its share of the rows of every expert run (the
 * shared one among them), SwiGLU on them, then h quantised once for every
 * down, then out over the thread's rows of C: shared output plus w_k * y_k by
 * ascending expert id. The same kernels and sums as router + ffn_forward + the
 * per-expert loop: the same bits. The region's phases meet at team_sync (a
 * decode step's one region runs them too: moe_one_team).
 * one_prep: the buffers and activations into sh, on the calling thread (the
 * workspace is its own); 0 when one_fits says no or memory is short. */
static int one_prep(const dc_config *c, scratch *s, const layer_w *lw, one_share *sh) {
    const int K = c->num_experts_per_tok, Im = c->moe_intermediate_size, C = c->hidden_size;
    const int S = c->n_shared_experts ? 1 : 0, N = K + S, Is = S ? lw->sh_gate.rows : 0;
    if (!one_fits(c, lw)) return 0;
    const mat router = {(float *)lw->router, MAT_F32, c->n_routed_experts, C}, *g0 = &lw->exp_gate[0];
    const mat *dw[2] = {S ? &lw->sh_down : &lw->exp_down[0], &lw->exp_down[0]};
    const int dt[2] = {S ? 1 : K, K};
    const size_t H = (size_t)Is + (size_t)K * Im; /* h's floats: the shared run's Is, then K of Im */
    if (!scratch_grow(&s->ex, &s->ex_cap, 2 * H + (size_t)N * C) || !mv_act_init(&sh->a[0], 0, &router, 1) ||
        !mv_act_init(&sh->a[1], 0, g0, 1) || !mv_acts_init(&sh->a[2], 1, dw, dt, 1 + S))
        return 0;
    sh->h1 = s->ex, sh->h3 = s->ex + H, sh->ye = s->ex + 2 * H;
    return 1;
}

/* the phases of moe_one on thread t->i of t->n, after one_prep */
static void one_run(const team *t, one_share *sh, const dc_config *c, scratch *s, const layer_w *lw, const float *xn,
                    float *out) {
    const int K = c->num_experts_per_tok, C = c->hidden_size, Im = c->moe_intermediate_size;
    const int S = c->n_shared_experts ? 1 : 0, N = K + S, Is = S ? lw->sh_gate.rows : 0;
    const mat router = {(float *)lw->router, MAT_F32, c->n_routed_experts, C};
    const int i = t->i, n = t->n;
    mv_act *ar = &sh->a[0], *ax = &sh->a[1], *ah = &sh->a[2];
    float *h1 = sh->h1, *h3 = sh->h3, *ye = sh->ye, *w = sh->w;
    int *e = sh->e;
    matmul_mv_share(s->rlog, xn, ar, &router, 1, i, n);
    mv_act_fill(ax, xn, 1, i, n);
    team_sync(t);
    if (i == 0) route_token(c, lw, s->rlog, s->idx, s->wts), one_plan(c, s, e, w);
    team_sync(t);
    for (int k = 0; k < N; k++) {
        const int R = e[k] < 0 ? Is : Im, r0 = (int)((int64_t)R * i / n), r1 = (int)((int64_t)R * (i + 1) / n);
        const size_t o = k < S ? 0 : (size_t)Is + (size_t)(k - S) * Im;
        float *a = h1 + o, *b = h3 + o;
        matmul_mv_share(a, xn, ax, run_mat(lw, e, k, 0), 1, i, n);
        matmul_mv_share(b, xn, ax, run_mat(lw, e, k, 1), 1, i, n);
        for (int r = r0; r < r1; r++) a[r] = a[r] / (1.0f + expf(-a[r])) * b[r];
    }
    team_sync(t);
    one_h_fill(ah, S, K, h1, Is, i, n);
    team_sync(t);
    for (int k = 0; k < N; k++) {
        mv_act one = ah[k < S ? 0 : S];
        if (k >= S && one.q) one.xa = q8_act_view(&ah[S].xa, k - S, 1);
        const float *h = h1 + (k < S ? 0 : (size_t)Is + (size_t)(k - S) * Im);
        matmul_mv_share(ye + (size_t)k * C, h, &one, run_mat(lw, e, k, 2), 1, i, n);
    }
    int c0 = (int)((int64_t)C * i / n), c1 = (int)((int64_t)C * (i + 1) / n); /* this thread's rows of ye */
    for (int x = c0; x < c1; x++) out[x] = e[0] < 0 ? ye[x] : 0;
    for (int k = e[0] < 0; k < N; k++)
        for (int x = c0; x < c1; x++) out[x] += w[k] * ye[(size_t)k * C + x];
}

static int moe_one(const dc_config *c, scratch *s, const layer_w *lw, const float *xn, float *out) {
    one_share sh;
    if (!one_prep(c, s, lw, &sh)) return 0;
    const size_t H = (size_t)(sh.h3 - sh.h1); /* h's floats (one_prep) */
    int nthr = H * c->hidden_size < 32768 ? 1 : omp_get_max_threads();
    team_bar bar;
    team_bar_init(&bar);
#pragma omp parallel num_threads(nthr) if (nthr > 1)
    {
        team t = team_of(&bar);
        one_run(&t, &sh, c, s, lw, xn, out);
    }
    s->experts_run += c->num_experts_per_tok;
    return 1;
}

int moe_one_team(const team *t, one_share *sh, const dc_config *c, scratch *s, const layer_w *lw, const float *xn,
                 float *out) {
    if (t->i == 0) sh->ok = one_prep(c, s, lw, sh);
    team_sync(t);
    if (!sh->ok) return 0;
    one_run(t, sh, c, s, lw, xn, out);
    if (t->i == 0) s->experts_run += c->num_experts_per_tok;
    return 1;
}

/* order_by_count: the e with cnt[e] > 0, most first (ties by id); how many */
static int order_by_count(const int *cnt, int E, int *ord) {
    int n = 0;
    for (int e = 0; e < E; e++) {
        if (!cnt[e]) continue;
        int j = n++;
        for (; j > 0 && cnt[ord[j - 1]] < cnt[e]; j--) ord[j] = ord[j - 1];
        ord[j] = e;
    }
    return n;
}

/* moe_side: the routed experts of T > 1 tokens side by side (issue 15:
 * prefill ran them one after another, each product split over the threads
 * with its own region and barriers, ~8 tokens an expert): the tokens
 * gathered by expert (slots in token order, as the loop below), then in ONE
 * parallel region each thread takes whole experts, most tokens first
 * (dynamic), its products on one thread (the same kernels and T as the loop:
 * a product's bits depend on neither the thread count nor who runs it), h
 * in its own part of the scratch; after a barrier each token adds w_k y_k
 * for its experts by ascending id onto out (the loop's order). Needs
 * 2 TK C + threads * 2 nmax Im floats (TK = T K slots); 0 when they cannot
 * be had (the caller runs the loop). */
static int moe_side(const dc_config *c, scratch *s, const layer_w *lw, int T, const float *xn, float *out) {
    const int E = c->n_routed_experts, K = c->num_experts_per_tok, C = c->hidden_size, TK = T * K;
    const int nth = omp_get_max_threads();
    int cnt[E], off[E + 1], ord[E], nmax = 0, Im = 0;
    memset(cnt, 0, sizeof cnt);
    for (int i = 0; i < TK; i++) cnt[s->idx[i]]++;
    off[0] = 0;
    for (int e = 0; e < E; e++) {
        off[e + 1] = off[e] + cnt[e];
        nmax = cnt[e] > nmax ? cnt[e] : nmax;
        Im = cnt[e] && lw->exp_gate[e].rows > Im ? lw->exp_gate[e].rows : Im;
    }
    const size_t hper = (size_t)2 * nmax * Im;
    if (!scratch_grow(&s->ex, &s->ex_cap, (size_t)2 * TK * C + (size_t)nth * hper)) return 0;
    float *xe = s->ex, *ye = xe + (size_t)TK * C, *hb = ye + (size_t)TK * C;
    int pos[TK], fill[E]; /* pos[t*K+k]: the slot of token t's k-th choice */
    memcpy(fill, off, sizeof fill);
    for (int t = 0; t < T; t++) /* token order within an expert, as the loop gathers */
        for (int k = 0; k < K; k++) pos[t * K + k] = fill[s->idx[t * K + k]]++;
    const int ne = order_by_count(cnt, E, ord);
#pragma omp parallel num_threads(nth) if (nth > 1)
    {
#pragma omp for schedule(static)
        for (int i = 0; i < TK; i++) memcpy(xe + (size_t)pos[i] * C, xn + (size_t)(i / K) * C, sizeof(float) * C);
        float *h = hb + (size_t)omp_get_thread_num() * hper;
#pragma omp for schedule(dynamic, 1)
        for (int i = 0; i < ne; i++) {
            const int e = ord[i], n = cnt[e];
            const size_t o = (size_t)off[e] * C;
            ffn_forward_h(h, h + (size_t)n * lw->exp_gate[e].rows, &lw->exp_gate[e], &lw->exp_up[e],
                          &lw->exp_down[e], n, xe + o, ye + o);
        }
#pragma omp for schedule(static)
        for (int t = 0; t < T; t++) {
            int sl[K], ex[K]; /* the token's slots by ascending expert */
            for (int k = 0; k < K; k++) {
                int j = k;
                for (; j > 0 && ex[j - 1] > s->idx[t * K + k]; j--) ex[j] = ex[j - 1], sl[j] = sl[j - 1];
                ex[j] = s->idx[t * K + k], sl[j] = t * K + k;
            }
            float *o = out + (size_t)t * C;
            for (int k = 0; k < K; k++) {
                const float w = s->wts[sl[k]], *y = ye + (size_t)pos[sl[k]] * C;
                for (int d = 0; d < C; d++) o[d] += w * y[d];
            }
        }
    }
    s->experts_run += ne;
    return 1;
}

void moe_forward(const dc_config *c, scratch *s, const layer_w *lw, int T, const float *xn, float *out) {
    const int E = c->n_routed_experts, K = c->num_experts_per_tok, C = c->hidden_size;
    if (T == 1 && moe_one(c, s, lw, xn, out)) return;
    moe_route(c, lw, T, xn, s->rlog, s->idx, s->wts);
    if (c->n_shared_experts) ffn_forward(s, &lw->sh_gate, &lw->sh_up, &lw->sh_down, T, xn, out);
    else memset(out, 0, sizeof(float) * (size_t)T * C);
    if (T > 1 && moe_side(c, s, lw, T, xn, out)) return;
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
        s->experts_run++;
        ffn_forward(s, &lw->exp_gate[e], &lw->exp_up[e], &lw->exp_down[e], n, s->xe, s->ye);
        for (int i = 0; i < n; i++) {
            float *o = out + (size_t)s->tok[i] * C;
            const float *y = s->ye + (size_t)i * C;
            for (int d = 0; d < C; d++) o[d] += s->tokw[i] * y[d];
        }
    }
}

/* ---------------------------------------------------------------- training
 *
 * Gradients reach the gate through the chosen experts' weights
 *   w_k = rsf * s_k / (sum_chosen s + 1e-20)   (or rsf * s_k without normalisation)
 * and through the sequence-wise balance loss (V3 eq. 17-20), per sequence:
 *   s'_it = s_it / sum_j s_jt,  P_i = mean_t s'_it,  f_i = E/(K T) * #{t chose i},
 *   L = alpha * sum_i f_i P_i   (f is a count: no gradient), averaged over the batch.
 * The choice of experts and the selection bias get none.
 */

void moe_dims_init(moe_dims *d, const dc_config *c, float alpha) {
    *d = (moe_dims){c->hidden_size, c->n_routed_experts, c->num_experts_per_tok, c->moe_intermediate_size,
                    c->n_shared_experts, c->n_group, c->topk_group, c->topk_method, c->scoring_func,
                    c->norm_topk_prob, c->routed_scaling_factor, alpha, 1, NULL};
}

void moe_act_point(moe_act *a, bump *b, const moe_dims *d, int B, int T) {
    size_t N = (size_t)B * T, NK = N * d->K, Is = (size_t)d->Im * d->S;
    a->s = BUMP(b, N * d->E, real);
    a->idx = BUMP(b, NK, int);
    a->w = BUMP(b, NK, real);
    a->ssum = BUMP(b, N, real);
    a->f = BUMP(b, (size_t)B * d->E, real);
    a->cnt = BUMP(b, d->E, int);
    a->off = BUMP(b, d->E + 1, int);
    a->slot = BUMP(b, NK, int);
    a->pos = BUMP(b, NK, int);
    a->xe = BUMP(b, NK * d->C, real);
    a->ye = BUMP(b, NK * d->C, real);
    size_t R = d->ep > 1 ? NK * d->ep : NK; /* an owner may receive every token of its group */
    a->ex = (ffn_act){BUMP(b, R * 2 * d->Im, real), BUMP(b, R * d->Im, real)};
    a->xr = d->ep > 1 ? BUMP(b, R * d->C, real) : NULL;
    a->rcnt = d->ep > 1 ? BUMP(b, d->E, int) : NULL;
    if (d->S) a->sh = (ffn_act){BUMP(b, N * 2 * Is, real), BUMP(b, N * Is, real)};
}

size_t moe_scratch_floats(const moe_dims *d, int B, int T) {
    size_t N = (size_t)B * T, NK = N * d->K, Is = (size_t)d->Im * d->S;
    size_t ff = 3 * (NK * d->Im > N * Is ? NK * d->Im : N * Is);
    size_t R = d->ep > 1 ? NK * d->ep : 0;
    return 2 * NK * d->C + N * d->E + NK + 2 * R * d->C + ff;
}

static ffn_act ffn_act_at(const ffn_act *a, size_t row, int width) {
    size_t o = row * width;
    return (ffn_act){a->h + 2 * o, a->a + o};
}

void moe_train_route(moe_act *a, const moe_w *p, const moe_dims *d, const real *x, int N) {
    const int E = d->E, K = d->K, C = d->C;
    linear_fwd_hp(a->s, x, p->router, N, C, E);
#pragma omp parallel for schedule(static) if (N >= 256)
    for (int t = 0; t < N; t++) {
        real *s = a->s + (size_t)t * E;
        double choice[E];
        if (d->scoring == DC_SCORE_SIGMOID) {
            for (int e = 0; e < E; e++) s[e] = 1 / (1 + rexp(-s[e]));
        } else {
            real mx = s[0];
            for (int e = 1; e < E; e++) mx = s[e] > mx ? s[e] : mx;
            real sum = 0;
            for (int e = 0; e < E; e++) sum += (s[e] = rexp(s[e] - mx));
            for (int e = 0; e < E; e++) s[e] /= sum;
        }
        for (int e = 0; e < E; e++) choice[e] = (double)s[e] + (p->bias ? p->bias[e] : 0);
        int *ix = a->idx + (size_t)t * K;
        moe_choose(choice, E, d->G, d->topk_group, K, d->topk_method, p->bias != NULL, ix);
        real sum = 0, *w = a->w + (size_t)t * K;
        for (int k = 0; k < K; k++) sum += (w[k] = s[ix[k]]);
        a->ssum[t] = sum;
        for (int k = 0; k < K; k++) w[k] = d->rsf * (d->norm && K > 1 ? w[k] / (sum + (real)1e-20) : w[k]);
    }
    /* slots grouped by expert, in token order */
    memset(a->cnt, 0, sizeof(int) * E);
    for (int i = 0; i < N * K; i++) a->cnt[a->idx[i]]++;
    a->off[0] = 0;
    for (int e = 0; e < E; e++) a->off[e + 1] = a->off[e] + a->cnt[e];
    int fill[E];
    memcpy(fill, a->off, sizeof fill);
    for (int i = 0; i < N * K; i++) {
        int sl = fill[a->idx[i]]++;
        a->slot[sl] = i;
        a->pos[i] = sl;
    }
#pragma omp parallel for schedule(static) if ((size_t)N * K * C > 65536)
    for (int sl = 0; sl < N * K; sl++)
        memcpy(a->xe + (size_t)sl * C, x + (size_t)(a->slot[sl] / K) * C, sizeof(real) * C);
}

void moe_train_combine(real *y, moe_act *a, const moe_w *p, const moe_dims *d, const real *x, int B, int T) {
    const int N = B * T, E = d->E, K = d->K, C = d->C;
    if (d->S) swiglu_train_fwd(d->lin, y, &a->sh, &p->shared, x, N, C, d->Im * d->S);
    else memset(y, 0, sizeof(real) * (size_t)N * C);
#pragma omp parallel for schedule(static) if ((size_t)N * K * C > 65536)
    for (int t = 0; t < N; t++)
        for (int k = 0; k < K; k++) {
            const real *ye = a->ye + (size_t)a->pos[t * K + k] * C;
            real wk = a->w[t * K + k], *yt = y + (size_t)t * C;
#pragma omp simd
            for (int c = 0; c < C; c++) yt[c] += wk * ye[c];
        }
    /* balance loss */
    a->aux = 0;
    for (int b = 0; b < B; b++) {
        real *f = a->f + (size_t)b * E;
        memset(f, 0, sizeof(real) * E);
        for (int t = b * T; t < (b + 1) * T; t++)
            for (int k = 0; k < K; k++) f[a->idx[t * K + k]] += (real)E / ((real)K * T);
        if (d->alpha <= 0) continue;
        double l = 0;
        for (int t = b * T; t < (b + 1) * T; t++) {
            const real *s = a->s + (size_t)t * E;
            double all = 0, fp = 0;
            for (int e = 0; e < E; e++) all += s[e], fp += f[e] * s[e];
            l += fp / all / T;
        }
        a->aux += (real)(d->alpha * l / B);
    }
}

/* experts_order: the experts with tokens, most tokens first (ties by id);
 * returns how many. The routed experts then run over the threads one whole
 * expert at a time (dynamic), their products single-threaded inside the
 * region, instead of one expert after another with each small GEMM split
 * over the threads (issue 15). Each expert's rows, weights and gradients are
 * its own: the same bits either way (the bf16 / fp8 GEMMs quantise their
 * operands into their thread's scratch slot, kernels/linear.c). */
static int experts_order(const moe_act *a, int E, int *ord) { return order_by_count(a->cnt, E, ord); }

static int experts_threaded(void) { return omp_get_max_threads() > 1; }

void moe_train_fwd(real *y, moe_act *a, const moe_w *p, const moe_dims *d, const real *x, int B, int T) {
    const int C = d->C;
    moe_train_route(a, p, d, x, B * T);
    int ord[d->E], ne = experts_order(a, d->E, ord);
#pragma omp parallel for schedule(dynamic, 1) if (experts_threaded())
    for (int i = 0; i < ne; i++) {
        int e = ord[i];
        ffn_act sub = ffn_act_at(&a->ex, a->off[e], d->Im);
        swiglu_train_fwd(d->lin, a->ye + (size_t)a->off[e] * C, &sub, &p->experts[e], a->xe + (size_t)a->off[e] * C,
                         a->cnt[e], C, d->Im);
    }
    moe_train_combine(y, a, p, d, x, B, T);
}

moe_bwd_scr moe_bwd_split(const moe_dims *d, int N, real *scratch) {
    const size_t NK = (size_t)N * d->K, R = d->ep > 1 ? NK * d->ep : 0;
    moe_bwd_scr s;
    s.dxe = scratch, s.dye = s.dxe + NK * d->C, s.ds = s.dye + NK * d->C, s.dw = s.ds + (size_t)N * d->E;
    s.dyr = s.dw + NK, s.dxr = s.dyr + R * d->C, s.ffs = s.dxr + R * d->C;
    /* the sums: dxe (the experts' input gradients add into it) and ds; dye
     * and dw are written whole by moe_bwd_out */
    rv_zero(s.dxe, NK * d->C);
    memset(s.ds, 0, sizeof(real) * (size_t)N * d->E);
    return s;
}

void moe_bwd_out(real *dx, const moe_w *g, const real *dy, const real *x, const moe_act *a, const moe_w *p,
                 const moe_dims *d, int N, const moe_bwd_scr *s) {
    const int K = d->K, C = d->C;
    if (d->S) swiglu_bwd(d->lin, dx, &g->shared, dy, x, &a->sh, &p->shared, N, C, d->Im * d->S, s->ffs);
    /* y_t += w_tk * ye_slot */
#pragma omp parallel for schedule(static) if ((size_t)N * K * C > 65536)
    for (int i = 0; i < N * K; i++) {
        int sl = a->pos[i];
        const real *dyt = dy + (size_t)(i / K) * C, *ye = a->ye + (size_t)sl * C;
        real *dyes = s->dye + (size_t)sl * C, wk = a->w[i], acc = 0;
        for (int c = 0; c < C; c++) acc += dyt[c] * ye[c], dyes[c] = wk * dyt[c];
        s->dw[i] = acc;
    }
}

void moe_bwd_gate(real *dx, const moe_w *g, const real *x, const moe_act *a, const moe_w *p, const moe_dims *d,
                  int B, int T, const moe_bwd_scr *sc) {
    const int N = B * T, E = d->E, K = d->K, C = d->C;
    const real *dxe = sc->dxe, *dw = sc->dw;
    real *ds = sc->ds;
#pragma omp parallel for schedule(static)
    for (int t = 0; t < N; t++)
        for (int k = 0; k < K; k++) {
            const real *src = dxe + (size_t)a->pos[t * K + k] * C;
            real *dst = dx + (size_t)t * C;
#pragma omp simd
            for (int c = 0; c < C; c++) dst[c] += src[c];
        }
    /* the chosen weights back to the scores */
#pragma omp parallel for schedule(static) if (N >= 256)
    for (int t = 0; t < N; t++) {
        const int *ix = a->idx + (size_t)t * K;
        const real *s = a->s + (size_t)t * E, *dwt = dw + (size_t)t * K;
        real *dst = ds + (size_t)t * E;
        if (d->norm && K > 1) {
            real S = a->ssum[t] + (real)1e-20, tmp = 0;
            for (int k = 0; k < K; k++) tmp += dwt[k] * s[ix[k]];
            for (int k = 0; k < K; k++) dst[ix[k]] += d->rsf * (dwt[k] / S - tmp / (S * S));
        } else {
            for (int k = 0; k < K; k++) dst[ix[k]] += d->rsf * dwt[k];
        }
    }
    /* the balance loss back to the scores: L_b = alpha sum_i f_i mean_t s'_it */
    if (d->alpha > 0)
        for (int b = 0; b < B; b++) {
            const real *f = a->f + (size_t)b * E;
            for (int t = b * T; t < (b + 1) * T; t++) {
                const real *s = a->s + (size_t)t * E;
                real *dst = ds + (size_t)t * E, all = 0, gs = 0, k = d->alpha / ((real)B * T);
                for (int e = 0; e < E; e++) all += s[e];
                for (int e = 0; e < E; e++) gs += k * f[e] * s[e] / all;
                for (int e = 0; e < E; e++) dst[e] += (k * f[e] - gs) / all;
            }
        }
    /* scores back to the router logits */
#pragma omp parallel for schedule(static) if (N >= 256)
    for (int t = 0; t < N; t++) {
        const real *s = a->s + (size_t)t * E;
        real *dz = ds + (size_t)t * E;
        if (d->scoring == DC_SCORE_SIGMOID) {
            for (int e = 0; e < E; e++) dz[e] *= s[e] * (1 - s[e]);
        } else {
            real dot = 0;
            for (int e = 0; e < E; e++) dot += s[e] * dz[e];
            for (int e = 0; e < E; e++) dz[e] = s[e] * (dz[e] - dot);
        }
    }
    linear_bwd_hp(dx, g->router, ds, x, p->router, N, C, E);
}

void moe_bwd(real *dx, const moe_w *g, const real *dy, const real *x, const moe_act *a, const moe_w *p,
             const moe_dims *d, int B, int T, real *scratch) {
    const int N = B * T, C = d->C;
    moe_bwd_scr s = moe_bwd_split(d, N, scratch);
    moe_bwd_out(dx, g, dy, x, a, p, d, N, &s);
    int ord[d->E], ne = experts_order(a, d->E, ord);
#pragma omp parallel for schedule(dynamic, 1) if (experts_threaded())
    for (int i = 0; i < ne; i++) {
        int e = ord[i];
        ffn_act sub = ffn_act_at(&a->ex, a->off[e], d->Im);
        size_t o = (size_t)a->off[e] * C;
        swiglu_bwd(d->lin, s.dxe + o, &g->experts[e], s.dye + o, a->xe + o, &sub, &p->experts[e], a->cnt[e], C, d->Im,
                   s.ffs + (size_t)a->off[e] * 3 * d->Im); /* each expert its own part of the scratch */
    }
    moe_bwd_gate(dx, g, x, a, p, d, B, T, &s);
}
