/* testlib: the minimal assertion kit used by every unit test.
 * Each failed check prints file:line and the values; the test binary ends with the line
 * "N passed, N failed" and exits non-zero if anything failed. */
#ifndef CORRIDOR_TESTLIB_H
#define CORRIDOR_TESTLIB_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int t_pass, t_fail;

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (cond) {                                                                                \
            t_pass++;                                                                              \
        } else {                                                                                   \
            t_fail++;                                                                              \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);               \
        }                                                                                          \
    } while (0)

#define CHECK_MSG(cond, ...)                                                                       \
    do {                                                                                           \
        if (cond) {                                                                                \
            t_pass++;                                                                              \
        } else {                                                                                   \
            t_fail++;                                                                              \
            fprintf(stderr, "%s:%d: CHECK failed: %s: ", __FILE__, __LINE__, #cond);               \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fputc('\n', stderr);                                                                   \
        }                                                                                          \
    } while (0)

#define CHECK_INT(a, b)                                                                            \
    do {                                                                                           \
        long long va_ = (long long)(a), vb_ = (long long)(b);                                      \
        CHECK_MSG(va_ == vb_, "%s = %lld, expected %lld", #a, va_, vb_);                           \
    } while (0)

#define CHECK_STR(a, b)                                                                            \
    do {                                                                                           \
        const char *sa_ = (a), *sb_ = (b);                                                         \
        CHECK_MSG(sa_ &&sb_ &&strcmp(sa_, sb_) == 0, "%s = \"%s\", expected \"%s\"", #a,           \
                  sa_ ? sa_ : "(null)", sb_ ? sb_ : "(null)");                                     \
    } while (0)

#define CHECK_NEAR(a, b, eps)                                                                      \
    do {                                                                                           \
        double da_ = (a), db_ = (b);                                                               \
        CHECK_MSG(fabs(da_ - db_) <= (eps), "%s = %.6f, expected %.6f", #a, da_, db_);             \
    } while (0)

#define CHECK_NAN(a) CHECK_MSG(isnan((double)(a)), "%s = %f, expected NAN", #a, (double)(a))

static inline int test_summary(void)
{
    printf("%d passed, %d failed\n", t_pass, t_fail);
    return t_fail ? 1 : 0;
}

#endif
