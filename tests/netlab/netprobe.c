/* corridor-netprobe: UDP probe stream between two network namespaces, measured with ONE clock.
 *
 * The process creates its receiving socket inside the destination namespace and its sending
 * socket inside the source namespace (setns() before socket(): a socket stays in the namespace it
 * was created in), so one-way delay is measured exactly with CLOCK_MONOTONIC, without ping's
 * round trip. It can also drive a link emulator's control socket at precise offsets (go / cut /
 * restore), so outage timing is measured against the moment the command was given.
 *
 * Output: key=value lines on stdout, for the shell tests. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <math.h>
#include <time.h>
#include <unistd.h>

#include "common/common.h"

#define MAX_COUNT 10000000L
#define MAX_GAPS  8
#define HIST_BINS 100000 /* one-way delay histogram: 0.1 ms bins up to 10 s */

struct probe_hdr {
    uint64_t magic;
    uint64_t seq;
    uint64_t send_ns;
};
#define MAGIC 0x636f727269646f72ull /* "corridor" */

static int enter_ns(const char *name)
{
    char path[256];
    if (strchr(name, '/'))
        snprintf(path, sizeof(path), "%s", name);
    else
        snprintf(path, sizeof(path), "/run/netns/%s", name);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        fprintf(stderr, "netprobe: open %s: %s\n", path, strerror(errno));
        return -1;
    }
    int rc = setns(fd, CLONE_NEWNET);
    if (rc < 0)
        fprintf(stderr, "netprobe: setns %s: %s\n", path, strerror(errno));
    close(fd);
    return rc;
}

static int ctl_cmd(const char *path, const char *cmd, char *reply, size_t rlen)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    str_copy(sa.sun_path, path, sizeof(sa.sun_path));
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        fprintf(stderr, "netprobe: control %s: %s\n", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    char line[128];
    snprintf(line, sizeof(line), "%s\n", cmd);
    int rc = write(fd, line, strlen(line)) == (ssize_t)strlen(line) ? 0 : -1;
    char buf[256];
    ssize_t r = read(fd, buf, sizeof(buf) - 1);
    if (r < 2 || memcmp(buf, "ok", 2) != 0)
        rc = -1;
    if (r >= 0 && reply)
        buf[r] = 0, str_copy(reply, buf, rlen);
    close(fd);
    return rc;
}

static void usage(void)
{
    fprintf(stderr, "usage: corridor-netprobe --from NS --to NS --dst ADDR [--dev IF] [--port P]\n"
                    "         [--count N] [--interval-us U] [--size BYTES] [--drain-ms MS]\n"
                    "         [--ctl PATH [--go] [--cut-at MS] [--restore-at MS]]\n");
}

