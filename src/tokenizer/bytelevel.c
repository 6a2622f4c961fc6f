/* bytelevel.c — see bytelevel.h. */
#include "tokenizer/bytelevel.h"
#include <string.h>

static int printable(unsigned b) { return (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae); }

/* the non-printable bytes in order: 0x00-0x20 (33), 0x7f-0xa0 (34), 0xad */
uint32_t bytelevel_cp(uint8_t b) {
    if (printable(b)) return b;
    if (b <= 0x20) return 256u + b;
    if (b >= 0x7f && b <= 0xa0) return 256u + 33 + (b - 0x7fu);
    return 256u + 67; /* 0xad */
}

static int cp_byte(uint32_t cp) {
    if (cp < 256) return printable(cp) ? (int)cp : -1;
    if (cp < 256 + 33) return (int)(cp - 256);
    if (cp < 256 + 67) return (int)(cp - 256 - 33 + 0x7f);
    return cp == 256 + 67 ? 0xad : -1;
}

int utf8_seq_len(uint8_t c) {
    if (c < 0x80) return 1;
    if (c >= 0xc2 && c <= 0xdf) return 2;
    if (c >= 0xe0 && c <= 0xef) return 3;
    if (c >= 0xf0 && c <= 0xf4) return 4;
    return 0;
}

int utf8_encode(uint32_t cp, char *o) {
    if (cp < 0x80) { o[0] = (char)cp; return 1; }
    if (cp < 0x800) { o[0] = (char)(0xc0 | cp >> 6); o[1] = (char)(0x80 | (cp & 63)); return 2; }
    if (cp < 0x10000) {
        o[0] = (char)(0xe0 | cp >> 12); o[1] = (char)(0x80 | ((cp >> 6) & 63)); o[2] = (char)(0x80 | (cp & 63));
        return 3;
    }
    o[0] = (char)(0xf0 | cp >> 18); o[1] = (char)(0x80 | ((cp >> 12) & 63));
    o[2] = (char)(0x80 | ((cp >> 6) & 63)); o[3] = (char)(0x80 | (cp & 63));
    return 4;
}

/* seq_ok: is s[0..k) (k = utf8_seq_len(s[0]) >= 2, all present) valid? */
static int seq_ok(const uint8_t *s, int k) {
    uint8_t c = s[0], d = s[1];
    if ((d & 0xc0) != 0x80) return 0;
    if (c == 0xe0 && d < 0xa0) return 0;  /* overlong */
    if (c == 0xed && d > 0x9f) return 0;  /* surrogates */
    if (c == 0xf0 && d < 0x90) return 0;  /* overlong */
    if (c == 0xf4 && d > 0x8f) return 0;  /* above U+10FFFF */
    for (int j = 2; j < k; j++)
        if ((s[j] & 0xc0) != 0x80) return 0;
    return 1;
}

size_t utf8_valid_len(const uint8_t *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        if (i + 8 <= n) {
            uint64_t w;
            memcpy(&w, s + i, 8);
            if (!(w & 0x8080808080808080ull)) {
                i += 8;
                continue;
            }
        }
        if (s[i] < 0x80) {
            i++;
            continue;
        }
        int k = utf8_seq_len(s[i]);
        if (k == 0 || i + (size_t)k > n || !seq_ok(s + i, k)) return i;
        i += (size_t)k;
    }
    return n;
}

long bytelevel_decode(const char *str, size_t n, uint8_t *out) {
    const uint8_t *s = (const uint8_t *)str;
    size_t i = 0, o = 0;
    while (i < n) {
        uint32_t cp;
        if (s[i] < 0x80) cp = s[i++];
        else if ((s[i] & 0xe0) == 0xc0 && i + 1 < n) cp = (uint32_t)(s[i] & 0x1f) << 6 | (s[i + 1] & 0x3f), i += 2;
        else return -1; /* every byte-level character is below U+0800 */
        int b = cp_byte(cp);
        if (b < 0) return -1;
        out[o++] = (uint8_t)b;
    }
    return (long)o;
}

size_t bytelevel_encode(const uint8_t *s, size_t n, char *out) {
    size_t o = 0;
    for (size_t i = 0; i < n; i++) o += (size_t)utf8_encode(bytelevel_cp(s[i]), out + o);
    return o;
}
