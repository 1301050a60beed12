#!/bin/sh
# STAND-IN for a Nix installer, used only by the test world. The real ones
# (https://nixos.org/nix/install and https://install.determinate.systems/nix)
# download Nix from the internet, which the test machine cannot reach.
# scripts/testworld/up.sh serves two copies of this file from the world's
# nginx as www/installers/official.sh and www/installers/determinate.sh, with
# FLAVOUR and TARBALL_URL below filled in.
#
# It accepts and refuses what the real installers do, on the points the
# provider relies on:
#   official (NixOS/nix scripts/install-nix-from-closure.sh, install-multi-user.sh,
#   install-systemd-multi-user.sh):
#     sh official.sh [--daemon | --no-daemon] [--yes] [--no-channel-add]
#                    [--no-modify-profile] [--daemon-user-count N] [--nix-extra-conf-file F]
#     - an unknown argument prints the usage and exits 0 without installing
#       (the `*)` branch of the argument loop ends in a bare `exit`);
#     - --daemon on Linux without systemd (/run/systemd/system missing) warns
#       "We did not detect systemd on your system", goes on when there is no
#       TTY, installs the multi-user layout (nixbld group and users,
#       build-users-group = nixbld) but starts NO daemon: "I don't support your
#       init system yet; you may want to add nix-daemon manually."
#       (poly_configure_nix_daemon_service);
#     - --daemon with systemd: a nix-daemon unit, enabled and started.
#   determinate (DeterminateSystems/nix-installer src/planner/linux.rs):
#     sh determinate.sh install [linux] [--no-confirm] [--init none|systemd]
#                               [--no-start-daemon] [--extra-conf S] ...
#     - --init systemd (the default) with the daemon started needs a running
#       systemd, else it fails: "systemd was not active ... To use a
#       `root`-only Nix install, consider passing `--init none`."
#       (check_systemd_active);
#     - --init none: Nix for root only, no daemon;
#     - Nix already installed (nix-env runs, or /nix/receipt.json): refused.
#
# It records its argv (one JSON line, to the file named in
# /etc/testworld/installer-log-path, default /var/log/nix-installer-standin.log)
# and really installs Nix: Debian's nix 2.8 binaries from TARBALL_URL into
# /nix/nix-standin-2.8.0 with /nix/var/nix/profiles/default -> there (so
# /nix/var/nix/profiles/default/bin/nix etc. exist, as with the real ones) and
# /etc/nix/nix.conf. Nothing supervises a daemon on a host without systemd:
# that is the host owner's job (the test world's fresh host has
# /etc/testworld/restart-nix-daemon for it).
# As with the real installers, a non-interactive SSH command does not get Nix
# on its PATH (Debian's /etc/bash.bashrc returns early for those): use
# /nix/var/nix/profiles/default/bin/nix, or a login shell.
# Caveat: the binaries use the host's shared libraries (libnix*, boost, ...).
set -eu

FLAVOUR=@FLAVOUR@
TARBALL_URL=@TARBALL_URL@
NIX_DIR=/nix/nix-standin-2.8.0
PROFILE=/nix/var/nix/profiles/default

LOG=/var/log/nix-installer-standin.log
if [ -r /etc/testworld/installer-log-path ]; then LOG=$(head -n 1 /etc/testworld/installer-log-path); fi

json_str() {
  J=$1 awk 'BEGIN {
    s = ENVIRON["J"]
    gsub(/\\/, "&&", s); gsub(/"/, "\\\"", s)
    gsub(/\n/, "\\n", s); gsub(/\r/, "\\r", s); gsub(/\t/, "\\t", s)
    gsub(/[\001-\037]/, "?", s)
    printf "\"%s\"", s
  }'
}

record() {
  argv="[$(json_str "$0")"
  for a in "$@"; do argv="$argv,$(json_str "$a")"; done
  mkdir -p "$(dirname "$LOG")" 2>/dev/null || true
  printf '{"time":%s,"installer":%s,"argv":%s],"uid":%s}\n' \
    "$(json_str "$(date -u +%Y-%m-%dT%H:%M:%S.%NZ)")" "$(json_str "$FLAVOUR")" "$argv" "$(id -u)" >>"$LOG" ||
    echo "nix installer (stand-in): cannot write $LOG" >&2
}

