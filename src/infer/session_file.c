/*
 * session_file.c — a session's KV caches to a file and back (chat's /save and
 * /load), so a conversation resumes without recomputing its prompt.
 *
 * Layout (little-endian, as the machine writes it):
 *   "DCKV" u32 version=1
 *   i32 fingerprint[8]: hidden, layers, MTP layers, heads, kv_lora, rope, vocab, attn mode
 *   i32 pos, mtp_pos, n_ids; i32 ids[n_ids]
 *   per layer (main, then MTP): its cache rows for positions < pos (MTP: < mtp_pos),
 *   naive: k rows then v rows; absorbed: ckv rows then kpe rows; float32.
 * Every count is checked against the session and the file size on load.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "base/err.h"
#include "base/file.h"
#include "model/model.h"

#define KV_MAGIC "DCKV"

static void fingerprint(const dc_session *s, int32_t fp[8]) {
    const dc_config *c = &s->m->cfg;
    int32_t v[8] = {c->hidden_size, c->num_hidden_layers, c->num_nextn_predict_layers, c->num_attention_heads,
                    c->kv_lora_rank, c->qk_rope_head_dim, c->vocab_size, s->attn};
    memcpy(fp, v, sizeof v);
}

/* the two arrays of layer l and floats per position of each */
static void layer_arrays(const dc_session *s, int l, float **a, size_t *na, float **b, size_t *nb) {
    const dc_config *c = &s->m->cfg;
    if (s->attn == DC_ATTN_NAIVE) {
        *a = s->kv[l].k, *na = (size_t)c->num_attention_heads * (c->qk_nope_head_dim + c->qk_rope_head_dim);
        *b = s->kv[l].v, *nb = (size_t)c->num_attention_heads * c->v_head_dim;
    } else {
        *a = s->kv[l].ckv, *na = c->kv_lora_rank;
        *b = s->kv[l].kpe, *nb = c->qk_rope_head_dim;
    }
}

int dc_session_save(const dc_session *s, const int *ids, int n, const char *path, dc_err *err) {
    if (n != s->pos) return err_set(err, DC_EARG, "session_save: %d ids for %d cached positions", n, s->pos);
    afile f;
    int rc = afile_open(&f, path, err);
    if (rc) return rc;
    uint32_t ver = 1;
    int32_t fp[8], hdr[3] = {s->pos, s->mtp_pos, n};
    fingerprint(s, fp);
    rc = afile_write(&f, KV_MAGIC, 4, err);
    if (!rc) rc = afile_write(&f, &ver, 4, err);
    if (!rc) rc = afile_write(&f, fp, sizeof fp, err);
    if (!rc) rc = afile_write(&f, hdr, sizeof hdr, err);
    if (!rc && n) rc = afile_write(&f, ids, sizeof(int32_t) * n, err);
    const dc_config *c = &s->m->cfg;
    int nl = c->num_hidden_layers + c->num_nextn_predict_layers;
    for (int l = 0; l < nl && !rc; l++) {
        float *a, *b;
        size_t na, nb, rows = l < c->num_hidden_layers ? (size_t)s->pos : (size_t)s->mtp_pos;
        layer_arrays(s, l, &a, &na, &b, &nb);
        rc = afile_write(&f, a, sizeof(float) * na * rows, err);
        if (!rc) rc = afile_write(&f, b, sizeof(float) * nb * rows, err);
    }
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
    const uint8_t *p = f.data, *end = f.data + f.size;
    int32_t fp[8], want[8], hdr[3];
    fingerprint(s, want);
    const size_t head = 8 + sizeof fp + sizeof hdr;
    if (f.size < head || memcmp(p, KV_MAGIC, 4) || *(const uint32_t *)(p + 4) != 1) {
        rc = err_set(err, DC_EFORMAT, "%s: not a deepc session file (or another version)", path);
        goto done;
    }
    memcpy(fp, p + 8, sizeof fp);
    memcpy(hdr, p + 8 + sizeof fp, sizeof hdr);
    p += head;
    if (memcmp(fp, want, sizeof fp)) {
        rc = err_set(err, DC_EARG, "%s: saved from another model or attention mode", path);
        goto done;
    }
    const dc_config *c = &s->m->cfg;
    int pos = hdr[0], mpos = hdr[1], nid = hdr[2];
    if (pos < 0 || mpos < 0 || mpos > pos || nid != pos || pos > s->max_ctx) {
        rc = err_set(err, DC_EFORMAT, "%s: %d positions (%d MTP, %d ids) do not fit a context of %d", path, pos,
                     mpos, nid, s->max_ctx);
        goto done;
    }
    int nl = c->num_hidden_layers + c->num_nextn_predict_layers;
    size_t need = sizeof(int32_t) * (size_t)nid;
    for (int l = 0; l < nl; l++) {
        float *a, *b;
        size_t na, nb;
        layer_arrays(s, l, &a, &na, &b, &nb);
        need += sizeof(float) * (na + nb) * (size_t)(l < c->num_hidden_layers ? pos : mpos);
    }
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
    for (int l = 0; l < nl; l++) {
        float *a, *b;
        size_t na, nb, rows = l < c->num_hidden_layers ? (size_t)pos : (size_t)mpos;
        layer_arrays(s, l, &a, &na, &b, &nb);
        memcpy(a, p, sizeof(float) * na * rows), p += sizeof(float) * na * rows;
        memcpy(b, p, sizeof(float) * nb * rows), p += sizeof(float) * nb * rows;
    }
    s->pos = pos;
    s->mtp_pos = mpos;
    s->hidden_T = 0;
    *ids = v;
    *n = nid;
done:
    mfile_close(&f);
    return rc;
}
