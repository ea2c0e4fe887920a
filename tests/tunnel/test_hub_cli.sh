#!/usr/bin/env bash
# corridor-hub CLI: keygen (0600 file, base64 public key on stdout, never overwrites) and config
# errors (exit 2, message naming the file and the key). No root, no network.
#   test_hub_cli.sh PATH/TO/corridor-hub [EMULATOR...]
set -u
HUB=$1
shift
EMU=("$@")
D=$(mktemp -d)
trap 'rm -rf "$D"' EXIT
fail=0
check() { # description command-status expected-status [output-regex output]
    if [[ $2 -ne $3 ]]; then
        echo "FAIL $1: exit $2, expected $3"
        fail=1
    elif [[ $# -ge 5 ]] && ! grep -qE -- "$4" <<<"$5"; then
        echo "FAIL $1: output '$5' does not match '$4'"
        fail=1
    else
        echo "ok   $1"
    fi
}
out=$("${EMU[@]}" "$HUB" keygen "$D/hub.key" 2>&1); rc=$?
check "keygen succeeds" $rc 0 '^[A-Za-z0-9+/]{43}=$' "$out"
mode=$(stat -c %a "$D/hub.key")
check "key file mode 0600" "$([[ $mode == 600 ]] && echo 0 || echo 1)" 0
out=$("${EMU[@]}" "$HUB" keygen "$D/hub.key" 2>&1); rc=$?
check "keygen refuses to overwrite" $rc 1 'hub.key' "$out"
pub=$("${EMU[@]}" "$HUB" keygen "$D/veh.key")

cfg() { echo "$1" >"$D/c.json"; "${EMU[@]}" "$HUB" run --config "$D/c.json" 2>&1; }
out=$(cfg '{"listen":"0.0.0.0:5555"'); rc=$?
check "syntax error: exit 2 naming the file" $rc 2 'c.json' "$out"
out=$(cfg '{"listen":"0.0.0.0:5555","tun":"hub0","address":"10.77.0.1/16","vehicles":[]}'); rc=$?
check "missing private_key_file named" $rc 2 'private_key_file' "$out"
out=$(cfg "{\"listen\":\"0.0.0.0:5555\",\"tun\":\"hub0\",\"address\":\"10.77.0.1/16\",\"private_key_file\":\"$D/hub.key\",\"vehicles\":[{\"id\":\"a\",\"address\":\"10.77.0.2\",\"public_key\":\"garbage\"}]}"); rc=$?
check "bad vehicle key named by path" $rc 2 'vehicles\[0\]\.public_key' "$out"
out=$(cfg "{\"listen\":\"0.0.0.0:5555\",\"tun\":\"hub0\",\"address\":\"10.77.0.1/16\",\"private_key_file\":\"$D/hub.key\",\"vehicles\":[{\"id\":\"a\",\"public_key\":\"$pub\"}]}"); rc=$?
check "missing vehicle address named" $rc 2 'address.*vehicles\[0\]' "$out"
chmod 644 "$D/hub.key"
out=$(cfg "{\"listen\":\"0.0.0.0:5555\",\"tun\":\"hub0\",\"address\":\"10.77.0.1/16\",\"private_key_file\":\"$D/hub.key\",\"vehicles\":[]}"); rc=$?
check "loose key file permissions refused" $rc 2 'hub.key' "$out"
out=$("${EMU[@]}" "$HUB" frobnicate 2>&1); rc=$?
check "unknown subcommand: usage, exit 2" $rc 2 'usage' "$out"
exit $fail
