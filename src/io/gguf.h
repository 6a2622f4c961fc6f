/*
 * gguf.h — read the header and metadata of a GGUF file (llama.cpp's format),
 * every count and length checked against the bytes that are really there.
 *
 * File layout (little-endian, GGUF v2 and v3; v1 used 32-bit counts and is
 * refused):
 *   u32 magic "GGUF" | u32 version | u64 n_tensors | u64 n_kv
 *   n_kv times:  str key | u32 type | value
 *   n_tensors times: str name | u32 n_dims | u64 dims[n_dims] | u32 ggml type | u64 offset
 *   padding to general.alignment (default 32) | tensor data
 * where str is u64 length + that many bytes (no NUL), and a value is
 *   u8 i8 u16 i16 u32 i32 f32 bool(u8) str u64 i64 f64, or
 *   array: u32 element type | u64 count | count elements (no nested arrays).
 *
 * gguf_open stops after the key/value section and records where the tensor
 * infos begin (gguf.tensor_info_off); gguf_read_tensors carries on from there
 * (tensor infos, alignment padding, data), checking every name, shape, type,
 * offset and extent against the file. Keys, strings and array elements are borrowed from the mapping and
 * are not NUL-terminated; they live until gguf_close. Duplicate keys, unknown
 * types, nested arrays and any length that runs past the end of the file are
 * DC_EFORMAT with a message naming the file, the key and the numbers.
 */
#ifndef DC_GGUF_H
#define DC_GGUF_H
#include <stddef.h>
#include <stdint.h>
#include "base/file.h"
#include "deepc.h"

enum {
    GGUF_U8 = 0, GGUF_I8 = 1, GGUF_U16 = 2, GGUF_I16 = 3, GGUF_U32 = 4, GGUF_I32 = 5,
    GGUF_F32 = 6, GGUF_BOOL = 7, GGUF_STR = 8, GGUF_ARR = 9, GGUF_U64 = 10, GGUF_I64 = 11,
    GGUF_F64 = 12, GGUF_NTYPES
};
#define GGUF_DEFAULT_ALIGNMENT 32

typedef struct gguf_str {
    const char *s; /* borrowed from the mapping, not NUL-terminated */
    uint64_t n;
} gguf_str;

typedef struct gguf_kv {
    gguf_str key;
    int type;             /* GGUF_* */
    int arr_type;         /* element type when type == GGUF_ARR, else -1 */
    uint64_t n;           /* element count for arrays, 1 for scalars */
    const uint8_t *data;  /* borrowed: the scalar, or the first array element */
    uint64_t *str_off;    /* owned, string arrays only: offset of element i's length prefix */
} gguf_kv;

/* gguf_tensor: one tensor info. Dims are ggml's order: ne[0] is the
 * innermost (a row), so a torch (rows, cols) matrix is ne = {cols, rows}. */
#define GGUF_MAX_DIMS 4
typedef struct gguf_tensor {
    gguf_str name;            /* borrowed from the mapping */
    int n_dims;
    int64_t ne[GGUF_MAX_DIMS];/* unused dims are 1 */
    int type;                 /* GG_* (kernels/ggml_types.h) */
    uint64_t offset;          /* from the start of the data section */
    const uint8_t *data;      /* borrowed: inside the mapping */
    size_t nbytes;
} gguf_tensor;

typedef struct gguf {
    mfile f;                  /* owned mapping (empty when opened on memory) */
    const uint8_t *data;      /* borrowed: the whole file */
    size_t size;
    char name[256];           /* file name, for messages */
    uint32_t version;
    uint64_t n_tensors;
    uint64_t n_kv;
    gguf_kv *kv;              /* owned, (n_kv) */
    int64_t *khash;           /* owned: open addressing over kv by key, -1 empty */
    uint64_t khcap;
    uint32_t alignment;       /* general.alignment or 32 */
    uint64_t tensor_info_off; /* where the tensor infos begin */
    gguf_tensor *tensors;     /* owned, (n_tensors) after gguf_read_tensors */
    uint64_t data_off;        /* where the tensor data begins */
    int64_t *thash;           /* owned: open addressing over tensors by name, -1 empty */
    uint64_t thcap;
} gguf;

const char *gguf_type_name(int type);
/* gguf_type_size: bytes of one element of a fixed-size type, 0 for str/arr. */
int gguf_type_size(int type);

/* gguf_open: map PATH and parse its header and metadata. On failure g is
 * left closed (gguf_close is still safe). */
int gguf_open(gguf *g, const char *path, dc_err *err);
/* gguf_open_mem: the same over a caller-owned buffer that must outlive g. */
int gguf_open_mem(gguf *g, const void *data, size_t size, const char *name, dc_err *err);
void gguf_close(gguf *g);

/* gguf_read_tensors: parse the tensor infos after the metadata. Names must
 * be unique and non-empty, 1..4 dims, a known type whose block divides ne[0],
 * offsets aligned, and every tensor's bytes inside the file. */
int gguf_read_tensors(gguf *g, dc_err *err);
/* gguf_find_tensor: the tensor NAME (after gguf_read_tensors), NULL when absent. */
const gguf_tensor *gguf_find_tensor(const gguf *g, const char *name);
/* gguf_tensor_numel: the product of the dims. */
int64_t gguf_tensor_numel(const gguf_tensor *t);

/* gguf_find: the key/value of KEY, NULL when absent. */
const gguf_kv *gguf_find(const gguf *g, const char *key);
/* gguf_get_int: an integer (any int type or bool) that fits in int64. */
int gguf_get_int(const gguf *g, const char *key, int64_t *out, dc_err *err);
/* gguf_get_str: a string value (borrowed). */
int gguf_get_str(const gguf *g, const char *key, gguf_str *out, dc_err *err);
/* gguf_get_arr: an array of element type TYPE (-1: any); *out borrowed. */
int gguf_get_arr(const gguf *g, const char *key, int type, const gguf_kv **out, dc_err *err);

/* Scalars and array elements (index checked by the caller against kv->n). */
int64_t gguf_kv_int(const gguf_kv *kv, uint64_t i);   /* integer/bool types */
double gguf_kv_float(const gguf_kv *kv, uint64_t i);  /* any numeric type */
gguf_str gguf_kv_str(const gguf_kv *kv, uint64_t i);  /* string scalar (i = 0) or string array */
#endif
