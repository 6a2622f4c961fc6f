/*
 * request.c — OpenAI request bodies to a checked sv_req (sv.h).
 *
 * POST /v1/chat/completions and /v1/completions, with OpenAI's field names
 * and types (https://platform.openai.com/docs/api-reference/chat/create):
 *   messages [{role, content (string or [{type:"text", text}]), tool_calls,
 *   tool_call_id}], prompt (string, [string], [int], [[int]]), model,
 *   max_tokens / max_completion_tokens, temperature, top_p, seed, stop
 *   (string or array), n, stream, stream_options.include_usage, logprobs
 *   (chat: bool + top_logprobs 0..20; completions: int 0..5), echo; and
 *   llama.cpp's top_k, min_p, repeat_penalty, ignore_eos. presence_penalty and
 *   frequency_penalty (-2..2) apply over the last 64 tokens, as llama-server's; unknown fields
 *   are ignored, as most OpenAI-compatible servers do.
 * Every problem is an HTTP 4xx with {"error": {message, type, param, code}}:
 * the body not UTF-8 or not JSON, a field of the wrong type or out of range,
 * an unknown model (404), no messages, a prompt that does not fit the
 * context or max_tokens that would overflow it (context_length_exceeded).
 * Defaults not given by the client are dc_sampler_defaults (as deepc
 * generate has them), so a request and `deepc generate` with the same
 * temperature and seed draw the same tokens.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>
#include "serve/sv.h"

int sv_fail(sv_error *e, int status, const char *type, const char *param, const char *code, const char *fmt, ...) {
    e->status = status;
    snprintf(e->type, sizeof e->type, "%s", type);
    snprintf(e->param, sizeof e->param, "%s", param ? param : "");
    snprintf(e->code, sizeof e->code, "%s", code ? code : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof e->message, fmt, ap);
    va_end(ap);
    return -1;
}

#define BAD(e, param, code, ...) sv_fail(e, 400, "invalid_request_error", param, code, __VA_ARGS__)

static const char *type_name(const cJSON *v) {
    if (cJSON_IsString(v)) return "a string";
    if (cJSON_IsNumber(v)) return "a number";
    if (cJSON_IsBool(v)) return "a boolean";
    if (cJSON_IsArray(v)) return "an array";
    if (cJSON_IsObject(v)) return "an object";
    return "null";
}

static int wrong_type(sv_error *e, const char *param, const char *want, const cJSON *v) {
    return BAD(e, param, "invalid_type", "Invalid type for '%s': expected %s, but got %s instead.", param, want,
               type_name(v));
}

/* field: the member name of o, NULL when absent or null (optional fields accept null) */
static const cJSON *field(const cJSON *o, const char *name) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    return v && !cJSON_IsNull(v) ? v : NULL;
}

static int get_num(const cJSON *o, const char *name, double lo, double hi, double *out, sv_error *e) {
    const cJSON *v = field(o, name);
    if (!v) return 0;
    if (!cJSON_IsNumber(v)) return wrong_type(e, name, "a number", v);
    if (!(v->valuedouble >= lo && v->valuedouble <= hi))
        return BAD(e, name, "invalid_value", "Invalid '%s': expected a value in [%g, %g], but got %g instead.", name, lo,
                   hi, v->valuedouble);
    *out = v->valuedouble;
    return 1;
}

static int get_int(const cJSON *o, const char *name, double lo, double hi, long long *out, sv_error *e) {
    const cJSON *v = field(o, name);
    if (!v) return 0;
    if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble))
        return wrong_type(e, name, "an integer", v);
    if (!(v->valuedouble >= lo && v->valuedouble <= hi))
        return BAD(e, name, "invalid_value", "Invalid '%s': expected an integer in [%.0f, %.0f], but got %.0f instead.",
                   name, lo, hi, v->valuedouble);
    *out = (long long)v->valuedouble;
    return 1;
}

static int get_bool(const cJSON *o, const char *name, int *out, sv_error *e) {
    const cJSON *v = field(o, name);
    if (!v) return 0;
    if (!cJSON_IsBool(v)) return wrong_type(e, name, "a boolean", v);
    *out = cJSON_IsTrue(v);
    return 1;
}

/* ---------------------------------------------------------------- sampling, stop, n */

