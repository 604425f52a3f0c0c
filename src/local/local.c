/*
 * Local providers: loading models off the loop, the queue, and handing
 * results back to the loop (the scheduler that runs the slots is sched.c).
 */
#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "local/local_int.h"

static const char *const STATE_NAMES[] = {"loading", "ready", "failed"};

bl_local_state_t bl_local_state(const bl_local_t *l)
{
    return (bl_local_state_t)atomic_load(&l->state);
}

const char *bl_local_error(const bl_local_t *l)
{
    return bl_local_state(l) == BL_LOCAL_FAILED ? l->err : "";
}

/* ---- loading (libuv thread pool) ----------------------------------------- */

/* A pinned hash is checked before the file is used: a tampered model never
 * serves. Streams the file, so memory stays flat for multi-GB models. */
static int check_sha256(const bl_local_t *l, char *err, size_t errlen)
{
    int fd = open(l->cfg.model_path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errlen, "%s: %m", l->cfg.model_path);
        return BL_EIO;
    }
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    unsigned char *buf = malloc(1 << 20), got[32];
    unsigned n = 0;
    int rc = BL_ENOMEM;
    if (!md || !buf || !EVP_DigestInit_ex(md, EVP_sha256(), NULL))
        goto done;
    for (;;) {
        ssize_t k = read(fd, buf, 1 << 20);
        if (k < 0) {
            snprintf(err, errlen, "%s: %m", l->cfg.model_path);
            rc = BL_EIO;
            goto done;
        }
        if (k == 0)
            break;
        EVP_DigestUpdate(md, buf, (size_t)k);
    }
    EVP_DigestFinal_ex(md, got, &n);
    if (n != 32 || CRYPTO_memcmp(got, l->cfg.sha256, 32)) {
        char hex[65];
        bl_hex(got, 32, hex);
        snprintf(err, errlen, "%s: sha256 is %s, not the one the config pins; refusing to serve it",
                 l->cfg.model_path, hex);
        rc = BL_EFORMAT;
        goto done;
    }
    rc = BL_OK;
done:
    EVP_MD_CTX_free(md);
    free(buf);
    close(fd);
    return rc;
}

static void maybe_finish_close(bl_local_t *l);

static void load_work(uv_work_t *w)
{
    bl_local_t *l = w->data;
    char err[sizeof l->err];
    err[0] = '\0';
    int rc = BL_OK;
    if (l->cfg.has_sha256 && (rc = check_sha256(l, err, sizeof err)))
        goto done;
    bl_model_params_t mp;
    bl_model_params_default(&mp);
    mp.n_threads = (int)l->cfg.threads;
    if ((rc = bl_model_load(l->cfg.model_path, &mp, &l->model, err, sizeof err)))
        goto done;
    l->slots = calloc(l->cfg.slots, sizeof *l->slots);
    if (!l->slots) {
        rc = BL_ENOMEM;
        goto done;
    }
    bl_ctx_params_t cp;
    bl_ctx_params_default(&cp);
    cp.n_ctx = l->cfg.context;
    for (unsigned i = 0; i < l->cfg.slots; i++) {
        l->slots[i].l = l;
        if ((rc = bl_ctx_new(l->model, &cp, &l->slots[i].ctx, err, sizeof err)))
            goto done;
    }
done:
    if (rc) {
        if (!err[0])
            snprintf(err, sizeof err, "%s: %s", l->cfg.model_path, bl_strerror(rc));
        snprintf(l->err, sizeof l->err, "%s", err);
    }
    atomic_store(&l->state, rc ? BL_LOCAL_FAILED : BL_LOCAL_READY);
}

