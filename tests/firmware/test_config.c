/* test_config: the JSON configuration loader and its error messages. */
#include "firmware/config.h"
#include "testlib.h"

static struct config cfg;
static char err[512];

static int parse(const char *json)
{
    return config_parse(json, strlen(json), "t.json", &cfg, err, sizeof err);
}

/* Expect failure whose message contains want. */
static void bad(const char *json, const char *want)
{
    int rc = parse(json);
    CHECK_MSG(rc == -1, "accepted: %s", json);
    CHECK_MSG(strstr(err, want) != NULL, "error \"%s\" lacks \"%s\"", err, want);
}

#define MIN_HEAD "{\"vehicle_id\":\"v1\",\"data_dir\":\"/tmp/x\",\"links\":["
#define LINK_OK  "{\"name\":\"a\",\"interface\":\"usb0\"}"

int main(void)
{
    /* The issue's example, verbatim. */
    const char *example =
        "{\n  \"vehicle_id\": \"train-0042\",\n  \"data_dir\": \"/var/lib/corridor\",\n"
        "  \"links\": [\n    { \"name\": \"mts\", \"interface\": \"usb0\",\n"
        "      \"modem\": { \"port\": \"/dev/serial/by-id/usb-SimTech_SIM7600-if02-port0\", "
        "\"baud\": 115200,\n                 \"apn\": \"internet.mts.ru\", \"balance_ussd\": "
        "\"*100#\" } },\n    { \"name\": \"depot-wifi\", \"interface\": \"wlan0\" }\n  ]\n}\n";
    CHECK_INT(parse(example), 0);
    CHECK_STR(cfg.vehicle_id, "train-0042");
    CHECK_STR(cfg.data_dir, "/var/lib/corridor");
    CHECK_INT(cfg.nlinks, 2);
    CHECK_STR(cfg.links[0].name, "mts");
    CHECK(cfg.links[0].modem.present);
    CHECK_STR(cfg.links[0].modem.port, "/dev/serial/by-id/usb-SimTech_SIM7600-if02-port0");
    CHECK_INT(cfg.links[0].modem.baud, 115200);
    CHECK_STR(cfg.links[0].modem.apn, "internet.mts.ru");
    CHECK_STR(cfg.links[0].modem.balance_ussd, "*100#");
    CHECK(cfg.links[0].modem.gnss);
    CHECK(!cfg.links[1].modem.present);
    CHECK_STR(cfg.links[1].interface, "wlan0");
    /* Optional sections absent -> off. */
    CHECK(!cfg.tunnel.enabled);
    CHECK(!cfg.dashboard.enabled);
    CHECK(!cfg.telemetry.enabled);
    CHECK_INT(cfg.log.level, LOGL_INFO);

    /* Optional sections present. */
    CHECK_INT(parse(MIN_HEAD LINK_OK
                    "],\"dashboard\":{\"listen\":\"0.0.0.0:8080\"},"
                    "\"telemetry\":{\"batch_seconds\":600,\"upload_url\":\"https://c.example/u\","
                    "\"quota_mb\":512},\"log\":{\"level\":\"debug\"},"
                    "\"tunnel\":{\"hubs\":[\"198.51.100.7:5555\",\"[2001:db8::1]:5555\"],"
                    "\"private_key_file\":\"/etc/corridor/key\","
                    "\"hub_public_key\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\","
                    "\"address\":\"10.77.0.2/16\"}}"),
              0);
    CHECK(cfg.dashboard.enabled);
    CHECK_STR(cfg.dashboard.listen, "0.0.0.0:8080");
    CHECK_INT(cfg.telemetry.batch_seconds, 600);
    CHECK_INT(cfg.log.level, LOGL_DEBUG);
    CHECK(cfg.tunnel.enabled);
    CHECK_INT(cfg.tunnel.nhubs, 2);
    CHECK_STR(cfg.tunnel.hubs[1], "[2001:db8::1]:5555");
    CHECK_STR(cfg.tunnel.tun, "corr0");

    /* Traffic classes and routing. */
#define TUN_HEAD                                                                                   \
    "\"tunnel\":{\"hubs\":[\"198.51.100.7:5555\"],\"private_key_file\":\"/etc/corridor/key\","     \
    "\"hub_public_key\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\","                         \
    "\"address\":\"10.77.0.2/16\""
#define TWO_LINKS LINK_OK ",{\"name\":\"b\",\"interface\":\"usb1\"}"
    CHECK_INT(parse(MIN_HEAD TWO_LINKS "]," TUN_HEAD ",\"hub_timeout_ms\":5000,\"classes\":["
                                       "{\"name\":\"ticketing\",\"src_subnet\":\"10.1.0.0/24\","
                                       "\"mode\":\"failover\",\"failover_order\":[\"b\",\"a\"]},"
                                       "{\"name\":\"cctv\",\"dscp\":10,\"rate_kbps\":4000,"
                                       "\"priority\":\"passenger\"}]},"
                                       "\"routing\":{\"lan\":[\"192.168.10.0/24\"],"
                                       "\"fallback_after_s\":20}}"),
              0);
    CHECK_INT(cfg.tunnel.nclasses, 2);
    CHECK_INT(cfg.tunnel.hub_timeout_ms, 5000);
    CHECK_STR(cfg.tunnel.classes[0].mode, "failover");
    CHECK_INT(cfg.tunnel.classes[0].dscp, -1);
    CHECK_INT(cfg.tunnel.classes[0].nfailover, 2);
    CHECK_INT(cfg.tunnel.classes[0].failover[0], 1);
    CHECK(!cfg.tunnel.classes[0].passenger);
    CHECK_INT(cfg.tunnel.classes[1].dscp, 10);
    CHECK_INT(cfg.tunnel.classes[1].rate_kbps, 4000);
    CHECK(cfg.tunnel.classes[1].passenger);
    CHECK(cfg.routing.enabled);
    CHECK_INT(cfg.routing.nlan, 1);
    CHECK_INT(cfg.routing.fallback_after_s, 20);
    CHECK_INT(cfg.routing.table_base, 100);
    CHECK(cfg.routing.lan_nat && cfg.routing.fallback);
    bad(MIN_HEAD TWO_LINKS "]," TUN_HEAD ",\"classes\":[{\"name\":\"x\",\"dscp\":64}]}}",
        "tunnel.classes[0].dscp: must be in 0..63, got 64");
    bad(MIN_HEAD TWO_LINKS "]," TUN_HEAD ",\"classes\":[{\"name\":\"x\"}]}}",
        "tunnel.classes[0]: needs \"src_subnet\" or \"dscp\"");
    bad(MIN_HEAD TWO_LINKS "]," TUN_HEAD ",\"classes\":[{\"name\":\"x\",\"dscp\":1,"
                           "\"mode\":\"fast\"}]}}",
        "tunnel.classes[0].mode: \"fast\": must be bond, failover or redundant");
    bad(MIN_HEAD TWO_LINKS "]," TUN_HEAD ",\"classes\":[{\"name\":\"x\",\"dscp\":1,"
                           "\"mode\":\"failover\",\"failover_order\":[\"c\"]}]}}",
        "tunnel.classes[0].failover_order[0]: \"c\": no such link");
    bad(MIN_HEAD TWO_LINKS "]," TUN_HEAD ",\"classes\":[{\"name\":\"x\",\"dscp\":1,"
                           "\"failover_order\":[\"a\"]}]}}",
        "tunnel.classes[0].failover_order: only for mode \"failover\"");
    bad(MIN_HEAD TWO_LINKS "]," TUN_HEAD ",\"classes\":[{\"name\":\"x\",\"src_subnet\":"
                           "\"10.1.0.1/24\"}]}}",
        "tunnel.classes[0].src_subnet: \"10.1.0.1/24\": host bits set");
    bad(MIN_HEAD TWO_LINKS "]," TUN_HEAD ",\"classes\":[{\"name\":\"x\",\"dscp\":1},"
                           "{\"name\":\"x\",\"dscp\":2}]}}",
        "tunnel.classes[1]: name \"x\" used twice");
    bad(MIN_HEAD TWO_LINKS "]," TUN_HEAD ",\"classes\":[{\"name\":\"x\",\"dscp\":1,"
                           "\"priority\":\"high\"}]}}",
        "tunnel.classes[0].priority: \"high\": must be operational or passenger");
    bad(MIN_HEAD TWO_LINKS "],\"routing\":{\"fallback_after_s\":5}}",
        "routing: needs \"lan\" when there is no tunnel");
    bad(MIN_HEAD TWO_LINKS "],\"routing\":{\"lan\":[\"10.1.0.0/33\"]}}",
        "routing.lan[0]: \"10.1.0.0/33\": must be a subnet");
    bad(MIN_HEAD TWO_LINKS "],\"routing\":{\"lan\":[\"10.1.0.0/16\"],\"table_base\":250}}",
        "routing.table_base: must be in 1..236");
    bad(MIN_HEAD TWO_LINKS "],\"routing\":{\"lan\":[\"10.1.0.0/16\"],\"nat\":true}}",
        "routing.nat: unknown key");

    /* Errors name the key path and the problem. */
    bad("{\"data_dir\":\"/x\",\"links\":[" LINK_OK "]}", "t.json: vehicle_id: missing (required)");
    bad("{\"vehicle_id\":\"v\",\"links\":[" LINK_OK "]}", "data_dir: missing");
    bad("{\"vehicle_id\":\"v\",\"data_dir\":\"rel/dir\",\"links\":[" LINK_OK "]}",
        "data_dir: \"rel/dir\": must be an absolute path");
    bad("{\"vehicle_id\":\"v\",\"data_dir\":\"/x\"}", "links: missing (required)");
    bad(MIN_HEAD "]}", "links: must list at least one link");
    bad("{\"vehicle_id\":\"v\",\"data_dir\":\"/x\",\"links\":{}}",
        "links: must be an array, got an object");
    bad(MIN_HEAD LINK_OK ",{\"name\":\"b\",\"interface\":\"usb1\",\"modem\":{\"port\":\"/dev/x\","
                         "\"baud\":12345}}]}",
        "links[1].modem.baud: 12345 is not a standard modem rate");
    bad(MIN_HEAD "{\"name\":\"a\",\"interface\":\"usb0\",\"modem\":{\"port\":\"/dev/"
                 "x\",\"baud\":\"fast\"}}]}",
        "links[0].modem.baud: must be an integer in 300..4000000, got a string");
    bad(MIN_HEAD "{\"name\":\"a\",\"interface\":\"usb0\",\"modem\":{}}]}",
        "links[0].modem.port: missing (required)");
    bad(MIN_HEAD "{\"name\":\"a\",\"interface\":\"usb0\",\"modem\":{\"port\":\"ttyUSB2\"}}]}",
        "links[0].modem.port: \"ttyUSB2\": must be an absolute path");
    bad(MIN_HEAD "{\"name\":\"a\",\"interface\":\"usb0\",\"modem\":{\"port\":\"/dev/"
                 "x\",\"balance_ussd\":\"100\"}}]}",
        "links[0].modem.balance_ussd: \"100\": a USSD code ends with '#'");
    bad(MIN_HEAD LINK_OK "," LINK_OK "]}", "links[1].name: \"a\" is already the name of links[0]");
    bad(MIN_HEAD "{\"name\":\"a\",\"interface\":\"usb0\",\"modem\":{\"port\":\"/dev/x\"}},"
                 "{\"name\":\"b\",\"interface\":\"usb1\",\"modem\":{\"port\":\"/dev/x\"}}]}",
        "links[1].modem: port \"/dev/x\" is already used by links[0]");
    bad(MIN_HEAD "{\"name\":\"a b\",\"interface\":\"usb0\"}]}",
        "links[0].name: \"a b\": only letters");
    bad(MIN_HEAD "{\"name\":\"a\",\"interface\":\"usb0\",\"speed\":1}]}",
        "links[0].speed: unknown key");
    bad(MIN_HEAD LINK_OK "],\"dashbord\":{}}", "dashbord: unknown key");
    bad(MIN_HEAD LINK_OK "],\"log\":{\"level\":\"loud\"}}", "log.level: \"loud\": must be error");
    bad(MIN_HEAD LINK_OK "],\"dashboard\":{\"listen\":\"0.0.0.0\"}}",
        "dashboard.listen: \"0.0.0.0\": must be host:port");
    bad(MIN_HEAD LINK_OK "],\"dashboard\":{\"listen\":\"0.0.0.0:70000\"}}",
        "port must be 1..65535");
    bad(MIN_HEAD LINK_OK "],\"telemetry\":{\"upload_url\":\"ftp://x\"}}", "telemetry.upload_url");
    CHECK_INT(parse(MIN_HEAD LINK_OK "],\"telemetry\":{\"balance_alert\":50.5}}"), 0);
    CHECK_NEAR(cfg.telemetry.balance_alert, 50.5, 1e-9);
    bad(MIN_HEAD LINK_OK "],\"telemetry\":{\"batch_seconds\":1}}",
        "telemetry.batch_seconds: must be in 10..86400, got 1");
    bad(MIN_HEAD LINK_OK "],\"tunnel\":{}}", "tunnel.hubs: missing");
    bad(MIN_HEAD LINK_OK "],\"tunnel\":{\"hubs\":[\"h:1\"],\"private_key_file\":\"/k\","
                         "\"hub_public_key\":\"short\",\"address\":\"10.0.0.2/16\"}}",
        "tunnel.hub_public_key: must be a base64 X25519 public key");
    bad(MIN_HEAD LINK_OK "],\"tunnel\":{\"hubs\":[\"nohostport\"]}}",
        "tunnel.hubs[0]: \"nohostport\": must be host:port");
    bad("{\"vehicle_id\":\"v\",", "t.json: line 1 column");
    bad("[1,2]", "(top level): must be a JSON object, got an array");
    bad("{\"vehicle_id\":\"v\",\"vehicle_id\":\"w\"}", "duplicate");
    CHECK_INT(parse(MIN_HEAD LINK_OK "]}"), 0);
    CHECK_STR(cfg.board.power, "none");
    CHECK_INT(
        parse(MIN_HEAD LINK_OK "],\"board\":{\"power\":\"sim\",\"sim_control\":\"/tmp/s.sock\"}}"),
        0);
    CHECK_STR(cfg.board.power, "sim");
    CHECK_STR(cfg.board.sim_control, "/tmp/s.sock");
    bad(MIN_HEAD LINK_OK "],\"board\":{\"power\":\"gpio9\"}}", "board.power: \"gpio9\": must be");
    bad(MIN_HEAD LINK_OK "],\"board\":{\"power\":\"sim\"}}", "board.sim_control: missing");

    /* position and coverage */
    CHECK_INT(parse(MIN_HEAD LINK_OK "]}"), 0);
    CHECK_STR(cfg.position.gpsd_host, "localhost");
    CHECK_STR(cfg.position.gpsd_port, "2947");
    CHECK(cfg.coverage.enabled);
    CHECK_NEAR(cfg.coverage.cell_m, 50, 1e-9);
    CHECK_INT(parse(MIN_HEAD LINK_OK
                    "],\"position\":{\"gpsd\":\"10.0.0.5:2948\",\"dead_reckoning_max_s\":30},"
                    "\"coverage\":{\"cell_m\":100,\"horizon_s\":90}}"),
              0);
    CHECK_STR(cfg.position.gpsd_host, "10.0.0.5");
    CHECK_STR(cfg.position.gpsd_port, "2948");
    CHECK_INT(cfg.position.dr_max_gap_s, 30);
    CHECK_NEAR(cfg.coverage.cell_m, 100, 1e-9);
    CHECK_NEAR(cfg.coverage.horizon_s, 90, 1e-9);
    CHECK_INT(parse(MIN_HEAD LINK_OK "],\"position\":{\"gpsd\":\"\"}}"), 0);
    CHECK_STR(cfg.position.gpsd_host, "");
    bad(MIN_HEAD LINK_OK "],\"position\":{\"gpsd\":\"nohost\"}}",
        "position.gpsd: \"nohost\": must be host:port");
    bad(MIN_HEAD LINK_OK "],\"coverage\":{\"cell_m\":1}}",
        "coverage.cell_m: must be in 5..1000, got 1");
    bad(MIN_HEAD LINK_OK "],\"coverage\":{\"cell_m\":\"big\"}}",
        "coverage.cell_m: must be a number");

    /* Seventeen links is one too many. */
    char big[4096] = MIN_HEAD;
    for (int i = 0; i < 17; i++) {
        char l[64];
        snprintf(l, sizeof l, "%s{\"name\":\"l%d\",\"interface\":\"e%d\"}", i ? "," : "", i, i);
        strcat(big, l);
    }
    strcat(big, "]}");
    bad(big, "links: at most 16 links, got 17");

    /* File-level errors. */
    CHECK_INT(config_load("/nonexistent/corridor.json", &cfg, err, sizeof err), -1);
    CHECK(strstr(err, "/nonexistent/corridor.json: cannot open") != NULL);
    CHECK_INT(
        config_load(CORRIDOR_SOURCE_DIR "/docs/examples/corridor.json", &cfg, err, sizeof err), 0);
    CHECK_INT(cfg.nlinks, 3);
    return test_summary();
}
