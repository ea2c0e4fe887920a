#!/bin/bash
# cli_test: `corridor check-config` exit codes and messages, usage errors, probe errors.
set -u
src=$2
# Under a cross build CORRIDOR_EMU is e.g. "qemu-aarch64 -L /usr/aarch64-linux-gnu".
run_bin() { ${CORRIDOR_EMU:-} "$1" "${@:2}"; }
bin="run_bin $1"
pass=0; fail=0
t=$(mktemp -d); trap 'rm -rf "$t"' EXIT
expect() { # expect <exit> <substring-of-output> <cmd...>
    local want=$1 text=$2; shift 2
    out=$("$@" 2>&1); rc=$?
    if [ "$rc" = "$want" ] && [[ "$out" == *"$text"* ]]; then pass=$((pass+1))
    else fail=$((fail+1)); echo "FAIL: $* -> rc=$rc (want $want), output: $out"; fi
}
expect 0 "OK: vehicle train-0042, 3 links (2 with modems)" $bin check-config "$src/docs/examples/corridor.json"
expect 0 "OK" $bin -n "$src/docs/examples/corridor.json"
printf '{"vehicle_id":"v","data_dir":"/x","links":[{"name":"a","interface":"u","modem":{"port":"/dev/x","baud":7}}]}' > "$t/bad.json"
expect 2 "configuration error: $t/bad.json: links[0].modem.baud: must be in 300..4000000, got 7" $bin check-config "$t/bad.json"
expect 2 "cannot open" $bin check-config "$t/missing.json"
expect 2 "usage: corridor check-config FILE" $bin check-config
expect 2 "unknown command \"frobnicate\"" $bin frobnicate
expect 0 "check-config FILE" $bin help
expect 2 "Usage:" $bin
expect 1 "/nonexistent/ttyUSB9" $bin modem probe /nonexistent/ttyUSB9
expect 2 "--baud \"x\"" $bin modem probe /dev/null --baud x
expect 1 "is corridor running?" $bin status --socket "$t/none.sock"
expect 0 "corridor 0." $bin version
expect 0 "=" $bin keygen "$t/key"
[ "$(stat -c %a "$t/key")" = 600 ] && pass=$((pass+1)) || { fail=$((fail+1)); echo "FAIL: key mode $(stat -c %a "$t/key")"; }
expect 1 "$t/key" $bin keygen "$t/key"
expect 2 "usage: corridor keygen FILE" $bin keygen
out=$(echo 'correct horse battery' | $bin passwd) && [[ $out == '$argon2id$'* ]] && pass=$((pass+1)) || { fail=$((fail+1)); echo "FAIL: passwd -> $out"; }
out=$(echo 'short' | $bin passwd 2>&1); [[ $out == *"at least 8"* ]] && pass=$((pass+1)) || { fail=$((fail+1)); echo "FAIL: short passwd -> $out"; }
echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
