/*
 * test_gguf_model.c — src/model/{load,save,convert}_gguf.c: random tiny
 * checkpoints converted to GGUF and read back give the same logits (bit for
 * bit in f32, within a printed error per quantised type), main and MTP;
 * GGUF -> HF -> the same logits; quantize equals a direct convert; the
 * tokenizer travels inside the GGUF; truncated and corrupted GGUFs are
 * errors naming the file, never crashes; matrices kept quantised as stored
 * give the logits of the same file dequantised to float32.
 */
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include "base/file.h"
#include "base/rng.h"
#include "harness.h"
#include "io/gguf.h"
#include "kernels/ggml_types.h"
#include "model/embed_head.h"
#include "model/gguf_model.h"
#include "model/model.h"
#include "model/weights.h"

static const int IDS[] = {3, 17, 1, 99, 250, 7, 64, 5};
#define NIDS 8

/* logits (NIDS, V) of the main model, and of the MTP head when mtp */
static float *logits_of(const char *path, int mtp, int *V) {
    dc_model *m;
    dc_err err = {0};
    if (dc_model_load(path, &m, &err)) {
        printf("    load %s: %s\n", path, err.msg);
        return NULL;
    }
    *V = dc_model_config(m)->vocab_size;
    float *lg = malloc(sizeof(float) * NIDS * *V);
    dc_session *s;
    int rc = dc_session_new(m, 64, DC_ATTN_ABSORB, &s, &err);
    if (!rc) rc = dc_forward(s, IDS, NIDS, lg, 0, &err);
    if (!rc && mtp) rc = dc_forward_mtp(s, dc_session_hidden(s), IDS + 1, NIDS - 1, lg, &err);
    if (rc) printf("    forward %s: %s\n", path, err.msg), free(lg), lg = NULL;
    dc_session_free(s);
    dc_model_free(m);
    return lg;
}

static double max_diff(const float *a, const float *b, size_t n, double *amax) {
    double d = 0;
    *amax = 0;
    for (size_t i = 0; i < n; i++) d = fmax(d, fabs((double)a[i] - b[i])), *amax = fmax(*amax, fabs(a[i]));
    return d;
}

static char *tmp(const char *name) {
    static char b[8][700];
    static int k;
    char *p = b[k++ % 8];
    snprintf(p, 700, "%s/%s", harness_tmpdir(), name);
    return p;
}

static int make_model(const dc_config *c, const char *dir) {
    dc_err err = {0};
    int rc = weights_write_random(c, dir, 42, "f32", 0, &err);
    if (rc) printf("    init: %s\n", err.msg);
    return rc;
}

static int convert(const char *src, const char *out, const char *type) {
    dc_err err = {0};
    dc_convert_opts o = {.type = type};
    int rc = dc_convert_to_gguf(src, out, &o, &err);
    if (rc) printf("    convert %s -> %s: %s\n", src, out, err.msg);
    return rc;
}

/* src converted to the GGUF out of type, loaded as stored (*q) and as
 * float32 (*f); nonzero (both NULL) when a step fails */
static int convert_both(const char *src, const char *out, const char *type, dc_model **q, dc_model **f, dc_err *err) {
    *q = *f = NULL;
    if (!convert(src, out, type) && !model_load(out, 0, q, err) && !model_load(out, 1, f, err)) return 0;
    dc_model_free(*q);
    *q = NULL;
    return 1;
}

/* tiny, widened so every matrix row is whole 256-value K-quant blocks */
static void block_config(dc_config *c) {
    dc_config_preset("tiny", c, NULL);
    c->hidden_size = 256, c->intermediate_size = 512, c->moe_intermediate_size = 256, c->q_lora_rank = 256;
    c->kv_lora_rank = 256, c->num_attention_heads = 2, c->qk_nope_head_dim = 256, c->v_head_dim = 256;
    c->qk_rope_head_dim = 64, c->vocab_size = 512, c->num_hidden_layers = 2;
}

/* tiny: f32 is exact for the main model and the MTP head; back to HF is exact */
static void f32_exact(void) {
    dc_config c;
    dc_config_preset("tiny", &c, NULL);
    const char *dir = tmp("tiny"), *gg = tmp("tiny.gguf"), *hf = tmp("tiny_hf");
    if (make_model(&c, dir) || convert(dir, gg, "f32")) { CHECK(0, "setup"); return; }
    for (int mtp = 0; mtp < 2; mtp++) {
        int V, V2;
        float *a = logits_of(dir, mtp, &V), *b = logits_of(gg, mtp, &V2);
        double amax, d = a && b && V == V2 ? max_diff(a, b, (size_t)(NIDS - mtp) * V, &amax) : 1e9;
        printf("    tiny f32 %s: max |diff| %g\n", mtp ? "mtp " : "main", d);
        CHECK(d == 0, "f32 GGUF logits differ by %g", d);
        free(a), free(b);
    }
    dc_err err = {0};
    CHECK(dc_convert_to_hf(gg, hf, 0, &err) == 0, "to hf: %s", err.msg);
    int V, V2;
    float *a = logits_of(dir, 1, &V), *b = logits_of(hf, 1, &V2);
    double amax, d = a && b ? max_diff(a, b, (size_t)(NIDS - 1) * V, &amax) : 1e9;
    CHECK(d == 0, "GGUF -> HF logits differ by %g", d);
    free(a), free(b);
    dc_config c2;
    CHECK(dc_config_load(gg, &c2, &err) == 0 && memcmp(&c, &c2, sizeof c) == 0, "config round trip: %s", err.msg);
}

static double rel_rms(const float *a, const float *ref, size_t n);

/* --type iq4_xs on a model whose routed experts' down projections have rows
 * of 128: those go to iq4_nl (as llama-quantize does), the rest iq4_xs;
 * both kept at load, the logits near f32's */
