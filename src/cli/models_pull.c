/*
 * `ballast models pull NAME|URL`: download a GGUF into the model store.
 *
 * The download goes to FILE.part (locked with flock so two pulls of one file
 * do not interleave) and is resumed with a Range request on the next attempt
 * or the next run; a server that answers 200 to a Range request restarts it
 * from zero. Only a complete file whose sha256 matches is renamed into place;
 * a mismatch deletes the .part. Redirects are followed by hand so each hop's
 * scheme is checked: https only, plain http only to 127.0.0.1/localhost.
 *
 * Which sha256: --sha256, else the alias list's pin, else the one the hub
 * reports (Hugging Face sends the LFS object's sha256 as X-Linked-ETag on the
 * resolve URL). With none of these the file is kept with a warning and its
 * computed hash recorded in FILE.sha256: a hub-reported hash comes from the
 * same server as the bytes, so it guards against truncation and corruption,
 * not tampering, which TLS and curl's Content-Length check already cover;
 * refusing would make plain URLs unusable without an out-of-band hash.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include <ballast/errors.h>

#include "cli/models_int.h"

#define MAX_ATTEMPTS 5
#define MAX_HOPS 10

typedef struct {
    const char *name;
    const char *url;
    const char *sha256; /* NULL: not pinned, the hub's hash is used */
    const char *about;
} alias_t;

/* Popular small instruct models, Q4_K_M. No hash is pinned: none could be
 * confirmed from a reliable source when this list was written, and a guessed
 * pin would reject the real file. Hugging Face reports each file's sha256
 * (X-Linked-ETag), which pull verifies instead. */
static const alias_t ALIASES[] = {
    {"qwen2.5-0.5b-instruct",
     "https://huggingface.co/Qwen/Qwen2.5-0.5B-Instruct-GGUF/resolve/main/"
     "qwen2.5-0.5b-instruct-q4_k_m.gguf",
     NULL, "Qwen2.5 0.5B Instruct, Q4_K_M (~0.5 GB)"},
    {"qwen2.5-1.5b-instruct",
     "https://huggingface.co/Qwen/Qwen2.5-1.5B-Instruct-GGUF/resolve/main/"
     "qwen2.5-1.5b-instruct-q4_k_m.gguf",
     NULL, "Qwen2.5 1.5B Instruct, Q4_K_M (~1.1 GB)"},
    {"llama3.2-1b-instruct",
     "https://huggingface.co/bartowski/Llama-3.2-1B-Instruct-GGUF/resolve/main/"
     "Llama-3.2-1B-Instruct-Q4_K_M.gguf",
     NULL, "Llama 3.2 1B Instruct, Q4_K_M (~0.8 GB)"},
    {"smollm2-135m-instruct",
     "https://huggingface.co/bartowski/SmolLM2-135M-Instruct-GGUF/resolve/main/"
     "SmolLM2-135M-Instruct-Q4_K_M.gguf",
     NULL, "SmolLM2 135M Instruct, Q4_K_M (~0.1 GB)"},
    {"smollm2-360m-instruct",
     "https://huggingface.co/bartowski/SmolLM2-360M-Instruct-GGUF/resolve/main/"
     "SmolLM2-360M-Instruct-Q4_K_M.gguf",
     NULL, "SmolLM2 360M Instruct, Q4_K_M (~0.3 GB)"},
    {"smollm2-1.7b-instruct",
     "https://huggingface.co/bartowski/SmolLM2-1.7B-Instruct-GGUF/resolve/main/"
     "SmolLM2-1.7B-Instruct-Q4_K_M.gguf",
     NULL, "SmolLM2 1.7B Instruct, Q4_K_M (~1.1 GB)"},
};

static const char USAGE[] =
    "usage: ballast models pull NAME|URL [--sha256 HEX] [--force]\n"
    "       ballast models pull --list-aliases\n"
    "\n"
    "Downloads a GGUF model into $BALLAST_MODELS (default ~/.local/share/ballast/models).\n"
    "NAME is a built-in alias (--list-aliases); URL is an https URL of a .gguf file.\n"
    "An interrupted download is kept as FILE.part and resumed by the next pull.\n"
    "  --sha256 HEX   the file's expected sha256 (overrides the alias / hub value)\n"
    "  --force        download again even if the file is already in the store\n"
    "Set HF_TOKEN to send a token to huggingface.co (gated repositories).\n";

