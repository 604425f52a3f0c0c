/*
 * The curl multi <-> libuv glue and the transfer lifecycle.
 *
 * curl tells us which sockets to watch (CURLMOPT_SOCKETFUNCTION) and when to
 * wake it (CURLMOPT_TIMERFUNCTION); we map those onto one uv_poll_t per socket
 * and one uv_timer_t, and feed readiness back with curl_multi_socket_action.
 * After every action we drain CURLMSG_DONE messages.
 *
 * curl forbids most multi calls from inside its own callbacks, and the router
 * will want to cancel or start transfers from on_headers/on_body (hedging,
 * early failover). So while we are inside curl (u->depth > 0) cancels and
 * starts are queued and applied as soon as the outermost action returns.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <curl/curl.h>

#include "upstream/upstream_int.h"

static void drain(bl_upstream_t *u);
static void close_now(bl_upstream_t *u);

const char *bl_up_result_name(bl_up_result_t r)
{
    switch (r) {
    case BL_UP_OK:
        return "ok";
    case BL_UP_CONNECT:
        return "connect";
    case BL_UP_DNS:
        return "dns";
    case BL_UP_TLS:
        return "tls";
    case BL_UP_TIMEOUT_CONNECT:
        return "timeout_connect";
    case BL_UP_TIMEOUT_TOTAL:
        return "timeout_total";
    case BL_UP_RESET:
        return "reset";
    case BL_UP_PROTOCOL:
        return "protocol";
    case BL_UP_ERROR:
        return "error";
    }
    return "error";
}

bool bl_upstream_async_dns(void)
{
    const curl_version_info_data *d = curl_version_info(CURLVERSION_NOW);
    return d && (d->features & CURL_VERSION_ASYNCHDNS);
}

static bl_up_result_t classify(CURLcode rc, bool connected)
{
    switch (rc) {
    case CURLE_OK:
        return BL_UP_OK;
    case CURLE_COULDNT_CONNECT:
        return BL_UP_CONNECT;
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
        return BL_UP_DNS;
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ENGINE_NOTFOUND:
    case CURLE_SSL_ENGINE_SETFAILED:
    case CURLE_SSL_ENGINE_INITFAILED:
    case CURLE_SSL_SHUTDOWN_FAILED:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
    case CURLE_SSL_CLIENTCERT:
    case CURLE_USE_SSL_FAILED:
        return BL_UP_TLS;
    case CURLE_OPERATION_TIMEDOUT:
        return connected ? BL_UP_TIMEOUT_TOTAL : BL_UP_TIMEOUT_CONNECT;
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_PARTIAL_FILE:
    case CURLE_GOT_NOTHING:
    case CURLE_HTTP2_STREAM:
        return BL_UP_RESET;
    case CURLE_WEIRD_SERVER_REPLY:
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_BAD_CONTENT_ENCODING:
    case CURLE_HTTP2:
    case CURLE_HTTP3:
    case CURLE_TOO_MANY_REDIRECTS:
        return BL_UP_PROTOCOL;
    default:
        return BL_UP_ERROR;
    }
}

/* ---- lists ---------------------------------------------------------------- */

static void list_push(bl_upstream_xfer_t **head, bl_upstream_xfer_t *x)
{
    x->prev = NULL;
    x->next = *head;
    if (*head)
        (*head)->prev = x;
    *head = x;
}

static void list_del(bl_upstream_xfer_t **head, bl_upstream_xfer_t *x)
{
    if (x->prev)
        x->prev->next = x->next;
    else
        *head = x->next;
    if (x->next)
        x->next->prev = x->prev;
    x->prev = x->next = NULL;
}

/* Free a transfer that is no longer in the multi. */
static void xfer_destroy(bl_upstream_xfer_t *x)
{
    if (x->easy)
        curl_easy_cleanup(x->easy);
    curl_slist_free_all(x->headers);
    bl_buf_free(&x->raw);
    if (x->hbuf.data)
        explicit_bzero(x->hbuf.data, x->hbuf.cap); /* it held the Authorization line */
    bl_buf_free(&x->hbuf);
    free(x);
}