static void iq4_xs_fallback(void) {
    dc_config c;
    block_config(&c);
    c.moe_intermediate_size = 128;
    char dir[700];
    snprintf(dir, sizeof dir, "%s", tmp("iq4fb"));
    if (make_model(&c, dir)) { CHECK(0, "setup"); return; }
    const char *gg = tmp("iq4fb.gguf");
    dc_convert_stats st = {0};
    dc_convert_opts o = {.type = "iq4_xs", .stats = &st};
    dc_err err = {0};
    if (dc_convert_to_gguf(dir, gg, &o, &err)) { CHECK(0, "convert: %s", err.msg); return; }
    int nl = 0, xs = 0, other = 0;
    for (int i = 0; i < st.n_types; i++) {
        if (!strcmp(st.types[i].type, "iq4_nl")) nl = st.types[i].count;
        else if (!strcmp(st.types[i].type, "iq4_xs")) xs = st.types[i].count;
        else if (strcmp(st.types[i].type, "f32")) other += st.types[i].count;
    }
    printf("    iq4_xs with expert rows of 128: %d iq4_xs, %d iq4_nl, %d others (fallbacks %d)\n", xs, nl, other,
           st.n_fallback);
    CHECK(nl > 0 && xs > 0 && other == 0 && st.n_fallback == nl, "types: %d iq4_xs, %d iq4_nl, %d other, %d fallbacks",
          xs, nl, other, st.n_fallback);
    int V, V2;
    float *ref = logits_of(dir, 0, &V), *lg = logits_of(gg, 0, &V2);
    const double rel = ref && lg && V == V2 ? rel_rms(lg, ref, (size_t)(NIDS)*V) : 1e9;
    CHECK(rel < 0.25, "iq4_xs / iq4_nl logits vs f32: relative RMS %g", rel);
    free(ref), free(lg);
}

/* a shape where every matrix fits K-quant blocks of 256: each type's error */
static void quant_types(void) {
    dc_config c;
    block_config(&c);
    char dir[700];
    snprintf(dir, sizeof dir, "%s", tmp("k256"));
    if (make_model(&c, dir)) { CHECK(0, "setup"); return; }
    int V;
    float *ref = logits_of(dir, 0, &V);
    if (!ref) { CHECK(0, "reference logits"); return; }
    static const struct {
        const char *type;
        double bound;
    } T[] = {{"f32", 0}, {"f16", 0.01}, {"bf16", 0.03}, {"q8_0", 0.03}, {"q6_k", 0.1}, {"q5_k", 0.12},
             {"q5_0", 0.15}, {"q5_1", 0.15}, {"q4_k", 0.25}, {"q4_0", 0.3}, {"q4_1", 0.25}, {"q3_k", 0.5},
             {"q2_k", 1.0}, {"iq4_nl", 0.25}, {"iq4_xs", 0.25}};
    for (size_t i = 0; i < sizeof T / sizeof *T; i++) {
        char name[64];
        snprintf(name, sizeof name, "k256_%s.gguf", T[i].type);
        const char *gg = tmp(name);
        if (convert(dir, gg, T[i].type)) {
            CHECK(0, "convert %s", T[i].type);
            continue;
        }
        int V2;
        float *lg = logits_of(gg, 0, &V2);
        double amax, d = lg ? max_diff(ref, lg, (size_t)NIDS * V, &amax) : 1e9, se = 0, sr = 0;
        for (size_t k = 0; lg && k < (size_t)NIDS * V; k++) se += pow(ref[k] - lg[k], 2), sr += pow(ref[k], 2);
        double rel = lg ? sqrt(se / sr) : 1e9;
        printf("    %-5s logits: relative RMS error %.4f (bound %.2f), max |diff| %.4f of max |logit| %.3f\n",
               T[i].type, rel, T[i].bound, d, amax);
        CHECK(rel <= T[i].bound, "%s: relative logits error %.4f above %.2f", T[i].type, rel, T[i].bound);
        free(lg);
    }
    /* quantize (GGUF -> GGUF) from f32 gives the same file as converting directly */
    const char *q = tmp("k256_requant.gguf");
    CHECK(convert(tmp("k256_f32.gguf"), q, "q4_k") == 0, "quantize");
    char *x = NULL, *y = NULL;
    size_t nx = 0, ny = 0;
    file_read_all(q, &x, &nx, NULL);
    file_read_all(tmp("k256_q4_k.gguf"), &y, &ny, NULL);
    /* general.name differs (the source's base name): compare the tensor data */
    gguf a, b;
    memset(&a, 0, sizeof a), memset(&b, 0, sizeof b);
    int same = x && y && !gguf_open_mem(&a, x, nx, "a", NULL) && !gguf_read_tensors(&a, NULL) &&
               !gguf_open_mem(&b, y, ny, "b", NULL) && !gguf_read_tensors(&b, NULL) && a.n_tensors == b.n_tensors;
    for (uint64_t i = 0; same && i < a.n_tensors; i++)
        same = a.tensors[i].nbytes == b.tensors[i].nbytes &&
               memcmp(a.tensors[i].data, b.tensors[i].data, a.tensors[i].nbytes) == 0;
    CHECK(same, "quantize f32 -> q4_k differs from convert -> q4_k");
    gguf_close(&a), gguf_close(&b);
    free(x), free(y), free(ref);
}

/* logits (n, V) of ids through model m in one forward */
static float *forward_of(dc_model *m, const int *ids, int n) {
    dc_err err = {0};
    dc_session *s;
    float *lg = malloc(sizeof(float) * n * dc_model_config(m)->vocab_size);
    int rc = dc_session_new(m, 64, DC_ATTN_ABSORB, &s, &err);
    if (!rc) rc = dc_forward(s, ids, n, lg, 0, &err);
    if (rc) printf("    forward: %s\n", err.msg), free(lg), lg = NULL;
    dc_session_free(s);
    return lg;
}

static double rel_rms(const float *a, const float *ref, size_t n) {
    double se = 0, sr = 0;
    for (size_t k = 0; k < n; k++) se += pow((double)a[k] - ref[k], 2), sr += pow(ref[k], 2);
    return sqrt(se / sr);
}

/* a quantised GGUF's matrices used as stored give the logits of the same
 * file dequantised to float32 within the activations' 8-bit quantisation
 * (every T multiplies 8-bit activations, matmul.h; with MoE that error also
 * flips some near-tied expert choices of this random model, hence its looser
 * bound); bf16 to rounding (float32 activations; sgemm at T = 24) */
