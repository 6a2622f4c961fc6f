/*
 * test_convert.c — src/model/convert_gguf.c, quant_mix.c and `deepc convert
 * / quantize` as users run them (issue 14): mixed presets choose the types
 * llama.cpp's do and beat their base type on the logits; an already
 * quantised GGUF is not quantised again unless allowed; the summary counts
 * what was written; a GGUF written without a tokenizer says it is for deepc
 * only and --tokenizer makes one that has every key llama.cpp requires
 * (defect 18); convert --to hf refuses a non-empty directory and replaces it
 * atomically with --force (defect 8); SIGINT leaves no temporary file and the
 * next run sweeps what SIGKILL left (defect 13); quantize's errors are not
 * prefixed "convert:" (defect 12).
 */
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "base/file.h"
#include "harness.h"
#include "io/gguf.h"
#include "kernels/ggml_types.h"
#include "model/gguf_model.h"
#include "model/model.h"
#include "model/weights.h"

#define BIN DC_BUILD "/deepc"

static char *tmp(const char *name) {
    static char b[16][700];
    static int k;
    char *p = b[k++ % 16];
    snprintf(p, 700, "%s/%s", harness_tmpdir(), name);
    return p;
}

/* tiny, widened so every matrix row is whole 256-value K-quant blocks; 4 layers */
static void block_config(dc_config *c) {
    dc_config_preset("tiny", c, NULL);
    c->hidden_size = 256, c->intermediate_size = 512, c->moe_intermediate_size = 256, c->q_lora_rank = 256;
    c->kv_lora_rank = 256, c->num_attention_heads = 2, c->qk_nope_head_dim = 256, c->v_head_dim = 256;
    c->qk_rope_head_dim = 64, c->vocab_size = 512, c->num_hidden_layers = 4;
}

static const char *type_of(const gguf *g, const char *name) {
    const gguf_tensor *t = gguf_find_tensor(g, name);
    return t ? gg_type_name(t->type) : "absent";
}

static const int IDS[] = {3, 17, 1, 99, 250, 7, 64, 5};

static float *logits(const char *path, int *V) {
    dc_model *m = NULL;
    dc_err e = {0};
    if (dc_model_load(path, &m, &e)) return printf("    %s: %s\n", path, e.msg), NULL;
    *V = dc_model_config(m)->vocab_size;
    float *l = malloc(sizeof(float) * 8 * *V);
    dc_session *s = NULL;
    if (dc_session_new(m, 16, DC_ATTN_ABSORB, &s, &e) || dc_forward(s, IDS, 8, l, 0, &e)) free(l), l = NULL;
    dc_session_free(s);
    dc_model_free(m);
    return l;
}

static double rel_rms(const float *a, const float *b, size_t n) {
    double d = 0, r = 0;
    for (size_t i = 0; i < n; i++) d += (a[i] - b[i]) * (double)(a[i] - b[i]), r += b[i] * (double)b[i];
    return sqrt(d / r);
}

