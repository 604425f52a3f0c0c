/*
 * JSON Schema -> grammar over the bytes of the JSON texts it accepts.
 *
 * Decisions (engine.h repeats them for users):
 * - Whitespace: none required; after '{' '[' ',' ':' and after each member
 *   or element at most one run of " " or "\n" plus up to 16 spaces, so a
 *   model may pretty-print but can never loop on whitespace. None before or
 *   after the top-level value.
 * - Objects: properties come in schema order; required ones always,
 *   optional ones may be skipped. No other member is generated, whatever
 *   additionalProperties says (a subset of what the schema accepts), except
 *   for an object with no properties and a schema as additionalProperties,
 *   which is a map of any keys to that schema. A required name without a
 *   property schema is generated last with any value.
 * - Numbers: JSON syntax, at most 16 integer digits, 16 fraction digits and
 *   2 exponent digits; minimum/maximum only decide whether '-' may appear
 *   (minimum >= 0 forbids it); other bounds are not enforced.
 * - Strings: valid UTF-8, escapes limited to what JSON defines (no lone
 *   surrogates); minLength/maxLength count code points, up to 1024 (a
 *   larger maxLength is not enforced).
 * - enum/const: each value in compact JSON as the schema writes it.
 * - anyOf/oneOf: any branch (oneOf's exclusivity is not checked); allOf of
 *   one schema; type arrays; "nullable": true; $ref to "#..." JSON
 *   pointers, recursion allowed through an object or array.
 * Anything that would change which texts are valid and is not above is an
 * error naming the keyword and where it is.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ballast/errors.h>

#include "engine/grammar/schema_impl.h"

#define MAX_UNROLL 1024
#define MAX_DEPTH 48
static int compile(sc_t *c, const jv_t *s, uint32_t *rule);

/* ---- paths and errors ------------------------------------------------------ */

static void path_push(sc_t *c, const char *seg, size_t n)
{
    /* JSON pointer escaping: '~' -> "~0", '/' -> "~1" */
    if (c->path_len + 1 < sizeof c->path)
        c->path[c->path_len++] = '/';
    for (size_t i = 0; i < n && c->path_len + 2 < sizeof c->path; i++) {
        if (seg[i] == '~' || seg[i] == '/') {
            c->path[c->path_len++] = '~';
            c->path[c->path_len++] = seg[i] == '~' ? '0' : '1';
        } else {
            c->path[c->path_len++] = seg[i];
        }
    }
    c->path[c->path_len] = '\0';
}

static void path_push_idx(sc_t *c, size_t i)
{
    char num[24];
    int n = snprintf(num, sizeof num, "%zu", i);
    path_push(c, num, (size_t)n);
}

static int fail(sc_t *c, const char *fmt, const char *what)
{
    char msg[256];
    snprintf(msg, sizeof msg, fmt, what);
    if (c->err && c->errlen)
        snprintf(c->err, c->errlen, "%s at #%s", msg, c->path);
    return BL_EINVAL;
}

static int unsupported(sc_t *c, const char *kw)
{
    return fail(c, "unsupported JSON Schema construct '%s'", kw);
}

/* ---- schema keywords ------------------------------------------------------- */

/* Keywords whose meaning we cannot enforce: an error rather than output
 * that silently breaks the schema. Anything not named here or handled
 * below is an annotation (title, description, default, examples, ...). */
static const char *const unsupported_kw[] = {
    "pattern",
    "format",
    "patternProperties",
    "if",
    "then",
    "else",
    "not",
    "dependentRequired",
    "dependentSchemas",
    "dependencies",
    "prefixItems",
    "contains",
    "minContains",
    "maxContains",
    "propertyNames",
    "unevaluatedProperties",
    "unevaluatedItems",
    "multipleOf",
    "minProperties",
    "maxProperties",
    "$dynamicRef",
    "$recursiveRef",
    "additionalItems",
    "contentSchema",
    "contentMediaType",
    "contentEncoding",
};

