/* corridor: the appliance binary. A subcommand table (wireguard-tools style) that also
 * generates the usage text. Exit status: 0 ok, 1 runtime failure, 2 bad usage or config. */
#include "common/common.h"
#include "firmware/config.h"
#include "firmware/control.h"
#include "firmware/diag.h"
#include "firmware/http.h"
#include "firmware/render.h"
#include "firmware/run.h"
#include "modem/modem.h"
#include "agg/keys.h"
#include "telemetry/telemetry.h"

#include <getopt.h>
#include <ctype.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <errno.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_CONFIG "/etc/corridor/corridor.json"

static const char *prog = "corridor";

struct subcommand {
    const char *name;
    const char *args;
    const char *help;
    int (*fn)(int argc, char **argv);
};
static const struct subcommand subcommands[];

static void usage(FILE *f)
{
    fprintf(f, "Usage: %s <command> [arguments]\n\nCommands:\n", prog);
    for (const struct subcommand *c = subcommands; c->name; c++) {
        char left[64];
        snprintf(left, sizeof left, "%s %s", c->name, c->args);
        fprintf(f, "  %-40s %s\n", left, c->help);
    }
    fprintf(f, "\nSee docs/operations.md and docs/configuration.md.\n");
}

/* --config FILE (default /etc/corridor/corridor.json) */
static const char *config_arg(int argc, char **argv, int *bad)
{
    const char *path = DEFAULT_CONFIG;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--config") == 0 || strcmp(argv[i], "-c") == 0) {
            if (i + 1 >= argc) {
                *bad = 1;
                return NULL;
            }
            path = argv[++i];
        } else if (strncmp(argv[i], "--config=", 9) == 0) {
            path = argv[i] + 9;
        } else {
            fprintf(stderr, "%s %s: unexpected argument \"%s\"\n", prog, argv[0], argv[i]);
            *bad = 1;
            return NULL;
        }
    }
    return path;
}

static int load_or_report(const char *path, struct config *cfg)
{
    char err[512];
    if (config_load(path, cfg, err, sizeof err) != 0) {
        fprintf(stderr, "%s: configuration error: %s\n", prog, err);
        return -1;
    }
    return 0;
}

static int cmd_run(int argc, char **argv)
{
    int bad = 0;
    const char *path = config_arg(argc, argv, &bad);
    if (bad) {
        fprintf(stderr, "usage: %s run [--config FILE]\n", prog);
        return 2;
    }
    static struct config cfg; /* large; lives for the whole run */
    if (load_or_report(path, &cfg))
        return 2;
    return run_daemon(&cfg);
}

static int cmd_check_config(int argc, char **argv)
{
    const char *path = NULL;
    if (argc == 2)
        path = argv[1];
    else if (argc == 3 && (strcmp(argv[1], "--config") == 0 || strcmp(argv[1], "-c") == 0))
        path = argv[2];
    if (!path) {
        fprintf(stderr, "usage: %s check-config FILE\n", prog);
        return 2;
    }
    static struct config cfg;
    if (load_or_report(path, &cfg))
        return 2;
    unsigned modems = 0;
    for (unsigned i = 0; i < cfg.nlinks; i++)
        modems += cfg.links[i].modem.present;
    printf("%s: OK: vehicle %s, %u links (%u with modems), tunnel %s, dashboard %s, telemetry "
           "%s\n",
           path, cfg.vehicle_id, cfg.nlinks, modems, cfg.tunnel.enabled ? "on" : "off",
           cfg.dashboard.enabled ? "on" : "off", cfg.telemetry.enabled ? "on" : "off");
    return 0;
}

