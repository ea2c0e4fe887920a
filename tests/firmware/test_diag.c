/* test_diag: the support bundle (firmware/diag.h). Secrets are really gone from every part
 * (config, daemon status, URLs), public keys stay, the bundle round-trips through zstd and
 * plain JSON, a broken config or a missing daemon still gives a bundle that says why, and the
 * daemon part comes from a real control socket server. */
#include "firmware/config.h"
#include "firmware/control.h"
#include "firmware/diag.h"
#include "firmware/state.h"
#include "testlib.h"

#include <pthread.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#define HUB_PUB "Zm9vYmFyYmF6cXV4Zm9vYmFyYmF6cXV4Zm9vYmFyYmE="

static char dir[64];

static const char *sv(json_t *j)
{
    const char *s = json_string_value(j);
    return s ? s : "";
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    if (!f)
        return;
    fputs(text, f);
    fclose(f);
}

/* The serialised document must not contain needle anywhere. */
static void absent(json_t *doc, const char *needle)
{
    char *s = json_dumps(doc, 0);
    CHECK(s != NULL);
    CHECK_MSG(s && strstr(s, needle) == NULL, "bundle still contains \"%s\"", needle);
    free(s);
}

static void test_secret_names(void)
{
    CHECK(diag_key_is_secret("password_hash"));
    CHECK(diag_key_is_secret("private_key_file"));
    CHECK(diag_key_is_secret("token_file"));
    CHECK(diag_key_is_secret("API_TOKEN"));
    CHECK(diag_key_is_secret("ClientSecret"));
    CHECK(diag_key_is_secret("passwd"));
    CHECK(diag_key_is_secret("key"));
    CHECK(!diag_key_is_secret("hub_public_key"));
    CHECK(!diag_key_is_secret("public_key"));
    CHECK(!diag_key_is_secret("vehicle_id"));
    CHECK(!diag_key_is_secret("upload_url"));
    CHECK(!diag_key_is_secret(""));
    /* longer than the internal buffer: still judged on its first 127 characters */
    char longk[300];
    memset(longk, 'a', sizeof longk - 1);
    longk[sizeof longk - 1] = '\0';
    memcpy(longk + 10, "token", 5);
    CHECK(diag_key_is_secret(longk));

    json_t *j = json_loads("{\"a\":{\"b\":[{\"secret\":{\"deep\":1}},\"x\"]},"
                           "\"url\":\"https://joe:pw123@c.example:8443/u?x=1\","
                           "\"plain\":\"https://c.example/u\",\"mail\":\"a@b\","
                           "\"key\":null,\"Password\":\"" DIAG_REDACTED "\"}",
                           0, NULL);
    CHECK(j != NULL);
    CHECK_INT(diag_redact(j), 2); /* the secret object and the URL; null and done stay */
    CHECK_STR(json_string_value(json_object_get(
                  json_array_get(json_object_get(json_object_get(j, "a"), "b"), 0), "secret")),
              DIAG_REDACTED);
    CHECK_STR(json_string_value(json_object_get(j, "url")),
              "https://" DIAG_REDACTED "@c.example:8443/u?x=1");
    CHECK_STR(json_string_value(json_object_get(j, "plain")), "https://c.example/u");
    CHECK_STR(json_string_value(json_object_get(j, "mail")), "a@b");
    CHECK(json_is_null(json_object_get(j, "key")));
    CHECK_INT(diag_redact(j), 0); /* idempotent */
    json_decref(j);

    /* hostile nesting: bounded, no crash */
    char deep[4096];
    size_t n = 0;
    for (int i = 0; i < 1000; i++)
        deep[n++] = '[';
    for (int i = 0; i < 1000; i++)
        deep[n++] = ']';
    deep[n] = '\0';
    j = json_loads(deep, 0, NULL);
    if (j) {
        diag_redact(j);
        json_decref(j);
    }
}