static int check_keywords(sc_t *c, const jv_t *s)
{
    for (size_t i = 0; i < s->n_items; i++) {
        const char *k = s->keys[i];
        for (size_t j = 0; j < sizeof unsupported_kw / sizeof unsupported_kw[0]; j++)
            if (!strcmp(k, unsupported_kw[j]))
                return unsupported(c, k);
        if (!strcmp(k, "uniqueItems") && s->items[i]->kind == JV_TRUE)
            return unsupported(c, "uniqueItems");
        if (!strcmp(k, "allOf") && (s->items[i]->kind != JV_ARR || s->items[i]->n_items != 1))
            return fail(c, "unsupported JSON Schema construct '%s' (only one schema)", "allOf");
        if (!strcmp(k, "items") && s->items[i]->kind == JV_ARR)
            return fail(c, "unsupported JSON Schema construct '%s' (array form)", "items");
    }
    return 0;
}

/* A non-negative integer keyword, or -1 when absent. */
static int count_kw(sc_t *c, const jv_t *s, const char *kw, long *out)
{
    const jv_t *v = bl_jv_get(s, kw);
    *out = -1;
    if (!v)
        return 0;
    double d = v->kind == JV_NUM ? strtod(v->s, NULL) : -1.0;
    if (v->kind != JV_NUM || d < 0 || d != floor(d))
        return fail(c, "invalid JSON Schema: '%s' must be a non-negative integer", kw);
    *out = d > 1e9 ? 1000000000L : (long)d;
    return 0;
}

static int literal(sc_t *c, const jv_t *v, gseq_t *s)
{
    char *buf = NULL;
    size_t n = 0, cap = 0;
    int rc = bl_jv_dump(v, &buf, &n, &cap);
    if (rc == 0)
        bl_seq_lit(&c->b, s, buf, n);
    free(buf);
    return rc;
}

static int compile_enum(sc_t *c, const jv_t *values, const char *kw, uint32_t *rule)
{
    if (values->kind != JV_ARR || values->n_items == 0)
        return fail(c, "invalid JSON Schema: '%s' must be a non-empty array", kw);
    return bl_sc_literals(c, values->items, values->n_items, rule);
}

static int compile_string(sc_t *c, const jv_t *s, uint32_t *rule)
{
    long min, max;
    int rc;
    if ((rc = count_kw(c, s, "minLength", &min)) < 0 ||
        (rc = count_kw(c, s, "maxLength", &max)) < 0)
        return rc;
    if (min <= 0 && (max < 0 || max > MAX_UNROLL)) {
        *rule = bl_sc_any_string(c);
        return 0;
    }
    if (min > MAX_UNROLL)
        return fail(c, "unsupported JSON Schema construct '%s' (over 1024)", "minLength");
    if (min < 0)
        min = 0;
    if (max > MAX_UNROLL)
        max = -1;
    if (max >= 0 && max < min)
        return fail(c, "invalid JSON Schema: %s", "maxLength < minLength");
    gb_t *b = &c->b;
    gseq_t q = {0};
    uint32_t ch = bl_sc_str_char(c), r = bl_gb_rule(b);
    bl_seq_push(b, &q, bl_gb_byte(b, '"'));
    for (long i = 0; i < min; i++)
        bl_seq_push(b, &q, ch);
    bl_seq_push(b, &q, G_REF | bl_gb_repeat(b, ch, max < 0 ? -1 : max - min));
    bl_seq_push(b, &q, bl_gb_byte(b, '"'));
    bl_gb_alt(b, r, &q);
    bl_seq_free(&q);
    *rule = G_REF | r;
    return 0;
}

