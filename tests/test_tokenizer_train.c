/*
 * test_tokenizer_train.c — src/tokenizer/train.c: the merges of a tiny
 * corpus are the textbook ones; a tokenizer trained on tiny Shakespeare and
 * on 红楼梦 is written as a tokenizer.json in Hugging Face's shape, loads back
 * in deepc, round-trips its corpus and compresses it; training is
 * deterministic; bad options are errors.
 */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>
#include "base/file.h"
#include "harness.h"
#include "deepc.h"

static char *path_in_tmp(const char *name) {
    static char buf[4][512];
    static int k;
    char *p = buf[k++ % 4];
    snprintf(p, 512, "%s/%s", harness_tmpdir(), name);
    return p;
}

static cJSON *read_json(const char *path) {
    char *s;
    size_t n;
    dc_err e;
    if (file_read_all(path, &s, &n, &e)) return NULL;
    cJSON *j = cJSON_ParseWithLength(s, n);
    free(s);
    return j;
}

static int train(const char *const *files, int nf, int vocab, const char *out, dc_err *e) {
    static const char *const SPECIAL[] = {"<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>"};
    dc_bpe_train_opts o = {vocab, SPECIAL, 2, 2, NULL, NULL, NULL};
    return dc_bpe_train(files, nf, &o, out, e);
}

/* "aaabdaaabac" (Wikipedia's BPE example, one word): counts aa 4, ab 2, ...;
 * the first merge is "a a"; then (a, b) and (aa, a) tie at 2 and the pair of
 * smaller ids, (a, b), comes first. */
static void test_tiny_corpus_merges(void) {
    const char *in = path_in_tmp("tiny.txt"), *out = path_in_tmp("tiny.json");
    dc_err e = {0};
    file_write_atomic(in, "aaabdaaabac", 11, &e);
    static const char *const NONE[] = {NULL};
    dc_bpe_train_opts o = {256 + 3, NONE, 0, 1, NULL, NULL, NULL};
    int rc = dc_bpe_train(&in, 1, &o, out, &e);
    CHECK(rc == DC_OK, "train: %s", e.msg);
    cJSON *j = read_json(out);
    CHECK(j != NULL, "output is not JSON");
    if (!j) return;
    cJSON *merges = cJSON_GetObjectItem(cJSON_GetObjectItem(j, "model"), "merges");
    CHECK(cJSON_GetArraySize(merges) == 3, "%d merges, want 3", cJSON_GetArraySize(merges));
    const char *want[] = {"a a", "a b", "aa ab"};
    for (int i = 0; i < 3 && i < cJSON_GetArraySize(merges); i++) {
        const char *m = cJSON_GetArrayItem(merges, i)->valuestring;
        CHECK(m && strcmp(m, want[i]) == 0, "merge %d is \"%s\", want \"%s\"", i, m ? m : "?", want[i]);
    }
    cJSON_Delete(j);
    dc_tokenizer *t;
    if (dc_tokenizer_load(out, &t, &e) == DC_OK) {
        int *ids;
        size_t n;
        dc_tokenizer_encode(t, "aaabdaaabac", 11, 0, &ids, &n, &e);
        CHECK(n == 5, "aaabdaaabac -> %zu tokens, want 5 (aaab d aaab a c)", n);
        free(ids);
        dc_tokenizer_free(t);
    }
}

/* the file has what a Hugging Face loader reads */
static void check_hf_shape(const char *path, int vocab) {
    cJSON *j = read_json(path);
    CHECK(j != NULL, "%s is not JSON", path);
    if (!j) return;
    cJSON *model = cJSON_GetObjectItem(j, "model"), *added = cJSON_GetObjectItem(j, "added_tokens");
    CHECK(cJSON_IsString(cJSON_GetObjectItem(model, "type")) && strcmp(cJSON_GetObjectItem(model, "type")->valuestring, "BPE") == 0,
          "model.type");
    int nv = cJSON_GetArraySize(cJSON_GetObjectItem(model, "vocab")), na = cJSON_GetArraySize(added);
    cJSON *merges = cJSON_GetObjectItem(model, "merges");
    CHECK(nv + na == vocab && na == 2, "%d vocab + %d added, want %d", nv, na, vocab);
    CHECK(cJSON_GetArraySize(merges) == vocab - 258, "%d merges", cJSON_GetArraySize(merges));
    int bad = 0;
    cJSON *m;
    cJSON_ArrayForEach(m, merges) {
        const char *s = cJSON_IsString(m) ? m->valuestring : NULL;
        const char *sp = s ? strchr(s, ' ') : NULL;
        bad += !sp || strchr(sp + 1, ' ') || sp == s || !sp[1];
    }
    CHECK(bad == 0, "%d merges are not \"a b\"", bad);
    cJSON *a0 = cJSON_GetArrayItem(added, 0);
    CHECK(cJSON_GetObjectItem(a0, "id")->valueint == 0 && cJSON_IsTrue(cJSON_GetObjectItem(a0, "special")), "added[0]");
    cJSON *pre = cJSON_GetObjectItem(j, "pre_tokenizer");
    CHECK(cJSON_GetArraySize(cJSON_GetObjectItem(pre, "pretokenizers")) == 4, "pre-tokenizer: 3 splits + ByteLevel");
    CHECK(strcmp(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "decoder"), "type")->valuestring, "ByteLevel") == 0, "decoder");
    cJSON_Delete(j);
}

