/*
 * session_file.c — a session's KV caches to a file and back (chat's /save and
 * /load), so a conversation resumes without recomputing its prompt.
 *
 * Layout (little-endian, as the machine writes it):
 *   "DCKV" u32 version=3 i32 kv_type (DC_KV_F32 / DC_KV_BF16: the cache's elements)
 *   i32 fingerprint[8]: hidden, layers, MTP layers, heads, kv_lora, rope, vocab, attn mode
 *   u64 identity: FNV-1a over the config and, for every weight matrix and
 *       vector, its type, shape and 16 of its stored values (model_identity),
 *       so a session saved from one checkpoint is refused by another of the
 *       same shape (another training step, another quantisation)
 *   i32 pos, mtp_pos, n_ids; i32 ids[n_ids]
 *   per layer (main, then MTP): its cache rows for positions < pos (MTP: < mtp_pos),
 *   naive: k rows then v rows; absorbed: ckv rows then kpe rows; each
 *   element as kv_type (float32 or bfloat16, as the engine's store holds it).
 * A file whose kv_type differs from the loading engine's is converted on load
 * (bf16 -> f32 exactly; f32 -> bf16 rounded to nearest even); version 2 files
 * (before kv_type) hold float32 and still load.
 * Every count is checked against the session and the file size on load.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "base/err.h"
#include "base/file.h"
#include "kernels/dtype.h"
#include "kernels/ggml_types.h"
#include "infer/engine.h"

#define KV_MAGIC "DCKV"

static void fingerprint(const dc_engine *e, int32_t fp[8]) {
    const dc_config *c = dc_model_config(e->m);
    int32_t v[8] = {c->hidden_size, c->num_hidden_layers, c->num_nextn_predict_layers, c->num_attention_heads,
                    c->kv_lora_rank, c->qk_rope_head_dim, c->vocab_size, e->o.attn};
    memcpy(fp, v, sizeof v);
}

/* ---------------------------------------------------------------- identity */

static uint64_t fnv(uint64_t h, const void *p, size_t n) {
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 0x100000001b3ull;
    return h;
}

/* a matrix: type, shape and 16 stored bytes-groups spread over its storage */
static uint64_t mat_id(uint64_t h, const mat *w) {
    int32_t d[3] = {w->type, w->rows, w->cols};
    h = fnv(h, d, sizeof d);
    size_t n = mat_bytes(w);
    if (!w->data || !n) return h;
    for (int k = 0; k < 16; k++) h = fnv(h, (const char *)(void *)w->data + (n - 4) / 15 * k, 4);
    return h;
}

static uint64_t vec_id(uint64_t h, const float *v, size_t n) {
    if (!v) return fnv(h, "-", 1);
    mat m = {(float *)v, MAT_F32, 1, (int)n};
    return mat_id(h, &m);
}

/* an embedding kept in its stored ggml type: the type and 16 byte-groups */
static uint64_t raw_id(uint64_t h, const void *p, int gtype, size_t n) {
    int32_t t = gtype;
    h = fnv(h, &t, sizeof t);
    if (!p || n < 4) return fnv(h, "-", 1);
    for (int k = 0; k < 16; k++) h = fnv(h, (const char *)p + (n - 4) / 15 * k, 4);
    return h;
}

/* model_identity: see the layout above (the weights as used: a model quantised
 * at load differs from its float32 self, whose cache would differ too) */
static uint64_t model_identity(const dc_model *m) {
    const dc_config *c = &m->cfg;
    uint64_t h = fnv(0xcbf29ce484222325ull, c, sizeof *c);
    h = raw_id(h, m->w.embed, m->w.embed_type, gg_row_bytes(m->w.embed_type, c->hidden_size) * c->vocab_size);
    h = vec_id(h, m->w.norm, c->hidden_size);
    h = mat_id(h, &m->w.head);
    for (int l = 0; l < m->w.nlayers; l++) {
        const layer_w *w = &m->w.layers[l];
        const mat *ms[] = {&w->q_a, &w->q_b, &w->q, &w->kv_a, &w->kv_b, &w->o, &w->gate, &w->up, &w->down,
                           &w->sh_gate, &w->sh_up, &w->sh_down, &w->eh_proj};
        for (size_t i = 0; i < sizeof ms / sizeof *ms; i++) h = mat_id(h, ms[i]);
        if (w->k_b.data) h = mat_id(mat_id(h, &w->k_b), &w->v_b); /* kv_b as stored pieces */
        h = vec_id(h, w->attn_norm, c->hidden_size);
        h = vec_id(h, w->ffn_norm, c->hidden_size);
        h = vec_id(h, w->router, w->is_moe ? (size_t)c->n_routed_experts * c->hidden_size : 0);
        for (int e = 0; w->is_moe && w->exp_gate && e < c->n_routed_experts; e++)
            h = mat_id(mat_id(mat_id(h, &w->exp_gate[e]), &w->exp_up[e]), &w->exp_down[e]);
    }
    return h;
}