static bool nonneg_bound(const jv_t *s)
{
    const jv_t *lo = bl_jv_get(s, "minimum");
    const jv_t *xlo = bl_jv_get(s, "exclusiveMinimum");
    return (lo && lo->kind == JV_NUM && strtod(lo->s, NULL) >= 0) ||
           (xlo && xlo->kind == JV_NUM && strtod(xlo->s, NULL) >= 0);
}

static int compile_array(sc_t *c, const jv_t *s, uint32_t *rule)
{
    long min, max;
    int rc;
    if ((rc = count_kw(c, s, "minItems", &min)) < 0 || (rc = count_kw(c, s, "maxItems", &max)) < 0)
        return rc;
    if (min > MAX_UNROLL)
        return fail(c, "unsupported JSON Schema construct '%s' (over 1024)", "minItems");
    if (min < 0)
        min = 0;
    if (max > MAX_UNROLL)
        max = -1;
    if (max >= 0 && max < min)
        return fail(c, "invalid JSON Schema: %s", "maxItems < minItems");
    const jv_t *items = bl_jv_get(s, "items");
    uint32_t item;
    if (items) {
        size_t pl = c->path_len;
        path_push(c, "items", 5);
        c->nest++;
        rc = compile(c, items, &item);
        c->nest--;
        c->path_len = pl;
        c->path[pl] = '\0';
        if (rc < 0)
            return rc;
    } else {
        item = bl_sc_any_value(c);
    }
    *rule = bl_sc_array_of(c, item, min, max);
    return 0;
}

typedef struct {
    const char *key;
    size_t key_len;
    uint32_t value;
    bool required;
} prop_t;

static bool is_required(const jv_t *req, const char *key, size_t n)
{
    for (size_t i = 0; req && i < req->n_items; i++)
        if (req->items[i]->n == n && !memcmp(req->items[i]->s, key, n))
            return true;
    return false;
}

