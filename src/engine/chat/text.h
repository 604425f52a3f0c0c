/*
 * Internal to the chat renderers: a growable string that remembers running
 * out of memory (so rendering code can write without checking every call)
 * and a byte span.
 */
#ifndef BL_ENGINE_CHAT_TEXT_H
#define BL_ENGINE_CHAT_TEXT_H

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    char *p;
    size_t n, cap;
    bool oom;
} sb_t;

typedef struct {
    const char *p;
    size_t n;
} span_t;

static inline void putn(sb_t *b, const char *s, size_t n)
{
    if (b->oom || n == 0)
        return;
    if (n > SIZE_MAX / 4 || b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + n + 1) {
            if (cap > SIZE_MAX / 4 || n > SIZE_MAX / 4) {
                b->oom = true;
                return;
            }
            cap *= 2;
        }
        char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = '\0';
}

static inline void put(sb_t *b, const char *s)
{
    putn(b, s, strlen(s));
}

static inline void putc_(sb_t *b, char c)
{
    putn(b, &c, 1);
}

#endif
