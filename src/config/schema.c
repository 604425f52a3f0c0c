/* The top level of the config and its small sections: listen, server, keys,
 * breaker, retry, log. Providers and routes have their own files. */
#include "config/reader.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#define DAY_MS 86400000u

void bl_cfg_defaults(bl_config_t *c)
{
    c->server = (bl_server_cfg_t){
        .max_body_bytes = 8u << 20,
        .max_header_bytes = 32u << 10,
        .max_headers = 100,
        .header_timeout_ms = 10000,
        .body_timeout_ms = 30000,
        .idle_timeout_ms = 60000,
        .max_connections = 1024,
        .shutdown_grace_ms = 10000,
    };
    c->breaker = (bl_breaker_cfg_t){
        .failure_threshold = 5,
        .error_rate = 0.5,
        .min_requests = 10,
        .window_ms = 10000,
        .cooldown_ms = 5000,
    };
    c->retry = (bl_retry_cfg_t){
        .max_attempts = 4,
        .backoff_base_ms = 50,
        .backoff_max_ms = 1000,
        .deadline_ms = 120000,
    };
    c->listen.port = 8080;
    c->response_store = (bl_response_store_cfg_t){.enabled = true, .ttl_s = 30u * 86400};
}

/* "host:port", "[v6]:port", ":port" or "port". The host must be an IP
 * literal (or localhost): the listener binds without a DNS lookup. */
static int read_listen(bl_yaml_ctx_t *x, yaml_node_t *n, bl_config_t *c)
{
    bl_scalar_t v = {0};
    int rc = 0;
    char shown[96];
    const char *why = NULL;
    if (n) {
        if ((rc = bl_cfg_string(x, n, "listen", &v)))
            return rc;
    }
    const char *s = v.s && v.len ? v.s : "127.0.0.1:8080";
    char host[INET6_ADDRSTRLEN + 1];
    const char *port_s;
    const char *colon = strrchr(s, ':');
    if (s[0] == '[') {
        const char *rb = strchr(s, ']');
        if (!rb || rb[1] != ':' || (size_t)(rb - s - 1) >= sizeof host) {
            why = "expected [IPv6]:port";
            goto bad;
        }
        memcpy(host, s + 1, (size_t)(rb - s - 1));
        host[rb - s - 1] = '\0';
        port_s = rb + 2;
        unsigned char a[16];
        if (inet_pton(AF_INET6, host, a) != 1) {
            why = "not an IPv6 address inside [ ]";
            goto bad;
        }
    } else if (!colon) {
        strcpy(host, "127.0.0.1");
        port_s = s;
    } else {
        if (strchr(s, ':') != colon) {
            why = "write IPv6 addresses in brackets, e.g. [::1]:8080";
            goto bad;
        }
        size_t hl = (size_t)(colon - s);
        if (hl >= sizeof host) {
            why = "host must be an IPv4 or IPv6 address";
            goto bad;
        }
        memcpy(host, s, hl);
        host[hl] = '\0';
        port_s = colon + 1;
        unsigned char a[4];
        if (hl == 0 || !strcmp(host, "*"))
            strcpy(host, "0.0.0.0");
        else if (!strcmp(host, "localhost"))
            strcpy(host, "127.0.0.1");
        else if (inet_pton(AF_INET, host, a) != 1) {
            why = "host must be an IPv4 or IPv6 address (or localhost)";
            goto bad;
        }
    }
    uint64_t port;
    if (bl_parse_u64(port_s, strlen(port_s), &port) || port < 1 || port > 65535) {
        why = "port must be a number from 1 to 65535";
        goto bad;
    }
    c->listen.host = strdup(host);
    c->listen.port = (int)port;
    rc = c->listen.host ? 0 : BL_ENOMEM;
    goto done;
bad:
    bl_cfg_show(&v, shown, sizeof shown);
    rc = bl_cfg_error(x, n->start_mark, "bad listen address %s: %s", shown, why);
done:
    bl_cfg_scalar_free(&v);
    return rc;
}

static int read_server(bl_yaml_ctx_t *x, yaml_node_t *n, bl_server_cfg_t *s)
{
    static const char *const names[] = {
        "max_body_bytes",  "max_header_bytes", "max_headers",     "header_timeout_ms",
        "body_timeout_ms", "idle_timeout_ms",  "max_connections", "shutdown_grace_ms",
    };
    yaml_node_t *v[BL_ARRAY_LEN(names)];
    int rc = bl_cfg_fields(x, n, "server", names, BL_ARRAY_LEN(names), v);
    if (rc)
        return rc;
    if (v[0] && (rc = bl_cfg_size(x, v[0], names[0], 1, 1ull << 32, &s->max_body_bytes)))
        return rc;
    if (v[1] && (rc = bl_cfg_size(x, v[1], names[1], 1024, 1u << 20, &s->max_header_bytes)))
        return rc;
    if (v[2] && (rc = bl_cfg_uint(x, v[2], names[2], 1, 10000, &s->max_headers)))
        return rc;
    if (v[3] && (rc = bl_cfg_u64(x, v[3], names[3], 1, DAY_MS, &s->header_timeout_ms)))
        return rc;
    if (v[4] && (rc = bl_cfg_u64(x, v[4], names[4], 1, DAY_MS, &s->body_timeout_ms)))
        return rc;
    if (v[5] && (rc = bl_cfg_u64(x, v[5], names[5], 1, DAY_MS, &s->idle_timeout_ms)))
        return rc;
    if (v[6] && (rc = bl_cfg_uint(x, v[6], names[6], 1, 1000000, &s->max_connections)))
        return rc;
    if (v[7] && (rc = bl_cfg_u64(x, v[7], names[7], 0, DAY_MS, &s->shutdown_grace_ms)))
        return rc;
    return 0;
}

