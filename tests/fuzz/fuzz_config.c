// fuzz-libs: corridor_firmware
/* fuzz_config: arbitrary bytes as a configuration file. Must never crash; errors must be
 * NUL-terminated messages. */
#include "firmware/config.h"

#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct config cfg;
    char err[512];
    if (config_parse((const char *)data, size, "fuzz.json", &cfg, err, sizeof err) != 0)
        (void)strlen(err);
    return 0;
}
