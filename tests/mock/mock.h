/*
 * ballast-mock internals: a small single-threaded libuv + http-parser
 * HTTP/1.1 server that imitates an OpenAI-compatible provider and can be told
 * to misbehave (fault modes). See mock.c for the command line and modes.
 *
 *   mock.c  - command line, listener, signals, process-wide state
 *   conn.c  - connections: parsing, the paced response sender, disconnects
 *   api.c   - endpoints: render OpenAI-shaped bodies, /_mock/... control
 *   anthropic.c - POST /v1/messages in the Anthropic Messages API shapes
 *   responses.c - POST /v1/responses in the OpenAI Responses API shapes
 *   tools.c - scripted tool calls: the tool-call-then-final-answer exchange
 *   fault.c - fault modes and their parameters
 */
#ifndef BL_MOCK_H
#define BL_MOCK_H

#include <stdbool.h>
#include <stdint.h>
#include <http_parser.h>
#include <jansson.h>
#include <uv.h>

#include "util/util.h"

typedef enum {
    MF_OK = 0,
    MF_REFUSE,          /* stop listening (process) / close without answer (header) */
    MF_RESET,           /* headers + part of the body, then TCP RST */
    MF_STATUS,          /* an error status with an OpenAI error body */
    MF_HANG,            /* read the request, never answer */
    MF_SLOW_FIRST_BYTE, /* headers at once, first body byte after ms */
    MF_CUT,             /* K SSE events, then close without the last chunk */
    MF_MALFORMED,       /* 200 with a body (or SSE data) that is not JSON */
    MF_DRIP,            /* ms between SSE events */
    MF_DELAY,           /* nothing at all for ms, then the normal response */
} fault_kind_t;

typedef struct {
    fault_kind_t kind;
    int code;             /* status */
    char retry_after[64]; /* status: seconds or an HTTP-date; "" = none */
    uint64_t ms;          /* slow_first_byte, drip, delay */
    int events;           /* cut */
    int chunks;           /* content chunks; 0 = the process default */
} fault_t;

const char *fault_name(fault_kind_t k);
int fault_kind_parse(const char *s, size_t n, fault_kind_t *out);
/* "MODE;param=value;..." from the x-mock-fault header */
int fault_parse_header(const char *v, size_t n, fault_t *f);
/* {"mode": "...", params...} from POST /_mock/mode */
int fault_parse_json(const char *body, size_t n, fault_t *f);

/* How the sender ends a response early. */
typedef enum { END_NONE = 0, END_CLOSE, END_RESET } end_action_t;

#define MOCK_MAX_SEGS 4200 /* headers + up to 4096 content events + extras */

typedef struct conn {
    uv_tcp_t tcp;
    uv_timer_t timer;
    http_parser parser;
    struct conn *prev, *next;

    /* the request being read */
    bl_buf_t url;
    bl_buf_t hdrs; /* "name\0value\0" pairs, names lowercased */
    bl_buf_t body;
    int hstate; /* 0 none, 1 in a field, 2 in a value */
    bool keep_alive;
    bool too_big;

    /* the response: out holds everything; seg_end[i] ends segment i
     * (segment 0 = status line and headers, then body pieces) */
    bl_buf_t out;
    size_t seg_end[MOCK_MAX_SEGS];
    size_t n_segs;
    size_t next_seg;
    uint64_t delay_ms, first_byte_ms, gap_ms;
    long stop_after; /* body pieces to send before end; -1 = all */
    end_action_t end;
    bool waited;      /* the wait before next_seg is over */
    bool resp_active; /* a request is being answered */
    bool busy;        /* parser paused until the response is written */
    bool end_when_drained;
    bool closing;
    int writes_inflight;
    bl_buf_t pending_in; /* bytes read while busy */
    bl_buf_t scratch;    /* reused for JSON escaping and text */
} conn_t;

typedef struct {
    char path[96];
    uint64_t n;
} path_count_t;

