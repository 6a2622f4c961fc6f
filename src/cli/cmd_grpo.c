/*
 * cmd_grpo.c — `deepc grpo`: reinforcement learning with rule-based outcome
 * rewards (src/train/grpo.h) from a checkpoint, which is also the frozen
 * reference; the run loop, checkpoints and --resume as `deepc train`.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "base/err.h"
#include "cli/cli.h"
#include "cli/dist_cli.h"
#include "cli/opts.h"
#include "train/grpo.h"

static const char *HELP =
    "usage: deepc grpo -m MODEL --task TASK --out RUN [options]\n"
    "\n"
    "GRPO (DeepSeekMath, R1) on a verifiable task: each step samples G completions of P prompts\n"
    "at temperature 1 through the batched engine, rewards them by rules (the answer after\n"
    "</think>, exactly; the format), and updates the policy on the group advantages. MODEL\n"
    "(a checkpoint with its tokenizer.json) is the start and the frozen KL reference.\n"
    "\n"
    "  --task TASK           arith[:digits=D,ops=M,opset=+-*], countdown[:nums=K], cd3[:FILE],\n"
    "                        gsm8k[:FILE], jsonl:FILE (see deepc eval --help)\n"
    "  --steps N             rollout batches (50); each makes --mu optimiser updates\n"
    "  --prompts P -G N      prompts per step (4) and completions per prompt (8)\n"
    "  --max-new N           tokens per completion (128); --temp T (1.0)\n"
    "  --reward R            rule (default) or random: a fair coin per completion, a control\n"
    "  --format-weight F     reward = accuracy + F * format (0.1)\n"
    "  --answer A            tag (<answer>..</answer>, default), boxed or last; --no-think\n"
    "  --dr-grpo             advantage r - mean (Dr. GRPO) instead of (r - mean) / (std + 1e-4)\n"
    "  --no-dynamic          keep groups whose rewards are all equal (DAPO dynamic sampling,\n"
    "                        on by default, drops them and draws new prompts, --max-rounds 4)\n"
    "  --eps-low E --eps-high E  the clip range (0.2, 0.28)\n"
    "  --beta B              weight of the k3 KL to the reference (0; DeepSeekMath used 0.04)\n"
    "  --mu N                updates per rollout batch (1)\n"
    "  --seq-mean            mean per sequence, then over sequences (the original GRPO);\n"
    "                        default: the token-level mean over the batch (DAPO)\n"
    "  --batch B --seq T     sequences per micro-batch (16), longest prompt + completion\n"
    "                        (default --max-new + 128)\n"
    "  --lr LR --min-lr LR --warmup N --sched S --wd W --clip C   optimiser (1e-5, 1e-5, 0,\n"
    "                        const, 0, 1.0)\n"
    "  --eval-every N --eval-n N   held-out greedy accuracy every N steps on N items (10, 50)\n"
    "  --seed N --log-every N --save-every N --keep K --resume --stop-after N   as deepc train\n"
CLI_PREC_HELP
    "  -t, --threads N       threads (default: all cores; under mpirun, shared by a machine's ranks)\n"
    "\n"
    "Across processes (make MPI=1, mpirun -np R): the replicas sample their shares of the prompts,\n"
    "the completions and rewards are gathered, and each replica computes its share of the update's\n"
    "micro-batches (docs/distributed.md).\n"
    DIST_HELP;

static volatile int g_stop;
static void on_signal(int sig) {
    (void)sig;
    g_stop = 1;
}

int cmd_grpo(int argc, char **argv) {
    const char *model = NULL, *spec = NULL, *run = NULL, *sched = "const", *reward = "rule", *answer = "tag";
    train_opts o;
    train_opts_default(&o);
    const char *prec = "f32";
    o.B = 16, o.T = 0, o.lr = 1e-5f, o.min_lr = 1e-5f, o.warmup = 0, o.wd = 0, o.mtp_lambda = 0, o.aux_alpha = 0;
    o.bias_gamma = 0;
    grpo_opts go;
    grpo_defaults(&go);
    long seed = 1, log_every = 1, eval_every = 10, save_every = 50, keep = 3, threads = 0, stop_after = 0, steps = 50;
    long ep = 1;
    int zero = 0;
    float rank_timeout = 600;
    dist d;
    dist_single(&d);
    int resume = 0, no_think = 0, no_dynamic = 0;
    const double BIG = 1e12, FMAX = 3.4e38;
    const cli_opt OPTS[] = {
        {"model", 'm', OPT_STR, &model, 0, 0, SET_FIXED}, {"task", 0, OPT_STR, &spec, 0, 0, SET_FIXED},
        {"out", 'o', OPT_STR, &run, 0, 0, SET_NO}, {"steps", 0, OPT_LONG, &steps, 1, 1e9, SET_MAY_CHANGE},
        {"prompts", 0, OPT_INT, &go.P, 1, 1 << 16, SET_FIXED}, {"group", 'G', OPT_INT, &go.G, 2, 1 << 12, SET_FIXED},
        {"max-new", 0, OPT_INT, &go.max_new, 1, 1 << 20, SET_FIXED}, {"temp", 0, OPT_FLOAT, &go.temperature, 0, 100, SET_FIXED},
        {"reward", 0, OPT_STR, &reward, 0, 0, SET_FIXED}, {"format-weight", 0, OPT_FLOAT, &go.format_weight, 0, FMAX, SET_FIXED},
        {"answer", 0, OPT_STR, &answer, 0, 0, SET_FIXED}, {"no-think", 0, OPT_FLAG, &no_think, 0, 0, SET_FIXED},
        {"dr-grpo", 0, OPT_FLAG, &go.dr_grpo, 0, 0, SET_FIXED}, {"no-dynamic", 0, OPT_FLAG, &no_dynamic, 0, 0, SET_FIXED},
        {"max-rounds", 0, OPT_INT, &go.max_rounds, 1, 1000, SET_FIXED}, {"eps-low", 0, OPT_FLOAT, &go.eps_low, 0, 1, SET_FIXED},
        {"eps-high", 0, OPT_FLOAT, &go.eps_high, 0, FMAX, SET_FIXED}, {"beta", 0, OPT_FLOAT, &go.beta, 0, FMAX, SET_FIXED},
        {"mu", 0, OPT_INT, &go.mu, 1, 1000, SET_FIXED}, {"seq-mean", 0, OPT_FLAG, &go.seq_mean, 0, 0, SET_FIXED},
        {"batch", 0, OPT_INT, &o.B, 1, 1 << 16, SET_FIXED}, {"seq", 0, OPT_INT, &o.T, 2, 1 << 20, SET_FIXED},
        {"lr", 0, OPT_FLOAT, &o.lr, 0, FMAX, SET_FIXED}, {"min-lr", 0, OPT_FLOAT, &o.min_lr, 0, FMAX, SET_FIXED},
        {"warmup", 0, OPT_INT, &o.warmup, 0, 0x7fffffff, SET_FIXED}, {"sched", 0, OPT_STR, &sched, 0, 0, SET_FIXED},
        {"wd", 0, OPT_FLOAT, &o.wd, 0, FMAX, SET_FIXED}, {"clip", 0, OPT_FLOAT, &o.clip, 0, FMAX, SET_FIXED},
        {"eval-every", 0, OPT_LONG, &eval_every, 0, BIG, SET_NO}, {"eval-n", 0, OPT_INT, &go.eval_n, 0, 1e9, SET_NO},
        {"seed", 0, OPT_LONG, &seed, 0, 9.2e18, SET_FIXED}, {"log-every", 0, OPT_LONG, &log_every, 1, BIG, SET_NO},
        {"save-every", 0, OPT_LONG, &save_every, 0, BIG, SET_NO}, {"keep", 0, OPT_LONG, &keep, 1, 1 << 20, SET_NO},
        {"resume", 0, OPT_FLAG, &resume, 0, 0, SET_NO}, {"stop-after", 0, OPT_LONG, &stop_after, 1, BIG, SET_NO},
        {"threads", 't', OPT_LONG, &threads, 0, 4096, SET_NO},
        DIST_OPTS(ep, zero, rank_timeout),
        CLI_PREC_OPTS(prec, o.bf16_moments)};
    const int NO = sizeof OPTS / sizeof *OPTS;
    unsigned char given[sizeof OPTS / sizeof *OPTS];
    int done, rc = cli_opts_parse("grpo", HELP, OPTS, NO, argc, argv, given, &done);
    if (rc || done) return rc;
    if (!run || (!resume && (!model || !spec))) return cli_usage_error("grpo", "-m MODEL, --task TASK and --out RUN are required");
    cli_threads(threads);
    dc_err err = {0};
    cJSON *state = NULL, *settings = NULL;
    dc_tokenizer *tk = NULL;
    trainer t = {0};
    task tsk = {0};
    grpo g = {0};
    char ckdir[4096], tokpath[4200];
    dc_config cfg;
    if ((rc = cli_dist("grpo", ep, threads, rank_timeout, &d, &err))) goto out;
    if (resume) {
        const cJSON *stored;
        if ((rc = run_resume_state(run, ckdir, sizeof ckdir, &state, &stored, &err))) goto out;
        if (stored && (rc = cli_opts_resume("grpo", OPTS, NO, given, stored, ckdir, &err))) goto out;
        if (!model || !spec) {
            rc = err_set(&err, DC_EARG, "%s: the run's settings do not name its model and task: give -m and --task", ckdir);
            goto out;
        }
    }
    int mark = !strcmp(answer, "tag") ? ANS_TAG : !strcmp(answer, "boxed") ? ANS_BOXED : !strcmp(answer, "last") ? ANS_LAST : -1;
    if (mark < 0) return cli_usage_error("grpo", "--answer must be tag, boxed or last");
    if (strcmp(reward, "rule") && strcmp(reward, "random")) return cli_usage_error("grpo", "--reward must be rule or random");
    if (cli_precision("grpo", prec, &o)) {
        cJSON_Delete(state);
        return 2;
    }
    o.sched = !strcmp(sched, "wsd") ? SCHED_WSD : !strcmp(sched, "cosine") ? SCHED_COSINE : SCHED_CONST;
    go.random_reward = !strcmp(reward, "random"), go.dynamic = !no_dynamic, go.seed = (uint64_t)seed;
    go.style = no_think ? DC_CHAT_V3 : DC_CHAT_R1;
    if (!o.T) o.T = go.max_new + 128;
    o.steps = (int)(steps * go.mu);
    snprintf(tokpath, sizeof tokpath, "%s/tokenizer.json", model);
    if ((rc = task_open(&tsk, spec, (uint64_t)seed, &err))) goto out;
    tsk.fmt = (answer_fmt){!no_think, mark};
    if ((rc = dc_tokenizer_load(tokpath, &tk, &err))) goto out;
    if ((rc = dc_config_load(resume ? ckdir : model, &cfg, &err))) goto out;
    if ((rc = trainer_init_dist(&t, &cfg, &o, resume ? NULL : model, (uint64_t)seed, &d, zero, &err))) goto out;
    cli_dist_optim_report("grpo", &t);
    if ((rc = grpo_open(&g, &t, &tsk, tk, model, &go, &err))) goto out;
    settings = cli_opts_settings(OPTS, NO);
    if (cli_lead()) fprintf(stderr, "grpo: %s, %d prompts x %d completions a step, %ld steps x %d updates; %s rewards; beta %g\n",
            tsk.name, go.P, go.G, steps, go.mu, go.random_reward ? "RANDOM" : "rule", go.beta);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    run_hooks h;
    grpo_hooks(&g, &h);
    run_opts ro = {.name = "grpo", .dir = run, .tokenizer = tokpath, .steps = o.steps, .stop_after = stop_after * go.mu,
                   .log_every = (int)log_every, .eval_every = (int)eval_every, .save_every = (int)save_every,
                   .keep = (int)keep, .explode = 0, .resume_dir = resume ? ckdir : NULL, .settings = settings,
                   .stop = &g_stop};
    rc = run_loop(&t, &ro, &h, &err);
out:
    if (rc) cli_error("grpo", &err);
    cJSON_Delete(state);
    cJSON_Delete(settings);
    grpo_close(&g);
    trainer_free(&t);
    dist_free(&d);
    task_close(&tsk);
    dc_tokenizer_free(tk);
    return rc ? 1 : 0;
}
