/* config: load and validate the JSON configuration. See config.h and docs/configuration.md.
 *
 * jansson parses the text (well kept, in Debian, gives line/column on syntax errors); the
 * validation below walks the tree with the current key path in hand so every message names
 * exactly where the problem is. One function per value kind, one error exit each. */
#include "firmware/config.h"
#include "board/board.h"
#include "common/jsoncheck.h"

#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int get_bool(struct jc *v, const char *path, json_t *obj, const char *key, bool *dst)
{
    char p[256];
    jc_child(p, sizeof p, path, key);
    json_t *j = json_object_get(obj, key);
    if (!j)
        return 0;
    if (!json_is_boolean(j))
        return jc_fail(v, p, "must be true or false, got %s", jc_type_name(j));
    *dst = json_is_true(j);
    return 0;
}

static int get_double(struct jc *v, const char *path, json_t *obj, const char *key, double min,
                      double max, double *dst)
{
    char p[256];
    jc_child(p, sizeof p, path, key);
    json_t *j = json_object_get(obj, key);
    if (!j)
        return 0;
    if (!json_is_number(j))
        return jc_fail(v, p, "must be a number in %g..%g, got %s", min, max, jc_type_name(j));
    double x = json_number_value(j);
    if (!(x >= min && x <= max))
        return jc_fail(v, p, "must be in %g..%g, got %g", min, max, x);
    *dst = x;
    return 0;
}

static json_t *get_obj(struct jc *v, const char *path, json_t *obj, const char *key)
{
    char p[256];
    jc_child(p, sizeof p, path, key);
    json_t *j = json_object_get(obj, key);
    if (j && !json_is_object(j)) {
        jc_fail(v, p, "must be an object, got %s", jc_type_name(j));
        return NULL;
    }
    return j;
}

static int check_abs_path(struct jc *v, const char *path, const char *s)
{
    if (s[0] != '/')
        return jc_fail(v, path, "\"%s\": must be an absolute path", s);
    return 0;
}

/* "host:port" or "[v6]:port" with a port in 1..65535. */
static int check_hostport(struct jc *v, const char *path, const char *s)
{
    const char *colon = strrchr(s, ':');
    if (!colon || colon == s)
        return jc_fail(v, path, "\"%s\": must be host:port", s);
    long port;
    if (!str_to_long(colon + 1, &port) || port < 1 || port > 65535)
        return jc_fail(v, path, "\"%s\": port must be 1..65535", s);
    return 0;
}

static int check_ussd(struct jc *v, const char *path, const char *s)
{
    if (!*s)
        return 0;
    for (const char *c = s; *c; c++)
        if (!isdigit((unsigned char)*c) && *c != '*' && *c != '#')
            return jc_fail(v, path, "\"%s\": a USSD code has only digits, '*' and '#'", s);
    if (s[strlen(s) - 1] != '#')
        return jc_fail(v, path, "\"%s\": a USSD code ends with '#'", s);
    return 0;
}

static const unsigned valid_bauds[] = {9600,   19200,  38400,  57600,   115200,
                                       230400, 460800, 921600, 3000000, 4000000};

static int parse_modem(struct jc *v, const char *path, json_t *j, struct cfg_modem *m)
{
    static const char *const keys[] = {
        "port", "baud", "apn", "balance_ussd", "gnss", "balance_period_s", "cmd_timeout_ms", NULL};
    if (jc_check_keys(v, path, j, keys))
        return -1;
    m->present = true;
    m->baud = 115200;
    m->gnss = true;
    m->balance_period_s = 14400;
    m->cmd_timeout_ms = 3000;
    char p[256];
    if (jc_get_str(v, path, j, "port", true, m->port, sizeof m->port))
        return -1;
    jc_child(p, sizeof p, path, "port");
    if (check_abs_path(v, p, m->port))
        return -1;
    unsigned baud = 115200;
    if (jc_get_uint(v, path, j, "baud", 300, 4000000, &baud))
        return -1;
    bool ok = false;
    for (unsigned i = 0; i < ARRAY_LEN(valid_bauds); i++)
        ok |= valid_bauds[i] == baud;
    if (!ok) {
        jc_child(p, sizeof p, path, "baud");
        return jc_fail(v, p, "%u is not a standard modem rate (9600..921600, 3000000, 4000000)",
                       baud);
    }
    m->baud = (int)baud;
    if (jc_get_str(v, path, j, "apn", false, m->apn, sizeof m->apn) ||
        jc_get_str(v, path, j, "balance_ussd", false, m->balance_ussd, sizeof m->balance_ussd))
        return -1;
    jc_child(p, sizeof p, path, "balance_ussd");
    if (check_ussd(v, p, m->balance_ussd))
        return -1;
    if (get_bool(v, path, j, "gnss", &m->gnss) ||
        jc_get_uint(v, path, j, "balance_period_s", 60, 7 * 86400, &m->balance_period_s) ||
        jc_get_uint(v, path, j, "cmd_timeout_ms", 200, 60000, &m->cmd_timeout_ms))
        return -1;
    return 0;
}

