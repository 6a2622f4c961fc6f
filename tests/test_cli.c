/* test_cli.c — the deepc binary as users and other tools drive it: exit codes,
 * error messages, and `deepc logits` output against the reference. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "base/file.h"
#include "harness.h"

#define BIN DC_BUILD "/deepc"

/* run a command, capture stdout+stderr into *out (caller frees), return exit status */
static int run(char **out, const char *fmt, const char *arg) {
    char cmd[2048], log[600];
    snprintf(log, sizeof log, "%s/out.txt", harness_tmpdir());
    snprintf(cmd, sizeof cmd, fmt, arg);
    int rc = harness_sh("%s > %s 2>&1", cmd, log);
    size_t n;
    if (file_read_all(log, out, &n, NULL)) *out = strdup("");
    return rc;
}

static void exit_codes(void) {
    char *o;
    CHECK(run(&o, BIN " --help%s", "") == 0 && strstr(o, "logits"), "--help lists commands: %s", o);
    free(o);
    CHECK(run(&o, BIN " frobnicate%s", "") == 2 && strstr(o, "unknown command"), "unknown command: %s", o);
    free(o);
    const char *cmds[] = {"init", "info", "logits"};
    for (int i = 0; i < 3; i++) {
        CHECK(run(&o, BIN " %s --help", cmds[i]) == 0 && strstr(o, "usage: deepc"), "%s --help: %s", cmds[i], o);
        free(o);
    }
    CHECK(run(&o, BIN " logits -m /nonexistent/m --ids 1,2%s", "") == 1 && strstr(o, "/nonexistent/m") &&
              strstr(o, "error"),
          "missing model: %s", o);
    free(o);
    CHECK(run(&o, BIN " logits -m " DC_BUILD "/ref/v3_f32 --ids 1,x,3%s", "") == 1 && strstr(o, "--ids"), "bad ids: %s", o);
    free(o);
    CHECK(run(&o, BIN " logits -m " DC_BUILD "/ref/v3_f32 --ids 1,99999%s", "") == 1 && strstr(o, "99999"),
          "id out of range: %s", o);
    free(o);
    CHECK(run(&o, BIN " logits -m " DC_BUILD "/ref/v2lite_f32 --ids 1,2 --mtp%s", "") == 1 && strstr(o, "MTP"),
          "--mtp without MTP: %s", o);
    free(o);
    CHECK(run(&o, BIN " logits -m " DC_BUILD "/ref/v3_f32 --ids 1 --attn fast%s", "") == 2 && strstr(o, "--attn"),
          "bad --attn: %s", o);
    free(o);
    CHECK(run(&o, BIN " init --preset tiny --dtype f4 --out %s/x", harness_tmpdir()) == 1 && strstr(o, "f4"),
          "bad dtype: %s", o);
    free(o);
    CHECK(run(&o, BIN " info --preset v3%s", "") == 0 && strstr(o, "671.03G total") && strstr(o, "absorbed 35136"),
          "info v3: %s", o);
    free(o);
    /* info computes nothing: a thread count is refused, not silently ignored */
    CHECK(run(&o, BIN " info --preset tiny -t 2%s", "") == 2 && strstr(o, "info"), "info -t: %s", o);
    free(o);
}

static float *load(const char *name, size_t *n) {
    char p[700], *b;
    snprintf(p, sizeof p, "%s/%s", harness_tmpdir(), name);
    if (file_read_all(p, &b, n, NULL)) return NULL;
    *n /= 4;
    return (float *)b;
}

static double md(const float *a, const float *b, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) m = fmax(m, fabs((double)a[i] - b[i]));
    return m;
}

