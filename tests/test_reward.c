/*
 * test_reward.c — the rule rewards (src/train/reward.c) and the Countdown
 * parser (src/train/countdown.c) against adversarial answers: empty, several
 * answers, an answer only inside <think>, </think> twice, huge numbers,
 * non-UTF-8 bytes, Countdown equations that reuse a number, leave one out,
 * divide by zero, overflow, nest too deep or smuggle in other syntax.
 */
#include <stdlib.h>
#include <string.h>
#include "base/rng.h"
#include "harness.h"
#include "train/countdown.h"
#include "train/reward.h"

static const answer_fmt TAG = {1, ANS_TAG}, BOX = {1, ANS_BOXED}, LAST = {1, ANS_LAST}, PLAIN_LAST = {0, ANS_LAST};

/* acc: 1 when resp's answer under f equals expected */
static int acc(const char *resp, const answer_fmt *f, const char *expected) {
    char a[512];
    return answer_extract(resp, strlen(resp), f, a, sizeof a) && answer_equal(a, expected);
}

static void accuracy(void) {
    CHECK(acc("27 + 48 = 75\n</think>\n<answer>75</answer>", &TAG, "75"), "plain right answer");
    CHECK(!acc("27 + 48 = 75\n</think>\n<answer>76</answer>", &TAG, "75"), "wrong answer");
    CHECK(acc("x</think> <answer> 1,234.50 </answer>", &TAG, "1234.5"), "commas, spaces, trailing zeros");
    CHECK(acc("x</think><answer>-0</answer>", &TAG, "0"), "-0 is 0");
    CHECK(acc("x</think><answer>007</answer>", &TAG, "7"), "leading zeros");
    CHECK(!acc("x</think><answer>7.0001</answer>", &TAG, "7"), "no float fuzz");
    CHECK(!acc("x</think><answer>12,34</answer>", &TAG, "1234"), "bad comma groups are not a number");
    CHECK(!acc("", &TAG, "75"), "empty response");
    CHECK(!acc("</think>", &TAG, "75"), "nothing after </think>");
    CHECK(!acc("<answer>75</answer> no think close", &TAG, "75"), "no </think>");
    CHECK(!acc("<answer>75</answer></think>", &TAG, "75"), "the answer only inside the reasoning");
    CHECK(!acc("a</think><answer>75</answer></think><answer>75</answer>", &TAG, "75"), "</think> twice");
    CHECK(!acc("a</think><answer>75</answer><answer>75</answer>", &TAG, "75"), "two answers (even equal)");
    CHECK(!acc("a</think><answer>75</answer><answer>9</answer>", &TAG, "75"), "two different answers");
    CHECK(!acc("a</think></answer>75<answer>", &TAG, "75"), "tags in the wrong order");
    CHECK(!acc("a</think><answer>75", &TAG, "75"), "unclosed tag");
    /* \boxed */
    CHECK(acc("a</think>so \\boxed{75}.", &BOX, "75"), "boxed");
    CHECK(acc("a</think>\\boxed{\\frac{1}{2}}", &BOX, "\\frac{1}{2}"), "nested braces kept whole");
    CHECK(!acc("a</think>\\boxed{75} or \\boxed{76}", &BOX, "75"), "two boxed");
    CHECK(!acc("a</think>\\boxed{75", &BOX, "75"), "unbalanced brace");
    CHECK(!acc("\\boxed{75}</think>none", &BOX, "75"), "boxed inside the reasoning");
    /* last number */
    CHECK(acc("a</think>3 + 4 = 7, so the answer is 12", &LAST, "12"), "last number");
    CHECK(acc("a</think>it is -12.", &LAST, "-12"), "negative last number");
    CHECK(acc("a</think>10 - 3 = 7", &LAST, "7"), "minus is not a sign after a digit");
    CHECK(!acc("a</think>no number", &LAST, "12"), "no number");
    CHECK(acc("the answer is 42", &PLAIN_LAST, "42"), "without the think format");
    /* huge numbers compare exactly */
    const char *big = "123456789012345678901234567890";
    char r[200];
    snprintf(r, sizeof r, "x</think><answer>%s</answer>", big);
    CHECK(acc(r, &TAG, big), "30-digit number equal to itself");
    CHECK(!acc(r, &TAG, "123456789012345678901234567891"), "30-digit numbers that differ in the last digit");
    CHECK(!acc("x</think><answer>1e30</answer>", &TAG, "1000000000000000000000000000000"), "no exponent forms");
    /* a very long answer does not overflow anything */
    size_t n = 100000;
    char *lg = malloc(n + 64);
    strcpy(lg, "x</think><answer>");
    memset(lg + strlen(lg), '9', n);
    strcpy(lg + 17 + n, "</answer>");
    CHECK(!acc(lg, &TAG, "9"), "100k-digit answer");
    free(lg);
    /* non-UTF-8 bytes and embedded NUL: bytes, no crash */
    const char bin[] = "\xff\xfe</think>\x80<answer>\xc3\x28 5</answer>";
    char a[64];
    CHECK(answer_extract(bin, sizeof bin - 1, &TAG, a, sizeof a) == 1 && !answer_equal(a, "5"), "non-UTF-8 inside");
    const char nul[] = "a</think><answer>5\0</answer>";
    CHECK(answer_extract(nul, sizeof nul - 1, &TAG, a, sizeof a) == 1, "NUL in the answer region is a byte");
    /* non-numeric expected answers compare as text */
    CHECK(acc("a</think><answer> Paris </answer>", &TAG, "Paris"), "text answer");
    CHECK(!acc("a</think><answer>paris</answer>", &TAG, "Paris"), "text is exact");
}

