/*
 * test_grad.c — every layer's backward against finite differences, in double
 * precision: this file and the layer sources are compiled with
 * -DDC_REAL_DOUBLE (see the Makefile), so `real` is double throughout.
 *
 * For a layer y = f(x; params) and a fixed random G, the loss is sum(G * y);
 * the backward gives d loss / d(every input and parameter), and each entry is
 * compared with (loss(p + h) - loss(p - h)) / 2h, h = 1e-5.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "base/rng.h"
#include "harness.h"
#include "model/config.h"
#include "model/norm.h"
#include "model/train_layers.h"

#define H_STEP 1e-5
#define TOL 1e-6

static rng R;

/* every array a case allocates, freed together at its end (pool_free) */
static void *pool[512];
static int npool;
static void *track(void *p) {
    if (npool < (int)(sizeof pool / sizeof *pool)) pool[npool++] = p;
    return p;
}
static void pool_free(void) {
    while (npool) free(pool[--npool]);
}

static real *rnd(size_t n, double scale) {
    real *p = track(malloc(sizeof(real) * n));
    for (size_t i = 0; i < n; i++) p[i] = scale * rng_normal(&R);
    return p;
}
static real *zeros(size_t n) { return track(calloc(n, sizeof(real))); }

/* a layer under test: fwd writes y from the current inputs/params; bwd adds
 * the gradients of sum(G * y) into the registered gradient arrays */
typedef struct layer {
    void (*fwd)(struct layer *);
    void (*bwd)(struct layer *);
    real *y, *G;
    size_t ny;
    int np;
    struct {
        real *p, *g;
        size_t n;
        const char *name;
    } ps[24];
    void *ctx;
} layer;

static void reg(layer *L, real *p, real *g, size_t n, const char *name) {
    L->ps[L->np].p = p, L->ps[L->np].g = g, L->ps[L->np].n = n, L->ps[L->np].name = name;
    L->np++;
}

static double loss(layer *L) {
    L->fwd(L);
    double s = 0;
    for (size_t i = 0; i < L->ny; i++) s += L->G[i] * L->y[i];
    return s;
}

/* compare every registered gradient with central differences; returns the worst error */
static double check(layer *L, const char *what) {
    for (int i = 0; i < L->np; i++) memset(L->ps[i].g, 0, sizeof(real) * L->ps[i].n);
    L->fwd(L);
    L->bwd(L);
    double worst = 0;
    for (int i = 0; i < L->np; i++) {
        size_t n = L->ps[i].n, stride = n > 60 ? n / 60 : 1;
        for (size_t j = 0; j < n; j += stride) {
            real *p = L->ps[i].p + j, keep = *p;
            *p = keep + H_STEP;
            double lp = loss(L);
            *p = keep - H_STEP;
            double lm = loss(L);
            *p = keep;
            double num = (lp - lm) / (2 * H_STEP), ana = L->ps[i].g[j];
            double err = fabs(num - ana) / fmax(1.0, fabs(num) + fabs(ana));
            if (err > worst) worst = err;
            if (err > TOL) {
                CHECK(0, "%s: d/d %s[%zu]: analytic %.9g, numeric %.9g", what, L->ps[i].name, j, ana, num);
                return err;
            }
        }
    }
    printf("    %-28s max error %.1e over %d tensors\n", what, worst, L->np);
    return worst;
}

/* ---------------------------------------------------------------- rmsnorm */
typedef struct {
    real *x, *w, *dx, *dw, *rstd;
    int N, n;
} norm_ctx;
static void norm_fwd(layer *L) {
    norm_ctx *c = L->ctx;
    rmsnorm_train_fwd(L->y, c->rstd, c->x, c->w, c->N, c->n, 1e-6f);
}
static void norm_bwd(layer *L) {
    norm_ctx *c = L->ctx;
    rmsnorm_bwd(c->dx, c->dw, L->G, c->x, c->rstd, c->w, c->N, c->n);
}
static void grad_rmsnorm(void) {
    norm_ctx c = {rnd(5 * 7, 1), rnd(7, 1), zeros(35), zeros(7), zeros(5), 5, 7};
    layer L = {norm_fwd, norm_bwd, zeros(35), rnd(35, 1), 35, 0, {{0}}, &c};
    reg(&L, c.x, c.dx, 35, "x");
    reg(&L, c.w, c.dw, 7, "w");
    CHECK(check(&L, "rmsnorm") <= TOL, "rmsnorm");
    pool_free();
}

