/* scenario: load the simulator's scenario JSON and evaluate a modem's radio state at a time.
 * Every error names the JSON key path ("modems[1].timeline[3].rsrp: expected a number"). */
#include "sim.h"

#include "common/common.h"

#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char *const field_keys[F_N] = {
    [F_RSRP] = "rsrp", [F_RSRQ] = "rsrq",    [F_SINR] = "sinr",       [F_RSSI] = "rssi",
    [F_CSQ] = "csq",   [F_RSCP] = "rscp",    [F_ECIO] = "ecio",       [F_LAT] = "lat",
    [F_LON] = "lon",   [F_ALT] = "alt",      [F_SPEED] = "speed_kmh", [F_COURSE] = "course",
    [F_TAC] = "tac",   [F_CELL] = "cell_id", [F_PCI] = "pci",         [F_CHANNEL] = "channel",
    [F_BW] = "bw",     [F_FIX] = "fix",      [F_REG] = "reg",         [F_RAT] = "rat",
};

const char *sim_field_key(enum sim_field f)
{
    return (unsigned)f < F_N ? field_keys[f] : "?";
}

int sim_field_parse(const char *key, enum sim_field *out)
{
    for (int i = 0; i < F_N; i++)
        if (strcmp(key, field_keys[i]) == 0) {
            *out = (enum sim_field)i;
            return 0;
        }
    return -1;
}

static const char *const fault_names[SIM_FAULT_N] = {"silence", "hang",   "garbage",
                                                     "reboot",  "vanish", "cpsi_error"};

const char *sim_fault_name(enum sim_fault_kind k)
{
    return (unsigned)k < SIM_FAULT_N ? fault_names[k] : "?";
}

int sim_fault_parse(const char *s, enum sim_fault_kind *out)
{
    for (int i = 0; i < SIM_FAULT_N; i++)
        if (strcmp(s, fault_names[i]) == 0) {
            *out = (enum sim_fault_kind)i;
            return 0;
        }
    return -1;
}

static const struct {
    const char *name;
    enum sim_reg v;
} reg_names[] = {
    {"not_registered", SIM_REG_NOT_REGISTERED},
    {"home", SIM_REG_HOME},
    {"searching", SIM_REG_SEARCHING},
    {"denied", SIM_REG_DENIED},
    {"unknown", SIM_REG_UNKNOWN},
    {"roaming", SIM_REG_ROAMING},
};

int sim_reg_parse(const char *s, enum sim_reg *out)
{
    for (size_t i = 0; i < sizeof(reg_names) / sizeof(reg_names[0]); i++)
        if (strcmp(s, reg_names[i].name) == 0) {
            *out = reg_names[i].v;
            return 0;
        }
    return -1;
}

const char *sim_reg_name(enum sim_reg r)
{
    for (size_t i = 0; i < sizeof(reg_names) / sizeof(reg_names[0]); i++)
        if (reg_names[i].v == r)
            return reg_names[i].name;
    return "?";
}

static const char *const rat_names[] = {"none", "gsm", "wcdma", "lte"};

int sim_rat_parse(const char *s, enum sim_rat *out)
{
    for (int i = 0; i < 4; i++)
        if (strcmp(s, rat_names[i]) == 0) {
            *out = (enum sim_rat)i;
            return 0;
        }
    return -1;
}

const char *sim_rat_name(enum sim_rat r)
{
    return (unsigned)r < 4 ? rat_names[r] : "?";
}

/* ---- loading ------------------------------------------------------------------------------ */

struct ctx {
    const char *file;
    char *err;
    size_t errlen;
};

/* dst = path + "." + key (or just key at the root), truncated to n: builds the key paths that
 * error messages name. No printf, so no truncation warnings to silence. */
static void keypath(char *dst, size_t n, const char *path, const char *key)
{
    size_t off = str_copy(dst, path, n);
    if (off >= n)
        return;
    if (*path && off + 1 < n) {
        dst[off++] = '.';
        dst[off] = '\0';
    }
    str_copy(dst + off, key, n - off);
}

