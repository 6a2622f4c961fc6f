/*
 * test_chat.c — `deepc chat` driven through a pipe (src/cli/cmd_chat.c): a
 * tiny model with a tokenizer trained here on a few lines (with the chat
 * template's special tokens); greedy answers are deterministic, /reset
 * starts over, /save and /load resume a conversation exactly, --mtp changes
 * nothing, and unknown commands are reported without ending the chat.
 */
#include <stdlib.h>
#include <string.h>
#include "base/file.h"
#include "harness.h"

#define BIN DC_BUILD "/deepc"

static char g_dir[600];

static int setup(void) {
    const char *t = harness_tmpdir();
    char txt[700];
    snprintf(txt, sizeof txt, "%s/corpus.txt", t);
    const char *text = "Hello there, how are you today? I am fine, thank you for asking.\n"
                       "What is the answer? The answer is forty two, said the machine.\n"
                       "Think about it, then answer in one word. Yes. No. Maybe.\n";
    char big[4096] = "";
    for (int i = 0; i < 10; i++) strcat(big, text);
    if (file_write_atomic(txt, big, strlen(big), NULL)) return -1;
    snprintf(g_dir, sizeof g_dir, "%s/m", t);
    return harness_sh(BIN " tokenizer-train --data %s --vocab-size 300 --out %s/tok.json --special "
                      "'<｜begin▁of▁sentence｜>,<｜end▁of▁sentence｜>,<｜User｜>,<｜Assistant｜>,<think>,</think>' > /dev/null 2>&1"
                      " && " BIN " init --preset tiny --seed 3 --tokenizer %s/tok.json --out %s > /dev/null",
                      txt, t, t, g_dir);
}

/* pipe input (printf format, escapes allowed) into chat; stdout into *out, stderr into *err */
static int chat(const char *input, const char *flags, char **out, char **err) {
    const char *t = harness_tmpdir();
    int rc = harness_sh("printf '%s' | " BIN " chat -m %s --temp 0 -n 16 %s > %s/o.txt 2> %s/e.txt", input, g_dir,
                        flags, t, t);
    char p[700];
    size_t n;
    snprintf(p, sizeof p, "%s/o.txt", t);
    if (file_read_all(p, out, &n, NULL)) *out = strdup("");
    snprintf(p, sizeof p, "%s/e.txt", t);
    if (file_read_all(p, err, &n, NULL)) *err = strdup("");
    return rc;
}

/* line i (0-based) of s, into a static buffer */
static const char *line(const char *s, int i) {
    static char b[2][1024];
    static int k;
    char *o = b[k++ % 2];
    for (; i > 0 && s; i--) {
        s = strchr(s, '\n');
        if (s) s++;
    }
    if (!s) return "";
    size_t n = strcspn(s, "\n");
    snprintf(o, 1024, "%.*s", (int)(n < 1023 ? n : 1023), s);
    return o;
}

static void pipe_session(void) {
    if (setup()) {
        CHECK(0, "could not make the model and tokenizer");
        return;
    }
    const char *t = harness_tmpdir();
    char in[1024], *a, *ea, *b, *eb;
    /* two turns, a save in between */
    snprintf(in, sizeof in, "Hello there\\n/save %s/conv.kv\\nWhat is the answer?\\n/exit\\nnot read\\n", t);
    CHECK(chat(in, "", &a, &ea) == 0, "chat exited non-zero: %s", ea);
    int lines = 0;
    for (const char *p = a; *p; p++) lines += *p == '\n';
    CHECK(lines == 2, "want 2 answers, got %d lines: '%s'", lines, a);
    CHECK(strstr(ea, "saved") != NULL, "no save message: %s", ea);
    printf("    answers (random tiny model): '%s' / '%s'\n", line(a, 0), line(a, 1));
    /* the same again: deterministic */
    CHECK(chat(in, "", &b, &eb) == 0 && !strcmp(a, b), "greedy chat not deterministic");
    free(b), free(eb);
    /* with MTP: the same answers */
    CHECK(chat(in, "--mtp", &b, &eb) == 0 && !strcmp(a, b), "--mtp changed the answers: '%s' vs '%s'", b, a);
    free(b), free(eb);
    /* load the saved conversation and ask the second question: the second answer */
    snprintf(in, sizeof in, "/load %s/conv.kv\\nWhat is the answer?\\n", t);
    CHECK(chat(in, "", &b, &eb) == 0, "load run: %s", eb);
    CHECK(!strcmp(line(b, 0), line(a, 1)), "after /load: '%s', want '%s' (%s)", line(b, 0), line(a, 1), eb);
    free(b), free(eb);
    /* /reset starts over: the first answer again; an unknown command is only reported */
    CHECK(chat("Hello there\\n/reset\\n/frobnicate\\nHello there\\n", "", &b, &eb) == 0, "reset run");
    CHECK(!strcmp(line(b, 0), line(a, 0)) && !strcmp(line(b, 1), line(a, 0)), "after /reset: '%s' / '%s'",
          line(b, 0), line(b, 1));
    CHECK(strstr(eb, "unknown command") != NULL, "unknown command not reported: %s", eb);
    free(b), free(eb);
    /* hidden reasoning with the R1 template prints nothing of it */
    CHECK(chat("Hello there\\n", "--template r1 --think hide", &b, &eb) == 0 && !strcmp(b, "\n"),
          "r1 + hide printed '%s' (a random model never closes </think>)", b);
    free(b), free(eb);
    free(a), free(ea);
    CHECK(harness_sh(BIN " chat -m %s/nonexistent < /dev/null > /dev/null 2>&1", t) == 1, "missing model");
}

