/*
 * cmd_train.c — `deepc train`: pretrain a DeepSeek-architecture model on a
 * prepared data directory, logging to RUN/metrics.jsonl and checkpointing
 * into RUN/ (see src/train/checkpoint.h); `--resume` continues bit-exactly.
 */
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "base/err.h"
#include "base/file.h"
#include "base/progress.h"
#include "cli/cli.h"
#include "train/checkpoint.h"
#include "train/data.h"
#include "train/trainer.h"

static const char *HELP =
    "usage: deepc train (--preset NAME | --config FILE | --init DIR) --data DIR --out RUN [options]\n"
    "\n"
    "Trains a DeepSeek-architecture model (MLA + DeepSeekMoE + MTP) on data made by\n"
    "`deepc prepare`. A preset's vocabulary is resized to the data's tokenizer.\n"
    "\n"
    "  --steps N             optimiser steps (default 200)\n"
    "  --batch B --seq T     sequences per micro-batch and their length (default 8 x 256)\n"
    "  --accum N             micro-batches per step (gradient accumulation, default 1)\n"
    "  --lr LR --min-lr LR   peak and final learning rate (default 3e-3, 3e-4)\n"
    "  --warmup N            linear warm-up steps (default 20)\n"
    "  --sched S             cosine (default), wsd (warmup-stable-decay) or const\n"
    "  --wd W --clip C       AdamW weight decay (0.1), global gradient-norm clip (1.0)\n"
    "  --mtp-lambda L        MTP loss weight (0.3)\n"
    "  --seq-aux-alpha A     sequence-wise balance loss weight (0.0001)\n"
    "  --bias-update-speed G aux-loss-free bias update speed (0.001)\n"
    "  --seed N              initialisation and data order (default 1)\n"
    "  --log-every N         print and log every N steps (10)\n"
    "  --eval-every N        validation loss every N steps, if the data has a val split (100)\n"
    "  --save-every N        checkpoint every N steps and at the end (100); --keep K newest (3)\n"
    "  --sample-every N      print a greedy sample every N steps (0: never); --sample-len N (48)\n"
    "  --resume              continue RUN from its latest checkpoint\n"
    "  --stop-after N        stop this invocation after N steps (checkpointed; continue with --resume)\n"
    "  -t, --threads N       threads (default: all cores)\n";

