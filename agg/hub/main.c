/* corridor-hub: the data-center end of the bonded tunnel.
 *
 *   corridor-hub run --config FILE [--log-level L]   run the hub (until SIGINT/SIGTERM)
 *   corridor-hub keygen FILE                         new private key (0600), public key on stdout
 *
 * Config (JSON): {"listen":"0.0.0.0:5555","private_key_file":"...","tun":"hub0",
 *   "address":"10.77.0.1/16","path_mtu":1500,"lz4":false,"stats_interval_s":0,
 *   "vehicles":[{"id":"train-0042","public_key":"<base64>","address":"10.77.0.2",
 *                "routes":["10.100.42.0/24"]}]}     (routes: optional, the vehicle's LAN prefixes)
 * Errors name the file and the key; exit status 2 for configuration errors, 1 for runtime. */
#include <errno.h>
#include <jansson.h>
#include <sodium.h>
#include <signal.h>
#include <stdio.h>
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

static int usage(void)
{
    fprintf(stderr, "usage: corridor-hub run --config FILE [--log-level error|warn|info|debug]\n"
                    "       corridor-hub keygen FILE\n");
    return 2;
}

static int get_str(json_t *o, const char *key, const char *file, char *out, size_t n, bool required,
                   char *err, size_t errlen)
{
    json_t *v = json_object_get(o, key);
    if (!v) {
        if (!required)
            return 0;
        snprintf(err, errlen, "%s: missing \"%s\"", file, key);
        return -1;
    }
    if (!json_is_string(v) || str_copy(out, json_string_value(v), n) >= n) {
        snprintf(err, errlen, "%s: \"%s\" must be a string shorter than %zu", file, key, n);
        return -1;
    }
    return 0;
}

/* Parses the hub config into cfg (vehicles allocated: caller frees). */
static int load_config(const char *file, struct agg_hub_config *cfg, unsigned *stats_s, char *err,
                       size_t errlen)
{
    memset(cfg, 0, sizeof(*cfg));
    json_error_t je;
    json_t *root = json_load_file(file, 0, &je);
    if (!root) {
        snprintf(err, errlen, "%s:%d: %s", file, je.line, je.text);
        return -1;
    }
    int rc = -1;
    char keyfile[512] = "";
    if (!json_is_object(root)) {
        snprintf(err, errlen, "%s: top level must be an object", file);
        goto out;
    }
    if (get_str(root, "listen", file, cfg->listen, sizeof(cfg->listen), true, err, errlen) ||
        get_str(root, "tun", file, cfg->tun_name, sizeof(cfg->tun_name), true, err, errlen) ||
        get_str(root, "address", file, cfg->address, sizeof(cfg->address), true, err, errlen) ||
        get_str(root, "private_key_file", file, keyfile, sizeof(keyfile), true, err, errlen))
        goto out;
    json_t *v = json_object_get(root, "path_mtu");
    if (v) {
        if (!json_is_integer(v) || json_integer_value(v) < 1280 || json_integer_value(v) > 9000) {
            snprintf(err, errlen, "%s: \"path_mtu\" must be an integer 1280..9000", file);
            goto out;
        }
        cfg->path_mtu = (unsigned)json_integer_value(v);
    }
    v = json_object_get(root, "inner_mtu");
    if (v) {
        if (!json_is_integer(v) || json_integer_value(v) < 576 || json_integer_value(v) > 1500) {
            snprintf(err, errlen, "%s: \"inner_mtu\" must be an integer 576..1500", file);
            goto out;
        }
        cfg->inner_mtu = (unsigned)json_integer_value(v);
    }
    v = json_object_get(root, "lz4");
    if (v) {
        if (!json_is_boolean(v)) {
            snprintf(err, errlen, "%s: \"lz4\" must be true or false", file);
            goto out;
        }
        cfg->lz4 = json_is_true(v);
    }
    v = json_object_get(root, "stats_interval_s");
    if (v && json_is_integer(v) && json_integer_value(v) >= 0 && json_integer_value(v) < 86400)
        *stats_s = (unsigned)json_integer_value(v);
    json_t *vs = json_object_get(root, "vehicles");
    if (!json_is_array(vs)) {
        snprintf(err, errlen, "%s: \"vehicles\" must be an array", file);
        goto out;
    }
    size_t n = json_array_size(vs);
    if (n > AGG_HUB_MAX_VEHICLES) {
        snprintf(err, errlen, "%s: %zu vehicles, at most %d", file, n, AGG_HUB_MAX_VEHICLES);
        goto out;
    }
    cfg->vehicles = calloc(n ? n : 1, sizeof(*cfg->vehicles));
    if (!cfg->vehicles) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        json_t *e = json_array_get(vs, i);
        struct agg_vehicle_config *vc = &cfg->vehicles[i];
        char what[64], pub[128];
        snprintf(what, sizeof(what), "vehicles[%zu]", i);
        if (!json_is_object(e)) {
            snprintf(err, errlen, "%s: %s must be an object", file, what);
            goto out;
        }
        if (get_str(e, "id", file, vc->id, sizeof(vc->id), true, err, errlen) ||
            get_str(e, "address", file, vc->address, sizeof(vc->address), true, err, errlen) ||
            get_str(e, "public_key", file, pub, sizeof(pub), true, err, errlen)) {
            size_t l = strlen(err);
            snprintf(err + l, errlen - l, " (in %s)", what);
            goto out;
        }
        json_t *routes = json_object_get(e, "routes");
        if (routes) {
            if (!json_is_array(routes) || json_array_size(routes) > AGG_MAX_ROUTES) {
                snprintf(err, errlen,
                         "%s: vehicles[%zu].routes must be an array of at most %d "
                         "\"a.b.c.d/nn\" prefixes",
                         file, i, AGG_MAX_ROUTES);
                goto out;
            }
            for (size_t r = 0; r < json_array_size(routes); r++) {
                json_t *x = json_array_get(routes, r);
                if (!json_is_string(x) || strlen(json_string_value(x)) >= AGG_ADDR_LEN) {
                    snprintf(err, errlen, "%s: vehicles[%zu].routes[%zu] must be a prefix string",
                             file, i, r);
                    goto out;
                }
                snprintf(vc->routes[r], AGG_ADDR_LEN, "%s", json_string_value(x));
                vc->n_routes++;
            }
        }
        snprintf(what, sizeof(what), "vehicles[%zu].public_key", i);
        char kerr[256];
        if (keys_parse_public(pub, vc->public_key, what, kerr, sizeof(kerr)) != 0) {
            snprintf(err, errlen, "%s: %s", file, kerr);
            goto out;
        }
        cfg->n_vehicles++;
    }
    if (keys_load_private(keyfile, cfg->private_key, NULL, err, errlen) != 0)
        goto out;
    rc = 0;
