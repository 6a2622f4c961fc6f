/*
 * test_tokenizer_chat.c — src/tokenizer/chat.c against the chat template of
 * deepseek-v3/tokenizer_config.json. The expected strings were rendered from
 * that Jinja template with jinja2 (trim_blocks, lstrip_blocks, as
 * transformers does) for the conversations below: system prompts anywhere,
 * multi-turn, reasoning dropped from earlier turns, tool calls and results
 * (with the template's quirks), and an empty conversation. R1 differs only in
 * the generation prompt. Then the rendered text encodes to the right ids.
 */
#include <stdlib.h>
#include <string.h>
#include "harness.h"
#include "deepc.h"

typedef struct chat_case {
    const char *name;
    const dc_chat_msg *msgs;
    int n, gen;
    const char *want;
} chat_case;

static const chat_case CASES[] = {
    {"single", (const dc_chat_msg[]){{"user", "Hello!", NULL, 0}}, 1, 1,
     "<｜begin▁of▁sentence｜><｜User｜>Hello!<｜Assistant｜>"},
    {"multi", (const dc_chat_msg[]){{"system", "You are helpful.", NULL, 0}, {"user", "2+2?", NULL, 0}, {"assistant", "4", NULL, 0}, {"user", "And 3+3?", NULL, 0}}, 4, 1,
     "<｜begin▁of▁sentence｜>You are helpful.<｜User｜>2+2?<｜Assistant｜>4<｜end▁of▁sentence｜><｜User｜>And 3+3?<｜Assistant｜>"},
    {"two_systems_think", (const dc_chat_msg[]){{"system", "A", NULL, 0}, {"user", "q1", NULL, 0}, {"system", "B", NULL, 0}, {"assistant", "<think>\nhmm\n</think>\n\nanswer one", NULL, 0}, {"user", "q2", NULL, 0}}, 5, 1,
     "<｜begin▁of▁sentence｜>A\n\nB<｜User｜>q1<｜Assistant｜>\n\nanswer one<｜end▁of▁sentence｜><｜User｜>q2<｜Assistant｜>"},
    {"no_gen", (const dc_chat_msg[]){{"user", "hi", NULL, 0}, {"assistant", "<think>a</think>b</think>c", NULL, 0}}, 2, 0,
     "<｜begin▁of▁sentence｜><｜User｜>hi<｜Assistant｜>c<｜end▁of▁sentence｜>"},
    {"tools", (const dc_chat_msg[]){{"user", "Weather?", NULL, 0}, {"assistant", NULL, (const dc_chat_tool_call[]){{"function", "get_weather", "{\"city\": \"Paris\"}"}}, 1}, {"tool", "{\"t\": 21}", NULL, 0}, {"tool", "{\"t\": 22}", NULL, 0}, {"assistant", "It is 21.", NULL, 0}}, 5, 0,
     "<｜begin▁of▁sentence｜><｜User｜>Weather?<｜Assistant｜><｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>get_weather\n```json\n{\"city\": \"Paris\"}\n```<｜tool▁call▁end｜><｜tool▁calls▁end｜><｜end▁of▁sentence｜><｜tool▁outputs▁begin｜><｜tool▁output▁begin｜>{\"t\": 21}<｜tool▁output▁end｜><｜tool▁output▁begin｜>{\"t\": 22}<｜tool▁output▁end｜><｜tool▁outputs▁end｜>It is 21.<｜end▁of▁sentence｜>"},
    {"tools_content_two_calls_gen", (const dc_chat_msg[]){{"system", "S", NULL, 0}, {"user", "Do both", NULL, 0}, {"assistant", "Sure.", (const dc_chat_tool_call[]){{"function", "a", "{}"}, {"function", "b", "{\"x\":1}"}}, 2}, {"tool", "r1", NULL, 0}}, 4, 1,
     "<｜begin▁of▁sentence｜>S<｜User｜>Do both<｜Assistant｜>Sure.<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>a\n```json\n{}\n```<｜tool▁call▁end｜>\n<｜tool▁call▁begin｜>function<｜tool▁sep｜>b\n```json\n{\"x\":1}\n```<｜tool▁call▁end｜><｜tool▁calls▁end｜><｜end▁of▁sentence｜><｜tool▁outputs▁begin｜><｜tool▁output▁begin｜>r1<｜tool▁output▁end｜><｜tool▁outputs▁end｜>"},
    {"tools_twice", (const dc_chat_msg[]){{"user", "u1", NULL, 0}, {"assistant", NULL, (const dc_chat_tool_call[]){{"function", "f", "1"}}, 1}, {"tool", "o1", NULL, 0}, {"assistant", "mid", NULL, 0}, {"user", "u2", NULL, 0}, {"assistant", NULL, (const dc_chat_tool_call[]){{"function", "g", "2"}}, 1}, {"tool", "o2", NULL, 0}, {"user", "u3", NULL, 0}}, 8, 1,
     "<｜begin▁of▁sentence｜><｜User｜>u1<｜Assistant｜><｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>f\n```json\n1\n```<｜tool▁call▁end｜><｜tool▁calls▁end｜><｜end▁of▁sentence｜><｜tool▁outputs▁begin｜><｜tool▁output▁begin｜>o1<｜tool▁output▁end｜><｜tool▁outputs▁end｜>mid<｜end▁of▁sentence｜><｜User｜>u2\n<｜tool▁call▁begin｜>function<｜tool▁sep｜>g\n```json\n2\n```<｜tool▁call▁end｜><｜tool▁calls▁end｜><｜end▁of▁sentence｜><｜tool▁output▁begin｜>o2<｜tool▁output▁end｜><｜User｜>u3<｜Assistant｜>"},
    {"empty", NULL, 0, 1,
     "<｜begin▁of▁sentence｜><｜Assistant｜>"},
    {"system_only", (const dc_chat_msg[]){{"system", "只说中文", NULL, 0}}, 1, 0,
     "<｜begin▁of▁sentence｜>只说中文"},
};