static int compile_object(sc_t *c, const jv_t *s, uint32_t *rule)
{
    const jv_t *props = bl_jv_get(s, "properties");
    const jv_t *req = bl_jv_get(s, "required");
    const jv_t *addl = bl_jv_get(s, "additionalProperties");
    gb_t *b = &c->b;
    int rc = 0;
    if (props && props->kind != JV_OBJ)
        return fail(c, "invalid JSON Schema: '%s' must be an object", "properties");
    if (req && req->kind != JV_ARR)
        return fail(c, "invalid JSON Schema: '%s' must be an array of strings", "required");
    for (size_t i = 0; req && i < req->n_items; i++)
        if (req->items[i]->kind != JV_STR)
            return fail(c, "invalid JSON Schema: '%s' must be an array of strings", "required");
    size_t n_props = props ? props->n_items : 0;
    size_t n_req = req ? req->n_items : 0;
    if (n_props == 0 && n_req == 0) {
        if (addl && addl->kind == JV_FALSE) {
            gseq_t q = {0};
            uint32_t r = bl_gb_rule(b);
            bl_seq_push(b, &q, bl_gb_byte(b, '{'));
            bl_seq_push(b, &q, bl_sc_ws(c));
            bl_seq_push(b, &q, bl_gb_byte(b, '}'));
            bl_gb_alt(b, r, &q);
            bl_seq_free(&q);
            *rule = G_REF | r;
            return 0;
        }
        if (addl && addl->kind == JV_OBJ) {
            uint32_t v;
            size_t pl = c->path_len;
            path_push(c, "additionalProperties", 20);
            c->nest++;
            rc = compile(c, addl, &v);
            c->nest--;
            c->path_len = pl;
            c->path[pl] = '\0';
            if (rc < 0)
                return rc;
            *rule = bl_sc_map_of(c, bl_sc_any_string(c), v);
            return 0;
        }
        *rule = bl_sc_any_object(c);
        return 0;
    }
    prop_t *p = calloc(n_props + n_req, sizeof *p);
    if (!p)
        return BL_ENOMEM;
    size_t n = 0;
    size_t pl = c->path_len;
    for (size_t i = 0; i < n_props && rc == 0; i++) {
        path_push(c, "properties", 10);
        path_push(c, props->keys[i], props->key_lens[i]);
        c->nest++;
        rc = compile(c, props->items[i], &p[n].value);
        c->nest--;
        c->path_len = pl;
        c->path[pl] = '\0';
        p[n].key = props->keys[i];
        p[n].key_len = props->key_lens[i];
        p[n].required = is_required(req, p[n].key, p[n].key_len);
        n++;
    }
    /* required names with no property schema: last, any value */
    for (size_t i = 0; i < n_req && rc == 0; i++) {
        const jv_t *k = req->items[i];
        bool known = false;
        for (size_t j = 0; j < n; j++)
            known |= p[j].key_len == k->n && !memcmp(p[j].key, k->s, k->n);
        if (known)
            continue;
        p[n++] = (prop_t){k->s, k->n, bl_sc_any_value(c), true};
    }
    if (rc < 0)
        goto done;
    /* N_i: members i.. when none came before; A_i: when one did.
     *   N_i ::= kv_i A_(i+1) | N_(i+1) (the second only if i is optional)
     *   A_i ::= ',' ws kv_i A_(i+1) | A_(i+1)
     * with N_n = A_n = "", so the object is '{' ws N_0 '}'. */
    gseq_t q = {0};
    uint32_t next_n = bl_gb_rule(b), next_a = bl_gb_rule(b);
    bl_gb_alt(b, next_n, &q);
    bl_gb_alt(b, next_a, &q);
    for (size_t i = n; i-- > 0;) {
        uint32_t kv = bl_gb_rule(b);
        char *key = NULL;
        size_t kn = 0, kcap = 0;
        if ((rc = bl_jv_dump_str(p[i].key, p[i].key_len, &key, &kn, &kcap)) < 0) {
            free(key);
            bl_seq_free(&q);
            goto done;
        }
        bl_seq_lit(b, &q, key, kn);
        free(key);
        bl_seq_push(b, &q, bl_sc_ws(c));
        bl_seq_push(b, &q, bl_gb_byte(b, ':'));
        bl_seq_push(b, &q, bl_sc_ws(c));
        bl_seq_push(b, &q, p[i].value);
        bl_seq_push(b, &q, bl_sc_ws(c));
        bl_gb_alt(b, kv, &q);
        uint32_t ni = bl_gb_rule(b), ai = bl_gb_rule(b);
        bl_seq_push(b, &q, G_REF | kv);
        bl_seq_push(b, &q, G_REF | next_a);
        bl_gb_alt(b, ni, &q);
        bl_seq_push(b, &q, bl_gb_byte(b, ','));
        bl_seq_push(b, &q, bl_sc_ws(c));
        bl_seq_push(b, &q, G_REF | kv);
        bl_seq_push(b, &q, G_REF | next_a);
        bl_gb_alt(b, ai, &q);
        if (!p[i].required) {
            bl_seq_push(b, &q, G_REF | next_n);
            bl_gb_alt(b, ni, &q);
            bl_seq_push(b, &q, G_REF | next_a);
            bl_gb_alt(b, ai, &q);
        }
        next_n = ni;
        next_a = ai;
    }
    uint32_t r = bl_gb_rule(b);
    bl_seq_push(b, &q, bl_gb_byte(b, '{'));
    bl_seq_push(b, &q, bl_sc_ws(c));
    bl_seq_push(b, &q, G_REF | next_n);
    bl_seq_push(b, &q, bl_gb_byte(b, '}'));
    bl_gb_alt(b, r, &q);
    bl_seq_free(&q);
    *rule = G_REF | r;
done:
    free(p);
    return rc;
}

/* ---- $ref ------------------------------------------------------------------ */

