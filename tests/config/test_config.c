#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "config/config.h"
#include "config/reader.h"

/* sha256("test") */
static const char TEST_HASH[] = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

static bl_config_t *parse_ok(const char *yaml)
{
    char err[BL_CONFIG_ERR_MAX] = "";
    bl_config_t *c = NULL;
    int rc = bl_config_parse(yaml, strlen(yaml), "t.yaml", &c, err, sizeof err);
    if (rc != 0)
        fail_msg("unexpected error: %s", err);
    assert_non_null(c);
    return c;
}

/* Parse, expect failure with exactly this message. */
static void expect_err(const char *yaml, const char *want)
{
    char err[BL_CONFIG_ERR_MAX] = "";
    bl_config_t *c = NULL;
    int rc = bl_config_parse(yaml, strlen(yaml), "t.yaml", &c, err, sizeof err);
    assert_true(rc < 0);
    assert_null(c);
    assert_string_equal(err, want);
}

/* The rest of a valid config, appended to the section a test varies. */
#define PROVIDERS                                                                                  \
    "providers:\n"                                                                                 \
    "  - name: primary\n"                                                                          \
    "    base_url: http://127.0.0.1:9001/v1\n"                                                     \
    "  - name: backup\n"                                                                           \
    "    base_url: http://127.0.0.1:9002/v1\n"
#define ROUTES                                                                                     \
    "routes:\n"                                                                                    \
    "  - model: m\n"                                                                               \
    "    tiers:\n"                                                                                 \
    "      - [{provider: primary, model: x}]\n"

static const char FULL[] =
    "listen: '[::1]:8081'\n"
    "server:\n"
    "  max_body_bytes: 8MiB\n"
    "  max_header_bytes: 32KiB\n"
    "  max_headers: 50\n"
    "  header_timeout_ms: 1000\n"
    "  body_timeout_ms: 2000\n"
    "  idle_timeout_ms: 3000\n"
    "  max_connections: 10\n"
    "  shutdown_grace_ms: 0\n"
    "keys:\n"
    "  - sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08\n"
    "  - ${BLT_TEAM_KEY}\n"
    "breaker: {failure_threshold: 3, error_rate: 0.25, min_requests: 20, window_ms: 1000, "
    "cooldown_ms: 500}\n"
    "retry: {max_attempts: 5, backoff_base_ms: 10, backoff_max_ms: 100, deadline_ms: 9000}\n"
    "log: {level: debug}\n"
    "providers:\n"
    "  - name: primary\n"
    "    type: openai\n"
    "    base_url: https://api.example.com/v1/\n"
    "    api_key: ${BLT_OPENAI_KEY}\n"
    "    headers: {OpenAI-Organization: org-1}\n"
    "    timeouts: {connect_ms: 100, first_token_ms: 200, total_ms: 300}\n"
    "  - name: backup\n"
    "    base_url: http://127.0.0.1:9002\n"
    "routes:\n"
    "  - model: gpt-4o-mini\n"
    "    aliases: [mini, default]\n"
    "    tiers:\n"
    "      - [{provider: primary, model: gpt-4o-mini}]\n"
    "      - [{provider: backup, model: llama, weight: 2}, {provider: primary, model: nano}]\n"
    "    hedge: {delay_ms: 0}\n"
    "    max_attempts: 3\n"
    "    deadline_ms: 60000\n"
    "  - model: big\n"
    "    tiers:\n"
    "      - {provider: backup, model: llama-70b}\n";

