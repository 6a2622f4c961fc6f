/* run.c — see run.h. */
#include "train/run.h"
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "base/err.h"
#include "base/file.h"
#include "base/progress.h"
#include "train/checkpoint.h"
#include "train/trainer_ep.h"
#include "train/trainer_dp.h"

/* a layer routing this way for so many steps in a row is reported */
#define COLLAPSE_STEPS 100

void sbuf_add(sbuf *b, const char *fmt, ...) {
    if (b->n + 1 >= b->cap) return;
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(b->s + b->n, b->cap - b->n, fmt, ap);
    va_end(ap);
    if (k > 0) b->n = b->n + (size_t)k < b->cap ? b->n + (size_t)k : b->cap - 1;
}

void sbuf_num(sbuf *b, const char *key, double v) {
    if (isfinite(v)) sbuf_add(b, ", \"%s\": %.8g", key, v);
    else sbuf_add(b, ", \"%s\": null", key);
}

int run_collapsed(const trainer *t, int l) {
    const dc_config *c = &t->cfg;
    if (!t->P.layers[l].is_moe || c->num_experts_per_tok < 1) return 0;
    double most = (double)c->n_routed_experts / c->num_experts_per_tok;
    return trainer_imbalance(t, l) >= 0.5 * most;
}

/* keep only the metrics lines of steps <= step (a resumed run rewrites the rest) */
static void trim_metrics(const char *path, long long step) {
    char *txt;
    size_t n;
    if (file_read_all(path, &txt, &n, NULL)) return;
    size_t keep = 0;
    for (char *line = txt; line < txt + n;) {
        char *e = memchr(line, '\n', txt + n - line);
        if (!e) break;
        const char *s = strstr(line, "\"step\":");
        if (!s || s > e || atoll(s + 7) > step) break;
        keep = (size_t)(e + 1 - txt);
        line = e + 1;
    }
    dc_err ignore;
    file_write_atomic(path, txt, keep, &ignore);
    free(txt);
}

int run_resume_state(const char *run, char *ckdir, size_t cap, cJSON **state, const cJSON **settings, dc_err *err) {
    *state = NULL;
    *settings = NULL;
    int rc = ckpt_latest(run, ckdir, cap, err);
    if (!rc) rc = ckpt_state(ckdir, state, err);
    if (rc) return rc;
    const cJSON *s = cJSON_GetObjectItem(*state, "settings");
    *settings = cJSON_IsObject(s) ? s : NULL;
    return DC_OK;
}

/* lead: rank 0 of the job prints, logs and writes checkpoints (dist.h) */
static int lead(const trainer *t) { return t->dist.rank == 0; }
static int save_files(trainer *t, const run_opts *o, const run_hooks *h, double loss_avg, const float *m,
                      const float *v, dc_err *err);

/* the checkpoint's trainer.json: the settings, the loss average, the hook's
 * state; written by rank 0 (a ZeRO-1 run's moments gathered first), whose
 * result every rank gets */
static int save(trainer *t, const run_opts *o, const run_hooks *h, double loss_avg, dc_err *err) {
    float *m = t->mv.m, *v = t->mv.v;
    const int gather = !t->ep && (t->zero || t->mv.bf16); /* whole float32 copies of the moments */
    int rc = gather ? trainer_dp_gather_optim(t, &m, &v, err) : DC_OK;
    trainer full, *w = t;
    if (!rc && t->ep && !(rc = trainer_ep_full(t, &full, err))) /* the other ranks' experts (trainer_ep.c) */
        w = &full, m = full.mv.m, v = full.mv.v;
    if (!rc && lead(t)) rc = save_files(w, o, h, loss_avg, m, v, err);
    if (w == &full) trainer_ep_full_free(&full);
    if (gather) free(m), free(v);
    if (t->dist.size > 1) {
        int r = rc;
        dc_err e2;
        if (dist_bcast(&t->dist, DIST_WORLD, &r, sizeof r, 0, &e2)) return *err = e2, e2.code;
        if (r && !rc) rc = err_set(err, r, "rank 0 could not write the checkpoint");
    }
    return rc;
}

