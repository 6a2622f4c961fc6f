/*
 * checkpoint.h — training checkpoints: RUN/step-NNNNNNN/ holds
 *   config.json, model.safetensors, tokenizer.json   (the Hugging Face layout:
 *                                                     every deepc command loads it)
 *   optim.safetensors                                 (AdamW m and v, "m.<name>", "v.<name>")
 *   trainer.json                                      (step, and the run's own state:
 *                                                     settings, data position, rngs; run.h)
 *   fp8/                                              (FP8 runs only: the model in DeepSeek-V3's
 *                                                     official FP8 layout, ckpt_fp8.c; written,
 *                                                     never read back: --resume reads the f32
 *                                                     master weights above)
 * It is written as RUN/.tmp-step-NNNNNNN, every file fsynced, then renamed
 * into place, and RUN/latest (one line: the directory's name) is replaced
 * atomically after it; only the newest `keep` are kept. A run killed at any
 * moment leaves either the previous checkpoint or the new one as latest,
 * never a partial one.
 */
#ifndef DC_CHECKPOINT_H
#define DC_CHECKPOINT_H
#include <cjson/cJSON.h>
#include "train/trainer.h"

/* ckpt_save: state (may be NULL) holds trainer.json's keys besides "step"
 * (copied); tokenizer may be NULL (no tokenizer.json copied). */
int ckpt_save(const trainer *t, const cJSON *state, const char *run, const char *tokenizer, int keep, dc_err *err);
/* ckpt_save_mv: ckpt_save with the whole AdamW moments m, v (n floats each,
 * the layout of the arena) given: a ZeRO-1 run gathers its shards first. */
int ckpt_save_mv(const trainer *t, const float *m, const float *v, const cJSON *state, const char *run,
                 const char *tokenizer, int keep, dc_err *err);
/* ckpt_write_fp8: dir/fp8/ (see above and ckpt_fp8.c) from the trainer's
 * parameters; tokenizer may be NULL. ckpt_fp8_tensor: 1 when a table entry
 * is stored there as FP8 blocks. */
int ckpt_write_fp8(const trainer *t, const char *dir, const char *tokenizer, dc_err *err);
int ckpt_fp8_tensor(const wt_entry *e);
/* ckpt_latest: the newest complete checkpoint of run into dir; DC_ENOTFOUND if none. */
int ckpt_latest(const char *run, char *dir, size_t cap, dc_err *err);
/* ckpt_state: dir's trainer.json, parsed, its step checked (a whole number
 * >= 0); *state is owned by the caller (cJSON_Delete). */
int ckpt_state(const char *dir, cJSON **state, dc_err *err);
/* ckpt_load: parameters, moments and step from dir into a trainer
 * initialised with the same config (of a ZeRO-1 trainer, the moments of its
 * shard); *state (may be NULL) as ckpt_state. */
int ckpt_load(trainer *t, const char *dir, cJSON **state, dc_err *err);
#endif
