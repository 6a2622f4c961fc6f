/*
 * test_dist_dp.c — the pieces data parallelism is built from, in one
 * process (they also run under `make asan`; tests/test_dist.sh runs them
 * across ranks with mpirun):
 *   shard_cuts        dp_cuts: contiguous shards on chunk boundaries, covering n
 *   norm_by_shards    the gradient norm's chunk sums computed shard by shard
 *                     give grad_sumsq's bits
 *   adamw_by_shards   AdamW over two shards = AdamW over the whole, bit for bit
 *   bf16_moments      --bf16-moments keeps m and v in 2 bytes each: after one
 *                     step they are the float32 run's moments rounded to
 *                     bfloat16 (nearest even), the parameters follow the
 *                     float32 run's, and two shards give the whole's bits
 *   micro_batch_order trainer_backward's step gradient is ((0 + g0) + g1) + g2
 *                     of the micro-batches' own gradients, exactly; the figures
 *                     are the micro-batches' in order; and (printed, measured)
 *                     whether the in-place accumulation of trainer_forward
 *                     gives other bits
 *   single_layout     the one-rank collectives copy; dist_init refuses --ep 2
 */
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "base/rng.h"
#include "deepc.h"
#include "dist/dp.h"
#include "harness.h"
#include "train/trainer.h"

static void shard_cuts(void) {
    const size_t ns[] = {1, 1000, 65536, 65537, 300000, 1 << 22};
    for (size_t k = 0; k < sizeof ns / sizeof *ns; k++)
        for (int parts = 1; parts <= 5; parts++) {
            size_t cut[6], n = ns[k], ch = grad_chunk(n);
            dp_cuts(n, ch, parts, cut);
            CHECK(cut[0] == 0 && cut[parts] == n, "n %zu parts %d: [%zu, %zu)", n, parts, cut[0], cut[parts]);
            for (int r = 0; r < parts; r++) {
                CHECK(cut[r] <= cut[r + 1], "n %zu parts %d: shard %d reversed", n, parts, r);
                CHECK(cut[r] % ch == 0, "n %zu parts %d: cut %zu not on a chunk of %zu", n, parts, cut[r], ch);
            }
            /* balanced to a chunk */
            size_t nc = (n + ch - 1) / ch;
            for (int r = 0; r < parts && nc >= (size_t)parts; r++)
                CHECK((cut[r + 1] - cut[r] + ch - 1) / ch <= nc / parts + 1, "n %zu parts %d: shard %d too big", n,
                      parts, r);
        }
}

static void norm_by_shards(void) {
    const size_t n = 1000003;
    float *g = malloc(sizeof(float) * n);
    rng r;
    rng_seed(&r, 9);
    for (size_t i = 0; i < n; i++) g[i] = rng_normal(&r) * (i % 7 ? 1e-3f : 3.0f);
    size_t ch = grad_chunk(n), nc = (n + ch - 1) / ch, cut[4];
    double whole = grad_sumsq(g, n), part[64] = {0}, s = 0;
    CHECK(nc < 64, "%zu chunks", nc);
    dp_cuts(n, ch, 3, cut);
    for (int k = 0; k < 3; k++) grad_sumsq_parts(g + cut[k], cut[k], cut[k + 1], ch, part);
    for (size_t c = 0; c < nc; c++) s += part[c];
    CHECK(memcmp(&s, &whole, sizeof s) == 0, "by shards %.17g, whole %.17g", s, whole);
    free(g);
}

static int tiny_mb(trainer *t, int B, int T, int accum, int bf16_moments) {
    dc_config c;
    dc_err err = {0};
    if (dc_config_preset("tiny", &c, &err)) return printf("    %s\n", err.msg), -1;
    train_opts o;
    train_opts_default(&o);
    o.B = B, o.T = T, o.accum = accum, o.warmup = 0, o.bf16_moments = bf16_moments;
    if (trainer_init(t, &c, &o, NULL, 1, &err)) return printf("    %s\n", err.msg), -1;
    return 0;
}

static int tiny(trainer *t, int B, int T, int accum) { return tiny_mb(t, B, T, accum, 0); }

