/*
 * wt_source.c — weights read a tensor at a time (wt_source.h): the checkpoint
 * readers of weights.c and load_gguf.c, one entry per call.
 */
#include "model/wt_source.h"
#include <string.h>
#include "base/err.h"
#include "model/gguf_model.h"

int wt_source_open(wt_source *src, const dc_config *cfg, const char *path, dc_err *err) {
    memset(src, 0, sizeof *src);
    src->cfg = cfg, src->path = path, src->is_gguf = path_is_gguf(path);
    if (!src->is_gguf) return st_open_dir(&src->s, path, err);
    int rc = gguf_open(&src->g, path, err); /* closed again on failure */
    if (!rc && (rc = gguf_read_tensors(&src->g, err))) gguf_close(&src->g);
    if (rc) memset(&src->g, 0, sizeof src->g), src->is_gguf = 0;
    return rc;
}

static int read_entry(wt_source *src, const wt_entry *e, float *dst, int *present, dc_err *err) {
    if (src->is_gguf) return gguf_read_entry(src->cfg, &src->g, e, dst, present, err);
    return weights_read_entry(src->cfg, &src->s, src->path, e, dst, present, err);
}

int wt_source_plan(wt_source *src, wt_entry *e, int *n, dc_err *err) {
    int k = 0;
    for (int i = 0; i < *n; i++) {
        int present = 0, rc = read_entry(src, &e[i], NULL, &present, err);
        if (rc) return rc;
        if (present) e[k++] = e[i];
    }
    *n = k;
    return DC_OK;
}

int wt_source_read(wt_source *src, const wt_entry *e, float *dst, dc_err *err) {
    int present = 0, rc = read_entry(src, e, dst, &present, err);
    if (!rc && !present) rc = err_set(err, DC_ENOTFOUND, "%s: tensor %s is missing", src->path, e->name);
    return rc;
}

void wt_source_close(wt_source *src) {
    if (src->is_gguf) gguf_close(&src->g);
    else st_close(&src->s);
    memset(src, 0, sizeof *src);
}
