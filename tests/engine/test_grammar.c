/*
 * Grammar-constrained sampling: the JSON Schema compiler (accepted subset,
 * errors naming the construct and where), the matcher on byte strings, the
 * vocabulary mask on a small synthetic vocabulary, and generation with real
 * models whose every output must parse and validate against the schema
 * (checked here by walking the jansson tree against the schema).
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <jansson.h>

#include "engine/grammar/grammar.h"
#include "engine/grammar/match_impl.h"
#include "test_files.h"

/* ---- helpers ------------------------------------------------------------- */

static bl_grammar_t *compile_ok(const char *schema)
{
    char err[256] = "";
    bl_grammar_t *g = NULL;
    int rc = bl_grammar_from_schema(schema, strlen(schema), &g, err, sizeof err);
    if (rc != 0)
        fail_msg("schema %s: %s", schema, err);
    assert_non_null(g);
    return g;
}

/* Whole text accepted as a complete value? */
static bool full_match(const bl_grammar_t *g, const char *text)
{
    bl_gmatch_t *m = NULL;
    assert_int_equal(bl_gmatch_new(g, &m), 0);
    bool ok = bl_gmatch_advance(m, text, strlen(text)) == 0 && bl_gmatch_complete(m);
    bl_gmatch_free(m);
    return ok;
}

static void expect(const char *schema, const char *const *good, const char *const *bad)
{
    bl_grammar_t *g = compile_ok(schema);
    for (; good && *good; good++)
        if (!full_match(g, *good))
            fail_msg("schema %s should accept %s", schema, *good);
    for (; bad && *bad; bad++)
        if (full_match(g, *bad))
            fail_msg("schema %s should reject %s", schema, *bad);
    bl_grammar_free(g);
}

static void expect_error(const char *schema, const char *msg)
{
    char err[256] = "";
    bl_grammar_t *g = (bl_grammar_t *)1;
    assert_int_equal(bl_grammar_from_schema(schema, strlen(schema), &g, err, sizeof err),
                     BL_EINVAL);
    assert_null(g);
    if (!strstr(err, msg))
        fail_msg("schema %s: error '%s' lacks '%s'", schema, err, msg);
    assert_int_equal(bl_json_schema_check(schema, strlen(schema), err, sizeof err), BL_EINVAL);
}

/* ---- compiler and matcher ------------------------------------------------ */

static void rejects_unsupported_constructs(void **state)
{
    expect_error("{\"type\":\"object\",\"properties\":{\"zip\":{\"type\":\"string\",\"pattern\":"
                 "\"^[0-9]+$\"}}}",
                 "unsupported JSON Schema construct 'pattern' at #/properties/zip");
    expect_error("{\"type\":\"string\",\"format\":\"date-time\"}",
                 "unsupported JSON Schema construct 'format' at #");
    expect_error("{\"patternProperties\":{}}", "'patternProperties' at #");
    expect_error("{\"if\":{},\"then\":{}}", "'if' at #");
    expect_error("{\"not\":{\"type\":\"string\"}}", "'not' at #");
    expect_error("{\"type\":\"array\",\"items\":{\"anyOf\":[{\"type\":\"null\"},{\"type\":"
                 "\"number\",\"multipleOf\":2}]}}",
                 "'multipleOf' at #/items/anyOf/1");
    expect_error("{\"type\":\"array\",\"prefixItems\":[]}", "'prefixItems' at #");
    expect_error("{\"type\":\"array\",\"uniqueItems\":true}", "'uniqueItems' at #");
    expect_error("{\"allOf\":[{},{}]}", "'allOf'");
    expect_error("{\"$ref\":\"https://example.com/s.json\"}", "'$ref'");
    expect_error("{\"$ref\":\"#/$defs/missing\"}", "does not resolve");
    expect_error("{\"$defs\":{\"a\":{\"$ref\":\"#/$defs/b\"},\"b\":{\"$ref\":\"#/$defs/a\"}},"
                 "\"$ref\":\"#/$defs/a\"}",
                 "cycle");
    expect_error("{\"properties\":{\"a/b~c\":{\"format\":\"uri\"}}}",
                 "'format' at #/properties/a~1b~0c");
    expect_error("{\"type\":\"strin\"}", "unknown type 'strin'");
    expect_error("{\"type\":", "not valid JSON");
    expect_error("{\"enum\":[]}", "'enum' must be a non-empty array");
    expect_error("false", "'false'");
    /* a schema whose grammar would be huge is refused, not compiled */
    size_t cap = 64 * 1024, n = 0;
    char *big = malloc(cap);
    assert_non_null(big);
    n += (size_t)snprintf(big + n, cap - n, "{\"properties\":{");
    for (int i = 0; i < 1200; i++)
        n += (size_t)snprintf(big + n, cap - n, "%s\"p%d\":{\"maxLength\":1000}", i ? "," : "", i);
    n += (size_t)snprintf(big + n, cap - n, "}}");
    assert_true(n < cap);
    expect_error(big, "JSON Schema too large");
    free(big);
    /* annotations are fine, and so are unknown vendor keywords */
    bl_grammar_t *g = compile_ok("{\"title\":\"t\",\"description\":\"d\",\"x-foo\":1,"
                                 "\"type\":\"integer\",\"default\":3,\"examples\":[1]}");
    bl_grammar_free(g);
    char err[64];
    assert_int_equal(bl_json_schema_check("{\"type\":\"boolean\"}", 18, err, sizeof err), 0);
}