static volatile sig_atomic_t g_stop;

static void on_signal(int sig)
{
    (void)sig;
    g_stop = 1;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* 64 hex digits (lowercased into out), optionally quoted / weak ("W/"). */
static bool parse_sha(const char *s, size_t n, char out[65])
{
    if (n >= 2 && s[0] == 'W' && s[1] == '/') {
        s += 2;
        n -= 2;
    }
    if (n >= 2 && s[0] == '"' && s[n - 1] == '"') {
        s++;
        n -= 2;
    }
    if (n != 64)
        return false;
    for (size_t i = 0; i < 64; i++) {
        if (!isxdigit((unsigned char)s[i]))
            return false;
        out[i] = (char)tolower((unsigned char)s[i]);
    }
    out[64] = 0;
    return true;
}

/* ---- URLs ------------------------------------------------------------------ */

typedef struct {
    bool allowed;  /* https, or http to this machine */
    bool hf;       /* host is huggingface.co */
    char file[256]; /* last path segment, decoded ("" when none) */
} url_info_t;

static int url_inspect(const char *url, url_info_t *ui)
{
    memset(ui, 0, sizeof *ui);
    CURLU *u = curl_url();
    char *scheme = NULL, *host = NULL, *path = NULL;
    int rc = BL_EINVAL;
    if (!u || curl_url_set(u, CURLUPART_URL, url, 0) ||
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) ||
        curl_url_get(u, CURLUPART_PATH, &path, CURLU_URLDECODE))
        goto done;
    bool local = !strcasecmp(host, "127.0.0.1") || !strcasecmp(host, "localhost") ||
                 !strcmp(host, "[::1]");
    ui->allowed = !strcasecmp(scheme, "https") || (!strcasecmp(scheme, "http") && local);
    ui->hf = !strcasecmp(host, "huggingface.co");
    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    if (strlen(base) < sizeof ui->file)
        snprintf(ui->file, sizeof ui->file, "%s", base);
    rc = 0;
done:
    curl_free(scheme);
    curl_free(host);
    curl_free(path);
    curl_url_cleanup(u);
    return rc;
}

/* A store file name: a plain, printable *.gguf name. */
static bool good_file_name(const char *f)
{
    size_t n = strlen(f);
    if (n < 6 || f[0] == '.' || strcasecmp(f + n - 5, ".gguf"))
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)f[i];
        if (c < 0x21 || c == 0x7f || c == '/' || c == '\\')
            return false;
    }
    return true;
}

/* ---- one transfer ------------------------------------------------------------ */

typedef struct {
    FILE *part;         /* NULL for a HEAD probe */
    const char *label;  /* file name, for progress lines */
    uint64_t offset;    /* bytes already in .part when the request started */
    long status;        /* of the latest response */
    int n_responses;
    bool trust_etag;    /* the first response comes from the hub itself */
    char hub_sha[65];   /* X-Linked-ETag, else the hub's ETag; "" when neither */
    bool write_failed;
    /* progress */
    bool tty;
    double t0, last_print;
    int last_decile;
    bool printed;
    bool shown_final; /* the 100% line, which curl would repeat */
} xfer_t;