static void full_config_parses(void **state)
{
    setenv("BLT_TEAM_KEY", "test", 1);
    setenv("BLT_OPENAI_KEY", "sk-supersecret-123", 1);
    bl_config_t *c = parse_ok(FULL);
    assert_string_equal(c->file, "t.yaml");
    assert_string_equal(c->listen.host, "::1");
    assert_int_equal(c->listen.port, 8081);
    assert_int_equal(c->server.max_body_bytes, 8 * 1024 * 1024);
    assert_int_equal(c->server.max_header_bytes, 32 * 1024);
    assert_int_equal(c->server.max_headers, 50);
    assert_int_equal(c->server.header_timeout_ms, 1000);
    assert_int_equal(c->server.body_timeout_ms, 2000);
    assert_int_equal(c->server.idle_timeout_ms, 3000);
    assert_int_equal(c->server.max_connections, 10);
    assert_int_equal(c->server.shutdown_grace_ms, 0);

    /* both keys hash to sha256("test"): one given as a hash, one plain */
    assert_int_equal(c->n_keys, 2);
    char hex[65];
    bl_hex(c->key_hashes[0], 32, hex);
    assert_string_equal(hex, TEST_HASH);
    bl_hex(c->key_hashes[1], 32, hex);
    assert_string_equal(hex, TEST_HASH);

    assert_int_equal(c->breaker.failure_threshold, 3);
    assert_true(c->breaker.error_rate == 0.25);
    assert_int_equal(c->breaker.min_requests, 20);
    assert_int_equal(c->breaker.window_ms, 1000);
    assert_int_equal(c->breaker.cooldown_ms, 500);
    assert_int_equal(c->retry.max_attempts, 5);
    assert_int_equal(c->retry.backoff_base_ms, 10);
    assert_int_equal(c->retry.backoff_max_ms, 100);
    assert_int_equal(c->retry.deadline_ms, 9000);
    assert_string_equal(c->log_level, "debug");

    assert_int_equal(c->n_providers, 2);
    const bl_provider_cfg_t *p = &c->providers[0];
    assert_string_equal(p->name, "primary");
    assert_int_equal(p->type, BL_PROVIDER_OPENAI);
    assert_string_equal(p->base_url, "https://api.example.com/v1"); /* '/' stripped */
    assert_string_equal(p->api_key, "sk-supersecret-123");
    assert_int_equal(p->n_headers, 1);
    assert_string_equal(p->headers[0], "OpenAI-Organization: org-1");
    assert_int_equal(p->timeouts.connect_ms, 100);
    assert_int_equal(p->timeouts.first_token_ms, 200);
    assert_int_equal(p->timeouts.total_ms, 300);
    assert_int_equal(p->line, 18);
    p = &c->providers[1];
    assert_string_equal(p->base_url, "http://127.0.0.1:9002");
    assert_null(p->api_key);
    assert_int_equal(p->timeouts.connect_ms, 2000);
    assert_int_equal(p->timeouts.first_token_ms, 10000);
    assert_int_equal(p->timeouts.total_ms, 120000);
    assert_ptr_equal(bl_config_provider(c, "backup"), p);
    assert_null(bl_config_provider(c, "nope"));

    assert_int_equal(c->n_routes, 2);
    const bl_route_cfg_t *r = &c->routes[0];
    assert_string_equal(r->model, "gpt-4o-mini");
    assert_int_equal(r->line, 27);
    assert_int_equal(r->n_aliases, 2);
    assert_string_equal(r->aliases[0], "mini");
    assert_string_equal(r->aliases[1], "default");
    assert_int_equal(r->n_tiers, 2);
    assert_int_equal(r->tiers[0].n_targets, 1);
    assert_int_equal(r->tiers[0].targets[0].provider, 0);
    assert_string_equal(r->tiers[0].targets[0].model, "gpt-4o-mini");
    assert_int_equal(r->tiers[0].targets[0].weight, 1);
    assert_int_equal(r->tiers[1].n_targets, 2);
    assert_int_equal(r->tiers[1].targets[0].provider, 1);
    assert_string_equal(r->tiers[1].targets[0].model, "llama");
    assert_int_equal(r->tiers[1].targets[0].weight, 2);
    assert_int_equal(r->tiers[1].targets[1].provider, 0);
    assert_string_equal(r->tiers[1].targets[1].model, "nano");
    assert_true(r->hedge.enabled);
    assert_int_equal(r->hedge.delay_ms, 0);
    assert_int_equal(r->hedge.min_delay_ms, 50);
    assert_int_equal(r->max_attempts, 3);
    assert_int_equal(r->deadline_ms, 60000);
    /* a lone mapping is a tier of one target; unset overrides are 0 */
    r = &c->routes[1];
    assert_int_equal(r->n_tiers, 1);
    assert_int_equal(r->tiers[0].n_targets, 1);
    assert_string_equal(r->tiers[0].targets[0].model, "llama-70b");
    assert_false(r->hedge.enabled);
    assert_int_equal(r->max_attempts, 0);
    assert_int_equal(r->deadline_ms, 0);

    /* lookup by model or alias, exact and case-sensitive */
    assert_ptr_equal(bl_config_route(c, "gpt-4o-mini", 11), &c->routes[0]);
    assert_ptr_equal(bl_config_route(c, "mini", 4), &c->routes[0]);
    assert_ptr_equal(bl_config_route(c, "default", 7), &c->routes[0]);
    assert_ptr_equal(bl_config_route(c, "big", 3), &c->routes[1]);
    assert_null(bl_config_route(c, "MINI", 4));
    assert_null(bl_config_route(c, "min", 3));
    assert_null(bl_config_route(c, "gpt-4o-mini-x", 13));
    assert_ptr_equal(bl_config_route(c, "bigger", 3), &c->routes[1]); /* length-bounded */

    /* reference counting: the last unref frees (ASan checks the leak/UAF) */
    assert_ptr_equal(bl_config_ref(c), c);
    assert_int_equal(c->refs, 2);
    bl_config_unref(c);
    assert_int_equal(c->refs, 1);
    bl_config_unref(c);
    unsetenv("BLT_TEAM_KEY");
    unsetenv("BLT_OPENAI_KEY");
}

