/* linkest: see linkest.h for the model. */
#include "agg/linkest.h"

#include <string.h>

#define MIN_RTT_WINDOW_US 10000000ull /* windowed minimum of RTT and transit */
#define MIN_SAMPLE_US     30000ull    /* shortest delivery-rate sample interval */
#define MIN_SAMPLE_BYTES  2800u       /* ... and at least two full packets */
#define LOSS_ALPHA        (1.0 / 256.0)

static uint64_t clamp_u64(uint64_t v, uint64_t lo, uint64_t hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

static double gain_of(int state)
{
    switch (state) {
    case LINK_STARTUP:
        return 2.0;
    case LINK_PROBING:
        return 1.25;
    case LINK_DRAINING:
        return 0.9;
    case LINK_UP:
        return 1.0;
    default:
        return 0.0;
    }
}

static void set_state(struct linkest *le, int state, uint64_t now_us)
{
    le->state = (uint8_t)state;
    le->pace_gain = gain_of(state);
    le->state_since_us = now_us;
}

void linkest_init(struct linkest *le, uint8_t link_id, uint64_t now_us)
{
    memset(le, 0, sizeof(*le));
    le->link_id = link_id;
    le->cap_Bps = LINKEST_INITIAL_BPS / 8.0;
    le->full_Bps = le->cap_Bps;
    /* Start optimistic but unproven: STARTUP with no evidence yet; the first probe reply or
     * feedback confirms the link, silence for the timeout takes it down. */
    set_state(le, LINK_STARTUP, now_us);
    le->last_evidence_us = now_us;
}

const char *linkest_state_name(int state)
{
    static const char *const names[] = {"down", "startup", "up", "probing", "draining"};
    return state >= 0 && state <= LINK_DRAINING ? names[state] : "?";
}

int linkest_usable(const struct linkest *le)
{
    return le->state != LINK_DOWN;
}

double linkest_pace_Bps(const struct linkest *le)
{
    return le->cap_Bps * le->pace_gain;
}

/* Queueing delay beyond the scheduler's own model that we accept before calling the link
 * saturated: cellular RTT wobbles by several ms even when idle. */
static double excess_thresh_us(const struct linkest *le)
{
    double t = le->min_rtt_us / 4.0;
    return t > 15000.0 ? t : 15000.0;
}

static void cut_to_delivery(struct linkest *le)
{
    /* The link delivers less than we offer: trust what it delivered, forget older maxima. Only
     * a delivery sample of an interval in which the link was kept busy (not app-limited) says
     * what the link can do; an app-limited one only says what we offered. Cutting to it after
     * an idle spell or a CPU hiccup made the estimate spiral down (each lower estimate offers
     * less, which delivers less). Without such a sample there is no cut: the link drains at
     * gain 0.9 until the excess is gone. Never below the floor a returning link restarts at. */
    if (le->full_sample_Bps <= 0)
        return;
    double c = le->full_sample_Bps;
    if (c < LINKEST_FLOOR_BPS / 8.0)
        c = LINKEST_FLOOR_BPS / 8.0;
    le->full_sample_Bps = 0; /* used once: the next cut needs fresh evidence */
    if (c < le->cap_Bps) {
        le->cap_Bps = c;
        le->maxf_n = 0;
    }
}

static void on_excess(struct linkest *le, double ex, uint64_t now_us);

static void update_gain(struct linkest *le, uint64_t now_us)
{
    double th = excess_thresh_us(le);
    uint64_t dwell = clamp_u64(le->srtt_us, 50000, 500000);
    switch (le->state) {
    case LINK_STARTUP:
        if (le->excess_us > th) {
            cut_to_delivery(le);
            set_state(le, LINK_DRAINING, now_us);
        }
        break;
    case LINK_DRAINING:
        if (le->excess_us < th / 2)
            set_state(le, LINK_UP, now_us);
        break;
    case LINK_UP:
        if (le->excess_us > th) {
            cut_to_delivery(le);
            set_state(le, LINK_DRAINING, now_us);
        } else if (le->excess_us < th / 4 && now_us - le->state_since_us > 2 * dwell) {
            set_state(le, LINK_PROBING, now_us);
        }
        break;
    case LINK_PROBING:
        if (le->excess_us > th) {
            cut_to_delivery(le);
            set_state(le, LINK_DRAINING, now_us);
        } else if (le->excess_us > th / 2) {
            set_state(le, LINK_UP, now_us); /* found the knee: hold this rate */
        }
        break;
    default:
        break;
    }
}

void linkest_on_rtt(struct linkest *le, uint32_t rtt_us, uint32_t q_us, uint64_t now_us)
{
    if (rtt_us == 0)
        rtt_us = 1;
    le->latest_rtt_us = rtt_us;
    if (!le->has_rtt) {
        le->has_rtt = 1;
        le->srtt_us = rtt_us;
        le->rttvar_us = rtt_us / 2;
        le->min_rtt_us = rtt_us;
        le->min_rtt_cand_us = rtt_us;
        le->min_rtt_stamp_us = now_us;
    } else {
        uint32_t d = rtt_us > le->srtt_us ? rtt_us - le->srtt_us : le->srtt_us - rtt_us;
        le->rttvar_us = (uint32_t)((3ull * le->rttvar_us + d) / 4);
        le->srtt_us = (uint32_t)((7ull * le->srtt_us + rtt_us) / 8);
        /* Two-bucket windowed minimum: the running min expires after the window and is
         * replaced by the min of the samples seen since, so a route change upwards is learnt. */
        if (rtt_us < le->min_rtt_cand_us)
            le->min_rtt_cand_us = rtt_us;
        if (rtt_us <= le->min_rtt_us) {
            le->min_rtt_us = rtt_us;
            le->min_rtt_stamp_us = now_us;
            le->min_rtt_cand_us = rtt_us;
        } else if (now_us - le->min_rtt_stamp_us > MIN_RTT_WINDOW_US) {
            le->min_rtt_us = le->min_rtt_cand_us;
            le->min_rtt_stamp_us = now_us;
            le->min_rtt_cand_us = rtt_us;
        }
    }
    /* Forward transit samples are better (more frequent, one-way): RTT only without them. */
    if (!le->has_fwd)
        on_excess(le, (double)rtt_us - (double)le->min_rtt_us - (double)q_us, now_us);
    update_gain(le, now_us);
}

static void on_excess(struct linkest *le, double ex, uint64_t now_us)
{
    le->excess_us += (ex - le->excess_us) / 4.0;
    /* The model expected a queue (q_us) that the RTT did not show: the link drains faster than
     * the estimate, which deliveries cannot reveal because they only ever carry what we offered.
     * Raise the estimate (x2 in STARTUP, x1.25 after) at most once per RTT; if that overshoots,
     * the queue grows, the excess turns positive and update_gain() cuts back to the measured
     * delivery rate. */
    double th = excess_thresh_us(le);
    if (ex < -th / 2 && le->excess_us < -th / 2 && le->state != LINK_DRAINING &&
        now_us - le->raise_us >= le->srtt_us) {
        le->raise_us = now_us;
        le->cap_Bps *= le->state == LINK_STARTUP ? 2.0 : 1.25;
        if (le->state != LINK_STARTUP)
            set_state(le, LINK_PROBING, now_us);
        /* Seed the max filter with the raised value so the next sample does not undo it. */
        if (le->maxf_n < LINKEST_MAXF) {
            le->maxf[le->maxf_n].Bps = le->cap_Bps;
            le->maxf[le->maxf_n].t_us = now_us;
            le->maxf_n++;
        }
        le->excess_us = 0; /* judge the new rate on fresh samples */
    }
}

static void fwd_sample(struct linkest *le, int64_t raw, uint64_t now_us)
{
    if (!le->has_fwd || raw <= le->fwd_base_us) {
        le->has_fwd = 1;
        le->fwd_base_us = raw;
        le->fwd_cand_us = raw;
        le->fwd_stamp_us = now_us;
    } else {
        if (raw < le->fwd_cand_us)
            le->fwd_cand_us = raw;
        if (now_us - le->fwd_stamp_us > MIN_RTT_WINDOW_US) {
            le->fwd_base_us = le->fwd_cand_us;
            le->fwd_cand_us = raw;
            le->fwd_stamp_us = now_us;
        }
    }
}

void linkest_on_fwd_transit(struct linkest *le, int64_t transit_us, uint32_t q_us, uint64_t now_us)
{
    fwd_sample(le, transit_us, now_us);
    on_excess(le, (double)(transit_us - le->fwd_base_us) - (double)q_us, now_us);
    update_gain(le, now_us);
}

void linkest_on_evidence(struct linkest *le, uint64_t now_us)
{
    uint64_t gap = now_us - le->last_evidence_us;
    if (gap > 1000000)
        gap = 1000000;
    le->ev_gap_us = (uint32_t)((7ull * le->ev_gap_us + gap) / 8);
    le->last_evidence_us = now_us;
    le->unanswered_since_us = 0;
    if (le->state == LINK_DOWN) {
        /* Ease a returning link back in: from a quarter of what it had, in STARTUP so the
         * estimate is re-proven by deliveries before it carries its old share. */
        le->cap_Bps /= 4.0;
        if (le->cap_Bps < LINKEST_FLOOR_BPS / 8.0)
            le->cap_Bps = LINKEST_FLOOR_BPS / 8.0;
        le->full_Bps = le->cap_Bps;
        le->full_cnt = 0;
        le->maxf_n = 0;
        le->fb_have = 0;
        le->excess_us = 0;
        le->pairs_sent = le->pairs_got = 0;
        le->pair_hi_Bps = 0;
        le->pair_rx1_us = 0;
        set_state(le, LINK_STARTUP, now_us);
    }
}

void linkest_on_sent(struct linkest *le, uint32_t bytes, uint32_t q_us, uint64_t now_us)
{
    le->tx_pkts++;
    le->tx_bytes += bytes;
    if (le->unanswered_since_us == 0)
        le->unanswered_since_us = now_us + q_us ? now_us + q_us : 1;
}

static uint64_t maxf_window_us(const struct linkest *le)
{
    return clamp_u64(10ull * le->srtt_us, 1000000, 5000000);
}

void linkest_on_delivery(struct linkest *le, uint32_t cum_bytes, uint64_t rx_us, uint64_t now_us)
{
    if (!le->fb_have) {
        le->fb_have = 1;
        le->fb_bytes = cum_bytes;
        le->fb_rx_us = rx_us;
        le->app_limited = 0;
        return;
    }
    if (rx_us <= le->fb_rx_us)
        return; /* stale or reordered report */
    uint64_t dt = rx_us - le->fb_rx_us;
    uint32_t db = cum_bytes - le->fb_bytes; /* wraps correctly */
    if ((dt < MIN_SAMPLE_US || db < MIN_SAMPLE_BYTES) && dt < 1000000)
        return;
    double s = (double)db * 1e6 / (double)dt;
    int al = le->app_limited;
    le->fb_bytes = cum_bytes;
    le->fb_rx_us = rx_us;
    le->app_limited = 0;
    le->last_sample_Bps = s;
    if (!al)
        le->full_sample_Bps = s;
    /* An app-limited sample says only "at least this much": it may raise the estimate, never
     * lower it (as in BBR). */
    if (al && s < le->cap_Bps)
        return;
    uint64_t win = maxf_window_us(le);
    uint8_t k = 0;
    double mx = s;
    for (uint8_t i = 0; i < le->maxf_n; i++) {
        if (now_us - le->maxf[i].t_us <= win) {
            le->maxf[k++] = le->maxf[i];
            if (le->maxf[i].Bps > mx)
                mx = le->maxf[i].Bps;
        }
    }
    if (k == LINKEST_MAXF) { /* full: drop the oldest */
        memmove(&le->maxf[0], &le->maxf[1], sizeof(le->maxf[0]) * (LINKEST_MAXF - 1));
        k--;
    }
    le->maxf[k].Bps = s;
    le->maxf[k].t_us = now_us;
    le->maxf_n = (uint8_t)(k + 1);
    le->cap_Bps = mx;
    if (le->state == LINK_STARTUP && !al) {
        if (s >= le->full_Bps * 1.25) {
            le->full_Bps = s;
            le->full_cnt = 0;
        } else if (++le->full_cnt >= 3) {
            set_state(le, LINK_DRAINING, now_us); /* growth stopped: drain what startup queued */
        }
    }
}

void linkest_on_outcome(struct linkest *le, uint32_t lost, uint32_t ok)
{
    uint32_t n = lost + ok;
    if (n == 0)
        return;
    le->lost_pkts += lost;
    le->acked_pkts += ok;
    double a = n * LOSS_ALPHA;
    if (a > 1.0)
        a = 1.0;
    le->loss += a * ((double)lost / n - le->loss);
}

int linkest_probe_due(const struct linkest *le, uint64_t now_us)
{
    return le->probes_tx == 0 || now_us - le->last_probe_tx_us >= LINKEST_PROBE_INTERVAL_US;
}

/* One probe record and message; pad > 0 for a pair's probe. */
static void new_probe(struct linkest *le, uint32_t q_us, uint16_t pad, uint64_t now_us,
                      struct ctrl_probe *p)
{
    le->probe_seq++;
    if (le->probe_seq == 0) /* 0 means "no probe" in the records */
        le->probe_seq = 1;
    unsigned i = le->probe_seq % LINKEST_PROBES;
    le->probe[i].seq = le->probe_seq;
    le->probe[i].tx_us = now_us;
    le->probe[i].q_us = q_us;
    le->probe[i].pad = pad;
    le->probes_tx++;
    p->link_id = le->link_id;
    p->probe_seq = le->probe_seq;
    p->tx_us = now_us;
    p->pad = pad;
}

int linkest_pair_due(const struct linkest *le, uint64_t now_us)
{
    return le->state != LINK_DOWN && le->has_rtt && le->maxf_n == 0 &&
           le->pairs_sent < LINKEST_PAIRS &&
           (le->pairs_sent == 0 || now_us - le->pair_tx_us >= LINKEST_PROBE_INTERVAL_US);
}

void linkest_make_pair(struct linkest *le, uint32_t q_us, uint64_t now_us, struct ctrl_probe out[2])
{
    new_probe(le, q_us, LINKEST_PAIR_PAD, now_us, &out[0]);
    le->pair_seq1 = le->probe_seq;
    le->pair_rx1_us = 0;
    new_probe(le, q_us, LINKEST_PAIR_PAD, now_us, &out[1]);
    le->pairs_sent++;
    le->pair_tx_us = now_us;
}

/* A reply to a pair's probe. */
static void on_pair_reply(struct linkest *le, uint32_t seq, uint64_t rx_us)
{
    if (seq == le->pair_seq1) {
        le->pair_rx1_us = rx_us ? rx_us : 1;
        return;
    }
    if (seq != le->pair_seq1 + 1 || le->pair_rx1_us == 0 || rx_us < le->pair_rx1_us)
        return; /* an older pair's, or its first probe was lost */
    uint64_t gap = rx_us - le->pair_rx1_us;
    le->pair_rx1_us = 0;
    le->pairs_got++;
    /* No spacing: both were read at once, the link is too fast to time this way. */
    double r = gap ? (double)LINKEST_PAIR_WIRE_BYTES * 1e6 / (double)gap : 1e12;
    if (r > le->pair_hi_Bps)
        le->pair_hi_Bps = r;
    /* Only the guess is replaced: once a delivery-rate sample exists (data flowed for a
     * while, or the estimate was raised) the link is measured for real. Not only in STARTUP:
     * the pair's own queue may have ended STARTUP on a slow link (excess delay) already. */
    if (le->pairs_got >= 2 && le->state != LINK_DOWN && le->maxf_n == 0 &&
        le->pair_hi_Bps < le->cap_Bps) {
        le->cap_Bps = le->pair_hi_Bps;
        if (le->cap_Bps < LINKEST_FLOOR_BPS / 8.0)
            le->cap_Bps = LINKEST_FLOOR_BPS / 8.0;
        le->full_Bps = le->cap_Bps;
    }
}

void linkest_make_probe(struct linkest *le, uint32_t q_us, uint64_t now_us, struct ctrl_probe *p)
{
    new_probe(le, q_us, 0, now_us, p);
    le->last_probe_tx_us = now_us;
    /* The probe waits behind the queue the scheduler put in front of the link, like data: its
     * answer is not due before then (counting from now declared busy links dead). */
    if (le->unanswered_since_us == 0)
        le->unanswered_since_us = now_us + q_us ? now_us + q_us : 1;
}

int linkest_on_probe_reply(struct linkest *le, const struct ctrl_probe_reply *r, uint64_t now_us)
{
    unsigned i = r->probe_seq % LINKEST_PROBES;
    /* Match on our own record, never on the echoed time alone: a forged or stale reply must
     * not be able to inject an RTT. */
    if (r->probe_seq == 0 || le->probe[i].seq != r->probe_seq || le->probe[i].tx_us != r->tx_us ||
        r->tx_us > now_us)
        return -1;
    le->probe[i].seq = 0;
    le->probe_replies++;
    uint64_t rtt = now_us - r->tx_us;
    if (rtt > 10000000)
        return -1;
    uint32_t q = le->probe[i].q_us;
    /* Evidence first: a link returning from DOWN resets its pairs there. */
    linkest_on_evidence(le, now_us);
    if (le->probe[i].pad) {
        on_pair_reply(le, r->probe_seq, r->rx_us);
        return 0;
    }
    linkest_on_rtt(le, (uint32_t)rtt, q, now_us);
    /* Raw transit, not corrected by the modelled queue q: the model is least accurate exactly
     * when it matters (startup), and the windowed minimum finds an empty queue anyway. */
    linkest_on_fwd_transit(le, (int64_t)(r->rx_us - r->tx_us), q, now_us);
    return 0;
}

void linkest_on_probe_rx(struct linkest *le, const struct ctrl_probe *p, uint64_t now_us)
{
    if (p->pad)
        return; /* a pair's probe: its transit includes its serialisation, not a delay sample */
    int64_t raw = (int64_t)(now_us - p->tx_us);
    if (le->has_rx) {
        int64_t d = raw - le->rx_last_raw_us;
        if (d < 0)
            d = -d;
        le->rx_jitter_us += ((double)d - le->rx_jitter_us) / 16.0;
    }
    le->rx_last_raw_us = raw;
    le->rx_last_us = now_us;
    if (!le->has_rx || raw <= le->rx_base_us) {
        le->has_rx = 1;
        le->rx_base_us = raw;
        le->rx_cand_us = raw;
        le->rx_stamp_us = now_us;
    } else {
        if (raw < le->rx_cand_us)
            le->rx_cand_us = raw;
        if (now_us - le->rx_stamp_us > MIN_RTT_WINDOW_US) {
            le->rx_base_us = le->rx_cand_us;
            le->rx_cand_us = raw;
            le->rx_stamp_us = now_us;
        }
    }
}

uint32_t linkest_timeout_us(const struct linkest *le)
{
    if (!le->has_rtt)
        return LINKEST_MAX_TIMEOUT_US;
    /* RTO-like: the answer to our oldest unanswered packet is overdue by 4 deviations plus
     * the usual spacing of answers (feedback is paced, probes are every 100 ms). */
    uint64_t gap =
        le->ev_gap_us < LINKEST_PROBE_INTERVAL_US ? le->ev_gap_us : LINKEST_PROBE_INTERVAL_US;
    /* Silence is counted from when the answer was due behind the queue the scheduler modelled
     * (linkest_on_sent), so the base is the RTT without that queue: the minimum RTT plus the
     * queueing the model did not expect (the excess). The smoothed RTT counted a loaded link's
     * queue twice: a cut 50 Mbit/s link with 60 ms of queue was declared down ~100 ms later than
     * it needed to be, and every packet held behind its in-flight data waited that long. */
    uint64_t base = le->srtt_us;
    if (le->min_rtt_us > 0) {
        double b = (double)le->min_rtt_us + (le->excess_us > 0 ? le->excess_us : 0.0);
        if (b < (double)base)
            base = (uint64_t)b;
    }
    uint64_t t = base + 4ull * le->rttvar_us + gap + 10000;
    return (uint32_t)clamp_u64(t, LINKEST_MIN_TIMEOUT_US, LINKEST_MAX_TIMEOUT_US);
}

int linkest_tick(struct linkest *le, uint64_t now_us)
{
    if (le->state == LINK_DOWN)
        return 0;
    uint32_t to = linkest_timeout_us(le);
    if (le->unanswered_since_us && now_us > le->unanswered_since_us &&
        now_us - le->unanswered_since_us > to && now_us - le->last_evidence_us > to) {
        set_state(le, LINK_DOWN, now_us);
        le->down_since_us = now_us;
        le->downs++;
        le->unanswered_since_us = 0;
        return 1;
    }
    return 0;
}

uint32_t linkest_hold_us(const struct linkest *les, size_t n, uint32_t arq_us, uint64_t now_us)
{
    int64_t lo = INT64_MAX, hi = INT64_MIN;
    for (size_t i = 0; i < n; i++) {
        const struct linkest *le = &les[i];
        if (!le->has_rx && le->state != LINK_DOWN)
            return LINKEST_MAX_TIMEOUT_US; /* a live link of unknown delay: be conservative */
        if (!le->has_rx || (now_us > le->rx_last_us && now_us - le->rx_last_us > 1000000))
            continue;
        int64_t top = le->rx_base_us + (int64_t)(2.0 * le->rx_jitter_us);
        if (le->rx_base_us < lo)
            lo = le->rx_base_us;
        if (top > hi)
            hi = top;
    }
    if (lo == INT64_MAX)
        return LINKEST_MAX_TIMEOUT_US;
    uint64_t h = arq_us + (uint64_t)(hi - lo);
    return (uint32_t)clamp_u64(h, 5000, 300000);
}
