/*
 * generate_parallel.c — `deepc generate --parallel N`: many completions at
 * once on one engine (dc_generate_batch): N samples of one prompt (sharing its
 * cache through fork, seeds seed, seed+1, ...) or every line of --prompts
 * FILE, N in flight at a time. Each completion is printed whole when all are
 * done, in order, after a header line; figures on stderr.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "base/err.h"
#include "base/progress.h"
#include "cli/cli.h"
#include "cli/generate_parallel.h"
#include "cli/infer_cli.h"

typedef struct outseq {
    dc_detok *dt;
    dc_stop *stop;
    char *text;
    size_t len, cap;
    int stopped;
} outseq;

typedef struct par_ctx {
    outseq *o;
    const dc_tokenizer *tok;
    dc_engine *e;
    dc_kv_stats peak; /* the store when it held the most positions */
} par_ctx;

static int append(outseq *s, const char *b, size_t n) {
    if (s->len + n + 1 > s->cap) {
        size_t cap = (s->len + n + 1) * 2;
        char *t = realloc(s->text, cap);
        if (!t) return -1;
        s->text = t, s->cap = cap;
    }
    memcpy(s->text + s->len, b, n);
    s->len += n;
    s->text[s->len] = 0;
    return 0;
}

/* each token through the sequence's detokenizer and stop strings; 1 stops it */
static int on_token(void *ctx, int i, int id) {
    par_ctx *p = ctx;
    outseq *s = &p->o[i];
    dc_kv_stats ks;
    dc_engine_kv_stats(p->e, &ks);
    if (ks.positions > p->peak.positions) p->peak = ks;
    char num[16];
    const char *b = num, *out;
    size_t n, out_len;
    if (!p->tok) n = (size_t)snprintf(num, sizeof num, "%s%d", s->len ? " " : "", id);
    else if (dc_detok_push(s->dt, id, &b, &n, NULL)) return 0;
    s->stopped = dc_stop_push(s->stop, b, n, &out, &out_len);
    append(s, out, out_len);
    return s->stopped;
}

static void finish_text(par_ctx *p, int i) {
    outseq *s = &p->o[i];
    const char *b, *out;
    size_t n, out_len;
    if (s->stopped) return;
    if (s->dt) {
        dc_detok_flush(s->dt, &b, &n);
        if (dc_stop_push(s->stop, b, n, &out, &out_len)) s->stopped = 1;
        append(s, out, out_len);
    }
    dc_stop_flush(s->stop, &out, &out_len);
    append(s, out, out_len);
}

int generate_parallel(const gen_par *g, dc_model *m, const dc_tokenizer *tok, dc_err *err) {
    const dc_config *c = dc_model_config(m);
    int n = g->n, rc = DC_OK, longest = 0;
    dc_gen_seq *q = calloc(n, sizeof *q);
    dc_sampler **smp = calloc(n, sizeof *smp);
    outseq *os = calloc(n, sizeof *os);
    int *out = malloc(sizeof(int) * (size_t)n * (g->max_new ? g->max_new : 1));
    if (!q || !smp || !os || !out) rc = err_set(err, DC_ENOMEM, "generate: out of memory");
    for (int i = 0; !rc && i < n; i++) {
        int k = g->n_prompts > 1 ? i : 0;
        dc_sampler_params sp = g->sp;
        sp.seed = g->sp.seed + (uint64_t)i;
        if ((rc = dc_sampler_new(&sp, c->vocab_size, &smp[i], err))) break;
        if ((rc = dc_stop_new(g->stops, g->nstops, &os[i].stop, err))) break;
        if (tok && (rc = dc_detok_new(tok, 0, &os[i].dt, err))) break;
        q[i] = (dc_gen_seq){.prompt = g->prompts[k], .n_prompt = g->n_ids[k], .share_prompt_of = g->n_prompts > 1 || !i ? -1 : 0,
                            .smp = smp[i], .max_new = g->max_new, .out = out + (size_t)i * g->max_new};
        if (g->n_ids[k] > longest) longest = g->n_ids[k];
    }
    dc_engine *e = NULL;
    dc_engine_opts eo;
    dc_engine_defaults(&eo);
    eo.max_seqs = g->parallel, eo.attn = g->attn, eo.kv_type = g->kv, eo.max_len = g->ctx ? g->ctx : longest + g->max_new + 2;
    eo.max_batch = eo.max_len > 512 ? eo.max_len : 512;
    if (!rc) rc = dc_engine_new(m, &eo, &e, err);
    par_ctx pc = {os, tok, e, {0}};
    dc_gen_batch_opts go = {.eos = g->eos, .mtp = g->mtp, .cb = on_token, .ctx = &pc, .cancel = g->cancel};
    dc_gen_stats st;
    double t0 = progress_now();
    if (!rc) rc = dc_generate_batch(e, q, n, &go, &st, err);
    double dt = progress_now() - t0;
    static const char *FIN[] = {"", "stop", "length", "cancelled"};
    for (int i = 0; !rc && i < n; i++) {
        finish_text(&pc, i);
        int k = g->n_prompts > 1 ? i : 0;
        printf("--- [%d] prompt %d%s, %d tokens, %s\n", i, k + 1, g->n_prompts > 1 ? "" : " (sample)", q[i].n_out,
               FIN[q[i].finish & 3]);
        fwrite(os[i].text ? os[i].text : "", 1, os[i].len, stdout);
        printf("\n");
    }
    if (!rc)
        fprintf(stderr, "deepc generate: %d sequences, %d at a time: %d prompt tokens, %d generated in %.2f s = %.1f tokens/s "
                "(prefill steps %.2f s, decode steps %.2f s)\n", n, g->parallel, st.n_prompt, st.n_gen, dt,
                st.n_gen / (dt > 0 ? dt : 1e-9), st.prefill_s, st.decode_s);
    if (!rc && pc.peak.positions)
        fprintf(stderr, "deepc generate: KV store at its fullest: %lld positions of %d sequences in %d pages of %d = %.2f MB "
                "(%.2f MB without shared prefixes)\n", (long long)pc.peak.positions, pc.peak.n_seqs, pc.peak.pages_used,
                pc.peak.page_tokens, pc.peak.pages_used * (double)pc.peak.bytes_per_page / 1e6,
                pc.peak.positions * (double)pc.peak.bytes_per_token / 1e6);
    if (!rc && g->mtp)
        fprintf(stderr, "deepc generate: mtp %d of %d drafts accepted\n", st.n_accept, st.n_draft);
    dc_engine_free(e);
    for (int i = 0; smp && os && i < n; i++) {
        dc_sampler_free(smp[i]);
        dc_stop_free(os[i].stop);
        dc_detok_free(os[i].dt);
        free(os[i].text);
    }
    free(q), free(smp), free(os), free(out);
    return rc;
}