out:
    json_decref(root);
    if (rc != 0) {
        free(cfg->vehicles);
        cfg->vehicles = NULL;
    }
    return rc;
}

static void print_stats(struct agg_hub *h)
{
    struct agg_hub_stats st;
    struct agg_vehicle_stats vs[8];
    unsigned n = agg_hub_get_stats(h, &st, vs, 8);
    LOG_I("hub", "vehicles %u connected %u; dropped auth %llu replay %llu unknown %llu other %llu",
          st.n_vehicles, st.connected, (unsigned long long)st.dropped_auth,
          (unsigned long long)st.dropped_replay, (unsigned long long)st.dropped_unknown,
          (unsigned long long)st.dropped_other);
    for (unsigned i = 0; i < n; i++) {
        const struct agg_bond_stats *b = &vs[i].bond;
        if (vs[i].n_links)
            LOG_I("hub",
                  "  %s rx: hold %u ms released %llu wait %llu us (max %llu) gaps %llu "
                  "skipped %llu late %llu padded %llu pool-drops %llu; tx: resent %llu "
                  "expired %llu budget-drops %llu queued %u stale-drops %llu",
                  vs[i].id, b->hold_ms, (unsigned long long)b->released,
                  (unsigned long long)b->wait_sum_us, (unsigned long long)b->max_wait_us,
                  (unsigned long long)b->gaps_opened, (unsigned long long)b->skipped,
                  (unsigned long long)b->late, (unsigned long long)b->padded,
                  (unsigned long long)b->drop_pool, (unsigned long long)b->resent,
                  (unsigned long long)b->resend_expired, (unsigned long long)b->drop_budget,
                  b->queued, (unsigned long long)b->drop_stale);
        for (unsigned l = 0; l < vs[i].n_links; l++) {
            const struct agg_link_stats *ls = &vs[i].links[l];
            LOG_I("hub", "  %s %s: state %d srtt %.1f ms cap %.2f Mbit/s loss %.3f tx %llu rx %llu",
                  vs[i].id, ls->name, ls->state, ls->srtt_ms, ls->capacity_bps / 1e6, ls->loss,
                  (unsigned long long)ls->tx_packets, (unsigned long long)ls->rx_packets);
        }
    }
}

static int cmd_run(int argc, char **argv)
{
    const char *file = NULL;
    enum log_level lvl = LOGL_INFO;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--config") == 0 && i + 1 < argc)
            file = argv[++i];
        else if (strcmp(argv[i], "--log-level") == 0 && i + 1 < argc) {
            if (log_level_parse(argv[++i], &lvl) != 0)
                return usage();
        } else
            return usage();
    }
    if (!file)
        return usage();
    log_init("corridor-hub", lvl, false);
    struct agg_hub_config cfg;
    unsigned stats_s = 0;
    char err[512];
    if (load_config(file, &cfg, &stats_s, err, sizeof(err)) != 0) {
        fprintf(stderr, "corridor-hub: %s\n", err);
        return 2;
    }
    struct agg_hub *h = NULL;
    int rc = agg_hub_start(&cfg, &h, err, sizeof(err));
    sodium_memzero(cfg.private_key, sizeof(cfg.private_key));
    free(cfg.vehicles);
    if (rc != 0) {
        fprintf(stderr, "corridor-hub: %s\n", err);
        return 1;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_sig;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    LOG_I("hub", "listening on %s, tun %s %s", cfg.listen, cfg.tun_name, cfg.address);
    uint64_t last = mono_ms();
    while (!g_stop) {
        usleep(100000);
        if (stats_s && mono_ms() - last >= stats_s * 1000ull) {
            last = mono_ms();
            print_stats(h);
        }
    }
    print_stats(h);
    agg_hub_stop(h);
    return 0;
}

static int cmd_keygen(int argc, char **argv)
{
    if (argc != 1)
        return usage();
    char pub[KEYS_B64_LEN], err[512];
    if (keys_generate(argv[0], pub, err, sizeof(err)) != 0) {
        fprintf(stderr, "corridor-hub: %s\n", err);
        return 1;
    }
    printf("%s\n", pub);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return usage();
    if (strcmp(argv[1], "run") == 0)
        return cmd_run(argc - 2, argv + 2);
    if (strcmp(argv[1], "keygen") == 0)
        return cmd_keygen(argc - 2, argv + 2);
    return usage();
}
