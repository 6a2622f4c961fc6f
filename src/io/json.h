/*
 * json.h — JSON read as Python's json module reads it (cJSON underneath):
 * the last of duplicate keys wins, nothing may follow the value, and a NUL
 * character (raw or \u0000), which cJSON's C strings would cut at, is
 * refused. Errors name the place as where:line:column.
 */
#ifndef DC_JSON_H
#define DC_JSON_H
#include <cjson/cJSON.h>
#include <stddef.h>
#include "deepc.h"

/* JSON_MAX_BYTES: the largest JSON file read (DeepSeek-V3's tokenizer.json
 * is 7.8 MB and its shard index 9 MB). */
#define JSON_MAX_BYTES ((size_t)256 << 20)

/* json_parse: text[0, n) -> *out (caller frees with cJSON_Delete); not JSON
 * is DC_EFORMAT with a message naming where. json_parse_at: the same,
 * counting lines from first_line (a line of a JSONL file). */
int json_parse(const char *text, size_t n, const char *where, cJSON **out, dc_err *err);
int json_parse_at(const char *text, size_t n, const char *where, int first_line, cJSON **out, dc_err *err);
/* json_parse_ex: json_parse_at, and with refuse_dups a key given twice in
 * one object is DC_EFORMAT naming it (safetensors headers: a tensor twice). */
int json_parse_ex(const char *text, size_t n, const char *where, int first_line, int refuse_dups, cJSON **out,
                  dc_err *err);
/* json_read_file: a regular file of at most JSON_MAX_BYTES, parsed as
 * json_parse does; unreadable is DC_EIO. */
int json_read_file(const char *path, cJSON **out, dc_err *err);
#endif
