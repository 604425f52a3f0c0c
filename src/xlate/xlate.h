/*
 * xlate: the API families ballast speaks and the translation between them.
 *
 * A client speaks one family (OpenAI Chat Completions, OpenAI Responses,
 * Anthropic Messages) and a target speaks one (possibly another). When they
 * differ, the client's request is read into one internal form (bl_xreq_t)
 * and written out in the target's family; the target's answer is read into
 * a sequence of internal events (bl_xev_t) and written out in the client's
 * family, streamed or whole. Every family has one reader and one writer on
 * each side, so N families need N of each, not N*N translators. When the
 * families are the same nothing here runs: bytes pass through untouched.
 *
 *   request:  client body --bl_xreq_parse--> bl_xreq_t --bl_xreq_write--> target body
 *   answer:   target SSE/JSON --bl_xread_*--> bl_xev_t... --bl_xwrite_*--> client SSE/JSON
 *   errors:   bl_xerr_* map statuses and error bodies between families
 *
 * What a family cannot express is dropped when harmless and refused (400,
 * with the construct named) when dropping it would change the meaning; the
 * README's translation table lists each case.
 *
 * Pure functions over memory: no I/O, no loop. Owns nothing it did not
 * allocate; every object here has a _free.
 */
#ifndef BL_XLATE_H
#define BL_XLATE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/json_scan.h"
#include "util/util.h"

typedef enum {
    BL_FAM_CHAT = 0,   /* OpenAI POST /v1/chat/completions */
    BL_FAM_RESPONSES,  /* OpenAI POST /v1/responses */
    BL_FAM_ANTHROPIC,  /* Anthropic POST /v1/messages */
    BL_FAM_COUNT
} bl_family_t;

const char *bl_family_name(bl_family_t f); /* "chat", "responses", "anthropic" */
/* The path under a provider's base_url that takes this family's requests. */
const char *bl_family_path(bl_family_t f);  /* "/chat/completions", "/responses", "/messages" */

/* ---- errors ------------------------------------------------------------- */

/* Why a request could not be read or written, for a 400 in the client's
 * family: message says what and where ("messages[2].content[0]: unknown
 * block type 'video'"); param names the field when there is one. */
typedef struct {
    int status;          /* 400 unless said otherwise */
    char param[96];
    char message[400];
} bl_xerr_t;

/* Error kinds every family can express (each family's writer picks its name). */
typedef enum {
    BL_XERR_INVALID_REQUEST = 0, /* 400 */
    BL_XERR_AUTHENTICATION,      /* 401 */
    BL_XERR_PERMISSION,          /* 403 */
    BL_XERR_NOT_FOUND,           /* 404 */
    BL_XERR_TOO_LARGE,           /* 413 */
    BL_XERR_RATE_LIMIT,          /* 429 */
    BL_XERR_API,                 /* 500 and other 5xx */
    BL_XERR_OVERLOADED,          /* OpenAI 503 <-> Anthropic 529 */
    BL_XERR_TIMEOUT,             /* 504 */
} bl_xerr_kind_t;

/* The kind a status means (any family; 529 is overloaded). */
bl_xerr_kind_t bl_xerr_kind_of_status(int status);
/* The status family f uses for kind k (overloaded: 503 for OpenAI, 529 for Anthropic). */
int bl_xerr_status(bl_family_t f, bl_xerr_kind_t k);

/* A whole error response body in family f's shape:
 *   chat/responses: {"error":{"message","type","param","code"}}
 *   anthropic:      {"type":"error","error":{"type","message"}}
 * code may be NULL (then a default for the kind); param may be NULL. */
int bl_xerr_body(bl_family_t f, bl_xerr_kind_t k, const char *message, const char *param,
                 const char *code, bl_buf_t *out);

/* Read an error body a target of family f sent (any shape, even not JSON)
 * and write it in family to's shape; *status is the target's status in and
 * the client's status out (529 <-> 503). */
int bl_xerr_translate(bl_family_t from, bl_family_t to, int *status, const char *body, size_t n,
                      bl_buf_t *out);

/* ---- the internal request ----------------------------------------------- */

typedef enum {
    BL_ROLE_SYSTEM = 0,
    BL_ROLE_DEVELOPER,   /* OpenAI "developer"; Anthropic folds it into system */
    BL_ROLE_USER,
    BL_ROLE_ASSISTANT,
    BL_ROLE_TOOL,        /* results of tool calls (parts are TOOL_RESULT) */
} bl_role_t;

