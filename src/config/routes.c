/* routes: model name (or alias) -> ordered tiers of weighted targets. */
#include "config/reader.h"

#include <stdlib.h>
#include <string.h>

#define MAX_ROUTES 4096
#define MAX_ALIASES 64
#define MAX_TIERS 16
#define MAX_TARGETS 64

/* A name clients may send, for the duplicate check across routes. */
typedef struct {
    const char *name;
    size_t order; /* position in the file */
    yaml_mark_t mark;
    const char *route;
} route_name_t;

static bool good_model_name(const char *s)
{
    if (!*s)
        return false;
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return false;
    return true;
}

static int read_target(bl_yaml_ctx_t *x, yaml_node_t *n, const bl_config_t *c, bl_target_cfg_t *t)
{
    static const char *const names[] = {"provider", "model", "weight"};
    yaml_node_t *v[3];
    if (n->type != YAML_MAPPING_NODE)
        return bl_cfg_error(x, n->start_mark,
                            "target: expected a mapping like {provider: NAME, model: MODEL}, "
                            "got %s",
                            bl_cfg_kind(n));
    int rc = bl_cfg_fields(x, n, "target", names, 3, v);
    if (rc)
        return rc;
    if (!v[0])
        return bl_cfg_error(x, n->start_mark, "target: missing required key 'provider'");
    if (!v[1])
        return bl_cfg_error(x, n->start_mark, "target: missing required key 'model'");
    bl_scalar_t p;
    if ((rc = bl_cfg_string(x, v[0], "provider", &p)))
        return rc;
    size_t i = 0;
    while (i < c->n_providers && strcmp(c->providers[i].name, p.s))
        i++;
    if (i == c->n_providers) {
        char shown[96];
        bl_cfg_show(&p, shown, sizeof shown);
        const char *cands[256];
        size_t nc = BL_MIN(c->n_providers, BL_ARRAY_LEN(cands));
        for (size_t k = 0; k < nc; k++)
            cands[k] = c->providers[k].name;
        int s = p.from_env ? -1 : bl_cfg_suggest(p.s, cands, nc);
        bl_cfg_scalar_free(&p);
        if (s >= 0)
            return bl_cfg_error(x, v[0]->start_mark, "unknown provider %s (did you mean '%s'?)",
                                shown, cands[s]);
        if (nc == 0)
            return bl_cfg_error(x, v[0]->start_mark,
                                "unknown provider %s (no providers are defined)", shown);
        char list[512];
        bl_cfg_join(cands, nc, list, sizeof list);
        return bl_cfg_error(x, v[0]->start_mark, "unknown provider %s (providers: %s)", shown,
                            list);
    }
    bl_cfg_scalar_free(&p);
    t->provider = i;
    if ((rc = bl_cfg_strdup(x, v[1], "model", &t->model)))
        return rc;
    if (!good_model_name(t->model))
        return bl_cfg_error(x, v[1]->start_mark, "target: model must be a non-empty name");
    t->weight = 1;
    if (v[2] && (rc = bl_cfg_uint(x, v[2], "weight", 1, 1000000, &t->weight)))
        return rc;
    return 0;
}

/* A tier is a list of targets; a lone mapping is a tier of one. */
static int read_tier(bl_yaml_ctx_t *x, yaml_node_t *n, const bl_config_t *c, bl_tier_cfg_t *t)
{
    bool single = n->type == YAML_MAPPING_NODE;
    yaml_node_item_t *items = NULL;
    size_t count = 1;
    if (!single) {
        int rc = bl_cfg_list(x, n, "tier", &items, &count);
        if (rc)
            return rc;
        if (count == 0)
            return bl_cfg_error(x, n->start_mark, "tier is empty: list at least one target");
        if (count > MAX_TARGETS)
            return bl_cfg_error(x, n->start_mark, "tier: too many targets (at most %d)",
                                MAX_TARGETS);
    }
    t->targets = calloc(count, sizeof *t->targets);
    if (!t->targets)
        return BL_ENOMEM;
    t->n_targets = count;
    for (size_t i = 0; i < count; i++) {
        int rc = read_target(x, single ? n : bl_cfg_node(x, items[i]), c, &t->targets[i]);
        if (rc)
            return rc;
    }
    return 0;
}

static int read_hedge(bl_yaml_ctx_t *x, yaml_node_t *n, bl_hedge_cfg_t *h)
{
    static const char *const names[] = {"delay_ms", "min_delay_ms"};
    yaml_node_t *v[2];
    h->enabled = true;
    h->min_delay_ms = 50;
    if (n->type == YAML_SCALAR_NODE && !bl_cfg_is_null(n)) {
        /* `hedge: false` turns it off explicitly; `hedge: true` = defaults. */
        const char *s = (const char *)n->data.scalar.value;
        if (!strcmp(s, "true") || !strcmp(s, "false")) {
            h->enabled = s[0] == 't';
            return 0;
        }
    }
    int rc = bl_cfg_fields(x, n, "hedge", names, 2, v);
    if (rc)
        return rc;
    if (v[0] && (rc = bl_cfg_u64(x, v[0], names[0], 0, 600000, &h->delay_ms)))
        return rc;
    if (v[1] && (rc = bl_cfg_u64(x, v[1], names[1], 0, 600000, &h->min_delay_ms)))
        return rc;
    return 0;
}

