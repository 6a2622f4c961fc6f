/*
 * task.h — verifiable tasks for GRPO, evaluation and distillation: where the
 * prompts come from, what the right answer is, and the rule reward
 * (reward.h, countdown.h) that checks a response.
 *
 * A task is named by a spec "KIND[:k=v,...]" or "KIND:PATH":
 *   arith[:digits=D,ops=M,opset=+-*]   generated multi-digit arithmetic, D-digit
 *                                      numbers and M operations (difficulty knob;
 *                                      default 2 digits, 1 op, "+-"), exact
 *                                      integers, the usual precedence
 *   countdown[:nums=K]                 generated Countdown: K (3) numbers in
 *                                      1..100, a target reachable through
 *                                      positive whole steps
 *   cd3[:PATH]                         CD3 lines {"input": "30,100,93", "output": "23"}
 *                                      (default ../shared/data/math/countdown_cd3_test.jsonl)
 *   gsm8k[:PATH]                       GSM8K lines {"question", "answer"}, the answer
 *                                      the number after "####" (default
 *                                      ../shared/data/math/gsm8k_train.jsonl)
 *   jsonl:PATH                         any {"prompt", "answer"} lines
 * Each takes ",instruct=0|1" too: a sentence saying how to mark the answer,
 * appended to the prompt (default: on for file tasks, off for generated).
 *
 * Splits: generated tasks draw training items from seed and held-out items
 * from an independent stream; a file keeps its last tenth (at least one
 * line) as the held-out split when it is trained on; SPLIT_ALL is every line
 * (a file used only for evaluation).
 *
 * Reward of a response: accuracy (1 or 0) + format_weight * format (1 or 0);
 * Countdown's accuracy is cd_check of the marked equation.
 */
#ifndef DC_TASK_H
#define DC_TASK_H
#include <stdint.h>
#include "deepc.h"
#include "train/reward.h"

enum { TASK_ARITH, TASK_COUNTDOWN, TASK_CD3, TASK_GSM8K, TASK_JSONL };
enum { SPLIT_TRAIN, SPLIT_EVAL, SPLIT_ALL };

typedef struct task_item {
    char *prompt;           /* the user's message (owned) */
    char *answer;           /* the expected answer: a number, text, or Countdown's target (owned) */
    char *solution;         /* a worked solution in the task's format, or NULL (owned) */
    int nums[6], n_nums;    /* Countdown: the numbers to use */
} task_item;
void task_item_free(task_item *it);

typedef struct task {
    int kind;               /* TASK_* */
    char name[32];
    answer_fmt fmt;         /* default: the R1 format, <answer> tags */
    int instruct;
    int digits, ops;        /* arith */
    char opset[4];
    int cd_k;               /* countdown */
    uint64_t seed;
    /* file tasks: n lines, (n, ...) owned */
    int n;
    char **prompt, **answer, **solution;
    int *nums, *n_nums;     /* (n, 6), (n) */
} task;

/* task_open: a task from its spec (above); seed for the generated ones. */
int task_open(task *t, const char *spec, uint64_t seed, dc_err *err);
void task_close(task *t);
/* task_size: the items of a split; -1 when unbounded (generated). */
int64_t task_size(const task *t, int split);
/* task_get: item i of a split (i < task_size; generated: any i >= 0). */
int task_get(const task *t, int split, int64_t i, task_item *it, dc_err *err);

typedef struct reward_out {
    double reward, accuracy, format;
    int has_answer;         /* a marked answer was found */
    char answer[256];       /* it, trimmed (normalised when a number): for majority votes */
} reward_out;
/* task_reward: the rule reward of response (n bytes) to it. */
void task_reward(const task *t, const task_item *it, const char *resp, size_t n, float format_weight, reward_out *o);
/* task_response: the worked solution as the assistant's text in the task's
 * format ("<think>\n...\n</think>\n<answer>..</answer>"); malloc'd, NULL
 * when the item has no solution. */
char *task_response(const task *t, const task_item *it);
#endif
