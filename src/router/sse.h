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

/* What the router needs from one streamed completion chunk (OpenAI's
 * chat.completion.chunk or text_completion), read with the allocation-free
 * JSON scanner instead of a jansson tree: this runs for every event of every
 * stream. Value spans point into the event text; strings keep their quotes. */
typedef struct {
    bool error;              /* an "error" member (any value) */
    bool choices_array;      /* "choices" is an array */
    size_t n_choices;
    bool any_shows;          /* some choice carries text, content, a refusal, a tool
                                call or a finish reason: the user sees something */
    bl_json_member_t usage;  /* top-level "usage" (kind BL_JSON_NONE when absent) */
    /* choices[0] */
    bl_str_t text0;          /* delta.content, or text when there is no delta object;
                                {NULL, 0} unless a string */
    bool tool0;              /* delta has tool_calls or function_call */
    bool finished0;          /* finish_reason present and not null */
} bl_sse_chunk_t;

/* 0, or -1 when the text is not read here exactly as jansson would read it
 * (not a valid object, a repeated member or an escaped key, "\u0000" or
 * an unpaired surrogate escape, a number jansson might overflow on): the
 * caller falls back to jansson for that event. */
int bl_sse_chunk_read(const char *data, size_t n, bl_sse_chunk_t *out);

/* The integer members prompt_tokens, completion_tokens, total_tokens of a
 * "usage" object's text, as jansson's json_is_integer would see them. 0, or
 * -1 under the same conditions as bl_sse_chunk_read. */
int bl_sse_usage_read(const char *p, size_t n, long long vals[3], bool have[3]);

#endif
