/*
 * test_tokenizer.c — src/tokenizer/ encode and decode.
 *
 * Exact ids: llama.cpp's 46 test cases for each of the deepseek-llm,
 * deepseek-coder and gpt-2 GGUF vocabs (ids made by the HF tokenizer), the
 * 8,191 ids of a WikiText-2 chunk in the DeepSeek-V2 vocab (its text is what
 * the ids decode to, so encoding that text must give the ids back), and
 * DeepSeek-V3's tokenizer.json (encode("Hello!") == [19923, 3], the layout
 * of its byte tokens and merge results). Round trips decode(encode(x)) == x
 * on English, code, digits, 红楼梦, emoji, whitespace runs, random Unicode and
 * invalid UTF-8. The heap path of BPE against a naive reference on long
 * words; the streaming decoder; errors; threads; tokenizer.json write/read.
 * Without ../shared/data every test prints SKIP and passes.
 */
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include "base/file.h"
#include "base/rng.h"
#include "harness.h"
#include "tokenizer/bytelevel.h"
#include "tokenizer/tokenizer.h"

static const char *DD;        /* the shared data dir, NULL when absent */
static dc_tokenizer *V3;      /* deepseek-v3/tokenizer.json */
static dc_tokenizer *GG[3];   /* the GGUF vocabs */
static const char *GG_NAME[3] = {"deepseek-llm", "deepseek-coder", "gpt-2"};

#define NEED_DATA()                                          \
    do {                                                     \
        if (!DD || !V3) {                                    \
            printf("    SKIP: no shared data directory\n");  \
            return;                                          \
        }                                                    \
    } while (0)

static char *read_data(const char *rel, size_t *n) {
    char path[4096], *s = NULL;
    dc_err e;
    snprintf(path, sizeof path, "%s/%s", DD, rel);
    if (file_read_all(path, &s, n, &e)) {
        CHECK(0, "%s", e.msg);
        return NULL;
    }
    return s;
}

/* roundtrip: decode(encode(s)) == s; returns the token count (-1 on failure) */
static long roundtrip(const dc_tokenizer *t, const char *s, size_t n, int flags, const char *what) {
    int *ids;
    size_t k, m;
    char *back;
    dc_err e = {0};
    if (dc_tokenizer_encode(t, s, n, flags, &ids, &k, &e)) {
        CHECK(0, "%s: encode: %s", what, e.msg);
        return -1;
    }
    int rc = dc_tokenizer_decode(t, ids, k, 0, &back, &m, &e);
    CHECK(rc == DC_OK, "%s: decode: %s", what, e.msg);
    int same = !rc && m == n && memcmp(back, s, n) == 0;
    if (!rc && !same) {
        size_t i = 0;
        while (i < m && i < n && back[i] == s[i]) i++;
        CHECK(0, "%s: round trip differs at byte %zu of %zu (got %zu bytes)", what, i, n, m);
    }
    free(ids);
    if (!rc) free(back);
    return same ? (long)k : -1;
}

// ---------------------------------------------------------------- golden ids
static void golden_gguf(int which) {
    NEED_DATA();
    char rel[256];
    size_t ni, no;
    snprintf(rel, sizeof rel, "tokenizer/golden/ggml-vocab-%s.gguf.inp", GG_NAME[which]);
    char *in = read_data(rel, &ni);
    snprintf(rel, sizeof rel, "tokenizer/golden/ggml-vocab-%s.gguf.out", GG_NAME[which]);
    char *out = read_data(rel, &no);
    if (!in || !out || !GG[which]) {
        CHECK(GG[which], "%s vocab did not load", GG_NAME[which]);
        free(in), free(out);
        return;
    }
    const char *sep = "\n__ggml_vocab_test__\n";
    char *p = in, *q = out;
    int ncase = 0, good = 0;
    for (char *e; (e = strstr(p, sep)); p = e + strlen(sep), ncase++) {
        char *qe = strchr(q, '\n');
        if (!qe) break;
        *qe = 0;
        int *ids;
        size_t n;
        dc_err err = {0};
        char got[16384];
        size_t g = 0;
        got[0] = 0;
        if (dc_tokenizer_encode(GG[which], p, (size_t)(e - p), 0, &ids, &n, &err) == DC_OK) {
            for (size_t i = 0; i < n && g < sizeof got - 16; i++) g += (size_t)snprintf(got + g, sizeof got - g, " %d", ids[i]);
            free(ids);
        }
        if (strcmp(got, q) == 0) good++;
        else CHECK(0, "%s case %d \"%.*s\":\n      want%s\n      got %s", GG_NAME[which], ncase, (int)(e - p), p, q, got);
        roundtrip(GG[which], p, (size_t)(e - p), 0, "golden case");
        q = qe + 1;
    }
    CHECK(ncase == 46, "%s: %d cases, want 46", GG_NAME[which], ncase);
    printf("    %s: %d/%d cases exact\n", GG_NAME[which], good, ncase);
    free(in);
    free(out);
}
static void test_golden_deepseek_llm(void) { golden_gguf(0); }
static void test_golden_deepseek_coder(void) { golden_gguf(1); }
static void test_golden_gpt2(void) { golden_gguf(2); }

