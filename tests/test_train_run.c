/*
 * test_train_run.c — training runs as users drive them: prepare (text and
 * JSONL), train, metrics.jsonl, checkpoints, bit-exact --resume, a run killed
 * with SIGKILL, corrupt checkpoints, NaN handling, the bias update, plot.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "base/file.h"
#include "base/rng.h"
#include "harness.h"
#include "train/trainer.h"

#define BIN DC_BUILD "/deepc"
static char D[600];  /* data dir */
static char W[512];  /* work dir */

/* the arithmetic corpus, its tokenizer (W/tok.json) and shards (D) */
static void make_data(void) {
    snprintf(W, sizeof W, "%s", harness_tmpdir());
    snprintf(D, sizeof D, "%s/data", W);
    CHECK(harness_arith_shards(W, D) == 0, "corpus, tokenizer-train and prepare into %s", D);
}

static char *slurp(const char *fmt, const char *a) {
    char p[1024], *t;
    size_t n;
    snprintf(p, sizeof p, fmt, a);
    return file_read_all(p, &t, &n, NULL) ? NULL : t;
}

/* metrics lines without the timing field, for comparing runs */
static void strip_timing(char *s) {
    for (char *p = s; (p = strstr(p, "\"tokens_per_s\": "));) {
        char *e = strchr(p, ',');
        if (!e) break;
        memmove(p, e + 2, strlen(e + 2) + 1);
    }
}

#define TRAIN BIN " train --preset tiny --data %s --batch 2 --seq 24 --log-every 1 --eval-every 3 --warmup 2 -t 1"

static void prepare_files(void) {
    make_data();
    CHECK(harness_sh("test -f %s/train-00000.bin && test -f %s/val-00000.bin && test -f %s/tokenizer.json", D, D, D) == 0,
          "shards and tokenizer");
    /* JSONL with a text field, and a broken one */
    char p[700];
    snprintf(p, sizeof p, "%s/docs.jsonl", W);
    FILE *f = fopen(p, "w");
    fprintf(f, "{\"text\": \"12 + 34 = 46\", \"id\": 1}\n\n{\"text\": \"50 + 50 = 100\"}\n");
    fclose(f);
    CHECK(harness_sh(BIN " prepare --tokenizer %s/tok.json --data %s --out %s/j --val-frac 0 > %s/o.txt 2>&1", W, p,
                     W, W) == 0,
          "jsonl prepare");
    char *o = slurp("%s/o.txt", W);
    CHECK(o && strstr(o, "0 validation"), "jsonl: %s", o ? o : "");
    free(o);
    f = fopen(p, "a");
    fprintf(f, "{\"txt\": \"no text field\"}\n");
    fclose(f);
    CHECK(harness_sh(BIN " prepare --tokenizer %s/tok.json --data %s --out %s/j2 > %s/o.txt 2>&1", W, p, W, W) == 1,
          "bad jsonl fails");
    o = slurp("%s/o.txt", W);
    CHECK(o && strstr(o, "docs.jsonl:4") && strstr(o, "text"), "bad jsonl names file and line: %s", o ? o : "");
    free(o);
}

