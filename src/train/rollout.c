/* rollout.c — see rollout.h. */
#include "train/rollout.h"
#include <stdlib.h>
#include <string.h>
#include "base/err.h"
#include "base/progress.h"

int rollout_engine(dc_model *m, int max_seqs, int max_len, dc_engine **out, dc_err *err) {
    dc_engine_opts eo;
    dc_engine_defaults(&eo);
    eo.max_seqs = max_seqs;
    eo.max_len = max_len;
    eo.max_batch = max_seqs * 4 > 512 ? max_seqs * 4 : 512;
    eo.kv_type = DC_KV_F32; /* rollouts' log-probabilities are compared with the trainer's float32 forward */
    return dc_engine_new(m, &eo, out, err);
}

void rollout_free(rollout *r) {
    if (!r) return;
    free(r->ids), free(r->len), free(r->finish);
    memset(r, 0, sizeof *r);
}

static uint64_t mix(uint64_t a, uint64_t b) {
    uint64_t z = a * 0x9e3779b97f4a7c15ull + b + 0x632be59bd9b4e019ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

int rollout_run(dc_engine *e, const int *const *prompts, const int *np, int n_prompts, const rollout_opts *o,
                rollout *r, dc_err *err) {
    memset(r, 0, sizeof *r);
    const int G = o->G > 0 ? o->G : 1, n = n_prompts * G, V = dc_model_config(dc_engine_model(e))->vocab_size;
    r->n = n, r->max_new = o->max_new;
    r->ids = malloc(sizeof(int) * (size_t)n * (o->max_new > 0 ? o->max_new : 1));
    r->len = calloc(n, sizeof(int)), r->finish = calloc(n, sizeof(int));
    dc_gen_seq *q = calloc(n, sizeof *q);
    dc_sampler **smp = calloc(n, sizeof *smp);
    int rc = r->ids && r->len && r->finish && q && smp ? DC_OK : err_set(err, DC_ENOMEM, "rollout: out of memory");
    for (int i = 0; !rc && i < n; i++) {
        int p = i / G, g = i % G;
        dc_sampler_params sp;
        dc_sampler_defaults(&sp);
        sp.temperature = o->temperature, sp.top_k = o->top_k, sp.top_p = o->top_p, sp.min_p = 0;
        sp.repeat_penalty = 1, sp.seed = mix(mix(o->seed, (uint64_t)(o->pidx ? o->pidx[p] : p)), (uint64_t)g);
        rc = dc_sampler_new(&sp, V, &smp[i], err);
        q[i] = (dc_gen_seq){.prompt = prompts[p], .n_prompt = np[p], .share_prompt_of = g ? p * G : -1,
                            .smp = smp[i], .max_new = o->max_new, .out = r->ids + (size_t)i * o->max_new};
    }
    double t0 = progress_now();
    dc_gen_batch_opts go = {.eos = o->eos};
    dc_gen_stats st;
    if (!rc) rc = dc_generate_batch(e, q, n, &go, &st, err);
    r->seconds = progress_now() - t0;
    for (int i = 0; !rc && i < n; i++) r->len[i] = q[i].n_out, r->finish[i] = q[i].finish, r->tokens += q[i].n_out;
    if (!rc) r->prompt_tokens = st.n_prompt;
    for (int i = 0; smp && i < n; i++) dc_sampler_free(smp[i]);
    free(smp), free(q);
    if (rc) rollout_free(r);
    return rc;
}
