/*
 * json.c — see json.h. cJSON parses; this file makes what it accepts match
 * what Python's json module (and so Hugging Face) reads from the same bytes:
 *   - a key given twice in one object: the last value wins (cJSON's lookup
 *     finds the first), so the earlier members are deleted;
 *   - anything but whitespace after the value is an error ("Extra data");
 *   - a NUL character, raw or escaped as \u0000, is refused: cJSON keeps C
 *     strings, so it would cut the string there (a text, a shard's file
 *     name) where Python keeps the whole string;
 * and every error names the place as where:line:column.
 */
#include "io/json.h"
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "base/err.h"
#include "base/file.h"

/* line and column (1-based) of byte off */
static void line_col(const char *t, size_t off, int first_line, long *line, long *col) {
    *line = first_line, *col = 1;
    for (size_t i = 0; i < off; i++) {
        if (t[i] == '\n') ++*line, *col = 1;
        else ++*col;
    }
}

/* find_nul: the offset of a raw NUL byte or of a \u0000 escape inside a
 * string, or n when there is none (escapes outside strings are a syntax
 * error cJSON reports) */
static size_t find_nul(const char *t, size_t n) {
    int in = 0;
    for (size_t i = 0; i < n; i++) {
        char c = t[i];
        if (c == 0) return i;
        if (!in) {
            in = c == '"';
            continue;
        }
        if (c == '"') in = 0;
        else if (c == '\\' && i + 1 < n) {
            if (t[i + 1] == 'u' && i + 5 < n && memcmp(t + i + 2, "0000", 4) == 0) return i;
            i++; /* the escaped character */
        }
    }
    return n;
}

/* ---------------------------------------------------------------- last key wins */

static uint64_t key_hash(const char *s) {
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) h = (h ^ (uint8_t)*s) * 1099511628211ull;
    return h;
}

/* seen: has key been inserted into the set (cap a power of two)? inserts it if not */
static int seen(const char **set, size_t cap, const char *key) {
    for (size_t h = key_hash(key) & (cap - 1);; h = (h + 1) & (cap - 1)) {
        if (!set[h]) {
            set[h] = key;
            return 0;
        }
        if (strcmp(set[h], key) == 0) return 1;
    }
}

/* dedup_object: walking from the last member back, drop a member whose key
 * a later member has (or, with refuse, return 1 and the key in *dup) */
static int dedup_object(cJSON *obj, int refuse, const char **dup) {
    size_t k = 0, cap = 16;
    for (cJSON *c = obj->child; c; c = c->next) k++;
    if (k < 2) return 0;
    while (cap < 2 * k) cap <<= 1;
    const char **set = calloc(cap, sizeof *set);
    if (!set) return -1;
    cJSON *last = obj->child;
    while (last->next) last = last->next;
    for (cJSON *c = last; c;) {
        cJSON *prev = c == obj->child ? NULL : c->prev;
        if (c->string && seen(set, cap, c->string)) {
            if (refuse) {
                *dup = c->string;
                free(set);
                return 1;
            }
            cJSON_Delete(cJSON_DetachItemViaPointer(obj, c));
        }
        c = prev;
    }
    free(set);
    return 0;
}

/* dedup: every object in j; -1 out of memory, 1 a duplicate refused */
static int dedup(cJSON *j, int refuse, const char **dup) {
    for (cJSON *c = j->child; c; c = c->next) {
        int rc = cJSON_IsObject(c) || cJSON_IsArray(c) ? dedup(c, refuse, dup) : 0;
        if (rc) return rc;
    }
    return cJSON_IsObject(j) ? dedup_object(j, refuse, dup) : 0;
}

int json_parse_ex(const char *text, size_t n, const char *where, int first_line, int refuse_dups, cJSON **out,
                  dc_err *err) {
    *out = NULL;
    long line, col;
    size_t z = find_nul(text, n);
    if (z < n) {
        line_col(text, z, first_line, &line, &col);
        return err_set(err, DC_EFORMAT, "%s:%ld:%ld: a NUL character (%s) in the JSON: not accepted", where, line, col,
                       text[z] ? "\\u0000" : "a zero byte");
    }
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(text, n, &end, 0);
    if (!root) {
        size_t off = end && end >= text && end <= text + n ? (size_t)(end - text) : 0;
        line_col(text, off, first_line, &line, &col);
        return err_set(err, DC_EFORMAT, "%s:%ld:%ld: not valid JSON", where, line, col);
    }
    size_t off = (size_t)(end - text);
    while (off < n && strchr(" \t\r\n", text[off])) off++;
    if (off < n) {
        cJSON_Delete(root);
        line_col(text, off, first_line, &line, &col);
        return err_set(err, DC_EFORMAT, "%s:%ld:%ld: data after the end of the JSON value", where, line, col);
    }
    const char *dup = NULL;
    int d = dedup(root, refuse_dups, &dup);
    if (d) {
        int rc = d < 0 ? err_set(err, DC_ENOMEM, "%s: out of memory", where)
                       : err_set(err, DC_EFORMAT, "%s: \"%.100s\" is given twice", where, dup);
        cJSON_Delete(root);
        return rc;
    }
    *out = root;
    return DC_OK;
}

int json_parse_at(const char *text, size_t n, const char *where, int first_line, cJSON **out, dc_err *err) {
    return json_parse_ex(text, n, where, first_line, 0, out, err);
}

int json_parse(const char *text, size_t n, const char *where, cJSON **out, dc_err *err) {
    return json_parse_ex(text, n, where, 1, 0, out, err);
}

int json_read_file(const char *path, cJSON **out, dc_err *err) {
    *out = NULL;
    char *text;
    size_t n;
    int rc = file_read_max(path, JSON_MAX_BYTES, &text, &n, err);
    if (rc) return rc;
    rc = json_parse(text, n, path, out, err);
    free(text);
    return rc;
}
