/*
 * run.h — the run loop every trainer shares (pretrain, sft, grpo, distill):
 * optimiser steps with a progress line, RUN/metrics.jsonl, evaluation every
 * so many steps, checkpoints (checkpoint.h) and --resume, skipping a step
 * whose loss is non-finite or explodes, a warning when an MoE layer's
 * routing stays collapsed.
 *
 * A trainer plugs in through run_hooks: its step (batches, forward/backward,
 * trainer_update), its own figures for the metrics line and the progress
 * line, its evaluation, and its state for a checkpoint (data position,
 * rngs). The run's settings (run_opts.settings) go into every checkpoint's
 * trainer.json, where a resumed run finds them.
 *
 * metrics.jsonl, one line per logged step:
 *   {"step": N, "loss": .., "mtp_loss": .., "aux_loss": .., "lr": .., "grad_norm": ..,
 *    "tokens_per_s": .., "precision": "f32"|"bf16"|"fp8", ["bf16_moments": true,]
 *    <the hook's fields>, <the eval's fields>, "imbalance": [..]}
 * and {"step": N, "skipped": true, "reason": ".."} for a skipped step. A
 * resumed run first drops the lines of steps after its checkpoint.
 */
#ifndef DC_RUN_H
#define DC_RUN_H
#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>
#include "train/trainer.h"

/* sbuf: a fixed text buffer the hooks append to (printf-style, truncating) */
typedef struct sbuf {
    char *s;
    size_t cap, n;
} sbuf;
void sbuf_add(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* sbuf_num: a JSON number field ", \"key\": value" (null when not finite) */
void sbuf_num(sbuf *b, const char *key, double v);

typedef struct run_hooks {
    void *ctx;
    /* step: one optimiser step on t (trainer_zero_grad, forwards, trainer_update);
     * *tokens: the positions trained on, for tokens/s */
    int (*step)(void *ctx, trainer *t, int64_t *tokens, dc_err *err);
    /* metrics (may be NULL): the last step's own figures, as JSON fields
     * (sbuf_num) and a few words for the progress line */
    void (*metrics)(void *ctx, trainer *t, sbuf *json, sbuf *line);
    /* eval (may be NULL): held-out figures, appended the same way */
    int (*eval)(void *ctx, trainer *t, sbuf *json, sbuf *line, dc_err *err);
    /* save / load (may be NULL): the hook's state in trainer.json */
    int (*save)(void *ctx, cJSON *state);
    int (*load)(void *ctx, const cJSON *state, const char *path, dc_err *err);
    /* sample (may be NULL): show what the model does now, every sample_every steps */
    void (*sample)(void *ctx, trainer *t);
} run_hooks;

typedef struct run_opts {
    const char *name;        /* the command ("train", "sft", "grpo"): progress label, messages */
    const char *dir;         /* RUN */
    const char *tokenizer;   /* copied into each checkpoint, or NULL */
    int64_t steps;           /* run until t->step reaches it */
    int64_t stop_after;      /* stop this invocation after so many steps (0: never) */
    int log_every, eval_every, save_every, keep, sample_every;
    int explode;             /* skip a step whose loss exceeds 4x the running average (CE losses) */
    const char *resume_dir;  /* a checkpoint to resume from (ckpt_latest), or NULL */
    const cJSON *settings;   /* the run's settings, written into each checkpoint (borrowed) */
    volatile int *stop;      /* set by a signal handler: checkpoint and return; may be NULL */
} run_opts;

/* run_loop: RUN locked against a second writer (dir_lock, "deepc NAME"),
 * then resume from o->resume_dir when set (parameters, moments, step, the
 * hook's state), else start RUN afresh (refused when it holds checkpoints); then steps until o->steps, checkpointing at save_every and at
 * the end. Five skipped steps in a row stop the run with an error. */
int run_loop(trainer *t, const run_opts *o, const run_hooks *h, dc_err *err);

/* run_resume_settings: the settings stored in RUN's latest checkpoint
 * (*ckdir its directory); *settings NULL when the checkpoint has none (a run
 * from before settings were stored). *state is owned by the caller; settings
 * points into it. */
int run_resume_state(const char *run, char *ckdir, size_t cap, cJSON **state, const cJSON **settings, dc_err *err);

/* run_collapsed: 1 when MoE layer l's routing was collapsed in the last
 * step: max load / mean load >= half its maximum E / K (the busiest expert
 * took at least half of all tokens' K choices over K). The run loop warns
 * when a layer stays so for 100 steps in a row. */
int run_collapsed(const trainer *t, int l);
#endif
