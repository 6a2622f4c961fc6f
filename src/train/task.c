/* task.c — see task.h. */
#include "train/task.h"
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "base/err.h"
#include "base/file.h"
#include "base/rng.h"
#include "train/countdown.h"

#define DEF_CD3 "../shared/data/math/countdown_cd3_test.jsonl"
#define DEF_GSM8K "../shared/data/math/gsm8k_train.jsonl"

void task_item_free(task_item *it) {
    if (!it) return;
    free(it->prompt), free(it->answer), free(it->solution);
    memset(it, 0, sizeof *it);
}

void task_close(task *t) {
    if (!t) return;
    for (int i = 0; i < t->n; i++) {
        free(t->prompt ? t->prompt[i] : NULL), free(t->answer ? t->answer[i] : NULL);
        free(t->solution ? t->solution[i] : NULL);
    }
    free(t->prompt), free(t->answer), free(t->solution), free(t->nums), free(t->n_nums);
    memset(t, 0, sizeof *t);
}

/* ---------------------------------------------------------------- files */

/* num_text: a JSON value as answer text (integers without a fraction) */
static char *num_text(const cJSON *v) {
    char b[64];
    if (cJSON_IsString(v)) return strdup(v->valuestring);
    if (!cJSON_IsNumber(v)) return NULL;
    double d = v->valuedouble;
    if (d == (double)(long long)d && d > -9e15 && d < 9e15) snprintf(b, sizeof b, "%lld", (long long)d);
    else snprintf(b, sizeof b, "%.17g", d);
    return strdup(b);
}

/* gsm8k: the number after "####" (commas dropped), and the worked solution
 * before it without the <<a*b=c>> calculator notes */
static int gsm8k_answer(const char *a, char **ans, char **sol) {
    const char *h = strstr(a, "####");
    if (!h) return -1;
    const char *p = h + 4;
    while (*p == ' ') p++;
    char *x = malloc(strlen(p) + 1), *s = malloc((size_t)(h - a) + 1);
    if (!x || !s) return free(x), free(s), -1;
    size_t k = 0;
    for (; *p && *p != '\n'; p++)
        if (*p != ',') x[k++] = *p;
    while (k && x[k - 1] == ' ') k--;
    x[k] = 0;
    k = 0;
    for (const char *q = a; q < h; q++) {
        const char *e = q[0] == '<' && q[1] == '<' ? strstr(q, ">>") : NULL;
        if (e && e < h) q = e + 1;
        else s[k++] = *q;
    }
    while (k && (s[k - 1] == '\n' || s[k - 1] == ' ')) k--;
    s[k] = 0;
    *ans = x, *sol = s;
    return 0;
}

static int cd3_line(task *t, int i, const cJSON *j) {
    const cJSON *in = cJSON_GetObjectItem(j, "input"), *out = cJSON_GetObjectItem(j, "output");
    if (!cJSON_IsString(in) || !(t->answer[i] = num_text(out))) return -1;
    int *nums = t->nums + 6 * i, k = 0;
    for (const char *p = in->valuestring; *p;) {
        char *e;
        long v = strtol(p, &e, 10);
        if (e == p || v < 0 || v > 1000000 || k == 6) return -1;
        nums[k++] = (int)v;
        p = *e == ',' ? e + 1 : e;
        if (*e && *e != ',') return -1;
    }
    t->n_nums[i] = k;
    return k >= 2 ? 0 : -1;
}

static int file_line(task *t, int i, const cJSON *j) {
    if (t->kind == TASK_CD3) return cd3_line(t, i, j);
    if (t->kind == TASK_GSM8K) {
        const cJSON *q = cJSON_GetObjectItem(j, "question"), *a = cJSON_GetObjectItem(j, "answer");
        if (!cJSON_IsString(q) || !cJSON_IsString(a)) return -1;
        t->prompt[i] = strdup(q->valuestring);
        return gsm8k_answer(a->valuestring, &t->answer[i], &t->solution[i]);
    }
    const cJSON *p = cJSON_GetObjectItem(j, "prompt");
    if (!cJSON_IsString(p) || !(t->answer[i] = num_text(cJSON_GetObjectItem(j, "answer")))) return -1;
    t->prompt[i] = strdup(p->valuestring);
    return 0;
}

