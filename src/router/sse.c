#include "router/sse.h"

#include <string.h>

/* The first CR or LF in p[i..n), or n. memchr finds the LF; a CR can only
 * matter before it. */
static size_t line_end(const char *p, size_t n, size_t i)
{
    const char *lf = memchr(p + i, '\n', n - i);
    size_t e = lf ? (size_t)(lf - p) : n;
    const char *cr = memchr(p + i, '\r', e - i);
    return cr ? (size_t)(cr - p) : e;
}

/* SSE (WHATWG HTML, "event stream interpretation"): lines end in CRLF, LF or
 * CR; an empty line ends an event. */
size_t bl_sse_event_len(const char *p, size_t n)
{
    size_t i = 0;
    while (i < n) {
        size_t j = line_end(p, n, i);
        if (j >= n)
            return 0;
        bool line_empty = j == i;
        size_t end = j + 1;
        if (p[j] == '\r') {
            if (j + 1 == n)
                return 0; /* a CR might be the first half of a CRLF */
            if (p[j + 1] == '\n')
                end = j + 2;
        }
        if (line_empty)
            return end;
        i = end;
    }
    return 0;
}

bool bl_sse_event_data(const char *ev, size_t n, bl_buf_t *out)
{
    bool any = false;
    size_t i = 0;
    bl_buf_reset(out);
    while (i < n) {
        size_t j = line_end(ev, n, i);
        const char *line = ev + i;
        size_t len = j - i;
        if (len >= 5 && !memcmp(line, "data", 4) && (len == 4 || line[4] == ':')) {
            const char *v = line + 5;
            size_t vn = len - 5;
            if (vn && *v == ' ') {
                v++;
                vn--;
            }
            if (any)
                bl_buf_append(out, "\n", 1);
            bl_buf_append(out, v, vn);
            any = true;
        } else if (len == 4 && !memcmp(line, "data", 4)) {
            if (any)
                bl_buf_append(out, "\n", 1);
            any = true;
        }
        if (j < n && ev[j] == '\r' && j + 1 < n && ev[j + 1] == '\n')
            j++;
        i = j + 1;
    }
    return any;
}

bl_str_t bl_sse_event_name(const char *ev, size_t n)
{
    bl_str_t name = {NULL, 0};
    size_t i = 0;
    while (i < n) {
        size_t j = line_end(ev, n, i);
        const char *line = ev + i;
        size_t len = j - i;
        if (len >= 6 && !memcmp(line, "event:", 6)) {
            const char *v = line + 6;
            size_t vn = len - 6;
            if (vn && *v == ' ') {
                v++;
                vn--;
            }
            name = (bl_str_t){v, vn};
        }
        if (j < n && ev[j] == '\r' && j + 1 < n && ev[j + 1] == '\n')
            j++;
        i = j + 1;
    }
    return name;
}