static void load_done(uv_work_t *w, int status)
{
    bl_local_t *l = w->data;
    l->loading = false;
    if (status && bl_local_state(l) == BL_LOCAL_LOADING) {
        snprintf(l->err, sizeof l->err, "%s: loading was cancelled", l->cfg.model_path);
        atomic_store(&l->state, BL_LOCAL_FAILED);
    }
    if (bl_local_state(l) == BL_LOCAL_READY && !l->closing) {
        if (pthread_create(&l->sched, NULL, bl_local_scheduler, l) == 0)
            l->n_threads = 1;
        if (l->n_threads == 0) {
            snprintf(l->err, sizeof l->err, "%s: could not start worker threads", l->cfg.model_path);
            atomic_store(&l->state, BL_LOCAL_FAILED);
        }
    }
    if (bl_local_state(l) == BL_LOCAL_READY) {
        const bl_model_info_t *mi = bl_model_info(l->model);
        bl_log(BL_LOG_INFO,
               "local provider %s ready: %s (%s, %s, %u layers), %u slots of %u tokens, chat "
               "template %s%s",
               l->name, l->cfg.model_path, mi->arch, mi->file_type, mi->n_layer, l->cfg.slots,
               bl_ctx_size(l->slots[0].ctx), bl_chat_template_name(l->model),
               bl_chat_template_known(l->model) ? "" : " (not recognised: using ChatML)");
    } else if (bl_local_state(l) == BL_LOCAL_FAILED) {
        bl_log(BL_LOG_ERROR, "local provider %s cannot serve: %s", l->name, l->err);
    }
    /* A reload that changed this provider's model or settings: the old
     * instance served meanwhile; now the new one takes over, and the old one
     * closes once its requests end. If the new one failed, the old one keeps
     * serving. */
    for (bl_local_t *o = l->set->list, *next; o; o = next) {
        next = o->next;
        if (o == l || !o->standby || strcmp(o->name, l->name))
            continue;
        if (bl_local_state(l) == BL_LOCAL_READY) {
            o->standby = false;
            bl_log(BL_LOG_INFO, "local provider %s: %s replaces %s", l->name, l->cfg.model_path,
                   o->cfg.model_path);
            maybe_finish_close(o);
        } else {
            bl_log(BL_LOG_WARN, "local provider %s: keeps serving %s", o->name, o->cfg.model_path);
        }
    }
    uv_async_send(&l->async); /* requests that queued while loading get their answer */
}

/* ---- the loop side -------------------------------------------------------- */

static void unlink_live(bl_local_t *l, bl_local_req_t *r)
{
    if (r->prev)
        r->prev->next = r->next;
    else
        l->live = r->next;
    if (r->next)
        r->next->prev = r->prev;
    r->prev = r->next = NULL;
}

static void req_free(bl_local_req_t *r)
{
    bl_local_free_req_fields(r);
    free(r);
}


/* Hand each request's new text (and its end) to its caller. One request at
 * a time, outside the lock: a callback may cancel any request. */
static void on_async(uv_async_t *a)
{
    bl_local_t *l = a->data;
    for (;;) {
        bl_local_req_t *r = NULL;
        bl_buf_t text = {0};
        bool done = false;
        pthread_mutex_lock(&l->mu);
        for (bl_local_req_t *it = l->live; it; it = it->next) {
            if (it->delivering)
                continue;
            bool failed_load = bl_local_state(l) == BL_LOCAL_FAILED && !it->running && !it->done;
            if (failed_load) {
                /* queued while loading, and the load failed */
                it->err_status = 503;
                it->err_type = "server_error";
                it->err_code = "model_unavailable";
                snprintf(it->err_msg, sizeof it->err_msg, "The local model is not available: %s",
                         l->err);
                it->done = true;
            }
            if (it->out.len || (it->done && !it->running)) {
                r = it;
                break;
            }
        }
        if (!r) {
            pthread_mutex_unlock(&l->mu);
            break;
        }
        text = r->out;
        r->out = (bl_buf_t){0};
        done = r->done && !r->running;
        r->delivering = true;
        if (done)
            unlink_live(l, r); /* it gets no more work */
        pthread_mutex_unlock(&l->mu);

        if (!r->abandoned)
            bl_local_deliver(r, text.data, text.len, done);
        bl_buf_free(&text);
        r->delivering = false;
        if (done)
            req_free(r); /* an abandoned one that is still running is freed when it ends */
    }
    maybe_finish_close(l);
}