static void kept_vs_f32_one(int moe) {
    dc_config c;
    block_config(&c);
    if (!moe) c.first_k_dense_replace = c.num_hidden_layers + c.num_nextn_predict_layers;
    char dir[700]; /* tmp's buffers are reused: the loop below takes more than it holds */
    snprintf(dir, sizeof dir, "%s", tmp(moe ? "kept_moe" : "kept"));
    if (make_model(&c, dir)) { CHECK(0, "setup"); return; }
    int ids[24];
    for (int i = 0; i < 24; i++) ids[i] = (i * 37 + 11) % c.vocab_size;
    static const char *TYPES[] = {"q8_0", "q4_0", "q4_k",   "q6_k",   "q5_0", "q4_1",
                                  "q5_1", "q3_k", "q2_k", "iq4_nl", "iq4_xs", "bf16"};
    static const char *MAT[] = {"q8",   "q4_0", "q4_k", "q6_k",   "q5_0",   "q4_1",
                                "q5_1", "q3_k", "q2_k", "iq4_nl", "iq4_xs", "bf16"};
    for (size_t i = 0; i < sizeof TYPES / sizeof *TYPES; i++) {
        const int half = !strcmp(TYPES[i], "bf16");
        char name[64];
        snprintf(name, sizeof name, "kept%d_%s.gguf", moe, TYPES[i]);
        const char *gg = tmp(name);
        dc_model *q = NULL, *f = NULL;
        dc_err err = {0};
        if (convert_both(dir, gg, TYPES[i], &q, &f, &err)) {
            CHECK(0, "%s: %s", TYPES[i], err.msg);
            continue;
        }
        CHECK(!strcmp(dc_model_dtype(q), MAT[i]) && !strcmp(dc_model_dtype(f), "f32"), "%s: kept as %s", TYPES[i],
              dc_model_dtype(q));
        CHECK(dc_model_weight_bytes(q) < dc_model_weight_bytes(f) && dc_model_decode_bytes(q) < dc_model_decode_bytes(f),
              "%s: kept bytes not below f32", TYPES[i]);
        CHECK(dc_model_set_dtype(q, "f32", &err) == 0 && dc_model_set_dtype(q, "stored", &err) == 0, "%s: %s",
              TYPES[i], err.msg);
        if (!half)
            CHECK(dc_model_set_dtype(q, i ? "q8" : "bf16", &err) != 0 && strstr(err.msg, "as stored"),
                  "%s: requantising must be refused", TYPES[i]);
        int V = c.vocab_size;
        float *a = forward_of(q, ids, 24), *b = forward_of(f, ids, 24);
        float *a8 = forward_of(q, ids, 8), *b8 = forward_of(f, ids, 8);
        double e = a && b ? rel_rms(a, b, (size_t)24 * V) : 1e9, e8 = a8 && b8 ? rel_rms(a8, b8, (size_t)8 * V) : 1e9;
        printf("    %s %-4s kept vs f32: %5.1f vs %5.1f MB per token; logits relative RMS: T=24 %.1e, T=8 %.1e\n", moe ? "moe  " : "dense", TYPES[i], dc_model_decode_bytes(q) / 1e6, dc_model_decode_bytes(f) / 1e6,
               e, e8);
        double lim = half ? 1e-4 : moe ? 0.2 : 0.03;
        CHECK(e < lim, "%s: T=24 logits differ by %g", TYPES[i], e);
        CHECK(e8 < lim, "%s: T=8 logits differ by %g", TYPES[i], e8);
        free(a), free(b), free(a8), free(b8);
        if (half) { /* bf16 is a float kind: --dtype q8 converts it, as it would the float32 load */
            const size_t kb = dc_model_weight_bytes(q);
            CHECK(dc_model_set_dtype(q, "q8", &err) == 0 && dc_model_set_dtype(f, "q8", &err) == 0, "bf16 -> q8: %s", err.msg);
            CHECK(!strcmp(dc_model_dtype(q), "q8") && dc_model_weight_bytes(q) < kb, "bf16 -> q8: held as %s, %zu bytes (bf16: %zu)",
                  dc_model_dtype(q), dc_model_weight_bytes(q), kb);
            a = forward_of(q, ids, 24), b = forward_of(f, ids, 24);
            CHECK(a && b && !memcmp(a, b, sizeof(float) * 24 * V), "bf16 -> q8: logits differ from f32 -> q8 (%g)",
                  a && b ? rel_rms(a, b, (size_t)24 * V) : 1e9);
            free(a), free(b);
        }
        dc_model_free(q);
        dc_model_free(f);
    }
}

static void kept_vs_f32(void) {
    kept_vs_f32_one(0);
    kept_vs_f32_one(1);
}

/* the token embedding stays in the GGUF's stored type (issue 15: q4_0 of
 * mini, 59 MB instead of 419 MB as float32): the type is kept, each row
 * embed_rows gives equals the float32-loaded row bit for bit, the weights
 * take fewer bytes; the MTP module's embedding too */
static void embed_kept(void) {
    dc_config c;
    block_config(&c);
    const char *dir = tmp("k256"); /* made by quant_types */
    static const char *TYPES[] = {"f16", "q4_0", "q6_k", "bf16"};
    static const int GG[] = {GG_F16, GG_Q4_0, GG_Q6_K, GG_BF16};
    for (size_t i = 0; i < sizeof TYPES / sizeof *TYPES; i++) {
        char name[64];
        snprintf(name, sizeof name, "k256_%s.gguf", TYPES[i]);
        const char *gg = tmp(name);
        dc_model *q = NULL, *f = NULL;
        dc_err err = {0};
        if (!file_exists(gg) && convert(dir, gg, TYPES[i])) { CHECK(0, "convert %s", TYPES[i]); continue; }
        if (model_load(gg, 0, &q, &err) || model_load(gg, 1, &f, &err)) {
            CHECK(0, "%s: %s", TYPES[i], err.msg);
            dc_model_free(q);
            continue;
        }
        int C = c.hidden_size, V = c.vocab_size, same = 1;
        CHECK(q->w.embed_type == GG[i] && f->w.embed_type == GG_F32, "%s: embedding kept as %d", TYPES[i],
              q->w.embed_type);
        float *row = malloc(sizeof(float) * C);
        int ids[] = {0, 1, V / 2, V - 1};
        for (int k = 0; k < 4 && row; k++) {
            embed_rows(row, q->w.embed, q->w.embed_type, &ids[k], 1, C);
            same &= memcmp(row, f->w.embed + (size_t)ids[k] * C, sizeof(float) * C) == 0;
        }
        CHECK(same, "%s: embedding rows differ from the float32 load", TYPES[i]);
        int L = c.num_hidden_layers;
        CHECK(!c.num_nextn_predict_layers || q->w.layers[L].embed_type == GG[i],
              "%s: the MTP module's embedding is not kept as stored", TYPES[i]);
        CHECK(dc_model_weight_bytes(q) + (size_t)V * C * 4 / 2 < dc_model_weight_bytes(f) + 1,
              "%s: weights %zu bytes, f32 load %zu", TYPES[i], dc_model_weight_bytes(q), dc_model_weight_bytes(f));
        free(row);
        dc_model_free(q);
        dc_model_free(f);
    }
}

