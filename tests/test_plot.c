/*
 * test_plot.c — `deepc plot` (src/cli/cmd_plot.c) on run directories whose
 * names hold what gnuplot's or a shell's quoting would trip on (issue 14,
 * defect 2): a newline, quotes of both kinds, backslashes and $(...). Each
 * must give a PNG and run nothing: the names carry `system(...)` payloads
 * that would create a marker file; so must all of them on one plot (several
 * runs, their names as the curves' labels). Skipped when gnuplot is not
 * installed.
 */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include "harness.h"

/* deepc plot argv[..] run in directory dir, output to /dev/null; exit status */
static int plot_in(const char *dir, const char *run, const char *out) {
    char bin[1024];
    if (!realpath(DC_BUILD "/deepc", bin)) return -1;
    pid_t pid = fork();
    if (pid == 0) {
        int nul = open("/dev/null", O_WRONLY);
        dup2(nul, 1), dup2(nul, 2);
        if (chdir(dir) != 0) _exit(126);
        if (out) execl(bin, bin, "plot", run, "--out", out, (char *)NULL);
        else execl(bin, bin, "plot", run, (char *)NULL);
        _exit(127);
    }
    int st;
    if (pid < 0 || waitpid(pid, &st, 0) < 0) return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

/* deepc plot with the argument vector args (n, NULL-terminated after), in dir */
static int plot_argv(const char *dir, char **args) {
    char bin[1024];
    if (!realpath(DC_BUILD "/deepc", bin)) return -1;
    pid_t pid = fork();
    if (pid == 0) {
        int nul = open("/dev/null", O_WRONLY);
        dup2(nul, 1), dup2(nul, 2);
        if (chdir(dir) != 0) _exit(126);
        args[0] = bin;
        execv(bin, args);
        _exit(127);
    }
    int st;
    if (pid < 0 || waitpid(pid, &st, 0) < 0) return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

static int is_png(const char *path) {
    unsigned char b[8] = {0};
    int fd = open(path, O_RDONLY);
    if (fd < 0) return 0;
    ssize_t n = read(fd, b, 8);
    close(fd);
    return n == 8 && memcmp(b, "\x89PNG\r\n\x1a\n", 8) == 0;
}

static int write_metrics(const char *run) {
    char p[4096];
    snprintf(p, sizeof p, "%s/metrics.jsonl", run);
    FILE *f = fopen(p, "w");
    if (!f) return -1;
    for (int s = 1; s <= 20; s++)
        fprintf(f, "{\"step\": %d, \"loss\": %g, \"mtp_loss\": %g%s}\n", s, 5.0 / s, 6.0 / s,
                s % 5 ? "" : ", \"val_loss\": 1.5");
    return fclose(f);
}

static void hostile_names(void) {
    if (harness_sh("command -v gnuplot > /dev/null") != 0) {
        printf("    gnuplot is not installed: skipped\n");
        return;
    }
    char w[1024];
    if (!realpath(harness_tmpdir(), w)) { CHECK(0, "tmpdir"); return; }
    const char *names[] = {
        "nl\nsystem('touch P1')\n#",
        "q1'\nsystem('touch P2')\nx='",
        "q2'.system('touch P3').'",
        "bs\\\\'; system('touch P4'); #\\",
        "dq\"; system(\"touch P5\"); \"",
        "sh$(touch P6)`touch P7`",
        "nl2\n!touch P8\n",
    };
    int n = sizeof names / sizeof *names;
    for (int i = 0; i < n; i++) {
        char run[2048], png[2100];
        snprintf(run, sizeof run, "%s/%s", w, names[i]);
        CHECK(mkdir(run, 0755) == 0 && write_metrics(run) == 0, "setup %d", i);
        CHECK(plot_in(w, names[i], NULL) == 0, "name %d: plot failed", i);
        snprintf(png, sizeof png, "%s/loss.png", run);
        CHECK(is_png(png), "name %d: no PNG written", i);
        /* the same name as --out */
        snprintf(png, sizeof png, "%s/%s.png", w, names[i]);
        CHECK(plot_in(w, names[i], png) == 0 && is_png(png), "name %d: --out with the name failed", i);
    }
    /* all of them on one plot: their names are the curves' labels */
    char *args[16] = {NULL, "plot"}, all[1100];
    for (int i = 0; i < n; i++) args[2 + i] = (char *)names[i];
    snprintf(all, sizeof all, "%s/all.png", w);
    args[2 + n] = "--out", args[3 + n] = all, args[4 + n] = NULL;
    CHECK(plot_argv(w, args) == 0 && is_png(all), "several runs on one plot");
    args[2 + n] = NULL;
    CHECK(plot_argv(w, args) == 2, "several runs without --out is a usage error");
    for (int k = 1; k <= 8; k++) {
        char p[1100];
        snprintf(p, sizeof p, "%s/P%d", w, k);
        CHECK(access(p, F_OK) != 0, "P%d exists: a command in a run name was run", k);
    }
    /* no temporary file is left beside the outputs */
    CHECK(harness_sh("ls -a '%s' | grep -q tmp", w) != 0, "a temporary file was left in %s", w);
}

static void errors(void) {
    char w[1024];
    if (!realpath(harness_tmpdir(), w)) { CHECK(0, "tmpdir"); return; }
    CHECK(plot_in(w, "no-such-run", NULL) == 1, "a missing run is exit 1");
    char run[1100];
    snprintf(run, sizeof run, "%s/empty", w);
    CHECK(mkdir(run, 0755) == 0 && harness_sh("printf 'not json\\n{\"step\": 1}\\n' > '%s/metrics.jsonl'", run) == 0, "setup");
    CHECK(plot_in(w, "empty", NULL) == 1, "no logged steps is exit 1");
    /* several runs: a missing one, or a GRPO run beside a loss run, is exit 1 */
    snprintf(run, sizeof run, "%s/ok", w);
    CHECK(mkdir(run, 0755) == 0 && write_metrics(run) == 0, "setup ok");
    snprintf(run, sizeof run, "%s/rl", w);
    CHECK(mkdir(run, 0755) == 0 && harness_sh("printf '{\"step\": 1, \"reward\": 0.5}\\n' > '%s/metrics.jsonl'", run) == 0,
          "setup rl");
    char *a1[] = {NULL, "plot", "ok", "no-such-run", "--out", "x.png", NULL};
    char *a2[] = {NULL, "plot", "ok", "rl", "--out", "x.png", NULL};
    CHECK(plot_argv(w, a1) == 1, "a missing run among several is exit 1");
    CHECK(plot_argv(w, a2) == 1, "a GRPO run beside a loss run is exit 1");
}

int main(void) {
    RUN(hostile_names);
    RUN(errors);
    return harness_done();
}