int main(int argc, char **argv)
{
    const char *from = NULL, *to = NULL, *dst = NULL, *dev = NULL, *ctl = NULL;
    long port = 9000, count = 1000, interval_us = 1000, size = 64, drain_ms = 1000;
    long cut_at = -1, restore_at = -1;
    bool go = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--go")) {
            go = true;
            continue;
        }
        if (!v) {
            usage();
            return 2;
        }
        bool ok = true;
        if (!strcmp(a, "--from"))
            from = v;
        else if (!strcmp(a, "--to"))
            to = v;
        else if (!strcmp(a, "--dst"))
            dst = v;
        else if (!strcmp(a, "--dev"))
            dev = v;
        else if (!strcmp(a, "--ctl"))
            ctl = v;
        else if (!strcmp(a, "--port"))
            ok = str_to_long(v, &port) && port > 0 && port < 65536;
        else if (!strcmp(a, "--count"))
            ok = str_to_long(v, &count) && count > 0 && count <= MAX_COUNT;
        else if (!strcmp(a, "--interval-us"))
            ok = str_to_long(v, &interval_us) && interval_us >= 1 && interval_us <= 10000000;
        else if (!strcmp(a, "--size"))
            ok = str_to_long(v, &size) && size >= (long)sizeof(struct probe_hdr) && size <= 1472;
        else if (!strcmp(a, "--drain-ms"))
            ok = str_to_long(v, &drain_ms) && drain_ms >= 0 && drain_ms <= 60000;
        else if (!strcmp(a, "--cut-at"))
            ok = str_to_long(v, &cut_at) && cut_at >= 0;
        else if (!strcmp(a, "--restore-at"))
            ok = str_to_long(v, &restore_at) && restore_at >= 0;
        else
            ok = false;
        if (!ok) {
            fprintf(stderr, "netprobe: bad argument %s %s\n", a, v);
            usage();
            return 2;
        }
        i++;
    }
    struct in_addr daddr;
    if (!from || !to || !dst || inet_pton(AF_INET, dst, &daddr) != 1) {
        usage();
        return 2;
    }
    int self = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
    if (self < 0 || enter_ns(to) < 0)
        return 2;
    int rx = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int big = 8 << 20;
    setsockopt(rx, SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof(big));
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_ANY);
    if (rx < 0 || bind(rx, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        fprintf(stderr, "netprobe: bind port %ld in %s: %s\n", port, to, strerror(errno));
        return 2;
    }
    if (enter_ns(from) < 0)
        return 2;
    int tx = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (tx < 0 || (dev && setsockopt(tx, SOL_SOCKET, SO_BINDTODEVICE, dev, strlen(dev)) < 0)) {
        fprintf(stderr, "netprobe: sender socket in %s: %s\n", from, strerror(errno));
        return 2;
    }
    sa.sin_addr = daddr;
    if (connect(tx, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        fprintf(stderr, "netprobe: connect %s: %s\n", dst, strerror(errno));
        return 2;
    }
    if (setns(self, CLONE_NEWNET) < 0)
        return 2;
    close(self);

    size_t words = (size_t)(count + 63) / 64;
    uint64_t *seen = calloc(words, sizeof(uint64_t));
    if (!seen)
        return 2;
    uint32_t *hist = calloc(HIST_BINS, sizeof(uint32_t));
    /* actual send offsets (us): a descheduled sender sends late, and gaps are timed by when
     * the probes really left */
    uint32_t *sent_us = calloc((size_t)count, sizeof(uint32_t));
    if (!hist || !sent_us)
        return 2;
    uint8_t pkt[1472];
    memset(pkt, 0xa5, sizeof(pkt));
    long sent = 0, received = 0, reordered = 0, dups = 0, send_err = 0;
    uint64_t max_seq = 0, first_rx = 0, last_rx = 0;
    bool any = false;
    double owd_sum = 0, owd_sq = 0, owd_min = 1e18, owd_max = 0;
    double cut_ms = -1, restore_ms = -1;
    uint64_t t0 = mono_ns();
    if (ctl && go) {
        char reply[128];
        if (ctl_cmd(ctl, "go", reply, sizeof(reply)) < 0)
            return 2;
        /* the emulator replies with its t = 0 (CLOCK_MONOTONIC ms): the probe's timeline starts
         * there, so gap offsets are relative to the schedule itself */
        double ms;
        if (sscanf(reply, "ok go %lf", &ms) == 1 && ms > 0)
            t0 = (uint64_t)(ms * 1e6);
    }
    uint64_t end_send = t0 + (uint64_t)count * (uint64_t)interval_us * 1000;
    uint64_t deadline = end_send + (uint64_t)drain_ms * 1000000;
    for (;;) {
        uint64_t now = mono_ns();
        if (ctl && cut_at >= 0 && cut_ms < 0 && now >= t0 + (uint64_t)cut_at * 1000000) {
            if (ctl_cmd(ctl, "cut", NULL, 0) < 0)
                return 2;
            cut_ms = (mono_ns() - t0) / 1e6;
        }
        if (ctl && restore_at >= 0 && restore_ms < 0 &&
            now >= t0 + (uint64_t)restore_at * 1000000) {
            if (ctl_cmd(ctl, "restore", NULL, 0) < 0)
                return 2;
            restore_ms = (mono_ns() - t0) / 1e6;
        }
        while (sent < count && now >= t0 + (uint64_t)sent * (uint64_t)interval_us * 1000) {
            struct probe_hdr h = {MAGIC, (uint64_t)sent, mono_ns()};
            sent_us[sent] = h.send_ns > t0 ? (uint32_t)((h.send_ns - t0) / 1000) : 0;
            memcpy(pkt, &h, sizeof(h));
            if (send(tx, pkt, (size_t)size, 0) < 0)
                send_err++;
            sent++;
        }
        for (;;) {
            ssize_t r = recv(rx, pkt, sizeof(pkt), 0);
            if (r < (ssize_t)sizeof(struct probe_hdr))
                break;
            uint64_t rnow = mono_ns();
            struct probe_hdr h;
            if (!first_rx)
                first_rx = rnow;
            last_rx = rnow;
            memcpy(&h, pkt, sizeof(h));
            if (h.magic != MAGIC || h.seq >= (uint64_t)count)
                continue;
            uint64_t bit = 1ull << (h.seq % 64);
            if (seen[h.seq / 64] & bit) {
                dups++;
                continue;
            }
            seen[h.seq / 64] |= bit;
            received++;
            if (any && h.seq < max_seq)
                reordered++;
            if (!any || h.seq > max_seq)
                max_seq = h.seq;
            any = true;
            double owd = (rnow - h.send_ns) / 1e6;
            owd_sum += owd;
            owd_sq += owd * owd;
            if (owd < owd_min)
                owd_min = owd;
            if (owd > owd_max)
                owd_max = owd;
            long bin = (long)(owd * 10);
            hist[bin < 0 ? 0 : bin >= HIST_BINS ? HIST_BINS - 1 : bin]++;
        }
        now = mono_ns();
        if (now >= deadline || (sent == count && received == count))
            break;
        /* sleep until the next send (or 1 ms while draining), waking for arrivals */
        uint64_t next =
            sent < count ? t0 + (uint64_t)sent * (uint64_t)interval_us * 1000 : now + 1000000;
        if (next > now) {
            /* ppoll: ns timeout, and an arrival ends the wait so its timestamp stays exact */
            uint64_t d = next - now;
            struct timespec ts = {(time_t)(d / 1000000000ull), (long)(d % 1000000000ull)};
            struct pollfd pfd = {.fd = rx, .events = POLLIN};
            ppoll(&pfd, 1, &ts, NULL);
        }
    }
    long lost = sent - received;
    printf("sent=%ld\nreceived=%ld\nlost=%ld\nloss_pct=%.4f\nreordered=%ld\ndups=%ld\n"
           "send_err=%ld\n",
           sent, received, lost, sent ? 100.0 * lost / sent : 0.0, reordered, dups, send_err);
    if (received) {
        double mean = owd_sum / received;
        double var = owd_sq / received - mean * mean;
        printf("owd_min_ms=%.3f\nowd_mean_ms=%.3f\nowd_max_ms=%.3f\nowd_sd_ms=%.3f\n", owd_min,
               mean, owd_max, var > 0 ? sqrt(var) : 0.0);
        /* percentiles: the upper edge of the bin holding the p-th sample */
        const double pct[5] = {50, 90, 95, 99, 99.9};
        const char *pname[5] = {"p50", "p90", "p95", "p99", "p999"};
        for (int k = 0; k < 5; k++) {
            long want = (long)ceil(received * pct[k] / 100.0), acc = 0, b = 0;
            for (; b < HIST_BINS - 1; b++) {
                acc += hist[b];
                if (acc >= want)
                    break;
            }
            printf("owd_%s_ms=%.1f\n", pname[k], (b + 1) / 10.0);
        }
    }
    /* UDP payload goodput at the receiver, first to last arrival: what a saturated link yields */
    if (received > 1 && last_rx > first_rx)
        printf("rx_goodput_mbps=%.4f\n",
               (double)(received - 1) * (double)size * 8.0 / ((last_rx - first_rx) / 1e9) / 1e6);
    if (cut_ms >= 0)
        printf("cut_ms=%.3f\n", cut_ms);
    if (restore_ms >= 0)
        printf("restore_ms=%.3f\n", restore_ms);
    /* gaps: runs of lost sequence numbers, as send-time offsets from the first probe */
    int ngaps = 0;
    double longest = 0;
    for (long s = 0; s < sent;) {
        if (seen[s / 64] & (1ull << (s % 64))) {
            s++;
            continue;
        }
        long e = s;
        while (e < sent && !(seen[e / 64] & (1ull << (e % 64))))
            e++;
        double start = sent_us[s] / 1000.0;
        double end = e < sent ? sent_us[e] / 1000.0 : (double)e * interval_us / 1000.0;
        double dur = end - start;
        if (dur > longest)
            longest = dur;
        if (ngaps < MAX_GAPS)
            printf("gap%d_start_ms=%.3f\ngap%d_dur_ms=%.3f\n", ngaps, start, ngaps, dur);
        ngaps++;
        s = e;
    }
    printf("gaps=%d\nlongest_gap_ms=%.3f\n", ngaps, longest);
    free(seen);
    free(hist);
    free(sent_us);
    close(rx);
    close(tx);
    return 0;
}
