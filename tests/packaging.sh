#!/usr/bin/env bash
# Packaging checks (stage "packaging checks" of tests/run.sh; runnable alone):
#   1. yocto/meta-ocpp809/.../ocpp809-crates.inc is in sync with Cargo.lock
#      (scripts/yocto-crates.py --check; fix with scripts/yocto-crates.py)
#   2. oelint-adv --release scarthgap on every recipe and conf file of the layer: clean, with the justified
#      suppressions of yocto/meta-ocpp809/.oelint.cfg and inline `# nooelint:` comments
#   3. systemd-analyze verify systemd/ocpp809.service, if systemd-analyze is installed
#   4. the Debian package metadata (debian/ maintainer scripts) is well-formed shell
#
# Environment: VENV (default tests/.venv, must have oelint-adv from
# tests/interop/requirements.txt). Offline and deterministic: oelint's only network rule
# (oelint.vars.homepageping) is suppressed in .oelint.cfg.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
VENV="$(cd "${VENV:-$ROOT/tests/.venv}" && pwd)"
LAYER="$ROOT/yocto/meta-ocpp809"
UNIT="$ROOT/systemd/ocpp809.service"

fail() { echo "packaging: $*" >&2; exit 1; }

# ---------------------------------------------------------------- 1. crates include
echo "--- yocto crates include vs Cargo.lock"
"$VENV/bin/python" scripts/yocto-crates.py --check

# ---------------------------------------------------------------- 2. oelint-adv
echo "--- oelint-adv --release scarthgap"
[ -x "$VENV/bin/oelint-adv" ] || fail "no oelint-adv in $VENV (pip install -r tests/interop/requirements.txt)"
mapfile -t recipes < <(find "$LAYER" \( -name '*.bb' -o -name '*.bbappend' -o -path '*/conf/*.conf' \) -type f | LC_ALL=C sort)
[ "${#recipes[@]}" -gt 0 ] || fail "no recipes under $LAYER"
for r in "${recipes[@]}"; do
    # One recipe per run: each recipe gets its own stash (includes, bbappends).
    out="$(cd "$LAYER" && OELINT_CONFIG="$LAYER/.oelint.cfg" \
        "$VENV/bin/oelint-adv" --quiet --release scarthgap "$r" 2>&1)" || {
        printf '%s\n' "$out" >&2
        fail "oelint-adv found issues in ${r#"$ROOT"/}"
    }
    echo "ok  ${r#"$ROOT"/}"
done

# ---------------------------------------------------------------- 3. systemd unit
echo "--- systemd-analyze verify"
if [ ! -f "$UNIT" ]; then
    echo "skip: ${UNIT#"$ROOT"/} does not exist"
elif ! command -v systemd-analyze >/dev/null 2>&1; then
    echo "skip: systemd-analyze not installed"
else
    # verify requires every Exec*= binary to exist; /usr/bin/ocpp809 is only there on an
    # installed box. Verify a copy whose ocpp809 path points at a stub executable instead.
    tmp="$(mktemp -d)"
    trap 'rm -rf "$tmp"' EXIT
    printf '#!/bin/sh\nexit 0\n' > "$tmp/ocpp809"
    chmod 755 "$tmp/ocpp809"
    grep -q '^ExecStart=/usr/bin/ocpp809 ' "$UNIT" || fail "unit does not start /usr/bin/ocpp809"
    sed "s|/usr/bin/ocpp809|$tmp/ocpp809|g" "$UNIT" > "$tmp/ocpp809.service"
    out="$(SYSTEMD_LOG_COLOR=0 systemd-analyze verify "$tmp/ocpp809.service" 2>&1)" || {
        printf '%s\n' "$out" >&2
        fail "systemd-analyze verify failed"
    }
    # verify exits 0 on some warnings; treat any message about our unit as a failure.
    if printf '%s\n' "$out" | grep -q 'ocpp809\.service'; then
        printf '%s\n' "$out" >&2
        fail "systemd-analyze verify reported problems"
    fi
    echo "ok  systemd/ocpp809.service"
fi

# ---------------------------------------------------------------- 4. Debian metadata
echo "--- debian maintainer scripts"
for s in debian/postinst debian/postrm; do
    [ -x "$s" ] || fail "$s missing or not executable"
    sh -n "$s" || fail "$s: syntax error"
    # cargo-deb replaces every occurrence of the token, comments included: exactly one line.
    [ "$(grep -c 'DEBHELPER' "$s")" = 1 ] && grep -q '^#DEBHELPER#$' "$s" \
        || fail "$s must contain the #DEBHELPER# token once, on a line of its own"
done
"$VENV/bin/python" - <<'EOF'
import tomllib
deb = tomllib.load(open("Cargo.toml", "rb"))["package"]["metadata"]["deb"]
assert deb["maintainer-scripts"] == "debian/", deb["maintainer-scripts"]
assert "/etc/ocpp809/ocpp809.toml" in deb["conf-files"], deb["conf-files"]
dests = {a[1] for a in deb["assets"]}
assert "etc/ocpp809/ocpp809.toml" in dests and "usr/bin/" in dests, dests
assert deb["systemd-units"]["unit-scripts"] == "systemd/", deb["systemd-units"]
print("ok  [package.metadata.deb]")
EOF

echo "packaging checks passed"
