/* test_at_serial: the serial layer on a real pty pair (the termios backend, since libserialport
 * 0.1.1 refuses ptys): raw reads and writes, timeouts, input flush, and a vanished peer. */
#include <fcntl.h>
#include <pty.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#include "common/common.h"
#include "modem/at.h"
#include "testlib.h"

static ssize_t read_master(int m, char *buf, size_t n, int ms)
{
    size_t got = 0;
    uint64_t end = mono_ms() + (uint64_t)ms;
    while (got < n && mono_ms() < end) {
        ssize_t k = read(m, buf + got, n - got);
        if (k > 0)
            got += (size_t)k;
        else
            usleep(2000);
    }
    return (ssize_t)got;
}

int main(void)
{
    int m, sl;
    char name[64];
    if (openpty(&m, &sl, name, NULL, NULL) != 0) {
        perror("openpty");
        return 1;
    }
    close(sl);
    fcntl(m, F_SETFL, fcntl(m, F_GETFL) | O_NONBLOCK);

    char err[256];
    struct serial *s = NULL;
    CHECK_INT(serial_open(name, 115200, &s, err, sizeof(err)), 0);
    CHECK(s != NULL);
    if (!s) {
        fprintf(stderr, "%s\n", err);
        return test_summary();
    }
    CHECK(serial_present(name));
    CHECK(!serial_present("/dev/corridor-no-such-port"));
    CHECK(!serial_present(""));
    CHECK(!serial_present(NULL));

    /* errors name the path */
    struct serial *bad = (struct serial *)1;
    CHECK_INT(serial_open("/dev/corridor-no-such-port", 115200, &bad, err, sizeof(err)), -1);
    CHECK(bad == NULL);
    CHECK(strstr(err, "/dev/corridor-no-such-port") != NULL);
    char tmp[] = "/tmp/corridor-at-serial-XXXXXX";
    int tf = mkstemp(tmp);
    CHECK(tf >= 0);
    CHECK(!serial_present(tmp)); /* a regular file is not a port */
    CHECK_INT(serial_open(tmp, 115200, &bad, err, sizeof(err)), -1);
    CHECK(strstr(err, "tty") != NULL);
    close(tf);
    unlink(tmp);
    CHECK_INT(serial_open(name, 12345, &bad, err, sizeof(err)), -1);

    /* master -> port, raw: CR and LF pass untranslated */
    CHECK_INT(write(m, "OK\r\n", 4), 4);
    char buf[64] = {0};
    ssize_t k = serial_read(s, buf, sizeof(buf), 1000);
    CHECK_INT(k, 4);
    CHECK(memcmp(buf, "OK\r\n", 4) == 0);

    /* port -> master */
    CHECK_INT(serial_write(s, "AT+CSQ\r", 7, 1000), 0);
    memset(buf, 0, sizeof(buf));
    CHECK_INT(read_master(m, buf, 7, 1000), 7);
    CHECK_STR(buf, "AT+CSQ\r");

    /* nothing to read: 0 after the timeout */
    uint64_t t0 = mono_ms();
    CHECK_INT(serial_read(s, buf, sizeof(buf), 150), 0);
    uint64_t dt = mono_ms() - t0;
    CHECK_MSG(dt >= 140 && dt < 300, "read timeout took %llu ms", (unsigned long long)dt);

    /* flush drops pending input */
    CHECK_INT(write(m, "stale OK\r\n", 10), 10);
    usleep(30000);
    serial_flush_input(s);
    CHECK_INT(serial_read(s, buf, sizeof(buf), 50), 0);

    /* the peer vanishes: -1, promptly */
    close(m);
    t0 = mono_ms();
    CHECK_INT(serial_read(s, buf, sizeof(buf), 1000), -1);
    CHECK(mono_ms() - t0 < 500);
    CHECK_INT(serial_write(s, "AT\r", 3, 200), -1);
    serial_close(s);
    serial_close(NULL);
    return test_summary();
}
