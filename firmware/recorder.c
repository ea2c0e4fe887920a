/* recorder: state -> telemetry records -> outbox -> uploader. See recorder.h. */
#include "firmware/recorder.h"
#include "telemetry/telemetry.h"
#include "common/alive.h"

#include <dirent.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <unistd.h>

#define HEALTH_PERIOD_MS  10000u
#define SIMUSAGE_FLUSH_MS 2000u /* data used per SIM on disk this often (power-cut loss) */
/* a SIM record with the data used at least this often, and at least once per batch */
#define SIM_RECORD_PERIOD_MS 300000u

struct recorder_engine {
    const struct config *cfg;
    struct state *st;
    struct recorder *rec;
    struct outbox *ob;
    struct uploader *up;
    struct simusage *usage;       /* data used per SIM, persisted in the outbox file */
    struct storage_monitor *disk; /* SSD / eMMC health, its own thread (smartctl is slow) */
    char boot_id[40];             /* part of an interface counter's identity */
    pthread_t thread;
    bool stop;
    /* thread-owned */
    uint64_t last_event_seq;
    uint64_t last_health_ms;
    uint64_t balance_seen[CFG_MAX_LINKS]; /* mono_ms of the last recorded balance per link */
    struct simfin fin[CFG_MAX_LINKS];     /* balance history per link's SIM */
    char fin_iccid[CFG_MAX_LINKS][24];    /* the SIM that history belongs to */
    bool alerted[CFG_MAX_LINKS];
    struct state_sim sim[CFG_MAX_LINKS];   /* what the shared state shows per link's SIM */
    uint64_t sim_record_ms[CFG_MAX_LINKS]; /* mono ms of the last SIM record per link */
    char sim_iccid[CFG_MAX_LINKS][24];     /* the SIM sim[] describes */
    uint64_t usage_flush_ms;               /* mono ms of the last simusage_flush */
    bool usage_warned;
    char upload_if[32];         /* interface the uploader was last told to use */
    uint64_t tunnel_down_since; /* mono ms the tunnel stopped being connected, 0 = up */
    struct link_state links[CFG_MAX_LINKS];
};

static float f_or_nan(double v)
{
    return isnan(v) ? NAN : (float)v;
}

static uint64_t read_u64_file(const char *path)
{
    FILE *f = fopen(path, "r");
    unsigned long long v = 0;
    if (f) {
        if (fscanf(f, "%llu", &v) != 1)
            v = 0;
        fclose(f);
    }
    return v;
}

/* Hottest thermal zone in degrees C, NAN if the board has none. */
static float hottest_zone(void)
{
    DIR *d = opendir("/sys/class/thermal");
    if (!d)
        return NAN;
    float best = NAN;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (strncmp(e->d_name, "thermal_zone", 12) != 0)
            continue;
        char p[300];
        snprintf(p, sizeof p, "/sys/class/thermal/%s/temp", e->d_name);
        FILE *f = fopen(p, "r");
        long milli;
        if (f && fscanf(f, "%ld", &milli) == 1) {
            float c = (float)milli / 1000.0f;
            if (isnan(best) || c > best)
                best = c;
        }
        if (f)
            fclose(f);
    }
    closedir(d);
    return best;
}

