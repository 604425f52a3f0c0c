/* providers: the upstream APIs routes send requests to. */
#include "config/reader.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_PROVIDERS 256
#define MAX_HEADERS 64

/* by bl_provider_type_t */
static const char *const TYPES[] = {"openai", "local", "anthropic", "ballast"};

/* Names show up in response headers, metrics labels and logs. */
static bool good_name(const char *s)
{
    if (!*s)
        return false;
    for (; *s; s++) {
        char ch = *s;
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '-' || ch == '_' || ch == '.'))
            return false;
    }
    return true;
}

/* RFC 9110 token characters, for header names. */
static bool token_char(unsigned char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           (ch && strchr("!#$%&'*+-.^_`|~", ch));
}

static int read_base_url(bl_yaml_ctx_t *x, yaml_node_t *n, bl_provider_cfg_t *p)
{
    bl_scalar_t v;
    int rc = bl_cfg_string(x, n, "base_url", &v);
    if (rc)
        return rc;
    const char *why = NULL;
    size_t skip = 0;
    if (v.len > 7 && !strncasecmp(v.s, "http://", 7))
        skip = 7;
    else if (v.len > 8 && !strncasecmp(v.s, "https://", 8))
        skip = 8;
    if (!skip) {
        why = "must start with http:// or https://";
    } else if (v.s[skip] == '/' || v.s[skip] == '\0') {
        why = "has no host";
    } else {
        for (size_t i = 0; i < v.len; i++)
            if ((unsigned char)v.s[i] <= 0x20 || v.s[i] == 0x7f) {
                why = "must not contain spaces or control characters";
                break;
            }
    }
    if (why) {
        char shown[96];
        bl_cfg_show(&v, shown, sizeof shown);
        bl_cfg_scalar_free(&v);
        return bl_cfg_error(x, n->start_mark, "base_url %s %s", shown, why);
    }
    while (v.len > skip + 1 && v.s[v.len - 1] == '/')
        v.s[--v.len] = '\0';
    p->base_url = v.s;
    return 0;
}

static int read_headers(bl_yaml_ctx_t *x, yaml_node_t *n, bl_provider_cfg_t *p)
{
    if (bl_cfg_is_null(n))
        return 0;
    if (n->type != YAML_MAPPING_NODE)
        return bl_cfg_error(x, n->start_mark, "headers: expected a mapping, got %s",
                            bl_cfg_kind(n));
    size_t count = (size_t)(n->data.mapping.pairs.top - n->data.mapping.pairs.start);
    if (count > MAX_HEADERS)
        return bl_cfg_error(x, n->start_mark, "headers: too many (at most %d)", MAX_HEADERS);
    if (count == 0)
        return 0;
    p->headers = calloc(count, sizeof *p->headers);
    if (!p->headers)
        return BL_ENOMEM;
    for (size_t i = 0; i < count; i++) {
        yaml_node_pair_t *pair = &n->data.mapping.pairs.start[i];
        yaml_node_t *k = bl_cfg_node(x, pair->key), *val = bl_cfg_node(x, pair->value);
        if (k->type != YAML_SCALAR_NODE || k->data.scalar.length == 0)
            return bl_cfg_error(x, k->start_mark, "headers: expected a header name");
        for (size_t j = 0; j < k->data.scalar.length; j++)
            if (!token_char(k->data.scalar.value[j]))
                return bl_cfg_error(x, k->start_mark, "headers: invalid header name");
        /* A header value may carry a credential: never echo it. */
        bl_scalar_t v;
        int rc = bl_cfg_string(x, val, "header value", &v);
        if (rc)
            return rc;
        for (size_t j = 0; j < v.len; j++) {
            unsigned char ch = (unsigned char)v.s[j];
            if ((ch < 0x20 && ch != '\t') || ch == 0x7f) {
                bl_cfg_scalar_free(&v);
                return bl_cfg_error(x, val->start_mark,
                                    "headers: value of '%s' contains a control character",
                                    (const char *)k->data.scalar.value);
            }
        }
        bl_buf_t line = {0};
        rc = bl_buf_append(&line, k->data.scalar.value, k->data.scalar.length);
        if (!rc)
            rc = bl_buf_append(&line, ": ", 2);
        if (!rc)
            rc = bl_buf_append(&line, v.s, v.len);
        bl_cfg_scalar_free(&v);
        if (rc) {
            bl_buf_free(&line);
            return rc;
        }
        p->headers[i] = bl_buf_steal(&line, NULL);
        p->n_headers = i + 1;
    }
    return 0;
}