static void scalars(void **state)
{
    expect("{\"type\":\"string\"}",
           (const char *[]){"\"\"", "\"abc\"", "\"a\\\"b\\\\c\\n\\u00e9\"",
                            "\"h\xc3\xa9llo \xf0\x9f\x98\x80\"", NULL},
           (const char *[]){"abc", "\"abc", "\"a\"b\"", "\"\x01\"", "\"\\x\"", "\"\xc3\"",
                            "\"\xed\xa0\x80\"", "\"\\ud800\"", "1", "\"a\" ", " \"a\"", NULL});
    expect("{\"type\":\"integer\"}", (const char *[]){"0", "-7", "1234567890", NULL},
           (const char *[]){"01", "1.5", "-", "+1", "1e3", "12345678901234567", NULL});
    expect("{\"type\":\"integer\",\"minimum\":0}", (const char *[]){"0", "42", NULL},
           (const char *[]){"-1", NULL});
    expect("{\"type\":\"number\"}",
           (const char *[]){"0", "-0.5", "3.14159", "1e10", "2.5E-3", "6e+2", NULL},
           (const char *[]){".5", "1.", "1e", "1e100", "--1", "0x10", "NaN", NULL});
    expect("{\"type\":\"boolean\"}", (const char *[]){"true", "false", NULL},
           (const char *[]){"True", "1", "nul", NULL});
    expect("{\"type\":\"null\"}", (const char *[]){"null", NULL}, (const char *[]){"nil", NULL});
    expect("{\"type\":[\"string\",\"null\"]}", (const char *[]){"\"x\"", "null", NULL},
           (const char *[]){"1", NULL});
    expect("{\"type\":\"integer\",\"nullable\":true}", (const char *[]){"5", "null", NULL},
           (const char *[]){"\"5\"", NULL});
    expect("{\"type\":\"string\",\"minLength\":2,\"maxLength\":3}",
           (const char *[]){"\"ab\"", "\"abc\"", "\"\xc3\xa9\\n\"", NULL},
           (const char *[]){"\"a\"", "\"abcd\"", "\"\"", NULL});
}

static void enums_and_consts(void **state)
{
    expect(
        "{\"enum\":[\"red\",\"green\",\"re\",1.5,null,{\"a\":[1,true]}]}",
        (const char *[]){"\"red\"", "\"green\"", "\"re\"", "1.5", "null", "{\"a\":[1,true]}", NULL},
        (const char *[]){"\"r\"", "\"blue\"", "\"redd\"", "1.50", "{\"a\": [1,true]}", NULL});
    expect("{\"const\":\"a\\\"b\"}", (const char *[]){"\"a\\\"b\"", NULL},
           (const char *[]){"\"ab\"", NULL});
}

/* A large enum: values sharing prefixes, one being a prefix of another. */
static void large_enum(void **state)
{
    size_t cap = 256 * 1024, n = 0;
    char *schema = malloc(cap);
    assert_non_null(schema);
    n += (size_t)snprintf(schema + n, cap - n, "{\"enum\":[");
    for (int i = 0; i < 6000; i++)
        n += (size_t)snprintf(schema + n, cap - n, "%s\"v%d\"", i ? "," : "", i * 7);
    n += (size_t)snprintf(schema + n, cap - n, ",\"v\",\"v0\",123,12]}");
    assert_true(n < cap);
    expect(
        schema,
        (const char *[]){"\"v0\"", "\"v7\"", "\"v70\"", "\"v41993\"", "\"v\"", "123", "12", NULL},
        (const char *[]){"\"v1\"", "\"v71\"", "\"v41994\"", "\"\"", "1", "1234", "\"w\"", NULL});
    free(schema);
}

static void objects(void **state)
{
    const char *s = "{\"type\":\"object\",\"properties\":{\"name\":{\"type\":\"string\"},"
                    "\"age\":{\"type\":\"integer\"},\"tags\":{\"type\":\"array\",\"items\":"
                    "{\"type\":\"string\"}}},\"required\":[\"name\",\"tags\"],"
                    "\"additionalProperties\":false}";
    expect(s,
           (const char *[]){"{\"name\":\"a\",\"tags\":[]}",
                            "{\"name\":\"a\",\"age\":3,\"tags\":[\"x\"]}",
                            "{ \"name\": \"a\", \"tags\": [ \"x\", \"y\" ] }",
                            "{\n  \"name\": \"a\",\n  \"tags\": []\n}", NULL},
           (const char *[]){"{}", "{\"name\":\"a\"}", "{\"tags\":[],\"name\":\"a\"}",
                            "{\"name\":\"a\",\"tags\":[],\"x\":1}", "{\"name\":1,\"tags\":[]}",
                            "{\"name\":\"a\",,\"tags\":[]}", "{\"name\":\"a\",\"tags\":[],}",
                            "{\"name\":\"a\"  ,\"tags\":[]}", NULL});
    /* all optional: any in-order subset */
    expect("{\"properties\":{\"a\":{\"type\":\"integer\"},\"b\":{\"type\":\"integer\"}}}",
           (const char *[]){"{}", "{\"a\":1}", "{\"b\":2}", "{\"a\":1,\"b\":2}", NULL},
           (const char *[]){"{\"b\":2,\"a\":1}", "{,\"b\":2}", "{\"a\":1,}", NULL});
    /* nesting, and a map */
    expect("{\"type\":\"object\",\"properties\":{\"o\":{\"type\":\"object\",\"properties\":"
           "{\"x\":{\"type\":\"boolean\"}},\"required\":[\"x\"]}},\"required\":[\"o\"]}",
           (const char *[]){"{\"o\":{\"x\":true}}", NULL},
           (const char *[]){"{\"o\":{}}", "{\"o\":{\"x\":true}", NULL});
    expect("{\"type\":\"object\",\"additionalProperties\":{\"type\":\"integer\"}}",
           (const char *[]){"{}", "{\"k\":1,\"other key\":2}", NULL},
           (const char *[]){"{\"k\":\"v\"}", NULL});
    /* an object schema without properties takes any object */
    expect("{\"type\":\"object\"}",
           (const char *[]){"{}", "{\"a\":{\"b\":[1,\"x\",null,{\"c\":false}]}}", NULL},
           (const char *[]){"[]", "{\"a\"}", "{\"a\":}", NULL});
}

