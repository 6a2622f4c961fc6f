/* cmd_plot.c — `deepc plot RUN`: the loss curves of RUN/metrics.jsonl drawn
 * to a PNG with gnuplot (Debian's gnuplot-nox); `deepc plot RUN1 RUN2 ...
 * --out F.png`: the train and validation loss of several runs on one plot
 * (e.g. the same model trained in f32, bf16 and fp8).
 *
 * No path ever enters gnuplot's script (issue 14, defect 2: a newline in the
 * run's name ended a quoted string and the next line ran as a command): the
 * numbers go in as an inline data block, the PNG comes back on gnuplot's
 * stdout into a file deepc opened itself (written atomically), and the
 * title is the run's name with every character outside [A-Za-z0-9._-/+ ]
 * shown as '?'. */
#include <cjson/cJSON.h>
#include <ctype.h>
#include <getopt.h>
#include <math.h>
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
    "       deepc plot RUN1 RUN2 ... --out FILE.png\n"
    "\n"
    "Draws loss, MTP loss and validation loss against the step from RUN/metrics.jsonl\n"
    "into FILE (default RUN/loss.png), with gnuplot. For a `deepc grpo` run it draws the\n"
    "reward curve instead: mean reward, sample accuracy, format rate and held-out greedy\n"
    "accuracy (default RUN/reward.png).\n"
    "With several runs: each run's train loss (line) and validation loss (points), or\n"
    "its mean reward for GRPO runs, on one plot, labelled by the run's directory.\n";

/* gp_title: the run's name for the title, reduced to characters that need
 * no quoting at all (others become '?'): no path byte ever reaches
 * gnuplot's parser as anything but plain title text */
static void gp_title(char *out, size_t cap, const char *run) {
    size_t k = 0;
    for (const unsigned char *p = (const unsigned char *)run; *p && k + 1 < cap && k < 80; p++)
        out[k++] = (isalnum(*p) || strchr("._-/+ ", *p)) ? (char)*p : '?';
    out[k] = 0;
}

/* gnuplot_child: gnuplot reading its script on stdin and writing the PNG to
 * stdout (into png, already open); returns its pid, -1 on failure */
static pid_t gnuplot_child(int png, int *script_fd) {
    int fd[2];
    if (pipe(fd) != 0) return -1;
    pid_t pid = fork();
    if (pid < 0) {
        close(fd[0]), close(fd[1]);
        return -1;
    }
    if (pid == 0) {
        dup2(fd[0], 0);
        dup2(png, 1);
        close(fd[0]), close(fd[1]), close(png);
        execlp("gnuplot", "gnuplot", (char *)NULL);
        _exit(127);
    }
    close(fd[0]);
    *script_fd = fd[1];
    return pid;
}

/* gnuplot_end: the script's stream closed (or, when fdopen failed, its
 * descriptor), then the child's end: 0 when gnuplot succeeded, 127 when it
 * could not be run, 1 otherwise */
static int gnuplot_end(pid_t pid, FILE *g, int sfd) {
    if (g) fclose(g);
    else close(sfd);
    int st;
    if (waitpid(pid, &st, 0) < 0 || !WIFEXITED(st)) return 1;
    return WEXITSTATUS(st) == 127 ? 127 : WEXITSTATUS(st) != 0;
}

/* run_gnuplot: draw rows (step, loss, mtp, val; NaN for missing; with rl:
 * step, reward, accuracy, format, held-out accuracy) into the open file png.
 * The script holds only numbers (an inline data block) and the sanitised
 * title; the output file is ours, not a name gnuplot opens.
 * 0 on success, 127 when gnuplot cannot be started, else 1. */
