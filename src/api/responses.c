/*
 * POST /v1/responses and its server-side state. OpenAI keeps each response
 * so a client may send only its new input with previous_response_id; ballast
 * keeps them too (store module: SQLite, or Redis for replicas), because the
 * target that made a response may be down when the next turn comes, and no
 * other target knows its id. So the history is always expanded here: the
 * stored items, then the new input, sent as one stateless request with
 * previous_response_id removed. Any target can answer it. Instructions are
 * not carried over, as OpenAI documents.
 *
 * Stored under the response's id (the client sees it) unless store: false:
 * the input items as sent, then the response's output items.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_int.h"

typedef struct {
    bl_api_t *api;
    bl_http_req_t *req;
    const bl_api_route_t *ep;
    char rid[17];
    char id[BL_STORE_ID_MAX + 1];
    bool store;
} resp_ctx_t;

/* The request's input as a list of items (a string is one user message). */
static json_t *input_items(json_t *input)
{
    if (json_is_string(input))
        return json_pack("[{s:s, s:O}]", "role", "user", "content", input);
    if (json_is_array(input))
        return json_incref(input);
    return json_array();
}

static void not_found(bl_http_req_t *req, const char *id, const char *rid)
{
    char msg[256];
    snprintf(msg, sizeof msg, "Previous response with id '%.140s' not found.", id);
    json_t *e = json_pack("{s:{s:s, s:s, s:s, s:s}}", "error", "message", msg, "type",
                          "invalid_request_error", "param", "previous_response_id", "code",
                          "previous_response_not_found");
    char *body = json_dumps(e, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(e);
    bl_http_header_t h[] = {{BL_STR("Content-Type"), BL_STR("application/json")},
                            {BL_STR("x-request-id"), {rid, strlen(rid)}}};
    bl_http_respond(req, 400, h, 2, body ? body : "{}", body ? strlen(body) : 2);
    free(body);
}

static void on_abort(void *ud)
{
    resp_ctx_t *x = ud;
    bl_store_forget(x->api->store, x);
    x->api->inflight--;
    free(x);
}

/* The stored history arrived: send history + new input as one request. */
static void on_history(void *ud, int rc, const char *json, size_t n)
{
    resp_ctx_t *x = ud;
    bl_http_req_t *req = x->req;
    bl_api_t *a = x->api;
    bl_http_req_set_abort(req, NULL, NULL);
    a->inflight--;
    json_t *root = NULL, *hist = NULL, *items = NULL;
    char *body = NULL, *save = NULL;
    if (rc == BL_ENOENT) {
        not_found(req, x->id, x->rid);
        goto done;
    }
    size_t len;
    const char *cbody = bl_http_req_body(req, &len);
    root = json_loadb(cbody, len, 0, NULL);
    hist = rc ? NULL : json_loadb(json, n, 0, NULL);
    if (!json_is_array(hist) || !json_is_object(root)) {
        bl_api_error(req, 503, "server_error", "store_unavailable",
                     "The stored conversation could not be read; retry, or send the whole "
                     "history without previous_response_id.",
                     x->rid);
        goto done;
    }
    items = input_items(json_object_get(root, "input"));
    json_array_extend(hist, items);
    json_object_set(root, "input", hist);
    json_object_del(root, "previous_response_id");
    body = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
    save = x->store ? json_dumps(hist, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    if (!body) {
        bl_api_error(req, 503, "server_error", "overloaded", "out of memory", x->rid);
        free(save);
        goto done;
    }
    bl_api_proxy_body(a, req, x->ep, x->rid, body, strlen(body), body, save);
done:
    json_decref(root);
    json_decref(hist);
    json_decref(items);
    free(x);
}

void bl_api_responses(bl_api_t *a, bl_http_req_t *req, const bl_api_route_t *ep, const char *rid)
{
    size_t len;
    const char *body = bl_http_req_body(req, &len);
    bl_json_member_t m[] = {{.key = "previous_response_id"}, {.key = "store"}, {.key = "input"}};
    if (bl_json_scan_object(body, len, m, BL_ARRAY_LEN(m), NULL, NULL)) {
        bl_api_proxy(a, req, ep, rid); /* says what is wrong with the JSON */
        return;
    }
    bool store = a->store && m[1].kind != BL_JSON_FALSE;
    if (m[0].kind == BL_JSON_NONE || m[0].kind == BL_JSON_NULL) {
        char *save = NULL;
        if (store && m[2].kind != BL_JSON_NONE) {
            json_t *in = json_loadb(body + m[2].off, m[2].len, JSON_DECODE_ANY, NULL);
            json_t *items = input_items(in);
            save = json_dumps(items, JSON_COMPACT | JSON_PRESERVE_ORDER);
            json_decref(items);
            json_decref(in);
        }
        bl_api_proxy_body(a, req, ep, rid, body, len, NULL, save);
        return;
    }
    char id[BL_STORE_ID_MAX + 8];
    long idn = m[0].kind == BL_JSON_STRING
                   ? bl_json_unescape(body + m[0].off, m[0].len, id, sizeof id)
                   : -1;
    if (idn < 0) {
        bl_api_error(req, 400, "invalid_request_error", "invalid_type",
                     "previous_response_id must be a response id string.", rid);
        return;
    }
    if (idn > BL_STORE_ID_MAX) {
        not_found(req, id, rid); /* longer than any id we store */
        return;
    }
    if (!a->store) {
        bl_api_error(req, 400, "invalid_request_error", "store_disabled",
                     "previous_response_id needs the response store, which is turned off in "
                     "this gateway's config (response_store.enabled); send the whole history "
                     "instead.",
                     rid);
        return;
    }
    resp_ctx_t *x = calloc(1, sizeof *x);
    if (!x) {
        bl_api_error(req, 503, "server_error", "overloaded", "out of memory", rid);
        return;
    }
    x->api = a;
    x->req = req;
    x->ep = ep;
    x->store = store;
    snprintf(x->rid, sizeof x->rid, "%s", rid);
    memcpy(x->id, id, (size_t)idn + 1);
    int rc = bl_store_get(a->store, x->id, on_history, x);
    if (rc == BL_EINVAL) {
        not_found(req, x->id, rid); /* not an id we could ever have made */
        free(x);
        return;
    }
    if (rc) {
        bl_api_error(req, 503, "server_error", "store_unavailable",
                     "The response store is not available.", rid);
        free(x);
        return;
    }
    a->inflight++; /* a drain waits for it */
    bl_http_req_set_abort(req, on_abort, x);
}

void bl_api_set_store(bl_api_t *a, bl_store_t *s)
{
    a->store = s;
}
