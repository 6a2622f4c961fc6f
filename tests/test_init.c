/*
 * test_init.c — `deepc init` (src/cli/cmd_init.c) as users run it (issue 14):
 * an existing, non-empty --out is refused unless --force, which replaces it
 * whole; an interrupted or refused init never leaves half a model where a
 * model was (defect 8). With --tokenizer, a preset's vocabulary grows to
 * hold every id of the tokenizer, a given config's does not and is refused
 * (defect 16: the README's mini + DeepSeek-V3 tokenizer example built a
 * 102,400-row embedding for ids up to 128,814).
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "base/file.h"
#include "harness.h"
#include "io/safetensors.h"
#include "kernels/fp8_block.h"

#define BIN DC_BUILD "/deepc"

static char *out_of(const char *cmd_fmt, const char *d, int *rc) {
    char cmd[2048], log[700];
    snprintf(log, sizeof log, "%s/log.txt", d);
    snprintf(cmd, sizeof cmd, cmd_fmt, d, d, d, d, d, d, d, d);
    *rc = harness_sh("( %s ) > %s 2>&1", cmd, log);
    char *o = NULL;
    size_t n;
    if (file_read_all(log, &o, &n, NULL)) o = strdup("");
    return o;
}

static void existing_target(void) {
    const char *d = harness_tmpdir();
    int rc;
    CHECK(harness_sh("mkdir -p %s/m && echo mine > %s/m/notes.txt", d, d) == 0, "setup");
    char *o = out_of(BIN " init --preset tiny --out %s/m", d, &rc);
    CHECK(rc == 1 && strstr(o, "not empty") && strstr(o, "--force"), "non-empty --out: exit %d, %s", rc, o);
    free(o);
    CHECK(harness_sh("test -f %s/m/notes.txt && ! test -e %s/m/config.json", d, d) == 0, "the directory was touched");
    o = out_of(BIN " init --preset tiny --seed 4 --out %s/m --force", d, &rc);
    CHECK(rc == 0, "--force: exit %d, %s", rc, o);
    free(o);
    CHECK(harness_sh("! test -e %s/m/notes.txt && test -f %s/m/config.json && test -f %s/m/model.safetensors", d, d, d) == 0,
          "--force did not replace the directory whole");
    /* a second init over a model: refused, the model intact */
    o = out_of(BIN " init --preset small --out %s/m", d, &rc);
    CHECK(rc == 1, "init over a model: exit %d", rc);
    free(o);
    dc_config c;
    dc_err e = {0};
    CHECK(dc_config_load(harness_tmpdir(), &c, &e) != 0, "sanity");
    char m[700];
    snprintf(m, sizeof m, "%s/m", d);
    CHECK(dc_config_load(m, &c, &e) == 0 && c.hidden_size == 64, "the tiny model was replaced: %s", e.msg);
    /* an empty directory and a new one are fine; a file is not */
    o = out_of(BIN " init --preset tiny --out %s/new/deeper && mkdir %s/empty && " BIN " init --preset tiny --out %s/empty/", d,
               &rc);
    CHECK(rc == 0, "new and empty directories: exit %d, %s", rc, o);
    free(o);
    o = out_of("touch %s/afile && " BIN " init --preset tiny --out %s/afile", d, &rc);
    CHECK(rc == 1 && strstr(o, "not a directory"), "a file as --out: exit %d, %s", rc, o);
    free(o);
    CHECK(harness_sh("ls -a %s | grep -q '\\.tmp\\.'", d) != 0, "a temporary directory was left");
}

