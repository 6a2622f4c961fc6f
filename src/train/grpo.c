/* grpo.c — see grpo.h. */
#include "train/grpo.h"
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "base/err.h"
#include "base/progress.h"
#include "train/convo.h"
#include "train/eval.h"

struct gseq {
    int *ids;      /* prompt + completion, owned */
    int np, len;   /* prompt tokens, all tokens */
    float adv;
    float *old;    /* (len - np) log pi_old of the completion tokens, or NULL */
    float *ref;    /* (len - np) log pi_ref, or NULL */
};

void grpo_defaults(grpo_opts *o) {
    *o = (grpo_opts){.P = 4, .G = 8, .max_new = 128, .temperature = 1.0f, .dynamic = 1, .max_rounds = 4,
                     .eps_low = 0.2f, .eps_high = 0.28f, .beta = 0, .mu = 1, .format_weight = 0.1f,
                     .style = DC_CHAT_R1, .eval_n = 50, .eval_max_new = 0, .seed = 1};
}

static void clear_seqs(grpo *g) {
    for (int i = 0; i < g->ns; i++) free(g->s[i].ids), free(g->s[i].old), free(g->s[i].ref);
    g->ns = 0;
}

void grpo_close(grpo *g) {
    if (!g) return;
    clear_seqs(g);
    free(g->s), free(g->tok), free(g->w), free(g->adv), free(g->old), free(g->rlp), free(g->logp), free(g->ent);
    free(g->kl), free(g->clipped), free(g->logits);
    dc_session_free(g->ref_s);
    dc_engine_free(g->e);
    dc_model_free(g->ref);
    trainer_model_free(g->view);
    memset(g, 0, sizeof *g);
}

int grpo_open(grpo *g, trainer *t, const task *tk_task, const dc_tokenizer *tk, const char *ref_dir, const grpo_opts *o,
              dc_err *err) {
    memset(g, 0, sizeof *g);
    g->o = *o, g->tk_task = tk_task, g->tk = tk, g->B = t->Bcap, g->T = t->Tcap;
    if (g->o.eval_max_new <= 0) g->o.eval_max_new = g->o.max_new;
    rng_seed(&g->r, o->seed * 0x2545f4914f6cdd1dull + 7);
    size_t BT = (size_t)g->B * g->T, V = t->cfg.vocab_size;
    int slots = o->P * o->G < 256 ? o->P * o->G : 256;
    int rc = trainer_model(t, &g->view, err);
    if (!rc) rc = rollout_engine(g->view, slots, g->T + 1, &g->e, err);
    if (!rc) rc = dc_model_load(ref_dir, &g->ref, err);
    if (!rc) rc = dc_session_new(g->ref, g->T + 1, DC_ATTN_ABSORB, &g->ref_s, err);
    if (!rc && memcmp(dc_model_config(g->ref), &t->cfg, offsetof(dc_config, fp8_block_m)))
        rc = err_set(err, DC_ECONFIG, "grpo: the reference %s has another shape than the policy", ref_dir);
    g->tok = malloc(sizeof(int) * (BT + g->B)), g->w = malloc(sizeof(float) * BT), g->adv = malloc(sizeof(float) * BT);
    g->old = malloc(sizeof(float) * BT), g->rlp = malloc(sizeof(float) * BT), g->logp = malloc(sizeof(float) * BT);
    g->ent = malloc(sizeof(float) * BT), g->kl = malloc(sizeof(float) * BT), g->clipped = malloc(BT);
    g->logits = malloc(sizeof(float) * (g->T + 1) * V);
    if (!rc && (!g->tok || !g->w || !g->adv || !g->old || !g->rlp || !g->logp || !g->ent || !g->kl || !g->clipped ||
                !g->logits))
        rc = err_set(err, DC_ENOMEM, "grpo: out of memory");
    if (rc) grpo_close(g);
    return rc;
}

void grpo_advantages(const double *r, int G, int dr_grpo, float *a) {
    int same = 1;
    for (int i = 1; i < G; i++) same &= r[i] == r[0];
    if (same) { /* exactly 0, not a rounding residue of the mean */
        for (int i = 0; i < G; i++) a[i] = 0;
        return;
    }
    double mean = 0, var = 0;
    for (int i = 0; i < G; i++) mean += r[i];
    mean /= G;
    for (int i = 0; i < G; i++) var += (r[i] - mean) * (r[i] - mean);
    double sd = G > 1 ? sqrt(var / (G - 1)) : 0;
    for (int i = 0; i < G; i++) a[i] = (float)(dr_grpo ? r[i] - mean : (r[i] - mean) / (sd + 1e-4));
}

