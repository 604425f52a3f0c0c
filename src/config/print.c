/* The route table `ballast check-config` prints. Never prints a secret: api
 * keys show as "set"/"not set", client keys as short hash ids, extra headers
 * by name only, and base URLs lose any user:password and query string. */
#include "config/config.h"

#include <string.h>

#include "util/util.h"

/* base_url without userinfo (scheme://user:pass@host) or query (?key=...). */
static void print_url(FILE *f, const char *url)
{
    const char *auth = strstr(url, "://");
    auth = auth ? auth + 3 : url;
    size_t auth_len = strcspn(auth, "/?#");
    const char *at = NULL;
    for (size_t i = 0; i < auth_len; i++)
        if (auth[i] == '@')
            at = auth + i;
    fwrite(url, 1, (size_t)(auth - url), f);
    const char *host = at ? at + 1 : auth;
    size_t rest = strcspn(host, "?#");
    fwrite(host, 1, rest, f);
    if (host[rest] == '?')
        fputs("?(query hidden)", f);
}

static void print_ms(FILE *f, const char *name, uint64_t ms)
{
    fprintf(f, " %s=%llums", name, (unsigned long long)ms);
}

static void print_providers(const bl_config_t *c, FILE *f)
{
    fprintf(f, "\nproviders:\n");
    if (c->n_providers == 0)
        fprintf(f, "  (none)\n");
    for (size_t i = 0; i < c->n_providers; i++) {
        const bl_provider_cfg_t *p = &c->providers[i];
        if (p->line) /* 0: not from a file (zero-config) */
            fprintf(f, "  %s (line %u)\n", p->name, p->line);
        else
            fprintf(f, "  %s\n", p->name);
        if (p->type == BL_PROVIDER_LOCAL) {
            const bl_local_cfg_t *l = &p->local;
            fprintf(f, "    type: local\n    model: %s%s\n", l->model_path,
                    l->has_sha256 ? " (sha256 pinned)" : "");
            fprintf(f, "    slots: %u, queue: %u, context: %u, max_tokens: %u, prefill_chunk: %u, "
                       "threads: ",
                    l->slots, l->max_queue, l->context, l->max_tokens, l->prefill_chunk);
            if (l->threads)
                fprintf(f, "%u\n", l->threads);
            else
                fprintf(f, "auto\n");
            continue;
        }
        if (p->type == BL_PROVIDER_BALLAST)
            fprintf(f, "    type: ballast (a peer node)\n");
        else if (p->type == BL_PROVIDER_ANTHROPIC)
            fprintf(f, "    type: anthropic (version %s%s%s)\n", p->anthropic_version,
                    p->anthropic_beta ? ", beta " : "", p->anthropic_beta ? p->anthropic_beta : "");
        else
            fprintf(f, "    type: openai\n%s", p->api == BL_API_RESPONSES ? "    api: responses\n" : "");
        fprintf(f, "    base_url: ");
        print_url(f, p->base_url);
        fprintf(f, "\n    api_key: %s\n", p->api_key ? "set" : "not set");
        if (p->n_headers) {
            fprintf(f, "    headers:");
            for (size_t j = 0; j < p->n_headers; j++) {
                const char *h = p->headers[j];
                fprintf(f, "%s %.*s", j ? "," : "", (int)strcspn(h, ":"), h);
            }
            fprintf(f, " (values hidden)\n");
        }
        fprintf(f, "    timeouts:");
        print_ms(f, "connect", p->timeouts.connect_ms);
        print_ms(f, "first_token", p->timeouts.first_token_ms);
        print_ms(f, "total", p->timeouts.total_ms);
        fputc('\n', f);
    }
}