typedef enum {
    BL_PART_TEXT = 0,     /* text */
    BL_PART_IMAGE,        /* url: an http(s) URL or a "data:<media type>;base64,..." URL;
                             detail: "auto"/"low"/"high" or NULL */
    BL_PART_TOOL_CALL,    /* assistant: id, name, text = the arguments as JSON text */
    BL_PART_TOOL_RESULT,  /* id = the call's id; text = the result as text (blocks joined),
                             is_error; raw = the original content array when it was not
                             plain text (images in a result), else NULL */
    BL_PART_OPAQUE,       /* an item only its own family understands (a Responses reasoning
                             item, an Anthropic thinking block): raw, family; written out
                             only to that family, dropped for others */
} bl_part_kind_t;

typedef struct {
    bl_part_kind_t kind;
    const char *text;
    size_t text_len;
    const char *id;
    const char *name;
    const char *url;
    const char *detail;
    bool is_error;
    json_t *raw;          /* a reference (owned by the part) or NULL */
    bl_family_t family;   /* OPAQUE: whose item it is */
} bl_xpart_t;

typedef struct {
    bl_role_t role;
    bl_xpart_t *parts;
    size_t n_parts, cap_parts;
    const char *name;     /* OpenAI's optional participant name, or NULL */
} bl_xmsg_t;

typedef struct {
    const char *name;
    const char *description;   /* or NULL */
    json_t *parameters;        /* JSON Schema object (a reference) or NULL */
    int strict;                /* -1 unset, 0, 1 */
} bl_xtool_t;

typedef enum {
    BL_TC_UNSET = 0,  /* the family's default (auto when there are tools) */
    BL_TC_AUTO,
    BL_TC_NONE,
    BL_TC_REQUIRED,   /* Anthropic "any" */
    BL_TC_NAMED,      /* tool_choice_name */
} bl_tool_choice_t;

typedef enum {
    BL_FMT_TEXT = 0,
    BL_FMT_JSON_OBJECT,   /* any JSON object */
    BL_FMT_JSON_SCHEMA,   /* format_schema (+ format_name, format_strict) */
} bl_format_t;

typedef struct {
    bl_family_t family;        /* what the client spoke */
    const char *model;
    bl_xmsg_t *msgs;           /* in order; system/developer messages where the client put
                                  them (Responses "instructions" and Anthropic "system" are
                                  a first SYSTEM message) */
    size_t n_msgs, cap_msgs;
    bl_xtool_t *tools;
    size_t n_tools, cap_tools;
    bl_tool_choice_t tool_choice;
    const char *tool_choice_name;
    int parallel_tool_calls;   /* -1 unset, 0, 1 */
    int64_t max_tokens;        /* -1 unset */
    double temperature, top_p; /* NAN when unset */
    double presence_penalty, frequency_penalty; /* NAN when unset */
    int64_t top_k;             /* -1 unset (Anthropic only; dropped elsewhere) */
    int64_t seed;
    bool has_seed;
    const char **stop;         /* stop sequences */
    size_t n_stop;
    bl_format_t format;
    json_t *format_schema;     /* a reference, BL_FMT_JSON_SCHEMA */
    const char *format_name;
    int format_strict;         /* -1 unset */
    bool stream;
    bool include_usage;        /* chat stream_options.include_usage (always on elsewhere) */
    json_t *metadata;          /* a reference or NULL */
    const char *user;          /* end-user id (OpenAI user, Anthropic metadata.user_id) */
    /* Responses only */
    const char *previous_response_id;
    int store;                 /* -1 unset */
    const char *hosted_tool;   /* the first hosted tool asked for ("web_search_preview", ...),
                                  which only OpenAI's Responses API can run; NULL if none.
                                  Offered, it is dropped for other targets (the model just
                                  cannot use it); forced (hosted_tool_required), it cannot */
    bool hosted_tool_required; /* tool_choice names a hosted tool */
    const char *reasoning_effort; /* Responses reasoning.effort / chat reasoning_effort */

    /* storage: the parsed client body and strings made while reading it */
    json_t *doc;
    char **owned;
    size_t n_owned, cap_owned;
} bl_xreq_t;

/* Read a client's body in family f. On a bad request returns BL_EINVAL with
 * err filled (status 400 and what was wrong, in the words that family's API
 * would use). *out is NULL on error. */
int bl_xreq_parse(bl_family_t f, const char *body, size_t n, bl_xreq_t **out, bl_xerr_t *err);
void bl_xreq_free(bl_xreq_t *q);