static int parse_links(struct jc *v, json_t *root, struct config *c)
{
    json_t *links = json_object_get(root, "links");
    if (!links)
        return jc_fail(v, "links", "missing (required)");
    if (!json_is_array(links))
        return jc_fail(v, "links", "must be an array, got %s", jc_type_name(links));
    if (json_array_size(links) == 0)
        return jc_fail(v, "links", "must list at least one link");
    if (json_array_size(links) > CFG_MAX_LINKS)
        return jc_fail(v, "links", "at most %d links, got %zu", CFG_MAX_LINKS,
                       json_array_size(links));
    size_t i;
    json_t *l;
    json_array_foreach(links, i, l)
    {
        char path[64], p[256];
        snprintf(path, sizeof path, "links[%zu]", i);
        if (!json_is_object(l))
            return jc_fail(v, path, "must be an object, got %s", jc_type_name(l));
        static const char *const keys[] = {"name", "interface", "modem", NULL};
        if (jc_check_keys(v, path, l, keys))
            return -1;
        struct cfg_link *cl = &c->links[i];
        if (jc_get_str(v, path, l, "name", true, cl->name, sizeof cl->name) ||
            jc_get_str(v, path, l, "interface", true, cl->interface, sizeof cl->interface))
            return -1;
        jc_child(p, sizeof p, path, "name");
        if (jc_check_name(v, p, cl->name))
            return -1;
        for (size_t k = 0; k < i; k++) {
            if (strcmp(c->links[k].name, cl->name) == 0)
                return jc_fail(v, p, "\"%s\" is already the name of links[%zu]", cl->name, k);
        }
        json_t *m = get_obj(v, path, l, "modem");
        if (v->failed)
            return -1;
        if (m) {
            jc_child(p, sizeof p, path, "modem");
            if (parse_modem(v, p, m, &cl->modem))
                return -1;
            for (size_t k = 0; k < i; k++) {
                if (c->links[k].modem.present &&
                    strcmp(c->links[k].modem.port, cl->modem.port) == 0)
                    return jc_fail(v, p, "port \"%s\" is already used by links[%zu]",
                                   cl->modem.port, k);
            }
        }
        c->nlinks++;
    }
    return 0;
}