/* ---------------------------------------------------------------- swiglu */
typedef struct {
    real *x, *dx, *scr;
    ffn_w p, g;
    ffn_act a;
    int N, C, I;
} ffn_ctx;
static void ffn_fwd(layer *L) {
    ffn_ctx *c = L->ctx;
    swiglu_train_fwd(NULL, L->y, &c->a, &c->p, c->x, c->N, c->C, c->I);
}
static void ffn_bwd(layer *L) {
    ffn_ctx *c = L->ctx;
    swiglu_bwd(NULL, c->dx, &c->g, L->G, c->x, &c->a, &c->p, c->N, c->C, c->I, c->scr);
}
/* joint: gate and up (and their gradients) as one (2I, C) block, up after
 * gate, as the trainer's arena has them (ffn.c runs them as one product) */
static void swiglu_case(int joint, const char *what) {
    int N = 4, C = 6, I = 5;
    real *pgu = rnd(2 * I * C, .5), *ggu = zeros(2 * I * C);
    ffn_ctx c = {rnd(N * C, 1), zeros(N * C), zeros(3 * N * I), {pgu, pgu + I * C, rnd(C * I, .5)},
                 {ggu, ggu + I * C, zeros(C * I)}, {zeros(2 * N * I), zeros(N * I)}, N, C, I};
    if (!joint) c.p.up = rnd(I * C, .5), c.g.up = zeros(I * C);
    layer L = {ffn_fwd, ffn_bwd, zeros(N * C), rnd(N * C, 1), (size_t)N * C, 0, {{0}}, &c};
    reg(&L, c.x, c.dx, N * C, "x");
    reg(&L, c.p.gate, c.g.gate, I * C, "gate");
    reg(&L, c.p.up, c.g.up, I * C, "up");
    reg(&L, c.p.down, c.g.down, C * I, "down");
    CHECK(check(&L, what) <= TOL, "%s", what);
    pool_free();
}
static void grad_swiglu(void) {
    swiglu_case(0, "swiglu");
    swiglu_case(1, "swiglu, [gate; up] one matrix");
}

/* ---------------------------------------------------------------- MLA */
typedef struct {
    real *x, *dx, *scr;
    mla_w p, g;
    mla_act a;
    mla_dims d;
    int B, T;
} mla_ctx;
static void mla_f(layer *L) {
    mla_ctx *c = L->ctx;
    mla_train_fwd(L->y, &c->a, &c->p, &c->d, c->x, c->B, c->T);
}
static void mla_b(layer *L) {
    mla_ctx *c = L->ctx;
    mla_bwd(c->dx, &c->g, L->G, c->x, &c->a, &c->p, &c->d, c->B, c->T, c->scr);
}
/* T tokens a sequence: 5 is one group of the attention's rows (mla.c: 6
 * query or key rows a tile); 20 is four (6, 6, 6, 2) and its keys two
 * column tiles (16, 4), so the causal limits between groups are checked;
 * qb (0: the default) the backward's block of query rows: 6 makes the 20
 * rows four blocks, so dV and dK add block after block */