/* Done with a transfer that is out of the multi: keep it for the next plain
 * POST when it ended normally, else free it. */
static void xfer_free(bl_upstream_xfer_t *x)
{
    bl_upstream_t *u = x->u;
    /* cancelled or failed transfers are not reused: only a clean finish */
    if (x->state != XS_FINISHED || !x->reusable || !x->easy || u->closing || u->close_requested ||
        u->n_pool >= POOL_MAX) {
        xfer_destroy(x);
        return;
    }
    /* The header list must outlive the transfer that used it only. */
    curl_easy_setopt(x->easy, CURLOPT_HTTPHEADER, NULL);
    curl_slist_free_all(x->headers);
    x->headers = NULL;
    bl_buf_reset(&x->raw);
    memset(&x->cb, 0, sizeof x->cb);
    x->status = 0;
    x->headers_done = x->connected = x->reusable = false;
    x->errbuf[0] = '\0';
    list_push(&u->pool, x);
    u->n_pool++;
}

/* ---- uv handles ----------------------------------------------------------- */

/* One of the upstream's uv handles (curl's sockets and timer, the native
 * client's connections and timers) has closed: the last one frees u. */
void bl_upstream_handle_gone(bl_upstream_t *u)
{
    u->open_handles--;
    if (u->closing && u->open_handles == 0) {
        void (*done)(void *) = u->close_done;
        void *ud = u->close_ud;
        free(u);
        curl_global_cleanup();
        if (done)
            done(ud);
    }
}

static void handle_closed(uv_handle_t *h)
{
    bl_upstream_t *u = h->data;
    if (h->type == UV_POLL)
        free(h); /* the poll is the first member of sock_ctx_t */
    bl_upstream_handle_gone(u);
}

static void sock_close(bl_upstream_t *u, sock_ctx_t *s)
{
    if (s->prev)
        s->prev->next = s->next;
    else
        u->socks = s->next;
    if (s->next)
        s->next->prev = s->prev;
    uv_close((uv_handle_t *)&s->poll, handle_closed);
}

static void action(bl_upstream_t *u, curl_socket_t fd, int flags)
{
    int running = 0;
    u->depth++;
    curl_multi_socket_action(u->multi, fd, flags, &running);
    u->depth--;
    if (u->depth == 0)
        drain(u);
}

static void on_poll(uv_poll_t *p, int status, int events)
{
    sock_ctx_t *s = (sock_ctx_t *)p;
    int flags = 0;
    if (status < 0) {
        /* libuv reports POLLERR/POLLHUP as an error and stops the handle, but
         * a reset socket may still hold response bytes: let curl read them
         * and find the error itself, so a reset is classified as one. */
        events = s->events;
    }
    if (events & UV_READABLE)
        flags |= CURL_CSELECT_IN;
    if (events & UV_WRITABLE)
        flags |= CURL_CSELECT_OUT;
    bl_upstream_t *u = s->u;
    action(u, s->fd, flags); /* s and u are freed only by close callbacks */
    if (status < 0 && !uv_is_closing((uv_handle_t *)p) && !u->closing)
        uv_poll_start(p, s->events, on_poll);
}

static void on_timer(uv_timer_t *t)
{
    action(t->data, CURL_SOCKET_TIMEOUT, 0);
}

static int socket_cb(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
    bl_upstream_t *u = userp;
    sock_ctx_t *s = socketp;

    if (what == CURL_POLL_REMOVE) {
        /* curl forgets the assignment itself; it calls this before closing fd */
        if (s)
            sock_close(u, s);
        return 0;
    }
    if (!s) {
        s = calloc(1, sizeof *s);
        if (!s)
            return -1;
        if (uv_poll_init_socket(u->loop, &s->poll, fd) != 0) {
            free(s);
            return -1;
        }
        s->fd = fd;
        s->u = u;
        s->poll.data = u;
        s->next = u->socks;
        if (u->socks)
            u->socks->prev = s;
        u->socks = s;
        u->open_handles++;
        curl_multi_assign(u->multi, fd, s);
    }
    int events = 0;
    if (what == CURL_POLL_IN || what == CURL_POLL_INOUT)
        events |= UV_READABLE;
    if (what == CURL_POLL_OUT || what == CURL_POLL_INOUT)
        events |= UV_WRITABLE;
    s->events = events;
    uv_poll_start(&s->poll, events, on_poll);
    return 0;
}