static bl_local_req_t *new_req(bl_local_t *l, const bl_upstream_cb_t *cb)
{
    bl_local_req_t *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    static unsigned long long seq;
    r->l = l;
    r->cb = *cb;
    r->call_marker = -1; /* 0 is a token */
    r->created = bl_wall_ms() / 1000;
    snprintf(r->id, sizeof r->id, "local-%06llx%06llx", (unsigned long long)bl_now_ns() & 0xffffff,
             ++seq & 0xffffff);
    atomic_init(&r->cancel, false);
    return r;
}

/* n of an OpenAI request: 2..16 choices are answered by fanout.c. */
static unsigned choices_asked(const char *body, size_t len, json_t **root)
{
    *root = NULL;
    if (!memmem(body, len, "\"n\"", 3))
        return 1;
    json_t *r = json_loadb(body, len, 0, NULL);
    json_t *n = json_object_get(r, "n");
    if (!json_is_integer(n) || json_integer_value(n) < 2 || json_integer_value(n) > 16) {
        json_decref(r);
        return 1; /* n = 1, or a bad n that the parser answers with a 400 */
    }
    *root = r;
    return (unsigned)json_integer_value(n);
}

int bl_local_start(bl_local_t *l, const char *path, const char *body, size_t len,
                   const bl_upstream_cb_t *cb, bl_local_req_t **out)
{
    json_t *root;
    unsigned n = strcmp(path, "/embeddings") ? choices_asked(body, len, &root) : 1;
    if (n > 1) {
        int rc = bl_local_fan_start(l, path, root, n, cb, out);
        json_decref(root);
        return rc;
    }
    bl_local_req_t *r = new_req(l, cb);
    if (!r)
        return BL_ENOMEM;
    bl_local_state_t st = bl_local_state(l);
    bool queued = false;
    if (st == BL_LOCAL_READY) {
        /* Parsing and rendering the template are string work: fine on the loop. */
        if (bl_local_parse(l, r, path, body, len) == BL_OK) {
            pthread_mutex_lock(&l->mu);
            if (l->q_len + l->n_busy >= l->cfg.max_queue + l->cfg.slots) {
                /* every slot busy and the queue full: let the router move on */
                r->err_status = 503;
                r->err_type = "server_error";
                r->err_code = "overloaded";
                snprintf(r->err_msg, sizeof r->err_msg, "%s",
                         "The local model is busy (queue full); try again shortly.");
            } else {
                if (l->q_tail)
                    l->q_tail->q_next = r;
                else
                    l->q_head = r;
                l->q_tail = r;
                l->q_len++;
                queued = true;
            }
            pthread_mutex_unlock(&l->mu);
        }
    } else {
        r->err_status = 503;
        r->err_type = "server_error";
        r->err_code = st == BL_LOCAL_LOADING ? "model_loading" : "model_unavailable";
        snprintf(r->err_msg, sizeof r->err_msg, "%s%s",
                 st == BL_LOCAL_LOADING ? "The local model is still loading."
                                        : "The local model is not available: ",
                 st == BL_LOCAL_LOADING ? "" : l->err);
    }
    pthread_mutex_lock(&l->mu);
    if (!queued)
        r->done = true; /* an answer without the engine: delivered from on_async */
    r->next = l->live;
    if (l->live)
        l->live->prev = r;
    l->live = r;
    pthread_mutex_unlock(&l->mu);
    if (queued)
        pthread_cond_signal(&l->cv);
    uv_async_send(&l->async);
    *out = r;
    return BL_OK;
}

void bl_local_cancel(bl_local_req_t *r)
{
    if (r->fan) {
        bl_local_fan_cancel(r->fan); /* every choice of the request */
        return;
    }
    bl_local_t *l = r->l;
    r->abandoned = true;
    atomic_store(&r->cancel, true); /* the scheduler drops it at its next step */
    pthread_mutex_lock(&l->mu);
    bool free_now = false;
    if (!r->running && !r->done) {
        /* still queued: take it out, the scheduler will not see it */
        bl_local_req_t **pp = &l->q_head, *prev = NULL;
        while (*pp && *pp != r) {
            prev = *pp;
            pp = &(*pp)->q_next;
        }
        if (*pp) {
            *pp = r->q_next;
            if (l->q_tail == r)
                l->q_tail = prev;
            l->q_len--;
        }
        r->done = true;
    }
    if (r->done && !r->running && !r->delivering && (r->prev || r->next || l->live == r)) {
        unlink_live(l, r);
        free_now = true;
    }
    pthread_mutex_unlock(&l->mu);
    if (free_now)
        req_free(r);
    /* otherwise on_async frees it when the scheduler lets go */
}

