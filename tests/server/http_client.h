/* A tiny blocking HTTP/1.1 client for the server tests: reads responses by
 * Content-Length, chunked, or until close, so pipelined responses can be read
 * one after another. Include after cmocka.h. */
#ifndef BL_TEST_HTTP_CLIENT_H
#define BL_TEST_HTTP_CLIENT_H

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

typedef struct {
    int fd;
    char *buf;
    size_t len, cap;
    bool head_request; /* the next response has no body whatever it says */
} cli_t;

typedef struct {
    int status;
    char head[16384];
    char *body;
    size_t body_len;
} resp_t;

static int cli_open_at(cli_t *c, const char *ip, int port)
{
    memset(c, 0, sizeof *c);
    bool v6 = strchr(ip, ':') != NULL;
    c->fd = socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM, 0);
    assert_true(c->fd >= 0);
    struct timeval tv = {3, 0};
    setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    int rc;
    if (v6) {
        struct sockaddr_in6 a = {.sin6_family = AF_INET6, .sin6_port = htons((uint16_t)port)};
        inet_pton(AF_INET6, ip, &a.sin6_addr);
        rc = connect(c->fd, (struct sockaddr *)&a, sizeof a);
    } else {
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
        inet_pton(AF_INET, ip, &a.sin_addr);
        rc = connect(c->fd, (struct sockaddr *)&a, sizeof a);
    }
    c->cap = 8u << 20;
    c->buf = malloc(c->cap);
    assert_non_null(c->buf);
    return rc == 0 ? 0 : -errno;
}

static void cli_open(cli_t *c, int port)
{
    assert_int_equal(cli_open_at(c, "127.0.0.1", port), 0);
}

static void cli_close(cli_t *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    free(c->buf);
    c->buf = NULL;
}

static void cli_send_n(cli_t *c, const char *s, size_t n)
{
    while (n) {
        ssize_t w = send(c->fd, s, n, MSG_NOSIGNAL);
        assert_true(w > 0);
        s += w;
        n -= (size_t)w;
    }
}

static void cli_send(cli_t *c, const char *s)
{
    cli_send_n(c, s, strlen(s));
}

/* Read more bytes; 0 on EOF or reset, -1 on timeout. */
static int cli_fill(cli_t *c)
{
    assert_true(c->len < c->cap);
    ssize_t r = recv(c->fd, c->buf + c->len, c->cap - c->len, 0);
    if (r > 0) {
        c->len += (size_t)r;
        return 1;
    }
    if (r == 0 || errno == ECONNRESET)
        return 0;
    return -1;
}

static void cli_drop(cli_t *c, size_t n)
{
    memmove(c->buf, c->buf + n, c->len - n);
    c->len -= n;
}

/* Wait until the server closes: true on EOF/reset with no further bytes. */
static bool cli_eof(cli_t *c)
{
    if (c->len)
        return false;
    return cli_fill(c) == 0;
}

static const char *find_crlf2(const char *p, size_t n)
{
    for (size_t i = 3; i < n; i++)
        if (p[i - 3] == '\r' && p[i - 2] == '\n' && p[i - 1] == '\r' && p[i] == '\n')
            return p + i + 1;
    return NULL;
}

/* Value of a response header, copied into out; false if absent. */
static bool resp_header(const resp_t *r, const char *name, char *out, size_t outlen)
{
    size_t nl = strlen(name);
    const char *p = strstr(r->head, "\r\n");
    while (p && p[2] != '\r') {
        const char *line = p + 2;
        const char *end = strstr(line, "\r\n");
        if (!end)
            break;
        if ((size_t)(end - line) > nl && line[nl] == ':' && strncasecmp(line, name, nl) == 0) {
            const char *v = line + nl + 1;
            while (*v == ' ')
                v++;
            snprintf(out, outlen, "%.*s", (int)(end - v), v);
            return true;
        }
        p = end;
    }
    return false;
}

static bool resp_has(const resp_t *r, const char *name, const char *value)
{
    char v[256];
    return resp_header(r, name, v, sizeof v) && strcasecmp(v, value) == 0;
}

/* Read one response; bodies by Content-Length, chunked, or until close. */
static int cli_response(cli_t *c, resp_t *r)
{
    r->status = 0;
    r->head[0] = '\0';
    free(r->body);
    r->body = NULL;
    r->body_len = 0;
    const char *end;
    while (!(end = find_crlf2(c->buf, c->len)))
        if (cli_fill(c) <= 0)
            return -1;
    size_t hl = (size_t)(end - c->buf);
    assert_true(hl < sizeof r->head);
    memcpy(r->head, c->buf, hl);
    r->head[hl] = '\0';
    cli_drop(c, hl);
    assert_int_equal(sscanf(r->head, "HTTP/1.1 %d", &r->status), 1);
    r->body = malloc(c->cap);
    assert_non_null(r->body);
    char v[64];
    if (r->status < 200 || r->status == 204 || r->status == 304 || c->head_request) {
        c->head_request = false;
        return 0;
    }
    if (resp_header(r, "Content-Length", v, sizeof v)) {
        size_t n = strtoul(v, NULL, 10);
        while (c->len < n)
            if (cli_fill(c) <= 0)
                return -1;
        memcpy(r->body, c->buf, n);
        r->body_len = n;
        cli_drop(c, n);
    } else if (resp_has(r, "Transfer-Encoding", "chunked")) {
        for (;;) {
            const char *nl;
            while (!(nl = memchr(c->buf, '\n', c->len)))
                if (cli_fill(c) <= 0)
                    return -1;
            size_t size = strtoul(c->buf, NULL, 16);
            cli_drop(c, (size_t)(nl - c->buf) + 1);
            while (c->len < size + 2)
                if (cli_fill(c) <= 0)
                    return -1;
            assert_memory_equal(c->buf + size, "\r\n", 2);
            memcpy(r->body + r->body_len, c->buf, size);
            r->body_len += size;
            cli_drop(c, size + 2);
            if (size == 0)
                break;
        }
    } else {
        int f;
        while ((f = cli_fill(c)) > 0)
            ;
        if (f < 0)
            return -1;
        memcpy(r->body, c->buf, c->len);
        r->body_len = c->len;
        cli_drop(c, c->len);
    }
    r->body[r->body_len] = '\0';
    return 0;
}

static void resp_free(resp_t *r)
{
    free(r->body);
    r->body = NULL;
}

static void assert_error_json(const resp_t *r, int status, const char *code)
{
    assert_int_equal(r->status, status);
    assert_true(resp_has(r, "Connection", "close"));
    assert_true(resp_has(r, "Content-Type", "application/json"));
    assert_non_null(strstr(r->body, "{\"error\":{\"message\":\""));
    assert_non_null(strstr(r->body, "\"type\":\"invalid_request_error\""));
    char want[128];
    snprintf(want, sizeof want, "\"code\":\"%s\"}}", code);
    assert_non_null(strstr(r->body, want));
}

#endif