static void arrays_refs_anyof(void **state)
{
    expect("{\"type\":\"array\",\"items\":{\"type\":\"integer\"},\"minItems\":1,\"maxItems\":3}",
           (const char *[]){"[1]", "[1,2,3]", "[ 1 , 2 ]", NULL},
           (const char *[]){"[]", "[1,2,3,4]", "[1,]", "[\"a\"]", NULL});
    expect("{\"type\":\"array\",\"minItems\":2}",
           (const char *[]){"[1,\"a\"]", "[[],{},null]", NULL}, (const char *[]){"[1]", NULL});
    expect("{\"$defs\":{\"p\":{\"type\":\"object\",\"properties\":{\"x\":{\"type\":\"number\"}},"
           "\"required\":[\"x\"]}},\"type\":\"array\",\"items\":{\"$ref\":\"#/$defs/p\"}}",
           (const char *[]){"[{\"x\":1},{\"x\":2.5}]", NULL}, (const char *[]){"[{}]", NULL});
    expect("{\"definitions\":{\"s\":{\"enum\":[\"a\",\"b\"]}},\"$ref\":\"#/definitions/s\"}",
           (const char *[]){"\"a\"", NULL}, (const char *[]){"\"c\"", NULL});
    /* recursion through an array */
    expect("{\"$defs\":{\"t\":{\"type\":\"object\",\"properties\":{\"kids\":{\"type\":\"array\","
           "\"items\":{\"$ref\":\"#/$defs/t\"}}},\"required\":[\"kids\"]}},\"$ref\":\"#/$defs/t\"}",
           (const char *[]){"{\"kids\":[]}", "{\"kids\":[{\"kids\":[{\"kids\":[]}]}]}", NULL},
           (const char *[]){"{\"kids\":[{}]}", NULL});
    expect("{\"anyOf\":[{\"type\":\"string\",\"maxLength\":1},{\"type\":\"integer\"},"
           "{\"enum\":[\"long\"]}]}",
           (const char *[]){"\"a\"", "12", "\"long\"", NULL},
           (const char *[]){"\"ab\"", "true", NULL});
    expect("{\"oneOf\":[{\"type\":\"boolean\"},{\"type\":\"null\"}]}",
           (const char *[]){"true", "null", NULL}, (const char *[]){"0", NULL});
}

static void matcher_state(void **state)
{
    bl_grammar_t *g = compile_ok("{\"type\":\"object\",\"properties\":{\"n\":{\"type\":"
                                 "\"integer\"}},\"required\":[\"n\"]}");
    bl_gmatch_t *m = NULL;
    assert_int_equal(bl_gmatch_new(g, &m), 0);
    assert_false(bl_gmatch_complete(m));
    assert_true(bl_gmatch_accepts(m, "{\"n\"", 4));
    assert_false(bl_gmatch_accepts(m, "{\"m\"", 4));
    /* accepts leaves the state alone; a refused advance too */
    assert_int_equal(bl_gmatch_advance(m, "{\"x", 3), BL_EINVAL);
    assert_int_equal(bl_gmatch_advance(m, "{\"n\":1", 6), 0);
    assert_false(bl_gmatch_complete(m));
    assert_true(bl_gmatch_accepts(m, "23", 2));
    assert_int_equal(bl_gmatch_advance(m, "2}", 2), 0);
    assert_true(bl_gmatch_complete(m));
    assert_true(bl_gmatch_done(m));
    assert_false(bl_gmatch_accepts(m, " ", 1));
    bl_gmatch_free(m);
    bl_grammar_free(g);

    /* a top-level number is complete but may go on */
    g = compile_ok("{\"type\":\"number\"}");
    assert_int_equal(bl_gmatch_new(g, &m), 0);
    assert_int_equal(bl_gmatch_advance(m, "12", 2), 0);
    assert_true(bl_gmatch_complete(m));
    assert_false(bl_gmatch_done(m));
    bl_gmatch_free(m);
    bl_grammar_free(g);

    /* json_object mode */
    assert_int_equal(bl_grammar_json_object(&g), 0);
    assert_true(full_match(g, "{\"a\":[1,{\"b\":null}],\"c\":\"d\"}"));
    assert_true(full_match(g, "{}"));
    assert_false(full_match(g, "[1]"));
    assert_false(full_match(g, "\"s\""));
    bl_grammar_free(g);
}

/* ---- the mask on a synthetic vocabulary -------------------------------- */

static const char *const syn_vocab[] = {
    "{",     "}",    "\"",     ":",     ",",    "\":",   "\":\"", "\"},{\"", "name", "na",
    "me",    "\"n",  "\"name", "[",     "]",    " ",     "\n",    "1",       "12",   "x",
    "é",     "\xc3", "\xa9",   "\"}",   "},{",  "\"a\"", "true",  "tr",      "ue",   "ab\"",
    "<eos>", "",     "\"\"",   "\",\"", "null", "a",     "b",     "\\n",     "\\",   "}]",
};
#define SYN_N (sizeof syn_vocab / sizeof syn_vocab[0])
#define SYN_EOS 30
#define SYN_EMPTY 31

static bl_vtrie_t *syn_trie(void)
{
    uint32_t len[SYN_N];
    uint8_t eog[SYN_N] = {0};
    for (size_t i = 0; i < SYN_N; i++)
        len[i] = (uint32_t)strlen(syn_vocab[i]);
    eog[SYN_EOS] = 1;
    bl_vtrie_t *t = NULL;
    assert_int_equal(bl_vtrie_new(SYN_N, syn_vocab, len, eog, &t), 0);
    assert_int_equal(bl_vtrie_n_vocab(t), SYN_N);
    return t;
}

/* The mask must agree with bl_gmatch_accepts token by token. */
static void check_mask(bl_gmatch_t *m, const bl_vtrie_t *t, const char *where)
{
    float logits[SYN_N + 2];
    for (size_t i = 0; i < SYN_N + 2; i++)
        logits[i] = (float)i;
    int n = bl_gmatch_mask(m, t, logits, SYN_N + 2);
    assert_true(n >= 0);
    int count = 0;
    for (size_t i = 0; i < SYN_N + 2; i++) {
        bool want;
        if (i >= SYN_N || i == SYN_EMPTY)
            want = false;
        else if (i == SYN_EOS)
            want = bl_gmatch_complete(m);
        else
            want = bl_gmatch_accepts(m, syn_vocab[i], strlen(syn_vocab[i]));
        bool got = logits[i] != -INFINITY;
        if (got != want)
            fail_msg("%s: token %zu '%s' allowed=%d, expected %d", where, i,
                     i < SYN_N ? syn_vocab[i] : "(past vocab)", got, want);
        if (got)
            assert_true(logits[i] == (float)i); /* allowed logits untouched */
        count += got;
    }
    assert_int_equal(n, count);
}