say() { printf 'nix installer (%s stand-in): %s\n' "$FLAVOUR" "$*" >&2; }
fail() { say "error: $*"; exit 1; }

record "$@"

# Argument parsing, shaped like the real installers.
systemd=""
[ -e /run/systemd/system ] && systemd=1
if [ "$FLAVOUR" = official ]; then
  daemon=""
  while [ $# -gt 0 ]; do
    case "$1" in
      --daemon) daemon=1 ;;
      --no-daemon) daemon="" ;;
      --yes | --no-channel-add | --no-modify-profile | --darwin-use-unencrypted-nix-store-volume) ;;
      --daemon-user-count | --nix-extra-conf-file | --tarball-url-prefix) shift ;;
      *)
        # The real loop prints its usage and ends in a bare `exit` (status 0).
        echo "Nix Installer [--daemon|--no-daemon] [--daemon-user-count INT] [--yes] [--no-channel-add] [--no-modify-profile] [--nix-extra-conf-file FILE]" >&2
        exit 0
        ;;
    esac
    shift
  done
  if [ -n "$daemon" ] && [ -z "$systemd" ]; then
    say "warning: We did not detect systemd on your system. With a multi-user install without systemd you will have to manually configure your init system to launch the Nix daemon after installation."
    say "No TTY, assuming you would say yes :)"
  fi
else
  daemon=1
  init=systemd
  start_daemon=1
  [ "${1:-}" = install ] || fail "usage: nix-installer install [linux] [--no-confirm] [--init none|systemd] (got: $*)"
  shift
  if [ "${1:-}" = linux ]; then shift; fi
  while [ $# -gt 0 ]; do
    case "$1" in
      --no-confirm | --determinate | --prefer-upstream-nix | --no-modify-profile) ;;
      --no-start-daemon) start_daemon="" ;;
      --init)
        [ $# -ge 2 ] || fail "error: a value is required for '--init <INIT>'"
        case "$2" in none | systemd) init=$2 ;; *) fail "error: invalid value '$2' for '--init <INIT>'" ;; esac
        shift
        ;;
      --extra-conf | --nix-build-group-name | --nix-build-user-count | --nix-package-url) shift ;;
      *) fail "error: unexpected argument '$1' found" ;;
    esac
    shift
  done
  if [ "$init" = systemd ] && [ -n "$start_daemon" ] && [ -z "$systemd" ]; then
    fail "systemd was not active. If it will be started later consider, passing \`--no-start-daemon\`. To use a \`root\`-only Nix install, consider passing \`--init none\`."
  fi
fi

[ "$(id -u)" = 0 ] || [ -z "$daemon" ] || fail "a multi-user install must run as root (use sudo)"
if [ -e "$PROFILE/bin/nix" ] || [ -e /nix/receipt.json ]; then
  fail "Nix is already installed here ($PROFILE/bin/nix exists); uninstall it first"
fi
command -v curl >/dev/null || fail "curl is needed"

say "downloading $TARBALL_URL"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
curl -fsSL "$TARBALL_URL" -o "$tmp/nix.tar.gz" || fail "download of $TARBALL_URL failed"
mkdir -p /nix/var/nix/profiles /nix/var/nix/gcroots /nix/var/nix/daemon-socket /nix/var/log/nix /nix/store
rm -rf "$NIX_DIR"
mkdir -p "$NIX_DIR"
tar -xzf "$tmp/nix.tar.gz" -C "$NIX_DIR" --strip-components=1
mkdir -p "$NIX_DIR/etc/profile.d"
cat >"$NIX_DIR/etc/profile.d/nix-daemon.sh" <<EOF
# Added by the Nix installer stand-in.
case ":\$PATH:" in *:$PROFILE/bin:*) ;; *) export PATH="\$HOME/.nix-profile/bin:$PROFILE/bin:\$PATH" ;; esac
EOF
cp "$NIX_DIR/etc/profile.d/nix-daemon.sh" "$NIX_DIR/etc/profile.d/nix.sh"
ln -sfn "$NIX_DIR" "$PROFILE"

