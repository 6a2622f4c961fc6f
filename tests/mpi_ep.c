/*
 * mpi_ep.c — expert parallelism (src/model/moe_ep.c, src/train/trainer_ep.c)
 * across real MPI ranks: run by tests/test_ep.sh as
 *   mpirun -np 2 build-mpi/tests/mpi_ep
 * Every rank prints its own "N passed, N failed"; the script adds them up.
 *
 * Training: the "tiny" preset (8 routed experts, top-2 in 2 of 4 groups, MTP,
 * balance loss, bias update) trained 20 steps with ep = 2, each rank on its
 * own micro-batch, against one process (on every rank, dist_single) training
 * on the same two micro-batches per step (accum 2). The losses must agree to
 * 1e-6 relative; the routed experts' gradients of the first step must be
 * bit-identical (each owner sums its rows source by source as one process
 * sums micro-batch by micro-batch), the shared ones within 1e-6.
 *
 * Inference: a model loaded with the experts split (each rank reads only its
 * own) gives the same greedy tokens and the same logits bits as one process
 * holding every expert.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "base/rng.h"
#include "dist/dist.h"
#include "harness.h"
#include "model/model.h"
#include "model/moe_ep.h"
#include "model/weights.h"
#include "train/checkpoint.h"
#include "train/trainer.h"
#include "train/trainer_ep.h"

#define STEPS 20

static dist g_d;

static void batch(int step, int mb, int V, int n, int *tok) {
    rng r;
    rng_seed(&r, 1000 + 17 * step + mb);
    for (int i = 0; i < n; i++) tok[i] = (int)(rng_u64(&r) % V);
}

static void opts(train_opts *o, int accum) {
    train_opts_default(o);
    o->B = 2, o->T = 12, o->accum = accum, o->warmup = 2, o->steps = STEPS, o->lr = 3e-3f;
    o->aux_alpha = 1e-2f, o->bias_gamma = 1e-2f;
}

static double rel(double a, double b) { return fabs(a - b) / (fabs(b) > 1e-30 ? fabs(b) : 1e-30); }

/* cmp_grads: every tensor this rank holds against the reference's */
static void cmp_grads(const trainer *ep, const trainer *one, double *shared_worst, int *expert_diff, int *compared) {
    for (int i = 0; i < ep->ntab; i++) {
        const wt_entry *e = &ep->tab[i];
        if (e->alias || e->kind == WT_BIAS) continue;
        const wt_entry *f = NULL;
        for (int j = 0; j < one->ntab && !f; j++)
            if (strcmp(one->tab[j].name, e->name) == 0) f = &one->tab[j];
        if (!f) continue;
        const float *a = ep->arena + ep->n + (*e->dst - ep->arena), *b = one->arena + one->n + (*f->dst - one->arena);
        size_t n = wt_numel(e);
        double num = 0, den = 0;
        for (size_t k = 0; k < n; k++) num += (a[k] - b[k]) * (double)(a[k] - b[k]), den += (double)b[k] * b[k];
        if (e->expert >= 0) *expert_diff += memcmp(a, b, n * sizeof *a) != 0;
        else if (den > 0 && sqrt(num / den) > *shared_worst) *shared_worst = sqrt(num / den);
        ++*compared;
    }
}

/* worst relative difference (norm) over every tensor of part (0 params, 2 m, 3 v) */
static double worst_part(const trainer *a, const trainer *b, int part, int *missing) {
    double worst = 0;
    for (int i = 0; i < b->ntab; i++) {
        const wt_entry *f = &b->tab[i], *e = NULL;
        if (f->alias) continue;
        for (int j = 0; j < a->ntab && !e; j++)
            if (strcmp(a->tab[j].name, f->name) == 0) e = &a->tab[j];
        if (!e) {
            ++*missing;
            continue;
        }
        const float *x = a->arena + part * a->n + (*e->dst - a->arena), *y = b->arena + part * b->n + (*f->dst - b->arena);
        double num = 0, den = 0;
        for (size_t k = 0; k < wt_numel(f); k++) num += (x[k] - y[k]) * (double)(x[k] - y[k]), den += (double)y[k] * y[k];
        if (den > 0 && sqrt(num / den) > worst) worst = sqrt(num / den);
    }
    return worst;
}