/* ---------------------------------------------------------------- rollouts */

typedef struct tally {
    double reward, accuracy, format, length;
    int64_t completions, groups, dropped, tokens;
    double seconds;
} tally;

static int push(grpo *g, const int *prompt, int np, const int *gen, int n, float adv, dc_err *err) {
    if (g->ns == g->cap) {
        int cap = g->cap ? g->cap * 2 : 64;
        gseq *ns = realloc(g->s, sizeof *ns * cap);
        if (!ns) return err_set(err, DC_ENOMEM, "grpo: out of memory");
        g->s = ns, g->cap = cap;
    }
    gseq *s = &g->s[g->ns];
    *s = (gseq){.ids = malloc(sizeof(int) * (np + n)), .np = np, .len = np + n, .adv = adv};
    if (!s->ids) return err_set(err, DC_ENOMEM, "grpo: out of memory");
    memcpy(s->ids, prompt, sizeof(int) * np), memcpy(s->ids + np, gen, sizeof(int) * n);
    g->ns++;
    return DC_OK;
}

/* group: score the G completions of one prompt; keep them unless dynamic
 * sampling drops the group. force keeps it anyway. */
static int group(grpo *g, const task_item *it, const int *prompt, int np, const rollout *r, int first, int force,
                 tally *ty, dc_err *err) {
    const int G = g->o.G;
    double rw[G];
    float a[G];
    for (int k = 0; k < G; k++) {
        int j = first + k;
        char *text = NULL;
        size_t len;
        reward_out ro = {0};
        if (!convo_text(g->tk, r->ids + (size_t)j * r->max_new, r->len[j], &text, &len, err))
            task_reward(g->tk_task, it, text, len, g->o.format_weight, &ro);
        free(text);
        rw[k] = g->o.random_reward ? (rng_u64(&g->r) >> 63 ? 1.0 : 0.0) : ro.reward;
        ty->reward += rw[k], ty->accuracy += ro.accuracy, ty->format += ro.format, ty->length += r->len[j];
        ty->completions++;
    }
    int same = 1;
    for (int k = 1; k < G; k++) same &= rw[k] == rw[0];
    ty->groups++;
    if (same && g->o.dynamic && !force) {
        ty->dropped++;
        return DC_OK;
    }
    grpo_advantages(rw, G, g->o.dr_grpo, a);
    for (int k = 0; k < G; k++) {
        int j = first + k, rc = push(g, prompt, np, r->ids + (size_t)j * r->max_new, r->len[j], a[k], err);
        if (rc) return rc;
    }
    return DC_OK;
}

/* spread: the n prompts' rollouts over the data-parallel replicas (prompt i
 * on replica i % dp, its samplers seeded by i as in one process), gathered
 * into r on every replica in prompt order */
static int spread(grpo *g, trainer *t, int *const *ids, const int *np, int n, const rollout_opts *ro, rollout *r,
                  dc_err *err) {
    const dist *d = &t->dist;
    const int W = d->dp_size, me = d->dp_rank, G = ro->G, M = ro->max_new;
    if (W == 1) return rollout_run(g->e, (const int *const *)ids, np, n, ro, r, err);
    const int per = (n + W - 1) / W, blk = per * G * (1 + M); /* ints per replica */
    int mine = 0, pidx[per ? per : 1], npm[per ? per : 1];
    const int *idm[per ? per : 1];
    for (int i = me; i < n; i += W) pidx[mine] = i, npm[mine] = np[i], idm[mine] = ids[i], mine++;
    rollout_opts o = *ro;
    o.pidx = pidx;
    rollout part = {0};
    int *send = calloc((size_t)blk + 1, sizeof(int)), *all = calloc((size_t)blk * W + 1, sizeof(int));
    memset(r, 0, sizeof *r);
    r->n = n * G, r->max_new = M;
    r->ids = malloc(sizeof(int) * ((size_t)n * G * (M > 0 ? M : 1) + 1)), r->len = calloc((size_t)n * G + 1, sizeof(int));
    r->finish = calloc((size_t)n * G + 1, sizeof(int));
    int rc = send && all && r->ids && r->len && r->finish ? DC_OK : err_set(err, DC_ENOMEM, "grpo: out of memory");
    if (!rc && mine) rc = rollout_run(g->e, idm, npm, mine, &o, &part, err);
    for (int j = 0; !rc && j < mine * G; j++) { /* per completion: its length, then max_new ids */
        send[(size_t)j * (1 + M)] = part.len[j];
        memcpy(send + (size_t)j * (1 + M) + 1, part.ids + (size_t)j * M, sizeof(int) * M);
    }
    if (!rc) rc = dist_allgather(d, DIST_DP, send, all, sizeof(int) * blk, err);
    for (int i = 0; !rc && i < n; i++)
        for (int k = 0; k < G; k++) {
            const int *c = all + (size_t)(i % W) * blk + ((size_t)(i / W) * G + k) * (1 + M);
            r->len[i * G + k] = c[0], r->tokens += c[0];
            memcpy(r->ids + ((size_t)i * G + k) * M, c + 1, sizeof(int) * M);
        }
    r->seconds = part.seconds;
    rollout_free(&part);
    free(send), free(all);
    if (rc) rollout_free(r);
    return rc;
}