/* losses with a resume in the middle equal an uninterrupted run's, bit for bit */
static void resume_bit_exact(void) {
    CHECK(harness_sh(TRAIN " --out %s/full --steps 8 --save-every 4 2> /dev/null", D, W) == 0, "full run");
    CHECK(harness_sh(TRAIN " --out %s/half --steps 8 --stop-after 4 --save-every 4 2> /dev/null", D, W) == 0,
          "first half");
    CHECK(harness_sh(TRAIN " --out %s/half --steps 8 --save-every 4 --resume 2> /dev/null", D, W) == 0, "resume");
    char *a = slurp("%s/full/metrics.jsonl", W), *b = slurp("%s/half/metrics.jsonl", W);
    CHECK(a && b, "metrics written");
    if (a && b) {
        strip_timing(a), strip_timing(b);
        CHECK(strcmp(a, b) == 0, "metrics differ after resume:\n%s\nvs\n%s", a, b);
        CHECK(strstr(a, "\"step\": 8,") && strstr(a, "\"val_loss\""), "8 steps with validation logged");
    }
    free(a), free(b);
    /* the same seed and threads again: the same losses */
    CHECK(harness_sh(TRAIN " --out %s/again --steps 8 2> /dev/null", D, W) == 0, "again");
    a = slurp("%s/full/metrics.jsonl", W), b = slurp("%s/again/metrics.jsonl", W);
    if (a && b) {
        strip_timing(a), strip_timing(b);
        CHECK(strcmp(a, b) == 0, "two runs with one seed differ");
    }
    free(a), free(b);
    /* a checkpoint is a model every command loads */
    CHECK(harness_sh(BIN " logits -m %s/full/step-0000008 --ids 1,2,3 --mtp --out %s/l.f32 2> /dev/null", W, W) == 0,
          "logits on a checkpoint");
    CHECK(harness_sh("test -f %s/full/step-0000008/tokenizer.json", W) == 0, "tokenizer in checkpoint");
    /* an existing run is not overwritten without --resume */
    CHECK(harness_sh(TRAIN " --out %s/full --steps 8 > %s/o.txt 2>&1", D, W, W) == 1, "refuses to overwrite");
    char *o = slurp("%s/o.txt", W);
    CHECK(o && strstr(o, "--resume"), "message: %s", o ? o : "");
    free(o);
    /* plot */
    CHECK(harness_sh(BIN " plot %s/full > /dev/null 2>&1 && head -c 4 %s/full/loss.png | grep -q PNG", W, W) == 0,
          "plot wrote a PNG");
}

/* the loss of step s from a metrics file, NAN if absent */
static double loss_at(const char *metrics, int s) {
    char key[32];
    snprintf(key, sizeof key, "{\"step\": %d, \"loss\": ", s);
    const char *p = metrics ? strstr(metrics, key) : NULL;
    return p ? atof(p + strlen(key)) : NAN;
}

/* gradient accumulation: 2 micro-batches of 1 sequence = 1 batch of 2 (the
 * loader draws the same windows in the same order); and --init continues
 * from a checkpoint's weights */
static void accumulation_and_init(void) {
    CHECK(harness_sh(BIN " train --preset tiny --data %s --seq 24 --log-every 1 --eval-every 0 -t 1 --steps 4"
                         " --batch 2 --accum 1 --out %s/acc1 2> /dev/null", D, W) == 0, "batch 2");
    CHECK(harness_sh(BIN " train --preset tiny --data %s --seq 24 --log-every 1 --eval-every 0 -t 1 --steps 4"
                         " --batch 1 --accum 2 --out %s/acc2 2> /dev/null", D, W) == 0, "accum 2");
    char *a = slurp("%s/acc1/metrics.jsonl", W), *b = slurp("%s/acc2/metrics.jsonl", W);
    for (int st = 1; st <= 4; st++) {
        double la = loss_at(a, st), lb = loss_at(b, st);
        CHECK(fabs(la - lb) < 1e-4, "step %d: batch 2 loss %.6f, 2 x accumulated %.6f", st, la, lb);
    }
    free(a), free(b);
    CHECK(harness_sh(BIN " train --init %s/full/step-0000008 --data %s --seq 24 --batch 2 --log-every 1 -t 1"
                         " --steps 2 --out %s/fromckpt 2> /dev/null", W, D, W) == 0, "--init");
    a = slurp("%s/fromckpt/metrics.jsonl", W), b = slurp("%s/full/metrics.jsonl", W);
    CHECK(loss_at(a, 1) < loss_at(b, 1) - 0.2, "--init starts from the trained weights: %.4f vs fresh %.4f",
          loss_at(a, 1), loss_at(b, 1));
    free(a), free(b);
}

/* SIGKILL at an arbitrary moment: the run resumes from its last checkpoint */
static void killed_run_resumes(void) {
    for (int trial = 0; trial < 3; trial++) {
        char run[600];
        snprintf(run, sizeof run, "%s/killed%d", W, trial);
        harness_sh("(" TRAIN " --out %s --steps 1000 --save-every 2 --keep 2 > /dev/null 2>&1 &"
                   " echo $! > %s.pid; sleep %.2f; kill -9 $(cat %s.pid)) ; sleep 0.2",
                   D, run, run, 0.6 + 0.45 * trial, run);
        int rc = harness_sh(TRAIN " --out %s --steps 1000 --resume --log-every 1000 --eval-every 0 --save-every 0"
                                  " > /dev/null 2> %s.err & pid=$!; sleep 0.5; kill -INT $pid; wait $pid",
                            D, run, run);
        char *e = slurp("%s.err", run);
        CHECK(rc == 0 && e && strstr(e, "resumed"), "trial %d: resume after SIGKILL: rc %d: %s", trial, rc, e ? e : "");
        free(e);
        CHECK(harness_sh(BIN " logits -m %s/$(cat %s/latest) --ids 1,2 > /dev/null 2>&1", run, run) == 0,
              "trial %d: latest checkpoint loads", trial);
    }
}

