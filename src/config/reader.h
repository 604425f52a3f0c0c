/*
 * config (private): typed reading of a libyaml document. Every getter checks
 * the node's kind, expands `${VAR}` in scalars and range-checks numbers, and on
 * failure writes "file:line:col: message" (1-based, from the node's mark) into
 * the context's error buffer and returns a negative BL_E* code.
 *
 * Values that came from the environment are never echoed in messages, since
 * they may be secrets.
 */
#ifndef BL_CONFIG_READER_H
#define BL_CONFIG_READER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <yaml.h>

#include "config/config.h"
#include "util/util.h"

typedef struct {
    yaml_document_t *doc;
    const char *file;
    char *err;
    size_t errlen;
} bl_yaml_ctx_t;

/* One expanded scalar. `from_env` is set when any `${...}` was substituted. */
typedef struct {
    char *s; /* NUL-terminated, owned */
    size_t len;
    bool from_env;
} bl_scalar_t;

int bl_cfg_error(bl_yaml_ctx_t *x, yaml_mark_t m, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

yaml_node_t *bl_cfg_node(bl_yaml_ctx_t *x, int id);
bool bl_cfg_is_null(const yaml_node_t *n);
const char *bl_cfg_kind(const yaml_node_t *n); /* "a list", "a mapping", "a string" */

/* Check that map is a mapping (null counts as empty) with only keys from
 * names[], none repeated; vals[i] gets the value node of names[i] or NULL. */
int bl_cfg_fields(bl_yaml_ctx_t *x, yaml_node_t *map, const char *where, const char *const *names,
                  size_t n, yaml_node_t **vals);

/* A list's items (null counts as empty). */
int bl_cfg_list(bl_yaml_ctx_t *x, yaml_node_t *n, const char *key, yaml_node_item_t **items,
                size_t *count);

/* Expand `${VAR}`, `${VAR:-default}` and `$$` in a scalar. */
int bl_cfg_expand(bl_yaml_ctx_t *x, yaml_node_t *n, bl_scalar_t *out);
void bl_cfg_scalar_free(bl_scalar_t *v); /* wipes the bytes: it may be a secret */

/* A scalar as a string; null gives "". NUL bytes are rejected. */
int bl_cfg_string(bl_yaml_ctx_t *x, yaml_node_t *n, const char *key, bl_scalar_t *out);
/* Same, as a plain owned C string (for values that are not secrets). */
int bl_cfg_strdup(bl_yaml_ctx_t *x, yaml_node_t *n, const char *key, char **out);

int bl_cfg_u64(bl_yaml_ctx_t *x, yaml_node_t *n, const char *key, uint64_t lo, uint64_t hi,
               uint64_t *out);
int bl_cfg_uint(bl_yaml_ctx_t *x, yaml_node_t *n, const char *key, unsigned lo, unsigned hi,
                unsigned *out);
/* An integer with an optional unit: B, KB, MB, GB (powers of 1000), KiB, MiB, GiB. */
int bl_cfg_size(bl_yaml_ctx_t *x, yaml_node_t *n, const char *key, uint64_t lo, uint64_t hi,
                size_t *out);
int bl_cfg_double(bl_yaml_ctx_t *x, yaml_node_t *n, const char *key, double *out);
/* true/false (also yes/no, on/off, as YAML 1.1 users write them). */
int bl_cfg_bool(bl_yaml_ctx_t *x, yaml_node_t *n, const char *key, bool *out);

/* Parse "123", "8MiB", "64 KB"; BL_EINVAL when malformed, BL_ERANGE on overflow. */
int bl_cfg_parse_size(const char *s, uint64_t *out);

/* A printable quoted rendering of a value for messages: "'abc'", or
 * "a value from the environment" when from_env. */
void bl_cfg_show(const bl_scalar_t *v, char *buf, size_t n);

/* Index of the closest candidate (edit distance <= 2 and less than its
 * length, or the candidate is word + "_ms"), or -1. */
int bl_cfg_suggest(const char *word, const char *const *cands, size_t n);
/* ", "-joined list of names, for "valid keys: ..." messages. */
void bl_cfg_join(const char *const *names, size_t n, char *buf, size_t len);

/* Sections (schema.c, providers.c, routes.c). */
int bl_cfg_read_providers(bl_yaml_ctx_t *x, yaml_node_t *n, bl_config_t *c);
int bl_cfg_read_routes(bl_yaml_ctx_t *x, yaml_node_t *n, bl_config_t *c);
int bl_cfg_read_root(bl_yaml_ctx_t *x, yaml_node_t *root, bl_config_t *c);
void bl_cfg_defaults(bl_config_t *c);
void bl_cfg_free(bl_config_t *c);

#endif