#define CONFIG_TEXT                                                                                \
    "{\"config_version\":1,\"vehicle_id\":\"train-7\",\"data_dir\":\"/tmp\","                      \
    "\"control_socket\":\"%s\","                                                                   \
    "\"links\":[{\"name\":\"mts\",\"interface\":\"usb0\","                                         \
    "\"modem\":{\"port\":\"/dev/serial/by-id/usb-X-if02\",\"apn\":\"internet\"}}],"                \
    "\"tunnel\":{\"hubs\":[\"198.51.100.7:5555\"],\"private_key_file\":\"/etc/corridor/key-S1\","  \
    "\"hub_public_key\":\"" HUB_PUB "\",\"address\":\"10.77.0.2/16\"},"                            \
    "\"dashboard\":{\"password_hash\":\"$argon2id$v=19$m=65536,t=2,p=1$SECRETSALT$SECRETHASH\"},"  \
    "\"telemetry\":{\"upload_url\":\"https://fleet:URLPASS@c.example/u\","                         \
    "\"token_file\":\"/etc/corridor/token-S2\"}}"

static void test_bundle_with_daemon(void)
{
    char sock[128], cfgpath[128], text[2048], err[512];
    snprintf(sock, sizeof sock, "%s/control.sock", dir);
    snprintf(cfgpath, sizeof cfgpath, "%s/corridor.json", dir);
    snprintf(text, sizeof text, CONFIG_TEXT, sock);
    write_file(cfgpath, text);

    /* A real daemon side: the state and control socket server corridor run uses. */
    static struct config cfg;
    CHECK_INT(config_load(cfgpath, &cfg, err, sizeof err), 0);
    CHECK_MSG(err[0] == '\0', "%s", err);
    struct state *st = state_new(&cfg);
    CHECK(st != NULL);
    state_add_event(st, "telemetry", "upload", "retry to https://fleet:EVENTPASS@c.example/u");
    struct control *ctl = NULL;
    CHECK_INT(control_start(sock, st, cfg.vehicle_id, &ctl, err, sizeof err), 0);

    struct diag_opts o = {.config_path = cfgpath};
    json_t *doc = diag_collect(&o);
    CHECK(doc != NULL);
    if (!doc)
        return;
    CHECK_STR(json_string_value(json_object_get(doc, "bundle")), "corridor-diag");
    CHECK_INT(json_integer_value(json_object_get(doc, "format")), DIAG_FORMAT);
    CHECK_STR(json_string_value(json_object_get(json_object_get(doc, "versions"), "corridor")),
              CORRIDOR_VERSION);
    CHECK(json_string_value(json_object_get(json_object_get(doc, "versions"), "zstd")) != NULL);

    json_t *c = json_object_get(json_object_get(doc, "config"), "json");
    CHECK(json_is_object(c));
    CHECK_STR(json_string_value(json_object_get(c, "vehicle_id")), "train-7");
    json_t *dash = json_object_get(c, "dashboard"), *tun = json_object_get(c, "tunnel");
    CHECK_STR(json_string_value(json_object_get(dash, "password_hash")), DIAG_REDACTED);
    CHECK_STR(json_string_value(json_object_get(tun, "private_key_file")), DIAG_REDACTED);
    CHECK_STR(json_string_value(json_object_get(tun, "hub_public_key")), HUB_PUB);
    CHECK_STR(json_string_value(json_object_get(json_object_get(c, "telemetry"), "upload_url")),
              "https://" DIAG_REDACTED "@c.example/u");
    CHECK_STR(json_string_value(json_object_get(json_object_get(c, "telemetry"), "token_file")),
              DIAG_REDACTED);

    json_t *d = json_object_get(doc, "daemon");
    CHECK(json_is_true(json_object_get(d, "running")));
    CHECK_STR(json_string_value(json_object_get(d, "socket")), sock);
    CHECK_STR(json_string_value(json_object_get(json_object_get(d, "status"), "vehicle_id")),
              "train-7");
    CHECK(json_object_get(json_object_get(doc, "unavailable"), "daemon") == NULL);

    json_t *m = json_array_get(json_object_get(doc, "modems"), 0);
    CHECK_STR(json_string_value(json_object_get(m, "link")), "mts");
    CHECK_STR(json_string_value(json_object_get(m, "port")), "/dev/serial/by-id/usb-X-if02");

    /* Nothing secret anywhere, in any part (the event text came through the daemon). */
    absent(doc, "SECRETHASH");
    absent(doc, "SECRETSALT");
    absent(doc, "URLPASS");
    absent(doc, "EVENTPASS");
    absent(doc, "key-S1");
    absent(doc, "token-S2");
    CHECK(json_integer_value(json_object_get(doc, "redacted")) >= 5);
    CHECK(json_object_get(doc, "system") == NULL); /* not asked for */

    /* Round trips: zstd (default) and plain. */
    char zpath[160], jpath[160];
    snprintf(zpath, sizeof zpath, "%s/b.json.zst", dir);
    snprintf(jpath, sizeof jpath, "%s/b.json", dir);
    CHECK_INT(diag_write(doc, zpath, err, sizeof err), 0);
    CHECK_INT(diag_write(doc, jpath, err, sizeof err), 0);
    struct stat sb;
    CHECK_INT(stat(zpath, &sb), 0);
    CHECK_INT(sb.st_mode & 0777, 0600);
    FILE *f = fopen(zpath, "rb");
    unsigned char magic[4] = {0};
    CHECK(f && fread(magic, 1, 4, f) == 4);
    if (f)
        fclose(f);
    CHECK(magic[0] == 0x28 && magic[1] == 0xb5 && magic[2] == 0x2f && magic[3] == 0xfd);
    json_t *back = diag_read(zpath, 16u << 20, err, sizeof err);
    CHECK_MSG(back != NULL, "%s", err);
    CHECK(json_equal(back, doc));
    json_decref(back);
    back = diag_read(jpath, 16u << 20, err, sizeof err);
    CHECK_MSG(back != NULL, "%s", err);
    CHECK(json_equal(back, doc));
    json_decref(back);
    /* a size bound is honoured */
    CHECK(diag_read(zpath, 100, err, sizeof err) == NULL);
    CHECK(strstr(err, "b.json.zst") != NULL);

    json_decref(doc);
    control_stop(ctl);
    state_free(st);
}

