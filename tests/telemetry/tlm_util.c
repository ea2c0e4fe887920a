/* tlm_util: see tlm_util.h. */
#include "tlm_util.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/common.h"

void synth_track(int64_t t_ms, struct rec_track *t)
{
    memset(t, 0, sizeof *t);
    double s = (double)t_ms / 1000.0;
    t->t_ms = t_ms;
    t->lat = 55.75 + fmod(s, 3600.0) * 1e-5; /* ~1 km per simulated hour, then back */
    t->lon = 37.62 + sin(s / 600.0) * 0.01;
    t->alt_m = 150.0f + (float)fmod(s, 7.0);
    t->speed_kmh = 60.0f + (float)fmod(s, 13.0);
    t->track_deg = (float)fmod(s * 0.3, 360.0);
    t->fix_mode = 3;
    t->source = 1;
}

void synth_link(int64_t t_ms, unsigned i, struct rec_link *l)
{
    static const char *ops[] = {"MTS", "Beeline", "MegaFon", "Tele2"};
    memset(l, 0, sizeof *l);
    double s = (double)t_ms / 1000.0;
    l->t_ms = t_ms;
    snprintf(l->link, sizeof l->link, "wwan%u", i);
    str_copy(l->operator_name, ops[i % 4], sizeof l->operator_name);
    str_copy(l->net_type, "LTE", sizeof l->net_type);
    l->cell_id = 250010000u + i * 1000u + (uint64_t)(s / 120.0);
    l->rssi_dbm = -70.0f - (float)((int64_t)s % 20);
    l->rsrp_dbm = -95.0f - (float)((int64_t)(s * 3 + i) % 15);
    l->rsrq_db = -10.0f;
    l->sinr_db = 8.0f + (float)(i % 3);
    l->rtt_ms = 40.0f + (float)((int64_t)s % 9);
    l->loss_pct = 0.0f;
    l->goodput_kbps = 20000.0f + (float)((int64_t)s % 50) * 100.0f;
    l->weight = 0.25f;
    l->state = 2;
}

void synth_health(int64_t t_ms, struct rec_health *h)
{
    memset(h, 0, sizeof *h);
    h->t_ms = t_ms;
    h->load1 = 0.5f;
    h->cpu_temp_c = 48.0f;
    h->mem_total_kb = 2000000;
    h->mem_avail_kb = 1500000;
    h->disk_total_kb = 30000000;
    h->disk_free_kb = 20000000;
    h->ssd_health_pct = 97;
    h->rss_kb = 30000;
    h->threads_alive = 9;
    h->threads_total = 9;
    str_copy(h->storage_dev, "mmcblk0", sizeof h->storage_dev);
    h->storage_status = 1;
    h->storage_smart_passed = -1;
    h->storage_life_used_pct = 3;
    h->storage_temp_c = NAN;
    h->storage_power_on_hours = -1;
    h->storage_media_errors = -1;
}

unsigned synth_second(struct recorder *rec, int64_t t_ms, unsigned nlinks)
{
    unsigned refused = 0;
    struct rec_track t;
    synth_track(t_ms, &t);
    refused += recorder_add_track(rec, &t) != 0;
    for (unsigned i = 0; i < nlinks; i++) {
        struct rec_link l;
        synth_link(t_ms, i, &l);
        refused += recorder_add_link(rec, &l) != 0;
    }
    if ((t_ms / 1000) % 10 == 0) {
        struct rec_health h;
        synth_health(t_ms, &h);
        refused += recorder_add_health(rec, &h) != 0;
    }
    return refused;
}

int write_tokens(const char *vehicle_token_file, const char *collector_tokens_file,
                 const char *vehicle, const char *token)
{
    if (sodium_init() < 0)
        return -1;
    uint8_t h[crypto_hash_sha256_BYTES];
    crypto_hash_sha256(h, (const unsigned char *)token, strlen(token));
    FILE *f = fopen(vehicle_token_file, "w");
    if (!f)
        return -1;
    fprintf(f, "%s\n", token);
    fclose(f);
    f = fopen(collector_tokens_file, "a");
    if (!f)
        return -1;
    fprintf(f, "# vehicle sha256(token)\n%s ", vehicle);
    for (size_t i = 0; i < sizeof h; i++)
        fprintf(f, "%02x", h[i]);
    fprintf(f, "\n");
    fclose(f);
    return 0;
}

