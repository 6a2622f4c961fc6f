/* bench.h — what cmd_bench.c and bench_parallel.c share. */
#ifndef DC_CLI_BENCH_H
#define DC_CLI_BENCH_H
#include "deepc.h"

/* bench_parallel: aggregate decode tokens/s of each batch size B[0..nb) on m
 * (already loaded in its weight type), beside the bound for bandwidth bw
 * (GB/s) and, with peer (a llama.cpp build's bin directory) and a .gguf
 * model_path, llama-batched-bench on the same file. */
int bench_parallel(dc_model *m, const char *model_path, const char *peer, const int *B, int nb, int steps, int thr,
                   int attn, double bw, dc_err *err);
#endif
