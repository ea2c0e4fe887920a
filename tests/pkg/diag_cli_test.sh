#!/bin/bash
# diag_cli_test: `corridor diag` from the command line: exit codes, the default file name, the
# bundle decompresses and parses, secrets from the config are gone, usage errors are exit 2.
#   diag_cli_test.sh CORRIDOR_BINARY
set -u
run_bin() { ${CORRIDOR_EMU:-} "$@"; } # cross builds: CORRIDOR_EMU="qemu-aarch64 -L /"
bin=$(realpath "$1")
pass=0
fail=0
t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT
check() { # check "what" cmd...
    local what=$1
    shift
    if "$@"; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAIL: $what"; fi
}
cat >"$t/c.json" <<'JSON'
{"vehicle_id": "bus-17", "data_dir": "/tmp",
 "links": [{"name": "a", "interface": "usb0"}],
 "dashboard": {"password_hash": "$argon2id$v=19$m=65536,t=2,p=1$c2FsdA$CLISECRET"},
 "telemetry": {"upload_url": "https://u:CLIPASS@c.example/x", "token_file": "/etc/corridor/CLITOKEN"}}
JSON
out=$(cd "$t" && run_bin "$bin" diag --config "$t/c.json" --socket "$t/none.sock" --no-system 2>&1)
rc=$?
check "diag exit 0 without a daemon (rc=$rc: $out)" test "$rc" = 0
f=$(ls "$t"/corridor-diag-bus-17-*.json.zst 2>/dev/null | head -1)
check "default name corridor-diag-bus-17-<time>.json.zst" test -n "$f"
check "message names the file and the count: $out" grep -q "written (3 secrets redacted" <<<"$out"
check "mode 600" test "$(stat -c %a "$f" 2>/dev/null)" = 600
if command -v zstd >/dev/null; then
    zstd -q -dc "$f" >"$t/b.json" 2>/dev/null
    check "bundle parses" python3 -c "import json,sys; d=json.load(open(sys.argv[1])); assert d['bundle']=='corridor-diag' and d['daemon']['running'] is False" "$t/b.json" 2>/dev/null
    check "secrets gone" sh -c "! grep -q -e CLISECRET -e CLIPASS -e CLITOKEN '$t/b.json'"
    check "vehicle kept" grep -q '"bus-17"' "$t/b.json"
fi
run_bin "$bin" diag --config "$t/c.json" --socket "$t/none.sock" --no-system --out - >"$t/o.json" 2>/dev/null
check "--out - writes plain JSON to stdout" grep -q '"bundle": "corridor-diag"' "$t/o.json"
run_bin "$bin" diag --bogus >/dev/null 2>&1
check "unknown option: exit 2" test $? = 2
out=$(run_bin "$bin" diag --config "$t/c.json" --socket "$t/none.sock" --no-system --out "$t/no/dir/x.json.zst" 2>&1)
rc=$?
check "unwritable --out: exit 1 naming it (rc=$rc: $out)" grep -q "no/dir/x.json.zst" <<<"$out"
check "unwritable --out rc" test "$rc" = 1
echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
