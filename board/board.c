/* board: the board object: profile, modem power backends, LEDs and thermal zones.
 * See board.h and docs/board.md. */
#include "board/board.h"
#include "board/board_int.h"
#include "common/common.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

/* A level falls back only this far below its threshold (no flapping at the threshold). */
#define THERMAL_HYST_C 3.0
/* The sim backend waits this long for the simulator's answer. */
#define SIM_REPLY_MS 2000u

struct zone_state {
    struct board_zone z; /* zone resolved ("*" expanded) */
    char type[32];
    enum board_thermal_level level;
};

struct board {
    struct board_config cfg;
    struct board_profile prof;
    pthread_mutex_t lock; /* one power operation at a time: slots may share a supply */
    struct gpio *gpio;    /* BOARD_POWER_GPIO only */
    int h_power[BOARD_MAX_SLOTS], h_reset[BOARD_MAX_SLOTS]; /* gpio handles, -1 = none */
    int h_led[2];
    int led_state[2]; /* last value set, -1 = unknown: LEDs are only written on a change */
    bool interrupted; /* atomic: board_interrupt() */
    struct zone_state zones[BOARD_MAX_ZONES];
    unsigned nzones;
};

int board_power_backend_parse(const char *s, enum board_power_backend *out)
{
    if (strcmp(s, "none") == 0)
        *out = BOARD_POWER_NONE;
    else if (strcmp(s, "sim") == 0)
        *out = BOARD_POWER_SIM;
    else if (strcmp(s, "gpio") == 0)
        *out = BOARD_POWER_GPIO;
    else
        return -1;
    return 0;
}

const char *board_thermal_level_name(enum board_thermal_level l)
{
    switch (l) {
    case BOARD_THERMAL_OK:
        return "ok";
    case BOARD_THERMAL_WARN:
        return "warn";
    case BOARD_THERMAL_CRIT:
        return "crit";
    }
    return "?";
}

static const char *thermal_root(const struct board *b)
{
    return b->cfg.thermal_root[0] ? b->cfg.thermal_root : "/sys/class/thermal";
}

/* Small sysfs file into buf, trimmed; false if unreadable. */
static bool read_small(const char *path, char *buf, size_t n)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return false;
    size_t len = fread(buf, 1, n - 1, f);
    fclose(f);
    buf[len] = '\0';
    str_trim(buf);
    return len > 0;
}

static void add_zone(struct board *b, const struct board_zone *z, const char *name)
{
    for (unsigned i = 0; i < b->nzones; i++)
        if (strcmp(b->zones[i].z.zone, name) == 0)
            return; /* listed explicitly and matched by "*": the first entry wins */
    if (b->nzones == BOARD_MAX_ZONES)
        return;
    struct zone_state *s = &b->zones[b->nzones++];
    s->z = *z;
    str_copy(s->z.zone, name, sizeof s->z.zone);
    char p[512];
    snprintf(p, sizeof p, "%s/%s/type", thermal_root(b), name);
    if (!read_small(p, s->type, sizeof s->type))
        s->type[0] = '\0';
}

static int zone_cmp(const struct dirent **a, const struct dirent **b)
{
    return strverscmp((*a)->d_name, (*b)->d_name);
}

static int zone_filter(const struct dirent *d)
{
    return strncmp(d->d_name, "thermal_zone", 12) == 0;
}

static void resolve_zones(struct board *b)
{
    for (unsigned i = 0; i < b->prof.nzones; i++) {
        const struct board_zone *z = &b->prof.zones[i];
        if (strcmp(z->zone, "*") != 0) {
            add_zone(b, z, z->zone);
            continue;
        }
        struct dirent **list = NULL;
        int n = scandir(thermal_root(b), &list, zone_filter, zone_cmp);
        for (int k = 0; k < n; k++) {
            add_zone(b, z, list[k]->d_name);
            free(list[k]);
        }
        free(list);
    }
}

static int open_gpio(struct board *b, char *err, size_t errlen)
{
    const char *rec = b->cfg.gpio_record[0] ? b->cfg.gpio_record : NULL;
    char e[256];
    if (gpio_open(rec, &b->gpio, e, sizeof e) != 0) {
        snprintf(err, errlen, "board: %s", e);
        return -1;
    }
    const struct board_profile *p = &b->prof;
    unsigned lines = 0;
    for (unsigned i = 0; i < p->nslots; i++) {
        const struct board_slot *s = &p->slots[i];
        char label[48];
        /* Idle state: the modem powered and out of reset. */
        snprintf(label, sizeof label, "%s.power", s->name);
        if (s->power.present &&
            gpio_request(b->gpio, &s->power, label, true, &b->h_power[i], e, sizeof e) != 0) {
            snprintf(err, errlen, "board profile %s: slots[%u].power: %s", p->source, i, e);
            return -1;
        }
        snprintf(label, sizeof label, "%s.reset", s->name);
        if (s->reset.present &&
            gpio_request(b->gpio, &s->reset, label, false, &b->h_reset[i], e, sizeof e) != 0) {
            snprintf(err, errlen, "board profile %s: slots[%u].reset: %s", p->source, i, e);
            return -1;
        }
        lines += s->power.present + s->reset.present;
    }
    const struct board_line *leds[2] = {&p->led_status, &p->led_link};
    static const char *const led_names[2] = {"status", "link"};
    for (int i = 0; i < 2; i++) {
        char label[48];
        snprintf(label, sizeof label, "led.%s", led_names[i]);
        if (leds[i]->present &&
            gpio_request(b->gpio, leds[i], label, false, &b->h_led[i], e, sizeof e) != 0) {
            snprintf(err, errlen, "board profile %s: leds.%s: %s", p->source, led_names[i], e);
            return -1;
        }
    }
    if (!lines)
        LOG_W("board", "board.power is \"gpio\" but profile %s has no power or reset lines",
              p->name);
    return 0;
}

