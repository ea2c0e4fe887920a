/* test_at_framer: the AT line framer, fed whole, split at every byte boundary and byte by byte. */
#include <stdbool.h>
#include <stdint.h>

#include "modem/at.h"
#include "testlib.h"

#define MAXL 128

struct col {
    unsigned n;
    char line[MAXL][AT_LINE_MAX + 1];
    size_t len[MAXL];
    bool trunc[MAXL];
};

static void on_line(void *ctx, const char *line, size_t len, bool truncated)
{
    struct col *c = ctx;
    if (c->n >= MAXL)
        return;
    CHECK(len <= AT_LINE_MAX);
    CHECK_INT(strlen(line), len);
    memcpy(c->line[c->n], line, len + 1);
    c->len[c->n] = len;
    c->trunc[c->n] = truncated;
    c->n++;
}

static struct col *run(struct at_framer *f, const char *in, size_t n, size_t chunk)
{
    static struct col c;
    memset(&c, 0, sizeof(c));
    at_framer_init(f);
    for (size_t off = 0; off < n; off += chunk)
        at_framer_feed(f, in + off, n - off < chunk ? n - off : chunk, on_line, &c);
    return &c;
}

static bool same(const struct col *a, const struct col *b)
{
    if (a->n != b->n)
        return false;
    for (unsigned i = 0; i < a->n; i++)
        if (a->len[i] != b->len[i] || strcmp(a->line[i], b->line[i]) != 0 ||
            a->trunc[i] != b->trunc[i])
            return false;
    return true;
}

/* Feeding in two pieces split at every byte, and one byte at a time, gives the same lines. */
static void check_splits(const char *in, size_t n)
{
    static struct col whole;
    struct at_framer f;
    whole = *run(&f, in, n, n ? n : 1);
    unsigned bad = 0;
    for (size_t cut = 0; cut <= n; cut++) {
        static struct col c;
        memset(&c, 0, sizeof(c));
        at_framer_init(&f);
        at_framer_feed(&f, in, cut, on_line, &c);
        at_framer_feed(&f, in + cut, n - cut, on_line, &c);
        if (!same(&whole, &c))
            bad++;
    }
    CHECK_INT(bad, 0);
    CHECK(same(&whole, run(&f, in, n, 1)));
    CHECK(same(&whole, run(&f, in, n, 3)));
}

static void expect_lines(const char *in, size_t n, const char *const *want, unsigned nwant)
{
    struct at_framer f;
    struct col *c = run(&f, in, n, n ? n : 1);
    CHECK_INT(c->n, nwant);
    for (unsigned i = 0; i < nwant && i < c->n; i++)
        CHECK_STR(c->line[i], want[i]);
    check_splits(in, n);
}

#define EXPECT(in, ...)                                                                            \
    do {                                                                                           \
        static const char *const w_[] = {__VA_ARGS__};                                             \
        expect_lines(in, sizeof(in) - 1, w_, ARRAY_LEN_(w_));                                      \
    } while (0)
#define ARRAY_LEN_(a) (unsigned)(sizeof(a) / sizeof((a)[0]))

static void test_basic(void)
{
    /* echo on: the echo ends in \r\r\n */
    EXPECT("AT+CSQ\r\r\n+CSQ: 20,99\r\n\r\nOK\r\n", "AT+CSQ", "+CSQ: 20,99", "OK");
    EXPECT("A\rB\r", "A", "B");
    EXPECT("A\nB\n", "A", "B");
    EXPECT("A\r\nB\r\n", "A", "B");
    EXPECT("\n\r\r\nA\r\n\r\n\n\rB\n\r", "A", "B");
    EXPECT("\r\n+COPS: 0,0,\"MTS RUS\",7\r\n\r\nOK\r\n", "+COPS: 0,0,\"MTS RUS\",7", "OK");
    /* no line end yet: nothing delivered */
    struct at_framer f;
    struct col *c = run(&f, "+CSQ: 1", 7, 7);
    CHECK_INT(c->n, 0);
    CHECK_INT(f.len, 7);
    CHECK_INT(f.lines, 0);
}

static void test_garbage(void)
{
    EXPECT("O\0K\r\n", "OK");
    EXPECT("\xff\xfe\x01\x1b[0mOK\r\n\x80\x81\x82\r\n\t\r\n", "[0mOK");
    EXPECT("+CSQ: 2\x00"
           "0,99\r\n\0\0\0\r\nOK\r\n",
           "+CSQ: 20,99", "OK");
    struct at_framer f;
    run(&f,
        "\0\0\xff"
        "OK\r\n\x7f",
        8, 8);
    CHECK_INT(f.dropped_bytes, 4);
    CHECK_INT(f.lines, 1);
}