static volatile sig_atomic_t g_stop;
static void on_signal(int sig) {
    (void)sig;
    g_stop = 1;
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

/* jnum: a JSON number, or null when it is not finite */
static void jnum(char out[40], double v) {
    if (isfinite(v)) snprintf(out, 40, "%.8g", v);
    else snprintf(out, 40, "null");
}

static double val_loss(trainer *t, const data_split *val, int batches, int *tok) {
    double sum = 0;
    int64_t count = (int64_t)batches * t->B;
    for (int b = 0; b < batches; b++) {
        for (int i = 0; i < t->B; i++) data_window(val, t->T, (int64_t)b * t->B + i, count, tok + (size_t)i * (t->T + 1));
        trainer_forward(t, tok, 0);
        sum += t->loss;
    }
    return sum / batches;
}

static void print_sample(trainer *t, dc_tokenizer *tk, const data_split *d, int len) {
    int prompt[8], out[512], np = d->n > 8 ? 8 : (int)d->n;
    if (len > 512) len = 512;
    if (np < 1) return;
    for (int i = 0; i < np; i++) prompt[i] = (int)d->ids[i];
    dc_err err = {0};
    if (trainer_sample(t, prompt, np, len, out, &err)) {
        fprintf(stderr, "sample: %s\n", err.msg);
        return;
    }
    char *a = NULL, *b = NULL;
    size_t na, nb;
    if (tk && !dc_tokenizer_decode(tk, prompt, np, 0, &a, &na, &err) && !dc_tokenizer_decode(tk, out, len, 0, &b, &nb, &err))
        fprintf(stderr, "--- sample (greedy) ---\n\033[2m%s\033[0m%s\n-----------------------\n", a, b);
    free(a), free(b);
}

static const char *optname(const struct option *o, int val) {
    for (; o->name; o++)
        if (o->val == val) return o->name;
    return "?";
}

enum { O_PRESET = 1000, O_CONFIG, O_INIT, O_DATA, O_STEPS, O_BATCH, O_SEQ, O_ACCUM, O_LR, O_MINLR, O_WARMUP,
       O_SCHED, O_WD, O_CLIP, O_LAMBDA, O_ALPHA, O_GAMMA, O_SEED, O_LOG, O_EVAL, O_SAVE, O_KEEP, O_SAMPLE,
       O_SAMPLELEN, O_RESUME, O_STOPAFTER };

int cmd_train(int argc, char **argv) {
    static const struct option LONG[] = {
        {"preset", 1, 0, O_PRESET}, {"config", 1, 0, O_CONFIG}, {"init", 1, 0, O_INIT}, {"data", 1, 0, O_DATA},
        {"out", 1, 0, 'o'}, {"steps", 1, 0, O_STEPS}, {"batch", 1, 0, O_BATCH}, {"seq", 1, 0, O_SEQ},
        {"accum", 1, 0, O_ACCUM}, {"lr", 1, 0, O_LR}, {"min-lr", 1, 0, O_MINLR}, {"warmup", 1, 0, O_WARMUP},
        {"sched", 1, 0, O_SCHED}, {"wd", 1, 0, O_WD}, {"clip", 1, 0, O_CLIP}, {"mtp-lambda", 1, 0, O_LAMBDA},
        {"seq-aux-alpha", 1, 0, O_ALPHA}, {"bias-update-speed", 1, 0, O_GAMMA}, {"seed", 1, 0, O_SEED},
        {"log-every", 1, 0, O_LOG}, {"eval-every", 1, 0, O_EVAL}, {"save-every", 1, 0, O_SAVE},
        {"keep", 1, 0, O_KEEP}, {"sample-every", 1, 0, O_SAMPLE}, {"sample-len", 1, 0, O_SAMPLELEN},
        {"resume", 0, 0, O_RESUME}, {"stop-after", 1, 0, O_STOPAFTER}, {"threads", 1, 0, 't'}, {"help", 0, 0, 'h'}, {0, 0, 0, 0}};
    const char *preset = NULL, *config = NULL, *init = NULL, *data = NULL, *run = NULL;
    train_opts o;
    train_opts_default(&o);
    long seed = 1, log_every = 10, eval_every = 100, save_every = 100, keep = 3, sample_every = 0, sample_len = 48;
    long threads = 0, lv, stop_after = 0;
    int resume = 0, ch;
    optind = 0;
#define INT(lo, hi, dst)                                                                                  \
    do {                                                                                                  \
        if (cli_parse_int(optarg, lo, hi, &lv)) return cli_usage_error("train", "--%s: bad value '%s'", \
                                                                        optname(LONG, ch), optarg); \
        dst = lv;                                                                                         \
    } while (0)
#define FLT(dst)                                                                                           \
    do {                                                                                                   \
        char *e;                                                                                           \
        double v = strtod(optarg, &e);                                                                     \
        if (*e || e == optarg || !isfinite(v) || v < 0)                                                    \
            return cli_usage_error("train", "--%s: bad number '%s'", optname(LONG, ch), optarg);   \
        dst = (float)v;                                                                                    \
    } while (0)
    while ((ch = getopt_long(argc, argv, "o:t:h", LONG, NULL)) != -1) {
        switch (ch) {
        case O_PRESET: preset = optarg; break;
        case O_CONFIG: config = optarg; break;
        case O_INIT: init = optarg; break;
        case O_DATA: data = optarg; break;
        case 'o': run = optarg; break;
        case O_STEPS: INT(1, 1L << 40, o.steps); break;
        case O_BATCH: INT(1, 1 << 16, o.B); break;
        case O_SEQ: INT(2, 1 << 20, o.T); break;
        case O_ACCUM: INT(1, 1 << 16, o.accum); break;
        case O_LR: FLT(o.lr); break;
        case O_MINLR: FLT(o.min_lr); break;
        case O_WARMUP: INT(0, 1L << 40, o.warmup); break;
        case O_SCHED:
            if (!strcmp(optarg, "cosine")) o.sched = SCHED_COSINE;
            else if (!strcmp(optarg, "wsd")) o.sched = SCHED_WSD;
            else if (!strcmp(optarg, "const")) o.sched = SCHED_CONST;
            else return cli_usage_error("train", "--sched must be cosine, wsd or const, not '%s'", optarg);
            break;
        case O_WD: FLT(o.wd); break;
        case O_CLIP: FLT(o.clip); break;
        case O_LAMBDA: FLT(o.mtp_lambda); break;
        case O_ALPHA: FLT(o.aux_alpha); break;
        case O_GAMMA: FLT(o.bias_gamma); break;
        case O_SEED: INT(0, 0x7fffffffffffffffL, seed); break;
        case O_LOG: INT(1, 1L << 40, log_every); break;
        case O_EVAL: INT(0, 1L << 40, eval_every); break;
        case O_SAVE: INT(0, 1L << 40, save_every); break;
        case O_KEEP: INT(1, 1 << 20, keep); break;
        case O_SAMPLE: INT(0, 1L << 40, sample_every); break;
        case O_SAMPLELEN: INT(1, 512, sample_len); break;
        case O_RESUME: resume = 1; break;
        case O_STOPAFTER: INT(1, 1L << 40, stop_after); break;
        case 't':
            if (cli_parse_int(optarg, 0, 4096, &threads)) return cli_usage_error("train", "-t: bad thread count '%s'", optarg);
            break;
        case 'h': fputs(HELP, stdout); return 0;
        default: return cli_usage_error("train", "bad option");
        }
    }
#undef INT
#undef FLT
    if (optind < argc) return cli_usage_error("train", "unexpected argument '%s'", argv[optind]);
    if (!data || !run) return cli_usage_error("train", "--data DIR and --out RUN are required");
    if (!resume && (!!preset + !!config + !!init) != 1)
        return cli_usage_error("train", "give exactly one of --preset, --config or --init");
    cli_threads(threads);

    dc_err err = {0};
    int rc = 0;
    data_split tr = {0}, val = {0};
    dc_tokenizer *tk = NULL;
    trainer t = {0};
    int *tok = NULL, have_val = 0;
    char tokpath[4096], ckdir[4096], mpath[4096];
    double loss_avg = 0;
    FILE *mf = NULL;
    int lockfd = -1;
    if ((rc = data_load(&tr, data, "train", &err))) goto fail;
    rc = data_load(&val, data, "val", &err);
    have_val = rc == DC_OK && val.n > (size_t)o.T + 1;
    if (rc && rc != DC_ENOTFOUND) goto fail; /* a corrupt validation split is an error, a missing one is not */
    if (!rc && !have_val) fprintf(stderr, "deepc train: the val split is shorter than one window: no validation\n");
    rc = 0;
    snprintf(tokpath, sizeof tokpath, "%s/tokenizer.json", data);
    if (file_exists(tokpath) && (rc = dc_tokenizer_load(tokpath, &tk, &err))) goto fail;
    if (tr.n < (size_t)o.T + 2) {
        rc = err_set(&err, DC_EARG, "%s: %zu training tokens, fewer than one window of %d", data, tr.n, o.T + 1);
        goto fail;
    }
    /* the config: from the checkpoint when resuming, else preset / file / init */
    dc_config cfg;
    if (resume) {
        if ((rc = ckpt_latest(run, ckdir, sizeof ckdir, &err))) goto fail;
        rc = dc_config_load(ckdir, &cfg, &err);
    } else if (preset) {
        if (!(rc = dc_config_preset(preset, &cfg, &err))) {
            cfg.vocab_size = tr.vocab;
            int bos = tk ? dc_tokenizer_bos(tk) : -1, eos = tk ? dc_tokenizer_eos(tk) : -1;
            cfg.bos_token_id = bos >= 0 && bos < cfg.vocab_size ? bos : 0;
            cfg.eos_token_id = eos >= 0 && eos < cfg.vocab_size ? eos : cfg.vocab_size > 1;
        }
    } else {
        rc = dc_config_load(config ? config : init, &cfg, &err);
    }
    if (rc) goto fail;
    if (cfg.vocab_size < tr.vocab) {
        rc = err_set(&err, DC_ECONFIG, "vocab_size %d of the model is smaller than the data's tokenizer (%d)", cfg.vocab_size,
                     tr.vocab);
        goto fail;
    }
    if (!resume && dir_exists(run) && ckpt_latest(run, ckdir, sizeof ckdir, NULL) == DC_OK) {
        rc = err_set(&err, DC_EARG, "%s already holds checkpoints: use --resume, or another --out", run);
        goto fail;
    }
    if ((rc = dir_make(run, &err))) goto fail;
    if ((rc = dir_lock(run, "deepc train", &lockfd, &err))) goto fail; /* one writer per run (issue 14) */
    if ((rc = trainer_init(&t, &cfg, &o, resume ? NULL : init, (uint64_t)seed, &err))) goto fail;
    data_loader dl = {&tr, o.B, o.T, {{0}}};
    rng_seed(&dl.r, (uint64_t)seed * 0x9e3779b97f4a7c15ull + 17);
    snprintf(mpath, sizeof mpath, "%s/metrics.jsonl", run);
    if (resume) {
        if ((rc = ckpt_load(&t, &dl.r, &loss_avg, ckdir, &err))) goto fail;
        trim_metrics(mpath, (long long)t.step);
        fprintf(stderr, "resumed %s at step %lld\n", ckdir, (long long)t.step);
    } else {
        dc_err ignore;
        file_write_atomic(mpath, "", 0, &ignore);
    }
    mf = fopen(mpath, "a");
    if (!mf) {
        rc = err_set(&err, DC_EIO, "%s: cannot open for appending", mpath);
        goto fail;
    }
    tok = malloc(sizeof(int) * (size_t)o.B * (o.T + 1));
    if (!tok) {
        rc = err_set(&err, DC_ENOMEM, "out of memory");
        goto fail;
    }
    dc_counts k;
    dc_config_counts(&cfg, &k);
    fprintf(stderr, "model %.2fM parameters (%.2fM active, %.2fM MTP), %d layers, vocab %d; batch %d x %d x %d, %d threads\n",
            k.params_total / 1e6, k.params_active / 1e6, k.params_mtp / 1e6, cfg.num_hidden_layers, cfg.vocab_size, o.B,
            o.T, o.accum, cli_get_threads());
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    progress pb;
    progress_start(&pb, "train", o.steps);
    int skips = 0;
    double t_last = progress_now();
    int64_t tok_since = 0;
    const int64_t stop_at = stop_after > 0 ? t.step + stop_after : INT64_MAX;
    while (t.step < o.steps && t.step < stop_at && !g_stop) {
        if (loss_avg > 0 && t.step >= 20) t.explode_above = 4 * loss_avg;
        trainer_step(&t, data_next, &dl);
        tok_since += (int64_t)o.B * o.T * o.accum;
        if (t.skipped) {
            fprintf(stderr, "\nstep %lld skipped: %s loss %g (grad norm %g)\n", (long long)t.step,
                    t.skipped == 1 ? "non-finite" : "exploding", t.loss, t.grad_norm);
            fprintf(mf, "{\"step\": %lld, \"skipped\": true, \"reason\": \"%s\"}\n", (long long)t.step,
                    t.skipped == 1 ? "non-finite" : "exploding");
            fflush(mf);
            if (++skips >= 5) {
                rc = err_set(&err, DC_EARG, "stopping: %d steps in a row had a non-finite or exploding loss; "
                                           "lower --lr or raise --warmup, then --resume", skips);
                goto fail;
            }
            continue;
        }
        skips = 0;
        loss_avg = loss_avg > 0 ? 0.95 * loss_avg + 0.05 * t.loss : t.loss;
        int do_log = t.step % log_every == 0 || t.step == o.steps || t.step == 1;
        int do_eval = have_val && eval_every > 0 && (t.step % eval_every == 0 || t.step == o.steps);
        if (do_log || do_eval) {
            double now = progress_now(), tps = tok_since / (now - t_last);
            t_last = now, tok_since = 0;
            /* the step's figures first: validation reruns the forward and overwrites them */
            double loss = t.loss, mtp = t.mtp_loss, imb = 0;
            char num[6][40], imbs[600] = "";
            jnum(num[0], t.loss), jnum(num[1], t.mtp_loss), jnum(num[2], t.aux_loss);
            jnum(num[3], t.lr_now), jnum(num[4], t.grad_norm), jnum(num[5], tps);
            for (int l = 0; l < t.L + t.D; l++) {
                if (!t.P.layers[l].is_moe) continue;
                double v = trainer_imbalance(&t, l);
                imb = fmax(imb, v);
                snprintf(imbs + strlen(imbs), sizeof imbs - strlen(imbs), "%s%.3f", imbs[0] ? ", " : "", v);
            }
            double vl = do_eval ? val_loss(&t, &val, 4, tok) : NAN;
            fprintf(mf, "{\"step\": %lld, \"loss\": %s, \"mtp_loss\": %s, \"aux_loss\": %s, \"lr\": %s, "
                        "\"grad_norm\": %s, \"tokens_per_s\": %s",
                    (long long)t.step, num[0], num[1], num[2], num[3], num[4], num[5]);
            if (do_eval) {
                char v[40];
                jnum(v, vl);
                fprintf(mf, ", \"val_loss\": %s", v);
            }
            fprintf(mf, ", \"imbalance\": [%s]}\n", imbs);
            fflush(mf);
            char extra[200], vs[32] = "";
            if (do_eval) snprintf(vs, sizeof vs, " val %.4f", vl);
            snprintf(extra, sizeof extra, "loss %.4f mtp %.4f%s lr %.2e |g| %.2f imb %.2f %.0f tok/s", loss, mtp, vs,
                     t.lr_now, t.grad_norm, imb, tps); /* imb: the worst MoE layer's max / mean load */
            progress_update(&pb, t.step, "step", extra);
        }
        if (sample_every > 0 && t.step % sample_every == 0) print_sample(&t, tk, have_val ? &val : &tr, (int)sample_len);
        if (save_every > 0 && t.step % save_every == 0 && t.step < o.steps &&
            (rc = ckpt_save(&t, &dl.r, loss_avg, run, file_exists(tokpath) ? tokpath : NULL, (int)keep, &err)))
            goto fail;
    }
    progress_end(&pb);
    if ((rc = ckpt_save(&t, &dl.r, loss_avg, run, file_exists(tokpath) ? tokpath : NULL, (int)keep, &err))) goto fail;
    if (ckpt_latest(run, ckdir, sizeof ckdir, NULL) == DC_OK)
        fprintf(stderr, "%s at step %lld: %s (metrics in %s)\n", t.step < o.steps ? "stopped" : "done", (long long)t.step, ckdir,
                mpath);
    if (sample_every > 0 || sample_len != 48) print_sample(&t, tk, have_val ? &val : &tr, (int)sample_len);
fail:
    if (rc) cli_error("train", &err);
    if (mf) fclose(mf);
    free(tok);
    trainer_free(&t);
    dc_tokenizer_free(tk);
    data_free(&tr);
    data_free(&val);
    dir_unlock(lockfd);
    return rc ? 1 : 0;
}
