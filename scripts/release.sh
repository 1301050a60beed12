#!/usr/bin/env bash
# Builds the release artifacts the Terraform Registry needs; the one place
# that makes them (the release workflow and tests/release.rs call it).
#
#   release.sh OUT_DIR
#       the static linux_amd64 archive (x86_64-unknown-linux-musl), then
#       `sums`: everything a Linux-only release needs.
#   release.sh zip TARGET OS ARCH OUT_DIR
#       builds TARGET (a Rust target triple) and writes
#       OUT_DIR/terraform-provider-nixbuild_<V>_<OS>_<ARCH>.zip holding
#       terraform-provider-nixbuild_v<V>, LICENSE and README.md.
#   release.sh sums OUT_DIR
#       writes OUT_DIR/terraform-provider-nixbuild_<V>_manifest.json (a copy of
#       terraform-registry-manifest.json), <V>_SHA256SUMS over every zip of
#       version V in OUT_DIR and the manifest, and its binary detached GPG
#       signature <V>_SHA256SUMS.sig.
#
# V is Cargo.toml's version. Linux targets must be musl ones: the binary is
# linked statically (no PT_INTERP, checked here) and runs on any Linux,
# Alpine's too. Their C code (ring, aws-lc-rs) is compiled with musl-gcc
# (Debian: musl-tools; rustup target add x86_64-unknown-linux-musl).
#
# Environment: GPG_PRIVATE_KEY (ASCII-armored secret key, required by `sums`)
# and PASSPHRASE (its passphrase, if any), imported into a temporary
# GNUPGHOME that is removed again. NIXBUILD_RELEASE_PROFILE picks the cargo
# profile (default `release`; the test suite uses `release-test`).
set -euo pipefail

NAME=terraform-provider-nixbuild
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PROFILE=${NIXBUILD_RELEASE_PROFILE:-release}
VERSION=$(sed -n 's/^version = "\(.*\)"$/\1/p' "$ROOT/Cargo.toml" | head -n1)

log() { printf '[release] %s\n' "$*" >&2; }
die() {
  printf '[release] error: %s\n' "$*" >&2
  exit 1
}
usage() {
  sed -n '4,16s/^# \{0,1\}//p' "${BASH_SOURCE[0]}" >&2
  exit 2
}

[ -n "$VERSION" ] || die "no version in Cargo.toml"

# Builds TARGET with the chosen profile; prints the binary's path.
build() { # TARGET
  local target=$1 env_cc messages exe
  case "$target" in
    *-linux-gnu*) die "$target: Linux release binaries are static musl ones (e.g. x86_64-unknown-linux-musl)" ;;
    *-linux-musl*)
      # The cc crate's compiler for this target, unless the caller chose one.
      env_cc="CC_${target//-/_}"
      if [ -z "${!env_cc:-}" ]; then
        command -v musl-gcc >/dev/null || die "musl-gcc not found (Debian: apt-get install musl-tools)"
        export "$env_cc=musl-gcc"
      fi
      ;;
  esac
  log "cargo build --profile $PROFILE --target $target"
  messages=$(cd "$ROOT" && cargo build --locked --profile "$PROFILE" --target "$target" \
    --bin "$NAME" --message-format=json-render-diagnostics) || die "cargo build failed for $target"
  exe=$(printf '%s\n' "$messages" | grep '"reason":"compiler-artifact"' | grep "\"name\":\"$NAME\"" |
    sed -n 's/.*"executable":"\([^"]*\)".*/\1/p' | tail -n1)
  if [ -z "$exe" ] || [ ! -x "$exe" ]; then die "cargo reported no executable for $target"; fi
  case "$target" in
    *-linux-*)
      command -v readelf >/dev/null || die "readelf not found (Debian: apt-get install binutils)"
      if readelf -lW "$exe" | grep -q 'INTERP'; then
        die "$exe has a program interpreter: it is not statically linked"
      fi
      ;;
  esac
  printf '%s\n' "$exe"
}