static int parse_tunnel(struct jc *v, json_t *root, struct cfg_tunnel *t)
{
    json_t *j = get_obj(v, "", root, "tunnel");
    if (!j)
        return v->failed ? -1 : 0;
    static const char *const keys[] = {"hubs",
                                       "private_key_file",
                                       "hub_public_key",
                                       "tun",
                                       "address",
                                       "path_mtu",
                                       "lz4",
                                       "classes",
                                       "hub_timeout_ms",
                                       "hubs_url",
                                       "hubs_token_file",
                                       "hubs_refresh_s",
                                       "inner_mtu",
                                       NULL};
    if (jc_check_keys(v, "tunnel", j, keys))
        return -1;
    t->enabled = true;
    str_copy(t->tun, "corr0", sizeof t->tun);
    t->hubs_refresh_s = 6 * 3600;
    json_t *hubs = json_object_get(j, "hubs");
    if (!hubs)
        return jc_fail(v, "tunnel.hubs", "missing (required when tunnel is present)");
    if (!json_is_array(hubs) || json_array_size(hubs) == 0)
        return jc_fail(v, "tunnel.hubs", "must be a non-empty array of \"host:port\" strings");
    if (json_array_size(hubs) > CFG_MAX_HUBS)
        return jc_fail(v, "tunnel.hubs", "at most %d hubs", CFG_MAX_HUBS);
    size_t i;
    json_t *h;
    json_array_foreach(hubs, i, h)
    {
        char p[64];
        snprintf(p, sizeof p, "tunnel.hubs[%zu]", i);
        if (!json_is_string(h))
            return jc_fail(v, p, "must be a string, got %s", jc_type_name(h));
        if (strlen(json_string_value(h)) >= sizeof t->hubs[0])
            return jc_fail(v, p, "too long");
        str_copy(t->hubs[i], json_string_value(h), sizeof t->hubs[i]);
        if (check_hostport(v, p, t->hubs[i]))
            return -1;
        t->nhubs++;
    }
    if (jc_get_str(v, "tunnel", j, "private_key_file", true, t->private_key_file,
                   sizeof t->private_key_file) ||
        jc_get_str(v, "tunnel", j, "hub_public_key", true, t->hub_public_key,
                   sizeof t->hub_public_key) ||
        jc_get_str(v, "tunnel", j, "tun", false, t->tun, sizeof t->tun) ||
        jc_get_str(v, "tunnel", j, "address", true, t->address, sizeof t->address) ||
        jc_get_uint(v, "tunnel", j, "path_mtu", 576, 9000, &t->path_mtu) ||
        jc_get_uint(v, "tunnel", j, "inner_mtu", 576, 1500, &t->inner_mtu) ||
        get_bool(v, "tunnel", j, "lz4", &t->lz4) ||
        jc_get_uint(v, "tunnel", j, "hub_timeout_ms", 500, 60000, &t->hub_timeout_ms) ||
        jc_get_str(v, "tunnel", j, "hubs_url", false, t->hubs_url, sizeof t->hubs_url) ||
        jc_get_str(v, "tunnel", j, "hubs_token_file", false, t->hubs_token_file,
                   sizeof t->hubs_token_file) ||
        jc_get_uint(v, "tunnel", j, "hubs_refresh_s", 60, 7 * 86400, &t->hubs_refresh_s))
        return -1;
    if (t->hubs_url[0] && strncmp(t->hubs_url, "https://", 8) != 0 &&
        strncmp(t->hubs_url, "http://", 7) != 0)
        return jc_fail(v, "tunnel.hubs_url", "\"%s\": must be an https:// (or http://) URL",
                       t->hubs_url);
    if (t->hubs_token_file[0] && check_abs_path(v, "tunnel.hubs_token_file", t->hubs_token_file))
        return -1;
    if (check_abs_path(v, "tunnel.private_key_file", t->private_key_file))
        return -1;
    if (strlen(t->hub_public_key) != 44 || t->hub_public_key[43] != '=')
        return jc_fail(v, "tunnel.hub_public_key",
                       "must be a base64 X25519 public key (44 characters, as printed by "
                       "`corridor-hub keygen`)");
    if (!strchr(t->address, '/'))
        return jc_fail(v, "tunnel.address", "\"%s\": must be address/prefix, e.g. 10.77.0.2/16",
                       t->address);
    return 0;
}

/* "a.b.c.d/nn" with the host bits clear (a LAN subnet). */
static int check_subnet(struct jc *v, const char *path, const char *s)
{
    unsigned a, b, c, d, len;
    char tail;
    if (sscanf(s, "%u.%u.%u.%u/%u%c", &a, &b, &c, &d, &len, &tail) != 5 || a > 255 || b > 255 ||
        c > 255 || d > 255 || len > 32)
        return jc_fail(v, path, "\"%s\": must be a subnet a.b.c.d/nn", s);
    uint32_t addr = (a << 24) | (b << 16) | (c << 8) | d;
    uint32_t mask = len ? 0xffffffffu << (32 - len) : 0;
    if (addr & ~mask)
        return jc_fail(v, path, "\"%s\": host bits set (did you mean %u.%u.%u.%u/%u?)", s,
                       (addr & mask) >> 24, ((addr & mask) >> 16) & 255, ((addr & mask) >> 8) & 255,
                       addr & mask & 255, len);
    return 0;
}

