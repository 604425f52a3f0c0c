/*
 * Reading tool calls back out of generated text, as it streams.
 *
 * Hermes form (Qwen 2.5/3 and the fallback of every family without its own
 * tool syntax): <tool_call>\n{"name": ..., "arguments": ...}\n</tool_call>,
 * any number of them, anywhere in the answer. Llama 3.1/3.2 form: the
 * answer itself is {"name": ..., "parameters": ...} (maybe after
 * <|python_tag|>), possibly several separated by ";" or whitespace; an
 * answer that starts with anything else is plain text.
 *
 * Text is held back only while it may still turn out to be a call: a tail
 * that is a prefix of "<tool_call>", a call whose end has not come, or (Llama)
 * an answer still inside its leading JSON object. A call is reported when
 * complete, so text that looked like a call but is not one (not JSON, no
 * name) is given back as text, byte for byte.
 */
#include "engine/chat/chat.h"

#define HOLD_MAX (1u << 20) /* a "call" longer than this is taken for text */

static const char OPEN[] = "<tool_call>", CLOSE[] = "</tool_call>";
static const char PYTAG[] = "<|python_tag|>";

typedef enum {
    S_TEXT,  /* Hermes: outside a call */
    S_CALL,  /* Hermes: after <tool_call>, waiting for </tool_call> */
    S_START, /* Llama: only whitespace so far */
    S_JSON,  /* Llama: inside a leading JSON object */
    S_SEP,   /* Llama: after a call, before the next one or text */
    S_PLAIN, /* Llama: the answer is text */
} state_t;

struct bl_chat_tool_parser {
    bl_chat_tool_style_t style;
    state_t st;
    sb_t hold; /* bytes not yet decided on */
    size_t n_calls;
    bool after_call; /* whitespace right after a call is dropped */
    /* S_JSON: how far hold has been scanned for the object's end */
    size_t scan, depth;
    bool in_str, esc;
    bl_chat_event_fn fn;
    void *ud;
};

int bl_chat_tool_parser_new(bl_chat_tool_style_t style, bl_chat_tool_parser_t **out)
{
    if (!out || (style != BL_CHAT_TOOLS_HERMES && style != BL_CHAT_TOOLS_LLAMA3))
        return BL_EINVAL;
    bl_chat_tool_parser_t *p = calloc(1, sizeof *p);
    if (!p)
        return BL_ENOMEM;
    p->style = style;
    p->st = style == BL_CHAT_TOOLS_HERMES ? S_TEXT : S_START;
    *out = p;
    return 0;
}

void bl_chat_tool_parser_free(bl_chat_tool_parser_t *p)
{
    if (!p)
        return;
    free(p->hold.p);
    free(p);
}

size_t bl_chat_tool_parser_calls(const bl_chat_tool_parser_t *p)
{
    return p ? p->n_calls : 0;
}

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static int ev(bl_chat_tool_parser_t *p, bl_chat_event_kind_t k, const char *s, size_t n)
{
    bl_chat_event_t e = {k, p->n_calls, s, n};
    return p->fn(p->ud, &e);
}

static int text(bl_chat_tool_parser_t *p, const char *s, size_t n)
{
    if (p->after_call) {
        while (n && is_space(*s)) {
            s++;
            n--;
        }
        if (!n)
            return 0;
        p->after_call = false;
    }
    return n ? ev(p, BL_CHAT_EV_TEXT, s, n) : 0;
}

/* Drop the first n held bytes. */
static void consume(bl_chat_tool_parser_t *p, size_t n)
{
    if (!n)
        return;
    memmove(p->hold.p, p->hold.p + n, p->hold.n - n);
    p->hold.n -= n;
    if (p->hold.p)
        p->hold.p[p->hold.n] = '\0';
}

/* Report s as a call if it is one; false (nothing reported) otherwise. */
static bool try_call(bl_chat_tool_parser_t *p, const char *s, size_t n, int *rc)
{
    sb_t name = {0}, args = {0};
    bool ok = bl_chat_json_tool_call(s, n, &name, &args);
    if (ok) {
        if (!(*rc = ev(p, BL_CHAT_EV_CALL_START, name.p, name.n)) &&
            !(*rc = ev(p, BL_CHAT_EV_CALL_ARGS, args.p, args.n)))
            *rc = ev(p, BL_CHAT_EV_CALL_END, "", 0);
        p->n_calls++;
        p->after_call = true;
    }
    free(name.p);
    free(args.p);
    return ok;
}

static const char *find(const char *s, size_t n, const char *needle)
{
    size_t k = strlen(needle);
    for (size_t i = 0; k <= n && i <= n - k; i++)
        if (s[i] == needle[0] && !memcmp(s + i, needle, k))
            return s + i;
    return NULL;
}

