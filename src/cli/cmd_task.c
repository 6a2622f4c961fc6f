/*
 * cmd_task.c — `deepc task`: a task's items as data files: SFT pairs with
 * worked solutions, {"prompt", "answer"} lines, or plain text for
 * pretraining.
 */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "base/err.h"
#include "cli/cli.h"
#include "cli/opts.h"
#include "train/task.h"

static const char *HELP =
    "usage: deepc task --task TASK [--n N] [--as sft|qa|text] [options] > FILE\n"
    "\n"
    "Writes N items of a task (see `deepc eval --help` for TASK) to stdout:\n"
    "  --as sft    JSONL {\"prompt\", \"response\"}: the worked solution in the task's format\n"
    "              (items without one are left out): data for `deepc sft`\n"
    "  --as qa     JSONL {\"prompt\", \"answer\"}: a task file for jsonl:FILE\n"
    "  --as text   prompt, worked solution, blank line: a corpus for `deepc prepare`\n"
    "  --n N             items (1000)\n"
    "  --split S         train (default), eval or all\n"
    "  --answer A        tag (default), boxed or last; --no-think: no <think> part\n"
    "  --seed N          the generated tasks' seed (1)\n";

int cmd_task(int argc, char **argv) {
    const char *spec = NULL, *as = "sft", *split = "train", *answer = "tag";
    long n = 1000, seed = 1;
    int no_think = 0;
    const cli_opt OPTS[] = {{"task", 0, OPT_STR, &spec, 0, 0, 0}, {"as", 0, OPT_STR, &as, 0, 0, 0},
                            {"n", 0, OPT_LONG, &n, 1, 1e9, 0}, {"split", 0, OPT_STR, &split, 0, 0, 0},
                            {"answer", 0, OPT_STR, &answer, 0, 0, 0}, {"no-think", 0, OPT_FLAG, &no_think, 0, 0, 0},
                            {"seed", 0, OPT_LONG, &seed, 0, 9.2e18, 0}};
    const int NO = sizeof OPTS / sizeof *OPTS;
    unsigned char given[sizeof OPTS / sizeof *OPTS];
    int done, rc = cli_opts_parse("task", HELP, OPTS, NO, argc, argv, given, &done);
    if (rc || done) return rc;
    if (!spec) return cli_usage_error("task", "--task TASK is required");
    int mode = !strcmp(as, "sft") ? 0 : !strcmp(as, "qa") ? 1 : !strcmp(as, "text") ? 2 : -1;
    int sp = !strcmp(split, "train") ? SPLIT_TRAIN : !strcmp(split, "eval") ? SPLIT_EVAL : !strcmp(split, "all") ? SPLIT_ALL : -1;
    int mark = !strcmp(answer, "tag") ? ANS_TAG : !strcmp(answer, "boxed") ? ANS_BOXED : !strcmp(answer, "last") ? ANS_LAST : -1;
    if (mode < 0 || sp < 0 || mark < 0) return cli_usage_error("task", "bad --as, --split or --answer");
    dc_err err = {0};
    task t;
    if ((rc = task_open(&t, spec, (uint64_t)seed, &err))) return cli_error("task", &err);
    t.fmt = (answer_fmt){!no_think, mark};
    int64_t size = task_size(&t, sp);
    if (size >= 0 && size < n) n = (long)size;
    for (long i = 0; i < n && !rc; i++) {
        task_item it;
        if ((rc = task_get(&t, sp, i, &it, &err))) break;
        char *resp = task_response(&t, &it);
        if (mode == 2 && resp) printf("%s\n%s\n\n", it.prompt, resp);
        if (mode < 2 && (mode == 1 || resp)) {
            cJSON *j = cJSON_CreateObject();
            cJSON_AddStringToObject(j, "prompt", it.prompt);
            cJSON_AddStringToObject(j, mode ? "answer" : "response", mode ? it.answer : resp);
            char *s = cJSON_PrintUnformatted(j);
            if (s) puts(s);
            free(s);
            cJSON_Delete(j);
        }
        free(resp);
        task_item_free(&it);
    }
    task_close(&t);
    if (!rc && (fflush(stdout) || ferror(stdout))) rc = err_set(&err, DC_EIO, "cannot write to stdout");
    return rc ? cli_error("task", &err) : 0;
}
