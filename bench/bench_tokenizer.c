/*
 * bench_tokenizer.c — tokenizer throughput (`make bench-tokenizer`). Prints
 * figures, never passes or fails.
 *
 *   load     time to load DeepSeek-V3's tokenizer.json (128k vocab, 127k merges)
 *            and the DeepSeek LLM GGUF vocab; best of 5
 *   encode   MB/s of input text, 1 and 2 threads; with 2 the text is cut into
 *            ~256 KiB chunks at line ends and the chunks shared out (OpenMP)
 *   decode   MB/s of output text, the same way
 *   train    tokenizer-train on tiny Shakespeare and 红楼梦, with peak RSS
 *
 * The peer figure (llama.cpp's llama-tokenize, DeepSeek LLM vocab, tiny
 * Shakespeare x4: ~1.2 MB/s on one thread) comes from shared/BENCHMARKS.md;
 * llama.cpp is not available to run here.
 */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <time.h>
#include "base/progress.h"
#include "base/file.h"
#include "deepc.h"

static const char *data_dir(void) {
    const char *c[] = {getenv("DEEPC_DATA"), "../shared/data", "../../shared/data"};
    for (int i = 0; i < 3; i++) {
        struct stat st;
        if (c[i] && stat(c[i], &st) == 0 && S_ISDIR(st.st_mode)) return c[i];
    }
    return NULL;
}

typedef struct text {
    char *s;
    size_t n;
    size_t cut[4096]; /* chunk boundaries */
    int nchunks;
} text;

static void make_chunks(text *t) {
    size_t want = 256 * 1024, at = 0;
    t->nchunks = 0;
    t->cut[0] = 0;
    while (at < t->n && t->nchunks < 4095) {
        size_t e = at + want < t->n ? at + want : t->n;
        while (e < t->n && t->s[e - 1] != '\n') e++;
        t->cut[++t->nchunks] = e;
        at = e;
    }
}

/* encode_mbs: best of 3 runs over all chunks with nt threads */
static double encode_mbs(const dc_tokenizer *tk, const text *t, int nt, size_t *ntok) {
    double best = 1e30;
    for (int rep = 0; rep < 3; rep++) {
        size_t total = 0;
        double t0 = progress_now();
#pragma omp parallel for num_threads(nt) schedule(dynamic) reduction(+ : total)
        for (int c = 0; c < t->nchunks; c++) {
            int *ids;
            size_t n;
            dc_err e;
            if (!dc_tokenizer_encode(tk, t->s + t->cut[c], t->cut[c + 1] - t->cut[c], 0, &ids, &n, &e)) {
                total += n;
                free(ids);
            }
        }
        double dt = progress_now() - t0;
        if (dt < best) best = dt;
        *ntok = total;
    }
    return (double)t->n / best / 1e6;
}

static double decode_mbs(const dc_tokenizer *tk, const text *t, int nt) {
    int *ids[4096];
    size_t nid[4096];
    for (int c = 0; c < t->nchunks; c++) {
        dc_err e;
        if (dc_tokenizer_encode(tk, t->s + t->cut[c], t->cut[c + 1] - t->cut[c], 0, &ids[c], &nid[c], &e)) nid[c] = 0, ids[c] = NULL;
    }
    double best = 1e30;
    size_t bytes = 0;
    for (int rep = 0; rep < 3; rep++) {
        size_t total = 0;
        double t0 = progress_now();
#pragma omp parallel for num_threads(nt) schedule(dynamic) reduction(+ : total)
        for (int c = 0; c < t->nchunks; c++) {
            char *s;
            size_t n;
            dc_err e;
            if (!dc_tokenizer_decode(tk, ids[c], nid[c], 0, &s, &n, &e)) {
                total += n;
                free(s);
            }
        }
        double dt = progress_now() - t0;
        if (dt < best) best = dt;
        bytes = total;
    }
    for (int c = 0; c < t->nchunks; c++) free(ids[c]);
    return (double)bytes / best / 1e6;
}

static int load_text(const char *dd, const char *rel, int copies, text *t) {
    char p[4096];
    snprintf(p, sizeof p, "%s/%s", dd, rel);
    char *s;
    size_t n;
    dc_err e;
    if (file_read_all(p, &s, &n, &e)) {
        printf("  (%s)\n", e.msg);
        return -1;
    }
    t->s = malloc(n * (size_t)copies + 1);
    for (int i = 0; i < copies; i++) memcpy(t->s + n * (size_t)i, s, n);
    t->n = n * (size_t)copies;
    free(s);
    make_chunks(t);
    return 0;
}

static dc_tokenizer *load_best(const char *path, double *ms) {
    dc_tokenizer *t = NULL;
    *ms = 1e30;
    for (int i = 0; i < 5; i++) {
        dc_err e;
        dc_tokenizer *x;
        double t0 = progress_now();
        if (dc_tokenizer_load(path, &x, &e)) {
            printf("  cannot load %s: %s\n", path, e.msg);
            return NULL;
        }
        double dt = (progress_now() - t0) * 1e3;
        if (dt < *ms) *ms = dt;
        if (t) dc_tokenizer_free(t);
        t = x;
    }
    return t;
}

