#include "util/util.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int bl_buf_reserve(bl_buf_t *b, size_t extra)
{
    size_t need;
    /* +1 keeps room for the terminating NUL. */
    if (!bl_add_ok(b->len, extra, &need) || !bl_add_ok(need, 1, &need))
        return BL_ENOMEM;
    if (need <= b->cap)
        return BL_OK;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need) {
        if (!bl_mul_ok(cap, 2, &cap))
            return BL_ENOMEM;
    }
    char *p = realloc(b->data, cap);
    if (!p)
        return BL_ENOMEM;
    b->data = p;
    b->cap = cap;
    return BL_OK;
}

int bl_buf_append(bl_buf_t *b, const void *p, size_t n)
{
    int rc = bl_buf_reserve(b, n);
    if (rc)
        return rc;
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return BL_OK;
}

int bl_buf_append_str(bl_buf_t *b, const char *s)
{
    return bl_buf_append(b, s, strlen(s));
}

int bl_buf_printf(bl_buf_t *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char tmp[256];
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0)
        return BL_EINVAL;
    if ((size_t)n < sizeof tmp)
        return bl_buf_append(b, tmp, (size_t)n);
    int rc = bl_buf_reserve(b, (size_t)n);
    if (rc)
        return rc;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return BL_OK;
}

void bl_buf_consume(bl_buf_t *b, size_t n)
{
    if (n >= b->len) {
        bl_buf_reset(b);
        return;
    }
    memmove(b->data, b->data + n, b->len - n);
    b->len -= n;
    b->data[b->len] = '\0';
}

void bl_buf_reset(bl_buf_t *b)
{
    b->len = 0;
    if (b->data)
        b->data[0] = '\0';
}

void bl_buf_free(bl_buf_t *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

char *bl_buf_steal(bl_buf_t *b, size_t *len)
{
    if (!b->data && bl_buf_reserve(b, 0))
        return NULL;
    b->data[b->len] = '\0'; /* an empty buffer that never held text is a C string too */
    char *p = b->data;
    if (len)
        *len = b->len;
    b->data = NULL;
    b->len = b->cap = 0;
    return p;
}
