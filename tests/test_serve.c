/*
 * test_serve.c — the parts of src/serve/ that need no HTTP: the R1 reasoning
 * split fed in every possible piece size, UTF-8 checks and the U+FFFD
 * replacement browsers use, request validation against a real tokenizer
 * (defaults, limits, the OpenAI error fields), OpenAI response shapes, and
 * the prefix cache on a real engine (fork of the longest prefix, LRU
 * eviction, sequences given back). The server as a whole is tested with real
 * clients in tests/server/ (openai npm client, Chromium, load).
 */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>
#include "harness.h"
#include "serve/sv.h"

#define BIN DC_BUILD "/deepc"

/* ---------------------------------------------------------------- think.c */

/* split text fed in pieces of k bytes */
static void split(const char *text, size_t k, buf *r, buf *c) {
    sv_think t;
    sv_think_init(&t, 1);
    size_t n = strlen(text);
    for (size_t i = 0; i < n; i += k) sv_think_push(&t, text + i, i + k <= n ? k : n - i, r, c);
    sv_think_flush(&t, r, c);
}

static void test_think_split(void) {
    static const struct { const char *in, *r, *c; } cases[] = {
        {"a plan</think>\n\nthe answer", "a plan", "the answer"},
        {"no end in sight", "no end in sight", ""},
        {"</think>x", "", "x"},
        {"<</think</think>\nyes</think>", "<</think", "yes</think>"},
        {"ends with </thi", "ends with </thi", ""},
        {"a < b </think>c\n", "a < b ", "c\n"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
        for (size_t k = 1; k <= strlen(cases[i].in) + 1; k++) {
            buf r = {0}, c = {0};
            split(cases[i].in, k, &r, &c);
            CHECK(!strcmp(r.s ? r.s : "", cases[i].r) && !strcmp(c.s ? c.s : "", cases[i].c),
                  "case %zu, pieces of %zu: reasoning '%s' content '%s'", i, k, r.s ? r.s : "", c.s ? c.s : "");
            buf_free(&r);
            buf_free(&c);
        }
}

/* ---------------------------------------------------------------- buf.c */

static void test_utf8(void) {
    CHECK(utf8_valid("héllo €𝄞", strlen("héllo €𝄞")) == strlen("héllo €𝄞"), "valid text");
    static const struct { const char *in; size_t ok; const char *lossy; } cases[] = {
        {"a\xC3(", 1, "a\xEF\xBF\xBD("},                         /* lead byte, bad continuation */
        {"\xE2\x82", 0, "\xEF\xBF\xBD"},                          /* cut short: one U+FFFD */
        {"\xE2\x82x\x80", 0, "\xEF\xBF\xBDx\xEF\xBF\xBD"},       /* stray continuation */
        {"\xED\xA0\x80", 0, "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD"}, /* a surrogate: ED A0 is no start */
        {"\xC0\xAF", 0, "\xEF\xBF\xBD\xEF\xBF\xBD"},              /* overlong */
        {"\xF4\x90\x80\x80", 0, "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD"}, /* > U+10FFFF */
        {"\xF0\x9F\x98", 0, "\xEF\xBF\xBD"},                      /* 4-byte start, cut short */
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        size_t n = strlen(cases[i].in);
        CHECK(utf8_valid(cases[i].in, n) == cases[i].ok, "case %zu: valid prefix %zu", i, utf8_valid(cases[i].in, n));
        buf b = {0};
        utf8_lossy(&b, cases[i].in, n);
        CHECK(b.s && !strcmp(b.s, cases[i].lossy), "case %zu: lossy text", i);
        buf_free(&b);
    }
}

/* ---------------------------------------------------------------- request.c */

static dc_tokenizer *g_tok;

static int tokenizer(void) {
    if (g_tok) return 0;
    char corpus[512], out[512];
    snprintf(corpus, sizeof corpus, "%s/corpus.txt", harness_tmpdir());
    snprintf(out, sizeof out, "%s/tok.json", harness_tmpdir());
    if (harness_sh("cat README.md docs/*.md > %s", corpus)) return -1;
    static const char *const SPECIAL[] = {"<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>", "<｜User｜>", "<｜Assistant｜>",
                                          "<think>", "</think>"};
    dc_bpe_train_opts o = {400, SPECIAL, 6, 2, NULL, NULL, NULL};
    const char *files[] = {corpus};
    dc_err e = {0};
    if (dc_bpe_train(files, 1, &o, out, &e) || dc_tokenizer_load(out, &g_tok, &e)) {
        printf("    tokenizer: %s\n", e.msg);
        return -1;
    }
    return 0;
}

static sv_model_info info(int ctx) {
    sv_model_info mi = {.tok = g_tok, .chat_style = DC_CHAT_V3, .split_think = 1, .vocab = 400, .ctx = ctx, .max_n = 4};
    strcpy(mi.id, "m");
    return mi;
}

static int parse(int kind, const char *body, int ctx, sv_req *r, sv_error *e) {
    sv_model_info mi = info(ctx);
    return sv_parse(kind, body, strlen(body), &mi, r, e);
}

static void test_request_ok(void) {
    if (tokenizer()) {
        CHECK(0, "no tokenizer");
        return;
    }
    sv_req r;
    sv_error e;
    int rc = parse(SV_CHAT, "{\"model\":\"m\",\"messages\":[{\"role\":\"system\",\"content\":\"s\"},"
                   "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"a\"},{\"type\":\"text\",\"text\":\"b\"}]}],"
                   "\"stop\":[\"x\",\"yz\"],\"n\":2,\"seed\":5,\"stream\":true,\"stream_options\":{\"include_usage\":true}}",
                   100, &r, &e);
    CHECK(!rc, "parse: %s", e.message);
    if (rc) return;
    dc_sampler_params d;
    dc_sampler_defaults(&d);
    CHECK(r.n == 2 && r.n_stops == 2 && !strcmp(r.stops[1], "yz") && r.stream && r.include_usage, "fields");
    CHECK(r.sp.seed == 5 && r.seeded && r.sp.temperature == d.temperature && r.sp.top_k == d.top_k, "sampler: seed, defaults");
    /* the prompt is the template's text: BOS s <User> a\nb <Assistant> */
    char *text = NULL;
    size_t len;
    dc_tokenizer_decode(g_tok, r.prompts[0].ids, r.prompts[0].n, 0, &text, &len, NULL);
    CHECK(text && !strcmp(text, "<｜begin▁of▁sentence｜>s<｜User｜>a\nb<｜Assistant｜>"), "prompt '%s'", text ? text : "");
    CHECK(r.max_tokens == 100 - r.prompts[0].n, "max_tokens defaults to the rest of the context: %d", r.max_tokens);
    free(text);
    sv_req_free(&r);
    rc = parse(SV_COMPLETION, "{\"model\":\"m\",\"prompt\":[[1,2,3],\"hi\"],\"max_tokens\":4,\"logprobs\":2,\"echo\":true}", 100, &r, &e);
    CHECK(!rc && r.n_prompts == 2 && r.prompts[0].n == 3 && r.prompts[1].ids[0] == dc_tokenizer_find(g_tok, "<｜begin▁of▁sentence｜>", strlen("<｜begin▁of▁sentence｜>"))
          && r.logprobs && r.top_logprobs == 2 && r.echo && r.max_tokens == 4, "completions: %s", rc ? e.message : "fields");
    sv_req_free(&r);
}

static void test_request_errors(void) {
    if (tokenizer()) return;
    static const struct { const char *body; int status; const char *param, *code; } cases[] = {
        {"{\"model\":\"m\"", 400, "", "invalid_json"},
        {"{\"model\":\"m\",\"messages\":[]}", 400, "messages", "empty_array"},
        {"{\"model\":\"x\",\"messages\":[{\"role\":\"user\",\"content\":\"a\"}]}", 404, "model", "model_not_found"},
        {"{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"a\"}],\"top_p\":\"1\"}", 400, "top_p", "invalid_type"},
        {"{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"a\"}],\"n\":5}", 400, "n", "invalid_value"},
        {"{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"a\"}],\"max_tokens\":40}", 400, "max_tokens",
         "context_length_exceeded"},
        {"{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"aaaa bbbb cccc dddd eeee ffff gggg hhhh iiii jjjj "
         "kkkk llll mmmm nnnn oooo pppp qqqq rrrr ssss tttt\"}]}", 400, "messages", "context_length_exceeded"},
        {"{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"a\"}],\"stop\":[\"1\",\"2\",\"3\",\"4\",\"5\",\"6\",\"7\","
         "\"8\",\"9\",\"10\",\"11\",\"12\",\"13\",\"14\",\"15\",\"16\",\"17\"]}", 400, "stop", "invalid_value"},
        {"{\"model\":\"m\",\"messages\":[{\"role\":\"assistant\",\"tool_calls\":[{\"function\":{\"name\":1}}]}]}", 400,
         "messages[0].tool_calls", "invalid_value"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        sv_req r;
        sv_error e = {0};
        int rc = parse(SV_CHAT, cases[i].body, 24, &r, &e);
        CHECK(rc && e.status == cases[i].status && !strcmp(e.param, cases[i].param) && !strcmp(e.code, cases[i].code),
              "case %zu: %d %s %s (%s)", i, e.status, e.param, e.code, e.message);
        if (!rc) sv_req_free(&r);
    }
    sv_error e;
    sv_fail(&e, 400, "invalid_request_error", NULL, "c", "bad \xC3");
    char *j = oai_error_json(&e);
    cJSON *o = j ? cJSON_Parse(j) : NULL, *er = cJSON_GetObjectItem(o, "error");
    CHECK(er && cJSON_IsString(cJSON_GetObjectItem(er, "message")) && cJSON_IsNull(cJSON_GetObjectItem(er, "param")) &&
          !strcmp(cJSON_GetObjectItem(er, "code")->valuestring, "c") &&
          !strcmp(cJSON_GetObjectItem(er, "message")->valuestring, "bad \xEF\xBF\xBD"), "error json %s", j ? j : "");
    cJSON_Delete(o);
    free(j);
}

/* ---------------------------------------------------------------- oai.c */

static void test_chunks(void) {
    sv_meta m = {.kind = SV_CHAT, .created = 7, .model = "m"};
    strcpy(m.id, "chatcmpl-1");
    buf b = {0};
    oai_chunk(&b, &m, 1, 1, "hi", 2, NULL, 0, NULL, NULL);
    oai_chunk(&b, &m, 1, 0, "", 0, "why", 3, NULL, NULL);
    oai_chunk(&b, &m, 1, 0, "", 0, NULL, 0, "length", NULL);
    sv_usage u = {5, 3, 2};
    oai_usage_chunk(&b, &m, &u);
    oai_done(&b);
    const char *want[] = {"{\"role\":\"assistant\",\"content\":\"hi\"}", "{\"reasoning_content\":\"why\"}", "{}"};
    const char *p = b.s;
    for (int i = 0; i < 4; i++) {
        CHECK(!strncmp(p, "data: ", 6), "event %d starts with data:", i);
        const char *end = strstr(p, "\n\n");
        char *js = strndup(p + 6, end - p - 6);
        cJSON *o = cJSON_Parse(js), *ch = cJSON_GetArrayItem(cJSON_GetObjectItem(o, "choices"), 0);
        CHECK(!strcmp(cJSON_GetObjectItem(o, "object")->valuestring, "chat.completion.chunk"), "object");
        if (i < 3) {
            char *d = cJSON_PrintUnformatted(cJSON_GetObjectItem(ch, "delta"));
            CHECK(!strcmp(d, want[i]), "delta %d: %s", i, d);
            CHECK(cJSON_GetObjectItem(ch, "index")->valueint == 1, "index");
            free(d);
        } else {
            cJSON *us = cJSON_GetObjectItem(o, "usage");
            CHECK(!ch && cJSON_GetObjectItem(us, "total_tokens")->valueint == 8 &&
                  cJSON_GetObjectItem(cJSON_GetObjectItem(us, "prompt_tokens_details"), "cached_tokens")->valueint == 2,
                  "usage chunk");
        }
        cJSON_Delete(o);
        free(js);
        p = end + 2;
    }
    CHECK(!strcmp(p, "data: [DONE]\n\n"), "[DONE] last");
    buf_free(&b);
    /* model text with a NUL, quotes, controls and a bad byte comes through whole */
    static const char odd[] = "a\0b\"\\\x01\n\xFFz";
    oai_chunk(&b, &m, 0, 0, odd, sizeof odd - 1, NULL, 0, NULL, NULL);
    char *js = strndup(b.s + 6, b.n - 8);
    cJSON *o = cJSON_Parse(js);
    const cJSON *c = cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(o, "choices"), 0), "delta"), "content");
    CHECK(c && strstr(js, "\"a\\u0000b\\\"\\\\\\u0001\\n\xEF\xBF\xBDz\""), "escaped: %s", js);
    cJSON_Delete(o);
    free(js);
    buf_free(&b);
}