/* elements per position of the two parts of a cache row (model.h kv_view):
 * naive keys then values, absorbed latent then rope key */
static void row_parts(const dc_engine *e, size_t *na, size_t *nb) {
    const dc_config *c = dc_model_config(e->m);
    if (e->o.attn == DC_ATTN_NAIVE) *na = (size_t)c->num_attention_heads * (c->qk_nope_head_dim + c->qk_rope_head_dim);
    else *na = c->kv_lora_rank;
    *nb = (size_t)e->view.row - *na;
}

static int esize_of(int kv_type) { return kv_type == DC_KV_BF16 ? 2 : 4; }

/* read n elements of file type ft at p into the store's row r (type st),
 * converting; DC_OK or the index of the first NaN / infinity + 1 */
static size_t elems_in(void *r, int st, const uint8_t *p, int ft, size_t n) {
    for (size_t i = 0; i < n; i++) {
        float v;
        if (ft == DC_KV_BF16) {
            uint16_t h;
            memcpy(&h, p + 2 * i, 2);
            v = bf16_to_f32(h);
        } else {
            memcpy(&v, p + 4 * i, 4);
        }
        if (!isfinite(v)) return i + 1;
        if (st == DC_KV_BF16) ((uint16_t *)r)[i] = f32_to_bf16(v);
        else ((float *)r)[i] = v;
    }
    return 0;
}

/* write (or read, into) one layer's rows: part a of positions 0..rows-1, then
 * part b; the file's elements are of type ft (written: the store's own) */
static int layer_io(const dc_engine *e, int seq, int l, size_t rows, afile *f, const uint8_t **p, int ft,
                    dc_err *err) {
    size_t na, nb;
    int st = e->o.kv_type, es = esize_of(st);
    row_parts(e, &na, &nb);
    for (int part = 0; part < 2; part++)
        for (size_t j = 0; j < rows; j++) {
            void *r = (char *)engine_row(e, seq, l, (int)j) + (part ? na : 0) * es;
            size_t n = part ? nb : na;
            if (f) {
                int rc = afile_write(f, r, n * es, err);
                if (rc) return rc;
                continue;
            }
            size_t bad = elems_in(r, st, *p, ft, n);
            *p += n * esize_of(ft);
            if (bad)
                return err_set(err, DC_EFORMAT, "layer %d position %zu of the saved cache holds a NaN or an infinity",
                               l, j);
        }
    return DC_OK;
}

int dc_session_save(const dc_session *s, const int *ids, int n, const char *path, dc_err *err) {
    const dc_engine *e = session_engine(s);
    int seq = session_seq(s), pos = dc_seq_len(e, seq), mpos = dc_seq_mtp_len(e, seq);
    if (n != pos) return err_set(err, DC_EARG, "session_save: %d ids for %d cached positions", n, pos);
    afile f;
    int rc = afile_open(&f, path, err);
    if (rc) return rc;
    uint32_t ver = 3;
    int32_t kt = e->o.kv_type, fp[8], hdr[3] = {pos, mpos, n};
    uint64_t id = model_identity(e->m);
    fingerprint(e, fp);
    rc = afile_write(&f, KV_MAGIC, 4, err);
    if (!rc) rc = afile_write(&f, &ver, 4, err);
    if (!rc) rc = afile_write(&f, &kt, 4, err);
    if (!rc) rc = afile_write(&f, fp, sizeof fp, err);
    if (!rc) rc = afile_write(&f, &id, sizeof id, err);
    if (!rc) rc = afile_write(&f, hdr, sizeof hdr, err);
    if (!rc && n) rc = afile_write(&f, ids, sizeof(int32_t) * n, err);
    const dc_config *c = dc_model_config(e->m);
    int nl = c->num_hidden_layers + c->num_nextn_predict_layers;
    for (int l = 0; l < nl && !rc; l++)
        rc = layer_io(e, seq, l, l < c->num_hidden_layers ? (size_t)pos : (size_t)mpos, &f, NULL, kt, err);
    if (rc) {
        afile_abort(&f);
        return rc;
    }
    return afile_commit(&f, err);
}

