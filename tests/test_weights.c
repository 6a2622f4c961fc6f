/*
 * test_weights.c — src/model/weights.c and load_gguf.c refusing weights that
 * cannot be right (issue 14): a NaN or infinity anywhere in a checkpoint or
 * GGUF (float tensors and the scales of quantised blocks) is an error naming
 * the tensor (and the first bad value: the scales of quantised blocks alone
 * are read), never logits that turn into NaN later; a config whose sizes do
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
    printf("    refused: %s\n", strrchr(e.msg, '/') ? strrchr(e.msg, '/') + 1 : e.msg);
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

/* a NaN or infinite f16 scale in one block of a matrix kept as stored
 * (q4_0, q4_K; the split attention's attn_k_b / attn_v_b too): refused,
 * naming the tensor and the first value of that block; the scales alone are
 * read (ggml_types.c), so a quantised value never looks like one */
static void nonfinite_block_scales(void) {
    dc_config c;
    dc_config_preset("tiny", &c, NULL); /* widened so every row is whole 256-value blocks */
    c.hidden_size = 256, c.intermediate_size = 512, c.moe_intermediate_size = 256, c.q_lora_rank = 256;
    c.kv_lora_rank = 256, c.num_attention_heads = 2, c.qk_nope_head_dim = 256, c.v_head_dim = 256;
    c.qk_rope_head_dim = 64, c.vocab_size = 512, c.num_hidden_layers = 2;
    const char *dir = tmp("blk");
    dc_err e = {0};
    CHECK(weights_write_random(&c, dir, 5, "f32", (size_t)1 << 40, &e) == 0, "init: %s", e.msg);
    static const struct {
        const char *type, *tensor;
        int block_bytes, block_values, scale_at, block;
        uint16_t bad;
    } K[] = {
        {"q4_0", "blk.0.attn_output.weight", 18, 32, 0, 3, 0x7e00},   /* d NaN */
        {"q4_k", "blk.1.attn_q_b.weight", 144, 256, 2, 2, 0xfc00},    /* dmin -inf */
        {"q4_k", "blk.0.attn_q_a.weight", 144, 256, 0, 0, 0x7c00},    /* d +inf, first block */
        {"q8_0", "blk.1.attn_v_b.weight", 34, 32, 0, 9, 0x7e00},      /* the split kv_b, kept as stored */
        {"q4_0", "blk.0.attn_k_b.weight", 18, 32, 0, 1, 0x7c00},
    };
    for (size_t i = 0; i < sizeof K / sizeof *K; i++) {
        char name[64];
        snprintf(name, sizeof name, "blk%zu.gguf", i);
        const char *gg = tmp(name);
        dc_convert_opts o = {.type = K[i].type};
        CHECK(dc_convert_to_gguf(dir, gg, &o, &e) == 0, "convert %s: %s", K[i].type, e.msg);
        dc_model *m = NULL;
        CHECK(dc_model_load(gg, &m, &e) == 0, "the clean %s GGUF loads: %s", K[i].type, e.msg);
        dc_model_free(m);
        long off = gguf_offset(gg, K[i].tensor);
        size_t at = (size_t)off + (size_t)K[i].block_bytes * K[i].block + K[i].scale_at;
        CHECK(off > 0 && poke(gg, at, &K[i].bad, 2) == 0, "poke %s", K[i].tensor);
        char want[64];
        snprintf(want, sizeof want, "NaN or infinity at element %d ", K[i].block * K[i].block_values);
        expect_refused(gg, K[i].tensor, want);
    }
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
    RUN(nonfinite_block_scales);
    RUN(shape_before_allocation);
    return harness_done();
}
