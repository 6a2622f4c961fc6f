/*
 * think.c — R1's reasoning split off its answer, as DeepSeek's API does it.
 *
 * With the R1 template the generation prompt ends in "<think>\n", so the
 * model's text starts inside its reasoning: everything up to "</think>" goes
 * to reasoning_content, the marker itself nowhere, and what follows (less the
 * newlines right after the marker) to content. Text arrives in pieces (one
 * token's bytes at a time) and the marker may straddle pieces, so a tail
 * that matches the start of "</think>" is held back (at most 7 bytes). The
 * marker has no proper prefix that is also its suffix ('<' occurs once), so
 * on a mismatch the held bytes are plain reasoning and only the current byte
 * can start a new match.
 */
#include <string.h>
#include "serve/sv.h"

static const char MARK[] = "</think>";
#define MARK_LEN 8

void sv_think_init(sv_think *t, int in_think) {
    memset(t, 0, sizeof *t);
    t->in_think = in_think;
}

/* content_push: the answer's bytes, less leading newlines just after the marker */
static void content_push(sv_think *t, const char *s, size_t n, buf *content) {
    size_t i = 0;
    if (t->after) {
        while (i < n && (s[i] == '\n' || s[i] == '\r')) i++;
        if (i < n) t->after = 0;
    }
    buf_add(content, s + i, n - i);
}

void sv_think_push(sv_think *t, const char *text, size_t n, buf *reasoning, buf *content) {
    size_t i = 0, run = 0; /* text[run, i) is plain reasoning not yet appended */
    for (; i < n && t->in_think; i++) {
        char ch = text[i];
        if (ch == MARK[t->n_hold]) {
            buf_add(reasoning, text + run, i - run);
            run = i + 1;
            t->hold[t->n_hold++] = ch;
            if (t->n_hold == MARK_LEN) t->in_think = 0, t->after = 1, t->n_hold = 0;
            continue;
        }
        if (t->n_hold) { /* a false start: the held bytes were reasoning after all */
            buf_add(reasoning, text + run, i - run);
            buf_add(reasoning, t->hold, t->n_hold);
            t->n_hold = 0;
            run = i;
            if (ch == MARK[0]) {
                t->hold[t->n_hold++] = ch;
                run = i + 1;
            }
        }
    }
    if (t->in_think) {
        buf_add(reasoning, text + run, i - run);
        return;
    }
    content_push(t, text + i, n - i, content);
}

void sv_think_flush(sv_think *t, buf *reasoning, buf *content) {
    (void)content;
    if (t->in_think && t->n_hold) buf_add(reasoning, t->hold, t->n_hold);
    t->n_hold = 0;
}