static bool allowed(bl_gmatch_t *m, const bl_vtrie_t *t, const char *tok)
{
    float logits[SYN_N];
    memset(logits, 0, sizeof logits);
    assert_true(bl_gmatch_mask(m, t, logits, SYN_N) >= 0);
    for (size_t i = 0; i < SYN_N; i++)
        if (!strcmp(syn_vocab[i], tok) && i != SYN_EMPTY)
            return logits[i] != -INFINITY;
    fail_msg("no token '%s'", tok);
    return false;
}

static void mask_synthetic_vocab(void **state)
{
    bl_vtrie_t *t = syn_trie();
    bl_grammar_t *g = compile_ok(
        "{\"type\":\"array\",\"items\":{\"type\":\"object\",\"properties\":{\"name\":{\"type\":"
        "\"string\"},\"a\":{\"type\":\"boolean\"}},\"required\":[\"name\"]}}");
    bl_gmatch_t *m = NULL;
    assert_int_equal(bl_gmatch_new(g, &m), 0);
    /* walk a text through tokens, checking the mask at every step */
    const char *path[] = {"[",     "{",   "\"name",  "\":\"", "na",  "é",    "\xc3",
                          "\xa9",  "\\n", "\"},{\"", "name",  "\":", "\"\"", ",",
                          "\"a\"", ":",   "tr",      "ue",    "}]"};
    for (size_t i = 0; i < sizeof path / sizeof path[0]; i++) {
        char where[64];
        snprintf(where, sizeof where, "before token %zu '%s'", i, path[i]);
        check_mask(m, t, where);
        if (!allowed(m, t, path[i]))
            fail_msg("%s: not allowed", where);
        assert_int_equal(bl_gmatch_advance(m, path[i], strlen(path[i])), 0);
    }
    check_mask(m, t, "at the end");
    assert_true(bl_gmatch_done(m));
    assert_true(allowed(m, t, "<eos>"));
    assert_false(allowed(m, t, "]"));
    bl_gmatch_free(m);

    /* specific boundary crossings */
    assert_int_equal(bl_gmatch_new(g, &m), 0);
    assert_int_equal(bl_gmatch_advance(m, "[{\"name\":\"x", 11), 0);
    assert_true(allowed(m, t, "\"},{\"")); /* closes the string and opens the next item */
    assert_true(allowed(m, t, "\"}"));
    assert_true(allowed(m, t, "ab\""));
    assert_false(allowed(m, t, "\":"));  /* a value string cannot end in a key */
    assert_false(allowed(m, t, "\xa9")); /* a lone continuation byte */
    assert_true(allowed(m, t, "\xc3"));  /* a lead byte: the next token may complete it */
    assert_false(allowed(m, t, "<eos>"));
    assert_int_equal(bl_gmatch_advance(m, "\xc3", 1), 0);
    assert_true(allowed(m, t, "\xa9"));
    assert_false(allowed(m, t, "x"));
    assert_false(allowed(m, t, "\""));
    check_mask(m, t, "inside a character");
    bl_gmatch_free(m);

    /* a key token that only fits because the key is "name" */
    assert_int_equal(bl_gmatch_new(g, &m), 0);
    assert_int_equal(bl_gmatch_advance(m, "[{", 2), 0);
    assert_true(allowed(m, t, "\"name"));
    assert_true(allowed(m, t, "\"n"));
    assert_false(allowed(m, t, "\"a\"")); /* "a" is optional but comes after "name" */
    assert_false(allowed(m, t, "}"));     /* name is required */
    check_mask(m, t, "at a key");
    bl_gmatch_free(m);
    bl_grammar_free(g);
    bl_vtrie_free(t);
}

/* Dropping the transition memo (as long generations do when it grows)
 * must not change what the matcher accepts. */
static void memo_trim_keeps_state(void **state)
{
    bl_vtrie_t *t = syn_trie();
    bl_grammar_t *g = NULL;
    assert_int_equal(bl_grammar_json_object(&g), 0);
    bl_gmatch_t *a = NULL, *b = NULL;
    assert_int_equal(bl_gmatch_new(g, &a), 0);
    assert_int_equal(bl_gmatch_new(g, &b), 0);
    const char *path[] = {"{", "\"a\"", ":", "[", "{",  "\"name", "\":",   "12", "}",
                          ",", "true",  "]", ",", "\"", "b",      "\":\"", "é",  "\"}"};
    for (size_t i = 0; i < sizeof path / sizeof path[0]; i++) {
        float la[SYN_N], lb[SYN_N];
        memset(la, 0, sizeof la);
        memset(lb, 0, sizeof lb);
        assert_int_equal(bl_gmatch_trim(b, 1), 0);
        assert_int_equal(bl_gmatch_mask(a, t, la, SYN_N), bl_gmatch_mask(b, t, lb, SYN_N));
        assert_memory_equal(la, lb, sizeof la);
        assert_int_equal(bl_gmatch_advance(a, path[i], strlen(path[i])), 0);
        assert_int_equal(bl_gmatch_advance(b, path[i], strlen(path[i])), 0);
        assert_true(b->n_st >= 1);
    }
    assert_true(bl_gmatch_done(a));
    assert_true(bl_gmatch_done(b));
    bl_gmatch_free(a);
    bl_gmatch_free(b);
    bl_grammar_free(g);
    bl_vtrie_free(t);
}

/* The mask agrees with per-token accepts on a real 32000-token vocabulary,
 * along a long random walk through the schema's language. */
static void mask_real_vocab_agrees(void **state);

/* ---- validating generated JSON against the schema (test-side) ---------- */

static json_t *resolve_ref(json_t *root, const char *ref)
{
    assert_true(ref[0] == '#');
    json_t *v = root;
    char buf[256];
    snprintf(buf, sizeof buf, "%s", ref + 1);
    for (char *seg = strtok(buf, "/"); seg; seg = strtok(NULL, "/"))
        v = json_object_get(v, seg);
    assert_non_null(v);
    return v;
}

static size_t utf8_len(const char *s, size_t n)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        k += ((unsigned char)s[i] & 0xc0) != 0x80;
    return k;
}

static bool valid(json_t *v, json_t *s, json_t *root);