/* sample_round: `need` new prompts, G completions each, scored and kept */
static int sample_round(grpo *g, trainer *t, int need, int round, int last, tally *ty, dc_err *err) {
    task_item it[need];
    int *ids[need], np[need], n = 0, rc = DC_OK;
    const int64_t size = task_size(g->tk_task, SPLIT_TRAIN);
    int skipped = 0;
    while (n < need && !rc) {
        int64_t i = size > 0 ? g->cursor % size : g->cursor;
        g->cursor++;
        if ((rc = task_get(g->tk_task, SPLIT_TRAIN, i, &it[n], err))) break;
        if ((rc = convo_prompt(g->tk, g->o.style, it[n].prompt, &ids[n], &np[n], err))) {
            task_item_free(&it[n]);
            break;
        }
        if (np[n] + g->o.max_new > g->T + 1) { /* too long for the trainer's rows */
            g->skipped_prompts++;
            free(ids[n]), task_item_free(&it[n]);
            if (++skipped == 100)
                rc = err_set(err, DC_EARG, "grpo: 100 prompts in a row are longer than --seq %d minus --max-new %d", g->T,
                             g->o.max_new);
            continue;
        }
        skipped = 0;
        n++;
    }
    rollout r = {0};
    rollout_opts ro = {.G = g->o.G, .max_new = g->o.max_new, .temperature = g->o.temperature, .top_p = 1,
                       .eos = dc_tokenizer_eos(g->tk), .seed = g->o.seed * 1000003u + (uint64_t)t->step * 131 + round};
    if (!rc) rc = spread(g, t, ids, np, n, &ro, &r, err);
    ty->tokens += r.tokens, ty->seconds += r.seconds;
    for (int i = 0; !rc && i < n; i++) rc = group(g, &it[i], ids[i], np[i], &r, i * g->o.G, last, ty, err);
    rollout_free(&r);
    for (int i = 0; i < n; i++) free(ids[i]), task_item_free(&it[i]);
    return rc;
}

static int collect(grpo *g, trainer *t, tally *ty, dc_err *err) {
    memset(ty, 0, sizeof *ty);
    clear_seqs(g);
    int rc = DC_OK;
    for (int round = 0; !rc && g->ns < g->o.P * g->o.G && round < g->o.max_rounds; round++) {
        int need = g->o.P - g->ns / g->o.G;
        /* nothing kept after every round: train on the last round's groups (A = 0) */
        rc = sample_round(g, t, need, round, round == g->o.max_rounds - 1 && g->ns == 0, ty, err);
    }
    return rc;
}

/* ---------------------------------------------------------------- training */

/* ref_logprobs: log pi_ref of each completion token, by the frozen model */
static int ref_logprobs(grpo *g, gseq *s, dc_err *err) {
    const int V = dc_model_config(g->ref)->vocab_size, n = s->len - s->np;
    if (!(s->ref = malloc(sizeof(float) * (n ? n : 1)))) return err_set(err, DC_ENOMEM, "grpo: out of memory");
    dc_session_reset(g->ref_s);
    int rc = dc_forward(g->ref_s, s->ids, s->len - 1, g->logits, 0, err);
    for (int i = 0; !rc && i < n; i++) {
        const float *z = g->logits + (size_t)(s->np - 1 + i) * V;
        double mx = z[0], sum = 0;
        for (int v = 1; v < V; v++) mx = z[v] > mx ? z[v] : mx;
        for (int v = 0; v < V; v++) sum += exp(z[v] - mx);
        s->ref[i] = (float)(z[s->ids[s->np + i]] - mx - log(sum));
    }
    return rc;
}