static int unhex(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

/* Client keys: "sha256:<64 hex>" as given, anything else is a plain key that
 * is hashed here and wiped; the plain value is never kept. */
static int read_keys(bl_yaml_ctx_t *x, yaml_node_t *n, bl_config_t *c)
{
    yaml_node_item_t *items;
    size_t count;
    int rc = bl_cfg_list(x, n, "keys", &items, &count);
    if (rc || count == 0)
        return rc;
    if (count > 100000)
        return bl_cfg_error(x, n->start_mark, "keys: too many keys (at most 100000)");
    c->key_hashes = calloc(count, sizeof *c->key_hashes);
    if (!c->key_hashes)
        return BL_ENOMEM;
    for (size_t i = 0; i < count; i++) {
        yaml_node_t *k = bl_cfg_node(x, items[i]);
        bl_scalar_t v;
        if ((rc = bl_cfg_string(x, k, "keys", &v)))
            return rc;
        unsigned char *h = c->key_hashes[i];
        if (v.len > 7 && !memcmp(v.s, "sha256:", 7)) {
            bool ok = v.len == 7 + 64;
            for (size_t j = 0; ok && j < 32; j++) {
                int hi = unhex(v.s[7 + 2 * j]), lo = unhex(v.s[8 + 2 * j]);
                ok = hi >= 0 && lo >= 0;
                if (ok)
                    h[j] = (unsigned char)(hi << 4 | lo);
            }
            if (!ok)
                rc = bl_cfg_error(x, k->start_mark,
                                  "keys: a 'sha256:' key must be followed by 64 hex digits");
        } else if (v.len == 0) {
            rc = bl_cfg_error(x, k->start_mark, "keys: client key is empty");
        } else if (!EVP_Digest(v.s, v.len, h, NULL, EVP_sha256(), NULL)) {
            rc = BL_ENOMEM;
        }
        bl_cfg_scalar_free(&v);
        if (rc)
            return rc;
        c->n_keys = i + 1;
    }
    return 0;
}

static int read_breaker(bl_yaml_ctx_t *x, yaml_node_t *n, bl_breaker_cfg_t *b)
{
    static const char *const names[] = {"failure_threshold", "error_rate", "min_requests",
                                        "window_ms", "cooldown_ms"};
    yaml_node_t *v[BL_ARRAY_LEN(names)];
    int rc = bl_cfg_fields(x, n, "breaker", names, BL_ARRAY_LEN(names), v);
    if (rc)
        return rc;
    if (v[0] && (rc = bl_cfg_uint(x, v[0], names[0], 1, 1000000, &b->failure_threshold)))
        return rc;
    if (v[1]) {
        if ((rc = bl_cfg_double(x, v[1], names[1], &b->error_rate)))
            return rc;
        if (!(b->error_rate > 0.0 && b->error_rate <= 1.0))
            return bl_cfg_error(x, v[1]->start_mark,
                                "error_rate must be above 0 and at most 1 (a share of requests)");
    }
    if (v[2] && (rc = bl_cfg_uint(x, v[2], names[2], 1, 1000000, &b->min_requests)))
        return rc;
    if (v[3] && (rc = bl_cfg_u64(x, v[3], names[3], 1, DAY_MS, &b->window_ms)))
        return rc;
    if (v[4] && (rc = bl_cfg_u64(x, v[4], names[4], 1, DAY_MS, &b->cooldown_ms)))
        return rc;
    return 0;
}

static int read_retry(bl_yaml_ctx_t *x, yaml_node_t *n, bl_retry_cfg_t *r)
{
    static const char *const names[] = {"max_attempts", "backoff_base_ms", "backoff_max_ms",
                                        "deadline_ms"};
    yaml_node_t *v[BL_ARRAY_LEN(names)];
    int rc = bl_cfg_fields(x, n, "retry", names, BL_ARRAY_LEN(names), v);
    if (rc)
        return rc;
    if (v[0] && (rc = bl_cfg_uint(x, v[0], names[0], 1, 16, &r->max_attempts)))
        return rc;
    if (v[1] && (rc = bl_cfg_u64(x, v[1], names[1], 0, 600000, &r->backoff_base_ms)))
        return rc;
    if (v[2] && (rc = bl_cfg_u64(x, v[2], names[2], 0, 600000, &r->backoff_max_ms)))
        return rc;
    if (v[3] && (rc = bl_cfg_u64(x, v[3], names[3], 1, DAY_MS, &r->deadline_ms)))
        return rc;
    if (r->backoff_max_ms < r->backoff_base_ms) {
        yaml_node_t *at = v[2] ? v[2] : v[1];
        return bl_cfg_error(
            x, at->start_mark, "backoff_max_ms (%llu) is smaller than backoff_base_ms (%llu)",
            (unsigned long long)r->backoff_max_ms, (unsigned long long)r->backoff_base_ms);
    }
    return 0;
}

static int read_log(bl_yaml_ctx_t *x, yaml_node_t *n, bl_config_t *c)
{
    static const char *const names[] = {"level"};
    static const char *const levels[] = {"debug", "info", "warn", "error"};
    yaml_node_t *v[1];
    int rc = bl_cfg_fields(x, n, "log", names, 1, v);
    if (rc)
        return rc;
    if (!v[0])
        return 0;
    bl_scalar_t s;
    if ((rc = bl_cfg_string(x, v[0], "level", &s)))
        return rc;
    const char *lvl = !strcmp(s.s, "warning") ? "warn" : s.s;
    for (size_t i = 0; i < BL_ARRAY_LEN(levels); i++)
        if (!strcmp(lvl, levels[i])) {
            free(c->log_level);
            c->log_level = strdup(levels[i]);
            bl_cfg_scalar_free(&s);
            return c->log_level ? 0 : BL_ENOMEM;
        }
    char shown[96];
    bl_cfg_show(&s, shown, sizeof shown);
    bl_cfg_scalar_free(&s);
    return bl_cfg_error(x, v[0]->start_mark,
                        "unknown log level %s (expected debug, info, warn or error)", shown);
}

/* redis: the shared state of replicas ("redis://host:port/db" or "unix:/path"). */
static int read_redis(bl_yaml_ctx_t *x, yaml_node_t *n, bl_config_t *c)
{
    if (!n || bl_cfg_is_null(n))
        return 0;
    int rc = bl_cfg_strdup(x, n, "redis", &c->redis_url);
    if (rc)
        return rc;
    if (strncmp(c->redis_url, "redis://", 8) && strncmp(c->redis_url, "unix:", 5))
        return bl_cfg_error(x, n->start_mark,
                            "redis: expected redis://host[:port][/db] or unix:/path");
    return 0;
}

/* response_store: where Responses API answers are kept for previous_response_id. */
static int read_response_store(bl_yaml_ctx_t *x, yaml_node_t *n, bl_config_t *c)
{
    static const char *const names[] = {"enabled", "path", "ttl_s"};
    yaml_node_t *v[3];
    bl_response_store_cfg_t *r = &c->response_store;
    if (!n)
        return 0;
    int rc = bl_cfg_fields(x, n, "response_store", names, 3, v);
    if (rc)
        return rc;
    if (v[0] && (rc = bl_cfg_bool(x, v[0], "enabled", &r->enabled)))
        return rc;
    if (v[1]) {
        char *p;
        if ((rc = bl_cfg_strdup(x, v[1], "path", &p)))
            return rc;
        if (p[0] == '/' || !strchr(x->file, '/')) {
            r->path = p;
        } else {
            /* relative to the config file's folder, like model paths */
            size_t dir = (size_t)(strrchr(x->file, '/') - x->file);
            r->path = malloc(dir + 1 + strlen(p) + 1);
            if (r->path) {
                memcpy(r->path, x->file, dir + 1);
                strcpy(r->path + dir + 1, p);
            }
            free(p);
            if (!r->path)
                return BL_ENOMEM;
        }
    }
    if (v[2] && (rc = bl_cfg_u64(x, v[2], "ttl_s", 1, 10ull * 365 * 86400, &r->ttl_s)))
        return rc;
    return 0;
}

int bl_cfg_read_root(bl_yaml_ctx_t *x, yaml_node_t *root, bl_config_t *c)
{
    static const char *const names[] = {"listen",    "server", "keys",  "breaker",
                                        "retry",     "log",    "providers", "routes",
                                        "redis",     "response_store"};
    yaml_node_t *v[BL_ARRAY_LEN(names)];
    if (root->type != YAML_MAPPING_NODE)
        return bl_cfg_error(x, root->start_mark, "expected a mapping at the top level, got %s",
                            bl_cfg_kind(root));
    int rc = bl_cfg_fields(x, root, "the top level", names, BL_ARRAY_LEN(names), v);
    if (rc)
        return rc;
    /* Fixed order, not file order: routes need the provider names. */
    if ((rc = read_listen(x, v[0], c)) || (rc = read_server(x, v[1], &c->server)) ||
        (rc = read_keys(x, v[2], c)) || (rc = read_breaker(x, v[3], &c->breaker)) ||
        (rc = read_retry(x, v[4], &c->retry)) || (rc = read_log(x, v[5], c)) ||
        (rc = read_redis(x, v[8], c)) || (rc = read_response_store(x, v[9], c)) ||
        (rc = bl_cfg_read_providers(x, v[6], c)))
        return rc;
    if (!v[7])
        return bl_cfg_error(x, root->start_mark, "missing required key 'routes'");
    return bl_cfg_read_routes(x, v[7], c);
}
