/* profile: board profiles (JSON). See board.h and docs/board.md for the format.
 *
 * Same discipline as the main configuration: jansson parses, the walk below keeps the key path
 * in hand, unknown keys are errors (a typo in "active_low" must not silently invert a power
 * line), and the first error wins because it is the one to fix first. */
#include "board/board.h"
#include "common/common.h"
#include "common/jsoncheck.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef CORRIDOR_BOARD_PROFILE_DIR
#define CORRIDOR_BOARD_PROFILE_DIR "/usr/share/corridor/boards"
#endif

/* A profile is a few KiB; anything much bigger is not a profile (and must not be slurped). */
#define PROFILE_MAX_BYTES (256u * 1024u)

static int get_temp(struct jc *v, const char *path, json_t *obj, const char *key, double *dst)
{
    char p[200];
    jc_child(p, sizeof p, path, key);
    json_t *j = json_object_get(obj, key);
    if (!j)
        return jc_fail(v, p, "missing (required)");
    if (!json_is_number(j))
        return jc_fail(v, p, "must be a temperature in degC (-40..150), got %s", jc_type_name(j));
    double x = json_number_value(j);
    if (!(x >= -40 && x <= 150))
        return jc_fail(v, p, "must be in -40..150 degC, got %g", x);
    *dst = x;
    return 0;
}

/* USB port paths as sysfs names them: bus "-" port {"." port}, e.g. "1-1.2". */
static int check_usb(struct jc *v, const char *path, const char *s)
{
    const char *c = s;
    bool ok = isdigit((unsigned char)*c);
    while (isdigit((unsigned char)*c))
        c++;
    ok = ok && *c == '-';
    while (ok && (*c == '-' || *c == '.')) {
        c++;
        ok = isdigit((unsigned char)*c);
        while (isdigit((unsigned char)*c))
            c++;
    }
    if (!ok || *c)
        return jc_fail(v, path, "\"%s\": must be a USB port path like \"1-1.2\"", s);
    return 0;
}

static int get_line(struct jc *v, const char *path, json_t *obj, const char *key,
                    struct board_line *out)
{
    char p[200];
    jc_child(p, sizeof p, path, key);
    json_t *j = json_object_get(obj, key);
    memset(out, 0, sizeof *out);
    out->offset = -1;
    if (!j || json_is_null(j))
        return 0;
    if (!json_is_object(j))
        return jc_fail(v, p, "must be an object {\"chip\", \"line\", \"active_low\"}, got %s",
                       jc_type_name(j));
    static const char *const keys[] = {"chip", "line", "active_low", NULL};
    if (jc_check_keys(v, p, j, keys) ||
        jc_get_str(v, p, j, "chip", true, out->chip, sizeof out->chip))
        return -1;
    char lp[220];
    jc_child(lp, sizeof lp, p, "line");
    json_t *l = json_object_get(j, "line");
    if (!l)
        return jc_fail(v, lp, "missing (required: an offset or a line name)");
    if (json_is_integer(l)) {
        json_int_t x = json_integer_value(l);
        if (x < 0 || x > 1023)
            return jc_fail(v, lp, "offset must be in 0..1023, got %lld", (long long)x);
        out->offset = (int)x;
    } else if (json_is_string(l)) {
        if (jc_get_str(v, p, j, "line", true, out->name, sizeof out->name) ||
            jc_check_name(v, lp, out->name))
            return -1;
    } else {
        return jc_fail(v, lp, "must be an offset (integer) or a line name (string), got %s",
                       jc_type_name(l));
    }
    json_t *al = json_object_get(j, "active_low");
    if (al) {
        if (!json_is_boolean(al)) {
            char ap[220];
            jc_child(ap, sizeof ap, p, "active_low");
            return jc_fail(v, ap, "must be true or false, got %s", jc_type_name(al));
        }
        out->active_low = json_is_true(al);
    }
    out->present = true;
    return 0;
}

