/*
 * oai.c — response bodies in the OpenAI API's shapes (sv.h).
 *
 *   chat.completion        {id, object, created, model, choices: [{index,
 *                          message: {role, content[, reasoning_content]},
 *                          logprobs, finish_reason}], usage}
 *   chat.completion.chunk  one SSE event per delta: "data: {...}\n\n", the
 *                          first with delta.role, then delta.content /
 *                          delta.reasoning_content, the last with an empty
 *                          delta and finish_reason; with include_usage every
 *                          chunk has "usage": null and a last chunk has empty
 *                          choices and the usage; then "data: [DONE]".
 *   text_completion        {id, object, created, model, choices: [{index,
 *                          text, logprobs, finish_reason}], usage}, the same
 *                          object per streamed event.
 *   usage                  {prompt_tokens, completion_tokens, total_tokens,
 *                          prompt_tokens_details: {cached_tokens}}
 *   logprobs               chat: {content: [{token, logprob, bytes,
 *                          top_logprobs: [{token, logprob, bytes}]}]};
 *                          completions: {tokens, token_logprobs,
 *                          top_logprobs: [{token: logprob}], text_offset}.
 * Model text can hold bytes that are not UTF-8 (a token boundary inside a
 * character, or a model that emits garbage); strings put into JSON are made
 * valid first (U+FFFD for each bad byte). Token pieces keep their raw bytes
 * in "bytes".
 */
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>
#include "serve/sv.h"

/* str_lossy: model text (any bytes, NULs included) as a JSON string: made
 * valid UTF-8, then escaped here and put in as a raw item, since cJSON's own
 * strings end at the first NUL */
static cJSON *str_lossy(const char *s, size_t n) {
    buf u = {0}, j = {0};
    utf8_lossy(&u, s, n);
    buf_str(&j, "\"");
    for (size_t i = 0; i < u.n; i++) {
        unsigned char c = (unsigned char)u.s[i];
        if (c == '"' || c == '\\') buf_fmt(&j, "\\%c", c);
        else if (c == '\n') buf_str(&j, "\\n");
        else if (c == '\r') buf_str(&j, "\\r");
        else if (c == '\t') buf_str(&j, "\\t");
        else if (c < 0x20 || c == 0x7f) buf_fmt(&j, "\\u%04x", c);
        else buf_add(&j, &u.s[i], 1);
    }
    buf_str(&j, "\"");
    cJSON *r = j.oom ? cJSON_CreateString("") : cJSON_CreateRaw(j.s);
    buf_free(&u);
    buf_free(&j);
    return r;
}

static char *print(cJSON *o) {
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}

char *oai_error_json(const sv_error *e) {
    cJSON *o = cJSON_CreateObject(), *er = cJSON_AddObjectToObject(o, "error");
    cJSON_AddItemToObject(er, "message", str_lossy(e->message, strlen(e->message)));
    cJSON_AddStringToObject(er, "type", e->type[0] ? e->type : "invalid_request_error");
    if (e->param[0]) cJSON_AddStringToObject(er, "param", e->param);
    else cJSON_AddNullToObject(er, "param");
    if (e->code[0]) cJSON_AddStringToObject(er, "code", e->code);
    else cJSON_AddNullToObject(er, "code");
    return print(o);
}

static cJSON *model_obj(const sv_model_info *mi) {
    cJSON *m = cJSON_CreateObject();
    cJSON_AddStringToObject(m, "id", mi->id);
    cJSON_AddStringToObject(m, "object", "model");
    cJSON_AddNumberToObject(m, "created", (double)mi->created);
    cJSON_AddStringToObject(m, "owned_by", "deepc");
    cJSON_AddNumberToObject(m, "context_length", mi->ctx);
    return m;
}

char *oai_models_json(const sv_model_info *mi) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "object", "list");
    cJSON_AddItemToArray(cJSON_AddArrayToObject(o, "data"), model_obj(mi));
    return print(o);
}

char *oai_model_json(const sv_model_info *mi) { return print(model_obj(mi)); }

