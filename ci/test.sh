#!/bin/bash
# test.sh: set up and run every test. This is the README's test command and what .ci/run calls.
#
# Stages (each prints its own ctest summary; a final line sums them up):
#   1. native build (gcc, -Werror) + all tests: unit, sim (modem simulator), fuzz regressions,
#      netlab (network namespaces; needs root)
#   2. ASan+UBSan build + unit/sim/fuzzreg tests (not the kill -9 / watchdog-timing ones)
#   3. TSan build + the threaded tests
#   4. libFuzzer build (clang) + every fuzz target for FUZZ_SECONDS (default 20) each
#   5. arm64 cross build (gcc-aarch64-linux-gnu) + unit tests under qemu-aarch64
#   6. .deb packages amd64 + arm64 (from the stage-5 build), install/upgrade/remove/purge in a
#      clean debootstrap root (root, Debian mirror; cached in /var/cache/corridor-ci)
# Environment: STAGES="1 2 3 4 5" to pick stages, FUZZ_SECONDS, JOBS, CORRIDOR_SKIP_SETUP=1.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
STAGES=${STAGES:-"1 2 3 4 5 6"}
FUZZ_SECONDS=${FUZZ_SECONDS:-15}
JOBS=${JOBS:-$(nproc)}
OUT=${OUT:-$ROOT/build/ci}
mkdir -p "$OUT"

if [ "${CORRIDOR_SKIP_SETUP:-0}" != 1 ]; then
    case " $STAGES " in *" 5 "*) bash ci/setup.sh --arm64 ;; *) bash ci/setup.sh ;; esac || exit 1
fi

total_pass=0; total_fail=0; failed_stages=""
t_start=$(date +%s)

note() { echo; echo "==== $* ($(($(date +%s) - t_start)) s)"; }

# run_ctest <stage-name> <build-dir> [ctest args...]: counts from ctest's summary line.
run_ctest() {
    local name=$1 dir=$2; shift 2
    local log="$OUT/ctest-$name.log"
    # A failed test runs once more (--repeat until-pass:2): the lab and gpsfake tests depend on
    # wall-clock timing on a shared 2-core machine. Both attempts stay in the log, and a test
    # that fails twice fails the stage; grep the log for "Test Failed" to find the flaky ones.
    (cd "$dir" && ctest --output-on-failure --no-tests=error --repeat until-pass:2 -j "$JOBS" "$@") 2>&1 | tee "$log"
    local rc=${PIPESTATUS[0]}
    local line n f
    line=$(grep -E "tests passed, [0-9]+ tests failed out of [0-9]+" "$log" | tail -1)
    n=$(echo "$line" | sed -E 's/.* out of ([0-9]+).*/\1/'); f=$(echo "$line" | sed -E 's/.*passed, ([0-9]+) tests failed.*/\1/')
    [ -z "$line" ] && { n=0; f=1; }
    total_pass=$((total_pass + n - f)); total_fail=$((total_fail + f))
    [ "$rc" = 0 ] || failed_stages="$failed_stages $name"
}

build() { # build <dir> <cmake args...> [-- ninja targets...]
    local dir=$1; shift
    local args=() targets=()
    while [ $# -gt 0 ] && [ "$1" != "--" ]; do args+=("$1"); shift; done
    [ "${1:-}" = "--" ] && { shift; targets=("$@"); }
    cmake -S "$ROOT" -B "$dir" -G Ninja "${args[@]}" > "$OUT/cmake-$(basename "$dir").log" 2>&1 \
        || { cat "$OUT/cmake-$(basename "$dir").log"; return 1; }
    ninja -C "$dir" -j "$JOBS" "${targets[@]}" 2>&1 | tail -n 40 | grep -vE '^\[[0-9]+/[0-9]+\]' ; return "${PIPESTATUS[0]}"
}

for s in $STAGES; do
case $s in
1)
    note "stage 1: format check, native build + all tests"
    # shellcheck disable=SC2046
    if clang-format --dry-run -Werror $(git ls-files '*.c' '*.h') > "$OUT/format.log" 2>&1; then
        total_pass=$((total_pass+1))
    else
        echo "format: files differ from .clang-format:"; grep -oE '^[^:]+\.[ch]' "$OUT/format.log" | sort -u
        total_fail=$((total_fail+1)); failed_stages="$failed_stages format"
    fi
    if build build/native -DCMAKE_BUILD_TYPE=RelWithDebInfo; then
        run_ctest native build/native -LE pkg
    else failed_stages="$failed_stages native-build"; total_fail=$((total_fail+1)); fi
    ;;