static int timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
    bl_upstream_t *u = userp;
    if (u->closing)
        return 0;
    if (timeout_ms < 0)
        uv_timer_stop(&u->timer);
    else /* 0 means "as soon as possible": the next loop iteration */
        uv_timer_start(&u->timer, on_timer, (uint64_t)timeout_ms, 0);
    return 0;
}

/* ---- per-transfer curl callbacks -------------------------------------------- */

static bool live(const bl_upstream_xfer_t *x)
{
    return x->state == XS_RUNNING;
}

static void deliver_headers(bl_upstream_xfer_t *x)
{
    if (x->headers_done)
        return;
    x->headers_done = true;
    if (x->cb.on_headers)
        x->cb.on_headers(x->cb.ud, x->status, &x->raw);
}

/* "HTTP/1.1 200 OK", "HTTP/2 200" -> 200 */
static int parse_status(const char *p, size_t n)
{
    size_t i = 5;
    while (i < n && p[i] != ' ')
        i++;
    while (i < n && p[i] == ' ')
        i++;
    if (i + 3 > n)
        return 0;
    int s = 0;
    for (size_t k = 0; k < 3; k++) {
        if (p[i + k] < '0' || p[i + k] > '9')
            return 0;
        s = s * 10 + (p[i + k] - '0');
    }
    return s;
}

static size_t header_cb(char *p, size_t size, size_t nitems, void *ud)
{
    bl_upstream_xfer_t *x = ud;
    size_t n = size * nitems;
    if (!live(x))
        return 0; /* abort: cancelled from a callback */
    if (x->headers_done)
        return n; /* trailers of a chunked body */
    if (n >= 5 && memcmp(p, "HTTP/", 5) == 0) {
        /* a new response starts (after a 1xx): forget the previous one */
        bl_buf_reset(&x->raw);
        x->status = parse_status(p, n);
    }
    if (n <= 2 && (n == 0 || p[0] == '\r' || p[0] == '\n')) {
        if (x->status >= 200)
            deliver_headers(x);
        return live(x) ? n : 0;
    }
    if (bl_buf_append(&x->raw, p, n) != 0)
        return 0;
    return n;
}

static size_t write_cb(char *p, size_t size, size_t nitems, void *ud)
{
    bl_upstream_xfer_t *x = ud;
    size_t n = size * nitems;
    if (!live(x))
        return 0;
    deliver_headers(x);
    if (!live(x))
        return 0;
    if (n && x->cb.on_body && x->cb.on_body(x->cb.ud, p, n) != 0)
        return 0;
    return live(x) ? n : 0;
}

static int prereq_cb(void *ud, char *conn_primary_ip, char *conn_local_ip, int conn_primary_port,
                     int conn_local_port)
{
    bl_upstream_xfer_t *x = ud;
    x->connected = true;
    return CURL_PREREQFUNC_OK;
}

/* ---- life cycle ------------------------------------------------------------- */

static void finish(bl_upstream_t *u, CURL *easy, CURLcode rc)
{
    char *priv = NULL;
    curl_easy_getinfo(easy, CURLINFO_PRIVATE, &priv);
    bl_upstream_xfer_t *x = (bl_upstream_xfer_t *)priv;
    curl_multi_remove_handle(u->multi, easy);
    if (!x)
        return;
    list_del(&u->xfers, x);
    u->active--;
    x->state = XS_FINISHED;
    x->reusable = x->reusable && rc == CURLE_OK;
    bl_up_result_t r = classify(rc, x->connected);
    const char *msg = "";
    if (rc != CURLE_OK) {
        msg = x->errbuf[0] ? x->errbuf : curl_easy_strerror(rc);
    } else if (!x->headers_done) {
        /* bodiless response whose header end we did not see as such */
        long code = 0;
        curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &code);
        x->status = (int)code;
        x->headers_done = true;
        if (x->cb.on_headers)
            x->cb.on_headers(x->cb.ud, x->status, &x->raw);
    }
    if (x->cb.on_done)
        x->cb.on_done(x->cb.ud, r, msg);
    xfer_free(x);
}