zip_target() { # TARGET OS ARCH OUT_DIR
  local target=$1 os=$2 arch=$3 out=$4 exe stage zip
  exe=$(build "$target")
  mkdir -p "$out"
  out=$(cd "$out" && pwd)
  zip="$out/${NAME}_${VERSION}_${os}_${arch}.zip"
  stage=$(mktemp -d)
  # shellcheck disable=SC2064 # expand now: $stage is local
  trap "rm -rf '$stage'; trap - RETURN" RETURN
  cp "$exe" "$stage/${NAME}_v${VERSION}"
  chmod 755 "$stage/${NAME}_v${VERSION}"
  cp "$ROOT/LICENSE" "$ROOT/README.md" "$stage/"
  rm -f "$zip"
  (cd "$stage" && zip -q -9 -X "$zip" "${NAME}_v${VERSION}" LICENSE README.md)
  log "wrote $(basename "$zip")"
}

sums() { # OUT_DIR
  local out=$1 sums manifest gnupg fpr
  [ -n "${GPG_PRIVATE_KEY:-}" ] || die "GPG_PRIVATE_KEY is not set: the SHA256SUMS signature needs the release key (ASCII-armored)"
  [ -d "$out" ] || die "$out: no such directory"
  manifest="${NAME}_${VERSION}_manifest.json"
  sums="${NAME}_${VERSION}_SHA256SUMS"
  cp "$ROOT/terraform-registry-manifest.json" "$out/$manifest"
  (
    cd "$out"
    shopt -s nullglob
    local zips=("${NAME}_${VERSION}"_*.zip)
    [ ${#zips[@]} -gt 0 ] || die "no ${NAME}_${VERSION}_*.zip in $out"
    sha256sum -- "${zips[@]}" "$manifest" >"$sums"
  )
  gnupg=$(mktemp -d)
  # shellcheck disable=SC2064 # expand now: $gnupg is local
  trap "rm -rf '$gnupg'; trap - RETURN" RETURN
  printf '%s\n' "$GPG_PRIVATE_KEY" | GNUPGHOME=$gnupg gpg --batch --quiet --import 2>/dev/null ||
    die "GPG_PRIVATE_KEY: gpg could not import it"
  fpr=$(GNUPGHOME=$gnupg gpg --batch --with-colons --list-secret-keys | awk -F: '$1 == "fpr" { print $10; exit }')
  [ -n "$fpr" ] || die "GPG_PRIVATE_KEY holds no secret key"
  rm -f "$out/$sums.sig"
  printf '%s' "${PASSPHRASE:-}" | GNUPGHOME=$gnupg gpg --batch --quiet --yes --pinentry-mode loopback \
    --passphrase-fd 0 --local-user "$fpr" --output "$out/$sums.sig" --detach-sign "$out/$sums" ||
    die "gpg could not sign $sums (wrong PASSPHRASE?)"
  GNUPGHOME=$gnupg gpg --batch --quiet --verify "$out/$sums.sig" "$out/$sums" 2>/dev/null ||
    die "the signature of $sums does not verify"
  log "wrote $manifest, $sums and $sums.sig (key $fpr)"
  cat "$out/$sums"
}

case "${1:-}" in
  zip)
    [ $# = 5 ] || usage
    zip_target "$2" "$3" "$4" "$5"
    ;;
  sums)
    [ $# = 2 ] || usage
    sums "$2"
    ;;
  "" | -*) usage ;;
  *)
    [ $# = 1 ] || usage
    # Fail before a long build when the signature cannot be made.
    [ -n "${GPG_PRIVATE_KEY:-}" ] || die "GPG_PRIVATE_KEY is not set: the SHA256SUMS signature needs the release key (ASCII-armored)"
    zip_target x86_64-unknown-linux-musl linux amd64 "$1"
    sums "$1"
    ;;
esac