static void test_wikitext_deepseek_v2(void) {
    NEED_DATA();
    size_t sl;
    char *s = read_data("tokenizer/golden/deepseek_v2_wikitext2_chunk.ids.txt", &sl);
    if (!s || !GG[0]) {
        free(s);
        return;
    }
    int *ids = malloc(sizeof(int) * (sl / 2 + 1));
    size_t n = 0;
    for (char *p = s; *p;) {
        if (*p >= '0' && *p <= '9') ids[n++] = (int)strtol(p, &p, 10);
        else p++;
    }
    CHECK(n == 8192 && ids[0] == 100000, "%zu ids, first %d (want 8192, BOS 100000)", n, ids[0]);
    char *text;
    size_t tl, en;
    int *enc;
    dc_err e = {0};
    int rc = dc_tokenizer_decode(GG[0], ids + 1, n - 1, 0, &text, &tl, &e);
    CHECK(rc == DC_OK, "decode: %s", e.msg);
    if (!rc && dc_tokenizer_encode(GG[0], text, tl, DC_TOK_BOS, &enc, &en, &e) == DC_OK) {
        size_t i = 0;
        while (i < en && i < n && enc[i] == ids[i]) i++;
        CHECK(en == n && i == n, "re-encoded %zu ids, first difference at %zu", en, i);
        printf("    %zu bytes of WikiText-2 -> %zu ids, all equal to HF's\n", tl, en);
        free(enc);
    }
    if (!rc) free(text);
    free(ids);
    free(s);
}

static void expect_ids(const dc_tokenizer *t, const char *s, int flags, const int *want, size_t nw) {
    int *ids;
    size_t n;
    dc_err e = {0};
    if (dc_tokenizer_encode(t, s, strlen(s), flags, &ids, &n, &e)) {
        CHECK(0, "encode \"%s\": %s", s, e.msg);
        return;
    }
    int ok = n == nw;
    for (size_t i = 0; ok && i < n; i++) ok = ids[i] == want[i];
    char got[512];
    size_t g = 0;
    got[0] = 0;
    for (size_t i = 0; i < n && g < 480; i++) g += (size_t)snprintf(got + g, sizeof got - g, " %d", ids[i]);
    CHECK(ok, "encode \"%s\" (flags %d) gave%s", s, flags, got);
    free(ids);
}

