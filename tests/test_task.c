/*
 * test_task.c — task sources (src/train/task.c): generated arithmetic
 * checked by an independent evaluator (the Countdown parser, which knows
 * precedence), its difficulty knob, seeded and split streams, Countdown,
 * the CD3 and GSM8K files of ../shared/data (skipped when absent), generic
 * {"prompt","answer"} JSONL, worked solutions earning full reward, bad specs
 * and bad lines named.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "harness.h"
#include "train/countdown.h"
#include "train/task.h"

static void arith(void) {
    task t;
    dc_err err = {0};
    CHECK(task_open(&t, "arith:digits=3,ops=3,opset=+-*", 5, &err) == 0, "%s", err.msg);
    int wrong = 0, digits_ok = 1;
    for (int i = 0; i < 200; i++) {
        task_item it;
        CHECK(task_get(&t, SPLIT_TRAIN, i, &it, &err) == 0, "%s", err.msg);
        /* "What is a op b op c op d?" evaluated independently */
        const char *q = it.prompt + strlen("What is ");
        size_t n = strlen(q) - 1;
        int64_t num, den;
        int used[8], nu;
        if (cd_eval(q, n, &num, &den, used, &nu, 8) != CD_OK || den != 1) wrong++;
        else {
            char s[32];
            snprintf(s, sizeof s, "%lld", (long long)num);
            wrong += strcmp(s, it.answer) != 0;
        }
        for (int k = 0; k < nu; k++) digits_ok &= used[k] >= 100 && used[k] <= 999;
        digits_ok &= nu == 4;
        /* the worked solution earns the full reward */
        char *resp = task_response(&t, &it);
        reward_out ro;
        task_reward(&t, &it, resp + strlen("<think>\n"), strlen(resp) - strlen("<think>\n"), 0.1f, &ro);
        if (i == 0) printf("    %s -> %s\n    %s\n", it.prompt, it.answer, resp);
        wrong += ro.accuracy != 1 || ro.format != 1 || ro.reward < 1.09;
        free(resp);
        task_item_free(&it);
    }
    CHECK(wrong == 0, "%d of 200 arithmetic items wrong", wrong);
    CHECK(digits_ok, "3-digit numbers, 4 of them");
    /* same seed and index: the same item; the eval split differs */
    task_item a, b, c;
    task_get(&t, SPLIT_TRAIN, 7, &a, &err), task_get(&t, SPLIT_TRAIN, 7, &b, &err), task_get(&t, SPLIT_EVAL, 7, &c, &err);
    CHECK(!strcmp(a.prompt, b.prompt) && strcmp(a.prompt, c.prompt), "streams: %s / %s / %s", a.prompt, b.prompt, c.prompt);
    task_item_free(&a), task_item_free(&b), task_item_free(&c);
    CHECK(task_size(&t, SPLIT_TRAIN) == -1, "generated tasks are unbounded");
    task_close(&t);
    /* huge numbers: 18 digits, exact */
    CHECK(task_open(&t, "arith:digits=18,ops=1,opset=*", 1, &err) == 0, "%s", err.msg);
    task_get(&t, SPLIT_TRAIN, 0, &a, &err);
    CHECK(strlen(a.answer) >= 35, "18-digit product has 35-36 digits: %s", a.answer);
    task_item_free(&a);
    task_close(&t);
    const char *bad[] = {"arith:digits=0", "arith:digits=19", "arith:opset=/", "arith:foo=1", "nope", "jsonl",
                         "countdown:nums=9", "arith:digits=18,ops=3,opset=*"};
    for (int i = 0; i < 8; i++) {
        CHECK(task_open(&t, bad[i], 1, &err) == DC_EARG, "spec %s accepted", bad[i]);
        task_close(&t);
    }
}

static void countdown(void) {
    task t;
    dc_err err = {0};
    CHECK(task_open(&t, "countdown:nums=4", 2, &err) == 0, "%s", err.msg);
    int bad = 0;
    for (int i = 0; i < 50; i++) {
        task_item it;
        task_get(&t, SPLIT_EVAL, i, &it, &err);
        char *resp = task_response(&t, &it);
        reward_out ro;
        task_reward(&t, &it, resp + 8, strlen(resp) - 8, 0.1f, &ro);
        if (i == 0) printf("    %s\n    %s\n", it.prompt, resp);
        bad += it.n_nums != 4 || ro.accuracy != 1 || ro.format != 1;
        /* a wrong equation: the first number twice */
        char wrong[128];
        snprintf(wrong, sizeof wrong, "x</think><answer>%d + %d</answer>", it.nums[0], it.nums[0]);
        task_reward(&t, &it, wrong, strlen(wrong), 0.1f, &ro);
        bad += ro.accuracy != 0 || ro.format != 1;
        free(resp);
        task_item_free(&it);
    }
    CHECK(bad == 0, "%d bad countdown items", bad);
    task_close(&t);
}