/* How to write a request for a target. */
typedef struct {
    const char *model;             /* the target's model name */
    const char *assistant_prefix;  /* mid-stream failover: the answer so far, or NULL */
    size_t assistant_prefix_len;
    bool continue_instruction;     /* with a prefix: also ask the model (a cloud model, which
                                      cannot continue an open turn) to go on from it */
    int64_t max_tokens_default;    /* when the client set none and the family requires it
                                      (Anthropic); 0 = 4096 */
} bl_xwrite_req_opts_t;

/* The body for a target of family f. BL_EINVAL with err when the request
 * holds something f cannot express and dropping it would change the meaning. */
int bl_xreq_write(const bl_xreq_t *q, bl_family_t f, const bl_xwrite_req_opts_t *o, bl_buf_t *out,
                  bl_xerr_t *err);

/* Builders for readers (and tests). Pointers returned stay valid until the
 * next call that adds to the same array. Strings given to bl_xreq_keep are
 * owned by q afterwards (it returns s, or NULL and frees s on ENOMEM). */
bl_xmsg_t *bl_xreq_add_msg(bl_xreq_t *q, bl_role_t role);
bl_xpart_t *bl_xmsg_add_part(bl_xmsg_t *m, bl_part_kind_t kind);
bl_xtool_t *bl_xreq_add_tool(bl_xreq_t *q);
const char *bl_xreq_keep(bl_xreq_t *q, char *s);
const char *bl_xreq_strndup(bl_xreq_t *q, const char *s, size_t n);
int bl_xreq_add_stop(bl_xreq_t *q, const char *s);
/* A zeroed request with every "unset" field set to unset; NULL on ENOMEM. */
bl_xreq_t *bl_xreq_new(bl_family_t f);

/* ---- the internal answer: events ---------------------------------------- */

typedef enum {
    BL_XEV_START = 0,  /* id, model: once, first */
    BL_XEV_TEXT,       /* text delta (whole UTF-8 characters) */
    BL_XEV_TOOL_START, /* index (0-based, per answer), id, name */
    BL_XEV_TOOL_ARGS,  /* index, text = a piece of the arguments' JSON text */
    BL_XEV_USAGE,      /* input_tokens, output_tokens, cached_tokens; -1 = unknown. A reader
                          may send several (Anthropic: input first, output later): a writer
                          merges them, a known value replacing an earlier one */
    BL_XEV_FINISH,     /* finish, stop_sequence (or NULL): the answer is complete */
    BL_XEV_ERROR,      /* err_kind, text = message: the target failed inside the stream */
    BL_XEV_OPAQUE,     /* raw: a family-specific item (reasoning) for a same-family client */
} bl_xev_kind_t;

typedef enum {
    BL_XFIN_STOP = 0,       /* chat "stop", Anthropic end_turn, Responses completed */
    BL_XFIN_STOP_SEQUENCE,  /* a stop sequence matched (chat says "stop") */
    BL_XFIN_LENGTH,         /* max tokens */
    BL_XFIN_TOOL_CALLS,     /* Anthropic tool_use */
    BL_XFIN_CONTENT_FILTER, /* Anthropic refusal */
} bl_xfinish_t;

typedef struct {
    bl_xev_kind_t kind;
    const char *id, *name, *model;   /* borrowed: valid during the callback */
    const char *text;
    size_t text_len;
    int index;
    int64_t input_tokens, output_tokens, cached_tokens;
    bl_xfinish_t finish;
    const char *stop_sequence;
    bl_xerr_kind_t err_kind;
    json_t *raw;                     /* borrowed */
} bl_xev_t;

/* Return nonzero to stop reading (the reader returns BL_ECANCELED). */
typedef int (*bl_xev_fn)(void *ud, const bl_xev_t *ev);

/* Reads a target's answer in one family into events. For a stream, give it
 * each SSE event (name and data) in order; for a whole answer, the body. A
 * reader emits START before anything else and FINISH (or ERROR) last;
 * USAGE may come before FINISH. Text that is not what the family's API
 * sends is BL_EFORMAT (the target is broken: fail over). */
typedef struct bl_xread bl_xread_t;

int bl_xread_new(bl_family_t f, bl_xread_t **out);
void bl_xread_free(bl_xread_t *r);
int bl_xread_event(bl_xread_t *r, bl_str_t event, bl_str_t data, bl_xev_fn fn, void *ud);
int bl_xread_body(bl_xread_t *r, const char *body, size_t n, bl_xev_fn fn, void *ud);
/* The target's stream closed: emit what the reader still holds (a chat
 * finish_reason waits for the usage chunk that may follow it). */
