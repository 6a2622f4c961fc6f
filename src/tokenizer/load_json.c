/*
 * load_json.c — a Hugging Face tokenizer.json (model type BPE, byte-level)
 * into a dc_tokenizer; and BOS/EOS from a tokenizer_config.json.
 *
 * Read: model.vocab (byte-level token -> id), model.merges (as "a b" strings
 * or [a, b] pairs, in rank order), added_tokens (id, content, special),
 * pre_tokenizer (Sequence of Split{Regex|String, Isolated} and ByteLevel;
 * ByteLevel with use_regex adds GPT-2's regex), normalizer (must be empty),
 * decoder (ByteLevel). Anything else a file could say that would change the
 * ids (a normalizer, add_prefix_space, other Split behaviours, byte
 * fallback, subword prefixes) is refused with DC_EFORMAT rather than
 * silently encoded differently.
 */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "base/err.h"
#include "base/file.h"
#include "io/json.h"
#include "tokenizer/bytelevel.h"
#include "tokenizer/tokenizer.h"

static const char *jstr(const cJSON *o, const char *key) {
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(j) ? j->valuestring : NULL;
}

static int jbool(const cJSON *o, const char *key, int dflt) {
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsBool(j) ? cJSON_IsTrue(j) : dflt;
}

/* jid: a JSON number that is a token id in [0, 2^30). */
static int jid(const cJSON *j) {
    if (!cJSON_IsNumber(j) || j->valuedouble < 0 || j->valuedouble >= (double)(1 << 30) ||
        j->valuedouble != (double)(int)j->valuedouble)
        return -1;
    return (int)j->valuedouble;
}

// ---------------------------------------------------------------- vocab
static int count_ids(const char *path, const cJSON *vocab, const cJSON *added, int *n, dc_err *err) {
    int mx = -1, count = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, vocab) {
        int id = jid(it);
        if (id < 0) return err_set(err, DC_EFORMAT, "%s: model.vocab[\"%.40s\"] is not a token id", path, it->string);
        if (id > mx) mx = id;
        count++;
    }
    cJSON_ArrayForEach(it, added) {
        int id = jid(cJSON_GetObjectItemCaseSensitive(it, "id"));
        if (id < 0 || !jstr(it, "content")) return err_set(err, DC_EFORMAT, "%s: an added token without id/content", path);
        if (id > mx) mx = id;
        count++;
    }
    if (mx < 0) return err_set(err, DC_EFORMAT, "%s: empty vocab", path);
    /* ids index a table: a few holes are normal (DeepSeek's padding ids), an id
     * far beyond the number of tokens is a corrupt file, not a 16 GB table */
    if (mx > 2 * count + 65536)
        return err_set(err, DC_EFORMAT, "%s: token id %d is far beyond the %d tokens the file defines", path, mx, count);
    *n = mx + 1;
    return DC_OK;
}

static int load_tokens(dc_tokenizer *t, const char *path, const cJSON *vocab, const cJSON *added, dc_err *err) {
    int n = 0, rc;
    if ((rc = count_ids(path, vocab, added, &n, err)) || (rc = vocab_init(&t->v, n, err))) return rc;
    uint8_t stackbuf[1024];
    const cJSON *it;
    cJSON_ArrayForEach(it, vocab) {
        const char *s = it->string;
        size_t len = strlen(s);
        uint8_t *buf = len <= sizeof stackbuf ? stackbuf : malloc(len);
        if (!buf) return err_set(err, DC_ENOMEM, "%s: out of memory", path);
        long k = bytelevel_decode(s, len, buf);
        /* a token that is not byte-level text (e.g. BOS listed in the vocab) stays as written */
        rc = k >= 0 ? vocab_set(&t->v, jid(it), buf, (size_t)k, TOK_NORMAL, err)
                    : vocab_set(&t->v, jid(it), s, len, TOK_NORMAL, err);
        if (buf != stackbuf) free(buf);
        if (rc) return err_prefix(err, "%s", path);
    }
    cJSON_ArrayForEach(it, added) {
        const char *s = jstr(it, "content");
        int sp = jbool(it, "special", 0);
        if ((rc = vocab_set(&t->v, jid(cJSON_GetObjectItemCaseSensitive(it, "id")), s, strlen(s),
                            sp ? TOK_SPECIAL : TOK_ADDED, err)))
            return err_prefix(err, "%s", path);
    }
    if ((rc = vocab_build_map(&t->v, err)) || (rc = vocab_build_added(&t->v, err))) return rc;
    return DC_OK;
}

/* side_id: one side of a merge, byte-level text -> its id. */
static int side_id(const vocab *v, const char *s, size_t n) {
    uint8_t stackbuf[512], *buf = n <= sizeof stackbuf ? stackbuf : malloc(n);
    if (!buf) return -2;
    long k = bytelevel_decode(s, n, buf);
    int id = k >= 0 ? vocab_find(v, buf, (size_t)k) : vocab_find(v, s, n);
    if (buf != stackbuf) free(buf);
    return id;
}