static void presets(void) {
    dc_config c;
    block_config(&c);
    dc_err e = {0};
    const char *dir = tmp("blk");
    char f32[700], q4[700], q4m[700];
    snprintf(f32, sizeof f32, "%s", tmp("blk.gguf"));
    snprintf(q4, sizeof q4, "%s", tmp("blk-q4_k.gguf"));
    snprintf(q4m, sizeof q4m, "%s", tmp("blk-q4_k_m.gguf"));
    CHECK(weights_write_random(&c, dir, 11, "f32", (size_t)1 << 40, &e) == 0, "init: %s", e.msg);
    dc_convert_opts o = {.type = "f32"};
    CHECK(dc_convert_to_gguf(dir, f32, &o, &e) == 0, "f32: %s", e.msg);
    o.type = "q4_k";
    CHECK(dc_convert_to_gguf(f32, q4, &o, &e) == 0, "q4_k: %s", e.msg);
    dc_convert_stats st;
    o.type = "q4_k_m", o.stats = &st;
    CHECK(dc_convert_to_gguf(f32, q4m, &o, &e) == 0, "q4_k_m: %s", e.msg);
    gguf g;
    CHECK(gguf_open(&g, q4m, &e) == 0 && gguf_read_tensors(&g, &e) == 0, "open: %s", e.msg);
    int64_t ft = -1;
    gguf_get_int(&g, "general.file_type", &ft, NULL);
    CHECK(ft == 15, "general.file_type %lld, llama.cpp's Q4_K_M is 15", (long long)ft);
    /* layers 0..3: more bits in 2 and 3 (the last eighth, every third) */
    const struct { const char *name, *type; } W[] = {
        {"output.weight", "q6_K"},          {"token_embd.weight", "q4_K"},     {"blk.0.attn_k_b.weight", "q6_K"},
        {"blk.1.attn_v_b.weight", "q6_K"},  {"blk.0.attn_output.weight", "q5_K"}, {"blk.0.attn_q_a.weight", "q4_K"},
        {"blk.0.ffn_down.weight", "q4_K"},  {"blk.1.ffn_down_exps.weight", "q4_K"}, {"blk.2.ffn_down_exps.weight", "q6_K"},
        {"blk.3.ffn_down_shexp.weight", "q6_K"}, {"blk.3.ffn_up_exps.weight", "q4_K"}, {"blk.1.ffn_gate_inp.weight", "f32"},
        {"blk.4.nextn.shared_head_head.weight", "q6_K"},
    };
    for (size_t i = 0; i < sizeof W / sizeof *W; i++)
        CHECK(strcmp(type_of(&g, W[i].name), W[i].type) == 0, "%s is %s, want %s", W[i].name, type_of(&g, W[i].name),
              W[i].type);
    /* the summary adds up to the file */
    int count = 0;
    uint64_t bytes = 0;
    for (int i = 0; i < st.n_types; i++) count += st.types[i].count, bytes += st.types[i].bytes;
    struct stat sb;
    CHECK(stat(q4m, &sb) == 0 && st.file_bytes == (uint64_t)sb.st_size, "file size %llu", (unsigned long long)st.file_bytes);
    CHECK(count == st.n_tensors && (uint64_t)count == g.n_tensors && bytes < st.file_bytes && st.n_fallback == 0,
          "summary: %d tensors of %llu, %llu bytes, %d fallbacks", count, (unsigned long long)g.n_tensors,
          (unsigned long long)bytes, st.n_fallback);
    gguf_close(&g);
    /* more bits where they count: q4_k_m is closer to f32 than q4_k, and larger */
    int V = 0, V2 = 0, V3 = 0;
    float *a = logits(f32, &V), *b = logits(q4, &V2), *m = logits(q4m, &V3);
    if (a && b && m) {
        double eb = rel_rms(b, a, 8 * (size_t)V), em = rel_rms(m, a, 8 * (size_t)V);
        printf("    logits vs f32: q4_k relative RMS %.4f, q4_k_m %.4f\n", eb, em);
        CHECK(em < eb, "q4_k_m (%.4f) is not better than q4_k (%.4f)", em, eb);
    } else CHECK(0, "logits");
    free(a), free(b), free(m);
    struct stat s4;
    CHECK(stat(q4, &s4) == 0 && s4.st_size < sb.st_size, "q4_k_m is larger than q4_k");
    o.type = "q4_k_x";
    CHECK(dc_convert_to_gguf(f32, tmp("x.gguf"), &o, &e) == DC_EARG && strstr(e.msg, "q4_k_m"), "bad mix: %s", e.msg);
}

static void requantize_guard(void) {
    char *o = NULL;
    const char *d = harness_tmpdir();
    size_t n;
    CHECK(harness_sh(BIN " init --preset tiny --out %s/rq > /dev/null", d) == 0, "init");
    CHECK(harness_sh(BIN " convert -m %s/rq --to gguf --type q8_0 -o %s/rq8.gguf 2> /dev/null", d, d) == 0, "q8_0");
    int rc = harness_sh(BIN " quantize -m %s/rq8.gguf -o %s/rq4.gguf --type q4_0 2> %s/err.txt", d, d, d);
    file_read_all(tmp("err.txt"), &o, &n, NULL);
    CHECK(rc == 1 && o && strstr(o, "already quantised (q8_0)") && strstr(o, "--allow-requantize") &&
              strstr(o, "deepc quantize: error:") && !strstr(o, "convert:"),
          "exit %d: %s", rc, o);
    free(o), o = NULL;
    CHECK(access(tmp("rq4.gguf"), F_OK) != 0, "a refused quantize wrote its output");
    CHECK(harness_sh(BIN " quantize -m %s/rq8.gguf -o %s/rq4.gguf --type q4_0 --allow-requantize 2> /dev/null", d, d) == 0,
          "allowed");
    rc = harness_sh(BIN " quantize -m %s/rq8.gguf -o %s/x.gguf --type q9 2> %s/err.txt", d, d, d);
    file_read_all(tmp("err.txt"), &o, &n, NULL);
    CHECK(rc == 1 && o && strstr(o, "deepc quantize: error: unknown GGUF type 'q9'") && !strstr(o, "convert:"),
          "exit %d: %s", rc, o);
    free(o);
}