static int save_files(trainer *t, const run_opts *o, const run_hooks *h, double loss_avg, const float *m,
                      const float *v, dc_err *err) {
    cJSON *st = cJSON_CreateObject();
    char la[40];
    snprintf(la, sizeof la, "%a", loss_avg); /* exact, for a bit-exact resume */
    int ok = st && cJSON_AddStringToObject(st, "command", o->name) && cJSON_AddStringToObject(st, "loss_avg", la);
    if (ok && o->settings) ok = cJSON_AddItemToObject(st, "settings", cJSON_Duplicate(o->settings, 1));
    if (ok && h->save) ok = h->save(h->ctx, st) == 0;
    int rc = ok ? ckpt_save_mv(t, m, v, st, o->dir, o->tokenizer, o->keep, err)
                : err_set(err, DC_ENOMEM, "%s: out of memory writing a checkpoint", o->name);
    cJSON_Delete(st);
    return rc;
}

static int resume(trainer *t, const run_opts *o, const run_hooks *h, double *loss_avg, dc_err *err) {
    cJSON *st = NULL;
    char p[4200];
    snprintf(p, sizeof p, "%s/trainer.json", o->resume_dir);
    int rc = ckpt_load(t, o->resume_dir, &st, err);
    if (rc) return rc;
    const cJSON *la = cJSON_GetObjectItem(st, "loss_avg");
    char *end = NULL;
    *loss_avg = cJSON_IsString(la) ? strtod(la->valuestring, &end) : NAN;
    if (!end || *end || !isfinite(*loss_avg))
        rc = err_set(err, DC_EFORMAT, "%s: \"loss_avg\" must be a finite number written as a string", p);
    if (!rc && h->load) rc = h->load(h->ctx, st, p, err);
    cJSON_Delete(st);
    return rc;
}

/* open RUN/metrics.jsonl for appending: trimmed after a resume, emptied for a new run */
static FILE *open_metrics(const run_opts *o, const trainer *t, char *mpath, size_t cap, dc_err *err) {
    snprintf(mpath, cap, "%s/metrics.jsonl", o->dir);
    if (o->resume_dir) trim_metrics(mpath, (long long)t->step);
    else file_write_atomic(mpath, "", 0, err);
    FILE *f = fopen(mpath, "a");
    if (!f) err_set(err, DC_EIO, "%s: cannot open for appending", mpath);
    return f;
}

typedef struct loop {
    double loss_avg, t_last;
    int have_avg;                /* loss_avg holds a step (GRPO's objective may be <= 0) */
    int64_t tok_since;
    int skips;
    int *collapsed;              /* (L + D) steps in a row each layer has been collapsed */
    progress pb;
} loop;

static void watch_routing(trainer *t, const run_opts *o, loop *lp) {
    const dc_config *c = &t->cfg;
    for (int l = 0; l < t->L + t->D; l++) {
        lp->collapsed[l] = run_collapsed(t, l) ? lp->collapsed[l] + 1 : 0;
        if (lp->collapsed[l] != COLLAPSE_STEPS || !lead(t)) continue;
        fprintf(stderr, "\n%s: warning: MoE layer %d has routed most tokens to the same few of its %d experts for %d "
                        "steps (max/mean load %.2f, at most %.2f): the model trains as a degenerate MoE; raise "
                        "--bias-update-speed or --seq-aux-alpha, or lower --lr\n",
                o->name, l, c->n_routed_experts, COLLAPSE_STEPS, trainer_imbalance(t, l),
                (double)c->n_routed_experts / c->num_experts_per_tok);
    }
}

