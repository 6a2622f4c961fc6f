/*
 * test_grpo.c — GRPO as users run it (src/train/grpo.c, deepc grpo): group
 * advantages (plain and Dr. GRPO), then on a tiny model briefly fine-tuned
 * on one-digit sums (deepc sft, evaluated with deepc eval): a seeded run
 * with rule rewards raises the accuracy of its samples within 24 steps, the
 * --reward random control does not; every metric is logged; with mu = 1 the
 * ratio is 1 (nothing clipped) and with mu = 2 the second update clips;
 * --seq-mean, --dr-grpo, --beta 0.04 run; --resume continues exactly as an
 * uninterrupted run; bad options are refused. Then distillation (deepc
 * distill) with the GRPO-trained model as the teacher: every answer it
 * writes is right, the student is fine-tuned (with and without logit KD)
 * and its accuracy reported before and after; --prompts keeps every
 * finished answer.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "base/file.h"
#include "harness.h"
#include "train/grpo.h"

#define BIN DC_BUILD "/deepc"
static char W[512];
static int g_ready;

static void advantages(void) {
    double r[4] = {1, 0, 0, 0};
    float a[4];
    grpo_advantages(r, 4, 0, a);
    /* mean 0.25, std (Bessel) 0.5 */
    CHECK(fabsf(a[0] - 0.75f / 0.5001f) < 1e-5f && fabsf(a[1] + 0.25f / 0.5001f) < 1e-5f, "A = %g %g", a[0], a[1]);
    grpo_advantages(r, 4, 1, a);
    CHECK(fabsf(a[0] - 0.75f) < 1e-6f && fabsf(a[3] + 0.25f) < 1e-6f, "Dr. GRPO: %g %g", a[0], a[3]);
    double same[3] = {0.1, 0.1, 0.1};
    grpo_advantages(same, 3, 0, a);
    CHECK(a[0] == 0 && a[1] == 0 && a[2] == 0, "equal rewards: no advantage");
}

static char *slurp(const char *fmt, const char *a) {
    char p[1024], *t;
    size_t n;
    snprintf(p, sizeof p, fmt, a);
    return file_read_all(p, &t, &n, NULL) ? NULL : t;
}

/* the mean of a metric over steps [from, to] of a metrics file */
static double mean_of(const char *m, const char *key, int from, int to) {
    double s = 0;
    int n = 0;
    char k[64];
    snprintf(k, sizeof k, "\"%s\": ", key);
    for (const char *p = m; p && (p = strstr(p, "{\"step\": "));) {
        int st = atoi(p + 9);
        const char *e = strchr(p, '\n'), *v = strstr(p, k);
        if (v && (!e || v < e) && st >= from && st <= to) s += atof(v + strlen(k)), n++;
        p = e ? e : p + 1;
    }
    return n ? s / n : NAN;
}

/* one-digit sums: SFT pairs, and 12 of them as the task */
static void fixture(void) {
    snprintf(W, sizeof W, "%s", harness_tmpdir());
    char p[700];
    snprintf(p, sizeof p, "%s/sft.jsonl", W);
    FILE *f = fopen(p, "w"), *q;
    unsigned x = 1;
    for (int i = 0; i < 2000; i++) {
        x = x * 1103515245u + 12345u;
        int a = (x >> 16) % 10, b = (x >> 8) % 10;
        fprintf(f, "{\"prompt\": \"%d + %d =\", \"response\": \"%d\"}\n", a, b, a + b);
    }
    fclose(f);
    snprintf(p, sizeof p, "%s/qa.jsonl", W);
    f = fopen(p, "w");
    for (int i = 0; i < 100; i += 9) fprintf(f, "{\"prompt\": \"%d + %d =\", \"answer\": %d}\n", i / 10, i % 10, i / 10 + i % 10);
    fclose(f);
    snprintf(p, sizeof p, "%s/corpus.txt", W);
    q = fopen(p, "w");
    for (int i = 0; i < 100; i++) fprintf(q, "%d + %d = %d\n", i / 10, i % 10, i / 10 + i % 10);
    fclose(q);
    CHECK(harness_sh(BIN " tokenizer-train --data %s --vocab-size 300 --special '<｜begin▁of▁sentence｜>,"
                         "<｜end▁of▁sentence｜>,<｜User｜>,<｜Assistant｜>,<think>,</think>' --out %s/tok.json > /dev/null 2>&1",
                     p, W) == 0, "tokenizer");
    CHECK(harness_sh(BIN " init --preset tiny --tokenizer %s/tok.json --out %s/m0 > /dev/null 2>&1", W, W) == 0, "init");
    CHECK(harness_sh(BIN " sft -m %s/m0 --data %s/sft.jsonl --template v3 --out %s/sft --batch 16 --seq 32 --lr 3e-3"
                         " --min-lr 3e-3 --sched const --warmup 10 --steps 80 --eval-every 0 -t 1 > %s/sft.txt 2>&1",
                     W, W, W, W) == 0, "sft");
    char *e = slurp("%s/sft.txt", W);
    CHECK(e && strstr(e, "2000 conversations (V3 template") && strstr(e, "100 held out"), "sft summary: %s", e ? e : "");
    free(e);
    CHECK(harness_sh(BIN " eval -m %s/sft/step-0000080 --task jsonl:%s/qa.jsonl,instruct=0 --no-think --answer last"
                         " --samples 4 --temp 1 --top-p 1 --max-new 4 -t 1 > %s/eval.txt 2> /dev/null", W, W, W) == 0,
          "eval");
    e = slurp("%s/eval.txt", W);
    CHECK(e && strstr(e, "{\"task\": \"jsonl\", \"n\": 12, \"pass@1\": ") && strstr(e, "\"maj@4\"") &&
              strstr(e, "\"pass@4\"") && strstr(e, "\"format\": 1.0000"), "eval JSON line: %s", e ? e : "");
    free(e);
    g_ready = 1;
}

