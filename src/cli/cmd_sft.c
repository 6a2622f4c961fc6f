/*
 * cmd_sft.c — `deepc sft`: supervised fine-tuning of a checkpoint on
 * conversations (src/train/sft.h), the loss on assistant tokens only; the
 * run loop, checkpoints and --resume as `deepc train`.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "base/err.h"
#include "base/file.h"
#include "cli/cli.h"
#include "cli/dist_cli.h"
#include "cli/opts.h"
#include "train/sft.h"

static const char *HELP =
    "usage: deepc sft -m MODEL --data FILE --out RUN [options]\n"
    "\n"
    "Fine-tunes MODEL (a checkpoint directory with its tokenizer.json) on conversations:\n"
    "JSONL lines {\"messages\": [{\"role\", \"content\"}, ...]} or {\"prompt\", \"response\"}, or one\n"
    "JSON array of them (or of {\"instruction\", \"input\", \"response\"}). Each is rendered with the\n"
    "chat template; the loss is taken on the assistant's tokens only (its EOS included). One\n"
    "conversation per row, padded to the longest row of its micro-batch (no packing); the loss\n"
    "is the mean over the step's assistant tokens.\n"
    "\n"
    "  --template S          r1 (the prompt ends with <think>), v3, or auto (default: r1 when\n"
    "                        some answer holds </think>)\n"
    "  --epochs E            passes over the data (1), or --steps N\n"
    "  --batch B --seq T     conversations per micro-batch and their longest length (8 x 512;\n"
    "                        longer ones are cut)\n"
    "  --accum N             micro-batches per step (1)\n"
    "  --lr LR --min-lr LR   peak and final learning rate (1e-4, 1e-5); --warmup N (10)\n"
    "  --sched S             cosine (default), wsd or const\n"
    "  --wd W --clip C       weight decay (0), gradient-norm clip (1.0)\n"
    "  --mtp-lambda L        MTP loss weight on the assistant tokens (0: the MTP module not run)\n"
    "  --seq-aux-alpha A     balance loss weight (0); --bias-update-speed G (0)\n"
    "  --val-rows N          held-out conversations for the validation loss (5%, at most 200)\n"
    "  --seed N              data order and split (1)\n"
    "  --log-every N --eval-every N --save-every N --keep K   as `deepc train` (10, 50, 100, 3)\n"
    "  --resume --stop-after N   as `deepc train`\n"
CLI_PREC_HELP
    "  -t, --threads N       threads (default: all cores; under mpirun, shared by a machine's ranks)\n"
    "\n"
    "Across processes (make MPI=1, mpirun -np R): each data-parallel replica computes accum/R\n"
    "of each step's micro-batches (--accum a multiple of the replicas); the same losses as one process.\n"
    DIST_HELP;

static volatile int g_stop;
static void on_signal(int sig) {
    (void)sig;
    g_stop = 1;
}

int cmd_sft(int argc, char **argv) {
    const char *model = NULL, *data = NULL, *run = NULL, *sched = "cosine", *tmpl = "auto";
    train_opts o;
    train_opts_default(&o);
    const char *prec = "f32";
    o.B = 8, o.T = 512, o.lr = 1e-4f, o.min_lr = 1e-5f, o.warmup = 10, o.wd = 0, o.mtp_lambda = 0, o.aux_alpha = 0;
    o.bias_gamma = 0, o.steps = 0;
    long seed = 1, log_every = 10, eval_every = 50, save_every = 100, keep = 3, threads = 0, stop_after = 0, ep = 1;
    int zero = 0;
    float rank_timeout = 600;
    dist dl;
    dist_single(&dl);
    int resume = 0, epochs = 1, val_rows = -1;
    const double BIG = 1e12, FMAX = 3.4e38;
    const cli_opt OPTS[] = {
        {"model", 'm', OPT_STR, &model, 0, 0, SET_FIXED}, {"data", 0, OPT_STR, &data, 0, 0, SET_FIXED},
        {"out", 'o', OPT_STR, &run, 0, 0, SET_NO}, {"template", 0, OPT_STR, &tmpl, 0, 0, SET_FIXED},
        {"epochs", 0, OPT_INT, &epochs, 1, 1e6, SET_MAY_CHANGE}, {"steps", 0, OPT_INT, &o.steps, 1, 0x7fffffff, SET_MAY_CHANGE},
        {"batch", 0, OPT_INT, &o.B, 1, 1 << 16, SET_FIXED}, {"seq", 0, OPT_INT, &o.T, 2, 1 << 20, SET_FIXED},
        {"accum", 0, OPT_INT, &o.accum, 1, 1 << 16, SET_FIXED}, {"lr", 0, OPT_FLOAT, &o.lr, 0, FMAX, SET_FIXED},
        {"min-lr", 0, OPT_FLOAT, &o.min_lr, 0, FMAX, SET_FIXED}, {"warmup", 0, OPT_INT, &o.warmup, 0, 0x7fffffff, SET_FIXED},
        {"sched", 0, OPT_STR, &sched, 0, 0, SET_FIXED}, {"wd", 0, OPT_FLOAT, &o.wd, 0, FMAX, SET_FIXED},
        {"clip", 0, OPT_FLOAT, &o.clip, 0, FMAX, SET_FIXED}, {"mtp-lambda", 0, OPT_FLOAT, &o.mtp_lambda, 0, FMAX, SET_FIXED},
        {"seq-aux-alpha", 0, OPT_FLOAT, &o.aux_alpha, 0, FMAX, SET_FIXED},
        {"bias-update-speed", 0, OPT_FLOAT, &o.bias_gamma, 0, FMAX, SET_FIXED},
        {"val-rows", 0, OPT_INT, &val_rows, 0, 1e9, SET_FIXED}, {"seed", 0, OPT_LONG, &seed, 0, 9.2e18, SET_FIXED},
        {"log-every", 0, OPT_LONG, &log_every, 1, BIG, SET_NO}, {"eval-every", 0, OPT_LONG, &eval_every, 0, BIG, SET_NO},
        {"save-every", 0, OPT_LONG, &save_every, 0, BIG, SET_NO}, {"keep", 0, OPT_LONG, &keep, 1, 1 << 20, SET_NO},
        {"resume", 0, OPT_FLAG, &resume, 0, 0, SET_NO}, {"stop-after", 0, OPT_LONG, &stop_after, 1, BIG, SET_NO},
        {"threads", 't', OPT_LONG, &threads, 0, 4096, SET_NO},
        DIST_OPTS(ep, zero, rank_timeout),
        CLI_PREC_OPTS(prec, o.bf16_moments)};
    const int NO = sizeof OPTS / sizeof *OPTS;
    unsigned char given[sizeof OPTS / sizeof *OPTS];
    int done, rc = cli_opts_parse("sft", HELP, OPTS, NO, argc, argv, given, &done);
    if (rc || done) return rc;
    if (!run || (!resume && (!model || !data))) return cli_usage_error("sft", "-m MODEL, --data FILE and --out RUN are required");
    cli_threads(threads);
    dc_err err = {0};
    cJSON *state = NULL, *settings = NULL;
    dc_tokenizer *tk = NULL;
    trainer t = {0};
    sft s = {0};
    sft_set d = {0};
    char ckdir[4096], tokpath[4200];
    dc_config cfg;
    if ((rc = cli_dist("sft", ep, threads, rank_timeout, &dl, &err))) goto out;
    if (resume) {
        const cJSON *stored;
        if ((rc = run_resume_state(run, ckdir, sizeof ckdir, &state, &stored, &err))) goto out;
        if (stored && (rc = cli_opts_resume("sft", OPTS, NO, given, stored, ckdir, &err))) goto out;
        if (!model || !data) {
            rc = err_set(&err, DC_EARG, "%s: the run's settings do not name its model and data: give -m and --data", ckdir);
            goto out;
        }
    }
    if (cli_precision("sft", prec, &o)) {
        cJSON_Delete(state);
        return 2;
    }
    o.sched = !strcmp(sched, "wsd") ? SCHED_WSD : !strcmp(sched, "const") ? SCHED_CONST : SCHED_COSINE;
    if (strcmp(sched, "cosine") && o.sched == SCHED_COSINE) return cli_usage_error("sft", "--sched: bad '%s'", sched);
    int style = !strcmp(tmpl, "r1") ? DC_CHAT_R1 : !strcmp(tmpl, "v3") ? DC_CHAT_V3 : -1;
    if (style < 0 && strcmp(tmpl, "auto")) return cli_usage_error("sft", "--template must be r1, v3 or auto");
    snprintf(tokpath, sizeof tokpath, "%s/tokenizer.json", model);
    if ((rc = dc_tokenizer_load(tokpath, &tk, &err))) goto out;
    if ((rc = dc_config_load(resume ? ckdir : model, &cfg, &err))) goto out;
    if ((rc = sft_load(&d, data, tk, style, o.T + 1, &err))) goto out;
    if (val_rows < 0) val_rows = d.n >= 20 ? (d.n / 20 < 200 ? d.n / 20 : 200) : 0;
    int pad = dc_tokenizer_eos(tk) >= 0 ? dc_tokenizer_eos(tk) : 0;
    if (cli_lead()) fprintf(stderr, "%s: %d conversations (%s template; %d cut to %d tokens, %d without an assistant token skipped), "
                    "%d held out\n", data, d.n, d.style == DC_CHAT_R1 ? "R1" : "V3", d.truncated, o.T + 1, d.skipped, val_rows);
    if ((rc = sft_open(&s, &d, val_rows, o.B, o.T, o.accum, pad, (uint64_t)seed, &err))) goto out;
    if (!o.steps) o.steps = (int)(sft_steps_per_epoch(&s) * epochs);
    if (o.accum % dl.dp_size) {
        rc = err_set(&err, DC_EARG, "--accum %d is not a multiple of the %d data-parallel replicas", o.accum, dl.dp_size);
        goto out;
    }
    if ((rc = trainer_init_dist(&t, &cfg, &o, resume ? NULL : model, (uint64_t)seed, &dl, zero, &err))) goto out;
    cli_dist_optim_report("sft", &t);
    settings = cli_opts_settings(OPTS, NO);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    run_hooks h;
    sft_hooks(&s, &h);
    run_opts ro = {.name = "sft", .dir = run, .tokenizer = tokpath, .steps = o.steps, .stop_after = stop_after,
                   .log_every = (int)log_every, .eval_every = (int)eval_every, .save_every = (int)save_every,
                   .keep = (int)keep, .explode = 1, .resume_dir = resume ? ckdir : NULL, .settings = settings,
                   .stop = &g_stop};
    rc = run_loop(&t, &ro, &h, &err);
out:
    if (rc) cli_error("sft", &err);
    cJSON_Delete(state);
    cJSON_Delete(settings);
    trainer_free(&t);
    dist_free(&dl);
    sft_close(&s);
    sft_set_free(&d);
    dc_tokenizer_free(tk);
    return rc ? 1 : 0;
}
