/* libFuzzer target: arbitrary bytes through the request path: the server's
 * request assembly, then the api's JSON handling of the body
 * (src/server/http_parse.c), fed in pieces the way the server's reads feed
 * it, with the server's buffer handling (compaction during the body, dropping
 * a finished request). Checks that every view stays inside the buffer and
 * every limit holds.
 *
 * Input: byte 0 picks the piece size, byte 1 the limits, the rest is the
 * stream a client would send. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util/json_scan.h"
#include "server/http_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(x)                                                                                   \
    do {                                                                                           \
        if (!(x))                                                                                  \
            __builtin_trap();                                                                      \
    } while (0)

static volatile unsigned sink;

static void touch(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        sink += (unsigned char)p[i];
}

/* What the server does with a complete request. */
static void use_request(const bl_hp_t *hp, const bl_buf_t *b, size_t rpos)
{
    CHECK(hp->url_off + hp->url_len <= rpos);
    CHECK(hp->url_len <= hp->lim.max_url_bytes);
    CHECK(hp->n_fields <= hp->lim.max_headers);
    CHECK(hp->body.len <= hp->lim.max_body_bytes);
    CHECK(hp->keep_end <= rpos);
    for (unsigned i = 0; i < hp->n_fields; i++) {
        const bl_hp_field_t *f = &hp->fields[i];
        CHECK(f->name_off + f->name_len <= hp->keep_end);
        CHECK(f->value_off + f->value_len <= hp->keep_end);
        touch(b->data + f->name_off, f->name_len);
        touch(b->data + f->value_off, f->value_len);
    }
    bl_str_t path, query;
    bl_hp_split_target(b->data + hp->url_off, hp->url_len, hp->parser.method == HTTP_CONNECT, &path,
                       &query);
    touch(path.p, path.n);
    touch(query.p, query.n);
    touch(bl_hp_method(hp), strlen(bl_hp_method(hp)));
    if (hp->body.len)
        touch(hp->body.data, hp->body.len);
    /* then what the api does with the body: validate, find model/stream,
     * unescape the model name */
    bl_json_member_t m[] = {{.key = "model"}, {.key = "stream"}};
    const char *why;
    size_t where;
    if (bl_json_scan_object(hp->body.data ? hp->body.data : "", hp->body.len, m, 2, &why,
                            &where) == 0) {
        for (int i = 0; i < 2; i++)
            CHECK(m[i].off + m[i].len <= hp->body.len);
        if (m[0].kind == BL_JSON_STRING) {
            char name[256];
            long n = bl_json_unescape(hp->body.data + m[0].off, m[0].len, name, sizeof name);
            CHECK(n < (long)sizeof name);
        }
    } else {
        CHECK(where <= hp->body.len);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    size_t step = data[0] ? data[0] : size; /* 0: everything in one read */
    bl_hp_limits_t lim = {
        .max_body_bytes = (data[1] & 1) ? 64 : 8u << 20,
        .max_header_bytes = (data[1] & 2) ? 256 : 32u << 10,
        .max_url_bytes = (data[1] & 4) ? 32 : 8192,
        .max_headers = (data[1] & 8) ? 3 : 100,
    };
    data += 2;
    size -= 2;

    bl_hp_t hp;
    bl_hp_init(&hp, &lim);
    bl_buf_t b = {0};
    size_t rpos = 0;
    size_t in = 0;
    int requests = 0;
    while (in < size && requests < 64) {
        size_t n = BL_MIN(step, size - in);
        if (bl_buf_append(&b, data + in, n) != 0)
            break;
        in += n;
        for (;;) {
            size_t avail = b.len - rpos;
            if (avail == 0)
                break;
            size_t used = bl_hp_execute(&hp, b.data, rpos, avail);
            CHECK(used <= avail);
            rpos += used;
            if (hp.phase == BL_HP_ERROR) {
                int s = hp.err_status;
                CHECK(s == 400 || s == 408 || s == 413 || s == 414 || s == 417 || s == 431 ||
                      s == 503 || s == 505);
                CHECK(hp.err_code && hp.err_msg);
                goto done;
            }
            if (hp.phase == BL_HP_DONE) {
                use_request(&hp, &b, rpos);
                requests++;
                if (!hp.keep_alive)
                    goto done;
                bl_buf_consume(&b, rpos);
                rpos = 0;
                bl_hp_next(&hp);
                continue;
            }
            if (hp.phase <= BL_HP_HEAD)
                CHECK(rpos <= lim.max_header_bytes);
            if (hp.phase == BL_HP_BODY) {
                size_t keep = bl_hp_keep_end(&hp);
                CHECK(keep <= rpos);
                memmove(b.data + keep, b.data + rpos, b.len - rpos);
                b.len -= rpos - keep;
                rpos = keep;
            }
            break;
        }
    }
done:
    bl_buf_free(&b);
    bl_hp_free(&hp);
    return 0;
}
