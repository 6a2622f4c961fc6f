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
#include "infer/engine.h"

#define KV_MAGIC "DCKV"

static void fingerprint(const dc_engine *e, int32_t fp[8]) {
    const dc_config *c = dc_model_config(e->m);
    int32_t v[8] = {c->hidden_size, c->num_hidden_layers, c->num_nextn_predict_layers, c->num_attention_heads,
                    c->kv_lora_rank, c->qk_rope_head_dim, c->vocab_size, e->o.attn};
    memcpy(fp, v, sizeof v);
}

/* floats per position of the two parts of a cache row (model.h kv_view):
 * naive keys then values, absorbed latent then rope key */
static void row_parts(const dc_engine *e, size_t *na, size_t *nb) {
    const dc_config *c = dc_model_config(e->m);
    if (e->o.attn == DC_ATTN_NAIVE) *na = (size_t)c->num_attention_heads * (c->qk_nope_head_dim + c->qk_rope_head_dim);
    else *na = c->kv_lora_rank;
    *nb = (size_t)e->view.row - *na;
}

/* write (or read, into) one layer's rows: part a of positions 0..rows-1, then part b */
static int layer_io(const dc_engine *e, int seq, int l, size_t rows, afile *f, const uint8_t **p, dc_err *err) {
    size_t na, nb;
    row_parts(e, &na, &nb);
    for (int part = 0; part < 2; part++)
        for (size_t j = 0; j < rows; j++) {
            float *r = engine_row(e, seq, l, (int)j) + (part ? na : 0);
            size_t n = sizeof(float) * (part ? nb : na);
            if (f) {
                int rc = afile_write(f, r, n, err);
                if (rc) return rc;
            } else {
                memcpy(r, *p, n);
                *p += n;
            }
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
    uint32_t ver = 1;
    int32_t fp[8], hdr[3] = {pos, mpos, n};
    fingerprint(e, fp);
    rc = afile_write(&f, KV_MAGIC, 4, err);
    if (!rc) rc = afile_write(&f, &ver, 4, err);
    if (!rc) rc = afile_write(&f, fp, sizeof fp, err);
    if (!rc) rc = afile_write(&f, hdr, sizeof hdr, err);
    if (!rc && n) rc = afile_write(&f, ids, sizeof(int32_t) * n, err);
    const dc_config *c = dc_model_config(e->m);
    int nl = c->num_hidden_layers + c->num_nextn_predict_layers;
    for (int l = 0; l < nl && !rc; l++)
        rc = layer_io(e, seq, l, l < c->num_hidden_layers ? (size_t)pos : (size_t)mpos, &f, NULL, err);
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
    dc_engine *e = session_engine(s);
    int seq = session_seq(s);
    int32_t fp[8], want[8], hdr[3];
    fingerprint(e, want);
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
    const dc_config *c = dc_model_config(e->m);
    int pos = hdr[0], mpos = hdr[1], nid = hdr[2];
    if (pos < 0 || mpos < 0 || mpos > pos || nid != pos || pos > e->o.max_len) {
        rc = err_set(err, DC_EFORMAT, "%s: %d positions (%d MTP, %d ids) do not fit a context of %d", path, pos,
                     mpos, nid, e->o.max_len);
        goto done;
    }
    int nl = c->num_hidden_layers + c->num_nextn_predict_layers;
    size_t need = sizeof(int32_t) * (size_t)nid;
    for (int l = 0; l < nl; l++) need += sizeof(float) * e->view.row * (size_t)(l < c->num_hidden_layers ? pos : mpos);
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
    for (int l = 0; l < nl; l++) layer_io(e, seq, l, l < c->num_hidden_layers ? (size_t)pos : (size_t)mpos, NULL, &p, NULL);
    *ids = v;
    *n = nid;
done:
    mfile_close(&f);
    return rc;
}
