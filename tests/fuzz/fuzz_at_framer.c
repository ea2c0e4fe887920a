// fuzz-libs: corridor_modem corridor_common
/* fuzz_at_framer: arbitrary bytes into the AT line framer in chunks whose sizes come from the
 * input itself. Invariants: every line is non-empty, at most AT_LINE_MAX bytes, NUL-terminated
 * at len, free of control bytes except the '\n' that joins a continued quoted string; and the
 * chunking never changes what comes out (the same lines as one feed of the whole input). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "modem/at.h"

struct acc {
    uint64_t hash;
    uint64_t n;
};

static void on_line(void *ctx, const char *line, size_t len, bool truncated)
{
    struct acc *a = ctx;
    if (len == 0 || len > AT_LINE_MAX || line[len] != '\0')
        abort();
    if (line[0] == '\n' || line[len - 1] == '\n')
        abort(); /* a join sits between two non-empty segments */
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)line[i];
        if ((c < 0x20 && c != '\n') || c >= 0x7f)
            abort();
    }
    /* FNV-1a over the lines and their flags */
    for (size_t i = 0; i < len; i++)
        a->hash = (a->hash ^ (unsigned char)line[i]) * 1099511628211ull;
    a->hash = (a->hash ^ (truncated ? 0x100u : 0x200u)) * 1099511628211ull;
    a->n++;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    uint32_t rng = (uint32_t)data[0] << 8 | data[1];
    rng = rng * 2654435761u + 1;
    data += 2;
    size -= 2;

    static struct at_framer f1, f2;
    struct acc a1 = {14695981039346656037ull, 0}, a2 = {14695981039346656037ull, 0};
    at_framer_init(&f1);
    at_framer_feed(&f1, data, size, on_line, &a1);

    at_framer_init(&f2);
    size_t off = 0;
    while (off < size) {
        rng ^= rng << 13;
        rng ^= rng >> 17;
        rng ^= rng << 5;
        size_t chunk = 1 + rng % 97;
        if (chunk > size - off)
            chunk = size - off;
        at_framer_feed(&f2, data + off, chunk, on_line, &a2);
        off += chunk;
    }
    if (a1.hash != a2.hash || a1.n != a2.n || f1.lines != f2.lines ||
        f1.dropped_bytes != f2.dropped_bytes || f1.truncated_lines != f2.truncated_lines ||
        f1.len != f2.len)
        abort();
    if (f1.len > AT_LINE_MAX || f1.lines != a1.n)
        abort();
    return 0;
}