static void defaults_are_filled_in(void **state)
{
    bl_config_t *c = parse_ok(PROVIDERS ROUTES);
    assert_string_equal(c->listen.host, "127.0.0.1");
    assert_int_equal(c->listen.port, 8080);
    assert_int_equal(c->server.max_body_bytes, 8u << 20);
    assert_int_equal(c->server.max_header_bytes, 32u << 10);
    assert_int_equal(c->server.max_headers, 100);
    assert_int_equal(c->server.header_timeout_ms, 10000);
    assert_int_equal(c->server.body_timeout_ms, 30000);
    assert_int_equal(c->server.idle_timeout_ms, 60000);
    assert_int_equal(c->server.max_connections, 1024);
    assert_int_equal(c->server.shutdown_grace_ms, 10000);
    assert_int_equal(c->n_keys, 0);
    assert_null(c->key_hashes);
    assert_int_equal(c->breaker.failure_threshold, 5);
    assert_true(c->breaker.error_rate == 0.5);
    assert_int_equal(c->breaker.min_requests, 10);
    assert_int_equal(c->breaker.window_ms, 10000);
    assert_int_equal(c->breaker.cooldown_ms, 5000);
    assert_int_equal(c->retry.max_attempts, 4);
    assert_int_equal(c->retry.backoff_base_ms, 50);
    assert_int_equal(c->retry.backoff_max_ms, 1000);
    assert_int_equal(c->retry.deadline_ms, 120000);
    assert_string_equal(c->log_level, "info");
    assert_int_equal(c->providers[0].type, BL_PROVIDER_OPENAI);
    assert_int_equal(c->refs, 1);
    bl_config_unref(c);

    /* empty sections count as empty, not as errors */
    c = parse_ok("server:\nkeys: []\nlog: {}\n" PROVIDERS ROUTES);
    assert_int_equal(c->server.max_headers, 100);
    assert_int_equal(c->n_keys, 0);
    bl_config_unref(c);
}

static void listen_forms(void **state)
{
    static const struct {
        const char *in, *host;
        int port;
    } ok[] = {
        {"listen: 0.0.0.0:80\n", "0.0.0.0", 80},         {"listen: '[::]:8443'\n", "::", 8443},
        {"listen: localhost:9000\n", "127.0.0.1", 9000}, {"listen: ':7000'\n", "0.0.0.0", 7000},
        {"listen: 7001\n", "127.0.0.1", 7001},
    };
    for (size_t i = 0; i < BL_ARRAY_LEN(ok); i++) {
        char y[512];
        snprintf(y, sizeof y, "%s%s%s", ok[i].in, PROVIDERS, ROUTES);
        bl_config_t *c = parse_ok(y);
        assert_string_equal(c->listen.host, ok[i].host);
        assert_int_equal(c->listen.port, ok[i].port);
        bl_config_unref(c);
    }
}

static void sizes_with_units(void **state)
{
    static const struct {
        const char *in;
        uint64_t want;
    } ok[] = {
        {"0", 0},         {"65536", 65536},       {"8MiB", 8u << 20}, {"8 MiB", 8u << 20},
        {"32KiB", 32768}, {"32kib", 32768},       {"1GiB", 1u << 30}, {"64KB", 64000},
        {"2MB", 2000000}, {"3GB", 3000000000ull}, {"100B", 100},
    };
    for (size_t i = 0; i < BL_ARRAY_LEN(ok); i++) {
        uint64_t v = 0;
        assert_int_equal(bl_cfg_parse_size(ok[i].in, &v), 0);
        assert_int_equal(v, ok[i].want);
    }
    static const char *const bad[] = {"", "MiB", "8XiB", "8 ", "-1", "1.5MiB", "8MiBs", " 8"};
    for (size_t i = 0; i < BL_ARRAY_LEN(bad); i++) {
        uint64_t v;
        assert_int_equal(bl_cfg_parse_size(bad[i], &v), BL_EINVAL);
    }
    uint64_t v;
    assert_int_equal(bl_cfg_parse_size("99999999999GiB", &v), BL_ERANGE);

    bl_config_t *c =
        parse_ok("server: {max_body_bytes: 1 MiB, max_header_bytes: 16KB}\n" PROVIDERS ROUTES);
    assert_int_equal(c->server.max_body_bytes, 1u << 20);
    assert_int_equal(c->server.max_header_bytes, 16000);
    bl_config_unref(c);
    expect_err("server:\n  max_body_bytes: 8 parsecs\n" PROVIDERS ROUTES,
               "t.yaml:2:19: max_body_bytes: expected a size like 65536, 64KiB or 8MiB, "
               "got '8 parsecs'");
    expect_err("server:\n  max_header_bytes: 2MiB\n" PROVIDERS ROUTES,
               "t.yaml:2:21: max_header_bytes must be between 1024 and 1048576, got 2097152");
}