static cJSON *head(const sv_meta *m, const char *object) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", m->id);
    cJSON_AddStringToObject(o, "object", object);
    cJSON_AddNumberToObject(o, "created", (double)m->created);
    cJSON_AddStringToObject(o, "model", m->model);
    cJSON_AddNullToObject(o, "system_fingerprint");
    return o;
}

static cJSON *usage_obj(const sv_usage *u) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "prompt_tokens", u->prompt);
    cJSON_AddNumberToObject(o, "completion_tokens", u->completion);
    cJSON_AddNumberToObject(o, "total_tokens", u->prompt + u->completion);
    cJSON_AddNumberToObject(cJSON_AddObjectToObject(o, "prompt_tokens_details"), "cached_tokens", u->cached);
    return o;
}

static void sse(buf *out, cJSON *o) {
    char *s = print(o);
    if (!s) {
        out->oom = 1;
        return;
    }
    buf_str(out, "data: ");
    buf_str(out, s);
    buf_str(out, "\n\n");
    free(s);
}

void oai_chunk(buf *out, const sv_meta *m, int index, int first, const char *content, size_t n_content,
               const char *reasoning, size_t n_reasoning, const char *finish, void *logprobs) {
    int chat = m->kind == SV_CHAT;
    cJSON *o = head(m, chat ? "chat.completion.chunk" : "text_completion");
    cJSON *ch = cJSON_CreateObject();
    cJSON_AddItemToArray(cJSON_AddArrayToObject(o, "choices"), ch);
    cJSON_AddNumberToObject(ch, "index", index);
    if (chat) {
        cJSON *d = cJSON_AddObjectToObject(ch, "delta");
        if (first) cJSON_AddStringToObject(d, "role", "assistant");
        if (n_content || (first && !n_reasoning)) cJSON_AddItemToObject(d, "content", str_lossy(content, n_content));
        if (n_reasoning) cJSON_AddItemToObject(d, "reasoning_content", str_lossy(reasoning, n_reasoning));
    } else {
        cJSON_AddItemToObject(ch, "text", str_lossy(content, n_content));
    }
    if (logprobs) cJSON_AddItemToObject(ch, "logprobs", logprobs);
    else cJSON_AddNullToObject(ch, "logprobs");
    if (finish) cJSON_AddStringToObject(ch, "finish_reason", finish);
    else cJSON_AddNullToObject(ch, "finish_reason");
    sse(out, o);
}

void oai_usage_chunk(buf *out, const sv_meta *m, const sv_usage *u) {
    cJSON *o = head(m, m->kind == SV_CHAT ? "chat.completion.chunk" : "text_completion");
    cJSON_AddArrayToObject(o, "choices");
    cJSON_AddItemToObject(o, "usage", usage_obj(u));
    sse(out, o);
}

void oai_done(buf *out) { buf_str(out, "data: [DONE]\n\n"); }

char *oai_final(const sv_meta *m, sv_choice_out *ch, int n, const sv_usage *u) {
    int chat = m->kind == SV_CHAT;
    cJSON *o = head(m, chat ? "chat.completion" : "text_completion");
    cJSON *arr = cJSON_AddArrayToObject(o, "choices");
    for (int i = 0; i < n; i++) {
        cJSON *c = cJSON_CreateObject();
        cJSON_AddItemToArray(arr, c);
        cJSON_AddNumberToObject(c, "index", i);
        if (chat) {
            cJSON *msg = cJSON_AddObjectToObject(c, "message");
            cJSON_AddStringToObject(msg, "role", "assistant");
            cJSON_AddItemToObject(msg, "content", str_lossy(ch[i].content.s ? ch[i].content.s : "", ch[i].content.n));
            if (ch[i].reasoning.s)
                cJSON_AddItemToObject(msg, "reasoning_content", str_lossy(ch[i].reasoning.s, ch[i].reasoning.n));
        } else {
            cJSON_AddItemToObject(c, "text", str_lossy(ch[i].content.s ? ch[i].content.s : "", ch[i].content.n));
        }
        if (ch[i].logprobs) cJSON_AddItemToObject(c, "logprobs", ch[i].logprobs);
        else cJSON_AddNullToObject(c, "logprobs");
        ch[i].logprobs = NULL;
        cJSON_AddStringToObject(c, "finish_reason", ch[i].finish ? ch[i].finish : "stop");
    }
    cJSON_AddItemToObject(o, "usage", usage_obj(u));
    return print(o);
}