/* checkpoint_whole: the EP ranks' experts gathered on rank 0 make the whole
 * model (parameters and AdamW moments) one process holds; saved, it loads on
 * one process and back on the expert group with the same bits */
static void checkpoint_whole(const trainer *te, const trainer *t1, const dc_config *c, const train_opts *o) {
    const char *run = DC_BUILD "/tmp/mpi_ep_ckpt";
    dc_err err = {0};
    trainer full;
    int rc = trainer_ep_full(te, &full, &err);
    CHECK(rc == 0, "gathering the experts: %s", err.msg);
    if (rc) return;
    if (g_d.ep_rank == 0) {
        int missing = 0;
        double wp = worst_part(&full, t1, 0, &missing), wm = worst_part(&full, t1, 2, &missing),
               wv = worst_part(&full, t1, 3, &missing);
        printf("    whole model on rank 0: %d tensors, %d missing; against one process: params %.1e, m %.1e, v %.1e\n",
               full.ntab, missing, wp, wm, wv);
        CHECK(missing == 0 && full.n == t1->n, "the gathered model lacks %d tensors (%zu of %zu floats)", missing,
              full.n, t1->n);
        CHECK(wp < 1e-5 && wm < 1e-4 && wv < 1e-4, "gathered tensors differ from one process's");
        harness_sh("rm -rf %s && mkdir -p %s", run, run);
        CHECK(ckpt_save(&full, NULL, run, NULL, 1, &err) == 0, "ckpt_save: %s", err.msg);
    }
    dist_barrier(&g_d, DIST_WORLD, &err);
    char dir[512];
    snprintf(dir, sizeof dir, "%s/step-%07lld", run, (long long)te->step);
    trainer back, one;
    CHECK(trainer_init_dist(&back, c, o, dir, 1, &g_d, 0, &err) == 0, "resume on 2 ranks: %s", err.msg);
    int missing = 0;
    CHECK(worst_part(&back, te, 0, &missing) == 0 && missing == 0, "rank %d: parameters changed through the checkpoint",
          g_d.rank);
    trainer_free(&back);
    if (g_d.ep_rank == 0) {
        CHECK(trainer_init(&one, c, o, dir, 1, &err) == 0, "resume on 1 process: %s", err.msg);
        missing = 0;
        CHECK(worst_part(&one, &full, 0, &missing) == 0 && missing == 0, "one process reads another model");
        trainer_free(&one);
    }
    trainer_ep_full_free(&full);
}

