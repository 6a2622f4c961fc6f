/* sft.c — see sft.h. */
#include "train/sft.h"
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "base/err.h"
#include "base/file.h"
#include "train/convo.h"

void sft_set_free(sft_set *s) {
    if (!s) return;
    for (int i = 0; i < s->n; i++) free(s->ids[i]), free(s->mask[i]);
    free(s->ids), free(s->mask), free(s->len);
    memset(s, 0, sizeof *s);
}

/* ---------------------------------------------------------------- reading */

static const char *str(const cJSON *o, const char *k) {
    const cJSON *v = cJSON_GetObjectItem(o, k);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* msgs_of: the conversation of one object (strings borrowed from o, or from
 * *own for a joined Alpaca prompt); the number of messages, or -1 */
static int msgs_of(const cJSON *o, dc_chat_msg *m, int cap, char **own) {
    const cJSON *ms = cJSON_GetObjectItem(o, "messages");
    if (cJSON_IsArray(ms)) {
        int n = 0;
        const cJSON *it;
        cJSON_ArrayForEach(it, ms) {
            const char *r = str(it, "role"), *c = str(it, "content");
            if (!r || !c || n == cap) return -1;
            m[n++] = (dc_chat_msg){.role = r, .content = c};
        }
        return n;
    }
    const char *p = str(o, "prompt"), *resp = str(o, "response");
    if (!resp) resp = str(o, "output");
    if (!p && str(o, "instruction")) {
        const char *ins = str(o, "instruction"), *in = str(o, "input");
        size_t k = strlen(ins) + (in ? strlen(in) : 0) + 3;
        if (!(*own = malloc(k))) return -1;
        snprintf(*own, k, in && *in ? "%s\n\n%s" : "%s%s", ins, in && *in ? in : "");
        p = *own;
    }
    if (!p || !resp || cap < 2) return -1;
    m[0] = (dc_chat_msg){.role = "user", .content = p};
    m[1] = (dc_chat_msg){.role = "assistant", .content = resp};
    return 2;
}

/* grow: room for one more object and its line number */
static int grow(cJSON ***v, int **ln, int k, int *cap) {
    if (k < *cap) return 0;
    int nc = *cap * 2;
    cJSON **nv = realloc(*v, sizeof **v * nc);
    if (!nv) return -1;
    *v = nv;
    int *nl = realloc(*ln, sizeof **ln * nc);
    if (!nl) return -1;
    *ln = nl, *cap = nc;
    return 0;
}

/* objects: the file's conversations as parsed JSON objects, one per line or one array */
static int objects(const char *path, cJSON ***out, int **lines, int *n, dc_err *err) {
    char *txt;
    size_t len;
    int rc = file_read_all(path, &txt, &len, err);
    if (rc) return rc;
    size_t lead = strspn(txt, " \t\r\n");
    int cap = 64, k = 0;
    cJSON **v = malloc(sizeof *v * cap);
    int *ln = malloc(sizeof *ln * cap);
    cJSON *arr = lead < len && txt[lead] == '[' ? cJSON_Parse(txt) : NULL;
    if (lead < len && txt[lead] == '[' && !cJSON_IsArray(arr)) rc = err_set(err, DC_EFORMAT, "%s: not a JSON array", path);
    int line = 0, size = arr ? cJSON_GetArraySize(arr) : 0;
    for (char *s = txt, *e; !rc && !arr && s < txt + len; s = e + 1) {
        e = memchr(s, '\n', txt + len - s);
        if (!e) e = txt + len;
        *e = 0, line++;
        if (strspn(s, " \t\r") == strlen(s)) continue;
        if (!v || !ln || grow(&v, &ln, k, &cap)) {
            rc = err_set(err, DC_ENOMEM, "sft: out of memory reading %s", path);
            break;
        }
        ln[k] = line;
        if (!cJSON_IsObject(v[k++] = cJSON_Parse(s))) rc = err_set(err, DC_EFORMAT, "%s:%d: not a JSON object", path, line);
    }
    for (int i = 0; !rc && arr && i < size; i++) {
        if (!v || !ln || grow(&v, &ln, k, &cap)) {
            rc = err_set(err, DC_ENOMEM, "sft: out of memory reading %s", path);
            break;
        }
        ln[k] = i + 1;
        v[k++] = cJSON_DetachItemFromArray(arr, 0);
    }
    cJSON_Delete(arr);
    free(txt);
    *out = v, *lines = ln, *n = k;
    return rc;
}

static void free_objects(cJSON **v, int *ln, int n) {
    for (int i = 0; v && i < n; i++) cJSON_Delete(v[i]);
    free(v), free(ln);
}

static int add_row(sft_set *s, const dc_tokenizer *tk, const dc_chat_msg *m, int nm, int max_len, dc_err *err) {
    int *ids, len;
    unsigned char *mask;
    int rc = convo_row(tk, s->style, m, nm, &ids, &mask, &len, err);
    if (rc) return rc;
    if (len > max_len) len = max_len, s->truncated++;
    int any = 0;
    for (int i = 1; i < len; i++) any |= mask[i]; /* position 0 is never a target */
    if (!any) {
        free(ids), free(mask);
        s->skipped++;
        return DC_OK;
    }
    s->ids[s->n] = ids, s->mask[s->n] = mask, s->len[s->n] = len, s->n++;
    return DC_OK;
}

int sft_load(sft_set *s, const char *path, const dc_tokenizer *tk, int style, int max_len, dc_err *err) {
    memset(s, 0, sizeof *s);
    cJSON **v = NULL;
    int *ln = NULL, n = 0;
    int rc = objects(path, &v, &ln, &n, err);
    if (!rc && !n) rc = err_set(err, DC_EFORMAT, "%s: no conversations", path);
    s->ids = rc ? NULL : calloc(n, sizeof *s->ids), s->mask = rc ? NULL : calloc(n, sizeof *s->mask);
    s->len = rc ? NULL : calloc(n, sizeof *s->len);
    if (!rc && (!s->ids || !s->mask || !s->len)) rc = err_set(err, DC_ENOMEM, "sft: out of memory");
    s->style = style >= 0 ? style : DC_CHAT_V3;
    for (int i = 0; !rc && style < 0 && i < n; i++) { /* auto: R1 when some answer reasons */
        dc_chat_msg m[64];
        char *own = NULL;
        int nm = msgs_of(v[i], m, 64, &own);
        for (int j = 0; j < nm; j++)
            if (!strcmp(m[j].role, "assistant") && strstr(m[j].content, "</think>")) s->style = DC_CHAT_R1;
        free(own);
    }
    for (int i = 0; !rc && i < n; i++) {
        dc_chat_msg m[64];
        char *own = NULL;
        int nm = msgs_of(v[i], m, 64, &own);
        if (nm < 0)
            rc = err_set(err, DC_EFORMAT, "%s:%d: not a conversation ({\"messages\": [{\"role\", \"content\"}, ...]}, "
                         "{\"prompt\", \"response\"} or {\"instruction\", \"input\", \"response\"})", path, ln[i]);
        else if ((rc = add_row(s, tk, m, nm, max_len, err)))
            err_prefix(err, "%s:%d: ", path, ln[i]);
        free(own);
    }
    free_objects(v, ln, n);
    if (!rc && !s->n) rc = err_set(err, DC_EFORMAT, "%s: no conversation has an assistant token", path);
    if (rc) sft_set_free(s);
    return rc;
}

/* ---------------------------------------------------------------- batches */

static void shuffle(int *a, int n, rng *r) {
    for (int i = n - 1; i > 0; i--) {
        int j = (int)(rng_u64(r) % (uint64_t)(i + 1)), t = a[i];
        a[i] = a[j], a[j] = t;
    }
}

int sft_open(sft *s, sft_set *d, int val_rows, int B, int T, int accum, int pad, uint64_t seed, dc_err *err) {
    memset(s, 0, sizeof *s);
    s->d = *d;
    memset(d, 0, sizeof *d);
    if (val_rows >= s->d.n) val_rows = s->d.n - 1;
    if (val_rows < 0) val_rows = 0;
    s->B = B, s->T = T, s->accum = accum > 0 ? accum : 1, s->pad = pad;
    int *all = malloc(sizeof(int) * s->d.n);
    s->tok = malloc(sizeof(int) * (size_t)B * (T + 1)), s->w = malloc(sizeof(float) * (size_t)B * T);
    if (!all || !s->tok || !s->w) {
        free(all);
        sft_close(s);
        return err_set(err, DC_ENOMEM, "sft: out of memory");
    }
    rng_seed(&s->r, seed * 0x9e3779b97f4a7c15ull + 29);
    for (int i = 0; i < s->d.n; i++) all[i] = i;
    shuffle(all, s->d.n, &s->r);
    s->n_val = val_rows, s->n_train = s->d.n - val_rows;
    s->val = all, s->train = all + val_rows; /* one block: val first */
    shuffle(s->train, s->n_train, &s->r);
    return DC_OK;
}

void sft_close(sft *s) {
    if (!s) return;
    for (int i = 0; s->kd_ids && i < s->d.n; i++) free(s->kd_ids[i]), free(s->kd_logits[i]);
    free(s->kd_ids), free(s->kd_logits), free(s->kd_bi), free(s->kd_bl);
    sft_set_free(&s->d);
    free(s->val), free(s->tok), free(s->w);
    memset(s, 0, sizeof *s);
}

/* top: the k largest of z (V) into ids / vals */
static void top(const float *z, int V, int k, int *ids, float *vals) {
    for (int j = 0; j < k; j++) ids[j] = -1, vals[j] = -INFINITY;
    for (int v = 0; v < V; v++) {
        if (z[v] <= vals[k - 1]) continue;
        int j = k - 1;
        while (j > 0 && z[v] > vals[j - 1]) ids[j] = ids[j - 1], vals[j] = vals[j - 1], j--;
        ids[j] = v, vals[j] = z[v];
    }
}

int sft_kd(sft *s, dc_model *teacher, int k, float temp, float alpha, dc_err *err) {
    const int V = dc_model_config(teacher)->vocab_size;
    if (k < 1 || k > V) return err_set(err, DC_EARG, "distill: top-k %d of a vocabulary of %d", k, V);
    int maxlen = 1;
    for (int r = 0; r < s->d.n; r++) maxlen = s->d.len[r] > maxlen ? s->d.len[r] : maxlen;
    dc_session *ss = NULL;
    float *lg = malloc(sizeof(float) * (size_t)maxlen * V);
    s->kd_ids = calloc(s->d.n, sizeof *s->kd_ids), s->kd_logits = calloc(s->d.n, sizeof *s->kd_logits);
    s->kd_bi = malloc(sizeof(int) * (size_t)s->B * s->T * k), s->kd_bl = malloc(sizeof(float) * (size_t)s->B * s->T * k);
    int rc = lg && s->kd_ids && s->kd_logits && s->kd_bi && s->kd_bl ? DC_OK : err_set(err, DC_ENOMEM, "distill: out of memory");
    if (!rc) rc = dc_session_new(teacher, maxlen, DC_ATTN_ABSORB, &ss, err);
    for (int r = 0; !rc && r < s->d.n; r++) {
        int n = s->d.len[r];
        s->kd_ids[r] = malloc(sizeof(int) * (size_t)n * k), s->kd_logits[r] = malloc(sizeof(float) * (size_t)n * k);
        if (!s->kd_ids[r] || !s->kd_logits[r]) rc = err_set(err, DC_ENOMEM, "distill: out of memory");
        dc_session_reset(ss);
        if (!rc) rc = dc_forward(ss, s->d.ids[r], n, lg, 0, err);
        for (int i = 0; !rc && i < n; i++) top(lg + (size_t)i * V, V, k, s->kd_ids[r] + (size_t)i * k, s->kd_logits[r] + (size_t)i * k);
    }
    dc_session_free(ss);
    free(lg);
    if (!rc) s->kd_k = k, s->kd_temp = temp, s->kd_alpha = alpha;
    return rc;
}

int64_t sft_steps_per_epoch(const sft *s) {
    int64_t per = (int64_t)s->B * s->accum;
    return (s->n_train + per - 1) / per;
}

/* next_row: the next training row, a new shuffled epoch when one ends */
static int next_row(sft *s) {
    if (s->pos >= s->n_train) {
        shuffle(s->train, s->n_train, &s->r);
        s->epoch++, s->pos = 0;
    }
    return s->train[s->pos++];
}

/* fill: rows[0..n) into tok / w with weights mask / scale; returns T' */
static int fill(sft *s, const int *rows, int n, double scale) {
    int TT = 1;
    for (int b = 0; b < n; b++) TT = s->d.len[rows[b]] - 1 > TT ? s->d.len[rows[b]] - 1 : TT;
    if (TT > s->T) TT = s->T;
    for (int b = 0; b < n; b++) {
        int r = rows[b], len = s->d.len[r] < TT + 1 ? s->d.len[r] : TT + 1;
        int *tk = s->tok + (size_t)b * (TT + 1);
        float *w = s->w + (size_t)b * TT;
        for (int i = 0; i <= TT; i++) tk[i] = i < len ? s->d.ids[r][i] : s->pad;
        for (int i = 0; i < TT; i++) w[i] = i + 1 < len && s->d.mask[r][i + 1] ? (float)scale : 0.0f;
        for (int i = 0; s->kd_k && i < TT; i++) {
            size_t o = ((size_t)b * TT + i) * s->kd_k, src = (size_t)(i < len - 1 ? i : 0) * s->kd_k;
            memcpy(s->kd_bi + o, s->kd_ids[r] + src, sizeof(int) * s->kd_k);
            memcpy(s->kd_bl + o, s->kd_logits[r] + src, sizeof(float) * s->kd_k);
        }
    }
    return TT;
}

static double targets(const sft *s, const int *rows, int n) {
    double c = 0;
    for (int b = 0; b < n; b++)
        for (int i = 1; i < s->d.len[rows[b]] && i <= s->T; i++) c += s->d.mask[rows[b]][i];
    return c;
}

static int step(void *ctx, trainer *t, int64_t *tokens, dc_err *err) {
    sft *s = ctx;
    int rows[s->accum][s->B];
    double count = 0;
    *tokens = 0;
    for (int a = 0; a < s->accum; a++)
        for (int b = 0; b < s->B; b++) rows[a][b] = next_row(s), *tokens += s->d.len[rows[a][b]];
    for (int a = 0; a < s->accum; a++) count += targets(s, rows[a], s->B);
    trainer_zero_grad(t);
    for (int a = 0; a < s->accum; a++) {
        if (!trainer_mb_mine(t, a)) { /* another replica's micro-batch */
            int rc = trainer_backward(t, NULL, a, s->accum, err);
            if (rc) return rc;
            continue;
        }
        int TT = fill(s, rows[a], s->B, 1.0 / count); /* a token mean over the whole step */
        loss_spec kd = {.kind = LOSS_KD, .kd_k = s->kd_k, .kd_ids = s->kd_bi, .kd_logits = s->kd_bl,
                        .kd_temp = s->kd_temp, .kd_alpha = s->kd_alpha};
        tbatch b = {s->B, TT, s->tok, s->w, s->kd_k ? &kd : NULL};
        int rc = trainer_backward(t, &b, a, s->accum, err); /* data parallel: every replica its share */
        if (rc) return rc;
    }
    if (trainer_update(t)) return *err = t->derr, err->code;
    return DC_OK;
}

int sft_val_loss(sft *s, trainer *t, double *loss, dc_err *err) {
    double sum = 0, count = 0;
    for (int i = 0; i < s->n_val; i += s->B) {
        int n = s->n_val - i < s->B ? s->n_val - i : s->B;
        double c = targets(s, s->val + i, n);
        int TT = fill(s, s->val + i, n, 1.0);
        tbatch b = {n, TT, s->tok, s->w, NULL};
        int rc = trainer_forward(t, &b, 0, err);
        if (rc) return rc;
        sum += t->loss * c, count += c;
    }
    *loss = count > 0 ? sum / count : NAN;
    return DC_OK;
}

static void metrics(void *ctx, trainer *t, sbuf *json, sbuf *line) {
    sft *s = ctx;
    (void)t, (void)line;
    sbuf_num(json, "epoch", (double)s->epoch + (double)s->pos / (s->n_train ? s->n_train : 1));
}

static int eval(void *ctx, trainer *t, sbuf *json, sbuf *line, dc_err *err) {
    double l;
    int rc = sft_val_loss(ctx, t, &l, err);
    if (rc) return rc;
    sbuf_num(json, "val_loss", l);
    sbuf_add(line, " val %.4f", l);
    return DC_OK;
}

static int save(void *ctx, cJSON *state) {
    sft *s = ctx;
    char h[65];
    rng_to_hex(&s->r, h);
    cJSON *o = cJSON_AddObjectToObject(state, "sft");
    cJSON *ord = o ? cJSON_CreateIntArray(s->train, s->n_train) : NULL;
    if (!o || !ord) return cJSON_Delete(ord), -1;
    cJSON_AddItemToObject(o, "order", ord);
    cJSON_AddNumberToObject(o, "epoch", (double)s->epoch), cJSON_AddNumberToObject(o, "pos", (double)s->pos);
    cJSON_AddStringToObject(o, "rng", h);
    return 0;
}

static int load(void *ctx, const cJSON *state, const char *path, dc_err *err) {
    sft *s = ctx;
    const cJSON *o = cJSON_GetObjectItem(state, "sft"), *ord = cJSON_GetObjectItem(o, "order");
    const cJSON *ep = cJSON_GetObjectItem(o, "epoch"), *pos = cJSON_GetObjectItem(o, "pos");
    const char *h = str(o, "rng");
    int ok = cJSON_IsArray(ord) && cJSON_GetArraySize(ord) == s->n_train && cJSON_IsNumber(ep) && cJSON_IsNumber(pos) &&
             h && strlen(h) == 64 && pos->valuedouble >= 0 && pos->valuedouble <= s->n_train && ep->valuedouble >= 0;
    for (int i = 0; ok && i < s->n_train; i++) {
        const cJSON *v = cJSON_GetArrayItem(ord, i);
        ok = cJSON_IsNumber(v) && v->valueint >= 0 && v->valueint < s->d.n;
        if (ok) s->train[i] = v->valueint;
    }
    ok = ok && rng_from_hex(&s->r, h) == 0;
    if (!ok)
        return err_set(err, DC_EFORMAT, "%s: \"sft\" must hold the data order (%d rows: same data and --val-rows), "
                       "epoch, pos and rng", path, s->n_train);
    s->epoch = (int64_t)ep->valuedouble, s->pos = (int64_t)pos->valuedouble;
    return DC_OK;
}

void sft_hooks(sft *s, run_hooks *h) {
    *h = (run_hooks){.ctx = s, .step = step, .metrics = metrics, .eval = s->n_val ? eval : NULL, .save = save, .load = load};
}
