/* gguf.c — see gguf.h. Every read goes through rd_*, which checks the bytes
 * left before touching them; counts are checked against the bytes left
 * (times the smallest size one element can take) before anything is
 * allocated for them, so a corrupt count cannot ask for terabytes. */
#include "io/gguf.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "base/err.h"
#include "kernels/ggml_types.h"

static const struct {
    const char *name;
    int size;
} TYPES[GGUF_NTYPES] = {
    [GGUF_U8] = {"u8", 1},   [GGUF_I8] = {"i8", 1},     [GGUF_U16] = {"u16", 2}, [GGUF_I16] = {"i16", 2},
    [GGUF_U32] = {"u32", 4}, [GGUF_I32] = {"i32", 4},   [GGUF_F32] = {"f32", 4}, [GGUF_BOOL] = {"bool", 1},
    [GGUF_STR] = {"str", 0}, [GGUF_ARR] = {"arr", 0},   [GGUF_U64] = {"u64", 8}, [GGUF_I64] = {"i64", 8},
    [GGUF_F64] = {"f64", 8},
};

const char *gguf_type_name(int t) { return t >= 0 && t < GGUF_NTYPES ? TYPES[t].name : "?"; }
int gguf_type_size(int t) { return t >= 0 && t < GGUF_NTYPES ? TYPES[t].size : 0; }

// ---------------------------------------------------------------- bounded reads
typedef struct rd {
    const uint8_t *p;
    size_t size, pos;
    gguf *g;
    dc_err *err;
} rd;

static int rd_short(rd *r, const char *what, uint64_t need) {
    return err_set(r->err, DC_EFORMAT, "%s: truncated: %s needs %llu bytes at offset %zu, file has %zu", r->g->name,
                   what, (unsigned long long)need, r->pos, r->size);
}

static int rd_bytes(rd *r, void *out, size_t n, const char *what) {
    if (r->size - r->pos < n) return rd_short(r, what, n);
    memcpy(out, r->p + r->pos, n);
    r->pos += n;
    return DC_OK;
}

static int rd_u32(rd *r, uint32_t *v, const char *what) { return rd_bytes(r, v, 4, what); }
static int rd_u64(rd *r, uint64_t *v, const char *what) { return rd_bytes(r, v, 8, what); }

static int rd_str(rd *r, gguf_str *s, const char *what) {
    uint64_t n = 0;
    int rc = rd_u64(r, &n, what);
    if (rc) return rc;
    if (n > r->size - r->pos) return rd_short(r, what, n);
    s->s = (const char *)r->p + r->pos;
    s->n = n;
    r->pos += n;
    return DC_OK;
}

// ---------------------------------------------------------------- values
/* read_array: element type, count, then the elements (strings are walked
 * one by one and their offsets recorded). */
static int read_array(rd *r, gguf_kv *kv) {
    uint32_t et = 0;
    uint64_t n = 0;
    int rc;
    if ((rc = rd_u32(r, &et, "array type")) || (rc = rd_u64(r, &n, "array count"))) return rc;
    if (et >= GGUF_NTYPES)
        return err_set(r->err, DC_EFORMAT, "%s: key %.*s: unknown array element type %u", r->g->name,
                       (int)kv->key.n, kv->key.s, et);
    if (et == GGUF_ARR)
        return err_set(r->err, DC_EFORMAT, "%s: key %.*s: nested arrays are not supported", r->g->name,
                       (int)kv->key.n, kv->key.s);
    kv->arr_type = (int)et;
    kv->n = n;
    kv->data = r->p + r->pos;
    size_t left = r->size - r->pos;
    if (et != GGUF_STR) {
        uint64_t es = (uint64_t)TYPES[et].size;
        if (n > left / es)
            return err_set(r->err, DC_EFORMAT, "%s: key %.*s: %llu %s elements need %llu bytes, %zu left",
                           r->g->name, (int)kv->key.n, kv->key.s, (unsigned long long)n, TYPES[et].name,
                           (unsigned long long)(n > UINT64_MAX / es ? UINT64_MAX : n * es), left);
        r->pos += n * es;
        return DC_OK;
    }
    if (n > left / 8)
        return err_set(r->err, DC_EFORMAT, "%s: key %.*s: %llu strings cannot fit in the %zu bytes left", r->g->name,
                       (int)kv->key.n, kv->key.s, (unsigned long long)n, left);
    kv->str_off = malloc(sizeof(uint64_t) * (n ? n : 1));
    if (!kv->str_off)
        return err_set(r->err, DC_ENOMEM, "%s: key %.*s: out of memory for %llu string offsets", r->g->name,
                       (int)kv->key.n, kv->key.s, (unsigned long long)n);
    for (uint64_t i = 0; i < n; i++) {
        gguf_str s;
        kv->str_off[i] = r->pos;
        if ((rc = rd_str(r, &s, "array string"))) return err_prefix(r->err, "key %.*s[%llu]", (int)kv->key.n,
                                                                     kv->key.s, (unsigned long long)i);
    }
    return DC_OK;
}

