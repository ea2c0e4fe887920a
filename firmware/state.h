/* state: the shared state the composition root owns (DESIGN.md: "latest snapshot per link,
 * position, health, events").
 *
 * Writers are the subsystem threads (through the callbacks firmware wires up); readers
 * (control socket, later dashboard/telemetry/policy) only ever get copies. One mutex, held only
 * for memcpy-sized work, never across I/O. */
#ifndef CORRIDOR_FIRMWARE_STATE_H
#define CORRIDOR_FIRMWARE_STATE_H

#include <stdbool.h>
#include <stdint.h>

#include "firmware/config.h"
#include "modem/modem.h"

/* What the tunnel measured on one link (copied from agg once a second). */
struct state_link_tunnel {
    bool valid;
    char state[12]; /* down, probing, up, disabled */
    uint64_t tx_bytes, rx_bytes, tx_packets, rx_packets, resent_packets;
    double srtt_ms, rttvar_ms, loss, capacity_bps, weight;
};

struct state_tunnel {
    bool valid;
    char hub_state[16]; /* none, connecting, connected */
    unsigned hub_index, hub_switches;
    uint64_t tun_rx_packets, tun_tx_packets;
    uint64_t dropped_auth, dropped_replay, dropped_other;
};

struct link_state {
    char name[32];
    char interface[32];
    bool has_modem;
    bool modem_valid;         /* at least one sample received */
    struct modem_sample modem;
    uint64_t samples;         /* samples received for this link */
    struct state_link_tunnel tunnel;
};

#define STATE_EVENTS 512
struct state_event {
    uint64_t seq;             /* increasing, for "events since" */
    uint64_t wall_ms;
    uint64_t mono_ms;
    char source[32];          /* link name or subsystem */
    char kind[24];            /* "soft_reset", "vanished", ... */
    char text[224];
};

struct state;
struct state *state_new(const struct config *cfg);
void state_free(struct state *st);
/* Store the latest modem sample for sample->link (unknown links are ignored, counted). */
void state_put_modem(struct state *st, const struct modem_sample *sample);
void state_put_link_tunnel(struct state *st, unsigned link_index,
                           const struct state_link_tunnel *t);
void state_put_tunnel(struct state *st, const struct state_tunnel *t);
void state_get_tunnel(struct state *st, struct state_tunnel *out);
void state_add_event(struct state *st, const char *source, const char *kind, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Copy out up to max links; returns the number of links. */
unsigned state_get_links(struct state *st, struct link_state *out, unsigned max);
/* Copy out events with seq > since, oldest first, at most max; returns the count. */
unsigned state_get_events(struct state *st, uint64_t since, struct state_event *out, unsigned max);
uint64_t state_started_mono_ms(struct state *st);
/* Sequence number of the newest event, 0 if none. */
uint64_t state_last_event_seq(struct state *st);

#endif
