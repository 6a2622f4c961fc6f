/*
 * test_sft.c — conversations as training rows (src/train/convo.c, sft.c):
 * the mask covers exactly the assistant's tokens and its EOS (decoded back,
 * they are the answer), R1's leading <think> is not doubled, an earlier
 * assistant turn is trained as the template renders it in history, the
 * accepted file shapes, bad lines named, long rows cut, and a step that
 * takes no loss from non-assistant tokens: its loss equals the mean of the
 * inference path's -log p over the assistant tokens only.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "harness.h"
#include "train/convo.h"
#include "train/sft.h"

#define BIN DC_BUILD "/deepc"
static char W[512];
static dc_tokenizer *g_tk;

static const char *SPECIAL = "<｜begin▁of▁sentence｜>,<｜end▁of▁sentence｜>,<｜User｜>,<｜Assistant｜>,<think>,</think>";

static void setup(void) {
    snprintf(W, sizeof W, "%s", harness_tmpdir());
    char p[700];
    snprintf(p, sizeof p, "%s/c.txt", W);
    FILE *f = fopen(p, "w");
    for (int i = 0; i < 300; i++) fprintf(f, "What is %d + %d? The answer is %d. Hello there, friend.\n", i % 10, i % 7, i % 10 + i % 7);
    fclose(f);
    CHECK(harness_sh(BIN " tokenizer-train --data %s --vocab-size 300 --special '%s' --out %s/tok.json > /dev/null 2>&1",
                     p, SPECIAL, W) == 0, "tokenizer");
    snprintf(p, sizeof p, "%s/tok.json", W);
    dc_err err = {0};
    CHECK(dc_tokenizer_load(p, &g_tk, &err) == 0, "%s", err.msg);
}

/* masked: the decoded text of the masked tokens */
static char *masked(const int *ids, const unsigned char *mask, int n) {
    int *sel = malloc(sizeof(int) * (n ? n : 1)), k = 0;
    for (int i = 0; i < n; i++)
        if (mask[i]) sel[k++] = ids[i];
    char *t = NULL;
    size_t len;
    dc_err err;
    dc_tokenizer_decode(g_tk, sel, k, 0, &t, &len, &err);
    free(sel);
    return t;
}

static void rows(void) {
    if (!g_tk) return;
    int *ids, n;
    unsigned char *mask;
    dc_err err = {0};
    dc_chat_msg one[] = {{.role = "user", .content = "What is 2 + 3?"},
                         {.role = "assistant", .content = "<think>\n2 + 3 = 5\n</think>\nThe answer is 5."}};
    CHECK(convo_row(g_tk, DC_CHAT_R1, one, 2, &ids, &mask, &n, &err) == 0, "%s", err.msg);
    char *m = masked(ids, mask, n), *all = NULL;
    size_t len;
    dc_tokenizer_decode(g_tk, ids, n, 0, &all, &len, &err);
    printf("    row: %s\n    loss on: %s\n", all, m);
    CHECK(m && !strcmp(m, "2 + 3 = 5\n</think>\nThe answer is 5.<｜end▁of▁sentence｜>"), "R1 mask: %s", m ? m : "");
    CHECK(all && strstr(all, "<｜Assistant｜><think>\n2 + 3") && !strstr(all, "<think>\n<think>"), "one <think>: %s", all);
    free(m), free(all), free(ids), free(mask);
    /* V3 style keeps the content as given; two turns: the first trained without its reasoning */
    dc_chat_msg two[] = {{.role = "system", .content = "Be brief."}, {.role = "user", .content = "Hi"},
                         {.role = "assistant", .content = "<think>greet</think>Hello!"},
                         {.role = "user", .content = "Bye"}, {.role = "assistant", .content = "Goodbye."}};
    CHECK(convo_row(g_tk, DC_CHAT_V3, two, 5, &ids, &mask, &n, &err) == 0, "%s", err.msg);
    m = masked(ids, mask, n);
    CHECK(m && !strcmp(m, "Hello!<｜end▁of▁sentence｜>Goodbye.<｜end▁of▁sentence｜>"), "two turns: %s", m ? m : "");
    free(m), free(ids), free(mask);
    dc_chat_msg none[] = {{.role = "user", .content = "Hi"}};
    CHECK(convo_row(g_tk, DC_CHAT_V3, none, 1, &ids, &mask, &n, &err) == DC_EARG, "no assistant turn refused");
}

