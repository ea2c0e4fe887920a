/* provision: the hub list from the data center. See provision.h. */
#include "firmware/provision.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SUB "provision"

/* a.b.c.d:port, numeric (the tunnel resolves nothing: no DNS on the data path). */
static bool hub_ok(const char *s)
{
    unsigned a, b, c, d, port;
    char tail;
    return sscanf(s, "%u.%u.%u.%u:%u%c", &a, &b, &c, &d, &port, &tail) == 5 && a < 256 && b < 256 &&
           c < 256 && d < 256 && port >= 1 && port <= 65535;
}

int provision_parse(const char *json, size_t len, char hubs[][64], unsigned *n, char *err,
                    size_t errlen)
{
    *n = 0;
    json_error_t je;
    json_t *root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &je);
    if (!root) {
        snprintf(err, errlen, "not JSON (line %d: %s)", je.line, je.text);
        return -1;
    }
    int rc = -1;
    json_t *arr = json_is_object(root) ? json_object_get(root, "hubs") : NULL;
    if (!json_is_array(arr) || json_array_size(arr) == 0 || json_array_size(arr) > CFG_MAX_HUBS) {
        snprintf(err, errlen, "\"hubs\" must be an array of 1..%d \"a.b.c.d:port\" strings",
                 CFG_MAX_HUBS);
        goto out;
    }
    for (size_t i = 0; i < json_array_size(arr); i++) {
        json_t *h = json_array_get(arr, i);
        if (!json_is_string(h) || json_string_length(h) >= 64 || !hub_ok(json_string_value(h))) {
            snprintf(err, errlen, "hubs[%zu]: must be \"a.b.c.d:port\"", i);
            goto out;
        }
        for (size_t k = 0; k < i; k++)
            if (strcmp(hubs[k], json_string_value(h)) == 0) {
                snprintf(err, errlen, "hubs[%zu]: \"%s\" listed twice", i, hubs[k]);
                goto out;
            }
        str_copy(hubs[i], json_string_value(h), 64);
    }
    *n = (unsigned)json_array_size(arr);
    rc = 0;
out:
    json_decref(root);
    if (rc != 0)
        *n = 0;
    return rc;
}

static void cache_path(const char *data_dir, const char *name, char *out, size_t n)
{
    snprintf(out, n, "%s/%s", data_dir, name);
}

int provision_cache_load(const char *data_dir, char hubs[][64], unsigned *n, char *err,
                         size_t errlen)
{
    char path[CFG_PATH_MAX + 16];
    cache_path(data_dir, "hubs.json", path, sizeof path);
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    static char buf[PROVISION_MAX_BODY];
    size_t len = fread(buf, 1, sizeof buf, f);
    fclose(f);
    char perr[160];
    if (provision_parse(buf, len, hubs, n, perr, sizeof perr) != 0) {
        snprintf(err, errlen, "%s: %s", path, perr);
        return -1;
    }
    return 0;
}

int provision_cache_store(const char *data_dir, char hubs[][64], unsigned n, char *err,
                          size_t errlen)
{
    char path[CFG_PATH_MAX + 16], tmp[CFG_PATH_MAX + 16];
    cache_path(data_dir, "hubs.json", path, sizeof path);
    cache_path(data_dir, "hubs.json.tmp", tmp, sizeof tmp);
    json_t *arr = json_array();
    for (unsigned i = 0; i < n; i++)
        json_array_append_new(arr, json_string(hubs[i]));
    json_t *root = json_pack("{s:o}", "hubs", arr);
    char *text = root ? json_dumps(root, JSON_COMPACT) : NULL;
    json_decref(root);
    if (!text) {
        snprintf(err, errlen, "%s: out of memory", path);
        return -1;
    }
    int rc = -1;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        snprintf(err, errlen, "%s: %s", tmp, strerror(errno));
        goto out;
    }
    size_t len = strlen(text);
    bool ok = write(fd, text, len) == (ssize_t)len && write(fd, "\n", 1) == 1 && fsync(fd) == 0;
    if (close(fd) != 0)
        ok = false;
    /* Power may fail at any instant: the rename is atomic, the old list stays until then. */
    if (!ok || rename(tmp, path) != 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        unlink(tmp);
        goto out;
    }
    int dfd = open(data_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
    rc = 0;
out:
    free(text);
    return rc;
}

/* ---- the thread -------------------------------------------------------------------------- */

struct provision {
    const struct config *cfg;
    struct state *st;
    struct tunnel *tunnel;
    pthread_t thread;
    volatile bool stop;
    char current[CFG_MAX_HUBS][64];
    unsigned ncurrent;
    char last_err[256];
};

struct body {
    char *buf;
    size_t len;
    bool overflow;
};

static size_t on_body(char *p, size_t sz, size_t nm, void *ud)
{
    struct body *b = ud;
    size_t n = sz * nm;
    if (b->len + n > PROVISION_MAX_BODY) {
        b->overflow = true;
        return 0; /* abort the transfer: a hub list is tiny */
    }
    memcpy(b->buf + b->len, p, n);
    b->len += n;
    return n;
}

static int progress(void *ud, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
    const struct provision *p = ud;
    (void)dt, (void)dn, (void)ut, (void)un;
    return p->stop; /* non-zero aborts: stop never waits for a slow server */
}

/* "{vehicle_id}" in the URL becomes the vehicle's id. */
static void make_url(const struct config *cfg, char *out, size_t n)
{
    const char *u = cfg->tunnel.hubs_url, *ph = strstr(u, "{vehicle_id}");
    if (!ph)
        snprintf(out, n, "%s", u);
    else
        snprintf(out, n, "%.*s%s%s", (int)(ph - u), u, cfg->vehicle_id,
                 ph + strlen("{vehicle_id}"));
}