/* Resolve a "#/a/b" JSON pointer against the root schema. */
static const jv_t *resolve(const jv_t *root, const char *ptr)
{
    if (ptr[0] != '#')
        return NULL;
    const char *p = ptr + 1;
    const jv_t *v = root;
    while (*p) {
        if (*p != '/')
            return NULL;
        p++;
        char seg[256];
        size_t n = 0;
        while (*p && *p != '/') {
            char ch = *p++;
            if (ch == '~' && (*p == '0' || *p == '1'))
                ch = *p++ == '0' ? '~' : '/';
            if (n + 1 >= sizeof seg)
                return NULL;
            seg[n++] = ch;
        }
        seg[n] = '\0';
        if (v->kind == JV_OBJ) {
            v = bl_jv_get(v, seg);
        } else if (v->kind == JV_ARR) {
            char *end;
            unsigned long i = strtoul(seg, &end, 10);
            v = (*end || n == 0 || i >= v->n_items) ? NULL : v->items[i];
        } else {
            return NULL;
        }
        if (!v)
            return NULL;
    }
    return v;
}

static int compile_ref(sc_t *c, const jv_t *ref, uint32_t *rule)
{
    if (ref->kind != JV_STR)
        return fail(c, "invalid JSON Schema: '%s' must be a string", "$ref");
    if (ref->s[0] != '#')
        return fail(c, "unsupported JSON Schema construct '%s' (only local \"#...\" references)",
                    "$ref");
    const jv_t *t = resolve(c->root, ref->s);
    if (!t)
        return fail(c, "invalid JSON Schema: '%s' does not resolve", "$ref");
    for (size_t i = 0; i < c->n_refs; i++) {
        ref_t *r = &c->refs[i];
        if (r->target != t)
            continue;
        /* recursion must pass through an object or array, else the
         * grammar would expand forever without reading a byte */
        if (r->busy && r->nest == c->nest)
            return fail(c, "invalid JSON Schema: '%s' cycle", "$ref");
        *rule = G_REF | r->rule;
        return 0;
    }
    if (c->n_refs == MAX_REFS)
        return fail(c, "unsupported JSON Schema construct '%s' (over 256 targets)", "$ref");
    size_t me = c->n_refs++;
    uint32_t r = bl_gb_rule(&c->b);
    c->refs[me] = (ref_t){t, r, c->nest, true};
    /* errors inside the target name the target's location */
    char saved[sizeof c->path];
    size_t saved_len = c->path_len;
    memcpy(saved, c->path, sizeof saved);
    snprintf(c->path, sizeof c->path, "%s", ref->s + 1);
    c->path_len = strlen(c->path);
    uint32_t body;
    int rc = compile(c, t, &body);
    memcpy(c->path, saved, sizeof saved);
    c->path_len = saved_len;
    c->refs[me].busy = false;
    if (rc < 0)
        return rc;
    gseq_t q = {0};
    bl_seq_push(&c->b, &q, body);
    bl_gb_alt(&c->b, r, &q);
    bl_seq_free(&q);
    *rule = G_REF | r;
    return 0;
}

/* ---- one schema ------------------------------------------------------------ */

static int compile_type(sc_t *c, const jv_t *s, const char *type, uint32_t *rule)
{
    gb_t *b = &c->b;
    if (!strcmp(type, "string"))
        return compile_string(c, s, rule);
    if (!strcmp(type, "number") || !strcmp(type, "integer")) {
        *rule = bl_sc_number(c, type[0] == 'i', nonneg_bound(s));
        return 0;
    }
    if (!strcmp(type, "object"))
        return compile_object(c, s, rule);
    if (!strcmp(type, "array"))
        return compile_array(c, s, rule);
    if (!strcmp(type, "boolean") || !strcmp(type, "null")) {
        gseq_t q = {0};
        uint32_t r = bl_gb_rule(b);
        if (type[0] == 'b') {
            bl_seq_lit(b, &q, "true", 4);
            bl_gb_alt(b, r, &q);
            bl_seq_lit(b, &q, "false", 5);
        } else {
            bl_seq_lit(b, &q, "null", 4);
        }
        bl_gb_alt(b, r, &q);
        bl_seq_free(&q);
        *rule = G_REF | r;
        return 0;
    }
    return fail(c, "invalid JSON Schema: unknown type '%s'", type);
}

