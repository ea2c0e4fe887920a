/* corridor-route-feed: feed a generated NMEA file to a real gpsd, one epoch per second on the
 * wall clock.
 *
 * gpsfake paces with a relative sleep after every sentence, so its replay runs slow by whatever
 * the machine adds to each sleep: measured 1.3 % on the shared 2-core machine at load 11 (0.67 s
 * behind after 50 s), i.e. 6 s behind after the 8-minute replay, which moves every learned dead
 * zone by ~150 m between the first and the last trip. Here epoch k is written at start + k s
 * (absolute CLOCK_REALTIME deadlines: no accumulated drift), to a pseudo-terminal that a gpsd
 * started by this program reads like a serial receiver, as gpsfake does.
 *
 *   corridor-route-feed NMEA_FILE [--port P] [--gpsd PATH] [--start UNIX_TIME]
 * An epoch is the lines from one $..GGA to the next. Exits 0 after the last epoch (stopping gpsd),
 * on SIGTERM/SIGINT likewise. Test tool. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#define MAX_EPOCHS 100000
#define MAX_BYTES  (64u << 20)

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

int main(int argc, char **argv)
{
    const char *file = NULL, *gpsd = "/usr/sbin/gpsd", *port = "2947";
    double start = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--port") == 0 && i + 1 < argc)
            port = argv[++i];
        else if (strcmp(argv[i], "--gpsd") == 0 && i + 1 < argc)
            gpsd = argv[++i];
        else if (strcmp(argv[i], "--start") == 0 && i + 1 < argc)
            start = strtod(argv[++i], NULL);
        else if (!file)
            file = argv[i];
        else
            file = NULL, i = argc;
    }
    if (!file) {
        fprintf(stderr, "usage: corridor-route-feed NMEA_FILE [--port P] [--gpsd PATH] "
                        "[--start UNIX_TIME]\n");
        return 2;
    }
    FILE *f = fopen(file, "r");
    if (!f) {
        fprintf(stderr, "route-feed: %s: %s\n", file, strerror(errno));
        return 1;
    }
    /* the whole file, with the offset where each epoch starts */
    char *buf = malloc(MAX_BYTES);
    size_t *ep = calloc(MAX_EPOCHS + 1, sizeof(size_t));
    size_t len = 0, n_ep = 0;
    char line[512];
    while (buf && ep && fgets(line, sizeof(line), f)) {
        size_t l = strlen(line);
        if (line[0] != '$' || len + l + 2 > MAX_BYTES)
            continue; /* comments; a bounded file */
        if (strncmp(line + 3, "GGA", 3) == 0 && n_ep < MAX_EPOCHS)
            ep[n_ep++] = len;
        memcpy(buf + len, line, l);
        len += l;
    }
    fclose(f);
    if (!buf || !ep || n_ep == 0) {
        fprintf(stderr, "route-feed: %s: no epochs\n", file);
        return 1;
    }
    ep[n_ep] = len;

    int mfd = posix_openpt(O_RDWR | O_NOCTTY);
    if (mfd < 0 || grantpt(mfd) || unlockpt(mfd) || !ptsname(mfd)) {
        fprintf(stderr, "route-feed: pty: %s\n", strerror(errno));
        return 1;
    }
    char pts[64];
    snprintf(pts, sizeof(pts), "%s", ptsname(mfd));
    struct termios tio;
    int sfd = open(pts, O_RDWR | O_NOCTTY);
    if (sfd >= 0 && tcgetattr(sfd, &tio) == 0) {
        cfmakeraw(&tio);
        cfsetispeed(&tio, B9600);
        cfsetospeed(&tio, B9600);
        tcsetattr(sfd, TCSANOW, &tio);
    }
    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    pid_t pid = fork();
    if (pid == 0) {
        close(mfd);
        /* -N foreground, -n read without waiting for a client, -b never write to the device */
        execl(gpsd, "gpsd", "-N", "-n", "-b", "-S", port, pts, (char *)NULL);
        _exit(127);
    }
    if (pid < 0) {
        fprintf(stderr, "route-feed: fork: %s\n", strerror(errno));
        return 1;
    }
    if (sfd >= 0)
        close(sfd); /* gpsd has its own */
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    if (start <= 0)
        start = (double)now.tv_sec + now.tv_nsec / 1e9;
    size_t k = 0;
    for (; k < n_ep && !stop; k++) {
        double at = start + (double)k;
        struct timespec ts = {.tv_sec = (time_t)at, .tv_nsec = (long)((at - (time_t)at) * 1e9)};
        while (!stop && clock_nanosleep(CLOCK_REALTIME, TIMER_ABSTIME, &ts, NULL) == EINTR)
            ;
        if (stop)
            break;
        const char *p = buf + ep[k];
        size_t left = ep[k + 1] - ep[k];
        while (left > 0) {
            ssize_t w = write(mfd, p, left);
            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0)
                break; /* gpsd gone: keep time, it may be restarted by nobody; just stop */
            p += w;
            left -= (size_t)w;
        }
    }
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
    close(mfd);
    free(buf);
    free(ep);
    fprintf(stderr, "route-feed: %zu of %zu epochs written\n", k, n_ep);
    return 0;
}