static void format(void) {
    struct {
        const char *r;
        const answer_fmt *f;
        int want;
    } cases[] = {
        {"reason</think>\n<answer>5</answer>", &TAG, 1},
        {"<think>reason</think><answer>5</answer>", &TAG, 1},
        {"reason</think><answer>5</answer></think>", &TAG, 0},
        {"</think>reason<think><answer>5</answer>", &TAG, 0},
        {"<think><think>r</think><answer>5</answer>", &TAG, 0},
        {"reason<answer>5</answer>", &TAG, 0},
        {"reason</think>5", &TAG, 0},
        {"reason</think><answer>5</answer><answer>5</answer>", &TAG, 0},
        {"reason</think>\\boxed{5}", &BOX, 1},
        {"reason</think>\\boxed{5}\\boxed{6}", &BOX, 0},
        {"reason</think>five", &LAST, 0},
        {"", &TAG, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
        CHECK(reward_format(cases[i].r, strlen(cases[i].r), cases[i].f) == cases[i].want, "format of \"%s\": want %d",
              cases[i].r, cases[i].want);
}

static void countdown(void) {
    int nums[3] = {30, 100, 93};
    CHECK(cd_check("100 - 93 + 30", 13, nums, 3, 37), "a right equation");
    CHECK(cd_check("(100 - 93) + 30 = 37", 20, nums, 3, 37), "with '= target'");
    CHECK(!cd_check("(100 - 93) + 30 = 38", 20, nums, 3, 37), "a wrong right-hand side");
    CHECK(!cd_check("100 - 93 + 30", 13, nums, 3, 38), "wrong value");
    CHECK(!cd_check("100 - 93 + 30 + 30", 18, nums, 3, 67), "a number used twice");
    CHECK(!cd_check("100 - 93", 8, nums, 3, 7), "a number left out");
    CHECK(!cd_check("100 - 63 + 0", 12, nums, 3, 37), "numbers not given");
    CHECK(!cd_check("", 0, nums, 3, 0), "empty");
    CHECK(!cd_check("-30 + 100 - 93", 14, nums, 3, -23), "no unary minus");
    int z[3] = {5, 5, 0};
    CHECK(!cd_check("5 / (5 - 5) + 0", 15, z, 3, 0), "division by zero is wrong, not a crash");
    int64_t num, den;
    int used[16], nu;
    CHECK(cd_eval("7 / (3 - 3)", 11, &num, &den, used, &nu, 16) == CD_DIVZERO, "division by zero reported");
    CHECK(cd_eval("7 / 2 * 2", 9, &num, &den, used, &nu, 16) == CD_OK && num == 7 && den == 1, "exact rationals");
    CHECK(cd_eval("999999999 * 999999999 * 999999999", 33, &num, &den, used, &nu, 16) == CD_OVERFLOW, "overflow caught");
    CHECK(cd_eval("1234567890", 10, &num, &den, used, &nu, 16) == CD_SYNTAX, "10-digit number refused");
    CHECK(cd_eval("(1 + 2", 6, &num, &den, used, &nu, 16) == CD_SYNTAX, "unclosed parenthesis");
    CHECK(cd_eval("1 + 2)", 6, &num, &den, used, &nu, 16) == CD_SYNTAX, "stray parenthesis");
    CHECK(cd_eval("1 ** 2", 6, &num, &den, used, &nu, 16) == CD_SYNTAX, "no power");
    CHECK(cd_eval("system(1)", 9, &num, &den, used, &nu, 16) == CD_SYNTAX, "letters");
    CHECK(cd_eval("1+\xff", 3, &num, &den, used, &nu, 16) == CD_SYNTAX, "non-UTF-8");
    CHECK(cd_eval("1+2+3", 5, &num, &den, used, &nu, 2) == CD_TOO_MANY, "more numbers than room");
    char deep[400];
    memset(deep, '(', 100), deep[100] = '1', memset(deep + 101, ')', 100), deep[201] = 0;
    CHECK(cd_eval(deep, 201, &num, &den, used, &nu, 16) == CD_SYNTAX, "nesting beyond 64 refused");
    memset(deep, '(', 60), deep[60] = '1', memset(deep + 61, ')', 60), deep[121] = 0;
    CHECK(cd_eval(deep, 121, &num, &den, used, &nu, 16) == CD_OK && num == 1, "nesting of 60 is fine");
    /* generated puzzles: reachable, and the solver finds a solution the checker accepts */
    rng r;
    rng_seed(&r, 3);
    int bad = 0, unsolved = 0;
    for (int i = 0; i < 200; i++) {
        int k = 3 + i % 2, ns[6], target;
        char sol[256], found[256];
        cd_generate(&r, k, ns, &target, sol, sizeof sol);
        for (int j = 0; j < k; j++) bad += ns[j] < 1 || ns[j] > 100;
        bad += target < 1 || target > 999 || !cd_check(sol, strlen(sol), ns, k, target);
        if (!cd_solve(ns, k, target, found, sizeof found) || !cd_check(found, strlen(found), ns, k, target)) unsolved++;
    }
    CHECK(bad == 0, "%d generated puzzles out of range or with a wrong solution", bad);
    CHECK(unsolved == 0, "%d generated puzzles the solver could not solve", unsolved);
}

int main(void) {
    RUN(accuracy);
    RUN(format);
    RUN(countdown);
    return harness_done();
}