static bool same_line(const struct board_line *a, const struct board_line *b)
{
    return a->present && b->present && strcmp(a->chip, b->chip) == 0 &&
           (a->offset >= 0 ? a->offset == b->offset : strcmp(a->name, b->name) == 0);
}

static int parse_slots(struct jc *v, json_t *root, struct board_profile *p)
{
    json_t *arr = json_object_get(root, "slots");
    if (!arr)
        return 0;
    if (!json_is_array(arr))
        return jc_fail(v, "slots", "must be an array, got %s", jc_type_name(arr));
    if (json_array_size(arr) > BOARD_MAX_SLOTS)
        return jc_fail(v, "slots", "at most %d slots, got %zu", BOARD_MAX_SLOTS,
                       json_array_size(arr));
    size_t i;
    json_t *j;
    json_array_foreach(arr, i, j)
    {
        char path[64];
        snprintf(path, sizeof path, "slots[%zu]", i);
        if (!json_is_object(j))
            return jc_fail(v, path, "must be an object, got %s", jc_type_name(j));
        struct board_slot *s = &p->slots[i];
        static const char *const keys[] = {"name", "link", "usb", "power", "reset", NULL};
        char np[80], lp[80], up[80];
        jc_child(np, sizeof np, path, "name");
        jc_child(lp, sizeof lp, path, "link");
        jc_child(up, sizeof up, path, "usb");
        if (jc_check_keys(v, path, j, keys) ||
            jc_get_str(v, path, j, "name", true, s->name, sizeof s->name) ||
            jc_check_name(v, np, s->name) ||
            jc_get_str(v, path, j, "link", false, s->link, sizeof s->link) ||
            jc_check_name(v, lp, s->link) ||
            jc_get_str(v, path, j, "usb", false, s->usb, sizeof s->usb) ||
            (s->usb[0] && check_usb(v, up, s->usb)) || get_line(v, path, j, "power", &s->power) ||
            get_line(v, path, j, "reset", &s->reset))
            return -1;
        for (size_t k = 0; k < i; k++) {
            const struct board_slot *o = &p->slots[k];
            if (strcmp(o->name, s->name) == 0)
                return jc_fail(v, np, "\"%s\" is also slots[%zu].name", s->name, k);
            if (s->link[0] && strcmp(o->link, s->link) == 0)
                return jc_fail(v, lp, "\"%s\" is also slots[%zu].link", s->link, k);
        }
        p->nslots = (unsigned)i + 1;
    }
    return 0;
}

static int parse_thermal(struct jc *v, json_t *root, struct board_profile *p)
{
    json_t *arr = json_object_get(root, "thermal");
    if (!arr)
        return 0;
    if (!json_is_array(arr))
        return jc_fail(v, "thermal", "must be an array, got %s", jc_type_name(arr));
    if (json_array_size(arr) > BOARD_MAX_ZONES)
        return jc_fail(v, "thermal", "at most %d zones, got %zu", BOARD_MAX_ZONES,
                       json_array_size(arr));
    size_t i;
    json_t *j;
    json_array_foreach(arr, i, j)
    {
        char path[64], zp[80], cp[80];
        snprintf(path, sizeof path, "thermal[%zu]", i);
        jc_child(zp, sizeof zp, path, "zone");
        jc_child(cp, sizeof cp, path, "crit_c");
        if (!json_is_object(j))
            return jc_fail(v, path, "must be an object, got %s", jc_type_name(j));
        struct board_zone *z = &p->zones[i];
        static const char *const keys[] = {"zone", "warn_c", "crit_c", NULL};
        if (jc_check_keys(v, path, j, keys) ||
            jc_get_str(v, path, j, "zone", true, z->zone, sizeof z->zone))
            return -1;
        /* The zone becomes a path component under the thermal root: no "..", no '/'. */
        if (strcmp(z->zone, "*") != 0 &&
            (jc_check_name(v, zp, z->zone) || strncmp(z->zone, "thermal_zone", 12) != 0))
            return jc_fail(v, zp, "\"%s\": must be \"thermal_zoneN\" or \"*\"", z->zone);
        if (get_temp(v, path, j, "warn_c", &z->warn_c) ||
            get_temp(v, path, j, "crit_c", &z->crit_c))
            return -1;
        if (z->crit_c <= z->warn_c)
            return jc_fail(v, cp, "%g must be above warn_c (%g)", z->crit_c, z->warn_c);
        p->nzones = (unsigned)i + 1;
    }
    return 0;
}