int collector_spawn(struct collector_proc *cp, const char *exe, const char *dir, const char *db,
                    const char *tokens, uint16_t port, const char *const *extra)
{
    char portfile[512], portarg[16];
    snprintf(portfile, sizeof portfile, "%s/collector.port", dir);
    snprintf(cp->log, sizeof cp->log, "%s/collector.log", dir);
    snprintf(portarg, sizeof portarg, "%u", port);
    unlink(portfile);
    const char *argv[32];
    int n = 0;
    argv[n++] = exe;
    argv[n++] = "--db";
    argv[n++] = db;
    argv[n++] = "--tokens";
    argv[n++] = tokens;
    argv[n++] = "--port";
    argv[n++] = portarg;
    argv[n++] = "--port-file";
    argv[n++] = portfile;
    for (int i = 0; extra && extra[i] && n < 30; i++)
        argv[n++] = extra[i];
    argv[n] = NULL;
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        FILE *lf = fopen(cp->log, "a");
        if (lf) {
            dup2(fileno(lf), 2);
            fclose(lf);
        }
        execv(exe, (char *const *)argv);
        _exit(127);
    }
    cp->pid = pid;
    for (int i = 0; i < 500; i++) {
        FILE *f = fopen(portfile, "r");
        if (f) {
            unsigned p = 0;
            int ok = fscanf(f, "%u", &p);
            fclose(f);
            if (ok == 1 && p) {
                cp->port = (uint16_t)p;
                return 0;
            }
        }
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid) {
            cp->pid = 0;
            return -1;
        }
        usleep(10000);
    }
    collector_kill(cp);
    return -1;
}

void collector_kill(struct collector_proc *cp)
{
    if (cp->pid <= 0)
        return;
    kill(cp->pid, SIGTERM);
    int st;
    waitpid(cp->pid, &st, 0);
    cp->pid = 0;
}

uint16_t free_port(void)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t sl = sizeof sa;
    uint16_t port = 0;
    if (s >= 0 && bind(s, (struct sockaddr *)&sa, sizeof sa) == 0 &&
        getsockname(s, (struct sockaddr *)&sa, &sl) == 0)
        port = ntohs(sa.sin_port);
    if (s >= 0)
        close(s);
    return port;
}

struct rbuf {
    char *p;
    size_t n, len;
};
static size_t on_data(char *d, size_t sz, size_t nm, void *vp)
{
    struct rbuf *r = vp;
    size_t n = sz * nm;
    if (r->p && r->n) {
        size_t room = r->n - 1 - r->len;
        size_t take = n < room ? n : room;
        memcpy(r->p + r->len, d, take);
        r->len += take;
        r->p[r->len] = '\0';
    }
    return n;
}

static long http_do(const char *url, const char *const *hdrs, const void *body, size_t len,
                    bool post, const char *ca_file, char *resp, size_t resp_len)
{
    CURL *c = curl_easy_init();
    if (!c)
        return 0;
    struct curl_slist *hl = NULL;
    for (int i = 0; hdrs && hdrs[i]; i++)
        hl = curl_slist_append(hl, hdrs[i]);
    hl = curl_slist_append(hl, "Expect:");
    struct rbuf rb = {resp, resp_len, 0};
    if (resp && resp_len)
        resp[0] = '\0';
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 20L);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &rb);
    if (ca_file)
        curl_easy_setopt(c, CURLOPT_CAINFO, ca_file);
    if (post) {
        curl_easy_setopt(c, CURLOPT_POST, 1L);
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    }
    long code = 0;
    if (curl_easy_perform(c) == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    curl_slist_free_all(hl);
    curl_easy_cleanup(c);
    return code;
}

long http_post(const char *url, const char *const *hdrs, const void *body, size_t len,
               const char *ca_file, char *resp, size_t resp_len)
{
    return http_do(url, hdrs, body, len, true, ca_file, resp, resp_len);
}

long http_get(const char *url, char *resp, size_t resp_len)
{
    return http_do(url, NULL, NULL, 0, false, NULL, resp, resp_len);
}

unsigned file_count(const char *path, const char *needle)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    char line[2048];
    unsigned n = 0;
    while (fgets(line, sizeof line, f))
        if (strstr(line, needle))
            n++;
    fclose(f);
    return n;
}

int make_tmpdir(char *out, size_t n)
{
    snprintf(out, n, "/tmp/tlm-XXXXXX");
    return mkdtemp(out) ? 0 : -1;
}

void remove_tree(const char *dir)
{
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "cannot remove %s\n", dir);
}
