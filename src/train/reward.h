/*
 * reward.h — rule-based outcome rewards (R1 §2.2.2): is the final answer
 * right, is the format right. Nothing here runs a model; everything works on
 * the bytes of a response (any bytes: invalid UTF-8 is just bytes).
 *
 * The response is what the model wrote after the prompt. In the R1 format
 * (think = 1) the prompt ends with "<think>\n" and the response is
 * "reasoning</think>answer": the answer is taken from after the one
 * "</think>"; a response with no "</think>", or with two, has no answer.
 * The task says how the answer is marked in that text:
 *   ANS_TAG    <answer>...</answer>
 *   ANS_BOXED  \boxed{...}              (braces balanced)
 *   ANS_LAST   the last number
 * More than one marked answer (two <answer> tags, two \boxed) is no answer.
 *
 * Numbers compare exactly, as decimal strings: sign, digits (commas between
 * groups of three allowed), an optional fraction; "1,234.50" == "1234.5",
 * "-0" == "0"; no float conversion, so 30-digit numbers compare right.
 * An expected answer that is not a number compares as trimmed text.
 *
 * Format (think = 1): "</think>" exactly once, "<think>" at most once and
 * before it; then the marker once ("<answer>" and "</answer>" once each, in
 * order; one \boxed{}; or some number for ANS_LAST).
 */
#ifndef DC_REWARD_H
#define DC_REWARD_H
#include <stddef.h>

enum { ANS_TAG = 0, ANS_BOXED = 1, ANS_LAST = 2 };

typedef struct answer_fmt {
    int think;   /* 1: the R1 format, the answer after "</think>" */
    int mark;    /* ANS_* */
} answer_fmt;

/* answer_extract: the marked answer of resp (n bytes), trimmed, into out
 * (cap bytes, NUL-terminated); 1 when exactly one was found, else 0. */
int answer_extract(const char *resp, size_t n, const answer_fmt *f, char *out, size_t cap);
/* number_norm: s (n bytes) as a canonical decimal ("-12.5", "0") into out;
 * 1 when s is a number, else 0. */
int number_norm(const char *s, size_t n, char *out, size_t cap);
/* answer_equal: the extracted answer a equals the expected one e. */
int answer_equal(const char *a, const char *e);
/* reward_format: 1 when the response has the format of f, else 0. */
int reward_format(const char *resp, size_t n, const answer_fmt *f);
#endif