static void test_v3_matches_jinja(void) {
    for (size_t i = 0; i < sizeof CASES / sizeof *CASES; i++) {
        const chat_case *c = &CASES[i];
        char *out = NULL;
        dc_err e = {0};
        int rc = dc_chat_render(DC_CHAT_V3, c->msgs, c->n, c->gen, &out, &e);
        CHECK(rc == DC_OK, "%s: %s", c->name, e.msg);
        if (rc) continue;
        CHECK(strcmp(out, c->want) == 0, "%s:\n      want %s\n      got  %s", c->name, c->want, out);
        free(out);
    }
}

/* R1: the same text, except that a generation prompt opens the reasoning */
static void test_r1_generation_prompt(void) {
    for (size_t i = 0; i < sizeof CASES / sizeof *CASES; i++) {
        const chat_case *c = &CASES[i];
        char *v3 = NULL, *r1 = NULL;
        dc_err e = {0};
        if (dc_chat_render(DC_CHAT_V3, c->msgs, c->n, c->gen, &v3, &e) ||
            dc_chat_render(DC_CHAT_R1, c->msgs, c->n, c->gen, &r1, &e)) {
            CHECK(0, "%s: %s", c->name, e.msg);
            free(v3);
            continue;
        }
        size_t lv = strlen(v3);
        int opens = c->gen && lv >= strlen("<｜Assistant｜>") && strcmp(v3 + lv - strlen("<｜Assistant｜>"), "<｜Assistant｜>") == 0;
        if (opens) CHECK(strncmp(r1, v3, lv) == 0 && strcmp(r1 + lv, "<think>\n") == 0, "%s: r1 = %s", c->name, r1);
        else CHECK(strcmp(r1, v3) == 0, "%s: r1 differs without a generation prompt", c->name);
        free(v3);
        free(r1);
    }
    char *out;
    dc_err e = {0};
    dc_chat_msg m = {"user", "1+1?", NULL, 0};
    CHECK(dc_chat_render(DC_CHAT_R1, &m, 1, 1, &out, &e) == DC_OK &&
              strcmp(out, "<｜begin▁of▁sentence｜><｜User｜>1+1?<｜Assistant｜><think>\n") == 0, "r1 single turn");
    free(out);
}

static void test_errors(void) {
    char *out = NULL;
    dc_err e = {0};
    dc_chat_msg bad_role = {"narrator", "x", NULL, 0}, no_content = {"user", NULL, NULL, 0};
    CHECK(dc_chat_render(DC_CHAT_V3, &bad_role, 1, 1, &out, &e) == DC_EARG && !out && strstr(e.msg, "narrator"), "role: %s", e.msg);
    CHECK(dc_chat_render(DC_CHAT_V3, &no_content, 1, 1, &out, &e) == DC_EARG && !out, "no content: %s", e.msg);
    CHECK(dc_chat_render(7, &no_content, 1, 1, &out, &e) == DC_EARG, "style");
    CHECK(dc_chat_render(DC_CHAT_V3, NULL, 2, 1, &out, &e) == DC_EARG, "NULL messages");
}

/* the rendered prompt encodes to BOS, turn markers and text ids */
static void test_encode_rendered(void) {
    const char *dd = harness_data_dir();
    if (!dd) {
        printf("    SKIP: no shared data directory\n");
        return;
    }
    char p[4096];
    snprintf(p, sizeof p, "%s/tokenizer/deepseek-v3", dd);
    dc_tokenizer *t;
    dc_err e = {0};
    if (dc_tokenizer_load(p, &t, &e)) {
        CHECK(0, "%s", e.msg);
        return;
    }
    dc_chat_msg m[] = {{"system", "Be brief.", NULL, 0}, {"user", "Hello!", NULL, 0}};
    char *out;
    int *ids;
    size_t n;
    if (!dc_chat_render(DC_CHAT_R1, m, 2, 1, &out, &e) &&
        !dc_tokenizer_encode(t, out, strlen(out), DC_TOK_SPECIAL, &ids, &n, &e)) {
        /* BOS, "Be brief.", <｜User｜> Hello ! <｜Assistant｜> <think> "\n" */
        CHECK(n >= 8 && ids[0] == 0 && ids[n - 6] == 128803 && ids[n - 5] == 19923 && ids[n - 4] == 3 &&
                  ids[n - 3] == 128804 && ids[n - 2] == 128798 && ids[n - 1] == 201,
              "ids of the rendered prompt");
        free(ids);
        free(out);
    }
    dc_tokenizer_free(t);
}

int main(void) {
    RUN(test_v3_matches_jinja);
    RUN(test_r1_generation_prompt);
    RUN(test_errors);
    RUN(test_encode_rendered);
    return harness_done();
}