/* the logits file matches the reference for every thread count and path */
static void logits_file(void) {
    char *txt;
    size_t n;
    CHECK(file_read_all(DC_BUILD "/ref/v3_f32/case.json", &txt, &n, NULL) == 0, "case.json");
    if (!txt) return;
    /* "ids": [a, b, ...] -> "a,b,..." */
    char ids[1024] = "";
    const char *p = strstr(txt, "\"ids\"");
    p = p ? strchr(p, '[') : NULL;
    for (p = p ? p + 1 : ""; *p && *p != ']'; p++)
        if ((*p >= '0' && *p <= '9') || *p == ',') strncat(ids, p, 1);
    free(txt);
    /* the reference's float32 cache: --kv-type f32 (bf16, the default, is measured in test_engine.c) */
    const char *variants[] = {"-t 1 --kv-type f32", "-t 2 --kv-type f32", "-t 2 --attn naive",
                              "-t 1 --decode-from 4 --kv-type f32", "-t 2 --attn naive --decode-from 2"};
    size_t nw;
    float *want = NULL;
    char wp[] = DC_BUILD "/ref/v3_f32/logits.f32";
    CHECK(file_read_all(wp, (char **)&want, &nw, NULL) == 0, "reference logits");
    nw /= 4;
    for (int v = 0; v < 5; v++) {
        char cmd[2048];
        snprintf(cmd, sizeof cmd, BIN " logits -m " DC_BUILD "/ref/v3_f32 --ids %s %s --out %s/l.f32", ids, variants[v],
                 harness_tmpdir());
        CHECK(harness_sh("%s", cmd) == 0, "%s", cmd);
        size_t ng;
        float *got = load("l.f32", &ng);
        CHECK(got && ng == nw, "%s: %zu numbers, want %zu", variants[v], got ? ng : 0, nw);
        if (got && ng == nw) CHECK(md(got, want, nw) <= 1e-4, "%s: max|diff| %g", variants[v], md(got, want, nw));
        free(got);
    }
    free(want);
}

/* convert / quantize as users run them: a checkpoint to GGUF and back, the
 * logits of every form agree, bad arguments and files give errors */