/* review findings: a shard header with an absurd vocab, trainer.json with a
 * negative step, validation not leaking into the logged training loss, a
 * plot path with quotes and $(...) (no shell sees it) */
static void bad_inputs(void) {
    char p[700];
    snprintf(p, sizeof p, "%s/bigvocab", W);
    harness_sh("mkdir -p %s && cp %s/tokenizer.json %s/", p, D, p);
    snprintf(p, sizeof p, "%s/bigvocab/train-00000.bin", W);
    FILE *f = fopen(p, "wb");
    uint32_t hdr[4] = {1, 0xffffffffu, 64, 0};
    fwrite("DCTOKENS", 1, 8, f), fwrite(hdr, 4, 4, f);
    for (uint32_t i = 0; i < 64; i++) fwrite(&i, 4, 1, f);
    fclose(f);
    CHECK(harness_sh(BIN " train --preset tiny --data %s/bigvocab --out %s/bv --steps 1 --seq 8 -t 1 > %s/o.txt 2>&1",
                     W, W, W) == 1, "absurd vocab refused");
    char *o = slurp("%s/o.txt", W);
    CHECK(o && strstr(o, "vocab size 4294967295"), "message: %s", o ? o : "");
    free(o);
    /* trainer.json with a negative step */
    harness_sh("rm -rf %s/neg && cp -r %s/full %s/neg && sed -i 's/\"step\":[[:space:]]*8/\"step\": -5/' %s/neg/step-0000008/trainer.json",
               W, W, W, W);
    CHECK(harness_sh(TRAIN " --out %s/neg --steps 9 --resume > %s/o.txt 2>&1", D, W, W) == 1, "negative step refused");
    o = slurp("%s/o.txt", W);
    CHECK(o && strstr(o, "trainer.json") && strstr(o, "whole number"), "message: %s", o ? o : "");
    free(o);
    /* evaluating every step leaves the logged training losses as they are */
    CHECK(harness_sh(TRAIN " --out %s/ev1 --steps 3 --eval-every 1 2> /dev/null", D, W) == 0, "eval every step");
    CHECK(harness_sh(TRAIN " --out %s/ev0 --steps 3 --eval-every 0 2> /dev/null", D, W) == 0, "no eval");
    char *a = slurp("%s/ev1/metrics.jsonl", W), *b = slurp("%s/ev0/metrics.jsonl", W);
    for (int st = 1; st <= 3; st++)
        CHECK(loss_at(a, st) == loss_at(b, st), "step %d: loss %.8f with validation, %.8f without", st, loss_at(a, st),
              loss_at(b, st));
    free(a), free(b);
    /* plot: a run path with a quote and $(...) */
    CHECK(harness_sh("mkdir -p \"%s/q'x\\$(touch %s/PWNED)\" && cp %s/full/metrics.jsonl \"%s/q'x\\$(touch %s/PWNED)/\" && "
                     BIN " plot \"%s/q'x\\$(touch %s/PWNED)\" > /dev/null 2>&1", W, W, W, W, W, W, W) == 0,
          "plot with quotes in the path");
    CHECK(harness_sh("test -e %s/PWNED", W) != 0, "plot ran a shell command from the path");
}

static void corrupt_checkpoint(void) {
    char run[600];
    snprintf(run, sizeof run, "%s/full", W);
    harness_sh("cp -r %s %s/broken && truncate -s -64 %s/broken/step-0000008/model.safetensors", run, W, W);
    CHECK(harness_sh(TRAIN " --out %s/broken --steps 9 --resume > %s/o.txt 2>&1", D, W, W) == 1, "truncated fails");
    char *o = slurp("%s/o.txt", W);
    CHECK(o && strstr(o, "model.safetensors") && strstr(o, "truncated"), "message: %s", o ? o : "");
    free(o);
    harness_sh("rm -rf %s/broken && cp -r %s %s/broken && echo '{\"step\": ' > %s/broken/step-0000008/trainer.json", W,
               run, W, W);
    CHECK(harness_sh(TRAIN " --out %s/broken --steps 9 --resume > %s/o.txt 2>&1", D, W, W) == 1, "bad state fails");
    o = slurp("%s/o.txt", W);
    CHECK(o && strstr(o, "trainer.json"), "message: %s", o ? o : "");
    free(o);
}