static int parse_sampling(const cJSON *o, sv_req *r, sv_error *e) {
    double d;
    long long k;
    int rc;
    dc_sampler_defaults(&r->sp);
    if ((rc = get_num(o, "temperature", 0, 2, &d, e)) < 0) return -1;
    if (rc) r->sp.temperature = (float)d;
    if ((rc = get_num(o, "top_p", 0, 1, &d, e)) < 0) return -1;
    if (rc) {
        r->sp.top_p = d > 0 ? (float)d : 1.0f;
        if (d == 0) r->sp.temperature = 0; /* only the likeliest token has mass 0 */
    }
    if ((rc = get_int(o, "top_k", 0, 1 << 30, &k, e)) < 0) return -1;
    if (rc) r->sp.top_k = (int)k;
    if ((rc = get_num(o, "min_p", 0, 1, &d, e)) < 0) return -1;
    if (rc) r->sp.min_p = (float)d;
    const char *rp = field(o, "repetition_penalty") ? "repetition_penalty" : "repeat_penalty";
    if ((rc = get_num(o, rp, 1e-3, 100, &d, e)) < 0) return -1;
    if (rc) r->sp.repeat_penalty = (float)d;
    if ((rc = get_num(o, "presence_penalty", -2, 2, &d, e)) < 0) return -1;
    if (rc) r->sp.presence_penalty = (float)d;
    if ((rc = get_num(o, "frequency_penalty", -2, 2, &d, e)) < 0) return -1;
    if (rc) r->sp.frequency_penalty = (float)d;
    if (get_bool(o, "ignore_eos", &r->ignore_eos, e) < 0) return -1;
    if ((rc = get_int(o, "seed", -9.2e18, 9.2e18, &k, e)) < 0) return -1;
    if (rc) r->sp.seed = (uint64_t)k, r->seeded = 1;
    return 0;
}

static int add_stop(sv_req *r, const cJSON *s, sv_error *e) {
    if (!s->valuestring[0]) return BAD(e, "stop", "invalid_value", "Invalid 'stop': an empty string never matches.");
    if (!(r->stops[r->n_stops] = strdup(s->valuestring))) return sv_fail(e, 500, "server_error", NULL, NULL, "out of memory");
    r->n_stops++;
    return 0;
}

static int parse_stop(const cJSON *o, sv_req *r, sv_error *e) {
    const cJSON *v = field(o, "stop");
    if (!v) return 0;
    if (cJSON_IsString(v)) return add_stop(r, v, e);
    if (!cJSON_IsArray(v)) return wrong_type(e, "stop", "a string or an array of strings", v);
    int n = cJSON_GetArraySize(v);
    if (n > SV_MAX_STOPS)
        return BAD(e, "stop", "invalid_value", "Invalid 'stop': at most %d stop sequences, but got %d.", SV_MAX_STOPS, n);
    const cJSON *it;
    cJSON_ArrayForEach(it, v) {
        if (!cJSON_IsString(it)) return wrong_type(e, "stop", "an array of strings", it);
        if (add_stop(r, it, e)) return -1;
    }
    return 0;
}

static int parse_stream(const cJSON *o, sv_req *r, sv_error *e) {
    if (get_bool(o, "stream", &r->stream, e) < 0) return -1;
    const cJSON *so = field(o, "stream_options");
    if (!so) return 0;
    if (!cJSON_IsObject(so)) return wrong_type(e, "stream_options", "an object", so);
    if (!r->stream)
        return BAD(e, "stream_options", "invalid_value",
                   "The 'stream_options' parameter is only allowed when 'stream' is enabled.");
    const cJSON *iu = field(so, "include_usage");
    if (iu && !cJSON_IsBool(iu)) return wrong_type(e, "stream_options.include_usage", "a boolean", iu);
    r->include_usage = iu && cJSON_IsTrue(iu);
    return 0;
}