/* the start-up line names the model, its size, context and seed; --seed
 * with that seed repeats a sampled conversation; a tokenizer without the
 * chat role tokens is warned about (issue 14) */
static void startup_line(void) {
    char *a, *ea, *b, *eb;
    CHECK(chat("Hello there\\n", "--temp 1", &a, &ea) == 0, "chat: %s", ea);
    char want[700];
    snprintf(want, sizeof want, "deepc chat: %s: 395.80K parameters", g_dir);
    const char *sp = strstr(ea, "seed ");
    unsigned long long seed = sp ? strtoull(sp + 5, NULL, 10) : 0;
    CHECK(strstr(ea, want) && strstr(ea, "context 1024") && seed, "start-up line: %s", ea);
    CHECK(!strstr(ea, "warning"), "a tokenizer with role tokens was warned about: %s", ea);
    char flags[64];
    snprintf(flags, sizeof flags, "--temp 1 --seed %llu", seed);
    CHECK(chat("Hello there\\n", flags, &b, &eb) == 0 && !strcmp(a, b), "--seed %llu: '%s' vs '%s'", seed, b, a);
    free(a), free(ea), free(b), free(eb);
    /* a tokenizer with no role tokens */
    const char *t = harness_tmpdir();
    CHECK(harness_sh(BIN " tokenizer-train --data %s/corpus.txt --vocab-size 280 --out %s/plain.json > /dev/null 2>&1", t, t) == 0,
          "tokenizer");
    CHECK(harness_sh("echo hi | " BIN " chat -m %s --tokenizer %s/plain.json -n 2 > /dev/null 2> %s/w.txt", g_dir, t, t) == 0,
          "chat");
    char p[700];
    size_t n;
    snprintf(p, sizeof p, "%s/w.txt", t);
    CHECK(file_read_all(p, &a, &n, NULL) == 0 && strstr(a, "warning: the tokenizer has no <｜User｜>"), "no warning: %s", a);
    free(a);
}

/* on a terminal (a pty), with libedit: the up arrow recalls the last
 * message and the arrows edit it; without libedit the escape sequences
 * would reach the model as text (the test then says so and is skipped) */
static void line_editing(void) {
    if (harness_sh("ldd " BIN " | grep -q libedit") != 0) {
        printf("    deepc is built without libedit: skipped\n");
        return;
    }
    const char *t = harness_tmpdir();
    CHECK(harness_sh("/usr/bin/python3 tests/chat_pty.py " BIN " %s > %s/pty.txt 2>&1", g_dir, t) == 0, "pty run");
    char p[700], *o = NULL;
    size_t n;
    snprintf(p, sizeof p, "%s/pty.txt", t);
    if (file_read_all(p, &o, &n, NULL)) { CHECK(0, "no transcript"); return; }
    /* the recalled line is redrawn: "Hello there" three times, then the tail
     * after the inserted X ("Hello thXere": X three places from the end) */
    int k = 0;
    for (const char *q = o; (q = strstr(q, "Hello there")); q++) k++;
    CHECK(k >= 3 && strstr(o, "Xere"), "recall and edit not seen (%d recalls): %s", k, o);
    CHECK(!strstr(o, "^[[A"), "the up arrow went to the model as text: %s", o);
    CHECK(strstr(o, "arrows edit and recall") != NULL, "no line-editing note: %s", o);
    free(o);
}

int main(void) {
    RUN(pipe_session);
    RUN(startup_line);
    RUN(line_editing);
    return harness_done();
}