/* bench_train: train in a child process, so its peak RSS is the trainer's alone */
static void bench_train(const char *dd, const char *rel, int vocab) {
    char in[4096], out[512];
    snprintf(in, sizeof in, "%s/%s", dd, rel);
    snprintf(out, sizeof out, "/tmp/deepc-bench-tok-%ld.json", (long)getpid());
    double t0 = progress_now();
    pid_t pid = fork();
    if (pid == 0) {
        static const char *const SPECIAL[] = {"<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>"};
        const char *files[] = {in};
        dc_bpe_train_opts o = {vocab, SPECIAL, 2, 2, NULL, NULL, NULL};
        dc_err e;
        int rc = dc_bpe_train(files, 1, &o, out, &e);
        if (rc) fprintf(stderr, "  %s\n", e.msg);
        _exit(rc ? 1 : 0);
    }
    int status = 0;
    struct rusage ru;
    if (pid < 0 || wait4(pid, &status, 0, &ru) < 0 || !WIFEXITED(status) || WEXITSTATUS(status)) {
        printf("  %-32s training failed\n", rel);
        return;
    }
    double dt = progress_now() - t0;
    struct stat st;
    stat(in, &st);
    printf("  %-32s vocab %6d  %6.2f s  (%.1f MB/s of text)  peak RSS %6.1f MB\n", rel, vocab, dt,
           (double)st.st_size / dt / 1e6, ru.ru_maxrss / 1024.0);
    unlink(out);
}

int main(void) {
    const char *dd = data_dir();
    if (!dd) {
        printf("bench-tokenizer: no shared data directory (../shared/data or $DEEPC_DATA); nothing to measure\n");
        return 0;
    }
    char p[4096];
    double ms_v3, ms_llm;
    snprintf(p, sizeof p, "%s/tokenizer/deepseek-v3", dd);
    dc_tokenizer *v3 = load_best(p, &ms_v3);
    snprintf(p, sizeof p, "%s/tokenizer/llama.cpp-vocab/ggml-vocab-deepseek-llm.gguf", dd);
    dc_tokenizer *llm = load_best(p, &ms_llm);
    if (!v3 || !llm) return 0;
    printf("tokenizer load (best of 5)\n");
    printf("  deepseek-v3 tokenizer.json  (%d ids)  %7.1f ms   (target < 150 ms)\n", dc_tokenizer_n_vocab(v3), ms_v3);
    printf("  deepseek-llm GGUF           (%d ids)  %7.1f ms\n\n", dc_tokenizer_n_vocab(llm), ms_llm);

    static const struct { const char *rel; int copies; const char *label; } CORP[] = {
        {"corpus/tinyshakespeare.txt", 4, "tiny Shakespeare x4 (English)"},
        {"corpus/tinystories_valid_head.txt", 1, "TinyStories (English)"},
        {"corpus/hongloumeng_zh.txt", 1, "Hongloumeng (Chinese)"},
    };
    printf("%-32s %-13s %8s %9s %9s %9s %9s %6s\n", "text", "vocab", "MB", "enc 1t", "enc 2t", "dec 1t", "dec 2t",
           "B/tok");
    for (size_t c = 0; c < sizeof CORP / sizeof *CORP; c++) {
        text t;
        if (load_text(dd, CORP[c].rel, CORP[c].copies, &t)) continue;
        const dc_tokenizer *tks[] = {v3, llm};
        const char *names[] = {"deepseek-v3", "deepseek-llm"};
        for (int k = 0; k < 2; k++) {
            size_t ntok = 0;
            double e1 = encode_mbs(tks[k], &t, 1, &ntok), e2 = encode_mbs(tks[k], &t, 2, &ntok);
            double d1 = decode_mbs(tks[k], &t, 1), d2 = decode_mbs(tks[k], &t, 2);
            printf("%-32s %-13s %8.2f %7.1f/s %7.1f/s %7.0f/s %7.0f/s %6.2f\n", k ? "" : CORP[c].label, names[k],
                   (double)t.n / 1e6, e1, e2, d1, d2, (double)t.n / (double)ntok);
        }
        free(t.s);
    }
    printf("  (MB/s; 2t = two threads over %d KiB chunks. Peer: llama.cpp llama-tokenize, deepseek-llm vocab,\n"
           "   tiny Shakespeare x4, 1 thread: ~1.2 MB/s per shared/BENCHMARKS.md, not run here. Target: > 20 MB/s/thread)\n\n",
           256);
    dc_tokenizer_free(v3);
    dc_tokenizer_free(llm);
    printf("tokenizer-train (deepseek-v3 pre-tokenizer, 2 specials, min frequency 2)\n");
    bench_train(dd, "corpus/tinyshakespeare.txt", 8000);
    bench_train(dd, "corpus/hongloumeng_zh.txt", 16000);
    bench_train(dd, "corpus/hongloumeng_zh.txt", 32000);
    return 0;
}
