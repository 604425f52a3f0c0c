#include "router/sse.h"

#include <string.h>

/* SSE (WHATWG HTML, "event stream interpretation"): lines end in CRLF, LF or
 * CR; an empty line ends an event. */
size_t bl_sse_event_len(const char *p, size_t n)
{
    bool line_empty = true;
    for (size_t i = 0; i < n; i++) {
        char ch = p[i];
        if (ch != '\n' && ch != '\r') {
            line_empty = false;
            continue;
        }
        size_t end = i + 1;
        if (ch == '\r') {
            if (i + 1 == n)
                return 0; /* a CR might be the first half of a CRLF */
            if (p[i + 1] == '\n')
                end = i + 2;
        }
        if (line_empty)
            return end;
        line_empty = true;
        i = end - 1;
    }
    return 0;
}

bool bl_sse_event_data(const char *ev, size_t n, bl_buf_t *out)
{
    bool any = false;
    size_t i = 0;
    bl_buf_reset(out);
    while (i < n) {
        size_t j = i;
        while (j < n && ev[j] != '\n' && ev[j] != '\r')
            j++;
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
