/* pretok.c — see pretok.h. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "tokenizer/pretok.h"
#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "base/err.h"

// ---------------------------------------------------------------- named sets
/* Code points are written as \x{...} so the source does not depend on how an
 * editor normalises look-alike letters (U+2126 OHM SIGN is not U+03A9). */
static const char *const SET_DEEPSEEK_V3[] = {
    "\\p{N}{1,3}",
    "[\\x{4E00}-\\x{9FA5}\\x{3040}-\\x{309F}\\x{30A0}-\\x{30FF}]+",
    "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\r\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+|"
    " ?[\\p{P}\\p{S}]+[\r\n]*|\\s*[\r\n]+|\\s+(?!\\S)|\\s+",
    NULL,
};

/* DeepSeek LLM / V2: the letter class is a fixed list of cased-letter ranges */
static const char *const SET_DEEPSEEK_LLM[] = {
    "[\r\n]",
    "\\s?[\\x{41}-\\x{5A}\\x{61}-\\x{7A}\\x{B5}\\x{C0}-\\x{D6}\\x{D8}-\\x{F6}\\x{F8}-\\x{1BA}\\x{1BC}-\\x{1BF}"
    "\\x{1C4}-\\x{293}\\x{295}-\\x{2AF}\\x{370}-\\x{373}\\x{376}\\x{377}\\x{37B}-\\x{37D}\\x{37F}\\x{386}"
    "\\x{388}-\\x{38A}\\x{38C}\\x{38E}-\\x{3A1}\\x{3A3}-\\x{3F5}\\x{3F7}-\\x{481}\\x{48A}-\\x{52F}"
    "\\x{531}-\\x{556}\\x{10A0}-\\x{10C5}\\x{13A0}-\\x{13F5}\\x{13F8}-\\x{13FD}\\x{1C90}-\\x{1CBA}"
    "\\x{1CBD}-\\x{1CBF}\\x{1D00}-\\x{1D2B}\\x{1D6B}-\\x{1D77}\\x{1D79}-\\x{1D9A}\\x{1E00}-\\x{1F15}"
    "\\x{1F18}-\\x{1F1D}\\x{1F20}-\\x{1F45}\\x{1F48}-\\x{1F4D}\\x{1F50}-\\x{1F57}\\x{1F59}\\x{1F5B}\\x{1F5D}"
    "\\x{1F5F}-\\x{1F7D}\\x{1F80}-\\x{1FB4}\\x{1FB6}-\\x{1FBC}\\x{1FBE}\\x{1FC2}-\\x{1FC4}\\x{1FC6}-\\x{1FCC}"
    "\\x{1FD0}-\\x{1FD3}\\x{1FD6}-\\x{1FDB}\\x{1FE0}-\\x{1FEC}\\x{1FF2}-\\x{1FF4}\\x{1FF6}-\\x{1FFC}"
    "\\x{2102}\\x{2107}\\x{210A}-\\x{2113}\\x{2115}\\x{2119}-\\x{211D}\\x{2124}\\x{2126}\\x{2128}"
    "\\x{212A}-\\x{212D}\\x{212F}-\\x{2134}\\x{2139}\\x{213C}-\\x{213F}\\x{2145}-\\x{2149}\\x{214E}"
    "\\x{2183}\\x{2184}\\x{2C00}-\\x{2C7B}\\x{2C7E}-\\x{2CE4}\\x{2CEB}-\\x{2CEE}\\x{2CF2}\\x{2CF3}"
    "\\x{A640}-\\x{A66D}\\x{A680}-\\x{A69B}\\x{A722}-\\x{A76F}\\x{A771}-\\x{A787}\\x{A78B}-\\x{A78E}"
    "\\x{AB70}-\\x{ABBF}\\x{FB00}-\\x{FB06}\\x{FB13}-\\x{FB17}\\x{FF21}-\\x{FF3A}\\x{FF41}-\\x{FF5A}"
    "\\x{10400}-\\x{1044F}\\x{104B0}-\\x{104D3}\\x{104D8}-\\x{104FB}\\x{10C80}-\\x{10CB2}"
    "\\x{10CC0}-\\x{10CF2}\\x{118A0}-\\x{118DF}\\x{1E900}-\\x{1E943}]+",
    "\\s?[!-/:-~\\x{FF01}-\\x{FF0F}\\x{FF1A}-\\x{FF5E}\\x{2018}-\\x{201F}\\x{3000}-\\x{3002}]+",
    "\\s+$",
    "[\\x{4E00}-\\x{9FA5}\\x{0800}-\\x{4E00}\\x{AC00}-\\x{D7FF}]+",
    "\\p{N}+",
    NULL,
};

static const char *const SET_DEEPSEEK_CODER[] = {
    "[\r\n]",
    "\\s?\\p{L}+",
    "\\s?\\p{P}+",
    "[\\x{4E00}-\\x{9FA5}\\x{0800}-\\x{4E00}\\x{AC00}-\\x{D7FF}]+",
    "\\p{N}",
    NULL,
};

static const char *const SET_GPT2[] = {
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+",
    NULL,
};

static const struct {
    const char *name;
    const char *const *pats;
} SETS[] = {
    {"deepseek-v3", SET_DEEPSEEK_V3},
    {"deepseek-llm", SET_DEEPSEEK_LLM},
    {"deepseek-coder", SET_DEEPSEEK_CODER},
    {"gpt-2", SET_GPT2},
};

const char *const *pretok_named_patterns(const char *name) {
    for (size_t i = 0; i < sizeof SETS / sizeof *SETS; i++)
        if (strcmp(SETS[i].name, name) == 0) return SETS[i].pats;
    return NULL;
}