static void record_health(struct recorder_engine *r, int64_t now_ms, unsigned nlinks)
{
    struct rec_health h = {.t_ms = now_ms, .cpu_temp_c = hottest_zone(), .ssd_health_pct = -1};
    struct storage_health sh;
    storage_monitor_get(r->disk, &sh);
    str_copy(h.storage_dev, sh.dev, sizeof h.storage_dev);
    h.storage_status = (uint8_t)sh.status;
    h.storage_smart_passed = (int8_t)sh.smart_passed;
    h.storage_life_used_pct = (int16_t)(sh.life_used_pct > 255 ? 255 : sh.life_used_pct);
    h.storage_temp_c = sh.temp_c;
    h.storage_power_on_hours = sh.power_on_hours;
    h.storage_media_errors = sh.media_errors;
    h.ssd_health_pct = (int8_t)storage_life_left_pct(&sh);
    FILE *f = fopen("/proc/loadavg", "r");
    if (f) {
        if (fscanf(f, "%f", &h.load1) != 1)
            h.load1 = NAN;
        fclose(f);
    }
    f = fopen("/proc/meminfo", "r");
    if (f) {
        char line[128];
        unsigned long long v;
        while (fgets(line, sizeof line, f)) {
            if (sscanf(line, "MemTotal: %llu", &v) == 1)
                h.mem_total_kb = v;
            else if (sscanf(line, "MemAvailable: %llu", &v) == 1)
                h.mem_avail_kb = v;
        }
        fclose(f);
    }
    struct statvfs sv;
    if (statvfs(r->cfg->data_dir, &sv) == 0) {
        h.disk_total_kb = (uint64_t)sv.f_blocks * sv.f_frsize / 1024;
        h.disk_free_kb = (uint64_t)sv.f_bavail * sv.f_frsize / 1024;
    }
    for (unsigned i = 0; i < nlinks; i++) {
        char p[160];
        const char *ifn = r->links[i].interface;
        snprintf(p, sizeof p, "/sys/class/net/%s/statistics/rx_errors", ifn);
        h.if_rx_errors += read_u64_file(p);
        snprintf(p, sizeof p, "/sys/class/net/%s/statistics/tx_errors", ifn);
        h.if_tx_errors += read_u64_file(p);
        snprintf(p, sizeof p, "/sys/class/net/%s/statistics/rx_dropped", ifn);
        h.if_drops += read_u64_file(p);
    }
    f = fopen("/proc/self/status", "r");
    if (f) {
        char line[128];
        unsigned long long v;
        while (fgets(line, sizeof line, f)) {
            if (sscanf(line, "VmRSS: %llu", &v) == 1)
                h.rss_kb = v;
            else if (sscanf(line, "Threads: %llu", &v) == 1)
                h.threads_alive = h.threads_total = (uint32_t)v;
        }
        fclose(f);
    }
    recorder_add_health(r->rec, &h);
}

/* Every batch carries the SIMs' data used: a record per SIM at least once per batch. */
static uint64_t sim_record_period(const struct recorder_engine *r)
{
    uint64_t batch = (uint64_t)r->cfg->telemetry.batch_seconds * 1000u;
    return batch && batch < SIM_RECORD_PERIOD_MS ? batch : SIM_RECORD_PERIOD_MS;
}

/* A SIM record of link i from the cached state (balance, forecast, alert, data used). */
static void record_sim(struct recorder_engine *r, unsigned i, const struct link_state *l,
                       int64_t now, uint64_t mono)
{
    const struct state_sim *ss = &r->sim[i];
    struct rec_sim rs = {.t_ms = now,
                         .balance = ss->valid ? ss->balance : NAN,
                         .data_used_bytes = ss->data_used_bytes,
                         .forecast_empty_utc = ss->valid ? ss->forecast_empty_utc : -1,
                         .alert = ss->alert,
                         .data_up_bytes = ss->data_up_bytes,
                         .data_down_bytes = ss->data_down_bytes,
                         .data_today_bytes = ss->data_today_bytes,
                         .data_month_bytes = ss->data_month_bytes};
    str_copy(rs.link, l->name, sizeof rs.link);
    str_copy(rs.iccid, r->sim_iccid[i][0] ? r->sim_iccid[i] : l->modem.id.iccid, sizeof rs.iccid);
    recorder_add_sim(r->rec, &rs);
    r->sim_record_ms[i] = mono;
}

/* Data used per SIM: the kernel's counters of each modem link's interface go into the
 * persisted per-ICCID totals (telemetry/simfin.h), flushed every SIMUSAGE_FLUSH_MS; the
 * totals go into the shared state for the dashboard ("used this month"). */