static void gguf_commands(void) {
    const char *d = harness_tmpdir();
    char *o;
    CHECK(harness_sh(BIN " init --preset tiny --seed 3 --out %s/g > /dev/null", d) == 0, "init");
    CHECK(harness_sh(BIN " convert -m %s/g --to gguf --type f32 -o %s/g.gguf > /dev/null 2>&1", d, d) == 0, "convert f32");
    CHECK(harness_sh(BIN " quantize -m %s/g.gguf -o %s/g8.gguf --type q8_0 > /dev/null 2>&1", d, d) == 0, "quantize");
    CHECK(harness_sh(BIN " convert -m %s/g.gguf --to hf -o %s/back > /dev/null 2>&1", d, d) == 0, "convert back");
    const char *forms[] = {"g", "g.gguf", "back", "g8.gguf"};
    float *ref = NULL;
    size_t nr = 0;
    for (int i = 0; i < 4; i++) {
        char cmd[1024], name[64];
        snprintf(name, sizeof name, "l%d.f32", i);
        snprintf(cmd, sizeof cmd, BIN " logits -m %s/%s --ids 1,2,3,4,5 --mtp --out %s/%s 2> /dev/null", d, forms[i], d,
                 name);
        CHECK(harness_sh("%s", cmd) == 0, "%s", cmd);
        size_t n;
        float *l = load(name, &n);
        if (!l) continue;
        if (!ref) ref = l, nr = n;
        else {
            double m = nr == n ? md(l, ref, n) : 1e9;
            /* f32 GGUF and back are exact; q8_0 within quantisation error */
            CHECK(i == 3 ? m < 0.05 : m == 0, "%s: max|diff| %g against the checkpoint", forms[i], m);
            free(l);
        }
    }
    free(ref);
    CHECK(run(&o, BIN " convert -m %s/g --to onnx -o x 2>&1", d) == 2 && strstr(o, "--to"), "bad --to: %s", o);
    free(o);
    CHECK(run(&o, BIN " quantize -m %s/g.gguf -o x.gguf --type q9 2>&1", d) != 0 && strstr(o, "q9"), "bad type: %s", o);
    free(o);
    /* bench --peer: llama-bench (here a script that logs its arguments and answers as llama-bench's
     * -o jsonl does, 100 / 10 tok/s times its call number) runs once a round, -r 1, on the same
     * file and threads; its figures are the rounds' means (200 / 20) */
    char script[800];
    snprintf(script, sizeof script, "%s/peer/llama-bench", d);
    harness_sh("mkdir -p %s/peer", d);
    FILE *f = fopen(script, "w");
    if (f) {
        fprintf(f, "#!/bin/sh\necho \"$@\" >> %s/peer/args\nn=$(wc -l < %s/peer/args)\n"
                   "echo '{\"n_prompt\": 4, \"n_gen\": 0, \"avg_ts\": '$((n * 100))'}'\n"
                   "echo '{\"n_prompt\": 0, \"n_gen\": 2, \"avg_ts\": '$((n * 10))'}'\n", d, d);
        fclose(f);
    }
    CHECK(harness_sh("chmod +x %s/peer/llama-bench", d) == 0, "peer script");
    char pcmd[1024];
    snprintf(pcmd, sizeof pcmd, BIN " bench -m %s/g8.gguf --prefill 4 --decode 2 --reps 3 --threads 1 --peer %s/peer", d, d);
    CHECK(run(&o, pcmd, "") == 0 && strstr(o, "llama.cpp (llama-bench, this run)    200.0 tok/s  (x") &&
              strstr(o, "llama.cpp (llama-bench, this run)    20.00 tok/s  (x") && strstr(o, "; rounds x") &&
              strstr(o, "3 rounds, llama.cpp's run and ours alternated"),
          "bench --peer: %s", o);
    free(o);
    CHECK(harness_sh("test $(grep -c -- '-p 4 -n 2 -t 1 -r 1 -o jsonl -d 0' %s/peer/args) = 3 && "
                     "test $(grep -c 'g8.gguf' %s/peer/args) = 3", d, d) == 0, "llama-bench not run once a round");
    /* bench --parallel --peer: llama-batched-bench (a script answering with its table row, S_TG = 10 B)
     * runs once for each batch size, -npl B, just before ours */
    snprintf(script, sizeof script, "%s/peer/llama-batched-bench", d);
    f = fopen(script, "w");
    if (f) {
        fprintf(f, "#!/bin/sh\necho \"$@\" >> %s/peer/bargs\nwhile [ $# -gt 0 ]; do [ \"$1\" = -npl ] && b=$2; shift; done\n"
                   "echo \"|    16 |      3 |  $b |    0 |    0.010 |  1600.00 |    0.100 |  $((b * 10)).00 |\"\n", d);
        fclose(f);
    }
    CHECK(harness_sh("chmod +x %s/peer/llama-batched-bench", d) == 0, "peer script");
    snprintf(pcmd, sizeof pcmd, BIN " bench -m %s/g8.gguf --parallel 1,3 --decode 3 --threads 1 --peer %s/peer", d, d);
    CHECK(run(&o, pcmd, "") == 0 && strstr(o, "                   10.0   ") && strstr(o, "                   30.0   "),
          "bench --parallel --peer: %s", o);
    free(o);
    CHECK(harness_sh("test $(wc -l < %s/peer/bargs) = 2 && grep -q -- '-npl 1 ' %s/peer/bargs && "
                     "grep -q -- '-npl 3 ' %s/peer/bargs", d, d, d) == 0, "llama-batched-bench not run once a batch size");
    harness_sh("head -c 1000 %s/g.gguf > %s/cut.gguf", d, d);
    CHECK(run(&o, BIN " logits -m %s/cut.gguf --ids 1 2>&1", d) == 1 && strstr(o, "cut.gguf"), "truncated: %s", o);
    free(o);
}

