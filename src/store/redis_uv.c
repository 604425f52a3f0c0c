/*
 * hiredis on the libuv loop: a uv_poll_t per connection that tells hiredis
 * when its socket can be read or written.
 *
 * Our own instead of <hiredis/adapters/libuv.h> because the adapter Debian 12
 * ships (hiredis 0.14) drops poll errors: libuv reports a refused connect or
 * a reset socket as status < 0 with no events and stops the handle, the
 * adapter returns without telling hiredis, and every pending command waits
 * forever. Here an error wakes both of hiredis's handlers, which then find
 * the socket error themselves and fail the pending commands (hiredis 1.0's
 * adapter does the same).
 */
#ifdef BL_HAVE_HIREDIS

#include <stdlib.h>

#include <hiredis/async.h>

#include "store/store_int.h"

typedef struct {
    redisAsyncContext *ac; /* NULL once hiredis has let go */
    uv_poll_t poll;
    int events; /* UV_READABLE | UV_WRITABLE that hiredis wants */
} uv_events_t;

static void on_poll(uv_poll_t *h, int status, int events)
{
    uv_events_t *e = h->data;
    int ev = status < 0 ? e->events : events;
    /* A handler may free the context (its cleanup clears e->ac). */
    if (e->ac && (ev & UV_READABLE))
        redisAsyncHandleRead(e->ac);
    if (e->ac && (ev & UV_WRITABLE))
        redisAsyncHandleWrite(e->ac);
}

static void update(uv_events_t *e)
{
    if (e->events)
        uv_poll_start(&e->poll, e->events, on_poll);
    else
        uv_poll_stop(&e->poll);
}

static void add_read(void *p)
{
    uv_events_t *e = p;
    e->events |= UV_READABLE;
    update(e);
}

static void del_read(void *p)
{
    uv_events_t *e = p;
    e->events &= ~UV_READABLE;
    update(e);
}

static void add_write(void *p)
{
    uv_events_t *e = p;
    e->events |= UV_WRITABLE;
    update(e);
}

static void del_write(void *p)
{
    uv_events_t *e = p;
    e->events &= ~UV_WRITABLE;
    update(e);
}

static void on_closed(uv_handle_t *h)
{
    free(h->data);
}

static void cleanup(void *p)
{
    uv_events_t *e = p;
    e->ac = NULL;
    uv_close((uv_handle_t *)&e->poll, on_closed);
}

int bl_store_redis_attach(redisAsyncContext *ac, uv_loop_t *loop)
{
    if (ac->ev.data)
        return BL_ESTATE;
    uv_events_t *e = calloc(1, sizeof(*e));
    if (!e)
        return BL_ENOMEM;
    if (uv_poll_init_socket(loop, &e->poll, ac->c.fd) != 0) {
        free(e);
        return BL_EIO;
    }
    e->ac = ac;
    e->poll.data = e;
    /* An idle connection must not keep the loop alive; pending work holds
     * the store's own handle. */
    uv_unref((uv_handle_t *)&e->poll);
    ac->ev.data = e;
    ac->ev.addRead = add_read;
    ac->ev.delRead = del_read;
    ac->ev.addWrite = add_write;
    ac->ev.delWrite = del_write;
    ac->ev.cleanup = cleanup;
    return 0;
}

#endif