static void train_corpus(const char *rel, int vocab, double min_ratio) {
    const char *dd = harness_data_dir();
    if (!dd) {
        printf("    SKIP: no shared data directory\n");
        return;
    }
    char in[4096];
    snprintf(in, sizeof in, "%s/%s", dd, rel);
    const char *files[] = {in};
    const char *out = path_in_tmp("trained.json");
    dc_err e = {0};
    int rc = train(files, 1, vocab, out, &e);
    CHECK(rc == DC_OK, "train: %s", e.msg);
    if (rc) return;
    check_hf_shape(out, vocab);
    dc_tokenizer *t;
    if (dc_tokenizer_load(out, &t, &e)) {
        CHECK(0, "reload: %s", e.msg);
        return;
    }
    CHECK(dc_tokenizer_n_vocab(t) == vocab && dc_tokenizer_bos(t) == 0 && dc_tokenizer_eos(t) == 1 &&
              strcmp(dc_tokenizer_pre(t), "deepseek-v3") == 0,
          "n_vocab %d bos %d eos %d pre %s", dc_tokenizer_n_vocab(t), dc_tokenizer_bos(t), dc_tokenizer_eos(t),
          dc_tokenizer_pre(t));
    char *s, *back;
    size_t n, k, bn;
    int *ids;
    if (!file_read_all(in, &s, &n, &e) && !dc_tokenizer_encode(t, s, n, 0, &ids, &k, &e)) {
        CHECK(!dc_tokenizer_decode(t, ids, k, 0, &back, &bn, &e) && bn == n && memcmp(back, s, n) == 0, "round trip");
        CHECK((double)n / (double)k >= min_ratio, "%.2f bytes per token, want >= %.2f", (double)n / k, min_ratio);
        printf("    %s, vocab %d: %zu bytes -> %zu tokens (%.2f bytes/token)\n", rel, vocab, n, k, (double)n / k);
        free(back);
        free(ids);
        free(s);
    }
    dc_tokenizer_free(t);
}

static void test_train_shakespeare(void) { train_corpus("corpus/tinyshakespeare.txt", 2000, 3.0); }
static void test_train_hongloumeng(void) { train_corpus("corpus/hongloumeng_zh.txt", 4000, 2.5); }

static void test_deterministic(void) {
    const char *dd = harness_data_dir();
    if (!dd) {
        printf("    SKIP: no shared data directory\n");
        return;
    }
    char in[4096];
    snprintf(in, sizeof in, "%s/corpus/tinystories_valid_head.txt", dd);
    const char *files[] = {in}, *a = path_in_tmp("a.json"), *b = path_in_tmp("b.json");
    dc_err e = {0};
    CHECK(train(files, 1, 1000, a, &e) == DC_OK && train(files, 1, 1000, b, &e) == DC_OK, "train: %s", e.msg);
    char *sa, *sb;
    size_t na, nb;
    if (!file_read_all(a, &sa, &na, &e) && !file_read_all(b, &sb, &nb, &e)) {
        CHECK(na == nb && memcmp(sa, sb, na) == 0, "two runs wrote different files");
        free(sa), free(sb);
    }
}

static void test_errors(void) {
    dc_err e = {0};
    const char *missing[] = {"/nonexistent/corpus.txt"};
    CHECK(train(missing, 1, 1000, path_in_tmp("x.json"), &e) == DC_EIO, "missing file: %s", e.msg);
    CHECK(train(missing, 1, 100, path_in_tmp("x.json"), &e) == DC_EARG, "vocab below 258: %s", e.msg);
    CHECK(train(missing, 0, 1000, path_in_tmp("x.json"), &e) == DC_EARG, "no files");
    static const char *const EMPTY[] = {""};
    dc_bpe_train_opts o = {1000, EMPTY, 1, 2, NULL, NULL, NULL};
    CHECK(dc_bpe_train(missing, 1, &o, path_in_tmp("x.json"), &e) == DC_EARG, "empty special");
    dc_bpe_train_opts p = {1000, NULL, 0, 2, "no-such-pre", NULL, NULL};
    const char *in = path_in_tmp("tiny.txt");
    file_write_atomic(in, "hello", 5, &e);
    CHECK(dc_bpe_train(&in, 1, &p, path_in_tmp("x.json"), &e) == DC_ENOTFOUND, "unknown pre-tokenizer: %s", e.msg);
}

int main(void) {
    RUN(test_tiny_corpus_merges);
    RUN(test_train_shakespeare);
    RUN(test_train_hongloumeng);
    RUN(test_deterministic);
    RUN(test_errors);
    return harness_done();
}
