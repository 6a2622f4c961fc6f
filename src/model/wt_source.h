/*
 * wt_source.h — a model's weights read one tensor at a time as float32, from
 * a checkpoint directory (safetensors: F32 / BF16 / F16 / FP8 with its
 * weight_scale_inv) or a deepseek2 GGUF (any readable type, attn_k_b /
 * attn_v_b folded back into kv_b). Writers that stream (deepc convert,
 * deepc quantize) hold one tensor in memory instead of the whole model:
 * DeepSeek-V2-Lite is 63 GB as float32 and V3 2.7 TB. The pages of the
 * source's mapping that a read touched are released after it, so resident
 * memory stays at one tensor too.
 */
#ifndef DC_WT_SOURCE_H
#define DC_WT_SOURCE_H
#include "deepc.h"
#include "io/gguf.h"
#include "io/safetensors.h"
#include "model/weights.h"

typedef struct wt_source {
    const dc_config *cfg;     /* borrowed */
    const char *path;         /* borrowed */
    int is_gguf;
    gguf g;
    st_set s;
} wt_source;

/* wt_source_open: path (a directory or a .gguf) for cfg (dc_config_load of
 * the same path). On failure src is left closed. */
int wt_source_open(wt_source *src, const dc_config *cfg, const char *path, dc_err *err);
/* wt_source_plan: every entry of the table e (n) found with the shape cfg
 * gives it, before any work: a mismatch is reported first, not after
 * gigabytes are written. The aliases the source does not hold (MTP copies of
 * the embedding / head) are dropped from e; *n is updated. */
int wt_source_plan(wt_source *src, wt_entry *e, int *n, dc_err *err);
/* wt_source_read: entry e's values into dst (wt_numel(e) floats). */
int wt_source_read(wt_source *src, const wt_entry *e, float *dst, dc_err *err);
void wt_source_close(wt_source *src);

#endif