static int parse_leds(struct jc *v, json_t *root, struct board_profile *p)
{
    json_t *j = json_object_get(root, "leds");
    if (!j)
        return 0;
    if (!json_is_object(j))
        return jc_fail(v, "leds", "must be an object, got %s", jc_type_name(j));
    static const char *const keys[] = {"status", "link", NULL};
    return jc_check_keys(v, "leds", j, keys) || get_line(v, "leds", j, "status", &p->led_status) ||
                   get_line(v, "leds", j, "link", &p->led_link)
               ? -1
               : 0;
}

/* Two functions on one line would fight over it (one powers a modem, the other resets it). */
static int check_line_reuse(struct jc *v, const struct board_profile *p)
{
    struct {
        const struct board_line *l;
        char path[48];
    } all[BOARD_MAX_SLOTS * 2 + 2];
    size_t n = 0;
    for (unsigned i = 0; i < p->nslots; i++) {
        all[n].l = &p->slots[i].power;
        snprintf(all[n++].path, sizeof all[0].path, "slots[%u].power", i);
        all[n].l = &p->slots[i].reset;
        snprintf(all[n++].path, sizeof all[0].path, "slots[%u].reset", i);
    }
    all[n].l = &p->led_status;
    str_copy(all[n++].path, "leds.status", sizeof all[0].path);
    all[n].l = &p->led_link;
    str_copy(all[n++].path, "leds.link", sizeof all[0].path);
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; k < i; k++)
            if (same_line(all[i].l, all[k].l))
                return jc_fail(v, all[i].path, "same GPIO line as %s", all[k].path);
    return 0;
}

static void defaults(struct board_profile *p)
{
    memset(p, 0, sizeof *p);
    p->off_ms = 2000;
    p->reset_pulse_ms = 200;
    p->led_status.offset = p->led_link.offset = -1;
}

void board_profile_generic(struct board_profile *p)
{
    defaults(p);
    str_copy(p->name, "generic", sizeof p->name);
    str_copy(p->source, "built-in", sizeof p->source);
    str_copy(p->description, "any Linux box: no GPIO lines, every thermal zone watched",
             sizeof p->description);
    p->nzones = 1;
    str_copy(p->zones[0].zone, "*", sizeof p->zones[0].zone);
    p->zones[0].warn_c = 80;
    p->zones[0].crit_c = 90;
}

int board_profile_parse(const char *json, size_t len, const char *source, struct board_profile *p,
                        char *err, size_t errlen)
{
    struct jc v = {.src = source, .doc = "docs/board.md", .err = err, .errlen = errlen};
    defaults(p);
    json_error_t je;
    json_t *root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &je);
    if (!root)
        return jc_fail(&v, "", "line %d column %d: %s", je.line, je.column, je.text);
    int rc = -1;
    if (!json_is_object(root)) {
        jc_fail(&v, "", "must be a JSON object, got %s", jc_type_name(root));
        goto out;
    }
    static const char *const keys[] = {"name",    "description", "power_cycle", "slots",
                                       "thermal", "storage",     "leds",        NULL};
    if (jc_check_keys(&v, "", root, keys) ||
        jc_get_str(&v, "", root, "name", true, p->name, sizeof p->name) ||
        jc_check_name(&v, "name", p->name) ||
        jc_get_str(&v, "", root, "description", false, p->description, sizeof p->description) ||
        jc_get_str(&v, "", root, "storage", false, p->storage, sizeof p->storage) ||
        jc_check_name(&v, "storage", p->storage))
        goto out;
    json_t *pc = json_object_get(root, "power_cycle");
    if (pc) {
        static const char *const pk[] = {"off_ms", "reset_pulse_ms", "boot_wait_ms", NULL};
        if (!json_is_object(pc)) {
            jc_fail(&v, "power_cycle", "must be an object, got %s", jc_type_name(pc));
            goto out;
        }
        /* Bounded: the modem thread blocks for their sum (its liveness limit includes it). */
        if (jc_check_keys(&v, "power_cycle", pc, pk) ||
            jc_get_uint(&v, "power_cycle", pc, "off_ms", 0, 60000, &p->off_ms) ||
            jc_get_uint(&v, "power_cycle", pc, "reset_pulse_ms", 0, 10000, &p->reset_pulse_ms) ||
            jc_get_uint(&v, "power_cycle", pc, "boot_wait_ms", 0, 60000, &p->boot_wait_ms))
            goto out;
        if (p->off_ms < 100) {
            jc_fail(&v, "power_cycle.off_ms", "must be at least 100 ms, got %u", p->off_ms);
            goto out;
        }
    }
    if (parse_slots(&v, root, p) || parse_thermal(&v, root, p) || parse_leds(&v, root, p) ||
        check_line_reuse(&v, p))
        goto out;
    str_copy(p->source, source, sizeof p->source);
    rc = 0;
