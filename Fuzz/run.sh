#!/usr/bin/env bash
# Builds the libFuzzer targets (release, with AddressSanitizer) and runs them one after the other.
#
#   Fuzz/run.sh [frames|handshake|inflate|all] [seconds per target, default 60] [libFuzzer arguments…]
#
# Each target starts from its seed corpus in Fuzz/Corpus/<target>/ (read only) and keeps what it
# finds in Fuzz/.work/corpus/<target>/; a crash or broken invariant is saved as
# Fuzz/.work/artifacts/<target>-crash-… and stops the run. To replay one input:
#   Fuzz/run.sh inflate 0 Fuzz/.work/artifacts/inflate-crash-…
# More libFuzzer arguments go last, for instance -fork=2 on a machine with cores to spare.
set -euo pipefail
cd "$(dirname "$0")"
target=${1:-all}
seconds=${2:-60}
shift $(( $# < 2 ? $# : 2 ))
case $target in
    all) targets=(frames handshake inflate) ;;
    frames|handshake|inflate) targets=("$target") ;;
    *) echo "usage: $0 [frames|handshake|inflate|all] [seconds] [libFuzzer arguments…]" >&2; exit 2 ;;
esac

# SwiftPM's --sanitize=fuzzer alone leaves Swift code without coverage when combined with
# --sanitize=address (the last -sanitize wins), so Swift gets both in one flag as well.
# The gold linker warns about ASan's local symbols; those lines are noise.
swift build -c release --sanitize=fuzzer --sanitize=address -Xswiftc -sanitize=fuzzer,address 2>&1 \
    | { grep -v -e "Cannot export local symbol '__asan" || true; }
bin=$(swift build -c release --sanitize=fuzzer --sanitize=address -Xswiftc -sanitize=fuzzer,address --show-bin-path)

# libFuzzer reports crashes itself; Swift's backtracer would linger after the process ends.
export SWIFT_BACKTRACE=enable=no
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0:handle_abort=1}
for name in "${targets[@]}"; do
    mkdir -p ".work/corpus/$name" .work/artifacts
    dict=()
    [[ -f "$name.dict" ]] && dict=("-dict=$name.dict")
    replay=0
    for argument in "$@"; do [[ -f "$argument" ]] && replay=1; done
    if (( replay )); then
        "$bin/fuzz-$name" "$@"
        continue
    fi
    echo "== fuzz-$name for ${seconds}s"
    "$bin/fuzz-$name" ".work/corpus/$name" "Corpus/$name" "${dict[@]}" -max_len=4096 -timeout=10 \
        -rss_limit_mb=2048 -max_total_time="$seconds" -print_final_stats=1 \
        -artifact_prefix=".work/artifacts/$name-" "$@"
done
