/*
 * Incremental text/event-stream parser, following the "Interpreting an event
 * stream" rules of the WHATWG HTML standard (section 9.2.6). Complete lines
 * are parsed straight from the caller's buffer; only a line split across
 * feeds is copied.
 */
#include <string.h>

#include "upstream/upstream.h"

#define SSE_DEFAULT_MAX (8u * 1024 * 1024)

static const unsigned char bom[3] = {0xEF, 0xBB, 0xBF};

void bl_upstream_sse_free(bl_sse_parser_t *p)
{
    bl_buf_free(&p->line);
    bl_buf_free(&p->data);
    bl_buf_free(&p->event);
}

static size_t cap(const bl_sse_parser_t *p)
{
    return p->max_bytes ? p->max_bytes : SSE_DEFAULT_MAX;
}

static int dispatch(bl_sse_parser_t *p, bl_sse_event_fn fn, void *ud)
{
    int rc = 0;
    if (p->data.len) {
        p->data.len--; /* the "\n" after the last data line */
        p->data.data[p->data.len] = 0;
        bl_str_t ev = p->event.len ? (bl_str_t){p->event.data, p->event.len} : BL_STR("message");
        bl_str_t data = {p->data.data, p->data.len};
        if (fn && fn(ud, ev, data) != 0)
            rc = BL_ECANCELED;
    }
    bl_buf_reset(&p->data);
    bl_buf_reset(&p->event);
    return rc;
}

static int line(bl_sse_parser_t *p, const char *s, size_t n, bl_sse_event_fn fn, void *ud)
{
    if (n == 0)
        return dispatch(p, fn, ud);
    if (s[0] == ':')
        return 0; /* comment (keep-alives use these) */
    const char *colon = memchr(s, ':', n);
    size_t fn_len = colon ? (size_t)(colon - s) : n;
    const char *v = colon ? colon + 1 : s + n;
    size_t vn = (size_t)(s + n - v);
    if (vn && v[0] == ' ') {
        v++;
        vn--;
    }
    if (fn_len == 4 && memcmp(s, "data", 4) == 0) {
        if (p->data.len + vn + 1 > cap(p))
            return BL_ERANGE;
        if (bl_buf_append(&p->data, v, vn) || bl_buf_append(&p->data, "\n", 1))
            return BL_ENOMEM;
    } else if (fn_len == 5 && memcmp(s, "event", 5) == 0) {
        bl_buf_reset(&p->event);
        if (bl_buf_append(&p->event, v, vn))
            return BL_ENOMEM;
    }
    return 0; /* id, retry and unknown fields are ignored */
}

int bl_upstream_sse_feed(bl_sse_parser_t *p, const char *buf, size_t n, bl_sse_event_fn fn,
                         void *ud)
{
    size_t i = 0;
    int rc;
    if (!p->started) {
        /* a leading BOM may itself arrive split */
        while (i < n && p->bom_seen < 3 && (unsigned char)buf[i] == bom[p->bom_seen]) {
            p->bom_seen++;
            i++;
        }
        if (i == n && p->bom_seen < 3)
            return 0;
        if (p->bom_seen < 3 && p->bom_seen > 0 &&
            bl_buf_append(&p->line, (const char *)bom, p->bom_seen))
            return BL_ENOMEM; /* not a BOM after all: those bytes are text */
        p->started = true;
    }
    if (p->last_cr && i < n) {
        p->last_cr = false;
        if (buf[i] == '\n')
            i++;
    }
    while (i < n) {
        size_t j = i;
        while (j < n && buf[j] != '\n' && buf[j] != '\r')
            j++;
        if (p->line.len + (j - i) > cap(p))
            return BL_ERANGE;
        if (j == n) {
            if (bl_buf_append(&p->line, buf + i, n - i))
                return BL_ENOMEM;
            break;
        }
        if (p->line.len) {
            if (bl_buf_append(&p->line, buf + i, j - i))
                return BL_ENOMEM;
            rc = line(p, p->line.data, p->line.len, fn, ud);
            bl_buf_reset(&p->line);
        } else {
            rc = line(p, buf + i, j - i, fn, ud);
        }
        if (rc)
            return rc;
        if (buf[j] == '\r') {
            if (j + 1 == n)
                p->last_cr = true;
            else if (buf[j + 1] == '\n')
                j++;
        }
        i = j + 1;
    }
    return 0;
}
