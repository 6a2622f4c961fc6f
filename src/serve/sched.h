/*
 * sched.h — what the engine thread's two files share: sched.c (admission,
 * sequences, the batch of each step, the loop) and emit.c (a sampled token
 * through detokenizer, stop strings and reasoning split into SSE chunks or
 * the final answer). See sched.c for the design.
 */
#ifndef DC_SCHED_H
#define DC_SCHED_H
#include "serve/sv.h"

typedef struct choice {
    int seq;          /* engine sequence, -1 until it has one */
    dc_sampler *smp;
    dc_detok *dt;
    dc_stop *stop;    /* NULL without stop strings */
    sv_think think;
    int *hist, n_hist; /* prompt + generated ids: sampler history, prefix-cache key */
    int n_gen;
    int pending;      /* the last sampled token, fed next step; -1 none */
    int finish;       /* DC_FINISH_* */
    int sent_first;   /* streaming: the chunk with the role went out */
    int batch_i;      /* this step: batch index of the token it samples from, -1 */
    sv_choice_out out;/* text: the whole answer (non-streamed) or this step's delta */
    void *lp;         /* logprobs not yet sent (streaming) or all of them */
    int text_off;     /* completions' text_offset: bytes so far */
} choice;

typedef struct group { /* one prompt and its n choices */
    const sv_prompt *p;
    int fed;          /* prompt tokens in the sequence */
    int cached;       /* of which came from the prefix cache */
    int last_i;       /* this step: batch index of the prompt's last token, -1 */
} group;

typedef struct active {
    sv_job *j;
    group *g;
    choice *c;        /* (n_prompts * n); choice g*n is the prompt's own sequence */
    int ng, nc, need; /* groups, choices, sequences held at most */
    int got_first;
    buf sse;          /* streaming: this step's chunks, written to the job at the step's end */
    struct active *next;
} active;

typedef struct sched {
    sv_server *s;
    dc_engine *e;
    sv_prefix pc;
    active *run;
    sv_job *waiting;  /* popped, waiting for sequences */
    int seqs_used, vocab, eos, cap;
    int *tok, *seq;
    unsigned char *want;
    float *scratch;
    int stop_level;
} sched;

/* sched.c */
void release_seqs(sched *S, active *a);
void unlink_active(sched *S, active *a);
void active_free(active *a);
/* job_fail: end a job with an error (before or after it started streaming) */
void job_fail(sched *S, active *a, int status, const char *msg);

/* emit.c */
/* emit_sample: choice c samples its next token from logits (vocab), and the
 * token goes out; returns 1 when the choice has finished. */
int emit_sample(sched *S, active *a, choice *c, const float *logits);
/* emit_step_end: a job's chunks of this step to its client; a job whose
 * choices all finished gets its last chunks or whole answer and leaves. */
void emit_step_end(sched *S, active *a);
#endif