static void env_expansion(void **state)
{
    setenv("BLT_PORT", "9123", 1);
    setenv("BLT_EMPTY", "", 1);
    unsetenv("BLT_UNSET");
    bl_config_t *c = parse_ok("listen: 127.0.0.1:${BLT_PORT}\n"
                              "providers:\n"
                              "  - name: p\n"
                              "    base_url: http://${BLT_UNSET:-localhost:1}/a$$b/$x\n"
                              "    api_key: ${BLT_EMPTY:-}\n"
                              "routes:\n"
                              "  - model: ${BLT_UNSET:-m}${BLT_EMPTY}\n"
                              "    tiers: [[{provider: p, model: '${BLT_EMPTY:-dflt}'}]]\n");
    assert_int_equal(c->listen.port, 9123);
    assert_string_equal(c->providers[0].base_url, "http://localhost:1/a$b/$x");
    assert_null(c->providers[0].api_key); /* empty means not set */
    assert_string_equal(c->routes[0].model, "m");
    assert_string_equal(c->routes[0].tiers[0].targets[0].model, "dflt");
    bl_config_unref(c);

    /* the column points at the '${' inside a plain scalar */
    expect_err("providers:\n"
               "  - name: p\n"
               "    base_url: http://x\n"
               "    api_key: ${BLT_UNSET}\n" ROUTES,
               "t.yaml:4:14: environment variable BLT_UNSET is not set");
    expect_err("listen: 127.0.0.1:${BLT_UNSET}\n" PROVIDERS ROUTES,
               "t.yaml:1:19: environment variable BLT_UNSET is not set");
    /* quoted scalars point at the scalar */
    expect_err("listen: \"x:${BLT_UNSET}\"\n" PROVIDERS ROUTES,
               "t.yaml:1:9: environment variable BLT_UNSET is not set");
    expect_err("listen: ${BLT_PORT\n" PROVIDERS ROUTES,
               "t.yaml:1:9: unterminated '${' (missing '}')");
    expect_err("listen: a${1X}\n" PROVIDERS ROUTES,
               "t.yaml:1:10: bad environment variable reference: expected ${NAME} or "
               "${NAME:-default} with NAME made of letters, digits and '_'");
    unsetenv("BLT_PORT");
    unsetenv("BLT_EMPTY");
}

static void unknown_keys_suggest(void **state)
{
    expect_err("retry:\n  max_attempts: 3\n  max_atempts: 3\n" PROVIDERS ROUTES,
               "t.yaml:3:3: unknown key 'max_atempts' in retry (did you mean 'max_attempts'?)");
    expect_err("listne: 1.2.3.4:80\n" PROVIDERS ROUTES,
               "t.yaml:1:1: unknown key 'listne' in the top level (did you mean 'listen'?)");
    expect_err("retry: {colour: blue}\n" PROVIDERS ROUTES,
               "t.yaml:1:9: unknown key 'colour' in retry (valid keys: max_attempts, "
               "backoff_base_ms, backoff_max_ms, deadline_ms)");
    expect_err(PROVIDERS "routes:\n  - model: m\n    tiers: [[{provider: primary, modle: x}]]\n",
               "t.yaml:8:34: unknown key 'modle' in target (did you mean 'model'?)");
    expect_err("log: {level: info}\nlog: {level: warn}\n" PROVIDERS ROUTES,
               "t.yaml:2:1: duplicate key 'log' in the top level (first set at line 1)");
}