/* `generate --parallel 3 --seed 5`: sample i is `generate --seed 5+i` alone, with MTP too;
 * bad --parallel / --prompts are clear errors */
static void generate_parallel(void) {
    char dir[700], *o = NULL, *solo = NULL, want[64];
    snprintf(dir, sizeof dir, "%s/tiny", harness_tmpdir());
    CHECK(harness_sh(BIN " init --preset tiny --seed 3 --out %s > /dev/null", dir) == 0, "init");
    for (int mtp = 0; mtp < 2; mtp++) {
        char cmd[1024];
        snprintf(cmd, sizeof cmd, BIN " generate -m %%s --prompt-ids 5,6,7,8 -n 12 --temp 0.9 --seed 5 --parallel 3%s 2>/dev/null",
                 mtp ? " --mtp" : "");
        CHECK(run(&o, cmd, dir) == 0, "parallel: %s", o);
        for (int i = 0; i < 3; i++) {
            snprintf(cmd, sizeof cmd, BIN " generate -m %%s --prompt-ids 5,6,7,8 -n 12 --temp 0.9 --seed %d 2>/dev/null", 5 + i);
            CHECK(run(&solo, cmd, dir) == 0, "solo: %s", solo);
            snprintf(want, sizeof want, "--- [%d]", i);
            char *at = strstr(o, want), *nl = at ? strchr(at, '\n') : NULL;
            size_t n = strcspn(solo, "\n");
            CHECK(nl && !strncmp(nl + 1, solo, n) && nl[1 + n] == '\n', "mtp %d sample %d: '%s' vs alone '%s'", mtp, i,
                  nl ? nl + 1 : "(none)", solo);
            free(solo);
        }
        free(o);
    }
    /* bench --parallel runs its table (figures are not checked: never a timed test); a missing peer gives none */
    char cmd[1024];
    snprintf(cmd, sizeof cmd, BIN " bench -m %%s --parallel 1,3 --decode 3 --threads 1 --dtype q8 --peer /nonexistent%s", "");
    CHECK(run(&o, cmd, dir) == 0 && strstr(o, "MB read/step") && strstr(o, "\n     1 ") && strstr(o, "\n     3 ") &&
              strstr(o, "needs a .gguf"), "bench --parallel: %s", o);
    free(o);
    /* bench --reps: each figure the mean of N runs with its spread (llama-bench's -r); 0 is a usage error */
    CHECK(run(&o, BIN " bench -m %s --prefill 4 --decode 2 --reps 2 --threads 1 --dtype q8", dir) == 0 &&
              strstr(o, "prefill    4") && strstr(o, "tok/s +- ") && strstr(o, "decode     2"),
          "bench --reps 2: %s", o);
    /* the bound is the best bandwidth read in the run, never below what the decode read: at most 100% */
    int pct = -1;
    const char *at = o ? strstr(o, "% of bound") : NULL;
    while (at && at > o && at[-1] >= '0' && at[-1] <= '9') at--;
    CHECK(at && sscanf(at, "%d", &pct) == 1 && pct >= 0 && pct <= 100 && strstr(o, "bandwidth probes"),
          "bench: decode at %d%% of its bound: %s", pct, o);
    free(o);
    CHECK(run(&o, BIN " bench -m %s --reps 0", dir) == 2 && strstr(o, "--reps: bad count '0'"), "%s", o);
    free(o);
    /* bench --depth: prefill and decode after D tokens in the cache (llama-bench's -d), the cache's bytes in the bound */
    CHECK(run(&o, BIN " bench -m %s --prefill 4 --decode 2 --depth 20 --reps 1 --threads 1 --dtype q8", dir) == 0 &&
              strstr(o, "prefill    4") && strstr(o, "@ d20") && strstr(o, "decode     2") &&
              strstr(o, "(weights and cache)"),
          "bench --depth 20: %s", o);
    free(o);
    CHECK(run(&o, BIN " bench -m %s --depth 4 --parallel 2", dir) == 2 && strstr(o, "--depth"), "%s", o);
    free(o);
    CHECK(run(&o, BIN " bench -m %s --depth -1", dir) == 2 && strstr(o, "--depth: bad count"), "%s", o);
    free(o);
    CHECK(run(&o, BIN " generate -m %s --prompt-ids 5,6 --parallel 0", dir) == 2 && strstr(o, "--parallel"), "%s", o);
    free(o);
    CHECK(run(&o, BIN " generate -m %s --prompts /nonexistent --parallel 2", dir) == 1 && strstr(o, "/nonexistent"), "%s", o);
    free(o);
}

