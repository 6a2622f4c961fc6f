/*
 * test_tokenizer_gguf.c — src/tokenizer/load_gguf.c on broken tokenizer
 * metadata (issue 14): a token id key that names no token (eos, bos,
 * padding, ...) or a token type outside 1..6 is refused naming the key
 * (defect 11: they were dropped silently); `generate` on such a GGUF says
 * what is wrong with its tokenizer, not "no tokenizer.json" (defect 12),
 * while a GGUF with no tokenizer at all still runs on token ids.
 */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "base/file.h"
#include "harness.h"
#include "io/gguf.h"

#define BIN DC_BUILD "/deepc"

static char path[3][700];

static int setup(void) {
    const char *d = harness_tmpdir();
    snprintf(path[0], sizeof path[0], "%s/ok.gguf", d);
    snprintf(path[1], sizeof path[1], "%s/bad.gguf", d);
    snprintf(path[2], sizeof path[2], "%s/none.gguf", d);
    return harness_sh("for i in $(seq 200); do echo \"all the world is a stage $i\"; done > %s/w.txt && " BIN
                      " tokenizer-train --data %s/w.txt --vocab-size 300 --out %s/tk.json > /dev/null 2>&1 && " BIN
                      " init --preset tiny --out %s/m > /dev/null && " BIN
                      " convert -m %s/m --to gguf --type q8_0 --tokenizer %s/tk.json -o %s 2> /dev/null && " BIN
                      " convert -m %s/m --to gguf --type q8_0 -o %s 2> /dev/null",
                      d, d, d, d, d, d, path[0], d, path[2]);
}

/* copy ok.gguf to bad.gguf with element i of key replaced by the 4 bytes of v */
static int patch(const char *key, uint64_t i, uint32_t v) {
    if (harness_sh("cp %s %s", path[0], path[1])) return -1;
    gguf g;
    dc_err e;
    if (gguf_open(&g, path[1], &e)) return -1;
    const gguf_kv *kv = gguf_find(&g, key);
    long off = kv ? (long)(kv->data - g.data) + (long)(4 * i) : -1;
    gguf_close(&g);
    int fd = open(path[1], O_WRONLY);
    int ok = off > 0 && fd >= 0 && pwrite(fd, &v, 4, off) == 4;
    if (fd >= 0) close(fd);
    return ok ? 0 : -1;
}

static void expect(const char *what, const char *needle) {
    dc_tokenizer *t = NULL;
    dc_err e = {0};
    int rc = dc_tokenizer_load(path[1], &t, &e);
    CHECK(rc == DC_EFORMAT && strstr(e.msg, needle), "%s: rc %d, %s", what, rc, e.msg);
    dc_tokenizer_free(t);
}

static void bad_ids(void) {
    if (setup()) { CHECK(0, "setup"); return; }
    dc_tokenizer *t = NULL;
    dc_err e = {0};
    CHECK(dc_tokenizer_load(path[0], &t, &e) == 0 && dc_tokenizer_eos(t) >= 0, "the good file: %s", e.msg);
    dc_tokenizer_free(t);
    CHECK(patch("tokenizer.ggml.eos_token_id", 0, 99999) == 0, "patch eos");
    expect("eos out of range", "tokenizer.ggml.eos_token_id is 99999");
    CHECK(patch("tokenizer.ggml.bos_token_id", 0, 0xffffffffu) == 0, "patch bos");
    expect("bos out of range", "tokenizer.ggml.bos_token_id");
    CHECK(patch("tokenizer.ggml.token_type", 7, 42) == 0, "patch type");
    expect("token type", "tokenizer.ggml.token_type[7] is 42");
    /* no tokenizer at all: DC_ENOTFOUND, the callers' "run on ids" case */
    int rc = dc_tokenizer_load(path[2], &t, &e);
    CHECK(rc == DC_ENOTFOUND && strstr(e.msg, "no tokenizer"), "no tokenizer: rc %d %s", rc, e.msg);
}

static void generate_says_why(void) {
    char log[800], *o = NULL;
    size_t n;
    snprintf(log, sizeof log, "%s/gen.txt", harness_tmpdir());
    CHECK(patch("tokenizer.ggml.eos_token_id", 0, 99999) == 0, "patch eos");
    int rc = harness_sh(BIN " generate -m %s -p \"all the world\" -n 2 > %s 2>&1", path[1], log);
    file_read_all(log, &o, &n, NULL);
    CHECK(rc == 1 && o && strstr(o, "eos_token_id is 99999") && !strstr(o, "tokenizer.json"), "exit %d: %s", rc, o);
    free(o), o = NULL;
    rc = harness_sh(BIN " generate -m %s --prompt-ids 1,2,3 -n 3 --temp 0 > %s 2>&1", path[2], log);
    file_read_all(log, &o, &n, NULL);
    CHECK(rc == 0, "a GGUF without a tokenizer runs on ids: exit %d, %s", rc, o);
    free(o);
}

int main(void) {
    RUN(bad_ids);
    RUN(generate_says_why);
    return harness_done();
}
