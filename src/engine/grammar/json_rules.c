/*
 * The JSON building blocks of schema grammars: the rules every schema
 * shares (made once per grammar: whitespace, string characters, numbers,
 * any value) and the shapes made per use (arrays, maps, literal sets).
 * schema.c documents the choices (whitespace, digit limits) for users.
 */
#include <stdlib.h>
#include <string.h>

#include <ballast/errors.h>

#include "engine/grammar/schema_impl.h"

static uint32_t ref_of(long r)
{
    return G_REF | (uint32_t)r;
}

uint32_t bl_sc_ws(sc_t *c)
{
    if (c->r_ws < 0) {
        gb_t *b = &c->b;
        gseq_t s = {0};
        uint32_t r = bl_gb_rule(b);
        c->r_ws = r;
        uint32_t indent = bl_gb_repeat(b, bl_gb_byte(b, ' '), 16);
        bl_gb_alt(b, r, &s);
        bl_seq_push(b, &s, bl_gb_byte(b, ' '));
        bl_gb_alt(b, r, &s);
        bl_seq_push(b, &s, bl_gb_byte(b, '\n'));
        bl_seq_push(b, &s, G_REF | indent);
        bl_gb_alt(b, r, &s);
        bl_seq_free(&s);
    }
    return ref_of(c->r_ws);
}

/* One character of a JSON string: printable ASCII but '"' and '\\', a valid
 * UTF-8 sequence, or an escape (no surrogate \u escapes). */
uint32_t bl_sc_str_char(sc_t *c)
{
    if (c->r_char < 0) {
        gb_t *b = &c->b;
        gseq_t s = {0};
        uint32_t r = bl_gb_rule(b);
        c->r_char = r;
        uint64_t ascii[4] = {0};
        for (unsigned ch = 0x20; ch < 0x80; ch++)
            if (ch != '"' && ch != '\\')
                ascii[ch >> 6] |= 1ull << (ch & 63);
        uint32_t cont = bl_gb_range(b, 0x80, 0xbf);
        bl_seq_push(b, &s, bl_gb_set(b, ascii));
        bl_gb_alt(b, r, &s);
        /* UTF-8 (RFC 3629 table 3-7 ranges) */
        static const unsigned char lead[][4] = {
            /* lead lo, lead hi, second lo, second hi; then n-2 more cont */
            {0xc2, 0xdf, 0x80, 0xbf}, {0xe0, 0xe0, 0xa0, 0xbf}, {0xe1, 0xec, 0x80, 0xbf},
            {0xed, 0xed, 0x80, 0x9f}, {0xee, 0xef, 0x80, 0xbf}, {0xf0, 0xf0, 0x90, 0xbf},
            {0xf1, 0xf3, 0x80, 0xbf}, {0xf4, 0xf4, 0x80, 0x8f},
        };
        static const int extra[] = {0, 1, 1, 1, 1, 2, 2, 2};
        for (size_t i = 0; i < sizeof lead / sizeof lead[0]; i++) {
            bl_seq_push(b, &s, bl_gb_range(b, lead[i][0], lead[i][1]));
            bl_seq_push(b, &s, bl_gb_range(b, lead[i][2], lead[i][3]));
            for (int k = 0; k < extra[i]; k++)
                bl_seq_push(b, &s, cont);
            bl_gb_alt(b, r, &s);
        }
        uint64_t esc[4] = {0};
        for (const char *e = "\"\\/bfnrt"; *e; e++)
            esc[(unsigned char)*e >> 6] |= 1ull << (*e & 63);
        bl_seq_push(b, &s, bl_gb_byte(b, '\\'));
        bl_seq_push(b, &s, bl_gb_set(b, esc));
        bl_gb_alt(b, r, &s);
        uint64_t hex[4] = {0}, hex_nd[4] = {0}, oct[4] = {0};
        for (const char *h = "0123456789abcdefABCDEF"; *h; h++) {
            hex[(unsigned char)*h >> 6] |= 1ull << (*h & 63);
            if (*h != 'd' && *h != 'D')
                hex_nd[(unsigned char)*h >> 6] |= 1ull << (*h & 63);
        }
        for (const char *h = "01234567"; *h; h++)
            oct[(unsigned char)*h >> 6] |= 1ull << (*h & 63);
        uint32_t hx = bl_gb_set(b, hex);
        bl_seq_lit(b, &s, "\\u", 2);
        bl_seq_push(b, &s, bl_gb_set(b, hex_nd));
        bl_seq_push(b, &s, hx);
        bl_seq_push(b, &s, hx);
        bl_seq_push(b, &s, hx);
        bl_gb_alt(b, r, &s);
        bl_seq_lit(b, &s, "\\u", 2);
        uint64_t dd[4] = {0};
        dd['d' >> 6] |= 1ull << ('d' & 63);
        dd['D' >> 6] |= 1ull << ('D' & 63);
        bl_seq_push(b, &s, bl_gb_set(b, dd));
        bl_seq_push(b, &s, bl_gb_set(b, oct));
        bl_seq_push(b, &s, hx);
        bl_seq_push(b, &s, hx);
        bl_gb_alt(b, r, &s);
        bl_seq_free(&s);
    }
    return ref_of(c->r_char);
}