/* tunnel.classes[]: operational traffic (ticketing, CCTV, telemetry) ahead of the passengers. */
static int parse_classes(struct jc *v, json_t *root, struct config *c)
{
    json_t *tj = json_object_get(root, "tunnel");
    json_t *arr = tj ? json_object_get(tj, "classes") : NULL;
    if (!arr)
        return 0;
    if (!json_is_array(arr) || json_array_size(arr) > CFG_MAX_CLASSES)
        return jc_fail(v, "tunnel.classes", "must be an array of at most %d classes",
                       CFG_MAX_CLASSES);
    static const char *const keys[] = {"name",     "src_subnet", "dscp",           "mode",
                                       "priority", "rate_kbps",  "failover_order", NULL};
    size_t i;
    json_t *e;
    json_array_foreach(arr, i, e)
    {
        char p[64], q[96];
        snprintf(p, sizeof p, "tunnel.classes[%zu]", i);
        struct cfg_class *cl = &c->tunnel.classes[i];
        memset(cl, 0, sizeof *cl);
        cl->dscp = -1;
        str_copy(cl->mode, "bond", sizeof cl->mode);
        char prio[16] = "operational";
        unsigned dscp = 64;
        if (!json_is_object(e))
            return jc_fail(v, p, "must be an object, got %s", jc_type_name(e));
        if (jc_check_keys(v, p, e, keys) ||
            jc_get_str(v, p, e, "name", true, cl->name, sizeof cl->name) ||
            jc_get_str(v, p, e, "src_subnet", false, cl->src_subnet, sizeof cl->src_subnet) ||
            jc_get_uint(v, p, e, "dscp", 0, 63, &dscp) ||
            jc_get_str(v, p, e, "mode", false, cl->mode, sizeof cl->mode) ||
            jc_get_str(v, p, e, "priority", false, prio, sizeof prio) ||
            jc_get_uint(v, p, e, "rate_kbps", 0, 10000000, &cl->rate_kbps))
            return -1;
        snprintf(q, sizeof q, "%s.name", p);
        if (jc_check_name(v, q, cl->name))
            return -1;
        if (dscp < 64)
            cl->dscp = (int)dscp;
        snprintf(q, sizeof q, "%s.src_subnet", p);
        if (cl->src_subnet[0] && check_subnet(v, q, cl->src_subnet))
            return -1;
        if (!cl->src_subnet[0] && cl->dscp < 0)
            return jc_fail(v, p,
                           "needs \"src_subnet\" or \"dscp\" (a class matching everything "
                           "would hide the default class)");
        snprintf(q, sizeof q, "%s.mode", p);
        if (strcmp(cl->mode, "bond") && strcmp(cl->mode, "failover") &&
            strcmp(cl->mode, "redundant"))
            return jc_fail(v, q, "\"%s\": must be bond, failover or redundant", cl->mode);
        snprintf(q, sizeof q, "%s.priority", p);
        if (strcmp(prio, "operational") && strcmp(prio, "passenger"))
            return jc_fail(v, q, "\"%s\": must be operational or passenger", prio);
        cl->passenger = strcmp(prio, "passenger") == 0;
        json_t *fo = json_object_get(e, "failover_order");
        snprintf(q, sizeof q, "%s.failover_order", p);
        if (fo && strcmp(cl->mode, "failover") != 0)
            return jc_fail(v, q, "only for mode \"failover\"");
        if (fo && (!json_is_array(fo) || json_array_size(fo) > c->nlinks))
            return jc_fail(v, q, "must be an array of at most %u link names", c->nlinks);
        size_t k;
        json_t *n;
        json_array_foreach(fo, k, n)
        {
            snprintf(q, sizeof q, "%s.failover_order[%zu]", p, k);
            if (!json_is_string(n))
                return jc_fail(v, q, "must be a link name, got %s", jc_type_name(n));
            unsigned li = c->nlinks;
            for (unsigned l = 0; l < c->nlinks; l++)
                if (strcmp(c->links[l].name, json_string_value(n)) == 0)
                    li = l;
            if (li == c->nlinks)
                return jc_fail(v, q, "\"%s\": no such link", json_string_value(n));
            for (unsigned r = 0; r < cl->nfailover; r++)
                if (cl->failover[r] == li)
                    return jc_fail(v, q, "\"%s\": listed twice", json_string_value(n));
            cl->failover[cl->nfailover++] = li;
        }
        for (size_t o = 0; o < i; o++)
            if (strcmp(c->tunnel.classes[o].name, cl->name) == 0)
                return jc_fail(v, p, "name \"%s\" used twice", cl->name);
        c->tunnel.nclasses++;
    }
    return 0;
}

