/*
 * test_prec_train.c — mixed-precision training as users run it:
 *   `deepc train --precision bf16|fp8` on a tiny model: the loss tracks the
 *     f32 run's (same seed, same data), metrics.jsonl and the progress line
 *     name the precision
 *   --bf16-moments: the stored AdamW moments are bfloat16 values; a run
 *     stopped and resumed writes the unbroken run's files byte for byte
 *   the FP8 run's checkpoint: fp8/ in DeepSeek-V3's official layout
 *     (F8_E4M3 + F32 weight_scale_inv per 128x128 block, quantization_config);
 *     deepc loads it, and the PyTorch reference (tests/ref/) reading the same
 *     files gives the same logits
 *   --resume with another --precision is refused; an unknown one is a usage error
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "base/file.h"
#include "harness.h"
#include "io/safetensors.h"

#define BIN DC_BUILD "/deepc"
static char D[600]; /* data dir */
static char W[512]; /* work dir */

/* the arithmetic corpus, its tokenizer (W/tok.json) and shards (D) */
static void make_data(void) {
    snprintf(W, sizeof W, "%s", harness_tmpdir());
    snprintf(D, sizeof D, "%s/data", W);
    CHECK(harness_arith_shards(W, D) == 0, "corpus, tokenizer-train and prepare into %s", D);
}

static char *slurp(const char *fmt, const char *a, const char *b) {
    char p[1400], *t;
    size_t n;
    snprintf(p, sizeof p, fmt, a, b);
    return file_read_all(p, &t, &n, NULL) ? NULL : t;
}

/* the loss of the last metrics line of run `name` with a "loss" */
static double last_loss(const char *name) {
    char *m = slurp("%s/%s/metrics.jsonl", W, name);
    double v = NAN;
    for (char *p = m; p && (p = strstr(p, "\"loss\": ")); p++) v = strtod(p + 8, NULL);
    free(m);
    return v;
}

/* tiny with hidden 136 and FFN widths 136 / 200: blocks of 128 are partial */
static void make_config(void) {
    CHECK(harness_sh(BIN " init --preset tiny --out %s/init > /dev/null 2>&1", W) == 0, "init");
    CHECK(harness_sh("sed -e 's/\"hidden_size\":[[:space:]]*64,/\"hidden_size\": 136,/' -e "
                     "'s/\"intermediate_size\":[[:space:]]*128,/\"intermediate_size\": 200,/' %s/init/config.json > "
                     "%s/config.json && grep -q '\"hidden_size\": 136' %s/config.json && "
                     "grep -q '\"intermediate_size\": 200' %s/config.json",
                     W, W, W, W) == 0,
          "config");
}

#define TRAIN BIN " train --config %s/config.json --data %s --batch 4 --seq 32 --steps 40 --warmup 5 --lr 3e-3 " \
                  "--log-every 10 --eval-every 0 --save-every 40 -t 2"

static void runs_track_f32(void) {
    make_data();
    make_config();
    const char *prec[] = {"f32", "bf16", "fp8"};
    double loss[3];
    for (int p = 0; p < 3; p++) {
        double t0 = harness_now();
        CHECK(harness_sh(TRAIN " --out %s/%s --precision %s > %s/%s.txt 2>&1", W, D, W, prec[p], prec[p], W, prec[p]) ==
                  0,
              "train --precision %s", prec[p]);
        loss[p] = last_loss(prec[p]);
        printf("    %-4s 40 steps: last loss %.4f (%.1f s)\n", prec[p], loss[p], harness_now() - t0);
        char *m = slurp("%s/%s/metrics.jsonl", W, prec[p]), *o = slurp("%s/%s.txt", W, prec[p]);
        char want[64];
        snprintf(want, sizeof want, "\"precision\": \"%s\"", prec[p]);
        CHECK(m && strstr(m, want), "metrics.jsonl names %s", prec[p]);
        snprintf(want, sizeof want, "tok/s %s", prec[p]);
        CHECK(o && strstr(o, want), "the progress line names %s: %s", prec[p], o ? o : "");
        free(m), free(o);
    }
    CHECK(loss[0] < 4.5, "f32 learns: last loss %g", loss[0]);
    for (int p = 1; p < 3; p++) {
        double rel = fabs(loss[p] - loss[0]) / loss[0];
        printf("    %s vs f32: relative difference of the last loss %.2f%%\n", prec[p], 100 * rel);
        CHECK(rel < 0.02, "%s: last loss %g vs f32 %g", prec[p], loss[p], loss[0]);
    }
}