uint32_t bl_sc_any_string(sc_t *c)
{
    if (c->r_str < 0) {
        gb_t *b = &c->b;
        gseq_t s = {0};
        uint32_t ch = bl_sc_str_char(c);
        uint32_t tail = bl_gb_rule(b); /* T ::= '"' | char T */
        bl_seq_push(b, &s, bl_gb_byte(b, '"'));
        bl_gb_alt(b, tail, &s);
        bl_seq_push(b, &s, ch);
        bl_seq_push(b, &s, G_REF | tail);
        bl_gb_alt(b, tail, &s);
        uint32_t r = bl_gb_rule(b);
        bl_seq_push(b, &s, bl_gb_byte(b, '"'));
        bl_seq_push(b, &s, G_REF | tail);
        bl_gb_alt(b, r, &s);
        bl_seq_free(&s);
        c->r_str = r;
    }
    return ref_of(c->r_str);
}

/* integer [fraction exponent], with or without a leading '-' */
uint32_t bl_sc_number(sc_t *c, bool integer, bool nonneg)
{
    long *memo = integer ? (nonneg ? &c->r_uint : &c->r_int) : (nonneg ? &c->r_unum : &c->r_num);
    if (*memo >= 0)
        return ref_of(*memo);
    gb_t *b = &c->b;
    gseq_t s = {0};
    uint32_t dig = bl_gb_range(b, '0', '9');
    uint32_t ip = bl_gb_rule(b); /* '0' | [1-9] [0-9]{0,15} */
    bl_seq_push(b, &s, bl_gb_byte(b, '0'));
    bl_gb_alt(b, ip, &s);
    bl_seq_push(b, &s, bl_gb_range(b, '1', '9'));
    bl_seq_push(b, &s, G_REF | bl_gb_repeat(b, dig, 15));
    bl_gb_alt(b, ip, &s);
    uint32_t frac = 0, exp = 0;
    if (!integer) {
        frac = bl_gb_rule(b); /* "" | '.' [0-9]{1,16} */
        bl_gb_alt(b, frac, &s);
        bl_seq_push(b, &s, bl_gb_byte(b, '.'));
        bl_seq_push(b, &s, dig);
        bl_seq_push(b, &s, G_REF | bl_gb_repeat(b, dig, 15));
        bl_gb_alt(b, frac, &s);
        exp = bl_gb_rule(b); /* "" | [eE] [+-]? [0-9]{1,2}: parsers reject e999 as out of range */
        bl_gb_alt(b, exp, &s);
        uint32_t sign = bl_gb_rule(b);
        bl_gb_alt(b, sign, &s);
        uint64_t pm[4] = {0};
        pm[0] |= 1ull << '+' | 1ull << '-';
        bl_seq_push(b, &s, bl_gb_set(b, pm));
        bl_gb_alt(b, sign, &s);
        uint64_t ee[4] = {0};
        ee['e' >> 6] |= 1ull << ('e' & 63);
        ee['E' >> 6] |= 1ull << ('E' & 63);
        bl_seq_push(b, &s, bl_gb_set(b, ee));
        bl_seq_push(b, &s, G_REF | sign);
        bl_seq_push(b, &s, dig);
        bl_seq_push(b, &s, G_REF | bl_gb_repeat(b, dig, 1));
        bl_gb_alt(b, exp, &s);
    }
    uint32_t r = bl_gb_rule(b);
    for (int neg = 0; neg < (nonneg ? 1 : 2); neg++) {
        if (neg)
            bl_seq_push(b, &s, bl_gb_byte(b, '-'));
        bl_seq_push(b, &s, G_REF | ip);
        if (!integer) {
            bl_seq_push(b, &s, G_REF | frac);
            bl_seq_push(b, &s, G_REF | exp);
        }
        bl_gb_alt(b, r, &s);
    }
    bl_seq_free(&s);
    *memo = r;
    return G_REF | r;
}

