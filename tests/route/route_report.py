#!/usr/bin/env python3
"""route_report: score one trip of a route replay (tests/route/route_bench.sh).

Inputs: the generator's truth.txt (schedule seconds from `go`), the probe's output (unix times),
corridor's log (policy state changes, unix times), and the unix time of `go`.
Prints key=value lines:
  entry_link_lost data packets (IP >= 200 B: not keepalive probes, not bare TCP acks) the
                  tunnel lost into the dead zones' entries, counted by the link emulator of
                  that link (both directions): those in flight at the cut plus those the tunnel
                  kept sending into the dead link before it noticed. The tunnel resends some of them on other links (sched.c), so the
                  application may not see them all as lost, but it sees them late.
  entry_lost      UDP packets lost end to end that were sent within [entry - 1 s, entry + 3 s]
                  of a dead-zone entry on this trip
  trip_lost       UDP packets lost during the trip's drive
  udp_max_gap_ms  longest gap between consecutive UDP arrivals during the drive (the probe
                  records gaps of 20 ms or more: 0 means none)
  tcp_max_gap_ms  longest gap between consecutive TCP reads during the drive
  wrong_off_s     seconds a link was held off (policy state not "active") while its operator was
                  good: its radio at full strength (outside its dead zones and the fading around
                  them, fade_m either side) and not within PRE s before such a stretch (the
                  policy's lead time, margin 3 s + one 1 s step) nor POST s after it (ease-in
                  3 s + one step + the modem's report lag)
  wrong_off_pct   wrong_off_s / drive time x 100
  off_s           all time links were off during the drive
and one "entry LINK KIND LOST" line per dead-zone entry.
"""
import argparse
import datetime
import re
import sys


def parse_truth(path):
    t = {"trips": {}, "zones": [], "ops": {}}
    for line in open(path):
        f = line.split()
        if not f or f[0].startswith("#"):
            continue
        if f[0] == "total":
            t["total"] = float(f[1])
        elif f[0] == "measured":
            t["measured"] = int(f[1])
        elif f[0] == "op":
            t["ops"][f[2]] = int(f[1])
        elif f[0] == "trip":
            t["trips"][int(f[1])] = (float(f[2]), float(f[3]))
        elif f[0] == "zone":
            z = {"link": int(f[1]), "name": f[2], "trip": int(f[3]),
                 "entry": float(f[5]), "exit": float(f[6]), "kind": f[7]}
            z["fade_in"] = float(f[8]) if len(f) > 9 else z["entry"]
            z["fade_out"] = float(f[9]) if len(f) > 9 else z["exit"]
            t["zones"].append(z)
    return t


def parse_probe(path, go):
    p = {"lost": [], "udp_gaps": [], "tcp_gaps": [], "stalls": []}
    for line in open(path):
        f = line.split()
        if not f:
            continue
        if f[0] == "udp_lost":
            p["lost"].append(float(f[2]) - go)
        elif f[0] == "udp_gap":
            p["udp_gaps"].append((float(f[1]) - go, float(f[2])))
        elif f[0] == "tcp_gap":
            p["tcp_gaps"].append((float(f[1]) - go, float(f[2])))
        elif f[0] == "stall":
            p["stalls"].append((float(f[1]) - go, float(f[2])))
    return p


LOG_RE = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3})Z\s+\w+\s+policy: ([^:]+): (\w[\w-]*)")


def parse_policy(path, go):
    """Per link name: list of (t, off) transitions."""
    ev = {}
    for line in open(path, errors="replace"):
        m = LOG_RE.match(line)
        if not m:
            continue
        ts = datetime.datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S.%f")
        ts = ts.replace(tzinfo=datetime.timezone.utc).timestamp() - go
        ev.setdefault(m.group(2), []).append((ts, m.group(3) != "active"))
    return ev


def go_from_emulator(path):
    """t = 0 of the link emulators: the log time of the first applied schedule event minus its
    schedule time and lateness (exact to the log's millisecond)."""
    rx = re.compile(r"^(\S+)Z .*schedule event at (\d+) ms applied \(late by ([\d.]+) ms\)")
    for line in open(path, errors="replace"):
        m = rx.match(line)
        if m:
            ts = datetime.datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S.%f")
            ts = ts.replace(tzinfo=datetime.timezone.utc).timestamp()
            return ts - (float(m.group(2)) + float(m.group(3))) / 1000.0
    return None


OUT_RE = re.compile(r"^(\S+)Z .*linkemu: link (\d+) (ul|dl): outage of (\d+) ms: (\d+) in flight "
                    r"lost at the cut \((\d+) data\), (\d+) frames sent into it \((\d+) data >= "
                    r"\d+ B, the last (\d+) ms after the cut\)")


def parse_outages(paths, go):
    """(link, start_s, in_flight, data_in, last_ms) per direction and outage."""
    out = []
    for p in paths:
        for line in open(p, errors="replace"):
            m = OUT_RE.match(line)
            if not m:
                continue
            ts = datetime.datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S.%f")
            end = ts.replace(tzinfo=datetime.timezone.utc).timestamp() - go
            start = end - float(m.group(4)) / 1000.0
            # data frames only: the tunnel's keepalive probes and TCP's bare acks are small
            out.append((int(m.group(2)), start, int(m.group(6)), int(m.group(8)),
                        float(m.group(9))))
    return out