static void files(void) {
    const char *data = harness_data_dir();
    task t;
    dc_err err = {0};
    char spec[800];
    if (data) {
        snprintf(spec, sizeof spec, "cd3:%s/math/countdown_cd3_test.jsonl", data);
        CHECK(task_open(&t, spec, 1, &err) == 0, "%s", err.msg);
        CHECK(task_size(&t, SPLIT_ALL) == 256, "CD3 has 256 lines: %lld", (long long)task_size(&t, SPLIT_ALL));
        task_item it;
        task_get(&t, SPLIT_ALL, 0, &it, &err);
        CHECK(it.n_nums == 3 && it.nums[0] == 30 && it.nums[1] == 100 && it.nums[2] == 93 && !strcmp(it.answer, "23"),
              "first CD3 line: %d %d %d -> %s", it.nums[0], it.nums[1], it.nums[2], it.answer);
        char r[] = "t</think><answer>(100 - 93) + 30 - 14</answer>";
        reward_out ro;
        task_reward(&t, &it, r, strlen(r), 0, &ro);
        CHECK(ro.accuracy == 0, "14 is not one of the numbers");
        char ok[] = "t</think><answer>93 - 100 + 30</answer>";
        task_reward(&t, &it, ok, strlen(ok), 0, &ro);
        CHECK(ro.accuracy == 1, "93 - 100 + 30 = 23");
        task_item_free(&it);
        task_close(&t);
        snprintf(spec, sizeof spec, "gsm8k:%s/math/gsm8k_train.jsonl", data);
        CHECK(task_open(&t, spec, 1, &err) == 0, "%s", err.msg);
        CHECK(t.n == 7473 && task_size(&t, SPLIT_EVAL) == 747, "GSM8K: %d lines, %lld held out", t.n,
              (long long)task_size(&t, SPLIT_EVAL));
        task_get(&t, SPLIT_TRAIN, 0, &it, &err);
        CHECK(!strcmp(it.answer, "72") && it.solution && !strstr(it.solution, "<<"), "first GSM8K answer %s, solution %s",
              it.answer, it.solution ? it.solution : "(none)");
        CHECK(strstr(it.prompt, "<answer></answer>") != NULL, "file tasks say how to mark the answer: %s", it.prompt);
        char *resp = task_response(&t, &it);
        task_reward(&t, &it, resp + 8, strlen(resp) - 8, 0, &ro);
        CHECK(ro.accuracy == 1, "GSM8K's own solution is right: %s", resp);
        free(resp);
        task_item_free(&it);
        task_close(&t);
    } else {
        printf("    (no ../shared/data: CD3 and GSM8K skipped)\n");
    }
    /* generic JSONL, and a bad line named */
    char p[600];
    snprintf(p, sizeof p, "%s/qa.jsonl", harness_tmpdir());
    FILE *f = fopen(p, "w");
    fprintf(f, "{\"prompt\": \"2+2?\", \"answer\": 4}\n\n{\"prompt\": \"Capital of France?\", \"answer\": \"Paris\"}\n");
    fclose(f);
    snprintf(spec, sizeof spec, "jsonl:%s", p);
    CHECK(task_open(&t, spec, 1, &err) == 0 && t.n == 2, "%s", err.msg);
    task_item it;
    task_get(&t, SPLIT_ALL, 1, &it, &err);
    CHECK(!strcmp(it.answer, "Paris"), "text answer: %s", it.answer);
    task_item_free(&it);
    task_get(&t, SPLIT_ALL, 0, &it, &err);
    CHECK(!strcmp(it.answer, "4"), "number answer: %s", it.answer);
    task_item_free(&it);
    CHECK(task_get(&t, SPLIT_ALL, 2, &it, &err) == DC_EARG, "index past the end refused");
    task_close(&t);
    f = fopen(p, "a");
    fprintf(f, "{\"question\": \"no prompt\"}\n");
    fclose(f);
    CHECK(task_open(&t, spec, 1, &err) == DC_EFORMAT && strstr(err.msg, "qa.jsonl:4"), "bad line named: %s", err.msg);
    snprintf(spec, sizeof spec, "gsm8k:%s/none.jsonl", harness_tmpdir());
    CHECK(task_open(&t, spec, 1, &err) == DC_EIO, "missing file: %s", err.msg);
}

int main(void) {
    RUN(arith);
    RUN(countdown);
    RUN(files);
    return harness_done();
}
