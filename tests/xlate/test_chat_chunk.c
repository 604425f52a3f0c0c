/* The router and the chat reader read stream chunks without building a JSON tree
 * (bl_xchat_chunk_read); whenever it says it read one, what it read must be
 * what jansson reads. Checked on hand-written chunks and on many mutations. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <jansson.h>

#include "xlate/xlate.h"

static bool nonempty(json_t *o, const char *k)
{
    json_t *v = json_object_get(o, k);
    return json_is_string(v) && json_string_length(v) > 0;
}

/* 1 when it agreed with jansson, 0 when it declined (-1), and fails the test
 * on a disagreement. */
static int agrees(const char *s, size_t n)
{
    bl_xchat_chunk_t ck;
    if (bl_xchat_chunk_read(s, n, &ck) != 0)
        return 0;
    json_t *root = json_loadb(s, n, 0, NULL);
    assert_true(json_is_object(root));
    assert_int_equal(ck.error, json_object_get(root, "error") != NULL);
    json_t *ch = json_object_get(root, "choices");
    assert_int_equal(ck.choices_array, json_is_array(ch));
    if (json_is_array(ch)) {
        assert_int_equal(ck.n_choices, json_array_size(ch));
        bool shows = false;
        size_t i;
        json_t *c;
        json_array_foreach(ch, i, c) {
            json_t *d = json_object_get(c, "delta"), *fr = json_object_get(c, "finish_reason");
            shows |= nonempty(c, "text") || (fr && !json_is_null(fr)) ||
                     (json_is_object(d) && (nonempty(d, "content") || nonempty(d, "refusal") ||
                                            json_object_get(d, "tool_calls") ||
                                            json_object_get(d, "function_call")));
        }
        assert_int_equal(ck.any_shows, shows);
        json_t *c0 = json_array_get(ch, 0), *d = json_object_get(c0, "delta");
        json_t *t = json_is_object(d) ? json_object_get(d, "content") : json_object_get(c0, "text");
        if (json_is_string(t)) {
            assert_non_null(ck.text0.p);
            char buf[4096];
            long k = bl_json_unescape(ck.text0.p, ck.text0.n, buf, sizeof buf);
            assert_int_equal(k, (long)json_string_length(t));
            assert_memory_equal(buf, json_string_value(t), (size_t)k);
        } else {
            assert_null(ck.text0.p);
        }
    }
    json_decref(root);
    return 1;
}

static const char *CHUNKS[] = {
    ("{\"id\":\"x\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},"
     "\"finish_reason\":null}]}"),
    "{\"choices\":[{\"delta\":{\"content\":\"Hello \\\"w\\u00f6rld\\\"\\n\"},\"finish_reason\":null}]}",
    "{\"choices\":[{\"delta\":{},\"finish_reason\":\"stop\"}],\"usage\":null}",
    "{\"choices\":[],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":7,\"total_tokens\":12}}",
    "{\"choices\":[{\"text\":\" once\",\"index\":0,\"finish_reason\":null}]}",
    "{\"choices\":[{\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"{\"}}]}}]}",
    "{\"error\":{\"message\":\"overloaded\"}}",
    "{\"choices\":[{\"delta\":{\"refusal\":\"no\"}},{\"delta\":{\"content\":\"b\"}}]}",
    "{\"choices\":{\"not\":\"an array\"}}",
    "{\"choices\":[{\"delta\":{\"content\":\"\\ud83d\\ude00 emoji\"}}]}",
};

static void hand_written_chunks_agree(void **state)
{
    int read = 0;
    for (size_t i = 0; i < sizeof CHUNKS / sizeof *CHUNKS; i++)
        read += agrees(CHUNKS[i], strlen(CHUNKS[i]));
    /* the common shapes must not need the fallback */
    assert_true(read >= 8);
}

static void mutated_chunks_agree_or_decline(void **state)
{
    uint64_t x = 12345;
    char buf[512];
    int read = 0;
    for (int it = 0; it < 40000; it++) {
        const char *base = CHUNKS[it % (sizeof CHUNKS / sizeof *CHUNKS)];
        size_t n = strlen(base);
        memcpy(buf, base, n);
        int muts = 1 + it % 3;
        for (int m = 0; m < muts; m++) {
            x = x * 6364136223846793005ull + 1442695040888963407ull;
            size_t pos = (size_t)(x >> 33) % n;
            static const char alphabet[] = "\"\\{}[],:0 9eE.-nultrfa\x01\xc3\xa9uU";
            buf[pos] = alphabet[(x >> 20) % (sizeof alphabet - 1)];
        }
        read += agrees(buf, n);
    }
    assert_true(read > 1000); /* mutations that stay valid are read, not all declined */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(hand_written_chunks_agree),
        cmocka_unit_test(mutated_chunks_agree_or_decline),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
