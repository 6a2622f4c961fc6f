/* main.c — `deepc COMMAND [options]`: dispatch to the subcommands. */
#include <stdio.h>
#include <string.h>
#include "cli/cli.h"
#include "dist/dist.h"
#include "kernels/blas_core.h"

static const cli_cmd CMDS[] = {
    {"init", cmd_init, "write a randomly initialised model in the Hugging Face layout"},
    {"info", cmd_info, "parameters, bytes and KV-cache size of a model or preset"},
    {"logits", cmd_logits, "run the forward pass and write the logits of every position"},
    {"prepare", cmd_prepare, "tokenise text or JSONL into training shards"},
    {"train", cmd_train, "pretrain a DeepSeek-architecture model (MLA + MoE + MTP)"},
    {"sft", cmd_sft, "supervised fine-tuning on conversations, the loss on assistant tokens"},
    {"grpo", cmd_grpo, "reinforcement learning with rule rewards (GRPO, DAPO's refinements)"},
    {"distill", cmd_distill, "a teacher's verified answers as SFT data for a student (optionally logit KD)"},
    {"eval", cmd_eval, "accuracy on a verifiable task: pass@1, maj@K, pass@K, format rate"},
    {"task", cmd_task, "a verifiable task's items as SFT data, task files or a corpus"},
    {"plot", cmd_plot, "draw a run's loss curves to a PNG"},
    {"tokenize", cmd_tokenize, "text to token ids (DeepSeek byte-level BPE)"},
    {"detokenize", cmd_detokenize, "token ids back to text"},
    {"tokenizer-train", cmd_tokenizer_train, "train a byte-level BPE and write a tokenizer.json"},
    {"generate", cmd_generate, "complete a prompt, streaming the text (sampling, MTP speculative decoding)"},
    {"chat", cmd_chat, "talk with a model in the terminal (chat template, cache kept across turns)"},
    {"serve", cmd_serve, "an OpenAI-compatible HTTP server with a web chat (continuous batching)"},
    {"bench", cmd_bench, "prefill and decode speed against the memory-bandwidth bound"},
    {"perplexity", cmd_perplexity, "perplexity of a model on a text (sliding windows, with its error)"},
    {"convert", cmd_convert, "a checkpoint to a llama.cpp GGUF file (deepseek2) and back"},
    {"quantize", cmd_quantize, "rewrite a GGUF file in another type (q8_0, q4_0, q4_k, q6_k, ...)"},
};

static void usage(FILE *f) {
    fprintf(f, "usage: deepc COMMAND [options]   (deepc COMMAND --help for its options)\n"
               "       deepc --version\n\ncommands:\n");
    for (size_t i = 0; i < sizeof CMDS / sizeof *CMDS; i++) fprintf(f, "  %-16s %s\n", CMDS[i].name, CMDS[i].summary);
}

int main(int argc, char **argv) {
    /* decoding runs many short parallel regions, and so does training since its
     * GEMMs got fast (AMX): spin between them (process.c); the rest (data
     * preparation, conversion) sleeps, which shares the cores better */
    static const char *const SPIN[] = {"generate", "chat", "bench", "logits", "train", "sft", "grpo", "distill"};
    const char *policy = "passive";
    for (size_t i = 0; argc > 1 && i < sizeof SPIN / sizeof *SPIN; i++)
        if (strcmp(argv[1], SPIN[i]) == 0) policy = "active";
    cli_omp_policy_reexec(argv, policy);
    if (argc > 1 && (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "version") == 0)) {
        printf("deepc %s (%s; kernels: %s; OpenBLAS core: %s)\n", dc_version(), dc_build_info(), cli_kernels(),
               blas_core_name());
        return cli_finish("version", 0);
    }
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    for (size_t i = 0; i < sizeof CMDS / sizeof *CMDS; i++)
        if (strcmp(argv[1], CMDS[i].name) == 0) {
            /* under mpirun: MPI (src/dist/); a plain run: nothing */
            dc_err err = {0};
            if (dist_start(&argc, &argv, &err)) {
                fprintf(stderr, "deepc %s: error: %s\n", CMDS[i].name, err.msg);
                return 1;
            }
            cli_threads(0);
            cli_progress_bars();
            int rc = cli_finish(CMDS[i].name, CMDS[i].run(argc - 1, argv + 1));
            /* a failed rank ends the whole job (the others may wait on it in a collective) */
            if (rc && dist_world_size() > 1) dist_abort(rc);
            dist_stop();
            return rc;
        }
    fprintf(stderr, "deepc: unknown command '%s'\n\n", argv[1]);
    usage(stderr);
    return 2;
}