static int parse_routing(struct jc *v, json_t *root, const struct cfg_tunnel *tun,
                         struct cfg_routing *r)
{
    r->table_base = 100;
    r->rule_pref = 1000;
    r->fwmark_base = 0x100;
    r->lan_nat = true;
    r->fallback = true;
    r->fallback_after_s = 15;
    json_t *j = get_obj(v, "", root, "routing");
    if (!j)
        return v->failed ? -1 : 0;
    static const char *const keys[] = {"lan",     "table_base", "rule_pref",        "fwmark_base",
                                       "lan_nat", "fallback",   "fallback_after_s", NULL};
    if (jc_check_keys(v, "routing", j, keys))
        return -1;
    r->enabled = true;
    json_t *lan = json_object_get(j, "lan");
    if (lan) {
        if (!json_is_array(lan) || json_array_size(lan) > CFG_MAX_LAN)
            return jc_fail(v, "routing.lan", "must be an array of at most %d subnets", CFG_MAX_LAN);
        size_t i;
        json_t *e;
        json_array_foreach(lan, i, e)
        {
            char p[64];
            snprintf(p, sizeof p, "routing.lan[%zu]", i);
            if (!json_is_string(e))
                return jc_fail(v, p, "must be a string, got %s", jc_type_name(e));
            if (strlen(json_string_value(e)) >= sizeof r->lan[0])
                return jc_fail(v, p, "too long");
            str_copy(r->lan[i], json_string_value(e), sizeof r->lan[i]);
            if (check_subnet(v, p, r->lan[i]))
                return -1;
            r->nlan++;
        }
    }
    /* Tables 1..252 are free for local use (253-255 are default/main/local); we need 17. */
    if (jc_get_uint(v, "routing", j, "table_base", 1, 252 - 16, &r->table_base) ||
        jc_get_uint(v, "routing", j, "rule_pref", 1, 32000, &r->rule_pref) ||
        jc_get_uint(v, "routing", j, "fwmark_base", 1, 0x7fffff00, &r->fwmark_base) ||
        get_bool(v, "routing", j, "lan_nat", &r->lan_nat) ||
        get_bool(v, "routing", j, "fallback", &r->fallback) ||
        jc_get_uint(v, "routing", j, "fallback_after_s", 1, 3600, &r->fallback_after_s))
        return -1;
    if (!tun->enabled && r->nlan == 0)
        return jc_fail(v, "routing", "needs \"lan\" when there is no tunnel (nothing to route)");
    return 0;
}