__attribute__((format(printf, 3, 4))) static int fail(struct ctx *c, const char *path,
                                                      const char *fmt, ...)
{
    char what[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    snprintf(c->err, c->errlen, "%s: %s: %s", c->file, path, what);
    return -1;
}

/* Optional string member copied into dst (bounded); -1 on wrong type or too long. */
static int get_str(struct ctx *c, json_t *obj, const char *key, const char *path, char *dst,
                   size_t n, bool required)
{
    json_t *v = json_object_get(obj, key);
    char p[256];
    keypath(p, sizeof(p), path, key);
    if (!v)
        return required ? fail(c, p, "missing (required string)") : 0;
    if (!json_is_string(v))
        return fail(c, p, "expected a string");
    if (strlen(json_string_value(v)) >= n)
        return fail(c, p, "too long (max %zu characters)", n - 1);
    snprintf(dst, n, "%s", json_string_value(v));
    return 0;
}

static int get_num(struct ctx *c, json_t *obj, const char *key, const char *path, double *dst,
                   double lo, double hi)
{
    json_t *v = json_object_get(obj, key);
    char p[256];
    keypath(p, sizeof(p), path, key);
    if (!v)
        return 0;
    if (!json_is_number(v))
        return fail(c, p, "expected a number");
    double d = json_number_value(v);
    if (!(d >= lo && d <= hi))
        return fail(c, p, "%g out of range [%g, %g]", d, lo, hi);
    *dst = d;
    return 0;
}

static int get_bool(struct ctx *c, json_t *obj, const char *key, const char *path, bool *dst)
{
    json_t *v = json_object_get(obj, key);
    char p[256];
    keypath(p, sizeof(p), path, key);
    if (!v)
        return 0;
    if (!json_is_boolean(v))
        return fail(c, p, "expected true or false");
    *dst = json_is_true(v);
    return 0;
}

/* Refuse keys the format does not know (a typo would otherwise be silently ignored). */
static int check_keys(struct ctx *c, json_t *obj, const char *path, const char *const *allowed)
{
    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v)
    {
        bool ok = strcmp(key, "comment") == 0;
        for (const char *const *a = allowed; *a && !ok; a++)
            ok = strcmp(key, *a) == 0;
        if (!ok) {
            char p[300];
            keypath(p, sizeof(p), path, key);
            return fail(c, p, "unknown key");
        }
    }
    return 0;
}

static bool all_digits(const char *s, size_t lo, size_t hi)
{
    size_t n = strlen(s);
    if (n < lo || n > hi)
        return false;
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return false;
    return true;
}

/* Field ranges: generous but bounded so replies always fit their formats. */
static const double field_lo[F_N] = {
    [F_RSRP] = -160, [F_RSRQ] = -40, [F_SINR] = -30, [F_RSSI] = -130, [F_CSQ] = 0,
    [F_RSCP] = -130, [F_ECIO] = -40, [F_LAT] = -90,  [F_LON] = -180,  [F_ALT] = -1000,
    [F_SPEED] = 0,   [F_COURSE] = 0, [F_TAC] = 0,    [F_CELL] = 0,    [F_PCI] = 0,
    [F_CHANNEL] = 0, [F_BW] = 0,     [F_FIX] = 0,    [F_REG] = 0,     [F_RAT] = 0,
};
static const double field_hi[F_N] = {
    [F_RSRP] = -20,   [F_RSRQ] = 10,
    [F_SINR] = 50,    [F_RSSI] = 0,
    [F_CSQ] = 99,     [F_RSCP] = -10,
    [F_ECIO] = 0,     [F_LAT] = 90,
    [F_LON] = 180,    [F_ALT] = 20000,
    [F_SPEED] = 2000, [F_COURSE] = 360,
    [F_TAC] = 65535,  [F_CELL] = 4294967295.0,
    [F_PCI] = 1007,   [F_CHANNEL] = 4294967295.0,
    [F_BW] = 10,      [F_FIX] = 1,
    [F_REG] = 5,      [F_RAT] = 3,
};

static int load_keyframe(struct ctx *c, json_t *o, const char *path, struct sim_keyframe *kf)
{
    memset(kf, 0, sizeof(*kf));
    if (!json_is_object(o))
        return fail(c, path, "expected an object");
    char p[256];
    json_t *t = json_object_get(o, "t");
    if (!t || !json_is_number(t) || json_number_value(t) < 0)
        return fail(c, path, "\"t\" (seconds >= 0) is required");
    kf->t = json_number_value(t);
    const char *key;
    json_t *v;
    json_object_foreach(o, key, v)
    {
        keypath(p, sizeof(p), path, key);
        if (strcmp(key, "t") == 0 || strcmp(key, "comment") == 0)
            continue;
        if (strcmp(key, "band") == 0) {
            if (get_str(c, o, "band", path, kf->band, sizeof(kf->band), false) < 0)
                return -1;
            kf->has_band = true;
            continue;
        }
        enum sim_field f;
        if (sim_field_parse(key, &f) < 0)
            return fail(c, p, "unknown key");
        double d;
        if (f == F_REG) {
            enum sim_reg r;
            if (!json_is_string(v) || sim_reg_parse(json_string_value(v), &r) < 0)
                return fail(c, p,
                            "expected one of home, roaming, searching, denied, "
                            "not_registered, unknown");
            d = r;
        } else if (f == F_RAT) {
            enum sim_rat r;
            if (!json_is_string(v) || sim_rat_parse(json_string_value(v), &r) < 0)
                return fail(c, p, "expected one of lte, wcdma, gsm, none");
            d = r;
        } else if (f == F_FIX) {
            if (!json_is_boolean(v))
                return fail(c, p, "expected true or false");
            d = json_is_true(v);
        } else {
            if (!json_is_number(v))
                return fail(c, p, "expected a number");
            d = json_number_value(v);
            if (!(d >= field_lo[f] && d <= field_hi[f]))
                return fail(c, p, "%g out of range [%g, %g]", d, field_lo[f], field_hi[f]);
        }
        kf->v[f] = d;
        kf->mask |= 1u << f;
    }
    return 0;
}

