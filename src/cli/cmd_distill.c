/*
 * cmd_distill.c — `deepc distill`: a teacher's verified answers become SFT
 * data (src/train/distill.h) and the student is fine-tuned on them, with
 * optional logit distillation; the student's held-out accuracy before and
 * after.
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
#include "train/distill.h"
#include "train/eval.h"
#include "train/sft.h"

static const char *HELP =
    "usage: deepc distill --teacher T --student S (--task TASK | --prompts FILE) --out RUN [options]\n"
    "\n"
    "The teacher answers N prompts K times each (with its reasoning, through the batched engine);\n"
    "the answers the task's rule reward accepts (right and well formatted: rejection sampling)\n"
    "are written to RUN/distill.jsonl as SFT data ({\"prompt\", \"response\"}); with --prompts FILE\n"
    "(JSONL {\"prompt\"} lines) nothing can be checked and every finished answer is kept. Then the\n"
    "student is fine-tuned on them as `deepc sft` does; --kd adds logit distillation: the KL to\n"
    "the teacher's top-k logits at a temperature (teacher and student share the vocabulary).\n"
    "\n"
    "  --n N --samples K     prompts (200) and teacher samples per prompt (4); --keep M answers\n"
    "                        kept per prompt at most (1)\n"
    "  --temp T --max-new N  the teacher's sampling (0.7) and answer length (256)\n"
    "  --answer A --no-think as deepc eval\n"
    "  --kd                  logit distillation: --kd-k K (8), --kd-temp T (2), --kd-alpha A (0.5:\n"
    "                        loss = (1 - A) CE + A T^2 KL)\n"
    "  --epochs E --batch B --seq T --lr LR --min-lr LR --warmup N --sched S --wd W --clip C\n"
    "                        the fine-tuning (2, 8, 512, 1e-4, 1e-5, 10, cosine, 0, 1)\n"
    "  --eval-n N            held-out items for the student's accuracy before and after (100; 0: none)\n"
    "  --seed N --log-every N --save-every N --keep-ckpt K --resume   as deepc sft\n"
CLI_PREC_HELP
    "  --accum N             micro-batches per step of the fine-tuning (1)\n"
    "  -t, --threads N       threads (default: all cores; under mpirun, shared by a machine's ranks)\n"
    "\n"
    "Across processes (make MPI=1, mpirun -np R): the replicas sample their shares of the teacher's\n"
    "prompts (the same data as one process), then fine-tune data-parallel (--accum a multiple of R).\n"
    DIST_HELP;

static volatile int g_stop;
static void on_signal(int sig) {
    (void)sig;
    g_stop = 1;
}

/* prompts_file: the "prompt" of each JSONL line */
static int prompts_file(const char *path, char ***out, int *n, dc_err *err) {
    char *txt = NULL;
    size_t len = 0;
    int rc = file_read_all(path, &txt, &len, err), cap = 0, line = 0;
    *out = NULL, *n = 0;
    for (char *s = txt, *e; !rc && s < txt + len; s = e + 1) {
        e = memchr(s, '\n', txt + len - s);
        if (!e) e = txt + len;
        *e = 0, line++;
        if (strspn(s, " \t\r") == strlen(s)) continue;
        cJSON *j = cJSON_Parse(s);
        const cJSON *p = cJSON_GetObjectItem(j, "prompt");
        if (!cJSON_IsString(p)) rc = err_set(err, DC_EFORMAT, "%s:%d: not a {\"prompt\"} line", path, line);
        if (!rc && *n == cap) {
            char **nv = realloc(*out, sizeof **out * (cap = cap ? cap * 2 : 64));
            if (!nv) rc = err_set(err, DC_ENOMEM, "out of memory");
            else *out = nv;
        }
        if (!rc) (*out)[(*n)++] = strdup(p->valuestring);
        cJSON_Delete(j);
    }
    free(txt);
    return rc;
}

static int student_eval(dc_model *m, const dc_tokenizer *tk, const task *t, int n, int max_new, int style,
                        eval_result *r, dc_err *err) {
    dc_engine *e;
    eval_opts eo;
    eval_defaults(&eo);
    eo.n = n, eo.split = SPLIT_EVAL, eo.max_new = max_new, eo.style = style;
    int rc = rollout_engine(m, 64, max_new + 1024, &e, err);
    if (!rc) rc = eval_run(e, tk, t, &eo, r, err);
    dc_engine_free(e);
    return rc;
}