/* the keys and types llama.cpp's loader requires of a gpt2 (BPE) vocabulary */
static void check_llama_rules(const char *path, int vocab_size) {
    gguf g;
    dc_err e = {0};
    if (gguf_open(&g, path, &e)) { CHECK(0, "%s", e.msg); return; }
    gguf_str s;
    CHECK(gguf_get_str(&g, "general.architecture", &s, &e) == 0 && s.n == 9 && !memcmp(s.s, "deepseek2", 9), "arch");
    CHECK(gguf_get_str(&g, "tokenizer.ggml.model", &s, &e) == 0 && s.n == 4 && !memcmp(s.s, "gpt2", 4),
          "tokenizer.ggml.model: %s", e.msg);
    CHECK(gguf_get_str(&g, "tokenizer.ggml.pre", &s, &e) == 0, "tokenizer.ggml.pre");
    const gguf_kv *tok = NULL, *ty = NULL, *mg = NULL;
    CHECK(gguf_get_arr(&g, "tokenizer.ggml.tokens", GGUF_STR, &tok, &e) == 0 && tok->n == (uint64_t)vocab_size,
          "tokens: %s (%llu of %d)", e.msg, tok ? (unsigned long long)tok->n : 0ull, vocab_size);
    CHECK(gguf_get_arr(&g, "tokenizer.ggml.token_type", GGUF_I32, &ty, &e) == 0 && tok && ty->n == tok->n, "token_type");
    CHECK(gguf_get_arr(&g, "tokenizer.ggml.merges", GGUF_STR, &mg, &e) == 0 && mg->n > 0, "merges");
    for (uint64_t i = 0; ty && i < ty->n; i++) {
        int64_t t = gguf_kv_int(ty, i);
        if (t < 1 || t > 6) { CHECK(0, "token_type[%llu] = %lld", (unsigned long long)i, (long long)t); break; }
    }
    const char *ids[] = {"tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id"};
    for (int i = 0; i < 2; i++) {
        const gguf_kv *kv = gguf_find(&g, ids[i]);
        CHECK(kv && kv->type == GGUF_U32 && gguf_kv_int(kv, 0) < vocab_size, "%s", ids[i]);
    }
    int64_t v = 0;
    CHECK(gguf_get_int(&g, "deepseek2.vocab_size", &v, &e) == 0 && v == vocab_size, "deepseek2.vocab_size");
    gguf_close(&g);
}

