/*
 * tokenizer.h — the dc_tokenizer behind include/deepc.h, and its loaders.
 *
 * Encode (HF tokenizers' order, for a byte-level BPE with no normalizer):
 *   1. the added tokens are cut out of the text first (leftmost-longest) and
 *      become their own ids: the non-special ones (<think>, <｜User｜>, ...)
 *      always, as HF and llama.cpp do, the special ones (BOS, EOS, ...) only
 *      with DC_TOK_SPECIAL, and none at all with DC_TOK_PLAIN;
 *   2. each stretch between them is split into valid-UTF-8 runs; a byte that
 *      is not part of valid UTF-8 becomes a word of its own (HF cannot take
 *      such input at all; this keeps every byte and never fails);
 *   3. each run goes through the pre-tokenizer (pretok.h), and every piece
 *      through byte-level BPE (bpe.h).
 * Decode concatenates the tokens' raw bytes.
 *
 * Loaders: tok_load_json (tokenizer.json), tok_load_gguf (llama.cpp GGUF
 * tokenizer.ggml.* metadata). Both fill a zeroed dc_tokenizer; on failure
 * dc_tokenizer_free cleans up whatever was built.
 */
#ifndef DC_TOKENIZER_H
#define DC_TOKENIZER_H
#include "deepc.h"
#include "tokenizer/bpe.h"
#include "tokenizer/pretok.h"
#include "tokenizer/vocab.h"

struct dc_tokenizer {
    vocab v;
    pretok pre;
    int bos, eos; /* -1 when none */
};

int tok_load_json(dc_tokenizer *t, const char *path, dc_err *err);
int tok_load_gguf(dc_tokenizer *t, const char *path, dc_err *err);
/* tok_load_config: BOS/EOS from a tokenizer_config.json (missing file: no change). */
int tok_load_config(dc_tokenizer *t, const char *path, dc_err *err);

/* tok_save_json: write t as a tokenizer.json (save_json.c). */
int tok_save_json(const dc_tokenizer *t, const char *path, dc_err *err);

/* tok_encoder: one thread's encoding state (borrowing the tokenizer). */
typedef struct tok_encoder {
    const dc_tokenizer *t;
    pretok_scratch sc;
    bpe_state bpe;
    ivec out;
    int rc;
} tok_encoder;

int tok_encoder_init(tok_encoder *e, const dc_tokenizer *t, dc_err *err);
void tok_encoder_free(tok_encoder *e);
/* tok_encode_append: encode text and append its ids to e->out. */
int tok_encode_append(tok_encoder *e, const char *text, size_t len, int flags, dc_err *err);
#endif