static size_t on_header(char *buf, size_t size, size_t nitems, void *ud)
{
    xfer_t *x = ud;
    size_t n = size * nitems;
    if (n >= 5 && !memcmp(buf, "HTTP/", 5)) {
        const char *sp = memchr(buf, ' ', n);
        x->status = sp ? strtol(sp + 1, NULL, 10) : 0;
        x->n_responses++;
        return n;
    }
    const char *colon = memchr(buf, ':', n);
    if (!colon)
        return n;
    size_t klen = (size_t)(colon - buf);
    const char *v = colon + 1;
    size_t vlen = n - klen - 1;
    while (vlen && (*v == ' ' || *v == '\t')) {
        v++;
        vlen--;
    }
    while (vlen && (v[vlen - 1] == '\r' || v[vlen - 1] == '\n' || v[vlen - 1] == ' '))
        vlen--;
    char sha[65];
    if (klen == 13 && !strncasecmp(buf, "X-Linked-ETag", 13)) {
        if (parse_sha(v, vlen, sha))
            memcpy(x->hub_sha, sha, sizeof sha);
    } else if (klen == 4 && !strncasecmp(buf, "ETag", 4) && x->trust_etag &&
               x->n_responses == 1 && !x->hub_sha[0]) {
        if (parse_sha(v, vlen, sha))
            memcpy(x->hub_sha, sha, sizeof sha);
    }
    return n;
}

static size_t on_body(char *buf, size_t size, size_t nmemb, void *ud)
{
    xfer_t *x = ud;
    size_t n = size * nmemb;
    /* bodies of redirects and errors are not the file */
    if (!x->part || x->status < 200 || x->status >= 300)
        return n;
    if (fwrite(buf, 1, n, x->part) != n) {
        x->write_failed = true;
        return 0;
    }
    return n;
}

static void fmt_bytes(double b, char *out, size_t len)
{
    if (b >= 1024.0 * 1024 * 1024)
        snprintf(out, len, "%.2f GiB", b / (1024.0 * 1024 * 1024));
    else if (b >= 1024.0 * 1024)
        snprintf(out, len, "%.1f MiB", b / (1024.0 * 1024));
    else
        snprintf(out, len, "%.0f KiB", b / 1024.0);
}

static void fmt_eta(double s, char *out, size_t len)
{
    if (s < 0 || s > 360000)
        snprintf(out, len, "--");
    else if (s >= 3600)
        snprintf(out, len, "%dh%02dm", (int)s / 3600, (int)s % 3600 / 60);
    else
        snprintf(out, len, "%dm%02ds", (int)s / 60, (int)s % 60);
}

static int on_progress(void *ud, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ult,
                       curl_off_t ulnow)
{
    (void)ult;
    (void)ulnow;
    xfer_t *x = ud;
    if (g_stop)
        return 1; /* CURLE_ABORTED_BY_CALLBACK; the .part stays for resume */
    if (!x->part || x->status < 200 || x->status >= 300 || dlnow <= 0)
        return 0;
    double t = now_s(), el = t - x->t0;
    double done = (double)x->offset + (double)dlnow;
    double total = dltotal > 0 ? (double)x->offset + (double)dltotal : 0;
    double speed = el > 0 ? (double)dlnow / el : 0;
    int pct = total > 0 ? (int)(100.0 * done / total) : -1;
    bool finished = dltotal > 0 && dlnow >= dltotal;
    if (finished && x->shown_final)
        return 0;
    x->shown_final = finished;
    if (x->tty) {
        if (t - x->last_print < 0.2 && !finished)
            return 0;
    } else {
        /* plain lines for logs: every 10% or 5 s */
        int decile = pct >= 0 ? pct / 10 : -1;
        if (!(decile > x->last_decile || t - x->last_print >= 5.0))
            return 0;
        x->last_decile = decile;
    }
    x->last_print = t;
    char d[32], tot[32], sp[32], eta[32];
    fmt_bytes(done, d, sizeof d);
    fmt_bytes(total, tot, sizeof tot);
    fmt_bytes(speed, sp, sizeof sp);
    fmt_eta(speed > 0 && total > 0 ? (total - done) / speed : -1, eta, sizeof eta);
    if (pct >= 0)
        fprintf(stderr, "%s%s %3d%%  %s / %s  %s/s  ETA %s%s", x->tty ? "\r" : "", x->label,
                pct, d, tot, sp, eta, x->tty ? "\033[K" : "\n");
    else
        fprintf(stderr, "%s%s  %s  %s/s%s", x->tty ? "\r" : "", x->label, d, sp,
                x->tty ? "\033[K" : "\n");
    x->printed = true;
    return 0;
}

