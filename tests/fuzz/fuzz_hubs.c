// fuzz-libs: corridor_firmware
/* fuzz_hubs: arbitrary bytes as the provisioning server's hub list (firmware/provision.c). A
 * list that parses holds only well-formed "a.b.c.d:port" entries, 1..8 of them. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "firmware/provision.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char hubs[CFG_MAX_HUBS][64], err[256];
    unsigned n = 99;
    if (provision_parse((const char *)data, size, hubs, &n, err, sizeof err) == 0) {
        if (n < 1 || n > CFG_MAX_HUBS)
            abort();
        for (unsigned i = 0; i < n; i++)
            if (!memchr(hubs[i], ':', sizeof hubs[i]) || !memchr(hubs[i], 0, sizeof hubs[i]))
                abort();
    } else if (n != 0 || !memchr(err, 0, sizeof err)) {
        abort();
    }
    return 0;
}