static int add_name(bl_yaml_ctx_t *x, yaml_node_t *n, const char *what, char **out,
                    route_name_t *names, size_t *n_names, const char *route)
{
    int rc = bl_cfg_strdup(x, n, what, out);
    if (rc)
        return rc;
    if (!good_model_name(*out))
        return bl_cfg_error(x, n->start_mark,
                            "%s must be a non-empty name without control characters", what);
    names[*n_names] = (route_name_t){*out, *n_names, n->start_mark, route};
    (*n_names)++;
    return 0;
}

static int read_route(bl_yaml_ctx_t *x, yaml_node_t *n, const bl_config_t *c, bl_route_cfg_t *r,
                      route_name_t *rn, size_t *n_rn)
{
    static const char *const names[] = {"model", "aliases",      "tiers",
                                        "hedge", "max_attempts", "deadline_ms"};
    yaml_node_t *v[BL_ARRAY_LEN(names)];
    r->line = (unsigned)n->start_mark.line + 1;
    if (n->type != YAML_MAPPING_NODE)
        return bl_cfg_error(x, n->start_mark, "routes: each entry must be a mapping, got %s",
                            bl_cfg_kind(n));
    int rc = bl_cfg_fields(x, n, "route", names, BL_ARRAY_LEN(names), v);
    if (rc)
        return rc;
    if (!v[0])
        return bl_cfg_error(x, n->start_mark, "route: missing required key 'model'");
    if ((rc = add_name(x, v[0], "model", &r->model, rn, n_rn, NULL)))
        return rc;
    rn[*n_rn - 1].route = r->model;

    yaml_node_item_t *items;
    size_t count;
    if (v[1]) {
        if ((rc = bl_cfg_list(x, v[1], "aliases", &items, &count)))
            return rc;
        if (count > MAX_ALIASES)
            return bl_cfg_error(x, v[1]->start_mark, "aliases: too many (at most %d)", MAX_ALIASES);
        if (count) {
            r->aliases = calloc(count, sizeof *r->aliases);
            if (!r->aliases)
                return BL_ENOMEM;
            r->n_aliases = count;
        }
        for (size_t i = 0; i < count; i++)
            if ((rc = add_name(x, bl_cfg_node(x, items[i]), "alias", &r->aliases[i], rn, n_rn,
                               r->model)))
                return rc;
    }

    if (!v[2])
        return bl_cfg_error(x, n->start_mark, "route '%s': missing required key 'tiers'", r->model);
    if ((rc = bl_cfg_list(x, v[2], "tiers", &items, &count)))
        return rc;
    if (count == 0)
        return bl_cfg_error(x, v[2]->start_mark, "route '%s': tiers is empty", r->model);
    if (count > MAX_TIERS)
        return bl_cfg_error(x, v[2]->start_mark, "route '%s': too many tiers (at most %d)",
                            r->model, MAX_TIERS);
    r->tiers = calloc(count, sizeof *r->tiers);
    if (!r->tiers)
        return BL_ENOMEM;
    r->n_tiers = count;
    for (size_t i = 0; i < count; i++)
        if ((rc = read_tier(x, bl_cfg_node(x, items[i]), c, &r->tiers[i])))
            return rc;

    if (v[3] && (rc = read_hedge(x, v[3], &r->hedge)))
        return rc;
    if (v[4] && (rc = bl_cfg_uint(x, v[4], "max_attempts", 1, 16, &r->max_attempts)))
        return rc;
    if (v[5] && (rc = bl_cfg_u64(x, v[5], "deadline_ms", 1, 86400000, &r->deadline_ms)))
        return rc;
    return 0;
}

static int by_name_then_order(const void *a, const void *b)
{
    const route_name_t *x = a, *y = b;
    int d = strcmp(x->name, y->name);
    if (d)
        return d;
    return x->order < y->order ? -1 : x->order > y->order;
}

int bl_cfg_read_routes(bl_yaml_ctx_t *x, yaml_node_t *n, bl_config_t *c)
{
    yaml_node_item_t *items;
    size_t count;
    route_name_t *rn = NULL;
    size_t n_rn = 0;
    int rc = bl_cfg_list(x, n, "routes", &items, &count);
    if (rc)
        return rc;
    if (count == 0)
        return bl_cfg_error(x, n->start_mark, "routes is empty: define at least one route");
    if (count > MAX_ROUTES)
        return bl_cfg_error(x, n->start_mark, "routes: too many (at most %d)", MAX_ROUTES);
    c->routes = calloc(count, sizeof *c->routes);
    rn = calloc(count * (1 + MAX_ALIASES), sizeof *rn);
    if (!c->routes || !rn) {
        rc = BL_ENOMEM;
        goto done;
    }
    c->n_routes = count;
    for (size_t i = 0; i < count; i++)
        if ((rc = read_route(x, bl_cfg_node(x, items[i]), c, &c->routes[i], rn, &n_rn)))
            goto done;
    /* Every model name and alias must pick exactly one route. */
    qsort(rn, n_rn, sizeof *rn, by_name_then_order);
    for (size_t i = 1; i < n_rn; i++)
        if (!strcmp(rn[i].name, rn[i - 1].name)) {
            rc = bl_cfg_error(x, rn[i].mark,
                              "duplicate model name '%s' (already used by route '%s' at line %zu)",
                              rn[i].name, rn[i - 1].route, rn[i - 1].mark.line + 1);
            goto done;
        }
done:
    free(rn);
    return rc;
}