static int read_timeouts(bl_yaml_ctx_t *x, yaml_node_t *n, bl_timeouts_t *t)
{
    static const char *const names[] = {"connect_ms", "first_token_ms", "total_ms"};
    yaml_node_t *v[3];
    int rc = bl_cfg_fields(x, n, "timeouts", names, 3, v);
    if (rc)
        return rc;
    if (v[0] && (rc = bl_cfg_u64(x, v[0], names[0], 1, 600000, &t->connect_ms)))
        return rc;
    if (v[1] && (rc = bl_cfg_u64(x, v[1], names[1], 1, 3600000, &t->first_token_ms)))
        return rc;
    if (v[2] && (rc = bl_cfg_u64(x, v[2], names[2], 1, 86400000, &t->total_ms)))
        return rc;
    return 0;
}

static int hexval(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

/* type: local. A relative model path is taken from the config file's folder,
 * so a config and its model can move together. */
static int read_local(bl_yaml_ctx_t *x, yaml_node_t *n, yaml_node_t *const *v, bl_provider_cfg_t *p)
{
    bl_local_cfg_t *l = &p->local;
    int rc;
    *l = (bl_local_cfg_t){
        .context = 4096, .slots = 2, .max_queue = 32, .max_tokens = 1024, .prefill_chunk = 256};
    if (!v[6])
        return bl_cfg_error(x, n->start_mark, "provider '%s': type local needs 'model' (a GGUF file)",
                            p->name);
    bl_scalar_t m;
    if ((rc = bl_cfg_string(x, v[6], "model", &m)))
        return rc;
    if (m.len == 0) {
        bl_cfg_scalar_free(&m);
        return bl_cfg_error(x, v[6]->start_mark, "model: empty path");
    }
    if (m.s[0] == '/' || !strchr(x->file, '/')) {
        l->model_path = m.s;
    } else {
        size_t dir = (size_t)(strrchr(x->file, '/') - x->file);
        l->model_path = malloc(dir + 1 + m.len + 1);
        if (!l->model_path) {
            bl_cfg_scalar_free(&m);
            return BL_ENOMEM;
        }
        memcpy(l->model_path, x->file, dir + 1);
        memcpy(l->model_path + dir + 1, m.s, m.len + 1);
        bl_cfg_scalar_free(&m);
    }
    if (v[7]) {
        bl_scalar_t h;
        if ((rc = bl_cfg_string(x, v[7], "sha256", &h)))
            return rc;
        bool ok = h.len == 64;
        for (size_t j = 0; ok && j < 32; j++) {
            int hi = hexval(h.s[2 * j]), lo = hexval(h.s[2 * j + 1]);
            ok = hi >= 0 && lo >= 0;
            if (ok)
                l->sha256[j] = (unsigned char)(hi << 4 | lo);
        }
        bl_cfg_scalar_free(&h);
        if (!ok)
            return bl_cfg_error(x, v[7]->start_mark, "sha256: expected 64 hex digits");
        l->has_sha256 = true;
    }
    if (v[8] && (rc = bl_cfg_uint(x, v[8], "threads", 0, 256, &l->threads)))
        return rc;
    if (v[9] && (rc = bl_cfg_uint(x, v[9], "context", 16, 1u << 20, &l->context)))
        return rc;
    if (v[10] && (rc = bl_cfg_uint(x, v[10], "slots", 1, 64, &l->slots)))
        return rc;
    if (v[11] && (rc = bl_cfg_uint(x, v[11], "max_queue", 0, 100000, &l->max_queue)))
        return rc;
    if (v[12] && (rc = bl_cfg_uint(x, v[12], "max_tokens", 1, 1u << 20, &l->max_tokens)))
        return rc;
    if (v[16] && (rc = bl_cfg_uint(x, v[16], "prefill_chunk", 0, 1u << 20, &l->prefill_chunk)))
        return rc;
    return 0;
}

/* api: which OpenAI API the provider is spoken to in. */
static int read_api(bl_yaml_ctx_t *x, yaml_node_t *n, bl_provider_cfg_t *p)
{
    bl_scalar_t t;
    int rc = bl_cfg_string(x, n, "api", &t);
    if (rc)
        return rc;
    if (!strcmp(t.s, "chat")) {
        p->api = BL_API_CHAT;
    } else if (!strcmp(t.s, "responses")) {
        p->api = BL_API_RESPONSES;
    } else {
        char shown[96];
        bl_cfg_show(&t, shown, sizeof shown);
        bl_cfg_scalar_free(&t);
        return bl_cfg_error(x, n->start_mark, "api: unknown value %s (known: chat, responses)",
                            shown);
    }
    bl_cfg_scalar_free(&t);
    return 0;
}

/* A header value from the config: printable, no CR/LF. */
static bool header_safe(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return false;
    return true;
}

/* type: anthropic — the API version header and beta flags sent with every request. */
static int read_anthropic(bl_yaml_ctx_t *x, yaml_node_t *ver, yaml_node_t *beta,
                          bl_provider_cfg_t *p)
{
    int rc;
    if (ver) {
        if ((rc = bl_cfg_strdup(x, ver, "version", &p->anthropic_version)))
            return rc;
        if (!*p->anthropic_version || !header_safe(p->anthropic_version))
            return bl_cfg_error(x, ver->start_mark, "version: expected a date like 2023-06-01");
    } else if (!(p->anthropic_version = strdup("2023-06-01"))) {
        return BL_ENOMEM;
    }
    if (!beta || bl_cfg_is_null(beta))
        return 0;
    bl_buf_t b = {0};
    if (beta->type == YAML_SEQUENCE_NODE) {
        for (yaml_node_item_t *it = beta->data.sequence.items.start;
             it < beta->data.sequence.items.top; it++) {
            yaml_node_t *e = bl_cfg_node(x, *it);
            bl_scalar_t v;
            if ((rc = bl_cfg_string(x, e, "beta", &v))) {
                bl_buf_free(&b);
                return rc;
            }
            if (b.len)
                bl_buf_append(&b, ",", 1);
            bl_buf_append(&b, v.s, v.len);
            bl_cfg_scalar_free(&v);
        }
    } else {
        bl_scalar_t v;
        if ((rc = bl_cfg_string(x, beta, "beta", &v)))
            return rc;
        bl_buf_append(&b, v.s, v.len);
        bl_cfg_scalar_free(&v);
    }
    if (!b.len) {
        bl_buf_free(&b); /* beta: [] is no flags */
        return 0;
    }
    p->anthropic_beta = bl_buf_steal(&b, NULL);
    if (p->anthropic_beta && !header_safe(p->anthropic_beta))
        return bl_cfg_error(x, beta->start_mark, "beta: contains a control character");
    return 0;
}

static int read_provider(bl_yaml_ctx_t *x, yaml_node_t *n, bl_config_t *c, size_t idx)
{
    static const char *const names[] = {"name",    "type",      "base_url", "api_key",
                                        "headers", "timeouts",  "model",    "sha256",
                                        "threads", "context",   "slots",    "max_queue",
                                        "max_tokens", "api",     "version",  "beta",
                                        "prefill_chunk"};
    yaml_node_t *v[BL_ARRAY_LEN(names)];
    bl_provider_cfg_t *p = &c->providers[idx];
    p->line = (unsigned)n->start_mark.line + 1;
    p->timeouts = (bl_timeouts_t){.connect_ms = 2000, .first_token_ms = 10000, .total_ms = 120000};
    if (n->type != YAML_MAPPING_NODE)
        return bl_cfg_error(x, n->start_mark, "providers: each entry must be a mapping, got %s",
                            bl_cfg_kind(n));
    int rc = bl_cfg_fields(x, n, "provider", names, BL_ARRAY_LEN(names), v);
    if (rc)
        return rc;
    if (!v[0])
        return bl_cfg_error(x, n->start_mark, "provider: missing required key 'name'");
    if ((rc = bl_cfg_strdup(x, v[0], "name", &p->name)))
        return rc;
    if (!good_name(p->name))
        return bl_cfg_error(x, v[0]->start_mark,
                            "provider name must be non-empty and use only letters, digits, "
                            "'.', '_' and '-'");
    for (size_t i = 0; i < idx; i++)
        if (!strcmp(c->providers[i].name, p->name))
            return bl_cfg_error(x, v[0]->start_mark,
                                "duplicate provider name '%s' (first defined at line %u)", p->name,
                                c->providers[i].line);
    if (v[1]) {
        bl_scalar_t t;
        if ((rc = bl_cfg_string(x, v[1], "type", &t)))
            return rc;
        size_t k = 0;
        while (k < BL_ARRAY_LEN(TYPES) && strcmp(t.s, TYPES[k]))
            k++;
        if (k == BL_ARRAY_LEN(TYPES)) {
            char shown[96], list[128];
            bl_cfg_show(&t, shown, sizeof shown);
            bl_cfg_join(TYPES, BL_ARRAY_LEN(TYPES), list, sizeof list);
            bl_cfg_scalar_free(&t);
            return bl_cfg_error(x, v[1]->start_mark, "unknown provider type %s (known types: %s)",
                                shown, list);
        }
        bl_cfg_scalar_free(&t);
        p->type = (bl_provider_type_t)k;
    }
    if (v[13] && p->type != BL_PROVIDER_OPENAI)
        return bl_cfg_error(x, v[13]->start_mark, "provider '%s': 'api' is only for type openai",
                            p->name);
    for (size_t i = 14; i <= 15; i++)
        if (v[i] && p->type != BL_PROVIDER_ANTHROPIC)
            return bl_cfg_error(x, v[i]->start_mark,
                                "provider '%s': '%s' is only for type anthropic", p->name, names[i]);
    if (p->type == BL_PROVIDER_LOCAL) {
        for (size_t i = 2; i <= 4; i++)
            if (v[i])
                return bl_cfg_error(x, v[i]->start_mark, "provider '%s': '%s' is not used by type local",
                                    p->name, names[i]);
        return read_local(x, n, v, p);
    }
    for (size_t i = 6; i <= 16; i++)
        if (v[i] && (i <= 12 || i == 16))
            return bl_cfg_error(x, v[i]->start_mark,
                                "provider '%s': '%s' is only for type local", p->name, names[i]);
    if (v[13] && (rc = read_api(x, v[13], p)))
        return rc;
    if (p->type == BL_PROVIDER_ANTHROPIC && (rc = read_anthropic(x, v[14], v[15], p)))
        return rc;
    if (!v[2] && p->type == BL_PROVIDER_ANTHROPIC) {
        p->base_url = strdup("https://api.anthropic.com/v1");
        if (!p->base_url)
            return BL_ENOMEM;
    } else if (!v[2]) {
        return bl_cfg_error(x, n->start_mark, "provider '%s': missing required key 'base_url'",
                            p->name);
    } else if ((rc = read_base_url(x, v[2], p))) {
        return rc;
    }
    if (v[3]) {
        bl_scalar_t k;
        if ((rc = bl_cfg_string(x, v[3], "api_key", &k)))
            return rc;
        /* Empty (e.g. `${KEY:-}`) means no key: lets one file serve with and
         * without credentials. */
        if (k.len == 0)
            bl_cfg_scalar_free(&k);
        else
            p->api_key = k.s;
    }
    if (v[4] && (rc = read_headers(x, v[4], p)))
        return rc;
    if (v[5] && (rc = read_timeouts(x, v[5], &p->timeouts)))
        return rc;
    return 0;
}

int bl_cfg_read_providers(bl_yaml_ctx_t *x, yaml_node_t *n, bl_config_t *c)
{
    yaml_node_item_t *items;
    size_t count;
    int rc = bl_cfg_list(x, n, "providers", &items, &count);
    if (rc || count == 0)
        return rc;
    if (count > MAX_PROVIDERS)
        return bl_cfg_error(x, n->start_mark, "providers: too many (at most %d)", MAX_PROVIDERS);
    c->providers = calloc(count, sizeof *c->providers);
    if (!c->providers)
        return BL_ENOMEM;
    c->n_providers = count;
    for (size_t i = 0; i < count; i++)
        if ((rc = read_provider(x, bl_cfg_node(x, items[i]), c, i)))
            return rc;
    return 0;
}
