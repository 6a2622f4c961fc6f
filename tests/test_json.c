/*
 * test_json.c — src/io/json.c: JSON read as Python's json module reads the
 * same bytes (issue 14, defect 10), through the readers that use it:
 * config.json (the last of duplicate keys wins, nothing may follow the
 * value), the shard index (a \u0000 in a file name was cut, so a name
 * passed the check on what came before it), JSONL for `prepare` (a \u0000
 * cut the text), safetensors headers (a tensor named twice stays an error).
 * Errors give file:line:column.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "base/file.h"
#include "harness.h"
#include "io/json.h"
#include "io/safetensors.h"
#include "model/config.h"
#include "train/data.h"

static char *tmp(const char *name) {
    static char b[8][700];
    static int k;
    char *p = b[k++ % 8];
    snprintf(p, 700, "%s/%s", harness_tmpdir(), name);
    return p;
}

static int put(const char *path, const char *text) {
    dc_err e;
    return file_write_atomic(path, text, strlen(text), &e);
}

static void parse_rules(void) {
    cJSON *j = NULL;
    dc_err e = {0};
    const char *dup = "{\"a\": 1, \"b\": {\"x\": 1, \"x\": 2}, \"a\": 3}";
    CHECK(json_parse(dup, strlen(dup), "t", &j, &e) == 0, "dup: %s", e.msg);
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(j, "a"), *b = cJSON_GetObjectItemCaseSensitive(j, "b");
    CHECK(cJSON_IsNumber(a) && a->valuedouble == 3, "the last \"a\" wins");
    CHECK(cJSON_GetArraySize(j) == 2 && cJSON_GetArraySize(b) == 1, "one member per key");
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(b, "x");
    CHECK(cJSON_IsNumber(x) && x->valuedouble == 2, "nested: the last \"x\" wins");
    cJSON_Delete(j), j = NULL;
    CHECK(json_parse_ex(dup, strlen(dup), "t", 1, 1, &j, &e) == DC_EFORMAT && strstr(e.msg, "\"x\" is given twice"),
          "refused duplicates: %s", e.msg);
    const char *bad[] = {"{\"a\": 1} x", "{\"a\": 1}{}", "[1,2]\n]", "{\"a\": \"b\\u0000c\"}", "{\"k\\u0000\": 1}",
                         "{\"a\": \"x\"}\n\n  \"y\""};
    const char *where[] = {"t:1:10", "t:1:9", "t:2:1", "t:1:9", "t:1:4", "t:3:3"};
    for (int i = 0; i < 6; i++) {
        e.msg[0] = 0;
        int rc = json_parse(bad[i], strlen(bad[i]), "t", &j, &e);
        CHECK(rc == DC_EFORMAT && !j && strstr(e.msg, where[i]), "\"%s\": rc %d, %s (want %s)", bad[i], rc, e.msg, where[i]);
    }
    /* a raw NUL byte inside the text */
    const char raw[] = "{\"a\": \"b\0c\"}";
    CHECK(json_parse(raw, sizeof raw - 1, "t", &j, &e) == DC_EFORMAT && strstr(e.msg, "zero byte"), "raw NUL: %s", e.msg);
    /* what is fine stays fine: escapes that are not NUL, a backslash before u, trailing whitespace */
    const char *ok = "{\"a\": \"\\\\u0000 \\u0041\", \"b\": [1, {\"c\": null}]}\n \t\r\n";
    CHECK(json_parse(ok, strlen(ok), "t", &j, &e) == 0, "ok: %s", e.msg);
    a = cJSON_GetObjectItemCaseSensitive(j, "a");
    CHECK(cJSON_IsString(a) && strcmp(a->valuestring, "\\u0000 A") == 0, "escapes: %s", a ? a->valuestring : "?");
    cJSON_Delete(j);
}

static void config_json(void) {
    dc_config c;
    dc_config_preset("tiny", &c, NULL);
    char *js = config_to_json(&c);
    /* the same key again at the end: Python and HF take the last value */
    size_t n = strlen(js);
    char *two = malloc(n + 64);
    memcpy(two, js, n);
    while (n && two[n - 1] != '}') n--;
    snprintf(two + n - 1, 64, ", \"hidden_size\": 128}");
    const char *dir = tmp("cfg"), *file = tmp("cfg/config.json");
    mkdir(dir, 0755);
    dc_config got;
    dc_err e = {0};
    CHECK(put(file, two) == 0 && dc_config_load(dir, &got, &e) == 0, "dup config: %s", e.msg);
    CHECK(got.hidden_size == 128, "hidden_size %d, the last value is 128", got.hidden_size);
    /* trailing garbage after the object */
    snprintf(two + n - 1, 64, "}\n// a comment");
    CHECK(put(file, two) == 0, "write");
    int rc = dc_config_load(dir, &got, &e);
    CHECK(rc == DC_EFORMAT && strstr(e.msg, "config.json:") && strstr(e.msg, "after the end"), "garbage: rc %d %s", rc,
          e.msg);
    free(two);
    free(js);
}

