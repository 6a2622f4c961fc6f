/*
 * pretok.h — the pre-tokenizer: a Sequence of regex Splits with behaviour
 * "Isolated", as in a Hugging Face tokenizer.json.
 *
 * Each Split is applied to every piece the previous one produced: the
 * matches of its regex become pieces and so do the gaps between them (the
 * regex sees one piece at a time, so `$` and lookaheads stop at the piece's
 * end). The pieces of the last Split go to BPE. The ByteLevel step that
 * follows in the files is implicit here: deepc's vocab holds raw bytes.
 *
 * Regexes are compiled by PCRE2 (UTF, UCP, JIT when available) with
 * Oniguruma's (HF's engine) reading of `^`/`$` as line anchors. The subject
 * must be valid UTF-8: the encoder splits invalid bytes off first.
 *
 * Named sets: "deepseek-v3" (DeepSeek-V3/R1's tokenizer.json; llama.cpp's
 * DEEPSEEK3_LLM), "deepseek-llm" (DeepSeek LLM and V2), "deepseek-coder",
 * "gpt-2" (GPT-2's ByteLevel regex). The patterns are those of llama.cpp's
 * llama-vocab.cpp for the same names.
 *
 * A compiled pretok is read-only and shared by threads; each thread splits
 * with its own pretok_scratch.
 */
#ifndef DC_PRETOK_H
#define DC_PRETOK_H
#include <stddef.h>
#include "deepc.h"

#define PRETOK_MAX 8

typedef struct pretok {
    int n;
    void *re[PRETOK_MAX];   /* pcre2_code_8*, owned */
    int jit[PRETOK_MAX];    /* JIT compiled */
    char *src[PRETOK_MAX];  /* the patterns, owned */
    char name[32];          /* the named set, or "custom" */
} pretok;

typedef struct pretok_scratch {
    void *md;   /* pcre2_match_data_8* */
    void *mc;   /* pcre2_match_context_8* */
    void *js;   /* pcre2_jit_stack_8* */
} pretok_scratch;

/* pretok_emit: called for each final piece in order; nonzero stops the split. */
typedef int (*pretok_emit)(void *ctx, const char *s, size_t n);

int pretok_init(pretok *p, dc_err *err);
void pretok_free(pretok *p);
/* pretok_add: append one Split regex (Oniguruma/PCRE syntax). */
int pretok_add(pretok *p, const char *pattern, dc_err *err);
/* pretok_named: the patterns of a named set; DC_ENOTFOUND for an unknown name. */
int pretok_named(pretok *p, const char *name, dc_err *err);
/* pretok_named_patterns: NULL-terminated list of a set's patterns, NULL when unknown. */
const char *const *pretok_named_patterns(const char *name);

int pretok_scratch_init(pretok_scratch *s, dc_err *err);
void pretok_scratch_free(pretok_scratch *s);
/* pretok_split: split s[0, n) (valid UTF-8) and emit the pieces. Returns
 * DC_OK, the emitter's nonzero value, or DC_EFORMAT on a regex failure. */
int pretok_split(const pretok *p, pretok_scratch *sc, const char *s, size_t n, pretok_emit emit, void *ctx,
                 dc_err *err);
#endif