int dc_session_load(dc_session *s, const char *path, int **ids, int *n, dc_err *err) {
    *ids = NULL;
    *n = 0;
    mfile f;
    int rc = mfile_open(&f, path, err);
    if (rc) return rc;
    /* an empty file maps to no data: no pointer arithmetic on it */
    const uint8_t *p = f.size ? f.data : NULL, *end = f.size ? f.data + f.size : NULL;
    dc_engine *e = session_engine(s);
    int seq = session_seq(s);
    int32_t fp[8], want[8], hdr[3];
    uint64_t id;
    fingerprint(e, want);
    uint32_t ver = 0;
    if (f.size >= 8) memcpy(&ver, p + 4, 4);
    const size_t pre = ver >= 3 ? 12 : 8, head = pre + sizeof fp + sizeof id + sizeof hdr;
    if (f.size < 8 || memcmp(p, KV_MAGIC, 4)) {
        rc = err_set(err, DC_EFORMAT, "%s: not a deepc session file", path);
        goto done;
    }
    if (ver != 2 && ver != 3) {
        rc = err_set(err, DC_EFORMAT, "%s: a deepc session file of version %u; this deepc reads versions 2 and 3",
                     path, ver);
        goto done;
    }
    if (f.size < head) {
        rc = err_set(err, DC_EFORMAT, "%s: truncated session header (%zu bytes)", path, (size_t)f.size);
        goto done;
    }
    int32_t ft = DC_KV_F32; /* version 2: float32 */
    if (ver >= 3) memcpy(&ft, p + 8, 4);
    if (ft != DC_KV_F32 && ft != DC_KV_BF16) {
        rc = err_set(err, DC_EFORMAT, "%s: unknown KV cache element type %d", path, ft);
        goto done;
    }
    memcpy(fp, p + pre, sizeof fp);
    memcpy(&id, p + pre + sizeof fp, sizeof id);
    memcpy(hdr, p + pre + sizeof fp + sizeof id, sizeof hdr);
    p += head;
    if (memcmp(fp, want, sizeof fp)) {
        rc = err_set(err, DC_EARG, "%s: saved from another model shape or attention mode", path);
        goto done;
    }
    if (id != model_identity(e->m)) {
        rc = err_set(err, DC_EARG, "%s: saved from another checkpoint (or weight type) of this shape: its cache "
                     "does not fit these weights", path);
        goto done;
    }
    const dc_config *c = dc_model_config(e->m);
    int pos = hdr[0], mpos = hdr[1], nid = hdr[2];
    if (pos < 0 || mpos < 0 || mpos > pos || nid != pos || pos > e->o.max_len) {
        rc = err_set(err, DC_EFORMAT, "%s: %d positions (%d MTP, %d ids) do not fit a context of %d", path, pos,
                     mpos, nid, e->o.max_len);
        goto done;
    }
    int nl = c->num_hidden_layers + c->num_nextn_predict_layers;
    size_t need = sizeof(int32_t) * (size_t)nid;
    for (int l = 0; l < nl; l++) need += (size_t)esize_of(ft) * e->view.row * (size_t)(l < c->num_hidden_layers ? pos : mpos);
    if ((size_t)(end - p) != need) {
        rc = err_set(err, DC_EFORMAT, "%s: %zu bytes of data, the header promises %zu", path, (size_t)(end - p), need);
        goto done;
    }
    int *v = malloc(sizeof(int) * (nid ? nid : 1));
    if (!v) {
        rc = err_set(err, DC_ENOMEM, "session_load: out of memory");
        goto done;
    }
    memcpy(v, p, sizeof(int32_t) * nid);
    p += sizeof(int32_t) * nid;
    for (int i = 0; i < nid; i++) /* the ids index logits (repeat penalty) and the tokenizer */
        if (v[i] < 0 || v[i] >= c->vocab_size) {
            rc = err_set(err, DC_EFORMAT, "%s: id %d at position %d is outside the vocabulary (0..%d)", path, v[i], i,
                         c->vocab_size - 1);
            free(v);
            goto done;
        }
    if ((rc = engine_seq_set(e, seq, pos, mpos, err))) {
        free(v);
        goto done;
    }
    for (int l = 0; l < nl && !rc; l++)
        rc = layer_io(e, seq, l, l < c->num_hidden_layers ? (size_t)pos : (size_t)mpos, NULL, &p, ft, err);
    if (rc) { /* a cache that cannot be trusted: the session is left empty */
        kv_seq_truncate(&e->kv, seq, 0);
        free(v);
        if (err) {
            char why[sizeof err->msg];
            snprintf(why, sizeof why, "%s", err->msg);
            err_set(err, rc, "%s: %s", path, why);
        }
        goto done;
    }
    *ids = v;
    *n = nid;
done:
    mfile_close(&f);
    return rc;
}
