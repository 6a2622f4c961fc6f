/*
 * grad_ref.h — a trainer's gradients against a PyTorch reference's
 * grads.safetensors (tests/ref/ writes one per case), for the tests that
 * replay a reference step (test_train.c, test_loss.c).
 *
 * grad_ref_worst: over the table's tensors (aliases and biases skipped),
 * the worst max|g - ref| / max(max|ref|, floor), its tensor's name and the
 * number compared; a tensor the file lacks fails a CHECK naming it. The
 * floor keeps tensors the objective hardly reaches (zero on both sides) from
 * dividing by nothing. Returns -1 (a failed CHECK) when the file cannot be read.
 */
#ifndef DC_TEST_GRAD_REF_H
#define DC_TEST_GRAD_REF_H
#include <math.h>
#include "harness.h"
#include "io/safetensors.h"
#include "train/trainer.h"

static inline double grad_ref_worst(const trainer *t, const char *path, double floor, const char **worst_name,
                                    int *compared) {
    st_set gs = {0};
    dc_err err = {0};
    *worst_name = "", *compared = 0;
    CHECK(st_open_file(&gs, path, &err) == 0, "%s", err.msg);
    if (err.code) return -1;
    double worst = 0;
    for (int i = 0; i < t->ntab; i++) {
        const wt_entry *e = &t->tab[i];
        if (e->alias || e->kind == WT_BIAS) continue;
        const st_tensor *ref = st_find(&gs, e->name);
        CHECK(ref != NULL, "%s: no reference gradient for %s", path, e->name);
        if (!ref) continue;
        const float *r = (const float *)ref->data, *g = t->arena + t->n + (*e->dst - t->arena);
        double mx = 0, md = 0;
        for (size_t k = 0; k < wt_numel(e); k++) mx = fmax(mx, fabs(r[k])), md = fmax(md, fabs(g[k] - r[k]));
        double rel = md / fmax(mx, floor);
        if (rel > worst) worst = rel, *worst_name = e->name;
        (*compared)++;
    }
    st_close(&gs);
    return worst;
}
#endif