static void mla_case(int ql, int yarn, int T, int qb, const char *what) {
    dc_config cfg = {.hidden_size = 10, .num_attention_heads = 3, .qk_nope_head_dim = 4, .qk_rope_head_dim = 4,
                     .v_head_dim = 3, .kv_lora_rank = 6, .q_lora_rank = ql, .rms_norm_eps = 1e-6f,
                     .rope_theta = 10000, .has_yarn = yarn, .rope_factor = 4,
                     .rope_original_max_position_embeddings = 16, .rope_beta_fast = 32, .rope_beta_slow = 1,
                     .rope_mscale = 0.8f, .rope_mscale_all_dim = 0.9f};
    rope rp;
    CHECK(rope_init(&rp, &cfg, NULL) == 0, "rope");
    mla_ctx c = {0};
    c.B = 2, c.T = T;
    mla_dims_init(&c.d, &cfg, &rp, config_softmax_scale(&cfg));
    if (qb) c.d.qb = qb;
    int C = 10, H = 3, qk = 8, kvl = 6, N = c.B * c.T;
    if (ql) {
        c.p.q_a = rnd(ql * C, .4), c.g.q_a = zeros(ql * C);
        c.p.q_a_norm = rnd(ql, .3), c.g.q_a_norm = zeros(ql);
        for (int i = 0; i < ql; i++) c.p.q_a_norm[i] += 1;
        c.p.q_b = rnd(H * qk * ql, .4), c.g.q_b = zeros(H * qk * ql);
    } else {
        c.p.q = rnd(H * qk * C, .4), c.g.q = zeros(H * qk * C);
    }
    c.p.kv_a = rnd((kvl + 4) * C, .4), c.g.kv_a = zeros((kvl + 4) * C);
    c.p.kv_a_norm = rnd(kvl, .3), c.g.kv_a_norm = zeros(kvl);
    for (int i = 0; i < kvl; i++) c.p.kv_a_norm[i] += 1;
    c.p.kv_b = rnd(H * 7 * kvl, .4), c.g.kv_b = zeros(H * 7 * kvl);
    c.p.o = rnd(C * H * 3, .4), c.g.o = zeros(C * H * 3);
    bump b = {0};
    mla_act_point(&c.a, &b, &c.d, c.B, c.T);
    b.base = track(calloc(1, b.off)), b.off = 0;
    mla_act_point(&c.a, &b, &c.d, c.B, c.T);
    c.scr = zeros(mla_scratch_floats(&c.d, c.B, c.T));
    c.x = rnd(N * C, 1), c.dx = zeros(N * C);
    layer L = {mla_f, mla_b, zeros(N * C), rnd(N * C, 1), (size_t)N * C, 0, {{0}}, &c};
    reg(&L, c.x, c.dx, N * C, "x");
    if (ql) {
        reg(&L, c.p.q_a, c.g.q_a, ql * C, "q_a");
        reg(&L, c.p.q_a_norm, c.g.q_a_norm, ql, "q_a_norm");
        reg(&L, c.p.q_b, c.g.q_b, H * qk * ql, "q_b");
    } else {
        reg(&L, c.p.q, c.g.q, H * qk * C, "q");
    }
    reg(&L, c.p.kv_a, c.g.kv_a, (kvl + 4) * C, "kv_a");
    reg(&L, c.p.kv_a_norm, c.g.kv_a_norm, kvl, "kv_a_norm");
    reg(&L, c.p.kv_b, c.g.kv_b, H * 7 * kvl, "kv_b");
    reg(&L, c.p.o, c.g.o, C * H * 3, "o");
    CHECK(check(&L, what) <= TOL, "%s", what);
    rope_free(&rp);
    pool_free();
}
static void grad_mla(void) {
    mla_case(5, 1, 5, 0, "mla q-lora + yarn");
    mla_case(0, 0, 5, 0, "mla plain q, plain rope");
    mla_case(5, 1, 20, 0, "mla causal groups of 6 rows, 2 key tiles");
    mla_case(0, 0, 20, 6, "mla backward blocks of 6 query rows");
}