static void test_broken_config_no_daemon(void)
{
    char cfgpath[128], sock[128], out[160], err[512];
    snprintf(cfgpath, sizeof cfgpath, "%s/broken.json", dir);
    snprintf(sock, sizeof sock, "%s/nobody.sock", dir);
    /* Not JSON: its content cannot be redacted reliably, so none of it is included. */
    write_file(cfgpath, "{\"dashboard\": {\"password_hash\": \"PLAINSECRET\" ");
    struct diag_opts o = {.config_path = cfgpath, .control_socket = sock, .system_info = true};
    json_t *doc = diag_collect(&o);
    CHECK(doc != NULL);
    if (!doc)
        return;
    json_t *c = json_object_get(doc, "config");
    CHECK(json_object_get(c, "json") == NULL);
    CHECK(strstr(sv(json_object_get(c, "error")), "line 1") != NULL);
    absent(doc, "PLAINSECRET");
    json_t *un = json_object_get(doc, "unavailable");
    CHECK(json_is_false(json_object_get(json_object_get(doc, "daemon"), "running")));
    CHECK(strstr(sv(json_object_get(un, "daemon")), "nobody.sock") != NULL);
    CHECK(json_object_get(un, "modems") != NULL);
    /* system info: uname always; commands either gave output or say why not */
    json_t *sys = json_object_get(doc, "system");
    CHECK(json_is_object(sys));
    CHECK(json_string_length(json_object_get(json_object_get(sys, "uname"), "machine")) > 0);
    CHECK(json_object_get(sys, "uptime") != NULL);
    const char *parts[] = {"ip_addr", "ip_route", "ip_rule", "dmesg"};
    for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++) {
        char key[64];
        snprintf(key, sizeof key, "system.%s", parts[i]);
        CHECK_MSG(json_object_get(sys, parts[i]) || json_object_get(un, key), "%s: neither",
                  parts[i]);
    }
    snprintf(out, sizeof out, "%s/broken.json.zst", dir);
    CHECK_INT(diag_write(doc, out, err, sizeof err), 0);
    json_decref(doc);

    /* missing config file */
    snprintf(cfgpath, sizeof cfgpath, "%s/missing.json", dir);
    struct diag_opts o2 = {.config_path = cfgpath, .control_socket = sock};
    doc = diag_collect(&o2);
    CHECK(strstr(sv(json_object_get(json_object_get(doc, "unavailable"), "config")),
                 "missing.json") != NULL);
    json_decref(doc);

    /* write errors name the file; nothing half-written is left */
    doc = json_object();
    snprintf(out, sizeof out, "%s/no/such/dir/b.json.zst", dir);
    CHECK_INT(diag_write(doc, out, err, sizeof err), -1);
    CHECK(strstr(err, "no/such/dir/b.json.zst") != NULL);
    json_decref(doc);

    /* reading garbage */
    snprintf(out, sizeof out, "%s/garbage", dir);
    write_file(out, "\x28\xb5\x2f\xfd garbage");
    CHECK(diag_read(out, 1 << 20, err, sizeof err) == NULL);
    write_file(out, "not json");
    CHECK(diag_read(out, 1 << 20, err, sizeof err) == NULL);
}