out:
    json_decref(root);
    return rc;
}

int board_profile_load(const char *name_or_path, const char *dir, struct board_profile *p,
                       char *err, size_t errlen)
{
    if (!name_or_path || !name_or_path[0] || strcmp(name_or_path, "generic") == 0) {
        board_profile_generic(p);
        return 0;
    }
    char path[512];
    if (strchr(name_or_path, '/')) {
        str_copy(path, name_or_path, sizeof path);
    } else {
        for (const char *c = name_or_path; *c; c++)
            if (!isalnum((unsigned char)*c) && *c != '-' && *c != '_' && *c != '.') {
                snprintf(err, errlen,
                         "board profile \"%s\": not a profile name (letters, digits, '-', '_', "
                         "'.') nor a path",
                         name_or_path);
                return -1;
            }
        snprintf(path, sizeof path, "%s/%s.json", dir && dir[0] ? dir : CORRIDOR_BOARD_PROFILE_DIR,
                 name_or_path);
    }
    /* Non-blocking open and a regular-file check: a FIFO or a device named as the profile
     * must fail, not hang the start (or a fuzzer) in open() or read(). */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    struct stat stt;
    if (fd < 0 || fstat(fd, &stt) != 0 || !S_ISREG(stt.st_mode)) {
        snprintf(err, errlen, "board profile %s: %s", path,
                 fd < 0 ? strerror(errno) : "not a regular file");
        if (fd >= 0)
            close(fd);
        return -1;
    }
    FILE *f = fdopen(fd, "rb");
    if (!f) {
        snprintf(err, errlen, "board profile %s: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    char *buf = malloc(PROFILE_MAX_BYTES + 1);
    if (!buf) {
        fclose(f);
        snprintf(err, errlen, "board profile %s: out of memory", path);
        return -1;
    }
    size_t len = fread(buf, 1, PROFILE_MAX_BYTES + 1, f);
    bool bad = ferror(f);
    fclose(f);
    int rc = -1;
    if (bad)
        snprintf(err, errlen, "board profile %s: read error", path);
    else if (len > PROFILE_MAX_BYTES)
        snprintf(err, errlen, "board profile %s: larger than %u bytes", path, PROFILE_MAX_BYTES);
    else
        rc = board_profile_parse(buf, len, path, p, err, errlen);
    free(buf);
    return rc;
}

const struct board_slot *board_profile_slot(const struct board_profile *p, const char *link)
{
    for (unsigned i = 0; i < p->nslots; i++)
        if (p->slots[i].link[0] && strcmp(p->slots[i].link, link) == 0)
            return &p->slots[i];
    for (unsigned i = 0; i < p->nslots; i++)
        if (!p->slots[i].link[0] && strcmp(p->slots[i].name, link) == 0)
            return &p->slots[i];
    return NULL;
}
