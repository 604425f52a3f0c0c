/* Zero-config: configs built from fake environments and a temporary model
 * store. Model files are empty: auto only lists them, the engine opens them. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include <ballast/errors.h>

#include "config/config.h"

typedef struct {
    char dir[64];   /* the model store */
    char demo[128]; /* a file standing in for the demo model */
} fixture_t;

static void touch(const char *dir, const char *name)
{
    char p[512];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "wb");
    assert_non_null(f);
    fclose(f);
}

static int setup(void **state)
{
    fixture_t *fx = calloc(1, sizeof *fx);
    if (!fx)
        return -1;
    strcpy(fx->dir, "/tmp/bl-auto-XXXXXX");
    if (!mkdtemp(fx->dir))
        return -1;
    snprintf(fx->demo, sizeof fx->demo, "%s-demo.gguf", fx->dir);
    FILE *f = fopen(fx->demo, "wb");
    if (!f)
        return -1;
    fclose(f);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *fx = *state;
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' '%s'", fx->dir, fx->demo);
    int rc = system(cmd);
    free(fx);
    return rc == 0 ? 0 : -1;
}

/* Build with env and the fixture's store; demo "" (none) unless given. */
static int build(fixture_t *fx, char **env, const char *demo, bl_config_t **c, char *err,
                 char *notes, size_t notes_len)
{
    FILE *nf = notes ? fmemopen(notes, notes_len, "w") : NULL;
    bl_auto_opts_t o = {
        .env = env, .models_dir = fx->dir, .demo_model = demo ? demo : "", .notes = nf};
    int rc = bl_config_auto(&o, c, err, BL_CONFIG_ERR_MAX);
    if (nf)
        fclose(nf);
    return rc;
}

static bl_config_t *build_ok(fixture_t *fx, char **env, const char *demo, char *notes,
                             size_t notes_len)
{
    char err[BL_CONFIG_ERR_MAX] = "";
    bl_config_t *c = NULL;
    int rc = build(fx, env, demo, &c, err, notes, notes_len);
    if (rc)
        fail_msg("bl_config_auto failed: %s", err);
    assert_non_null(c);
    return c;
}

static const char *tier_provider(const bl_config_t *c, const bl_route_cfg_t *r, size_t t)
{
    assert_true(t < r->n_tiers);
    assert_int_equal(r->tiers[t].n_targets, 1);
    return c->providers[r->tiers[t].targets[0].provider].name;
}

static const char *tier_model(const bl_route_cfg_t *r, size_t t)
{
    return r->tiers[t].targets[0].model;
}

/* Every target on a local provider sends that provider's own model name. */
static void check_local_targets(const bl_config_t *c)
{
    for (size_t i = 0; i < c->n_routes; i++)
        for (size_t t = 0; t < c->routes[i].n_tiers; t++) {
            const bl_target_cfg_t *tg = &c->routes[i].tiers[t].targets[0];
            const bl_provider_cfg_t *p = &c->providers[tg->provider];
            if (p->type != BL_PROVIDER_LOCAL)
                continue;
            char want[256];
            snprintf(want, sizeof want, "local-%s", tg->model);
            assert_string_equal(p->name, want);
        }
}

static const bl_route_cfg_t *route(const bl_config_t *c, const char *name)
{
    const bl_route_cfg_t *r = bl_config_route(c, name, strlen(name));
    if (!r)
        fail_msg("no route %s", name);
    return r;
}

static char *print_to_string(const bl_config_t *c)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    assert_non_null(f);
    bl_config_print(c, f);
    fclose(f);
    return buf;
}

static void test_nothing_to_serve(void **state)
{
    fixture_t *fx = *state;
    char *env[] = {"HOME=/nonexistent", "ANTHROPIC_API_KEY=sk ant bad", NULL};
    char err[BL_CONFIG_ERR_MAX] = "";
    bl_config_t *c = (bl_config_t *)1;
    assert_int_equal(build(fx, env, NULL, &c, err, NULL, 0), BL_ENOENT);
    assert_null(c);
    assert_non_null(strstr(err, "nothing to serve"));
    assert_non_null(strstr(err, "ballast models pull"));
    assert_non_null(strstr(err, fx->dir));
}

