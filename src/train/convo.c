/* convo.c — see convo.h. */
#include "train/convo.h"
#include <stdlib.h>
#include <string.h>
#include "base/err.h"

#define EOS_TEXT "<｜end▁of▁sentence｜>"

typedef struct row {
    int *ids;
    unsigned char *mask;
    int n, cap;
} row;

/* add: the ids of text[0, len) to the row, masked m */
static int add(row *r, const dc_tokenizer *tk, const char *text, size_t len, int m, dc_err *err) {
    if (!len) return DC_OK;
    int *ids;
    size_t k;
    int rc = dc_tokenizer_encode(tk, text, len, DC_TOK_SPECIAL, &ids, &k, err);
    if (rc) return rc;
    if (r->n + (int)k > r->cap) {
        int cap = (r->n + (int)k) * 2 + 16;
        int *ni = realloc(r->ids, sizeof(int) * cap);
        if (ni) r->ids = ni;
        unsigned char *nm = ni ? realloc(r->mask, cap) : NULL;
        if (nm) r->mask = nm;
        if (!ni || !nm) {
            free(ids);
            return err_set(err, DC_ENOMEM, "sft: out of memory");
        }
        r->cap = cap;
    }
    memcpy(r->ids + r->n, ids, sizeof(int) * k);
    memset(r->mask + r->n, m, k);
    r->n += (int)k;
    free(ids);
    return DC_OK;
}

static int is_asst(const dc_chat_msg *m) { return m->role && !strcmp(m->role, "assistant"); }

/* span: where assistant turn i stands in the V3 rendering of msgs[0..i] */
static int span(const dc_chat_msg *msgs, int i, const char *full, size_t *s, size_t *e, dc_err *err) {
    char *pre = NULL, *with = NULL;
    int rc = dc_chat_render(DC_CHAT_V3, msgs, i, 1, &pre, err);
    if (!rc) rc = dc_chat_render(DC_CHAT_V3, msgs, i + 1, 0, &with, err);
    if (rc) {
        free(pre), free(with);
        return rc;
    }
    *s = strlen(pre), *e = strlen(with);
    int ok = !strncmp(with, pre, *s) && !strncmp(full, with, *e);
    free(pre), free(with);
    return ok ? DC_OK : err_set(err, DC_EFORMAT, "sft: the template does not render assistant turn %d as a continuation", i);
}

int convo_row(const dc_tokenizer *tk, int style, const dc_chat_msg *msgs, int n, int **ids, unsigned char **mask,
              int *len, dc_err *err) {
    int last = -1;
    for (int i = 0; i < n; i++)
        if (is_asst(&msgs[i])) last = i;
    if (last < 0) return err_set(err, DC_EARG, "sft: the conversation has no assistant turn");
    const dc_chat_msg *lm = &msgs[last];
    int whole = lm->n_tool_calls > 0 || !lm->content; /* tool calls: as the template writes them */
    char *head;  /* everything before the last turn's content */
    int rc = dc_chat_render(whole ? DC_CHAT_V3 : style, msgs, last, !whole, &head, err);
    if (rc) return rc;
    row r = {0};
    size_t at = 0;
    for (int i = 0; i < last && !rc; i++) {
        size_t s, e;
        if (!is_asst(&msgs[i])) continue;
        if (!(rc = span(msgs, i, head, &s, &e, err)))
            if (!(rc = add(&r, tk, head + at, s - at, 0, err))) rc = add(&r, tk, head + s, e - s, 1, err);
        at = e;
    }
    if (!rc && whole) {
        char *with = NULL;
        size_t s, e;
        rc = dc_chat_render(DC_CHAT_V3, msgs, last + 1, 0, &with, err);
        if (!rc) rc = span(msgs, last, with, &s, &e, err);
        if (!rc && !(rc = add(&r, tk, with + at, s - at, 0, err))) rc = add(&r, tk, with + s, e - s, 1, err);
        free(with);
    } else if (!rc) {
        const char *c = lm->content;
        if (style == DC_CHAT_R1 && !strncmp(c, "<think>", 7)) c += 7 + (c[7] == '\n');
        if (!(rc = add(&r, tk, head + at, strlen(head) - at, 0, err)) && !(rc = add(&r, tk, c, strlen(c), 1, err)))
            rc = add(&r, tk, EOS_TEXT, strlen(EOS_TEXT), 1, err);
    }
    free(head);
    if (rc) {
        free(r.ids), free(r.mask);
        return rc;
    }
    *ids = r.ids, *mask = r.mask, *len = r.n;
    return DC_OK;
}

int convo_prompt(const dc_tokenizer *tk, int style, const char *user, int **ids, int *n, dc_err *err) {
    dc_chat_msg m = {.role = "user", .content = user};
    char *text;
    int rc = dc_chat_render(style, &m, 1, 1, &text, err);
    if (rc) return rc;
    size_t k;
    rc = dc_tokenizer_encode(tk, text, strlen(text), DC_TOK_SPECIAL, ids, &k, err);
    free(text);
    if (!rc) *n = (int)k;
    return rc;
}

int convo_text(const dc_tokenizer *tk, const int *ids, int n, char **text, size_t *len, dc_err *err) {
    if (n > 0 && ids[n - 1] == dc_tokenizer_eos(tk)) n--;
    /* a model's vocabulary may be larger than its tokenizer's (V3: 129,280 rows for
     * 128,815 ids): a sampled id that names no token reads as U+FFFD */
    int *keep = malloc(sizeof(int) * (n > 0 ? n : 1)), k = 0, bad = 0;
    if (!keep) return err_set(err, DC_ENOMEM, "out of memory");
    for (int i = 0; i < n; i++) {
        size_t pl;
        if (dc_tokenizer_piece(tk, ids[i], &pl)) keep[k++] = ids[i];
        else bad++;
    }
    int rc = dc_tokenizer_decode(tk, keep, (size_t)k, 0, text, len, err);
    free(keep);
    if (rc || !bad) return rc;
    char *t = realloc(*text, *len + 3 * (size_t)bad + 1);
    if (!t) return free(*text), *text = NULL, err_set(err, DC_ENOMEM, "out of memory");
    for (int i = 0; i < bad; i++) memcpy(t + *len + 3 * i, "\xef\xbf\xbd", 3);
    *len += 3 * (size_t)bad;
    t[*len] = 0;
    *text = t;
    return DC_OK;
}
