/* bench.h — what cmd_bench.c and bench_parallel.c share. */
#ifndef DC_CLI_BENCH_H
#define DC_CLI_BENCH_H
#include "deepc.h"

/* bench_parallel: aggregate decode tokens/s of each batch size B[0..nb) on m
 * (already loaded in its weight type), beside the bound for bandwidth bw
 * (GB/s) and, with peer (a llama.cpp build's bin directory) and a .gguf
 * model_path, llama-batched-bench on the same file. */
int bench_parallel(dc_model *m, const char *model_path, const char *peer, const int *B, int nb, int steps, int thr,
                   int attn, int kv, double bw, dc_err *err);
/* peer_llama_bench: llama.cpp's llama-bench in dir on model: prefill tokens/s
 * pp[i] for each prompt length pre[i], decode tokens/s *tg over gen tokens,
 * both after depth tokens in the cache (its -d), thr threads, reps
 * repetitions (their mean); 0 where it gave no figure. */
void peer_llama_bench(const char *dir, const char *model, const int *pre, int npre, int gen, int depth, int thr,
                      int reps, double *pp, double *tg);
/* peer_batched_bench: llama-batched-bench's S_TG (aggregate decode tokens/s)
 * for each batch size B[i] after a prompt of `prompt` tokens; 0 where absent. */
void peer_batched_bench(const char *dir, const char *model, const int *B, int nb, int prompt, int steps, int thr,
                        double *s_tg);
#endif