/* ---------------------------------------------------------------- the FP8 checkpoint */

static float *read_f32(const char *path, size_t *n) {
    char *t;
    size_t b;
    if (file_read_all(path, &t, &b, NULL)) return NULL;
    *n = b / 4;
    return (float *)t;
}

static void fp8_checkpoint(void) {
    char ck[700], p[800];
    snprintf(ck, sizeof ck, "%s/fp8/step-0000040", W);
    char *cfg = slurp("%s/%s/fp8/config.json", ck, "");
    if (!cfg) cfg = slurp("%s/fp8/config.json", ck, "");
    CHECK(cfg && strstr(cfg, "\"quant_method\":\t\"fp8\"") && strstr(cfg, "\"fmt\":\t\"e4m3\"") &&
              strstr(cfg, "\"activation_scheme\":\t\"dynamic\"") && strstr(cfg, "\"weight_block_size\":\t[128, 128]"),
          "fp8/config.json has the official quantization_config: %s", cfg ? cfg : "(missing)");
    free(cfg);
    /* the layout: codes + scales per 128x128 block; norms, router, embedding not FP8 */
    st_set s = {0};
    snprintf(p, sizeof p, "%s/fp8/model.safetensors", ck);
    dc_err err = {0};
    CHECK(st_open_file(&s, p, &err) == 0, "open %s: %s", p, err.msg);
    const st_tensor *w = st_find(&s, "model.layers.0.mlp.gate_proj.weight"),
                    *si = st_find(&s, "model.layers.0.mlp.gate_proj.weight_scale_inv"),
                    *kv = st_find(&s, "model.layers.1.self_attn.kv_a_proj_with_mqa.weight"),
                    *e = st_find(&s, "model.embed_tokens.weight"), *n = st_find(&s, "model.norm.weight"),
                    *g = st_find(&s, "model.layers.1.mlp.gate.weight");
    CHECK(w && w->dtype == ST_F8_E4M3 && w->shape[0] == 200 && w->shape[1] == 136, "gate_proj F8_E4M3 (200, 136)");
    CHECK(si && si->dtype == ST_F32 && si->ndim == 2 && si->shape[0] == 2 && si->shape[1] == 2,
          "gate_proj weight_scale_inv F32 (2, 2)");
    CHECK(kv && kv->dtype == ST_F8_E4M3 && st_find(&s, "model.layers.1.self_attn.kv_a_proj_with_mqa.weight_scale_inv"),
          "kv_a_proj_with_mqa in FP8");
    CHECK(e && e->dtype == ST_BF16 && n && n->dtype == ST_BF16 && g && g->dtype == ST_BF16 &&
              !st_find(&s, "model.layers.1.mlp.gate.weight_scale_inv"),
          "embedding, norms and router are BF16, not FP8");
    st_close(&s);
    /* deepc and the PyTorch reference read the same files: same logits */
    const char *ids = "1,5,17,100,3,3,42,7,211,2";
    snprintf(p, sizeof p, "%s/fp8", ck);
    /* the f32 latent cache: the reference keeps its cache in float32 */
    CHECK(harness_sh(BIN " logits -m %s --ids %s --kv-type f32 --out %s/c.f32", p, ids, W) == 0, "deepc logits of fp8/");
    CHECK(harness_sh("/usr/bin/python3 tests/ref/deepseek_ref.py --model %s --ids %s --out %s/r.f32", p, ids, W) == 0,
          "reference logits of fp8/");
    CHECK(harness_sh(BIN " logits -m %s --ids %s --kv-type f32 --out %s/m.f32", ck, ids, W) == 0,
          "deepc logits of the f32 masters");
    char a[700];
    size_t na = 0, nb = 0, nm = 0;
    snprintf(a, sizeof a, "%s/c.f32", W);
    float *x = read_f32(a, &na);
    snprintf(a, sizeof a, "%s/r.f32", W);
    float *y = read_f32(a, &nb);
    snprintf(a, sizeof a, "%s/m.f32", W);
    float *z = read_f32(a, &nm);
    CHECK(x && y && z && na == nb && na == nm && na > 0, "logits sizes %zu %zu %zu", na, nb, nm);
    if (x && y && z && na == nb && na == nm) {
        double md = 0, mq = 0;
        for (size_t i = 0; i < na; i++) md = fmax(md, fabs(x[i] - y[i])), mq = fmax(mq, fabs(x[i] - z[i]));
        printf("    fp8/ checkpoint: deepc vs PyTorch reference max|diff| %.2e; vs the f32 masters %.2e\n", md, mq);
        CHECK(md <= 1e-4, "deepc vs reference on fp8/: max|diff| %g (tolerance 1e-4)", md);
        CHECK(mq > 0 && mq < 0.5, "fp8/ is a quantisation of the masters: max|diff| %g", mq);
    }
    free(x), free(y), free(z);
}

