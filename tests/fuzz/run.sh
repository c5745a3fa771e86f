#!/bin/sh
# tests/fuzz/run.sh FUZZ_BINARY SECONDS: run one libFuzzer target for SECONDS
# from its seed corpus (tests/fuzz/corpus/NAME/, NAME being the binary's name
# without "fuzz_"), copied to a temporary folder so the tree stays clean.
# Ends with "fuzz fuzz_NAME: N runs, K crashes"; on a crash the reproducer
# is kept next to the binary (crashes/) and the exit status is 1.
set -u

if [ $# -ne 2 ] || [ ! -x "$1" ]; then
        echo "usage: $0 FUZZ_BINARY SECONDS" >&2
        exit 2
fi
bin=$1
secs=$2
name=$(basename "$bin")
seeds=$(cd "$(dirname "$0")" && pwd)/corpus/${name#fuzz_}
dict=$(cd "$(dirname "$0")" && pwd)/${name#fuzz_}.dict

work=$(mktemp -d "${TMPDIR:-/tmp}/fnbox-$name.XXXXXX") || exit 2
trap 'rm -rf "$work"' EXIT INT TERM
mkdir "$work/corpus" "$work/out"
if [ -d "$seeds" ]; then
        cp "$seeds"/* "$work/corpus/" 2>/dev/null
fi
set --
if [ -f "$dict" ]; then
        set -- "-dict=$dict"
fi

# temporary files the target makes go into the work folder, removed below
export TMPDIR="$work"
# stdin from /dev/null: libFuzzer never reads it, and a closed fd 0 would be
# reused by the first file the target opens
"$bin" "$@" -max_total_time="$secs" -rss_limit_mb=2048 -timeout=10 -max_len=20000 \
        -print_final_stats=1 -artifact_prefix="$work/out/" "$work/corpus" \
        </dev/null >"$work/log" 2>&1
rc=$?

runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/log" | tail -n 1)
crashes=$(find "$work/out" -type f | wc -l)
if [ "$rc" -ne 0 ] && [ "$crashes" -eq 0 ]; then
        crashes=1 # died without writing a reproducer
fi
if [ "$crashes" -ne 0 ]; then
        keep=$(dirname "$bin")/crashes
        mkdir -p "$keep"
        cp "$work"/out/* "$keep/" 2>/dev/null
        tail -n 40 "$work/log" >&2
        echo "reproducers (if any) in $keep; replay with: $bin FILE" >&2
fi
echo "fuzz $name: ${runs:-0} runs, $crashes crashes"
[ "$crashes" -eq 0 ]
