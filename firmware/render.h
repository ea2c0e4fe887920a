/* render: JSON views of modem samples and of the shared state, used by `corridor modem probe`,
 * the control socket (`corridor status`) and later the API. One place decides the field names
 * so every consumer sees the same document (docs/configuration.md, docs/modems.md). */
#ifndef CORRIDOR_FIRMWARE_RENDER_H
#define CORRIDOR_FIRMWARE_RENDER_H

#include <jansson.h>

#include "firmware/state.h"
#include "modem/modem.h"

/* The probe object of issue #2: port, identity, sim, registration, operator, network_type,
 * band, tac, cell_id, signal, gnss, balance; null where the modem does not say. New ref. */
json_t *render_modem_sample(const struct modem_sample *s);
/* {"vehicle_id","uptime_s","links":[{name, interface, modem:{...}|null, samples}],"events":[...]}
 */
json_t *render_status(struct state *st, const char *vehicle_id);
/* {"<link>": [{"t", "cmd", "result", "reply", "ms"}, ...]}: the last AT exchanges of every
 * modem, oldest first (the diagnostics bundle's "modem replies"). */
json_t *render_exchanges(struct state *st);

#endif