/* Apply what was deferred while inside curl, then report finished transfers.
 * Runs only at depth 0. */
static void drain(bl_upstream_t *u)
{
    while (!u->closing) {
        while (u->doomed) {
            bl_upstream_xfer_t *x = u->doomed;
            list_del(&u->doomed, x);
            curl_multi_remove_handle(u->multi, x->easy);
            xfer_free(x);
        }
        while (u->queued) {
            bl_upstream_xfer_t *x = u->queued;
            list_del(&u->queued, x);
            x->state = XS_RUNNING;
            list_push(&u->xfers, x);
            if (curl_multi_add_handle(u->multi, x->easy) != CURLM_OK) {
                /* report like any failed transfer, from a clean stack */
                list_del(&u->xfers, x);
                u->active--;
                x->state = XS_FINISHED;
                x->reusable = false;
                if (x->cb.on_done)
                    x->cb.on_done(x->cb.ud, BL_UP_ERROR, "could not add transfer");
                xfer_free(x);
            }
        }
        int left = 0;
        CURLMsg *m = curl_multi_info_read(u->multi, &left);
        if (!m) {
            if (!u->doomed && !u->queued)
                break;
            continue;
        }
        if (m->msg == CURLMSG_DONE)
            finish(u, m->easy_handle, m->data.result);
    }
    if (u->close_requested)
        close_now(u);
}