static int load_ussd(struct ctx *c, json_t *o, const char *path, struct sim_ussd *u)
{
    memset(u, 0, sizeof(*u));
    u->dcs = -1;
    u->delay_s = 1.5;
    if (!json_is_object(o))
        return fail(c, path, "expected an object");
    static const char *const keys[] = {"code", "text", "encoding", "order",
                                       "dcs",  "m",    "delay_s",  NULL};
    if (check_keys(c, o, path, keys) < 0)
        return -1;
    char enc[16] = "auto", order[16] = "after_ok";
    double dcs = -1, m = 0;
    if (get_str(c, o, "code", path, u->code, sizeof(u->code), true) < 0 ||
        get_str(c, o, "text", path, u->text, sizeof(u->text), true) < 0 ||
        get_str(c, o, "encoding", path, enc, sizeof(enc), false) < 0 ||
        get_str(c, o, "order", path, order, sizeof(order), false) < 0 ||
        get_num(c, o, "dcs", path, &dcs, -1, 255) < 0 || get_num(c, o, "m", path, &m, 0, 5) < 0 ||
        get_num(c, o, "delay_s", path, &u->delay_s, 0, 600) < 0)
        return -1;
    char p[256];
    if (strcmp(enc, "auto") == 0)
        u->enc = USSD_AUTO;
    else if (strcmp(enc, "gsm7") == 0)
        u->enc = USSD_GSM7;
    else if (strcmp(enc, "gsm7_packed") == 0)
        u->enc = USSD_GSM7_PACKED;
    else if (strcmp(enc, "ucs2") == 0)
        u->enc = USSD_UCS2;
    else {
        keypath(p, sizeof(p), path, "encoding");
        return fail(c, p, "expected auto, gsm7, gsm7_packed or ucs2");
    }
    if (strcmp(order, "after_ok") == 0)
        u->before_ok = false;
    else if (strcmp(order, "before_ok") == 0)
        u->before_ok = true;
    else {
        keypath(p, sizeof(p), path, "order");
        return fail(c, p, "expected after_ok or before_ok");
    }
    u->dcs = (int)dcs;
    u->m = (int)m;
    /* the encoded text must fit one reply */
    char tmp[SIM_OUT_MAX / 2];
    if ((u->enc == USSD_UCS2 || u->enc == USSD_AUTO) &&
        sim_enc_ucs2_hex(u->text, tmp, sizeof(tmp)) < 0) {
        keypath(p, sizeof(p), path, "text");
        return fail(c, p, "not valid UTF-8 in the Basic Multilingual Plane");
    }
    if (u->enc == USSD_GSM7_PACKED && sim_enc_gsm7_packed_hex(u->text, tmp, sizeof(tmp)) < 0) {
        keypath(p, sizeof(p), path, "text");
        return fail(c, p, "has characters outside the GSM 7-bit default alphabet");
    }
    return 0;
}

static int cmp_kf(const void *a, const void *b)
{
    double x = ((const struct sim_keyframe *)a)->t, y = ((const struct sim_keyframe *)b)->t;
    return x < y ? -1 : x > y;
}