static int fetch(struct provision *p, char hubs[][64], unsigned *n, char *err, size_t errlen)
{
    const struct config *cfg = p->cfg;
    char url[CFG_PATH_MAX + 64], tok[256] = "", hdr_auth[300], hdr_veh[128];
    make_url(cfg, url, sizeof url);
    if (cfg->tunnel.hubs_token_file[0]) {
        FILE *f = fopen(cfg->tunnel.hubs_token_file, "r");
        if (!f || !fgets(tok, sizeof tok, f)) {
            snprintf(err, errlen, "tunnel.hubs_token_file %s: %s", cfg->tunnel.hubs_token_file,
                     f ? "empty" : strerror(errno));
            if (f)
                fclose(f);
            return -1;
        }
        fclose(f);
        str_trim(tok);
    }
    CURL *c = curl_easy_init();
    if (!c) {
        snprintf(err, errlen, "curl: out of memory");
        return -1;
    }
    static char buf[PROVISION_MAX_BODY];
    struct body b = {buf, 0, false};
    struct curl_slist *hl = NULL;
    snprintf(hdr_veh, sizeof hdr_veh, "X-Corridor-Vehicle: %s", cfg->vehicle_id);
    hl = curl_slist_append(hl, hdr_veh);
    if (tok[0]) {
        snprintf(hdr_auth, sizeof hdr_auth, "Authorization: Bearer %s", tok);
        hl = curl_slist_append(hl, hdr_auth);
    }
    char cerr[CURL_ERROR_SIZE] = "";
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 30000L);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, progress);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, p);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, cerr);
    CURLcode rc = curl_easy_perform(c);
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(c);
    curl_slist_free_all(hl);
    sodium_memzero(tok, sizeof tok);
    if (b.overflow) {
        snprintf(err, errlen, "%s: answer over %d bytes", url, PROVISION_MAX_BODY);
        return -1;
    }
    if (rc != CURLE_OK) {
        snprintf(err, errlen, "%s: %s", url, cerr[0] ? cerr : curl_easy_strerror(rc));
        return -1;
    }
    if (status != 200) {
        snprintf(err, errlen, "%s: HTTP %ld", url, status);
        return -1;
    }
    char perr[160];
    if (provision_parse(buf, b.len, hubs, n, perr, sizeof perr) != 0) {
        snprintf(err, errlen, "%s: %s", url, perr);
        return -1;
    }
    return 0;
}

static void *provision_main(void *arg)
{
    struct provision *p = arg;
    const struct config *cfg = p->cfg;
    unsigned backoff_s = 30;
    while (!p->stop) {
        char hubs[CFG_MAX_HUBS][64], err[512];
        unsigned n = 0;
        unsigned wait_s = cfg->tunnel.hubs_refresh_s;
        if (fetch(p, hubs, &n, err, sizeof err) == 0) {
            p->last_err[0] = 0;
            backoff_s = 30;
            bool same = n == p->ncurrent;
            for (unsigned i = 0; same && i < n; i++)
                same = strcmp(hubs[i], p->current[i]) == 0;
            if (!same) {
                char terr[256];
                if (tunnel_set_hubs(p->tunnel, hubs, n, terr, sizeof terr) != 0) {
                    LOG_W(SUB, "hub list refused by the tunnel: %s", terr);
                } else {
                    memcpy(p->current, hubs, sizeof hubs);
                    p->ncurrent = n;
                    char list[CFG_MAX_HUBS * 64] = "";
                    size_t off = 0;
                    for (unsigned i = 0; i < n; i++)
                        str_appendf(list, sizeof list, &off, "%s%s", i ? ", " : "", hubs[i]);
                    state_add_event(p->st, "tunnel", "hub_list", "new hub list: %s", list);
                    LOG_I(SUB, "new hub list: %s", list);
                    if (provision_cache_store(cfg->data_dir, hubs, n, terr, sizeof terr) != 0)
                        LOG_W(SUB, "caching the hub list: %s", terr);
                }
            }
        } else {
            if (strcmp(err, p->last_err) != 0) {
                LOG_W(SUB, "hub list: %s (keeping %u hubs; retrying)", err, p->ncurrent);
                str_copy(p->last_err, err, sizeof p->last_err);
            }
            wait_s =
                backoff_s < cfg->tunnel.hubs_refresh_s ? backoff_s : cfg->tunnel.hubs_refresh_s;
            backoff_s = backoff_s * 2 > 1800 ? 1800 : backoff_s * 2;
        }
        sleep_ms_unless(&p->stop, wait_s * 1000);
    }
    return NULL;
}

int provision_start(const struct config *cfg, struct state *st, struct tunnel *t,
                    struct provision **out, char *err, size_t errlen)
{
    *out = NULL;
    struct provision *p = calloc(1, sizeof *p);
    if (!p) {
        snprintf(err, errlen, "provision: out of memory");
        return -1;
    }
    p->cfg = cfg;
    p->st = st;
    p->tunnel = t;
    /* What the tunnel started with (the cache if there was one, else the config): a fetched
     * list equal to it changes nothing. */
    p->ncurrent = tunnel_start_hubs(t, p->current);
    if (strncmp(cfg->tunnel.hubs_url, "http://", 7) == 0)
        LOG_W(SUB, "tunnel.hubs_url is plain http: the list is not authenticated (the hub key "
                   "is pinned, so a forged list can only point at hubs that fail the handshake)");
    if (pthread_create(&p->thread, NULL, provision_main, p) != 0) {
        snprintf(err, errlen, "provision: cannot start thread");
        free(p);
        return -1;
    }
    *out = p;
    return 0;
}

void provision_stop(struct provision *p)
{
    if (!p)
        return;
    p->stop = true;
    pthread_join(p->thread, NULL);
    free(p);
}
