// fuzz-libs: corridor_firmware
/* fuzz_bbox: the coverage API's bbox parameter (http_parse_bbox in firmware/http.c) on arbitrary
 * bytes, after the same percent-decoding the server applies to query values. Must never crash
 * or read past its input; an accepted box must satisfy every documented rule (finite, in range,
 * min < max, spans within HTTP_BBOX_MAX_SPAN_DEG) and a refused one must say why. */
#include "firmware/http.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (!s)
        abort();
    memcpy(s, data, size);
    s[size] = '\0';
    http_unescape(s);
    double b[4] = {NAN, NAN, NAN, NAN};
    char err[256] = "";
    if (http_parse_bbox(s, b, err, sizeof err)) {
        for (int i = 0; i < 4; i++)
            if (!isfinite(b[i]))
                abort();
        if (b[0] < -180 || b[2] > 180 || b[1] < -90 || b[3] > 90)
            abort();
        if (!(b[0] < b[2]) || !(b[1] < b[3]))
            abort();
        if (b[2] - b[0] > HTTP_BBOX_MAX_SPAN_DEG || b[3] - b[1] > HTTP_BBOX_MAX_SPAN_DEG)
            abort();
    } else if (!err[0] || strlen(err) >= sizeof err) {
        abort();
    }
    free(s);
    return 0;
}
