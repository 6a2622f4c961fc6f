/*
 * peer.c — llama.cpp measured in the same run as deepc (`deepc bench --peer
 * DIR`): its llama-bench (prefill / decode tokens/s) and llama-batched-bench
 * (aggregate decode per batch size) on the same GGUF file, run as child
 * processes without a shell (paths go to exec as they are), their output
 * parsed. A peer that is missing or fails gives no figure, never an error.
 */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>
#include "cli/bench.h"

extern char **environ;

/* run argv (argv[0] a path), call line() on each line of its stdout + stderr.
 * posix_spawn, not fork: fork marked every page of this process (the model's
 * buffers, the activations, the KV cache) copy-on-write until the child's
 * exec, and each of deepc's next writes to them faulted: mini Q4_K_M, one
 * thread, prefill 64 ran 1087 tokens/s alone and 535-580 in the rounds after
 * each llama-bench run. glibc's posix_spawn shares the memory (CLONE_VM) up
 * to the exec. */
static void run_lines(char *const argv[], void (*line)(void *ctx, const char *l), void *ctx) {
    int fd[2];
    if (pipe(fd)) return;
    posix_spawn_file_actions_t fa;
    pid_t pid = -1;
    if (!posix_spawn_file_actions_init(&fa)) {
        if (!posix_spawn_file_actions_adddup2(&fa, fd[1], 1) && !posix_spawn_file_actions_adddup2(&fa, fd[1], 2) &&
            !posix_spawn_file_actions_addclose(&fa, fd[0]) && posix_spawn(&pid, argv[0], &fa, NULL, argv, environ))
            pid = -1;
        posix_spawn_file_actions_destroy(&fa);
    }
    close(fd[1]);
    FILE *f = pid > 0 ? fdopen(fd[0], "r") : NULL;
    char buf[4096];
    while (f && fgets(buf, sizeof buf, f)) line(ctx, buf);
    if (f) fclose(f);
    else close(fd[0]);
    if (pid > 0) waitpid(pid, NULL, 0);
}

static void list(char *out, size_t cap, const int *v, int n) {
    out[0] = 0;
    for (int i = 0; i < n; i++) snprintf(out + strlen(out), cap - strlen(out), "%s%d", i ? "," : "", v[i]);
}

/* ---------------------------------------------------------------- llama-bench */

typedef struct lb_ctx {
    const int *pre;
    int npre;
    double *pp, *tg;
} lb_ctx;

/* one -o jsonl line: {"n_prompt": P, "n_gen": G, "avg_ts": X, ...} */
static void lb_line(void *vctx, const char *l) {
    lb_ctx *c = vctx;
    cJSON *j = l[0] == '{' ? cJSON_Parse(l) : NULL;
    if (!j) return;
    const cJSON *np = cJSON_GetObjectItem(j, "n_prompt"), *ng = cJSON_GetObjectItem(j, "n_gen"),
                *ts = cJSON_GetObjectItem(j, "avg_ts");
    if (cJSON_IsNumber(np) && cJSON_IsNumber(ng) && cJSON_IsNumber(ts)) {
        if (ng->valueint > 0) *c->tg = ts->valuedouble;
        else
            for (int i = 0; i < c->npre; i++)
                if (c->pre[i] == np->valueint) c->pp[i] = ts->valuedouble;
    }
    cJSON_Delete(j);
}

void peer_llama_bench(const char *dir, const char *model, const int *pre, int npre, int gen, int depth, int thr,
                      int reps, double *pp, double *tg) {
    char exe[4096], p[128], n[16], t[16], r[16], d[16];
    snprintf(exe, sizeof exe, "%s/llama-bench", dir);
    list(p, sizeof p, pre, npre);
    snprintf(n, sizeof n, "%d", gen), snprintf(t, sizeof t, "%d", thr), snprintf(r, sizeof r, "%d", reps);
    snprintf(d, sizeof d, "%d", depth);
    for (int i = 0; i < npre; i++) pp[i] = 0;
    *tg = 0;
    char *argv[] = {exe, "-m", (char *)model, "-p", p, "-n", n, "-t", t, "-r", r, "-o", "jsonl", "-d", d, NULL};
    lb_ctx c = {pre, npre, pp, tg};
    run_lines(argv, lb_line, &c);
}

/* ---------------------------------------------------------------- llama-batched-bench */

typedef struct bb_ctx {
    const int *B;
    int nb;
    double *s_tg;
} bb_ctx;

/* a table row: | PP | TG | B | N_KV | T_PP s | S_PP t/s | T_TG s | S_TG t/s | ... */
static void bb_line(void *vctx, const char *l) {
    bb_ctx *c = vctx;
    int pp, tg, pl, nkv;
    double tpp, spp, ttg, stg;
    if (sscanf(l, "| %d | %d | %d | %d | %lf | %lf | %lf | %lf |", &pp, &tg, &pl, &nkv, &tpp, &spp, &ttg, &stg) == 8)
        for (int i = 0; i < c->nb; i++)
            if (c->B[i] == pl) c->s_tg[i] = stg;
}

void peer_batched_bench(const char *dir, const char *model, const int *B, int nb, int prompt, int steps, int thr,
                        double *s_tg) {
    char exe[4096], npl[128], ntg[16], npp[16], t[16], ctx[32];
    snprintf(exe, sizeof exe, "%s/llama-batched-bench", dir);
    list(npl, sizeof npl, B, nb);
    snprintf(ntg, sizeof ntg, "%d", steps), snprintf(npp, sizeof npp, "%d", prompt), snprintf(t, sizeof t, "%d", thr);
    snprintf(ctx, sizeof ctx, "%d", (prompt + steps + 8) * B[nb - 1]);
    for (int i = 0; i < nb; i++) s_tg[i] = 0;
    char *argv[] = {exe, "-m", (char *)model, "-c", ctx, "-b", "2048", "-ub", "512", "-npp", npp, "-ntg", ntg,
                    "-npl", npl, "-t", t, "--no-mmap", NULL};
    bb_ctx c = {B, nb, s_tg};
    run_lines(argv, bb_line, &c);
}
