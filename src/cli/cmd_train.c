/*
 * cmd_train.c — `deepc train`: pretrain a DeepSeek-architecture model on a
 * prepared data directory, logging to RUN/metrics.jsonl and checkpointing
 * into RUN/ (see src/train/checkpoint.h); `--resume` continues bit-exactly.
 */
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "base/err.h"
#include "cli/cli.h"
#include "cli/dist_cli.h"
#include "cli/opts.h"
#include "train/pretrain.h"
#include "train/run.h"

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
    "  --bias-update-speed G aux-loss-free bias update speed (0.01; V3 used 0.001 over 100k+\n"
    "                        steps, too slow for runs of hundreds: see src/train/optim.h)\n"
    "  --seed N              initialisation and data order (default 1)\n"
    "  --log-every N         print and log every N steps (10)\n"
    "  --eval-every N        validation loss every N steps, if the data has a val split (100)\n"
    "  --save-every N        checkpoint every N steps and at the end (100); --keep K newest (3)\n"
    "  --sample-every N      print a greedy sample every N steps (0: never); --sample-len N (48)\n"
    "  --resume              continue RUN from its latest checkpoint, with the run's settings\n"
    "                        (stored in each checkpoint; an option given with another value\n"
    "                        is refused, except --steps and --data)\n"
CLI_PREC_HELP
    "  --stop-after N        stop this invocation after N steps (checkpointed; continue with --resume)\n"
    "  -t, --threads N       threads (default: all cores; under mpirun, shared by a machine's ranks)\n"
    "\n"
    "Across processes (a deepc built with make MPI=1, under mpirun -np R): each data-parallel\n"
    "replica computes accum/R of each step's micro-batches (--accum must be a multiple of the\n"
    "replicas); the losses are those of one process with the same --batch and --accum, bit for bit.\n"
    DIST_HELP;

static volatile int g_stop;
static void on_signal(int sig) {
    (void)sig;
    g_stop = 1;
}

/* model_config: the config from the checkpoint when resuming, else preset /
 * file / init; a preset's vocabulary follows the data's tokenizer */
static int model_config(const char *preset, const char *config, const char *init, const char *ckdir,
                        const pretrain *p, dc_config *cfg, dc_err *err) {
    int rc;
    if (ckdir) {
        rc = dc_config_load(ckdir, cfg, err);
    } else if (preset) {
        if (!(rc = dc_config_preset(preset, cfg, err))) {
            cfg->vocab_size = p->tr.vocab;
            int bos = p->tk ? dc_tokenizer_bos(p->tk) : -1, eos = p->tk ? dc_tokenizer_eos(p->tk) : -1;
            cfg->bos_token_id = bos >= 0 && bos < cfg->vocab_size ? bos : 0;
            cfg->eos_token_id = eos >= 0 && eos < cfg->vocab_size ? eos : cfg->vocab_size > 1;
        }
    } else {
        rc = dc_config_load(config ? config : init, cfg, err);
    }
    if (!rc && cfg->vocab_size < p->tr.vocab)
        rc = err_set(err, DC_ECONFIG, "vocab_size %d of the model is smaller than the data's tokenizer (%d)",
                     cfg->vocab_size, p->tr.vocab);
    return rc;
}