static void test_openai_and_local(void **state)
{
    fixture_t *fx = *state;
    touch(fx->dir, "Qwen2.5 0.5B (instruct).gguf");
    touch(fx->dir, "notes.txt");
    touch(fx->dir, ".hidden.gguf");
    char *env[] = {"PATH=/bin", "OPENAI_API_KEY=sk-secret-123", "BALLAST_LISTEN=127.0.0.1:9999",
                   NULL};
    char notes[2048] = "";
    bl_config_t *c = build_ok(fx, env, NULL, notes, sizeof notes);
    assert_int_equal(c->n_providers, 2);
    const bl_provider_cfg_t *oa = bl_config_provider(c, "openai");
    assert_non_null(oa);
    assert_int_equal(oa->type, BL_PROVIDER_OPENAI);
    assert_string_equal(oa->base_url, "https://api.openai.com/v1");
    assert_string_equal(oa->api_key, "sk-secret-123");
    /* The name keeps letters, digits, '.', '_', '-'; anything else is '-'. */
    const bl_provider_cfg_t *lo = bl_config_provider(c, "local-Qwen2.5-0.5B--instruct-");
    assert_non_null(lo);
    assert_int_equal(lo->type, BL_PROVIDER_LOCAL);
    char want[256];
    snprintf(want, sizeof want, "%s/Qwen2.5 0.5B (instruct).gguf", fx->dir);
    assert_string_equal(lo->local.model_path, want);
    /* Defaults as a file that does not mention them. */
    assert_int_equal(lo->local.context, 4096);
    assert_int_equal(lo->local.slots, 2);
    assert_int_equal(oa->timeouts.connect_ms, 2000);
    assert_int_equal(c->retry.max_attempts, 4);
    assert_int_equal(c->server.max_connections, 1024);
    assert_string_equal(c->log_level, "info");
    assert_string_equal(c->listen.host, "127.0.0.1");
    assert_int_equal(c->listen.port, 9999);

    const bl_route_cfg_t *r = route(c, "gpt-4o-mini");
    assert_ptr_equal(route(c, "default"), r);
    assert_int_equal(r->n_tiers, 2);
    assert_string_equal(tier_provider(c, r, 0), "openai");
    assert_string_equal(tier_model(r, 0), "gpt-4o-mini");
    assert_string_equal(tier_provider(c, r, 1), "local-Qwen2.5-0.5B--instruct-");
    assert_int_equal(r->line, 0);
    r = route(c, "gpt-4.1-nano");
    assert_string_equal(tier_model(r, 0), "gpt-4.1-nano");
    /* The local model answers to its own name, alone. */
    r = route(c, "Qwen2.5-0.5B--instruct-");
    assert_int_equal(r->n_tiers, 1);
    assert_string_equal(tier_provider(c, r, 0), "local-Qwen2.5-0.5B--instruct-");
    assert_null(bl_config_route(c, "notes", 5));
    assert_null(bl_config_provider(c, "local-.hidden"));

    char *printed = print_to_string(c);
    assert_null(strstr(printed, "sk-secret-123"));
    assert_non_null(strstr(printed, "api_key: set"));
    assert_non_null(strstr(printed, "zero-config"));
    assert_null(strstr(printed, "(line"));
    free(printed);
    assert_non_null(strstr(notes, "OPENAI_API_KEY found"));
    assert_null(strstr(notes, "sk-secret"));
    bl_config_unref(c);
}