/* a learning rate that blows up: steps are skipped and the run stops clearly */
static void nan_stops(void) {
    int rc = harness_sh(TRAIN " --out %s/nan --steps 40 --lr 1e30 --warmup 0 --clip 0 > %s/o.txt 2>&1", D, W, W);
    char *o = slurp("%s/o.txt", W);
    CHECK(rc == 1 && o && strstr(o, "skipped") && strstr(o, "stopping"), "rc %d: %s", rc, o ? o : "");
    free(o);
}

/* issue 14 #15: --resume keeps the run's settings (stored in the
 * checkpoint) and refuses a changed one, except --steps, which it reports */
static void resume_settings(void) {
    CHECK(harness_sh(TRAIN " --out %s/set --steps 6 --stop-after 3 --save-every 3 --lr 2e-3 2> /dev/null", D, W) == 0,
          "first half");
    CHECK(harness_sh("grep -q '\"batch\":[[:space:]]*2' %s/set/step-0000003/trainer.json && "
                     "grep -q '\"lr\":[[:space:]]*0.002,' %s/set/step-0000003/trainer.json", W, W) == 0,
          "settings stored in trainer.json");
    const char *bad[] = {"--batch 3", "--seq 20", "--lr 1e-3", "--preset small", "--accum 2", "--sched wsd"};
    for (int i = 0; i < 6; i++) {
        int rc = harness_sh(TRAIN " --out %s/set --steps 6 --resume --lr 2e-3 %s > %s/o.txt 2>&1", D, W, bad[i], W);
        char *o = slurp("%s/o.txt", W);
        char opt[32];
        sscanf(bad[i], "%31s", opt);
        CHECK(rc == 1 && o && strstr(o, opt) && strstr(o, "differs from the run's"), "%s: rc %d: %s", bad[i], rc,
              o ? o : "");
        free(o);
    }
    /* no training options at all: the stored ones, so the losses equal an uninterrupted run's */
    CHECK(harness_sh(TRAIN " --out %s/setfull --steps 6 --lr 2e-3 2> /dev/null", D, W) == 0, "full run");
    CHECK(harness_sh(BIN " train --data %s --out %s/set --resume --log-every 1 --eval-every 3 -t 1 2> /dev/null", D, W) == 0,
          "resume with no options");
    char *a = slurp("%s/set/metrics.jsonl", W), *b = slurp("%s/setfull/metrics.jsonl", W);
    if (a && b) {
        strip_timing(a), strip_timing(b);
        CHECK(strcmp(a, b) == 0, "resumed with the stored settings differs:\n%s\nvs\n%s", a, b);
    }
    free(a), free(b);
    /* --steps may grow: said clearly */
    CHECK(harness_sh(TRAIN " --out %s/set --steps 7 --resume > %s/o.txt 2>&1", D, W, W) == 0, "longer run");
    char *o = slurp("%s/o.txt", W);
    CHECK(o && strstr(o, "--steps 7 replaces the run's 6"), "message: %s", o ? o : "");
    free(o);
}

/* the mean of each MoE layer's imbalance over the steps after `from` */
static void mean_imbalance(const char *metrics, int from, double *out, int *layers) {
    int n = 0;
    *layers = 0;
    for (const char *p = metrics; p && (p = strstr(p, "{\"step\": "));) {
        int st = atoi(p + 9);
        const char *im = strstr(p, "\"imbalance\": [");
        const char *e = strchr(p, '\n');
        p = e ? e : p + 1;
        if (!im || (e && im > e) || st <= from) continue;
        im += 14;
        int l = 0;
        for (char *q; l < 8; l++, im = q + 1) {
            double v = strtod(im, &q);
            if (q == im) break;
            out[l] = (n ? out[l] : 0) + v;
            if (*q != ',') {
                l++;
                break;
            }
        }
        *layers = l;
        n++;
    }
    for (int l = 0; l < *layers; l++) out[l] /= n ? n : 1;
}

