/*
 * `ballast serve`: wire the modules onto one libuv loop and run until told
 * to stop. SIGHUP reloads the config (read off the loop thread, swapped in on
 * it); SIGTERM/SIGINT stop accepting and let requests in flight finish until
 * the shutdown grace period ends.
 */
#include <curl/curl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "api/api.h"
#include "cli/cli.h"
#include "config/config.h"
#include "health/health.h"
#include "local/local.h"
#include "obs/obs.h"
#include "router/router.h"
#include "server/server.h"
#include "store/store.h"
#include "upstream/upstream.h"

typedef struct {
    uv_loop_t *loop;
    char *config_path;
    bool zero_config;        /* no file: built (and rebuilt on SIGHUP) by bl_config_auto */
    bl_config_t *cfg;
    bl_metrics_t *metrics;
    bl_health_table_t *health;
    bl_upstream_t *up;
    bl_locals_t *locals;
    bl_router_t *router;
    bl_api_t *api;
    bl_store_t *store;       /* Responses API answers; NULL when off */
    bl_server_t *server;
    uv_signal_t sig_term, sig_int, sig_hup;
    uv_timer_t drain_timer;
    uint64_t drain_deadline_ms;
    bool stopping, reloading, reload_again;
    bl_metric_t *m_reloads, *m_info;
    /* reload work */
    uv_work_t reload_work;
    bl_config_t *reload_cfg;
    int reload_rc;
    char reload_err[BL_CONFIG_ERR_MAX];
} app_t;

/* The response store: Redis when configured, else a SQLite file (the
 * config's path, or the user's state directory). A store that cannot open
 * is logged and left off: every route still serves; only
 * previous_response_id is refused. */
static void open_store(app_t *app)
{
    const bl_config_t *c = app->cfg;
    if (!c->response_store.enabled)
        return;
    char path[4096], err[512];
    bl_store_cfg_t sc = {.redis_url = c->redis_url, .ttl_s = c->response_store.ttl_s};
    if (!c->redis_url && c->response_store.path) {
        sc.sqlite_path = c->response_store.path;
    } else if (!c->redis_url) {
        const char *xdg = getenv("XDG_STATE_HOME"), *home = getenv("HOME");
        if (xdg && *xdg)
            snprintf(path, sizeof path, "%s/ballast/responses.db", xdg);
        else if (home && *home)
            snprintf(path, sizeof path, "%s/.local/state/ballast/responses.db", home);
        else {
            bl_log(BL_LOG_WARN, "response store off: no HOME or XDG_STATE_HOME, and no "
                                "response_store.path in the config");
            return;
        }
        sc.sqlite_path = path;
    }
    if (bl_store_open(app->loop, &sc, &app->store, err, sizeof err)) {
        bl_log(BL_LOG_ERROR, "response store off: %s", err);
        app->store = NULL;
        return;
    }
    bl_log(BL_LOG_INFO, "response store: %s", bl_store_backend(app->store));
    bl_api_set_store(app->api, app->store);
}

static void server_limits(const bl_config_t *c, bl_server_limits_t *l)
{
    bl_server_limits_default(l);
    l->max_body_bytes = c->server.max_body_bytes;
    l->max_header_bytes = c->server.max_header_bytes;
    l->max_headers = c->server.max_headers;
    l->header_timeout_ms = c->server.header_timeout_ms;
    l->body_timeout_ms = c->server.body_timeout_ms;
    l->idle_timeout_ms = c->server.idle_timeout_ms;
    l->max_connections = c->server.max_connections;
}

static void apply_log_level(const bl_config_t *c)
{
    bl_log_level_t lvl;
    if (c->log_level && bl_log_parse_level(c->log_level, &lvl) == BL_OK)
        bl_log_set_level(lvl);
}

/* ---- reload ---------------------------------------------------------------- */

static void reload_work(uv_work_t *w)
{
    app_t *app = w->data;
    app->reload_cfg = NULL;
    app->reload_err[0] = '\0';
    if (app->zero_config)
        app->reload_rc = bl_config_auto(NULL, &app->reload_cfg, app->reload_err,
                                        sizeof app->reload_err);
    else
        app->reload_rc = bl_config_load(app->config_path, &app->reload_cfg, app->reload_err,
                                        sizeof app->reload_err);
}

static void start_reload(app_t *app);