static void test_long(void)
{
    static char in[4000];
    memset(in, 'A', 3000);
    memcpy(in + 3000, "\r\nOK\r\n", 6);
    struct at_framer f;
    struct col *c = run(&f, in, 3006, 3006);
    CHECK_INT(c->n, 2);
    CHECK_INT(c->len[0], AT_LINE_MAX);
    CHECK(c->trunc[0]);
    CHECK_STR(c->line[1], "OK");
    CHECK(!c->trunc[1]);
    CHECK_INT(f.truncated_lines, 1);
    check_splits(in, 3006);
    /* exactly AT_LINE_MAX fits untruncated */
    memset(in, 'B', AT_LINE_MAX);
    memcpy(in + AT_LINE_MAX, "\r\n", 2);
    c = run(&f, in, AT_LINE_MAX + 2, 7);
    CHECK_INT(c->n, 1);
    CHECK_INT(c->len[0], AT_LINE_MAX);
    CHECK(!c->trunc[0]);
}

static void test_cusd(void)
{
    /* +CUSD text with embedded CR LF (at_replies.json case 250 shape) */
    EXPECT("OK\r\n+CUSD: 1,\"Bal:$100.00 *\r\nExp 01 Jan 2013\r\n1. Recharge\r\n\",15\r\n", "OK",
           "+CUSD: 1,\"Bal:$100.00 *\nExp 01 Jan 2013\n1. Recharge\n\",15");
    EXPECT("\r\n+CUSD: 0,\"Balance: 1.00\r\n\r\nValid\",15\r\n\r\nOK\r\n",
           "+CUSD: 0,\"Balance: 1.00\nValid\",15", "OK");
    /* a stray quote must not swallow the final result */
    EXPECT("noise\"abc\r\n+CSQ: 1,2\r\nOK\r\n", "noise\"abc\n+CSQ: 1,2", "OK");
    EXPECT("+CME ERROR: \"x\r\n", "+CME ERROR: \"x");
    EXPECT("junk\"\r\n\r\nERROR\r\nAT\r\n", "junk\"", "ERROR", "AT");
    EXPECT("junk\"\r\n+CME ERROR: 10\r\n", "junk\"", "+CME ERROR: 10");
}

static void test_cusd_bounds(void)
{
    /* open quote followed by lots of lines and no final code: every line stays capped, and the
     * OK at the end still comes out on its own */
    static char in[8000];
    size_t n = 0;
    in[n++] = '"';
    for (int i = 0; i < 60; i++) {
        memset(in + n, 'x', 99);
        n += 99;
        in[n++] = '\r';
        in[n++] = '\n';
    }
    memcpy(in + n, "OK\r\n", 4);
    n += 4;
    struct at_framer f;
    struct col *c = run(&f, in, n, n);
    CHECK(c->n >= 2);
    for (unsigned i = 0; i < c->n; i++)
        CHECK(c->len[i] <= AT_LINE_MAX);
    CHECK_STR(c->line[c->n - 1], "OK");
    check_splits(in, n);

    /* the cap reached inside a later segment that is the final result */
    n = 0;
    in[n++] = '"';
    memset(in + n, 'a', 1020);
    n += 1020;
    memcpy(in + n, "\r\nERROR\r\n", 9);
    n += 9;
    c = run(&f, in, n, n);
    CHECK_INT(c->n, 2);
    CHECK_INT(c->len[0], 1021);
    CHECK(c->trunc[0]);
    CHECK_STR(c->line[1], "ERROR");
    check_splits(in, n);

    /* pending line leaves no room for a join */
    n = 0;
    in[n++] = '"';
    memset(in + n, 'a', 1023);
    n += 1023;
    memcpy(in + n, "\r\nOK\r\n", 6);
    n += 6;
    c = run(&f, in, n, n);
    CHECK_INT(c->n, 2);
    CHECK_INT(c->len[0], 1024);
    CHECK_STR(c->line[1], "OK");
}

static void test_prompt(void)
{
    EXPECT("AT+CMGS=\"+79161234567\"\r\r\n> ", "AT+CMGS=\"+79161234567\"", "> ");
    EXPECT("\r\n> hello\r\n", "> ", "hello");
    EXPECT("\r\n>x\r\n", ">x");
}

int main(void)
{
    test_basic();
    test_garbage();
    test_long();
    test_cusd();
    test_cusd_bounds();
    test_prompt();
    return test_summary();
}
