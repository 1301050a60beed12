#!/bin/sh
# Restart the Nix daemon so it reads the new configuration.
# Usage: restart_daemon.sh CUSTOM_COMMAND
#   With systemd and a nix-daemon unit: systemctl restart nix-daemon.
#   Otherwise CUSTOM_COMMAND (the user's daemon_restart_command) runs, if given.
set -eu
custom=$1
if [ -n "$custom" ]; then
  echo "running daemon_restart_command"
  sh -c "$custom"
elif [ -d /run/systemd/system ] && systemctl cat nix-daemon.service >/dev/null 2>&1; then
  systemctl restart nix-daemon.service
  echo "restarted nix-daemon.service"
else
  echo "no nix-daemon to restart (no systemd unit, no daemon_restart_command)"
fi