/* collect: the teacher's accepted answers into path */
static int collect(const char *teacher, const task *t, char *const *prompts, int np, const distill_opts *dopts,
                   const dist *d, const char *path, dc_err *err) {
    dc_model *m = NULL;
    dc_tokenizer *tk = NULL;
    dc_engine *e = NULL;
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    distill_opts o = *dopts;
    if (!t) o.n = np < o.n ? np : o.n;
    distill_stats st;
    int rc = f ? DC_OK : err_set(err, DC_ENOMEM, "out of memory");
    if (!rc) rc = dc_model_load(teacher, &m, err);
    if (!rc) rc = dc_tokenizer_load(teacher, &tk, err);
    if (!rc) rc = rollout_engine(m, 64, o.max_new + 1024, &e, err);
    if (!rc) rc = distill_collect_dist(e, tk, t, prompts, &o, d, f, &st, err);
    if (f) fclose(f);
    if (!rc && cli_lead()) { /* rank 0 writes the data; the others wait for it (below) */
        fprintf(stderr, "teacher: %d prompts, %d answers sampled (%.0f tokens/s), %d accepted (%.1f%%), %d written to %s\n",
                st.prompts, st.sampled, st.seconds > 0 ? st.tokens / st.seconds : 0.0, st.accepted,
                st.sampled ? 100.0 * st.accepted / st.sampled : 0.0, st.written, path);
        rc = st.written ? file_write_atomic(path, buf, len, err)
                        : err_set(err, DC_EARG, "distill: the teacher's answers were all rejected: nothing to learn from");
    }
    if (!rc && !cli_lead() && !st.written)
        rc = err_set(err, DC_EARG, "distill: the teacher's answers were all rejected: nothing to learn from");
    if (!rc && d->size > 1) {
        int ok = rc;
        rc = dist_bcast(d, DIST_WORLD, &ok, sizeof ok, 0, err);
        if (!rc && ok) rc = err_set(err, ok, "distill: rank 0 could not write %s", path);
    }
    free(buf);
    dc_engine_free(e);
    dc_model_free(m);
    dc_tokenizer_free(tk);
    return rc;
}