static int cmd_modem(int argc, char **argv)
{
    if (argc < 3 || strcmp(argv[1], "probe") != 0) {
        fprintf(stderr, "usage: %s modem probe PORT [--baud N] [--balance CODE]\n", prog);
        return 2;
    }
    const char *port = argv[2];
    int baud = 115200;
    const char *balance = NULL;
    for (int i = 3; i < argc; i++) {
        long v;
        if (strcmp(argv[i], "--baud") == 0 && i + 1 < argc) {
            if (!str_to_long(argv[++i], &v) || v < 300 || v > 4000000) {
                fprintf(stderr, "%s modem probe: --baud \"%s\": not a baud rate\n", prog, argv[i]);
                return 2;
            }
            baud = (int)v;
        } else if (strcmp(argv[i], "--balance") == 0 && i + 1 < argc) {
            balance = argv[++i];
        } else {
            fprintf(stderr, "%s modem probe: unexpected argument \"%s\"\n", prog, argv[i]);
            return 2;
        }
    }
    log_init("corridor", LOGL_WARN, false);
    static struct modem_sample s;
    char err[512];
    if (modem_probe(port, baud, balance, &s, err, sizeof err) != 0) {
        fprintf(stderr, "%s modem probe: %s\n", prog, err);
        return 1;
    }
    json_t *o = render_modem_sample(&s);
    char *text = json_dumps(o, JSON_INDENT(2) | JSON_REAL_PRECISION(10));
    json_decref(o);
    if (!text)
        return 1;
    puts(text);
    free(text);
    return 0;
}

static const char *jstr(json_t *o, const char *k, const char *dflt)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s ? s : dflt;
}

static void jnum(char *out, size_t n, json_t *o, const char *k, int decimals)
{
    json_t *v = json_object_get(o, k);
    if (json_is_number(v))
        snprintf(out, n, "%.*f", decimals, json_number_value(v));
    else
        snprintf(out, n, "-");
}

/* One line per link: what the crew or a technician wants at a glance. */
static void print_brief(json_t *st)
{
    printf("%s  up %llds\n", jstr(st, "vehicle_id", "?"),
           (long long)json_integer_value(json_object_get(st, "uptime_s")));
    json_t *pos = json_object_get(st, "position"), *tun = json_object_get(st, "tunnel");
    if (json_is_object(pos) && json_is_true(json_object_get(pos, "fix"))) {
        char sp[16];
        jnum(sp, sizeof sp, pos, "speed_kmh", 0);
        printf("position %.6f,%.6f %s km/h from %s\n",
               json_number_value(json_object_get(pos, "lat")),
               json_number_value(json_object_get(pos, "lon")), sp, jstr(pos, "source", "?"));
    } else {
        printf("position: no fix\n");
    }
    if (json_is_object(tun))
        printf("tunnel: hub #%lld %s\n",
               (long long)json_integer_value(json_object_get(tun, "hub_index")),
               jstr(tun, "hub_state", "?"));
    printf("%-10s %-7s %-10s %-6s %-8s %7s %5s %9s %-8s %5s %6s %s\n", "LINK", "MODEM", "OPERATOR",
           "NET", "REG", "RSRP", "SINR", "BALANCE", "TUNNEL", "W", "RTTms", "POLICY");
    size_t i;
    json_t *l;
    json_array_foreach(json_object_get(st, "links"), i, l)
    {
        json_t *m = json_object_get(l, "modem");
        if (!json_is_object(m)) {
            printf("%-12s %-8s\n", jstr(l, "name", "?"), "no-modem");
            continue;
        }
        json_t *sig = json_object_get(m, "signal"), *op = json_object_get(m, "operator");
        json_t *bal = json_object_get(m, "balance"), *lt = json_object_get(l, "tunnel");
        json_t *lp = json_object_get(l, "policy");
        char rsrp[16], sinr[16], amount[16] = "-", w[16] = "-", rtt[16] = "-";
        jnum(rsrp, sizeof rsrp, sig, "rsrp_dbm", 1);
        jnum(sinr, sizeof sinr, sig, "sinr_db", 1);
        if (json_is_object(bal))
            jnum(amount, sizeof amount, bal, "amount", 2);
        if (json_is_object(lt)) {
            jnum(w, sizeof w, lt, "weight", 2);
            jnum(rtt, sizeof rtt, lt, "srtt_ms", 0);
        }
        printf("%-10s %-7s %-10.10s %-6s %-8.8s %7s %5s %9s %-8s %5s %6s %s\n",
               jstr(l, "name", "?"), jstr(m, "state", "?"),
               json_is_object(op) ? jstr(op, "name", "-") : "-", jstr(m, "network_type", "-"),
               jstr(m, "registration", "-"), rsrp, sinr, amount,
               json_is_object(lt) ? jstr(lt, "state", "-") : "-", w, rtt,
               json_is_object(lp) ? jstr(lp, "state", "-") : "-");
    }
    size_t ne = json_array_size(json_object_get(st, "events"));
    for (size_t k = ne > 5 ? ne - 5 : 0; k < ne; k++) {
        json_t *e = json_array_get(json_object_get(st, "events"), k);
        printf("  event %-10s %-12s %s\n", jstr(e, "source", "?"), jstr(e, "kind", "?"),
               jstr(e, "text", ""));
    }
}