/* ---- instances and the set -------------------------------------------------- */

static bool same_settings(const bl_local_cfg_t *a, const bl_local_cfg_t *b)
{
    return !strcmp(a->model_path, b->model_path) && a->has_sha256 == b->has_sha256 &&
           !memcmp(a->sha256, b->sha256, 32) && a->threads == b->threads &&
           a->context == b->context && a->slots == b->slots && a->max_queue == b->max_queue &&
           a->max_tokens == b->max_tokens && a->prefill_chunk == b->prefill_chunk;
}

static void instance_closed(uv_handle_t *h)
{
    bl_local_t *l = h->data;
    bl_locals_t *ls = l->set;
    /* unlink from the set */
    for (bl_local_t **pp = &ls->list; *pp; pp = &(*pp)->next)
        if (*pp == l) {
            *pp = l->next;
            break;
        }
    for (unsigned i = 0; l->slots && i < l->cfg.slots; i++)
        bl_ctx_free(l->slots[i].ctx);
    free(l->slots);
    bl_model_free(l->model);
    pthread_mutex_destroy(&l->mu);
    pthread_cond_destroy(&l->cv);
    free(l->cfg.model_path);
    free(l->name);
    free(l);
    if (ls->closing && !ls->list && ls->done)
        ls->done(ls->done_ud);
}

/* Retired or closing instances go once nothing is in flight or loading. */
static void maybe_finish_close(bl_local_t *l)
{
    if (!(l->retired || l->closing) || l->loading || uv_is_closing((uv_handle_t *)&l->async))
        return;
    if (l->standby && !l->closing)
        return; /* still the one serving its name */
    pthread_mutex_lock(&l->mu);
    bool idle = !l->live;
    if (idle)
        l->quit = true;
    pthread_mutex_unlock(&l->mu);
    if (!idle)
        return;
    pthread_cond_broadcast(&l->cv);
    if (l->n_threads)
        pthread_join(l->sched, NULL); /* it is idle: this returns at once */
    l->n_threads = 0;
    uv_close((uv_handle_t *)&l->async, instance_closed);
}

static bl_local_t *instance_new(bl_locals_t *ls, const bl_provider_cfg_t *p)
{
    bl_local_t *l = calloc(1, sizeof *l);
    if (!l)
        return NULL;
    l->set = ls;
    l->loop = ls->loop;
    l->cfg = p->local;
    l->cfg.model_path = strdup(p->local.model_path);
    l->name = strdup(p->name);
    if (!l->cfg.model_path || !l->name || uv_async_init(ls->loop, &l->async, on_async)) {
        free(l->cfg.model_path);
        free(l->name);
        free(l);
        return NULL;
    }
    l->async.data = l;
    pthread_mutex_init(&l->mu, NULL);
    pthread_cond_init(&l->cv, NULL);
    atomic_init(&l->state, BL_LOCAL_LOADING);
    l->load_work.data = l;
    l->loading = true;
    /* Reading and mapping a model is disk work: libuv's thread pool. */
    if (uv_queue_work(ls->loop, &l->load_work, load_work, load_done)) {
        l->loading = false;
        snprintf(l->err, sizeof l->err, "%s: could not queue loading", l->cfg.model_path);
        atomic_store(&l->state, BL_LOCAL_FAILED);
    }
    bl_log(BL_LOG_INFO, "local provider %s: loading %s", l->name, l->cfg.model_path);
    l->next = ls->list;
    ls->list = l;
    return l;
}

