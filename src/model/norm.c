/* norm.c — see norm.h. */
#include "model/norm.h"
#include <math.h>
#include <stddef.h>

void rmsnorm_forward(float *out, const float *x, const float *w, int T, int n, float eps) {
    for (int t = 0; t < T; t++) {
        const float *xt = x + (size_t)t * n;
        float *ot = out + (size_t)t * n;
        double ss = 0;
        for (int i = 0; i < n; i++) ss += (double)xt[i] * xt[i];
        float r = (float)(1.0 / sqrt(ss / n + eps));
        for (int i = 0; i < n; i++) ot[i] = xt[i] * r * w[i];
    }
}