/* ---------------------------------------------------------------- prefix.c */

static void test_prefix_cache(void) {
    char dir[512];
    snprintf(dir, sizeof dir, "%s/tiny", harness_tmpdir());
    dc_model *m = NULL;
    dc_engine *e = NULL;
    dc_err err = {0};
    dc_engine_opts o;
    dc_engine_defaults(&o);
    o.max_seqs = 4, o.max_len = 64, o.n_threads = 1;
    if (harness_sh(BIN " init --preset tiny --seed 2 --out %s > /dev/null", dir) || dc_model_load(dir, &m, &err) ||
        dc_engine_new(m, &o, &e, &err)) {
        CHECK(0, "model/engine: %s", err.msg);
        dc_model_free(m);
        return;
    }
    sv_prefix pc;
    sv_prefix_init(&pc, 2);
    int ids[3][8] = {{1, 2, 3, 4, 5, 6}, {1, 2, 9, 9}, {7, 7, 7}}, len;
    for (int k = 0; k < 3; k++) { /* three sequences, each holding its ids */
        int s = dc_seq_new(e, &err), n = k == 0 ? 6 : k == 1 ? 4 : 3, seqv[8];
        for (int i = 0; i < n; i++) seqv[i] = s;
        dc_batch b = {.n = n, .token = ids[k], .seq = seqv};
        CHECK(s >= 0 && !dc_engine_decode(e, &b, &err), "decode: %s", err.msg);
        sv_prefix_put(&pc, e, s, ids[k], n);
    }
    CHECK(pc.n == 2, "capacity 2: %d entries", pc.n);
    int q[] = {1, 2, 3, 4, 8};
    CHECK(sv_prefix_match(&pc, q, 5, &len) < 0 || len < 4, "the first entry was evicted (LRU)");
    int q2[] = {1, 2, 9, 5};
    int k = sv_prefix_match(&pc, q2, 4, &len);
    CHECK(k >= 0 && len == 3 && pc.e[k].n == 4, "longest prefix 3 of the second: %d", len);
    int f = dc_seq_fork(e, pc.e[k].seq, &err);
    CHECK(f >= 0 && !dc_seq_truncate(e, f, len, &err) && dc_seq_len(e, f) == 3, "fork and cut to the prefix");
    int ext[] = {1, 2, 9, 9, 4, 4}; /* an entry that extends {1,2,9,9} replaces it */
    sv_prefix_put(&pc, e, f, ext, 3); /* (f holds 3; put records what it holds) */
    CHECK(pc.n == 2, "entries %d", pc.n);
    sv_prefix_free(&pc, e);
    dc_kv_stats st;
    dc_engine_kv_stats(e, &st);
    CHECK(st.n_seqs == 0 && st.pages_used == 0, "every sequence given back: %d sequences, %d pages", st.n_seqs, st.pages_used);
    dc_engine_free(e);
    dc_model_free(m);
}

int main(void) {
    RUN(test_think_split);
    RUN(test_utf8);
    RUN(test_request_ok);
    RUN(test_request_errors);
    RUN(test_chunks);
    RUN(test_prefix_cache);
    dc_tokenizer_free(g_tok);
    return harness_done();
}