static void test_clouds_in_order_with_their_models(void **state)
{
    fixture_t *fx = *state;
    char *env[] = {"DEEPSEEK_API_KEY=d",
                   "GROQ_API_KEY=g",
                   "OPENROUTER_API_KEY=o",
                   "MISTRAL_API_KEY=m",
                   "TOGETHER_API_KEY=t",
                   "OPENAI_API_KEY=k",
                   "OPENAI_BASE_URL=http://127.0.0.1:1234/v1/",
                   "ANTHROPIC_API_KEY=a",
                   NULL};
    char notes[2048] = "";
    bl_config_t *c = build_ok(fx, env, NULL, notes, sizeof notes);
    assert_int_equal(c->n_providers, 7); /* no local model, no demo */
    assert_string_equal(bl_config_provider(c, "openai")->base_url, "http://127.0.0.1:1234/v1");
    assert_string_equal(bl_config_provider(c, "groq")->base_url, "https://api.groq.com/openai/v1");
    const bl_provider_cfg_t *an = bl_config_provider(c, "anthropic");
    assert_non_null(an);
    assert_int_equal(an->type, BL_PROVIDER_ANTHROPIC);
    assert_string_equal(an->base_url, "https://api.anthropic.com/v1");
    assert_non_null(strstr(notes, "ANTHROPIC_API_KEY found: provider 'anthropic'"));

    static const char *const order[] = {"openai",  "openrouter", "groq",     "together",
                                        "mistral", "deepseek",   "anthropic"};
    const bl_route_cfg_t *small = route(c, "gpt-4o-mini"), *large = route(c, "gpt-4o");
    assert_int_equal(small->n_tiers, 7);
    for (size_t i = 0; i < 7; i++) {
        assert_string_equal(tier_provider(c, small, i), order[i]);
        assert_string_equal(tier_provider(c, large, i), order[i]);
    }
    /* the Anthropic tier of a GPT route has a Claude model of its class */
    assert_string_equal(small->tiers[6].targets[0].model, "claude-haiku-4-5");
    assert_string_equal(large->tiers[6].targets[0].model, "claude-sonnet-4-5");
    /* Claude Code's names: Anthropic first with that model, then the others */
    const bl_route_cfg_t *sonnet = route(c, "claude-sonnet-4-5");
    assert_int_equal(sonnet->n_tiers, 7);
    assert_string_equal(tier_provider(c, sonnet, 0), "anthropic");
    assert_string_equal(sonnet->tiers[0].targets[0].model, "claude-sonnet-4-5");
    assert_string_equal(tier_provider(c, sonnet, 1), "openai");
    assert_string_equal(sonnet->tiers[1].targets[0].model, "gpt-4o");
    assert_string_equal(tier_provider(c, route(c, "claude-haiku-4-5"), 1), "openai");
    assert_string_equal(route(c, "claude-haiku-4-5")->tiers[1].targets[0].model, "gpt-4o-mini");
    /* Enough attempts to reach the last tier. */
    assert_true(small->max_attempts >= small->n_tiers);
    assert_string_equal(tier_model(small, 1), "openai/gpt-4o-mini");
    assert_string_equal(tier_model(large, 1), "openai/gpt-4o");
    assert_string_equal(tier_model(small, 2), "llama-3.1-8b-instant");
    assert_string_equal(tier_model(large, 2), "llama-3.3-70b-versatile");
    assert_string_equal(tier_model(small, 4), "mistral-small-latest");
    assert_string_equal(tier_model(large, 4), "mistral-large-latest");
    bl_config_unref(c);
}

static void test_missing_or_bad_key_means_no_cloud(void **state)
{
    fixture_t *fx = *state;
    touch(fx->dir, "m.gguf");
    char *env[] = {"OPENAI_API_KEY=", "GROQ_API_KEY=bad key\r\nX: y",
                   "OPENAI_BASE_URL=http://127.0.0.1:1/v1", NULL};
    char notes[2048] = "";
    bl_config_t *c = build_ok(fx, env, NULL, notes, sizeof notes);
    assert_int_equal(c->n_providers, 1);
    assert_null(bl_config_provider(c, "openai"));
    assert_null(bl_config_provider(c, "groq"));
    const bl_route_cfg_t *r = route(c, "gpt-4o-mini");
    assert_int_equal(r->n_tiers, 1);
    assert_string_equal(tier_provider(c, r, 0), "local-m");
    assert_non_null(strstr(notes, "GROQ_API_KEY has spaces or control characters"));
    assert_null(strstr(notes, "bad key"));
    assert_non_null(strstr(notes, "no cloud API key"));
    bl_config_unref(c);
}

static void test_demo_model_when_store_is_empty(void **state)
{
    fixture_t *fx = *state;
    char *env[] = {NULL};
    char notes[2048] = "";
    bl_config_t *c = build_ok(fx, env, fx->demo, notes, sizeof notes);
    assert_int_equal(c->n_providers, 1);
    const bl_provider_cfg_t *p = bl_config_provider(c, "local-stories260K");
    assert_non_null(p);
    assert_string_equal(p->local.model_path, fx->demo);
    assert_string_equal(tier_provider(c, route(c, "gpt-4o-mini"), 0), "local-stories260K");
    assert_non_null(route(c, "stories260K"));
    assert_non_null(strstr(notes, "children's stories"));
    assert_non_null(strstr(notes, "ballast models pull qwen2.5-0.5b"));
    bl_config_unref(c);

    /* A model in the store wins over the demo. */
    touch(fx->dir, "real.gguf");
    c = build_ok(fx, env, fx->demo, NULL, 0);
    assert_int_equal(c->n_providers, 1);
    assert_non_null(bl_config_provider(c, "local-real"));
    bl_config_unref(c);
}