static int parse_sections(struct jc *v, json_t *root, struct config *c)
{
    json_t *j;
    /* log */
    if ((j = get_obj(v, "", root, "log"))) {
        static const char *const keys[] = {"level", "syslog", NULL};
        if (jc_check_keys(v, "log", j, keys))
            return -1;
        char lvl[16] = "info";
        if (jc_get_str(v, "log", j, "level", false, lvl, sizeof lvl) ||
            get_bool(v, "log", j, "syslog", &c->log.syslog))
            return -1;
        if (log_level_parse(lvl, &c->log.level))
            return jc_fail(v, "log.level", "\"%s\": must be error, warn, info or debug", lvl);
    }
    if (v->failed)
        return -1;
    if (parse_tunnel(v, root, &c->tunnel))
        return -1;
    if (parse_classes(v, root, c))
        return -1;
    if (parse_routing(v, root, &c->tunnel, &c->routing))
        return -1;
    /* position: gpsd on localhost by default; modem GNSS is always the fallback */
    str_copy(c->position.gpsd_host, "localhost", sizeof c->position.gpsd_host);
    str_copy(c->position.gpsd_port, "2947", sizeof c->position.gpsd_port);
    c->position.dr_max_gap_s = 60;
    if ((j = get_obj(v, "", root, "position"))) {
        static const char *const keys[] = {"gpsd", "dead_reckoning_max_s", NULL};
        char gpsd[80] = "localhost:2947";
        if (jc_check_keys(v, "position", j, keys) ||
            jc_get_str(v, "position", j, "gpsd", false, gpsd, sizeof gpsd) ||
            jc_get_uint(v, "position", j, "dead_reckoning_max_s", 0, 600,
                        &c->position.dr_max_gap_s))
            return -1;
        if (!gpsd[0]) {
            c->position.gpsd_host[0] = '\0';
        } else {
            if (check_hostport(v, "position.gpsd", gpsd))
                return -1;
            char *colon = strrchr(gpsd, ':');
            *colon = '\0';
            str_copy(c->position.gpsd_host, gpsd, sizeof c->position.gpsd_host);
            str_copy(c->position.gpsd_port, colon + 1, sizeof c->position.gpsd_port);
        }
    }
    if (v->failed)
        return -1;
    c->coverage.enabled = true;
    c->coverage.cell_m = 50;
    c->coverage.half_life_trips = 2;
    c->coverage.horizon_s = 60;
    c->coverage.max_mb = 100;
    c->coverage.trip_idle_s = 600;
    c->coverage.margin_s = 3;
    c->coverage.min_confidence = 0.5;
    if ((j = get_obj(v, "", root, "coverage"))) {
        static const char *const keys[] = {"enabled",   "cell_m",         "half_life_trips",
                                           "horizon_s", "max_mb",         "trip_idle_s",
                                           "margin_s",  "min_confidence", NULL};
        if (jc_check_keys(v, "coverage", j, keys) ||
            get_bool(v, "coverage", j, "enabled", &c->coverage.enabled) ||
            get_double(v, "coverage", j, "cell_m", 5, 1000, &c->coverage.cell_m) ||
            get_double(v, "coverage", j, "half_life_trips", 0.5, 100,
                       &c->coverage.half_life_trips) ||
            get_double(v, "coverage", j, "horizon_s", 5, 600, &c->coverage.horizon_s) ||
            jc_get_uint(v, "coverage", j, "max_mb", 1, 100000, &c->coverage.max_mb) ||
            jc_get_uint(v, "coverage", j, "trip_idle_s", 1, 86400, &c->coverage.trip_idle_s) ||
            get_double(v, "coverage", j, "margin_s", 0, 60, &c->coverage.margin_s) ||
            get_double(v, "coverage", j, "min_confidence", 0, 1, &c->coverage.min_confidence))
            return -1;
    }
    if (v->failed)
        return -1;
    str_copy(c->board.power, "none", sizeof c->board.power);
    c->board.power_off_ms = 2000;
    str_copy(c->board.profile, "generic", sizeof c->board.profile);
    str_copy(c->board.watchdog_device, "/dev/watchdog", sizeof c->board.watchdog_device);
    c->board.watchdog_timeout_s = 30;
    str_copy(c->board.thermal_root, "/sys/class/thermal", sizeof c->board.thermal_root);
    c->board.thermal_slow_poll = true;
    if ((j = get_obj(v, "", root, "board"))) {
        static const char *const keys[] = {"power",
                                           "sim_control",
                                           "power_off_ms",
                                           "profile",
                                           "gpio_record",
                                           "watchdog_device",
                                           "watchdog_timeout_s",
                                           "thermal_root",
                                           "thermal_slow_poll",
                                           NULL};
        if (jc_check_keys(v, "board", j, keys) ||
            jc_get_str(v, "board", j, "power", false, c->board.power, sizeof c->board.power) ||
            jc_get_str(v, "board", j, "sim_control", false, c->board.sim_control,
                       sizeof c->board.sim_control) ||
            jc_get_uint(v, "board", j, "power_off_ms", 100, 60000, &c->board.power_off_ms) ||
            jc_get_str(v, "board", j, "profile", false, c->board.profile,
                       sizeof c->board.profile) ||
            jc_get_str(v, "board", j, "gpio_record", false, c->board.gpio_record,
                       sizeof c->board.gpio_record) ||
            jc_get_str(v, "board", j, "watchdog_device", false, c->board.watchdog_device,
                       sizeof c->board.watchdog_device) ||
            jc_get_uint(v, "board", j, "watchdog_timeout_s", 5, 600,
                        &c->board.watchdog_timeout_s) ||
            jc_get_str(v, "board", j, "thermal_root", false, c->board.thermal_root,
                       sizeof c->board.thermal_root) ||
            get_bool(v, "board", j, "thermal_slow_poll", &c->board.thermal_slow_poll))
            return -1;
        if (strcmp(c->board.power, "none") != 0 && strcmp(c->board.power, "sim") != 0 &&
            strcmp(c->board.power, "gpio") != 0)
            return jc_fail(v, "board.power", "\"%s\": must be \"none\", \"sim\" or \"gpio\"",
                           c->board.power);
        if (strcmp(c->board.power, "sim") == 0 && !c->board.sim_control[0])
            return jc_fail(v, "board.sim_control",
                           "missing (required when board.power is \"sim\")");
        if (!c->board.profile[0])
            return jc_fail(v, "board.profile", "must not be empty (\"generic\" fits any box)");
        /* check-config proves the profile too: its errors name the profile file and key. */
        struct board_profile bp;
        char perr[384];
        if (board_profile_load(c->board.profile, NULL, &bp, perr, sizeof perr) != 0)
            return jc_fail(v, "board.profile", "%s", perr);
        if (c->board.watchdog_device[0] &&
            check_abs_path(v, "board.watchdog_device", c->board.watchdog_device))
            return -1;
        if (check_abs_path(v, "board.thermal_root", c->board.thermal_root))
            return -1;
        if (c->board.gpio_record[0] && strcmp(c->board.gpio_record, "-") != 0 &&
            check_abs_path(v, "board.gpio_record", c->board.gpio_record))
            return -1;
    }
    if (v->failed)
        return -1;
    if ((j = get_obj(v, "", root, "dashboard"))) {
        static const char *const keys[] = {"listen", "password_hash", "read_only_public", NULL};
        if (jc_check_keys(v, "dashboard", j, keys))
            return -1;
        c->dashboard.enabled = true;
        c->dashboard.read_only_public = true;
        str_copy(c->dashboard.listen, "127.0.0.1:8080", sizeof c->dashboard.listen);
        if (jc_get_str(v, "dashboard", j, "listen", false, c->dashboard.listen,
                       sizeof c->dashboard.listen) ||
            check_hostport(v, "dashboard.listen", c->dashboard.listen) ||
            jc_get_str(v, "dashboard", j, "password_hash", false, c->dashboard.password_hash,
                       sizeof c->dashboard.password_hash) ||
            get_bool(v, "dashboard", j, "read_only_public", &c->dashboard.read_only_public))
            return -1;
        if (c->dashboard.password_hash[0] &&
            strncmp(c->dashboard.password_hash, "$argon2id$", 10) != 0)
            return jc_fail(v, "dashboard.password_hash",
                           "must be an argon2id hash as printed by `corridor passwd`");
    }
    if (v->failed)
        return -1;
    if ((j = get_obj(v, "", root, "telemetry"))) {
        static const char *const keys[] = {
            "batch_seconds",    "upload_url",     "token_file",         "quota_mb", "balance_alert",
            "upload_rate_kbps", "storage_device", "storage_interval_s", NULL};
        if (jc_check_keys(v, "telemetry", j, keys))
            return -1;
        struct cfg_telemetry *t = &c->telemetry;
        t->enabled = true;
        t->batch_seconds = 600;
        t->quota_mb = 512;
        t->upload_rate_kbps = 512;
        t->storage_interval_s = 600;
        str_copy(t->storage_device, "auto", sizeof t->storage_device);
        if (jc_get_uint(v, "telemetry", j, "batch_seconds", 10, 86400, &t->batch_seconds) ||
            jc_get_uint(v, "telemetry", j, "upload_rate_kbps", 8, 1000000, &t->upload_rate_kbps) ||
            jc_get_str(v, "telemetry", j, "storage_device", false, t->storage_device,
                       sizeof t->storage_device) ||
            jc_get_uint(v, "telemetry", j, "storage_interval_s", 60, 86400,
                        &t->storage_interval_s) ||
            jc_get_str(v, "telemetry", j, "upload_url", false, t->upload_url,
                       sizeof t->upload_url) ||
            jc_get_str(v, "telemetry", j, "token_file", false, t->token_file,
                       sizeof t->token_file) ||
            jc_get_uint(v, "telemetry", j, "quota_mb", 1, 1048576, &t->quota_mb) ||
            get_double(v, "telemetry", j, "balance_alert", 0, 1e9, &t->balance_alert))
            return -1;
        if (t->upload_url[0] && strncmp(t->upload_url, "https://", 8) != 0 &&
            strncmp(t->upload_url, "http://", 7) != 0)
            return jc_fail(v, "telemetry.upload_url", "\"%s\": must be an http(s):// URL",
                           t->upload_url);
    }
    if (v->failed)
        return -1;
    return 0;
}

