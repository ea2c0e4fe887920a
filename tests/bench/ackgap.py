#!/usr/bin/env python3
"""Longest in-order delivery gap of TCP flows, seen from the receiver's own cumulative ACKs.

Run inside the receiver's network namespace, on the receiver's interface. Captures the TCP
segments the receiver SENDS from PORT (AF_PACKET, outgoing only) and records when each flow's
cumulative acknowledgement number advances: the ACK number moves exactly when the receiver's TCP
has the next bytes in order, so the longest time between two advances is the longest time the
application could read nothing, at microsecond resolution (kernel receive timestamps). The
iperf3 sender's 100 ms intervals only bound it from above: a full send buffer also stops the
writes while the peer is still being served.

    ackgap.py IFACE PORT OUT.json [SECONDS]

Runs until SIGTERM/SIGINT (or SECONDS), then writes {"flows": [{"gap_ms", "gap_at_s", "acks",
"bytes", "over_100ms": the 8 longest gaps over 100 ms as [ms, at_s]}], "longest_gap_ms"}; gap_at_s is when the gap began, seconds after the first ACK.
Needs root (a packet socket). Only IPv4.
"""
import json
import signal
import socket
import struct
import sys
import time

ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4
SO_TIMESTAMPNS = 35


def main():
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    ifname, port, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    limit = float(sys.argv[4]) if len(sys.argv) > 4 else None
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    s.bind((ifname, 0))
    s.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    s.settimeout(0.2)
    stop = []
    signal.signal(signal.SIGTERM, lambda *a: stop.append(1))
    signal.signal(signal.SIGINT, lambda *a: stop.append(1))
    flows = {}
    t0 = None
    start = time.monotonic()
    while not stop and (limit is None or time.monotonic() - start < limit):
        try:
            data, anc, _flags, addr = s.recvmsg(256, 64)
        except socket.timeout:
            continue
        except InterruptedError:
            continue
        if addr[2] != PACKET_OUTGOING:
            continue
        ts = None
        for lvl, typ, val in anc:
            if lvl == socket.SOL_SOCKET and typ == SO_TIMESTAMPNS and len(val) >= 16:
                sec, nsec = struct.unpack("qq", val[:16])
                ts = sec + nsec / 1e9
        if ts is None:
            ts = time.time()
        # addr[1] is the ethertype; a veth frame starts with the 14-byte Ethernet header
        off = 14 if len(data) > 14 and data[12:14] == b"\x08\x00" else 0
        if len(data) < off + 20 or data[off] >> 4 != 4 or data[off + 9] != 6:
            continue
        ihl = (data[off] & 15) * 4
        tcp = off + ihl
        if len(data) < tcp + 16:
            continue
        sport, dport, _seq, ack = struct.unpack("!HHII", data[tcp:tcp + 12])
        flags = data[tcp + 13]
        if sport != port or not flags & 0x10:
            continue
        if t0 is None:
            t0 = ts
        key = (data[off + 16:off + 20], dport)
        f = flows.get(key)
        if f is None:
            flows[key] = {"ack": ack, "t": ts, "gap": 0.0, "at": 0.0, "n": 0,
                          "bytes": 0, "top": []}
            continue
        adv = (ack - f["ack"]) & 0xFFFFFFFF
        if adv == 0 or adv > 0x7FFFFFFF:
            continue
        gap = ts - f["t"]
        # the first advance covers the handshake, not data
        if f["n"] > 0 and gap > 0.1:
            f["top"].append((round(gap * 1000, 1), round(f["t"] - t0, 3)))
        if f["n"] > 0 and gap > f["gap"]:
            f["gap"], f["at"] = gap, f["t"] - t0
        f["ack"], f["t"] = ack, ts
        f["n"] += 1
        f["bytes"] += adv
    res = [{"gap_ms": round(f["gap"] * 1000, 1), "gap_at_s": round(f["at"], 3), "acks": f["n"],
            "bytes": f["bytes"], "over_100ms": sorted(f["top"], reverse=True)[:8]} for f in flows.values() if f["n"] > 10]
    with open(out, "w") as fh:
        json.dump({"flows": res, "longest_gap_ms": max([r["gap_ms"] for r in res], default=None)},
                  fh)


if __name__ == "__main__":
    main()
