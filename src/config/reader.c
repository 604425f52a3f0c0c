/* Typed getters over a libyaml document; see reader.h. */
#include "config/reader.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <openssl/crypto.h>

int bl_cfg_error(bl_yaml_ctx_t *x, yaml_mark_t m, const char *fmt, ...)
{
    if (!x->err || x->errlen == 0)
        return BL_EINVAL;
    /* libyaml marks are 0-based; people count from 1. */
    int n = snprintf(x->err, x->errlen, "%s:%zu:%zu: ", x->file, m.line + 1, m.column + 1);
    if (n >= 0 && (size_t)n < x->errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(x->err + n, x->errlen - (size_t)n, fmt, ap);
        va_end(ap);
    }
    return BL_EINVAL;
}

yaml_node_t *bl_cfg_node(bl_yaml_ctx_t *x, int id)
{
    return yaml_document_get_node(x->doc, id);
}

bool bl_cfg_is_null(const yaml_node_t *n)
{
    if (!n)
        return true;
    if (n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return false;
    const char *s = (const char *)n->data.scalar.value;
    size_t len = n->data.scalar.length;
    return len == 0 || (len == 1 && s[0] == '~') ||
           (len == 4 && (!memcmp(s, "null", 4) || !memcmp(s, "Null", 4) || !memcmp(s, "NULL", 4)));
}

const char *bl_cfg_kind(const yaml_node_t *n)
{
    if (!n || bl_cfg_is_null(n))
        return "nothing";
    switch (n->type) {
    case YAML_SEQUENCE_NODE:
        return "a list";
    case YAML_MAPPING_NODE:
        return "a mapping";
    default:
        return "a string";
    }
}

int bl_cfg_suggest(const char *word, const char *const *cands, size_t n)
{
    int best = -1;
    unsigned best_d = 3;
    for (size_t i = 0; i < n; i++) {
        unsigned d = bl_edit_distance(word, cands[i]);
        /* "delay" for "delay_ms": the unit suffix is the usual thing left out */
        size_t wl = strlen(word), cl = strlen(cands[i]);
        if (d > 2 && cl == wl + 3 && !strncmp(cands[i], word, wl) && !strcmp(cands[i] + wl, "_ms"))
            d = 2;
        if (d < best_d && d < strlen(cands[i])) {
            best_d = d;
            best = (int)i;
        }
    }
    return best;
}

void bl_cfg_join(const char *const *names, size_t n, char *buf, size_t len)
{
    size_t off = 0;
    if (len)
        buf[0] = '\0';
    for (size_t i = 0; i < n && off < len; i++) {
        int w = snprintf(buf + off, len - off, "%s%s", i ? ", " : "", names[i]);
        if (w < 0)
            break;
        off += (size_t)w;
    }
}

/* Key text for messages: printable ASCII only, bounded. */
static void key_text(const yaml_node_t *k, char *buf, size_t n)
{
    size_t len = k->data.scalar.length, o = 0;
    const unsigned char *s = k->data.scalar.value;
    for (size_t i = 0; i < len && o + 4 < n; i++) {
        if (o >= 60) {
            memcpy(buf + o, "...", 3);
            o += 3;
            break;
        }
        buf[o++] = (s[i] >= 0x20 && s[i] < 0x7f) ? (char)s[i] : '?';
    }
    buf[o] = '\0';
}

int bl_cfg_fields(bl_yaml_ctx_t *x, yaml_node_t *map, const char *where, const char *const *names,
                  size_t n, yaml_node_t **vals)
{
    for (size_t i = 0; i < n; i++)
        vals[i] = NULL;
    if (bl_cfg_is_null(map))
        return 0;
    if (map->type != YAML_MAPPING_NODE)
        return bl_cfg_error(x, map->start_mark, "%s: expected a mapping, got %s", where,
                            bl_cfg_kind(map));
    yaml_node_t *keys[64] = {0}; /* first key node seen per name, for duplicates */
    if (n > BL_ARRAY_LEN(keys))
        return BL_EINVAL;
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
         p++) {
        yaml_node_t *k = bl_cfg_node(x, p->key);
        yaml_node_t *v = bl_cfg_node(x, p->value);
        if (!k || !v)
            return BL_EFORMAT;
        if (k->type != YAML_SCALAR_NODE)
            return bl_cfg_error(x, k->start_mark, "%s: keys must be strings, got %s", where,
                                bl_cfg_kind(k));
        char kt[80];
        key_text(k, kt, sizeof kt);
        size_t i = 0;
        while (i < n && !(strlen(names[i]) == k->data.scalar.length &&
                          !memcmp(names[i], k->data.scalar.value, k->data.scalar.length)))
            i++;
        if (i == n) {
            int s = bl_cfg_suggest(kt, names, n);
            if (s >= 0)
                return bl_cfg_error(x, k->start_mark, "unknown key '%s' in %s (did you mean '%s'?)",
                                    kt, where, names[s]);
            char list[512];
            bl_cfg_join(names, n, list, sizeof list);
            return bl_cfg_error(x, k->start_mark, "unknown key '%s' in %s (valid keys: %s)", kt,
                                where, list);
        }
        if (keys[i])
            return bl_cfg_error(x, k->start_mark,
                                "duplicate key '%s' in %s (first set at line %zu)", kt, where,
                                keys[i]->start_mark.line + 1);
        keys[i] = k;
        vals[i] = v;
    }
    return 0;
}