int bl_upstream_new(uv_loop_t *loop, bl_upstream_t **out)
{
    int rc = BL_ENOMEM;
    *out = NULL;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return BL_EIO;
    bl_upstream_t *u = calloc(1, sizeof *u);
    if (!u)
        goto done;
    u->loop = loop;
    u->multi = curl_multi_init();
    if (!u->multi)
        goto done;
    if (uv_timer_init(loop, &u->timer) != 0) {
        rc = BL_EIO;
        goto done;
    }
    u->timer.data = u;
    u->open_handles = 1;
    curl_multi_setopt(u->multi, CURLMOPT_SOCKETFUNCTION, socket_cb);
    curl_multi_setopt(u->multi, CURLMOPT_SOCKETDATA, u);
    curl_multi_setopt(u->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
    curl_multi_setopt(u->multi, CURLMOPT_TIMERDATA, u);
    const char *force_curl = getenv("BALLAST_UPSTREAM_CURL");
    u->native_off = force_curl && *force_curl && strcmp(force_curl, "0");
    /* the default cache (4 per added handle) shrinks under bursty load */
    curl_multi_setopt(u->multi, CURLMOPT_MAXCONNECTS, 256L);
    *out = u;
    return 0;
done:
    if (u) {
        if (u->multi)
            curl_multi_cleanup(u->multi);
        free(u);
    }
    curl_global_cleanup();
    return rc;
}

static bool has_header(const char *const *h, size_t n, const char *name)
{
    size_t nl = strlen(name);
    for (size_t i = 0; i < n; i++) {
        if (h[i] && strncasecmp(h[i], name, nl) == 0 && h[i][nl] == ':')
            return true;
    }
    return false;
}

int bl_upstream_start(bl_upstream_t *u, const bl_upstream_req_t *req, const bl_upstream_cb_t *cb,
                      bl_upstream_xfer_t **out)
{
    int rc = BL_ENOMEM;
    *out = NULL;
    if (!req || !req->url || !cb || (req->n_headers && !req->headers))
        return BL_EINVAL;
    if (u->closing || u->close_requested)
        return BL_ESTATE;
    /* plain http:// goes through our own HTTP/1.1 client: curl's per-request
       work was the largest cost of a proxied request (native.c) */
    rc = bl_native_start(u, req, cb, out);
    if (rc != BL_EUNSUPPORTED)
        return rc;
    rc = BL_ENOMEM;
    const char *method = req->method ? req->method : (req->body_len ? "POST" : "GET");
    bool plain_post = strcmp(method, "POST") == 0;
    bl_upstream_xfer_t *x = plain_post ? u->pool : NULL;
    if (x) {
        list_del(&u->pool, x);
        u->n_pool--;
    } else {
        x = calloc(1, sizeof *x);
        if (!x)
            return BL_ENOMEM;
        x->u = u;
        x->easy = curl_easy_init();
        if (!x->easy)
            goto done;
        /* Options every transfer has alike; they stay set on a pooled handle. */
        CURL *e = x->easy;
        curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
        curl_easy_setopt(e, CURLOPT_PRIVATE, x);
        curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
        curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
        curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
        /* through an https proxy, the CONNECT reply must not look like the response */
        curl_easy_setopt(e, CURLOPT_SUPPRESS_CONNECT_HEADERS, 1L);
        curl_easy_setopt(e, CURLOPT_ERRORBUFFER, x->errbuf);
        curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, header_cb);
        curl_easy_setopt(e, CURLOPT_HEADERDATA, x);
        curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, write_cb);
        curl_easy_setopt(e, CURLOPT_WRITEDATA, x);
        curl_easy_setopt(e, CURLOPT_PREREQFUNCTION, prereq_cb);
        curl_easy_setopt(e, CURLOPT_PREREQDATA, x);
    }
    x->cb = *cb;

    /* No "Expect: 100-continue" round trip on POST; curl's form default for
     * Content-Type would mislabel our JSON bodies. */
    const char *extra[] = {"Expect:", "Content-Type: application/json"};
    size_t n_extra =
        req->body_len && !has_header(req->headers, req->n_headers, "content-type") ? 2 : 1;
    size_t n_lines = n_extra;
    for (size_t i = 0; i < req->n_headers; i++)
        n_lines += req->headers[i] != NULL;
    struct curl_slist *list = NULL;
    if (n_lines <= HDR_NODES) {
        bl_buf_reset(&x->hbuf);
        size_t k = 0, offs[HDR_NODES];
        for (size_t i = 0; i < req->n_headers + n_extra; i++) {
            const char *h = i < req->n_headers ? req->headers[i] : extra[i - req->n_headers];
            if (!h)
                continue;
            offs[k++] = x->hbuf.len; /* offsets: hbuf may move while it grows */
            if (bl_buf_append(&x->hbuf, h, strlen(h) + 1) != 0)
                goto done;
        }
        for (size_t i = 0; i < k; i++) {
            x->nodes[i].data = x->hbuf.data + offs[i];
            x->nodes[i].next = i + 1 < k ? &x->nodes[i + 1] : NULL;
        }
        list = &x->nodes[0];
    } else {
        for (size_t i = 0; i < req->n_headers + n_extra; i++) {
            const char *h = i < req->n_headers ? req->headers[i] : extra[i - req->n_headers];
            if (!h)
                continue;
            struct curl_slist *l = curl_slist_append(x->headers, h);
            if (!l)
                goto done;
            x->headers = l;
        }
        list = x->headers;
    }

    /* Per-request options: set every time (0 timeouts mean "none"/default,
     * as when never set), so nothing leaks from a pooled handle's last use. */
    CURL *e = x->easy;
    curl_easy_setopt(e, CURLOPT_URL, req->url);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, list);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)req->connect_timeout_ms);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)req->total_timeout_ms);
    if (req->body_len || plain_post) {
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, req->body_len ? req->body : "");
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
        if (!plain_post)
            curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
    } else if (strcmp(method, "GET") == 0) {
        curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
    } else if (strcmp(method, "HEAD") == 0) {
        curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
    } else {
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
    }
    /* Only a handle that has done nothing but plain POSTs is pooled, so a
     * reused one never carries CUSTOMREQUEST, NOBODY or HTTPGET. */
    x->reusable = plain_post;

    u->active++;
    if (u->depth > 0) {
        x->state = XS_QUEUED;
        list_push(&u->queued, x);
    } else {
        x->state = XS_RUNNING;
        list_push(&u->xfers, x);
        if (curl_multi_add_handle(u->multi, e) != CURLM_OK) {
            list_del(&u->xfers, x);
            u->active--;
            rc = BL_EIO;
            goto done;
        }
    }
    *out = x;
    return 0;
