/*
 * cmd_eval.c — `deepc eval`: a model's accuracy on a verifiable task
 * (src/train/task.h) through the batched engine; the figures as a JSON line
 * on stdout.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "base/err.h"
#include "cli/cli.h"
#include "cli/opts.h"
#include "train/eval.h"

static const char *HELP =
    "usage: deepc eval -m MODEL --task TASK [--n N] [--samples K] [options]\n"
    "\n"
    "Greedy pass@1, and with K samples per item maj@K and pass@K, the format rate and the\n"
    "mean length of the greedy answers; ends with one JSON line on stdout.\n"
    "\n"
    "  -m, --model DIR       a checkpoint (its tokenizer.json is used), or a .gguf\n"
    "  --task TASK           arith[:digits=D,ops=M,opset=+-*], countdown[:nums=K], cd3[:FILE],\n"
    "                        gsm8k[:FILE], jsonl:FILE ({\"prompt\", \"answer\"} lines)\n"
    "  --n N                 items (100)\n"
    "  --split S             eval (held-out; default for generated tasks), all (default for\n"
    "                        files), train\n"
    "  --samples K           samples per item for maj@K and pass@K (0: greedy only)\n"
    "  --temp T --top-p P    sampling for the K samples (0.6, 0.95: R1's evaluation)\n"
    "  --max-new N           tokens per answer (256)\n"
    "  --answer A            how answers are marked: tag (<answer>..</answer>, default), boxed, last\n"
    "  --no-think            plain answers (V3 template), not the R1 format <think>..</think>\n"
    "  --show N              print the first N greedy answers to stderr\n"
    "  --seed N              sampling seed (1)\n"
    "  -t, --threads N       threads (default: all cores)\n";

static int answer_mark(const char *s) {
    return !strcmp(s, "tag") ? ANS_TAG : !strcmp(s, "boxed") ? ANS_BOXED : !strcmp(s, "last") ? ANS_LAST : -1;
}

int cmd_eval(int argc, char **argv) {
    const char *model = NULL, *spec = NULL, *split = NULL, *answer = "tag";
    eval_opts eo;
    eval_defaults(&eo);
    eo.temperature = 0.6f, eo.top_p = 0.95f;
    long threads = 0, seed = 1;
    int no_think = 0;
    const cli_opt OPTS[] = {{"model", 'm', OPT_STR, &model, 0, 0, 0}, {"task", 0, OPT_STR, &spec, 0, 0, 0},
                            {"n", 0, OPT_INT, &eo.n, 1, 1e9, 0}, {"split", 0, OPT_STR, &split, 0, 0, 0},
                            {"samples", 0, OPT_INT, &eo.K, 0, 1024, 0}, {"temp", 0, OPT_FLOAT, &eo.temperature, 0, 100, 0},
                            {"top-p", 0, OPT_FLOAT, &eo.top_p, 0, 1, 0}, {"max-new", 0, OPT_INT, &eo.max_new, 1, 1 << 20, 0},
                            {"answer", 0, OPT_STR, &answer, 0, 0, 0}, {"no-think", 0, OPT_FLAG, &no_think, 0, 0, 0},
                            {"show", 0, OPT_INT, &eo.show, 0, 1e9, 0}, {"seed", 0, OPT_LONG, &seed, 0, 9.2e18, 0},
                            {"threads", 't', OPT_LONG, &threads, 0, 4096, 0}};
    const int NO = sizeof OPTS / sizeof *OPTS;
    unsigned char given[sizeof OPTS / sizeof *OPTS];
    int done, rc = cli_opts_parse("eval", HELP, OPTS, NO, argc, argv, given, &done);
    if (rc || done) return rc;
    if (!model || !spec) return cli_usage_error("eval", "-m MODEL and --task TASK are required");
    int mark = answer_mark(answer);
    if (mark < 0) return cli_usage_error("eval", "--answer must be tag, boxed or last, not '%s'", answer);
    cli_threads(threads);
    dc_err err = {0};
    task t = {0};
    dc_model *m = NULL;
    dc_tokenizer *tk = NULL;
    dc_engine *e = NULL;
    eo.seed = (uint64_t)seed;
    if ((rc = task_open(&t, spec, (uint64_t)seed, &err))) goto out;
    t.fmt = (answer_fmt){!no_think, mark};
    eo.style = no_think ? DC_CHAT_V3 : DC_CHAT_R1;
    eo.split = t.kind <= TASK_COUNTDOWN ? SPLIT_EVAL : SPLIT_ALL;
    if (split) eo.split = !strcmp(split, "eval") ? SPLIT_EVAL : !strcmp(split, "train") ? SPLIT_TRAIN : SPLIT_ALL;
    if (split && strcmp(split, "eval") && strcmp(split, "train") && strcmp(split, "all")) {
        rc = err_set(&err, DC_EARG, "--split must be eval, train or all, not '%s'", split);
        goto out;
    }
    if ((rc = dc_model_load(model, &m, &err)) || (rc = dc_tokenizer_load(model, &tk, &err))) goto out;
    int max_len = dc_model_config(m)->max_position_embeddings;
    if (max_len <= 0 || max_len > eo.max_new + 4096) max_len = eo.max_new + 4096;
    if ((rc = rollout_engine(m, 64, max_len, &e, &err))) goto out;
    eval_result r;
    if ((rc = eval_run(e, tk, &t, &eo, &r, &err))) goto out;
    char js[512];
    eval_json(&r, t.name, eo.K, js, sizeof js);
    fprintf(stderr, "%s: %d items, pass@1 %.3f", t.name, r.n, r.pass1);
    if (eo.K) fprintf(stderr, ", maj@%d %.3f, pass@%d %.3f", eo.K, r.majk, eo.K, r.passk);
    fprintf(stderr, ", format %.3f, mean length %.1f tokens (%lld generated in %.1f s)\n", r.format, r.mean_len,
            (long long)r.tokens, r.seconds);
    printf("%s\n", js);
    if (fflush(stdout) || ferror(stdout)) rc = err_set(&err, DC_EIO, "cannot write to stdout");
out:
    if (rc) cli_error("eval", &err);
    dc_engine_free(e);
    dc_model_free(m);
    dc_tokenizer_free(tk);
    task_close(&t);
    return rc ? 1 : 0;
}