static int cmd_status(int argc, char **argv)
{
    const char *sock = NULL, *path = DEFAULT_CONFIG;
    bool brief = false;
    static struct config cfg;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--socket") == 0 && i + 1 < argc) {
            sock = argv[++i];
        } else if ((strcmp(argv[i], "--config") == 0 || strcmp(argv[i], "-c") == 0) &&
                   i + 1 < argc) {
            path = argv[++i];
        } else if (strcmp(argv[i], "--brief") == 0) {
            brief = true;
        } else {
            fprintf(stderr, "usage: %s status [--config FILE | --socket PATH] [--brief]\n", prog);
            return 2;
        }
    }
    if (!sock) {
        if (load_or_report(path, &cfg))
            return 2;
        sock = cfg.control_socket;
    }
    char err[512], *reply = NULL;
    if (control_request(sock, "status", &reply, err, sizeof err) != 0) {
        fprintf(stderr, "%s status: %s\n", prog, err);
        return 1;
    }
    int rc = 0;
    if (brief) {
        json_error_t je;
        json_t *st = json_loads(reply, 0, &je);
        if (!st) {
            fprintf(stderr, "%s status: unreadable reply from %s: %s\n", prog, sock, je.text);
            rc = 1;
        } else {
            print_brief(st);
            json_decref(st);
        }
    } else {
        fputs(reply, stdout);
    }
    free(reply);
    return rc;
}

static int cmd_keygen(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s keygen FILE\n", prog);
        return 2;
    }
    char pub[KEYS_B64_LEN], err[512];
    if (keys_generate(argv[1], pub, err, sizeof err) != 0) {
        fprintf(stderr, "%s keygen: %s\n", prog, err);
        return 1;
    }
    puts(pub);
    return 0;
}

/* corridor coverage export [--config FILE] --geojson OUT
 * corridor coverage import [--config FILE] IN
 * The map lives in <data_dir>/coverage.db; sqlite WAL lets this run beside the daemon. */
