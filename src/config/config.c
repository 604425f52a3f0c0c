/* Loading, reference counting, freeing and route lookup. */
#include "config/config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>
#include <openssl/crypto.h>

#include "config/reader.h"

#define MAX_CONFIG_BYTES (16u << 20)

static void free_secret(char *s)
{
    if (s) {
        OPENSSL_cleanse(s, strlen(s));
        free(s);
    }
}

void bl_cfg_free(bl_config_t *c)
{
    if (!c)
        return;
    free(c->file);
    free(c->listen.host);
    if (c->key_hashes) {
        OPENSSL_cleanse(c->key_hashes, c->n_keys * sizeof *c->key_hashes);
        free(c->key_hashes);
    }
    free(c->log_level);
    free_secret(c->redis_url);
    free(c->response_store.path);
    for (size_t i = 0; i < c->n_providers; i++) {
        bl_provider_cfg_t *p = &c->providers[i];
        free(p->name);
        free(p->base_url);
        free(p->local.model_path);
        free(p->anthropic_version);
        free(p->anthropic_beta);
        free_secret(p->api_key);
        for (size_t j = 0; j < p->n_headers; j++)
            free_secret(p->headers[j]);
        free(p->headers);
    }
    free(c->providers);
    for (size_t i = 0; i < c->n_routes; i++) {
        bl_route_cfg_t *r = &c->routes[i];
        free(r->model);
        for (size_t j = 0; j < r->n_aliases; j++)
            free(r->aliases[j]);
        free(r->aliases);
        for (size_t j = 0; j < r->n_tiers; j++) {
            for (size_t k = 0; k < r->tiers[j].n_targets; k++)
                free(r->tiers[j].targets[k].model);
            free(r->tiers[j].targets);
        }
        free(r->tiers);
    }
    free(c->routes);
    free(c);
}

/* The document may hold plain client keys or api keys written inline. */
static void wipe_document(yaml_document_t *d)
{
    for (yaml_node_t *n = d->nodes.start; n < d->nodes.top; n++)
        if (n->type == YAML_SCALAR_NODE && n->data.scalar.value)
            OPENSSL_cleanse(n->data.scalar.value, n->data.scalar.length);
}

static int syntax_error(bl_yaml_ctx_t *x, const yaml_parser_t *p)
{
    const char *problem = p->problem ? p->problem : "malformed YAML";
    if (p->context)
        bl_cfg_error(x, p->problem_mark,
                     "YAML syntax error: %s (%s that starts at line %zu, column %zu)", problem,
                     p->context, p->context_mark.line + 1, p->context_mark.column + 1);
    else
        bl_cfg_error(x, p->problem_mark, "YAML syntax error: %s", problem);
    return BL_EFORMAT;
}

