/*
 * A validating JSON scanner that allocates nothing (util: the api and the
 * router both use it).
 *
 * The gateway must forward a client's body byte for byte except for the
 * model name, so instead of parsing into a tree and re-serialising (which
 * would reformat numbers and reorder nothing but still change bytes), it
 * validates the whole document (RFC 8259, UTF-8 checked, depth-limited) and
 * reports where the wanted top-level members' values are.
 */
#ifndef BL_UTIL_JSON_SCAN_H
#define BL_UTIL_JSON_SCAN_H

#include <stdbool.h>
#include <stddef.h>

typedef enum {
    BL_JSON_NONE = 0, /* member absent */
    BL_JSON_STRING,
    BL_JSON_NUMBER,
    BL_JSON_OBJECT,
    BL_JSON_ARRAY,
    BL_JSON_TRUE,
    BL_JSON_FALSE,
    BL_JSON_NULL,
} bl_json_kind_t;

typedef struct {
    const char *key;      /* in: member name to find at the top level */
    bl_json_kind_t kind;  /* out */
    size_t off, len;      /* out: the value's bytes (strings include their quotes) */
    unsigned count;       /* out: how many times the member appeared */
} bl_json_member_t;

#define BL_JSON_MAX_DEPTH 128

/* Validate text as one JSON object and locate the given members. Returns 0,
 * or BL_EFORMAT with a short reason and the byte offset of the problem. */
int bl_json_scan_object(const char *text, size_t n, bl_json_member_t *members, size_t n_members,
                        const char **why, size_t *where);

/* Unescape a JSON string value (with its quotes) into out (cap bytes, NUL
 * terminated). Returns the length, or -1 if it does not fit. */
long bl_json_unescape(const char *s, size_t n, char *out, size_t cap);

#endif
