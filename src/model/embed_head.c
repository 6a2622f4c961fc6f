/* embed_head.c — see embed_head.h. */
#include "model/embed_head.h"
#include <string.h>
#include "model/norm.h"

void embed_rows(real *x, const real *table, const int *ids, int n, int C) {
    for (int i = 0; i < n; i++) memcpy(x + (size_t)i * C, table + (size_t)ids[i] * C, sizeof(real) * C);
}

void mtp_input(real *x, real *cat, real *e_rstd, real *h_rstd, const real *e, const real *h, const real *enorm,
               const real *hnorm, const mat *eh_proj, int n, int C, float eps) {
    for (int i = 0; i < n; i++) {
        rmsnorm_train_fwd(cat + (size_t)i * 2 * C, e_rstd ? e_rstd + i : NULL, e + (size_t)i * C, enorm, 1, C, eps);
        rmsnorm_train_fwd(cat + (size_t)i * 2 * C + C, h_rstd ? h_rstd + i : NULL, h + (size_t)i * C, hnorm, 1, C, eps);
    }
    matmul(x, cat, eh_proj, n); /* (n, C) */
}

void head_logits(float *logits, const float *h, const mat *head, int n) { matmul(logits, h, head, n); }