done:
    xfer_free(x);
    return rc;
}

void bl_upstream_cancel(bl_upstream_xfer_t *x)
{
    if (!x)
        return;
    if (x->nx) {
        bl_native_cancel(x);
        return;
    }
    bl_upstream_t *u = x->u;
    switch (x->state) {
    case XS_QUEUED:
        list_del(&u->queued, x);
        u->active--;
        xfer_free(x);
        return;
    case XS_RUNNING:
        list_del(&u->xfers, x);
        u->active--;
        if (u->depth > 0) {
            x->state = XS_DOOMED;
            list_push(&u->doomed, x);
            return;
        }
        /* a partial HTTP/1.1 response makes curl close the connection, so
         * the provider sees the client go away */
        curl_multi_remove_handle(u->multi, x->easy);
        xfer_free(x);
        return;
    case XS_DOOMED:
    case XS_FINISHED:
        return;
    }
}

size_t bl_upstream_active(const bl_upstream_t *u)
{
    return u->active;
}

static void close_now(bl_upstream_t *u)
{
    u->close_requested = false;
    u->closing = true;
    bl_native_close_all(u);
    while (u->queued)
        bl_upstream_cancel(u->queued);
    while (u->xfers)
        bl_upstream_cancel(u->xfers);
    while (u->doomed) {
        bl_upstream_xfer_t *x = u->doomed;
        list_del(&u->doomed, x);
        curl_multi_remove_handle(u->multi, x->easy);
        xfer_free(x);
    }
    while (u->pool) {
        bl_upstream_xfer_t *x = u->pool;
        list_del(&u->pool, x);
        u->n_pool--;
        xfer_destroy(x);
    }
    /* Stop watching before curl closes the cached connections' sockets; the
     * socket callback may still run (REMOVE) during cleanup and close some. */
    for (sock_ctx_t *s = u->socks; s; s = s->next)
        uv_poll_stop(&s->poll);
    curl_multi_cleanup(u->multi);
    u->multi = NULL;
    while (u->socks)
        sock_close(u, u->socks);
    uv_close((uv_handle_t *)&u->timer, handle_closed);
}

void bl_upstream_close(bl_upstream_t *u, void (*done)(void *), void *ud)
{
    if (!u || u->closing)
        return;
    u->close_done = done;
    u->close_ud = ud;
    if (u->depth > 0) {
        /* no callbacks from here on; the rest is finished by drain() */
        while (u->queued)
            bl_upstream_cancel(u->queued);
        while (u->xfers)
            bl_upstream_cancel(u->xfers);
        bl_native_close_all(u);
        u->close_requested = true;
        return;
    }
    close_now(u);
}

bl_str_t bl_upstream_header(const bl_buf_t *raw, const char *name)
{
    bl_str_t none = {NULL, 0};
    if (!raw || !raw->data || !name)
        return none;
    size_t nl = strlen(name);
    const char *p = raw->data, *end = raw->data + raw->len;
    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        const char *line_end = eol ? eol : end;
        if ((size_t)(line_end - p) > nl && p[nl] == ':' && bl_strn_ieq(p, nl, name)) {
            const char *v = p + nl + 1, *ve = line_end;
            while (v < ve && (*v == ' ' || *v == '\t'))
                v++;
            while (ve > v && (ve[-1] == '\r' || ve[-1] == ' ' || ve[-1] == '\t'))
                ve--;
            return (bl_str_t){v, (size_t)(ve - v)};
        }
        p = eol ? eol + 1 : end;
    }
    return none;
}