static void end_progress(xfer_t *x)
{
    if (x->tty && x->printed)
        fputc('\n', stderr);
    x->printed = false;
}

/* One request with redirects followed by hand. Returns curl's result; the
 * final status is in x->status; err is set when a hop is refused. */
static CURLcode request(CURL *c, const char *url, xfer_t *x, bool head, char *errbuf,
                        char *err, size_t errlen)
{
    char *cur = strdup(url);
    CURLcode res = CURLE_OUT_OF_MEMORY;
    const char *token = getenv("HF_TOKEN");
    char auth[512];
    struct curl_slist *hdr = NULL;
    if (token && *token && strlen(token) < 400) {
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", token);
        hdr = curl_slist_append(NULL, auth);
    }
    x->n_responses = 0;
    for (int hop = 0; cur && hop <= MAX_HOPS; hop++) {
        url_info_t ui;
        if (url_inspect(cur, &ui) || !ui.allowed) {
            snprintf(err, errlen, "refusing %s: only https URLs (or http to 127.0.0.1) are "
                     "followed", cur);
            res = CURLE_UNSUPPORTED_PROTOCOL;
            break;
        }
        if (hop == 0)
            x->trust_etag = ui.hf;
        curl_easy_reset(c);
        curl_easy_setopt(c, CURLOPT_URL, cur);
        curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
        curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
        curl_easy_setopt(c, CURLOPT_USERAGENT, "ballast/" BL_VERSION_STRING);
        curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 20L);
        /* a stalled transfer (< 1 KiB/s for 30 s) fails and is retried */
        curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1024L);
        curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, 30L);
        curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
        curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
        curl_easy_setopt(c, CURLOPT_HEADERDATA, x);
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, x);
        curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
        curl_easy_setopt(c, CURLOPT_XFERINFODATA, x);
        curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
        if (ui.hf && hdr)
            curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdr); /* never to the CDN hop */
        if (head)
            curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
        else if (x->offset)
            curl_easy_setopt(c, CURLOPT_RESUME_FROM_LARGE, (curl_off_t)x->offset);
        errbuf[0] = 0;
        x->status = 0;
        x->t0 = now_s();
        res = curl_easy_perform(c);
        if (x->status < 300 || x->status >= 400 || g_stop)
            break;
        char *next = NULL;
        if (curl_easy_getinfo(c, CURLINFO_REDIRECT_URL, &next) || !next) {
            snprintf(err, errlen, "HTTP %ld redirect without a Location from %s", x->status,
                     cur);
            res = CURLE_HTTP_RETURNED_ERROR;
            break;
        }
        free(cur);
        cur = strdup(next);
        res = CURLE_OUT_OF_MEMORY;
        if (hop == MAX_HOPS) {
            snprintf(err, errlen, "more than %d redirects from %s", MAX_HOPS, url);
            res = CURLE_TOO_MANY_REDIRECTS;
        }
    }
    free(cur);
    curl_slist_free_all(hdr);
    return res;
}

static bool transient(CURLcode r, long status)
{
    if (status >= 500 || status == 408 || status == 429)
        return true;
    return r == CURLE_PARTIAL_FILE || r == CURLE_RECV_ERROR || r == CURLE_SEND_ERROR ||
           r == CURLE_OPERATION_TIMEDOUT || r == CURLE_GOT_NOTHING ||
           r == CURLE_COULDNT_CONNECT || r == CURLE_COULDNT_RESOLVE_HOST ||
           r == CURLE_SSL_CONNECT_ERROR || r == CURLE_HTTP2 || r == CURLE_HTTP2_STREAM;
}

/* Sleep s seconds unless interrupted. */
static void backoff(int s)
{
    for (int i = 0; i < s * 10 && !g_stop; i++)
        usleep(100000);
}

/* ---- the command ------------------------------------------------------------- */

typedef struct {
    const char *url;
    char file[256];
    char want[65];      /* expected sha256, "" if unknown yet */
    const char *source; /* where want came from */
    bool force;
    char dir[4096];
    char dest[4400];
    char part[4400];
} pull_t;