static void tokenizer_in_gguf(void) {
    const char *d = harness_tmpdir();
    char *o = NULL;
    size_t n;
    CHECK(harness_sh("for i in $(seq 300); do echo \"a rose by any other name $i\"; done > %s/r.txt", d) == 0, "text");
    CHECK(harness_sh(BIN " tokenizer-train --data %s/r.txt --vocab-size 300 --out %s/tk.json > /dev/null 2>&1", d, d) == 0,
          "tokenizer");
    CHECK(harness_sh(BIN " init --preset tiny --out %s/nt > /dev/null", d) == 0, "init");
    int rc = harness_sh(BIN " convert -m %s/nt --to gguf -o %s/nt.gguf 2> %s/err.txt", d, d, d);
    file_read_all(tmp("err.txt"), &o, &n, NULL);
    CHECK(rc == 0 && o && strstr(o, "no tokenizer") && strstr(o, "deepc only") && strstr(o, "--tokenizer"),
          "no tokenizer: exit %d, %s", rc, o);
    free(o), o = NULL;
    rc = harness_sh(BIN " convert -m %s/nt --to gguf --tokenizer %s/tk.json -o %s/wt.gguf 2> %s/err.txt", d, d, d, d);
    file_read_all(tmp("err.txt"), &o, &n, NULL);
    CHECK(rc == 0 && o && !strstr(o, "no tokenizer"), "with --tokenizer: exit %d, %s", rc, o);
    free(o);
    check_llama_rules(tmp("wt.gguf"), 512);
    /* the tokenizer inside encodes as the file it came from */
    dc_tokenizer *a = NULL, *b = NULL;
    dc_err e = {0};
    CHECK(dc_tokenizer_load(tmp("tk.json"), &a, &e) == 0 && dc_tokenizer_load(tmp("wt.gguf"), &b, &e) == 0, "%s", e.msg);
    const char *text = "a rose by any other name 42 would smell";
    int *ia = NULL, *ib = NULL;
    size_t na = 0, nb = 0;
    if (a && b) {
        dc_tokenizer_encode(a, text, strlen(text), 0, &ia, &na, &e);
        dc_tokenizer_encode(b, text, strlen(text), 0, &ib, &nb, &e);
        CHECK(na == nb && na && !memcmp(ia, ib, na * sizeof *ia), "encodings differ (%zu vs %zu ids)", na, nb);
    }
    free(ia), free(ib);
    dc_tokenizer_free(a), dc_tokenizer_free(b);
    /* a tokenizer with more ids than the model's vocabulary is refused */
    CHECK(harness_sh(BIN " tokenizer-train --data %s/r.txt --vocab-size 700 --min-frequency 1 --out %s/big.json > /dev/null 2>&1",
                     d, d) == 0, "big tokenizer");
    rc = harness_sh(BIN " convert -m %s/nt --to gguf --tokenizer %s/big.json -o %s/big.gguf 2> %s/err.txt", d, d, d, d);
    file_read_all(tmp("err.txt"), &o, &n, NULL);
    CHECK(rc == 1 && o && strstr(o, "vocab_size 512"), "tokenizer larger than the vocabulary: exit %d, %s", rc, o);
    free(o);
}

static void to_hf_target(void) {
    const char *d = harness_tmpdir();
    char *o = NULL;
    size_t n;
    CHECK(harness_sh(BIN " init --preset tiny --out %s/h > /dev/null && " BIN
                     " convert -m %s/h --to gguf --type f32 -o %s/h.gguf 2> /dev/null", d, d, d) == 0, "setup");
    CHECK(harness_sh("mkdir -p %s/busy && echo keep > %s/busy/mine.txt", d, d) == 0, "busy dir");
    int rc = harness_sh(BIN " convert -m %s/h.gguf --to hf -o %s/busy 2> %s/err.txt", d, d, d);
    file_read_all(tmp("err.txt"), &o, &n, NULL);
    CHECK(rc == 1 && o && strstr(o, "not empty") && strstr(o, "--force"), "non-empty target: exit %d, %s", rc, o);
    free(o);
    CHECK(access(tmp("busy/mine.txt"), F_OK) == 0 && access(tmp("busy/config.json"), F_OK) != 0, "the target was touched");
    CHECK(harness_sh(BIN " convert -m %s/h.gguf --to hf -o %s/busy --force 2> /dev/null", d, d) == 0, "--force");
    CHECK(access(tmp("busy/mine.txt"), F_OK) != 0 && access(tmp("busy/model.safetensors"), F_OK) == 0,
          "--force did not replace the directory");
    CHECK(harness_sh("mkdir -p %s/empty && " BIN " convert -m %s/h.gguf --to hf -o %s/empty/ 2> /dev/null", d, d, d) == 0,
          "an empty directory is fine");
    CHECK(harness_sh("ls -a %s | grep -q '\\.tmp\\.'", d) != 0, "a temporary directory was left");
    /* the converted model is the model */
    int V = 0, V2 = 0;
    float *a = logits(tmp("h"), &V), *b = logits(tmp("busy"), &V2);
    CHECK(a && b && V == V2 && rel_rms(b, a, 8 * (size_t)V) == 0, "logits of the round trip differ");
    free(a), free(b);
}

