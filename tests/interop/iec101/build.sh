#!/usr/bin/env bash
# Build the IEC 60870-5-101 master peer for tests/interop/test_iec101.py:
#   lib60870-C (from the c104==2.2.1 sdist on PyPI: depends/lib60870/lib60870-C) as a static
#   library without TLS, examples or tests, and tests/interop/iec101/master.c on top of it.
#
#   tests/interop/iec101/build.sh [--selftest]
#
# Output under tests/.work/lib60870/: iec101-master (and iec101-slave-selftest with
# --selftest). Idempotent: each step is skipped when its stamp (hash of its inputs) matches.
# Needs: tests/.venv (pip), cmake, gcc (tests/run.sh installs them). Quiet unless it fails.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../../.." && pwd)"
OUT="${IEC101_WORK:-$ROOT/tests/.work/lib60870}"
PY="${IEC101_PYTHON:-$ROOT/tests/.venv/bin/python}"
C104_VERSION="2.2.1"
SELFTEST=0
[ "${1:-}" = "--selftest" ] && SELFTEST=1

mkdir -p "$OUT"
LOG="$OUT/build.log"
: > "$LOG"
fail() { echo "iec101/build.sh: $*" >&2; echo "--- $LOG (tail)" >&2; tail -n 40 "$LOG" >&2; exit 1; }
run() { "$@" >>"$LOG" 2>&1 || fail "failed: $*"; }

for tool in cmake gcc make; do
    command -v "$tool" >/dev/null 2>&1 || fail "$tool not found (apt-get install cmake gcc make)"
done

# ---- 1. the c104 sdist (lib60870-C source is inside it)
SDIST_DIR="$OUT/sdist"
SDIST="$SDIST_DIR/c104-$C104_VERSION.tar.gz"
if [ ! -f "$SDIST" ]; then
    mkdir -p "$SDIST_DIR"
    # --no-binary c104 (not :all:): only c104 must come as sdist; pip still prepares its
    # metadata, and with :all: it would try to build every build dependency from source.
    run "$PY" -m pip download --disable-pip-version-check -q --no-deps \
        --no-binary c104 "c104==$C104_VERSION" -d "$SDIST_DIR"
    [ -f "$SDIST" ] || fail "pip download did not produce $SDIST"
fi
SRC_HASH="$(sha256sum "$SDIST" | cut -c1-16)"
SRC="$OUT/src-$SRC_HASH"
LIBSRC="$SRC/lib60870-C"
if [ ! -f "$SRC/.extracted" ]; then
    rm -rf "$SRC" && mkdir -p "$SRC"
    run tar -xzf "$SDIST" -C "$SRC" --strip-components=3 \
        "c104-$C104_VERSION/depends/lib60870/lib60870-C"
    [ -f "$LIBSRC/CMakeLists.txt" ] || fail "no lib60870-C in $SDIST"
    touch "$SRC/.extracted"
fi

# ---- 2. lib60870-C static library (Release, no TLS: that copy ships no mbedtls)
BUILD="$OUT/build-$SRC_HASH"
LIB="$BUILD/src/liblib60870.a"
if [ ! -f "$LIB" ] || [ "$(cat "$BUILD/.stamp" 2>/dev/null)" != "$SRC_HASH" ]; then
    rm -rf "$BUILD"
    run cmake -S "$LIBSRC" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release \
        -DBUILD_EXAMPLES=OFF -DBUILD_TESTS=OFF
    run cmake --build "$BUILD" --target lib60870 -j "$(nproc 2>/dev/null || echo 2)"
    [ -f "$LIB" ] || LIB="$(find "$BUILD" -name 'liblib60870.a' | head -n1)"
    [ -f "$LIB" ] || fail "liblib60870.a not built"
    echo "$SRC_HASH" > "$BUILD/.stamp"
fi
[ -f "$LIB" ] || LIB="$(find "$BUILD" -name 'liblib60870.a' | head -n1)"

INC=(-I"$LIBSRC/src/inc/api" -I"$LIBSRC/src/hal/inc" -I"$LIBSRC/src/common/inc"
     -I"$LIBSRC/config")
CFLAGS=(-std=gnu11 -O2 -Wall -Wextra -Werror)

# compile NAME SOURCE: stamp = hash(source + library source hash + flags)
compile() {
    local name="$1" src="$2" bin="$OUT/$1"
    local want
    want="$( { sha256sum "$src"; echo "$SRC_HASH ${CFLAGS[*]}"; } | sha256sum | cut -c1-32)"
    if [ -x "$bin" ] && [ "$(cat "$bin.stamp" 2>/dev/null)" = "$want" ]; then
        return 0
    fi
    run gcc "${CFLAGS[@]}" "${INC[@]}" -o "$bin.tmp" "$src" "$LIB" -lpthread
    mv "$bin.tmp" "$bin"
    echo "$want" > "$bin.stamp"
}

compile iec101-master "$HERE/master.c"
if [ "$SELFTEST" -eq 1 ]; then
    compile iec101-slave-selftest "$HERE/slave_selftest.c"
fi
echo "$OUT/iec101-master"