/* "config_version": the format this file is written for (absent = 1). A file from a newer
 * corridor is refused rather than half-understood: a key whose meaning changed would otherwise
 * be read with the old meaning. Rule (docs/configuration.md): the version only goes up when an
 * existing key changes meaning or a new key becomes required; older versions stay accepted
 * and are migrated here, in memory. Checked before anything else so that this, not some
 * unknown-key error, is the message an operator sees after a downgrade. */
#define CONFIG_VERSION_CURRENT 1

static int check_config_version(struct jc *v, json_t *root)
{
    json_t *j = json_object_get(root, "config_version");
    if (!j)
        return 0;
    if (!json_is_integer(j))
        return jc_fail(v, "config_version", "must be an integer, got %s", jc_type_name(j));
    json_int_t ver = json_integer_value(j);
    if (ver < 1)
        return jc_fail(v, "config_version", "must be 1 or higher, got %lld", (long long)ver);
    if (ver > CONFIG_VERSION_CURRENT)
        return jc_fail(v, "config_version",
                       "%lld is newer than this corridor (%s) understands (up to %d): upgrade "
                       "corridor, or use a configuration written for version %d",
                       (long long)ver, CORRIDOR_VERSION, CONFIG_VERSION_CURRENT,
                       CONFIG_VERSION_CURRENT);
    return 0;
}

