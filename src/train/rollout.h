/*
 * rollout.h — completions of many prompts through the batched engine
 * (deepc.h, dc_generate_batch), for GRPO's groups, evaluation and
 * distillation: G samples per prompt, the G sharing the prompt's prefill
 * (forked KV pages), each with its own sampler seeded from (seed, prompt,
 * sample), so a run is repeatable (and a prompt's samplers are the same
 * whichever rank of a data-parallel job samples it: pidx). Temperature 0 is greedy.
 *
 * The engine borrows the model; a trainer's view (trainer_model) sees every
 * update, so one engine serves a whole run.
 */
#ifndef DC_ROLLOUT_H
#define DC_ROLLOUT_H
#include <stdint.h>
#include "deepc.h"

typedef struct rollout_opts {
    int G;                /* samples per prompt */
    int max_new;          /* tokens per completion at most */
    float temperature;    /* 1: the policy as it is (GRPO); 0: greedy */
    float top_p;          /* 1: off */
    int top_k;            /* 0: off */
    int eos;              /* stop after it; -1: never */
    uint64_t seed;
    const int *pidx;      /* the prompts' indexes in a larger batch (their samplers' seeds), or NULL: 0.. */
} rollout_opts;

typedef struct rollout {
    int n;                /* n_prompts * G completions, prompt-major: completion p*G + g */
    int max_new;
    int *ids;             /* (n, max_new) generated ids, owned */
    int *len;             /* (n) */
    int *finish;          /* (n) DC_FINISH_* */
    int64_t tokens;       /* generated in all */
    int64_t prompt_tokens;/* prefilled (each prompt once) */
    double seconds;
} rollout;

/* rollout_engine: an engine for max_seqs sequences of up to max_len positions. */
int rollout_engine(dc_model *m, int max_seqs, int max_len, dc_engine **out, dc_err *err);
/* rollout_run: G completions of each prompt (prompts[p] of np[p] ids). */
int rollout_run(dc_engine *e, const int *const *prompts, const int *np, int n_prompts, const rollout_opts *o,
                rollout *r, dc_err *err);
void rollout_free(rollout *r);
#endif