/* logits (n, V) of ids fed through model m: the first `first` one at a
 * time, the rest in chunks of k tokens */
static float *fed_as(dc_model *m, const int *ids, int n, int first, int k, int attn) {
    dc_err err = {0};
    dc_session *s = NULL;
    int V = dc_model_config(m)->vocab_size;
    float *lg = malloc(sizeof(float) * n * V);
    int rc = dc_session_new(m, 64, attn, &s, &err);
    for (int i = 0; !rc && i < n; i += i < first ? 1 : k) {
        const int len = i < first ? 1 : n - i < k ? n - i : k;
        rc = dc_forward(s, ids + i, len, lg + (size_t)i * V, 0, &err);
    }
    if (rc) printf("    fed: %s\n", err.msg), free(lg), lg = NULL;
    dc_session_free(s);
    return lg;
}

/* logits (n, V) of ids fed in chunks of k tokens through model m */
static float *chunked_as(dc_model *m, const int *ids, int n, int k, int attn) { return fed_as(m, ids, n, 0, k, attn); }

static float *chunked(dc_model *m, const int *ids, int n, int k) { return chunked_as(m, ids, n, k, DC_ATTN_ABSORB); }

/* a GGUF's attn_k_b / attn_v_b kept as stored (issue 15): the absorbed
 * attention multiplies them per head through the kernels and gives the
 * logits of the same file loaded as float32 (kv_b folded back) within each
 * type's error (f16 pieces and matrices: float activations, rounding only;
 * q8_0 / q4_0 / q5_0: 8-bit activations as everywhere, matmul.h), decoding
 * token by token and in runs of 5 (one product per head for the run: the
 * same bits as one at a time); the naive cache, which widens the pieces
 * again, agrees too. Resident bytes and bytes per token drop. */
/* the plain type an interleaved one is made from (itself for the others) */
static int plain_of(int t) {
    for (int p = 0; p < MAT_NTYPES; p++)
        if (p != t && mat_type_ilv(p) == t) return p;
    return t;
}

/* pieces read from the file's mapping stay plain (DEEPC_MMAP=1: type plain)
 * and decode the bits of the interleaved copies (want) */
static void kvb_borrowed_same(const char *gg, const int *ids, int n, const float *want, int plain) {
    dc_model *b = NULL;
    dc_err err = {0};
    setenv("DEEPC_MMAP", "1", 1);
    int rc = model_load(gg, 0, &b, &err);
    unsetenv("DEEPC_MMAP");
    if (rc) { CHECK(0, "borrowed: %s", err.msg); return; }
    const char *nm = mat_type_name(plain);
    CHECK(b->w.layers[0].k_b.type == plain && b->w.layers[0].v_b.type == plain, "borrowed pieces not plain %s", nm);
    float *got = chunked_as(b, ids, n, 1, DC_ATTN_ABSORB);
    int same = got && want && !memcmp(got, want, sizeof(float) * n * dc_model_config(b)->vocab_size);
    CHECK(same, "%s pieces: interleaved and plain (borrowed) decode differently", nm);
    printf("    %s pieces interleaved at load = plain (borrowed from the mapping), bit for bit: %s\n", nm, same ? "yes" : "no");
    free(got);
    dc_model_free(b);
}