int board_open(const struct board_config *cfg, struct board **out, char *err, size_t errlen)
{
    struct board *b = calloc(1, sizeof *b);
    if (!b) {
        snprintf(err, errlen, "board: out of memory");
        return -1;
    }
    b->cfg = *cfg;
    if (!b->cfg.off_ms)
        b->cfg.off_ms = 2000;
    for (unsigned i = 0; i < BOARD_MAX_SLOTS; i++)
        b->h_power[i] = b->h_reset[i] = -1;
    b->h_led[0] = b->h_led[1] = -1;
    b->led_state[0] = b->led_state[1] = 0; /* requested off */
    pthread_mutex_init(&b->lock, NULL);
    if (b->cfg.power == BOARD_POWER_SIM && !b->cfg.sim_control[0]) {
        snprintf(err, errlen, "board: power backend \"sim\" needs sim_control");
        goto fail;
    }
    if (board_profile_load(b->cfg.profile, b->cfg.profile_dir, &b->prof, err, errlen) != 0)
        goto fail;
    if (b->cfg.power == BOARD_POWER_GPIO && open_gpio(b, err, errlen) != 0)
        goto fail;
    resolve_zones(b);
    *out = b;
    return 0;
fail:
    board_close(b);
    *out = NULL;
    return -1;
}

void board_close(struct board *b)
{
    if (!b)
        return;
    gpio_close(b->gpio);
    pthread_mutex_destroy(&b->lock);
    free(b);
}

const struct board_profile *board_get_profile(const struct board *b)
{
    return &b->prof;
}

unsigned board_power_cycle_ms(const struct board *b)
{
    switch (b->cfg.power) {
    case BOARD_POWER_NONE:
        return 0;
    case BOARD_POWER_SIM:
        return SIM_REPLY_MS;
    case BOARD_POWER_GPIO:
        return b->prof.off_ms + b->prof.reset_pulse_ms + b->prof.boot_wait_ms;
    }
    return 0;
}