static void files(void) {
    if (!g_tk) return;
    char p[700];
    snprintf(p, sizeof p, "%s/d.jsonl", W);
    FILE *f = fopen(p, "w");
    fprintf(f, "{\"messages\": [{\"role\": \"user\", \"content\": \"Hi\"}, {\"role\": \"assistant\", \"content\": \"Hello there.\"}]}\n");
    fprintf(f, "\n{\"prompt\": \"What is 1 + 1?\", \"response\": \"<think>\\n1 + 1 = 2\\n</think>\\n2\"}\n");
    fprintf(f, "{\"prompt\": \"%s\", \"response\": \"ok\"}\n", "What is 1 + 1? What is 1 + 1? What is 1 + 1? What is 1 + 1?");
    fclose(f);
    sft_set s;
    dc_err err = {0};
    CHECK(sft_load(&s, p, g_tk, -1, 40, &err) == 0, "%s", err.msg);
    CHECK(s.n == 2 && s.style == DC_CHAT_R1 && s.skipped == 1, "auto R1, the long prompt skipped: %d rows, style %d, "
          "%d skipped, %d cut", s.n, s.style, s.skipped, s.truncated);
    sft_set_free(&s);
    CHECK(sft_load(&s, p, g_tk, DC_CHAT_V3, 1000, &err) == 0 && s.n == 3 && s.style == DC_CHAT_V3, "%s", err.msg);
    sft_set_free(&s);
    /* an Alpaca array */
    snprintf(p, sizeof p, "%s/a.json", W);
    f = fopen(p, "w");
    fprintf(f, "[{\"instruction\": \"Add\", \"input\": \"1 and 2\", \"response\": \"3\"}, {\"instruction\": \"Hi\", "
               "\"input\": \"\", \"output\": \"Hello\"}]");
    fclose(f);
    CHECK(sft_load(&s, p, g_tk, DC_CHAT_V3, 1000, &err) == 0 && s.n == 2, "alpaca: %s", err.msg);
    sft_set_free(&s);
    /* bad lines are named */
    snprintf(p, sizeof p, "%s/b.jsonl", W);
    f = fopen(p, "w");
    fprintf(f, "{\"prompt\": \"a\", \"response\": \"b\"}\n{\"prompt\": \"a\"}\n");
    fclose(f);
    CHECK(sft_load(&s, p, g_tk, DC_CHAT_V3, 1000, &err) == DC_EFORMAT && strstr(err.msg, "b.jsonl:2"), "%s", err.msg);
    f = fopen(p, "w");
    fprintf(f, "{\"prompt\": \"a\", \"response\": \"b\"}\nnot json\n");
    fclose(f);
    CHECK(sft_load(&s, p, g_tk, DC_CHAT_V3, 1000, &err) == DC_EFORMAT && strstr(err.msg, "b.jsonl:2"), "%s", err.msg);
    f = fopen(p, "w");
    fprintf(f, "{\"messages\": [{\"role\": \"user\", \"content\": \"a\"}]}\n");
    fclose(f);
    CHECK(sft_load(&s, p, g_tk, DC_CHAT_V3, 1000, &err) != 0 && strstr(err.msg, "assistant"), "%s", err.msg);
}

/* the SFT step's loss is the mean -log p of the assistant tokens alone, as
 * the inference path computes it: nothing from the prompt or the padding */
static void loss_on_assistant_only(void) {
    if (!g_tk) return;
    char p[700];
    snprintf(p, sizeof p, "%s/s.jsonl", W);
    FILE *f = fopen(p, "w");
    for (int i = 0; i < 6; i++)
        fprintf(f, "{\"prompt\": \"What is %d + %d? Hello there%s\", \"response\": \"The answer is %d.\"}\n", i, i,
                i % 2 ? ", friend." : "", 2 * i);
    fclose(f);
    sft_set d;
    dc_err err = {0};
    CHECK(sft_load(&d, p, g_tk, DC_CHAT_V3, 100, &err) == 0, "%s", err.msg);
    dc_config c;
    dc_config_preset("tiny", &c, &err);
    c.vocab_size = dc_tokenizer_n_vocab(g_tk);
    train_opts o;
    train_opts_default(&o);
    o.B = 3, o.T = 64, o.mtp_lambda = 0, o.aux_alpha = 0, o.lr = 0, o.min_lr = 0, o.warmup = 0, o.bias_gamma = 0;
    trainer t;
    CHECK(trainer_init(&t, &c, &o, NULL, 3, &err) == 0, "%s", err.msg);
    sft s;
    CHECK(sft_open(&s, &d, 0, 3, 64, 2, 1, 1, &err) == 0, "%s", err.msg);
    run_hooks h;
    sft_hooks(&s, &h);
    int64_t ntok;
    CHECK(h.step(h.ctx, &t, &ntok, &err) == 0, "%s", err.msg);
    /* the same six rows (one epoch of 2 x 3) through dc_forward */
    dc_model *m;
    trainer_model(&t, &m, &err);
    double sum = 0;
    int count = 0;
    for (int r = 0; r < s.d.n; r++) {
        dc_session *ss;
        int n = s.d.len[r], V = c.vocab_size;
        dc_session_new_kv(m, n, DC_ATTN_ABSORB, DC_KV_F32, &ss, &err); /* the trainer's float32 */
        float *lg = malloc(sizeof(float) * (size_t)n * V);
        dc_forward(ss, s.d.ids[r], n, lg, 0, &err);
        for (int i = 1; i < n; i++) {
            if (!s.d.mask[r][i]) continue;
            const float *z = lg + (size_t)(i - 1) * V;
            double mx = z[0], e = 0;
            for (int v = 1; v < V; v++) mx = z[v] > mx ? z[v] : mx;
            for (int v = 0; v < V; v++) e += exp(z[v] - mx);
            sum += mx + log(e) - z[s.d.ids[r][i]], count++;
        }
        free(lg);
        dc_session_free(ss);
    }
    trainer_model_free(m);
    printf("    SFT loss %.6f, mean -log p over the %d assistant tokens %.6f\n", t.loss, count, sum / count);
    CHECK(fabs(t.loss - sum / count) < 1e-5, "SFT loss %.7f != assistant-only mean %.7f", t.loss, sum / count);
    CHECK(ntok > 0 && s.epoch == 0 && s.pos == 6, "one epoch taken: pos %lld", (long long)s.pos);
    sft_close(&s);
    trainer_free(&t);
}

int main(void) {
    RUN(setup);
    RUN(rows);
    RUN(files);
    RUN(loss_on_assistant_only);
    dc_tokenizer_free(g_tk);
    return harness_done();
}