static void write_sidecar(const pull_t *p, const char *sha)
{
    char path[4500];
    snprintf(path, sizeof path, "%s.sha256", p->dest);
    FILE *f = fopen(path, "w");
    if (!f)
        return;
    fprintf(f, "%s  %s\n", sha, p->file); /* sha256sum -c format */
    fclose(f);
}

/* The store already has the file: check it against the known or hub hash. */
static int already_present(CURL *c, pull_t *p)
{
    char err[512] = "", errbuf[CURL_ERROR_SIZE], have[65];
    if (!p->want[0]) {
        xfer_t x = {.label = p->file};
        CURLcode r = request(c, p->url, &x, true, errbuf, err, sizeof err);
        if (r == CURLE_OK && x.status >= 200 && x.status < 300 && x.hub_sha[0]) {
            memcpy(p->want, x.hub_sha, sizeof p->want);
            p->source = "reported by the server";
        }
    }
    fprintf(stderr, "%s is already in the store; checking its sha256...\n", p->file);
    if (bl_cli_file_sha256(p->dest, have, err, sizeof err)) {
        fprintf(stderr, "ballast: %s\n", err);
        return 1;
    }
    if (!p->want[0]) {
        printf("%s is already in the store: %s (sha256 %s, not verified: no known hash)\n",
               p->file, p->dest, have);
        return 0;
    }
    if (strcmp(have, p->want)) {
        fprintf(stderr,
                "ballast: %s is in the store but its sha256 is %s, expected %s (%s); "
                "use --force to download it again\n",
                p->dest, have, p->want, p->source);
        return 1;
    }
    printf("%s is already in the store: %s (sha256 %s verified)\n", p->file, p->dest, have);
    return 0;
}