// ---------------------------------------------------------------- compile
int pretok_init(pretok *p, dc_err *err) {
    (void)err;
    memset(p, 0, sizeof *p);
    snprintf(p->name, sizeof p->name, "custom");
    return DC_OK;
}

void pretok_free(pretok *p) {
    if (!p) return;
    for (int i = 0; i < p->n; i++) {
        pcre2_code_free(p->re[i]);
        free(p->src[i]);
    }
    memset(p, 0, sizeof *p);
}

int pretok_add(pretok *p, const char *pattern, dc_err *err) {
    if (p->n == PRETOK_MAX) return err_set(err, DC_EFORMAT, "pre-tokenizer: more than %d splits", PRETOK_MAX);
    pcre2_compile_context *cc = pcre2_compile_context_create(NULL);
    if (!cc) return err_set(err, DC_ENOMEM, "pre-tokenizer: out of memory");
    pcre2_set_newline(cc, PCRE2_NEWLINE_LF);
    int ec;
    PCRE2_SIZE eo;
    /* Oniguruma (Ruby syntax), which HF uses, reads ^ and $ as line anchors */
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED,
                                   PCRE2_UTF | PCRE2_UCP | PCRE2_MULTILINE, &ec, &eo, cc);
    pcre2_compile_context_free(cc);
    if (!re) {
        PCRE2_UCHAR msg[160];
        pcre2_get_error_message(ec, msg, sizeof msg);
        return err_set(err, DC_EFORMAT, "pre-tokenizer: regex /%.60s/ at offset %zu: %s", pattern, (size_t)eo,
                       (const char *)msg);
    }
    p->src[p->n] = strdup(pattern);
    if (!p->src[p->n]) {
        pcre2_code_free(re);
        return err_set(err, DC_ENOMEM, "pre-tokenizer: out of memory");
    }
    p->jit[p->n] = pcre2_jit_compile(re, PCRE2_JIT_COMPLETE) == 0;
    p->re[p->n++] = re;
    return DC_OK;
}

int pretok_named(pretok *p, const char *name, dc_err *err) {
    const char *const *pats = pretok_named_patterns(name);
    if (!pats) return err_set(err, DC_ENOTFOUND, "pre-tokenizer: unknown set '%s'", name);
    for (; *pats; pats++) {
        int rc = pretok_add(p, *pats, err);
        if (rc) return rc;
    }
    snprintf(p->name, sizeof p->name, "%s", name);
    return DC_OK;
}

// ---------------------------------------------------------------- split
int pretok_scratch_init(pretok_scratch *s, dc_err *err) {
    memset(s, 0, sizeof *s);
    s->md = pcre2_match_data_create(1, NULL);
    s->mc = pcre2_match_context_create(NULL);
    /* long runs of one class (a megabyte of spaces) need more than the 32K default */
    s->js = pcre2_jit_stack_create(32 * 1024, 8 * 1024 * 1024, NULL);
    if (!s->md || !s->mc || !s->js) {
        pretok_scratch_free(s);
        return err_set(err, DC_ENOMEM, "pre-tokenizer: out of memory for match data");
    }
    pcre2_jit_stack_assign(s->mc, NULL, s->js);
    return DC_OK;
}

void pretok_scratch_free(pretok_scratch *s) {
    if (!s) return;
    pcre2_match_data_free(s->md);
    pcre2_match_context_free(s->mc);
    pcre2_jit_stack_free(s->js);
    memset(s, 0, sizeof *s);
}

typedef struct split_ctx {
    const pretok *p;
    pretok_scratch *sc;
    pretok_emit emit;
    void *ctx;
    dc_err *err;
} split_ctx;

static int split_level(split_ctx *c, int lvl, const char *s, size_t n) {
    if (n == 0) return DC_OK;
    if (lvl == c->p->n) return c->emit(c->ctx, s, n);
    pcre2_code *re = c->p->re[lvl];
    pcre2_match_data *md = c->sc->md;
    PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
    size_t pos = 0, last = 0;
    int rc;
    while (pos < n) {
        int m = c->p->jit[lvl] ? pcre2_jit_match(re, (PCRE2_SPTR)s, n, pos, 0, md, c->sc->mc)
                               : pcre2_match(re, (PCRE2_SPTR)s, n, pos, PCRE2_NO_UTF_CHECK, md, c->sc->mc);
        if (m == PCRE2_ERROR_NOMATCH) break;
        if (m < 0) {
            PCRE2_UCHAR msg[120];
            pcre2_get_error_message(m, msg, sizeof msg);
            return err_set(c->err, DC_EFORMAT, "pre-tokenizer: regex %d failed at byte %zu of a %zu-byte piece: %s",
                           lvl, pos, n, (const char *)msg);
        }
        size_t b = ov[0], e = ov[1];
        if (e == b) { /* an empty match splits nothing: step over one character */
            pos = b + 1;
            while (pos < n && ((uint8_t)s[pos] & 0xc0) == 0x80) pos++;
            continue;
        }
        if (b > last && (rc = split_level(c, lvl + 1, s + last, b - last))) return rc;
        if ((rc = split_level(c, lvl + 1, s + b, e - b))) return rc;
        last = pos = e;
    }
    if (last < n) return split_level(c, lvl + 1, s + last, n - last);
    return DC_OK;
}

int pretok_split(const pretok *p, pretok_scratch *sc, const char *s, size_t n, pretok_emit emit, void *ctx,
                 dc_err *err) {
    split_ctx c = {p, sc, emit, ctx, err};
    return split_level(&c, 0, s, n);
}