static bool valid_type(json_t *v, const char *t, json_t *s, json_t *root)
{
    if (!strcmp(t, "null"))
        return json_is_null(v);
    if (!strcmp(t, "boolean"))
        return json_is_boolean(v);
    if (!strcmp(t, "integer") || !strcmp(t, "number")) {
        if (!strcmp(t, "integer") ? !json_is_integer(v) : !json_is_number(v))
            return false;
        json_t *min = json_object_get(s, "minimum");
        return !min || json_number_value(min) < 0 || json_number_value(v) >= 0;
    }
    if (!strcmp(t, "string")) {
        if (!json_is_string(v))
            return false;
        size_t n = utf8_len(json_string_value(v), json_string_length(v));
        json_t *mn = json_object_get(s, "minLength"), *mx = json_object_get(s, "maxLength");
        return (!mn || n >= (size_t)json_integer_value(mn)) &&
               (!mx || n <= (size_t)json_integer_value(mx));
    }
    if (!strcmp(t, "array")) {
        if (!json_is_array(v))
            return false;
        size_t n = json_array_size(v);
        json_t *mn = json_object_get(s, "minItems"), *mx = json_object_get(s, "maxItems");
        if ((mn && n < (size_t)json_integer_value(mn)) ||
            (mx && n > (size_t)json_integer_value(mx)))
            return false;
        json_t *items = json_object_get(s, "items");
        for (size_t i = 0; items && i < n; i++)
            if (!valid(json_array_get(v, i), items, root))
                return false;
        return true;
    }
    if (!strcmp(t, "object")) {
        if (!json_is_object(v))
            return false;
        json_t *props = json_object_get(s, "properties"), *req = json_object_get(s, "required");
        json_t *addl = json_object_get(s, "additionalProperties");
        size_t i;
        json_t *r;
        json_array_foreach(req, i, r)
        {
            if (!json_object_get(v, json_string_value(r)))
                return false;
        }
        const char *k;
        json_t *mv;
        json_object_foreach(v, k, mv)
        {
            json_t *ps = props ? json_object_get(props, k) : NULL;
            if (ps) {
                if (!valid(mv, ps, root))
                    return false;
            } else if (json_is_false(addl)) {
                return false;
            } else if (json_is_object(addl) && !valid(mv, addl, root)) {
                return false;
            }
        }
        return true;
    }
    fail_msg("validator: unknown type %s", t);
    return false;
}

static bool valid(json_t *v, json_t *s, json_t *root)
{
    json_t *x;
    if ((x = json_object_get(s, "$ref")))
        return valid(v, resolve_ref(root, json_string_value(x)), root);
    if ((x = json_object_get(s, "const")))
        return json_equal(v, x);
    if ((x = json_object_get(s, "enum"))) {
        size_t i;
        json_t *e;
        json_array_foreach(x, i, e)
        {
            if (json_equal(v, e))
                return true;
        }
        return false;
    }
    if ((x = json_object_get(s, "anyOf")) || (x = json_object_get(s, "oneOf"))) {
        size_t i;
        json_t *e;
        json_array_foreach(x, i, e)
        {
            if (valid(v, e, root))
                return true;
        }
        return false;
    }
    json_t *type = json_object_get(s, "type");
    if (!type)
        return true;
    if (json_is_string(type))
        return valid_type(v, json_string_value(type), s, root);
    size_t i;
    json_t *t;
    json_array_foreach(type, i, t)
    {
        if (valid_type(v, json_string_value(t), s, root))
            return true;
    }
    return false;
}

/* ---- generation with real models --------------------------------------- */

typedef struct {
    char buf[16384];
    size_t n;
} sink_t;

static int on_text(void *ud, const char *text, size_t len)
{
    sink_t *s = ud;
    if (s->n + len < sizeof s->buf) {
        memcpy(s->buf + s->n, text, len);
        s->n += len;
    }
    return 0;
}

static bl_model_t *load(const char *rel)
{
    char *path = path_in_shared(rel);
    char err[256];
    bl_model_params_t mp;
    bl_model_params_default(&mp);
    mp.n_threads = 1;
    bl_model_t *m = NULL;
    if (bl_model_load(path, &mp, &m, err, sizeof err) != 0)
        fail_msg("%s: %s", path, err);
    free(path);
    return m;
}

static const char *const gen_schemas[] = {
    "{\"type\":\"object\",\"properties\":{\"name\":{\"type\":\"string\",\"maxLength\":12},"
    "\"age\":{\"type\":\"integer\",\"minimum\":0},\"color\":{\"enum\":[\"red\",\"green\","
    "\"blue\"]},\"ok\":{\"type\":\"boolean\"}},\"required\":[\"name\",\"color\",\"ok\"],"
    "\"additionalProperties\":false}",
    "{\"type\":\"array\",\"items\":{\"type\":\"object\",\"properties\":{\"x\":{\"type\":"
    "\"number\"},\"tag\":{\"type\":[\"string\",\"null\"],\"maxLength\":6}},\"required\":"
    "[\"x\",\"tag\"]},\"minItems\":1,\"maxItems\":3}",
    "{\"$defs\":{\"pt\":{\"type\":\"object\",\"properties\":{\"k\":{\"const\":\"v\"},\"n\":"
    "{\"anyOf\":[{\"type\":\"integer\"},{\"type\":\"null\"}]}},\"required\":[\"k\",\"n\"]}},"
    "\"type\":\"object\",\"properties\":{\"a\":{\"$ref\":\"#/$defs/pt\"},\"b\":{\"type\":"
    "\"array\",\"items\":{\"$ref\":\"#/$defs/pt\"},\"maxItems\":2}},\"required\":[\"a\",\"b\"]}",
};

/* Generate with the schema (greedy and several seeds) and check each output
 * parses and validates. max_tokens is generous; a run that hits it is
 * retried as a failure only if it did not finish the value. */