static void test_v3_known_ids(void) {
    NEED_DATA();
    expect_ids(V3, "Hello!", 0, (int[]){19923, 3}, 2);
    expect_ids(V3, "Hello!", DC_TOK_BOS, (int[]){0, 19923, 3}, 3);
    expect_ids(V3, "", 0, NULL, 0);
    /* non-special added tokens always (as HF), special ones only with DC_TOK_SPECIAL, none with DC_TOK_PLAIN */
    const char *chat = "<｜begin▁of▁sentence｜><｜User｜>Hello!<｜Assistant｜><think>\n";
    expect_ids(V3, chat, DC_TOK_SPECIAL, (int[]){0, 128803, 19923, 3, 128804, 128798, 201}, 7);
    int *ids;
    size_t n;
    dc_err e = {0};
    if (!dc_tokenizer_encode(V3, chat, strlen(chat), 0, &ids, &n, &e)) {
        int bos = 0, user = 0;
        for (size_t i = 0; i < n; i++) bos += ids[i] == 0, user += ids[i] == 128803;
        CHECK(bos == 0 && user == 1 && n > 7, "default flags: BOS as text, <｜User｜> as a token (%zu ids)", n);
        free(ids);
    }
    if (!dc_tokenizer_encode(V3, chat, strlen(chat), DC_TOK_PLAIN, &ids, &n, &e)) {
        int added = 0;
        for (size_t i = 0; i < n; i++) added += ids[i] <= 2 || ids[i] >= 128000;
        CHECK(added == 0, "DC_TOK_PLAIN produced %d added-token ids", added);
        free(ids);
    }
    for (int f = 0; f < 3; f++) roundtrip(V3, chat, strlen(chat), (int[]){0, DC_TOK_SPECIAL, DC_TOK_PLAIN}[f], "added tokens");
    CHECK(dc_tokenizer_bos(V3) == 0 && dc_tokenizer_eos(V3) == 1, "bos %d eos %d", dc_tokenizer_bos(V3), dc_tokenizer_eos(V3));
    CHECK(dc_tokenizer_n_vocab(V3) == 128815, "n_vocab %d", dc_tokenizer_n_vocab(V3));
    CHECK(strcmp(dc_tokenizer_pre(V3), "deepseek-v3") == 0, "pre %s", dc_tokenizer_pre(V3));
    CHECK(dc_tokenizer_is_special(V3, 0) && !dc_tokenizer_is_special(V3, 128803) && dc_tokenizer_is_special(V3, 128805),
          "special flags");
    CHECK(dc_tokenizer_find(V3, "<think>", 7) == 128798, "find <think>");
}

/* SOURCES.md: ids 3..258 are the bytes in bytes_to_unicode order; merge rank r makes id 259 + r */
static void test_v3_vocab_layout(void) {
    NEED_DATA();
    int id = 3, bad = 0;
    for (int pass = 0; pass < 2; pass++)
        for (int b = 0; b < 256; b++) {
            if ((bytelevel_cp((uint8_t)b) == (uint32_t)b) != (pass == 0)) continue;
            size_t k;
            const char *p = dc_tokenizer_piece(V3, id++, &k);
            bad += !p || k != 1 || (uint8_t)p[0] != b;
        }
    CHECK(bad == 0, "%d byte tokens out of place", bad);
    const vocab *v = &V3->v;
    CHECK(v->nmerges == 127741, "%d merges", v->nmerges);
    int off = 0;
    for (uint64_t i = 0; i < v->merges.cap; i++) {
        if (v->merges.keys[i] == UINT64_MAX) continue;
        int rank = (int)(v->merges.vals[i] >> 32), res = (int)(uint32_t)v->merges.vals[i];
        off += res != 259 + rank;
    }
    CHECK(off == 0, "%d merges whose result is not 259 + rank", off);
}

/* the built-in "deepseek-v3" regexes give the same ids as those in the file */
static void test_v3_named_pretok_matches_file(void) {
    NEED_DATA();
    dc_tokenizer named = *V3;
    dc_err e = {0};
    pretok_init(&named.pre, &e);
    CHECK(pretok_named(&named.pre, "deepseek-v3", &e) == DC_OK, "%s", e.msg);
    const char *files[] = {"corpus/tinyshakespeare.txt", "corpus/hongloumeng_zh.txt", "corpus/tinystories_valid_head.txt"};
    for (size_t f = 0; f < 3; f++) {
        size_t n, k1, k2;
        char *s = read_data(files[f], &n);
        int *a, *b;
        if (!s) continue;
        size_t m = n < 400000 ? n : 400000;
        while (m < n && ((uint8_t)s[m] & 0xc0) == 0x80) m++;
        if (!dc_tokenizer_encode(V3, s, m, 0, &a, &k1, &e) && !dc_tokenizer_encode(&named, s, m, 0, &b, &k2, &e)) {
            CHECK(k1 == k2 && memcmp(a, b, sizeof(int) * k1) == 0, "%s: ids differ", files[f]);
            free(a), free(b);
        }
        free(s);
    }
    pretok_free(&named.pre);
}

// ---------------------------------------------------------------- round trips
static void all_roundtrip(const char *s, size_t n, const char *what) {
    roundtrip(V3, s, n, 0, what);
    roundtrip(V3, s, n, DC_TOK_SPECIAL, what);
    roundtrip(V3, s, n, DC_TOK_PLAIN, what);
    for (int i = 0; i < 3; i++)
        if (GG[i]) roundtrip(GG[i], s, n, 0, what);
}