/* fill: sequences [from, from+n) as a micro-batch; returns T' */
static int fill(grpo *g, int from, int n, double total_tokens) {
    int TT = 1;
    for (int b = 0; b < n; b++) TT = g->s[from + b].len - 1 > TT ? g->s[from + b].len - 1 : TT;
    const int pad = dc_tokenizer_eos(g->tk) >= 0 ? dc_tokenizer_eos(g->tk) : 0;
    for (int b = 0; b < n; b++) {
        const gseq *s = &g->s[from + b];
        int ng = s->len - s->np;
        double w = g->o.seq_mean ? 1.0 / ((double)g->ns * (ng ? ng : 1)) : 1.0 / total_tokens;
        for (int i = 0; i <= TT; i++) g->tok[b * (TT + 1) + i] = i < s->len ? s->ids[i] : pad;
        for (int i = 0; i < TT; i++) {
            int k = i - (s->np - 1), on = k >= 0 && k < ng, n_ = b * TT + i; /* position i predicts token i+1 */
            g->w[n_] = on ? (float)w : 0, g->adv[n_] = on ? s->adv : 0;
            g->old[n_] = on && s->old ? s->old[k] : 0, g->rlp[n_] = on && s->ref ? s->ref[k] : 0;
        }
    }
    return TT;
}

/* pass: one forward (with grad: and backward) over every micro-batch; with
 * keep, the completions' log-probabilities become pi_old; stats sums the
 * last pass's per-token figures */
static int pass(grpo *g, trainer *t, int grad, int keep, double *stats, dc_err *err) {
    double total = 0;
    for (int i = 0; i < g->ns; i++) total += g->s[i].len - g->s[i].np;
    /* pi_old exists for the updates after the keeping pass (mu > 1); pi_ref
     * for every sequence this replica trains on (step) */
    int have_old = grad && g->o.mu > 1;
    loss_spec ls = {.kind = LOSS_GRPO, .adv = g->adv, .old_lp = have_old ? g->old : NULL,
                    .ref_lp = g->rlp, .eps_low = g->o.eps_low, .eps_high = g->o.eps_high,
                    .beta = g->o.beta, .logp = g->logp, .entropy = g->ent, .kl = g->kl,
                    .clipped = g->clipped};
    /* with grad, micro-batch a is computed by replica a % dp (trainer_backward);
     * the figures of each micro-batch are added in order, on any rank count */
    const int A = (g->ns + g->B - 1) / g->B;
    double *mb = calloc((size_t)A * 4 + 1, sizeof *mb);
    if (!mb) return err_set(err, DC_ENOMEM, "grpo: out of memory");
    int rc = DC_OK;
    for (int from = 0, a = 0; !rc && from < g->ns; from += g->B, a++) {
        if (!trainer_mb_mine(t, a)) { /* another replica's micro-batch */
            if (grad) rc = trainer_backward(t, NULL, a, A, err);
            continue;
        }
        int n = g->ns - from < g->B ? g->ns - from : g->B, TT = fill(g, from, n, total);
        tbatch b = {n, TT, g->tok, g->w, &ls};
        rc = grad ? trainer_backward(t, &b, a, A, err) : trainer_forward(t, &b, 0, err);
        double *st = mb + (size_t)a * 4;
        for (int r = 0; !rc && r < n; r++) {
            gseq *s = &g->s[from + r];
            int ng = s->len - s->np;
            if (keep && !(s->old = malloc(sizeof(float) * (ng ? ng : 1)))) {
                rc = err_set(err, DC_ENOMEM, "grpo: out of memory");
                break;
            }
            for (int k = 0; k < ng; k++) {
                int n_ = r * TT + s->np - 1 + k;
                if (keep) s->old[k] = g->logp[n_];
                st[0] += g->ent[n_], st[1] += g->clipped[n_], st[2] += g->kl[n_], st[3] += 1;
            }
        }
    }
    if (!rc && grad && t->dist.dp_size > 1) rc = dist_sum_f64(&t->dist, DIST_DP, mb, (size_t)A * 4, err);
    for (int a = 0; !rc && a < A; a++)
        for (int k = 0; k < 4; k++) stats[k] += mb[a * 4 + k];
    free(mb);
    return rc;
}

