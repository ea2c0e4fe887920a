/* corridor: the appliance binary. A subcommand table (wireguard-tools style) that also
 * generates the usage text. Exit status: 0 ok, 1 runtime failure, 2 bad usage or config. */
#include "common/common.h"
#include "firmware/config.h"
#include "firmware/control.h"
#include "firmware/render.h"
#include "firmware/run.h"
#include "modem/modem.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

static int cmd_status(int argc, char **argv)
{
    const char *sock = NULL;
    static struct config cfg;
    if (argc == 3 && strcmp(argv[1], "--socket") == 0) {
        sock = argv[2];
    } else {
        int bad = 0;
        const char *path = config_arg(argc, argv, &bad);
        if (bad) {
            fprintf(stderr, "usage: %s status [--config FILE | --socket PATH]\n", prog);
            return 2;
        }
        if (load_or_report(path, &cfg))
            return 2;
        sock = cfg.control_socket;
    }
    char err[512];
    if (control_request(sock, "status", err, sizeof err) != 0) {
        fprintf(stderr, "%s status: %s\n", prog, err);
        return 1;
    }
    return 0;
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
    {"status", "[--config FILE | --socket PATH]", "ask the running daemon for its state",
     cmd_status},
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
