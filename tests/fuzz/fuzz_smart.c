// fuzz-libs: corridor_telemetry corridor_common
/* fuzz_smart: arbitrary bytes as the output of `smartctl -j -H -A` through the storage-health
 * parser (telemetry/smart.h smart_parse_json). A sick disk or a different smartctl version may
 * print anything: the parser must never crash, never read past the input, and only ever report
 * values inside their documented ranges. */
#include "telemetry/smart.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct storage_health h;
    char err[256];
    err[0] = '\0';
    int rc = smart_parse_json((const char *)data, size, &h, err, sizeof err);
    if (rc != 0) {
        if (strlen(err) == 0 || h.status != STORAGE_UNKNOWN)
            abort();
        return 0;
    }
    if (h.status < STORAGE_UNKNOWN || h.status > STORAGE_FAILING)
        abort();
    if (h.smart_passed < -1 || h.smart_passed > 1)
        abort();
    if (h.life_used_pct < -1 || h.life_used_pct > 255)
        abort();
    int left = storage_life_left_pct(&h);
    if (left < -1 || left > 100)
        abort();
    if (h.power_on_hours < -1 || h.media_errors < -1)
        abort();
    if (!isnan(h.temp_c) && (h.temp_c < 0 || h.temp_c >= 1000))
        abort();
    if (memchr(h.dev, '\0', sizeof h.dev) == NULL || memchr(h.kind, '\0', sizeof h.kind) == NULL)
        abort();
    return 0;
}