/* ---------------------------------------------------------------- logprobs */

void *oai_logprobs_new(int kind) {
    cJSON *o = cJSON_CreateObject();
    if (kind == SV_CHAT) {
        cJSON_AddArrayToObject(o, "content");
    } else {
        cJSON_AddArrayToObject(o, "tokens");
        cJSON_AddArrayToObject(o, "token_logprobs");
        cJSON_AddArrayToObject(o, "top_logprobs");
        cJSON_AddArrayToObject(o, "text_offset");
    }
    return o;
}

static cJSON *token_str(const dc_tokenizer *tok, int id, cJSON **bytes) {
    size_t n = 0;
    const char *p = dc_tokenizer_piece(tok, id, &n);
    if (!p) p = "", n = 0;
    if (bytes) {
        *bytes = cJSON_CreateArray();
        for (size_t i = 0; i < n; i++) cJSON_AddItemToArray(*bytes, cJSON_CreateNumber((unsigned char)p[i]));
    }
    return str_lossy(p, n);
}

static cJSON *chat_entry(const dc_tokenizer *tok, int id, float lp) {
    cJSON *e = cJSON_CreateObject(), *bytes;
    cJSON_AddItemToObject(e, "token", token_str(tok, id, &bytes));
    cJSON_AddNumberToObject(e, "logprob", lp);
    cJSON_AddItemToObject(e, "bytes", bytes);
    return e;
}

void oai_logprobs_add(void *lp, int kind, const dc_tokenizer *tok, int id, float logprob, const int *top_ids,
                      const float *top_lps, int k, int text_offset) {
    cJSON *o = lp;
    if (kind == SV_CHAT) {
        cJSON *e = chat_entry(tok, id, logprob), *top = cJSON_AddArrayToObject(e, "top_logprobs");
        for (int i = 0; i < k; i++) cJSON_AddItemToArray(top, chat_entry(tok, top_ids[i], top_lps[i]));
        cJSON_AddItemToArray(cJSON_GetObjectItem(o, "content"), e);
        return;
    }
    cJSON_AddItemToArray(cJSON_GetObjectItem(o, "tokens"), token_str(tok, id, NULL));
    cJSON_AddItemToArray(cJSON_GetObjectItem(o, "token_logprobs"), cJSON_CreateNumber(logprob));
    cJSON *top = cJSON_CreateObject();
    for (int i = 0; i < k; i++) { /* keyed by the token's text (a NUL byte shows as U+FFFD there) */
        size_t n = 0;
        const char *p = dc_tokenizer_piece(tok, top_ids[i], &n);
        buf key = {0};
        utf8_lossy(&key, p ? p : "", p ? n : 0);
        for (size_t z; key.s && (z = strlen(key.s)) < key.n;) {
            buf fixed = {0};
            buf_add(&fixed, key.s, z);
            buf_str(&fixed, "\xEF\xBF\xBD");
            buf_add(&fixed, key.s + z + 1, key.n - z - 1);
            buf_free(&key);
            key = fixed;
        }
        if (key.s && !cJSON_GetObjectItemCaseSensitive(top, key.s)) cJSON_AddNumberToObject(top, key.s, top_lps[i]);
        buf_free(&key);
    }
    cJSON_AddItemToArray(cJSON_GetObjectItem(o, "top_logprobs"), top);
    cJSON_AddItemToArray(cJSON_GetObjectItem(o, "text_offset"), cJSON_CreateNumber(text_offset));
}

int oai_logprobs_count(const void *lp, int kind) {
    if (!lp) return 0;
    return cJSON_GetArraySize(cJSON_GetObjectItem(lp, kind == SV_CHAT ? "content" : "tokens"));
}

void oai_logprobs_free(void *lp) { cJSON_Delete(lp); }