static void wrong_types(void **state)
{
    expect_err("server:\n  max_headers: [1, 2]\n" PROVIDERS ROUTES,
               "t.yaml:2:16: max_headers: expected a number, got a list");
    expect_err("server:\n  max_headers: {a: 1}\n" PROVIDERS ROUTES,
               "t.yaml:2:16: max_headers: expected a number, got a mapping");
    expect_err("server:\n  max_headers: lots\n" PROVIDERS ROUTES,
               "t.yaml:2:16: max_headers: expected a whole number, got 'lots'");
    expect_err("server:\n  max_headers:\n" PROVIDERS ROUTES,
               "t.yaml:2:15: max_headers: expected a number, got nothing");
    expect_err("server: 5\n" PROVIDERS ROUTES,
               "t.yaml:1:9: server: expected a mapping, got a string");
    expect_err("breaker: {error_rate: half}\n" PROVIDERS ROUTES,
               "t.yaml:1:23: error_rate: expected a number, got 'half'");
    expect_err("- a\n- b\n", "t.yaml:1:1: expected a mapping at the top level, got a list");
    expect_err(PROVIDERS "routes: {model: m}\n",
               "t.yaml:6:9: routes: expected a list, got a mapping");
    expect_err(PROVIDERS "routes:\n  - model: [m]\n    tiers: [[{provider: primary, model: x}]]\n",
               "t.yaml:7:12: model: expected a string, got a list");
}

static void missing_required_keys(void **state)
{
    expect_err(PROVIDERS, "t.yaml:1:1: missing required key 'routes'");
    expect_err("providers:\n  - base_url: http://x\n" ROUTES,
               "t.yaml:2:5: provider: missing required key 'name'");
    expect_err("providers:\n  - name: p\n    type: openai\n" ROUTES,
               "t.yaml:2:5: provider 'p': missing required key 'base_url'");
    expect_err(PROVIDERS "routes:\n  - tiers: [[{provider: primary, model: x}]]\n",
               "t.yaml:7:5: route: missing required key 'model'");
    expect_err(PROVIDERS "routes:\n  - model: m\n",
               "t.yaml:7:5: route 'm': missing required key 'tiers'");
    expect_err(PROVIDERS "routes:\n  - model: m\n    tiers: [[{model: x}]]\n",
               "t.yaml:8:14: target: missing required key 'provider'");
    expect_err(PROVIDERS "routes:\n  - model: m\n    tiers: [[{provider: primary}]]\n",
               "t.yaml:8:14: target: missing required key 'model'");
    expect_err("", "t.yaml:1:1: the file is empty: expected at least 'providers' and 'routes'");
    expect_err(PROVIDERS "routes: []\n", "t.yaml:6:9: routes is empty: define at least one route");
}

static void out_of_range(void **state)
{
    expect_err("retry: {max_attempts: 0}\n" PROVIDERS ROUTES,
               "t.yaml:1:23: max_attempts must be between 1 and 16, got 0");
    expect_err("breaker:\n  error_rate: 1.5\n" PROVIDERS ROUTES,
               "t.yaml:2:15: error_rate must be above 0 and at most 1 (a share of requests)");
    expect_err("server: {max_connections: 99999999999999999999999}\n" PROVIDERS ROUTES,
               "t.yaml:1:27: max_connections: number is too large");
    expect_err("retry: {backoff_base_ms: 500, backoff_max_ms: 100}\n" PROVIDERS ROUTES,
               "t.yaml:1:47: backoff_max_ms (100) is smaller than backoff_base_ms (500)");
    expect_err("server: {header_timeout_ms: -5}\n" PROVIDERS ROUTES,
               "t.yaml:1:29: header_timeout_ms: expected a whole number, got '-5'");
}

static void provider_errors(void **state)
{
    expect_err("providers:\n"
               "  - {name: a, base_url: 'http://x'}\n"
               "  - {name: b, base_url: 'http://y'}\n"
               "  - {name: a, base_url: 'http://z'}\n" ROUTES,
               "t.yaml:4:12: duplicate provider name 'a' (first defined at line 2)");
    expect_err("providers:\n  - {name: p, type: openia, base_url: 'http://x'}\n" ROUTES,
               "t.yaml:2:21: unknown provider type 'openia' (known types: openai, local, anthropic, ballast)");
    expect_err("providers:\n  - {name: p, base_url: ftp://x}\n" ROUTES,
               "t.yaml:2:25: base_url 'ftp://x' must start with http:// or https://");
    expect_err("providers:\n  - {name: p, base_url: 'https:///v1'}\n" ROUTES,
               "t.yaml:2:25: base_url 'https:///v1' has no host");
    expect_err("providers:\n  - {name: p, base_url: 'http://a b'}\n" ROUTES,
               "t.yaml:2:25: base_url 'http://a b' must not contain spaces or control "
               "characters");
    expect_err("providers:\n  - {name: 'a b', base_url: 'http://x'}\n" ROUTES,
               "t.yaml:2:12: provider name must be non-empty and use only letters, digits, "
               "'.', '_' and '-'");
    expect_err("providers:\n  - {name: p, base_url: 'http://x', headers: {'a b': c}}\n" ROUTES,
               "t.yaml:2:47: headers: invalid header name");
    expect_err(
        "providers:\n  - {name: p, base_url: 'http://x', timeouts: {connect_ms: 0}}\n" ROUTES,
        "t.yaml:2:60: connect_ms must be between 1 and 600000, got 0");
}

