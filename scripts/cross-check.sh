#!/usr/bin/env bash
# Cross-compile check for the ARM edge boxes ocpp809 ships on (Yocto/Debian, aarch64 and armv7).
# Not part of tests/run.sh or CI: it compiles the whole dependency tree twice more, which
# takes long on a 2-core runner. Run it before a release or after dependency changes.
#
#   scripts/cross-check.sh [--build] [TARGET...]
#
#   TARGET   default: aarch64-unknown-linux-gnu armv7-unknown-linux-gnueabihf
#   --build  link a release binary too (needs the Debian cross gcc as linker); the default is
#            `cargo check --release --target T --bins --lib`, which still runs build scripts
#            (ring's compiles C and assembly with the target's cross C compiler).
#
# Environment: CARGO_TARGET_DIR (default /work/target-cross), NO_INSTALL=1 skips rustup/apt.
# Installs, when missing and possible: rustup targets; Debian gcc-aarch64-linux-gnu,
# gcc-arm-linux-gnueabihf (+ libc6-dev-*-cross). Waits for the apt lock if held.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/work/target-cross}"

MODE=check
TARGETS=()
for arg in "$@"; do
    case "$arg" in
        --build) MODE=build ;;
        -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
        *) TARGETS+=("$arg") ;;
    esac
done
[ "${#TARGETS[@]}" -gt 0 ] || TARGETS=(aarch64-unknown-linux-gnu armv7-unknown-linux-gnueabihf)

# target triple -> Debian cross gcc triple / package
gnu_triple() {
    case "$1" in
        aarch64-unknown-linux-gnu) echo aarch64-linux-gnu ;;
        armv7-unknown-linux-gnueabihf) echo arm-linux-gnueabihf ;;
        *) echo "unsupported target $1" >&2; return 1 ;;
    esac
}

apt_install() {
    if [ "${NO_INSTALL:-0}" = 1 ] || ! command -v apt-get >/dev/null 2>&1; then
        echo "WARNING: cannot install $* (NO_INSTALL=1 or no apt-get)" >&2
        return 0
    fi
    local sudo=()
    if [ "$(id -u)" -ne 0 ]; then
        if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
            sudo=(sudo -n)
        else
            echo "WARNING: not root, cannot install $*" >&2
            return 0
        fi
    fi
    # DPkg::Lock::Timeout: wait (up to 10 min) for another apt/dpkg instead of failing.
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 update -q
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 \
        install -y -q --no-install-recommends "$@"
}

missing_pkgs=()
for t in "${TARGETS[@]}"; do
    g="$(gnu_triple "$t")"
    if [ "${NO_INSTALL:-0}" != 1 ] && command -v rustup >/dev/null 2>&1 \
        && ! rustup target list --installed | grep -qx "$t"; then
        rustup target add "$t"
    fi
    if ! command -v "$g-gcc" >/dev/null 2>&1; then
        missing_pkgs+=("gcc-$g" "libc6-dev-${g%%-*}-cross")
    fi
done
# libc6-dev-<arch>-cross: Debian arch names differ from the triple prefix for armhf.
for i in "${!missing_pkgs[@]}"; do
    case "${missing_pkgs[$i]}" in
        libc6-dev-arm-cross) missing_pkgs[i]=libc6-dev-armhf-cross ;;
        libc6-dev-aarch64-cross) missing_pkgs[i]=libc6-dev-arm64-cross ;;
    esac
done
[ "${#missing_pkgs[@]}" -eq 0 ] || apt_install "${missing_pkgs[@]}"

rc=0
summary=()
for t in "${TARGETS[@]}"; do
    g="$(gnu_triple "$t")"
    up="$(echo "$t" | tr 'a-z-' 'A-Z_')"
    lo="$(echo "$t" | tr '-' '_')"
    if command -v "$g-gcc" >/dev/null 2>&1; then
        # cc-rs (ring's build script) and the final link use the Debian cross toolchain.
        export "CC_$lo=$g-gcc" "AR_$lo=$g-ar" "CARGO_TARGET_${up}_LINKER=$g-gcc"
    elif [ "$MODE" = build ]; then
        echo "ERROR: --build for $t needs $g-gcc (apt-get install gcc-$g)" >&2
        rc=1; summary+=("$t: no linker"); continue
    else
        echo "WARNING: no $g-gcc; build scripts that compile C (ring) will likely fail" >&2
    fi
    echo "==> cargo $MODE --release --locked --target $t (CARGO_TARGET_DIR=$CARGO_TARGET_DIR)"
    start=$SECONDS
    if [ "$MODE" = build ]; then
        cmd=(cargo build --release --locked --target "$t" --bin ocpp809)
    else
        cmd=(cargo check --release --locked --target "$t" --lib --bins)
    fi
    if "${cmd[@]}"; then
        msg="$t: $MODE ok in $((SECONDS - start)) s"
        if [ "$MODE" = build ]; then
            bin="$CARGO_TARGET_DIR/$t/release/ocpp809"
            msg+=", $(stat -c %s "$bin") bytes, $(file -b "$bin" 2>/dev/null | cut -d, -f1-2 || true)"
        fi
        summary+=("$msg")
    else
        rc=1; summary+=("$t: $MODE FAILED")
    fi
done

echo
printf '%s\n' "${summary[@]}"
exit "$rc"
