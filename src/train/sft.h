/*
 * sft.h — supervised fine-tuning as a client of the run loop (run.h):
 * conversations rendered with the chat template (convo.h), the loss only on
 * assistant tokens, one conversation per row padded to the longest row of
 * its micro-batch (no packing: rows never attend to each other, and the
 * padding is never a target), a token-level mean over the whole step,
 * epochs in a seeded shuffled order, a held-out split with its loss.
 *
 * Data: JSONL lines {"messages": [{"role", "content"}, ...]} (OpenAI's
 * shape) or {"prompt", "response"}; or one JSON array of such objects, or of
 * Alpaca's {"instruction", "input", "response" | "output"}.
 */
#ifndef DC_SFT_H
#define DC_SFT_H
#include "base/rng.h"
#include "train/run.h"

typedef struct sft_set {
    int n;
    int **ids;              /* (n) rows, owned */
    unsigned char **mask;   /* (n) 1 where the token is the assistant's */
    int *len;               /* (n) */
    int truncated;          /* rows cut to the length limit */
    int skipped;            /* conversations with no assistant token within it */
    int style;              /* DC_CHAT_R1 or DC_CHAT_V3, as rendered */
} sft_set;

/* sft_load: path's conversations for tk in style (DC_CHAT_R1, DC_CHAT_V3, or
 * -1: R1 when some assistant turn holds "</think>"), each cut to max_len
 * tokens. A line that is not a conversation is an error naming it. */
int sft_load(sft_set *s, const char *path, const dc_tokenizer *tk, int style, int max_len, dc_err *err);
void sft_set_free(sft_set *s);

typedef struct sft {
    sft_set d;              /* owned */
    int *train, n_train;    /* row indices, in this epoch's order */
    int *val, n_val;        /* held-out row indices */
    int B, T, accum, pad;   /* micro-batch shape (capacity), padding id */
    rng r;                  /* the epoch shuffles */
    int64_t epoch, pos;     /* rows of this epoch already taken */
    int *tok;               /* (B, T+1) */
    float *w;               /* (B, T) */
    /* logit distillation (optional): the teacher's top-k at each position of
     * each row (row len x k), the KD loss of loss.h instead of CE */
    int kd_k;
    int **kd_ids;           /* (n) owned */
    float **kd_logits;      /* (n) owned */
    float kd_temp, kd_alpha;
    int *kd_bi;             /* (B, T, k) a micro-batch's */
    float *kd_bl;
} sft;

/* sft_open: split off n_val held-out rows (seeded), then the first epoch's order. */
int sft_open(sft *s, sft_set *d, int val_rows, int B, int T, int accum, int pad, uint64_t seed, dc_err *err);
void sft_close(sft *s);
/* sft_kd: distil from teacher (same vocabulary): its top k logits at every
 * position of every row, computed now through the inference path; the
 * steps then use the KD loss with temperature temp and weight alpha. */
int sft_kd(sft *s, dc_model *teacher, int k, float temp, float alpha, dc_err *err);
/* sft_steps_per_epoch: optimiser steps that see every training row once. */
int64_t sft_steps_per_epoch(const sft *s);
/* sft_val_loss: the token mean loss over the held-out rows (NAN when none). */
int sft_val_loss(sft *s, trainer *t, double *loss, dc_err *err);
void sft_hooks(sft *s, run_hooks *h);
#endif