static void vocab_fits_tokenizer(void) {
    const char *d = harness_tmpdir();
    int rc;
    CHECK(harness_sh("for i in $(seq 400); do echo \"word$i and more words $((i * 7))\"; done > %s/v.txt", d) == 0, "text");
    CHECK(harness_sh(BIN " tokenizer-train --data %s/v.txt --vocab-size 700 --min-frequency 1 --special '<x>,<s>,</s>' "
                     "--out %s/big.json > /dev/null 2>&1", d, d) == 0, "tokenizer");
    dc_tokenizer *t = NULL;
    dc_err e = {0};
    char p[700];
    snprintf(p, sizeof p, "%s/big.json", d);
    CHECK(dc_tokenizer_load(p, &t, &e) == 0, "%s", e.msg);
    int n = t ? dc_tokenizer_n_vocab(t) : 0;
    dc_tokenizer_free(t);
    CHECK(n > 512, "the tokenizer has %d ids, the test needs more than tiny's 512", n);
    char *o = out_of(BIN " init --preset tiny --tokenizer %s/big.json --out %s/tv", d, &rc);
    CHECK(rc == 0 && strstr(o, "vocab_size 512 ->"), "init: exit %d, %s", rc, o);
    free(o);
    dc_config c;
    snprintf(p, sizeof p, "%s/tv", d);
    CHECK(dc_config_load(p, &c, &e) == 0, "%s", e.msg);
    CHECK(c.vocab_size >= n && c.vocab_size % 128 == 0 && c.vocab_size < n + 128, "vocab_size %d for %d ids", c.vocab_size,
          n);
    CHECK(harness_sh("test -f %s/tv/tokenizer.json", d) == 0, "tokenizer.json copied");
    /* the largest id runs through the model */
    char cmd[900];
    snprintf(cmd, sizeof cmd, BIN " logits -m %s/tv --ids 0,%d 2> /dev/null > /dev/null", d, n - 1);
    CHECK(harness_sh("%s", cmd) == 0, "%s", cmd);
    CHECK(c.bos_token_id == 1 && c.eos_token_id == 2, "BOS/EOS from the tokenizer (1, 2): %d, %d", c.bos_token_id,
          c.eos_token_id);
    /* a given config is not changed behind the user's back */
    o = out_of("cp %s/tv/config.json %s/small-vocab.json && sed -i 's/\"vocab_size\":[[:space:]]*[0-9]*/\"vocab_size\": 512/' "
               "%s/small-vocab.json && " BIN " init --config %s/small-vocab.json --tokenizer %s/big.json --out %s/tc",
               d, &rc);
    CHECK(rc == 1 && strstr(o, "vocab_size 512") && strstr(o, "raise vocab_size"), "--config too small: exit %d, %s", rc, o);
    free(o);
}

/* --dtype fp8 writes each matrix as the official FP8 layout of the same
 * seed's float32 weights: codes and 128 x 128 scale_inv exactly what
 * fp8_block.h's quantiser gives them (an all-zero block's scale 1) */
static void fp8_is_f32_quantised(void) {
    const char *d = harness_tmpdir();
    int rc;
    char *o = out_of(BIN " init --preset tiny --seed 5 --out %s/f && " BIN " init --preset tiny --seed 5 --dtype fp8 --out %s/q", d, &rc);
    CHECK(rc == 0, "init: exit %d, %s", rc, o);
    free(o);
    char pf[700], pq[700];
    snprintf(pf, sizeof pf, "%s/f", d), snprintf(pq, sizeof pq, "%s/q", d);
    st_set f = {0}, q = {0};
    dc_err e = {0};
    CHECK(st_open_dir(&f, pf, &e) == 0 && st_open_dir(&q, pq, &e) == 0, "open: %s", e.msg);
    int n8 = 0, bad = 0;
    for (int i = 0; i < q.n && !bad; i++) {
        const st_tensor *t = &q.tensors[i];
        if (t->dtype != ST_F8_E4M3) continue;
        char sn[300];
        snprintf(sn, sizeof sn, "%s_scale_inv", t->name);
        const st_tensor *w = st_find(&f, t->name), *sc = st_find(&q, sn);
        if (!w || !sc || w->dtype != ST_F32 || sc->dtype != ST_F32 || t->ndim != 2) {
            bad = 1;
            printf("    %s: no float32 twin or scale_inv\n", t->name);
            break;
        }
        const int R = (int)t->shape[0], C = (int)t->shape[1], ns = ((R + 127) / 128) * ((C + 127) / 128);
        uint8_t *codes = malloc((size_t)R * C);
        float *s = malloc(sizeof(float) * ns), *wf = malloc(sizeof(float) * R * C);
        memcpy(wf, w->data, sizeof(float) * R * C); /* the mapping need not be aligned for floats */
        fp8_quantize_official(wf, R, C, 128, 128, codes, s);
        for (int k = 0; k < ns; k++) s[k] = s[k] == 0 ? 1 : s[k];
        bad |= memcmp(codes, t->data, (size_t)R * C) != 0 || memcmp(s, sc->data, sizeof(float) * ns) != 0;
        if (bad) printf("    %s (%d x %d): codes or scales differ\n", t->name, R, C);
        n8++;
        free(codes), free(s), free(wf);
    }
    printf("    %d fp8 matrices, each the quantised float32 of the same seed\n", n8);
    CHECK(n8 > 0 && !bad, "%d fp8 matrices, bad %d", n8, bad);
    st_close(&f), st_close(&q);
}

int main(void) {
    RUN(existing_target);
    RUN(vocab_fits_tokenizer);
    RUN(fp8_is_f32_quantised);
    return harness_done();
}