int cmd_distill(int argc, char **argv) {
    const char *teacher = NULL, *student = NULL, *spec = NULL, *pfile = NULL, *run = NULL, *answer = "tag", *sched = "cosine";
    distill_opts dopts = {.n = 200, .K = 4, .keep = 1, .temperature = 0.7f, .max_new = 256, .seed = 1};
    train_opts o;
    train_opts_default(&o);
    const char *prec = "f32";
    o.B = 8, o.T = 512, o.lr = 1e-4f, o.min_lr = 1e-5f, o.warmup = 10, o.wd = 0, o.mtp_lambda = 0, o.aux_alpha = 0;
    o.bias_gamma = 0;
    int kd = 0, kd_k = 8, epochs = 2, no_think = 0, resume = 0, eval_n = 100;
    float kd_temp = 2, kd_alpha = 0.5f;
    long seed = 1, log_every = 10, save_every = 100, keep = 3, threads = 0, ep = 1;
    int zero = 0;
    float rank_timeout = 600;
    const double BIG = 1e12, FMAX = 3.4e38;
    const cli_opt OPTS[] = {
        {"teacher", 0, OPT_STR, &teacher, 0, 0, SET_FIXED}, {"student", 0, OPT_STR, &student, 0, 0, SET_FIXED},
        {"task", 0, OPT_STR, &spec, 0, 0, SET_FIXED}, {"prompts", 0, OPT_STR, &pfile, 0, 0, SET_FIXED},
        {"out", 'o', OPT_STR, &run, 0, 0, SET_NO}, {"n", 0, OPT_INT, &dopts.n, 1, 1e9, SET_FIXED},
        {"samples", 0, OPT_INT, &dopts.K, 1, 4096, SET_FIXED}, {"keep", 0, OPT_INT, &dopts.keep, 1, 4096, SET_FIXED},
        {"temp", 0, OPT_FLOAT, &dopts.temperature, 0, 100, SET_FIXED}, {"max-new", 0, OPT_INT, &dopts.max_new, 1, 1 << 20, SET_FIXED},
        {"answer", 0, OPT_STR, &answer, 0, 0, SET_FIXED}, {"no-think", 0, OPT_FLAG, &no_think, 0, 0, SET_FIXED},
        {"kd", 0, OPT_FLAG, &kd, 0, 0, SET_FIXED}, {"kd-k", 0, OPT_INT, &kd_k, 1, 1 << 20, SET_FIXED},
        {"kd-temp", 0, OPT_FLOAT, &kd_temp, 1e-3, 1e3, SET_FIXED}, {"kd-alpha", 0, OPT_FLOAT, &kd_alpha, 0, 1, SET_FIXED},
        {"epochs", 0, OPT_INT, &epochs, 1, 1e6, SET_MAY_CHANGE}, {"batch", 0, OPT_INT, &o.B, 1, 1 << 16, SET_FIXED},
        {"seq", 0, OPT_INT, &o.T, 2, 1 << 20, SET_FIXED}, {"lr", 0, OPT_FLOAT, &o.lr, 0, FMAX, SET_FIXED},
        {"min-lr", 0, OPT_FLOAT, &o.min_lr, 0, FMAX, SET_FIXED}, {"warmup", 0, OPT_INT, &o.warmup, 0, 0x7fffffff, SET_FIXED},
        {"sched", 0, OPT_STR, &sched, 0, 0, SET_FIXED}, {"wd", 0, OPT_FLOAT, &o.wd, 0, FMAX, SET_FIXED},
        {"clip", 0, OPT_FLOAT, &o.clip, 0, FMAX, SET_FIXED}, {"eval-n", 0, OPT_INT, &eval_n, 0, 1e9, SET_NO},
        {"seed", 0, OPT_LONG, &seed, 0, 9.2e18, SET_FIXED}, {"log-every", 0, OPT_LONG, &log_every, 1, BIG, SET_NO},
        {"save-every", 0, OPT_LONG, &save_every, 0, BIG, SET_NO}, {"keep-ckpt", 0, OPT_LONG, &keep, 1, 1 << 20, SET_NO},
        {"resume", 0, OPT_FLAG, &resume, 0, 0, SET_NO}, {"threads", 't', OPT_LONG, &threads, 0, 4096, SET_NO},
        {"accum", 0, OPT_INT, &o.accum, 1, 1 << 16, SET_FIXED},
        DIST_OPTS(ep, zero, rank_timeout),
        CLI_PREC_OPTS(prec, o.bf16_moments)};
    const int NO = sizeof OPTS / sizeof *OPTS;
    unsigned char given[sizeof OPTS / sizeof *OPTS];
    int done, rc = cli_opts_parse("distill", HELP, OPTS, NO, argc, argv, given, &done);
    if (rc || done) return rc;
    if (!run || (!resume && (!teacher || !student || !!spec + !!pfile != 1)))
        return cli_usage_error("distill", "--teacher, --student, one of --task / --prompts, and --out are required");
    int mark = !strcmp(answer, "tag") ? ANS_TAG : !strcmp(answer, "boxed") ? ANS_BOXED : !strcmp(answer, "last") ? ANS_LAST : -1;
    if (mark < 0) return cli_usage_error("distill", "--answer must be tag, boxed or last");
    cli_threads(threads);
    dc_err err = {0};
    cJSON *state = NULL, *settings = NULL;
    char ckdir[4096], data[4200], tokpath[4200], **prompts = NULL;
    int nprompts = 0;
    task t = {0};
    dc_tokenizer *tk = NULL;
    dc_model *sm = NULL, *tm = NULL;
    trainer tr = {0};
    sft s = {0};
    sft_set d = {0};
    dist dl;
    dist_single(&dl);
    if ((rc = cli_dist("distill", ep, threads, rank_timeout, &dl, &err))) goto out;
    if (o.accum % dl.dp_size) {
        rc = err_set(&err, DC_EARG, "--accum %d is not a multiple of the %d data-parallel replicas", o.accum, dl.dp_size);
        goto out;
    }
    if (resume) {
        const cJSON *stored;
        if ((rc = run_resume_state(run, ckdir, sizeof ckdir, &state, &stored, &err))) goto out;
        if (stored && (rc = cli_opts_resume("distill", OPTS, NO, given, stored, ckdir, &err))) goto out;
    }
    dopts.style = no_think ? DC_CHAT_V3 : DC_CHAT_R1, dopts.seed = (uint64_t)seed;
    if (cli_precision("distill", prec, &o)) {
        cJSON_Delete(state);
        return 2;
    }
    o.sched = !strcmp(sched, "wsd") ? SCHED_WSD : !strcmp(sched, "const") ? SCHED_CONST : SCHED_COSINE;
    snprintf(data, sizeof data, "%s/distill.jsonl", run);
    snprintf(tokpath, sizeof tokpath, "%s/tokenizer.json", student);
    if (spec && (rc = task_open(&t, spec, (uint64_t)seed, &err))) goto out;
    t.fmt = (answer_fmt){!no_think, mark};
    if (pfile && (rc = prompts_file(pfile, &prompts, &nprompts, &err))) goto out;
    if (!resume && ((rc = cli_lead() ? dir_make(run, &err) : DC_OK) ||
                    (rc = collect(teacher, spec ? &t : NULL, prompts, nprompts, &dopts, &dl, data, &err))))
        goto out;
    if ((rc = dc_tokenizer_load(tokpath, &tk, &err)) || (rc = dc_model_load(student, &sm, &err))) goto out;
    eval_result before = {0}, after = {0};
    if (spec && eval_n > 0 && !resume && (rc = student_eval(sm, tk, &t, eval_n, dopts.max_new, dopts.style, &before, &err)))
        goto out;
    if (spec && eval_n > 0 && !resume && cli_lead())
        fprintf(stderr, "student before: held-out accuracy %.3f, format %.3f (%d items)\n", before.pass1, before.format, before.n);
    if ((rc = sft_load(&d, data, tk, dopts.style, o.T + 1, &err))) goto out;
    if ((rc = sft_open(&s, &d, 0, o.B, o.T, o.accum, dc_tokenizer_eos(tk) >= 0 ? dc_tokenizer_eos(tk) : 0, (uint64_t)seed, &err)))
        goto out;
    if (kd && (rc = dc_model_load(teacher, &tm, &err))) goto out;
    if (kd && dc_model_config(tm)->vocab_size != dc_model_config(sm)->vocab_size) {
        rc = err_set(&err, DC_ECONFIG, "--kd: the teacher's vocabulary (%d) differs from the student's (%d)",
                     dc_model_config(tm)->vocab_size, dc_model_config(sm)->vocab_size);
        goto out;
    }
    if (kd && (rc = sft_kd(&s, tm, kd_k, kd_temp, kd_alpha, &err))) goto out;
    o.steps = (int)(sft_steps_per_epoch(&s) * epochs);
    if ((rc = trainer_init_dist(&tr, dc_model_config(sm), &o, resume ? NULL : student, (uint64_t)seed, &dl, zero, &err)))
        goto out;
    cli_dist_optim_report("distill", &tr);
    settings = cli_opts_settings(OPTS, NO);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    run_hooks h;
    sft_hooks(&s, &h);
    run_opts ro = {.name = "distill", .dir = run, .tokenizer = tokpath, .steps = o.steps, .log_every = (int)log_every,
                   .save_every = (int)save_every, .keep = (int)keep, .explode = 1, .resume_dir = resume ? ckdir : NULL,
                   .settings = settings, .stop = &g_stop};
    if ((rc = run_loop(&tr, &ro, &h, &err))) goto out;
    if (spec && eval_n > 0) {
        dc_model *view;
        if ((rc = trainer_model(&tr, &view, &err))) goto out;
        rc = student_eval(view, tk, &t, eval_n, dopts.max_new, dopts.style, &after, &err);
        trainer_model_free(view);
        if (rc) goto out;
        if (cli_lead()) fprintf(stderr, "student after: held-out accuracy %.3f, format %.3f\n", after.pass1, after.format);
        if (cli_lead()) printf("{\"task\": \"%s\", \"n\": %d, \"before\": %.4f, \"after\": %.4f, \"format_before\": %.4f, "
               "\"format_after\": %.4f}\n", t.name, after.n, before.pass1, after.pass1, before.format, after.format);
    }
out:
    if (rc) cli_error("distill", &err);
    for (int i = 0; i < nprompts; i++) free(prompts[i]);
    free(prompts);
    cJSON_Delete(state);
    cJSON_Delete(settings);
    trainer_free(&tr);
    sft_close(&s);
    sft_set_free(&d);
    dc_model_free(sm);
    dc_model_free(tm);
    dc_tokenizer_free(tk);
    task_close(&t);
    dist_free(&dl);
    return rc ? 1 : 0;
}