/* X ::= '[' ws ']' | '[' ws item ws (',' ws item ws){min-1,max-1} ']' */
uint32_t bl_sc_array_of(sc_t *c, uint32_t item, long min, long max)
{
    gb_t *b = &c->b;
    gseq_t s = {0};
    uint32_t r = bl_gb_rule(b);
    uint32_t sep = bl_gb_rule(b);
    bl_seq_push(b, &s, bl_gb_byte(b, ','));
    bl_seq_push(b, &s, bl_sc_ws(c));
    bl_seq_push(b, &s, item);
    bl_seq_push(b, &s, bl_sc_ws(c));
    bl_gb_alt(b, sep, &s);
    if (min == 0) {
        bl_seq_push(b, &s, bl_gb_byte(b, '['));
        bl_seq_push(b, &s, bl_sc_ws(c));
        bl_seq_push(b, &s, bl_gb_byte(b, ']'));
        bl_gb_alt(b, r, &s);
    }
    if (max != 0) {
        bl_seq_push(b, &s, bl_gb_byte(b, '['));
        bl_seq_push(b, &s, bl_sc_ws(c));
        bl_seq_push(b, &s, item);
        bl_seq_push(b, &s, bl_sc_ws(c));
        for (long k = 1; k < min; k++)
            bl_seq_push(b, &s, G_REF | sep);
        long rest = max < 0 ? -1 : max - (min > 1 ? min : 1);
        bl_seq_push(b, &s, G_REF | bl_gb_repeat(b, G_REF | sep, rest));
        bl_seq_push(b, &s, bl_gb_byte(b, ']'));
        bl_gb_alt(b, r, &s);
    }
    bl_seq_free(&s);
    return G_REF | r;
}

/* '{' ws (key ws ':' ws value ws (',' ws key ws ':' ws value ws)*)? '}' */
uint32_t bl_sc_map_of(sc_t *c, uint32_t key, uint32_t value)
{
    gb_t *b = &c->b;
    gseq_t s = {0};
    uint32_t member = bl_gb_rule(b);
    bl_seq_push(b, &s, key);
    bl_seq_push(b, &s, bl_sc_ws(c));
    bl_seq_push(b, &s, bl_gb_byte(b, ':'));
    bl_seq_push(b, &s, bl_sc_ws(c));
    bl_seq_push(b, &s, value);
    bl_seq_push(b, &s, bl_sc_ws(c));
    bl_gb_alt(b, member, &s);
    uint32_t more = bl_gb_rule(b);
    bl_gb_alt(b, more, &s);
    bl_seq_push(b, &s, bl_gb_byte(b, ','));
    bl_seq_push(b, &s, bl_sc_ws(c));
    bl_seq_push(b, &s, G_REF | member);
    bl_seq_push(b, &s, G_REF | more);
    bl_gb_alt(b, more, &s);
    uint32_t r = bl_gb_rule(b);
    bl_seq_push(b, &s, bl_gb_byte(b, '{'));
    bl_seq_push(b, &s, bl_sc_ws(c));
    bl_seq_push(b, &s, bl_gb_byte(b, '}'));
    bl_gb_alt(b, r, &s);
    bl_seq_push(b, &s, bl_gb_byte(b, '{'));
    bl_seq_push(b, &s, bl_sc_ws(c));
    bl_seq_push(b, &s, G_REF | member);
    bl_seq_push(b, &s, G_REF | more);
    bl_seq_push(b, &s, bl_gb_byte(b, '}'));
    bl_gb_alt(b, r, &s);
    bl_seq_free(&s);
    return G_REF | r;
}

