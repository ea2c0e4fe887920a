#!/usr/bin/env bash
# Dashboard load vs tunnel goodput (issue 6): does a busy dashboard slow the tunnel down?
# Prints numbers; docs/performance.md records them with the command line. Needs root.
#
#   bench_dashboard.sh BUILD_DIR [SCENARIO] [SECONDS=20] [ROUNDS=3]
#
# In the network lab (tests/netlab, prefix cl-db- unless CL_PREFIX is set) the bonded tunnel
# (corridor-hub + corridor-tunnel-client, tests/netlab/tunnel_lib.sh) carries one iperf3 TCP
# flow vehicle -> internet. In the vehicle namespace the dashboard server (the real
# firmware/http.c, serving the test fixture's state: `test_browser --serve`) answers wrk on
# /api/v1/status over the namespace's loopback, as a crew LAN client would. Each round measures
#   A: tunnel goodput alone, then
#   B: tunnel goodput while wrk hammers /api/v1/status (and wrk's requests/s and latency),
# alternating so that slow drifts of a shared machine hit both alike. The result is B/A per
# round, overall (sum B / sum A) and the median of the rounds' ratios (robust against a round
# that another process on the machine disturbed); target >= 0.95, i.e. the dashboard costs the
# tunnel under 5 %. On a busy machine prefer many short rounds (e.g. SECONDS=8 ROUNDS=9).
# SCENARIO defaults to tests/netlab/scenarios/four-equal.scn (4 x 20 Mbit/s, 30 ms).
# WRK_ARGS (default "-t1 -c8") sets wrk's threads and connections. By default wrk sends as fast
# as it can (the worst case: on this lab wrk's own CPU competes with the tunnel too, which a crew
# tablet's would not); WRK_DELAY_MS=N makes each connection wait N ms between requests (a Lua
# delay() hook), e.g. 100 with -c8 = ~80 requests/s, far beyond a crew's real use (a page polls
# nothing: it gets one SSE event per second).
# Also printed: the CPU seconds the dashboard server and wrk used during the loaded run, and the
# server's CPU microseconds per request (the machine-independent cost).
set -euo pipefail
BUILD=${1:?usage: bench_dashboard.sh BUILD_DIR [SCENARIO] [SECONDS] [ROUNDS]}
HERE=$(cd "$(dirname "$0")" && pwd)
SCEN=${2:-$HERE/../netlab/scenarios/four-equal.scn}
T=${3:-20}
ROUNDS=${4:-3}
WRK_ARGS=${WRK_ARGS:--t1 -c8}
export CL_PREFIX=${CL_PREFIX:-cl-db-}
export TN_BUILD=$BUILD
SERVE=$BUILD/tests/dashboard/test_browser
command -v wrk >/dev/null || { echo "wrk missing (apt-get install wrk)"; exit 77; }
[[ -x $SERVE ]] || { echo "$SERVE not built (ninja test_browser)"; exit 1; }
# shellcheck source=../netlab/tunnel_lib.sh
source "$HERE/../netlab/tunnel_lib.sh" "$BUILD"

n=$(awk '$1 == "links" {print $2; exit}' "$SCEN")
tn_up "$n" "$SCEN"
# tn_up's trap tears the lab down; also stop the dashboard server we start.
dash_pid=
cleanup() {
    if [[ -n $dash_pid ]]; then kill "$dash_pid" 2>/dev/null || true; fi
    tn_down
}
trap cleanup EXIT

serve_s=$(((2 * T + 10) * ROUNDS + 60))
# sh -c 'echo $$; exec ...': the pid file names the server process itself (for its CPU time).
# shellcheck disable=SC2016
"$LAB" exec veh sh -c 'echo $$ >"$1"; exec "$2" --serve "$3"' sh "$TN_RUN/dash.pid" "$SERVE" \
    "$serve_s" >"$TN_RUN/dash.log" 2>&1 &
dash_pid=$!
url=
for ((i = 0; i < 50; i++)); do
    url=$(awk '/^serving/ {print $2; exit}' "$TN_RUN/dash.log")
    [[ -n $url ]] && break
    sleep 0.1