/* issue 14: -c/--ctx says when the context is full; -m RUN follows RUN/latest to its newest checkpoint */
static void generate_ctx_and_run(void) {
    char dir[700], *o = NULL, *want = NULL;
    snprintf(dir, sizeof dir, "%s/tinyrun", harness_tmpdir());
    CHECK(harness_sh(BIN " init --preset tiny --seed 4 --out %s/step-0000007 > /dev/null && echo step-0000007 > %s/latest",
                     dir, dir) == 0, "setup");
    CHECK(run(&o, BIN " generate -m %s --prompt-ids 1,2,3 -n 20 --temp 0 --ignore-eos -c 8", dir) == 0 &&
              strstr(o, "context of 8 positions is full"), "-c 8: %s", o);
    free(o);
    char step[720];
    snprintf(step, sizeof step, "%s/step-0000007", dir);
    CHECK(run(&want, BIN " generate -m %s --prompt-ids 1,2,3 -n 6 --temp 0 2>/dev/null", step) == 0, "%s", want);
    CHECK(run(&o, BIN " generate -m %s --prompt-ids 1,2,3 -n 6 --temp 0 2>/dev/null", dir) == 0 &&
              strcspn(o, "\n") == strcspn(want, "\n") && !strncmp(o, want, strcspn(want, "\n")),
          "-m RUN: '%s' vs the step: '%s'", o, want);
    free(o), free(want);
}

/* issue 14, defect 4: a write to stdout that fails (a full disk) is an
 * error and a non-zero exit, for every command that prints its result */
static void stdout_full(void) {
    const char *d = harness_tmpdir();
    CHECK(harness_sh("for i in $(seq 200); do echo \"the cat sat on the mat $i times\"; done > %s/txt", d) == 0, "text");
    CHECK(harness_sh(BIN " tokenizer-train --data %s/txt --vocab-size 300 --out %s/tok.json > /dev/null 2>&1", d, d) == 0,
          "tokenizer-train");
    CHECK(harness_sh(BIN " init --preset tiny --tokenizer %s/tok.json --out %s/full > /dev/null", d, d) == 0, "init");
    const char *cmds[] = {
        "--version",
        "info --preset tiny",
        "tokenize --tokenizer %s/tok.json \"the cat sat\"",
        "tokenize --tokenizer %s/tok.json --ids \"the cat sat\"",
        "detokenize --tokenizer %s/tok.json --ids 5,6,7",
        "logits -m %s/full --ids 1,2,3",
        "generate -m %s/full -p \"the cat\" --raw -n 4 --temp 0",
        "generate -m %s/full --prompt-ids 1,2 -n 4 --temp 0",
    };
    for (size_t i = 0; i < sizeof cmds / sizeof *cmds; i++) {
        char c[512], e[600], *o;
        size_t n;
        snprintf(c, sizeof c, cmds[i], d);
        snprintf(e, sizeof e, "%s/err.txt", d);
        int rc = harness_sh(BIN " %s 2> %s > /dev/full", c, e);
        if (file_read_all(e, &o, &n, NULL)) o = strdup("");
        CHECK(rc == 1 && strstr(o, "standard output") && strstr(o, "No space left"), "%s > /dev/full: exit %d, \"%s\"", c,
              rc, o);
        free(o);
        rc = run(&o, BIN " %s > /dev/null", c); /* the same command succeeds where it can write */
        CHECK(rc == 0, "%s: exit %d, \"%s\"", c, rc, o);
        free(o);
    }
    char *o;
    CHECK(run(&o, BIN " --version%s", "") == 0 && strstr(o, "deepc " DC_VERSION), "--version: %s", o);
    free(o);
}

