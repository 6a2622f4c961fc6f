/* gguf_write.c — see gguf_write.h. */
#include "io/gguf_write.h"
#include <stdlib.h>
#include <string.h>
#include "base/err.h"
#include "io/gguf.h"
#include "kernels/ggml_types.h"

#define GW_ALIGN 32

void gw_init(gguf_writer *w) { memset(w, 0, sizeof *w); }

void gw_free(gguf_writer *w) {
    if (!w) return;
    if (w->opened) afile_abort(&w->a);
    free(w->kv);
    free(w->t);
    memset(w, 0, sizeof *w);
}

static void put(gguf_writer *w, const void *p, size_t n) {
    if (w->oom) return;
    if (w->kv_n + n > w->kv_cap) {
        size_t cap = (w->kv_n + n) * 2 + 4096;
        uint8_t *nk = realloc(w->kv, cap);
        if (!nk) {
            w->oom = 1;
            return;
        }
        w->kv = nk, w->kv_cap = cap;
    }
    memcpy(w->kv + w->kv_n, p, n);
    w->kv_n += n;
}
static void put_u32(gguf_writer *w, uint32_t v) { put(w, &v, 4); }
static void put_u64(gguf_writer *w, uint64_t v) { put(w, &v, 8); }
static void put_str(gguf_writer *w, const char *s, size_t n) {
    put_u64(w, n);
    put(w, s, n);
}
static void key(gguf_writer *w, const char *k, uint32_t type) {
    put_str(w, k, strlen(k));
    put_u32(w, type);
    w->n_kv++;
}

void gw_str(gguf_writer *w, const char *k, const char *v) { key(w, k, GGUF_STR), put_str(w, v, strlen(v)); }
void gw_u32(gguf_writer *w, const char *k, uint32_t v) { key(w, k, GGUF_U32), put_u32(w, v); }
void gw_i32(gguf_writer *w, const char *k, int32_t v) { key(w, k, GGUF_I32), put(w, &v, 4); }
void gw_f32(gguf_writer *w, const char *k, float v) { key(w, k, GGUF_F32), put(w, &v, 4); }
void gw_bool(gguf_writer *w, const char *k, int v) {
    uint8_t b = v != 0;
    key(w, k, GGUF_BOOL), put(w, &b, 1);
}

void gw_arr_str(gguf_writer *w, const char *k, const char *const *s, const size_t *len, uint64_t n) {
    key(w, k, GGUF_ARR);
    put_u32(w, GGUF_STR);
    put_u64(w, n);
    for (uint64_t i = 0; i < n; i++) put_str(w, s[i], len ? len[i] : strlen(s[i]));
}

void gw_arr_i32(gguf_writer *w, const char *k, const int32_t *v, uint64_t n) {
    key(w, k, GGUF_ARR);
    put_u32(w, GGUF_I32);
    put_u64(w, n);
    put(w, v, 4 * n);
}

int gw_tensor_add(gguf_writer *w, const char *name, int type, int n_dims, const int64_t *ne, dc_err *err) {
    if (strlen(name) >= sizeof w->t->name || n_dims < 1 || n_dims > 4)
        return err_set(err, DC_EARG, "gguf write: tensor %s: bad name or %d dims", name, n_dims);
    uint64_t rows = 1;
    for (int d = 1; d < n_dims; d++) rows *= (uint64_t)ne[d];
    size_t rb = gg_row_bytes(type, ne[0]);
    if (!rb) return err_set(err, DC_EARG, "gguf write: tensor %s: a row of %lld does not fit type %s", name,
                            (long long)ne[0], gg_type_name(type));
    if (w->n_t == w->cap_t) {
        uint64_t cap = w->cap_t ? w->cap_t * 2 : 256;
        gw_tensor *nt = realloc(w->t, sizeof *nt * cap);
        if (!nt) return err_set(err, DC_ENOMEM, "gguf write: out of memory");
        w->t = nt, w->cap_t = cap;
    }
    gw_tensor *t = &w->t[w->n_t++];
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", name);
    t->n_dims = n_dims;
    for (int d = 0; d < 4; d++) t->ne[d] = d < n_dims ? ne[d] : 1;
    t->type = type;
    t->nbytes = rb * rows;
    t->offset = w->data_size;
    w->data_size += (t->nbytes + GW_ALIGN - 1) / GW_ALIGN * GW_ALIGN;
    return DC_OK;
}

int gw_begin(gguf_writer *w, const char *path, dc_err *err) {
    if (w->oom) return err_set(err, DC_ENOMEM, "%s: out of memory for the GGUF metadata", path);
    int rc = afile_open(&w->a, path, err);
    if (rc) return rc;
    w->opened = 1;
    /* the header and infos in one buffer, reusing put() on a fresh writer */
    gguf_writer h;
    gw_init(&h);
    put(&h, "GGUF", 4);
    put_u32(&h, 3);
    put_u64(&h, w->n_t);
    put_u64(&h, w->n_kv);
    put(&h, w->kv, w->kv_n);
    for (uint64_t i = 0; i < w->n_t; i++) {
        const gw_tensor *t = &w->t[i];
        put_str(&h, t->name, strlen(t->name));
        put_u32(&h, (uint32_t)t->n_dims);
        for (int d = 0; d < t->n_dims; d++) put_u64(&h, (uint64_t)t->ne[d]);
        put_u32(&h, (uint32_t)t->type);
        put_u64(&h, t->offset);
    }
    static const uint8_t zero[GW_ALIGN];
    put(&h, zero, (GW_ALIGN - h.kv_n % GW_ALIGN) % GW_ALIGN);
    rc = h.oom ? err_set(err, DC_ENOMEM, "%s: out of memory for the GGUF header", path)
               : afile_write(&w->a, h.kv, h.kv_n, err);
    gw_free(&h);
    w->cur = 0, w->done = 0;
    if (rc) gw_abort(w);
    return rc;
}

int gw_data(gguf_writer *w, const void *p, size_t n, dc_err *err) {
    static const uint8_t zero[GW_ALIGN];
    const uint8_t *b = p;
    while (n) {
        if (w->cur >= w->n_t) return err_set(err, DC_EARG, "%s: more tensor data than the tensors hold", w->a.path);
        gw_tensor *t = &w->t[w->cur];
        size_t k = t->nbytes - w->done < n ? t->nbytes - w->done : n;
        int rc = afile_write(&w->a, b, k, err);
        if (rc) return rc;
        b += k, n -= k, w->done += k;
        if (w->done == t->nbytes) {
            size_t pad = (GW_ALIGN - t->nbytes % GW_ALIGN) % GW_ALIGN;
            if (pad && (rc = afile_write(&w->a, zero, pad, err))) return rc;
            w->cur++, w->done = 0;
        }
    }
    return DC_OK;
}

int gw_end(gguf_writer *w, dc_err *err) {
    /* tensors of zero bytes complete without data */
    while (w->cur < w->n_t && w->t[w->cur].nbytes == 0) w->cur++;
    if (w->cur != w->n_t) {
        int rc = err_set(err, DC_EARG, "%s: tensor %s was not written", w->a.path, w->t[w->cur].name);
        gw_abort(w);
        return rc;
    }
    w->opened = 0;
    return afile_commit(&w->a, err);
}

void gw_abort(gguf_writer *w) {
    if (w->opened) afile_abort(&w->a);
    w->opened = 0;
}
