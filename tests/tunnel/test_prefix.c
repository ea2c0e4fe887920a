/* agg/prefix.c: the hub's longest-prefix match of vehicle LAN prefixes. */
#include "agg/prefix.h"
#include "testlib.h"

#define IP(a, b, c, d) (((uint32_t)(a) << 24) | ((uint32_t)(b) << 16) | ((uint32_t)(c) << 8) | (d))

int main(void)
{
    struct prefix_table *t = prefix_new(8);
    CHECK(t != NULL);
    CHECK_INT(prefix_lookup(t, IP(10, 0, 0, 1)), 0); /* empty */
    uint32_t clash = 99;
    CHECK_INT(prefix_add(t, IP(10, 77, 0, 0), 16, 0xffffffffu, &clash), 0); /* tunnel net */
    CHECK_INT(clash, 0);
    CHECK_INT(prefix_add(t, IP(10, 100, 42, 0), 24, 1, NULL), 0);
    CHECK_INT(prefix_add(t, IP(10, 100, 43, 0), 24, 2, NULL), 0);
    CHECK_INT(prefix_add(t, IP(172, 16, 5, 16), 28, 2, NULL), 0);
    CHECK_INT(prefix_lookup(t, IP(10, 100, 42, 7)), 1);
    CHECK_INT(prefix_lookup(t, IP(10, 100, 43, 255)), 2);
    CHECK_INT(prefix_lookup(t, IP(10, 100, 44, 1)), 0);
    CHECK_INT(prefix_lookup(t, IP(172, 16, 5, 31)), 2);
    CHECK_INT(prefix_lookup(t, IP(172, 16, 5, 32)), 0);
    CHECK_INT(prefix_lookup(t, IP(10, 77, 3, 4)), 0xffffffffu);
    /* overlaps are refused, naming the owner */
    CHECK_INT(prefix_add(t, IP(10, 100, 42, 128), 25, 3, &clash), -1); /* inside vehicle 1's */
    CHECK_INT(clash, 1);
    CHECK_INT(prefix_add(t, IP(10, 100, 0, 0), 16, 3, &clash), -1); /* contains 1's and 2's */
    CHECK(clash == 1 || clash == 2);
    CHECK_INT(prefix_add(t, IP(10, 77, 9, 0), 24, 3, &clash), -1); /* in the tunnel network */
    CHECK_INT(clash, 0xffffffffu);
    CHECK_INT(prefix_add(t, IP(10, 100, 42, 0), 24, 3, &clash), -1); /* the same one again */
    CHECK_INT(clash, 1);
    /* malformed */
    CHECK_INT(prefix_add(t, IP(10, 9, 0, 1), 24, 3, NULL), -1); /* host bits */
    CHECK_INT(prefix_add(t, IP(10, 9, 0, 0), 33, 3, NULL), -1);
    CHECK_INT(prefix_add(t, IP(10, 9, 0, 0), 24, 0, NULL), -1); /* value 0 = empty */
    /* a default route owns everything left: only when nothing else is there */
    CHECK_INT(prefix_add(t, 0, 0, 4, &clash), -1);
    /* full */
    CHECK_INT(prefix_add(t, IP(192, 168, 1, 0), 24, 5, NULL), 0);
    CHECK_INT(prefix_add(t, IP(192, 168, 2, 0), 24, 5, NULL), 0);
    CHECK_INT(prefix_add(t, IP(192, 168, 3, 0), 24, 5, NULL), 0);
    CHECK_INT(prefix_add(t, IP(192, 168, 4, 0), 24, 5, NULL), 0);
    CHECK_INT(prefix_add(t, IP(192, 168, 5, 0), 24, 5, NULL), -1); /* 9th of 8 */
    prefix_free(t);

    /* a fleet: 4096 vehicles with one /24 and one /28 each */
    t = prefix_new(8192);
    CHECK(t != NULL);
    int fails = 0;
    for (uint32_t v = 0; v < 4096; v++) {
        fails += prefix_add(t, IP(10, 128 + (v >> 8), v & 255, 0), 24, v + 1, NULL) != 0;
        fails += prefix_add(t, IP(172, 16, 0, 0) + v * 16, 28, v + 1, NULL) != 0;
    }
    CHECK_INT(fails, 0);
    int wrong = 0;
    for (uint32_t v = 0; v < 4096; v++) {
        wrong += prefix_lookup(t, IP(10, 128 + (v >> 8), v & 255, 77)) != v + 1;
        wrong += prefix_lookup(t, IP(172, 16, 0, 0) + v * 16 + 9) != v + 1;
    }
    CHECK_INT(wrong, 0);
    CHECK_INT(prefix_lookup(t, IP(10, 127, 255, 255)), 0);
    prefix_free(t);
    prefix_free(NULL);
    return test_summary();
}