static int compile_alts(sc_t *c, const jv_t *list, const char *kw, uint32_t *rule)
{
    if (list->kind != JV_ARR || list->n_items == 0)
        return fail(c, "invalid JSON Schema: '%s' must be a non-empty array", kw);
    gseq_t q = {0};
    uint32_t r = bl_gb_rule(&c->b);
    size_t pl = c->path_len;
    int rc = 0;
    for (size_t i = 0; i < list->n_items && rc == 0; i++) {
        uint32_t sub;
        path_push(c, kw, strlen(kw));
        path_push_idx(c, i);
        rc = compile(c, list->items[i], &sub);
        c->path_len = pl;
        c->path[pl] = '\0';
        if (rc == 0) {
            bl_seq_push(&c->b, &q, sub);
            bl_gb_alt(&c->b, r, &q);
        }
    }
    bl_seq_free(&q);
    *rule = G_REF | r;
    return rc;
}

static const char *infer_type(const jv_t *s)
{
    if (bl_jv_get(s, "properties") || bl_jv_get(s, "required") ||
        bl_jv_get(s, "additionalProperties"))
        return "object";
    if (bl_jv_get(s, "items") || bl_jv_get(s, "minItems") || bl_jv_get(s, "maxItems"))
        return "array";
    if (bl_jv_get(s, "minLength") || bl_jv_get(s, "maxLength"))
        return "string";
    return NULL;
}

static int compile_inner(sc_t *c, const jv_t *s, uint32_t *rule)
{
    if (s->kind == JV_TRUE) {
        *rule = bl_sc_any_value(c);
        return 0;
    }
    if (s->kind == JV_FALSE)
        return unsupported(c, "false");
    if (s->kind != JV_OBJ)
        return fail(c, "invalid JSON Schema: %s", "a schema must be an object or a boolean");
    int rc = check_keywords(c, s);
    if (rc < 0)
        return rc;
    const jv_t *v;
    if ((v = bl_jv_get(s, "$ref")))
        return compile_ref(c, v, rule);
    if ((v = bl_jv_get(s, "const"))) {
        gseq_t q = {0};
        uint32_t r = bl_gb_rule(&c->b);
        rc = literal(c, v, &q);
        bl_gb_alt(&c->b, r, &q);
        bl_seq_free(&q);
        *rule = G_REF | r;
        return rc;
    }
    if ((v = bl_jv_get(s, "enum")))
        return compile_enum(c, v, "enum", rule);
    if ((v = bl_jv_get(s, "anyOf")))
        return compile_alts(c, v, "anyOf", rule);
    if ((v = bl_jv_get(s, "oneOf")))
        return compile_alts(c, v, "oneOf", rule);
    if ((v = bl_jv_get(s, "allOf"))) {
        size_t pl = c->path_len;
        path_push(c, "allOf", 5);
        path_push_idx(c, 0);
        rc = compile(c, v->items[0], rule);
        c->path_len = pl;
        c->path[pl] = '\0';
        return rc;
    }
    const jv_t *type = bl_jv_get(s, "type");
    const jv_t *nullable = bl_jv_get(s, "nullable");
    const char *names[8];
    size_t n = 0;
    if (!type) {
        names[n] = infer_type(s);
        if (!names[n]) {
            *rule = bl_sc_any_value(c);
            return 0;
        }
        n++;
    } else if (type->kind == JV_STR) {
        names[n++] = type->s;
    } else if (type->kind == JV_ARR && type->n_items > 0 && type->n_items < 8) {
        for (size_t i = 0; i < type->n_items; i++) {
            if (type->items[i]->kind != JV_STR)
                return fail(c, "invalid JSON Schema: %s", "'type' must hold strings");
            names[n++] = type->items[i]->s;
        }
    } else {
        return fail(c, "invalid JSON Schema: %s",
                    "'type' must be a string or a non-empty array of type names");
    }
    if (nullable && nullable->kind == JV_TRUE)
        names[n++] = "null";
    if (n == 1)
        return compile_type(c, s, names[0], rule);
    gseq_t q = {0};
    uint32_t r = bl_gb_rule(&c->b);
    for (size_t i = 0; i < n && rc == 0; i++) {
        uint32_t sub;
        if ((rc = compile_type(c, s, names[i], &sub)) == 0) {
            bl_seq_push(&c->b, &q, sub);
            bl_gb_alt(&c->b, r, &q);
        }
    }
    bl_seq_free(&q);
    *rule = G_REF | r;
    return rc;
}

