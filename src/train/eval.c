/* eval.c — see eval.h. */
#include "train/eval.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "base/err.h"
#include "train/convo.h"

void eval_defaults(eval_opts *o) {
    *o = (eval_opts){.n = 100, .split = SPLIT_EVAL, .K = 0, .temperature = 1.0f, .top_p = 1.0f, .max_new = 256,
                     .style = DC_CHAT_R1, .format_weight = 0.0f, .seed = 1, .chunk = 16, .show = 0};
}

typedef struct chunk {
    task_item *it;
    int **ids, *np;
    int n;
} chunk;

static void chunk_free(chunk *c) {
    for (int i = 0; i < c->n; i++) task_item_free(&c->it[i]), free(c->ids[i]);
    free(c->it), free(c->ids), free(c->np);
    memset(c, 0, sizeof *c);
}

static int chunk_load(chunk *c, const dc_tokenizer *tk, const task *t, const eval_opts *o, int from, int n, dc_err *err) {
    c->it = calloc(n, sizeof *c->it), c->ids = calloc(n, sizeof *c->ids), c->np = calloc(n, sizeof *c->np);
    if (!c->it || !c->ids || !c->np) return err_set(err, DC_ENOMEM, "eval: out of memory");
    for (int i = 0; i < n; i++) {
        int rc = task_get(t, o->split, from + i, &c->it[i], err);
        if (!rc) rc = convo_prompt(tk, o->style, c->it[i].prompt, &c->ids[i], &c->np[i], err);
        c->n = i + 1;
        if (rc) return rc;
    }
    return DC_OK;
}

/* score: the reward of completion j of a rollout */
static void score(const dc_tokenizer *tk, const task *t, const task_item *it, const rollout *r, int j, float fw,
                  reward_out *ro, char **text) {
    size_t len;
    dc_err e;
    *text = NULL;
    if (convo_text(tk, r->ids + (size_t)j * r->max_new, r->len[j], text, &len, &e)) {
        memset(ro, 0, sizeof *ro);
        return;
    }
    task_reward(t, it, *text, len, fw, ro);
}

/* majority: maj@K and pass@K of one item's K samples */
static void majority(const reward_out *ro, int K, double *maj, double *pass) {
    int best = -1, best_n = 0;
    *pass = 0;
    for (int i = 0; i < K; i++) {
        *pass = fmax(*pass, ro[i].accuracy);
        if (!ro[i].has_answer) continue;
        int c = 0;
        for (int j = 0; j < K; j++) c += ro[j].has_answer && !strcmp(ro[j].answer, ro[i].answer);
        if (c > best_n) best_n = c, best = i;
    }
    *maj = best >= 0 ? ro[best].accuracy : 0;
}

static int run_chunk(dc_engine *e, const dc_tokenizer *tk, const task *t, const eval_opts *o, chunk *c, eval_result *r,
                     int shown, dc_err *err) {
    rollout g, s = {0};
    rollout_opts go = {.G = 1, .max_new = o->max_new, .temperature = 0, .top_p = 1, .eos = dc_tokenizer_eos(tk),
                       .seed = o->seed};
    int rc = rollout_run(e, (const int *const *)c->ids, c->np, c->n, &go, &g, err);
    if (rc) return rc;
    rollout_opts so = go;
    so.G = o->K, so.temperature = o->temperature, so.top_p = o->top_p, so.seed = o->seed + (uint64_t)r->n * 7919u;
    if (o->K > 0) rc = rollout_run(e, (const int *const *)c->ids, c->np, c->n, &so, &s, err);
    r->tokens += g.tokens + s.tokens, r->seconds += g.seconds + s.seconds;
    reward_out *ro = rc ? NULL : malloc(sizeof *ro * (o->K > 0 ? o->K : 1));
    for (int i = 0; !rc && ro && i < c->n; i++) {
        char *text;
        reward_out gr;
        score(tk, t, &c->it[i], &g, i, o->format_weight, &gr, &text);
        if (shown + i < o->show)
            fprintf(stderr, "--- %s\n%s\n--- (answer %s: %s)\n", c->it[i].prompt, text ? text : "",
                    gr.has_answer ? gr.answer : "(none)", gr.accuracy > 0 ? "right" : "wrong");
        free(text);
        r->pass1 += gr.accuracy, r->format += gr.format, r->reward += gr.reward, r->mean_len += g.len[i];
        for (int k = 0; k < o->K; k++) {
            score(tk, t, &c->it[i], &s, i * o->K + k, o->format_weight, &ro[k], &text);
            free(text);
        }
        double maj = 0, pass = 0;
        if (o->K > 0) majority(ro, o->K, &maj, &pass);
        r->majk += maj, r->passk += pass;
    }
    if (!rc && !ro) rc = err_set(err, DC_ENOMEM, "eval: out of memory");
    free(ro);
    rollout_free(&g), rollout_free(&s);
    return rc;
}

int eval_run(dc_engine *e, const dc_tokenizer *tk, const task *t, const eval_opts *o, eval_result *r, dc_err *err) {
    memset(r, 0, sizeof *r);
    int64_t size = task_size(t, o->split);
    int n = size >= 0 && size < o->n ? (int)size : o->n, chunk_n = o->chunk > 0 ? o->chunk : 16;
    int rc = DC_OK;
    for (int from = 0; !rc && from < n; from += chunk_n) {
        chunk c = {0};
        int k = n - from < chunk_n ? n - from : chunk_n;
        rc = chunk_load(&c, tk, t, o, from, k, err);
        if (!rc) rc = run_chunk(e, tk, t, o, &c, r, from, err);
        chunk_free(&c);
        r->n += rc ? 0 : k;
    }
    if (r->n) {
        double d = r->n;
        r->pass1 /= d, r->majk /= d, r->passk /= d, r->format /= d, r->mean_len /= d, r->reward /= d;
    }
    return rc;
}

void eval_json(const eval_result *r, const char *task, int K, char *out, size_t cap) {
    int k = snprintf(out, cap, "{\"task\": \"%s\", \"n\": %d, \"pass@1\": %.4f", task, r->n, r->pass1);
    if (K > 0 && k > 0 && (size_t)k < cap)
        k += snprintf(out + k, cap - k, ", \"maj@%d\": %.4f, \"pass@%d\": %.4f", K, r->majk, K, r->passk);
    if (k > 0 && (size_t)k < cap)
        snprintf(out + k, cap - k, ", \"format\": %.4f, \"mean_length\": %.1f, \"tokens_per_s\": %.1f}", r->format,
                 r->mean_len, r->seconds > 0 ? r->tokens / r->seconds : 0.0);
}
