/*
 * eval.h — evaluation of a model on a task (task.h) through the batched
 * engine: pass@1 with greedy decoding, and with K samples per item maj@K
 * (the most frequent marked answer, first seen on ties, is right) and pass@K
 * (some sample is right: the unbiased estimator of Chen et al. 2021 with
 * n = k); format rate and mean length of the greedy answers.
 */
#ifndef DC_EVAL_H
#define DC_EVAL_H
#include <stdio.h>
#include "train/rollout.h"
#include "train/task.h"

typedef struct eval_opts {
    int n;                  /* items (a file's split may hold fewer) */
    int split;              /* SPLIT_* */
    int K;                  /* samples per item for maj@K and pass@K (0: greedy only) */
    float temperature, top_p;
    int max_new;
    int style;              /* DC_CHAT_R1 (the answer after </think>) or DC_CHAT_V3 */
    float format_weight;
    uint64_t seed;
    int chunk;              /* items per engine call */
    int show;               /* print the first `show` greedy answers to stderr */
} eval_opts;
void eval_defaults(eval_opts *o);

typedef struct eval_result {
    int n;                  /* items evaluated */
    double pass1, majk, passk, format, mean_len, reward;
    int64_t tokens;         /* generated */
    double seconds;         /* generating */
} eval_result;

/* eval_run: o->n items of the split on engine e (whose max_len must hold
 * the longest prompt plus max_new). */
int eval_run(dc_engine *e, const dc_tokenizer *tk, const task *t, const eval_opts *o, eval_result *r, dc_err *err);
/* eval_json: the result as one JSON line (no newline) into out. */
void eval_json(const eval_result *r, const char *task, int K, char *out, size_t cap);
#endif
