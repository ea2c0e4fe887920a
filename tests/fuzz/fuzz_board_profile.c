// fuzz-libs: corridor_board corridor_common
/* fuzz_board_profile: arbitrary bytes as a board profile. Must never crash or read out of
 * bounds; a rejected profile has a NUL-terminated message naming the source; an accepted one
 * has bounded tables and names a slot lookup can use. */
#include "board/board.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct board_profile p;
    char err[512];
    if (board_profile_parse((const char *)data, size, "fuzz.json", &p, err, sizeof err) != 0) {
        if (strncmp(err, "fuzz.json: ", 11) != 0)
            abort();
        return 0;
    }
    if (p.nslots > BOARD_MAX_SLOTS || p.nzones > BOARD_MAX_ZONES || !p.name[0])
        abort();
    for (unsigned i = 0; i < p.nslots; i++) {
        if (board_profile_slot(&p, p.slots[i].link[0] ? p.slots[i].link : p.slots[i].name) !=
            &p.slots[i])
            abort();
        if (p.slots[i].power.present && !p.slots[i].power.chip[0])
            abort();
    }
    for (unsigned i = 0; i < p.nzones; i++)
        if (!(p.zones[i].crit_c > p.zones[i].warn_c))
            abort();
    return 0;
}
