/* corridor-tunnel-client: a stand-alone driver of the vehicle engine (agg_client_*) for the
 * network lab and benchmarks, so the tunnel is testable without firmware/.
 *
 *   corridor-tunnel-client --tun corr0 --address 10.77.0.2/16 --key FILE --hub-key B64
 *       --hub A.B.C.D:PORT [--hub ...] --link NAME:IFNAME:ID [--link ...]
 *       [--path-mtu N] [--lz4] [--stats-ms N] [--duration-s N] [--hub-timeout-ms N]
 *       [--weights W0,W1,...] [--log-level L]
 * Prints one line of per-link stats every --stats-ms (default off) and a summary on exit
 * (SIGINT/SIGTERM or --duration-s). Exit 2 on bad arguments, 1 if the engine fails. */
#include <signal.h>
#include <stdio.h>
#include <time.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agg/agg.h"
#include "agg/keys.h"
#include "common/common.h"

static volatile sig_atomic_t g_stop;

static void on_sig(int s)
{
    (void)s;
    g_stop = 1;
}

static const char *state_name(int s)
{
    static const char *const n[] = {"down", "probing", "up", "disabled"};
    return s >= 0 && s <= 3 ? n[s] : "?";
}

static void print_stats(struct agg_client *c, const char *tag)
{
    struct agg_client_stats st;
    agg_client_get_stats(c, &st);
    printf("%s hub=%u state=%d switches=%u tun_rx=%llu tun_tx=%llu auth=%llu replay=%llu "
           "late=%llu skipped=%llu drop_nolink=%llu drop_queue=%llu\n",
           tag, st.hub_index, st.hub_state, st.hub_switches, (unsigned long long)st.tun_rx_packets,
           (unsigned long long)st.tun_tx_packets, (unsigned long long)st.dropped_auth,
           (unsigned long long)st.dropped_replay, (unsigned long long)st.reorder_late,
           (unsigned long long)st.reorder_skipped, (unsigned long long)st.tx_dropped_nolink,
           (unsigned long long)st.tx_dropped_queue);
    const struct agg_bond_stats *b = &st.bond;
    printf("%s  rx: hold=%ums released=%llu wait=%lluus max=%lluus gaps=%llu skipped=%llu "
           "late=%llu padded=%llu pool_drops=%llu tx: resent=%llu expired=%llu queued=%u "
           "stale=%llu\n",
           tag, b->hold_ms, (unsigned long long)b->released, (unsigned long long)b->wait_sum_us,
           (unsigned long long)b->max_wait_us, (unsigned long long)b->gaps_opened,
           (unsigned long long)b->skipped, (unsigned long long)b->late,
           (unsigned long long)b->padded, (unsigned long long)b->drop_pool,
           (unsigned long long)b->resent, (unsigned long long)b->resend_expired, b->queued,
           (unsigned long long)b->drop_stale);
    for (unsigned i = 0; i < st.n_links; i++) {
        const struct agg_link_stats *l = &st.links[i];
        printf("%s  link %s id=%u %s srtt=%.1fms rttvar=%.1fms loss=%.4f cap=%.2fMbit/s w=%.2f "
               "tx=%llu/%lluB rx=%llu resent=%llu\n",
               tag, l->name, l->link_id, state_name(l->state), l->srtt_ms, l->rttvar_ms, l->loss,
               l->capacity_bps / 1e6, l->weight, (unsigned long long)l->tx_packets,
               (unsigned long long)l->tx_bytes, (unsigned long long)l->rx_packets,
               (unsigned long long)l->resent_packets);
    }
    fflush(stdout);
}