/* a shard name cut at \u0000 passed the "plain file name" check on its prefix */
static void shard_index(void) {
    const char *dir = tmp("idx");
    mkdir(dir, 0755);
    dc_err e = {0};
    st_entry en = {"w", ST_F32, 1, {2}};
    st_writer w;
    float v[2] = {1, 2};
    CHECK(st_write_begin(&w, tmp("idx/model-1.safetensors"), &en, 1, &e) == 0 && st_write_data(&w, v, 8, &e) == 0 &&
              st_write_end(&w, &e) == 0,
          "shard");
    CHECK(put(tmp("idx/model.safetensors.index.json"),
              "{\"weight_map\": {\"w\": \"model-1.safetensors\\u0000/../../../etc/passwd\"}}") == 0,
          "index");
    st_set s;
    int rc = st_open_dir(&s, dir, &e);
    CHECK(rc == DC_EFORMAT && strstr(e.msg, "model.safetensors.index.json:1:") && strstr(e.msg, "NUL"), "rc %d %s", rc,
          e.msg);
    if (!rc) st_close(&s);
    CHECK(put(tmp("idx/model.safetensors.index.json"), "{\"weight_map\": {\"w\": \"model-1.safetensors\"}}") == 0, "index");
    CHECK(st_open_dir(&s, dir, &e) == 0, "the clean index: %s", e.msg);
    st_close(&s);
    /* a shard that is not there after one that is (make fuzz found the first one leaked;
     * make asan checks it stays fixed) */
    CHECK(put(tmp("idx/model.safetensors.index.json"),
              "{\"weight_map\": {\"w\": \"model-1.safetensors\", \"v\": \"model-2.safetensors\"}}") == 0, "index");
    rc = st_open_dir(&s, dir, &e);
    CHECK(rc == DC_EIO && strstr(e.msg, "model-2.safetensors") && s.nfiles == 0, "missing shard: rc %d %s", rc, e.msg);
    st_close(&s);
}

/* safetensors header naming a tensor twice: an error, as before */
static void safetensors_dup(void) {
    const char *f = tmp("dup.safetensors");
    const char *h = "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                    "\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}";
    FILE *fp = fopen(f, "wb");
    uint64_t n = strlen(h);
    fwrite(&n, 8, 1, fp), fwrite(h, 1, n, fp), fwrite("\0\0\0\0\0\0\0\0", 1, 8, fp);
    fclose(fp);
    st_set s = {0};
    dc_err e = {0};
    int rc = st_open_file(&s, f, &e);
    CHECK(rc == DC_EFORMAT && strstr(e.msg, "\"w\" is given twice"), "rc %d %s", rc, e.msg);
    st_close(&s);
}

/* prepare's JSONL: \u0000 refused with file:line, the last "text" wins, trailing data refused */
static void jsonl(void) {
    char corpus[700], tok[700], a[700], b[700], da[700], db[700], dc[700];
    snprintf(corpus, sizeof corpus, "%s", tmp("c.txt"));
    snprintf(tok, sizeof tok, "%s", tmp("tok.json"));
    snprintf(a, sizeof a, "%s", tmp("a.jsonl"));
    snprintf(b, sizeof b, "%s", tmp("b.jsonl"));
    snprintf(da, sizeof da, "%s", tmp("da"));
    snprintf(db, sizeof db, "%s", tmp("db"));
    snprintf(dc, sizeof dc, "%s", tmp("dc"));
    char big[4096] = "";
    for (int i = 0; i < 60; i++) strcat(big, "the quick brown fox jumps over the lazy dog\n");
    CHECK(put(corpus, big) == 0, "corpus");
    const char *files[] = {corpus};
    dc_bpe_train_opts bo = {300, NULL, 0, 2, NULL, NULL, NULL};
    dc_err e = {0};
    CHECK(dc_bpe_train(files, 1, &bo, tok, &e) == 0, "tokenizer: %s", e.msg);
    CHECK(put(a, "{\"text\": \"the fox\"}\n{\"text\": \"ignored\", \"text\": \"the dog\"}\n") == 0, "a");
    CHECK(put(b, "{\"text\": \"the fox\"}\n{\"text\": \"the dog\"}\n") == 0, "b");
    const char *fa[] = {a}, *fb[] = {b};
    prepare_opts o = {tok, fa, 1, da, NULL, 0, 1};
    size_t na = 0, nb = 0;
    CHECK(data_prepare(&o, &na, NULL, &e) == 0, "prepare a: %s", e.msg);
    o.files = fb, o.out = db;
    CHECK(data_prepare(&o, &nb, NULL, &e) == 0, "prepare b: %s", e.msg);
    CHECK(na == nb && harness_sh("cmp -s %s/train-00000.bin %s/train-00000.bin", da, db) == 0,
          "duplicate \"text\": not the last value (%zu vs %zu tokens)", na, nb);
    const char *bad[] = {"{\"text\": \"ok\"}\n{\"text\": \"cut here\\u0000 and lost\"}\n", "{\"text\": \"ok\"} trailing\n"};
    const char *want[] = {":2:", ":1:"};
    for (int i = 0; i < 2; i++) {
        CHECK(put(a, bad[i]) == 0, "write");
        o.files = fa, o.out = dc;
        int rc = data_prepare(&o, &na, NULL, &e);
        CHECK(rc == DC_EFORMAT && strstr(e.msg, "a.jsonl") && strstr(e.msg, want[i]), "bad JSONL %d: rc %d %s", i, rc,
              e.msg);
    }
}

int main(void) {
    RUN(parse_rules);
    RUN(config_json);
    RUN(shard_index);
    RUN(safetensors_dup);
    RUN(jsonl);
    return harness_done();
}
