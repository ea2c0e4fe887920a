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

/* The policy's decision for one link (from firmware/steer.c). */
struct state_link_policy {
    bool valid;
    double weight;
    char state[24]; /* active, draining, disabled-predicted, disabled-live */
    char reason[200];
};

/* What lies ahead for one operator. */
struct state_ahead {
    char op[16];
    double dead_in_s, dead_in_m; /* INFINITY when no dead zone within the horizon */
    double dead_lat, dead_lon;
    double quality_min, confidence;
    unsigned trips;
};

struct state_position {
    bool valid;
    double lat, lon, alt_m, speed_kmh, track_deg;
    int64_t utc;
    char source[40]; /* gpsd, modem:<link>, dead_reckoning, none */
    uint32_t trip;
    unsigned n_ahead;
    struct state_ahead ahead[8];
};

/* SIM finances of the link's SIM (from firmware/recorder.c). */
struct state_sim {
    bool valid;
    double balance, rate_per_day; /* NAN unknown */
    int64_t forecast_empty_utc;   /* -1 unknown */
    uint64_t data_used_bytes;     /* up + down since this box first saw the SIM (persisted) */
    uint64_t data_up_bytes, data_down_bytes;
    uint64_t data_today_bytes, data_month_bytes; /* UTC day / calendar month, up + down */
    bool alert;                                  /* under telemetry.balance_alert */
};

struct link_state {
    char name[32];
    char interface[32];
    bool has_modem;
    bool modem_valid; /* at least one sample received */
    struct modem_sample modem;
    uint64_t samples; /* samples received for this link */
    struct state_link_tunnel tunnel;
    struct state_link_policy policy;
    struct state_sim sim;
};

#define STATE_EVENTS 512
struct state_event {
    uint64_t seq; /* increasing, for "events since" */
    uint64_t wall_ms;
    uint64_t mono_ms;
    char source[32]; /* link name or subsystem */
    char kind[24];   /* "soft_reset", "vanished", ... */
    char text[224];
};

struct state;
struct state *state_new(const struct config *cfg);
void state_free(struct state *st);
/* Store the latest modem sample for sample->link (unknown links are ignored, counted). */
void state_put_modem(struct state *st, const struct modem_sample *sample);
void state_put_link_tunnel(struct state *st, unsigned link_index,
                           const struct state_link_tunnel *t);
void state_put_link_policy(struct state *st, unsigned link_index,
                           const struct state_link_policy *p);
void state_put_link_sim(struct state *st, unsigned link_index, const struct state_sim *s);
void state_put_position(struct state *st, const struct state_position *p);
void state_get_position(struct state *st, struct state_position *out);
void state_put_tunnel(struct state *st, const struct state_tunnel *t);
void state_get_tunnel(struct state *st, struct state_tunnel *out);
/* The last STATE_EXCHANGES AT commands and answers of each modem (for `corridor diag`). */
#define STATE_EXCHANGES 48
void state_put_exchange(struct state *st, const char *link, const struct modem_exchange *x);
/* Copy out the newest (up to max) exchanges of config link index `link`, oldest first. */
unsigned state_get_exchanges(struct state *st, unsigned link, struct modem_exchange *out,
                             unsigned max);
void state_add_event(struct state *st, const char *source, const char *kind, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Copy out up to max links; returns the number of links. */
unsigned state_get_links(struct state *st, struct link_state *out, unsigned max);
/* Copy out events with seq > since, oldest first, at most max; returns the count. */
unsigned state_get_events(struct state *st, uint64_t since, struct state_event *out, unsigned max);
uint64_t state_started_mono_ms(struct state *st);
/* Can this link's modem carry traffic right now, as far as the modem itself knows: polling,
 * a sample under 5 s old, registered home or roaming. A link without a modem: true. */
bool link_modem_usable(const struct link_state *l);
/* Sequence number of the newest event, 0 if none. */
uint64_t state_last_event_seq(struct state *st);

#endif
