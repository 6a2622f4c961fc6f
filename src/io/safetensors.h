/*
 * safetensors.h — read (mmap'd, one file or sharded) and write the
 * safetensors format of Hugging Face checkpoints.
 *
 * File layout: u64 little-endian N; N bytes of JSON
 *   {"name": {"dtype": "F32", "shape": [r, c], "data_offsets": [b, e]}, ...,
 *    "__metadata__": {...}}
 * then the data; offsets are relative to the data start (8 + N).
 * A sharded checkpoint has model.safetensors.index.json:
 *   {"metadata": {...}, "weight_map": {"name": "model-00001-of-00002.safetensors"}}
 *
 * Every offset, length, dtype and shape is checked against the file before a
 * tensor is handed out: st_open_* fails with a message naming the file (and
 * tensor) instead of ever pointing outside the map.
 */
#ifndef DC_SAFETENSORS_H
#define DC_SAFETENSORS_H
#include <stddef.h>
#include <stdint.h>
#include "base/file.h"
#include "deepc.h"

enum {
    ST_BOOL, ST_U8, ST_I8, ST_I16, ST_U16, ST_F16, ST_BF16, ST_I32, ST_U32, ST_F32,
    ST_F64, ST_I64, ST_U64, ST_F8_E4M3, ST_F8_E5M2, ST_NDTYPE
};
#define ST_MAX_DIMS 8

const char *st_dtype_name(int dtype);
int st_dtype_size(int dtype);
/* st_dtype_parse: "BF16" -> ST_BF16, -1 when unknown. */
int st_dtype_parse(const char *s);

typedef struct st_tensor {
    const char *name;        /* owned by the st_set */
    int dtype;               /* ST_* */
    int ndim;
    int64_t shape[ST_MAX_DIMS];
    const uint8_t *data;     /* borrowed: inside the file's mapping */
    size_t nbytes;
    int file;                /* index into st_set.paths */
} st_tensor;

typedef struct st_set {
    mfile *files;
    char **paths;
    int nfiles;
    st_tensor *tensors;
    int n, cap;
    int *hash;               /* open addressing over tensors, -1 empty */
    int hcap;
} st_set;

/* st_open_dir: DIR/model.safetensors.index.json if present, else
 * DIR/model.safetensors. On failure s is left closed (st_close on it is
 * still safe). */
int st_open_dir(st_set *s, const char *dir, dc_err *err);
/* st_open_file: add one .safetensors file's tensors to the set (s zeroed
 * before the first call). A name already present is an error. */
int st_open_file(st_set *s, const char *path, dc_err *err);
void st_close(st_set *s);
const st_tensor *st_find(const st_set *s, const char *name);
int64_t st_numel(const st_tensor *t);

/* Writing: st_write_begin writes the header for n tensors, laid out in the
 * order given; then exactly their bytes follow through st_write_data, in that
 * order; st_write_end checks the count and commits the file atomically. */
typedef struct st_entry {
    char name[192];
    int dtype;
    int ndim;
    int64_t shape[ST_MAX_DIMS];
} st_entry;

typedef struct st_writer {
    afile a;
    size_t expect, written;
} st_writer;

size_t st_entry_bytes(const st_entry *e);
int st_write_begin(st_writer *w, const char *path, const st_entry *e, int n, dc_err *err);
int st_write_data(st_writer *w, const void *data, size_t nbytes, dc_err *err);
int st_write_end(st_writer *w, dc_err *err);
void st_write_abort(st_writer *w);
#endif
