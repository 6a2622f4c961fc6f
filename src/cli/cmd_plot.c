/* cmd_plot.c — `deepc plot RUN`: the loss curves of RUN/metrics.jsonl drawn
 * to a PNG with gnuplot (Debian's gnuplot-nox). */
#include <cjson/cJSON.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include "base/err.h"
#include "base/file.h"
#include "cli/cli.h"

static const char *HELP =
    "usage: deepc plot RUN [--out FILE.png]\n"
    "\n"
    "Draws loss, MTP loss and validation loss against the step from RUN/metrics.jsonl\n"
    "into FILE (default RUN/loss.png), with gnuplot. For a `deepc grpo` run it draws the\n"
    "reward curve instead: mean reward, sample accuracy, format rate and held-out greedy\n"
    "accuracy (default RUN/reward.png).\n";

/* gp_quote: s as a gnuplot single-quoted string ('' stands for ') */
static void gp_quote(char *out, size_t cap, const char *s) {
    size_t k = 0;
    out[k++] = '\'';
    for (; *s && k + 3 < cap; s++) {
        if (*s == '\'') out[k++] = '\'';
        out[k++] = *s;
    }
    out[k++] = '\'';
    out[k] = 0;
}

/* run_gnuplot: 0 on success, 127 when gnuplot cannot be started, else 1;
 * rl: the reward columns (step reward accuracy format eval_accuracy) */
static int run_gnuplot(const char *out, const char *title, const char *data, int rl) {
    int fd[2];
    if (pipe(fd) != 0) return 1;
    pid_t pid = fork();
    if (pid < 0) {
        close(fd[0]), close(fd[1]);
        return 1;
    }
    if (pid == 0) {
        dup2(fd[0], 0);
        close(fd[0]), close(fd[1]);
        execlp("gnuplot", "gnuplot", (char *)NULL);
        _exit(127);
    }
    close(fd[0]);
    FILE *g = fdopen(fd[1], "w");
    if (g && rl) {
        fprintf(g,
                "set terminal pngcairo size 900,540\nset output %s\nset datafile missing 'NaN'\n"
                "set xlabel 'step'\nset ylabel 'mean over the step'\nset grid\nset key top left\nset yrange [0:*]\n"
                "set title 'deepc grpo: '.%s noenhanced\n"
                "plot %s using 1:2 with lines lw 2 title 'reward', '' using 1:3 with lines lw 1 title 'sample accuracy',"
                " '' using 1:4 with lines lw 1 title 'format', '' using 1:5 with linespoints pt 7 title 'held-out greedy accuracy'\n",
                out, title, data);
        fclose(g);
    } else if (g) {
        fprintf(g,
                "set terminal pngcairo size 900,540\nset output %s\nset datafile missing 'NaN'\n"
                "set xlabel 'step'\nset ylabel 'cross-entropy (nats)'\nset grid\nset key top right\n"
                "set title 'deepc training: '.%s noenhanced\n"
                "plot %s using 1:2 with lines lw 2 title 'train loss', '' using 1:3 with lines lw 1 title 'MTP loss',"
                " '' using 1:4 with linespoints pt 7 title 'val loss'\n",
                out, title, data);
        fclose(g);
    } else {
        close(fd[1]);
    }
    int st;
    if (waitpid(pid, &st, 0) < 0 || !WIFEXITED(st)) return 1;
    return WEXITSTATUS(st) == 127 ? 127 : WEXITSTATUS(st) != 0;
}

int cmd_plot(int argc, char **argv) {
    static const struct option LONG[] = {{"out", 1, 0, 'o'}, {"help", 0, 0, 'h'}, {0, 0, 0, 0}};
    const char *out = NULL;
    int ch;
    optind = 0;
    while ((ch = getopt_long(argc, argv, "o:h", LONG, NULL)) != -1) {
        if (ch == 'o') out = optarg;
        else if (ch == 'h') return fputs(HELP, stdout), 0;
        else return cli_usage_error("plot", "bad option");
    }
    if (optind + 1 != argc) return cli_usage_error("plot", "give one RUN directory");
    const char *run = argv[optind];
    char mpath[4096], dpath[4096], opath[4096], *txt;
    size_t n;
    dc_err err = {0};
    snprintf(mpath, sizeof mpath, "%s/metrics.jsonl", run);
    snprintf(dpath, sizeof dpath, "%s/.plot.dat", run);
    snprintf(opath, sizeof opath, "%s", out ? out : "");
    if (!out) snprintf(opath, sizeof opath, "%s/loss.png", run);
    if (file_read_all(mpath, &txt, &n, &err)) return cli_error("plot", &err);
    FILE *d = fopen(dpath, "w");
    if (!d) {
        free(txt);
        return cli_usage_error("plot", "cannot write %s", dpath);
    }
    int rows = 0, line = 0, rl = strstr(txt, "\"reward\": ") != NULL;
    if (!out && rl) snprintf(opath, sizeof opath, "%s/reward.png", run);
    for (char *s = strtok(txt, "\n"); s; s = strtok(NULL, "\n")) {
        line++;
        cJSON *j = cJSON_Parse(s);
        const cJSON *st = cJSON_GetObjectItem(j, "step"), *l = cJSON_GetObjectItem(j, "loss"),
                    *m = cJSON_GetObjectItem(j, "mtp_loss"), *v = cJSON_GetObjectItem(j, "val_loss");
        if (!j) fprintf(stderr, "deepc plot: %s:%d: not JSON, skipped\n", mpath, line);
        if (rl && cJSON_IsNumber(st)) {
            const char *k[] = {"reward", "accuracy", "format", "eval_accuracy"};
            fprintf(d, "%g", st->valuedouble);
            for (int i = 0; i < 4; i++) {
                const cJSON *v = cJSON_GetObjectItem(j, k[i]);
                if (cJSON_IsNumber(v)) fprintf(d, " %g", v->valuedouble);
                else fprintf(d, " NaN");
            }
            fprintf(d, "\n");
            rows++;
        } else if (cJSON_IsNumber(st) && cJSON_IsNumber(l)) {
            fprintf(d, "%g %g %g ", st->valuedouble, l->valuedouble, cJSON_IsNumber(m) ? m->valuedouble : 0.0 / 0.0);
            if (cJSON_IsNumber(v)) fprintf(d, "%g\n", v->valuedouble);
            else fprintf(d, "NaN\n");
            rows++;
        }
        cJSON_Delete(j);
    }
    fclose(d);
    free(txt);
    if (!rows) return err_set(&err, DC_EFORMAT, "%s: no logged steps", mpath), cli_error("plot", &err);
    /* gnuplot reads the script on its stdin; no shell sees the paths, which
     * go in as gnuplot strings (single-quoted, a quote doubled) */
    char qo[8300], qr[8300], qd[8300];
    gp_quote(qo, sizeof qo, opath), gp_quote(qr, sizeof qr, run), gp_quote(qd, sizeof qd, dpath);
    int rc = run_gnuplot(qo, qr, qd, rl);
    remove(dpath);
    if (rc) {
        err_set(&err, DC_EIO, rc == 127 ? "gnuplot is not installed (scripts/deps.sh installs Debian's gnuplot-nox)"
                                        : "gnuplot failed to draw %s", opath);
        return cli_error("plot", &err);
    }
    printf("wrote %s (%d points)\n", opath, rows);
    return 0;
}
