/*
 * load_gguf.c — a tokenizer from llama.cpp GGUF metadata:
 *   tokenizer.ggml.model       "gpt2" (byte-level BPE; the only model read here)
 *   tokenizer.ggml.pre         pre-tokenizer name: deepseek-llm, deepseek-coder,
 *                              gpt-2, deepseek-v3 (pretok.h has the regexes)
 *   tokenizer.ggml.tokens      str[n], in GPT-2 byte-level form
 *   tokenizer.ggml.token_type  i32[n]: 1 normal, 2 unknown, 3 control,
 *                              4 user-defined, 5 unused, 6 byte (optional)
 *   tokenizer.ggml.merges      str[m], "a b" in rank order
 *   tokenizer.ggml.bos_token_id / eos_token_id (optional)
 * Control tokens become special added tokens (matched in text only with
 * DC_TOK_SPECIAL, as llama.cpp's parse_special), user-defined ones plain
 * added tokens (always matched, as in llama.cpp and HF).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "base/err.h"
#include "io/gguf.h"
#include "tokenizer/bytelevel.h"
#include "tokenizer/tokenizer.h"

enum { GT_NORMAL = 1, GT_UNKNOWN = 2, GT_CONTROL = 3, GT_USER = 4, GT_UNUSED = 5, GT_BYTE = 6 };

static int str_is(gguf_str s, const char *z) { return s.n == strlen(z) && memcmp(s.s, z, s.n) == 0; }

/* set_token: one GGUF token: byte-level text for normal tokens; control and
 * user-defined tokens are literal text (HF added tokens' content), so the
 * user-defined "ÿ" of the DeepSeek LLM vocab is the character U+00FF, not the
 * byte 0xFF. */
static int set_token(vocab *v, int id, gguf_str s, int type, uint8_t **buf, size_t *cap, dc_err *err) {
    if (s.n > *cap) {
        uint8_t *nb = realloc(*buf, s.n);
        if (!nb) return err_set(err, DC_ENOMEM, "gguf vocab: out of memory");
        *buf = nb;
        *cap = s.n;
    }
    int attr = type == GT_CONTROL ? TOK_SPECIAL : type == GT_USER ? TOK_ADDED
               : type == GT_UNUSED || type == GT_UNKNOWN ? TOK_NONE : TOK_NORMAL;
    long k = attr == TOK_NORMAL ? bytelevel_decode(s.s, s.n, *buf) : -1;
    if (k >= 0) return vocab_set(v, id, *buf, (size_t)k, attr, err);
    return vocab_set(v, id, s.s, s.n, attr, err);
}

static int load_tokens(dc_tokenizer *t, const gguf *g, dc_err *err) {
    const gguf_kv *tok, *types = NULL;
    int rc = gguf_get_arr(g, "tokenizer.ggml.tokens", GGUF_STR, &tok, err);
    if (rc) return rc;
    if (gguf_find(g, "tokenizer.ggml.token_type") &&
        (rc = gguf_get_arr(g, "tokenizer.ggml.token_type", GGUF_I32, &types, err)))
        return rc;
    if (tok->n == 0 || tok->n > (1u << 30))
        return err_set(err, DC_EFORMAT, "%s: %llu tokens", g->name, (unsigned long long)tok->n);
    if (types && types->n != tok->n)
        return err_set(err, DC_EFORMAT, "%s: %llu token types for %llu tokens", g->name,
                       (unsigned long long)types->n, (unsigned long long)tok->n);
    if ((rc = vocab_init(&t->v, (int)tok->n, err))) return rc;
    uint8_t *buf = NULL;
    size_t cap = 0;
    for (uint64_t i = 0; i < tok->n && !rc; i++) {
        int64_t ty = types ? gguf_kv_int(types, i) : GT_NORMAL;
        if (ty < GT_NORMAL || ty > GT_BYTE)
            rc = err_set(err, DC_EFORMAT, "tokenizer.ggml.token_type[%llu] is %lld, not a token type (1..6)",
                         (unsigned long long)i, (long long)ty);
        else rc = set_token(&t->v, (int)i, gguf_kv_str(tok, i), (int)ty, &buf, &cap, err);
    }
    free(buf);
    if (rc) return err_prefix(err, "%s", g->name);
    if ((rc = vocab_build_map(&t->v, err)) || (rc = vocab_build_added(&t->v, err))) return rc;
    return DC_OK;
}