/* SIGINT while quantize writes: the temporary goes; SIGKILL's is swept by the next run */
static void interrupted(void) {
    dc_config c;
    dc_config_preset("small", &c, NULL);
    dc_err e = {0};
    char dir[700], out[720], outdir[700];
    snprintf(dir, sizeof dir, "%s", tmp("small"));
    snprintf(outdir, sizeof outdir, "%s", tmp("qout"));
    snprintf(out, sizeof out, "%s/s.gguf", outdir);
    CHECK(weights_write_random(&c, dir, 5, "f32", (size_t)1 << 40, &e) == 0 && mkdir(outdir, 0755) == 0, "setup");
    int hits = 0;
    for (int sig = 0; sig < 2; sig++) {
        pid_t p = fork();
        if (p == 0) {
            freopen("/dev/null", "w", stderr);
            execl(DC_BUILD "/deepc", "deepc", "convert", "-m", dir, "--to", "gguf", "--type", "q4_k_m", "-t", "1", "-o",
                  out, (char *)NULL);
            _exit(127);
        }
        /* wait for the temporary to appear, then interrupt */
        int seen = 0;
        for (int i = 0; i < 20000 && !seen; i++) {
            seen = harness_sh("ls %s | grep -q '\\.tmp\\.'", outdir) == 0;
            if (!seen) usleep(1000);
        }
        if (seen) kill(p, sig ? SIGKILL : SIGINT), hits++;
        int st;
        waitpid(p, &st, 0);
        if (!seen) continue;
        CHECK(WIFSIGNALED(st) && WTERMSIG(st) == (sig ? SIGKILL : SIGINT), "did not die of the signal");
        int left = harness_sh("ls %s | grep -q '\\.tmp\\.'", outdir) == 0;
        CHECK(sig ? left : !left, sig ? "SIGKILL left no temporary (test setup)" : "SIGINT left a temporary file");
        CHECK(access(out, F_OK) != 0, "an interrupted convert wrote its output");
    }
    CHECK(hits == 2, "the temporary file was never seen (%d of 2): the conversion was too quick to interrupt", hits);
    /* the next conversion into the directory sweeps what SIGKILL left */
    CHECK(harness_sh(BIN " convert -m %s --to gguf --type q8_0 -o %s 2> /dev/null", tmp("small"), out) == 0, "convert");
    CHECK(harness_sh("ls %s | grep -q '\\.tmp\\.'", outdir) != 0, "the stale temporary was not swept");
}

/* peak resident memory of `deepc ARGS...` (kB), -1 when it failed */
static long peak_kb(char *const argv[]) {
    pid_t p = fork();
    if (p == 0) {
        freopen("/dev/null", "w", stderr);
        execv(BIN, argv);
        _exit(127);
    }
    int st;
    struct rusage ru;
    if (p < 0 || wait4(p, &st, 0, &ru) != p || !WIFEXITED(st) || WEXITSTATUS(st)) return -1;
    return ru.ru_maxrss;
}

/* a BF16 checkpoint loaded for inference keeps its weights as stored and drops
 * the file's pages as it copies them: the peak is the weights and a little,
 * not the weights and the file's mapping too (1.5 x: 53 MB against 91 for
 * this 40 MB file) */
static void kept_peak(void) {
    dc_config c;
    dc_config_preset("small", &c, NULL);
    dc_err e = {0};
    char *dir = tmp("kp"), *out = tmp("kp.f32");
    CHECK(weights_write_random(&c, dir, 4, "bf16", (size_t)1 << 40, &e) == 0, "init: %s", e.msg);
    dc_counts cn;
    dc_config_counts(&c, &cn);
    long bf16_kb = (long)((cn.params_total + cn.params_mtp) * 2 / 1024);
    char *a[] = {"deepc", "logits", "-m", dir, "--ids", "1,2,3,4", "--out", out, NULL};
    long k = peak_kb(a);
    printf("    logits of a bf16 checkpoint: peak memory %ld kB against %ld kB of bf16 weights\n", k, bf16_kb);
    CHECK(k > 0, "deepc logits failed");
#if !defined(__SANITIZE_ADDRESS__) /* ASan's own memory: see streamed */
    CHECK(k < bf16_kb * 3 / 2, "peak memory %ld kB against %ld kB of weights: the file's pages stayed resident", k, bf16_kb);
#endif
}

/* convert and quantize stream a tensor at a time: peak memory well under the
 * model's float32 size (the loaded path held all of it, and more), and the
 * bytes are those gguf_save writes from the loaded float32 model */