typedef struct {
    uv_loop_t *loop;
    uv_tcp_t *listener;
    char host[64];
    int port;
    char name[128];
    char name_json[300]; /* name as an escaped JSON string body */
    fault_t mode;
    int chunks;
    conn_t *conns;
    uint64_t seq; /* response ids */

    uint64_t requests, connections, disconnects;
    path_count_t by_path[32];
    size_t n_paths;
    bl_buf_t last_path, last_method, last_hdrs, last_body;
    bool have_last;
} mock_t;

extern mock_t g_mock;

int mock_listen(void);
void mock_refuse(conn_t *except);

/* conn.c */
void conn_accept(uv_stream_t *server);
void conn_close(conn_t *c);
/* Start sending c->out according to the plan fields. */
void conn_send_start(conn_t *c);
const char *conn_header(const conn_t *c, const char *lname, size_t *len);

/* api.c: called once a whole request is in; fills c->out and the plan, or
 * leaves c->resp_active set with nothing to send (hang). */
void api_handle(conn_t *c);
void json_escape(bl_buf_t *b, const char *s, size_t n);

/* api.c: response building shared by the endpoint files. Rendering is
 * synchronous on the one loop thread, so these buffers are shared. */
#define MAX_CHUNKS 4096
extern bl_buf_t g_text; /* the reply text, raw */
extern size_t g_piece_end[MAX_CHUNKS];
extern size_t g_n_pieces; /* g_text in pieces ending at g_piece_end[i] */
extern bl_buf_t g_model;  /* the requested model, JSON-escaped */
extern bl_buf_t g_ev;     /* scratch for one event's JSON */
void build_text(const char *model, size_t model_len, int n);
/* Cut g_text (set by the caller) in up to n pieces on word boundaries. */
void split_text(int n);
void plan_reset(conn_t *c);
void send_body(conn_t *c, int code, const char *ctype, const char *extra, const char *body,
               size_t n);
void sse_head(conn_t *c);
/* One SSE event in one HTTP chunk; name NULL = no event: line. */
void sse_event_named(conn_t *c, const char *name, const char *data, size_t n);
void sse_last_chunk(conn_t *c);

/* anthropic.c: POST /v1/messages (Anthropic Messages API shapes); tool =
 * answer with the scripted tool call (tools.c) instead of g_text. */
void anthropic_messages(conn_t *c, bool stream, unsigned input_tokens, uint64_t id, bool malformed,
                        bool tool);
void anthropic_error(conn_t *c, int code, const char *message, const char *retry_after);

/* The API family of a request, for the tool script. */
typedef enum { FAM_CHAT, FAM_RESPONSES, FAM_ANTHROPIC } family_t;

/* tools.c: the scripted tool call being rendered (valid after tools_plan
 * returned true): name JSON-escaped, arguments as raw JSON object text in
 * g_n_arg_pieces pieces ending at g_arg_end[i]. */
extern bl_buf_t g_tool_name;
extern bl_buf_t g_tool_args;
extern size_t g_arg_end[3];
extern size_t g_n_arg_pieces;
/* Decide the answer to root: true = the scripted tool call; false = text in
 * g_text/g_piece_end ("Done: RESULT" after a tool result, else the greeting). */
bool tools_plan(json_t *root, family_t fam, const char *model, size_t model_len, int chunks);
/* Set the script: --tool-name/--tool-args (args_json NULL = {}), or the body
 * of POST /_mock/tool {"name": NAME|null, "arguments": OBJECT|STRING}. */
int tools_set_cli(const char *name, const char *args_json);
int tools_set_json(const char *body, size_t n);
json_t *tools_describe(void); /* {"name", "arguments"} of the script */
void tools_free(void);

/* responses.c: POST /v1/responses (OpenAI Responses API shapes). */
typedef struct {
    bool stream;
    unsigned input_tokens;
    uint64_t id;
    long long created;
} resp_info_t;
void responses_render(conn_t *c, json_t *root, const resp_info_t *ri, bool malformed, bool tool);
void responses_free(void);

#endif