static int load_merges(dc_tokenizer *t, const char *path, const cJSON *merges, dc_err *err) {
    if (!merges) return DC_OK;
    if (!cJSON_IsArray(merges)) return err_set(err, DC_EFORMAT, "%s: model.merges is not an array", path);
    int i = 0, rc;
    const cJSON *it;
    cJSON_ArrayForEach(it, merges) {
        const char *a, *b;
        size_t la, lb;
        if (cJSON_IsString(it)) {
            const char *sp = strchr(it->valuestring, ' ');
            if (!sp || strchr(sp + 1, ' '))
                return err_set(err, DC_EFORMAT, "%s: merge %d \"%.60s\" is not \"a b\"", path, i, it->valuestring);
            a = it->valuestring, la = (size_t)(sp - a), b = sp + 1, lb = strlen(b);
        } else if (cJSON_GetArraySize(it) == 2 && cJSON_IsString(it->child) && cJSON_IsString(it->child->next)) {
            a = it->child->valuestring, la = strlen(a), b = it->child->next->valuestring, lb = strlen(b);
        } else {
            return err_set(err, DC_EFORMAT, "%s: merge %d is neither \"a b\" nor [a, b]", path, i);
        }
        int ia = side_id(&t->v, a, la), ib = side_id(&t->v, b, lb);
        if (ia == -2 || ib == -2) return err_set(err, DC_ENOMEM, "%s: out of memory", path);
        if (ia < 0 || ib < 0)
            return err_set(err, DC_EFORMAT, "%s: merge %d (\"%.*s\" \"%.*s\") names a token not in the vocab", path, i,
                           (int)(la > 40 ? 40 : la), a, (int)(lb > 40 ? 40 : lb), b);
        if ((rc = vocab_add_merge(&t->v, ia, ib, err))) return err_prefix(err, "%s", path);
        i++;
    }
    return DC_OK;
}

// ---------------------------------------------------------------- pre-tokenizer
/* add_literal: a Split on a plain string, escaped for PCRE2. */
static int add_literal(pretok *p, const char *s, dc_err *err) {
    size_t n = strlen(s);
    char *re = malloc(n * 2 + 1), *o = re;
    if (!re) return err_set(err, DC_ENOMEM, "pre-tokenizer: out of memory");
    for (; *s; s++) {
        if (strchr("\\^$.|?*+()[]{}", *s)) *o++ = '\\';
        *o++ = *s;
    }
    *o = 0;
    int rc = pretok_add(p, re, err);
    free(re);
    return rc;
}

static int load_pretok(pretok *p, const char *path, const cJSON *j, int depth, dc_err *err) {
    if (!j || cJSON_IsNull(j)) return DC_OK;
    const char *type = jstr(j, "type");
    if (!type) return err_set(err, DC_EFORMAT, "%s: pre_tokenizer without a type", path);
    if (strcmp(type, "Sequence") == 0 && depth < 4) {
        const cJSON *it;
        cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(j, "pretokenizers")) {
            int rc = load_pretok(p, path, it, depth + 1, err);
            if (rc) return rc;
        }
        return DC_OK;
    }
    if (strcmp(type, "Split") == 0) {
        const char *beh = jstr(j, "behavior");
        const cJSON *pat = cJSON_GetObjectItemCaseSensitive(j, "pattern");
        if (!beh || strcmp(beh, "Isolated") != 0 || jbool(j, "invert", 0))
            return err_set(err, DC_EFORMAT, "%s: Split behaviour %s%s is not supported (Isolated only)", path,
                           beh ? beh : "(none)", jbool(j, "invert", 0) ? " inverted" : "");
        if (jstr(pat, "Regex")) return pretok_add(p, jstr(pat, "Regex"), err);
        if (jstr(pat, "String")) return add_literal(p, jstr(pat, "String"), err);
        return err_set(err, DC_EFORMAT, "%s: Split without a Regex or String pattern", path);
    }
    if (strcmp(type, "ByteLevel") == 0) {
        if (jbool(j, "add_prefix_space", 0))
            return err_set(err, DC_EFORMAT, "%s: ByteLevel add_prefix_space is not supported", path);
        return jbool(j, "use_regex", 1) ? pretok_add(p, pretok_named_patterns("gpt-2")[0], err) : DC_OK;
    }
    if (strcmp(type, "Digits") == 0)
        return pretok_add(p, jbool(j, "individual_digits", 0) ? "\\p{N}" : "\\p{N}+", err);
    return err_set(err, DC_EFORMAT, "%s: pre-tokenizer type %s is not supported", path, type);
}

/* name_pretok: a built-in set written out (as deepc's trainer writes them),
 * or DeepSeek-V3's own file (the same regexes with literal characters). */
