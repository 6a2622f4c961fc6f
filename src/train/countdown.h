/*
 * countdown.h — the Countdown numbers game as TinyZero and d1's CD3 use it:
 * make the target from the given numbers with + - * / and parentheses, each
 * number used exactly once.
 *
 * cd_eval is a parser of our own (no eval of anything), recursive descent
 * over
 *   expr   := term (('+' | '-') term)*
 *   term   := factor (('*' | '/') factor)*
 *   factor := number | '(' expr ')'
 * with spaces anywhere, no unary minus, numbers of at most 9 digits,
 * nesting at most 64 deep. Values are exact rationals (int64 numerator and
 * denominator, reduced, every operation overflow-checked), so 7/2*2 is 7;
 * division by zero is an error, never a crash.
 */
#ifndef DC_COUNTDOWN_H
#define DC_COUNTDOWN_H
#include <stddef.h>
#include <stdint.h>
#include "base/rng.h"

enum { CD_OK = 0, CD_SYNTAX = -1, CD_DIVZERO = -2, CD_OVERFLOW = -3, CD_TOO_MANY = -4 };

/* cd_eval: the value num/den (den > 0) of the expression s (n bytes); the
 * numbers it uses into used (at most cap, *n_used). CD_* */
int cd_eval(const char *s, size_t n, int64_t *num, int64_t *den, int *used, int *n_used, int cap);
/* cd_check: 1 when the equation uses exactly the numbers nums[0..k) (as a
 * multiset) and equals target. "expr = target" is accepted (the right side
 * must then be the target). */
int cd_check(const char *eq, size_t n, const int *nums, int k, long target);
/* cd_generate: k (2..6) numbers in 1..100 and a target in 1..999 reachable
 * through positive whole intermediate results; solution: one such equation. */
void cd_generate(rng *r, int k, int *nums, int *target, char *solution, size_t cap);
/* cd_solve: an equation of nums[0..k) (k <= 6) equal to target into out; 1
 * when there is one (exact rationals, as cd_eval). */
int cd_solve(const int *nums, int k, long target, char *out, size_t cap);
#endif