static void record_usage(struct recorder_engine *r, unsigned n, int64_t now, uint64_t mono)
{
    if (!r->usage)
        return;
    char err[256];
    for (unsigned i = 0; i < n; i++) {
        const struct link_state *l = &r->links[i];
        if (!l->has_modem || !l->modem_valid || !l->modem.id.iccid[0])
            continue;
        char p[160];
        snprintf(p, sizeof p, "/sys/class/net/%s/ifindex", l->interface);
        uint64_t ifindex = read_u64_file(p);
        if (!ifindex)
            continue; /* no such interface (modem re-enumerating): nothing to count */
        snprintf(p, sizeof p, "/sys/class/net/%s/statistics/rx_bytes", l->interface);
        uint64_t rx = read_u64_file(p);
        snprintf(p, sizeof p, "/sys/class/net/%s/statistics/tx_bytes", l->interface);
        uint64_t tx = read_u64_file(p);
        /* the counter's identity: a reboot or a re-created interface starts a new counter */
        char ctr[SIMUSAGE_CTR_MAX];
        snprintf(ctr, sizeof ctr, "%s/%.32s/%llu", r->boot_id, l->interface,
                 (unsigned long long)ifindex);
        if (simusage_observe(r->usage, l->modem.id.iccid, ctr, rx, tx, now, err, sizeof err)) {
            if (!r->usage_warned)
                LOG_W("telemetry", "%s", err);
            r->usage_warned = true;
            continue;
        }
        struct simusage_totals t;
        if (simusage_get(r->usage, l->modem.id.iccid, now, &t, err, sizeof err) == 0) {
            struct state_sim *ss = &r->sim[i];
            if (strcmp(r->sim_iccid[i], l->modem.id.iccid) != 0) {
                /* another SIM in the slot: nothing of the previous one applies */
                memset(ss, 0, sizeof *ss);
                str_copy(r->sim_iccid[i], l->modem.id.iccid, sizeof r->sim_iccid[i]);
            }
            if (!ss->valid) {
                ss->balance = ss->rate_per_day = NAN;
                ss->forecast_empty_utc = -1;
            }
            ss->valid = true;
            ss->data_up_bytes = t.up;
            ss->data_down_bytes = t.down;
            ss->data_used_bytes = t.up + t.down;
            ss->data_today_bytes = t.today_up + t.today_down;
            ss->data_month_bytes = t.month_up + t.month_down;
            state_put_link_sim(r->st, i, ss);
        }
    }
    if (mono - r->usage_flush_ms >= SIMUSAGE_FLUSH_MS) {
        r->usage_flush_ms = mono;
        if (simusage_flush(r->usage, now, err, sizeof err) != 0)
            LOG_W("telemetry", "%s", err);
    }
}

