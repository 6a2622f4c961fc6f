/* distill.c — see distill.h. */
#include "train/distill.h"
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>
#include "base/err.h"
#include "base/progress.h"
#include "train/convo.h"

/* write: one accepted answer; in the R1 style the response carries its "<think>\n" */
static int write(FILE *out, const char *prompt, const char *text, int style) {
    cJSON *j = cJSON_CreateObject();
    size_t n = strlen(text) + 16;
    char *resp = malloc(n);
    if (!j || !resp) return cJSON_Delete(j), free(resp), -1;
    snprintf(resp, n, "%s%s", style == DC_CHAT_R1 ? "<think>\n" : "", text);
    cJSON_AddStringToObject(j, "prompt", prompt);
    cJSON_AddStringToObject(j, "response", resp);
    char *s = cJSON_PrintUnformatted(j);
    int rc = s && fprintf(out, "%s\n", s) > 0 ? 0 : -1;
    free(s), free(resp);
    cJSON_Delete(j);
    return rc;
}

static int chunk(dc_engine *e, const dc_tokenizer *tk, const task *t, char *const *prompts, const distill_opts *o,
                 int from, int n, FILE *out, distill_stats *st, dc_err *err) {
    task_item it[n];
    int *ids[n], np[n], rc = DC_OK, got = 0;
    memset(it, 0, sizeof it);
    for (; got < n && !rc; got++) {
        if (t) rc = task_get(t, SPLIT_TRAIN, from + got, &it[got], err);
        else it[got].prompt = strdup(prompts[from + got]);
        if (!rc && !it[got].prompt) rc = err_set(err, DC_ENOMEM, "distill: out of memory");
        if (!rc) rc = convo_prompt(tk, o->style, it[got].prompt, &ids[got], &np[got], err);
        if (rc) task_item_free(&it[got]);
    }
    if (rc) got--;
    rollout r = {0};
    rollout_opts ro = {.G = o->K, .max_new = o->max_new, .temperature = o->temperature, .top_p = 1,
                       .eos = dc_tokenizer_eos(tk), .seed = o->seed + (uint64_t)from * 7919u};
    if (!rc) rc = rollout_run(e, (const int *const *)ids, np, n, &ro, &r, err);
    st->tokens += r.tokens, st->seconds += r.seconds;
    for (int i = 0; !rc && i < n; i++) {
        int kept = 0;
        st->prompts++;
        for (int k = 0; k < o->K && !rc; k++) {
            int j = i * o->K + k;
            char *text = NULL;
            size_t len;
            reward_out ro2 = {.accuracy = 1, .format = 1};
            st->sampled++;
            if (r.finish[j] != DC_FINISH_STOP || (rc = convo_text(tk, r.ids + (size_t)j * r.max_new, r.len[j], &text, &len, err))) {
                free(text);
                continue; /* cut off at max_new: no answer */
            }
            if (t) task_reward(t, &it[i], text, len, 0, &ro2);
            if (ro2.accuracy == 1 && ro2.format == 1) {
                st->accepted++;
                if (kept < o->keep && !write(out, it[i].prompt, text, o->style)) kept++, st->written++;
            }
            free(text);
        }
    }
    rollout_free(&r);
    for (int i = 0; i < got; i++) free(ids[i]), task_item_free(&it[i]);
    return rc;
}

int distill_collect(dc_engine *teacher, const dc_tokenizer *tk, const task *t, char *const *prompts,
                    const distill_opts *o, FILE *out, distill_stats *st, dc_err *err) {
    dist d;
    dist_single(&d);
    return distill_collect_dist(teacher, tk, t, prompts, o, &d, out, st, err);
}

/* share: chunk c's output (buf, len on its replica) to every replica's out, in order */
static int share(const dist *d, int c, char *buf, size_t len, FILE *out, dc_err *err) {
    const int root = c % d->dp_size;
    uint64_t n = len;
    int rc = dist_bcast(d, DIST_DP, &n, sizeof n, root, err);
    char *b = d->dp_rank == root ? buf : malloc(n + 1);
    if (!rc && !b) rc = err_set(err, DC_ENOMEM, "distill: out of memory");
    if (!rc) rc = dist_bcast(d, DIST_DP, b, (size_t)n, root, err);
    if (!rc && n && fwrite(b, 1, (size_t)n, out) != n) rc = err_set(err, DC_EIO, "distill: cannot write the SFT data");
    if (b != buf) free(b);
    return rc;
}

int distill_collect_dist(dc_engine *teacher, const dc_tokenizer *tk, const task *t, char *const *prompts,
                         const distill_opts *o, const dist *d, FILE *out, distill_stats *st, dc_err *err) {
    memset(st, 0, sizeof *st);
    int64_t size = t ? task_size(t, SPLIT_TRAIN) : o->n;
    int n = size >= 0 && size < o->n ? (int)size : o->n, rc = DC_OK, nc = (n + 15) / 16;
    char **buf = calloc((size_t)nc + 1, sizeof *buf);
    size_t *len = calloc((size_t)nc + 1, sizeof *len);
    if (!buf || !len) rc = err_set(err, DC_ENOMEM, "distill: out of memory");
    progress pb;
    if (d->rank == 0) progress_start(&pb, "teacher", n);
    for (int c = 0; c < nc && !rc; c++) {
        if (c % d->dp_size != d->dp_rank) continue;
        FILE *f = open_memstream(&buf[c], &len[c]);
        if (!f) rc = err_set(err, DC_ENOMEM, "distill: out of memory");
        int from = c * 16;
        if (!rc) rc = chunk(teacher, tk, t, prompts, o, from, n - from < 16 ? n - from : 16, f, st, err);
        if (f && fclose(f) && !rc) rc = err_set(err, DC_ENOMEM, "distill: out of memory");
        char line[80];
        snprintf(line, sizeof line, "%d of %d answers accepted", st->accepted, st->sampled);
        if (d->rank == 0) progress_update(&pb, st->prompts, "prompt", line);
    }
    if (d->rank == 0) progress_end(&pb);
    for (int c = 0; c < nc && !rc; c++) rc = share(d, c, buf[c], len[c], out, err);
    if (!rc && d->dp_size > 1) { /* the job's stats */
        double v[6] = {st->prompts, st->sampled, st->accepted, st->written, (double)st->tokens, st->seconds};
        rc = dist_sum_f64(d, DIST_DP, v, 6, err);
        st->prompts = (int)v[0], st->sampled = (int)v[1], st->accepted = (int)v[2], st->written = (int)v[3];
        st->tokens = (int64_t)v[4], st->seconds = v[5] / d->dp_size;
    }
    for (int c = 0; buf && c < nc; c++) free(buf[c]);
    free(buf), free(len);
    if (!rc && (fflush(out) || ferror(out))) rc = err_set(err, DC_EIO, "distill: cannot write the SFT data");
    return rc;
}