static int load_modem(struct ctx *c, json_t *o, const char *path, struct sim_modem_cfg *m,
                      bool have_route)
{
    char p[256];
    if (!json_is_object(o))
        return fail(c, path, "expected an object");
    const char *allowed[] = {"name", "path",     "family",      "identity",      "operator",
                             "sim",  "boot_s",   "reboot_s",    "reboot_vanish", "first_cpsi_error",
                             "echo", "cmee",     "interpolate", "gnss",          "seed",
                             "ussd", "timeline", "faults",      "comment"};
    const char *key;
    json_t *v;
    json_object_foreach(o, key, v)
    {
        bool ok = false;
        for (size_t i = 0; i < sizeof(allowed) / sizeof(allowed[0]); i++)
            ok = ok || strcmp(key, allowed[i]) == 0;
        if (!ok) {
            keypath(p, sizeof(p), path, key);
            return fail(c, p, "unknown key");
        }
    }
    snprintf(m->sim, sizeof(m->sim), "ready");
    m->boot_s = 0.5;
    m->reboot_s = 5;
    m->first_cpsi_error = true;
    m->echo = true;
    m->use_route = have_route;
    char family[16] = "simcom", interp[16] = "linear", gnss[16] = "";
    double cmee = 0, seed = 1;
    if (get_str(c, o, "name", path, m->name, sizeof(m->name), true) < 0 ||
        get_str(c, o, "path", path, m->path, sizeof(m->path), true) < 0 ||
        get_str(c, o, "family", path, family, sizeof(family), false) < 0 ||
        get_str(c, o, "sim", path, m->sim, sizeof(m->sim), false) < 0 ||
        get_str(c, o, "interpolate", path, interp, sizeof(interp), false) < 0 ||
        get_str(c, o, "gnss", path, gnss, sizeof(gnss), false) < 0 ||
        get_num(c, o, "boot_s", path, &m->boot_s, 0, 3600) < 0 ||
        get_num(c, o, "reboot_s", path, &m->reboot_s, 0, 3600) < 0 ||
        get_num(c, o, "cmee", path, &cmee, 0, 2) < 0 ||
        get_num(c, o, "seed", path, &seed, 0, 4294967295.0) < 0 ||
        get_bool(c, o, "reboot_vanish", path, &m->reboot_vanish) < 0 ||
        get_bool(c, o, "first_cpsi_error", path, &m->first_cpsi_error) < 0 ||
        get_bool(c, o, "echo", path, &m->echo) < 0)
        return -1;
    m->cmee = (int)cmee;
    m->seed = (unsigned)seed;
    for (const char *s = m->name; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '-' || *s == '_')) {
            keypath(p, sizeof(p), path, "name");
            return fail(c, p, "only letters, digits, '-' and '_' allowed");
        }
    if (m->path[0] != '/') {
        keypath(p, sizeof(p), path, "path");
        return fail(c, p, "must be an absolute path");
    }
    if (strcmp(family, "simcom") == 0)
        m->family = SIM_FAMILY_SIMCOM;
    else if (strcmp(family, "quectel") == 0)
        m->family = SIM_FAMILY_QUECTEL;
    else {
        keypath(p, sizeof(p), path, "family");
        return fail(c, p, "expected simcom or quectel");
    }
    if (strcmp(m->sim, "ready") && strcmp(m->sim, "absent") && strcmp(m->sim, "pin")) {
        keypath(p, sizeof(p), path, "sim");
        return fail(c, p, "expected ready, absent or pin");
    }
    if (strcmp(interp, "linear") == 0)
        m->step = false;
    else if (strcmp(interp, "step") == 0)
        m->step = true;
    else {
        keypath(p, sizeof(p), path, "interpolate");
        return fail(c, p, "expected linear or step");
    }
    if (gnss[0]) {
        if (strcmp(gnss, "route") == 0) {
            if (!have_route) {
                keypath(p, sizeof(p), path, "gnss");
                return fail(c, p, "\"route\" but the scenario has no top-level route");
            }
            m->use_route = true;
        } else if (strcmp(gnss, "timeline") == 0) {
            m->use_route = false;
        } else {
            keypath(p, sizeof(p), path, "gnss");
            return fail(c, p, "expected route or timeline");
        }
    }

    /* identity, with the defaults of a SIM7600E-H / EC25-E */
    struct sim_identity *id = &m->id;
    bool q = m->family == SIM_FAMILY_QUECTEL;
    snprintf(id->manufacturer, sizeof(id->manufacturer), q ? "Quectel" : "SIMCOM INCORPORATED");
    snprintf(id->model, sizeof(id->model), q ? "EC25" : "SIMCOM_SIM7600E-H");
    snprintf(id->revision, sizeof(id->revision), q ? "EC25EFAR06A06M4G" : "LE20B04SIM7600M22");
    snprintf(id->imei, sizeof(id->imei), "862636055891234");
    snprintf(id->iccid, sizeof(id->iccid), "89701010000000000001");
    snprintf(id->imsi, sizeof(id->imsi), "250010000000001");
    json_t *ido = json_object_get(o, "identity");
    if (ido) {
        keypath(p, sizeof(p), path, "identity");
        if (!json_is_object(ido))
            return fail(c, p, "expected an object");
        static const char *const idkeys[] = {"manufacturer", "model", "revision", "imei",
                                             "iccid",        "imsi",  NULL};
        if (check_keys(c, ido, p, idkeys) < 0)
            return -1;
        if (get_str(c, ido, "manufacturer", p, id->manufacturer, sizeof(id->manufacturer), false) <
                0 ||
            get_str(c, ido, "model", p, id->model, sizeof(id->model), false) < 0 ||
            get_str(c, ido, "revision", p, id->revision, sizeof(id->revision), false) < 0 ||
            get_str(c, ido, "imei", p, id->imei, sizeof(id->imei), false) < 0 ||
            get_str(c, ido, "iccid", p, id->iccid, sizeof(id->iccid), false) < 0 ||
            get_str(c, ido, "imsi", p, id->imsi, sizeof(id->imsi), false) < 0)
            return -1;
        char pp[300];
        if (!all_digits(id->imei, 14, 17)) {
            keypath(pp, sizeof(pp), p, "imei");
            return fail(c, pp, "expected 14..17 digits");
        }
        if (!all_digits(id->imsi, 6, 15)) {
            keypath(pp, sizeof(pp), p, "imsi");
            return fail(c, pp, "expected 6..15 digits");
        }
        if (strlen(id->iccid) < 18 || strlen(id->iccid) > 20) {
            keypath(pp, sizeof(pp), p, "iccid");
            return fail(c, pp, "expected 18..20 characters");
        }
    }

    json_t *op = json_object_get(o, "operator");
    keypath(p, sizeof(p), path, "operator");
    if (!op || !json_is_object(op))
        return fail(c, p, "required object {name, mcc, mnc}");
    static const char *const opkeys[] = {"name", "short", "mcc", "mnc", NULL};
    if (check_keys(c, op, p, opkeys) < 0)
        return -1;
    if (get_str(c, op, "name", p, m->op_name, sizeof(m->op_name), true) < 0 ||
        get_str(c, op, "mcc", p, m->mcc, sizeof(m->mcc), true) < 0 ||
        get_str(c, op, "mnc", p, m->mnc, sizeof(m->mnc), true) < 0 ||
        get_str(c, op, "short", p, m->op_short, sizeof(m->op_short), false) < 0)
        return -1;
    if (!m->op_short[0])
        snprintf(m->op_short, sizeof(m->op_short), "%s", m->op_name);
    if (!all_digits(m->mcc, 3, 3) || !all_digits(m->mnc, 2, 3))
        return fail(c, p, "mcc must be 3 digits and mnc 2 or 3 digits");

    json_t *us = json_object_get(o, "ussd");
    if (us) {
        keypath(p, sizeof(p), path, "ussd");
        if (!json_is_array(us) || json_array_size(us) > SIM_MAX_USSD)
            return fail(c, p, "expected an array of at most %d objects", SIM_MAX_USSD);
        for (size_t i = 0; i < json_array_size(us); i++) {
            snprintf(p, sizeof(p), "%s.ussd[%zu]", path, i);
            if (load_ussd(c, json_array_get(us, i), p, &m->ussd[i]) < 0)
                return -1;
        }
        m->n_ussd = json_array_size(us);
    }

    json_t *tl = json_object_get(o, "timeline");
    keypath(p, sizeof(p), path, "timeline");
    if (!tl || !json_is_array(tl) || json_array_size(tl) == 0 ||
        json_array_size(tl) > SIM_MAX_KEYFRAMES)
        return fail(c, p, "required array of 1..%d keyframes", SIM_MAX_KEYFRAMES);
    m->kf = calloc(json_array_size(tl), sizeof(*m->kf));
    if (!m->kf)
        return fail(c, p, "out of memory");
    m->n_kf = json_array_size(tl);
    for (size_t i = 0; i < m->n_kf; i++) {
        snprintf(p, sizeof(p), "%s.timeline[%zu]", path, i);
        if (load_keyframe(c, json_array_get(tl, i), p, &m->kf[i]) < 0)
            return -1;
    }
    qsort(m->kf, m->n_kf, sizeof(*m->kf), cmp_kf);
    for (int f = 0; f <= F_N; f++) {
        m->fidx[f] = calloc(m->n_kf, sizeof(uint32_t));
        if (!m->fidx[f])
            return fail(c, p, "out of memory");
        for (size_t i = 0; i < m->n_kf; i++)
            if (f == F_N ? m->kf[i].has_band : (m->kf[i].mask & (1u << f)) != 0)
                m->fidx[f][m->n_fidx[f]++] = (uint32_t)i;
    }

    json_t *fl = json_object_get(o, "faults");
    if (fl) {
        keypath(p, sizeof(p), path, "faults");
        if (!json_is_array(fl) || json_array_size(fl) > SIM_MAX_FAULTS)
            return fail(c, p, "expected an array of at most %d objects", SIM_MAX_FAULTS);
        for (size_t i = 0; i < json_array_size(fl); i++) {
            json_t *f = json_array_get(fl, i);
            struct sim_fault *sf = &m->faults[i];
            snprintf(p, sizeof(p), "%s.faults[%zu]", path, i);
            char kind[16];
            sf->start = -1;
            sf->duration = -1;
            if (!json_is_object(f))
                return fail(c, p, "expected an object {kind, start, duration}");
            static const char *const fkeys[] = {"kind", "start", "duration", NULL};
            if (check_keys(c, f, p, fkeys) < 0)
                return -1;
            if (get_str(c, f, "kind", p, kind, sizeof(kind), true) < 0 ||
                get_num(c, f, "start", p, &sf->start, 0, 1e9) < 0 ||
                get_num(c, f, "duration", p, &sf->duration, 0, 1e9) < 0)
                return -1;
            char pp[300];
            keypath(pp, sizeof(pp), p, "kind");
            if (sim_fault_parse(kind, &sf->kind) < 0)
                return fail(c, pp, "expected silence, hang, garbage, reboot, vanish or cpsi_error");
            if (sf->start < 0 || sf->duration < 0)
                return fail(c, p, "\"start\" and \"duration\" (seconds) are required");
        }
        m->n_faults = json_array_size(fl);
    }
    return 0;
}

