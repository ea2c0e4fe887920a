#!/usr/bin/env bash
# netlab_upload_path: telemetry uploads go through the bonded tunnel while it is up, straight out
# of a working modem link after 15 s without a hub, and through the tunnel again once the hub is
# back (firmware/recorder.c, telemetry/upload.c uploader_set_interface).
#
# The whole appliance runs: `corridor run` in the vehicle namespace with two simulated SIMCom
# modems (corridor-modemsim, two modems of tests/sim/scenarios/demo.json), corridor-hub in the hub
# namespace, and corridor-collector in the "internet" namespace behind the hub (10.201.250.2),
# which the vehicle reaches both through the tunnel (source 10.77.0.2, the tunnel address) and
# directly over each link path (source 10.201.K.2, routed by the hub namespace's kernel even
# when the corridor-hub process is dead). The collector stores each batch with the peer address,
# which tells the path it took:
#   1. hub up:        batches arrive from 10.77.0.2
#   2. hub killed:    after the 15 s grace batches arrive from 10.201.K.2 (a link address)
#   3. hub restarted: batches arrive from 10.77.0.2 again
# and every batch 1..N is at the collector exactly once, in order. Also: the data used per SIM is
# in the status document and does not go down across a kill -9 and restart of corridor.
#   netlab_upload_path.sh BUILD_DIR        (root; exit 77 = skipped)
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
B=$(cd "${1:?usage: netlab_upload_path.sh BUILD_DIR}" && pwd)
export CL_PREFIX=${CL_PREFIX:-cl-tl-}
RUN=/tmp/corridor-netlab/${CL_PREFIX%-}-upload
TL_PORT=8097
rm -rf "$RUN"
mkdir -p "$RUN"
source "$HERE/tl_lab.sh"

FAIL=0
check() { # description condition-as-awk-expression
    if awk "BEGIN { exit !($2) }"; then echo "ok   $1"; else echo "FAIL $1 ($2)"; FAIL=1; fi
}
log() { echo "upload_path: $*" >&2; }

cat >"$RUN/lab.scn" <<'SCN'
links 2
link 1 rate=20M delay=10ms
link 2 rate=20M delay=15ms
SCN
tl_lab_up 2 "$RUN/lab.scn"
tl_start_hub
tl_start_collector $TL_PORT
tl_start_modems 2
tl_start_corridor '"batch_seconds": 10,'
cpid=$TL_CORRIDOR_PID

# batches stored with a peer address matching a pattern, after a collector time (ms)
count_from() { # PEER_LIKE SINCE_MS
    sqlite3 "$RUN/collector.db" "SELECT count(*) FROM batches WHERE peer LIKE '$1' AND received_ms >= $2" \
        2>/dev/null || echo 0
}
first_from() { # PEER_LIKE SINCE_MS -> received_ms of the first such batch
    sqlite3 "$RUN/collector.db" "SELECT min(received_ms) FROM batches WHERE peer LIKE '$1' AND received_ms >= $2" \
        2>/dev/null || true
}
now_ms() { echo $(($(date +%s%N) / 1000000)); }
wait_for() { # PEER_LIKE SINCE_MS N TIMEOUT_S
    local end=$(($(date +%s) + $4))
    while (($(date +%s) < end)); do
        kill -0 $cpid 2>/dev/null || { log "corridor exited"; tail -20 "$RUN/corridor.log" >&2; return 1; }
        (($(count_from "$1" "$2") >= $3)) && return 0
        sleep 0.5
    done
    return 1
}

t_start=$(now_ms)
# 1. through the tunnel
wait_for '10.77.0.2:%' "$t_start" 2 45 || true
n_tun1=$(count_from '10.77.0.2:%' "$t_start")
check "phase 1: batches arrive through the tunnel (from 10.77.0.2): $n_tun1" "$n_tun1 >= 2"

# 2. hub gone: direct out of a modem link after the 15 s grace
t_kill=$(now_ms)
tl_kill_hub
log "hub killed"
wait_for '10.201.%' "$t_kill" 2 60 || true
n_direct=$(count_from '10.201.%' "$t_kill")
first_direct=$(first_from '10.201.%' "$t_kill")
n_tun_during=$(count_from '10.77.0.2:%' "$((t_kill + 1000))")
delay_s=$(awk -v a="${first_direct:-0}" -v b="$t_kill" 'BEGIN { printf "%.1f", a ? (a - b) / 1000 : -1 }')
check "phase 2: batches arrive directly from a link address (10.201.K.2): $n_direct" "$n_direct >= 2"
check "phase 2: first direct batch ${delay_s} s after the hub died (grace 15 s, < 40 s)" \
    "$delay_s >= 14 && $delay_s < 40"
check "phase 2: nothing through the dead tunnel: $n_tun_during" "$n_tun_during == 0"

# 3. hub back: through the tunnel again
t_back=$(now_ms)
tl_start_hub
log "hub restarted"
wait_for '10.77.0.2:%' "$t_back" 2 45 || true
n_tun2=$(count_from '10.77.0.2:%' "$t_back")
check "phase 3: batches arrive through the tunnel again: $n_tun2" "$n_tun2 >= 2"

# data used per SIM: in the status document, and persisted across a kill -9 of corridor
used() {
    "$B/firmware/corridor" status --socket "$RUN/control.sock" 2>/dev/null |
        jq -r '[.links[].sim.data_used_bytes // 0] | add // 0' 2>/dev/null || echo 0
}
u1=$(used)
check "data used by the SIMs shown in the status: $u1 bytes" "${u1:-0} > 0"
kill -KILL $cpid
wait $cpid 2>/dev/null || true
tl_start_corridor '"batch_seconds": 10,'
cpid=$TL_CORRIDOR_PID
u2=0
for _ in $(seq 40); do
    u2=$(used)
    ((${u2:-0} > 0)) && break
    sleep 0.5
done
sleep 1
u2=$(used)
check "data used after kill -9 and restart: $u2 >= $u1 bytes" "${u2:-0} >= ${u1:-0}"

# ... and in the SIM records of the batches at the collector
rec_used=$(sqlite3 "$RUN/collector.db" \
    "SELECT max(json_extract(data, '$.data_used_bytes')) FROM records WHERE kind='sim'" 2>/dev/null || echo 0)
check "data used in the SIM records at the collector: ${rec_used:-0} bytes" "${rec_used:-0} > 0"

# every batch exactly once, in order (the collector's primary key forbids duplicates; a gap
# would show as max(seq) > count)
read -r nb maxseq minseq < <(sqlite3 -separator ' ' "$RUN/collector.db" \
    "SELECT count(*), max(seq), min(seq) FROM batches WHERE vehicle='tl-0001'")
check "batches 1..$maxseq all stored once ($nb rows)" "$nb == $maxseq && $minseq == 1"
sqlite3 -separator ' ' "$RUN/collector.db" \
    "SELECT seq, peer, received_ms - $t_start FROM batches ORDER BY seq" | awk '{ printf "  batch %s from %s at +%.1f s\n", $1, $2, $3 / 1000 }'
grep -h "uploads now go" "$RUN/corridor.log" | sed 's/^/  /' || true
paths=$(grep -c "uploads now go" "$RUN/corridor.log" || true)
check "two path switches logged (direct, then tunnel): $paths" "$paths >= 2"
exit $FAIL