/* bytes_roundtrip: for any bytes. The DeepSeek LLM and Coder vocabs have no
 * token for the 13 bytes that never occur in UTF-8 (C0, C1, F5..FF), so with
 * them those bytes are dropped and everything else must survive. */
static void bytes_roundtrip(const char *s, size_t n, const char *what) {
    roundtrip(V3, s, n, 0, what);
    roundtrip(V3, s, n, DC_TOK_SPECIAL, what);
    if (GG[2]) roundtrip(GG[2], s, n, 0, what);
    char *kept = malloc(n + 1);
    for (int i = 0; i < 2; i++) {
        if (!GG[i]) continue;
        size_t m = 0;
        for (size_t j = 0; j < n; j++)
            if (GG[i]->v.byte_id[(uint8_t)s[j]] >= 0) kept[m++] = s[j];
        int *ids;
        size_t k, bl;
        char *back;
        dc_err e = {0};
        if (dc_tokenizer_encode(GG[i], s, n, DC_TOK_PLAIN, &ids, &k, &e)) {
            CHECK(0, "%s: %s", what, e.msg);
            continue;
        }
        if (!dc_tokenizer_decode(GG[i], ids, k, 0, &back, &bl, &e)) {
            CHECK(bl == m && memcmp(back, kept, m) == 0, "%s (%s): bytes other than C0 C1 F5..FF lost", what, GG_NAME[i]);
            free(back);
        }
        free(ids);
    }
    free(kept);
}

static void test_roundtrip_corpora(void) {
    NEED_DATA();
    const char *files[] = {"corpus/tinyshakespeare.txt", "corpus/hongloumeng_zh.txt", "corpus/tinystories_valid_head.txt"};
    for (size_t f = 0; f < 3; f++) {
        size_t n;
        char *s = read_data(files[f], &n);
        if (!s) continue;
        long k = roundtrip(V3, s, n, 0, files[f]);
        printf("    %-36s %8zu bytes -> %7ld tokens (%.2f bytes/token)\n", files[f], n, k, k > 0 ? (double)n / k : 0);
        for (int i = 0; i < 3; i++)
            if (GG[i]) roundtrip(GG[i], s, n < 300000 ? n : 300000, 0, files[f]);
        free(s);
    }
}

static const char CODE[] =
    "#include <stdio.h>\n\nint main(int argc, char **argv) {\n\tfor (int i = 0; i < argc; i++)\n"
    "\t\tprintf(\"%d: %s\\n\", i, argv[i]);\n    return 0x7fffffff >> 3;  // done\n}\n"
    "def f(x):\n    '''doc'''\n    return {k: v**2 for k, v in x.items() if v != None}  # ok\n\n"
    "    \n\t  \r\n  const a = [1,2,3].map((x) => x * 2);\n<div class=\"x\">&amp;</div>\n";

static void test_roundtrip_samples(void) {
    NEED_DATA();
    all_roundtrip(CODE, sizeof CODE - 1, "code");
    const char *srcs[] = {"src/tokenizer/bpe.c", "src/tokenizer/pretok.c", "Makefile"};
    for (size_t i = 0; i < 3; i++) {
        char *s;
        size_t n;
        dc_err e;
        if (!file_read_all(srcs[i], &s, &n, &e)) { /* the repo's own sources, when run from its root */
            all_roundtrip(s, n, srcs[i]);
            free(s);
        }
    }
    const char *digits[] = {"0", "12", "123", "1234", "1234567890123", "3.14159265358979 -42 1e-10 0x1F",
                            "٣٤٥ ١٢ 二〇二四 ½ ⅷ", "2024-11-25 06:54:01,000 +0000"};
    for (size_t i = 0; i < sizeof digits / sizeof *digits; i++) all_roundtrip(digits[i], strlen(digits[i]), "digits");
    const char *emoji[] = {"🦙", "👍🏽 👨‍👩‍👧‍👦 🏳️‍🌈 🇯🇵🇺🇸", "e\xcc\x81 n\xcc\x83 a\xcc\x8a", "😀😃😄😁😆😅😂🤣☺️😊",
                           "日本語のテキスト、カタカナ、ひらがな。한국어 텍스트.", "Ελληνικά Русский עברית العربية हिन्दी"};
    for (size_t i = 0; i < sizeof emoji / sizeof *emoji; i++) all_roundtrip(emoji[i], strlen(emoji[i]), "unicode");
    const char *ws[] = {" ", "  ", "\t", "\n", "\n\n\n", "\r\n", " \n \n", "a  b   c    d", "\t\t\tx\n\t\ty",
                        "line \n\n  \t\n", "\u3000全角\u3000空白", "nbsp\u00a0here\u2003em", "   trailing   "};
    for (size_t i = 0; i < sizeof ws / sizeof *ws; i++) all_roundtrip(ws[i], strlen(ws[i]), "whitespace");
}