int main(int argc, char **argv)
{
    struct agg_client_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    const char *keyfile = NULL, *hubkey = NULL, *weights = NULL;
    long stats_ms = 0, duration_s = 0;
    enum log_level lvl = LOGL_INFO;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--lz4") == 0) {
            cfg.lz4 = true;
            continue;
        }
        if (!v) {
            fprintf(stderr, "missing value for %s\n", a);
            return 2;
        }
        i++;
        long n = 0;
        if (strcmp(a, "--tun") == 0) {
            str_copy(cfg.tun_name, v, sizeof(cfg.tun_name));
        } else if (strcmp(a, "--address") == 0) {
            str_copy(cfg.address, v, sizeof(cfg.address));
        } else if (strcmp(a, "--key") == 0) {
            keyfile = v;
        } else if (strcmp(a, "--hub-key") == 0) {
            hubkey = v;
        } else if (strcmp(a, "--hub") == 0) {
            if (cfg.n_hubs >= AGG_MAX_HUBS)
                return 2;
            str_copy(cfg.hubs[cfg.n_hubs++], v, AGG_ADDR_LEN);
        } else if (strcmp(a, "--link") == 0) {
            char buf[128];
            str_copy(buf, v, sizeof(buf));
            char *c1 = strchr(buf, ':');
            char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
            if (!c2 || cfg.n_links >= AGG_MAX_LINKS || !str_to_long(c2 + 1, &n) || n < 0 ||
                n >= AGG_MAX_LINKS) {
                fprintf(stderr, "--link wants NAME:IFNAME:ID (id 0..%d)\n", AGG_MAX_LINKS - 1);
                return 2;
            }
            *c1 = *c2 = '\0';
            struct agg_link_config *l = &cfg.links[cfg.n_links++];
            str_copy(l->name, buf, sizeof(l->name));
            str_copy(l->ifname, c1 + 1, sizeof(l->ifname));
            l->link_id = (uint8_t)n;
        } else if (strcmp(a, "--inner-mtu") == 0 && str_to_long(v, &n)) {
            cfg.inner_mtu = (unsigned)n;
        } else if (strcmp(a, "--path-mtu") == 0 && str_to_long(v, &n)) {
            cfg.path_mtu = (unsigned)n;
        } else if (strcmp(a, "--hub-timeout-ms") == 0 && str_to_long(v, &n)) {
            cfg.hub_timeout_ms = (unsigned)n;
        } else if (strcmp(a, "--stats-ms") == 0 && str_to_long(v, &n)) {
            stats_ms = n;
        } else if (strcmp(a, "--duration-s") == 0 && str_to_long(v, &n)) {
            duration_s = n;
        } else if (strcmp(a, "--weights") == 0) {
            weights = v;
        } else if (strcmp(a, "--log-level") == 0 && log_level_parse(v, &lvl) == 0) {
        } else {
            fprintf(stderr, "bad argument %s %s\n", a, v);
            return 2;
        }
    }
    if (!keyfile || !hubkey || !cfg.n_hubs || !cfg.n_links || !cfg.tun_name[0] || !cfg.address[0]) {
        fprintf(stderr, "need --tun --address --key --hub-key --hub --link\n");
        return 2;
    }
    log_init("tunnel-client", lvl, false);
    char err[512];
    if (keys_load_private(keyfile, cfg.private_key, NULL, err, sizeof(err)) != 0 ||
        keys_parse_public(hubkey, cfg.hub_public_key, "--hub-key", err, sizeof(err)) != 0) {
        fprintf(stderr, "%s\n", err);
        return 2;
    }
    struct agg_client *c = NULL;
    if (agg_client_start(&cfg, NULL, &c, err, sizeof(err)) != 0) {
        fprintf(stderr, "agg_client_start: %s\n", err);
        return 1;
    }
    if (weights) {
        double w[AGG_MAX_LINKS];
        unsigned nw = 0;
        char buf[256];
        str_copy(buf, weights, sizeof(buf));
        for (char *t = strtok(buf, ","); t && nw < AGG_MAX_LINKS; t = strtok(NULL, ","))
            w[nw++] = atof(t);
        agg_client_set_weights(c, w, nw);
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_sig;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    uint64_t t0 = mono_ms(), last = t0;
    struct timespec rt;
    clock_gettime(CLOCK_REALTIME, &rt);
    /* The stats tags count from here: this line lets a lab script align them with other
     * tools' wall-clock samples (ss, iperf3). */
    printf("t0_unix=%lld.%03ld\n", (long long)rt.tv_sec, rt.tv_nsec / 1000000);
    while (!g_stop) {
        usleep(20000);
        uint64_t now = mono_ms();
        if (duration_s > 0 && now - t0 >= (uint64_t)duration_s * 1000)
            break;
        if (stats_ms > 0 && now - last >= (uint64_t)stats_ms) {
            last = now;
            char tag[32];
            snprintf(tag, sizeof(tag), "[%.2f]", (now - t0) / 1000.0);
            print_stats(c, tag);
        }
    }
    print_stats(c, "[final]");
    agg_client_stop(c);
    return 0;
}
