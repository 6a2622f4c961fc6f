/*
 * cmd_tokenize.c — `deepc tokenize` (text -> ids or pieces) and
 * `deepc detokenize` (ids -> text), over a tokenizer.json, a model directory
 * holding one, or a GGUF file's tokenizer metadata.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "base/progress.h"
#include "base/err.h"
#include "base/file.h"
#include "cli/cli.h"

static const char *HELP_TOK =
    "usage: deepc tokenize (-m DIR | --tokenizer FILE) [--ids | --count] [--special | --plain] [--bos]\n"
    "                      [--chat v3|r1] (TEXT | --file F)\n"
    "\n"
    "Encodes TEXT (or the file F; - for stdin) with DeepSeek's byte-level BPE and prints one\n"
    "line per token: the id and the piece (bytes that are not printable UTF-8 as \\xNN).\n"
    "\n"
    "  -m, --model DIR        a model directory with tokenizer.json (or a .gguf file)\n"
    "      --tokenizer FILE   tokenizer.json or a .gguf file with tokenizer metadata\n"
    "      --ids              print only the ids, comma-separated on one line\n"
    "      --count            print only the number of tokens\n"
    "      --special          also recognise special tokens written in the text (BOS, EOS, ...);\n"
    "                         non-special added ones (<think>, <｜User｜>, ...) always are, as in HF\n"
    "      --plain            recognise no added token at all (all text is plain text)\n"
    "      --bos              put the BOS token first\n"
    "      --chat STYLE       treat TEXT as one user turn and render it with the v3 or r1\n"
    "                         chat template (implies --special)\n"
    "  -f, --file F           read the text from F instead of the command line\n"
    "      --time             print the load and encode times to stderr\n";

static const char *HELP_DETOK =
    "usage: deepc detokenize (-m DIR | --tokenizer FILE) --ids 1,2,3 [--skip-special] [--stream]\n"
    "\n"
    "Decodes token ids back to text and writes the bytes to stdout (exactly: no newline is\n"
    "added unless stdout is a terminal).\n"
    "\n"
    "  -m, --model DIR        a model directory with tokenizer.json (or a .gguf file)\n"
    "      --tokenizer FILE   tokenizer.json or a .gguf file with tokenizer metadata\n"
    "      --ids LIST         comma-separated token ids\n"
    "      --skip-special     leave out special tokens (BOS, EOS, ...)\n"
    "      --stream           decode one id at a time with the streaming decoder, one\n"
    "                         output line per id (shows how UTF-8 is held back)\n";

/* print_piece: bytes as text, with control bytes and invalid UTF-8 escaped. */
static void print_piece(const char *s, size_t n) {
    const unsigned char *u = (const unsigned char *)s;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = u[i];
        int k = c < 0x80 ? 1 : c >= 0xc2 && c <= 0xdf ? 2 : c >= 0xe0 && c <= 0xef ? 3 : c >= 0xf0 && c <= 0xf4 ? 4 : 0;
        int ok = k > 0 && i + (size_t)k <= n;
        for (int j = 1; ok && j < k; j++) ok = (u[i + j] & 0xc0) == 0x80;
        if (c == '\n') fputs("\\n", stdout);
        else if (c == '\t') fputs("\\t", stdout);
        else if (c == '\r') fputs("\\r", stdout);
        else if (c == '\\') fputs("\\\\", stdout);
        else if (!ok || c < 0x20 || c == 0x7f) printf("\\x%02x", c);
        else {
            fwrite(u + i, 1, (size_t)k, stdout);
            i += (size_t)k - 1;
        }
    }
}

static int read_input(const char *file, char **text, size_t *len, dc_err *err) {
    if (strcmp(file, "-") != 0) return file_read_all(file, text, len, err);
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        n += fread(buf + n, 1, cap - n, stdin);
        if (n < cap) break;
        char *nb = realloc(buf, cap *= 2);
        if (!nb) free(buf);
        buf = nb;
    }
    if (!buf) return err_set(err, DC_ENOMEM, "stdin: out of memory");
    *text = buf;
    *len = n;
    return DC_OK;
}

