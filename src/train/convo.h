/*
 * convo.h — conversations as token rows for training, and prompts for
 * generation, through the model's chat template (dc_chat_render).
 *
 * A training row is the rendered conversation up to and including its last
 * assistant turn, with a mask marking the assistant's tokens (the loss is
 * taken only there: SFT). Earlier assistant turns appear as the template
 * renders them in history (without their reasoning, as DeepSeek's template
 * drops everything up to "</think>"); the last one is kept whole, reasoning
 * included. In the R1 style the prompt before the last turn ends with
 * "<｜Assistant｜><think>\n" and a leading "<think>\n" of that turn's content is
 * dropped so it is not doubled. Every assistant turn ends with EOS, which is
 * trained too (the model learns to stop). Segments are encoded separately
 * (specials recognised), so each boundary falls between tokens.
 */
#ifndef DC_CONVO_H
#define DC_CONVO_H
#include "deepc.h"

/* convo_row: msgs[0..n) as a row: *ids (len) and *mask (len, 1 = an assistant
 * token), both malloc'd (caller frees). DC_EARG when there is no assistant
 * turn. */
int convo_row(const dc_tokenizer *tk, int style, const dc_chat_msg *msgs, int n, int **ids, unsigned char **mask,
              int *len, dc_err *err);
/* convo_prompt: a one-turn prompt (user's text) with the generation prompt
 * of style, as ids (malloc'd). */
int convo_prompt(const dc_tokenizer *tk, int style, const char *user, int **ids, int *n, dc_err *err);
/* convo_text: generated ids as text (malloc'd), a final EOS left out. */
int convo_text(const dc_tokenizer *tk, const int *ids, int n, char **text, size_t *len, dc_err *err);
#endif