/* ---------------------------------------------------------------- MoE */
typedef struct {
    real *x, *dx, *scr;
    moe_w p, g;
    moe_act a;
    moe_dims d;
    int B, T;
} moe_ctx;
static void moe_f(layer *L) {
    moe_ctx *c = L->ctx;
    moe_train_fwd(L->y, &c->a, &c->p, &c->d, c->x, c->B, c->T);
    L->y[0] += c->a.aux; /* the balance loss joins the checked loss through y */
}
static void moe_b(layer *L) {
    moe_ctx *c = L->ctx;
    moe_bwd(c->dx, &c->g, L->G, c->x, &c->a, &c->p, &c->d, c->B, c->T, c->scr);
}
static void moe_case(int sigmoid, int method, int G, int norm, int S, float alpha, const char *what) {
    int C = 8, E = 8, K = 2, Im = 5;
    dc_config cfg = {.hidden_size = C, .n_routed_experts = E, .num_experts_per_tok = K, .moe_intermediate_size = Im,
                     .n_shared_experts = S, .n_group = G, .topk_group = 2, .topk_method = method,
                     .scoring_func = sigmoid ? DC_SCORE_SIGMOID : DC_SCORE_SOFTMAX, .norm_topk_prob = norm,
                     .routed_scaling_factor = 2.5f};
    moe_ctx c = {0};
    c.B = 2, c.T = 6;
    int N = c.B * c.T;
    moe_dims_init(&c.d, &cfg, alpha);
    c.p.router = rnd(E * C, .8), c.g.router = zeros(E * C);
    c.p.bias = method == DC_TOPK_NOAUX_TC ? rnd(E, .1) : NULL;
    c.p.experts = track(calloc(E, sizeof(ffn_w))), c.g.experts = track(calloc(E, sizeof(ffn_w)));
    for (int e = 0; e < E; e++) {
        c.p.experts[e] = (ffn_w){rnd(Im * C, .5), rnd(Im * C, .5), rnd(C * Im, .5)};
        c.g.experts[e] = (ffn_w){zeros(Im * C), zeros(Im * C), zeros(C * Im)};
    }
    if (S) {
        c.p.shared = (ffn_w){rnd(Im * S * C, .5), rnd(Im * S * C, .5), rnd(C * Im * S, .5)};
        c.g.shared = (ffn_w){zeros(Im * S * C), zeros(Im * S * C), zeros(C * Im * S)};
    }
    bump b = {0};
    moe_act_point(&c.a, &b, &c.d, c.B, c.T);
    b.base = track(calloc(1, b.off)), b.off = 0;
    moe_act_point(&c.a, &b, &c.d, c.B, c.T);
    c.scr = zeros(moe_scratch_floats(&c.d, c.B, c.T));
    c.x = rnd(N * C, 1), c.dx = zeros(N * C);
    layer L = {moe_f, moe_b, zeros(N * C), rnd(N * C, 1), (size_t)N * C, 0, {{0}}, &c};
    L.G[0] = 1; /* so that y[0] carries the balance loss with weight 1 */
    reg(&L, c.x, c.dx, N * C, "x");
    reg(&L, c.p.router, c.g.router, E * C, "router");
    for (int e = 0; e < 3; e++) {
        reg(&L, c.p.experts[e].gate, c.g.experts[e].gate, Im * C, "expert.gate");
        reg(&L, c.p.experts[e].down, c.g.experts[e].down, C * Im, "expert.down");
    }
    if (S) {
        reg(&L, c.p.shared.up, c.g.shared.up, Im * S * C, "shared.up");
        reg(&L, c.p.shared.down, c.g.shared.down, C * Im * S, "shared.down");
    }
    CHECK(check(&L, what) <= TOL, "%s", what);
    CHECK(alpha <= 0 || c.a.aux > 0, "%s: the balance loss is positive (%g)", what, c.a.aux);
    pool_free();
}
static void grad_moe(void) {
    moe_case(1, DC_TOPK_NOAUX_TC, 4, 1, 1, 0.05f, "moe sigmoid noaux_tc + aux");
    moe_case(0, DC_TOPK_GREEDY, 1, 0, 2, 0.05f, "moe softmax greedy + aux");
    moe_case(0, DC_TOPK_GROUP_LIMITED, 4, 0, 0, 0, "moe softmax grouped, no shared");
}

int main(void) {
    rng_seed(&R, 1234);
    RUN(grad_rmsnorm);
    RUN(grad_swiglu);
    RUN(grad_mla);
    RUN(grad_moe);
    return harness_done();
}
