// fuzz-libs: corridor_agg corridor_common
/* fuzz_ctrl: the control-message decoders (probe, probe reply, feedback, class table,
 * weights) on arbitrary bytes, then whatever decodes is fed to a live scheduler, as a peer
 * (authenticated, but buggy or hostile) could: nothing may crash, hang or grow. A decoded message
 * must re-encode to bytes that decode to the same message. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "agg/ctrl.h"
#include "agg/reorder.h"
#include "agg/sched.h"

static struct sched *S;
static uint64_t now_us = 1000000;

static void setup(void)
{
    char err[128];
    struct sched_cfg c;
    sched_cfg_default(&c);
    c.inflight_slots = 256;
    c.seq_slots = 1024;
    S = sched_new(&c, err, sizeof(err));
    if (!S)
        abort();
    for (uint8_t i = 0; i < 3; i++)
        sched_add_link(S, i, 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!S)
        setup();
    uint8_t out[CTRL_MAX_ENCODED];
    struct sched_decision d;
    struct ctrl_probe pr[4];
    now_us += 1000;
    /* some traffic so feedback has in-flight packets to act on */
    static uint64_t seq = 1;
    for (int i = 0; i < 4; i++)
        if (sched_send(S, seq, 1200, 0, now_us, &d) == SCHED_SEND)
            seq++;
    switch (ctrl_type(data, size)) {
    case CTRL_PROBE:
    case CTRL_PROBE_PAD: {
        struct ctrl_probe p, q;
        memset(&p, 0, sizeof(p)); /* padding must compare equal */
        memset(&q, 0, sizeof(q));
        if (ctrl_decode_probe(data, size, &p) == 0) {
            size_t n = ctrl_encode_probe(&p, out, sizeof(out));
            if (n == 0 || ctrl_decode_probe(out, n, &q) != 0 || memcmp(&p, &q, sizeof(p)) != 0)
                abort();
        }
        break;
    }
    case CTRL_PROBE_REPLY: {
        struct ctrl_probe_reply r, q;
        memset(&r, 0, sizeof(r));
        memset(&q, 0, sizeof(q));
        if (ctrl_decode_probe_reply(data, size, &r) == 0) {
            size_t n = ctrl_encode_probe_reply(&r, out, sizeof(out));
            if (n == 0 || ctrl_decode_probe_reply(out, n, &q) != 0 ||
                memcmp(&r, &q, sizeof(r)) != 0)
                abort();
            sched_on_probe_reply(S, &r, now_us);
        }
        break;
    }
    case CTRL_FEEDBACK: {
        static struct ctrl_feedback f, g;
        memset(&f, 0, sizeof(f));
        memset(&g, 0, sizeof(g));
        if (ctrl_decode_feedback(data, size, &f) == 0) {
            size_t n = ctrl_encode_feedback(&f, out, sizeof(out));
            /* n may be shorter than size: the decoder accepts padded varints */
            if (n == 0 || ctrl_decode_feedback(out, n, &g) != 0 || memcmp(&f, &g, sizeof(f)) != 0)
                abort();
            sched_on_feedback(S, &f, f.n_links ? f.links[0].link_id : 0, now_us);
            uint64_t rs[64];
            size_t k = sched_take_resend(S, rs, 64);
            for (size_t i = 0; i < k; i++)
                sched_resend(S, rs[i], 1200, now_us, &d);
        }
        break;
    }
    case CTRL_WEIGHTS: {
        static struct ctrl_weights w, x;
        memset(&w, 0, sizeof(w));
        memset(&x, 0, sizeof(x));
        if (ctrl_decode_weights(data, size, &w) == 0) {
            size_t n = ctrl_encode_weights(&w, out, sizeof(out));
            if (n == 0 || ctrl_decode_weights(out, n, &x) != 0 || memcmp(&w, &x, sizeof(w)) != 0)
                abort();
            for (unsigned i = 0; i < w.n; i++)
                sched_set_weight(S, w.link_id[i], w.w[i] / 65535.0);
        }
        break;
    }
    case CTRL_CLASSES: {
        /* A class table from the vehicle: the hub applies it to a live scheduler and
         * classifies with it. */
        static struct ctrl_classes c, e;
        memset(&c, 0, sizeof(c));
        memset(&e, 0, sizeof(e));
        if (ctrl_decode_classes(data, size, &c) == 0) {
            size_t n = ctrl_encode_classes(&c, out, sizeof(out));
            if (n == 0 || ctrl_decode_classes(out, n, &e) != 0 || memcmp(&c, &e, sizeof(c)) != 0)
                abort();
            for (unsigned i = 0; i < c.n; i++) {
                struct sched_class_cfg sc;
                memset(&sc, 0, sizeof(sc));
                sc.mode = c.c[i].mode;
                sc.priority = c.c[i].passenger;
                sc.rate_cap_bps = (uint64_t)c.c[i].rate_kbps * 1000;
                for (unsigned o = 0; o < c.c[i].n_order; o++)
                    sc.link_prio[c.c[i].order[o]] = (uint8_t)o;
                if (sched_set_class(S, i + 1, &sc) != 0)
                    abort();
                sched_send(S, seq++, 1200, i + 1, now_us, &d);
            }
        }
        break;
    }
    default:
        break;
    }
    sched_tick(S, now_us, pr, 4);
    return 0;
}
