/*
 * grpo.h — Group Relative Policy Optimization (DeepSeekMath §4.1; R1 §2.2.1)
 * as a client of the run loop (run.h), with DAPO's refinements as options.
 *
 * One rollout batch, then mu optimiser updates on it:
 *   - P prompts of the task (task.h), G completions each at temperature 1
 *     through the batched engine, the G forked from one prefill (rollout.h);
 *   - rule rewards r (task_reward: accuracy + format_weight * format), or
 *     --reward random: a fair coin per completion (a control: the policy
 *     learns nothing true from it, so its accuracy must not rise);
 *   - advantages within each group: A = (r - mean) / (std + 1e-4) (std with
 *     Bessel's correction), or A = r - mean (Dr. GRPO, Liu et al. 2025);
 *   - dynamic sampling (DAPO, Yu et al. 2025, on by default): a group whose
 *     rewards are all equal has A = 0 everywhere and teaches nothing; it is
 *     dropped and more prompts are drawn, up to max_rounds rollouts a step;
 *   - the loss (loss.h) on the completion tokens: the clipped ratio with
 *     eps_low / eps_high (0.2 / 0.28, DAPO's clip-higher), the k3 KL to the
 *     frozen reference model with beta (default 0, as DAPO, TRL and verl);
 *     pi_old is the policy that sampled (its log-probabilities taken by the
 *     training forward before the first of the mu updates; with mu = 1 it is
 *     the current policy and the ratio is 1);
 *   - the token-level mean over the batch (DAPO; default), or the mean per
 *     sequence, then over sequences (the original GRPO).
 * Every step logs the mean reward, accuracy and format reward of all the
 * completions sampled, the KL to the reference, the clipped share and the
 * entropy of the completion tokens, their mean length, the share of
 * dropped groups, rollout and training tokens/s.
 */
#ifndef DC_GRPO_H
#define DC_GRPO_H
#include "base/rng.h"
#include "train/rollout.h"
#include "train/run.h"
#include "train/task.h"

typedef struct grpo_opts {
    int P, G;                /* prompts per step, completions per prompt (8) */
    int max_new;             /* tokens per completion */
    float temperature;       /* 1 */
    int dr_grpo;             /* A = r - mean */
    int dynamic;             /* drop and refill groups with equal rewards (1) */
    int max_rounds;          /* rollouts per step at most (4) */
    float eps_low, eps_high, beta;
    int mu;                  /* updates per rollout batch (1) */
    int seq_mean;            /* per-sequence mean (0: token-level) */
    int random_reward;
    float format_weight;
    int style;               /* DC_CHAT_R1 or DC_CHAT_V3 */
    int eval_n, eval_max_new;/* held-out greedy accuracy every eval step */
    uint64_t seed;
} grpo_opts;
void grpo_defaults(grpo_opts *o);

typedef struct gseq gseq;

typedef struct grpo {
    grpo_opts o;
    const task *tk_task;     /* borrowed */
    const dc_tokenizer *tk;  /* borrowed */
    dc_model *view;          /* the trainer's parameters (trainer_model), owned view */
    dc_model *ref;           /* the frozen reference, owned */
    dc_engine *e;            /* owned */
    int B, T;                /* micro-batch rows, positions (the trainer's capacity) */
    int64_t cursor;          /* the next training item */
    rng r;                   /* random rewards */
    gseq *s;                 /* this step's completions */
    int ns, cap;
    int *tok;                /* (B, T+1) */
    float *w, *adv, *old, *rlp, *logp, *ent, *kl; /* (B, T) */
    unsigned char *clipped;  /* (B, T) */
    float *logits;           /* (T+1, V) the reference's */
    dc_session *ref_s;
    /* figures of the last step */
    double reward, accuracy, format, kl_mean, clip_frac, entropy, length, dropped;
    double rollout_tps, train_tps;
    int groups, skipped_prompts;
} grpo;

/* grpo_open: rollouts from the trainer's parameters, ref_dir the frozen
 * reference (the starting checkpoint). */
int grpo_open(grpo *g, trainer *t, const task *tk_task, const dc_tokenizer *tk, const char *ref_dir, const grpo_opts *o,
              dc_err *err);
void grpo_close(grpo *g);
void grpo_hooks(grpo *g, run_hooks *h);
/* grpo_advantages: group advantages of rewards r (G) into a (G). */
void grpo_advantages(const double *r, int G, int dr_grpo, float *a);
#endif
