/* corridor-collector: the data-center endpoint for telemetry batches (see collector.h).
 *
 *   corridor-collector --db PATH --tokens FILE [--listen ADDR] [--port N] [--port-file F]
 *                      [--tls-cert PEM --tls-key PEM] [--max-body BYTES] [--max-raw BYTES]
 *                      [--no-records] [--log-level L] [--test-reply-delay-ms N]
 *
 * Runs until SIGTERM/SIGINT. --port 0 picks a free port; --port-file writes it (for tests). */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/common.h"
#include "telemetry/collector/collector.h"

static void usage(void)
{
    fprintf(stderr, "usage: corridor-collector --db PATH --tokens FILE [--listen ADDR] [--port N]"
                    " [--port-file F] [--tls-cert PEM --tls-key PEM] [--max-body BYTES]"
                    " [--max-raw BYTES] [--no-records] [--log-level error|warn|info|debug]\n");
}

int main(int argc, char **argv)
{
    struct collector_config cfg = {0};
    const char *port_file = NULL;
    enum log_level lvl = LOGL_INFO;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        long n;
        if (strcmp(a, "--no-records") == 0) {
            cfg.no_records = true;
            continue;
        }
        if (!v) {
            usage();
            return 2;
        }
        i++;
        if (strcmp(a, "--db") == 0)
            str_copy(cfg.db_path, v, sizeof cfg.db_path);
        else if (strcmp(a, "--tokens") == 0)
            str_copy(cfg.tokens_file, v, sizeof cfg.tokens_file);
        else if (strcmp(a, "--listen") == 0)
            str_copy(cfg.listen_addr, v, sizeof cfg.listen_addr);
        else if (strcmp(a, "--port") == 0 && str_to_long(v, &n) && n >= 0 && n < 65536)
            cfg.port = (uint16_t)n;
        else if (strcmp(a, "--port-file") == 0)
            port_file = v;
        else if (strcmp(a, "--tls-cert") == 0)
            str_copy(cfg.tls_cert, v, sizeof cfg.tls_cert);
        else if (strcmp(a, "--tls-key") == 0)
            str_copy(cfg.tls_key, v, sizeof cfg.tls_key);
        else if (strcmp(a, "--max-body") == 0 && str_to_long(v, &n) && n > 0)
            cfg.max_body = (size_t)n;
        else if (strcmp(a, "--max-raw") == 0 && str_to_long(v, &n) && n > 0)
            cfg.max_raw = (size_t)n;
        else if (strcmp(a, "--test-reply-delay-ms") == 0 && str_to_long(v, &n) && n >= 0 &&
                 n <= 10000)
            cfg.test_reply_delay_ms = (unsigned)n;
        else if (strcmp(a, "--log-level") == 0 && log_level_parse(v, &lvl) == 0)
            ;
        else {
            fprintf(stderr, "corridor-collector: bad argument %s %s\n", a, v);
            usage();
            return 2;
        }
    }
    if (!cfg.db_path[0] || !cfg.tokens_file[0]) {
        usage();
        return 2;
    }
    log_init("corridor-collector", lvl, false);
    /* block the stop signals before MHD starts its thread, then wait for them here */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    char err[400];
    struct collector *c = collector_start(&cfg, err, sizeof err);
    if (!c) {
        LOG_E("collector", "%s", err);
        return 1;
    }
    if (port_file) {
        char tmp[300];
        snprintf(tmp, sizeof tmp, "%s.tmp", port_file);
        FILE *f = fopen(tmp, "w");
        if (!f || fprintf(f, "%u\n", collector_port(c)) < 0 || fclose(f) != 0 ||
            rename(tmp, port_file) != 0) {
            LOG_E("collector", "cannot write port file %s", port_file);
            collector_stop(c);
            return 1;
        }
    }
    int sig = 0;
    sigwait(&set, &sig);
    LOG_I("collector", "signal %d: stopping", sig);
    collector_stop(c);
    return 0;
}