/* A daemon that knows the "diagnostics" request: one client, answered with the shared
 * diag_runtime_doc() (what control.c serves once it routes "diagnostics" there). */
struct fake {
    int lfd;
    char req[64];
};

static void *fake_daemon(void *arg)
{
    struct fake *f = arg;
    int c = accept(f->lfd, NULL, NULL);
    if (c < 0)
        return NULL;
    ssize_t n = read(c, f->req, sizeof f->req - 1);
    f->req[n > 0 ? n : 0] = '\0';
    json_t *st =
        json_pack("{s:s,s:[{s:s,s:{s:s}}],s:{s:s}}", "vehicle_id", "fake-1", "links", "name", "mts",
                  "modem", "imei", "860000000000001", "auth", "session_token", "LIVETOKEN");
    json_t *doc = diag_runtime_doc(st);
    char *text = json_dumps(doc, 0);
    if (text && write(c, text, strlen(text)) < 0)
        perror("fake daemon write");
    free(text);
    json_decref(doc);
    close(c);
    return NULL;
}

static void test_daemon_diagnostics_request(void)
{
    struct fake f = {.lfd = socket(AF_UNIX, SOCK_STREAM, 0)};
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s/fake.sock", dir);
    CHECK(f.lfd >= 0);
    CHECK_INT(bind(f.lfd, (struct sockaddr *)&sa, sizeof sa), 0);
    CHECK_INT(listen(f.lfd, 1), 0);
    pthread_t t;
    CHECK_INT(pthread_create(&t, NULL, fake_daemon, &f), 0);
    struct diag_opts o = {.control_socket = sa.sun_path};
    json_t *doc = diag_collect(&o);
    pthread_join(t, NULL);
    close(f.lfd);
    CHECK_STR(f.req, "diagnostics\n");
    json_t *d = json_object_get(doc, "daemon");
    CHECK(json_is_true(json_object_get(d, "running")));
    CHECK_STR(json_string_value(json_object_get(json_object_get(d, "status"), "vehicle_id")),
              "fake-1");
    CHECK(json_is_array(json_object_get(d, "log")));
    CHECK_STR(json_string_value(json_object_get(json_object_get(d, "versions"), "corridor")),
              CORRIDOR_VERSION);
    /* the daemon gave its log: no journal fallback needed */
    CHECK(json_object_get(doc, "journal") == NULL);
    json_t *m = json_array_get(json_object_get(doc, "modems"), 0);
    CHECK_STR(json_string_value(json_object_get(json_object_get(m, "modem"), "imei")),
              "860000000000001");
    absent(doc, "LIVETOKEN");
    /* no config given: nothing about it, and that is not an error */
    CHECK(json_object_get(doc, "config") == NULL);
    json_decref(doc);
}

int main(void)
{
    snprintf(dir, sizeof dir, "/tmp/corridor-diag-test-%ld", (long)getpid());
    CHECK_INT(mkdir(dir, 0700), 0);
    test_secret_names();
    test_bundle_with_daemon();
    test_broken_config_no_daemon();
    test_daemon_diagnostics_request();
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK_INT(system(cmd), 0);
    return test_summary();
}