static int load_file(task *t, const char *path, dc_err *err) {
    char *txt;
    size_t n;
    int rc = file_read_all(path, &txt, &n, err);
    if (rc) return rc;
    int lines = 0;
    for (size_t i = 0; i < n; i++) lines += txt[i] == '\n';
    lines++;
    t->prompt = calloc(lines, sizeof(char *)), t->answer = calloc(lines, sizeof(char *));
    t->solution = calloc(lines, sizeof(char *)), t->nums = calloc((size_t)lines * 6, sizeof(int));
    t->n_nums = calloc(lines, sizeof(int));
    if (!t->prompt || !t->answer || !t->solution || !t->nums || !t->n_nums) {
        free(txt);
        return err_set(err, DC_ENOMEM, "task: out of memory for %s", path);
    }
    const char *want = t->kind == TASK_CD3 ? "{\"input\", \"output\"}" : t->kind == TASK_GSM8K
                                                                         ? "{\"question\", \"answer\"} with \"#### N\""
                                                                         : "{\"prompt\", \"answer\"}";
    int line = 0;
    for (char *s = txt, *e; s < txt + n && !rc; s = e + 1) {
        e = memchr(s, '\n', txt + n - s);
        if (!e) e = txt + n;
        *e = 0;
        line++;
        if (strspn(s, " \t\r") == strlen(s)) continue;
        cJSON *j = cJSON_Parse(s);
        if (!cJSON_IsObject(j) || file_line(t, t->n, j))
            rc = err_set(err, DC_EFORMAT, "%s:%d: not a task line %s", path, line, want);
        else t->n++;
        cJSON_Delete(j);
    }
    free(txt);
    if (!rc && !t->n) rc = err_set(err, DC_EFORMAT, "%s: no task lines", path);
    return rc;
}

/* ---------------------------------------------------------------- specs */

static int parse_opts(task *t, const char *o, dc_err *err) {
    while (o && *o) {
        char key[32], val[64];
        const char *e = strchr(o, ',');
        size_t len = e ? (size_t)(e - o) : strlen(o);
        if (sscanf(o, "%31[^=]=%63[^,]", key, val) != 2 || len > 90)
            return err_set(err, DC_EARG, "task %s: bad option \"%.*s\" (want key=value)", t->name, (int)len, o);
        long v = atol(val);
        if (!strcmp(key, "instruct") && (v == 0 || v == 1)) t->instruct = (int)v;
        else if (t->kind == TASK_ARITH && !strcmp(key, "digits") && v >= 1 && v <= 18) t->digits = (int)v;
        else if (t->kind == TASK_ARITH && !strcmp(key, "ops") && v >= 1 && v <= 8) t->ops = (int)v;
        else if (t->kind == TASK_ARITH && !strcmp(key, "opset") && strspn(val, "+-*") == strlen(val) && strlen(val) <= 3 && *val)
            snprintf(t->opset, sizeof t->opset, "%.3s", val); /* at most 3, checked above */
        else if (t->kind == TASK_COUNTDOWN && !strcmp(key, "nums") && v >= 2 && v <= 6) t->cd_k = (int)v;
        else return err_set(err, DC_EARG, "task %s: unknown option or bad value \"%s=%s\"", t->name, key, val);
        o = e ? e + 1 : NULL;
    }
    if (t->kind == TASK_ARITH && strchr(t->opset, '*') && t->digits * (t->ops + 1) > 36)
        return err_set(err, DC_EARG, "task arith: digits %d with %d operations can exceed 38 digits", t->digits, t->ops);
    return DC_OK;
}

int task_open(task *t, const char *spec, uint64_t seed, dc_err *err) {
    memset(t, 0, sizeof *t);
    t->fmt = (answer_fmt){1, ANS_TAG};
    t->digits = 2, t->ops = 1, t->cd_k = 3, t->seed = seed;
    snprintf(t->opset, sizeof t->opset, "+-");
    const char *colon = strchr(spec, ':'), *rest = colon ? colon + 1 : NULL;
    size_t kl = colon ? (size_t)(colon - spec) : strlen(spec);
    snprintf(t->name, sizeof t->name, "%.*s", (int)(kl < 31 ? kl : 31), spec);
    static const char *KINDS[] = {"arith", "countdown", "cd3", "gsm8k", "jsonl"};
    t->kind = -1;
    for (int k = 0; k < 5; k++)
        if (strlen(KINDS[k]) == kl && !strncmp(spec, KINDS[k], kl)) t->kind = k;
    if (t->kind < 0)
        return err_set(err, DC_EARG, "unknown task \"%s\" (arith, countdown, cd3, gsm8k, jsonl:FILE)", spec);
    if (t->kind <= TASK_COUNTDOWN) {
        int rc = parse_opts(t, rest, err);
        if (rc) task_close(t);
        return rc;
    }
    t->instruct = 1;
    char path[4096];
    const char *o = NULL;
    /* a file task's spec: PATH, then options ",instruct=0|1" */
    const char *opt = rest ? strstr(rest, ",instruct=") : NULL;
    if (rest && !strncmp(rest, "instruct=", 9)) o = rest, rest = NULL;
    else if (opt) o = opt + 1;
    snprintf(path, sizeof path, "%.*s", rest ? (int)(opt ? opt - rest : (long)strlen(rest)) : 0, rest ? rest : "");
    if (!path[0] && t->kind == TASK_JSONL) return err_set(err, DC_EARG, "task jsonl needs a file: jsonl:PATH");
    if (!path[0]) snprintf(path, sizeof path, "%s", t->kind == TASK_CD3 ? DEF_CD3 : DEF_GSM8K);
    int rc = parse_opts(t, o, err);
    if (!rc) rc = load_file(t, path, err);
    if (rc) task_close(t);
    return rc;
}