static int parse_logprobs(const cJSON *o, int kind, sv_req *r, sv_error *e) {
    long long k = 0;
    if (kind == SV_COMPLETION) { /* logprobs: how many alternatives, 0..5 */
        int rc = get_int(o, "logprobs", 0, 5, &k, e);
        if (rc < 0) return -1;
        r->logprobs = rc, r->top_logprobs = (int)k;
        return 0;
    }
    if (get_bool(o, "logprobs", &r->logprobs, e) < 0) return -1;
    int rc = get_int(o, "top_logprobs", 0, SV_MAX_TOP_LOGPROBS, &k, e);
    if (rc < 0) return -1;
    if (rc && !r->logprobs && k > 0)
        return BAD(e, "top_logprobs", "invalid_value", "'top_logprobs' needs 'logprobs' to be true.");
    r->top_logprobs = (int)k;
    return 0;
}

/* ---------------------------------------------------------------- chat messages */

/* msg_content: a message's text: a string, or the text parts of an array joined by "\n" */
static int msg_content(const cJSON *m, int i, char **out, sv_error *e) {
    char param[64];
    snprintf(param, sizeof param, "messages[%d].content", i);
    const cJSON *c = field(m, "content");
    *out = NULL;
    if (!c) return 0;
    if (cJSON_IsString(c)) return (*out = strdup(c->valuestring)) ? 0 : sv_fail(e, 500, "server_error", NULL, NULL, "out of memory");
    if (!cJSON_IsArray(c)) return wrong_type(e, param, "a string or an array of content parts", c);
    buf b = {0};
    const cJSON *p;
    int k = 0;
    cJSON_ArrayForEach(p, c) {
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(p, "type");
        const cJSON *x = cJSON_GetObjectItemCaseSensitive(p, "text");
        if (!cJSON_IsObject(p) || !cJSON_IsString(t) || strcmp(t->valuestring, "text") || !cJSON_IsString(x)) {
            buf_free(&b);
            return BAD(e, param, "invalid_value", "Invalid '%s[%d]': only {\"type\": \"text\", \"text\": ...} parts are supported.",
                       param, k);
        }
        if (k++) buf_str(&b, "\n");
        buf_str(&b, x->valuestring);
    }
    if (!k) buf_str(&b, "");
    if (b.oom) {
        buf_free(&b);
        return sv_fail(e, 500, "server_error", NULL, NULL, "out of memory");
    }
    *out = b.s;
    return 0;
}

static int msg_tool_calls(const cJSON *m, int i, dc_chat_msg *cm, sv_error *e) {
    const cJSON *tc = field(m, "tool_calls");
    char param[64];
    snprintf(param, sizeof param, "messages[%d].tool_calls", i);
    if (!tc) return 0;
    if (!cJSON_IsArray(tc)) return wrong_type(e, param, "an array", tc);
    int n = cJSON_GetArraySize(tc), k = 0;
    dc_chat_tool_call *calls = calloc(n ? n : 1, sizeof *calls);
    if (!calls) return sv_fail(e, 500, "server_error", NULL, NULL, "out of memory");
    cm->tool_calls = calls; /* freed by the caller */
    const cJSON *c;
    cJSON_ArrayForEach(c, tc) {
        const cJSON *f = cJSON_GetObjectItemCaseSensitive(c, "function");
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(f, "name");
        const cJSON *args = cJSON_GetObjectItemCaseSensitive(f, "arguments");
        const cJSON *type = cJSON_GetObjectItemCaseSensitive(c, "type");
        if (!cJSON_IsObject(f) || !cJSON_IsString(name) || !cJSON_IsString(args))
            return BAD(e, param, "invalid_value", "Invalid '%s[%d]': expected {\"type\": \"function\", \"function\": "
                       "{\"name\": string, \"arguments\": string}}.", param, k);
        calls[k].type = cJSON_IsString(type) ? type->valuestring : "function";
        calls[k].name = name->valuestring;
        calls[k].arguments = args->valuestring;
        k++;
    }
    cm->n_tool_calls = k;
    return 0;
}