int bl_config_parse(const char *text, size_t len, const char *file, bl_config_t **out, char *err,
                    size_t errlen)
{
    yaml_parser_t parser;
    yaml_document_t doc, extra;
    bool have_doc = false, have_parser = false;
    bl_yaml_ctx_t x = {.doc = &doc, .file = file ? file : "<config>", .err = err, .errlen = errlen};
    bl_config_t *c = NULL;
    int rc = 0;
    *out = NULL;
    if (err && errlen)
        err[0] = '\0';

    c = calloc(1, sizeof *c);
    if (!c) {
        rc = BL_ENOMEM;
        goto done;
    }
    c->refs = 1;
    bl_cfg_defaults(c);
    c->file = strdup(x.file);
    c->log_level = strdup("info");
    if (!c->file || !c->log_level) {
        rc = BL_ENOMEM;
        goto done;
    }

    if (!yaml_parser_initialize(&parser)) {
        rc = BL_ENOMEM;
        goto done;
    }
    have_parser = true;
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    if (!yaml_parser_load(&parser, &doc)) {
        rc = syntax_error(&x, &parser);
        goto done;
    }
    have_doc = true;
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    if (!root) {
        yaml_mark_t m = {0};
        rc = bl_cfg_error(&x, m, "the file is empty: expected at least 'providers' and 'routes'");
        goto done;
    }
    /* A second document would be silently ignored; refuse it instead. */
    if (!yaml_parser_load(&parser, &extra)) {
        rc = syntax_error(&x, &parser);
        goto done;
    }
    bool more = yaml_document_get_root_node(&extra) != NULL;
    yaml_mark_t extra_mark = extra.start_mark;
    yaml_document_delete(&extra);
    if (more) {
        rc = bl_cfg_error(&x, extra_mark, "expected one YAML document, found another here");
        goto done;
    }
    rc = bl_cfg_read_root(&x, root, c);
    if (rc == BL_EINVAL && err && errlen && !err[0])
        bl_cfg_error(&x, root->start_mark, "invalid configuration");
done:
    if (have_doc) {
        wipe_document(&doc);
        yaml_document_delete(&doc);
    }
    if (have_parser)
        yaml_parser_delete(&parser);
    if (rc) {
        if (rc == BL_ENOMEM && err && errlen)
            snprintf(err, errlen, "%s: out of memory", x.file);
        bl_cfg_free(c);
        return rc;
    }
    *out = c;
    return 0;
}

int bl_config_load(const char *path, bl_config_t **out, char *err, size_t errlen)
{
    char *text = NULL;
    size_t len = 0, cap = 0;
    int rc = 0;
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) {
        if (err && errlen)
            snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return BL_ENOENT;
    }
    for (;;) {
        if (len == cap) {
            cap = cap ? cap * 2 : 16384;
            if (cap > MAX_CONFIG_BYTES + 1)
                cap = MAX_CONFIG_BYTES + 1;
            char *p = realloc(text, cap);
            if (!p) {
                rc = BL_ENOMEM;
                goto done;
            }
            text = p;
        }
        size_t got = fread(text + len, 1, cap - len, f);
        len += got;
        if (got == 0)
            break;
        if (len > MAX_CONFIG_BYTES) {
            if (err && errlen)
                snprintf(err, errlen, "%s: file is larger than %u bytes", path, MAX_CONFIG_BYTES);
            rc = BL_ERANGE;
            goto done;
        }
    }
    if (ferror(f)) {
        if (err && errlen)
            snprintf(err, errlen, "%s: read error: %s", path, strerror(errno));
        rc = BL_EIO;
        goto done;
    }
    rc = bl_config_parse(text ? text : "", len, path, out, err, errlen);
done:
    if (text) {
        OPENSSL_cleanse(text, len);
        free(text);
    }
    fclose(f);
    return rc;
}

bl_config_t *bl_config_ref(bl_config_t *c)
{
    if (c)
        __atomic_fetch_add(&c->refs, 1, __ATOMIC_RELAXED);
    return c;
}

void bl_config_unref(bl_config_t *c)
{
    if (c && __atomic_sub_fetch(&c->refs, 1, __ATOMIC_ACQ_REL) == 0)
        bl_cfg_free(c);
}

static bool name_is(const char *name, const char *s, size_t len)
{
    return strlen(name) == len && !memcmp(name, s, len);
}

const bl_route_cfg_t *bl_config_route(const bl_config_t *c, const char *model, size_t len)
{
    if (!c || !model)
        return NULL;
    for (size_t i = 0; i < c->n_routes; i++) {
        const bl_route_cfg_t *r = &c->routes[i];
        if (name_is(r->model, model, len))
            return r;
        for (size_t j = 0; j < r->n_aliases; j++)
            if (name_is(r->aliases[j], model, len))
                return r;
    }
    return NULL;
}

const bl_provider_cfg_t *bl_config_provider(const bl_config_t *c, const char *name)
{
    if (!c || !name)
        return NULL;
    for (size_t i = 0; i < c->n_providers; i++)
        if (!strcmp(c->providers[i].name, name))
            return &c->providers[i];
    return NULL;
}
