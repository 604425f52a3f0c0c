/* Client key checks; see auth.h. */
#include "auth/auth.h"

#include <string.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

static bool ows(char ch)
{
    return ch == ' ' || ch == '\t';
}

static bl_str_t trim(bl_str_t s)
{
    while (s.n && ows(s.p[0])) {
        s.p++;
        s.n--;
    }
    while (s.n && ows(s.p[s.n - 1]))
        s.n--;
    return s;
}

/* "Bearer <token>": scheme case-insensitive (RFC 9110 11.1), at least one
 * space, a non-empty token with no spaces inside. */
static bool bearer_token(bl_str_t h, bl_str_t *tok)
{
    h = trim(h);
    if (h.n < 7 || !bl_strn_ieq(h.p, 6, "Bearer") || !ows(h.p[6]))
        return false;
    bl_str_t t = trim((bl_str_t){h.p + 7, h.n - 7});
    if (t.n == 0)
        return false;
    for (size_t i = 0; i < t.n; i++)
        if (ows(t.p[i]))
            return false;
    *tok = t;
    return true;
}

int bl_auth_hash_key(const char *key, size_t len, unsigned char out[32])
{
    unsigned int olen = 0;
    if (!EVP_Digest(key, len, out, &olen, EVP_sha256(), NULL) || olen != 32)
        return BL_ENOMEM;
    return 0;
}

bl_auth_result_t bl_auth_verify(const unsigned char (*hashes)[32], size_t n, bl_str_t authorization,
                                bl_str_t x_api_key, size_t *key_index)
{
    if (key_index)
        *key_index = SIZE_MAX;
    if (n == 0)
        return BL_AUTH_OK;

    bl_str_t key = {NULL, 0};
    bool have = false, malformed = false;
    if (authorization.p && trim(authorization).n) {
        have = bearer_token(authorization, &key);
        malformed = !have;
    }
    if (!have && x_api_key.p) {
        key = trim(x_api_key);
        have = key.n > 0;
    }
    if (!have)
        return malformed ? BL_AUTH_MALFORMED : BL_AUTH_MISSING;

    unsigned char h[32];
    if (bl_auth_hash_key(key.p, key.n, h))
        return BL_AUTH_DENIED;
    /* Compare against all of them and select the index without branching
     * on the comparison, so timing does not reveal which one matched. */
    size_t found = SIZE_MAX;
    unsigned matched = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned eq = (unsigned)(CRYPTO_memcmp(h, hashes[i], 32) == 0);
        size_t mask = (size_t)0 - (size_t)(eq & ~matched & 1u);
        found = (found & ~mask) | (i & mask);
        matched |= eq;
    }
    OPENSSL_cleanse(h, sizeof h);
    if (!matched)
        return BL_AUTH_DENIED;
    if (key_index)
        *key_index = found;
    return BL_AUTH_OK;
}

bool bl_auth_check(const unsigned char (*hashes)[32], size_t n, bl_str_t authorization,
                   bl_str_t x_api_key)
{
    return bl_auth_verify(hashes, n, authorization, x_api_key, NULL) == BL_AUTH_OK;
}

void bl_auth_key_id(const unsigned char hash[32], char out[BL_AUTH_KEY_ID_LEN])
{
    bl_hex(hash, 4, out);
}

const char *bl_auth_reason(bl_auth_result_t r)
{
    switch (r) {
    case BL_AUTH_OK:
        return "ok";
    case BL_AUTH_MISSING:
        return "missing API key: send 'Authorization: Bearer <key>' or 'x-api-key: <key>'";
    case BL_AUTH_MALFORMED:
        return "malformed Authorization header: expected 'Bearer <key>'";
    case BL_AUTH_DENIED:
        return "invalid API key";
    }
    return "invalid API key";
}
