/* Internal to router: finding Server-Sent Events in a byte stream. */
#ifndef BL_ROUTER_SSE_H
#define BL_ROUTER_SSE_H

#include <stdbool.h>
#include <stddef.h>

#include "util/json_scan.h"
#include "util/util.h"

/* Length of the first complete event in p[0..n) including its terminating
 * blank line, or 0 when no event is complete yet. */
size_t bl_sse_event_len(const char *p, size_t n);

/* Concatenate the event's data lines ("data:" fields, joined with '\n') into
 * out. Returns false when the event has no data field (comments, pings). */
bool bl_sse_event_data(const char *ev, size_t n, bl_buf_t *out);

/* The event's "event:" field (the last one, as the spec says), or {NULL, 0}. */
bl_str_t bl_sse_event_name(const char *ev, size_t n);

#endif