static int download(CURL *c, pull_t *p)
{
    int rc = 1, fd = -1, restarts = 0, attempt = 1;
    FILE *f = NULL;
    char err[1024] = "", errbuf[CURL_ERROR_SIZE], have[65];
    xfer_t x = {.label = p->file, .tty = isatty(STDERR_FILENO) == 1, .last_decile = -1};

    fd = open(p->part, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
        fprintf(stderr, "ballast: %s: %s\n", p->part, strerror(errno));
        goto done;
    }
    if (flock(fd, LOCK_EX | LOCK_NB)) {
        fprintf(stderr, "ballast: another `ballast models pull` is downloading %s\n", p->file);
        goto done;
    }
    if (p->force && ftruncate(fd, 0)) {
        fprintf(stderr, "ballast: %s: %s\n", p->part, strerror(errno));
        goto done;
    }
    f = fdopen(fd, "r+b");
    if (!f) {
        fprintf(stderr, "ballast: %s: %s\n", p->part, strerror(errno));
        goto done;
    }
    fd = -1; /* owned by f */

    bool complete = false;
    while (!complete) {
        if (fseeko(f, 0, SEEK_END)) {
            fprintf(stderr, "ballast: %s: %s\n", p->part, strerror(errno));
            goto done;
        }
        off_t at = ftello(f);
        x.offset = at > 0 ? (uint64_t)at : 0;
        x.part = f;
        x.write_failed = false;
        x.last_decile = -1;
        x.last_print = 0;
        x.shown_final = false;
        if (x.offset)
            fprintf(stderr, "resuming %s at %llu bytes\n", p->file,
                    (unsigned long long)x.offset);
        else
            fprintf(stderr, "downloading %s\n  from %s\n", p->file, p->url);
        err[0] = 0;
        CURLcode r = request(c, p->url, &x, false, errbuf, err, sizeof err);
        end_progress(&x);
        if (fflush(f) || fsync(fileno(f))) {
            fprintf(stderr, "ballast: %s: %s\n", p->part, strerror(errno));
            goto done;
        }
        if (g_stop) {
            fprintf(stderr, "\ninterrupted; the partial download is kept in %s; run the same "
                    "command to resume\n", p->part);
            rc = 130;
            goto done;
        }
        if (x.write_failed) {
            fprintf(stderr, "ballast: %s: write failed: %s\n", p->part, strerror(errno));
            goto done;
        }
        if (err[0]) { /* refused redirect and the like */
            fprintf(stderr, "ballast: %s\n", err);
            goto done;
        }
        if (r == CURLE_OK && x.status >= 200 && x.status < 300) {
            if (x.offset && x.status == 200) {
                /* a 200 to a Range request that curl accepted: the body was
                 * appended to the old prefix, so the file is wrong; start over */
                goto restart;
            }
            complete = true;
        } else if (x.status == 416 && x.offset) {
            /* the .part already holds the whole file (e.g. interrupted while
             * hashing); the sha256 check below decides */
            complete = true;
        } else if (x.offset && x.status == 200) {
            /* the server ignored the Range request (curl: CURLE_RANGE_ERROR) */
            goto restart;
        } else if (x.status >= 400 && !transient(r, x.status)) {
            fprintf(stderr, "ballast: HTTP %ld from %s%s\n", x.status, p->url,
                    x.status == 404 ? " (not found: check the name or URL)"
                    : x.status == 401 || x.status == 403
                        ? " (access denied: a gated repository needs HF_TOKEN)"
                        : "");
            goto done;
        } else if (transient(r, x.status) && attempt < MAX_ATTEMPTS) {
            fprintf(stderr, "download of %s interrupted (%s); retrying in %d s (attempt %d/%d)\n",
                    p->file,
                    x.status >= 400 ? "server error" : errbuf[0] ? errbuf : curl_easy_strerror(r),
                    attempt, attempt + 1, MAX_ATTEMPTS);
            backoff(attempt);
            attempt++;
        } else {
            if (x.status >= 400)
                fprintf(stderr, "ballast: HTTP %ld from %s\n", x.status, p->url);
            else
                fprintf(stderr, "ballast: download of %s failed: %s; the partial file is kept "
                        "in %s\n", p->url, errbuf[0] ? errbuf : curl_easy_strerror(r), p->part);
            goto done;
        }
        continue;
    restart:
        if (++restarts > 2) {
            fprintf(stderr, "ballast: %s keeps ignoring Range requests; giving up\n", p->url);
            goto done;
        }
        fprintf(stderr, "the server ignored the Range request; restarting %s from 0\n",
                p->file);
        if (fflush(f) || ftruncate(fileno(f), 0)) {
            fprintf(stderr, "ballast: %s: %s\n", p->part, strerror(errno));
            goto done;
        }
    }

    if (!p->want[0] && x.hub_sha[0]) {
        memcpy(p->want, x.hub_sha, sizeof p->want);
        p->source = "reported by the server";
    }
    fprintf(stderr, "verifying sha256 of %s...\n", p->file);
    if (bl_cli_file_sha256(p->part, have, err, sizeof err)) {
        fprintf(stderr, "ballast: %s\n", err);
        goto done;
    }
    if (p->want[0] && strcmp(have, p->want)) {
        unlink(p->part);
        fprintf(stderr,
                "ballast: sha256 mismatch for %s: expected %s (%s), got %s; the download was "
                "deleted\n",
                p->file, p->want, p->source, have);
        goto done;
    }
    if (!p->want[0])
        fprintf(stderr, "warning: no sha256 is known for %s (no --sha256, no pinned alias, none "
                "reported by the server); it was not verified. Its sha256 is %s, recorded in "
                "%s.sha256\n",
                p->file, have, p->dest);
    if (rename(p->part, p->dest)) {
        fprintf(stderr, "ballast: rename %s -> %s: %s\n", p->part, p->dest, strerror(errno));
        goto done;
    }
    write_sidecar(p, have);
    printf("pulled %s (sha256 %s%s)\n", p->dest, have, p->want[0] ? " verified" : "");
    rc = 0;
done:
    /* an error before any byte arrived (404, refused redirect): no empty .part */
    if (rc && f && !fseeko(f, 0, SEEK_END) && ftello(f) == 0)
        unlink(p->part);
    if (f)
        fclose(f); /* releases the flock */
    if (fd >= 0)
        close(fd);
    return rc;
}