uint32_t bl_sc_any_object(sc_t *c)
{
    if (c->r_obj < 0) {
        /* the value rule must exist first: objects nest values */
        uint32_t v = bl_sc_any_value(c);
        if (c->r_obj < 0)
            c->r_obj = (long)G_IDX(bl_sc_map_of(c, bl_sc_any_string(c), v));
    }
    return ref_of(c->r_obj);
}

uint32_t bl_sc_any_value(sc_t *c)
{
    if (c->r_value < 0) {
        gb_t *b = &c->b;
        gseq_t s = {0};
        uint32_t r = bl_gb_rule(b);
        c->r_value = r; /* before the parts, which refer back to it */
        uint32_t parts[] = {bl_sc_any_object(c), bl_sc_array_of(c, G_REF | r, 0, -1),
                            bl_sc_any_string(c), bl_sc_number(c, false, false)};
        for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++) {
            bl_seq_push(b, &s, parts[i]);
            bl_gb_alt(b, r, &s);
        }
        static const char *const lits[] = {"true", "false", "null"};
        for (size_t i = 0; i < 3; i++) {
            bl_seq_lit(b, &s, lits[i], strlen(lits[i]));
            bl_gb_alt(b, r, &s);
        }
        bl_seq_free(&s);
    }
    return ref_of(c->r_value);
}

/* ---- literal sets ---------------------------------------------------------- */

typedef struct {
    char *p;
    size_t n;
} lit_t;

static int cmp_lit(const void *a, const void *b)
{
    const lit_t *x = a, *y = b;
    int c = memcmp(x->p, y->p, x->n < y->n ? x->n : y->n);
    return c ? c : (x->n > y->n) - (x->n < y->n);
}

/* The sorted, distinct literals l[lo..hi), which share their first d bytes,
 * as a rule over what follows: a trie with runs of single children as byte
 * sequences. Alternatives then start with distinct bytes, so a matcher
 * state holds one stack per enum value prefix, not one per value. */
static uint32_t lit_trie(gb_t *b, const lit_t *l, size_t lo, size_t hi, size_t d, gseq_t *s)
{
    uint32_t r = bl_gb_rule(b);
    size_t i = lo;
    if (l[i].n == d) { /* sorted: a value ending here comes first */
        bl_gb_alt(b, r, s);
        i++;
    }
    while (i < hi) {
        size_t j = i + 1;
        while (j < hi && l[j].p[d] == l[i].p[d])
            j++;
        /* sorted: the group's common prefix is that of its first and last */
        size_t e = d + 1;
        while (e < l[i].n && e < l[j - 1].n && l[i].p[e] == l[j - 1].p[e])
            e++;
        uint32_t next = 0;
        bool more = j - i > 1 || l[i].n > e;
        if (more) /* built first: s is shared */
            next = lit_trie(b, l, i, j, e, s);
        bl_seq_lit(b, s, l[i].p + d, e - d);
        if (more)
            bl_seq_push(b, s, G_REF | next);
        bl_gb_alt(b, r, s);
        i = j;
    }
    return r;
}

int bl_sc_literals(sc_t *c, jv_t *const *values, size_t n, uint32_t *rule)
{
    size_t k = 0;
    lit_t *l = calloc(n, sizeof *l);
    if (!l)
        return BL_ENOMEM;
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        size_t cap = 0;
        rc = bl_jv_dump(values[i], &l[i].p, &l[i].n, &cap);
    }
    if (rc == 0) {
        qsort(l, n, sizeof *l, cmp_lit);
        for (size_t i = 0; i < n; i++) {
            if (k > 0 && cmp_lit(&l[k - 1], &l[i]) == 0) {
                free(l[i].p);
                continue;
            }
            l[k++] = l[i];
        }
        gseq_t s = {0};
        *rule = G_REF | lit_trie(&c->b, l, 0, k, 0, &s);
        bl_seq_free(&s);
    } else {
        k = n;
    }
    for (size_t i = 0; i < k; i++)
        free(l[i].p);
    free(l);
    return rc;
}