static void generate_valid(bl_model_t *model, const char *prompt, int max_tokens)
{
    bl_ctx_params_t cp;
    bl_ctx_params_default(&cp);
    cp.n_ctx = 1024;
    int finished = 0, runs = 0;
    for (size_t si = 0; si < sizeof gen_schemas / sizeof gen_schemas[0]; si++) {
        json_error_t jerr;
        json_t *schema = json_loads(gen_schemas[si], 0, &jerr);
        assert_non_null(schema);
        for (int seed = -1; seed < 4; seed++) {
            bl_ctx_t *c = NULL;
            char err[256];
            assert_int_equal(bl_ctx_new(model, &cp, &c, err, sizeof err), 0);
            bl_generate_params_t p;
            bl_generate_params_default(&p);
            if (seed < 0) {
                p.sampling.temperature = 0.0f;
            } else {
                p.sampling.seed = (uint64_t)seed * 7919u + 11u;
                p.sampling.temperature = 1.0f;
                p.sampling.top_k = 0;
                p.sampling.top_p = 1.0f;
                p.sampling.min_p = 0.0f;
            }
            p.max_tokens = max_tokens;
            p.json_schema = gen_schemas[si];
            p.json_schema_len = strlen(gen_schemas[si]);
            sink_t *out = calloc(1, sizeof *out);
            assert_non_null(out);
            p.on_text = on_text;
            p.ud = out;
            bl_generate_result_t res;
            assert_int_equal(bl_generate(c, prompt, strlen(prompt), &p, &res), 0);
            runs++;
            out->buf[out->n] = '\0';
            if (getenv("BL_TEST_VERBOSE"))
                printf("schema %zu seed %d finish %d: %s\n", si, seed, (int)res.finish, out->buf);
            if (res.finish == BL_FINISH_STOP) {
                finished++;
                json_t *v = json_loadb(out->buf, out->n, JSON_ALLOW_NUL, &jerr);
                if (!v)
                    fail_msg("schema %zu seed %d: not JSON (%s): %s", si, seed, jerr.text,
                             out->buf);
                if (!valid(v, schema, schema))
                    fail_msg("schema %zu seed %d: does not validate: %s", si, seed, out->buf);
                json_decref(v);
            } else {
                /* cut by max_tokens: still a prefix the schema allows */
                assert_int_equal(res.finish, BL_FINISH_LENGTH);
                bl_grammar_t *g = compile_ok(gen_schemas[si]);
                bl_gmatch_t *m = NULL;
                assert_int_equal(bl_gmatch_new(g, &m), 0);
                if (bl_gmatch_advance(m, out->buf, out->n) != 0)
                    fail_msg("schema %zu seed %d: output leaves the grammar: %s", si, seed,
                             out->buf);
                bl_gmatch_free(m);
                bl_grammar_free(g);
            }
            free(out);
            bl_ctx_free(c);
        }
        json_decref(schema);
    }
    /* most runs must actually finish a value */
    if (finished * 2 < runs)
        fail_msg("only %d of %d runs finished their value", finished, runs);
}

static void generate_stories(void **state)
{
    bl_model_t *m = load("models/stories260K.gguf");
    generate_valid(m, "Once upon a time", 200);
    bl_model_free(m);
}

static void generate_random_32k(void **state)
{
    bl_model_t *m = load("models/llama-2-tiny-random.gguf");
    generate_valid(m, "JSON:", 200);
    bl_model_free(m);
}

/* json_object mode, a bad schema, and constraining in the middle. */
static void generate_modes(void **state)
{
    bl_model_t *model = load("models/stories260K.gguf");
    bl_ctx_params_t cp;
    bl_ctx_params_default(&cp);
    cp.n_ctx = 512;
    bl_ctx_t *c = NULL;
    char err[256];
    assert_int_equal(bl_ctx_new(model, &cp, &c, err, sizeof err), 0);
    bl_generate_params_t p;
    bl_generate_params_default(&p);
    p.sampling.seed = 5;
    p.max_tokens = 300;
    p.json_object = true;
    sink_t *out = calloc(1, sizeof *out);
    assert_non_null(out);
    p.on_text = on_text;
    p.ud = out;
    bl_generate_result_t res;
    assert_int_equal(bl_generate(c, "Once", 4, &p, &res), 0);
    if (res.finish == BL_FINISH_STOP) {
        json_error_t jerr;
        json_t *v = json_loadb(out->buf, out->n, JSON_ALLOW_NUL, &jerr);
        if (!v || !json_is_object(v))
            fail_msg("json_object mode gave: %.*s", (int)out->n, out->buf);
        json_decref(v);
    } else {
        assert_true(out->n > 0 && out->buf[0] == '{');
    }

    /* a schema outside the subset: bl_generate refuses before generating */
    bl_ctx_truncate(c, 0);
    p.json_schema = "{\"type\":\"string\",\"pattern\":\"x\"}";
    p.json_schema_len = strlen(p.json_schema);
    assert_int_equal(bl_generate(c, "Once", 4, &p, &res), BL_EINVAL);

    /* free text first, then a constraint from the third token on */
    bl_ctx_truncate(c, 0);
    out->n = 0;
    bl_generate_params_default(&p);
    p.sampling.temperature = 0.0f;
    p.max_tokens = 100;
    p.on_text = on_text;
    p.ud = out;
    bl_token_t toks[16];
    size_t nt = 0;
    assert_int_equal(bl_tokenize(model, "Once upon", 9, true, false, toks, 16, &nt), 0);
    assert_int_equal(bl_ctx_feed(c, toks, nt, NULL), 0);
    bl_gen_t *g = NULL;
    assert_int_equal(bl_gen_begin(c, &p, &g), 0);
    assert_false(bl_gen_constrained(g));
    bl_token_t next;
    for (int i = 0; i < 2; i++) {
        assert_int_equal(bl_gen_step(g, &next), 0);
        assert_int_equal(bl_ctx_feed(c, &next, 1, NULL), 0);
    }
    size_t free_len = out->n;
    assert_int_equal(bl_gen_constrain(g, "{\"type\":\"strin\"}", 16, true, err, sizeof err),
                     BL_EINVAL);
    assert_non_null(strstr(err, "unknown type"));
    const char *schema = "{\"type\":\"object\",\"properties\":{\"q\":{\"enum\":[\"yes\",\"no\"]}},"
                         "\"required\":[\"q\"]}";
    assert_int_equal(bl_gen_constrain(g, schema, strlen(schema), true, err, sizeof err), 0);
    assert_true(bl_gen_constrained(g));
    int rc;
    while ((rc = bl_gen_step(g, &next)) == 0)
        assert_int_equal(bl_ctx_feed(c, &next, 1, NULL), 0);
    assert_int_equal(rc, 1);
    bl_gen_end(g, &res);
    assert_int_equal(res.finish, BL_FINISH_STOP);
    out->buf[out->n] = '\0';
    const char *args = out->buf + free_len;
    json_error_t jerr;
    json_t *v = json_loads(args, 0, &jerr);
    if (!v)
        fail_msg("constrained part is not JSON: %s", args);
    const char *q = json_string_value(json_object_get(v, "q"));
    assert_non_null(q);
    assert_true(!strcmp(q, "yes") || !strcmp(q, "no"));
    json_decref(v);

    /* end_when_complete false: the constraint lifts after the value and
     * free text goes on */
    assert_int_equal(bl_ctx_truncate(c, 0), 0);
    assert_int_equal(bl_ctx_feed(c, toks, nt, NULL), 0);
    out->n = 0;
    assert_int_equal(bl_gen_begin(c, &p, &g), 0);
    assert_int_equal(bl_gen_constrain(g, "{\"const\":\"ok\"}", 14, false, err, sizeof err), 0);
    int steps = 0;
    while (bl_gen_constrained(g)) {
        assert_int_equal(bl_gen_step(g, &next), 0);
        assert_int_equal(bl_ctx_feed(c, &next, 1, NULL), 0);
        steps++;
    }
    assert_true(steps >= 1 && steps <= 4);
    size_t value_len = out->n;
    while ((rc = bl_gen_step(g, &next)) == 0 && out->n < value_len + 8)
        assert_int_equal(bl_ctx_feed(c, &next, 1, NULL), 0);
    bl_gen_end(g, &res);
    assert_true(out->n > value_len); /* text after the value */
    assert_memory_equal(out->buf, "\"ok\"", 4);
    free(out);
    bl_ctx_free(c);
    bl_model_free(model);
}