static void train_equal(void) {
    dc_config c;
    dc_err err = {0};
    CHECK(dc_config_preset("tiny", &c, &err) == 0, "%s", err.msg);
    train_opts oe, o1;
    opts(&oe, 1), opts(&o1, 2);
    trainer te, t1;
    int rc = trainer_init_dist(&te, &c, &oe, NULL, 7, &g_d, 0, &err);
    CHECK(rc == 0, "ep trainer: %s", err.msg);
    if (rc) return;
    CHECK(trainer_init(&t1, &c, &o1, NULL, 7, &err) == 0, "reference trainer: %s", err.msg);
    /* memory: the experts this rank does not own are not allocated */
    size_t expert_floats = 0;
    for (int i = 0; i < t1.ntab; i++)
        if (t1.tab[i].expert >= 0) expert_floats += (wt_numel(&t1.tab[i]) + 15) / 16 * 16;
    size_t want = t1.n - expert_floats + expert_floats / g_d.ep_size;
    printf("    rank %d: params+grads+moments %.2f MB, one process %.2f MB (%zu of %zu floats per part)\n", g_d.rank,
           4.0 * te.n * 4 / 1e6, 4.0 * t1.n * 4 / 1e6, te.n, t1.n);
    CHECK(te.n == want, "rank %d holds %zu floats per part, want %zu", g_d.rank, te.n, want);
    const int n = oe.B * (oe.T + 1);
    int tok[2][n];
    double worst = 0, gworst = 0;
    for (int s = 0; s < STEPS; s++) {
        for (int m = 0; m < 2; m++) batch(s, m, c.vocab_size, n, tok[m]);
        trainer_zero_grad(&te);
        tbatch b = {oe.B, oe.T, tok[g_d.ep_rank], NULL, NULL};
        CHECK(trainer_forward(&te, &b, 1, &err) == 0, "ep forward: %s", err.msg);
        trainer_update(&te);
        trainer_zero_grad(&t1);
        for (int m = 0; m < 2; m++) {
            tbatch bm = {o1.B, o1.T, tok[m], NULL, NULL};
            trainer_forward(&t1, &bm, 1, &err);
        }
        trainer_update(&t1);
        CHECK(te.skipped == 0 && t1.skipped == 0, "step %d skipped (%d, %d): %s", s, te.skipped, t1.skipped,
              te.ep ? te.ep->err.msg : "");
        if (s == 0) {
            double sw = 0;
            int ed = 0, cmp = 0;
            cmp_grads(&te, &t1, &sw, &ed, &cmp);
            printf("    rank %d step 1: %d tensors compared, routed experts differing %d, shared worst rel %.1e\n",
                   g_d.rank, cmp, ed, sw);
            CHECK(ed == 0, "%d routed expert gradients differ from one process", ed);
            CHECK(sw < 1e-6, "shared gradients differ by %.2e relative", sw);
        }
        double d = fmax(fmax(rel(te.loss, t1.loss), rel(te.mtp_loss, t1.mtp_loss)), rel(te.aux_loss, t1.aux_loss));
        worst = fmax(worst, d), gworst = fmax(gworst, rel(te.grad_norm, t1.grad_norm));
        if (g_d.rank == 0 && (s < 2 || s == STEPS - 1))
            printf("    step %2d  ep loss %.9f  one %.9f  mtp %.9f / %.9f  aux %.3e / %.3e\n", s + 1, te.loss, t1.loss,
                   te.mtp_loss, t1.mtp_loss, te.aux_loss, t1.aux_loss);
    }
    printf("    rank %d: %d steps, worst relative loss difference %.2e, grad norm %.2e; %ld exchanges, %.1f kB sent, "
           "%.1f ms in them\n",
           g_d.rank, STEPS, worst, gworst, te.ep->exchanges, te.ep->bytes / 1e3, te.ep->secs * 1e3);
    CHECK(worst <= 1e-6, "losses differ by %.2e relative", worst);
    CHECK(te.ep->bytes > 0, "no rows were exchanged");
    /* the selection biases followed the same global loads */
    int l = c.first_k_dense_replace, bias_same = 1;
    for (int e = 0; e < c.n_routed_experts; e++)
        bias_same &= te.P.layers[l].router_bias[e] == t1.P.layers[l].router_bias[e];
    CHECK(bias_same, "layer %d's selection biases differ from one process", l);
    checkpoint_whole(&te, &t1, &c, &oe);
    trainer_free(&te);
    trainer_free(&t1);
}

/* greedy: n tokens after prompt, and the logits of the last step */
static int greedy(dc_model *m, const int *prompt, int np, int n, int *out, float *logits, dc_err *err) {
    dc_session *s = NULL;
    int V = dc_model_config(m)->vocab_size;
    int rc = dc_session_new(m, np + n, DC_ATTN_ABSORB, &s, err);
    if (!rc) rc = dc_forward(s, prompt, np, logits, 1, err);
    for (int i = 0; i < n && !rc; i++) {
        int best = 0;
        for (int v = 1; v < V; v++) best = logits[v] > logits[best] ? v : best;
        out[i] = best;
        if (i + 1 < n) rc = dc_forward(s, &best, 1, logits, 1, err);
    }
    dc_session_free(s);
    return rc;
}

#define GEN 24