static int read_value(rd *r, gguf_kv *kv) {
    kv->arr_type = -1;
    kv->n = 1;
    kv->data = r->p + r->pos;
    if (kv->type == GGUF_ARR) return read_array(r, kv);
    if (kv->type == GGUF_STR) {
        gguf_str s;
        return rd_str(r, &s, "string value");
    }
    size_t es = (size_t)TYPES[kv->type].size;
    if (r->size - r->pos < es) return rd_short(r, "scalar value", es);
    if (kv->type == GGUF_BOOL && r->p[r->pos] > 1)
        return err_set(r->err, DC_EFORMAT, "%s: key %.*s: bool value %u", r->g->name, (int)kv->key.n, kv->key.s,
                       r->p[r->pos]);
    r->pos += es;
    return DC_OK;
}

static uint64_t name_hash(const char *s, uint64_t n);

/* key_slot: where key k is in the key index, or the empty slot it would take */
static uint64_t key_slot(const gguf *g, const char *k, uint64_t n) {
    uint64_t h = name_hash(k, n) & (g->khcap - 1);
    for (; g->khash[h] >= 0; h = (h + 1) & (g->khcap - 1)) {
        const gguf_str *o = &g->kv[g->khash[h]].key;
        if (o->n == n && memcmp(o->s, k, n) == 0) break;
    }
    return h;
}

static int read_kvs(rd *r) {
    gguf *g = r->g;
    /* smallest key/value: empty key (8) + type (4) + one byte */
    if (g->n_kv > (r->size - r->pos) / 13)
        return err_set(r->err, DC_EFORMAT, "%s: %llu key/values cannot fit in the %zu bytes left", g->name,
                       (unsigned long long)g->n_kv, r->size - r->pos);
    g->kv = calloc(g->n_kv ? g->n_kv : 1, sizeof *g->kv);
    /* the key index (open addressing, at most half full): duplicates found in
     * O(1) each, where comparing with every earlier key took minutes for 80k keys */
    g->khcap = 16;
    while (g->khcap < 2 * g->n_kv) g->khcap <<= 1;
    g->khash = malloc(sizeof *g->khash * g->khcap);
    if (!g->kv || !g->khash)
        return err_set(r->err, DC_ENOMEM, "%s: out of memory for %llu keys", g->name, (unsigned long long)g->n_kv);
    for (uint64_t i = 0; i < g->khcap; i++) g->khash[i] = -1;
    for (uint64_t i = 0; i < g->n_kv; i++) {
        gguf_kv *kv = &g->kv[i];
        uint32_t t;
        int rc;
        if ((rc = rd_str(r, &kv->key, "key")) || (rc = rd_u32(r, &t, "value type")))
            return err_prefix(r->err, "key/value %llu", (unsigned long long)i);
        if (t >= GGUF_NTYPES)
            return err_set(r->err, DC_EFORMAT, "%s: key %.*s: unknown value type %u", g->name, (int)kv->key.n,
                           kv->key.s, t);
        kv->type = (int)t;
        uint64_t h = key_slot(g, kv->key.s, kv->key.n);
        if (g->khash[h] >= 0)
            return err_set(r->err, DC_EFORMAT, "%s: duplicate key %.*s", g->name, (int)kv->key.n, kv->key.s);
        g->khash[h] = (int64_t)i;
        if ((rc = read_value(r, kv))) return rc;
    }
    return DC_OK;
}