static void name_pretok(pretok *p) {
    static const char *SETS[] = {"deepseek-v3", "deepseek-llm", "deepseek-coder", "gpt-2"};
    for (size_t k = 0; k < sizeof SETS / sizeof *SETS; k++) {
        const char *const *pats = pretok_named_patterns(SETS[k]);
        int i = 0;
        while (i < p->n && pats[i] && strcmp(pats[i], p->src[i]) == 0) i++;
        if (i == p->n && !pats[i]) {
            snprintf(p->name, sizeof p->name, "%s", SETS[k]);
            return;
        }
    }
    if (p->n == 3 && strcmp(p->src[0], "\\p{N}{1,3}") == 0 && strstr(p->src[2], "[\\p{L}\\p{M}]+") &&
        strstr(p->src[1], "\xe4\xb8\x80-\xe9\xbe\xa5")) /* 一-龥 */
        snprintf(p->name, sizeof p->name, "deepseek-v3");
}

static int check_model(const char *path, const cJSON *root, const cJSON *model, dc_err *err) {
    const char *type = jstr(model, "type");
    if (type && strcmp(type, "BPE") != 0)
        return err_set(err, DC_EFORMAT, "%s: model type %s is not supported (BPE only)", path, type);
    if (jbool(model, "byte_fallback", 0) || jstr(model, "continuing_subword_prefix") || jstr(model, "end_of_word_suffix"))
        return err_set(err, DC_EFORMAT, "%s: BPE options byte_fallback / subword prefix / suffix are not supported", path);
    if (!cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(model, "vocab")))
        return err_set(err, DC_EFORMAT, "%s: model.vocab is missing", path);
    const cJSON *norm = cJSON_GetObjectItemCaseSensitive(root, "normalizer");
    if (norm && !cJSON_IsNull(norm) &&
        !(jstr(norm, "type") && strcmp(jstr(norm, "type"), "Sequence") == 0 &&
          cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(norm, "normalizers")) == 0))
        return err_set(err, DC_EFORMAT, "%s: normalizers are not supported", path);
    const cJSON *dec = cJSON_GetObjectItemCaseSensitive(root, "decoder");
    if (dec && !cJSON_IsNull(dec) && !(jstr(dec, "type") && strcmp(jstr(dec, "type"), "ByteLevel") == 0))
        return err_set(err, DC_EFORMAT, "%s: decoder %s is not supported (ByteLevel only)", path,
                       jstr(dec, "type") ? jstr(dec, "type") : "?");
    return DC_OK;
}

static void guess_bos_eos(dc_tokenizer *t) {
    static const char *BOS[] = {"<｜begin▁of▁sentence｜>", "<s>", "<|begin_of_text|>"};
    static const char *EOS[] = {"<｜end▁of▁sentence｜>", "</s>", "<|endoftext|>", "<|end_of_text|>"};
    for (size_t i = 0; i < sizeof BOS / sizeof *BOS && t->bos < 0; i++) t->bos = dc_tokenizer_find(t, BOS[i], strlen(BOS[i]));
    for (size_t i = 0; i < sizeof EOS / sizeof *EOS && t->eos < 0; i++) t->eos = dc_tokenizer_find(t, EOS[i], strlen(EOS[i]));
}

int tok_load_json(dc_tokenizer *t, const char *path, dc_err *err) {
    cJSON *root;
    int rc = json_read_file(path, &root, err);
    if (rc) return rc;
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(root, "model");
    const cJSON *added = cJSON_GetObjectItemCaseSensitive(root, "added_tokens");
    if (!(rc = check_model(path, root, model, err)) &&
        !(rc = load_tokens(t, path, cJSON_GetObjectItemCaseSensitive(model, "vocab"), added, err)) &&
        !(rc = load_merges(t, path, cJSON_GetObjectItemCaseSensitive(model, "merges"), err)) &&
        !(rc = pretok_init(&t->pre, err)) &&
        !(rc = load_pretok(&t->pre, path, cJSON_GetObjectItemCaseSensitive(root, "pre_tokenizer"), 0, err))) {
        name_pretok(&t->pre);
        guess_bos_eos(t);
    }
    cJSON_Delete(root);
    return rc;
}

// ---------------------------------------------------------------- tokenizer_config.json
/* config_token: "bos_token": "..." or {"content": "..."}. */
static int config_token(const dc_tokenizer *t, const cJSON *root, const char *key) {
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(root, key);
    const char *s = cJSON_IsString(j) ? j->valuestring : jstr(j, "content");
    return s ? dc_tokenizer_find(t, s, strlen(s)) : -1;
}

int tok_load_config(dc_tokenizer *t, const char *path, dc_err *err) {
    if (!file_exists(path)) return DC_OK;
    cJSON *root;
    int rc = json_read_file(path, &root, err);
    if (rc) return rc;
    int bos = config_token(t, root, "bos_token"), eos = config_token(t, root, "eos_token");
    if (bos >= 0) t->bos = bos;
    if (eos >= 0) t->eos = eos;
    cJSON_Delete(root);
    return DC_OK;
}
