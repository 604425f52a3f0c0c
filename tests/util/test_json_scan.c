#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "util/json_scan.h"

static int scan(const char *s, bl_json_member_t *m, size_t n, const char **why)
{
    size_t where;
    return bl_json_scan_object(s, strlen(s), m, n, why, &where);
}

static void finds_top_level_members_only(void **state)
{
    const char *s = "{\"messages\":[{\"model\":\"inner\"}],\"model\" : \"gpt-4o\",\"stream\":true,"
                    "\"x\":{\"model\":1}}";
    bl_json_member_t m[] = {{.key = "model"}, {.key = "stream"}, {.key = "absent"}};
    assert_int_equal(scan(s, m, 3, NULL), 0);
    assert_int_equal(m[0].kind, BL_JSON_STRING);
    assert_int_equal(m[0].count, 1);
    assert_memory_equal(s + m[0].off, "\"gpt-4o\"", m[0].len);
    assert_int_equal(m[1].kind, BL_JSON_TRUE);
    assert_int_equal(m[2].kind, BL_JSON_NONE);
}

static void escaped_key_still_matches(void **state)
{
    const char *s = "{\"mod\\u0065l\":\"a\\\"b\"}";
    bl_json_member_t m[] = {{.key = "model"}};
    assert_int_equal(scan(s, m, 1, NULL), 0);
    assert_int_equal(m[0].kind, BL_JSON_STRING);
    char out[32];
    assert_int_equal(bl_json_unescape(s + m[0].off, m[0].len, out, sizeof out), 3);
    assert_string_equal(out, "a\"b");
}

static void duplicate_members_are_counted(void **state)
{
    bl_json_member_t m[] = {{.key = "model"}};
    assert_int_equal(scan("{\"model\":\"a\",\"model\":\"b\"}", m, 1, NULL), 0);
    assert_int_equal(m[0].count, 2);
}

static void rejects_invalid_documents(void **state)
{
    static const char *bad[] = {
        "", "[]", "{", "{\"a\"}", "{\"a\":}", "{\"a\":1,}", "{\"a\":01}", "{\"a\":1.}",
        "{\"a\":-}", "{\"a\":tru}", "{\"a\":\"\x01\"}", "{\"a\":\"\\x\"}", "{\"a\":\"\\u12\"}",
        "{\"a\":\"\xc3\"}", "{\"a\":\"\xed\xa0\x80\"}", "{\"a\":\"\xc0\xaf\"}", "{} x",
        "{\"a\":[1 2]}", "{\"a\":{\"b\" 1}}", "{'a':1}", "{\"a\":NaN}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        const char *why = NULL;
        bl_json_member_t m[] = {{.key = "a"}};
        assert_int_not_equal(scan(bad[i], m, 1, &why), 0);
        assert_non_null(why);
    }
}

static void accepts_valid_documents(void **state)
{
    static const char *good[] = {
        "{}", " {\"a\" : [ ] } ", "{\"a\":-0.5e+10}", "{\"a\":\"\xe2\x82\xac \xf0\x9f\x98\x80\"}",
        "{\"a\":[true,false,null,{\"b\":[]}]}", "{\"a\":\"\\ud83d\\ude00\\n\"}",
    };
    for (size_t i = 0; i < sizeof good / sizeof *good; i++) {
        bl_json_member_t m[] = {{.key = "a"}};
        assert_int_equal(scan(good[i], m, 1, NULL), 0);
    }
}

static void depth_is_limited(void **state)
{
    char s[1024] = "{\"a\":";
    size_t n = strlen(s);
    for (int i = 0; i < 300; i++)
        s[n++] = '[';
    s[n] = 0;
    const char *why = NULL;
    bl_json_member_t m[] = {{.key = "a"}};
    assert_int_not_equal(scan(s, m, 1, &why), 0);
    assert_string_equal(why, "nesting too deep");
}

static void unescape_handles_surrogates(void **state)
{
    char out[16];
    const char *s = "\"\\ud83d\\ude00\"";
    assert_int_equal(bl_json_unescape(s, strlen(s), out, sizeof out), 4);
    assert_memory_equal(out, "\xf0\x9f\x98\x80", 4);
    assert_int_equal(bl_json_unescape("\"abcdef\"", 8, out, 4), -1); /* too small */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(finds_top_level_members_only),
        cmocka_unit_test(escaped_key_still_matches),
        cmocka_unit_test(duplicate_members_are_counted),
        cmocka_unit_test(rejects_invalid_documents),
        cmocka_unit_test(accepts_valid_documents),
        cmocka_unit_test(depth_is_limited),
        cmocka_unit_test(unescape_handles_surrogates),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