/* long runs: one word of a megabyte must not be quadratic or blow the JIT stack */
static void test_roundtrip_long_runs(void) {
    NEED_DATA();
    size_t n = 1 << 20;
    char *s = malloc(n);
    const char fill[] = {' ', '\n', 'a', '1', '!'};
    for (size_t f = 0; f < sizeof fill; f++) {
        memset(s, fill[f], n);
        char what[32];
        snprintf(what, sizeof what, "1 MiB of '%c'", fill[f] == '\n' ? 'N' : fill[f]);
        roundtrip(V3, s, n, 0, what);
        roundtrip(GG[0] ? GG[0] : V3, s, n / 4, 0, what);
    }
    for (size_t i = 0; i + 3 <= n; i += 3) memcpy(s + i, "\xe7\x9a\x84", 3); /* 的 */
    roundtrip(V3, s, n - n % 3, 0, "a run of one CJK character");
    for (size_t i = 0; i < n; i++) s[i] = " \t\n\r"[(i * 7 + i / 3) % 4];
    roundtrip(V3, s, n, 0, "mixed whitespace");
    free(s);
}

static size_t random_utf8(rng *r, char *out, size_t ncp) {
    static const uint32_t base[] = {0x20, 0xa0, 0x370, 0x400, 0x600, 0x900, 0x3040, 0x4e00, 0xac00, 0x1f300, 0x20000};
    size_t o = 0;
    for (size_t i = 0; i < ncp; i++) {
        uint32_t cp;
        uint64_t x = rng_u64(r);
        if (x % 4 == 0) cp = 0x20 + (uint32_t)(x >> 8) % 95;           /* ASCII */
        else if (x % 4 == 1) cp = (uint32_t)(x >> 8) % 0x10ffff;       /* anything */
        else cp = base[(x >> 8) % 11] + (uint32_t)(x >> 20) % 256;     /* a script block */
        if (cp >= 0xd800 && cp < 0xe000) cp = 0xfffd;
        o += (size_t)utf8_encode(cp, out + o);
    }
    return o;
}

static void test_roundtrip_random_unicode(void) {
    NEED_DATA();
    rng r;
    rng_seed(&r, 11);
    char *s = malloc(4 * 200000);
    for (int it = 0; it < 200; it++) {
        size_t n = random_utf8(&r, s, 1 + rng_u64(&r) % 1000);
        CHECK(utf8_valid_len((uint8_t *)s, n) == n, "generator made invalid UTF-8");
        all_roundtrip(s, n, "random unicode");
    }
    size_t n = random_utf8(&r, s, 200000);
    roundtrip(V3, s, n, 0, "200k random code points");
    free(s);
}

static void test_roundtrip_invalid_utf8(void) {
    NEED_DATA();
    const char *cases[] = {"\xff", "\x80", "abc\xc3", "\xc3(", "\xc0\x80", "\xe0\x80\xaf", "\xed\xa0\x80 surrogate",
                           "\xf4\x90\x80\x80", "\xf5\x80\x80\x80", "\xfe\xff", "ok \xe4\xbd", "\xe4\xbd\xa0\xe5\xa5",
                           "\xf0\x9f\xa6", "mid\x80" "dle\xbf", "<｜User｜>\xff<think>\xc3"};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) bytes_roundtrip(cases[i], strlen(cases[i]), "invalid utf-8");
    roundtrip(V3, "a\0b\0", 4, 0, "NUL bytes");
    rng r;
    rng_seed(&r, 5);
    size_t n = 1 << 16;
    char *s = malloc(n);
    for (int it = 0; it < 20; it++) {
        size_t m = 1 + rng_u64(&r) % n;
        for (size_t i = 0; i < m; i++) s[i] = (char)(it % 2 ? rng_u64(&r) : (rng_u64(&r) % 5 ? 'a' + rng_u64(&r) % 26 : rng_u64(&r)));
        bytes_roundtrip(s, m, "random bytes");
    }
    free(s);
}

