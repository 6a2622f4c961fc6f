/*
 * embed_head.h — the pieces around the decoder blocks that inference
 * (model.c, the engine) and training (train/trainer.c) share, so the
 * probabilities GRPO's ratio compares come from one implementation:
 * the token embedding, the MTP module's input (V3 report §2.2) and the head.
 */
#ifndef DC_EMBED_HEAD_H
#define DC_EMBED_HEAD_H
#include "kernels/matmul.h"
#include "kernels/linear.h"

/* embed_rows: x (n, C) = rows ids[0..n) of table (V, C), stored as ggml
 * type gtype (GG_F32 for the trainer's float32 parameters; a GGUF's
 * embedding stays as stored, q4_0 / q8_0 / q4_K / q6_K / f16 / bf16 / ...,
 * and only the rows a batch needs are dequantised). table is borrowed. */
void embed_rows(real *x, const void *table, int gtype, const int *ids, int n, int C);
/* embed_row_f32: row r of a (V, C) table of ggml type gtype into dst (C):
 * the one place the embedding's storage is read (kernels' row dequantiser). */
void embed_row_f32(float *dst, const void *table, int gtype, int r, int C);
/* mtp_input: the MTP module's input to its block, x (n, C) = eh_proj(cat)
 * with cat (n, 2C) = [enorm(e_i) ; hnorm(h_i)] per row: e (n, C) the next
 * tokens' embeddings, h (n, C) the previous depth's states. e_rstd, h_rstd
 * (n): each norm's 1/rms saved for the backward, or NULL (inference); cat
 * is kept for eh_proj's backward. */
void mtp_input(real *x, real *cat, real *e_rstd, real *h_rstd, const real *e, const real *h, const real *enorm,
               const real *hnorm, const mat *eh_proj, int n, int C, float eps);
/* head_logits: logits (n, V) = h (n, C) @ head^T, in head's stored type. */
void head_logits(float *logits, const float *h, const mat *head, int n);
#endif