def in_stall(stalls, s, length_ms):
    """A delivery gap that overlaps a stall of the sender itself measures the machine."""
    e = s + length_ms / 1000.0
    return any(x < e and x + l / 1000.0 > s for x, l in stalls)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--truth", required=True)
    ap.add_argument("--probe", required=True)
    ap.add_argument("--log", required=True)
    ap.add_argument("--go", type=float, required=True)
    ap.add_argument("--emu-log", nargs="+", default=[],
                    help="the link emulators' logs: t = 0 from the first, outages from all")
    ap.add_argument("--trip", type=int, required=True)
    ap.add_argument("--kinds", default="recurring,late", help="zone kinds to score")
    ap.add_argument("--pre", type=float, default=4.0, help="lead allowance before a fade (s)")
    ap.add_argument("--post", type=float, default=5.0, help="ease-in allowance after a fade (s)")
    a = ap.parse_args()

    if a.emu_log:
        g = go_from_emulator(a.emu_log[0])
        if g is not None:
            a.go = g
    truth = parse_truth(a.truth)
    if a.trip not in truth["trips"]:
        sys.exit("route_report: trip %d not in %s" % (a.trip, a.truth))
    d0, d1 = truth["trips"][a.trip]
    probe = parse_probe(a.probe, a.go)
    pol = parse_policy(a.log, a.go)
    kinds = a.kinds.split(",")

    outages = parse_outages(a.emu_log, a.go)
    zones = [z for z in truth["zones"] if z["trip"] == a.trip]
    entry_lost = 0
    drain_lost = 0
    link_lost = 0
    detect_ms = 0.0
    lines = []
    for z in zones:
        if z["kind"] not in kinds:
            continue
        ll, det = 0, 0.0
        for link, start, inf, data, last in outages:
            if link == z["link"] and abs(start - z["entry"]) < 1.0:
                ll += inf + data
                det = max(det, last if data else 0.0)
        link_lost += ll
        detect_ms = max(detect_ms, det)
        n = sum(1 for t in probe["lost"] if z["entry"] - 1.0 <= t <= z["entry"] + 3.0)
        entry_lost += n
        # before the entry, while the link is being drained (from the fade's lead allowance)
        dn = sum(1 for t in probe["lost"] if z["fade_in"] - a.pre <= t < z["entry"] - 1.0)
        drain_lost += dn
        lines.append("entry %s %s at %.1f s: link lost %d (data sent into it until +%.0f ms), "
                     "udp lost %d (+%d while draining before it)" %
                     (z["name"], z["kind"], z["entry"], ll, det, n, dn))
    trip_lost = sum(1 for t in probe["lost"] if d0 <= t <= d1)
    st = probe["stalls"]
    ug = max([g for s, g in probe["udp_gaps"] if d0 <= s <= d1 and not in_stall(st, s, g)] or [0.0])
    tg = max([g for s, g in probe["tcp_gaps"] if d0 <= s <= d1 and not in_stall(st, s, g)] or [0.0])
    stall_n = sum(1 for s, l in st if d0 <= s <= d1)
    stall_max = max([l for s, l in st if d0 <= s <= d1] or [0.0])

    wrong = 0.0
    off_total = 0.0
    for name in truth["ops"]:
        tr = pol.get(name, [])
        # off intervals: from each off transition to the next on transition
        iv, state, since = [], False, -1e9
        for t, off in tr:
            if off and not state:
                since = t
            elif not off and state:
                iv.append((since, t))
            state = off
        if state:
            iv.append((since, 1e12))
        excused = [(z["fade_in"] - a.pre, z["fade_out"] + a.post)
                   for z in truth["zones"] if z["name"] == name]
        for s, e in iv:
            s, e = max(s, d0), min(e, d1)
            if e <= s:
                continue
            off_total += e - s
            # time in [s, e] not covered by any excused window (windows do not overlap much;
            # subtract pairwise overlaps on a 10 ms grid to be exact about unions)
            step, t, bad, first = 0.01, s, 0.0, None
            while t < e:
                if not any(x0 <= t < x1 for x0, x1 in excused):
                    bad += step
                    first = t if first is None else first
                t += step
            wrong += bad
            if bad > 0:
                lines.append("wrongly off: %s %.1f s within %.1f..%.1f s" % (name, bad, first, e))
    drive = d1 - d0
    print("trip=%d" % a.trip)
    print("drive_s=%.1f" % drive)
    for l in lines:
        print(l)
    print("entry_link_lost=%d" % link_lost)
    print("entry_detect_ms=%.0f" % detect_ms)
    print("entry_lost=%d" % entry_lost)
    print("drain_lost=%d" % drain_lost)
    print("sender_stalls=%d (longest %.0f ms; gaps overlapping them are left out)" %
          (stall_n, stall_max))
    print("trip_lost=%d" % trip_lost)
    print("udp_max_gap_ms=%.1f" % ug)
    print("tcp_max_gap_ms=%.1f" % tg)
    print("off_s=%.1f" % off_total)
    print("wrong_off_s=%.1f" % wrong)
    print("wrong_off_pct=%.2f" % (100.0 * wrong / drive if drive > 0 else 0.0))


if __name__ == "__main__":
    main()