/* issue 14, defect 17: without --seed, runs started together sample
 * differently (the seed was the current second), and the seed printed
 * repeats a run exactly */
static unsigned long long seed_of(const char *log) {
    const char *p = strstr(log, "seed ");
    return p ? strtoull(p + 5, NULL, 10) : 0;
}

static void random_seed(void) {
    const char *d = harness_tmpdir();
    CHECK(harness_sh(BIN " init --preset tiny --seed 8 --out %s/sd > /dev/null", d) == 0, "init");
    const char *gen = BIN " generate -m %s/sd --prompt-ids 1,2,3 -n 16 --temp 1.5 --top-k 0 --top-p 1 --min-p 0";
    char cmd[1024];
    snprintf(cmd, sizeof cmd, gen, d);
    /* two at once: the same second */
    CHECK(harness_sh("%s > %s/a.out 2> %s/a.err & %s > %s/b.out 2> %s/b.err; wait", cmd, d, d, cmd, d, d) == 0, "run");
    char *ea = NULL, *eb = NULL, *oa = NULL, *ob = NULL, *oc = NULL, p[700];
    size_t n;
    snprintf(p, sizeof p, "%s/a.err", d), file_read_all(p, &ea, &n, NULL);
    snprintf(p, sizeof p, "%s/b.err", d), file_read_all(p, &eb, &n, NULL);
    snprintf(p, sizeof p, "%s/a.out", d), file_read_all(p, &oa, &n, NULL);
    snprintf(p, sizeof p, "%s/b.out", d), file_read_all(p, &ob, &n, NULL);
    unsigned long long sa = ea ? seed_of(ea) : 0, sb = eb ? seed_of(eb) : 0;
    CHECK(sa && sb && sa != sb, "seeds %llu and %llu", sa, sb);
    CHECK(oa && ob && strcmp(oa, ob) != 0, "two runs at once sampled the same tokens: %s", oa ? oa : "?");
    /* the printed seed gives the same tokens again */
    CHECK(harness_sh("%s --seed %llu > %s/c.out 2> /dev/null", cmd, sa, d) == 0, "rerun");
    snprintf(p, sizeof p, "%s/c.out", d), file_read_all(p, &oc, &n, NULL);
    CHECK(oa && oc && strcmp(oa, oc) == 0, "--seed %llu did not repeat the run: %s vs %s", sa, oa ? oa : "?", oc ? oc : "?");
    free(ea), free(eb), free(oa), free(ob), free(oc);
}

/* info on files: the version, the stored types and the file size (GGUF and safetensors) */
/* issue 15: the decoding and training commands spin between parallel
 * regions (OMP_WAIT_POLICY=active) but only for a bounded count
 * (GOMP_SPINCOUNT), so a thread left idle (bench's one-thread runs after
 * two, chat waiting for a line) sleeps instead of holding a core for
 * libgomp's default five minutes; data preparation sleeps (passive).
 * libgomp prints what the process runs with. */
