#!/usr/bin/env bash
# Plain-TCP baseline: iperf3 goodput of each link of a running lab, alone (one link at a time,
# no tunnel), uplink (vehicle -> hub) and downlink (-R). This is what the bonded tunnel's
# benchmark compares against ("at least 95 % of the sum of what plain TCP gets on each link").
#   baseline.sh [--time S] [--links "1 3"] [--target hub|inet]
# Uses the lab brought up by lab.sh (same CL_PREFIX). Output, one line per link and a total:
#   link 1 up_mbps=9.65 down_mbps=9.65
#   total up_mbps=... down_mbps=...
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PREFIX=${CL_PREFIX:-cl-}
RUN=${CL_RUNDIR:-/tmp/corridor-netlab/${PREFIX%-}}
T=10
LINKS=""
DST=10.201.0.1
while [[ $# -gt 0 ]]; do
    case $1 in
    --time) T=$2; shift 2 ;;
    --links) LINKS=$2; shift 2 ;;
    --target) [[ $2 == inet ]] && DST=10.201.250.2; shift 2 ;;
    *) echo "baseline.sh: unknown option $1" >&2; exit 2 ;;
    esac
done
[[ -r $RUN/links ]] || { echo "baseline.sh: no lab up for prefix $PREFIX (lab.sh up first)" >&2; exit 1; }
[[ -z $LINKS ]] && LINKS=$(seq 1 "$(cat "$RUN/links")")
goodput() { # link extra-args -> Mbit/s received
    "$HERE/lab.sh" exec veh iperf3 -c "$DST" --bind-dev "veh-l$1" -t "$T" -O 1 -J "${@:2}" |
        jq -r '.end.sum_received.bits_per_second / 1e6'
}
tu=0
td=0
for k in $LINKS; do
    u=$(goodput "$k")
    d=$(goodput "$k" -R)
    printf 'link %s up_mbps=%.3f down_mbps=%.3f\n' "$k" "$u" "$d"
    tu=$(awk -v a="$tu" -v b="$u" 'BEGIN { print a + b }')
    td=$(awk -v a="$td" -v b="$d" 'BEGIN { print a + b }')
done
printf 'total up_mbps=%.3f down_mbps=%.3f\n' "$tu" "$td"
