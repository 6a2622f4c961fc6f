/*
 * infer_cli.h — what `deepc generate`, `chat` and `bench` share: loading a
 * model in a chosen weight type, the tokenizer beside it, and streaming
 * generated text to a terminal or pipe with stop strings held back.
 */
#ifndef DC_INFER_CLI_H
#define DC_INFER_CLI_H
#include <stdint.h>
#include <stdio.h>
#include "deepc.h"

/* infer_load: dc_model_load(dir) then dc_model_set_dtype(dtype); prints
 * nothing. *secs: load time. */
int infer_load(const char *dir, const char *dtype, dc_model **m, double *secs, dc_err *err);
/* infer_load_dist: infer_load on the expert group of d (NULL or ep_size 1:
 * infer_load): only this rank's routed experts are read (model_load_ep). */
struct dist;
int infer_load_dist(const char *dir, const char *dtype, const struct dist *d, dc_model **m, double *secs, dc_err *err);
/* infer_tokenizer: the tokenizer at path (file or directory), or beside the
 * model in dir when path is NULL. *t stays NULL (and DC_OK is returned) when
 * path is NULL and dir has no tokenizer.json (or the GGUF no tokenizer.ggml.*
 * keys); a tokenizer that is there but broken is an error. */
int infer_tokenizer(const char *path, const char *dir, dc_tokenizer **t, dc_err *err);
/* infer_encode_prompt: text as one user turn of the chat template (v3, or r1
 * when r1), or with raw as BOS + text; *ids malloc'd. */
int infer_encode_prompt(const dc_tokenizer *tok, const char *text, int raw, int r1, int **ids, int *n, dc_err *err);
/* infer_sampling_opt: the sampling options generate and chat share, by their
 * getopt letters: T --temp, k --top-k, P --top-p, M --min-p, R
 * --repeat-penalty, s --seed. Returns 0 when ch is not one of them, 1 when it
 * was applied, and the usage-error exit code (2) when its value is bad. */
int infer_sampling_opt(const char *cmd, int ch, const char *arg, dc_sampler_params *sp);

/* infer_random_seed: a sampling seed from the kernel's entropy (getrandom),
 * in 0..2^63-1 so that --seed takes it back: runs started together differ,
 * and the printed seed repeats a run. */
uint64_t infer_random_seed(void);

enum { STREAM_PLAIN = 0, STREAM_DIM = 1, STREAM_HIDE = 2 };

/* streamer: writes tokens as text (or ids, without a tokenizer) to out as
 * they come, through a dc_stop: text that could be the start of a stop string
 * is held back until it is known not to be one; a completed stop string ends
 * the stream and is not printed. */
typedef struct streamer {
    const dc_tokenizer *tok; /* borrowed; NULL: print ids */
    dc_detok *dt;
    dc_stop *stop;
    FILE *out;
    int style, color, stopped, any;
} streamer;

int stream_init(streamer *s, const dc_tokenizer *tok, FILE *out, const char *const *stops, int nstops, dc_err *err);
/* stream_token: push one id; returns 1 once a stop string has completed. */
int stream_token(streamer *s, int id);
/* stream_style: print what follows plainly, dimmed (ANSI, only when color) or not at all. */
void stream_style(streamer *s, int style);
/* stream_finish: print what was held back (up to a stop string). */
void stream_finish(streamer *s);
/* stream_clear: a new answer: forget the text, keep the settings. */
void stream_clear(streamer *s);
void stream_free(streamer *s);
#endif