int64_t task_size(const task *t, int split) {
    if (t->kind <= TASK_COUNTDOWN) return -1;
    int hold = t->n / 10 > 0 ? t->n / 10 : 1;
    if (t->n == 1) hold = 0;
    return split == SPLIT_ALL ? t->n : split == SPLIT_EVAL ? (hold ? hold : t->n) : t->n - hold;
}

/* ---------------------------------------------------------------- items */

static void i128_text(__int128 v, char *out, size_t cap) {
    char b[48];
    int k = 0, neg = v < 0;
    unsigned __int128 u = neg ? -(unsigned __int128)v : (unsigned __int128)v;
    do b[k++] = (char)('0' + (int)(u % 10)), u /= 10;
    while (u);
    size_t o = 0;
    if (neg && o + 1 < cap) out[o++] = '-';
    while (k && o + 1 < cap) out[o++] = b[--k];
    out[o] = 0;
}

static char *dupf(const char *fmt, const char *a, const char *b) {
    size_t n = strlen(fmt) + strlen(a) + (b ? strlen(b) : 0) + 1;
    char *s = malloc(n);
    if (s) snprintf(s, n, fmt, a, b ? b : "");
    return s;
}

/* arith: M operations on D-digit numbers, * before + and -, worked out step by step */
static int arith_item(const task *t, rng *r, task_item *it) {
    __int128 v[10] = {0}, lo = 1, hi;
    char op[10], q[600] = "What is ", steps[2000] = "", a[48], b[48], c[48];
    for (int d = 1; d < t->digits; d++) lo *= 10;
    hi = lo * 10 - 1;
    if (t->digits == 1) lo = 1;
    int m = t->ops, n = m + 1;
    for (int i = 0; i < n; i++) {
        v[i] = lo + (__int128)(rng_u64(r) % (uint64_t)(hi - lo + 1));
        if (i < m) op[i] = t->opset[rng_u64(r) % strlen(t->opset)];
        i128_text(v[i], a, sizeof a);
        snprintf(q + strlen(q), sizeof q - strlen(q), i < m ? "%s %c " : "%s?", a, op[i]);
    }
    /* multiplications first, then left to right */
    for (int i = 0; i < n - 1;) {
        if (op[i] != '*') {
            i++;
            continue;
        }
        i128_text(v[i], a, sizeof a), i128_text(v[i + 1], b, sizeof b), i128_text(v[i] * v[i + 1], c, sizeof c);
        snprintf(steps + strlen(steps), sizeof steps - strlen(steps), "%s * %s = %s\n", a, b, c);
        v[i] *= v[i + 1];
        memmove(v + i + 1, v + i + 2, sizeof *v * (n - i - 2)), memmove(op + i, op + i + 1, (size_t)(n - i - 2));
        n--;
    }
    for (int i = 1; i < n; i++) {
        __int128 x = op[i - 1] == '+' ? v[0] + v[i] : v[0] - v[i];
        i128_text(v[0], a, sizeof a), i128_text(v[i], b, sizeof b), i128_text(x, c, sizeof c);
        snprintf(steps + strlen(steps), sizeof steps - strlen(steps), "%s %c %s = %s\n", a, op[i - 1], b, c);
        v[0] = x;
    }
    if (!steps[0]) i128_text(v[0], a, sizeof a), snprintf(steps, sizeof steps, "%s\n", a);
    steps[strlen(steps) - 1] = 0;
    i128_text(v[0], a, sizeof a);
    it->prompt = strdup(q), it->answer = strdup(a), it->solution = strdup(steps);
    return it->prompt && it->answer && it->solution ? 0 : -1;
}

static int countdown_item(const task *t, rng *r, task_item *it) {
    char sol[256], tg[16];
    int target;
    cd_generate(r, t->cd_k, it->nums, &target, sol, sizeof sol);
    it->n_nums = t->cd_k;
    snprintf(tg, sizeof tg, "%d", target);
    it->answer = strdup(tg), it->solution = strdup(sol);
    return it->answer && it->solution ? 0 : -1;
}

static char *countdown_prompt(const task_item *it) {
    char p[400] = "Using the numbers ";
    for (int i = 0; i < it->n_nums; i++)
        snprintf(p + strlen(p), sizeof p - strlen(p), "%d%s", it->nums[i], i + 1 < it->n_nums ? ", " : "");
    snprintf(p + strlen(p), sizeof p - strlen(p), ", make %s with + - * / using each number once.", it->answer);
    return strdup(p);
}