static int read_header(rd *r) {
    gguf *g = r->g;
    uint8_t magic[4];
    int rc;
    if ((rc = rd_bytes(r, magic, 4, "magic"))) return rc;
    if (memcmp(magic, "GGUF", 4) != 0) return err_set(r->err, DC_EFORMAT, "%s: not a GGUF file (bad magic)", g->name);
    if ((rc = rd_u32(r, &g->version, "version"))) return rc;
    if (g->version == 1) return err_set(r->err, DC_EFORMAT, "%s: GGUF v1 is not supported (v2 or v3 only)", g->name);
    if (g->version != 2 && g->version != 3)
        return err_set(r->err, DC_EFORMAT, "%s: GGUF version %u not supported (a big-endian file?)", g->name, g->version);
    if ((rc = rd_u64(r, &g->n_tensors, "tensor count")) || (rc = rd_u64(r, &g->n_kv, "key/value count"))) return rc;
    return DC_OK;
}

static int check_alignment(gguf *g, dc_err *err) {
    g->alignment = GGUF_DEFAULT_ALIGNMENT;
    const gguf_kv *kv = gguf_find(g, "general.alignment");
    if (!kv) return DC_OK;
    if (kv->type != GGUF_U32)
        return err_set(err, DC_EFORMAT, "%s: general.alignment has type %s, want u32", g->name, gguf_type_name(kv->type));
    uint32_t a = (uint32_t)gguf_kv_int(kv, 0);
    if (a == 0 || (a & (a - 1)))
        return err_set(err, DC_EFORMAT, "%s: general.alignment %u is not a power of two", g->name, a);
    g->alignment = a;
    return DC_OK;
}

int gguf_open_mem(gguf *g, const void *data, size_t size, const char *name, dc_err *err) {
    memset(g, 0, sizeof *g);
    snprintf(g->name, sizeof g->name, "%s", name ? name : "gguf");
    g->data = data;
    g->size = size;
    rd r = {data, size, 0, g, err};
    int rc = read_header(&r);
    if (!rc) rc = read_kvs(&r);
    if (!rc) rc = check_alignment(g, err);
    /* smallest tensor info: empty name (8) + n_dims (4) + type (4) + offset (8) */
    if (!rc && g->n_tensors > (size - r.pos) / 24)
        rc = err_set(err, DC_EFORMAT, "%s: %llu tensor infos cannot fit in the %zu bytes left", g->name,
                     (unsigned long long)g->n_tensors, size - r.pos);
    if (rc) {
        gguf_close(g);
        return rc;
    }
    g->tensor_info_off = r.pos;
    return DC_OK;
}

int gguf_open(gguf *g, const char *path, dc_err *err) {
    mfile f;
    memset(g, 0, sizeof *g);
    int rc = mfile_open(&f, path, err);
    if (rc) return rc;
    rc = gguf_open_mem(g, f.data, f.size, path, err);
    if (rc) {
        mfile_close(&f);
        return rc;
    }
    g->f = f;
    return DC_OK;
}

void gguf_close(gguf *g) {
    if (!g) return;
    if (g->kv)
        for (uint64_t i = 0; i < g->n_kv; i++) free(g->kv[i].str_off);
    free(g->kv);
    free(g->khash);
    free(g->tensors);
    free(g->thash);
    mfile_close(&g->f);
    memset(g, 0, sizeof *g);
}

