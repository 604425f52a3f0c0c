#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "auth/auth.h"
#include "config/config.h"

static const bl_str_t NONE = {NULL, 0};

static bl_str_t S(const char *s)
{
    return (bl_str_t){s, strlen(s)};
}

/* Three keys: "alpha", "bravo", "charlie". */
static unsigned char keys[3][32];

static int setup(void **state)
{
    static const char *const plain[] = {"alpha", "bravo", "charlie"};
    for (size_t i = 0; i < 3; i++)
        if (bl_auth_hash_key(plain[i], strlen(plain[i]), keys[i]))
            return -1;
    return 0;
}

static void hash_is_sha256(void **state)
{
    unsigned char h[32];
    char hex[65];
    assert_int_equal(bl_auth_hash_key("test", 4, h), 0);
    bl_hex(h, 32, hex);
    assert_string_equal(hex, "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08");
    char id[BL_AUTH_KEY_ID_LEN];
    bl_auth_key_id(h, id);
    assert_string_equal(id, "9f86d081");
}

static void bearer_accepted(void **state)
{
    size_t idx = 99;
    assert_int_equal(bl_auth_verify(keys, 3, S("Bearer bravo"), NONE, &idx), BL_AUTH_OK);
    assert_int_equal(idx, 1);
    assert_int_equal(bl_auth_verify(keys, 3, S("Bearer charlie"), NONE, &idx), BL_AUTH_OK);
    assert_int_equal(idx, 2);
    assert_int_equal(bl_auth_verify(keys, 3, S("Bearer alpha"), NONE, &idx), BL_AUTH_OK);
    assert_int_equal(idx, 0);
    /* scheme is case-insensitive; extra spaces around the token are fine */
    assert_true(bl_auth_check(keys, 3, S("bearer alpha"), NONE));
    assert_true(bl_auth_check(keys, 3, S("BEARER   alpha  "), NONE));
    /* the header value is length-bounded, not NUL-terminated */
    bl_str_t cut = {"Bearer alphaXYZ", 12};
    assert_true(bl_auth_check(keys, 3, cut, NONE));
}

static void x_api_key_accepted(void **state)
{
    size_t idx = 99;
    assert_int_equal(bl_auth_verify(keys, 3, NONE, S("charlie"), &idx), BL_AUTH_OK);
    assert_int_equal(idx, 2);
    /* an empty Authorization header does not hide x-api-key */
    assert_true(bl_auth_check(keys, 3, S(""), S("alpha")));
    /* a malformed Authorization falls back to x-api-key */
    assert_true(bl_auth_check(keys, 3, S("Basic Zm9vOmJhcg=="), S("bravo")));
}

static void wrong_key_denied(void **state)
{
    size_t idx = 99;
    assert_int_equal(bl_auth_verify(keys, 3, S("Bearer alphA"), NONE, &idx), BL_AUTH_DENIED);
    assert_int_equal(idx, SIZE_MAX);
    assert_int_equal(bl_auth_verify(keys, 3, NONE, S("delta"), NULL), BL_AUTH_DENIED);
    assert_int_equal(bl_auth_verify(keys, 3, S("Bearer alph"), NONE, NULL), BL_AUTH_DENIED);
    assert_int_equal(bl_auth_verify(keys, 3, S("Bearer alphaa"), NONE, NULL), BL_AUTH_DENIED);
    /* a well-formed bearer wins over x-api-key: a wrong bearer is denied */
    assert_int_equal(bl_auth_verify(keys, 3, S("Bearer nope"), S("alpha"), NULL), BL_AUTH_DENIED);
    /* the hash itself is not a key */
    char hex[65];
    bl_hex(keys[0], 32, hex);
    assert_false(bl_auth_check(keys, 3, NONE, S(hex)));
    assert_false(bl_auth_check(keys, 3, S("Bearer "), S(hex)));
}

static void missing_header(void **state)
{
    assert_int_equal(bl_auth_verify(keys, 3, NONE, NONE, NULL), BL_AUTH_MISSING);
    assert_int_equal(bl_auth_verify(keys, 3, S(""), S(""), NULL), BL_AUTH_MISSING);
    assert_int_equal(bl_auth_verify(keys, 3, NONE, S("   "), NULL), BL_AUTH_MISSING);
    assert_false(bl_auth_check(keys, 3, NONE, NONE));
}

static void malformed_bearer(void **state)
{
    static const char *const bad[] = {
        "Bearer",        /* no token */
        "Bearer ",       /* empty token */
        "Bearer    ",    /* only spaces */
        "Beareralpha",   /* no space */
        "Bearer al pha", /* space inside */
        "Basic YWxwaGE=", "alpha", "Token alpha",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (bl_auth_verify(keys, 3, S(bad[i]), NONE, NULL) != BL_AUTH_MALFORMED)
            fail_msg("'%s' not rejected as malformed", bad[i]);
    }
    assert_non_null(strstr(bl_auth_reason(BL_AUTH_MALFORMED), "Bearer"));
    assert_non_null(strstr(bl_auth_reason(BL_AUTH_MISSING), "x-api-key"));
}

static void no_keys_allows_everything(void **state)
{
    size_t idx = 0;
    assert_int_equal(bl_auth_verify(NULL, 0, NONE, NONE, &idx), BL_AUTH_OK);
    assert_int_equal(idx, SIZE_MAX);
    assert_true(bl_auth_check(NULL, 0, S("Bearer whatever"), NONE));
    assert_true(bl_auth_check(NULL, 0, S("garbage"), NONE));
}

/* The hashes the config module stores are the ones auth checks against. */
static void works_with_config_hashes(void **state)
{
    static const char Y[] =
        "keys:\n"
        "  - sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08\n"
        "  - second-key\n"
        "providers: [{name: p, base_url: 'http://127.0.0.1:1'}]\n"
        "routes: [{model: m, tiers: [[{provider: p, model: x}]]}]\n";
    char err[BL_CONFIG_ERR_MAX];
    bl_config_t *c = NULL;
    assert_int_equal(bl_config_parse(Y, sizeof Y - 1, "k.yaml", &c, err, sizeof err), 0);
    size_t idx = 0;
    assert_int_equal(bl_auth_verify((const unsigned char(*)[32])c->key_hashes, c->n_keys,
                                    S("Bearer test"), NONE, &idx),
                     BL_AUTH_OK);
    assert_int_equal(idx, 0);
    assert_int_equal(bl_auth_verify((const unsigned char(*)[32])c->key_hashes, c->n_keys, NONE,
                                    S("second-key"), &idx),
                     BL_AUTH_OK);
    assert_int_equal(idx, 1);
    assert_false(bl_auth_check((const unsigned char(*)[32])c->key_hashes, c->n_keys,
                               S("Bearer sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822c"
                                 "d15d6c15b0f00a08"),
                               NONE));
    bl_config_unref(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(hash_is_sha256),
        cmocka_unit_test(bearer_accepted),
        cmocka_unit_test(x_api_key_accepted),
        cmocka_unit_test(wrong_key_denied),
        cmocka_unit_test(missing_header),
        cmocka_unit_test(malformed_bearer),
        cmocka_unit_test(no_keys_allows_everything),
        cmocka_unit_test(works_with_config_hashes),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