int config_parse(const char *json, size_t len, const char *name, struct config *out, char *err,
                 size_t errlen)
{
    struct jc v = {.src = name, .doc = "docs/configuration.md", .err = err, .errlen = errlen};
    memset(out, 0, sizeof *out);
    out->log.level = LOGL_INFO;
    str_copy(out->path, name, sizeof out->path);
    if (errlen)
        err[0] = '\0';

    json_error_t je;
    /* REJECT_DUPLICATES: two "links" keys would otherwise silently keep the last one. */
    json_t *root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &je);
    if (!root) {
        snprintf(err, errlen, "%s: line %d column %d: %s", name, je.line, je.column, je.text);
        return -1;
    }
    int rc = -1;
    if (!json_is_object(root)) {
        jc_fail(&v, "(top level)", "must be a JSON object, got %s", jc_type_name(root));
        goto out;
    }
    static const char *const keys[] = {"vehicle_id",     "data_dir", "links",     "log",
                                       "tunnel",         "routing",  "dashboard", "telemetry",
                                       "control_socket", "board",    "position",  "coverage",
                                       "config_version", NULL};
    if (check_config_version(&v, root) || jc_check_keys(&v, "", root, keys))
        goto out;
    if (jc_get_str(&v, "", root, "vehicle_id", true, out->vehicle_id, sizeof out->vehicle_id) ||
        jc_check_name(&v, "vehicle_id", out->vehicle_id) ||
        jc_get_str(&v, "", root, "data_dir", true, out->data_dir, sizeof out->data_dir) ||
        check_abs_path(&v, "data_dir", out->data_dir))
        goto out;
    snprintf(out->control_socket, sizeof out->control_socket, "/run/corridor/control.sock");
    if (jc_get_str(&v, "", root, "control_socket", false, out->control_socket,
                   sizeof out->control_socket) ||
        check_abs_path(&v, "control_socket", out->control_socket))
        goto out;
    if (parse_links(&v, root, out) || parse_sections(&v, root, out))
        goto out;
    rc = 0;
out:
    json_decref(root);
    return rc;
}

int config_load(const char *path, struct config *out, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    /* A config file is small; refuse anything absurd rather than reading it all. */
    char *buf = malloc(1 << 20);
    if (!buf) {
        fclose(f);
        snprintf(err, errlen, "%s: out of memory", path);
        return -1;
    }
    size_t n = fread(buf, 1, 1 << 20, f);
    int rerr = ferror(f);
    int more = !feof(f) && fgetc(f) != EOF;
    fclose(f);
    int rc;
    if (rerr) {
        snprintf(err, errlen, "%s: read error", path);
        rc = -1;
    } else if (more) {
        snprintf(err, errlen, "%s: larger than 1 MiB, not a corridor config", path);
        rc = -1;
    } else {
        rc = config_parse(buf, n, path, out, err, errlen);
    }
    free(buf);
    return rc;
}
