/*
 * pretrain.h — pretraining as a client of the run loop (run.h): windows of
 * T+1 tokens drawn at random from a prepared data directory (data.h), every
 * position weighted alike, validation loss on evenly spaced windows of the
 * val split, the data rng saved in each checkpoint.
 */
#ifndef DC_PRETRAIN_H
#define DC_PRETRAIN_H
#include "train/data.h"
#include "train/run.h"

typedef struct pretrain {
    data_split tr, val;      /* owned */
    int have_val;            /* the val split holds at least one window */
    data_loader dl;
    dc_tokenizer *tk;        /* DIR/tokenizer.json when present (samples), or NULL; owned */
    char tokenizer[4096];    /* its path, or "" */
    int *tok;                /* (B, T+1) validation buffer, owned */
    int sample_len;          /* tokens of a greedy sample */
} pretrain;

/* pretrain_open: the data of DIR for windows of T+1 tokens, the loader
 * seeded from seed; a missing val split is not an error (no validation). */
int pretrain_open(pretrain *p, const char *dir, int B, int T, uint64_t seed, dc_err *err);
void pretrain_close(pretrain *p);
/* pretrain_hooks: the run loop's hooks for p. */
void pretrain_hooks(pretrain *p, run_hooks *h);
#endif
