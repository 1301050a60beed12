#!/bin/sh
# Converge the Cachix CLI and the watch-store service (check-then-act).
# Usage: cachix.sh CACHE INSTALL WATCH UNIT ENV_FILE STOP_SECONDS
#   INSTALL/WATCH: true | false. stdin: the environment file content
#   (CACHIX_AUTH_TOKEN=…, CACHIX_SIGNING_KEY=…), written 0600 root-only;
#   never on a command line. STOP_SECONDS: the unit's TimeoutStopSec (the
#   builder's delete timeout: on SIGTERM watch-store uploads its queue
#   before it exits, and destroy waits for that).
#   WATCH=false (also: no cachix block, and on_destroy = "clean") stops and
#   removes the service and deletes the token file, when they are there.
set -eu
cache=$1
install=$2
watch=$3
unit=$4
env_file=$5
stop_seconds=$6
PATH="$PATH:/nix/var/nix/profiles/default/bin:/usr/local/bin"
export PATH
unit_path="/etc/systemd/system/$unit"

if [ "$install" = true ] && ! command -v cachix >/dev/null 2>&1; then
  echo "installing the cachix CLI"
  nix-env -iA cachix -f https://cachix.org/api/v1/install </dev/null
fi

if [ "$watch" != true ]; then
  # Drain the (empty) input with builtins: this path runs on every apply.
  while IFS= read -r _; do :; done
  if [ -f "$unit_path" ]; then
    systemctl disable --now "$unit" || true
    rm -f "$unit_path"
    systemctl daemon-reload || true
    echo "removed $unit"
  fi
  if [ -e "$env_file" ] || [ -L "$env_file" ]; then rm -f "$env_file"; fi
  echo "changed=no"
  exit 0
fi

if [ ! -d /run/systemd/system ]; then
  echo "cachix.watch_store needs systemd on the host" >&2
  exit 4
fi
cachix_bin=$(command -v cachix) || {
  echo "cachix is not installed: set cachix.install = true or install it first" >&2
  exit 5
}

restart=no
mkdir -p "$(dirname "$env_file")"
chmod 0700 "$(dirname "$env_file")"
new=$(mktemp "$env_file.XXXXXX")
trap 'rm -f "$new"' EXIT
# The provider's stop (guard.sh) sends SIGTERM: exit through the EXIT trap.
trap 'exit 143' TERM
cat >"$new"
if [ -f "$env_file" ] && cmp -s "$new" "$env_file"; then
  rm -f "$new"
else
  mv -f "$new" "$env_file"
  restart=yes
fi
chmod 0600 "$env_file"

unit_new=$(mktemp "$unit_path.XXXXXX")
trap 'rm -f "$unit_new"' EXIT
cat >"$unit_new" <<UNIT
# Managed by terraform-provider-nixbuild (nixbuild_builder).
[Unit]
Description=Push new Nix store paths to the Cachix cache $cache
After=network-online.target nix-daemon.service
Wants=network-online.target

[Service]
EnvironmentFile=$env_file
ExecStart=$cachix_bin watch-store $cache
Restart=always
RestartSec=5
# SIGTERM to cachix only (not to what it runs), then time to upload its queue.
KillMode=mixed
TimeoutStopSec=$stop_seconds

[Install]
WantedBy=multi-user.target
UNIT
if [ -f "$unit_path" ] && cmp -s "$unit_new" "$unit_path"; then
  rm -f "$unit_new"
else
  chmod 0644 "$unit_new"
  mv -f "$unit_new" "$unit_path"
  systemctl daemon-reload
  restart=yes
fi
systemctl enable "$unit" >/dev/null 2>&1
if [ "$restart" = yes ] || ! systemctl is-active --quiet "$unit"; then
  systemctl restart "$unit"
fi
systemctl is-active "$unit"
echo "changed=$restart"
