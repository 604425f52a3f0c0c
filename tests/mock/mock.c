/*
 * ballast-mock: a mock OpenAI-compatible provider for integration tests and
 * benchmarks. Single-threaded libuv + http-parser HTTP/1.1 server.
 *
 *   ballast-mock --port N [--host 127.0.0.1] [--name NAME] [--mode MODE]
 *                [--chunks N] [--port-file PATH]
 *                [--tool-name NAME [--tool-args JSON-OBJECT]]
 *
 * --port 0 picks a free port; once listening it prints
 * "listening on HOST:PORT" and writes PORT to --port-file if given.
 * SIGTERM/SIGINT exit cleanly.
 *
 * Endpoints: POST /v1/chat/completions, POST /v1/completions (stream or not,
 * stream_options.include_usage honoured), POST /v1/embeddings, GET /v1/models,
 * POST /v1/messages in Anthropic's Messages API shapes and POST /v1/responses
 * in OpenAI's Responses API shapes (stream or not; responses.c).
 * The reply text is "Hello from NAME (model M)." in N content chunks (--chunks,
 * default 5; filler words "tokK" are appended when the text has fewer words).
 * Every response carries "x-mock-name: NAME".
 *
 * Tool calls (tools.c), for chat, responses and messages requests: when the
 * request's last message/input item is a tool result (chat role "tool",
 * responses function_call_output, messages user tool_result block) the reply
 * text is "Done: RESULT" (first 200 bytes of the result's text). Otherwise,
 * when a script is set (--tool-name/--tool-args, or POST /_mock/tool
 * {"name": NAME, "arguments": {...}}; {"name": null} clears it) and the
 * request offers a tool of that name, the reply is that tool call in the
 * family's shape (chat tool_calls, responses function_call item, messages
 * tool_use block), streamed with the arguments in up to 3 pieces. A request
 * without that tool gets the usual text.
 *
 * Fault modes: process-wide with --mode or POST /_mock/mode
 * {"mode": MODE, param: value...}; per request with the header
 * "x-mock-fault: MODE;param=value;..." (the header wins):
 *   ok
 *   refuse           process-wide: close the listening socket and every open
 *                    connection, so connects are refused; SIGUSR1 listens
 *                    again on the same port and sets the mode back to ok.
 *                    As a header: close that connection without an answer.
 *   reset            headers and part of the body, then a TCP RST
 *   status           code=N (default 500), retry_after=SECONDS|HTTP-date;
 *                    body is an OpenAI error object
 *   hang             read the request, never answer, keep the connection
 *   slow_first_byte  ms=N: headers at once, first body byte after N ms
 *   cut              events=K (default 3): K SSE events, then close without
 *                    the final chunk (non-streamed: half the body, then close)
 *   malformed        200 whose JSON body, or an SSE event's data, is not JSON
 *   drip             ms=N (default 50) between SSE events
 *   delay            ms=N: nothing at all for N ms, then the normal response
 * Any mode also takes chunks=N.
 *
 * Control (never faulted, not counted): GET /_mock/stats, POST /_mock/reset
 * (zero the stats, forget the last request), POST /_mock/mode, GET /_mock/mode,
 * GET /_mock/last ({"method", "path", "headers": {lowercased: value}, "body":
 * raw text} of the last counted request, faulted or not; 404 if none),
 * POST /_mock/tool, GET /_mock/tool (the tool script).
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mock.h"

mock_t g_mock;
static uv_signal_t g_sig_term, g_sig_int, g_sig_usr1;

static void on_conn(uv_stream_t *server, int status)
{
    if (status == 0)
        conn_accept(server);
}

static void free_handle(uv_handle_t *h)
{
    free(h);
}

int mock_listen(void)
{
    struct sockaddr_storage addr;
    if (uv_ip4_addr(g_mock.host, g_mock.port, (struct sockaddr_in *)&addr) != 0 &&
        uv_ip6_addr(g_mock.host, g_mock.port, (struct sockaddr_in6 *)&addr) != 0)
        return BL_EINVAL;
    uv_tcp_t *l = malloc(sizeof *l);
    if (!l)
        return BL_ENOMEM;
    uv_tcp_init(g_mock.loop, l);
    int rc = uv_tcp_bind(l, (const struct sockaddr *)&addr, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)l, 1024, on_conn);
    if (rc != 0) {
        fprintf(stderr, "ballast-mock: listen on %s:%d: %s\n", g_mock.host, g_mock.port,
                uv_strerror(rc));
        uv_close((uv_handle_t *)l, free_handle);
        return BL_EIO;
    }
    struct sockaddr_storage got;
    int len = sizeof got;
    uv_tcp_getsockname(l, (struct sockaddr *)&got, &len);
    g_mock.port = ntohs(((struct sockaddr_in *)&got)->sin_port);
    g_mock.listener = l;
    return 0;
}

void mock_refuse(conn_t *except)
{
    if (g_mock.listener) {
        uv_close((uv_handle_t *)g_mock.listener, free_handle);
        g_mock.listener = NULL;
    }
    conn_t *c = g_mock.conns;
    while (c) {
        conn_t *next = c->next;
        if (c != except) {
            c->resp_active = false;
            conn_close(c);
        }
        c = next;
    }
}

static void on_signal(uv_signal_t *s, int signum)
{
    if (signum == SIGUSR1) {
        g_mock.mode = (fault_t){.kind = MF_OK};
        if (!g_mock.listener && mock_listen() != 0)
            fprintf(stderr, "ballast-mock: could not listen again\n");
        return;
    }
    mock_refuse(NULL);
    uv_close((uv_handle_t *)&g_sig_term, NULL);
    uv_close((uv_handle_t *)&g_sig_int, NULL);
    uv_close((uv_handle_t *)&g_sig_usr1, NULL);
}

static int usage(void)
{
    fputs("usage: ballast-mock --port N [--host 127.0.0.1] [--name NAME] [--mode MODE]\n"
          "                    [--chunks N] [--port-file PATH]\n"
          "                    [--tool-name NAME [--tool-args JSON-OBJECT]]\n",
          stderr);
    return 2;
}

int main(int argc, char **argv)
{
    const char *port_file = NULL, *mode = "ok", *tool_name = NULL, *tool_args = NULL;
    bool have_port = false;
    snprintf(g_mock.host, sizeof g_mock.host, "127.0.0.1");
    snprintf(g_mock.name, sizeof g_mock.name, "mock");
    g_mock.chunks = 5;
    for (int i = 1; i < argc; i += 2) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        uint64_t num;
        if (!v)
            return usage();
        if (strcmp(a, "--port") == 0 && bl_parse_u64(v, strlen(v), &num) == 0 && num < 65536) {
            g_mock.port = (int)num;
            have_port = true;
        } else if (strcmp(a, "--host") == 0 && strlen(v) < sizeof g_mock.host) {
            snprintf(g_mock.host, sizeof g_mock.host, "%s", v);
        } else if (strcmp(a, "--name") == 0 && strlen(v) < sizeof g_mock.name &&
                   !strpbrk(v, "\r\n")) {
            snprintf(g_mock.name, sizeof g_mock.name, "%s", v);
        } else if (strcmp(a, "--mode") == 0) {
            mode = v;
        } else if (strcmp(a, "--chunks") == 0 && bl_parse_u64(v, strlen(v), &num) == 0 &&
                   num >= 1 && num <= 4096) {
            g_mock.chunks = (int)num;
        } else if (strcmp(a, "--port-file") == 0) {
            port_file = v;
        } else if (strcmp(a, "--tool-name") == 0) {
            tool_name = v;
        } else if (strcmp(a, "--tool-args") == 0) {
            tool_args = v;
        } else {
            return usage();
        }
    }
    if (!have_port)
        return usage();
    /* --mode takes the header syntax: "status;code=503" */
    if (fault_parse_header(mode, strlen(mode), &g_mock.mode) != 0) {
        fprintf(stderr, "ballast-mock: bad --mode '%s'\n", mode);
        return 2;
    }
    if ((tool_args && !tool_name) || (tool_name && tools_set_cli(tool_name, tool_args) != 0)) {
        fprintf(stderr, "ballast-mock: bad --tool-name/--tool-args (want a name and a JSON "
                        "object)\n");
        return 2;
    }
    bl_buf_t nj = {0};
    json_escape(&nj, g_mock.name, strlen(g_mock.name));
    snprintf(g_mock.name_json, sizeof g_mock.name_json, "%s", nj.data ? nj.data : "");
    bl_buf_free(&nj);

    signal(SIGPIPE, SIG_IGN);
    g_mock.loop = uv_default_loop();
    if (mock_listen() != 0)
        return 1;
    if (port_file) {
        char tmp[4096];
        snprintf(tmp, sizeof tmp, "%s.tmp", port_file);
        FILE *f = fopen(tmp, "w");
        if (!f || fprintf(f, "%d\n", g_mock.port) < 0 || fclose(f) != 0 ||
            rename(tmp, port_file) != 0) {
            fprintf(stderr, "ballast-mock: cannot write %s\n", port_file);
            return 1;
        }
    }
    printf("listening on %s:%d\n", g_mock.host, g_mock.port);
    fflush(stdout);
    if (g_mock.mode.kind == MF_REFUSE)
        mock_refuse(NULL);

    uv_signal_init(g_mock.loop, &g_sig_term);
    uv_signal_init(g_mock.loop, &g_sig_int);
    uv_signal_init(g_mock.loop, &g_sig_usr1);
    uv_signal_start(&g_sig_term, on_signal, SIGTERM);
    uv_signal_start(&g_sig_int, on_signal, SIGINT);
    uv_signal_start(&g_sig_usr1, on_signal, SIGUSR1);
    uv_run(g_mock.loop, UV_RUN_DEFAULT);
    uv_loop_close(g_mock.loop);
    bl_buf_free(&g_mock.last_path);
    bl_buf_free(&g_mock.last_method);
    bl_buf_free(&g_mock.last_hdrs);
    bl_buf_free(&g_mock.last_body);
    tools_free();
    responses_free();
    return 0;
}