done
[[ -n $url ]] || { echo "dashboard server did not start"; cat "$TN_RUN/dash.log"; exit 1; }
"$LAB" exec veh curl -sf "${url}api/v1/status" >/dev/null || { echo "dashboard not answering"; exit 1; }
echo "scenario=$(basename "$SCEN") links=$n seconds=$T rounds=$ROUNDS wrk=\"$WRK_ARGS\" url=${url}api/v1/status"
spid=$(cat "$TN_RUN/dash.pid")
wrk_script=()
if [[ -n ${WRK_DELAY_MS:-} ]]; then
    printf 'function delay()\n  return %d\nend\n' "$WRK_DELAY_MS" >"$TN_RUN/delay.lua"
    wrk_script=(-s "$TN_RUN/delay.lua")
fi
echo "load: $(cut -d' ' -f1-3 /proc/loadavg) cpus=$(nproc) wrk_delay_ms=${WRK_DELAY_MS:-0}"
cpu_s() { awk '{print ($14 + $15) / 100}' "/proc/$1/stat" 2>/dev/null || echo 0; }

sum_a=0 sum_b=0 ratios=()
for ((r = 1; r <= ROUNDS; r++)); do
    a=$(tn_iperf "$T")
    # wrk runs a little longer than iperf3 so the whole measured flow sees the load.
    s0=$(cpu_s "$spid")
    # shellcheck disable=SC2016,SC2086 # $$ is the inner shell's; WRK_ARGS is a word list
    # The shell waits for wrk, then prints its children's CPU time (cutime + cstime) = wrk's.
    "$LAB" exec veh sh -c 'wrk "$@"; awk "{print \"wrk_cpu_s\", (\$16 + \$17) / 100}" /proc/$$/stat' \
        sh $WRK_ARGS "${wrk_script[@]}" -d "$((T + 4))s" --latency "${url}api/v1/status" \
        >"$TN_RUN/wrk$r.txt" 2>&1 &
    wpid=$!
    sleep 1
    b=$(tn_iperf "$T")
    wait "$wpid" || true
    wcpu=$(awk '$1 == "wrk_cpu_s" {print $2}' "$TN_RUN/wrk$r.txt")
    s1=$(cpu_s "$spid")
    reqs=$(awk '/requests in/ {print $1}' "$TN_RUN/wrk$r.txt")
    rps=$(awk '/^Requests\/sec/ {print $2}' "$TN_RUN/wrk$r.txt")
    p50=$(awk '$1 == "50%" {print $2}' "$TN_RUN/wrk$r.txt")
    p99=$(awk '$1 == "99%" {print $2}' "$TN_RUN/wrk$r.txt")
    errs=$(awk '/Non-2xx|Socket errors/ {printf "%s ", $0}' "$TN_RUN/wrk$r.txt")
    ratio=$(awk -v a="$a" -v b="$b" 'BEGIN { printf "%.3f", b / a }')
    scpu=$(awk -v a="$s0" -v b="$s1" 'BEGIN { printf "%.2f", b - a }')
    us=$(awk -v c="$scpu" -v n="${reqs:-0}" 'BEGIN { if (n > 0) printf "%.0f", c * 1e6 / n; else print "?" }')
    printf 'round %d: tunnel_alone_mbps=%.2f tunnel_with_wrk_mbps=%.2f ratio=%s wrk_rps=%s p50=%s p99=%s server_cpu_s=%s wrk_cpu_s=%s server_us_per_req=%s %s\n' \
        "$r" "$a" "$b" "$ratio" "${rps:-?}" "${p50:-?}" "${p99:-?}" "$scpu" "$wcpu" "$us" "$errs"
    ratios+=("$ratio")
    sum_a=$(awk -v s="$sum_a" -v x="$a" 'BEGIN { print s + x }')
    sum_b=$(awk -v s="$sum_b" -v x="$b" 'BEGIN { print s + x }')
done
med=$(printf '%s\n' "${ratios[@]}" | sort -g | awk '{ v[NR] = $1 } END {
    print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }')
awk -v a="$sum_a" -v b="$sum_b" -v n="$ROUNDS" -v m="$med" 'BEGIN {
    printf "overall: tunnel_alone_mbps=%.2f tunnel_with_wrk_mbps=%.2f ratio=%.3f median_ratio=%.3f (cost %.1f %% by the median, target < 5 %%)\n",
        a / n, b / n, b / a, m, 100 * (1 - m) }'