static void step(struct recorder_engine *r)
{
    int64_t now = (int64_t)wall_ms();
    uint64_t mono = mono_ms();
    struct state_position sp;
    state_get_position(r->st, &sp);
    struct rec_track t = {.t_ms = now,
                          .lat = sp.valid ? sp.lat : NAN,
                          .lon = sp.valid ? sp.lon : NAN,
                          .alt_m = sp.valid ? f_or_nan(sp.alt_m) : NAN,
                          .speed_kmh = sp.valid ? f_or_nan(sp.speed_kmh) : NAN,
                          .track_deg = sp.valid ? f_or_nan(sp.track_deg) : NAN,
                          .fix_mode = sp.valid ? 3 : 0};
    if (sp.valid)
        t.source = strncmp(sp.source, "gpsd", 4) == 0    ? 1
                   : strncmp(sp.source, "modem", 5) == 0 ? 2
                                                         : 3;
    recorder_add_track(r->rec, &t);

    unsigned n = state_get_links(r->st, r->links, CFG_MAX_LINKS);
    record_usage(r, n, now, mono);
    for (unsigned i = 0; i < n; i++) {
        const struct link_state *l = &r->links[i];
        struct rec_link rl = {.t_ms = now,
                              .rssi_dbm = NAN,
                              .rsrp_dbm = NAN,
                              .rsrq_db = NAN,
                              .sinr_db = NAN,
                              .rtt_ms = NAN,
                              .loss_pct = NAN,
                              .goodput_kbps = NAN,
                              .weight = l->policy.valid ? (float)l->policy.weight : NAN};
        str_copy(rl.link, l->name, sizeof rl.link);
        if (l->has_modem && l->modem_valid) {
            const struct modem_sample *m = &l->modem;
            str_copy(rl.operator_name, m->oper_name, sizeof rl.operator_name);
            str_copy(rl.net_type, modem_net_name(m->net), sizeof rl.net_type);
            rl.cell_id = m->cell_id > 0 ? (uint64_t)m->cell_id : 0;
            rl.rssi_dbm = f_or_nan(m->sig.rssi_dbm);
            rl.rsrp_dbm = f_or_nan(m->sig.rsrp_dbm);
            rl.rsrq_db = f_or_nan(m->sig.rsrq_db);
            rl.sinr_db = f_or_nan(m->sig.sinr_db);
            rl.state = (uint8_t)m->state;
            /* A new USSD answer becomes a SIM record: balance history, spend forecast, data
             * used and the low-balance alert. A different SIM in the slot starts afresh. */
            if (m->balance.valid && m->balance.mono_ms != r->balance_seen[i]) {
                r->balance_seen[i] = m->balance.mono_ms;
                if (strcmp(r->fin_iccid[i], m->id.iccid) != 0) {
                    memset(&r->fin[i], 0, sizeof r->fin[i]);
                    str_copy(r->fin_iccid[i], m->id.iccid, sizeof r->fin_iccid[i]);
                    r->alerted[i] = false;
                }
                double amount = m->balance.amount_valid ? m->balance.amount : NAN;
                simfin_add(&r->fin[i], now / 1000, amount);
                struct state_sim *ss = &r->sim[i];
                if (strcmp(r->sim_iccid[i], m->id.iccid) != 0) {
                    memset(ss, 0, sizeof *ss);
                    str_copy(r->sim_iccid[i], m->id.iccid, sizeof r->sim_iccid[i]);
                }
                double thr = r->cfg->telemetry.balance_alert;
                ss->valid = true;
                ss->balance = amount;
                ss->rate_per_day = simfin_rate_per_day(&r->fin[i]);
                ss->forecast_empty_utc = simfin_forecast_empty(&r->fin[i]);
                ss->alert = thr > 0 && !isnan(amount) && amount < thr;
                record_sim(r, i, l, now, mono);
                if (ss->alert && !r->alerted[i])
                    state_add_event(r->st, l->name, "balance_low",
                                    "%s: SIM balance %.2f is under the alert threshold %.2f",
                                    l->name, amount, thr);
                r->alerted[i] = ss->alert;
                state_put_link_sim(r->st, i, ss);
            } else if (r->sim[i].valid && mono - r->sim_record_ms[i] >= sim_record_period(r)) {
                /* the data used keeps growing between (4-hourly) balance answers */
                record_sim(r, i, l, now, mono);
            }
        }
        if (l->tunnel.valid) {
            rl.rtt_ms = f_or_nan(l->tunnel.srtt_ms);
            rl.loss_pct = f_or_nan(l->tunnel.loss * 100.0);
        }
        recorder_add_link(r->rec, &rl);
    }

    struct state_event ev[64];
    unsigned ne;
    while ((ne = state_get_events(r->st, r->last_event_seq, ev, ARRAY_LEN(ev))) > 0) {
        for (unsigned k = 0; k < ne; k++) {
            struct rec_event re = {.t_ms = (int64_t)ev[k].wall_ms};
            str_copy(re.type, ev[k].kind, sizeof re.type);
            str_copy(re.subject, ev[k].source, sizeof re.subject);
            str_copy(re.text, ev[k].text, sizeof re.text);
            recorder_add_event(r->rec, &re);
            r->last_event_seq = ev[k].seq;
        }
        if (ne < ARRAY_LEN(ev))
            break;
    }
    if (mono - r->last_health_ms >= HEALTH_PERIOD_MS) {
        r->last_health_ms = mono;
        record_health(r, now, n);
    }

    /* Uploads go through the bonded tunnel while it is up (routing decides: ""), else straight
     * out of the first link whose modem can carry traffic, so a long tunnel outage does not
     * hold the data center's view of the vehicle back. */
    if (r->up) {
        struct state_tunnel tun;
        state_get_tunnel(r->st, &tun);
        const char *want = "";
        bool connected = strcmp(tun.hub_state, "connected") == 0;
        if (connected || !r->cfg->tunnel.enabled)
            r->tunnel_down_since = 0;
        else if (!r->tunnel_down_since)
            r->tunnel_down_since = mono;
        /* 15 s of grace: a hub failover or the start-up handshake is not an outage. */
        if (r->tunnel_down_since && mono - r->tunnel_down_since >= 15000) {
            for (unsigned i = 0; i < n; i++) {
                const struct link_state *l = &r->links[i];
                if (link_modem_usable(l)) {
                    want = l->interface;
                    break;
                }
            }
        }
        if (strcmp(want, r->upload_if) != 0) {
            str_copy(r->upload_if, want, sizeof r->upload_if);
            uploader_set_interface(r->up, want);
            LOG_I("telemetry", "uploads now go %s%s",
                  want[0] ? "directly out of " : "through the tunnel", want);
            state_add_event(r->st, "telemetry", "upload_path", "uploads now go %s%s",
                            want[0] ? "directly out of " : "through the tunnel",
                            want[0] ? want : "");
        }
    }

    char err[256];
    uint64_t seq;
    int rc = outbox_tick(r->ob, r->rec, now, &seq, err, sizeof err);
    if (rc < 0) {
        LOG_W("telemetry", "outbox: %s", err);
    } else if (rc == 1) {
        LOG_I("telemetry", "batch %llu cut", (unsigned long long)seq);
        state_add_event(r->st, "telemetry", "batch", "batch %llu cut", (unsigned long long)seq);
        uploader_kick(r->up);
    }
}

