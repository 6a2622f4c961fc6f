/*
 * distill.h — distillation (R1 §2.3.3, §2.4): a teacher answers prompts with
 * its reasoning through the batched engine; the answers the rule reward
 * accepts (right and well formatted: rejection sampling, as R1 built its
 * 800k-sample SFT set) are written as SFT data, on which the student is
 * then fine-tuned (sft.h), optionally with logit distillation to the
 * teacher's top-k (sft_kd).
 */
#ifndef DC_DISTILL_H
#define DC_DISTILL_H
#include <stdio.h>
#include "dist/dist.h"
#include "train/rollout.h"
#include "train/task.h"

typedef struct distill_opts {
    int n;                  /* prompts */
    int K;                  /* teacher samples per prompt */
    int keep;               /* accepted answers kept per prompt at most */
    float temperature;
    int max_new, style;
    uint64_t seed;
} distill_opts;

typedef struct distill_stats {
    int prompts, sampled, accepted, written;
    int64_t tokens;
    double seconds;
} distill_stats;

/* distill_collect: for n items of t's training split (or, with t NULL, the
 * prompts of prompts[0..n): every answer accepted), K teacher samples each;
 * accepted answers as JSONL {"prompt", "response"} lines to out. */
int distill_collect(dc_engine *teacher, const dc_tokenizer *tk, const task *t, char *const *prompts,
                    const distill_opts *o, FILE *out, distill_stats *st, dc_err *err);
/* distill_collect_dist: the same spread over the data-parallel replicas of
 * d: chunk c of 16 prompts is sampled by replica c % dp (its samplers seeded
 * by the chunk, as in one process); every replica gets the whole output in
 * chunk order (the bytes one process writes) and the job's stats. */
int distill_collect_dist(dc_engine *teacher, const dc_tokenizer *tk, const task *t, char *const *prompts,
                         const distill_opts *o, const dist *d, FILE *out, distill_stats *st, dc_err *err);
#endif