int sim_scenario_load(const char *file, struct sim_scenario *sc, char *err, size_t errlen)
{
    memset(sc, 0, sizeof(*sc));
    struct ctx c = {file, err, errlen};
    json_error_t je;
    json_t *root = json_load_file(file, JSON_REJECT_DUPLICATES, &je);
    if (!root) {
        snprintf(err, errlen, "%s:%d:%d: %s", file, je.line, je.column, je.text);
        return -1;
    }
    int rc = -1;
    if (!json_is_object(root)) {
        fail(&c, "(root)", "expected an object");
        goto out;
    }
    const char *key;
    json_t *v;
    json_object_foreach(root, key, v)
    {
        if (strcmp(key, "duration_s") && strcmp(key, "loop") && strcmp(key, "route") &&
            strcmp(key, "modems") && strcmp(key, "comment")) {
            fail(&c, key, "unknown key");
            goto out;
        }
    }
    sc->duration_s = -1;
    if (get_num(&c, root, "duration_s", "", &sc->duration_s, 0.001, 1e9) < 0 ||
        get_bool(&c, root, "loop", "", &sc->loop) < 0)
        goto out;
    json_t *rt = json_object_get(root, "route");
    if (rt) {
        struct sim_route *r = &sc->route;
        r->speed_kmh = 60;
        r->alt_m = 150;
        r->loop = true;
        if (!json_is_object(rt)) {
            fail(&c, "route", "expected an object {waypoints, speed_kmh, alt_m, loop}");
            goto out;
        }
        static const char *const rkeys[] = {"speed_kmh", "alt_m", "loop", "waypoints", NULL};
        if (check_keys(&c, rt, "route", rkeys) < 0)
            goto out;
        if (get_num(&c, rt, "speed_kmh", "route", &r->speed_kmh, 0, 2000) < 0 ||
            get_num(&c, rt, "alt_m", "route", &r->alt_m, -1000, 20000) < 0 ||
            get_bool(&c, rt, "loop", "route", &r->loop) < 0)
            goto out;
        json_t *wp = json_object_get(rt, "waypoints");
        if (!wp || !json_is_array(wp) || json_array_size(wp) < 2 ||
            json_array_size(wp) > SIM_MAX_WAYPOINTS) {
            fail(&c, "route.waypoints", "required array of 2..%d {lat, lon}", SIM_MAX_WAYPOINTS);
            goto out;
        }
        for (size_t i = 0; i < json_array_size(wp); i++) {
            char p[64];
            snprintf(p, sizeof(p), "route.waypoints[%zu]", i);
            json_t *w = json_array_get(wp, i);
            double la = NAN, lo = NAN;
            if (!json_is_object(w) || get_num(&c, w, "lat", p, &la, -90, 90) < 0 ||
                get_num(&c, w, "lon", p, &lo, -180, 180) < 0)
                goto out_route_err;
            if (isnan(la) || isnan(lo)) {
                fail(&c, p, "\"lat\" and \"lon\" are required");
                goto out;
            }
            r->lat[i] = la;
            r->lon[i] = lo;
            continue;
        out_route_err:
            if (!json_is_object(w))
                fail(&c, p, "expected an object {lat, lon}");
            goto out;
        }
        r->n = json_array_size(wp);
    }
    json_t *ms = json_object_get(root, "modems");
    if (!ms || !json_is_array(ms) || json_array_size(ms) == 0 ||
        json_array_size(ms) > SIM_MAX_MODEMS) {
        fail(&c, "modems", "required array of 1..%d modems", SIM_MAX_MODEMS);
        goto out;
    }
    sc->n_modems = json_array_size(ms);
    for (size_t i = 0; i < sc->n_modems; i++) {
        char p[64];
        snprintf(p, sizeof(p), "modems[%zu]", i);
        if (load_modem(&c, json_array_get(ms, i), p, &sc->modems[i], sc->route.n > 0) < 0)
            goto out;
        for (size_t j = 0; j < i; j++) {
            if (strcmp(sc->modems[j].name, sc->modems[i].name) == 0) {
                fail(&c, p, "name \"%s\" used twice", sc->modems[i].name);
                goto out;
            }
            if (strcmp(sc->modems[j].path, sc->modems[i].path) == 0) {
                fail(&c, p, "path \"%s\" used twice", sc->modems[i].path);
                goto out;
            }
        }
    }
    if (sc->duration_s < 0) {
        sc->duration_s = 0;
        for (size_t i = 0; i < sc->n_modems; i++) {
            const struct sim_modem_cfg *m = &sc->modems[i];
            if (m->kf[m->n_kf - 1].t > sc->duration_s)
                sc->duration_s = m->kf[m->n_kf - 1].t;
        }
        if (sc->duration_s <= 0)
            sc->duration_s = 1;
    }
    rc = 0;
out:
    json_decref(root);
    if (rc < 0)
        sim_scenario_free(sc);
    return rc;
}