/* log: the metrics line and the progress line of this step */
static int log_step(trainer *t, const run_hooks *h, loop *lp, FILE *mf, int do_eval, dc_err *err) {
    double now = progress_now(), tps = lp->tok_since / (now - lp->t_last);
    lp->t_last = now, lp->tok_since = 0;
    char js[4096], ln[600], imbs[800];
    sbuf J = {js, sizeof js, 0}, Lb = {ln, sizeof ln, 0}, I = {imbs, sizeof imbs, 0};
    imbs[0] = 0;
    /* the step's figures first: evaluation may rerun the forward and overwrite them */
    double loss = t->loss, imb = 0;
    sbuf_add(&J, "{\"step\": %lld", (long long)t->step);
    sbuf_num(&J, "loss", t->loss), sbuf_num(&J, "mtp_loss", t->mtp_loss), sbuf_num(&J, "aux_loss", t->aux_loss);
    sbuf_num(&J, "lr", t->lr_now), sbuf_num(&J, "grad_norm", t->grad_norm), sbuf_num(&J, "tokens_per_s", tps);
    sbuf_add(&J, ", \"precision\": \"%s\"", prec_name(t->o.precision));
    if (t->o.bf16_moments) sbuf_add(&J, ", \"bf16_moments\": true");
    for (int l = 0; l < t->L + t->D; l++) {
        if (!t->P.layers[l].is_moe) continue;
        double v = trainer_imbalance(t, l);
        imb = fmax(imb, v);
        sbuf_add(&I, "%s%.3f", I.n ? ", " : "", v);
    }
    sbuf_add(&Lb, "loss %.4f", loss);
    if (t->D && t->o.mtp_lambda > 0) sbuf_add(&Lb, " mtp %.4f", t->mtp_loss);
    if (h->metrics) h->metrics(h->ctx, t, &J, &Lb);
    if (do_eval) {
        int rc = h->eval(h->ctx, t, &J, &Lb, err);
        if (rc) return rc;
    }
    if (t->dist.size > 1) sbuf_num(&J, "comm_s", t->comm_s), sbuf_num(&J, "ranks", t->dist.size);
    sbuf_add(&J, ", \"imbalance\": [%s]}\n", imbs);
    if (!lead(t)) return DC_OK; /* rank 0 logs; the others ran the evaluation with it */
    fputs(js, mf);
    fflush(mf);
    /* imb: the worst MoE layer's max / mean load */
    sbuf_add(&Lb, " lr %.2e |g| %.2f imb %.2f %.0f tok/s %s", t->lr_now, t->grad_norm, imb, tps,
             prec_name(t->o.precision));
    progress_update(&lp->pb, t->step, "step", ln);
    return DC_OK;
}

/* skipped: report a skipped step; an error after five in a row */
static int skipped(trainer *t, loop *lp, FILE *mf, dc_err *err) {
    const char *why = t->skipped == 1 ? "non-finite" : "exploding";
    if (lead(t)) fprintf(stderr, "\nstep %lld skipped: %s loss %g (grad norm %g)\n", (long long)t->step, why, t->loss, t->grad_norm);
    if (lead(t)) fprintf(mf, "{\"step\": %lld, \"skipped\": true, \"reason\": \"%s\"}\n", (long long)t->step, why);
    if (lead(t)) fflush(mf);
    if (++lp->skips < 5) return DC_OK;
    return err_set(err, DC_EARG, "stopping: %d steps in a row had a non-finite or exploding loss; "
                                "lower --lr or raise --warmup, then --resume", lp->skips);
}

/* stop_now: a signal asked this run to stop; with several ranks, any rank's
 * signal stops them all at the same step (a sum over the job) */
static int stop_now(trainer *t, const run_opts *o, int *rc, dc_err *err) {
    double s = o->stop && *o->stop;
    if (t->dist.size > 1) *rc = dist_sum_f64(&t->dist, DIST_WORLD, &s, 1, err);
    return *rc || s > 0;
}