/* ---------------------------------------------------------------- options */

static void resume_and_options(void) {
    /* the run's precision is fixed: another one is refused, naming both */
    CHECK(harness_sh(TRAIN " --out %s/fp8 --resume --steps 45 --precision bf16 > %s/o.txt 2>&1", W, D, W, W) == 1,
          "resume with another precision fails");
    char *o = slurp("%s/o.txt%s", W, "");
    CHECK(o && strstr(o, "--precision bf16 differs from the run's fp8"), "message: %s", o ? o : "");
    free(o);
    /* without the option the run continues in fp8 */
    CHECK(harness_sh(BIN " train --data %s --out %s/fp8 --resume --steps 42 --log-every 1 > %s/o.txt 2>&1", D, W, W) == 0,
          "resume in the stored precision");
    o = slurp("%s/o.txt%s", W, "");
    CHECK(o && strstr(o, "tok/s fp8"), "resumed run is fp8: %s", o ? o : "");
    free(o);
    CHECK(harness_sh(TRAIN " --out %s/bad --precision fp16 > %s/o.txt 2>&1", W, D, W, W) == 2, "unknown precision: exit 2");
    o = slurp("%s/o.txt%s", W, "");
    CHECK(o && strstr(o, "--precision must be f32, bf16 or fp8, not 'fp16'"), "message: %s", o ? o : "");
    free(o);
}

/* --bf16-moments: every stored moment is a bfloat16 value; the loss still tracks */
static void bf16_moments(void) {
    CHECK(harness_sh(TRAIN " --out %s/mom --precision bf16 --bf16-moments > /dev/null 2>&1", W, D, W) == 0,
          "train --bf16-moments");
    double l = last_loss("mom"), l0 = last_loss("f32");
    printf("    bf16 + bf16 moments: last loss %.4f (f32 %.4f)\n", l, l0);
    CHECK(fabs(l - l0) / l0 < 0.02, "bf16 moments: last loss %g vs f32 %g", l, l0);
    char p[800];
    snprintf(p, sizeof p, "%s/mom/step-0000040/optim-m.safetensors", W);
    st_set s = {0};
    dc_err err = {0};
    CHECK(st_open_file(&s, p, &err) == 0, "open %s: %s", p, err.msg);
    size_t nonbf = 0, nz = 0, total = 0;
    for (int i = 0; i < s.n; i++) {
        const st_tensor *t = &s.tensors[i];
        for (size_t j = 0; j + 4 <= t->nbytes; j += 4) {
            uint32_t u;
            memcpy(&u, t->data + j, 4);
            nonbf += (u & 0xffff) != 0, nz += u != 0, total++;
        }
    }
    printf("    bf16 moments: %zu of %zu stored m values not bfloat16 (%zu nonzero)\n", nonbf, total, nz);
    CHECK(total > 0 && nz > total / 2 && nonbf == 0, "m: %zu of %zu not bfloat16", nonbf, total);
    st_close(&s);
    /* stopped at 20 (the 2-byte moments widened into the checkpoint) and resumed
     * (read back into 2 bytes): the uninterrupted run's files, byte for byte */
    CHECK(harness_sh(TRAIN " --out %s/mom2 --precision bf16 --bf16-moments --stop-after 20 > /dev/null 2>&1", W, D, W) == 0,
          "train --bf16-moments --stop-after 20");
    CHECK(harness_sh(BIN " train --data %s --out %s/mom2 --resume -t 2 > %s/res.txt 2>&1", D, W, W) == 0, "resume: %s",
          harness_sh("tail -3 %s/res.txt", W) ? "" : "(above)");
    const char *f[] = {"model.safetensors", "optim-m.safetensors", "optim-v.safetensors"};
    for (int i = 0; i < 3; i++)
        CHECK(harness_sh("cmp -s %s/mom/step-0000040/%s %s/mom2/step-0000040/%s", W, f[i], W, f[i]) == 0,
              "resumed bf16-moment run: %s differs from the unbroken run's", f[i]);
}

int main(void) {
    harness_threads(2);
    RUN(runs_track_f32);
    RUN(fp8_checkpoint);
    RUN(resume_and_options);
    RUN(bf16_moments);
    return harness_done();
}