/* issue 14 #14: with the default settings the routing stays healthy (the
 * tiny preset, as the small one, sent every token to the same experts by
 * step 20-40 with the old bias speed 0.001, a layer staying at 3-4 of its
 * maximum 4); a layer that stays collapsed is reported */
static void routing_health(void) {
    CHECK(harness_sh(BIN " train --preset tiny --data %s --batch 8 --seq 48 --steps 100 --log-every 1 --eval-every 0"
                         " --save-every 0 -t 1 --out %s/route > %s/route.txt 2>&1", D, W, W) == 0, "default run");
    char *m = slurp("%s/route/metrics.jsonl", W), *o = slurp("%s/route.txt", W);
    double imb[8];
    int layers;
    mean_imbalance(m, 80, imb, &layers);
    CHECK(layers == 3, "3 MoE layers logged (%d)", layers);
    for (int l = 0; l < layers; l++) {
        printf("    layer %d: mean max/mean load over steps 81-100: %.2f (at most 4)\n", l, imb[l]);
        CHECK(imb[l] < 2.0, "MoE layer %d stays imbalanced with the defaults: %.2f", l, imb[l]);
    }
    CHECK(o && !strstr(o, "warning"), "no warning on a healthy run: %s", o ? o : "");
    free(m), free(o);
    CHECK(harness_sh(BIN " train --preset tiny --data %s --batch 8 --seq 48 --steps 120 --log-every 50 --eval-every 0"
                         " --save-every 0 -t 1 --bias-update-speed 0 --out %s/route0 > %s/route.txt 2>&1", D, W, W) == 0,
          "run without balancing");
    o = slurp("%s/route.txt", W);
    CHECK(o && strstr(o, "warning: MoE layer") && strstr(o, "--bias-update-speed"), "collapse reported: %s", o ? o : "");
    free(o);
}

static const int *g_tok_for_test;
static void next_for_test(void *ctx, int *tokens) {
    (void)ctx;
    memcpy(tokens, g_tok_for_test, sizeof(int) * 2 * 17);
}

/* V3 §2.1.2: after a step, an overloaded expert's bias goes down by gamma, an
 * underloaded one's up */
static void bias_update(void) {
    dc_config c;
    dc_err err = {0};
    CHECK(dc_config_preset("tiny", &c, &err) == 0, "%s", err.msg);
    train_opts o;
    train_opts_default(&o);
    o.B = 2, o.T = 16, o.bias_gamma = 0.01f, o.warmup = 0;
    trainer t;
    CHECK(trainer_init(&t, &c, &o, NULL, 1, &err) == 0, "%s", err.msg);
    rng r;
    rng_seed(&r, 5);
    int tok[2 * 17];
    for (int i = 0; i < 34; i++) tok[i] = (int)(rng_u64(&r) % c.vocab_size);
    int l = c.first_k_dense_replace, E = c.n_routed_experts, over = 0, under = 0;
    float before[64];
    memcpy(before, t.P.layers[l].router_bias, sizeof(float) * E);
    g_tok_for_test = tok;
    trainer_step(&t, next_for_test, NULL);
    double mean = 0;
    for (int e = 0; e < E; e++) mean += t.load[(size_t)l * E + e];
    mean /= E;
    for (int e = 0; e < E; e++) {
        int ld = t.load[(size_t)l * E + e];
        float d = t.P.layers[l].router_bias[e] - before[e];
        if (ld > mean) {
            CHECK(fabsf(d + 0.01f) < 1e-6f, "expert %d load %d > mean %.1f: bias moved %g", e, ld, mean, d);
            over++;
        }
        if (ld < mean) {
            CHECK(fabsf(d - 0.01f) < 1e-6f, "expert %d load %d < mean %.1f: bias moved %g", e, ld, mean, d);
            under++;
        }
    }
    CHECK(over > 0 && under > 0, "some experts over and under the mean (%d, %d)", over, under);
    trainer_free(&t);
}

int main(void) {
    RUN(prepare_files);
    RUN(resume_bit_exact);
    RUN(accumulation_and_init);
    RUN(killed_run_resumes);
    RUN(corrupt_checkpoint);
    RUN(bad_inputs);
    RUN(nan_stops);
    RUN(resume_settings);
    RUN(routing_health);
    RUN(bias_update);
    return harness_done();
}