static void kvb_kept(void) {
    dc_config c;
    block_config(&c);
    c.first_k_dense_replace = c.num_hidden_layers + c.num_nextn_predict_layers; /* dense: no routing flips */
    char dir[700]; /* tmp's buffers are reused: the loop below takes more than it holds */
    snprintf(dir, sizeof dir, "%s", tmp("kvb_kept"));
    if (make_model(&c, dir)) { CHECK(0, "setup"); return; }
    static const struct {
        const char *type;
        int mat;
        double bound;
    } K[] = {{"f16", MAT_F16, 1e-4}, {"q8_0", MAT_Q8_0, 0.03},
             {"q4_0", MAT_Q4_0X8, 0.06}, /* the 4- and 5-bit types: interleaved at load (a head's rows are whole groups of 8) */
             {"q4_k", MAT_Q4_KX8, 0.06}, {"q6_k", MAT_Q6_KX8, 0.03}, {"q5_k", MAT_Q5_KX8, 0.04},
             {"q5_0", MAT_Q5_0X8, 0.05}, {"q4_1", MAT_Q4_1X8, 0.06}, {"q5_1", MAT_Q5_1X8, 0.05},
             {"q3_k", MAT_Q3_KX8, 0.12}, {"q2_k", MAT_Q2_KX8, 0.25}, {"iq4_nl", MAT_IQ4_NLX8, 0.06},
             {"iq4_xs", MAT_IQ4_XSX8, 0.06}};
    const int n = 16, V = c.vocab_size;
    int ids[16];
    for (int i = 0; i < n; i++) ids[i] = (i * 41 + 3) % V;
    for (size_t i = 0; i < sizeof K / sizeof *K; i++) {
        char name[64];
        snprintf(name, sizeof name, "kvb_%s.gguf", K[i].type);
        const char *gg = tmp(name);
        dc_model *q = NULL, *f = NULL;
        dc_err err = {0};
        if (convert_both(dir, gg, K[i].type, &q, &f, &err)) {
            CHECK(0, "%s: %s", K[i].type, err.msg);
            continue;
        }
        int pieces = 1;
        for (int l = 0; l < q->w.nlayers; l++) {
            const layer_w *a = &q->w.layers[l], *b = &f->w.layers[l];
            pieces &= a->k_b.data && a->v_b.data && !a->kv_b.data && a->k_b.type == K[i].mat && a->v_b.type == K[i].mat;
            pieces &= b->kv_b.data && !b->k_b.data;
        }
        CHECK(pieces, "%s: attn_k_b / attn_v_b not kept as stored (or the float32 load did not fold them)", K[i].type);
        float *a1 = chunked_as(q, ids, n, 1, DC_ATTN_ABSORB), *a5 = chunked_as(q, ids, n, 5, DC_ATTN_ABSORB);
        float *f1 = chunked_as(f, ids, n, 1, DC_ATTN_ABSORB), *qn = chunked_as(q, ids, n, 1, DC_ATTN_NAIVE);
        float *fn = chunked_as(f, ids, n, 1, DC_ATTN_NAIVE); /* the naive cache is float32, the latent one bf16 */
        size_t nv = (size_t)n * V;
        double e = a1 && f1 ? rel_rms(a1, f1, nv) : 1e9, en = qn && fn ? rel_rms(qn, fn, nv) : 1e9;
        int same = a1 && a5 && !memcmp(a1, a5, sizeof(float) * nv);
        printf("    %-4s pieces: %5.2f vs %5.2f MB resident; decode logits vs float32 load: relative RMS %.1e "
               "(naive %.1e); runs of 5 = one at a time: %s\n",
               K[i].type, dc_model_weight_bytes(q) / 1e6, dc_model_weight_bytes(f) / 1e6, e, en, same ? "yes" : "no");
        CHECK(e < K[i].bound && en < K[i].bound, "%s: logits differ by %g (naive %g)", K[i].type, e, en);
        CHECK(same, "%s: runs of 5 differ from one token at a time", K[i].type);
        if (plain_of(K[i].mat) != K[i].mat) kvb_borrowed_same(gg, ids, n, a1, plain_of(K[i].mat));
        free(a1), free(a5), free(f1), free(qn), free(fn);
        dc_model_free(q);
        dc_model_free(f);
    }
}

/* a prefill-sized run over a long cache attends in the absorbed form
 * (mla.c's mla_absorb_run: 8 tokens after 56 are cheaper so): its logits
 * are those of the same tokens one at a time (decode's absorbed form, bit
 * for bit); after 8 cached positions the expanded form stays (cheaper
 * there): close, not the same bits; both within the q8_0 bound of the
 * float32 load's */
static void absorbed_long_runs(void) {
    dc_config c;
    block_config(&c);
    const char *dir = tmp("absrun"), *gg = tmp("absrun_q8_0.gguf");
    dc_model *q = NULL, *f = NULL;
    dc_err err = {0};
    if (make_model(&c, dir) || convert_both(dir, gg, "q8_0", &q, &f, &err)) {
        CHECK(0, "setup: %s", err.msg);
        return;
    }
    const int n = 64, V = c.vocab_size;
    int ids[64];
    for (int i = 0; i < n; i++) ids[i] = (i * 37 + 11) % V;
    float *one = chunked_as(q, ids, n, 1, DC_ATTN_ABSORB), *late = fed_as(q, ids, n, 56, n, DC_ATTN_ABSORB),
          *early = fed_as(q, ids, 16, 8, 16, DC_ATTN_ABSORB);
    float *ref = chunked_as(f, ids, n, 1, DC_ATTN_NAIVE);
    if (!one || !late || !early || !ref) {
        CHECK(0, "forward failed");
    } else {
        const size_t nv = (size_t)8 * V, at = (size_t)56 * V, at8 = (size_t)8 * V;
        int same_late = !memcmp(late + at, one + at, sizeof(float) * nv);
        int same_early = !memcmp(early + at8, one + at8, sizeof(float) * nv);
        double el = rel_rms(late + at, ref + at, nv), ee = rel_rms(early + at8, ref + at8, nv);
        printf("    8 tokens after 56: the bits of one at a time: %s (vs float32 naive %.1e); after 8: %s (%.1e)\n",
               same_late ? "yes" : "no", el, same_early ? "yes" : "no", ee);
        CHECK(same_late, "a run of 8 after 56 positions did not attend as decode does");
        CHECK(!same_early, "a run of 8 after 8 positions did not take the expanded form");
        CHECK(el < 0.03 && ee < 0.03, "logits off the float32 load's: %g / %g", el, ee);
    }
    free(one), free(late), free(early), free(ref);
    dc_model_free(q);
    dc_model_free(f);
}

/* a KV-cache session file of a model holding attn_k_b / attn_v_b as stored:
 * saved after a prefill, loaded into a new session, the next tokens' logits
 * are those of the session that never stopped (bit for bit); the same file
 * loaded as float32 (kv_b folded back: other weights) refuses the save */
static void kvb_kept_session(void) {
    dc_config c;
    block_config(&c);
    const char *dir = tmp("kvb_sess"), *gg = tmp("kvb_sess_q8_0.gguf"), *path = tmp("kvb_sess.kv");
    dc_model *q = NULL, *f = NULL;
    dc_err err = {0};
    if (make_model(&c, dir) || convert_both(dir, gg, "q8_0", &q, &f, &err)) {
        CHECK(0, "setup: %s", err.msg);
        return;
    }
    const int n = 12, half = 6, V = c.vocab_size;
    int ids[12];
    for (int i = 0; i < n; i++) ids[i] = (i * 29 + 7) % V;
    float *a = malloc(sizeof(float) * n * V), *b = malloc(sizeof(float) * n * V);
    dc_session *s = NULL, *s2 = NULL;
    int rc = dc_session_new(q, 64, DC_ATTN_ABSORB, &s, &err), *got = NULL, ng = 0;
    for (int t = 0; !rc && t < n; t++) {
        rc = dc_forward(s, ids + t, 1, a + (size_t)t * V, 0, &err);
        if (!rc && t == half - 1) rc = dc_session_save(s, ids, half, path, &err);
    }
    if (!rc) rc = dc_session_new(q, 64, DC_ATTN_ABSORB, &s2, &err);
    if (!rc) rc = dc_session_load(s2, path, &got, &ng, &err);
    for (int t = half; !rc && t < n; t++) rc = dc_forward(s2, ids + t, 1, b + (size_t)t * V, 0, &err);
    CHECK(!rc && ng == half, "save / load / decode: %s", err.msg);
    CHECK(!rc && !memcmp(a + (size_t)half * V, b + (size_t)half * V, sizeof(float) * (n - half) * V),
          "decoding after a loaded session differs");
    dc_session_free(s2), s2 = NULL;
    free(got), got = NULL;
    CHECK(dc_session_new(f, 64, DC_ATTN_ABSORB, &s2, &err) == 0 && dc_session_load(s2, path, &got, &ng, &err) == DC_EARG,
          "the float32 load must refuse a session of the kept pieces: %s", err.msg);
    printf("    q8_0 pieces: a session saved at %d tokens, loaded, decodes the same bits: %s\n", half,
           !rc && !memcmp(a + (size_t)half * V, b + (size_t)half * V, sizeof(float) * (n - half) * V) ? "yes" : "no");
    free(got), free(a), free(b);
    dc_session_free(s), dc_session_free(s2);
    dc_model_free(q), dc_model_free(f);
}

