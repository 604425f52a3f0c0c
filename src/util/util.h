/*
 * util: the few helpers every gateway module shares — a growable byte buffer,
 * string views, monotonic time, and checked arithmetic. Nothing here knows
 * about HTTP, JSON or models.
 */
#ifndef BL_UTIL_H
#define BL_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <ballast/errors.h>

#define BL_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define BL_MIN(a, b) ((a) < (b) ? (a) : (b))
#define BL_MAX(a, b) ((a) > (b) ? (a) : (b))

/* A growable byte buffer; always NUL-terminated past len so it can be used
 * as a C string when it holds text. Zero-initialised is a valid empty buffer. */
typedef struct {
    char *data;
    size_t len;
    size_t cap;
} bl_buf_t;

int bl_buf_reserve(bl_buf_t *b, size_t extra);
int bl_buf_append(bl_buf_t *b, const void *p, size_t n);
int bl_buf_append_str(bl_buf_t *b, const char *s);
int bl_buf_printf(bl_buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void bl_buf_consume(bl_buf_t *b, size_t n); /* drop n bytes from the front */
void bl_buf_reset(bl_buf_t *b);             /* len = 0, keeps memory */
void bl_buf_free(bl_buf_t *b);
/* Hand the storage to the caller (who frees it) and leave b empty. */
char *bl_buf_steal(bl_buf_t *b, size_t *len);

/* A borrowed, not necessarily NUL-terminated, string. */
typedef struct {
    const char *p;
    size_t n;
} bl_str_t;

#define BL_STR(lit) ((bl_str_t){(lit), sizeof(lit) - 1})
bool bl_str_eq(bl_str_t a, const char *lit);
bool bl_str_ieq(bl_str_t a, const char *lit); /* ASCII case-insensitive */

/* ASCII case-insensitive comparison of a length-bounded string and a C string. */
bool bl_strn_ieq(const char *a, size_t an, const char *b);

/* Monotonic clock. */
uint64_t bl_now_ns(void);
uint64_t bl_now_us(void);
uint64_t bl_now_ms(void);
/* Wall clock, milliseconds since the epoch (for logs and HTTP dates). */
int64_t bl_wall_ms(void);

/* Checked size arithmetic: return false on overflow. */
static inline bool bl_add_ok(size_t a, size_t b, size_t *out)
{
    return !__builtin_add_overflow(a, b, out);
}
static inline bool bl_mul_ok(size_t a, size_t b, size_t *out)
{
    return !__builtin_mul_overflow(a, b, out);
}

/* Parse a decimal unsigned integer that must fill [s, s+n). */
int bl_parse_u64(const char *s, size_t n, uint64_t *out);

/* xoshiro256** — a fast, seedable PRNG for load balancing and jitter (not for
 * secrets). */
typedef struct {
    uint64_t s[4];
} bl_rng_t;
void bl_rng_seed(bl_rng_t *r, uint64_t seed);
uint64_t bl_rng_next(bl_rng_t *r);
double bl_rng_unit(bl_rng_t *r); /* uniform in [0, 1) */

/* Levenshtein distance, for "did you mean" suggestions; capped at 255. */
unsigned bl_edit_distance(const char *a, const char *b);

/* Hex-encode n bytes into out (2n+1 bytes). */
void bl_hex(const unsigned char *in, size_t n, char *out);

/* The JSON scanner: its own file, part of this interface. */
#include "util/json_scan.h"

#endif