static int cmd_coverage(int argc, char **argv)
{
    const char *path = DEFAULT_CONFIG, *geojson = NULL, *in = NULL;
    bool export = argc >= 2 && strcmp(argv[1], "export") == 0;
    bool import = argc >= 2 && strcmp(argv[1], "import") == 0;
    for (int i = 2; i < argc && (export || import); i++) {
        if ((strcmp(argv[i], "--config") == 0 || strcmp(argv[i], "-c") == 0) && i + 1 < argc)
            path = argv[++i];
        else if (export && strcmp(argv[i], "--geojson") == 0 && i + 1 < argc)
            geojson = argv[++i];
        else if (import && !in && argv[i][0] != '-')
            in = argv[i];
        else
            export = import = false;
    }
    if (!(export && geojson) && !(import && in)) {
        fprintf(stderr,
                "usage: %s coverage export [--config FILE] --geojson OUT\n"
                "       %s coverage import [--config FILE] IN\n",
                prog, prog);
        return 2;
    }
    static struct config cfg;
    if (load_or_report(path, &cfg))
        return 2;
    log_init("corridor", LOGL_WARN, false);
    char db[CFG_PATH_MAX + 32], err[512];
    snprintf(db, sizeof db, "%s/coverage.db", cfg.data_dir);
    struct coverage_params cp;
    coverage_params_default(&cp);
    cp.cell_m = cfg.coverage.cell_m;
    cp.half_life_trips = cfg.coverage.half_life_trips;
    cp.max_mb = cfg.coverage.max_mb;
    struct coverage_map *map;
    if (export && access(db, R_OK) != 0) {
        fprintf(stderr, "%s coverage export: %s: no coverage map yet (%s)\n", prog, db,
                strerror(errno));
        return 1;
    }
    if (coverage_open(db, &cp, &map, err, sizeof err) != 0) {
        fprintf(stderr, "%s coverage: %s: %s\n", prog, db, err);
        return 1;
    }
    int rc = 0;
    if (export) {
        if (coverage_export_geojson_path(map, geojson, NULL, err, sizeof err) != 0) {
            fprintf(stderr, "%s coverage export: %s\n", prog, err);
            rc = 1;
        } else {
            struct coverage_stats st;
            if (coverage_get_stats(map, &st, err, sizeof err) == 0)
                printf("%s: %llu cells written\n", geojson, (unsigned long long)st.cells);
        }
    } else {
        long merged = coverage_import(map, in, err, sizeof err);
        if (merged < 0) {
            fprintf(stderr, "%s coverage import: %s: %s\n", prog, in, err);
            rc = 1;
        } else {
            printf("%s: %ld cell records merged into %s\n", in, merged, db);
        }
    }
    if (coverage_flush(map, err, sizeof err) != 0) {
        fprintf(stderr, "%s coverage: %s\n", prog, err);
        rc = 1;
    }
    coverage_close(map);
    return rc;
}

/* corridor passwd: read a password (twice, without echo when on a terminal) and print the
 * argon2id hash for "dashboard": {"password_hash": ...}. */
static int cmd_passwd(int argc, char **argv)
{
    if (argc != 1) {
        fprintf(stderr, "usage: %s passwd   (reads the password from standard input)\n", prog);
        return 2;
    }
    char pw[2][256];
    struct termios saved;
    bool tty = tcgetattr(STDIN_FILENO, &saved) == 0;
    for (int k = 0; k < (tty ? 2 : 1); k++) {
        if (tty) {
            fprintf(stderr, k ? "again: " : "dashboard password: ");
            struct termios quiet = saved;
            quiet.c_lflag &= ~(tcflag_t)ECHO;
            tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
        }
        char *got = fgets(pw[k], sizeof pw[k], stdin);
        if (tty) {
            tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved);
            fputc('\n', stderr);
        }
        if (!got) {
            fprintf(stderr, "%s passwd: no password given\n", prog);
            return 1;
        }
        pw[k][strcspn(pw[k], "\r\n")] = '\0';
    }
    if (tty && strcmp(pw[0], pw[1]) != 0) {
        fprintf(stderr, "%s passwd: the two passwords differ\n", prog);
        return 1;
    }
    if (strlen(pw[0]) < 8) {
        fprintf(stderr, "%s passwd: use at least 8 characters\n", prog);
        return 1;
    }
    char hash[crypto_pwhash_STRBYTES];
    int rc = http_hash_password(pw[0], hash);
    sodium_memzero(pw, sizeof pw);
    if (rc != 0) {
        fprintf(stderr, "%s passwd: hashing failed (out of memory?)\n", prog);
        return 1;
    }
    puts(hash);
    return 0;
}

/* corridor diag [--config FILE] [--socket PATH] [--out FILE] [--no-system]: a support bundle
 * (firmware/diag.h). Works with a broken config and without a running daemon: whatever cannot
 * be collected is listed in the bundle with the reason. */