#define GRPO BIN " grpo -m %s/sft/step-0000080 --task jsonl:%s/qa.jsonl,instruct=0 --no-think --answer last" \
                 " --prompts 8 -G 8 --max-new 4 --seq 16 --lr 1e-3 --eval-every 0 --seed 3 -t 1"

/* the seeded run and its random-reward control */
static void reward_rises(void) {
    if (!g_ready) return;
    CHECK(harness_sh(GRPO " --steps 24 --out %s/rule > /dev/null 2>&1", W, W, W) == 0, "grpo");
    CHECK(harness_sh(GRPO " --steps 24 --reward random --out %s/random > /dev/null 2>&1", W, W, W) == 0, "control");
    char *a = slurp("%s/rule/metrics.jsonl", W), *b = slurp("%s/random/metrics.jsonl", W);
    double a0 = mean_of(a, "accuracy", 1, 4), a1 = mean_of(a, "accuracy", 21, 24);
    double b0 = mean_of(b, "accuracy", 1, 4), b1 = mean_of(b, "accuracy", 21, 24);
    printf("    sample accuracy, steps 1-4 -> 21-24: rule rewards %.3f -> %.3f, random rewards %.3f -> %.3f\n", a0, a1,
           b0, b1);
    CHECK(a1 > a0 + 0.2, "GRPO did not raise the accuracy: %.3f -> %.3f", a0, a1);
    CHECK(mean_of(a, "reward", 21, 24) > mean_of(a, "reward", 1, 4) + 0.2, "nor the mean reward: %.3f -> %.3f",
          mean_of(a, "reward", 1, 4), mean_of(a, "reward", 21, 24));
    CHECK(b1 < b0 + 0.05, "the random-reward control rose: %.3f -> %.3f", b0, b1);
    /* every metric of the issue, each step */
    const char *keys[] = {"reward", "accuracy", "format", "kl", "clip_frac", "entropy", "response_len", "dropped",
                          "rollout_tokens_per_s", "train_tokens_per_s"};
    for (int k = 0; k < 10; k++) CHECK(!isnan(mean_of(a, keys[k], 1, 24)), "metric %s logged", keys[k]);
    CHECK(mean_of(a, "clip_frac", 1, 24) == 0, "mu 1: the ratio is 1, nothing clipped");
    CHECK(mean_of(a, "kl", 21, 24) > mean_of(a, "kl", 1, 1), "the policy moves away from the reference");
    free(a), free(b);
    CHECK(harness_sh(BIN " plot %s/rule > /dev/null 2>&1 && head -c 4 %s/rule/reward.png | grep -q PNG", W, W) == 0,
          "plot draws the reward curve");
}

/* mu = 2: the second update sees a ratio away from 1; the other options run */
static void options(void) {
    if (!g_ready) return;
    CHECK(harness_sh(GRPO " --steps 4 --mu 2 --out %s/mu2 > /dev/null 2>&1", W, W, W) == 0, "mu 2");
    char *m = slurp("%s/mu2/metrics.jsonl", W);
    CHECK(m && strstr(m, "{\"step\": 8,") && mean_of(m, "clip_frac", 1, 8) > 0, "mu 2: 8 updates, some clipped: %s",
          m ? m : "");
    free(m);
    CHECK(harness_sh(GRPO " --steps 2 --seq-mean --dr-grpo --beta 0.04 --no-dynamic --out %s/opts > /dev/null 2>&1", W, W,
                     W) == 0, "--seq-mean --dr-grpo --beta --no-dynamic");
    m = slurp("%s/opts/metrics.jsonl", W);
    CHECK(m && mean_of(m, "dropped", 1, 2) == 0, "no groups dropped without dynamic sampling");
    free(m);
    CHECK(harness_sh(GRPO " --steps 2 --reward nope --out %s/bad > %s/o.txt 2>&1", W, W, W, W) == 2, "bad --reward");
    CHECK(harness_sh(BIN " grpo -m %s/sft/step-0000080 --task arith:digits=99 --out %s/bad2 > %s/o.txt 2>&1", W, W, W) ==
              1, "bad task spec");
    char *o = slurp("%s/o.txt", W);
    CHECK(o && strstr(o, "digits"), "message: %s", o ? o : "");
    free(o);
}

