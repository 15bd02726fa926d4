#!/bin/sh
# Runs every fuzz target (or those named) one after the other, each for SECONDS_PER_TARGET
# (default 600), niced and single-process, growing fuzz/corpus/<target>/ from
# fuzz/seeds/<target>/. Built optimised with debug assertions and overflow checks (-O -a),
# without a sanitizer (-s none: the crate forbids unsafe code) and without debug info (a
# fraction of the disk space; a panic still names its file and line).
# Logs go to fuzz/target/campaign/<target>.log (ignored by git). See docs/fuzzing.md.
#
#   fuzz/campaign.sh                       # all seven targets, 10 minutes each
#   SECONDS_PER_TARGET=60 fuzz/campaign.sh ocpp_frame
#   NO_BUILD=1 fuzz/campaign.sh            # run the binaries already built (cargo fuzz build
#                                          # -O -a -s none), even if the sources changed since
set -u
cd "$(dirname "$0")"
secs=${SECONDS_PER_TARGET:-600}
targets=${*:-"apdu_decode asdu_decode ft12_decode ocpp_frame ocpp_sanitize config_parse relay_frames"}
mkdir -p target/campaign
for t in $targets; do
    mkdir -p "corpus/$t"
    echo "== $t: start $(date -u +%FT%TZ), ${secs}s"
    mkdir -p "artifacts/$t"
    if [ -n "${NO_BUILD:-}" ]; then
        nice -n 19 "target/x86_64-unknown-linux-gnu/release/$t" -artifact_prefix="artifacts/$t/" \
            -max_total_time="$secs" -rss_limit_mb=2048 -print_final_stats=1 \
            "corpus/$t" "seeds/$t" >"target/campaign/$t.log" 2>&1
    else
        RUSTFLAGS="${RUSTFLAGS:--Cdebuginfo=0}" \
        nice -n 19 cargo +nightly fuzz run -O -a -s none "$t" "corpus/$t" "seeds/$t" -- \
            -max_total_time="$secs" -rss_limit_mb=2048 -print_final_stats=1 \
            >"target/campaign/$t.log" 2>&1
    fi
    rc=$?
    echo "== $t: end $(date -u +%FT%TZ), exit $rc, corpus $(ls "corpus/$t" | wc -l) files"
    grep -E '^#[0-9]+[[:space:]]+DONE|^stat::|SUMMARY|panicked|^Done' "target/campaign/$t.log"
done