static int load(const char *cmd, const char *dir, const char *file, dc_tokenizer **t, dc_err *err) {
    if (!dir == !file) return cli_usage_error(cmd, "give exactly one of -m DIR or --tokenizer FILE");
    if (dc_tokenizer_load(dir ? dir : file, t, err)) return cli_error(cmd, err);
    return 0;
}

/* chat_wrap: TEXT as one user turn of the chat template. */
static int chat_wrap(const char *style, char **text, size_t *len, dc_err *err) {
    int st = strcmp(style, "r1") == 0 ? DC_CHAT_R1 : DC_CHAT_V3;
    if (strcmp(style, "r1") != 0 && strcmp(style, "v3") != 0) return err_set(err, DC_EARG, "--chat: v3 or r1, not '%s'", style);
    char *user = strndup(*text, *len), *out;
    if (!user) return err_set(err, DC_ENOMEM, "out of memory");
    dc_chat_msg m = {"user", user, NULL, 0};
    int rc = dc_chat_render(st, &m, 1, 1, &out, err);
    free(user);
    if (rc) return rc;
    free(*text);
    *text = out;
    *len = strlen(out);
    return DC_OK;
}

static void print_ids(const dc_tokenizer *t, const int *ids, size_t n, int mode) {
    if (mode == 'c') {
        printf("%zu\n", n);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        if (mode == 'i') {
            printf(i ? ",%d" : "%d", ids[i]);
            continue;
        }
        size_t k;
        const char *p = dc_tokenizer_piece(t, ids[i], &k);
        printf("%d\t", ids[i]);
        print_piece(p, k);
        putchar('\n');
    }
    if (mode == 'i') putchar('\n');
}

int cmd_tokenize(int argc, char **argv) {
    static const struct option LONG[] = {
        {"model", 1, 0, 'm'}, {"tokenizer", 1, 0, 'k'}, {"ids", 0, 0, 'i'},  {"count", 0, 0, 'c'},
        {"special", 0, 0, 's'}, {"bos", 0, 0, 'b'},     {"chat", 1, 0, 'C'}, {"file", 1, 0, 'f'},
        {"time", 0, 0, 'T'},  {"plain", 0, 0, 'P'},     {"help", 0, 0, 'h'}, {0, 0, 0, 0}};
    const char *dir = NULL, *tokfile = NULL, *file = NULL, *chat = NULL;
    int mode = 'p', flags = 0, timing = 0, ch;
    optind = 0;
    while ((ch = getopt_long(argc, argv, "m:f:h", LONG, NULL)) != -1) {
        switch (ch) {
        case 'm': dir = optarg; break;
        case 'k': tokfile = optarg; break;
        case 'i': case 'c': mode = ch; break;
        case 's': flags |= DC_TOK_SPECIAL; break;
        case 'P': flags |= DC_TOK_PLAIN; break;
        case 'b': flags |= DC_TOK_BOS; break;
        case 'C': chat = optarg; flags |= DC_TOK_SPECIAL; break;
        case 'f': file = optarg; break;
        case 'T': timing = 1; break;
        case 'h': fputs(HELP_TOK, stdout); return 0;
        default: return cli_usage_error("tokenize", "bad option");
        }
    }
    if (!file == (optind >= argc)) return cli_usage_error("tokenize", "give the text as one argument or --file F");
    if (optind + 1 < argc) return cli_usage_error("tokenize", "unexpected argument '%s' (quote the text)", argv[optind + 1]);
    dc_err err = {0};
    dc_tokenizer *t;
    double t0 = progress_now();
    int rc = load("tokenize", dir, tokfile, &t, &err);
    if (rc) return rc;
    double t1 = progress_now();
    char *text = NULL;
    size_t len = 0;
    int *ids = NULL;
    size_t n = 0;
    if (file) {
        if (read_input(file, &text, &len, &err)) goto fail;
    } else {
        if (!(text = strdup(argv[optind]))) {
            err_set(&err, DC_ENOMEM, "out of memory");
            goto fail;
        }
        len = strlen(text);
    }
    if (chat && chat_wrap(chat, &text, &len, &err)) goto fail;
    if (dc_tokenizer_encode(t, text, len, flags, &ids, &n, &err)) goto fail;
    double t2 = progress_now();
    print_ids(t, ids, n, mode);
    if (timing)
        fprintf(stderr, "load %.1f ms, encode %.1f ms: %zu bytes -> %zu tokens (%.1f MB/s)\n", (t1 - t0) * 1e3,
                (t2 - t1) * 1e3, len, n, len / ((t2 - t1) > 0 ? t2 - t1 : 1e-9) / 1e6);
    free(ids);
    free(text);
    dc_tokenizer_free(t);
    return 0;
fail:
    free(text);
    dc_tokenizer_free(t);
    return cli_error("tokenize", &err);
}