/* Random walks over a real vocabulary, each token drawn among those the
 * mask allows (often one that closes something, so values finish): every
 * finished text must parse and validate. Checks the grammar's soundness on
 * far more shapes than a model would write. */
static void random_walks_validate(void **state)
{
    bl_model_t *model = load("models/llama-2-tiny-random.gguf");
    const bl_vtrie_t *t = NULL;
    assert_int_equal(bl_model_vtrie(model, &t), 0);
    uint32_t nv = bl_vtrie_n_vocab(t);
    float *logits = malloc(nv * sizeof *logits);
    uint32_t *ok = malloc(nv * sizeof *ok);
    assert_non_null(logits);
    assert_non_null(ok);
    uint32_t x = 777;
    int finished = 0, walks = 0;
    for (size_t si = 0; si <= sizeof gen_schemas / sizeof gen_schemas[0]; si++) {
        bool any = si == sizeof gen_schemas / sizeof gen_schemas[0];
        bl_grammar_t *g = NULL;
        if (any)
            assert_int_equal(bl_grammar_json_object(&g), 0);
        else
            g = compile_ok(gen_schemas[si]);
        json_error_t jerr;
        json_t *schema = any ? NULL : json_loads(gen_schemas[si], 0, &jerr);
        for (int w = 0; w < 25; w++, walks++) {
            bl_gmatch_t *m = NULL;
            assert_int_equal(bl_gmatch_new(g, &m), 0);
            char text[8192];
            size_t n = 0;
            for (int step = 0; step < 300 && !bl_gmatch_done(m); step++) {
                memset(logits, 0, nv * sizeof *logits);
                assert_true(bl_gmatch_mask(m, t, logits, nv) > 0);
                uint32_t n_ok = 0, n_close = 0;
                for (uint32_t i = 0; i < nv; i++) {
                    const char *p;
                    size_t pn;
                    bl_vtrie_piece(t, (bl_token_t)i, &p, &pn);
                    if (logits[i] == -INFINITY || bl_vtrie_is_eog(t, (bl_token_t)i))
                        continue;
                    if (memchr(p, '"', pn) || memchr(p, '}', pn) || memchr(p, ']', pn) ||
                        memchr(p, ',', pn)) {
                        ok[n_ok++] = ok[n_close]; /* closers first */
                        ok[n_close++] = i;
                    } else {
                        ok[n_ok++] = i;
                    }
                }
                if (n_ok == 0)
                    break; /* complete; only end-of-generation is left */
                x = x * 1103515245u + 12345u;
                uint32_t pick =
                    (x >> 16) % 3 == 0 && n_close ? ok[(x >> 4) % n_close] : ok[(x >> 4) % n_ok];
                const char *p;
                size_t pn;
                bl_vtrie_piece(t, (bl_token_t)pick, &p, &pn);
                assert_int_equal(bl_gmatch_advance(m, p, pn), 0);
                assert_true(n + pn < sizeof text);
                memcpy(text + n, p, pn);
                n += pn;
            }
            if (bl_gmatch_complete(m)) {
                finished++;
                json_t *v = json_loadb(text, n, JSON_ALLOW_NUL, &jerr);
                if (!v)
                    fail_msg("walk %d on schema %zu: not JSON (%s): %.*s", w, si, jerr.text, (int)n,
                             text);
                if (any ? !json_is_object(v) : !valid(v, schema, schema))
                    fail_msg("walk %d on schema %zu: invalid: %.*s", w, si, (int)n, text);
                json_decref(v);
            }
            bl_gmatch_free(m);
        }
        json_decref(schema);
        bl_grammar_free(g);
    }
    if (finished * 2 < walks)
        fail_msg("only %d of %d walks finished", finished, walks);
    free(ok);
    free(logits);
    bl_model_free(model);
}

/* Mutated schemas and random bytes: whatever compiles must run without
 * memory errors (the sanitizer build checks), and whatever fails must say
 * why. */