static void reload_done(uv_work_t *w, int status)
{
    app_t *app = w->data;
    app->reloading = false;
    if (status || app->reload_rc || !app->reload_cfg) {
        /* The old config keeps serving. */
        bl_log(BL_LOG_ERROR, "config reload rejected, still serving the previous config: %s",
               app->reload_err[0] ? app->reload_err : "cancelled");
        const char *lv[] = {"error"};
        bl_metric_add(app->m_reloads, 1, lv);
    } else if (app->stopping) {
        bl_config_unref(app->reload_cfg);
    } else {
        bl_config_t *nc = app->reload_cfg;
        if (strcmp(nc->listen.host, app->cfg->listen.host) || nc->listen.port != app->cfg->listen.port)
            bl_log(BL_LOG_WARN, "config reload: 'listen' changed; it takes effect on restart");
        bl_api_set_config(app->api, nc);
        bl_server_limits_t l;
        server_limits(nc, &l);
        bl_server_set_limits(app->server, &l);
        apply_log_level(nc);
        bl_config_unref(app->cfg);
        app->cfg = nc; /* the reference bl_config_load gave us */
        bl_health_prune(app->health, nc);
        bl_locals_sync(app->locals, nc); /* unchanged models stay loaded */
        bl_log(BL_LOG_INFO, "config reloaded from %s: %zu providers, %zu routes",
               app->zero_config ? "the environment and model store" : app->config_path,
               nc->n_providers, nc->n_routes);
        const char *lv[] = {"ok"};
        bl_metric_add(app->m_reloads, 1, lv);
    }
    app->reload_cfg = NULL;
    if (app->reload_again && !app->stopping) {
        app->reload_again = false;
        start_reload(app);
    }
}

static void start_reload(app_t *app)
{
    if (app->reloading) {
        app->reload_again = true; /* a second SIGHUP during a reload: reload once more after */
        return;
    }
    app->reloading = true;
    app->reload_work.data = app;
    /* Reading the file is disk I/O: it happens on libuv's thread pool. */
    if (uv_queue_work(app->loop, &app->reload_work, reload_work, reload_done)) {
        app->reloading = false;
        bl_log(BL_LOG_ERROR, "config reload: could not queue the work");
    }
}

/* ---- shutdown -------------------------------------------------------------- */

static void on_upstream_closed(void *ud)
{
    (void)ud;
}

static void on_server_closed(void *ud)
{
    app_t *app = ud;
    bl_locals_close(app->locals, NULL, NULL);
    bl_upstream_close(app->up, on_upstream_closed, app);
    if (app->store)
        bl_store_close(app->store, NULL, NULL); /* queued writes land first */
    app->store = NULL;
    uv_close((uv_handle_t *)&app->sig_term, NULL);
    uv_close((uv_handle_t *)&app->sig_int, NULL);
    uv_close((uv_handle_t *)&app->sig_hup, NULL);
    uv_close((uv_handle_t *)&app->drain_timer, NULL);
}

static void drain_check(uv_timer_t *t)
{
    app_t *app = t->data;
    size_t busy = bl_server_active_requests(app->server);
    if (busy && bl_now_ms() < app->drain_deadline_ms)
        return;
    if (busy)
        bl_log(BL_LOG_WARN, "shutdown grace period over; closing %zu request(s) still in flight",
               busy);
    uv_timer_stop(t);
    bl_server_close(app->server, on_server_closed, app);
}

static void begin_shutdown(app_t *app, const char *why)
{
    if (app->stopping) {
        /* A second signal: stop waiting. */
        app->drain_deadline_ms = 0;
        return;
    }
    app->stopping = true;
    bl_log(BL_LOG_INFO, "%s: no longer accepting; finishing %zu request(s) in flight", why,
           bl_server_active_requests(app->server));
    bl_server_stop_accepting(app->server);
    app->drain_deadline_ms = bl_now_ms() + app->cfg->server.shutdown_grace_ms;
    uv_timer_start(&app->drain_timer, drain_check, 0, 20);
}

static void on_signal(uv_signal_t *s, int signum)
{
    app_t *app = s->data;
    if (signum == SIGHUP)
        start_reload(app);
    else
        begin_shutdown(app, signum == SIGTERM ? "SIGTERM" : "SIGINT");
}

/* ---- main ------------------------------------------------------------------ */

static const char SERVE_USAGE[] = "usage: ballast serve [-c FILE]\n"
                                  "\n"
                                  "  -c, --config FILE   the YAML config (see examples/);\n"
                                  "                      without it, routes are built from API\n"
                                  "                      keys in the environment and models in\n"
                                  "                      $BALLAST_MODELS (README: Zero-config)\n"
                                  "  -h, --help          this text\n"
                                  "\n"
                                  "signals: SIGHUP reloads the config; SIGTERM/SIGINT drain and stop.\n";

