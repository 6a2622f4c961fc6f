/*
 * gguf_write.h — write a GGUF v3 file (layout: gguf.h): key/values and
 * tensor infos are collected first, then gw_begin writes the header and
 * gw_data streams each tensor's bytes in the order the tensors were added,
 * padded to the alignment (32). The file goes through afile: it appears
 * whole at gw_end or not at all.
 *
 * Key/value setters never fail on their own: an allocation failure is
 * remembered and reported by gw_begin.
 */
#ifndef DC_GGUF_WRITE_H
#define DC_GGUF_WRITE_H
#include <stddef.h>
#include <stdint.h>
#include "base/file.h"
#include "deepc.h"

typedef struct gw_tensor {
    char name[128];
    int n_dims;
    int64_t ne[4];     /* ggml order: ne[0] is a row */
    int type;          /* GG_* */
    uint64_t offset;   /* from the start of the data section */
    size_t nbytes;
} gw_tensor;

typedef struct gguf_writer {
    uint8_t *kv;       /* owned: the encoded key/values */
    size_t kv_n, kv_cap;
    uint64_t n_kv;
    gw_tensor *t;      /* owned */
    uint64_t n_t, cap_t;
    uint64_t data_size;
    int oom;
    afile a;
    int opened;
    uint64_t cur;      /* tensor being written */
    size_t done;       /* its bytes written so far */
} gguf_writer;

void gw_init(gguf_writer *w);
void gw_free(gguf_writer *w);
void gw_str(gguf_writer *w, const char *key, const char *val);
void gw_u32(gguf_writer *w, const char *key, uint32_t val);
void gw_i32(gguf_writer *w, const char *key, int32_t val);
void gw_f32(gguf_writer *w, const char *key, float val);
void gw_bool(gguf_writer *w, const char *key, int val);
/* gw_arr_str: n strings, string i is s[i] of len[i] bytes (len NULL: NUL-terminated). */
void gw_arr_str(gguf_writer *w, const char *key, const char *const *s, const size_t *len, uint64_t n);
void gw_arr_i32(gguf_writer *w, const char *key, const int32_t *v, uint64_t n);
/* gw_tensor_add: a tensor of type with n_dims dims ne (ggml order). DC_EARG
 * when ne[0] is not a whole number of blocks or the name is too long. */
int gw_tensor_add(gguf_writer *w, const char *name, int type, int n_dims, const int64_t *ne, dc_err *err);
int gw_begin(gguf_writer *w, const char *path, dc_err *err);
/* gw_data: the next bytes of tensor data (any split across calls). */
int gw_data(gguf_writer *w, const void *p, size_t n, dc_err *err);
int gw_end(gguf_writer *w, dc_err *err);
void gw_abort(gguf_writer *w);
#endif
