/*
 * Codepoint classes, UTF-8 decoding and GPT-2's byte <-> unicode mapping for
 * the byte-level BPE tokenizer (see unicode.h).
 */
#include "engine/tokenizer/unicode.h"

bl_uclass_t bl_unicode_class(uint32_t cp)
{
    /* binary search over sorted, disjoint ranges */
    unsigned lo = 0, hi = bl_unicode_n_ranges;
    while (lo < hi) {
        unsigned mid = lo + (hi - lo) / 2;
        if (cp < bl_unicode_ranges[mid].lo)
            hi = mid;
        else if (cp > bl_unicode_ranges[mid].hi)
            lo = mid + 1;
        else
            return (bl_uclass_t)bl_unicode_ranges[mid].cls;
    }
    return BL_UCLASS_OTHER;
}

size_t bl_unicode_decode(const unsigned char *p, size_t n, uint32_t *cp)
{
    unsigned char c = p[0];
    size_t len;
    uint32_t v;
    if (c < 0x80) {
        *cp = c;
        return 1;
    } else if ((c & 0xE0) == 0xC0) {
        len = 2;
        v = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
        len = 3;
        v = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
        len = 4;
        v = c & 0x07;
    } else {
        *cp = BL_UNICODE_BAD;
        return 1;
    }
    if (len > n) {
        *cp = BL_UNICODE_BAD;
        return 1;
    }
    /* llama.cpp checks continuation bytes only (no overlong/surrogate
     * checks); do the same so the same text splits the same way */
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xC0) != 0x80) {
            *cp = BL_UNICODE_BAD;
            return 1;
        }
        v = (v << 6) | (p[i] & 0x3F);
    }
    *cp = v;
    return len;
}

/* Printable Latin-1 bytes stand for themselves; the other 68 bytes (controls,
 * space, DEL, NBSP, soft hyphen, ...) are shifted to 256 + their index. */
static int is_self(unsigned b)
{
    return (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
}

/* The shifted bytes in order: 0x00-0x20 (33), 0x7F-0xA0 (34), 0xAD (1). */
uint32_t bl_unicode_byte_cpt(uint8_t b)
{
    if (is_self(b))
        return b;
    if (b <= 0x20)
        return 256 + b;
    if (b <= 0xA0)
        return 256 + 33 + (b - 0x7F);
    return 256 + 67; /* 0xAD */
}

int bl_unicode_cpt_byte(uint32_t cp)
{
    if (cp < 256)
        return is_self(cp) ? (int)cp : -1;
    uint32_t k = cp - 256;
    if (k <= 32)
        return (int)k;
    if (k <= 66)
        return (int)(0x7F + k - 33);
    if (k == 67)
        return 0xAD;
    return -1;
}

size_t bl_unicode_encode(uint32_t cp, char *out)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}