int bl_cli_serve(int argc, char **argv)
{
    static const struct option opts[] = {
        {"config", required_argument, 0, 'c'}, {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    app_t app = {0};
    int rc = 1, ch;
    char err[BL_CONFIG_ERR_MAX];
    optind = 1;
    while ((ch = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
        switch (ch) {
        case 'c': app.config_path = optarg; break;
        case 'h': fputs(SERVE_USAGE, stdout); return 0;
        default: fputs(SERVE_USAGE, stderr); return 2;
        }
    }
    if (!app.config_path && optind < argc)
        app.config_path = argv[optind];
    app.zero_config = !app.config_path;
    if (app.zero_config) {
        /* Notes (what was found, the demo model warning) go after the table. */
        char *notes = NULL;
        size_t notes_len = 0;
        bl_auto_opts_t ao = {.notes = open_memstream(&notes, &notes_len)};
        int arc = bl_config_auto(&ao, &app.cfg, err, sizeof err);
        if (ao.notes)
            fclose(ao.notes);
        if (!arc)
            bl_config_print(app.cfg, stderr); /* the table it built; never shows a key */
        if (notes)
            fputs(notes, stderr);
        free(notes);
        if (arc) {
            fprintf(stderr, "ballast serve: %s\n", err);
            return 1;
        }
    } else if (bl_config_load(app.config_path, &app.cfg, err, sizeof err)) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    apply_log_level(app.cfg);
    signal(SIGPIPE, SIG_IGN);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    if (!bl_upstream_async_dns())
        bl_log(BL_LOG_WARN, "libcurl has no asynchronous resolver; DNS lookups would block");

    app.loop = uv_default_loop();
    bl_server_limits_t limits;
    server_limits(app.cfg, &limits);
    if (bl_metrics_new(&app.metrics) || bl_health_table_new(&app.health) ||
        bl_upstream_new(app.loop, &app.up) || bl_locals_new(app.loop, app.metrics, &app.locals) ||
        bl_router_new(app.loop, app.up, app.health, app.metrics, &app.router) ||
        bl_api_new(app.cfg, app.router, app.health, app.metrics, &app.api) ||
        bl_server_new(app.loop, &limits, bl_api_handle, app.api, &app.server)) {
        fputs("ballast serve: out of memory\n", stderr);
        goto done;
    }
    app.m_reloads = bl_metric_family(app.metrics, "ballast_config_reloads_total", BL_METRIC_COUNTER,
                                     "Config reloads by result", "result");
    app.m_info = bl_metric_family(app.metrics, "ballast_build_info", BL_METRIC_GAUGE,
                                  "Always 1; labels say the version", "version");
    const char *ver[] = {BL_VERSION_STRING};
    bl_metric_set(app.m_info, 1, ver);
    bl_health_prune(app.health, app.cfg); /* creates an entry per target, for /metrics */
    bl_router_set_locals(app.router, app.locals);
    bl_api_set_locals(app.api, app.locals);
    open_store(&app);
    bl_locals_sync(app.locals, app.cfg); /* models load off the loop while cloud routes serve */
    if (bl_server_listen(app.server, app.cfg->listen.host, app.cfg->listen.port, err, sizeof err)) {
        fprintf(stderr, "ballast serve: %s\n", err);
        goto done;
    }
    uv_signal_init(app.loop, &app.sig_term);
    uv_signal_init(app.loop, &app.sig_int);
    uv_signal_init(app.loop, &app.sig_hup);
    app.sig_term.data = app.sig_int.data = app.sig_hup.data = &app;
    uv_signal_start(&app.sig_term, on_signal, SIGTERM);
    uv_signal_start(&app.sig_int, on_signal, SIGINT);
    uv_signal_start(&app.sig_hup, on_signal, SIGHUP);
    uv_timer_init(app.loop, &app.drain_timer);
    app.drain_timer.data = &app;

    bl_log(BL_LOG_INFO, "ballast %s listening on %s:%d (%zu providers, %zu routes, config %s)",
           BL_VERSION_STRING, app.cfg->listen.host, bl_server_port(app.server),
           app.cfg->n_providers, app.cfg->n_routes,
           app.zero_config ? "zero-config" : app.config_path);
    bl_log_attach(app.loop);
    uv_run(app.loop, UV_RUN_DEFAULT);
    bl_log_detach();
    uv_run(app.loop, UV_RUN_DEFAULT); /* let the log's handle finish closing */
    bl_log(BL_LOG_INFO, "stopped");
    rc = 0;
done:
    if (app.server && !app.stopping) {
        /* Startup failed after the server existed: close what is open. */
        bl_server_close(app.server, NULL, NULL);
        if (app.up)
            bl_upstream_close(app.up, NULL, NULL);
        app.up = NULL;
        uv_run(app.loop, UV_RUN_DEFAULT);
    } else if (app.up && !app.stopping) {
        bl_upstream_close(app.up, NULL, NULL);
        uv_run(app.loop, UV_RUN_DEFAULT);
    }
    bl_server_free(app.server);
    if (app.store) {
        bl_store_close(app.store, NULL, NULL);
        uv_run(app.loop, UV_RUN_DEFAULT);
    }
    if (app.locals && !app.stopping) {
        bl_locals_close(app.locals, NULL, NULL);
        uv_run(app.loop, UV_RUN_DEFAULT);
    }
    bl_locals_free(app.locals);
    bl_api_free(app.api);
    bl_router_free(app.router);
    bl_health_table_free(app.health);
    bl_metrics_free(app.metrics);
    bl_config_unref(app.cfg);
    uv_loop_close(app.loop);
    curl_global_cleanup();
    return rc;
}