int cmd_detokenize(int argc, char **argv) {
    static const struct option LONG[] = {{"model", 1, 0, 'm'},        {"tokenizer", 1, 0, 'k'}, {"ids", 1, 0, 'i'},
                                         {"skip-special", 0, 0, 's'}, {"stream", 0, 0, 'S'},    {"help", 0, 0, 'h'},
                                         {0, 0, 0, 0}};
    const char *dir = NULL, *tokfile = NULL, *ids_s = NULL;
    int flags = 0, stream = 0, ch;
    optind = 0;
    while ((ch = getopt_long(argc, argv, "m:h", LONG, NULL)) != -1) {
        switch (ch) {
        case 'm': dir = optarg; break;
        case 'k': tokfile = optarg; break;
        case 'i': ids_s = optarg; break;
        case 's': flags |= DC_TOK_SKIP_SPECIAL; break;
        case 'S': stream = 1; break;
        case 'h': fputs(HELP_DETOK, stdout); return 0;
        default: return cli_usage_error("detokenize", "bad option");
        }
    }
    if (optind < argc) return cli_usage_error("detokenize", "unexpected argument '%s'", argv[optind]);
    if (!ids_s) return cli_usage_error("detokenize", "--ids is required");
    dc_err err = {0};
    int *ids = NULL, n = 0;
    if (cli_parse_ids(ids_s, &ids, &n, &err)) return cli_error("detokenize", &err);
    dc_tokenizer *t;
    int rc = load("detokenize", dir, tokfile, &t, &err);
    if (rc) {
        free(ids);
        return rc;
    }
    if (stream) {
        dc_detok *d = NULL;
        const char *s;
        size_t k;
        if (dc_detok_new(t, flags, &d, &err)) goto fail;
        for (int i = 0; i < n; i++) {
            if (dc_detok_push(d, ids[i], &s, &k, &err)) {
                dc_detok_free(d);
                goto fail;
            }
            printf("%d\t", ids[i]);
            print_piece(s, k);
            putchar('\n');
        }
        dc_detok_flush(d, &s, &k);
        if (k) {
            printf("(flush)\t");
            print_piece(s, k);
            putchar('\n');
        }
        dc_detok_free(d);
    } else {
        char *text;
        size_t len;
        if (dc_tokenizer_decode(t, ids, (size_t)n, flags, &text, &len, &err)) goto fail;
        fwrite(text, 1, len, stdout);
        if (len && text[len - 1] != '\n' && isatty(1)) putchar('\n'); /* keep piped bytes exact */
        free(text);
    }
    free(ids);
    dc_tokenizer_free(t);
    return 0;
fail:
    free(ids);
    dc_tokenizer_free(t);
    return cli_error("detokenize", &err);
}