static int parse_message(const cJSON *m, int i, dc_chat_msg *cm, sv_error *e) {
    char param[64];
    snprintf(param, sizeof param, "messages[%d]", i);
    if (!cJSON_IsObject(m)) return wrong_type(e, param, "an object", m);
    const cJSON *role = cJSON_GetObjectItemCaseSensitive(m, "role");
    snprintf(param, sizeof param, "messages[%d].role", i);
    if (!role) return BAD(e, param, "missing_required_parameter", "Missing required parameter: '%s'.", param);
    if (!cJSON_IsString(role)) return wrong_type(e, param, "a string", role);
    const char *r = role->valuestring;
    if (!strcmp(r, "developer")) r = "system";
    if (strcmp(r, "system") && strcmp(r, "user") && strcmp(r, "assistant") && strcmp(r, "tool"))
        return BAD(e, param, "invalid_value", "Invalid value for '%s': '%.40s' (system, developer, user, assistant or tool).",
                   param, role->valuestring);
    cm->role = r;
    char *content;
    if (msg_content(m, i, &content, e)) return -1;
    cm->content = content;
    if (!strcmp(r, "assistant") && msg_tool_calls(m, i, cm, e)) return -1;
    if (!content && !cm->n_tool_calls) {
        snprintf(param, sizeof param, "messages[%d].content", i);
        return BAD(e, param, "missing_required_parameter", "Missing required parameter: '%s'.", param);
    }
    return 0;
}

static void free_msgs(dc_chat_msg *msgs, int n) {
    for (int i = 0; i < n; i++) {
        free((char *)msgs[i].content);
        free((void *)msgs[i].tool_calls);
    }
    free(msgs);
}

static int encode(const sv_model_info *mi, const char *text, int flags, sv_prompt *p, sv_error *e) {
    dc_err err = {0};
    size_t n = 0;
    if (dc_tokenizer_encode(mi->tok, text, strlen(text), flags, &p->ids, &n, &err))
        return sv_fail(e, 500, "server_error", NULL, NULL, "tokenizer: %s", err.msg);
    p->n = (int)n;
    for (int i = 0; i < p->n; i++) /* a tokenizer larger than the model's vocabulary */
        if (p->ids[i] < 0 || p->ids[i] >= mi->vocab)
            return BAD(e, NULL, "invalid_value", "The text encodes to token id %d, outside this model's vocabulary of %d "
                       "(its tokenizer is larger than the model).", p->ids[i], mi->vocab);
    return 0;
}

static int parse_messages(const cJSON *o, const sv_model_info *mi, sv_req *r, sv_error *e) {
    const cJSON *ms = cJSON_GetObjectItemCaseSensitive(o, "messages");
    if (!ms) return BAD(e, "messages", "missing_required_parameter", "Missing required parameter: 'messages'.");
    if (!cJSON_IsArray(ms)) return wrong_type(e, "messages", "an array", ms);
    int n = cJSON_GetArraySize(ms);
    if (!n) return BAD(e, "messages", "empty_array", "Invalid 'messages': empty array. Expected an array with minimum length 1.");
    dc_chat_msg *msgs = calloc(n, sizeof *msgs);
    if (!msgs) return sv_fail(e, 500, "server_error", NULL, NULL, "out of memory");
    int i = 0, rc = 0;
    const cJSON *m;
    cJSON_ArrayForEach(m, ms) {
        if ((rc = parse_message(m, i, &msgs[i], e))) break;
        i++;
    }
    char *text = NULL;
    dc_err err = {0};
    if (!rc && dc_chat_render(mi->chat_style, msgs, n, 1, &text, &err))
        rc = BAD(e, "messages", "invalid_value", "The chat template refused the messages: %s", err.msg);
    free_msgs(msgs, n);
    if (rc) return -1;
    r->prompts = calloc(1, sizeof *r->prompts);
    if (!r->prompts) {
        free(text);
        return sv_fail(e, 500, "server_error", NULL, NULL, "out of memory");
    }
    r->n_prompts = 1;
    rc = encode(mi, text, DC_TOK_SPECIAL, &r->prompts[0], e);
    free(text);
    r->think = mi->chat_style == DC_CHAT_R1 && mi->split_think;
    return rc;
}

/* ---------------------------------------------------------------- completion prompts */

