/*
 * POST /v1/messages/count_tokens (Anthropic). An Anthropic target counts
 * exactly, so the request goes to the route's Anthropic targets as it is.
 * When none can answer (none configured, or all down: the outage ballast
 * exists for), ballast answers with an estimate so a client that budgets its
 * context keeps working: about four bytes of text per token, the usual rule
 * for English and code with BPE vocabularies. The response says so in
 * x-ballast-estimate.
 */
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "api/api_int.h"

static const bl_api_route_t COUNT = {"/v1/messages/count_tokens", "/messages/count_tokens",
                                     BL_FAM_ANTHROPIC, true, true};

void bl_api_count_tokens(bl_api_t *a, bl_http_req_t *req, const char *rid)
{
    bl_api_proxy(a, req, &COUNT, rid);
}

/* Bytes of every string in v (text, names, descriptions, schema words). */
static size_t text_bytes(json_t *v, int depth)
{
    if (depth > 64)
        return 0;
    size_t n = 0;
    if (json_is_string(v))
        return json_string_length(v);
    if (json_is_object(v)) {
        const char *k;
        json_t *e;
        json_object_foreach(v, k, e) {
            if (!strcmp(k, "data") && json_is_string(e))
                n += 1600 * 4; /* an image: ~1600 tokens at Anthropic's usual sizes */
            else
                n += strlen(k) + text_bytes(e, depth + 1);
        }
    } else if (json_is_array(v)) {
        size_t i;
        json_t *e;
        json_array_foreach(v, i, e)
            n += text_bytes(e, depth + 1);
    } else if (json_is_number(v) || json_is_boolean(v)) {
        n += 2;
    }
    return n;
}

int bl_api_estimate_tokens(const char *body, size_t len, long long *out)
{
    json_t *root = json_loadb(body, len, 0, NULL);
    if (!json_is_object(root)) {
        json_decref(root);
        return BL_EINVAL;
    }
    size_t bytes = text_bytes(json_object_get(root, "system"), 0) +
                   text_bytes(json_object_get(root, "messages"), 0) +
                   text_bytes(json_object_get(root, "tools"), 0);
    size_t turns = json_array_size(json_object_get(root, "messages"));
    json_decref(root);
    *out = (long long)((bytes + 3) / 4 + turns * 4); /* role markers per turn */
    return BL_OK;
}