// ---------------------------------------------------------------- BPE internals
/* naive: merge the lowest-rank adjacent pair, leftmost first, until none */
static size_t naive_bpe(const vocab *v, const uint8_t *s, size_t n, int *ids) {
    size_t m = 0;
    for (size_t i = 0; i < n; i++) ids[m++] = v->byte_id[s[i]];
    for (;;) {
        int best = -1, rank, res, br = 0, bres = 0;
        for (size_t i = 0; i + 1 < m; i++)
            if (vocab_merge(v, ids[i], ids[i + 1], &rank, &res) && (best < 0 || rank < br)) best = (int)i, br = rank, bres = res;
        if (best < 0) return m;
        ids[best] = bres;
        memmove(ids + best + 1, ids + best + 2, sizeof(int) * (m - (size_t)best - 2));
        m--;
    }
}

static void test_bpe_heap_matches_naive(void) {
    NEED_DATA();
    size_t hn;
    char *hlm = read_data("corpus/hongloumeng_zh.txt", &hn);
    if (!hlm) return;
    rng r;
    rng_seed(&r, 9);
    bpe_state st;
    bpe_state_init(&st);
    ivec out = {0};
    int *ref = malloc(sizeof(int) * 4096);
    uint8_t w[4096];
    int bad = 0, words = 0;
    for (int it = 0; it < 300; it++) {
        size_t n = 2 + rng_u64(&r) % 600;
        int kind = it % 3;
        if (kind == 0) { /* a stretch of Chinese text, cut anywhere (even mid-character) */
            size_t at = rng_u64(&r) % (hn - n);
            memcpy(w, hlm + at, n);
        } else if (kind == 1) { /* English-like letters */
            for (size_t i = 0; i < n; i++) w[i] = (uint8_t)"etaoinshrdlu "[rng_u64(&r) % 13];
        } else { /* repeats, where equal ranks tie */
            for (size_t i = 0; i < n; i++) w[i] = (uint8_t)"aab"[(i / (1 + it % 4)) % 3];
        }
        out.n = 0;
        bpe_word(&V3->v, &st, w, n, &out);
        size_t m = naive_bpe(&V3->v, w, n, ref);
        bad += out.n != m || memcmp(out.a, ref, sizeof(int) * m) != 0;
        words++;
    }
    CHECK(bad == 0, "%d of %d words differ between bpe_word and the naive reference", bad, words);
    free(out.a);
    free(ref);
    bpe_state_free(&st);
    free(hlm);
}

// ---------------------------------------------------------------- streaming decode
static void stream_check(const dc_tokenizer *t, const char *s, size_t n, int valid, const char *what) {
    int *ids;
    size_t k;
    dc_err e = {0};
    if (dc_tokenizer_encode(t, s, n, 0, &ids, &k, &e)) return;
    dc_detok *d;
    if (dc_detok_new(t, 0, &d, &e)) {
        CHECK(0, "%s", e.msg);
        free(ids);
        return;
    }
    char *acc = malloc(n + 16);
    size_t an = 0;
    int broken = 0;
    for (size_t i = 0; i < k; i++) {
        const char *p;
        size_t len;
        if (dc_detok_push(d, ids[i], &p, &len, &e)) break;
        if (valid && utf8_valid_len((const uint8_t *)p, len) != len) broken++;
        if (an + len <= n) memcpy(acc + an, p, len);
        an += len;
    }
    const char *p;
    size_t len;
    dc_detok_flush(d, &p, &len);
    if (an + len <= n) memcpy(acc + an, p, len);
    an += len;
    CHECK(an == n && memcmp(acc, s, n) == 0, "%s: streamed bytes differ from the text", what);
    CHECK(broken == 0, "%s: %d pushes released a broken character", what, broken);
    dc_detok_free(d);
    free(acc);
    free(ids);
}