/* a one-token step runs its routed experts in one parallel region
 * (moe.c moe_one, issue 15: router, shared and routed experts), several
 * tokens the router, the shared ffn_forward and the routed experts side by
 * side (moe_side: whole experts over the threads): the same
 * bits on quantised weights, on a shape big enough to share the rows out
 * over the threads (tiny runs them on one). v2: DeepSeek-V2-Lite's kind of
 * layer, two shared experts (one FFN of 2 x moe_intermediate rows), no
 * q_lora, V2's softmax greedy gate: moe_one takes it too */
static void moe_decode_one_region_of(int v2) {
    dc_config c;
    block_config(&c);
    const char *dir = tmp(v2 ? "kept_moe_v2" : "kept_moe"); /* kept_moe: made by kept_vs_f32 */
    const char *gg = tmp(v2 ? "moe_region_v2_q4_0.gguf" : "moe_region_q4_0.gguf");
    if (v2) {
        c.n_shared_experts = 2, c.q_lora_rank = 0, c.n_group = 1, c.topk_group = 1, c.num_experts_per_tok = 3;
        c.topk_method = DC_TOPK_GREEDY, c.scoring_func = DC_SCORE_SOFTMAX, c.norm_topk_prob = 0;
        c.routed_scaling_factor = 1.0f, c.is_v3 = 0;
        if (make_model(&c, dir)) { CHECK(0, "setup v2"); return; }
    }
    dc_model *m = NULL;
    dc_err err = {0};
    if (convert(dir, gg, "q4_0") || model_load(gg, 0, &m, &err)) { CHECK(0, "setup: %s", err.msg); return; }
    CHECK(m->w.layers[1].sh_gate.rows == c.n_shared_experts * c.moe_intermediate_size, "shared rows %d",
          m->w.layers[1].sh_gate.rows);
    int ids[12];
    for (int i = 0; i < 12; i++) ids[i] = (i * 53 + 5) % c.vocab_size;
    float *one = chunked(m, ids, 12, 1), *two = chunked(m, ids, 12, 3);
    size_t n = (size_t)12 * c.vocab_size;
    CHECK(one && two && !memcmp(one, two, sizeof(float) * n), "%sone token a step differs from three a step",
          v2 ? "two shared experts: " : "");
    printf("    q4_0 MoE%s, %d threads: one token a step = three a step, bit for bit: %s\n",
           v2 ? " (2 shared experts, no q_lora, softmax gate)" : "", omp_get_max_threads(),
           one && two && !memcmp(one, two, sizeof(float) * n) ? "yes" : "no");
    free(one), free(two);
    dc_model_free(m);
}

static void moe_decode_one_region(void) {
    moe_decode_one_region_of(0);
    moe_decode_one_region_of(1);
}

/* moe_side (moe.c: several tokens' routed experts side by side, whole
 * experts over the threads, each on one): a layer's MoE over 40 tokens (8
 * experts top-2: experts of several tokens, f16 ones above wtype.gemm_t on
 * gemm.h and the others on the matvec kernels) has the same bits on 1 and 2
 * threads, f16 and q8_0; q8_0 also each token's bits alone (moe_one) */
static void moe_side_threads(void) {
    dc_config c;
    block_config(&c);
    const char *dir = tmp("kept_moe"); /* made by kept_vs_f32 */
    const char *types[] = {"f16", "q8_0"};
    const int T = 40, C = c.hidden_size;
    rng r;
    rng_seed(&r, 31);
    float *x = harness_randv(&r, (size_t)T * C), *y[3];
    for (int i = 0; i < 3; i++) y[i] = malloc(sizeof(float) * T * C);
    for (int k = 0; k < 2; k++) {
        char name[64];
        snprintf(name, sizeof name, "moe_side_%s.gguf", types[k]);
        const char *gg = tmp(name);
        dc_model *m = NULL;
        dc_err err = {0};
        scratch s = {0};
        if (convert(dir, gg, types[k]) || model_load(gg, 0, &m, &err) || scratch_reserve(&s, &m->cfg, T, 64, &err)) {
            CHECK(0, "setup %s: %s", types[k], err.msg);
            dc_model_free(m);
            continue;
        }
        const layer_w *lw = &m->w.layers[m->cfg.num_hidden_layers - 1];
        CHECK(lw->is_moe, "the last layer is MoE");
        harness_threads(1);
        moe_forward(&m->cfg, &s, lw, T, x, y[0]);
        harness_threads(2);
        moe_forward(&m->cfg, &s, lw, T, x, y[1]);
        for (int t = 0; t < T; t++) moe_forward(&m->cfg, &s, lw, 1, x + (size_t)t * C, y[2] + (size_t)t * C);
        const size_t n = sizeof(float) * T * C;
        const int same = !memcmp(y[0], y[1], n), alone = !memcmp(y[0], y[2], n);
        CHECK(same, "%s: the MoE of 40 tokens differs on 1 and 2 threads", types[k]);
        if (k) CHECK(alone, "q8_0: the MoE of 40 tokens differs from each token alone");
        double e = harness_nmse(y[0], y[2], (size_t)T * C);
        if (!k) CHECK(e < 1e-10, "f16: 40 tokens vs each alone: NMSE %g", e);
        printf("    %-4s MoE of 40 tokens: 1 thread = 2 threads: %s; vs each alone: %s (NMSE %.1e)\n", types[k],
               same ? "yes" : "no", alone ? "bit for bit" : "rounding", e);
        scratch_free(&s);
        dc_model_free(m);
    }
    harness_threads(2);
    free(x);
    for (int i = 0; i < 3; i++) free(y[i]);
}