void sim_scenario_free(struct sim_scenario *sc)
{
    for (size_t i = 0; i < SIM_MAX_MODEMS; i++) {
        struct sim_modem_cfg *m = &sc->modems[i];
        free(m->kf);
        m->kf = NULL;
        m->n_kf = 0;
        for (int f = 0; f <= F_N; f++) {
            free(m->fidx[f]);
            m->fidx[f] = NULL;
            m->n_fidx[f] = 0;
        }
    }
}

/* ---- evaluation --------------------------------------------------------------------------- */

double sim_timeline_t(const struct sim_scenario *sc, double abs_t)
{
    if (sc->loop && sc->duration_s > 0)
        return fmod(abs_t, sc->duration_s);
    return abs_t;
}

/* Position in fidx[f] of the last keyframe setting f at or before t, or -1 if none. */
static long last_at_or_before(const struct sim_modem_cfg *m, int f, double t)
{
    long lo = 0, hi = (long)m->n_fidx[f] - 1, ans = -1;
    while (lo <= hi) {
        long mid = lo + (hi - lo) / 2;
        if (m->kf[m->fidx[f][mid]].t <= t) {
            ans = mid;
            lo = mid + 1;
        } else {
            hi = mid - 1;
        }
    }
    return ans;
}

/* Value of field f at t: step from the last keyframe setting it at or before t, or linear
 * towards the next keyframe setting it. Before the first setting keyframe its value holds. */