/* Length of the longest tail of s that is a proper prefix of marker. */
static size_t partial_tail(const char *s, size_t n, const char *marker)
{
    size_t k = strlen(marker);
    for (size_t t = k - 1 < n ? k - 1 : n; t > 0; t--)
        if (!memcmp(s + n - t, marker, t))
            return t;
    return 0;
}

static int hermes(bl_chat_tool_parser_t *p, bool end)
{
    int rc = 0;
    while (!rc && p->hold.n) {
        const char *h = p->hold.p;
        size_t n = p->hold.n;
        if (p->st == S_TEXT) {
            const char *m = find(h, n, OPEN);
            if (m) {
                rc = text(p, h, (size_t)(m - h));
                consume(p, (size_t)(m - h) + sizeof OPEN - 1);
                p->st = S_CALL;
                continue;
            }
            size_t keep = end ? 0 : partial_tail(h, n, OPEN);
            rc = text(p, h, n - keep);
            consume(p, n - keep);
            return rc;
        }
        const char *m = find(h, n, CLOSE);
        if (!m && !end && n < HOLD_MAX)
            return 0; /* the call goes on */
        size_t body = m ? (size_t)(m - h) : n;
        size_t used = m ? body + sizeof CLOSE - 1 : n;
        if (!try_call(p, h, body, &rc) && !rc) {
            /* Not a call after all: every byte goes out as it came. */
            if (!(rc = text(p, OPEN, sizeof OPEN - 1)))
                rc = text(p, h, used);
        }
        consume(p, used);
        p->st = S_TEXT;
    }
    return rc;
}

/* Scan hold for the end of the JSON object it starts with; its length, or
 * 0 while it is still open. */
static size_t object_end(bl_chat_tool_parser_t *p)
{
    for (; p->scan < p->hold.n; p->scan++) {
        char c = p->hold.p[p->scan];
        if (p->in_str) {
            if (p->esc)
                p->esc = false;
            else if (c == '\\')
                p->esc = true;
            else if (c == '"')
                p->in_str = false;
        } else if (c == '"') {
            p->in_str = true;
        } else if (c == '{' || c == '[') {
            p->depth++;
        } else if ((c == '}' || c == ']') && p->depth && --p->depth == 0) {
            return ++p->scan;
        }
    }
    return 0;
}

static int plain(bl_chat_tool_parser_t *p)
{
    p->st = S_PLAIN;
    int rc = text(p, p->hold.p, p->hold.n);
    consume(p, p->hold.n);
    return rc;
}

static int llama(bl_chat_tool_parser_t *p, bool end)
{
    int rc = 0;
    while (!rc && p->hold.n) {
        const char *h = p->hold.p;
        size_t n = p->hold.n;
        if (p->st == S_PLAIN)
            return plain(p);
        if (p->st == S_START || p->st == S_SEP) {
            size_t i = 0;
            while (i < n && (is_space(h[i]) || (p->st == S_SEP && h[i] == ';')))
                i++;
            if (i == n) {
                if (end && p->st == S_START)
                    return plain(p); /* an answer of whitespace */
                if (end)
                    consume(p, n);
                return 0;
            }
            size_t k = sizeof PYTAG - 1;
            if (n - i >= k && !memcmp(h + i, PYTAG, k)) {
                consume(p, i + k); /* a control token, never shown */
                continue;
            }
            if (n - i < k && !memcmp(h + i, PYTAG, n - i) && !end)
                return 0;
            if (h[i] != '{')
                return plain(p);
            /* Leading whitespace stays held: it is text again if this is
             * not a call; separators after a call are dropped. */
            if (p->st == S_SEP) {
                consume(p, i);
                i = 0;
            }
            p->st = S_JSON;
            p->scan = i;
            p->depth = 0;
            p->in_str = p->esc = false;
            continue;
        }
        /* S_JSON */
        size_t len = object_end(p);
        if (!len && !end && n < HOLD_MAX)
            return 0;
        if (!len || !try_call(p, h, len, &rc)) {
            if (!rc)
                rc = plain(p);
            return rc;
        }
        consume(p, len);
        p->st = S_SEP;
    }
    return rc;
}

static int run(bl_chat_tool_parser_t *p, const char *s, size_t n, bl_chat_event_fn fn, void *ud,
               bool end)
{
    if (!p || !fn || (n && !s))
        return BL_EINVAL;
    putn(&p->hold, s, n);
    if (p->hold.oom)
        return BL_ENOMEM;
    p->fn = fn;
    p->ud = ud;
    return p->style == BL_CHAT_TOOLS_HERMES ? hermes(p, end) : llama(p, end);
}

int bl_chat_tool_parser_feed(bl_chat_tool_parser_t *p, const char *s, size_t n, bl_chat_event_fn fn,
                             void *ud)
{
    return run(p, s, n, fn, ud, false);
}

int bl_chat_tool_parser_finish(bl_chat_tool_parser_t *p, bl_chat_event_fn fn, void *ud)
{
    return run(p, NULL, 0, fn, ud, true);
}
