#include "router/router.h"

#include <curl/curl.h>
#include <string.h>

/* RFC 9110 10.2.3: Retry-After = HTTP-date / delay-seconds. */
bool bl_parse_retry_after(bl_str_t v, int64_t now_wall_s, uint64_t *seconds)
{
    while (v.n && (*v.p == ' ' || *v.p == '\t')) {
        v.p++;
        v.n--;
    }
    while (v.n && (v.p[v.n - 1] == ' ' || v.p[v.n - 1] == '\t'))
        v.n--;
    if (!v.n || v.n > 64)
        return false;
    uint64_t s;
    if (bl_parse_u64(v.p, v.n, &s) == BL_OK) {
        *seconds = s;
        return true;
    }
    char tmp[65];
    memcpy(tmp, v.p, v.n);
    tmp[v.n] = '\0';
    /* curl_getdate parses the three HTTP date formats without touching the
     * network or the locale. */
    time_t t = curl_getdate(tmp, NULL);
    if (t < 0)
        return false;
    *seconds = t > now_wall_s ? (uint64_t)(t - now_wall_s) : 0;
    return true;
}