mkdir -p /etc/nix
{
  echo "# Written by the Nix installer stand-in ($FLAVOUR)."
  if [ -n "$daemon" ]; then echo "build-users-group = nixbld"; else echo "build-users-group ="; fi
  echo "experimental-features = nix-command flakes"
  echo "substituters ="
  echo "sandbox = false"
  echo "# Stand-in only: the relocated Debian binaries' compiled-in hook path is /usr/libexec."
  echo "build-hook = $PROFILE/libexec/nix/build-remote"
  [ "$FLAVOUR" != determinate ] || echo "max-jobs = auto"
} >/etc/nix/nix.conf

if [ -n "$daemon" ]; then
  getent group nixbld >/dev/null || groupadd -g 30000 nixbld
  i=1
  while [ "$i" -le 32 ]; do
    id "nixbld$i" >/dev/null 2>&1 ||
      useradd -u $((30000 + i)) -g nixbld -G nixbld -M -d /var/empty -s /usr/sbin/nologin -c "Nix build user $i" "nixbld$i"
    i=$((i + 1))
  done
  chgrp nixbld /nix/store
  chmod 1775 /nix/store
  # Like the real multi-user installer: every shell gets Nix on its PATH.
  line=". $PROFILE/etc/profile.d/nix-daemon.sh"
  for rc in /etc/bash.bashrc /etc/profile.d/nix.sh; do
    if ! grep -qF "$line" "$rc" 2>/dev/null; then
      printf '\n# Nix\nif [ -e %s/etc/profile.d/nix-daemon.sh ]; then %s; fi\n# End Nix\n' "$PROFILE" "$line" >>"$rc"
    fi
  done
  if [ -n "$systemd" ] && { [ "$FLAVOUR" = official ] || [ "$init" = systemd ]; }; then
    cat >/etc/systemd/system/nix-daemon.service <<EOF
[Unit]
Description=Nix Daemon (installer stand-in)
[Service]
ExecStart=$PROFILE/bin/nix-daemon
KillMode=process
LimitNOFILE=1048576
[Install]
WantedBy=multi-user.target
EOF
    systemctl daemon-reload
    if [ "$FLAVOUR" = official ] || [ -n "$start_daemon" ]; then
      systemctl enable --now nix-daemon.service >/dev/null 2>&1 || fail "systemctl enable --now nix-daemon failed"
    fi
  elif [ "$FLAVOUR" = official ]; then
    say "I don't support your init system yet; you may want to add nix-daemon manually."
  else
    say "--init none: no init service; Nix is usable by root only until something runs nix-daemon"
  fi
else
  # Single-user: the invoking user owns /nix, Nix via ~/.nix-profile.
  chown -R "$(id -u)" /nix
  ln -sfn "$PROFILE" "$HOME/.nix-profile"
  line=". $HOME/.nix-profile/etc/profile.d/nix.sh"
  for rc in "$HOME/.profile" "$HOME/.bashrc"; do
    if ! grep -qF "$line" "$rc" 2>/dev/null; then
      printf '\nif [ -e %s/.nix-profile/etc/profile.d/nix.sh ]; then %s; fi # added by Nix installer\n' "$HOME" "$line" >>"$rc"
    fi
  done
fi
if [ "$FLAVOUR" = determinate ]; then
  printf '{"version":"stand-in","planner":"linux","daemon":%s}\n' "$([ -n "$daemon" ] && echo true || echo false)" >/nix/receipt.json
fi
"$PROFILE/bin/nix" --version >/dev/null || fail "the installed nix does not run"
say "Nix $("$PROFILE/bin/nix" --version | awk '{print $NF}') installed ($([ -n "$daemon" ] && echo multi-user || echo single-user))"