static void print_routes(const bl_config_t *c, FILE *f)
{
    fprintf(f, "\nroutes:\n");
    for (size_t i = 0; i < c->n_routes; i++) {
        const bl_route_cfg_t *r = &c->routes[i];
        fprintf(f, "  %s", r->model);
        for (size_t j = 0; j < r->n_aliases; j++)
            fprintf(f, "%s%s", j ? ", " : " (aliases: ", r->aliases[j]);
        fprintf(f, "%s", r->n_aliases ? ")" : "");
        if (r->line)
            fprintf(f, " (line %u)", r->line);
        fputc('\n', f);
        for (size_t t = 0; t < r->n_tiers; t++) {
            const bl_tier_cfg_t *tier = &r->tiers[t];
            fprintf(f, "    tier %zu:", t + 1);
            for (size_t k = 0; k < tier->n_targets; k++) {
                const bl_target_cfg_t *tg = &tier->targets[k];
                const char *pn =
                    tg->provider < c->n_providers ? c->providers[tg->provider].name : "?";
                fprintf(f, "%s %s/%s weight=%u", k ? "," : "", pn, tg->model, tg->weight);
            }
            fputc('\n', f);
        }
        if (!r->hedge.enabled)
            fprintf(f, "    hedging: off\n");
        else if (r->hedge.delay_ms)
            fprintf(f, "    hedging: after %llums\n", (unsigned long long)r->hedge.delay_ms);
        else
            fprintf(f, "    hedging: after the target's p95 time to first byte (at least %llums)\n",
                    (unsigned long long)r->hedge.min_delay_ms);
        if (r->max_attempts)
            fprintf(f, "    attempts: %u\n", r->max_attempts);
        else
            fprintf(f, "    attempts: %u (retry default)\n", c->retry.max_attempts);
        if (r->deadline_ms)
            fprintf(f, "    deadline: %llums\n", (unsigned long long)r->deadline_ms);
        else
            fprintf(f, "    deadline: %llums (retry default)\n",
                    (unsigned long long)c->retry.deadline_ms);
    }
}

void bl_config_print(const bl_config_t *c, FILE *f)
{
    const bl_server_cfg_t *s = &c->server;
    fprintf(f, "configuration file: %s\n", c->file ? c->file : "(none)");
    bool v6 = c->listen.host && strchr(c->listen.host, ':');
    fprintf(f, "listen: %s%s%s:%d\n", v6 ? "[" : "", c->listen.host ? c->listen.host : "?",
            v6 ? "]" : "", c->listen.port);
    fprintf(f,
            "server: max_body_bytes=%zu max_header_bytes=%zu max_headers=%u"
            " max_connections=%u\n       ",
            s->max_body_bytes, s->max_header_bytes, s->max_headers, s->max_connections);
    print_ms(f, "header_timeout", s->header_timeout_ms);
    print_ms(f, "body_timeout", s->body_timeout_ms);
    print_ms(f, "idle_timeout", s->idle_timeout_ms);
    print_ms(f, "shutdown_grace", s->shutdown_grace_ms);
    fputc('\n', f);
    if (c->n_keys == 0) {
        fprintf(f, "client keys: none (every request is allowed)\n");
    } else {
        /* The first 4 bytes of a SHA-256 are an id, not the key. */
        fprintf(f, "client keys: %zu (ids:", c->n_keys);
        for (size_t i = 0; i < c->n_keys && i < 16; i++) {
            char hex[9];
            bl_hex(c->key_hashes[i], 4, hex);
            fprintf(f, " %s", hex);
        }
        fprintf(f, "%s)\n", c->n_keys > 16 ? " ..." : "");
    }
    const bl_breaker_cfg_t *b = &c->breaker;
    fprintf(f, "breaker: failure_threshold=%u error_rate=%g min_requests=%u", b->failure_threshold,
            b->error_rate, b->min_requests);
    print_ms(f, "window", b->window_ms);
    print_ms(f, "cooldown", b->cooldown_ms);
    fprintf(f, "\nretry: max_attempts=%u", c->retry.max_attempts);
    print_ms(f, "backoff_base", c->retry.backoff_base_ms);
    print_ms(f, "backoff_max", c->retry.backoff_max_ms);
    print_ms(f, "deadline", c->retry.deadline_ms);
    fprintf(f, "\nlog: level=%s\n", c->log_level ? c->log_level : "info");
    /* the Redis URL may hold a password: never printed */
    if (!c->response_store.enabled)
        fprintf(f, "response store: off\n");
    else if (c->redis_url)
        fprintf(f, "response store: redis (url hidden), ttl=%llus\n",
                (unsigned long long)c->response_store.ttl_s);
    else
        fprintf(f, "response store: sqlite %s, ttl=%llus\n",
                c->response_store.path ? c->response_store.path
                                       : "$XDG_STATE_HOME/ballast/responses.db",
                (unsigned long long)c->response_store.ttl_s);
    print_providers(c, f);
    print_routes(c, f);
    fprintf(f, "\nconfiguration OK\n");
}