static void route_errors(void **state)
{
    expect_err(PROVIDERS "routes:\n  - model: m\n    tiers: [[{provider: bakup, model: x}]]\n",
               "t.yaml:8:25: unknown provider 'bakup' (did you mean 'backup'?)");
    expect_err(PROVIDERS "routes:\n  - model: m\n    tiers: [[{provider: zzzzzz, model: x}]]\n",
               "t.yaml:8:25: unknown provider 'zzzzzz' (providers: primary, backup)");
    expect_err(PROVIDERS "routes:\n  - model: m\n    tiers: []\n",
               "t.yaml:8:12: route 'm': tiers is empty");
    expect_err(PROVIDERS "routes:\n  - model: m\n    tiers:\n      - []\n",
               "t.yaml:9:9: tier is empty: list at least one target");
    expect_err(PROVIDERS "routes:\n  - model: m\n"
                         "    tiers: [[{provider: primary, model: x, weight: 0}]]\n",
               "t.yaml:8:52: weight must be between 1 and 1000000, got 0");
    expect_err(PROVIDERS ROUTES "  - model: m\n    tiers: [[{provider: primary, model: x}]]\n",
               "t.yaml:10:12: duplicate model name 'm' (already used by route 'm' at line 7)");
    expect_err(PROVIDERS ROUTES
               "  - model: n\n    aliases: [a, m]\n    tiers: [[{provider: primary, model: x}]]\n",
               "t.yaml:11:18: duplicate model name 'm' (already used by route 'm' at line 7)");
    expect_err(PROVIDERS "routes:\n  - model: m\n    tiers: [[{provider: primary, model: x}]]\n"
                         "    hedge: {delay: 5}\n",
               "t.yaml:9:13: unknown key 'delay' in hedge (did you mean 'delay_ms'?)");
}

static void listen_errors(void **state)
{
    expect_err("listen: example.com:80\n" PROVIDERS ROUTES,
               "t.yaml:1:9: bad listen address 'example.com:80': host must be an IPv4 or IPv6 "
               "address (or localhost)");
    expect_err("listen: 127.0.0.1:99999\n" PROVIDERS ROUTES,
               "t.yaml:1:9: bad listen address '127.0.0.1:99999': port must be a number from 1 "
               "to 65535");
    expect_err("listen: '::1:80'\n" PROVIDERS ROUTES,
               "t.yaml:1:9: bad listen address '::1:80': write IPv6 addresses in brackets, e.g. "
               "[::1]:8080");
    expect_err("listen: '[::g]:80'\n" PROVIDERS ROUTES,
               "t.yaml:1:9: bad listen address '[::g]:80': not an IPv6 address inside [ ]");
}

static void yaml_syntax_errors(void **state)
{
    expect_err("listen: 127.0.0.1:8080\n  bad: indent\n",
               "t.yaml:2:6: YAML syntax error: mapping values are not allowed in this context");
    expect_err("providers: [a, b\n",
               "t.yaml:2:1: YAML syntax error: did not find expected ',' or ']' (while parsing "
               "a flow sequence that starts at line 1, column 12)");
    expect_err("a: *nope\n", "t.yaml:1:4: YAML syntax error: found undefined alias");
    expect_err(PROVIDERS ROUTES "---\nx: 1\n",
               "t.yaml:10:1: expected one YAML document, found another here");
}