static int compile(sc_t *c, const jv_t *s, uint32_t *rule)
{
    if (++c->depth > MAX_DEPTH) {
        c->depth--;
        return fail(c, "unsupported JSON Schema construct '%s' (nesting over 48 levels)", "schema");
    }
    int rc = compile_inner(c, s, rule);
    c->depth--;
    return rc;
}

/* ---- entry points ---------------------------------------------------------- */

static void sc_init(sc_t *c, char *err, size_t errlen)
{
    memset(c, 0, sizeof *c);
    c->err = err;
    c->errlen = errlen;
    c->r_ws = c->r_char = c->r_str = c->r_num = c->r_unum = c->r_int = c->r_uint = -1;
    c->r_value = c->r_obj = -1;
}

/* The start rule S ::= top, so the root is always a plain rule. */
static int finish(sc_t *c, uint32_t top, bl_grammar_t **out)
{
    gseq_t q = {0};
    uint32_t root = bl_gb_rule(&c->b);
    bl_seq_push(&c->b, &q, top);
    bl_gb_alt(&c->b, root, &q);
    bl_seq_free(&q);
    return bl_gb_finish(&c->b, root, out);
}

int bl_grammar_from_schema(const char *schema, size_t len, bl_grammar_t **out, char *err,
                           size_t errlen)
{
    if (!out)
        return BL_EINVAL;
    *out = NULL;
    if (err && errlen)
        err[0] = '\0';
    char jerr[128];
    jv_t *root = NULL;
    int rc = bl_jv_parse(schema, len, &root, jerr, sizeof jerr);
    if (rc < 0) {
        if (err && errlen)
            snprintf(err, errlen, "JSON Schema is not valid JSON: %s", jerr);
        return rc == BL_ENOMEM ? rc : BL_EINVAL;
    }
    sc_t *c = malloc(sizeof *c);
    if (!c) {
        bl_jv_free(root);
        return BL_ENOMEM;
    }
    sc_init(c, err, errlen);
    c->root = root;
    uint32_t top;
    rc = compile(c, root, &top);
    if (rc == 0) {
        rc = finish(c, top, out);
        if (rc == BL_ERANGE) {
            rc = BL_EINVAL; /* the client's schema, not our memory */
            if (err && errlen)
                snprintf(err, errlen, "JSON Schema too large: over %u grammar elements",
                         GB_MAX_ELEMS);
        } else if (rc < 0 && err && errlen) {
            snprintf(err, errlen, "out of memory compiling the JSON Schema");
        }
    } else {
        bl_gb_free(&c->b);
    }
    free(c);
    bl_jv_free(root);
    return rc;
}

int bl_grammar_json_object(bl_grammar_t **out)
{
    if (!out)
        return BL_EINVAL;
    *out = NULL;
    sc_t *c = malloc(sizeof *c);
    if (!c)
        return BL_ENOMEM;
    sc_init(c, NULL, 0);
    int rc = finish(c, bl_sc_any_object(c), out);
    free(c);
    return rc;
}
