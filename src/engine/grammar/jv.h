/*
 * A small JSON reader for the grammar compiler (the engine library does not
 * link jansson): text -> tree, objects keep their member order (a schema's
 * properties are generated in that order), numbers keep their lexeme (an enum
 * value is emitted exactly as written), strings are decoded to UTF-8 with
 * their length (they may hold NUL). Private to src/engine/grammar/.
 */
#ifndef BL_ENGINE_GRAMMAR_JV_H
#define BL_ENGINE_GRAMMAR_JV_H

#include <stdbool.h>
#include <stddef.h>

typedef enum { JV_NULL, JV_FALSE, JV_TRUE, JV_NUM, JV_STR, JV_ARR, JV_OBJ } jv_kind_t;

typedef struct jv {
    jv_kind_t kind;
    char *s; /* JV_STR: decoded text; JV_NUM: the lexeme; NUL-terminated */
    size_t n;
    struct jv **items; /* JV_ARR elements / JV_OBJ member values */
    char **keys;       /* JV_OBJ member names (decoded, NUL-terminated) */
    size_t *key_lens;
    size_t n_items;
} jv_t;

/* BL_EFORMAT with "offset N: why" in err for malformed text or nesting past
 * 64 levels; BL_ENOMEM. */
int bl_jv_parse(const char *text, size_t len, jv_t **out, char *err, size_t errlen);
void bl_jv_free(jv_t *v);
/* Member named key of an object, or NULL. */
const jv_t *bl_jv_get(const jv_t *obj, const char *key);
/* Append v as compact JSON to *buf (malloc'd, grows; *n bytes used, *cap
 * allocated). Strings escape only what JSON requires. BL_ENOMEM. */
int bl_jv_dump(const jv_t *v, char **buf, size_t *n, size_t *cap);
/* Append one string as a JSON string literal. */
int bl_jv_dump_str(const char *s, size_t len, char **buf, size_t *n, size_t *cap);

#endif
