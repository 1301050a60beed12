#!/bin/sh
# Describe this host as key=value lines: system, kernel, CPUs, OS, init system
# and the Nix version (empty when Nix is absent; no line at all when
# nix_fingerprint.sh, prepended, found the nix binary unchanged, or the
# caller set nix_version_unchanged=yes). Read-only; changes nothing.
set -u
# Nix may live outside the non-login PATH an SSH command gets.
PATH="$PATH:/nix/var/nix/profiles/default/bin:/run/current-system/sw/bin:$HOME/.nix-profile/bin"
export PATH

# One `uname` for both (kernel names hold no spaces); every process counts
# when a plan checks many hosts at once.
read -r kernel machine <<EOF
$(uname -sm)
EOF
case "$machine" in
  arm64) arch=aarch64 ;;
  amd64) arch=x86_64 ;;
  i386 | i586 | i686) arch=i686 ;;
  *) arch=$machine ;;
esac
case "$kernel" in
  Linux) os=linux ;;
  Darwin) os=darwin ;;
  *) os=$(printf '%s' "$kernel" | tr '[:upper:]' '[:lower:]') ;;
esac
echo "system=$arch-$os"
echo "machine=$machine"
echo "kernel=$kernel"

cpus=$(nproc 2>/dev/null || getconf _NPROCESSORS_ONLN 2>/dev/null || sysctl -n hw.ncpu 2>/dev/null || echo 1)
echo "cpus=$cpus"

os_id=
if [ -r /etc/os-release ]; then
  while IFS='=' read -r name value; do
    if [ "$name" = ID ]; then
      value=${value#[\"\']}
      os_id=${value%[\"\']}
    fi
  done </etc/os-release
fi
echo "os_id=$os_id"

if [ -d /run/systemd/system ]; then
  echo "init=systemd"
else
  echo "init=other"
fi

if [ "${nix_version_unchanged:-no}" = yes ]; then
  # Set by nix_fingerprint.sh: the caller knows the version; no line.
  :
elif command -v nix >/dev/null 2>&1; then
  # "nix (Nix) 2.8.0" -> "2.8.0"
  nix_version=$(nix --version 2>/dev/null)
  echo "nix_version=${nix_version##* }"
else
  echo "nix_version="
fi

# NixOS generates nix.conf itself; the builder resource refuses to manage it.
if [ -e /etc/NIXOS ]; then
  echo "nixos=yes"
else
  echo "nixos=no"
fi

for manager in apt-get dnf yum pacman zypper apk; do
  if command -v "$manager" >/dev/null 2>&1; then
    echo "package_manager=$manager"
    break
  fi
done