static bool field_at(const struct sim_modem_cfg *m, enum sim_field f, double t, double *out)
{
    size_t n = m->n_fidx[f];
    if (n == 0)
        return false;
    long i = last_at_or_before(m, f, t);
    const struct sim_keyframe *prev = i >= 0 ? &m->kf[m->fidx[f][i]] : NULL;
    const struct sim_keyframe *next = (size_t)(i + 1) < n ? &m->kf[m->fidx[f][i + 1]] : NULL;
    if (!prev) {
        *out = next->v[f];
        return true;
    }
    if (!next || m->step || f >= F_FIRST_STEPPED || f == F_CSQ || next->t <= prev->t) {
        *out = prev->v[f];
        return true;
    }
    double a = (t - prev->t) / (next->t - prev->t);
    *out = prev->v[f] + a * (next->v[f] - prev->v[f]);
    return true;
}

static double deg2rad(double d)
{
    return d * M_PI / 180.0;
}

/* Great-circle distance in metres (haversine) and initial bearing in degrees. */
static double distance_m(double la1, double lo1, double la2, double lo2)
{
    double dla = deg2rad(la2 - la1), dlo = deg2rad(lo2 - lo1);
    double a = sin(dla / 2) * sin(dla / 2) +
               cos(deg2rad(la1)) * cos(deg2rad(la2)) * sin(dlo / 2) * sin(dlo / 2);
    return 6371000.0 * 2 * atan2(sqrt(a), sqrt(1 - a));
}

static double bearing_deg(double la1, double lo1, double la2, double lo2)
{
    double y = sin(deg2rad(lo2 - lo1)) * cos(deg2rad(la2));
    double x = cos(deg2rad(la1)) * sin(deg2rad(la2)) -
               sin(deg2rad(la1)) * cos(deg2rad(la2)) * cos(deg2rad(lo2 - lo1));
    double b = atan2(y, x) * 180.0 / M_PI;
    return b < 0 ? b + 360.0 : b;
}