/* --resume after a stop continues exactly as an uninterrupted run */
static void resume(void) {
    if (!g_ready) return;
    CHECK(harness_sh(GRPO " --steps 6 --save-every 3 --out %s/full > /dev/null 2>&1", W, W, W) == 0, "full");
    CHECK(harness_sh(GRPO " --steps 6 --save-every 3 --stop-after 3 --out %s/half > /dev/null 2>&1", W, W, W) == 0,
          "half");
    CHECK(harness_sh(GRPO " --steps 6 --save-every 3 --resume --out %s/half > /dev/null 2>&1", W, W, W) == 0, "resume");
    const char *keys[] = {"reward", "accuracy", "kl", "entropy", "loss", "grad_norm"};
    char *a = slurp("%s/full/metrics.jsonl", W), *b = slurp("%s/half/metrics.jsonl", W);
    for (int k = 0; k < 6; k++)
        for (int s = 1; s <= 6; s++)
            CHECK(mean_of(a, keys[k], s, s) == mean_of(b, keys[k], s, s), "step %d %s: %.8g uninterrupted, %.8g resumed",
                  s, keys[k], mean_of(a, keys[k], s, s), mean_of(b, keys[k], s, s));
    free(a), free(b);
    CHECK(harness_sh(GRPO " --steps 6 --resume --beta 0.1 --out %s/half > %s/o.txt 2>&1", W, W, W, W) == 1,
          "a changed --beta refused");
}

static void distill(void) {
    if (!g_ready) return;
    CHECK(harness_sh(BIN " distill --teacher %s/rule/step-0000024 --student %s/sft/step-0000080 --task jsonl:%s/qa.jsonl,"
                         "instruct=0 --no-think --answer last --n 11 --samples 4 --keep 2 --max-new 4 --batch 8 --seq 16"
                         " --lr 1e-3 --epochs 2 --eval-n 12 -t 1 --out %s/dist > %s/d.txt 2> %s/d.err", W, W, W, W, W, W) == 0,
          "distill");
    char *o = slurp("%s/d.txt", W), *e = slurp("%s/d.err", W), *d = slurp("%s/dist/distill.jsonl", W);
    CHECK(o && strstr(o, "{\"task\": \"jsonl\", \"n\": ") && strstr(o, "\"before\"") && strstr(o, "\"after\""),
          "summary: %s / %s", o ? o : "", e ? e : "");
    CHECK(e && strstr(e, "teacher: 11 prompts, 44 answers sampled"), "teacher summary: %s", e ? e : "");
    int lines = 0, wrong = 0;
    for (const char *p = d; p && (p = strstr(p, "{\"prompt\":\""));) {
        int a, b, r;
        const char *q = strstr(p, "\"response\":\"");
        if (sscanf(p, "{\"prompt\":\"%d + %d =", &a, &b) != 2 || !q || sscanf(q + 12, "%d", &r) != 1 || r != a + b)
            wrong++;
        lines++, p++;
    }
    CHECK(lines > 0 && lines <= 22 && wrong == 0, "%d lines written (at most 2 per prompt), %d wrong", lines, wrong);
    free(o), free(e), free(d);
    CHECK(harness_sh(BIN " distill --teacher %s/rule/step-0000024 --student %s/sft/step-0000080 --task jsonl:%s/qa.jsonl,"
                         "instruct=0 --no-think --answer last --n 11 --samples 2 --max-new 4 --batch 8 --seq 16 --kd --kd-k 4"
                         " --epochs 1 --eval-n 0 -t 1 --out %s/distkd > /dev/null 2>&1", W, W, W, W) == 0, "distill --kd");
    char p[700];
    snprintf(p, sizeof p, "%s/prompts.jsonl", W);
    FILE *f = fopen(p, "w");
    fprintf(f, "{\"prompt\": \"1 + 2 =\"}\n{\"prompt\": \"3 + 3 =\"}\n");
    fclose(f);
    CHECK(harness_sh(BIN " distill --teacher %s/rule/step-0000024 --student %s/sft/step-0000080 --prompts %s --no-think"
                         " --samples 3 --keep 3 --max-new 4 --batch 8 --seq 16 --epochs 1 -t 1 --out %s/distp > /dev/null 2> %s/d.err",
                     W, W, p, W, W) == 0, "distill --prompts");
    e = slurp("%s/d.err", W);
    const char *t = e ? strstr(e, "teacher: 2 prompts, 6 answers sampled") : NULL;
    int acc = -1, wr = -2;
    if (t) sscanf(strstr(t, "), ") + 3, "%d accepted (%*[^)]), %d written", &acc, &wr);
    CHECK(t && acc > 0 && acc == wr, "every finished answer kept (%d accepted, %d written): %s", acc, wr, e ? e : "");
    free(e);
}

int main(void) {
    RUN(advantages);
    RUN(fixture);
    RUN(reward_rises);
    RUN(options);
    RUN(resume);
    RUN(distill);
    return harness_done();
}