// ---------------------------------------------------------------- lookups
const gguf_kv *gguf_find(const gguf *g, const char *key) {
    if (!g->kv || !g->khash) return NULL;
    int64_t i = g->khash[key_slot(g, key, strlen(key))];
    return i >= 0 ? &g->kv[i] : NULL;
}

static int is_int_type(int t) {
    return t == GGUF_U8 || t == GGUF_I8 || t == GGUF_U16 || t == GGUF_I16 || t == GGUF_U32 || t == GGUF_I32 ||
           t == GGUF_U64 || t == GGUF_I64 || t == GGUF_BOOL;
}

int gguf_get_int(const gguf *g, const char *key, int64_t *out, dc_err *err) {
    const gguf_kv *kv = gguf_find(g, key);
    if (!kv) return err_set(err, DC_ENOTFOUND, "%s: no key %s", g->name, key);
    if (!is_int_type(kv->type))
        return err_set(err, DC_EFORMAT, "%s: key %s has type %s, want an integer", g->name, key, gguf_type_name(kv->type));
    if (kv->type == GGUF_U64) {
        uint64_t v;
        memcpy(&v, kv->data, 8);
        if (v > INT64_MAX) return err_set(err, DC_EFORMAT, "%s: key %s: %llu is too large", g->name, key,
                                          (unsigned long long)v);
    }
    *out = gguf_kv_int(kv, 0);
    return DC_OK;
}

int gguf_get_str(const gguf *g, const char *key, gguf_str *out, dc_err *err) {
    const gguf_kv *kv = gguf_find(g, key);
    if (!kv) return err_set(err, DC_ENOTFOUND, "%s: no key %s", g->name, key);
    if (kv->type != GGUF_STR)
        return err_set(err, DC_EFORMAT, "%s: key %s has type %s, want str", g->name, key, gguf_type_name(kv->type));
    *out = gguf_kv_str(kv, 0);
    return DC_OK;
}

int gguf_get_arr(const gguf *g, const char *key, int type, const gguf_kv **out, dc_err *err) {
    const gguf_kv *kv = gguf_find(g, key);
    if (!kv) return err_set(err, DC_ENOTFOUND, "%s: no key %s", g->name, key);
    if (kv->type != GGUF_ARR || (type >= 0 && kv->arr_type != type))
        return err_set(err, DC_EFORMAT, "%s: key %s has type %s[%s], want arr[%s]", g->name, key,
                       gguf_type_name(kv->type), gguf_type_name(kv->arr_type), type >= 0 ? gguf_type_name(type) : "any");
    *out = kv;
    return DC_OK;
}

static const uint8_t *elem(const gguf_kv *kv, uint64_t i, int *type) {
    *type = kv->type == GGUF_ARR ? kv->arr_type : kv->type;
    return kv->data + i * (uint64_t)gguf_type_size(*type);
}

int64_t gguf_kv_int(const gguf_kv *kv, uint64_t i) {
    int t;
    const uint8_t *p = elem(kv, i, &t);
    switch (t) {
    case GGUF_U8: case GGUF_BOOL: return p[0];
    case GGUF_I8: return (int8_t)p[0];
    case GGUF_U16: { uint16_t v; memcpy(&v, p, 2); return v; }
    case GGUF_I16: { int16_t v; memcpy(&v, p, 2); return v; }
    case GGUF_U32: { uint32_t v; memcpy(&v, p, 4); return v; }
    case GGUF_I32: { int32_t v; memcpy(&v, p, 4); return v; }
    case GGUF_U64: { uint64_t v; memcpy(&v, p, 8); return (int64_t)v; }
    case GGUF_I64: { int64_t v; memcpy(&v, p, 8); return v; }
    case GGUF_F32: { float v; memcpy(&v, p, 4); return (int64_t)v; }
    case GGUF_F64: { double v; memcpy(&v, p, 8); return (int64_t)v; }
    default: return 0;
    }
}