static int ids_prompt(const cJSON *a, const char *param, const sv_model_info *mi, sv_prompt *p, sv_error *e) {
    int n = cJSON_GetArraySize(a), k = 0;
    if (!n) return BAD(e, param, "empty_array", "Invalid '%s': an empty list of token ids.", param);
    if (!(p->ids = malloc(sizeof(int) * n))) return sv_fail(e, 500, "server_error", NULL, NULL, "out of memory");
    const cJSON *t;
    cJSON_ArrayForEach(t, a) {
        if (!cJSON_IsNumber(t) || t->valuedouble != floor(t->valuedouble))
            return wrong_type(e, param, "an array of integer token ids", t);
        if (t->valuedouble < 0 || t->valuedouble >= mi->vocab)
            return BAD(e, param, "invalid_value", "Invalid '%s[%d]': token id %.0f is outside the vocabulary (0..%d).",
                       param, k, t->valuedouble, mi->vocab - 1);
        p->ids[k++] = (int)t->valuedouble;
    }
    p->n = k;
    char *text = NULL;
    size_t len;
    dc_err err = {0};
    if (dc_tokenizer_decode(mi->tok, p->ids, p->n, 0, &text, &len, &err))
        return BAD(e, param, "invalid_value", "Invalid '%s': %s", param, err.msg);
    p->text = text;
    return 0;
}

static int text_prompt(const char *s, const sv_model_info *mi, sv_prompt *p, sv_error *e) {
    if (!(p->text = strdup(s))) return sv_fail(e, 500, "server_error", NULL, NULL, "out of memory");
    return encode(mi, s, DC_TOK_SPECIAL | DC_TOK_BOS, p, e);
}

static int parse_prompt(const cJSON *o, const sv_model_info *mi, sv_req *r, sv_error *e) {
    const cJSON *pr = cJSON_GetObjectItemCaseSensitive(o, "prompt");
    if (!pr) return BAD(e, "prompt", "missing_required_parameter", "Missing required parameter: 'prompt'.");
    if (!cJSON_IsString(pr) && !cJSON_IsArray(pr))
        return wrong_type(e, "prompt", "a string, an array of strings or of token ids", pr);
    int batch = cJSON_IsArray(pr) && cJSON_GetArraySize(pr) &&
                (cJSON_IsString(pr->child) || cJSON_IsArray(pr->child));
    int n = batch ? cJSON_GetArraySize(pr) : 1;
    if (cJSON_IsArray(pr) && !cJSON_GetArraySize(pr))
        return BAD(e, "prompt", "empty_array", "Invalid 'prompt': empty array.");
    if (!(r->prompts = calloc(n, sizeof *r->prompts))) return sv_fail(e, 500, "server_error", NULL, NULL, "out of memory");
    r->n_prompts = n;
    if (!batch) return cJSON_IsString(pr) ? text_prompt(pr->valuestring, mi, r->prompts, e)
                                          : ids_prompt(pr, "prompt", mi, r->prompts, e);
    int i = 0;
    const cJSON *p;
    cJSON_ArrayForEach(p, pr) {
        char param[32];
        snprintf(param, sizeof param, "prompt[%d]", i);
        int rc = cJSON_IsString(p) ? text_prompt(p->valuestring, mi, &r->prompts[i], e)
                 : cJSON_IsArray(p) ? ids_prompt(p, param, mi, &r->prompts[i], e)
                                    : wrong_type(e, param, "a string or an array of token ids", p);
        if (rc) return -1;
        i++;
    }
    return 0;
}

/* ---------------------------------------------------------------- limits */

static int parse_limits(const cJSON *o, const sv_model_info *mi, sv_req *r, sv_error *e) {
    long long k;
    int rc, longest = 0;
    for (int i = 0; i < r->n_prompts; i++)
        if (r->prompts[i].n > longest) longest = r->prompts[i].n;
    if (longest + 1 > mi->ctx)
        return BAD(e, r->kind == SV_CHAT ? "messages" : "prompt", "context_length_exceeded",
                   "This model's maximum context length is %d tokens. However, your %s resulted in %d tokens, "
                   "leaving no room for an answer.", mi->ctx, r->kind == SV_CHAT ? "messages" : "prompt", longest);
    const char *mt = field(o, "max_completion_tokens") ? "max_completion_tokens" : "max_tokens";
    if ((rc = get_int(o, mt, 1, 1e18, &k, e)) < 0) return -1;
    r->max_tokens = mi->ctx - longest;
    if (rc && k > r->max_tokens)
        return BAD(e, mt, "context_length_exceeded",
                   "This model's maximum context length is %d tokens. However, you requested %lld tokens (%d in the "
                   "%s, %lld in the completion). Please reduce the length of the %s or completion.", mi->ctx,
                   longest + k, longest, r->kind == SV_CHAT ? "messages" : "prompt", k,
                   r->kind == SV_CHAT ? "messages" : "prompt");
    if (rc) r->max_tokens = (int)k;
    if ((rc = get_int(o, "n", 1, 1 << 20, &k, e)) < 0) return -1;
    r->n = rc ? (int)k : 1;
    if ((long long)r->n * r->n_prompts > mi->max_n)
        return BAD(e, "n", "invalid_value", "Invalid 'n': %d choices for %d prompt(s) need %lld sequences; this server "
                   "runs %d at once (--parallel).", r->n, r->n_prompts, (long long)r->n * r->n_prompts, mi->max_n);
    return 0;
}

