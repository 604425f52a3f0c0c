/*
 * auth: client keys. A request presents a key as `Authorization: Bearer KEY`
 * (OpenAI clients) or `x-api-key: KEY` (Anthropic clients); it is hashed with
 * SHA-256 and compared in constant time against every configured hash (from
 * bl_config_t.key_hashes). With no keys configured every request is allowed.
 *
 * Header values come in as bl_str_t so this module does not depend on the
 * server; an absent header is {NULL, 0}. Keys are never logged: use
 * bl_auth_key_id for a short non-secret id.
 */
#ifndef BL_AUTH_H
#define BL_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/util.h"

typedef enum {
    BL_AUTH_OK = 0,    /* allowed (a key matched, or no keys are configured) */
    BL_AUTH_MISSING,   /* no key presented */
    BL_AUTH_MALFORMED, /* an Authorization header that is not "Bearer <key>" */
    BL_AUTH_DENIED,    /* a key was presented and matched none */
} bl_auth_result_t;

/* Length of a key id string including its NUL: 8 hex digits. */
#define BL_AUTH_KEY_ID_LEN 9

/*
 * Decide whether a request may proceed. When both headers are present a
 * well-formed Bearer token is used; otherwise x-api-key. On BL_AUTH_OK,
 * *key_index (if not NULL) is the index of the matching hash, or SIZE_MAX
 * when no keys are configured. Every hash is compared, match or not, so the
 * time taken does not depend on which key matched.
 */
bl_auth_result_t bl_auth_verify(const unsigned char (*hashes)[32], size_t n, bl_str_t authorization,
                                bl_str_t x_api_key, size_t *key_index);

/* bl_auth_verify(...) == BL_AUTH_OK */
bool bl_auth_check(const unsigned char (*hashes)[32], size_t n, bl_str_t authorization,
                   bl_str_t x_api_key);

/* SHA-256 of a key, as stored in bl_config_t.key_hashes. 0 or BL_ENOMEM. */
int bl_auth_hash_key(const char *key, size_t len, unsigned char out[32]);

/* A short id for logs and metrics: the first 8 hex digits of the key's hash. */
void bl_auth_key_id(const unsigned char hash[32], char out[BL_AUTH_KEY_ID_LEN]);

/* A short text for a result, for error bodies ("missing API key", ...). */
const char *bl_auth_reason(bl_auth_result_t r);

#endif