static void omp_wait_policy(void) {
    char *o;
    const char *spin[] = {"bench", "train"};
    for (int i = 0; i < 2; i++) {
        CHECK(run(&o, "env -u OMP_WAIT_POLICY -u GOMP_SPINCOUNT OMP_DISPLAY_ENV=verbose " BIN " %s --help", spin[i]) == 0,
              "%s --help", spin[i]);
        const char *act = strstr(o, "OMP_WAIT_POLICY = 'ACTIVE'");
        CHECK(act && strstr(act, "GOMP_SPINCOUNT = '10000000'"), "%s: a bounded active wait: %s", spin[i], o);
        free(o);
    }
    CHECK(run(&o, "env -u OMP_WAIT_POLICY -u GOMP_SPINCOUNT OMP_DISPLAY_ENV=verbose " BIN " prepare --help%s", "") == 0,
          "prepare --help");
    CHECK(!strstr(o, "'ACTIVE'") && !strstr(o, "'10000000'"), "prepare: passive: %s", o);
    free(o);
}

/* the OpenBLAS core (kernels/blas_core.h): whatever core the library picks
 * for this CPU on its own, deepc runs one that uses the vector units cpuid
 * reports (Debian's 0.3.21 took an Emerald Rapids for a Prescott: sgemm 5x
 * slower); a core the user names is left alone */
static void blas_core(void) {
    char *o;
    CHECK(run(&o, "env -u OPENBLAS_CORETYPE " BIN " --version%s", "") == 0, "--version");
    const char *c = strstr(o, "OpenBLAS core: ");
    char core[64] = "";
    if (c) sscanf(c + 15, "%63[A-Za-z0-9]", core);
    __builtin_cpu_init();
    const int avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                       __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq");
    const int avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    const int is512 = !strcmp(core, "SkylakeX") || !strcmp(core, "Cooperlake") || !strcmp(core, "SapphireRapids");
    const int is2 = is512 || !strcmp(core, "Haswell") || !strcmp(core, "Zen");
    CHECK(c && (avx512 ? is512 : avx2 ? is2 : 1), "a core without the CPU's %s: \"%s\"", avx512 ? "AVX-512" : "AVX2", o);
    printf("    OpenBLAS core: %s (CPU: %s)\n", core, avx512 ? "AVX-512" : avx2 ? "AVX2" : "neither");
    free(o);
    CHECK(run(&o, "OPENBLAS_CORETYPE=Prescott " BIN " --version%s", "") == 0 && strstr(o, "OpenBLAS core: Prescott"),
          "OPENBLAS_CORETYPE=Prescott kept: %s", o);
    free(o);
}

static void info_files(void) {
    const char *d = harness_tmpdir();
    char *o = NULL, want[128];
    CHECK(harness_sh(BIN " init --preset tiny --dtype bf16 --out %s/inf > /dev/null && " BIN
                     " convert -m %s/inf --to gguf --type q8_0 -o %s/inf.gguf 2> /dev/null", d, d, d) == 0, "setup");
    CHECK(run(&o, BIN " info -m %s/inf.gguf", d) == 0, "info gguf: %s", o);
    struct stat st;
    char p[700];
    snprintf(p, sizeof p, "%s/inf.gguf", d);
    snprintf(want, sizeof want, "(%lld bytes), GGUF v3", stat(p, &st) == 0 ? (long long)st.st_size : -1LL);
    CHECK(strstr(o, "deepc        " DC_VERSION) && strstr(o, want) && strstr(o, " q8_0 (") && strstr(o, " f32 (") &&
              strstr(o, "tokenizer    none"),
          "info gguf: %s", o);
    free(o);
    CHECK(run(&o, BIN " info -m %s/inf", d) == 0 && strstr(o, "in 1 safetensors file") && strstr(o, " BF16 (") &&
              strstr(o, " F32 ("),
          "info dir: %s", o);
    free(o);
}

int main(void) {
    RUN(generate_parallel);
    RUN(generate_ctx_and_run);
    RUN(exit_codes);
    RUN(stdout_full);
    RUN(random_seed);
    RUN(info_files);
    RUN(omp_wait_policy);
    RUN(blas_core);
    RUN(logits_file);
    RUN(gguf_commands);
    return harness_done();
}