static void hostile_schemas(void **state)
{
    bl_vtrie_t *t = syn_trie();
    uint32_t x = 99;
    char buf[2048];
    int compiled = 0;
    for (int it = 0; it < 3000; it++) {
        const char *base = gen_schemas[it % (sizeof gen_schemas / sizeof gen_schemas[0])];
        size_t n = strlen(base);
        memcpy(buf, base, n);
        for (int k = 0; k < 1 + it % 4; k++) {
            x = x * 1103515245u + 12345u;
            size_t at = (x >> 8) % n;
            static const char pool[] = "{}[]\",:0123456789-eE.tfn\\ $#/";
            char ch = pool[(x >> 20) % (sizeof pool - 1)];
            switch ((x >> 28) & 3) {
            case 0: /* replace */
                buf[at] = ch;
                break;
            case 1: /* delete */
                memmove(buf + at, buf + at + 1, n - at - 1);
                n--;
                break;
            default: /* insert */
                if (n + 1 < sizeof buf) {
                    memmove(buf + at + 1, buf + at, n - at);
                    buf[at] = ch;
                    n++;
                }
            }
        }
        char err[256] = "";
        bl_grammar_t *g = NULL;
        int rc = bl_grammar_from_schema(buf, n, &g, err, sizeof err);
        if (rc != 0) {
            assert_int_equal(rc, BL_EINVAL);
            assert_true(err[0] != '\0');
            assert_null(g);
            continue;
        }
        compiled++;
        bl_gmatch_t *m = NULL;
        assert_int_equal(bl_gmatch_new(g, &m), 0);
        for (int step = 0; step < 8; step++) {
            float logits[SYN_N];
            memset(logits, 0, sizeof logits);
            assert_true(bl_gmatch_mask(m, t, logits, SYN_N) >= 0);
            x = x * 1103515245u + 12345u;
            size_t tok = (x >> 8) % SYN_N;
            bl_gmatch_advance(m, syn_vocab[tok], strlen(syn_vocab[tok]));
        }
        bl_gmatch_free(m);
        bl_grammar_free(g);
    }
    assert_true(compiled > 0);
    /* not JSON at all, and truncated */
    char err[128];
    bl_grammar_t *g = NULL;
    assert_int_equal(bl_grammar_from_schema("\xff\xfe", 2, &g, err, sizeof err), BL_EINVAL);
    assert_int_equal(bl_grammar_from_schema(NULL, 0, &g, err, sizeof err), BL_EINVAL);
    assert_int_equal(bl_grammar_from_schema("{\"type\":\"string\"}", 10, &g, err, sizeof err),
                     BL_EINVAL);
    /* nesting past the limits: the compiler's (48 schemas), the reader's (64) */
    for (int levels = 60; levels <= 70; levels += 10) {
        char deep[2048];
        size_t n = 0;
        for (int i = 0; i < levels; i++)
            n += (size_t)snprintf(deep + n, sizeof deep - n, "{\"items\":");
        n += (size_t)snprintf(deep + n, sizeof deep - n, "{}");
        for (int i = 0; i < levels; i++)
            deep[n++] = '}';
        assert_true(n < sizeof deep);
        assert_int_equal(bl_grammar_from_schema(deep, n, &g, err, sizeof err), BL_EINVAL);
        assert_non_null(strstr(err, levels == 60 ? "nesting over 48" : "deeper than 64"));
    }
    bl_vtrie_free(t);
}

static void mask_real_vocab_agrees(void **state)
{
    bl_model_t *model = load("models/llama-2-tiny-random.gguf");
    const bl_vtrie_t *t = NULL;
    assert_int_equal(bl_model_vtrie(model, &t), 0);
    const bl_vtrie_t *again = NULL;
    assert_int_equal(bl_model_vtrie(model, &again), 0);
    assert_ptr_equal(t, again); /* built once */
    uint32_t nv = bl_vtrie_n_vocab(t);
    assert_int_equal(nv, 32000);
    bl_grammar_t *g = compile_ok(gen_schemas[0]);
    bl_gmatch_t *m = NULL;
    assert_int_equal(bl_gmatch_new(g, &m), 0);
    float *logits = malloc(nv * sizeof *logits);
    assert_non_null(logits);
    uint32_t x = 12345;
    for (int step = 0; step < 60 && !bl_gmatch_done(m); step++) {
        for (uint32_t i = 0; i < nv; i++)
            logits[i] = 0.0f;
        int n = bl_gmatch_mask(m, t, logits, nv);
        assert_true(n > 0);
        /* every token: the mask says what accepts says */
        uint32_t pick_n = 0;
        for (uint32_t i = 0; i < nv; i++) {
            const char *p;
            size_t pn;
            assert_int_equal(bl_vtrie_piece(t, (bl_token_t)i, &p, &pn), 0);
            bool want = bl_vtrie_is_eog(t, (bl_token_t)i) ? bl_gmatch_complete(m)
                                                          : pn > 0 && bl_gmatch_accepts(m, p, pn);
            if (want != (logits[i] != -INFINITY))
                fail_msg("step %d token %u: mask %d accepts %d", step, i, logits[i] != -INFINITY,
                         want);
            pick_n += want && !bl_vtrie_is_eog(t, (bl_token_t)i);
        }
        if (pick_n == 0)
            break;
        /* advance by a random allowed token, preferring short ones */
        x = x * 1103515245u + 12345u;
        uint32_t k = (x >> 8) % pick_n;
        for (uint32_t i = 0; i < nv; i++) {
            const char *p;
            size_t pn;
            bl_vtrie_piece(t, (bl_token_t)i, &p, &pn);
            if (logits[i] == -INFINITY || bl_vtrie_is_eog(t, (bl_token_t)i))
                continue;
            if (k-- == 0) {
                assert_int_equal(bl_gmatch_advance(m, p, pn), 0);
                break;
            }
        }
    }
    free(logits);
    bl_gmatch_free(m);
    bl_grammar_free(g);
    bl_model_free(model);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(rejects_unsupported_constructs),
        cmocka_unit_test(scalars),
        cmocka_unit_test(enums_and_consts),
        cmocka_unit_test(large_enum),
        cmocka_unit_test(objects),
        cmocka_unit_test(arrays_refs_anyof),
        cmocka_unit_test(matcher_state),
        cmocka_unit_test(mask_synthetic_vocab),
        cmocka_unit_test(memo_trim_keeps_state),
        cmocka_unit_test(mask_real_vocab_agrees),
        cmocka_unit_test(random_walks_validate),
        cmocka_unit_test(hostile_schemas),
        cmocka_unit_test(generate_stories),
        cmocka_unit_test(generate_random_32k),
        cmocka_unit_test(generate_modes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