static void adamw_by_shards(void) {
    trainer a, b;
    CHECK(tiny(&a, 1, 8, 1) == 0 && tiny(&b, 1, 8, 1) == 0, "init");
    rng r;
    rng_seed(&r, 4);
    float *ga = a.arena + a.n, *gb = b.arena + b.n;
    for (size_t i = 0; i < a.n; i++) ga[i] = gb[i] = rng_normal(&r) * 0.01f;
    for (int s = 0; s < 3; s++) adamw_update(a.tab, a.ntab, a.arena, a.n, a.mv, &a.o, s, 1e-3f, 0.7f);
    size_t cut[3];
    dp_cuts(b.n, 4096, 2, cut); /* any cut: AdamW is element-wise */
    for (int s = 0; s < 3; s++)
        for (int k = 0; k < 2; k++)
            adamw_update_range(b.tab, b.ntab, b.arena, b.arena, gb + cut[k], adam_mom_at(b.mv, cut[k]), cut[k],
                               cut[k + 1], &b.o, s, 1e-3f, 0.7f);
    CHECK(memcmp(a.arena, b.arena, sizeof(float) * a.n) == 0, "parameters differ");
    CHECK(memcmp(a.mv.m, b.mv.m, sizeof(float) * a.n) == 0 && memcmp(a.mv.v, b.mv.v, sizeof(float) * a.n) == 0, "moments differ");
    trainer_free(&a), trainer_free(&b);
}

/* the round to nearest even of f to bfloat16, written out here (not dtype.h's) */
static uint16_t bf16_rne(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return (uint16_t)((u + 0x7fff + ((u >> 16) & 1)) >> 16);
}

static void bf16_moments(void) {
    trainer a, b, c;
    CHECK(tiny_mb(&a, 1, 8, 1, 0) == 0 && tiny_mb(&b, 1, 8, 1, 1) == 0 && tiny_mb(&c, 1, 8, 1, 1) == 0, "init");
    CHECK(!a.mv.bf16 && b.mv.bf16, "storage types");
    CHECK((char *)b.mv.v - (char *)b.mv.m == (ptrdiff_t)(2 * b.n) && (char *)b.mv.m - (char *)b.arena == (ptrdiff_t)(8 * b.n),
          "bf16 moments take 2 bytes an element after params and grads");
    rng r;
    rng_seed(&r, 5);
    for (size_t i = 0; i < a.n; i++) a.arena[a.n + i] = b.arena[b.n + i] = c.arena[c.n + i] = rng_normal(&r) * 0.01f;
    adamw_update(a.tab, a.ntab, a.arena, a.n, a.mv, &a.o, 0, 1e-3f, 0.7f);
    adamw_update(b.tab, b.ntab, b.arena, b.n, b.mv, &b.o, 0, 1e-3f, 0.7f);
    const float *am = a.mv.m, *av = a.mv.v;
    const uint16_t *bm = b.mv.m, *bv = b.mv.v;
    size_t badm = 0, nz = 0;
    for (size_t i = 0; i < a.n; i++) badm += bm[i] != bf16_rne(am[i]) || bv[i] != bf16_rne(av[i]), nz += am[i] != 0;
    printf("    after one step: %zu of %zu moments differ from the float32 run's rounded (%zu nonzero)\n", badm, a.n, nz);
    CHECK(badm == 0 && nz > a.n / 2, "bf16 m, v = rne(float32 m, v): %zu differ", badm);
    for (int s = 1; s < 3; s++) {
        adamw_update(a.tab, a.ntab, a.arena, a.n, a.mv, &a.o, s, 1e-3f, 0.7f);
        adamw_update(b.tab, b.ntab, b.arena, b.n, b.mv, &b.o, s, 1e-3f, 0.7f);
    }
    double md = 0, mp = 0;
    for (size_t i = 0; i < a.n; i++) md = fmax(md, fabs(a.arena[i] - b.arena[i])), mp = fmax(mp, fabs(a.arena[i]));
    printf("    after 3 steps (lr 1e-3): max |p_bf16 - p_f32| %.2e (max |p| %.2f)\n", md, mp);
    CHECK(md > 0 && md < 1e-4, "parameters follow the float32 run's: %g", md);
    size_t cut[3];
    dp_cuts(c.n, 4096, 2, cut);
    for (int s = 0; s < 3; s++)
        for (int k = 0; k < 2; k++)
            adamw_update_range(c.tab, c.ntab, c.arena, c.arena, c.arena + c.n + cut[k], adam_mom_at(c.mv, cut[k]), cut[k],
                               cut[k + 1], &c.o, s, 1e-3f, 0.7f);
    CHECK(memcmp(b.arena, c.arena, sizeof(float) * b.n) == 0 && memcmp(b.mv.m, c.mv.m, 2 * b.n) == 0 &&
              memcmp(b.mv.v, c.mv.v, 2 * b.n) == 0,
          "bf16 moments by shards = whole");
    trainer_free(&a), trainer_free(&b), trainer_free(&c);
}