static int parse_completion_extras(const cJSON *o, sv_req *r, sv_error *e) {
    if (get_bool(o, "echo", &r->echo, e) < 0) return -1;
    const cJSON *s = field(o, "suffix");
    if (s && (!cJSON_IsString(s) || s->valuestring[0]))
        return BAD(e, "suffix", "unsupported_value", "'suffix' (insertion) is not supported by this server.");
    long long k;
    int rc = get_int(o, "best_of", 1, 1 << 20, &k, e);
    if (rc < 0) return -1;
    if (rc && k != r->n)
        return BAD(e, "best_of", "unsupported_value", "'best_of' other than 'n' is not supported by this server.");
    return 0;
}

static int parse_model(const cJSON *o, const sv_model_info *mi, sv_error *e) {
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(o, "model");
    if (!m) return BAD(e, "model", "missing_required_parameter", "You must provide a model parameter.");
    if (!cJSON_IsString(m)) return wrong_type(e, "model", "a string", m);
    if (strcmp(m->valuestring, mi->id))
        return sv_fail(e, 404, "invalid_request_error", "model", "model_not_found",
                       "The model `%.100s` does not exist. This server serves `%s`.", m->valuestring, mi->id);
    return 0;
}

static int parse_body(int kind, const cJSON *o, const sv_model_info *mi, sv_req *r, sv_error *e) {
    if (!cJSON_IsObject(o))
        return BAD(e, NULL, "invalid_type", "The request body must be a JSON object, not %s.", type_name(o));
    if (parse_model(o, mi, e) || parse_sampling(o, r, e) || parse_stop(o, r, e) || parse_stream(o, r, e) ||
        parse_logprobs(o, kind, r, e))
        return -1;
    if (kind == SV_CHAT ? parse_messages(o, mi, r, e) : parse_prompt(o, mi, r, e)) return -1;
    if (parse_limits(o, mi, r, e)) return -1;
    if (kind == SV_COMPLETION && parse_completion_extras(o, r, e)) return -1;
    return 0;
}

int sv_parse(int kind, const char *body, size_t len, const sv_model_info *mi, sv_req *r, sv_error *e) {
    memset(r, 0, sizeof *r);
    r->kind = kind;
    size_t ok = utf8_valid(body, len);
    if (ok < len)
        return BAD(e, NULL, "invalid_utf8", "The request body is not valid UTF-8 (at byte %zu of %zu).", ok, len);
    const char *end = NULL;
    cJSON *o = cJSON_ParseWithLengthOpts(body, len, &end, 0);
    if (!o) {
        size_t at = end && end >= body && end <= body + len ? (size_t)(end - body) : 0;
        return BAD(e, NULL, "invalid_json", "We could not parse the JSON body of your request (at byte %zu of %zu). "
                   "The OpenAI API expects a JSON payload.", at, len);
    }
    while (end < body + len && (*end == ' ' || *end == '\n' || *end == '\r' || *end == '\t')) end++;
    int rc = end < body + len ? BAD(e, NULL, "invalid_json", "Unexpected text after the JSON body (at byte %zu of %zu).",
                                    (size_t)(end - body), len)
                              : parse_body(kind, o, mi, r, e);
    cJSON_Delete(o);
    if (rc) sv_req_free(r);
    return rc;
}

void sv_req_free(sv_req *r) {
    for (int i = 0; r->prompts && i < r->n_prompts; i++) {
        free(r->prompts[i].ids);
        free(r->prompts[i].text);
    }
    free(r->prompts);
    for (int i = 0; i < r->n_stops; i++) free(r->stops[i]);
    memset(r, 0, sizeof *r);
}