static void test_stream_decoder(void) {
    NEED_DATA();
    size_t n;
    char *s = read_data("corpus/hongloumeng_zh.txt", &n);
    if (!s) return;
    stream_check(V3, s, 300000, 1, "红楼梦");
    const char *mix = "emoji 🦙👨‍👩‍👧 and 中文 and \xff\xfe bad \xe4\xbd and more \xf0\x9f";
    stream_check(V3, mix, strlen(mix), 0, "mixed invalid");
    stream_check(V3, "🦙", 4, 1, "one emoji");
    free(s);
    /* skip-special drops BOS in streaming too */
    dc_detok *d;
    dc_err e = {0};
    const char *p;
    size_t len;
    dc_detok_new(V3, DC_TOK_SKIP_SPECIAL, &d, &e);
    CHECK(dc_detok_push(d, 0, &p, &len, &e) == DC_OK && len == 0, "BOS skipped");
    CHECK(dc_detok_push(d, -1, &p, &len, &e) == DC_EARG, "bad id");
    dc_detok_free(d);
    dc_detok_free(NULL);
}

// ---------------------------------------------------------------- errors, flags
static void test_decode_errors_and_flags(void) {
    NEED_DATA();
    char *s;
    size_t n;
    dc_err e = {0};
    CHECK(dc_tokenizer_decode(V3, (int[]){19923, -1}, 2, 0, &s, &n, &e) == DC_EARG, "id -1");
    CHECK(dc_tokenizer_decode(V3, (int[]){200000}, 1, 0, &s, &n, &e) == DC_EARG && strstr(e.msg, "200000"), "big id: %s", e.msg);
    CHECK(dc_tokenizer_decode(V3, NULL, 0, 0, &s, &n, &e) == DC_OK && n == 0 && s[0] == 0, "empty decode");
    free(s);
    CHECK(dc_tokenizer_decode(V3, (int[]){0, 19923, 3, 1}, 4, DC_TOK_SKIP_SPECIAL, &s, &n, &e) == DC_OK &&
              strcmp(s, "Hello!") == 0, "skip special");
    free(s);
    CHECK(dc_tokenizer_decode(V3, (int[]){0, 19923}, 2, 0, &s, &n, &e) == DC_OK &&
              strcmp(s, "<｜begin▁of▁sentence｜>Hello") == 0, "special kept");
    free(s);
    CHECK(dc_tokenizer_piece(V3, -5, &n) == NULL && dc_tokenizer_piece(V3, 1 << 30, &n) == NULL, "piece range");
}

static void write_file(const char *path, const char *s) {
    dc_err e;
    file_write_atomic(path, s, strlen(s), &e);
}

static void test_load_errors(void) {
    dc_tokenizer *t = NULL;
    dc_err e = {0};
    CHECK(dc_tokenizer_load("/nonexistent/tokenizer.json", &t, &e) == DC_EIO && !t, "missing file: %s", e.msg);
    const char *dir = harness_tmpdir();
    char p[512];
    snprintf(p, sizeof p, "%s/bad.json", dir);
    const char *bad[] = {
        "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0",                      /* truncated */
        "{\"model\": {\"type\": \"Unigram\", \"vocab\": {}}}",                        /* other model */
        "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 1}, \"merges\": [\"a b\"]}}", /* result missing */
        "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": [\"a x\"]}}", /* side missing */
        "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": -3}}}",                   /* bad id */
        "{\"normalizer\": {\"type\": \"NFC\"}, \"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}}}",
        "{\"pre_tokenizer\": {\"type\": \"Split\", \"pattern\": {\"Regex\": \"(\"}, \"behavior\": \"Isolated\"},"
        " \"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}}}",                    /* bad regex */
        "{\"pre_tokenizer\": {\"type\": \"Split\", \"pattern\": {\"Regex\": \"a\"}, \"behavior\": \"Removed\"},"
        " \"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}}}",                    /* other behaviour */
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        write_file(p, bad[i]);
        int rc = dc_tokenizer_load(p, &t, &e);
        CHECK(rc == DC_EFORMAT && !t, "bad file %zu: rc %d (%s)", i, rc, e.msg);
        dc_tokenizer_free(t);
        t = NULL;
    }
    /* a minimal good one: bytes a, b, merge a b -> ab */
    write_file(p, "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 1, \"ab\": 2}, \"merges\": [[\"a\", \"b\"]]},"
                  " \"pre_tokenizer\": {\"type\": \"ByteLevel\", \"add_prefix_space\": false, \"use_regex\": true}}");
    CHECK(dc_tokenizer_load(p, &t, &e) == DC_OK, "pair-form merges: %s", e.msg);
    if (t) {
        expect_ids(t, "abab ba", 0, (int[]){2, 2, 1, 0}, 4); /* the space has no token: dropped */
        dc_tokenizer_free(t);
    }
    dc_tokenizer_free(NULL);
}

