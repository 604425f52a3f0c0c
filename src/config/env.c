/*
 * `${VAR}` expansion inside scalars: `${VAR}` must be set, `${VAR:-default}`
 * uses the default when VAR is unset or empty (as in sh), `$$` is one `$`, and
 * any other `$` stays as it is. Defaults cannot contain '}' and are not
 * expanded again.
 */
#include "config/reader.h"

#include <stdlib.h>
#include <string.h>
#include <openssl/crypto.h>

/* Where offset `off` of a scalar sits in the file. Exact for single-line plain
 * scalars; otherwise the scalar's start (quoting and folding move things). */
static yaml_mark_t mark_at(const yaml_node_t *n, size_t off)
{
    yaml_mark_t m = n->start_mark;
    if (n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE && !memchr(n->data.scalar.value, '\n', off))
        m.column += off;
    return m;
}

static bool name_char(char c, bool first)
{
    return c == '_' || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
           (!first && c >= '0' && c <= '9');
}

int bl_cfg_expand(bl_yaml_ctx_t *x, yaml_node_t *n, bl_scalar_t *out)
{
    const char *s = (const char *)n->data.scalar.value;
    size_t len = n->data.scalar.length;
    bl_buf_t b = {0};
    int rc = 0;
    out->s = NULL;
    out->len = 0;
    out->from_env = false;

    size_t i = 0;
    while (i < len) {
        const char *dollar = memchr(s + i, '$', len - i);
        size_t upto = dollar ? (size_t)(dollar - s) : len;
        if ((rc = bl_buf_append(&b, s + i, upto - i)))
            goto done;
        i = upto;
        if (i >= len)
            break;
        if (i + 1 < len && s[i + 1] == '$') {
            if ((rc = bl_buf_append(&b, "$", 1)))
                goto done;
            i += 2;
            continue;
        }
        if (i + 1 >= len || s[i + 1] != '{') {
            if ((rc = bl_buf_append(&b, "$", 1)))
                goto done;
            i++;
            continue;
        }
        size_t start = i + 2;
        const char *close = memchr(s + start, '}', len - start);
        if (!close) {
            rc = bl_cfg_error(x, mark_at(n, i), "unterminated '${' (missing '}')");
            goto done;
        }
        size_t end = (size_t)(close - s), j = start;
        while (j < end && name_char(s[j], j == start))
            j++;
        size_t name_len = j - start;
        const char *def = NULL;
        size_t def_len = 0;
        if (j < end) {
            if (end - j >= 2 && s[j] == ':' && s[j + 1] == '-') {
                def = s + j + 2;
                def_len = end - j - 2;
            } else {
                name_len = 0; /* fall into the error below */
            }
        }
        char name[256];
        if (name_len == 0 || name_len >= sizeof name) {
            rc = bl_cfg_error(x, mark_at(n, i),
                              "bad environment variable reference: expected ${NAME} or "
                              "${NAME:-default} with NAME made of letters, digits and '_'");
            goto done;
        }
        memcpy(name, s + start, name_len);
        name[name_len] = '\0';
        const char *val = getenv(name);
        if (val && (*val || !def)) {
            rc = bl_buf_append_str(&b, val);
        } else if (def) {
            rc = bl_buf_append(&b, def, def_len);
        } else {
            rc = bl_cfg_error(x, mark_at(n, i), "environment variable %s is not set", name);
            goto done;
        }
        if (rc)
            goto done;
        out->from_env = true;
        i = end + 1;
    }
    if (!b.data && (rc = bl_buf_reserve(&b, 0)))
        goto done;
    out->s = bl_buf_steal(&b, &out->len);
    if (!out->s)
        rc = BL_ENOMEM;
done:
    if (b.data) {
        OPENSSL_cleanse(b.data, b.cap);
        bl_buf_free(&b);
    }
    return rc;
}
