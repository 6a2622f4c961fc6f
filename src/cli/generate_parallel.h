/* generate_parallel.h — `deepc generate --parallel` (generate_parallel.c). */
#ifndef DC_GENERATE_PARALLEL_H
#define DC_GENERATE_PARALLEL_H
#include "deepc.h"

typedef struct gen_par {
    int n;                     /* completions */
    int **prompts, *n_ids;     /* n_prompts prompts; one: n samples of it, sharing its cache */
    int n_prompts;
    int parallel;              /* sequences in flight */
    int max_new, eos, mtp, attn, kv, ctx;
    dc_sampler_params sp;      /* sample i uses seed sp.seed + i */
    const char *const *stops;
    int nstops;
    volatile int *cancel;
} gen_par;

int generate_parallel(const gen_par *g, dc_model *m, const dc_tokenizer *tok, dc_err *err);
#endif
