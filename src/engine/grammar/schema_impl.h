/*
 * Private to src/engine/grammar/: the schema compiler's state (schema.c) and
 * the JSON building blocks it is made of (json_rules.c): whitespace,
 * strings, numbers, arrays, maps, any value, and literal sets.
 */
#ifndef BL_ENGINE_GRAMMAR_SCHEMA_IMPL_H
#define BL_ENGINE_GRAMMAR_SCHEMA_IMPL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/grammar/gram_impl.h"
#include "engine/grammar/jv.h"

#define MAX_REFS 256 /* distinct $ref targets per schema */

typedef struct {
    const jv_t *target;
    uint32_t rule;
    int nest; /* containers open when its compilation began */
    bool busy;
} ref_t;

typedef struct {
    gb_t b;
    const jv_t *root;
    char *err;
    size_t errlen;
    char path[512];
    size_t path_len;
    int nest;  /* objects/arrays open around the schema being compiled */
    int depth; /* compile recursion */
    /* shared rules, made on first use; -1 = not yet */
    long r_ws, r_char, r_str, r_num, r_unum, r_int, r_uint, r_value, r_obj;
    ref_t refs[MAX_REFS];
    size_t n_refs;
} sc_t;

/* Shared rules are made once per grammar, on first use; each returns the
 * element (REF) to put in a sequence. */
uint32_t bl_sc_ws(sc_t *c);
uint32_t bl_sc_str_char(sc_t *c); /* one character of a JSON string */
uint32_t bl_sc_any_string(sc_t *c);
uint32_t bl_sc_number(sc_t *c, bool integer, bool nonneg);
uint32_t bl_sc_any_value(sc_t *c);
uint32_t bl_sc_any_object(sc_t *c);
/* Not shared: made per call. */
uint32_t bl_sc_array_of(sc_t *c, uint32_t item, long min, long max); /* max < 0: no limit */
uint32_t bl_sc_map_of(sc_t *c, uint32_t key, uint32_t value);
/* Exactly these JSON values in compact form (n >= 1). BL_ENOMEM. */
int bl_sc_literals(sc_t *c, jv_t *const *values, size_t n, uint32_t *rule);

#endif
