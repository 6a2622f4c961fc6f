/*
 * bytelevel.h — GPT-2's byte-to-unicode map (what HF's ByteLevel
 * pre-tokenizer and decoder use) and UTF-8 helpers.
 *
 * The 188 printable bytes ('!'..'~', 0xA1..0xAC, 0xAE..0xFF) stand for
 * themselves; the other 68 bytes are given code points 256, 257, ... in byte
 * order. So the space 0x20 is U+0120 'Ġ' and '\n' is U+010A 'Ċ'. Vocab files
 * store every token in this form; deepc stores raw bytes.
 */
#ifndef DC_BYTELEVEL_H
#define DC_BYTELEVEL_H
#include <stddef.h>
#include <stdint.h>

/* bytelevel_cp: the code point byte b is written as. */
uint32_t bytelevel_cp(uint8_t b);
/* bytelevel_decode: a byte-level UTF-8 string -> raw bytes (out holds at
 * least n bytes). Returns the number of bytes, or -1 when a character is not
 * one of the 256 (the string is not byte-level text). */
long bytelevel_decode(const char *s, size_t n, uint8_t *out);
/* bytelevel_encode: raw bytes -> byte-level UTF-8 (out holds 2n bytes);
 * returns its length. */
size_t bytelevel_encode(const uint8_t *s, size_t n, char *out);

/* utf8_valid_len: the length of the longest prefix of s that is valid UTF-8
 * (RFC 3629: no overlongs, no surrogates, nothing above U+10FFFF). */
size_t utf8_valid_len(const uint8_t *s, size_t n);
/* utf8_seq_len: the length a sequence starting with lead byte c claims
 * (1..4), 0 for a continuation or invalid lead byte. */
int utf8_seq_len(uint8_t c);
/* utf8_encode: code point -> 1..4 bytes into out; returns the count. */
int utf8_encode(uint32_t cp, char *out);
#endif