static void micro_batch_order(void) {
    enum { A = 3, B = 2, T = 12 };
    trainer t, one;
    CHECK(tiny(&t, B, T, A) == 0 && tiny(&one, B, T, A) == 0, "init");
    int tok[A][B * (T + 1)];
    rng r;
    rng_seed(&r, 11);
    for (int a = 0; a < A; a++)
        for (int i = 0; i < B * (T + 1); i++) tok[a][i] = (int)(rng_u64(&r) % t.cfg.vocab_size);
    /* the micro-batches' own gradients, each from zero, summed in order by hand */
    float *sum = calloc(t.n, sizeof(float));
    double wl[A];
    dc_err err = {0};
    for (int a = 0; a < A; a++) {
        trainer_zero_grad(&one);
        tbatch b = {B, T, tok[a], NULL, NULL};
        CHECK(trainer_forward(&one, &b, 1, &err) == 0, "%s", err.msg);
        wl[a] = one.acc_wl;
        for (size_t i = 0; i < t.n; i++) sum[i] += one.arena[one.n + i];
    }
    trainer_zero_grad(&t);
    for (int a = 0; a < A; a++) {
        tbatch b = {B, T, tok[a], NULL, NULL};
        CHECK(trainer_backward(&t, &b, a, A, &err) == 0, "%s", err.msg);
    }
    CHECK(t.gacc && memcmp(t.gacc, sum, sizeof(float) * t.n) == 0, "the step's gradient is not the in-order sum");
    double ss;
    CHECK(trainer_update(&t) == 0, "%s", t.derr.msg);
    ss = 0;
    for (int a = 0; a < A; a++) ss += wl[a];
    CHECK(memcmp(&t.acc_wl, &ss, sizeof ss) == 0, "weighted loss %.17g, in order %.17g", t.acc_wl, ss);
    CHECK(t.grad_norm == sqrt(grad_sumsq(sum, t.n)), "grad norm %.17g", t.grad_norm);
    /* measured: the in-place accumulation inside the kernels (trainer_forward
     * with grad, micro-batch after micro-batch) */
    trainer_zero_grad(&one);
    for (int a = 0; a < A; a++) {
        tbatch b = {B, T, tok[a], NULL, NULL};
        trainer_forward(&one, &b, 1, &err);
    }
    size_t differ = 0;
    for (size_t i = 0; i < t.n; i++) differ += one.arena[one.n + i] != sum[i];
    printf("    in-place accumulation differs from the in-order sum in %zu of %zu gradient numbers\n", differ, t.n);
    free(sum);
    trainer_free(&t), trainer_free(&one);
}

static void single_layout(void) {
    dist d;
    dc_err err = {0};
    CHECK(dist_init(&d, 1, &err) == 0 && d.size == 1 && d.dp_size == 1 && d.ep_size == 1, "one rank: %s", err.msg);
    float x[5] = {1, 2, 3, 4, 5}, y[5] = {0};
    size_t cut[2] = {0, 5};
    CHECK(dp_allgather(&d, cut, x, y, &err) == 0 && memcmp(x, y, sizeof x) == 0, "allgather of one rank copies");
    double v[2] = {1.5, -2};
    CHECK(dist_sum_f64(&d, DIST_DP, v, 2, &err) == 0 && v[0] == 1.5 && v[1] == -2, "sum over one rank");
    dist_free(&d);
    if (!dist_enabled()) {
        CHECK(dist_init(&d, 2, &err) != 0 && strstr(err.msg, "--ep 2 needs 2 ranks"), "--ep 2: %s", err.msg);
    }
}

int main(void) {
    harness_threads(1);
    RUN(shard_cuts);
    RUN(norm_by_shards);
    RUN(adamw_by_shards);
    RUN(bf16_moments);
    RUN(micro_batch_order);
    RUN(single_layout);
    return harness_done();
}