static void *recorder_thread(void *arg)
{
    struct recorder_engine *r = arg;
    pthread_setname_np(pthread_self(), "recorder");
    while (!sleep_ms_unless(&r->stop, 1000)) {
        alive_beat("recorder", NULL);
        step(r);
    }
    /* Final flush so a clean stop loses nothing (a power cut loses at most 2 s). */
    char err[256];
    if (recorder_flush(r->rec, r->ob, err, sizeof err) < 0)
        LOG_W("telemetry", "final flush: %s", err);
    if (r->usage && simusage_flush(r->usage, (int64_t)wall_ms(), err, sizeof err) != 0)
        LOG_W("telemetry", "final flush: %s", err);
    return NULL;
}

int recorder_start(const struct config *cfg, struct state *st, struct recorder_engine **out,
                   char *err, size_t errlen)
{
    struct recorder_engine *r = calloc(1, sizeof *r);
    if (!r) {
        snprintf(err, errlen, "telemetry: out of memory");
        return -1;
    }
    r->cfg = cfg;
    r->st = st;
    struct outbox_config oc = {0};
    str_copy(oc.vehicle_id, cfg->vehicle_id, sizeof oc.vehicle_id);
    oc.quota_bytes = (uint64_t)cfg->telemetry.quota_mb << 20;
    oc.batch_ms = cfg->telemetry.batch_seconds * 1000u;
    char path[CFG_PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/outbox.db", cfg->data_dir);
    char e2[256];
    r->rec = recorder_new(4096);
    r->ob = r->rec ? outbox_open(path, &oc, e2, sizeof e2) : NULL;
    if (!r->ob) {
        snprintf(err, errlen, "telemetry: outbox %s: %s", path, r->rec ? e2 : "out of memory");
        goto fail;
    }
    /* Data used per SIM lives in the same file (own tables): losing it is not fatal. */
    r->usage = simusage_open(path, e2, sizeof e2);
    if (!r->usage)
        LOG_W("telemetry", "data used per SIM not persisted: %s", e2);
    FILE *bf = fopen("/proc/sys/kernel/random/boot_id", "r");
    if (!bf || !fgets(r->boot_id, sizeof r->boot_id, bf))
        str_copy(r->boot_id, "unknown-boot", sizeof r->boot_id);
    if (bf)
        fclose(bf);
    str_trim(r->boot_id);
    struct storage_monitor_config smc = {.interval_s = cfg->telemetry.storage_interval_s};
    str_copy(smc.device, cfg->telemetry.storage_device, sizeof smc.device);
    str_copy(smc.data_path, cfg->data_dir, sizeof smc.data_path);
    r->disk = storage_monitor_start(&smc, e2, sizeof e2);
    if (!r->disk)
        LOG_W("telemetry", "no storage health: %s", e2);
    if (cfg->telemetry.upload_url[0]) {
        struct uploader_config uc = {0};
        str_copy(uc.db_path, path, sizeof uc.db_path);
        uc.outbox = oc;
        str_copy(uc.url, cfg->telemetry.upload_url, sizeof uc.url);
        str_copy(uc.token_file, cfg->telemetry.token_file, sizeof uc.token_file);
        uc.rate_bytes_per_s = (uint64_t)cfg->telemetry.upload_rate_kbps * 1000u / 8u;
        r->up = uploader_start(&uc, e2, sizeof e2);
        if (!r->up) {
            snprintf(err, errlen, "telemetry: uploader: %s", e2);
            goto fail;
        }
        LOG_I("telemetry", "uploading to %s", cfg->telemetry.upload_url);
    } else {
        LOG_I("telemetry", "no telemetry.upload_url: batches stay in %s", path);
    }
    r->last_event_seq = 0;
    if (pthread_create(&r->thread, NULL, recorder_thread, r) != 0) {
        snprintf(err, errlen, "telemetry: cannot start thread");
        goto fail;
    }
    *out = r;
    return 0;
fail:
    if (r->up)
        uploader_stop(r->up);
    storage_monitor_stop(r->disk);
    simusage_close(r->usage);
    if (r->ob)
        outbox_close(r->ob);
    if (r->rec)
        recorder_free(r->rec);
    free(r);
    return -1;
}

void recorder_stop(struct recorder_engine *r)
{
    if (!r)
        return;
    __atomic_store_n(&r->stop, true, __ATOMIC_RELEASE);
    pthread_join(r->thread, NULL);
    if (r->up)
        uploader_stop(r->up);
    storage_monitor_stop(r->disk);
    simusage_close(r->usage);
    outbox_close(r->ob);
    recorder_free(r->rec);
    free(r);
}

int recorder_upload_stats(struct recorder_engine *r, struct uploader_stats *out)
{
    if (!r || !r->up)
        return -1;
    uploader_get_stats(r->up, out);
    return 0;
}
