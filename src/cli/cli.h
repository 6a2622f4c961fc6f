/*
 * cli.h — the deepc command line: one binary, git-style subcommands. Each
 * subcommand lives in its own cmd_*.c, parses its options with getopt_long
 * and is the only place that prints errors or picks exit codes.
 */
#ifndef DC_CLI_H
#define DC_CLI_H
#include <stdint.h>
#include "deepc.h"

typedef struct cli_cmd {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} cli_cmd;

int cmd_init(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_logits(int argc, char **argv);
int cmd_train(int argc, char **argv);   /* cmd_train.c */
int cmd_prepare(int argc, char **argv); /* cmd_prepare.c */
int cmd_plot(int argc, char **argv);    /* cmd_plot.c */
int cmd_tokenize(int argc, char **argv);        /* cmd_tokenize.c */
int cmd_detokenize(int argc, char **argv);      /* cmd_tokenize.c */
int cmd_tokenizer_train(int argc, char **argv); /* cmd_tok_train.c */
int cmd_generate(int argc, char **argv);       /* cmd_generate.c */
int cmd_chat(int argc, char **argv);           /* cmd_chat.c */
int cmd_bench(int argc, char **argv);          /* cmd_bench.c */
int cmd_perplexity(int argc, char **argv);     /* cmd_perplexity.c */
int cmd_serve(int argc, char **argv);          /* cmd_serve.c */
int cmd_convert(int argc, char **argv);         /* cmd_convert.c */
int cmd_quantize(int argc, char **argv);        /* cmd_convert.c */
int cmd_sft(int argc, char **argv);             /* cmd_sft.c */
int cmd_eval(int argc, char **argv);            /* cmd_eval.c */
int cmd_task(int argc, char **argv);            /* cmd_task.c */
int cmd_grpo(int argc, char **argv);            /* cmd_grpo.c */
int cmd_distill(int argc, char **argv);         /* cmd_distill.c */

/* cli_error: print "deepc CMD: error: MSG" to stderr; returns the exit code 1. */
int cli_error(const char *cmd, const dc_err *err);
/* cli_usage_error: print a usage problem and the hint to run --help; returns 2. */
int cli_usage_error(const char *cmd, const char *fmt, ...);
/* cli_parse_ids: "1,2,3" -> malloc'd ints; 0 on success. */
int cli_parse_ids(const char *s, int **ids, int *n, dc_err *err);
/* cli_parse_int: a whole decimal integer within [lo, hi]. */
int cli_parse_int(const char *s, long lo, long hi, long *out);
/* CLI_OPT_KV: getopt_long's value for --kv-type in every command that has it;
 * cli_parse_kv_type: "bf16" -> DC_KV_BF16, "f32" -> DC_KV_F32, else -1. */
#define CLI_OPT_KV 1001
/* the sampler's OpenAI penalties (infer_cli.c parses them for generate and chat) */
#define CLI_OPT_PRESENCE 1002
#define CLI_OPT_FREQUENCY 1003
#define CLI_KV_HELP "      --kv-type T        the latent KV cache's elements: bf16 (default, half the bytes) or f32\n"
int cli_parse_kv_type(const char *s);
/* cli_parse_float: a whole decimal number within [lo, hi]. */
int cli_parse_float(const char *s, float lo, float hi, float *out);
/* cli_finish: flush and close stdout after command cmd returned exit code
 * rc; a write that failed on the way (a full disk, a closed pipe) is an
 * error message and exit code 1, never a silent 0. */
int cli_finish(const char *cmd, int rc);
/* cli_note_write_error: remember errno of a failed write to stdout for the
 * message cli_finish prints (stdio may not report it again at the end). */
void cli_note_write_error(int e);
/* cli_remove_temps_on_signal: SIGINT, SIGTERM and SIGHUP remove the
 * temporary files being written (base/file.h afile_unlink_all), then end the
 * process as the signal would have. For commands that write large files. */
void cli_remove_temps_on_signal(void);
/* cli_kernels: the name of the kernel variant in use ("avx2", ...). */
const char *cli_kernels(void);
/* cli_threads: apply -t N (0 = all cores) to the main thread (OpenMP, OpenBLAS). */
void cli_threads(long n);
int cli_get_threads(void);
/* cli_omp_policy_reexec: first thing in main: unless OMP_WAIT_POLICY is set,
 * set it to policy and re-execute the program (process.c says why). */
void cli_omp_policy_reexec(char **argv, const char *policy);
/* cli_progress_bars: draw the library's progress reports (loading, writing,
 * init) as a bar with ETA on stderr (progress_bar.c). */
void cli_progress_bars(void);
#endif