int bl_cfg_list(bl_yaml_ctx_t *x, yaml_node_t *n, const char *key, yaml_node_item_t **items,
                size_t *count)
{
    *items = NULL;
    *count = 0;
    if (bl_cfg_is_null(n))
        return 0;
    if (n->type != YAML_SEQUENCE_NODE)
        return bl_cfg_error(x, n->start_mark, "%s: expected a list, got %s", key, bl_cfg_kind(n));
    *items = n->data.sequence.items.start;
    *count = (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
    return 0;
}

void bl_cfg_scalar_free(bl_scalar_t *v)
{
    if (v->s) {
        OPENSSL_cleanse(v->s, v->len);
        free(v->s);
    }
    v->s = NULL;
    v->len = 0;
}

int bl_cfg_string(bl_yaml_ctx_t *x, yaml_node_t *n, const char *key, bl_scalar_t *out)
{
    out->s = NULL;
    out->len = 0;
    out->from_env = false;
    if (n->type != YAML_SCALAR_NODE)
        return bl_cfg_error(x, n->start_mark, "%s: expected a string, got %s", key, bl_cfg_kind(n));
    if (bl_cfg_is_null(n)) {
        out->s = strdup("");
        return out->s ? 0 : BL_ENOMEM;
    }
    int rc = bl_cfg_expand(x, n, out);
    if (rc)
        return rc;
    if (memchr(out->s, '\0', out->len)) {
        bl_cfg_scalar_free(out);
        return bl_cfg_error(x, n->start_mark, "%s: value contains a NUL byte", key);
    }
    return 0;
}

int bl_cfg_strdup(bl_yaml_ctx_t *x, yaml_node_t *n, const char *key, char **out)
{
    bl_scalar_t v;
    int rc = bl_cfg_string(x, n, key, &v);
    if (rc)
        return rc;
    *out = v.s;
    return 0;
}

void bl_cfg_show(const bl_scalar_t *v, char *buf, size_t n)
{
    if (v->from_env) {
        snprintf(buf, n, "a value from the environment");
        return;
    }
    size_t o = 0;
    if (n < 8) {
        if (n)
            buf[0] = '\0';
        return;
    }
    buf[o++] = '\'';
    for (size_t i = 0; i < v->len && o + 5 < n; i++) {
        if (i >= 64) {
            memcpy(buf + o, "...", 3);
            o += 3;
            break;
        }
        unsigned char ch = (unsigned char)v->s[i];
        buf[o++] = (ch >= 0x20 && ch < 0x7f) ? (char)ch : '?';
    }
    buf[o++] = '\'';
    buf[o] = '\0';
}

/* A scalar for a number-typed key: present, a scalar, not empty. */
static int number_text(bl_yaml_ctx_t *x, yaml_node_t *n, const char *key, const char *what,
                       bl_scalar_t *v)
{
    if (n->type != YAML_SCALAR_NODE || bl_cfg_is_null(n))
        return bl_cfg_error(x, n->start_mark, "%s: expected %s, got %s", key, what, bl_cfg_kind(n));
    return bl_cfg_string(x, n, key, v);
}

static int range_error(bl_yaml_ctx_t *x, yaml_node_t *n, const char *key, uint64_t lo, uint64_t hi,
                       uint64_t got)
{
    return bl_cfg_error(x, n->start_mark, "%s must be between %llu and %llu, got %llu", key,
                        (unsigned long long)lo, (unsigned long long)hi, (unsigned long long)got);
}

int bl_cfg_u64(bl_yaml_ctx_t *x, yaml_node_t *n, const char *key, uint64_t lo, uint64_t hi,
               uint64_t *out)
{
    bl_scalar_t v;
    int rc = number_text(x, n, key, "a number", &v);
    if (rc)
        return rc;
    uint64_t u = 0;
    rc = bl_parse_u64(v.s, v.len, &u);
    if (rc == BL_EINVAL && v.len > 0 && strspn(v.s, "0123456789") == v.len)
        rc = BL_ERANGE; /* more digits than any uint64 */
    if (rc == BL_ERANGE) {
        rc = bl_cfg_error(x, n->start_mark, "%s: number is too large", key);
    } else if (rc) {
        char shown[96];
        bl_cfg_show(&v, shown, sizeof shown);
        rc = bl_cfg_error(x, n->start_mark, "%s: expected a whole number, got %s", key, shown);
    } else if (u < lo || u > hi) {
        rc = range_error(x, n, key, lo, hi, u);
    } else {
        *out = u;
    }
    bl_cfg_scalar_free(&v);
    return rc;
}

int bl_cfg_uint(bl_yaml_ctx_t *x, yaml_node_t *n, const char *key, unsigned lo, unsigned hi,
                unsigned *out)
{
    uint64_t u = 0;
    int rc = bl_cfg_u64(x, n, key, lo, hi, &u);
    if (!rc)
        *out = (unsigned)u;
    return rc;
}

int bl_cfg_parse_size(const char *s, uint64_t *out)
{
    size_t i = 0;
    while (s[i] >= '0' && s[i] <= '9')
        i++;
    uint64_t num;
    int rc = bl_parse_u64(s, i, &num);
    if (rc)
        return i > 20 ? BL_ERANGE : rc;
    const char *u = s + i;
    while (*u == ' ')
        u++;
    static const struct {
        const char *unit;
        uint64_t mult;
    } units[] = {
        {"", 1},           {"B", 1},           {"KB", 1000},
        {"MB", 1000000},   {"GB", 1000000000}, {"KiB", 1u << 10},
        {"MiB", 1u << 20}, {"GiB", 1u << 30},
    };
    for (size_t k = 0; k < BL_ARRAY_LEN(units); k++) {
        if (strcasecmp(u, units[k].unit) != 0)
            continue;
        if (*units[k].unit == '\0' && u != s + i)
            return BL_EINVAL; /* trailing spaces with no unit */
        if (__builtin_mul_overflow(num, units[k].mult, out))
            return BL_ERANGE;
        return 0;
    }
    return BL_EINVAL;
}

int bl_cfg_size(bl_yaml_ctx_t *x, yaml_node_t *n, const char *key, uint64_t lo, uint64_t hi,
                size_t *out)
{
    bl_scalar_t v;
    int rc = number_text(x, n, key, "a size", &v);
    if (rc)
        return rc;
    uint64_t u = 0;
    rc = bl_cfg_parse_size(v.s, &u);
    if (rc == BL_ERANGE) {
        rc = bl_cfg_error(x, n->start_mark, "%s: size is too large", key);
    } else if (rc) {
        char shown[96];
        bl_cfg_show(&v, shown, sizeof shown);
        rc = bl_cfg_error(x, n->start_mark, "%s: expected a size like 65536, 64KiB or 8MiB, got %s",
                          key, shown);
    } else if (u < lo || u > hi || u > SIZE_MAX) {
        rc = range_error(x, n, key, lo, hi, u);
    } else {
        *out = (size_t)u;
    }
    bl_cfg_scalar_free(&v);
    return rc;
}

int bl_cfg_bool(bl_yaml_ctx_t *x, yaml_node_t *n, const char *key, bool *out)
{
    static const char *const yes[] = {"true", "yes", "on"}, *const no[] = {"false", "no", "off"};
    bl_scalar_t v;
    int rc = bl_cfg_string(x, n, key, &v);
    if (rc)
        return rc;
    for (size_t i = 0; i < 3; i++) {
        if (!strcasecmp(v.s, yes[i]) || !strcasecmp(v.s, no[i])) {
            *out = !strcasecmp(v.s, yes[i]);
            bl_cfg_scalar_free(&v);
            return 0;
        }
    }
    char shown[96];
    bl_cfg_show(&v, shown, sizeof shown);
    bl_cfg_scalar_free(&v);
    return bl_cfg_error(x, n->start_mark, "%s: expected true or false, got %s", key, shown);
}

int bl_cfg_double(bl_yaml_ctx_t *x, yaml_node_t *n, const char *key, double *out)
{
    bl_scalar_t v;
    int rc = number_text(x, n, key, "a number", &v);
    if (rc)
        return rc;
    char *end = NULL;
    errno = 0;
    double d = strtod(v.s, &end);
    if (v.len == 0 || end != v.s + v.len || errno || !isfinite(d) ||
        isspace((unsigned char)v.s[0])) {
        char shown[96];
        bl_cfg_show(&v, shown, sizeof shown);
        rc = bl_cfg_error(x, n->start_mark, "%s: expected a number, got %s", key, shown);
    } else {
        *out = d;
    }
    bl_cfg_scalar_free(&v);
    return rc;
}