/* Secrets must not appear in any message or in the printed table. */
static void secrets_never_leak(void **state)
{
    static const char SECRET[] = "sk-TOPSECRET-9876";
    setenv("BLT_SECRET", SECRET, 1);
    char err[BL_CONFIG_ERR_MAX];
    bl_config_t *c = NULL;
    static const char *const bad[] = {
        "providers:\n  - {name: p, base_url: 'http://x', api_key: [sk-TOPSECRET-9876]}\n" ROUTES,
        "providers:\n  - {name: p, base_url: '${BLT_SECRET}'}\n" ROUTES,
        "listen: ${BLT_SECRET}\n" PROVIDERS ROUTES,
        "server: {max_headers: '${BLT_SECRET}'}\n" PROVIDERS ROUTES,
        "keys: ['sha256:${BLT_SECRET}']\n" PROVIDERS ROUTES,
        PROVIDERS "routes:\n  - model: m\n    tiers: [[{provider: '${BLT_SECRET}', model: x}]]\n",
        "providers:\n  - {name: p, base_url: 'http://x', headers: {X-Key: "
        "\"${BLT_SECRET}\\n\"}}\n" ROUTES,
    };
    for (size_t i = 0; i < BL_ARRAY_LEN(bad); i++) {
        err[0] = '\0';
        assert_true(bl_config_parse(bad[i], strlen(bad[i]), "t.yaml", &c, err, sizeof err) < 0);
        assert_true(strncmp(err, "t.yaml:", 7) == 0);
        if (strstr(err, "TOPSECRET"))
            fail_msg("secret in error %zu: %s", i, err);
    }
    expect_err(
        "providers:\n  - {name: p, base_url: 'http://x', api_key: [sk-TOPSECRET-9876]}\n" ROUTES,
        "t.yaml:2:46: api_key: expected a string, got a list");
    expect_err("server: {max_headers: '${BLT_SECRET}'}\n" PROVIDERS ROUTES,
               "t.yaml:1:23: max_headers: expected a whole number, got a value from the "
               "environment");

    /* print: api keys, client keys, header values, URL passwords and queries */
    static const char GOOD[] =
        "keys: ['${BLT_SECRET}', plainclientkey-ABC]\n"
        "providers:\n"
        "  - name: p\n"
        "    base_url: https://user:hunter2@api.example.com/v1?key=QUERYSECRET\n"
        "    api_key: ${BLT_SECRET}\n"
        "    headers: {X-Extra-Auth: HEADERSECRET}\n"
        "  - name: q\n"
        "    base_url: http://127.0.0.1:9/\n"
        "    api_key: inline-APIKEY\n"
        "routes:\n"
        "  - model: m\n"
        "    aliases: [a1]\n"
        "    tiers: [[{provider: p, model: x, weight: 3}, {provider: q, model: y}]]\n"
        "    hedge: {delay_ms: 250}\n";
    c = parse_ok(GOOD);
    char *out = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&out, &len);
    assert_non_null(f);
    bl_config_print(c, f);
    fclose(f);
    static const char *const secrets[] = {
        "TOPSECRET", "hunter2", "QUERYSECRET", "HEADERSECRET", "APIKEY", "plainclientkey", "user:"};
    for (size_t i = 0; i < BL_ARRAY_LEN(secrets); i++)
        if (strstr(out, secrets[i]))
            fail_msg("'%s' printed:\n%s", secrets[i], out);
    /* ... while the table itself is there */
    static const char *const want[] = {
        "listen: 127.0.0.1:8080\n",
        "client keys: 2 (ids:",
        "base_url: https://api.example.com/v1?(query hidden)\n",
        "base_url: http://127.0.0.1:9\n",
        "api_key: set\n",
        "headers: X-Extra-Auth (values hidden)\n",
        "  m (aliases: a1) (line 11)\n",
        "    tier 1: p/x weight=3, q/y weight=1\n",
        "    hedging: after 250ms\n",
        "    attempts: 4 (retry default)\n",
        "    deadline: 120000ms (retry default)\n",
    };
    for (size_t i = 0; i < BL_ARRAY_LEN(want); i++)
        if (!strstr(out, want[i]))
            fail_msg("missing '%s' in:\n%s", want[i], out);
    assert_true(len > 20 && !strcmp(out + len - 17, "configuration OK\n"));
    free(out);
    bl_config_unref(c);
    unsetenv("BLT_SECRET");
}