double gguf_kv_float(const gguf_kv *kv, uint64_t i) {
    int t;
    const uint8_t *p = elem(kv, i, &t);
    if (t == GGUF_F32) { float v; memcpy(&v, p, 4); return v; }
    if (t == GGUF_F64) { double v; memcpy(&v, p, 8); return v; }
    if (t == GGUF_U64) { uint64_t v; memcpy(&v, p, 8); return (double)v; }
    return (double)gguf_kv_int(kv, i);
}

gguf_str gguf_kv_str(const gguf_kv *kv, uint64_t i) {
    gguf_str s = {"", 0};
    const uint8_t *p;
    if (kv->type == GGUF_STR) p = kv->data;
    else if (kv->type == GGUF_ARR && kv->arr_type == GGUF_STR && kv->str_off && i < kv->n)
        p = kv->data + (kv->str_off[i] - kv->str_off[0]);
    else return s;
    memcpy(&s.n, p, 8);
    s.s = (const char *)p + 8;
    return s;
}

// ---------------------------------------------------------------- tensors

static uint64_t name_hash(const char *s, uint64_t n) {
    uint64_t h = 1469598103934665603ull;
    for (uint64_t i = 0; i < n; i++) h = (h ^ (uint8_t)s[i]) * 1099511628211ull;
    return h;
}

int64_t gguf_tensor_numel(const gguf_tensor *t) {
    int64_t n = 1;
    for (int d = 0; d < t->n_dims; d++) n *= t->ne[d];
    return n;
}

/* read_tensor_info: one info at r, checked except for its data extent */
static int read_tensor_info(rd *r, gguf_tensor *t, uint64_t i) {
    gguf *g = r->g;
    uint32_t nd, type;
    int rc;
    if ((rc = rd_str(r, &t->name, "tensor name")) || (rc = rd_u32(r, &nd, "tensor n_dims")))
        return err_prefix(r->err, "tensor %llu", (unsigned long long)i);
    if (t->name.n == 0 || t->name.n > 255)
        return err_set(r->err, DC_EFORMAT, "%s: tensor %llu: name length %llu (1..255)", g->name,
                       (unsigned long long)i, (unsigned long long)t->name.n);
    int nl = (int)t->name.n;
    if (nd < 1 || nd > GGUF_MAX_DIMS)
        return err_set(r->err, DC_EFORMAT, "%s: tensor %.*s: %u dims (1..4)", g->name, nl, t->name.s, nd);
    t->n_dims = (int)nd;
    int64_t numel = 1;
    for (int d = 0; d < GGUF_MAX_DIMS; d++) {
        uint64_t v = 1;
        if (d < (int)nd && (rc = rd_u64(r, &v, "tensor dim"))) return err_prefix(r->err, "tensor %.*s", nl, t->name.s);
        /* the product of the nonzero dims fits, so every partial product does */
        if (v > (uint64_t)INT64_MAX / (uint64_t)numel)
            return err_set(r->err, DC_EFORMAT, "%s: tensor %.*s: dims overflow", g->name, nl, t->name.s);
        t->ne[d] = (int64_t)v;
        numel *= v ? (int64_t)v : 1;
    }
    if ((rc = rd_u32(r, &type, "tensor type")) || (rc = rd_u64(r, &t->offset, "tensor offset")))
        return err_prefix(r->err, "tensor %.*s", nl, t->name.s);
    if (gg_blck((int)type) == 0 || !gg_can_dequantize((int)type))
        return err_set(r->err, DC_EDTYPE, "%s: tensor %.*s: ggml type %u%s is not supported", g->name, nl, t->name.s,
                       type, gg_unread_type_note((int)type));
    t->type = (int)type;
    if (t->ne[0] % gg_blck(t->type))
        return err_set(r->err, DC_EFORMAT, "%s: tensor %.*s: row of %lld is not a whole number of %s blocks (%d)",
                       g->name, nl, t->name.s, (long long)t->ne[0], gg_type_name(t->type), gg_blck(t->type));
    if (t->offset % g->alignment)
        return err_set(r->err, DC_EFORMAT, "%s: tensor %.*s: offset %llu is not a multiple of the alignment %u",
                       g->name, nl, t->name.s, (unsigned long long)t->offset, g->alignment);
    uint64_t rows = (uint64_t)(t->ne[1] * t->ne[2] * t->ne[3]); /* fits: see the dims check */
    uint64_t rb = gg_row_bytes(t->type, t->ne[0]);
    if (rb && rows > SIZE_MAX / rb)
        return err_set(r->err, DC_EFORMAT, "%s: tensor %.*s: size overflows", g->name, nl, t->name.s);
    t->nbytes = (size_t)(rows * rb);
    return DC_OK;
}

