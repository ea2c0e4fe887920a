#!/usr/bin/env python3
"""Where one TCP flow's slow start ended, from `ss -tin` samples (bench_tunnel.sh slowstart).

Input: a file of blocks, each a line "T <n> <unix time>" followed by that moment's `ss -tin`
output. The flow is the connection with the most bytes acked (iperf3's control connection
carries a few hundred bytes). Prints one line: the time slow start ended (the first sample with
an ssthresh, relative to the first sample with data acked), cwnd there in segments and bytes,
the flow's minimum RTT, and the highest smoothed RTT seen before the end with its rise over the
minimum (HyStart ends slow start on a rise of 1/8 of the minimum, between 4 and 16 ms).
Exit 1 if no sample had data."""
import re
import sys

FIELDS = ("bytes_acked", "cwnd", "ssthresh", "rtt", "minrtt", "mss")


def field(line, name):
    m = re.search(r"\b%s:([0-9.]+)" % name, line)
    return float(m.group(1)) if m else None


def samples(path):
    t = None
    best = None
    for line in open(path):
        if line.startswith("T "):
            if best:
                yield t, best
            t = float(line.split()[2])
            best = None
            continue
        acked = field(line, "bytes_acked")
        if acked is None:
            continue
        if best is None or acked > best["bytes_acked"]:
            best = {k: field(line, k) for k in FIELDS}
    if best:
        yield t, best


def main():
    rows = [(t, s) for t, s in samples(sys.argv[1]) if s["bytes_acked"] and s["bytes_acked"] > 1000]
    if not rows:
        print("slowstart: no data acked")
        return 1
    t0 = rows[0][0]
    peak = 0.0
    for t, s in rows:
        if s["ssthresh"] is not None:
            mss = s["mss"] or 1448
            minrtt = s["minrtt"] or 0
            print("slowstart_end_s=%.2f cwnd=%d (%.0f kB) minrtt_ms=%.1f max_srtt_before_ms=%.1f "
                  "(+%.1f)" % (t - t0, s["cwnd"], s["cwnd"] * mss / 1000, minrtt, peak,
                               peak - minrtt))
            return 0
        peak = max(peak, s["rtt"] or 0)
    print("slowstart_end_s=none (still in slow start after %.1f s) cwnd=%d" %
          (rows[-1][0] - t0, rows[-1][1]["cwnd"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
