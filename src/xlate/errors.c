/*
 * Errors between families. OpenAI's shape is {"error":{"message","type",
 * "param","code"}}; Anthropic's is {"type":"error","error":{"type",
 * "message"}}. Anthropic answers "overloaded" with 529, which OpenAI clients
 * know as 503; everything else keeps its status.
 */
#include <string.h>

#include "xlate/xlate_int.h"

bl_xerr_kind_t bl_xerr_kind_of_status(int status)
{
    switch (status) {
    case 400:
    case 422: return BL_XERR_INVALID_REQUEST;
    case 401: return BL_XERR_AUTHENTICATION;
    case 403: return BL_XERR_PERMISSION;
    case 404: return BL_XERR_NOT_FOUND;
    case 413: return BL_XERR_TOO_LARGE;
    case 429: return BL_XERR_RATE_LIMIT;
    case 503:
    case 529: return BL_XERR_OVERLOADED;
    case 408:
    case 504: return BL_XERR_TIMEOUT;
    default: return status >= 400 && status < 500 ? BL_XERR_INVALID_REQUEST : BL_XERR_API;
    }
}

int bl_xerr_status(bl_family_t f, bl_xerr_kind_t k)
{
    switch (k) {
    case BL_XERR_INVALID_REQUEST: return 400;
    case BL_XERR_AUTHENTICATION: return 401;
    case BL_XERR_PERMISSION: return 403;
    case BL_XERR_NOT_FOUND: return 404;
    case BL_XERR_TOO_LARGE: return 413;
    case BL_XERR_RATE_LIMIT: return 429;
    case BL_XERR_OVERLOADED: return f == BL_FAM_ANTHROPIC ? 529 : 503;
    case BL_XERR_TIMEOUT: return 504;
    default: return 500;
    }
}

static const char *anthropic_type(bl_xerr_kind_t k)
{
    switch (k) {
    case BL_XERR_INVALID_REQUEST: return "invalid_request_error";
    case BL_XERR_AUTHENTICATION: return "authentication_error";
    case BL_XERR_PERMISSION: return "permission_error";
    case BL_XERR_NOT_FOUND: return "not_found_error";
    case BL_XERR_TOO_LARGE: return "request_too_large";
    case BL_XERR_RATE_LIMIT: return "rate_limit_error";
    case BL_XERR_OVERLOADED: return "overloaded_error";
    case BL_XERR_TIMEOUT: return "timeout_error";
    default: return "api_error";
    }
}

static const char *openai_type(bl_xerr_kind_t k)
{
    switch (k) {
    case BL_XERR_INVALID_REQUEST:
    case BL_XERR_NOT_FOUND:
    case BL_XERR_TOO_LARGE: return "invalid_request_error";
    case BL_XERR_AUTHENTICATION: return "authentication_error";
    case BL_XERR_PERMISSION: return "permission_error";
    case BL_XERR_RATE_LIMIT: return "rate_limit_error";
    default: return "server_error";
    }
}

static const char *openai_code(bl_xerr_kind_t k)
{
    switch (k) {
    case BL_XERR_AUTHENTICATION: return "invalid_api_key";
    case BL_XERR_NOT_FOUND: return "not_found";
    case BL_XERR_TOO_LARGE: return "request_too_large";
    case BL_XERR_RATE_LIMIT: return "rate_limit_exceeded";
    case BL_XERR_OVERLOADED: return "overloaded";
    case BL_XERR_TIMEOUT: return "timeout";
    case BL_XERR_API: return "server_error";
    default: return NULL;
    }
}

int bl_xerr_body(bl_family_t f, bl_xerr_kind_t k, const char *message, const char *param,
                 const char *code, bl_buf_t *out)
{
    json_t *root;
    if (f == BL_FAM_ANTHROPIC) {
        root = json_pack("{s:s, s:{s:s, s:s}}", "type", "error", "error", "type", anthropic_type(k),
                         "message", message ? message : "");
    } else {
        const char *c = code ? code : openai_code(k);
        root = json_pack("{s:{s:s, s:s, s:o, s:o}}", "error", "message", message ? message : "",
                         "type", openai_type(k), "param",
                         param && *param ? json_string(param) : json_null(), "code",
                         c ? json_string(c) : json_null());
    }
    if (!root)
        return BL_ENOMEM;
    int rc = bl_xdump(root, out);
    json_decref(root);
    return rc;
}

/* Anthropic error types back to kinds (when the status says less). */
static bool kind_of_anthropic_type(const char *t, bl_xerr_kind_t *k)
{
    static const struct {
        const char *name;
        bl_xerr_kind_t kind;
    } map[] = {
        {"invalid_request_error", BL_XERR_INVALID_REQUEST},
        {"authentication_error", BL_XERR_AUTHENTICATION},
        {"permission_error", BL_XERR_PERMISSION},
        {"not_found_error", BL_XERR_NOT_FOUND},
        {"request_too_large", BL_XERR_TOO_LARGE},
        {"rate_limit_error", BL_XERR_RATE_LIMIT},
        {"overloaded_error", BL_XERR_OVERLOADED},
        {"timeout_error", BL_XERR_TIMEOUT},
        {"api_error", BL_XERR_API},
    };
    for (size_t i = 0; t && i < BL_ARRAY_LEN(map); i++)
        if (!strcmp(t, map[i].name)) {
            *k = map[i].kind;
            return true;
        }
    return false;
}

int bl_xerr_translate(bl_family_t from, bl_family_t to, int *status, const char *body, size_t n,
                      bl_buf_t *out)
{
    bl_xerr_kind_t k = bl_xerr_kind_of_status(*status);
    const char *message = NULL, *param = NULL, *code = NULL;
    json_t *root = json_loadb(body ? body : "", n, 0, NULL);
    json_t *e = json_object_get(root, "error");
    if (json_is_object(e)) {
        message = json_string_value(json_object_get(e, "message"));
        if (from == BL_FAM_ANTHROPIC) {
            bl_xerr_kind_t ak;
            if (kind_of_anthropic_type(json_string_value(json_object_get(e, "type")), &ak))
                k = ak;
        } else {
            param = json_string_value(json_object_get(e, "param"));
            code = json_string_value(json_object_get(e, "code"));
        }
    } else if (json_is_string(e)) {
        message = json_string_value(e); /* some OpenAI-compatible servers */
    }
    char fallback[64];
    if (!message) {
        snprintf(fallback, sizeof fallback, "the upstream answered HTTP %d", *status);
        message = fallback;
    }
    if (to == from || (to != BL_FAM_ANTHROPIC && from != BL_FAM_ANTHROPIC)) {
        /* OpenAI to OpenAI shapes: keep the code as it was */
    } else {
        code = NULL;
        param = to == BL_FAM_ANTHROPIC ? NULL : param;
    }
    *status = bl_xerr_status(to, k);
    int rc = bl_xerr_body(to, k, message, param, code, out);
    json_decref(root);
    return rc;
}