/* Provider families and the response store (issue 8). */
static void families_and_store(void **state)
{
    (void)state;
    bl_config_t *c = parse_ok("redis: redis://:pw@127.0.0.1:6379/2\n"
                              "response_store: {enabled: yes, path: /var/lib/b/r.db, ttl_s: 60}\n"
                              "providers:\n"
                              "  - {name: a, type: anthropic, api_key: k}\n"
                              "  - {name: b, type: anthropic, base_url: 'http://127.0.0.1:1/v1',"
                              " version: '2024-01-01', beta: [x-1, y-2]}\n"
                              "  - {name: r, type: openai, api: responses, base_url: 'http://h/v1'}\n"
                              "  - {name: c, type: openai, base_url: 'http://h/v1'}\n"
                              "  - {name: p, type: ballast, base_url: 'http://h:8081/v1'}\n"
                              "  - {name: e, type: anthropic, beta: []}\n"
                              "routes:\n  - model: m\n    tiers: [[{provider: a, model: x}]]\n");
    assert_int_equal(c->providers[0].type, BL_PROVIDER_ANTHROPIC);
    assert_string_equal(c->providers[0].base_url, "https://api.anthropic.com/v1");
    assert_string_equal(c->providers[0].anthropic_version, "2023-06-01");
    assert_null(c->providers[0].anthropic_beta);
    assert_string_equal(c->providers[1].anthropic_version, "2024-01-01");
    assert_string_equal(c->providers[1].anthropic_beta, "x-1,y-2");
    assert_int_equal(c->providers[2].api, BL_API_RESPONSES);
    assert_int_equal(c->providers[3].api, BL_API_CHAT);
    assert_int_equal(c->providers[4].type, BL_PROVIDER_BALLAST);
    assert_null(c->providers[5].anthropic_beta); /* an empty list is no flags */
    assert_string_equal(c->redis_url, "redis://:pw@127.0.0.1:6379/2");
    assert_true(c->response_store.enabled);
    assert_string_equal(c->response_store.path, "/var/lib/b/r.db");
    assert_int_equal(c->response_store.ttl_s, 60);
    /* the redis URL holds a password: check-config never prints it */
    char *out = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&out, &n);
    bl_config_print(c, f);
    fclose(f);
    assert_null(strstr(out, "pw@"));
    assert_non_null(strstr(out, "response store: redis (url hidden)"));
    free(out);
    bl_config_unref(c);

    c = parse_ok(PROVIDERS ROUTES);
    assert_true(c->response_store.enabled); /* on by default, 30 days */
    assert_int_equal(c->response_store.ttl_s, 30u * 86400);
    assert_null(c->redis_url);
    bl_config_unref(c);

    expect_err("providers:\n  - {name: a, type: openai, api: graphql, base_url: 'http://h'}\n" ROUTES,
               "t.yaml:2:34: api: unknown value 'graphql' (known: chat, responses)");
    expect_err("providers:\n  - {name: a, type: anthropic, api: chat}\n" ROUTES,
               "t.yaml:2:37: provider 'a': 'api' is only for type openai");
    expect_err("providers:\n  - {name: a, type: openai, base_url: 'http://h', beta: x}\n" ROUTES,
               "t.yaml:2:57: provider 'a': 'beta' is only for type anthropic");
    expect_err("redis: http://x\n" PROVIDERS ROUTES,
               "t.yaml:1:8: redis: expected redis://host[:port][/db] or unix:/path");
    expect_err("response_store: {enabled: maybe}\n" PROVIDERS ROUTES,
               "t.yaml:1:27: enabled: expected true or false, got 'maybe'");
}

static void key_errors(void **state)
{
    expect_err("keys:\n  - sha256:abcd\n" PROVIDERS ROUTES,
               "t.yaml:2:5: keys: a 'sha256:' key must be followed by 64 hex digits");
    expect_err("keys:\n  - ''\n" PROVIDERS ROUTES, "t.yaml:2:5: keys: client key is empty");
    expect_err("keys: {a: b}\n" PROVIDERS ROUTES,
               "t.yaml:1:7: keys: expected a list, got a mapping");
}

static void load_from_file(void **state)
{
    char path[] = "/tmp/ballast-test-config-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    static const char Y[] = PROVIDERS ROUTES;
    assert_int_equal(write(fd, Y, sizeof Y - 1), (ssize_t)(sizeof Y - 1));
    close(fd);
    char err[BL_CONFIG_ERR_MAX];
    bl_config_t *c = NULL;
    assert_int_equal(bl_config_load(path, &c, err, sizeof err), 0);
    assert_string_equal(c->file, path);
    assert_int_equal(c->n_routes, 1);
    bl_config_unref(c);
    unlink(path);
    assert_int_equal(bl_config_load(path, &c, err, sizeof err), BL_ENOENT);
    assert_null(c);
    assert_non_null(strstr(err, "cannot open"));
    assert_true(strncmp(err, path, strlen(path)) == 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(full_config_parses), cmocka_unit_test(defaults_are_filled_in),
        cmocka_unit_test(listen_forms),       cmocka_unit_test(sizes_with_units),
        cmocka_unit_test(env_expansion),      cmocka_unit_test(unknown_keys_suggest),
        cmocka_unit_test(wrong_types),        cmocka_unit_test(missing_required_keys),
        cmocka_unit_test(out_of_range),       cmocka_unit_test(provider_errors),
        cmocka_unit_test(route_errors),       cmocka_unit_test(listen_errors),
        cmocka_unit_test(yaml_syntax_errors), cmocka_unit_test(secrets_never_leak),
        cmocka_unit_test(key_errors),         cmocka_unit_test(load_from_file),
        cmocka_unit_test(families_and_store),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
