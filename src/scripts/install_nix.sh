#!/bin/sh
# Install Nix unless it is already there (check-then-act).
# Usage: install_nix.sh METHOD INSTALLER_URL DAEMON HAS_RESTART_COMMAND
#   METHOD: auto | official | determinate | distro | none
#   INSTALLER_URL: installer script for official/determinate (auto uses official)
#   DAEMON: true (multi-user, nix-daemon) | false (single-user)
#   HAS_RESTART_COMMAND: true when nix.daemon_restart_command is set
# The installers' arguments depend on the init system, as the real ones
# demand: without systemd the Determinate installer refuses a plain install
# ("systemd was not active ... consider passing `--init none`"), and neither
# it (`--init none`) nor the official one (`--daemon`: "I don't support your
# init system yet") starts a nix-daemon there. So a multi-user install on such
# a host needs daemon_restart_command, which then starts the daemon.
set -eu
method=$1
url=$2
daemon=$3
has_restart=${4:-false}
systemd=false
if [ -d /run/systemd/system ]; then systemd=true; fi
PATH="$PATH:/nix/var/nix/profiles/default/bin:/usr/local/bin:/usr/sbin:/sbin"
export PATH

if command -v nix >/dev/null 2>&1; then
  # Not `nix --version`: starting nix costs more than this whole script.
  echo "Nix is already installed: $(command -v nix)"
  exit 0
fi

# fetch URL FILE. An https:// URL is never followed to http:// (the
# installer runs as root): curl is limited to https for the request and its
# redirects; wget cannot be, so its redirects are checked afterwards.
fetch() {
  case $1 in
    https://*) protocols='=https' ;;
    *) protocols='=https,http' ;;
  esac
  if command -v curl >/dev/null 2>&1; then
    curl --proto "$protocols" --proto-redir "$protocols" -fsSL --retry 3 -o "$2" "$1"
  elif command -v wget >/dev/null 2>&1; then
    wget -S -O "$2" "$1" 2>"$2.log" || {
      cat "$2.log" >&2
      rm -f -- "$2.log"
      return 1
    }
    if [ "$protocols" = '=https' ] && grep -qi '^ *location: *http://' "$2.log"; then
      rm -f -- "$2" "$2.log"
      echo "refused: $1 redirects to plain http://" >&2
      return 1
    fi
    rm -f -- "$2.log"
  else
    echo "neither curl nor wget is installed: cannot download $1" >&2
    exit 5
  fi
}

# Download the whole installer before running it, so a cut download never runs
# half a script.
run_installer() {
  installer=$(mktemp)
  trap 'rm -f "$installer"' EXIT
  # The provider's stop (guard.sh) sends SIGTERM: exit through the EXIT trap.
  trap 'exit 143' TERM
  echo "downloading the Nix installer from $url"
  fetch "$url" "$installer"
  echo "running the installer: sh installer $*"
  sh "$installer" "$@" </dev/null
}

# Refuse before touching the host when no daemon could run afterwards.
if [ "$method" != none ] && { [ "$daemon" = true ] || [ "$method" = determinate ]; } &&
  [ "$systemd" = false ] && [ "$has_restart" != true ]; then
  echo "this host has no systemd, so no installer starts nix-daemon here (the official one installs none without systemd, the Determinate one needs --init none); a multi-user Nix needs nix.daemon_restart_command: a command that starts or restarts nix-daemon under this host's own supervisor (runit, OpenRC, s6, ...). Or set nix.daemon = false for a single-user Nix (root only)" >&2
  exit 7
fi

case "$method" in
  none)
    echo "Nix is not installed on this host, and nix.install = \"none\" forbids installing it" >&2
    exit 3
    ;;
  distro)
    if command -v apt-get >/dev/null 2>&1; then
      packages=nix-bin
      if [ "$daemon" = true ] && [ -d /run/systemd/system ]; then
        packages="$packages nix-setup-systemd"
      fi
      # shellcheck disable=SC2086 # word splitting of the package list is intended
      DEBIAN_FRONTEND=noninteractive apt-get install -y -q $packages ||
        { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $packages; }
    elif command -v dnf >/dev/null 2>&1; then
      dnf install -y nix
    elif command -v pacman >/dev/null 2>&1; then
      pacman -S --noconfirm nix
    elif command -v zypper >/dev/null 2>&1; then
      zypper --non-interactive install nix
    else
      echo "no supported package manager (apt-get, dnf, pacman, zypper) for install = \"distro\"" >&2
      exit 4
    fi
    if [ "$daemon" = true ] && [ -d /run/systemd/system ] && systemctl list-unit-files nix-daemon.service >/dev/null 2>&1; then
      systemctl enable --now nix-daemon.service || systemctl enable --now nix-daemon.socket
    fi
    ;;
  official | auto)
    if [ "$daemon" = true ]; then
      run_installer --daemon --yes
    else
      run_installer --no-daemon --yes
    fi
    ;;
  determinate)
    if [ "$systemd" = true ]; then
      run_installer install linux --no-confirm
    else
      run_installer install linux --init none --no-confirm
    fi
    ;;
  *)
    echo "unknown install method: $method" >&2
    exit 2
    ;;
esac

if ! command -v nix >/dev/null 2>&1; then
  echo "the installation finished, but no nix command is on PATH" >&2
  exit 6
fi
echo "installed: $(nix --version)"
