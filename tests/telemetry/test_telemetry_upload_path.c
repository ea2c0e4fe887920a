/* Upload path switch (telemetry/upload.h uploader_set_interface): a change of path aborts an
 * attempt hanging on the old path and cuts a running backoff short, so a dead tunnel does not
 * hold the batches back for a whole request timeout or backoff step; setting the same path
 * again changes nothing. Local sockets only (the lab test netlab_upload_path.sh covers the real
 * routes). */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/common.h"
#include "telemetry/outbox.h"
#include "telemetry/record.h"
#include "telemetry/upload.h"
#include "testlib.h"
#include "tlm_util.h"

/* A server that accepts connections and never answers (a black-holed path). */
static int blackhole(uint16_t *port)
{
    int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof a) != 0 || listen(s, 16) != 0 ||
        getsockname(s, (struct sockaddr *)&a, &al) != 0)
        return -1;
    *port = ntohs(a.sin_port);
    return s;
}

static uint64_t g_first_accept; /* mono ms of the first accept of the last accept_for */

/* Accept for ms; returns the number of new connections (kept open in fds). */
static unsigned accept_for(int ls, unsigned ms, int *fds, unsigned *nfds, unsigned max)
{
    unsigned got = 0;
    g_first_accept = 0;
    uint64_t end = mono_ms() + ms;
    while (mono_ms() < end) {
        struct pollfd p = {.fd = ls, .events = POLLIN};
        if (poll(&p, 1, 20) == 1) {
            int c = accept(ls, NULL, NULL);
            if (c >= 0 && *nfds < max)
                fds[(*nfds)++] = c;
            else if (c >= 0)
                close(c);
            if (c >= 0 && !g_first_accept)
                g_first_accept = mono_ms();
            got += c >= 0;
        }
    }
    return got;
}

int main(void)
{
    log_init("test_upload_path", LOGL_ERROR, false);
    char dir[256], db[400], tokf[400], ctok[400], url[200], err[400];
    if (make_tmpdir(dir, sizeof dir) != 0)
        return 1;
    snprintf(db, sizeof db, "%s/outbox.db", dir);
    snprintf(tokf, sizeof tokf, "%s/vehicle.token", dir);
    snprintf(ctok, sizeof ctok, "%s/collector.tokens", dir);
    CHECK_INT(write_tokens(tokf, ctok, "bus-9", "token-of-bus-9"), 0);

    struct outbox_config ocfg = {0};
    str_copy(ocfg.vehicle_id, "bus-9", sizeof ocfg.vehicle_id);
    struct outbox *ob = outbox_open(db, &ocfg, err, sizeof err);
    CHECK_MSG(ob != NULL, "%s", err);
    struct rec_any r = {.kind = REC_TRACK};
    synth_track(1700000000000, &r.u.track);
    uint64_t seq;
    CHECK_INT(outbox_append(ob, &r, 1, err, sizeof err), 0);
    CHECK_INT(outbox_cut(ob, 1700000001000, &seq, err, sizeof err), 1);

    /* 1. an attempt hanging on a black-holed path (60 s request timeout) */
    uint16_t port = 0;
    int ls = blackhole(&port);
    CHECK(ls >= 0);
    snprintf(url, sizeof url, "http://127.0.0.1:%u/v1/batches", port);
    struct uploader_config uc = {.outbox = ocfg,
                                 .backoff_base_ms = 20000,
                                 .backoff_max_ms = 40000,
                                 .connect_timeout_ms = 5000,
                                 .timeout_ms = 60000,
                                 .idle_poll_ms = 200};
    str_copy(uc.db_path, db, sizeof uc.db_path);
    str_copy(uc.url, url, sizeof uc.url);
    str_copy(uc.token_file, tokf, sizeof uc.token_file);
    struct uploader *up = uploader_start(&uc, err, sizeof err);
    CHECK_MSG(up != NULL, "%s", err);
    if (!ob || !up || ls < 0)
        return test_summary();
    int fds[16];
    unsigned nfds = 0;
    CHECK_INT(accept_for(ls, 1000, fds, &nfds, 16), 1); /* the first attempt, now hanging */
    /* the same path again is no change: nothing is aborted */
    uploader_set_interface(up, "");
    CHECK_INT(accept_for(ls, 600, fds, &nfds, 16), 0);
    struct uploader_stats st;
    uploader_get_stats(up, &st);
    CHECK_INT(st.attempts, 0);
    /* a new path: the hanging attempt is given up and the next starts at once (no 20 s
     * backoff), opening a new connection */
    uint64_t t0 = mono_ms();
    uploader_set_interface(up, "lo");
    CHECK_INT(accept_for(ls, 1500, fds, &nfds, 16), 1);
    uint64_t took = g_first_accept ? g_first_accept - t0 : 0;
    uploader_get_stats(up, &st);
    CHECK_INT(st.attempts, 1);
    CHECK_INT(st.failures, 1);
    CHECK_MSG(strstr(st.last_error, "abort") != NULL, "last error: %s", st.last_error);
    CHECK_MSG(took < 1200, "new connection %llu ms after the change", (unsigned long long)took);
    printf("path change: hanging attempt aborted, next connection within %llu ms\n",
           (unsigned long long)took);
    uploader_stop(up);
    for (unsigned i = 0; i < nfds; i++)
        close(fds[i]);
    close(ls);

    /* 2. a refused port: the first failure starts a 10..20 s backoff; a path change ends it */
    uint16_t closed = free_port();
    snprintf(uc.url, sizeof uc.url, "http://127.0.0.1:%u/v1/batches", closed);
    up = uploader_start(&uc, err, sizeof err);
    CHECK_MSG(up != NULL, "%s", err);
    uint64_t end = mono_ms() + 3000;
    do {
        sleep_ms_unless(NULL, 20);
        uploader_get_stats(up, &st);
    } while (st.attempts < 1 && mono_ms() < end);
    CHECK_INT(st.attempts, 1);
    sleep_ms_unless(NULL, 500);
    uploader_get_stats(up, &st);
    CHECK_INT(st.attempts, 1); /* backing off */
    uploader_set_interface(up, "lo");
    end = mono_ms() + 2000;
    do {
        sleep_ms_unless(NULL, 20);
        uploader_get_stats(up, &st);
    } while (st.attempts < 2 && mono_ms() < end);
    CHECK_INT(st.attempts, 2);
    uploader_stop(up);
    outbox_close(ob);
    remove_tree(dir);
    return test_summary();
}