static int step(void *ctx, trainer *t, int64_t *tokens, dc_err *err) {
    grpo *g = ctx;
    tally ty;
    int rc = collect(g, t, &ty, err);
    if (rc) return rc;
    double t0 = progress_now(), st[4] = {0};
    /* log pi_ref: for the KL term, and for the logged KL when beta is 0 */
    for (int i = 0; !rc && i < g->ns; i++) /* the sequences of this replica's micro-batches */
        if (trainer_mb_mine(t, i / g->B)) rc = ref_logprobs(g, &g->s[i], err);
    if (!rc && g->o.mu > 1) rc = pass(g, t, 0, 1, st, err);
    *tokens = 0;
    for (int u = 0; !rc && u < g->o.mu; u++) {
        memset(st, 0, sizeof st);
        trainer_zero_grad(t);
        rc = pass(g, t, 1, 0, st, err);
        if (!rc && trainer_update(t)) *err = t->derr, rc = err->code;
        for (int i = 0; i < g->ns; i++) *tokens += g->s[i].len;
    }
    double train_s = progress_now() - t0, c = (double)(ty.completions ? ty.completions : 1);
    g->reward = ty.reward / c, g->accuracy = ty.accuracy / c, g->format = ty.format / c, g->length = ty.length / c;
    g->dropped = ty.groups ? (double)ty.dropped / ty.groups : 0, g->groups = g->ns / g->o.G;
    g->entropy = st[3] ? st[0] / st[3] : NAN, g->clip_frac = st[3] ? st[1] / st[3] : NAN;
    g->kl_mean = st[3] ? st[2] / st[3] : NAN;
    g->rollout_tps = ty.seconds > 0 ? ty.tokens / ty.seconds : 0, g->train_tps = train_s > 0 ? *tokens / train_s : 0;
    return rc;
}

/* ---------------------------------------------------------------- hooks */

static void metrics(void *ctx, trainer *t, sbuf *json, sbuf *line) {
    grpo *g = ctx;
    (void)t;
    sbuf_num(json, "reward", g->reward), sbuf_num(json, "accuracy", g->accuracy), sbuf_num(json, "format", g->format);
    sbuf_num(json, "kl", g->kl_mean), sbuf_num(json, "clip_frac", g->clip_frac), sbuf_num(json, "entropy", g->entropy);
    sbuf_num(json, "response_len", g->length), sbuf_num(json, "dropped", g->dropped);
    sbuf_num(json, "groups", g->groups), sbuf_num(json, "rollout_tokens_per_s", g->rollout_tps);
    sbuf_num(json, "train_tokens_per_s", g->train_tps);
    sbuf_add(line, " R %.3f acc %.3f len %.0f kl %.4f drop %.2f", g->reward, g->accuracy, g->length, g->kl_mean,
             g->dropped);
}

static int eval(void *ctx, trainer *t, sbuf *json, sbuf *line, dc_err *err) {
    grpo *g = ctx;
    (void)t;
    eval_opts eo;
    eval_defaults(&eo);
    eo.n = g->o.eval_n, eo.split = SPLIT_EVAL, eo.max_new = g->o.eval_max_new, eo.style = g->o.style;
    eo.seed = g->o.seed;
    eval_result r;
    int rc = eval_run(g->e, g->tk, g->tk_task, &eo, &r, err);
    if (rc) return rc;
    sbuf_num(json, "eval_accuracy", r.pass1), sbuf_num(json, "eval_format", r.format);
    sbuf_add(line, " eval %.3f", r.pass1);
    return DC_OK;
}

static int save(void *ctx, cJSON *state) {
    grpo *g = ctx;
    char h[65];
    rng_to_hex(&g->r, h);
    cJSON *o = cJSON_AddObjectToObject(state, "grpo");
    if (!o) return -1;
    cJSON_AddNumberToObject(o, "cursor", (double)g->cursor);
    cJSON_AddStringToObject(o, "rng", h);
    return 0;
}

static int load(void *ctx, const cJSON *state, const char *path, dc_err *err) {
    grpo *g = ctx;
    const cJSON *o = cJSON_GetObjectItem(state, "grpo"), *c = cJSON_GetObjectItem(o, "cursor");
    const cJSON *h = cJSON_GetObjectItem(o, "rng");
    int ok = cJSON_IsNumber(c) && c->valuedouble >= 0 && cJSON_IsString(h) && rng_from_hex(&g->r, h->valuestring) == 0;
    if (!ok) return err_set(err, DC_EFORMAT, "%s: \"grpo\" must hold the task cursor and the reward rng", path);
    g->cursor = (int64_t)c->valuedouble;
    return DC_OK;
}

void grpo_hooks(grpo *g, run_hooks *h) {
    *h = (run_hooks){.ctx = g, .step = step, .metrics = metrics, .eval = g->o.eval_n > 0 ? eval : NULL, .save = save,
                     .load = load};
}