2)
    note "stage 2: ASan+UBSan"
    if build build/asan -DCMAKE_BUILD_TYPE=Debug -DCORRIDOR_SANITIZE=address+undefined; then
        ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
            run_ctest asan build/asan -L "unit|sim|fuzzreg" -LE killtest
    else failed_stages="$failed_stages asan-build"; total_fail=$((total_fail+1)); fi
    ;;
3)
    note "stage 3: TSan (threaded tests)"
    if build build/tsan -DCMAKE_BUILD_TYPE=Debug -DCORRIDOR_SANITIZE=thread; then
        TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 run_ctest tsan build/tsan -L threaded
    else failed_stages="$failed_stages tsan-build"; total_fail=$((total_fail+1)); fi
    ;;
4)
    note "stage 4: libFuzzer, ${FUZZ_SECONDS}s per target"
    fuzz_targets=$(cd tests/fuzz && ls fuzz_*.c | sed 's/\.c$//')
    # shellcheck disable=SC2086
    if CC=clang build build/fuzz -DCMAKE_BUILD_TYPE=Debug -DCORRIDOR_FUZZ=ON -- $fuzz_targets; then
        for f in build/fuzz/tests/fuzz/fuzz_*; do
            [ -x "$f" ] || continue
            name=$(basename "$f"); short=${name#fuzz_}
            work="$OUT/fuzz-$short"; mkdir -p "$work"
            cp -r "tests/fuzz/corpus/$short/." "$work/" 2>/dev/null || true
            if (cd "$OUT" && "$ROOT/$f" -max_total_time="$FUZZ_SECONDS" -rss_limit_mb=1024 \
                    -max_len=4096 -print_final_stats=1 "$work" > "$OUT/fuzz-$short.log" 2>&1); then
                echo "fuzz $short: ok ($(grep -E 'stat::number_of_executed_units' "$OUT/fuzz-$short.log" | awk '{print $2}') runs)"
                total_pass=$((total_pass+1))
            else
                echo "fuzz $short: FAILED"; tail -n 40 "$OUT/fuzz-$short.log"
                total_fail=$((total_fail+1)); failed_stages="$failed_stages fuzz-$short"
            fi
        done
    else failed_stages="$failed_stages fuzz-build"; total_fail=$((total_fail+1)); fi
    ;;
5)
    note "stage 5: arm64 cross build + unit tests under qemu-aarch64"
    if build build/arm64 -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_TOOLCHAIN_FILE="$ROOT/ci/toolchain-aarch64.cmake"; then
        file build/arm64/firmware/corridor 2>/dev/null | grep -q aarch64 || { echo "arm64: corridor is not an aarch64 binary"; total_fail=$((total_fail+1)); }
        run_ctest arm64 build/arm64 -L unit -LE realtime
    else failed_stages="$failed_stages arm64-build"; total_fail=$((total_fail+1)); fi
    ;;
6)
    note "stage 6: packages (amd64 + arm64) in a clean debootstrap root"
    if build build/native -DCMAKE_BUILD_TYPE=RelWithDebInfo; then
        CORRIDOR_PKG_ARM64_BUILD=$([ -f build/arm64/CMakeCache.txt ] && echo "$ROOT/build/arm64") \
            run_ctest pkg build/native -L pkg
    else failed_stages="$failed_stages pkg-build"; total_fail=$((total_fail+1)); fi
    ;;
esac
done

note "done"
[ -n "$failed_stages" ] && echo "failed stages:$failed_stages"
echo "total: $total_pass passed, $total_fail failed"
[ "$total_fail" = 0 ] && [ -z "$failed_stages" ]