static void streamed(void) {
    dc_config c;
    dc_config_preset("small", &c, NULL);
    dc_err e = {0};
    char *dir = tmp("st"), *f32 = tmp("st-f32.gguf"), *q8 = tmp("st-q8.gguf"), *q4 = tmp("st-q4.gguf");
    CHECK(weights_write_random(&c, dir, 9, "bf16", (size_t)1 << 40, &e) == 0, "init: %s", e.msg);
    dc_counts cn;
    dc_config_counts(&c, &cn);
    long f32_kb = (long)((cn.params_total + cn.params_mtp) * 4 / 1024);
    char *a1[] = {"deepc", "convert", "-m", dir, "--to", "gguf", "--type", "f32", "-o", f32, NULL};
    char *a2[] = {"deepc", "convert", "-m", dir, "--to", "gguf", "--type", "q8_0", "-o", q8, NULL};
    char *a3[] = {"deepc", "quantize", "-m", f32, "--type", "q4_0", "-o", q4, NULL};
    long k1 = peak_kb(a1), k2 = peak_kb(a2), k3 = peak_kb(a3);
    CHECK(k1 > 0 && k2 > 0 && k3 > 0, "a conversion failed: %ld %ld %ld", k1, k2, k3);
    printf("    peak memory %ld / %ld / %ld kB against %ld kB of float32 weights\n", k1, k2, k3, f32_kb);
    /* ASan's shadow memory, its allocator's own and its quarantine of freed
     * blocks (make asan: 16 MB) add tens of MB to a run's peak (64-70 MB
     * seen against the plain build's 18-20): the bound is the plain build's
     * (make test) to check */
#if !defined(__SANITIZE_ADDRESS__)
    CHECK(k1 < f32_kb / 3 && k2 < f32_kb / 3 && k3 < f32_kb / 3,
          "peak memory %ld / %ld / %ld kB against %ld kB of float32 weights: not streamed", k1, k2, k3, f32_kb);
#endif
    /* the same bytes as the model loaded whole and written */
    dc_model *m = NULL;
    wt_entry *t = NULL;
    int n = 0;
    CHECK(model_load(dir, 1, &m, &e) == 0 && model_entries(&m->cfg, &m->w, &t, &n, &e) == 0, "load: %s", e.msg);
    gguf_save_opts so = {GG_Q8_0, 0, NULL, NULL, NULL, "st", NULL, NULL, NULL, NULL};
    char *ref = tmp("st-ref.gguf");
    CHECK(m && gguf_save(&m->cfg, t, n, &so, ref, &e) == 0, "save: %s", e.msg);
    CHECK(harness_sh("cmp -s %s %s", ref, q8) == 0, "the streamed q8_0 file differs from the loaded model's");
    free(t);
    dc_model_free(m);
    /* a tensor missing from the source: said before anything is written */
    CHECK(harness_sh("mkdir -p %s/bad && cp %s/config.json %s/bad/ && sed 's/\"hidden_size\":[[:space:]]*[0-9]*/\"hidden_size\": 96/' "
                     "%s/config.json > %s/bad/config.json && ln -f %s/model.safetensors %s/bad/", dir, dir, dir, dir, dir, dir, dir) == 0,
          "bad setup");
    char *o = NULL;
    size_t on;
    int rc = harness_sh(BIN " convert -m %s/bad --to gguf --type q8_0 -o %s 2> %s", dir, tmp("bad.gguf"), tmp("bad.txt"));
    file_read_all(tmp("bad.txt"), &o, &on, NULL);
    CHECK(rc == 1 && o && strstr(o, "shape") && strstr(o, "the config needs"), "bad shape: exit %d, %s", rc, o ? o : "");
    CHECK(access(tmp("bad.gguf"), F_OK) != 0 && harness_sh("ls %s | grep -q '\\.tmp\\.'", harness_tmpdir()) != 0,
          "a failed conversion left a file");
    free(o);
}

int main(void) {
    RUN(presets);
    RUN(requantize_guard);
    RUN(tokenizer_in_gguf);
    RUN(to_hf_target);
    RUN(interrupted);
    RUN(streamed);
    RUN(kept_peak);
    return harness_done();
}
