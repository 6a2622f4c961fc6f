/*
 * norm.h — RMSNorm (Zhang & Sennrich 2019), as DeepSeek uses it everywhere:
 * y = x / sqrt(mean(x^2) + eps) * w.
 */
#ifndef DC_NORM_H
#define DC_NORM_H
/* rmsnorm_forward: out (T, n) from x (T, n) and w (n); out may equal x. */
void rmsnorm_forward(float *out, const float *x, const float *w, int T, int n, float eps);
#endif