static int run_gnuplot(int png, const char *title, const double (*rows)[5], int n, int rl) {
    int sfd;
    pid_t pid = gnuplot_child(png, &sfd);
    if (pid < 0) return 1;
    FILE *g = fdopen(sfd, "w");
    if (g) {
        fprintf(g, "$d << EOD\n");
        for (int i = 0; i < n; i++)
            fprintf(g, "%.9g %.9g %.9g %.9g %.9g\n", rows[i][0], rows[i][1], rows[i][2], rows[i][3], rows[i][4]);
        if (rl)
            fprintf(g,
                    "EOD\nset terminal pngcairo size 900,540\nset datafile missing 'NaN'\n"
                    "set xlabel 'step'\nset ylabel 'mean over the step'\nset grid\nset key top left\nset yrange [0:*]\n"
                    "set title 'deepc grpo: %s' noenhanced\n"
                    "plot $d using 1:2 with lines lw 2 title 'reward', $d using 1:3 with lines lw 1 title 'sample accuracy',"
                    " $d using 1:4 with lines lw 1 title 'format', $d using 1:5 with linespoints pt 7 title "
                    "'held-out greedy accuracy'\n",
                    title);
        else
            fprintf(g,
                "EOD\nset terminal pngcairo size 900,540\nset datafile missing 'NaN'\n"
                "set xlabel 'step'\nset ylabel 'cross-entropy (nats)'\nset grid\nset key top right\n"
                "set title 'deepc training: %s' noenhanced\n"
                "plot $d using 1:2 with lines lw 2 title 'train loss', $d using 1:3 with lines lw 1 title 'MTP loss',"
                " $d using 1:4 with linespoints pt 7 title 'val loss'\n",
                title);
    }
    return gnuplot_end(pid, g, sfd);
}

/* run_gnuplot_many: k runs (rows[i], n[i], label[i] sanitised) on one plot:
 * train loss lines and val loss points, or the mean reward (rl); numbers
 * only in the script, as run_gnuplot. Same return values. */
static int run_gnuplot_many(int png, char (*label)[128], double (**rows)[5], const int *n, int k, int rl) {
    int sfd;
    pid_t pid = gnuplot_child(png, &sfd);
    if (pid < 0) return 1;
    FILE *g = fdopen(sfd, "w");
    if (g) {
        for (int r = 0; r < k; r++) {
            fprintf(g, "$d%d << EOD\n", r);
            for (int i = 0; i < n[r]; i++)
                fprintf(g, "%.9g %.9g %.9g %.9g %.9g\n", rows[r][i][0], rows[r][i][1], rows[r][i][2], rows[r][i][3],
                        rows[r][i][4]);
            fprintf(g, "EOD\n");
        }
        fprintf(g, "set terminal pngcairo size 900,540\nset datafile missing 'NaN'\nset xlabel 'step'\n"
                   "set ylabel '%s'\nset grid\nset key top right\nset title 'deepc: %d runs' noenhanced\nplot ",
                rl ? "mean reward" : "cross-entropy (nats)", k);
        for (int r = 0; r < k; r++) {
            fprintf(g, "%s$d%d using 1:2 with lines lw 2 lc %d title '%s' noenhanced", r ? ", " : "", r, r + 1, label[r]);
            int val = 0;
            for (int i = 0; !rl && i < n[r]; i++) val |= isfinite(rows[r][i][3]);
            if (val) fprintf(g, ", $d%d using 1:4 with points pt 7 lc %d title '%s val' noenhanced", r, r + 1, label[r]);
        }
        fprintf(g, "\n");
    }
    return gnuplot_end(pid, g, sfd);
}

/* row_of: one logged step's columns (see run_gnuplot); 0 when it is none */
static int row_of(const cJSON *j, int rl, double *r) {
    static const char *const LOSS[] = {"step", "loss", "mtp_loss", "val_loss", "step"};
    static const char *const RL[] = {"step", "reward", "accuracy", "format", "eval_accuracy"};
    const char *const *k = rl ? RL : LOSS;
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(j, "step"), *first = cJSON_GetObjectItemCaseSensitive(j, k[1]);
    if (!cJSON_IsNumber(st) || !cJSON_IsNumber(first)) return 0;
    for (int c = 0; c < 5; c++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, k[c]);
        r[c] = cJSON_IsNumber(v) ? v->valuedouble : NAN;
    }
    return 1;
}

/* read_metrics: the logged steps of path as rows (malloc'd); *rl: the run is GRPO's */
static int read_metrics(const char *path, double (**rows)[5], int *n, int *rl, dc_err *err) {
    char *txt;
    size_t len;
    int rc = file_read_all(path, &txt, &len, err);
    if (rc) return rc;
    int cap = 64, line = 0;
    double(*r)[5] = malloc(sizeof *r * cap);
    *n = 0;
    *rl = strstr(txt, "\"reward\": ") != NULL;
    for (char *s = strtok(txt, "\n"); s && r; s = strtok(NULL, "\n")) {
        line++;
        cJSON *j = cJSON_Parse(s);
        double row[5];
        if (!j) fprintf(stderr, "deepc plot: %s:%d: not JSON, skipped\n", path, line);
        if (row_of(j, *rl, row)) {
            if (*n == cap) {
                double(*nr)[5] = realloc(r, sizeof *r * (cap *= 2));
                if (!nr) free(r);
                r = nr;
            }
            if (r) memcpy(r[(*n)++], row, sizeof row);
        }
        cJSON_Delete(j);
    }
    free(txt);
    if (!r) return err_set(err, DC_ENOMEM, "%s: out of memory", path);
    *rows = r;
    return DC_OK;
}

