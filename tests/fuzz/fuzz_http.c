// fuzz-libs: corridor_firmware
/* fuzz_http: the dashboard's request parsing (firmware/http.c) on arbitrary bytes. The input is
 * split at the first three '\n' into method, raw path, Cookie header and body; each goes
 * through the same functions the server applies to a live request. Must never crash, never read
 * past its input, and every result must be self-consistent. */
#include "firmware/http.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static char *field(const uint8_t **p, const uint8_t *end, bool last)
{
    const uint8_t *nl = last ? NULL : memchr(*p, '\n', (size_t)(end - *p));
    const uint8_t *e = nl ? nl : end;
    size_t n = (size_t)(e - *p);
    char *s = malloc(n + 1);
    if (!s)
        abort();
    memcpy(s, *p, n);
    s[n] = '\0';
    *p = nl ? nl + 1 : end;
    return s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *p = data, *end = data + size;
    char *method = field(&p, end, false);
    char *path = field(&p, end, false);
    char *cookie = field(&p, end, false);
    const uint8_t *body = p;
    size_t blen = (size_t)(end - p);

    size_t before = strlen(path);
    size_t after = http_unescape(path);
    if (after > before || after != strlen(path))
        abort();
    struct http_route r;
    http_route_parse(method, path, &r);
    if (r.arg[sizeof r.arg - 1] != '\0')
        abort();
    if (r.kind >= HTTP_R_LINK_DISABLE && (r.arg[0] == '\0' || strchr(r.arg, '/')))
        abort();
    uint64_t v;
    (void)http_parse_u64(path, &v);
    char id[65];
    if (http_cookie_get(cookie, "corridor_session", id, sizeof id) && strlen(id) >= sizeof id)
        abort();
    char pw[260], err[256];
    if (http_parse_login((const char *)body, blen, pw, sizeof pw, err, sizeof err) == 0) {
        if (strlen(pw) == 0 || strlen(pw) > 256)
            abort();
    } else if (strlen(err) == 0) {
        abort();
    }
    free(method);
    free(path);
    free(cookie);
    return 0;
}