static int resolve(pull_t *p, const char *what, const char *sha_arg)
{
    const alias_t *a = NULL;
    for (size_t i = 0; i < sizeof ALIASES / sizeof ALIASES[0]; i++)
        if (!strcasecmp(what, ALIASES[i].name))
            a = &ALIASES[i];
    if (!a && !strstr(what, "://")) {
        fprintf(stderr, "ballast: unknown model '%s': give an alias (ballast models pull "
                "--list-aliases) or an https URL of a .gguf file\n", what);
        return 2;
    }
    p->url = a ? a->url : what;
    url_info_t ui;
    if (url_inspect(p->url, &ui)) {
        fprintf(stderr, "ballast: '%s' is not a valid URL\n", p->url);
        return 2;
    }
    if (!ui.allowed) {
        fprintf(stderr, "ballast: %s: only https URLs (or http to 127.0.0.1) are allowed\n",
                p->url);
        return 2;
    }
    if (!good_file_name(ui.file)) {
        fprintf(stderr, "ballast: %s does not name a .gguf file\n", p->url);
        return 2;
    }
    snprintf(p->file, sizeof p->file, "%s", ui.file);
    if (sha_arg) {
        if (!parse_sha(sha_arg, strlen(sha_arg), p->want)) {
            fprintf(stderr, "ballast: --sha256 needs 64 hex digits\n");
            return 2;
        }
        p->source = "--sha256";
    } else if (a && a->sha256) {
        if (!parse_sha(a->sha256, strlen(a->sha256), p->want))
            return 1;
        p->source = "pinned";
    }
    return 0;
}

int bl_cli_models_pull(int argc, char **argv)
{
    const char *what = NULL, *sha_arg = NULL;
    bool force = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(USAGE, stdout);
            return 0;
        } else if (!strcmp(a, "--list-aliases")) {
            for (size_t k = 0; k < sizeof ALIASES / sizeof ALIASES[0]; k++)
                printf("%-24s %s\n%-24s %s%s\n", ALIASES[k].name, ALIASES[k].about, "",
                       ALIASES[k].url, ALIASES[k].sha256 ? "" : "  (sha256 from the hub)");
            return 0;
        } else if (!strcmp(a, "--force")) {
            force = true;
        } else if (!strcmp(a, "--sha256") && i + 1 < argc) {
            sha_arg = argv[++i];
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "ballast: unknown or incomplete option '%s'\n\n%s", a, USAGE);
            return 2;
        } else if (!what) {
            what = a;
        } else {
            fprintf(stderr, "ballast: pull takes one NAME or URL\n\n%s", USAGE);
            return 2;
        }
    }
    if (!what) {
        fputs(USAGE, stderr);
        return 2;
    }

    pull_t *p = calloc(1, sizeof *p);
    if (!p)
        return 1;
    int rc = resolve(p, what, sha_arg);
    CURL *c = NULL;
    struct sigaction sa = {.sa_handler = on_signal}, old_int, old_term;
    bool handlers = false;
    if (rc)
        goto done;
    rc = 1;
    p->force = force;
    char err[512];
    if (bl_cli_models_dir(p->dir, sizeof p->dir, 1, err, sizeof err)) {
        fprintf(stderr, "ballast: %s\n", err);
        goto done;
    }
    snprintf(p->dest, sizeof p->dest, "%s/%s", p->dir, p->file);
    snprintf(p->part, sizeof p->part, "%s/%s.part", p->dir, p->file);

    if (curl_global_init(CURL_GLOBAL_DEFAULT) || !(c = curl_easy_init())) {
        fprintf(stderr, "ballast: cannot initialise libcurl\n");
        goto done;
    }
    /* Ctrl-C stops the transfer cleanly: the .part is flushed and kept */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    handlers = true;

    struct stat st;
    if (!force && !stat(p->dest, &st))
        rc = already_present(c, p);
    else
        rc = download(c, p);
done:
    if (handlers) {
        sigaction(SIGINT, &old_int, NULL);
        sigaction(SIGTERM, &old_term, NULL);
    }
    if (c) {
        curl_easy_cleanup(c);
        curl_global_cleanup();
    }
    free(p);
    return rc;
}