static int steps(trainer *t, const run_opts *o, const run_hooks *h, loop *lp, FILE *mf, dc_err *err) {
    const int64_t stop_at = o->stop_after > 0 ? t->step + o->stop_after : INT64_MAX;
    int rc = DC_OK;
    while (!rc && t->step < o->steps && t->step < stop_at && !stop_now(t, o, &rc, err)) {
        t->explode_above = o->explode && lp->have_avg && lp->loss_avg > 0 && t->step >= 20 ? 4 * lp->loss_avg : 0;
        int64_t ntok = 0;
        if ((rc = h->step(h->ctx, t, &ntok, err))) break;
        lp->tok_since += ntok;
        if (t->skipped) {
            rc = skipped(t, lp, mf, err);
            continue;
        }
        lp->skips = 0;
        lp->loss_avg = lp->have_avg ? 0.95 * lp->loss_avg + 0.05 * t->loss : t->loss;
        lp->have_avg = 1;
        watch_routing(t, o, lp);
        int do_log = t->step % o->log_every == 0 || t->step == o->steps || t->step == 1;
        int do_eval = h->eval && o->eval_every > 0 && (t->step % o->eval_every == 0 || t->step == o->steps);
        if (do_log || do_eval) rc = log_step(t, h, lp, mf, do_eval, err);
        if (!rc && lead(t) && h->sample && o->sample_every > 0 && t->step % o->sample_every == 0) h->sample(h->ctx, t);
        if (!rc && o->save_every > 0 && t->step % o->save_every == 0 && t->step < o->steps)
            rc = save(t, o, h, lp->loss_avg, err);
    }
    return rc;
}

/* start: RUN locked for this process (one writer per run), then resumed
 * from its checkpoint or checked to hold none */
static int start(trainer *t, const run_opts *o, const run_hooks *h, loop *lp, int *lockfd, dc_err *err) {
    char who[64], ck[4200];
    snprintf(who, sizeof who, "deepc %s", o->name);
    int rc = lead(t) ? dir_make(o->dir, err) : DC_OK;
    if (!rc && lead(t)) rc = dir_lock(o->dir, who, lockfd, err);
    if (rc) return rc;
    if (o->resume_dir) {
        if ((rc = resume(t, o, h, &lp->loss_avg, err))) return rc;
        lp->have_avg = t->step > 0;
        if (lead(t)) fprintf(stderr, "resumed %s at step %lld\n", o->resume_dir, (long long)t->step);
    } else if (ckpt_latest(o->dir, ck, sizeof ck, NULL) == DC_OK) {
        return err_set(err, DC_EARG, "%s already holds checkpoints: use --resume, or another --out", o->dir);
    }
    return DC_OK;
}

int run_loop(trainer *t, const run_opts *o, const run_hooks *h, dc_err *err) {
    loop lp = {0};
    char mpath[4200], ck[4200];
    int lockfd = -1, rc = start(t, o, h, &lp, &lockfd, err);
    if (rc) {
        dir_unlock(lockfd);
        return rc;
    }
    FILE *mf = lead(t) ? open_metrics(o, t, mpath, sizeof mpath, err) : NULL; /* only rank 0 writes */
    lp.collapsed = calloc((size_t)(t->L + t->D) + 1, sizeof(int));
    if ((lead(t) && !mf) || !lp.collapsed) {
        if (mf) fclose(mf);
        free(lp.collapsed);
        dir_unlock(lockfd);
        return mf || !lead(t) ? err_set(err, DC_ENOMEM, "%s: out of memory", o->name) : err->code;
    }
    if (lead(t)) progress_start(&lp.pb, o->name, o->steps);
    lp.t_last = progress_now();
    rc = steps(t, o, h, &lp, mf, err);
    if (lead(t)) progress_end(&lp.pb);
    if (!rc) rc = save(t, o, h, lp.loss_avg, err);
    if (!rc && lead(t) && ckpt_latest(o->dir, ck, sizeof ck, NULL) == DC_OK)
        fprintf(stderr, "%s at step %lld: %s (metrics in %s)\n", t->step < o->steps ? "stopped" : "done",
                (long long)t->step, ck, mpath);
    if (mf) fclose(mf);
    free(lp.collapsed);
    dir_unlock(lockfd);
    return rc;
}
