/* Fault modes of the mock and their parameters (see mock.c for meanings). */
#include <stdlib.h>
#include <string.h>
#include <jansson.h>

#include "mock.h"

static const char *const names[] = {
    [MF_OK] = "ok",         [MF_REFUSE] = "refuse",       [MF_RESET] = "reset",
    [MF_STATUS] = "status", [MF_HANG] = "hang",           [MF_SLOW_FIRST_BYTE] = "slow_first_byte",
    [MF_CUT] = "cut",       [MF_MALFORMED] = "malformed", [MF_DRIP] = "drip",
    [MF_DELAY] = "delay",
};

const char *fault_name(fault_kind_t k)
{
    return (unsigned)k < BL_ARRAY_LEN(names) ? names[k] : "ok";
}

int fault_kind_parse(const char *s, size_t n, fault_kind_t *out)
{
    for (size_t i = 0; i < BL_ARRAY_LEN(names); i++) {
        if (strlen(names[i]) == n && memcmp(names[i], s, n) == 0) {
            *out = (fault_kind_t)i;
            return 0;
        }
    }
    return BL_EINVAL;
}

static void defaults(fault_t *f, fault_kind_t k)
{
    memset(f, 0, sizeof *f);
    f->kind = k;
    f->code = 500;
    f->events = 3;
    f->ms = k == MF_DRIP ? 50 : 1000;
}

static int set_param(fault_t *f, const char *k, size_t kn, const char *v, size_t vn)
{
    uint64_t num = 0;
    bool is_num = bl_parse_u64(v, vn, &num) == 0;
#define KEY(lit) (kn == sizeof(lit) - 1 && memcmp(k, lit, kn) == 0)
    if (KEY("retry_after")) {
        if (vn >= sizeof f->retry_after)
            return BL_EINVAL;
        memcpy(f->retry_after, v, vn);
        f->retry_after[vn] = 0;
        return 0;
    }
    if (!is_num)
        return BL_EINVAL;
    if (KEY("code") && num >= 100 && num <= 999)
        f->code = (int)num;
    else if (KEY("ms") && num <= 3600 * 1000)
        f->ms = num;
    else if (KEY("events") && num <= 100000)
        f->events = (int)num;
    else if (KEY("chunks") && num >= 1 && num <= 4096)
        f->chunks = (int)num;
    else
        return BL_EINVAL;
#undef KEY
    return 0;
}

static void trim(const char **s, size_t *n)
{
    while (*n && (**s == ' ' || **s == '\t')) {
        (*s)++;
        (*n)--;
    }
    while (*n && ((*s)[*n - 1] == ' ' || (*s)[*n - 1] == '\t'))
        (*n)--;
}

int fault_parse_header(const char *v, size_t n, fault_t *f)
{
    const char *end = v + n;
    const char *semi = memchr(v, ';', n);
    const char *p = v;
    size_t mn = (size_t)((semi ? semi : end) - v);
    trim(&p, &mn);
    fault_kind_t k;
    if (fault_kind_parse(p, mn, &k))
        return BL_EINVAL;
    defaults(f, k);
    while (semi) {
        const char *item = semi + 1;
        semi = memchr(item, ';', (size_t)(end - item));
        size_t in = (size_t)((semi ? semi : end) - item);
        const char *eq = memchr(item, '=', in);
        if (!eq)
            return BL_EINVAL;
        const char *key = item, *val = eq + 1;
        size_t kn = (size_t)(eq - item), vn = in - kn - 1;
        trim(&key, &kn);
        trim(&val, &vn);
        if (set_param(f, key, kn, val, vn))
            return BL_EINVAL;
    }
    return 0;
}

int fault_parse_json(const char *body, size_t n, fault_t *f)
{
    int rc = BL_EINVAL;
    json_t *root = json_loadb(body, n, 0, NULL);
    if (!json_is_object(root))
        goto done;
    const char *mode = json_string_value(json_object_get(root, "mode"));
    fault_kind_t k;
    if (!mode || fault_kind_parse(mode, strlen(mode), &k))
        goto done;
    defaults(f, k);
    const char *key;
    json_t *val;
    json_object_foreach(root, key, val)
    {
        char num[32];
        const char *s;
        size_t sn;
        if (strcmp(key, "mode") == 0)
            continue;
        if (json_is_integer(val)) {
            snprintf(num, sizeof num, "%lld", (long long)json_integer_value(val));
            s = num;
            sn = strlen(num);
        } else if (json_is_string(val)) {
            s = json_string_value(val);
            sn = json_string_length(val);
        } else {
            goto done;
        }
        if (set_param(f, key, strlen(key), s, sn))
            goto done;
    }
    rc = 0;
done:
    json_decref(root);
    return rc;
}