/* One request line to the simulator, one reply line back ("ok" or "error <why>"). */
static int sim_request(const char *path, const char *req, char *err, size_t errlen)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    str_copy(sa.sun_path, path, sizeof sa.sun_path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        snprintf(err, errlen, "simulator control %s: %s", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    size_t len = strlen(req);
    if (send(fd, req, len, MSG_NOSIGNAL) != (ssize_t)len) {
        snprintf(err, errlen, "simulator control %s: send: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    char reply[256];
    size_t off = 0;
    uint64_t end = mono_ms() + SIM_REPLY_MS;
    while (off + 1 < sizeof reply && !memchr(reply, '\n', off)) {
        uint64_t now = mono_ms();
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (now >= end || poll(&p, 1, (int)(end - now)) <= 0)
            break;
        ssize_t r = read(fd, reply + off, sizeof reply - 1 - off);
        if (r <= 0)
            break;
        off += (size_t)r;
    }
    close(fd);
    reply[off] = '\0';
    str_trim(reply);
    if (strcmp(reply, "ok") != 0) {
        char what[96];
        str_copy(what, req, sizeof what);
        snprintf(err, errlen, "simulator control %s: \"%s\" answered \"%s\"", path, str_trim(what),
                 reply[0] ? reply : "(nothing within 2 s)");
        return -1;
    }
    return 0;
}

void board_interrupt(struct board *b)
{
    if (b)
        __atomic_store_n(&b->interrupted, true, __ATOMIC_RELEASE);
}

/* The profile's sequence for one slot. Reset is asserted first so the modem never sees a
 * brown-out while running (flash writes), then power is cut for off_ms; power returns with
 * reset still held, and reset is released reset_pulse_ms later, once the supply is stable.
 * A slot with only a reset line gets a reset pulse. Caller holds b->lock. */
static int gpio_cycle(struct board *b, unsigned i, char *err, size_t errlen)
{
    const struct board_slot *s = &b->prof.slots[i];
    int hp = b->h_power[i], hr = b->h_reset[i];
    if (hp < 0 && hr < 0) {
        snprintf(err, errlen, "board profile %s: slots[%u] (%s) has no power or reset line",
                 b->prof.source, i, s->name);
        return -1;
    }
    int rc = 0;
    if (hr >= 0)
        rc |= gpio_set(b->gpio, hr, true, err, errlen);
    if (hp >= 0 && rc == 0)
        rc |= gpio_set(b->gpio, hp, false, err, errlen);
    if (rc == 0)
        sleep_ms_unless(&b->interrupted, hp >= 0 ? b->prof.off_ms : b->prof.reset_pulse_ms);
    /* Whatever failed above, leave the slot powered and out of reset. */
    char e2[256];
    if (hp >= 0 && gpio_set(b->gpio, hp, true, e2, sizeof e2) != 0 && rc == 0) {
        str_copy(err, e2, errlen);
        rc = -1;
    }
    if (hr >= 0) {
        if (hp >= 0)
            sleep_ms_unless(&b->interrupted, b->prof.reset_pulse_ms);
        if (gpio_set(b->gpio, hr, false, e2, sizeof e2) != 0 && rc == 0) {
            str_copy(err, e2, errlen);
            rc = -1;
        }
    }
    if (rc == 0 && b->prof.boot_wait_ms)
        sleep_ms_unless(&b->interrupted, b->prof.boot_wait_ms);
    return rc ? -1 : 0;
}

int board_power_cycle(struct board *b, const char *slot, char *err, size_t errlen)
{
    int rc = -1;
    pthread_mutex_lock(&b->lock);
    switch (b->cfg.power) {
    case BOARD_POWER_NONE:
        snprintf(err, errlen, "no power control on this board (board.power = none)");
        break;
    case BOARD_POWER_SIM: {
        char req[96];
        snprintf(req, sizeof req, "powercycle %s\n", slot);
        rc = sim_request(b->cfg.sim_control, req, err, errlen);
        break;
    }
    case BOARD_POWER_GPIO: {
        const struct board_slot *s = board_profile_slot(&b->prof, slot);
        if (!s) {
            snprintf(err, errlen,
                     "board profile %s: no slot for link \"%s\" (name a slot after the link or "
                     "set its \"link\")",
                     b->prof.source, slot);
            break;
        }
        rc = gpio_cycle(b, (unsigned)(s - b->prof.slots), err, errlen);
        break;
    }
    }
    pthread_mutex_unlock(&b->lock);
    return rc;
}

void board_led_set(struct board *b, enum board_led led, bool on)
{
    int h = b && (unsigned)led < 2 ? b->h_led[led] : -1;
    if (h < 0 || b->led_state[led] == (int)on)
        return; /* called every second: only changes reach the line (and the recording) */
    char err[256];
    if (gpio_set(b->gpio, h, on, err, sizeof err) != 0) {
        LOG_D("board", "led: %s", err);
        b->led_state[led] = -1;
    } else {
        b->led_state[led] = on;
    }
}

size_t board_gpio_record(struct board *b, char *buf, size_t n)
{
    if (!b->gpio) {
        if (n)
            buf[0] = '\0';
        return 0;
    }
    return gpio_record_text(b->gpio, buf, n);
}

static enum board_thermal_level level_for(const struct board_zone *z, double t, double margin)
{
    if (t >= z->crit_c - margin)
        return BOARD_THERMAL_CRIT;
    if (t >= z->warn_c - margin)
        return BOARD_THERMAL_WARN;
    return BOARD_THERMAL_OK;
}

enum board_thermal_level board_thermal_poll(struct board *b, struct board_thermal *out, size_t max,
                                            size_t *n)
{
    enum board_thermal_level worst = BOARD_THERMAL_OK;
    size_t k = 0;
    for (unsigned i = 0; i < b->nzones; i++) {
        struct zone_state *s = &b->zones[i];
        char p[512], buf[32];
        snprintf(p, sizeof p, "%s/%s/temp", thermal_root(b), s->z.zone);
        long milli;
        double t = NAN;
        /* sysfs reports millidegrees; some drivers report an error or nonsense while the
         * sensor is not ready: those readings keep the previous level. */
        if (read_small(p, buf, sizeof buf) && str_to_long(buf, &milli) && milli > -60000 &&
            milli < 250000)
            t = (double)milli / 1000.0;
        enum board_thermal_level old = s->level;
        if (!isnan(t)) {
            enum board_thermal_level up = level_for(&s->z, t, 0);
            enum board_thermal_level keep = level_for(&s->z, t, THERMAL_HYST_C);
            s->level = up > old ? up : (keep < old ? keep : old);
        }
        if (s->level > worst)
            worst = s->level;
        if (k < max) {
            struct board_thermal *r = &out[k++];
            str_copy(r->zone, s->z.zone, sizeof r->zone);
            str_copy(r->type, s->type, sizeof r->type);
            r->temp_c = t;
            r->warn_c = s->z.warn_c;
            r->crit_c = s->z.crit_c;
            r->level = s->level;
            r->changed = s->level != old;
        }
    }
    if (n)
        *n = k;
    return worst;
}