int bl_xread_eof(bl_xread_t *r, bl_xev_fn fn, void *ud);
/* Has the stream ended as the family ends it ([DONE], message_stop,
 * response.completed)? A stream that closes before this was cut. */
bool bl_xread_done(const bl_xread_t *r);

/* Writes events as a client of one family expects them. */
typedef struct bl_xwrite bl_xwrite_t;

typedef struct {
    bool stream;
    bool include_usage;      /* chat: the usage chunk (stream_options.include_usage) */
    const char *model;       /* the model name the client asked for (shown back to it) */
    const char *id;          /* the answer's id, or NULL to make one (resp_/msg_/chatcmpl-) */
    int64_t created;         /* unix seconds, 0 = now */
    const bl_xreq_t *req;    /* Responses echoes request fields in its response object */
    const char *prior_text;  /* bl_xwrite_resume: the text of the open message the client has
                                (Responses repeats it in its closing events); may be NULL */
    size_t prior_text_len;
} bl_xwrite_opts_t;

int bl_xwrite_new(bl_family_t f, const bl_xwrite_opts_t *o, bl_xwrite_t **out);
void bl_xwrite_free(bl_xwrite_t *w);
/* Append what ev becomes to out: SSE bytes ("event: x\ndata: {...}\n\n")
 * when streaming; nothing until FINISH otherwise. */
int bl_xwrite_event(bl_xwrite_t *w, const bl_xev_t *ev, bl_buf_t *out);
/* Not streaming: the whole response body, once FINISH went by.
 * Streaming: the family's closing events if FINISH has not written them. */
int bl_xwrite_end(bl_xwrite_t *w, bl_buf_t *out);
/* The stream broke and nothing can continue it: the family's in-stream
 * error (chat: a data: {"error":...} event; Anthropic: event: error;
 * Responses: response.failed). */
int bl_xwrite_fail(bl_xwrite_t *w, bl_xerr_kind_t k, const char *message, bl_buf_t *out);
/* Mark the closing event as a mid-stream failover from one backend to
 * another (the x_ballast annotation). */
void bl_xwrite_note_failover(bl_xwrite_t *w, const char *from, const char *to);

/* Mid-stream failover on a stream that was passed through untranslated:
 * the state the client has seen, read off that stream, so a writer can
 * continue it (same ids, next indices, next sequence number). A reader of
 * the client's own family tracks it. */
typedef struct {
    char id[128];
    char model[128];
    char item_id[128];      /* Responses: the open message item; Anthropic: unused */
    int64_t created;
    int64_t next_seq;       /* Responses sequence_number of the next event */
    int next_index;         /* Anthropic content block / Responses output_index to use next */
    int open_index;         /* the open text block / item's index, -1 when none */
    int n_tool_calls;
    bool started;
} bl_xstate_t;

void bl_xread_state(const bl_xread_t *r, bl_xstate_t *out);
/* A writer that continues a stream the client has seen up to st. */
int bl_xwrite_resume(bl_family_t f, const bl_xwrite_opts_t *o, const bl_xstate_t *st,
                     bl_xwrite_t **out);

/* ---- chat completion chunks, read fast ---------------------------------- */

/* What one streamed completion chunk says (OpenAI's
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
} bl_xchat_chunk_t;

/* 0, or -1 when the text is not read here exactly as jansson would read it
 * (not a valid object, a repeated member or an escaped key, "\u0000" or
 * an unpaired surrogate escape, a number jansson might overflow on): the
 * caller falls back to jansson for that event. */
int bl_xchat_chunk_read(const char *data, size_t n, bl_xchat_chunk_t *out);

/* The integer members prompt_tokens, completion_tokens, total_tokens of a
 * "usage" object's text, as jansson's json_is_integer would see them. 0, or
 * -1 under the same conditions as bl_xchat_chunk_read. */
int bl_xchat_usage_read(const char *p, size_t n, long long vals[3], bool have[3]);


/* ---- shared helpers for the family files ---------------------------------- */

/* Append "event: name\ndata: <json>\n\n" (name NULL: no event line). */
void bl_xsse(bl_buf_t *out, const char *name, json_t *data);
/* A random id with a prefix: "msg_" + 24 base62 characters. */
void bl_xid(char *out, size_t cap, const char *prefix);

#endif