int bl_locals_new(uv_loop_t *loop, bl_metrics_t *m, bl_locals_t **out)
{
    bl_locals_t *ls = calloc(1, sizeof *ls);
    if (!ls)
        return BL_ENOMEM;
    ls->loop = loop;
    ls->m_state = bl_metric_family(m, "ballast_local_model_state", BL_METRIC_GAUGE,
                                   "Local model per provider: 0 loading, 1 ready, 2 failed",
                                   "provider,state");
    *out = ls;
    return BL_OK;
}

void bl_locals_sync(bl_locals_t *ls, const bl_config_t *cfg)
{
    for (bl_local_t *l = ls->list; l; l = l->next)
        l->retired = true;
    for (size_t i = 0; i < cfg->n_providers; i++) {
        const bl_provider_cfg_t *p = &cfg->providers[i];
        if (p->type != BL_PROVIDER_LOCAL)
            continue;
        bl_local_t *found = NULL;
        for (bl_local_t *l = ls->list; l && !found; l = l->next)
            if (!l->closing && !strcmp(l->name, p->name) && same_settings(&l->cfg, &p->local))
                found = l;
        if (found && found->retired)
            found->retired = false;
        else if (!found)
            instance_new(ls, p);
    }
    for (bl_local_t *l = ls->list, *next; l; l = next) {
        next = l->next;
        if (!l->retired || l->standby)
            continue;
        /* replaced (same name, new file or settings): serve until the new one is ready */
        for (size_t i = 0; i < cfg->n_providers; i++)
            if (cfg->providers[i].type == BL_PROVIDER_LOCAL &&
                !strcmp(cfg->providers[i].name, l->name) && bl_local_state(l) == BL_LOCAL_READY)
                l->standby = true;
        bl_log(BL_LOG_INFO, "local provider %s (%s) retired; %s", l->name, l->cfg.model_path,
               l->standby ? "it serves until its replacement is ready"
                          : "it closes when its requests end");
        maybe_finish_close(l);
    }
}

bl_local_t *bl_locals_find(bl_locals_t *ls, const bl_provider_cfg_t *p)
{
    bl_local_t *current = NULL;
    for (bl_local_t *l = ls->list; l && !current; l = l->next)
        if (!l->retired && !l->closing && !strcmp(l->name, p->name) &&
            same_settings(&l->cfg, &p->local))
            current = l;
    if (current && bl_local_state(current) == BL_LOCAL_READY)
        return current;
    /* while a reloaded model loads, its predecessor answers */
    for (bl_local_t *l = ls->list; l; l = l->next)
        if (l->standby && !l->closing && !strcmp(l->name, p->name) &&
            bl_local_state(l) == BL_LOCAL_READY)
            return l;
    return current;
}

void bl_locals_export(bl_locals_t *ls)
{
    bl_metric_clear(ls->m_state);
    for (bl_local_t *l = ls->list; l; l = l->next) {
        if (l->retired)
            continue;
        const char *lv[] = {l->name, STATE_NAMES[bl_local_state(l)]};
        bl_metric_set(ls->m_state, (double)bl_local_state(l), lv);
    }
}

void bl_locals_close(bl_locals_t *ls, void (*done)(void *), void *ud)
{
    ls->closing = true;
    ls->done = done;
    ls->done_ud = ud;
    if (!ls->list) {
        if (done)
            done(ud);
        return;
    }
    for (bl_local_t *l = ls->list, *next; l; l = next) {
        next = l->next;
        l->closing = true;
        /* cancel what is in flight: its callers are gone with the server */
        pthread_mutex_lock(&l->mu);
        for (bl_local_req_t *r = l->live; r; r = r->next) {
            r->abandoned = true;
            atomic_store(&r->cancel, true);
            if (!r->running)
                r->done = true; /* queued: the scheduler will not take it now */
        }
        l->q_head = l->q_tail = NULL;
        l->q_len = 0;
        pthread_mutex_unlock(&l->mu);
        uv_async_send(&l->async);
        maybe_finish_close(l);
    }
}

void bl_locals_free(bl_locals_t *ls)
{
    free(ls);
}