static const char *instruction(const task *t) {
    int cd = t->kind == TASK_COUNTDOWN || t->kind == TASK_CD3;
    switch (t->fmt.mark) {
    case ANS_TAG: return cd ? " Put the final equation in <answer></answer>." : " Put the final answer in <answer></answer>.";
    case ANS_BOXED: return cd ? " Put the final equation in \\boxed{}." : " Put the final answer in \\boxed{}.";
    default: return " End with the final answer as a number.";
    }
}

int task_get(const task *t, int split, int64_t i, task_item *it, dc_err *err) {
    memset(it, 0, sizeof *it);
    int rc = 0;
    if (t->kind <= TASK_COUNTDOWN) {
        rng r;
        rng_seed(&r, t->seed * 0x9e3779b97f4a7c15ull + (uint64_t)i * 0xbf58476d1ce4e5b9ull + (split == SPLIT_TRAIN ? 0 : 0x94d049bb133111ebull));
        rc = t->kind == TASK_ARITH ? arith_item(t, &r, it) : countdown_item(t, &r, it);
        if (!rc && t->kind == TASK_COUNTDOWN) rc = (it->prompt = countdown_prompt(it)) ? 0 : -1;
    } else {
        int64_t n = task_size(t, split), off = split == SPLIT_EVAL ? t->n - n : 0;
        if (i < 0 || i >= n) return err_set(err, DC_EARG, "task %s: item %lld of a split of %lld", t->name, (long long)i, (long long)n);
        int k = (int)(off + i);
        it->n_nums = t->n_nums[k];
        memcpy(it->nums, t->nums + 6 * k, sizeof it->nums);
        it->answer = strdup(t->answer[k]);
        it->prompt = t->kind == TASK_CD3 ? countdown_prompt(it) : strdup(t->prompt[k]);
        char sol[256];
        if (t->kind == TASK_CD3 && cd_solve(it->nums, it->n_nums, atol(it->answer), sol, sizeof sol))
            it->solution = strdup(sol);
        else if (t->solution[k]) it->solution = strdup(t->solution[k]);
        rc = it->answer && it->prompt ? 0 : -1;
    }
    if (!rc && t->instruct) {
        char *p = dupf("%s%s", it->prompt, instruction(t));
        free(it->prompt);
        rc = (it->prompt = p) ? 0 : -1;
    }
    if (rc) {
        task_item_free(it);
        return err_set(err, DC_ENOMEM, "task: out of memory");
    }
    return DC_OK;
}

/* ---------------------------------------------------------------- rewards */

void task_reward(const task *t, const task_item *it, const char *resp, size_t n, float format_weight, reward_out *o) {
    char a[4096], norm[4096];
    memset(o, 0, sizeof *o);
    o->format = reward_format(resp, n, &t->fmt);
    o->has_answer = answer_extract(resp, n, &t->fmt, a, sizeof a);
    if (o->has_answer) {
        if (t->kind == TASK_COUNTDOWN || t->kind == TASK_CD3)
            o->accuracy = cd_check(a, strlen(a), it->nums, it->n_nums, atol(it->answer));
        else
            o->accuracy = answer_equal(a, it->answer);
        const char *src = number_norm(a, strlen(a), norm, sizeof norm) ? norm : a;
        size_t k = strlen(src) < sizeof o->answer - 1 ? strlen(src) : sizeof o->answer - 1;
        memcpy(o->answer, src, k);
        o->answer[k] = 0;
    }
    o->reward = o->accuracy + format_weight * o->format;
}

char *task_response(const task *t, const task_item *it) {
    if (!it->solution) return NULL;
    int cd = t->kind == TASK_COUNTDOWN || t->kind == TASK_CD3;
    const char *ans = cd ? it->solution : it->answer;
    size_t n = strlen(it->solution) * 2 + strlen(it->answer) + 64;
    char *s = malloc(n), *reason = malloc(n);
    if (!s || !reason) return free(s), free(reason), NULL;
    if (cd) snprintf(reason, n, "%s = %s", it->solution, it->answer);
    else snprintf(reason, n, "%s", it->solution);
    const char *open = t->fmt.mark == ANS_TAG ? "<answer>" : t->fmt.mark == ANS_BOXED ? "\\boxed{" : "The answer is ";
    const char *close = t->fmt.mark == ANS_TAG ? "</answer>" : t->fmt.mark == ANS_BOXED ? "}" : ".";
    if (t->fmt.think) snprintf(s, n, "<think>\n%s\n</think>\n%s%s%s", reason, open, ans, close);
    else snprintf(s, n, "%s\n%s%s%s", reason, open, ans, close);
    free(reason);
    return s;
}
