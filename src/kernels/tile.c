/* tile.c — see tile.h: the plain C oracle and the choice by CPU. */
#include "kernels/tile.h"
#include <math.h>
#include "kernels/cpu.h"

void tile_ref(int mt, int nt, int kc, const float *a, size_t sai, size_t sak, const float *b, size_t sbk, float *c,
              size_t ldc, float alpha, int acc) {
    float s[TILE_MR][TILE_NR] = {{0}};
    for (int k = 0; k < kc; k++)
        for (int i = 0; i < mt; i++) {
            const float ai = a[(size_t)i * sai + (size_t)k * sak];
            for (int j = 0; j < nt; j++) s[i][j] = fmaf(ai, b[(size_t)k * sbk + j], s[i][j]);
        }
    for (int i = 0; i < mt; i++)
        for (int j = 0; j < nt; j++) {
            float *o = c + (size_t)i * ldc + j, v = alpha * s[i][j];
            *o = acc ? *o + v : v;
        }
}

tile_fn tile_get(void) {
    const int isa = kern_get()->isa;
    return isa >= ISA_AVX512 ? tile_avx512 : isa >= ISA_AVX2 ? tile_avx2 : tile_ref;
}

void tile_pack_ref(float *dst, int w_all, int off, const float *src, size_t ld, int T, int w) {
    const int np = (T + TILE_NR - 1) / TILE_NR;
    for (int j = 0; j < np * TILE_NR; j++) {
        float *o = dst + (size_t)(j / TILE_NR) * w_all * TILE_NR + (size_t)off * TILE_NR + j % TILE_NR;
        for (int k = 0; k < w; k++) o[(size_t)k * TILE_NR] = j < T ? src[(size_t)j * ld + k] : 0.0f;
    }
}

tile_pack_fn tile_pack_get(void) { return kern_get()->isa >= ISA_AVX2 ? tile_pack_avx2 : tile_pack_ref; }