// ---------------------------------------------------------------- threads, save
static void test_threads_agree(void) {
    NEED_DATA();
    size_t n;
    char *s = read_data("corpus/tinystories_valid_head.txt", &n);
    if (!s) return;
    enum { CH = 8 };
    size_t cut[CH + 1];
    for (int c = 0; c <= CH; c++) cut[c] = n * (size_t)c / CH;
    int *seq[CH], *par[CH];
    size_t ns[CH], np[CH];
    dc_err e;
    for (int c = 0; c < CH; c++) dc_tokenizer_encode(V3, s + cut[c], cut[c + 1] - cut[c], 0, &seq[c], &ns[c], &e);
#pragma omp parallel for num_threads(2) schedule(dynamic)
    for (int c = 0; c < CH; c++) {
        dc_err le;
        dc_tokenizer_encode(V3, s + cut[c], cut[c + 1] - cut[c], 0, &par[c], &np[c], &le);
    }
    for (int c = 0; c < CH; c++) {
        CHECK(ns[c] == np[c] && memcmp(seq[c], par[c], sizeof(int) * ns[c]) == 0, "chunk %d differs across threads", c);
        free(seq[c]), free(par[c]);
    }
    free(s);
}

static void test_save_json_roundtrip(void) {
    NEED_DATA();
    char p[512];
    snprintf(p, sizeof p, "%s/v3.json", harness_tmpdir());
    dc_err e = {0};
    CHECK(tok_save_json(V3, p, &e) == DC_OK, "save: %s", e.msg);
    dc_tokenizer *t = NULL;
    CHECK(dc_tokenizer_load(p, &t, &e) == DC_OK, "reload: %s", e.msg);
    if (!t) return;
    CHECK(t->v.n == V3->v.n && t->v.nmerges == V3->v.nmerges && t->pre.n == V3->pre.n, "sizes differ");
    size_t n;
    char *s = read_data("corpus/tinyshakespeare.txt", &n);
    int *a, *b;
    size_t ka, kb;
    if (s && !dc_tokenizer_encode(V3, s, n, 0, &a, &ka, &e) && !dc_tokenizer_encode(t, s, n, 0, &b, &kb, &e)) {
        CHECK(ka == kb && memcmp(a, b, sizeof(int) * ka) == 0, "ids differ after save/load");
        free(a), free(b);
    }
    expect_ids(t, "<｜User｜>Hello!", DC_TOK_SPECIAL, (int[]){128803, 19923, 3}, 3);
    free(s);
    dc_tokenizer_free(t);
}

int main(void) {
    DD = harness_data_dir();
    if (DD) {
        char p[4096];
        dc_err e = {0};
        snprintf(p, sizeof p, "%s/tokenizer/deepseek-v3", DD);
        if (dc_tokenizer_load(p, &V3, &e)) printf("  cannot load %s: %s\n", p, e.msg);
        for (int i = 0; i < 3; i++) {
            snprintf(p, sizeof p, "%s/tokenizer/llama.cpp-vocab/ggml-vocab-%s.gguf", DD, GG_NAME[i]);
            if (dc_tokenizer_load(p, &GG[i], &e)) printf("  cannot load %s: %s\n", p, e.msg);
        }
    }
    RUN(test_golden_deepseek_llm);
    RUN(test_golden_deepseek_coder);
    RUN(test_golden_gpt2);
    RUN(test_wikitext_deepseek_v2);
    RUN(test_v3_known_ids);
    RUN(test_v3_vocab_layout);
    RUN(test_v3_named_pretok_matches_file);
    RUN(test_roundtrip_corpora);
    RUN(test_roundtrip_samples);
    RUN(test_roundtrip_long_runs);
    RUN(test_roundtrip_random_unicode);
    RUN(test_roundtrip_invalid_utf8);
    RUN(test_bpe_heap_matches_naive);
    RUN(test_stream_decoder);
    RUN(test_decode_errors_and_flags);
    RUN(test_load_errors);
    RUN(test_threads_agree);
    RUN(test_save_json_roundtrip);
    dc_tokenizer_free(V3);
    for (int i = 0; i < 3; i++) dc_tokenizer_free(GG[i]);
    return harness_done();
}