static void route_at(const struct sim_route *r, double t, struct sim_radio *out)
{
    double total = 0;
    for (size_t i = 1; i < r->n; i++)
        total += distance_m(r->lat[i - 1], r->lon[i - 1], r->lat[i], r->lon[i]);
    double d = r->speed_kmh / 3.6 * t;
    bool stopped = false;
    if (total <= 0) {
        d = 0;
    } else if (r->loop) {
        d = fmod(d, total);
    } else if (d >= total) {
        d = total;
        stopped = true;
    }
    size_t i = 1;
    double seg = 0;
    for (; i < r->n; i++) {
        seg = distance_m(r->lat[i - 1], r->lon[i - 1], r->lat[i], r->lon[i]);
        if (d <= seg || i == r->n - 1)
            break;
        d -= seg;
    }
    double a = seg > 0 ? d / seg : 0;
    if (a > 1)
        a = 1;
    out->lat = r->lat[i - 1] + a * (r->lat[i] - r->lat[i - 1]);
    out->lon = r->lon[i - 1] + a * (r->lon[i] - r->lon[i - 1]);
    out->course = bearing_deg(r->lat[i - 1], r->lon[i - 1], r->lat[i], r->lon[i]);
    out->speed_kmh = stopped ? 0 : r->speed_kmh;
    out->alt = r->alt_m;
    out->fix = true;
}

void sim_eval(const struct sim_scenario *sc, const struct sim_modem_cfg *m, double t,
              struct sim_radio *out)
{
    memset(out, 0, sizeof(*out));
    double v[F_N];
    /* defaults: a registered LTE cell of middling quality, no GNSS fix */
    static const double def[F_N] = {
        [F_RSRP] = -95, [F_RSRQ] = -10,      [F_SINR] = 10,          [F_RSSI] = -65,
        [F_CSQ] = -1,   [F_RSCP] = -85,      [F_ECIO] = -7,          [F_LAT] = 0,
        [F_LON] = 0,    [F_ALT] = 0,         [F_SPEED] = 0,          [F_COURSE] = 0,
        [F_TAC] = 6699, [F_CELL] = 26543617, [F_PCI] = 252,          [F_CHANNEL] = 1300,
        [F_BW] = 5,     [F_FIX] = 0,         [F_REG] = SIM_REG_HOME, [F_RAT] = SIM_RAT_LTE,
    };
    for (int f = 0; f < F_N; f++)
        if (!field_at(m, (enum sim_field)f, t, &v[f]))
            v[f] = def[f];
    out->reg = (enum sim_reg)(int)v[F_REG];
    out->rat = (enum sim_rat)(int)v[F_RAT];
    out->rsrp = v[F_RSRP];
    out->rsrq = v[F_RSRQ];
    out->sinr = v[F_SINR];
    out->rssi = v[F_RSSI];
    out->rscp = v[F_RSCP];
    out->ecio = v[F_ECIO];
    if (v[F_CSQ] >= 0) {
        out->csq = (int)v[F_CSQ];
    } else {
        int q = (int)floor((out->rssi + 113.0) / 2.0 + 0.5);
        out->csq = q < 0 ? 0 : q > 31 ? 31 : q;
    }
    out->tac = (long)v[F_TAC];
    out->cell = (long long)v[F_CELL];
    out->pci = (long)v[F_PCI];
    out->channel = (long)v[F_CHANNEL];
    out->bw = (long)v[F_BW];
    out->fix = v[F_FIX] != 0;
    out->lat = v[F_LAT];
    out->lon = v[F_LON];
    out->alt = v[F_ALT];
    out->speed_kmh = v[F_SPEED];
    out->course = v[F_COURSE];
    const char *band = NULL;
    if (m->n_fidx[F_N]) {
        long i = last_at_or_before(m, F_N, t);
        band = m->kf[m->fidx[F_N][i >= 0 ? i : 0]].band;
    }
    if (band)
        snprintf(out->band, sizeof(out->band), "%s", band);
    else
        snprintf(out->band, sizeof(out->band), "%s",
                 out->rat == SIM_RAT_WCDMA ? "WCDMA IMT 2000"
                 : out->rat == SIM_RAT_GSM ? "EGSM 900"
                                           : "EUTRAN-BAND3");
    if (m->use_route && sc->route.n >= 2)
        route_at(&sc->route, t, out);
    /* no radio: nothing measured */
    if (out->rat == SIM_RAT_NONE)
        out->csq = 99;
}
