/* test_board: the power-cycle backends. The "sim" backend speaks the simulator's control
 * protocol; here a tiny server thread plays the simulator and records what it was asked. */
#include "board/board.h"
#include "common/common.h"
#include "testlib.h"

#include <pthread.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static int lfd;
static char got[128];
static const char *answer;

static void *server(void *arg)
{
    int fd = accept(lfd, NULL, NULL);
    if (fd < 0)
        return NULL;
    ssize_t n = read(fd, got, sizeof got - 1);
    if (n > 0)
        got[n] = '\0';
    if (answer)
        (void)!write(fd, answer, strlen(answer));
    close(fd);
    return NULL;
}

static void start_server(const char *path)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    str_copy(sa.sun_path, path, sizeof sa.sun_path);
    unlink(path);
    lfd = socket(AF_UNIX, SOCK_STREAM, 0);
    CHECK(bind(lfd, (struct sockaddr *)&sa, sizeof sa) == 0);
    CHECK(listen(lfd, 1) == 0);
}

int main(void)
{
    char err[256];
    struct board *b;
    enum board_power_backend be;
    CHECK(board_power_backend_parse("sim", &be) == 0 && be == BOARD_POWER_SIM);
    CHECK(board_power_backend_parse("gpio9", &be) == -1);

    struct board_config none = {.power = BOARD_POWER_NONE};
    CHECK(board_open(&none, &b, err, sizeof err) == 0);
    CHECK(board_power_cycle(b, "mts", err, sizeof err) == -1);
    CHECK(strstr(err, "no power control") != NULL);
    board_close(b);

    struct board_config bad = {.power = BOARD_POWER_SIM};
    CHECK(board_open(&bad, &b, err, sizeof err) == -1);
    CHECK(strstr(err, "sim_control") != NULL);

    char path[64];
    snprintf(path, sizeof path, "/tmp/corridor-test-board-%d.sock", (int)getpid());
    struct board_config sim = {.power = BOARD_POWER_SIM};
    str_copy(sim.sim_control, path, sizeof sim.sim_control);
    CHECK(board_open(&sim, &b, err, sizeof err) == 0);

    /* Simulator not running: clear error naming the socket. */
    unlink(path);
    CHECK(board_power_cycle(b, "mts", err, sizeof err) == -1);
    CHECK(strstr(err, path) != NULL);

    pthread_t th;
    start_server(path);
    answer = "ok\n";
    pthread_create(&th, NULL, server, NULL);
    CHECK_INT(board_power_cycle(b, "mts", err, sizeof err), 0);
    pthread_join(th, NULL);
    CHECK_STR(got, "powercycle mts\n");
    close(lfd);

    start_server(path);
    answer = "error unknown modem tele2\n";
    pthread_create(&th, NULL, server, NULL);
    CHECK_INT(board_power_cycle(b, "tele2", err, sizeof err), -1);
    pthread_join(th, NULL);
    CHECK(strstr(err, "answered \"error unknown modem tele2\"") != NULL);
    CHECK(strstr(err, "\"powercycle tele2\"") != NULL);
    close(lfd);
    unlink(path);
    board_close(b);
    return test_summary();
}