static int cmd_diag(int argc, char **argv)
{
    struct diag_opts o = {.config_path = DEFAULT_CONFIG, .system_info = true, .journal = true};
    const char *out = NULL;
    for (int i = 1; i < argc; i++) {
        if ((strcmp(argv[i], "--config") == 0 || strcmp(argv[i], "-c") == 0) && i + 1 < argc) {
            o.config_path = argv[++i];
        } else if (strcmp(argv[i], "--socket") == 0 && i + 1 < argc) {
            o.control_socket = argv[++i];
        } else if ((strcmp(argv[i], "--out") == 0 || strcmp(argv[i], "-o") == 0) && i + 1 < argc) {
            out = argv[++i];
        } else if (strcmp(argv[i], "--no-system") == 0) {
            o.system_info = false;
            o.journal = false;
        } else {
            fprintf(stderr,
                    "usage: %s diag [--config FILE] [--socket PATH] [--out FILE|-] "
                    "[--no-system]\n",
                    prog);
            return 2;
        }
    }
    log_init("corridor", LOGL_WARN, false);
    json_t *doc = diag_collect(&o);
    if (!doc) {
        fprintf(stderr, "%s diag: out of memory\n", prog);
        return 1;
    }
    char name[160], err[512];
    if (!out) {
        char stamp[32];
        time_t now = time(NULL);
        struct tm tm;
        gmtime_r(&now, &tm);
        strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%SZ", &tm);
        const char *vid = json_string_value(
            json_object_get(json_object_get(json_object_get(doc, "config"), "json"), "vehicle_id"));
        char safe[64];
        str_copy(safe, vid ? vid : "unknown", sizeof safe);
        for (char *c = safe; *c; c++)
            if (!isalnum((unsigned char)*c) && *c != '-' && *c != '_' && *c != '.')
                *c = '_';
        snprintf(name, sizeof name, "corridor-diag-%s-%s.json.zst", safe, stamp);
        out = name;
    }
    int rc = diag_write(doc, out, err, sizeof err);
    if (rc != 0) {
        fprintf(stderr, "%s diag: %s\n", prog, err);
    } else if (strcmp(out, "-") != 0) {
        json_t *un = json_object_get(doc, "unavailable");
        fprintf(stderr,
                "%s: written (%lld secrets redacted, %zu parts unavailable: see "
                "\"unavailable\" inside)\n",
                out, (long long)json_integer_value(json_object_get(doc, "redacted")),
                json_object_size(un));
    }
    json_decref(doc);
    return rc ? 1 : 0;
}

static int cmd_version(int argc, char **argv)
{
    printf("corridor %s\n", CORRIDOR_VERSION);
    return 0;
}

static int cmd_help(int argc, char **argv)
{
    usage(stdout);
    return 0;
}

static const struct subcommand subcommands[] = {
    {"run", "[--config FILE]", "start the appliance daemon", cmd_run},
    {"check-config", "FILE", "validate a configuration file (exit 2 on error)", cmd_check_config},
    {"modem", "probe PORT [--baud N] [--balance CODE]", "talk to one modem once, print JSON",
     cmd_modem},
    {"status", "[--config FILE | --socket PATH] [--brief]", "ask the running daemon for its state",
     cmd_status},
    {"coverage", "export|import [--config FILE] ...",
     "export the coverage map as GeoJSON, or merge another map", cmd_coverage},
    {"passwd", "", "hash a dashboard password (argon2id) for the config", cmd_passwd},
    {"keygen", "FILE", "write a new private key (mode 0600), print its public key", cmd_keygen},
    {"diag", "[--config FILE] [--out FILE.json.zst|-]",
     "write a support bundle (versions, redacted config, state, logs, system)", cmd_diag},
    {"version", "", "print the version", cmd_version},
    {"help", "", "this text", cmd_help},
    {NULL, NULL, NULL, NULL},
};

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)
        return cmd_help(0, NULL);
    if (strcmp(argv[1], "-n") == 0 && argc == 3) /* bgpd-style: check the config and exit */
        return cmd_check_config(2, (char *[]){"check-config", argv[2], NULL});
    for (const struct subcommand *c = subcommands; c->name; c++)
        if (strcmp(argv[1], c->name) == 0)
            return c->fn(argc - 1, argv + 1);
    fprintf(stderr, "%s: unknown command \"%s\"\n\n", prog, argv[1]);
    usage(stderr);
    return 2;
}