static int index_tensors(gguf *g, dc_err *err) {
    uint64_t cap = 16;
    while (cap < g->n_tensors * 2) cap <<= 1;
    g->thash = malloc(sizeof *g->thash * cap);
    if (!g->thash) return err_set(err, DC_ENOMEM, "%s: out of memory for the tensor index", g->name);
    g->thcap = cap;
    for (uint64_t i = 0; i < cap; i++) g->thash[i] = -1;
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        const gguf_tensor *t = &g->tensors[i];
        uint64_t h = name_hash(t->name.s, t->name.n) & (cap - 1);
        for (; g->thash[h] >= 0; h = (h + 1) & (cap - 1)) {
            const gguf_tensor *o = &g->tensors[g->thash[h]];
            if (o->name.n == t->name.n && memcmp(o->name.s, t->name.s, t->name.n) == 0)
                return err_set(err, DC_EFORMAT, "%s: duplicate tensor %.*s", g->name, (int)t->name.n, t->name.s);
        }
        g->thash[h] = (int64_t)i;
    }
    return DC_OK;
}

int gguf_read_tensors(gguf *g, dc_err *err) {
    if (g->tensors) return DC_OK;
    rd r = {g->data, g->size, (size_t)g->tensor_info_off, g, err};
    g->tensors = calloc(g->n_tensors ? g->n_tensors : 1, sizeof *g->tensors);
    if (!g->tensors)
        return err_set(err, DC_ENOMEM, "%s: out of memory for %llu tensor infos", g->name, (unsigned long long)g->n_tensors);
    int rc = DC_OK;
    for (uint64_t i = 0; i < g->n_tensors && !rc; i++) rc = read_tensor_info(&r, &g->tensors[i], i);
    if (!rc) {
        uint64_t a = g->alignment, off = (r.pos + a - 1) / a * a;
        g->data_off = off;
        if (g->n_tensors && off > g->size)
            rc = err_set(err, DC_EFORMAT, "%s: truncated: tensor data would start at %llu, file has %zu", g->name,
                         (unsigned long long)off, g->size);
        for (uint64_t i = 0; i < g->n_tensors && !rc; i++) {
            gguf_tensor *t = &g->tensors[i];
            uint64_t left = g->size - off;
            if (t->offset > left || t->nbytes > left - t->offset)
                rc = err_set(err, DC_EFORMAT,
                             "%s: truncated: tensor %.*s needs %zu bytes at data offset %llu, the file has %llu",
                             g->name, (int)t->name.n, t->name.s, t->nbytes, (unsigned long long)t->offset,
                             (unsigned long long)left);
            else t->data = g->data + off + t->offset;
        }
    }
    if (!rc) rc = index_tensors(g, err);
    if (rc) {
        free(g->tensors), free(g->thash);
        g->tensors = NULL, g->thash = NULL, g->thcap = 0;
    }
    return rc;
}

const gguf_tensor *gguf_find_tensor(const gguf *g, const char *name) {
    if (!g->thash) return NULL;
    size_t n = strlen(name);
    for (uint64_t h = name_hash(name, n) & (g->thcap - 1); g->thash[h] >= 0; h = (h + 1) & (g->thcap - 1)) {
        const gguf_tensor *t = &g->tensors[g->thash[h]];
        if (t->name.n == n && memcmp(t->name.s, name, n) == 0) return t;
    }
    return NULL;
}