int cmd_train(int argc, char **argv) {
    const char *preset = NULL, *config = NULL, *init = NULL, *data = NULL, *run = NULL, *sched = "cosine";
    train_opts o;
    train_opts_default(&o);
    const char *prec = "f32";
    long seed = 1, log_every = 10, eval_every = 100, save_every = 100, keep = 3, sample_every = 0, sample_len = 48;
    long threads = 0, stop_after = 0, ep = 1;
    int resume = 0, zero = 0;
    float rank_timeout = 600;
    const double BIG = 1e12, FMAX = 3.4e38;
    const cli_opt OPTS[] = {
        {"preset", 0, OPT_STR, &preset, 0, 0, SET_FIXED}, {"config", 0, OPT_STR, &config, 0, 0, SET_FIXED},
        {"init", 0, OPT_STR, &init, 0, 0, SET_FIXED}, {"data", 0, OPT_STR, &data, 0, 0, SET_MAY_CHANGE},
        {"out", 'o', OPT_STR, &run, 0, 0, SET_NO}, {"steps", 0, OPT_INT, &o.steps, 1, 0x7fffffff, SET_MAY_CHANGE},
        {"batch", 0, OPT_INT, &o.B, 1, 1 << 16, SET_FIXED}, {"seq", 0, OPT_INT, &o.T, 2, 1 << 20, SET_FIXED},
        {"accum", 0, OPT_INT, &o.accum, 1, 1 << 16, SET_FIXED}, {"lr", 0, OPT_FLOAT, &o.lr, 0, FMAX, SET_FIXED},
        {"min-lr", 0, OPT_FLOAT, &o.min_lr, 0, FMAX, SET_FIXED},
        {"warmup", 0, OPT_INT, &o.warmup, 0, 0x7fffffff, SET_FIXED}, {"sched", 0, OPT_STR, &sched, 0, 0, SET_FIXED},
        {"wd", 0, OPT_FLOAT, &o.wd, 0, FMAX, SET_FIXED}, {"clip", 0, OPT_FLOAT, &o.clip, 0, FMAX, SET_FIXED},
        {"mtp-lambda", 0, OPT_FLOAT, &o.mtp_lambda, 0, FMAX, SET_FIXED},
        {"seq-aux-alpha", 0, OPT_FLOAT, &o.aux_alpha, 0, FMAX, SET_FIXED},
        {"bias-update-speed", 0, OPT_FLOAT, &o.bias_gamma, 0, FMAX, SET_FIXED},
        {"seed", 0, OPT_LONG, &seed, 0, 9.2e18, SET_FIXED}, {"log-every", 0, OPT_LONG, &log_every, 1, BIG, SET_NO},
        {"eval-every", 0, OPT_LONG, &eval_every, 0, BIG, SET_NO}, {"save-every", 0, OPT_LONG, &save_every, 0, BIG, SET_NO},
        {"keep", 0, OPT_LONG, &keep, 1, 1 << 20, SET_NO}, {"sample-every", 0, OPT_LONG, &sample_every, 0, BIG, SET_NO},
        {"sample-len", 0, OPT_LONG, &sample_len, 1, 512, SET_NO}, {"resume", 0, OPT_FLAG, &resume, 0, 0, SET_NO},
        {"stop-after", 0, OPT_LONG, &stop_after, 1, BIG, SET_NO}, {"threads", 't', OPT_LONG, &threads, 0, 4096, SET_NO},
        DIST_OPTS(ep, zero, rank_timeout),
        CLI_PREC_OPTS(prec, o.bf16_moments)};
    const int NO = sizeof OPTS / sizeof *OPTS;
    unsigned char given[sizeof OPTS / sizeof *OPTS];
    int done, rc = cli_opts_parse("train", HELP, OPTS, NO, argc, argv, given, &done);
    if (rc || done) return rc;
    if (!data || !run) return cli_usage_error("train", "--data DIR and --out RUN are required");
    if (!resume && (!!preset + !!config + !!init) != 1)
        return cli_usage_error("train", "give exactly one of --preset, --config or --init");
    cli_threads(threads);

    dc_err err = {0};
    dist d;
    dist_single(&d);
    pretrain p = {0};
    trainer t = {0};
    cJSON *state = NULL, *settings = NULL;
    char ckdir[4096];
    dc_config cfg;
    if (resume) {
        const cJSON *stored;
        if ((rc = run_resume_state(run, ckdir, sizeof ckdir, &state, &stored, &err))) goto fail;
        if (stored && (rc = cli_opts_resume("train", OPTS, NO, given, stored, ckdir, &err))) goto fail;
    }
    if (!strcmp(sched, "cosine")) o.sched = SCHED_COSINE;
    else if (!strcmp(sched, "wsd")) o.sched = SCHED_WSD;
    else if (!strcmp(sched, "const")) o.sched = SCHED_CONST;
    else return cli_usage_error("train", "--sched must be cosine, wsd or const, not '%s'", sched);
    if (cli_precision("train", prec, &o)) {
        cJSON_Delete(state);
        return 2;
    }
    if ((rc = cli_dist("train", ep, threads, rank_timeout, &d, &err))) goto fail;
    if (o.accum % d.dp_size) {
        rc = err_set(&err, DC_EARG, "--accum %d is not a multiple of the %d data-parallel replicas", o.accum, d.dp_size);
        goto fail;
    }
    if ((rc = pretrain_open(&p, data, o.B, o.T, (uint64_t)seed, &err))) goto fail;
    p.sample_len = (int)sample_len;
    if ((rc = model_config(preset, config, init, resume ? ckdir : NULL, &p, &cfg, &err))) goto fail;
    if ((rc = trainer_init_dist(&t, &cfg, &o, resume ? NULL : init, (uint64_t)seed, &d, zero, &err))) goto fail;
    settings = cli_opts_settings(OPTS, NO);
    dc_counts k;
    dc_config_counts(&cfg, &k);
    if (cli_lead()) fprintf(stderr, "model %.2fM parameters (%.2fM active, %.2fM MTP), %d layers, vocab %d; batch %d x %d x %d, %d threads\n",
            k.params_total / 1e6, k.params_active / 1e6, k.params_mtp / 1e6, cfg.num_hidden_layers, cfg.vocab_size, o.B,
            o.T, o.accum, cli_get_threads());
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    cli_dist_optim_report("train", &t);
    run_hooks h;
    pretrain_hooks(&p, &h);
    run_opts ro = {.name = "train", .dir = run, .tokenizer = p.tokenizer[0] ? p.tokenizer : NULL, .steps = o.steps,
                   .stop_after = stop_after, .log_every = (int)log_every, .eval_every = (int)eval_every,
                   .save_every = (int)save_every, .keep = (int)keep, .sample_every = (int)sample_every, .explode = 1,
                   .resume_dir = resume ? ckdir : NULL, .settings = settings, .stop = &g_stop};
    if ((rc = run_loop(&t, &ro, &h, &err))) goto fail;
    if (cli_lead() && (sample_every > 0 || sample_len != 48)) h.sample(h.ctx, &t);
fail:
    if (rc) cli_error("train", &err);
    cJSON_Delete(state);
    cJSON_Delete(settings);
    trainer_free(&t);
    pretrain_close(&p);
    dist_free(&d);
    return rc ? 1 : 0;
}
