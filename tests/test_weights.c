/*
 * test_weights.c — src/model/weights.c and load_gguf.c refusing weights that
 * cannot be right (issue 14): a NaN or infinity anywhere in a checkpoint or
 * GGUF (float tensors and the scales of quantised blocks) is an error naming
 * the tensor, never logits that turn into NaN later; a config whose sizes do
 * not match the weights is a shape error naming the tensor, found before any
 * allocation (it used to read "cannot allocate 140 GB").
 */
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "base/file.h"
#include "harness.h"
#include "io/gguf.h"
#include "io/safetensors.h"
#include "model/config.h"
#include "model/weights.h"

static char *tmp(const char *name) {
    static char b[8][700];
    static int k;
    char *p = b[k++ % 8];
    snprintf(p, 700, "%s/%s", harness_tmpdir(), name);
    return p;
}

/* write n bytes at offset off of path */
static int poke(const char *path, size_t off, const void *b, size_t n) {
    int fd = open(path, O_WRONLY);
    if (fd < 0) return -1;
    ssize_t w = pwrite(fd, b, n, (off_t)off);
    close(fd);
    return w == (ssize_t)n ? 0 : -1;
}

/* the file offset of element i of tensor name in a one-file safetensors checkpoint */
static long st_offset(const char *file, const char *name, size_t byte) {
    st_set s;
    memset(&s, 0, sizeof s);
    dc_err e;
    if (st_open_file(&s, file, &e)) return -1;
    const st_tensor *t = st_find(&s, name);
    long off = t ? (long)(t->data - s.files[0].data + byte) : -1;
    st_close(&s);
    return off;
}

static long gguf_offset(const char *file, const char *name) {
    gguf g;
    dc_err e;
    if (gguf_open(&g, file, &e) || gguf_read_tensors(&g, &e)) return -1;
    const gguf_tensor *t = gguf_find_tensor(&g, name);
    long off = t ? (long)(t->data - g.data) : -1;
    gguf_close(&g);
    return off;
}

/* load must fail with DC_EFORMAT naming `name` and the word `what` */
static void expect_refused(const char *path, const char *name, const char *what) {
    dc_model *m = NULL;
    dc_err e = {0};
    int rc = dc_model_load(path, &m, &e);
    CHECK(rc == DC_EFORMAT && strstr(e.msg, name) && strstr(e.msg, what), "%s: rc %d, \"%s\" (want %s, %s)", path, rc,
          e.msg, name, what);
    dc_model_free(m);
}

static void nonfinite_safetensors(void) {
    dc_config c;
    dc_config_preset("tiny", &c, NULL);
    const char *dir = tmp("st"), *file = tmp("st/model.safetensors");
    dc_err e = {0};
    CHECK(weights_write_random(&c, dir, 3, "f32", (size_t)1 << 40, &e) == 0, "init: %s", e.msg);
    dc_model *m = NULL;
    CHECK(dc_model_load(dir, &m, &e) == 0, "the clean model loads: %s", e.msg);
    dc_model_free(m);
    const char *name = "model.layers.1.self_attn.kv_a_proj_with_mqa.weight";
    long off = st_offset(file, name, 4 * 37);
    float nan = NAN, inf = -INFINITY, one = 1.0f;
    CHECK(off > 0 && poke(file, off, &nan, 4) == 0, "poke NaN");
    expect_refused(dir, name, "NaN");
    CHECK(poke(file, off, &one, 4) == 0, "restore");
    const char *norm = "model.norm.weight";
    off = st_offset(file, norm, 0);
    CHECK(off > 0 && poke(file, off, &inf, 4) == 0, "poke inf");
    expect_refused(dir, norm, "infinity");
}

static void nonfinite_bf16(void) {
    dc_config c;
    dc_config_preset("tiny", &c, NULL);
    const char *dir = tmp("bf"), *file = tmp("bf/model.safetensors");
    dc_err e = {0};
    CHECK(weights_write_random(&c, dir, 3, "bf16", (size_t)1 << 40, &e) == 0, "init: %s", e.msg);
    const char *name = "model.layers.0.mlp.gate_proj.weight";
    long off = st_offset(file, name, 2 * 5);
    uint16_t nan = 0x7fc0;
    CHECK(off > 0 && poke(file, off, &nan, 2) == 0, "poke");
    expect_refused(dir, name, "NaN");
}

static void nonfinite_gguf(void) {
    dc_config c;
    dc_config_preset("tiny", &c, NULL);
    const char *dir = tmp("g"), *gg = tmp("g.gguf"), *g32 = tmp("g32.gguf");
    dc_err e = {0};
    CHECK(weights_write_random(&c, dir, 3, "f32", (size_t)1 << 40, &e) == 0, "init: %s", e.msg);
    dc_convert_opts o = {.type = "q8_0"};
    CHECK(dc_convert_to_gguf(dir, gg, &o, &e) == 0, "convert: %s", e.msg);
    o.type = "f32";
    CHECK(dc_convert_to_gguf(dir, g32, &o, &e) == 0, "convert: %s", e.msg);
    dc_model *m = NULL;
    CHECK(dc_model_load(gg, &m, &e) == 0, "the clean GGUF loads: %s", e.msg);
    dc_model_free(m);
    /* a q8_0 block's f16 scale made +inf: the matrix is kept quantised, its blocks are checked */
    const char *name = "blk.0.attn_output.weight";
    long off = gguf_offset(gg, name);
    uint16_t inf16 = 0x7c00;
    CHECK(off > 0 && poke(gg, (size_t)off + 34 * 3, &inf16, 2) == 0, "poke scale");
    expect_refused(gg, name, "NaN or infinity");
    /* an f32 norm in a GGUF */
    const char *norm = "output_norm.weight";
    off = gguf_offset(g32, norm);
    float nan = NAN;
    CHECK(off > 0 && poke(g32, (size_t)off + 8, &nan, 4) == 0, "poke norm");
    expect_refused(g32, norm, "NaN or infinity");
}

/* config.json says a far larger model than the weights hold */
static void shape_before_allocation(void) {
    dc_config c;
    dc_config_preset("tiny", &c, NULL);
    const char *dir = tmp("big");
    dc_err e = {0};
    CHECK(weights_write_random(&c, dir, 3, "f32", (size_t)1 << 40, &e) == 0, "init: %s", e.msg);
    c.hidden_size = 1 << 17, c.intermediate_size = 1 << 19, c.vocab_size = 1 << 17; /* ~1 TB of float32 */
    char *js = config_to_json(&c);
    CHECK(js && file_write_atomic(tmp("big/config.json"), js, strlen(js), &e) == 0, "config: %s", e.msg);
    free(js);
    dc_model *m = NULL;
    int rc = dc_model_load(dir, &m, &e);
    CHECK(rc == DC_ESHAPE && strstr(e.msg, "model.embed_tokens.weight") && strstr(e.msg, "131072") &&
              !strstr(e.msg, "allocate"),
          "rc %d: %s", rc, e.msg);
    dc_model_free(m);
}

int main(void) {
    RUN(nonfinite_safetensors);
    RUN(nonfinite_bf16);
    RUN(nonfinite_gguf);
    RUN(shape_before_allocation);
    return harness_done();
}
