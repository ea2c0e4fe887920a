/* firmware/provision.c: the hub list document from the data center and its cache. */
#include "firmware/provision.h"
#include "testlib.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char hubs[CFG_MAX_HUBS][64];
static unsigned n;
static char err[256];

static int parse(const char *s)
{
    return provision_parse(s, strlen(s), hubs, &n, err, sizeof err);
}

static void bad(const char *s, const char *want)
{
    CHECK_INT(parse(s), -1);
    CHECK_INT(n, 0);
    CHECK_MSG(strstr(err, want) != NULL, "error \"%s\" lacks \"%s\"", err, want);
}

int main(void)
{
    CHECK_INT(parse("{\"hubs\": [\"198.51.100.7:5555\", \"203.0.113.9:443\"], \"ttl\": 3600}"), 0);
    CHECK_INT(n, 2);
    CHECK_STR(hubs[0], "198.51.100.7:5555");
    CHECK_STR(hubs[1], "203.0.113.9:443");
    bad("", "not JSON");
    bad("[\"198.51.100.7:5555\"]", "\"hubs\" must be an array");
    bad("{\"hubs\": []}", "\"hubs\" must be an array of 1..8");
    bad("{\"hubs\": [\"hub.example:5555\"]}", "hubs[0]: must be \"a.b.c.d:port\"");
    bad("{\"hubs\": [\"198.51.100.7:0\"]}", "hubs[0]");
    bad("{\"hubs\": [\"198.51.100.7:5555\", \"198.51.100.256:1\"]}", "hubs[1]");
    bad("{\"hubs\": [\"198.51.100.7:5555x\"]}", "hubs[0]");
    bad("{\"hubs\": [1]}", "hubs[0]");
    bad("{\"hubs\": [\"1.2.3.4:5\",\"1.2.3.4:5\"]}", "hubs[1]: \"1.2.3.4:5\" listed twice");
    bad("{\"hubs\": [\"1.1.1.1:1\",\"1.1.1.2:1\",\"1.1.1.3:1\",\"1.1.1.4:1\",\"1.1.1.5:1\","
        "\"1.1.1.6:1\",\"1.1.1.7:1\",\"1.1.1.8:1\",\"1.1.1.9:1\"]}",
        "1..8");
    bad("{\"hubs\": [\"1.1.1.1:1\"], \"hubs\": [\"1.1.1.2:1\"]}", "not JSON"); /* duplicate key */

    /* cache round trip in a fresh directory; a damaged cache is an error, not a crash */
    char dir[] = "/tmp/corridor-provision-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    CHECK_INT(provision_cache_load(dir, hubs, &n, err, sizeof err), -1);
    CHECK(strstr(err, "hubs.json") != NULL);
    CHECK_INT(parse("{\"hubs\": [\"198.51.100.7:5555\", \"203.0.113.9:443\"]}"), 0);
    CHECK_INT(provision_cache_store(dir, hubs, n, err, sizeof err), 0);
    memset(hubs, 0, sizeof hubs);
    CHECK_INT(provision_cache_load(dir, hubs, &n, err, sizeof err), 0);
    CHECK_INT(n, 2);
    CHECK_STR(hubs[1], "203.0.113.9:443");
    char path[128], tmp[160];
    snprintf(path, sizeof path, "%s/hubs.json", dir);
    snprintf(tmp, sizeof tmp, "%s/hubs.json.tmp", dir);
    CHECK(access(tmp, F_OK) != 0); /* no temp file left behind */
    FILE *f = fopen(path, "w");
    fputs("{\"hubs\": [\"198.51.100", f); /* torn write by a bad editor */
    fclose(f);
    CHECK_INT(provision_cache_load(dir, hubs, &n, err, sizeof err), -1);
    CHECK(strstr(err, "not JSON") != NULL);
    unlink(path);
    rmdir(dir);
    CHECK_INT(provision_cache_store("/nonexistent/dir", hubs, 1, err, sizeof err), -1);
    CHECK(strstr(err, "/nonexistent/dir/hubs.json") != NULL);
    return test_summary();
}