/* DEEPC_MMAP=1: kept matrices are read from the file's mapping, not copied;
 * the logits are the same bits and the model owns the mapping. q4_0, and
 * q4_k_m (Q4_K, Q6_K and Q5_K matrices) and q5_k_m (Q5_K and Q6_K: copied
 * ones are interleaved, kernels/repack.h, borrowed ones gathered by the
 * plain kernels) */
/* how many of the layers' matrices are stored as type t */
static int count_type(const dc_model *m, int t) {
    int n = 0;
    for (int l = 0; l < m->w.nlayers; l++) {
        const layer_w *w = &m->w.layers[l];
        const mat *M[] = {&w->q_a, &w->q_b, &w->q, &w->kv_a, &w->kv_b, &w->k_b, &w->v_b, &w->o,
                          &w->gate, &w->up, &w->down, &w->sh_gate, &w->sh_up, &w->sh_down};
        for (size_t i = 0; i < sizeof M / sizeof *M; i++) n += M[i]->data && M[i]->type == t;
        for (int e = 0; w->exp_gate && e < m->cfg.n_routed_experts; e++)
            n += (w->exp_gate[e].data && w->exp_gate[e].type == t) + (w->exp_up[e].data && w->exp_up[e].type == t) +
                 (w->exp_down[e].data && w->exp_down[e].type == t);
    }
    return n;
}

static void borrowed_one(const dc_config *c, const char *dir, const char *type) {
    char name[64];
    snprintf(name, sizeof name, "borrow_%s.gguf", type);
    const char *gg = tmp(name);
    if (convert(dir, gg, type)) {
        CHECK(0, "setup %s", type);
        return;
    }
    int V = 0, V2 = 0;
    setenv("DEEPC_MMAP", "0", 1);
    float *a = logits_of(gg, 1, &V);
    setenv("DEEPC_MMAP", "1", 1);
    float *b = logits_of(gg, 1, &V2);
    dc_model *m = NULL;
    dc_err err = {0};
    CHECK(model_load(gg, 0, &m, &err) == 0 && m->w.map.size > 0 && m->w.qarena == NULL,
          "%s: DEEPC_MMAP=1 borrows from the mapping: %s", type, err.msg);
    const int borrowed5 = m ? count_type(m, MAT_Q5_K) : 0;
    dc_model_free(m);
    unsetenv("DEEPC_MMAP");
    if (!strcmp(type, "q5_k_m")) { /* the Q5_K matrices: plain when borrowed, interleaved when copied */
        m = NULL;
        CHECK(model_load(gg, 0, &m, &err) == 0, "%s: load: %s", type, err.msg);
        const int copied5 = m ? count_type(m, MAT_Q5_KX8) : 0, plain5 = m ? count_type(m, MAT_Q5_K) : 0;
        printf("    q5_k_m: %d Q5_K matrices borrowed plain, %d copied and interleaved (q5_kx8), %d left plain\n",
               borrowed5, copied5, plain5);
        CHECK(borrowed5 > 0 && copied5 == borrowed5 && plain5 == 0, "q5_k_m: Q5_K matrices not interleaved when copied");
        dc_model_free(m);
    }
    CHECK(a && b && V == V2 && V == c->vocab_size && memcmp(a, b, sizeof(float) * NIDS * V) == 0,
          "%s: borrowed and copied logits differ", type);
    free(a), free(b);
}

static void borrowed_blocks(void) {
    dc_config c;
    block_config(&c);
    char dir[700]; /* tmp's buffers are reused: the calls below take more than it holds */
    snprintf(dir, sizeof dir, "%s", tmp("borrow"));
    if (make_model(&c, dir)) {
        CHECK(0, "setup");
        return;
    }
    borrowed_one(&c, dir, "q4_0");
    borrowed_one(&c, dir, "q4_k_m");
    borrowed_one(&c, dir, "q5_k_m");
    borrowed_one(&c, dir, "q5_0"); /* q5_0x8, q4_1x8, q5_1x8, q3_kx8, q2_kx8 copied: the plain kernels' bits */
    borrowed_one(&c, dir, "q4_1");
    borrowed_one(&c, dir, "q5_1");
    borrowed_one(&c, dir, "q3_k");
    borrowed_one(&c, dir, "q2_k");
    borrowed_one(&c, dir, "iq4_nl");
    borrowed_one(&c, dir, "iq4_xs");
}

/* the tokenizer goes into the GGUF and comes back encoding the same */
static void tokenizer_inside(void) {
    const char *data = harness_data_dir();
    if (!data) return (void)printf("    (no ../shared/data: skipped)\n");
    char tj[600];
    snprintf(tj, sizeof tj, "%s/tokenizer/deepseek-v3/tokenizer.json", data);
    dc_config c;
    dc_config_preset("tiny", &c, NULL);
    c.vocab_size = 128896; /* every id of the tokenizer (128,815) has a row: convert refuses a smaller vocabulary */
    const char *dir = tmp("tok"), *gg = tmp("tok.gguf");
    if (make_model(&c, dir) || harness_sh("cp %s %s/ && cp %s/tokenizer/deepseek-v3/tokenizer_config.json %s/", tj, dir,
                                          data, dir))
        { CHECK(0, "setup"); return; }
    if (convert(dir, gg, "q8_0")) { CHECK(0, "convert"); return; }
    dc_tokenizer *a = NULL, *b = NULL;
    dc_err err = {0};
    CHECK(dc_tokenizer_load(dir, &a, &err) == 0, "json: %s", err.msg);
    CHECK(dc_tokenizer_load(gg, &b, &err) == 0, "gguf: %s", err.msg);
    if (!a || !b) return;
    const char *text = "Hello, world! 你好 <think>x</think>  12345 def f(x):\n\treturn x**2";
    int *ia, *ib;
    size_t na, nb;
    dc_tokenizer_encode(a, text, strlen(text), DC_TOK_SPECIAL, &ia, &na, NULL);
    dc_tokenizer_encode(b, text, strlen(text), DC_TOK_SPECIAL, &ib, &nb, NULL);
    CHECK(na == nb && memcmp(ia, ib, na * sizeof *ia) == 0, "encodings differ (%zu vs %zu ids)", na, nb);
    CHECK(dc_tokenizer_bos(a) == dc_tokenizer_bos(b) && dc_tokenizer_eos(a) == dc_tokenizer_eos(b), "bos/eos");
    CHECK(strcmp(dc_tokenizer_pre(b), "deepseek-v3") == 0, "pre %s", dc_tokenizer_pre(b));
    free(ia), free(ib);
    dc_tokenizer_free(a), dc_tokenizer_free(b);
}