static void test_names_clash_and_odd_files(void **state)
{
    fixture_t *fx = *state;
    touch(fx->dir, "a b.gguf");
    touch(fx->dir, "a_b.gguf");
    touch(fx->dir, "a-b.gguf");
    touch(fx->dir, "gpt-4o.gguf");      /* would shadow a gpt route */
    touch(fx->dir, "co$t.GGUF");        /* '$' must not start an expansion */
    touch(fx->dir, "x\"y\\z.gguf");     /* quoting */
    touch(fx->dir, "bad\xff.gguf");     /* not UTF-8: cannot be written in YAML */
    touch(fx->dir, "nel\xc2\x85.gguf"); /* U+0085, a YAML line break */
    char sub[128];
    snprintf(sub, sizeof sub, "%s/dir.gguf", fx->dir);
    assert_int_equal(mkdir(sub, 0700), 0);
    char *env[] = {NULL};
    char notes[2048] = "";
    bl_config_t *c = build_ok(fx, env, NULL, notes, sizeof notes);
    assert_int_equal(c->n_providers, 6);
    assert_non_null(strstr(notes, "not valid UTF-8"));
    /* Sorted by name, later clashes numbered. */
    assert_non_null(bl_config_provider(c, "local-a-b"));
    assert_non_null(bl_config_provider(c, "local-a-b-2"));
    assert_non_null(bl_config_provider(c, "local-a_b"));
    assert_null(bl_config_provider(c, "local-dir"));
    const bl_provider_cfg_t *cost = bl_config_provider(c, "local-co-t");
    assert_non_null(cost);
    assert_non_null(strstr(cost->local.model_path, "/co$t.GGUF"));
    const bl_provider_cfg_t *q = bl_config_provider(c, "local-x-y-z");
    assert_non_null(q);
    assert_non_null(strstr(q->local.model_path, "/x\"y\\z.gguf"));
    /* gpt-4o stays the cloud-style route; the file is not given that name. */
    const bl_route_cfg_t *r = route(c, "gpt-4o");
    assert_int_equal(r->n_tiers, 1);
    check_local_targets(c);
    /* Each local model has its route, to itself. */
    static const char *const own[] = {"a-b", "a-b-2", "a_b", "co-t", "x-y-z"};
    for (size_t i = 0; i < 5; i++) {
        r = route(c, own[i]);
        assert_int_equal(r->n_tiers, 1);
        assert_string_equal(tier_model(r, 0), own[i]);
    }
    for (size_t i = 0; i < c->n_providers; i++)
        for (size_t j = i + 1; j < c->n_providers; j++)
            assert_string_not_equal(c->providers[i].name, c->providers[j].name);
    bl_config_unref(c);
}

static void test_bad_listen_is_an_error(void **state)
{
    fixture_t *fx = *state;
    touch(fx->dir, "m.gguf");
    char *env[] = {"BALLAST_LISTEN=example.com:80", NULL};
    char err[BL_CONFIG_ERR_MAX] = "";
    bl_config_t *c = NULL;
    assert_true(build(fx, env, NULL, &c, err, NULL, 0) < 0);
    assert_null(c);
    assert_non_null(strstr(err, "bad listen address"));
}

static void test_default_store_from_home(void **state)
{
    fixture_t *fx = *state;
    char home[128], store[256];
    snprintf(home, sizeof home, "%s/home", fx->dir);
    snprintf(store, sizeof store, "%s/.local/share/ballast/models", home);
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s' && touch '%s/h.gguf'", store, store);
    assert_int_equal(system(cmd), 0);
    char henv[160], menv[160];
    snprintf(henv, sizeof henv, "HOME=%s", home);
    char *env[] = {henv, NULL};
    bl_auto_opts_t o = {.env = env, .demo_model = ""};
    char err[BL_CONFIG_ERR_MAX] = "";
    bl_config_t *c = NULL;
    assert_int_equal(bl_config_auto(&o, &c, err, sizeof err), 0);
    assert_non_null(bl_config_provider(c, "local-h"));
    bl_config_unref(c);
    /* BALLAST_MODELS wins over HOME. */
    touch(fx->dir, "top.gguf");
    snprintf(menv, sizeof menv, "BALLAST_MODELS=%s", fx->dir);
    char *env2[] = {henv, menv, NULL};
    o.env = env2;
    assert_int_equal(bl_config_auto(&o, &c, err, sizeof err), 0);
    assert_non_null(bl_config_provider(c, "local-top"));
    assert_null(bl_config_provider(c, "local-h"));
    bl_config_unref(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_nothing_to_serve, setup, teardown),
        cmocka_unit_test_setup_teardown(test_openai_and_local, setup, teardown),
        cmocka_unit_test_setup_teardown(test_clouds_in_order_with_their_models, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_or_bad_key_means_no_cloud, setup, teardown),
        cmocka_unit_test_setup_teardown(test_demo_model_when_store_is_empty, setup, teardown),
        cmocka_unit_test_setup_teardown(test_names_clash_and_odd_files, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_listen_is_an_error, setup, teardown),
        cmocka_unit_test_setup_teardown(test_default_store_from_home, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