/* plot_many: the runs' curves into out (see HELP); the CLI's exit code */
static int plot_many(char **runs, int k, const char *out) {
    if (k > 16) return cli_usage_error("plot", "at most 16 runs on one plot, not %d", k);
    double(*rows[16])[5] = {0};
    int n[16] = {0}, rl = -1, rc = 0;
    char label[16][128], mpath[4096];
    dc_err err = {0};
    for (int i = 0; i < k && !rc; i++) {
        int r1 = 0;
        if ((rc = path_join(mpath, sizeof mpath, runs[i], "metrics.jsonl", &err))) break;
        if ((rc = read_metrics(mpath, &rows[i], &n[i], &r1, &err))) break;
        if (!n[i]) rc = err_set(&err, DC_EFORMAT, "%s: no logged steps", mpath);
        else if (rl >= 0 && r1 != rl)
            rc = err_set(&err, DC_EARG, "%s: a %s run cannot share a plot with %s runs", runs[i], r1 ? "GRPO" : "loss",
                         rl ? "GRPO" : "loss");
        rl = r1;
        char nm[4096]; /* the label: the directory's own name, trailing slashes dropped */
        snprintf(nm, sizeof nm, "%s", runs[i]);
        for (size_t l = strlen(nm); l > 1 && nm[l - 1] == '/'; l--) nm[l - 1] = 0;
        const char *base = strrchr(nm, '/');
        gp_title(label[i], sizeof label[i], base && base[1] ? base + 1 : nm);
    }
    afile a;
    if (!rc) rc = afile_open(&a, out, &err);
    if (!rc) {
        fflush(a.f);
        int g = run_gnuplot_many(fileno(a.f), label, rows, n, k, rl);
        if (g) {
            afile_abort(&a);
            rc = err_set(&err, DC_EIO, g == 127 ? "gnuplot is not installed (scripts/deps.sh installs Debian's "
                                                  "gnuplot-nox)" : "gnuplot failed to draw %s", out);
        } else {
            rc = afile_commit(&a, &err);
        }
    }
    for (int i = 0; i < k; i++) free(rows[i]);
    if (rc) return cli_error("plot", &err);
    printf("wrote %s (%d runs)\n", out, k);
    return 0;
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
    if (optind >= argc) return cli_usage_error("plot", "give a RUN directory");
    if (argc - optind > 1) {
        if (!out) return cli_usage_error("plot", "several runs need --out FILE.png");
        return plot_many(argv + optind, argc - optind, out);
    }
    const char *run = argv[optind];
    char mpath[4096], opath[4096], title[128];
    dc_err err = {0};
    double(*rows)[5] = NULL;
    int n = 0, rc, rl = 0;
    if (path_join(mpath, sizeof mpath, run, "metrics.jsonl", &err)) return cli_error("plot", &err);
    if ((rc = read_metrics(mpath, &rows, &n, &rl, &err))) return cli_error("plot", &err);
    if (out) snprintf(opath, sizeof opath, "%s", out);
    else if (path_join(opath, sizeof opath, run, rl ? "reward.png" : "loss.png", &err)) {
        free(rows);
        return cli_error("plot", &err);
    }
    if (!n) {
        free(rows);
        return err_set(&err, DC_EFORMAT, "%s: no logged steps", mpath), cli_error("plot", &err);
    }
    afile a;
    if ((rc = afile_open(&a, opath, &err))) {
        free(rows);
        return cli_error("plot", &err);
    }
    fflush(a.f);
    gp_title(title, sizeof title, run);
    rc = run_gnuplot(fileno(a.f), title, (const double(*)[5])rows, n, rl);
    free(rows);
    if (rc) {
        afile_abort(&a);
        err_set(&err, DC_EIO, rc == 127 ? "gnuplot is not installed (scripts/deps.sh installs Debian's gnuplot-nox)"
                                        : "gnuplot failed to draw %s", opath);
        return cli_error("plot", &err);
    }
    if (afile_commit(&a, &err)) return cli_error("plot", &err);
    printf("wrote %s (%d points)\n", opath, n);
    return 0;
}