/* truncations and byte flips: errors naming the file, never crashes */
static void corrupt(void) {
    const char *gg = tmp("tiny.gguf");
    char *buf;
    size_t n;
    if (file_read_all(gg, &buf, &n, NULL)) { CHECK(0, "no tiny.gguf (f32_exact failed?)"); return; }
    const char *bad = tmp("bad.gguf");
    size_t cuts[] = {0, 3, 24, 100, n / 3, n / 2, n - 100, n - 1};
    for (size_t i = 0; i < sizeof cuts / sizeof *cuts; i++) {
        file_write_atomic(bad, buf, cuts[i], NULL);
        dc_model *m = NULL;
        dc_err err = {0};
        int rc = dc_model_load(bad, &m, &err);
        CHECK(rc != 0 && strstr(err.msg, "bad.gguf"), "cut at %zu: rc %d, %s", cuts[i], rc, err.msg);
        dc_model_free(m);
    }
    /* one tensor's type and one dim, found through the reader */
    gguf g;
    CHECK(gguf_open_mem(&g, buf, n, "x", NULL) == 0 && gguf_read_tensors(&g, NULL) == 0, "parse");
    const gguf_tensor *t = gguf_find_tensor(&g, "blk.1.ffn_down_exps.weight");
    CHECK(t != NULL, "expert tensor");
    if (t) {
        size_t at = (size_t)((const uint8_t *)t->name.s - g.data) + t->name.n; /* n_dims, dims, type */
        char *c = malloc(n);
        memcpy(c, buf, n);
        uint32_t ty = 99;
        memcpy(c + at + 4 + 8 * t->n_dims, &ty, 4);
        file_write_atomic(bad, c, n, NULL);
        dc_model *m = NULL;
        dc_err err = {0};
        CHECK(dc_model_load(bad, &m, &err) != 0 && strstr(err.msg, "ffn_down_exps"), "bad type: %s", err.msg);
        ty = 16; /* a lattice IQ type: named, and why */
        memcpy(c + at + 4 + 8 * t->n_dims, &ty, 4);
        file_write_atomic(bad, c, n, NULL);
        CHECK(dc_model_load(bad, &m, &err) != 0 && strstr(err.msg, "ffn_down_exps") && strstr(err.msg, "iq2_xxs"),
              "iq2_xxs: %s", err.msg);
        memcpy(c, buf, n);
        uint64_t big = 1ull << 40;
        memcpy(c + at + 4 + 8, &big, 8);
        file_write_atomic(bad, c, n, NULL);
        CHECK(dc_model_load(bad, &m, &err) != 0 && strstr(err.msg, "ffn_down_exps"), "huge dim: %s", err.msg);
        free(c);
    }
    gguf_close(&g);
    /* random flips in the header and infos (never in the data, which any bytes fill validly) */
    rng r;
    rng_seed(&r, 5);
    char *c = malloc(n);
    int errors = 0;
    for (int it = 0; it < 300; it++) {
        memcpy(c, buf, n);
        size_t lim = g.data_off ? g.data_off : 4096;
        for (int k = 0; k < 4; k++) c[rng_u64(&r) % lim] ^= (char)(1 + rng_u64(&r) % 255);
        gguf h;
        dc_err err;
        if (gguf_open_mem(&h, c, n, "flip", &err) || gguf_read_tensors(&h, &err)) errors++;
        else {
            dc_config cfg;
            errors += gguf_config(&h, &cfg, &err) != 0;
        }
        gguf_close(&h);
    }
    printf("    300 corrupted headers: %d errors, the rest parsed within bounds\n", errors);
    free(c);
    free(buf);
}

/* the llama.cpp vocab files (written by llama.cpp) parse as GGUF with their tensor section */
static void llama_vocab_files(void) {
    const char *data = harness_data_dir();
    if (!data) return (void)printf("    (no ../shared/data: skipped)\n");
    const char *f[] = {"ggml-vocab-deepseek-llm.gguf", "ggml-vocab-deepseek-coder.gguf"};
    for (int i = 0; i < 2; i++) {
        char p[600];
        snprintf(p, sizeof p, "%s/tokenizer/llama.cpp-vocab/%s", data, f[i]);
        gguf g;
        dc_err err = {0};
        int rc = gguf_open(&g, p, &err);
        if (!rc) rc = gguf_read_tensors(&g, &err);
        CHECK(rc == 0, "%s: %s", f[i], err.msg);
        gguf_close(&g);
        dc_tokenizer *t = NULL;
        CHECK(dc_tokenizer_load(p, &t, &err) == 0 && dc_tokenizer_n_vocab(t) > 30000, "%s tokenizer: %s", f[i],
              err.msg);
        dc_tokenizer_free(t);
    }
}

int main(void) {
    harness_threads(2);
    RUN(f32_exact);
    RUN(quant_types);
    RUN(iq4_xs_fallback);
    RUN(embed_kept);
    RUN(kept_vs_f32);
    RUN(moe_decode_one_region);
    RUN(moe_side_threads);
    RUN(kvb_kept);
    RUN(kvb_kept_session);
    RUN(absorbed_long_runs);
    RUN(borrowed_blocks);
    RUN(tokenizer_inside);
    RUN(corrupt);
    RUN(llama_vocab_files);
    return harness_done();
}
