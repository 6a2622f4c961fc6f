/*
 * opts.h — the training commands' options as one table: parsing (getopt_long),
 * and the run's settings, which go into every checkpoint and come back on
 * --resume. Resuming takes the stored value of every setting not given on
 * the command line; a setting given with another value is refused, naming
 * both, unless the table marks it as one that may change (then the change is
 * printed).
 */
#ifndef DC_CLI_OPTS_H
#define DC_CLI_OPTS_H
#include <cjson/cJSON.h>
#include "deepc.h"

enum { OPT_INT = 'i', OPT_LONG = 'l', OPT_FLOAT = 'f', OPT_STR = 's', OPT_FLAG = 'b', OPT_UNFLAG = 'u' };
enum { SET_NO = 0, SET_FIXED = 1, SET_MAY_CHANGE = 2 };

typedef struct cli_opt {
    const char *name;        /* long option name */
    int key;                 /* short option letter, or 0 */
    char type;               /* OPT_*: FLAG sets an int to 1, UNFLAG to 0 */
    void *dst;               /* int, long, float, const char * or int */
    double lo, hi;           /* the range of numbers */
    int setting;             /* SET_* */
} cli_opt;

/* cli_opts_parse: 0 when parsed, else the exit code: 0 after --help
 * (*done set), 2 after a usage error (printed). given[i]: option i appeared. */
int cli_opts_parse(const char *cmd, const char *help, const cli_opt *o, int n, int argc, char **argv,
                   unsigned char *given, int *done);
/* cli_opts_settings: the settings as a JSON object (caller deletes). */
cJSON *cli_opts_settings(const cli_opt *o, int n);
/* cli_opts_resume: merge the stored settings (see above); strings point into
 * stored, which must outlive their use. */
int cli_opts_resume(const char *cmd, const cli_opt *o, int n, const unsigned char *given, const cJSON *stored,
                    const char *ckdir, dc_err *err);

/* The training precision's options, shared by train, sft, grpo and distill:
 * CLI_PREC_OPTS(prec_str, moments_int) are two table rows (both run
 * settings, fixed on --resume); cli_precision then sets o->precision from
 * the name (a usage error, exit code 2, for an unknown one). */
#define CLI_PREC_HELP                                                                                             \
    "  --precision P         f32 (default), bf16 or fp8: the linear layers' GEMMs (DeepSeek-V3 §3.3;\n"            \
    "                        f32 master weights; see src/kernels/linear.h)\n"                                     \
    "  --bf16-moments        keep AdamW's moments in bfloat16 (2 bytes each instead of 4)\n"
#define CLI_PREC_OPTS(prec, moments)                                                                              \
    {"precision", 0, OPT_STR, &(prec), 0, 0, SET_FIXED}, {"bf16-moments", 0, OPT_FLAG, &(moments), 0, 0, SET_FIXED}
struct train_opts;
int cli_precision(const char *cmd, const char *prec, struct train_opts *o);
#endif