static void generate_equal(void) {
    const char *dir = DC_BUILD "/tmp/mpi_ep_model";
    dc_config c;
    dc_err err = {0};
    CHECK(dc_config_preset("tiny", &c, &err) == 0, "%s", err.msg);
    c.n_routed_experts = 16, c.num_experts_per_tok = 4; /* several experts of each rank per token */
    if (g_d.rank == 0) {
        harness_sh("rm -rf %s && mkdir -p %s", dir, dir);
        CHECK(weights_write_random(&c, dir, 11, "f32", 0, &err) == 0, "%s", err.msg);
    }
    dist_barrier(&g_d, DIST_WORLD, &err);
    dc_model *m = NULL;
    int rc = model_load_ep(dir, &g_d, &m, &err);
    CHECK(rc == 0, "rank %d: %s", g_d.rank, err.msg);
    if (rc) return;
    size_t mine = dc_model_weight_bytes(m);
    if (g_d.ep_rank != 0) {
        CHECK(moe_ep_follow(m->ep, m, &err) == 0, "follower: %s", err.msg);
        printf("    rank %d: resident weights %.2f MB; served %ld exchanges, %.1f kB sent\n", g_d.rank, mine / 1e6,
               m->ep->exchanges, m->ep->bytes / 1e3);
        dc_model_free(m);
        return;
    }
    int prompt[5] = {3, 17, 99, 250, 7}, a[GEN], b[GEN];
    float la[c.vocab_size], lb[c.vocab_size];
    CHECK(greedy(m, prompt, 5, GEN, a, la, &err) == 0, "ep greedy: %s", err.msg);
    long ex = m->ep->exchanges;
    double kb = m->ep->bytes / 1e3, ms = m->ep->secs * 1e3;
    dc_model_free(m); /* releases the followers */
    dc_model *one = NULL;
    CHECK(dc_model_load(dir, &one, &err) == 0, "%s", err.msg);
    if (!one) return;
    size_t whole = dc_model_weight_bytes(one);
    CHECK(greedy(one, prompt, 5, GEN, b, lb, &err) == 0, "greedy: %s", err.msg);
    dc_model_free(one);
    int same = memcmp(a, b, sizeof a) == 0, bits = memcmp(la, lb, sizeof la) == 0;
    printf("    rank 0: %d greedy tokens %s, last logits %s; resident weights %.2f MB, one process %.2f MB; "
           "%ld exchanges, %.1f kB sent, %.1f ms\n",
           GEN, same ? "identical" : "DIFFER", bits ? "bit-identical" : "DIFFER", mine / 1e6, whole / 1e6, ex, kb, ms);
    CHECK(same && bits, "expert-parallel generation differs from one process");
    CHECK(mine < whole, "rank 0 holds %zu weight bytes, one process %zu", mine, whole);
}

/* the layouts expert parallelism refuses, with messages that say why */
static void bad_layouts(void) {
    dc_config c;
    dc_err err = {0};
    dc_config_preset("tiny", &c, &err);
    train_opts o;
    opts(&o, 1);
    trainer t;
    dc_config odd = c;
    odd.n_routed_experts = 7, odd.n_group = 1, odd.topk_group = 1;
    int rc = trainer_init_dist(&t, &odd, &o, NULL, 1, &g_d, 0, &err);
    CHECK(rc == DC_EARG && strstr(err.msg, "must divide n_routed_experts 7"), "7 experts on 2 ranks: %d %s", rc,
          err.msg);
    if (!rc) trainer_free(&t);
    dc_config dense = c;
    dense.n_routed_experts = 0;
    rc = trainer_init_dist(&t, &dense, &o, NULL, 1, &g_d, 0, &err);
    CHECK(rc == DC_EARG && strstr(err.msg, "needs a model with routed experts"), "dense model: %d %s", rc, err.msg);
    if (!rc) trainer_free(&t);
    /* sampling needs every expert: refused, not a crash */
    CHECK(trainer_init_dist(&t, &c, &o, NULL, 1, &g_d, 0, &err) == 0, "%s", err.msg);
    int p[2] = {1, 2}, out[2];
    rc = trainer_sample(&t, p, 2, 2, out, &err);
    CHECK(rc == DC_EARG && strstr(err.msg, "expert-parallel"), "sampling: %d %s", rc, err.msg);
    trainer_free(&t);
}

int main(int argc, char **argv) {
    dc_err err = {0};
    if (dist_start(&argc, &argv, &err) || dist_init(&g_d, 2, &err)) {
        printf("    FAIL %s\n0 passed, 1 failed\n", err.msg);
        dist_stop();
        return 1;
    }
    harness_threads(1);
    RUN(train_equal);
    RUN(generate_equal);
    RUN(bad_layouts);
    int rc = harness_done();
    dist_free(&g_d);
    dist_stop();
    return rc;
}