static int load_merges(dc_tokenizer *t, const gguf *g, dc_err *err) {
    const gguf_kv *m;
    int rc = gguf_get_arr(g, "tokenizer.ggml.merges", GGUF_STR, &m, err);
    if (rc) return rc;
    uint8_t *buf = NULL;
    size_t cap = 0;
    for (uint64_t i = 0; i < m->n && !rc; i++) {
        gguf_str s = gguf_kv_str(m, i);
        const char *sp = memchr(s.s, ' ', s.n);
        if (!sp || memchr(sp + 1, ' ', s.n - (size_t)(sp + 1 - s.s))) {
            rc = err_set(err, DC_EFORMAT, "%s: merge %llu is not \"a b\"", g->name, (unsigned long long)i);
            break;
        }
        if (s.n > cap) {
            uint8_t *nb = realloc(buf, s.n);
            if (!nb) { rc = err_set(err, DC_ENOMEM, "%s: out of memory", g->name); break; }
            buf = nb, cap = s.n;
        }
        size_t la = (size_t)(sp - s.s), lb = s.n - la - 1;
        long ka = bytelevel_decode(s.s, la, buf), ia = ka >= 0 ? vocab_find(&t->v, buf, (size_t)ka) : -1;
        long kb = bytelevel_decode(sp + 1, lb, buf), ib = kb >= 0 ? vocab_find(&t->v, buf, (size_t)kb) : -1;
        if (ia < 0 || ib < 0)
            rc = err_set(err, DC_EFORMAT, "%s: merge %llu names a token not in the vocab", g->name, (unsigned long long)i);
        else if ((rc = vocab_add_merge(&t->v, (int)ia, (int)ib, err)))
            err_prefix(err, "%s", g->name);
    }
    free(buf);
    return rc;
}

/* check_ids: every tokenizer.ggml.*_token_id present (bos, eos, unknown,
 * padding, separator, eot, fim_*, ...) is an integer naming a token; a bad
 * one is refused by name (issue 14: they were dropped silently, so a file
 * with a broken EOS generated until the length limit) */
static int check_ids(const gguf *g, int n, dc_err *err) {
    static const char PRE[] = "tokenizer.ggml.", SUF[] = "_token_id";
    const size_t np = sizeof PRE - 1, ns = sizeof SUF - 1;
    for (uint64_t i = 0; i < g->n_kv; i++) {
        const gguf_str *k = &g->kv[i].key;
        if (k->n <= np + ns || memcmp(k->s, PRE, np) != 0 || memcmp(k->s + k->n - ns, SUF, ns) != 0) continue;
        char key[128];
        snprintf(key, sizeof key, "%.*s", (int)(k->n < 127 ? k->n : 127), k->s);
        int64_t v;
        int rc = gguf_get_int(g, key, &v, err);
        if (rc) return err_set(err, DC_EFORMAT, "%s: %s has type %s, not an integer token id", g->name, key,
                               gguf_type_name(g->kv[i].type));
        if (v < 0 || v >= n)
            return err_set(err, DC_EFORMAT, "%s: %s is %lld, not a token id (the vocabulary has %d)", g->name, key,
                           (long long)v, n);
    }
    return DC_OK;
}

static int token_id(const gguf *g, const char *key) {
    int64_t v;
    return gguf_find(g, key) && !gguf_get_int(g, key, &v, NULL) ? (int)v : -1; /* checked by check_ids */
}

int tok_load_gguf(dc_tokenizer *t, const char *path, dc_err *err) {
    gguf g;
    int rc = gguf_open(&g, path, err);
    if (rc) return rc;
    gguf_str model, pre = {"default", 7};
    int absent = !gguf_find(&g, "tokenizer.ggml.model");
    if (absent) {
        rc = err_set(err, DC_ENOTFOUND, "%s has no tokenizer (no tokenizer.ggml.model key)", path);
        goto done;
    }
    if ((rc = gguf_get_str(&g, "tokenizer.ggml.model", &model, err))) goto done;
    if (!str_is(model, "gpt2")) {
        rc = err_set(err, DC_EFORMAT, "%s: tokenizer model %.*s is not supported (gpt2 byte-level BPE only)", path,
                     (int)model.n, model.s);
        goto done;
    }
    if (gguf_find(&g, "tokenizer.ggml.pre") && (rc = gguf_get_str(&g, "tokenizer.ggml.pre", &pre, err))) goto done;
    char name[32];
    snprintf(name, sizeof name, "%.*s", (int)(pre.n < 31 ? pre.n : 31), pre.s);
    if ((rc = pretok_init(&t->pre, err))) goto done;
    if ((rc = pretok_named(&t->pre, name, err))) {
        rc = err_set(err, DC_EFORMAT, "%s: pre-tokenizer '%s' is not supported (deepseek-v3, deepseek-llm, "
                     "deepseek-coder, gpt-2)", path, name);
        goto done;
    }
    if ((rc = load_tokens(t, &g, err)) || (rc = load_merges(t, &g, err)) || (rc = check_ids(&g, t->v.n, err))) goto done;
    t->bos = token_id(&g, "tokenizer.ggml.bos_token_id");
    t->eos = token_id(&g, "tokenizer.ggml.eos_token_id");
done:
    gguf_close(&g);
    /* DC_ENOTFOUND means "this file has no tokenizer" (no tokenizer.ggml.model,
     * above); anything missing or wrong after that is a broken tokenizer */
    if (rc == DC_ENOTFOUND && !absent) {
        rc = DC_EFORMAT;
        if (err) err->code = rc;
    }
    return rc;
}
