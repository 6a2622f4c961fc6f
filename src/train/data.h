/*
 * data.h — tokenised training data: `deepc prepare` writes it, the trainer
 * samples windows from it.
 *
 * A data directory holds tokenizer.json (copied), train-NNNNN.bin shards and
 * val-NNNNN.bin (when --val-frac > 0). A shard is
 *   "DCTOKENS" (8 bytes) | u32 version (1) | u32 vocab size | u64 count | count x u32 ids
 * little-endian. Documents are separated by the tokenizer's EOS.
 *
 * The loader reads every shard of a split into memory as one stream and
 * draws windows of T+1 tokens at offsets from its own rng (whose state the
 * checkpoints save, so a resumed run draws the same windows).
 */
#ifndef DC_DATA_H
#define DC_DATA_H
#include <stddef.h>
#include <stdint.h>
#include "base/rng.h"
#include "deepc.h"

#define DATA_MAGIC "DCTOKENS"

/* data_write_shard: one shard, atomically. */
int data_write_shard(const char *path, const uint32_t *ids, size_t n, int vocab, dc_err *err);

typedef struct data_split {
    uint32_t *ids;  /* owned */
    size_t n;
    int vocab;
} data_split;

/* data_load: every DIR/<split>-*.bin in name order. DC_ENOTFOUND when none. */
int data_load(data_split *d, const char *dir, const char *split, dc_err *err);
void data_free(data_split *d);

typedef struct data_loader {
    const data_split *d;  /* borrowed */
    int B, T;
    rng r;
} data_loader;

/* data_next: B windows of T+1 tokens into tokens (B, T+1), random offsets. */
void data_next(void *loader, int *tokens);
/* data_window: window i of a fixed, evenly spaced set (validation). */
void data_window(const data_split *d, int T, int64_t i, int64_t count, int *out);

typedef struct prepare_opts {
    const char *tokenizer;   /* tokenizer.json */
    const char **files;
    int nfiles;
    const char *out;
    const char *field;       /* JSONL text field ("text") */
    float val_frac;
    int quiet;
} prepare_opts;

/* data_jsonl_each: call fn with the string field `field` of every non-blank
 * line of the JSONL text s[0, n) (each line read as Python's json.loads
 * reads it: io/json.h); a line that is not an object with that string
 * field is DC_EFORMAT naming path:line. text is borrowed for the call. */
int data_jsonl_each(const char *s, size_t n, const char *field, const char *path,
                    int (*fn)(void *ctx, const char *text, size_t len), void *ctx, dc_err *err);

/* data_prepare: tokenise plain-text or JSONL files (documents split at
 * blank... see data.c) in parallel into out/. Prints a progress bar. */
int data_prepare(const prepare_opts *o, size_t *ntrain, size_t *nval, dc_err *err);
#endif
