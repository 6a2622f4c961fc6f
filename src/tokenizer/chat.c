/*
 * chat.c — DeepSeek-V3 / R1 chat templates in C (dc_chat_render, deepc.h).
 *
 * This is the Jinja chat_template of deepseek-v3/tokenizer_config.json
 * written out as a state machine, quirks included, so the text (and so the
 * ids) match what Hugging Face's apply_chat_template gives:
 *   - BOS, then every system message joined by "\n\n", wherever they stand;
 *   - user turns: "<｜User｜>" + content;
 *   - assistant turns: "<｜Assistant｜>" + content + EOS, where the content
 *     keeps only what follows its last "</think>" (earlier reasoning dropped);
 *   - tool calls: the first call of the whole conversation opens with
 *     "<｜Assistant｜>[content]<｜tool▁calls▁begin｜>"; every later call, even in
 *     a later turn, is "\n<｜tool▁call▁begin｜>..." (the template's is_first
 *     flag is never reset); each call is type<｜tool▁sep｜>name, then the
 *     arguments in a ```json fence;
 *   - tool results: "<｜tool▁outputs▁begin｜>" before the first one of the
 *     conversation only, "<｜tool▁outputs▁end｜>" before the next assistant
 *     turn (which then gets no "<｜Assistant｜>" and keeps its reasoning) or at
 *     the very end;
 *   - the generation prompt "<｜Assistant｜>" (R1: "<｜Assistant｜><think>\n",
 *     as DeepSeek's later R1 template has it) unless the last turn was a tool.
 * Roles other than system/user/assistant/tool are refused (the template
 * would drop them silently).
 */
#include <stdlib.h>
#include <string.h>
#include "base/err.h"
#include "deepc.h"

#define BOS "<｜begin▁of▁sentence｜>"
#define EOS "<｜end▁of▁sentence｜>"
#define USER "<｜User｜>"
#define ASSISTANT "<｜Assistant｜>"

typedef struct sb {
    char *s;
    size_t n, cap;
    int oom;
} sb;

static void sb_add(sb *b, const char *s) {
    size_t k = strlen(s);
    if (b->oom) return;
    if (b->n + k + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + k + 1) cap *= 2;
        char *ns = realloc(b->s, cap);
        if (!ns) {
            b->oom = 1;
            return;
        }
        b->s = ns;
        b->cap = cap;
    }
    memcpy(b->s + b->n, s, k + 1);
    b->n += k;
}

/* after_think: the text after the last "</think>", or all of it. */
static const char *after_think(const char *c) {
    const char *last = NULL;
    for (const char *p = c; (p = strstr(p, "</think>")); p += 8) last = p;
    return last ? last + 8 : c;
}

static void add_call(sb *b, const dc_chat_tool_call *tc) {
    sb_add(b, tc->type ? tc->type : "function");
    sb_add(b, "<｜tool▁sep｜>");
    sb_add(b, tc->name ? tc->name : "");
    sb_add(b, "\n```json\n");
    sb_add(b, tc->arguments ? tc->arguments : "");
    sb_add(b, "\n```<｜tool▁call▁end｜>");
}

typedef struct chat_state {
    int is_first, is_tool, is_output_first;
} chat_state;

static void render_tool_calls(sb *b, chat_state *ns, const dc_chat_msg *m) {
    ns->is_tool = 0;
    for (int k = 0; k < m->n_tool_calls; k++) {
        if (!ns->is_first) {
            sb_add(b, ASSISTANT);
            if (m->content) sb_add(b, m->content);
            sb_add(b, "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>");
            ns->is_first = 1;
        } else {
            sb_add(b, "\n<｜tool▁call▁begin｜>");
        }
        add_call(b, &m->tool_calls[k]);
    }
    sb_add(b, "<｜tool▁calls▁end｜>" EOS);
}

static int render_msg(sb *b, chat_state *ns, const dc_chat_msg *m, int i, dc_err *err) {
    const char *r = m->role ? m->role : "";
    int calls = strcmp(r, "assistant") == 0 && m->n_tool_calls > 0;
    if (!m->content && !calls) return err_set(err, DC_EARG, "chat: message %d (%s) has no content", i, r);
    if (calls && !m->tool_calls) return err_set(err, DC_EARG, "chat: message %d: tool_calls is NULL", i);
    if (strcmp(r, "system") == 0) return DC_OK; /* gathered up front */
    if (strcmp(r, "user") == 0) {
        ns->is_tool = 0;
        sb_add(b, USER);
        sb_add(b, m->content);
    } else if (calls) {
        render_tool_calls(b, ns, m);
    } else if (strcmp(r, "assistant") == 0) {
        if (ns->is_tool) {
            sb_add(b, "<｜tool▁outputs▁end｜>");
            sb_add(b, m->content);
            ns->is_tool = 0;
        } else {
            sb_add(b, ASSISTANT);
            sb_add(b, after_think(m->content));
        }
        sb_add(b, EOS);
    } else if (strcmp(r, "tool") == 0) {
        ns->is_tool = 1;
        sb_add(b, ns->is_output_first ? "<｜tool▁outputs▁begin｜><｜tool▁output▁begin｜>" : "<｜tool▁output▁begin｜>");
        ns->is_output_first = 0;
        sb_add(b, m->content);
        sb_add(b, "<｜tool▁output▁end｜>");
    } else {
        return err_set(err, DC_EARG, "chat: message %d has role '%.40s' (system, user, assistant or tool)", i, r);
    }
    return DC_OK;
}

int dc_chat_render(int style, const dc_chat_msg *msgs, int n, int add_generation_prompt, char **out, dc_err *err) {
    *out = NULL;
    if (style != DC_CHAT_V3 && style != DC_CHAT_R1) return err_set(err, DC_EARG, "chat: unknown style %d", style);
    if (n < 0 || (n && !msgs)) return err_set(err, DC_EARG, "chat: %d messages at NULL", n);
    sb b = {0};
    sb_add(&b, BOS);
    int first_sys = 1;
    for (int i = 0; i < n; i++) {
        if (!msgs[i].role || strcmp(msgs[i].role, "system") != 0) continue;
        if (!msgs[i].content) {
            free(b.s);
            return err_set(err, DC_EARG, "chat: system message %d has no content", i);
        }
        if (!first_sys) sb_add(&b, "\n\n");
        sb_add(&b, msgs[i].content);
        first_sys = 0;
    }
    chat_state ns = {0, 0, 1};
    for (int i = 0; i < n; i++) {
        int rc = render_msg(&b, &ns, &msgs[i], i, err);
        if (rc) {
            free(b.s);
            return rc;
        }
    }
    if (ns.is_tool) sb_add(&b, "<｜tool▁outputs▁end｜>");
    if (add_generation_prompt && !ns.is_tool) sb_add(&b, style == DC_CHAT_R1 ? ASSISTANT "<think>\n" : ASSISTANT);
    if (b.oom) {
        free(b.s);
        return err_set(err, DC_ENOMEM, "chat: out of memory");
    }
    *out = b.s;
    return DC_OK;
}
